//! The engine's integration tests, one binary: each module is one area.

mod common;

mod authz;
mod determinism;
mod distributions;
mod dynamics;
mod faults;
mod fuzz;
mod scenarios;
mod tls;
mod validation;
