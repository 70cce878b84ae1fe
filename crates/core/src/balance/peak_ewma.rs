//! `peak_ewma`: power of two choices over a peak-sensitive latency estimate.
//!
//! Sources: tower `tower/src/load/peak_ewma.rs` (the estimator) and
//! `tower/src/balance/p2c/service.rs` (the pick); Finagle
//! `loadbalancer/PeakEwma.scala`, which tower derives from; linkerd2-proxy for
//! the defaults (reference §1.7).
//!
//! # Estimate
//!
//! Each host keeps an RTT estimate `est` (f64 nanoseconds) and the instant
//! `stamp` it was last updated. A new host starts at `default_rtt` (linkerd:
//! 30 ms), stamped when it was added. When an attempt completes with latency
//! `rtt` at `now`:
//!
//! - if `rtt > est`, the estimate jumps to it (the *peak*);
//! - otherwise it decays toward the sample: `w = exp(−(now − stamp)/τ)`,
//!   `est = est·w + rtt·(1 − w)`, with `τ = decay` (10 s in linkerd and
//!   Finagle);
//!
//! and `stamp = now`. Reading the estimate at `now`
//! ([`PeakEwma::estimate`]) decays it toward zero as tower's `load()` does
//! (an update with `rtt = 0`): `est·exp(−(now − stamp)/τ)`. An idle host
//! therefore looks faster and faster until it is tried again, so a host that
//! was slow once is probed again later.
//!
//! **Difference from tower:** tower's `load()` *stores* the decayed value
//! every time P2C looks at a host, so its next completion is compared with,
//! and blended into, the read-decayed value. Here reads never mutate: a
//! completion is compared with and blended into the estimate as of the last
//! completion. The two agree exactly when the host was not sampled in between;
//! otherwise tower registers more completions as peaks.
//!
//! # Pick
//!
//! Two *distinct* members are drawn uniformly ([`distinct_pair`], tower's
//! `sample_floyd2`); the one with the lower cost
//! `estimate(now) × (active + 1)` wins, ties going to the first draw. A
//! one-member subset returns its host. Host weights are ignored, as in tower.
//! The in-flight count is [`Hosts::active`]: tower counts pending requests
//! with its handles, which the facade's `active` already does, so `on_start`
//! has nothing to record and is not implemented.
//!
//! # Failure penalty (optional)
//!
//! tower and linkerd record every completion's latency, so a host that fails
//! fast (503 or 429 in a millisecond) looks *fast* and attracts traffic — the
//! classic "black hole" that linkerd users report. With
//! `failure_penalty.mode = "penalize"`, a completion whose outcome is not a
//! success ([`Outcome::is_success`](crate::endpoint::Outcome::is_success)),
//! or is a shed ([`Outcome::is_shed`](crate::endpoint::Outcome::is_shed):
//! 503, 429), is recorded as if its RTT were
//! `max(observed, failure_penalty.rtt, est)`: it can only raise the estimate
//! (to at least `failure_penalty.rtt`, default 1 s), never lower it. The
//! default `"none"` is tower's and linkerd's behaviour.
//!
//! # Calling order
//!
//! - Getters: [`PeakEwma::estimate`], [`PeakEwma::cost`] (also
//!   [`Algorithm::load`], which returns the cost). They never mutate.
//! - Inputs: [`Algorithm::on_hosts_changed`] (estimates follow their hosts
//!   through the remap), [`Algorithm::on_complete`] (`now` is the completion
//!   instant; `done.latency` is the RTT).
//! - Decision: [`Algorithm::pick`].
//!
//! There are no timers: decay is a function of `now`. The exponential is
//! [`crate::math::exp`], not libm's, so estimates and picks have the same
//! bits on every platform.

use super::{remap_state, Algorithm, Hosts, Subset};
use crate::endpoint::{Completion, PickRequest};
use crate::error::ConfigError;
use crate::rng::{distinct_pair, Rng};
use crate::time::{Nanos, Time};

/// Whether failed completions may lower a host's estimate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum PenaltyMode {
    /// Every completion's latency is recorded as observed (tower, linkerd).
    #[default]
    None,
    /// Failures and sheds are recorded as `max(observed, rtt, estimate)`.
    Penalize,
}

/// How failed completions are recorded (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct FailurePenalty {
    /// `"none"` (default) or `"penalize"`.
    pub mode: PenaltyMode,
    /// The RTT a failure counts as at least, in `"penalize"` mode (default 1 s).
    pub rtt: Nanos,
}

