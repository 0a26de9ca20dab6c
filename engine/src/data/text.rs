//! Text preprocessing shared by the tokenisers: line splitting, the seed's strip-and-join,
//! lower-casing and ASCII filtering, streamed over a memory-mapped corpus.
//!
//! Everything here works one line at a time over borrowed bytes, with one reusable `String`
//! buffer per pass, so preprocessing a corpus allocates in proportion to its longest line, not its
//! size.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::corpus::invalid_utf8_at;
use super::error::DataError;

/// How a character tokeniser treats line structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineMode {
    /// The seed's preprocessing: each line (split on `\n`) is stripped of leading and trailing
    /// ASCII whitespace (Python's `bytes.strip()`: space, `\t`, `\n`, `\r`, `\x0b`, `\x0c`), lines
    /// that are empty after cleaning are dropped, and the rest are joined with single spaces. The
    /// strip happens before non-ASCII bytes are dropped, as in the seed
    /// (`line.strip().lower().decode("ascii", "ignore")`), so a line opening with a curly quote
    /// keeps the space that followed it.
    StripAndJoin,
    /// The text as it is, line breaks included (char-rnn's behaviour).
    Keep,
}

/// The character-level cleaning applied to every line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CaseAndScript {
    /// Lower-case the text (Unicode lower-casing; ASCII-only text is lower-cased byte-wise).
    pub lowercase: bool,
    /// Drop every byte ≥ 0x80 instead of decoding UTF-8 (the seed's
    /// `decode("ascii", "ignore")`); invalid UTF-8 is then not an error.
    pub ascii_only: bool,
}

/// Python's `bytes.strip()` whitespace set.
fn is_python_ascii_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// The range of `line` without leading and trailing Python ASCII whitespace.
fn stripped_range(line: &[u8]) -> std::ops::Range<usize> {
    let start = line
        .iter()
        .position(|&b| !is_python_ascii_whitespace(b))
        .unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|&b| !is_python_ascii_whitespace(b))
        .map_or(start, |p| p + 1);
    start..end
}

/// Cleans lines, borrowing them when nothing changes and otherwise writing into reusable
/// buffers; reports invalid UTF-8 with its corpus position.
#[derive(Debug)]
pub(crate) struct LineCleaner<'p> {
    options: CaseAndScript,
    /// ASCII results.
    bytes: Vec<u8>,
    /// Lower-cased Unicode results.
    text: String,
    /// For error messages.
    path: &'p Path,
}

impl<'p> LineCleaner<'p> {
    pub(crate) fn new(options: CaseAndScript, path: &'p Path) -> Self {
        LineCleaner {
            options,
            bytes: Vec::new(),
            text: String::new(),
            path,
        }
    }

    /// Cleans `piece`, which starts at byte `offset` of `whole` (the corpus, for error positions).
    pub(crate) fn clean<'a>(
        &'a mut self,
        piece: &'a [u8],
        offset: usize,
        whole: &[u8],
    ) -> Result<&'a str, DataError> {
        let lowercase = self.options.lowercase;
        let ascii = piece.is_ascii();
        if ascii && !lowercase {
            return Ok(ascii_str(piece));
        }
        if ascii || self.options.ascii_only {
            self.bytes.clear();
            if ascii {
                self.bytes.extend_from_slice(piece);
            } else {
                self.bytes
                    .extend(piece.iter().copied().filter(u8::is_ascii));
            }
            if lowercase {
                self.bytes.make_ascii_lowercase();
            }
            return Ok(ascii_str(&self.bytes));
        }
        let text = match std::str::from_utf8(piece) {
            Ok(t) => t,
            Err(e) => return Err(invalid_utf8_at(self.path, whole, offset + e.valid_up_to())),
        };
        if !lowercase {
            return Ok(text);
        }
        if text.contains('\u{3a3}') {
            // `str::to_lowercase` (not per char) so that a final capital sigma becomes `ς`, as
            // Python's `str.lower()` does.
            self.text = text.to_lowercase();
        } else {
            self.text.clear();
            for c in text.chars() {
                self.text.extend(c.to_lowercase());
            }
        }
        Ok(&self.text)
    }
}

/// `bytes`, which are all ASCII, as a `&str`.
fn ascii_str(bytes: &[u8]) -> &str {
    debug_assert!(bytes.is_ascii());
    std::str::from_utf8(bytes).expect("ASCII is UTF-8")
}

/// Calls `on_run` with the preprocessed text of `bytes` in pieces (cleaned lines and the single
/// spaces that join them), in order; concatenated, the pieces are the character tokeniser's text.
///
/// Working on pieces rather than characters lets callers take an ASCII fast path per piece.
/// `path` only labels errors. Returns the number of characters produced.
///
/// # Errors
///
/// [`DataError::InvalidUtf8`] when `options.ascii_only` is false and a line is not UTF-8.
pub fn for_each_char_run(
    bytes: &[u8],
    path: &Path,
    options: CaseAndScript,
    lines: LineMode,
    mut on_run: impl FnMut(&str),
) -> Result<u64, DataError> {
    let mut cleaner = LineCleaner::new(options, path);
    let mut produced = 0u64;
    let mut offset = 0usize;
    let count = |run: &str| {
        if run.is_ascii() {
            run.len() as u64
        } else {
            run.chars().count() as u64
        }
    };
    match lines {
        LineMode::StripAndJoin => {
            let mut first = true;
            for line in bytes.split(|&b| b == b'\n') {
                let range = stripped_range(line);
                let stripped_offset = offset + range.start;
                offset += line.len() + 1;
                let cleaned = cleaner.clean(&line[range], stripped_offset, bytes)?;
                if cleaned.is_empty() {
                    continue;
                }
                if !first {
                    on_run(" ");
                    produced += 1;
                }
                first = false;
                produced += count(cleaned);
                on_run(cleaned);
            }
        }
        LineMode::Keep => {
            for line in bytes.split_inclusive(|&b| b == b'\n') {
                let cleaned = cleaner.clean(line, offset, bytes)?;
                offset += line.len();
                produced += count(cleaned);
                on_run(cleaned);
            }
        }
    }
    Ok(produced)
}

