//! The rules themselves: given the state, one rep and "now", which conditions hold.
//! Each finding carries its figures, its money at stake, a message and a suggested
//! action; the alert book (`book.rs`) turns findings into alerts with ids and a life.
//!
//! Money at stake ranks a rep's alerts for the focus limit. It is always minor units
//! of revenue:
//! - `behind_pace`, `month_missed`: the shortfall, plan − projected (or − actual).
//! - `activity_behind`: the revenue the missing activities stand for: the month's
//!   total plan × (expected-to-date − actual) ÷ the activity's monthly plan.
//! - `product_concentration`: the open pipeline beyond the allowed share.
//! - `customer_mix`: the open pipeline outside the target band.
//! - `low_coverage`: the part of next month's remaining plan the pipeline does not
//!   cover at the required ratio: remaining − pipeline ÷ ratio.
//! - `report_card_drop`: this month's retention plan (the revenue unhappy customers
//!   put at risk) × (threshold − score) ÷ threshold.
//!
//! A rule whose inputs are missing stays silent: no plan line (or a zero plan) for the
//! bucket, no open pipeline, fewer ratings or open deals than its minimum, too early in
//! the month for a pace to mean anything, or a rep who has departed.

use std::collections::BTreeMap;

use crate::bucket::{Bucket, BucketRef, UNASSIGNED};
use crate::event::{CustomerKind, EventBody, Percent};
use crate::money::{div_round_half_away, format_decimal, mul_div_round, Currency};
use crate::report::Pace;
use crate::state::{DealView, Rep, RepLines, State};
use crate::time::{Month, Timestamp};

use super::config::{AlertConfig, Rule, Rules, Severity};

/// The figures behind an alert. Money in minor units, activity buckets in counts,
/// scores in hundredths of a point; `None` where a figure means nothing for the rule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    pub plan: Option<i64>,
    pub actual: Option<i64>,
    pub expected_to_date: Option<i64>,
    pub forecast: Option<i64>,
    /// The open pipeline the rule looked at (face value).
    pub pipeline: Option<i64>,
    /// Negative when behind: actual − what the rule asks for.
    pub gap: Option<i64>,
    /// Average customer rating, hundredths of a point.
    pub score: Option<i64>,
}

/// A condition that holds for one rep now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub rule: Rule,
    /// `None` for the report card, which is about the rep, not a bucket.
    pub bucket: Option<Bucket>,
    /// The month the finding is about (next month for `low_coverage`, last month for
    /// `month_missed`).
    pub month: Month,
    pub severity: Severity,
    pub figures: Figures,
    /// Minor units of revenue; see the module documentation.
    pub money_at_stake: i64,
    pub message: String,
    pub suggested_action: String,
}

/// What identifies an alert within a rep and a week.
pub type FindingKey = (Rule, Option<Bucket>, Month);

impl Finding {
    pub fn key(&self) -> FindingKey {
        (self.rule, self.bucket.clone(), self.month)
    }

    /// Between findings with the same money at stake, the broader bucket ranks first
    /// (total before its breakdowns, revenue before activities).
    pub fn breadth_rank(&self) -> u8 {
        match &self.bucket {
            Some(Bucket::Total) => 0,
            Some(Bucket::NewCustomer | Bucket::Retention) => 1,
            Some(Bucket::Geo(_)) => 2,
            Some(Bucket::Product(_)) => 3,
            Some(Bucket::Account(_)) => 4,
            None => 5,
            Some(Bucket::Activity(_)) => 6,
        }
    }
}

/// `num ÷ den` as a percentage with up to two decimals ("62.5"), cut toward zero so
/// that 89.999% reads 89.99%, never the 90% threshold it is below.
fn percent_text(num: i64, den: i64) -> String {
    let hundredths = (i128::from(num) * 10_000) / i128::from(den);
    trim(format_decimal(
        i64::try_from(hundredths).unwrap_or(i64::MAX),
        2,
    ))
}

