//! The examples at the end of `burstwatch --help` and of every command's help run as written,
//! one after the other in a scratch directory (the simulate example writes the capture the
//! others read, keygen the key, analyze the alerts that eval and carve read). Two kinds of
//! stand-in are replaced: `/etc/burstwatch/burstwatch.toml` by the shipped configuration with
//! an interface named, and carve's alert id by an id from `alerts.jsonl`. `~/` is a scratch
//! home. The daemon's examples need capture privileges on a configured interface: they are
//! only parsed (the cli crate's unit test parses every example).

use std::path::Path;
use std::process::{Command, Stdio};

use burstwatch_tests::{bin, corpus, repo, run_ok};

/// The commands whose examples run, in this order; "" is `burstwatch` itself.
const RUN: &[&str] = &[
    "simulate",
    "keygen",
    "",
    "analyze",
    "eval",
    "carve",
    "reveal",
    "check-config",
    "completions",
    "man",
];
/// The commands whose examples are only parsed.
// daemon: live capture; cluster: a shared Redis store (tested in `cluster.rs`).
const NOT_RUN: &[&str] = &["daemon", "cluster"];

/// The commands listed by `burstwatch --help`.
fn commands() -> Vec<String> {
    let help = String::from_utf8(run_ok(&["--help"]).stdout).unwrap();
    help.split("\nCommands:\n")
        .nth(1)
        .expect("a Commands section")
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

/// The command lines of the Examples block of `command`'s help.
fn examples(command: &str) -> Vec<String> {
    let args: Vec<&str> = if command.is_empty() {
        vec!["--help"]
    } else {
        vec![command, "--help"]
    };
    let help = String::from_utf8(run_ok(&args).stdout).unwrap();
    let block = help
        .split("\nExamples:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no Examples in the help of {command:?}:\n{help}"));
    let lines: Vec<String> = block
        .lines()
        .map_while(|l| l.strip_prefix("  "))
        .filter(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    assert!(
        !lines.is_empty(),
        "{command:?}: no command line among its examples"
    );
    lines
}

#[test]
fn every_help_example_runs_as_written() {
    let mut listed = commands();
    listed.sort();
    let mut known: Vec<String> = RUN
        .iter()
        .chain(NOT_RUN)
        .filter(|c| !c.is_empty())
        .map(|c| (*c).to_owned())
        .collect();
    known.sort();
    assert_eq!(
        listed, known,
        "a command is neither run nor knowingly skipped here"
    );
    for command in NOT_RUN {
        assert!(!examples(command).is_empty());
    }

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = d.join("home");
    std::fs::create_dir(&home).unwrap();
    // A directory of captures for `analyze captures/`.
    std::fs::create_dir(d.join("captures")).unwrap();
    std::fs::copy(
        corpus().join("traffic/http__bro.org.pcap"),
        d.join("captures/a.pcap"),
    )
    .unwrap();
    // The installed configuration, with the one edit the README asks for.
    let config = d.join("burstwatch.toml");
    let shipped = std::fs::read_to_string(repo().join("config/burstwatch.toml")).unwrap();
    std::fs::write(
        &config,
        shipped.replace("interfaces = []", "interfaces = [\"lo\"]"),
    )
    .unwrap();

    let mut ran = 0;
    for command in RUN {
        for line in examples(command) {
            let line = line.replace("/etc/burstwatch/burstwatch.toml", config.to_str().unwrap());
            let (line, stdout_to) = match line.split_once(" > ") {
                Some((cmd, file)) => (cmd.to_owned(), Some(file.trim().to_owned())),
                None => (line.clone(), None),
            };
            let mut argv = shlex::split(&line).unwrap_or_else(|| panic!("cannot split {line:?}"));
            assert_eq!(argv.remove(0), "burstwatch", "{line}");
            if let Some(i) = argv.iter().position(|a| a == "--alert") {
                argv[i + 1] = first_alert_id(&d.join("alerts.jsonl"));
            }
            let stdout = match &stdout_to {
                Some(file) => {
                    let path = match file.strip_prefix("~/") {
                        Some(rest) => home.join(rest),
                        None => d.join(file),
                    };
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    Stdio::from(std::fs::File::create(&path).unwrap())
                }
                None => Stdio::piped(),
            };
            let out = Command::new(bin())
                .args(&argv)
                .current_dir(d)
                .env("HOME", &home)
                .stdin(Stdio::null())
                .stdout(stdout)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "example failed ({:?}): {line}\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            );
            ran += 1;
        }
    }
    assert!(ran >= 20, "only {ran} examples ran");
    // What the chain of examples produced.
    for made in [
        "capture.pcap",
        "capture.truth.json",
        "background.pcap",
        "case.key",
        "alerts.jsonl",
        "flows.jsonl",
        "pseudonymised.alerts.jsonl",
        "stats.json",
        "eval.json",
        "evidence.pcap",
        "evidence.pcap.manifest.json",
        "burstwatch-analyze.1",
        "man/burstwatch.1",
        "man/burstwatch-daemon.1",
        "home/.local/share/bash-completion/completions/burstwatch",
        "home/.zfunc/_burstwatch",
        "home/.config/fish/completions/burstwatch.fish",
    ] {
        let len = std::fs::metadata(d.join(made))
            .unwrap_or_else(|e| panic!("{made}: {e}"))
            .len();
        assert!(len > 0, "{made} is empty");
    }
    // The subscriber and pair examples name addresses that a simulator change may move: they
    // must run, not find packets.
    for made in ["subscriber.jsonl", "pair.pcap"] {
        assert!(d.join(made).exists(), "{made} not written");
    }
}

fn first_alert_id(alerts: &Path) -> String {
    let text = std::fs::read_to_string(alerts).expect("alerts.jsonl before the carve example");
    let first = text
        .lines()
        .next()
        .expect("the simulate example's capture has alerts");
    let v: serde_json::Value = serde_json::from_str(first).unwrap();
    v["id"].as_str().unwrap().to_owned()
}
