//! Closed-loop users with think time, as the simulator's: each user thinks
//! before its first request and after every answer.

use crate::common::*;
use meshsim_core::Nanos;
use meshsim_live::load::{ArrivalKind, LoadConfig};
use meshsim_scenario::Dist;

fn closed(addr: std::net::SocketAddr, think: Option<Dist>) -> LoadConfig {
    LoadConfig {
        url: format!("http://{addr}/"),
        arrival: ArrivalKind::Closed,
        connections: 4,
        duration: Nanos::from_secs(1),
        think_time: think,
        ..LoadConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_think_between_requests() {
    let b = backends(&[Nanos::ZERO]).await;
    let think = Dist::Constant {
        value: Nanos::from_millis(100),
    };
    let r = meshsim_live::load::run(&closed(b[0].addr, Some(think)))
        .await
        .expect("load");
    let e2e = &r.tables.summary[0];
    // Each of 4 users thinks 100 ms before each request: at most 10 start
    // in the 1 s run (the first at 100 ms), so at most 40 in all; without
    // think time a closed loop sends thousands. Each user sends at least
    // its first request unless an answer took most of a second.
    assert!((4..=40).contains(&e2e.count), "{e2e:?}");
    assert_eq!(e2e.errors, 0);
    for b in b {
        b.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn think_time_is_checked_before_the_load_starts() {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
    let bad = Dist::Exponential { mean: Nanos::ZERO };
    let e = meshsim_live::load::run(&closed(addr, Some(bad)))
        .await
        .expect_err("invalid distribution")
        .to_string();
    assert!(e.contains("think_time"), "{e}");
    let open = LoadConfig {
        arrival: ArrivalKind::Poisson,
        ..closed(
            addr,
            Some(Dist::Constant {
                value: Nanos::from_millis(1),
            }),
        )
    };
    let e = meshsim_live::load::run(&open)
        .await
        .expect_err("open loop")
        .to_string();
    assert!(e.contains("closed loop"), "{e}");
}
