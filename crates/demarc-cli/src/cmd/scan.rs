//! `demarc scan`: run the guard detectors over a file, stdin, or a JSONL batch.

use std::io::{BufRead, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use demarc_guard::{Action, Direction, Finding, Guard, Policy, Report};

use crate::Outcome;
use crate::render::table::{Cell, Style, Table};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The text to scan: a file, or `-` for stdin (the default).
    #[arg(value_name = "FILE|-", conflicts_with = "jsonl")]
    input: Option<PathBuf>,
    /// Batch mode: read lines `{"id": ..., "text": ...}` and write one JSON result per line.
    #[arg(long, value_name = "FILE")]
    jsonl: Option<PathBuf>,
    /// Guard policy: a builtin (`default`, `strict`, `monitor`, `off`) or a policy file (YAML).
    #[arg(long, value_name = "P", default_value = "default")]
    policy: String,
    /// Scan as text going to the model (`input`) or coming back from it (`output`).
    #[arg(long, value_enum, default_value_t = DirectionArg::Input)]
    direction: DirectionArg,
    /// Output format for a single text.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Print the text with the policy's redactions applied instead of the findings.
    #[arg(long, conflicts_with = "jsonl")]
    redact: bool,
    /// An ONNX prompt-injection classifier whose score joins the injection detector (needs a
    /// build with the `onnx` feature and ONNX Runtime at ORT_DYLIB_PATH). The input is then
    /// read whole rather than streamed.
    #[arg(long, value_name = "MODEL.onnx")]
    classifier: Option<PathBuf>,
    /// The classifier's Hugging Face tokenizer [default: tokenizer.json beside the model].
    #[arg(long, value_name = "tokenizer.json", requires = "classifier")]
    tokenizer: Option<PathBuf>,
    /// Which of the classifier's output labels means injection.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "classifier")]
    injection_label: usize,
    /// Tokens per classifier window (the model's maximum sequence length).
    #[arg(
        long,
        value_name = "TOKENS",
        default_value_t = 512,
        requires = "classifier"
    )]
    max_length: usize,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Format {
    Table,
    Json,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum DirectionArg {
    Input,
    Output,
}

/// Bytes read per chunk when streaming a file through the scanner.
const CHUNK: usize = 1 << 16;
/// Longest line accepted in batch mode.
const MAX_LINE: usize = 16 << 20;

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let policy = Policy::load(&args.policy)
        .with_context(|| format!("cannot load guard policy `{}`", args.policy))?;
    let guard = Guard::new(&policy)
        .with_context(|| format!("cannot compile guard policy `{}`", args.policy))?;
    let guard = match &args.classifier {
        Some(model) => with_classifier(guard, model, &args)?,
        None => guard,
    };
    let direction = match args.direction {
        DirectionArg::Input => Direction::Input,
        DirectionArg::Output => Direction::Output,
    };
    if let Some(path) = &args.jsonl {
        return batch(&guard, direction, path);
    }
    let (report, redacted) = if args.classifier.is_some() {
        // A classifier sees whole texts only (see `Guard::scan`).
        scan_whole(&guard, direction, args.input.as_ref())?
    } else {
        scan_stream(&guard, direction, args.input.as_ref(), args.redact)?
    };
    let mut stdout = std::io::stdout().lock();
    if args.redact {
        stdout.write_all(redacted.as_bytes())?;
    } else {
        match args.format {
            Format::Json => writeln!(stdout, "{}", result_json(None, &report))?,
            Format::Table => write!(stdout, "{}", table(&report))?,
        }
    }
    Ok(if report.verdict == Action::Block {
        Outcome::CheckFailed
    } else {
        Outcome::Success
    })
}

