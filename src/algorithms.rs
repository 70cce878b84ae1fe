//! `meshsim algorithms`: every algorithm the core implements, with its defaults.

use std::io::Write;
use std::process::ExitCode;

use meshsim_core::balance::BalancerConfig;
use serde_json::Value;

/// Arguments of `meshsim algorithms`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print JSON (one object per algorithm) instead of text.
    #[arg(long)]
    json: bool,
    /// Only this family (balancer, breaker, outlier, retry, budget, backoff,
    /// hedge, limit, queue, fault, discovery, health).
    #[arg(long)]
    family: Option<String>,
}

/// The families, in the order they are listed.
const FAMILIES: [&str; 12] = [
    "balancer",
    "breaker",
    "outlier",
    "retry",
    "backoff",
    "budget",
    "hedge",
    "limit",
    "queue",
    "fault",
    "discovery",
    "health",
];

/// One catalogue entry.
struct Entry {
    family: &'static str,
    name: &'static str,
    summary: &'static str,
    defaults: Value,
}

fn entry<T: serde::Serialize>(
    family: &'static str,
    name: &'static str,
    summary: &'static str,
    defaults: T,
) -> anyhow::Result<Entry> {
    Ok(Entry {
        family,
        name,
        summary,
        defaults: serde_json::to_value(defaults)?,
    })
}

