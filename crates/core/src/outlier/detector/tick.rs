//! The interval tick of [`OutlierDetector`]: releases, the statistical
//! sweeps (success rate, failure percentage) and the multiplier decay.
//!
//! Envoy `DetectorImpl::onIntervalTimer` and `processSuccessRateEjections`
//! (`source/common/upstream/outlier_detection_impl.cc`): release first, then
//! sweep hosts that are not ejected, then decay. grpc-go
//! `intervalTimerAlgorithm` (`outlierdetection/balancer.go`): sweep first
//! (ejected hosts included in the statistics), then decay or release.

use super::{enforce, Origin, OutlierDetector};
use crate::endpoint::EndpointId;
use crate::outlier::stats::{success_rate_threshold, SuccessRateStats};
use crate::outlier::{Decision, Reason, Variant};
use crate::rng::Rng;
use crate::time::Time;

// === impl OutlierDetector: the interval tick ===

impl OutlierDetector {
    /// The interval tick: call when `now >= next_deadline()` (earlier calls
    /// do nothing). Returns un-ejections and ejections in the order they were
    /// taken, and re-arms the timer at `now + interval`.
    pub fn on_timer(&mut self, now: Time, rng: &mut dyn Rng) -> Vec<Decision> {
        if now < self.next_tick {
            return Vec::new();
        }
        let mut out = Vec::new();
        match self.cfg.variant {
            Variant::Envoy => self.envoy_tick(now, rng, &mut out),
            Variant::Grpc => self.grpc_tick(now, rng, &mut out),
        }
        self.next_tick = now + self.cfg.interval;
        out
    }

    /// `DetectorImpl::onIntervalTimer`.
    fn envoy_tick(&mut self, now: Time, rng: &mut dyn Rng, out: &mut Vec<Decision>) {
        let (base, max) = (self.cfg.base_ejection_time, self.max_ejection_time);
        for (&id, h) in self.hosts.iter_mut() {
            // checkHostForUneject.
            if h.ejected {
                let ejected_for = now - h.last_ejection.unwrap_or(now);
                let due = base.saturating_mul(u64::from(h.backoff)).min(max) + h.jitter;
                if due <= ejected_for {
                    h.release(now);
                    self.ejected -= 1;
                    out.push(Decision::Uneject(id));
                }
            }
            h.external.swap();
            h.local.swap();
        }
        self.envoy_sweep(now, Origin::External, rng, out);
        self.envoy_sweep(now, Origin::Local, rng, out);
        // Decay: a host neither ejected nor released within the last
        // interval loses one step of backoff.
        let interval = self.cfg.interval;
        for h in self.hosts.values_mut() {
            if !h.ejected && h.backoff > 0 && h.last_unejection.is_some_and(|u| now - u >= interval)
            {
                h.backoff -= 1;
            }
        }
    }

    /// `processSuccessRateEjections` for one origin.
    fn envoy_sweep(
        &mut self,
        now: Time,
        origin: Origin,
        rng: &mut dyn Rng,
        out: &mut Vec<Decision>,
    ) {
        let (sr_reason, fp_reason) = match origin {
            Origin::External => (Reason::SuccessRate, Reason::FailurePercentage),
            Origin::Local => (
                Reason::SuccessRateLocalOrigin,
                Reason::FailurePercentageLocalOrigin,
            ),
        };
        let c = &self.cfg;
        let mut sr_hosts = Vec::new();
        let mut fp_hosts = Vec::new();
        for (&id, h) in &self.hosts {
            if h.ejected {
                continue;
            }
            let counts = match origin {
                Origin::External => h.external.previous,
                Origin::Local => h.local.previous,
            };
            let Some(rate) = counts.success_rate() else {
                continue;
            };
            if counts.total >= u64::from(c.success_rate_request_volume) {
                sr_hosts.push((id, rate));
            }
            if counts.total >= u64::from(c.failure_percentage_request_volume) {
                fp_hosts.push((id, rate));
            }
        }
        let mut sr_stats = None;
        if !sr_hosts.is_empty() && sr_hosts.len() >= c.success_rate_minimum_hosts as usize {
            let rates: Vec<f64> = sr_hosts.iter().map(|&(_, r)| r).collect();
            let factor = f64::from(c.success_rate_stdev_factor) / 1000.0;
            sr_stats = success_rate_threshold(&rates, factor);
        }
        match origin {
            Origin::External => self.sr_external = sr_stats,
            Origin::Local => self.sr_local = sr_stats,
        }
        if let Some(s) = sr_stats {
            for &(id, rate) in &sr_hosts {
                if rate < s.threshold {
                    self.stats.ejections_detected[sr_reason.index()] += 1;
                    out.extend(self.envoy_eject(now, id, sr_reason, rng));
                }
            }
        }
        let threshold = f64::from(self.cfg.failure_percentage_threshold);
        if !fp_hosts.is_empty()
            && fp_hosts.len() >= self.cfg.failure_percentage_minimum_hosts as usize
        {
            for (id, rate) in fp_hosts {
                // Envoy would eject a host the success-rate pass just ejected
                // a second time; we skip it.
                if 100.0 - rate >= threshold && !self.is_ejected(id) {
                    self.stats.ejections_detected[fp_reason.index()] += 1;
                    out.extend(self.envoy_eject(now, id, fp_reason, rng));
                }
            }
        }
    }

