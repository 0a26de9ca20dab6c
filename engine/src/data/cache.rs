//! Token caches: a corpus's token ids and vocabulary in one binary file beside the run, mapped
//! on re-runs instead of tokenising again.
//!
//! # File layout (version 1, all integers little-endian)
//!
//! ```text
//! offset  size  field
//!      0     8  magic "RECURTOK"
//!      8     4  format version (1)
//!     12     4  id width in bytes: 1, 2 or 4
//!     16     8  tokeniser config hash (FNV-1a 64 of the config's JSON)
//!     24     8  corpus length in bytes           ┐
//!     32     8  corpus mtime, ns since the epoch ├ the corpus fingerprint
//!     40     8  corpus edge hash                 ┘ (see CorpusFingerprint)
//!     48     8  token count N
//!     56     8  line record count L
//!     64     8  reserved (0)
//!     72     8  vocabulary JSON length J
//!     80     J  vocabulary JSON (Tokenizer::to_json), zero-padded to a multiple of 8
//!      …   N·w  token ids, w = id width, zero-padded to a multiple of 8
//!      …   8·L  line token ends (u64)
//!      …   8·L  line sample ends (u64)
//! ```
//!
//! Every section starts at a multiple of 8 bytes, so the mapped ids and line records can be
//! viewed in place as `&[u16]`/`&[u32]`/`&[u64]` (maps are page-aligned). The file must be
//! exactly as long as the header says.
//!
//! A cache is used only if magic, version, config hash and corpus fingerprint all match and the
//! vocabulary parses to a tokeniser with the same config; anything else is reported as a
//! [`StaleReason`] and the caller rebuilds. Writing goes to `<name>.tmp-<pid>` and is renamed
//! over the old file, so a mapped cache is never written to and an interrupted write leaves the
//! previous cache intact.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use recur_kernels::mmap::map_file_readonly;

use super::corpus::{Corpus, CorpusFingerprint};
use super::error::DataError;
use super::store::{IdWidth, TokenStore};
use super::tokenizer::{CorpusStats, TokenSink, Tokenizer, TokenizerConfig};

/// The first 8 bytes of every token cache.
pub const CACHE_MAGIC: [u8; 8] = *b"RECURTOK";
/// The layout version this build reads and writes.
pub const CACHE_VERSION: u32 = 1;
const HEADER_LEN: usize = 80;

/// Why an existing cache file was not used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StaleReason {
    /// There is no cache file yet.
    Missing,
    /// The file does not start with the cache magic.
    NotACache,
    /// Written by another layout version.
    OtherVersion(u32),
    /// Written with another tokeniser configuration.
    TokenizerChanged,
    /// The corpus's length, mtime or edge bytes differ.
    CorpusChanged,
    /// Truncated, inconsistent or unreadable content.
    Corrupt(String),
}

impl std::fmt::Display for StaleReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StaleReason::Missing => write!(f, "no cache yet"),
            StaleReason::NotACache => write!(f, "not a token cache"),
            StaleReason::OtherVersion(v) => {
                write!(f, "cache format version {v}, expected {CACHE_VERSION}")
            }
            StaleReason::TokenizerChanged => write!(f, "tokeniser options changed"),
            StaleReason::CorpusChanged => write!(f, "corpus changed"),
            StaleReason::Corrupt(why) => write!(f, "corrupt cache: {why}"),
        }
    }
}

/// The result of looking for a usable cache.
#[derive(Debug)]
// Returned once per run: its inline size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum CacheLookup {
    /// A valid cache: its tokeniser and mapped token stream.
    Hit(Tokenizer, TokenStore),
    /// No usable cache, and why.
    Stale(StaleReason),
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn read_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn pad8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Byte offsets of the sections, from the header counts.
#[derive(Clone, Copy, Debug)]
struct Layout {
    ids_at: usize,
    line_token_ends_at: usize,
    total: usize,
}

impl Layout {
    fn new(vocab_json_len: usize, tokens: usize, width: IdWidth, lines: usize) -> Option<Layout> {
        let ids_at = HEADER_LEN.checked_add(pad8(vocab_json_len))?;
        let ids_len = tokens.checked_mul(width.bytes())?;
        let line_token_ends_at = ids_at.checked_add(pad8(ids_len))?;
        let total = line_token_ends_at.checked_add(lines.checked_mul(16)?)?;
        Some(Layout {
            ids_at,
            line_token_ends_at,
            total,
        })
    }
}

