//! Text generation from a trained [`LanguageModel`].

use rand::Rng;

use crate::model::lm::{LanguageModel, LmError};
use crate::model::sampling::{Sampler, Sampling};
use crate::rnn::{RnnState, SeqBatch};

/// How much history the model sees for each next token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// As the model was trained on fixed windows (the seeds' tasks): each next token is predicted
    /// from the last `steps` tokens alone, from the zero state; shorter histories are left-padded
    /// with `pad` if given (the word task's padding id 0), else used as they are.
    Window { steps: usize, pad: Option<u32> },
    /// As a truncated-BPTT stream model: the state runs on through the whole text.
    Stateful,
}

/// The generated tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    pub tokens: Vec<u32>,
}

/// Why generation could not run.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("the prime text is empty after tokenisation: nothing to continue from")]
    EmptyPrime,
    #[error("prime token id {id} is outside the vocabulary of {vocab}")]
    BadToken { id: u32, vocab: usize },
    #[error(transparent)]
    Model(#[from] LmError),
}

/// Continues `prime` by `length` tokens.
pub fn generate<R: Rng + ?Sized>(
    model: &LanguageModel,
    prime: &[u32],
    length: usize,
    context: Context,
    sampling: Sampling,
    rng: &mut R,
) -> Result<Generation, GenerateError> {
    if prime.is_empty() {
        return Err(GenerateError::EmptyPrime);
    }
    let vocab = model.config.vocab;
    if let Some(&id) = prime.iter().find(|&&id| id as usize >= vocab) {
        return Err(GenerateError::BadToken { id, vocab });
    }
    let mut sampler = Sampler::new();
    let mut tokens = Vec::with_capacity(length);
    let mut logits = vec![0.0f32; vocab];
    let mut x = Vec::new();
    match context {
        Context::Window { steps, pad } => {
            let mut history: Vec<u32> = prime.to_vec();
            let mut window = Vec::with_capacity(steps);
            for _ in 0..length {
                window.clear();
                let take = history.len().min(steps);
                if let Some(pad) = pad {
                    window.resize(steps - take, pad);
                }
                window.extend_from_slice(&history[history.len() - take..]);
                next_logits(model, &window, None, &mut x, &mut logits)?;
                let next = sampler.pick(&logits, sampling, rng) as u32;
                history.push(next);
                tokens.push(next);
            }
        }
        Context::Stateful => {
            let mut state = next_logits(model, prime, None, &mut x, &mut logits)?;
            for n in 0..length {
                let next = sampler.pick(&logits, sampling, rng) as u32;
                tokens.push(next);
                if n + 1 < length {
                    state = next_logits(model, &[next], Some(&state), &mut x, &mut logits)?;
                }
            }
        }
    }
    Ok(Generation { tokens })
}

/// Runs `ids` (one sequence) from `initial` and writes the logits after its last token.
fn next_logits(
    model: &LanguageModel,
    ids: &[u32],
    initial: Option<&RnnState>,
    x: &mut Vec<f32>,
    logits: &mut [f32],
) -> Result<RnnState, GenerateError> {
    model.embed(ids, x);
    let forward = model
        .rnn
        .infer(SeqBatch::new(x, ids.len(), 1), initial)
        .map_err(LmError::from)?;
    let h = model.config.hidden;
    let last = &forward.output[(ids.len() - 1) * h..ids.len() * h];
    model.decoder.forward(model.par, last, 1, logits);
    Ok(forward.state)
}
