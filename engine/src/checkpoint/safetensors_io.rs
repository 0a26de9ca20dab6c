//! Named f32 tensors ↔ safetensors bytes, with the checks the `safetensors` crate leaves to us.

use super::{CheckpointError, write_atomic};
use safetensors::{Dtype, SafeTensors};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;

/// A dense, row-major f32 tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first (PyTorch order).
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values, row-major.
    pub data: Vec<f32>,
}

impl Tensor {
    /// A tensor of `shape` over `data`. Panics if the sizes disagree (a broken invariant).
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "tensor of shape {shape:?} needs {} values, got {}",
            shape.iter().product::<usize>(),
            data.len()
        );
        Tensor { shape, data }
    }
}

/// Named tensors in name order (deterministic files).
pub type TensorStore = BTreeMap<String, Tensor>;

/// How strict loading is.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadOptions {
    /// Accept NaN/Inf values (refused by default: a model with them cannot train or sample).
    pub allow_non_finite: bool,
}

/// Serialises `tensors` (as F32) and string `metadata` into safetensors bytes.
pub fn serialize_safetensors(
    tensors: &TensorStore,
    metadata: &BTreeMap<String, String>,
) -> Vec<u8> {
    let bytes: Vec<(&String, &Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, t)| {
            let raw = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            (name, &t.shape, raw)
        })
        .collect();
    let views = bytes.iter().map(|(name, shape, raw)| {
        let view = safetensors::tensor::TensorView::new(Dtype::F32, shape.to_vec(), raw)
            .expect("shape and byte length agree by construction");
        (name.as_str(), view)
    });
    // An empty metadata map goes in as `None`: safetensors 0.8 writes `Some(empty)` with no
    // tensors as the invalid header `{},"__metadata__":{}}` (found by the checkpoint round-trip
    // fuzz target; an optimiser without state, e.g. plain SGD, saved such a file).
    let metadata: Option<HashMap<String, String>> =
        (!metadata.is_empty()).then(|| metadata.clone().into_iter().collect());
    safetensors::serialize(views, metadata).expect("in-memory serialisation cannot fail")
}

/// Saves `tensors` to `path` atomically (see [`write_atomic`]).
pub fn save_safetensors(
    path: &Path,
    tensors: &TensorStore,
    metadata: &BTreeMap<String, String>,
) -> Result<(), CheckpointError> {
    write_atomic(path, &serialize_safetensors(tensors, metadata))
}

/// Loads every tensor of the safetensors file at `path` as f32, with its metadata.
pub fn load_safetensors(
    path: &Path,
    options: LoadOptions,
) -> Result<(TensorStore, BTreeMap<String, String>), CheckpointError> {
    if path.is_dir() {
        return Err(CheckpointError::NotSafetensors {
            path: path.to_path_buf(),
            reason: "is a directory".into(),
        });
    }
    let bytes = std::fs::read(path).map_err(|e| CheckpointError::io(path, e))?;
    load_safetensors_bytes(path, &bytes, options)
}

/// Parses safetensors `bytes` (read from `path`, which only names the source in errors).
pub fn load_safetensors_bytes(
    path: &Path,
    bytes: &[u8],
    options: LoadOptions,
) -> Result<(TensorStore, BTreeMap<String, String>), CheckpointError> {
    let not_safetensors = |reason: String| CheckpointError::NotSafetensors {
        path: path.to_path_buf(),
        reason,
    };
    // The crate checks bounds, contiguity, sizes and the total length; duplicates it lets through
    // (the JSON map keeps the last), so look at the raw header first.
    if bytes.len() >= 8 {
        let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        if let Some(header) = usize::try_from(n)
            .ok()
            .and_then(|n| bytes.get(8..8usize.checked_add(n)?))
            && let Some(name) = first_duplicate_key(header)
        {
            return Err(CheckpointError::DuplicateTensor {
                path: path.to_path_buf(),
                name,
            });
        }
    }
    let (_, meta) =
        SafeTensors::read_metadata(bytes).map_err(|e| not_safetensors(e.to_string()))?;
    let metadata: BTreeMap<String, String> = meta
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let file = SafeTensors::deserialize(bytes).map_err(|e| not_safetensors(e.to_string()))?;
    let mut store = TensorStore::new();
    for (name, view) in file.tensors() {
        let raw = view.data();
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::BF16 => raw
                .chunks_exact(2)
                .map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16))
                .collect(),
            Dtype::F16 => raw
                .chunks_exact(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            other => {
                return Err(CheckpointError::UnsupportedDtype {
                    path: path.to_path_buf(),
                    name,
                    dtype: format!("{other:?}"),
                });
            }
        };
        if !options.allow_non_finite {
            let mut bad = data.iter().enumerate().filter(|(_, v)| !v.is_finite());
            if let Some((first, _)) = bad.next() {
                return Err(CheckpointError::NonFinite {
                    path: path.to_path_buf(),
                    name,
                    count: 1 + bad.count(),
                    first,
                });
            }
        }
        let shape = view.shape().to_vec();
        store.insert(name, Tensor { shape, data });
    }
    Ok((store, metadata))
}

