//! The outputs of `analyze` (`--flows`, `--alerts`, `--stats`): each knows which option and
//! path it serves, and fails alone.
//!
//! A write error ends writing to that output only; the other outputs are completed. The error
//! is kept and reported at the end, naming the option, the path and the OS error, and the run
//! exits 1. A closed standard output (EPIPE, `| head`) is such an error like any other.
//!
//! [`open_all`] opens every output before it empties any: a path that cannot be opened (a
//! directory, a missing parent) is refused before an existing file of another output is
//! truncated.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A named output.
pub struct OutFile {
    /// The option that named it (`--flows`).
    option: &'static str,
    /// What it holds (`flow records`).
    what: &'static str,
    /// The path as given (`-`: standard output).
    target: PathBuf,
    /// The writer; `None` once a write failed.
    w: Option<BufWriter<Box<dyn Write>>>,
    /// The first write error.
    err: Option<io::Error>,
    /// Items not written after the error.
    skipped: u64,
}

/// A requested output: the option, what it holds, and the path (`-` for standard output).
pub type Spec<'a> = (&'static str, &'static str, Option<&'a Path>);

fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Open every requested output, then empty the regular files among them. `Err` names the
/// option and path that could not be opened; nothing was truncated then.
pub fn open_all(specs: &[Spec<'_>]) -> anyhow::Result<Vec<Option<OutFile>>> {
    let to_stdout: Vec<&str> = specs
        .iter()
        .filter(|s| s.2.is_some_and(is_stdout))
        .map(|s| s.0)
        .collect();
    if let [first, second, ..] = to_stdout[..] {
        anyhow::bail!("{first} and {second} cannot both write to standard output");
    }
    let mut files = Vec::with_capacity(specs.len());
    for &(option, _, target) in specs {
        files.push(match target {
            Some(path) if !is_stdout(path) => Some(open_file(option, path)?),
            _ => None,
        });
    }
    let mut out = Vec::with_capacity(specs.len());
    for (&(option, what, target), file) in specs.iter().zip(files) {
        let Some(target) = target else {
            out.push(None);
            continue;
        };
        let w: Box<dyn Write> = match file {
            Some(f) => {
                // Regular files only: `/dev/null`, a FIFO or a terminal are written as they are.
                if f.metadata().is_ok_and(|m| m.is_file()) {
                    f.set_len(0).map_err(|e| {
                        anyhow::anyhow!("{option} {}: cannot empty: {e}", target.display())
                    })?;
                }
                Box::new(f)
            }
            None => Box::new(io::stdout().lock()),
        };
        out.push(Some(OutFile {
            option,
            what,
            target: target.to_path_buf(),
            w: Some(BufWriter::with_capacity(1 << 16, w)),
            err: None,
            skipped: 0,
        }));
    }
    Ok(out)
}

/// Open `path` for writing without emptying it yet.
fn open_file(option: &str, path: &Path) -> anyhow::Result<File> {
    if path.is_dir() {
        anyhow::bail!(
            "{option} {}: is a directory; give the path of a file",
            path.display()
        );
    }
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| anyhow::anyhow!("{option} {}: cannot create: {e}", path.display()))
}

impl OutFile {
    /// Write one item (a record, an alert) with `f`; after a failure, count it as skipped.
    pub fn write(&mut self, f: impl FnOnce(&mut BufWriter<Box<dyn Write>>) -> io::Result<()>) {
        let Some(w) = self.w.as_mut() else {
            self.skipped += 1;
            return;
        };
        if let Err(e) = f(w) {
            self.fail(e);
        }
    }

    /// Flush what is buffered; keep the error if that fails.
    pub fn flush(&mut self) {
        if let Some(w) = self.w.as_mut() {
            if let Err(e) = w.flush() {
                self.fail(e);
            }
        }
    }

    fn fail(&mut self, e: io::Error) {
        if self.err.is_none() {
            self.err = Some(e);
        }
        // Dropping the writer would flush again and fail again: let it go without that.
        if let Some(w) = self.w.take() {
            let (_inner, _unwritten) = w.into_parts();
        }
    }

    /// The error message of a failed output, naming the option, the path and the OS error.
    pub fn error(&self) -> Option<String> {
        let e = self.err.as_ref()?;
        let target = if is_stdout(&self.target) {
            "- (standard output)".into()
        } else {
            self.target.display().to_string()
        };
        let mut msg = format!("{} {target}: cannot write {}: {e}", self.option, self.what);
        if self.skipped > 0 {
            msg += &format!(" ({} more not written after the error)", self.skipped);
        }
        Some(msg)
    }
}
