//! isotope service graphs → meshsim scenarios.
//!
//! isotope (istio/tools, `isotope/`) describes a mesh as YAML: `services`
//! with a `script` of commands run in order, and `defaults` for every
//! service. Its semantics, read from `convert/pkg/graph` and
//! `service/pkg/srv` of that repository, and how each maps:
//!
//! | isotope | meshsim |
//! |---|---|
//! | `name` | `services[].name` |
//! | `numReplicas` (default 1) | `instances` |
//! | `isEntrypoint` | `workload.entry` (exactly one, or `--entry`) |
//! | `errorRate` (`"0.1%"` or 0..1) | `error_every = 10000 / ⌊rate × 10000⌋` (integer division): each replica counts its requests and fails every n-th one with a 500 at once, before its script, as isotope's handler does |
//! | a failed call (non-200) | `abort_on_error = true`: the script stops and the caller answers 500; a concurrent group waits for all its calls first |
//! | `responseSize` (`"1 KB"` = 1024 bytes) | `response_bytes` (costs time only with `network.bandwidth_mbps`) |
//! | `script: - sleep: 10ms` | a `{ sleep = "10ms" }` step (holds the request) |
//! | `- call: b` / `- call: {service: b, probability: 50}` | a `{ service = "b", probability = 0.5 }` step |
//! | a list of commands (one level) | a `{ parallel = [...] }` step |
//! | `defaults` (`numReplicas`, `errorRate`, `responseSize`, `script`, `requestSize`, `type`) | applied to every service that does not set its own |
//! | `requestSize`, call `size`, `type` (HTTP/gRPC), `numRbacPolicies` | not modelled: meshsim has no request bodies, protocols or Istio RBAC; each is listed in the notes |
//!
//! An isotope service does no work of its own besides its sleeps and
//! answers each request in its own goroutine, so the scenario gives every
//! service a zero service time and a large worker pool
//! ([`ISOTOPE_CONCURRENCY`]). Anything else — an unknown key, a sleep in a
//! concurrent group, nested groups, load-level sleep objects — is refused
//! with an error that names where it is.

use meshsim_scenario::Scenario;
use serde_json::Value;

use crate::ImportError;

/// Worker pool given to every isotope service: isotope serves each request
/// in its own goroutine, so effectively without a limit.
pub const ISOTOPE_CONCURRENCY: u32 = 10_000;

/// Settings of the converted scenario that isotope files do not hold.
#[derive(Clone, Debug)]
pub struct IsotopeOptions {
    /// Requests per second (isotope's load generator, fortio, sends at a
    /// fixed rate: arrivals are `constant`).
    pub rate: f64,
    /// Simulated time.
    pub duration: String,
    /// The entry service when the file marks none or several.
    pub entry: Option<String>,
}

impl Default for IsotopeOptions {
    fn default() -> Self {
        IsotopeOptions {
            rate: 100.0,
            duration: "10s".into(),
            entry: None,
        }
    }
}

/// A converted isotope graph.
#[derive(Clone, Debug)]
pub struct IsotopeImport {
    /// The scenario, validated.
    pub scenario: Scenario,
    /// The scenario as TOML, with a header saying where it came from.
    pub toml: String,
    /// What was not modelled (each once).
    pub notes: Vec<String>,
}

const SERVICE_KEYS: [&str; 7] = [
    "name",
    "type",
    "numReplicas",
    "isEntrypoint",
    "errorRate",
    "responseSize",
    "script",
];
const DEFAULT_KEYS: [&str; 7] = [
    "type",
    "numReplicas",
    "errorRate",
    "responseSize",
    "script",
    "requestSize",
    "numRbacPolicies",
];

