//! The proxy's counters and their Prometheus text rendering.
//!
//! Metric names (all labelled `cluster`):
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `meshsim_proxy_requests_total{code}` | counter | downstream responses by status |
//! | `meshsim_proxy_request_duration_seconds` | histogram | downstream latency (all attempts, back-off included) |
//! | `meshsim_proxy_attempts_total{outcome}` | counter | upstream attempts by outcome (`2xx`…`5xx`, `reset`, `connect_failure`, `timeout`) |
//! | `meshsim_proxy_retries_total` | counter | retries sent |
//! | `meshsim_proxy_limited_total{limit}` | counter | requests refused by the `concurrency` limit (503) or the `rate` limit (429) |
//! | `meshsim_proxy_concurrency_limit` | gauge | the adaptive concurrency limit now |
//! | `meshsim_proxy_hedges_total{event}` | counter | hedged attempts `sent`, and losing attempts `cancelled` |
//! | `meshsim_proxy_retry_give_ups_total{reason}` | counter | retriable failures not retried (`retries_exhausted`, `budget_exhausted`, `deadline_exceeded`) |
//! | `meshsim_proxy_overflow_total{limit}` | counter | breaker refusals (`requests`, `retries`) |
//! | `meshsim_proxy_no_healthy_upstream_total` | counter | requests with no endpoint to pick |
//! | `meshsim_proxy_faults_total{kind}` | counter | injected `delay` and `abort` faults |
//! | `meshsim_proxy_ejections_total{reason}` | counter | outlier ejections enforced |
//! | `meshsim_proxy_ejected_hosts` | gauge | hosts ejected now |
//! | `meshsim_proxy_retry_budget_remaining` | gauge | retries the budget allows now (absent without a budget) |
//! | `meshsim_proxy_endpoint_active_requests{endpoint}` | gauge | attempts in flight per endpoint |
//! | `meshsim_proxy_endpoint_requests_total{endpoint}` | counter | attempts sent per endpoint |
//! | `meshsim_proxy_endpoint_errors_total{endpoint}` | counter | failed attempts per endpoint |
//! | `meshsim_proxy_endpoint_healthy{endpoint}` | gauge | 1 if the balancer counts it healthy |
//! | `meshsim_proxy_endpoint_ejections_total{endpoint}` | counter | ejections per endpoint |
//! | `meshsim_proxy_discovery_version` | gauge | endpoint-set version applied |

use std::collections::BTreeMap;
use std::fmt::Write;

use meshsim_core::{Nanos, Outcome, Time};

use super::cluster::Inner;

/// Upper bounds of the latency histogram, seconds.
pub const BUCKETS: [f64; 16] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Counts by outcome.
#[derive(Clone, Debug, Default)]
pub struct OutcomeCounts {
    by: BTreeMap<&'static str, u64>,
}

impl OutcomeCounts {
    /// Counts one outcome.
    pub fn record(&mut self, o: Outcome) {
        let k = match o {
            Outcome::Status(s) if s < 200 => "1xx",
            Outcome::Status(s) if s < 300 => "2xx",
            Outcome::Status(s) if s < 400 => "3xx",
            Outcome::Status(s) if s < 500 => "4xx",
            Outcome::Status(_) => "5xx",
            Outcome::Reset => "reset",
            Outcome::ConnectFailure => "connect_failure",
            Outcome::Timeout => "timeout",
            Outcome::LocalReject => "local_reject",
        };
        *self.by.entry(k).or_default() += 1;
    }
}

/// A Prometheus histogram with fixed buckets.
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    /// Records one value.
    pub fn record(&mut self, d: Nanos) {
        let s = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| s <= *b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += s;
    }
}

