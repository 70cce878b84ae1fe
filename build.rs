//! Records the git revision meshsim is built from, for meta.json.
//! Outside a git checkout (a source tarball) the revision is left empty.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
    println!("cargo:rerun-if-env-changed=MESHSIM_GIT_REVISION");
    let rev = std::env::var("MESHSIM_GIT_REVISION").ok().or_else(|| {
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
    });
    println!(
        "cargo:rustc-env=MESHSIM_GIT_REVISION={}",
        rev.unwrap_or_default()
    );
    // The compiler's version, for `meshsim bench` figures.
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned());
    println!(
        "cargo:rustc-env=MESHSIM_RUSTC_VERSION={}",
        version.unwrap_or_default()
    );
}
