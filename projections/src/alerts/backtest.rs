//! Alerts judged by outcomes: every alert is a claim about how a month will end, and
//! once the month has ended the claim was right or wrong. Given a state folded over
//! the log (with a tick at least every working day, so that every day's alerts were
//! raised as they would have been live), this scores each rule against the months
//! that have ended: how many claims it made, how often they came true (precision),
//! how many of the months that did end badly it flagged in time (recall), and how far
//! ahead (lead time).
//!
//! A claim is one rule on one rep, bucket and month, whatever the weeks its alerts
//! ran over (an alert superseded by the next week's is the same claim). It counts at
//! a severity from the first working day it stood at that severity or above. What
//! each rule claims, and so what "right" means, at a severity whose threshold is T:
//! - `behind_pace` on a bucket: the bucket ended the month below T × plan (T is
//!   `below_pct` for a warning, `critical_below_pct` for a critical alert);
//! - `activity_behind`: the activity bucket ended below T × plan;
//! - `low_coverage`: the month it is about (next month) ended with `total` below T ×
//!   plan, T being `behind_pace`'s thresholds;
//! - `product_concentration`, `customer_mix`, `report_card_drop`: they name a risk,
//!   not a figure, so they are scored as `low_coverage` is, on their month's
//!   `total`;
//! - `month_missed`: a closed month is below plan; it states a fact and is right by
//!   construction (listed for completeness).
//!
//! Recall: of the months that ended below T (for the rule's buckets with a plan),
//! the share flagged at that severity by working day `recall_by_day` of the month
//! (of the month after, for `month_missed`). It is counted for the `total` of
//! `behind_pace`, `low_coverage` and `month_missed`, and for activity buckets; a
//! breakdown of the total (`new_customer`, a region, a product line, an account)
//! raises on its own only while the total is on track, its shortfall otherwise
//! being part of the total's alert, so its rows have precision but no recall. The
//! balance rules have no recall either: they name a risk, and a month can be missed
//! without it. Lead time: working days from the day a right claim was first flagged
//! to the end of its month.

use std::collections::BTreeMap;

use crate::bucket::Bucket;
use crate::event::Percent;
use crate::model::Model;
use crate::time::{Date, Month};

use super::config::{AlertConfig, Rule, Severity};

/// Which part of the history to score.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BacktestQuery {
    /// First and last month scored; only months that have ended are.
    pub from: Month,
    pub to: Month,
    /// Only these working days of a month count as days alerts were seen on (1-based;
    /// `None`: every day).
    pub days: Option<DaySet>,
    /// A month that ended below the threshold counts as flagged when the alert stood
    /// by this working day of it.
    pub recall_by_day: u32,
}

/// A set of working days of a month, 1–31.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DaySet(u32);

impl DaySet {
    /// Parses `1-10`, `5,10,15`, `3-5,12`.
    pub fn parse(s: &str) -> Result<DaySet, String> {
        let mut bits = 0u32;
        let day = |t: &str| -> Result<u32, String> {
            match t.trim().parse::<u32>() {
                Ok(d) if (1..=31).contains(&d) => Ok(d),
                _ => Err(format!("{t:?} is not a working day from 1 to 31")),
            }
        };
        for part in s.split(',') {
            let (a, b) = match part.split_once('-') {
                Some((a, b)) => (day(a)?, day(b)?),
                None => {
                    let d = day(part)?;
                    (d, d)
                }
            };
            if a > b {
                return Err(format!("{part:?}: the range runs backwards"));
            }
            for d in a..=b {
                bits |= 1 << d;
            }
        }
        Ok(DaySet(bits))
    }

    pub fn contains(self, day: u32) -> bool {
        day < 32 && self.0 & (1 << day) != 0
    }
}

