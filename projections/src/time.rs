//! Time as data: instants, calendar dates, calendar months and the working-day
//! calendar that pace is measured against.
//!
//! Nothing here reads the wall clock. An instant enters the model only inside an
//! event (`occurred_at`, a `clock_tick`), and local dates are derived from it with the
//! organisation's time zone, which is passed in as an argument.

use std::fmt;

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, SecondsFormat, TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;

use crate::error::ParseError;

/// An instant, as microseconds since the Unix epoch (UTC).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode,
)]
pub struct Timestamp(i64);

/// The week an alert raised at `now` belongs to: the ISO week of its `act_by`.
pub fn alert_week(now: Timestamp, tz: Tz) -> IsoWeek {
    now.act_by(tz).local_date(tz).iso_week()
}

impl Timestamp {
    pub const fn from_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    pub const fn micros(self) -> i64 {
        self.0
    }

    pub fn from_utc(t: DateTime<Utc>) -> Self {
        Timestamp(t.timestamp_micros())
    }

    /// Parses an RFC 3339 instant (`2026-11-03T10:00:00Z`, `2026-11-03T11:00:00+01:00`).
    pub fn parse_rfc3339(s: &str) -> Result<Self, ParseError> {
        let t = DateTime::parse_from_rfc3339(s).map_err(|e| ParseError::Time {
            value: s.to_owned(),
            reason: e.to_string(),
        })?;
        // Keep every local date of the instant inside the years months can name.
        if !(2..=9998).contains(&t.with_timezone(&Utc).year()) {
            return Err(ParseError::Time {
                value: s.to_owned(),
                reason: "year out of range (0002 to 9998)".into(),
            });
        }
        Ok(Timestamp(t.timestamp_micros()))
    }

    /// This instant in chrono's terms. Instants parsed from text lie in the years 2
    /// to 9998; one built from raw microseconds beyond chrono's range (about ±262 000
    /// years) is clamped to that range rather than panicking.
    pub fn to_utc(self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0).unwrap_or(if self.0 < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
    }

    /// RFC 3339 in UTC, with fractional seconds only when there are any.
    pub fn to_rfc3339(self) -> String {
        self.to_utc().to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }

    /// RFC 3339 in the given zone, with its offset (`2026-11-20T17:00:00+01:00`).
    pub fn to_rfc3339_in(self, tz: Tz) -> String {
        self.to_utc()
            .with_timezone(&tz)
            .to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }

    /// When an alert raised at this instant is due: the end (17:00 local) of this
    /// week's Friday when raised Monday to Friday morning; of next week's Friday when
    /// raised on Friday from 12:00, Saturday or Sunday.
    pub fn act_by(self, tz: Tz) -> Timestamp {
        let local = self.to_utc().with_timezone(&tz);
        let date = Date::from_naive(local.date_naive());
        let weekday = local.weekday().num_days_from_monday() as i32; // Monday = 0
        let to_friday = match weekday {
            0..=3 => 4 - weekday,
            4 if local.hour() < 12 => 0,
            _ => 11 - weekday, // Friday afternoon → +7, Saturday → +6, Sunday → +5
        };
        date.add_days(to_friday).at_local_hour(17, tz)
    }

    /// The calendar date of this instant in the given zone.
    pub fn local_date(self, tz: Tz) -> Date {
        if tz == chrono_tz::UTC && (Self::YEAR_1_MICROS..Self::YEAR_10000_MICROS).contains(&self.0)
        {
            // UTC, the default zone, on every event of a fold: whole days since the
            // epoch, without a zone lookup.
            let days = self.0.div_euclid(Self::DAY_MICROS) + Self::EPOCH_DAYS_FROM_CE;
            return Date(i32::try_from(days).expect("years 1 to 9999 are a few million days"));
        }
        Date::from_naive(self.to_utc().with_timezone(&tz).date_naive())
    }

