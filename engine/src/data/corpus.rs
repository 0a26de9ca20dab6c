//! Text corpora: opened through a read-only memory map, checked, and found by name.
//!
//! A [`Corpus`] never copies the file onto the heap: the tokenisers stream over the mapped bytes,
//! so a 1 GiB corpus costs page cache, not anonymous memory.
//!
//! Named corpora (`alice`, `sherlock`, the seed experiments' texts) are looked up, in order, in
//! `$RECUR_DATA`, `./data` and `../shared/data` (relative to the current directory); see
//! [`locate_named_corpus`].

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use recur_kernels::mmap::{Mmap, advise_sequential, map_file_readonly};
use sha2::{Digest, Sha256};

use super::error::DataError;
use super::hash::Fnv1a64;

/// A text file mapped read-only into memory.
#[derive(Debug)]
pub struct Corpus {
    path: PathBuf,
    map: Mmap,
    fingerprint: CorpusFingerprint,
}

/// What identifies a corpus file's contents cheaply, for cache validation.
///
/// The length, the modification time and a hash of the first and last 64 KiB. Hashing the whole
/// file would make every re-run read it; these three change whenever an editor, `cp` or a
/// download rewrites the file (an edit that keeps the length, the mtime *and* leaves both ends
/// alone is the accepted blind spot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CorpusFingerprint {
    /// File length in bytes.
    pub len: u64,
    /// Modification time in nanoseconds since the Unix epoch (0 if the platform has none).
    pub mtime_ns: u64,
    /// FNV-1a 64 of the first and the last [`FINGERPRINT_EDGE_BYTES`] bytes.
    pub edge_hash: u64,
}

/// How many bytes at each end of a corpus go into [`CorpusFingerprint::edge_hash`].
pub const FINGERPRINT_EDGE_BYTES: usize = 64 * 1024;

impl Corpus {
    /// Opens and maps `path`, rejecting what cannot be a text corpus.
    ///
    /// Checks, in order: the path exists ([`DataError::CorpusNotFound`]), is not a directory
    /// ([`DataError::CorpusIsDirectory`]), is a regular file
    /// ([`DataError::CorpusNotRegularFile`]), can be opened and mapped
    /// ([`DataError::CorpusUnreadable`]), is not empty ([`DataError::CorpusEmpty`]) and holds no
    /// NUL byte ([`DataError::CorpusBinary`]). UTF-8 validity depends on the tokeniser (ASCII-only
    /// mode ignores non-ASCII bytes), so it is checked while tokenising, or by
    /// [`Corpus::check_utf8`].
    pub fn open(path: impl AsRef<Path>) -> Result<Corpus, DataError> {
        let path = path.as_ref().to_path_buf();
        let metadata = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(DataError::CorpusNotFound { path });
            }
            Err(source) => return Err(DataError::CorpusUnreadable { path, source }),
        };
        if metadata.is_dir() {
            return Err(DataError::CorpusIsDirectory { path });
        }
        if !metadata.is_file() {
            return Err(DataError::CorpusNotRegularFile { path });
        }
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(source) => return Err(DataError::CorpusUnreadable { path, source }),
        };
        if metadata.len() == 0 {
            return Err(DataError::CorpusEmpty { path });
        }
        let map = match map_file_readonly(&file) {
            Ok(m) => m,
            Err(source) => return Err(DataError::CorpusUnreadable { path, source }),
        };
        if map.is_empty() {
            // Truncated between the metadata call and the map.
            return Err(DataError::CorpusEmpty { path });
        }
        advise_sequential(&map);
        if let Some(offset) = find_nul(&map) {
            return Err(DataError::CorpusBinary {
                path,
                offset: offset as u64,
            });
        }
        let mtime_ns = metadata
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let fingerprint = CorpusFingerprint {
            len: map.len() as u64,
            mtime_ns,
            edge_hash: edge_hash(&map),
        };
        Ok(Corpus {
            path,
            map,
            fingerprint,
        })
    }

    /// The path the corpus was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole file, as mapped.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// The file length in bytes.
    pub fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// Always false: [`Corpus::open`] rejects empty files.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Length, mtime and edge hash, for cache validation.
    pub fn fingerprint(&self) -> CorpusFingerprint {
        self.fingerprint
    }

    /// Checks that the whole file is UTF-8, reporting the first bad byte's position.
    pub fn check_utf8(&self) -> Result<(), DataError> {
        match std::str::from_utf8(self.bytes()) {
            Ok(_) => Ok(()),
            Err(e) => Err(invalid_utf8_at(&self.path, self.bytes(), e.valid_up_to())),
        }
    }

    /// SHA-256 of the whole file, lower-case hex.
    pub fn sha256_hex(&self) -> String {
        sha256_hex(self.bytes())
    }
}

