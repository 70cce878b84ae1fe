//! Open-loop arrivals whose rate changes over time: phases (steps and
//! linear ramps) and a sinusoidal (diurnal) swing, as a non-homogeneous
//! Poisson process sampled by thinning (Lewis & Shedler, 1979): candidates
//! come at the peak rate and each is kept with probability rate(t)/peak.

use meshsim_core::rng::unit;
use meshsim_core::{Nanos, Time};
use meshsim_scenario::{Arrivals, Workload};
use rand_xoshiro::Xoshiro256PlusPlus;

#[derive(Debug)]
struct Phase {
    start: Time,
    end: Time,
    from: f64,
    to: f64,
}

/// Arrivals read from a trace: the times, the endpoint of each (if the
/// trace names them), and how many have been handed out.
#[derive(Debug)]
struct Recorded {
    times: Vec<Time>,
    endpoints: Vec<String>,
    next: std::cell::Cell<usize>,
}

/// The arrival process of an open-loop workload.
#[derive(Debug)]
pub(crate) struct OpenArrivals {
    base: f64,
    phases: Vec<Phase>,
    diurnal: Option<(f64, f64, f64)>,
    peak: f64,
    /// The mean gap at the peak rate, 1e9 / peak nanoseconds (a
    /// multiplication per arrival instead of a division).
    peak_gap_ns: f64,
    constant: bool,
    recorded: Option<Recorded>,
}

impl OpenArrivals {
    pub fn new(w: &Workload) -> Option<OpenArrivals> {
        if let Some(t) = &w.arrival_trace {
            return Some(OpenArrivals {
                base: 0.0,
                phases: Vec::new(),
                diurnal: None,
                peak: 0.0,
                peak_gap_ns: 0.0,
                constant: false,
                recorded: Some(Recorded {
                    times: t.times.iter().map(|&d| Time(d.as_nanos())).collect(),
                    endpoints: t.endpoints.clone(),
                    next: std::cell::Cell::new(0),
                }),
            });
        }
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
            peak_gap_ns: 1e9 / peak,
            constant: w.arrivals == Arrivals::Constant,
            recorded: None,
        })
    }

    /// The endpoint named by the trace for the arrival handed out last
    /// (read it before asking for the next one).
    pub fn current_endpoint(&self) -> Option<&str> {
        let r = self.recorded.as_ref()?;
        let k = r.next.get().checked_sub(1)?;
        r.endpoints.get(k).map(String::as_str)
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
                r * (1.0 + amp * meshsim_core::math::sin_turns((t.0 as f64 + shift) / period))
            }
            None => r,
        }
    }

    /// The next arrival after `now`, or `None` if there is none before `end`.
    pub fn next(&self, now: Time, end: Time, rng: &mut Xoshiro256PlusPlus) -> Option<Time> {
        if let Some(r) = &self.recorded {
            // Recorded times, in order; each is handed out once.
            let k = r.next.get();
            let at = *r.times.get(k)?;
            if at > end {
                return None;
            }
            r.next.set(k + 1);
            return Some(at.max(now));
        }
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
                t += Nanos(meshsim_core::round_to_u64(gap).max(1));
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
            let e = meshsim_core::rng::exp1(rng);
            t += Nanos(meshsim_core::round_to_u64(e * self.peak_gap_ns).max(1));
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

/// The index of the endpoint `name` of the service `sidecar` calls.
pub(crate) fn endpoint_index(w: &crate::world::World, sidecar: u32, name: &str) -> Option<u16> {
    let callee = w.sidecars.get(sidecar as usize)?.callee as usize;
    w.services[callee]
        .endpoints
        .iter()
        .position(|e| e.name == name)
        .map(|k| k as u16)
}
