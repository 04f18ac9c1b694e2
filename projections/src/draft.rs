//! Top-down planning: a draft of the next months' plan from the log's history.
//!
//! The history a draft learns from is the complete months before the plan starts:
//! the current, unfinished month counts only when asked (`include_current`), so a
//! half-booked month never reads as a small one.
//!
//! The organisation's total over the horizon is an absolute target, or the trailing 12
//! months' bookings grown by a percentage that compounds per year: year 1 of the
//! horizon plans T × (1 + g), year 2 T × (1 + g)², each pro rata to its months. It is
//! spread over the months by seasonality (the history's month-of-year mix, flat, or
//! twelve given percentages; with growth, within each year), each month over the reps
//! by the allocation method (even; the same month of the last year with history; or
//! the trailing 12 months), reps who started recently ramping up by a schedule, and
//! each rep-month over buckets by that rep's trailing mix (a rep with no history: their
//! team's, accounts aside): new vs retention, regions, product lines, key accounts,
//! and activities per unit of revenue. Every split uses
//! largest remainders, so each level adds up to the minor unit and the brief's bucket
//! invariants hold exactly.

use std::collections::BTreeMap;

use crate::bucket::{Bucket, UNASSIGNED};
use crate::event::PlanLine;
use crate::money::{div_round_half_away, largest_remainder};
use crate::state::State;
use crate::time::Month;

/// How the horizon's total is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Total {
    /// Minor units for the whole horizon.
    Target(i64),
    /// Trailing-12 bookings × (1 + pct), per 12 months of horizon; hundredths of a
    /// percent (10% = 1 000).
    Growth(i64),
}

/// How each month's share is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seasonality {
    /// The history's month-of-year mix (flat where the history is empty).
    History,
    Flat,
    /// Twelve weights, January first (percent hundredths summing to 10 000).
    Given([i64; 12]),
}

/// How each month is shared among reps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocate {
    Even,
    /// Each rep's bookings in the same month a year before.
    PriorYear,
    /// Each rep's bookings in the 12 months before the horizon.
    Trailing12,
}

/// A draft's parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DraftSpec {
    pub start: Month,
    pub months: i32,
    pub total: Total,
    pub allocate: Allocate,
    pub seasonality: Seasonality,
    /// Percent of a full share in a rep's first months (25, 50, 75, 100: the month
    /// they start gets a quarter).
    pub ramp: Vec<i64>,
    /// Count the current, unfinished month in the history (seasonality, the trailing
    /// 12 months, the prior year). Default: complete months only.
    pub include_current: bool,
}

impl DraftSpec {
    /// The last month of history the draft learns from: the month before `start`, or
    /// the last complete month if that is earlier (the current month itself with
    /// `include_current`); with no tick yet, the month before `start`.
    pub fn history_end(&self, state: &State) -> Month {
        let before_start = self.start.plus(-1);
        let last = match state.current_month() {
            Some(c) if self.include_current => c,
            Some(c) => c.plus(-1),
            None => before_start,
        };
        before_start.min(last)
    }
}

/// The largest horizon total a draft takes (10^18 minor units): far beyond any real
/// plan, and low enough that every product of the splits stays inside an i128.
pub const TOTAL_MAX: i64 = 1_000_000_000_000_000_000;

/// A growth percentage is at most this many hundredths (1 000 000%).
pub const GROWTH_MAX: i64 = 100_000_000;

/// Accounts with at least this share of a rep's trailing revenue get a line.
const KEY_ACCOUNT_SHARE_PCT: i128 = 10;

