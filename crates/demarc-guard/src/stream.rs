//! Incremental scanning for streams.
//!
//! Chunks of any size go in. After each chunk the scanner finds the cut: the earliest place
//! where a match that more text could still change may start ([`crate::cut`]: the trailing
//! word, and earlier words only while a detector's match could still reach across them). When
//! the cut has moved past the released text, it rescans its buffer (the unreleased tail plus a
//! little context before it: the furthest any detector looks back) and accepts the findings
//! that start before the cut: such a finding is complete and is exactly what whole-text
//! scanning finds there. Duplicates a later window sees again are removed by the final
//! report's dedup, as in whole-text scanning. Text before the cut (extended to the end of an
//! accepted finding) is released at once, with redactions applied. A long secret whose
//! keyword has been seen (a private key block) moves the cut back to its start until it ends.
//!
//! Two cuts: only detectors that change the text (redact, block) decide what is released;
//! findings that are only reported (flag) are accepted behind their own, later cut, so a
//! flagged e-mail address in progress does not hold the answer back.
//!
//! Invariant: the findings accumulated over a stream equal those of scanning the whole text
//! (property-tested over random chunkings in `tests/stream.rs`).

use crate::cut::CutRules;
use crate::engine::{Guard, Plan};
use crate::engine::{LearnedView, learned_finding, signal_weight};
use crate::finding::{Action, Detector, Direction, Finding, Report};
use crate::learned::StreamScore;
use crate::redact::Redactions;

/// What one [`StreamScanner::push`] released.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamOutput {
    /// Text safe to pass on now (redacted where the policy says so). Empty once blocked.
    pub text: String,
    /// Findings that became final with this chunk (offsets into the whole stream).
    pub findings: Vec<Finding>,
    /// The policy blocks this stream: stop forwarding it.
    pub blocked: bool,
}

/// An incremental scanner; create one per stream with [`Guard::stream`].
pub struct StreamScanner {
    guard: Guard,
    plan: Plan,
    /// The detectors whose action changes the text (redact, block): they decide the release.
    enforced: Plan,
    release_rules: CutRules,
    observe_rules: CutRules,
    /// How far before an accepted offset a detector may look (word boundaries, context keywords,
    /// e-mail local parts, allow-list matches).
    context: usize,
    /// Unreleased text plus up to `context` bytes before it.
    buf: String,
    /// Stream offset of `buf[0]`.
    base: usize,
    /// Stream offset up to which text has been released.
    released: usize,
    /// Findings of enforced detectors starting before this stream offset have been accepted.
    enforced_to: usize,
    /// The same for the other (reported-only) detectors; never past `enforced_to`.
    observed_to: usize,
    findings: Vec<Finding>,
    /// Index of the first finding that may still overlap unreleased text.
    open_from: usize,
    score: crate::injection::Score,
    /// The learned tier's running score (whole-stream, decided at the end), when it runs.
    learned: Option<StreamScore>,
    /// Until the end, phrase rules that need the learned tier's view wait for it.
    view: LearnedView,
    redactions: Redactions,
    blocked: bool,
}

impl StreamScanner {
    pub(crate) fn new(guard: Guard, direction: Direction) -> StreamScanner {
        let plan = guard.plan(direction);
        let enforced = plan.enforced();
        let release_rules = guard.cut_rules(&enforced);
        let observe_rules = guard.cut_rules(&plan);
        let context = guard.lookbehind();
        StreamScanner {
            enforced,
            release_rules,
            observe_rules,
            context,
            buf: String::new(),
            base: 0,
            released: 0,
            enforced_to: 0,
            observed_to: 0,
            findings: Vec::new(),
            open_from: 0,
            score: crate::injection::Score::default(),
            learned: (guard.learned().is_some() && plan.on(Detector::Injection))
                .then(StreamScore::default),
            view: if guard.learned().is_some() && plan.on(Detector::Injection) {
                LearnedView::Pending
            } else {
                LearnedView::Off
            },
            redactions: Redactions::new(),
            blocked: false,
            guard,
            plan,
        }
    }

    /// Feed the next chunk.
    pub fn push(&mut self, chunk: &str) -> StreamOutput {
        if let (Some(learned), Some(model)) = (&mut self.learned, self.guard.learned()) {
            learned.push(model, chunk);
        }
        self.buf.push_str(chunk);
        let release = self.cut(&self.release_rules, &self.enforced, self.enforced_to);
        if release <= self.released {
            // Nothing new can be released; scan later when there is more to decide on.
            return StreamOutput {
                blocked: self.blocked,
                ..StreamOutput::default()
            };
        }
        let observe = self
            .cut(&self.observe_rules, &self.plan, self.observed_to)
            .min(release);
        self.step(release, observe, false)
    }

    /// End of stream: scan and release the rest. Returns the last output and the report over
    /// the whole stream (equal to scanning the whole text at once).
    pub fn finish(mut self) -> (StreamOutput, Report, Redactions) {
        let end = self.base + self.buf.len();
        // The learned tier scores the stream as a whole: its signal joins at the end.
        if let (Some(learned), Some(model), Some(action)) = (
            self.learned.take(),
            self.guard.learned(),
            self.plan.action(Detector::Injection),
        ) {
            let reading = learned.finish(model);
            self.view = LearnedView::Read(reading);
            // The phrase rules found so far are weighed again, now that the view is known.
            self.score = crate::injection::Score::default();
            for f in self
                .findings
                .iter()
                .filter(|f| f.detector == Detector::Injection)
            {
                self.score.add(&f.kind, signal_weight(f, self.view));
            }
            let f = learned_finding(reading.p, end, action);
            self.score.add(&f.kind, signal_weight(&f, self.view));
            self.findings.push(f);
        }
        let out = self.step(end, end, true);
        let report = self.guard.report(self.findings, self.view);
        (out, report, self.redactions)
    }