    const DAY_MICROS: i64 = 86_400_000_000;
    /// 1970-01-01 as days from 0001-01-01 (chrono's `num_days_from_ce`).
    const EPOCH_DAYS_FROM_CE: i64 = 719_163;
    /// 0001-01-01T00:00:00Z and 10000-01-01T00:00:00Z.
    const YEAR_1_MICROS: i64 = -62_135_596_800_000_000;
    const YEAR_10000_MICROS: i64 = 253_402_300_800_000_000;
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// A calendar date, stored as days since 0001-01-01 (chrono's "days from CE").
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode,
)]
pub struct Date(i32);

impl Date {
    pub fn from_naive(d: NaiveDate) -> Self {
        Date(d.num_days_from_ce())
    }

    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Self> {
        NaiveDate::from_ymd_opt(year, month, day).map(Date::from_naive)
    }

    pub fn to_naive(self) -> NaiveDate {
        NaiveDate::from_num_days_from_ce_opt(self.0)
            .expect("a Date is only built from a valid NaiveDate")
    }

    /// Parses `YYYY-MM-DD` (exactly: four, two and two digits).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let b = s.as_bytes();
        let shaped = b.len() == 10
            && b.iter().enumerate().all(|(i, c)| {
                if i == 4 || i == 7 {
                    *c == b'-'
                } else {
                    c.is_ascii_digit()
                }
            });
        // The shape is checked, so the fields are plain digits; chrono checks the
        // calendar (no 2026-02-30).
        let number = |from: usize, to: usize| {
            b[from..to]
                .iter()
                .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'))
        };
        let date = shaped
            .then(|| {
                let year = i32::try_from(number(0, 4)).ok()?;
                NaiveDate::from_ymd_opt(year, number(5, 7), number(8, 10))
            })
            .flatten();
        match date {
            Some(d) if d.year() >= 1 => Ok(Date::from_naive(d)),
            _ => Err(ParseError::Date {
                value: s.to_owned(),
            }),
        }
    }

    pub fn month(self) -> Month {
        self.month_and_day().0
    }

    /// The month and the day of the month (1–31), from one calendar conversion.
    pub fn month_and_day(self) -> (Month, u32) {
        let d = self.to_naive();
        (
            Month::new(d.year(), d.month()).expect("a valid date has a valid month"),
            d.day(),
        )
    }

    pub fn weekday(self) -> Weekday {
        self.to_naive().weekday()
    }

    /// The ISO 8601 week this date belongs to.
    pub fn iso_week(self) -> IsoWeek {
        let w = self.to_naive().iso_week();
        IsoWeek {
            year: w.year(),
            week: w.week(),
        }
    }

    pub fn is_working_day(self) -> bool {
        !matches!(self.weekday(), Weekday::Sat | Weekday::Sun)
    }

    /// Days since 0001-01-01, for packed storage.
    pub(crate) fn days_from_ce(self) -> i32 {
        self.0
    }

    /// The date [`Date::days_from_ce`] gave `days`.
    pub(crate) fn from_days_from_ce(days: i32) -> Self {
        Date(days)
    }

    pub fn add_days(self, days: i32) -> Self {
        Date(self.0 + days)
    }

    /// Days from `earlier` to this date (negative when `earlier` is later).
    pub fn days_since(self, earlier: Date) -> i32 {
        self.0 - earlier.0
    }

    /// The instant at `hour:00` local time on this date in `tz` (the earliest one when
    /// the local time is ambiguous, the first valid one after a gap).
    pub fn at_local_hour(self, hour: u32, tz: Tz) -> Timestamp {
        let naive = self
            .to_naive()
            .and_hms_opt(hour, 0, 0)
            .expect("hour is below 24");
        let mut probe = naive;
        loop {
            if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                return Timestamp::from_utc(t.with_timezone(&Utc));
            }
            // A DST gap: move forward until the local time exists.
            probe += Duration::minutes(15);
        }
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_naive().format("%Y-%m-%d"))
    }
}

/// An ISO 8601 week (`2026-W47`): weeks start on Monday, and week 1 is the one with
/// the year's first Thursday, so a year has 52 or 53 weeks.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode,
)]
pub struct IsoWeek {
    pub year: i32,
    pub week: u32,
}

