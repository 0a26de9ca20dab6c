//! The data pipeline's heap use does not grow with the corpus: a 12 MiB corpus is tokenised,
//! cached, mapped and batched with under 1 MiB of heap (the ids alone would be 12–48 MiB
//! on the heap). A counting global allocator measures the peak; this file holds one test so no
//! other test allocates concurrently.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use recur::engine::data::{
    CharTokenizerConfig, Corpus, Dataset, DatasetConfig, EpochOrder, ManyToOne, Minibatch,
    PrepareOptions, TokenizerConfig, WordTokenizerConfig, prepare,
};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Peak heap growth above the current level while `f` runs.
fn peak_growth<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed) - base)
}

const CORPUS_BYTES: usize = 12 << 20;
const HEAP_LIMIT: usize = 1 << 20;

#[test]
fn heap_stays_flat_while_preparing_and_batching_a_large_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.txt");
    let words = [
        "the",
        "queen",
        "said",
        "alice",
        "rabbit",
        "hatter",
        "very",
        "curious",
        "tea",
        "time",
        "Off",
        "with",
        "her",
        "head!",
        "down",
        "the",
        "hole,",
        "said",
        "\u{201c}oh",
        "dear\u{201d}",
    ];
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut state = 12345u64;
        let mut written = 0;
        while written < CORPUS_BYTES {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let n = 2 + (state >> 60) as usize; // 2..=17 words per line
            for i in 0..n {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                let word = words[(state >> 59) as usize % words.len()];
                if i > 0 {
                    w.write_all(b" ").unwrap();
                    written += 1;
                }
                w.write_all(word.as_bytes()).unwrap();
                written += word.len();
            }
            w.write_all(b"\n").unwrap();
            written += 1;
        }
    }
    let corpus = Corpus::open(&path).unwrap();
    assert!(corpus.len() as usize >= CORPUS_BYTES);

    for (name, tokenizer, dataset) in [
        (
            "char windows",
            TokenizerConfig::Char(CharTokenizerConfig::SEED),
            DatasetConfig::Windows {
                steps: 10,
                stride: 1,
            },
        ),
        (
            "char streams",
            TokenizerConfig::Char(CharTokenizerConfig::SEED),
            DatasetConfig::Streams {
                batch: 64,
                steps: 50,
            },
        ),
        (
            "word prefixes",
            TokenizerConfig::Word(WordTokenizerConfig::keras()),
            DatasetConfig::LinePrefixes { max_steps: None },
        ),
    ] {
        let options = PrepareOptions {
            tokenizer,
            dataset,
            val_frac: 0.05,
            cache_path: Some(dir.path().join(format!("{name}.bin"))),
        };
        let t0 = std::time::Instant::now();
        let (data, built_peak) = peak_growth(|| prepare(&corpus, &options).unwrap());
        let build_time = t0.elapsed();
        assert!(data.store.is_mapped());
        assert!(
            built_peak < HEAP_LIMIT,
            "{name}: building the cache peaked at {built_peak} heap bytes"
        );
        let t0 = std::time::Instant::now();
        let (again, mapped_peak) = peak_growth(|| prepare(&corpus, &options).unwrap());
        let map_time = t0.elapsed();
        assert!(
            mapped_peak < HEAP_LIMIT,
            "{name}: mapping the cache peaked at {mapped_peak} heap bytes"
        );
        drop(again);

        // Batches of a shuffled epoch reuse one buffer.
        let mut mb = Minibatch::new();
        let ((), batch_peak) = peak_growth(|| match &data.train {
            Dataset::Windows(d) => {
                let order = EpochOrder::shuffled(d.len(), 128, 1, 0);
                for b in 0..order.num_batches().min(2000) {
                    order.fill(d, b, &mut mb);
                }
            }
            Dataset::LinePrefixes(d) => {
                let order = EpochOrder::shuffled(d.len(), 32, 1, 0);
                for b in 0..order.num_batches().min(2000) {
                    order.fill(d, b, &mut mb);
                }
            }
            Dataset::Streams(d) => {
                for c in 0..d.chunks() {
                    d.fill(c, &mut mb);
                }
            }
        });
        assert!(
            batch_peak < 1 << 20,
            "{name}: batching peaked at {batch_peak} heap bytes"
        );
        println!(
            "{name}: {} tokens; heap peak {built_peak} B building the cache ({build_time:?}), \
             {mapped_peak} B mapping it ({map_time:?}), {batch_peak} B batching",
            data.stats.tokens
        );
    }
}
