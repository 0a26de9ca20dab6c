//! `recur ngram` and `recur diagnose` through the built binary: a small good run of each, and bad
//! input (exit code 2, one line on stderr, nothing written).

use std::path::Path;

use crate::common::{run_in as recur, text};

const CORPUS: &str = "the cat sat on the mat\nthe dog sat on the log\nthe cat saw the dog\n\
                      a dog sat on a cat\nthe mat saw a log\n";

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn ngram_scores_the_held_out_split_and_samples() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.txt"), CORPUS).unwrap();
    let args = [
        "ngram",
        "--task",
        "word",
        "--corpus",
        "c.txt",
        "--order",
        "1,2,3",
        "--smoothing",
        "kn,add-k",
        "--val-frac",
        "0.3",
        "--sample",
        "6",
        "--seed",
        "5",
    ];
    let out = recur(dir.path(), &args);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // 23 line-prefix samples; round(0.3 · 23) = 7 held out.
    assert!(stdout.contains("7 line prefixes"), "{stdout}");
    let rows = |name: &str| {
        stdout
            .lines()
            .filter(|l| !l.starts_with("best:") && l.contains(name))
            .count()
    };
    assert_eq!(rows("  kn "), 3, "{stdout}");
    assert_eq!(rows("add-k(k=1)"), 3, "{stdout}");
    assert!(stdout.contains("best:"), "{stdout}");
    let sample = stdout
        .lines()
        .find_map(|l| l.strip_prefix("sample:"))
        .unwrap();
    assert_eq!(sample.split_whitespace().count(), 6, "{sample}");
    // Deterministic for a seed.
    assert_eq!(text(&recur(dir.path(), &args)).0, stdout);
    // Nothing but the corpus in the directory: the n-gram writes no cache.
    assert_eq!(entries(dir.path()), vec!["c.txt".to_string()]);
}

#[test]
fn ngram_bad_input_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.txt"), CORPUS).unwrap();
    for (args, want) in [
        (vec!["--order", "0"], "expected n ≥ 1, found 0"),
        (
            vec!["--smoothing", "add-k", "--k", "0"],
            "expected a finite k > 0, found 0",
        ),
        (vec!["--val-frac", "0"], "--val-frac"),
        (vec!["--order", "40"], "expected n ≤ 32"),
    ] {
        let mut full = vec!["ngram", "--task", "word", "--corpus", "c.txt"];
        full.extend(&args);
        let out = recur(dir.path(), &full);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
    assert_eq!(entries(dir.path()), vec!["c.txt".to_string()]);
}

#[test]
fn diagnose_writes_profiles_and_rejects_bad_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let out = recur(
        dir.path(),
        &[
            "diagnose",
            "--steps",
            "12",
            "--hidden",
            "4",
            "--batch",
            "2",
            "--train-steps",
            "3",
            "--out",
            "gf",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // 3 cells × 2 gains × 3 stages.
    assert_eq!(
        stdout.lines().filter(|l| l.contains(" g=")).count(),
        18,
        "{stdout}"
    );
    assert_eq!(
        entries(&dir.path().join("gf")),
        [
            "gradient-flow-init.svg",
            "gradient-flow-trained-clipped.svg",
            "gradient-flow-trained.svg",
            "gradient-flow.csv",
            "gradient-flow.json",
        ]
    );
    let csv = std::fs::read_to_string(dir.path().join("gf/gradient-flow.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 18 * 12);

    for args in [
        vec!["diagnose", "--steps", "1", "--out", "bad"],
        vec!["diagnose", "--hidden", "0", "--out", "bad"],
        vec!["diagnose", "--recurrent-gain", "-1", "--out", "bad"],
    ] {
        let out = recur(dir.path(), &args);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
    assert!(!dir.path().join("bad").exists());
}