/// Hundredths as a short decimal ("3.5", "2.25", "3").
fn hundredths_text(v: i64) -> String {
    trim(format_decimal(v, 2))
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// The sum of the positive amounts, saturating: a pipeline of many deals at the
/// amount cap cannot overflow.
fn sum(amounts: impl Iterator<Item = i64>) -> i64 {
    amounts.fold(0i64, |acc, a| acc.saturating_add(a.max(0)))
}

/// `value < pct × base`, exactly.
fn below(value: i64, pct: Percent, base: i64) -> bool {
    i128::from(value) * 10_000 < i128::from(pct.hundredths()) * i128::from(base)
}

/// `value > pct × base`, exactly.
fn above(value: i64, pct: Percent, base: i64) -> bool {
    i128::from(value) * 10_000 > i128::from(pct.hundredths()) * i128::from(base)
}

/// Every finding for `rep` at `now`, sorted by rule, bucket and month.
pub fn findings(state: &State, rep: &str, now: Timestamp, cfg: &AlertConfig) -> Vec<Finding> {
    findings_of(state, rep, now, cfg, Scope::ALL)
}

/// Which of a rep's findings (and standing alerts) an event can change: those of
/// `rules`, and when `bucket` is set, only those on that bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scope<'a> {
    pub rules: Rules,
    pub bucket: Option<BucketRef<'a>>,
}

impl Scope<'_> {
    /// Every rule, every bucket.
    pub const ALL: Scope<'static> = Scope {
        rules: Rules::ALL,
        bucket: None,
    };

    pub fn is_all(&self) -> bool {
        self.rules == Rules::ALL && self.bucket.is_none()
    }

    /// Whether a finding of `rule` on `bucket` is in the scope.
    pub fn covers(&self, rule: Rule, bucket: Option<&Bucket>) -> bool {
        self.rules.contains(rule)
            && self
                .bucket
                .is_none_or(|only| bucket.is_some_and(|b| b.borrowed() == only))
    }
}

/// [`rules_moved_by`], narrowed to a bucket where an event moves only one: an
/// activity adds to its own bucket's actual and nothing else, so it can change only
/// the `activity_behind` finding on that bucket.
pub fn scope_moved_by(body: &EventBody) -> Scope<'_> {
    match body {
        EventBody::ActivityLogged(a) => Scope {
            rules: Rules::of(&[Rule::ActivityBehind]),
            bucket: Some(BucketRef::Activity(&a.kind)),
        },
        _ => Scope {
            rules: rules_moved_by(body),
            bucket: None,
        },
    }
}

/// The rules whose findings an event of this kind can change, besides everything a
/// new day, a plan or a change to the org changes (those re-evaluate every rule).
/// What each rule reads about its rep:
/// - `behind_pace`: this month's plan, money actuals and open deals;
/// - `activity_behind`: this month's plan (total and activity lines) and activity
///   actuals;
/// - `product_concentration`, `customer_mix`: the open deals;
/// - `low_coverage`: next month's plan and total actual, and the open deals;
/// - `report_card_drop`: the ratings and this month's retention plan;
/// - `month_missed`: last month's plan and total actual;
/// - every rule: the rep's name and departure, and "now".
///
/// No rule reads forecasts or acknowledgements. A void changes what its event
/// changed, which the fold does not look up: every rule.
pub fn rules_moved_by(body: &EventBody) -> Rules {
    use Rule::*;
    const DEAL: Rules = Rules::of(&[BehindPace, ProductConcentration, CustomerMix, LowCoverage]);
    match body {
        EventBody::ActivityLogged(_) => Rules::of(&[ActivityBehind]),
        EventBody::CustomerRated(_) => Rules::of(&[ReportCardDrop]),
        EventBody::Retention(..) => Rules::of(&[BehindPace, LowCoverage, MonthMissed]),
        EventBody::DealOpened(_) | EventBody::DealStageChanged(_) | EventBody::DealLost(_) => DEAL,
        // A win moves actuals in its closed-on month, which can be last month.
        EventBody::DealWon(_) => DEAL.union(Rules::of(&[MonthMissed])),
        EventBody::ForecastSubmitted(_) | EventBody::AlertAcknowledged(_) => Rules::NONE,
        EventBody::RepRegistered(_)
        | EventBody::RepReassigned(_)
        | EventBody::RepDeparted(_)
        | EventBody::PlanPublished(_)
        | EventBody::EventVoided(_)
        | EventBody::FxRateSet(_)
        | EventBody::ClockTick => Rules::ALL,
    }
}

