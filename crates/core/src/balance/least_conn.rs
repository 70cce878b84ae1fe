//! `least_conn`: fewest in-flight requests per unit of weight, full scan.
//!
//! Sources: HAProxy `leastconn` (`src/lb_fwlc.c`, reference §1.10) and nginx
//! `least_conn` (`src/http/modules/ngx_http_upstream_least_conn_module.c`,
//! §1.11). Both choose the server with the smallest `active / weight`; nginx
//! compares the cross products `peer.conns × best.weight` and
//! `best.conns × peer.weight` in integers, and so do we (in `u64`, so no
//! rounding and no overflow). Weights are the configured endpoint weights
//! (slow start is an Envoy feature and is not applied here).
//!
//! # Ties rotate
//!
//! HAProxy keeps servers in a tree keyed by load per weight; servers with
//! equal keys are served in the order they were queued, so a run of equal-load
//! servers is taken in turn, like round robin among the tied. We get the same
//! rotation with a cursor per [`Subset`]: the scan starts just past the last
//! pick and keeps the *first* minimum it meets, so equal-load hosts are taken
//! in id order, wrapping around. The cursor starts at the first member and
//! restarts there after any host-set change. (nginx breaks ties with smooth
//! weighted round robin instead; with equal weights that too visits the tied
//! peers in turn.)
//!
//! A one-member subset returns its host. There are no knobs.
//!
//! # Calling order
//!
//! [`LeastConnConfig::try_new`] builds the algorithm;
//! [`Algorithm::on_hosts_changed`] resets the cursors; [`Algorithm::pick`]
//! scans. Active counts live in [`Hosts`]; no timers.

use super::{Algorithm, Hosts, PerSubset, Subset};
use crate::endpoint::PickRequest;
use crate::error::ConfigError;
use crate::rng::Rng;
use crate::time::Time;

/// Configuration of `least_conn` (no knobs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct LeastConnConfig {}

impl LeastConnConfig {
    /// Builds the algorithm.
    pub fn try_new(&self) -> Result<LeastConn, ConfigError> {
        Ok(LeastConn::default())
    }
}

/// Least connections per weight, ties in rotation; see the module docs.
#[derive(Clone, Debug, Default)]
pub struct LeastConn {
    /// Per subset: the member position where the next scan starts.
    cursor: PerSubset<usize>,
}

/// Whether host `a` is strictly less loaded than `b`: `a.active / a.weight <
/// b.active / b.weight`, as `a.active × b.weight < b.active × a.weight`.
fn less_loaded(hosts: &Hosts, a: u32, b: u32) -> bool {
    let (ha, hb) = (hosts.get(a), hosts.get(b));
    u64::from(ha.active) * u64::from(hb.endpoint.weight)
        < u64::from(hb.active) * u64::from(ha.endpoint.weight)
}

impl Algorithm for LeastConn {
    fn on_hosts_changed(&mut self, _: &Hosts, _: Option<&[Option<u32>]>, _: Time) {
        self.cursor.clear();
    }