/// What a row of the score is about: the kind of bucket the rule's claims name.
pub fn scope_of(bucket: Option<&Bucket>) -> &'static str {
    match bucket {
        None => "rep",
        Some(Bucket::Total) => "total",
        Some(Bucket::NewCustomer | Bucket::Retention) => "new/retention",
        Some(Bucket::Geo(_)) => "geo",
        Some(Bucket::Product(_)) => "product",
        Some(Bucket::Account(_)) => "account",
        Some(Bucket::Activity(_)) => "activity",
    }
}

/// One rule, scope and severity scored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScoreRow {
    pub rule: Rule,
    pub scope: &'static str,
    /// The rule's own severity (the row of any alert it raised), or critical (the
    /// row of the alerts that reached critical).
    pub severity: Severity,
    /// The threshold a month had to end below for a claim to be right (of plan).
    pub threshold: Percent,
    /// Claims made at this severity or above.
    pub alerts: u64,
    /// Of those, the ones whose month ended below the threshold.
    pub right: u64,
    /// Months (rep × bucket × month with a plan) that ended below the threshold.
    pub ended_below: u64,
    /// Of those, the ones flagged at this severity or above by `recall_by_day`.
    pub flagged: u64,
    /// Working days from first flag to month end, for each right claim (sorted).
    pub lead_days: Vec<u32>,
}

impl ScoreRow {
    /// Right ÷ alerts, in hundredths of a percent; `None` without alerts.
    pub fn precision_bp(&self) -> Option<i64> {
        (self.alerts > 0).then(|| (self.right * 10_000 / self.alerts) as i64)
    }

    /// Flagged ÷ ended below, in hundredths of a percent; `None` when no month did.
    pub fn recall_bp(&self) -> Option<i64> {
        (self.ended_below > 0).then(|| (self.flagged * 10_000 / self.ended_below) as i64)
    }

    /// The median lead time in working days (the lower middle of an even count).
    pub fn median_lead_days(&self) -> Option<u32> {
        let n = self.lead_days.len();
        (n > 0).then(|| self.lead_days[(n - 1) / 2])
    }
}

/// The score of every enabled rule over the months scored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backtest {
    /// The months that had ended and were scored, in order.
    pub months: Vec<Month>,
    pub recall_by_day: u32,
    /// By rule, scope, then severity (warning, then critical).
    pub rows: Vec<ScoreRow>,
}

/// One claim: a rule on a rep, bucket and month, and the first working day (among
/// the days asked about) it stood on at its rule's own severity or above, and at
/// critical.
#[derive(Default)]
struct Claim {
    first: Option<Date>,
    first_critical: Option<Date>,
}

/// The first working date from `start` through `end` (inclusive) whose position in
/// its month is in `days`.
fn first_seen(start: Date, end: Date, days: Option<DaySet>) -> Option<Date> {
    let mut d = start;
    while d <= end {
        if d.is_working_day() {
            let pos = d.month().working_days_through(d);
            if days.is_none_or(|set| set.contains(pos)) {
                return Some(d);
            }
        }
        d = d.add_days(1);
    }
    None
}

/// Working days after `d` through the end of `month` (`d` may be in an earlier
/// month: a coverage alert is raised the month before the one it is about).
fn working_days_left(d: Date, month: Month) -> u32 {
    let mut n = 0;
    let mut x = d.add_days(1);
    let end = month.last_day();
    while x <= end {
        if x.is_working_day() {
            n += 1;
        }
        x = x.add_days(1);
    }
    n
}

/// The date of working day `k` of `month` (its last working day if it has fewer).
fn working_day_date(month: Month, k: u32) -> Date {
    let mut last = month.first_day();
    let mut seen = 0;
    for d in month.days() {
        if d.is_working_day() {
            seen += 1;
            last = d;
            if seen == k {
                break;
            }
        }
    }
    last
}

