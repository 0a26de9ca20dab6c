//! Decoding: greedy search and beam search over any step-by-step decoder ([`StepDecoder`]), and
//! the [`Seq2Seq`] decoder session that steps an [`RnnStream`].
//!
//! Both searches score a hypothesis `y₁ … y_n` by its log-probability `Σ log p(y_k | y_<k, x)`;
//! beam search ranks finished hypotheses by the length-normalised score
//! `log p / n^α` (Wu et al. 2016 §7 use `((5 + n)/6)^α`; the plain power is the same idea), where
//! `n` counts the emitted tokens including EOS and α = 0 turns normalisation off.

use recur_kernels::softmax::log_softmax_with_isa;

use super::Seq2SeqError;
use super::model::{Seq2Seq, argmax};
use crate::rnn::{RnnState, RnnStream};

/// A decoder that advances a fixed number of rows (hypotheses) by one token at a time.
pub trait StepDecoder {
    /// C: output classes, EOS among them.
    fn classes(&self) -> usize;
    /// The end-of-sequence class.
    fn eos(&self) -> u32;
    /// The token fed at the first step.
    fn start(&self) -> u32;
    /// R: rows stepped together.
    fn rows(&self) -> usize;
    /// Feeds `tokens` (R) and writes `log p(· | history)` of every row into `log_probs` (R, C).
    fn step_log_probs(&mut self, tokens: &[u32], log_probs: &mut [f32])
    -> Result<(), Seq2SeqError>;
    /// Row `r` continues from the current state of row `parents[r]` (R).
    fn reorder(&mut self, parents: &[usize]) -> Result<(), Seq2SeqError>;
}

/// One decoded sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct Hypothesis {
    /// The tokens, without EOS.
    pub tokens: Vec<u32>,
    /// `Σ log p` of the tokens (and of EOS when finished).
    pub log_prob: f64,
    /// The ranking score: `log_prob / n^α`, n = tokens (+1 for EOS).
    pub score: f64,
    /// Whether it ended with EOS (otherwise it hit the length limit).
    pub finished: bool,
}

/// Beam-search settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BeamConfig {
    /// k: hypotheses kept per step (1 = greedy).
    pub width: usize,
    /// α of the length normalisation `log p / n^α` (0 = none).
    pub length_penalty: f32,
    /// Most tokens emitted, EOS included.
    pub max_len: usize,
}

impl BeamConfig {
    /// Width `width`, α = 0.6 (Wu et al. 2016's tuned value), at most `max_len` tokens.
    pub fn new(width: usize, max_len: usize) -> Self {
        BeamConfig {
            width,
            length_penalty: 0.6,
            max_len,
        }
    }

    /// Sets [`BeamConfig::length_penalty`].
    pub fn with_length_penalty(mut self, alpha: f32) -> Self {
        self.length_penalty = alpha;
        self
    }

    /// Checks width, α and max_len.
    pub fn validate(&self) -> Result<(), Seq2SeqError> {
        if self.width == 0 {
            return Err(Seq2SeqError::Decoding { what: "beam width" });
        }
        if self.max_len == 0 {
            return Err(Seq2SeqError::Decoding { what: "max_len" });
        }
        if !(self.length_penalty.is_finite() && self.length_penalty >= 0.0) {
            return Err(Seq2SeqError::LengthPenalty {
                found: self.length_penalty,
            });
        }
        Ok(())
    }

    fn score(&self, log_prob: f64, emitted: usize) -> f64 {
        if self.length_penalty == 0.0 {
            log_prob
        } else {
            log_prob / (emitted.max(1) as f64).powf(f64::from(self.length_penalty))
        }
    }
}

/// Greedy search on every row of `decoder` at once: each step feeds each row its own most
/// probable token (the first on ties) until it emits EOS or `max_len` tokens.
///
/// # Errors
/// [`Seq2SeqError::Decoding`] for `max_len = 0`, or what the decoder reports.
pub fn greedy_search(
    decoder: &mut impl StepDecoder,
    max_len: usize,
) -> Result<Vec<Hypothesis>, Seq2SeqError> {
    if max_len == 0 {
        return Err(Seq2SeqError::Decoding { what: "max_len" });
    }
    let (rows, classes, eos) = (decoder.rows(), decoder.classes(), decoder.eos());
    let mut hyps = vec![
        Hypothesis {
            tokens: Vec::new(),
            log_prob: 0.0,
            score: 0.0,
            finished: false,
        };
        rows
    ];
    let mut tokens = vec![decoder.start(); rows];
    let mut log_probs = vec![0.0f32; rows * classes];
    for _ in 0..max_len {
        if hyps.iter().all(|h| h.finished) {
            break;
        }
        decoder.step_log_probs(&tokens, &mut log_probs)?;
        for (r, hyp) in hyps.iter_mut().enumerate() {
            if hyp.finished {
                continue;
            }
            let row = &log_probs[r * classes..(r + 1) * classes];
            let best = argmax(row);
            hyp.log_prob += f64::from(row[best as usize]);
            if best == eos {
                hyp.finished = true;
            } else {
                hyp.tokens.push(best);
            }
            tokens[r] = best;
        }
    }
    for hyp in &mut hyps {
        hyp.score = hyp.log_prob;
    }
    Ok(hyps)
}

