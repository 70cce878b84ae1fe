//! Child processes that cannot outlive the run.
//!
//! Every process live mode starts is held by a [`ChildGuard`]: dropping it
//! kills the process by its PID (SIGKILL) and reaps it, so an error, a
//! panic unwinding through the orchestrator, or an early return all leave
//! nothing behind. Ctrl-C and SIGTERM are turned into an error by the
//! orchestrator (see [`super::run`]), which then drops the guards as well.
//!
//! A child reports readiness by printing one line to stdout once it
//! listens (`backend listening on ADDR`, `proxy listening on ADDR admin
//! ADDR`); a reader thread per child forwards that line and then drains
//! the pipe so the child never blocks on it. Its stderr goes to a log file
//! whose tail is quoted when the child fails.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use meshsim_core::Nanos;

use crate::clock::Clock;

/// A running child process, killed and reaped when dropped.
#[derive(Debug)]
pub struct ChildGuard {
    /// What it is (`backend api/0`, `sidecar client`), for messages.
    pub name: String,
    /// Its admin address, for a meshsim sidecar (metrics are read there).
    pub admin: Option<SocketAddr>,
    /// Where a third-party sidecar's counters are read, and its servers in
    /// configuration order.
    pub stats: Option<(super::thirdparty::StatsSource, Vec<SocketAddr>)>,
    child: Option<Child>,
    log: PathBuf,
    ready: Option<tokio::sync::oneshot::Receiver<String>>,
}

/// Why a child could not be started or did not become ready.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// The program could not be executed.
    #[error("cannot start {name} ({program}): {source}{hint}")]
    Spawn {
        /// The child's name.
        name: String,
        /// The program.
        program: String,
        /// The OS error.
        source: std::io::Error,
        /// Advice (which package to install).
        hint: String,
    },
    /// It exited, or did not say it was ready in time.
    #[error("{name} {what}{log}")]
    NotReady {
        /// The child's name.
        name: String,
        /// What happened.
        what: String,
        /// The tail of its stderr.
        log: String,
    },
}

impl ChildGuard {
    /// Starts `program args…` with stdout piped (for the readiness line) and
    /// stderr to `log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        log: PathBuf,
        hint: &str,
    ) -> Result<ChildGuard, ChildError> {
        let spawn_err = |source| ChildError::Spawn {
            name: name.to_owned(),
            program: program.display().to_string(),
            source,
            hint: hint.to_owned(),
        };
        let err_file = std::fs::File::create(&log).map_err(spawn_err)?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err_file))
            .spawn()
            .map_err(spawn_err)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        if let Some(out) = child.stdout.take() {
            // The reader ends when the child's stdout closes (it exits or is
            // killed), so it never outlives the child for long.
            let _ = std::thread::Builder::new()
                .name(format!("meshsim-live-stdout-{}", child.id()))
                .spawn(move || {
                    let mut lines = BufReader::new(out).lines();
                    if let Some(Ok(first)) = lines.next() {
                        let _ = tx.send(first);
                    }
                    for _ in lines.by_ref() {}
                });
        }
        Ok(ChildGuard {
            name: name.to_owned(),
            admin: None,
            stats: None,
            child: Some(child),
            log,
            ready: Some(rx),
        })
    }

    /// The process id (0 once reaped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Waits at most `limit` for the readiness line and returns it.
    pub async fn ready_line(&mut self, clock: &Clock, limit: Nanos) -> Result<String, ChildError> {
        let rx = self.ready.take();
        let line = match rx {
            Some(rx) => clock.timeout(limit, rx).await,
            None => None,
        };
        match line {
            Some(Ok(l)) => Ok(l),
            Some(Err(_)) => {
                // stdout closed without a line: it exited.
                let status = self.wait_exit(clock).await;
                Err(self.failure(&format!("exited before it was ready ({status})")))
            }
            None => Err(self.failure(&format!("did not report that it listens within {limit}"))),
        }
    }

    async fn wait_exit(&mut self, clock: &Clock) -> String {
        for _ in 0..100 {
            if let Some(s) = self.try_exited() {
                return describe(s);
            }
            clock.sleep(Nanos::from_millis(10)).await;
        }
        "still running".into()
    }

    /// The exit status if it has exited (and reaps it), else `None`.
    pub fn try_exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// An error naming the child, with the tail of its stderr.
    pub fn failure(&self, what: &str) -> ChildError {
        ChildError::NotReady {
            name: self.name.clone(),
            what: what.to_owned(),
            log: log_tail(&self.log),
        }
    }

    /// Kills it (SIGKILL) by its PID and reaps it; idempotent.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `exit status 1`, `killed by signal 9`.
pub fn describe(s: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = s.signal() {
            return format!("killed by signal {sig}");
        }
    }
    match s.code() {
        Some(c) => format!("exit status {c}"),
        None => "exited".into(),
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let tail = &lines[lines.len().saturating_sub(5)..];
    format!("; its stderr ends with:\n    {}", tail.join("\n    "))
}

/// The addresses in a readiness line: every whitespace-separated word that
/// parses as `IP:PORT`, in order.
pub fn addrs_in(line: &str) -> Vec<SocketAddr> {
    line.split_whitespace()
        .filter_map(|w| w.trim_matches(|c| c == ',' || c == ';').parse().ok())
        .collect()
}

/// A free TCP port on 127.0.0.1, for programs that cannot report the port
/// they bound (HAProxy, nginx): bound with port 0 and released at once. The
/// kernel hands out ephemeral ports in turn, so another process taking it
/// in the moment before the child binds it is unlikely; the child then
/// fails to start with a clear error rather than misbehaving.
pub fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(l.local_addr()?.port())
}
