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
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod balance;
pub mod breaker;
pub mod discovery;
pub mod endpoint;
pub mod error;
pub mod fault;
pub mod health;
pub mod limit;
pub mod outlier;
pub mod retry;
pub mod rng;
pub mod script;
pub mod time;

pub use endpoint::{
    Completion, Endpoint, EndpointChange, EndpointId, LoadReport, Outcome, PickRequest, Zone,
};
pub use error::ConfigError;
pub use time::{Nanos, Time};