fn catalog() -> anyhow::Result<Vec<Entry>> {
    use meshsim_core::{breaker, discovery, fault, health, limit, outlier, retry};
    let mut out = Vec::new();
    for info in BalancerConfig::catalog() {
        out.push(entry("balancer", info.name, info.summary, &info.defaults)?);
    }
    out.push(entry(
        "balancer",
        "common",
        "settings every balancer shares: Envoy panic threshold (50%), slow start, zone-aware routing (min cluster 6)",
        meshsim_core::balance::CommonConfig::default(),
    )?);
    let others = [
        entry("breaker", "thresholds", "Envoy cluster circuit breakers: max connections/pending/requests 1024, max retries 3, optional retry budget", breaker::thresholds::ThresholdsConfig::default())?,
        entry("breaker", "error_rate", "resilience4j breaker: closed/open/half-open over a count or time window, failure and slow-call rates", breaker::error_rate::ErrorRateConfig::default())?,
        entry("breaker", "error_rate (hystrix)", "Hystrix preset: 10s window, 20 requests, 50% errors, 5s sleep, one trial", breaker::error_rate::ErrorRateConfig::hystrix())?,
        entry("breaker", "failure_accrual", "linkerd consecutive failures per endpoint: 7 failures, penalty 1s..60s with jitter 0.5, one probe", breaker::failure_accrual::FailureAccrualConfig::default())?,
        entry("breaker", "failure_accrual (finagle)", "Finagle preset: success rate 0.8 over 30s or 5 consecutive failures, equal-jittered 5s..300s", breaker::failure_accrual::FailureAccrualConfig::finagle())?,
        entry("outlier", "envoy", "Envoy outlier detection: consecutive 5xx/gateway/local-origin, success rate, failure percentage, 10% max ejection", outlier::OutlierConfig::default())?,
        entry("outlier", "grpc", "gRPC (gRFC A50) outlier detection: success rate and failure percentage, always allows one ejection", outlier::OutlierConfig::grpc())?,
        entry("retry", "policy", "Envoy route retry policy: retry_on classes, num_retries 1, per-try and overall (15s) timeouts, host predicate", retry::policy::RetryPolicyConfig::default())?,
        entry("backoff", "envoy", "Envoy back-off: retry k waits U[0, min(25ms*2^(k-1), 250ms))", retry::backoff::BackoffConfig::default())?,
        entry("budget", "envoy", "Envoy retry budget: concurrent retries <= max(20% of active, 3)", retry::budget::RetryBudgetConfig::Envoy(Default::default()))?,
        entry("budget", "tps", "Finagle/tower/linkerd token budget: 20% of requests over 10s plus 10 retries/s", retry::budget::RetryBudgetConfig::Tps(Default::default()))?,
        entry("budget", "grpc_throttle", "gRPC retry throttling (gRFC A6): tokens fall by 1 per failure, rise by token_ratio per success; retry while > max/2", retry::budget::RetryBudgetConfig::GrpcThrottle(Default::default()))?,
        entry("hedge", "hedge", "hedging: on per-try timeout (Envoy), after a fixed delay, or after the observed p95 (Dean & Barroso)", retry::hedge::HedgeConfig::default())?,
        entry("limit", "adaptive", "Envoy adaptive concurrency (gradient controller): minRTT window, p50 sample, buffer 25%, limit 3..1000", limit::ConcurrencyLimitConfig::Adaptive(Default::default()))?,
        entry("limit", "aimd", "Netflix concurrency-limits AIMD: +1 when busy, x0.9 on drop or timeout, 20..200", limit::ConcurrencyLimitConfig::Aimd(Default::default()))?,
        entry("limit", "vegas", "Netflix concurrency-limits Vegas (the library default): queue estimate from RTT vs no-load RTT", limit::ConcurrencyLimitConfig::Vegas(Default::default()))?,
        entry("limit", "gradient2", "Netflix concurrency-limits Gradient2: long/short RTT ratio with tolerance 1.5, 20..200", limit::ConcurrencyLimitConfig::Gradient2(Default::default()))?,
        entry("limit", "token_bucket", "Envoy local rate limit token bucket, continuous or timer refill", limit::token_bucket::TokenBucketConfig::default())?,
        entry("queue", "server_queue", "server queue: bounded FIFO/LIFO/adaptive LIFO, optional CoDel (target 5ms, interval 100ms)", limit::queue::QueueConfig::default())?,
        entry("fault", "fault", "Envoy/Istio fault filter: delay and abort, each rolled independently for its percentage", fault::FaultConfig::default())?,
        entry("discovery", "discovery", "registry propagation: push after a delay (Istio debounce 100ms) or poll with a cache (Eureka 30s/30s)", discovery::DiscoveryConfig::default())?,
        entry("health", "health_check", "active health checking (Envoy semantics, HAProxy defaults: 2s interval, fall 3, rise 2)", health::HealthCheckConfig::default())?,
    ];
    out.extend(others);
    Ok(out)
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let entries: Vec<Entry> = catalog()?
        .into_iter()
        .filter(|e| args.family.as_deref().is_none_or(|f| f == e.family))
        .collect();
    if entries.is_empty() {
        anyhow::bail!(
            "no algorithm family {:?}; expected one of: {}",
            args.family.as_deref().unwrap_or(""),
            FAMILIES.join(", ")
        );
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        for e in &entries {
            let obj = serde_json::json!({
                "family": e.family, "name": e.name, "summary": e.summary, "defaults": e.defaults,
            });
            writeln!(out, "{obj}")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut family = "";
    for e in &entries {
        if e.family != family {
            family = e.family;
            writeln!(out, "\n[{family}]")?;
        }
        writeln!(out, "{:<22} {}", e.name, e.summary)?;
        writeln!(out, "{:<22} defaults: {}", "", inline_toml(&e.defaults))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Renders a JSON value as an inline TOML value, so defaults can be pasted
/// into a scenario file.
fn inline_toml(v: &Value) -> String {
    match v {
        Value::Null => "\"\"".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(inline_toml).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(o) => {
            let fields: Vec<String> = o
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{k} = {}", inline_toml(v)))
                .collect();
            if fields.is_empty() {
                "{}".into()
            } else {
                format!("{{ {} }}", fields.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_covers_every_family_and_balancer() {
        let entries = catalog().unwrap();
        for family in FAMILIES {
            assert!(entries.iter().any(|e| e.family == family), "no {family}");
        }
        let balancers: Vec<&str> = entries
            .iter()
            .filter(|e| e.family == "balancer")
            .map(|e| e.name)
            .collect();
        for kind in [
            "round_robin",
            "smooth_round_robin",
            "random",
            "least_request",
            "p2c",
            "least_conn",
            "peak_ewma",
            "ring_hash",
            "maglev",
            "haproxy_random",
            "aperture",
            "client_wrr",
        ] {
            assert!(balancers.contains(&kind), "{kind} missing");
        }
        // Balancer defaults name their own kind, so they paste into scenarios.
        for e in entries
            .iter()
            .filter(|e| e.family == "balancer" && e.name != "common")
        {
            assert_eq!(e.defaults["kind"], e.name);
        }
    }

    #[test]
    fn inline_toml_renders_nested_tables() {
        let v = serde_json::json!({"kind": "p2c", "n": 2, "x": {"on": true}, "none": null});
        assert_eq!(
            inline_toml(&v),
            r#"{ kind = "p2c", n = 2, x = { on = true } }"#
        );
    }
}