/// The first NUL byte's offset. `<[u8]>::contains` is memchr-backed, so the scan runs at memory
/// speed; only the chunk that holds a NUL is searched byte by byte.
fn find_nul(bytes: &[u8]) -> Option<usize> {
    const CHUNK: usize = 64 * 1024;
    for (i, chunk) in bytes.chunks(CHUNK).enumerate() {
        if chunk.contains(&0) {
            let within = chunk.iter().position(|&b| b == 0)?;
            return Some(i * CHUNK + within);
        }
    }
    None
}

fn edge_hash(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a64::default();
    let head = &bytes[..bytes.len().min(FINGERPRINT_EDGE_BYTES)];
    let tail = &bytes[bytes.len().saturating_sub(FINGERPRINT_EDGE_BYTES)..];
    h.write(head);
    h.write(tail);
    h.finish()
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// Builds [`DataError::InvalidUtf8`] for the bad byte at `offset` of `bytes`, counting lines
/// (1-based, split on `\n`) and the column in characters (1-based).
pub(crate) fn invalid_utf8_at(path: &Path, bytes: &[u8], offset: usize) -> DataError {
    let before = &bytes[..offset];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    // Everything before `offset` is valid UTF-8, so counting non-continuation bytes counts chars.
    let column = bytes[line_start..offset]
        .iter()
        .filter(|&&b| (b & 0xC0) != 0x80)
        .count() as u64
        + 1;
    DataError::InvalidUtf8 {
        path: path.to_path_buf(),
        offset: offset as u64,
        line,
        column,
    }
}

/// A public-domain corpus recur knows by name: the seed experiments' texts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamedCorpus {
    /// The name used on the command line (`alice`).
    pub name: &'static str,
    /// The file name searched for (`alice.txt`).
    pub file_name: &'static str,
    /// Author and title.
    pub title: &'static str,
    /// Project Gutenberg ebook number.
    pub gutenberg_ebook: u32,
    /// SHA-256 of the file as recur's experiments used it (`../shared/data/SHA256SUMS`).
    pub sha256: &'static str,
}

/// The corpora of the two seed experiments.
pub const NAMED_CORPORA: [NamedCorpus; 2] = [
    NamedCorpus {
        name: "alice",
        file_name: "alice.txt",
        title: "Lewis Carroll, Alice's Adventures in Wonderland",
        gutenberg_ebook: 11,
        sha256: "f17aa0bf7466424a8b357b688678666bad7a0148963ef349016a3098faa6bd1e",
    },
    NamedCorpus {
        name: "sherlock",
        file_name: "sherlock.txt",
        title: "Arthur Conan Doyle, The Adventures of Sherlock Holmes",
        gutenberg_ebook: 1661,
        sha256: "e21895308fe6da6919abc53e2cf77d81f914887897546153cc5d49b2eadefe50",
    },
];

/// The named corpus called `name`, if there is one.
pub fn named_corpus(name: &str) -> Option<&'static NamedCorpus> {
    NAMED_CORPORA.iter().find(|c| c.name == name)
}

/// The directories searched for named corpora, in order: `$RECUR_DATA` (when set and not
/// empty), `./data`, `../shared/data`. The relative ones are relative to the current directory.
///
/// `recur_data` is the value of `$RECUR_DATA`, passed in so tests need not touch the process
/// environment.
pub fn corpus_search_dirs(recur_data: Option<&std::ffi::OsStr>) -> Vec<PathBuf> {
    let mut dirs = Vec::with_capacity(3);
    if let Some(dir) = recur_data.filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(dir));
    }
    dirs.push(PathBuf::from("./data"));
    dirs.push(PathBuf::from("../shared/data"));
    dirs
}

