//! [`OutlierConfig`]: every field of Envoy's `OutlierDetection` message, with
//! Envoy's defaults (`outlier_detection.proto`, `outlier_detection_impl.h`
//! `DEFAULT_*`), plus the [`Variant`] switch and gRPC's preset (gRFC A50).

use super::OutlierDetector;
use crate::error::{check_range, ConfigError};
use crate::time::{Nanos, Time};

/// Which production system's algorithm to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// Envoy's `DetectorImpl`: all detectors, consecutive ones at event time.
    #[default]
    Envoy,
    /// gRPC's `outlier_detection` policy (gRFC A50, grpc-go): success rate
    /// and failure percentage only; the consecutive fields, the local-origin
    /// split and `always_eject_one_host` are ignored.
    Grpc,
}

/// Outlier detection settings (Envoy `OutlierDetection`).
///
/// Percentages are integers in `0..=100`; `success_rate_stdev_factor` is in
/// thousandths (1900 = 1.9), as in Envoy.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct OutlierConfig {
    /// Envoy or gRPC semantics (default Envoy).
    pub variant: Variant,
    /// Time between sweeps (default 10 s; must be > 0).
    pub interval: Nanos,
    /// Ejection time per ejection in a row (default 30 s; must be > 0).
    pub base_ejection_time: Nanos,
    /// Cap on one ejection. `None` (the default) means 300 s, or
    /// `base_ejection_time` if that is larger, as both Envoy and gRPC do when
    /// the field is unset. Envoy rejects a value below `base_ejection_time`.
    pub max_ejection_time: Option<Nanos>,
    /// Each ejection lasts an extra `U[0, jitter]` (default 0).
    pub max_ejection_time_jitter: Nanos,
    /// The most hosts that may be ejected at once, in percent of all hosts
    /// (default 10). Envoy's proto comment says one host is ejected
    /// "regardless", but its code does so only with `always_eject_one_host`;
    /// this follows the code, so 9 or fewer hosts never eject by default.
    pub max_ejection_percent: u32,
    /// Allow one ejection whatever `max_ejection_percent` says (default
    /// false; Envoy only, gRPC always allows one).
    pub always_eject_one_host: bool,
    /// 5xx responses in a row that eject (default 5; 0 never fires).
    pub consecutive_5xx: u32,
    /// Percent chance a consecutive-5xx detection ejects (default 100).
    pub enforcing_consecutive_5xx: u32,
    /// 502/503/504 in a row that eject (default 5; 0 never fires).
    pub consecutive_gateway_failure: u32,
    /// Percent chance a gateway-failure detection ejects (default **0**).
    pub enforcing_consecutive_gateway_failure: u32,
    /// Count connect failures, resets and timeouts separately from 5xx
    /// responses (default false: they count as 503/504).
    pub split_external_local_origin_errors: bool,
    /// Local-origin failures in a row that eject (default 5; split only).
    pub consecutive_local_origin_failure: u32,
    /// Percent chance a consecutive local-origin detection ejects (default 100).
    pub enforcing_consecutive_local_origin_failure: u32,
    /// Percent chance a local-origin success-rate detection ejects (default 100).
    pub enforcing_local_origin_success_rate: u32,
    /// Hosts with enough volume needed for success-rate detection (default 5).
    pub success_rate_minimum_hosts: u32,
    /// Requests per interval a host needs for success-rate detection
    /// (default 100).
    pub success_rate_request_volume: u32,
    /// Ejection threshold `mean − stdev × factor / 1000` (default 1900).
    pub success_rate_stdev_factor: u32,
    /// Percent chance a success-rate detection ejects (default 100).
    pub enforcing_success_rate: u32,
    /// Failure percentage that ejects (default 85; Envoy `>=`, gRPC `>`).
    pub failure_percentage_threshold: u32,
    /// Percent chance a failure-percentage detection ejects (Envoy default
    /// **0**, gRPC 100).
    pub enforcing_failure_percentage: u32,
    /// Percent chance a local-origin failure-percentage detection ejects
    /// (default 0).
    pub enforcing_failure_percentage_local_origin: u32,
    /// Hosts with enough volume needed for failure-percentage detection
    /// (default 5).
    pub failure_percentage_minimum_hosts: u32,
    /// Requests per interval a host needs for failure-percentage detection
    /// (default 50).
    pub failure_percentage_request_volume: u32,
    /// A passing active health check un-ejects the host and clears its
    /// consecutive counters (default true).
    pub successful_active_health_check_uneject_host: bool,
}

/// Envoy's `DEFAULT_MAX_EJECTION_TIME_MS` (10 × the default base).
const DEFAULT_MAX_EJECTION_TIME: Nanos = Nanos::from_secs(300);

