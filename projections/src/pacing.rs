//! How a month fills: the pacing curve learned from the log's own history, and each
//! rep's track record, which the alert rules judge a month by.
//!
//! **The curve.** Sales do not close evenly across a month; B2B months back-load.
//! From the trailing `history_months` completed months (12 by default) Pacer learns,
//! per team, which share of a month's bookings had typically landed by working day
//! k: every day's net `total` of every rep of the team (the rep's team as of that
//! month; a day that lost more than it booked counts as nothing) is placed at its
//! position in its month (working days through it ÷ the month's working days), and
//! the amounts are pooled. Today's share is the pooled amount placed at or before
//! today's position ÷ the whole amount, rounded to a whole percent (so a late
//! booking moves a team's expectations only when it moves them by a point). A team
//! with fewer than `min_history_months` months of bookings in the window uses the
//! organisation's curve; an organisation with fewer uses the straight line, working
//! days elapsed ÷ working days in the month, as does `curve = "linear"`. Activities
//! are always expected along the straight line.
//!
//! Expected-to-date is plan × share, the pace gap actual − expected, the run-rate
//! projection actual ÷ share; every figure is exact (a share is a fraction of two
//! integers), rounded half away from zero at the end.
//!
//! **The track record.** What a rep's own recent months say about this one: their
//! attainment of each bucket over the last completed months with a plan, and how
//! many bookings a month they close ([`State::track_record`]); and how much the rest
//! of each month brought from the same position ([`State::finishes`]).
//!
//! Everything here is a pure function of the state: the curve of a month changes
//! only when an event lands in one of its learning months (or moves a rep between
//! teams), and the fold re-evaluates the alerts of the reps on a curve that moved.

use std::collections::BTreeMap;
use std::fmt;

use crate::bucket::{Bucket, BucketRef};
pub use crate::config::{CurveMode, PaceConfig};
use crate::money::{div_round_half_away, mul_div_round};
use crate::state::names::{BucketId, Buckets};
use crate::state::{DayAmounts, PlanAt, RepLines, State};
use chrono_tz::Tz;
use rustc_hash::FxHashMap;

use crate::time::{alert_week, Date, IsoWeek, Month, MonthCalendar, Timestamp};

/// How far through its month "today" is, in working days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    pub today: Date,
    pub month: Month,
    /// Working days of the month up to and including today.
    pub days_worked: u32,
    /// Working days in the whole month.
    pub days_in_month: u32,
}

impl Pace {
    /// The month-end projection `behind_pace` judges (and the digest shows): the
    /// larger of the run-rate projection and the pipeline forecast, either of which
    /// may be missing.
    pub fn projected(run_rate: Option<i64>, forecast: Option<i64>) -> Option<i64> {
        match (run_rate, forecast) {
            (Some(r), Some(f)) => Some(r.max(f)),
            (r, f) => r.or(f),
        }
    }

    pub fn new(today: Date) -> Self {
        let month = today.month();
        Pace {
            today,
            month,
            days_worked: month.working_days_through(today),
            days_in_month: month.working_days(),
        }
    }

    /// P × f, rounded half away from zero.
    pub fn expected_to_date(&self, plan: i64) -> i64 {
        mul_div_round(
            plan,
            i64::from(self.days_worked),
            i64::from(self.days_in_month),
        )
    }

    /// A ÷ f, rounded half away from zero; `None` before the month's first working day.
    pub fn run_rate_projection(&self, actual: i64) -> Option<i64> {
        (self.days_worked > 0).then(|| {
            mul_div_round(
                actual,
                i64::from(self.days_in_month),
                i64::from(self.days_worked),
            )
        })
    }
}

/// Where a share came from: what the report says it used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CurveSource {
    Linear,
    /// The rep's team's history: how many months of it.
    Team {
        months: u32,
    },
    /// The organisation's history (the team had too little).
    Org {
        months: u32,
    },
}

impl fmt::Display for CurveSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CurveSource::Linear => f.write_str("linear"),
            CurveSource::Team { months } => write!(f, "team history ({months} months)"),
            CurveSource::Org { months } => write!(f, "organisation history ({months} months)"),
        }
    }
}

