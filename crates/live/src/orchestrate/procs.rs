//! The processes of a run: starting backends and sidecars, their admin
//! APIs, and the scratch directory their configs and logs live in.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Method, Request};
use meshsim_core::Nanos;

use super::child::{self, addrs_in, ChildError, ChildGuard};
use super::{plan, thirdparty, LiveError, LiveOptions, ProxyKind};
use crate::clock::Clock;
use crate::http::{Body, HttpClient};
use crate::proxy::{ClusterConfig, EndpointSpec, ProxyConfig};

/// A scratch directory for configs and logs, removed when dropped.
pub(crate) struct WorkDir(pub(crate) PathBuf);

impl WorkDir {
    pub(crate) fn new() -> Result<WorkDir, LiveError> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let d = std::env::temp_dir().join(format!("meshsim-live-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&d)
            .map_err(|e| LiveError::Io(format!("creating {}: {e}", d.display())))?;
        Ok(WorkDir(d))
    }
    pub(crate) fn write(&self, name: &str, text: &str) -> Result<PathBuf, LiveError> {
        let p = self.0.join(name);
        std::fs::write(&p, text)
            .map_err(|e| LiveError::Io(format!("writing {}: {e}", p.display())))?;
        Ok(p)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One backend process and what is known of it.
#[derive(Debug)]
pub(crate) struct BackendProc {
    pub(crate) guard: Option<ChildGuard>,
    pub(crate) addr: SocketAddr,
    pub(crate) config: PathBuf,
    /// Where callers reach it: its receiving sidecar's address, or `addr`.
    pub(crate) front: SocketAddr,
    /// Its receiving sidecar (mutual TLS, authorization), if it has one.
    pub(crate) inbound: Option<InboundProc>,
    /// Counters banked from earlier lives (before a crash).
    pub(crate) banked: Counters,
    /// Counters at the end of the warm-up.
    pub(crate) at_start: Counters,
}

/// A receiving sidecar: its process (none while crashed).
#[derive(Debug)]
pub(crate) struct InboundProc {
    pub(crate) guard: Option<ChildGuard>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Counters {
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) busy_s: f64,
}

impl std::ops::Add for Counters {
    type Output = Counters;
    fn add(self, o: Counters) -> Counters {
        Counters {
            requests: self.requests + o.requests,
            errors: self.errors + o.errors,
            busy_s: self.busy_s + o.busy_s,
        }
    }
}

pub(crate) struct Ctx<'a> {
    pub(crate) opts: &'a LiveOptions,
    /// The control plane, when a mesh policy uses discovery.
    pub(crate) control: Option<&'a super::control::Control>,
    pub(crate) dir: &'a WorkDir,
    pub(crate) clock: Clock,
    pub(crate) client: HttpClient,
    /// The zone index of every address callers reach an instance at.
    pub(crate) zones: Mutex<BTreeMap<SocketAddr, u16>>,
}

impl Ctx<'_> {
    pub(crate) fn announce(&self, g: &ChildGuard) {
        if let Some(tx) = &self.opts.started {
            let _ = tx.send((g.name.clone(), g.pid()));
        }
    }

    pub(crate) async fn start_backend(
        &self,
        name: &str,
        config: &Path,
    ) -> Result<(ChildGuard, SocketAddr), LiveError> {
        let log = self.dir.0.join(format!("{}.log", file_name(name)));
        let args = vec![
            "backend".to_owned(),
            "--config".to_owned(),
            config.display().to_string(),
        ];
        let mut g = ChildGuard::spawn(name, &self.opts.program, &args, log, "")?;
        self.announce(&g);
        let line = g.ready_line(&self.clock, self.opts.ready_timeout).await?;
        let addr = addrs_in(&line).first().copied().ok_or_else(|| {
            g.failure(&format!(
                "said {line:?}, expected `backend listening on ADDR`"
            ))
        })?;
        Ok((g, addr))
    }

    /// Writes the mesh CA of the run (once), for sidecars' `[tls]`.
    pub(crate) fn mesh_ca(&self) -> Result<(PathBuf, PathBuf), LiveError> {
        let (cert, key) = (self.dir.0.join("ca.pem"), self.dir.0.join("ca-key.pem"));
        if !cert.exists() {
            let ca = crate::tls::MeshCa::generate(
                Clock::wall_now(),
                std::time::Duration::from_secs(7 * 86_400),
            )
            .map_err(|e| LiveError::Io(format!("mesh CA: {e}")))?;
            self.dir.write("ca-key.pem", ca.key_pem())?;
            self.dir.write("ca.pem", ca.cert_pem())?;
        }
        Ok((cert, key))
    }

    /// A sidecar's `[tls]` with the run's CA, from an edge's `tls`.
    fn proxy_tls(
        &self,
        identity: &str,
        t: &meshsim_scenario::Tls,
        inbound: bool,
    ) -> Result<crate::proxy::config::ProxyTls, LiveError> {
        let (ca_cert, ca_key) = self.mesh_ca()?;
        Ok(crate::proxy::config::ProxyTls {
            ca_cert,
            ca_key,
            identity: identity.to_owned(),
            cert_ttl: Nanos::from_secs(86_400),
            rotate_every: t.rotation,
            resumption: t.resumption > 0.0,
            inbound,
        })
    }

    /// Starts `meshsim proxy` on `cfg`; returns it, its address and its
    /// config file.
    async fn spawn_proxy(
        &self,
        name: &str,
        cfg: &ProxyConfig,
    ) -> Result<(ChildGuard, SocketAddr, PathBuf), LiveError> {
        let stem = file_name(name);
        let log = self.dir.0.join(format!("{stem}.log"));
        let text = toml::to_string(cfg)
            .map_err(|e| LiveError::Io(format!("proxy config for {name}: {e}")))?;
        let path = self.dir.write(&format!("{stem}.toml"), &text)?;
        let args = vec![
            "proxy".to_owned(),
            "--config".to_owned(),
            path.display().to_string(),
        ];
        let mut g = ChildGuard::spawn(name, &self.opts.program, &args, log, "")?;
        self.announce(&g);
        let line = g.ready_line(&self.clock, self.opts.ready_timeout).await?;
        g.admin = addrs_in(&line).get(1).copied();
        let addr = addrs_in(&line).first().copied().ok_or_else(|| {
            g.failure(&format!(
                "said {line:?}, expected `proxy listening on ADDR admin ADDR`"
            ))
        })?;
        Ok((g, addr, path))
    }

    /// Starts the receiving sidecar of backend `b` (at `backend`), on
    /// `listen` (a restart reuses its port), or on any free port.
    pub(crate) async fn start_inbound(
        &self,
        b: &plan::BackendNode,
        spec: &plan::InboundSpec,
        backend: SocketAddr,
        listen: Option<SocketAddr>,
    ) -> Result<(ChildGuard, SocketAddr), LiveError> {
        let mut c: ClusterConfig = serde_json::from_value(serde_json::json!({ "name": b.service }))
            .map_err(|e| LiveError::Io(format!("cluster {}: {e}", b.service)))?;
        c.endpoints = vec![EndpointSpec::Addr(backend)];
        let mut cfg: ProxyConfig = serde_json::from_value(serde_json::json!({ "clusters": [] }))
            .map_err(|e| LiveError::Io(format!("proxy config: {e}")))?;
        cfg.clusters = vec![c];
        cfg.authz = spec.authz.clone();
        if let Some(t) = &spec.tls {
            cfg.tls = Some(self.proxy_tls(&b.service, t, true)?);
        }
        if let Some(l) = listen {
            cfg.listen = l;
        }
        let name = format!("inbound sidecar {}/{}", b.service, b.instance);
        let (g, addr, _) = self.spawn_proxy(&name, &cfg).await?;
        Ok((g, addr))
    }

    pub(crate) async fn start_sidecar(
        &self,
        node: &plan::SidecarNode,
        upstreams: &[(String, Vec<SocketAddr>)],
    ) -> Result<(ChildGuard, SocketAddr), LiveError> {
        let name = format!("sidecar {}", node.name);
        let stem = file_name(&name);
        let log = self.dir.0.join(format!("{stem}.log"));
        match self.opts.proxy {
            ProxyKind::Meshsim => {
                let mut clusters = Vec::new();
                let mut tls = None;
                for (svc, policy) in &node.clusters {
                    // Every field the scenario does not set keeps the
                    // proxy's own default.
                    let mut c: ClusterConfig =
                        serde_json::from_value(serde_json::json!({ "name": svc }))
                            .map_err(|e| LiveError::Io(format!("cluster {svc}: {e}")))?;
                    let addrs: Vec<SocketAddr> = upstreams
                        .iter()
                        .find(|(s, _)| s == svc)
                        .map(|(_, a)| a.clone())
                        .unwrap_or_default();
                    let net = node
                        .net
                        .iter()
                        .find(|(s, _)| s == svc)
                        .map(|(_, n)| n.clone());
                    c.network = net.clone();
                    match (&policy.discovery, self.control) {
                        (Some(d), Some(control)) => {
                            let seed = node.seed ^ meshsim_results::fnv1a(svc.as_bytes());
                            c.discovery = Some(control.view(&node.name, svc, &addrs, d, seed)?);
                        }
                        _ if policy.lb.zone_aware.enabled || net.is_some() => {
                            // Zone-aware routing and network emulation:
                            // endpoints carry their zones, the cluster its
                            // caller's fleet.
                            let zones = self.zones.lock().unwrap_or_else(|e| e.into_inner());
                            c.endpoints = addrs
                                .into_iter()
                                .map(|addr| EndpointSpec::Full {
                                    addr,
                                    weight: 1,
                                    zone: zones.get(&addr).copied().unwrap_or(0),
                                })
                                .collect();
                            if policy.lb.zone_aware.enabled {
                                c.local_fleet = Some(node.fleet.clone());
                            }
                        }
                        _ => c.endpoints = addrs.into_iter().map(EndpointSpec::Addr).collect(),
                    }
                    c.policy = policy.clone();
                    if let Some(t) = policy.tls.filter(|t| t.enabled) {
                        // mTLS to the callee's receiving sidecars, which
                        // must prove the callee's identity.
                        c.tls = Some(crate::proxy::config::UpstreamTls {
                            identities: vec![svc.clone()],
                        });
                        // The sidecar's identity is its service's (the load
                        // generator's is `client`).
                        let identity = node.name.split('/').next().unwrap_or(&node.name);
                        tls = Some(self.proxy_tls(identity, &t, false)?);
                    }
                    clusters.push(c);
                }
                let mut cfg: ProxyConfig =
                    serde_json::from_value(serde_json::json!({ "clusters": [] }))
                        .map_err(|e| LiveError::Io(format!("proxy config: {e}")))?;
                cfg.seed = node.seed;
                cfg.clusters = clusters;
                cfg.tls = tls;
                let (mut g, addr, _) = self.spawn_proxy(&name, &cfg).await?;
                let found: Vec<&str> = node
                    .clusters
                    .iter()
                    .filter(|(_, p)| p.discovery.is_some())
                    .map(|(c, _)| c.as_str())
                    .collect();
                if !found.is_empty() && self.control.is_some() {
                    self.wait_discovered(&mut g, &found).await?;
                }
                Ok((g, addr))
            }
            kind => {
                let (svc, policy) = node
                    .clusters
                    .first()
                    .ok_or_else(|| LiveError::Io(format!("{name} has no upstream")))?;
                let servers = upstreams
                    .iter()
                    .find(|(s, _)| s == svc)
                    .map(|(_, a)| a.clone())
                    .unwrap_or_default();
                let port = child::free_port()
                    .map_err(|e| LiveError::Io(format!("finding a free port: {e}")))?;
                let listen = SocketAddr::from(([127, 0, 0, 1], port));
                let stats = if kind == ProxyKind::Haproxy {
                    thirdparty::StatsSource::HaproxySocket(self.dir.0.join(format!("{stem}.sock")))
                } else {
                    let port = child::free_port()
                        .map_err(|e| LiveError::Io(format!("finding a free port: {e}")))?;
                    thirdparty::StatsSource::NginxStatus(SocketAddr::from(([127, 0, 0, 1], port)))
                };
                let (text, args, program) = if let thirdparty::StatsSource::HaproxySocket(sock) =
                    &stats
                {
                    let text = thirdparty::haproxy_config(listen, &servers, policy, Some(sock));
                    let path = self.dir.0.join(format!("{stem}.cfg"));
                    (
                        text,
                        vec![
                            "-f".to_owned(),
                            path.display().to_string(),
                            "-db".to_owned(),
                        ],
                        "haproxy",
                    )
                } else {
                    let sub = self.dir.0.join(&stem);
                    std::fs::create_dir_all(&sub)
                        .map_err(|e| LiveError::Io(format!("creating {}: {e}", sub.display())))?;
                    let status = match &stats {
                        thirdparty::StatsSource::NginxStatus(a) => Some(*a),
                        thirdparty::StatsSource::HaproxySocket(_) => None,
                    };
                    let text = thirdparty::nginx_config(listen, &servers, policy, &sub, status);
                    let path = self.dir.0.join(format!("{stem}.conf"));
                    let args = vec![
                        "-c".to_owned(),
                        path.display().to_string(),
                        "-p".to_owned(),
                        sub.display().to_string(),
                        "-e".to_owned(),
                        "stderr".to_owned(),
                    ];
                    (text, args, "nginx")
                };
                let file = if kind == ProxyKind::Haproxy {
                    format!("{stem}.cfg")
                } else {
                    format!("{stem}.conf")
                };
                self.dir.write(&file, &text)?;
                let exe = match &self.opts.proxy_program {
                    Some(p) => p.clone(),
                    None => find_program(program).ok_or_else(|| {
                        LiveError::Child(ChildError::Spawn {
                            name: name.clone(),
                            program: program.to_owned(),
                            source: std::io::Error::new(
                                std::io::ErrorKind::NotFound,
                                "not found on PATH or in /usr/sbin",
                            ),
                            hint: format!("; install it with `apt-get install -y {program}`"),
                        })
                    })?,
                };
                let hint = format!("; install it with `apt-get install -y {program}`");
                let mut g = ChildGuard::spawn(&name, &exe, &args, log, &hint)?;
                self.announce(&g);
                self.wait_listening(&mut g, listen).await?;
                g.stats = Some((stats, servers));
                Ok((g, listen))
            }
        }
    }

    /// Waits until the sidecar has fetched every cluster's first endpoint
    /// set (the simulator's views start bootstrapped).
    async fn wait_discovered(&self, g: &mut ChildGuard, found: &[&str]) -> Result<(), LiveError> {
        let Some(admin) = g.admin else {
            return Ok(());
        };
        let until = self.clock.now() + self.opts.ready_timeout;
        loop {
            let cfg = self.admin(admin, Method::GET, "/config", "").await;
            let done = cfg.as_ref().is_ok_and(|v| {
                v["clusters"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .filter(|c| found.iter().any(|f| c["name"].as_str() == Some(f)))
                        .all(|c| c["version"].as_u64() != Some(0))
                })
            });
            if done {
                return Ok(());
            }
            if self.clock.now() >= until {
                return Err(g
                    .failure(&format!(
                        "had no endpoints from the discovery server within {}",
                        self.opts.ready_timeout
                    ))
                    .into());
            }
            self.clock.sleep(Nanos::from_millis(10)).await;
        }
    }

