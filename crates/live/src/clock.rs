//! The one place in live mode that reads the clock.
//!
//! Every component of live mode measures time as core [`Time`]: integer
//! nanoseconds since its [`Clock`] started (the proxy's, the backend's or
//! the load generator's start). The core's state machines take that `now`
//! exactly as they take the simulator's virtual time. No other module of
//! this crate reads a clock or sleeps by itself: they ask a [`Clock`].
#![allow(clippy::disallowed_methods)] // this module is the designated clock reader

use std::time::{Duration, Instant};

use meshsim_core::{Nanos, Time};

/// Maps the monotonic clock to core [`Time`] since an origin.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::start()
    }
}

impl Clock {
    /// A clock whose `Time::ZERO` is now.
    pub fn start() -> Clock {
        Clock {
            origin: Instant::now(),
        }
    }

    /// The wall clock, for what must be stated in calendar time:
    /// certificate validity and token expiry (`exp`, `nbf`). Nothing else
    /// in live mode uses it; intervals use [`Clock::now`].
    pub fn wall_now() -> std::time::SystemTime {
        std::time::SystemTime::now()
    }

    /// Seconds since the Unix epoch on the wall clock (0 before 1970).
    pub fn unix_secs() -> u64 {
        Clock::wall_now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// Nanoseconds since the origin.
    #[inline]
    pub fn now(&self) -> Time {
        Time(u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// The tokio instant of a core time, for tokio's timers.
    pub fn instant(&self, t: Time) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.origin + Duration::from_nanos(t.0))
    }

    /// Waits (asynchronously) until `t`. tokio's timer has millisecond
    /// granularity; use [`Clock::wait_precise`] on a dedicated thread when
    /// microseconds matter.
    pub async fn sleep_until(&self, t: Time) {
        tokio::time::sleep_until(self.instant(t)).await;
    }

    /// Waits (asynchronously) for `d`.
    pub async fn sleep(&self, d: Nanos) {
        tokio::time::sleep(Duration::from(d)).await;
    }

    /// Waits (asynchronously) for `d` to within the OS's sleep precision
    /// (tens of microseconds) rather than tokio's millisecond timer, which
    /// rounds every wait up to the next millisecond: tokio's timer covers
    /// all but the last 1.5 ms, then a blocking-pool thread sleeps the rest.
    /// For the fake backend's service times, which must match the
    /// simulator's distributions.
    pub async fn sleep_precise(&self, d: Nanos) {
        let deadline = self.now() + d;
        const COARSE: Nanos = Nanos(1_500_000);
        if d > COARSE {
            tokio::time::sleep_until(self.instant(Time(deadline.0 - COARSE.0))).await;
        }
        let left = deadline.saturating_since(self.now());
        if left > Nanos::ZERO {
            let _ =
                tokio::task::spawn_blocking(move || std::thread::sleep(Duration::from(left))).await;
        }
    }

    /// Runs `f` for at most `d`; `None` if it did not finish in time.
    pub async fn timeout<F: std::future::Future>(&self, d: Nanos, f: F) -> Option<F::Output> {
        tokio::time::timeout(Duration::from(d), f).await.ok()
    }

    /// Runs `f` until `t`; `None` if it did not finish by then.
    pub async fn timeout_at<F: std::future::Future>(&self, t: Time, f: F) -> Option<F::Output> {
        tokio::time::timeout_at(self.instant(t), f).await.ok()
    }

    /// Blocks the calling OS thread until `t`. It sleeps until `spin`
    /// before `t`, then spins: Linux overshoots a sleep by its timer slack
    /// (50 µs by default) plus the wake-up latency, so `spin` of about 80 µs
    /// gets within a few microseconds of `t` at the cost of that much CPU
    /// per wait; `spin` zero costs no CPU and is late by that overshoot.
    /// Only for the load generator's scheduler thread, never inside the
    /// async runtime.
    pub fn wait_precise(&self, t: Time, spin: Nanos) {
        loop {
            let now = self.now();
            if now >= t {
                return;
            }
            let left = t.0 - now.0;
            if left > spin.0 {
                std::thread::sleep(Duration::from_nanos(left - spin.0));
            } else {
                std::hint::spin_loop();
            }
        }
    }

    /// Time since the origin, as a `Duration` (for tests and reports).
    pub fn elapsed(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Seconds of wall time since the origin (for `meta.json`).
    pub fn elapsed_secs(&self) -> f64 {
        self.origin.elapsed().as_secs_f64()
    }
}
