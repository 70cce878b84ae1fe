//! Live mode's integration tests, one binary: each module is one area.

mod common;

mod backend_scripts;
mod balancers;
mod calls;
mod discovery;
mod failures;
mod fault_knobs;
mod h1_client;
mod h1_server;
mod http2;
mod limits;
mod orchestrate_faults;
mod orchestrate_guard;
mod orchestrate_plan;
mod orchestrate_scenarios;
mod orchestrate_workload;
mod robustness;
mod security;
mod think_time;
mod thirdparty_counters;
mod upstream_http2;
mod zone_aware;
