//! Validation: the rules an event must meet beyond its shape, which depend on the
//! deployment (the reporting currency) or on the event as a whole (plan lines inside
//! the horizon, no duplicate plan line, split shares summing to 100%).
//!
//! Runs after [`crate::wire::decode`] and before the log: decode → validate → dedupe
//! → append → flush → ack.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono_tz::Tz;
use pacer_projections::event::{Event, EventBody, PlanPublished, Split};
use pacer_projections::fx::{normalize, FxTable};
use pacer_projections::money::{Currency, Money};

use crate::error::{RejectKind, Rejection};

/// What validation needs to know about the deployment and the log so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules<'a> {
    /// The reporting currency; an amount in any other needs an `fx_rate_set` for its
    /// month.
    pub currency: Currency,
    /// The org time zone (the month of an amount dated only by `occurred_at`).
    pub timezone: Tz,
    /// The rates known so far.
    pub fx: &'a FxTable,
}

/// Validates the events of one batch in order, each as if the earlier ones were
/// already stored: a rate set earlier in the batch converts the amounts after it; a
/// duplicate rate (already in the log, or earlier in the batch) will not be stored,
/// so it does not count either.
pub struct BatchRules {
    currency: Currency,
    timezone: Tz,
    fx: FxTable,
    /// The ids of the batch's rates so far.
    ids: HashSet<String>,
}

impl BatchRules {
    /// Starts from the rates the projections know.
    pub fn new(currency: Currency, timezone: Tz, fx: FxTable) -> Self {
        BatchRules {
            currency,
            timezone,
            fx,
            ids: HashSet::new(),
        }
    }

    /// Checks the next event of the batch; `is_stored` tells whether an id is in
    /// the log already.
    pub fn check<E>(
        &mut self,
        ev: &Event,
        is_stored: impl FnOnce(&str) -> Result<bool, E>,
    ) -> Result<Result<(), Rejection>, E> {
        let rules = Rules {
            currency: self.currency,
            timezone: self.timezone,
            fx: &self.fx,
        };
        if let Err(r) = validate(ev, &rules) {
            return Ok(Err(r));
        }
        // Only a rate changes what later events of the batch are checked against; the
        // log is asked about rates alone.
        if let EventBody::FxRateSet(r) = &ev.body {
            if self.ids.insert(ev.event_id.clone()) && !is_stored(&ev.event_id)? {
                self.fx.set(r.currency, r.month, r.rate);
            }
        }
        Ok(Ok(()))
    }
}

/// The largest amount one event may carry, in minor units (10^15: ten trillion
/// dollars in cents). Far beyond any real deal, and low enough that sums of
/// billions of events stay inside an `i64`.
pub const AMOUNT_MINOR_MAX: i64 = 1_000_000_000_000_000;

/// Checks one decoded event against the rules: amounts within the cap, in the
/// reporting currency or convertible at their month's rate (and within the cap once
/// converted), plans inside their horizon, splits summing to 100%.
pub fn validate(ev: &Event, rules: &Rules) -> Result<(), Rejection> {
    // The cap first, on the amounts as sent: it also keeps conversion inside i128.
    for m in amounts(ev) {
        check_cap(m)?;
    }
    if let EventBody::FxRateSet(r) = &ev.body {
        if r.currency == rules.currency {
            return Err(Rejection::new(
                RejectKind::InvalidValue,
                "currency",
                format!(
                    "{:?} is the reporting currency: it needs no rate",
                    r.currency.code()
                ),
            ));
        }
        return Ok(());
    }
    let converted = normalize(ev, rules.currency, rules.timezone, rules.fx).map_err(|m| {
        Rejection::new(
            RejectKind::UnsupportedCurrency,
            m.field,
            format!(
                "{:?} is not the reporting currency {:?}, and no fx_rate_set gives its rate for {}",
                m.currency.code(),
                rules.currency.code(),
                m.month
            ),
        )
    })?;
    let ev: &Event = &converted;
    let money = |m: &Money, field: &str| check_money(m, rules, field);
    match &ev.body {
        EventBody::PlanPublished(p) => validate_plan(p, rules),
        EventBody::ForecastSubmitted(f) => money(&f.amount, "currency"),
        EventBody::DealOpened(d) => money(&d.amount, "currency"),
        EventBody::DealStageChanged(d) => {
            d.amount.as_ref().map_or(Ok(()), |a| money(a, "currency"))
        }
        EventBody::DealWon(d) => {
            money(&d.amount, "currency")?;
            validate_splits(&d.splits)
        }
        EventBody::Retention(_, r) => money(&r.amount, "currency"),
        EventBody::RepRegistered(_)
        | EventBody::RepReassigned(_)
        | EventBody::RepDeparted(_)
        | EventBody::DealLost(_)
        | EventBody::ActivityLogged(_)
        | EventBody::CustomerRated(_)
        | EventBody::EventVoided(_)
        | EventBody::AlertAcknowledged(_)
        | EventBody::ClockTick
        | EventBody::FxRateSet(_)
        | EventBody::PlanSubmitted(_)
        | EventBody::PlanApproved(_)
        | EventBody::PlanRejected(_) => Ok(()),
        EventBody::CompPlanPublished(c) => {
            if c.currency != rules.currency {
                return Err(Rejection::new(
                    RejectKind::UnsupportedCurrency,
                    "currency",
                    format!(
                        "{:?} is not the reporting currency {:?}: variable pay is in the reporting currency",
                        c.currency.code(),
                        rules.currency.code()
                    ),
                ));
            }
            pacer_projections::comp::check_plan(c).map_err(|(field, message)| {
                Rejection::new(RejectKind::InvalidValue, field, message)
            })
        }
    }
}

