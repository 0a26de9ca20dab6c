//! The token stream of a corpus: ids (1, 2 or 4 bytes each) and, for word corpora, line
//! records — memory-mapped from a token cache, or owned in memory for short texts.

use recur_kernels::mmap::Mmap;

use super::error::DataError;

/// How many bytes each stored id takes: the smallest width that holds `vocab_size − 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdWidth {
    U8,
    U16,
    U32,
}

impl IdWidth {
    /// The narrowest width for ids `0..vocab_size`.
    pub fn for_vocab_size(vocab_size: usize) -> IdWidth {
        if vocab_size <= 1 << 8 {
            IdWidth::U8
        } else if vocab_size <= 1 << 16 {
            IdWidth::U16
        } else {
            IdWidth::U32
        }
    }

    /// Bytes per id.
    pub fn bytes(self) -> usize {
        match self {
            IdWidth::U8 => 1,
            IdWidth::U16 => 2,
            IdWidth::U32 => 4,
        }
    }

    pub(crate) fn from_bytes(bytes: u32) -> Option<IdWidth> {
        match bytes {
            1 => Some(IdWidth::U8),
            2 => Some(IdWidth::U16),
            4 => Some(IdWidth::U32),
            _ => None,
        }
    }
}

/// A borrowed run of token ids in their stored width.
#[derive(Clone, Copy, Debug)]
pub enum TokenIds<'a> {
    U8(&'a [u8]),
    U16(&'a [u16]),
    U32(&'a [u32]),
}

impl<'a> TokenIds<'a> {
    /// Number of ids.
    pub fn len(&self) -> usize {
        match self {
            TokenIds::U8(s) => s.len(),
            TokenIds::U16(s) => s.len(),
            TokenIds::U32(s) => s.len(),
        }
    }

    /// Whether there are no ids.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The id at `index`.
    ///
    /// # Panics
    ///
    /// If `index >= len()`.
    pub fn get(&self, index: usize) -> u32 {
        match self {
            TokenIds::U8(s) => u32::from(s[index]),
            TokenIds::U16(s) => u32::from(s[index]),
            TokenIds::U32(s) => s[index],
        }
    }

    /// Copies `count` ids from `start` into `out[offset + k·stride]` for `k in 0..count`: one
    /// column of a time-major `(T, B)` buffer when `stride = B`.
    ///
    /// # Panics
    ///
    /// If the source range or a destination index is out of bounds.
    pub fn copy_strided(
        &self,
        start: usize,
        count: usize,
        out: &mut [u32],
        offset: usize,
        stride: usize,
    ) {
        fn run<T: Copy + Into<u32>>(src: &[T], out: &mut [u32], offset: usize, stride: usize) {
            for (k, &id) in src.iter().enumerate() {
                out[offset + k * stride] = id.into();
            }
        }
        match self {
            TokenIds::U8(s) => run(&s[start..start + count], out, offset, stride),
            TokenIds::U16(s) => run(&s[start..start + count], out, offset, stride),
            TokenIds::U32(s) => run(&s[start..start + count], out, offset, stride),
        }
    }

    /// The largest id (`None` when empty). One vectorisable pass.
    pub fn max(&self) -> Option<u32> {
        match self {
            TokenIds::U8(s) => s.iter().copied().max().map(u32::from),
            TokenIds::U16(s) => s.iter().copied().max().map(u32::from),
            TokenIds::U32(s) => s.iter().copied().max(),
        }
    }

    /// All ids widened to `u32` (tests and short streams; allocates).
    pub fn to_vec(&self) -> Vec<u32> {
        (0..self.len()).map(|i| self.get(i)).collect()
    }
}

#[derive(Debug)]
enum Backing {
    /// A token cache file (see [`super::cache`]); the offsets locate its sections.
    Mapped {
        map: Mmap,
        width: IdWidth,
        ids_at: usize,
        line_token_ends_at: usize,
        line_sample_ends_at: usize,
    },
    Owned {
        ids: Vec<u32>,
        line_token_ends: Vec<u64>,
        line_sample_ends: Vec<u64>,
    },
}

/// A corpus's token stream with its line records.
///
/// Line records exist for word corpora: for every line with at least one token, in order,
/// `line_token_ends[j]` is the stream position just past line `j` (so line `j` is
/// `line_token_ends[j-1]..line_token_ends[j]`, starting at 0), and `line_sample_ends[j]` is the
/// running count of per-line prefix samples, Σ_{i≤j} (tokens_i − 1).
#[derive(Debug)]
pub struct TokenStore {
    backing: Backing,
    tokens: usize,
    lines: usize,
    longest_line: u64,
}

impl TokenStore {
    /// A store over ids held in memory. `line_token_ends` as described on [`TokenStore`] (empty
    /// for a stream without lines).
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidOption`] if the line ends are not strictly increasing or do not end
    /// at `ids.len()`.
    pub fn from_ids(ids: Vec<u32>, line_token_ends: Vec<u64>) -> Result<TokenStore, DataError> {
        let line_sample_ends = sample_ends(&line_token_ends, ids.len() as u64)?;
        let longest_line = longest_line(&line_token_ends);
        Ok(TokenStore {
            tokens: ids.len(),
            lines: line_token_ends.len(),
            longest_line,
            backing: Backing::Owned {
                ids,
                line_token_ends,
                line_sample_ends,
            },
        })
    }

    /// A store over a mapped cache file whose layout [`super::cache`] has validated.
    pub(crate) fn mapped(
        map: Mmap,
        width: IdWidth,
        ids_at: usize,
        tokens: usize,
        line_token_ends_at: usize,
        lines: usize,
    ) -> TokenStore {
        let mut store = TokenStore {
            backing: Backing::Mapped {
                map,
                width,
                ids_at,
                line_token_ends_at,
                line_sample_ends_at: line_token_ends_at + lines * 8,
            },
            tokens,
            lines,
            longest_line: 0,
        };
        store.longest_line = longest_line(store.line_token_ends());
        store
    }

    /// Number of token ids.
    pub fn len(&self) -> usize {
        self.tokens
    }

    /// Whether the stream is empty.
    pub fn is_empty(&self) -> bool {
        self.tokens == 0
    }

    /// Whether the ids live in a memory-mapped cache (rather than on the heap).
    pub fn is_mapped(&self) -> bool {
        matches!(self.backing, Backing::Mapped { .. })
    }

    /// The ids.
    pub fn ids(&self) -> TokenIds<'_> {
        match &self.backing {
            Backing::Owned { ids, .. } => TokenIds::U32(ids),
            Backing::Mapped {
                map, width, ids_at, ..
            } => {
                let bytes = &map[*ids_at..*ids_at + self.tokens * width.bytes()];
                match width {
                    IdWidth::U8 => TokenIds::U8(bytes),
                    IdWidth::U16 => TokenIds::U16(cast(bytes)),
                    IdWidth::U32 => TokenIds::U32(cast(bytes)),
                }
            }
        }
    }

    /// Number of line records.
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Tokens in the longest line (0 without line records).
    pub fn longest_line(&self) -> u64 {
        self.longest_line
    }

    /// Stream position just past each line (see [`TokenStore`]).
    pub fn line_token_ends(&self) -> &[u64] {
        match &self.backing {
            Backing::Owned {
                line_token_ends, ..
            } => line_token_ends,
            Backing::Mapped {
                map,
                line_token_ends_at,
                ..
            } => cast(&map[*line_token_ends_at..*line_token_ends_at + self.lines * 8]),
        }
    }

    /// Running count of prefix samples at the end of each line (see [`TokenStore`]).
    pub fn line_sample_ends(&self) -> &[u64] {
        match &self.backing {
            Backing::Owned {
                line_sample_ends, ..
            } => line_sample_ends,
            Backing::Mapped {
                map,
                line_sample_ends_at,
                ..
            } => cast(&map[*line_sample_ends_at..*line_sample_ends_at + self.lines * 8]),
        }
    }
}

/// Reinterprets little-endian cache bytes as `T`s. The cache layout puts every section at a
/// multiple of 8 bytes from the start of a page-aligned map, and [`super::cache`] refuses to
/// load on big-endian hosts, so this cannot fail for a validated cache.
fn cast<T: bytemuck::Pod>(bytes: &[u8]) -> &[T] {
    bytemuck::try_cast_slice(bytes)
        .expect("token cache sections are aligned to 8 bytes (checked when the cache is loaded)")
}

fn longest_line(ends: &[u64]) -> u64 {
    let mut previous = 0;
    let mut longest = 0;
    for &end in ends {
        longest = longest.max(end - previous);
        previous = end;
    }
    longest
}

/// Running sample counts from line ends, validating them.
pub(crate) fn sample_ends(line_token_ends: &[u64], tokens: u64) -> Result<Vec<u64>, DataError> {
    let mut previous = 0u64;
    let mut samples = 0u64;
    let mut out = Vec::with_capacity(line_token_ends.len());
    for (j, &end) in line_token_ends.iter().enumerate() {
        if end <= previous {
            return Err(DataError::InvalidOption {
                name: "line_token_ends",
                message: format!(
                    "must be strictly increasing from above 0, found {end} at line record {j} after {previous}"
                ),
            });
        }
        samples += end - previous - 1;
        out.push(samples);
        previous = end;
    }
    if !line_token_ends.is_empty() && previous != tokens {
        return Err(DataError::InvalidOption {
            name: "line_token_ends",
            message: format!("must end at the token count {tokens}, found {previous}"),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_fit_the_vocabulary() {
        assert_eq!(IdWidth::for_vocab_size(42), IdWidth::U8);
        assert_eq!(IdWidth::for_vocab_size(256), IdWidth::U8);
        assert_eq!(IdWidth::for_vocab_size(257), IdWidth::U16);
        assert_eq!(IdWidth::for_vocab_size(8639), IdWidth::U16);
        assert_eq!(IdWidth::for_vocab_size(65_537), IdWidth::U32);
    }

    #[test]
    fn owned_store_derives_sample_ends_and_longest_line() {
        let s = TokenStore::from_ids(vec![5, 6, 7, 8, 9, 1], vec![3, 4, 6]).unwrap();
        assert_eq!(s.line_sample_ends(), &[2, 2, 3]);
        assert_eq!(s.longest_line(), 3);
        assert!(!s.is_mapped());
        let mut out = vec![0; 6];
        s.ids().copy_strided(1, 3, &mut out, 1, 2);
        assert_eq!(out, vec![0, 6, 0, 7, 0, 8]);
        assert!(TokenStore::from_ids(vec![1, 2], vec![1, 1]).is_err());
        assert!(TokenStore::from_ids(vec![1, 2], vec![1]).is_err());
    }
}
