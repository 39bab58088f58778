//! The "Examples:" block at the end of `burstwatch --help` and of every command's help (and the
//! EXAMPLES section of the man pages). Each example is a `# what it does` line and the command
//! line. They are real commands: the unit test below parses each with the binary's own
//! definitions, and the end-to-end test `help_examples` runs every one that needs no capture
//! privileges in a scratch directory, in the order simulate, keygen, analyze, eval, carve, …, so
//! that `capture.pcap`, `alerts.jsonl` and `case.key` come from the examples before them.

use clap::CommandFactory as _;

/// `(command, examples)`: "" is `burstwatch` itself.
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "",
        "\
# Alerts in a capture, the way tcpdump -r reads one: a summary and the top alerts
burstwatch -r capture.pcap
# The same through `analyze`, which takes every option; alerts as JSON lines
burstwatch analyze -r capture.pcap --alerts alerts.jsonl
# The help of one command, with its examples
burstwatch analyze --help",
    ),
    (
        "analyze",
        "\
# A summary and the top alerts of a capture on the terminal
burstwatch analyze -r capture.pcap
# Alerts and flow records as JSON lines, subscribers in the CGNAT range and a ULA prefix
burstwatch analyze -r capture.pcap --home-net 100.64.0.0/10 --home-net fd00::/8 --alerts alerts.jsonl --flows flows.jsonl
# A directory of rotated captures (.pcap, .pcapng, .gz) as one stream, HTTPS only, alerts on standard output
burstwatch analyze captures/ --filter 'tcp port 443' --alerts - --quiet
# One subscriber's flows in a time window
burstwatch analyze -r capture.pcap --host 100.80.31.1 --since 2026-01-01T00:02:00Z --until 2026-01-01T00:04:00Z --flows subscriber.jsonl
# Home addresses pseudonymised in every output (key from `burstwatch keygen`)
burstwatch analyze -r capture.pcap --pseudonymize case.key --alerts pseudonymised.alerts.jsonl
# Thresholds from a configuration file, the run's counters as JSON
burstwatch analyze -r capture.pcap --config /etc/burstwatch/burstwatch.toml --stats stats.json --quiet
# Live from tcpdump through a pipe (as root): tcpdump -i eth1 -w - | burstwatch analyze -r -",
    ),
    (
        "simulate",
        "\
# A small capture (about 140 MB) with labelled bursts and beacons; the truth goes to capture.truth.json
burstwatch simulate -o capture.pcap --subscribers 40 --duration 300 --scenario-scale 0.1
# Background traffic only, 100 MiB, for benchmarks
burstwatch simulate -o background.pcap --no-scenarios --size 100M --seed 2",
    ),
    (
        "daemon",
        "\
# In the foreground, as the systemd unit runs it (as root: it keeps only the capture capabilities)
burstwatch daemon --config /etc/burstwatch/burstwatch.toml
# Usually through the packaged unit: systemctl enable --now burstwatch",
    ),
    (
        "cluster",
        "\
# The sensors sharing endpoint prevalence through the store of [cluster] redis_url, their lag, the store's size
burstwatch cluster status --config /etc/burstwatch/burstwatch.toml
# The same as one JSON object
burstwatch cluster status --config /etc/burstwatch/burstwatch.toml --json",
    ),
    (
        "check-config",
        "\
# Validate a configuration: exit 0 (with warnings, e.g. no interface named yet), or 2 naming file, line and key
burstwatch check-config /etc/burstwatch/burstwatch.toml
# On the capture host, before a start: warnings (a missing interface) fail too
burstwatch check-config --strict /etc/burstwatch/burstwatch.toml",
    ),
    (
        "eval",
        "\
# Recall, precision and detection delay of the alerts of a simulated capture
burstwatch eval --truth capture.truth.json --alerts alerts.jsonl
# The numbers as JSON too, with a wider matching window
burstwatch eval --truth capture.truth.json --alerts alerts.jsonl --slack-seconds 10 --json eval.json
# Detection limits as markdown tables (repeat --truth/--alerts in pairs for several runs)
burstwatch eval --sweep --truth capture.truth.json --alerts alerts.jsonl",
    ),
    (
        "carve",
        "\
# The packets of one alert (its id in alerts.jsonl), 30 s either side, into evidence.pcap and its manifest
burstwatch carve -r capture.pcap --alert 3f9c0e4b7d21a8c5 --alerts alerts.jsonl --margin 30 -o evidence.pcap
# The packets between two addresses in a time span
burstwatch carve -r capture.pcap --pair 100.80.31.1,192.0.2.233 --from 2026-01-01T00:02:00Z --to 2026-01-01T00:04:00Z -o pair.pcap",
    ),
    (
        "keygen",
        "\
# A new pseudonymisation key (64 hex digits, file mode 0600)
burstwatch keygen -o case.key",
    ),
    (
        "reveal",
        "\
# The original addresses behind pseudonyms seen in pseudonymised output
burstwatch reveal --key case.key 10.118.3.77 fd52:9c1e::2b",
    ),
    (
        "completions",
        "\
# Bash completion for the current user (the Debian package installs bash, zsh and fish completions)
burstwatch completions bash > ~/.local/share/bash-completion/completions/burstwatch
# Zsh: a file named _burstwatch in a directory of $fpath
burstwatch completions zsh > ~/.zfunc/_burstwatch
# Fish
burstwatch completions fish > ~/.config/fish/completions/burstwatch.fish",
    ),
    (
        "man",
        "\
# The page of analyze, to read without installing it: then man -l burstwatch-analyze.1
burstwatch man analyze > burstwatch-analyze.1
# Every page (burstwatch.1, burstwatch-analyze.1, ...) into a directory
burstwatch man --dir man/",
    ),
];

