//! `meshsim backend`, `proxy` and `load` as processes: readiness lines,
//! graceful drain on SIGTERM, thousands of idle connections, tables on disk,
//! and bad input. Every child is killed by PID when its guard drops.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn meshsim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_meshsim"))
}

/// A child process killed (by PID) when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `meshsim ARGS` and reads its first stdout line, which names the
/// address it listens on ("... listening on ADDR [admin ADDR]").
fn start(args: &[&str]) -> (Guard, Vec<SocketAddr>) {
    let mut child = meshsim()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("meshsim starts");
    let out = child.stdout.take().expect("stdout");
    let guard = Guard(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("a readiness line within 20 s");
    let addrs = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (guard, addrs)
}

/// Waits wall-clock time: these tests drive real processes, which take
/// real time to accept connections and to drain.
#[allow(clippy::disallowed_methods)]
fn pause(d: Duration) {
    std::thread::sleep(d);
}

fn get(addr: SocketAddr) -> u16 {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

#[test]
fn sigterm_drains_requests_in_flight_then_exits() {
    let (_b, b) = start(&["backend", "--service-time", "600ms"]);
    let (mut p, addrs) = start(&["proxy", "--upstream", &b[0].to_string()]);
    let proxy = addrs[0];
    // A request in flight when SIGTERM arrives still gets its answer.
    let inflight = std::thread::spawn(move || get(proxy));
    pause(Duration::from_millis(200));
    let t = meshsim_live::clock::Clock::start();
    let status = Command::new("kill")
        .args(["-TERM", &p.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    assert_eq!(
        inflight.join().unwrap(),
        200,
        "the request in flight was answered"
    );
    // The proxy exits by itself, successfully, once drained.
    let code = loop {
        if let Some(s) = p.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM"
        );
        pause(Duration::from_millis(20));
    };
    assert!(code.success(), "{code:?}");
    assert!(
        TcpStream::connect(proxy).is_err(),
        "still accepting after the drain"
    );
}

#[test]
fn thousands_of_idle_connections_cost_bounded_memory() {
    let (_b, b) = start(&["backend"]);
    let (p, addrs) = start(&["proxy", "--upstream", &b[0].to_string()]);
    let proxy = addrs[0];
    assert_eq!(get(proxy), 200);
    let before = rss_kib(p.0.id());
    let n = 2000;
    let conns: Vec<TcpStream> = (0..n)
        .map(|_| TcpStream::connect(proxy).expect("connect"))
        .collect();
    // Let the proxy accept them all, then serve one more request.
    pause(Duration::from_millis(500));
    assert_eq!(get(proxy), 200, "still serving with {n} idle connections");
    let after = rss_kib(p.0.id());
    // An idle HTTP/1.1 connection holds a task, a socket and hyper's
    // buffers, a few KiB; 32 KiB each (64 MiB for 2000) would already mean
    // something grows per connection that should not.
    let per_conn = (after.saturating_sub(before)) as f64 / n as f64;
    assert!(
        per_conn < 32.0,
        "{per_conn:.1} KiB per idle connection ({before} -> {after} KiB)"
    );
    drop(conns);
}

#[test]
fn load_writes_live_tables_and_bad_input_is_refused() {
    let (_b, b) = start(&["backend", "--service", "api", "--instance", "3"]);
    let dir = std::env::temp_dir().join(format!("meshsim-live-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = meshsim()
        .args([
            "load",
            &format!("http://{}/", b[0]),
            "--rate",
            "200",
            "--duration",
            "1s",
            "--out",
        ])
        .arg(&dir)
        .output()
        .expect("load runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = std::fs::read_to_string(dir.join("meta.json")).expect("meta.json");
    assert!(meta.contains("\"mode\": \"live\""), "{meta}");
    let summary = std::fs::read_to_string(dir.join("summary.csv")).expect("summary.csv");
    let e2e = summary
        .lines()
        .find(|l| l.starts_with("end_to_end,"))
        .expect("end_to_end row");
    let count: u64 = e2e.split(',').nth(1).unwrap().parse().unwrap();
    // Poisson with mean 200 over 1 s: 200 ± 14 (one standard deviation);
    // 130..270 is five standard deviations wide.
    assert!((130..=270).contains(&count), "{e2e}");
    let inst = std::fs::read_to_string(dir.join("instances.csv")).expect("instances.csv");
    assert!(
        inst.lines().nth(1).is_some_and(|l| l.starts_with("api,3,")),
        "{inst}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    let out = meshsim()
        .args(["load", "https://127.0.0.1:1/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("https is not supported"));
    let out = meshsim().args(["proxy"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--upstream"));
    let out = meshsim()
        .args(["backend", "--service-time", "{ dist = \"lognormal\" }"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--service-time"));
}