/// Finds `corpus.file_name` in the first of `dirs` that has it as a file.
///
/// # Errors
///
/// [`DataError::NamedCorpusNotFound`], whose message lists the directories searched, where to
/// download the text and its expected SHA-256.
pub fn locate_named_corpus(
    corpus: &'static NamedCorpus,
    dirs: &[PathBuf],
) -> Result<PathBuf, DataError> {
    for dir in dirs {
        let candidate = dir.join(corpus.file_name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    let searched = dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Err(DataError::NamedCorpusNotFound { corpus, searched })
}

/// Whether a named corpus file is the one recur's experiments used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChecksumStatus {
    /// The SHA-256 matches.
    Match,
    /// The file differs (another Gutenberg edition, different line endings, an edit): results
    /// will not match the documented ones, but the file is still usable.
    Mismatch { expected: String, found: String },
}

/// Compares the SHA-256 of `corpus` with `named`'s.
pub fn verify_named_corpus(corpus: &Corpus, named: &NamedCorpus) -> ChecksumStatus {
    let found = corpus.sha256_hex();
    if found == named.sha256 {
        ChecksumStatus::Match
    } else {
        ChecksumStatus::Mismatch {
            expected: named.sha256.to_string(),
            found,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn opens_text_and_fingerprints_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "t.txt", "héllo\nworld\n".as_bytes());
        let c = Corpus::open(&p).unwrap();
        assert_eq!(c.bytes(), "héllo\nworld\n".as_bytes());
        assert_eq!(c.len(), 13);
        assert_eq!(c.fingerprint().len, 13);
        assert!(c.fingerprint().mtime_ns > 0);
        c.check_utf8().unwrap();
    }

    #[test]
    fn rejects_missing_directory_empty_and_binary() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Corpus::open(dir.path().join("nope.txt")),
            Err(DataError::CorpusNotFound { .. })
        ));
        assert!(matches!(
            Corpus::open(dir.path()),
            Err(DataError::CorpusIsDirectory { .. })
        ));
        let empty = write(dir.path(), "empty.txt", b"");
        assert!(matches!(
            Corpus::open(&empty),
            Err(DataError::CorpusEmpty { .. })
        ));
        let mut bin = vec![b'a'; 70_000];
        bin[66_000] = 0;
        let bin = write(dir.path(), "bin.dat", &bin);
        match Corpus::open(&bin) {
            Err(DataError::CorpusBinary { offset, .. }) => assert_eq!(offset, 66_000),
            other => panic!("expected CorpusBinary, got {other:?}"),
        }
    }

    #[test]
    fn invalid_utf8_reports_offset_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        // Line 2, after "ab" and a 2-byte 'é': the bad byte is the 4th character of line 2.
        let mut bytes = b"first line\nab".to_vec();
        bytes.extend_from_slice("é".as_bytes());
        bytes.push(0xFF);
        bytes.extend_from_slice(b"tail\n");
        let p = write(dir.path(), "bad.txt", &bytes);
        let c = Corpus::open(&p).unwrap();
        match c.check_utf8() {
            Err(DataError::InvalidUtf8 {
                offset,
                line,
                column,
                ..
            }) => {
                assert_eq!(offset, 15);
                assert_eq!(line, 2);
                assert_eq!(column, 4);
            }
            other => panic!("expected InvalidUtf8, got {other:?}"),
        }
        let msg = c.check_utf8().unwrap_err().to_string();
        assert!(msg.contains("byte offset 15 (line 2, column 4)"), "{msg}");
    }

    #[test]
    fn sha256_matches_a_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn named_corpora_are_searched_in_order_and_missing_ones_say_where_to_get_them() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        let alice = named_corpus("alice").unwrap();
        write(second.path(), "alice.txt", b"text");
        let dirs = vec![first.path().to_path_buf(), second.path().to_path_buf()];
        assert_eq!(
            locate_named_corpus(alice, &dirs).unwrap(),
            second.path().join("alice.txt")
        );
        write(first.path(), "alice.txt", b"text");
        assert_eq!(
            locate_named_corpus(alice, &dirs).unwrap(),
            first.path().join("alice.txt")
        );

        let sherlock = named_corpus("sherlock").unwrap();
        let msg = locate_named_corpus(sherlock, &dirs)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("gutenberg.org/ebooks/1661"), "{msg}");
        assert!(msg.contains(sherlock.sha256), "{msg}");
        assert!(msg.contains(&first.path().display().to_string()), "{msg}");
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn search_dirs_put_recur_data_first_and_skip_it_when_empty() {
        let dirs = corpus_search_dirs(Some(std::ffi::OsStr::new("/corpora")));
        assert_eq!(
            dirs,
            vec![
                PathBuf::from("/corpora"),
                PathBuf::from("./data"),
                PathBuf::from("../shared/data")
            ]
        );
        assert_eq!(corpus_search_dirs(Some(std::ffi::OsStr::new(""))).len(), 2);
        assert_eq!(corpus_search_dirs(None).len(), 2);
    }

    #[test]
    fn checksum_mismatch_is_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "alice.txt", b"not the real alice");
        let c = Corpus::open(&p).unwrap();
        let status = verify_named_corpus(&c, named_corpus("alice").unwrap());
        assert!(matches!(status, ChecksumStatus::Mismatch { .. }));
    }
}