impl Default for OutlierConfig {
    fn default() -> Self {
        OutlierConfig {
            variant: Variant::Envoy,
            interval: Nanos::from_secs(10),
            base_ejection_time: Nanos::from_secs(30),
            max_ejection_time: None,
            max_ejection_time_jitter: Nanos::ZERO,
            max_ejection_percent: 10,
            always_eject_one_host: false,
            consecutive_5xx: 5,
            enforcing_consecutive_5xx: 100,
            consecutive_gateway_failure: 5,
            enforcing_consecutive_gateway_failure: 0,
            split_external_local_origin_errors: false,
            consecutive_local_origin_failure: 5,
            enforcing_consecutive_local_origin_failure: 100,
            enforcing_local_origin_success_rate: 100,
            success_rate_minimum_hosts: 5,
            success_rate_request_volume: 100,
            success_rate_stdev_factor: 1900,
            enforcing_success_rate: 100,
            failure_percentage_threshold: 85,
            enforcing_failure_percentage: 0,
            enforcing_failure_percentage_local_origin: 0,
            failure_percentage_minimum_hosts: 5,
            failure_percentage_request_volume: 50,
            successful_active_health_check_uneject_host: true,
        }
    }
}

impl OutlierConfig {
    /// gRPC's defaults (gRFC A50 service config): Envoy's numbers, but the
    /// failure-percentage algorithm is enforced (100 %), and no active
    /// health check un-ejects (gRPC has no such hook).
    pub fn grpc() -> OutlierConfig {
        OutlierConfig {
            variant: Variant::Grpc,
            enforcing_failure_percentage: 100,
            successful_active_health_check_uneject_host: false,
            ..OutlierConfig::default()
        }
    }

    /// The cap on one ejection: `max_ejection_time`, or if unset the larger
    /// of 300 s and `base_ejection_time`.
    pub fn effective_max_ejection_time(&self) -> Nanos {
        self.max_ejection_time
            .unwrap_or_else(|| DEFAULT_MAX_EJECTION_TIME.max(self.base_ejection_time))
    }

