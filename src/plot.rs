//! `meshsim plot INPUT…`: figures from result tables.

use std::path::PathBuf;
use std::process::ExitCode;

use meshsim_plot::Format;

/// Arguments of `meshsim plot`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// One sweep directory, one plan directory (`meshsim plan --out`), or
    /// one or more run directories (overlaid as variants).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Where the figures go. Default: a `plots` directory inside the first input.
    #[arg(long)]
    out: Option<PathBuf>,
    /// `svg` (default) or `png`.
    #[arg(long, default_value = "svg", value_parser = ["svg", "png"])]
    format: String,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let format = if args.format == "png" {
        Format::Png
    } else {
        Format::Svg
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.inputs[0].join("plots"));
    for f in meshsim_plot::plot(&args.inputs, &out, format)? {
        println!("{}", f.display());
    }
    Ok(ExitCode::SUCCESS)
}