/// Converts an isotope YAML graph; `file` names it in errors.
pub fn import_isotope(
    text: &str,
    file: &str,
    opts: &IsotopeOptions,
) -> Result<IsotopeImport, ImportError> {
    let bad = |at: &str, what: String| ImportError::Invalid {
        file: file.to_owned(),
        at: at.to_owned(),
        message: what,
    };
    let doc: Value = serde_saphyr::from_str(text).map_err(|e| ImportError::Parse {
        file: file.to_owned(),
        message: e.to_string(),
    })?;
    let Value::Object(top) = &doc else {
        return Err(bad(
            "(top level)",
            "expected a mapping with `services` (and optionally `defaults`)".into(),
        ));
    };
    for k in top.keys() {
        if k != "services" && k != "defaults" {
            return Err(bad(
                k,
                "unknown key; an isotope graph has `services` and `defaults`".into(),
            ));
        }
    }
    let mut notes: Vec<String> = Vec::new();
    let mut note = |n: String| {
        if !notes.contains(&n) {
            notes.push(n);
        }
    };
    let empty = serde_json::Map::new();
    let defaults = match top.get("defaults") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => return Err(bad("defaults", "expected a mapping".into())),
    };
    for (k, v) in defaults {
        if !DEFAULT_KEYS.contains(&k.as_str()) {
            return Err(bad(
                &format!("defaults.{k}"),
                format!("unknown key; isotope defaults are {DEFAULT_KEYS:?}"),
            ));
        }
        match k.as_str() {
            "requestSize" => {
                byte_size(v).map_err(|m| bad("defaults.requestSize", m))?;
                note("requestSize: request bodies are not modelled (ignored)".into());
            }
            "numRbacPolicies" => note(
                "numRbacPolicies: Istio RBAC policies are configuration, not traffic (ignored)"
                    .into(),
            ),
            "type" => note("type: the protocol (HTTP/gRPC) is not modelled (ignored)".into()),
            _ => {}
        }
    }
    let Some(Value::Array(services)) = top.get("services") else {
        return Err(bad("services", "expected a list of services".into()));
    };
    if services.is_empty() {
        return Err(bad("services", "expected at least one service".into()));
    }
    let mut names: Vec<String> = Vec::new();
    for (i, s) in services.iter().enumerate() {
        match s.get("name") {
            Some(Value::String(n)) if !n.is_empty() => {
                if names.contains(n) {
                    return Err(bad(
                        &format!("services[{i}].name"),
                        format!("{n:?} is defined twice"),
                    ));
                }
                names.push(n.clone());
            }
            _ => {
                return Err(bad(
                    &format!("services[{i}].name"),
                    "expected a service name".into(),
                ))
            }
        }
    }
    let mut out_services = Vec::new();
    let mut entries = Vec::new();
    for (i, s) in services.iter().enumerate() {
        let at = |k: &str| format!("services[{i}] ({}).{k}", names[i]);
        let Value::Object(m) = s else {
            return Err(bad(&format!("services[{i}]"), "expected a mapping".into()));
        };
        for k in m.keys() {
            if !SERVICE_KEYS.contains(&k.as_str()) {
                return Err(bad(
                    &at(k),
                    format!("unknown key; isotope services have {SERVICE_KEYS:?}"),
                ));
            }
        }
        let get = |k: &str| m.get(k).or_else(|| defaults.get(k));
        if m.contains_key("type") {
            note("type: the protocol (HTTP/gRPC) is not modelled (ignored)".into());
        }
        let replicas = match get("numReplicas") {
            None => 1,
            Some(v) => v
                .as_u64()
                .filter(|n| (1..=u64::from(u32::MAX)).contains(n))
                .ok_or_else(|| bad(&at("numReplicas"), format!("{v} is not a count >= 1")))?,
        };
        if m.get("isEntrypoint").and_then(Value::as_bool) == Some(true) {
            entries.push(names[i].clone());
        } else if let Some(v) = m.get("isEntrypoint").filter(|v| !v.is_boolean()) {
            return Err(bad(
                &at("isEntrypoint"),
                format!("{v} is not true or false"),
            ));
        }
        let error_every = match get("errorRate") {
            None => None,
            Some(v) => error_every(v).map_err(|msg| bad(&at("errorRate"), msg))?,
        };
        let response = match get("responseSize") {
            None => 0,
            Some(v) => byte_size(v).map_err(|msg| bad(&at("responseSize"), msg))?,
        };
        let script = match get("script") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => convert_script(v, &names, &at("script"), &mut note)
                .map_err(|(w, msg)| bad(&w, msg))?,
        };
        let mut t = toml::Table::new();
        t.insert("name".into(), names[i].clone().into());
        t.insert("instances".into(), (replicas as i64).into());
        t.insert("concurrency".into(), i64::from(ISOTOPE_CONCURRENCY).into());
        t.insert("response_bytes".into(), (response as i64).into());
        let mut st = toml::Table::new();
        st.insert("dist".into(), "constant".into());
        st.insert("value".into(), "0s".into());
        t.insert("service_time".into(), st.into());
        if let Some(n) = error_every {
            t.insert("error_every".into(), (n as i64).into());
        }
        t.insert("abort_on_error".into(), true.into());
        if !script.is_empty() {
            t.insert("calls".into(), toml::Value::Array(script));
        }
        out_services.push(toml::Value::Table(t));
    }
    let entry = match (&opts.entry, entries.as_slice()) {
        (Some(e), _) => {
            if !names.contains(e) {
                return Err(bad(
                    "--entry",
                    format!("no service named {e:?}; expected one of {names:?}"),
                ));
            }
            e.clone()
        }
        (None, [one]) => one.clone(),
        (None, []) => {
            return Err(bad(
                "services",
                "no service has isEntrypoint: true; mark one or pass --entry NAME".into(),
            ))
        }
        (None, many) => {
            return Err(bad(
                "services",
                format!("several entrypoints {many:?}; meshsim drives one, choose it with --entry"),
            ))
        }
    };
    let mut doc = toml::Table::new();
    let mut run = toml::Table::new();
    run.insert("duration".into(), opts.duration.clone().into());
    doc.insert("run".into(), run.into());
    let mut wl = toml::Table::new();
    wl.insert("rate".into(), opts.rate.into());
    wl.insert("arrivals".into(), "constant".into());
    wl.insert("entry".into(), entry.into());
    doc.insert("workload".into(), wl.into());
    doc.insert("services".into(), toml::Value::Array(out_services));
    let body = toml::to_string(&doc).map_err(|e| bad("(output)", e.to_string()))?;
    let mut toml_text = format!(
        "# Converted from the isotope graph {file} by `meshsim import isotope`.\n\
         # Services: zero service time besides isotope's sleeps, {ISOTOPE_CONCURRENCY} workers each;\n\
         # errorRate as error_every (every n-th request per replica fails), abort_on_error as isotope.\n"
    );
    for n in &notes {
        toml_text.push_str(&format!("# not modelled: {n}\n"));
    }
    toml_text.push_str(&body);
    let scenario = Scenario::from_toml(&toml_text, &format!("{file} (converted)"))
        .map_err(|e| bad("(converted scenario)", e.to_string()))?;
    Ok(IsotopeImport {
        scenario,
        toml: toml_text,
        notes,
    })
}