    /// Tells a meshsim sidecar which endpoints of `cluster` are behind a
    /// partition (black-holed); `[]` heals.
    pub(crate) async fn set_blackhole(
        &self,
        sidecar: &str,
        procs: &Mutex<Procs>,
        cluster: &str,
        addrs: &[SocketAddr],
    ) -> Result<(), LiveError> {
        let name = format!("sidecar {sidecar}");
        let admin = lock(procs)
            .sidecars
            .iter()
            .find(|g| g.name == name)
            .and_then(|g| g.admin);
        let Some(admin) = admin else {
            return Err(LiveError::Admin(format!("{name} has no admin API")));
        };
        let body = serde_json::to_string(addrs).unwrap_or_else(|_| "[]".into());
        self.admin(
            admin,
            Method::POST,
            &format!("/admin/clusters/{cluster}/blackhole"),
            &body,
        )
        .await
        .map(|_| ())
        .map_err(LiveError::Admin)
    }

    /// For programs that do not say they listen: connect until they do.
    pub(crate) async fn wait_listening(
        &self,
        g: &mut ChildGuard,
        addr: SocketAddr,
    ) -> Result<(), LiveError> {
        let until = self.clock.now() + self.opts.ready_timeout;
        loop {
            if let Some(s) = g.try_exited() {
                return Err(g
                    .failure(&format!(
                        "exited before it listened ({})",
                        child::describe(s)
                    ))
                    .into());
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(());
            }
            if self.clock.now() >= until {
                return Err(g
                    .failure(&format!(
                        "did not listen on {addr} within {}",
                        self.opts.ready_timeout
                    ))
                    .into());
            }
            self.clock.sleep(Nanos::from_millis(20)).await;
        }
    }

