//! Records the git revision meshsim is built from, for meta.json and the
//! benchmark figures. A build from a tree whose sources differ from that
//! revision (modified or new files under the paths meshsim is built from)
//! carries a `-dirty` suffix, so a figure never names a revision that
//! does not hold the code that measured it. Outside a git checkout (a
//! source tarball) the revision is left empty.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
    println!("cargo:rerun-if-env-changed=MESHSIM_GIT_REVISION");
    // What the binary is built from (`include_str!` reads scenarios and
    // benches): a change there reruns this script to recheck cleanliness.
    const SOURCES: [&str; 7] = [
        "src",
        "crates",
        "scenarios",
        "benches",
        "build.rs",
        "Cargo.toml",
        "Cargo.lock",
    ];
    for path in SOURCES {
        println!("cargo:rerun-if-changed={path}");
    }
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
    };
    let rev = std::env::var("MESHSIM_GIT_REVISION").ok().or_else(|| {
        let head = git(&["rev-parse", "--short=12", "HEAD"])?;
        let mut status = vec!["status", "--porcelain", "--"];
        status.extend(SOURCES);
        let dirty = git(&status).is_some_and(|s| !s.is_empty());
        Some(if dirty { format!("{head}-dirty") } else { head })
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
