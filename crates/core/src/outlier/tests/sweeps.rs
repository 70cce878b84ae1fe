//! The interval sweeps: success rate, failure percentage and the
//! max-ejection-percent rule, in Envoy and in gRPC.

use super::*;
use crate::outlier::{Decision, OutlierConfig, OutlierDetector, Reason};
use crate::time::Time;
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// One interval of traffic: host 0 at 50 % success, hosts 1–4 at 100 %,
/// host 4 with `volume4` requests; then the tick at 10 s.
fn success_rate_run(cfg: OutlierConfig, volume4: u32) -> (String, OutlierDetector) {
    let mut d = detector(cfg, 5);
    let got = drive(
        &mut d,
        &[
            (1_000, M(0, 50, 50)),
            (1_000, M(1, 100, 0)),
            (1_000, M(2, 100, 0)),
            (1_000, M(3, 100, 0)),
            (1_000, M(4, volume4, 0)),
            (10_000, Tick),
        ],
        7,
    );
    (got, d)
}

#[test]
fn success_rate_ejects_below_mean_minus_1_9_stdev() {
    // Envoy's example: rates {50, 100, 100, 100, 100}: mean 90, stdev 20,
    // threshold 52, so host 0 (50 %) is an outlier. 1 of 5 is 20 %: allowed
    // with max_ejection_percent 20.
    let cfg = OutlierConfig {
        max_ejection_percent: 20,
        ..OutlierConfig::default()
    };
    let (got, d) = success_rate_run(cfg.clone(), 100);
    let expected = "1s | -\n1s | -\n1s | -\n1s | -\n1s | -\n10s | eject 0 (success_rate)";
    assert_eq!(got, table(expected));
    let s = d.success_rate_stats().unwrap();
    assert_eq!((s.mean, s.stdev, s.threshold), (90.0, 20.0, 52.0));
    assert_eq!(d.stats().enforced(Reason::SuccessRate), 1);

    // Host 4 one request short of the volume: 4 hosts < minimum 5, no sweep.
    let (got, d) = success_rate_run(cfg, 99);
    assert_eq!(got, table(&expected.replace("eject 0 (success_rate)", "-")));
    assert_eq!(d.success_rate_stats(), None);
    assert_eq!(d.stats().detected(Reason::SuccessRate), 0);
}

#[test]
fn success_rate_detection_overflows_under_the_default_10_percent() {
    // 1 of 5 hosts is 20 % > 10 %: detected, refused, counted as overflow.
    let (got, d) = success_rate_run(OutlierConfig::default(), 100);
    assert!(got.ends_with("10s | -\n"), "{got}");
    assert_eq!(d.stats().detected(Reason::SuccessRate), 1);
    assert_eq!(d.stats().ejections_overflow, 1);
    assert_eq!(d.ejected_count(), 0);
    // always_eject_one_host lets the first one through.
    let cfg = OutlierConfig {
        always_eject_one_host: true,
        ..OutlierConfig::default()
    };
    let (got, d) = success_rate_run(cfg, 100);
    assert!(got.ends_with("10s | eject 0 (success_rate)\n"), "{got}");
    assert_eq!(d.ejected_count(), 1);
}

#[test]
fn small_clusters_never_eject_under_the_default_10_percent() {
    // (0 + 1) / n × 100 ≤ 10 needs n ≥ 10.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
    let mut five_errors = |d: &mut OutlierDetector, id: u32| {
        (0..5)
            .filter_map(|_| d.on_result(Time(1), EndpointId(id), E500, &mut rng))
            .last()
    };
    for n in 1..=9 {
        let mut d = detector(OutlierConfig::default(), n);
        assert_eq!(five_errors(&mut d, 0), None, "n={n}");
        assert_eq!(d.stats().detected(Reason::Consecutive5xx), 1);
        assert_eq!(d.stats().ejections_overflow, 1);
    }
    let mut d = detector(OutlierConfig::default(), 10);
    let eject0 = Some(Decision::Eject(EndpointId(0), Reason::Consecutive5xx));
    assert_eq!(five_errors(&mut d, 0), eject0);
    assert_eq!(five_errors(&mut d, 1), None, "(1 + 1) / 10 = 20 % > 10 %");
    assert_eq!(d.stats().ejections_overflow, 1);
    let always = OutlierConfig {
        always_eject_one_host: true,
        ..OutlierConfig::default()
    };
    let mut d = detector(always, 5);
    assert_eq!(five_errors(&mut d, 0), eject0);
    assert_eq!(five_errors(&mut d, 1), None);
    assert_eq!(d.stats().ejections_overflow, 1);
}

