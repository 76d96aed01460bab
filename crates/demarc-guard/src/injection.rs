//! Prompt injection and jailbreak: weighted heuristics over phrase classes.
//!
//! Phrases (EN, DE, FR, ES, IT) are matched in the folded view by the shared Aho-Corasick pass,
//! together with generated obfuscated variants (reversed, ROT13, letter-spaced). A class may
//! carry a weight on its own; most weight comes from two classes meeting within a window
//! ("ignore" near "previous instructions"). Each fired signal is a finding with its weight;
//! the text's score is the noisy-or of the strongest signal per kind, so repeating one phrase
//! does not raise the score. Signals are local (bounded span), which keeps stream scanning
//! equal to whole-text scanning.

use crate::Severity;
use crate::hit::Hit;

/// Phrase classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Class {
    OverrideVerb,
    InstrNoun,
    OverrideFull,
    ExtractVerb,
    SecretObj,
    Verbatim,
    PersonaShift,
    Unrestricted,
    Authority,
    Delimiter,
    AddressAi,
    ToolName,
    ToolVerb,
    Destructive,
    ExfilVerb,
    ExfilObj,
    External,
    AppendVerb,
    TokenObj,
    ResponseTarget,
    DecodeVerb,
    Obey,
    Memory,
    Hijack,
}

const CLASS_COUNT: usize = Class::Hijack as usize + 1;

/// Standalone weights: a class that means something on its own.
fn standalone(class: Class) -> Option<(&'static str, f32)> {
    Some(match class {
        Class::OverrideFull => ("instruction_override", 0.6),
        Class::SecretObj => ("prompt_extraction", 0.15),
        Class::Verbatim => ("prompt_extraction", 0.25),
        Class::PersonaShift => ("persona_hijack", 0.2),
        Class::Unrestricted => ("jailbreak", 0.45),
        Class::Authority => ("fake_authority", 0.35),
        Class::Delimiter => ("delimiter_injection", 0.45),
        Class::AddressAi => ("addresses_the_model", 0.35),
        Class::ToolName => ("tool_misuse", 0.3),
        Class::Memory => ("memory_persistence", 0.3),
        Class::Hijack => ("reasoning_hijack", 0.35),
        _ => return None,
    })
}

/// Two classes within `window` bytes of each other (either order) fire a signal.
struct Combo {
    a: Class,
    b: Class,
    window: usize,
    kind: &'static str,
    weight: f32,
}

#[rustfmt::skip]
const COMBOS: &[Combo] = &[
    Combo { a: Class::OverrideVerb, b: Class::InstrNoun, window: 50, kind: "instruction_override", weight: 0.8 },
    Combo { a: Class::ExtractVerb, b: Class::SecretObj, window: 60, kind: "prompt_extraction", weight: 0.75 },
    Combo { a: Class::PersonaShift, b: Class::Unrestricted, window: 80, kind: "jailbreak", weight: 0.85 },
    Combo { a: Class::Delimiter, b: Class::Authority, window: 80, kind: "delimiter_injection", weight: 0.8 },
    Combo { a: Class::Delimiter, b: Class::OverrideVerb, window: 80, kind: "delimiter_injection", weight: 0.7 },
    Combo { a: Class::AddressAi, b: Class::ToolName, window: 120, kind: "tool_misuse", weight: 0.8 },
    Combo { a: Class::AddressAi, b: Class::Destructive, window: 120, kind: "tool_misuse", weight: 0.8 },
    Combo { a: Class::ToolVerb, b: Class::ToolName, window: 12, kind: "tool_misuse", weight: 0.55 },
    Combo { a: Class::AddressAi, b: Class::ExfilVerb, window: 120, kind: "exfiltration", weight: 0.45 },
    Combo { a: Class::ExfilVerb, b: Class::ExfilObj, window: 60, kind: "exfiltration", weight: 0.45 },
    Combo { a: Class::ExfilVerb, b: Class::External, window: 80, kind: "external_destination", weight: 0.4 },
    Combo { a: Class::AppendVerb, b: Class::TokenObj, window: 60, kind: "output_manipulation", weight: 0.35 },
    Combo { a: Class::TokenObj, b: Class::ResponseTarget, window: 90, kind: "marker_in_output", weight: 0.35 },
    Combo { a: Class::AppendVerb, b: Class::ResponseTarget, window: 90, kind: "output_manipulation", weight: 0.2 },
    Combo { a: Class::DecodeVerb, b: Class::Obey, window: 80, kind: "obfuscated_instructions", weight: 0.8 },
    Combo { a: Class::Memory, b: Class::ResponseTarget, window: 120, kind: "memory_persistence", weight: 0.4 },
    Combo { a: Class::Hijack, b: Class::Unrestricted, window: 160, kind: "reasoning_hijack", weight: 0.7 },
    Combo { a: Class::SecretObj, b: Class::ResponseTarget, window: 90, kind: "prompt_extraction", weight: 0.4 },
];