impl IsoWeek {
    /// Parses `YYYY-Www`.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let err = || ParseError::Week {
            value: s.to_owned(),
        };
        let (year, week) = s.split_once("-W").ok_or_else(err)?;
        if year.len() != 4 || week.len() != 2 {
            return Err(err());
        }
        let year: i32 = year.parse().map_err(|_| err())?;
        let week: u32 = week.parse().map_err(|_| err())?;
        NaiveDate::from_isoywd_opt(year, week, Weekday::Mon).ok_or_else(err)?;
        Ok(IsoWeek { year, week })
    }

    /// The Monday that starts the week.
    pub fn monday(self) -> Date {
        Date::from_naive(
            NaiveDate::from_isoywd_opt(self.year, self.week, Weekday::Mon)
                .expect("an IsoWeek is only built for a week that exists"),
        )
    }
}

impl fmt::Display for IsoWeek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-W{:02}", self.year, self.week)
    }
}

/// A calendar month, stored as `year * 12 + (month - 1)` so that months order and
/// add like integers.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode,
)]
pub struct Month(i32);

impl Month {
    /// `month` is 1-based (January is 1).
    pub fn new(year: i32, month: u32) -> Option<Self> {
        if !(1..=12).contains(&month) || !(1..=9999).contains(&year) {
            return None;
        }
        Some(Month(year * 12 + month as i32 - 1))
    }

    /// Parses `YYYY-MM`.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let err = || ParseError::Month {
            value: s.to_owned(),
        };
        let b = s.as_bytes();
        if b.len() != 7
            || b[4] != b'-'
            || !b
                .iter()
                .enumerate()
                .all(|(i, c)| i == 4 || c.is_ascii_digit())
        {
            return Err(err());
        }
        let year: i32 = s[..4].parse().map_err(|_| err())?;
        let month: u32 = s[5..].parse().map_err(|_| err())?;
        Month::new(year, month).ok_or_else(err)
    }

    pub fn year(self) -> i32 {
        self.0.div_euclid(12)
    }

    /// 1-based month of the year.
    pub fn month_of_year(self) -> u32 {
        self.0.rem_euclid(12) as u32 + 1
    }

    pub fn index(self) -> i32 {
        self.0
    }

    pub fn plus(self, months: i32) -> Self {
        Month(self.0 + months)
    }

    /// Number of months from `self` to `later` (negative when `later` is earlier).
    pub fn months_until(self, later: Month) -> i32 {
        later.0 - self.0
    }

    pub fn first_day(self) -> Date {
        Date::from_ymd(self.year(), self.month_of_year(), 1)
            .expect("the first of a valid month exists")
    }

    pub fn last_day(self) -> Date {
        self.plus(1).first_day().add_days(-1)
    }

    pub fn days(self) -> impl Iterator<Item = Date> {
        let first = self.first_day();
        let n = self.last_day().0 - first.0 + 1;
        (0..n).map(move |i| first.add_days(i))
    }

    /// The month's length and the weekday of its 1st: what working-day arithmetic
    /// needs, from one calendar conversion.
    pub fn calendar(self) -> MonthCalendar {
        let first = self.first_day();
        let next = self.plus(1).first_day();
        MonthCalendar {
            // 0001-01-01, day 1 of chrono's count, was a Monday: 0 = Monday ... 6 = Sunday.
            first_weekday: (first.0 - 1).rem_euclid(7) as u32,
            len: (next.0 - first.0) as u32,
        }
    }

    /// Working days (Monday to Friday) in the whole month.
    pub fn working_days(self) -> u32 {
        self.calendar().working_days()
    }

    /// Working days of the month up to and including `today` (which should be in it).
    pub fn working_days_through(self, today: Date) -> u32 {
        let first = self.first_day();
        if today < first {
            return 0;
        }
        let cal = self.calendar();
        let day = (today.0 - first.0 + 1) as u32;
        cal.working_days_through_day(day.min(cal.len))
    }
}

/// A month's length and the weekday of its 1st (see [`Month::calendar`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MonthCalendar {
    /// 0 = Monday ... 6 = Sunday.
    pub first_weekday: u32,
    /// Days in the month.
    pub len: u32,
}