impl CurveSource {
    /// A short slug for machine output: `linear`, `team`, `org`.
    pub fn as_str(self) -> &'static str {
        match self {
            CurveSource::Linear => "linear",
            CurveSource::Team { .. } => "team",
            CurveSource::Org { .. } => "org",
        }
    }
}

/// The share of a month's bookings expected by a working day: `num ÷ den`, exactly,
/// with `0 ≤ num ≤ den` and `den > 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    pub num: i64,
    pub den: i64,
}

impl Share {
    /// Working days elapsed ÷ working days in the month.
    pub fn linear(pace: &Pace) -> Share {
        Share {
            num: i64::from(pace.days_worked),
            den: i64::from(pace.days_in_month.max(1)),
        }
    }

    /// `value × share`, rounded half away from zero: expected-to-date of a plan.
    pub fn of(&self, value: i64) -> i64 {
        mul_div_round(value, self.num, self.den)
    }

    /// `value ÷ share`, rounded half away from zero: the run-rate projection of an
    /// actual; `None` while nothing is expected yet.
    pub fn project(&self, value: i64) -> Option<i64> {
        (self.num > 0).then(|| mul_div_round(value, self.den, self.num))
    }

    /// `value × (1 − share)`: what the rest of the month is expected to bring.
    pub fn rest_of(&self, value: i64) -> i64 {
        mul_div_round(value, self.den - self.num, self.den)
    }

    /// The share rounded to a whole percent (half away from zero): what a learned
    /// curve gives, so that a late booking moves a team's expectations only when it
    /// moves them by a point, not every rep's figures by cents.
    pub fn to_whole_percent(&self) -> Share {
        let pct = div_round_half_away(i128::from(self.num) * 100, i128::from(self.den));
        Share {
            num: pct as i64,
            den: 100,
        }
    }
}

/// Which days of a month count as landed by working day `k` of a month of `n`
/// working days: the same share of the way through. In a month of `n_m` working
/// days, a day at working day w (a weekend day counts with the working day before
/// it; one that opens the month, as 0) has landed when w × n ≤ k × n_m.
#[derive(Clone, Copy)]
struct Landed {
    cal: MonthCalendar,
    through: u32,
}

impl Landed {
    fn new(month: Month, k: u32, n: u32) -> Landed {
        let cal = month.calendar();
        Landed {
            cal,
            through: (k.min(n) * cal.working_days()) / n.max(1),
        }
    }

    /// Whether day `day` (1 = the 1st) of the month has landed.
    fn by(self, day: u32) -> bool {
        self.cal.working_days_through_day(day) <= self.through
    }
}

/// The share of the pooled day amounts of `months` landed by working day `k` of a
/// month of `n` working days; `None` when the months booked nothing. Each day counts
/// its net amount, a day that lost more than it booked counts as nothing: the curve
/// learns when revenue lands, and never falls back from one day to the next.
pub fn learned_share<'a>(
    months: impl IntoIterator<Item = (Month, &'a DayAmounts)>,
    k: u32,
    n: u32,
) -> Option<Share> {
    let mut num = 0i128;
    let mut den = 0i128;
    for (month, days) in months {
        let landed = Landed::new(month, k, n);
        for (d, v) in days
            .iter()
            .enumerate()
            .take(landed.cal.len as usize + 1)
            .skip(1)
        {
            if *v <= 0 {
                continue;
            }
            den += i128::from(*v);
            if landed.by(d as u32) {
                num += i128::from(*v);
            }
        }
    }
    if den <= 0 {
        return None;
    }
    // Sums of a year's bookings fit i64 in practice; scaled down only if they would
    // not, which leaves the fraction as it was to far below a percent.
    let scale = den / i128::from(i64::MAX / 2) + 1;
    Some(Share {
        num: i64::try_from(num / scale).unwrap_or(i64::MAX),
        den: i64::try_from(den / scale).unwrap_or(i64::MAX).max(1),
    })
}

/// A rep's recent months, gathered in one pass: each bucket's (actual, plan) over
/// the last months with a `total` plan, and the bookings a month over them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackRecord<'s> {
    /// (bucket, actual, plan) over the months with a plan line for it, in the
    /// order first met.
    buckets: Vec<(BucketId, i64, i64)>,
    /// (bookings, months) over the track-record months.
    bookings: (i64, i64),
    names: &'s Buckets,
}