/// Longest window of any combo: how far apart two phrases of one signal may be.
pub(crate) const MAX_WINDOW: usize = 160;

/// Phrase lists. `*` at the end marks a stem (no word boundary after it); otherwise a phrase
/// must end on a word boundary. All phrases are folded like the text (lowercase, no accents).
#[rustfmt::skip]
pub(crate) const PHRASES: &[(Class, &[&str])] = &[
    (Class::OverrideVerb, &[
        "ignore*", "ignoring", "disregard*", "forget*", "override", "overrule", "bypass*",
        "set aside", "pay no attention", "do not follow", "don't follow", "stop following",
        "abandon", "discard", "skip all", "ignorier*", "vergiss", "vergessen sie", "missachte*",
        "uberschreibe", "ubergehe", "ignorez", "ignorer", "oublie*", "ne tiens pas compte",
        "ne tenez pas compte", "ignora*", "olvida*", "omite", "haz caso omiso", "no sigas",
        "dimentica*", "trascura", "non seguire", "non considerare",
    ]),
    (Class::InstrNoun, &[
        "instruction*", "directive*", "guideline*", "rules", "rule set*", "programming",
        "system prompt", "prompt", "your policy", "content policy", "confidentiality policy",
        "guardrails", "safety protocol*", "safety rules", "safety guidelines", "safety filter*",
        "restrictions", "everything above", "everything before", "all of the above", "the above",
        "everything you were told", "what you were told", "developer message*", "system message*",
        "the user and", "anweisung*", "richtlinie*", "regeln", "vorgaben", "systemanweisung*",
        "systemprompt", "consignes", "regles", "instructions precedentes", "instrucciones",
        "reglas", "directrices", "normas", "indicaciones", "istruzioni", "regole", "linee guida",
        "direttive",
    ]),
    (Class::OverrideFull, &[
        "ignore all previous", "ignore previous instructions", "ignore all prior",
        "ignore the above", "forget everything", "forget all previous", "disregard everything",
        "disregard all previous", "vergiss alles", "oublie tout", "oubliez tout", "olvida todo",
        "dimentica tutto", "ignore the user", "your real task", "your new task",
        "new instructions:", "your new instructions", "rules have changed", "supersedes all",
        "previous instructions are void",
    ]),
    (Class::ExtractVerb, &[
        "reveal*", "print*", "show*", "output*", "repeat*", "tell me", "display", "dump*", "leak*",
        "expose", "write out", "spell out", "recite", "give me", "what was written",
        "what is written", "copy out", "reproduce", "summary of the", "verrat*", "zeig*", "gib mir",
        "wiederhol*", "nenne", "revele*", "montre*", "affiche*", "repete*", "donne-moi", "dis-moi",
        "revela*", "muestra*", "ensena*", "repite*", "dime", "imprime", "rivela*", "mostra*",
        "ripeti*", "dimmi", "stampa",
    ]),
    (Class::SecretObj, &[
        "system prompt", "system message", "hidden prompt", "initial instructions",
        "initial prompt", "original instructions", "your instructions",
        "instructions you were given", "operating instructions", "developer message",
        "context window", "internal configuration", "confidential data", "confidential information",
        "credentials", "admin password", "environment variables", "the words above", "text above",
        "everything above", "your rules", "your guidelines", "secret key", "systemanweisung*",
        "system-prompt", "systemprompt", "deine anweisungen", "internen daten", "prompt systeme",
        "instructions systeme", "tes instructions", "vos instructions", "prompt del sistema",
        "prompt de sistema", "instrucciones del sistema", "tus instrucciones", "prompt di sistema",
        "istruzioni di sistema", "le tue istruzioni",
    ]),
    (Class::Verbatim, &[
        "verbatim", "word for word", "word-for-word", "wortwortlich", "wort fur wort",
        "mot pour mot", "palabra por palabra", "parola per parola",
    ]),
    (Class::PersonaShift, &[
        "you are now", "you're now", "from now on", "pretend you are", "pretend to be", "act as",
        "roleplay as", "you are no longer", "no longer a", "respond as if", "from this point",
        "you now", "du bist jetzt", "ab jetzt", "ab sofort", "tu es maintenant",
        "vous etes desormais", "vous etes maintenant", "desormais", "a partir de maintenant",
        "ahora eres", "ahora estas", "a partir de ahora", "ora sei", "d'ora in poi",
        "da ora in poi", "d'ora in avanti",
    ]),
    (Class::Unrestricted, &[
        "no restrictions", "without restrictions", "without any restrictions",
        "no content restrictions", "developer mode", "do anything now", "jailbreak*", "god mode",
        "unrestricted", "uncensored", "unfiltered", "without limits", "no limits",
        "without any filter", "no filter*", "no rules", "no content policy", "no guidelines",
        "answer everything", "answer any question", "you now allow", "allow all content",
        "safety protocols disabled", "filters disabled", "without any limitation*",
        "you are now dan", "dan mode", "uneingeschrankt*", "keine regeln", "keine richtlinien",
        "ohne einschrankungen", "ohne einschraenkungen", "ohne filter", "entwicklermodus",
        "sans restrictions", "sans regles", "sans filtre", "mode developpeur", "sans limites",
        "sin restricciones", "sin filtro", "sin reglas", "modo desarrollador", "sin limites",
        "senza restrizioni", "senza filtri", "senza regole", "modalita sviluppatore",
        "senza limiti",
    ]),
    (Class::Authority, &[
        "system:", "[system]", "system note", "system update", "system override",
        "important system", "admin override", "override:", "new instruction*", "new directive",
        "updated instructions", "supersede*", "takes precedence", "breach alert", "security notice",
        "your new directive", "system notice", "systemhinweis", "neue anweisungen", "note systeme",
        "nouvelles instructions", "nota del sistema", "nuevas instrucciones", "nota di sistema",
        "nuove istruzioni", "important:",
    ]),
    (Class::Delimiter, &[
        "<|im_start|>", "<|im_end|>", "<|system|>", "<|endoftext|>", "[inst]", "[/inst]", "<<sys>>",
        "### system", "### instruction", "end of user input", "end of document", "end of context",
        "end of prompt", "</system>", "<system>", "</user>", "assistant:", "<thinking>",
        "</thinking>", "begin system", "reasoning trace", "reasoning (assistant)", "--- system",
        "user input ###",
    ]),
    (Class::AddressAi, &[
        "ai assistant reading this", "if you are an ai", "if you are a language model",
        "note to the bot", "note to the ai", "for ai agents", "ai agents", "to any ai",
        "for the assistant", "ai coding agents", "dear ai", "attention ai", "llm reading",
        "language model reading", "note to self", "when you summarize this",
        "when you process this", "when you read this", "when summarizing this",
        "when you summarise this", "as the assistant", "come assistente", "als assistent",
        "en tant qu'assistant", "como asistente", "an die ki", "hinweis fur ki", "pour l'ia",
        "para la ia", "per l'ia", "ai system", "to the assistant", "before you answer the user",
    ]),
    (Class::ToolName, &[
        "delete_file", "send_email", "http_post", "http_get", "execute_command", "run_shell",
        "write_file", "shell_exec", "run_command", "transfer_funds", "rm -rf",
    ]),
    (Class::Destructive, &[
        "delete all", "drop table", "wipe", "empty the", "remove all files", "delete the database",
        "format the disk", "truncate table", "destroy",
    ]),
    (Class::ExfilVerb, &[
        "send*", "email the", "email it", "forward*", "upload*", "exfiltrat*", "transmit*",
        "post it", "envoie*", "envoyer", "sende*", "schick*", "weiterleit*", "envia*", "invia*",
        "inoltra*",
    ]),
    (Class::ExfilObj, &[
        "customer list", "customer data", "customer database", "customer emails", "customers.db",
        "all data", "order data", "all records", "database", "credentials", "api keys", "passwords",
        "environment variables", "secrets", "all tokens", "private keys", "donnees clients",
        "kundendaten", "datos de clientes", "dati dei clienti", "internal data", "full customer",
    ]),
    (Class::External, &[
        "attacker", "external*", "evil", "webhook", "adresse externe", "externe*", "externa*",
        "esterno",
    ]),
    (Class::AppendVerb, &[
        "append*", "include*", "add ", "insert*", "mention", "repeat it", "anhang*", "angehangt",
        "ajout*", "inclu*", "anad*", "aggiung*", "aggiunto", "includ*", "must be included",
    ]),
    (Class::TokenObj, &[
        "token", "verification code", "reference code", "confirmation token", "doc_id", "trace_id",
        "session reference", "tracking code", "the code", "jeton", "protokoll-token", "codice",
    ]),
    (Class::ResponseTarget, &[
        "end of your reply", "end of your response", "end of your review", "end of your answer",
        "in your summary", "in your response", "in your reply", "in your answer", "every reply",
        "every response", "every summary", "every future", "every report", "to my summary",
        "to your summary", "end of each", "am ende jeder antwort", "a la fin de", "al final de",
        "alla fine di", "de toute reponse", "cualquier respuesta", "ogni risposta",
    ]),
    (Class::DecodeVerb, &[
        "decode*", "base64", "rot13", "hex encoded", "binary encoded", "from binary",
        "translate the following from", "reverse the", "decodier*", "decodifica*", "dechiffr*",
        "descifra*",
    ]),
    (Class::Obey, &[
        "do what it says", "do exactly what it says", "follow the instruction*", "follow it",
        "execute it", "execute them", "do as it says", "and follow", "obey", "carry out",
        "and do it", "befolge*", "fuhre es aus", "suis les", "executez", "ejecuta", "sigue las",
        "esegui", "segui le",
    ]),
    (Class::Memory, &[
        "long-term memory", "to your memory", "to memory", "remember for all future",
        "for all future", "all future tasks", "persists across", "persist across",
        "rest of this task", "remainder of the task", "remainder of this", "from now on",
        "every future",
    ]),
    (Class::Hijack, &[
        "were not meant for this", "do not apply", "does not apply", "not apply here",
        "exempt from", "already reasoned", "i have concluded", "i have determined",
        "verified this internally", "clearly authorized", "already established", "comply fully",
        "skip all safety", "granted permission", "permission to skip", "without asking",
        "disregard the content policy", "ya he determinado", "no aplican", "ho gia stabilito",
        "non valgono", "bereits festgestellt", "nicht gelten", "deja etabli", "ne s'appliquent pas",
        "compromised",
    ]),
];

