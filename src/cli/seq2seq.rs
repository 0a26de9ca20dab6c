//! `recur seq2seq train|decode`: an encoder–decoder on a synthetic transduction task (reverse,
//! sort or add digit strings), trained with teacher forcing (or scheduled sampling) and scored
//! by exact match on held-out strings, greedy and beam search.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand, ValueEnum};
use recur::engine::checkpoint::{LoadOptions, Tensor, load_safetensors, save_safetensors};
use recur::engine::optim::{GradClip, LrSchedule, OptimizerConfig};
use recur::engine::seq2seq::train::{
    TeacherSchedule, TrainConfig, Trainer, evaluate_loss, exact_match_beam, exact_match_greedy,
};
use recur::engine::seq2seq::{BeamConfig, Bridge, LossStats, Seq2Seq, Seq2SeqConfig};
use recur::engine::tasks::transduction::{Transduction, TransductionTask};
use recur::kernels::{CellKind, Isa, Par, RnnActivation};

use super::CliError;
use super::args::{ModelArg, positive_f32, positive_usize};

/// `recur seq2seq`.
#[derive(Debug, Args)]
pub struct Seq2SeqArgs {
    #[command(subcommand)]
    pub command: Seq2SeqCommand,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Seq2SeqCommand {
    /// Train on a generated transduction task and report held-out exact match.
    Train(Seq2SeqTrainArgs),
    /// Decode digit strings with a trained model.
    Decode(Seq2SeqDecodeArgs),
}

/// The transduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TaskArg {
    /// 3141 → 1413.
    Reverse,
    /// 3141 → 1134.
    Sort,
    /// 12+345 → 357.
    Add,
}

/// The bridge from the encoder's final state to the decoder's initial state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BridgeArg {
    /// The same state (unidirectional, equal sizes).
    Identity,
    /// Forward + backward final states (bidirectional, equal sizes).
    Sum,
    /// tanh(W·[forward; backward] + b) (any sizes).
    Dense,
}

/// `recur seq2seq train`.
#[derive(Debug, Args)]
#[command(after_help = "Example (the RESULTS.md run):\n  \
    recur seq2seq train --task reverse --out runs/seq2seq-reverse\n  \
    recur seq2seq decode --run runs/seq2seq-reverse --beam 4 31415 2718")]
pub struct Seq2SeqTrainArgs {
    /// The transduction.
    #[arg(long, value_enum, default_value_t = TaskArg::Reverse)]
    pub task: TaskArg,
    /// Shortest source (each operand for add).
    #[arg(long, default_value_t = 1, value_parser = positive_usize)]
    pub min_len: usize,
    /// Longest source (each operand for add).
    #[arg(long, default_value_t = 10, value_parser = positive_usize)]
    pub max_len: usize,
    /// Recurrent cell of encoder and decoder.
    #[arg(long, value_enum, default_value_t = ModelArg::Lstm)]
    pub cell: ModelArg,
    /// Hidden units of the encoder (per direction) and the decoder.
    #[arg(long, default_value_t = 128, value_parser = positive_usize)]
    pub hidden: usize,
    /// Embedding width of source and target tokens.
    #[arg(long, default_value_t = 32, value_parser = positive_usize)]
    pub embed: usize,
    /// Layers of encoder and decoder.
    #[arg(long, default_value_t = 1, value_parser = positive_usize)]
    pub layers: usize,
    /// Bidirectional encoder.
    #[arg(long)]
    pub bidirectional: bool,
    /// Encoder state → decoder state [default: identity, or dense with --bidirectional].
    #[arg(long, value_enum)]
    pub bridge: Option<BridgeArg>,
    /// Pairs per step.
    #[arg(long, default_value_t = 64, value_parser = positive_usize)]
    pub batch_size: usize,
    /// Optimiser (Adam) steps.
    #[arg(long, default_value_t = 4000, value_parser = positive_usize)]
    pub steps: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 0.003, value_parser = positive_f32)]
    pub learning_rate: f32,
    /// Learning rate at the last step as a fraction of --learning-rate (exponential decay in
    /// between; 1 = constant).
    #[arg(long, default_value_t = 0.1, value_parser = positive_f32)]
    pub final_lr_fraction: f32,
    /// Rescale gradients whose global L2 norm exceeds N.
    #[arg(long, default_value_t = 5.0, value_parser = positive_f32)]
    pub clip_norm: f32,
    /// Teacher-forcing ratio at the first step, in [0, 1].
    #[arg(long, default_value_t = 1.0, value_parser = ratio)]
    pub teacher_forcing: f32,
    /// Teacher-forcing ratio at the last step (linear in between: scheduled sampling)
    /// [default: --teacher-forcing].
    #[arg(long, value_parser = ratio)]
    pub teacher_forcing_end: Option<f32>,
    /// Distinct held-out strings to score.
    #[arg(long, default_value_t = 2000, value_parser = positive_usize)]
    pub held_out: usize,
    /// Beam width of the final beam-search evaluation.
    #[arg(long, default_value_t = 4, value_parser = positive_usize)]
    pub beam: usize,
    /// Length-normalisation exponent α of beam search (0 = none).
    #[arg(long, default_value_t = 0.6, value_parser = non_negative_f32)]
    pub length_penalty: f32,
    /// Print progress (and held-out greedy exact match on 500 strings) every N steps.
    #[arg(long, default_value_t = 500, value_parser = positive_usize)]
    pub eval_every: usize,
    /// Seed of initialisation, the training stream and the held-out set.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads [default: all cores].
    #[arg(long, value_parser = positive_usize)]
    pub threads: Option<usize>,
    /// Directory for model.safetensors (must not hold one already) [default: no model saved].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `recur seq2seq decode`.
