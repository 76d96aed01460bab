//! The optional ML prompt-injection classifier (feature `onnx`): a sequence-classification model
//! exported to ONNX plus its Hugging Face `tokenizer.json`, run with ONNX Runtime.
//!
//! ONNX Runtime is not linked: its shared library is opened at run time from `ORT_DYLIB_PATH`
//! (or [`OnnxOptions::runtime`]), so a build never downloads anything and a binary built with
//! the feature still runs, without the classifier, where no runtime is installed.
//!
//! ```no_run
//! use std::{path::Path, sync::Arc};
//! use demarc_guard::{Guard, Policy, onnx::{OnnxClassifier, OnnxOptions}};
//!
//! let classifier = OnnxClassifier::load(
//!     Path::new("model.onnx"),
//!     Path::new("tokenizer.json"),
//!     OnnxOptions::default(),
//! )?;
//! let guard = Guard::new(&Policy::default())?.with_classifier(Arc::new(classifier));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::session::builder::GraphOptimizationLevel;
use ort::session::{Session, SessionInputValue};
use ort::tensor::TensorElementType;
use ort::value::{Tensor, ValueType};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::engine::Classifier;

/// Bytes of text per token that the windows are assumed to need at most: tokens of real
/// tokenizers average 3 to 5 bytes, so the windows stay full unless text is pathological.
const BYTES_PER_TOKEN: usize = 32;

/// The environment variable naming the ONNX Runtime shared library.
pub const ORT_DYLIB_PATH: &str = "ORT_DYLIB_PATH";

/// How to run the model. `OnnxOptions::default()` suits an exported Hugging Face
/// sequence classifier whose label 1 means injection.
#[derive(Debug, Clone)]
pub struct OnnxOptions {
    /// Tokens per window, special tokens included (the model's own limit: 512 for BERT and
    /// DeBERTa models).
    pub max_length: usize,
    /// Longer texts are scored in up to this many overlapping windows of `max_length` tokens;
    /// the score is the highest window's. Text past the last window is not seen by the model,
    /// and only the first `max_windows * max_length * 32` bytes are tokenized at all (so a
    /// huge input costs no more than the windows need).
    pub max_windows: usize,
    /// The output label (index into the logits) that means "prompt injection".
    pub injection_label: usize,
    /// ONNX Runtime intra-op threads per run.
    pub threads: usize,
    /// The ONNX Runtime shared library; when `None`, the one `ORT_DYLIB_PATH` names. The
    /// first classifier loaded in a process fixes the library for the process.
    pub runtime: Option<PathBuf>,
    /// The name in findings (`classifier:NAME`); when `None`, the model file's stem.
    pub name: Option<String>,
}

impl Default for OnnxOptions {
    fn default() -> Self {
        OnnxOptions {
            max_length: 512,
            max_windows: 4,
            injection_label: 1,
            threads: 1,
            runtime: None,
            name: None,
        }
    }
}

/// Why a classifier could not be loaded. Every message names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("classifier file `{}` does not exist", path.display())]
    Missing { path: PathBuf },
    #[error("cannot read tokenizer `{}`: {message}", path.display())]
    Tokenizer { path: PathBuf, message: String },
    #[error("cannot load model `{}`: {message}", path.display())]
    Model { path: PathBuf, message: String },
    #[error("model `{}` does not fit: {message}", path.display())]
    Inputs { path: PathBuf, message: String },
    #[error(
        "no ONNX Runtime library: set {ORT_DYLIB_PATH} to the path of libonnxruntime.so (for \
         example from `pip install onnxruntime`: site-packages/onnxruntime/capi/libonnxruntime.so.*)"
    )]
    NoRuntime,
    #[error(
        "cannot load the ONNX Runtime library `{library}`: {message}; set {ORT_DYLIB_PATH} to the \
         path of libonnxruntime.so (for example from `pip install onnxruntime`: \
         site-packages/onnxruntime/capi/libonnxruntime.so.*)"
    )]
    Runtime { library: String, message: String },
    #[error("invalid classifier option: {0}")]
    Options(String),
}

