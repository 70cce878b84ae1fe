//! `client_wrr`: weighted round robin on server-reported load (ORCA).
//!
//! Sources: gRFC A58 and grpc-go `balancer/weightedroundrobin/balancer.go`
//! (weights, blackout, expiry) and `scheduler.go` (the static-stride
//! scheduler, also grpc-core's `static_stride_scheduler.cc`); Envoy's
//! `client_side_weighted_round_robin.proto` has the same knobs and defaults
//! (reference §1.9).
//!
//! # Weights
//!
//! Servers report `qps`, `eps` (errors per second) and `utilization`
//! ([`LoadReport`]), delivered through [`Algorithm::on_load_report`]. A
//! report with `utilization == 0` or `qps == 0` is *empty* and ignored
//! entirely (grpc-go `OnLoadReport`). Otherwise the host's weight becomes
//!
//! `w = qps / (utilization + (eps / qps) × error_utilization_penalty)`,
//!
//! `last_updated = now`, and `non_empty_since = now` if it was unset. The
//! weight the scheduler uses ([`ClientWrr::weight`]) is 0 while the host has
//! no report, once `now − last_updated ≥ weight_expiration_period`
//! (default 3 min), or during the blackout:
//! `now − non_empty_since < blackout_period` (default 10 s; 0 disables it).
//! An expired host starts a new blackout when reports resume: grpc-go clears
//! `non_empty_since` when its weight is read while expired; here reads never
//! mutate, so the next non-empty report clears it if the previous one is
//! expired (the same outcome, without depending on when weights were read).
//! A report whose weight is not a positive finite number is ignored too.
//!
//! # Scheduler
//!
//! One scheduler per [`Subset`], built at the subset's first pick and rebuilt
//! on a pick at or after `next_update = build time + weight_update_period`
//! (default 1 s, at least 100 ms: grpc-go raises smaller values to 100 ms, and
//! so does [`ClientWrrConfig::try_new`]). grpc-go rebuilds on a ticker; here
//! a rebuild happens lazily on the first pick after the period. Building
//! (grpc-go `newScheduler`):
//!
//! - fewer than two members, or fewer than two non-zero weights: plain round
//!   robin;
//! - otherwise scale so the largest weight is 65535 (`round(w × 65535/max)`;
//!   grpc-go has no floor or cap: grpc-core additionally caps weights at 10×
//!   the mean and floors them at `max(1, 1 % of the mean)`, which we do not);
//!   zero weights get the scaled mean of the non-zero ones; if every
//!   non-zero scaled weight equals that mean, plain round robin.
//!
//! Both use one sequence counter per scheduler, started at a random `u32`
//! when the subset's scheduler is first built (grpc-go seeds each picker with
//! `rand.Uint32()`), kept across rebuilds, reset after a host-set change. A
//! pick increments it (wrapping) and uses the new value `seq`: round robin
//! takes member `seq % n`; the stride scheduler takes `idx = seq % n`,
//! `gen = seq / n` and accepts `idx` if
//! `(w[idx]·gen + idx·32767) % 65535 ≥ 65535 − w[idx]`, else draws again.
//! Over `n × 65535` consecutive sequence numbers each member is accepted
//! exactly `w[idx]` times.
//!
//! Host weights from discovery and slow start are not used (gRPC has
//! neither). Health changes do not reset a host's reports.
//!
//! # Calling order
//!
//! - Getters: [`ClientWrr::weight`], [`ClientWrr::scheduler_weights`]; never
//!   mutate.
//! - Inputs: [`Algorithm::on_hosts_changed`] (reports follow their hosts,
//!   schedulers are dropped), [`Algorithm::on_load_report`].
//! - Decision: [`Algorithm::pick`], which may rebuild the subset's scheduler.
//!
//! There are no timers: the rebuild is due when a pick sees `now ≥ next_update`.

use super::{remap_state, Algorithm, Hosts, Subset};
use crate::endpoint::{LoadReport, PickRequest};
use crate::error::ConfigError;
use crate::rng::{below, Rng};
use crate::time::{Nanos, Time};

/// The largest scaled weight (`u16::MAX`).
const MAX_WEIGHT: u64 = 65535;