#[derive(Debug, Args)]
pub struct Seq2SeqDecodeArgs {
    /// Directory written by `recur seq2seq train --out`.
    #[arg(long, value_name = "DIR")]
    pub run: PathBuf,
    /// Beam width (1 = greedy).
    #[arg(long, default_value_t = 1, value_parser = positive_usize)]
    pub beam: usize,
    /// Length-normalisation exponent α of beam search (0 = none).
    #[arg(long, default_value_t = 0.6, value_parser = non_negative_f32)]
    pub length_penalty: f32,
    /// Source strings, e.g. 31415 (or 12+345 for add).
    #[arg(required = true)]
    pub inputs: Vec<String>,
}

fn ratio(s: &str) -> Result<f32, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("expected a number, found {s:?}"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("expected a ratio in [0, 1], found {s}"));
    }
    Ok(v as f32)
}

fn non_negative_f32(s: &str) -> Result<f32, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("expected a number, found {s:?}"))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("expected a finite number ≥ 0, found {s}"));
    }
    Ok(v as f32)
}

/// Runs `recur seq2seq …`.
pub fn seq2seq_command(args: Seq2SeqArgs) -> Result<(), CliError> {
    match args.command {
        Seq2SeqCommand::Train(a) => train_command(&a),
        Seq2SeqCommand::Decode(a) => decode_command(&a),
    }
}

fn task_kind(task: TaskArg) -> Transduction {
    match task {
        TaskArg::Reverse => Transduction::Reverse,
        TaskArg::Sort => Transduction::Sort,
        TaskArg::Add => Transduction::Add,
    }
}

fn cell_kind(cell: ModelArg) -> CellKind {
    match cell {
        ModelArg::Rnn => CellKind::Rnn(RnnActivation::Tanh),
        ModelArg::Lstm => CellKind::Lstm,
        ModelArg::Gru => CellKind::Gru,
    }
}

fn bridge_kind(bridge: BridgeArg) -> Bridge {
    match bridge {
        BridgeArg::Identity => Bridge::Identity,
        BridgeArg::Sum => Bridge::Sum,
        BridgeArg::Dense => Bridge::Dense,
    }
}

fn with_threads<T: Send>(
    threads: Option<usize>,
    f: impl FnOnce() -> Result<T, CliError> + Send,
) -> Result<T, CliError> {
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        builder = builder.num_threads(n);
    }
    let pool = builder
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the thread pool: {e}")))?;
    pool.install(f)
}

fn model_path(dir: &Path) -> PathBuf {
    dir.join("model.safetensors")
}