impl Default for FailurePenalty {
    fn default() -> Self {
        FailurePenalty {
            mode: PenaltyMode::None,
            rtt: Nanos::from_secs(1),
        }
    }
}

/// Configuration of `peak_ewma`; defaults are linkerd's.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct PeakEwmaConfig {
    /// Decay time constant τ (linkerd, Finagle: 10 s).
    pub decay: Nanos,
    /// Estimate of a host with no completion yet (linkerd: 30 ms).
    pub default_rtt: Nanos,
    /// Optional protection against fast-failing hosts (off by default).
    pub failure_penalty: FailurePenalty,
}

impl Default for PeakEwmaConfig {
    fn default() -> Self {
        PeakEwmaConfig {
            decay: Nanos::from_secs(10),
            default_rtt: Nanos::from_millis(30),
            failure_penalty: FailurePenalty::default(),
        }
    }
}

impl PeakEwmaConfig {
    /// Checks the ranges and builds the algorithm.
    pub fn try_new(&self) -> Result<PeakEwma, ConfigError> {
        let positive = |field, v: Nanos| {
            if v == Nanos::ZERO {
                Err(ConfigError::new(
                    field,
                    "0s is not allowed; expected a positive duration such as \"10s\"",
                ))
            } else {
                Ok(())
            }
        };
        positive("peak_ewma.decay", self.decay)?;
        positive("peak_ewma.default_rtt", self.default_rtt)?;
        let penalty = match self.failure_penalty.mode {
            PenaltyMode::None => None,
            PenaltyMode::Penalize => {
                positive("peak_ewma.failure_penalty.rtt", self.failure_penalty.rtt)?;
                Some(self.failure_penalty.rtt.as_nanos() as f64)
            }
        };
        Ok(PeakEwma {
            per_decay_ns: 1.0 / self.decay.as_nanos() as f64,
            default_rtt_ns: self.default_rtt.as_nanos() as f64,
            penalty_ns: penalty,
            rtts: Vec::new(),
        })
    }
}

/// One host's estimate.
#[derive(Clone, Copy, Debug)]
struct RttEstimate {
    /// Estimate in nanoseconds as of `stamp`.
    ns: f64,
    /// When `ns` was last updated (or the host added).
    stamp: Time,
}

/// P2C over Peak-EWMA cost; see the module docs.
#[derive(Clone, Debug)]
pub struct PeakEwma {
    /// 1/τ in 1/ns (a multiplication per decay instead of a division).
    per_decay_ns: f64,
    default_rtt_ns: f64,
    /// `Some(rtt)` in penalize mode.
    penalty_ns: Option<f64>,
    /// Parallel to the hosts.
    rtts: Vec<RttEstimate>,
}

// === impl PeakEwma ===

impl PeakEwma {
    /// The RTT estimate of host `index` read at `now`, in nanoseconds:
    /// the stored estimate decayed toward zero by `exp(−(now − stamp)/τ)`.
    pub fn estimate(&self, index: u32, now: Time) -> f64 {
        match self.rtts.get(index as usize) {
            Some(r) => r.ns * self.decay_factor(r.stamp, now),
            None => self.default_rtt_ns,
        }
    }

    /// The P2C cost of host `index` at `now`: `estimate × (active + 1)`.
    pub fn cost(&self, hosts: &Hosts, index: u32, now: Time) -> f64 {
        self.estimate(index, now) * f64::from(hosts.active(index).saturating_add(1))
    }

