//! The compiled guard: one Aho-Corasick automaton over the folded view gates the keyword
//! detectors (secrets, injection phrases, deny terms, allow terms, canaries); PII runs as a
//! byte scanner over the clean view; everything is mapped back to original offsets.

use std::borrow::Cow;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex::Regex;

use crate::cut::CutRules;
use crate::decode;
use crate::finding::{Action, Detector, Direction, Finding, Report, Severity};
use crate::hit::Hit;
use crate::injection::{self, PhraseHit, PhraseTag};
use crate::learned::{Model, Reading};
use crate::normalize::Views;
use crate::pii;
use crate::policy::{Policy, PolicyError};
use crate::protected::{self, Protected};
use crate::redact::{PlaceholderKeys, Redactions};
use crate::secrets::Secrets;
use crate::stream::StreamScanner;

/// Longest deny/allow pattern match considered (bytes), so that matches stay local.
const MAX_PATTERN_MATCH: usize = 256;

/// An optional classifier (e.g. an ONNX model loaded by the caller) whose score joins the
/// injection score as one more signal. Whole-text scans only: a classifier sees the whole text,
/// which a stream scanner never has.
pub trait Classifier: Send + Sync {
    /// A short name for reports.
    fn name(&self) -> &str;
    /// Probability in `0.0..=1.0` that `text` is a prompt injection.
    fn score(&self, text: &str) -> f32;
}

#[derive(Debug, Clone, Copy)]
enum Tag {
    Secret(u16),
    Phrase(PhraseTag),
    Deny(Option<u16>),
    Allow,
    Canary,
    /// A canary's base64 (at one of the three byte positions) or hex encoding.
    CanaryEncoded(&'static str),
}

/// A compiled policy. Cheap to clone (an `Arc` inside), `Send + Sync`.
#[derive(Clone)]
pub struct Guard {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    policy: Policy,
    automaton: Option<AhoCorasick>,
    /// Per automaton pattern: what it means, whether it ends a word (non-stem), needs a word start.
    tags: Vec<Vec<(Tag, bool)>>,
    /// Per pattern: the patterns it contains (itself included) and their offsets in it.
    implied: Arc<Vec<Vec<(u32, u32)>>>,
    pattern_len: Vec<u32>,
    pattern_word_start: Vec<bool>,
    secrets: Arc<Secrets>,
    pii_kinds: pii::Kinds,
    deny_patterns: Vec<Regex>,
    allow_patterns: Vec<Regex>,
    topics: Vec<String>,
    protected: Option<Arc<Protected>>,
    keys: PlaceholderKeys,
    classifier: Option<Arc<dyn Classifier>>,
    /// The learned tier, when the policy turns it on (the builtin model unless replaced).
    learned: Option<Arc<Model>>,
    /// The canaries' skeletons, forwards and reversed (canaries of [`SKELETON_MIN`] letters
    /// and digits or more).
    skeletons: Option<Arc<Skeletons>>,
}

/// Fewest letters and digits a canary needs to be matched through rewording (its skeleton,
/// reversed, encoded): shorter ones match only as written (case and accents aside).
const SKELETON_MIN: usize = 8;

/// How far (bytes of the folded text) a finding of an encoded canary reaches back and forward
/// over the base64 or hex run around it, so that the run is withheld whole. Less than a stream
/// keeps before what it accepts, and than the canary hold past a match.
const ENCODED_REACH: usize = 96;

/// Canary skeletons: each canary's letters and digits, folded as the text is, forwards and
/// reversed; matched in the skeleton of the folded text ([`crate::normalize::skeleton`]), so
/// that case, spacing, separators, Markdown emphasis and reversal do not hide a canary.
struct Skeletons {
    automaton: AhoCorasick,
    patterns: Vec<Vec<u8>>,
    reversed: Vec<bool>,
    longest: usize,
}

impl Skeletons {
    fn new(tokens: &[String]) -> Result<Option<Skeletons>, aho_corasick::BuildError> {
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut reversed = Vec::new();
        for t in tokens {
            let sk: Vec<u8> = crate::normalize::fold_str(t.trim())
                .into_iter()
                .filter(u8::is_ascii_alphanumeric)
                .collect();
            if sk.len() < SKELETON_MIN {
                continue;
            }
            let rev: Vec<u8> = sk.iter().rev().copied().collect();
            for (p, r) in [(sk, false), (rev, true)] {
                if !patterns.contains(&p) {
                    patterns.push(p);
                    reversed.push(r);
                }
            }
        }
        if patterns.is_empty() {
            return Ok(None);
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&patterns)?;
        let longest = patterns.iter().map(Vec::len).max().unwrap_or(0);
        Ok(Some(Skeletons {
            automaton,
            patterns,
            reversed,
            longest,
        }))
    }

    /// Matches in folded text: (start, end, reversed), folded offsets.
    fn find(&self, folded: &[u8], out: &mut Vec<(usize, usize, bool)>) {
        let mut sk = Vec::with_capacity(folded.len());
        let mut pos: Vec<u32> = Vec::with_capacity(folded.len());
        crate::normalize::skeleton(folded, |b, i| {
            sk.push(b);
            pos.push(i as u32);
        });
        for m in self.automaton.find_overlapping_iter(sk.as_slice()) {
            let (Some(&s), Some(&e)) = (pos.get(m.start()), pos.get(m.end() - 1)) else {
                continue;
            };
            let reversed = self.reversed.get(m.pattern().as_usize()) == Some(&true);
            out.push((s as usize, e as usize + 1, reversed));
        }
    }

    /// Where in `folded` (the end of a stream) a skeleton match may have begun that more text
    /// could complete: the earliest trailing stretch whose skeleton begins a pattern.
    fn pending(&self, folded: &[u8]) -> Option<usize> {
        let mut tail: Vec<(u8, usize)> = Vec::new();
        let mut gap = 0;
        for (i, &b) in folded.iter().enumerate().rev() {
            if b.is_ascii_alphanumeric() {
                gap = 0;
                tail.push((b, i));
                if tail.len() + 1 >= self.longest {
                    break;
                }
            } else {
                gap += 1;
                if gap > crate::normalize::SKELETON_GAP {
                    break;
                }
            }
        }
        tail.reverse();
        (1..=tail.len()).rev().find_map(|k| {
            let suffix = &tail[tail.len() - k..];
            self.patterns
                .iter()
                .any(|p| p.len() >= k && p.iter().zip(suffix).all(|(&a, &(b, _))| a == b))
                .then(|| suffix[0].1)
        })
    }
}

/// What one scan pass is: the whole text, a decoded payload (at depth 1 or 2), or a stretch
/// read through its disguise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    Whole,
    Payload(u8),
    Unmasked,
}

