//! The bad-input table: every bad input of the training and interoperability issues that the
//! `recur` binary can be given today, one row each. Every row runs the built binary in a fresh
//! working directory and asserts
//!
//! - the exit code (2: bad input),
//! - that stderr is one line that names the problem (the flag or file, and what is wrong),
//! - that no file was created, removed or changed: the tree (paths, kinds, sizes, content hashes)
//!   is snapshotted before and after.
//!
//! Rows that need a trained run copy a fixture trained once per test process (a one-epoch
//! SimpleRNN of 8 units, and an LSTM of the same size for the "another architecture" rows).
//! README.md ("Reliability") lists the table; keep the two in step.

use std::collections::BTreeMap;
use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A small text: 61 distinct characters would be too many for the windows of a tiny model, so
/// plain lower-case English.
const TEXT: &str = "the quick brown fox jumps over the lazy dog while the cat sleeps.\n\
                    a stitch in time saves nine, and the early bird catches the worm.\n\
                    all that glitters is not gold; still waters run deep.\n";

fn recur() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_recur"));
    c.env_remove("RECUR_DATA").env_remove("RECUR_ISA");
    c
}

// ---------------------------------------------------------------------------------------------
// Snapshots
// ---------------------------------------------------------------------------------------------

/// What a path is, for the snapshot: a directory, or a file's size and content hash, or a link.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    Dir,
    File { len: u64, hash: u64 },
    Other,
}

fn content_hash(bytes: &[u8]) -> u64 {
    // FNV-1a: any change of content changes it with overwhelming probability.
    let mut h = std::hash::DefaultHasher::new();
    h.write(bytes);
    h.finish()
}

/// Every path under `root` (relative) with its kind, size and content hash.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            let e = if kind.is_dir() {
                stack.push(path.clone());
                Entry::Dir
            } else if kind.is_file() {
                match std::fs::read(&path) {
                    Ok(bytes) => Entry::File {
                        len: bytes.len() as u64,
                        hash: content_hash(&bytes),
                    },
                    // A deliberately unreadable file: its length stands in.
                    Err(_) => Entry::File {
                        len: entry.metadata().unwrap().len(),
                        hash: 0,
                    },
                }
            } else {
                Entry::Other
            };
            out.insert(rel, e);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// Trained runs shared by the rows: `rnn/` and `lstm/` (run directories) and the corpus.
fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("bad_input_table-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("c.txt"), TEXT.repeat(4)).unwrap();
        for model in ["rnn", "lstm"] {
            let out = recur()
                .args([
                    "train",
                    "--corpus",
                    "c.txt",
                    "--checkpoint-dir",
                    model,
                    "--model",
                    model,
                    "--rnn-size",
                    "8",
                    "--batch-size",
                    "32",
                    "--max-epochs",
                    "1",
                    "--threads",
                    "1",
                ])
                .current_dir(&dir)
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "training the {model} fixture failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        dir
    })
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Copies the trained run `model` (`rnn` or `lstm`) to `dir/run` and the corpus to `dir/c.txt`.
fn trained(dir: &Path, model: &str) {
    copy_tree(&fixtures().join(model), &dir.join("run"));
    std::fs::copy(fixtures().join("c.txt"), dir.join("c.txt")).unwrap();
}

/// The step directory the run's `last` pointer names.
fn last_step(dir: &Path) -> PathBuf {
    let name = std::fs::read_to_string(dir.join("run/last")).unwrap();
    dir.join("run").join(name.trim())
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

fn corpus(dir: &Path) {
    write(dir, "c.txt", TEXT.as_bytes());
}

/// A safetensors file of one F32 tensor per `(name, shape, values)`.
fn safetensors(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let mut header = String::from("{");
    let mut data = Vec::new();
    for (i, (name, shape, values)) in tensors.iter().enumerate() {
        let start = data.len();
        data.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            r#""{name}":{{"dtype":"F32","shape":{shape:?},"data_offsets":[{start},{}]}}"#,
            data.len()
        ));
    }
    header.push('}');
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&data);
    out
}

