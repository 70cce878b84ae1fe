//! `meshsim bench --scaling DIR`: how wall time and memory grow with the
//! number of requests and of instances (each point in its own child
//! process, so its peak memory is its own), and how a batch of independent
//! simulations speeds up with rayon threads. Writes CSV tables and SVG
//! curves into DIR.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use plotters::prelude::*;
use rayon::prelude::*;

use super::{measure, measure_in_child, print_row, spec_scenario, write_records, Record, Spec};

pub fn run(dir: &Path, quick: bool) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let requests: &[u64] = if quick {
        &[10_000, 100_000]
    } else {
        &[100_000, 1_000_000, 10_000_000, 100_000_000]
    };
    let instances: &[u32] = if quick {
        &[10, 100, 1000]
    } else {
        &[10, 100, 1_000, 10_000, 100_000]
    };
    let per_instance_run: u64 = if quick { 20_000 } else { 1_000_000 };

    println!("== single-hop: requests");
    let mut by_requests = Vec::new();
    for &n in requests {
        let r = measure_in_child(&Spec {
            case: "single-hop".into(),
            requests: n,
            instances: None,
        })?;
        print_row(&r)?;
        by_requests.push(r);
    }
    write_records(&dir.join("scaling-requests.csv"), &by_requests)?;

    println!("== single-hop: instances ({per_instance_run} requests, 70% load)");
    let mut by_instances = Vec::new();
    for &k in instances {
        let r = measure_in_child(&Spec {
            case: "single-hop".into(),
            requests: per_instance_run,
            instances: Some(k),
        })?;
        print_row(&r)?;
        by_instances.push(r);
    }
    write_records(&dir.join("scaling-instances.csv"), &by_instances)?;

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = 2 * cores;
    let per_job: u64 = if quick { 20_000 } else { 1_000_000 };
    println!("== threads: {jobs} independent single-hop runs of {per_job} requests");
    let mut threads = Vec::new();
    let mut base_wall = None;
    for t in 1..=cores {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .context("building a thread pool")?;
        #[allow(clippy::disallowed_methods)] // a benchmark must read the clock
        let started = std::time::Instant::now();
        let runs: Vec<anyhow::Result<Record>> = pool.install(|| {
            (0..jobs)
                .into_par_iter()
                .map(|j| {
                    let mut sc = spec_scenario(&Spec {
                        case: "single-hop".into(),
                        requests: per_job,
                        instances: None,
                    })?;
                    sc.run.seed = meshsim_engine::replication_seed(sc.run.seed, j as u32);
                    measure("single-hop", &sc)
                })
                .collect()
        });
        let wall = started.elapsed().as_secs_f64();
        let events: u64 = runs
            .into_iter()
            .map(|r| r.map(|r| r.events))
            .sum::<anyhow::Result<u64>>()?;
        let speedup = base_wall.get_or_insert(wall).to_owned() / wall;
        println!(
            "threads {t}: {wall:.3} s wall, {:.1} M events/s in all, speed-up {speedup:.2}x",
            events as f64 / wall / 1e6
        );
        threads.push((t, wall, speedup));
    }
    let mut csv = String::from("threads,jobs,requests_per_job,wall_s,speedup\n");
    for (t, w, s) in &threads {
        csv.push_str(&format!("{t},{jobs},{per_job},{w:.6},{s:.4}\n"));
    }
    crate::generate::write_atomic(&dir.join("scaling-threads.csv"), csv.as_bytes())?;

    let pts = |rs: &[Record], x: fn(&Record) -> f64| -> (Vec<(f64, f64)>, Vec<(f64, f64)>) {
        (
            rs.iter().map(|r| (x(r), r.wall_s)).collect(),
            rs.iter()
                .map(|r| (x(r), r.peak_mb.unwrap_or(0.0)))
                .collect(),
        )
    };
    let (w, m) = pts(&by_requests, |r| r.requests as f64);
    two_panels(
        &dir.join("scaling-requests.svg"),
        "requests simulated",
        &w,
        &m,
    )?;
    let (w, m) = pts(&by_instances, |r| f64::from(r.instances));
    two_panels(&dir.join("scaling-instances.svg"), "instances", &w, &m)?;
    speedup_chart(&dir.join("scaling-threads.svg"), &threads)?;
    println!(
        "tables and curves in {} (meshsim {}, {})",
        dir.display(),
        super::git_revision(),
        super::rustc_version()
    );
    Ok(ExitCode::SUCCESS)
}

fn range(v: &[(f64, f64)], f: fn(&(f64, f64)) -> f64) -> (f64, f64) {
    let lo = v.iter().map(f).fold(f64::INFINITY, f64::min);
    let hi = v.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}

/// Wall time (log-log) and peak memory (log x) against `xlabel`.
fn two_panels(
    path: &Path,
    xlabel: &str,
    wall: &[(f64, f64)],
    mem: &[(f64, f64)],
) -> anyhow::Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let (left, right) = root.split_horizontally(480);
        let (x0, x1) = range(wall, |p| p.0);
        let (y0, y1) = range(wall, |p| p.1);
        let mut c = ChartBuilder::on(&left)
            .caption(format!("wall time vs {xlabel}"), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(
                (x0 * 0.8..x1 * 1.25).log_scale(),
                (y0 * 0.5..y1 * 2.0).log_scale(),
            )
            .map_err(plot_err)?;
        c.configure_mesh()
            .x_desc(xlabel)
            .y_desc("seconds")
            .draw()
            .map_err(plot_err)?;
        c.draw_series(LineSeries::new(wall.iter().copied(), &BLUE))
            .map_err(plot_err)?;
        c.draw_series(wall.iter().map(|&p| Circle::new(p, 3, BLUE.filled())))
            .map_err(plot_err)?;
        let (y1m, _) = (range(mem, |p| p.1).1, ());
        let mut c = ChartBuilder::on(&right)
            .caption(format!("peak memory vs {xlabel}"), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((x0 * 0.8..x1 * 1.25).log_scale(), 0.0..y1m * 1.2)
            .map_err(plot_err)?;
        c.configure_mesh()
            .x_desc(xlabel)
            .y_desc("MB (VmHWM)")
            .draw()
            .map_err(plot_err)?;
        c.draw_series(LineSeries::new(mem.iter().copied(), &RED))
            .map_err(plot_err)?;
        c.draw_series(mem.iter().map(|&p| Circle::new(p, 3, RED.filled())))
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    crate::generate::write_atomic(path, svg.as_bytes())
}

fn speedup_chart(path: &Path, threads: &[(usize, f64, f64)]) -> anyhow::Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (480, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let n = threads.len().max(2) as f64;
        let mut c = ChartBuilder::on(&root)
            .caption("independent runs: speed-up vs threads", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0.5..n + 0.5, 0.0..n + 0.5)
            .map_err(plot_err)?;
        c.configure_mesh()
            .x_desc("rayon threads")
            .y_desc("speed-up")
            .draw()
            .map_err(plot_err)?;
        c.draw_series(LineSeries::new([(1.0, 1.0), (n, n)], &BLACK.mix(0.3)))
            .map_err(plot_err)?
            .label("ideal")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.3)));
        let pts: Vec<(f64, f64)> = threads.iter().map(|&(t, _, s)| (t as f64, s)).collect();
        c.draw_series(LineSeries::new(pts.iter().copied(), &BLUE))
            .map_err(plot_err)?
            .label("measured")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
        c.draw_series(pts.iter().map(|&p| Circle::new(p, 3, BLUE.filled())))
            .map_err(plot_err)?;
        c.configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    crate::generate::write_atomic(path, svg.as_bytes())
}

fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e}")
}