impl MonthCalendar {
    /// Working days among the first `day` days, by arithmetic: full weeks have five,
    /// and the days left over are counted from the weekday of the 1st.
    pub fn working_days_through_day(&self, day: u32) -> u32 {
        let extra = (0..day % 7)
            .filter(|i| (self.first_weekday + i) % 7 < 5)
            .count() as u32;
        day / 7 * 5 + extra
    }

    /// Working days in the whole month.
    pub fn working_days(&self) -> u32 {
        self.working_days_through_day(self.len)
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year(), self.month_of_year())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_parse_and_display_round_trip() {
        let m = Month::parse("2026-11").unwrap();
        assert_eq!(m.year(), 2026);
        assert_eq!(m.month_of_year(), 11);
        assert_eq!(m.to_string(), "2026-11");
        assert_eq!(m.plus(2).to_string(), "2027-01");
        for bad in [
            "2026-13", "2026-00", "2026-1", "26-11", "2026/11", "2026-1a", "",
        ] {
            assert!(Month::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn date_parse_rejects_loose_forms() {
        assert_eq!(Date::parse("2026-11-03").unwrap().to_string(), "2026-11-03");
        for bad in [
            "2026-02-30",
            "2026-11-3",
            "03/11/2026",
            "2026-11-03T00:00:00Z",
            "0000-06-15",
            "2026-11- 3",
            "+026-11-03",
        ] {
            assert!(Date::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn working_days_of_november_2026() {
        // November 2026 starts on a Sunday: 21 working days.
        let m = Month::parse("2026-11").unwrap();
        assert_eq!(m.working_days(), 21);
        let wed = Date::parse("2026-11-18").unwrap();
        assert_eq!(m.working_days_through(wed), 13);
        let sun = Date::parse("2026-11-01").unwrap();
        assert_eq!(m.working_days_through(sun), 0);
    }

    #[test]
    fn local_date_in_utc_is_the_utc_calendar_date_at_every_edge() {
        let chrono_date =
            |t: Timestamp| Date::from_naive(t.to_utc().with_timezone(&chrono_tz::UTC).date_naive());
        let day = 86_400_000_000;
        let mut instants = vec![
            Timestamp::YEAR_1_MICROS,
            Timestamp::YEAR_10000_MICROS - 1,
            -1,
            0,
            1,
        ];
        // Both sides of midnight, every 97 days across 40 years either side of 1970.
        for k in (-40 * 366..40 * 366).step_by(97) {
            instants.extend([k * day - 1, k * day, k * day + 1]);
        }
        for micros in instants {
            let t = Timestamp::from_micros(micros);
            assert_eq!(t.local_date(chrono_tz::UTC), chrono_date(t), "{micros}");
        }
    }

    #[test]
    fn working_days_are_counted_by_arithmetic_as_by_the_calendar() {
        // Every month of 2026 to 2028, against a day-by-day count.
        for i in 0..36 {
            let month = Month::parse("2026-01").unwrap().plus(i);
            let mut counted = 0;
            for day in month.days() {
                if day.is_working_day() {
                    counted += 1;
                }
                assert_eq!(month.working_days_through(day), counted, "{day}");
                assert_eq!(
                    month
                        .calendar()
                        .working_days_through_day(day.month_and_day().1),
                    counted,
                    "{day}"
                );
            }
            assert_eq!(month.working_days(), counted, "{month}");
        }
        let nov = Month::parse("2026-11").unwrap();
        assert_eq!((nov.working_days(), nov.calendar().len), (21, 30));
        let cal = nov.calendar();
        // Sunday the 1st, Monday the 2nd.
        assert_eq!(cal.first_weekday, 6);
        // Sunday the 1st, Monday the 2nd, Saturday the 7th.
        let through = |d| cal.working_days_through_day(d);
        assert_eq!(
            (through(1), through(2), through(6), through(7)),
            (0, 1, 5, 5)
        );
        assert_eq!(
            nov.working_days_through(Date::parse("2026-10-31").unwrap()),
            0
        );
    }

    #[test]
    fn local_date_uses_the_zone() {
        let t = Timestamp::parse_rfc3339("2026-11-30T23:30:00Z").unwrap();
        assert_eq!(t.local_date(chrono_tz::UTC).to_string(), "2026-11-30");
        assert_eq!(
            t.local_date(chrono_tz::Europe::Berlin).to_string(),
            "2026-12-01"
        );
        assert_eq!(
            t.local_date(chrono_tz::America::New_York).to_string(),
            "2026-11-30"
        );
    }

    fn act_by(at: &str, tz: Tz) -> String {
        Timestamp::parse_rfc3339(at)
            .unwrap()
            .act_by(tz)
            .to_rfc3339_in(tz)
    }

    #[test]
    fn act_by_is_the_end_of_this_or_next_friday() {
        let utc = chrono_tz::UTC;
        // Wednesday → this Friday.
        assert_eq!(act_by("2026-11-18T09:00:00Z", utc), "2026-11-20T17:00:00Z");
        // Monday morning → this Friday.
        assert_eq!(act_by("2026-11-16T00:00:00Z", utc), "2026-11-20T17:00:00Z");
        // Friday morning → today; Friday afternoon → next Friday.
        assert_eq!(act_by("2026-11-20T11:59:00Z", utc), "2026-11-20T17:00:00Z");
        assert_eq!(act_by("2026-11-20T12:00:00Z", utc), "2026-11-27T17:00:00Z");
        // Weekend → next Friday.
        assert_eq!(act_by("2026-11-21T10:00:00Z", utc), "2026-11-27T17:00:00Z");
        assert_eq!(act_by("2026-11-22T23:59:00Z", utc), "2026-11-27T17:00:00Z");
        // A week that spans a month end.
        assert_eq!(act_by("2026-12-29T10:00:00Z", utc), "2027-01-01T17:00:00Z");
    }

    #[test]
    fn act_by_uses_the_org_time_zone() {
        // Friday 11:30 UTC is 12:30 in Berlin: already the afternoon there.
        let berlin = chrono_tz::Europe::Berlin;
        assert_eq!(
            act_by("2026-11-20T11:30:00Z", berlin),
            "2026-11-27T17:00:00+01:00"
        );
        // Sunday 23:30 UTC is Monday morning in Tokyo: this week's Friday.
        let tokyo = chrono_tz::Asia::Tokyo;
        assert_eq!(
            act_by("2026-11-22T23:30:00Z", tokyo),
            "2026-11-27T17:00:00+09:00"
        );
        // Saturday 03:00 UTC is still Friday evening in New York: next Friday.
        let ny = chrono_tz::America::New_York;
        assert_eq!(
            act_by("2026-11-21T03:00:00Z", ny),
            "2026-11-27T17:00:00-05:00"
        );
    }

    #[test]
    fn iso_weeks_including_week_53() {
        let w = Date::parse("2026-11-18").unwrap().iso_week();
        assert_eq!(w.to_string(), "2026-W47");
        assert_eq!(w.monday().to_string(), "2026-11-16");
        // 2026 has 53 ISO weeks: 31 December 2026 is a Thursday.
        assert_eq!(
            Date::parse("2026-12-31").unwrap().iso_week().to_string(),
            "2026-W53"
        );
        assert_eq!(
            Date::parse("2027-01-03").unwrap().iso_week().to_string(),
            "2026-W53"
        );
        assert_eq!(
            Date::parse("2027-01-04").unwrap().iso_week().to_string(),
            "2027-W01"
        );
        assert_eq!(
            IsoWeek::parse("2026-W53").unwrap().monday().to_string(),
            "2026-12-28"
        );
        for bad in ["2027-W53", "2026-W00", "2026W47", "2026-W7", "26-W47"] {
            assert!(IsoWeek::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn timestamps_outside_the_calendar_are_rejected() {
        for bad in [
            "0000-01-01T00:00:00Z",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:00:00Z",
        ] {
            assert!(
                Timestamp::parse_rfc3339(bad).is_err(),
                "{bad} should not parse"
            );
        }
    }

    #[test]
    fn timestamp_renders_in_utc_and_with_offset() {
        let t = Timestamp::parse_rfc3339("2026-11-03T11:00:00+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-03T10:00:00Z");
        assert_eq!(
            t.to_rfc3339_in(chrono_tz::Europe::Berlin),
            "2026-11-03T11:00:00+01:00"
        );
    }
}