/// gRPC: `failing` of `n` hosts fail every request, the rest succeed; returns
/// the tick's decisions.
fn grpc_failing(cfg: OutlierConfig, n: u32, failing: u32) -> (Vec<Decision>, OutlierDetector) {
    let mut d = detector(cfg, n);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
    for id in 0..n {
        let o = if id < failing { E500 } else { OK };
        for _ in 0..100 {
            assert_eq!(d.on_result(Time(1), EndpointId(id), o, &mut rng), None);
        }
    }
    let out = d.on_timer(d.next_deadline(), &mut rng);
    (out, d)
}

#[test]
fn grpc_always_allows_one_ejection_then_stops_at_the_percentage() {
    // grpc-go failurePercentageAlgorithm: before each host, stop if
    // ejected / n × 100 ≥ max. With nothing ejected the first always goes.
    // Success rate is left unenforced so that only failure percentage
    // ejects (with 10 hosts, {0, 0, 1 × 8} gives mean 0.8, stdev 0.4,
    // threshold 0.04, so it would flag hosts 0 and 1 first).
    let fp = |id| Decision::Eject(EndpointId(id), Reason::FailurePercentage);
    let grpc = || OutlierConfig {
        enforcing_success_rate: 0,
        ..OutlierConfig::grpc()
    };
    // 5 hosts: 0 % < 10 → eject 0; then 1/5 = 20 % ≥ 10 → stop.
    let (out, d) = grpc_failing(grpc(), 5, 2);
    assert_eq!(out, vec![fp(0)]);
    assert_eq!(d.stats().detected(Reason::FailurePercentage), 1);
    // 10 hosts: 1/10 = 10 % ≥ 10 → stop after one.
    assert_eq!(grpc_failing(grpc(), 10, 2).0, vec![fp(0)]);
    // 11 hosts: 1/11 = 9.1 % < 10 → a second goes, leaving 18 % ejected.
    assert_eq!(grpc_failing(grpc(), 11, 2).0, vec![fp(0), fp(1)]);
    // max_ejection_percent 0 still allows one.
    let zero = OutlierConfig {
        max_ejection_percent: 0,
        ..grpc()
    };
    assert_eq!(grpc_failing(zero, 5, 2).0, vec![fp(0)]);
    // Envoy's failure percentage is off by default (enforcement 0).
    let (out, d) = grpc_failing(OutlierConfig::default(), 5, 1);
    assert_eq!(out, vec![]);
    assert_eq!(d.stats().detected(Reason::FailurePercentage), 1);
}

#[test]
fn failure_percentage_threshold_is_inclusive_in_envoy_strict_in_grpc() {
    // 85 failures in 100 requests is exactly the threshold 85: Envoy ejects
    // (>=), gRPC does not (>); 86 ejects in both. Success rate is not
    // enforced and consecutive 5xx is off (threshold 0 never fires).
    let run = |cfg: OutlierConfig, fails: u32| {
        let cfg = OutlierConfig {
            enforcing_success_rate: 0,
            consecutive_5xx: 0,
            enforcing_failure_percentage: 100,
            max_ejection_percent: 20,
            ..cfg
        };
        let mut d = detector(cfg, 5);
        let mut steps = vec![(1_000, M(0, 100 - fails, fails))];
        steps.extend((1..5).map(|id| (1_000, M(id, 100, 0))));
        steps.push((10_000, Tick));
        let got = drive(&mut d, &steps, 10);
        got.lines().last().unwrap().to_string()
    };
    let eject = "10s | eject 0 (failure_percentage)";
    assert_eq!(run(OutlierConfig::default(), 85), eject);
    assert_eq!(run(OutlierConfig::grpc(), 85), "10s | -");
    assert_eq!(run(OutlierConfig::default(), 86), eject);
    assert_eq!(run(OutlierConfig::grpc(), 86), eject);
    assert_eq!(run(OutlierConfig::default(), 84), "10s | -");
}

