//! `least_request`: Envoy's least request balancer.
//!
//! Source: Envoy `source/extensions/load_balancing_policies/least_request/least_request_lb.cc`
//! and `least_request.proto`; the weighted path is `EdfLoadBalancerBase` in
//! `common/load_balancer_impl.cc` (reference §1.4, §1.2).
//!
//! # Equal weights: pick the least busy of a few
//!
//! - `N_CHOICES` (default): draw `choice_count` hosts (default 2) uniformly
//!   **with replacement** — each draw is `random % n`, so the same host can
//!   come up twice — and keep the one with the fewest active requests. Ties
//!   keep the earlier draw (Envoy compares with a strict `<`). With two hosts,
//!   one busy, the busy host is still picked 25 % of the time: both draws land
//!   on it with probability ¼ (the proto says so).
//! - `FULL_SCAN`: scan every member for the fewest active requests; ties are
//!   broken by reservoir sampling (the k-th tied host seen replaces the
//!   candidate with probability 1/k), so each tied host is equally likely.
//!
//! # Unequal weights (or slow start): EDF on dynamic weights
//!
//! When [`Hosts::weighted`] holds, Envoy runs the EDF scheduler
//! ([`Edf`]) with the dynamic weight
//! `w_eff / (active + 1)^active_request_bias`, where `w_eff` is the
//! configured weight times the slow-start factor ([`Hosts::weight`]). As in
//! Envoy, a host's weight is evaluated only when it is (re)inserted into the
//! schedule, i.e. right after it is picked, so the weights of the other hosts
//! are as stale as their last pick. Bias `1.0` (default) gives `w/(active+1)`;
//! bias `0` ignores load and behaves as weighted round robin. One schedule is
//! kept per [`Subset`] and rebuilt after any host-set change, starting at a
//! random point (as `round_robin` does). A one-member subset returns its host.
//!
//! Not modelled: newer Envoy also switches to EDF with equal weights when
//! `active_request_bias` is set explicitly (behind the runtime flag
//! `least_request_lb_active_request_bias_forces_weighted`); a config file
//! here cannot tell an explicit `1.0` from the default, so equal weights
//! always take the unweighted path. Envoy's optional counting of pending
//! requests is not modelled either: the load is the in-flight count. Envoy
//! replaces an invalid bias with 1.0 at run time; we refuse it up front.
//!
//! # Calling order
//!
//! [`LeastRequestConfig::try_new`] builds the algorithm; the
//! [`LoadBalancer`](super::LoadBalancer) then calls
//! [`Algorithm::on_hosts_changed`] on membership or health changes and
//! [`Algorithm::pick`] per request. Active counts live in [`Hosts`], so there
//! are no `on_start`/`on_complete` handlers and no timers.

use super::{Algorithm, Edf, Hosts, PerSubset, Subset};
use crate::endpoint::PickRequest;
use crate::error::{check_range, ConfigError};
use crate::rng::{below, Rng};
use crate::time::Time;

/// How the unweighted path chooses its candidates (Envoy `selection_method`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum SelectionMethod {
    /// Draw `choice_count` hosts with replacement; fewest active wins.
    #[default]
    NChoices,
    /// Scan all hosts; fewest active wins, ties broken uniformly at random.
    FullScan,
}

/// Configuration of `least_request` (Envoy `LeastRequest`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct LeastRequestConfig {
    /// Hosts drawn per pick in `n_choices` mode (Envoy default 2; 2 to
    /// [`MAX_CHOICE_COUNT`]).
    pub choice_count: u32,
    /// Exponent of `(active + 1)` dividing the weight on the weighted path
    /// (Envoy default 1.0; at least 0, finite).
    pub active_request_bias: f64,
    /// Sampling or scanning on the unweighted path (Envoy default `N_CHOICES`).
    pub selection_method: SelectionMethod,
}

impl Default for LeastRequestConfig {
    fn default() -> Self {
        LeastRequestConfig {
            choice_count: 2,
            active_request_bias: 1.0,
            selection_method: SelectionMethod::NChoices,
        }
    }
}

/// The largest `choice_count` accepted. Envoy sets no upper bound; gRPC's
/// `least_request_experimental` lowers anything above 10 to 10 (gRFC A48,
/// "Maximum limit for choice_count": config may be untrusted, and P2C is
/// already nearly as good as a full scan). Every choice is one random draw
/// per pick, so we refuse values above 100 rather than let a typo cost
/// millions of draws per request; `full_scan` covers the "look at all" case.
pub const MAX_CHOICE_COUNT: u32 = 100;

