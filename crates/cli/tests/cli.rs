//! The binary's own surface: subcommands, version, usage errors. (Having an integration test
//! here also makes `cargo test --workspace` build the binary that the end-to-end tests in
//! `tests/` run.)
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::process::Command;

fn burstwatch(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_burstwatch"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn help_lists_the_subcommands() {
    let out = burstwatch(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for sub in ["analyze", "simulate", "eval"] {
        assert!(text.contains(sub), "{sub} missing from --help:\n{text}");
    }
}

#[test]
fn version_and_usage_errors() {
    let out = burstwatch(&["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("burstwatch "));
    assert_eq!(burstwatch(&["no-such-command"]).status.code(), Some(2));
    assert_eq!(burstwatch(&[]).status.code(), Some(2));
}
