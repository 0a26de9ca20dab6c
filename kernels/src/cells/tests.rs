//! The step kernels on every ISA the host runs against plain f64 loops of the same step.

use super::*;
use crate::{Isa, Par};

/// A tiny deterministic generator (xorshift), values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn sig(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

struct Naive {
    gates: Vec<f64>,
    h: Vec<f64>,
    c: Vec<f64>,
    hn: Vec<f64>,
}

/// One forward step in f64: `xp` (rows, G·H) holds the hoisted input projection.
fn naive_forward(
    kind: CellKind,
    hid: usize,
    rows: usize,
    w_hh: &[f32],
    b_hh: &[f32],
    xp: &[f32],
    h_prev: &[f32],
    c_prev: &[f32],
) -> Naive {
    let g = kind.gates();
    let mut out = Naive {
        gates: vec![0.0; rows * g * hid],
        h: vec![0.0; rows * hid],
        c: vec![0.0; rows * hid],
        hn: vec![0.0; rows * hid],
    };
    for b in 0..rows {
        let u: Vec<f64> = (0..g * hid)
            .map(|m| {
                (0..hid)
                    .map(|k| w_hh[m * hid + k] as f64 * h_prev[b * hid + k] as f64)
                    .sum()
            })
            .collect();
        let a = |m: usize| xp[b * g * hid + m] as f64;
        for j in 0..hid {
            let at = b * hid + j;
            match kind {
                CellKind::Lstm => {
                    let i = sig(a(j) + u[j]);
                    let f = sig(a(hid + j) + u[hid + j]);
                    let gg = (a(2 * hid + j) + u[2 * hid + j]).tanh();
                    let o = sig(a(3 * hid + j) + u[3 * hid + j]);
                    let c = f * c_prev[at] as f64 + i * gg;
                    out.c[at] = c;
                    out.h[at] = o * c.tanh();
                    for (q, v) in [i, f, gg, o].into_iter().enumerate() {
                        out.gates[b * g * hid + q * hid + j] = v;
                    }
                }
                CellKind::Gru => {
                    let r = sig(a(j) + u[j]);
                    let z = sig(a(hid + j) + u[hid + j]);
                    let un = u[2 * hid + j] + b_hh[2 * hid + j] as f64;
                    let n = (a(2 * hid + j) + r * un).tanh();
                    out.hn[at] = un;
                    out.h[at] = (1.0 - z) * n + z * h_prev[at] as f64;
                    for (q, v) in [r, z, n].into_iter().enumerate() {
                        out.gates[b * g * hid + q * hid + j] = v;
                    }
                }
                CellKind::GruResetBefore => {
                    // u[2H + j] above is W_hn·h', unused: the candidate reads s = r⊙h'
                    let r = sig(a(j) + u[j]);
                    let z = sig(a(hid + j) + u[hid + j]);
                    let un: f64 = (0..hid)
                        .map(|k| {
                            let s = sig(a(k) + u[k]) * h_prev[b * hid + k] as f64;
                            w_hh[(2 * hid + j) * hid + k] as f64 * s
                        })
                        .sum();
                    let n = (a(2 * hid + j) + un).tanh();
                    out.hn[at] = r * h_prev[at] as f64;
                    out.h[at] = (1.0 - z) * n + z * h_prev[at] as f64;
                    for (q, v) in [r, z, n].into_iter().enumerate() {
                        out.gates[b * g * hid + q * hid + j] = v;
                    }
                }
                CellKind::Rnn(act) => {
                    let pre = a(j) + u[j];
                    out.h[at] = match act {
                        RnnActivation::Tanh => pre.tanh(),
                        RnnActivation::Relu => pre.max(0.0),
                    };
                }
            }
        }
    }
    out
}

fn assert_close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g as f64 - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, want {w}"
        );
    }
}

const KINDS: [CellKind; 5] = [
    CellKind::Lstm,
    CellKind::Gru,
    CellKind::GruResetBefore,
    CellKind::Rnn(RnnActivation::Tanh),
    CellKind::Rnn(RnnActivation::Relu),
];

