//! Stamps the git commit into the binary (`WEIR_GIT_COMMIT`, "unknown" without git) for
//! the `weir_build_info` metric.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    let commit = std::env::var("WEIR_GIT_COMMIT")
        .ok()
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=WEIR_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-env-changed=WEIR_GIT_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    // Re-stamp when HEAD moves (new commit or checkout); paths work in worktrees too.
    for what in ["HEAD", "logs/HEAD"] {
        if let Some(p) = git(&["rev-parse", "--git-path", what]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
}