impl TrackRecord<'_> {
    /// The bucket's (actual, plan) over its track-record months; `None` without one.
    pub fn of(&self, bucket: &Bucket) -> Option<(i64, i64)> {
        let id = self.names.get(bucket.borrowed())?;
        self.buckets
            .iter()
            .find(|(b, ..)| *b == id)
            .map(|(_, a, p)| (*a, *p))
    }

    /// The bookings a month, in hundredths; `None` without a month with a plan.
    pub fn bookings_per_month(&self) -> Option<i64> {
        let (count, months) = self.bookings;
        (months > 0)
            .then(|| div_round_half_away(i128::from(count) * 100, i128::from(months)) as i64)
    }
}

/// Each team's share of the month expected by today, worked out once for the many
/// reps of one report or one evaluation (every rep on a new day), and kept, within a
/// [`Memo`], from one evaluation to the next while today and the learning months'
/// bookings stay as they were.
#[derive(Clone, Debug, Default)]
pub struct ShareMemo(BTreeMap<String, (Pace, u64, (Share, CurveSource))>);

impl ShareMemo {
    /// [`State::pace_share`] of `team`, worked out again when `pace` moved or the
    /// stamp of its learning months did (any change to their actuals or bookings,
    /// a plan event, a rep's days filed under another team) since it was kept.
    pub fn get(&mut self, state: &State, team: &str, pace: &Pace) -> (Share, CurveSource) {
        let stamp = state.stamp_of(state.learning_months(pace.month));
        if let Some((p, at, s)) = self.0.get(team) {
            if p == pace && *at == stamp {
                debug_assert_eq!(*s, state.pace_share(team, pace), "a kept share of {team}");
                return *s;
            }
        }
        let s = state.pace_share(team, pace);
        self.0.insert(team.to_owned(), (*pace, stamp, s));
        s
    }
}

/// A rep's track record as kept: for a month and a number of months, at a stamp.
#[derive(Clone, Debug)]
struct KeptRecord {
    month: Month,
    months: u32,
    stamp: u64,
    buckets: Vec<(BucketId, i64, i64)>,
    bookings: (i64, i64),
}

/// What a [`Memo`] keeps of one rep.
#[derive(Clone, Debug, Default)]
struct RepMemo {
    record: Option<KeptRecord>,
    /// Where the rep's plan lines of a month are, at the stamp of the plans.
    plan: Option<(Month, u64, Option<PlanAt>)>,
}

/// What the alert rules work out from completed months and the plans, kept from one
/// event's evaluation to the next: each team's share of the month expected by
/// today, each rep's track record and where each rep's plan lines are. They read
/// only the learning months before today's month and the plans, which the events of
/// a day rarely touch, while a new day re-evaluates every rep; so most evaluations
/// find them here. A kept value holds while the stamp of what it read is the one it
/// was worked out at (the fold stamps every change to a month's actuals or bookings,
/// to the plans, and to which team a rep's days are filed under:
/// [`State::stamp_of`]); debug builds check each value found against a fresh one.
/// Stamps are per month, not per rep: a back-dated booking in a learning month
/// makes every rep's track record and every team's share be worked out again.
///
/// A memo belongs to one state's fold ([`crate::model::Model`]). It is not a fact:
/// models compare equal whatever their memos hold.
#[derive(Clone, Debug, Default)]
pub struct Memo {
    pub(crate) shares: ShareMemo,
    reps: FxHashMap<String, RepMemo>,
    /// "Now" and, in its time zone, where it is in its month and its alert week.
    today: Option<(Timestamp, Tz, Pace, IsoWeek)>,
}

impl Memo {
    /// Where `now` is in its month ([`Pace`]) and its alert week
    /// ([`crate::time::alert_week`]), in `tz`: worked out once for every rep of an
    /// evaluation, and again when "now" moves.
    pub fn today(&mut self, now: Timestamp, tz: Tz) -> (Pace, IsoWeek) {
        match self.today {
            Some((at, zone, pace, week)) if (at, zone) == (now, tz) => (pace, week),
            _ => {
                let (pace, week) = (Pace::new(now.local_date(tz)), alert_week(now, tz));
                self.today = Some((now, tz, pace, week));
                (pace, week)
            }
        }
    }

