//! # meshsim-core
//!
//! The algorithms of a service mesh's data plane — load balancing, discovery,
//! health checking, circuit breaking, outlier detection, retries, timeouts,
//! rate and concurrency limits, fault injection — as plain state machines with
//! no I/O. The simulator drives them in virtual time; the live proxy drives
//! them under tokio. Both get the same decisions from the same inputs.
//!
//! Rules every module follows:
//!
//! - Time is passed in as [`Time`] (integer nanoseconds since the run
//!   started). Nothing reads a clock, sleeps or spawns.
//! - Randomness is passed in per call as `&mut dyn Rng`; the sampling code is
//!   in [`rng`], so a dependency upgrade cannot change a sampled value.
//! - Configuration is validated once (`try_new` / `validate` returning
//!   [`ConfigError`]); after that, deciding cannot fail.
//! - Reads never mutate; state changes only on explicit events.
//! - One instance per (client sidecar, upstream cluster): every sidecar has
//!   its own view, as in a real mesh.
//!
//! Semantics and defaults follow the production system each algorithm is
//! named after; each module names its sources.
//!
//! ```
//! use meshsim_core::balance::{BalancerConfig, CommonConfig};
//! use meshsim_core::{Completion, Endpoint, EndpointChange, Nanos, Outcome, PickRequest, Time};
//! use rand_core::SeedableRng;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A scenario file says `balancer = { kind = "peak_ewma" }`.
//! let config: BalancerConfig = serde_json::from_str(r#"{"kind": "peak_ewma"}"#)?;
//! let mut lb = config.load_balancer(CommonConfig::default())?; // one per (client, upstream)
//! lb.update(EndpointChange::Reset((0..3).map(Endpoint::new).collect()), Time::ZERO)?;
//!
//! let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
//! let now = Time::ZERO;
//! let id = lb.pick(&PickRequest::default(), now, &mut rng).expect("three endpoints");
//! lb.on_start(id, now);
//! let done = Completion { latency: Nanos::from_millis(3), outcome: Outcome::OK };
//! lb.on_complete(id, &done, now + Nanos::from_millis(3));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod authz;
pub mod balance;
pub mod breaker;
pub mod discovery;
pub mod endpoint;
pub mod error;
pub mod fault;
pub mod health;
pub mod limit;
pub mod math;
pub mod outlier;
pub mod retry;
pub mod rng;
pub mod script;
pub mod time;

pub use endpoint::{
    Completion, Endpoint, EndpointChange, EndpointId, LoadReport, Outcome, PickRequest, Zone,
};
pub use error::ConfigError;
pub use time::{round_to_u64, Nanos, Time};