/// Calls `on_char` for every character of `bytes` after the character tokeniser's preprocessing
/// (see [`for_each_char_run`]). Returns the number of characters produced.
///
/// # Errors
///
/// [`DataError::InvalidUtf8`] when `options.ascii_only` is false and a line is not UTF-8.
pub fn for_each_char(
    bytes: &[u8],
    path: &Path,
    options: CaseAndScript,
    lines: LineMode,
    mut on_char: impl FnMut(char),
) -> Result<u64, DataError> {
    for_each_char_run(bytes, path, options, lines, |run| {
        run.chars().for_each(&mut on_char)
    })
}

/// Calls `on_line` with every line of `bytes` (split on `\n`, the `\n` removed) after cleaning.
///
/// Every line is reported, empty ones included, so line numbers stay meaningful to the caller.
///
/// # Errors
///
/// [`DataError::InvalidUtf8`] when `options.ascii_only` is false and a line is not UTF-8.
pub fn for_each_clean_line(
    bytes: &[u8],
    path: &Path,
    options: CaseAndScript,
    mut on_line: impl FnMut(&str),
) -> Result<(), DataError> {
    let mut cleaner = LineCleaner::new(options, path);
    let mut offset = 0usize;
    for line in bytes.split(|&b| b == b'\n') {
        let cleaned = cleaner.clean(line, offset, bytes)?;
        offset += line.len() + 1;
        on_line(cleaned);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: CaseAndScript = CaseAndScript {
        lowercase: true,
        ascii_only: true,
    };

    fn chars(bytes: &[u8], options: CaseAndScript, lines: LineMode) -> Result<String, DataError> {
        let mut out = String::new();
        let n = for_each_char(bytes, Path::new("t"), options, lines, |c| out.push(c))?;
        assert_eq!(n as usize, out.chars().count());
        Ok(out)
    }

    #[test]
    fn seed_preprocessing_strips_lowercases_drops_non_ascii_and_joins() {
        // Hand-checked against Python:
        //   lines = [l.strip().lower().decode("ascii", "ignore") for l in f]; skip empty; " ".join
        let text = "  Alice WAS\r\n\n\t\u{201c}Oh dear!\u{201d}  \n\u{2014}\nend";
        let got = chars(text.as_bytes(), SEED, LineMode::StripAndJoin).unwrap();
        // The curly-quote line is stripped before the quotes are dropped: "oh dear!" keeps no
        // outer spaces because the strip saw the quotes as non-whitespace at both ends.
        // The em-dash-only line becomes empty and is dropped.
        assert_eq!(got, "alice was oh dear! end");
        let text = "\u{201c} Hi\n";
        assert_eq!(
            chars(text.as_bytes(), SEED, LineMode::StripAndJoin).unwrap(),
            " hi"
        );
    }

    #[test]
    fn keep_mode_keeps_line_breaks_and_unicode() {
        let options = CaseAndScript {
            lowercase: false,
            ascii_only: false,
        };
        let text = "Héllo\n  wörld\n";
        assert_eq!(
            chars(text.as_bytes(), options, LineMode::Keep).unwrap(),
            text
        );
        let lower = CaseAndScript {
            lowercase: true,
            ascii_only: false,
        };
        assert_eq!(
            chars("ΟΔΟΣ Ab".as_bytes(), lower, LineMode::Keep).unwrap(),
            "οδος ab"
        );
    }

    #[test]
    fn invalid_utf8_is_located_unless_ascii_only() {
        let bytes = b"ok\n  x\xC3(y\n";
        let unicode = CaseAndScript {
            lowercase: true,
            ascii_only: false,
        };
        match chars(bytes, unicode, LineMode::StripAndJoin) {
            Err(DataError::InvalidUtf8 {
                offset,
                line,
                column,
                ..
            }) => assert_eq!((offset, line, column), (6, 2, 4)),
            other => panic!("expected InvalidUtf8, got {other:?}"),
        }
        assert_eq!(
            chars(bytes, SEED, LineMode::StripAndJoin).unwrap(),
            "ok x(y"
        );
        let mut lines = Vec::new();
        let err = for_each_clean_line(bytes, Path::new("t"), unicode, |l| {
            lines.push(l.to_string())
        })
        .unwrap_err();
        assert!(matches!(err, DataError::InvalidUtf8 { offset: 6, .. }));
    }

    #[test]
    fn strip_matches_python_bytes_strip() {
        fn strip_ascii_whitespace(line: &[u8]) -> &[u8] {
            &line[stripped_range(line)]
        }
        assert_eq!(strip_ascii_whitespace(b" \x0b\x0ca b\r\n"), b"a b");
        assert_eq!(strip_ascii_whitespace(b" \t "), b"");
        assert_eq!(strip_ascii_whitespace(b""), b"");
    }
}
