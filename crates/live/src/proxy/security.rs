//! The proxy's security: its workload certificate and rotation, the
//! receiving side's authorization policies, JWT validation, and their
//! counters.
//!
//! Order on an inbound request: mutual TLS (in the accept loop, before any
//! byte of HTTP), then JWT validation (401), then authorization (403,
//! Envoy's `RBAC: access denied`), then routing. A refused request reaches
//! no upstream.
//!
//! Metrics (no `cluster` label):
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `meshsim_proxy_tls_handshakes_total{kind}` | counter | inbound handshakes completed, `full` or `resumed` |
//! | `meshsim_proxy_tls_handshake_failures_total{reason}` | counter | inbound handshakes refused (`no_client_certificate`, `unknown_ca`, `expired_certificate`, ...) |
//! | `meshsim_proxy_tls_rotations_total` | counter | workload certificates replaced |
//! | `meshsim_proxy_authz_denied_total{policy}` | counter | requests denied (403), by deny policy name or `not_allowed` |
//! | `meshsim_proxy_jwt_failures_total{reason}` | counter | requests refused (401) by reason |

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};

use hyper::StatusCode;
use meshsim_core::authz::{self, Verdict};

use super::config::{ProxyConfig, ProxyTls, UpstreamTls};
use crate::http::{self, Body};
use crate::jwt::JwtValidator;
use crate::serve::PeerIdentity;
use crate::tls::{CertStore, Issued, MeshCa, TlsError, TlsStats};

/// A sidecar's identity: the CA, its current certificate, and how to make
/// TLS configurations from them.
#[derive(Debug)]
pub struct TlsRuntime {
    ca: MeshCa,
    roots: Arc<rustls::RootCertStore>,
    /// The current workload certificate.
    pub store: Arc<CertStore>,
    /// The SPIFFE ID.
    pub identity: String,
    /// As configured.
    pub config: ProxyTls,
    /// Inbound handshake counters.
    pub stats: Arc<TlsStats>,
}

impl TlsRuntime {
    /// Loads the CA and issues the first certificate.
    pub fn start(config: &ProxyTls) -> Result<TlsRuntime, TlsError> {
        let ca = MeshCa::load(&config.ca_cert, &config.ca_key)?;
        let identity = crate::tls::identity_of(&config.identity)?;
        let roots = ca.roots()?;
        let first = issue(&ca, &identity, config)?;
        Ok(TlsRuntime {
            store: Arc::new(CertStore::new(&first)?),
            ca,
            roots,
            identity,
            config: config.clone(),
            stats: Arc::new(TlsStats::default()),
        })
    }

    /// Issues and installs a new certificate.
    pub fn rotate(&self) -> Result<(), TlsError> {
        let next = issue(&self.ca, &self.identity, &self.config)?;
        self.store.install(&next)
    }

    /// The client configuration for a cluster.
    pub fn client_config(&self, up: &UpstreamTls) -> Result<rustls::ClientConfig, TlsError> {
        let expected = up
            .identities
            .iter()
            .map(|i| crate::tls::identity_of(i))
            .collect::<Result<Vec<_>, _>>()?;
        crate::tls::client_config(
            self.roots.clone(),
            Some(self.store.clone()),
            expected,
            self.config.resumption,
        )
    }

    /// The listener's TLS (when `inbound`).
    pub fn inbound(&self) -> Result<Option<crate::serve::Inbound>, TlsError> {
        if !self.config.inbound {
            return Ok(None);
        }
        let cfg = crate::tls::server_config(
            self.roots.clone(),
            self.store.clone(),
            self.config.resumption,
        )?;
        Ok(Some(crate::serve::Inbound {
            acceptor: tokio_rustls::TlsAcceptor::from(cfg),
            stats: self.stats.clone(),
        }))
    }
}

/// A certificate valid from a minute ago (peers' clocks may lag) for the
/// configured lifetime.
fn issue(ca: &MeshCa, identity: &str, config: &ProxyTls) -> Result<Issued, TlsError> {
    let now = crate::clock::Clock::wall_now();
    let from = now - std::time::Duration::from_secs(60);
    let until = now + std::time::Duration::from_nanos(config.cert_ttl.0);
    ca.issue(identity, from, until)
}

/// Everything security-related a running proxy holds.
#[derive(Debug, Default)]
pub struct Security {
    /// The mTLS identity, if configured.
    pub tls: Option<TlsRuntime>,
    /// The JWT validator, if configured.
    pub jwt: Option<JwtValidator>,
    authz: Vec<authz::Policy>,
    denied: Mutex<BTreeMap<String, u64>>,
    jwt_failures: Mutex<BTreeMap<&'static str, u64>>,
}

