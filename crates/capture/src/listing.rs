//! [`InputList`]: the capture files that input arguments (files, directories, `-`) name, each
//! once, with what was skipped and why.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::pcap::Magic;
use crate::pcapng::SHB;
use crate::{ReadError, ReadErrorKind};

/// File names that mark a capture (compared case-insensitively). In a directory, a file so
/// named is always read (a damaged one is an error); any other file is read when its first
/// bytes are those of a capture.
pub const CAPTURE_EXTENSIONS: &[&str] = &[
    ".pcap",
    ".pcapng",
    ".cap",
    ".pcap.gz",
    ".pcapng.gz",
    ".cap.gz",
];

/// The input name that means standard input.
pub const STDIN: &str = "-";

/// Deepest directory nesting expanded.
const MAX_DEPTH: usize = 64;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Why a file found in a directory was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// Its first bytes are not those of a pcap or pcapng file (or a gzip of one).
    NotACapture,
    /// It holds no byte.
    Empty,
    /// A FIFO, socket or device found in a directory (read only when named directly).
    NotARegularFile,
    /// Its first bytes could not be read.
    Unreadable,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SkipReason::NotACapture => "not a capture",
            SkipReason::Empty => "empty",
            SkipReason::NotARegularFile => "not a regular file",
            SkipReason::Unreadable => "unreadable",
        })
    }
}

/// Identity of a file: device and inode (the same file through any name or symlink).
pub type FileId = (u64, u64);

/// The capture inputs that arguments name, in order, each file once.
#[derive(Debug, Default)]
pub struct InputList {
    /// Files to read: given files as given, directories expanded (sorted by path), `-` for
    /// standard input.
    pub files: Vec<PathBuf>,
    /// Per file of `files`, its identity where it could be read (not for `-`).
    pub ids: Vec<Option<FileId>>,
    /// Files found in directories and not read.
    pub skipped: Vec<(PathBuf, SkipReason)>,
    /// Inputs that reached a file already listed: (this name, the name kept). Read once.
    pub duplicates: Vec<(PathBuf, PathBuf)>,
    /// Directories that hold no capture file.
    pub empty_dirs: Vec<PathBuf>,
    /// Directories that could not be listed.
    pub errors: Vec<ReadError>,
}

/// The identity of `path` (symlinks followed), if it exists.
pub fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt as _;
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The identity of the file behind standard input, if it is one.
pub fn stdin_id() -> Option<FileId> {
    use std::os::fd::AsFd as _;
    use std::os::unix::fs::MetadataExt as _;
    let fd = io::stdin().as_fd().try_clone_to_owned().ok()?;
    let m = File::from(fd).metadata().ok()?;
    Some((m.dev(), m.ino()))
}

/// Whether `path` names a stream that can be read only once, front to back: `-` (standard
/// input), a FIFO, a character device or a socket.
pub fn is_stream(path: &Path) -> bool {
    if path == Path::new(STDIN) {
        return true;
    }
    fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

fn is_capture_name(p: &Path) -> bool {
    let Some(name) = p.file_name() else {
        return false;
    };
    let name = name.to_string_lossy().to_ascii_lowercase();
    CAPTURE_EXTENSIONS.iter().any(|ext| name.ends_with(ext))
}

/// Reads up to `buf.len()` bytes; fewer only at the end of the input.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn is_capture_magic(m: &[u8]) -> bool {
    match m.first_chunk::<4>() {
        Some(&w) => Magic::detect(w).is_some() || u32::from_le_bytes(w) == SHB,
        None => false,
    }
}