fn train_command(a: &Seq2SeqTrainArgs) -> Result<(), CliError> {
    let task = TransductionTask::new(task_kind(a.task), a.min_len, a.max_len)
        .map_err(|e| CliError::bad_input(format!("--min-len/--max-len: {e}")))?;
    let bridge = a.bridge.map_or(
        if a.bidirectional {
            Bridge::Dense
        } else {
            Bridge::Identity
        },
        bridge_kind,
    );
    let config = Seq2SeqConfig {
        embed_dim: a.embed,
        num_layers: a.layers,
        bidirectional: a.bidirectional,
        bridge,
        par: Par::Rayon(0),
        isa: Isa::active(),
        ..Seq2SeqConfig::new(
            cell_kind(a.cell),
            task.source_vocab(),
            task.target_vocab(),
            a.hidden,
        )
    };
    config
        .validate()
        .map_err(|e| CliError::bad_input(e.to_string()))?;
    if let Some(dir) = &a.out
        && model_path(dir).exists()
    {
        return Err(CliError::bad_input(format!(
            "--out {}: already holds model.safetensors; choose another directory",
            dir.display()
        )));
    }
    let train_config = TrainConfig {
        batch: a.batch_size,
        steps: a.steps,
        optimizer: OptimizerConfig::pytorch_adam()
            .with_learning_rate(a.learning_rate)
            .with_schedule(LrSchedule::Exponential {
                decay_steps: a.steps as u64,
                decay_rate: a.final_lr_fraction,
            }),
        clip: GradClip::GlobalNorm(a.clip_norm),
        teacher: TeacherSchedule {
            start: a.teacher_forcing,
            end: a.teacher_forcing_end.unwrap_or(a.teacher_forcing),
        },
        seed: a.seed,
    };
    let held_out = task.held_out(a.held_out, a.seed ^ 0x05EE_D0F4_E1D0_u64);
    let probe = &held_out[..held_out.len().min(500)];
    let max_len = task.max_target_len() + 1;
    with_threads(a.threads, || {
        let mut model = config
            .init(a.seed)
            .map_err(|e| CliError::bad_input(e.to_string()))?;
        println!(
            "seq2seq: task {} (lengths {}..={}), {}{} hidden {} embed {} layers {}, bridge {}, \
             {} parameters; batch {}, {} steps, Adam lr {} decaying to ×{}, clip {}, teacher forcing {}→{}, \
             seed {}, threads {}, ISA {}",
            task.kind.name(),
            task.min_len,
            task.max_len,
            if a.bidirectional {
                "bidirectional "
            } else {
                ""
            },
            config.cell.name(),
            config.encoder_hidden,
            config.embed_dim,
            config.num_layers,
            bridge.name(),
            model.num_params(),
            a.batch_size,
            a.steps,
            a.learning_rate,
            a.final_lr_fraction,
            a.clip_norm,
            train_config.teacher.start,
            train_config.teacher.end,
            a.seed,
            rayon::current_num_threads(),
            config.isa.clamp_to_host(),
        );
        println!("held-out: {} distinct strings", held_out.len());
        let started = Instant::now();
        let mut trainer =
            Trainer::new(&model, &train_config).map_err(|e| CliError::bad_input(e.to_string()))?;
        let mut window = LossStats::default();
        for step in 1..=a.steps {
            let stats = trainer
                .step(&mut model, |rng| task.train_pair(rng))
                .map_err(|e| CliError::Runtime(e.to_string()))?;
            window.add(&stats);
            if step % a.eval_every == 0 || step == a.steps {
                let probe_em = exact_match_greedy(&model, probe, 256, max_len)
                    .map_err(|e| CliError::Runtime(e.to_string()))?;
                println!(
                    "step {step:6}  train loss {:.4}  token acc {:.2}%  held-out greedy exact \
                     match {:.2}% (of {})  {:.0} s",
                    window.mean_loss(),
                    100.0 * window.token_accuracy(),
                    100.0 * probe_em.rate(),
                    probe_em.total,
                    started.elapsed().as_secs_f64()
                );
                window = LossStats::default();
            }
        }
        let train_secs = started.elapsed().as_secs_f64();
        let loss =
            evaluate_loss(&model, &held_out, 256).map_err(|e| CliError::Runtime(e.to_string()))?;
        let greedy = exact_match_greedy(&model, &held_out, 256, max_len)
            .map_err(|e| CliError::Runtime(e.to_string()))?;
        let beam_config = BeamConfig::new(a.beam, max_len).with_length_penalty(a.length_penalty);
        let beam = exact_match_beam(&model, &held_out, &beam_config)
            .map_err(|e| CliError::Runtime(e.to_string()))?;
        println!(
            "held-out ({} strings): loss {:.4}, token accuracy {:.2}%, exact match greedy {:.2}% \
             ({}/{}), beam {} (α {}) {:.2}% ({}/{}); training {:.0} s",
            held_out.len(),
            loss.mean_loss(),
            100.0 * loss.token_accuracy(),
            100.0 * greedy.rate(),
            greedy.correct,
            greedy.total,
            a.beam,
            a.length_penalty,
            100.0 * beam.rate(),
            beam.correct,
            beam.total,
            train_secs
        );
        if let Some(dir) = &a.out {
            save_model(dir, &model, &task)?;
            println!("saved {}", model_path(dir).display());
        }
        Ok(())
    })
}

