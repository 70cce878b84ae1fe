//! `meshsim live` end to end on 127.0.0.1: result tables, faults, HAProxy
//! and nginx sidecars, and no process left behind on success, on error, on
//! a child dying early and on Ctrl-C. Every run is a few seconds of load at
//! a low rate, so the checks hold on a loaded two-core machine.

use crate::common::live::{all_gone, exe, fail_in_ci_or_skip, pids, start};

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use meshsim_core::Nanos;
use meshsim_live::clock::Clock;
use meshsim_live::orchestrate::{self, LiveError, LiveOptions, ProxyKind};
use meshsim_scenario::Scenario;

/// Runs `sc` live with `opts`; the result and the pids of every child.
fn run(sc: &Scenario, opts: LiveOptions) -> (Result<orchestrate::LiveReport, LiveError>, Vec<u32>) {
    let (r, started) = start(sc, opts);
    (r, pids(&started))
}

fn pause(ms: u64) {
    let c = Clock::start();
    c.block_until(c.now() + Nanos::from_millis(ms));
}

/// Three instances of "api" (constant 2 ms) at 150 rps for `secs` seconds
/// after a 0.5 s warm-up, with `extra` TOML appended.
fn scenario(secs: f64, balancer: &str, extra: &str) -> Scenario {
    let text = format!(
        r#"
[run]
duration = "{}ms"
warmup = "500ms"
seed = 3
[workload]
rate = 150
entry = "api"
[[services]]
name = "api"
instances = 3
concurrency = 8
service_time = {{ dist = "constant", value = "2ms" }}
[mesh.defaults]
balancer = {{ kind = "{balancer}" }}
{extra}
"#,
        (secs * 1000.0) as u64 + 500
    );
    Scenario::from_toml(&text, "test.toml").expect("valid scenario")
}

