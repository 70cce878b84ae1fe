//! `meshsim schema`: the JSON Schema of scenario files, for editors.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

/// Arguments of `meshsim schema`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Write the schema to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The schema as pretty-printed JSON, ending in a newline.
fn schema_json() -> anyhow::Result<String> {
    let mut text = serde_json::to_string_pretty(&meshsim_scenario::json_schema())?;
    text.push('\n');
    Ok(text)
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let text = schema_json()?;
    match &args.out {
        Some(path) => std::fs::write(path, &text)
            .with_context(|| format!("writing the schema to {}", path.display()))?,
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn schema() -> Value {
        serde_json::from_str(&schema_json().unwrap()).unwrap()
    }

    fn validator() -> jsonschema::Validator {
        jsonschema::validator_for(&schema()).unwrap()
    }

    fn toml_to_json(text: &str) -> Value {
        toml::from_str::<Value>(text).unwrap()
    }

    /// Every schema error for `doc`, one line each.
    fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
        v.iter_errors(doc)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect()
    }

    #[test]
    fn schema_is_draft7_json_naming_the_top_level_keys() {
        let s = schema();
        assert_eq!(s["$schema"], "http://json-schema.org/draft-07/schema#");
        jsonschema::meta::validate(&s).unwrap();
        let props = s["properties"].as_object().unwrap();
        for key in [
            "run", "workload", "services", "mesh", "network", "faults", "sweep",
        ] {
            assert!(props.contains_key(key), "no top-level {key}");
        }
        assert_eq!(props.len(), 7, "{:?}", props.keys().collect::<Vec<_>>());
        assert_eq!(s["required"], json!(["run", "workload", "services"]));
        assert_eq!(s["additionalProperties"], false);
        // Descriptions come from the types' documentation.
        assert_eq!(
            s["definitions"]["Service"]["properties"]["concurrency"]["default"],
            1
        );
        assert!(s["definitions"]["Duration"]["description"]
            .as_str()
            .unwrap()
            .contains("250ms"));
    }

    #[test]
    fn every_scenario_in_the_repository_validates() {
        let v = validator();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let errs = errors(&v, &toml_to_json(&text));
            assert!(errs.is_empty(), "{}: {errs:#?}", path.display());
            seen += 1;
        }
        assert!(seen >= 5, "only {seen} scenarios in {}", dir.display());
        // The annotated example in the README, too.
        let readme = include_str!("../README.md");
        let start = readme.find("```toml\n[run]").unwrap() + "```toml\n".len();
        let len = readme[start..].find("```").unwrap();
        let errs = errors(&v, &toml_to_json(&readme[start..start + len]));
        assert!(errs.is_empty(), "README example: {errs:#?}");
    }

    const BASE: &str = r#"
[run]
duration = "10s"
[workload]
rate = 100
entry = "api"
[[services]]
name = "api"
"#;

    #[test]
    fn every_distribution_form_validates() {
        let v = validator();
        for dist in [
            r#"{ dist = "constant", value = "1ms" }"#,
            r#"{ dist = "exponential", mean = "1ms" }"#,
            r#"{ dist = "lognormal", mean = "1ms", p99 = "5ms" }"#,
            r#"{ dist = "lognormal_params", mu = 0.0, sigma = 0.5, unit = "1ms" }"#,
            r#"{ dist = "lognormal_params", mu = -7, sigma = 1 }"#,
            r#"{ dist = "gamma", mean = "1ms", shape = 0.5 }"#,
            r#"{ dist = "pareto", scale = "1ms", shape = 3.0 }"#,
            r#"{ dist = "uniform", min = "1ms", max = "2ms" }"#,
            r#"{ dist = "empirical", file = "data/latencies.csv" }"#,
            r#"{ dist = "mixture", parts = [{ weight = 0.99, dist = { dist = "constant", value = "1ms" } }, { weight = 0.01, dist = { dist = "mixture", parts = [{ weight = 1, dist = { dist = "constant", value = "50ms" } }] } }] }"#,
        ] {
            let doc = toml_to_json(&format!("{BASE}service_time = {dist}\n"));
            let errs = errors(&v, &doc);
            assert!(errs.is_empty(), "{dist}: {errs:#?}");
        }
    }

    #[test]
    fn mistakes_are_refused() {
        let v = validator();
        let good = format!("{BASE}service_time = {{ dist = \"exponential\", mean = \"1ms\" }}\n");
        assert!(v.is_valid(&toml_to_json(&good)));
        for (change, from, to) in [
            ("unknown dist", "\"exponential\"", "\"weibull\""),
            (
                "field of another dist",
                "mean = \"1ms\"",
                "mean = \"1ms\", shape = 2.0",
            ),
            ("duration without unit", "\"1ms\"", "5"),
            ("bad unit", "\"1ms\"", "\"1 parsec\""),
            ("unknown top-level key", "[run]", "[runs]\nx = 1\n[run]"),
            (
                "unknown service key",
                "name = \"api\"",
                "name = \"api\"\nreplicas = 3",
            ),
            ("string for a number", "rate = 100", "rate = \"fast\""),
            (
                "unknown balancer",
                "[[services]]",
                "[mesh.defaults]\nbalancer = { kind = \"fastest\" }\n[[services]]",
            ),
            (
                "balancer field of another kind",
                "[[services]]",
                "[mesh.defaults]\nbalancer = { kind = \"p2c\", choice_count = 3 }\n[[services]]",
            ),
            (
                "negative count",
                "name = \"api\"",
                "name = \"api\"\ninstances = -1",
            ),
        ] {
            assert!(good.contains(from), "{change}");
            let bad = good.replacen(from, to, 1);
            assert!(
                !v.is_valid(&toml_to_json(&bad)),
                "{change} was accepted:\n{bad}"
            );
        }
        let mut missing_run = toml_to_json(&good);
        missing_run.as_object_mut().unwrap().remove("run");
        assert!(!v.is_valid(&missing_run));
    }

    #[test]
    fn duration_pattern_agrees_with_the_parser() {
        let mut s = schema();
        // Validate against the Duration definition alone.
        s.as_object_mut()
            .unwrap()
            .retain(|k, _| k == "$schema" || k == "definitions");
        s["$ref"] = json!("#/definitions/Duration");
        let v = jsonschema::validator_for(&s).unwrap();
        for text in [
            "250ms",
            "1.5s",
            "30us",
            "3µs",
            "2m",
            "1h",
            "0s",
            "10 ms",
            " 5s ",
            "1.ms",
            ".5s",
            "100ns",
            "5",
            "ms",
            "",
            "1.2.3s",
            "-1s",
            "5 parsecs",
            "1e3ms",
            "5sec",
            "s5",
        ] {
            let parses = text.parse::<meshsim_core::Nanos>().is_ok();
            assert_eq!(
                v.is_valid(&json!(text)),
                parses,
                "{text:?}: the parser says {parses}"
            );
        }
        assert!(v.is_valid(&json!(0)));
        assert!(!v.is_valid(&json!(5)));
        assert!(!v.is_valid(&json!(-1)));
    }

    #[test]
    fn out_writes_the_schema_to_a_file() {
        let path = std::env::temp_dir().join(format!("meshsim-schema-{}.json", std::process::id()));
        let code = run(&Args {
            out: Some(path.clone()),
        })
        .unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
        let written = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(written, schema_json().unwrap());
        let e = run(&Args {
            out: Some("/nonexistent/dir/schema.json".into()),
        })
        .unwrap_err();
        assert!(
            format!("{e:#}").starts_with("writing the schema to /nonexistent/dir/schema.json"),
            "{e:#}"
        );
    }
}
