//! `rnnbench`: recur's benchmark binary, one JSON line per measurement.

fn main() {
    eprintln!("rnnbench: no benchmarks yet");
    std::process::exit(2);
}
