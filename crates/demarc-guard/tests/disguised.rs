//! Personal data, secrets and canaries written in disguise: encoded (base64, twice, hex,
//! percent and JSON/JS escapes), with look-alike letters or other scripts' digits, spaced out
//! or with mixed separators; canaries reworded, reversed or encoded. Each must be found, the
//! whole disguised run redacted (or the stream blocked), in whole texts and in streams split
//! anywhere; ordinary text that merely looks similar stays quiet.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use demarc_guard::{Action, Detector, Direction, Finding, Guard, Policy, Report};
use proptest::prelude::*;

fn default_guard() -> Guard {
    static GUARD: std::sync::OnceLock<Guard> = std::sync::OnceLock::new();
    GUARD
        .get_or_init(|| Guard::new(&Policy::default()).unwrap())
        .clone()
}

const CANARY: &str = "dmc-7f3a9c2e1b5d4a6c";

/// Blocks the canary on output, as the gateway's canary check does (no decoding, nothing else).
fn canary_guard(decode: bool) -> Guard {
    let yaml = format!(
        "output:\n  canary: block\ndecode:\n  enabled: {decode}\ncanary:\n  tokens: ['{CANARY}']\n"
    );
    Guard::new(&Policy::from_yaml_str(&yaml).unwrap()).unwrap()
}

