//! Language models across the PyTorch boundary, on every ISA path of the host:
//!
//! - a PyTorch-trained char LSTM LM (`nn.Embedding` → 2-layer `nn.LSTM` → `nn.Linear`, made by
//!   `scripts/interop/pytorch_lm.py`) loads into recur's `LanguageModel` and gives PyTorch's
//!   logits;
//! - recur-trained checkpoints (`recur train ... --max-epochs 1`, committed in
//!   `tests/fixtures/roundtrip/`: a GRU LM with an embedding, and the default one-hot tanh-RNN
//!   char model) give the logits PyTorch computed after
//!   `load_state_dict(strict=True)` of the same file (`scripts/interop/roundtrip_lm.py`), and
//!   saving it back reproduces the file's tensors bit for bit.
//!
//! Bar: `|recur − torch| ≤ 1e-5 + 1e-5·|torch|` on every logit.

use recur::engine::checkpoint::{LoadOptions, load_safetensors};
use recur::engine::interop::StateDict;
use recur::engine::interop::pytorch::{
    language_model_logits, language_model_state_dict, read_lm_config,
};
use recur::engine::model::lm::LmConfig;
use recur::kernels::{Isa, Par};

use crate::common::{self, fixture};

fn assert_close(what: &str, actual: &[f32], expected: &[f32]) -> f32 {
    common::assert_close("PyTorch", what, actual, expected)
}

/// `ids` (T, B) stored as f32 and the logits (T, B, V) PyTorch computed for them.
fn golden(path: &str) -> (Vec<u32>, usize, usize, Vec<f32>) {
    let (mut store, _) = load_safetensors(&fixture(path), LoadOptions::default()).unwrap();
    let ids = store.remove("ids").unwrap();
    let (steps, batch) = (ids.shape[0], ids.shape[1]);
    let ids = ids.data.iter().map(|&v| v as u32).collect();
    (ids, steps, batch, store.remove("logits").unwrap().data)
}

fn check_logits(model_path: &str, config: &LmConfig, golden_path: &str) {
    let (ids, steps, batch, expected) = golden(golden_path);
    for isa in Isa::ALL {
        if !isa.is_available() {
            println!("skipping {model_path} on {isa}: not available on this CPU");
            continue;
        }
        let file = StateDict::open(&fixture(model_path)).unwrap();
        let model = file.load_language_model(config, Par::Seq, isa).unwrap();
        assert_eq!(model.rnn.config().isa, isa);
        let logits = language_model_logits(&model, &ids, steps, batch).unwrap();
        let worst = assert_close(&format!("{model_path} [{isa}] logits"), &logits, &expected);
        println!("{model_path} on {isa}: worst |recur − torch| = {worst:.3e}");
    }
}

#[test]
fn pytorch_lstm_language_model_gives_pytorchs_logits() {
    let file = StateDict::open(&fixture("pytorch/lstm_lm.safetensors")).unwrap();
    let config: LmConfig = file.metadata_json("lm_config").unwrap();
    let vocab: Vec<char> = file.metadata_json("vocab").unwrap();
    assert_eq!(vocab.len(), config.vocab);
    assert_eq!((config.cell.as_str(), config.num_layers), ("lstm", 2));
    check_logits(
        "pytorch/lstm_lm.safetensors",
        &config,
        "pytorch/lstm_lm_golden.safetensors",
    );
}

#[test]
fn recur_trained_checkpoint_gives_the_same_logits_in_pytorch() {
    let config = read_lm_config(&fixture("roundtrip/lm_config.json")).unwrap();
    assert_eq!(config.cell, "gru");
    check_logits(
        "roundtrip/model.safetensors",
        &config,
        "roundtrip/torch_logits.safetensors",
    );
}

#[test]
fn recur_default_char_model_one_hot_rnn_gives_the_same_logits_in_pytorch() {
    let config = read_lm_config(&fixture("roundtrip/onehot/lm_config.json")).unwrap();
    assert_eq!(
        (config.cell.as_str(), config.embedding_dim),
        ("rnn_tanh", None)
    );
    check_logits(
        "roundtrip/onehot/model.safetensors",
        &config,
        "roundtrip/onehot/torch_logits.safetensors",
    );
}

#[test]
fn saving_a_loaded_model_reproduces_the_file() {
    let config = read_lm_config(&fixture("roundtrip/lm_config.json")).unwrap();
    let path = fixture("roundtrip/model.safetensors");
    let model = StateDict::open(&path)
        .unwrap()
        .load_language_model(&config, Par::Seq, Isa::active())
        .unwrap();
    let (original, _) = load_safetensors(&path, LoadOptions::default()).unwrap();
    assert_eq!(language_model_state_dict(&model), original);
}

#[test]
fn a_mismatched_config_names_the_tensors() {
    let mut config = read_lm_config(&fixture("roundtrip/lm_config.json")).unwrap();
    config.hidden += 1;
    let err = StateDict::open(&fixture("roundtrip/model.safetensors"))
        .unwrap()
        .load_language_model(&config, Par::Seq, Isa::active())
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("\"rnn.weight_hh_l0\" has shape [48, 16], expected [51, 17]"),
        "{message}"
    );
}

#[test]
fn greedy_generation_continues_as_pytorch_does() {
    use rand::SeedableRng;
    use recur::engine::model::sampling::Sampling;
    use recur::engine::train::{Context, generate};

    let golden = StateDict::open(&fixture("pytorch/lstm_lm_golden.safetensors")).unwrap();
    let prompt: String = golden.metadata_json("greedy_prompt").unwrap();
    let expected: String = golden.metadata_json("greedy").unwrap();
    let file = StateDict::open(&fixture("pytorch/lstm_lm.safetensors")).unwrap();
    let config: LmConfig = file.metadata_json("lm_config").unwrap();
    let vocab: Vec<char> = file.metadata_json("vocab").unwrap();
    for isa in Isa::available() {
        let file = StateDict::open(&fixture("pytorch/lstm_lm.safetensors")).unwrap();
        let model = file.load_language_model(&config, Par::Seq, isa).unwrap();
        let prime: Vec<u32> = prompt
            .chars()
            .map(|c| vocab.iter().position(|&v| v == c).unwrap() as u32)
            .collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let generation = generate(
            &model,
            &prime,
            expected.chars().count(),
            Context::Stateful,
            Sampling::Greedy,
            &mut rng,
        )
        .unwrap();
        let text: String = generation
            .tokens
            .iter()
            .map(|&id| vocab[id as usize])
            .collect();
        assert_eq!(text, expected, "greedy continuation of {prompt:?} on {isa}");
    }
}
