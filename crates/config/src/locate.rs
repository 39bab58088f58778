//! Reading the config text with a size bound, and finding the line of a key in it (for errors
//! found after parsing, such as a database that cannot be opened).

use std::io::Read as _;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use crate::ConfigError;

/// The largest config file read (the shipped one is about 10 KiB). A bound, so that a path
/// such as `/dev/zero` is an error instead of a process that reads forever.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// The text of a config file, refused when it is a directory, longer than
/// [`MAX_CONFIG_BYTES`] or not UTF-8. Pipes (`<(...)`, `/dev/stdin`) are read too.
pub fn read_config_text(path: &Path) -> Result<String, ConfigError> {
    let io = |error: std::io::Error| ConfigError::Io {
        path: path.display().to_string(),
        error,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    if file.metadata().map_err(io)?.is_dir() {
        return Err(io(std::io::Error::other("is a directory")));
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(io(std::io::Error::other(format!(
            "longer than {MAX_CONFIG_BYTES} bytes: not a config file"
        ))));
    }
    String::from_utf8(bytes)
        .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

/// The 1-based line of the dotted `key` (such as `daemon.flows_file`) in TOML `text`: the line
/// of its value, or `None` when the key is not in the text (a default) or the text does not
/// parse.
pub fn key_line(text: &str, key: &str) -> Option<usize> {
    let root = DeTable::parse(text).ok()?;
    let mut table: &DeTable<'_> = root.get_ref();
    let mut parts = key.split('.').peekable();
    while let Some(part) = parts.next() {
        let (_, value) = table.iter().find(|(k, _)| k.get_ref().as_ref() == part)?;
        if parts.peek().is_none() {
            let offset = value.span().start.min(text.len());
            return Some(
                text.as_bytes()[..offset]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
                    + 1,
            );
        }
        match value.get_ref() {
            DeValue::Table(t) => table = t,
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;

    #[test]
    fn keys_are_found_on_their_line() {
        let text = "# c\n[daemon]\ninterfaces = [\"eth1\"]\n\nflows_file = \"f\"\n[enrich]\nasn_database = \"a\"\n";
        assert_eq!(key_line(text, "daemon.flows_file"), Some(5));
        assert_eq!(key_line(text, "daemon.interfaces"), Some(3));
        assert_eq!(key_line(text, "enrich.asn_database"), Some(7));
        assert_eq!(key_line(text, "daemon.state_file"), None);
        assert_eq!(key_line("[daemon\n", "daemon.x"), None);
    }

    #[test]
    fn endless_or_odd_files_are_refused_quickly() {
        let e = read_config_text(Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().contains("longer than"), "{e}");
        let e = read_config_text(Path::new("/")).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
    }
}
