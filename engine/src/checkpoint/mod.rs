//! Checkpoints: named f32 tensors in safetensors files, written atomically, read defensively.
//!
//! A checkpoint directory holds one sub-directory per saved step (`step-00001234/`) and small
//! pointer files `last` and `best` naming the sub-directory to load. Each save writes its files
//! into a fresh sub-directory, fsyncs them, and only then replaces the pointer file by an atomic
//! rename ([`write_atomic`]). A save that fails part-way (no space, killed) therefore leaves the
//! previous pointer — and the checkpoint it names — untouched and loadable.
//!
//! Tensor files are safetensors (`u64` header length, JSON header, little-endian data), named as
//! PyTorch's `state_dict` names them, so `safetensors.torch.load_file` + `load_state_dict` read
//! them. The loader does not trust the file: it checks everything the `safetensors` crate checks
//! (bounds, contiguity, sizes) and what it does not (duplicate names, dtypes outside the
//! whitelist, non-finite values unless allowed), and converts F16/BF16 to f32.

mod safetensors_io;

pub use safetensors_io::{
    LoadOptions, Tensor, TensorStore, load_safetensors, load_safetensors_bytes, save_safetensors,
    serialize_safetensors,
};

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// What can go wrong reading or writing a checkpoint. Every variant names the file or tensor.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: not a safetensors file: {reason}")]
    NotSafetensors { path: PathBuf, reason: String },
    #[error("{path}: tensor {name:?} appears more than once in the header")]
    DuplicateTensor { path: PathBuf, name: String },
    #[error("{path}: tensor {name:?} has dtype {dtype}, expected one of F32, F16, BF16")]
    UnsupportedDtype {
        path: PathBuf,
        name: String,
        dtype: String,
    },
    #[error(
        "{path}: tensor {name:?} holds {count} non-finite value(s) (first at flat index {first})"
    )]
    NonFinite {
        path: PathBuf,
        name: String,
        count: usize,
        first: usize,
    },
    #[error("{path}: missing tensor {name:?} (expected shape {expected:?})")]
    MissingTensor {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
    },
    #[error("{path}: unexpected tensor {name:?}")]
    UnexpectedTensor { path: PathBuf, name: String },
    #[error("{path}: tensor {name:?} has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("{dir}: no checkpoint found (no `{pointer}` pointer file)")]
    NoCheckpoint { dir: PathBuf, pointer: String },
}

impl CheckpointError {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename
/// over `path`, fsync of the directory. Readers see the old contents or the new, never a mix.
/// On error the temporary file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = dir.unwrap_or_else(|| Path::new("."));
    let file_name = path
        .file_name()
        .ok_or_else(|| CheckpointError::Invalid {
            path: path.to_path_buf(),
            reason: "not a file path".into(),
        })?
        .to_string_lossy();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| -> io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        File::open(dir)?.sync_all()
    })();
    if let Err(source) = result {
        let _ = fs::remove_file(&tmp);
        return Err(CheckpointError::io(path, source));
    }
    Ok(())
}

/// The saved files of one checkpoint step, as raw bytes keyed by file name
/// (`model.safetensors`, `config.json`, …). What goes in them is the trainer's business.
pub type CheckpointFiles = Vec<(String, Vec<u8>)>;

/// Saves `files` as a new step directory under `dir` and points `pointers` (e.g. `["last"]` or
/// `["last", "best"]`) at it. Step directories no pointer names any more are removed afterwards.
/// Returns the step directory.
pub fn save_step(
    dir: &Path,
    step: u64,
    files: &CheckpointFiles,
    pointers: &[&str],
) -> Result<PathBuf, CheckpointError> {
    fs::create_dir_all(dir).map_err(|e| CheckpointError::io(dir, e))?;
    let name = format!("step-{step:010}");
    let step_dir = dir.join(&name);
    // A previous attempt at the same step may have died part-way: start it afresh unless a
    // pointer names it (then it is complete, and rewriting it in place would not be atomic).
    let named: Vec<String> = ["last", "best"]
        .iter()
        .filter_map(|p| read_pointer(dir, p))
        .collect();
    let target_dir = if named.contains(&name) {
        dir.join(format!("{name}-{}", std::process::id()))
    } else {
        step_dir.clone()
    };
    let target_name = target_dir
        .file_name()
        .expect("step dir has a name")
        .to_string_lossy()
        .into_owned();
    if target_dir.exists() {
        fs::remove_dir_all(&target_dir).map_err(|e| CheckpointError::io(&target_dir, e))?;
    }
    fs::create_dir_all(&target_dir).map_err(|e| CheckpointError::io(&target_dir, e))?;
    for (file, bytes) in files {
        write_atomic(&target_dir.join(file), bytes)?;
    }
    for pointer in pointers {
        write_atomic(&dir.join(pointer), format!("{target_name}\n").as_bytes())?;
    }
    prune_unreferenced(dir);
    Ok(target_dir)
}

/// The step directory `pointer` (`last`, `best`) names, if the pointer exists and is sane.
pub fn resolve_pointer(dir: &Path, pointer: &str) -> Result<PathBuf, CheckpointError> {
    let name = read_pointer(dir, pointer).ok_or_else(|| CheckpointError::NoCheckpoint {
        dir: dir.to_path_buf(),
        pointer: pointer.to_string(),
    })?;
    let step_dir = dir.join(&name);
    if !step_dir.is_dir() {
        return Err(CheckpointError::Invalid {
            path: dir.join(pointer),
            reason: format!("names {name:?}, which is not a directory"),
        });
    }
    Ok(step_dir)
}

fn read_pointer(dir: &Path, pointer: &str) -> Option<String> {
    let text = fs::read_to_string(dir.join(pointer)).ok()?;
    let name = text.trim();
    let sane =
        name.starts_with("step-") && !name.contains(['/', '\\']) && name != "." && name != "..";
    sane.then(|| name.to_string())
}

fn prune_unreferenced(dir: &Path) {
    let keep: Vec<String> = ["last", "best"]
        .iter()
        .filter_map(|p| read_pointer(dir, p))
        .collect();
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("step-") && !keep.contains(&name) && entry.path().is_dir() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "recur-ckpt-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = temp_dir("atomic");
        let path = dir.join("a.bin");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second, longer").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second, longer");
        let leftovers: Vec<_> = fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(leftovers.len(), 1, "temporary file left behind");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn steps_pointers_and_pruning() {
        let dir = temp_dir("steps");
        let files = vec![("x.txt".to_string(), b"one".to_vec())];
        save_step(&dir, 1, &files, &["last", "best"]).unwrap();
        let files2 = vec![("x.txt".to_string(), b"two".to_vec())];
        save_step(&dir, 2, &files2, &["last"]).unwrap();
        let last = resolve_pointer(&dir, "last").unwrap();
        let best = resolve_pointer(&dir, "best").unwrap();
        assert_eq!(fs::read(last.join("x.txt")).unwrap(), b"two");
        assert_eq!(fs::read(best.join("x.txt")).unwrap(), b"one");
        save_step(&dir, 3, &files2, &["last", "best"]).unwrap();
        let steps = fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("step-"))
            .count();
        assert_eq!(steps, 1, "unreferenced step directories are pruned");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn pointer_cannot_escape_the_directory() {
        let dir = temp_dir("escape");
        fs::write(dir.join("last"), "../../etc\n").unwrap();
        assert!(matches!(
            resolve_pointer(&dir, "last"),
            Err(CheckpointError::NoCheckpoint { .. })
        ));
        fs::remove_dir_all(dir).unwrap();
    }
}
