//! `smooth_round_robin`: nginx's default balancer, smooth weighted round robin.
//!
//! Source: nginx `src/http/ngx_http_upstream_round_robin.c`
//! (`ngx_http_upstream_get_peer`, `ngx_http_upstream_free_round_robin_peer`),
//! reference §1.11.
//!
//! # The pick
//!
//! Every peer has a configured `weight`, an `effective` weight (starts at
//! `weight`) and a `current` weight (starts at 0). Each pick:
//!
//! 1. for every member: `current += effective`, `total += effective`, and if
//!    `effective < weight` then `effective += 1` (recovery);
//! 2. the member with the largest `current` wins (ties: the first in id
//!    order — nginx compares with a strict `>`);
//! 3. the winner's `current -= total`.
//!
//! Over `Σ weight` picks each peer is chosen exactly `weight` times, and a
//! heavy peer's picks are interleaved with the others rather than bunched:
//! weights 5, 1, 1 give `a a b a c a a`, then repeat.
//!
//! # Passive failures
//!
//! When an attempt fails, nginx lowers the peer's effective weight by
//! `weight / max_fails` (integer division, floored at 0); step 1 then gives
//! it back one unit per pick. With the default `max_fails = 1` a failure
//! drops the peer's effective weight to 0, so its share recovers over the
//! next `weight` picks. `max_fails = 0` turns failure accounting off, as in
//! nginx. A failure is any outcome that is not a success
//! ([`Outcome::is_success`](crate::endpoint::Outcome::is_success)), except
//! [`LocalReject`](crate::endpoint::Outcome::LocalReject), which says nothing
//! about the peer. nginx also takes a peer out for `fail_timeout` once
//! `fails >= max_fails`; here that is the job of outlier detection and health
//! flags, which remove hosts from the subset.
//!
//! Weights are the configured endpoint weights (nginx open source has no slow
//! start). `current` and `effective` are kept per host, as nginx keeps them
//! per peer, and follow the host through membership changes (a new host
//! starts at `current = 0`, `effective = weight`). Hosts outside the subset
//! (unhealthy, ejected, another zone) are skipped and keep their `current`
//! unchanged, as nginx skips a peer that is down or has failed
//! (`continue` before `current_weight += effective_weight`): when a host
//! comes back, it resumes with the current weight it had, instead of the
//! whole rotation starting over. A one-member subset returns its host
//! (nginx's `single` peer path, which also skips failure accounting).
//!
//! # Calling order
//!
//! [`SmoothRoundRobinConfig::try_new`] builds the algorithm. Inputs:
//! [`Algorithm::on_hosts_changed`], [`Algorithm::on_complete`] (failure
//! accounting). Decision: [`Algorithm::pick`]. Getter:
//! [`SmoothRoundRobin::effective_weight`]. No timers.

use super::{remap_state, Algorithm, Hosts, Subset};
use crate::endpoint::{Completion, Outcome, PickRequest};
use crate::error::ConfigError;
use crate::rng::Rng;
use crate::time::Time;

/// Configuration of `smooth_round_robin` (nginx `server ... max_fails=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct SmoothRoundRobinConfig {
    /// A failure lowers the effective weight by `weight / max_fails`
    /// (nginx default 1; 0 disables failure accounting).
    pub max_fails: u32,
}

impl Default for SmoothRoundRobinConfig {
    fn default() -> Self {
        SmoothRoundRobinConfig { max_fails: 1 }
    }
}

impl SmoothRoundRobinConfig {
    /// Builds the algorithm (every setting is valid).
    pub fn try_new(&self) -> Result<SmoothRoundRobin, ConfigError> {
        Ok(SmoothRoundRobin {
            max_fails: self.max_fails,
            effective: Vec::new(),
            current: Vec::new(),
        })
    }
}

/// nginx smooth weighted round robin; see the module docs.
#[derive(Clone, Debug)]
pub struct SmoothRoundRobin {
    max_fails: u32,
    /// Effective weight per host index.
    effective: Vec<i64>,
    /// Current weight per host index (nginx `current_weight`).
    current: Vec<i64>,
}

