//! meshsim's command-line tests, one binary (one link, one feature
//! resolution): each module is one command or area.

mod common;

mod certs_cli;
mod cli;
mod compare_plan;
mod gate;
mod import_cli;
mod live_cli;
mod live_faults;
mod live_network;
mod live_orchestrate;
mod live_replications;
mod live_scenarios;
mod live_security;
mod live_thirdparty_counters;
mod live_workload;
mod plot;
mod sweep;
mod traces;
