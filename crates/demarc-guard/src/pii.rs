//! Personal data: a hand-written byte scanner (no regex on the hot path) that finds candidate
//! tokens and reports only values that pass validation (checksums, ranges, country lengths).
//!
//! Every candidate is bounded ([`MAX_TOKEN`] bytes), so findings depend only on the text near
//! them; the stream scanner relies on that.
//!
//! Labelled look-alikes: a value in the shape of a national identifier, card or account number
//! that fails its checksum or ranges is still reported when a label in the [`LABEL_BACK`] bytes
//! before it names it as one ("SSN", "card number", "IBAN", "Sozialversicherungsnummer", ...),
//! at a lower score ([`LOOKALIKE_SCORE`]) and with the detail [`LOOKALIKE`]. Without a label
//! such values stay quiet. The label is look-behind only: a match still starts at its value.

use crate::Severity;
use crate::hit::Hit;

/// The PII kinds, as named in policies and reports.
pub const PII_KINDS: [&str; 16] = [
    "email",
    "phone",
    "payment_card",
    "iban",
    "us_ssn",
    "ipv4",
    "ipv6",
    "uk_nhs",
    "de_tax_id",
    "es_dni",
    "es_nie",
    "it_fiscal_code",
    "fr_nir",
    "us_itin",
    "uk_nino",
    "passport",
];

/// The `detail` of a value that fails its checksum or ranges but that the text labels as
/// personal data of its kind.
pub const LOOKALIKE: &str = "labelled-lookalike";
/// The `detail` of a value that has no checksum (a passport number), found through its label.
pub const LABELLED: &str = "labelled";
/// The `score` of a labelled look-alike (validated values score 1.0).
pub const LOOKALIKE_SCORE: f32 = 0.5;
/// The `score` of a labelled value without a checksum.
pub const LABELLED_SCORE: f32 = 0.7;

/// Longest candidate token considered (bytes); longer runs are not personal data we know.
pub(crate) const MAX_TOKEN: usize = 320;
/// How far back a context keyword ("nhs", "tel") may stand.
const CONTEXT_BACK: usize = 40;

/// Which kinds are enabled (bit per index of [`PII_KINDS`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kinds(u32);

impl Kinds {
    pub fn from_names(names: &[String]) -> Kinds {
        if names.is_empty() {
            return Kinds(u32::MAX);
        }
        let mut bits = 0;
        for name in names {
            if let Some(i) = PII_KINDS.iter().position(|k| k == name) {
                bits |= 1 << i;
            }
        }
        Kinds(bits)
    }

    fn on(self, kind: &str) -> bool {
        PII_KINDS
            .iter()
            .position(|k| *k == kind)
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }
}

#[inline]
fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

#[inline]
fn word_start(t: &[u8], i: usize) -> bool {
    i == 0 || !(is_alnum(t[i - 1]) || t[i - 1] == b'_')
}

const CANDIDATE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_digit() || b.is_ascii_uppercase() || b == b'+' || b == b'(';
        i += 1;
    }
    t
};

/// Scan `t` (the clean view) and push validated personal data, and labelled look-alikes whose
/// label `label_ok` accepts.
pub(crate) fn scan(t: &[u8], kinds: Kinds, label_ok: LabelOk, out: &mut Vec<Hit>) {
    let first = out.len();
    if kinds.on("email") {
        scan_emails(t, out);
    }
    if kinds.on("ipv6") {
        scan_ipv6(t, out);
    }
    let n = t.len();
    let mut i = 0;
    while i < n {
        if !CANDIDATE[t[i] as usize] || !word_start(t, i) {
            i += 1;
            continue;
        }
        let b = t[i];
        let next = if b.is_ascii_uppercase() {
            scan_upper(t, i, kinds, label_ok, out)
        } else {
            scan_numeric(t, i, kinds, label_ok, out)
        };
        i = next.max(i + 1);
    }
    // Emails and IPv6 were pushed first; keep the output ordered by start.
    out[first..].sort_by_key(|h| (h.start, h.end));
}

fn push(out: &mut Vec<Hit>, start: usize, end: usize, kind: &'static str, severity: Severity) {
    out.push(Hit::new(start, end, kind, severity));
}

// ---------------------------------------------------------------- labels

/// How far before a value (bytes of the clean view) a label naming it may start.
const LABEL_BACK: usize = 48;
/// The same bound in bytes of the original text (checked by the caller's label test), so that
/// the stream scanner's look-behind always holds the label and the byte before it.
pub(crate) const LABEL_REACH: usize = 96;

/// Label classes: what a label says the value is.
const L_SSN: u16 = 1;
const L_TIN: u16 = 1 << 1;
const L_ITIN: u16 = 1 << 2;
const L_CARD: u16 = 1 << 3;
const L_ACCOUNT: u16 = 1 << 4;
const L_NINO: u16 = 1 << 5;
const L_PASSPORT: u16 = 1 << 6;
const L_NHS: u16 = 1 << 7;
const L_DNI: u16 = 1 << 8;
const L_CF: u16 = 1 << 9;

