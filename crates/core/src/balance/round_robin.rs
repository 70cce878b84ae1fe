//! `round_robin`: Envoy's round robin.
//!
//! With equal weights and no host in slow start, hosts are taken in id order
//! from a cursor that starts at a random position per client (Envoy seeds
//! each worker's index with a random value, so a fleet of clients does not
//! march in step). With unequal weights, or while any host is in slow start,
//! Envoy switches to its EDF scheduler ([`Edf`](super::Edf)) with a random
//! start point, and so do we. Sources: `round_robin_lb.h`,
//! `load_balancer_impl.cc` (`EdfLoadBalancerBase`).

use super::{Algorithm, Edf, Hosts, PerSubset, Subset};
use crate::endpoint::PickRequest;
use crate::error::ConfigError;
use crate::rng::{below, Rng};
use crate::time::Time;

/// Configuration of `round_robin` (it has no knobs of its own).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RoundRobinConfig {}

impl RoundRobinConfig {
    /// Builds the algorithm.
    pub fn try_new(&self) -> Result<RoundRobin, ConfigError> {
        Ok(RoundRobin::default())
    }
}

#[derive(Clone, Debug)]
enum State {
    Cursor(u64),
    Edf(Edf),
}

/// Envoy round robin; see the module docs.
#[derive(Clone, Debug, Default)]
pub struct RoundRobin {
    state: PerSubset<State>,
}

impl Algorithm for RoundRobin {
    fn on_hosts_changed(&mut self, _: &Hosts, _: Option<&[Option<u32>]>, _: Time) {
        self.state.clear();
    }

    fn pick(
        &mut self,
        hosts: &Hosts,
        subset: Subset<'_>,
        _: &PickRequest,
        now: Time,
        rng: &mut dyn Rng,
    ) -> Option<u32> {
        let m = subset.members;
        let weighted = hosts.weighted(now) && m.len() > 1;
        let state = self.state.get_or_init(subset.key, || {
            if weighted {
                let mut edf = Edf::new(m.iter().map(|&i| (i, hosts.weight(i, now))));
                // A random start point in the schedule, as Envoy's seeded picks give.
                for _ in 0..below(rng, m.len() as u64) {
                    edf.pick(|i| hosts.weight(i, now));
                }
                State::Edf(edf)
            } else {
                State::Cursor(below(rng, m.len() as u64))
            }
        });
        match state {
            State::Cursor(c) if !weighted => {
                let i = m[(*c % m.len() as u64) as usize];
                *c = c.wrapping_add(1);
                Some(i)
            }
            State::Edf(edf) if weighted => edf.pick(|i| hosts.weight(i, now)),
            // Slow start ended (or began) since the state was built.
            _ => {
                self.state.clear();
                self.pick(hosts, subset, &PickRequest::default(), now, rng)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::tests::{lb_with, picks};
    use crate::endpoint::Endpoint;

    #[test]
    fn equal_weights_rotate_in_id_order_from_a_random_start() {
        let mut lb = lb_with(
            Box::new(RoundRobin::default()),
            (0..4).map(Endpoint::new).collect(),
        );
        let seq = picks(&mut lb, 8, 7);
        let start = seq[0];
        let expect: Vec<u32> = (0..8).map(|k| (start + k) % 4).collect();
        assert_eq!(seq, expect);
        // Different clients (seeds) start at different places.
        let starts: std::collections::BTreeSet<u32> = (0..20)
            .map(|s| {
                let mut lb = lb_with(
                    Box::new(RoundRobin::default()),
                    (0..4).map(Endpoint::new).collect(),
                );
                picks(&mut lb, 1, s)[0]
            })
            .collect();
        assert!(starts.len() > 1);
    }

    #[test]
    fn unequal_weights_follow_edf_counts() {
        let eps = vec![
            Endpoint::new(0).with_weight(1),
            Endpoint::new(1).with_weight(2),
            Endpoint::new(2).with_weight(3),
        ];
        let mut lb = lb_with(Box::new(RoundRobin::default()), eps);
        let seq = picks(&mut lb, 600, 3);
        let mut counts = [0; 3];
        for i in seq {
            counts[i as usize] += 1;
        }
        assert_eq!(counts, [100, 200, 300]);
    }
}
