//! How long loading a large PyTorch LSTM state_dict takes, and how much anonymous memory it holds.
//!
//! Writes a ~100 MB safetensors state_dict of an `nn.LSTM` (default: input 1024, hidden 2048,
//! one layer: 4·2048·(1024 + 2048) + 2·4·2048 ≈ 25.2 M f32 = 100.7 MB) to a temporary file, then
//! times, in a fresh process (so its memory figures are the load's alone): `StateDict::open` (memory map + validation + one f32
//! conversion per tensor), `load_rnn` (moves the buffers, no copy), and the first inference pass
//! on one step (which packs the weights into the kernels' layout), printing the process's
//! anonymous resident memory (`RssAnon`, Linux) after each and the peak resident set (`VmHWM`,
//! which counts the mapped file's pages too). The file was just written, so it is read from the
//! page cache: this is the warm-cache load time.
//!
//! ```sh
//! cargo run --release --example interop_load_time              # I = 1024, H = 2048
//! cargo run --release --example interop_load_time -- 512 1024  # I, H
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use recur::engine::checkpoint::save_safetensors;
use recur::engine::interop::pytorch::{TorchRnnSpec, rnn_state_dict};
use recur::engine::interop::{Bias, StateDict};
use recur::engine::rnn::{RnnConfig, SeqBatch};
use recur::kernels::CellKind;

/// `RssAnon` of this process in MiB (0 where /proc is not there).
fn rss_anon_mb() -> f64 {
    status_mib("RssAnon:")
}

/// A `kB` field of `/proc/self/status` in MiB.
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [mode, path] = &args[..]
        && mode == "--load"
    {
        return load(Path::new(path));
    }
    let input: usize = args.first().map_or(Ok(1024), |a| a.parse())?;
    let hidden: usize = args.get(1).map_or(Ok(2048), |a| a.parse())?;
    let dir = std::env::temp_dir().join(format!("recur-load-time-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("lstm.safetensors");
    {
        let config = RnnConfig::new(CellKind::Lstm, input, hidden);
        let rnn = config.init(1)?;
        save_safetensors(
            &path,
            &rnn_state_dict(&rnn, "lstm.", Bias::Present)?,
            &BTreeMap::new(),
        )?;
    }
    let bytes = std::fs::metadata(&path)?.len();
    println!(
        "file: {:.1} MB (nn.LSTM({input}, {hidden})), loaded by a fresh process:",
        bytes as f64 / 1e6
    );
    // A fresh process, so its peak memory is the load's alone (not the writing's).
    let status = std::process::Command::new(std::env::current_exe()?)
        .arg("--load")
        .arg(&path)
        .status()?;
    std::fs::remove_dir_all(&dir)?;
    if !status.success() {
        return Err(format!("the loading process failed: {status}").into());
    }
    Ok(())
}

fn load(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let bytes = std::fs::metadata(path)?.len();
    println!("RssAnon before loading: {:.1} MiB", rss_anon_mb());
    let start = Instant::now();
    let mut file = StateDict::open(path)?;
    let opened = start.elapsed();
    println!(
        "open (mmap, validate, convert to f32): {:.1} ms, RssAnon {:.1} MiB",
        opened.as_secs_f64() * 1e3,
        rss_anon_mb()
    );
    let start = Instant::now();
    let spec = TorchRnnSpec::infer(&file, "lstm.", CellKind::Lstm)?;
    let rnn = file.load_rnn("lstm.", &spec)?;
    file.finish()?;
    let loaded = start.elapsed();
    println!(
        "load_rnn (move into the layer): {:.3} ms, RssAnon {:.1} MiB",
        loaded.as_secs_f64() * 1e3,
        rss_anon_mb()
    );
    println!(
        "peak resident after loading (VmHWM, file pages included): {:.1} MiB",
        status_mib("VmHWM:")
    );
    let x = vec![0.1f32; rnn.config().input_size];
    let start = Instant::now();
    let out = rnn.infer(SeqBatch::new(&x, 1, 1), None)?;
    println!(
        "first inference step (packs the weights): {:.1} ms, RssAnon {:.1} MiB, peak {:.1} MiB (h[0] = {:.4})",
        start.elapsed().as_secs_f64() * 1e3,
        rss_anon_mb(),
        status_mib("VmHWM:"),
        out.output[0]
    );
    println!(
        "total open + load: {:.1} ms ({:.2} GB/s of file)",
        (opened + loaded).as_secs_f64() * 1e3,
        bytes as f64 / (opened + loaded).as_secs_f64() / 1e9
    );
    Ok(())
}