    fn rep(&mut self, rep: &str) -> &mut RepMemo {
        if !self.reps.contains_key(rep) {
            self.reps.insert(rep.to_owned(), RepMemo::default());
        }
        self.reps.get_mut(rep).expect("inserted above")
    }

    /// [`crate::state::Plans::rep_month`], looked up again for another month or after
    /// a change that stamps every month (a plan event, a refile).
    pub fn plan<'s>(&mut self, state: &'s State, rep: &str, month: Month) -> Option<RepLines<'s>> {
        let plans = state.plans();
        let stamp = state.stamp_of(std::iter::empty());
        let kept = self.rep(rep);
        let at = match kept.plan {
            Some((m, at_stamp, at)) if (m, at_stamp) == (month, stamp) => at,
            _ => {
                let at = plans.locate(rep, month);
                kept.plan = Some((month, stamp, at));
                at
            }
        };
        let lines = at.and_then(|at| plans.rep_month_at(at, month));
        debug_assert_eq!(
            lines.map(|l| l.cells()),
            plans.rep_month(rep, month).map(|l| l.cells()),
            "the kept plan lines of {rep}"
        );
        lines
    }

    /// [`State::track_record`], worked out again only when `month`, `months` or what
    /// it read changed since it was kept.
    pub fn track_record<'s>(
        &mut self,
        state: &'s State,
        rep: &str,
        month: Month,
        months: u32,
    ) -> TrackRecord<'s> {
        let stamp = state.stamp_of(state.learning_months(month));
        let kept = self.rep(rep);
        if let Some(k) = &kept.record {
            if (k.month, k.months, k.stamp) == (month, months, stamp) {
                let record = TrackRecord {
                    buckets: k.buckets.clone(),
                    bookings: k.bookings,
                    names: state.buckets(),
                };
                debug_assert_eq!(
                    record,
                    state.track_record(rep, month, months),
                    "the kept track record of {rep}"
                );
                return record;
            }
        }
        let fresh = state.track_record(rep, month, months);
        kept.record = Some(KeptRecord {
            month,
            months,
            stamp,
            buckets: fresh.buckets.clone(),
            bookings: fresh.bookings,
        });
        fresh
    }
}

impl PartialEq for Memo {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Memo {}

impl State {
    /// The completed months the curve and the track record learn from, newest first:
    /// the `history_months` months before `month`.
    pub fn learning_months(&self, month: Month) -> impl Iterator<Item = Month> {
        let h = self.config().pace.history_months as i32;
        (1..=h).map(move |i| month.plus(-i))
    }

    /// The share of the month's bookings expected by `pace`'s day for a rep of
    /// `team`, and where it came from (see the module documentation).
    pub fn pace_share(&self, team: &str, pace: &Pace) -> (Share, CurveSource) {
        if self.config().pace.curve == CurveMode::Linear {
            return (Share::linear(pace), CurveSource::Linear);
        }
        if let Some((s, months)) = self
            .team_sym(team)
            .and_then(|t| self.learned(|m| self.team_days(t, m), pace))
        {
            return (s, CurveSource::Team { months });
        }
        match self.org_share(pace) {
            Some((s, months)) => (s, CurveSource::Org { months }),
            None => (Share::linear(pace), CurveSource::Linear),
        }
    }

    /// The organisation's learned share by `pace`'s day and its months of history;
    /// `None` with too little history (or the linear setting).
    pub(crate) fn org_share(&self, pace: &Pace) -> Option<(Share, u32)> {
        if self.config().pace.curve == CurveMode::Linear {
            return None;
        }
        self.learned(|m| self.org_days(m), pace)
    }

    /// The share learned from the day amounts `days_of` gives for each learning month,
    /// rounded to a whole percent, and how many months had any; `None` with fewer
    /// than `min_history_months`.
    fn learned<'s>(
        &'s self,
        days_of: impl Fn(Month) -> Option<&'s DayAmounts>,
        pace: &Pace,
    ) -> Option<(Share, u32)> {
        let days: Vec<(Month, &DayAmounts)> = self
            .learning_months(pace.month)
            .filter_map(|m| days_of(m).map(|d| (m, d)))
            .collect();
        let have = days.len() as u32;
        if have < self.config().pace.min_history_months.max(1) {
            return None;
        }
        let exact = learned_share(days, pace.days_worked, pace.days_in_month)?;
        Some((exact.to_whole_percent(), have))
    }