    /// grpc-go `intervalTimerAlgorithm`: detect first, then decay and release.
    fn grpc_tick(&mut self, now: Time, rng: &mut dyn Rng, out: &mut Vec<Decision>) {
        for h in self.hosts.values_mut() {
            h.external.swap();
        }
        self.grpc_success_rate(now, rng, out);
        self.grpc_failure_percentage(now, rng, out);
        let base = self.cfg.base_ejection_time;
        let cap = base.max(self.max_ejection_time);
        for (&id, h) in self.hosts.iter_mut() {
            if !h.ejected {
                h.backoff = h.backoff.saturating_sub(1);
                continue;
            }
            let due = base.saturating_mul(u64::from(h.backoff)).min(cap);
            if now > h.last_ejection.unwrap_or(now) + due {
                h.release(now);
                self.ejected -= 1;
                out.push(Decision::Uneject(id));
            }
        }
    }

    /// Hosts with at least `volume` requests last interval, with their
    /// (successes, total). Ejected hosts are included, as in grpc-go.
    fn grpc_candidates(&self, volume: u32) -> Vec<(EndpointId, f64, f64)> {
        self.hosts
            .iter()
            .filter(|(_, h)| h.external.previous.total > 0)
            .filter(|(_, h)| h.external.previous.total >= u64::from(volume))
            .map(|(&id, h)| {
                let p = h.external.previous;
                (id, p.success as f64, p.total as f64)
            })
            .collect()
    }

    /// gRPC's max-percent rule: stop once `ejected / n × 100 >= max`, but
    /// always allow the first ejection.
    fn grpc_full(&self) -> bool {
        let e = self.ejected as u64;
        e > 0 && e * 100 >= u64::from(self.cfg.max_ejection_percent) * self.hosts.len() as u64
    }

    fn grpc_eject(
        &mut self,
        now: Time,
        id: EndpointId,
        reason: Reason,
        rng: &mut dyn Rng,
    ) -> Option<Decision> {
        self.stats.ejections_detected[reason.index()] += 1;
        if !enforce(rng, self.enforcement(reason)) {
            return None;
        }
        let h = self.hosts.get_mut(&id)?;
        h.ejected = true;
        h.num_ejections += 1;
        h.last_ejection = Some(now);
        h.backoff = h.backoff.saturating_add(1);
        self.ejected += 1;
        self.stats.ejections_enforced[reason.index()] += 1;
        Some(Decision::Eject(id, reason))
    }

    fn grpc_success_rate(&mut self, now: Time, rng: &mut dyn Rng, out: &mut Vec<Decision>) {
        self.sr_external = None;
        let cands = self.grpc_candidates(self.cfg.success_rate_request_volume);
        if cands.is_empty() || cands.len() < self.cfg.success_rate_minimum_hosts as usize {
            return;
        }
        // grpc-go works in fractions of one.
        let rates: Vec<f64> = cands.iter().map(|&(_, s, t)| s / t).collect();
        let factor = f64::from(self.cfg.success_rate_stdev_factor) / 1000.0;
        let Some(s) = success_rate_threshold(&rates, factor) else {
            return;
        };
        self.sr_external = Some(SuccessRateStats {
            mean: s.mean * 100.0,
            stdev: s.stdev * 100.0,
            threshold: s.threshold * 100.0,
        });
        for (&(id, _, _), &rate) in cands.iter().zip(&rates) {
            if self.grpc_full() {
                return;
            }
            if rate < s.threshold && !self.is_ejected(id) {
                out.extend(self.grpc_eject(now, id, Reason::SuccessRate, rng));
            }
        }
    }

    fn grpc_failure_percentage(&mut self, now: Time, rng: &mut dyn Rng, out: &mut Vec<Decision>) {
        let cands = self.grpc_candidates(self.cfg.failure_percentage_request_volume);
        if cands.is_empty() || cands.len() < self.cfg.failure_percentage_minimum_hosts as usize {
            return;
        }
        let threshold = f64::from(self.cfg.failure_percentage_threshold);
        for (id, s, t) in cands {
            if self.grpc_full() {
                return;
            }
            // Strictly above, unlike Envoy's >=.
            let failure_percentage = ((t - s) / t) * 100.0;
            if failure_percentage > threshold && !self.is_ejected(id) {
                out.extend(self.grpc_eject(now, id, Reason::FailurePercentage, rng));
            }
        }
    }
}
