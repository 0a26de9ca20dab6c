//! Typed, validated configurations built from the parsed flags. Building one does no I/O, so a
//! bad flag is reported before anything is read or written.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use recur::engine::data::corpus::{NamedCorpus, named_corpus};
use recur::engine::data::{
    CharTokenizerConfig, DatasetConfig, LineMode, TokenizerConfig, WordTokenizerConfig,
};
use recur::kernels::{CellKind, RnnActivation};

use super::CliError;
use super::args::{
    DatasetArg, EvalArgs, GenerateArgs, InitArg, ModelArg, OptimizerArg, TaskArg, TrainArgs,
};

/// Character or word model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    Char,
    Word,
}

impl Task {
    pub fn name(self) -> &'static str {
        match self {
            Task::Char => "char",
            Task::Word => "word",
        }
    }
}

/// Where the text comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorpusChoice {
    /// A file given by path.
    Path(PathBuf),
    /// A named corpus, searched for in the data directories.
    Named(&'static NamedCorpus),
}

impl CorpusChoice {
    /// A `--corpus` value: a known name is a named corpus, anything else a path.
    pub fn parse(value: &str) -> Result<CorpusChoice, CliError> {
        if value.is_empty() {
            return Err(CliError::bad_input(
                "--corpus: expected a file path or a corpus name, found an empty value",
            ));
        }
        Ok(match named_corpus(value) {
            Some(named) => CorpusChoice::Named(named),
            None => CorpusChoice::Path(PathBuf::from(value)),
        })
    }

    /// A short name for run directories: the corpus name or the file stem.
    pub fn stem(&self) -> String {
        match self {
            CorpusChoice::Named(n) => n.name.to_string(),
            CorpusChoice::Path(p) => p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "corpus".into()),
        }
    }
}

/// The optimiser family (the trainer supplies each one's documented defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerKind {
    Sgd,
    RmsProp,
    Adam,
}

impl OptimizerKind {
    /// The usual spelling: `SGD`, `RMSprop`, `Adam`.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "SGD",
            OptimizerKind::RmsProp => "RMSprop",
            OptimizerKind::Adam => "Adam",
        }
    }
}

/// The model to train.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelConfig {
    /// Recurrent cell.
    pub cell: CellKind,
    /// H: hidden units per layer.
    pub hidden_size: usize,
    /// Stacked layers.
    pub num_layers: usize,
    /// Embedding width, or `None` for one-hot input.
    pub embedding_size: Option<usize>,
    /// Dropout probability between stacked layers (char-rnn's `dropout`).
    pub dropout: f32,
    /// Dropout probability on the embedding's output.
    pub embed_dropout: f32,
    /// Dropout probability on the last layer's output, before the decoder.
    pub output_dropout: f32,
    /// Whose default initialisation.
    pub init: recur::engine::model::init::InitScheme,
}

/// char-rnn's learning-rate decay: × `gamma` at the end of every epoch from `after` on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrDecay {
    pub gamma: f32,
    /// 1-based epoch.
    pub after: usize,
}

/// Gradient clipping; both may apply (by value first, then by norm).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GradClip {
    /// Clamp each element to `[−v, v]`.
    pub value: Option<f32>,
    /// Rescale to this global L2 norm when above it.
    pub norm: Option<f32>,
}

/// Everything `recur train` needs, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    pub task: Task,
    pub corpus: CorpusChoice,
    pub tokenizer: TokenizerConfig,
    pub dataset: DatasetConfig,
    pub val_frac: f64,
    pub model: ModelConfig,
    pub optimizer: OptimizerKind,
    pub learning_rate: f32,
    pub lr_decay: Option<LrDecay>,
    pub clip: GradClip,
    pub batch_size: usize,
    pub max_epochs: usize,
    pub max_steps: Option<u64>,
    pub checkpoint_every: u64,
    pub seed: u64,
    /// `None`: all cores.
    pub threads: Option<NonZeroUsize>,
    pub checkpoint_dir: PathBuf,
    pub resume: bool,
    /// Stop after printing the plan.
    pub dry_run: bool,
}