#[test]
fn forward_step_matches_naive_on_every_isa() {
    for isa in Isa::ALL {
        if !isa.is_available() {
            eprintln!("skipping forward_step on {isa}: not available on this CPU");
            continue;
        }
        for kind in KINDS {
            // Row counts around every tile height (AVX2 6-row RNN tiles, 2-row LSTM, 3-row GRU;
            // AVX-512 12/6/8): the uneven splits of `row_tiles` must cover every row once.
            for (rows, hid) in [
                (1, 1),
                (2, 5),
                (5, 9),
                (7, 13),
                (13, 24),
                (4, 33),
                (33, 17),
                (127, 8),
            ] {
                let g = kind.gates();
                let w_hh = values(g * hid * hid, 1);
                let b_hh = values(g * hid, 2);
                let xp = values(rows * g * hid, 3);
                let h_prev = values(rows * hid, 4);
                let c_prev = values(rows * hid, 5);
                let want = naive_forward(kind, hid, rows, &w_hh, &b_hh, &xp, &h_prev, &c_prev);
                let packed =
                    PackedRecurrent::with_isa(isa, kind, hid, &w_hh, &b_hh, PackFor::Inference);
                for par in [Par::Seq, Par::Rayon(2)] {
                    let mut gates = xp.clone();
                    let mut h = vec![f32::NAN; rows * hid];
                    let mut c = vec![f32::NAN; rows * hid];
                    let mut hn = vec![f32::NAN; rows * hid];
                    let lstm = kind == CellKind::Lstm;
                    let gru = kind.is_gru();
                    forward_step(
                        &packed,
                        ForwardStep {
                            rows,
                            h_prev: &h_prev,
                            c_prev: lstm.then_some(&c_prev[..]),
                            gates: &mut gates,
                            h: &mut h,
                            c: lstm.then_some(&mut c[..]),
                            hn: gru.then_some(&mut hn[..]),
                        },
                        par,
                    );
                    let tag = format!("{isa} {} rows {rows} H {hid}", kind.name());
                    assert_close(&format!("{tag} h"), &h, &want.h, 2e-6);
                    if lstm {
                        assert_close(&format!("{tag} c"), &c, &want.c, 2e-6);
                    }
                    if gru {
                        assert_close(&format!("{tag} hn"), &hn, &want.hn, 2e-6);
                    }
                    if lstm || gru {
                        assert_close(&format!("{tag} gates"), &gates, &want.gates, 2e-6);
                    }
                }
            }
        }
    }
}