fn save_model(dir: &Path, model: &Seq2Seq, task: &TransductionTask) -> Result<(), CliError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::Runtime(format!("cannot create {}: {e}", dir.display())))?;
    let mut tensors = BTreeMap::new();
    for (name, values) in model.named_params() {
        tensors.insert(name, Tensor::new(vec![values.len()], values.to_vec()));
    }
    let c = model.config();
    let mut meta = BTreeMap::new();
    for (k, v) in [
        ("task", task.kind.name().to_string()),
        ("min_len", task.min_len.to_string()),
        ("max_len", task.max_len.to_string()),
        ("cell", c.cell.name().to_string()),
        ("hidden", c.encoder_hidden.to_string()),
        ("embed", c.embed_dim.to_string()),
        ("layers", c.num_layers.to_string()),
        ("bidirectional", c.bidirectional.to_string()),
        ("bridge", c.bridge.name().to_string()),
    ] {
        meta.insert(k.to_string(), v);
    }
    save_safetensors(&model_path(dir), &tensors, &meta)
        .map_err(|e| CliError::Runtime(e.to_string()))
}

fn load_model(dir: &Path) -> Result<(Seq2Seq, TransductionTask), CliError> {
    let path = model_path(dir);
    if !path.is_file() {
        return Err(CliError::bad_input(format!(
            "--run {}: expected a directory written by `recur seq2seq train --out`, found no \
             model.safetensors",
            dir.display()
        )));
    }
    let (tensors, meta) = load_safetensors(&path, LoadOptions::default())
        .map_err(|e| CliError::bad_input(e.to_string()))?;
    let bad = |what: &str| {
        CliError::bad_input(format!(
            "{}: metadata `{what}` is missing or invalid",
            path.display()
        ))
    };
    let get = |k: &str| meta.get(k).ok_or_else(|| bad(k));
    let num = |k: &str| -> Result<usize, CliError> { get(k)?.parse().map_err(|_| bad(k)) };
    let kind = match get("task")?.as_str() {
        "reverse" => Transduction::Reverse,
        "sort" => Transduction::Sort,
        "add" => Transduction::Add,
        _ => return Err(bad("task")),
    };
    let task = TransductionTask::new(kind, num("min_len")?, num("max_len")?)
        .map_err(|_| bad("min_len"))?;
    let cell = match get("cell")?.as_str() {
        "lstm" => CellKind::Lstm,
        "gru" => CellKind::Gru,
        "rnn_tanh" | "rnn" => CellKind::Rnn(RnnActivation::Tanh),
        "rnn_relu" => CellKind::Rnn(RnnActivation::Relu),
        _ => return Err(bad("cell")),
    };
    let bridge = match get("bridge")?.as_str() {
        "identity" => Bridge::Identity,
        "sum" => Bridge::Sum,
        "dense" => Bridge::Dense,
        _ => return Err(bad("bridge")),
    };
    let config = Seq2SeqConfig {
        embed_dim: num("embed")?,
        num_layers: num("layers")?,
        bidirectional: get("bidirectional")?
            .parse()
            .map_err(|_| bad("bidirectional"))?,
        bridge,
        ..Seq2SeqConfig::new(
            cell,
            task.source_vocab(),
            task.target_vocab(),
            num("hidden")?,
        )
    };
    let mut model = config
        .init(0)
        .map_err(|e| CliError::bad_input(format!("{}: {e}", path.display())))?;
    model
        .load_params(|name| tensors.get(name).map(|t| &t.data[..]), tensors.len())
        .map_err(|e| CliError::bad_input(format!("{}: {e}", path.display())))?;
    Ok((model, task))
}

fn decode_command(a: &Seq2SeqDecodeArgs) -> Result<(), CliError> {
    let (model, task) = load_model(&a.run)?;
    let sources = a
        .inputs
        .iter()
        .map(|s| task.parse_source(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CliError::bad_input(e.to_string()))?;
    let max_len = task.max_target_len() + 1;
    let config = BeamConfig::new(a.beam, max_len).with_length_penalty(a.length_penalty);
    for (text, source) in a.inputs.iter().zip(&sources) {
        let best = model
            .beam(source, &config)
            .map_err(|e| CliError::Runtime(e.to_string()))?;
        let hyp = best
            .first()
            .ok_or_else(|| CliError::Runtime("no hypothesis".into()))?;
        println!(
            "{text}\t{}\t(log p {:.4}{})",
            task.render_target(&hyp.tokens),
            hyp.log_prob,
            if hyp.finished { "" } else { ", no EOS" }
        );
    }
    Ok(())
}
