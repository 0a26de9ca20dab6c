//! Fuzz harness bodies for the engine: what reads untrusted bytes (checkpoints, vocabularies,
//! corpora) and the checkpoint round trip.
//!
//! Each `fuzz_*` function takes the raw input of one fuzz target (`fuzz/fuzz_targets/*.rs` are
//! one-line wrappers) and **panics** when the code under test breaks its contract. Bad bytes must
//! come back as typed errors; a panic, an abort or an out-of-memory on any input is a bug. The same
//! functions replay the committed corpora and crash reproducers in `cargo test`
//! (`tests/fuzz_replay.rs`). The kernels' differential targets live in
//! [`recur_kernels::fuzzing`], whose [`FuzzInput`] cursor these use too.
//!
//! | target | what it feeds | what must hold |
//! |---|---|---|
//! | [`fuzz_safetensors`] | arbitrary bytes to [`load_safetensors_bytes`] | no panic; what loads re-serialises and reloads bit for bit |
//! | [`fuzz_tokenizers`] | arbitrary bytes as a corpus file, through the char and word tokenisers | no panic; ids in range, one per counted token, JSON round trip, `encode_text` agrees with the corpus path |
//! | [`fuzz_checkpoint_json`] | arbitrary `state.json` / `tokenizer.json` in an otherwise valid checkpoint, and to [`Tokenizer::from_json`] | no panic, no unbounded allocation; what loads is consistent |
//! | [`fuzz_cells`] | shapes, ragged lengths, inputs and gradients for the recurrent layers | fused forward and backward match the f64 reference on every ISA path |
//! | [`fuzz_checkpoint_round_trip`] | arbitrary tensors, and a tiny model with arbitrary weights and optimiser state | save → load is bit-identical |
//!
//! Scratch files go to a directory under [`std::env::temp_dir`] named after the process, removed
//! when each case ends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

pub use recur_kernels::fuzzing::FuzzInput;
use recur_kernels::{CellKind, Isa, Par, RnnActivation};

use crate::checkpoint::{
    CheckpointFiles, LoadOptions, Tensor, TensorStore, load_safetensors_bytes, save_step,
    serialize_safetensors,
};
use crate::data::char_tokenizer::{CharTokenizerConfig, CharVocab};
use crate::data::corpus::Corpus;
use crate::data::text::LineMode;
use crate::data::tokenizer::{Tokenizer, TokenizerConfig, VecSink};
use crate::data::word_tokenizer::{KERAS_FILTERS, PAD_ID, WordTokenizerConfig};
use crate::model::init::InitScheme;
use crate::model::lm::{LanguageModel, LmConfig};
use crate::optim::{GradClip, Optimizer, OptimizerConfig, Param};
use crate::reference::{RefNetwork, RefState};
use crate::rnn::{Mode, RnnConfig, RnnState, SeqBatch};
use crate::train::{DatasetSpec, EpochRecord, TrainOptions, load_checkpoint, save_checkpoint};

/// A fresh, empty scratch directory, removed on drop.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("recur-fuzz-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cannot create a scratch directory for fuzzing");
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bits_equal(x: &[f32], y: &[f32]) -> bool {
    x.len() == y.len() && x.iter().zip(y).all(|(a, b)| a.to_bits() == b.to_bits())
}

fn stores_bit_equal(x: &TensorStore, y: &TensorStore) -> bool {
    x.len() == y.len()
        && x.iter().zip(y).all(|((nx, tx), (ny, ty))| {
            nx == ny && tx.shape == ty.shape && bits_equal(&tx.data, &ty.data)
        })
}

// ---------------------------------------------------------------------------------------------
// safetensors
// ---------------------------------------------------------------------------------------------

