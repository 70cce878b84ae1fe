//! Randomised behaviour: enforcement rolls, jitter, and the ejection-cap
//! invariant under random outcome streams.

use super::*;
use crate::outlier::{Decision, OutlierConfig, Reason};
use crate::time::Nanos;
use crate::time::Time;
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

#[test]
fn enforcement_percentage_is_a_coin_flip_per_detection() {
    // enforcing_consecutive_5xx 30: of N = 2000 detections about 600 eject.
    // sd = sqrt(2000 × 0.3 × 0.7) ≈ 20.5; allow ±100 (≈ 4.9 sd).
    let cfg = OutlierConfig {
        enforcing_consecutive_5xx: 30,
        ..OutlierConfig::default()
    };
    let mut d = detector(cfg, 10);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(16);
    let mut ejected = 0;
    for _ in 0..2000 {
        let mut hit = None;
        for _ in 0..5 {
            hit = hit.or(d.on_result(Time(1), EndpointId(0), E500, &mut rng));
        }
        if hit.is_some() {
            ejected += 1;
            assert_eq!(
                d.on_health_check_pass(Time(1), EndpointId(0)),
                Some(Decision::Uneject(EndpointId(0)))
            );
        }
    }
    assert_eq!(d.stats().detected(Reason::Consecutive5xx), 2000);
    assert_eq!(d.stats().enforced(Reason::Consecutive5xx), ejected);
    assert!((ejected as i64 - 600).abs() <= 100, "{ejected}");
}

#[test]
fn jitter_delays_release_uniformly_up_to_the_maximum() {
    // interval 1 s, base 30 s, jitter U[0, 10 s], ejected at 0.5 s: released
    // at the first whole second ≥ 30.5 s + j, so the delay lies in
    // [30.5 s, 40.5 s] with mean 30.5 + E[ceil(j − 0.5)] = 35.5 s
    // (ceil(j − 0.5) is 0 w.p. 0.05, 1..9 w.p. 0.1 each, 10 w.p. 0.05).
    // sd ≈ 2.9 s, so the mean of 1000 has sd ≈ 0.09 s; allow ±0.5 s.
    let cfg = OutlierConfig {
        interval: Nanos::from_secs(1),
        max_ejection_time_jitter: Nanos::from_secs(10),
        always_eject_one_host: true,
        ..OutlierConfig::default()
    };
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(17);
    let at = Time(Nanos::from_millis(500).0);
    let mut delays = Vec::new();
    for _ in 0..1000 {
        let mut d = detector(cfg.clone(), 1);
        for _ in 0..5 {
            d.on_result(at, EndpointId(0), E500, &mut rng);
        }
        assert!(d.is_ejected(EndpointId(0)));
        loop {
            let now = d.next_deadline();
            if !d.on_timer(now, &mut rng).is_empty() {
                delays.push((now - at).as_secs_f64());
                break;
            }
        }
    }
    let min = delays.iter().cloned().fold(f64::MAX, f64::min);
    let max = delays.iter().cloned().fold(0.0, f64::max);
    let mean = delays.iter().sum::<f64>() / delays.len() as f64;
    assert!(min >= 30.5 && max <= 40.5, "{min} {max}");
    assert!(
        min < 31.0 && max > 40.0,
        "the whole range is reached: {min} {max}"
    );
    assert!((mean - 35.5).abs() < 0.5, "{mean}");
}

mod invariants {
    use super::*;
    use proptest::prelude::*;

    proptest::proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// The ejected share never exceeds max_ejection_percent, except the
        /// one host always_eject_one_host (Envoy) or gRPC's rule allows; gRPC
        /// may overshoot by that one host (it checks before ejecting).
        #[test]
        fn ejected_share_respects_the_cap(
            n in 1u32..25,
            max_pct in 0u32..=100,
            always in any::<bool>(),
            grpc in any::<bool>(),
            split in any::<bool>(),
            events in proptest::collection::vec((0u32..25, 0u8..6, 0u64..700), 0..400),
            seed in any::<u64>(),
        ) {
            let base = if grpc { OutlierConfig::grpc() } else { OutlierConfig::default() };
            let cfg = OutlierConfig {
                interval: Nanos::from_secs(1),
                base_ejection_time: Nanos::from_secs(2),
                max_ejection_percent: max_pct,
                always_eject_one_host: always,
                split_external_local_origin_errors: split,
                consecutive_5xx: 3,
                consecutive_local_origin_failure: 3,
                success_rate_request_volume: 3,
                success_rate_minimum_hosts: 2,
                failure_percentage_request_volume: 3,
                failure_percentage_minimum_hosts: 2,
                enforcing_failure_percentage: 100,
                ..base
            };
            let mut d = detector(cfg, n);
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            let cap = u64::from(max_pct) * u64::from(n);
            let bound = if grpc {
                cap.div_ceil(100).max(1)
            } else {
                (cap / 100).max(u64::from(always))
            } as usize;
            let mut now = Time::ZERO;
            for (id, kind, gap) in events {
                now += Nanos::from_millis(gap);
                while d.next_deadline() <= now {
                    let t = d.next_deadline();
                    d.on_timer(t, &mut rng);
                }
                let id = EndpointId(id % n);
                let o = [OK, E500, E503, Outcome::ConnectFailure, Outcome::Timeout];
                if kind == 5 {
                    d.on_health_check_pass(now, id);
                } else {
                    d.on_result(now, id, o[kind as usize], &mut rng);
                }
                let ejected = (0..n).filter(|&i| d.is_ejected(EndpointId(i))).count();
                prop_assert_eq!(ejected, d.ejected_count());
                prop_assert!(ejected <= bound, "{} ejected of {}, bound {}", ejected, n, bound);
            }
        }
    }
}