#[test]
fn a_scenario_runs_live_into_the_result_tables_and_leaves_nothing_behind() {
    let sc = scenario(2.0, "round_robin", "");
    let (r, pids) = run(&sc, LiveOptions::new(exe(), ProxyKind::Meshsim));
    let r = r.expect("live run");
    // Three backends and the client sidecar.
    assert_eq!(pids.len(), 4);
    assert!(all_gone(&pids), "children left behind");
    let e2e = &r.tables.summary[0];
    assert_eq!(e2e.scope, "end_to_end");
    // 150 rps for 2 s is 300 expected arrivals (Poisson: sd ≈ 17); 5 sd
    // either side keeps a false failure below one in a million.
    assert!((215..=385).contains(&e2e.count), "count {}", e2e.count);
    assert_eq!(e2e.errors, 0);
    assert_eq!(r.meta.mode, "live");
    // /proc/stat is read around the load: an idle fraction in [0, 1].
    let idle = r.live.cpu_idle.expect("cpu idle on Linux");
    assert!((0.0..=1.0).contains(&idle), "{idle}");
    assert!(r.tables.percentiles.iter().any(|p| p.scope == "end_to_end"));
    // Round robin over three: each instance's share is 1/3 up to the
    // requests that straddle the warm-up boundary and the end.
    assert_eq!(r.tables.instances.len(), 3);
    for i in &r.tables.instances {
        assert!((i.share - 1.0 / 3.0).abs() < 0.05, "{i:?}");
    }
    let served: u64 = r.tables.instances.iter().map(|i| i.requests).sum();
    assert!(
        served.abs_diff(e2e.count) <= 20,
        "{served} vs {}",
        e2e.count
    );
    // Written atomically, with live.json beside the tables.
    let dir = std::env::temp_dir().join(format!("meshsim-live-test-{}", std::process::id()));
    r.write(&dir).expect("write");
    for f in [
        "summary.csv",
        "instances.csv",
        "latency.csv",
        "meta.json",
        "live.json",
    ] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn faults_crash_and_error_burst_are_applied_at_their_times() {
    let sc = scenario(
        2.5,
        "round_robin",
        r#"
[[faults]]
kind = "crash"
at = "1s"
duration = "1s"
service = "api"
instance = 1
[[faults]]
kind = "slowdown"
at = "500ms"
service = "api"
instance = 0
factor = 10.0
[[faults]]
kind = "error_burst"
at = "500ms"
service = "api"
instance = 2
error_rate = 1.0
"#,
    );
    let (r, pids) = run(&sc, LiveOptions::new(exe(), ProxyKind::Meshsim));
    let r = r.expect("live run survives its own crash fault");
    // The crashed backend was started twice (again after its crash).
    assert_eq!(pids.len(), 5);
    assert!(all_gone(&pids));
    let inst = &r.tables.instances;
    // Down for 1 s of the 2.5 s measured: clearly fewer than instance 0.
    assert!(
        (inst[1].requests as f64) < 0.8 * inst[0].requests as f64,
        "{inst:?}"
    );
    // Every answer of instance 2 is a 500 from the start of the measured
    // period (the burst starts as the warm-up ends; a request or two in
    // service at that moment may still succeed).
    assert!(
        inst[2].requests > 0 && inst[2].errors + 3 >= inst[2].requests,
        "{inst:?}"
    );
    assert_eq!(inst[0].errors, 0);
    // Instance 0 works ten times as long per request as instance 2 (which
    // still does its work before failing): far more busy time.
    assert!(inst[0].utilization > 4.0 * inst[2].utilization, "{inst:?}");
}

#[test]
fn ejections_and_retries_come_from_the_sidecars_metrics() {
    let sc = scenario(
        2.0,
        "round_robin",
        r#"
retry = { num_retries = 2, retry_on = ["connect-failure", "reset"] }
outlier = { consecutive_5xx = 3, max_ejection_percent = 50, base_ejection_time = "30s" }
[[faults]]
kind = "crash"
at = "1s"
service = "api"
instance = 1
"#,
    );
    let (r, pids) = run(&sc, LiveOptions::new(exe(), ProxyKind::Meshsim));
    let r = r.expect("live run");
    assert!(all_gone(&pids));
    let e2e = &r.tables.summary[0];
    // Refused connections to the crashed instance are retried elsewhere
    // until it is ejected: retries, and no request fails.
    assert!(e2e.retries >= 1, "{e2e:?}");
    assert_eq!(e2e.errors, 0, "{e2e:?}");
    let inst = &r.tables.instances;
    assert!(inst[1].ejections >= 1, "{inst:?}");
    assert_eq!(inst[0].ejections + inst[2].ejections, 0, "{inst:?}");
}

#[test]
fn calls_go_through_each_callers_sidecar() {
    let sc = scenario(
        1.5,
        "round_robin",
        r#"
[[services]]
name = "db"
instances = 2
concurrency = 8
service_time = { dist = "constant", value = "1ms" }
"#,
    );
    let mut sc = sc;
    sc.services[0].calls = vec![toml::from_str("service = \"db\"").expect("step")];
    let (r, pids) = run(&sc, LiveOptions::new(exe(), ProxyKind::Meshsim));
    let r = r.expect("live run");
    // 3 api + 2 db backends, 3 api sidecars, the client sidecar.
    assert_eq!(pids.len(), 9);
    assert!(all_gone(&pids));
    let e2e = &r.tables.summary[0];
    assert_eq!(e2e.errors, 0);
    let db: Vec<_> = r
        .tables
        .instances
        .iter()
        .filter(|i| i.service == "db")
        .collect();
    assert_eq!(db.len(), 2);
    let db_total: u64 = db.iter().map(|i| i.requests).sum();
    // One db call per request (up to those straddling the period's edges).
    assert!(
        db_total.abs_diff(e2e.count) <= 20,
        "{db_total} vs {}",
        e2e.count
    );
    for i in db {
        assert!(i.share > 0.3, "{i:?}");
    }
}

#[test]
fn a_child_dying_early_stops_the_run_and_every_other_child() {
    let sc = scenario(20.0, "round_robin", "");
    let (tx, rx) = mpsc::channel::<(String, u32)>();
    let mut opts = LiveOptions::new(exe(), ProxyKind::Meshsim);
    opts.started = Some(tx);
    let t = std::thread::spawn(move || {
        let rt = meshsim_live::runtime(1).expect("runtime");
        rt.block_on(orchestrate::run(&sc, &opts))
    });
    let mut seen = Vec::new();
    while seen.len() < 4 {
        seen.push(
            rx.recv_timeout(std::time::Duration::from_secs(20))
                .expect("children start"),
        );
    }
    pause(500);
    let victim = seen
        .iter()
        .find(|(n, _)| n == "backend api/1")
        .expect("api/1")
        .1;
    let ok = std::process::Command::new("kill")
        .args(["-9", &victim.to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
    let r = t.join().expect("run thread");
    let msg = r.expect_err("the run fails").to_string();
    assert!(
        msg.contains("backend api/1") && msg.contains("exited early"),
        "{msg}"
    );
    let pids: Vec<u32> = seen.iter().map(|s| s.1).collect();
    assert!(all_gone(&pids), "children left behind");
}

#[test]
fn a_failure_while_starting_stops_what_already_started() {
    // The sidecar "program" exits at once: the backends already running
    // must be stopped and the error must name the sidecar.
    let sc = scenario(2.0, "round_robin", "");
    let mut opts = LiveOptions::new(exe(), ProxyKind::Haproxy);
    opts.proxy_program = Some(PathBuf::from("false"));
    let (r, pids) = run(&sc, opts);
    let msg = r.expect_err("fails").to_string();
    assert!(msg.contains("sidecar client"), "{msg}");
    assert_eq!(pids.len(), 4, "three backends and the failed sidecar");
    assert!(all_gone(&pids));
}

#[test]
fn unsupported_features_fail_before_anything_starts() {
    // One plan is one run: replications are `meshsim live`'s loop.
    let mut sc = scenario(2.0, "round_robin", "");
    sc.run.replications = 2;
    let (r, pids) = run(&sc, LiveOptions::new(exe(), ProxyKind::Meshsim));
    let msg = r.expect_err("refused").to_string();
    assert!(
        msg.contains("live mode does not support run.replications > 1 in one run"),
        "{msg}"
    );
    assert!(pids.is_empty());
}

/// The children of `pid`, from /proc.
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // Fields after the command (which may hold spaces) in parentheses.
        let rest = stat.rsplit_once(')').map_or("", |x| x.1);
        if rest.split_whitespace().nth(1).and_then(|x| x.parse().ok()) == Some(pid) {
            out.push(p);
        }
    }
    out
}

fn scenario_file(dir: &Path, sc: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("dir");
    let p = dir.join("s.toml");
    std::fs::write(&p, sc).expect("write scenario");
    p
}

const FILE: &str = r#"
[run]
duration = "30s"
seed = 1
[workload]
rate = 50
entry = "api"
[[services]]
name = "api"
instances = 2
service_time = { dist = "constant", value = "1ms" }
"#;

#[test]
fn ctrl_c_stops_meshsim_live_and_its_children() {
    let dir = std::env::temp_dir().join(format!("meshsim-live-ctrlc-{}", std::process::id()));
    let file = scenario_file(&dir, FILE);
    let cli = std::process::Command::new(exe())
        .args(["live", &file.display().to_string(), "--out"])
        .arg(dir.join("out"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("meshsim live starts");
    let pid = cli.id();
    // Two backends and the client sidecar.
    let c = Clock::start();
    let mut kids = Vec::new();
    while kids.len() < 3 && c.now().as_secs_f64() < 20.0 {
        pause(50);
        kids = children_of(pid);
    }
    assert_eq!(kids.len(), 3, "children of meshsim live: {kids:?}");
    pause(300);
    let ok = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
    let out = cli.wait_with_output().expect("meshsim live exits");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("interrupted"), "{err}");
    assert!(all_gone(&kids), "children left behind");
    assert!(!dir.join("out").exists(), "no half-written run");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_low_open_file_limit_is_a_clear_error_up_front() {
    let dir = std::env::temp_dir().join(format!("meshsim-live-fd-{}", std::process::id()));
    let file = scenario_file(&dir, FILE);
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 100 && exec '{}' live '{}' --out '{}'",
            exe().display(),
            file.display(),
            dir.join("out").display()
        ))
        .output()
        .expect("sh runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("open files") && err.contains("ulimit -n"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn third_party(proxy: ProxyKind, balancer: &str) {
    let sc = scenario(1.5, balancer, "");
    let (r, pids) = run(&sc, LiveOptions::new(exe(), proxy));
    let r = r.expect("live run");
    assert!(all_gone(&pids));
    let e2e = &r.tables.summary[0];
    // 225 expected arrivals (sd 15): 5 sd either side.
    assert!((150..=300).contains(&e2e.count), "count {}", e2e.count);
    assert_eq!(e2e.errors, 0);
    assert_eq!(r.live.proxy, proxy.name());
    // Every instance serves a part (2 ms each at 50 rps per instance, far
    // from saturation: any of these balancers spreads the load).
    for i in &r.tables.instances {
        assert!(i.share > 0.15, "{i:?}");
    }
}

#[test]
fn haproxy_sidecars_balance_with_random_two() {
    if fail_in_ci_or_skip("haproxy") {
        return;
    }
    third_party(ProxyKind::Haproxy, "haproxy_random");
}

#[test]
fn nginx_sidecars_balance_with_least_conn() {
    if fail_in_ci_or_skip("nginx") {
        return;
    }
    third_party(ProxyKind::Nginx, "least_conn");
}

#[test]
fn meshsim_gap_writes_both_runs_and_the_gap_table() {
    let dir = std::env::temp_dir().join(format!("meshsim-gap-{}", std::process::id()));
    let file = scenario_file(
        &dir,
        &FILE.replace(
            "duration = \"30s\"",
            "duration = \"2s\"\nwarmup = \"500ms\"",
        ),
    );
    let out = std::process::Command::new(exe())
        .args(["gap", &file.display().to_string(), "--out"])
        .arg(dir.join("g"))
        .output()
        .expect("meshsim gap runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = std::fs::read_to_string(dir.join("g/gap.csv")).expect("gap.csv");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("metric,sim,live,diff,rel_diff,goal,met"));
    let metrics: Vec<&str> = lines.map(|l| l.split(',').next().unwrap_or("")).collect();
    assert_eq!(
        metrics,
        [
            "throughput_rps",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "error_rate",
            "share:api/0",
            "share:api/1"
        ]
    );
    for sub in [
        "sim/summary.csv",
        "live/summary.csv",
        "live/live.json",
        "plots/latency-cdf.svg",
        "plots/instances.svg",
    ] {
        assert!(dir.join("g").join(sub).is_file(), "{sub}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn calibrate_measures_a_hop_and_writes_scenario_parameters() {
    let opts = LiveOptions::new(exe(), ProxyKind::Meshsim);
    let rt = meshsim_live::runtime(1).expect("runtime");
    let c = rt
        .block_on(orchestrate::calibrate::calibrate(
            &opts,
            Nanos::from_millis(400),
        ))
        .expect("calibrate");
    assert!(c.requests > 50, "{c:?}");
    assert!(c.direct_p50_us > 0.0, "{c:?}");
    // A proxy hop is two more loopback connections and a proxy's work.
    assert!(c.proxied_p50_us > c.direct_p50_us, "{c:?}");
    // The fragment is valid scenario TOML with the two measured values.
    let text = format!(
        "{}\n[run]\nduration = \"1s\"\n[workload]\nrate = 10\nentry = \"a\"\n[[services]]\nname = \"a\"\nservice_time = {{ dist = \"constant\", value = \"1ms\" }}\n",
        c.to_toml()
    );
    let sc = Scenario::from_toml(&text, "calibrated.toml").expect("valid scenario");
    // Rounded up to whole microseconds.
    let got = sc.mesh.defaults.sidecar.latency.as_nanos();
    let want = c.sidecar_latency().as_nanos();
    assert!(got >= want && got < want + 1000, "{got} vs {want}");
    assert!(sc.network.latency.is_some());
}
