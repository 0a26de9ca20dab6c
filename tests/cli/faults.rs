//! Faults through the built binary, each bounded to a few seconds:
//!
//! - a training run killed with SIGKILL at random points resumes from its last checkpoint
//!   (`--resume`) and ends with weights and optimiser state bit-identical to an uninterrupted run;
//! - a checkpoint write that fails part-way (file-size limit: `ulimit -f`, with SIGXFSZ ignored
//!   so the write returns EFBIG) reports the error with exit code 1 and leaves the previous
//!   checkpoint untouched and loadable;
//! - a NaN injected into a gradient (`RECUR_FAULT_INJECT=nan-grad@step:N`) stops training with a
//!   one-line message and exit code 1, the last checkpoint intact.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use crate::common::{TEXT, last_step, read, recur, run_in as run};

/// `recur train` flags of the tiny run every test trains.
fn train_args<'a>(run: &'a str, epochs: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--corpus",
        "c.txt",
        "--checkpoint-dir",
        run,
        "--model",
        "lstm",
        "--rnn-size",
        "8",
        "--batch-size",
        "16",
        "--max-epochs",
        epochs,
        "--seed",
        "3",
        "--threads",
        "1",
    ]
}

fn workdir(repeat: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.txt"), TEXT.repeat(repeat)).unwrap();
    dir
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The files that must survive a fault, by name: the pointers and every file of the last step.
fn checkpoint_bytes(run: &Path) -> Vec<(String, Vec<u8>)> {
    let step = last_step(run);
    let mut out = vec![("last".to_string(), read(&run.join("last")))];
    for name in [
        "model.safetensors",
        "optimizer.safetensors",
        "state.json",
        "tokenizer.json",
    ] {
        out.push((name.to_string(), read(&step.join(name))));
    }
    out
}

fn generate_works(dir: &Path) {
    let out = run(dir, &["generate", "--checkpoint", "run", "--length", "5"]);
    assert_eq!(out.status.code(), Some(0), "generate: {}", stderr(&out));
}

/// A small xorshift generator seeded from the clock; the seed is printed so a failure reproduces.
struct Jitter(u64);
impl Jitter {
    fn from_clock() -> Jitter {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        println!("kill-point seed: {seed}");
        Jitter(seed)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The epoch number of a `recur train` progress line (`epoch   3: loss …`).
fn epoch_of(line: &str) -> Option<usize> {
    line.strip_prefix("epoch")?
        .split(':')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Reads the child's progress lines until it has printed its plan (`kill_after == 0`: killed
/// before any step) or finished epoch `kill_after` or a later one that is not the last; then waits
/// `extra` (to land mid-epoch or mid-save as well) and SIGKILLs it. Returns whether the kill
/// landed on a running process. Kill points follow the run's own progress, not a clock, so a slow
/// (loaded) machine moves them with the run instead of past its end.
fn kill_on_progress(
    child: &mut Child,
    kill_after: usize,
    last_epoch: usize,
    extra: Duration,
) -> bool {
    let stdout = child.stdout.take().expect("stdout is piped");
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("progress line");
        let reached = if kill_after == 0 {
            line.starts_with("kernels:")
        } else {
            epoch_of(&line).is_some_and(|e| e >= kill_after && e < last_epoch)
        };
        if reached {
            // The pipe stays open while waiting (the reader is alive), so the child never sees
            // EPIPE.
            std::thread::sleep(extra);
            if child.try_wait().unwrap().is_some() {
                return false;
            }
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return true;
        }
    }
    false
}

#[test]
fn sigkill_at_random_points_then_resume_is_bit_identical() {
    const EPOCHS: usize = 5;
    let epochs = EPOCHS.to_string();
    let dir = workdir(40);

    // The uninterrupted run, timed to size the extra delays.
    let started = Instant::now();
    let out = run(dir.path(), &train_args("reference", &epochs));
    let duration = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let reference = dir.path().join("reference");

    let run_dir = dir.path().join("run");
    let mut jitter = Jitter::from_clock();
    let mut kills_mid_run = 0;
    let mut attempts = 0;
    loop {
        attempts += 1;
        assert!(attempts <= 20, "the run never finished");
        let resume = run_dir.join("last").exists();
        let mut args = train_args("run", &epochs);
        if resume {
            args.push("--resume");
        }
        let mut child = recur()
            .args(&args)
            .current_dir(dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        if kills_mid_run < 3 {
            // After the plan or after epoch 1..EPOCHS−1; the first kill right on the line (so
            // one lands however slow the machine), later ones up to ~half an epoch later.
            let kill_after = (jitter.unit() * EPOCHS as f64) as usize;
            let extra = if kills_mid_run == 0 {
                Duration::ZERO
            } else {
                duration.mul_f64(0.5 * jitter.unit() / EPOCHS as f64)
            };
            if kill_on_progress(&mut child, kill_after, EPOCHS, extra) {
                kills_mid_run += 1;
                println!(
                    "killed attempt {attempts} (resume: {resume}) after epoch {kill_after} + \
                     {extra:?}; checkpoint now: {:?}",
                    std::fs::read_to_string(run_dir.join("last")).ok()
                );
                continue;
            }
        }
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        break;
    }
    assert!(
        kills_mid_run >= 1,
        "no kill landed while the run was going; the test checked nothing"
    );
    let want = checkpoint_bytes(&reference);
    let got = checkpoint_bytes(&run_dir);
    for ((name, w), (_, g)) in want.iter().zip(&got) {
        if name == "state.json" {
            continue; // holds wall times
        }
        assert!(
            w == g,
            "{name} differs from the uninterrupted run's after {kills_mid_run} kill(s)"
        );
    }
    println!("{kills_mid_run} kill(s), {attempts} attempt(s): bit-identical");
}

#[test]
fn failed_checkpoint_write_leaves_the_previous_one_loadable() {
    let dir = workdir(10);
    let out = run(dir.path(), &train_args("run", "1"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let run_dir = dir.path().join("run");
    let before = checkpoint_bytes(&run_dir);

    // The next epoch's checkpoint cannot be written: files may not grow past 512 bytes, and
    // SIGXFSZ is ignored so the write fails with EFBIG instead of killing the process.
    let mut args = train_args("run", "2");
    args.push("--resume");
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"trap '' XFSZ; ulimit -f 1; exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_recur"))
        .args(&args)
        .current_dir(dir.path())
        .env_remove("RECUR_DATA")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected a reported failure: {err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("model.safetensors") && err.contains("File too large"),
        "the error names the file and the cause: {err}"
    );
    assert_eq!(
        checkpoint_bytes(&run_dir),
        before,
        "the previous checkpoint changed"
    );
    let leftovers: Vec<String> = std::fs::read_dir(&run_dir)
        .unwrap()
        .flat_map(|e| {
            let e = e.unwrap();
            let mut names = vec![e.file_name().to_string_lossy().into_owned()];
            if e.path().is_dir() {
                names.extend(
                    std::fs::read_dir(e.path())
                        .unwrap()
                        .map(|f| f.unwrap().file_name().to_string_lossy().into_owned()),
                );
            }
            names
        })
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    generate_works(dir.path());

    // Without the limit, the run resumes from the intact checkpoint.
    let out = run(dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("epoch   2: loss"));
}

#[test]
fn nan_gradient_stops_training_cleanly() {
    let dir = workdir(10);
    // One clean epoch gives the checkpoint the faulted run must leave in place.
    let out = run(dir.path(), &train_args("one-epoch", "1"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let one_epoch = dir.path().join("one-epoch");
    let step_name = last_step(&one_epoch)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let steps_per_epoch: u64 = step_name.trim_start_matches("step-").parse().unwrap();

    // Poison a gradient in the middle of epoch 2.
    let poisoned = steps_per_epoch + steps_per_epoch / 2;
    let out = recur()
        .args(train_args("run", "3"))
        .env("RECUR_FAULT_INJECT", format!("nan-grad@step:{poisoned}"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("epoch 2")
            && err.contains("gradient norm is not finite")
            && err.contains("last checkpoint is untouched"),
        "{err}"
    );
    let run_dir = dir.path().join("run");
    assert_eq!(
        last_step(&run_dir).file_name().unwrap().to_string_lossy(),
        step_name,
        "the last checkpoint should be epoch 1's"
    );
    // Epoch 1's checkpoint is exactly the clean one-epoch run's (state.json holds wall times).
    for (name, bytes) in checkpoint_bytes(&one_epoch) {
        if name != "state.json" {
            let got = checkpoint_bytes(&run_dir)
                .into_iter()
                .find(|(n, _)| *n == name)
                .unwrap()
                .1;
            assert!(
                got == bytes,
                "{name} differs from the clean epoch-1 checkpoint"
            );
        }
    }
    generate_works(dir.path());

    // A malformed injection request is bad input.
    let out = recur()
        .args(train_args("other", "1"))
        .env("RECUR_FAULT_INJECT", "nan-grad@soon")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("RECUR_FAULT_INJECT"));
}
