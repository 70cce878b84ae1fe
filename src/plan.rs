//! `meshsim plan SCENARIO --slo … --vary KEY=RANGE`: the smallest value of
//! a capacity parameter that meets service-level objectives, with
//! replications for confidence, optionally under each of the scenario's
//! faults in turn.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use meshsim_experiment::grid::{self, display, Point};
use meshsim_experiment::plan::{judge, parse_slo, smallest_meeting, Judgement, Objective};
use meshsim_experiment::tables::RunData;
use meshsim_scenario::Scenario;
use rayon::prelude::*;

/// Arguments of `meshsim plan`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The scenario file (TOML).
    scenario: PathBuf,
    /// Objectives, e.g. "p99<50ms,errors<0.1%" (also p50/p90/p999/mean/max,
    /// throughput>900rps, and service:NAME.p99<… for one service).
    #[arg(long)]
    slo: String,
    /// The parameter and its candidate values, smallest capacity first:
    /// services.api.instances=1..64 (or =2,4,8,16).
    #[arg(long, value_name = "KEY=RANGE")]
    vary: String,
    /// Replications per value. Default: the scenario's run.replications,
    /// or 5 when that is 1.
    #[arg(long)]
    replications: Option<u32>,
    /// Plan for the scenario without its faults, then again with each of
    /// its faults alone ("with one zone down"); the answer is the largest.
    #[arg(long)]
    each_fault: bool,
    /// Evaluate every value instead of bisecting (for a full capacity curve).
    #[arg(long)]
    full: bool,
    /// Override any scenario field: `--set workload.rate=20000`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Write plan.csv (every evaluation) into this directory.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// One evaluated value in one case.
struct Evaluation {
    case: String,
    value: String,
    judgements: Vec<Judgement>,
}

impl Evaluation {
    fn met(&self) -> bool {
        self.judgements.iter().all(|j| j.met)
    }
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let objectives = parse_slo(&args.slo).map_err(anyhow::Error::msg)?;
    let axis = grid::parse_axis(&args.vary)?;
    let base = crate::sweep::Base::load(&args.scenario, &args.sets)?;
    let reps = args
        .replications
        .unwrap_or(match base.scenario.run.replications {
            0 | 1 => 5,
            r => r,
        });
    if reps == 0 {
        bail!("--replications 0: expected at least 1");
    }
    // The cases: as written, or without faults and then each fault alone.
    let mut cases: Vec<(String, Option<Vec<meshsim_scenario::Fault>>)> = Vec::new();
    if args.each_fault {
        if base.scenario.faults.is_empty() {
            bail!(
                "--each-fault: {} has no [[faults]] to plan under",
                args.scenario.display()
            );
        }
        cases.push(("no faults".into(), Some(Vec::new())));
        for (i, f) in base.scenario.faults.iter().enumerate() {
            cases.push((
                format!("fault {}: {}", i + 1, describe(f)),
                Some(vec![f.clone()]),
            ));
        }
    } else {
        cases.push(("as written".into(), None));
    }
    let values: Vec<Point> = axis
        .values
        .iter()
        .enumerate()
        .map(|(index, v)| Point {
            index,
            values: vec![(axis.key.clone(), v.clone())],
        })
        .collect();
    // Every value must be a valid scenario before anything runs.
    for p in &values {
        base.variant(&p.values)
            .with_context(|| format!("--vary {}", p.label()))?;
    }
    let mut evaluations: Vec<Evaluation> = Vec::new();
    let mut answers: Vec<(String, Option<usize>)> = Vec::new();
    for (case, faults) in &cases {
        let mut cache: BTreeMap<usize, bool> = BTreeMap::new();
        let mut eval = |i: usize| -> anyhow::Result<bool> {
            if let Some(m) = cache.get(&i) {
                return Ok(*m);
            }
            let e = evaluate(
                &base,
                &values[i],
                faults.as_deref(),
                reps,
                &objectives,
                case,
            )?;
            print_evaluation(&e)?;
            let met = e.met();
            evaluations.push(e);
            cache.insert(i, met);
            Ok(met)
        };
        let found = if args.full {
            let mut first = None;
            for i in 0..values.len() {
                if eval(i)? && first.is_none() {
                    first = Some(i);
                }
            }
            first
        } else {
            smallest_meeting(values.len(), &mut eval)?
        };
        answers.push((case.clone(), found));
    }
    if let Some(dir) = &args.out {
        write_csv(dir, &axis.key, &evaluations)?;
    }
    report(&axis.key, &values, &answers, &evaluations)
}

fn evaluate(
    base: &crate::sweep::Base,
    value: &Point,
    faults: Option<&[meshsim_scenario::Fault]>,
    reps: u32,
    objectives: &[Objective],
    case: &str,
) -> anyhow::Result<Evaluation> {
    // Common random numbers: replication k gets the same seed at every
    // value, so the comparison between values is not blurred by noise
    // and the bisection sees a monotone curve where the model has one.
    let runs = (0..reps)
        .into_par_iter()
        .map(|rep| {
            let seed = grid::seed(base.scenario.run.seed, value, rep, true);
            let mut extra = value.values.clone();
            extra.push(("run.seed".into(), seed.to_string()));
            let mut sc: Scenario = base.variant(&extra)?;
            if let Some(f) = faults {
                sc.faults = f.to_vec();
            }
            let (out, meta, _) = crate::run::simulate_one(&sc, false)?;
            Ok(RunData {
                meta,
                summary: out.tables.summary,
                instances: out.tables.instances,
            })
        })
        .collect::<anyhow::Result<Vec<RunData>>>()?;
    Ok(Evaluation {
        case: case.to_owned(),
        value: display(&value.values[0].1),
        judgements: judge(objectives, &runs),
    })
}