/// Reads the run's model.safetensors with the engine, applies `edit`, writes it back.
fn edit_weights(dir: &Path, edit: impl FnOnce(&mut recur::engine::checkpoint::TensorStore)) {
    use recur::engine::checkpoint::{LoadOptions, load_safetensors, serialize_safetensors};
    let path = last_step(dir).join("model.safetensors");
    let (mut tensors, meta) = load_safetensors(&path, LoadOptions::default()).unwrap();
    edit(&mut tensors);
    std::fs::write(&path, serialize_safetensors(&tensors, &meta)).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The check
// ---------------------------------------------------------------------------------------------

/// Sets up a fresh working directory with `setup`, runs `recur args` in it, and checks exit code
/// 2, one line on stderr containing every needle, and an unchanged tree.
fn check(setup: fn(&Path), args: &[&str], needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let before = snapshot(dir.path());
    let out = recur().args(args).current_dir(dir.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "recur {args:?}: expected exit code 2\nstderr: {stderr}\nstdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "recur {args:?}: expected one line on stderr, got:\n{stderr}"
    );
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "recur {args:?}: stderr should mention {needle:?}:\n{stderr}"
        );
    }
    let after = snapshot(dir.path());
    if after != before {
        let changed: Vec<String> = before
            .keys()
            .chain(after.keys())
            .filter(|k| before.get(*k) != after.get(*k))
            .map(|k| k.display().to_string())
            .collect();
        panic!("recur {args:?}: files were created, removed or changed: {changed:?}");
    }
}

/// One row: `row!(test_name, setup, [args…], [needles…]);`
macro_rules! row {
    ($name:ident, $setup:expr, [$($arg:expr),* $(,)?], [$($needle:expr),* $(,)?]) => {
        #[test]
        fn $name() {
            check($setup, &[$($arg),*], &[$($needle),*]);
        }
    };
}

fn nothing(_: &Path) {}

// ---- recur train: the corpus -------------------------------------------------------------

row!(
    train_missing_corpus,
    nothing,
    ["train", "--corpus", "nope.txt"],
    ["nope.txt", "no such file"]
);

row!(
    train_empty_corpus,
    |d| write(d, "e.txt", b""),
    ["train", "--corpus", "e.txt"],
    ["e.txt", "empty"]
);

row!(
    train_directory_as_corpus,
    |d| write(d, "texts/a.txt", TEXT.as_bytes()),
    ["train", "--corpus", "texts"],
    ["texts", "is a directory"]
);

row!(
    train_binary_corpus,
    |d| write(d, "model.bin", b"\x7fELF\x02\x01\x01\x00\x00binary"),
    ["train", "--corpus", "model.bin"],
    ["model.bin", "binary", "NUL byte"]
);

row!(
    train_fifo_as_corpus,
    |d| {
        let status = Command::new("mkfifo").arg(d.join("pipe")).status().unwrap();
        assert!(status.success());
    },
    ["train", "--corpus", "pipe"],
    ["pipe", "not a regular file"]
);

row!(
    train_invalid_utf8_unicode_mode,
    |d| write(d, "l1.txt", b"the cat sat on the mat\ncaf\xe9 au lait\n"),
    ["train", "--corpus", "l1.txt", "--ascii-only=false"],
    ["l1.txt", "invalid UTF-8", "line 2, column 4"]
);

row!(
    train_invalid_utf8_word_task,
    |d| write(d, "l1.txt", b"the cat sat on the mat\ncaf\xe9 au lait\n"),
    ["train", "--task", "word", "--corpus", "l1.txt"],
    ["l1.txt", "invalid UTF-8", "line 2"]
);

row!(
    train_corpus_shorter_than_a_window,
    |d| write(d, "s.txt", b"abc\n"),
    ["train", "--corpus", "s.txt"],
    ["s.txt", "too short"]
);

row!(
    train_corpus_emptied_by_preprocessing,
    |d| write(d, "g.txt", "αβγδεζ\n\u{2014}\n".as_bytes()),
    ["train", "--corpus", "g.txt"],
    ["g.txt", "no characters left"]
);

row!(
    train_word_corpus_without_a_two_word_line,
    |d| write(d, "w.txt", b"hello\nworld\n"),
    ["train", "--task", "word", "--corpus", "w.txt"],
    ["w.txt", "too short"]
);

// ---- recur train: flags ------------------------------------------------------------------

row!(
    train_rnn_size_zero,
    corpus,
    ["train", "--corpus", "c.txt", "--rnn-size", "0"],
    ["--rnn-size", "found 0"]
);

row!(
    train_rnn_size_negative,
    corpus,
    ["train", "--corpus", "c.txt", "--rnn-size", "-3"],
    ["--rnn-size", "positive whole number"]
);