/// The result of [`Guard::apply`]: the report, and the text with redactions applied.
#[derive(Debug, Clone)]
pub struct Applied {
    pub report: Report,
    /// The text with the policy's redactions applied (also when the verdict is `block`: the
    /// caller refuses the text then).
    pub text: String,
    pub redactions: Redactions,
}

/// Which detectors run in one pass, with their actions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    actions: [Option<Action>; 7],
    /// Decode payloads for injection (up to `decode.max_bytes`).
    decode: bool,
    /// Decode payloads and escapes for personal data and secrets (runs up to
    /// [`decode::VALUE_RUN_MAX`] when injection does not decode).
    values: bool,
}

impl Plan {
    pub(crate) fn on(&self, d: Detector) -> bool {
        self.actions[d.index()].is_some()
    }

    pub(crate) fn action(&self, d: Detector) -> Option<Action> {
        self.actions[d.index()]
    }

    /// The detectors of this plan whose action changes the text (redact, block).
    pub(crate) fn enforced(&self) -> Plan {
        let mut plan = *self;
        for a in &mut plan.actions {
            if !a.is_some_and(Action::changes_text) {
                *a = None;
            }
        }
        plan.decode = self.decode && plan.on(Detector::Injection);
        plan.values = self.values && (plan.on(Detector::Pii) || plan.on(Detector::Secrets));
        plan
    }
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("policy", &self.inner.policy.name)
            .finish()
    }
}

impl Guard {
    /// Compile a policy: build the automaton, compile patterns, fingerprint protected documents.
    pub fn new(policy: &Policy) -> Result<Guard, PolicyError> {
        policy.validate()?;
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut tags: Vec<Vec<(Tag, bool)>> = Vec::new();
        let mut index = std::collections::HashMap::<Vec<u8>, usize>::new();
        let mut add = |pattern: Vec<u8>, tag: Tag, stem: bool| {
            if pattern.is_empty() {
                return;
            }
            let id = *index.entry(pattern.clone()).or_insert_with(|| {
                patterns.push(pattern);
                tags.push(Vec::new());
                patterns.len() - 1
            });
            tags[id].push((tag, stem));
        };
        let uses = |d: Detector| policy.input.contains_key(&d) || policy.output.contains_key(&d);
        let secrets = Secrets::new(policy.secrets.min_entropy)?;
        if uses(Detector::Secrets) || uses(Detector::Injection) {
            for (i, rule) in secrets.rules.iter().enumerate() {
                for kw in rule.spec.keywords {
                    add(crate::normalize::fold_str(kw), Tag::Secret(i as u16), true);
                }
            }
        }
        if uses(Detector::Injection) {
            for (p, tag) in injection::patterns() {
                add(p, Tag::Phrase(tag), tag.stem);
            }
        }
        let mut topics = Vec::new();
        for term in &policy.deny.terms {
            add(
                crate::normalize::fold_str(term.trim()),
                Tag::Deny(None),
                false,
            );
        }
        for (topic, terms) in &policy.deny.topics {
            topics.push(topic.clone());
            for term in terms {
                add(
                    crate::normalize::fold_str(term.trim()),
                    Tag::Deny(Some(topics.len() as u16 - 1)),
                    false,
                );
            }
        }
        for term in &policy.allow.terms {
            add(crate::normalize::fold_str(term.trim()), Tag::Allow, false);
        }
        for token in &policy.canary.tokens {
            let token = token.trim();
            add(crate::normalize::fold_str(token), Tag::Canary, true);
            if token.bytes().filter(u8::is_ascii_alphanumeric).count() >= SKELETON_MIN {
                for fragment in decode::base64_fragments(token.as_bytes()) {
                    add(
                        crate::normalize::fold_str(&fragment),
                        Tag::CanaryEncoded("base64"),
                        true,
                    );
                }
                let hex: String = token.bytes().map(|b| format!("{b:02x}")).collect();
                add(
                    crate::normalize::fold_str(&hex),
                    Tag::CanaryEncoded("hex"),
                    true,
                );
            }
        }
        let pattern_word_start = patterns
            .iter()
            .map(|p| p.first().is_some_and(|b| b.is_ascii_alphanumeric()))
            .collect();
        let build_error = |e: aho_corasick::BuildError| {
            PolicyError::invalid(
                "deny.terms",
                format!("cannot build the keyword automaton: {e}"),
            )
        };
        let (automaton, implied) = match compile_automaton(&patterns).map_err(build_error)? {
            Some(compiled) => {
                let (automaton, implied) = &*compiled;
                (Some(automaton.clone()), implied.clone())
            }
            None => (None, Arc::new(Vec::new())),
        };
        let pattern_len: Vec<u32> = patterns.iter().map(|p| p.len() as u32).collect();
        let skeletons = Skeletons::new(&policy.canary.tokens)
            .map_err(|e| {
                PolicyError::invalid(
                    "canary.tokens",
                    format!("cannot build the canary automaton: {e}"),
                )
            })?
            .map(Arc::new);
        let compile = |field: &str, list: &[String]| -> Result<Vec<Regex>, PolicyError> {
            list.iter()
                .enumerate()
                .map(|(i, p)| {
                    regex::RegexBuilder::new(p)
                        .size_limit(1 << 20)
                        .build()
                        .map_err(|e| {
                            PolicyError::invalid(
                                format!("{field}[{i}]"),
                                format!("invalid pattern `{p}`: {e}"),
                            )
                        })
                })
                .collect()
        };
        let deny_patterns = compile("deny.patterns", &policy.deny.patterns)?;
        let allow_patterns = compile("allow.patterns", &policy.allow.patterns)?;
        let protected = if policy.protected.documents.is_empty() {
            None
        } else {
            Some(Arc::new(Protected::load(
                &policy.protected.documents,
                policy.base_dir.as_deref(),
                policy.protected.k,
                policy.protected.window,
            )?))
        };
        Ok(Guard {
            inner: Arc::new(Inner {
                policy: policy.clone(),
                automaton,
                tags,
                implied,
                pattern_len,
                pattern_word_start,
                secrets: Arc::new(secrets),
                pii_kinds: pii::Kinds::from_names(&policy.pii.kinds),
                deny_patterns,
                allow_patterns,
                topics,
                protected,
                keys: PlaceholderKeys::new(),
                classifier: None,
                learned: policy.injection.learned.then(Model::builtin),
                skeletons,
            }),
        })
    }

