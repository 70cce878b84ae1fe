//! The figures themselves. Each `draw_*` is generic over the plotters
//! backend, so one function serves SVG and PNG.

use std::path::{Path, PathBuf};

use meshsim_experiment::tables::read_csv;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::inputs::{Input, Run};
use crate::{Format, PlotError};

/// DejaVu Sans (Bitstream Vera licence, `assets/DejaVuSans-LICENSE.txt`).
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

const SIZE: (u32, u32) = (1200, 750);

/// Registers the bundled font as plotters' `sans-serif` (once; later calls
/// are no-ops).
pub fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The font is a constant known to parse.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

type DrawResult = Result<(), String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Renders with `$draw(&root, args…)` into `$path`, through a temporary
/// file renamed into place.
macro_rules! render {
    ($format:expr, $path:expr, $draw:ident ( $($arg:expr),* )) => {{
        let path: &Path = $path;
        let tmp = path.with_file_name(format!(
            ".{}.partial.{}",
            path.file_name().map_or("figure".into(), |n| n.to_string_lossy().into_owned()),
            $format.ext()
        ));
        let drawn: DrawResult = match $format {
            Format::Svg => {
                let root = SVGBackend::new(&tmp, SIZE).into_drawing_area();
                $draw(&root, $($arg),*).and_then(|_| root.present().map_err(err))
            }
            Format::Png => {
                let root = BitMapBackend::new(&tmp, SIZE).into_drawing_area();
                $draw(&root, $($arg),*).and_then(|_| root.present().map_err(err))
            }
        };
        match drawn {
            Ok(()) => std::fs::rename(&tmp, path).map_err(|source| PlotError::Io {
                path: path.to_owned(),
                source,
            }),
            Err(message) => {
                let _ = std::fs::remove_file(&tmp);
                Err(PlotError::Draw {
                    path: path.to_owned(),
                    message,
                })
            }
        }
    }};
}

fn color(i: usize) -> RGBColor {
    // Okabe–Ito, readable for colour-blind readers, then Palette99.
    const OKABE_ITO: [RGBColor; 7] = [
        RGBColor(0, 114, 178),
        RGBColor(213, 94, 0),
        RGBColor(0, 158, 115),
        RGBColor(204, 121, 167),
        RGBColor(230, 159, 0),
        RGBColor(86, 180, 233),
        RGBColor(120, 120, 120),
    ];
    OKABE_ITO.get(i).copied().unwrap_or_else(|| {
        let c = Palette99::pick(i).to_rgba();
        RGBColor(c.0, c.1, c.2)
    })
}

/// An axis number without float noise: 3000, 2.5, 0.04, 1e-5.
fn num_label(v: &f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 0.001 {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        format!("{v:.0e}")
    }
}

/// Pads a positive range for a log axis.
fn log_bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| *v > 0.0 && v.is_finite())
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    (hi > 0.0).then(|| (lo / 1.5, hi * 1.5))
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(hi.abs() * 0.02).max(1e-9);
    (
        if lo >= 0.0 {
            (lo - pad).max(0.0)
        } else {
            lo - pad
        },
        hi + pad,
    )
}

