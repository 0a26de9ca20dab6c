//! Counting n-grams and turning the counts into smoothed conditional probabilities.
//!
//! # Contexts and the begin symbol
//!
//! Every training sequence (a line of words, or one long character stream) is read as if it
//! were preceded by `n − 1` copies of a begin symbol `<s>` (id `V_size`, never predicted), so
//! the first token is predicted from `<s> … <s>`, the second from `<s> … <s> w₁`, and so on.
//! A query context shorter than `n − 1` is padded the same way; a longer one is cut to its last
//! `n − 1` ids.
//!
//! # Interpolated modified Kneser–Ney (Chen & Goodman 1998, §3.5 and eq. 26)
//!
//! For the highest order `n` and a context `h` seen in training,
//!
//! ```text
//! p_n(w | h) = ( max(c(hw) − D(c(hw)), 0) + γ(h) · p_{n−1}(w | h') ) / c(h)
//! γ(h)       = D₁·N₁(h•) + D₂·N₂(h•) + D₃₊·N₃₊(h•)
//! ```
//!
//! where `h'` is `h` without its first id, `c(h) = Σ_w c(hw)`, `N_r(h•)` counts the ids that
//! follow `h` exactly `r` times (`N₃₊`: three or more), and `D(c)` is `D₁`, `D₂` or `D₃₊` by the
//! count. An unseen context gives `p_n(w | h) = p_{n−1}(w | h')`. Lower orders `k < n` use the
//! same formula with **continuation counts** in place of `c`: `c_k(g)` is the number of distinct
//! ids that precede the k-gram `g` in training (`N₁₊(•g)`), except that a k-gram beginning with
//! `<s>` keeps its raw count (it can only occur at the start of a sequence; KenLM does the same).
//! Order 1 interpolates with the uniform distribution `1/V` over the `V` predictable ids, so
//! every id of the vocabulary — seen in training or not — has a probability > 0, and each
//! `p_k(· | h)` sums to 1 whenever `D(c) ≤ c` (which the discount ranges guarantee).
//!
//! The discounts are estimated per order from the count-of-counts `n_r` of that order's counts
//! (Chen & Goodman eq. 26): `Y = n₁/(n₁ + 2n₂)`, `D₁ = 1 − 2Y·n₂/n₁`, `D₂ = 2 − 3Y·n₃/n₂`,
//! `D₃₊ = 3 − 4Y·n₄/n₃`. When a count-of-count is 0 (tiny corpora) or an estimate leaves
//! `(0, r]`, the order falls back to Ney's single discount `Y` for all three (or 0.5 if `Y` is
//! undefined). [`Discounts::Fixed`] sets them by hand (`Fixed([0.75; 3])` is the classic
//! interpolated Kneser–Ney with one discount).
//!
//! # Add-k (Lidstone), for contrast
//!
//! `p(w | h) = (c(hw) + k) / (c(h) + k·V)` with raw counts of the highest order only, no
//! backing off; an unseen context gives the uniform `1/V`. `k = 1` is Laplace's rule.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use rand::Rng;

use super::error::NgramError;

/// The ids an n-gram model distributes probability over: `0..size`, except an optional
/// reserved id (the word tokeniser's padding id 0) that never occurs in text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vocabulary {
    size: usize,
    reserved: Option<u32>,
}

impl Vocabulary {
    /// Ids `0..size`, without `reserved`.
    ///
    /// # Errors
    ///
    /// [`NgramError::EmptyVocabulary`] if no id is left to predict; [`NgramError::OrderTooLarge`]
    /// is impossible here but `size` must fit a `u32` with room for the begin symbol, else
    /// [`NgramError::EmptyVocabulary`] names the size.
    pub fn new(size: usize, reserved: Option<u32>) -> Result<Vocabulary, NgramError> {
        if size >= u32::MAX as usize {
            return Err(NgramError::EmptyVocabulary {
                found: format!("{size} ids, more than a u32 id can name"),
            });
        }
        let reserved = reserved.filter(|&r| (r as usize) < size);
        let predictable = size - usize::from(reserved.is_some());
        if predictable == 0 {
            return Err(NgramError::EmptyVocabulary {
                found: match reserved {
                    Some(r) => format!("{size} id(s), all reserved (id {r})"),
                    None => "0 ids".to_string(),
                },
            });
        }
        Ok(Vocabulary { size, reserved })
    }

