//! Timestamps as microseconds since the Unix epoch (UTC): parsing the forms logs use
//! (epoch seconds with a fraction, RFC 3339, Zscaler's `Mon Jun 20 15:29:11 2022`) and
//! printing RFC 3339. No allocation, no time-zone database.
//!
//! The calendar is the `time` crate's (the workspace's one date library): a date is checked
//! and counted by `time::Date`. What stays here is reading the fields of a log's bytes in
//! place, which is the hot path of a scan: `time`'s own RFC 3339 parser, fed the same
//! bytes, is slower by the factor recorded in BENCHMARKS.md (issue 15), and it takes
//! neither the space separator nor a missing offset that logs use.

/// Microseconds since 1970-01-01T00:00:00Z.
pub type Micros = i64;

/// Parse epoch seconds, optionally with a fraction: `1521911720.865716`.
/// Values too large for seconds are taken as milliseconds, microseconds or nanoseconds.
pub fn parse_epoch(s: &[u8]) -> Option<Micros> {
    let (int, frac) = match memchr::memchr(b'.', s) {
        Some(dot) => (&s[..dot], &s[dot + 1..]),
        None => (s, &b""[..]),
    };
    if int.is_empty() || int.len() > 19 {
        return None;
    }
    let mut whole: i64 = 0;
    for &b in int {
        if !b.is_ascii_digit() {
            return None;
        }
        whole = whole.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
    }
    let mut micros: i64 = 0;
    let mut scale = 100_000;
    for &b in frac {
        if !b.is_ascii_digit() {
            return None;
        }
        micros += i64::from(b - b'0') * scale;
        scale /= 10;
    }
    // Seconds until the year 5138; beyond that the number is a finer unit.
    match whole {
        0..100_000_000_000 => whole.checked_mul(1_000_000)?.checked_add(micros),
        100_000_000_000..100_000_000_000_000 => whole.checked_mul(1_000),
        100_000_000_000_000..100_000_000_000_000_000 => Some(whole),
        _ => Some(whole / 1_000),
    }
}

/// The Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// Days since the epoch of a calendar date, `None` when the day does not exist.
fn days_from_civil(y: u32, m: u32, d: u32) -> Option<i64> {
    let month = time::Month::try_from(u8::try_from(m).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(y).ok()?, month, u8::try_from(d).ok()?)
        .ok()?;
    Some(i64::from(date.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY)
}

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 9 {
        return None;
    }
    let mut n = 0u32;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(b - b'0');
    }
    Some(n)
}

/// A leap second (`:60`) counts as the first second of the next minute.
fn from_parts(y: u32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<Micros> {
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d)?;
    Some((days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s)) * 1_000_000)
}

/// Parse RFC 3339 / ISO 8601: `2018-03-24T17:15:20.615923Z`, `2021-02-04T17:51:55+01:00`,
/// also with a space instead of `T`. A missing offset means UTC.
pub fn parse_rfc3339(s: &[u8]) -> Option<Micros> {
    if s.len() < 19
        || s[4] != b'-'
        || s[7] != b'-'
        || !matches!(s[10], b'T' | b't' | b' ')
        || s[13] != b':'
        || s[16] != b':'
    {
        return None;
    }
    let y = digits(&s[0..4])?;
    let base = from_parts(
        y,
        digits(&s[5..7])?,
        digits(&s[8..10])?,
        digits(&s[11..13])?,
        digits(&s[14..16])?,
        digits(&s[17..19])?,
    )?;
    let mut rest = &s[19..];
    let mut micros = 0i64;
    if let Some((&b'.', frac)) = rest.split_first() {
        let end = frac
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(frac.len());
        let mut scale = 100_000;
        for &b in &frac[..end] {
            micros += i64::from(b - b'0') * scale;
            scale /= 10;
        }
        rest = &frac[end..];
    }
    let offset = match rest {
        b"" | b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), hh1, hh2, b':', mm1, mm2]
        | [sign @ (b'+' | b'-'), hh1, hh2, mm1, mm2] => {
            let minutes =
                i64::from(digits(&[*hh1, *hh2])?) * 60 + i64::from(digits(&[*mm1, *mm2])?);
            if *sign == b'+' { minutes } else { -minutes }
        }
        _ => return None,
    };
    Some(base + micros - offset * 60_000_000)
}

