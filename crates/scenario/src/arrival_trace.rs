//! Arrival traces: an open-loop workload whose arrival times come from a
//! CSV file (a production request log, or a replay's schedule) instead of
//! being drawn at a rate.
//!
//! ```toml
//! [workload]
//! entry = "api"
//! arrival_trace = { file = "data/AzureLLMInferenceTrace_code.csv", column = "TIMESTAMP", time_scale = 0.5 }
//! ```
//!
//! The file has a header line. The time column holds either timestamps
//! (`2023-11-16 18:17:03.9799600`, a `T` between date and time also works;
//! read as UTC) or numbers in the header's unit suffix (`time_ms`,
//! `arrival_us`, `t_s`, `at_ns`; no suffix: seconds). Times count from the
//! earliest row, which arrives at 0 s; rows need not be in order (they are
//! sorted). `time_scale` multiplies every time: 0.5 plays the trace twice
//! as fast, 2 twice as slow. An optional `endpoint_column` names, per row,
//! the endpoint of the entry service the request goes to (a replay's
//! schedule uses it). Fields are plain (no quoting).

use std::path::{Path, PathBuf};

use meshsim_core::Nanos;

/// `workload.arrival_trace`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArrivalTrace {
    /// The CSV file (relative paths: against the scenario file's directory).
    pub file: PathBuf,
    /// The header of the time column (default: the first column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// Multiplies every arrival time (0.5 = twice as fast). Default 1.
    #[serde(default = "one")]
    pub time_scale: f64,
    /// The header of a column naming the entry service's endpoint per
    /// request (default: none; requests follow the entry's mix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_column: Option<String>,
    /// Arrival times from 0, sorted and scaled, read when the scenario is loaded.
    #[serde(skip)]
    pub times: Vec<Nanos>,
    /// The endpoint of each arrival (empty without `endpoint_column`).
    #[serde(skip)]
    pub endpoints: Vec<String>,
}

fn one() -> f64 {
    1.0
}

impl ArrivalTrace {
    /// Reads the file (relative to `base_dir`) into `times` and `endpoints`.
    pub fn resolve(&mut self, base_dir: &Path) -> Result<(), String> {
        let path = base_dir.join(&self.file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            // The hint only where it explains the path: a relative file
            // named in a scenario (`meshsim load` passes no base).
            let hint = if self.file.is_relative() && !base_dir.as_os_str().is_empty() {
                "; relative paths are resolved against the scenario file's directory"
            } else {
                ""
            };
            format!("cannot read arrival trace {}: {e}{hint}", path.display())
        })?;
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return Err(format!(
                "time_scale {} is not a positive factor",
                self.time_scale
            ));
        }
        let rows = parse_arrival_trace(
            &text,
            &path.display().to_string(),
            self.column.as_deref(),
            self.endpoint_column.as_deref(),
        )?;
        self.times = rows
            .iter()
            .map(|(t, _)| Nanos((*t as f64 * self.time_scale).round() as u64))
            .collect();
        self.endpoints = if self.endpoint_column.is_some() {
            rows.into_iter().map(|(_, e)| e).collect()
        } else {
            Vec::new()
        };
        Ok(())
    }
}

/// Parses an arrival-trace CSV: `(nanoseconds from the earliest row,
/// endpoint or "")` per row, sorted by time (ties keep file order). `file`
/// names the file in errors, which give the line.
pub fn parse_arrival_trace(
    text: &str,
    file: &str,
    column: Option<&str>,
    endpoint_column: Option<&str>,
) -> Result<Vec<(u64, String)>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let Some((_, header)) = lines.next() else {
        return Err(format!(
            "{file}: empty; expected a header line and one row per request"
        ));
    };
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let find = |want: &str| {
        names
            .iter()
            .position(|n| *n == want)
            .ok_or_else(|| format!("{file}:1: no column named {want:?}; the header has {names:?}"))
    };
    let tcol = match column {
        Some(c) => find(c)?,
        None => 0,
    };
    let ecol = endpoint_column.map(find).transpose()?;
    let tname = names[tcol];
    let (unit, unit_name) = [
        ("_ns", 1.0, "nanoseconds"),
        ("_us", 1e3, "microseconds"),
        ("_ms", 1e6, "milliseconds"),
        ("_s", 1e9, "seconds"),
    ]
    .iter()
    .find(|(s, _, _)| tname.ends_with(s))
    .map_or((1e9, "seconds"), |(_, u, n)| (*u, *n));
    let mut rows: Vec<(i128, String)> = Vec::new();
    for (i, line) in lines {
        let at = |what: String| format!("{file}:{}: {what}", i + 1);
        if line.contains('"') {
            return Err(at(
                "quoted fields are not supported; expected plain values".into()
            ));
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let cell = fields.get(tcol).copied().unwrap_or("");
        let t = parse_time(cell, unit).ok_or_else(|| {
            at(format!(
                "{cell:?} in column {tname:?} is not a time; expected a timestamp such as \
                 \"2023-11-16 18:17:03.98\" or a number of {}",
                unit_name
            ))
        })?;
        let ep = match ecol {
            Some(c) => {
                let e = fields.get(c).copied().unwrap_or("");
                if e.is_empty() {
                    return Err(at(format!("no endpoint in column {:?}", names[c])));
                }
                e.to_owned()
            }
            None => String::new(),
        };
        rows.push((t, ep));
    }
    if rows.is_empty() {
        return Err(format!(
            "{file}: no rows after the header; expected one row per request"
        ));
    }
    rows.sort_by_key(|r| r.0);
    let first = rows[0].0;
    Ok(rows
        .into_iter()
        .map(|(t, e)| (u64::try_from(t - first).unwrap_or(u64::MAX), e))
        .collect())
}