/// isotope's script → meshsim steps. Errors carry (where, what).
fn convert_script(
    v: &Value,
    names: &[String],
    at: &str,
    note: &mut dyn FnMut(String),
) -> Result<Vec<toml::Value>, (String, String)> {
    let Value::Array(cmds) = v else {
        return Err((at.to_owned(), "expected a list of commands".into()));
    };
    let mut steps = Vec::new();
    for (j, c) in cmds.iter().enumerate() {
        let here = format!("{at}[{j}]");
        match c {
            Value::Array(group) => {
                let mut calls = Vec::new();
                for (k, g) in group.iter().enumerate() {
                    let inner = format!("{here}[{k}]");
                    match command(g, names, &inner, note)? {
                        Cmd::Call(t) => calls.push(toml::Value::Table(t)),
                        Cmd::Sleep(_) => {
                            return Err((
                                inner,
                                "a sleep inside a concurrent group is not supported; \
                                 expected only calls in a group"
                                    .into(),
                            ))
                        }
                        Cmd::Group => {
                            return Err((
                                inner,
                                "concurrent commands may not be nested (isotope refuses them too)"
                                    .into(),
                            ))
                        }
                    }
                }
                if calls.is_empty() {
                    continue; // an empty group does nothing
                }
                let mut t = toml::Table::new();
                t.insert("parallel".into(), toml::Value::Array(calls));
                steps.push(toml::Value::Table(t));
            }
            _ => match command(c, names, &here, note)? {
                Cmd::Call(t) => steps.push(toml::Value::Table(t)),
                Cmd::Sleep(d) => {
                    let mut t = toml::Table::new();
                    t.insert("sleep".into(), d.into());
                    steps.push(toml::Value::Table(t));
                }
                Cmd::Group => {
                    return Err((here, "expected a command or a list of commands".into()))
                }
            },
        }
    }
    Ok(steps)
}

