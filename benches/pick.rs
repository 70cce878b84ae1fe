//! Cost per request of each balancer: `pick` + `on_start` + `on_complete`,
//! at 10, 100 and 1,000 endpoints, with a steady population of in-flight
//! requests so that load-aware balancers see non-trivial state.
//!
//! Run: `cargo bench --bench pick`. Every balancer in the catalogue is
//! measured, so a new one is benchmarked without touching this file.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use meshsim_core::balance::{BalancerConfig, CommonConfig};
use meshsim_core::{Completion, Endpoint, EndpointChange, Nanos, Outcome, PickRequest, Time};
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

fn bench_pick(c: &mut Criterion) {
    let mut group = c.benchmark_group("pick+complete");
    group.warm_up_time(std::time::Duration::from_millis(300));
    group.measurement_time(std::time::Duration::from_secs(1));
    for info in BalancerConfig::catalog() {
        for n in [10u32, 100, 1000] {
            let mut lb = info
                .defaults
                .load_balancer(CommonConfig::default())
                .unwrap();
            let eps = (0..n)
                .map(|i| Endpoint::new(i).with_weight(1 + i % 3))
                .collect();
            lb.update(EndpointChange::Reset(eps), Time::ZERO).unwrap();
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(42);
            // A ring of in-flight requests: each iteration completes the
            // oldest and starts a new one, so about `n / 2` are in flight.
            let depth = (n / 2).max(1) as usize;
            let mut ring = vec![None; depth];
            let mut now = Time::ZERO;
            let mut k = 0usize;
            group.bench_with_input(BenchmarkId::new(info.name, n), &n, |b, _| {
                b.iter(|| {
                    now += Nanos::from_micros(10);
                    let req = PickRequest {
                        hash: Some(rng.next_u64()),
                        attempt: 0,
                    };
                    let id = lb.pick(black_box(&req), now, &mut rng);
                    if let Some(old) = ring[k].take() {
                        let done = Completion {
                            latency: Nanos::from_micros(500 + (k as u64 % 7) * 100),
                            outcome: Outcome::OK,
                        };
                        lb.on_complete(old, &done, now);
                    }
                    if let Some(id) = id {
                        lb.on_start(id, now);
                        ring[k] = Some(id);
                    }
                    k = (k + 1) % depth;
                    black_box(id)
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_pick);
criterion_main!(benches);
