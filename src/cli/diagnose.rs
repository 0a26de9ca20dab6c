//! `recur diagnose`: gradient-flow profiles ‖∂L/∂h_t‖ over a long sequence for SimpleRNN, LSTM
//! and GRU — at initialisation, after training, and after training with gradient clipping —
//! written as CSV, JSON and SVG plots (see `recur_engine::diagnostics`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use recur::engine::diagnostics::{
    AddingBatch, DiagnosticsError, GradientFlowConfig, GradientFlowModel, GradientProfile,
    TrainSettings,
};
use recur::engine::model::init::InitScheme;
use recur::engine::model::plot::{Series, line_plot_svg};
use recur::engine::optim::GradClip;
use recur::kernels::{CellKind, RnnActivation};

use super::CliError;
use super::args::{InitArg, ModelArg, positive_f32, positive_usize};

/// `recur diagnose`.
#[derive(Debug, Args)]
#[command(
    after_help = "Each cell is trained on the adding problem (two marked values in a long \
    sequence; the target is their sum) with Adam, once without and once with clipping by global \
    norm, from the same initialisation. The loss is at the last step only, so ‖∂L/∂h_t‖ shows how \
    much gradient reaches step t.\n\n\
    Example:\n  \
    recur diagnose --steps 200 --train-steps 300 --out results/gradient-flow"
)]
pub struct DiagnoseArgs {
    /// Cells to compare (comma-separated).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "rnn,lstm,gru"
    )]
    pub cells: Vec<ModelArg>,

    /// T: sequence length.
    #[arg(long, value_name = "T", default_value_t = 200, allow_negative_numbers = true,
          value_parser = positive_usize)]
    pub steps: usize,

    /// H: hidden units.
    #[arg(long, value_name = "H", default_value_t = 64, allow_negative_numbers = true,
          value_parser = positive_usize)]
    pub hidden: usize,

    /// B: sequences per minibatch (training and the measured batch).
    #[arg(long, value_name = "B", default_value_t = 16, allow_negative_numbers = true,
          value_parser = positive_usize)]
    pub batch: usize,

    /// Optimiser steps of each training run.
    #[arg(long, value_name = "N", default_value_t = 300, allow_negative_numbers = true,
          value_parser = positive_usize)]
    pub train_steps: usize,

    /// Adam learning rate.
    #[arg(long, value_name = "LR", default_value_t = 0.01, allow_negative_numbers = true,
          value_parser = positive_f32)]
    pub learning_rate: f32,

    /// Global-norm limit of the clipped runs.
    #[arg(long, value_name = "N", default_value_t = 1.0, allow_negative_numbers = true,
          value_parser = positive_f32)]
    pub clip_norm: f32,

    /// Multiplies the initial recurrent weights (above 1 pushes a SimpleRNN towards exploding);
    /// a comma-separated list runs every cell at each gain.
    #[arg(long, value_name = "G[,G…]", value_delimiter = ',', default_value = "1,1.5",
          allow_negative_numbers = true, value_parser = positive_f32)]
    pub recurrent_gain: Vec<f32>,

    /// Weight initialisation: keras (orthogonal recurrent weights) or pytorch (uniform).
    #[arg(long, value_enum, default_value = "keras")]
    pub init: InitArg,

    /// Seed of the initialisation, the training batches and the measured batch.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Output directory: gradient-flow.csv, gradient-flow.json, gradient-flow-*.svg.
    #[arg(long, value_name = "DIR", default_value = "results/gradient-flow")]
    pub out: PathBuf,
}

/// When a profile was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Init,
    Trained,
    TrainedClipped,
}

impl Stage {
    const ALL: [Stage; 3] = [Stage::Init, Stage::Trained, Stage::TrainedClipped];

    fn name(self) -> &'static str {
        match self {
            Stage::Init => "init",
            Stage::Trained => "trained",
            Stage::TrainedClipped => "trained-clipped",
        }
    }
}

struct Run {
    /// The cell, and its gain when several are compared (e.g. `rnn g=1.5`).
    cell: String,
    stage: Stage,
    profile: GradientProfile,
    /// Mean training loss over the last 10% of the steps (None at initialisation).
    final_train_loss: Option<f64>,
}