fn print_evaluation(e: &Evaluation) -> std::io::Result<()> {
    let mut err = std::io::stderr().lock();
    let parts: Vec<String> = e
        .judgements
        .iter()
        .map(|j| {
            format!(
                "{} {} = {:.4} [{:.4}, {:.4}]",
                if j.met { "✓" } else { "✗" },
                j.objective.metric,
                j.estimate.mean,
                j.estimate.lo,
                j.estimate.hi
            )
        })
        .collect();
    writeln!(err, "  [{}] {} → {}", e.case, e.value, parts.join("; "))
}

fn write_csv(dir: &std::path::Path, key: &str, evaluations: &[Evaluation]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "case",
        "parameter",
        "value",
        "scope",
        "metric",
        "op",
        "threshold",
        "n",
        "mean",
        "ci_low",
        "ci_high",
        "met",
        "margin",
    ])?;
    let mut sorted: Vec<&Evaluation> = evaluations.iter().collect();
    // Table order: case as listed, then value as evaluated is arbitrary
    // (bisection), so sort by the value's position via its numeric form.
    sorted.sort_by(|a, b| {
        a.case.cmp(&b.case).then_with(|| {
            let (x, y) = (a.value.parse::<f64>(), b.value.parse::<f64>());
            match (x, y) {
                (Ok(x), Ok(y)) => x.total_cmp(&y),
                _ => a.value.cmp(&b.value),
            }
        })
    });
    for e in sorted {
        for j in &e.judgements {
            let op = match j.objective.op {
                meshsim_experiment::plan::Op::Lt => "<",
                meshsim_experiment::plan::Op::Le => "<=",
                meshsim_experiment::plan::Op::Gt => ">",
                meshsim_experiment::plan::Op::Ge => ">=",
            };
            w.write_record([
                e.case.clone(),
                key.to_owned(),
                e.value.clone(),
                j.objective.scope.clone(),
                j.objective.metric.to_owned(),
                op.to_owned(),
                j.objective.threshold.to_string(),
                j.estimate.n.to_string(),
                j.estimate.mean.to_string(),
                j.estimate.lo.to_string(),
                j.estimate.hi.to_string(),
                j.met.to_string(),
                j.margin.to_string(),
            ])?;
        }
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    meshsim_experiment::sweep::write_atomic(&dir.join("plan.csv"), &bytes)?;
    Ok(())
}

fn report(
    key: &str,
    values: &[Point],
    answers: &[(String, Option<usize>)],
    evaluations: &[Evaluation],
) -> anyhow::Result<ExitCode> {
    let mut o = std::io::stdout().lock();
    let mut overall: Option<usize> = Some(0);
    for (case, found) in answers {
        match found {
            Some(i) => {
                let v = display(&values[*i].values[0].1);
                writeln!(o, "{case}: smallest {key} meeting the SLO = {v}")?;
                if let Some(e) = evaluations.iter().find(|e| &e.case == case && e.value == v) {
                    for j in &e.judgements {
                        writeln!(
                            o,
                            "    {:<22} {:.4} [{:.4}, {:.4}] (n={}), margin {:.1}% to {}",
                            format!("{} {}", j.objective.scope, j.objective.metric),
                            j.estimate.mean,
                            j.estimate.lo,
                            j.estimate.hi,
                            j.estimate.n,
                            j.margin * 100.0,
                            j.objective.text
                        )?;
                    }
                }
                overall = overall.map(|m| m.max(*i));
            }
            None => {
                let last = display(&values[values.len() - 1].values[0].1);
                writeln!(
                    o,
                    "{case}: SLO unreachable in range: even {key} = {last} does not meet it"
                )?;
                if let Some(e) = evaluations
                    .iter()
                    .find(|e| &e.case == case && e.value == last)
                {
                    for j in e.judgements.iter().filter(|j| !j.met) {
                        writeln!(
                            o,
                            "    {} {} = {:.4} [{:.4}, {:.4}] misses {}",
                            j.objective.scope,
                            j.objective.metric,
                            j.estimate.mean,
                            j.estimate.lo,
                            j.estimate.hi,
                            j.objective.text
                        )?;
                    }
                }
                overall = None;
            }
        }
    }
    match overall {
        Some(i) if answers.len() > 1 => {
            writeln!(
                o,
                "answer: {key} = {} (meets the SLO in every case)",
                display(&values[i].values[0].1)
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Some(_) => Ok(ExitCode::SUCCESS),
        None => Ok(ExitCode::from(1)),
    }
}

/// `zone_outage zone=b at=20s duration=20s`: a fault in one line.
fn describe(f: &meshsim_scenario::Fault) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(f) else {
        return "fault".into();
    };
    let word = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut parts: Vec<String> = map.get("kind").map(word).into_iter().collect();
    parts.extend(
        map.iter()
            .filter(|(k, _)| k.as_str() != "kind")
            .map(|(k, v)| format!("{k}={}", word(v))),
    );
    parts.join(" ")
}
