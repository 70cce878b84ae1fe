//! Zone-aware routing (Envoy `zone_aware_lb_config`).
//!
//! A client prefers endpoints in its own zone as long as its zone's share of
//! upstream capacity is at least its zone's share of the calling fleet
//! ("locality direct"). Otherwise it keeps the fraction of traffic the local
//! upstream capacity can absorb, `upstream% / local%`, and spills the rest to
//! other zones in proportion to their *residual* capacity, `upstream% −
//! local%` where positive ("locality residual"). Source:
//! `load_balancer_impl.cc` (`regenerateLocalityRoutingStructures`,
//! `tryChooseLocalLocalityHosts`), summarised in `shared/reference`.
//!
//! Zone routing is skipped (the balancer uses all zones) when the upstream
//! has fewer healthy hosts than `min_cluster_size` (default 6), fewer than two
//! zones, no host in the local zone, or the local fleet spans fewer than two
//! zones.

use crate::endpoint::Zone;
use crate::error::{check_range, ConfigError};
use crate::rng::{below, Rng};

/// Zone-aware routing settings.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct ZoneAwareConfig {
    /// Turn zone-aware routing on (off unless the scenario asks).
    pub enabled: bool,
    /// Percent of requests for which zone routing is attempted (Envoy default 100).
    pub routing_enabled_percent: f64,
    /// Below this many healthy upstream hosts, no zone routing (Envoy default 6).
    pub min_cluster_size: u32,
}

impl Default for ZoneAwareConfig {
    fn default() -> Self {
        ZoneAwareConfig {
            enabled: false,
            routing_enabled_percent: 100.0,
            min_cluster_size: 6,
        }
    }
}

impl ZoneAwareConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range(
            "zone_aware.routing_enabled_percent",
            self.routing_enabled_percent,
            0.0,
            100.0,
        )
    }
}

/// The calling fleet: the client's own zone and how many callers run in each zone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalFleet {
    /// The client's zone.
    pub zone: Zone,
    /// `(zone, number of calling instances)` for the caller's whole service.
    pub per_zone: Vec<(Zone, u32)>,
}

/// The routing decision structure, rebuilt on every host-set change.
#[derive(Clone, Debug, PartialEq)]
pub enum ZoneRouting {
    /// No zone routing: pick among all zones.
    Off,
    /// All traffic stays in the local zone.
    Direct(Zone),
    /// Keep `local_per_10k / 10000` locally, spill the rest by residual capacity.
    Residual {
        /// The local zone.
        local: Zone,
        /// Chance out of 10 000 of staying local.
        local_per_10k: u64,
        /// `(zone, cumulative residual capacity)`, ascending.
        residual: Vec<(Zone, u64)>,
    },
}

impl ZoneRouting {
    /// Builds the routing state from upstream host counts per zone (of the
    /// hosts eligible for picking) and the local fleet.
    pub fn build(
        cfg: &ZoneAwareConfig,
        upstream: &[(Zone, u32)],
        local: &LocalFleet,
    ) -> ZoneRouting {
        let total_up: u64 = upstream.iter().map(|&(_, n)| u64::from(n)).sum();
        let total_local: u64 = local.per_zone.iter().map(|&(_, n)| u64::from(n)).sum();
        let up_zones = upstream.iter().filter(|&&(_, n)| n > 0).count();
        let local_zones = local.per_zone.iter().filter(|&&(_, n)| n > 0).count();
        let count = |list: &[(Zone, u32)], z: Zone| {
            list.iter()
                .filter(|&&(zz, _)| zz == z)
                .map(|&(_, n)| u64::from(n))
                .sum::<u64>()
        };
        if !cfg.enabled
            || total_up < u64::from(cfg.min_cluster_size)
            || up_zones < 2
            || local_zones < 2
            || count(upstream, local.zone) == 0
            || total_local == 0
        {
            return ZoneRouting::Off;
        }
        // Percentages in units of 1/10000, as Envoy computes them.
        let pct = |n: u64, total: u64| n * 10_000 / total;
        let up_local = pct(count(upstream, local.zone), total_up);
        let local_local = pct(count(&local.per_zone, local.zone), total_local);
        if up_local >= local_local {
            return ZoneRouting::Direct(local.zone);
        }
        let local_per_10k = up_local * 10_000 / local_local.max(1);
        let mut residual = Vec::new();
        let mut cum = 0;
        let mut zones: Vec<Zone> = upstream.iter().map(|&(z, _)| z).collect();
        zones.sort();
        zones.dedup();
        for z in zones {
            if z == local.zone {
                continue;
            }
            let up = pct(count(upstream, z), total_up);
            let lo = pct(count(&local.per_zone, z), total_local);
            if up > lo {
                cum += up - lo;
                residual.push((z, cum));
            }
        }
        ZoneRouting::Residual {
            local: local.zone,
            local_per_10k,
            residual,
        }
    }

