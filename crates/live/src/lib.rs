//! meshsim's live mode: a sidecar proxy, a fake backend and an open-loop load
//! generator, all on loopback, running the core crate's algorithms.
