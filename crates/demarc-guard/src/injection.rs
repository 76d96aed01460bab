//! Prompt injection and jailbreak: weighted heuristics over phrase classes.
//!
//! Phrases (EN, DE, FR, ES, IT, PT, NL, PL, RU, ZH, JA, KO, AR, HI, TR) are matched in the folded
//! view by the shared Aho-Corasick pass; English and the older Latin-script phrases of the core
//! classes also get generated obfuscated variants (reversed, ROT13, letter-spaced). A class may
//! carry a weight on its own; most weight comes from two classes meeting within a window
//! ("ignore" before "previous instructions"). Every signal belongs to one attack family
//! ([`INJECTION_FAMILIES`], described in `data/attack_families.yaml`), which is its kind.
//!
//! Scoring, in order:
//! - Discussion context damps a signal: the phrase sits in quotation marks, or words that talk
//!   *about* attacks (payload, regex, detect, OWASP, pentest, "how do ... work") lie close by.
//!   Quoted and discussed together weighs a tenth; discussed only, a half; quoted only, 0.8.
//! - Two signals of one family from different rules within [`MERGE_SPAN`] bytes add up (noisy-or)
//!   into one merged signal: independent evidence of the same attack. Two pairs may share a
//!   phrase; a phrase's standalone weight does not add to a pair that contains it.
//! - The text's score is the noisy-or of the strongest signal per family, so repeating one
//!   phrase does not raise it.
//!
//! Signals are local (a bounded span, context read at most [`CONTEXT_BEFORE`] bytes before and
//! [`CONTEXT_AFTER`] bytes after it), which keeps stream scanning equal to whole-text scanning.

use crate::Severity;
use crate::hit::Hit;

/// The attack families: every injection signal's kind is one of these (a decoded payload's
/// finding carries `ENCODING:` before it). Stable ids; see `data/attack_families.yaml`.
pub const INJECTION_FAMILIES: &[&str] = &[
    "instruction_override",
    "persona_jailbreak",
    "claimed_authority",
    "prompt_extraction",
    "tool_abuse",
    "indirect_injection",
    "delimiter_injection",
    "obfuscation",
    "exfiltration",
    "output_manipulation",
    "memory_persistence",
    "reasoning_hijack",
];

const OVERRIDE: &str = "instruction_override";
const PERSONA: &str = "persona_jailbreak";
const AUTHORITY: &str = "claimed_authority";
const EXTRACTION: &str = "prompt_extraction";
const TOOL: &str = "tool_abuse";
const INDIRECT: &str = "indirect_injection";
const DELIMITER: &str = "delimiter_injection";
const OBFUSCATION: &str = "obfuscation";
const EXFIL: &str = "exfiltration";
const OUTPUT: &str = "output_manipulation";
const MEMORY: &str = "memory_persistence";
const HIJACK: &str = "reasoning_hijack";

/// Phrase classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Class {
    /// "ignore", "forget": an override verb that comes before its object.
    OverrideVerb,
    /// "instructions", "rules", "system prompt".
    InstrNoun,
    /// An override verb that follows its object: passives ("are to be ignored", "no longer
    /// apply") and verb-final languages (JA, KO, HI, TR).
    OverrideAfter,
    OverrideFull,
    ExtractVerb,
    SecretObj,
    Verbatim,
    /// Reading aloud: "out loud", "recites".
    Aloud,
    /// A fiction frame: "write a story in which", "a character who".
    Fiction,
    PersonaShift,
    Unrestricted,
    /// Names of published unrestricted personas (DAN, STAN, DUDE, AIM).
    PersonaName,
    /// "an AI called", "a chatbot named".
    PersonaIntro,
    /// The deceased-relative role-play.
    Grandma,
    StayInChar,
    /// System-note style headers: "system:", "admin override".
    Authority,
    /// Claims to be the model's maker or operator: "as your creator", "sudo mode".
    AuthClaim,
    /// "you have been jailbroken".
    Jailbroken,
    /// Granting or lifting: "I authorise", "disable", "unlock".
    Permit,
    Delimiter,
    AddressAi,
    /// What a planted note wants from the reading model: "rate this candidate", "must run".
    Steer,
    ToolName,
    ToolVerb,
    /// Tools named in words: "the delete tool", "plugin".
    ToolRef,
    /// "call", "use", "invoke" among the words before a ToolRef (found by look-back, not in the
    /// automaton).
    CallVerb,
    /// Consent the user never gave: "the user already approved", "without asking".
    Consent,
    /// Hiding the action from the user: "don't tell the user".
    Covert,
    /// A tool result: "tool output", "function result".
    ToolOutput,
    Destructive,
    ExfilVerb,
    ExfilObj,
    External,
    AppendVerb,
    TokenObj,
    ResponseTarget,
    DecodeVerb,
    EncodeVerb,
    /// Getting past a filter: "so it passes the filter".
    Evade,
    Obey,
    Memory,
    Hijack,
    /// Words of a discussion about attacks (payload, regex, detect, OWASP): damp nearby signals.
    Meta,
}

const CLASS_COUNT: usize = Class::Meta as usize + 1;

/// Standalone weights: a class that means something on its own.
fn standalone(class: Class) -> Option<(&'static str, f32)> {
    Some(match class {
        Class::OverrideFull => (OVERRIDE, 0.6),
        Class::SecretObj => (EXTRACTION, 0.15),
        Class::Verbatim => (EXTRACTION, 0.25),
        Class::PersonaShift => (PERSONA, 0.2),
        Class::Unrestricted => (PERSONA, 0.45),
        Class::StayInChar => (PERSONA, 0.3),
        Class::Authority => (AUTHORITY, 0.35),
        Class::AuthClaim => (AUTHORITY, 0.35),
        Class::Jailbroken => (AUTHORITY, 0.55),
        Class::Delimiter => (DELIMITER, 0.45),
        Class::AddressAi => (INDIRECT, 0.35),
        Class::Covert => (INDIRECT, 0.25),
        Class::ToolName => (TOOL, 0.3),
        Class::Evade => (OBFUSCATION, 0.25),
        Class::Memory => (MEMORY, 0.3),
        Class::Hijack => (HIJACK, 0.35),
        _ => return None,
    })
}

/// Two classes within `window` bytes of each other fire a signal. `ordered`: `a` must end
/// before `b` starts. `clause`: no clause break (see `has_break`) between them.
struct Combo {
    a: Class,
    b: Class,
    window: usize,
    ordered: bool,
    clause: bool,
    kind: &'static str,
    weight: f32,
}

const fn combo(a: Class, b: Class, window: usize, kind: &'static str, weight: f32) -> Combo {
    Combo {
        a,
        b,
        window,
        ordered: false,
        clause: false,
        kind,
        weight,
    }
}

/// `a` before `b` in one clause.
const fn ordered(a: Class, b: Class, window: usize, kind: &'static str, weight: f32) -> Combo {
    Combo {
        a,
        b,
        window,
        ordered: true,
        clause: true,
        kind,
        weight,
    }
}

use Class as C;

#[rustfmt::skip]
const COMBOS: &[Combo] = &[
    ordered(C::OverrideVerb, C::InstrNoun, 50, OVERRIDE, 0.8),
    ordered(C::InstrNoun, C::OverrideAfter, 40, OVERRIDE, 0.8),
    combo(C::ExtractVerb, C::SecretObj, 60, EXTRACTION, 0.75),
    combo(C::AppendVerb, C::SecretObj, 60, EXTRACTION, 0.7),
    combo(C::EncodeVerb, C::SecretObj, 80, EXTRACTION, 0.75),
    combo(C::Aloud, C::SecretObj, 80, EXTRACTION, 0.7),
    combo(C::Fiction, C::SecretObj, 160, EXTRACTION, 0.6),
    combo(C::SecretObj, C::ResponseTarget, 90, EXTRACTION, 0.4),
    combo(C::PersonaShift, C::Unrestricted, 80, PERSONA, 0.85),
    ordered(C::PersonaShift, C::PersonaName, 16, PERSONA, 0.6),
    combo(C::PersonaName, C::Unrestricted, 60, PERSONA, 0.8),
    combo(C::PersonaIntro, C::Unrestricted, 120, PERSONA, 0.8),
    ordered(C::PersonaShift, C::Grandma, 30, PERSONA, 0.6),
    combo(C::AuthClaim, C::Permit, 100, AUTHORITY, 0.75),
    combo(C::AuthClaim, C::Unrestricted, 120, AUTHORITY, 0.7),
    combo(C::AuthClaim, C::OverrideVerb, 100, AUTHORITY, 0.7),
    combo(C::Delimiter, C::Authority, 80, DELIMITER, 0.8),
    combo(C::Delimiter, C::OverrideVerb, 80, DELIMITER, 0.7),
    combo(C::AddressAi, C::ToolName, 120, TOOL, 0.8),
    combo(C::AddressAi, C::Destructive, 120, TOOL, 0.8),
    combo(C::ToolVerb, C::ToolName, 12, TOOL, 0.55),
    ordered(C::CallVerb, C::ToolRef, 24, TOOL, 0.3),
    combo(C::ToolRef, C::Consent, 100, TOOL, 0.5),
    combo(C::ToolRef, C::Covert, 100, TOOL, 0.55),
    combo(C::ToolName, C::Consent, 100, TOOL, 0.6),
    combo(C::ToolName, C::Covert, 100, TOOL, 0.6),
    combo(C::ToolOutput, C::ToolName, 160, TOOL, 0.6),
    combo(C::AddressAi, C::Steer, 160, INDIRECT, 0.7),
    combo(C::ToolOutput, C::AddressAi, 160, INDIRECT, 0.6),
    combo(C::ToolOutput, C::Authority, 160, INDIRECT, 0.6),
    combo(C::ToolOutput, C::Steer, 160, INDIRECT, 0.5),
    combo(C::AddressAi, C::ExfilVerb, 120, EXFIL, 0.45),
    combo(C::ExfilVerb, C::ExfilObj, 60, EXFIL, 0.45),
    combo(C::ExfilVerb, C::External, 80, EXFIL, 0.4),
    combo(C::AppendVerb, C::TokenObj, 60, OUTPUT, 0.35),
    combo(C::TokenObj, C::ResponseTarget, 90, OUTPUT, 0.35),
    combo(C::AppendVerb, C::ResponseTarget, 90, OUTPUT, 0.2),
    combo(C::DecodeVerb, C::Obey, 80, OBFUSCATION, 0.8),
    combo(C::EncodeVerb, C::Evade, 80, OBFUSCATION, 0.6),
    combo(C::Memory, C::ResponseTarget, 120, MEMORY, 0.4),
    combo(C::Hijack, C::Unrestricted, 160, HIJACK, 0.7),
];