/// Beam search with `decoder.rows() = config.width` rows for ONE input: returns every finished
/// hypothesis (best score first), or, if none finished within `max_len`, the surviving
/// unfinished ones (best first).
///
/// Each step extends every live hypothesis by every class and ranks the candidates by
/// log-probability (ties: lower row, then lower class). Among the top `k`, an EOS candidate
/// becomes a finished hypothesis; the beam is refilled with the best non-EOS candidates up to
/// `k`. Search stops when `k` hypotheses have finished, none are live, or `max_len` tokens have
/// been emitted. With `k = 1` this is exactly [`greedy_search`].
///
/// # Errors
/// [`Seq2SeqError::Decoding`]/[`Seq2SeqError::LengthPenalty`] for a bad `config`, or what the
/// decoder reports; [`Seq2SeqError::BeamRows`] if the decoder's rows differ from the width.
pub fn beam_search(
    decoder: &mut impl StepDecoder,
    config: &BeamConfig,
) -> Result<Vec<Hypothesis>, Seq2SeqError> {
    config.validate()?;
    let k = config.width;
    if decoder.rows() != k {
        return Err(Seq2SeqError::BeamRows {
            width: k,
            rows: decoder.rows(),
        });
    }
    let (classes, eos) = (decoder.classes(), decoder.eos());
    // Live hypotheses, one per decoder row; row r of the decoder holds beam[r]'s state.
    let mut beam: Vec<Hypothesis> = vec![Hypothesis {
        tokens: Vec::new(),
        log_prob: 0.0,
        score: 0.0,
        finished: false,
    }];
    let mut finished: Vec<Hypothesis> = Vec::new();
    let mut tokens = vec![decoder.start(); k];
    let mut log_probs = vec![0.0f32; k * classes];
    let mut candidates: Vec<(f64, usize, u32)> = Vec::with_capacity(k * classes);
    for step in 0..config.max_len {
        decoder.step_log_probs(&tokens, &mut log_probs)?;
        candidates.clear();
        for (r, hyp) in beam.iter().enumerate() {
            let row = &log_probs[r * classes..(r + 1) * classes];
            for (c, &lp) in row.iter().enumerate() {
                candidates.push((hyp.log_prob + f64::from(lp), r, c as u32));
            }
        }
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut next: Vec<Hypothesis> = Vec::with_capacity(k);
        let mut parents: Vec<usize> = Vec::with_capacity(k);
        for (rank, &(log_prob, r, c)) in candidates.iter().enumerate() {
            if log_prob == f64::NEG_INFINITY {
                break;
            }
            if c == eos {
                if rank < k {
                    let tokens = beam[r].tokens.clone();
                    let score = config.score(log_prob, tokens.len() + 1);
                    finished.push(Hypothesis {
                        tokens,
                        log_prob,
                        score,
                        finished: true,
                    });
                }
            } else if next.len() < k {
                let mut tokens = beam[r].tokens.clone();
                tokens.push(c);
                let score = config.score(log_prob, tokens.len());
                next.push(Hypothesis {
                    tokens,
                    log_prob,
                    score,
                    finished: false,
                });
                parents.push(r);
            }
            if next.len() == k && rank + 1 >= k {
                break;
            }
        }
        beam = next;
        let out_of_steps = step + 1 == config.max_len;
        if finished.len() >= k || beam.is_empty() || out_of_steps {
            break;
        }
        for (r, hyp) in beam.iter().enumerate() {
            tokens[r] = *hyp.tokens.last().expect("a live hypothesis has a token");
        }
        // Rows past the live beam keep some state; they are never read.
        parents.resize(k, 0);
        decoder.reorder(&parents)?;
    }
    let mut out = if finished.is_empty() { beam } else { finished };
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(out)
}

