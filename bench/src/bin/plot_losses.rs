//! Loss curves of recur runs and Keras runs on one SVG plot (for RESULTS.md).
//!
//! ```text
//! plot_losses --out docs/plots/char-alice.svg --title "…" \
//!     recur=runs/char-alice/metrics.jsonl keras=keras-char.jsonl
//! ```
//!
//! Each input is `label=path` of JSON lines: recur's `metrics.jsonl` (`epoch`, `train_loss`,
//! `val_loss`) or the output of `bench/keras/seed_experiments.py` (`epoch`, `loss`). Lines without
//! an epoch and a loss (Keras's samples and headers) are skipped. A recur run with validation
//! losses adds a second series, "<label> validation".

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use recur_engine::model::plot::{Series, line_plot_svg};

#[derive(Parser)]
#[command(about = "Plot per-epoch losses of recur and Keras runs into one SVG")]
struct Args {
    /// Output SVG file.
    #[arg(long)]
    out: PathBuf,
    /// Plot title.
    #[arg(long, default_value = "training loss per epoch")]
    title: String,
    /// `label=path` of a JSON-lines file.
    #[arg(required = true)]
    inputs: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("plot_losses: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let mut series = Vec::new();
    for input in &args.inputs {
        let (label, path) = input
            .split_once('=')
            .ok_or_else(|| format!("{input:?}: expected label=path"))?;
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("{path}: cannot read it: {e}"))?;
        let mut train = Vec::new();
        let mut val = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let v: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| format!("{path}:{}: not JSON: {e}", n + 1))?;
            let Some(epoch) = v["epoch"].as_f64() else {
                continue;
            };
            if let Some(loss) = v["train_loss"].as_f64().or_else(|| v["loss"].as_f64()) {
                train.push((epoch, loss));
            }
            if let Some(loss) = v["val_loss"].as_f64() {
                val.push((epoch, loss));
            }
        }
        if train.is_empty() {
            return Err(format!("{path}: no per-epoch losses in it"));
        }
        series.push(Series {
            name: label.to_string(),
            points: train,
        });
        if !val.is_empty() {
            series.push(Series {
                name: format!("{label} validation"),
                points: val,
            });
        }
    }
    let svg = line_plot_svg(&args.title, "epoch", "cross-entropy (nats)", &series);
    std::fs::write(&args.out, svg)
        .map_err(|e| format!("{}: cannot write it: {e}", args.out.display()))
}