/// Looks for a valid cache at `path` for `config` over a corpus with `fingerprint`.
///
/// # Errors
///
/// [`DataError::CacheIo`] only if the file exists but cannot be opened or mapped (e.g. no
/// permission); a missing, foreign, stale or corrupt file is a [`CacheLookup::Stale`].
pub fn load_token_cache(
    path: &Path,
    config: &TokenizerConfig,
    fingerprint: CorpusFingerprint,
) -> Result<CacheLookup, DataError> {
    let stale = |r: StaleReason| Ok(CacheLookup::Stale(r));
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return stale(StaleReason::Missing),
        Err(source) => {
            return Err(DataError::CacheIo {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if !file.metadata().map(|m| m.is_file()).unwrap_or(false) {
        return stale(StaleReason::NotACache);
    }
    let map = map_file_readonly(&file).map_err(|source| DataError::CacheIo {
        path: path.to_path_buf(),
        source,
    })?;
    if map.len() < HEADER_LEN || map[..8] != CACHE_MAGIC {
        return stale(StaleReason::NotACache);
    }
    let version = read_u32(&map, 8);
    if version != CACHE_VERSION {
        return stale(StaleReason::OtherVersion(version));
    }
    if cfg!(target_endian = "big") {
        return stale(StaleReason::Corrupt(
            "token caches are little-endian and this host is big-endian".into(),
        ));
    }
    if read_u64(&map, 16) != config.stable_hash() {
        return stale(StaleReason::TokenizerChanged);
    }
    let stored = CorpusFingerprint {
        len: read_u64(&map, 24),
        mtime_ns: read_u64(&map, 32),
        edge_hash: read_u64(&map, 40),
    };
    if stored != fingerprint {
        return stale(StaleReason::CorpusChanged);
    }
    let Some(width) = IdWidth::from_bytes(read_u32(&map, 12)) else {
        return stale(StaleReason::Corrupt(format!(
            "id width {} is not 1, 2 or 4",
            read_u32(&map, 12)
        )));
    };
    let to_usize = |v: u64| usize::try_from(v).ok();
    let (Some(tokens), Some(lines), Some(json_len)) = (
        to_usize(read_u64(&map, 48)),
        to_usize(read_u64(&map, 56)),
        to_usize(read_u64(&map, 72)),
    ) else {
        return stale(StaleReason::Corrupt("counts overflow".into()));
    };
    let Some(layout) = Layout::new(json_len, tokens, width, lines) else {
        return stale(StaleReason::Corrupt("counts overflow".into()));
    };
    if layout.total != map.len() {
        return stale(StaleReason::Corrupt(format!(
            "{} bytes, the header describes {}",
            map.len(),
            layout.total
        )));
    }
    if map.as_ptr().align_offset(8) != 0 {
        return stale(StaleReason::Corrupt("map not 8-byte aligned".into()));
    }
    let Ok(json) = std::str::from_utf8(&map[HEADER_LEN..HEADER_LEN + json_len]) else {
        return stale(StaleReason::Corrupt("vocabulary is not UTF-8".into()));
    };
    let tokenizer = match Tokenizer::from_json(json) {
        Ok(t) => t,
        Err(e) => return stale(StaleReason::Corrupt(e.to_string())),
    };
    if tokenizer.config() != *config {
        return stale(StaleReason::TokenizerChanged);
    }
    let store = TokenStore::mapped(
        map,
        width,
        layout.ids_at,
        tokens,
        layout.line_token_ends_at,
        lines,
    );
    if let Some(why) = check_contents(&store, tokenizer.vocab_size()) {
        return stale(StaleReason::Corrupt(why));
    }
    Ok(CacheLookup::Hit(tokenizer, store))
}

/// Validates the mapped contents: ids below the vocabulary size, line records consistent. One
/// pass over the ids (memory speed), so a damaged cache is rebuilt rather than trusted.
fn check_contents(store: &TokenStore, vocab_size: usize) -> Option<String> {
    if let Some(max) = store.ids().max()
        && max as usize >= vocab_size
    {
        return Some(format!(
            "a token has id {max}, the vocabulary has {vocab_size}"
        ));
    }
    // Line records: strictly increasing ends that finish at the token count, and running
    // sample counts that agree with them (checked in place: no allocation per line).
    let ends = store.line_token_ends();
    let samples = store.line_sample_ends();
    let (mut previous, mut running) = (0u64, 0u64);
    for (j, (&end, &stored)) in ends.iter().zip(samples).enumerate() {
        if end <= previous {
            return Some(format!("line record {j} ends at {end}, after {previous}"));
        }
        running += end - previous - 1;
        if stored != running {
            return Some(format!(
                "line record {j} counts {stored} samples, its line ends imply {running}"
            ));
        }
        previous = end;
    }
    if !ends.is_empty() && previous != store.len() as u64 {
        return Some(format!(
            "line records end at {previous}, the stream has {} tokens",
            store.len()
        ));
    }
    None
}

/// Streams ids into three positions of one file: ids, line ends, sample ends.
struct CacheWriter {
    ids: BufWriter<File>,
    line_token_ends: BufWriter<File>,
    line_sample_ends: BufWriter<File>,
    width: IdWidth,
    /// Little-endian bytes of the ids of one `push_ids` call.
    stage: Vec<u8>,
    tokens: u64,
    lines: u64,
    samples: u64,
    current_line: u64,
}

impl CacheWriter {
    fn io(&mut self, r: io::Result<()>) -> Result<(), DataError> {
        // Paths are attached by the caller; a sink error carries an empty path placeholder.
        r.map_err(|source| DataError::CacheIo {
            path: PathBuf::new(),
            source,
        })
    }
}

impl TokenSink for CacheWriter {
    fn push(&mut self, id: u32) -> Result<(), DataError> {
        let r = match self.width {
            IdWidth::U8 => self.ids.write_all(&[id as u8]),
            IdWidth::U16 => self.ids.write_all(&(id as u16).to_le_bytes()),
            IdWidth::U32 => self.ids.write_all(&id.to_le_bytes()),
        };
        self.tokens += 1;
        self.current_line += 1;
        self.io(r)
    }

    fn push_ids(&mut self, ids: &[u32]) -> Result<(), DataError> {
        self.stage.clear();
        match self.width {
            IdWidth::U8 => self.stage.extend(ids.iter().map(|&id| id as u8)),
            IdWidth::U16 => {
                for &id in ids {
                    self.stage.extend_from_slice(&(id as u16).to_le_bytes());
                }
            }
            IdWidth::U32 => {
                for &id in ids {
                    self.stage.extend_from_slice(&id.to_le_bytes());
                }
            }
        }
        self.tokens += ids.len() as u64;
        self.current_line += ids.len() as u64;
        let r = self.ids.write_all(&self.stage);
        self.io(r)
    }

    fn end_line(&mut self) -> Result<(), DataError> {
        if self.current_line == 0 {
            return Ok(());
        }
        self.lines += 1;
        self.samples += self.current_line - 1;
        self.current_line = 0;
        let r = self
            .line_token_ends
            .write_all(&self.tokens.to_le_bytes())
            .and_then(|()| self.line_sample_ends.write_all(&self.samples.to_le_bytes()));
        self.io(r)
    }
}

/// Tokenises `corpus` with `tokenizer` into a new cache at `path` (creating its directory),
/// then maps it.
///
/// `stats` are the fitted statistics ([`Tokenizer::fit`]); they size the file's sections, and
/// the written stream is checked against them.
///
/// # Errors
///
/// [`DataError::CacheIo`] if the directory or file cannot be written; whatever tokenising
/// reports.
pub fn write_token_cache(
    path: &Path,
    corpus: &Corpus,
    tokenizer: &Tokenizer,
    stats: CorpusStats,
) -> Result<TokenStore, DataError> {
    let io_err = |source: io::Error| DataError::CacheIo {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_err)?;
    }
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);

    let result = write_cache_file(&tmp, corpus, tokenizer, stats);
    let result = result.and_then(|()| std::fs::rename(&tmp, path).map_err(io_err));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(match e {
            DataError::CacheIo { source, .. } => io_err(source),
            other => other,
        });
    }
    match load_token_cache(path, &tokenizer.config(), corpus.fingerprint())? {
        CacheLookup::Hit(_, store) => Ok(store),
        CacheLookup::Stale(why) => Err(io_err(io::Error::other(format!(
            "the cache just written does not read back ({why}); was the corpus modified while \
             it was being tokenised?"
        )))),
    }
}