    /// The redactions made so far (to restore the caller's view later).
    pub fn redactions(&self) -> &Redactions {
        &self.redactions
    }

    /// Bytes pushed but not released yet (what may still be part of a match).
    pub fn held(&self) -> usize {
        self.base + self.buf.len() - self.released
    }

    /// Whether the stream has been blocked.
    pub fn blocked(&self) -> bool {
        self.blocked
    }

    /// The stream offset before which `rules` (and long secrets in progress) allow accepting.
    fn cut(&self, rules: &CutRules, plan: &Plan, accepted: usize) -> usize {
        let mut cut = rules.cut(self.buf.as_bytes(), accepted - self.base);
        if let Some(p) = self.guard.pending_long(&self.buf, plan) {
            cut = cut.min(p);
        }
        if let Some(p) = self.guard.pending_disguised(&self.buf, plan) {
            cut = cut.min(p);
        }
        self.floor(self.base + cut).max(accepted)
    }

    fn floor(&self, mut at: usize) -> usize {
        while at > self.base && !self.buf.is_char_boundary(at - self.base) {
            at -= 1;
        }
        at
    }

    /// Accept findings before the cuts, release text before `cut` (redacted), trim the buffer.
    fn step(&mut self, cut: usize, observe: usize, last: bool) -> StreamOutput {
        let mut raw = self.guard.scan_unsorted(&self.buf, &self.plan);
        for f in &mut raw {
            f.start += self.base;
            f.end += self.base;
        }
        raw.sort_by_key(|f| (f.start, f.end));
        // A finding that reaches past its cut waits, and the cut moves back to its start: a
        // match still open there may yet overrule it (a private key over a bearer token), and
        // text is never released through the middle of a finding. Repeated until no accepted
        // finding crosses the cut.
        let candidates: Vec<Finding> = raw
            .into_iter()
            .filter(|f| {
                let (from, to) = if f.action.changes_text() {
                    (self.enforced_to, cut)
                } else {
                    (self.observed_to, observe)
                };
                // A decoded run (kind `ENCODING:...`) whose first characters read as an ordinary
                // word left before it looked encoded: accepted late, the rest of it redacted.
                let late = f.kind.contains(':')
                    && f.start > self.base
                    && f.end > from
                    && (last || f.end <= to);
                (f.start >= from || late) && (last || f.start < to)
            })
            .collect();
        let settle = |mut at: usize, enforced: bool| {
            if last {
                return usize::MAX;
            }
            loop {
                let crossing = candidates
                    .iter()
                    .filter(|f| f.action.changes_text() == enforced)
                    .filter(|f| f.start < at && f.end > at)
                    .map(|f| f.start)
                    .min();
                match crossing {
                    Some(start) => at = start,
                    None => return at,
                }
            }
        };
        let enforced_to = settle(cut, true);
        let observed_to = settle(observe, false);
        let new: Vec<Finding> = candidates
            .into_iter()
            .filter(|f| {
                f.start
                    < if f.action.changes_text() {
                        enforced_to
                    } else {
                        observed_to
                    }
            })
            .collect();
        let (enforced_to, observed_to) = if last {
            (self.base + self.buf.len(), self.base + self.buf.len())
        } else {
            (enforced_to, observed_to)
        };
        self.enforced_to = enforced_to;
        self.observed_to = observed_to.min(enforced_to);
        let mut release_to = if last {
            self.base + self.buf.len()
        } else {
            enforced_to
        };
        release_to = release_to.min(self.base + self.buf.len());
        self.findings.extend(new.iter().cloned());
        for f in new.iter().filter(|f| f.detector == Detector::Injection) {
            self.score.add(&f.kind, signal_weight(f, self.view));
        }

        // A blocked finding ends the stream; the text before it is still released (it was
        // safe), unless an injection score tipped over, which condemns its whole context.
        let block_at = new
            .iter()
            .filter(|f| f.action == Action::Block && f.detector != Detector::Injection)
            .map(|f| f.start)
            .min();
        let injection_block = self.plan.action(Detector::Injection) == Some(Action::Block)
            && self.score.value() >= self.guard.threshold();
        let was_blocked = self.blocked;
        self.blocked |= block_at.is_some() || injection_block;
        if let Some(at) = block_at {
            release_to = release_to.min(at);
        }

        let mut text = String::new();
        if !was_blocked && !injection_block && release_to > self.released {
            let from = self.released - self.base;
            let to = release_to - self.base;
            // Findings are appended in stream order; those ending before released text stay closed.
            while self.open_from < self.findings.len()
                && self.findings[self.open_from].end <= self.released
            {
                self.open_from += 1;
            }
            let mut redactable: Vec<Finding> = self.findings[self.open_from..]
                .iter()
                .filter(|f| {
                    f.action == Action::Redact && f.end > self.released && f.start < release_to
                })
                .cloned()
                .collect();
            // As in the report: a finding inside another of the same detector (a national id
            // inside an e-mail address) is not redacted on its own.
            crate::engine::dedup(&mut redactable);
            redactable.sort_by_key(|f| (f.start, f.end, f.detector));
            text = self.guard.redact_findings(
                &self.buf[from..to],
                self.released,
                &redactable,
                &mut self.redactions,
            );
        }
        if release_to > self.released {
            self.released = release_to;
        }
        // Keep `context` bytes before the next accepted finding.
        let keep_from = self.floor(
            self.observed_to
                .min(self.released)
                .saturating_sub(self.context)
                .max(self.base),
        );
        if keep_from > self.base {
            self.buf.drain(..keep_from - self.base);
            self.base = keep_from;
        }
        StreamOutput {
            text,
            findings: new,
            blocked: self.blocked,
        }
    }
}
