//! Build metadata for `burstwatch --version` and the exporter's `burstwatch_build_info`:
//!
//! - `BURSTWATCH_COMMIT`: the git commit the binary was built from (short hash, with `-dirty`
//!   when tracked files differed from it), `unknown` outside a git work tree of this project
//!   (a source tarball, a Debian source package). A packager who knows the commit can set
//!   `BURSTWATCH_COMMIT` in the build environment; it is used as given.
//! - `BURSTWATCH_FEATURES`: the enabled cargo features of this package, comma-separated.
//! - `BURSTWATCH_RUSTC`: the compiler's version (`1.95.0`).
//! - `BURSTWATCH_VERSION_LINE`: all of it in the line `--version` prints.
//!
//! The script runs again when HEAD, the branch it points to, or the index changes (a commit,
//! a checkout, `git add`); an edit that is not staged yet shows as `-dirty` from the next one.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=BURSTWATCH_COMMIT");
    let commit = match std::env::var("BURSTWATCH_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_string(),
        _ => git_commit().unwrap_or_else(|| "unknown".to_string()),
    };
    println!("cargo:rustc-env=BURSTWATCH_COMMIT={commit}");

    let features: Vec<String> = std::env::vars()
        .filter_map(|(k, _)| k.strip_prefix("CARGO_FEATURE_").map(str::to_string))
        .filter(|f| f != "DEFAULT")
        .map(|f| f.to_lowercase().replace('_', "-"))
        .collect();
    let mut features = features;
    features.sort();
    println!("cargo:rustc-env=BURSTWATCH_FEATURES={}", features.join(","));

    let rustc = std::env::var_os("RUSTC")
        .and_then(|rustc| Command::new(rustc).arg("--version").output().ok())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=BURSTWATCH_RUSTC={rustc}");

    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let shown = if features.is_empty() {
        "none".to_string()
    } else {
        features.join(",")
    };
    println!(
        "cargo:rustc-env=BURSTWATCH_VERSION_LINE={version} (commit {commit}; features: {shown}; rustc {rustc})"
    );
}

/// `git` with its output as a trimmed string, `None` when it cannot run or fails.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        // Read-only: no index refresh written back (that would itself trigger a rerun).
        .arg("--no-optional-locks")
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}

/// The short commit hash, with `-dirty` when tracked files differ from it; `None` when this
/// package is not in a git work tree of its own project (e.g. a tarball unpacked inside some
/// other repository).
fn git_commit() -> Option<String> {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    if git(&["rev-parse", "--show-prefix"])?.trim_end_matches('/') != "crates/cli" {
        return None;
    }
    // Rerun on a new commit or checkout (HEAD, the branch ref, packed refs) and on staging.
    let mut watch = vec!["HEAD".to_string(), "index".into(), "packed-refs".into()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch.push(branch);
    }
    for p in watch {
        if let Some(path) = git(&["rev-parse", "--git-path", &p]) {
            let path = manifest_dir.join(path);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    let hash = git(&["rev-parse", "--short=12", "HEAD"])?;
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{hash}-dirty") } else { hash })
}