impl Security {
    /// Loads what `config` asks for.
    pub fn start(config: &ProxyConfig) -> Result<Security, String> {
        let tls = match &config.tls {
            Some(t) => Some(TlsRuntime::start(t).map_err(|e| format!("tls: {e}"))?),
            None => None,
        };
        let jwt = match &config.jwt {
            Some(j) => Some(JwtValidator::load(j)?),
            None => None,
        };
        Ok(Security {
            tls,
            jwt,
            authz: config.authz.clone(),
            ..Security::default()
        })
    }

    /// JWT, then authorization, on an inbound request: `Some(response)`
    /// refuses it.
    pub fn check(
        &self,
        req: &hyper::Request<crate::serve::ReqBody>,
    ) -> Option<hyper::Response<Body>> {
        if let Some(v) = &self.jwt {
            let auth = req
                .headers()
                .get(hyper::header::AUTHORIZATION)
                .and_then(|h| h.to_str().ok());
            if let Err(f) = v.check(auth, crate::clock::Clock::unix_secs()) {
                *lock(&self.jwt_failures).entry(f.label()).or_default() += 1;
                let mut r = http::text(StatusCode::UNAUTHORIZED, format!("{}\n", f.message()));
                r.headers_mut().insert(
                    hyper::header::WWW_AUTHENTICATE,
                    hyper::header::HeaderValue::from_static(
                        "Bearer realm=\"meshsim\", error=\"invalid_token\"",
                    ),
                );
                return Some(r);
            }
        }
        if self.authz.is_empty() {
            return None;
        }
        let peer = req.extensions().get::<PeerIdentity>();
        let request = authz::Request {
            principal: peer.and_then(|p| p.0.as_deref()),
            method: req.method().as_str(),
            path: req.uri().path(),
        };
        let label = match authz::evaluate(&self.authz, &request) {
            Verdict::Allow => return None,
            Verdict::DeniedBy(i) => {
                let n = &self.authz[i].name;
                if n.is_empty() {
                    format!("deny[{i}]")
                } else {
                    n.clone()
                }
            }
            Verdict::NotAllowed => "not_allowed".to_owned(),
        };
        *lock(&self.denied).entry(label).or_default() += 1;
        Some(http::text(StatusCode::FORBIDDEN, "RBAC: access denied\n"))
    }

    /// Requests denied by authorization so far, by policy.
    pub fn denied(&self) -> BTreeMap<String, u64> {
        lock(&self.denied).clone()
    }

    /// Requests refused by JWT validation so far, by reason.
    pub fn jwt_failures(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.jwt_failures).clone()
    }

    /// The Prometheus text of the counters above.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let head = |o: &mut String, name: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter");
        };
        if let Some(t) = &self.tls {
            head(
                &mut o,
                "meshsim_proxy_tls_handshakes_total",
                "Inbound mutual-TLS handshakes completed.",
            );
            let _ = writeln!(
                o,
                "meshsim_proxy_tls_handshakes_total{{kind=\"full\"}} {}",
                t.stats.full()
            );
            let _ = writeln!(
                o,
                "meshsim_proxy_tls_handshakes_total{{kind=\"resumed\"}} {}",
                t.stats.resumed()
            );
            head(
                &mut o,
                "meshsim_proxy_tls_handshake_failures_total",
                "Inbound TLS handshakes refused, by reason.",
            );
            for (r, n) in t.stats.failures() {
                let _ = writeln!(
                    o,
                    "meshsim_proxy_tls_handshake_failures_total{{reason=\"{r}\"}} {n}"
                );
            }
            head(
                &mut o,
                "meshsim_proxy_tls_rotations_total",
                "Workload certificates replaced.",
            );
            let _ = writeln!(
                o,
                "meshsim_proxy_tls_rotations_total {}",
                t.store.rotations()
            );
        }
        if !self.authz.is_empty() {
            head(
                &mut o,
                "meshsim_proxy_authz_denied_total",
                "Requests denied by authorization policy (403).",
            );
            for (p, n) in self.denied() {
                let p = p.replace('\\', "\\\\").replace('"', "\\\"");
                let _ = writeln!(o, "meshsim_proxy_authz_denied_total{{policy=\"{p}\"}} {n}");
            }
        }
        if self.jwt.is_some() {
            head(
                &mut o,
                "meshsim_proxy_jwt_failures_total",
                "Requests refused by JWT validation (401), by reason.",
            );
            for (r, n) in self.jwt_failures() {
                let _ = writeln!(o, "meshsim_proxy_jwt_failures_total{{reason=\"{r}\"}} {n}");
            }
        }
        o
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
