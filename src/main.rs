//! The `recur` command line (see `src/cli/` and `recur --help`).

#![forbid(unsafe_code)]

mod cli;

fn main() {
    std::process::exit(cli::main_with_args(std::env::args_os()));
}