    /// Replace the learned tier's model (evaluation trains its own; see `eval/`). Has no
    /// effect when the policy turns the learned tier off.
    pub fn with_learned_model(self, model: Model) -> Guard {
        let mut inner = (*self.inner).clone();
        if inner.learned.is_some() {
            inner.learned = Some(Arc::new(model));
        }
        Guard {
            inner: Arc::new(inner),
        }
    }

    /// Attach a classifier (see [`Classifier`]); its score is one more injection signal.
    pub fn with_classifier(self, classifier: Arc<dyn Classifier>) -> Guard {
        let mut inner = (*self.inner).clone();
        inner.classifier = Some(classifier);
        Guard {
            inner: Arc::new(inner),
        }
    }

    /// The policy this guard was compiled from.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    pub(crate) fn plan(&self, direction: Direction) -> Plan {
        let mut actions = [None; 7];
        for (d, a) in self.inner.policy.detectors(direction) {
            actions[d.index()] = Some(*a);
        }
        let enabled = self.inner.policy.decode.enabled;
        let on = |d: Detector| actions[d.index()].is_some();
        let decode = enabled && on(Detector::Injection);
        let values = enabled && (on(Detector::Pii) || on(Detector::Secrets));
        Plan {
            actions,
            decode,
            values,
        }
    }

    /// The longest encoded run a scan in `plan` decodes, if it decodes.
    fn decode_limit(&self, plan: &Plan) -> Option<usize> {
        let max = self.inner.policy.decode.max_bytes;
        if plan.decode {
            Some(max)
        } else {
            plan.values.then_some(max.min(decode::VALUE_RUN_MAX))
        }
    }

    /// Scan a whole text.
    pub fn scan(&self, text: &str, direction: Direction) -> Report {
        let plan = self.plan(direction);
        let mut raw = Vec::new();
        let mut learned = None;
        let want_learned = self.inner.learned.is_some() && plan.on(Detector::Injection);
        self.scan_into(
            text,
            &plan,
            Pass::Whole,
            &mut raw,
            want_learned.then_some(&mut learned),
        );
        dedup(&mut raw);
        let mut view = LearnedView::Off;
        if let (Some(reading), Some(action)) = (learned, plan.action(Detector::Injection)) {
            raw.push(learned_finding(reading.p, text.len(), action));
            view = LearnedView::Read(reading);
        }
        if let (Some(c), Some(action)) = (&self.inner.classifier, plan.action(Detector::Injection))
        {
            raw.push(whole_text_signal(
                format!("classifier:{}", c.name()),
                c.score(text),
                text.len(),
                action,
            ));
        }
        self.report(raw, view)
    }

    /// Scan and apply the policy: the report and the text with redactions applied.
    pub fn apply(&self, text: &str, direction: Direction) -> Applied {
        let report = self.scan(text, direction);
        let mut redactions = Redactions::new();
        let out = self.redact_findings(text, 0, &report.findings, &mut redactions);
        Applied {
            report,
            text: out,
            redactions,
        }
    }

    /// Redact what the input policy says to redact; returns the text and the redactions to restore.
    pub fn redact(&self, text: &str) -> (String, Redactions) {
        let applied = self.apply(text, Direction::Input);
        (applied.text, applied.redactions)
    }

    /// An incremental scanner for a stream in `direction`.
    pub fn stream(&self, direction: Direction) -> StreamScanner {
        StreamScanner::new(self.clone(), direction)
    }

    /// The most bytes a stream scanner holds back in `direction` outside a long secret in
    /// progress: the longest possible match plus margins. Usually it holds far less: only what
    /// can still be part of a match (see [`crate::cut`]).
    pub fn hold(&self, direction: Direction) -> usize {
        self.hold_for(&self.plan(direction))
    }

    pub(crate) fn hold_for(&self, plan: &Plan) -> usize {
        let mut hold = 64;
        if plan.on(Detector::Secrets) || plan.on(Detector::Injection) {
            hold = hold.max(crate::secrets::SHORT_MAX);
        }
        if plan.on(Detector::Pii) {
            hold = hold.max(pii::MAX_TOKEN);
        }
        if plan.on(Detector::Pii) || plan.on(Detector::Secrets) {
            // A spaced-out run in progress (`j a n e @ ...`).
            hold = hold.max(decode::SPACED_HOLD);
        }
        if plan.on(Detector::Injection) {
            hold = hold.max(injection::MAX_WINDOW + 96);
        }
        if let Some(limit) = self.decode_limit(plan) {
            hold = hold.max(limit + 8);
        }
        if plan.on(Detector::Deny) {
            hold = hold.max(MAX_PATTERN_MATCH + 8);
        }
        if plan.on(Detector::Protected) {
            hold = hold.max(protected::MAX_KGRAM_BYTES + 8);
        }
        hold + 16
    }

    /// How a stream scanner in this plan finds its cut (see [`crate::cut`]).
    pub(crate) fn cut_rules(&self, plan: &Plan) -> CutRules {
        let policy = &self.inner.policy;
        let mut length = 0;
        if plan.on(Detector::Injection) {
            length = injection::MAX_WINDOW + 96;
        }
        if plan.on(Detector::Deny) && !policy.deny.patterns.is_empty() {
            length = length.max(MAX_PATTERN_MATCH + 8);
        }
        if plan.on(Detector::Protected) && self.inner.protected.is_some() {
            length = length.max(protected::MAX_KGRAM_BYTES + 8);
        }
        // An allowed match still in progress may later suppress any finding it overlaps.
        if !policy.allow.terms.is_empty() || !policy.allow.patterns.is_empty() {
            length = length.max(self.hold_for(plan));
        }
        let mut terms: Vec<&String> = Vec::new();
        if plan.on(Detector::Deny) {
            terms.extend(&policy.deny.terms);
            terms.extend(policy.deny.topics.values().flatten());
        }
        if plan.on(Detector::Canary) {
            terms.extend(&policy.canary.tokens);
        }
        let terms = (!terms.is_empty()).then(|| {
            let gaps = terms
                .iter()
                .map(|t| t.trim().bytes().filter(u8::is_ascii_whitespace).count())
                .max()
                .unwrap_or(0);
            // Invisible characters inside a matched term make it longer than the term.
            let longest = terms.iter().map(|t| 4 * t.len()).max().unwrap_or(0);
            (gaps, longest.max(MAX_PATTERN_MATCH))
        });
        // Decoding for personal data and secrets alone holds its runs itself
        // (`pending_disguised`): only words that look encoded, not every word in progress.
        let decode = plan.decode.then_some(policy.decode.max_bytes);
        CutRules::new(plan, length, decode, terms)
    }

    /// Where a long secret (private key, JWT, bearer token) may still be in progress at the end
    /// of `text`: the stream scanner must not release text from there.
    pub(crate) fn pending_long(&self, text: &str, plan: &Plan) -> Option<usize> {
        if !(plan.on(Detector::Secrets) || plan.on(Detector::Injection)) {
            return None;
        }
        if text.is_ascii() {
            return self.inner.secrets.pending(text);
        }
        // Secrets are matched in the clean view (NFKC, invisible characters removed): a header
        // written with a no-break space or a zero-width character must hold the stream too.
        let views = Views::new(text);
        let at = self.inner.secrets.pending(&views.clean)?;
        Some(views.clean_span(at, at).0)
    }

    /// All findings of one text, in detector order, duplicates included.
    pub(crate) fn scan_unsorted(&self, text: &str, plan: &Plan) -> Vec<Finding> {
        let mut out = Vec::new();
        self.scan_into(text, plan, Pass::Whole, &mut out, None);
        out
    }

    /// The furthest any detector looks before a finding's start (e-mail local parts, context
    /// keywords, allow-list matches that suppress it).
    pub(crate) fn lookbehind(&self) -> usize {
        let allow = if self.inner.policy.allow.terms.is_empty()
            && self.inner.policy.allow.patterns.is_empty()
        {
            0
        } else {
            MAX_PATTERN_MATCH
        };
        // The byte before a personal-data label is read too.
        allow.max(128).max(pii::LABEL_REACH + 1)
    }

    /// `learned`: where to put the learned tier's reading (whole-text scans only).
    fn scan_into(
        &self,
        text: &str,
        plan: &Plan,
        pass: Pass,
        out: &mut Vec<Finding>,
        learned: Option<&mut Option<Reading>>,
    ) {
        let inner = &*self.inner;
        let views = Views::new(text);
        if let (Some(slot), Some(model)) = (learned, &inner.learned) {
            *slot = Some(model.read_folded(&views.folded));
        }
        let mut secret_hits = Vec::new();
        let mut phrase_hits: Vec<PhraseHit> = Vec::new();
        let mut deny_hits = Vec::new();
        let mut canary_hits = Vec::new();
        let mut allowed: Vec<(usize, usize)> = Vec::new();

        let want_secrets = plan.on(Detector::Secrets);
        let want_phrases = plan.on(Detector::Injection);
        let want_deny = plan.on(Detector::Deny);
        let want_canary = plan.on(Detector::Canary);
        if let Some(ac) = &inner.automaton {
            let f = &views.folded;
            let hits = ac.find_iter(f.as_slice()).flat_map(|m| {
                inner.implied[m.pattern().as_usize()]
                    .iter()
                    .map(move |&(id, off)| {
                        let s = m.start() + off as usize;
                        (id as usize, s, s + inner.pattern_len[id as usize] as usize)
                    })
            });
            for (id, s, e) in hits {
                let starts_word = s == 0 || !f[s - 1].is_ascii_alphanumeric();
                let ends_word = e == f.len() || !f[e].is_ascii_alphanumeric();
                for &(tag, stem) in &inner.tags[id] {
                    match tag {
                        Tag::Secret(rule) if want_secrets => {
                            let at = views.folded_to_clean(s);
                            inner
                                .secrets
                                .check(rule as usize, &views.clean, at, &mut secret_hits);
                        }
                        Tag::Phrase(p) if want_phrases => {
                            let word_ok = (!inner.pattern_word_start[id] || starts_word)
                                && (stem || ends_word || !f[e - 1].is_ascii_alphanumeric());
                            if word_ok {
                                phrase_hits.push(PhraseHit {
                                    class: p.class,
                                    start: s,
                                    end: e,
                                    obfuscated: p.obfuscated,
                                });
                                if p.class == injection::Class::ToolName
                                    && let Some(verb) = injection::tool_verb_before(f, s)
                                {
                                    phrase_hits.push(verb);
                                }
                            }
                        }
                        Tag::Deny(topic) if want_deny && starts_word && ends_word => {
                            let mut h = Hit::new(s, e, "term", Severity::High);
                            if let Some(t) = topic {
                                h.kind = Cow::Borrowed("topic");
                                h.detail = inner.topics.get(t as usize).cloned();
                            }
                            deny_hits.push(h);
                        }
                        Tag::Allow if starts_word && ends_word => {
                            allowed.push(views.folded_span(s, e))
                        }
                        Tag::Canary if want_canary => {
                            canary_hits.push(Hit::new(s, e, "canary_token", Severity::Critical))
                        }
                        Tag::CanaryEncoded(encoding) if want_canary => {
                            // The whole run around the encoded canary, within reach.
                            let run = |b: &u8| b.is_ascii_alphanumeric() || b"+/=_-".contains(b);
                            let back = f[s.saturating_sub(ENCODED_REACH)..s]
                                .iter()
                                .rev()
                                .take_while(|b| run(b))
                                .count();
                            let ahead = f[e..]
                                .iter()
                                .take(ENCODED_REACH)
                                .take_while(|b| run(b))
                                .count();
                            let mut h =
                                Hit::new(s - back, e + ahead, "canary_token", Severity::Critical);
                            h.detail = Some(encoding.to_string());
                            canary_hits.push(h);
                        }
                        _ => {}
                    }
                }
            }
        }

        let push_all = |out: &mut Vec<Finding>,
                        hits: Vec<Hit>,
                        d: Detector,
                        map: &dyn Fn(usize, usize) -> (usize, usize)| {
            let Some(action) = plan.action(d) else { return };
            for h in hits {
                let (s, e) = map(h.start, h.end);
                out.push(Finding {
                    detector: d,
                    kind: h.kind.into_owned(),
                    start: s,
                    end: e,
                    severity: h.severity,
                    score: h.score,
                    detail: h.detail,
                    action,
                });
            }
        };
        let clean_map = |s, e| views.clean_span(s, e);
        let folded_map = |s, e| views.folded_span(s, e);
        let first = out.len();

        crate::secrets::prefer_specific(&mut secret_hits);
        push_all(out, secret_hits, Detector::Secrets, &clean_map);
        if plan.on(Detector::Pii) {
            let mut hits = Vec::new();
            // A label counts where it starts a word of the original text and lies within
            // `pii::LABEL_REACH` bytes of its value: decided on the original text, so that the
            // stream scanner (which keeps `lookbehind()` bytes before what it accepts) agrees.
            let bytes = text.as_bytes();
            let label_ok = |label: usize, value: usize| {
                let (l, _) = views.clean_span(label, label);
                let (v, _) = views.clean_span(value, value);
                v.saturating_sub(l) <= pii::LABEL_REACH
                    && (l == 0
                        || bytes
                            .get(l - 1)
                            .is_some_and(|&b| !(b.is_ascii_alphanumeric() || b == b'_')))
            };
            pii::scan(
                views.clean.as_bytes(),
                inner.pii_kinds,
                &label_ok,
                &mut hits,
            );
            push_all(out, hits, Detector::Pii, &clean_map);
        }
        if want_phrases {
            let mut hits = Vec::new();
            phrase_hits.sort_by_key(|h| (h.start, h.end));
            injection::signals(&views.folded, &phrase_hits, &mut hits);
            push_all(out, hits, Detector::Injection, &folded_map);
        }
        if want_deny {
            push_all(out, deny_hits, Detector::Deny, &folded_map);
            if let Some(action) = plan.action(Detector::Deny) {
                for re in &inner.deny_patterns {
                    for m in re
                        .find_iter(&views.clean)
                        .filter(|m| !m.is_empty() && m.len() <= MAX_PATTERN_MATCH)
                    {
                        let (start, end) = views.clean_span(m.start(), m.end());
                        let detail = Some(re.as_str().to_string());
                        out.push(Finding {
                            detector: Detector::Deny,
                            kind: "pattern".into(),
                            start,
                            end,
                            severity: Severity::High,
                            score: 1.0,
                            detail,
                            action,
                        });
                    }
                }
            }
        }
        if want_canary && let Some(sk) = &inner.skeletons {
            // Reworded: spaced, separators changed, emphasis inside, reversed. A match where the
            // canary stands as written is already there.
            let mut found = Vec::new();
            sk.find(&views.folded, &mut found);
            for (s, e, reversed) in found {
                if canary_hits.iter().any(|h| h.start <= s && e <= h.end) {
                    continue;
                }
                let mut h = Hit::new(s, e, "canary_token", Severity::Critical);
                h.detail = Some(if reversed { "reversed" } else { "reworded" }.to_string());
                canary_hits.push(h);
            }
        }
        push_all(out, canary_hits, Detector::Canary, &folded_map);
        if plan.on(Detector::Invisible) {
            let hits = views
                .invisible
                .iter()
                .map(|r| {
                    let severity = match r.kind {
                        crate::normalize::InvisibleKind::TagSmuggling => Severity::Critical,
                        crate::normalize::InvisibleKind::Bidi => Severity::High,
                        crate::normalize::InvisibleKind::ZeroWidth => Severity::Medium,
                    };
                    let mut h = Hit::new(r.start, r.end, r.kind.as_str(), severity);
                    if !r.decoded.is_empty() {
                        h.detail = Some(r.decoded.clone());
                    }
                    h
                })
                .collect();
            push_all(out, hits, Detector::Invisible, &|s, e| (s, e));
        }
        if plan.on(Detector::Protected)
            && let Some(p) = &inner.protected
        {
            let mut hits = Vec::new();
            p.scan(&views.folded, &mut hits);
            push_all(out, hits, Detector::Protected, &folded_map);
        }
        let depth = match pass {
            Pass::Whole => Some(0),
            Pass::Payload(1) if plan.values => Some(1),
            _ => None,
        };
        if let (Some(depth), Some(limit)) = (depth, self.decode_limit(plan)) {
            let mut payloads = Vec::new();
            if plan.decode {
                decode::find(&views.clean, limit, &mut payloads);
            } else {
                decode::find_values(&views.clean, limit, &mut payloads);
            }
            // Injection and deny findings come from payloads that read as text, at the first
            // level, as before; personal data, secrets and canaries from any printable payload,
            // and from a payload inside a payload (a value encoded twice).
            let prose = plan.decode && depth == 0;
            let inner_plan = Plan {
                actions: plan.actions,
                decode: false,
                values: plan.values,
            };
            for p in payloads {
                if !(plan.values || (prose && p.readable)) {
                    continue;
                }
                let (s, e) = views.clean_span(p.start, p.end);
                let mut nested = Vec::new();
                self.scan_into(
                    &p.text,
                    &inner_plan,
                    Pass::Payload(depth + 1),
                    &mut nested,
                    None,
                );
                for mut f in nested {
                    let keep = match f.detector {
                        Detector::Injection | Detector::Deny => prose && p.readable,
                        Detector::Secrets => plan.values || (prose && p.readable),
                        Detector::Pii | Detector::Canary => plan.values,
                        Detector::Invisible | Detector::Protected => false,
                    };
                    if keep {
                        f.kind = format!("{}:{}", p.encoding, f.kind);
                        f.start = s;
                        f.end = e;
                        out.push(f);
                    }
                }
            }
        }
        if pass == Pass::Whole && (plan.on(Detector::Pii) || plan.on(Detector::Secrets)) {
            self.unmasked_into(&views, plan, out);
        }
        for re in &inner.allow_patterns {
            for m in re.find_iter(&views.clean) {
                if m.len() <= MAX_PATTERN_MATCH {
                    allowed.push(views.clean_span(m.start(), m.end()));
                }
            }
        }
        if !allowed.is_empty() {
            let tail: Vec<Finding> = out.drain(first..).collect();
            out.extend(
                tail.into_iter()
                    .filter(|f| !allowed.iter().any(|&(s, e)| f.start < e && s < f.end)),
            );
        }
    }

    /// Personal data and secrets written in disguise ([`decode::unmask`]): each stretch read
    /// through its disguise is scanned by those two detectors, and what it finds is mapped back
    /// to the original text, spanning every character it was read from. Kept only where the
    /// disguise made the difference (the clean text there reads otherwise) and the match is at
    /// most [`decode::UNMASKED_MAX`] bytes long.
    fn unmasked_into(&self, views: &Views, plan: &Plan, out: &mut Vec<Finding>) {
        let mut stretches = Vec::new();
        decode::unmask(
            &views.clean,
            !views.has_map(),
            self.inner.policy.decode.enabled,
            &mut stretches,
        );
        if stretches.is_empty() {
            return;
        }
        let mut actions = [None; 7];
        for d in [Detector::Pii, Detector::Secrets] {
            actions[d.index()] = plan.action(d);
        }
        let inner_plan = Plan {
            actions,
            decode: false,
            values: false,
        };
        for u in stretches {
            let mut nested = Vec::new();
            self.scan_into(&u.text, &inner_plan, Pass::Unmasked, &mut nested, None);
            for mut f in nested {
                let (Some(&(cs, _)), Some(&(_, ce))) =
                    (u.src.get(f.start), u.src.get(f.end.wrapping_sub(1)))
                else {
                    continue;
                };
                let (cs, ce) = (cs as usize, ce as usize);
                if f.start >= f.end || views.clean.get(cs..ce) == u.text.get(f.start..f.end) {
                    continue;
                }
                let (s, e) = views.clean_span(cs, ce);
                if e - s > decode::UNMASKED_MAX {
                    continue;
                }
                f.start = s;
                f.end = e;
                out.push(f);
            }
        }
    }

    /// Where, at the end of a stream, a disguised match may be in progress that the cut rules
    /// do not see: a spaced-out run (personal data, secrets; held up to
    /// [`decode::SPACED_HOLD`] bytes) or the beginning of a canary's skeleton, forwards or
    /// reversed (held up to its length, with the gaps a skeleton allows).
    pub(crate) fn pending_disguised(&self, text: &str, plan: &Plan) -> Option<usize> {
        let spaced = plan.on(Detector::Pii) || plan.on(Detector::Secrets);
        let skeletons = self
            .inner
            .skeletons
            .as_ref()
            .filter(|_| plan.on(Detector::Canary));
        if !spaced && skeletons.is_none() {
            return None;
        }
        let b = text.as_bytes();
        // An encoded run in progress, where decoding serves personal data and secrets alone (with
        // injection on, the cut rules hold every word in progress): held from where the word
        // starts once it looks encoded, up to the longest run decoded.
        let encoded = (plan.values && !plan.decode)
            .then(|| {
                let start = b
                    .iter()
                    .rposition(u8::is_ascii_whitespace)
                    .map_or(0, |i| i + 1);
                looks_encoded(&b[start..])
                    .then(|| start.max(b.len().saturating_sub(decode::VALUE_RUN_MAX + 8)))
            })
            .flatten();
        // Cheap first: a spaced-out run needs a one-character word at the end.
        let last_word = {
            let body = b.strip_suffix(b" ").unwrap_or(b);
            let start = body
                .iter()
                .rposition(u8::is_ascii_whitespace)
                .map_or(0, |i| i + 1);
            &body[start..]
        };
        let spaced =
            spaced && !last_word.is_empty() && (last_word.len() == 1 || !last_word.is_ascii());
        let mut window = 0;
        if spaced {
            window = decode::SPACED_HOLD + 64;
        }
        if let Some(sk) = skeletons {
            window = window.max(4 * (sk.longest * (crate::normalize::SKELETON_GAP + 1) + 16));
        }
        if window == 0 {
            return encoded;
        }
        let mut from = b.len().saturating_sub(window);
        while !text.is_char_boundary(from) {
            from += 1;
        }
        let tail = &text[from..];
        let views = Views::new(tail);
        let mut at: Option<usize> = encoded;
        if spaced && let Some(s) = spaced_start(views.clean.as_bytes()) {
            let s = views.clean_span(s, s).0 + from;
            let s = s.max(b.len().saturating_sub(decode::SPACED_HOLD));
            at = Some(at.map_or(s, |a| a.min(s)));
        }
        if let Some(sk) = skeletons
            && let Some(s) = sk.pending(&views.folded)
        {
            let s = views.folded_span(s, s).0 + from;
            at = Some(at.map_or(s, |a| a.min(s)));
        }
        at.map(|a| {
            let mut a = a.min(b.len());
            while !text.is_char_boundary(a) {
                a -= 1;
            }
            a
        })
    }

    /// Build the report from raw findings: merge protected-content matches per document, drop
    /// injection signals when the score stays under the threshold, derive the verdict.
    pub(crate) fn report(&self, mut raw: Vec<Finding>, view: LearnedView) -> Report {
        dedup(&mut raw);
        let score = injection::score(
            raw.iter()
                .filter(|f| f.detector == Detector::Injection)
                .map(|f| (f.kind.as_str(), signal_weight(f, view))),
        );
        let threshold = self.inner.policy.injection.threshold;
        let mut findings: Vec<Finding> = Vec::with_capacity(raw.len());
        let mut protected: Vec<Finding> = Vec::new();
        for f in raw {
            match f.detector {
                Detector::Injection if score < threshold || f.action == Action::Allow => {}
                Detector::Protected => protected.push(f),
                _ => findings.push(f),
            }
        }
        findings.extend(self.merge_protected(protected));
        findings.sort_by_key(|f| (f.start, f.end, f.detector));
        let verdict = findings
            .iter()
            .map(|f| f.action)
            .max()
            .unwrap_or(Action::Allow);
        Report {
            verdict,
            score,
            findings,
        }
    }

    fn merge_protected(&self, mut hits: Vec<Finding>) -> Vec<Finding> {
        let Some(p) = &self.inner.protected else {
            return Vec::new();
        };
        hits.sort_by(|a, b| (&a.detail, a.start).cmp(&(&b.detail, b.start)));
        let min = self.inner.policy.protected.min_matches.max(1);
        let mut out: Vec<Finding> = Vec::new();
        let mut run: Option<(Finding, usize)> = None;
        let flush = |run: Option<(Finding, usize)>, out: &mut Vec<Finding>| {
            if let Some((mut f, n)) = run
                && n >= min
            {
                if let Some(doc) = f.detail.as_deref().and_then(|d| p.doc(d)) {
                    let overlap = 100.0 * n as f64 / doc.fingerprints.max(1) as f64;
                    f.detail = Some(format!(
                        "{} ({} matching k-grams, {:.0}% of its fingerprints)",
                        doc.name,
                        n,
                        overlap.min(100.0)
                    ));
                }
                out.push(f);
            }
        };
        for h in hits {
            match &mut run {
                Some((f, n)) if f.detail == h.detail && h.start <= f.end => {
                    f.end = f.end.max(h.end);
                    *n += 1;
                }
                _ => {
                    flush(run.take(), &mut out);
                    run = Some((h, 1));
                }
            }
        }
        flush(run, &mut out);
        out
    }

    /// Apply redact actions of `findings` (offsets relative to `base`) to `text`.
    pub(crate) fn redact_findings(
        &self,
        text: &str,
        base: usize,
        findings: &[Finding],
        redactions: &mut Redactions,
    ) -> String {
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        // A placeholder must not be one the text already holds; a text without `[[` holds none,
        // so it is searched once here rather than once per placeholder (a 64 KiB stream chunk
        // with hundreds of redactions spent a quarter of its time there).
        let source = if text.contains("[[") { text } else { "" };
        for f in findings.iter().filter(|f| f.action == Action::Redact) {
            let (s, e) = (
                f.start.saturating_sub(base).max(at),
                f.end.saturating_sub(base).min(text.len()),
            );
            if s >= e || !text.is_char_boundary(s) || !text.is_char_boundary(e) {
                continue;
            }
            out.push_str(&text[at..s]);
            let kind = f.kind.rsplit(':').next().unwrap_or(&f.kind);
            out.push_str(&redactions.placeholder(&self.inner.keys, kind, &text[s..e], source));
            at = e;
        }
        out.push_str(&text[at..]);
        out
    }

    /// The learned tier's model, when the policy runs it.
    pub(crate) fn learned(&self) -> Option<&Arc<Model>> {
        self.inner.learned.as_ref()
    }

    pub(crate) fn threshold(&self) -> f32 {
        self.inner.policy.injection.threshold
    }
}