    /// The zone to pick from, or `None` for "any zone".
    #[inline]
    pub fn choose(&self, cfg: &ZoneAwareConfig, rng: &mut dyn Rng) -> Option<Zone> {
        // Inlined up to here: without zones a pick pays one comparison.
        if matches!(self, ZoneRouting::Off) {
            return None;
        }
        self.choose_zone(cfg, rng)
    }

    fn choose_zone(&self, cfg: &ZoneAwareConfig, rng: &mut dyn Rng) -> Option<Zone> {
        if cfg.routing_enabled_percent < 100.0
            && below(rng, 10_000) as f64 >= cfg.routing_enabled_percent * 100.0
        {
            return None;
        }
        match self {
            ZoneRouting::Off => None,
            ZoneRouting::Direct(z) => Some(*z),
            ZoneRouting::Residual {
                local,
                local_per_10k,
                residual,
            } => {
                if below(rng, 10_000) < *local_per_10k {
                    return Some(*local);
                }
                let total = residual.last().map_or(0, |&(_, c)| c);
                if total == 0 {
                    return Some(*local);
                }
                let x = below(rng, total);
                residual.iter().find(|&&(_, c)| x < c).map(|&(z, _)| z)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn on() -> ZoneAwareConfig {
        ZoneAwareConfig {
            enabled: true,
            ..ZoneAwareConfig::default()
        }
    }

    fn fleet(zone: u16, per: &[u32]) -> LocalFleet {
        LocalFleet {
            zone: Zone(zone),
            per_zone: per
                .iter()
                .enumerate()
                .map(|(z, &n)| (Zone(z as u16), n))
                .collect(),
        }
    }

    fn up(per: &[u32]) -> Vec<(Zone, u32)> {
        per.iter()
            .enumerate()
            .map(|(z, &n)| (Zone(z as u16), n))
            .collect()
    }

    #[test]
    fn balanced_zones_route_directly() {
        let r = ZoneRouting::build(&on(), &up(&[3, 3, 3]), &fleet(1, &[2, 2, 2]));
        assert_eq!(r, ZoneRouting::Direct(Zone(1)));
    }

    #[test]
    fn short_local_zone_spills_residual() {
        // Upstream 1/6 in zone 0, callers 1/2 in zone 0: keep (1666/5000) locally.
        let r = ZoneRouting::build(&on(), &up(&[1, 5]), &fleet(0, &[3, 3]));
        assert_eq!(
            r,
            ZoneRouting::Residual {
                local: Zone(0),
                local_per_10k: 1666 * 10_000 / 5000,
                residual: vec![(Zone(1), 8333 - 5000)],
            }
        );
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        let n = 30_000;
        let local = (0..n)
            .filter(|_| r.choose(&on(), &mut rng) == Some(Zone(0)))
            .count();
        // Expect p = 0.3332, sd = sqrt(p(1-p)/n) ≈ 0.0027; allow 5 sd.
        let p = local as f64 / n as f64;
        assert!((p - 0.3332).abs() < 0.014, "{p}");
    }

    #[test]
    fn too_small_or_single_zone_is_off() {
        assert_eq!(
            ZoneRouting::build(&on(), &up(&[2, 3]), &fleet(0, &[1, 1])),
            ZoneRouting::Off
        );
        assert_eq!(
            ZoneRouting::build(&on(), &up(&[6]), &fleet(0, &[1, 1])),
            ZoneRouting::Off
        );
        assert_eq!(
            ZoneRouting::build(&on(), &up(&[6, 6]), &fleet(0, &[2])),
            ZoneRouting::Off
        );
        assert_eq!(
            ZoneRouting::build(&on(), &up(&[0, 6, 6]), &fleet(0, &[1, 1, 1])),
            ZoneRouting::Off
        );
        let off = ZoneAwareConfig::default();
        assert_eq!(
            ZoneRouting::build(&off, &up(&[6, 6]), &fleet(0, &[1, 1])),
            ZoneRouting::Off
        );
    }
}
