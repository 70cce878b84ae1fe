//! Mutual TLS between sidecars: a throwaway mesh CA, workload certificates
//! with SPIFFE identities, rotation, and the rustls configurations of both
//! ends.
//!
//! A mesh's identities are SPIFFE IDs in the certificate's URI SAN,
//! `spiffe://meshsim.local/ns/default/sa/SERVICE`, as Istio issues them.
//! The CA is generated once per run ([`MeshCa::generate`], or
//! `meshsim certs`) and written as two PEM files; every sidecar is given
//! both and issues its own short-lived workload certificate from them at
//! start and again on every rotation. That stands in for Istio's agent
//! sending a CSR to istiod: the cryptography on the wire is the same, the
//! CA's key is simply local. Certificates are ECDSA P-256 with SHA-256,
//! Istio's default key type.
//!
//! The receiving sidecar requires a client certificate that chains to the
//! mesh CA (rustls' WebPKI client verifier: signature, validity period,
//! key usage) and reads the peer's SPIFFE ID from it for authorization.
//! The calling sidecar checks the server's chain the same way and, instead
//! of a DNS name, that its SPIFFE ID is one the cluster expects (Envoy's
//! `match_typed_subject_alt_names` on a URI SAN).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// The trust domain of every meshsim identity.
pub const TRUST_DOMAIN: &str = "meshsim.local";

/// A TLS setup problem, with what was expected.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(pub String);

fn err(what: &str, e: impl std::fmt::Display) -> TlsError {
    TlsError(format!("{what}: {e}"))
}

/// The crypto provider every meshsim TLS endpoint uses (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The SPIFFE ID of a service's workloads.
pub fn spiffe_id(service: &str) -> String {
    meshsim_core::authz::spiffe_id(service)
}

/// Accepts a SPIFFE ID, or a bare service account name that becomes one.
pub fn identity_of(s: &str) -> Result<String, TlsError> {
    let id = if s.contains("://") {
        s.to_owned()
    } else {
        spiffe_id(s)
    };
    if !id.starts_with("spiffe://") || id.len() <= "spiffe://".len() || id.contains(' ') {
        return Err(TlsError(format!(
            "identity {s:?}: expected spiffe://TRUST_DOMAIN/PATH or a service account name"
        )));
    }
    Ok(id)
}

/// The mesh's certificate authority: a self-signed CA certificate and its key.
#[derive(Clone)]
pub struct MeshCa {
    cert_pem: String,
    key_pem: String,
    cert_der: CertificateDer<'static>,
}

impl std::fmt::Debug for MeshCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshCa").finish_non_exhaustive()
    }
}

/// The CA's parameters: the same every time, so that an [`Issuer`] can be
/// rebuilt from the key alone (the subject and key usages are all it needs).
fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(DnType::OrganizationName, "meshsim");
    p.distinguished_name
        .push(DnType::CommonName, "meshsim mesh CA");
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

fn offset(t: SystemTime) -> time::OffsetDateTime {
    time::OffsetDateTime::from(t)
}

/// A workload's certificate chain and key.
#[derive(Clone)]
pub struct Issued {
    /// Leaf first (the CA is not sent: peers have it as their root).
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key (PKCS#8).
    pub key: Arc<PrivateKeyDer<'static>>,
    /// The leaf in PEM.
    pub cert_pem: String,
    /// The key in PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued").finish_non_exhaustive()
    }
}

impl MeshCa {
    /// A new CA valid from an hour ago for `valid_for`.
    pub fn generate(now: SystemTime, valid_for: Duration) -> Result<MeshCa, TlsError> {
        let key = KeyPair::generate().map_err(|e| err("generating the CA key", e))?;
        let mut p = ca_params();
        p.not_before = offset(now - Duration::from_secs(3600));
        p.not_after = offset(now + valid_for);
        let cert = p
            .self_signed(&key)
            .map_err(|e| err("signing the CA certificate", e))?;
        Ok(MeshCa {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
        })
    }

