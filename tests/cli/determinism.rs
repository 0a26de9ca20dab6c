//! Determinism through the built binary: the same seed gives bit-identical weights (and optimiser
//! state) for `--threads 1` and `--threads 2` and for a repeated run, for tiny SimpleRNN, LSTM and
//! GRU character models, on every ISA path this CPU has (`RECUR_ISA`).
//!
//! The guarantee is per ISA path: the scalar, AVX2 and AVX-512 kernels round differently (FMA,
//! vector widths), so weights trained on different paths may differ in the last bits. README.md
//! ("Determinism") states it.

use std::path::Path;

use recur::kernels::Isa;

use crate::common::{TEXT, recur};

/// Trains in `dir/<name>` and returns the bytes of the final model and optimiser files.
fn train(
    dir: &Path,
    name: &str,
    isa: Isa,
    threads: &str,
    seed: &str,
    extra: &[&str],
) -> (Vec<u8>, Vec<u8>) {
    let mut args = vec![
        "train",
        "--corpus",
        "c.txt",
        "--checkpoint-dir",
        name,
        "--rnn-size",
        "8",
        "--batch-size",
        "16",
        "--max-epochs",
        "2",
        "--seed",
        seed,
        "--threads",
        threads,
    ];
    args.extend_from_slice(extra);
    let out = recur()
        .args(&args)
        .current_dir(dir)
        .env("RECUR_ISA", isa.name())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "recur {args:?} on {isa}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = dir.join(name);
    let step = std::fs::read_to_string(run.join("last")).unwrap();
    let step = run.join(step.trim());
    (
        std::fs::read(step.join("model.safetensors")).unwrap(),
        std::fs::read(step.join("optimizer.safetensors")).unwrap(),
    )
}

/// One model configuration on every available ISA: threads 1, threads 2, and threads 1 again.
fn check(extra: &[&str]) {
    for isa in [Isa::Scalar, Isa::Avx2, Isa::Avx512] {
        if !isa.is_available() {
            println!("skipping {isa}: this CPU lacks it");
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c.txt"), TEXT.repeat(3)).unwrap();
        let one = train(dir.path(), "t1", isa, "1", "11", extra);
        let two = train(dir.path(), "t2", isa, "2", "11", extra);
        let again = train(dir.path(), "t1-again", isa, "1", "11", extra);
        assert!(
            one.0 == two.0,
            "{extra:?} on {isa}: weights differ between 1 and 2 threads"
        );
        assert!(
            one.1 == two.1,
            "{extra:?} on {isa}: optimiser state differs between 1 and 2 threads"
        );
        assert!(one == again, "{extra:?} on {isa}: a repeated run differs");
        println!(
            "{extra:?} on {isa}: bit-identical ({} weight bytes)",
            one.0.len()
        );
    }
}

#[test]
fn simple_rnn_windows() {
    check(&["--model", "rnn"]);
}

#[test]
fn lstm_two_layers_with_dropout() {
    check(&["--model", "lstm", "--num-layers", "2", "--dropout", "0.3"]);
}

#[test]
fn gru_truncated_bptt_streams() {
    check(&["--model", "gru", "--dataset", "stream", "--seq-length", "8"]);
}

#[test]
fn word_lstm_with_embedding() {
    check(&[
        "--task",
        "word",
        "--model",
        "lstm",
        "--embedding-size",
        "6",
        "--val-frac",
        "0.2",
    ]);
}

#[test]
fn different_seeds_differ() {
    // The comparison above can fail: another seed gives other weights.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.txt"), TEXT.repeat(3)).unwrap();
    let isa = Isa::active();
    let a = train(dir.path(), "a", isa, "1", "11", &["--model", "rnn"]);
    let b = train(dir.path(), "b", isa, "1", "12", &["--model", "rnn"]);
    assert!(a.0 != b.0, "seeds 11 and 12 gave the same weights");
}
