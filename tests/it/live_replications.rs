//! `meshsim live` with `run.replications > 1`: one live run per derived
//! seed, as `meshsim run` makes them, all written or none.

use crate::common::{read, run, scratch, text, write};

#[test]
fn replications_run_one_by_one_with_derived_seeds() {
    let dir = scratch("live-reps");
    let file = write(
        &dir,
        "reps.toml",
        r#"
[run]
duration = "1200ms"
warmup = "300ms"
seed = 11
replications = 2
[workload]
rate = 50
entry = "api"
[[services]]
name = "api"
instances = 2
service_time = { dist = "constant", value = "1ms" }
"#,
    );
    let out = dir.join("out");
    let o = run(&[
        "live",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let mut seeds = Vec::new();
    for k in ["rep-000", "rep-001"] {
        let d = out.join(k);
        assert!(d.join("summary.csv").is_file(), "{k}: {}", text(&o));
        let meta: serde_json::Value = serde_json::from_str(&read(d.join("meta.json"))).unwrap();
        seeds.push(meta["seed"].clone());
    }
    assert_ne!(seeds[0], seeds[1], "each replication has its own seed");
    // The same seeds as the simulator's replications.
    let sim = dir.join("sim");
    let o = run(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        sim.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    for (k, want) in ["rep-000", "rep-001"].iter().zip(&seeds) {
        let meta: serde_json::Value =
            serde_json::from_str(&read(sim.join(k).join("meta.json"))).unwrap();
        assert_eq!(&meta["seed"], want, "{k}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