    pub(crate) async fn admin(
        &self,
        addr: SocketAddr,
        method: Method,
        path: &str,
        body: &str,
    ) -> Result<serde_json::Value, String> {
        let req = Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"))
            .body(Body::new(Bytes::from(body.to_owned())))
            .map_err(|e| e.to_string())?;
        let fut = async {
            let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            if !status.is_success() {
                return Err(format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&bytes).trim()
                ));
            }
            serde_json::from_slice(&bytes).map_err(|e| e.to_string())
        };
        self.clock
            .timeout(Nanos::from_secs(5), fut)
            .await
            .unwrap_or_else(|| Err("no answer within 5s".into()))
            .map_err(|e| format!("backend admin {addr}{path}: {e}"))
    }

    /// A sidecar's Prometheus text.
    pub(crate) async fn metrics_text(&self, addr: SocketAddr) -> Result<String, LiveError> {
        self.metrics_text_at(addr, "/metrics")
            .await
            .map_err(|e| LiveError::Admin(format!("sidecar admin {addr}/metrics: {e}")))
    }

    /// The body of `GET http://addr/path`.
    async fn metrics_text_at(&self, addr: SocketAddr, path: &str) -> Result<String, String> {
        let fut = async {
            let req = Request::builder()
                .uri(format!("http://{addr}{path}"))
                .body(Body::default())
                .map_err(|e| e.to_string())?;
            let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>(String::from_utf8_lossy(&bytes).into_owned())
        };
        self.clock
            .timeout(Nanos::from_secs(5), fut)
            .await
            .unwrap_or_else(|| Err("no answer within 5s".into()))
    }

    /// Ejections per endpoint over every meshsim sidecar, and the client
    /// sidecars' retries (the end-to-end retries, as the simulator counts
    /// them).
    pub(crate) async fn mesh_counters(
        &self,
        procs: &Mutex<Procs>,
    ) -> Result<MeshCounters, LiveError> {
        let admins: Vec<(SocketAddr, String)> = lock(procs)
            .sidecars
            .iter()
            .filter_map(|g| g.admin.map(|a| (a, g.name.clone())))
            .collect();
        let third: Vec<(String, thirdparty::StatsSource, Vec<SocketAddr>)> = lock(procs)
            .sidecars
            .iter()
            .filter_map(|g| g.stats.clone().map(|(s, v)| (g.name.clone(), s, v)))
            .collect();
        let mut m = MeshCounters::default();
        for (name, source, servers) in third {
            let c = self.proxy_counters(&name, &source, &servers).await?;
            for (a, d) in &c.down {
                // A server its health checks took down is out of the
                // balancer, as an ejected one is.
                *m.ejections.entry(*a).or_default() += d;
            }
            if is_client_sidecar(&name) {
                m.client_retries += c.retries;
            }
            let e = m.sidecars.entry(name).or_default();
            if matches!(source, thirdparty::StatsSource::HaproxySocket(_)) {
                e.insert("retries".into(), c.retries);
                e.insert("redispatches".into(), c.redispatches);
                e.insert("attempts".into(), c.attempts.values().sum());
                e.insert("health_check_down".into(), c.down.values().sum());
            }
            e.insert("requests".into(), c.requests);
        }
        for (addr, name) in admins {
            let client = is_client_sidecar(&name);
            let text = self.metrics_text(addr).await?;
            let own = m.sidecars.entry(name).or_default();
            for line in text.lines() {
                let value = || {
                    line.rsplit_once(' ')
                        .and_then(|(_, v)| v.trim().parse::<f64>().ok())
                        .unwrap_or(0.0) as u64
                };
                if let Some(rest) = line.strip_prefix("meshsim_proxy_endpoint_ejections_total{") {
                    let ep = rest
                        .split_once("endpoint=\"")
                        .and_then(|(_, r)| r.split_once('"'))
                        .and_then(|(a, _)| a.parse::<SocketAddr>().ok());
                    if let Some(ep) = ep {
                        *m.ejections.entry(ep).or_default() += value();
                    }
                    *own.entry("ejections".into()).or_default() += value();
                } else if line.starts_with("meshsim_proxy_retries_total") {
                    if client {
                        m.client_retries += value();
                    }
                    *own.entry("retries".into()).or_default() += value();
                } else if line.starts_with("meshsim_proxy_endpoint_requests_total") {
                    *own.entry("attempts".into()).or_default() += value();
                } else if line.starts_with("meshsim_proxy_requests_total") {
                    *own.entry("requests".into()).or_default() += value();
                }
            }
        }
        Ok(m)
    }

    /// A third-party sidecar's counters, from its stats socket or page.
    async fn proxy_counters(
        &self,
        name: &str,
        source: &thirdparty::StatsSource,
        servers: &[SocketAddr],
    ) -> Result<thirdparty::ProxyCounters, LiveError> {
        let fail = |e: String| LiveError::Admin(format!("{name} counters: {e}"));
        match source {
            thirdparty::StatsSource::HaproxySocket(path) => {
                let fut = async {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut s = tokio::net::UnixStream::connect(path)
                        .await
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    s.write_all(b"show stat\n")
                        .await
                        .map_err(|e| e.to_string())?;
                    let mut text = String::new();
                    s.read_to_string(&mut text)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok::<_, String>(text)
                };
                let text = self
                    .clock
                    .timeout(Nanos::from_secs(5), fut)
                    .await
                    .unwrap_or_else(|| Err("no answer within 5s".into()))
                    .map_err(fail)?;
                thirdparty::parse_haproxy_stats(&text, servers).map_err(fail)
            }
            thirdparty::StatsSource::NginxStatus(addr) => {
                let text = self.metrics_text_at(*addr, "/").await.map_err(fail)?;
                thirdparty::parse_nginx_status(&text).map_err(fail)
            }
        }
    }

    pub(crate) async fn counters(&self, addr: SocketAddr) -> Result<Counters, LiveError> {
        let v = self
            .admin(addr, Method::GET, "/admin/stats", "")
            .await
            .map_err(LiveError::Admin)?;
        Ok(Counters {
            requests: v["requests"].as_u64().unwrap_or(0),
            errors: v["errors"].as_u64().unwrap_or(0),
            busy_s: v["busy_s"].as_f64().unwrap_or(0.0),
        })
    }

    pub(crate) async fn set_knobs(
        &self,
        addr: SocketAddr,
        knobs: serde_json::Value,
    ) -> Result<(), LiveError> {
        self.admin(addr, Method::POST, "/admin/set", &knobs.to_string())
            .await
            .map(|_| ())
            .map_err(LiveError::Admin)
    }
}

