//! `meshsim algorithms`: every algorithm the core implements, with its defaults.

use std::io::Write;
use std::process::ExitCode;

use meshsim_core::balance::BalancerConfig;
use serde_json::Value;

/// Arguments of `meshsim algorithms`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print JSON (one object per algorithm) instead of text.
    #[arg(long)]
    json: bool,
    /// Only this family (balancer, breaker, outlier, retry, budget, backoff,
    /// hedge, limit, queue, fault, discovery, health).
    #[arg(long)]
    family: Option<String>,
}

/// One catalogue entry.
struct Entry {
    family: &'static str,
    name: &'static str,
    summary: &'static str,
    defaults: Value,
}

fn catalog() -> anyhow::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for info in BalancerConfig::catalog() {
        out.push(Entry {
            family: "balancer",
            name: info.name,
            summary: info.summary,
            defaults: serde_json::to_value(&info.defaults)?,
        });
    }
    Ok(out)
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let entries: Vec<Entry> = catalog()?
        .into_iter()
        .filter(|e| args.family.as_deref().is_none_or(|f| f == e.family))
        .collect();
    if entries.is_empty() {
        anyhow::bail!(
            "no algorithm family {:?}; expected one of: balancer, breaker, outlier, retry, budget, backoff, hedge, limit, queue, fault, discovery, health",
            args.family.as_deref().unwrap_or("")
        );
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        for e in &entries {
            let obj = serde_json::json!({
                "family": e.family, "name": e.name, "summary": e.summary, "defaults": e.defaults,
            });
            writeln!(out, "{obj}")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut family = "";
    for e in &entries {
        if e.family != family {
            family = e.family;
            writeln!(out, "\n[{family}]")?;
        }
        writeln!(out, "{:<22} {}", e.name, e.summary)?;
        writeln!(out, "{:<22} defaults: {}", "", inline_toml(&e.defaults))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Renders a JSON value as an inline TOML value, so defaults can be pasted
/// into a scenario file.
fn inline_toml(v: &Value) -> String {
    match v {
        Value::Null => "\"\"".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(inline_toml).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(o) => {
            let fields: Vec<String> = o
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{k} = {}", inline_toml(v)))
                .collect();
            if fields.is_empty() {
                "{}".into()
            } else {
                format!("{{ {} }}", fields.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_toml_renders_nested_tables() {
        let v = serde_json::json!({"kind": "p2c", "n": 2, "x": {"on": true}, "none": null});
        assert_eq!(
            inline_toml(&v),
            r#"{ kind = "p2c", n = 2, x = { on = true } }"#
        );
    }
}
