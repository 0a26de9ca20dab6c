//! Golden tests against Keras 3: recur loads the weights of `SimpleRNN` (tanh, relu without bias),
//! `LSTM`, stacked `GRU(reset_after=True)`, `GRU(reset_after=False)` (recur's reset-before cell;
//! one layer from an initial state, and two stacked `Bidirectional` wrappers), `Bidirectional`
//! GRU/LSTM wrappers, and an `Embedding` → `LSTM` → `Dense` model, exported to safetensors by
//! `scripts/interop/keras_fixtures.py`, and must reproduce Keras' outputs (at every valid step of
//! masked, ragged batches) and final states on every ISA path of the host.
//!
//! Keras computed the fixtures in float64 from f32 weights; the bar is
//! `|recur − keras| ≤ 1e-5 + 1e-5·|keras|`.

use crate::common::{self, fixture};
use recur::engine::interop::keras::{self, GruReset, KerasRnnSpec};
use recur::engine::interop::{
    Bias, StateDict, batch_first_to_time_major, time_major_to_batch_first,
};
use recur::engine::rnn::{RnnConfig, RnnState, SeqBatch};
use recur::kernels::{CellKind, Isa, Par, RnnActivation};

const B: usize = 3;
const T: usize = 5;
const I: usize = 3;
const H: usize = 4;

fn open(name: &str) -> StateDict {
    StateDict::open(&fixture(&format!("keras/{name}.safetensors"))).unwrap()
}

fn golden(file: &mut StateDict, name: &str) -> Vec<f32> {
    file.take(&format!("golden.{name}"))
        .unwrap_or_else(|| panic!("fixture has no golden.{name}"))
        .data
}

fn assert_close(what: &str, actual: &[f32], expected: &[f32]) -> f32 {
    common::assert_close("Keras", what, actual, expected)
}

fn hosts_isas(name: &str) -> Vec<Isa> {
    for isa in Isa::ALL {
        if !isa.is_available() {
            println!("skipping {name} on {isa}: not available on this CPU");
        }
    }
    Isa::available()
}

/// Stacked layers `layers` (Bidirectional wrappers if `directions` is 2) over the masked batch
/// of fixture `name`.
fn check_stack(name: &str, cell: CellKind, layers: &[&str], directions: usize, bias: Bias) {
    check_stack_with(name, cell, GruReset::After, layers, directions, bias);
}

/// [`check_stack`] with Keras' `reset_after` for a GRU.
fn check_stack_with(
    name: &str,
    cell: CellKind,
    gru_reset: GruReset,
    layers: &[&str],
    directions: usize,
    bias: Bias,
) {
    let states = layers.len() * directions;
    let width = directions * H;
    for isa in hosts_isas(name) {
        let mut file = open(name);
        let lstm = cell == CellKind::Lstm;
        let x = golden(&mut file, "input");
        let lengths: Vec<usize> = golden(&mut file, "lengths")
            .iter()
            .map(|&l| l as usize)
            .collect();
        let output = golden(&mut file, "output");
        let h_n: Vec<Vec<f32>> = (0..states)
            .map(|k| golden(&mut file, &format!("h_n.{k}")))
            .collect();
        let c_n: Vec<Vec<f32>> = (0..states)
            .filter(|_| lstm)
            .map(|k| golden(&mut file, &format!("c_n.{k}")))
            .collect();
        let initial = file.get("golden.h0").is_some().then(|| RnnState {
            h: golden(&mut file, "h0"),
            c: lstm.then(|| golden(&mut file, "c0")),
        });
        let config = RnnConfig::new(cell, I, H)
            .with_num_layers(layers.len())
            .with_bidirectional(directions == 2)
            .with_isa(isa);
        let spec = KerasRnnSpec::new(config)
            .with_bias(bias)
            .with_gru_reset(gru_reset);
        let rnn = keras::load_rnn(&mut file, layers, &spec).unwrap();
        file.finish().unwrap();
        if gru_reset == GruReset::Before {
            assert_eq!(rnn.config().cell, CellKind::GruResetBefore);
        }

        let x = batch_first_to_time_major(&x, B, T, I);
        let forward = rnn
            .infer(
                SeqBatch::new(&x, T, B).with_lengths(&lengths),
                initial.as_ref(),
            )
            .unwrap();
        let out = time_major_to_batch_first(&forward.output, T, B, width);
        let what = |t: &str| format!("{name} [{isa}] {t}");
        let mut worst = 0.0f32;
        // Keras' outputs past a row's length are whatever its masking leaves there: compare the
        // valid steps only.
        for (b, &len) in lengths.iter().enumerate() {
            let rows = b * T * width..(b * T + len) * width;
            worst = worst.max(assert_close(
                &what(&format!("output row {b}")),
                &out[rows.clone()],
                &output[rows],
            ));
        }
        for (k, expected) in h_n.iter().enumerate() {
            let got = &forward.state.h[k * B * H..(k + 1) * B * H];
            worst = worst.max(assert_close(
                &what(&format!("h_n {k} (layer·D + direction)")),
                got,
                expected,
            ));
        }
        for (k, expected) in c_n.iter().enumerate() {
            let c = forward.state.c.as_ref().expect("LSTM state has c");
            let got = &c[k * B * H..(k + 1) * B * H];
            worst = worst.max(assert_close(
                &what(&format!("c_n {k} (layer·D + direction)")),
                got,
                expected,
            ));
        }
        println!("{name} on {isa}: worst |recur − keras| = {worst:.3e}");
    }
}