/// A drafted plan, or why there is none.
pub fn draft(state: &State, spec: &DraftSpec) -> Result<Vec<PlanLine>, String> {
    if !(1..=24).contains(&spec.months) {
        return Err(format!(
            "months: {} is not a horizon of 1 to 24 months",
            spec.months
        ));
    }
    let horizon: Vec<Month> = (0..spec.months).map(|k| spec.start.plus(k)).collect();
    let history_end = spec.history_end(state);
    let trailing: Vec<Month> = (0..12).map(|k| history_end.plus(-k)).collect();
    let total_of = |rep: &str, m: Month| state.actual(rep, m, &Bucket::Total);
    let org_trailing: i64 = state
        .actuals()
        .filter(|((_, m), _)| trailing.contains(m))
        .map(|(_, b)| b.get(&Bucket::Total).copied().unwrap_or(0))
        .fold(0i64, |a, v| a.saturating_add(v));
    let total = match spec.total {
        Total::Target(t) if t > TOTAL_MAX => {
            return Err(format!(
                "the target is over the {TOTAL_MAX} minor units a plan may hold"
            ))
        }
        Total::Target(t) if t >= 0 => t,
        Total::Target(t) => return Err(format!("the target {t} is negative")),
        Total::Growth(pct) if !(-10_000..=GROWTH_MAX).contains(&pct) => {
            return Err(format!(
                "a growth of {}% is outside -100% to 1 000 000%",
                crate::money::format_decimal(pct, 2)
            ))
        }
        Total::Growth(_) if org_trailing <= 0 => {
            return Err(format!(
                "--growth needs bookings in the 12 complete months to {history_end}; the log has none (give --target)"
            ));
        }
        Total::Growth(pct) => {
            let t: i64 = year_totals(org_trailing, pct, spec.months)
                .iter()
                .fold(0i64, |a, t| a.saturating_add(*t));
            if t > TOTAL_MAX {
                return Err(format!(
                    "the grown total is over the {TOTAL_MAX} minor units a plan may hold"
                ));
            }
            t
        }
    };
    // Months by seasonality.
    let month_weights: [i128; 12] = match &spec.seasonality {
        Seasonality::Flat => [1; 12],
        Seasonality::Given(w) => w.map(i128::from),
        Seasonality::History => {
            let mut w = [0i128; 12];
            for ((_, m), b) in state.actuals().filter(|((_, m), _)| *m <= history_end) {
                w[(m.month_of_year() - 1) as usize] +=
                    i128::from(b.get(&Bucket::Total).copied().unwrap_or(0).max(0));
            }
            // A month of the year the history never saw gets the mean of the others
            // (flat when the history is empty), never a zero plan.
            let seen: Vec<i128> = w.iter().copied().filter(|v| *v > 0).collect();
            if seen.is_empty() {
                [1; 12]
            } else {
                let mean = (seen.iter().sum::<i128>() / seen.len() as i128).max(1);
                w.map(|v| if v > 0 { v } else { mean })
            }
        }
    };
    let weight = |m: &Month| month_weights[(m.month_of_year() - 1) as usize];
    // A target is spread over the whole horizon; a growth's total year by year (each
    // year its own, so year 2 plans more than year 1).
    let by_month: Vec<i64> = match spec.total {
        Total::Target(_) => {
            let weights: Vec<i128> = horizon.iter().map(weight).collect();
            largest_remainder(total, &weights)
        }
        Total::Growth(pct) => year_totals(org_trailing, pct, spec.months)
            .into_iter()
            .zip(horizon.chunks(12))
            .flat_map(|(t, months)| {
                let weights: Vec<i128> = months.iter().map(weight).collect();
                largest_remainder(t, &weights)
            })
            .collect(),
    };
    let mut lines = Vec::new();
    // Each team's mix, for reps without history of their own, worked out once.
    let mut teams: BTreeMap<String, BTreeMap<Bucket, i128>> = BTreeMap::new();
    for (month, month_total) in horizon.iter().zip(by_month) {
        let reps = active_reps(state, *month);
        if reps.is_empty() {
            return Err(format!("no registered rep is active in {month}"));
        }
        // Raw weights by the allocation method; reps without history get the mean.
        let raw: Vec<i128> = reps
            .iter()
            .map(|r| match spec.allocate {
                Allocate::Even => 1,
                Allocate::PriorYear => {
                    i128::from(total_of(r, prior_year(*month, history_end)).max(0))
                }
                Allocate::Trailing12 => trailing
                    .iter()
                    .map(|m| i128::from(total_of(r, *m).max(0)))
                    .sum(),
            })
            .collect();
        let known: Vec<i128> = raw.iter().copied().filter(|w| *w > 0).collect();
        let mean = if known.is_empty() {
            1
        } else {
            known.iter().sum::<i128>() / known.len() as i128
        }
        .max(1);
        let rep_weights: Vec<i128> = reps
            .iter()
            .zip(&raw)
            .map(|(r, w)| {
                let w = if *w > 0 { *w } else { mean };
                // Ramp: the k-th month of a rep who started k months before; nothing
                // before they start.
                let ramp = match state
                    .reps()
                    .get(r.as_str())
                    .and_then(|rep| rep.start_month)
                    .map(|s| s.months_until(*month))
                {
                    Some(k) if k < 0 => 0,
                    Some(k) if (k as usize) < spec.ramp.len() => spec.ramp[k as usize],
                    _ => 100,
                };
                w * i128::from(ramp)
            })
            .collect();
        if rep_weights.iter().all(|w| *w == 0) {
            return Err(format!(
                "no rep has started by {month} (see their start_month)"
            ));
        }
        let shares = largest_remainder(month_total, &rep_weights);
        for (rep, p) in reps.iter().zip(shares) {
            lines.extend(rep_lines(state, rep, *month, p, &trailing, &mut teams));
        }
    }
    Ok(lines)
}

