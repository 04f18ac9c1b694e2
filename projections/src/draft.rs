//! Top-down planning: a draft of the next months' plan from the log's history.
//!
//! The organisation's total over the horizon (an absolute target, or the trailing 12
//! months' bookings grown by a percentage, per year of horizon) is spread over the
//! months by seasonality (the history's month-of-year mix, flat, or twelve given
//! percentages), each month over the reps by the allocation method (even, the same
//! month a year before, or the trailing 12 months), reps who started recently ramping
//! up by a schedule, and each rep-month over buckets by that rep's trailing mix:
//! new vs retention, regions, product lines, key accounts, and activities per unit of
//! revenue. Every split uses largest remainders, so each level adds up to the minor
//! unit and the brief's bucket invariants hold exactly.

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
    let trailing: Vec<Month> = (1..=12).map(|k| spec.start.plus(-k)).collect();
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
        Total::Growth(pct) => {
            // Trailing × (1 + pct) × months / 12, rounded once.
            let num =
                i128::from(org_trailing) * (10_000 + i128::from(pct)) * i128::from(spec.months);
            let t = div_round_half_away(num, 10_000 * 12);
            if org_trailing <= 0 {
                return Err("--growth needs bookings in the 12 months before --start; the log has none (give --target)".into());
            }
            i64::try_from(t)
                .ok()
                .filter(|t| *t <= TOTAL_MAX)
                .ok_or_else(|| {
                    format!("the grown total is over the {TOTAL_MAX} minor units a plan may hold")
                })?
        }
    };
    // Months by seasonality.
    let month_weights: [i128; 12] = match &spec.seasonality {
        Seasonality::Flat => [1; 12],
        Seasonality::Given(w) => w.map(i128::from),
        Seasonality::History => {
            let mut w = [0i128; 12];
            for ((_, m), b) in state.actuals() {
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
    let weights: Vec<i128> = horizon
        .iter()
        .map(|m| month_weights[(m.month_of_year() - 1) as usize])
        .collect();
    let by_month = largest_remainder(total, &weights);
    let mut lines = Vec::new();
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
                Allocate::PriorYear => i128::from(total_of(r, month.plus(-12)).max(0)),
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
            lines.extend(rep_lines(state, rep, *month, p, &trailing));
        }
    }
    Ok(lines)
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

/// One rep-month's lines: total, then each breakdown by the rep's trailing mix.
fn rep_lines(
    state: &State,
    rep: &str,
    month: Month,
    total: i64,
    trailing: &[Month],
) -> Vec<PlanLine> {
    let mut mix: BTreeMap<Bucket, i128> = BTreeMap::new();
    for m in trailing {
        if let Some(buckets) = state.month_actuals(rep, *m) {
            for (b, v) in buckets {
                *mix.entry(b.clone()).or_insert(0) += i128::from(*v);
            }
        }
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
            };
            let err = draft(&state, &spec).unwrap_err();
            assert!(err.starts_with("months:"), "{err}");
        }
    }
}