#[test]
fn simple_rnn_two_stacked_layers_masked() {
    check_stack(
        "simple_rnn",
        CellKind::Rnn(RnnActivation::Tanh),
        &["simple_rnn_0", "simple_rnn_1"],
        1,
        Bias::Present,
    );
}

#[test]
fn simple_rnn_relu_without_bias() {
    check_stack(
        "simple_rnn_relu_nobias",
        CellKind::Rnn(RnnActivation::Relu),
        &["rnn"],
        1,
        Bias::Absent,
    );
}

#[test]
fn lstm_masked_from_an_initial_state() {
    check_stack("lstm", CellKind::Lstm, &["lstm"], 1, Bias::Present);
}

#[test]
fn gru_reset_after_two_stacked_layers_masked() {
    check_stack("gru", CellKind::Gru, &["gru_0", "gru_1"], 1, Bias::Present);
}

#[test]
fn bidirectional_gru_two_stacked_wrappers_masked() {
    check_stack(
        "gru_bidirectional",
        CellKind::Gru,
        &["bigru_0", "bigru_1"],
        2,
        Bias::Present,
    );
}

#[test]
fn bidirectional_lstm_masked() {
    check_stack(
        "lstm_bidirectional",
        CellKind::Lstm,
        &["bilstm"],
        2,
        Bias::Present,
    );
}

#[test]
fn a_bidirectional_wrapper_missing_a_direction_is_named() {
    let mut file = open("lstm_bidirectional");
    file.take("bilstm.backward.recurrent_kernel").unwrap();
    let spec = KerasRnnSpec::new(RnnConfig::new(CellKind::Lstm, I, H).with_bidirectional(true));
    let err = keras::load_rnn(&mut file, &["bilstm"], &spec).unwrap_err();
    assert!(
        err.to_string()
            .contains("missing tensor \"bilstm.backward.recurrent_kernel\""),
        "{err}"
    );
}

#[test]
fn gru_reset_before_masked_from_an_initial_state() {
    check_stack_with(
        "gru_reset_before",
        CellKind::Gru,
        GruReset::Before,
        &["gru_before"],
        1,
        Bias::Present,
    );
}

#[test]
fn gru_reset_before_two_stacked_bidirectional_wrappers_masked() {
    // A config naming the cell itself needs no reset_after flag.
    check_stack(
        "gru_reset_before_bidirectional",
        CellKind::GruResetBefore,
        &["bigru_rb_0", "bigru_rb_1"],
        2,
        Bias::Present,
    );
}

#[test]
fn gru_reset_before_weights_are_refused_as_reset_after() {
    // Loaded as if it were reset_after=True, its (3H) bias gives away what it is.
    let mut file = open("gru_reset_before");
    let config = RnnConfig::new(CellKind::Gru, I, H);
    let err = keras::load_rnn(&mut file, &["gru_before"], &KerasRnnSpec::new(config)).unwrap_err();
    assert!(
        err.to_string()
            .contains("\"gru_before.bias\" has shape [12], expected [2, 12]"),
        "{err}"
    );
}

#[test]
fn embedding_lstm_dense_model() {
    let (vocab, dim, classes) = (7, 3, 5);
    for isa in hosts_isas("lm") {
        let mut file = open("lm");
        let ids_batch_first: Vec<u32> =
            golden(&mut file, "ids").iter().map(|&v| v as u32).collect();
        let expected = golden(&mut file, "output");
        let embedding = keras::load_embedding(&mut file, "embedding", vocab, dim).unwrap();
        let spec = KerasRnnSpec::new(RnnConfig::new(CellKind::Lstm, dim, H).with_isa(isa));
        let lstm = keras::load_rnn(&mut file, &["lstm"], &spec).unwrap();
        let dense = keras::load_dense(&mut file, "dense", H, classes, Bias::Present).unwrap();
        file.finish().unwrap();

        let mut ids = vec![0u32; B * T]; // (T, B)
        for b in 0..B {
            for t in 0..T {
                ids[t * B + b] = ids_batch_first[b * T + t];
            }
        }
        let mut x = vec![0.0f32; T * B * dim];
        embedding.forward(&ids, &mut x);
        let forward = lstm.infer(SeqBatch::new(&x, T, B), None).unwrap();
        let mut logits = vec![0.0f32; T * B * classes];
        dense.forward(Par::Seq, &forward.output, T * B, &mut logits);
        let logits = time_major_to_batch_first(&logits, T, B, classes);
        let worst = assert_close(&format!("lm [{isa}] logits"), &logits, &expected);
        println!("lm on {isa}: worst |recur − keras| = {worst:.3e}");
    }
}
