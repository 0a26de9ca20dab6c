//! [`StateDict`]: the named tensors of one safetensors file, taken module by module.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use recur_kernels::mmap::map_file_readonly;

use super::{InteropError, Mismatch};
use crate::checkpoint::{
    CheckpointError, LoadOptions, Tensor, TensorStore, load_safetensors_bytes,
};

/// The tensors of a safetensors file (a PyTorch `state_dict`, Keras weights exported by
/// `scripts/interop/`, a recur checkpoint), to be moved into layers.
///
/// Each loader takes the tensors of one module — those whose name is the module's prefix followed
/// by a parameter name without a further `.` — and removes them, so the file can hold several
/// modules (and other tensors) side by side. [`StateDict::finish`] then reports whatever no
/// loader took, like PyTorch's `load_state_dict(strict=True)`.
#[derive(Debug)]
pub struct StateDict {
    path: PathBuf,
    tensors: TensorStore,
    metadata: BTreeMap<String, String>,
}

impl StateDict {
    /// Opens the safetensors file at `path`, refusing NaN/Inf values.
    ///
    /// # Errors
    /// [`InteropError::Checkpoint`] for a file that cannot be read or is not valid safetensors
    /// (truncated, overlapping or out-of-range offsets, duplicate names, a dtype other than
    /// F32/F16/BF16, non-finite values), naming the tensor where there is one.
    pub fn open(path: &Path) -> Result<Self, InteropError> {
        Self::open_with(path, LoadOptions::default())
    }

    /// Opens `path` with explicit [`LoadOptions`] (e.g. to accept NaN/Inf values).
    ///
    /// The file is memory-mapped and parsed in place: each tensor is converted to f32 once (F16
    /// and BF16 widened exactly), and the loaders move those buffers into the layers without
    /// copying them again.
    ///
    /// # Errors
    /// As [`StateDict::open`].
    pub fn open_with(path: &Path, options: LoadOptions) -> Result<Self, InteropError> {
        if path.is_dir() {
            return Err(CheckpointError::NotSafetensors {
                path: path.to_path_buf(),
                reason: "is a directory".into(),
            }
            .into());
        }
        let file = File::open(path).map_err(|e| CheckpointError::io(path, e))?;
        let map = map_file_readonly(&file).map_err(|e| CheckpointError::io(path, e))?;
        let (tensors, metadata) = load_safetensors_bytes(path, &map, options)?;
        Ok(StateDict {
            path: path.to_path_buf(),
            tensors,
            metadata,
        })
    }

    /// Parses safetensors `bytes` already in memory (e.g. `include_bytes!`); `label` stands for
    /// the file in error messages.
    ///
    /// # Errors
    /// As [`StateDict::open`].
    pub fn from_bytes(
        label: impl Into<PathBuf>,
        bytes: &[u8],
        options: LoadOptions,
    ) -> Result<Self, InteropError> {
        let path = label.into();
        let (tensors, metadata) = load_safetensors_bytes(&path, bytes, options)?;
        Ok(StateDict {
            path,
            tensors,
            metadata,
        })
    }

    /// Wraps tensors already in memory; `label` stands for the file in error messages.
    pub fn from_store(label: impl Into<PathBuf>, tensors: TensorStore) -> Self {
        StateDict {
            path: label.into(),
            tensors,
            metadata: BTreeMap::new(),
        }
    }

    /// The file (or label) the tensors came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's string metadata (`__metadata__` of the safetensors header).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// The metadata entry `key` parsed as JSON into `T` (e.g. the `lm_config` and `vocab` that
    /// `scripts/interop/pytorch_lm.py` stores beside the weights).
    ///
    /// # Errors
    /// [`InteropError::Metadata`] if the entry is absent or does not parse as a `T`.
    pub fn metadata_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<T, InteropError> {
        let metadata_error = |reason: String| InteropError::Metadata {
            path: self.path.clone(),
            key: key.to_string(),
            reason,
        };
        let text = self
            .metadata
            .get(key)
            .ok_or_else(|| metadata_error("no such entry in __metadata__".into()))?;
        serde_json::from_str(text).map_err(|e| metadata_error(e.to_string()))
    }

