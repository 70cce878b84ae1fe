//! The `meshsim` command line: one module per subcommand, thin over the crates.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod algorithms;
mod backend;
mod bench;
mod calibrate;
mod certs;
mod compare;
mod fit;
mod gap;
mod gate;
mod generate;
mod import;
mod live;
mod load;
mod plan;
mod plot;
mod proxy;
mod run;
mod schema;
mod staging;
mod sweep;
mod traces;

/// Service-mesh simulator and benchmarking harness.
#[derive(Parser, Debug)]
#[command(name = "meshsim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List every algorithm with a one-line description and its defaults.
    Algorithms(algorithms::Args),
    /// Live: a fake service instance (service time, workers, queue, errors, calls).
    Backend(backend::Args),
    /// Live: a tiny discovery server (versioned endpoint sets) for `meshsim proxy`.
    Discovery(proxy::DiscoveryArgs),
    /// Live: an open-loop (or closed-loop) load generator that writes result tables.
    Load(load::Args),
    /// Live: a sidecar proxy running meshsim's algorithms.
    Proxy(proxy::Args),
    /// Live: a throwaway mesh CA, workload certificates (SPIFFE IDs) and a JWT key.
    Certs(certs::Args),
    /// Live: sign a JWT for `meshsim proxy`'s [jwt] validation.
    Token(certs::TokenArgs),
    /// The engine benchmark suite: events/s, requests/s and peak memory per case.
    Bench(bench::Args),
    /// Write a synthetic topology (tree, chain or random DAG) as a scenario.
    Generate(generate::Args),
    /// Import an isotope topology as a scenario, or a trace as a replay record.
    Import(import::Args),
    /// Live: run a scenario with real processes on loopback (meshsim, HAProxy or nginx sidecars).
    Live(live::Args),
    /// The sim-to-real gap: a scenario simulated and run live, per metric side by side.
    Gap(gap::Args),
    /// Live: measure this machine's per-hop proxy and backend cost as scenario parameters.
    Calibrate(calibrate::Args),
    /// Fit per-endpoint service-time distributions to a trace; emit a scenario.
    Fit(fit::Args),
    /// Simulate a scenario and write its result tables.
    Run(run::Args),
    /// Two runs or sweeps side by side: differences, intervals, significance.
    Compare(compare::Args),
    /// CI regression gate: re-run scenarios against committed baselines (exit 0/1/2).
    Gate(gate::Args),
    /// Smallest value of a capacity parameter meeting service-level objectives.
    Plan(plan::Args),
    /// Figures (SVG or PNG) from runs, sweeps and plans.
    Plot(plot::Args),
    /// Run a grid of scenario variants × seeds in parallel, with confidence intervals.
    Sweep(sweep::Args),
    /// Combine the shard directories of a sweep into one.
    Merge(sweep::MergeArgs),
    /// Print the JSON Schema of scenario files (for editor completion).
    Schema(schema::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Algorithms(args) => algorithms::run(&args),
        Command::Backend(args) => backend::run(&args),
        Command::Discovery(args) => proxy::run_discovery(&args),
        Command::Load(args) => load::run(&args),
        Command::Proxy(args) => proxy::run(&args),
        Command::Certs(args) => certs::run(&args),
        Command::Token(args) => certs::token(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Generate(args) => generate::run(&args),
        Command::Import(args) => import::run(&args),
        Command::Live(args) => live::run(&args),
        Command::Gap(args) => gap::run(&args),
        Command::Calibrate(args) => calibrate::run(&args),
        Command::Fit(args) => fit::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Compare(args) => compare::run(&args),
        Command::Gate(args) => gate::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Plot(args) => plot::run(&args),
        Command::Sweep(args) => sweep::run(&args),
        Command::Merge(args) => sweep::merge(&args),
        Command::Schema(args) => schema::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // A closed pipe (`meshsim algorithms | head`) is not an error.
            if err
                .chain()
                .filter_map(|e| e.downcast_ref::<std::io::Error>())
                .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "error: {err}");
            for cause in err.chain().skip(1) {
                let _ = writeln!(stderr, "  caused by: {cause}");
            }
            ExitCode::from(2)
        }
    }
}
