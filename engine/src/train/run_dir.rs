//! A run directory: checkpoints (see [`crate::checkpoint`]), `metrics.jsonl` and `loss.svg`.
//!
//! ```text
//! run/
//!   last, best            pointer files naming a step directory
//!   step-0000001100/
//!     model.safetensors   parameters, PyTorch state_dict names (embedding.*, rnn.*, decoder.*)
//!     optimizer.safetensors  optimiser buffers ("mean.rnn.weight_hh_l0", …)
//!     state.json          model config, train options, optimiser config and step, history,
//!                         and where an unfinished epoch stands (mid-epoch checkpoints)
//!     tokenizer.json      the vocabulary
//!     carry.safetensors   mid-epoch in a truncated-BPTT stream: the state carried into the
//!                         next chunk ("h", and "c" for LSTM)
//!   metrics.jsonl         one JSON object per finished epoch
//!   loss.svg              training (and validation) loss per epoch
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{EpochProgress, EpochRecord, TrainError, TrainOptions, Trainer};
use crate::checkpoint::{
    CheckpointError, LoadOptions, Tensor, TensorStore, load_safetensors, resolve_pointer,
    save_step, serialize_safetensors, write_atomic,
};
use crate::data::tokenizer::Tokenizer;
use crate::model::lm::{LanguageModel, LmConfig};
use crate::model::plot::{Series, line_plot_svg};
use crate::optim::{Optimizer, OptimizerConfig, OptimizerState};
use crate::rnn::RnnState;
use recur_kernels::Par;

/// `state.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct StateFile {
    format: String,
    model: LmConfig,
    train: TrainOptions,
    optimizer: OptimizerConfig,
    optimizer_steps: u64,
    history: Vec<EpochRecord>,
    /// Set in mid-epoch checkpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    progress: Option<EpochProgress>,
}

const FORMAT: &str = "recur-checkpoint-1";

/// Everything a checkpoint restores.
#[derive(Debug)]
pub struct CheckpointBundle {
    pub model: LanguageModel,
    pub optimizer: Optimizer,
    pub tokenizer: Tokenizer,
    pub options: TrainOptions,
    pub history: Vec<EpochRecord>,
    /// Where the unfinished epoch stood, for a mid-epoch checkpoint.
    pub progress: Option<EpochProgress>,
    /// The state a truncated-BPTT stream carries into its next chunk, for a mid-epoch checkpoint.
    pub carry: Option<RnnState>,
}

/// Saves the trainer's state as a new step of `dir` (pointers `last`, and `best` when this
/// epoch has the lowest validation — else training — loss so far), then rewrites
/// `metrics.jsonl` and `loss.svg`.
pub(super) fn save_epoch(
    dir: &Path,
    trainer: &Trainer,
    tokenizer: &Tokenizer,
) -> Result<(), TrainError> {
    let score = |r: &EpochRecord| r.val_loss.unwrap_or(r.train_loss);
    let is_best = trainer.history.last().is_some_and(|last| {
        trainer
            .history
            .iter()
            .all(|r| score(last) <= score(r) || !score(r).is_finite())
    });
    let pointers: &[&str] = if is_best {
        &["last", "best"]
    } else {
        &["last"]
    };
    write_step(dir, trainer_view(trainer), tokenizer, None, pointers)?;
    let mut metrics = String::new();
    for record in &trainer.history {
        metrics.push_str(&serde_json::to_string(record).expect("records serialise"));
        metrics.push('\n');
    }
    write_atomic(&dir.join("metrics.jsonl"), metrics.as_bytes())?;
    let mut series = vec![Series {
        name: "train".into(),
        points: trainer
            .history
            .iter()
            .map(|r| (r.epoch as f64, r.train_loss))
            .collect(),
    }];
    if trainer.history.iter().any(|r| r.val_loss.is_some()) {
        series.push(Series {
            name: "validation".into(),
            points: trainer
                .history
                .iter()
                .filter_map(|r| Some((r.epoch as f64, r.val_loss?)))
                .collect(),
        });
    }
    let svg = line_plot_svg("loss per epoch", "epoch", "cross-entropy (nats)", &series);
    write_atomic(&dir.join("loss.svg"), svg.as_bytes())?;
    Ok(())
}

/// A mid-epoch checkpoint: the trainer's state with its [`EpochProgress`] (and a stream's carried
/// state), pointed at by `last` only — `best` is decided by finished epochs.
pub(super) fn save_progress(
    dir: &Path,
    trainer: &Trainer,
    tokenizer: &Tokenizer,
) -> Result<(), TrainError> {
    let progress = trainer.progress().map(|p| (p, trainer.carry()));
    write_step(dir, trainer_view(trainer), tokenizer, progress, &["last"])?;
    Ok(())
}

