//! The `recur` command line.

use clap::{Parser, Subcommand};

/// Train and sample recurrent language models on text, fast, on the CPU.
#[derive(Debug, Parser)]
#[command(name = "recur", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the instruction-set path the kernels use on this CPU.
    Isa,
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::Isa => println!("{}", recur::kernels::Isa::active()),
    }
}