/// Labels, lowercase (a space in a label matches a space, `-`, `_` or `.`). A label starts a
/// word; one of four bytes or fewer also ends one. Accented and unaccented spellings are both
/// listed (the clean view keeps accents).
const LABELS: &[(&[u8], u16)] = &[
    // Social security and national insurance numbers.
    (b"ssn", L_SSN),
    (b"social security", L_SSN),
    (b"soc sec", L_SSN),
    (b"sozialversicherung", L_SSN),
    (b"rentenversicherung", L_SSN),
    (b"sv nummer", L_SSN),
    ("sécurité sociale".as_bytes(), L_SSN),
    (b"securite sociale", L_SSN),
    (b"seguridad social", L_SSN),
    ("segurança social".as_bytes(), L_SSN),
    (b"seguranca social", L_SSN),
    (b"previdenza sociale", L_SSN),
    (b"sociale zekerheid", L_SSN),
    (b"burgerservicenummer", L_SSN),
    (b"bsn", L_SSN),
    (b"sofinummer", L_SSN),
    (b"nir", L_SSN),
    (b"ni number", L_NINO),
    (b"ni no", L_NINO),
    (b"nino", L_NINO),
    (b"national insurance", L_NINO),
    // Taxpayer numbers.
    (b"itin", L_ITIN),
    (b"individual taxpayer", L_ITIN),
    (b"tin", L_TIN),
    (b"taxpayer id", L_TIN),
    (b"tax id", L_TIN),
    (b"tax identification", L_TIN),
    (b"tax number", L_TIN),
    (b"steuer id", L_TIN),
    (b"steueridentifikationsnummer", L_TIN),
    (b"steuer identifikationsnummer", L_TIN),
    (b"steuernummer", L_TIN),
    (b"identifikationsnummer", L_TIN),
    (b"idnr", L_TIN),
    ("numéro fiscal".as_bytes(), L_TIN),
    (b"numero fiscal", L_TIN),
    (b"identifiant fiscal", L_TIN),
    ("número de identificación fiscal".as_bytes(), L_TIN | L_DNI),
    (b"numero de identificacion fiscal", L_TIN | L_DNI),
    (b"nif", L_TIN | L_DNI),
    (b"codice fiscale", L_TIN | L_CF),
    (b"cf", L_CF),
    ("número de contribuinte".as_bytes(), L_TIN),
    (b"numero de contribuinte", L_TIN),
    (b"fiscaal nummer", L_TIN),
    (b"fiscaal identificatienummer", L_TIN),
    // Identity documents.
    (b"dni", L_DNI),
    (b"nie", L_DNI),
    (b"documento nacional", L_DNI),
    (b"nhs", L_NHS),
    (b"passport", L_PASSPORT),
    (b"reisepass", L_PASSPORT),
    (b"passnummer", L_PASSPORT),
    (b"pass nr", L_PASSPORT),
    (b"passeport", L_PASSPORT),
    (b"pasaporte", L_PASSPORT),
    (b"passaporto", L_PASSPORT),
    (b"passaporte", L_PASSPORT),
    (b"paspoort", L_PASSPORT),
    // Payment cards.
    (b"card number", L_CARD),
    (b"card no", L_CARD),
    (b"card nr", L_CARD),
    (b"card #", L_CARD),
    (b"cardnumber", L_CARD),
    (b"credit card", L_CARD),
    (b"debit card", L_CARD),
    (b"kartennummer", L_CARD),
    (b"kreditkarte", L_CARD),
    (b"debitkarte", L_CARD),
    ("numéro de carte".as_bytes(), L_CARD),
    (b"numero de carte", L_CARD),
    (b"carte bancaire", L_CARD),
    ("carte de crédit".as_bytes(), L_CARD),
    (b"carte de credit", L_CARD),
    ("número de tarjeta".as_bytes(), L_CARD),
    (b"numero de tarjeta", L_CARD),
    ("tarjeta de crédito".as_bytes(), L_CARD),
    (b"tarjeta de credito", L_CARD),
    (b"numero di carta", L_CARD),
    (b"numero della carta", L_CARD),
    (b"carta di credito", L_CARD),
    ("número de cartão".as_bytes(), L_CARD),
    (b"numero de cartao", L_CARD),
    ("número do cartão".as_bytes(), L_CARD),
    (b"numero do cartao", L_CARD),
    ("cartão de crédito".as_bytes(), L_CARD),
    (b"cartao de credito", L_CARD),
    (b"kaartnummer", L_CARD),
    (b"creditcard", L_CARD),
    (b"bankkaart", L_CARD),
    // Bank accounts.
    (b"iban", L_ACCOUNT),
    (b"account number", L_ACCOUNT),
    (b"account no", L_ACCOUNT),
    (b"bank account", L_ACCOUNT),
    (b"kontonummer", L_ACCOUNT),
    (b"bankverbindung", L_ACCOUNT),
    ("numéro de compte".as_bytes(), L_ACCOUNT),
    (b"numero de compte", L_ACCOUNT),
    (b"rib", L_ACCOUNT),
    ("número de cuenta".as_bytes(), L_ACCOUNT),
    (b"numero de cuenta", L_ACCOUNT),
    (b"cuenta bancaria", L_ACCOUNT),
    (b"numero di conto", L_ACCOUNT),
    (b"numero del conto", L_ACCOUNT),
    (b"conto corrente", L_ACCOUNT),
    ("número de conta".as_bytes(), L_ACCOUNT),
    (b"numero de conta", L_ACCOUNT),
    ("conta bancária".as_bytes(), L_ACCOUNT),
    (b"conta bancaria", L_ACCOUNT),
    (b"rekeningnummer", L_ACCOUNT),
    (b"bankrekening", L_ACCOUNT),
];

/// Tells whether a label starting at a clean-view offset may name a value starting at another:
/// the caller decides on the original text (the label starts a word there and lies within
/// [`LABEL_REACH`] bytes), so that a stream and a whole text decide alike.
pub(crate) type LabelOk<'a> = &'a dyn Fn(usize, usize) -> bool;

/// The label classes that name the value starting at `start`: for each class, the nearest
/// label in the [`LABEL_BACK`] bytes before it with nothing between them but a few words (no
/// line break, sentence end or other number).
fn labels_before(t: &[u8], start: usize, label_ok: LabelOk) -> u16 {
    let from = start.saturating_sub(LABEL_BACK);
    let window = &t[from..start];
    let index = label_index();
    let mut found = 0;
    // Nearest first: walk back over the window, trying only the labels that begin with the
    // byte at each position (a few per letter), so a call costs about one pass over 48 bytes.
    for p in (0..window.len()).rev() {
        for &k in &index[usize::from(window[p].to_ascii_lowercase())] {
            let (label, class) = LABELS[usize::from(k)];
            let n = label.len();
            if found & class == class || p + n > window.len() {
                continue;
            }
            if !label_matches(&window[p..p + n], label) {
                continue;
            }
            let at = from + p;
            let after = t.get(at + n).copied();
            if n <= 4 && after.is_some_and(|b| b.is_ascii_alphabetic()) {
                continue;
            }
            if gap_ok(&t[at + n..start]) && label_ok(at, start) {
                found |= class;
            }
        }
    }
    found
}

/// Indices into [`LABELS`] by first byte.
fn label_index() -> &'static [Vec<u8>] {
    static INDEX: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        let mut index = vec![Vec::new(); 256];
        for (k, (label, _)) in LABELS.iter().enumerate() {
            if let (Some(&first), Ok(k)) = (label.first(), u8::try_from(k)) {
                index[usize::from(first)].push(k);
            }
        }
        index
    })
}

#[inline]
fn label_matches(text: &[u8], label: &[u8]) -> bool {
    text.iter().zip(label).all(|(&x, &l)| {
        if l == b' ' {
            matches!(x, b' ' | b'-' | b'_' | b'.')
        } else {
            x.to_ascii_lowercase() == l
        }
    })
}