/// Each year's total of a horizon of `months` grown from `trailing` by `pct`
/// (hundredths of a percent), compounding: year y (from 1) plans trailing × (1 +
/// pct)^y × its months ÷ 12, each rounded half away from zero on its own.
pub fn year_totals(trailing: i64, pct: i64, months: i32) -> Vec<i64> {
    let growth = 10_000 + i128::from(pct);
    let mut factor_num = 1i128;
    let mut factor_den = 1i128;
    (0..(months.max(0) + 11) / 12)
        .map(|y| {
            factor_num *= growth;
            factor_den *= 10_000;
            let in_year = i128::from((months - 12 * y).min(12));
            let t =
                div_round_half_away(i128::from(trailing) * factor_num * in_year, factor_den * 12);
            i64::try_from(t).unwrap_or(i64::MAX)
        })
        .collect()
}

/// The same month of the last year with history: a year before `month`, or two
/// years before when a year before is not history yet (year 2 of a horizon).
pub fn prior_year(month: Month, history_end: Month) -> Month {
    let mut m = month.plus(-12);
    while m > history_end {
        m = m.plus(-12);
    }
    m
}

/// Registered reps not departed by `month`, in order.
fn active_reps(state: &State, month: Month) -> Vec<String> {
    state
        .reps()
        .iter()
        .filter(|(_, r)| r.registered && r.departed.is_none_or(|d| d > month))
        .map(|(id, _)| id.clone())
        .collect()
}

/// A rep's actuals over the trailing months, by bucket.
fn trailing_mix(state: &State, rep: &str, trailing: &[Month]) -> BTreeMap<Bucket, i128> {
    let mut mix: BTreeMap<Bucket, i128> = BTreeMap::new();
    for m in trailing {
        if let Some(buckets) = state.month_actuals(rep, *m) {
            for (b, v) in buckets {
                *mix.entry(b.clone()).or_insert(0) += i128::from(*v);
            }
        }
    }
    mix
}

/// The trailing mix of a team's reps together (their team in `month`), accounts
/// left out (those are other reps' customers): what a rep with no history of their
/// own is drafted by.
fn team_mix(state: &State, team: &str, month: Month, trailing: &[Month]) -> BTreeMap<Bucket, i128> {
    let mut mix: BTreeMap<Bucket, i128> = BTreeMap::new();
    for (id, r) in state.reps() {
        if r.team_at(month) != team {
            continue;
        }
        for (b, v) in trailing_mix(state, id, trailing) {
            if !matches!(b, Bucket::Account(_)) {
                *mix.entry(b).or_insert(0) += v;
            }
        }
    }
    mix
}

