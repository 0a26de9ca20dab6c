//! Read-only memory maps of files, for the engine's corpora and token caches.
//!
//! `memmap2::Mmap::map` is `unsafe` because the returned `&[u8]` is only immutable as long as no
//! one else changes the file: if another process (or this one, through another handle) writes to
//! or truncates the file while it is mapped, the bytes seen through the slice change underneath
//! safe code, and reading a page past a truncated end raises `SIGBUS`. No API can rule this out
//! for ordinary files (memmap2's `map_if_safe` only accepts sealed memfds and fs-verity files).
//!
//! recur maps two kinds of files: text corpora, which the user treats as read-only inputs, and
//! token caches that recur itself writes to a temporary name and renames into place before mapping
//! (so a re-run that rebuilds a cache replaces the directory entry and never writes into a file
//! that is mapped). This wrapper is the one place where that assumption is made; the engine,
//! which is `#![forbid(unsafe_code)]`, maps files only through it.

use std::fs::File;
use std::io;

pub use memmap2::Mmap;

/// Maps the whole of `file` read-only into memory.
///
/// The caller must open the file for reading. An empty file gives an empty map. The contents are
/// not read here: pages are faulted in as they are touched, so mapping a 1 GiB corpus costs no
/// heap memory.
///
/// # Caveat
///
/// Do not modify or truncate a file while a map of it is alive (see the module docs). recur only
/// maps corpora it treats as read-only and caches it replaces by rename.
///
/// # Errors
///
/// Whatever `mmap(2)` reports, e.g. for a file that is not a regular file.
pub fn map_file_readonly(file: &File) -> io::Result<Mmap> {
    // SAFETY: the mapping is read-only (PROT_READ) and memmap2 sizes it from the file's current
    // length, so every byte of the slice is backed by the file when it is created. What remains is the file-may-change caveat of the
    // module docs: recur never writes to a file it has mapped (caches are rebuilt under a new name
    // and renamed over the old one), and corpora are user inputs documented as read-only while a
    // run uses them.
    unsafe { Mmap::map(file) }
}

/// Advises the kernel that `map` will be read front to back (larger read-ahead).
///
/// A hint only: errors are ignored, and platforms without `madvise` do nothing.
pub fn advise_sequential(map: &Mmap) {
    #[cfg(unix)]
    {
        let _ = map.advise(memmap2::Advice::Sequential);
    }
    #[cfg(not(unix))]
    {
        let _ = map;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn maps_the_bytes_of_a_file() {
        let dir = std::env::temp_dir().join(format!("recur-mmap-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bytes.bin");
        let mut file = File::create(&path).unwrap();
        file.write_all(b"hello, map").unwrap();
        drop(file);

        let map = map_file_readonly(&File::open(&path).unwrap()).unwrap();
        advise_sequential(&map);
        assert_eq!(&map[..], b"hello, map");

        let empty = dir.join("empty.bin");
        File::create(&empty).unwrap();
        let map = map_file_readonly(&File::open(&empty).unwrap()).unwrap();
        assert!(map.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