/// Whether the regular file at `path` starts like a capture (pcap in either byte order, with
/// micro- or nanosecond timestamps, pcapng, or a gzip stream of one of them).
pub fn sniff(path: &Path) -> Result<(), SkipReason> {
    let mut f = File::open(path).map_err(|_| SkipReason::Unreadable)?;
    let mut head = [0u8; 4];
    let n = read_up_to(&mut f, &mut head).map_err(|_| SkipReason::Unreadable)?;
    if n == 0 {
        return Err(SkipReason::Empty);
    }
    if head[..n].starts_with(&GZIP_MAGIC) {
        let f = File::open(path).map_err(|_| SkipReason::Unreadable)?;
        // The gzip header and the first deflate block: a bounded read.
        let mut z = MultiGzDecoder::new(f.take(1 << 20));
        let mut inner = [0u8; 4];
        return match read_up_to(&mut z, &mut inner) {
            Ok(4) if is_capture_magic(&inner) => Ok(()),
            _ => Err(SkipReason::NotACapture),
        };
    }
    if is_capture_magic(&head[..n]) {
        Ok(())
    } else {
        Err(SkipReason::NotACapture)
    }
}

/// Walks `dir` (recursively), listing the files to read and the files skipped.
fn walk(
    dir: &Path,
    depth: usize,
    seen: &mut HashSet<PathBuf>,
    list: &mut InputList,
) -> Vec<PathBuf> {
    let err = |e| ReadError::new(dir, 0, ReadErrorKind::Io(e));
    let mut found = Vec::new();
    // Guard against symlink loops.
    match fs::canonicalize(dir) {
        Ok(c) => {
            if !seen.insert(c) {
                return found;
            }
        }
        Err(e) => {
            list.errors.push(err(e));
            return found;
        }
    }
    let listing = match fs::read_dir(dir) {
        Ok(l) => l,
        Err(e) => {
            list.errors.push(err(e));
            return found;
        }
    };
    let mut paths = Vec::new();
    for item in listing {
        match item {
            Ok(i) => paths.push(i.path()),
            Err(e) => list.errors.push(err(e)),
        }
    }
    paths.sort();
    for path in paths {
        let meta = fs::metadata(&path);
        if meta.as_ref().is_ok_and(fs::Metadata::is_dir) {
            if depth < MAX_DEPTH {
                found.extend(walk(&path, depth + 1, seen, list));
            }
            continue;
        }
        let verdict = match meta {
            Err(_) => Err(SkipReason::Unreadable),
            Ok(m) if !m.is_file() => Err(SkipReason::NotARegularFile),
            // A file named as a capture is read: if it is damaged, that is an error to report.
            Ok(_) if is_capture_name(&path) => Ok(()),
            Ok(_) => sniff(&path),
        };
        match verdict {
            Ok(()) => found.push(path),
            Err(why) => list.skipped.push((path, why)),
        }
    }
    found
}

impl InputList {
    /// Lists the inputs: a directory is expanded recursively, sorted by path, to every file
    /// named as a capture ([`CAPTURE_EXTENSIONS`]) or whose content starts like one; a file
    /// or stream given directly is taken as it is (errors come when it is read). A file
    /// reached twice (through a symlink, a second name, a file and its directory) is listed
    /// once.
    pub fn list(inputs: &[PathBuf]) -> InputList {
        let mut list = InputList::default();
        let mut first_name: HashMap<FileId, PathBuf> = HashMap::new();
        for input in inputs {
            let found = if input.as_path() != Path::new(STDIN) && input.is_dir() {
                let found = walk(input, 0, &mut HashSet::new(), &mut list);
                if found.is_empty() {
                    list.empty_dirs.push(input.clone());
                }
                found
            } else {
                vec![input.clone()]
            };
            for path in found {
                let id = if path.as_path() == Path::new(STDIN) {
                    None
                } else {
                    file_id(&path)
                };
                if let Some(id) = id {
                    if let Some(kept) = first_name.get(&id) {
                        list.duplicates.push((path, kept.clone()));
                        continue;
                    }
                    first_name.insert(id, path.clone());
                }
                list.files.push(path);
                list.ids.push(id);
            }
        }
        list
    }

    /// Skipped files counted by reason, most frequent first (for one summary line).
    pub fn skipped_by_reason(&self) -> Vec<(SkipReason, usize)> {
        let mut counts: HashMap<SkipReason, usize> = HashMap::new();
        for (_, why) in &self.skipped {
            *counts.entry(*why).or_default() += 1;
        }
        let mut v: Vec<_> = counts.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }
}