/// Arbitrary bytes as a safetensors file. Loading must fail with an error or succeed with tensors
/// whose sizes match their shapes; what loads (non-finite values allowed) must survive
/// serialise → load bit for bit, metadata included; the strict load must accept exactly the
/// finite files.
pub fn fuzz_safetensors(data: &[u8]) {
    let path = Path::new("fuzz.safetensors");
    let strict = load_safetensors_bytes(path, data, LoadOptions::default());
    let lenient = load_safetensors_bytes(
        path,
        data,
        LoadOptions {
            allow_non_finite: true,
        },
    );
    let Ok((tensors, metadata)) = lenient else {
        assert!(
            strict.is_err(),
            "the strict load accepted what the lenient refused"
        );
        return;
    };
    for (name, t) in &tensors {
        assert_eq!(
            t.shape.iter().product::<usize>(),
            t.data.len(),
            "tensor {name:?}: shape and value count disagree"
        );
    }
    let all_finite = tensors
        .values()
        .all(|t| t.data.iter().all(|v| v.is_finite()));
    match strict {
        Ok((strict_tensors, _)) => {
            assert!(all_finite, "the strict load accepted non-finite values");
            assert!(stores_bit_equal(&strict_tensors, &tensors));
        }
        Err(e) => assert!(
            !all_finite,
            "the strict load refused a finite file that the lenient load accepted: {e}"
        ),
    }
    let bytes = serialize_safetensors(&tensors, &metadata);
    let (again, metadata_again) = load_safetensors_bytes(
        path,
        &bytes,
        LoadOptions {
            allow_non_finite: true,
        },
    )
    .expect("a file we serialised must load");
    assert!(
        stores_bit_equal(&tensors, &again),
        "tensors changed in a serialise → load round trip"
    );
    assert_eq!(metadata, metadata_again, "metadata changed in a round trip");
}

// ---------------------------------------------------------------------------------------------
// Tokenisers
// ---------------------------------------------------------------------------------------------

/// A tokeniser configuration chosen by one byte of input.
fn pick_tokenizer_config(input: &mut FuzzInput) -> TokenizerConfig {
    let flags = input.u8();
    let lowercase = flags & 1 != 0;
    let ascii_only = flags & 2 != 0;
    if flags & 4 == 0 {
        TokenizerConfig::Char(CharTokenizerConfig {
            lowercase,
            ascii_only,
            lines: if flags & 8 == 0 {
                LineMode::StripAndJoin
            } else {
                LineMode::Keep
            },
        })
    } else {
        let oov_token = (flags & 8 != 0).then(|| "<unk>".to_string());
        let max_vocab = (flags & 16 != 0).then(|| 2 + u32::from(input.u8() % 16));
        TokenizerConfig::Word(WordTokenizerConfig {
            lowercase,
            ascii_only,
            filters: if flags & 32 == 0 {
                KERAS_FILTERS.to_string()
            } else {
                "\t\n".to_string()
            },
            max_vocab,
            oov_token,
        })
    }
}

