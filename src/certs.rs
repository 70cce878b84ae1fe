//! `meshsim certs` and `meshsim token`: the throwaway mesh CA, workload
//! certificates and JWTs that live mode's security features use.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use meshsim_live::clock::Clock;
use meshsim_live::tls::{identity_of, MeshCa};

/// Arguments of `meshsim certs`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory to write into (created if missing; existing files with the
    /// same names are replaced).
    #[arg(long, default_value = "certs")]
    out: PathBuf,
    /// Also issue a workload certificate for this identity (a service
    /// account name or a spiffe:// ID); repeatable. Writes NAME.pem,
    /// NAME-key.pem and NAME-bundle.pem (certificate then key, as HAProxy
    /// and nginx take it).
    #[arg(long = "issue", value_name = "IDENTITY")]
    issue: Vec<String>,
    /// Lifetime of the CA and of the certificates issued.
    #[arg(long, default_value = "30d", value_parser = parse_duration)]
    valid: Duration,
    /// Also write an ES256 JWT signing key (jwt-key.pem) and its JWKS
    /// (jwks.json) with this key id.
    #[arg(long, value_name = "KID")]
    jwt_key: Option<String>,
    /// Reuse the CA already in --out (ca.pem, ca-key.pem) instead of making one.
    #[arg(long)]
    reuse_ca: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a duration such as 30d, 12h, 90m or 3600s"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{s:?}: unit must be s, m, h or d")),
    };
    Ok(Duration::from_secs(secs))
}

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<()> {
    let p = dir.join(name);
    std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))
}

/// The file stem of an identity: its last path segment.
fn stem(identity: &str) -> String {
    identity
        .rsplit('/')
        .next()
        .unwrap_or(identity)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let ids = args
        .issue
        .iter()
        .map(|i| identity_of(i).map_err(|e| anyhow::anyhow!("--issue {i:?}: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let now = Clock::wall_now();
    let ca = if args.reuse_ca {
        MeshCa::load(&args.out.join("ca.pem"), &args.out.join("ca-key.pem"))?
    } else {
        let ca = MeshCa::generate(now, args.valid)?;
        write(&args.out, "ca.pem", ca.cert_pem())?;
        write(&args.out, "ca-key.pem", ca.key_pem())?;
        println!("{}: the mesh CA (ca.pem, ca-key.pem)", args.out.display());
        ca
    };
    for id in &ids {
        let leaf = ca.issue(id, now - Duration::from_secs(60), now + args.valid)?;
        let s = stem(id);
        write(&args.out, &format!("{s}.pem"), &leaf.cert_pem)?;
        write(&args.out, &format!("{s}-key.pem"), &leaf.key_pem)?;
        write(
            &args.out,
            &format!("{s}-bundle.pem"),
            &format!("{}{}", leaf.cert_pem, leaf.key_pem),
        )?;
        println!(
            "{}: {id} ({s}.pem, {s}-key.pem, {s}-bundle.pem)",
            args.out.display()
        );
    }
    if let Some(kid) = &args.jwt_key {
        let (pem, jwk) = meshsim_live::jwt::es256_keypair(kid).map_err(anyhow::Error::msg)?;
        write(&args.out, "jwt-key.pem", &pem)?;
        write(
            &args.out,
            "jwks.json",
            &serde_json::to_string_pretty(&serde_json::json!({ "keys": [jwk] }))?,
        )?;
        println!(
            "{}: ES256 JWT key {kid:?} (jwt-key.pem, jwks.json)",
            args.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `meshsim token`.
#[derive(clap::Args, Debug)]
pub struct TokenArgs {
    /// The signing key (PEM): EC P-256 signs ES256, RSA signs RS256.
    #[arg(long)]
    key: PathBuf,
    /// The `kid` header (the key id in the JWKS).
    #[arg(long)]
    kid: Option<String>,
    /// The `iss` claim.
    #[arg(long)]
    issuer: String,
    /// The `aud` claim (repeatable).
    #[arg(long = "audience")]
    audiences: Vec<String>,
    /// The `sub` claim.
    #[arg(long, default_value = "meshsim")]
    subject: String,
    /// Lifetime: `exp` is now plus this.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    ttl: Duration,
}

pub fn token(args: &TokenArgs) -> anyhow::Result<ExitCode> {
    let pem = std::fs::read_to_string(&args.key)
        .with_context(|| format!("reading {}", args.key.display()))?;
    let now = Clock::unix_secs();
    let aud = match args.audiences.as_slice() {
        [] => serde_json::Value::Null,
        [one] => serde_json::json!(one),
        many => serde_json::json!(many),
    };
    let mut claims = serde_json::json!({
        "iss": args.issuer, "sub": args.subject, "iat": now, "exp": now + args.ttl.as_secs(),
    });
    if !aud.is_null() {
        claims["aud"] = aud;
    }
    let t = meshsim_live::jwt::sign(&claims, &pem, args.kid.as_deref())
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.key.display()))?;
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}