    /// The names of the tensors not taken yet, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// The tensor called `name`, if it has not been taken.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    /// Removes and returns the tensor called `name` (for tensors that are not a layer's).
    pub fn take(&mut self, name: &str) -> Option<Tensor> {
        self.tensors.remove(name)
    }

    /// Ends loading: an error listing every tensor no loader took (PyTorch's `strict=True`).
    ///
    /// # Errors
    /// [`InteropError::Mismatch`] with one [`Mismatch::Unexpected`] per leftover tensor.
    pub fn finish(self) -> Result<(), InteropError> {
        if self.tensors.is_empty() {
            return Ok(());
        }
        Err(InteropError::Mismatch {
            path: self.path,
            module: "the model".into(),
            mismatches: self
                .tensors
                .into_keys()
                .map(|name| Mismatch::Unexpected { name })
                .collect(),
        })
    }

    /// The names under `prefix` that belong to a module there: prefix + a name without `.`.
    pub(crate) fn module_names(&self, prefix: &str) -> Vec<String> {
        self.tensors
            .keys()
            .filter(|name| {
                name.strip_prefix(prefix)
                    .is_some_and(|rest| !rest.is_empty() && !rest.contains('.'))
            })
            .cloned()
            .collect()
    }

    /// Checks that the module at `prefix` has exactly the tensors `expected` (full names and
    /// shapes): an error lists every missing, unexpected (under `prefix`) and wrongly shaped
    /// tensor, in name order.
    pub(crate) fn check_module(
        &self,
        prefix: &str,
        expected: &[(String, Vec<usize>)],
    ) -> Result<(), InteropError> {
        let mut mismatches = Vec::new();
        for (name, shape) in expected {
            match self.tensors.get(name) {
                None => mismatches.push(Mismatch::Missing {
                    name: name.clone(),
                    expected: shape.clone(),
                }),
                Some(t) if &t.shape != shape => mismatches.push(Mismatch::Shape {
                    name: name.clone(),
                    expected: shape.clone(),
                    found: t.shape.clone(),
                }),
                Some(_) => {}
            }
        }
        let wanted: BTreeSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
        for name in self.module_names(prefix) {
            if !wanted.contains(name.as_str()) {
                mismatches.push(Mismatch::Unexpected { name });
            }
        }
        if mismatches.is_empty() {
            return Ok(());
        }
        mismatches.sort_by(|a, b| mismatch_name(a).cmp(mismatch_name(b)));
        Err(InteropError::Mismatch {
            path: self.path.clone(),
            module: format!("{prefix:?}"),
            mismatches,
        })
    }

    /// Takes exactly the tensors `expected` of the `module` at `prefix` (see
    /// [`StateDict::check_module`]), returning their values in `expected` order. Nothing is
    /// taken on error.
    pub(crate) fn take_module(
        &mut self,
        module: &str,
        prefix: &str,
        expected: &[(String, Vec<usize>)],
    ) -> Result<Vec<Vec<f32>>, InteropError> {
        if let Err(InteropError::Mismatch {
            path, mismatches, ..
        }) = self.check_module(prefix, expected)
        {
            return Err(InteropError::Mismatch {
                path,
                module: format!("{module} {prefix:?}"),
                mismatches,
            });
        }
        Ok(expected
            .iter()
            .map(|(name, _)| self.tensors.remove(name).expect("checked above").data)
            .collect())
    }
}

fn mismatch_name(m: &Mismatch) -> &str {
    match m {
        Mismatch::Missing { name, .. }
        | Mismatch::Unexpected { name }
        | Mismatch::Shape { name, .. } => name,
    }
}

/// A tensor a module needs: its full name and shape.
pub(crate) type ExpectedTensor = (String, Vec<usize>);

/// `"encoder.lstm"` and `"encoder.lstm."` both mean the module at `encoder.lstm.`; `""` is a bare
/// module (its parameters are top-level names).
pub(crate) fn normalize_prefix(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('.') {
        prefix.to_string()
    } else {
        format!("{prefix}.")
    }
}