/// The legend box every figure uses.
fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
    font_size: u32,
) -> DrawResult {
    chart
        .configure_series_labels()
        .position(position)
        .label_font(("sans-serif", font_size))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

// === runs ===

pub fn runs(
    inputs: &[Input],
    out: &Path,
    format: Format,
    written: &mut Vec<PathBuf>,
) -> Result<(), PlotError> {
    let runs: Vec<&Run> = inputs
        .iter()
        .filter_map(|i| match i {
            Input::Run(r) => Some(r.as_ref()),
            _ => None,
        })
        .collect();
    let ext = format.ext();
    if runs.iter().any(|r| !r.percentiles.is_empty()) {
        let p = out.join(format!("latency-cdf.{ext}"));
        render!(format, &p, draw_cdf(&runs))?;
        written.push(p);
    }
    let p = out.join(format!("timeseries.{ext}"));
    render!(format, &p, draw_timeseries(&runs))?;
    written.push(p);
    let p = out.join(format!("instances.{ext}"));
    render!(format, &p, draw_instances(&runs))?;
    written.push(p);
    Ok(())
}

/// Percentile → "nines": 90% → 1, 99% → 2, 99.9% → 3.
// Axis positions, rounded to pixels: libm's last bit cannot show.
#[allow(clippy::disallowed_methods)]
fn nines(p: f64) -> f64 {
    -(1.0 - p / 100.0).log10()
}

// Axis positions, rounded to pixels: libm's last bit cannot show.
#[allow(clippy::disallowed_methods)]
fn nines_label(x: &f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    let s = format!("{p:.5}");
    format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
}

fn draw_cdf<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, runs: &[&Run]) -> DrawResult {
    root.fill(&WHITE).map_err(err)?;
    let points = |r: &Run| -> Vec<(f64, f64)> {
        r.percentiles
            .iter()
            .filter(|p| p.scope == "end_to_end" && p.percentile < 100.0 && p.latency_ms > 0.0)
            .map(|p| (nines(p.percentile), p.latency_ms))
            .collect()
    };
    let all: Vec<(f64, f64)> = runs.iter().flat_map(|r| points(r)).collect();
    let (ylo, yhi) = log_bounds(all.iter().map(|p| p.1)).ok_or("no latencies recorded")?;
    let xmax = all.iter().map(|p| p.0).fold(1.0f64, f64::max).ceil();
    let mut chart = ChartBuilder::on(root)
        .caption("End-to-end latency by percentile", ("sans-serif", 28))
        .margin(20)
        .margin_right(50)
        .x_label_area_size(55)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..xmax, (ylo..yhi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms, log scale)")
        .y_label_formatter(&num_label)
        .x_labels(xmax as usize + 1)
        .x_label_formatter(&nines_label)
        .axis_desc_style(("sans-serif", 20))
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    for (i, r) in runs.iter().enumerate() {
        let c = color(i);
        chart
            .draw_series(LineSeries::new(points(r), c.stroke_width(3)))
            .map_err(err)?
            .label(r.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(3)));
        chart
            .draw_series(points(r).into_iter().map(|p| Circle::new(p, 4, c.filled())))
            .map_err(err)?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft, 18)
}

