//! Helpers shared by the modules of this test binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Three lines of plain lower-case English: few enough distinct characters for the windows of a
/// tiny character model.
pub const TEXT: &str = "the quick brown fox jumps over the lazy dog while the cat sleeps.\n\
                        a stitch in time saves nine, and the early bird catches the worm.\n\
                        all that glitters is not gold; still waters run deep.\n";

/// The built binary, with the environment variables that would change what it does removed:
/// `RECUR_DATA` (where named corpora are found), `RECUR_ISA` (the kernel path; a test that wants
/// one sets it) and `RECUR_FAULT_INJECT` (test faults).
pub fn recur() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_recur"));
    c.env_remove("RECUR_DATA")
        .env_remove("RECUR_ISA")
        .env_remove("RECUR_FAULT_INJECT");
    c
}

/// `recur args` run in `dir`: its output, whatever the exit code.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    recur().args(args).current_dir(dir).output().unwrap()
}

/// stdout and stderr as text.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The step directory that `run/last` names.
pub fn last_step(run: &Path) -> PathBuf {
    let name = std::fs::read_to_string(run.join("last")).unwrap();
    run.join(name.trim())
}

/// The bytes of `path` (a failure names the path).
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