enum Cmd {
    Call(toml::Table),
    Sleep(String),
    Group,
}

fn command(
    c: &Value,
    names: &[String],
    at: &str,
    note: &mut dyn FnMut(String),
) -> Result<Cmd, (String, String)> {
    let err = |w: &str, m: String| Err((w.to_owned(), m));
    let Value::Object(m) = c else {
        if c.is_array() {
            return Ok(Cmd::Group);
        }
        return err(
            at,
            "expected a command: `sleep: 10ms` or `call: NAME`".into(),
        );
    };
    if m.len() != 1 {
        return err(
            at,
            format!(
                "a command has exactly one key, sleep or call; found {:?}",
                m.keys().collect::<Vec<_>>()
            ),
        );
    }
    let (k, v) = m.iter().next().expect("one key");
    match k.as_str() {
        "sleep" => match v {
            Value::String(s) => {
                let ns = go_duration(s).ok_or_else(|| {
                    (
                        format!("{at}.sleep"),
                        format!("{s:?} is not a duration; expected e.g. \"10ms\", \"1.5s\""),
                    )
                })?;
                Ok(Cmd::Sleep(format!("{ns}ns")))
            }
            _ => err(
                &format!("{at}.sleep"),
                "structured sleep commands (load levels, distributions, histograms) are not \
                 supported; expected a duration string such as \"10ms\""
                    .into(),
            ),
        },
        "call" => {
            let (service, probability) = match v {
                Value::String(s) => (s.clone(), 1.0),
                Value::Object(o) => {
                    for key in o.keys() {
                        if !["service", "size", "probability"].contains(&key.as_str()) {
                            return err(
                                &format!("{at}.call.{key}"),
                                "unknown key; a call has service, size and probability".into(),
                            );
                        }
                    }
                    let Some(Value::String(s)) = o.get("service") else {
                        return err(
                            &format!("{at}.call.service"),
                            "expected a service name".into(),
                        );
                    };
                    if let Some(sz) = o.get("size") {
                        byte_size(sz).map_err(|m| (format!("{at}.call.size"), m))?;
                        note("call size: request bodies are not modelled (ignored)".into());
                    }
                    let p = match o.get("probability") {
                        None => 1.0,
                        Some(p) => match p.as_f64() {
                            Some(x) if (0.0..=100.0).contains(&x) => x / 100.0,
                            _ => {
                                return err(
                                    &format!("{at}.call.probability"),
                                    format!("{p} is not a percentage in 0..100"),
                                )
                            }
                        },
                    };
                    (s.clone(), p)
                }
                _ => return err(&format!("{at}.call"), "expected a service name".into()),
            };
            if !names.contains(&service) {
                return err(
                    &format!("{at}.call"),
                    format!("cannot call undefined service {service:?}"),
                );
            }
            let mut t = toml::Table::new();
            t.insert("service".into(), service.into());
            if probability < 1.0 {
                t.insert("probability".into(), probability.into());
            }
            Ok(Cmd::Call(t))
        }
        other => err(
            &format!("{at}.{other}"),
            "unknown command; isotope commands are sleep and call (and lists of them)".into(),
        ),
    }
}

