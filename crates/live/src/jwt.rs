//! JWT validation at the mesh's entry, as Envoy's `jwt_authn` filter and
//! Istio's `RequestAuthentication` do it: a bearer token in
//! `Authorization`, signed RS256 or ES256 with a key from a local JWKS file,
//! whose `iss` is the configured issuer, whose `aud` names one of the
//! configured audiences, and whose `exp` (required) and `nbf` (if present)
//! hold within a clock skew (default 60 s, Envoy's). A failure is answered
//! 401 with a `WWW-Authenticate: Bearer` header and counted by reason.
//!
//! Keys are chosen by the token's `kid` when it has one, else every key of
//! the token's algorithm is tried. Expiry is checked against
//! [`crate::clock::Clock::unix_secs`], the crate's one wall-clock reader.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

/// The `[jwt]` table of a proxy configuration.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The `iss` every token must carry.
    pub issuer: String,
    /// Accepted `aud` values; empty accepts any audience.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// A JWKS file (RFC 7517 JSON) with the issuer's public keys.
    pub jwks: std::path::PathBuf,
    /// Tolerance on `exp` and `nbf`, seconds (default 60).
    #[serde(default = "sixty")]
    pub clock_skew_secs: u64,
}

fn sixty() -> u64 {
    60
}

/// Why a request's token was refused (a metric label each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwtFailure {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Not three base64url parts of JSON, or a claim of the wrong type.
    Malformed,
    /// An algorithm other than RS256 or ES256, or the key's own.
    Algorithm,
    /// No key with the token's `kid` (or algorithm).
    UnknownKey,
    /// The signature does not verify.
    BadSignature,
    /// `exp` is missing or in the past.
    Expired,
    /// `nbf` is in the future.
    NotYetValid,
    /// `iss` is not the configured issuer.
    Issuer,
    /// `aud` names none of the configured audiences.
    Audience,
}

impl JwtFailure {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            JwtFailure::Missing => "missing",
            JwtFailure::Malformed => "malformed",
            JwtFailure::Algorithm => "algorithm",
            JwtFailure::UnknownKey => "unknown_key",
            JwtFailure::BadSignature => "bad_signature",
            JwtFailure::Expired => "expired",
            JwtFailure::NotYetValid => "not_yet_valid",
            JwtFailure::Issuer => "issuer",
            JwtFailure::Audience => "audience",
        }
    }

    /// The message sent with the 401 (Envoy's wording where it has one).
    pub fn message(self) -> &'static str {
        match self {
            JwtFailure::Missing => "Jwt is missing",
            JwtFailure::Expired => "Jwt is expired",
            JwtFailure::NotYetValid => "Jwt not yet valid",
            JwtFailure::Issuer => "Jwt issuer is not configured",
            JwtFailure::Audience => "Audiences in Jwt are not allowed",
            JwtFailure::BadSignature => "Jwt verification fails",
            JwtFailure::UnknownKey => "Jwks doesn't have key to match kid or alg from Jwt",
            JwtFailure::Algorithm => "Jwt algorithm is not allowed",
            JwtFailure::Malformed => "Jwt is not in the form of Header.Payload.Signature",
        }
    }
}

