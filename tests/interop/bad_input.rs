//! Bad state_dict files: each problem is a typed error naming the tensor (or the file), never a
//! panic or an out-of-bounds read.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use recur::engine::checkpoint::{
    CheckpointError, LoadOptions, Tensor, TensorStore, serialize_safetensors,
};
use recur::engine::interop::pytorch::{TorchRnnSpec, rnn_state_dict};
use recur::engine::interop::{Bias, InteropError, Mismatch, StateDict};
use recur::engine::rnn::RnnConfig;
use recur::kernels::CellKind;

use crate::common::fixture;

fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(&format!("pytorch/{name}.safetensors"))).unwrap()
}

fn raw_file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn parse(bytes: &[u8]) -> Result<StateDict, InteropError> {
    StateDict::from_bytes("bad.safetensors", bytes, LoadOptions::default())
}

fn small_gru() -> TensorStore {
    let rnn = RnnConfig::new(CellKind::Gru, 2, 3).init(4).unwrap();
    rnn_state_dict(&rnn, "enc.gru.", Bias::Present).unwrap()
}

#[test]
fn not_safetensors_truncated_and_out_of_range_are_refused() {
    assert!(matches!(
        parse(b"PK\x03\x04 this is a zip file"),
        Err(InteropError::Checkpoint(
            CheckpointError::NotSafetensors { .. }
        ))
    ));
    let bytes = fixture_bytes("lstm");
    for cut in [0, 7, 8, 100, bytes.len() / 2, bytes.len() - 1] {
        let err = parse(&bytes[..cut]).err();
        assert!(
            matches!(
                err,
                Some(InteropError::Checkpoint(
                    CheckpointError::NotSafetensors { .. }
                ))
            ),
            "truncated at {cut}: {err:?}"
        );
    }
    let out_of_range = raw_file(
        r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
        &[0; 8],
    );
    assert!(parse(&out_of_range).is_err());
    let overlapping = raw_file(
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
        &[0; 12],
    );
    assert!(parse(&overlapping).is_err());
    let huge_shape = raw_file(
        r#"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]}}"#,
        &[0; 16],
    );
    assert!(parse(&huge_shape).is_err());
    let dir = std::env::temp_dir();
    assert!(matches!(
        StateDict::open(&dir),
        Err(InteropError::Checkpoint(
            CheckpointError::NotSafetensors { .. }
        ))
    ));
    assert!(matches!(
        StateDict::open(Path::new("/nonexistent/model.safetensors")),
        Err(InteropError::Checkpoint(CheckpointError::Io { .. }))
    ));
}

#[test]
fn duplicates_unknown_dtypes_and_non_finite_values_name_the_tensor() {
    let dup = raw_file(
        r#"{"rnn.weight_ih_l0":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"rnn.weight_ih_l0":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
        &[0; 8],
    );
    match parse(&dup) {
        Err(InteropError::Checkpoint(CheckpointError::DuplicateTensor { name, .. })) => {
            assert_eq!(name, "rnn.weight_ih_l0")
        }
        other => panic!("expected DuplicateTensor, got {other:?}"),
    }
    let int = raw_file(
        r#"{"rnn.bias_ih_l0":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#,
        &[0; 8],
    );
    match parse(&int) {
        Err(InteropError::Checkpoint(CheckpointError::UnsupportedDtype {
            name, dtype, ..
        })) => {
            assert_eq!((name.as_str(), dtype.as_str()), ("rnn.bias_ih_l0", "I64"))
        }
        other => panic!("expected UnsupportedDtype, got {other:?}"),
    }
    let mut store = small_gru();
    store.get_mut("enc.gru.weight_hh_l0").unwrap().data[5] = f32::NAN;
    let bytes = serialize_safetensors(&store, &BTreeMap::new());
    let err = parse(&bytes).unwrap_err();
    assert!(
        err.to_string().contains("\"enc.gru.weight_hh_l0\"")
            && matches!(
                err,
                InteropError::Checkpoint(CheckpointError::NonFinite { first: 5, .. })
            ),
        "{err}"
    );
    // Explicitly allowed, the file loads (and the NaN is there to see).
    let allow = LoadOptions {
        allow_non_finite: true,
    };
    let mut file = StateDict::from_bytes("nan.safetensors", &bytes, allow).unwrap();
    let spec = TorchRnnSpec::infer(&file, "enc.gru", CellKind::Gru).unwrap();
    let rnn = file.load_rnn("enc.gru", &spec).unwrap();
    assert!(rnn.params().get("weight_hh_l0").unwrap()[5].is_nan());
}