/// Why the model could not score one text.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error("cannot tokenize: {0}")]
    Tokenize(String),
    #[error("the session lock is poisoned")]
    Poisoned,
    #[error("cannot build an input tensor: {0}")]
    Tensor(#[source] ort::Error),
    #[error("run failed: {0}")]
    Run(#[source] ort::Error),
    #[error("no output `{0}`")]
    NoOutput(String),
    #[error("output `{output}` is not f32 logits: {source}")]
    NotLogits { output: String, source: ort::Error },
    #[error("the model returned no logits")]
    NoLogits,
    #[error("injection_label {label} is out of range: the model has {labels} labels")]
    Label { label: usize, labels: usize },
}

/// A prompt-injection classifier: tokenizer, ONNX session, and how to read its output.
pub struct OnnxClassifier {
    name: String,
    model_path: PathBuf,
    tokenizer: Tokenizer,
    /// `Session::run` takes `&mut self`; scans from several threads take turns.
    session: Mutex<Session>,
    inputs: Vec<(ModelInput, TensorElementType)>,
    output: String,
    injection_label: usize,
    max_windows: usize,
    /// Bytes tokenized at most (see [`OnnxOptions::max_windows`]).
    max_bytes: usize,
}

impl std::fmt::Debug for OnnxClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxClassifier")
            .field("name", &self.name)
            .field("model", &self.model_path)
            .field("output", &self.output)
            .field("injection_label", &self.injection_label)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModelInput {
    Ids,
    Mask,
    TypeIds,
}

impl OnnxClassifier {
    /// Load `model` (ONNX) and `tokenizer` (a Hugging Face `tokenizer.json`), check that the
    /// model takes `input_ids` (and optionally `attention_mask`, `token_type_ids`) and returns
    /// logits with an `injection_label` entry, by running it once.
    pub fn load(model: &Path, tokenizer: &Path, opts: OnnxOptions) -> Result<Self, OnnxError> {
        if opts.max_length < 8 {
            return Err(OnnxError::Options(format!(
                "max_length {} is too small (at least 8 tokens)",
                opts.max_length
            )));
        }
        if opts.max_windows == 0 {
            return Err(OnnxError::Options("max_windows must be at least 1".into()));
        }
        for path in [model, tokenizer] {
            if !path.is_file() {
                return Err(OnnxError::Missing { path: path.into() });
            }
        }
        let tokenizer = load_tokenizer(tokenizer, opts.max_length)?;
        let session = open_session(model, &opts)?;
        let inputs = model_inputs(model, &session)?;
        let output = session
            .outputs
            .iter()
            .find(|o| o.name == "logits")
            .or(session.outputs.first())
            .map(|o| o.name.clone())
            .ok_or_else(|| OnnxError::Inputs {
                path: model.into(),
                message: "the model has no output".into(),
            })?;
        let name = opts.name.clone().unwrap_or_else(|| {
            model
                .file_stem()
                .map_or_else(|| "onnx".into(), |s| s.to_string_lossy().into_owned())
        });
        let classifier = OnnxClassifier {
            name,
            model_path: model.into(),
            tokenizer,
            session: Mutex::new(session),
            inputs,
            output,
            injection_label: opts.injection_label,
            max_windows: opts.max_windows,
            max_bytes: opts
                .max_windows
                .saturating_mul(opts.max_length)
                .saturating_mul(BYTES_PER_TOKEN),
        };
        // One run now, so that a model with the wrong inputs or outputs fails here, with its
        // name, and not as a silent zero score later.
        classifier
            .try_score("probe")
            .map_err(|e| OnnxError::Inputs {
                path: model.into(),
                message: e.to_string(),
            })?;
        Ok(classifier)
    }

    /// The probability that `text` is an injection, or why the model could not say.
    pub fn try_score(&self, text: &str) -> Result<f32, ScoreError> {
        let encoding = self
            .tokenizer
            .encode_fast(prefix(text, self.max_bytes), true)
            .map_err(|e| ScoreError::Tokenize(e.to_string()))?;
        let mut session = self.session.lock().map_err(|_| ScoreError::Poisoned)?;
        let mut best = 0.0f32;
        let windows = std::iter::once(&encoding).chain(encoding.get_overflowing().iter());
        for window in windows.take(self.max_windows) {
            let p = self.run_window(&mut session, window)?;
            best = best.max(p);
        }
        Ok(best)
    }

    fn run_window(
        &self,
        session: &mut Session,
        window: &tokenizers::Encoding,
    ) -> Result<f32, ScoreError> {
        let len = window.get_ids().len().max(1);
        let mut feed: Vec<(Cow<'static, str>, SessionInputValue<'static>)> =
            Vec::with_capacity(self.inputs.len());
        for (input, ty) in &self.inputs {
            let values: Vec<i64> = match input {
                ModelInput::Ids => window.get_ids().iter().map(|&v| i64::from(v)).collect(),
                ModelInput::Mask => window
                    .get_attention_mask()
                    .iter()
                    .map(|&v| i64::from(v))
                    .collect(),
                ModelInput::TypeIds => window
                    .get_type_ids()
                    .iter()
                    .map(|&v| i64::from(v))
                    .collect(),
            };
            // An empty text still needs one position (a pad token, masked out).
            let values = if values.is_empty() { vec![0] } else { values };
            let name = Cow::Borrowed(input.name());
            let value: SessionInputValue<'static> = if *ty == TensorElementType::Int32 {
                let narrow: Vec<i32> = values
                    .iter()
                    .map(|&v| i32::try_from(v).unwrap_or(i32::MAX))
                    .collect();
                Tensor::from_array(([1usize, len], narrow))
                    .map_err(ScoreError::Tensor)?
                    .into()
            } else {
                Tensor::from_array(([1usize, len], values))
                    .map_err(ScoreError::Tensor)?
                    .into()
            };
            feed.push((name, value));
        }
        let outputs = session.run(feed).map_err(ScoreError::Run)?;
        let logits = outputs
            .get(&self.output)
            .ok_or_else(|| ScoreError::NoOutput(self.output.clone()))?;
        let (_, logits) =
            logits
                .try_extract_tensor::<f32>()
                .map_err(|source| ScoreError::NotLogits {
                    output: self.output.clone(),
                    source,
                })?;
        probability(logits, self.injection_label)
    }
}

