//! `p2c`: power of two choices over in-flight requests.
//!
//! Two *distinct* hosts are drawn uniformly (tower's `sample_floyd2`, nginx's
//! `random two`); the one with fewer active requests wins. Ties go to the
//! **first** draw, as in tower and Finagle (nginx keeps the second; with a
//! uniform draw order the distinction changes nothing in distribution). A
//! one-host subset returns that host. Weights are ignored, as in tower.
//! Compare `least_request`, which draws *with* replacement (Envoy).

use super::{Algorithm, Hosts, Subset};
use crate::endpoint::PickRequest;
use crate::error::ConfigError;
use crate::rng::{distinct_pair, Rng};
use crate::time::Time;

/// Configuration of `p2c` (no knobs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct P2cConfig {}

impl P2cConfig {
    /// Builds the algorithm.
    pub fn try_new(&self) -> Result<P2c, ConfigError> {
        Ok(P2c)
    }
}

/// Power of two distinct choices, least active requests.
#[derive(Clone, Copy, Debug, Default)]
pub struct P2c;

impl Algorithm for P2c {
    fn on_hosts_changed(&mut self, _: &Hosts, _: Option<&[Option<u32>]>, _: Time) {}

    fn pick(
        &mut self,
        hosts: &Hosts,
        subset: Subset<'_>,
        _: &PickRequest,
        _: Time,
        rng: &mut dyn Rng,
    ) -> Option<u32> {
        let m = subset.members;
        if m.len() == 1 {
            return Some(m[0]);
        }
        let (a, b) = distinct_pair(rng, m.len());
        let (a, b) = (m[a], m[b]);
        Some(if hosts.active(b) < hosts.active(a) {
            b
        } else {
            a
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::tests::lb_with;
    use crate::endpoint::{Endpoint, EndpointId, PickRequest};
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn never_picks_the_busier_of_two() {
        let mut lb = lb_with(Box::new(P2c), (0..2).map(Endpoint::new).collect());
        lb.on_start(EndpointId(1), Time(0));
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        for _ in 0..100 {
            assert_eq!(
                lb.pick(&PickRequest::default(), Time(0), &mut rng),
                Some(EndpointId(0))
            );
        }
    }

    #[test]
    fn the_busiest_of_three_is_never_picked() {
        // With distinct draws the busiest host always loses its pair.
        let mut lb = lb_with(Box::new(P2c), (0..3).map(Endpoint::new).collect());
        for _ in 0..3 {
            lb.on_start(EndpointId(2), Time(0));
        }
        lb.on_start(EndpointId(1), Time(0));
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(6);
        let mut c = [0; 3];
        for _ in 0..3000 {
            c[lb.pick(&PickRequest::default(), Time(0), &mut rng)
                .unwrap()
                .0 as usize] += 1;
        }
        assert_eq!(c[2], 0);
        // Host 0 wins every pair it is in: 2 of the 3 pairs → 2/3.
        // sd = sqrt(3000·(2/3)(1/3)) ≈ 26; allow 5 sd.
        assert!((c[0] as i64 - 2000).abs() < 130, "{c:?}");
    }
}