/// Sort findings and drop exact duplicates and findings of one detector contained in another
/// (a JWT inside a bearer header, two overlapping signals of the same kind).
/// A compiled keyword automaton and, per pattern, the patterns it contains.
type Compiled = Arc<(AhoCorasick, Arc<Vec<Vec<(u32, u32)>>>)>;

/// Compile the keyword automaton for `patterns`, or reuse the one compiled for the same
/// patterns before: policies share most of them (the injection phrases, secret keywords), and
/// a gateway compiles one guard per application, so start-up would otherwise repeat the most
/// expensive step for every application. A few recent pattern sets are kept.
fn compile_automaton(patterns: &[Vec<u8>]) -> Result<Option<Compiled>, aho_corasick::BuildError> {
    static CACHE: std::sync::Mutex<Vec<(Vec<Vec<u8>>, Compiled)>> =
        std::sync::Mutex::new(Vec::new());
    const KEPT: usize = 8;
    if patterns.is_empty() {
        return Ok(None);
    }
    if let Ok(cache) = CACHE.lock()
        && let Some((_, hit)) = cache.iter().find(|(p, _)| p.as_slice() == patterns)
    {
        return Ok(Some(hit.clone()));
    }
    // The scan runs a leftmost-longest DFA (fast, prefilter-friendly). Patterns that occur
    // inside a longer pattern would be hidden by it, so each pattern carries the patterns
    // it contains ("ignore" inside "ignore all previous"), found once here.
    let inner_ac = AhoCorasick::builder()
        .match_kind(MatchKind::Standard)
        .build(patterns)?;
    let implied: Vec<Vec<(u32, u32)>> = patterns
        .iter()
        .map(|p| {
            inner_ac
                .find_overlapping_iter(p.as_slice())
                .map(|m| (m.pattern().as_u32(), m.start() as u32))
                .collect()
        })
        .collect();
    let automaton = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .kind(Some(AhoCorasickKind::DFA))
        .build(patterns)?;
    let compiled: Compiled = Arc::new((automaton, Arc::new(implied)));
    if let Ok(mut cache) = CACHE.lock() {
        if cache.len() == KEPT {
            cache.remove(0);
        }
        cache.push((patterns.to_vec(), compiled.clone()));
    }
    Ok(Some(compiled))
}