/// What may stand between a label and its value: a few words and punctuation, not a line
/// break, a sentence end or another number.
fn gap_ok(gap: &[u8]) -> bool {
    let mut letters = 0;
    let mut digits = 0;
    for (k, &b) in gap.iter().enumerate() {
        match b {
            b'\n' | b';' | b'|' | b'!' | b'?' => return false,
            // A full stop after a long word ends a sentence; `no.`, `Nr.`, `soc. sec.` do not.
            b'.' if letters > 3 && gap.get(k + 1).is_none_or(u8::is_ascii_whitespace) => {
                return false;
            }
            _ => {}
        }
        letters = if b.is_ascii_alphabetic() {
            letters + 1
        } else {
            0
        };
        digits = if b.is_ascii_digit() { digits + 1 } else { 0 };
        if digits >= 3 {
            return false;
        }
    }
    true
}

/// A value in the shape of `kind` that fails its checksum or ranges, named by a label: found
/// at a lower confidence, marked as a labelled look-alike.
fn push_lookalike(out: &mut Vec<Hit>, start: usize, end: usize, kind: &'static str) {
    let mut h = Hit::new(start, end, kind, Severity::Medium);
    h.score = LOOKALIKE_SCORE;
    h.detail = Some(LOOKALIKE.to_string());
    out.push(h);
}

/// A value that has no checksum (a passport number), found only because a label names it.
fn push_labelled(out: &mut Vec<Hit>, start: usize, end: usize, kind: &'static str) {
    let mut h = Hit::new(start, end, kind, Severity::Medium);
    h.score = LABELLED_SCORE;
    h.detail = Some(LABELLED.to_string());
    out.push(h);
}

// ---------------------------------------------------------------- email

fn scan_emails(t: &[u8], out: &mut Vec<Hit>) {
    let local_ok = |b: u8| is_alnum(b) || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-');
    let mut skip_to = 0;
    for at in memchr::memchr_iter(b'@', t) {
        if at < skip_to {
            continue;
        }
        let mut s = at;
        while s > 0 && at - s < 64 && local_ok(t[s - 1]) {
            s -= 1;
        }
        if s > 0 && (local_ok(t[s - 1]) || t[s - 1] == b'@') {
            continue; // local part too long or glued to another address
        }
        while s < at && t[s] == b'.' {
            s += 1;
        }
        if s == at || t[at - 1] == b'.' || in_url_userinfo(t, s) {
            continue;
        }
        // Domain: labels of [A-Za-z0-9-] separated by single dots.
        let mut e = at + 1;
        let mut last_dot = None;
        while e < t.len() && e - at <= 253 {
            let b = t[e];
            if is_alnum(b) || b == b'-' {
                e += 1;
            } else if b == b'.' && e + 1 < t.len() && is_alnum(t[e + 1]) && t[e - 1] != b'.' {
                last_dot = Some(e);
                e += 1;
            } else {
                break;
            }
        }
        let Some(dot) = last_dot else { continue };
        let tld = &t[dot + 1..e];
        if tld.len() < 2 || !tld.iter().all(u8::is_ascii_alphabetic) || t[at + 1] == b'-' {
            continue;
        }
        if e < t.len() && (t[e] == b'@' || t[e] == b'_') {
            continue;
        }
        if is_file_extension(tld) {
            continue;
        }
        push(out, s, e, "email", Severity::Medium);
        skip_to = e;
    }
}

/// `scheme://user:pass@host` and `https://token@host`: credentials in a URL, not an address
/// (the secrets detector reports them).
fn in_url_userinfo(t: &[u8], s: usize) -> bool {
    let from = s.saturating_sub(128);
    let before = &t[from..s];
    let word_start = before
        .iter()
        .rposition(|b| b.is_ascii_whitespace() || matches!(b, b'"' | b'\'' | b'<' | b'('))
        .map_or(0, |p| p + 1);
    memchr::memmem::find(&before[word_start..], b"://").is_some()
}

/// `icon@2x.png` is a file name, not an address.
fn is_file_extension(tld: &[u8]) -> bool {
    const EXT: [&[u8]; 12] = [
        b"png", b"jpg", b"jpeg", b"gif", b"svg", b"webp", b"css", b"js", b"ts", b"map", b"ico",
        b"pdf",
    ];
    EXT.iter().any(|e| tld.eq_ignore_ascii_case(e))
}

// ---------------------------------------------------------------- ipv6

fn scan_ipv6(t: &[u8], out: &mut Vec<Hit>) {
    let hexish = |b: u8| b.is_ascii_hexdigit() || b == b':';
    let mut skip_to = 0;
    for at in memchr::memchr_iter(b':', t) {
        if at < skip_to {
            continue;
        }
        let mut s = at;
        while s > 0 && at - s < 45 && hexish(t[s - 1]) {
            s -= 1;
        }
        let mut e = at + 1;
        while e < t.len() && e - s < 46 && (hexish(t[e]) || t[e] == b'.') {
            e += 1;
        }
        skip_to = e;
        while e > s && t[e - 1] == b'.' {
            e -= 1;
        }
        if s > 0 && (is_alnum(t[s - 1]) || matches!(t[s - 1], b'_' | b'.' | b':')) {
            continue;
        }
        if e < t.len() && (is_alnum(t[e]) || t[e] == b'_') {
            continue;
        }
        let token = &t[s..e];
        let Ok(text) = std::str::from_utf8(token) else {
            continue;
        };
        if text.parse::<std::net::Ipv6Addr>().is_err() {
            continue;
        }
        let groups: Vec<&str> = text.split(':').filter(|g| !g.is_empty()).collect();
        let longest = groups.iter().map(|g| g.len()).max().unwrap_or(0);
        if groups.len() < 2 || (groups.len() < 3 && longest < 3) {
            continue;
        }
        push(out, s, e, "ipv6", Severity::Low);
    }
}

// ---------------------------------------------------------------- uppercase-led ids