fn cell_of(m: ModelArg) -> CellKind {
    match m {
        ModelArg::Rnn => CellKind::Rnn(RnnActivation::Tanh),
        ModelArg::Lstm => CellKind::Lstm,
        ModelArg::Gru => CellKind::Gru,
    }
}

fn cell_name(m: ModelArg) -> &'static str {
    match m {
        ModelArg::Rnn => "rnn",
        ModelArg::Lstm => "lstm",
        ModelArg::Gru => "gru",
    }
}

fn bad(e: DiagnosticsError) -> CliError {
    match e {
        DiagnosticsError::InvalidOption { .. } => CliError::bad_input(e.to_string()),
        e => CliError::Runtime(e.to_string()),
    }
}

/// Runs `recur diagnose`.
pub fn diagnose_command(a: &DiagnoseArgs) -> Result<(), CliError> {
    if a.cells.is_empty() {
        return Err(CliError::bad_input(
            "--cells: expected at least one cell, found none",
        ));
    }
    if a.out.exists() && !a.out.is_dir() {
        return Err(CliError::bad_input(format!(
            "--out {}: is a file, expected a directory",
            a.out.display()
        )));
    }
    if a.recurrent_gain.is_empty() {
        return Err(CliError::bad_input(
            "--recurrent-gain: expected at least one gain, found none",
        ));
    }
    let configs: Vec<(String, GradientFlowConfig)> = a
        .cells
        .iter()
        .flat_map(|&m| a.recurrent_gain.iter().map(move |&g| (m, g)))
        .map(|(m, gain)| {
            (
                if a.recurrent_gain.len() > 1 {
                    format!("{} g={gain}", cell_name(m))
                } else {
                    cell_name(m).to_string()
                },
                GradientFlowConfig {
                    cell: cell_of(m),
                    hidden: a.hidden,
                    steps: a.steps,
                    batch: a.batch,
                    init: match a.init {
                        InitArg::Keras => InitScheme::Keras,
                        InitArg::Pytorch => InitScheme::PyTorch,
                    },
                    recurrent_gain: gain,
                    seed: a.seed,
                },
            )
        })
        .collect();
    // Every option is checked before anything runs or is written.
    let models: Vec<(String, GradientFlowModel)> = configs
        .into_iter()
        .map(|(m, c)| GradientFlowModel::new(c).map(|model| (m, model)))
        .collect::<Result<_, _>>()
        .map_err(bad)?;
    let measured = AddingBatch::generate(
        &mut ChaCha8Rng::seed_from_u64(a.seed ^ 0x00ad_d1e5),
        a.steps,
        a.batch,
    );
    println!(
        "gradient flow: T = {}, H = {}, B = {}, {} training steps (Adam lr {}), clip-norm {}, \
         recurrent gain {:?}, seed {}",
        a.steps,
        a.hidden,
        a.batch,
        a.train_steps,
        a.learning_rate,
        a.clip_norm,
        a.recurrent_gain,
        a.seed
    );
    println!(
        "{:<11} {:<16} {:>14} {:>14} {:>14} {:>12} {:>8}",
        "cell", "stage", "|dL/dh_T|", "|dL/dh_1|", "first/last", "train loss", "seconds"
    );
    let mut runs = Vec::new();
    for (name, model) in models {
        for stage in Stage::ALL {
            let started = Instant::now();
            let mut model = model.clone();
            let clip = match stage {
                Stage::Init => None,
                Stage::Trained => Some(GradClip::None),
                Stage::TrainedClipped => Some(GradClip::GlobalNorm(a.clip_norm)),
            };
            let final_train_loss = match clip {
                None => None,
                Some(clip) => {
                    let losses = model
                        .train(TrainSettings {
                            steps: a.train_steps,
                            learning_rate: a.learning_rate,
                            clip,
                            seed: a.seed.wrapping_add(1),
                        })
                        .map_err(bad)?;
                    let tail = (losses.len() / 10).max(1);
                    Some(losses[losses.len() - tail..].iter().sum::<f64>() / tail as f64)
                }
            };
            let profile = model.gradient_profile(&measured).map_err(bad)?;
            println!(
                "{:<11} {:<16} {:>14.4e} {:>14.4e} {:>14.4e} {:>12} {:>8.1}",
                name,
                stage.name(),
                profile.norms[profile.norms.len() - 1],
                profile.norms[0],
                profile.first_to_last_ratio(),
                final_train_loss.map_or_else(|| "-".to_string(), |l| format!("{l:.5}")),
                started.elapsed().as_secs_f64()
            );
            runs.push(Run {
                cell: name.clone(),
                stage,
                profile,
                final_train_loss,
            });
        }
    }
    write_outputs(&a.out, a, &runs)
        .map_err(|e| CliError::Runtime(format!("--out {}: cannot write: {e}", a.out.display())))?;
    println!(
        "wrote:    {0}/gradient-flow.csv, {0}/gradient-flow.json, {0}/gradient-flow-{{init,trained,trained-clipped}}.svg",
        a.out.display()
    );
    Ok(())
}