    /// Ids `0..size` (including the reserved one, if any).
    pub fn size(&self) -> usize {
        self.size
    }

    /// The id that is never predicted, if any.
    pub fn reserved(&self) -> Option<u32> {
        self.reserved
    }

    /// V: the number of ids that can be predicted.
    pub fn predictable(&self) -> usize {
        self.size - usize::from(self.reserved.is_some())
    }

    /// Whether `id` is one of the predictable ids.
    pub fn is_predictable(&self, id: u32) -> bool {
        (id as usize) < self.size && Some(id) != self.reserved
    }

    fn check(&self, what: &'static str, id: u32) -> Result<(), NgramError> {
        if self.is_predictable(id) {
            return Ok(());
        }
        Err(NgramError::TokenOutOfVocabulary {
            what,
            id,
            size: self.size,
            reserved: self
                .reserved
                .map_or_else(String::new, |r| format!(", id {r} reserved")),
        })
    }

    /// The begin symbol `<s>`: one past the last id.
    fn bos(&self) -> u32 {
        self.size as u32
    }
}

/// Kneser–Ney discounts `D₁, D₂, D₃₊`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Discounts {
    /// Estimated per order from the count-of-counts (Chen & Goodman eq. 26).
    Estimated,
    /// The same `[D₁, D₂, D₃₊]` at every order; `D_r` must lie in `(0, r]` (0 would give unseen
    /// ids probability 0).
    Fixed([f64; 3]),
}

/// How counts become probabilities.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Smoothing {
    /// Interpolated modified Kneser–Ney.
    KneserNey(Discounts),
    /// Add-k (Lidstone) on the highest order, `k > 0`.
    AddK(f64),
}

impl Smoothing {
    /// Interpolated modified Kneser–Ney with estimated discounts (the usual choice).
    pub const KNESER_NEY: Smoothing = Smoothing::KneserNey(Discounts::Estimated);

    /// A short name for tables: `kn`, `kn(D=…)` or `add-k(k=…)`.
    pub fn name(&self) -> String {
        match self {
            Smoothing::KneserNey(Discounts::Estimated) => "kn".to_string(),
            Smoothing::KneserNey(Discounts::Fixed(d)) => {
                format!("kn(D={},{},{})", d[0], d[1], d[2])
            }
            Smoothing::AddK(k) => format!("add-k(k={k})"),
        }
    }

