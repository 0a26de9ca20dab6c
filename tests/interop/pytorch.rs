//! Golden tests against PyTorch: recur loads the state_dicts of small `nn.RNN`/`nn.LSTM`/`nn.GRU`
//! modules (2 layers, bidirectional, `bias=False`, `batch_first`, F16/BF16 weights, module
//! prefixes) and must reproduce PyTorch's outputs, final states and the gradients of
//! `loss = Σ(output·R) + Σ(h_n·R_h) [+ Σ(c_n·R_c)]` with respect to every weight, the input and
//! the initial state, over ragged-length batches, on every ISA path of the host.
//!
//! The fixtures are `tests/fixtures/pytorch/*.safetensors`, made by
//! `scripts/interop/pytorch_fixtures.py` (see `scripts/interop/README.md`); no Python runs here.
//! PyTorch computed them in float64 from the f32 (or f16/bf16) values, so they are the exact
//! answers rounded once; the bar is `|recur − torch| ≤ 1e-5 + 1e-5·|torch|` elementwise.

use std::path::PathBuf;

use recur::engine::checkpoint::Tensor;
use recur::engine::interop::pytorch::TorchRnnSpec;
use recur::engine::interop::{
    Bias, SeqLayout, StateDict, batch_first_to_time_major, time_major_to_batch_first,
};
use recur::engine::rnn::{Mode, RnnState, SeqBatch};
use recur::kernels::{CellKind, Isa, RnnActivation};

use crate::common;

const T: usize = 5;
const B: usize = 3;
const H: usize = 4;

fn fixture(name: &str) -> PathBuf {
    common::fixture(&format!("pytorch/{name}.safetensors"))
}

fn assert_close(what: &str, actual: &[f32], expected: &[f32]) -> f32 {
    common::assert_close("PyTorch", what, actual, expected)
}

struct Case {
    name: &'static str,
    cell: CellKind,
    prefix: &'static str,
    num_layers: usize,
    bidirectional: bool,
    bias: Bias,
    layout: SeqLayout,
}

fn golden(file: &mut StateDict, name: &str) -> Tensor {
    file.take(&format!("golden.{name}"))
        .unwrap_or_else(|| panic!("fixture has no golden.{name}"))
}

fn check_case(case: &Case) {
    let path = fixture(case.name);
    for isa in Isa::ALL {
        if !isa.is_available() {
            println!("skipping {} on {isa}: not available on this CPU", case.name);
            continue;
        }
        let mut file = StateDict::open(&path).unwrap();
        let lstm = case.cell == CellKind::Lstm;
        let input = golden(&mut file, "input");
        let lengths: Vec<usize> = golden(&mut file, "lengths")
            .data
            .iter()
            .map(|&l| l as usize)
            .collect();
        let h0 = golden(&mut file, "h0").data;
        let c0 = lstm.then(|| golden(&mut file, "c0").data);
        let output = golden(&mut file, "output").data;
        let h_n = golden(&mut file, "h_n").data;
        let c_n = lstm.then(|| golden(&mut file, "c_n").data);
        let r_output = golden(&mut file, "r_output").data;
        let r_h = golden(&mut file, "r_h").data;
        let r_c = lstm.then(|| golden(&mut file, "r_c").data);
        let grad_input = golden(&mut file, "grad.input").data;
        let grad_h0 = golden(&mut file, "grad.h0").data;
        let grad_c0 = lstm.then(|| golden(&mut file, "grad.c0").data);
        let grad_names: Vec<String> = file
            .names()
            .filter_map(|n| n.strip_prefix("golden.grad."))
            .map(String::from)
            .collect();
        let grads_expected: Vec<(String, Vec<f32>)> = grad_names
            .iter()
            .map(|n| (n.clone(), golden(&mut file, &format!("grad.{n}")).data))
            .collect();

        // The configuration is read off the file and must be what the script built.
        let spec = TorchRnnSpec::infer(&file, case.prefix, case.cell).unwrap();
        assert_eq!(
            (spec.config.input_size, spec.config.hidden_size),
            (3, H),
            "{}",
            case.name
        );
        assert_eq!(spec.config.num_layers, case.num_layers, "{}", case.name);
        assert_eq!(
            spec.config.bidirectional, case.bidirectional,
            "{}",
            case.name
        );
        assert_eq!(spec.bias, case.bias, "{}", case.name);
        let mut spec = spec.with_layout(case.layout);
        spec.config = spec.config.with_isa(isa);
        let rnn = file.load_rnn(case.prefix, &spec).unwrap();
        file.finish().unwrap(); // every tensor of the file was used
        assert_eq!(rnn.config().isa, isa);

        let d = spec.config.directions();
        let batch_first = spec.layout == SeqLayout::BatchFirst;
        let to_time_major = |data: &[f32], features: usize| {
            if batch_first {
                batch_first_to_time_major(data, B, T, features)
            } else {
                data.to_vec()
            }
        };
        let x = to_time_major(&input.data, 3);
        let initial = RnnState { h: h0, c: c0 };
        let (forward, cache) = rnn
            .forward(
                SeqBatch::new(&x, T, B).with_lengths(&lengths),
                Some(&initial),
                Mode::Training { dropout_seed: 1 },
            )
            .unwrap();
        let what = |t: &str| format!("{} [{isa}] {t}", case.name);
        let out = if batch_first {
            time_major_to_batch_first(&forward.output, T, B, d * H)
        } else {
            forward.output.clone()
        };
        let mut worst = assert_close(&what("output"), &out, &output);
        worst = worst.max(assert_close(&what("h_n"), &forward.state.h, &h_n));
        if let (Some(c), Some(expected)) = (&forward.state.c, &c_n) {
            worst = worst.max(assert_close(&what("c_n"), c, expected));
        }

        let d_output = to_time_major(&r_output, d * H);
        let d_final = RnnState { h: r_h, c: r_c };
        let mut grads = rnn.zero_grads();
        let back = rnn
            .backward(cache, &d_output, Some(&d_final), &mut grads)
            .unwrap();
        let d_input = if batch_first {
            time_major_to_batch_first(&back.d_input, T, B, 3)
        } else {
            back.d_input.clone()
        };
        worst = worst.max(assert_close(&what("grad.input"), &d_input, &grad_input));
        worst = worst.max(assert_close(&what("grad.h0"), &back.d_state.h, &grad_h0));
        if let (Some(c), Some(expected)) = (&back.d_state.c, &grad_c0) {
            worst = worst.max(assert_close(&what("grad.c0"), c, expected));
        }
        // PyTorch has a gradient for every parameter it has: all of recur's, or the weights
        // alone for bias=False.
        let expected_names: Vec<String> = spec
            .expected_tensors("")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let mut sorted = expected_names.clone();
        sorted.sort();
        assert_eq!(grad_names, sorted, "{}: gradient names", case.name);
        for (name, expected) in &grads_expected {
            let got = grads.get(&format!("d_{name}")).unwrap();
            worst = worst.max(assert_close(&what(&format!("grad.{name}")), got, expected));
        }
        println!(
            "{} on {isa}: worst |recur − torch| = {worst:.3e}",
            case.name
        );
    }
}