fn weight(hosts: &Hosts, i: u32) -> i64 {
    i64::from(hosts.get(i).endpoint.weight)
}

// === impl SmoothRoundRobin ===

impl SmoothRoundRobin {
    /// The effective weight of host `index` (nginx `effective_weight`), or
    /// `None` for an unknown index.
    pub fn effective_weight(&self, index: u32) -> Option<i64> {
        self.effective.get(index as usize).copied()
    }

    /// Makes `effective` and `current` match the host set, keeping each
    /// effective weight at most the host's weight (a lowered weight takes
    /// effect at once).
    fn sync(&mut self, hosts: &Hosts, remap: Option<&[Option<u32>]>) {
        match remap {
            Some(r) => {
                remap_state(&mut self.effective, r, |new| weight(hosts, new as u32));
                remap_state(&mut self.current, r, |_| 0);
            }
            None if self.effective.len() != hosts.len() || self.current.len() != hosts.len() => {
                self.effective = (0..hosts.len() as u32).map(|i| weight(hosts, i)).collect();
                self.current = vec![0; hosts.len()];
            }
            None => {}
        }
        for (i, e) in self.effective.iter_mut().enumerate() {
            *e = (*e).min(weight(hosts, i as u32));
        }
    }
}

impl Algorithm for SmoothRoundRobin {
    fn on_hosts_changed(&mut self, hosts: &Hosts, remap: Option<&[Option<u32>]>, _: Time) {
        self.sync(hosts, remap);
    }

    fn pick(
        &mut self,
        hosts: &Hosts,
        subset: Subset<'_>,
        _: &PickRequest,
        _: Time,
        _: &mut dyn Rng,
    ) -> Option<u32> {
        let m = subset.members;
        let &first = m.first()?;
        if m.len() == 1 {
            return Some(first);
        }
        if self.effective.len() != hosts.len() || self.current.len() != hosts.len() {
            self.sync(hosts, None);
        }
        let mut total = 0i64;
        let mut best = first as usize;
        for &i in m {
            let i = i as usize;
            let eff = &mut self.effective[i];
            self.current[i] += *eff;
            total += *eff;
            if *eff < weight(hosts, i as u32) {
                *eff += 1;
            }
            if self.current[i] > self.current[best] {
                best = i;
            }
        }
        self.current[best] -= total;
        Some(best as u32)
    }