struct Key {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

/// A loaded validator.
pub struct JwtValidator {
    config: JwtConfig,
    keys: Vec<Key>,
}

impl std::fmt::Debug for JwtValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtValidator")
            .field("config", &self.config)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl JwtValidator {
    /// Reads the JWKS file named in `config`.
    pub fn load(config: &JwtConfig) -> Result<JwtValidator, String> {
        let text = std::fs::read_to_string(&config.jwks)
            .map_err(|e| format!("jwt.jwks {}: {e}", config.jwks.display()))?;
        JwtValidator::from_jwks(config, &text)
            .map_err(|e| format!("jwt.jwks {}: {e}", config.jwks.display()))
    }

    /// A validator from the JWKS text.
    pub fn from_jwks(config: &JwtConfig, jwks: &str) -> Result<JwtValidator, String> {
        let set: JwkSet = serde_json::from_str(jwks)
            .map_err(|e| format!("expected a JWKS ({{\"keys\": [...]}}): {e}"))?;
        let mut keys = Vec::new();
        for (i, jwk) in set.keys.iter().enumerate() {
            let alg = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                    Algorithm::ES256
                }
                _ => {
                    return Err(format!(
                        "keys[{i}]: only RSA (RS256) and EC P-256 (ES256) keys are supported"
                    ))
                }
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("keys[{i}]: {e}"))?;
            keys.push(Key {
                kid: jwk.common.key_id.clone(),
                alg,
                key,
            });
        }
        if keys.is_empty() {
            return Err("no keys".into());
        }
        Ok(JwtValidator {
            config: config.clone(),
            keys,
        })
    }

    /// Checks a request's `Authorization` header value at wall time `now`
    /// (Unix seconds); returns the verified claims.
    pub fn check(
        &self,
        authorization: Option<&str>,
        now: u64,
    ) -> Result<serde_json::Value, JwtFailure> {
        let token = authorization
            .and_then(|h| {
                let (scheme, rest) = h.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(JwtFailure::Missing)?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtFailure::Malformed)?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(JwtFailure::Algorithm);
        }
        let candidates: Vec<&Key> = self
            .keys
            .iter()
            .filter(|k| match (&header.kid, &k.kid) {
                (Some(want), Some(have)) => want == have,
                (Some(_), None) => false,
                (None, _) => true,
            })
            .collect();
        if candidates.is_empty() {
            return Err(JwtFailure::UnknownKey);
        }
        if !candidates.iter().any(|k| k.alg == header.alg) {
            return Err(JwtFailure::Algorithm);
        }
        let mut v = Validation::new(header.alg);
        // Time is checked below against the crate's clock; iss and aud here.
        v.validate_exp = false;
        v.validate_nbf = false;
        v.required_spec_claims.clear();
        v.set_issuer(&[&self.config.issuer]);
        if self.config.audiences.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(&self.config.audiences);
        }
        let mut last = JwtFailure::BadSignature;
        for k in candidates.iter().filter(|k| k.alg == header.alg) {
            match jsonwebtoken::decode::<serde_json::Value>(token, &k.key, &v) {
                Ok(data) => return self.check_times(data.claims, now),
                Err(e) => {
                    use jsonwebtoken::errors::ErrorKind as K;
                    last = match e.kind() {
                        K::InvalidSignature => JwtFailure::BadSignature,
                        K::InvalidIssuer => JwtFailure::Issuer,
                        K::InvalidAudience => JwtFailure::Audience,
                        K::InvalidAlgorithm => JwtFailure::Algorithm,
                        K::MissingRequiredClaim(c) if c == "iss" => JwtFailure::Issuer,
                        K::MissingRequiredClaim(c) if c == "aud" => JwtFailure::Audience,
                        _ => JwtFailure::Malformed,
                    };
                    if last != JwtFailure::BadSignature {
                        // The signature held; the claims are wrong.
                        return Err(last);
                    }
                }
            }
        }
        Err(last)
    }

    fn check_times(
        &self,
        claims: serde_json::Value,
        now: u64,
    ) -> Result<serde_json::Value, JwtFailure> {
        let skew = self.config.clock_skew_secs;
        let num = |name: &str| -> Result<Option<u64>, JwtFailure> {
            match claims.get(name) {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                    .map(Some)
                    .ok_or(JwtFailure::Malformed),
            }
        };
        match num("exp")? {
            Some(exp) if exp.saturating_add(skew) > now => {}
            _ => return Err(JwtFailure::Expired),
        }
        if let Some(nbf) = num("nbf")? {
            if nbf > now.saturating_add(skew) {
                return Err(JwtFailure::NotYetValid);
            }
        }
        Ok(claims)
    }
}

/// A new ES256 signing key: its PKCS#8 PEM and its public JWK (with `kid`).
pub fn es256_keypair(kid: &str) -> Result<(String, serde_json::Value), String> {
    use base64::Engine as _;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| format!("generating an ES256 key: {e}"))?;
    // The uncompressed point: 0x04, then x and y, 32 bytes each.
    let raw = key.public_key_raw();
    if raw.len() != 65 || raw[0] != 4 {
        return Err("unexpected P-256 public key encoding".into());
    }
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwk = serde_json::json!({
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
        "x": b64(&raw[1..33]), "y": b64(&raw[33..65]),
    });
    Ok((key.serialize_pem(), jwk))
}

