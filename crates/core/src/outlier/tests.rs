//! Timelines and invariants of [`OutlierDetector`], with expected values
//! worked out by hand from Envoy's `outlier_detection_impl.cc` and grpc-go's
//! `outlierdetection/balancer.go`.

use super::*;
use crate::endpoint::{EndpointId, Outcome};
use crate::script::{run_table, table};
use crate::time::Nanos;
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

const E500: Outcome = Outcome::Status(500);
const E503: Outcome = Outcome::Status(503);
const OK: Outcome = Outcome::OK;

#[derive(Clone, Copy)]
enum Ev {
    /// `k` results with this outcome for host `id`.
    R(u32, Outcome, u32),
    /// The interval tick (must be exactly at `next_deadline`).
    Tick,
    /// The tick, then host `id`'s ejection multiplier as `k=`.
    TickK(u32),
    /// A passing active health check.
    Hc(u32),
    /// `ok` successes and `fail` 500s for host `id`, alternating while both last.
    M(u32, u32, u32),
}
use Ev::*;

mod random;
mod sweeps;

fn detector(cfg: OutlierConfig, n: u32) -> OutlierDetector {
    let mut d = cfg.try_new(Time::ZERO).unwrap();
    let ids: Vec<EndpointId> = (0..n).map(EndpointId).collect();
    d.on_hosts_changed(Time::ZERO, &ids);
    d
}

