//! The proxy's local rate limit (429) and adaptive concurrency limit (503).

use crate::common::*;
use meshsim_core::Nanos;
use meshsim_live::proxy::{Proxy, ProxyConfig};

fn config(backend: std::net::SocketAddr, extra: &str) -> ProxyConfig {
    let text = format!("[[clusters]]\nname = \"api\"\nendpoints = [\"{backend}\"]\n{extra}\n");
    ProxyConfig::from_toml(&text, "t.toml").expect("config")
}

#[tokio::test]
async fn the_rate_limit_answers_429_when_the_bucket_is_empty() {
    let b = backends(&[Nanos::ZERO]).await;
    // Five tokens, one more per 10 s: ten quick requests, five refused.
    let p = Proxy::start(config(
        b[0].addr,
        "rate_limit = { max_tokens = 5, tokens_per_fill = 1, fill_interval = \"10s\" }",
    ))
    .await
    .expect("proxy");
    let mut codes = Vec::new();
    for _ in 0..10 {
        codes.push(get(p.addr, "/").await.0);
    }
    assert_eq!(codes, [200, 200, 200, 200, 200, 429, 429, 429, 429, 429]);
    let (_, m) = get(p.admin_addr, "/metrics").await;
    assert_eq!(
        metric(
            &m,
            "meshsim_proxy_limited_total{cluster=\"api\",limit=\"rate\"}"
        ),
        5.0
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_limit_refuses_requests_over_it() {
    let b = backends(&[Nanos::from_millis(300)]).await;
    // Netflix AIMD starting (and floored) at 2 requests in flight.
    let p = Proxy::start(config(
        b[0].addr,
        "concurrency_limit = { kind = \"aimd\", initial_limit = 2, min_limit = 2 }",
    ))
    .await
    .expect("proxy");
    let addr = p.addr;
    let calls: Vec<_> = (0..4)
        .map(|_| tokio::spawn(async move { get(addr, "/").await.0 }))
        .collect();
    let mut codes = Vec::new();
    for c in calls {
        codes.push(c.await.expect("request task"));
    }
    codes.sort_unstable();
    // Four at once against a limit of 2: two served, two refused at once.
    assert_eq!(codes, [200, 200, 503, 503]);
    let (_, m) = get(p.admin_addr, "/metrics").await;
    assert_eq!(
        metric(
            &m,
            "meshsim_proxy_limited_total{cluster=\"api\",limit=\"concurrency\"}"
        ),
        2.0
    );
    assert!(
        m.contains("meshsim_proxy_concurrency_limit{cluster=\"api\"}"),
        "{m}"
    );
    p.stop().await;
}

#[test]
fn bad_limits_are_refused_with_the_field_named() {
    let e = ProxyConfig::from_toml(
        "[[clusters]]\nname = \"a\"\nendpoints = [\"127.0.0.1:1\"]\nrate_limit = { max_tokens = 0 }\n",
        "x.toml",
    )
    .unwrap_err();
    assert!(e.to_string().contains("rate_limit"), "{e}");
}