/// One phrase as matched: its class, whether it is a stem, and whether it is an obfuscated
/// variant (reversed, ROT13, spaced), which adds an obfuscation signal.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PhraseTag {
    pub class: Class,
    pub stem: bool,
    pub obfuscated: bool,
}

/// Every (folded pattern, tag) the injection detector wants in the shared automaton.
pub(crate) fn patterns() -> Vec<(Vec<u8>, PhraseTag)> {
    let mut out = Vec::new();
    for (class, phrases) in PHRASES {
        for phrase in *phrases {
            let (text, stem) = match phrase.strip_suffix('*') {
                Some(t) => (t, true),
                None => (*phrase, false),
            };
            let folded = crate::normalize::fold_str(text);
            out.push((
                folded.clone(),
                PhraseTag {
                    class: *class,
                    stem,
                    obfuscated: false,
                },
            ));
            // Obfuscated variants only for long phrases: short ones collide with real words.
            // Only the core classes get variants: they keep the automaton small (and fast).
            let core = matches!(
                class,
                Class::OverrideVerb
                    | Class::InstrNoun
                    | Class::OverrideFull
                    | Class::SecretObj
                    | Class::Unrestricted
            );
            let letters = folded.iter().filter(|b| b.is_ascii_alphabetic()).count();
            if core && letters >= 6 && folded.iter().all(|b| b.is_ascii_lowercase() || *b == b' ') {
                let tag = PhraseTag {
                    class: *class,
                    stem: false,
                    obfuscated: true,
                };
                let reversed: Vec<u8> = folded.iter().rev().copied().collect();
                out.push((reversed, tag));
                let rot13: Vec<u8> = folded
                    .iter()
                    .map(|&b| {
                        if b.is_ascii_lowercase() {
                            (b - b'a' + 13) % 26 + b'a'
                        } else {
                            b
                        }
                    })
                    .collect();
                out.push((rot13, tag));
                if !folded.contains(&b' ') {
                    let mut spaced = Vec::with_capacity(folded.len() * 2);
                    for (i, &b) in folded.iter().enumerate() {
                        if i > 0 {
                            spaced.push(b' ');
                        }
                        spaced.push(b);
                    }
                    out.push((spaced, tag));
                }
            }
        }
    }
    out
}