impl LeastRequestConfig {
    /// Checks every field and builds the algorithm.
    pub fn try_new(&self) -> Result<LeastRequest, ConfigError> {
        check_range(
            "least_request.choice_count",
            self.choice_count,
            2,
            MAX_CHOICE_COUNT,
        )?;
        let bias = self.active_request_bias;
        if !(bias >= 0.0 && bias.is_finite()) {
            return Err(ConfigError::new(
                "least_request.active_request_bias",
                format!("{bias} is out of range; expected a finite number >= 0"),
            ));
        }
        Ok(LeastRequest {
            config: self.clone(),
            edf: PerSubset::default(),
        })
    }
}

/// Envoy least request; see the module docs.
#[derive(Clone, Debug)]
pub struct LeastRequest {
    config: LeastRequestConfig,
    edf: PerSubset<Edf>,
}

// === impl LeastRequest ===

/// The dynamic EDF weight of `i`: `w_eff / (active + 1)^bias`
/// (Envoy `LeastRequestLoadBalancer::hostWeight`).
fn dynamic_weight(bias: f64, hosts: &Hosts, i: u32, now: Time) -> f64 {
    let w = hosts.weight(i, now);
    let load = f64::from(hosts.active(i)) + 1.0;
    let dw = if bias == 0.0 {
        w
    } else if bias == 1.0 {
        w / load
    } else {
        w / crate::math::pow(load, bias)
    };
    // Keep the host in the schedule even under an absurd load: a zero
    // weight would drop it from the EDF for good.
    dw.max(f64::MIN_POSITIVE)
}

impl LeastRequest {
    fn pick_n_choices(&self, hosts: &Hosts, m: &[u32], rng: &mut dyn Rng) -> u32 {
        let n = m.len() as u64;
        let mut best = m[below(rng, n) as usize];
        for _ in 1..self.config.choice_count {
            let c = m[below(rng, n) as usize];
            if hosts.active(c) < hosts.active(best) {
                best = c;
            }
        }
        best
    }

    fn pick_full_scan(hosts: &Hosts, m: &[u32], rng: &mut dyn Rng) -> u32 {
        let mut best = m[0];
        let mut tied = 1u64;
        for &c in &m[1..] {
            let (a, b) = (hosts.active(c), hosts.active(best));
            if a < b {
                best = c;
                tied = 1;
            } else if a == b {
                tied += 1;
                if below(rng, tied) == 0 {
                    best = c;
                }
            }
        }
        best
    }
}

impl Algorithm for LeastRequest {
    fn on_hosts_changed(&mut self, _: &Hosts, _: Option<&[Option<u32>]>, _: Time) {
        self.edf.clear();
    }

