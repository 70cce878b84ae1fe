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
}
