//! The trace importers' integration tests, one binary: each module is one format.

mod common;

mod formats;
mod isotope;
mod zipkin;