/// The examples of `command` ("" for burstwatch itself).
pub fn of(command: &str) -> Option<&'static str> {
    EXAMPLES
        .iter()
        .find(|(name, _)| *name == command)
        .map(|(_, text)| *text)
}

/// The binary's clap definition with each command's examples after its help.
pub fn command() -> clap::Command {
    let mut cmd = with_examples(crate::Cli::command(), "");
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    for name in names {
        cmd = cmd.mut_subcommand(&name, |sub| with_examples(sub, &name));
    }
    cmd
}

fn with_examples(cmd: clap::Command, name: &str) -> clap::Command {
    let Some(text) = of(name) else {
        return cmd;
    };
    let block: String = text.lines().map(|l| format!("\n  {l}")).collect();
    let before = cmd
        .get_after_help()
        .map(|h| format!("{h}\n\n"))
        .unwrap_or_default();
    cmd.after_help(format!("{before}Examples:{block}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use super::*;

    #[test]
    fn every_command_has_examples_that_parse_as_that_command() {
        let cmd = command();
        let mut names: Vec<&str> = vec![""];
        names.extend(
            cmd.get_subcommands()
                .map(clap::Command::get_name)
                .filter(|n| *n != "help"),
        );
        for name in names {
            let text = of(name).unwrap_or_else(|| panic!("no examples for {name:?}"));
            let mut lines = 0;
            for line in text.lines().filter(|l| !l.starts_with('#')) {
                lines += 1;
                // A shell redirection is not the command's.
                let line = line.split(" > ").next().unwrap();
                let argv = shlex::split(line).unwrap_or_else(|| panic!("cannot split {line:?}"));
                assert_eq!(argv[0], "burstwatch", "{line}");
                match command().try_get_matches_from(&argv) {
                    // burstwatch's own examples may show any command.
                    Ok(m) if !name.is_empty() => {
                        assert_eq!(m.subcommand_name(), Some(name), "{line}");
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {}
                    Err(e) => panic!("{line}\n{e}"),
                }
            }
            assert!(lines > 0, "{name:?}: no command line among its examples");
        }
    }

    #[test]
    fn examples_end_every_help() {
        let mut cmd = command();
        for sub in ["analyze", "eval", "man"] {
            let help = cmd
                .find_subcommand_mut(sub)
                .unwrap()
                .render_long_help()
                .to_string();
            assert!(help.contains("\nExamples:\n  # "), "{sub}:\n{help}");
        }
        // eval keeps its matching rules before them.
        let eval = cmd
            .find_subcommand_mut("eval")
            .unwrap()
            .render_help()
            .to_string();
        assert!(
            eval.find("Matching rules") < eval.find("Examples:"),
            "{eval}"
        );
    }
}