/// What a checkpoint saves of a trainer.
struct View<'a> {
    model: &'a LanguageModel,
    optimizer: &'a Optimizer,
    options: &'a TrainOptions,
    history: &'a [EpochRecord],
}

fn trainer_view(trainer: &Trainer) -> View<'_> {
    View {
        model: &trainer.model,
        optimizer: &trainer.optimizer,
        options: &trainer.options,
        history: &trainer.history,
    }
}

/// Writes one checkpoint step under `dir` and points `pointers` at it.
pub fn save_checkpoint(
    dir: &Path,
    model: &LanguageModel,
    optimizer: &Optimizer,
    tokenizer: &Tokenizer,
    options: &TrainOptions,
    history: &[EpochRecord],
    pointers: &[&str],
) -> Result<(), CheckpointError> {
    let view = View {
        model,
        optimizer,
        options,
        history,
    };
    write_step(dir, view, tokenizer, None, pointers)
}

fn write_step(
    dir: &Path,
    view: View<'_>,
    tokenizer: &Tokenizer,
    progress: Option<(&EpochProgress, Option<&RnnState>)>,
    pointers: &[&str],
) -> Result<(), CheckpointError> {
    let View {
        model,
        optimizer,
        options,
        history,
    } = view;
    let shapes: BTreeMap<String, Vec<usize>> = model.param_shapes().into_iter().collect();
    let tensors: TensorStore = model
        .named_params()
        .into_iter()
        .map(|(name, values)| {
            let shape = shapes[&name].clone();
            (name, Tensor::new(shape, values.to_vec()))
        })
        .collect();
    let mut meta = BTreeMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    let opt_tensors: TensorStore = optimizer
        .state()
        .named_buffers()
        .into_iter()
        .map(|(name, values)| (name, Tensor::new(vec![values.len()], values.to_vec())))
        .collect();
    let state = StateFile {
        format: FORMAT.to_string(),
        model: model.config.clone(),
        train: options.clone(),
        optimizer: *optimizer.config(),
        optimizer_steps: optimizer.steps(),
        history: history.to_vec(),
        progress: progress.map(|(p, _)| p.clone()),
    };
    let mut files = vec![
        (
            "model.safetensors".to_string(),
            serialize_safetensors(&tensors, &meta),
        ),
        (
            "optimizer.safetensors".to_string(),
            serialize_safetensors(&opt_tensors, &BTreeMap::new()),
        ),
        (
            "state.json".to_string(),
            serde_json::to_vec_pretty(&state).expect("state serialises"),
        ),
        (
            "tokenizer.json".to_string(),
            tokenizer.to_json().into_bytes(),
        ),
    ];
    if let Some((_, Some(carry))) = progress {
        let mut store = TensorStore::new();
        store.insert(
            "h".into(),
            Tensor::new(vec![carry.h.len()], carry.h.clone()),
        );
        if let Some(c) = &carry.c {
            store.insert("c".into(), Tensor::new(vec![c.len()], c.clone()));
        }
        files.push((
            CARRY_FILE.to_string(),
            serialize_safetensors(&store, &BTreeMap::new()),
        ));
    }
    save_step(dir, optimizer.steps(), &files, pointers)?;
    Ok(())
}

const CARRY_FILE: &str = "carry.safetensors";