fn draw_timeseries<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, runs: &[&Run]) -> DrawResult {
    root.fill(&WHITE).map_err(err)?;
    let (upper, lower) = root.split_vertically(SIZE.1 * 3 / 5);
    let rows = |r: &Run| -> Vec<meshsim_results::TimeseriesRow> {
        r.timeseries
            .iter()
            .filter(|t| t.scope == "end_to_end")
            .cloned()
            .collect()
    };
    let end = runs
        .iter()
        .flat_map(|r| r.timeseries.iter().map(|t| t.window_start_s))
        .fold(1.0f64, f64::max)
        * 1.02;
    let start = runs
        .iter()
        .flat_map(|r| r.timeseries.iter().map(|t| t.window_start_s))
        .fold(f64::INFINITY, f64::min)
        .min(end - 1.0);
    let lat = runs
        .iter()
        .flat_map(|r| rows(r).into_iter().flat_map(|t| [t.p50_ms, t.p99_ms]));
    // Linear, from zero: a window's spike should look like one.
    let (ylo, yhi) = bounds(lat.chain([0.0]));
    let shade = |faults: &[crate::inputs::Window]| -> Vec<(f64, f64)> {
        faults
            .iter()
            .map(|f| (f.from_s.max(start), f.to_s.unwrap_or(end).min(end)))
            .filter(|(a, b)| b > a)
            .collect()
    };
    let windows = runs.first().map(|r| shade(&r.faults)).unwrap_or_default();
    let caption = if windows.is_empty() {
        "Latency and throughput over time".to_owned()
    } else {
        "Latency and throughput over time (shaded: faults)".to_owned()
    };
    let mut top = ChartBuilder::on(&upper)
        .caption(caption, ("sans-serif", 28))
        .margin(20)
        .x_label_area_size(30)
        .y_label_area_size(80)
        .build_cartesian_2d(start..end, ylo..yhi)
        .map_err(err)?;
    top.configure_mesh()
        .y_desc("latency (ms)")
        .y_label_formatter(&num_label)
        .x_label_formatter(&num_label)
        .axis_desc_style(("sans-serif", 20))
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    top.draw_series(
        windows
            .iter()
            .map(|(a, b)| Rectangle::new([(*a, ylo), (*b, yhi)], RED.mix(0.12).filled())),
    )
    .map_err(err)?;
    for (i, r) in runs.iter().enumerate() {
        let c = color(i);
        let rs = rows(r);
        let name = |q: &str| {
            if runs.len() == 1 {
                q.to_owned()
            } else {
                format!("{} {q}", r.name)
            }
        };
        top.draw_series(LineSeries::new(
            rs.iter()
                .filter(|t| t.p99_ms > 0.0)
                .map(|t| (t.window_start_s, t.p99_ms)),
            c.stroke_width(2),
        ))
        .map_err(err)?
        .label(name("p99"))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(2)));
        top.draw_series(DashedLineSeries::new(
            rs.iter()
                .filter(|t| t.p50_ms > 0.0)
                .map(|t| (t.window_start_s, t.p50_ms)),
            6,
            4,
            c.stroke_width(2),
        ))
        .map_err(err)?
        .label(name("p50 (dashed)"))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(1)));
    }
    legend(&mut top, SeriesLabelPosition::UpperLeft, 16)?;
    let (tlo, thi) = bounds(
        runs.iter()
            .flat_map(|r| rows(r).into_iter().map(|t| t.throughput_rps))
            .chain([0.0]),
    );
    let mut bottom = ChartBuilder::on(&lower)
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(start..end, tlo..thi)
        .map_err(err)?;
    bottom
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("throughput (req/s)")
        .y_label_formatter(&num_label)
        .x_label_formatter(&num_label)
        .axis_desc_style(("sans-serif", 20))
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    bottom
        .draw_series(
            windows
                .iter()
                .map(|(a, b)| Rectangle::new([(*a, tlo), (*b, thi)], RED.mix(0.12).filled())),
        )
        .map_err(err)?;
    for (i, r) in runs.iter().enumerate() {
        bottom
            .draw_series(LineSeries::new(
                rows(r).iter().map(|t| (t.window_start_s, t.throughput_rps)),
                color(i).stroke_width(2),
            ))
            .map_err(err)?;
    }
    Ok(())
}

