//! Resource checks before a run starts, and the host's CPU use during it.

use super::{LiveError, LivePlan};

/// The soft limit on open files of this process (children inherit it), from
/// `/proc/self/limits`; `None` where that cannot be read.
pub fn fd_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.split_whitespace().nth(3)?;
    if soft == "unlimited" {
        return Some(u64::MAX);
    }
    soft.parse().ok()
}

/// Open files one process of the run may need: the client sidecar holds the
/// load generator's connections and as many upstream, plus room for the
/// rest.
pub fn fds_needed(p: &LivePlan) -> u64 {
    2 * u64::from(p.load.connections) + 256
}

pub(crate) fn check_limits(p: &LivePlan) -> Result<(), LiveError> {
    let need = fds_needed(p);
    if let Some(have) = fd_limit().filter(|h| *h < need) {
        return Err(LiveError::Limits(format!(
            "live mode needs about {need} open files per process ({} load connections through the client sidecar, and as many upstream), but the limit here is {have}; raise it with `ulimit -n {need}` or lower the rate / users",
            p.load.connections
        )));
    }
    // Every connection from the generator and from each sidecar takes a
    // local port on 127.0.0.1.
    let ports = ports_needed(p);
    if let Some(have) = ephemeral_ports().filter(|h| *h < ports) {
        return Err(LiveError::Limits(format!(
            "live mode needs about {ports} local ports, but /proc/sys/net/ipv4/ip_local_port_range offers {have}; widen it (sysctl net.ipv4.ip_local_port_range) or lower the rate / users"
        )));
    }
    Ok(())
}

/// Local ports the run's connections may take at once: the generator's,
/// as many again from the client sidecar, and a pool per other sidecar.
pub fn ports_needed(p: &LivePlan) -> u64 {
    2 * u64::from(p.load.connections) + 64 * (p.sidecars.len() as u64 + p.backends.len() as u64)
}

/// How many ephemeral ports the kernel hands out (Linux), if known.
pub fn ephemeral_ports() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text
        .split_whitespace()
        .filter_map(|x| x.parse::<u64>().ok());
    let (lo, hi) = (it.next()?, it.next()?);
    Some(hi.saturating_sub(lo) + 1)
}

/// Below this idle fraction the host's CPUs count as saturated: the
/// processes under test were queueing for a core.
pub(crate) const SATURATED_IDLE: f64 = 0.05;

/// (idle, total) CPU time over all cores since boot, in clock ticks, from
/// the first line of `/proc/stat` (idle includes iowait).
pub(crate) fn cpu_times() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is in user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((idle, total))
}