fn write_outputs(dir: &Path, a: &DiagnoseArgs, runs: &[Run]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut csv = String::from("cell,stage,t,grad_norm\n");
    for r in runs {
        for (t, n) in r.profile.norms.iter().enumerate() {
            let _ = writeln!(csv, "{},{},{},{n:e}", r.cell, r.stage.name(), t + 1);
        }
    }
    std::fs::write(dir.join("gradient-flow.csv"), csv)?;
    // JSON by hand: the root crate does not depend on serde_json, and every value is a number
    // or a fixed identifier.
    let number = |v: f64| {
        if v.is_finite() {
            format!("{v:e}")
        } else {
            "null".to_string()
        }
    };
    let mut json = format!(
        "{{\n  \"steps\": {}, \"hidden\": {}, \"batch\": {}, \"train_steps\": {}, \
         \"learning_rate\": {}, \"clip_norm\": {}, \"recurrent_gain\": {:?}, \"seed\": {},\n  \
         \"runs\": [\n",
        a.steps,
        a.hidden,
        a.batch,
        a.train_steps,
        a.learning_rate,
        a.clip_norm,
        a.recurrent_gain,
        a.seed
    );
    for (i, r) in runs.iter().enumerate() {
        let _ = writeln!(
            json,
            "    {{\"cell\": \"{}\", \"stage\": \"{}\", \"grad_norm_last\": {}, \
             \"grad_norm_first\": {}, \"first_to_last_ratio\": {}, \"measured_loss\": {}, \
             \"final_train_loss\": {}}}{}",
            r.cell,
            r.stage.name(),
            number(r.profile.norms[r.profile.norms.len() - 1]),
            number(r.profile.norms[0]),
            number(r.profile.first_to_last_ratio()),
            number(r.profile.loss),
            r.final_train_loss
                .map_or_else(|| "null".to_string(), number),
            if i + 1 < runs.len() { "," } else { "" }
        );
    }
    json.push_str("  ]\n}\n");
    std::fs::write(dir.join("gradient-flow.json"), json)?;
    for stage in Stage::ALL {
        let series: Vec<Series> = runs
            .iter()
            .filter(|r| r.stage == stage)
            .map(|r| Series {
                name: r.cell.clone(),
                points: r
                    .profile
                    .norms
                    .iter()
                    .enumerate()
                    .map(|(t, n)| ((t + 1) as f64, n.log10()))
                    .collect(),
            })
            .collect();
        let title = format!(
            "‖∂L/∂h_t‖, loss at T = {}: {}",
            a.steps,
            match stage {
                Stage::Init => "at initialisation".to_string(),
                Stage::Trained => format!("after {} Adam steps", a.train_steps),
                Stage::TrainedClipped => {
                    format!("{} Adam steps, clip-norm {}", a.train_steps, a.clip_norm)
                }
            }
        );
        let svg = line_plot_svg(&title, "time step t", "log10 ‖∂L/∂h_t‖", &series);
        std::fs::write(dir.join(format!("gradient-flow-{}.svg", stage.name())), svg)?;
    }
    Ok(())
}