    fn pick(
        &mut self,
        hosts: &Hosts,
        subset: Subset<'_>,
        _: &PickRequest,
        _: Time,
        _: &mut dyn Rng,
    ) -> Option<u32> {
        let m = subset.members;
        if m.len() == 1 {
            return Some(m[0]);
        }
        let cursor = self.cursor.get_or_init(subset.key, || 0);
        let start = *cursor % m.len();
        let mut best = start;
        for k in 1..m.len() {
            let pos = (start + k) % m.len();
            if less_loaded(hosts, m[pos], m[best]) {
                best = pos;
            }
        }
        *cursor = best + 1;
        Some(m[best])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::tests::{lb_with, picks};
    use crate::balance::LoadBalancer;
    use crate::endpoint::{Completion, Endpoint, EndpointId, Outcome};
    use crate::script::{run_table, table};
    use crate::time::Nanos;
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn lc(eps: Vec<Endpoint>) -> LoadBalancer {
        lb_with(Box::new(LeastConnConfig {}.try_new().unwrap()), eps)
    }

    fn start(lb: &mut LoadBalancer, id: u32, k: u32) {
        for _ in 0..k {
            lb.on_start(EndpointId(id), Time(0));
        }
    }

    #[test]
    fn picks_the_least_active_host() {
        let mut lb = lc((0..4).map(Endpoint::new).collect());
        // Active [3, 1, 2, 4] → host 1 every time (picks do not start requests).
        for (id, k) in [(0, 3), (1, 1), (2, 2), (3, 4)] {
            start(&mut lb, id, k);
        }
        assert_eq!(picks(&mut lb, 6, 0), [1; 6]);
    }

    #[test]
    fn load_is_measured_per_unit_of_weight() {
        // nginx: conns/weight. Host 0: weight 2, 2 active → 1 per weight.
        // Host 1: weight 1, 1 active → 1. Host 2: weight 1, 2 active → 2.
        // Hosts 0 and 1 tie and alternate; host 2 is never picked.
        let eps = vec![
            Endpoint::new(0).with_weight(2),
            Endpoint::new(1).with_weight(1),
            Endpoint::new(2).with_weight(1),
        ];
        let mut lb = lc(eps);
        start(&mut lb, 0, 2);
        start(&mut lb, 1, 1);
        start(&mut lb, 2, 2);
        assert_eq!(picks(&mut lb, 6, 0), [0, 1, 0, 1, 0, 1]);
        // One more on host 1 (2 per weight) leaves host 0 alone at the minimum.
        start(&mut lb, 1, 1);
        assert_eq!(picks(&mut lb, 3, 0), [0, 0, 0]);
    }

    #[test]
    fn tied_hosts_are_visited_in_rotation() {
        // Five idle hosts but host 2 busy: the four tied hosts come in id order,
        // wrapping around, never the busy one.
        let mut lb = lc((0..5).map(Endpoint::new).collect());
        start(&mut lb, 2, 1);
        assert_eq!(picks(&mut lb, 9, 0), [0, 1, 3, 4, 0, 1, 3, 4, 0]);
        // A membership change restarts the rotation at the first member.
        lb.update(
            crate::endpoint::EndpointChange::Insert(Endpoint::new(5)),
            Time(0),
        )
        .unwrap();
        assert_eq!(picks(&mut lb, 3, 0), [0, 1, 3]);
    }

    #[test]
    fn one_member_subset_returns_it() {
        let mut lb = lc(vec![Endpoint::new(3)]);
        start(&mut lb, 3, 5);
        assert_eq!(picks(&mut lb, 3, 0), [3, 3, 3]);
    }

    #[test]
    fn timeline_with_starts_and_completions() {
        // Three equal hosts a, b, c. Each "pick" is sent at once (on_start);
        // "done x" completes one request on x. Expected rows follow the rule:
        // least active wins; ties go to the first host at or after the one
        // following the previous pick.
        let mut lb = lc((0..3).map(Endpoint::new).collect());
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
        let name = |i: u32| char::from(b'a' + i as u8);
        let got = run_table(
            &[
                (0, "pick"),
                (1, "pick"),
                (2, "pick"),
                (3, "pick"),
                (4, "done a"),
                (5, "pick"),
                (6, "done b"),
                (7, "pick"),
                (8, "pick"),
                (9, "pick"),
            ],
            |now, ev| {
                let what = if let Some(h) = ev.strip_prefix("done ") {
                    let id = u32::from(h.as_bytes()[0] - b'a');
                    let done = Completion {
                        latency: Nanos::from_millis(1),
                        outcome: Outcome::OK,
                    };
                    lb.on_complete(EndpointId(id), &done, now);
                    ev.to_string()
                } else {
                    let id = lb.pick(&PickRequest::default(), now, &mut rng).unwrap();
                    lb.on_start(id, now);
                    format!("pick {}", name(id.0))
                };
                let active: Vec<String> =
                    (0..3).map(|i| lb.hosts().active(i).to_string()).collect();
                format!("{what} | active {}", active.join(" "))
            },
        );
        assert_eq!(
            got,
            table(
                "
                0s  | pick a | active 1 0 0
                1ms | pick b | active 1 1 0
                2ms | pick c | active 1 1 1
                3ms | pick a | active 2 1 1
                4ms | done a | active 1 1 1
                5ms | pick b | active 1 2 1
                6ms | done b | active 1 1 1
                7ms | pick c | active 1 1 2
                8ms | pick a | active 2 1 2
                9ms | pick b | active 2 2 2
                "
            )
        );
    }
}
