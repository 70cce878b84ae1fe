//! Shared test helpers and tests of the [`LoadBalancer`] facade.

use super::*;
use crate::endpoint::{Endpoint, EndpointId, PickRequest};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// A balancer over `eps` with default common settings.
pub(crate) fn lb_with(algo: Box<dyn Algorithm>, eps: Vec<Endpoint>) -> LoadBalancer {
    let mut lb = LoadBalancer::new(algo, CommonConfig::default()).unwrap();
    lb.update(EndpointChange::Reset(eps), Time(0)).unwrap();
    lb
}

/// `n` picks at time 0 with a fresh RNG seeded `seed`, as endpoint ids.
pub(crate) fn picks(lb: &mut LoadBalancer, n: usize, seed: u64) -> Vec<u32> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            lb.pick(&PickRequest::default(), Time(0), &mut rng)
                .unwrap()
                .0
        })
        .collect()
}

fn rr(n: u32) -> LoadBalancer {
    lb_with(
        Box::new(round_robin::RoundRobin::default()),
        (0..n).map(Endpoint::new).collect(),
    )
}

#[test]
fn unhealthy_hosts_are_skipped() {
    let mut lb = rr(4);
    lb.set_health(EndpointId(2), HealthFlag::Outlier, true, Time(0));
    let seq = picks(&mut lb, 30, 1);
    assert!(!seq.contains(&2));
    assert!(seq.contains(&0) && seq.contains(&1) && seq.contains(&3));
}

#[test]
fn panic_engages_strictly_below_the_threshold() {
    // 4 hosts, threshold 50%: 2 healthy is exactly 50% → no panic.
    let mut lb = rr(4);
    lb.set_health(EndpointId(0), HealthFlag::ActiveCheck, true, Time(0));
    lb.set_health(EndpointId(1), HealthFlag::ActiveCheck, true, Time(0));
    assert!(!lb.in_panic());
    assert!(picks(&mut lb, 40, 2).iter().all(|&i| i >= 2));
    // 1 healthy of 4 = 25% → panic: every host is eligible again.
    lb.set_health(EndpointId(2), HealthFlag::ActiveCheck, true, Time(0));
    assert!(lb.in_panic());
    let seq = picks(&mut lb, 40, 3);
    for id in 0..4 {
        assert!(seq.contains(&id), "{id} missing in panic: {seq:?}");
    }
}

#[test]
fn zero_panic_threshold_never_panics() {
    let common = CommonConfig {
        panic_threshold: 0.0,
        ..CommonConfig::default()
    };
    let mut lb = LoadBalancer::new(Box::new(round_robin::RoundRobin::default()), common).unwrap();
    lb.update(EndpointChange::Reset(vec![Endpoint::new(0)]), Time(0))
        .unwrap();
    lb.set_health(EndpointId(0), HealthFlag::ActiveCheck, true, Time(0));
    assert!(!lb.in_panic());
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
    assert_eq!(lb.pick(&PickRequest::default(), Time(0), &mut rng), None);
}

#[test]
fn empty_set_gives_no_endpoint() {
    let mut lb = rr(0);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
    assert_eq!(lb.pick(&PickRequest::default(), Time(0), &mut rng), None);
}

#[test]
fn invalid_common_config_is_refused() {
    let common = CommonConfig {
        panic_threshold: 150.0,
        ..CommonConfig::default()
    };
    let e = LoadBalancer::new(Box::new(round_robin::RoundRobin::default()), common).unwrap_err();
    assert_eq!(e.field, "panic_threshold");
}

#[test]
fn zone_aware_keeps_traffic_local_when_capacity_allows() {
    let common = CommonConfig {
        zone_aware: ZoneAwareConfig {
            enabled: true,
            ..ZoneAwareConfig::default()
        },
        ..CommonConfig::default()
    };
    let mut lb = LoadBalancer::new(Box::new(round_robin::RoundRobin::default()), common).unwrap();
    let eps = (0..12)
        .map(|i| Endpoint::new(i).with_zone((i % 2) as u16))
        .collect();
    lb.update(EndpointChange::Reset(eps), Time(0)).unwrap();
    lb.set_local_fleet(LocalFleet {
        zone: Zone(1),
        per_zone: vec![(Zone(0), 5), (Zone(1), 5)],
    });
    assert!(picks(&mut lb, 50, 4).iter().all(|i| i % 2 == 1));
    // Lose four of the six zone-1 hosts: zone 1 now has 2/8 of healthy
    // capacity for 1/2 of the callers; 2500·10000/5000 = 5000 → half local.
    for id in [1, 3, 5, 7] {
        lb.set_health(EndpointId(id), HealthFlag::ActiveCheck, true, Time(0));
    }
    let seq = picks(&mut lb, 4000, 5);
    let local = seq.iter().filter(|&&i| i % 2 == 1).count() as f64 / 4000.0;
    // p = 0.5, sd = sqrt(.25/4000) ≈ 0.0079; allow 5 sd.
    assert!((local - 0.5).abs() < 0.04, "{local}");
}