    /// Whether `b` costs less than `a` now, with one exponential instead
    /// of one per host (`exp` is the largest part of a pick). With
    /// `cost(x) = ns(x) · e^{-(now − stamp(x))/decay} · (active(x) + 1)`,
    /// dividing both sides by `a`'s decay gives
    /// `cost(b) < cost(a) ⇔ ns(b)(active(b) + 1) · e^{(stamp(b) − stamp(a))/decay}
    /// < ns(a)(active(a) + 1)`. The two forms can round differently only
    /// when the costs agree to about 1e-16, where either pick is right.
    /// Hosts without an estimate yet, a stamp after `now`, or a factor
    /// that overflows take the direct form.
    ///
    /// About half the time the exponential is not needed at all: the
    /// factor is at most 1 when `b`'s stamp is the older (exp is monotone
    /// and exactly 1 at 0), and rounding a product is monotone, so then
    /// `wb < wa` already means `wb · factor < wa`; likewise at least 1 when
    /// `b`'s is the newer, where `wb ≥ wa` already means the opposite.
    fn cheaper(&self, hosts: &Hosts, b: u32, a: u32, now: Time) -> bool {
        if let (Some(ra), Some(rb)) = (self.rtts.get(a as usize), self.rtts.get(b as usize)) {
            if ra.stamp <= now && rb.stamp <= now {
                let shift = (rb.stamp.0 as i64).wrapping_sub(ra.stamp.0 as i64) as f64;
                let x = shift * self.per_decay_ns;
                let wa = ra.ns * f64::from(hosts.active(a).saturating_add(1));
                let wb = rb.ns * f64::from(hosts.active(b).saturating_add(1));
                // Within ±700 the factor is finite and positive, as below.
                if x.abs() <= 700.0 {
                    if x <= 0.0 && wb < wa {
                        return true;
                    }
                    if x >= 0.0 && wb >= wa {
                        return false;
                    }
                }
                return self
                    .scaled_cheaper(wb, x, wa)
                    .unwrap_or_else(|| self.cost(hosts, b, now) < self.cost(hosts, a, now));
            }
        }
        self.cost(hosts, b, now) < self.cost(hosts, a, now)
    }

    /// `wb · e^x < wa`, or `None` if the factor overflows or vanishes.
    fn scaled_cheaper(&self, wb: f64, x: f64, wa: f64) -> Option<bool> {
        let factor = crate::math::exp(x);
        (factor.is_finite() && factor > 0.0).then_some(wb * factor < wa)
    }

    /// `exp(−(now − since)/τ)`; 1 when `now` is not after `since`.
    fn decay_factor(&self, since: Time, now: Time) -> f64 {
        let elapsed = now.saturating_since(since).as_nanos() as f64;
        crate::math::exp(-elapsed * self.per_decay_ns)
    }

    /// Makes sure there is an estimate for every host (new ones start fresh).
    fn fit(&mut self, n: usize, now: Time) {
        let fresh = RttEstimate {
            ns: self.default_rtt_ns,
            stamp: now,
        };
        self.rtts.resize(n, fresh);
    }

    /// Records one RTT sample (tower's `RttEstimate::update`).
    fn observe(&mut self, index: usize, rtt_ns: f64, now: Time) {
        let w = match self.rtts.get(index) {
            Some(r) => self.decay_factor(r.stamp, now),
            None => return,
        };
        let r = &mut self.rtts[index];
        r.ns = if rtt_ns > r.ns {
            rtt_ns
        } else {
            r.ns * w + rtt_ns * (1.0 - w)
        };
        r.stamp = now;
    }
}

impl Algorithm for PeakEwma {
    fn on_hosts_changed(&mut self, hosts: &Hosts, remap: Option<&[Option<u32>]>, now: Time) {
        if let Some(remap) = remap {
            let fresh = RttEstimate {
                ns: self.default_rtt_ns,
                stamp: now,
            };
            remap_state(&mut self.rtts, remap, |_| fresh);
        }
        self.fit(hosts.len(), now);
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
        let (a, b) = distinct_pair(rng, m.len());
        let (a, b) = (m[a], m[b]);
        Some(if self.cheaper(hosts, b, a, now) { b } else { a })
    }

    fn on_complete(&mut self, hosts: &Hosts, index: u32, done: &Completion, now: Time) {
        self.fit(hosts.len(), now);
        let i = index as usize;
        let observed = done.latency.as_nanos() as f64;
        let failed = !done.outcome.is_success() || done.outcome.is_shed();
        let rtt = match self.penalty_ns {
            Some(p) if failed => observed.max(p).max(self.rtts[i].ns),
            _ => observed,
        };
        self.observe(i, rtt, now);
    }

    fn load(&self, hosts: &Hosts, index: u32, now: Time) -> Option<f64> {
        Some(self.cost(hosts, index, now))
    }
}