/// Arbitrary bytes as a corpus (written to a scratch file, opened through the memory map) for a
/// tokeniser configuration chosen by the first byte. Fitting may fail with an error; when it
/// succeeds, encoding the same corpus must succeed with ids in range (word ids never padding),
/// as many as the fit counted; the vocabulary must survive its JSON round trip; decoding any ids
/// must not panic; and for UTF-8 text, `encode_text` must agree with the corpus path (char
/// tokeniser keeping lines; word tokeniser on a single line), and a char tokeniser that keeps
/// everything must decode back to the text.
pub fn fuzz_tokenizers(data: &[u8]) {
    let mut input = FuzzInput::new(data);
    let config = pick_tokenizer_config(&mut input);
    let text = input.rest();
    let scratch = Scratch::new();
    let path = scratch.path().join("corpus.txt");
    std::fs::write(&path, text).expect("cannot write the scratch corpus");
    let Ok(corpus) = Corpus::open(&path) else {
        return;
    };
    let Ok((tokenizer, stats)) = Tokenizer::fit(&corpus, &config) else {
        return;
    };
    let vocab = tokenizer.vocab_size();
    assert!(vocab > 0, "a fitted vocabulary is empty");
    let mut sink = VecSink::default();
    tokenizer
        .encode_corpus(&corpus, &mut sink)
        .expect("a corpus must encode with the vocabulary fitted to it");
    assert_eq!(
        sink.ids.len() as u64,
        stats.tokens,
        "the fit counted another number of tokens than encoding produced"
    );
    for &id in &sink.ids {
        assert!(
            (id as usize) < vocab,
            "id {id} outside the vocabulary of {vocab}"
        );
        if matches!(tokenizer, Tokenizer::Word(_)) {
            assert_ne!(id, PAD_ID, "the word tokeniser emitted the padding id");
        }
    }
    let json = tokenizer.to_json();
    let back = Tokenizer::from_json(&json).expect("a vocabulary must parse its own JSON");
    assert_eq!(
        back, tokenizer,
        "the vocabulary changed in its JSON round trip"
    );

    let decoded = tokenizer.decode(&sink.ids);
    let mut arbitrary_ids: Vec<u32> = sink.ids.iter().take(8).copied().collect();
    arbitrary_ids.extend([u32::MAX, vocab as u32, 0]);
    let _ = tokenizer.decode(&arbitrary_ids);

    let Ok(utf8) = std::str::from_utf8(text) else {
        return;
    };
    let encoded = tokenizer.encode_text(utf8);
    assert!(
        encoded.ids.iter().all(|&id| (id as usize) < vocab),
        "encode_text gave an id outside the vocabulary"
    );
    match (&tokenizer, &config) {
        (Tokenizer::Char(_), TokenizerConfig::Char(c)) if c.lines == LineMode::Keep => {
            assert_eq!(
                encoded.ids, sink.ids,
                "encode_text and encode_corpus disagree on the same text"
            );
            assert!(encoded.unknown.is_empty(), "{:?}", encoded.unknown);
            if !c.lowercase && !c.ascii_only {
                assert_eq!(decoded, utf8, "decode(encode(text)) is not the text");
            }
        }
        (Tokenizer::Word(_), _) if !utf8.contains(['\n', '\r']) => {
            assert_eq!(
                encoded.ids, sink.ids,
                "encode_text and encode_corpus disagree on a one-line text"
            );
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Checkpoint JSON
// ---------------------------------------------------------------------------------------------

/// A valid tiny checkpoint step (files by name: `model.safetensors`, `optimizer.safetensors`,
/// `state.json`, `tokenizer.json`), built once: the base the JSON target mutates, and seeds.
pub fn reference_checkpoint() -> &'static CheckpointFiles {
    static FILES: OnceLock<CheckpointFiles> = OnceLock::new();
    FILES.get_or_init(|| {
        let scratch = Scratch::new();
        let run = tiny_run(CharTokenizerConfig::SEED, "lstm", 5, 3, Some(4), 2);
        save_checkpoint(
            scratch.path(),
            &run.model,
            &run.optimizer,
            &run.tokenizer,
            &run.options,
            &run.history,
            &["last"],
        )
        .expect("saving the reference checkpoint");
        let step = crate::checkpoint::resolve_pointer(scratch.path(), "last").expect("pointer");
        let mut files = Vec::new();
        for name in [
            "model.safetensors",
            "optimizer.safetensors",
            "state.json",
            "tokenizer.json",
        ] {
            files.push((
                name.to_string(),
                std::fs::read(step.join(name)).expect(name),
            ));
        }
        files
    })
}

/// The seed corpus of the checkpoint-JSON target: the reference checkpoint's `state.json` and
/// `tokenizer.json`, each framed as the target reads them.
pub fn checkpoint_json_seeds() -> Vec<Vec<u8>> {
    let files = reference_checkpoint();
    let file = |name: &str| {
        files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.clone())
            .expect("reference file")
    };
    vec![
        [&[0u8][..], &file("state.json")].concat(),
        [&[1u8][..], &file("tokenizer.json")].concat(),
    ]
}

/// The first byte says which file the rest replaces (even: `state.json`, odd: `tokenizer.json`)
/// in an otherwise valid checkpoint; loading it must return a bundle or an error — never panic
/// or allocate without bound. The rest is also parsed directly as a vocabulary.
pub fn fuzz_checkpoint_json(data: &[u8]) {
    let mut input = FuzzInput::new(data);
    let which = input.u8();
    let replacement = input.rest();

    if let Ok(text) = std::str::from_utf8(replacement)
        && let Ok(tokenizer) = Tokenizer::from_json(text)
    {
        let vocab = tokenizer.vocab_size();
        let back = Tokenizer::from_json(&tokenizer.to_json()).expect("own JSON parses");
        assert_eq!(
            back, tokenizer,
            "the vocabulary changed in its JSON round trip"
        );
        let encoded = tokenizer.encode_text("the cat sat on the mat\nÄ ξ 😀");
        assert!(encoded.ids.iter().all(|&id| (id as usize) < vocab));
        let _ = tokenizer.decode(&[0, 1, 2, u32::MAX]);
    }

    let target = if which.is_multiple_of(2) {
        "state.json"
    } else {
        "tokenizer.json"
    };
    let mut files = reference_checkpoint().clone();
    for (name, bytes) in &mut files {
        if name == target {
            *bytes = replacement.to_vec();
        }
    }
    let scratch = Scratch::new();
    save_step(scratch.path(), 1, &files, &["last"]).expect("writing the scratch checkpoint");
    if let Ok(bundle) = load_checkpoint(scratch.path(), "last", Par::Seq) {
        assert_eq!(
            bundle.tokenizer.vocab_size(),
            bundle.model.config.vocab,
            "a loaded checkpoint's vocabulary and model disagree"
        );
        let shapes = bundle.model.param_shapes();
        for ((name, values), (shape_name, shape)) in bundle.model.named_params().iter().zip(&shapes)
        {
            assert_eq!(name, shape_name);
            assert_eq!(values.len(), shape.iter().product::<usize>(), "{name}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Round trip
// ---------------------------------------------------------------------------------------------

/// A tiny model, optimiser, vocabulary and options to save (weights freshly initialised).
struct TinyRun {
    model: LanguageModel,
    optimizer: Optimizer,
    tokenizer: Tokenizer,
    options: TrainOptions,
    history: Vec<EpochRecord>,
}

fn tiny_run(
    chars: CharTokenizerConfig,
    cell: &str,
    vocab: usize,
    hidden: usize,
    embedding_dim: Option<usize>,
    num_layers: usize,
) -> TinyRun {
    let symbols: Vec<char> = (0..vocab as u32)
        .map(|i| char::from_u32(0x21 + i).expect("printable ASCII and beyond"))
        .collect();
    let tokenizer =
        Tokenizer::Char(CharVocab::from_symbols(chars, symbols).expect("sorted, distinct"));
    let config = LmConfig {
        vocab,
        embedding_dim,
        cell: cell.to_string(),
        hidden,
        num_layers,
        dropout: 0.0,
        embed_dropout: 0.0,
        output_dropout: 0.0,
        init: InitScheme::Keras,
    };
    let model = LanguageModel::new(config, Par::Seq, 7).expect("a valid tiny model");
    let optimizer = Optimizer::new(OptimizerConfig::keras_adam()).expect("valid optimiser");
    let options = TrainOptions {
        batch_size: 4,
        epochs: 1,
        seed: 7,
        shuffle: true,
        clip: vec![GradClip::Value(5.0)],
        dataset: DatasetSpec::Windows {
            steps: 3,
            stride: 1,
        },
        steps: 3,
        sample_tokens: 0,
        run_dir: None,
        checkpoint_every: 0,
        max_steps: None,
    };
    let history = vec![EpochRecord {
        epoch: 1,
        step: 1,
        train_loss: 1.5,
        train_accuracy: 0.25,
        val_loss: None,
        val_accuracy: None,
        seconds: 0.5,
        targets_per_second: 100.0,
        sample: Some("ab\"c\u{1F600}".into()),
    }];
    TinyRun {
        model,
        optimizer,
        tokenizer,
        options,
        history,
    }
}

/// A tensor name like a `state_dict` key: 1–24 of `[a-z0-9._]`.
fn tensor_name(input: &mut FuzzInput) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789._";
    let len = 1 + input.below_or_eq(23);
    (0..len)
        .map(|_| char::from(ALPHABET[input.u8() as usize % ALPHABET.len()]))
        .collect()
}

/// Two round trips, chosen by the first byte:
///
/// - even: arbitrary named tensors (0–4 dimensions, zero sizes included, any f32 bit pattern)
///   and string metadata through [`serialize_safetensors`] and the lenient loader: bit-identical;
/// - odd: a tiny model (cell, sizes, embedding from the input) with arbitrary finite weights and
///   Adam state after one step on arbitrary gradients, through [`save_checkpoint`] and
///   [`load_checkpoint`]: every parameter and optimiser buffer bit-identical, and the step count,
///   vocabulary, options and history equal.
pub fn fuzz_checkpoint_round_trip(data: &[u8]) {
    let mut input = FuzzInput::new(data);
    if input.u8().is_multiple_of(2) {
        tensor_round_trip(&mut input);
    } else {
        model_round_trip(&mut input);
    }
}

fn tensor_round_trip(input: &mut FuzzInput) {
    let mut tensors = TensorStore::new();
    for _ in 0..input.below_or_eq(6) {
        let name = tensor_name(input);
        let rank = input.below_or_eq(4);
        let shape: Vec<usize> = (0..rank).map(|_| input.below_or_eq(5)).collect();
        let data: Vec<f32> = (0..shape.iter().product::<usize>())
            .map(|_| input.f32_bits())
            .collect();
        tensors.insert(name, Tensor::new(shape, data));
    }
    let mut metadata = BTreeMap::new();
    for _ in 0..input.below_or_eq(3) {
        let key = tensor_name(input);
        let len = input.below_or_eq(16);
        let value: String = (0..len)
            .filter_map(|_| char::from_u32(u32::from(input.u16())))
            .collect();
        metadata.insert(key, value);
    }
    let bytes = serialize_safetensors(&tensors, &metadata);
    let (back, metadata_back) = load_safetensors_bytes(
        Path::new("round-trip"),
        &bytes,
        LoadOptions {
            allow_non_finite: true,
        },
    )
    .expect("a file we serialised must load");
    assert!(
        stores_bit_equal(&tensors, &back),
        "tensors changed in a round trip"
    );
    assert_eq!(metadata, metadata_back, "metadata changed in a round trip");
}

fn model_round_trip(input: &mut FuzzInput) {
    let cell = ["rnn_tanh", "rnn_relu", "lstm", "gru"][input.u8() as usize % 4];
    let vocab = 1 + input.below_or_eq(11);
    let hidden = 1 + input.below_or_eq(7);
    let embedding_dim = input.bool().then(|| 1 + input.below_or_eq(5));
    let num_layers = 1 + input.below_or_eq(1);
    let mut run = tiny_run(
        CharTokenizerConfig::SEED,
        cell,
        vocab,
        hidden,
        embedding_dim,
        num_layers,
    );
    for (_, values) in run.model.params_mut() {
        for v in values.iter_mut() {
            *v = input.finite_f32(f32::MAX);
        }
    }
    // One Adam step on arbitrary finite gradients gives the optimiser state to save.
    let names: Vec<String> = run
        .model
        .named_params()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let mut grads = run.model.zero_grads();
    let mut pairs = run.model.params_and_grads(&mut grads);
    let mut params: Vec<Param<'_>> = pairs
        .iter_mut()
        .zip(&names)
        .map(|((p, g), name)| {
            for v in g.iter_mut() {
                *v = input.finite_f32(1e3);
            }
            Param::new(name, p, g)
        })
        .collect();
    run.optimizer.step(&mut params).expect("one Adam step");
    drop(params);
    drop(pairs);

    let scratch = Scratch::new();
    save_checkpoint(
        scratch.path(),
        &run.model,
        &run.optimizer,
        &run.tokenizer,
        &run.options,
        &run.history,
        &["last", "best"],
    )
    .expect("saving a valid checkpoint");
    let bundle = match load_checkpoint(scratch.path(), "best", Par::Seq) {
        Ok(b) => b,
        Err(e) => {
            // Adam on huge weights may overflow to inf; the strict loader refuses those.
            let non_finite = run
                .model
                .named_params()
                .iter()
                .any(|(_, v)| v.iter().any(|x| !x.is_finite()))
                || run
                    .optimizer
                    .state()
                    .named_buffers()
                    .iter()
                    .any(|(_, v)| v.iter().any(|x| !x.is_finite()));
            assert!(non_finite, "a finite checkpoint we saved did not load: {e}");
            return;
        }
    };
    assert_eq!(bundle.model.config, run.model.config);
    for ((name, got), (_, want)) in bundle
        .model
        .named_params()
        .iter()
        .zip(run.model.named_params())
    {
        assert!(
            bits_equal(got, want),
            "parameter {name} changed in a round trip"
        );
    }
    assert_eq!(bundle.optimizer.steps(), run.optimizer.steps());
    assert_eq!(bundle.optimizer.config(), run.optimizer.config());
    let (got, want) = (
        bundle.optimizer.state().named_buffers(),
        run.optimizer.state().named_buffers(),
    );
    assert_eq!(
        got.len(),
        want.len(),
        "optimiser buffers lost in a round trip"
    );
    for ((gn, gv), (wn, wv)) in got.iter().zip(&want) {
        assert_eq!(gn, wn);
        assert!(
            bits_equal(gv, wv),
            "optimiser buffer {gn} changed in a round trip"
        );
    }
    assert_eq!(bundle.tokenizer, run.tokenizer);
    assert_eq!(bundle.options, run.options);
    assert_eq!(bundle.history, run.history);
}

// ---------------------------------------------------------------------------------------------
// Recurrent layers (the fused cell kernels) against the reference
// ---------------------------------------------------------------------------------------------

/// `|got − want| ≤ 5e-5 + 5e-4·|want|` elementwise (the tolerance of `tests/api/layers_rnn.rs`, for
/// inputs, states and gradients in [−1, 1] and weights at PyTorch's initial scale).
fn assert_close(what: &str, got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (f64::from(g) - w).abs();
        assert!(
            err <= 5e-5 + 5e-4 * w.abs(),
            "{what}[{i}]: fast {g}, reference {w} (|err| {err:.3e})"
        );
    }
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

fn ref_states(state: &RnnState, count: usize) -> Vec<RefState<f64>> {
    let per = state.h.len() / count;
    (0..count)
        .map(|i| RefState {
            h: f64s(&state.h[i * per..(i + 1) * per]),
            c: state.c.as_ref().map(|c| f64s(&c[i * per..(i + 1) * per])),
        })
        .collect()
}

fn flatten_states(states: &[RefState<f64>]) -> (Vec<f64>, Option<Vec<f64>>) {
    let h = states.iter().flat_map(|s| s.h.iter().copied()).collect();
    let c = states[0].c.as_ref().map(|_| {
        states
            .iter()
            .flat_map(|s| s.c.clone().unwrap_or_default())
            .collect()
    });
    (h, c)
}

/// One recurrent-layer case from `data`: cell (RNN tanh/relu, LSTM, GRU), T ≤ 6, B ≤ 7 with
/// ragged lengths, I, H ≤ 24, 1–2 layers, uni- or bidirectional, an optional initial state;
/// inputs, initial states and output gradients from the bytes in [−1, 1]. On every ISA path (and
/// with two threads on the active one) the fused forward and backward — outputs, final states,
/// input, state and every weight gradient — must match the f64 reference within the tolerance of
/// `tests/api/layers_rnn.rs`.
pub fn fuzz_cells(data: &[u8]) {
    let mut input = FuzzInput::new(data);
    let kind = [
        CellKind::Lstm,
        CellKind::Gru,
        CellKind::Rnn(RnnActivation::Tanh),
        CellKind::Rnn(RnnActivation::Relu),
    ][input.u8() as usize % 4];
    let steps = 1 + input.below_or_eq(5);
    let batch = 1 + input.below_or_eq(6);
    let in_size = 1 + input.below_or_eq(23);
    let hidden = 1 + input.below_or_eq(23);
    let layers = 1 + input.below_or_eq(1);
    let bidirectional = input.bool();
    let with_initial = input.bool();
    let seed = u64::from(input.u16());
    let mut lengths: Vec<usize> = (0..batch)
        .map(|_| 1 + input.below_or_eq(steps - 1))
        .collect();
    lengths[input.below_or_eq(batch - 1)] = steps; // the longest sequence fills the batch
    let unit = |input: &mut FuzzInput| f32::from(input.u16()) / 32768.0 - 1.0;
    let x: Vec<f32> = (0..steps * batch * in_size)
        .map(|_| unit(&mut input))
        .collect();
    let directions = if bidirectional { 2 } else { 1 };
    let count = layers * directions;
    let state_len = count * batch * hidden;
    let initial = with_initial.then(|| RnnState {
        h: (0..state_len).map(|_| unit(&mut input)).collect(),
        c: kind
            .has_cell_state()
            .then(|| (0..state_len).map(|_| unit(&mut input)).collect()),
    });
    let out_len = steps * batch * directions * hidden;
    let dy: Vec<f32> = (0..out_len).map(|_| unit(&mut input)).collect();
    let d_final = RnnState {
        h: (0..state_len).map(|_| unit(&mut input)).collect(),
        c: kind
            .has_cell_state()
            .then(|| (0..state_len).map(|_| unit(&mut input)).collect()),
    };

    let reference = RefNetwork::<f64>::seeded(kind, in_size, hidden, layers, bidirectional, seed)
        .cast::<f32>()
        .cast::<f64>();
    let ref_init = initial.as_ref().map(|s| ref_states(s, count));
    let fwd = reference.forward(&f64s(&x), steps, batch, &lengths, ref_init.as_deref(), None);
    let ref_back = reference.backward(&fwd, &f64s(&dy), Some(&ref_states(&d_final, count)));
    let (ref_h, ref_c) = flatten_states(&fwd.final_states);
    let (ref_dh0, ref_dc0) = flatten_states(&ref_back.d_init);

    let mut runs: Vec<(Isa, Par)> = Isa::ALL
        .into_iter()
        .filter(|isa| isa.is_available())
        .map(|isa| (isa, Par::Seq))
        .collect();
    runs.push((Isa::active(), Par::Rayon(2)));
    for (isa, par) in runs {
        let mut rnn = RnnConfig::new(kind, in_size, hidden)
            .with_num_layers(layers)
            .with_bidirectional(bidirectional)
            .with_isa(isa)
            .with_par(par)
            .init(0)
            .expect("a valid layer");
        for (name, values) in reference.named_parameters() {
            let dst = rnn
                .params_mut()
                .get_mut(&name)
                .expect("same parameter names");
            for (d, &v) in dst.iter_mut().zip(values) {
                *d = v as f32;
            }
        }
        let tag = format!(
            "{isa} {par:?} {kind:?} T{steps} B{batch} I{in_size} H{hidden} L{layers} bi={bidirectional} lengths={lengths:?}"
        );
        let seq = SeqBatch::new(&x, steps, batch).with_lengths(&lengths);
        let (out, cache) = rnn
            .forward(seq, initial.as_ref(), Mode::Training { dropout_seed: 0 })
            .expect("forward");
        assert_close(&format!("{tag} output"), &out.output, &fwd.y);
        assert_close(&format!("{tag} h_n"), &out.state.h, &ref_h);
        if let (Some(got), Some(want)) = (&out.state.c, &ref_c) {
            assert_close(&format!("{tag} c_n"), got, want);
        }
        let mut grads = rnn.zero_grads();
        let back = rnn
            .backward(cache, &dy, Some(&d_final), &mut grads)
            .expect("backward");
        assert_close(&format!("{tag} d_input"), &back.d_input, &ref_back.d_x);
        assert_close(&format!("{tag} d_h0"), &back.d_state.h, &ref_dh0);
        if let (Some(got), Some(want)) = (&back.d_state.c, &ref_dc0) {
            assert_close(&format!("{tag} d_c0"), got, want);
        }
        for (name, want) in ref_back.named_parameters() {
            let got = grads
                .get(&format!("d_{name}"))
                .expect("same gradient names");
            assert_close(&format!("{tag} d_{name}"), got, want);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harnesses_accept_empty_and_short_inputs() {
        for data in [&[][..], &[1], &[0xff; 9], b"\x04the cat sat\n"] {
            fuzz_safetensors(data);
            fuzz_tokenizers(data);
            fuzz_checkpoint_json(data);
            fuzz_checkpoint_round_trip(data);
            fuzz_cells(data);
        }
    }

    #[test]
    fn checkpoint_json_seeds_load() {
        for seed in checkpoint_json_seeds() {
            fuzz_checkpoint_json(&seed);
        }
    }
}
