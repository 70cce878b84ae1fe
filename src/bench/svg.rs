//! Line charts as plain SVG: the viewer lays out the text, so nothing here
//! needs font metrics (plotters' SVG backend does, and without a bundled
//! font it cannot place a caption).
// Log axes take libm's `log10`/`powf`: positions on a drawing, not results.
#![allow(clippy::disallowed_methods)]

use std::fmt::Write as _;

/// One axis: its label and whether it is logarithmic.
pub struct Axis<'a> {
    pub label: &'a str,
    pub log: bool,
}

/// A series: its name, colour and points.
pub struct Series<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub points: Vec<(f64, f64)>,
}

const W: f64 = 460.0;
const H: f64 = 340.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

fn tr(v: f64, log: bool) -> f64 {
    if log {
        v.max(1e-12).log10()
    } else {
        v
    }
}

/// Tick values: powers of ten on a log axis, about five round steps on a
/// linear one.
fn ticks(lo: f64, hi: f64, log: bool) -> Vec<f64> {
    if log {
        let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
        return (a..=b).map(|e| 10f64.powi(e)).collect();
    }
    let span = (hi - lo).max(1e-12);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(mag * 10.0);
    let mut t = (lo / step).floor() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 {
        out.push(t);
        t += step;
    }
    out
}

fn label(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e5 || v.abs() < 1e-2) {
        format!("{v:.0e}")
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// One chart (`title`, axes, series) as an SVG `<g>` placed at `dx`.
fn chart(out: &mut String, dx: f64, title: &str, x: &Axis, y: &Axis, series: &[Series]) {
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.clone()).collect();
    let lo = |f: fn(&(f64, f64)) -> f64| all.iter().map(f).fold(f64::INFINITY, f64::min);
    let hi = |f: fn(&(f64, f64)) -> f64| all.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
    let (mut x0, mut x1) = (lo(|p| p.0), hi(|p| p.0));
    let (mut y0, mut y1) = (lo(|p| p.1), hi(|p| p.1));
    if !y.log {
        y0 = y0.min(0.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let xt = ticks(x0, x1, x.log);
    let yt = ticks(y0, y1, y.log);
    x0 = x0.min(xt[0]);
    x1 = x1.max(*xt.last().unwrap_or(&x1));
    y0 = y0.min(yt[0]);
    y1 = y1.max(*yt.last().unwrap_or(&y1));
    let (tx0, tx1, ty0, ty1) = (tr(x0, x.log), tr(x1, x.log), tr(y0, y.log), tr(y1, y.log));
    let px = |v: f64| dx + LEFT + (tr(v, x.log) - tx0) / (tx1 - tx0) * (W - LEFT - RIGHT);
    let py = |v: f64| H - BOTTOM - (tr(v, y.log) - ty0) / (ty1 - ty0) * (H - TOP - BOTTOM);
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="22" text-anchor="middle" font-size="15">{title}</text>"#,
        dx + W / 2.0
    );
    for &t in &xt {
        let _ = writeln!(
            out,
            r##"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{2}" stroke="#ddd"/><text x="{0:.1}" y="{3}" text-anchor="middle" font-size="11">{4}</text>"##,
            px(t),
            TOP,
            H - BOTTOM,
            H - BOTTOM + 15.0,
            label(t)
        );
    }
    for &t in &yt {
        let _ = writeln!(
            out,
            r##"<line x1="{0:.1}" y1="{1:.1}" x2="{2:.1}" y2="{1:.1}" stroke="#ddd"/><text x="{3:.1}" y="{4:.1}" text-anchor="end" font-size="11">{5}</text>"##,
            dx + LEFT,
            py(t),
            dx + W - RIGHT,
            dx + LEFT - 5.0,
            py(t) + 4.0,
            label(t)
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{}" text-anchor="middle" font-size="12">{}</text>"#,
        dx + LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 10.0,
        x.label
    );
    let _ = writeln!(
        out,
        r#"<text transform="translate({:.1},{:.1}) rotate(-90)" text-anchor="middle" font-size="12">{}</text>"#,
        dx + 16.0,
        TOP + (H - TOP - BOTTOM) / 2.0,
        y.label
    );
    for (k, s) in series.iter().enumerate() {
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|&(a, b)| format!("{:.1},{:.1}", px(a), py(b)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            s.color,
            pts.join(" ")
        );
        for &(a, b) in &s.points {
            let _ = writeln!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                px(a),
                py(b),
                s.color
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" fill="{}">{}</text>"#,
            dx + LEFT + 10.0,
            TOP + 14.0 + 14.0 * k as f64,
            s.color,
            s.name
        );
    }
}

/// Charts side by side, each `(title, x axis, y axis, series)`.
pub fn charts(panels: &[(&str, Axis, Axis, Vec<Series>)]) -> String {
    let mut out = String::new();
    let width = W * panels.len() as f64;
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{H}" viewBox="0 0 {width} {H}" font-family="sans-serif">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (i, (title, x, y, s)) in panels.iter().enumerate() {
        chart(&mut out, W * i as f64, title, x, y, s);
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_are_powers_of_ten_and_linear_ticks_round() {
        assert_eq!(ticks(150.0, 20_000.0, true), vec![100.0, 1e3, 1e4, 1e5]);
        // Steps of 1, 2 or 5 times a power of ten, about five of them, within the range.
        assert_eq!(ticks(0.0, 9.0, false), vec![0.0, 2.0, 4.0, 6.0, 8.0]);
    }

    #[test]
    fn a_chart_has_one_polyline_per_series() {
        let svg = charts(&[(
            "t",
            Axis {
                label: "x",
                log: true,
            },
            Axis {
                label: "y",
                log: false,
            },
            vec![
                Series {
                    name: "a",
                    color: "blue",
                    points: vec![(1.0, 1.0), (10.0, 2.0)],
                },
                Series {
                    name: "b",
                    color: "red",
                    points: vec![(1.0, 2.0), (10.0, 3.0)],
                },
            ],
        )]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 4);
    }
}