/// The threshold a claim of `rule` at `severity` is judged against, and whether the
/// rule has one.
fn threshold(cfg: &AlertConfig, rule: Rule, severity: Severity) -> Option<Percent> {
    let pick = |below: Percent, critical: Option<Percent>| {
        if severity == Severity::Critical {
            critical
        } else {
            Some(below)
        }
    };
    let pace = &cfg.behind_pace;
    match rule {
        Rule::ActivityBehind => pick(
            cfg.activity_behind.below_pct,
            cfg.activity_behind.critical_below_pct,
        ),
        Rule::MonthMissed => pick(
            cfg.month_missed.below_pct,
            cfg.month_missed.critical_below_pct,
        ),
        Rule::BehindPace
        | Rule::LowCoverage
        | Rule::ProductConcentration
        | Rule::CustomerMix
        | Rule::ReportCardDrop => pick(pace.below_pct, pace.critical_below_pct),
    }
}

/// The rows of a rule: its own severity (any alert), then critical, once each.
fn severities(cfg: &AlertConfig, rule: Rule) -> Vec<Severity> {
    match cfg.severity(rule) {
        Severity::Critical => vec![Severity::Critical],
        base => vec![base, Severity::Critical],
    }
}

/// `actual < pct × plan`, exactly.
fn ended_below(actual: i64, plan: i64, pct: Percent) -> bool {
    i128::from(actual) * 10_000 < i128::from(pct.hundredths()) * i128::from(plan)
}

/// The bucket a rule's outcome is read from, for a claim on `bucket`.
fn outcome_bucket(rule: Rule, bucket: Option<&Bucket>) -> Bucket {
    match rule {
        Rule::BehindPace | Rule::ActivityBehind => bucket.cloned().unwrap_or(Bucket::Total),
        _ => Bucket::Total,
    }
}

/// The rows being counted, by rule, scope and severity.
type Rows = BTreeMap<(Rule, &'static str, Severity), ScoreRow>;

/// The row of a rule, scope and severity, made on first use.
fn row<'r>(
    rows: &'r mut Rows,
    rule: Rule,
    scope: &'static str,
    severity: Severity,
    threshold: Percent,
) -> &'r mut ScoreRow {
    rows.entry((rule, scope, severity))
        .or_insert_with(|| ScoreRow {
            rule,
            scope,
            severity,
            threshold,
            alerts: 0,
            right: 0,
            ended_below: 0,
            flagged: 0,
            lead_days: Vec::new(),
        })
}