/// A timestamp or a number in `unit` ns, as integer nanoseconds.
fn parse_time(s: &str, unit: f64) -> Option<i128> {
    if s.len() >= 19 && s.as_bytes()[4] == b'-' {
        return parse_datetime(s);
    }
    let v: f64 = s.parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| (v * unit).round() as i128)
}

/// `YYYY-MM-DD HH:MM:SS[.fraction]` (or with `T`), UTC, as ns since 1970.
fn parse_datetime(s: &str) -> Option<i128> {
    let num = |a: usize, b: usize| s.get(a..b)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    if !matches!(s.as_bytes()[10], b' ' | b'T') || s.as_bytes()[13] != b':' {
        return None;
    }
    let (h, mi, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut frac_ns: i128 = 0;
    let rest = s.get(19..)?.trim_end_matches('Z');
    if let Some(f) = rest.strip_prefix('.') {
        if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        frac_ns = f.parse::<i128>().ok()? * 10i128.pow(9 - f.len() as u32);
    } else if !rest.is_empty() {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) as i128) * 1_000_000_000 + frac_ns)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil` algorithm, chrono-compatible dates).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_count_from_the_earliest_row() {
        let text = "TIMESTAMP,ContextTokens\n2023-11-16 18:17:04.0319600,3\n2023-11-16 18:17:03.9799600,4\n2023-11-17 00:00:00,1\n";
        let rows = parse_arrival_trace(text, "t.csv", Some("TIMESTAMP"), None).unwrap();
        let t: Vec<u64> = rows.iter().map(|r| r.0).collect();
        // 03.97996 → 04.03196 is 52 ms; to midnight is 5 h 42 min 56.02004 s.
        assert_eq!(t, [0, 52_000_000, 20_576_020_040_000]);
    }

    #[test]
    fn epoch_days_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2023, 11, 16), 19_677);
    }

    #[test]
    fn numbers_take_the_header_unit_and_endpoints_their_column() {
        let text = "time_ms,endpoint\n5,b\n1.5,a\n";
        let rows = parse_arrival_trace(text, "t.csv", None, Some("endpoint")).unwrap();
        assert_eq!(rows, [(0, "a".to_owned()), (3_500_000, "b".to_owned())]);
    }

    #[test]
    fn a_missing_file_gets_the_relative_path_hint_only_from_a_scenario() {
        let trace = |file: &str| ArrivalTrace {
            file: file.into(),
            column: None,
            time_scale: 1.0,
            endpoint_column: None,
            times: Vec::new(),
            endpoints: Vec::new(),
        };
        let hint = "resolved against the scenario file's directory";
        // Relative, in a scenario: the path shown is the joined one.
        let e = trace("nope.csv")
            .resolve(Path::new("/no/such/dir"))
            .unwrap_err();
        assert!(
            e.contains("/no/such/dir/nope.csv") && e.contains(hint),
            "{e}"
        );
        // Absolute, or from the command line (no base): no hint.
        let e = trace("/no/such/nope.csv")
            .resolve(Path::new("/x"))
            .unwrap_err();
        assert!(e.contains("/no/such/nope.csv") && !e.contains(hint), "{e}");
        let e = trace("nope.csv").resolve(Path::new("")).unwrap_err();
        assert!(!e.contains(hint), "{e}");
    }

    #[test]
    fn bad_rows_name_the_line() {
        let e = parse_arrival_trace("t_s\n1\nsoon\n", "t.csv", None, None).unwrap_err();
        assert!(e.starts_with("t.csv:3:"), "{e}");
        assert!(e.contains("number of seconds"), "{e}");
        let e = parse_arrival_trace("t_s\n1\n", "t.csv", Some("when"), None).unwrap_err();
        assert!(e.contains("no column named \"when\""), "{e}");
    }
}