    fn validate(&self) -> Result<(), NgramError> {
        match *self {
            Smoothing::AddK(k) if !(k.is_finite() && k > 0.0) => {
                Err(NgramError::InvalidAddK { found: k })
            }
            Smoothing::KneserNey(Discounts::Fixed(d)) => {
                for (r, &value) in d.iter().enumerate() {
                    if !(value.is_finite() && value > 0.0 && value <= (r + 1) as f64) {
                        return Err(NgramError::InvalidDiscount {
                            count: r + 1,
                            found: value,
                        });
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// What to build: the order `n` and the smoothing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NgramConfig {
    /// n ≥ 1: the model conditions on the previous `n − 1` ids.
    pub order: usize,
    /// How counts become probabilities.
    pub smoothing: Smoothing,
}

impl NgramConfig {
    /// Checks what does not depend on the vocabulary: `n ≥ 1` and the smoothing parameters.
    ///
    /// # Errors
    ///
    /// [`NgramError::OrderTooSmall`], [`NgramError::InvalidAddK`], [`NgramError::InvalidDiscount`].
    pub fn validate(&self) -> Result<(), NgramError> {
        if self.order < 1 {
            return Err(NgramError::OrderTooSmall { found: self.order });
        }
        self.smoothing.validate()
    }
}

/// A fast, fixed hash for the packed `u128` keys (splitmix64's finaliser over the two halves).
/// The std SipHash is several times slower here and its DoS resistance is not needed.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix64(self.0 ^ u64::from(b));
        }
    }

    fn write_u128(&mut self, value: u128) {
        let folded = (value as u64) ^ mix64((value >> 64) as u64 ^ 0x9e37_79b9_7f4a_7c15);
        self.0 = mix64(self.0 ^ folded);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

type KeyMap<V> = HashMap<u128, V, BuildHasherDefault<KeyHasher>>;

/// Packs up to `128 / bits` ids (begin symbol included) into one `u128`, oldest id highest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct KeyCodec {
    bits: u32,
}

impl KeyCodec {
    fn for_vocab(vocab: &Vocabulary) -> KeyCodec {
        // Room for ids 0..size and the begin symbol `size`.
        KeyCodec {
            bits: (u32::BITS - vocab.bos().leading_zeros()).max(1),
        }
    }

    fn max_order(&self) -> usize {
        (u128::BITS / self.bits) as usize
    }

    fn push(&self, key: u128, id: u32) -> u128 {
        (key << self.bits) | u128::from(id)
    }

    /// The key of `ids` (oldest first).
    fn pack(&self, ids: &[u32]) -> u128 {
        ids.iter().fold(0, |key, &id| self.push(key, id))
    }

    /// The first (oldest) id of a key of `len` ids.
    fn first(&self, key: u128, len: usize) -> u32 {
        (key >> (self.bits as usize * (len - 1))) as u32 & self.symbol_mask()
    }

    /// The key without its first id (a key of `len − 1` ids).
    fn drop_first(&self, key: u128, len: usize) -> u128 {
        key & ((1u128 << (self.bits as usize * (len - 1))) - 1)
    }

    /// The key without its last id (the context of an n-gram).
    fn drop_last(&self, key: u128) -> u128 {
        key >> self.bits
    }

    fn symbol_mask(&self) -> u32 {
        ((1u64 << self.bits) - 1) as u32
    }
}

/// Counts of one context's continuations, as the smoothing formulas need them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContextStats {
    /// `c(h) = Σ_w c(hw)`.
    pub total: u64,
    /// Ids following `h` exactly once / twice / three or more times.
    pub n1: u64,
    pub n2: u64,
    pub n3plus: u64,
}

/// Counts n-grams of sequences; [`NgramCounter::finish`] turns them into a model.
#[derive(Clone, Debug)]
pub struct NgramCounter {
    config: NgramConfig,
    vocab: Vocabulary,
    codec: KeyCodec,
    /// Index `k − 1`: raw counts of the k-grams ending at every token (contexts padded with `<s>`).
    raw: Vec<KeyMap<u64>>,
    /// Raw unigram counts (V_size): which ids training has seen.
    unigram: Vec<u64>,
    tokens: u64,
}

impl NgramCounter {
    /// An empty counter.
    ///
    /// # Errors
    ///
    /// [`NgramError::OrderTooSmall`] for `n = 0`, [`NgramError::OrderTooLarge`] if an n-gram's
    /// key would not fit 128 bits, [`NgramError::InvalidAddK`] / [`NgramError::InvalidDiscount`]
    /// for bad smoothing parameters.
    pub fn new(config: NgramConfig, vocab: Vocabulary) -> Result<NgramCounter, NgramError> {
        config.validate()?;
        let codec = KeyCodec::for_vocab(&vocab);
        if config.order > codec.max_order() {
            return Err(NgramError::OrderTooLarge {
                found: config.order,
                max: codec.max_order(),
                vocab: vocab.size(),
                bits: codec.bits,
            });
        }
        Ok(NgramCounter {
            config,
            vocab,
            codec,
            raw: vec![KeyMap::default(); config.order],
            unigram: vec![0; vocab.size()],
            tokens: 0,
        })
    }

    /// Counts one sequence (a line, or a whole stream), read after `n − 1` begin symbols.
    ///
    /// # Errors
    ///
    /// [`NgramError::TokenOutOfVocabulary`] for an id that is not predictable; the ids before
    /// it stay counted.
    pub fn add_sequence(&mut self, ids: impl IntoIterator<Item = u32>) -> Result<(), NgramError> {
        let n = self.config.order;
        let bos = self.vocab.bos();
        // (n − 1) most recent ids, oldest first.
        let mut history = vec![bos; n - 1];
        for id in ids {
            self.vocab.check("training text", id)?;
            // Order k counts the k-gram history[n−k..] + id.
            let mut key = u128::from(id);
            *self.raw[0].entry(key).or_insert(0) += 1;
            for k in 2..=n {
                let older = history[n - k];
                key |= u128::from(older) << (self.codec.bits as usize * (k - 1));
                *self.raw[k - 1].entry(key).or_insert(0) += 1;
            }
            if n > 1 {
                history.rotate_left(1);
                history[n - 2] = id;
            }
            self.unigram[id as usize] += 1;
            self.tokens += 1;
        }
        Ok(())
    }

    /// Tokens counted so far.
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// The smoothed model.
    ///
    /// # Errors
    ///
    /// [`NgramError::NoTrainingData`] if no token was counted.
    pub fn finish(self) -> Result<NgramModel, NgramError> {
        if self.tokens == 0 {
            return Err(NgramError::NoTrainingData);
        }
        let n = self.config.order;
        let codec = self.codec;
        let bos = self.vocab.bos();
        let mut raw = self.raw;
        let counts: Vec<KeyMap<u64>> = match self.config.smoothing {
            Smoothing::AddK(_) => {
                // Only the highest order is used.
                let top = raw.pop().expect("order ≥ 1");
                let mut counts = vec![KeyMap::default(); n - 1];
                counts.push(top);
                counts
            }
            Smoothing::KneserNey(_) => {
                let mut adjusted: Vec<KeyMap<u64>> = Vec::with_capacity(n);
                for k in 1..n {
                    // c_k(g) = N₁₊(•g): distinct (k+1)-gram types whose suffix is g; k-grams
                    // starting with <s> keep their raw counts.
                    let mut continuation = KeyMap::default();
                    for &key in raw[k].keys() {
                        let suffix = codec.drop_first(key, k + 1);
                        if codec.first(suffix, k) != bos {
                            *continuation.entry(suffix).or_insert(0) += 1;
                        }
                    }
                    for (&key, &count) in &raw[k - 1] {
                        if codec.first(key, k) == bos {
                            continuation.insert(key, count);
                        }
                    }
                    adjusted.push(continuation);
                }
                adjusted.push(raw.pop().expect("order ≥ 1"));
                adjusted
            }
        };
        let contexts: Vec<KeyMap<ContextStats>> = counts
            .iter()
            .enumerate()
            .map(|(i, grams)| {
                let mut stats: KeyMap<ContextStats> = KeyMap::default();
                let order = i + 1;
                for (&key, &count) in grams {
                    let context = if order == 1 { 0 } else { codec.drop_last(key) };
                    let s = stats.entry(context).or_default();
                    s.total += count;
                    match count {
                        1 => s.n1 += 1,
                        2 => s.n2 += 1,
                        _ => s.n3plus += 1,
                    }
                }
                stats
            })
            .collect();
        let discounts = match self.config.smoothing {
            Smoothing::AddK(_) => vec![[0.0; 3]; n],
            Smoothing::KneserNey(Discounts::Fixed(d)) => vec![d; n],
            Smoothing::KneserNey(Discounts::Estimated) => counts
                .iter()
                .map(|grams| estimate_discounts(count_of_counts(grams)))
                .collect(),
        };
        Ok(NgramModel {
            config: self.config,
            vocab: self.vocab,
            codec,
            counts,
            contexts,
            discounts,
            unigram: self.unigram,
            tokens: self.tokens,
        })
    }
}

/// `[n₁, n₂, n₃, n₄]`: how many n-grams have count 1, 2, 3, 4.
fn count_of_counts(grams: &KeyMap<u64>) -> [u64; 4] {
    let mut n = [0u64; 4];
    for &c in grams.values() {
        if (1..=4).contains(&c) {
            n[c as usize - 1] += 1;
        }
    }
    n
}

/// Chen & Goodman's (1998, eq. 26) discounts from the count-of-counts `[n₁, n₂, n₃, n₄]`, with
/// the fallbacks described in the module docs.
pub fn estimate_discounts(n: [u64; 4]) -> [f64; 3] {
    let [n1, n2, n3, n4] = n.map(|v| v as f64);
    if n1 == 0.0 && n2 == 0.0 {
        return [0.5; 3];
    }
    let y = n1 / (n1 + 2.0 * n2);
    if n1 > 0.0 && n2 > 0.0 && n3 > 0.0 && n4 > 0.0 {
        let d = [
            1.0 - 2.0 * y * n2 / n1,
            2.0 - 3.0 * y * n3 / n2,
            3.0 - 4.0 * y * n4 / n3,
        ];
        // D = 0 would leave a context whose continuations all have that count with γ = 0, and
        // every unseen id after it with probability 0.
        if d.iter()
            .enumerate()
            .all(|(r, &v)| v.is_finite() && v > 0.0 && v <= (r + 1) as f64)
        {
            return d;
        }
    }
    if y > 0.0 { [y; 3] } else { [0.5; 3] }
}

/// A smoothed n-gram language model (see the module docs for the formulas).
#[derive(Clone, Debug)]
pub struct NgramModel {
    config: NgramConfig,
    vocab: Vocabulary,
    codec: KeyCodec,
    /// Index `k − 1`: the counts order k uses (Kneser–Ney: continuation counts below n; add-k:
    /// only the highest order is filled).
    counts: Vec<KeyMap<u64>>,
    /// Index `k − 1`: per context of `k − 1` ids (key 0 for order 1), its totals.
    contexts: Vec<KeyMap<ContextStats>>,
    /// Index `k − 1`: `[D₁, D₂, D₃₊]` of order k (zeros for add-k).
    discounts: Vec<[f64; 3]>,
    /// (V_size) raw training counts of each id.
    unigram: Vec<u64>,
    tokens: u64,
}

impl NgramModel {
    /// Counts `sequences` and builds the model in one call (see [`NgramCounter`]).
    ///
    /// # Errors
    ///
    /// As [`NgramCounter::new`], [`NgramCounter::add_sequence`] and [`NgramCounter::finish`].
    pub fn fit<S, I>(
        config: NgramConfig,
        vocab: Vocabulary,
        sequences: S,
    ) -> Result<NgramModel, NgramError>
    where
        S: IntoIterator<Item = I>,
        I: IntoIterator<Item = u32>,
    {
        let mut counter = NgramCounter::new(config, vocab)?;
        for sequence in sequences {
            counter.add_sequence(sequence)?;
        }
        counter.finish()
    }

    /// n.
    pub fn order(&self) -> usize {
        self.config.order
    }

    /// The smoothing.
    pub fn smoothing(&self) -> Smoothing {
        self.config.smoothing
    }

    /// The vocabulary.
    pub fn vocab(&self) -> Vocabulary {
        self.vocab
    }

    /// Tokens the model was trained on.
    pub fn training_tokens(&self) -> u64 {
        self.tokens
    }

    /// How often `id` occurred in training (0 for an id never seen, or out of range).
    pub fn training_count(&self, id: u32) -> u64 {
        self.unigram.get(id as usize).copied().unwrap_or(0)
    }

    /// `[D₁, D₂, D₃₊]` used at order `k` (1-based), or `None` for add-k or `k` out of range.
    pub fn discounts(&self, k: usize) -> Option<[f64; 3]> {
        match self.config.smoothing {
            Smoothing::KneserNey(_) => self.discounts.get(k.checked_sub(1)?).copied(),
            Smoothing::AddK(_) => None,
        }
    }

    /// The count order `k` uses for `gram` (k = `gram.len()` ids, oldest first, `u32::MAX` not
    /// allowed; use [`NgramModel::begin_symbol`] for `<s>`): the raw count at the highest order,
    /// the continuation count below it (Kneser–Ney). `None` if `k` is 0 or above `n`.
    pub fn smoothing_count(&self, gram: &[u32]) -> Option<u64> {
        let k = gram.len();
        if k == 0 || k > self.config.order {
            return None;
        }
        let key = self.codec.pack(gram);
        Some(self.counts[k - 1].get(&key).copied().unwrap_or(0))
    }

    /// The id standing for `<s>` in contexts passed to [`NgramModel::smoothing_count`].
    pub fn begin_symbol(&self) -> u32 {
        self.vocab.bos()
    }

    /// `p(id | context)`: `context` holds the preceding ids, oldest first (any length; only the
    /// last `n − 1` matter, missing ones are `<s>`).
    ///
    /// # Errors
    ///
    /// [`NgramError::TokenOutOfVocabulary`] if `id` or a context id is not predictable.
    pub fn probability(&self, context: &[u32], id: u32) -> Result<f64, NgramError> {
        self.vocab.check("predicted token", id)?;
        let keys = self.context_keys(context)?;
        Ok(self.probability_with(&keys, id))
    }

    /// Writes `p(· | context)` over ids `0..size` into `out` (the reserved id gets 0).
    ///
    /// # Errors
    ///
    /// [`NgramError::TokenOutOfVocabulary`] if a context id is not predictable.
    pub fn distribution(&self, context: &[u32], out: &mut Vec<f64>) -> Result<(), NgramError> {
        let keys = self.context_keys(context)?;
        out.clear();
        out.extend((0..self.vocab.size() as u32).map(|id| {
            if self.vocab.is_predictable(id) {
                self.probability_with(&keys, id)
            } else {
                0.0
            }
        }));
        Ok(())
    }

    /// Draws `length` ids one after another, each from `p(· | context so far)`, starting from
    /// `context` (empty: the start of a sequence).
    ///
    /// # Errors
    ///
    /// [`NgramError::TokenOutOfVocabulary`] if a context id is not predictable.
    pub fn sample<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        context: &[u32],
        length: usize,
    ) -> Result<Vec<u32>, NgramError> {
        let keep = self.config.order - 1;
        let mut history: Vec<u32> = context[context.len().saturating_sub(keep)..].to_vec();
        let mut probs = Vec::with_capacity(self.vocab.size());
        let mut out = Vec::with_capacity(length);
        for _ in 0..length {
            self.distribution(&history, &mut probs)?;
            let id = draw(rng, &probs);
            out.push(id);
            history.push(id);
            if history.len() > keep {
                history.remove(0);
            }
        }
        Ok(out)
    }

    /// The keys of the contexts of orders 1..=n: index `k − 1` holds the last `k − 1` ids of the
    /// `<s>`-padded context (0 for order 1).
    fn context_keys(&self, context: &[u32]) -> Result<Vec<u128>, NgramError> {
        let n = self.config.order;
        let bos = self.vocab.bos();
        let mut keys = Vec::with_capacity(n);
        keys.push(0u128);
        let mut key = 0u128;
        for back in 1..n {
            // The id `back` positions before the predicted one.
            let id = if back <= context.len() {
                let id = context[context.len() - back];
                self.vocab.check("context", id)?;
                id
            } else {
                bos
            };
            key |= u128::from(id) << (self.codec.bits as usize * (back - 1));
            keys.push(key);
        }
        Ok(keys)
    }

    fn probability_with(&self, context_keys: &[u128], id: u32) -> f64 {
        let v = self.vocab.predictable() as f64;
        let n = self.config.order;
        match self.config.smoothing {
            Smoothing::AddK(k) => {
                let context = context_keys[n - 1];
                let stats = self.contexts[n - 1]
                    .get(&context)
                    .copied()
                    .unwrap_or_default();
                let c = self.counts[n - 1]
                    .get(&self.codec.push(context, id))
                    .copied()
                    .unwrap_or(0);
                (c as f64 + k) / (stats.total as f64 + k * v)
            }
            Smoothing::KneserNey(_) => {
                let mut p = 1.0 / v;
                for k in 1..=n {
                    let context = context_keys[k - 1];
                    let Some(stats) = self.contexts[k - 1].get(&context) else {
                        continue; // unseen context: p_k = p_{k−1}
                    };
                    let c = self.counts[k - 1]
                        .get(&self.codec.push(context, id))
                        .copied()
                        .unwrap_or(0);
                    let [d1, d2, d3] = self.discounts[k - 1];
                    let d = match c {
                        0 => 0.0,
                        1 => d1,
                        2 => d2,
                        _ => d3,
                    };
                    let gamma =
                        d1 * stats.n1 as f64 + d2 * stats.n2 as f64 + d3 * stats.n3plus as f64;
                    p = ((c as f64 - d).max(0.0) + gamma * p) / stats.total as f64;
                }
                p
            }
        }
    }
}

/// An index drawn from the (unnormalised, non-negative) weights `probs`.
fn draw<R: Rng + ?Sized>(rng: &mut R, probs: &[f64]) -> u32 {
    let total: f64 = probs.iter().sum();
    let mut target = rng.random::<f64>() * total;
    let mut last = 0;
    for (i, &p) in probs.iter().enumerate() {
        if p > 0.0 {
            last = i;
            if target < p {
                return i as u32;
            }
            target -= p;
        }
    }
    last as u32
}