row!(
    train_seq_length_zero,
    corpus,
    ["train", "--corpus", "c.txt", "--seq-length", "0"],
    ["--seq-length", "found 0"]
);

row!(
    train_batch_size_zero,
    corpus,
    ["train", "--corpus", "c.txt", "--batch-size", "0"],
    ["--batch-size", "found 0"]
);

row!(
    train_num_layers_zero,
    corpus,
    ["train", "--corpus", "c.txt", "--num-layers", "0"],
    ["--num-layers", "found 0"]
);

row!(
    train_max_epochs_zero,
    corpus,
    ["train", "--corpus", "c.txt", "--max-epochs", "0"],
    ["--max-epochs", "found 0"]
);

row!(
    train_threads_zero,
    corpus,
    ["train", "--corpus", "c.txt", "--threads", "0"],
    ["--threads", "found 0"]
);

row!(
    train_learning_rate_negative,
    corpus,
    ["train", "--corpus", "c.txt", "--learning-rate", "-0.01"],
    ["--learning-rate", "> 0"]
);

row!(
    train_learning_rate_zero,
    corpus,
    ["train", "--corpus", "c.txt", "--learning-rate", "0"],
    ["--learning-rate", "> 0"]
);

row!(
    train_learning_rate_nan,
    corpus,
    ["train", "--corpus", "c.txt", "--learning-rate", "nan"],
    ["--learning-rate", "> 0"]
);

row!(
    train_learning_rate_infinite,
    corpus,
    ["train", "--corpus", "c.txt", "--learning-rate", "inf"],
    ["--learning-rate", "> 0"]
);

row!(
    train_grad_clip_zero,
    corpus,
    ["train", "--corpus", "c.txt", "--grad-clip", "0"],
    ["--grad-clip", "> 0"]
);

row!(
    train_dropout_one,
    corpus,
    ["train", "--corpus", "c.txt", "--dropout", "1"],
    ["--dropout", "[0, 1)"]
);

row!(
    train_val_frac_nan,
    corpus,
    ["train", "--corpus", "c.txt", "--val-frac", "nan"],
    ["--val-frac", "[0, 1)"]
);

row!(
    train_unknown_model,
    corpus,
    ["train", "--corpus", "c.txt", "--model", "transformer"],
    ["--model", "transformer"]
);

row!(
    train_checkpoint_dir_is_a_file,
    |d| {
        corpus(d);
        write(d, "run", b"x");
    },
    ["train", "--corpus", "c.txt", "--checkpoint-dir", "run"],
    ["--checkpoint-dir", "is a file"]
);

// ---- recur train --resume -----------------------------------------------------------------

row!(
    resume_without_a_run_directory,
    corpus,
    [
        "train",
        "--corpus",
        "c.txt",
        "--checkpoint-dir",
        "run",
        "--resume"
    ],
    ["--resume", "run"]
);

row!(
    train_into_an_existing_run_without_resume,
    |d| trained(d, "rnn"),
    [
        "train",
        "--corpus",
        "c.txt",
        "--checkpoint-dir",
        "run",
        "--model",
        "rnn",
        "--rnn-size",
        "8"
    ],
    ["--checkpoint-dir", "--resume"]
);

row!(
    resume_with_another_vocabulary,
    |d| {
        trained(d, "rnn");
        write(
            d,
            "other.txt",
            TEXT.to_uppercase().replace('.', "!").as_bytes(),
        );
    },
    [
        "train",
        "--corpus",
        "other.txt",
        "--ascii-only",
        "--lowercase=false",
        "--checkpoint-dir",
        "run",
        "--model",
        "rnn",
        "--rnn-size",
        "8",
        "--max-epochs",
        "2",
        "--resume"
    ],
    ["--resume", "vocabulary"]
);

row!(
    resume_with_another_hidden_size,
    |d| trained(d, "rnn"),
    [
        "train",
        "--corpus",
        "c.txt",
        "--checkpoint-dir",
        "run",
        "--model",
        "rnn",
        "--rnn-size",
        "16",
        "--max-epochs",
        "2",
        "--resume"
    ],
    ["--resume", "16"]
);

row!(
    resume_with_another_cell,
    |d| trained(d, "rnn"),
    [
        "train",
        "--corpus",
        "c.txt",
        "--checkpoint-dir",
        "run",
        "--model",
        "gru",
        "--rnn-size",
        "8",
        "--max-epochs",
        "2",
        "--resume"
    ],
    ["--resume", "gru"]
);