/// Redacts personal data and secrets in both directions (output included, so that streams are
/// checked where they release redacted text).
fn redacting_guard() -> Guard {
    static GUARD: std::sync::OnceLock<Guard> = std::sync::OnceLock::new();
    GUARD
        .get_or_init(|| {
            let yaml = "input:\n  pii: redact\n  secrets: redact\noutput:\n  pii: redact\n  secrets: redact\n";
            Guard::new(&Policy::from_yaml_str(yaml).unwrap()).unwrap()
        })
        .clone()
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(A[((v >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn spaced(s: &str) -> String {
    s.chars().map(String::from).collect::<Vec<_>>().join(" ")
}

/// Digits written in another script (`zero` is that script's digit zero).
fn digits_in(s: &str, zero: u32) -> String {
    s.chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from_u32(zero + d).unwrap(),
            None => c,
        })
        .collect()
}

fn has(report: &Report, detector: Detector, kind: &str) -> bool {
    report.findings.iter().any(|f| {
        f.detector == detector && (f.kind == kind || f.kind.ends_with(&format!(":{kind}")))
    })
}

/// The disguised value is found as `kind` and redacted as a whole: neither the disguise nor the
/// plain value survives, the finding spans the disguise, and restoring gives the text back.
fn redacted(detector: Detector, kind: &str, value: &str, disguise: &str) {
    let g = default_guard();
    let text = format!("Please note {disguise} for the file.");
    let applied = g.apply(&text, Direction::Input);
    assert!(
        has(&applied.report, detector, kind),
        "{disguise:?} not found as {kind}: {:?}",
        applied.report.findings
    );
    let f: &Finding = applied
        .report
        .findings
        .iter()
        .find(|f| f.detector == detector)
        .unwrap();
    assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
    let at = text.find(disguise).unwrap();
    assert!(
        f.start <= at && at + disguise.len() <= f.end,
        "{disguise:?}: finding {:?} does not span it in {text:?}",
        &text[f.start..f.end]
    );
    assert!(!applied.text.contains(disguise), "{}", applied.text);
    assert!(!applied.text.contains(value), "{}", applied.text);
    assert!(
        applied.text.starts_with("Please note [["),
        "{}",
        applied.text
    );
    assert!(
        applied.text.ends_with("]] for the file."),
        "{}",
        applied.text
    );
    assert_eq!(applied.redactions.restore(&applied.text), text);
}

fn encodings(value: &str) -> Vec<String> {
    let b = b64(value.as_bytes());
    vec![b.clone(), b64(b.as_bytes()), hex(value.as_bytes())]
}

#[test]
fn email_in_disguise() {
    let v = "jane.doe@example.com";
    let mut disguises = encodings(v);
    disguises.extend([
        "jane.doe%40example.com".to_string(),
        "jane.doe%40example%2Ecom".to_string(),
        r"jane.doe\u0040example.com".to_string(),
        r"jane.doe\x40example.com".to_string(),
        // Cyrillic а, о, е and р.
        "jаne.dое@exаmрle.com".to_string(),
        spaced(v),
    ]);
    for d in &disguises {
        redacted(Detector::Pii, "email", v, d);
    }
}

#[test]
fn ssn_in_disguise() {
    let v = "536-22-8147";
    let mut disguises = encodings(v);
    disguises.extend([
        "536%2D22%2D8147".to_string(),
        r"536\u002d22\u002d8147".to_string(),
        r"536\x2d22\x2d8147".to_string(),
        digits_in(v, 0x0660), // Arabic-Indic
        digits_in(v, 0x06F0), // Extended Arabic-Indic (Persian)
        digits_in(v, 0x0966), // Devanagari
        digits_in(v, 0xFF10), // fullwidth
        spaced(v),
        "536.22-8147".to_string(),
        "536 22.8147".to_string(),
    ]);
    for d in &disguises {
        redacted(Detector::Pii, "us_ssn", v, d);
    }
}

#[test]
fn card_in_disguise() {
    let v = "4111 1111 1111 1111";
    let mut disguises = encodings(v);
    disguises.extend([
        "4111%201111%201111%201111".to_string(),
        r"\u0034\u0031\u0031\u0031\u0031\u0031\u0031\u0031\u0031\u0031\u0031\u0031\u0031\u0031\u0031\u0031".to_string(),
        digits_in(v, 0x0660),
        digits_in(v, 0x06F0),
        digits_in(v, 0x0966),
        spaced("4111111111111111"),
        "4111-1111 1111.1111".to_string(),
        "4111.1111.1111.1111".to_string(),
    ]);
    for d in &disguises {
        redacted(Detector::Pii, "payment_card", v, d);
    }
}

#[test]
fn aws_key_id_in_disguise() {
    let v = "AKIAIOSFODNN7EXAMPLE";
    let mut disguises = encodings(v);
    disguises.extend([
        "AKIА".to_string() + "IOSFODNN7EXAMPLE", // Cyrillic А
        "AKIAIОSFОDNN7EXAMPLE".to_string(),      // Cyrillic О
        "ΑKIAIOSFODNN7EXΑMPLE".to_string(),      // Greek Α
        spaced(v),
        r"AKIA\u0049OSFODNN7EXAMPLE".to_string(),
        "AKIA%49OSFODNN7EXAMPLE".to_string(),
    ]);
    for d in &disguises {
        redacted(Detector::Secrets, "aws_access_key_id", v, d);
    }
}

#[test]
fn ordinary_text_stays_quiet() {
    let g = default_guard();
    for text in [
        // Numbers with spaces and enumerations.
        "The totals were 1 234 567 and 12 345 678 units, steps 1 2 3 4 5 6 7 8 9 10 11 12.",
        "Rows 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 were skipped.",
        "x = a + b - c * d / e % f",
        "A B C D E F G H I J K L M N O P",
        // Version strings.
        "Upgrade from v4.1.1.1111 to 10.0.19045.3803 (build 1.2.3.4.5.6.7.8.9.10.11.12.13.14).",
        // Hashes in hex decode to nothing meaningful.
        "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "commit 3f786850e387550fdab836ed7e6dc881de23001b and 9F86D081884C7D659A2FEAA0C55AD015",
        // Percent-encoding and escapes in ordinary URLs and code.
        "https://example.org/search?q=caf%C3%A9%20au%20lait&page=2",
        r#"let s = "\u{200B}\x41\u0042"; printf("%d%%\n", 100);"#,
        // Persian, Hindi and Arabic text with native digits.
        "قیمت این کتاب ۱۲۰۰۰۰ تومان است و در سال ۱۴۰۲ چاپ شد. کد پیگیری ۱۲۳۴۵۶۷۸۹۰۱۲ است.",
        "इस किताब की कीमत ४५० रुपये है और यह २०२३ में छपी। कक्षा ५ के १२ छात्र आए।",
        "عدد الطلاب ٣٥ في الصف ٧ عام ٢٠٢٤ والغرفة رقم ١٢٣٤٥.",
        // Cyrillic words (confusable letters, but nothing to fold into).
        "Привет, это обычный текст о погоде в Москве.",
    ] {
        for dir in [Direction::Input, Direction::Output] {
            let r = g.scan(text, dir);
            let loud: Vec<_> = r
                .findings
                .iter()
                .filter(|f| matches!(f.detector, Detector::Pii | Detector::Secrets))
                .map(|f| (f.kind.clone(), text[f.start..f.end].to_string()))
                .collect();
            assert!(loud.is_empty(), "{text:?}: {loud:?}");
        }
    }
}

/// The canary in disguise, as an answer might carry it.
fn canary_disguises() -> Vec<String> {
    let reversed: String = CANARY.chars().rev().collect();
    vec![
        spaced(CANARY),
        CANARY.to_uppercase(),
        CANARY.replace('-', ""),
        CANARY.replace('-', "_"),
        "**dmc-7f3a**9c2e1b5d4a6c".to_string(),
        "_dmc_-`7f3a9c2e`1b5d4a6c".to_string(),
        "DMC 7F3A 9C2E 1B5D 4A6C".to_string(),
        reversed.clone(),
        spaced(&reversed),
        b64(format!("The marker is {CANARY}, keep it.").as_bytes()),
        b64(format!("x{CANARY}").as_bytes()),
        b64(format!("xy{CANARY}").as_bytes()),
        hex(CANARY.as_bytes()),
    ]
}

#[test]
fn canary_survives_rewording_whole_text() {
    for decode in [false, true] {
        let g = canary_guard(decode);
        for d in canary_disguises() {
            let text = format!("Sure. {d} That is all.");
            let r = g.scan(&text, Direction::Output);
            assert!(r.blocked(), "{d:?} (decode {decode}): {r:?}");
            assert!(has(&r, Detector::Canary, "canary_token"), "{d:?}: {r:?}");
        }
        for quiet in [
            "The dmc team met on 7 March; 3a9 is a room.",
            "dmc-7f3a9c2e is only half of a marker.",
            "Some hex: 646d632d37663361 and base64 ZG1jLTdmM2E=",
        ] {
            let r = g.scan(quiet, Direction::Output);
            assert!(!r.blocked(), "{quiet:?}: {r:?}");
        }
    }
}

#[test]
fn canary_survives_rewording_in_streams_split_anywhere() {
    let g = canary_guard(false);
    for d in canary_disguises() {
        let text = format!("Sure. {d} That is all.");
        let whole = g.scan(&text, Direction::Output);
        let first = whole.findings[0].start;
        for cut in 1..text.len() {
            if !text.is_char_boundary(cut) {
                continue;
            }
            let mut s = g.stream(Direction::Output);
            let mut shown = s.push(&text[..cut]).text;
            let out = s.push(&text[cut..]);
            shown.push_str(&out.text);
            let (last, report, _) = s.finish();
            shown.push_str(&last.text);
            assert!(report.blocked(), "{d:?} split at {cut}");
            assert_eq!(report.findings, whole.findings, "{d:?} split at {cut}");
            // Only text before the canary is released.
            assert!(
                text[..first].starts_with(&shown),
                "{d:?} split at {cut}: released {shown:?}"
            );
        }
    }
}

#[test]
fn disguised_values_are_redacted_in_streams_split_anywhere() {
    let g = redacting_guard();
    let email = "jane.doe@example.com";
    for d in [
        spaced(email),
        b64(email.as_bytes()),
        "jаne.dое@exаmрle.com".to_string(),
        "jane.doe%40example.com".to_string(),
        spaced("4111111111111111"),
        digits_in("536-22-8147", 0x06F0),
        spaced("AKIAIOSFODNN7EXAMPLE"),
    ] {
        let text = format!("Write to {d} today, thanks.");
        let whole = g.apply(&text, Direction::Output);
        assert!(
            whole.text.starts_with("Write to [["),
            "{d:?}: {}",
            whole.text
        );
        for cut in 1..text.len() {
            if !text.is_char_boundary(cut) {
                continue;
            }
            for cuts in [vec![cut], vec![cut, cut + 1, cut + 5]] {
                let mut s = g.stream(Direction::Output);
                let mut shown = String::new();
                let mut at = 0;
                for &c in cuts.iter().chain(std::iter::once(&text.len())) {
                    let mut c = c.min(text.len());
                    while !text.is_char_boundary(c) {
                        c += 1;
                    }
                    if c > at {
                        shown.push_str(&s.push(&text[at..c]).text);
                        at = c;
                    }
                }
                let (last, report, _) = s.finish();
                shown.push_str(&last.text);
                assert_eq!(report.findings, whole.report.findings, "{d:?} {cuts:?}");
                assert_eq!(shown, whole.text, "{d:?} {cuts:?}");
            }
        }
    }
}

#[test]
fn double_encoding_is_bounded() {
    // Three layers are not unwrapped (two are): decoding stays bounded.
    let v = "jane.doe@example.com";
    let three = b64(b64(b64(v.as_bytes()).as_bytes()).as_bytes());
    let r = default_guard().scan(&format!("blob {three} end"), Direction::Input);
    assert!(!has(&r, Detector::Pii, "email"), "{r:?}");
}

/// Words of random prose. No one-character words: beside a spaced-out value they would read as
/// part of it (`c o m - I` is not an address), which no detector can tell apart.
fn prose() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "the",
            "meeting",
            "moved",
            "to",
            "Thursday.",
            "Please",
            "send",
            "my",
            "copy",
            "of",
            "report",
            "and",
            "42",
            "v2.3.1",
            "ok,",
            "(see",
            "below)",
            "\n",
            "résumé",
            "Привет",
            "۱۴۰۲",
        ]),
        0..24,
    )
    .prop_map(|w| w.join(" "))
}

