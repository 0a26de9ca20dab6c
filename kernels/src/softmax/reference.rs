//! Plain f64 references for softmax, log-softmax and softmax + cross-entropy: one row at a time,
//! max subtraction, a running f64 sum (error ~V·2^−53, negligible against the f32 kernels).

/// `(max, Σ e^{x_j − max})` of one row in f64.
fn max_and_sum(row: &[f32]) -> (f64, f64) {
    let m = row
        .iter()
        .map(|&x| f64::from(x))
        .fold(f64::NEG_INFINITY, f64::max);
    let s = row.iter().map(|&x| (f64::from(x) - m).exp()).sum();
    (m, s)
}

/// Per-row `loss = logsumexp(x) − x_t` and `d_logits = scale·(softmax(x) − onehot(t))`, both
/// `(rows, V)`-shaped like the kernel's outputs.
pub fn softmax_cross_entropy(
    logits: &[f32],
    vocab: usize,
    targets: &[u32],
    scale: f64,
) -> (Vec<f64>, Vec<f64>) {
    let mut losses = Vec::with_capacity(targets.len());
    let mut d_logits = Vec::with_capacity(logits.len());
    for (row, &t) in logits.chunks_exact(vocab).zip(targets) {
        let (m, s) = max_and_sum(row);
        // `(m − x_t) + ln s`, not `m + ln s − x_t`: with |m| ≫ ln s (say 1e17), `m + ln s` would
        // round ln s away and a target at the maximum would get a loss of 0 instead of ln s.
        losses.push((m - f64::from(row[t as usize])) + s.ln());
        for (j, &x) in row.iter().enumerate() {
            let p = (f64::from(x) - m).exp() / s;
            d_logits.push(scale * (p - if j == t as usize { 1.0 } else { 0.0 }));
        }
    }
    (losses, d_logits)
}

/// `x_j − logsumexp(x)` for every row.
pub fn log_softmax(logits: &[f32], vocab: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks_exact(vocab) {
        let (m, s) = max_and_sum(row);
        out.extend(row.iter().map(|&x| f64::from(x) - m - s.ln()));
    }
    out
}

/// `e^{x_j} / Σ e^x` for every row.
pub fn softmax(logits: &[f32], vocab: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks_exact(vocab) {
        let (m, s) = max_and_sum(row);
        out.extend(row.iter().map(|&x| (f64::from(x) - m).exp() / s));
    }
    out
}
