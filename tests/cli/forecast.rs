//! `recur forecast` end to end on a tiny configuration: the report's shape, determinism for a
//! seed, and bad input (exit code 2, one line on stderr).

use std::process::Output;

fn forecast(args: &[&str]) -> Output {
    crate::common::recur()
        .arg("forecast")
        .args(args)
        .output()
        .unwrap()
}

const TINY: [&str; 16] = [
    "--train-series",
    "6",
    "--test-series",
    "2",
    "--series-len",
    "40",
    "--window",
    "8",
    "--horizon",
    "3",
    "--hidden",
    "6",
    "--epochs",
    "2",
    "--threads",
    "1",
];

#[test]
fn reports_every_forecaster_and_is_deterministic() {
    for signal in ["sine", "ar"] {
        let mut args = TINY.to_vec();
        args.extend(["--signal", signal, "--seed", "4"]);
        let out = forecast(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        for needle in [
            "one-step model, k=1",
            "direct multi-step model:",
            "  k=3 ",
            "mean over k=1..3",
            "persistence",
            "MA(m=",
            "one-step model run recursively",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
        // The MSE table (everything after the timing line) is the same on a second run.
        let table = |t: &str| {
            t.split_once("windows; ")
                .unwrap()
                .1
                .split_once('\n')
                .unwrap()
                .1
                .to_string()
        };
        let again = String::from_utf8(forecast(&args).stdout).unwrap();
        assert_eq!(table(&text), table(&again));
    }
}

#[test]
fn bad_input_exits_2_with_one_line() {
    for (args, expected) in [
        (
            vec!["--horizon", "0"],
            "horizon must be at least 1, found 0",
        ),
        (vec!["--window", "0"], "window must be at least 1, found 0"),
        (
            vec!["--window", "8", "--ma", "9"],
            "expected m in 1..=window (8), found 9",
        ),
        (
            vec!["--series-len", "20"],
            "expected window + horizon ≤ series length, found 32 + 10",
        ),
        (
            vec!["--learning-rate", "-1"],
            "learning rate: expected a finite value > 0, found -1",
        ),
        (
            vec!["--threads", "0"],
            "--threads: expected at least 1, found 0",
        ),
    ] {
        let out = forecast(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}
