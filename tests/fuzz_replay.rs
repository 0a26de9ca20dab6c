//! Replays every committed fuzz input through the same harness functions the fuzz targets call,
//! so ordinary `cargo test` (and CI) covers the seed corpora and every crash reproducer.
//!
//! Inputs live in `fuzz/corpus/<target>/` (seeds; `scripts/fuzz_all.sh` grows its corpora in
//! `fuzz/work/`, not here) and `fuzz/regressions/<target>/` (minimised reproducers of bugs the
//! fuzzers found, each named after the bug). A failing file is named in the panic message.
//!
//! `cargo test --test fuzz_replay -- --ignored write_seed_corpora` regenerates the seeds.

use std::path::{Path, PathBuf};

use recur::engine::fuzzing as engine_fuzz;
use recur::kernels::fuzzing as kernel_fuzz;

type Harness = fn(&[u8]);

/// Every target, by its `fuzz/fuzz_targets/<name>.rs` name.
const TARGETS: [(&str, Harness); 8] = [
    ("safetensors", engine_fuzz::fuzz_safetensors),
    ("tokenizers", engine_fuzz::fuzz_tokenizers),
    ("checkpoint_json", engine_fuzz::fuzz_checkpoint_json),
    (
        "checkpoint_round_trip",
        engine_fuzz::fuzz_checkpoint_round_trip,
    ),
    ("gemm", kernel_fuzz::fuzz_gemm),
    ("softmax", kernel_fuzz::fuzz_softmax),
    ("activations", kernel_fuzz::fuzz_activations),
    ("cells", engine_fuzz::fuzz_cells),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir`, sorted (none if it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

fn replay(target: &str, harness: Harness) {
    let corpus = files(&fuzz_dir().join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target}/ has no seed: every target needs a committed seed corpus"
    );
    let regressions = files(&fuzz_dir().join("regressions").join(target));
    for path in corpus.iter().chain(&regressions) {
        let data = std::fs::read(path).unwrap();
        let name = path.strip_prefix(fuzz_dir()).unwrap().display().to_string();
        let result = std::panic::catch_unwind(|| harness(&data));
        assert!(
            result.is_ok(),
            "fuzz input {name} fails its harness (see the panic above)"
        );
    }
    println!(
        "{target}: replayed {} seed(s) and {} regression(s)",
        corpus.len(),
        regressions.len()
    );
}

#[test]
fn safetensors() {
    replay(TARGETS[0].0, TARGETS[0].1);
}

#[test]
fn tokenizers() {
    replay(TARGETS[1].0, TARGETS[1].1);
}

#[test]
fn checkpoint_json() {
    replay(TARGETS[2].0, TARGETS[2].1);
}

#[test]
fn checkpoint_round_trip() {
    replay(TARGETS[3].0, TARGETS[3].1);
}

#[test]
fn gemm() {
    replay(TARGETS[4].0, TARGETS[4].1);
}

#[test]
fn softmax() {
    replay(TARGETS[5].0, TARGETS[5].1);
}

#[test]
fn activations() {
    replay(TARGETS[6].0, TARGETS[6].1);
}

#[test]
fn cells() {
    replay(TARGETS[7].0, TARGETS[7].1);
}

#[test]
fn every_target_has_a_wrapper_and_a_replay() {
    let on_disk: Vec<String> = files(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let mut expected: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    expected.sort();
    let mut on_disk = on_disk;
    on_disk.sort();
    assert_eq!(
        on_disk, expected,
        "fuzz/fuzz_targets and this file disagree"
    );
}

// ---------------------------------------------------------------------------------------------
// Seed generation (run by hand)
// ---------------------------------------------------------------------------------------------

/// Deterministic filler bytes (xorshift64).
fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn raw_safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let checkpoint = engine_fuzz::reference_checkpoint();
    let file = |name: &str| {
        checkpoint
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.clone())
            .unwrap()
    };
    let text = "Alice was beginning to get very tired of sitting by her sister on the bank,\n\
                and of having nothing to do: once or twice she had peeped into the book.\n\
                  “Oh dear! Oh dear! I shall be late!” (when she thought it over afterwards)\r\n\
                ÄÖÜ straße ΣΊΣΥΦΟΣ café naïve 😀\tthe end\n";
    match target {
        "safetensors" => {
            let model = file("model.safetensors");
            vec![
                model.clone(),
                file("optimizer.safetensors"),
                model[..model.len() / 2].to_vec(),
                raw_safetensors(
                    r#"{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"__metadata__":{"format":"pt"}}"#,
                    &[0x00, 0x3c, 0x00, 0xc0],
                ),
                raw_safetensors(
                    r#"{"b":{"dtype":"BF16","shape":[1,2],"data_offsets":[0,4]}}"#,
                    &[0x80, 0x3f, 0xc0, 0x7f],
                ),
                raw_safetensors(
                    r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                    &[0; 4],
                ),
                raw_safetensors("{}", &[]),
            ]
        }
        "tokenizers" => {
            let latin1 = b"caf\xe9 au lait\nthe cat sat on the mat\n".to_vec();
            [
                0x00u8, 0x01, 0x03, 0x08, 0x09, 0x0b, 0x04, 0x05, 0x0d, 0x1d, 0x2f,
            ]
            .iter()
            .flat_map(|&config| {
                [
                    [&[config][..], text.as_bytes()].concat(),
                    [&[config, 7][..], &latin1].concat(),
                ]
            })
            .collect()
        }
        "checkpoint_json" => engine_fuzz::checkpoint_json_seeds(),
        "checkpoint_round_trip" => (0..8u64)
            .map(|i| {
                let mut bytes = pseudo_random_bytes(i + 1, 600);
                bytes[0] = i as u8;
                bytes
            })
            .collect(),
        "gemm" => (0..12u64)
            .map(|i| {
                let mut bytes = pseudo_random_bytes(100 + i, 4096);
                bytes[0] = (i % 2) as u8; // integer or finite values
                bytes[1] = (i % 4) as u8; // shape class
                bytes
            })
            .collect(),
        "cells" => (0..8u64)
            .map(|i| {
                let mut bytes = pseudo_random_bytes(400 + i, 3000);
                bytes[0] = i as u8; // every cell kind, twice
                bytes
            })
            .collect(),
        "softmax" => (0..6u64)
            .map(|i| pseudo_random_bytes(200 + i, 2048))
            .collect(),
        "activations" => {
            let specials: Vec<u8> = [
                0.0f32,
                -0.0,
                1.0,
                -1.0,
                88.72,
                88.73,
                -103.9,
                -104.0,
                0.625,
                -0.625,
                f32::MIN_POSITIVE,
                1e-45,
                f32::MAX,
                f32::MIN,
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::NAN,
            ]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
            let mut with_len = vec![17, 0];
            with_len.extend(specials);
            vec![
                with_len,
                pseudo_random_bytes(300, 410),
                pseudo_random_bytes(301, 64),
            ]
        }
        other => panic!("no seeds for {other}"),
    }
}

#[test]
#[ignore = "writes fuzz/corpus/*; run by hand to regenerate the seeds"]
fn write_seed_corpora() {
    for (target, _) in TARGETS {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for old in files(&dir) {
            if old
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("seed-")
            {
                std::fs::remove_file(old).unwrap();
            }
        }
        for (i, bytes) in seeds(target).iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:02}")), bytes).unwrap();
        }
    }
}