impl TrainConfig {
    /// Applies the task's defaults and the rules that involve several flags.
    pub fn from_args(a: &TrainArgs) -> Result<TrainConfig, CliError> {
        let task = match a.task {
            TaskArg::Char => Task::Char,
            TaskArg::Word => Task::Word,
        };
        let corpus = match &a.corpus {
            Some(v) => CorpusChoice::parse(v)?,
            None => CorpusChoice::Named(
                named_corpus(match task {
                    Task::Char => "alice",
                    Task::Word => "sherlock",
                })
                .expect("the seed corpora are named"),
            ),
        };

        let dataset_arg = a.dataset.unwrap_or(match task {
            Task::Char => DatasetArg::Windows,
            Task::Word => DatasetArg::LinePrefixes,
        });
        if dataset_arg == DatasetArg::LinePrefixes && task == Task::Char {
            return Err(CliError::bad_input(
                "--dataset line-prefixes: needs --task word (lines of words), found --task char",
            ));
        }
        if a.max_vocab.is_some() && task == Task::Char {
            return Err(CliError::bad_input(
                "--max-vocab: applies to --task word, found --task char (the character \
                 vocabulary is every symbol of the corpus)",
            ));
        }
        if a.keep_lines && task == Task::Word {
            return Err(CliError::bad_input(
                "--keep-lines: applies to --task char, found --task word (words are read line \
                 by line anyway)",
            ));
        }
        let ascii_only = a.ascii_only.unwrap_or(task == Task::Char);
        let tokenizer = match task {
            Task::Char => TokenizerConfig::Char(CharTokenizerConfig {
                lowercase: a.lowercase,
                ascii_only,
                lines: if a.keep_lines {
                    LineMode::Keep
                } else {
                    LineMode::StripAndJoin
                },
            }),
            Task::Word => {
                let max_vocab = match a.max_vocab {
                    None => None,
                    Some(m) if m < 3 => {
                        return Err(CliError::bad_input(format!(
                            "--max-vocab: counts padding (0) and <unk> (1), so at least 3 are \
                             needed to keep a word, found {m}"
                        )));
                    }
                    Some(m) => Some(u32::try_from(m).map_err(|_| {
                        CliError::bad_input(format!("--max-vocab: at most {}, found {m}", u32::MAX))
                    })?),
                };
                TokenizerConfig::Word(WordTokenizerConfig {
                    lowercase: a.lowercase,
                    ascii_only,
                    max_vocab,
                    // With a cap, rare words become <unk> instead of vanishing (Keras would
                    // drop them, shortening lines).
                    oov_token: max_vocab.map(|_| "<unk>".to_string()),
                    ..WordTokenizerConfig::keras()
                })
            }
        };

        let batch_size = a.batch_size.unwrap_or(match task {
            Task::Char => 128,
            Task::Word => 32,
        });
        let dataset = match dataset_arg {
            DatasetArg::Windows => DatasetConfig::Windows {
                steps: a.seq_length.unwrap_or(10),
                stride: 1,
            },
            DatasetArg::LinePrefixes => DatasetConfig::LinePrefixes {
                max_steps: a.seq_length,
            },
            DatasetArg::Stream => DatasetConfig::Streams {
                batch: batch_size,
                steps: a.seq_length.unwrap_or(50),
            },
        };

        let cell = match a.model.unwrap_or(match task {
            Task::Char => ModelArg::Rnn,
            Task::Word => ModelArg::Lstm,
        }) {
            ModelArg::Rnn => CellKind::Rnn(RnnActivation::Tanh),
            ModelArg::Lstm => CellKind::Lstm,
            ModelArg::Gru => CellKind::Gru,
        };
        let model = ModelConfig {
            cell,
            hidden_size: a.rnn_size.unwrap_or(match task {
                Task::Char => 128,
                Task::Word => 150,
            }),
            num_layers: a.num_layers,
            init: match a.init {
                InitArg::Keras => recur::engine::model::init::InitScheme::Keras,
                InitArg::Pytorch => recur::engine::model::init::InitScheme::PyTorch,
            },
            embedding_size: a.embedding_size.or(match task {
                Task::Char => None,
                Task::Word => Some(100),
            }),
            dropout: a.dropout,
            embed_dropout: a.embed_dropout,
            output_dropout: a.output_dropout,
        };
        if model.embed_dropout > 0.0 && model.embedding_size.is_none() {
            return Err(CliError::bad_input(format!(
                "--embed-dropout {}: needs an embedding (--embedding-size N), found one-hot input",
                model.embed_dropout
            )));
        }
        if a.lr_decay.is_none() && a.lr_decay_after != 1 {
            return Err(CliError::bad_input(format!(
                "--lr-decay-after {}: needs --lr-decay G, found none",
                a.lr_decay_after
            )));
        }
        let optimizer = match a.optimizer.unwrap_or(match task {
            Task::Char => OptimizerArg::Rmsprop,
            Task::Word => OptimizerArg::Adam,
        }) {
            OptimizerArg::Sgd => OptimizerKind::Sgd,
            OptimizerArg::Rmsprop => OptimizerKind::RmsProp,
            OptimizerArg::Adam => OptimizerKind::Adam,
        };
        let checkpoint_dir = a.checkpoint_dir.clone().unwrap_or_else(|| {
            PathBuf::from("runs").join(format!("{}-{}", task.name(), corpus.stem()))
        });
        if checkpoint_dir.as_os_str().is_empty() {
            return Err(CliError::bad_input(
                "--checkpoint-dir: expected a directory path, found an empty value",
            ));
        }
        Ok(TrainConfig {
            task,
            corpus,
            tokenizer,
            dataset,
            val_frac: a.val_frac,
            model,
            optimizer,
            learning_rate: a.learning_rate,
            lr_decay: a.lr_decay.map(|gamma| LrDecay {
                gamma,
                after: a.lr_decay_after,
            }),
            clip: GradClip {
                value: a.grad_clip,
                norm: a.clip_norm,
            },
            batch_size,
            max_epochs: a.max_epochs,
            max_steps: a.max_steps,
            checkpoint_every: a.checkpoint_every,
            seed: a.seed,
            threads: a.threads.and_then(NonZeroUsize::new),
            checkpoint_dir,
            resume: a.resume,
            dry_run: a.dry_run,
        })
    }
}