row!(
    resume_from_a_truncated_checkpoint,
    |d| {
        trained(d, "rnn");
        let p = last_step(d).join("model.safetensors");
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    },
    [
        "train",
        "--corpus",
        "c.txt",
        "--checkpoint-dir",
        "run",
        "--model",
        "rnn",
        "--rnn-size",
        "8",
        "--max-epochs",
        "2",
        "--resume"
    ],
    ["model.safetensors", "not a safetensors file"]
);

// ---- recur generate: flags ---------------------------------------------------------------

row!(
    generate_temperature_zero,
    |d| trained(d, "rnn"),
    ["generate", "--checkpoint", "run", "--temperature", "0"],
    ["--temperature", "> 0"]
);

row!(
    generate_temperature_negative,
    |d| trained(d, "rnn"),
    ["generate", "--checkpoint", "run", "--temperature", "-1"],
    ["--temperature", "> 0"]
);

row!(
    generate_temperature_nan,
    |d| trained(d, "rnn"),
    ["generate", "--checkpoint", "run", "--temperature", "nan"],
    ["--temperature"]
);

row!(
    generate_top_p_out_of_range,
    |d| trained(d, "rnn"),
    ["generate", "--checkpoint", "run", "--top-p", "1.5"],
    ["--top-p", "(0, 1]"]
);

row!(
    generate_top_k_zero,
    |d| trained(d, "rnn"),
    ["generate", "--checkpoint", "run", "--top-k", "0"],
    ["--top-k", "found 0"]
);

row!(
    generate_length_zero,
    |d| trained(d, "rnn"),
    ["generate", "--checkpoint", "run", "--length", "0"],
    ["--length", "found 0"]
);

row!(
    generate_prime_outside_the_vocabulary,
    |d| trained(d, "rnn"),
    ["generate", "--checkpoint", "run", "--prime", "0#7"],
    ["--prime", "vocabulary"]
);

// ---- recur generate / eval: the checkpoint -------------------------------------------------

row!(
    generate_checkpoint_missing,
    nothing,
    ["generate", "--checkpoint", "run"],
    ["--checkpoint", "run", "no such directory"]
);

row!(
    generate_checkpoint_is_a_file,
    |d| write(d, "run", b"x"),
    ["generate", "--checkpoint", "run"],
    ["--checkpoint", "is a file"]
);

row!(
    generate_checkpoint_without_a_step,
    |d| write(d, "run/notes.txt", b"x"),
    ["generate", "--checkpoint", "run"],
    ["run", "no checkpoint found"]
);

row!(
    generate_pointer_to_a_missing_step,
    |d| {
        trained(d, "rnn");
        write(d, "run/last", b"step-0000009999\n");
    },
    ["generate", "--checkpoint", "run"],
    ["last", "step-0000009999", "not a directory"]
);

row!(
    generate_truncated_weights,
    |d| {
        trained(d, "rnn");
        let p = last_step(d).join("model.safetensors");
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 7]).unwrap();
    },
    ["generate", "--checkpoint", "run"],
    ["model.safetensors", "not a safetensors file"]
);

row!(
    generate_corrupted_header,
    |d| {
        trained(d, "rnn");
        let p = last_step(d).join("model.safetensors");
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[12] ^= 0x5a; // inside the JSON header
        std::fs::write(&p, &bytes).unwrap();
    },
    ["generate", "--checkpoint", "run"],
    ["model.safetensors", "not a safetensors file"]
);

row!(
    generate_header_length_past_the_end,
    |d| {
        trained(d, "rnn");
        let p = last_step(d).join("model.safetensors");
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        std::fs::write(&p, &bytes).unwrap();
    },
    ["generate", "--checkpoint", "run"],
    ["model.safetensors", "not a safetensors file"]
);

row!(
    generate_nan_weights,
    |d| {
        trained(d, "rnn");
        edit_weights(d, |t| t.get_mut("decoder.bias").unwrap().data[1] = f32::NAN);
    },
    ["generate", "--checkpoint", "run"],
    ["model.safetensors", "decoder.bias", "non-finite"]
);

row!(
    generate_infinite_weights,
    |d| {
        trained(d, "rnn");
        edit_weights(d, |t| {
            t.get_mut("rnn.weight_hh_l0").unwrap().data[0] = f32::INFINITY
        });
    },
    ["generate", "--checkpoint", "run"],
    ["rnn.weight_hh_l0", "non-finite"]
);