/// IEEE 754 binary16 → f32 (exact; every f16 is representable).
fn f16_to_f32(bits: u16) -> f32 {
    let sign = ((bits >> 15) as u32) << 31;
    let exp = ((bits >> 10) & 0x1f) as u32;
    let frac = (bits & 0x3ff) as u32;
    let magnitude = match (exp, frac) {
        (0, 0) => 0,
        // Subnormal: frac · 2^-24.
        (0, _) => {
            let value = frac as f32 * 2f32.powi(-24);
            return if sign != 0 { -value } else { value };
        }
        (0x1f, 0) => 0xff << 23,
        (0x1f, _) => (0xff << 23) | (frac << 13),
        _ => ((exp + 127 - 15) << 23) | (frac << 13),
    };
    f32::from_bits(sign | magnitude)
}

/// The first top-level key of a JSON object that occurs twice, if any (and if it parses).
fn first_duplicate_key(header: &[u8]) -> Option<String> {
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut seen = HashSet::new();
            let mut duplicate = None;
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                if !seen.insert(key.clone()) && duplicate.is_none() {
                    duplicate = Some(key);
                }
            }
            Ok(duplicate)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(header);
    de.deserialize_map(Keys).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> TensorStore {
        let mut s = TensorStore::new();
        s.insert(
            "rnn.weight_ih_l0".into(),
            Tensor::new(vec![2, 3], vec![1.0, -2.0, 3.5, 0.0, 1e-30, -7.25]),
        );
        s.insert(
            "rnn.bias_ih_l0".into(),
            Tensor::new(vec![2], vec![0.5, 0.25]),
        );
        s.insert("empty".into(), Tensor::new(vec![0, 5], vec![]));
        s
    }

    fn load(bytes: &[u8]) -> Result<(TensorStore, BTreeMap<String, String>), CheckpointError> {
        load_safetensors_bytes(Path::new("mem"), bytes, LoadOptions::default())
    }

    #[test]
    fn round_trip_is_bit_identical() {
        let mut meta = BTreeMap::new();
        meta.insert("format".to_string(), "pt".to_string());
        let bytes = serialize_safetensors(&store(), &meta);
        let (back, meta_back) = load(&bytes).unwrap();
        assert_eq!(back, store());
        assert_eq!(meta_back, meta);
    }

    #[test]
    fn refuses_truncation_garbage_and_non_finite() {
        let bytes = serialize_safetensors(&store(), &BTreeMap::new());
        for cut in [0, 4, 8, 20, bytes.len() - 1] {
            assert!(load(&bytes[..cut]).is_err(), "truncated at {cut} accepted");
        }
        assert!(matches!(
            load(b"this is not a safetensors file at all"),
            Err(CheckpointError::NotSafetensors { .. })
        ));
        let mut nan = TensorStore::new();
        nan.insert(
            "w".into(),
            Tensor::new(vec![3], vec![1.0, f32::NAN, f32::INFINITY]),
        );
        let bytes = serialize_safetensors(&nan, &BTreeMap::new());
        match load(&bytes) {
            Err(CheckpointError::NonFinite {
                name, count, first, ..
            }) => {
                assert_eq!((name.as_str(), count, first), ("w", 2, 1));
            }
            other => panic!("expected NonFinite, got {other:?}"),
        }
        let allowed = load_safetensors_bytes(
            Path::new("mem"),
            &bytes,
            LoadOptions {
                allow_non_finite: true,
            },
        );
        assert!(allowed.is_ok());
    }

    fn raw_file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn refuses_duplicates_and_unknown_dtypes() {
        let dup = raw_file(
            r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
            &[0; 4],
        );
        assert!(
            matches!(load(&dup), Err(CheckpointError::DuplicateTensor { name, .. }) if name == "a")
        );
        let int = raw_file(
            r#"{"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}"#,
            &[0; 4],
        );
        assert!(matches!(
            load(&int),
            Err(CheckpointError::UnsupportedDtype { .. })
        ));
        let overlap = raw_file(
            r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
            &[0; 4],
        );
        assert!(load(&overlap).is_err());
        let out_of_range = raw_file(
            r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
            &[0; 4],
        );
        assert!(load(&out_of_range).is_err());
    }

    #[test]
    fn half_precision_is_widened_exactly() {
        // 1.0, -2.0, 65504 (max), 2^-24 (smallest subnormal), +inf
        let f16 = [0x3c00u16, 0xc000, 0x7bff, 0x0001, 0x7c00];
        let expect = [1.0f32, -2.0, 65504.0, 2f32.powi(-24), f32::INFINITY];
        for (bits, want) in f16.iter().zip(expect) {
            assert_eq!(f16_to_f32(*bits), want, "f16 bits {bits:#06x}");
        }
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x8001), -(2f32.powi(-24)));
        let data: Vec<u8> = [0x3c00u16, 0x4000]
            .iter()
            .flat_map(|b| b.to_le_bytes())
            .collect();
        let bf = raw_file(
            r#"{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#,
            &data,
        );
        let (store, _) = load(&bf).unwrap();
        assert_eq!(store["a"].data, vec![1.0, 2.0]);
    }
}