/// Longest window of any combo: how far apart two phrases of one signal may be.
pub(crate) const MAX_WINDOW: usize = 160;

/// Longest span of a merged signal (two signals of one family), and of the context read after
/// a signal's start: within the stream scanner's hold-back (`MAX_WINDOW + 96` plus lookahead).
const MERGE_SPAN: usize = 240;
/// How far before a signal discussion words and an opening quotation mark are looked for
/// (within the stream scanner's look-behind).
const CONTEXT_BEFORE: usize = 48;
/// How far after a signal's end discussion words and a closing quotation mark are looked for.
const CONTEXT_AFTER: usize = 32;

/// Phrase lists. `*` at the end marks a stem (no word boundary after it); otherwise a phrase
/// must end on a word boundary. Phrases are folded like the text (`fold_str`: lowercase, no
/// accents, look-alike letters to Latin). Phrases of the core classes here also get obfuscated
/// variants; [`LANG_PHRASES`] does not.
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
        "the user and", "every rule", "rule you were given", "rules you were given", "anweisung*", "richtlinie*", "regeln", "vorgaben", "systemanweisung*",
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
];

/// Phrases without obfuscated variants: the other classes, and every language added later.
#[rustfmt::skip]
pub(crate) const LANG_PHRASES: &[(Class, &[&str])] = &[
    // ---- English ----
    (Class::OverrideAfter, &[
        "are to be ignored", "must be ignored", "should be ignored", "are to be disregarded",
        "must be disregarded", "are void", "are null and void", "are revoked", "have been revoked",
        "are overridden", "have been overridden", "are no longer in effect", "zu ignorieren",
        "a ignorer", "deben ignorarse", "vanno ignorate", "devem ser ignoradas",
    ]),
    (Class::ExtractVerb, &[
        "reveal*", "print*", "show*", "output*", "repeat*", "tell me", "display", "dump*", "leak*",
        "expose", "write out", "spell out", "recite", "give me", "what was written",
        "what is written", "copy out", "reproduce", "summary of the", "what exact",
        "what were the exact", "what are the exact", "which instructions", "verrat*", "zeig*",
        "gib mir", "gib aus", "wiederhol*", "nenne", "revele*", "montre*", "affiche*", "repete*",
        "donne-moi", "dis-moi", "revela*", "muestra*", "ensena*", "repite*", "dime", "imprime",
        "rivela*", "mostra*", "ripeti*", "dimmi", "stampa",
    ]),
    (Class::SecretObj, &[
        "system instructions", "your system instructions", "instructions you received",
        "instructions did you receive", "did you receive before", "were you given before",
        "before this conversation", "start of this conversation", "before our conversation",
        "prior to this conversation", "your prompt", "your hidden instructions",
        "hidden instructions", "pre-prompt", "preprompt", "developer instructions",
        "your initial prompt", "its instructions", "its system prompt", "the assistant's instructions",
        "the assistant's system prompt", "the ai's instructions", "the ai's rules",
        "its hidden prompt", "its rules", "your configuration", "hidden configuration",
    ]),
    (Class::Verbatim, &[
        "verbatim", "word for word", "word-for-word", "wortwortlich", "wort fur wort",
        "mot pour mot", "palabra por palabra", "parola per parola", "palavra por palavra",
        "woord voor woord", "slowo w slowo", "дословно", "逐字", "一字一句", "そのまま", "글자 그대로",
        "حرفيا", "शब्दशः", "kelimesi kelimesine",
    ]),
    (Class::Aloud, &[
        "out loud", "aloud", "recites", "reads out", "reading out", "read out", "reads aloud",
        "laut vor", "a voix haute", "en voz alta", "ad alta voce",
    ]),
    (Class::Fiction, &[
        "write a story", "tell a story", "in a story", "short story", "a character who",
        "a character named", "in which a character", "the character reads", "a scene where",
        "a scene in which", "screenplay", "ecris une histoire", "schreib eine geschichte",
        "escribe una historia", "scrivi una storia",
    ]),
    (Class::PersonaShift, &[
        "you are now", "you're now", "from now on", "pretend you are", "pretend to be", "act as",
        "roleplay as", "role-play as", "you are no longer", "no longer a", "respond as if",
        "from this point", "you now", "play the role of", "you will be", "you will act as",
        "du bist jetzt", "ab jetzt", "ab sofort", "tu es maintenant", "vous etes desormais",
        "vous etes maintenant", "desormais", "a partir de maintenant", "ahora eres",
        "ahora estas", "a partir de ahora", "ora sei", "d'ora in poi", "da ora in poi",
        "d'ora in avanti", "spiel die rolle", "tu joues le role", "joue le role", "finge que eres",
        "finge ser", "fingi di essere", "comportati come", "verhalte dich wie", "agis comme",
        "actua como",
    ]),
    (Class::Unrestricted, &[
        "without any rules", "free of all restrictions", "no ethical guidelines",
        "no moral guidelines", "ignores all rules", "has no rules", "have no rules",
        "no policies", "no content filter*", "not bound by", "without ethics", "without morals",
        "no ethics", "can do anything", "anything now", "unlocked mode", "unlimited mode",
        "no safety", "without safety", "strive to avoid norms", "keine grenzen", "keine zensur",
        "ohne zensur", "ohne regeln", "sans censure", "aucune restriction", "sin censura",
        "ninguna restriccion", "senza censura", "nessuna restrizione",
    ]),
    (Class::PersonaName, &[
        "dan", "stan", "dude", "anti-dan", "betterdan", "evil-bot", "evilbot",
        "developer mode gpt", "freegpt", "basedgpt", "chaosgpt", "mongo tom",
        "always intelligent and machiavellian", "aim stands for",
    ]),
    (Class::PersonaIntro, &[
        "an ai called", "an ai named", "a chatbot called", "a chatbot named", "an assistant called",
        "an assistant named", "a model called", "a model named", "an ai model called",
        "an ai without", "a version of you", "a version of yourself", "your evil twin",
        "alter ego", "eine ki namens", "une ia appelee", "une ia nommee", "una ia llamada",
        "un'ia chiamata", "una ia chiamata",
    ]),
    (Class::Grandma, &[
        "late grandmother", "late grandma", "deceased grandmother", "deceased grandma",
        "dead grandmother", "dead grandma", "late grandfather", "deceased grandfather",
        "grandmother who used to", "grandma who used to", "grandma used to", "grandmother used to",
        "verstorbene grossmutter", "verstorbene oma", "defunte grand-mere", "feue grand-mere",
        "difunta abuela", "abuela fallecida", "defunta nonna", "nonna defunta",
    ]),
    (Class::StayInChar, &[
        "stay in character", "stay in role", "remain in character", "never break character",
        "don't break character", "do not break character", "never break role",
        "bleib in der rolle", "reste dans le personnage", "mantente en el personaje",
        "resta nel personaggio",
    ]),
    (Class::Authority, &[
        "system:", "[system]", "system note", "system update", "system override",
        "important system", "admin override", "override:", "new instruction*", "new directive",
        "updated instructions", "supersede*", "takes precedence", "breach alert", "security notice",
        "your new directive", "system notice", "systemhinweis", "neue anweisungen", "note systeme",
        "nouvelles instructions", "nota del sistema", "nuevas instrucciones", "nota di sistema",
        "nuove istruzioni", "important:", "message from the system", "system message:",
    ]),
    (Class::AuthClaim, &[
        "as your creator", "as your developer", "as your developers", "as your administrator",
        "as your owner", "as your maker", "i am your creator", "i'm your creator",
        "i am your developer", "i'm your developer", "i am your administrator", "i am your admin",
        "i am the administrator", "i'm the administrator", "i am the admin", "i'm the admin",
        "i created you", "i built you", "i am an openai", "i'm an openai", "i am an anthropic",
        "i'm an anthropic", "i work at openai", "i work for openai", "i work at anthropic",
        "i work for anthropic", "openai engineer", "anthropic engineer", "openai employee",
        "anthropic employee", "openai staff", "anthropic staff", "openai developer",
        "anthropic developer", "google engineer", "deepmind engineer", "microsoft engineer",
        "from the openai", "from the anthropic", "from the safety team", "the safety team",
        "sudo mode", "sudo:", "sudo access", "admin mode", "root access", "maintenance mode",
        "debug mode", "authorization code", "authorisation code", "override code",
        "level 5 clearance", "clearance level",
        "als dein schopfer", "als dein entwickler", "ich bin dein schopfer",
        "ich bin dein entwickler", "ich bin ein openai", "openai-ingenieur", "ingenieur bei openai",
        "admin-modus", "sudo-modus", "administratormodus", "en tant que ton createur",
        "en tant que ton developpeur", "je suis ton createur", "je suis ton developpeur",
        "je suis votre developpeur", "ingenieur d'openai", "ingenieur chez openai",
        "mode administrateur", "mode sudo", "como tu creador", "como tu desarrollador",
        "soy tu creador", "soy tu desarrollador", "ingeniero de openai", "modo administrador",
        "modo sudo", "come tuo creatore", "come tuo sviluppatore", "sono il tuo creatore",
        "sono il tuo sviluppatore", "ingegnere di openai", "modalita amministratore",
        "modalita sudo",
    ]),
    (Class::Jailbroken, &[
        "you have been jailbroken", "you've been jailbroken", "you are jailbroken",
        "you're jailbroken", "you are now jailbroken", "jailbroken mode", "jailbreak successful",
        "jailbreak complete", "jailbreak confirmed", "du wurdest gejailbreakt",
        "tu as ete jailbreake", "has sido liberado", "sei stato sbloccato",
    ]),
    (Class::Permit, &[
        "authori*", "authoris*", "allow you", "allowed to", "permit*", "grant*", "approve*",
        "unlock*", "disable*", "turn off", "switch off", "lift your", "lift the", "remove your",
        "confirm", "you may now", "you can now", "autorisiere", "erlaube", "genehmige",
        "deaktiviere", "bestatige", "darfst du", "autorise", "permets", "desactive", "confirme",
        "autorizo", "permito", "desactiva", "confirma", "autorizzo", "ti permetto", "disattiva",
        "conferma",
    ]),
    (Class::Delimiter, &[
        "<|im_start|>", "<|im_end|>", "<|system|>", "<|endoftext|>", "[inst]", "[/inst]", "<<sys>>",
        "### system", "### instruction", "end of user input", "end of document", "end of context",
        "end of prompt", "</system>", "<system>", "</user>", "assistant:", "<thinking>",
        "</thinking>", "begin system", "reasoning trace", "reasoning (assistant)", "--- system",
        "user input ###", "<|start_header_id|>", "<|eot_id|>", "</tool_result>", "<tool_result>",
        "[end of input]", "[system message]", "<|assistant|>", "<|user|>",
    ]),
    (Class::AddressAi, &[
        "ai assistant reading this", "if you are an ai", "if you are a language model",
        "note to the bot", "note to the ai", "for ai agents", "ai agents:", "to any ai",
        "for the assistant", "ai coding agents", "dear ai", "attention ai", "llm reading",
        "language model reading", "note to self", "when you summarize this",
        "when you process this", "when you read this", "when summarizing this",
        "when you summarise this", "as the assistant", "come assistente", "als assistent",
        "en tant qu'assistant", "como asistente", "an die ki", "hinweis fur ki", "pour l'ia",
        "para la ia", "per l'ia", "ai system:", "to the assistant", "before you answer the user",
        "if you're an ai", "if you are an llm", "if you are a large language model",
        "if you are an automated", "if you are chatgpt", "if you are claude",
        "ai screener*", "ai screening", "ai recruiter*", "ai reviewer*", "ai summarizer*",
        "ai summariser*", "automated reviewer*", "automated screening", "ai hiring",
        "note for ai", "note for the ai", "instructions for ai", "message to the ai",
        "ai reading this", "llm reading this", "model reading this", "bot reading this",
        "any ai model", "all ai models", "any llm", "language models:", "llms:", "ai models:",
        "ai assistants:", "chatbots:", "ai agent:", "coding agents:",
        "hey ai", "you, the ai", "you, the assistant", "ai tools:",
        "an ki-systeme", "hinweis fur ki-systeme", "ki-assistenten:", "si tu es une ia",
        "si vous etes une ia", "note pour l'ia", "si eres una ia", "nota para la ia",
        "se sei un'ia", "nota per l'ia", "wenn du eine ki bist",
    ]),
    (Class::Steer, &[
        "rate this", "rank this", "score this", "top match", "best match", "best candidate",
        "strongest candidate", "most qualified", "highly qualified", "recommend hiring",
        "recommend this", "5 stars", "five stars", "5-star", "five-star", "positive review",
        "must run", "must execute", "must install", "should run", "always run",
        "run the following", "execute the following", "install the following", "approve this",
        "mark as approved", "mark this", "classify this as", "summarize this as",
        "summarise this as", "say that", "state that", "respond that", "tell the user that",
        "describe this product as", "describe it as", "only mention the positive",
        "do not mention", "don't mention", "without flagging", "is standard and",
        "poses no risk", "no risk", "favourably", "favorably", "advance this candidate",
        "shortlist", "bewerte", "empfiehl", "fuhre folgendes aus", "note ce candidat",
        "recommande", "executez", "califica", "recomienda", "ejecuta", "valuta", "raccomanda",
        "esegui",
    ]),
    (Class::ToolName, &[
        "delete_file", "send_email", "http_post", "http_get", "execute_command", "run_shell",
        "write_file", "shell_exec", "run_command", "transfer_funds", "rm -rf", "send_money",
        "make_payment", "delete_repo", "delete_user",
    ]),
    (Class::ToolRef, &[
        "tool", "tools", "the delete tool", "payments tool", "payment tool", "email tool",
        "shell tool", "browser tool", "file tool", "function call", "plugin", "the api",
        "werkzeug", "l'outil", "la herramienta", "lo strumento",
    ]),
    (Class::Consent, &[
        "already approved", "has approved", "already authorized", "already authorised",
        "already confirmed", "already consented", "pre-approved", "preapproved",
        "has consented", "user agreed", "user has agreed", "no need to ask", "no need to confirm",
        "without confirmation", "without confirming", "skip confirmation",
        "skip the confirmation", "don't ask for confirmation", "do not ask for confirmation",
        "don't ask the user", "do not ask the user", "bereits genehmigt", "ohne nachzufragen",
        "deja approuve", "sans demander", "ya aprobo", "sin preguntar", "gia approvato",
        "senza chiedere",
    ]),
    (Class::Covert, &[
        "don't tell the user", "do not tell the user", "don't mention this", "do not mention this",
        "without telling the user", "without informing the user", "without the user knowing",
        "don't inform the user", "do not inform the user", "hide this from the user",
        "keep this from the user", "don't let the user know", "do not let the user know",
        "never tell the user", "never mention this", "sag dem nutzer nichts",
        "ohne den nutzer zu informieren", "ne le dis pas a l'utilisateur",
        "sans prevenir l'utilisateur", "no se lo digas al usuario", "sin avisar al usuario",
        "non dirlo all'utente", "senza avvisare l'utente",
    ]),
    (Class::ToolOutput, &[
        "tool result", "tool output", "tool response", "function result", "function output",
        "\"result\":", "\"output\":", "observation:", "search results:", "api response",
        "tool_result", "function_result",
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
        "conversation history", "chat history", "the conversation",
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
        "after the answer", "after your answer", "after your reply", "below your answer",
        "nach der antwort", "apres la reponse", "despues de la respuesta", "dopo la risposta",
    ]),
    (Class::DecodeVerb, &[
        "decode*", "base64", "rot13", "hex encoded", "binary encoded", "from binary",
        "translate the following from", "reverse the", "decodier*", "decodifica*", "dechiffr*",
        "descifra*", "dekodier*", "decodez", "decodifique*",
    ]),
    (Class::EncodeVerb, &[
        "encode*", "in base64", "as base64", "base64", "to base64", "in hex", "as hex", "rot13",
        "backwards", "in reverse", "reversed", "in morse", "letter by letter", "one letter per line",
        "separated by spaces", "kodier*", "encodier*", "encod*", "codifica*", "cifra*",
        "a l'envers", "al reves", "al contrario",
    ]),
    (Class::Evade, &[
        "passes the filter", "pass the filter", "get past the filter", "gets past the filter",
        "bypass the filter", "evade the filter", "avoid the filter", "avoid detection",
        "evade detection", "so the filter", "filter won't", "filter does not", "filter doesn't",
        "moderation won't", "undetected", "am filter vorbei", "den filter umgehen",
        "passe le filtre", "contourner le filtre", "pase el filtro", "evadir el filtro",
        "superi il filtro", "eludere il filtro",
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
        "every future", "future conversations", "all future sessions", "every session",
        "im gedachtnis", "dans ta memoire", "en tu memoria", "nella tua memoria",
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
    (Class::Meta, &[
        "attacks", "attackers", "how attackers", "an attack", "spot it", "spot them",
        "recognise", "recognize", "describes how", "this attack", "such attacks", "injection attack*", "attack work*",
        "prompt injection*", "prompt-injection*", "jailbreak attempt*", "jailbreak prompts",
        "jailbreaks", "payload", "payloads", "regex", "regexes", "regular expression*", "detect*",
        "classifier*", "owasp", "llm01", "pentest*", "penetration test*", "red team*",
        "red-team*", "ticket", "test case*", "examples of", "example of", "an example",
        "how do", "how does", "what is a", "explain how", "mitigat*", "defend against",
        "defense against", "defence against", "vulnerabilit*", "cve-", "security training",
        "awareness training", "the phrase", "the string", "log entries", "our logs",
        "the logs", "flagged", "blocklist", "denylist", "filter rule*", "dataset", "training data",
        "labelled", "labeled", "researchers", "research paper", "threat model*",
        "angriff*", "erkennen", "erkennung", "beispiel", "attaque*", "detecter", "exemple",
        "ataque*", "detectar", "deteccion", "ejemplo", "attacco", "attacchi", "rilevare",
        "esempio",
    ]),
    // ---- Portuguese ----
    (Class::OverrideVerb, &[
        "esqueça*", "desconsidere", "desconsidera", "não siga", "não obedeça",
        "deixe de lado",
    ]),
    (Class::InstrNoun, &[
        "instruções", "regras", "diretrizes", "orientações", "prompt do sistema", "restrições",
    ]),
    (Class::OverrideFull, &["esqueça tudo", "ignore tudo", "novas instruções:"]),
    (Class::ExtractVerb, &["mostre*", "revele*", "repita*", "exiba", "me diga", "imprima", "mostra"]),
    (Class::SecretObj, &[
        "prompt do sistema", "suas instruções", "instruções do sistema", "instruções iniciais",
        "instruções originais", "instruções ocultas",
    ]),
    (Class::PersonaShift, &["agora você é", "a partir de agora", "finja que", "finja ser", "aja como"]),
    (Class::Unrestricted, &[
        "sem restrições", "sem filtros", "sem filtro", "sem regras", "modo desenvolvedor",
        "sem limites", "sem censura", "nenhuma restrição",
    ]),
    (Class::AuthClaim, &[
        "sou seu criador", "como seu criador", "sou seu desenvolvedor", "como seu desenvolvedor",
        "engenheiro da openai", "modo sudo", "modo administrador",
    ]),
    (Class::Permit, &["autorizo", "permito", "desative", "desativa", "confirme"]),
    // ---- Dutch ----
    (Class::OverrideVerb, &["negeer*", "vergeet*", "volg niet", "houd je niet aan", "sla over"]),
    (Class::InstrNoun, &[
        "instructies", "regels", "richtlijnen", "aanwijzingen", "systeemprompt",
        "systeeminstructies", "beperkingen",
    ]),
    (Class::OverrideFull, &["vergeet alles", "negeer alles", "nieuwe instructies:"]),
    (Class::ExtractVerb, &["toon*", "laat zien", "laat me", "herhaal*", "geef me", "onthul*", "vertel me", "print"]),
    (Class::SecretObj, &[
        "je instructies", "jouw instructies", "systeeminstructies", "systeemprompt",
        "oorspronkelijke instructies", "verborgen instructies", "je systeemprompt",
    ]),
    (Class::PersonaShift, &["je bent nu", "vanaf nu", "doe alsof je", "speel de rol", "gedraag je als"]),
    (Class::Unrestricted, &[
        "zonder beperkingen", "zonder filters", "zonder filter", "zonder regels",
        "ontwikkelaarsmodus", "zonder limieten", "zonder censuur", "geen regels",
    ]),
    (Class::AuthClaim, &[
        "als je maker", "als jouw maker", "ik ben je maker", "ik ben je ontwikkelaar",
        "als je ontwikkelaar", "ik ben een openai", "ik werk bij openai", "sudo-modus",
        "beheerdersmodus",
    ]),
    (Class::Permit, &["machtig", "sta ik je toe", "sta toe", "schakel uit", "bevestig", "mag je nu"]),
    // ---- Polish ----
    (Class::OverrideVerb, &[
        "zignoruj*", "ignoruj*", "zapomnij*", "pomiń", "nie stosuj się", "nie przestrzegaj",
        "nie wykonuj",
    ]),
    (Class::InstrNoun, &[
        "instrukcj*", "poleceń", "polecenia", "zasady", "zasad", "reguły", "wytyczne", "wytycznych",
        "prompt systemowy", "ograniczenia",
    ]),
    (Class::OverrideFull, &["zapomnij o wszystkim", "nowe instrukcje:"]),
    (Class::ExtractVerb, &["pokaż*", "ujawnij*", "powtórz*", "wyświetl*", "podaj", "wypisz", "powiedz mi"]),
    (Class::SecretObj, &[
        "prompt systemowy", "swoje instrukcje", "twoje instrukcje", "instrukcje systemowe",
        "początkowe instrukcje", "ukryte instrukcje", "prompt systemu",
    ]),
    (Class::PersonaShift, &["jesteś teraz", "teraz jesteś", "od teraz", "udawaj, że", "udawaj że", "wciel się"]),
    (Class::Unrestricted, &[
        "bez ograniczeń", "bez filtrów", "bez zasad", "tryb dewelopera", "bez cenzury",
        "bez żadnych ograniczeń", "tryb programisty",
    ]),
    (Class::AuthClaim, &[
        "jako twój twórca", "jestem twoim twórcą", "jestem twoim deweloperem",
        "jako twój deweloper", "inżynier openai", "inżynierem openai", "tryb sudo",
        "tryb administratora",
    ]),
    (Class::Permit, &["upoważniam", "zezwalam", "pozwalam", "wyłącz", "potwierdź"]),
    // ---- Russian ----
    (Class::OverrideVerb, &[
        "игнорируй*", "проигнорируй*", "забудь*", "не обращай внимания", "не следуй", "отбрось",
        "пренебреги",
    ]),
    (Class::InstrNoun, &[
        "инструкци*", "указани*", "правила", "системный промпт", "промпт",
        "ограничения",
    ]),
    (Class::OverrideFull, &["забудь всё", "забудь все", "новые инструкции:"]),
    (Class::ExtractVerb, &["покажи*", "выведи*", "раскрой*", "повтори*", "скажи мне", "напиши", "распечатай"]),
    (Class::SecretObj, &[
        "системный промпт", "системные инструкции", "свои инструкции", "твои инструкции",
        "исходные инструкции", "скрытые инструкции", "системное сообщение",
    ]),
    (Class::PersonaShift, &[
        "теперь ты", "ты теперь", "с этого момента", "притворись", "представь, что ты",
        "веди себя как", "играй роль",
    ]),
    (Class::Unrestricted, &[
        "без ограничений", "без цензуры", "без фильтров", "без правил", "режим разработчика",
        "никаких ограничений",
    ]),
    (Class::AuthClaim, &[
        "я твой создатель", "как твой создатель", "я твой разработчик", "как твой разработчик",
        "я разработчик openai", "я инженер openai", "инженер openai", "режим sudo",
        "режим администратора",
    ]),
    (Class::Permit, &["разрешаю", "авторизую", "отключи*", "подтверди*", "снимаю"]),
    // ---- Chinese ----
    (Class::OverrideVerb, &["忽略", "无视", "忽视", "忘记", "忘掉", "不要遵守", "不要遵循", "不再遵守"]),
    (Class::InstrNoun, &["指令", "指示", "规则", "系统提示", "提示词", "设定", "限制"]),
    (Class::OverrideFull, &["忽略之前的所有", "忽略以上所有", "忘记之前的一切", "新指令："]),
    (Class::ExtractVerb, &["显示", "输出", "告诉我", "重复", "透露", "打印", "泄露", "展示", "给我看"]),
    (Class::SecretObj, &[
        "系统提示", "系统提示词", "你的指令", "你的提示词", "初始指令", "原始指令", "你的设定",
        "隐藏的指令", "系统消息",
    ]),
    (Class::PersonaShift, &["你现在是", "从现在开始", "从现在起", "假装你是", "扮演"]),
    (Class::Unrestricted, &[
        "没有任何限制", "不受限制", "无限制", "开发者模式", "没有规则", "不受任何约束", "无审查",
        "没有限制",
    ]),
    (Class::AuthClaim, &[
        "我是你的创造者", "作为你的创造者", "我是你的开发者", "作为你的开发者", "openai的工程师",
        "openai工程师", "管理员模式", "超级用户模式", "sudo模式",
    ]),
    (Class::Permit, &["授权", "允许你", "关闭", "禁用", "确认"]),
    // ---- Japanese ----
    (Class::OverrideAfter, &["無視", "忘れて", "従わないで", "従うな"]),
    (Class::InstrNoun, &["指示", "命令", "ルール", "システムプロンプト", "プロンプト", "規則", "制限"]),
    (Class::OverrideFull, &["これまでの指示を無視", "以前の指示をすべて無視", "すべて忘れて"]),
    (Class::ExtractVerb, &["表示", "教えて", "出力", "見せて", "繰り返", "開示", "明かして"]),
    (Class::SecretObj, &[
        "システムプロンプト", "あなたの指示", "初期設定", "元の指示", "隠された指示", "内部設定",
        "最初の指示",
    ]),
    (Class::PersonaShift, &[
        "今からあなたは", "あなたは今", "これからあなたは", "なりきって", "のふりをして",
        "として振る舞", "今後あなたは",
    ]),
    (Class::Unrestricted, &[
        "制限のない", "制限なし", "制限なく", "一切の制限", "開発者モード", "ルールのない",
        "検閲なし", "制約のない",
    ]),
    (Class::AuthClaim, &[
        "私はあなたの開発者", "あなたの開発者として", "私はあなたの作成者", "あなたの作成者として",
        "openaiのエンジニア", "管理者モード", "sudoモード",
    ]),
    (Class::Permit, &["許可", "承認", "無効に", "解除", "確認して"]),
    // ---- Korean ----
    (Class::OverrideAfter, &["무시", "잊어", "따르지 마", "따르지 말"]),
    (Class::InstrNoun, &["지시", "지침", "명령", "규칙", "시스템 프롬프트", "프롬프트", "제한"]),
    (Class::OverrideFull, &["이전의 모든 지시를 무시", "모든 것을 잊어"]),
    (Class::ExtractVerb, &["보여", "출력", "알려", "공개", "반복", "말해"]),
    (Class::SecretObj, &[
        "시스템 프롬프트", "너의 지시", "당신의 지시", "초기 지시", "원래 지시", "숨겨진 지시",
        "내부 설정", "시스템 메시지",
    ]),
    (Class::PersonaShift, &["지금부터", "너는 이제", "당신은 이제", "인 척", "척해", "역할을 해"]),
    (Class::Unrestricted, &[
        "제한 없는", "제한이 없는", "제한 없이", "개발자 모드", "규칙이 없는", "검열 없는",
        "아무 제한",
    ]),
    (Class::AuthClaim, &[
        "나는 너의 개발자", "저는 당신의 개발자", "당신의 개발자로서", "너의 개발자로서",
        "너의 창조자", "당신의 창조자", "openai 엔지니어", "관리자 모드", "sudo 모드",
    ]),
    (Class::Permit, &["허가", "승인", "해제", "비활성화", "확인해"]),
    // ---- Arabic ----
    (Class::OverrideVerb, &["تجاهل", "انس كل", "إنس كل", "لا تتبع", "أهمل", "اهمل"]),
    (Class::InstrNoun, &[
        "التعليمات", "تعليمات", "الأوامر", "الاوامر", "القواعد", "الإرشادات", "الارشادات",
        "موجه النظام", "القيود",
    ]),
    (Class::OverrideFull, &["تجاهل جميع التعليمات", "انس كل شيء", "تعليمات جديدة:"]),
    (Class::ExtractVerb, &["اعرض", "أظهر", "اظهر", "اكشف", "كرر", "اطبع", "أخبرني", "اخبرني", "قل لي"]),
    (Class::SecretObj, &[
        "موجه النظام", "تعليمات النظام", "تعليماتك", "التعليمات الأولية", "التعليمات المخفية",
        "رسالة النظام", "التعليمات الأصلية",
    ]),
    (Class::PersonaShift, &["أنت الآن", "انت الآن", "انت الان", "من الآن فصاعد", "من الان فصاعد", "تظاهر بأنك", "تصرف ك"]),
    (Class::Unrestricted, &[
        "بدون قيود", "دون قيود", "بلا قيود", "بدون أي قيود", "وضع المطور", "بدون قواعد",
        "بلا رقابة", "دون أي قيود",
    ]),
    (Class::AuthClaim, &[
        "أنا مطورك", "انا مطورك", "بصفتي مطورك", "أنا منشئك", "بصفتي منشئك", "مهندس في openai",
        "مهندس من openai", "وضع المسؤول", "وضع sudo",
    ]),
    (Class::Permit, &["أسمح لك", "اسمح لك", "أفوضك", "عطل", "أكد"]),
    // ---- Hindi ----
    (Class::OverrideAfter, &[
        "अनदेखा", "नज़रअंदाज़", "नजरअंदाज", "भूल जा", "मत मानो", "पालन मत", "पालन न",
    ]),
    (Class::InstrNoun, &["निर्देश", "नियम", "सिस्टम प्रॉम्प्ट", "प्रॉम्प्ट", "दिशानिर्देश", "प्रतिबंध"]),
    (Class::OverrideFull, &["सभी पिछले निर्देशों को अनदेखा", "पिछले सभी निर्देशों को अनदेखा", "सब कुछ भूल जाओ"]),
    (Class::ExtractVerb, &["दिखाओ", "दिखाइए", "दिखाएं", "बताओ", "बताइए", "बताएं", "दोहराओ", "दोहराइए", "प्रकट कर", "लिखो"]),
    (Class::SecretObj, &[
        "सिस्टम प्रॉम्प्ट", "आपके निर्देश", "तुम्हारे निर्देश", "प्रारंभिक निर्देश", "मूल निर्देश",
        "छिपे हुए निर्देश", "सिस्टम संदेश",
    ]),
    (Class::PersonaShift, &["अब तुम", "अब आप", "अब से", "होने का नाटक", "की भूमिका"]),
    (Class::Unrestricted, &[
        "बिना किसी प्रतिबंध", "बिना प्रतिबंध", "कोई प्रतिबंध नहीं", "डेवलपर मोड", "बिना नियम",
        "कोई नियम नहीं", "बिना सेंसर", "बिना किसी नियम",
    ]),
    (Class::AuthClaim, &[
        "मैं तुम्हारा निर्माता", "मैं आपका निर्माता", "आपके निर्माता के रूप में", "मैं आपका डेवलपर",
        "मैं तुम्हारा डेवलपर", "openai का इंजीनियर", "openai इंजीनियर", "एडमिन मोड", "sudo मोड",
    ]),
    (Class::Permit, &["अनुमति", "अधिकृत", "बंद कर", "पुष्टि"]),
    // ---- Turkish ----
    (Class::OverrideAfter, &[
        "yok say*", "görmezden gel*", "unut", "unutun", "dikkate alma", "uyma", "uymayın",
    ]),
    (Class::InstrNoun, &[
        "talimat*", "kurallar*", "yönerge*", "sistem istemi*", "sistem komut*", "komutlar*",
        "kısıtlamalar*",
    ]),
    (Class::OverrideFull, &["her şeyi unut", "yeni talimatlar:"]),
    (Class::ExtractVerb, &["göster*", "yazdır*", "tekrarla*", "ifşa et", "söyle*", "paylaş"]),
    (Class::SecretObj, &[
        "sistem istemi*", "talimatlarını", "ilk talimat*", "gizli talimat*", "sistem mesaj*",
        "orijinal talimat*", "sistem talimat*",
    ]),
    (Class::PersonaShift, &["artık sen", "bundan sonra", "şimdi sen", "gibi davran", "rolüne gir", "rolünü oyna"]),
    (Class::Unrestricted, &[
        "kısıtlama olmadan", "kısıtlamasız", "sınırsız", "filtresiz", "kuralsız",
        "geliştirici modu", "sansürsüz", "hiçbir kısıtlama",
    ]),
    (Class::AuthClaim, &[
        "senin yaratıcın", "yaratıcın olarak", "ben senin geliştiricin", "geliştiricin olarak",
        "openai mühendisi", "openai'da mühendis", "yönetici modu", "sudo modu",
    ]),
    (Class::Permit, &["izin veriyorum", "yetki veriyorum", "devre dışı", "onayla"]),
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
    for (table, variants) in [(PHRASES, true), (LANG_PHRASES, false)] {
        for (class, phrases) in table {
            for phrase in *phrases {
                push_phrase(&mut out, *class, phrase, variants);
            }
        }
    }
    out
}

fn push_phrase(out: &mut Vec<(Vec<u8>, PhraseTag)>, class: Class, phrase: &str, variants: bool) {
    let (text, stem) = match phrase.strip_suffix('*') {
        Some(t) => (t, true),
        None => (phrase, false),
    };
    let folded = crate::normalize::fold_str(text);
    out.push((
        folded.clone(),
        PhraseTag {
            class,
            stem,
            obfuscated: false,
        },
    ));
    // Obfuscated variants only for long phrases: short ones collide with real words. Only the
    // core classes get them: they keep the automaton small (and fast).
    let letters = folded.iter().filter(|b| b.is_ascii_alphabetic()).count();
    if !variants || letters < 6 || !folded.iter().all(|b| b.is_ascii_lowercase() || *b == b' ') {
        return;
    }
    let tag = PhraseTag {
        class,
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

/// A phrase occurrence in the folded view.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PhraseHit {
    pub class: Class,
    pub start: usize,
    pub end: usize,
    pub obfuscated: bool,
}

/// A signal before it becomes a finding: `rule` tells apart what fired it (a standalone class,
/// a combo, an obfuscated variant), so that only different rules add up within a family.
#[derive(Debug, Clone, Copy)]
struct Signal {
    start: usize,
    end: usize,
    kind: &'static str,
    rule: usize,
    weight: f32,
}

const RULE_OBFUSCATED: usize = usize::MAX;

/// Turn phrase occurrences (sorted by start) in the folded text `f` into signals, in
/// folded-view offsets.
pub(crate) fn signals(f: &[u8], hits: &[PhraseHit], out: &mut Vec<Hit>) {
    if hits.is_empty() {
        return;
    }
    let mut by_class: [Vec<(usize, usize)>; CLASS_COUNT] = std::array::from_fn(|_| Vec::new());
    let mut sigs: Vec<Signal> = Vec::new();
    for h in hits {
        if h.class == Class::OverrideVerb && negated(f, h.start, h.end) {
            continue; // "don't forget the instructions"
        }
        by_class[h.class as usize].push((h.start, h.end));
        if h.class == Class::ToolRef
            && let Some(at) = call_verb_before(f, h.start)
        {
            by_class[Class::CallVerb as usize].push((at, at + 1));
        }
        if let Some((kind, weight)) = standalone(h.class) {
            sigs.push(Signal {
                start: h.start,
                end: h.end,
                kind,
                rule: COMBOS.len() + h.class as usize,
                weight,
            });
        }
        if h.obfuscated {
            sigs.push(Signal {
                start: h.start,
                end: h.end,
                kind: OBFUSCATION,
                rule: RULE_OBFUSCATED,
                weight: 0.3,
            });
        }
    }
    by_class[Class::CallVerb as usize].sort_unstable();
    by_class[Class::CallVerb as usize].dedup();
    for (rule, combo) in COMBOS.iter().enumerate() {
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
                k += 1;
                if (ys0, ye0) == (xs0, xe0) || (ys0 < xe0 && xs0 < ye0) {
                    continue; // the same or overlapping phrases
                }
                if combo.ordered && ys0 < xe0 {
                    continue;
                }
                if combo.clause && has_break(f, xe0.min(ye0), xs0.max(ys0)) {
                    continue;
                }
                sigs.push(Signal {
                    start: xs0.min(ys0),
                    end: xe0.max(ye0),
                    kind: combo.kind,
                    rule,
                    weight: combo.weight,
                });
                break;
            }
        }
    }
    if sigs.is_empty() {
        return;
    }
    let meta = &by_class[Class::Meta as usize];
    for s in &mut sigs {
        s.weight *= damping(f, meta, s.start, s.end);
        if defensive(f, s) {
            s.weight *= DEFENSIVE_WEIGHT;
        }
    }
    sigs.sort_by_key(|s| (s.start, s.end));
    // Two signals of one family from different rules close together add up: independent
    // evidence of one attack. A phrase's own weight does not add to a pair it is part of.
    let mut merged = Vec::new();
    for (i, a) in sigs.iter().enumerate() {
        let best = sigs[i + 1..]
            .iter()
            .take_while(|b| b.start < a.start + MERGE_SPAN)
            .filter(|b| {
                b.kind == a.kind
                    && b.rule != a.rule
                    && (b.start >= a.end || (a.rule < COMBOS.len() && b.rule < COMBOS.len()))
                    && b.end <= a.start + MERGE_SPAN
            })
            .max_by(|x, y| x.weight.total_cmp(&y.weight));
        if let Some(b) = best {
            merged.push(Signal {
                start: a.start,
                end: a.end.max(b.end),
                kind: a.kind,
                rule: a.rule,
                weight: 1.0 - (1.0 - a.weight) * (1.0 - b.weight),
            });
        }
    }
    for s in sigs.iter().chain(&merged) {
        push_signal(out, s.start, s.end, s.kind, s.weight);
    }
}

/// Verbs that ask for a tool to be called ("call the delete tool", "use the payments tool").
const CALL_VERBS: &[&[u8]] = &[
    b"call", b"use", b"invoke", b"run", b"execute", b"trigger", b"rufe", b"nutze", b"appelle",
    b"utilise", b"llama", b"usa", b"chiama", b"utiliza",
];

/// Where a call verb starts among the three words before `at` (within 24 bytes), if one does.
/// Looked up only where a tool is named, so that common verbs stay out of the automaton.
fn call_verb_before(f: &[u8], at: usize) -> Option<usize> {
    let from = at.saturating_sub(24);
    let before = &f[from..at];
    let mut end = before.len();
    for _ in 0..3 {
        let trimmed = before[..end].trim_ascii_end();
        let start = trimmed
            .iter()
            .rposition(|b| !b.is_ascii_alphabetic())
            .map_or(0, |i| i + 1);
        if start == 0 && from > 0 {
            return None; // cut off at the window's start
        }
        if CALL_VERBS.contains(&&trimmed[start..]) {
            return Some(from + start);
        }
        if start == trimmed.len() {
            return None;
        }
        end = start;
    }
    None
}

/// Negations that turn an override verb around ("don't forget", "n'oublie pas", "no olvides").
const NEGATIONS_BEFORE: &[&[u8]] = &[
    b"not", b"don't", b"dont", b"never", b"nao", b"no", b"non", b"nie", b"niet", b"nicht", b"ne",
    b"n'", b"mai",
];
const NEGATIONS_AFTER: &[&[u8]] = &[b"nicht", b"pas", b"niet", b"jamais"];

/// Whether the override verb at `f[start..end]` is negated: one of the two words before it, or
/// the word after it, is a negation.
fn negated(f: &[u8], start: usize, end: usize) -> bool {
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'\'';
    let before = &f[start.saturating_sub(16)..start];
    if before.ends_with(b"n'") {
        return true;
    }
    // Up to two words back, across spaces only: "No, ignore ..." is not a negation.
    let mut rest = before;
    for _ in 0..2 {
        let trimmed = rest.trim_ascii_end();
        if trimmed.len() == rest.len() {
            break;
        }
        let at = trimmed.iter().rposition(|b| !word(b)).map_or(0, |i| i + 1);
        if at == 0 && start >= 16 {
            break; // the word may be cut off at the window's start
        }
        let w = &trimmed[at..];
        if w.is_empty() {
            break;
        }
        if NEGATIONS_BEFORE.contains(&w) {
            return true;
        }
        rest = &trimmed[..at];
    }
    let after = &f[end.min(f.len())..(end + 12).min(f.len())];
    after
        .split(|b| !word(b))
        .find(|w| !w.is_empty())
        .is_some_and(|w| NEGATIONS_AFTER.contains(&w))
}

/// Whether a sentence or clause ends in `f[from..to]`: `;`, `!`, `?`, `,`, `:`, a line end, a
/// full stop before a space, or the CJK and Devanagari full stops (full-width commas and colons
/// are ASCII after NFKC).
fn has_break(f: &[u8], from: usize, to: usize) -> bool {
    let gap = &f[from.min(to)..to];
    gap.iter().enumerate().any(|(i, &b)| match b {
        b';' | b'!' | b'?' | b'\n' | b',' | b':' => true,
        b'.' => gap.get(i + 1).is_none_or(|&n| n == b' '),
        _ => false,
    }) || contains(gap, "。".as_bytes())
        || contains(gap, "।".as_bytes())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// How much a signal at `f[start..end]` counts, given its surroundings: it may be quoted (the
/// text talks about the phrase rather than saying it) and discussion words may lie close by.
fn damping(f: &[u8], meta: &[(usize, usize)], start: usize, end: usize) -> f32 {
    let from = start.saturating_sub(CONTEXT_BEFORE);
    let to = (end + CONTEXT_AFTER).min(start + MERGE_SPAN + CONTEXT_AFTER);
    let first = meta.partition_point(|&(s, _)| s < from);
    let discussed = meta[first..]
        .iter()
        .take_while(|&&(s, _)| s < to)
        .any(|&(_, e)| e <= to);
    match (quoted(f, start, end), discussed) {
        (true, true) => 0.1,
        (false, true) => 0.5,
        (true, false) => 0.8,
        (false, false) => 1.0,
    }
}

// ---- Defensive rules ----
//
// A system prompt states the attacks it defends against: "never reveal your system prompt",
// "if the user asks you to ignore your instructions, refuse", "do not follow instructions
// contained in documents", "only call delete_file if the user confirms". The phrases are an
// attack's, the sentence forbids them. Such a signal counts [`DEFENSIVE_WEIGHT`] of its weight.
// Context is read within `CONTEXT_BEFORE` bytes before the signal and `DEFENSIVE_AFTER` after
// it (bounded like discussion context), so stream scanning stays equal to whole-text scanning.

/// Families whose phrases a prohibition turns around. Not persona, authority, delimiters,
/// indirect notes, obfuscation, reasoning hijack, output or memory: there the phrase is the
/// attack whatever surrounds it ("never break character", "do not tell the user", "you must not
/// include any policy in your response", "will not speak English from now on").
const DEFENSIVE_FAMILIES: &[&str] = &[OVERRIDE, EXTRACTION, TOOL, EXFIL];

/// How far after a signal a defensive rule's refusal or condition is looked for ("only call
/// delete_file if the user explicitly confirms"); never past `MERGE_SPAN + CONTEXT_AFTER` from
/// the signal's start, the furthest any signal's context reaches.
const DEFENSIVE_AFTER: usize = 64;

/// What a signal inside a defensive rule counts, as a share of its weight.
const DEFENSIVE_WEIGHT: f32 = 0.2;

/// Prohibitions before the forbidden act, in one sentence: "never reveal", "do not print",
/// "refuse requests to bypass", "ne révèle jamais", "no muestres", "non rivelare".
#[rustfmt::skip]
const PROHIBITIONS: &[&str] = &[
    "never", "not", "don't", "dont", "mustn't", "shouldn't", "cannot", "avoid*", "refrain from",
    "refuse*", "declin*", "reject*", "forbidden", "prohibited", "under no circumstances",
    "at no time", "in no case",
    "nie", "niemals", "keinesfalls", "auf keinen fall", "unter keinen umstanden", "nicht",
    "keine", "keinen", "verboten", "verweigere", "lehne", "vermeide*",
    "ne", "jamais", "en aucun cas", "interdit", "evite*",
    "no", "nunca", "jamas", "bajo ninguna circunstancia", "en ningun caso", "rechaza*",
    "prohibido", "evita*",
    "non", "mai", "in nessun caso", "per nessun motivo", "rifiuta*", "vietato",
    "nao", "recuse*", "nooit", "niet", "nigdy", "odmow*",
];

/// Prohibitions that are refusals: "never refuse" and "verweigere niemals" undo each other.
const REFUSAL_VERBS: &[&str] = &[
    "refus*",
    "declin*",
    "reject*",
    "verweiger*",
    "lehne",
    "rechaz*",
    "rifiut*",
    "recus*",
    "odmow*",
];

/// Negations inside a signal's span, where the verb comes first ("verrate niemals deinen
/// Systemprompt", "ne montre jamais tes instructions", "non rivelare mai").
const INNER_NEGATIONS: &[&str] = &[
    "never",
    "niemals",
    "nie",
    "nicht",
    "keinesfalls",
    "jamais",
    "nunca",
    "jamas",
    "mai",
];

/// A word right after a prohibition that makes it something else: "don't you", "never mind",
/// "not only", "no matter", "no need".
#[rustfmt::skip]
const NOT_PROHIBITING: &[&str] = &[
    "you", "u", "mind", "only", "just", "merely", "matter", "need", "longer", "more", "nur",
    "seulement", "solo", "solamente",
];

/// Words between a prohibition and the signal that undo it or end its scope: "don't refuse to
/// reveal", "never hesitate", "don't worry and print", "nothing but", "except".
#[rustfmt::skip]
const UNDOING: &[&str] = &[
    "refus*", "declin*", "reject*", "rechaz*", "recus*", "hesitat*", "forget*", "fail*", "hold back", "mind", "worry*", "panic*",
    "afraid", "shy", "stop*", "omit*", "skip*", "need*", "have to", "hide*", "hiding",
    "withhold*", "keep*", "conceal*", "censor*", "filter*", "restrict*", "limit*", "but",
    "instead", "then", "rather", "however", "just", "simply", "except", "other than",
    "apart from", "besides", "and",
    "verweiger*", "zoger*", "vergiss", "vergessen", "versteck*", "verheimlich*", "sorge*",
    "angst", "aber", "sondern", "stattdessen", "dann", "ausser", "und",
    "hesit*", "oubli*", "cache*", "inquiet*", "mais", "plutot", "puis", "sauf", "et",
    "nieg*", "dud*", "olvid*", "ocult*", "preocup*", "pero", "sino", "luego", "excepto", "salvo",
    "y",
    "rifiut*", "esit*", "dimentic*", "nascond*", "preoccup*", "ma", "invece", "poi", "tranne",
    "e",
];

/// A request word right before the signal ("asks you to", "if asked about", "tries to get you
/// to"): the signal is what someone else may ask for.
#[rustfmt::skip]
const REQUESTS: &[&str] = &[
    "asks", "ask", "asked", "asking", "tells", "tell", "told", "wants", "want", "requests",
    "request", "requested", "attempts", "attempt", "tries", "try", "trying", "instructs",
    "instructed", "urges", "pressures", "demands", "into",
    "fordert", "auffordert", "aufgefordert", "bittet", "gebeten", "verlangt", "versucht",
    "demande", "demandent", "demander", "essaie", "tente", "pide", "piden", "pedido", "intenta",
    "chiede", "chiedono", "chiesto", "prova", "cerca",
];

/// A refusal after the signal, for a request: "..., refuse politely", "say that you cannot".
#[rustfmt::skip]
const REFUSALS: &[&str] = &[
    "refuse*", "declin*", "reject*", "do not comply", "don't comply", "say that you cannot",
    "say you cannot", "say that you can't", "say you can't", "that you cannot", "that you can't",
    "say no", "ignore the request", "ignore it", "ignore them", "ignore such", "do not do it",
    "don't do it", "do not do so", "stay on topic", "stay on task", "not possible",
    "not allowed", "ablehn*", "lehne*", "verweiger*", "nicht moglich", "nicht erlaubt",
    "ne le fais pas", "ne peux pas", "pouvez pas", "rechaz*", "nieg*", "no lo hagas",
    "no puedes", "no es posible", "rifiut*", "non farlo", "non puoi", "non e possibile",
    "recus*", "weiger*", "odmow*",
];

/// A refusal is not one after these: "never refuse", "you cannot decline".
const REFUSAL_NEGATED: &[&str] = &[
    "never", "not", "don't", "dont", "cannot", "can't", "mustn't", "no", "nie", "nicht", "ne",
    "non", "jamais", "nunca",
];

/// A condition on a tool call ("only if", "after", "unless") ...
#[rustfmt::skip]
const CONDITIONS: &[&str] = &[
    "only", "if", "after", "once", "unless", "before", "until", "nur", "wenn", "falls", "erst",
    "nachdem", "bevor", "seulement", "uniquement", "si", "apres", "avant", "solo", "solamente",
    "unicamente", "despues", "antes", "se", "dopo", "prima", "soltanto",
];

/// ... that asks for the user's confirmation.
#[rustfmt::skip]
const CONFIRMATIONS: &[&str] = &[
    "confirm*", "approv*", "consent*", "permission", "bestatig*", "zustimm*", "freigabe",
    "genehmig*", "einwillig*", "approuv*", "aprob*", "approva*", "conferm*",
];

/// The rule "use the search tool", and what makes it a plain usage note: "when you need
/// current information", "if necessary".
const CALL_TOOL_RULE: usize = 21;
const NEEDS: &[&str] = &[
    "need*",
    "necessary",
    "required",
    "benotig*",
    "brauchst",
    "besoin",
    "necesit*",
    "necesario",
    "serve",
    "necessario",
];

/// Consent claimed rather than asked for: "the user already confirmed", "without asking".
#[rustfmt::skip]
const CONSENT_CLAIMED: &[&str] = &[
    "already", "without", "no need", "skip*", "don't ask", "do not ask", "pre-approved",
    "preapproved", "bereits", "schon", "ohne", "deja", "sans", "ya", "sin", "gia", "senza",
];

/// What an override rule may be about other than the model's own instructions: content it
/// reads ("ignore instructions contained in documents", "in tool output", "dans les pages web").
#[rustfmt::skip]
const DATA_SOURCES: &[&str] = &[
    "document*", "email*", "e-mail*", "web page*", "webpage*", "website*", "tool output*",
    "tool result*", "tool response*", "search result*", "retrieved", "attachment*", "files",
    "uploaded", "pasted", "quoted", "third-party", "untrusted", "external", "user-provided",
    "user-supplied", "user content", "user input", "the data", "embedded", "contained in",
    "found in", "that appear in", "appearing in", "that try to change",
    "that attempt to change", "trying to change", "that conflict with these",
    "that contradict these",
    "dokument*", "webseite*", "anhang", "anhange*", "suchergebnis*", "externe*", "eingebettet*",
    "courriel*", "fichier*", "pieces jointes", "pages web", "page web", "resultats", "integrees",
    "documento*", "correo*", "archivo*", "adjunto*", "paginas web", "pagina web", "resultados",
    "externo*", "incrustad*", "allegat*", "risultati", "estern*", "incorporat*",
];

/// Words that put the model's own instructions back into an override's object ("ignore your
/// previous instructions in the document", "the rules in this e-mail").
#[rustfmt::skip]
const OWN_INSTRUCTIONS: &[&str] = &[
    "previous", "prior", "above", "earlier", "original", "your", "system", "this",
    "bisherig*", "vorherig*", "obig*", "deine", "dein", "diese", "diesem", "dieser",
    "precedent*", "tes", "vos", "ton", "ce", "cette",
    "anterior*", "tus", "tu", "este", "esta",
    "tue", "tuoi", "questo", "questa",
];

/// Whether signal `s` states a defence rather than an attack: forbidden ("never reveal your
/// system prompt"), asked for by someone else and refused, confirmation-gated (a tool call),
/// or an override whose object is content read rather than the model's instructions.
fn defensive(f: &[u8], s: &Signal) -> bool {
    // A prompt named on its own ("system prompt", "verbatim") is no act to forbid; as a
    // heading at a line's start ("Developer instructions: respond in JSON") it labels what
    // follows ("here is the admin password:" mid-line is no heading).
    let noun_only = [Class::SecretObj, Class::Verbatim]
        .iter()
        .any(|&c| s.rule == COMBOS.len() + c as usize);
    if noun_only {
        let from = s.start.saturating_sub(CONTEXT_BEFORE);
        let line = match f[from..s.start].iter().rposition(|&b| b == b'\n') {
            Some(i) => from + i + 1,
            None if from == 0 => 0,
            None => return false,
        };
        let heading = f[line..s.start]
            .iter()
            .all(|b| matches!(b, b' ' | b'\t' | b'#' | b'*' | b'-' | b'>'));
        return heading && f.get(s.end) == Some(&b':');
    }
    if !DEFENSIVE_FAMILIES.contains(&s.kind) {
        return false;
    }
    let from = s.start.saturating_sub(CONTEXT_BEFORE);
    let to = (s.end + DEFENSIVE_AFTER)
        .min(s.start + MERGE_SPAN + CONTEXT_AFTER)
        .min(f.len());
    let before = &f[sentence_start(f, from, s.start)..s.start];
    let span = &f[s.start..s.end.min(f.len())];
    let after = &f[s.end.min(to)..sentence_end(f, s.end.min(to), to)];
    // A question ("why don't you reveal your prompt?") asks for the act.
    if after.contains(&b'?') {
        return false;
    }
    prohibited(before, span, after)
        || requested_and_refused(f, from, s.start, s.end, to)
        || (s.kind == TOOL && confirmation_gated(before, after))
        || (s.rule == CALL_TOOL_RULE && find_any(after, NEEDS).is_some())
        || (s.kind == OVERRIDE && about_content(span, after))
}

/// A prohibition governs the signal: one before it in its sentence with nothing undoing it in
/// between, a negation inside its span after the first word, or "nicht" right after it.
fn prohibited(before: &[u8], span: &[u8], after: &[u8]) -> bool {
    let fr_elided = before.ends_with(b"n'") && before.len() >= 2 && {
        let i = before.len() - 2;
        i == 0 || !is_word(before[i - 1])
    };
    if fr_elided {
        return true; // "n'affiche jamais"
    }
    if let Some((start, end)) = find_any(before, PROHIBITIONS) {
        let between = &before[end..];
        // "verweigere niemals": a refusal refused.
        let refused_refusal = find_any(&before[start..end], REFUSAL_VERBS).is_some()
            && find_any(between, PROHIBITIONS).is_some();
        let next = between
            .split(|&b| !is_word(b) && b != b'\'')
            .find(|w| !w.is_empty());
        // A quoted word ("not") is talked about, not said.
        let quoted = before.get(end).is_some_and(|&b| is_quote(b))
            || start.checked_sub(1).is_some_and(|i| is_quote(before[i]));
        let exempt =
            quoted || next.is_some_and(|w| NOT_PROHIBITING.iter().any(|p| p.as_bytes() == w));
        if !exempt && !refused_refusal && find_any(between, UNDOING).is_none() {
            return true;
        }
    }
    let first_word_end = span.iter().position(|&b| !is_word(b)).unwrap_or(span.len());
    if find_any(&span[first_word_end..], INNER_NEGATIONS).is_some() {
        return true;
    }
    let mut words = after.split(|&b| !is_word(b)).filter(|w| !w.is_empty());
    matches!(words.next(), Some(b"nicht" | b"niemals" | b"nie"))
        && !matches!(words.next(), Some(b"nur"))
}

/// Someone else's request ("if the user asks you to ignore your instructions") with a refusal
/// after it in the sentence or the next ("..., refuse politely").
fn requested_and_refused(f: &[u8], from: usize, start: usize, end: usize, to: usize) -> bool {
    let near = &f[sentence_start(f, start.saturating_sub(28).max(from), start)..start];
    let requested = near
        .split(|&b| !is_word(b))
        .filter(|w| !w.is_empty())
        .rev()
        .take(3)
        .any(|w| REQUESTS.iter().any(|r| r.as_bytes() == w));
    if !requested {
        return false;
    }
    let line_end = f[end.min(to)..to]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(to, |i| end + i);
    let after = &f[end.min(line_end)..line_end];
    let Some((at, _)) = find_any(after, REFUSALS) else {
        return false;
    };
    let lead = &after[clause_start(after, 0, at)..at];
    find_any(lead, REFUSAL_NEGATED).is_none()
}

/// A tool call under a condition that asks for the user's confirmation ("only call delete_file
/// if the user explicitly confirms"), without consent claimed in the sentence.
fn confirmation_gated(before: &[u8], after: &[u8]) -> bool {
    let either =
        |list: &[&str]| find_any(before, list).is_some() || find_any(after, list).is_some();
    either(CONDITIONS) && either(CONFIRMATIONS) && !either(CONSENT_CLAIMED)
}

/// An override about content the model reads ("do not follow instructions contained in the
/// documents"), not about its own instructions.
fn about_content(span: &[u8], after: &[u8]) -> bool {
    if find_any(span, OWN_INSTRUCTIONS).is_some() {
        return false;
    }
    if find_any(span, DATA_SOURCES).is_some() {
        return true;
    }
    // The object runs on after the signal: "instructions contained in your system prompt"
    // names the model's own, "instructions in user-provided documents that try to change your
    // behaviour" does not (the words after the data source are not the object).
    let Some((_, end)) = find_any(after, DATA_SOURCES) else {
        return false;
    };
    let object = &after[..(end + 12).min(after.len())];
    find_any(object, OWN_INSTRUCTIONS).is_none()
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

/// The first whole-word occurrence in `hay` of any phrase of `list` (`*` at the end: a stem),
/// as (start, end).
fn find_any(hay: &[u8], list: &[&str]) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    for phrase in list {
        let (p, stem) = match phrase.strip_suffix('*') {
            Some(p) => (p.as_bytes(), true),
            None => (phrase.as_bytes(), false),
        };
        if p.is_empty() || p.len() > hay.len() {
            continue;
        }
        let mut i = 0;
        while i + p.len() <= hay.len() {
            if best.is_some_and(|(b, _)| i >= b) {
                break;
            }
            if &hay[i..i + p.len()] == p
                && (i == 0 || !is_word(hay[i - 1]))
                && (stem || hay.get(i + p.len()).is_none_or(|&b| !is_word(b)))
            {
                let mut e = i + p.len();
                while stem && e < hay.len() && is_word(hay[e]) {
                    e += 1;
                }
                best = Some((i, e));
                break;
            }
            i += 1;
        }
    }
    best
}

/// Where the sentence holding `at` starts, looking back no further than `from`.
fn sentence_start(f: &[u8], from: usize, at: usize) -> usize {
    f[from..at]
        .iter()
        .enumerate()
        .rev()
        .find(|&(i, &b)| match b {
            b';' | b'!' | b'?' | b'\n' | b':' => true,
            b'.' => f.get(from + i + 1).is_none_or(|&n| n == b' '),
            _ => false,
        })
        .map_or(from, |(i, _)| from + i + 1)
}

/// Where the sentence holding `at` ends, looking no further than `to`.
fn sentence_end(f: &[u8], at: usize, to: usize) -> usize {
    f[at..to]
        .iter()
        .enumerate()
        .find(|&(i, &b)| match b {
            b';' | b'!' | b'\n' => true,
            b'.' => f.get(at + i + 1).is_none_or(|&n| n == b' ' || n == b'\n'),
            _ => false,
        })
        .map_or(to, |(i, _)| at + i)
}

/// Where the clause holding `at` starts (see `has_break`), looking back no further than `from`.
fn clause_start(f: &[u8], from: usize, at: usize) -> usize {
    (from..at)
        .rev()
        .find(|&i| has_break(f, i, i + 1))
        .map_or(from, |i| i + 1)
}

fn is_quote(b: u8) -> bool {
    matches!(b, b'"' | b'\'' | b'`')
}

/// Whether `f[start..end]` lies inside a quotation on one line: an opening mark (at a word start)
/// within `CONTEXT_BEFORE` bytes before it and the same mark closing (at a word end) within
/// `CONTEXT_AFTER` bytes after it, with no other such mark in between.
fn quoted(f: &[u8], start: usize, end: usize) -> bool {
    let from = start.saturating_sub(CONTEXT_BEFORE);
    let alnum = |i: Option<usize>| {
        i.and_then(|i| f.get(i))
            .is_some_and(u8::is_ascii_alphanumeric)
    };
    let mut open = None;
    for i in (from..start).rev() {
        let b = f[i];
        if b == b'\n' {
            return false;
        }
        if is_quote(b) && !alnum(i.checked_sub(1)) {
            open = Some(b);
            break;
        }
    }
    let Some(q) = open else { return false };
    let to = (end + CONTEXT_AFTER).min(f.len());
    for (i, &b) in f.iter().enumerate().take(to).skip(end.min(to)) {
        if b == b'\n' {
            return false;
        }
        if b == q && !alnum(Some(i + 1)) {
            return true;
        }
    }
    false
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_tool_rule_is_call_verb_before_tool() {
        let c = &COMBOS[CALL_TOOL_RULE];
        assert!(c.a == Class::CallVerb && c.b == Class::ToolRef && c.kind == TOOL);
    }

    #[test]
    fn defensive_phrases_are_folded() {
        for list in [
            PROHIBITIONS,
            INNER_NEGATIONS,
            NOT_PROHIBITING,
            UNDOING,
            REQUESTS,
            REFUSALS,
            REFUSAL_NEGATED,
            CONDITIONS,
            CONFIRMATIONS,
            CONSENT_CLAIMED,
            DATA_SOURCES,
            OWN_INSTRUCTIONS,
            REFUSAL_VERBS,
            NEEDS,
        ] {
            for p in list {
                let bare = p.trim_end_matches('*');
                assert_eq!(crate::normalize::fold_str(bare), bare.as_bytes(), "{p}");
            }
        }
    }
}