fn render(ds: &[Decision]) -> String {
    if ds.is_empty() {
        "-".into()
    } else {
        ds.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Runs `steps` against `d` and renders one line per step.
fn drive(d: &mut OutlierDetector, steps: &[(u64, Ev)], seed: u64) -> String {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    run_table(steps, |now, ev| match *ev {
        R(id, o, k) => {
            let ds: Vec<Decision> = (0..k)
                .filter_map(|_| d.on_result(now, EndpointId(id), o, &mut rng))
                .collect();
            render(&ds)
        }
        Tick | TickK(_) => {
            assert_eq!(now, d.next_deadline(), "ticks must fall on the deadline");
            let s = render(&d.on_timer(now, &mut rng));
            match *ev {
                TickK(id) => format!("{s}; k={}", d.ejection_multiplier(EndpointId(id)).unwrap()),
                _ => s,
            }
        }
        M(id, ok, fail) => {
            let mut ds = Vec::new();
            for i in 0..ok.max(fail) {
                for (o, k) in [(OK, ok), (E500, fail)] {
                    if i < k {
                        ds.extend(d.on_result(now, EndpointId(id), o, &mut rng));
                    }
                }
            }
            render(&ds)
        }
        Hc(id) => render(
            &d.on_health_check_pass(now, EndpointId(id))
                .into_iter()
                .collect::<Vec<_>>(),
        ),
    })
}

/// Ticks every 10 s from `from` to `to` seconds inclusive, rendering host 0's multiplier.
fn ticks(from: u64, to: u64) -> Vec<(u64, Ev)> {
    (from..=to)
        .step_by(10)
        .map(|s| (s * 1000, TickK(0)))
        .collect()
}

#[test]
fn ejections_last_30_60_90_s_rounded_up_to_the_tick_and_decay() {
    // Envoy defaults, 10 hosts (10 % of 10 allows one ejection).
    // Eject at event time; release at the first tick where
    // min(30 s × k, 300 s) ≤ now − t_eject; k grows on each ejection and
    // drops by one per tick once the host has been back ≥ one interval.
    let mut steps = vec![(5_000, R(0, E500, 5))];
    steps.extend(ticks(10, 40));
    steps.push((41_000, R(0, E500, 5)));
    steps.extend(ticks(50, 110));
    steps.push((111_000, R(0, E500, 5)));
    steps.extend(ticks(120, 240));
    steps.push((245_000, R(0, E500, 5)));
    steps.extend(ticks(250, 280));
    let mut d = detector(OutlierConfig::default(), 10);
    let got = drive(&mut d, &steps, 1);
    assert_eq!(
        got,
        table(
            "
            5s   | eject 0 (consecutive_5xx)
            10s  | -; k=1
            20s  | -; k=1
            30s  | -; k=1
            40s  | uneject 0; k=1
            41s  | eject 0 (consecutive_5xx)
            50s  | -; k=2
            1m   | -; k=2
            70s  | -; k=2
            80s  | -; k=2
            90s  | -; k=2
            100s | -; k=2
            110s | uneject 0; k=2
            111s | eject 0 (consecutive_5xx)
            2m   | -; k=3
            130s | -; k=3
            140s | -; k=3
            150s | -; k=3
            160s | -; k=3
            170s | -; k=3
            3m   | -; k=3
            190s | -; k=3
            200s | -; k=3
            210s | uneject 0; k=3
            220s | -; k=2
            230s | -; k=1
            4m   | -; k=0
            245s | eject 0 (consecutive_5xx)
            250s | -; k=1
            260s | -; k=1
            270s | -; k=1
            280s | uneject 0; k=1
            "
        )
    );
    assert_eq!(d.num_ejections(EndpointId(0)), Some(4));
    assert_eq!(d.stats().enforced(Reason::Consecutive5xx), 4);
}

#[test]
fn multiplier_stops_one_step_past_the_300s_cap() {
    // Re-eject 1 s after every release. The k-th ejection lasts
    // min(30 s × k, 300 s), observed as that + 9 s (eject 1 s after a tick,
    // release on the first tick at or after the due time). The multiplier
    // grows while 30 s × k < 300 s + 30 s, so it stops at 11.
    let mut d = detector(OutlierConfig::default(), 10);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
    let mut last_tick = Time::ZERO;
    let mut observed = Vec::new();
    let mut multipliers = Vec::new();
    for _ in 0..13 {
        let at = last_tick + Nanos::from_secs(1);
        let mut decided = None;
        for _ in 0..5 {
            decided = decided.or(d.on_result(at, EndpointId(0), E500, &mut rng));
        }
        let eject0 = Decision::Eject(EndpointId(0), Reason::Consecutive5xx);
        assert_eq!(decided, Some(eject0));
        multipliers.push(d.ejection_multiplier(EndpointId(0)).unwrap());
        loop {
            last_tick = d.next_deadline();
            let out = d.on_timer(last_tick, &mut rng);
            if !out.is_empty() {
                assert_eq!(out, vec![Decision::Uneject(EndpointId(0))]);
                observed.push((last_tick - at).as_nanos() / 1_000_000_000);
                break;
            }
        }
    }
    let expected: Vec<u64> = (1..=13u64).map(|k| (30 * k).min(300) + 9).collect();
    assert_eq!(observed, expected);
    assert_eq!(multipliers, vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 11, 11]);
}

#[test]
fn gateway_failures_are_detected_but_not_enforced_by_default() {
    // 503 is a 5xx and a gateway error. Both counters reach 5 on the fifth:
    // the gateway detection is counted but enforcing_consecutive_gateway_failure
    // is 0; the 5xx one ejects.
    let mut d = detector(OutlierConfig::default(), 10);
    let got = drive(&mut d, &[(1_000, R(1, E503, 4)), (2_000, R(1, E503, 1))], 3);
    assert_eq!(got, table("1s | -\n2s | eject 1 (consecutive_5xx)"));
    let s = d.stats();
    assert_eq!(s.detected(Reason::ConsecutiveGatewayFailure), 1);
    assert_eq!(s.enforced(Reason::ConsecutiveGatewayFailure), 0);
    assert_eq!(s.detected(Reason::Consecutive5xx), 1);
    assert_eq!(s.enforced(Reason::Consecutive5xx), 1);
}

#[test]
fn gateway_counter_resets_on_other_5xx_and_after_detection() {
    // consecutive_5xx 10: the gateway detector fires at the 5th 503 and, its
    // counter reset, again at the 10th, where the 5xx detector ejects. On
    // host 3 a 500 (a 5xx but not a gateway error) resets only the gateway
    // counter: 4 × 503, 500, 4 × 503 is 9 × 5xx but never 5 gateway errors.
    let cfg = OutlierConfig {
        consecutive_5xx: 10,
        ..OutlierConfig::default()
    };
    let mut d = detector(cfg, 10);
    let got = drive(
        &mut d,
        &[
            (1_000, R(2, E503, 9)),
            (2_000, R(2, E503, 1)),
            (3_000, R(3, E503, 4)),
            (3_000, R(3, E500, 1)),
            (3_000, R(3, E503, 4)),
        ],
        4,
    );
    assert_eq!(
        got,
        table(
            "
            1s | -
            2s | eject 2 (consecutive_5xx)
            3s | -
            3s | -
            3s | -
            "
        )
    );
    assert_eq!(d.stats().detected(Reason::ConsecutiveGatewayFailure), 2);
    assert_eq!(d.stats().enforced(Reason::ConsecutiveGatewayFailure), 0);
    assert_eq!(d.stats().detected(Reason::Consecutive5xx), 1);
}

#[test]
fn split_counts_local_origin_failures_apart_from_5xx() {
    // Without the split, a timeout is a 504: 4 × 500 then a timeout is the
    // fifth 5xx. With it, timeouts feed only the local-origin counter, and
    // a 500 proves the connection worked, resetting that counter.
    let steps = [
        (1_000, R(0, E500, 4)),
        (2_000, R(0, Outcome::Timeout, 4)),
        (3_000, R(0, E500, 1)),
        (4_000, R(0, Outcome::ConnectFailure, 4)),
        (5_000, R(0, Outcome::Reset, 1)),
    ];
    let mut d = detector(OutlierConfig::default(), 10);
    assert_eq!(
        drive(&mut d, &steps, 5),
        table(
            "
            1s | -
            2s | eject 0 (consecutive_5xx)
            3s | -
            4s | -
            5s | -
            "
        )
    );
    let split = OutlierConfig {
        split_external_local_origin_errors: true,
        ..OutlierConfig::default()
    };
    let mut d = detector(split, 10);
    assert_eq!(
        drive(&mut d, &steps, 5),
        table(
            "
            1s | -
            2s | -
            3s | eject 0 (consecutive_5xx)
            4s | -
            5s | -
            "
        )
    );
    assert_eq!(
        d.stats().detected(Reason::ConsecutiveLocalOrigin),
        0,
        "host 0 was ejected at 5s"
    );
    // A fresh host: 4 timeouts, a 200 (resets), then 5 connect failures.
    let split = OutlierConfig {
        split_external_local_origin_errors: true,
        ..OutlierConfig::default()
    };
    let mut d = detector(split, 10);
    assert_eq!(
        drive(
            &mut d,
            &[
                (6_000, R(1, Outcome::Timeout, 4)),
                (6_000, R(1, OK, 1)),
                (7_000, R(1, Outcome::ConnectFailure, 4)),
                (8_000, R(1, Outcome::ConnectFailure, 1)),
            ],
            6
        ),
        table("6s | -\n6s | -\n7s | -\n8s | eject 1 (consecutive_local_origin_failure)"),
    );
    assert_eq!(d.stats().detected(Reason::Consecutive5xx), 0);
}

#[test]
fn health_check_pass_releases_and_clears_counters() {
    // Envoy's host-check callback: a passing check clears
    // FAILED_OUTLIER_CHECK and resets the consecutive counters, so the
    // 4 errors seen while ejected no longer count.
    let mut d = detector(OutlierConfig::default(), 10);
    let got = drive(
        &mut d,
        &[
            (1_000, R(0, E500, 5)),
            (2_000, R(0, E500, 4)),
            (3_000, Hc(0)),
            (3_000, Hc(0)),
            (4_000, R(0, E500, 4)),
            (5_000, R(0, E500, 1)),
        ],
        13,
    );
    assert_eq!(
        got,
        table(
            "
            1s | eject 0 (consecutive_5xx)
            2s | -
            3s | uneject 0
            3s | -
            4s | -
            5s | eject 0 (consecutive_5xx)
            "
        )
    );
    let off = OutlierConfig {
        successful_active_health_check_uneject_host: false,
        ..OutlierConfig::default()
    };
    let mut d = detector(off, 10);
    let got = drive(&mut d, &[(1_000, R(0, E500, 5)), (2_000, Hc(0))], 14);
    assert_eq!(got, table("1s | eject 0 (consecutive_5xx)\n2s | -"));
    assert!(d.is_ejected(EndpointId(0)));
}

#[test]
fn membership_changes_keep_the_ejected_count_right() {
    let mut d = detector(OutlierConfig::default(), 10);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(15);
    for _ in 0..5 {
        d.on_result(Time(1), EndpointId(3), E500, &mut rng);
    }
    assert!(d.is_ejected(EndpointId(3)));
    assert_eq!(d.ejected_count(), 1);
    // Unknown ids and local rejections are ignored.
    assert_eq!(d.on_result(Time(2), EndpointId(99), E500, &mut rng), None);
    for _ in 0..10 {
        assert_eq!(
            d.on_result(Time(2), EndpointId(4), Outcome::LocalReject, &mut rng),
            None
        );
    }
    assert_eq!(d.stats().detected(Reason::Consecutive5xx), 1);
    // Removing the ejected host frees its slot; re-adding it starts fresh.
    let keep: Vec<EndpointId> = (0..10).filter(|&i| i != 3).map(EndpointId).collect();
    d.on_hosts_changed(Time(3), &keep);
    assert_eq!((d.host_count(), d.ejected_count()), (9, 0));
    d.on_endpoint_change(
        Time(4),
        &crate::endpoint::EndpointChange::Insert(crate::Endpoint::new(3)),
    );
    assert_eq!(d.host_count(), 10);
    assert!(!d.is_ejected(EndpointId(3)));
    assert_eq!(d.num_ejections(EndpointId(3)), Some(0));
    // An early timer call does nothing.
    assert_eq!(d.on_timer(Time(5), &mut rng), vec![]);
    assert_eq!(d.next_deadline(), Time(Nanos::from_secs(10).0));
}

#[test]
fn decisions_apply_to_the_balancer_as_the_outlier_flag() {
    use crate::balance::{round_robin::RoundRobin, CommonConfig, HealthFlag, LoadBalancer};
    use crate::endpoint::EndpointChange;
    let mut lb =
        LoadBalancer::new(Box::new(RoundRobin::default()), CommonConfig::default()).unwrap();
    lb.update(
        EndpointChange::Reset((0..4).map(crate::Endpoint::new).collect()),
        Time(0),
    )
    .unwrap();
    let flag = |lb: &LoadBalancer| {
        let i = lb.hosts().index_of(EndpointId(2)).unwrap();
        lb.hosts().get(i).has_flag(HealthFlag::Outlier)
    };
    Decision::Eject(EndpointId(2), Reason::SuccessRate).apply(&mut lb, Time(1));
    assert!(flag(&lb));
    Decision::Uneject(EndpointId(2)).apply(&mut lb, Time(2));
    assert!(!flag(&lb));
}