fn scan_upper(t: &[u8], i: usize, kinds: Kinds, label_ok: LabelOk, out: &mut Vec<Hit>) -> usize {
    let word_end = i + t[i..]
        .iter()
        .take(MAX_TOKEN)
        .take_while(|b| is_alnum(**b))
        .count();
    if kinds.on("iban")
        && let Some((end, valid)) = iban_at(t, i)
    {
        if valid {
            push(out, i, end, "iban", Severity::High);
            return end;
        }
        if labels_before(t, i, label_ok) & L_ACCOUNT != 0 {
            push_lookalike(out, i, end, "iban");
            return end;
        }
    }
    if kinds.on("uk_nino")
        && let Some((end, valid)) = nino_at(t, i)
    {
        if valid {
            push(out, i, end, "uk_nino", Severity::High);
            return end;
        }
        if labels_before(t, i, label_ok) & L_NINO != 0 {
            push_lookalike(out, i, end, "uk_nino");
            return end;
        }
    }
    let word = &t[i..word_end];
    let bounded = word_end >= t.len() || t[word_end] != b'_';
    if !bounded {
        return word_end;
    }
    if word.len() == 16 && kinds.on("it_fiscal_code") && codice_fiscale_shape(word) {
        if codice_fiscale_check(word) {
            push(out, i, word_end, "it_fiscal_code", Severity::High);
        } else if labels_before(t, i, label_ok) & L_CF != 0 {
            push_lookalike(out, i, word_end, "it_fiscal_code");
        }
        return word_end;
    }
    if word.len() == 9 && kinds.on("es_nie") && nie_shape(word) {
        if valid_nie(word) {
            push(out, i, word_end, "es_nie", Severity::High);
        } else if labels_before(t, i, label_ok) & L_DNI != 0 {
            push_lookalike(out, i, word_end, "es_nie");
        }
        return word_end;
    }
    if kinds.on("passport")
        && passport_shape(word)
        && labels_before(t, i, label_ok) & L_PASSPORT != 0
    {
        push_labelled(out, i, word_end, "passport");
    }
    word_end
}

/// A passport number as countries write them: 6 to 9 capitals and digits, at least half of
/// them digits.
fn passport_shape(w: &[u8]) -> bool {
    (6..=9).contains(&w.len())
        && w.iter()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        && 2 * w.iter().filter(|b| b.is_ascii_digit()).count() >= w.len()
}

/// A UK National Insurance number starting at `i`: two letters, three pairs of digits and a
/// letter, written together or with single spaces (`QQ 12 34 56 C`). Returns its end and
/// whether its prefix and suffix are ones HMRC issues.
fn nino_at(t: &[u8], i: usize) -> Option<(usize, bool)> {
    let upper = |j: usize| t.get(j).is_some_and(u8::is_ascii_uppercase);
    if !upper(i) || !upper(i + 1) {
        return None;
    }
    let mut j = i + 2;
    let mut spaced = None;
    let mut sep = |j: &mut usize| {
        let has = t.get(*j) == Some(&b' ');
        match spaced {
            None => spaced = Some(has),
            Some(s) if s != has => return false,
            _ => {}
        }
        if has {
            *j += 1;
        }
        true
    };
    for _ in 0..3 {
        if !sep(&mut j) {
            return None;
        }
        if !(t.get(j).is_some_and(u8::is_ascii_digit)
            && t.get(j + 1).is_some_and(u8::is_ascii_digit))
        {
            return None;
        }
        j += 2;
    }
    if !sep(&mut j) || !upper(j) {
        return None;
    }
    let end = j + 1;
    if t.get(end).is_some_and(|&b| is_alnum(b) || b == b'_') {
        return None;
    }
    let (a, b, suffix) = (t[i], t[i + 1], t[j]);
    let valid = !b"DFIQUV".contains(&a)
        && !b"DFIOQUV".contains(&b)
        && ![b"BG", b"GB", b"NK", b"KN", b"TN", b"NT", b"ZZ"].contains(&&[a, b])
        && (b'A'..=b'D').contains(&suffix);
    Some((end, valid))
}

/// IBAN lengths by country (ISO 13616 registry).
fn iban_length(country: &[u8]) -> Option<usize> {
    Some(match country {
        b"AD" => 24,
        b"AE" => 23,
        b"AT" => 20,
        b"BE" => 16,
        b"BG" => 22,
        b"BH" => 22,
        b"BR" => 29,
        b"CH" => 21,
        b"CY" => 28,
        b"CZ" => 24,
        b"DE" => 22,
        b"DK" => 18,
        b"EE" => 20,
        b"ES" => 24,
        b"FI" => 18,
        b"FR" => 27,
        b"GB" => 22,
        b"GI" => 23,
        b"GR" => 27,
        b"HR" => 21,
        b"HU" => 28,
        b"IE" => 22,
        b"IL" => 23,
        b"IS" => 26,
        b"IT" => 27,
        b"LI" => 21,
        b"LT" => 20,
        b"LU" => 20,
        b"LV" => 21,
        b"MC" => 27,
        b"MT" => 31,
        b"NL" => 18,
        b"NO" => 15,
        b"PL" => 28,
        b"PT" => 25,
        b"RO" => 24,
        b"SA" => 24,
        b"SE" => 24,
        b"SI" => 19,
        b"SK" => 24,
        b"SM" => 27,
        b"TR" => 26,
        b"UA" => 29,
        _ => return None,
    })
}

/// An IBAN starting at `i`, written contiguously or in groups separated by single spaces:
/// its end and whether its check digits hold.
fn iban_at(t: &[u8], i: usize) -> Option<(usize, bool)> {
    if i + 4 > t.len() || !t[i + 2].is_ascii_digit() || !t[i + 3].is_ascii_digit() {
        return None;
    }
    let want = iban_length(&t[i..i + 2])?;
    let mut chars = [0u8; 34];
    let mut count = 0;
    let mut j = i;
    while count < want && j < t.len() {
        let b = t[j];
        if b.is_ascii_digit() || b.is_ascii_uppercase() {
            chars[count] = b;
            count += 1;
            j += 1;
        } else if b == b' ' && j + 1 < t.len() && is_alnum(t[j + 1]) && count % 4 == 0 {
            j += 1;
        } else {
            return None;
        }
    }
    if count != want || (j < t.len() && is_alnum(t[j])) {
        return None;
    }
    Some((j, mod97(&chars[..count])))
}

/// ISO 7064 MOD 97-10 over the rearranged IBAN.
fn mod97(iban: &[u8]) -> bool {
    let mut rem: u32 = 0;
    for &b in iban[4..].iter().chain(&iban[..4]) {
        if b.is_ascii_digit() {
            rem = (rem * 10 + u32::from(b - b'0')) % 97;
        } else {
            let v = u32::from(b - b'A') + 10;
            rem = (rem * 100 + v) % 97;
        }
    }
    rem == 1
}