    /// A CA from its PEM certificate and key (as [`MeshCa::cert_pem`] and
    /// [`MeshCa::key_pem`] wrote them).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<MeshCa, TlsError> {
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| err("CA certificate: expected a PEM CERTIFICATE", e))?;
        KeyPair::from_pem(key_pem).map_err(|e| err("CA key: expected a PEM PRIVATE KEY", e))?;
        Ok(MeshCa {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            cert_der,
        })
    }

    /// Reads a CA from two PEM files.
    pub fn load(cert: &std::path::Path, key: &std::path::Path) -> Result<MeshCa, TlsError> {
        let read = |p: &std::path::Path| {
            std::fs::read_to_string(p).map_err(|e| TlsError(format!("{}: {e}", p.display())))
        };
        let (c, k) = (read(cert)?, read(key)?);
        MeshCa::from_pem(&c, &k).map_err(|e| TlsError(format!("{}: {}", cert.display(), e.0)))
    }

    /// The CA certificate in PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA key in PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The CA certificate.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// A root store holding this CA alone.
    pub fn roots(&self) -> Result<Arc<RootCertStore>, TlsError> {
        let mut r = RootCertStore::empty();
        r.add(self.cert_der.clone())
            .map_err(|e| err("the CA certificate as a trust root", e))?;
        Ok(Arc::new(r))
    }

    /// Issues a workload certificate for `identity` (a SPIFFE ID), valid
    /// from `not_before` to `not_after`, usable as client and server.
    pub fn issue(
        &self,
        identity: &str,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<Issued, TlsError> {
        let ca_key = KeyPair::from_pem(&self.key_pem).map_err(|e| err("CA key", e))?;
        let issuer = Issuer::new(ca_params(), ca_key);
        let key = KeyPair::generate().map_err(|e| err("generating a workload key", e))?;
        let mut p = CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name
            .push(DnType::OrganizationName, "meshsim");
        let uri = identity
            .to_owned()
            .try_into()
            .map_err(|e| err(&format!("identity {identity:?} as a URI SAN"), e))?;
        p.subject_alt_names = vec![SanType::URI(uri)];
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        p.use_authority_key_identifier_extension = true;
        p.not_before = offset(not_before);
        p.not_after = offset(not_after);
        let cert = p
            .signed_by(&key, &issuer)
            .map_err(|e| err("signing a workload certificate", e))?;
        let key_der =
            PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| err("the workload key", e))?;
        Ok(Issued {
            chain: vec![cert.der().clone()],
            key: Arc::new(key_der),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The SPIFFE ID (first `spiffe://` URI SAN) of a DER certificate.
pub fn spiffe_of(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, x) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let san = x.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|n| match n {
        x509_parser::extensions::GeneralName::URI(u) if u.starts_with("spiffe://") => {
            Some((*u).to_owned())
        }
        _ => None,
    })
}

/// The serial number of a DER certificate, in hex (to tell rotations apart).
pub fn serial_of(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, x) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    Some(x.raw_serial_as_string())
}

/// A workload's current certificate, swapped on rotation. New handshakes
/// take the newest; connections already open keep theirs.
#[derive(Debug)]
pub struct CertStore {
    current: RwLock<Arc<CertifiedKey>>,
    serial: RwLock<String>,
    rotations: AtomicU64,
}

fn certified(provider: &CryptoProvider, issued: &Issued) -> Result<Arc<CertifiedKey>, TlsError> {
    let key = provider
        .key_provider
        .load_private_key(issued.key.clone_key())
        .map_err(|e| err("loading the workload key", e))?;
    Ok(Arc::new(CertifiedKey::new(issued.chain.clone(), key)))
}

impl CertStore {
    /// A store holding `issued`.
    pub fn new(issued: &Issued) -> Result<CertStore, TlsError> {
        Ok(CertStore {
            current: RwLock::new(certified(&provider(), issued)?),
            serial: RwLock::new(issued.chain.first().and_then(serial_of).unwrap_or_default()),
            rotations: AtomicU64::new(0),
        })
    }