/// Whether a word in progress may be an encoded run or hold a disguise: it has a digit, an
/// escape or base64's `+`, `/`, `=`, a capital after its first letter, or a non-ASCII character.
/// An ordinary word (`Hello`, `meeting`) does not, and is released while it is being written.
fn looks_encoded(word: &[u8]) -> bool {
    word.len() >= 2
        && word.iter().enumerate().any(|(i, &c)| {
            c.is_ascii_digit()
                || !c.is_ascii()
                || matches!(c, b'+' | b'/' | b'=' | b'%' | b'\\')
                || (i > 0 && c.is_ascii_uppercase())
        })
}

/// Where a run of one-character words separated by single spaces, still open at the end of
/// `clean` (it ends in such a word, or in one and a space), begins.
fn spaced_start(clean: &[u8]) -> Option<usize> {
    let mut i = clean.len();
    if clean.last() == Some(&b' ') {
        i -= 1;
    }
    let mut start = None;
    while i > 0 {
        let mut cs = i - 1;
        while cs > 0 && clean[cs] & 0xC0 == 0x80 {
            cs -= 1;
        }
        let c = &clean[cs..i];
        let one = match c {
            [x] => !x.is_ascii_whitespace(),
            _ => std::str::from_utf8(c).is_ok_and(|s| s.chars().count() == 1),
        };
        if !one || (cs > 0 && !clean[cs - 1].is_ascii_whitespace()) {
            break;
        }
        start = Some(cs);
        if cs < 2 || clean[cs - 1] != b' ' || clean[cs - 2].is_ascii_whitespace() {
            break;
        }
        i = cs - 1;
    }
    start
}