/// isotope's errorRate: a number in 0..1 or a string "X%".
fn error_every(v: &Value) -> Result<Option<u64>, String> {
    let rate = match v {
        Value::Number(n) => n.as_f64().filter(|x| (0.0..=1.0).contains(x)),
        Value::String(s) => s
            .trim()
            .strip_suffix('%')
            .and_then(|x| x.trim().parse::<f64>().ok())
            .map(|p| p / 100.0)
            .filter(|x| (0.0..=1.0).contains(x)),
        _ => None,
    }
    .ok_or_else(|| format!("{v} is not a rate; expected 0..1 or a percentage like \"0.1%\""))?;
    if rate == 0.0 {
        return Ok(None);
    }
    // isotope: counter == 10000 / uint64(rate * 10000) fails and resets.
    let per_10k = (rate * 10_000.0) as u64;
    if per_10k == 0 {
        return Err(format!(
            "{v} is below 0.01%, which isotope's error counter cannot express"
        ));
    }
    Ok(Some(10_000 / per_10k))
}

/// A byte count: a number, or a string like "1 KB", "16k", "10 mb"
/// (binary multiples, as docker/go-units' RAMInBytes which isotope uses).
fn byte_size(v: &Value) -> Result<u64, String> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| format!("{n} is not a byte count (>= 0)")),
        Value::String(s) => {
            let t = s.trim();
            let split = t
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(t.len());
            let (num, unit) = t.split_at(split);
            let x: f64 = num
                .parse()
                .map_err(|_| format!("{s:?} is not a size; expected e.g. \"1 KB\", \"16k\""))?;
            let unit = unit.trim().to_ascii_lowercase();
            let mult: f64 = match unit.trim_end_matches('b').trim_end_matches('i') {
                "" => 1.0,
                "k" => 1024.0,
                "m" => (1u64 << 20) as f64,
                "g" => (1u64 << 30) as f64,
                "t" => (1u64 << 40) as f64,
                "p" => (1u64 << 50) as f64,
                _ => return Err(format!("{s:?} has an unknown unit; expected B, KB, MB, GB")),
            };
            Ok((x * mult) as u64)
        }
        _ => Err(format!("{v} is not a size")),
    }
}

/// A Go duration ("10ms", "1.5s", "1m30s", "100us", "100µs") in ns.
fn go_duration(s: &str) -> Option<u64> {
    let mut rest = s.trim();
    if rest == "0" {
        return Some(0);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&n| n > 0)?;
        let x: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let units = [
            ("ns", 1.0),
            ("us", 1e3),
            ("µs", 1e3),
            ("μs", 1e3),
            ("ms", 1e6),
            ("s", 1e9),
            ("m", 60e9),
            ("h", 3600e9),
        ];
        let (u, scale) = units.iter().find(|(u, _)| rest.starts_with(u))?;
        rest = &rest[u.len()..];
        total += x * scale;
    }
    Some(total.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_rates_follow_isotopes_counter() {
        assert_eq!(error_every(&Value::from("0.1%")), Ok(Some(1000)));
        assert_eq!(error_every(&Value::from(0.3)), Ok(Some(3)));
        assert_eq!(error_every(&Value::from("100%")), Ok(Some(1)));
        assert_eq!(error_every(&Value::from(0)), Ok(None));
        assert!(error_every(&Value::from("0.001%")).is_err());
        assert!(error_every(&Value::from("5")).is_err());
    }

    #[test]
    fn sizes_and_durations_parse_like_go() {
        assert_eq!(byte_size(&Value::from("1 KB")), Ok(1024));
        assert_eq!(byte_size(&Value::from("16k")), Ok(16384));
        assert_eq!(byte_size(&Value::from(10)), Ok(10));
        assert_eq!(go_duration("10ms"), Some(10_000_000));
        assert_eq!(go_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(go_duration("1.5µs"), Some(1500));
        assert_eq!(go_duration("ten"), None);
    }
}