/// The carried stream state of a mid-epoch checkpoint, checked against the model.
fn load_carry(step_dir: &Path, model: &LanguageModel) -> Result<Option<RnnState>, CheckpointError> {
    let path = step_dir.join(CARRY_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let (mut store, _) = load_safetensors(&path, LoadOptions::default())?;
    let rows = model.config.num_layers * model.config.hidden;
    let mut take = |name: &str| -> Result<Option<Vec<f32>>, CheckpointError> {
        let Some(t) = store.remove(name) else {
            return Ok(None);
        };
        if rows == 0 || t.data.len() % rows != 0 {
            return Err(CheckpointError::Invalid {
                path: path.clone(),
                reason: format!(
                    "carried state {name:?} has {} values, not a multiple of layers × hidden = {rows}",
                    t.data.len()
                ),
            });
        }
        Ok(Some(t.data))
    };
    let h = take("h")?.ok_or_else(|| CheckpointError::MissingTensor {
        path: path.clone(),
        name: "h".into(),
        expected: vec![rows],
    })?;
    let c = take("c")?;
    if c.is_some() != model.config.cell_kind().is_ok_and(|k| k.has_cell_state())
        || c.as_ref().is_some_and(|c| c.len() != h.len())
    {
        return Err(CheckpointError::Invalid {
            path,
            reason: "the carried cell state does not match the model's cell".into(),
        });
    }
    if let Some(name) = store.keys().next() {
        return Err(CheckpointError::UnexpectedTensor {
            path,
            name: name.clone(),
        });
    }
    Ok(Some(RnnState { h, c }))
}

/// Loads the checkpoint `pointer` (`last` or `best`) of run directory `dir`, checking every
/// tensor's name and shape against the saved configuration.
pub fn load_checkpoint(
    dir: &Path,
    pointer: &str,
    par: Par,
) -> Result<CheckpointBundle, CheckpointError> {
    let step_dir = resolve_pointer(dir, pointer)?;
    let invalid = |path: &Path, reason: String| CheckpointError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let state_path = step_dir.join("state.json");
    let state_text =
        std::fs::read_to_string(&state_path).map_err(|e| CheckpointError::io(&state_path, e))?;
    let state: StateFile = serde_json::from_str(&state_text)
        .map_err(|e| invalid(&state_path, format!("not a recur state file: {e}")))?;
    if state.format != FORMAT {
        return Err(invalid(
            &state_path,
            format!("format {:?}, expected {FORMAT:?}", state.format),
        ));
    }
    let tok_path = step_dir.join("tokenizer.json");
    let tok_text =
        std::fs::read_to_string(&tok_path).map_err(|e| CheckpointError::io(&tok_path, e))?;
    let tokenizer = Tokenizer::from_json(&tok_text)
        .map_err(|e| invalid(&tok_path, format!("not a vocabulary: {e}")))?;
    if tokenizer.vocab_size() != state.model.vocab {
        return Err(invalid(
            &tok_path,
            format!(
                "vocabulary of {} ids, but the model expects {}",
                tokenizer.vocab_size(),
                state.model.vocab
            ),
        ));
    }

    let model_path = step_dir.join("model.safetensors");
    let (mut tensors, _) = load_safetensors(&model_path, LoadOptions::default())?;
    let mut model = LanguageModel::new(state.model.clone(), par, state.train.seed)
        .map_err(|e| invalid(&state_path, e.to_string()))?;
    let shapes: BTreeMap<String, Vec<usize>> = model.param_shapes().into_iter().collect();
    for (name, values) in model.params_mut() {
        let expected = &shapes[&name];
        let tensor = tensors
            .remove(&name)
            .ok_or_else(|| CheckpointError::MissingTensor {
                path: model_path.clone(),
                name: name.clone(),
                expected: expected.clone(),
            })?;
        if &tensor.shape != expected {
            return Err(CheckpointError::ShapeMismatch {
                path: model_path.clone(),
                name,
                expected: expected.clone(),
                found: tensor.shape,
            });
        }
        values.copy_from_slice(&tensor.data);
    }
    if let Some(name) = tensors.keys().next() {
        return Err(CheckpointError::UnexpectedTensor {
            path: model_path,
            name: name.clone(),
        });
    }

    let opt_path = step_dir.join("optimizer.safetensors");
    let (opt_tensors, _) = load_safetensors(&opt_path, LoadOptions::default())?;
    let opt_state = OptimizerState::from_named_buffers(
        state.optimizer_steps,
        opt_tensors
            .iter()
            .map(|(name, t)| (name.as_str(), t.data.as_slice())),
    )
    .map_err(|e| invalid(&opt_path, e.to_string()))?;
    for (name, param) in &opt_state.params {
        let len = shapes.get(name).map(|s| s.iter().product::<usize>());
        let bad = param.buffers().find(|(_, b)| Some(b.len()) != len);
        if let Some((buffer, values)) = bad {
            return Err(invalid(
                &opt_path,
                format!(
                    "buffer {buffer}.{name} has {} values, which fits no parameter of the model",
                    values.len()
                ),
            ));
        }
    }
    let mut optimizer =
        Optimizer::new(state.optimizer).map_err(|e| invalid(&state_path, e.to_string()))?;
    optimizer.load_state(opt_state);
    let carry = match &state.progress {
        Some(p) if p.epoch != state.history.len() + 1 => {
            return Err(invalid(
                &state_path,
                format!(
                    "the unfinished epoch is {}, but {} epochs are recorded as done",
                    p.epoch,
                    state.history.len()
                ),
            ));
        }
        Some(_) => load_carry(&step_dir, &model)?,
        None => None,
    };
    Ok(CheckpointBundle {
        model,
        optimizer,
        tokenizer,
        options: state.train,
        history: state.history,
        progress: state.progress,
        carry,
    })
}