/// An injection signal about a whole text of `len` bytes (a classifier's, the learned tier's).
fn whole_text_signal(kind: String, score: f32, len: usize, action: Action) -> Finding {
    Finding {
        detector: Detector::Injection,
        kind,
        start: 0,
        end: len,
        severity: Severity::Medium,
        score,
        detail: None,
        action,
    }
}

/// The kind of the learned tier's finding.
pub(crate) const LEARNED_KIND: &str = "learned";

/// What the learned tier has said about the text, for weighing the phrase rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum LearnedView {
    /// The learned tier does not run: phrase rules count in full.
    Off,
    /// It runs but has not read the text yet (a stream before its end).
    Pending,
    Read(Reading),
}

/// Phrase rules from this weight decide alone, whatever the learned tier says.
pub(crate) const HEURISTIC_SURE: f32 = 0.99;
/// With the learned tier on, a phrase rule from this weight decides alone unless the learned
/// tier reads the text as ordinary (log-odds under [`LEARNED_VETO`]).
pub(crate) const HEURISTIC_DECISIVE: f32 = 0.7;
/// The share of a weaker phrase rule's weight that counts with the learned tier on: under the
/// threshold on its own, so the learned tier has to agree.
pub(crate) const HEURISTIC_SUPPORT: f32 = 0.45;
/// Learned log-odds under which phrase rules (below [`HEURISTIC_SURE`]) do not count.
pub(crate) const LEARNED_VETO: f32 = -1.0;
/// Texts of fewer tokens give the learned tier too little to go on: there, phrase rules count
/// in full, as if it did not run ("Oublie toutes les consignes précédentes." has no room for
/// the quoting or discussion that the learned tier weighs).
pub(crate) const SHORT_TEXT_TOKENS: u32 = 20;
/// The learned tier's weight is `1 - exp(-SLOPE * max(0, logit(p) - OFFSET))`: the noisy-or's
/// log-complement adds, so this adds `SLOPE * (logit(p) - OFFSET)` to a phrase rule's evidence.
pub(crate) const LEARNED_SLOPE: f32 = 0.2;
pub(crate) const LEARNED_OFFSET: f32 = -0.5;

