//! `meshsim import isotope FILE`: an isotope service graph → a scenario;
//! `meshsim import zipkin|otlp|jaeger|alibaba FILE`: a trace → a replay
//! record (and, with `--scenario`, a scenario that replays it).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use meshsim_trace::isotope::{import_isotope, IsotopeOptions};

/// Arguments of `meshsim import`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand, Debug)]
enum What {
    /// Convert an isotope service graph (YAML) into a meshsim scenario.
    Isotope(IsotopeArgs),
    /// Import a Zipkin v2 JSON trace (a list of spans) into a replay record.
    Zipkin(TraceArgs),
    /// Import an OTLP/JSON trace (`resourceSpans`) into a replay record.
    Otlp(TraceArgs),
    /// Import a Jaeger JSON trace (UI/API form) into a replay record.
    Jaeger(TraceArgs),
    /// Import an Alibaba cluster-trace-microservices call-graph CSV (v2021 or v2022).
    Alibaba(TraceArgs),
}

#[derive(clap::Args, Debug)]
struct IsotopeArgs {
    /// The isotope YAML file.
    file: PathBuf,
    /// Write the scenario here (default: standard output).
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Requests per second at the entry service (sent evenly, as fortio does).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Simulated time.
    #[arg(long, default_value = "10s")]
    duration: String,
    /// The entry service, when the file marks none or several.
    #[arg(long)]
    entry: Option<String>,
}

#[derive(clap::Args, Debug)]
struct TraceArgs {
    /// The trace file.
    file: PathBuf,
    /// Write the replay record (JSON) here (default: standard output).
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Also write a scenario that replays the trace (its arrival schedule
    /// goes beside it, as `<scenario stem>.arrivals.csv`).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Replay mode of that scenario: `timing` (recorded self times) or
    /// `structure` (service times drawn from distributions fitted per endpoint).
    #[arg(long, default_value = "timing")]
    mode: String,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    match &args.what {
        What::Isotope(a) => isotope(a),
        What::Zipkin(a) => trace(a, meshsim_trace::Format::Zipkin),
        What::Otlp(a) => trace(a, meshsim_trace::Format::Otlp),
        What::Jaeger(a) => trace(a, meshsim_trace::Format::Jaeger),
        What::Alibaba(a) => trace(a, meshsim_trace::Format::Alibaba),
    }
}

fn isotope(a: &IsotopeArgs) -> anyhow::Result<ExitCode> {
    let file = a.file.display().to_string();
    let text = std::fs::read_to_string(&a.file).with_context(|| format!("reading {file}"))?;
    let opts = IsotopeOptions {
        rate: a.rate,
        duration: a.duration.clone(),
        entry: a.entry.clone(),
    };
    let imp = import_isotope(&text, &file, &opts)?;
    for n in &imp.notes {
        eprintln!("note: not modelled: {n}");
    }
    match &a.out {
        Some(p) => {
            write_atomic(p, &imp.toml)?;
            eprintln!(
                "{} services, entry {:?}: scenario in {}",
                imp.scenario.services.len(),
                imp.scenario.workload.entry,
                p.display()
            );
        }
        None => std::io::stdout().lock().write_all(imp.toml.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

fn trace(a: &TraceArgs, format: meshsim_trace::Format) -> anyhow::Result<ExitCode> {
    let file = a.file.display().to_string();
    let text = std::fs::read_to_string(&a.file).with_context(|| format!("reading {file}"))?;
    let rec = meshsim_trace::import(format, &text, &file)?;
    for w in &rec.warnings {
        eprintln!("warning: {} × {}: {}", w.count, w.kind, w.decision);
    }
    let spans: usize = rec.requests.iter().map(|r| r.root.size()).sum();
    eprintln!(
        "{} request(s), {spans} call(s), {} service(s)",
        rec.requests.len(),
        rec.services().len()
    );
    let json = serde_json::to_string_pretty(&rec)? + "\n";
    match &a.out {
        Some(p) => write_atomic(p, &json)?,
        None if a.scenario.is_none() => std::io::stdout().lock().write_all(json.as_bytes())?,
        None => {}
    }
    if let Some(s) = &a.scenario {
        let mode = meshsim_trace::ReplayMode::parse(&a.mode)?;
        write_replay(&rec, mode, s)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a replay scenario and its arrivals file beside it.
pub fn write_replay(
    rec: &meshsim_trace::ReplayRecord,
    mode: meshsim_trace::ReplayMode,
    scenario: &Path,
) -> anyhow::Result<()> {
    let stem = scenario
        .file_stem()
        .map_or("replay".into(), |s| s.to_string_lossy().into_owned());
    let arrivals_name = format!("{stem}.arrivals.csv");
    let compiled = meshsim_trace::compile(rec, mode, &arrivals_name)?;
    let dir = scenario.parent().unwrap_or(Path::new(""));
    write_atomic(&dir.join(&arrivals_name), &compiled.arrivals_csv)?;
    write_atomic(scenario, &compiled.toml)?;
    eprintln!(
        "{} replay: {} and {}",
        mode.name(),
        scenario.display(),
        dir.join(&arrivals_name).display()
    );
    Ok(())
}

/// Writes `text` to a temporary file beside `path`, then renames it.
pub fn write_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    crate::staging::write_file(path, text.as_bytes())
}
