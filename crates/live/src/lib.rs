//! meshsim's live mode: a sidecar proxy, a fake backend and an open-loop load
//! generator, all on loopback, running the core crate's algorithms.
//!
//! - [`proxy`]: `meshsim proxy`, an HTTP/1.1 sidecar whose every decision
//!   (balancing, breaking, ejection, retries, budgets, timeouts, faults,
//!   health) is the core's.
//! - [`backend`]: `meshsim backend`, a fake service instance with a
//!   service-time distribution, workers, a bounded queue, errors and
//!   downstream calls.
//! - [`load`]: `meshsim load`, an open-loop (or closed-loop) load generator
//!   that writes the simulator's result tables.
//! - [`discovery`]: `meshsim discovery`, versioned endpoint sets for
//!   polling proxies.
//!
//! Time: [`clock`] is the one module that reads the clock; everything else
//! gets core [`Time`](meshsim_core::Time) from a [`clock::Clock`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod backend;
pub mod clock;
pub mod discovery;
pub mod h1;
mod h1_server;
pub mod http;
pub mod jwt;
pub mod load;
pub mod orchestrate;
pub mod proxy;
pub mod serve;
pub mod shutdown;
pub mod tls;
pub mod tls_calibrate;

/// A tokio runtime for one of the live programs: `workers` threads (1 gives
/// a current-thread runtime: one core, as a one-worker nginx or HAProxy).
pub fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
}