fn draw_instances<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, runs: &[&Run]) -> DrawResult {
    root.fill(&WHITE).map_err(err)?;
    // Categories in the first run's order, then any the others add.
    let mut cats: Vec<String> = Vec::new();
    for r in runs {
        for i in &r.instances {
            let c = format!("{}/{}", i.service, i.instance);
            if !cats.contains(&c) {
                cats.push(c);
            }
        }
    }
    if cats.is_empty() {
        return Err("instances.csv has no rows".into());
    }
    let ymax = runs
        .iter()
        .flat_map(|r| r.instances.iter().map(|i| i.share))
        .fold(0.0f64, f64::max)
        .max(0.01)
        * 115.0;
    let n = cats.len() as f64;
    let mut chart = ChartBuilder::on(root)
        .caption(
            "Share of each service's requests, per instance",
            ("sans-serif", 28),
        )
        .margin(20)
        .x_label_area_size(70)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5f64..n - 0.5, 0f64..ymax)
        .map_err(err)?;
    let labels = cats.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(cats.len().min(40))
        .x_label_formatter(&move |x| {
            let k = x.round();
            if (x - k).abs() < 1e-6 && k >= 0.0 {
                labels.get(k as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_desc("service/instance")
        .y_desc("share of the service's requests (%)")
        .y_label_formatter(&num_label)
        .axis_desc_style(("sans-serif", 20))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    let width = 0.8 / runs.len() as f64;
    for (v, r) in runs.iter().enumerate() {
        let c = color(v);
        let bars: Vec<Rectangle<(f64, f64)>> = r
            .instances
            .iter()
            .filter_map(|i| {
                let k = cats
                    .iter()
                    .position(|c| *c == format!("{}/{}", i.service, i.instance))?
                    as f64;
                let x0 = k - 0.4 + v as f64 * width;
                Some(Rectangle::new(
                    [(x0, 0.0), (x0 + width * 0.92, i.share * 100.0)],
                    c.filled(),
                ))
            })
            .collect();
        chart
            .draw_series(bars)
            .map_err(err)?
            .label(r.name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], c.filled()));
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight, 16)
}

// === sweeps ===

/// One curve of a sweep figure.
struct Curve {
    label: String,
    /// (x, mean, lo, hi)
    points: Vec<(f64, f64, f64, f64)>,
}

pub fn sweep(
    input: &Input,
    out: &Path,
    format: Format,
    written: &mut Vec<PathBuf>,
) -> Result<(), PlotError> {
    let Input::Sweep(dir) = input else {
        return Err(PlotError::Input("not a sweep".into()));
    };
    let path = dir.join("sweep.csv");
    let mut r = csv::Reader::from_path(&path)
        .map_err(|e| PlotError::Input(format!("{}: {e}", path.display())))?;
    let header: Vec<String> = r
        .headers()
        .map_err(|e| PlotError::Input(format!("{}: {e}", path.display())))?
        .iter()
        .map(str::to_owned)
        .collect();
    let rows: Vec<Vec<String>> = r
        .records()
        .map(|rec| rec.map(|r| r.iter().map(str::to_owned).collect()))
        .collect::<Result<_, _>>()
        .map_err(|e| PlotError::Input(format!("{}: {e}", path.display())))?;
    let scope_col = header
        .iter()
        .position(|h| h == "scope")
        .ok_or_else(|| PlotError::Input(format!("{}: no scope column", path.display())))?;
    let axes: Vec<usize> = (1..scope_col).collect();
    let col = |n: &str| header.iter().position(|h| h == n);
    let (Some(m), Some(mean), Some(lo), Some(hi)) =
        (col("metric"), col("mean"), col("ci_low"), col("ci_high"))
    else {
        return Err(PlotError::Input(format!(
            "{}: not a sweep table",
            path.display()
        )));
    };
    // The x axis: the first numeric axis (else the first axis, by position).
    let numeric = |a: usize| rows.iter().all(|r| r[a].parse::<f64>().is_ok());
    let x_axis = axes
        .iter()
        .copied()
        .find(|a| numeric(*a))
        .or(axes.first().copied());
    let ext = format.ext();
    for (metric, unit) in [
        ("p99_ms", "p99 latency (ms)"),
        ("mean_ms", "mean latency (ms)"),
        ("throughput_rps", "throughput (req/s)"),
        ("error_rate", "error rate (fraction)"),
    ] {
        let mut curves: Vec<Curve> = Vec::new();
        let mut cats: Vec<String> = Vec::new();
        for row in rows
            .iter()
            .filter(|r| r[scope_col] == "end_to_end" && r[m] == metric)
        {
            let label: Vec<String> = axes
                .iter()
                .filter(|a| Some(**a) != x_axis)
                .map(|a| format!("{}={}", header[*a], row[*a]))
                .collect();
            let label = label.join(", ");
            let x = match x_axis {
                Some(a) if numeric(a) => row[a].parse::<f64>().unwrap_or(0.0),
                Some(a) => {
                    if !cats.contains(&row[a]) {
                        cats.push(row[a].clone());
                    }
                    cats.iter().position(|c| *c == row[a]).unwrap_or(0) as f64
                }
                None => 0.0,
            };
            let f = |i: usize| row[i].parse::<f64>().unwrap_or(f64::NAN);
            let p = (x, f(mean), f(lo), f(hi));
            match curves.iter_mut().find(|c| c.label == label) {
                Some(c) => c.points.push(p),
                None => curves.push(Curve {
                    label,
                    points: vec![p],
                }),
            }
        }
        if curves.is_empty() {
            continue;
        }
        for c in &mut curves {
            c.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        let x_desc = x_axis.map_or("point".to_owned(), |a| header[a].clone());
        let p = out.join(format!("sweep-{metric}.{ext}"));
        render!(format, &p, draw_sweep(&curves, &x_desc, unit, &cats))?;
        written.push(p);
    }
    if written.is_empty() {
        return Err(PlotError::Input(format!(
            "{} has no end_to_end rows to plot",
            path.display()
        )));
    }
    Ok(())
}

fn draw_sweep<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    curves: &[Curve],
    x_desc: &str,
    y_desc: &str,
    cats: &[String],
) -> DrawResult {
    root.fill(&WHITE).map_err(err)?;
    let (xlo, xhi) = bounds(curves.iter().flat_map(|c| c.points.iter().map(|p| p.0)));
    let (ylo, yhi) = bounds(
        curves
            .iter()
            .flat_map(|c| c.points.iter().flat_map(|p| [p.1, p.2, p.3]))
            .chain([0.0]),
    );
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("{y_desc} against {x_desc} (band: 95% confidence interval)"),
            ("sans-serif", 26),
        )
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(90)
        .build_cartesian_2d(xlo..xhi, ylo..yhi)
        .map_err(err)?;
    let cats = cats.to_vec();
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(x_desc)
        .y_desc(y_desc)
        .y_label_formatter(&num_label)
        .axis_desc_style(("sans-serif", 20))
        .label_style(("sans-serif", 16));
    let fmt = move |x: &f64| {
        if cats.is_empty() {
            let s = format!("{x:.4}");
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            let k = x.round();
            if (x - k).abs() < 1e-6 && k >= 0.0 {
                cats.get(k as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        }
    };
    mesh.x_label_formatter(&fmt);
    mesh.draw().map_err(err)?;
    for (i, c) in curves.iter().enumerate() {
        let col = color(i);
        let mut band: Vec<(f64, f64)> = c.points.iter().map(|p| (p.0, p.3)).collect();
        band.extend(c.points.iter().rev().map(|p| (p.0, p.2)));
        chart
            .draw_series(std::iter::once(Polygon::new(band, col.mix(0.2).filled())))
            .map_err(err)?;
        let s = chart
            .draw_series(LineSeries::new(
                c.points.iter().map(|p| (p.0, p.1)),
                col.stroke_width(3),
            ))
            .map_err(err)?;
        if !c.label.is_empty() {
            s.label(c.label.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], col.stroke_width(3))
            });
        }
        chart
            .draw_series(
                c.points
                    .iter()
                    .map(|p| Circle::new((p.0, p.1), 4, col.filled())),
            )
            .map_err(err)?;
    }
    if curves.iter().any(|c| !c.label.is_empty()) {
        legend(&mut chart, SeriesLabelPosition::UpperLeft, 16)?;
    }
    Ok(())
}