/// Configuration of `client_wrr`; defaults are gRPC's (gRFC A58).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct ClientWrrConfig {
    /// A host's weight is used only after reports have been non-empty for
    /// this long (10 s; 0 disables the blackout).
    pub blackout_period: Nanos,
    /// A weight not refreshed for this long is dropped (3 min).
    pub weight_expiration_period: Nanos,
    /// How often the scheduler is rebuilt (1 s; values below 100 ms are
    /// raised to 100 ms, as gRPC does).
    pub weight_update_period: Nanos,
    /// Multiplier of `eps / qps` added to utilization (1.0).
    pub error_utilization_penalty: f64,
}

impl Default for ClientWrrConfig {
    fn default() -> Self {
        ClientWrrConfig {
            blackout_period: Nanos::from_secs(10),
            weight_expiration_period: Nanos::from_secs(180),
            weight_update_period: Nanos::from_secs(1),
            error_utilization_penalty: 1.0,
        }
    }
}

impl ClientWrrConfig {
    /// The smallest rebuild period (gRFC A58).
    pub const MIN_UPDATE_PERIOD: Nanos = Nanos::from_millis(100);

    /// Checks the ranges and builds the algorithm.
    pub fn try_new(&self) -> Result<ClientWrr, ConfigError> {
        let p = self.error_utilization_penalty;
        if !(p.is_finite() && p >= 0.0) {
            return Err(ConfigError::new(
                "client_wrr.error_utilization_penalty",
                format!("{p} is not allowed; expected a non-negative number (default 1.0)"),
            ));
        }
        if self.weight_expiration_period == Nanos::ZERO {
            return Err(ConfigError::new(
                "client_wrr.weight_expiration_period",
                "0s would expire every weight at once; expected a positive duration such as \"3m\"",
            ));
        }
        Ok(ClientWrr {
            blackout: self.blackout_period,
            expiration: self.weight_expiration_period,
            update_period: self.weight_update_period.max(Self::MIN_UPDATE_PERIOD),
            penalty: p,
            reports: Vec::new(),
            schedulers: Vec::new(),
        })
    }
}

/// The weight a report gives (`qps / (utilization + eps/qps × penalty)`), or
/// `None` if the report is empty (`qps` or `utilization` is 0) or the result
/// is not a positive finite number.
pub fn report_weight(report: &LoadReport, error_utilization_penalty: f64) -> Option<f64> {
    if report.utilization == 0.0 || report.qps == 0.0 {
        return None;
    }
    let error_rate = report.eps / report.qps;
    let w = report.qps / (report.utilization + error_rate * error_utilization_penalty);
    (w.is_finite() && w > 0.0).then_some(w)
}

/// grpc-go `newScheduler`: the stride weights for `weights` (0 = unknown), or
/// `None` for plain round robin.
pub fn scale_weights(weights: &[f64]) -> Option<Vec<u16>> {
    let n = weights.len();
    if n < 2 {
        return None;
    }
    let zeros = weights.iter().filter(|&&w| w == 0.0).count();
    if zeros >= n - 1 {
        return None;
    }
    let sum: f64 = weights.iter().sum();
    let max = weights.iter().copied().fold(0.0, f64::max);
    let scale = MAX_WEIGHT as f64 / max;
    let mean = (scale * sum / (n - zeros) as f64).round() as u16;
    let mut all_equal = true;
    let scaled = weights
        .iter()
        .map(|&w| {
            if w == 0.0 {
                mean
            } else {
                let s = (scale * w).round() as u16;
                all_equal &= s == mean;
                s
            }
        })
        .collect();
    (!all_equal).then_some(scaled)
}

/// The static-stride pick: advances `seq` until a member accepts; returns it.
/// Terminates because the largest weight is 65535 and always accepts.
pub fn stride_pick(weights: &[u16], seq: &mut u32) -> usize {
    let n = weights.len() as u64;
    loop {
        *seq = seq.wrapping_add(1);
        let s = u64::from(*seq);
        let (idx, gen) = (s % n, s / n);
        let w = u64::from(weights[idx as usize]);
        if (w * gen + idx * (MAX_WEIGHT / 2)) % MAX_WEIGHT >= MAX_WEIGHT - w {
            return idx as usize;
        }
    }
}

/// One host's report state (grpc-go `endpointWeight`).
#[derive(Clone, Copy, Debug, Default)]
struct HostWeight {
    weight: f64,
    non_empty_since: Option<Time>,
    last_updated: Option<Time>,
}