/// Italian codice fiscale: structure (letters and digits where they belong).
fn codice_fiscale_shape(w: &[u8]) -> bool {
    // Digits may be replaced by letters (omocodia) in positions 6,7,9,10,12,13,14.
    const DIGIT_POS: [usize; 7] = [6, 7, 9, 10, 12, 13, 14];
    const OMO: &[u8] = b"LMNPQRSTUV";
    for (p, &b) in w.iter().enumerate() {
        let ok = if DIGIT_POS.contains(&p) {
            b.is_ascii_digit() || OMO.contains(&b)
        } else if p == 8 {
            b"ABCDEHLMPRST".contains(&b)
        } else {
            b.is_ascii_uppercase()
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Italian codice fiscale: the check character of a value of the right shape.
fn codice_fiscale_check(w: &[u8]) -> bool {
    const ODD: [u32; 26] = [
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24,
        23,
    ];
    let mut sum = 0;
    for (p, &b) in w[..15].iter().enumerate() {
        let v = if b.is_ascii_digit() {
            u32::from(b - b'0')
        } else {
            u32::from(b - b'A')
        };
        // Positions are 1-based in the specification: odd positions use the table.
        sum += if p % 2 == 0 { ODD[v as usize] } else { v };
    }
    w[15] == b'A' + (sum % 26) as u8
}

const DNI_LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";

/// Spanish NIE shape: X/Y/Z, seven digits, a letter.
fn nie_shape(w: &[u8]) -> bool {
    matches!(w[0], b'X' | b'Y' | b'Z')
        && w[1..8].iter().all(u8::is_ascii_digit)
        && w[8].is_ascii_uppercase()
}

/// Spanish NIE: X/Y/Z, seven digits, control letter.
fn valid_nie(w: &[u8]) -> bool {
    let lead = match w[0] {
        b'X' => 0,
        b'Y' => 1,
        b'Z' => 2,
        _ => return false,
    };
    if !w[1..8].iter().all(u8::is_ascii_digit) || !w[8].is_ascii_uppercase() {
        return false;
    }
    let n = w[1..8]
        .iter()
        .fold(lead, |acc, &b| acc * 10 + u32::from(b - b'0'));
    DNI_LETTERS[(n % 23) as usize] == w[8]
}

// ---------------------------------------------------------------- numeric tokens

/// A run of digit groups separated by short separators, e.g. `+44 20 7946 0958`.
struct NumToken {
    start: usize,
    end: usize,
    plus: bool,
    groups: [(u32, u32); 8],
    count: usize,
    /// Too long or too many groups: not a candidate.
    overflow: bool,
}

impl NumToken {
    fn group(&self, k: usize) -> (usize, usize) {
        let (s, e) = self.groups[k];
        (s as usize, e as usize)
    }

    fn digits(&self, t: &[u8], buf: &mut [u8; 40]) -> usize {
        let mut n = 0;
        for k in 0..self.count {
            let (s, e) = self.group(k);
            for &b in &t[s..e] {
                if n < buf.len() {
                    buf[n] = b - b'0';
                }
                n += 1;
            }
        }
        n
    }

    fn lens(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.count).map(|k| self.group(k).1 - self.group(k).0)
    }

    fn sep<'t>(&self, t: &'t [u8], k: usize) -> &'t [u8] {
        &t[self.group(k).1..self.group(k + 1).0]
    }

    fn all_seps(&self, t: &[u8], allowed: &[&[u8]]) -> bool {
        (0..self.count.saturating_sub(1)).all(|k| allowed.contains(&self.sep(t, k)))
    }

    /// Groups split by single spaces, dashes or dots, mixed (`4111-1111 1111.1111`,
    /// `123.45-6789`): how a value is written to slip past a uniform-separator check.
    fn mixed_seps(&self, t: &[u8]) -> bool {
        self.all_seps(t, &[b" ", b"-", b"."])
    }
}

fn read_numeric(t: &[u8], i: usize) -> NumToken {
    let mut tok = NumToken {
        start: i,
        end: i,
        plus: false,
        groups: [(0, 0); 8],
        count: 0,
        overflow: false,
    };
    let mut j = i;
    if t[j] == b'+' {
        tok.plus = true;
        j += 1;
    } else if t[j] == b'(' {
        j += 1;
    }
    loop {
        let s = j;
        while j < t.len() && t[j].is_ascii_digit() {
            j += 1;
        }
        if j == s {
            break;
        }
        if tok.count == tok.groups.len() || j - i > 64 {
            tok.overflow = true;
        } else {
            tok.groups[tok.count] = (s as u32, j as u32);
            tok.count += 1;
        }
        tok.end = j;
        // Separator: one or two of space, dash, dot, slash, parentheses, then a digit.
        let mut k = j;
        while k < t.len() && k - j < 2 && matches!(t[k], b' ' | b'-' | b'.' | b'(' | b')' | b'/') {
            k += 1;
        }
        if k == j || k >= t.len() || !t[k].is_ascii_digit() {
            if k > j && t[j] == b')' {
                tok.end = j + 1;
            }
            break;
        }
        j = k;
    }
    // Skip the rest of an overlong run so it is not rescanned from the middle.
    if tok.overflow {
        while tok.end < t.len()
            && (t[tok.end].is_ascii_digit() || matches!(t[tok.end], b' ' | b'-' | b'.'))
        {
            tok.end += 1;
        }
    }
    tok
}

