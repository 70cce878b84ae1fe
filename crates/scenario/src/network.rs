//! `[network]`: latency between instances.

use crate::Dist;

/// One-way network latency and loss.
#[derive(
    Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// One-way latency within a zone (default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Dist>,
    /// One-way latency between zones (default: as within a zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_zone: Option<Dist>,
    /// Probability that an attempt's connection fails (a connect failure at
    /// the caller after one round trip).
    #[serde(default)]
    pub loss: f64,
    /// Link bandwidth in megabits per second for response bodies
    /// (`response_bytes × 8 / bandwidth` is added to each response; default
    /// unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_mbps: Option<f64>,
    /// Latency between particular zones, overriding `cross_zone` (both
    /// directions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pairs: Vec<ZonePair>,
}

/// One-way latency between two zones.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ZonePair {
    /// One zone.
    pub from: String,
    /// The other.
    pub to: String,
    /// Their one-way latency.
    pub latency: Dist,
}
