//! `burstwatch completions` and `burstwatch man`: shell completion scripts and manual pages,
//! generated from the clap definitions the binary parses with, so they always match it. The
//! Debian package (`deploy/deb/build.sh`) installs what these write.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use roff::{bold, roman, Roff};

use crate::examples;

/// Arguments of `burstwatch completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `burstwatch man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// The command whose page to write (`analyze`: burstwatch-analyze(1)); without it,
    /// burstwatch(1).
    #[arg(value_name = "COMMAND", conflicts_with = "dir")]
    pub command: Option<String>,
    /// Write every page instead (burstwatch.1 and burstwatch-COMMAND.1 for each command) into
    /// this directory (created if need be).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Write the completion script of `args.shell` to standard output.
pub fn completions(args: &CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(
        args.shell,
        &mut examples::command(),
        "burstwatch",
        &mut script,
    );
    write_stdout(&script)
}

/// Write one manual page to standard output, or every page into `--dir`.
pub fn man(args: &ManArgs) -> anyhow::Result<ExitCode> {
    let pages = pages()?;
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for (name, page) in &pages {
            let path = dir.join(format!("{name}.1"));
            std::fs::write(&path, page)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let wanted = match &args.command {
        Some(c) => format!("burstwatch-{c}"),
        None => "burstwatch".to_owned(),
    };
    let Some((_, page)) = pages.iter().find(|(name, _)| *name == wanted) else {
        let known: Vec<&str> = pages
            .iter()
            .filter_map(|(n, _)| n.strip_prefix("burstwatch-"))
            .collect();
        anyhow::bail!(
            "no command {:?}: one of {}",
            args.command.as_deref().unwrap_or_default(),
            known.join(", ")
        );
    };
    write_stdout(page)
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // A reader that stopped early (`| head`) is not an error worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("burstwatch: error: cannot write to standard output: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Every page: (name without the section, roff text); burstwatch first, then each command.
fn pages() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    // The definitions without the examples (the pages set them apart, unfilled), and without
    // `help`, which needs no page.
    let mut top = <crate::Cli as clap::CommandFactory>::command().disable_help_subcommand(true);
    top.build();
    let subs: Vec<clap::Command> = top
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let mut pages = vec![("burstwatch".to_owned(), page(&top, "", &subs)?)];
    for sub in &subs {
        let name = sub.get_name().to_owned();
        pages.push((format!("burstwatch-{name}"), page(sub, &name, &[])?));
    }
    Ok(pages)
}

/// One page: clap_mangen's sections, then the notes after the options (eval's matching rules),
/// the examples, and the related pages, each line kept as written.
fn page(cmd: &clap::Command, name: &str, subs: &[clap::Command]) -> anyhow::Result<Vec<u8>> {
    let notes = cmd.get_after_help().map(ToString::to_string);
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone().after_help(None::<&str>))
        .source(format!("burstwatch {}", env!("CARGO_PKG_VERSION")))
        .manual("burstwatch manual")
        .render(&mut out)
        .context("cannot render the manual page")?;
    let mut roff = Roff::new();
    if let Some(notes) = notes {
        roff.control("SH", ["NOTES"]);
        unfilled(&mut roff, notes.lines());
    }
    if let Some(text) = examples::of(name) {
        roff.control("SH", ["EXAMPLES"]);
        for line in text.lines() {
            match line.strip_prefix('#') {
                Some(comment) => {
                    roff.control("PP", []).text([roman(comment.trim())]);
                }
                None => {
                    roff.control("RS", ["4"]);
                    unfilled(&mut roff, [line]);
                    roff.control("RE", []);
                }
            }
        }
    }
    roff.control("SH", ["SEE ALSO"]);
    let related: Vec<String> = if name.is_empty() {
        subs.iter()
            .map(|s| format!("burstwatch-{}(1)", s.get_name()))
            .collect()
    } else {
        vec!["burstwatch(1)".to_owned()]
    };
    roff.text([roman(related.join(", "))]);
    roff.control("PP", []).text([
        roman(
            "The configuration, every key with its default (as the Debian package installs it): ",
        ),
        bold("/etc/burstwatch/burstwatch.toml"),
    ]);
    out.extend_from_slice(roff.to_roff().as_bytes());
    Ok(out)
}

/// Lines as written (no filling or adjusting).
fn unfilled<'a>(roff: &mut Roff, lines: impl IntoIterator<Item = &'a str>) {
    roff.control("nf", []);
    for line in lines {
        roff.text([roman(line)]);
    }
    roff.control("fi", []);
}