#[test]
fn in_flight_counts_follow_start_and_complete() {
    let mut lb = rr(2);
    lb.on_start(EndpointId(1), Time(0));
    lb.on_start(EndpointId(1), Time(0));
    assert_eq!(lb.hosts().active(1), 2);
    let done = crate::endpoint::Completion {
        latency: crate::time::Nanos(5),
        outcome: crate::endpoint::Outcome::OK,
    };
    lb.on_complete(EndpointId(1), &done, Time(1));
    assert_eq!(lb.hosts().active(1), 1);
    // Completions for ids that were never in the set change nothing.
    lb.on_complete(EndpointId(9), &done, Time(1));
    assert_eq!(lb.hosts().active(1), 1);
    assert_eq!(lb.hosts().draining(), 0);
}

#[test]
fn a_removed_host_drains_and_a_returning_id_starts_clean() {
    let done = crate::endpoint::Completion {
        latency: crate::time::Nanos(5),
        outcome: crate::endpoint::Outcome::OK,
    };
    let mut lb = rr(2);
    lb.on_start(EndpointId(1), Time(0));
    lb.on_start(EndpointId(1), Time(0));
    lb.update(EndpointChange::Remove(EndpointId(1)), Time(1))
        .unwrap();
    assert_eq!(lb.hosts().draining(), 2);
    // The id comes back while two old requests are still out.
    lb.update(EndpointChange::Insert(Endpoint::new(1)), Time(2))
        .unwrap();
    lb.on_start(EndpointId(1), Time(3));
    let i = lb.hosts().index_of(EndpointId(1)).unwrap();
    assert_eq!(lb.hosts().active(i), 1, "only the new request counts");
    lb.on_complete(EndpointId(1), &done, Time(4));
    lb.on_complete(EndpointId(1), &done, Time(4));
    assert_eq!(lb.hosts().draining(), 0);
    assert_eq!(
        lb.hosts().active(i),
        1,
        "old completions settle the old count"
    );
    lb.on_complete(EndpointId(1), &done, Time(5));
    assert_eq!(lb.hosts().active(i), 0);
}

#[test]
fn outlier_release_does_not_restart_slow_start_but_a_health_check_pass_does() {
    let common = CommonConfig {
        slow_start: SlowStartConfig {
            window: crate::time::Nanos::from_secs(10),
            ..SlowStartConfig::default()
        },
        ..CommonConfig::default()
    };
    let mut lb = LoadBalancer::new(Box::new(round_robin::RoundRobin::default()), common).unwrap();
    lb.update(
        EndpointChange::Reset((0..2).map(Endpoint::new).collect()),
        Time(0),
    )
    .unwrap();
    let t = |s| Time(crate::time::Nanos::from_secs(s).as_nanos());
    lb.set_health(EndpointId(0), HealthFlag::Outlier, true, t(20));
    lb.set_health(EndpointId(0), HealthFlag::Outlier, false, t(30));
    assert_eq!(lb.hosts().weight(0, t(35)), 1.0);
    lb.set_health(EndpointId(0), HealthFlag::ActiveCheck, true, t(40));
    lb.set_health(EndpointId(0), HealthFlag::ActiveCheck, false, t(50));
    assert_eq!(lb.hosts().weight(0, t(55)), 0.5);
}

proptest::proptest! {
    /// Panic engages exactly when the healthy share falls below the
    /// threshold (`healthy × 100 < threshold × total`, Envoy's
    /// `isHostSetInPanic`) while the overprovisioned availability is below
    /// 100 %, and picks then reach unhealthy hosts.
    #[test]
    fn panic_engages_exactly_below_the_threshold(
        n in 1u32..40,
        unhealthy in 0u32..40,
        threshold in 0u32..=100,
    ) {
        let unhealthy = unhealthy.min(n);
        let common = CommonConfig {
            panic_threshold: f64::from(threshold),
            ..CommonConfig::default()
        };
        let mut lb = LoadBalancer::new(Box::new(round_robin::RoundRobin::default()), common).unwrap();
        lb.update(EndpointChange::Reset((0..n).map(Endpoint::new).collect()), Time(0)).unwrap();
        for id in 0..unhealthy {
            lb.set_health(EndpointId(id), HealthFlag::ActiveCheck, true, Time(0));
        }
        let healthy = n - unhealthy;
        // Below the threshold, and availability min(100, 1.4 × healthy%) below 100.
        let expect = healthy * 100 < threshold * n && healthy * 140 < 100 * n;
        proptest::prop_assert_eq!(lb.in_panic(), expect);
        let seq = picks_or_none(&mut lb, 2 * n as usize);
        if expect {
            // In panic, round robin walks every host, healthy or not.
            proptest::prop_assert!((0..n).all(|id| seq.contains(&Some(id))));
        } else if healthy == 0 {
            proptest::prop_assert!(seq.iter().all(|p| p.is_none()));
        } else {
            proptest::prop_assert!(seq.iter().all(|p| p.is_some_and(|id| id >= unhealthy)));
        }
    }
}

fn picks_or_none(lb: &mut LoadBalancer, k: usize) -> Vec<Option<u32>> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
    (0..k)
        .map(|_| {
            lb.pick(&PickRequest::default(), Time(0), &mut rng)
                .map(|id| id.0)
        })
        .collect()
}
