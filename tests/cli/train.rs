//! `recur train` through the built binary on good input: the data is prepared and cached in the
//! run directory, re-runs map the cache, a changed corpus rebuilds it, and the defaults
//! reproduce the seed experiments' data (when ../shared/data is present).
//!
//! Summaries are checked with `--dry-run` (prepare, print the plan, stop); training itself runs
//! for one epoch on tiny corpora, then `generate`, `eval` and `--resume` use its checkpoint.

use std::path::Path;

use crate::common::{run_in as recur, text};

const CORPUS: &str = "The Cat sat on the mat.\n\nThe dog sat on the log.\n";

#[test]
fn train_prepares_and_caches_the_data() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.txt"), CORPUS).unwrap();
    let args = [
        "train",
        "--corpus",
        "c.txt",
        "--checkpoint-dir",
        "run",
        "--dry-run",
    ];

    let first = recur(dir.path(), &args);
    let (stdout, stderr) = text(&first);
    assert_eq!(first.status.code(), Some(0), "{stderr}");
    // "the cat sat on the mat. the dog sat on the log." = 47 characters, 37 windows.
    assert!(stdout.contains("47 characters"), "{stdout}");
    assert!(stdout.contains("37 windows of 10 steps"), "{stdout}");
    assert!(stdout.contains("built: no cache yet"), "{stdout}");
    assert!(stdout.contains("dry run"), "{stdout}");
    assert!(stderr.is_empty(), "{stderr}");
    assert!(
        !dir.path().join("run/last").exists(),
        "a dry run trains nothing"
    );
    assert!(dir.path().join("run/tokens.bin").is_file());

    let second = recur(dir.path(), &args);
    let (stdout, _) = text(&second);
    assert!(stdout.contains("(reused)"), "{stdout}");
    assert!(stdout.contains("37 windows of 10 steps"), "{stdout}");

    // Another tokeniser option, then another corpus: rebuilt, and the summary follows.
    let mut keep_case = args.to_vec();
    keep_case.push("--lowercase=false");
    let (stdout, _) = text(&recur(dir.path(), &keep_case));
    assert!(
        stdout.contains("built: tokeniser options changed"),
        "{stdout}"
    );
    std::fs::write(
        dir.path().join("c.txt"),
        format!("{CORPUS}And then it ran away.\n"),
    )
    .unwrap();
    let (stdout, _) = text(&recur(dir.path(), &args));
    assert!(stdout.contains("built: "), "{stdout}");
    assert!(stdout.contains("69 characters"), "{stdout}");
}