    fn on_complete(&mut self, hosts: &Hosts, index: u32, done: &Completion, _: Time) {
        let failed = !done.outcome.is_success() && done.outcome != Outcome::LocalReject;
        if !failed || self.max_fails == 0 {
            return;
        }
        if let Some(e) = self.effective.get_mut(index as usize) {
            *e = (*e - weight(hosts, index) / i64::from(self.max_fails)).max(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::tests::{lb_with, picks};
    use crate::balance::SlowStartConfig;
    use crate::endpoint::{Endpoint, EndpointChange, PickRequest};
    use crate::script::{run_table, table};
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

    fn swrr(weights: &[u32]) -> crate::balance::LoadBalancer {
        let algo = SmoothRoundRobinConfig::default().try_new().unwrap();
        lb_with(Box::new(algo), weighted_eps(weights))
    }

    fn letters(seq: &[u32]) -> String {
        seq.iter().map(|&i| char::from(b'a' + i as u8)).collect()
    }

    #[test]
    fn weights_five_one_one_give_the_nginx_sequence() {
        // The sequence from the nginx commit that introduced smooth WRR
        // (and reference §1.11): a a b a c a a, then again.
        let mut lb = swrr(&[5, 1, 1]);
        assert_eq!(letters(&picks(&mut lb, 14, 0)), "aabacaaaabacaa");
    }

    #[test]
    fn equal_weights_rotate_in_id_order() {
        let mut lb = swrr(&[1, 1, 1]);
        assert_eq!(letters(&picks(&mut lb, 6, 0)), "abcabc");
    }

    /// nginx skips a peer that is down without touching its
    /// `current_weight`, so a peer that comes back resumes where it was
    /// rather than restarting everyone's rotation. Weights 1, 1, 1:
    ///  a: currents (1,1,1) total 3 → a, (−2,1,1); b: (−1,2,2) → b, (−1,−1,2).
    ///  c goes down; over {a, b}: (0,0) → a, (−2,0); (−1,1) → b, (−1,−1).
    ///  c is back with its 2: (0,0,3) → c. Resetting the currents on the
    ///  health change would give a here (all at 1, ties to the first).
    #[test]
    fn a_host_that_comes_back_keeps_its_current_weight() {
        use crate::balance::HealthFlag;
        use crate::endpoint::EndpointId;
        let mut lb = swrr(&[1, 1, 1]);
        assert_eq!(letters(&picks(&mut lb, 2, 0)), "ab");
        lb.set_health(EndpointId(2), HealthFlag::Outlier, true, Time(1));
        assert_eq!(letters(&picks(&mut lb, 2, 0)), "ab");
        lb.set_health(EndpointId(2), HealthFlag::Outlier, false, Time(2));
        assert_eq!(letters(&picks(&mut lb, 4, 0)), "cabc");
    }

    #[test]
    fn a_new_host_starts_at_zero_and_the_others_keep_their_place() {
        // Weights 2, 1: (2,1) → a, (−1,1); (1,2) → b, (1,−1).
        let mut lb = swrr(&[2, 1]);
        assert_eq!(letters(&picks(&mut lb, 2, 0)), "ab");
        lb.update(EndpointChange::Insert(Endpoint::new(2)), Time(1))
            .unwrap();
        // c (weight 1) joins at 0, total 4: (3,0,1) → a, (−1,0,1);
        // (1,1,2) → c, (1,1,−2); (3,2,−1) → a, (−1,2,−1); (1,3,0) → b.
        // Starting everyone over at 0 would give a b c a.
        assert_eq!(letters(&picks(&mut lb, 4, 0)), "acab");
    }

    #[test]
    fn one_member_subset_returns_it() {
        let mut lb = swrr(&[3]);
        assert_eq!(picks(&mut lb, 3, 0), [0, 0, 0]);
    }

    #[test]
    fn defaults_match_nginx() {
        assert_eq!(SmoothRoundRobinConfig::default().max_fails, 1);
        let c: SmoothRoundRobinConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, SmoothRoundRobinConfig { max_fails: 1 });
        assert!(
            serde_json::from_str::<SmoothRoundRobinConfig>(r#"{"fail_timeout":"10s"}"#).is_err()
        );
    }

    /// Runs the script on a bare algorithm over weights `a=2, b=2`, printing
    /// each pick and the effective weights after the step.
    fn failure_timeline(max_fails: u32) -> String {
        let mut hosts = Hosts::new(SlowStartConfig::default());
        let remap = hosts
            .apply(EndpointChange::Reset(weighted_eps(&[2, 2])), Time(0))
            .unwrap();
        let mut algo = SmoothRoundRobinConfig { max_fails }.try_new().unwrap();
        algo.on_hosts_changed(&hosts, Some(&remap), Time(0));
        let members = [0u32, 1];
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
        let steps = [
            (0, "pick"),
            (1, "pick"),
            (2, "fail b"),
            (3, "pick"),
            (4, "pick"),
            (5, "pick"),
            (6, "pick"),
            (7, "pick"),
            (8, "ok a"),
        ];
        run_table(&steps, |now, ev| {
            let what = match *ev {
                "pick" => {
                    let subset = Subset {
                        key: 1,
                        members: &members,
                    };
                    let i = algo
                        .pick(&hosts, subset, &PickRequest::default(), now, &mut rng)
                        .unwrap();
                    format!("pick {}", letters(&[i]))
                }
                "fail b" | "ok a" => {
                    let (index, outcome) = if *ev == "fail b" {
                        (1, Outcome::Status(502))
                    } else {
                        (0, Outcome::OK)
                    };
                    let done = Completion {
                        latency: Nanos::from_millis(1),
                        outcome,
                    };
                    algo.on_complete(&hosts, index, &done, now);
                    ev.to_string()
                }
                _ => unreachable!(),
            };
            let e = |i| algo.effective_weight(i).unwrap();
            format!("{what} | effective {} {}", e(0), e(1))
        })
    }

    #[test]
    fn a_failure_zeroes_the_effective_weight_which_recovers_by_one_per_pick() {
        // Weights a=2, b=2, max_fails 1. Currents (a, b), total 4 per pick:
        //  pick: (2,2) → a, (−2,2); pick: (0,4) → b, (0,0).
        //  fail b: effective b −= 2/1 → 0.
        //  pick: a 0+2=2, b 0+0=0, total 2, eff b → 1; a wins → (0,0).
        //  pick: a 2, b 1, total 3, eff b → 2; a wins → (−1,1).
        //  pick: a 1, b 3, total 4 → b → (1,−1); pick: (3,1) → a → (−1,1);
        //  pick: (1,3) → b. A success changes nothing.
        assert_eq!(
            failure_timeline(1),
            table(
                "
                0s  | pick a | effective 2 2
                1ms | pick b | effective 2 2
                2ms | fail b | effective 2 0
                3ms | pick a | effective 2 1
                4ms | pick a | effective 2 2
                5ms | pick b | effective 2 2
                6ms | pick a | effective 2 2
                7ms | pick b | effective 2 2
                8ms | ok a   | effective 2 2
                "
            )
        );
    }

    #[test]
    fn max_fails_zero_disables_failure_accounting() {
        assert_eq!(
            failure_timeline(0),
            table(
                "
                0s  | pick a | effective 2 2
                1ms | pick b | effective 2 2
                2ms | fail b | effective 2 2
                3ms | pick a | effective 2 2
                4ms | pick b | effective 2 2
                5ms | pick a | effective 2 2
                6ms | pick b | effective 2 2
                7ms | pick a | effective 2 2
                8ms | ok a   | effective 2 2
                "
            )
        );
    }

    #[test]
    fn max_fails_divides_the_penalty() {
        // weight 5, max_fails 2: a failure costs 5/2 = 2 (integer division).
        let mut hosts = Hosts::new(SlowStartConfig::default());
        let remap = hosts
            .apply(EndpointChange::Reset(weighted_eps(&[5, 1])), Time(0))
            .unwrap();
        let mut algo = SmoothRoundRobinConfig { max_fails: 2 }.try_new().unwrap();
        algo.on_hosts_changed(&hosts, Some(&remap), Time(0));
        let fail = Completion {
            latency: Nanos::ZERO,
            outcome: Outcome::Timeout,
        };
        algo.on_complete(&hosts, 0, &fail, Time(1));
        assert_eq!(algo.effective_weight(0), Some(3));
        algo.on_complete(&hosts, 0, &fail, Time(2));
        assert_eq!(algo.effective_weight(0), Some(1));
        algo.on_complete(&hosts, 0, &fail, Time(3));
        assert_eq!(algo.effective_weight(0), Some(0), "floored at zero");
        // A local rejection says nothing about the host.
        let local = Completion {
            latency: Nanos::ZERO,
            outcome: Outcome::LocalReject,
        };
        algo.on_complete(&hosts, 1, &local, Time(4));
        assert_eq!(algo.effective_weight(1), Some(1));
        // Effective weight follows its host through a membership change.
        let remap = hosts
            .apply(EndpointChange::Insert(Endpoint::new(7)), Time(5))
            .unwrap();
        algo.on_hosts_changed(&hosts, Some(&remap), Time(5));
        assert_eq!(algo.effective_weight(0), Some(0));
        assert_eq!(algo.effective_weight(2), Some(1));
    }

    proptest::proptest! {
        #[test]
        fn each_period_gives_every_host_exactly_its_weight(
            weights in proptest::collection::vec(1u32..=10, 1..=8),
        ) {
            let mut lb = swrr(&weights);
            let period: u32 = weights.iter().sum();
            let seq = picks(&mut lb, 2 * period as usize, 0);
            for window in seq.chunks(period as usize) {
                let mut c = vec![0u32; weights.len()];
                for &i in window {
                    c[i as usize] += 1;
                }
                proptest::prop_assert_eq!(&c, &weights);
            }
        }
    }
}