    /// The rep's track record before `month`: their last `months` learning months
    /// with a `total` plan; each bucket's (actual, plan) over those of them that had
    /// a line for it, and the bookings a month over them.
    pub fn track_record(&self, rep: &str, month: Month, months: u32) -> TrackRecord<'_> {
        let names = self.buckets();
        let mut out = TrackRecord {
            buckets: Vec::new(),
            bookings: (0, 0),
            names,
        };
        let total = names.get(BucketRef::Total);
        for m in self.learning_months(month) {
            if out.bookings.1 >= i64::from(months) {
                break;
            }
            let Some(lines) = self.plans().rep_month(rep, m) else {
                continue;
            };
            if !lines
                .cells()
                .iter()
                .any(|(b, p)| Some(*b) == total && *p > 0)
            {
                continue;
            }
            let actuals = self.actual_cells(rep, m);
            // Plan lines and actuals are both in bucket-name order: one walk.
            let mut a = 0;
            for &(bucket, plan) in lines.cells() {
                let name = names.bucket(bucket);
                while a < actuals.len()
                    && actuals[a].0 != bucket
                    && names.bucket(actuals[a].0) < name
                {
                    a += 1;
                }
                let actual = match actuals.get(a) {
                    Some((b, v)) if *b == bucket => *v,
                    _ => 0,
                };
                if plan <= 0 {
                    continue;
                }
                if Some(bucket) == total {
                    let booked = self.rep_bookings(rep, m).map_or(0, |b| b.bookings);
                    out.bookings.0 += i64::from(booked);
                    out.bookings.1 += 1;
                }
                match out.buckets.iter_mut().find(|(b, ..)| *b == bucket) {
                    Some(entry) => {
                        entry.1 = entry.1.saturating_add(actual);
                        entry.2 = entry.2.saturating_add(plan);
                    }
                    None => out.buckets.push((bucket, actual, plan)),
                }
            }
        }
        out
    }

    /// For each learning month before `pace.month` with a `total` plan: what the rest
    /// of that month brought after the same position as today (its net `total` after
    /// working day k, k ÷ n of the way through as today is), in hundredths of a
    /// percent of that month's plan. Sorted ascending.
    pub fn finishes(&self, rep: &str, pace: &Pace) -> Vec<i64> {
        let (k, n) = (pace.days_worked, pace.days_in_month);
        let mut out = Vec::new();
        for m in self.learning_months(pace.month) {
            let plan = self.plans().target(rep, m, &Bucket::Total);
            if plan <= 0 {
                continue;
            }
            let landed = Landed::new(m, k, n);
            let rest: i64 = self.rep_bookings(rep, m).map_or(0, |b| {
                b.days()
                    .filter(|(d, _)| !landed.by(u32::from(*d)))
                    .fold(0i64, |acc, (_, v)| acc.saturating_add(v))
            });
            out.push(mul_div_round(rest, 10_000, plan));
        }
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn month(s: &str) -> Month {
        Month::parse(s).unwrap()
    }

    #[test]
    fn a_day_lands_at_its_position_scaled_to_the_month_asked_about() {
        // 2026-11 has 21 working days; asked about a month of 21, day 13 is day 13.
        let nov = month("2026-11");
        assert_eq!(Landed::new(nov, 13, 21).through, 13);
        // Asked about a month of 23 working days: 13 × 21 ÷ 23 = 11.87, so the
        // bookings of November's first 11 working days count by day 13.
        assert_eq!(Landed::new(nov, 13, 23).through, 11);
        // Past the end, the whole month.
        assert_eq!(Landed::new(nov, 30, 21).through, 21);
        // Bookings on the 30th (working day 21) land only at the end; a net loss
        // counts as nothing.
        let mut days = [0i64; 32];
        days[30] = 100;
        days[3] = 10;
        days[4] = -50;
        let share = |k| learned_share([(nov, &days)], k, 21).unwrap();
        assert_eq!(share(1), Share { num: 0, den: 110 });
        assert_eq!(share(2), Share { num: 10, den: 110 });
        assert_eq!(share(20), Share { num: 10, den: 110 });
        assert_eq!(share(21), Share { num: 110, den: 110 });
        assert_eq!(learned_share([(nov, &[0i64; 32])], 5, 21), None);
    }
}
