//! The `recur` command line: parsing, validation, and the commands.
//!
//! Exit codes: 0 on success, 2 on bad input (a flag out of range, a missing or unusable corpus
//! or checkpoint) with a one-line message on stderr and nothing written, 1 on any other failure.
//!
//! Each command validates its flags into a typed config ([`config`]) before doing any I/O, then
//! hands over to a `run_*` function — the seam where the trainer, sampler and evaluator plug in.

pub mod args;
pub mod cloze;
pub mod commands;
pub mod config;
mod crnn;
pub mod diagnose;
mod forecast;
pub mod ngram;
mod run;
pub mod seq2seq;

use std::ffi::OsString;

use clap::Parser;
use clap::error::ErrorKind;
use recur::engine::data::DataError;

use args::{Cli, Command};

/// Why a command failed, and so its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A flag or an input file the user must fix (exit code 2).
    #[error("{0}")]
    BadInput(String),
    /// A corpus, cache or vocabulary problem (exit code 2: it names the file and the problem).
    #[error(transparent)]
    Data(#[from] DataError),
    /// Something went wrong while running (training stopped, I/O failed) (exit code 1).
    #[error("{0}")]
    Runtime(String),
}

impl CliError {
    /// A bad flag or input.
    pub fn bad_input(message: impl Into<String>) -> CliError {
        CliError::BadInput(message.into())
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::BadInput(_) | CliError::Data(_) => 2,
            CliError::Runtime(_) => 1,
        }
    }
}

/// Runs the command line `argv` (program name first) and returns the exit code.
pub fn main_with_args(argv: impl IntoIterator<Item = OsString>) -> i32 {
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => return report_clap_error(&e),
    };
    let result = match cli.command {
        Command::Train(a) => config::TrainConfig::from_args(&a).and_then(commands::train_command),
        Command::Generate(a) => {
            config::GenerateConfig::from_args(&a).and_then(commands::generate_command)
        }
        Command::Eval(a) => config::EvalConfig::from_args(&a).and_then(commands::eval_command),
        Command::Forecast(a) => forecast::forecast_command(&a),
        Command::Seq2seq(a) => seq2seq::seq2seq_command(a),
        Command::Cloze(a) => cloze::cloze_command(a),
        Command::Ngram(a) => ngram::ngram_command(&a),
        Command::Diagnose(a) => diagnose::diagnose_command(&a),
        Command::Crnn(a) => crnn::crnn_command(&a),
        Command::Isa => {
            println!("{}", recur::kernels::Isa::active());
            Ok(())
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

/// Help and version go to stdout with code 0; every parse error becomes one line on stderr
/// with code 2 (clap's usage block and tips are dropped; `--help` has them).
fn report_clap_error(e: &clap::Error) -> i32 {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            0
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            2
        }
        _ => {
            eprintln!("{}", first_paragraph(&e.to_string()));
            2
        }
    }
}

/// The first paragraph of a clap message, folded onto one line.
fn first_paragraph(message: &str) -> String {
    let mut out = String::new();
    for line in message.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("Usage:") {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(line);
    }
    if !out.starts_with("error:") {
        out.insert_str(0, "error: ");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_errors_fold_to_one_line() {
        let err = Cli::try_parse_from(["recur", "generate"]).unwrap_err();
        let line = first_paragraph(&err.to_string());
        assert!(!line.contains('\n'));
        assert!(line.contains("--checkpoint"), "{line}");
        let err = Cli::try_parse_from(["recur", "train", "--rnn-size", "0"]).unwrap_err();
        let line = first_paragraph(&err.to_string());
        assert!(
            line.starts_with("error: invalid value '0' for '--rnn-size"),
            "{line}"
        );
    }
}
