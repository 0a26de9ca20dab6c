//! Mid-epoch checkpoints through the built binary: a run stopped inside an epoch (`--max-steps`)
//! and continued with `--resume` ends bit-identical to a run that never stopped — for shuffled
//! windows and for truncated-BPTT streams, whose carried state the checkpoint must keep.

use std::path::Path;
use std::process::Output;

use crate::common::{TEXT, last_step, read, run_in};

fn recur(dir: &Path, args: &[&str]) -> Output {
    let out = run_in(dir, args);
    assert!(
        out.status.success(),
        "recur {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Per-epoch training losses from `metrics.jsonl` (wall times differ between runs).
fn losses(run: &Path) -> Vec<String> {
    String::from_utf8(read(&run.join("metrics.jsonl")))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!("{} {} {}", v["epoch"], v["step"], v["train_loss"])
        })
        .collect()
}

/// Trains `extra` flags for 2 epochs straight, and again stopped at `stop` steps and resumed;
/// the two must end with the same bytes. Returns the stopped run's `state.json` at the stop.
fn stop_and_resume(extra: &[&str], stop: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.txt"), TEXT.repeat(4)).unwrap();
    let base = |run: &'static str| {
        let mut a = vec![
            "train",
            "--corpus",
            "c.txt",
            "--checkpoint-dir",
            run,
            "--rnn-size",
            "8",
            "--max-epochs",
            "2",
            "--seed",
            "5",
            "--threads",
            "1",
        ];
        a.extend_from_slice(extra);
        a
    };
    recur(dir.path(), &base("straight"));

    let mut first = base("stopped");
    first.extend_from_slice(&["--max-steps", stop, "--checkpoint-every", "7"]);
    let out = recur(dir.path(), &first);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("--max-steps"), "{stdout}");
    let stopped = dir.path().join("stopped");
    let state: serde_json::Value =
        serde_json::from_slice(&read(&last_step(&stopped).join("state.json"))).unwrap();

    let mut again = base("stopped");
    again.push("--resume");
    recur(dir.path(), &again);

    let straight = dir.path().join("straight");
    for file in ["model.safetensors", "optimizer.safetensors"] {
        assert!(
            read(&last_step(&straight).join(file)) == read(&last_step(&stopped).join(file)),
            "{file} differs after resuming from a mid-epoch checkpoint"
        );
    }
    assert_eq!(losses(&straight), losses(&stopped));
    state
}

#[test]
fn windows_resume_mid_epoch_bit_identically() {
    // 733 windows of 10 steps in batches of 32: 23 batches per epoch; stop in epoch 2.
    let state = stop_and_resume(&["--batch-size", "32"], "28");
    assert_eq!(state["optimizer_steps"], 28);
    assert_eq!(state["progress"]["epoch"], 2);
    assert_eq!(state["progress"]["batches_done"], 5);
}

#[test]
fn streams_resume_mid_epoch_with_their_carried_state() {
    let state = stop_and_resume(
        &[
            "--model",
            "lstm",
            "--dataset",
            "stream",
            "--seq-length",
            "8",
            "--batch-size",
            "4",
        ],
        "5",
    );
    assert_eq!(state["progress"]["epoch"], 1);
    assert_eq!(state["progress"]["batches_done"], 5);
}

#[test]
fn embedding_and_output_dropout_with_lr_decay_resume_bit_identically() {
    // Masks from (seed, step) and a step-indexed decay: a stop inside epoch 2 (after one decay)
    // resumes to the same bytes.
    let state = stop_and_resume(
        &[
            "--model",
            "gru",
            "--embedding-size",
            "6",
            "--embed-dropout",
            "0.3",
            "--output-dropout",
            "0.4",
            "--lr-decay",
            "0.5",
            "--batch-size",
            "32",
        ],
        "28",
    );
    assert_eq!(state["progress"]["epoch"], 2);
}