pub(crate) fn file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `program` on `PATH`, or in `/usr/sbin` and `/sbin` (where Debian puts
/// HAProxy and nginx, often not on a user's `PATH`).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Whether a child is a client sidecar (`sidecar client`, or `sidecar
/// client/K` with several clients).
pub(crate) fn is_client_sidecar(name: &str) -> bool {
    name == "sidecar client" || name.starts_with("sidecar client/")
}

/// Counters read from the meshsim sidecars' `/metrics`.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct MeshCounters {
    pub(crate) ejections: BTreeMap<SocketAddr, u64>,
    pub(crate) client_retries: u64,
    /// Per sidecar, its own counters by name (`retries`, `attempts`, …).
    pub(crate) sidecars: BTreeMap<String, BTreeMap<String, u64>>,
}

/// Every process of a run, shared by the fault task and the monitor.
#[derive(Debug, Default)]
pub(crate) struct Procs {
    pub(crate) backends: Vec<BackendProc>,
    pub(crate) sidecars: Vec<ChildGuard>,
    /// Sidecar counters at the end of the warm-up.
    pub(crate) mesh_start: MeshCounters,
}

/// Locks the process table (a panicked holder does not poison it for good).
pub(crate) fn lock(p: &Mutex<Procs>) -> std::sync::MutexGuard<'_, Procs> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}