    /// Checks every field once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.interval == Nanos::ZERO {
            return Err(ConfigError::new(
                "outlier.interval",
                "0s is out of range; expected a positive duration such as \"10s\"",
            ));
        }
        if self.base_ejection_time == Nanos::ZERO {
            return Err(ConfigError::new(
                "outlier.base_ejection_time",
                "0s is out of range; expected a positive duration such as \"30s\"",
            ));
        }
        if let Some(max) = self.max_ejection_time {
            if max == Nanos::ZERO {
                return Err(ConfigError::new(
                    "outlier.max_ejection_time",
                    "0s is out of range; expected a positive duration, or leave it unset",
                ));
            }
            // Envoy refuses the cluster; gRPC uses max(base, max) instead.
            if self.variant == Variant::Envoy && max < self.base_ejection_time {
                return Err(ConfigError::new(
                    "outlier.max_ejection_time",
                    format!(
                        "{max} is smaller than base_ejection_time ({}); expected at least that",
                        self.base_ejection_time
                    ),
                ));
            }
        }
        let percents = [
            ("outlier.max_ejection_percent", self.max_ejection_percent),
            (
                "outlier.enforcing_consecutive_5xx",
                self.enforcing_consecutive_5xx,
            ),
            (
                "outlier.enforcing_consecutive_gateway_failure",
                self.enforcing_consecutive_gateway_failure,
            ),
            (
                "outlier.enforcing_consecutive_local_origin_failure",
                self.enforcing_consecutive_local_origin_failure,
            ),
            (
                "outlier.enforcing_local_origin_success_rate",
                self.enforcing_local_origin_success_rate,
            ),
            (
                "outlier.enforcing_success_rate",
                self.enforcing_success_rate,
            ),
            (
                "outlier.failure_percentage_threshold",
                self.failure_percentage_threshold,
            ),
            (
                "outlier.enforcing_failure_percentage",
                self.enforcing_failure_percentage,
            ),
            (
                "outlier.enforcing_failure_percentage_local_origin",
                self.enforcing_failure_percentage_local_origin,
            ),
        ];
        for (field, value) in percents {
            check_range(field, value, 0, 100)?;
        }
        Ok(())
    }

    /// Builds a detector with no hosts whose first tick is `now + interval`.
    pub fn try_new(&self, now: Time) -> Result<OutlierDetector, ConfigError> {
        self.validate()?;
        Ok(OutlierDetector::new(self.clone(), now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_envoy_proto() {
        // outlier_detection_impl.h DEFAULT_* and outlier_detection.proto.
        let c = OutlierConfig::default();
        assert_eq!(c.variant, Variant::Envoy);
        assert_eq!(c.interval, Nanos::from_secs(10));
        assert_eq!(c.base_ejection_time, Nanos::from_secs(30));
        assert_eq!(c.effective_max_ejection_time(), Nanos::from_secs(300));
        assert_eq!(c.max_ejection_time_jitter, Nanos::ZERO);
        assert_eq!(c.max_ejection_percent, 10);
        assert!(!c.always_eject_one_host);
        assert_eq!((c.consecutive_5xx, c.enforcing_consecutive_5xx), (5, 100));
        assert_eq!(
            (
                c.consecutive_gateway_failure,
                c.enforcing_consecutive_gateway_failure
            ),
            (5, 0)
        );
        assert!(!c.split_external_local_origin_errors);
        assert_eq!(
            (
                c.consecutive_local_origin_failure,
                c.enforcing_consecutive_local_origin_failure,
                c.enforcing_local_origin_success_rate
            ),
            (5, 100, 100)
        );
        assert_eq!(
            (
                c.success_rate_minimum_hosts,
                c.success_rate_request_volume,
                c.success_rate_stdev_factor,
                c.enforcing_success_rate
            ),
            (5, 100, 1900, 100)
        );
        assert_eq!(
            (
                c.failure_percentage_threshold,
                c.enforcing_failure_percentage,
                c.enforcing_failure_percentage_local_origin,
                c.failure_percentage_minimum_hosts,
                c.failure_percentage_request_volume
            ),
            (85, 0, 0, 5, 50)
        );
        assert!(c.successful_active_health_check_uneject_host);
        c.validate().unwrap();
    }

    #[test]
    fn grpc_preset_enforces_failure_percentage() {
        // gRFC A50: FailurePercentageEjection.enforcement_percentage defaults to 100.
        let g = OutlierConfig::grpc();
        assert_eq!(g.variant, Variant::Grpc);
        assert_eq!(g.enforcing_failure_percentage, 100);
        assert_eq!(g.enforcing_success_rate, 100);
        assert_eq!(g.max_ejection_percent, 10);
        assert_eq!(g.effective_max_ejection_time(), Nanos::from_secs(300));
        g.validate().unwrap();
    }

    #[test]
    fn unset_max_follows_a_larger_base() {
        // outlier_detection_impl.cc: max(DEFAULT_MAX_EJECTION_TIME_MS, base).
        let c = OutlierConfig {
            base_ejection_time: Nanos::from_secs(600),
            ..OutlierConfig::default()
        };
        assert_eq!(c.effective_max_ejection_time(), Nanos::from_secs(600));
        c.validate().unwrap();
    }

    #[test]
    fn rejects_out_of_range_fields_by_name() {
        let bad = |c: OutlierConfig| c.validate().unwrap_err();
        let d = OutlierConfig::default;
        let e = bad(OutlierConfig {
            interval: Nanos::ZERO,
            ..d()
        });
        assert_eq!(e.field, "outlier.interval");
        let e = bad(OutlierConfig {
            base_ejection_time: Nanos::ZERO,
            ..d()
        });
        assert_eq!(e.field, "outlier.base_ejection_time");
        let e = bad(OutlierConfig {
            max_ejection_time: Some(Nanos::from_secs(10)),
            ..d()
        });
        assert_eq!(e.field, "outlier.max_ejection_time");
        assert!(
            e.problem.contains("10s") && e.problem.contains("30s"),
            "{e}"
        );
        // gRPC accepts it and uses max(base, max).
        OutlierConfig {
            max_ejection_time: Some(Nanos::from_secs(10)),
            ..OutlierConfig::grpc()
        }
        .validate()
        .unwrap();
        let e = bad(OutlierConfig {
            max_ejection_percent: 101,
            ..d()
        });
        assert_eq!(e.field, "outlier.max_ejection_percent");
        assert!(e.problem.contains("101") && e.problem.contains("0 to 100"));
        let e = bad(OutlierConfig {
            enforcing_failure_percentage_local_origin: 200,
            ..d()
        });
        assert_eq!(e.field, "outlier.enforcing_failure_percentage_local_origin");
        let e = bad(OutlierConfig {
            failure_percentage_threshold: 101,
            ..d()
        });
        assert_eq!(e.field, "outlier.failure_percentage_threshold");
    }

    #[test]
    fn serde_round_trips_with_duration_strings() {
        let json = r#"{"variant":"grpc","interval":"1s","max_ejection_time":"2m","max_ejection_percent":50}"#;
        let c: OutlierConfig = serde_json::from_str(json).unwrap();
        assert_eq!(c.variant, Variant::Grpc);
        assert_eq!(c.interval, Nanos::from_secs(1));
        assert_eq!(c.max_ejection_time, Some(Nanos::from_secs(120)));
        assert_eq!(c.max_ejection_percent, 50);
        assert_eq!(c.consecutive_5xx, 5, "unset fields keep their defaults");
        let back: OutlierConfig =
            serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        assert!(serde_json::from_str::<OutlierConfig>(r#"{"intervall":"1s"}"#).is_err());
    }
}
