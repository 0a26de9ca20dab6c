//! Helpers shared by the interop modules.

use std::path::PathBuf;

/// `tests/fixtures/<path>`.
pub fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// Asserts `|recur − theirs| ≤ 1e-5 + 1e-5·|theirs|` elementwise (the fixtures are exact answers
/// rounded once to f32) and returns the worst `|recur − theirs|`; `framework` names the other
/// side in a failure.
pub fn assert_close(framework: &str, what: &str, actual: &[f32], expected: &[f32]) -> f32 {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    let mut worst = 0.0f32;
    for (k, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let err = (a - e).abs();
        assert!(
            err <= 1e-5 + 1e-5 * e.abs(),
            "{what}[{k}]: recur {a} vs {framework} {e} (error {err})"
        );
        worst = worst.max(err);
    }
    worst
}