// === plans ===

#[derive(serde::Deserialize)]
struct PlanRow {
    case: String,
    parameter: String,
    value: String,
    scope: String,
    metric: String,
    op: String,
    threshold: f64,
    mean: f64,
    ci_low: f64,
    ci_high: f64,
    met: bool,
}

pub fn plan(
    input: &Input,
    out: &Path,
    format: Format,
    written: &mut Vec<PathBuf>,
) -> Result<(), PlotError> {
    let Input::Plan(dir) = input else {
        return Err(PlotError::Input("not a plan".into()));
    };
    let rows: Vec<PlanRow> = read_csv(&dir.join("plan.csv"))?;
    let mut objectives: Vec<(String, String, String, f64)> = Vec::new();
    for r in &rows {
        let key = (r.scope.clone(), r.metric.clone(), r.op.clone(), r.threshold);
        if !objectives.contains(&key) {
            objectives.push(key);
        }
    }
    for (scope, metric, op, threshold) in objectives {
        let mine: Vec<&PlanRow> = rows
            .iter()
            .filter(|r| r.scope == scope && r.metric == metric)
            .collect();
        if mine.iter().any(|r| r.value.parse::<f64>().is_err()) {
            return Err(PlotError::Input(format!(
                "{}: plan values must be numbers to plot",
                dir.display()
            )));
        }
        let p = out.join(format!("plan-{metric}.{ext}", ext = format.ext()));
        let title = format!("{scope} {metric} {op} {threshold}");
        render!(format, &p, draw_plan(&mine, &metric, threshold, &title))?;
        written.push(p);
    }
    Ok(())
}