/// Backward against a central difference of the naive f64 forward step, through the loss
/// `L = Σ dy⊙h_t + Σ dh_carry⊙h_t (+ Σ dc⊙c_t)`: the returned `dh`/`dc` are `∂L/∂h_{t-1}`,
/// `∂L/∂c_{t-1}`.
#[test]
fn backward_step_matches_finite_differences_on_every_isa() {
    for isa in Isa::ALL {
        if !isa.is_available() {
            eprintln!("skipping backward_step on {isa}: not available on this CPU");
            continue;
        }
        for kind in KINDS {
            for (rows, hid) in [(1, 3), (5, 4), (7, 13), (3, 17), (13, 5)] {
                let g = kind.gates();
                let w_hh = values(g * hid * hid, 11);
                let b_hh = values(g * hid, 12);
                let xp = values(rows * g * hid, 13);
                let h_prev = values(rows * hid, 14);
                let c_prev = values(rows * hid, 15);
                let dy = values(rows * hid, 16);
                let dh_in = values(rows * hid, 17);
                let dc_in = values(rows * hid, 18);
                let lstm = kind == CellKind::Lstm;
                let gru = kind.is_gru();
                let loss = |hp: &[f32], cp: &[f32]| -> f64 {
                    let o = naive_forward(kind, hid, rows, &w_hh, &b_hh, &xp, hp, cp);
                    let mut l = 0.0;
                    for i in 0..rows * hid {
                        l += (dy[i] as f64 + dh_in[i] as f64) * o.h[i];
                        if lstm {
                            l += dc_in[i] as f64 * o.c[i];
                        }
                    }
                    l
                };
                let packed =
                    PackedRecurrent::with_isa(isa, kind, hid, &w_hh, &b_hh, PackFor::Training);
                for par in [Par::Seq, Par::Rayon(2)] {
                    let mut gates = xp.clone();
                    let mut h = vec![0.0; rows * hid];
                    let mut c = vec![0.0; rows * hid];
                    let mut hn = vec![0.0; rows * hid];
                    forward_step(
                        &packed,
                        ForwardStep {
                            rows,
                            h_prev: &h_prev,
                            c_prev: lstm.then_some(&c_prev[..]),
                            gates: &mut gates,
                            h: &mut h,
                            c: lstm.then_some(&mut c[..]),
                            hn: gru.then_some(&mut hn[..]),
                        },
                        par,
                    );
                    let mut dh = dh_in.clone();
                    let mut dc = dc_in.clone();
                    backward_step(
                        &packed,
                        BackwardStep {
                            rows,
                            dy: &dy,
                            dh: &mut dh,
                            dc: lstm.then_some(&mut dc[..]),
                            gates: &mut gates,
                            h_prev: &h_prev,
                            h: &h,
                            c_prev: lstm.then_some(&c_prev[..]),
                            c: lstm.then_some(&c[..]),
                            hn: gru.then_some(&mut hn[..]),
                        },
                        par,
                    );
                    let eps = 1e-3f32;
                    let tag = format!("{isa} {} rows {rows} H {hid}", kind.name());
                    for i in 0..rows * hid {
                        let mut p = h_prev.clone();
                        p[i] += eps;
                        let mut m = h_prev.clone();
                        m[i] -= eps;
                        let fd = (loss(&p, &c_prev) - loss(&m, &c_prev)) / (2.0 * eps as f64);
                        assert!(
                            (dh[i] as f64 - fd).abs() < 2e-3 * (1.0 + fd.abs()),
                            "{tag} dh[{i}]: {} vs {fd}",
                            dh[i]
                        );
                        if lstm {
                            let mut p = c_prev.clone();
                            p[i] += eps;
                            let mut m = c_prev.clone();
                            m[i] -= eps;
                            let fd = (loss(&h_prev, &p) - loss(&h_prev, &m)) / (2.0 * eps as f64);
                            assert!(
                                (dc[i] as f64 - fd).abs() < 2e-3 * (1.0 + fd.abs()),
                                "{tag} dc[{i}]: {} vs {fd}",
                                dc[i]
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn row_tiles_cover_every_row_once_with_near_equal_heights() {
    for mr in 1..=12 {
        for rows in 0..=200 {
            let tiles: Vec<(usize, usize)> = super::step::row_tiles(rows, mr).collect();
            assert_eq!(tiles.len(), rows.div_ceil(mr), "rows {rows} mr {mr}");
            let mut next = 0;
            for &(start, height) in &tiles {
                assert_eq!(start, next, "rows {rows} mr {mr}: tiles must be contiguous");
                assert!(
                    (1..=mr).contains(&height),
                    "rows {rows} mr {mr}: height {height}"
                );
                next += height;
            }
            assert_eq!(next, rows, "rows {rows} mr {mr}: every row once");
            let (lo, hi) = tiles
                .iter()
                .fold((usize::MAX, 0), |(lo, hi), &(_, t)| (lo.min(t), hi.max(t)));
            assert!(
                tiles.is_empty() || hi - lo <= 1,
                "rows {rows} mr {mr}: {tiles:?}"
            );
        }
    }
    let heights: Vec<usize> = super::step::row_tiles(32, 6).map(|(_, t)| t).collect();
    assert_eq!(heights, [6, 6, 5, 5, 5, 5]);
}

#[test]
fn packed_matmul_matches_naive_on_every_isa() {
    for isa in Isa::available() {
        for (rows, k, n) in [
            (1, 1, 1),
            (1, 37, 70),
            (5, 9, 17),
            (7, 13, 16),
            (13, 5, 33),
            (33, 6, 20),
            (127, 4, 9),
        ] {
            for (rs, cs) in [(n, 1), (1, k)] {
                let b = values(k * n, 41);
                let a = values(rows * (k + 3), 42);
                let packed = PackedMatrix::with_isa(isa, &b, k, n, rs, cs);
                for accumulate in [false, true] {
                    for par in [Par::Seq, Par::Rayon(2)] {
                        let init = values(rows * (n + 2), 43);
                        let mut c = init.clone();
                        packed_matmul(&packed, rows, &a, k + 3, &mut c, n + 2, accumulate, par);
                        for r in 0..rows {
                            for j in 0..n + 2 {
                                let got = c[r * (n + 2) + j];
                                if j >= n {
                                    assert_eq!(got, init[r * (n + 2) + j], "wrote past n");
                                    continue;
                                }
                                let mut want: f64 = (0..k)
                                    .map(|p| a[r * (k + 3) + p] as f64 * b[p * rs + j * cs] as f64)
                                    .sum();
                                if accumulate {
                                    want += init[r * (n + 2) + j] as f64;
                                }
                                assert!(
                                    (got as f64 - want).abs() < 1e-5 * (1.0 + want.abs()),
                                    "{isa} {rows}x{k}x{n}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `forward_step_with`: a one-hot table read in the epilogue gives the bits the plain step gives
/// with those rows copied into `gates` first, and `zero_state` (with zeros in `h_prev`/`c_prev`)
/// the bits of the full product — every cell, every ISA, serial and column-split.
#[test]
fn forward_step_extras_match_the_plain_step_bit_for_bit() {
    for isa in Isa::available() {
        for kind in KINDS {
            for (rows, hid) in [(1, 3), (4, 9), (7, 13), (32, 17), (13, 24)] {
                let g = kind.gates();
                let w_hh = values(g * hid * hid, 51);
                let b_hh = values(g * hid, 52);
                let vocab = 5;
                let table = values(vocab * g * hid, 53);
                let ids: Vec<u32> = (0..rows).map(|r| ((r * 3 + 1) % vocab) as u32).collect();
                let xp: Vec<f32> = ids
                    .iter()
                    .flat_map(|&id| table[id as usize * g * hid..][..g * hid].iter().copied())
                    .collect();
                let packed =
                    PackedRecurrent::with_isa(isa, kind, hid, &w_hh, &b_hh, PackFor::Inference);
                let lstm = kind == CellKind::Lstm;
                let gru = kind.is_gru();
                let run = |h_prev: &[f32], c_prev: &[f32], extras: StepExtras<'_>, par: Par| {
                    let mut gates = if extras.table.is_some() {
                        vec![f32::NAN; rows * g * hid]
                    } else {
                        xp.clone()
                    };
                    let mut h = vec![f32::NAN; rows * hid];
                    let mut c = vec![f32::NAN; rows * hid];
                    let mut hn = vec![f32::NAN; rows * hid];
                    forward_step_with(
                        &packed,
                        ForwardStep {
                            rows,
                            h_prev,
                            c_prev: lstm.then_some(c_prev),
                            gates: &mut gates,
                            h: &mut h,
                            c: lstm.then_some(&mut c[..]),
                            hn: gru.then_some(&mut hn[..]),
                        },
                        extras,
                        par,
                    );
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
                    let mut out = vec![bits(&h)];
                    if lstm {
                        out.push(bits(&c));
                    }
                    if gru {
                        out.push(bits(&hn));
                    }
                    if lstm || gru {
                        out.push(bits(&gates));
                    }
                    out
                };
                let h_prev = values(rows * hid, 54);
                let c_prev = values(rows * hid, 55);
                let zeros = vec![0.0f32; rows * hid];
                let tag = format!("{isa} {} rows {rows} H {hid}", kind.name());
                for par in [Par::Seq, Par::Rayon(2)] {
                    let plain = StepExtras::default();
                    let from_table = StepExtras {
                        table: Some((&table, &ids)),
                        ..plain
                    };
                    let want = run(&h_prev, &c_prev, plain, par);
                    assert_eq!(run(&h_prev, &c_prev, from_table, par), want, "{tag}: table");
                    let want = run(&zeros, &zeros, plain, par);
                    let zero = StepExtras {
                        zero_state: true,
                        ..plain
                    };
                    assert_eq!(run(&zeros, &zeros, zero, par), want, "{tag}: zero state");
                    let both = StepExtras {
                        zero_state: true,
                        ..from_table
                    };
                    assert_eq!(run(&zeros, &zeros, both, par), want, "{tag}: both");
                }
            }
        }
    }
}

/// `accumulate_rows` against the plain per-row loop, bit for bit: repeated ids, strided rows,
/// widths around the vector and register-group sizes, every ISA.
#[test]
fn accumulate_rows_matches_the_scalar_loop_bit_for_bit() {
    for isa in Isa::available() {
        for (rows, width) in [(1, 1), (3, 7), (9, 8), (17, 33), (40, 70), (33, 128)] {
            let stride = width + 3;
            let src = values(rows * stride, 61);
            let vocab = 4;
            let ids: Vec<u32> = (0..rows).map(|r| ((r * 7 + 2) % vocab) as u32).collect();
            let table_stride = width + 5;
            let sum0 = values(width, 62);
            let table0 = values(vocab * table_stride, 63);
            let mut want_sum = sum0.clone();
            let mut want_table = table0.clone();
            for r in 0..rows {
                for j in 0..width {
                    let x = src[r * stride + j];
                    want_sum[j] += x;
                    want_table[ids[r] as usize * table_stride + j] += x;
                }
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
            let tag = format!("{isa} rows {rows} width {width}");
            let mut sum = sum0.clone();
            let mut table = table0.clone();
            accumulate_rows(
                isa,
                &src,
                stride,
                rows,
                width,
                &mut sum,
                Some((&mut table, table_stride, &ids)),
            );
            assert_eq!(bits(&sum), bits(&want_sum), "{tag}: sum");
            assert_eq!(bits(&table), bits(&want_table), "{tag}: table");
            let mut sum = sum0.clone();
            accumulate_rows(isa, &src, stride, rows, width, &mut sum, None);
            assert_eq!(bits(&sum), bits(&want_sum), "{tag}: sum without a table");
        }
    }
}