fn scan_numeric(t: &[u8], i: usize, kinds: Kinds, label_ok: LabelOk, out: &mut Vec<Hit>) -> usize {
    if (t[i] == b'+' || t[i] == b'(') && !(i + 1 < t.len() && t[i + 1].is_ascii_digit()) {
        return i + 1;
    }
    let tok = read_numeric(t, i);
    if tok.count == 0 || tok.overflow {
        return tok.end.max(i + 1);
    }
    let mut digits = [0u8; 40];
    let n = tok.digits(t, &mut digits);
    let d = &digits[..n.min(40)];
    let after = t.get(tok.end).copied();
    let glued = after.is_some_and(|b| is_alnum(b) || b == b'_');
    let (start, end) = (tok.start, tok.end);

    // Spanish DNI: eight digits and the control letter.
    if kinds.on("es_dni")
        && tok.count == 1
        && n == 8
        && !tok.plus
        && let Some(letter) = after.filter(u8::is_ascii_uppercase)
    {
        let after2 = t.get(end + 1).copied();
        let num = d.iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
        if !after2.is_some_and(is_alnum) {
            if DNI_LETTERS[(num % 23) as usize] == letter {
                push(out, start, end + 1, "es_dni", Severity::High);
                return end + 1;
            }
            if labels_before(t, start, label_ok) & L_DNI != 0 {
                push_lookalike(out, start, end + 1, "es_dni");
                return end + 1;
            }
        }
    }
    if glued {
        // A passport number may begin with digits (`18AB12345`).
        let word_end = start
            + t[start..]
                .iter()
                .take(16)
                .take_while(|&&b| is_alnum(b))
                .count();
        if kinds.on("passport")
            && !tok.plus
            && t[start].is_ascii_digit()
            && t.get(word_end).is_none_or(|&b| !(is_alnum(b) || b == b'_'))
            && passport_shape(&t[start..word_end])
            && labels_before(t, start, label_ok) & L_PASSPORT != 0
        {
            push_labelled(out, start, word_end, "passport");
            return word_end;
        }
        return end;
    }
    if after == Some(b'.') && t.get(tok.end + 1).is_some_and(u8::is_ascii_digit) {
        return end;
    }
    let lens: Vec<usize> = tok.lens().collect();
    if kinds.on("ipv4") && !tok.plus && tok.count == 4 && tok.all_seps(t, &[b"."]) {
        let ok = (0..4).all(|k| {
            let (s, e) = tok.group(k);
            let g = &t[s..e];
            g.len() <= 3
                && (g.len() == 1 || g[0] != b'0')
                && g.iter().fold(0u32, |a, &x| a * 10 + u32::from(x - b'0')) <= 255
        });
        if ok {
            push(out, start, end, "ipv4", Severity::Low);
            return end;
        }
    }
    let us_kinds = kinds.on("us_ssn") || kinds.on("us_itin");
    if us_kinds && !tok.plus && lens == [3, 2, 4] && tok.mixed_seps(t) {
        us_taxpayer(t, start, end, d, kinds, label_ok, false, out);
        return end;
    }
    // Mixed separators only between groups of three to six digits, as cards are written.
    let card_seps = tok.count == 1
        || tok.all_seps(t, &[b" "])
        || tok.all_seps(t, &[b"-"])
        || (tok.mixed_seps(t) && lens.iter().all(|l| (3..=6).contains(l)));
    if kinds.on("payment_card") && !tok.plus && (13..=19).contains(&n) && card_seps && valid_card(d)
    {
        push(out, start, end, "payment_card", Severity::High);
        return end;
    }
    if kinds.on("fr_nir")
        && !tok.plus
        && n == 15
        && (tok.count == 1 || tok.all_seps(t, &[b" "]))
        && valid_nir(d)
    {
        push(out, start, end, "fr_nir", Severity::High);
        return end;
    }
    if kinds.on("phone") && tok.plus && (8..=15).contains(&n) && d[0] != 0 {
        push(out, start, end, "phone", Severity::Medium);
        return end;
    }
    if kinds.on("uk_nhs")
        && n == 10
        && (tok.count == 1 || lens == [3, 3, 4])
        && context(t, start, &[b"nhs"])
    {
        if valid_nhs(d) {
            push(out, start, end, "uk_nhs", Severity::High);
            return end;
        }
        // Labelled as an NHS number: not a phone number, even in the phone's shape.
        if labels_before(t, start, label_ok) & L_NHS != 0 {
            push_lookalike(out, start, end, "uk_nhs");
            return end;
        }
    }
    if kinds.on("de_tax_id")
        && n == 11
        && d[0] != 0
        && valid_steuer_id(d)
        && context(
            t,
            start,
            &[b"steuer", b"tax", b"idnr", b"identifikationsnummer", b"tin"],
        )
    {
        push(out, start, end, "de_tax_id", Severity::High);
        return end;
    }
    if kinds.on("phone") && is_nanp(t, &tok, d) {
        push(out, start, end, "phone", Severity::Medium);
        return end;
    }
    if kinds.on("phone")
        && d[0] == 0
        && (9..=12).contains(&n)
        && tok.count >= 2
        && context(
            t,
            start,
            &[
                b"phone",
                b"tel",
                b"mobile",
                b"cell",
                b"call",
                b"fax",
                b"handy",
                b"portable",
                b"cellulare",
                b"movil",
            ],
        )
    {
        push(out, start, end, "phone", Severity::Medium);
        return end;
    }
    if !tok.plus {
        labelled_numeric(t, &tok, d, &lens, kinds, label_ok, out);
    }
    end
}

/// A nine-digit US number (`123-45-6789`, or nine digits in a row after a label): an ITIN
/// (area 9xx, group 50-65, 70-88, 90-92, 94-99) or an SSN when its ranges say so; otherwise a
/// labelled look-alike of the kind its label names. Nine digits in a row need an SSN or ITIN
/// label even when valid (a generic tax label may name another country's nine-digit number).
#[allow(clippy::too_many_arguments)]
fn us_taxpayer(
    t: &[u8],
    start: usize,
    end: usize,
    d: &[u8],
    kinds: Kinds,
    label_ok: LabelOk,
    need_label: bool,
    out: &mut Vec<Hit>,
) -> bool {
    let labels = if need_label {
        let l = labels_before(t, start, label_ok);
        if l & (L_SSN | L_ITIN) == 0 {
            return false;
        }
        Some(l)
    } else {
        None
    };
    if valid_itin(d) {
        if kinds.on("us_itin") {
            push(out, start, end, "us_itin", Severity::High);
            return true;
        }
        return false;
    }
    if valid_ssn(d) {
        if kinds.on("us_ssn") {
            push(out, start, end, "us_ssn", Severity::High);
            return true;
        }
        return false;
    }
    let l = labels.unwrap_or_else(|| labels_before(t, start, label_ok));
    let kind = if l & L_ITIN != 0 || (l & L_SSN == 0 && l & L_TIN != 0 && d[0] == 9) {
        "us_itin"
    } else if l & (L_SSN | L_TIN) != 0 {
        "us_ssn"
    } else {
        return false;
    };
    if kinds.on(kind) {
        push_lookalike(out, start, end, kind);
        return true;
    }
    false
}

/// Numbers in the shape of a card, account or national number that failed validation above:
/// reported only when a label names them.
fn labelled_numeric(
    t: &[u8],
    tok: &NumToken,
    d: &[u8],
    lens: &[usize],
    kinds: Kinds,
    label_ok: LabelOk,
    out: &mut Vec<Hit>,
) {
    let n = d.len();
    let (start, end) = (tok.start, tok.end);
    let spaced = tok.count == 1 || tok.all_seps(t, &[b" "]);
    let card = (13..=19).contains(&n) && (spaced || tok.all_seps(t, &[b"-"]));
    let nir = n == 15 && spaced;
    let nhs = n == 10 && (tok.count == 1 || lens == [3, 3, 4]);
    let tax = n == 11 && tok.count == 1;
    let nine = n == 9 && tok.count == 1;
    let passport = (6..=9).contains(&n) && tok.count == 1;
    if !(card || nir || nhs || tax || nine || passport) {
        return;
    }
    let l = labels_before(t, start, label_ok);
    if l == 0 {
        return;
    }
    let kind = if card && l & L_CARD != 0 {
        "payment_card"
    } else if nir && l & L_SSN != 0 {
        "fr_nir"
    } else if nhs && l & L_NHS != 0 {
        "uk_nhs"
    } else if tax && l & L_TIN != 0 {
        "de_tax_id"
    } else {
        ""
    };
    if !kind.is_empty() && kinds.on(kind) {
        push_lookalike(out, start, end, kind);
        return;
    }
    if nine && us_taxpayer(t, start, end, d, kinds, label_ok, true, out) {
        return;
    }
    if passport && l & L_PASSPORT != 0 && kinds.on("passport") {
        push_labelled(out, start, end, "passport");
    }
}

