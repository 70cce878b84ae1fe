//! Cost per request of each resilience mechanism in `meshsim-core`: what a
//! sidecar pays for it on every request, in the pattern a proxy or the
//! simulator drives it (admit → send → result). Timer work that runs per
//! interval rather than per request (outlier sweeps, limit updates) is
//! included at its natural rate: one sweep per 1,000 requests for outlier
//! detection with 100 hosts.
//!
//! Run: `cargo bench --bench mechanisms`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use meshsim_core::breaker::{error_rate, failure_accrual, thresholds};
use meshsim_core::fault::{AbortFault, Delay, DelayFault, FaultConfig, RequestMeta};
use meshsim_core::limit::{self, queue, token_bucket, ConcurrencyLimitConfig, Sample};
use meshsim_core::outlier::OutlierConfig;
use meshsim_core::retry::budget::{RetryBudgetConfig, TpsBudgetConfig};
use meshsim_core::retry::conditions::RetryOn;
use meshsim_core::retry::hedge::{HedgeConfig, HedgeMode};
use meshsim_core::retry::policy::RetryPolicyConfig;
use meshsim_core::{EndpointId, Nanos, Outcome, Time};
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// A deterministic request stream: 1% errors, latencies 1–8 ms, 10 µs apart.
struct Stream {
    rng: Xoshiro256PlusPlus,
    now: Time,
}