row!(
    generate_weights_of_another_architecture,
    |d| {
        trained(d, "rnn");
        let lstm = fixtures().join("lstm");
        let name = std::fs::read_to_string(lstm.join("last")).unwrap();
        std::fs::copy(
            lstm.join(name.trim()).join("model.safetensors"),
            last_step(d).join("model.safetensors"),
        )
        .unwrap();
    },
    ["generate", "--checkpoint", "run"],
    ["model.safetensors", "rnn.weight_ih_l0", "shape"]
);

row!(
    generate_weights_with_a_missing_tensor,
    |d| {
        trained(d, "rnn");
        edit_weights(d, |t| {
            t.remove("decoder.bias");
        });
    },
    ["generate", "--checkpoint", "run"],
    ["missing tensor", "decoder.bias"]
);

row!(
    generate_weights_with_an_unexpected_tensor,
    |d| {
        trained(d, "rnn");
        edit_weights(d, |t| {
            t.insert(
                "encoder.extra".into(),
                recur::engine::checkpoint::Tensor::new(vec![1], vec![0.0]),
            );
        });
    },
    ["generate", "--checkpoint", "run"],
    ["unexpected tensor", "encoder.extra"]
);

row!(
    generate_weights_with_duplicate_names,
    |d| {
        trained(d, "rnn");
        let dup = safetensors(&[
            ("decoder.bias", vec![1], vec![0.0]),
            ("decoder.bias", vec![1], vec![1.0]),
        ]);
        std::fs::write(last_step(d).join("model.safetensors"), dup).unwrap();
    },
    ["generate", "--checkpoint", "run"],
    ["decoder.bias", "more than once"]
);

row!(
    generate_weights_not_safetensors,
    |d| {
        trained(d, "rnn");
        std::fs::write(last_step(d).join("model.safetensors"), TEXT).unwrap();
    },
    ["generate", "--checkpoint", "run"],
    ["model.safetensors", "not a safetensors file"]
);

row!(
    generate_state_not_json,
    |d| {
        trained(d, "rnn");
        std::fs::write(last_step(d).join("state.json"), b"{\"format\": ").unwrap();
    },
    ["generate", "--checkpoint", "run"],
    ["state.json", "not a recur state file"]
);

row!(
    generate_vocabulary_missing,
    |d| {
        trained(d, "rnn");
        std::fs::remove_file(last_step(d).join("tokenizer.json")).unwrap();
    },
    ["generate", "--checkpoint", "run"],
    ["tokenizer.json"]
);

row!(
    generate_vocabulary_of_another_size,
    |d| {
        trained(d, "rnn");
        let p = last_step(d).join("tokenizer.json");
        let json = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, json.replace("\"a\",", "")).unwrap();
    },
    ["generate", "--checkpoint", "run"],
    ["tokenizer.json", "vocabulary of"]
);

// ---- recur eval ----------------------------------------------------------------------------

row!(
    eval_corpus_missing,
    |d| trained(d, "rnn"),
    ["eval", "--checkpoint", "run", "--corpus", "nope.txt"],
    ["nope.txt", "no such file"]
);

row!(
    eval_corpus_empty,
    |d| {
        trained(d, "rnn");
        write(d, "e.txt", b"");
    },
    ["eval", "--checkpoint", "run", "--corpus", "e.txt"],
    ["e.txt", "empty"]
);

row!(
    eval_corpus_with_characters_outside_the_vocabulary,
    |d| {
        trained(d, "rnn");
        write(
            d,
            "x.txt",
            b"the quick brown fox jumps over the lazy dog 0123456789 zzz\n",
        );
    },
    ["eval", "--checkpoint", "run", "--corpus", "x.txt"],
    ["x.txt", "not in the vocabulary"]
);

row!(
    eval_corpus_shorter_than_a_window,
    |d| {
        trained(d, "rnn");
        write(d, "s.txt", b"the\n");
    },
    ["eval", "--checkpoint", "run", "--corpus", "s.txt"],
    ["s.txt", "too short"]
);

row!(
    eval_truncated_weights,
    |d| {
        trained(d, "rnn");
        let p = last_step(d).join("model.safetensors");
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..20]).unwrap();
    },
    ["eval", "--checkpoint", "run", "--corpus", "c.txt"],
    ["model.safetensors"]
);