#[test]
fn rnn_tanh_two_layers_bidirectional_ragged() {
    check_case(&Case {
        name: "rnn_tanh",
        cell: CellKind::Rnn(RnnActivation::Tanh),
        prefix: "encoder.rnn.",
        num_layers: 2,
        bidirectional: true,
        bias: Bias::Present,
        layout: SeqLayout::TimeMajor,
    });
}

#[test]
fn rnn_relu_two_layers_ragged() {
    check_case(&Case {
        name: "rnn_relu",
        cell: CellKind::Rnn(RnnActivation::Relu),
        prefix: "rnn.",
        num_layers: 2,
        bidirectional: false,
        bias: Bias::Present,
        layout: SeqLayout::TimeMajor,
    });
}

#[test]
fn lstm_two_layers_bidirectional_ragged() {
    check_case(&Case {
        name: "lstm",
        cell: CellKind::Lstm,
        prefix: "encoder.lstm.",
        num_layers: 2,
        bidirectional: true,
        bias: Bias::Present,
        layout: SeqLayout::TimeMajor,
    });
}

#[test]
fn lstm_without_bias_batch_first_bidirectional() {
    check_case(&Case {
        name: "lstm_nobias_batch_first",
        cell: CellKind::Lstm,
        prefix: "model.lstm",
        num_layers: 1,
        bidirectional: true,
        bias: Bias::Absent,
        layout: SeqLayout::BatchFirst,
    });
}

#[test]
fn gru_two_layers_bidirectional_ragged() {
    check_case(&Case {
        name: "gru",
        cell: CellKind::Gru,
        prefix: "encoder.gru.",
        num_layers: 2,
        bidirectional: true,
        bias: Bias::Present,
        layout: SeqLayout::TimeMajor,
    });
}

#[test]
fn gru_without_bias_two_layers() {
    check_case(&Case {
        name: "gru_nobias",
        cell: CellKind::Gru,
        prefix: "gru.",
        num_layers: 2,
        bidirectional: false,
        bias: Bias::Absent,
        layout: SeqLayout::TimeMajor,
    });
}

#[test]
fn lstm_with_f16_weights() {
    check_case(&Case {
        name: "lstm_f16",
        cell: CellKind::Lstm,
        prefix: "lstm.",
        num_layers: 1,
        bidirectional: false,
        bias: Bias::Present,
        layout: SeqLayout::TimeMajor,
    });
}

#[test]
fn gru_with_bf16_weights_bidirectional() {
    check_case(&Case {
        name: "gru_bf16",
        cell: CellKind::Gru,
        prefix: "gru.",
        num_layers: 1,
        bidirectional: true,
        bias: Bias::Present,
        layout: SeqLayout::TimeMajor,
    });
}