/// How the next token is chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampling {
    /// Arg-max.
    Greedy,
    /// Draw from the softmax at `temperature`, optionally restricted to the top k tokens and/or
    /// the smallest set with probability mass ≥ p.
    Sample {
        temperature: f32,
        top_k: Option<NonZeroUsize>,
        top_p: Option<f32>,
    },
}

/// Everything `recur generate` needs, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateConfig {
    pub checkpoint: PathBuf,
    pub prime: Option<String>,
    pub length: usize,
    pub sampling: Sampling,
    pub seed: u64,
}

impl GenerateConfig {
    pub fn from_args(a: &GenerateArgs) -> Result<GenerateConfig, CliError> {
        let sampling = if a.greedy {
            Sampling::Greedy
        } else {
            Sampling::Sample {
                temperature: a.temperature,
                top_k: a.top_k.and_then(NonZeroUsize::new),
                top_p: a.top_p,
            }
        };
        if a.prime.as_deref() == Some("") {
            return Err(CliError::bad_input(
                "--prime: expected some text, found an empty string (leave the flag out to \
                 start from nothing)",
            ));
        }
        Ok(GenerateConfig {
            checkpoint: a.checkpoint.clone(),
            prime: a.prime.clone(),
            length: a.length,
            sampling,
            seed: a.seed,
        })
    }
}

/// Everything `recur eval` needs, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalConfig {
    pub checkpoint: PathBuf,
    pub corpus: CorpusChoice,
    pub batch_size: usize,
}