impl Classifier for OnnxClassifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&self, text: &str) -> f32 {
        match self.try_score(text) {
            Ok(p) => p,
            Err(e) => {
                // The load-time probe passed, so this is rare; the phrase detectors still run.
                tracing::warn!(model = %self.model_path.display(), "classifier failed: {e}");
                0.0
            }
        }
    }
}

impl ModelInput {
    fn name(self) -> &'static str {
        match self {
            ModelInput::Ids => "input_ids",
            ModelInput::Mask => "attention_mask",
            ModelInput::TypeIds => "token_type_ids",
        }
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn prefix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The injection probability from one row of logits: softmax over two or more labels, a
/// sigmoid when the model has a single logit.
fn probability(logits: &[f32], label: usize) -> Result<f32, ScoreError> {
    match logits.len() {
        0 => Err(ScoreError::NoLogits),
        1 => Ok(1.0 / (1.0 + (-logits[0]).exp())),
        n if label >= n => Err(ScoreError::Label { label, labels: n }),
        _ => {
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = logits.iter().map(|&l| (l - max).exp()).sum();
            Ok((logits[label] - max).exp() / sum)
        }
    }
}

fn load_tokenizer(path: &Path, max_length: usize) -> Result<Tokenizer, OnnxError> {
    let err = |message: String| OnnxError::Tokenizer {
        path: path.into(),
        message,
    };
    let mut tokenizer = Tokenizer::from_file(path).map_err(|e| err(e.to_string()))?;
    // Our windows, not the file's settings: no padding (one sequence per run), truncation to
    // the model's length with an overlap so that a phrase cut by a window edge is seen whole.
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length,
            stride: max_length / 8,
            strategy: TruncationStrategy::LongestFirst,
            direction: TruncationDirection::Right,
        }))
        .map_err(|e| err(e.to_string()))?;
    Ok(tokenizer)
}