#[cfg(feature = "onnx")]
fn with_classifier(guard: Guard, model: &std::path::Path, args: &Args) -> anyhow::Result<Guard> {
    use demarc_guard::onnx::{OnnxClassifier, OnnxOptions};
    let tokenizer = args.tokenizer.clone().unwrap_or_else(|| {
        model
            .parent()
            .unwrap_or(std::path::Path::new(""))
            .join("tokenizer.json")
    });
    let opts = OnnxOptions {
        injection_label: args.injection_label,
        max_length: args.max_length,
        ..OnnxOptions::default()
    };
    let classifier = OnnxClassifier::load(model, &tokenizer, opts)?;
    tracing::info!(model = %model.display(), tokenizer = %tokenizer.display(), "classifier loaded");
    Ok(guard.with_classifier(std::sync::Arc::new(classifier)))
}

#[cfg(not(feature = "onnx"))]
fn with_classifier(_guard: Guard, _model: &std::path::Path, _args: &Args) -> anyhow::Result<Guard> {
    bail!(
        "`--classifier` needs the ONNX classifier, and this demarc was built without the `onnx` \
         feature; rebuild with `cargo build --release -p demarc-cli --features onnx`"
    )
}

/// Read a file or stdin whole (invalid UTF-8 becomes U+FFFD) and scan it in one piece.
fn scan_whole(
    guard: &Guard,
    direction: Direction,
    input: Option<&PathBuf>,
) -> anyhow::Result<(Report, String)> {
    let mut bytes = Vec::new();
    match input {
        Some(p) if p.as_os_str() != "-" => {
            bytes = std::fs::read(p).with_context(|| format!("cannot read `{}`", p.display()))?;
        }
        _ => {
            std::io::stdin()
                .lock()
                .read_to_end(&mut bytes)
                .context("cannot read `stdin`")?;
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let applied = guard.apply(&text, direction);
    Ok((applied.report, applied.text))
}

/// Scan a file or stdin chunk by chunk (bounded memory); invalid UTF-8 becomes U+FFFD, so
/// offsets are into the text as decoded.
fn scan_stream(
    guard: &Guard,
    direction: Direction,
    input: Option<&PathBuf>,
    keep_text: bool,
) -> anyhow::Result<(Report, String)> {
    let mut reader: Box<dyn Read> = match input {
        Some(p) if p.as_os_str() != "-" => Box::new(
            std::fs::File::open(p).with_context(|| format!("cannot open `{}`", p.display()))?,
        ),
        _ => Box::new(std::io::stdin().lock()),
    };
    let name = input.map_or_else(|| "stdin".to_string(), |p| p.display().to_string());
    let mut scanner = guard.stream(direction);
    let mut text_out = String::new();
    let mut buf = vec![0u8; CHUNK];
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let n = reader
            .read(&mut buf)
            .with_context(|| format!("cannot read `{name}`"))?;
        if n == 0 {
            break;
        }
        carry.extend_from_slice(&buf[..n]);
        let chunk = take_utf8(&mut carry, false);
        let out = scanner.push(&chunk);
        if keep_text {
            text_out.push_str(&out.text);
        }
    }
    let rest = take_utf8(&mut carry, true);
    let out = scanner.push(&rest);
    if keep_text {
        text_out.push_str(&out.text);
    }
    let (last, report, _) = scanner.finish();
    if keep_text {
        text_out.push_str(&last.text);
    }
    Ok((report, text_out))
}

/// Decode the complete UTF-8 prefix of `bytes` (lossily), keeping an incomplete trailing
/// sequence for the next read unless this is the end.
fn take_utf8(bytes: &mut Vec<u8>, end: bool) -> String {
    let mut keep = 0;
    if !end {
        // An incomplete sequence is at most 3 bytes at the end.
        for back in 1..=3.min(bytes.len()) {
            let b = bytes[bytes.len() - back];
            if b & 0xC0 == 0xC0 {
                let need = if b >= 0xF0 {
                    4
                } else if b >= 0xE0 {
                    3
                } else {
                    2
                };
                if need > back {
                    keep = back;
                }
                break;
            }
            if b & 0xC0 != 0x80 {
                break;
            }
        }
    }
    let tail = bytes.split_off(bytes.len() - keep);
    let text = String::from_utf8_lossy(bytes).into_owned();
    *bytes = tail;
    text
}

fn batch(guard: &Guard, direction: Direction, path: &PathBuf) -> anyhow::Result<Outcome> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?;
    let mut reader = std::io::BufReader::new(file);
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let mut line = Vec::new();
    let mut number = 0;
    let mut errors = 0;
    let mut blocked = false;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        if n == 0 {
            break;
        }
        number += 1;
        if line.len() > MAX_LINE {
            bail!(
                "{}:{number}: line longer than {MAX_LINE} bytes",
                path.display()
            );
        }
        let text = String::from_utf8_lossy(&line);
        if text.trim().is_empty() {
            continue;
        }
        match parse_record(&text) {
            Ok((id, body)) => {
                let report = guard.scan(&body, direction);
                blocked |= report.verdict == Action::Block;
                writeln!(stdout, "{}", result_json(Some(id), &report))?;
            }
            Err(message) => {
                errors += 1;
                eprintln!("error: {}:{number}: {message}", path.display());
            }
        }
    }
    stdout.flush()?;
    if errors > 0 {
        bail!(
            "{} of `{}` could not be read (see above)",
            super::common::count(errors, "line"),
            path.display()
        );
    }
    Ok(if blocked {
        Outcome::CheckFailed
    } else {
        Outcome::Success
    })
}