#[test]
fn word_task_with_validation_split_and_vocabulary_cap() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("w.txt"), CORPUS.repeat(10)).unwrap();
    let out = recur(
        dir.path(),
        &[
            "train",
            "--task",
            "word",
            "--corpus",
            "w.txt",
            "--checkpoint-dir",
            "run",
            "--max-vocab",
            "6",
            "--val-frac",
            "0.1",
            "--dry-run",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // 20 lines of 6 words: 5 prefixes each = 100 samples, 10 held out.
    assert!(
        stdout.contains("train: 90 line prefixes padded to 5 steps"),
        "{stdout}"
    );
    assert!(
        stdout.contains("validation: 10 line prefixes padded to 5 steps"),
        "{stdout}"
    );
    assert!(
        stdout.contains("6 word ids with 0 = padding, 1 = <unk>"),
        "{stdout}"
    );
}

#[test]
fn stream_dataset_summary() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.txt"), CORPUS.repeat(20)).unwrap();
    let out = recur(
        dir.path(),
        &[
            "train",
            "--corpus",
            "c.txt",
            "--checkpoint-dir",
            "run",
            "--dataset",
            "stream",
            "--batch-size",
            "4",
            "--seq-length",
            "8",
            "--keep-lines",
            "--dry-run",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // Keep-lines: 20 × 49 bytes = 980 characters; ⌊979 / 4⌋ = 244 per stream, 30 chunks of 8.
    assert!(stdout.contains("980 characters"), "{stdout}");
    assert!(
        stdout.contains("30 chunks of 4 streams × 8 steps"),
        "{stdout}"
    );
}

/// `../shared/data` relative to the package root, where `cargo test` runs.
fn shared_data() -> Option<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if dir.join("alice.txt").is_file() && dir.join("sherlock.txt").is_file() {
        Some(dir)
    } else {
        println!("skipping: ../shared/data/{{alice,sherlock}}.txt not found");
        None
    }
}

#[test]
fn defaults_reproduce_the_seed_experiments_data() {
    if shared_data().is_none() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = tempfile::tempdir().unwrap();
    let char_run = run.path().join("char");
    let out = recur(
        root,
        &[
            "train",
            "--checkpoint-dir",
            char_run.to_str().unwrap(),
            "--dry-run",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("alice.txt (151095 bytes; SHA-256 matches"),
        "{stdout}"
    );
    assert!(stdout.contains("42 symbols"), "{stdout}");
    assert!(stdout.contains("140159 windows of 10 steps"), "{stdout}");
    assert!(
        stdout.contains("one-hot(42) → rnn_tanh 128 × 1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("RMSprop lr 0.001, batch 128, 25 epochs"),
        "{stdout}"
    );
    assert!(!stderr.contains("warning"), "{stderr}");

    let word_run = run.path().join("word");
    let out = recur(
        root,
        &[
            "train",
            "--task",
            "word",
            "--checkpoint-dir",
            word_run.to_str().unwrap(),
            "--dry-run",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("8639 word ids"), "{stdout}");
    assert!(stdout.contains("(longest 20)"), "{stdout}");
    assert!(
        stdout.contains("98675 line prefixes padded to 19 steps"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Embedding(8639, 100) → lstm 150 × 1"),
        "{stdout}"
    );
    assert!(stdout.contains("Adam lr 0.001, batch 32"), "{stdout}");
}

#[test]
fn help_has_examples_and_isa_runs() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["train", "--help"][..],
        &["generate", "--help"][..],
    ] {
        let out = recur(dir.path(), args);
        let (stdout, _) = text(&out);
        assert_eq!(out.status.code(), Some(0));
        assert!(stdout.contains("Examples:"), "{args:?}: {stdout}");
    }
    let (stdout, _) = text(&recur(dir.path(), &["train", "--help"]));
    for flag in [
        "--task",
        "--corpus",
        "--model",
        "--rnn-size",
        "--num-layers",
        "--seq-length",
        "--batch-size",
        "--learning-rate",
        "--optimizer",
        "--grad-clip",
        "--clip-norm",
        "--dropout",
        "--max-epochs",
        "--seed",
        "--threads",
        "--checkpoint-dir",
        "--resume",
        "--max-vocab",
        "--ascii-only",
        "--val-frac",
    ] {
        assert!(stdout.contains(flag), "train --help lacks {flag}");
    }
    let out = recur(dir.path(), &["isa"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!out.stdout.is_empty());
    // Nothing was written by any of these.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn train_then_generate_eval_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.txt"), CORPUS.repeat(30)).unwrap();
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--corpus",
            "c.txt",
            "--checkpoint-dir",
            "run",
            "--rnn-size",
            "16",
            "--batch-size",
            "32",
            "--threads",
            "1",
        ];
        args.extend_from_slice(extra);
        recur(dir.path(), &args)
    };
    let out = train(&["--max-epochs", "1"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("epoch   1: loss"), "{stdout}");
    for file in ["last", "best", "metrics.jsonl", "loss.svg", "tokens.bin"] {
        assert!(
            dir.path().join("run").join(file).is_file(),
            "run/{file} missing"
        );
    }

    // Training again into the same directory without --resume would overwrite the run.
    let out = train(&["--max-epochs", "1"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");

    // Resuming with another model shape is refused by name.
    let out = train(&["--max-epochs", "2", "--resume", "--model", "lstm"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--resume") && stderr.contains("lstm"),
        "{stderr}"
    );

    // Resuming continues at epoch 2.
    let out = train(&["--max-epochs", "2", "--resume"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("epoch   2: loss") && !stdout.contains("epoch   1:"),
        "{stdout}"
    );
    let metrics = std::fs::read_to_string(dir.path().join("run/metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 2, "{metrics}");

    let out = recur(
        dir.path(),
        &[
            "generate",
            "--checkpoint",
            "run",
            "--prime",
            "the cat ",
            "--length",
            "20",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.starts_with("the cat ") && stdout.trim_end_matches('\n').chars().count() == 28,
        "{stdout:?}"
    );

    let out = recur(
        dir.path(),
        &["eval", "--checkpoint", "run", "--corpus", "c.txt"],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("perplexity") && stdout.contains("bits per character"),
        "{stdout}"
    );
}
