//! `meshsim bench --scaling DIR`: how wall time and memory grow with the
//! number of requests and of instances (each point in its own child
//! process, so its peak memory is its own), and how a batch of independent
//! simulations speeds up with rayon threads. Writes CSV tables and SVG
//! curves into DIR.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use rayon::prelude::*;

use super::svg::{charts, Axis, Series};
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

    // The machine's own ceiling for the same split: `cores` separate
    // processes (no shared heap, allocator or cache lines between them),
    // each doing one core's share, against one such process alone. On a
    // virtual machine whose cores share a physical core or are contended
    // by other guests, this stays below `cores` too, and bounds what
    // threads can reach.
    let share = Spec {
        case: "single-hop".into(),
        requests: per_job * (jobs / cores) as u64,
        instances: None,
    };
    let solo = measure_in_child(&share)?.wall_s;
    let together = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..cores)
            .map(|_| scope.spawn(|| measure_in_child(&share)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a benchmark thread panicked"))?
            })
            .collect::<anyhow::Result<Vec<Record>>>()
    })?;
    let slowest = together.iter().map(|r| r.wall_s).fold(0.0, f64::max);
    let ceiling = cores as f64 * solo / slowest.max(f64::MIN_POSITIVE);
    println!(
        "processes {cores}: {cores} at once take {slowest:.3} s, one alone {solo:.3} s: the machine gives {ceiling:.2}x"
    );
    let csv = format!(
        "processes,requests_per_process,solo_wall_s,together_wall_s,speedup\n{cores},{},{solo:.6},{slowest:.6},{ceiling:.4}\n",
        share.requests
    );
    crate::generate::write_atomic(&dir.join("scaling-processes.csv"), csv.as_bytes())?;

    let pts = |rs: &[Record], x: fn(&Record) -> f64| -> (Curve, Curve) {
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

/// Wall time (log-log) and peak memory (log x) against `xlabel`.
fn two_panels(
    path: &Path,
    xlabel: &str,
    wall: &[(f64, f64)],
    mem: &[(f64, f64)],
) -> anyhow::Result<()> {
    let svg = charts(&[
        (
            &format!("wall time vs {xlabel}"),
            Axis {
                label: xlabel,
                log: true,
            },
            Axis {
                label: "seconds",
                log: true,
            },
            vec![Series {
                name: "single-hop",
                color: "#1f5fbf",
                points: wall.to_vec(),
            }],
        ),
        (
            &format!("peak memory vs {xlabel}"),
            Axis {
                label: xlabel,
                log: true,
            },
            Axis {
                label: "MB (VmHWM)",
                log: false,
            },
            vec![Series {
                name: "single-hop",
                color: "#c0392b",
                points: mem.to_vec(),
            }],
        ),
    ]);
    crate::generate::write_atomic(path, svg.as_bytes())
}

fn speedup_chart(path: &Path, threads: &[(usize, f64, f64)]) -> anyhow::Result<()> {
    let n = threads.len().max(1) as f64;
    let svg = charts(&[(
        "independent runs: speed-up vs threads",
        Axis {
            label: "rayon threads",
            log: false,
        },
        Axis {
            label: "speed-up",
            log: false,
        },
        vec![
            Series {
                name: "ideal",
                color: "#999999",
                points: vec![(1.0, 1.0), (n, n)],
            },
            Series {
                name: "measured",
                color: "#1f5fbf",
                points: threads.iter().map(|&(t, _, s)| (t as f64, s)).collect(),
            },
        ],
    )]);
    crate::generate::write_atomic(path, svg.as_bytes())
}

/// (x, y) points of one curve.
type Curve = Vec<(f64, f64)>;