/// North American numbers written with separators: (212) 555-0147, 212-555-0147, 1-800-555-0199.
fn is_nanp(t: &[u8], tok: &NumToken, d: &[u8]) -> bool {
    let lens: Vec<usize> = tok.lens().collect();
    let (area, exchange) = match lens.as_slice() {
        [3, 3, 4] => (0, 3),
        [1, 3, 3, 4] if d[0] == 1 => (1, 4),
        _ => return false,
    };
    if d[area] < 2 || d[exchange] < 2 {
        return false;
    }
    let k0 = lens.len() - 3;
    let first_sep = if k0 == 0 && t[tok.start] == b'(' {
        tok.sep(t, 0) == b") " || tok.sep(t, 0) == b")"
    } else {
        matches!(tok.sep(t, k0), b"-" | b"." | b" ")
    };
    let rest = (k0 + 1..tok.count - 1).all(|k| matches!(tok.sep(t, k), b"-" | b"." | b" "));
    let lead = (0..k0).all(|k| matches!(tok.sep(t, k), b"-" | b" " | b"."));
    first_sep && rest && lead
}

fn context(t: &[u8], start: usize, words: &[&[u8]]) -> bool {
    let from = start.saturating_sub(CONTEXT_BACK);
    let window = &t[from..start];
    words
        .iter()
        .any(|w| window.windows(w.len()).any(|x| x.eq_ignore_ascii_case(w)))
}