/// Scores the alerts of `state` (folded over the log, ticked every working day)
/// against the months in `query` that have ended by the state's "now".
pub fn backtest(state: &Model, query: &BacktestQuery) -> Backtest {
    let cfg = &state.config().alerts;
    let now_month = state.current_month();
    let months: Vec<Month> = (0..=query.from.months_until(query.to))
        .map(|i| query.from.plus(i))
        .filter(|m| now_month.is_some_and(|now| *m < now))
        .collect();
    let scored = |m: Month| months.binary_search(&m).is_ok();
    let tz = state.config().timezone;

    // Claims, from every alert the fold raised.
    let mut claims: BTreeMap<(Rule, &str, Option<&Bucket>, Month), Claim> = BTreeMap::new();
    for a in state.alert_book().iter() {
        let f = &a.finding;
        if !scored(f.month) {
            continue;
        }
        // It stood from its raise to its close (times are the clock's: the tick
        // before the event that closed it), or to now; and it speaks of its month
        // until that ends (a rear-view alert, of the month after).
        let raised = a.raised_at.local_date(tz);
        let last = if f.rule.is_rear_view() {
            f.month.plus(1).last_day()
        } else {
            f.month.last_day()
        };
        let end = a
            .closed
            .map(|(t, _)| t)
            .or(state.now())
            .map_or(raised, |t| t.local_date(tz))
            .min(last);
        let claim = claims
            .entry((f.rule, a.rep.as_str(), f.bucket.as_ref(), f.month))
            .or_default();
        if let Some(d) = first_seen(raised, end, query.days) {
            claim.first = Some(claim.first.map_or(d, |c| c.min(d)));
        }
        if a.severity == Severity::Critical {
            let at = a.escalated_at.unwrap_or(a.raised_at).local_date(tz);
            if let Some(d) = first_seen(at, end, query.days) {
                claim.first_critical = Some(claim.first_critical.map_or(d, |c| c.min(d)));
            }
        }
    }

    let mut rows: Rows = BTreeMap::new();
    // What each rule's claims say, against how the months ended.
    for ((rule, rep, bucket, month), claim) in &claims {
        let ob = outcome_bucket(*rule, *bucket);
        let plan = state.plans().target(rep, *month, &ob);
        if plan <= 0 {
            continue;
        }
        let actual = state.actual(rep, *month, &ob);
        let scope = scope_of(*bucket);
        for (severity, first) in severities(cfg, *rule)
            .into_iter()
            .zip([claim.first, claim.first_critical])
        {
            let (Some(t), Some(first)) = (threshold(cfg, *rule, severity), first) else {
                continue;
            };
            let r = row(&mut rows, *rule, scope, severity, t);
            r.alerts += 1;
            if ended_below(actual, plan, t) {
                r.right += 1;
                r.lead_days.push(working_days_left(first, *month));
            }
        }
    }
    // The months that ended below each threshold, and whether they were flagged.
    let flagged_by =
        |rule: Rule, rep: &str, bucket: Option<&Bucket>, month: Month, sev: Severity| {
            let due_month = if rule == Rule::MonthMissed {
                month.plus(1)
            } else {
                month
            };
            let due = working_day_date(due_month, query.recall_by_day);
            claims
                .get(&(rule, rep, bucket, month))
                .and_then(|c| match sev {
                    Severity::Critical => c.first_critical,
                    _ => c.first,
                })
                .is_some_and(|d| d <= due)
        };
    for rule in Rule::ALL.into_iter().filter(|r| cfg.enabled(*r)) {
        for (rep, record) in state.reps() {
            for &month in &months {
                if record.departed.is_some_and(|d| d <= month) {
                    continue;
                }
                let Some(lines) = state.plans().rep_month(rep, month) else {
                    continue;
                };
                for (bucket, plan) in lines.iter() {
                    if *plan <= 0 {
                        continue;
                    }
                    // The claims of each rule name these buckets. A breakdown of the
                    // total raises on its own only while the total is not behind
                    // (otherwise it is in the total's explanation), so its months
                    // that ended below are not counted against its recall.
                    let claim_bucket: Option<Bucket> = match rule {
                        Rule::BehindPace if *bucket == Bucket::Total => Some(Bucket::Total),
                        Rule::ActivityBehind if bucket.is_activity() => Some(bucket.clone()),
                        Rule::LowCoverage | Rule::MonthMissed if *bucket == Bucket::Total => {
                            Some(Bucket::Total)
                        }
                        _ => continue,
                    };
                    let actual = state.actual(rep, month, bucket);
                    let scope = scope_of(claim_bucket.as_ref());
                    for severity in severities(cfg, rule) {
                        let can_raise = severity != Severity::Critical || cfg.can_be_critical(rule);
                        let Some(t) = threshold(cfg, rule, severity).filter(|_| can_raise) else {
                            continue;
                        };
                        if !ended_below(actual, *plan, t) {
                            continue;
                        }
                        let r = row(&mut rows, rule, scope, severity, t);
                        r.ended_below += 1;
                        if flagged_by(rule, rep, claim_bucket.as_ref(), month, severity) {
                            r.flagged += 1;
                        }
                    }
                }
            }
        }
    }
    let mut rows: Vec<ScoreRow> = rows.into_values().collect();
    for r in &mut rows {
        r.lead_days.sort_unstable();
    }
    Backtest {
        months,
        recall_by_day: query.recall_by_day,
        rows,
    }
}
