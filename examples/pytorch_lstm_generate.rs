//! Loads a PyTorch-trained character LSTM language model and generates text with recur.
//!
//! The model is `tests/fixtures/pytorch/lstm_lm.safetensors`, a `state_dict` saved by
//! `scripts/interop/pytorch_lm.py` (`nn.Embedding` → 2-layer `nn.LSTM` → `nn.Linear`, trained on a
//! short text), with its configuration and vocabulary in the file's metadata.
//!
//! ```sh
//! cargo run --release --example pytorch_lstm_generate                      # greedy, prompt "the "
//! cargo run --release --example pytorch_lstm_generate -- "a dog" 120 0.8   # prompt, length, temperature
//! cargo run --release --example pytorch_lstm_generate -- "the " 80 0.8 path/to/model.safetensors
//! ```

use std::path::PathBuf;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use recur::engine::interop::StateDict;
use recur::engine::model::lm::LmConfig;
use recur::engine::model::sampling::Sampling;
use recur::engine::train::{Context, generate};
use recur::kernels::{Isa, Par};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let prompt = args.next().unwrap_or_else(|| "the ".to_string());
    let length: usize = args.next().map_or(Ok(100), |a| a.parse())?;
    let temperature: f32 = args.next().map_or(Ok(0.0), |a| a.parse())?;
    let path = args.next().map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/pytorch/lstm_lm.safetensors")
        },
        PathBuf::from,
    );

    // The state_dict, checked tensor by tensor against the configuration stored beside it.
    let file = StateDict::open(&path)?;
    let config: LmConfig = file.metadata_json("lm_config")?;
    let vocab: Vec<char> = file.metadata_json("vocab")?;
    let model = file.load_language_model(&config, Par::Seq, Isa::active())?;
    println!(
        "loaded {}: Embedding({}, {}) → {} {} × {} → Linear({}, {}), {} ISA path",
        path.display(),
        config.vocab,
        config.embedding_dim.unwrap_or(0),
        config.cell,
        config.hidden,
        config.num_layers,
        config.hidden,
        config.vocab,
        model.rnn.config().isa,
    );

    let prime: Vec<u32> = prompt
        .chars()
        .map(|c| {
            vocab
                .iter()
                .position(|&v| v == c)
                .map(|id| id as u32)
                .ok_or_else(|| format!("character {c:?} of the prompt is not in the vocabulary"))
        })
        .collect::<Result<_, _>>()?;
    let sampling = if temperature > 0.0 {
        Sampling::Random {
            temperature,
            top_k: None,
            top_p: None,
        }
    } else {
        Sampling::Greedy
    };
    // Stateful: the prompt runs through the network once, then each new character is one step.
    let generation = generate(
        &model,
        &prime,
        length,
        Context::Stateful,
        sampling,
        &mut ChaCha8Rng::seed_from_u64(1),
    )?;
    let text: String = generation
        .tokens
        .iter()
        .map(|&id| vocab[id as usize])
        .collect();
    println!("{prompt}{text}");
    Ok(())
}