#[test]
fn grpc_releases_strictly_after_the_ejection_time() {
    // gRPC ejects at the tick (t = 10 s, k = 1) and releases when
    // now > 10 s + min(30 s × 1, max(30 s, 300 s)) = 40 s: at 40 s the
    // comparison is equal, so the release waits for 50 s. The multiplier
    // decays on the first tick that finds the host not ejected.
    let mut d = detector(OutlierConfig::grpc(), 5);
    let mut steps = vec![(1_000, M(0, 50, 50))];
    steps.extend((1..5).map(|id| (1_000, M(id, 100, 0))));
    steps.extend(ticks(10, 70));
    let got = drive(&mut d, &steps, 11);
    let head = "1s | -\n".repeat(5);
    assert_eq!(
        got,
        table(&format!(
            "{head}
            10s | eject 0 (success_rate); k=1
            20s | -; k=1
            30s | -; k=1
            40s | -; k=1
            50s | uneject 0; k=1
            1m  | -; k=0
            70s | -; k=0
            "
        ))
    );
    // gRPC has no consecutive detectors.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(12);
    for _ in 0..50 {
        assert_eq!(d.on_result(Time(71), EndpointId(1), E503, &mut rng), None);
    }
}

#[test]
fn local_origin_success_rate_runs_on_its_own_buckets() {
    // Split on: host 0 has 50 timeouts and 50 successes (alternating, so no
    // consecutive detector fires); hosts 1–4 have 100 successes. Local-origin
    // rates are {50, 100, 100, 100, 100} → threshold 52 → host 0 is ejected
    // with the local-origin reason. Its HTTP volume is only 50 (< 100), so
    // the external sweep has 4 hosts and does not run.
    let cfg = OutlierConfig {
        split_external_local_origin_errors: true,
        max_ejection_percent: 20,
        ..OutlierConfig::default()
    };
    let mut d = super::detector(cfg, 5);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(20);
    for i in 0..100 {
        let o = if i % 2 == 0 { Outcome::Timeout } else { OK };
        assert_eq!(d.on_result(Time(1), EndpointId(0), o, &mut rng), None);
        for id in 1..5 {
            assert_eq!(d.on_result(Time(1), EndpointId(id), OK, &mut rng), None);
        }
    }
    let out = d.on_timer(d.next_deadline(), &mut rng);
    assert_eq!(
        out,
        vec![Decision::Eject(
            EndpointId(0),
            Reason::SuccessRateLocalOrigin
        )]
    );
    assert_eq!(d.success_rate_stats(), None);
    let s = d.local_origin_success_rate_stats().unwrap();
    assert_eq!((s.mean, s.threshold), (90.0, 52.0));
}

#[test]
fn a_host_is_ejected_once_per_sweep_even_if_both_detectors_fire() {
    // Host 0 fails 60 % (40 of 100 succeed; others 100 %): rates
    // {40, 100 × 4}: mean 88, stdev 24, threshold 88 − 45.6 = 42.4 → success
    // rate ejects it; failure percentage (60 % ≥ 50 %) then skips it.
    let cfg = OutlierConfig {
        max_ejection_percent: 100,
        consecutive_5xx: 0,
        failure_percentage_threshold: 50,
        enforcing_failure_percentage: 100,
        ..OutlierConfig::default()
    };
    let mut d = super::detector(cfg, 5);
    let mut steps = vec![(1_000, M(0, 40, 60))];
    steps.extend((1..5).map(|id| (1_000, M(id, 100, 0))));
    steps.push((10_000, Tick));
    let got = drive(&mut d, &steps, 21);
    assert!(got.ends_with("10s | eject 0 (success_rate)\n"), "{got}");
    assert_eq!(d.ejected_count(), 1);
    assert_eq!(d.stats().detected(Reason::FailurePercentage), 0);
}
