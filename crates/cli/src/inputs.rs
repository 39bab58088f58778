//! Input arguments to capture files: glob patterns expanded, directories listed by content
//! ([`burstwatch_capture::InputList`]), each file once; and the check that no output of a
//! command is one of its inputs.
//! (The [`burstwatch_capture::Archive`] then orders the files by their first timestamp.)

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use burstwatch_capture::{file_id, is_stream, stdin_id, FileId, InputList, STDIN};

/// The capture inputs of a run, listed.
#[derive(Debug)]
pub struct Inputs {
    /// The files to read, each once.
    pub list: InputList,
    /// Input problems that leave the run short (a glob that matches nothing, a directory
    /// without a capture file): printed by [`gather`]; the run exits 1.
    pub problems: usize,
}

impl Inputs {
    /// Whether an input is a stream (standard input, a FIFO), which can be read only once.
    pub fn has_streams(&self) -> bool {
        self.list.files.iter().any(|p| is_stream(p))
    }
}

/// Expands the inputs. A path that exists is taken literally, even if its name contains glob
/// characters; otherwise a name with `*`, `?` or `[` is a glob pattern (`**` matches any
/// depth). Other names pass through, so that a missing file is reported as an input error
/// like any other unreadable file. Returns the paths and the patterns that matched nothing.
pub fn expand(inputs: &[PathBuf]) -> anyhow::Result<(Vec<PathBuf>, Vec<String>)> {
    let mut out = Vec::with_capacity(inputs.len());
    let mut unmatched = Vec::new();
    for input in inputs {
        let pattern = input.to_str().filter(|s| s.contains(['*', '?', '[']));
        match pattern {
            Some(p) if !input.exists() => {
                let paths = glob::glob(p).with_context(|| format!("bad glob pattern {p}"))?;
                let before = out.len();
                for entry in paths {
                    out.push(entry.with_context(|| format!("while expanding {p}"))?);
                }
                if out.len() == before {
                    unmatched.push(p.to_string());
                }
            }
            _ => out.push(input.clone()),
        }
    }
    Ok((out, unmatched))
}

/// Expands and lists the inputs, and says what was left out: a glob that matches nothing or
/// a directory without a capture file (errors, counted in [`Inputs::problems`]), files read
/// once though named twice, files skipped in directories (one line; names at debug level).
/// `Err` only for a malformed glob pattern (a usage error).
pub fn gather(inputs: &[PathBuf]) -> anyhow::Result<Inputs> {
    let (paths, unmatched) = expand(inputs)?;
    let list = InputList::list(&paths);
    for p in &unmatched {
        eprintln!("burstwatch: error: no file matches {p}");
    }
    for d in &list.empty_dirs {
        eprintln!(
            "burstwatch: error: {}: no capture file in this directory",
            d.display()
        );
    }
    for (dup, kept) in &list.duplicates {
        tracing::warn!(
            "{} is the same file as {}: read once",
            dup.display(),
            kept.display()
        );
    }
    if !list.skipped.is_empty() {
        let why: Vec<String> = list
            .skipped_by_reason()
            .iter()
            .map(|(reason, n)| format!("{n} {reason}"))
            .collect();
        tracing::warn!(
            "skipped {} file(s) in the input directories: {} (names with BURSTWATCH_LOG=debug)",
            list.skipped.len(),
            why.join(", ")
        );
        for (path, reason) in &list.skipped {
            tracing::debug!("skipped {}: {reason}", path.display());
        }
    }
    Ok(Inputs {
        problems: unmatched.len() + list.empty_dirs.len(),
        list,
    })
}

