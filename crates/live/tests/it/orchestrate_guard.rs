//! Child guards: a process started by live mode never outlives its guard.

use std::path::Path;

use meshsim_core::Nanos;
use meshsim_live::clock::Clock;
use meshsim_live::orchestrate::child::{addrs_in, ChildGuard};

/// Whether a process with this PID exists (a reaped child leaves no entry).
fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A log file path for one child; the file (and the directory, once
/// empty) is removed when this is dropped.
struct Log(std::path::PathBuf);

impl Log {
    fn path(&self) -> std::path::PathBuf {
        self.0.clone()
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        if let Some(d) = self.0.parent() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

fn log() -> Log {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("meshsim-guard-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    Log(d.join(format!("c{n}.log")))
}

#[test]
fn dropping_the_guard_kills_and_reaps_the_child() {
    let l = log();
    let g = ChildGuard::spawn("sleeper", Path::new("sleep"), &["30".into()], l.path(), "")
        .expect("sleep starts");
    let pid = g.pid();
    assert!(pid > 0 && alive(pid));
    drop(g);
    assert!(
        !alive(pid),
        "pid {pid} still exists after its guard was dropped"
    );
}

#[test]
fn a_guard_dropped_while_unwinding_still_kills() {
    let pid = std::sync::Mutex::new(0);
    let l = log();
    let r = std::panic::catch_unwind(|| {
        let g = ChildGuard::spawn("sleeper", Path::new("sleep"), &["30".into()], l.path(), "")
            .expect("sleep starts");
        *pid.lock().unwrap() = g.pid();
        panic!("a failure in the middle of a run");
    });
    assert!(r.is_err());
    let pid = *pid.lock().unwrap();
    assert!(pid > 0 && !alive(pid), "pid {pid} survived the panic");
}

#[test]
fn a_child_that_exits_before_it_is_ready_is_an_error_with_its_stderr() {
    let rt = meshsim_live::runtime(1).expect("runtime");
    let l = log();
    let mut g = ChildGuard::spawn(
        "backend x/0",
        Path::new("sh"),
        &[
            "-c".into(),
            "echo cannot listen: address in use >&2; exit 3".into(),
        ],
        l.path(),
        "",
    )
    .expect("sh starts");
    let err = rt
        .block_on(g.ready_line(&Clock::start(), Nanos::from_secs(5)))
        .expect_err("not ready");
    let msg = err.to_string();
    assert!(msg.contains("backend x/0"), "{msg}");
    assert!(msg.contains("exit status 3"), "{msg}");
    assert!(msg.contains("address in use"), "{msg}");
}

#[test]
fn a_child_that_never_says_it_listens_times_out() {
    let rt = meshsim_live::runtime(1).expect("runtime");
    let l = log();
    let mut g = ChildGuard::spawn("quiet", Path::new("sleep"), &["30".into()], l.path(), "")
        .expect("sleep starts");
    let pid = g.pid();
    let err = rt
        .block_on(g.ready_line(&Clock::start(), Nanos::from_millis(200)))
        .expect_err("not ready");
    assert!(err.to_string().contains("did not report"), "{err}");
    drop(g);
    assert!(!alive(pid));
}

#[test]
fn a_missing_program_names_the_package() {
    let l = log();
    let err = ChildGuard::spawn(
        "sidecar client",
        Path::new("/nonexistent/haproxy"),
        &[],
        l.path(),
        "; install it with `apt-get install -y haproxy`",
    )
    .expect_err("no such program");
    assert!(
        err.to_string().contains("apt-get install -y haproxy"),
        "{err}"
    );
}

#[test]
fn readiness_lines_yield_their_addresses() {
    let a = addrs_in("proxy listening on 127.0.0.1:4000 admin 127.0.0.1:4001");
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].port(), 4000);
    assert_eq!(a[1].port(), 4001);
    assert!(addrs_in("nothing here").is_empty());
}
