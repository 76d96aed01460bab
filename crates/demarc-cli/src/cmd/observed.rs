//! `--observed-since`, and reading what demarc observed by itself from the store (the reading
//! itself is `demarc_serve::assessing`, shared with the dashboard).

use std::str::FromStr;

use demarc_model::Date;
use demarc_model::assess::{ObservedEvidence, ObservedTraffic};
use demarc_store::time::OffsetDateTime;

/// `--observed-since`: a number of days back from the assessment date, or a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    Days(u32),
    Date(Date),
}

impl FromStr for Since {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(days) = s.parse::<u32>() {
            return Ok(Since::Days(days));
        }
        s.parse::<Date>()
            .map(Since::Date)
            .map_err(|_| format!("`{s}` is neither a number of days nor a date (YYYY-MM-DD)"))
    }
}

impl Since {
    /// The first day of the window for an assessment made on `today`.
    pub fn first_day(self, today: Date) -> Date {
        match self {
            Since::Days(days) => today.add_days(-i64::from(days)),
            Since::Date(date) => date,
        }
    }
}

pub use demarc_serve::assessing::start_of;

/// Observations made from `since` on (see [`demarc_serve::assessing::read_observations`]).
pub fn read_observations(
    runtime: &tokio::runtime::Runtime,
    store: &demarc_store::Store,
    since: OffsetDateTime,
) -> anyhow::Result<(Vec<ObservedEvidence>, Vec<ObservedTraffic>)> {
    Ok(runtime.block_on(demarc_serve::assessing::read_observations(store, since))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_days_or_a_date() {
        let today = Date::from_ymd(2026, 3, 31).unwrap();
        let since: Since = "30".parse().unwrap();
        assert_eq!(since.first_day(today), Date::from_ymd(2026, 3, 1).unwrap());
        let since: Since = "2026-01-15".parse().unwrap();
        assert_eq!(since.first_day(today), Date::from_ymd(2026, 1, 15).unwrap());
        assert!("last week".parse::<Since>().is_err());
        assert_eq!(
            start_of(Date::from_ymd(1970, 1, 2).unwrap()).unix_timestamp(),
            86_400
        );
    }
}