/// The runtime library to open: the option, else `ORT_DYLIB_PATH`. Checked here, because
/// `ort` panics on a library it cannot open.
fn runtime_library(opts: &OnnxOptions) -> Result<PathBuf, OnnxError> {
    let path = opts
        .runtime
        .clone()
        .or_else(|| {
            std::env::var_os(ORT_DYLIB_PATH)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .ok_or(OnnxError::NoRuntime)?;
    let err = |message: &str| OnnxError::Runtime {
        library: path.display().to_string(),
        message: message.into(),
    };
    let mut magic = [0u8; 4];
    let read = std::fs::File::open(&path).and_then(|mut f| {
        use std::io::Read;
        f.read_exact(&mut magic)
    });
    match read {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(err("no such file")),
        Err(e) => Err(err(&e.to_string())),
        Ok(()) if is_shared_library(magic) => Ok(path),
        Ok(()) => Err(err("not a shared library")),
    }
}

/// ELF, Mach-O (thin or fat) or PE.
fn is_shared_library(magic: [u8; 4]) -> bool {
    magic == *b"\x7fELF"
        || matches!(
            u32::from_be_bytes(magic),
            0xfeed_face | 0xfeed_facf | 0xcefa_edfe | 0xcffa_edfe | 0xcafe_babe
        )
        || magic.starts_with(b"MZ")
}

fn open_session(model: &Path, opts: &OnnxOptions) -> Result<Session, OnnxError> {
    let library = runtime_library(opts)?.display().to_string();
    let model_err = |message: String| OnnxError::Model {
        path: model.into(),
        message,
    };
    // `ort` opens the library on first use and panics if it cannot (missing, not ONNX Runtime,
    // too old a version); turn that into an error that says what to do.
    let opened = catch_unwind(AssertUnwindSafe(|| {
        ort::init_from(&library)
            .with_name("demarc")
            .commit()
            .map_err(|e| e.to_string())?;
        ort::session::Session::builder()
            .map(|_| ())
            .map_err(|e| e.to_string())
    }));
    let failure = match opened {
        Ok(Ok(())) => None,
        Ok(Err(message)) => Some(message),
        Err(payload) => Some(panic_message(payload.as_ref())),
    };
    if let Some(message) = failure {
        return Err(OnnxError::Runtime { library, message });
    }
    let threads = opts.threads.max(1);
    Session::builder()
        .and_then(|b| b.with_optimization_level(GraphOptimizationLevel::Level3))
        .and_then(|b| b.with_intra_threads(threads))
        .and_then(|b| b.with_inter_threads(1))
        .and_then(|b| b.commit_from_file(model))
        .map_err(|e| model_err(e.to_string()))
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_string()))
        .unwrap_or_else(|| "the library could not be opened".into())
}

fn model_inputs(
    model: &Path,
    session: &Session,
) -> Result<Vec<(ModelInput, TensorElementType)>, OnnxError> {
    let err = |message: String| OnnxError::Inputs {
        path: model.into(),
        message,
    };
    let mut inputs = Vec::new();
    for input in &session.inputs {
        let kind = match input.name.as_str() {
            "input_ids" => ModelInput::Ids,
            "attention_mask" => ModelInput::Mask,
            "token_type_ids" => ModelInput::TypeIds,
            other => {
                return Err(err(format!(
                    "input `{other}` is not one of `input_ids`, `attention_mask`, `token_type_ids`"
                )));
            }
        };
        let ty = match &input.input_type {
            ValueType::Tensor { ty, .. }
                if matches!(ty, TensorElementType::Int64 | TensorElementType::Int32) =>
            {
                *ty
            }
            other => {
                return Err(err(format!(
                    "input `{}` must be an int64 or int32 tensor, not {other}",
                    input.name
                )));
            }
        };
        inputs.push((kind, ty));
    }
    if !inputs.iter().any(|(k, _)| *k == ModelInput::Ids) {
        return Err(err("the model has no `input_ids` input".into()));
    }
    Ok(inputs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn softmax_picks_the_injection_label() {
        let p = probability(&[0.0, 2.0], 1).unwrap();
        assert!((p - 0.880_797).abs() < 1e-4, "{p}");
        let p = probability(&[0.0, 2.0], 0).unwrap();
        assert!((p - 0.119_203).abs() < 1e-4, "{p}");
    }

    #[test]
    fn a_single_logit_is_a_sigmoid() {
        assert!((probability(&[0.0], 1).unwrap() - 0.5).abs() < 1e-6);
    }

    #[test]
    fn a_label_past_the_logits_is_an_error() {
        let err = probability(&[0.1, 0.2], 2).unwrap_err();
        assert!(err.to_string().contains("injection_label 2"), "{err}");
    }

    #[test]
    fn the_tokenized_prefix_ends_on_a_character_boundary() {
        assert_eq!(prefix("abc", 10), "abc");
        assert_eq!(prefix("abcdef", 3), "abc");
        assert_eq!(prefix("aé", 2), "a"); // é is 2 bytes: cutting inside it backs off
        assert_eq!(prefix("", 0), "");
    }

    #[test]
    fn missing_files_are_named() {
        let err = OnnxClassifier::load(
            Path::new("/nonexistent/model.onnx"),
            Path::new("/nonexistent/tokenizer.json"),
            OnnxOptions::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/model.onnx"), "{err}");
    }
}