/// The amounts an event carries.
fn amounts(ev: &Event) -> Vec<&Money> {
    match &ev.body {
        EventBody::ForecastSubmitted(f) => vec![&f.amount],
        EventBody::DealOpened(d) => vec![&d.amount],
        EventBody::DealStageChanged(d) => d.amount.iter().collect(),
        EventBody::DealWon(d) => vec![&d.amount],
        EventBody::Retention(_, r) => vec![&r.amount],
        _ => Vec::new(),
    }
}

fn check_cap(m: &Money) -> Result<(), Rejection> {
    if m.minor.unsigned_abs() > AMOUNT_MINOR_MAX as u64 {
        return Err(Rejection::new(
            RejectKind::InvalidValue,
            "amount",
            format!(
                "{:?} is over the limit of {} per event",
                m.to_decimal_string(),
                m.currency.format_minor(AMOUNT_MINOR_MAX)
            ),
        ));
    }
    Ok(())
}

/// A converted amount: in the reporting currency, and within the cap there too.
fn check_money(m: &Money, rules: &Rules, field: &str) -> Result<(), Rejection> {
    check_currency(m.currency, rules, field)?;
    check_cap(m)
}

fn check_currency(c: Currency, rules: &Rules, field: &str) -> Result<(), Rejection> {
    if c == rules.currency {
        return Ok(());
    }
    Err(Rejection::new(
        RejectKind::UnsupportedCurrency,
        field,
        format!(
            "{:?} is not the reporting currency {:?} (plans are published in the reporting currency)",
            c.code(),
            rules.currency.code()
        ),
    ))
}

fn validate_plan(p: &PlanPublished, rules: &Rules) -> Result<(), Rejection> {
    check_currency(p.currency, rules, "currency")?;
    if !p.covers(p.effective_from) {
        return Err(Rejection::new(
            RejectKind::InvalidValue,
            "effective_from",
            format!(
                "{} is outside the plan's 24-month horizon {}..{}",
                p.effective_from,
                p.horizon_start,
                p.horizon_start.plus(PlanPublished::HORIZON_MONTHS - 1)
            ),
        ));
    }
    let mut seen: BTreeMap<(&str, _, &_), usize> = BTreeMap::new();
    for (i, l) in p.lines.iter().enumerate() {
        if !p.covers(l.month) {
            return Err(Rejection::new(
                RejectKind::InvalidValue,
                format!("lines[{i}].month"),
                format!(
                    "{} is outside the plan's 24-month horizon {}..{}",
                    l.month,
                    p.horizon_start,
                    p.horizon_start.plus(PlanPublished::HORIZON_MONTHS - 1)
                ),
            ));
        }
        if l.target > AMOUNT_MINOR_MAX {
            return Err(Rejection::new(
                RejectKind::InvalidValue,
                format!("lines[{i}].target"),
                format!(
                    "{} is over the limit of {AMOUNT_MINOR_MAX} minor units or activities",
                    l.target
                ),
            ));
        }
        if let Some(j) = seen.insert((l.rep.as_str(), l.month, &l.bucket), i) {
            return Err(Rejection::new(
                RejectKind::InvalidValue,
                format!("lines[{i}]"),
                format!(
                    "repeats lines[{j}] (rep {:?}, month {}, bucket {})",
                    l.rep, l.month, l.bucket
                ),
            ));
        }
    }
    Ok(())
}

fn validate_splits(splits: &[Split]) -> Result<(), Rejection> {
    if splits.is_empty() {
        return Ok(());
    }
    let mut reps = BTreeSet::new();
    for (i, s) in splits.iter().enumerate() {
        if !reps.insert(s.rep.as_str()) {
            return Err(Rejection::new(
                RejectKind::InvalidValue,
                format!("splits[{i}].rep"),
                format!("{:?} appears twice in the splits", s.rep),
            ));
        }
    }
    let total: u32 = splits
        .iter()
        .map(|s| u32::from(s.percent.hundredths()))
        .sum();
    if total != 10_000 {
        return Err(Rejection::new(
            RejectKind::InvalidValue,
            "splits",
            format!(
                "the percents sum to {}, not 100",
                pacer_projections::money::format_decimal(i64::from(total), 2)
            ),
        ));
    }
    Ok(())
}

/// A part of a plan version that plans a rep's month differently from another part
/// of the same version already in the projections: the rule that needs the state,
/// checked by the engine after [`BatchRules::check`] (one process and NATS).
pub fn plan_part_clash(state: &pacer_projections::state::State, ev: &Event) -> Option<Rejection> {
    let EventBody::PlanPublished(p) = &ev.body else {
        return None;
    };
    let clashes = pacer_projections::plan::part_clashes(
        state,
        &p.plan,
        p.version,
        p.effective_from,
        &ev.event_id,
        &p.lines,
    );
    let (rep, month, seq) = clashes.first()?;
    Some(Rejection::new(
        RejectKind::InvalidValue,
        "lines",
        format!(
            "plans {rep} in {month} differently from another part of plan {} version {} (seq {seq}){}; a version's parts may not overlap",
            p.plan,
            p.version,
            if clashes.len() > 1 {
                format!(", and {} more rep-months", clashes.len() - 1)
            } else {
                String::new()
            }
        ),
    ))
}
