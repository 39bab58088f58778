//! The documentation names only what exists: every file or folder path quoted in
//! ARCHITECTURE.md is a path of the repository (written whole, or as its last parts).

use std::path::Path;

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the repository")
}

/// Every file and folder of the repository, relative, with `/` separators (build output and
/// version control left out).
fn repo_paths(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if matches!(name.as_str(), "target" | ".git") {
                continue;
            }
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            }
            out.push(rel);
        }
    }
    out
}

/// The quoted spans of `text` that look like repository paths: a file name with a known
/// extension, or anything with a `/` made only of path characters.
fn quoted_paths(text: &str) -> Vec<String> {
    const EXT: [&str; 10] = [
        ".rs", ".md", ".toml", ".sh", ".py", ".json", ".yml", ".yaml", ".service", ".txt",
    ];
    let path_char = |c: char| c.is_ascii_alphanumeric() || "_./-".contains(c);
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|t| !t.is_empty() && t.chars().all(path_char) && !t.starts_with(['-', '/', '.']))
        .filter(|t| t.contains('/') || EXT.iter().any(|e| t.ends_with(e)))
        .map(|t| t.trim_end_matches('/').to_owned())
        .collect()
}

#[test]
fn architecture_names_only_paths_that_exist() {
    let root = repo_root();
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let paths = repo_paths(root);
    let quoted = quoted_paths(&text);
    assert!(
        quoted.len() > 40,
        "found only {} quoted paths",
        quoted.len()
    );
    let missing: Vec<&String> = quoted
        .iter()
        .filter(|q| {
            !paths
                .iter()
                .any(|p| p == *q || p.ends_with(&format!("/{q}")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names paths that do not exist: {missing:?}"
    );
}

#[test]
fn the_path_finder_sees_paths_and_skips_code() {
    let found = quoted_paths(
        "`crates/engine` `detect/pair.rs` `daemon/` `Engine::ingest` `--workers N` `x` `a b/c` `SCHEMA.md`",
    );
    assert_eq!(
        found,
        ["crates/engine", "detect/pair.rs", "daemon", "SCHEMA.md"]
    );
}
