//! Bad input through the built `recur` binary: every case exits with code 2, prints one line on
//! stderr naming the flag or file and the problem, and creates or changes no file.
//!
//! Each case runs in a fresh temporary directory (the working directory of the process) that
//! holds only the files the case needs; the directory tree is compared before and after.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::SystemTime;

use crate::common::recur;

/// Every path under `root` with its length and mtime.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            let rel = entry.path().strip_prefix(root).unwrap().to_path_buf();
            out.insert(rel, (meta.len(), meta.modified().unwrap()));
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    out
}

/// A temporary working directory with `files` (name, bytes) in it.
fn workdir(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        let p = dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(p, bytes).unwrap();
    }
    dir
}

/// Runs `recur args` in `dir` and checks: exit code 2, one line on stderr containing every
/// `needles` string, nothing on stdout, the directory unchanged.
fn assert_bad_input(dir: &Path, args: &[&str], needles: &[&str]) -> Output {
    let before = snapshot(dir);
    let out = recur().args(args).current_dir(dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "recur {args:?}: expected exit code 2\nstderr: {stderr}"
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "recur {args:?}: expected one line on stderr, got:\n{stderr}"
    );
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "recur {args:?}: stderr should mention {needle:?}:\n{stderr}"
        );
    }
    assert!(
        out.stdout.is_empty(),
        "recur {args:?}: nothing should be printed on stdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        snapshot(dir),
        before,
        "recur {args:?}: files were created or changed"
    );
    out
}

const TEXT: &[u8] = b"It was the best of times, it was the worst of times.\n\
It was the age of wisdom, it was the age of foolishness.\n";

#[test]
fn missing_corpus() {
    let d = workdir(&[]);
    assert_bad_input(
        d.path(),
        &["train", "--corpus", "nope.txt"],
        &["nope.txt", "no such file"],
    );
}

#[test]
fn empty_corpus() {
    let d = workdir(&[("empty.txt", b"")]);
    assert_bad_input(
        d.path(),
        &["train", "--corpus", "empty.txt"],
        &["empty.txt", "empty"],
    );
}

#[test]
fn corpus_shorter_than_one_window() {
    let d = workdir(&[("short.txt", b"abc\n")]);
    assert_bad_input(
        d.path(),
        &["train", "--corpus", "short.txt"],
        &["short.txt", "too short", "3 characters", "needs 11"],
    );
    // The same corpus is long enough for a window of 2.
    let d = workdir(&[("short.txt", b"abc\n")]);
    assert_bad_input(
        d.path(),
        &["train", "--corpus", "short.txt", "--seq-length", "3"],
        &["short.txt", "needs 4"],
    );
}

#[test]
fn word_corpus_without_a_two_word_line() {
    let d = workdir(&[("one.txt", b"hello\nworld\n")]);
    assert_bad_input(
        d.path(),
        &["train", "--task", "word", "--corpus", "one.txt"],
        &["one.txt", "too short", "at least 2 words"],
    );
}

#[test]
fn corpus_that_only_preprocessing_empties() {
    // Only non-ASCII text: nothing is left after the seed's ASCII filter.
    let d = workdir(&[("greek.txt", "αβγδεζ\n\u{2014}\n".as_bytes())]);
    assert_bad_input(
        d.path(),
        &["train", "--corpus", "greek.txt"],
        &["greek.txt", "no characters left"],
    );
}

#[test]
fn invalid_utf8_says_where_unless_ascii_only() {
    let mut bytes = TEXT.to_vec();
    bytes.extend_from_slice(b"caf\xE9 au lait\n"); // Latin-1 é: offset 113, line 3, column 4
    let d = workdir(&[("latin1.txt", &bytes)]);
    assert_bad_input(
        d.path(),
        &["train", "--corpus", "latin1.txt", "--ascii-only=false"],
        &[
            "latin1.txt",
            "invalid UTF-8",
            "byte offset 113",
            "line 3, column 4",
        ],
    );
    // The word task reads Unicode by default.
    assert_bad_input(
        d.path(),
        &["train", "--task", "word", "--corpus", "latin1.txt"],
        &["latin1.txt", "invalid UTF-8", "line 3"],
    );
    // The seed's ASCII-only mode drops the byte instead: the data is prepared.
    let out = recur()
        .args([
            "train",
            "--corpus",
            "latin1.txt",
            "--checkpoint-dir",
            "run",
            "--max-epochs",
            "1",
        ])
        .current_dir(d.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("windows of 10 steps"));
}