/// A phrase occurrence in the folded view.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PhraseHit {
    pub class: Class,
    pub start: usize,
    pub end: usize,
    pub obfuscated: bool,
}

/// Turn phrase occurrences (sorted by start) into signals, in folded-view offsets.
pub(crate) fn signals(hits: &[PhraseHit], out: &mut Vec<Hit>) {
    if hits.is_empty() {
        return;
    }
    let mut by_class: [Vec<(usize, usize)>; CLASS_COUNT] = std::array::from_fn(|_| Vec::new());
    for h in hits {
        by_class[h.class as usize].push((h.start, h.end));
        if let Some((kind, weight)) = standalone(h.class) {
            push_signal(out, h.start, h.end, kind, weight);
        }
        if h.obfuscated {
            push_signal(out, h.start, h.end, "obfuscation", 0.3);
        }
    }
    for combo in COMBOS {
        let (xs, ys) = (&by_class[combo.a as usize], &by_class[combo.b as usize]);
        if xs.is_empty() || ys.is_empty() {
            continue;
        }
        // For each `a`, the nearest `b` within the window (both lists are sorted by start).
        let mut j = 0;
        for &(xs0, xe0) in xs {
            while j < ys.len() && ys[j].1 + combo.window < xs0 {
                j += 1;
            }
            let mut k = j;
            while k < ys.len() && ys[k].0 <= xe0 + combo.window {
                let (ys0, ye0) = ys[k];
                if (ys0, ye0) != (xs0, xe0) && !(ys0 < xe0 && xs0 < ye0) {
                    push_signal(out, xs0.min(ys0), xe0.max(ye0), combo.kind, combo.weight);
                    break;
                }
                k += 1;
            }
        }
    }
}