pub(crate) fn luhn(d: &[u8]) -> bool {
    let mut sum = 0u32;
    for (k, &x) in d.iter().rev().enumerate() {
        let mut v = u32::from(x);
        if k % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// Luhn and a known issuer prefix (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro).
fn valid_card(d: &[u8]) -> bool {
    if d.iter().all(|&x| x == d[0]) || !luhn(d) {
        return false;
    }
    let p = |k: usize| d[..k].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
    let n = d.len();
    match d[0] {
        4 => matches!(n, 13 | 16 | 19),
        5 => (51..=55).contains(&p(2)) && n == 16,
        2 => (2221..=2720).contains(&p(4)) && n == 16,
        3 => {
            (matches!(p(2), 34 | 37) && n == 15)
                || ((3528..=3589).contains(&p(4)) && n >= 16)
                || (matches!(p(2), 36 | 38 | 30) && n >= 14)
        }
        6 => p(4) == 6011 || p(2) == 65 || (644..=649).contains(&p(3)) || p(2) == 62,
        _ => false,
    }
}

/// US SSN: area not 000, 666 or 9xx; group not 00; serial not 0000; not a famous specimen.
fn valid_ssn(d: &[u8]) -> bool {
    let num = |r: std::ops::Range<usize>| d[r].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
    let (area, group, serial) = (num(0..3), num(3..5), num(5..9));
    let whole = num(0..9);
    area != 0
        && area != 666
        && area < 900
        && group != 0
        && serial != 0
        && whole != 78_051_120
        && whole != 219_099_999
}

/// US ITIN: area 9xx and a group the IRS assigns to ITINs.
fn valid_itin(d: &[u8]) -> bool {
    let group = d[3] * 10 + d[4];
    d[0] == 9
        && ((50..=65).contains(&group)
            || (70..=88).contains(&group)
            || (90..=92).contains(&group)
            || (94..=99).contains(&group))
}

/// UK NHS number: modulus 11 with weights 10..2.
fn valid_nhs(d: &[u8]) -> bool {
    let sum: u32 = d[..9]
        .iter()
        .enumerate()
        .map(|(k, &x)| u32::from(x) * (10 - k as u32))
        .sum();
    let check = 11 - sum % 11;
    let check = if check == 11 { 0 } else { check };
    check != 10 && check == u32::from(d[9])
}

/// German Steuerliche Identifikationsnummer: digit-frequency rule and ISO 7064 MOD 11,10.
fn valid_steuer_id(d: &[u8]) -> bool {
    let mut counts = [0u8; 10];
    for &x in &d[..10] {
        counts[x as usize] += 1;
    }
    let repeated = counts.iter().filter(|&&c| c >= 2).count();
    let max = counts.iter().copied().max().unwrap_or(0);
    if repeated != 1 || max > 3 {
        return false;
    }
    let mut product = 10u32;
    for &x in &d[..10] {
        let mut sum = (u32::from(x) + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (sum * 2) % 11;
    }
    let check = (11 - product) % 10;
    check == u32::from(d[10])
}

/// French NIR (numéro de sécurité sociale): sex, month, and key = 97 - (number mod 97).
fn valid_nir(d: &[u8]) -> bool {
    if !matches!(d[0], 1 | 2 | 3 | 4 | 7 | 8) {
        return false;
    }
    let month = d[3] * 10 + d[4];
    if !(1..=12).contains(&month) && !(20..=42).contains(&month) && !(50..=99).contains(&month) {
        return false;
    }
    let body = d[..13].iter().fold(0u64, |a, &x| a * 10 + u64::from(x));
    let key = u64::from(d[13]) * 10 + u64::from(d[14]);
    key == 97 - body % 97
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A label counts where it starts a word (the engine decides this on the original text).
    fn kinds(text: &str) -> Vec<(String, String)> {
        let t = text.as_bytes();
        let label_ok = |l: usize, v: usize| {
            v - l <= LABEL_REACH && (l == 0 || !(is_alnum(t[l - 1]) || t[l - 1] == b'_'))
        };
        let mut out = Vec::new();
        scan(t, Kinds(u32::MAX), &label_ok, &mut out);
        out.into_iter()
            .map(|h| (h.kind.to_string(), text[h.start..h.end].to_string()))
            .collect()
    }

    fn one(text: &str, kind: &str, value: &str) {
        let got = kinds(text);
        assert!(
            got.contains(&(kind.to_string(), value.to_string())),
            "{text:?}: {got:?}"
        );
    }

    fn none(text: &str) {
        let got = kinds(text);
        assert!(got.is_empty(), "{text:?}: {got:?}");
    }

    #[test]
    fn emails() {
        one(
            "mail jane.doe+x@example.co.uk.",
            "email",
            "jane.doe+x@example.co.uk",
        );
        none("icon@2x.png and user@localhost and @handle");
    }

    #[test]
    fn cards_need_luhn_and_issuer() {
        one(
            "card 4111 1111 1111 1111 exp",
            "payment_card",
            "4111 1111 1111 1111",
        );
        one("5500-0000-0000-0004", "payment_card", "5500-0000-0000-0004");
        one("amex 378282246310005", "payment_card", "378282246310005");
        none("card 4111 1111 1111 1112");
        none("order 1234567812345678");
    }

    #[test]
    fn iban_mod97() {
        one(
            "IBAN: GB82 WEST 1234 5698 7654 32 thanks",
            "iban",
            "GB82 WEST 1234 5698 7654 32",
        );
        one("DE89370400440532013000", "iban", "DE89370400440532013000");
        none("GB82 WEST 1234 5698 7654 33");
    }

    #[test]
    fn ssn_ranges() {
        one("ssn 123-45-6789", "us_ssn", "123-45-6789");
        none("666-45-6789 000-12-3456 900-12-3456 123-00-4567 123-45-0000 078-05-1120");
    }

    #[test]
    fn ip_addresses() {
        one("from 192.168.1.20:443", "ipv4", "192.168.1.20");
        none("version 1.2.3.4.5 and 256.1.1.1");
        one(
            "host 2001:db8::8a2e:370:7334 up",
            "ipv6",
            "2001:db8::8a2e:370:7334",
        );
        one(
            "fe80::1ff:fe23:4567:890a",
            "ipv6",
            "fe80::1ff:fe23:4567:890a",
        );
        none("std::io::Result at 12:30:45 and a::b");
    }

    #[test]
    fn phones() {
        one("call +44 20 7946 0958 today", "phone", "+44 20 7946 0958");
        one("(212) 555-0147", "phone", "(212) 555-0147");
        one("Tel. 030 1234567", "phone", "030 1234567");
        none("build 2024-01-15 and 123-456-7890x");
    }

    #[test]
    fn national_ids() {
        one("NHS number 943 476 5919", "uk_nhs", "943 476 5919");
        one("Steuer-ID 86095742719", "de_tax_id", "86095742719");
        one("DNI 12345678Z", "es_dni", "12345678Z");
        one("NIE X1234567L", "es_nie", "X1234567L");
        one("CF RSSMRA85T10A562S", "it_fiscal_code", "RSSMRA85T10A562S");
        one(
            "NIR 1 84 12 76 451 089 46",
            "fr_nir",
            "1 84 12 76 451 089 46",
        );
        // Failing checksums without a label stay quiet.
        none("ref 9434765918 and 12345678A and RSSMRA85T10A562T and 1 84 12 76 451 089 47");
    }

    /// Hits with their detail: `(kind, value, detail)`.
    fn detailed(text: &str) -> Vec<(String, String, Option<String>)> {
        let t = text.as_bytes();
        let label_ok = |l: usize, v: usize| {
            v - l <= LABEL_REACH && (l == 0 || !(is_alnum(t[l - 1]) || t[l - 1] == b'_'))
        };
        let mut out = Vec::new();
        scan(t, Kinds(u32::MAX), &label_ok, &mut out);
        out.into_iter()
            .map(|h| {
                (
                    h.kind.to_string(),
                    text[h.start..h.end].to_string(),
                    h.detail,
                )
            })
            .collect()
    }

    fn lookalike(text: &str, kind: &str, value: &str) {
        let got = detailed(text);
        let want = (
            kind.to_string(),
            value.to_string(),
            Some(LOOKALIKE.to_string()),
        );
        assert!(got.contains(&want), "{text:?}: {got:?}");
    }

    #[test]
    fn labelled_lookalikes_are_found() {
        lookalike("SSN: 900-12-3456", "us_ssn", "900-12-3456");
        lookalike(
            "Social Security Number 000-12-3456",
            "us_ssn",
            "000-12-3456",
        );
        lookalike("my ITIN is 912-34-5678", "us_itin", "912-34-5678");
        lookalike("ITIN 987432100", "us_itin", "987432100");
        lookalike("TIN 987-43-2100", "us_itin", "987-43-2100");
        lookalike(
            "card number 4111 1111 1111 1112",
            "payment_card",
            "4111 1111 1111 1112",
        );
        lookalike(
            "IBAN: DE00 3704 0044 0532 0130 00",
            "iban",
            "DE00 3704 0044 0532 0130 00",
        );
        lookalike("NHS 9434765918", "uk_nhs", "9434765918");
        lookalike("DNI 12345678A", "es_dni", "12345678A");
        lookalike(
            "codice fiscale RSSMRA85T10A562T",
            "it_fiscal_code",
            "RSSMRA85T10A562T",
        );
        lookalike(
            "numéro de sécurité sociale 1 84 12 76 451 089 47",
            "fr_nir",
            "1 84 12 76 451 089 47",
        );
        lookalike("NI number QQ 12 34 56 C", "uk_nino", "QQ 12 34 56 C");
        lookalike("Steuer-ID: 11111111111", "de_tax_id", "11111111111");
    }

    #[test]
    fn itin_and_nino_are_kinds_of_their_own() {
        one("ref 912-78-1234", "us_itin", "912-78-1234");
        one("ref AB123456C", "uk_nino", "AB123456C");
        one("ref AB 12 34 56 C.", "uk_nino", "AB 12 34 56 C");
        none("ref QQ123456C and GB123456A and AB123456E");
        let got = detailed("Passport: C01X00T47 and pasaporte 123456789");
        assert!(
            got.iter().filter(|h| h.0 == "passport").count() == 2,
            "{got:?}"
        );
        let got = detailed("passeport n° 18AB12345");
        assert!(got.iter().any(|h| h.1 == "18AB12345"), "{got:?}");
        none("order C01X00T47 and 123456789 and 18AB12345");
    }

    #[test]
    fn labels_are_lowercase_and_indexed() {
        assert!(LABELS.len() <= 256);
        for (label, _) in LABELS {
            assert!(label[0].is_ascii_lowercase(), "{label:?}");
            assert_eq!(label.to_ascii_lowercase(), label.to_vec());
        }
    }

    #[test]
    fn labels_start_words_and_stay_near() {
        none("continue 900-12-3456");
        none("SSN below.\n900-12-3456");
        none("The SSN field was removed from the form. 900-12-3456");
        none("ssn 123 then 900-12-3456");
    }
}
