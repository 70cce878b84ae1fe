//! # meshsim-engine
//!
//! A deterministic discrete-event simulation of a service mesh. Virtual time
//! is integer nanoseconds; the event queue is ordered by (time, sequence
//! number), so simultaneous events run in insertion order; every random
//! stream derives from the scenario seed and a component name, so adding a
//! component does not perturb the others. The same scenario and seed give
//! byte-identical result tables on every machine.
//!
//! The model: open-loop arrivals reach the entry service through a fleet of
//! client sidecars, each with its own [`LoadBalancer`](meshsim_core::balance::LoadBalancer)
//! (its own view of the instances, its own in-flight counts); each instance
//! has a worker pool and a FIFO queue; latency is measured from the
//! intended arrival time, so there is no coordinated omission.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod arrivals;
mod model;
mod queue;
mod sim;
mod slab;
mod streams;
mod tls;
mod tracer;
mod world;

pub use meshsim_scenario::Sampler;
pub use model::{simulate, simulate_traced, simulate_with_progress, Accounting, Output};
pub use streams::{replication_seed, stream};
pub use tracer::{SampledRequest, TracedCall};

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The scenario failed to build an algorithm (should have been caught by validation).
    #[error("{0}")]
    Config(#[from] meshsim_core::ConfigError),
    /// A distribution could not be built.
    #[error("{0}")]
    Dist(String),
}