/// Signs `claims` with a PEM private key: ES256 for an EC key, RS256 for
/// an RSA key (PKCS#8 or PKCS#1 PEM).
pub fn sign(
    claims: &serde_json::Value,
    key_pem: &str,
    kid: Option<&str>,
) -> Result<String, String> {
    let (alg, key) = match jsonwebtoken::EncodingKey::from_ec_pem(key_pem.as_bytes()) {
        Ok(k) => (Algorithm::ES256, k),
        Err(_) => (
            Algorithm::RS256,
            jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.as_bytes())
                .map_err(|e| format!("expected an EC P-256 or RSA private key in PEM: {e}"))?,
        ),
    };
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key).map_err(|e| format!("signing: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;
    const RSA_KEY: &str = include_str!("../tests/fixtures/jwt-rs256-key.pem");
    const RSA_JWKS: &str = include_str!("../tests/fixtures/jwt-rs256-jwks.json");

    fn config() -> JwtConfig {
        JwtConfig {
            issuer: "https://issuer.test".into(),
            audiences: vec!["api".into()],
            jwks: "unused".into(),
            clock_skew_secs: 60,
        }
    }

    fn claims(exp: i64) -> serde_json::Value {
        serde_json::json!({ "iss": "https://issuer.test", "aud": "api", "sub": "u", "exp": NOW as i64 + exp })
    }

    /// A validator over one ES256 key ("ec-1") and the RSA fixture ("rsa-1").
    fn setup() -> (JwtValidator, String) {
        let (pem, jwk) = es256_keypair("ec-1").unwrap();
        let mut set: serde_json::Value = serde_json::from_str(RSA_JWKS).unwrap();
        set["keys"].as_array_mut().unwrap().push(jwk);
        (
            JwtValidator::from_jwks(&config(), &set.to_string()).unwrap(),
            pem,
        )
    }

    fn bearer(t: &str) -> String {
        format!("Bearer {t}")
    }

    #[test]
    fn valid_tokens_of_both_algorithms_pass() {
        let (v, ec) = setup();
        let t = sign(&claims(300), &ec, Some("ec-1")).unwrap();
        assert_eq!(v.check(Some(&bearer(&t)), NOW).unwrap()["sub"], "u");
        let t = sign(&claims(300), RSA_KEY, Some("rsa-1")).unwrap();
        assert!(v.check(Some(&bearer(&t)), NOW).is_ok());
        // Without a kid, keys of the token's algorithm are tried.
        let t = sign(&claims(300), RSA_KEY, None).unwrap();
        assert!(v.check(Some(&bearer(&t)), NOW).is_ok());
    }

    #[test]
    fn each_failure_has_its_reason() {
        let (v, ec) = setup();
        let check = |t: &str| v.check(Some(&bearer(t)), NOW).unwrap_err();
        assert_eq!(v.check(None, NOW).unwrap_err(), JwtFailure::Missing);
        assert_eq!(
            v.check(Some("Basic abc"), NOW).unwrap_err(),
            JwtFailure::Missing
        );
        assert_eq!(check("a.b.c"), JwtFailure::Malformed);
        // Expired beyond the skew, and within it.
        let t = sign(&claims(-61), &ec, Some("ec-1")).unwrap();
        assert_eq!(check(&t), JwtFailure::Expired);
        let t = sign(&claims(-59), &ec, Some("ec-1")).unwrap();
        assert!(v.check(Some(&bearer(&t)), NOW).is_ok());
        let mut c = claims(300);
        c["nbf"] = serde_json::json!(NOW + 120);
        assert_eq!(
            check(&sign(&c, &ec, Some("ec-1")).unwrap()),
            JwtFailure::NotYetValid
        );
        let mut c = claims(300);
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            check(&sign(&c, &ec, Some("ec-1")).unwrap()),
            JwtFailure::Expired
        );
        let mut c = claims(300);
        c["iss"] = "https://other.test".into();
        assert_eq!(
            check(&sign(&c, &ec, Some("ec-1")).unwrap()),
            JwtFailure::Issuer
        );
        let mut c = claims(300);
        c["aud"] = "billing".into();
        assert_eq!(
            check(&sign(&c, &ec, Some("ec-1")).unwrap()),
            JwtFailure::Audience
        );
        // Signed by another key under a known kid.
        let (other, _) = es256_keypair("ec-1").unwrap();
        let t = sign(&claims(300), &other, Some("ec-1")).unwrap();
        assert_eq!(check(&t), JwtFailure::BadSignature);
        let t = sign(&claims(300), &ec, Some("nope")).unwrap();
        assert_eq!(check(&t), JwtFailure::UnknownKey);
        // An ES256 token naming the RSA key.
        let t = sign(&claims(300), &ec, Some("rsa-1")).unwrap();
        assert_eq!(check(&t), JwtFailure::Algorithm);
    }

    #[test]
    fn bad_jwks_is_refused_with_the_reason() {
        assert!(JwtValidator::from_jwks(&config(), "{}").is_err());
        let e = JwtValidator::from_jwks(&config(), r#"{"keys": []}"#).unwrap_err();
        assert!(e.contains("no keys"), "{e}");
    }
}
