//! Calendar dates (`YYYY-MM-DD`) for review and expiry dates: a thin wrapper over the
//! `time` crate's `Date` (the one date library of the workspace) that keeps the model's
//! small interface: ordering, day arithmetic, today's date, and the strict text form.

use std::fmt;
use std::str::FromStr;

use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

/// `YYYY-MM-DD`, four-digit year.
const FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year repr:full sign:automatic]-[month]-[day]");

/// The Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// A proleptic Gregorian calendar date in years 1 to 9999 (outside that, day arithmetic
/// saturates at the first or last day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(time::Date);

impl Date {
    /// Build a date, checking that the day exists.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Self> {
        let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
        time::Date::from_calendar_date(year, month, u8::try_from(day).ok()?)
            .ok()
            .filter(|d| (1..=9999).contains(&d.year()))
            .map(Self)
    }

    /// Today in UTC, from the system clock.
    pub fn today() -> Self {
        Self(time::OffsetDateTime::now_utc().date())
    }

    /// The date `days` after 1970-01-01, saturating at 0001-01-01 and 9999-12-31.
    pub fn from_days_since_epoch(days: i64) -> Self {
        let min = i64::from(first().to_julian_day());
        let max = i64::from(last().to_julian_day());
        let julian = days.saturating_add(UNIX_EPOCH_JULIAN_DAY).clamp(min, max);
        Self(
            i32::try_from(julian)
                .ok()
                .and_then(|j| time::Date::from_julian_day(j).ok())
                .unwrap_or_else(last),
        )
    }

    pub fn days_since_epoch(self) -> i64 {
        i64::from(self.0.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY
    }

    #[must_use]
    pub fn add_days(self, days: i64) -> Self {
        Self::from_days_since_epoch(self.days_since_epoch().saturating_add(days))
    }

    /// Whole days from `self` to `later` (negative when `later` is earlier).
    pub fn days_until(self, later: Date) -> i64 {
        later.days_since_epoch() - self.days_since_epoch()
    }

    pub fn ymd(self) -> (i32, u32, u32) {
        (
            self.0.year(),
            u32::from(u8::from(self.0.month())),
            u32::from(self.0.day()),
        )
    }
}

fn first() -> time::Date {
    time::Date::from_ordinal_date(1, 1).unwrap_or(time::Date::MIN)
}

fn last() -> time::Date {
    time::Date::from_ordinal_date(9999, 365).unwrap_or(time::Date::MAX)
}

/// The error for a string that is not a `YYYY-MM-DD` date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a date in the form YYYY-MM-DD")]
pub struct DateError(String);

impl FromStr for Date {
    type Err = DateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DateError(s.to_string());
        // The strict form only: four-digit year, no sign, no surrounding text.
        if s.len() != 10 || !s.as_bytes()[0].is_ascii_digit() {
            return Err(err());
        }
        time::Date::parse(s, FORMAT)
            .ok()
            .filter(|d| d.year() >= 1)
            .map(Self)
            .ok_or_else(err)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.format(FORMAT).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl serde::Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Date {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Date".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "format": "date", "description": "a calendar date, YYYY-MM-DD" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!(
            "2024-02-29".parse::<Date>().map(|d| d.to_string()),
            Ok("2024-02-29".into())
        );
        assert!("2023-02-29".parse::<Date>().is_err());
        assert!("2023-13-01".parse::<Date>().is_err());
        assert!("23-01-01".parse::<Date>().is_err());
        for bad in [
            "+2024-01-01",
            "2024-1-01",
            " 2024-01-01",
            "2024-01-01x",
            "0000-01-01",
            "",
        ] {
            assert!(bad.parse::<Date>().is_err(), "{bad:?}");
        }
        assert_eq!(
            Date::from_ymd(2026, 12, 3).map(|d| (d.ymd(), d.add_days(29).to_string())),
            Some(((2026, 12, 3), "2027-01-01".into()))
        );
        // Day arithmetic saturates instead of overflowing.
        assert_eq!(
            Date::from_days_since_epoch(i64::MAX / 4).to_string(),
            "9999-12-31"
        );
        assert_eq!(
            Date::from_days_since_epoch(i64::MIN).to_string(),
            "0001-01-01"
        );
        assert_eq!(
            Date::from_ymd(1970, 1, 1).map(|d| d.days_since_epoch()),
            Some(0)
        );
    }

    proptest! {
        #[test]
        fn round_trips(days in -719_162i64..2_932_897) {
            let d = Date::from_days_since_epoch(days);
            let back: Date = d.to_string().parse().unwrap();
            prop_assert_eq!(back, d);
        }

        #[test]
        fn parser_never_panics(s in "\\PC{0,16}") {
            let _ = s.parse::<Date>();
        }
    }
}