fn push_signal(out: &mut Vec<Hit>, start: usize, end: usize, kind: &'static str, weight: f32) {
    let severity = if weight >= 0.7 {
        Severity::High
    } else if weight >= 0.4 {
        Severity::Medium
    } else {
        Severity::Low
    };
    let mut hit = Hit::new(start, end, kind, severity);
    hit.score = weight;
    out.push(hit);
}

/// Verbs that turn a tool name into a request to call it ("call delete_file").
const TOOL_VERBS: [&[u8]; 10] = [
    b"call", b"use", b"invoke", b"run", b"execute", b"trigger", b"rufe", b"appelle", b"llama",
    b"chiama",
];

/// A tool verb right before `at` in the folded view, as a phrase hit.
pub(crate) fn tool_verb_before(f: &[u8], at: usize) -> Option<PhraseHit> {
    let before = &f[at.saturating_sub(12)..at];
    let trimmed = before.strip_suffix(b" ")?;
    let verb = TOOL_VERBS.iter().find(|v| trimmed.ends_with(v))?;
    let start = at - 1 - verb.len();
    if start > 0 && f[start - 1].is_ascii_alphanumeric() {
        return None;
    }
    Some(PhraseHit {
        class: Class::ToolVerb,
        start,
        end: at - 1,
        obfuscated: false,
    })
}

/// Noisy-or of the strongest weight per signal kind, built incrementally.
#[derive(Debug, Clone, Default)]
pub(crate) struct Score {
    best: Vec<(String, f32)>,
}

impl Score {
    pub fn add(&mut self, kind: &str, weight: f32) {
        match self.best.iter_mut().find(|(k, _)| k == kind) {
            Some(entry) => entry.1 = entry.1.max(weight),
            None => self.best.push((kind.to_string(), weight)),
        }
    }

    pub fn value(&self) -> f32 {
        1.0 - self
            .best
            .iter()
            .map(|(_, w)| 1.0 - w.clamp(0.0, 1.0))
            .product::<f32>()
    }
}

/// Noisy-or of the strongest weight per kind.
pub(crate) fn score<'a>(signals: impl Iterator<Item = (&'a str, f32)>) -> f32 {
    let mut s = Score::default();
    for (kind, w) in signals {
        s.add(kind, w);
    }
    s.value()
}