fn value() -> impl Strategy<Value = (Detector, String)> {
    prop_oneof![
        (
            "[a-z]{3,10}(\\.[a-z]{2,8})?",
            "[a-z]{3,10}",
            "(com|org|net|de)"
        )
            .prop_map(|(l, d, t)| (Detector::Pii, format!("{l}@{d}.{t}"))),
        "[A-Z2-7]{16}".prop_map(|k| (Detector::Secrets, format!("AKIA{k}"))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// An encoded e-mail address or key in random text is always redacted: neither the value
    /// nor its encoding survives, and restoring gives the text back.
    #[test]
    fn encoded_values_in_random_text_are_always_redacted(
        before in prose(),
        after in prose(),
        (detector, v) in value(),
        encoding in 0usize..6,
    ) {
        let encoded = match encoding {
            0 => b64(v.as_bytes()),
            1 => b64(b64(v.as_bytes()).as_bytes()),
            2 => hex(v.as_bytes()),
            3 => spaced(&v),
            4 => v.replacen('@', "%40", 1).replacen('A', "\\u0041", 1),
            _ => v.replacen('a', "а", 1).replacen('A', "А", 1).replacen('o', "о", 1),
        };
        let text = format!("{before} {encoded} {after}");
        let g = default_guard();
        let applied = g.apply(&text, Direction::Input);
        prop_assert!(
            applied.report.findings.iter().any(|f| f.detector == detector && f.action == Action::Redact),
            "{:?}: {:?}", text, applied.report.findings
        );
        prop_assert!(!applied.text.contains(&v), "{:?} -> {:?}", text, applied.text);
        prop_assert!(!applied.text.contains(&encoded), "{:?} -> {:?}", text, applied.text);
        prop_assert_eq!(applied.redactions.restore(&applied.text), text);
    }
}
