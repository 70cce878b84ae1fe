//! `meshsim fit TRACE`: the service-time distribution of every endpoint of
//! a trace (fitted to its calls' self times), and optionally a
//! structure-only replay scenario built from them.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use meshsim_trace::{Format, ReplayMode, ReplayRecord};

/// Arguments of `meshsim fit`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A trace (Zipkin, OTLP or Jaeger JSON, Alibaba CSV) or a replay record (JSON).
    trace: PathBuf,
    /// The trace's format: zipkin, otlp, jaeger, alibaba or record (default: guessed from the contents).
    #[arg(long)]
    format: Option<String>,
    /// Also write a structure-only replay scenario here (its arrivals go beside it).
    #[arg(long)]
    scenario: Option<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let file = args.trace.display().to_string();
    let text = std::fs::read_to_string(&args.trace).with_context(|| format!("reading {file}"))?;
    let rec = load(&text, &file, args.format.as_deref())?;
    let fits = meshsim_trace::fit::fit(&rec);
    let mut o = std::io::stdout().lock();
    writeln!(
        o,
        "{:<20} {:<32} {:>6} {:>9} {:>9} {:>9}  fitted",
        "service", "endpoint", "calls", "mean_ms", "p50_ms", "p99_ms"
    )?;
    for ((svc, ep), f) in &fits {
        writeln!(
            o,
            "{:<20} {:<32} {:>6} {:>9.3} {:>9.3} {:>9.3}  {}",
            svc,
            ep,
            f.count,
            f.mean_ns / 1e6,
            f.p50_ns as f64 / 1e6,
            f.p99_ns as f64 / 1e6,
            f.describe
        )?;
    }
    drop(o);
    if let Some(s) = &args.scenario {
        crate::import::write_replay(&rec, ReplayMode::Structure, s)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads a trace in `format`, or guesses: a replay record has `requests`,
/// OTLP `resourceSpans`, Jaeger `spans` or `data`, Zipkin is a JSON list,
/// anything else is taken as an Alibaba CSV.
pub fn load(text: &str, file: &str, format: Option<&str>) -> anyhow::Result<ReplayRecord> {
    let t = text.trim_start();
    let guess = match format {
        Some(f) => f.to_owned(),
        None if t.starts_with('[') => "zipkin".into(),
        None if t.starts_with('{') => {
            let head: String = t.chars().take(4096).collect();
            if head.contains("\"requests\"") {
                "record".into()
            } else if head.contains("\"resourceSpans\"") {
                "otlp".into()
            } else {
                "jaeger".into()
            }
        }
        None => "alibaba".into(),
    };
    let f = match guess.as_str() {
        "record" => {
            return serde_json::from_str(text)
                .with_context(|| format!("{file}: not a replay record"))
        }
        "zipkin" => Format::Zipkin,
        "otlp" => Format::Otlp,
        "jaeger" => Format::Jaeger,
        "alibaba" => Format::Alibaba,
        other => {
            anyhow::bail!("--format {other:?}: expected zipkin, otlp, jaeger, alibaba or record")
        }
    };
    Ok(meshsim_trace::import(f, text, file)?)
}