fn draw_plan<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: &[&PlanRow],
    metric: &str,
    threshold: f64,
    title: &str,
) -> DrawResult {
    let parameter = rows.first().map_or("value", |r| r.parameter.as_str());
    root.fill(&WHITE).map_err(err)?;
    let x = |r: &PlanRow| r.value.parse::<f64>().unwrap_or(0.0);
    let (xlo, xhi) = bounds(rows.iter().map(|r| x(r)));
    let (ylo, yhi) = bounds(
        rows.iter()
            .flat_map(|r| [r.ci_low, r.ci_high, r.mean])
            .chain([threshold, 0.0]),
    );
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("Capacity plan: {title} (filled: met with 95% confidence)"),
            ("sans-serif", 24),
        )
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(90)
        .build_cartesian_2d(xlo..xhi, ylo..yhi)
        .map_err(err)?;
    let unit = if metric.ends_with("_ms") {
        format!("{metric} (ms)")
    } else if metric == "throughput_rps" {
        "throughput (req/s)".into()
    } else {
        format!("{metric} (fraction)")
    };
    chart
        .configure_mesh()
        .x_desc(parameter)
        .x_label_formatter(&num_label)
        .y_label_formatter(&num_label)
        .y_desc(unit)
        .axis_desc_style(("sans-serif", 20))
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(DashedLineSeries::new(
            vec![(xlo, threshold), (xhi, threshold)],
            10,
            6,
            RED.stroke_width(2),
        ))
        .map_err(err)?
        .label(format!("objective {threshold}"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], RED.stroke_width(2)));
    let mut cases: Vec<&str> = Vec::new();
    for r in rows {
        if !cases.contains(&r.case.as_str()) {
            cases.push(&r.case);
        }
    }
    for (i, case) in cases.iter().enumerate() {
        let c = color(i);
        let mut pts: Vec<&&PlanRow> = rows.iter().filter(|r| r.case == *case).collect();
        pts.sort_by(|a, b| x(a).total_cmp(&x(b)));
        chart
            .draw_series(LineSeries::new(
                pts.iter().map(|r| (x(r), r.mean)),
                c.stroke_width(2),
            ))
            .map_err(err)?
            .label(case.to_string())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(2)));
        chart
            .draw_series(pts.iter().map(|r| {
                ErrorBar::new_vertical(x(r), r.ci_low, r.mean, r.ci_high, c.stroke_width(2), 10)
            }))
            .map_err(err)?;
        chart
            .draw_series(pts.iter().map(|r| {
                let style = if r.met { c.filled() } else { c.stroke_width(2) };
                Circle::new((x(r), r.mean), 6, style)
            }))
            .map_err(err)?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight, 16)
}