#[test]
fn every_missing_unexpected_and_misshapen_tensor_is_listed() {
    let mut store = small_gru();
    store.remove("enc.gru.bias_hh_l0");
    store.insert(
        "enc.gru.weight_ih_l0".into(),
        Tensor::new(vec![9, 3], vec![0.0; 27]),
    );
    store.insert(
        "enc.gru.weight_ih_l1".into(),
        Tensor::new(vec![9, 3], vec![0.0; 27]),
    );
    store.insert(
        "decoder.weight".into(),
        Tensor::new(vec![2, 3], vec![0.0; 6]),
    );
    let bytes = serialize_safetensors(&store, &BTreeMap::new());
    let mut file = parse(&bytes).unwrap();
    let spec = TorchRnnSpec::new(RnnConfig::new(CellKind::Gru, 2, 3));
    let err = file.load_rnn("enc.gru.", &spec).unwrap_err();
    let message = err.to_string();
    let InteropError::Mismatch { mismatches, .. } = err else {
        panic!("expected Mismatch, got {message}");
    };
    assert_eq!(
        mismatches,
        vec![
            Mismatch::Missing {
                name: "enc.gru.bias_hh_l0".into(),
                expected: vec![9]
            },
            Mismatch::Shape {
                name: "enc.gru.weight_ih_l0".into(),
                expected: vec![9, 2],
                found: vec![9, 3]
            },
            Mismatch::Unexpected {
                name: "enc.gru.weight_ih_l1".into()
            },
        ],
        "{message}"
    );
    assert!(
        message.contains("bad.safetensors") && message.contains("\"enc.gru.bias_hh_l0\""),
        "{message}"
    );
    // The other module's tensor is not this loader's business, but strict finishing reports it
    // along with the GRU's, which a failed load left in place.
    let Err(InteropError::Mismatch { mismatches, .. }) = file.finish() else {
        panic!("expected leftovers");
    };
    assert!(mismatches.contains(&Mismatch::Unexpected {
        name: "decoder.weight".into()
    }));
}

#[test]
fn a_configuration_that_is_itself_invalid_is_a_typed_error() {
    let mut file = StateDict::from_store("mem", small_gru());
    let spec = TorchRnnSpec::new(RnnConfig::new(CellKind::Gru, 2, 0));
    assert!(matches!(
        file.load_rnn("enc.gru", &spec),
        Err(InteropError::Rnn(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Corrupting any bytes of a real state_dict gives a value or an error, never a panic.
    #[test]
    fn corrupted_files_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = fixture_bytes("gru");
        // Aim most edits at the header, where the structure is.
        let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        for (index, value) in edits {
            let at = index.index(header_end.min(bytes.len()));
            bytes[at] = value;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        let allow = LoadOptions { allow_non_finite: true };
        if let Ok(mut file) = StateDict::from_bytes("fuzz", &bytes, allow)
            && let Ok(spec) = TorchRnnSpec::infer(&file, "encoder.gru", CellKind::Gru)
            && let Ok(rnn) = file.load_rnn("encoder.gru", &spec)
        {
            prop_assert_eq!(rnn.config().hidden_size, spec.config.hidden_size);
        }
    }
}
