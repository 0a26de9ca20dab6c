//! `recur seq2seq train|decode` and `recur cloze` end to end on tiny configurations: a saved model
//! decodes, the same seed prints the same report, and bad input exits with code 2 and one line on
//! stderr.

use std::process::Output;

fn recur(args: &[&str]) -> Output {
    crate::common::recur().args(args).output().unwrap()
}

const TINY: [&str; 17] = [
    "seq2seq",
    "train",
    "--max-len",
    "3",
    "--hidden",
    "8",
    "--embed",
    "4",
    "--batch-size",
    "8",
    "--steps",
    "4",
    "--eval-every",
    "2",
    "--held-out",
    "10",
    "--threads",
];

/// The report without what may differ between two runs of one seed: timings, the thread count
/// and the saved path.
fn comparable(stdout: &[u8]) -> String {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| !l.starts_with("saved "))
        .map(|l| {
            let l = l.split("; training ").next().unwrap_or_default();
            let l = match l.rsplit_once("  ") {
                Some((head, last)) if last.ends_with(" s") => head,
                _ => l,
            };
            l.split(", ")
                .filter(|f| !f.starts_with("threads "))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn trains_saves_decodes_and_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("run");
    let mut args = TINY.to_vec();
    args.extend(["1", "--out", out_dir.to_str().unwrap()]);
    let first = recur(&args);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(text.contains("exact match greedy"), "{text}");
    assert!(out_dir.join("model.safetensors").is_file());
    // A second --out into the same directory is refused; the same seed on 2 threads prints the
    // same figures.
    let again = recur(&args);
    assert_eq!(again.status.code(), Some(2));
    let mut args = TINY.to_vec();
    args.push("2");
    let second = recur(&args);
    assert!(second.status.success());
    let (a, b) = (comparable(&first.stdout), comparable(&second.stdout));
    assert!(a.contains("exact match greedy"), "{a}");
    assert_eq!(a, b, "one seed, 1 and 2 threads");

    let run = out_dir.to_str().unwrap();
    for beam in ["1", "3"] {
        let out = recur(&["seq2seq", "decode", "--run", run, "--beam", beam, "12", "3"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.starts_with("12\t"), "{text}");
    }
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let cases: Vec<Vec<&str>> = vec![
        vec!["seq2seq", "train", "--min-len", "5", "--max-len", "2"],
        vec!["seq2seq", "train", "--teacher-forcing", "1.5"],
        vec![
            "seq2seq",
            "train",
            "--bidirectional",
            "--bridge",
            "identity",
        ],
        vec![
            "seq2seq",
            "decode",
            "--run",
            missing.to_str().unwrap(),
            "12",
        ],
        vec!["cloze", "--corpus", missing.to_str().unwrap()],
        vec!["cloze", "--held-out", "1.0"],
    ];
    for case in cases {
        let out = recur(&case);
        assert_eq!(out.status.code(), Some(2), "{case:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{case:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{case:?}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
