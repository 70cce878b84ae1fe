//! [`BalancerConfig`]: every balancer by name, as a scenario file names it.
//!
//! ```toml
//! balancer = { kind = "peak_ewma", decay = "10s", default_rtt = "30ms" }
//! ```
//!
//! The shared settings (panic threshold, slow start, zone-aware routing)
//! are a separate [`CommonConfig`](super::CommonConfig).

use super::{
    aperture, client_wrr, haproxy_random, least_conn, least_request, maglev, p2c, peak_ewma,
    random, ring_hash, round_robin, smooth_round_robin, Algorithm, CommonConfig, LoadBalancer,
};
use crate::error::ConfigError;

/// Declares [`BalancerConfig`] and its catalogue from one table, so a
/// balancer's name, type and description are written once.
macro_rules! balancers {
    ($( $(#[$doc:meta])* $variant:ident($config:ty) = $name:literal, $summary:literal; )*) => {
        /// Any balancer, tagged by `kind`.
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        #[serde(tag = "kind", rename_all = "snake_case")]
        pub enum BalancerConfig {
            $( $(#[$doc])* $variant($config), )*
        }

        impl BalancerConfig {
            /// The `kind` name.
            pub fn name(&self) -> &'static str {
                match self {
                    $( BalancerConfig::$variant(_) => $name, )*
                }
            }

            /// Validates and builds the algorithm.
            pub fn build(&self) -> Result<Box<dyn Algorithm>, ConfigError> {
                Ok(match self {
                    $( BalancerConfig::$variant(c) => Box::new(c.try_new()?), )*
                })
            }

            /// Every balancer with its description and defaults.
            pub fn catalog() -> Vec<BalancerInfo> {
                vec![
                    $( BalancerInfo {
                        name: $name,
                        summary: $summary,
                        defaults: BalancerConfig::$variant(<$config>::default()),
                    }, )*
                ]
            }
        }
    };
}

balancers! {
    /// Envoy round robin.
    RoundRobin(round_robin::RoundRobinConfig) = "round_robin",
        "Envoy round robin: random start per client; EDF when weights differ or a host is in slow start";
    /// nginx smooth weighted round robin.
    SmoothRoundRobin(smooth_round_robin::SmoothRoundRobinConfig) = "smooth_round_robin",
        "nginx smooth weighted round robin (weights 5,1,1 give a a b a c a a), with max_fails accounting";
    /// Uniform or weighted random.
    Random(random::RandomConfig) = "random",
        "Envoy random: uniform, weights ignored; `weighted = true` for nginx-style weighted random";
    /// Envoy least request.
    LeastRequest(least_request::LeastRequestConfig) = "least_request",
        "Envoy least request: N choices with replacement (default 2), fewest active; EDF over w/(active+1)^bias when weights differ";
    /// Two distinct choices.
    P2c(p2c::P2cConfig) = "p2c",
        "power of two distinct choices, fewest in-flight requests, tie to the first draw (tower, nginx `random two least_conn`)";
    /// P2C over Peak-EWMA latency.
    PeakEwma(peak_ewma::PeakEwmaConfig) = "peak_ewma",
        "P2C over peak-EWMA RTT x (active+1) (Finagle, linkerd, tower); decay 10s, new hosts 30ms; failure_penalty for fast 503/429";
    /// Finagle aperture.
    Aperture(aperture::ApertureConfig) = "aperture",
        "Finagle aperture: P2C inside a window sized by a load band (random), or ring slices per client (deterministic, min 12)";
    /// gRPC / Envoy client-side weighted round robin.
    ClientWrr(client_wrr::ClientWrrConfig) = "client_wrr",
        "gRPC/Envoy client-side WRR from server load reports: qps/(util + eps/qps x penalty), blackout 10s, expiry 3m";
    /// HAProxy / nginx least connections.
    LeastConn(least_conn::LeastConnConfig) = "least_conn",
        "full scan for the fewest active/weight, rotating among ties (HAProxy leastconn, nginx least_conn)";
    /// Envoy ketama ring hash.
    RingHash(ring_hash::RingHashConfig) = "ring_hash",
        "Envoy ketama ring (xxHash64, 1024..8M entries) over the request hash; retries take the next entry";
    /// Envoy Maglev.
    Maglev(maglev::MaglevConfig) = "maglev",
        "Envoy Maglev lookup table (65537 slots, weighted fill) over the request hash";
    /// HAProxy `balance random(N)`.
    HaproxyRandom(haproxy_random::HaproxyRandomConfig) = "haproxy_random",
        "HAProxy balance random(N): N draws with replacement on its consistent-hash ring (16 points per weight), least load/weight wins, ties to the last";
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
    /// Validates and builds a whole balancer with the shared settings.
    pub fn load_balancer(&self, common: CommonConfig) -> Result<LoadBalancer, ConfigError> {
        LoadBalancer::new(self.build()?, common)
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
        let e =
            serde_json::from_str::<BalancerConfig>(r#"{"kind":"p2c","choices":3}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }
}
