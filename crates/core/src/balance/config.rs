//! [`BalancerConfig`]: every balancer by name, as a scenario file names it.
//!
//! ```toml
//! balancer = { kind = "peak_ewma", decay = "10s", default_rtt = "30ms" }
//! ```
//!
//! The shared settings (panic threshold, slow start, zone-aware routing)
//! are a separate [`CommonConfig`](super::CommonConfig).

use super::{p2c, round_robin, Algorithm, CommonConfig, LoadBalancer};
use crate::error::ConfigError;

/// Any balancer, tagged by `kind`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BalancerConfig {
    /// Envoy round robin.
    RoundRobin(round_robin::RoundRobinConfig),
    /// Two distinct choices, least active requests.
    P2c(p2c::P2cConfig),
}

impl Default for BalancerConfig {
    fn default() -> Self {
        BalancerConfig::RoundRobin(Default::default())
    }
}

/// One line about a balancer, for `meshsim algorithms`.
#[derive(Clone, Debug)]
pub struct BalancerInfo {
    /// The `kind` name.
    pub name: &'static str,
    /// One-line description, naming the production system it follows.
    pub summary: &'static str,
    /// The configuration with every default filled in.
    pub defaults: BalancerConfig,
}

impl BalancerConfig {
    /// The `kind` name.
    pub fn name(&self) -> &'static str {
        match self {
            BalancerConfig::RoundRobin(_) => "round_robin",
            BalancerConfig::P2c(_) => "p2c",
        }
    }

    /// Validates and builds the algorithm.
    pub fn build(&self) -> Result<Box<dyn Algorithm>, ConfigError> {
        Ok(match self {
            BalancerConfig::RoundRobin(c) => Box::new(c.try_new()?),
            BalancerConfig::P2c(c) => Box::new(c.try_new()?),
        })
    }

    /// Validates and builds a whole balancer with the shared settings.
    pub fn load_balancer(&self, common: CommonConfig) -> Result<LoadBalancer, ConfigError> {
        LoadBalancer::new(self.build()?, common)
    }

    /// Every balancer with its description and defaults.
    pub fn catalog() -> Vec<BalancerInfo> {
        let info = |summary, defaults: BalancerConfig| BalancerInfo {
            name: defaults.name(),
            summary,
            defaults,
        };
        vec![
            info(
                "Envoy round robin: random start per client; EDF when weights differ or a host is in slow start",
                BalancerConfig::RoundRobin(Default::default()),
            ),
            info(
                "power of two distinct choices, fewest in-flight requests (tower, nginx `random two least_conn`)",
                BalancerConfig::P2c(Default::default()),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_entry_round_trips_through_json_and_builds() {
        for info in BalancerConfig::catalog() {
            let json = serde_json::to_value(&info.defaults).unwrap();
            assert_eq!(json["kind"], info.name);
            let back: BalancerConfig = serde_json::from_value(json).unwrap();
            assert_eq!(back, info.defaults);
            back.build().unwrap();
        }
    }

    #[test]
    fn unknown_kind_and_fields_are_refused() {
        let e = serde_json::from_str::<BalancerConfig>(r#"{"kind":"fastest"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown variant"), "{e}");
        let e = serde_json::from_str::<BalancerConfig>(r#"{"kind":"p2c","choices":3}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }
}
