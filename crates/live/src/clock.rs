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
    /// granularity; use a [`PreciseTimer`] when microseconds matter.
    pub async fn sleep_until(&self, t: Time) {
        tokio::time::sleep_until(self.instant(t)).await;
    }

    /// Waits (asynchronously) for `d`.
    pub async fn sleep(&self, d: Nanos) {
        tokio::time::sleep(Duration::from(d)).await;
    }

    /// Waits (asynchronously) for `d` to within the kernel's wake-up
    /// latency rather than tokio's millisecond timer, which rounds every
    /// wait up to the next millisecond: on a [`PreciseTimer`] of its own.
    /// For the fake backend's service times, which must match the
    /// simulator's distributions, and the sidecars' emulated network. If
    /// no timer can be made (out of descriptors), a blocking-pool thread
    /// sleeps instead, late by its timer slack and a second wake-up.
    pub async fn sleep_precise(&self, d: Nanos) {
        let deadline = self.now() + d;
        if let Ok(timer) = self.precise_timer() {
            if timer.sleep_until(deadline).await.is_ok() {
                return;
            }
        }
        let left = deadline.saturating_since(self.now());
        if left > Nanos::ZERO {
            let _ =
                tokio::task::spawn_blocking(move || std::thread::sleep(Duration::from(left))).await;
        }
    }

    /// A timer with nanosecond resolution that waits inside the async
    /// runtime (see [`PreciseTimer`]).
    pub fn precise_timer(&self) -> std::io::Result<PreciseTimer> {
        PreciseTimer::new(*self)
    }

    /// Runs `f` for at most `d`; `None` if it did not finish in time.
    pub async fn timeout<F: std::future::Future>(&self, d: Nanos, f: F) -> Option<F::Output> {
        tokio::time::timeout(Duration::from(d), f).await.ok()
    }

    /// Runs `f` until `t`; `None` if it did not finish by then.
    pub async fn timeout_at<F: std::future::Future>(&self, t: Time, f: F) -> Option<F::Output> {
        tokio::time::timeout_at(self.instant(t), f).await.ok()
    }

    /// Blocks the calling OS thread until `t` (late by the kernel's timer
    /// slack). For plain threads (tests), never inside the async runtime,
    /// which has [`PreciseTimer`].
    pub fn block_until(&self, t: Time) {
        let left = t.saturating_since(self.now());
        if left > Nanos::ZERO {
            std::thread::sleep(Duration::from(left));
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

/// Waits until a core [`Time`] to within the kernel's wake-up latency,
/// inside the async runtime: a Linux `timerfd` (an hrtimer, which the
/// kernel fires without timer slack) registered with tokio's reactor, so
/// the runtime's own `epoll_wait` returns when it fires. tokio's timer
/// would round every wait up to the next millisecond, and sleeping on
/// another thread pays that thread's wake-up plus a second one to hand
/// the work to the runtime (about 70 µs on a busy 2-core machine).
/// Elsewhere than Linux it falls back to tokio's timer.
#[derive(Debug)]
pub struct PreciseTimer {
    clock: Clock,
    /// The timerfd in tokio's reactor. tokio's readiness wrapper for a
    /// bare descriptor (`AsyncFd`) needs `unsafe`, which this workspace
    /// forbids; its pipe reader takes any pollable descriptor safely, and a
    /// timerfd reads as a pipe does: 8 bytes once it has fired, `EAGAIN`
    /// before.
    #[cfg(target_os = "linux")]
    fd: tokio::net::unix::pipe::Receiver,
}

impl PreciseTimer {
    #[cfg(target_os = "linux")]
    fn new(clock: Clock) -> std::io::Result<PreciseTimer> {
        use rustix::time::{timerfd_create, TimerfdClockId, TimerfdFlags};
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        Ok(PreciseTimer {
            clock,
            fd: tokio::net::unix::pipe::Receiver::from_owned_fd_unchecked(fd)?,
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn new(clock: Clock) -> std::io::Result<PreciseTimer> {
        Ok(PreciseTimer { clock })
    }

    /// Waits until `t - spin` on the timer, then yields to the runtime's
    /// other tasks (so responses are still read) until `t`. An idle core
    /// wakes later than a busy one, so at low request rates a short spin
    /// keeps the send on time, at the cost of `spin` of CPU per wait.
    pub async fn sleep_until_spin(&self, t: Time, spin: Nanos) -> std::io::Result<()> {
        if spin > Nanos::ZERO {
            self.sleep_until(Time(t.0.saturating_sub(spin.0))).await?;
            while self.clock.now() < t {
                tokio::task::yield_now().await;
            }
            return Ok(());
        }
        self.sleep_until(t).await
    }

    /// Waits until `t` (returns at once if it has passed).
    #[cfg(target_os = "linux")]
    pub async fn sleep_until(&self, t: Time) -> std::io::Result<()> {
        use rustix::time::{timerfd_settime, Itimerspec, TimerfdTimerFlags, Timespec};
        loop {
            let left = t.saturating_since(self.clock.now());
            if left == Nanos::ZERO {
                return Ok(());
            }
            // Relative to now: `Instant` does not expose its raw
            // CLOCK_MONOTONIC value, and the nanoseconds between reading
            // the clock and arming the timer do not matter here.
            let spec = Itimerspec {
                it_interval: Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: Timespec {
                    tv_sec: (left.0 / 1_000_000_000) as i64,
                    tv_nsec: (left.0 % 1_000_000_000) as i64,
                },
            };
            timerfd_settime(&self.fd, TimerfdTimerFlags::empty(), &spec)?;
            self.fd.readable().await?;
            // Reading the expiry count empties the one-shot timer, which
            // stays unreadable until it is armed again; `WouldBlock` is a
            // readiness left from an earlier expiry (tokio then clears it).
            let mut buf = [0u8; 8];
            match self.fd.try_read(&mut buf) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits until `t` (returns at once if it has passed).
    #[cfg(not(target_os = "linux"))]
    pub async fn sleep_until(&self, t: Time) -> std::io::Result<()> {
        self.clock.sleep_until(t).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The timer never wakes early, re-arms for each wait, returns at once
    /// for a past time, and resolves below tokio's millisecond: tokio's
    /// timer rounds each deadline up to its next millisecond tick, so waits
    /// of 300 µs from arbitrary moments would be late by about 500 µs at
    /// the median (uniform over the tick), while a timerfd is late by the
    /// wake-up latency, tens of microseconds even on a busy 2-core machine.
    /// The 250 µs bound on the median of 100 waits sits between the two.
    #[tokio::test(flavor = "current_thread")]
    async fn the_precise_timer_is_never_early_and_resolves_below_a_millisecond() {
        let clock = Clock::start();
        let timer = clock.precise_timer().unwrap();
        let mut late = Vec::new();
        for _ in 0..100 {
            let t = clock.now() + Nanos::from_micros(300);
            timer.sleep_until(t).await.unwrap();
            let now = clock.now();
            assert!(now >= t, "woke {} ns early", t.0 - now.0);
            late.push(now.0 - t.0);
        }
        late.sort_unstable();
        let median = late[late.len() / 2];
        assert!(median < 250_000, "median lateness {median} ns");
        let past = clock.now();
        timer.sleep_until(Time::ZERO).await.unwrap();
        timer
            .sleep_until_spin(past, Nanos::from_micros(25))
            .await
            .unwrap();
        assert!(clock.now() >= past);
    }
}