    fn pick(
        &mut self,
        hosts: &Hosts,
        subset: Subset<'_>,
        _: &PickRequest,
        now: Time,
        rng: &mut dyn Rng,
    ) -> Option<u32> {
        let m = subset.members;
        if m.len() == 1 {
            return Some(m[0]);
        }
        if hosts.weighted(now) {
            let bias = self.config.active_request_bias;
            let weight = |i| dynamic_weight(bias, hosts, i, now);
            let schedule = self.edf.get_or_init(subset.key, || {
                let mut s = Edf::new(m.iter().map(|&i| (i, weight(i))));
                // A random start point, as Envoy's seeded "build with picks".
                for _ in 0..below(rng, m.len() as u64) {
                    s.pick(weight);
                }
                s
            });
            let picked = schedule.pick(weight);
            if picked.is_some() {
                return picked;
            }
        } else {
            // Weighting ended (slow start over): schedules are stale.
            self.edf.clear();
        }
        Some(match self.config.selection_method {
            SelectionMethod::NChoices => self.pick_n_choices(hosts, m, rng),
            SelectionMethod::FullScan => Self::pick_full_scan(hosts, m, rng),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::tests::{lb_with, picks};
    use crate::balance::LoadBalancer;
    use crate::endpoint::{Endpoint, EndpointId};

    fn lr(config: LeastRequestConfig, eps: Vec<Endpoint>) -> LoadBalancer {
        lb_with(Box::new(config.try_new().unwrap()), eps)
    }

    fn counts(seq: &[u32], n: usize) -> Vec<u64> {
        let mut c = vec![0u64; n];
        for &i in seq {
            c[i as usize] += 1;
        }
        c
    }

    #[test]
    fn defaults_match_envoy() {
        // least_request.proto: choice_count 2, bias 1.0, N_CHOICES.
        let d = LeastRequestConfig::default();
        assert_eq!(d.choice_count, 2);
        assert_eq!(d.active_request_bias, 1.0);
        assert_eq!(d.selection_method, SelectionMethod::NChoices);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(
            json,
            r#"{"choice_count":2,"active_request_bias":1.0,"selection_method":"n_choices"}"#
        );
        let back: LeastRequestConfig =
            serde_json::from_str(r#"{"selection_method":"full_scan"}"#).unwrap();
        assert_eq!(back.selection_method, SelectionMethod::FullScan);
        assert_eq!(back.choice_count, 2);
    }

    #[test]
    fn invalid_settings_are_refused_with_field_names() {
        let one = LeastRequestConfig {
            choice_count: 1,
            ..LeastRequestConfig::default()
        };
        let e = one.try_new().unwrap_err();
        assert_eq!(e.field, "least_request.choice_count");
        assert_eq!(e.problem, "1 is out of range; expected 2 to 100");
        // Capped at 100 (gRPC caps at 10, Envoy not at all).
        let many = |choice_count| LeastRequestConfig {
            choice_count,
            ..LeastRequestConfig::default()
        };
        assert!(many(100).try_new().is_ok());
        for n in [101, u32::MAX] {
            let e = many(n).try_new().unwrap_err();
            assert_eq!(e.field, "least_request.choice_count");
            assert_eq!(e.problem, format!("{n} is out of range; expected 2 to 100"));
        }
        for bias in [-0.5, f64::NAN, f64::INFINITY] {
            let c = LeastRequestConfig {
                active_request_bias: bias,
                ..LeastRequestConfig::default()
            };
            assert_eq!(
                c.try_new().unwrap_err().field,
                "least_request.active_request_bias"
            );
        }
        let zero_bias = LeastRequestConfig {
            active_request_bias: 0.0,
            ..LeastRequestConfig::default()
        };
        assert!(zero_bias.try_new().is_ok());
    }

    #[test]
    fn two_hosts_one_busy_picks_the_busy_one_a_quarter_of_the_time() {
        // least_request.proto: with 2 hosts and N_CHOICES=2, both draws land
        // on the busy host with probability 1/2 · 1/2 = 1/4.
        let mut lb = lr(
            LeastRequestConfig::default(),
            (0..2).map(Endpoint::new).collect(),
        );
        lb.on_start(EndpointId(1), Time(0));
        let n = 20_000;
        let busy = picks(&mut lb, n, 11).iter().filter(|&&i| i == 1).count() as f64;
        // Binomial(20000, 0.25): mean 5000, sd = sqrt(20000·0.25·0.75) ≈ 61.2;
        // allow 5 sd ≈ 306.
        assert!((busy - 5000.0).abs() < 306.0, "{busy}");
    }

    #[test]
    fn more_choices_pick_the_busy_host_less_often() {
        // choice_count 4: the busy host of two wins only if all 4 draws hit it:
        // 1/16 = 6.25 %. n = 16000: mean 1000, sd = sqrt(16000·(1/16)·(15/16))
        // ≈ 30.6; 5 sd ≈ 153.
        let c = LeastRequestConfig {
            choice_count: 4,
            ..LeastRequestConfig::default()
        };
        let mut lb = lr(c, (0..2).map(Endpoint::new).collect());
        lb.on_start(EndpointId(0), Time(0));
        let busy = picks(&mut lb, 16_000, 12)
            .iter()
            .filter(|&&i| i == 0)
            .count() as f64;
        assert!((busy - 1000.0).abs() < 153.0, "{busy}");
    }

    #[test]
    fn full_scan_always_picks_a_least_loaded_host_and_splits_ties_evenly() {
        let c = LeastRequestConfig {
            selection_method: SelectionMethod::FullScan,
            ..LeastRequestConfig::default()
        };
        let mut lb = lr(c, (0..5).map(Endpoint::new).collect());
        // Active: [2, 0, 1, 0, 3] → hosts 1 and 3 tie for least.
        for (id, k) in [(0, 2), (2, 1), (4, 3)] {
            for _ in 0..k {
                lb.on_start(EndpointId(id), Time(0));
            }
        }
        let seq = picks(&mut lb, 10_000, 13);
        let c = counts(&seq, 5);
        assert_eq!(c[0] + c[2] + c[4], 0, "{c:?}");
        // Reservoir sampling: each tie wins with 1/2. sd = sqrt(10000/4) = 50;
        // allow 5 sd.
        assert!((c[1] as f64 - 5000.0).abs() < 250.0, "{c:?}");
        // Once host 1 is busier, host 3 alone is least loaded.
        lb.on_start(EndpointId(1), Time(0));
        assert!(picks(&mut lb, 100, 14).iter().all(|&i| i == 3));
    }

    #[test]
    fn one_member_subset_returns_it() {
        for method in [SelectionMethod::NChoices, SelectionMethod::FullScan] {
            let c = LeastRequestConfig {
                selection_method: method,
                ..LeastRequestConfig::default()
            };
            let mut lb = lr(c, vec![Endpoint::new(7).with_weight(3)]);
            lb.on_start(EndpointId(7), Time(0));
            assert_eq!(picks(&mut lb, 5, 1), [7; 5]);
        }
    }

    #[test]
    fn edf_shares_with_idle_hosts_match_weights_exactly() {
        // Unequal weights → EDF on w/(0+1) = w. Weights 1, 2, 4, 8 are exact in
        // binary, so the schedule repeats every 15 picks and any 15k
        // consecutive picks give exactly k·w each (Envoy EDF, reference §1.2).
        let eps = [1, 2, 4, 8]
            .iter()
            .enumerate()
            .map(|(i, &w)| Endpoint::new(i as u32).with_weight(w))
            .collect();
        let mut lb = lr(LeastRequestConfig::default(), eps);
        let seq = picks(&mut lb, 150, 15);
        assert_eq!(counts(&seq, 4), [10, 20, 40, 80]);
        for window in seq.chunks(15) {
            assert_eq!(counts(window, 4), [1, 2, 4, 8], "{seq:?}");
        }
    }

    #[test]
    fn edf_weights_are_divided_by_active_plus_one() {
        // Weights 2 and 1; host 0 has 3 active → dynamic weights 2/4 = 0.5 and
        // 1/1 = 1, so host 1 gets 2 of every 3 picks once host 0's first
        // (stale) deadline is used up. Deadlines: h0 2, 4, 6, …; h1 1, 2, 3, …
        // After the first h0 re-insertion all weights are current.
        let eps = vec![
            Endpoint::new(0).with_weight(2),
            Endpoint::new(1).with_weight(1),
        ];
        let mut lb = lr(LeastRequestConfig::default(), eps);
        for _ in 0..3 {
            lb.on_start(EndpointId(0), Time(0));
        }
        let seq = picks(&mut lb, 3003, 16);
        let c = counts(&seq, 2);
        // Exact share 1/3 for host 0, up to the start-up transient of a few picks.
        assert!((c[0] as i64 - 1001).abs() <= 3, "{c:?}");
        // bias 0: plain weighted round robin, load ignored: 2/3 to host 0.
        let zero = LeastRequestConfig {
            active_request_bias: 0.0,
            ..LeastRequestConfig::default()
        };
        let eps = vec![
            Endpoint::new(0).with_weight(2),
            Endpoint::new(1).with_weight(1),
        ];
        let mut lb = lr(zero, eps);
        for _ in 0..3 {
            lb.on_start(EndpointId(0), Time(0));
        }
        let c = counts(&picks(&mut lb, 3000, 17), 2);
        assert_eq!(c, [2000, 1000]);
    }

    proptest::proptest! {
        #[test]
        fn edf_path_converges_to_random_weights(
            weights in proptest::collection::vec(1u32..=10, 2..=6),
            seed in 0u64..1000,
        ) {
            proptest::prop_assume!(weights.iter().any(|&w| w != weights[0]));
            let eps = weights
                .iter()
                .enumerate()
                .map(|(i, &w)| Endpoint::new(i as u32).with_weight(w))
                .collect();
            let mut lb = lr(LeastRequestConfig::default(), eps);
            let total: u32 = weights.iter().sum();
            let rounds = 50;
            let seq = picks(&mut lb, (total * rounds) as usize, seed);
            let c = counts(&seq, weights.len());
            // EDF is deterministic after its random start: over 50 periods each
            // host is within one pick (plus float-rounding ties) of 50·w.
            for (i, &w) in weights.iter().enumerate() {
                let want = i64::from(w * rounds);
                proptest::prop_assert!((c[i] as i64 - want).abs() <= 2, "{:?} {:?}", weights, c);
            }
        }
    }
}