#[cfg(test)]
// libm as the reference to compare against (see clippy.toml).
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;
    use crate::balance::tests::lb_with;
    use crate::balance::SlowStartConfig;
    use crate::endpoint::{Endpoint, EndpointChange, EndpointId, Outcome};
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;
    use std::collections::BTreeMap;

    const MS: f64 = 1e6;

    /// `n` hosts at t = 0 and a default algorithm, driven directly.
    fn setup(n: u32, cfg: &PeakEwmaConfig) -> (Hosts, PeakEwma) {
        let mut hosts = Hosts::new(SlowStartConfig::default());
        let remap = hosts
            .apply(
                EndpointChange::Reset((0..n).map(Endpoint::new).collect()),
                Time(0),
            )
            .unwrap();
        let mut algo = cfg.try_new().unwrap();
        algo.on_hosts_changed(&hosts, Some(&remap), Time(0));
        (hosts, algo)
    }

    fn done(ms: u64, outcome: Outcome) -> Completion {
        Completion {
            latency: Nanos::from_millis(ms),
            outcome,
        }
    }

    fn at_ms(ms: u64) -> Time {
        Time(Nanos::from_millis(ms).as_nanos())
    }

    fn close(got: f64, want: f64) -> bool {
        (got - want).abs() <= want.abs() * 1e-12
    }

    /// The one-exponential comparison agrees with comparing the two costs
    /// on random states: estimates over six decades, stamps up to an hour
    /// apart, up to 20 requests in flight. Where it disagrees, the costs
    /// must agree to 1e-12 (rounding; either pick is right there).
    #[test]
    fn the_one_exponential_comparison_matches_the_costs() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let (mut hosts, mut algo) = setup(2, &PeakEwmaConfig::default());
        let mut unit = move || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let mut disagreements = 0;
        for _ in 0..100_000 {
            let now = Time(3_600_000_000_000);
            for (k, r) in algo.rtts.iter_mut().enumerate() {
                r.ns = 10f64.powf(3.0 + 6.0 * unit());
                r.stamp = Time(now.0 - (unit() * now.0 as f64) as u64);
                while hosts.active(k as u32) > 0 {
                    hosts.finish(k as u32);
                }
                for _ in 0..(unit() * 20.0) as u32 {
                    hosts.start(k as u32);
                }
            }
            let (cb, ca) = (algo.cost(&hosts, 1, now), algo.cost(&hosts, 0, now));
            if algo.cheaper(&hosts, 1, 0, now) != (cb < ca) {
                disagreements += 1;
                assert!(close(cb, ca), "{cb} vs {ca}");
            }
        }
        // Random costs tie to 1e-12 essentially never.
        assert!(disagreements <= 1, "{disagreements}");
    }

    /// The shortcut that skips the exponential never changes a pick: on
    /// random states (ties in stamps and in-flight counts included), the
    /// answer equals the full `wb · e^x < wa` exactly.
    #[test]
    fn skipping_the_exponential_changes_no_pick() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(12);
        let (mut hosts, mut algo) = setup(2, &PeakEwmaConfig::default());
        let mut unit = move || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let now = Time(3_600_000_000_000);
        let (mut skipped, mut computed) = (0, 0);
        for _ in 0..100_000 {
            for (k, r) in algo.rtts.iter_mut().enumerate() {
                // Few distinct values, so equal estimates and stamps are common.
                r.ns = [1e6, 2e6, 3e6][(unit() * 3.0) as usize];
                r.stamp = Time(now.0 - [0, 1_000_000, 50_000_000][(unit() * 3.0) as usize]);
                while hosts.active(k as u32) > 0 {
                    hosts.finish(k as u32);
                }
                for _ in 0..(unit() * 3.0) as u32 {
                    hosts.start(k as u32);
                }
            }
            let (ra, rb) = (algo.rtts[0], algo.rtts[1]);
            let wa = ra.ns * f64::from(hosts.active(0) + 1);
            let wb = rb.ns * f64::from(hosts.active(1) + 1);
            let x = (rb.stamp.0 as i64 - ra.stamp.0 as i64) as f64 * algo.per_decay_ns;
            let full = wb * crate::math::exp(x) < wa;
            assert_eq!(algo.cheaper(&hosts, 1, 0, now), full, "{wb} e^{x} vs {wa}");
            if (x <= 0.0 && wb < wa) || (x >= 0.0 && wb >= wa) {
                skipped += 1;
            } else {
                computed += 1;
            }
        }
        // Both paths were exercised.
        assert!(
            skipped > 10_000 && computed > 10_000,
            "{skipped} {computed}"
        );
    }

    #[test]
    fn defaults_are_linkerds() {
        let c = PeakEwmaConfig::default();
        assert_eq!(c.decay, Nanos::from_secs(10));
        assert_eq!(c.default_rtt, Nanos::from_millis(30));
        assert_eq!(c.failure_penalty.mode, PenaltyMode::None);
        assert_eq!(c.failure_penalty.rtt, Nanos::from_secs(1));
    }

    #[test]
    fn new_host_starts_at_default_rtt_and_decays_when_read() {
        let (_, a) = setup(1, &PeakEwmaConfig::default());
        assert_eq!(a.estimate(0, Time(0)), 30.0 * MS);
        // Read after exactly τ = 10 s: 30 ms · e⁻¹.
        let got = a.estimate(0, at_ms(10_000));
        assert!(close(got, 30.0 * MS * (-1.0f64).exp()), "{got}");
    }

    #[test]
    fn one_observation_below_the_estimate_blends_by_elapsed_time() {
        // Default 30 ms stamped at 0; a 10 ms sample at t = τ = 10 s:
        // w = e⁻¹, est = 30·e⁻¹ + 10·(1 − e⁻¹) = 10 + 20·e⁻¹ ≈ 17.3576 ms.
        let (hosts, mut a) = setup(1, &PeakEwmaConfig::default());
        a.on_complete(&hosts, 0, &done(10, Outcome::OK), at_ms(10_000));
        let want = (10.0 + 20.0 * (-1.0f64).exp()) * MS;
        let got = a.estimate(0, at_ms(10_000));
        assert!(close(got, want), "{got} vs {want}");
        assert!((got / MS - 17.357_588_823).abs() < 1e-6);
    }

    #[test]
    fn a_sample_above_the_estimate_is_taken_as_is() {
        // Peak: 100 ms > 30 ms replaces the estimate whatever the elapsed time.
        let (hosts, mut a) = setup(1, &PeakEwmaConfig::default());
        a.on_complete(&hosts, 0, &done(100, Outcome::OK), at_ms(3_000));
        assert_eq!(a.estimate(0, at_ms(3_000)), 100.0 * MS);
        // A 60 ms sample τ later blends: 100·e⁻¹ + 60·(1 − e⁻¹) = 60 + 40·e⁻¹.
        a.on_complete(&hosts, 0, &done(60, Outcome::OK), at_ms(13_000));
        let want = (60.0 + 40.0 * (-1.0f64).exp()) * MS;
        assert!(close(a.estimate(0, at_ms(13_000)), want));
        // A sample equal to the estimate leaves it unchanged.
        let est = a.estimate(0, at_ms(13_000));
        a.on_complete(
            &hosts,
            0,
            &Completion {
                latency: Nanos(est as u64),
                outcome: Outcome::OK,
            },
            at_ms(13_000),
        );
        assert!((a.estimate(0, at_ms(13_000)) - est).abs() < 1.0);
    }

    #[test]
    fn reads_do_not_mutate() {
        let (mut hosts, mut a) = setup(2, &PeakEwmaConfig::default());
        a.on_complete(&hosts, 0, &done(80, Outcome::OK), at_ms(0));
        hosts.start(0);
        let e1 = a.estimate(0, at_ms(5_000));
        let c1 = a.load(&hosts, 0, at_ms(5_000)).unwrap();
        for t in [1_000, 7_000, 20_000] {
            let _ = a.estimate(0, at_ms(t));
            let _ = a.cost(&hosts, 0, at_ms(t));
        }
        assert_eq!(a.estimate(0, at_ms(5_000)), e1);
        assert_eq!(a.load(&hosts, 0, at_ms(5_000)), Some(c1));
        // Cost = 80 ms · e^(−0.5) · (1 active + 1).
        assert!(close(c1, 80.0 * MS * (-0.5f64).exp() * 2.0));
        // And a completion after reads blends from the last completion:
        // 20 ms at t = 10 s → 80·e⁻¹ + 20·(1 − e⁻¹) = 20 + 60·e⁻¹.
        a.on_complete(&hosts, 0, &done(20, Outcome::OK), at_ms(10_000));
        let want = (20.0 + 60.0 * (-1.0f64).exp()) * MS;
        assert!(close(a.estimate(0, at_ms(10_000)), want));
    }

    #[test]
    fn penalty_keeps_failures_from_lowering_the_estimate() {
        let cfg = PeakEwmaConfig {
            failure_penalty: FailurePenalty {
                mode: PenaltyMode::Penalize,
                ..FailurePenalty::default()
            },
            ..PeakEwmaConfig::default()
        };
        let (hosts, mut a) = setup(1, &cfg);
        // A 2 ms 503 counts as max(2 ms, 1 s, 30 ms) = 1 s: a peak.
        a.on_complete(&hosts, 0, &done(2, Outcome::Status(503)), at_ms(100));
        assert_eq!(a.estimate(0, at_ms(100)), 1_000.0 * MS);
        // 429 is a shed too, though `is_success` holds for it.
        let (hosts, mut b) = setup(1, &cfg);
        b.on_complete(&hosts, 0, &done(2, Outcome::Status(429)), at_ms(0));
        assert_eq!(b.estimate(0, at_ms(0)), 1_000.0 * MS);
        // Above the penalty, a failure's own latency stands: a 3 s timeout.
        a.on_complete(&hosts, 0, &done(3_000, Outcome::Timeout), at_ms(5_000));
        assert_eq!(a.estimate(0, at_ms(5_000)), 3_000.0 * MS);
        // A fast failure later leaves the stored estimate as it was (and
        // restamps it): max(1 ms, 1 s, 3 s) = 3 s, blended with itself.
        a.on_complete(&hosts, 0, &done(1, Outcome::Reset), at_ms(15_000));
        assert!(close(a.estimate(0, at_ms(15_000)), 3_000.0 * MS));
        // A 4xx is a success: recorded as observed, so it blends down.
        a.on_complete(&hosts, 0, &done(10, Outcome::Status(404)), at_ms(25_000));
        let want = (10.0 + 2_990.0 * (-1.0f64).exp()) * MS;
        assert!(close(a.estimate(0, at_ms(25_000)), want));
    }

    #[test]
    fn estimates_follow_their_hosts_through_membership_changes() {
        let (mut hosts, mut a) = setup(3, &PeakEwmaConfig::default());
        a.on_complete(&hosts, 2, &done(500, Outcome::OK), at_ms(0));
        // Remove id 0 and add id 5 at t = 1 s: id 2 moves to index 1.
        let remap = hosts
            .apply(
                EndpointChange::Reset([1, 2, 5].map(Endpoint::new).to_vec()),
                at_ms(1_000),
            )
            .unwrap();
        a.on_hosts_changed(&hosts, Some(&remap), at_ms(1_000));
        assert_eq!(a.estimate(1, at_ms(0)), 500.0 * MS);
        // The new host starts at the default, stamped when it was added.
        assert_eq!(a.estimate(2, at_ms(1_000)), 30.0 * MS);
    }

    #[test]
    fn ties_go_to_the_first_draw_and_the_cheaper_host_wins() {
        // Two hosts: equal costs → the first draw, which is uniform.
        let (mut hosts, mut a) = setup(2, &PeakEwmaConfig::default());
        let all = [0u32, 1];
        let sub = Subset {
            key: 0,
            members: &all,
        };
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let mut c = [0u32; 2];
        for _ in 0..2000 {
            let i = a
                .pick(&hosts, sub, &PickRequest::default(), Time(0), &mut rng)
                .unwrap();
            c[i as usize] += 1;
        }
        // p = ½, sd = √(2000/4) ≈ 22.4; allow 5 sd ≈ 112.
        assert!((c[0] as i64 - 1000).abs() < 112, "{c:?}");
        // One in flight on host 0 doubles its cost: host 1 always wins.
        hosts.start(0);
        for _ in 0..100 {
            let i = a.pick(&hosts, sub, &PickRequest::default(), Time(0), &mut rng);
            assert_eq!(i, Some(1));
        }
    }

    /// A closed loop of `n` requests over hosts 0, 1 (50 ms, 200 OK) and
    /// host 2 (1 ms, 503); returns the picks per host.
    fn fast_failure_loop(mode: PenaltyMode, n: usize) -> [u32; 3] {
        let cfg = PeakEwmaConfig {
            failure_penalty: FailurePenalty {
                mode,
                ..FailurePenalty::default()
            },
            ..PeakEwmaConfig::default()
        };
        let mut lb = lb_with(
            Box::new(cfg.try_new().unwrap()),
            (0..3).map(Endpoint::new).collect(),
        );
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(21);
        let mut now = Time(0);
        let mut counts = [0u32; 3];
        for _ in 0..n {
            let id = lb.pick(&PickRequest::default(), now, &mut rng).unwrap();
            lb.on_start(id, now);
            let d = if id.0 == 2 {
                done(1, Outcome::Status(503))
            } else {
                done(50, Outcome::OK)
            };
            now += d.latency;
            lb.on_complete(id, &d, now);
            counts[id.0 as usize] += 1;
        }
        counts
    }

    #[test]
    fn a_fast_failing_host_attracts_traffic_unless_penalized() {
        // Without the penalty host 2's estimate sinks toward 1 ms while the
        // others sit at 50 ms, so it wins every pair it is in: 2 of the 3
        // pairs, p = 2/3. Over 400 picks: 266.7, sd = √(400·2/9) ≈ 9.4;
        // 220 is 5 sd below.
        let none = fast_failure_loop(PenaltyMode::None, 400);
        assert!(none[2] > 220, "{none:?}");
        // With it, its first 503 sets the estimate to 1 s. It is cheaper than
        // a 50 ms host again only after τ·ln(1000/50) ≈ 30 s, and the 400
        // picks take ≈ 399 × 50 ms ≈ 20 s: exactly one pick.
        let pen = fast_failure_loop(PenaltyMode::Penalize, 400);
        assert_eq!(pen[2], 1, "{pen:?}");
        assert_eq!(pen[0] + pen[1], 399);
    }

    #[test]
    fn a_ten_times_slower_host_gets_under_ten_percent_once_settled() {
        // Open loop: one request every 2 ms for 20 s over four hosts; host 3
        // answers in 100 ms, the others in 10 ms. Plain P2C (or random) would
        // give host 3 a quarter of the picks.
        let mut lb = lb_with(
            Box::new(PeakEwmaConfig::default().try_new().unwrap()),
            (0..4).map(Endpoint::new).collect(),
        );
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
        let mut pending: BTreeMap<(u64, u64), EndpointId> = BTreeMap::new();
        let mut counts = [0u32; 4];
        for k in 0..10_000u64 {
            let now = Time(k * 2_000_000);
            while let Some((&(t, s), &id)) = pending.iter().next() {
                if t > now.0 {
                    break;
                }
                pending.remove(&(t, s));
                let ms = if id.0 == 3 { 100 } else { 10 };
                lb.on_complete(id, &done(ms, Outcome::OK), Time(t));
            }
            let id = lb.pick(&PickRequest::default(), now, &mut rng).unwrap();
            lb.on_start(id, now);
            let ms = if id.0 == 3 { 100 } else { 10 };
            pending.insert((now.0 + ms * 1_000_000, k), id);
            if k >= 500 {
                counts[id.0 as usize] += 1;
            }
        }
        let total: u32 = counts.iter().sum();
        let slow = f64::from(counts[3]) / f64::from(total);
        assert!(slow < 0.10, "{counts:?}");
        for c in &counts[..3] {
            assert!(f64::from(*c) / f64::from(total) > 0.25, "{counts:?}");
        }
    }

    #[test]
    fn invalid_config_names_the_field() {
        let e = PeakEwmaConfig {
            decay: Nanos::ZERO,
            ..PeakEwmaConfig::default()
        }
        .try_new()
        .unwrap_err();
        assert_eq!(e.field, "peak_ewma.decay");
        let e = PeakEwmaConfig {
            failure_penalty: FailurePenalty {
                mode: PenaltyMode::Penalize,
                rtt: Nanos::ZERO,
            },
            ..PeakEwmaConfig::default()
        }
        .try_new()
        .unwrap_err();
        assert_eq!(e.field, "peak_ewma.failure_penalty.rtt");
        assert!(e.problem.contains("expected a positive duration"));
    }

    #[test]
    fn config_reads_durations_and_refuses_unknown_fields() {
        let c: PeakEwmaConfig = serde_json::from_str(
            r#"{"decay":"5s","failure_penalty":{"mode":"penalize","rtt":"250ms"}}"#,
        )
        .unwrap();
        assert_eq!(c.decay, Nanos::from_secs(5));
        assert_eq!(c.default_rtt, Nanos::from_millis(30));
        assert_eq!(c.failure_penalty.mode, PenaltyMode::Penalize);
        assert_eq!(c.failure_penalty.rtt, Nanos::from_millis(250));
        assert!(serde_json::from_str::<PeakEwmaConfig>(r#"{"tau":"5s"}"#).is_err());
    }
}