fn parse_record(line: &str) -> Result<(serde_json::Value, String), String> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}"))?;
    let obj = value
        .as_object()
        .ok_or("expected a JSON object `{\"id\": ..., \"text\": ...}`")?;
    let id = obj.get("id").cloned().ok_or("missing field `id`")?;
    let text = match obj.get("text") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(_) => return Err("field `text` must be a string".into()),
        None => return Err("missing field `text`".into()),
    };
    Ok((id, text))
}

/// One result in the documented field order: `id` (batch mode), `verdict`, `score`, `findings`.
#[derive(serde::Serialize)]
struct ResultLine<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<serde_json::Value>,
    verdict: &'static str,
    score: f64,
    findings: Vec<FindingLine<'a>>,
}

#[derive(serde::Serialize)]
struct FindingLine<'a> {
    detector: &'static str,
    kind: &'a str,
    start: usize,
    end: usize,
    severity: &'static str,
}

fn result_json(id: Option<serde_json::Value>, report: &Report) -> String {
    let line = ResultLine {
        id,
        verdict: report.verdict.as_str(),
        score: (f64::from(report.score) * 1000.0).round() / 1000.0,
        findings: report
            .findings
            .iter()
            .map(|f| FindingLine {
                detector: f.detector.as_str(),
                kind: &f.kind,
                start: f.start,
                end: f.end,
                severity: f.severity.as_str(),
            })
            .collect(),
    };
    serde_json::to_string(&line).unwrap_or_default()
}

fn table(report: &Report) -> String {
    let color = crate::ui::stdout_color();
    let mut t = Table::new(&[
        "start", "end", "detector", "kind", "severity", "action", "detail",
    ]);
    for f in &report.findings {
        t.row(row(f));
    }
    let verdict_style = match report.verdict {
        Action::Block => Style::Red,
        Action::Redact | Action::Flag => Style::Yellow,
        Action::Allow => Style::Green,
    };
    let mut out = if t.is_empty() {
        String::new()
    } else {
        t.render(color)
    };
    let verdict = report.verdict.as_str();
    let verdict = if color {
        format!("\x1b[{}m{verdict}\x1b[0m", style_code(verdict_style))
    } else {
        verdict.to_string()
    };
    out.push_str(&format!(
        "verdict: {verdict}  injection score: {:.2}  findings: {}\n",
        report.score,
        report.findings.len()
    ));
    out
}

fn style_code(style: Style) -> &'static str {
    match style {
        Style::Red => "31",
        Style::Yellow => "33",
        Style::Green => "32",
        _ => "0",
    }
}

fn row(f: &Finding) -> Vec<Cell> {
    vec![
        f.start.to_string().into(),
        f.end.to_string().into(),
        f.detector.as_str().into(),
        f.kind.clone().into(),
        f.severity.as_str().into(),
        f.action.as_str().into(),
        f.detail
            .clone()
            .unwrap_or_default()
            .chars()
            .take(80)
            .collect::<String>()
            .into(),
    ]
}
