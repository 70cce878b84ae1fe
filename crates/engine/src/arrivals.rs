//! Open-loop arrivals whose rate changes over time: phases (steps and
//! linear ramps) and a sinusoidal (diurnal) swing, as a non-homogeneous
//! Poisson process sampled by thinning (Lewis & Shedler, 1979): candidates
//! come at the peak rate and each is kept with probability rate(t)/peak.

use meshsim_core::rng::unit;
use meshsim_core::{Nanos, Time};
use meshsim_scenario::{Arrivals, Workload};
use rand_distr::{Distribution, Exp1};
use rand_xoshiro::Xoshiro256PlusPlus;

#[derive(Debug)]
struct Phase {
    start: Time,
    end: Time,
    from: f64,
    to: f64,
}

/// The arrival process of an open-loop workload.
#[derive(Debug)]
pub(crate) struct OpenArrivals {
    base: f64,
    phases: Vec<Phase>,
    diurnal: Option<(f64, f64, f64)>,
    peak: f64,
    constant: bool,
}

impl OpenArrivals {
    pub fn new(w: &Workload) -> Option<OpenArrivals> {
        let base = w.rate?;
        let mut t = Time::ZERO;
        let mut phases = Vec::new();
        for p in &w.phases {
            let end = t + p.duration;
            phases.push(Phase {
                start: t,
                end,
                from: p.rate,
                to: p.ramp_to.unwrap_or(p.rate),
            });
            t = end;
        }
        let diurnal = w.diurnal.as_ref().map(|d| {
            (
                d.period.as_nanos() as f64,
                d.amplitude,
                d.phase.as_nanos() as f64,
            )
        });
        let top = phases
            .iter()
            .flat_map(|p| [p.from, p.to])
            .fold(base, f64::max);
        let peak = top * (1.0 + diurnal.map_or(0.0, |d| d.1));
        Some(OpenArrivals {
            base,
            phases,
            diurnal,
            peak,
            constant: w.arrivals == Arrivals::Constant,
        })
    }

    /// Requests per second at `t`.
    pub fn rate(&self, t: Time) -> f64 {
        let r = match self.phases.iter().find(|p| p.start <= t && t < p.end) {
            Some(p) => {
                let f = (t.0 - p.start.0) as f64 / (p.end.0 - p.start.0) as f64;
                p.from + (p.to - p.from) * f
            }
            None => self.base,
        };
        match self.diurnal {
            Some((period, amp, shift)) => {
                let x = std::f64::consts::TAU * ((t.0 as f64 + shift) / period);
                r * (1.0 + amp * x.sin())
            }
            None => r,
        }
    }

    /// The next arrival after `now`, or `None` if there is none before `end`.
    pub fn next(&self, now: Time, end: Time, rng: &mut Xoshiro256PlusPlus) -> Option<Time> {
        if self.peak <= 0.0 {
            return None;
        }
        if self.constant {
            // Evenly spaced at the current rate; through a zero-rate stretch,
            // probe forward at the peak spacing until the rate returns.
            let mut t = now;
            loop {
                let r = self.rate(t);
                let gap = if r > 0.0 { 1e9 / r } else { 1e9 / self.peak };
                t += Nanos(gap.round().max(1.0) as u64);
                if t > end {
                    return None;
                }
                if r > 0.0 {
                    return Some(t);
                }
            }
        }
        let mut t = now;
        loop {
            let e: f64 = Exp1.sample(rng);
            t += Nanos((e * 1e9 / self.peak).round().max(1.0) as u64);
            if t > end {
                return None;
            }
            // A constant rate needs no thinning (and no extra draw).
            if self.phases.is_empty() && self.diurnal.is_none() {
                return Some(t);
            }
            if unit(rng) * self.peak <= self.rate(t) {
                return Some(t);
            }
        }
    }
}
