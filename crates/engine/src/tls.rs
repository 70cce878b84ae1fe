//! Mutual TLS between sidecars: one multiplexed connection per (caller
//! sidecar, callee instance) that costs a handshake when it opens (first
//! use, after an idle timeout, after a certificate rotation). Requests that
//! arrive while a handshake is under way wait for it.

use meshsim_core::{Nanos, Time};
use meshsim_scenario::Tls;
use rand_xoshiro::Xoshiro256PlusPlus;

#[derive(Clone, Copy, Debug, Default)]
struct Conn {
    /// Whether a connection is open (or opening).
    open: bool,
    /// Whether this pair ever completed a handshake (a session to resume).
    session: bool,
    opened: Time,
    last_used: Time,
    /// When the handshake under way completes.
    ready_at: Time,
}

/// What a request needs before it can be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Need {
    /// The connection is up.
    Ready,
    /// A handshake is under way: wait until then.
    WaitUntil(Time),
    /// Open a connection: `rtts` round trips and `cpu` on each side.
    Handshake { full: bool, rtts: u32, cpu: Nanos },
}

/// One sidecar's connections to its upstream's instances.
#[derive(Debug)]
pub(crate) struct TlsConns {
    pub cfg: Tls,
    conns: Vec<Conn>,
}

impl TlsConns {
    pub fn new(cfg: Tls, hosts: usize) -> TlsConns {
        TlsConns {
            cfg,
            conns: vec![Conn::default(); hosts],
        }
    }

    fn epoch(&self, t: Time) -> u64 {
        self.cfg.rotation.map_or(0, |r| t.0 / r.as_nanos().max(1))
    }

    /// A request to `host` is about to be sent at `now`.
    pub fn on_send(&mut self, host: usize, now: Time, rng: &mut Xoshiro256PlusPlus) -> Need {
        let (idle, rotated) = match self.conns.get(host) {
            Some(c) => (
                c.open && now.0.saturating_sub(c.last_used.0) > self.cfg.idle_timeout.as_nanos(),
                c.open && self.epoch(now) > self.epoch(c.opened),
            ),
            None => return Need::Ready,
        };
        let cfg = self.cfg;
        let c = &mut self.conns[host];
        if c.open && !idle && !rotated {
            c.last_used = now;
            return if c.ready_at > now {
                Need::WaitUntil(c.ready_at)
            } else {
                Need::Ready
            };
        }
        // A rotation invalidates the session with the certificate; an idle
        // close keeps it, so the new connection may resume.
        let resume = c.session
            && !rotated
            && cfg.resumption > 0.0
            && meshsim_core::rng::chance(rng, cfg.resumption);
        c.open = true;
        c.session = true;
        c.opened = now;
        c.last_used = now;
        c.ready_at = now;
        if resume {
            Need::Handshake {
                full: false,
                rtts: cfg.resumed_rtts,
                cpu: cfg.resumed_cpu,
            }
        } else {
            Need::Handshake {
                full: true,
                rtts: cfg.full_rtts,
                cpu: cfg.full_cpu,
            }
        }
    }

    /// The handshake just started on `host` completes at `at`.
    pub fn ready_at(&mut self, host: usize, at: Time) {
        if let Some(c) = self.conns.get_mut(host) {
            c.ready_at = at;
        }
    }

    /// The callee instance crashed: its connections are gone (the session
    /// cache went with the process).
    pub fn reset(&mut self, host: usize) {
        if let Some(c) = self.conns.get_mut(host) {
            *c = Conn::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    fn cfg() -> Tls {
        Tls {
            idle_timeout: Nanos(1_000),
            rotation: Some(Nanos(10_000)),
            resumption: 1.0,
            ..Tls::default()
        }
    }

    #[test]
    fn first_use_is_full_then_reused_then_resumed_after_idle_and_full_after_rotation() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let mut t = TlsConns::new(cfg(), 2);
        let full = |n: Need| matches!(n, Need::Handshake { full: true, .. });
        assert!(full(t.on_send(0, Time(0), &mut rng)));
        t.ready_at(0, Time(300));
        assert_eq!(
            t.on_send(0, Time(100), &mut rng),
            Need::WaitUntil(Time(300))
        );
        assert_eq!(t.on_send(0, Time(900), &mut rng), Need::Ready);
        // Idle for longer than the timeout: a new connection, resumed.
        assert!(matches!(
            t.on_send(0, Time(2_000), &mut rng),
            Need::Handshake { full: false, .. }
        ));
        // The other host has its own connection.
        assert!(full(t.on_send(1, Time(2_000), &mut rng)));
        // Past the rotation at 10 µs: full again, though recently used.
        assert_eq!(t.on_send(0, Time(2_500), &mut rng), Need::Ready);
        assert_eq!(t.on_send(0, Time(3_400), &mut rng), Need::Ready);
        assert!(full(t.on_send(0, Time(10_001), &mut rng)));
        t.reset(0);
        assert!(full(t.on_send(0, Time(10_002), &mut rng)));
    }
}
