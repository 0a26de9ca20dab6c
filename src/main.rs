//! The `recur` command line (see `src/cli/` and `recur --help`).

#![forbid(unsafe_code)]

mod cli;

// Training allocates and frees the same large buffers every minibatch; glibc's allocator returns
// them to the OS and faults them back in (a million page faults per epoch of the char model),
// mimalloc keeps them for reuse.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(cli::main_with_args(std::env::args_os()));
}
