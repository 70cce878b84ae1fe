//! Scripted timelines: timed events in, decisions out, as a readable table.
//!
//! Every state machine in this crate is tested the same way: a list of
//! `(time, event)` rows is fed to it in order, each row's decision is
//! rendered as text, and the whole run is compared with a table written by
//! hand from the production system's documented behaviour. A failing test
//! then shows the whole timeline, not one mismatched number.
//!
//! ```
//! use meshsim_core::script::{run, table};
//! let mut count = 0;
//! let got = run(&[(0, "hit"), (1500, "hit")], |_now, ev| {
//!     count += 1;
//!     format!("{ev} #{count}")
//! });
//! assert_eq!(got, table("
//!     0s     | hit #1
//!     1500ms | hit #2
//! "));
//! ```

use crate::time::{Nanos, Time};
use core::fmt::Write;

/// Feeds `steps` (`(milliseconds, event)`) in order to `f(now, event)` and
/// renders one line per step: `<time> | <decision>`, with times printed as
/// [`Nanos`] does (`1500ms`, `30s`).
pub fn run<E>(steps: &[(u64, E)], mut f: impl FnMut(Time, &E) -> String) -> String {
    let mut out = String::new();
    for (ms, ev) in steps {
        let now = Time(Nanos::from_millis(*ms).as_nanos());
        let decision = f(now, ev);
        let _ = writeln!(out, "{} | {}", Nanos::from_millis(*ms), decision.trim());
    }
    out
}

/// Normalises a hand-written table: trims each line, folds runs of spaces,
/// drops blank lines, and ends every line with a newline.
pub fn table(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if !line.is_empty() {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// [`run`], with the output passed through [`table`] so spacing never matters.
pub fn run_table<E>(steps: &[(u64, E)], f: impl FnMut(Time, &E) -> String) -> String {
    table(&run(steps, f))
}