    /// Installs a new certificate (a rotation).
    pub fn install(&self, issued: &Issued) -> Result<(), TlsError> {
        let ck = certified(&provider(), issued)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = ck;
        *self.serial.write().unwrap_or_else(|e| e.into_inner()) =
            issued.chain.first().and_then(serial_of).unwrap_or_default();
        self.rotations.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Rotations so far.
    pub fn rotations(&self) -> u64 {
        self.rotations.load(Ordering::Relaxed)
    }

    /// The serial number of the current certificate (hex).
    pub fn serial(&self) -> String {
        self.serial
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn get(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

impl ResolvesClientCert for CertStore {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

const ALPN_H2: &[u8] = b"h2";
const ALPN_H1: &[u8] = b"http/1.1";

/// The receiving sidecar's TLS: client certificates required and checked
/// against `roots`; HTTP/2 or HTTP/1.1 by ALPN; session resumption
/// (TLS 1.3 tickets, TLS 1.2 session IDs) on or off.
pub fn server_config(
    roots: Arc<RootCertStore>,
    store: Arc<CertStore>,
    resumption: bool,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let p = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, p.clone())
        .build()
        .map_err(|e| err("client certificate verifier", e))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(p)
        .with_safe_default_protocol_versions()
        .map_err(|e| err("TLS versions", e))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(store);
    cfg.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_H1.to_vec()];
    if resumption {
        cfg.session_storage = rustls::server::ServerSessionMemoryCache::new(4096);
    } else {
        cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        cfg.send_tls13_tickets = 0;
    }
    Ok(Arc::new(cfg))
}

/// The calling sidecar's TLS: its own certificate from `store` (none
/// when `None`, which a mesh listener refuses), the server's chain checked
/// against `roots` and its SPIFFE ID against `expected` (any identity when
/// empty).
pub fn client_config(
    roots: Arc<RootCertStore>,
    store: Option<Arc<CertStore>>,
    expected: Vec<String>,
    resumption: bool,
) -> Result<rustls::ClientConfig, TlsError> {
    let p = provider();
    let verifier = Arc::new(SpiffeVerifier {
        roots,
        expected,
        algs: p.signature_verification_algorithms,
    });
    let builder = rustls::ClientConfig::builder_with_provider(p)
        .with_safe_default_protocol_versions()
        .map_err(|e| err("TLS versions", e))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut cfg = match store {
        Some(s) => builder.with_client_cert_resolver(s),
        None => builder.with_no_client_auth(),
    };
    if !resumption {
        cfg.resumption = rustls::client::Resumption::disabled();
    }
    Ok(cfg)
}

/// Checks a server certificate's chain and its SPIFFE ID (not a DNS name:
/// mesh certificates carry none).
#[derive(Debug)]
struct SpiffeVerifier {
    roots: Arc<RootCertStore>,
    expected: Vec<String>,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for SpiffeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.algs.all,
        )?;
        let id = spiffe_of(end_entity).ok_or(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName,
        ))?;
        if !self.expected.is_empty() && !self.expected.contains(&id) {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            ));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Handshakes a TLS listener completed and refused.
#[derive(Debug, Default)]
pub struct TlsStats {
    full: AtomicU64,
    resumed: AtomicU64,
    failures: std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>>,
}

impl TlsStats {
    /// Counts a completed handshake (`full` or `resumed`).
    pub fn completed(&self, kind: &str) {
        if kind == "resumed" {
            self.resumed.fetch_add(1, Ordering::Relaxed);
        } else {
            self.full.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a refused handshake by reason.
    pub fn failed(&self, reason: &'static str) {
        *self
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(reason)
            .or_default() += 1;
    }

    /// Full handshakes so far.
    pub fn full(&self) -> u64 {
        self.full.load(Ordering::Relaxed)
    }

    /// Resumed handshakes so far.
    pub fn resumed(&self) -> u64 {
        self.resumed.load(Ordering::Relaxed)
    }

    /// Refused handshakes by reason.
    pub fn failures(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Why a TLS handshake with a client failed, as a metric label.
pub fn failure_reason(e: &std::io::Error) -> &'static str {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::NoCertificatesPresented) => "no_client_certificate",
        Some(rustls::Error::InvalidCertificate(c)) => match c {
            rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. } => {
                "expired_certificate"
            }
            rustls::CertificateError::NotValidYet
            | rustls::CertificateError::NotValidYetContext { .. } => "certificate_not_yet_valid",
            // Another CA with the same subject name fails on the signature
            // rather than on the name: either way, not the mesh CA.
            rustls::CertificateError::UnknownIssuer | rustls::CertificateError::BadSignature => {
                "unknown_ca"
            }
            _ => "invalid_certificate",
        },
        Some(rustls::Error::AlertReceived(_)) => "alert_received",
        Some(rustls::Error::InvalidMessage(_))
        | Some(rustls::Error::InappropriateMessage { .. }) => "not_tls",
        Some(_) => "other",
        None if e.kind() == std::io::ErrorKind::UnexpectedEof => "closed",
        None => "io",
    }
}

/// How a completed handshake went: `full` or `resumed`.
pub fn handshake_kind(conn: &rustls::ServerConnection) -> &'static str {
    match conn.handshake_kind() {
        Some(rustls::HandshakeKind::Resumed) => "resumed",
        _ => "full",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_carry_the_identity_and_chain_to_the_ca() {
        let now = crate::clock::Clock::wall_now();
        let ca = MeshCa::generate(now, Duration::from_secs(3600)).unwrap();
        let id = spiffe_id("frontend");
        let leaf = ca.issue(&id, now, now + Duration::from_secs(600)).unwrap();
        assert_eq!(spiffe_of(&leaf.chain[0]).as_deref(), Some(id.as_str()));
        // Round trip through PEM, as files between processes do.
        let again = MeshCa::from_pem(ca.cert_pem(), ca.key_pem()).unwrap();
        let second = again
            .issue(&id, now, now + Duration::from_secs(600))
            .unwrap();
        assert_ne!(serial_of(&leaf.chain[0]), serial_of(&second.chain[0]));
        let parsed = rustls::server::ParsedCertificate::try_from(&second.chain[0]).unwrap();
        let algs = provider().signature_verification_algorithms;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &ca.roots().unwrap(),
            &[],
            UnixTime::now(),
            algs.all,
        )
        .expect("a certificate issued by a CA rebuilt from PEM chains to it");
    }

    #[test]
    fn identities_accept_names_and_refuse_garbage() {
        assert_eq!(
            identity_of("db").unwrap(),
            "spiffe://meshsim.local/ns/default/sa/db"
        );
        assert_eq!(identity_of("spiffe://td/x").unwrap(), "spiffe://td/x");
        assert!(identity_of("http://x").is_err());
        assert!(MeshCa::from_pem("not pem", "nor this").is_err());
    }
}