#[test]
fn directory_as_corpus() {
    let d = workdir(&[("texts/a.txt", TEXT)]);
    assert_bad_input(
        d.path(),
        &["train", "--corpus", "texts"],
        &["texts", "is a directory"],
    );
}

#[test]
fn binary_file_as_corpus() {
    let mut bytes = TEXT.to_vec();
    bytes[20] = 0;
    let d = workdir(&[("model.bin", &bytes)]);
    assert_bad_input(
        d.path(),
        &["train", "--corpus", "model.bin"],
        &["model.bin", "binary", "NUL byte at byte offset 20"],
    );
}

#[test]
fn unreadable_corpus() {
    use std::os::unix::fs::PermissionsExt;
    let d = workdir(&[("secret.txt", TEXT)]);
    let p = d.path().join("secret.txt");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&p).is_ok() {
        println!("skipping unreadable_corpus: this user (root?) can read a mode-000 file");
        return;
    }
    assert_bad_input(
        d.path(),
        &["train", "--corpus", "secret.txt"],
        &["secret.txt", "cannot read"],
    );
}

#[test]
fn named_corpus_not_found_says_where_to_get_it() {
    let d = workdir(&[]);
    let out = assert_bad_input(d.path(), &["train"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "alice.txt",
        "./data",
        "../shared/data",
        "gutenberg.org/ebooks/11",
        "f17aa0bf7466424a8b357b688678666bad7a0148963ef349016a3098faa6bd1e",
    ] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
    let out = assert_bad_input(d.path(), &["train", "--task", "word"], &["sherlock.txt"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("ebooks/1661"));
}

#[test]
fn recur_data_is_searched_first() {
    let data = workdir(&[("alice.txt", TEXT)]);
    let d = workdir(&[]);
    let out = recur()
        .args(["train", "--checkpoint-dir", "run", "--max-epochs", "1"])
        .env("RECUR_DATA", data.path())
        .current_dir(d.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains(&data.path().join("alice.txt").display().to_string()));
    // Not the real Alice: a warning, not a failure.
    assert!(
        stderr.contains("warning:") && stderr.contains("SHA-256"),
        "{stderr}"
    );
}

#[test]
fn zero_sizes_and_bad_rates() {
    let d = workdir(&[("c.txt", TEXT)]);
    let base = ["train", "--corpus", "c.txt"];
    for (flag, value, needle) in [
        ("--rnn-size", "0", "found 0"),
        ("--seq-length", "0", "found 0"),
        ("--batch-size", "0", "found 0"),
        ("--num-layers", "0", "found 0"),
        ("--max-epochs", "0", "found 0"),
        ("--threads", "0", "found 0"),
        ("--embedding-size", "0", "found 0"),
        ("--rnn-size", "-3", "positive whole number"),
        ("--rnn-size", "many", "positive whole number"),
        ("--learning-rate", "-1", "> 0"),
        ("--learning-rate", "-0.001", "> 0"),
        ("--learning-rate", "0", "> 0"),
        ("--learning-rate", "nan", "> 0"),
        ("--learning-rate", "inf", "> 0"),
        ("--grad-clip", "0", "> 0"),
        ("--clip-norm", "-5", "> 0"),
        ("--dropout", "1", "[0, 1)"),
        ("--dropout", "-0.1", "[0, 1)"),
        ("--val-frac", "1", "[0, 1)"),
        ("--val-frac", "nan", "[0, 1)"),
        ("--model", "transformer", "transformer"),
        ("--optimizer", "lbfgs", "lbfgs"),
        ("--task", "pixel", "pixel"),
    ] {
        let mut args = base.to_vec();
        args.extend_from_slice(&[flag, value]);
        assert_bad_input(d.path(), &args, &[flag, needle]);
    }
    assert_bad_input(
        d.path(),
        &["train", "--corpus", "c.txt", "--learning-rate=-1"],
        &["--learning-rate", "> 0"],
    );
}

#[test]
fn flags_that_do_not_fit_together() {
    let d = workdir(&[("c.txt", TEXT)]);
    for (args, needles) in [
        (
            &["--dataset", "line-prefixes"][..],
            &["--dataset", "--task word"][..],
        ),
        (
            &["--max-vocab", "100"][..],
            &["--max-vocab", "--task word"][..],
        ),
        (
            &["--task", "word", "--max-vocab", "2"][..],
            &["--max-vocab", "found 2"][..],
        ),
        (
            &["--task", "word", "--keep-lines"][..],
            &["--keep-lines"][..],
        ),
        (
            &["--resume", "--checkpoint-dir", "run"][..],
            &["--resume", "run"][..],
        ),
        (&["--no-such-flag"][..], &["--no-such-flag"][..]),
    ] {
        let mut all = vec!["train", "--corpus", "c.txt"];
        all.extend_from_slice(args);
        assert_bad_input(d.path(), &all, needles);
    }
}

#[test]
fn validation_split_too_small_or_too_large_for_the_corpus() {
    let d = workdir(&[("c.txt", TEXT)]);
    // 109 characters after preprocessing: 1% holds out 1, less than one window of 10 + 1.
    assert_bad_input(
        d.path(),
        &["train", "--corpus", "c.txt", "--val-frac", "0.01"],
        &["c.txt", "--val-frac 0.01", "held out for validation"],
    );
    assert_bad_input(
        d.path(),
        &["train", "--corpus", "c.txt", "--val-frac", "0.95"],
        &["c.txt", "left for training"],
    );
}

#[test]
fn stream_dataset_needs_one_chunk() {
    let d = workdir(&[("c.txt", TEXT)]);
    assert_bad_input(
        d.path(),
        &["train", "--corpus", "c.txt", "--dataset", "stream"],
        &["c.txt", "too short", "128 streams × 50 steps"],
    );
}

#[test]
fn checkpoint_dir_that_is_a_file() {
    let d = workdir(&[("c.txt", TEXT), ("run", b"not a directory")]);
    assert_bad_input(
        d.path(),
        &["train", "--corpus", "c.txt", "--checkpoint-dir", "run"],
        &["--checkpoint-dir", "run", "is a file"],
    );
}

#[test]
fn generate_flags() {
    let d = workdir(&[("run/placeholder", b"")]);
    for (args, needles) in [
        (&["--temperature", "0"][..], &["--temperature", "> 0"][..]),
        (&["--temperature", "-1"][..], &["--temperature", "> 0"][..]),
        (&["--temperature", "nan"][..], &["--temperature"][..]),
        (&["--top-p", "0"][..], &["--top-p", "(0, 1]"][..]),
        (&["--top-p", "1.5"][..], &["--top-p", "(0, 1]"][..]),
        (&["--top-k", "0"][..], &["--top-k", "found 0"][..]),
        (&["--length", "0"][..], &["--length", "found 0"][..]),
        (&["--prime", ""][..], &["--prime"][..]),
        (
            &["--greedy", "--temperature", "0.5"][..],
            &["--greedy", "--temperature"][..],
        ),
    ] {
        let mut all = vec!["generate", "--checkpoint", "run"];
        all.extend_from_slice(args);
        assert_bad_input(d.path(), &all, needles);
    }
    assert_bad_input(d.path(), &["generate"], &["--checkpoint"]);
    assert_bad_input(
        d.path(),
        &["generate", "--checkpoint", "missing-run"],
        &["--checkpoint", "missing-run", "no such directory"],
    );
    assert_bad_input(
        d.path(),
        &["generate", "--checkpoint", "run/placeholder"],
        &["run/placeholder", "is a file"],
    );
}

#[test]
fn eval_inputs() {
    let d = workdir(&[("run/placeholder", b""), ("c.txt", TEXT), ("e.txt", b"")]);
    assert_bad_input(
        d.path(),
        &["eval", "--checkpoint", "missing", "--corpus", "c.txt"],
        &["--checkpoint", "missing", "no such directory"],
    );
    assert_bad_input(
        d.path(),
        &["eval", "--checkpoint", "run", "--corpus", "nope.txt"],
        &["nope.txt", "no such file"],
    );
    assert_bad_input(
        d.path(),
        &["eval", "--checkpoint", "run", "--corpus", "e.txt"],
        &["e.txt", "empty"],
    );
    assert_bad_input(d.path(), &["eval", "--checkpoint", "run"], &["--corpus"]);
}