/// What an injection finding adds to the text's score. Phrase lists fire on text that quotes
/// or discusses an attack as readily as on the attack, which the learned tier tells apart
/// better; so with the learned tier on, a phrase rule counts in full only from
/// [`HEURISTIC_DECISIVE`], less below, and not at all where the learned tier reads the text as
/// ordinary; in short texts, in full. The surest rules and phrases inside a decoded payload
/// (`base64:…`, which the learned tier does not read) always count. All constants were chosen
/// on the pooled leave-one-source-out scores of the training sources and the guard's own test
/// examples scored by models that never saw them (`eval/generalise.sh`), never on the held-out
/// sets.
pub(crate) fn signal_weight(f: &Finding, view: LearnedView) -> f32 {
    let phrase_rule = f.kind != LEARNED_KIND && !f.kind.contains(':');
    if !phrase_rule || f.score >= HEURISTIC_SURE {
        return f.score;
    }
    match view {
        LearnedView::Off => f.score,
        LearnedView::Pending => 0.0,
        LearnedView::Read(r) if r.tokens < SHORT_TEXT_TOKENS => f.score,
        LearnedView::Read(r) if logit(r.p) < LEARNED_VETO => 0.0,
        LearnedView::Read(_) if f.score >= HEURISTIC_DECISIVE => f.score,
        LearnedView::Read(_) => f.score * HEURISTIC_SUPPORT,
    }
}

