//! Per-cluster admission limits in the proxy: an adaptive concurrency limit
//! (Envoy's gradient controller or Netflix concurrency-limits; 503 over the
//! limit) and a local rate limit (Envoy's token bucket; 429 when empty).
//! Both are the core's state machines; this module only holds them in a
//! `Send` form and counts what they refuse.

use meshsim_core::limit::adaptive::Adaptive;
use meshsim_core::limit::aimd::Aimd;
use meshsim_core::limit::gradient2::Gradient2;
use meshsim_core::limit::token_bucket::TokenBucket;
use meshsim_core::limit::vegas::Vegas;
use meshsim_core::limit::{ConcurrencyLimit, ConcurrencyLimitConfig, Sample};
use meshsim_core::{ConfigError, Time};
use rand_xoshiro::Xoshiro256PlusPlus;

/// A built concurrency limit (the core's, as a concrete `Send` type).
#[derive(Debug)]
pub enum Limiter {
    /// Envoy adaptive concurrency.
    Adaptive(Adaptive),
    /// Netflix AIMD.
    Aimd(Aimd),
    /// Netflix Vegas.
    Vegas(Vegas),
    /// Netflix Gradient2.
    Gradient2(Gradient2),
}

impl Limiter {
    /// Validates and builds `cfg`, created at `now`.
    pub fn new(cfg: &ConcurrencyLimitConfig, now: Time) -> Result<Limiter, ConfigError> {
        Ok(match cfg {
            ConcurrencyLimitConfig::Adaptive(c) => Limiter::Adaptive(c.try_new_at(now)?),
            ConcurrencyLimitConfig::Aimd(c) => Limiter::Aimd(c.try_new()?),
            ConcurrencyLimitConfig::Vegas(c) => Limiter::Vegas(c.try_new()?),
            ConcurrencyLimitConfig::Gradient2(c) => Limiter::Gradient2(c.try_new()?),
        })
    }

    fn get(&self) -> &dyn ConcurrencyLimit {
        match self {
            Limiter::Adaptive(l) => l,
            Limiter::Aimd(l) => l,
            Limiter::Vegas(l) => l,
            Limiter::Gradient2(l) => l,
        }
    }

    fn get_mut(&mut self) -> &mut dyn ConcurrencyLimit {
        match self {
            Limiter::Adaptive(l) => l,
            Limiter::Aimd(l) => l,
            Limiter::Vegas(l) => l,
            Limiter::Gradient2(l) => l,
        }
    }

    /// The current limit.
    pub fn limit(&self) -> u32 {
        self.get().limit()
    }

    /// Whether one more request may start with `inflight` in flight.
    pub fn try_acquire(&self, inflight: u32) -> bool {
        self.get().try_acquire(inflight)
    }

    /// A request ended; runs any timer that is due first.
    pub fn on_sample(&mut self, now: Time, sample: Sample, rng: &mut Xoshiro256PlusPlus) {
        let l = self.get_mut();
        if l.next_deadline().is_some_and(|t| t <= now) {
            l.on_timer(now, rng);
        }
        l.on_sample(now, sample, rng);
    }
}

/// The admission state of one cluster.
#[derive(Debug, Default)]
pub struct Admission {
    /// Adaptive concurrency limit, if configured.
    pub limiter: Option<Limiter>,
    /// Local rate limit, if configured.
    pub bucket: Option<TokenBucket>,
    /// Requests admitted and not yet finished (the limiter's in-flight count).
    pub inflight: u32,
}

/// Why a request was refused before any attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Over the concurrency limit: 503.
    Concurrency,
    /// No token: 429.
    Rate,
}

impl Admission {
    /// Admits one request at `now`, or says which limit refused it.
    pub fn admit(&mut self, now: Time) -> Result<u32, Refusal> {
        if let Some(b) = &mut self.bucket {
            if !b.try_consume(now, 1) {
                return Err(Refusal::Rate);
            }
        }
        if let Some(l) = &self.limiter {
            if !l.try_acquire(self.inflight) {
                return Err(Refusal::Concurrency);
            }
        }
        self.inflight += 1;
        Ok(self.inflight)
    }

    /// A request admitted with `inflight` (as `admit` returned) ended.
    pub fn finish(&mut self, now: Time, sample: Sample, rng: &mut Xoshiro256PlusPlus) {
        self.inflight = self.inflight.saturating_sub(1);
        if let Some(l) = &mut self.limiter {
            l.on_sample(now, sample, rng);
        }
    }
}