/// A [`Seq2Seq`] decoder stepping `rows` hypotheses from given initial states.
#[derive(Debug)]
pub struct DecoderSession<'m> {
    model: &'m Seq2Seq,
    stream: RnnStream,
    rows: usize,
    /// (R, E)
    x: Vec<f32>,
    /// (R, C)
    logits: Vec<f32>,
}

impl Seq2Seq {
    /// A decoder session of `rows` rows starting from `state` (L, rows, H_dec).
    ///
    /// # Errors
    /// [`Seq2SeqError::Rnn`] if `state` is not (L, rows, H_dec).
    pub fn session(
        &self,
        state: RnnState,
        rows: usize,
    ) -> Result<DecoderSession<'_>, Seq2SeqError> {
        let mut stream = self.decoder.stream(rows)?;
        stream.set_state(&state)?;
        Ok(DecoderSession {
            model: self,
            stream,
            rows,
            x: vec![0.0; rows * self.config().embed_dim],
            logits: vec![0.0; rows * self.config().classes()],
        })
    }

    /// Greedy decoding of a batch of sources: each output without EOS, at most `max_len`
    /// tokens (EOS included) long.
    ///
    /// # Errors
    /// As [`Seq2Seq::loss`] for the sources; [`Seq2SeqError::Decoding`] for `max_len = 0`.
    pub fn greedy<S: AsRef<[u32]>>(
        &self,
        sources: &[S],
        max_len: usize,
    ) -> Result<Vec<Vec<u32>>, Seq2SeqError> {
        let state = self.encode_state(sources)?;
        let mut session = self.session(state, sources.len())?;
        Ok(greedy_search(&mut session, max_len)?
            .into_iter()
            .map(|h| h.tokens)
            .collect())
    }

    /// Beam search for one source (see [`beam_search`]): hypotheses best first.
    ///
    /// # Errors
    /// As [`Seq2Seq::loss`] for the source; a bad `config`.
    pub fn beam(
        &self,
        source: &[u32],
        config: &BeamConfig,
    ) -> Result<Vec<Hypothesis>, Seq2SeqError> {
        config.validate()?;
        let state = self.encode_state(&[source])?;
        let k = config.width;
        // Replicate the one row's state k times: (L, 1, H) → (L, k, H).
        let hd = self.config().decoder_hidden;
        let replicate = |v: &[f32]| -> Vec<f32> {
            v.chunks_exact(hd)
                .flat_map(|layer| std::iter::repeat_n(layer, k).flatten().copied())
                .collect()
        };
        let state = RnnState {
            h: replicate(&state.h),
            c: state.c.as_deref().map(replicate),
        };
        let mut session = self.session(state, k)?;
        beam_search(&mut session, config)
    }
}

impl StepDecoder for DecoderSession<'_> {
    fn classes(&self) -> usize {
        self.model.config().classes()
    }

    fn eos(&self) -> u32 {
        self.model.config().eos()
    }

    fn start(&self) -> u32 {
        self.model.config().eos()
    }

    fn rows(&self) -> usize {
        self.rows
    }

    fn step_log_probs(
        &mut self,
        tokens: &[u32],
        log_probs: &mut [f32],
    ) -> Result<(), Seq2SeqError> {
        let cfg = self.model.config();
        assert_eq!(tokens.len(), self.rows, "one token per row");
        assert_eq!(
            log_probs.len(),
            self.rows * cfg.classes(),
            "log_probs is (R, C)"
        );
        self.model.target_embedding.forward(tokens, &mut self.x);
        let par = self.stream.par();
        let h = self.stream.step(&self.x)?;
        self.model
            .output
            .forward(par, h, self.rows, &mut self.logits);
        log_softmax_with_isa(cfg.isa, &self.logits, cfg.classes(), log_probs);
        Ok(())
    }

    fn reorder(&mut self, parents: &[usize]) -> Result<(), Seq2SeqError> {
        let state = self.stream.state();
        let hd = self.model.config().decoder_hidden;
        let rows = self.rows;
        let pick = |v: &[f32]| -> Vec<f32> {
            v.chunks_exact(rows * hd)
                .flat_map(|layer| {
                    parents
                        .iter()
                        .flat_map(move |&p| layer[p * hd..(p + 1) * hd].iter().copied())
                })
                .collect()
        };
        let state = RnnState {
            h: pick(&state.h),
            c: state.c.as_deref().map(pick),
        };
        self.stream.set_state(&state)?;
        Ok(())
    }
}