/// Refuses (a usage error) any output that is one of the inputs: the same file (device and
/// inode, so through symlinks and other names too) as a capture input or one of `others`
/// (alerts, key or configuration files the command reads). Call it before any output is
/// opened, so that nothing is truncated. `outputs` are (flag, path); `-` is standard output.
pub fn refuse_overwriting_inputs(
    inputs: &InputList,
    others: &[&Path],
    outputs: &[(&str, PathBuf)],
) -> anyhow::Result<()> {
    let mut known: Vec<(FileId, &Path)> = Vec::new();
    for (path, id) in inputs.files.iter().zip(&inputs.ids) {
        let id = match path.as_path() == Path::new(STDIN) {
            true => stdin_id(),
            false => *id,
        };
        if let Some(id) = id {
            known.push((id, path));
        }
    }
    for p in others {
        if let Some(id) = file_id(p) {
            known.push((id, p));
        }
    }
    for (flag, out) in outputs {
        if out.as_path() == Path::new("-") {
            continue;
        }
        let Some(id) = file_id(out) else { continue };
        if let Some((_, input)) = known.iter().find(|(k, _)| *k == id) {
            let input = match *input == Path::new(STDIN) {
                true => "standard input".to_string(),
                false => input.display().to_string(),
            };
            anyhow::bail!(
                "{flag} {} is the input {input}: refusing to overwrite an input",
                out.display()
            );
        }
    }
    Ok(())
}

/// Files `analyze --report DIR` writes into DIR.
const REPORT_FILES: &[&str] = &[
    "flows.parquet",
    "bursts.parquet",
    "alerts.parquet",
    "hosts.parquet",
    "endpoints.parquet",
    "timeline.parquet",
    "flows.csv",
    "bursts.csv",
    "alerts.csv",
    "hosts.csv",
    "endpoints.csv",
    "timeline.csv",
    "report.html",
];

/// Every file `analyze` may write, with the flag that names it.
pub fn analyze_outputs(args: &crate::analyze::AnalyzeArgs) -> Vec<(&'static str, PathBuf)> {
    let mut out = Vec::new();
    if let Some(p) = &args.flows {
        out.push(("--flows", PathBuf::from(p)));
    }
    if let Some(p) = &args.alerts {
        out.push(("--alerts", PathBuf::from(p)));
    }
    if let Some(p) = &args.stats {
        out.push(("--stats", p.clone()));
    }
    if let Some(dir) = &args.report.report {
        out.extend(REPORT_FILES.iter().map(|f| ("--report", dir.join(f))));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;

    #[test]
    fn globs_expand_and_literal_names_win() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for name in ["a.pcap", "b.pcap", "c.txt", "odd[1].pcap"] {
            std::fs::write(d.join(name), b"").unwrap();
        }
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/d.pcap"), b"").unwrap();
        let p = |s: &str| d.join(s);
        assert_eq!(
            expand(&[p("*.pcap")]).unwrap().0,
            vec![p("a.pcap"), p("b.pcap"), p("odd[1].pcap")]
        );
        assert_eq!(expand(&[p("**/d.pcap")]).unwrap().0, vec![p("sub/d.pcap")]);
        // An existing name with glob characters is itself.
        assert_eq!(
            expand(&[p("odd[1].pcap")]).unwrap().0,
            vec![p("odd[1].pcap")]
        );
        assert_eq!(
            expand(&[p("sub"), p("missing.pcap")]).unwrap().0,
            vec![p("sub"), p("missing.pcap")]
        );
        let (found, unmatched) = expand(&[p("*.pcapng"), p("c.txt")]).unwrap();
        assert_eq!(found, vec![p("c.txt")]);
        assert_eq!(unmatched, vec![p("*.pcapng").display().to_string()]);
    }

    #[test]
    fn outputs_that_are_inputs_are_refused_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("x.pcap"), b"capture").unwrap();
        std::fs::write(d.join("alerts.jsonl"), b"{}").unwrap();
        std::os::unix::fs::symlink(d.join("x.pcap"), d.join("link")).unwrap();
        let list = InputList::list(&[d.join("x.pcap")]);
        let check = |out: &str| {
            refuse_overwriting_inputs(
                &list,
                &[&d.join("alerts.jsonl")],
                &[("--flows", d.join(out))],
            )
        };
        let e = check("x.pcap").unwrap_err().to_string();
        assert!(e.contains("--flows") && e.contains("x.pcap"), "{e}");
        assert!(check("link").is_err());
        assert!(check("alerts.jsonl").is_err());
        assert!(check("new.jsonl").is_ok());
        assert!(refuse_overwriting_inputs(&list, &[], &[("--flows", "-".into())]).is_ok());
    }
}