/// Parse Zscaler's `%s{time}`: `Mon Jun 20 15:29:11 2022` (the feed's time zone, taken as UTC).
pub fn parse_ctime(s: &[u8]) -> Option<Micros> {
    let mut parts = s.split(|&b| b == b' ').filter(|p| !p.is_empty());
    let _weekday = parts.next()?;
    let month = parts.next()?;
    let day = digits(parts.next()?)?;
    let hms = parts.next()?;
    let year = digits(parts.next()?)?;
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let mo = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month))? as u32 + 1;
    if hms.len() != 8 || hms[2] != b':' || hms[5] != b':' {
        return None;
    }
    from_parts(
        year,
        mo,
        day,
        digits(&hms[0..2])?,
        digits(&hms[3..5])?,
        digits(&hms[6..8])?,
    )
}

/// Any of the forms above.
pub fn parse_any(s: &[u8]) -> Option<Micros> {
    parse_epoch(s)
        .or_else(|| parse_rfc3339(s))
        .or_else(|| parse_ctime(s))
}

/// RFC 3339 in UTC with microseconds: `2018-03-24T17:15:20.615923Z`. A time outside the
/// years -9999 to 9999 (no parser here yields one) is written at the nearest end.
pub fn format_rfc3339(t: Micros) -> String {
    let secs = t.div_euclid(1_000_000);
    let micros = t.rem_euclid(1_000_000);
    let when = time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(if secs < 0 {
        time::PrimitiveDateTime::MIN.assume_utc()
    } else {
        time::PrimitiveDateTime::MAX.assume_utc()
    });
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        when.year(),
        u8::from(when.month()),
        when.day(),
        when.hour(),
        when.minute(),
        when.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_rfc3339_agree() {
        let a = parse_epoch(b"1521911720.865716").unwrap();
        let b = parse_rfc3339(b"2018-03-24T17:15:20.865716Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(format_rfc3339(a), "2018-03-24T17:15:20.865716Z");
    }

    #[test]
    fn offsets_and_ctime() {
        assert_eq!(
            parse_rfc3339(b"2021-02-04T18:51:55+01:00"),
            parse_rfc3339(b"2021-02-04T17:51:55Z")
        );
        assert_eq!(
            parse_ctime(b"Mon Jun 20 15:29:11 2022"),
            parse_rfc3339(b"2022-06-20T15:29:11Z")
        );
        assert_eq!(
            parse_epoch(b"1578128400"),
            parse_rfc3339(b"2020-01-04T09:00:00Z")
        );
        assert_eq!(parse_epoch(b"1578128400000"), parse_epoch(b"1578128400"));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_epoch(b"XXXXXXXXXX.XXXXXX"), None);
        assert_eq!(parse_any(b""), None);
        assert_eq!(parse_rfc3339(b"2021-13-04T17:51:55Z"), None);
        // A day the month does not have is no time (it used to roll into the next month).
        assert_eq!(parse_rfc3339(b"2023-02-29T10:00:00Z"), None);
        assert_eq!(parse_ctime(b"Fri Jun 31 10:00:00 2022"), None);
        assert!(parse_rfc3339(b"2024-02-29T10:00:00Z").is_some());
        // A leap second is the next minute's first.
        assert_eq!(
            parse_rfc3339(b"2016-12-31T23:59:60Z"),
            parse_rfc3339(b"2017-01-01T00:00:00Z")
        );
        assert_eq!(parse_any(b"99999999999999999999999"), None);
    }

    proptest::proptest! {
        #[test]
        fn format_then_parse_round_trips(t in -62_135_596_800_000_000i64..253_402_300_799_000_000i64) {
            let text = format_rfc3339(t);
            proptest::prop_assert_eq!(parse_rfc3339(text.as_bytes()), Some(t));
        }

        #[test]
        fn never_panics(s in proptest::collection::vec(proptest::num::u8::ANY, 0..40)) {
            let _ = parse_any(&s);
        }
    }
}
