//! The adapter from `demarc-guard` to the gateway's [`Policy`] seam.

use std::sync::{Arc, OnceLock};

use demarc_guard::{Direction, Finding, Guard, StreamScanner};

use crate::config::PolicySpec;
use crate::policy::{
    Action, Blocked, Coverage, Hit, InputScan, OutputScanner, Policy, Trust, Vault,
};

/// An application's guard policy, compiled once and shared by all its requests.
#[derive(Clone)]
pub struct GuardPolicy {
    guard: Guard,
    /// The input side without prompt injection, for trusted roles and embedding inputs,
    /// compiled on first use (most applications need neither); `None` when the policy does not
    /// look for injection on input (the guard itself serves then).
    without_injection: Arc<OnceLock<Option<Guard>>>,
    scans_output: bool,
}

impl GuardPolicy {
    pub fn new(guard: Guard) -> Self {
        let scans_output = !guard.policy().output.is_empty();
        Self {
            guard,
            without_injection: Arc::default(),
            scans_output,
        }
    }

    /// Compile the policy an application's config names (`default` when it names none).
    pub fn from_spec(spec: &PolicySpec) -> Result<Self, demarc_guard::PolicyError> {
        let policy = match spec {
            PolicySpec::Default => demarc_guard::Policy::default(),
            PolicySpec::Off => demarc_guard::Policy::empty(),
            PolicySpec::Document(value) => demarc_guard::Policy::from_value(value.clone())?,
        };
        Guard::new(&policy).map(Self::new)
    }

    pub fn guard(&self) -> &Guard {
        &self.guard
    }
}

/// The policy's input side without the prompt-injection detector (and without output, which
/// this guard never scans). Should it fail to compile, those inputs get the whole policy.
fn without_injection(policy: &demarc_guard::Policy) -> Option<Guard> {
    if !policy
        .input
        .contains_key(&demarc_guard::Detector::Injection)
    {
        return None;
    }
    let mut p = policy.clone();
    p.input.remove(&demarc_guard::Detector::Injection);
    p.output.clear();
    p.injection.learned = false;
    if !p.input.contains_key(&demarc_guard::Detector::Protected) {
        p.protected.documents.clear();
    }
    match Guard::new(&p) {
        Ok(guard) => Some(guard),
        Err(e) => {
            tracing::warn!(error = %e, "trusted and embedding inputs are scanned with the whole policy, prompt injection included");
            None
        }
    }
}

/// Findings the policy allows are not hits (they do not count towards verdicts or metrics).
fn hits(findings: &[Finding]) -> impl Iterator<Item = Hit> + '_ {
    findings
        .iter()
        .filter(|f| f.action != demarc_guard::Action::Allow)
        .map(|f| Hit {
            detector: f.detector.as_str().to_string(),
            action: f.action,
        })
}

impl Policy for GuardPolicy {
    fn coverage(&self) -> Coverage {
        let policy = self.guard.policy();
        let on_output = |d: demarc_guard::Detector| {
            policy
                .output
                .get(&d)
                .is_some_and(|a| *a != demarc_guard::Action::Allow)
        };
        let mut ip_checks = Vec::new();
        let documents = policy.protected.documents.len();
        if on_output(demarc_guard::Detector::Protected) && documents > 0 {
            ip_checks.push(format!(
                "protected content ({documents} registered path{})",
                if documents == 1 { "" } else { "s" }
            ));
        }
        let tokens = policy.canary.tokens.len();
        if on_output(demarc_guard::Detector::Canary) && tokens > 0 {
            ip_checks.push(format!("canary tokens ({tokens} registered)"));
        }
        Coverage {
            name: policy.name.clone().unwrap_or_else(|| "custom".into()),
            input: !policy.input.is_empty(),
            redacts_input: policy
                .input
                .values()
                .any(|a| *a == demarc_guard::Action::Redact),
            output: !policy.output.is_empty(),
            ip: !ip_checks.is_empty(),
            ip_checks,
            grounding: None,
            canary: None,
        }
    }

    fn scan_input(&self, texts: &[&str], trust: Trust, vault: &mut Vault) -> InputScan {
        let guard = match trust {
            Trust::Untrusted => &self.guard,
            Trust::Trusted | Trust::Indexed => self
                .without_injection
                .get_or_init(|| without_injection(self.guard.policy()))
                .as_ref()
                .unwrap_or(&self.guard),
        };
        scan_with(guard, texts, vault)
    }

    fn output_scanner(&self) -> Box<dyn OutputScanner> {
        Box::new(GuardStream {
            scanner: Some(self.guard.stream(Direction::Output)),
            hits: Vec::new(),
            redactions: 0,
        })
    }

    fn scans_output(&self) -> bool {
        self.scans_output
    }
}

fn scan_with(guard: &Guard, texts: &[&str], vault: &mut Vault) -> InputScan {
    let applied = guard.apply_pieces(texts, Direction::Input);
    let hits: Vec<Hit> = hits(&applied.report.findings).collect();
    let redactions = u32::try_from(applied.redactions.len()).unwrap_or(u32::MAX);
    vault.extend(applied.redactions);
    let verdict = applied.report.verdict;
    let changed = applied.texts.iter().zip(texts).any(|(new, old)| new != old);
    let rewritten = (verdict != Action::Block && changed).then_some(applied.texts);
    InputScan {
        action: verdict,
        rewritten,
        hits,
        redactions,
    }
}

struct GuardStream {
    scanner: Option<StreamScanner>,
    hits: Vec<Hit>,
    redactions: u32,
}

impl GuardStream {
    fn absorb(
        &mut self,
        out: demarc_guard::StreamOutput,
        text: &mut String,
    ) -> Result<(), Blocked> {
        let start = self.hits.len();
        self.hits.extend(hits(&out.findings));
        self.redactions += out
            .findings
            .iter()
            .filter(|f| f.action == demarc_guard::Action::Redact)
            .count() as u32;
        if out.blocked {
            let detector = self.hits[start..]
                .iter()
                .find(|h| h.action == Action::Block)
                .map_or_else(|| "policy".to_string(), |h| h.detector.clone());
            return Err(Blocked { detector });
        }
        text.push_str(&out.text);
        Ok(())
    }
}

impl OutputScanner for GuardStream {
    fn push(&mut self, chunk: &str, out: &mut String) -> Result<(), Blocked> {
        let Some(scanner) = self.scanner.as_mut() else {
            return Err(Blocked {
                detector: "policy".into(),
            });
        };
        let step = scanner.push(chunk);
        self.absorb(step, out)
    }

    fn finish(&mut self, out: &mut String) -> Result<(), Blocked> {
        let Some(scanner) = self.scanner.take() else {
            return Ok(());
        };
        let (last, _report, _redactions) = scanner.finish();
        self.absorb(last, out)
    }

    fn take_hits(&mut self) -> (Vec<Hit>, u32) {
        (
            std::mem::take(&mut self.hits),
            std::mem::take(&mut self.redactions),
        )
    }
}