impl EvalConfig {
    pub fn from_args(a: &EvalArgs) -> Result<EvalConfig, CliError> {
        Ok(EvalConfig {
            checkpoint: a.checkpoint.clone(),
            corpus: CorpusChoice::parse(&a.corpus)?,
            batch_size: a.batch_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::{Cli, Command};
    use super::*;
    use clap::Parser;

    fn train(args: &[&str]) -> Result<TrainConfig, CliError> {
        let mut argv = vec!["recur", "train"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).map_err(|e| CliError::bad_input(e.to_string()))?;
        match cli.command {
            Command::Train(a) => TrainConfig::from_args(&a),
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn defaults_reproduce_experiment_1() {
        let c = train(&[]).unwrap();
        assert_eq!(c.task, Task::Char);
        assert_eq!(
            c.corpus,
            CorpusChoice::Named(named_corpus("alice").unwrap())
        );
        assert_eq!(
            c.tokenizer,
            TokenizerConfig::Char(CharTokenizerConfig::SEED)
        );
        assert_eq!(
            c.dataset,
            DatasetConfig::Windows {
                steps: 10,
                stride: 1
            }
        );
        assert_eq!(c.model.cell, CellKind::Rnn(RnnActivation::Tanh));
        assert_eq!(c.model.hidden_size, 128);
        assert_eq!(c.model.num_layers, 1);
        assert_eq!(c.model.embedding_size, None);
        assert_eq!(c.optimizer, OptimizerKind::RmsProp);
        assert_eq!(c.learning_rate, 0.001);
        assert_eq!(c.batch_size, 128);
        assert_eq!(c.max_epochs, 25);
        assert_eq!(c.val_frac, 0.0);
        assert_eq!(c.checkpoint_dir, PathBuf::from("runs/char-alice"));
    }

    #[test]
    fn task_word_reproduces_experiment_2() {
        let c = train(&["--task", "word"]).unwrap();
        assert_eq!(
            c.corpus,
            CorpusChoice::Named(named_corpus("sherlock").unwrap())
        );
        assert_eq!(
            c.tokenizer,
            TokenizerConfig::Word(WordTokenizerConfig::keras())
        );
        assert_eq!(c.dataset, DatasetConfig::LinePrefixes { max_steps: None });
        assert_eq!(c.model.cell, CellKind::Lstm);
        assert_eq!(c.model.hidden_size, 150);
        assert_eq!(c.model.embedding_size, Some(100));
        assert_eq!(c.optimizer, OptimizerKind::Adam);
        assert_eq!(c.batch_size, 32);
        assert_eq!(c.checkpoint_dir, PathBuf::from("runs/word-sherlock"));
    }

    #[test]
    fn char_rnn_style_flags() {
        let c = train(&[
            "--corpus",
            "data/input.txt",
            "--model",
            "lstm",
            "--rnn-size",
            "512",
            "--num-layers",
            "2",
            "--dropout",
            "0.5",
            "--dataset",
            "stream",
            "--batch-size",
            "50",
            "--learning-rate",
            "2e-3",
            "--grad-clip",
            "5",
            "--val-frac",
            "0.05",
            "--ascii-only=false",
            "--keep-lines",
            "--threads",
            "2",
        ])
        .unwrap();
        assert_eq!(c.corpus, CorpusChoice::Path("data/input.txt".into()));
        assert_eq!(
            c.dataset,
            DatasetConfig::Streams {
                batch: 50,
                steps: 50
            }
        );
        assert_eq!(
            c.tokenizer,
            TokenizerConfig::Char(CharTokenizerConfig {
                lowercase: true,
                ascii_only: false,
                lines: LineMode::Keep
            })
        );
        assert_eq!(
            c.clip,
            GradClip {
                value: Some(5.0),
                norm: None
            }
        );
        assert_eq!(c.threads, NonZeroUsize::new(2));
        assert_eq!(c.checkpoint_dir, PathBuf::from("runs/char-input"));
    }

    #[test]
    fn max_vocab_brings_an_oov_token() {
        let c = train(&["--task", "word", "--max-vocab", "5000"]).unwrap();
        let TokenizerConfig::Word(w) = c.tokenizer else {
            panic!()
        };
        assert_eq!(w.max_vocab, Some(5000));
        assert_eq!(w.oov_token.as_deref(), Some("<unk>"));
    }

    #[test]
    fn dropout_and_decay_flags_reach_the_config() {
        let c = train(&[
            "--task",
            "word",
            "--embed-dropout",
            "0.4",
            "--output-dropout",
            "0.5",
            "--lr-decay",
            "0.8",
            "--lr-decay-after",
            "6",
        ])
        .unwrap();
        assert_eq!((c.model.embed_dropout, c.model.output_dropout), (0.4, 0.5));
        assert_eq!(
            c.lr_decay,
            Some(LrDecay {
                gamma: 0.8,
                after: 6
            })
        );
        assert_eq!(train(&[]).unwrap().lr_decay, None);
    }

    #[test]
    fn cross_flag_rules_name_the_flag() {
        for (args, flag) in [
            (&["--dataset", "line-prefixes"][..], "--dataset"),
            (&["--max-vocab", "100"][..], "--max-vocab"),
            (&["--task", "word", "--keep-lines"][..], "--keep-lines"),
            (&["--task", "word", "--max-vocab", "2"][..], "--max-vocab"),
            (&["--dropout", "1"][..], "--dropout"),
            (&["--embed-dropout", "0.5"][..], "--embed-dropout"),
            (
                &["--task", "word", "--output-dropout", "1"][..],
                "--output-dropout",
            ),
            (&["--lr-decay", "0"][..], "--lr-decay"),
            (&["--lr-decay", "1.5"][..], "--lr-decay"),
            (&["--lr-decay-after", "3"][..], "--lr-decay-after"),
            (&["--corpus", ""][..], "--corpus"),
            (&["--rnn-size", "0"][..], "--rnn-size"),
            (&["--learning-rate", "-1"][..], "--learning-rate"),
            (&["--learning-rate", "nan"][..], "--learning-rate"),
            (&["--val-frac", "1"][..], "--val-frac"),
        ] {
            let msg = train(args).unwrap_err().to_string();
            assert!(msg.contains(flag), "{args:?}: {msg}");
        }
    }
}