/// One subset's scheduler.
#[derive(Clone, Debug)]
struct Scheduler {
    /// `None`: plain round robin.
    stride: Option<Vec<u16>>,
    seq: u32,
    next_update: Time,
}

/// Client-side weighted round robin; see the module docs.
#[derive(Clone, Debug)]
pub struct ClientWrr {
    blackout: Nanos,
    expiration: Nanos,
    update_period: Nanos,
    penalty: f64,
    /// Parallel to the hosts.
    reports: Vec<HostWeight>,
    /// By subset key.
    schedulers: Vec<Option<Scheduler>>,
}

// === impl ClientWrr ===

impl ClientWrr {
    /// The weight host `index` has for the scheduler at `now`: 0 without a
    /// report, when expired, or during the blackout.
    pub fn weight(&self, index: u32, now: Time) -> f64 {
        let Some(h) = self.reports.get(index as usize) else {
            return 0.0;
        };
        let Some(last) = h.last_updated else {
            return 0.0;
        };
        if now.saturating_since(last) >= self.expiration {
            return 0.0;
        }
        if self.blackout > Nanos::ZERO {
            match h.non_empty_since {
                Some(since) if now.saturating_since(since) >= self.blackout => {}
                _ => return 0.0,
            }
        }
        h.weight
    }

    /// The stride weights of subset `key`'s scheduler, in member order;
    /// `None` if it is not built yet or runs plain round robin.
    pub fn scheduler_weights(&self, key: usize) -> Option<&[u16]> {
        self.schedulers.get(key)?.as_ref()?.stride.as_deref()
    }
}

impl Algorithm for ClientWrr {
    fn on_hosts_changed(&mut self, hosts: &Hosts, remap: Option<&[Option<u32>]>, _: Time) {
        if let Some(remap) = remap {
            remap_state(&mut self.reports, remap, |_| HostWeight::default());
        }
        self.reports.resize(hosts.len(), HostWeight::default());
        self.schedulers.clear();
    }

    fn pick(
        &mut self,
        _: &Hosts,
        subset: Subset<'_>,
        _: &PickRequest,
        now: Time,
        rng: &mut dyn Rng,
    ) -> Option<u32> {
        let m = subset.members;
        if m.len() == 1 {
            return Some(m[0]);
        }
        if subset.key >= self.schedulers.len() {
            self.schedulers.resize_with(subset.key + 1, || None);
        }
        let due = self.schedulers[subset.key]
            .as_ref()
            .is_none_or(|s| now >= s.next_update);
        let rebuilt = due.then(|| {
            let weights: Vec<f64> = m.iter().map(|&i| self.weight(i, now)).collect();
            scale_weights(&weights)
        });
        let s = self.schedulers[subset.key].get_or_insert_with(|| Scheduler {
            stride: None,
            seq: below(rng, 1 << 32) as u32,
            next_update: now,
        });
        if let Some(stride) = rebuilt {
            s.stride = stride;
            s.next_update = now + self.update_period;
        }
        let idx = match &s.stride {
            Some(w) => stride_pick(w, &mut s.seq),
            None => {
                s.seq = s.seq.wrapping_add(1);
                (u64::from(s.seq) % m.len() as u64) as usize
            }
        };
        Some(m[idx])
    }

