//! Clients may speak HTTP/2 with prior knowledge (h2c) to the proxy and the backend.

use std::time::Duration;

use crate::common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

#[tokio::test]
async fn h2c_clients_are_served() {
    let b = backends(&[meshsim_core::Nanos::ZERO]).await;
    let p = proxy(&[b[0].addr], "").await;
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .http2_only(true)
        .build_http();
    for target in [p.addr, b[0].addr] {
        let req = hyper::Request::get(format!("http://{target}/"))
            .body(Full::default())
            .unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(5), client.request(req))
            .await
            .expect("in time")
            .expect("an h2 response");
        assert_eq!(resp.version(), hyper::Version::HTTP_2);
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-meshsim-instance"], "api/0");
        resp.into_body().collect().await.expect("body");
    }
    // HTTP/1.1 still works on the same listener.
    assert_eq!(get(p.addr, "/").await.0, 200);
    p.stop().await;
}