impl Stream {
    fn new() -> Stream {
        Stream {
            rng: Xoshiro256PlusPlus::seed_from_u64(7),
            now: Time::ZERO,
        }
    }
    fn next(&mut self) -> (Time, Nanos, Outcome) {
        self.now += Nanos::from_micros(10);
        let r = self.rng.next_u64();
        let outcome = if r % 100 == 0 {
            Outcome::Status(503)
        } else {
            Outcome::OK
        };
        (self.now, Nanos::from_millis(1 + (r >> 8) % 8), outcome)
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("per-request");
    g.warm_up_time(std::time::Duration::from_millis(300));
    g.measurement_time(std::time::Duration::from_secs(1));

    let mut t = thresholds::ThresholdsConfig::default().try_new().unwrap();
    g.bench_function("thresholds", |b| {
        b.iter(|| {
            let ok = t.try_acquire(thresholds::Resource::Request).is_ok();
            if ok {
                t.release(thresholds::Resource::Request);
            }
            black_box(ok)
        })
    });

    for (name, cfg) in [
        ("error_rate", error_rate::ErrorRateConfig::default()),
        ("error_rate_hystrix", error_rate::ErrorRateConfig::hystrix()),
    ] {
        let mut br = cfg.try_new().unwrap();
        let mut s = Stream::new();
        g.bench_function(name, |b| {
            b.iter(|| {
                let (now, lat, outcome) = s.next();
                if br.try_acquire(now) {
                    br.on_result(now, lat, !error_rate::is_failure(outcome));
                }
            })
        });
    }

    let mut fa = failure_accrual::FailureAccrualConfig::default()
        .try_new()
        .unwrap();
    let mut s = Stream::new();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    g.bench_function("failure_accrual", |b| {
        b.iter(|| {
            let (now, _, outcome) = s.next();
            if let Some(d) = fa.next_deadline() {
                if d <= now {
                    fa.on_timeout(now);
                }
            }
            if fa.admit(now) {
                fa.on_result(now, outcome.is_success(), &mut rng);
            }
        })
    });

    let mut od = OutlierConfig::default().try_new(Time::ZERO).unwrap();
    let ids: Vec<EndpointId> = (0..100).map(EndpointId).collect();
    od.on_hosts_changed(Time::ZERO, &ids);
    let mut s = Stream::new();
    let mut k = 0u32;
    g.bench_function("outlier_100_hosts", |b| {
        b.iter(|| {
            let (now, _, outcome) = s.next();
            k = (k + 1) % 100;
            black_box(od.on_result(now, EndpointId(k), outcome, &mut rng));
            if od.next_deadline() <= now {
                black_box(od.on_timer(now, &mut rng));
            }
        })
    });

    let policy = RetryPolicyConfig {
        num_retries: 2,
        retry_on: vec![RetryOn::FiveXx],
        ..RetryPolicyConfig::default()
    }
    .try_new()
    .unwrap();
    let mut s = Stream::new();
    g.bench_function("retry_policy", |b| {
        b.iter(|| {
            let (now, _, outcome) = s.next();
            let mut st = policy.start(now);
            st.on_attempt_start(&policy, now, EndpointId(1));
            black_box(st.on_attempt_result(&policy, now, outcome, None, || true, &mut rng))
        })
    });

    for (name, cfg) in [
        ("budget_envoy", RetryBudgetConfig::Envoy(Default::default())),
        (
            "budget_tps",
            RetryBudgetConfig::Tps(TpsBudgetConfig::default()),
        ),
        (
            "budget_grpc_throttle",
            RetryBudgetConfig::GrpcThrottle(Default::default()),
        ),
    ] {
        let mut bud = cfg.try_new().unwrap();
        let mut s = Stream::new();
        g.bench_function(name, |b| {
            b.iter(|| {
                let (now, _, outcome) = s.next();
                bud.on_request(now);
                bud.on_result(now, outcome.is_success());
                if !outcome.is_success() {
                    black_box(bud.try_retry(now, 40, 2));
                }
            })
        });
    }

    let hedger = HedgeConfig {
        mode: HedgeMode::AfterDelay {
            delay: Nanos::from_millis(5),
        },
        max_attempts: 2,
    }
    .try_new()
    .unwrap();
    let mut s = Stream::new();
    g.bench_function("hedge_after_delay", |b| {
        b.iter(|| {
            let (now, lat, outcome) = s.next();
            let mut h = hedger.start(now, None, policy.conditions());
            if let Some(d) = h.next_deadline() {
                if d <= now + lat {
                    black_box(h.on_timer(d));
                }
            }
            black_box(h.on_response(now + lat, 0, outcome))
        })
    });

    let mut tb = token_bucket::TokenBucketConfig {
        max_tokens: 10_000,
        tokens_per_fill: 5_000,
        fill_interval: Nanos::from_millis(50),
        ..Default::default()
    }
    .try_new()
    .unwrap();
    let mut s = Stream::new();
    g.bench_function("token_bucket", |b| {
        b.iter(|| {
            let (now, _, _) = s.next();
            black_box(tb.try_consume(now, 1))
        })
    });

    for cfg in [
        ConcurrencyLimitConfig::Adaptive(Default::default()),
        ConcurrencyLimitConfig::Aimd(Default::default()),
        ConcurrencyLimitConfig::Vegas(Default::default()),
        ConcurrencyLimitConfig::Gradient2(Default::default()),
    ] {
        let mut l: Box<dyn limit::ConcurrencyLimit> = cfg.build(Time::ZERO).unwrap();
        let mut s = Stream::new();
        g.bench_function(format!("limit_{}", cfg.name()), |b| {
            b.iter(|| {
                let (now, rtt, outcome) = s.next();
                if let Some(d) = l.next_deadline() {
                    if d <= now {
                        l.on_timer(now, &mut rng);
                    }
                }
                if l.try_acquire(1) {
                    let sample = Sample {
                        rtt,
                        inflight: 1,
                        dropped: !outcome.is_success(),
                    };
                    l.on_sample(now, sample, &mut rng);
                }
            })
        });
    }

    let mut q = queue::QueueConfig {
        capacity: Some(1000),
        codel: Some(queue::CodelConfig::default()),
        ..Default::default()
    }
    .try_new::<u64>()
    .unwrap();
    let mut s = Stream::new();
    let mut n = 0u64;
    g.bench_function("server_queue_codel", |b| {
        b.iter(|| {
            let (now, _, _) = s.next();
            n += 1;
            let _ = q.push(now, n);
            if n % 2 == 0 {
                black_box(q.pop(now));
                black_box(q.pop(now));
            }
        })
    });

    let filter = FaultConfig {
        delay: Some(DelayFault {
            delay: Delay::Fixed(Nanos::from_millis(5)),
            percentage: 10.0,
        }),
        abort: Some(AbortFault {
            status: 503,
            percentage: 1.0,
        }),
        ..Default::default()
    }
    .try_new()
    .unwrap();
    let headers: Vec<(String, String)> = vec![("x-user".into(), "a".into())];
    let meta = RequestMeta {
        route: "default",
        headers: &headers,
    };
    g.bench_function("fault", |b| {
        b.iter(|| black_box(filter.decide(Time::ZERO, &meta, 0, &mut rng)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