    fn on_load_report(&mut self, hosts: &Hosts, index: u32, report: &LoadReport, now: Time) {
        let Some(w) = report_weight(report, self.penalty) else {
            return;
        };
        if self.reports.len() < hosts.len() {
            self.reports.resize(hosts.len(), HostWeight::default());
        }
        let Some(h) = self.reports.get_mut(index as usize) else {
            return;
        };
        if let Some(last) = h.last_updated {
            if now.saturating_since(last) >= self.expiration {
                h.non_empty_since = None;
            }
        }
        h.weight = w;
        h.last_updated = Some(now);
        h.non_empty_since.get_or_insert(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::tests::lb_with;
    use crate::balance::SlowStartConfig;
    use crate::endpoint::{Endpoint, EndpointChange, EndpointId};
    use crate::script::{run_table, table};
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn report(qps: f64, utilization: f64, eps: f64) -> LoadReport {
        LoadReport {
            qps,
            eps,
            utilization,
        }
    }

    fn secs(s: u64) -> Time {
        Time(Nanos::from_secs(s).as_nanos())
    }

    fn setup(n: u32, cfg: &ClientWrrConfig) -> (Hosts, ClientWrr) {
        let mut hosts = Hosts::new(SlowStartConfig::default());
        let remap = hosts
            .apply(
                EndpointChange::Reset((0..n).map(Endpoint::new).collect()),
                Time(0),
            )
            .unwrap();
        let mut a = cfg.try_new().unwrap();
        a.on_hosts_changed(&hosts, Some(&remap), Time(0));
        (hosts, a)
    }

    #[test]
    fn defaults_are_grpcs() {
        let c = ClientWrrConfig::default();
        assert_eq!(c.blackout_period, Nanos::from_secs(10));
        assert_eq!(c.weight_expiration_period, Nanos::from_secs(180));
        assert_eq!(c.weight_update_period, Nanos::from_secs(1));
        assert_eq!(c.error_utilization_penalty, 1.0);
    }

    #[test]
    fn weight_formula() {
        // gRFC A58: qps / (util + eps/qps × penalty).
        // 100 / (0.5 + 10/100 × 1) = 100 / 0.6 = 166.67.
        let w = report_weight(&report(100.0, 0.5, 10.0), 1.0).unwrap();
        assert!((w - 500.0 / 3.0).abs() < 1e-9, "{w}");
        // Penalty 2: 100 / (0.5 + 0.2) = 142.86; penalty 0 or no errors: 200.
        let w = report_weight(&report(100.0, 0.5, 10.0), 2.0).unwrap();
        assert!((w - 1000.0 / 7.0).abs() < 1e-9, "{w}");
        assert_eq!(report_weight(&report(100.0, 0.5, 10.0), 0.0), Some(200.0));
        assert_eq!(report_weight(&report(100.0, 0.5, 0.0), 1.0), Some(200.0));
        // Empty reports carry no weight.
        assert_eq!(report_weight(&report(0.0, 0.5, 0.0), 1.0), None);
        assert_eq!(report_weight(&report(100.0, 0.0, 0.0), 1.0), None);
    }

    #[test]
    fn blackout_then_expiry_then_a_new_blackout() {
        // Host 0 reports 100 qps at 50 % → weight 200.
        // 10 s of non-empty reports before it counts (blackout ≥ 10 s), dropped
        // once the last report is ≥ 3 min old; reports resuming after that
        // start a new blackout. Empty reports change nothing.
        let (hosts, mut a) = setup(1, &ClientWrrConfig::default());
        #[derive(Debug)]
        enum Ev {
            Report,
            Empty,
            Check,
        }
        let steps = [
            (0, Ev::Check),
            (0, Ev::Report),
            (5_000, Ev::Report),
            (9_999, Ev::Check),
            (10_000, Ev::Check),
            (100_000, Ev::Empty),
            (184_999, Ev::Check),
            (185_000, Ev::Check),
            (186_000, Ev::Report),
            (195_999, Ev::Check),
            (196_000, Ev::Check),
        ];
        let got = run_table(&steps, |now, ev| {
            match ev {
                Ev::Report => a.on_load_report(&hosts, 0, &report(100.0, 0.5, 0.0), now),
                Ev::Empty => a.on_load_report(&hosts, 0, &report(100.0, 0.0, 0.0), now),
                Ev::Check => {}
            }
            format!("{ev:?} w={}", a.weight(0, now))
        });
        assert_eq!(
            got,
            table(
                "
                0s      | Check  w=0
                0s      | Report w=0
                5s      | Report w=0
                9999ms  | Check  w=0
                10s     | Check  w=200
                100s    | Empty  w=200
                184999ms | Check  w=200
                185s    | Check  w=0
                186s    | Report w=0
                195999ms | Check  w=0
                196s    | Check  w=200
                "
            )
        );
    }

    #[test]
    fn zero_blackout_uses_a_weight_at_once() {
        let cfg = ClientWrrConfig {
            blackout_period: Nanos::ZERO,
            ..ClientWrrConfig::default()
        };
        let (hosts, mut a) = setup(1, &cfg);
        a.on_load_report(&hosts, 0, &report(30.0, 0.3, 0.0), secs(1));
        assert_eq!(a.weight(0, secs(1)), 100.0);
    }

    #[test]
    fn scaling_follows_grpc_go() {
        // Max → 65535; the others round(w·65535/max); unknown (0) → the scaled
        // mean of the known: weights 100, 300, 0 → scale 218.45,
        // mean round(200·218.45) = 43690.
        assert_eq!(
            scale_weights(&[100.0, 300.0, 0.0]),
            Some(vec![21845, 65535, 43690])
        );
        // Fewer than two known weights, or one host: round robin.
        assert_eq!(scale_weights(&[5.0, 0.0, 0.0]), None);
        assert_eq!(scale_weights(&[5.0]), None);
        // All known weights equal (the unknown gets the same mean): round robin.
        assert_eq!(scale_weights(&[7.0, 7.0, 0.0]), None);
        // No floor: a tiny weight scales to 0 and is never accepted.
        assert_eq!(scale_weights(&[1e-6, 1.0]), Some(vec![0, 65535]));
    }

    #[test]
    fn stride_over_a_full_period_matches_the_weights_exactly() {
        // Weights 1:2:3 scale to 21845 : 43690 : 65535. Sequence numbers
        // 1 ..= 3·65535 give each index 65535 consecutive generations, in
        // which (w·gen + c) mod 65535 lands in the top w residues exactly w
        // times (gcd(w, 65535) divides w). So the first 131070 picks are
        // exactly 21845, 43690 and 65535.
        let w = scale_weights(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(w, [21845, 43690, 65535]);
        let mut seq = 0u32;
        let mut c = [0u32; 3];
        for _ in 0..131_070 {
            c[stride_pick(&w, &mut seq)] += 1;
        }
        assert_eq!(c, [21845, 43690, 65535]);
        assert!(seq <= 3 * 65535, "all within one period: {seq}");
    }

    /// A balancer over `qps.len()` hosts, each reporting `qps[i]` at 50 %
    /// (weight 2·qps; 0 sends nothing) at each of `times` (seconds).
    fn reporting_lb(qps: &[f64], times: &[u64]) -> crate::balance::LoadBalancer {
        let mut lb = lb_with(
            Box::new(ClientWrrConfig::default().try_new().unwrap()),
            (0..qps.len() as u32).map(Endpoint::new).collect(),
        );
        for &t in times {
            for (i, &q) in qps.iter().enumerate() {
                if q > 0.0 {
                    lb.on_load_report(EndpointId(i as u32), &report(q, 0.5, 0.0), secs(t));
                }
            }
        }
        lb
    }

    fn counts(lb: &mut crate::balance::LoadBalancer, n: usize, now: Time, seed: u64) -> Vec<u32> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut c = vec![0u32; lb.hosts().len()];
        for _ in 0..n {
            let id = lb.pick(&PickRequest::default(), now, &mut rng).unwrap();
            c[id.0 as usize] += 1;
        }
        c
    }

    #[test]
    fn picks_follow_reported_weights_through_the_balancer() {
        // 50, 100, 150 qps at 50 % → weights 100 : 200 : 300, scaled as above.
        // Reports from 0 s to 10 s: out of the blackout at 10 s. From a random
        // start, 131070 picks span one full period (unless the u32 counter
        // wraps inside it, a 3·65535/2³² ≈ 5e-5 chance): exact counts.
        let mut lb = reporting_lb(&[50.0, 100.0, 150.0], &[0, 5, 10]);
        assert_eq!(counts(&mut lb, 131_070, secs(10), 9), [21845, 43690, 65535]);
    }

    #[test]
    fn blacked_out_weights_mean_plain_round_robin() {
        // Reports since 0 s; at 9 s every host is still in its blackout: no
        // known weight → RR, visiting the members in order from a random start.
        let mut lb = reporting_lb(&[50.0, 100.0, 150.0], &[0, 5]);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        let seq: Vec<u32> = (0..9)
            .map(|_| {
                lb.pick(&PickRequest::default(), secs(9), &mut rng)
                    .unwrap()
                    .0
            })
            .collect();
        let expect: Vec<u32> = (0..9).map(|k| (seq[0] + k) % 3).collect();
        assert_eq!(seq, expect);
    }

    #[test]
    fn one_known_weight_is_not_enough() {
        // Only host 0 reports: one non-zero weight of three → RR (grpc-go:
        // zeros ≥ n − 1), so host 0 gets exactly a third.
        let mut lb = reporting_lb(&[80.0, 0.0, 0.0], &[0, 5, 10]);
        assert_eq!(counts(&mut lb, 300, secs(20), 4), [100, 100, 100]);
    }

    #[test]
    fn the_scheduler_is_rebuilt_only_after_the_update_period() {
        let cfg = ClientWrrConfig {
            blackout_period: Nanos::ZERO,
            ..ClientWrrConfig::default()
        };
        let (hosts, mut a) = setup(2, &cfg);
        let members = [0u32, 1];
        let sub = Subset {
            key: 1,
            members: &members,
        };
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(6);
        let mut pick = |a: &mut ClientWrr, now| {
            a.pick(&hosts, sub, &PickRequest::default(), now, &mut rng)
                .unwrap()
        };
        // Equal weights 100 : 100 at t = 0 → RR, built at the first pick.
        a.on_load_report(&hosts, 0, &report(50.0, 0.5, 0.0), Time(0));
        a.on_load_report(&hosts, 1, &report(50.0, 0.5, 0.0), Time(0));
        pick(&mut a, Time(0));
        assert_eq!(a.scheduler_weights(1), None);
        // Host 1 now reports three times the weight; until 1 s the old RR
        // scheduler stays: strict alternation.
        a.on_load_report(&hosts, 1, &report(150.0, 0.5, 0.0), secs(0));
        let before: Vec<u32> = (0..10).map(|_| pick(&mut a, Time(999_999_999))).collect();
        assert!(before.windows(2).all(|p| p[0] != p[1]), "{before:?}");
        // At 1 s it is rebuilt with weights 1 : 3 → 21845 : 65535.
        let mut c = [0u32; 2];
        for _ in 0..400 {
            c[pick(&mut a, secs(1)) as usize] += 1;
        }
        assert_eq!(a.scheduler_weights(1), Some(&[21845u16, 65535][..]));
        // Host 0 is accepted in a third of the generations in which host 1
        // always is: 1/4 of picks. Stride counts stay within a few picks of
        // the ideal over any window; allow ±10.
        assert!((i64::from(c[0]) - 100).abs() <= 10, "{c:?}");
    }

    #[test]
    fn reports_follow_their_hosts_and_new_hosts_start_unknown() {
        let cfg = ClientWrrConfig {
            blackout_period: Nanos::ZERO,
            ..ClientWrrConfig::default()
        };
        let (mut hosts, mut a) = setup(2, &cfg);
        a.on_load_report(&hosts, 1, &report(10.0, 0.5, 0.0), Time(0));
        let remap = hosts
            .apply(
                EndpointChange::Reset([1, 4].map(Endpoint::new).to_vec()),
                Time(0),
            )
            .unwrap();
        a.on_hosts_changed(&hosts, Some(&remap), Time(0));
        assert_eq!(a.weight(0, Time(0)), 20.0);
        assert_eq!(a.weight(1, Time(0)), 0.0);
    }

    #[test]
    fn config_checks_and_clamps() {
        let e = ClientWrrConfig {
            error_utilization_penalty: -1.0,
            ..ClientWrrConfig::default()
        }
        .try_new()
        .unwrap_err();
        assert_eq!(e.field, "client_wrr.error_utilization_penalty");
        let e = ClientWrrConfig {
            weight_expiration_period: Nanos::ZERO,
            ..ClientWrrConfig::default()
        }
        .try_new()
        .unwrap_err();
        assert_eq!(e.field, "client_wrr.weight_expiration_period");
        // gRPC raises a too-short update period to 100 ms.
        let a = ClientWrrConfig {
            weight_update_period: Nanos::from_millis(10),
            ..ClientWrrConfig::default()
        }
        .try_new()
        .unwrap();
        assert_eq!(a.update_period, Nanos::from_millis(100));
        let c: ClientWrrConfig =
            serde_json::from_str(r#"{"blackout_period":"0s","weight_update_period":"500ms"}"#)
                .unwrap();
        assert_eq!(c.blackout_period, Nanos::ZERO);
        assert_eq!(c.weight_update_period, Nanos::from_millis(500));
        assert!(serde_json::from_str::<ClientWrrConfig>(r#"{"oob":true}"#).is_err());
    }
}