/// One rep-month's lines: total, then each breakdown by the rep's trailing mix, or,
/// for a rep with no revenue in the trailing months, their team's.
fn rep_lines(
    state: &State,
    rep: &str,
    month: Month,
    total: i64,
    trailing: &[Month],
    teams: &mut BTreeMap<String, BTreeMap<Bucket, i128>>,
) -> Vec<PlanLine> {
    let mut mix = trailing_mix(state, rep, trailing);
    if mix.get(&Bucket::Total).copied().unwrap_or(0) <= 0 {
        let team = state.rep_at(rep, month).team;
        mix = teams
            .entry(team)
            .or_insert_with_key(|t| team_mix(state, t, month, trailing))
            .clone();
    }
    let line = |bucket: Bucket, target: i64| PlanLine {
        rep: rep.to_owned(),
        month,
        bucket,
        target,
    };
    let mut out = vec![line(Bucket::Total, total)];
    let trailing_total = mix.get(&Bucket::Total).copied().unwrap_or(0).max(0);
    // new_customer and retention always both appear, so their sum is the total.
    let nc = mix.get(&Bucket::NewCustomer).copied().unwrap_or(0).max(0);
    let rt = mix.get(&Bucket::Retention).copied().unwrap_or(0).max(0);
    let split = largest_remainder(total, &if nc + rt > 0 { [nc, rt] } else { [1, 1] });
    out.push(line(Bucket::NewCustomer, split[0]));
    out.push(line(Bucket::Retention, split[1]));
    // A group of buckets that must sum to the total: split by the trailing mix, or put
    // all in `fallback` when the history has nothing for the group.
    let mut group = |pick: &dyn Fn(&Bucket) -> bool, fallback: Bucket| {
        let parts: Vec<(Bucket, i128)> = mix
            .iter()
            .filter(|(b, v)| pick(b) && **v > 0)
            .map(|(b, v)| (b.clone(), *v))
            .collect();
        if parts.is_empty() {
            out.push(line(fallback, total));
            return;
        }
        let weights: Vec<i128> = parts.iter().map(|(_, v)| *v).collect();
        for ((b, _), t) in parts.into_iter().zip(largest_remainder(total, &weights)) {
            out.push(line(b, t));
        }
    };
    let region = state
        .rep_at(rep, month)
        .region
        .unwrap_or_else(|| UNASSIGNED.to_owned());
    group(&|b| matches!(b, Bucket::Geo(_)), Bucket::Geo(region));
    group(
        &|b| matches!(b, Bucket::Product(_)),
        Bucket::Product(UNASSIGNED.to_owned()),
    );
    // Key accounts: those with at least a tenth of the trailing revenue.
    if trailing_total > 0 {
        for (b, v) in &mix {
            if let Bucket::Account(_) = b {
                if *v * 100 >= trailing_total * KEY_ACCOUNT_SHARE_PCT {
                    let t = div_round_half_away(i128::from(total) * *v, trailing_total);
                    out.push(line(b.clone(), t.clamp(0, i128::from(total)) as i64));
                }
            }
        }
        // Activities per unit of revenue.
        for (b, v) in &mix {
            if b.is_activity() && *v > 0 {
                let t = div_round_half_away(i128::from(total) * *v, trailing_total);
                out.push(line(b.clone(), i64::try_from(t).unwrap_or(i64::MAX)));
            }
        }
    }
    out.sort_by(|a, b| a.bucket.cmp(&b.bucket));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use crate::state::OrgConfig;

    #[test]
    fn a_horizon_outside_1_to_24_months_is_an_error_not_a_panic() {
        let state = State::new(OrgConfig {
            timezone: chrono_tz::UTC,
            currency: Currency::from_code("EUR").unwrap(),
            fiscal_year_start_month: 1,
            alerts: Default::default(),
            pace: Default::default(),
        });
        for months in [0, -3, 25] {
            let spec = DraftSpec {
                start: Month::new(2027, 1).unwrap(),
                months,
                total: Total::Target(1_000_000),
                allocate: Allocate::Even,
                seasonality: Seasonality::Flat,
                ramp: Vec::new(),
                include_current: false,
            };
            let err = draft(&state, &spec).unwrap_err();
            assert!(err.starts_with("months:"), "{err}");
        }
    }
}