fn write_cache_file(
    tmp: &Path,
    corpus: &Corpus,
    tokenizer: &Tokenizer,
    stats: CorpusStats,
) -> Result<(), DataError> {
    let io_err = |source: io::Error| DataError::CacheIo {
        path: tmp.to_path_buf(),
        source,
    };
    let json = tokenizer.to_json();
    let width = IdWidth::for_vocab_size(tokenizer.vocab_size());
    let tokens =
        usize::try_from(stats.tokens).map_err(|_| io_err(io::Error::other("too many tokens")))?;
    let lines =
        usize::try_from(stats.lines).map_err(|_| io_err(io::Error::other("too many lines")))?;
    let layout = Layout::new(json.len(), tokens, width, lines)
        .ok_or_else(|| io_err(io::Error::other("cache size overflows")))?;
    let fingerprint = corpus.fingerprint();

    let mut header = Vec::with_capacity(layout.ids_at);
    header.extend_from_slice(&CACHE_MAGIC);
    header.extend_from_slice(&CACHE_VERSION.to_le_bytes());
    header.extend_from_slice(&(width.bytes() as u32).to_le_bytes());
    header.extend_from_slice(&tokenizer.config().stable_hash().to_le_bytes());
    header.extend_from_slice(&fingerprint.len.to_le_bytes());
    header.extend_from_slice(&fingerprint.mtime_ns.to_le_bytes());
    header.extend_from_slice(&fingerprint.edge_hash.to_le_bytes());
    header.extend_from_slice(&stats.tokens.to_le_bytes());
    header.extend_from_slice(&stats.lines.to_le_bytes());
    header.extend_from_slice(&0u64.to_le_bytes());
    header.extend_from_slice(&(json.len() as u64).to_le_bytes());
    debug_assert_eq!(header.len(), HEADER_LEN);
    header.extend_from_slice(json.as_bytes());
    header.resize(layout.ids_at, 0);

    let mut file = File::create(tmp).map_err(io_err)?;
    file.write_all(&header).map_err(io_err)?;
    file.set_len(layout.total as u64).map_err(io_err)?;
    let open_at = |offset: usize| -> Result<BufWriter<File>, DataError> {
        let mut f = OpenOptions::new().write(true).open(tmp).map_err(io_err)?;
        f.seek(SeekFrom::Start(offset as u64)).map_err(io_err)?;
        Ok(BufWriter::with_capacity(1 << 16, f))
    };
    let mut writer = CacheWriter {
        ids: open_at(layout.ids_at)?,
        line_token_ends: open_at(layout.line_token_ends_at)?,
        line_sample_ends: open_at(layout.line_token_ends_at + lines * 8)?,
        width,
        stage: Vec::new(),
        tokens: 0,
        lines: 0,
        samples: 0,
        current_line: 0,
    };
    tokenizer
        .encode_corpus(corpus, &mut writer)
        .map_err(|e| match e {
            DataError::CacheIo { source, .. } => io_err(source),
            other => other,
        })?;
    if writer.tokens != stats.tokens || writer.lines != stats.lines {
        return Err(io_err(io::Error::other(format!(
            "tokenising produced {} tokens in {} lines, fitting counted {} in {}; was the corpus \
             modified meanwhile?",
            writer.tokens, writer.lines, stats.tokens, stats.lines
        ))));
    }
    for w in [
        &mut writer.ids,
        &mut writer.line_token_ends,
        &mut writer.line_sample_ends,
    ] {
        w.flush().map_err(io_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::char_tokenizer::CharTokenizerConfig;
    use crate::data::word_tokenizer::WordTokenizerConfig;

    fn corpus_at(dir: &Path, text: &str) -> Corpus {
        let p = dir.join("corpus.txt");
        std::fs::write(&p, text).unwrap();
        Corpus::open(&p).unwrap()
    }

    #[test]
    fn written_cache_maps_back_with_the_same_ids_and_lines() {
        let dir = tempfile::tempdir().unwrap();
        let corpus = corpus_at(dir.path(), "the cat sat\n\non the mat\nthe end\n");
        let config = TokenizerConfig::Word(WordTokenizerConfig::keras());
        let (tok, stats) = Tokenizer::fit(&corpus, &config).unwrap();
        let cache = dir.path().join("run").join("tokens.bin");
        let store = write_token_cache(&cache, &corpus, &tok, stats).unwrap();
        assert!(store.is_mapped());
        let mut expected = crate::data::tokenizer::VecSink::default();
        tok.encode_corpus(&corpus, &mut expected).unwrap();
        assert_eq!(store.ids().to_vec(), expected.ids);
        assert_eq!(store.line_token_ends(), &expected.line_ends[..]);
        assert_eq!(store.line_sample_ends(), &[2, 4, 5]);

        match load_token_cache(&cache, &config, corpus.fingerprint()).unwrap() {
            CacheLookup::Hit(t, s) => {
                assert_eq!(t, tok);
                assert_eq!(s.ids().to_vec(), expected.ids);
            }
            CacheLookup::Stale(r) => panic!("expected a hit, got {r}"),
        }
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(cache.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("tokens.bin")]);
    }

    #[test]
    fn stale_caches_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        let corpus = corpus_at(dir.path(), "abc abc abc\n");
        let config = TokenizerConfig::Char(CharTokenizerConfig::SEED);
        let (tok, stats) = Tokenizer::fit(&corpus, &config).unwrap();
        let cache = dir.path().join("tokens.bin");
        let lookup =
            |config: &TokenizerConfig, fp| match load_token_cache(&cache, config, fp).unwrap() {
                CacheLookup::Hit(..) => None,
                CacheLookup::Stale(r) => Some(r),
            };
        assert_eq!(
            lookup(&config, corpus.fingerprint()),
            Some(StaleReason::Missing)
        );
        write_token_cache(&cache, &corpus, &tok, stats).unwrap();
        assert_eq!(lookup(&config, corpus.fingerprint()), None);

        let other = TokenizerConfig::Char(CharTokenizerConfig {
            lowercase: false,
            ..CharTokenizerConfig::SEED
        });
        assert_eq!(
            lookup(&other, corpus.fingerprint()),
            Some(StaleReason::TokenizerChanged)
        );
        let mut fp = corpus.fingerprint();
        fp.mtime_ns += 1;
        assert_eq!(lookup(&config, fp), Some(StaleReason::CorpusChanged));

        // Damage: truncation, a foreign file, another version, an out-of-range id.
        let good = std::fs::read(&cache).unwrap();
        std::fs::write(&cache, &good[..good.len() - 1]).unwrap();
        assert!(matches!(
            lookup(&config, corpus.fingerprint()),
            Some(StaleReason::Corrupt(_))
        ));
        std::fs::write(&cache, b"hello").unwrap();
        assert_eq!(
            lookup(&config, corpus.fingerprint()),
            Some(StaleReason::NotACache)
        );
        let mut v2 = good.clone();
        v2[8] = 2;
        std::fs::write(&cache, &v2).unwrap();
        assert_eq!(
            lookup(&config, corpus.fingerprint()),
            Some(StaleReason::OtherVersion(2))
        );
        // The vocabulary has 4 symbols (' ', a, b, c); make the first id 200.
        let mut bad_id = good.clone();
        let ids_at = 80 + (read_u64(&good, 72) as usize).div_ceil(8) * 8;
        bad_id[ids_at] = 200;
        std::fs::write(&cache, &bad_id).unwrap();
        assert!(matches!(
            lookup(&config, corpus.fingerprint()),
            Some(StaleReason::Corrupt(_))
        ));
    }

    #[test]
    fn rewriting_replaces_a_cache_that_is_still_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let corpus = corpus_at(dir.path(), "aab\n");
        let config = TokenizerConfig::Char(CharTokenizerConfig::SEED);
        let (tok, stats) = Tokenizer::fit(&corpus, &config).unwrap();
        let cache = dir.path().join("tokens.bin");
        let first = write_token_cache(&cache, &corpus, &tok, stats).unwrap();
        let second = write_token_cache(&cache, &corpus, &tok, stats).unwrap();
        // The first map still sees its (renamed-over) file, unchanged.
        assert_eq!(first.ids().to_vec(), vec![0, 0, 1]);
        assert_eq!(second.ids().to_vec(), vec![0, 0, 1]);
    }
}