/// The findings in this scope only (of enabled rules), sorted by key: what
/// [`findings`] holds in it.
pub fn findings_of(
    state: &State,
    rep: &str,
    now: Timestamp,
    cfg: &AlertConfig,
    scope: Scope<'_>,
) -> Vec<Finding> {
    let rules = scope.rules;
    let tz = state.config().timezone;
    let pace = Pace::new(now.local_date(tz));
    let month = pace.month;
    let record = state.reps().get(rep);
    if record.and_then(|r| r.departed).is_some_and(|d| d <= month) {
        return Vec::new();
    }
    const READ_OPEN_DEALS: Rules = Rules::of(&[
        Rule::BehindPace,
        Rule::ProductConcentration,
        Rule::CustomerMix,
        Rule::LowCoverage,
    ]);
    let ctx = Ctx {
        state,
        rep,
        week_month: crate::alerts::alert_week(now, tz).monday().month(),
        // The name is the registration's (an unregistered rep is named by its id).
        name: record.map_or(rep, Rep::name),
        currency: state.config().currency,
        pace,
        month,
        plan: state.plans().rep_month(rep, month),
        only_bucket: scope.bucket,
        open: if rules.intersects(READ_OPEN_DEALS) {
            state.open_deals(rep).collect()
        } else {
            Vec::new()
        },
    };
    // The rules in order, each with its switch (the first cast fixes the type).
    let checks = [
        (Rule::BehindPace, Ctx::behind_pace as fn(&_, &_, &mut _)),
        (Rule::ActivityBehind, Ctx::activity_behind),
        (Rule::ProductConcentration, Ctx::product_concentration),
        (Rule::CustomerMix, Ctx::customer_mix),
        (Rule::LowCoverage, Ctx::low_coverage),
        (Rule::ReportCardDrop, Ctx::report_card_drop),
        (Rule::MonthMissed, Ctx::month_missed),
    ];
    let mut out = Vec::new();
    for (rule, check) in checks {
        if rules.contains(rule) && cfg.enabled(rule) {
            check(&ctx, cfg, &mut out);
        }
    }
    if scope.bucket.is_some() {
        out.retain(|f| scope.covers(f.rule, f.bucket.as_ref()));
    }
    out.sort_by_key(Finding::key);
    out
}

/// What every rule reads about the rep, gathered once.
struct Ctx<'a> {
    state: &'a State,
    rep: &'a str,
    name: &'a str,
    currency: Currency,
    pace: Pace,
    month: Month,
    /// The month of the alert week's Monday: the month of the rules that are about the
    /// pipeline or the customers rather than a month's plan, so that a month turning
    /// mid-week does not raise their alerts again.
    week_month: Month,
    /// This month's plan lines.
    plan: Option<RepLines<'a>>,
    /// The one bucket the findings are wanted on, if only one (see [`Scope`]); a
    /// rule may skip the others.
    only_bucket: Option<BucketRef<'a>>,
    open: Vec<DealView<'a>>,
}

