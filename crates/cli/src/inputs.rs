//! Input arguments to capture paths: files and directories as given, glob patterns expanded.
//! (The [`burstwatch_capture::Archive`] then orders the files by their first timestamp.)

use std::path::PathBuf;

use anyhow::Context as _;

/// Expands the inputs. A path that exists is taken literally, even if its name contains glob
/// characters; otherwise a name with `*`, `?` or `[` is a glob pattern (`**` matches any
/// depth), which must match something. Other names pass through, so that a missing file is
/// reported as an input error like any other unreadable file.
pub fn expand(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::with_capacity(inputs.len());
    for input in inputs {
        let pattern = input.to_str().filter(|s| s.contains(['*', '?', '[']));
        match pattern {
            Some(p) if !input.exists() => {
                let paths = glob::glob(p).with_context(|| format!("bad glob pattern {p}"))?;
                let before = out.len();
                for entry in paths {
                    out.push(entry.with_context(|| format!("while expanding {p}"))?);
                }
                anyhow::ensure!(out.len() > before, "no file matches {p}");
            }
            _ => out.push(input.clone()),
        }
    }
    Ok(out)
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
            expand(&[p("*.pcap")]).unwrap(),
            vec![p("a.pcap"), p("b.pcap"), p("odd[1].pcap")]
        );
        assert_eq!(expand(&[p("**/d.pcap")]).unwrap(), vec![p("sub/d.pcap")]);
        // An existing name with glob characters is itself.
        assert_eq!(expand(&[p("odd[1].pcap")]).unwrap(), vec![p("odd[1].pcap")]);
        assert_eq!(
            expand(&[p("sub"), p("missing.pcap")]).unwrap(),
            vec![p("sub"), p("missing.pcap")]
        );
        assert!(expand(&[p("*.pcapng")])
            .unwrap_err()
            .to_string()
            .contains("no file matches"));
    }
}
