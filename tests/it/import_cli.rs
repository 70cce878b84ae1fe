//! `meshsim import`, `meshsim fit` and `meshsim run` on an isotope file, end to end.

use std::path::{Path, PathBuf};
use std::process::Command;

fn meshsim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_meshsim"))
}

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/trace/tests/data")
        .join(rel)
}

/// A fresh directory under the system temp directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("meshsim-import-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn isotope_imports_to_a_scenario_and_runs_directly() {
    let s = Scratch::new("isotope");
    let toml = s.0.join("canonical.toml");
    let out = meshsim()
        .args(["import", "isotope"])
        .arg(data("isotope/canonical.yaml"))
        .arg("--out")
        .arg(&toml)
        .output()
        .unwrap();
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not modelled: numRbacPolicies"));
    let text = std::fs::read_to_string(&toml).unwrap();
    assert!(text.contains("abort_on_error = true"), "{text}");
    // The same graph through `meshsim run` directly: d's 1,000 requests
    // make 2,000 calls to a (one from d, one from c).
    let stdout = ok(&meshsim()
        .arg("run")
        .arg(data("isotope/canonical.yaml"))
        .arg("--out")
        .arg(s.0.join("run"))
        .output()
        .unwrap());
    let a = stdout
        .lines()
        .find(|l| l.starts_with("service:a "))
        .unwrap();
    assert_eq!(a.split_whitespace().nth(1), Some("2000"), "{stdout}");
}

#[test]
fn zipkin_imports_to_a_record_and_a_replay_that_runs() {
    let s = Scratch::new("zipkin");
    let rec = s.0.join("yelp.json");
    let sc = s.0.join("yelp.toml");
    ok(&meshsim()
        .args(["import", "zipkin"])
        .arg(data("zipkin/yelp.json"))
        .arg("--out")
        .arg(&rec)
        .arg("--scenario")
        .arg(&sc)
        .output()
        .unwrap());
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&rec).unwrap()).unwrap();
    // yelp.json's root SERVER span lasts 131,848 µs.
    assert_eq!(r["requests"][0]["root"]["duration_ns"], 131_848_000u64);
    assert!(s.0.join("yelp.arrivals.csv").exists());
    let stdout = ok(&meshsim()
        .arg("run")
        .arg(&sc)
        .arg("--out")
        .arg(s.0.join("run"))
        .output()
        .unwrap());
    let e2e = stdout
        .lines()
        .find(|l| l.starts_with("end_to_end"))
        .unwrap();
    assert_eq!(e2e.split_whitespace().nth(1), Some("1"), "{stdout}");
    // fit reads the record back and prints one row per endpoint.
    let fit = ok(&meshsim().arg("fit").arg(&rec).output().unwrap());
    assert_eq!(fit.lines().count(), 1 + 12, "{fit}");
}

#[test]
fn bad_files_get_clear_errors_and_no_output() {
    let s = Scratch::new("bad");
    let bad = s.0.join("bad.yaml");
    std::fs::write(
        &bad,
        "services:\n- name: a\n  isEntrypoint: true\n  replicas: 3\n",
    )
    .unwrap();
    let out_file = s.0.join("out.toml");
    let out = meshsim()
        .args(["import", "isotope"])
        .arg(&bad)
        .arg("--out")
        .arg(&out_file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("services[0] (a).replicas: unknown key"),
        "{err}"
    );
    assert!(!out_file.exists());
    let out = meshsim()
        .args(["import", "otlp"])
        .arg(data("zipkin/yelp.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected an object with resourceSpans"));
}