/// One cluster's counters.
#[derive(Clone, Debug, Default)]
pub struct ClusterMetrics {
    /// Downstream responses by status.
    pub responses: BTreeMap<u16, u64>,
    /// Downstream latency.
    pub latency: Histogram,
    /// Upstream attempts by outcome.
    pub attempts: OutcomeCounts,
    /// Retries sent.
    pub retries: u64,
    /// Give-ups by reason.
    pub give_ups: BTreeMap<&'static str, u64>,
    /// Breaker refusals by limit.
    pub overflows: BTreeMap<&'static str, u64>,
    /// No endpoint available.
    pub no_healthy: u64,
    /// Injected faults by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Requests refused by the concurrency (`concurrency`) or rate (`rate`) limit.
    pub limited: BTreeMap<&'static str, u64>,
    /// Hedged attempts sent (beyond each request's first).
    pub hedges: u64,
    /// Attempts cancelled because another copy won.
    pub hedges_cancelled: u64,
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders every cluster's metrics in the Prometheus text format.
pub fn render(clusters: &[(String, &Inner)], now: Time) -> String {
    let mut o = String::new();
    macro_rules! head {
        ($name:expr, $kind:expr, $help:expr) => {
            let _ = writeln!(o, "# HELP {} {}\n# TYPE {} {}", $name, $help, $name, $kind);
        };
    }
    head!(
        "meshsim_proxy_requests_total",
        "counter",
        "Downstream responses by status code."
    );
    for (name, c) in clusters {
        for (code, n) in &c.metrics.responses {
            let _ = writeln!(
                o,
                "meshsim_proxy_requests_total{{cluster=\"{}\",code=\"{code}\"}} {n}",
                esc(name)
            );
        }
    }
    head!(
        "meshsim_proxy_request_duration_seconds",
        "histogram",
        "Downstream request latency."
    );
    for (name, c) in clusters {
        let h = &c.metrics.latency;
        let mut acc = 0;
        for (b, n) in BUCKETS.iter().zip(h.counts.iter()) {
            acc += n;
            let _ = writeln!(
                o,
                "meshsim_proxy_request_duration_seconds_bucket{{cluster=\"{}\",le=\"{b}\"}} {acc}",
                esc(name)
            );
        }
        let _ = writeln!(
            o,
            "meshsim_proxy_request_duration_seconds_bucket{{cluster=\"{}\",le=\"+Inf\"}} {}",
            esc(name),
            h.count
        );
        let _ = writeln!(
            o,
            "meshsim_proxy_request_duration_seconds_sum{{cluster=\"{}\"}} {}",
            esc(name),
            h.sum
        );
        let _ = writeln!(
            o,
            "meshsim_proxy_request_duration_seconds_count{{cluster=\"{}\"}} {}",
            esc(name),
            h.count
        );
    }
    head!(
        "meshsim_proxy_attempts_total",
        "counter",
        "Upstream attempts by outcome."
    );
    for (name, c) in clusters {
        for (k, n) in &c.metrics.attempts.by {
            let _ = writeln!(
                o,
                "meshsim_proxy_attempts_total{{cluster=\"{}\",outcome=\"{k}\"}} {n}",
                esc(name)
            );
        }
    }
    head!("meshsim_proxy_retries_total", "counter", "Retries sent.");
    for (name, c) in clusters {
        let _ = writeln!(
            o,
            "meshsim_proxy_retries_total{{cluster=\"{}\"}} {}",
            esc(name),
            c.metrics.retries
        );
    }
    head!(
        "meshsim_proxy_limited_total",
        "counter",
        "Requests refused by the concurrency limit (503) or the rate limit (429)."
    );
    for (name, c) in clusters {
        for l in ["concurrency", "rate"] {
            let n = c.metrics.limited.get(l).copied().unwrap_or(0);
            let _ = writeln!(
                o,
                "meshsim_proxy_limited_total{{cluster=\"{}\",limit=\"{l}\"}} {n}",
                esc(name)
            );
        }
    }
    head!(
        "meshsim_proxy_concurrency_limit",
        "gauge",
        "The adaptive concurrency limit now."
    );
    for (name, c) in clusters {
        if let Some(l) = &c.admission.limiter {
            let _ = writeln!(
                o,
                "meshsim_proxy_concurrency_limit{{cluster=\"{}\"}} {}",
                esc(name),
                l.limit()
            );
        }
    }
    head!(
        "meshsim_proxy_hedges_total",
        "counter",
        "Hedged attempts sent, and attempts cancelled because another copy won."
    );
    for (name, c) in clusters {
        for (event, n) in [
            ("sent", c.metrics.hedges),
            ("cancelled", c.metrics.hedges_cancelled),
        ] {
            let _ = writeln!(
                o,
                "meshsim_proxy_hedges_total{{cluster=\"{}\",event=\"{event}\"}} {n}",
                esc(name)
            );
        }
    }
    head!(
        "meshsim_proxy_retry_give_ups_total",
        "counter",
        "Retriable failures not retried, by reason."
    );
    for (name, c) in clusters {
        for r in ["retries_exhausted", "budget_exhausted", "deadline_exceeded"] {
            let n = c.metrics.give_ups.get(r).copied().unwrap_or(0);
            let _ = writeln!(
                o,
                "meshsim_proxy_retry_give_ups_total{{cluster=\"{}\",reason=\"{r}\"}} {n}",
                esc(name)
            );
        }
    }
    head!(
        "meshsim_proxy_overflow_total",
        "counter",
        "Circuit-breaker threshold refusals."
    );
    for (name, c) in clusters {
        for l in ["requests", "retries"] {
            let n = c.metrics.overflows.get(l).copied().unwrap_or(0);
            let _ = writeln!(
                o,
                "meshsim_proxy_overflow_total{{cluster=\"{}\",limit=\"{l}\"}} {n}",
                esc(name)
            );
        }
    }
    head!(
        "meshsim_proxy_no_healthy_upstream_total",
        "counter",
        "Requests with no endpoint to pick."
    );
    for (name, c) in clusters {
        let _ = writeln!(
            o,
            "meshsim_proxy_no_healthy_upstream_total{{cluster=\"{}\"}} {}",
            esc(name),
            c.metrics.no_healthy
        );
    }
    head!("meshsim_proxy_faults_total", "counter", "Injected faults.");
    for (name, c) in clusters {
        for k in ["delay", "abort"] {
            let n = c.metrics.faults.get(k).copied().unwrap_or(0);
            let _ = writeln!(
                o,
                "meshsim_proxy_faults_total{{cluster=\"{}\",kind=\"{k}\"}} {n}",
                esc(name)
            );
        }
    }
    head!(
        "meshsim_proxy_ejections_total",
        "counter",
        "Outlier ejections enforced, by reason."
    );
    for (name, c) in clusters {
        for (r, n) in c.ejections_by_reason() {
            let _ = writeln!(
                o,
                "meshsim_proxy_ejections_total{{cluster=\"{}\",reason=\"{r}\"}} {n}",
                esc(name)
            );
        }
    }
    head!("meshsim_proxy_ejected_hosts", "gauge", "Hosts ejected now.");
    for (name, c) in clusters {
        let n = c.outlier.as_ref().map_or(0, |d| d.ejected_count());
        let _ = writeln!(
            o,
            "meshsim_proxy_ejected_hosts{{cluster=\"{}\"}} {n}",
            esc(name)
        );
    }
    head!(
        "meshsim_proxy_retry_budget_remaining",
        "gauge",
        "Retries the budget allows now."
    );
    for (name, c) in clusters {
        if let Some(b) = c.budget.balance(now, c.active_requests, c.active_retries) {
            let _ = writeln!(
                o,
                "meshsim_proxy_retry_budget_remaining{{cluster=\"{}\"}} {b}",
                esc(name)
            );
        }
    }
    head!(
        "meshsim_proxy_discovery_version",
        "gauge",
        "Endpoint-set version applied."
    );
    for (name, c) in clusters {
        let _ = writeln!(
            o,
            "meshsim_proxy_discovery_version{{cluster=\"{}\"}} {}",
            esc(name),
            c.version
        );
    }
    for (metric, kind, help) in [
        (
            "meshsim_proxy_endpoint_active_requests",
            "gauge",
            "Attempts in flight per endpoint.",
        ),
        (
            "meshsim_proxy_endpoint_requests_total",
            "counter",
            "Attempts sent per endpoint.",
        ),
        (
            "meshsim_proxy_endpoint_errors_total",
            "counter",
            "Failed attempts per endpoint.",
        ),
        (
            "meshsim_proxy_endpoint_healthy",
            "gauge",
            "1 if the balancer counts the endpoint healthy.",
        ),
        (
            "meshsim_proxy_endpoint_ejections_total",
            "counter",
            "Outlier ejections per endpoint.",
        ),
    ] {
        head!(metric, kind, help);
        for (name, c) in clusters {
            for (id, e) in &c.endpoints {
                let v = match metric {
                    "meshsim_proxy_endpoint_active_requests" => e.active,
                    "meshsim_proxy_endpoint_requests_total" => e.requests,
                    "meshsim_proxy_endpoint_errors_total" => e.errors,
                    "meshsim_proxy_endpoint_ejections_total" => e.ejections,
                    _ => {
                        let h = c.lb.hosts();
                        u64::from(h.index_of(*id).is_some_and(|i| h.get(i).is_healthy()))
                    }
                };
                let _ = writeln!(
                    o,
                    "{metric}{{cluster=\"{}\",endpoint=\"{}\"}} {v}",
                    esc(name),
                    e.addr
                );
            }
        }
    }
    o
}
