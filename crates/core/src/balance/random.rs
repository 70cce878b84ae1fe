//! `random`: uniform (Envoy) or weighted (nginx) random choice.
//!
//! - **Unweighted** (default): Envoy's random balancer
//!   (`source/extensions/load_balancing_policies/random/random_lb.cc`,
//!   reference §1.3) picks `hosts[r % n]`: uniform over the members, host
//!   weights ignored even when they differ. We draw with
//!   [`index`], which is the unbiased form of `r % n`.
//!   (Envoy reuses the same `r` to choose the priority level; there are no
//!   priorities here, so nothing is correlated.)
//! - **Weighted**: nginx's random balancer
//!   (`src/http/modules/ngx_http_upstream_random_module.c`, §1.11) lays the
//!   peers' weights end to end, draws `x` uniformly in `[0, total)` and
//!   binary-searches the cumulative ranges. We use the effective weights
//!   [`Hosts::weight`] (configured weight × slow-start factor), so the ranges
//!   are `f64` prefix sums and `x = unit × total`. The prefix sums are built
//!   lazily per [`Subset`] and dropped on every host-set change; while some
//!   host is in slow start they change with time, so they are recomputed on
//!   every pick instead of cached. nginx's "after 20 failed draws fall back
//!   to round robin" concerns peers that are down or full, which never reach
//!   a subset here.
//!
//! A one-member subset returns its host without drawing.
//!
//! # Calling order
//!
//! [`RandomConfig::try_new`] builds the algorithm;
//! [`Algorithm::on_hosts_changed`] drops cached ranges; [`Algorithm::pick`]
//! draws. No load inputs, no timers.

use super::{Algorithm, Hosts, PerSubset, Subset};
use crate::endpoint::PickRequest;
use crate::error::ConfigError;
use crate::rng::{index, unit, Rng};
use crate::time::Time;

/// Configuration of `random`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct RandomConfig {
    /// Pick in proportion to weight (nginx) instead of uniformly (Envoy,
    /// default `false`).
    pub weighted: bool,
}

impl RandomConfig {
    /// Builds the algorithm (every setting is valid).
    pub fn try_new(&self) -> Result<Random, ConfigError> {
        Ok(Random {
            weighted: self.weighted,
            ranges: PerSubset::default(),
        })
    }
}

/// Uniform or weighted random choice; see the module docs.
#[derive(Clone, Debug, Default)]
pub struct Random {
    weighted: bool,
    /// Per subset: cumulative effective weights, aligned with the members.
    ranges: PerSubset<Vec<f64>>,
}

/// The member position whose range `[prefix[k-1], prefix[k])` holds `x`.
fn locate(prefix: &[f64], x: f64) -> usize {
    prefix
        .partition_point(|&p| p <= x)
        .min(prefix.len().saturating_sub(1))
}

fn prefix_sums(hosts: &Hosts, members: &[u32], now: Time) -> Vec<f64> {
    let mut sum = 0.0;
    members
        .iter()
        .map(|&i| {
            sum += hosts.weight(i, now);
            sum
        })
        .collect()
}

