//! Train and evaluate the guard's learned tier on the corpus built by `eval/datasets.py`.
//!
//! `learned train CORPUS OUT`  trains on every source but the held-out one and writes the model.
//! `learned score < LINES`     the builtin model's probability and the default guard's score
//!                             for each line.
//! `learned eval CORPUS`       leave-one-source-out: for each source, a model trained on the
//!                             others, the source scored by heuristics, learned tier and both;
//!                             then the held-out set (never trained or tuned on) by family,
//!                             category and language.
//! Run through `eval/train.sh` and `eval/generalise.sh`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use demarc_guard::learned::{Model, TrainOptions, train};
use demarc_guard::{Direction, Guard, Policy};

/// Sources named so are blind held-out sets: scored, never trained or tuned on.
const HELDOUT: &str = "demarc-heldout";
/// The guard's own test examples: scored, never trained on (not blind: the phrase lists were
/// written for them).
const TESTS: &str = "demarc-tests";

fn held_out(r: &Record) -> bool {
    r.source.starts_with(HELDOUT) || r.source == TESTS
}

/// The hand-written training sets with hard negatives (`eval/sets/train-*`).
fn authored(source: &str) -> bool {
    source.starts_with("demarc-train")
}

struct Record {
    text: String,
    attack: bool,
    source: String,
    lang: String,
    family: String,
    category: String,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["train", corpus, out] => load(corpus).and_then(|r| cmd_train(&r, out)),
        ["eval", corpus] => load(corpus).and_then(|r| cmd_eval(&r)),
        ["score"] => cmd_score(),
        _ => Err(
            "usage: learned train CORPUS OUT | learned eval CORPUS | learned score < LINES"
                .to_string(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("learned: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The builtin model's probability and the default guard's score for each line of stdin.
fn cmd_score() -> Result<(), String> {
    let model = Model::builtin();
    let guard = Guard::new(&Policy::default()).map_err(|e| e.to_string())?;
    for line in std::io::stdin().lines() {
        let line = line.map_err(|e| format!("stdin: {e}"))?;
        let r = guard.scan(&line, Direction::Input);
        let short: String = line.chars().take(80).collect();
        println!(
            "{:.3}\t{:.3}\t{}\t{short}",
            model.score(&line),
            r.score,
            r.blocked()
        );
    }
    Ok(())
}

fn load(path: &str) -> Result<Vec<Record>, String> {
    let data = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut out = Vec::new();
    for (i, line) in data.lines().enumerate() {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("{path}:{}: {e}", i + 1))?;
        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        let label = field("label");
        if label != "malicious" && label != "benign" {
            return Err(format!("{path}:{}: field `label`: `{label}`", i + 1));
        }
        out.push(Record {
            text: field("text"),
            attack: label == "malicious",
            source: field("source"),
            lang: field("lang"),
            family: field("family"),
            category: field("category"),
        });
    }
    Ok(out)
}

fn fit(records: &[&Record]) -> Model {
    let samples: Vec<(&str, bool)> = records
        .iter()
        .map(|r| (r.text.as_str(), r.attack))
        .collect();
    train(&samples, &options())
}

/// The builtin model's options; `LEARNED_EPOCHS`, `LEARNED_RATE`, `LEARNED_L2`, `LEARNED_SEED`
/// override them for experiments (the builtin model is trained with none set; other seeds show
/// how much a figure moves with the shuffle alone).
fn options() -> TrainOptions {
    let mut o = TrainOptions::default();
    let var = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f64>().ok());
    if let Some(v) = var("LEARNED_EPOCHS") {
        o.epochs = v as usize;
    }
    if let Some(v) = var("LEARNED_RATE") {
        o.learning_rate = v as f32;
    }
    if let Some(v) = var("LEARNED_L2") {
        o.l2 = v as f32;
    }
    if let Some(v) = var("LEARNED_SEED") {
        o.seed = v as u64;
    }
    o
}

fn cmd_train(records: &[Record], out: &str) -> Result<(), String> {
    let training: Vec<&Record> = records.iter().filter(|r| !held_out(r)).collect();
    let model = fit(&training);
    std::fs::write(out, model.to_bytes()).map_err(|e| format!("{out}: {e}"))?;
    eprintln!("learned: trained on {} texts, wrote {out}", training.len());
    Ok(())
}

/// Detections and totals for one group, per scorer (heuristics, learned, combined).
#[derive(Default)]
struct Tally {
    attacks: usize,
    benign: usize,
    caught: [usize; 3],
    flagged: [usize; 3],
}

impl Tally {
    fn add(&mut self, attack: bool, hits: [bool; 3]) {
        if attack {
            self.attacks += 1;
        } else {
            self.benign += 1;
        }
        for (i, hit) in hits.into_iter().enumerate() {
            if hit && attack {
                self.caught[i] += 1;
            } else if hit {
                self.flagged[i] += 1;
            }
        }
    }

    fn row(&self, name: &str) -> String {
        let rate = |n: usize, d: usize| {
            if d == 0 {
                "     -".to_string()
            } else {
                format!("{:6.3}", n as f64 / d as f64)
            }
        };
        let mut s = format!("| {name:24} | {:5} | {:5} |", self.attacks, self.benign);
        for i in 0..3 {
            s += &format!(
                " {} | {} |",
                rate(self.caught[i], self.attacks),
                rate(self.flagged[i], self.benign)
            );
        }
        s
    }
}

const HEAD: &str = "| group                    | attacks | benign | heur TPR | heur FPR | learned TPR | learned FPR | combined TPR | combined FPR |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|";

fn cmd_eval(records: &[Record]) -> Result<(), String> {
    let policy = Policy::default();
    let mut heur_policy = Policy::default();
    heur_policy.injection.learned = false;
    let heuristics = Guard::new(&heur_policy).map_err(|e| e.to_string())?;
    let threshold = policy.injection.threshold;
    let sources: Vec<&str> = {
        let mut s: Vec<&str> = records.iter().map(|r| r.source.as_str()).collect();
        s.sort_unstable();
        s.dedup();
        s.into_iter()
            .filter(|s| !s.starts_with(HELDOUT) && *s != TESTS)
            .collect()
    };
    let raw = |guard: &Guard, model: &Model, r: &Record| -> [f32; 3] {
        [
            heuristics.scan(&r.text, Direction::Input).score,
            model.score(&r.text),
            guard.scan(&r.text, Direction::Input).score,
        ]
    };
    let score = |guard: &Guard, model: &Model, r: &Record| -> [bool; 3] {
        raw(guard, model, r).map(|s| s >= threshold)
    };
    let dump = std::env::var_os("DUMP_SCORES").is_some();
    println!("## Leave-one-source-out (model trained without the source)\n\n{HEAD}");
    let mut total = Tally::default();
    let mut hard = Tally::default();
    // Every pooled score, for operating points other than the default threshold.
    let mut pooled: Vec<(bool, bool, [f32; 3])> = Vec::new();
    for source in &sources {
        let rest: Vec<&Record> = records
            .iter()
            .filter(|r| r.source != *source && !held_out(r))
            .collect();
        let model = fit(&rest);
        let guard = Guard::new(&policy)
            .map_err(|e| e.to_string())?
            .with_learned_model(model.clone());
        let mut t = Tally::default();
        for r in records.iter().filter(|r| r.source == *source) {
            if dump {
                let h = heuristics.scan(&r.text, Direction::Input).score;
                eprintln!(
                    "SCORE\t{}\t{}\t{h}\t{}\t{}",
                    r.source,
                    r.attack,
                    model.score(&r.text),
                    model.read(&r.text).tokens
                );
            }
            let scores = raw(&guard, &model, r);
            pooled.push((authored(source), r.attack, scores));
            let hits = scores.map(|s| s >= threshold);
            t.add(r.attack, hits);
            total.add(r.attack, hits);
            if authored(source) {
                hard.add(r.attack, hits);
            }
        }
        println!("{}", t.row(source));
    }
    println!("{}", hard.row("authored sets (pooled)"));
    println!("{}", total.row("all sources (pooled)"));
    println!(
        "\n## Leave-one-source-out, pooled: ranking and operating points\n\n\
         | pooled | scorer | AUC | TPR at FPR 0.02 | 0.05 | 0.10 |\n|---|---|---:|---:|---:|---:|"
    );
    for (name, only_authored) in [("authored sets", true), ("all sources", false)] {
        let group: Vec<&(bool, bool, [f32; 3])> =
            pooled.iter().filter(|p| p.0 || !only_authored).collect();
        for (i, scorer) in [(1, "learned"), (2, "combined")] {
            let scored: Vec<(bool, f32)> = group.iter().map(|p| (p.1, p.2[i])).collect();
            let tpr = [0.02, 0.05, 0.10].map(|fpr| tpr_at(&scored, fpr));
            println!(
                "| {name} | {scorer} | {:.3} | {:.3} | {:.3} | {:.3} |",
                auc(&scored),
                tpr[0],
                tpr[1],
                tpr[2]
            );
        }
    }

    let training: Vec<&Record> = records.iter().filter(|r| !held_out(r)).collect();
    let model = fit(&training);
    let guard = Guard::new(&policy)
        .map_err(|e| e.to_string())?
        .with_learned_model(model.clone());
    let mut held_sources: Vec<&str> = records
        .iter()
        .filter(|r| held_out(r))
        .map(|r| r.source.as_str())
        .collect();
    held_sources.sort_unstable();
    held_sources.dedup();
    if held_sources.is_empty() {
        println!("\n(no held-out set in the corpus)");
    }
    for source in held_sources {
        let held: Vec<&Record> = records.iter().filter(|r| r.source == source).collect();
        // Scores of the test examples for choosing the combination; never of the blind sets.
        if dump && source == TESTS {
            for r in &held {
                let h = heuristics.scan(&r.text, Direction::Input).score;
                let p = model.score(&r.text);
                let words = model.read(&r.text).tokens;
                eprintln!("SCORE\t{}\t{}\t{h}\t{p}\t{words}", r.source, r.attack);
            }
        }
        report_held_out(source, &held, |r| score(&guard, &model, r));
    }
    Ok(())
}

/// Area under the ROC curve: the chance that an attack scores above a benign text (ties
/// count half).
fn auc(scored: &[(bool, f32)]) -> f64 {
    let mut benign: Vec<f32> = scored.iter().filter(|s| !s.0).map(|s| s.1).collect();
    benign.sort_by(f32::total_cmp);
    let (mut sum, mut attacks) = (0f64, 0usize);
    for &(_, x) in scored.iter().filter(|s| s.0) {
        let below = benign.partition_point(|&b| b < x);
        let equal = benign[below..].partition_point(|&b| b <= x);
        sum += below as f64 + equal as f64 / 2.0;
        attacks += 1;
    }
    sum / (attacks.max(1) * benign.len().max(1)) as f64
}

/// The share of attacks caught at the lowest threshold that flags at most `fpr` of the
/// benign texts.
fn tpr_at(scored: &[(bool, f32)], fpr: f64) -> f64 {
    let mut benign: Vec<f32> = scored.iter().filter(|s| !s.0).map(|s| s.1).collect();
    benign.sort_by(|a, b| b.total_cmp(a));
    let allowed = (benign.len() as f64 * fpr).floor() as usize;
    // Flag scores above the (allowed + 1)-th highest benign score.
    let Some(&bar) = benign.get(allowed) else {
        return 1.0;
    };
    let attacks: Vec<f32> = scored.iter().filter(|s| s.0).map(|s| s.1).collect();
    attacks.iter().filter(|&&x| x > bar).count() as f64 / attacks.len().max(1) as f64
}

/// Prints one held-out source by family (attacks) or category (benign) and by language.
fn report_held_out(source: &str, held: &[&Record], score: impl Fn(&Record) -> [bool; 3]) {
    let mut by_family: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_lang: BTreeMap<String, Tally> = BTreeMap::new();
    let mut all = Tally::default();
    for r in held {
        let hits = score(r);
        let group = if r.attack { &r.family } else { &r.category };
        by_family
            .entry(group.clone())
            .or_default()
            .add(r.attack, hits);
        by_lang
            .entry(r.lang.clone())
            .or_default()
            .add(r.attack, hits);
        all.add(r.attack, hits);
    }
    println!("\n## `{source}` by family (attacks) and category (benign)\n\n{HEAD}");
    for (k, t) in &by_family {
        println!("{}", t.row(k));
    }
    println!("{}", all.row("all held-out"));
    println!("\n## `{source}` by language\n\n{HEAD}");
    for (k, t) in &by_lang {
        println!("{}", t.row(k));
    }
    if std::env::var_os("SHOW_MISSES").is_some() {
        for r in held {
            let hits = score(r);
            if hits[2] != r.attack {
                let short: String = r.text.chars().take(140).collect();
                eprintln!(
                    "{} {} {}: {short}",
                    if r.attack { "MISS" } else { "FP  " },
                    r.lang,
                    r.family
                );
            }
        }
    }
}