impl<'a> Ctx<'a> {
    /// This month's plan lines, in bucket order.
    fn plan_lines(&self) -> impl Iterator<Item = (&'a Bucket, i64)> + 'a {
        self.plan.into_iter().flatten().map(|(b, t)| (b, *t))
    }

    /// This month's plan for `bucket`, if there is a line.
    fn plan_of(&self, bucket: &Bucket) -> Option<i64> {
        self.plan.and_then(|lines| lines.get(bucket).copied())
    }

    fn money(&self, minor: i64) -> String {
        self.currency.format_minor(minor)
    }

    fn behind_pace(&self, cfg: &AlertConfig, out: &mut Vec<Finding>) {
        let c = &cfg.behind_pace;
        if self.pace.days_worked < c.min_working_days {
            return;
        }
        let weighted = self.state.weighted_pipeline_by_ref(self.rep, self.month);
        let figures = |bucket: &Bucket, plan: i64| {
            let actual = self.state.actual(self.rep, self.month, bucket);
            let pipeline = weighted.get(&bucket.borrowed()).copied().unwrap_or(0);
            let forecast = actual.saturating_add(pipeline);
            (plan, actual, forecast)
        };
        let total = self
            .plan_of(&Bucket::Total)
            .map(|p| figures(&Bucket::Total, p));
        for (bucket, plan) in self.plan_lines() {
            if bucket.is_activity() || plan <= 0 {
                continue;
            }
            let (plan, actual, forecast) = figures(bucket, plan);
            if *bucket != Bucket::Total && Some((plan, actual, forecast)) == total {
                // The bucket is the whole of the total (a rep with one region, say):
                // same plan, same actual, same forecast. Its alert would only repeat
                // the total's.
                continue;
            }
            let run_rate = self.pace.run_rate_projection(actual);
            let projected = Pace::projected(run_rate, Some(forecast)).unwrap_or(forecast);
            if !below(projected, c.below_pct, plan) {
                continue;
            }
            let critical = c
                .critical_below_pct
                .is_some_and(|p| below(projected, p, plan));
            let expected = self.pace.expected_to_date(plan);
            let short = plan.saturating_sub(projected);
            out.push(Finding {
                rule: Rule::BehindPace,
                bucket: Some(bucket.clone()),
                month: self.month,
                severity: if critical { Severity::Critical } else { c.severity },
                figures: Figures {
                    plan: Some(plan),
                    actual: Some(actual),
                    expected_to_date: Some(expected),
                    forecast: Some(forecast),
                    gap: Some(actual.saturating_sub(expected)),
                    ..Figures::default()
                },
                money_at_stake: short,
                message: format!(
                    "{bucket} is projected at {}% of plan for {}: {} of {} (actual {}, {} expected by today, forecast {})",
                    percent_text(projected, plan),
                    self.month,
                    self.money(projected),
                    self.money(plan),
                    self.money(actual),
                    self.money(expected),
                    self.money(forecast),
                ),
                suggested_action: self.pace_action(bucket, short),
            });
        }
    }

    fn pace_action(&self, bucket: &Bucket, short: i64) -> String {
        let name = &self.name;
        let short = self.money(short);
        match bucket {
            Bucket::Total => format!(
                "Go through every deal {name} can still close in {}: {short} more is needed; pull deals forward and add pipeline.",
                self.month
            ),
            Bucket::Geo(r) => format!(
                "Review the {r} territory with {name}: which accounts can close {short} more this month?"
            ),
            Bucket::Product(p) => format!(
                "Check the {p} pipeline with {name}: which demos and proposals can close {short} more this month?"
            ),
            Bucket::NewCustomer => format!(
                "Work on new logos with {name}: push new-customer deals to proposal and book first meetings ({short} short)."
            ),
            Bucket::Retention => format!(
                "Call this month's renewal and expansion accounts with {name} ({short} short)."
            ),
            Bucket::Account(a) => format!(
                "Meet {a} with {name} this week: what stands between them and the next order ({short} short)?"
            ),
            Bucket::Activity(_) => format!("Review the plan with {name}."),
        }
    }

    fn activity_behind(&self, cfg: &AlertConfig, out: &mut Vec<Finding>) {
        let c = &cfg.activity_behind;
        if self.pace.days_worked < c.min_working_days {
            return;
        }
        let revenue_plan = self.plan_of(&Bucket::Total).unwrap_or(0).max(0);
        for (bucket, plan) in self.plan_lines() {
            let Bucket::Activity(kind) = bucket else {
                continue;
            };
            if self
                .only_bucket
                .is_some_and(|only| only != bucket.borrowed())
            {
                continue;
            }
            let expected = self.pace.expected_to_date(plan);
            if plan <= 0 || expected <= 0 {
                continue;
            }
            let actual = self.state.actual(self.rep, self.month, bucket);
            if !below(actual, c.below_pct, expected) {
                continue;
            }
            let critical = c
                .critical_below_pct
                .is_some_and(|p| below(actual, p, expected));
            let behind = expected - actual;
            out.push(Finding {
                rule: Rule::ActivityBehind,
                bucket: Some(bucket.clone()),
                month: self.month,
                severity: if critical { Severity::Critical } else { c.severity },
                figures: Figures {
                    plan: Some(plan),
                    actual: Some(actual),
                    expected_to_date: Some(expected),
                    gap: Some(actual - expected),
                    ..Figures::default()
                },
                money_at_stake: mul_div_round(revenue_plan, behind, plan),
                message: format!(
                    "{bucket} is behind: {actual} of {expected} expected by today ({}% of pace; {plan} planned for {})",
                    percent_text(actual, expected),
                    self.month
                ),
                suggested_action: format!(
                    "Plan this week's {kind} activities with {}: {behind} behind pace, {} still to do this month.",
                    self.name,
                    (plan - actual).max(0)
                ),
            });
        }
    }

    fn product_concentration(&self, cfg: &AlertConfig, out: &mut Vec<Finding>) {
        let c = &cfg.product_concentration;
        let total = sum(self.open.iter().map(|d| d.amount));
        if self.open.len() < c.min_open_deals as usize || total <= 0 {
            return;
        }
        let mut by_product: BTreeMap<&str, i64> = BTreeMap::new();
        for d in &self.open {
            let product = d.product.unwrap_or(UNASSIGNED);
            let slot = by_product.entry(product).or_insert(0);
            *slot = slot.saturating_add(d.amount.max(0));
        }
        // The largest named line; the first by name on a tie. Deals without a product
        // are no line of their own.
        let Some((product, top)) = by_product.iter().filter(|(p, _)| **p != UNASSIGNED).fold(
            None,
            |best: Option<(&str, i64)>, (p, v)| match best {
                Some((_, b)) if b >= *v => best,
                _ => Some((p, *v)),
            },
        ) else {
            return;
        };
        if !above(top, c.above_pct, total) {
            return;
        }
        let critical = c.critical_above_pct.is_some_and(|p| above(top, p, total));
        let allowed = mul_div_round(total, i64::from(c.above_pct.hundredths()), 10_000);
        out.push(Finding {
            rule: Rule::ProductConcentration,
            bucket: Some(Bucket::Product(product.to_owned())),
            month: self.week_month,
            severity: if critical { Severity::Critical } else { c.severity },
            figures: Figures {
                actual: Some(top),
                pipeline: Some(total),
                gap: Some(allowed - top),
                ..Figures::default()
            },
            money_at_stake: top - allowed,
            message: format!(
                "{}% of the open pipeline is {product}: {} of {} (limit {}%)",
                percent_text(top, total),
                self.money(top),
                self.money(total),
                c.above_pct.to_decimal_string()
            ),
            suggested_action: format!(
                "Broaden {}'s pipeline: qualify opportunities in other product lines before adding more {product}.",
                self.name
            ),
        });
    }

    fn customer_mix(&self, cfg: &AlertConfig, out: &mut Vec<Finding>) {
        let c = &cfg.customer_mix;
        let total = sum(self.open.iter().map(|d| d.amount));
        if self.open.len() < c.min_open_deals as usize || total <= 0 {
            return;
        }
        let new = sum(self
            .open
            .iter()
            .filter(|d| d.customer_kind == CustomerKind::New)
            .map(|d| d.amount));
        let target = i64::from(c.target_new_pct.hundredths());
        let band = |tol: Percent| {
            let tol = i64::from(tol.hundredths());
            ((target - tol).max(0), (target + tol).min(10_000))
        };
        // `new ÷ total` against a band [lo, hi] of hundredths of a percent, exactly.
        let outside = |(lo, hi): (i64, i64)| {
            let share = i128::from(new) * 10_000;
            share < i128::from(lo) * i128::from(total) || share > i128::from(hi) * i128::from(total)
        };
        let (lo, hi) = band(c.tolerance_pct);
        if !outside((lo, hi)) {
            return;
        }
        let critical = c.critical_tolerance_pct.is_some_and(|t| outside(band(t)));
        let at = |bp: i64| mul_div_round(total, bp, 10_000);
        let too_few = i128::from(new) * 10_000 < i128::from(lo) * i128::from(total);
        let off_band = if too_few { at(lo) - new } else { new - at(hi) };
        let target_amount = at(target);
        out.push(Finding {
            rule: Rule::CustomerMix,
            bucket: Some(Bucket::NewCustomer),
            month: self.week_month,
            severity: if critical { Severity::Critical } else { c.severity },
            figures: Figures {
                plan: Some(target_amount),
                actual: Some(new),
                pipeline: Some(total),
                gap: Some(new - target_amount),
                ..Figures::default()
            },
            money_at_stake: off_band,
            message: format!(
                "new customers are {}% of the open pipeline ({} of {}); the target is {}% ± {} points",
                percent_text(new, total),
                self.money(new),
                self.money(total),
                c.target_new_pct.to_decimal_string(),
                c.tolerance_pct.to_decimal_string()
            ),
            suggested_action: if too_few {
                format!(
                    "Rebalance toward new logos: {} needs about {} more new-customer pipeline.",
                    self.name,
                    self.money(off_band)
                )
            } else {
                format!(
                    "Rebalance toward existing customers: plan renewals and expansions with {} (about {} of pipeline).",
                    self.name,
                    self.money(off_band)
                )
            },
        });
    }

    fn low_coverage(&self, cfg: &AlertConfig, out: &mut Vec<Finding>) {
        let c = &cfg.low_coverage;
        let next = self.month.plus(1);
        let plan = self.state.plans().target(self.rep, next, &Bucket::Total);
        let actual = self.state.actual(self.rep, next, &Bucket::Total);
        let remaining = plan.saturating_sub(actual);
        if plan <= 0 || remaining <= 0 || c.min_ratio == 0 {
            return;
        }
        let pipeline = sum(self
            .open
            .iter()
            .filter(|d| d.expected_close.month() == next)
            .map(|d| d.amount));
        let short_of =
            |ratio: u32| i128::from(pipeline) * 100 < i128::from(ratio) * i128::from(remaining);
        if !short_of(c.min_ratio) {
            return;
        }
        let critical = c.critical_min_ratio.is_some_and(short_of);
        let ratio = i64::from(c.min_ratio);
        let needed = mul_div_round(remaining, ratio, 100);
        let uncovered = i64::try_from(div_round_half_away(
            i128::from(ratio) * i128::from(remaining) - 100 * i128::from(pipeline),
            i128::from(ratio),
        ))
        .unwrap_or(i64::MAX);
        out.push(Finding {
            rule: Rule::LowCoverage,
            bucket: Some(Bucket::Total),
            month: next,
            severity: if critical { Severity::Critical } else { c.severity },
            figures: Figures {
                plan: Some(plan),
                actual: Some(actual),
                pipeline: Some(pipeline),
                gap: Some(pipeline - needed),
                ..Figures::default()
            },
            money_at_stake: uncovered,
            message: format!(
                "{next} is covered {}× by open pipeline: {} against {} of plan still open (needs {}×)",
                // Cut toward zero: 2.999× reads 2.99×, never the 3× it falls short of.
                hundredths_text(
                    i64::try_from(i128::from(pipeline) * 100 / i128::from(remaining))
                        .unwrap_or(i64::MAX)
                ),
                self.money(pipeline),
                self.money(remaining),
                hundredths_text(ratio)
            ),
            suggested_action: format!(
                "Build pipeline for {next} with {}: {} more in qualified opportunities closing next month.",
                self.name,
                self.money(needed - pipeline)
            ),
        });
    }

    fn report_card_drop(&self, cfg: &AlertConfig, out: &mut Vec<Finding>) {
        const DIMENSIONS: [&str; 4] = ["listening", "trust", "problem_solving", "responsiveness"];
        let c = &cfg.report_card_drop;
        let first = self.month.plus(1 - c.window_months.max(1) as i32);
        let ratings: Vec<_> = self
            .state
            .ratings(self.rep)
            .iter()
            .filter(|r| r.month >= first && r.month <= self.month)
            .collect();
        let n = ratings.len() as i64;
        if n == 0 || n < i64::from(c.min_ratings) {
            return;
        }
        let mut sums = [0i64; 4];
        for r in &ratings {
            for (s, v) in sums.iter_mut().zip(r.scores) {
                *s += i64::from(v);
            }
        }
        let total: i64 = sums.iter().sum();
        // Exactly: total ÷ 4n against the threshold, before any rounding; the score
        // shown is cut toward zero the same way (3.495 reads 3.49, not 3.5).
        let score = crate::state::score_hundredths(total, n);
        let threshold = i64::from(c.below_score);
        let below_score = |t: i64| i128::from(total) * 100 < i128::from(t) * i128::from(4 * n);
        if !below_score(threshold) {
            return;
        }
        let critical = c
            .critical_below_score
            .is_some_and(|t| below_score(i64::from(t)));
        // The weakest dimension; the first in report-card order on a tie.
        let (weakest, weakest_sum) = DIMENSIONS
            .iter()
            .zip(sums)
            .fold(None, |best: Option<(&str, i64)>, (d, s)| match best {
                Some((_, b)) if b <= s => best,
                _ => Some((d, s)),
            })
            .expect("four dimensions");
        let retention_plan = self.plan_of(&Bucket::Retention).unwrap_or(0).max(0);
        out.push(Finding {
            rule: Rule::ReportCardDrop,
            bucket: None,
            month: self.week_month,
            severity: if critical { Severity::Critical } else { c.severity },
            figures: Figures {
                score: Some(score),
                gap: Some(score - threshold),
                ..Figures::default()
            },
            money_at_stake: mul_div_round(retention_plan, threshold - score, threshold),
            message: format!(
                "customers rate {} {} of 5 on average over {n} ratings since {first} (threshold {}; weakest: {weakest} {})",
                self.name,
                hundredths_text(score),
                hundredths_text(threshold),
                hundredths_text(mul_div_round(weakest_sum, 100, n))
            ),
            suggested_action: format!(
                "Join {}'s next customer meetings and agree a follow-up plan on {weakest} with the lowest-rating accounts.",
                self.name
            ),
        });
    }

    fn month_missed(&self, cfg: &AlertConfig, out: &mut Vec<Finding>) {
        let c = &cfg.month_missed;
        let last = self.month.plus(-1);
        let plan = self.state.plans().target(self.rep, last, &Bucket::Total);
        if plan <= 0 {
            return;
        }
        let actual = self.state.actual(self.rep, last, &Bucket::Total);
        if !below(actual, c.below_pct, plan) {
            return;
        }
        let critical = c.critical_below_pct.is_some_and(|p| below(actual, p, plan));
        out.push(Finding {
            rule: Rule::MonthMissed,
            bucket: Some(Bucket::Total),
            month: last,
            severity: if critical {
                Severity::Critical
            } else {
                c.severity
            },
            figures: Figures {
                plan: Some(plan),
                actual: Some(actual),
                gap: Some(actual.saturating_sub(plan)),
                ..Figures::default()
            },
            money_at_stake: plan.saturating_sub(actual),
            message: format!(
                "{last} closed at {}% of plan: {} of {}",
                percent_text(actual, plan),
                self.money(actual),
                self.money(plan)
            ),
            suggested_action: format!(
                "Go over what slipped in {last} with {} and carry the lessons into {}.",
                self.name, self.month
            ),
        });
    }
}