impl Algorithm for Random {
    fn on_hosts_changed(&mut self, _: &Hosts, _: Option<&[Option<u32>]>, _: Time) {
        self.ranges.clear();
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
        if !self.weighted {
            return Some(m[index(rng, m.len())]);
        }
        let fresh;
        let prefix: &[f64] = if hosts.any_in_slow_start(now) {
            fresh = prefix_sums(hosts, m, now);
            &fresh
        } else {
            self.ranges
                .get_or_init(subset.key, || prefix_sums(hosts, m, now))
        };
        let total = prefix[prefix.len() - 1];
        Some(m[locate(prefix, unit(rng) * total)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::tests::{lb_with, picks};
    use crate::balance::{CommonConfig, LoadBalancer, SlowStartConfig};
    use crate::endpoint::{Endpoint, EndpointChange, PickRequest};
    use crate::time::Nanos;
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn weighted_eps(weights: &[u32]) -> Vec<Endpoint> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Endpoint::new(i as u32).with_weight(w))
            .collect()
    }

    fn counts(seq: &[u32], n: usize) -> Vec<f64> {
        let mut c = vec![0.0; n];
        for &i in seq {
            c[i as usize] += 1.0;
        }
        c
    }

    /// Asserts each count is within `k` binomial standard deviations of `n·p`.
    fn assert_shares(c: &[f64], p: &[f64], n: f64, k: f64) {
        for (ci, pi) in c.iter().zip(p) {
            let sd = (n * pi * (1.0 - pi)).sqrt();
            assert!((ci - n * pi).abs() <= k * sd, "{c:?} vs {p:?}");
        }
    }

    #[test]
    fn locate_finds_the_range_holding_x() {
        let prefix = [1.0, 3.0, 6.0];
        // Ranges [0,1) [1,3) [3,6): the boundary belongs to the next range.
        assert_eq!(locate(&prefix, 0.0), 0);
        assert_eq!(locate(&prefix, 0.999), 0);
        assert_eq!(locate(&prefix, 1.0), 1);
        assert_eq!(locate(&prefix, 2.5), 1);
        assert_eq!(locate(&prefix, 3.0), 2);
        assert_eq!(locate(&prefix, 5.999), 2);
        // Rounding past the end stays on the last member.
        assert_eq!(locate(&prefix, 6.0), 2);
    }

    #[test]
    fn weighted_shares_converge_to_weights() {
        let c = RandomConfig { weighted: true };
        let mut lb = lb_with(Box::new(c.try_new().unwrap()), weighted_eps(&[1, 2, 3, 4]));
        let n = 100_000.0;
        let seq = picks(&mut lb, n as usize, 21);
        // p = w/10. sd = sqrt(n·p·(1−p)): 95 (p=.1), 126 (.2), 145 (.3),
        // 155 (.4); 5 sd is at most 775 picks.
        assert_shares(&counts(&seq, 4), &[0.1, 0.2, 0.3, 0.4], n, 5.0);
    }

    #[test]
    fn unweighted_ignores_weights() {
        // Envoy random_lb: weights 1 and 9 still get half each.
        let mut lb = lb_with(
            Box::new(RandomConfig::default().try_new().unwrap()),
            weighted_eps(&[1, 9]),
        );
        let n = 20_000.0;
        let seq = picks(&mut lb, n as usize, 22);
        // sd = sqrt(20000·.25) ≈ 70.7; 5 sd ≈ 354.
        assert_shares(&counts(&seq, 2), &[0.5, 0.5], n, 5.0);
    }

    #[test]
    fn one_member_subset_returns_it() {
        for weighted in [false, true] {
            let algo = RandomConfig { weighted }.try_new().unwrap();
            let mut lb = lb_with(Box::new(algo), weighted_eps(&[4]));
            assert_eq!(picks(&mut lb, 4, 1), [0; 4]);
        }
    }

    #[test]
    fn slow_start_lowers_a_new_hosts_share() {
        // Slow start 10 s, linear: a host added at 20 s has weight 0.5 at 25 s
        // (Envoy formula, reference §1.12), so it gets 0.5/1.5 = 1/3.
        let common = CommonConfig {
            slow_start: SlowStartConfig {
                window: Nanos::from_secs(10),
                ..SlowStartConfig::default()
            },
            ..CommonConfig::default()
        };
        let algo = RandomConfig { weighted: true }.try_new().unwrap();
        let mut lb = LoadBalancer::new(Box::new(algo), common).unwrap();
        lb.update(EndpointChange::Reset(weighted_eps(&[1])), Time(0))
            .unwrap();
        let t = Time(0) + Nanos::from_secs(20);
        lb.update(EndpointChange::Insert(Endpoint::new(1)), t)
            .unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(23);
        let mut pick_at = |now: Time, n: usize| -> Vec<u32> {
            (0..n)
                .map(|_| lb.pick(&PickRequest::default(), now, &mut rng).unwrap().0)
                .collect()
        };
        let n = 30_000.0;
        let seq = pick_at(t + Nanos::from_secs(5), n as usize);
        // p = 1/3: sd = sqrt(30000·(1/3)(2/3)) ≈ 81.6; 5 sd ≈ 408.
        assert_shares(&counts(&seq, 2), &[2.0 / 3.0, 1.0 / 3.0], n, 5.0);
        // After the window both weigh 1 again.
        let seq = pick_at(t + Nanos::from_secs(30), n as usize);
        assert_shares(&counts(&seq, 2), &[0.5, 0.5], n, 5.0);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        #[test]
        fn weighted_shares_converge_for_random_weights(
            weights in proptest::collection::vec(1u32..=10, 2..=8),
            seed in 0u64..1_000_000,
        ) {
            let algo = RandomConfig { weighted: true }.try_new().unwrap();
            let mut lb = lb_with(Box::new(algo), weighted_eps(&weights));
            let n = 20_000.0;
            let seq = picks(&mut lb, n as usize, seed);
            let total: u32 = weights.iter().sum();
            let p: Vec<f64> = weights.iter().map(|&w| f64::from(w) / f64::from(total)).collect();
            let c = counts(&seq, weights.len());
            // 6 sd per host: with at most 8 hosts × 24 cases the chance of a
            // false failure is below 200 × 2e-9.
            for (ci, pi) in c.iter().zip(&p) {
                let sd = (n * pi * (1.0 - pi)).sqrt();
                proptest::prop_assert!((ci - n * pi).abs() <= 6.0 * sd, "{:?} {:?}", c, p);
            }
        }
    }
}