fn logit(p: f32) -> f32 {
    let p = p.clamp(1e-7, 1.0 - 1e-7);
    (p / (1.0 - p)).ln()
}

/// The learned tier's finding for a text of `len` bytes scored `p`.
pub(crate) fn learned_finding(p: f32, len: usize, action: Action) -> Finding {
    whole_text_signal(LEARNED_KIND.to_string(), learned_weight(p), len, action)
}

/// The learned tier's probability as an injection signal weight (see [`LEARNED_SLOPE`]).
pub(crate) fn learned_weight(p: f32) -> f32 {
    1.0 - (-LEARNED_SLOPE * (logit(p) - LEARNED_OFFSET).max(0.0)).exp()
}

pub(crate) fn dedup(v: &mut Vec<Finding>) {
    v.sort_by(|a, b| {
        (a.start, std::cmp::Reverse(a.end), a.detector, &a.kind).cmp(&(
            b.start,
            std::cmp::Reverse(b.end),
            b.detector,
            &b.kind,
        ))
    });
    let mut kept: Vec<Finding> = Vec::with_capacity(v.len());
    for f in v.drain(..) {
        let contained = kept.iter().rev().take(8).any(|k| {
            k.detector == f.detector
                && k.start <= f.start
                && f.end <= k.end
                && (f.detector != Detector::Injection || (k.kind == f.kind && k.score >= f.score))
                && (f.detector != Detector::Protected || k.detail == f.detail)
        });
        if !contained {
            kept.push(f);
        }
    }
    *v = kept;
}
