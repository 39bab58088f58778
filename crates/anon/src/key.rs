//! Key files: 32 raw bytes or 64 hexadecimal digits.

use std::path::{Path, PathBuf};

/// Length of a Crypto-PAn key in bytes (16-byte AES key + 16-byte pad seed).
pub const KEY_LEN: usize = 32;

/// Why a key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read.
    #[error("{}: {error}", path.display())]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error (in the message, so not also a `source`).
        error: std::io::Error,
    },
    /// The contents are neither 32 raw bytes nor 64 hexadecimal digits.
    #[error("{}key must be 32 raw bytes or 64 hexadecimal digits (found {len} bytes)", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Format {
        /// The key file, when the key came from one.
        path: Option<PathBuf>,
        /// Length of the contents after trimming whitespace.
        len: usize,
    },
}

impl KeyError {
    pub(crate) fn with_path(self, p: &Path) -> KeyError {
        match self {
            KeyError::Format { len, .. } => KeyError::Format {
                path: Some(p.to_path_buf()),
                len,
            },
            e => e,
        }
    }
}

/// The most a key file is read of: a key is 32 raw bytes or 64 hex digits and some white space.
const MAX_KEY_FILE: u64 = 4096;

/// The bytes of a key file: a regular file (after symlinks), read with a size bound, so that a
/// device (`/dev/zero`), FIFO or directory is an error at once rather than a read that never
/// ends. What is beyond the bound is left for [`parse_key`] to refuse by its length.
pub(crate) fn read_key_file(path: &Path) -> Result<Vec<u8>, KeyError> {
    use std::io::Read as _;
    let io = |error: std::io::Error| KeyError::Io {
        path: path.to_path_buf(),
        error,
    };
    // The type first: opening a FIFO for reading would wait for a writer.
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_KEY_FILE)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    Ok(bytes)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parses key material: exactly 32 bytes are taken raw; otherwise, after trimming ASCII
/// whitespace, exactly 64 hexadecimal digits.
pub fn parse_key(bytes: &[u8]) -> Result<[u8; KEY_LEN], KeyError> {
    let mut key = [0u8; KEY_LEN];
    if bytes.len() == KEY_LEN {
        key.copy_from_slice(bytes);
        return Ok(key);
    }
    let text = bytes.trim_ascii();
    let bad = || KeyError::Format {
        path: None,
        len: text.len(),
    };
    if text.len() != 2 * KEY_LEN {
        return Err(bad());
    }
    for (k, pair) in key.iter_mut().zip(text.chunks_exact(2)) {
        let hi = hex_digit(pair[0]).ok_or_else(bad)?;
        let lo = hex_digit(pair[1]).ok_or_else(bad)?;
        *k = hi << 4 | lo;
    }
    Ok(key)
}

/// A key as 64 lowercase hexadecimal digits.
pub fn format_key_hex(key: &[u8; KEY_LEN]) -> String {
    use std::fmt::Write as _;
    key.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
