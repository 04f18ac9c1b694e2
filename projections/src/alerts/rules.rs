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

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::bucket::{Bucket, BucketRef, UNASSIGNED};
use crate::event::{CustomerKind, EventBody, Percent};
use crate::money::{div_round_half_away, format_decimal, mul_div_round, Currency};
use crate::pacing::{Memo, Share, TrackRecord};
use crate::report::Pace;
use crate::state::{OpenLine, Rep, RepLines, State};
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
    /// The month-end figure the rule judged (`behind_pace`: the larger of the outlook
    /// and the forecast).
    pub projected: Option<i64>,
}

/// One breakdown bucket's part of a `total` that is behind: where the shortfall
/// sits. Its gap is actual − expected-to-date (negative: behind).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shortfall {
    pub bucket: Bucket,
    pub expected_to_date: i64,
    pub actual: i64,
}

impl Shortfall {
    pub fn gap(&self) -> i64 {
        self.actual.saturating_sub(self.expected_to_date)
    }
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
    /// For a `total` behind pace: the breakdown buckets that carry the shortfall,
    /// largest gap first (they raise no alerts of their own meanwhile).
    pub explanation: Vec<Shortfall>,
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
        EventBody::ForecastSubmitted(_)
        | EventBody::AlertAcknowledged(_)
        | EventBody::CompPlanPublished(_) => Rules::NONE,
        EventBody::RepRegistered(_)
        | EventBody::RepReassigned(_)
        | EventBody::RepDeparted(_)
        | EventBody::PlanPublished(_)
        | EventBody::PlanSubmitted(_)
        | EventBody::PlanApproved(_)
        | EventBody::PlanRejected(_)
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
    findings_with(state, rep, now, cfg, scope, &mut Memo::default())
}

/// [`findings_of`], reading through `memo` the teams' shares, the rep's track record
/// and plan lines, and today's pace and alert week.
pub fn findings_with(
    state: &State,
    rep: &str,
    now: Timestamp,
    cfg: &AlertConfig,
    scope: Scope<'_>,
    memo: &mut Memo,
) -> Vec<Finding> {
    let rules = scope.rules;
    let (pace, week) = memo.today(now, state.config().timezone);
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
    // Only `behind_pace` reads the team's curve (activities follow the straight line).
    let share = if rules.contains(Rule::BehindPace) {
        let team = record.map_or(crate::state::UNASSIGNED_TEAM, |r| r.team_at(month));
        memo.shares.get(state, team, &pace).0
    } else {
        Share::linear(&pace)
    };
    let ctx = Ctx {
        state,
        rep,
        share,
        week_month: week.monday().month(),
        // The name is the registration's (an unregistered rep is named by its id).
        name: record.map_or(rep, Rep::name),
        currency: state.config().currency,
        pace,
        month,
        plan: memo.plan(state, rep, month),
        only_bucket: scope.bucket,
        open: if rules.intersects(READ_OPEN_DEALS) {
            state.open_lines(rep).collect()
        } else {
            Vec::new()
        },
        memo: RefCell::new(memo),
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

/// Where a money bucket's month is heading, by the rep's rate for the whole month:
/// this month's pace so far (actual ÷ the share of the month expected by today) and
/// the rep's track record (`(actual, plan)` of their recent months; plan pace
/// without one), the first weighted `w`, the second `1 − w`:
/// `plan × (w × actual ÷ (plan × share) + (1 − w) × record)`, rounded half away
/// from zero, never below the actual.
///
/// `w` is the credibility of this month's pace: a month's first bookings land at
/// random, so a fast or slow start says little, and the rest of the month more.
/// With the rep's bookings a month known, `w = n ÷ (n + k)`, n the bookings expected
/// by today and k `credibility_deals`; without, `w` is the share itself, which makes
/// the outlook actual + the rest of the month at the record's rate.
pub fn outlook(
    plan: i64,
    actual: i64,
    share: Share,
    weight: Option<(i64, i64)>,
    record: Option<(i64, i64)>,
) -> i64 {
    let (sn, sd) = (i128::from(share.num), i128::from(share.den.max(1)));
    let (wn, wd) = weight.map_or((sn, sd), |(n, d)| {
        (i128::from(n.max(0)), i128::from(d.max(1)))
    });
    let (ra, rp) = record.map_or((1, 1), |(a, p)| {
        (i128::from(a.max(0)), i128::from(p.max(1)))
    });
    let plan_ = i128::from(plan);
    let v = if sn == 0 || wn == 0 {
        // Nothing expected yet: the record alone.
        Some(div_round_half_away(ra * plan_, rp))
    } else {
        // w × A × sd ÷ sn + (1 − w) × P × ra ÷ rp, over wd × sn × rp, exactly while
        // it fits.
        let this_month = [wn, i128::from(actual), sd, rp]
            .into_iter()
            .try_fold(1i128, i128::checked_mul);
        let track = [wd - wn, plan_, ra, sn]
            .into_iter()
            .try_fold(1i128, i128::checked_mul);
        let den = [wd, sn, rp].into_iter().try_fold(1i128, i128::checked_mul);
        match (this_month, track, den) {
            (Some(a), Some(b), Some(d)) => a.checked_add(b).map(|n| div_round_half_away(n, d)),
            _ => None,
        }
    };
    // Figures near the 64-bit limits: the same in steps, each rounded.
    let v = v.unwrap_or_else(|| {
        let pace = div_round_half_away(i128::from(actual) * sd, sn.max(1));
        let record = div_round_half_away(plan_ * ra, rp);
        div_round_half_away(pace * wn, wd)
            .saturating_add(div_round_half_away(record * (wd - wn), wd))
    });
    i64::try_from(v).unwrap_or(i64::MAX).max(actual)
}

/// A breakdown is named in a total's explanation when its gap to date is at least
/// this fraction (1 ÷ n) of the total's.
const EXPLAINS_SHARE_OF_GAP: i128 = 10;

/// One money bucket's month as `behind_pace` judges it.
struct Eval {
    plan: i64,
    actual: i64,
    forecast: i64,
    expected: i64,
    /// The larger of the outlook and the forecast.
    projected: i64,
    /// The rep's (actual, plan) of the bucket over their track-record months.
    record: Option<(i64, i64)>,
}

/// What every rule reads about the rep, gathered once.
struct Ctx<'a, 'm> {
    state: &'a State,
    rep: &'a str,
    /// The share of the month's bookings expected by today for the rep's team (when
    /// `behind_pace` is in the scope; the straight line otherwise).
    share: Share,
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
    open: Vec<OpenLine<'a>>,
    /// What earlier evaluations worked out from completed months.
    memo: RefCell<&'m mut Memo>,
}

impl<'a> Ctx<'a, '_> {
    /// The rep's track record over their last `months` learning months.
    fn track_record(&self, months: u32) -> TrackRecord<'a> {
        self.memo
            .borrow_mut()
            .track_record(self.state, self.rep, self.month, months)
    }

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
        let share = self.share;
        let total_plan = self.plan_of(&Bucket::Total).filter(|p| *p > 0);
        // The rep's recent months: each bucket's attainment and the bookings a month
        // (hundredths), from their learning months.
        let history = self.track_record(c.track_record_months);
        let bookings = history.bookings_per_month();
        // Bookings expected by today, in hundredths, for a bucket planned at `plan`.
        let expected_deals = |plan: i64| -> i64 {
            let Some(b) = bookings else { return 0 };
            let part = match total_plan {
                Some(t) if plan < t => mul_div_round(b, plan, t),
                _ => b,
            };
            share.of(part)
        };
        let evidence = |plan: i64| expected_deals(plan) >= i64::from(c.min_expected_deals);
        let eval = |bucket: &Bucket, plan: i64| {
            let actual = self.state.actual(self.rep, self.month, bucket);
            let pipeline = weighted.get(&bucket.borrowed()).copied().unwrap_or(0);
            let forecast = actual.saturating_add(pipeline);
            let record = history.of(bucket);
            let expected = share.of(plan);
            // The credibility of this month's pace: n ÷ (n + k), in hundredths of
            // expected bookings, when the rep's bookings a month are known.
            let weight = bookings.map(|_| {
                let n = expected_deals(plan);
                (n, n + i64::from(c.credibility_deals))
            });
            let outlook = outlook(plan, actual, share, weight, record);
            Eval {
                plan,
                actual,
                forecast,
                expected,
                projected: outlook.max(forecast),
                record,
            }
        };
        let total = total_plan.map(|p| eval(&Bucket::Total, p));
        if let Some(t) = &total {
            if below(t.projected, c.below_pct, t.plan) {
                let critical = c
                    .critical_below_pct
                    .and_then(|crit| self.critical_finish(t, crit, evidence(t.plan), c));
                let explanation = self.shortfalls(t);
                let mut f = self.pace_finding(&Bucket::Total, t, c.severity);
                if let Some(finish) = critical {
                    f.severity = Severity::Critical;
                    f.message.push_str(&finish);
                }
                if !explanation.is_empty() {
                    f.message.push_str(&format!(
                        "; behind most in {}",
                        explanation
                            .iter()
                            .take(3)
                            .map(|s| format!("{} ({})", s.bucket, self.money(s.gap())))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                f.explanation = explanation;
                out.push(f);
                // The breakdowns that explain it are in its explanation.
                return;
            }
        }
        for (bucket, plan) in self.plan_lines() {
            if bucket.is_activity() || *bucket == Bucket::Total || plan <= 0 {
                continue;
            }
            let e = eval(bucket, plan);
            if total
                .as_ref()
                .is_some_and(|t| (t.plan, t.actual, t.forecast) == (e.plan, e.actual, e.forecast))
            {
                // The bucket is the whole of the total (a rep with one region, say).
                continue;
            }
            if !below(e.projected, c.below_pct, e.plan) {
                continue;
            }
            // Material: the shortfall is a real part of the rep's month; and enough
            // bookings were due by now for the gap to mean something.
            let short = e.plan.saturating_sub(e.projected);
            let base = total_plan.unwrap_or(e.plan);
            if below(short, c.min_share_of_total_pct, base) || !evidence(e.plan) {
                continue;
            }
            // A breakdown behind while the total is not is about the mix, not the
            // month: it warns, it is never critical.
            out.push(self.pace_finding(bucket, &e, c.severity.min(Severity::Warning)));
        }
    }

    /// Whether a `total` projected below `crit` will very likely end below it, on
    /// the evidence so far; returns the sentence that says why, or `None`. One of:
    /// - the pattern: enough bookings were due by now to judge (`evidence`), and the
    ///   rep's track record is below `crit` too;
    /// - the best finish: with at least `min_history_months` learning months, enough
    ///   bookings were due by now, and even the best finish of those months (what
    ///   the rest of each brought after the same point, in % of its plan) leaves
    ///   the month below it;
    /// - the arithmetic, with fewer learning months: even the rest of the month at
    ///   plan pace leaves it below.
    fn critical_finish(
        &self,
        t: &Eval,
        crit: Percent,
        evidence: bool,
        c: &crate::alerts::config::BehindPace,
    ) -> Option<String> {
        if !below(t.projected, crit, t.plan) {
            return None;
        }
        if let Some((a, p)) = t.record.filter(|(a, p)| evidence && below(*a, crit, *p)) {
            return Some(format!(
                "; {} closed {}% of plan over the last {} months",
                self.name,
                percent_text(a, p),
                c.track_record_months,
            ));
        }
        let finishes = self.state.finishes(self.rep, &self.pace);
        let min_months = self.state.config().pace.min_history_months.max(1) as usize;
        if finishes.len() < min_months {
            // Too little history to judge a finish by: the arithmetic alone, with the
            // rest of the month at plan pace.
            let bound = t.actual.saturating_add(self.share.rest_of(t.plan));
            return below(bound, crit, t.plan).then(|| {
                format!(
                    "; even the rest of the month at plan pace ends at {}%",
                    percent_text(bound, t.plan)
                )
            });
        }
        let (true, Some(&best)) = (evidence, finishes.last()) else {
            return None;
        };
        let bound = t.actual.saturating_add(mul_div_round(t.plan, best, 10_000));
        below(bound, crit, t.plan).then(|| {
            format!(
                "; even {}'s best finish from this point in the last {} months (+{}% of plan) ends at {}%",
                self.name,
                finishes.len(),
                percent_text(best, 10_000),
                percent_text(bound, t.plan)
            )
        })
    }

    /// The breakdown buckets behind their expected-to-date, largest gap first: the
    /// new-vs-existing split, regions, product lines and accounts with a plan line,
    /// each a tenth of the total's gap or more (a region that is the whole total is
    /// left out: it only repeats it).
    fn shortfalls(&self, t: &Eval) -> Vec<Shortfall> {
        let total_gap = t.actual.saturating_sub(t.expected);
        let mut out: Vec<Shortfall> = self
            .plan_lines()
            .filter(|(b, p)| !b.is_activity() && **b != Bucket::Total && *p > 0)
            .filter_map(|(bucket, plan)| {
                let s = Shortfall {
                    bucket: bucket.clone(),
                    expected_to_date: self.share.of(plan),
                    actual: self.state.actual(self.rep, self.month, bucket),
                };
                // The same plan and actual as the total: its gap is the total's own.
                let whole = plan == t.plan && s.actual == t.actual;
                let material = total_gap < 0
                    && i128::from(s.gap()) * EXPLAINS_SHARE_OF_GAP <= i128::from(total_gap);
                (s.gap() < 0 && material && !whole).then_some(s)
            })
            .collect();
        out.sort_by(|a, b| a.gap().cmp(&b.gap()).then_with(|| a.bucket.cmp(&b.bucket)));
        out.truncate(5);
        out
    }

    /// A `behind_pace` finding on `bucket` from its figures.
    fn pace_finding(&self, bucket: &Bucket, e: &Eval, severity: Severity) -> Finding {
        let short = e.plan.saturating_sub(e.projected);
        Finding {
            rule: Rule::BehindPace,
            bucket: Some(bucket.clone()),
            month: self.month,
            severity,
            figures: Figures {
                plan: Some(e.plan),
                actual: Some(e.actual),
                expected_to_date: Some(e.expected),
                forecast: Some(e.forecast),
                gap: Some(e.actual.saturating_sub(e.expected)),
                projected: Some(e.projected),
                ..Figures::default()
            },
            money_at_stake: short,
            message: format!(
                "{bucket} is heading for {}% of plan for {}: {} of {} (actual {}, {} expected by today, forecast {})",
                percent_text(e.projected, e.plan),
                self.month,
                self.money(e.projected),
                self.money(e.plan),
                self.money(e.actual),
                self.money(e.expected),
                self.money(e.forecast),
            ),
            suggested_action: self.pace_action(bucket, short),
            explanation: Vec::new(),
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
        // The rep's track record, read once if an activity is behind.
        let mut history = None;
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
            // Evidence: with a handful of activities due, being behind is chance.
            if plan <= 0 || expected <= 0 || expected < i64::from(c.min_expected) {
                continue;
            }
            let actual = self.state.actual(self.rep, self.month, bucket);
            if !below(actual, c.below_pct, expected) {
                continue;
            }
            // The month-end this points to: actual + the rest of the plan at the
            // rep's recent rate for the activity (at plan pace without a record).
            let record = history
                .get_or_insert_with(|| self.track_record(c.track_record_months))
                .of(bucket);
            // The rest of the month's plan, exactly: plan × (1 − f), at the rep's
            // recent rate (a ÷ p; plan pace without a record). Counts are small, so
            // nothing is rounded before the comparisons.
            let (n, k) = (
                i128::from(self.pace.days_in_month.max(1)),
                i128::from(self.pace.days_worked),
            );
            let (ra, rp) = record.map_or((1, 1), |(a, p)| {
                (i128::from(a.max(0)), i128::from(p.max(1)))
            });
            // month-end × n × rp, at the rate (ra, rp)
            let end_at = |ra: i128, rp: i128| {
                i128::from(actual) * n * rp + i128::from(plan) * (n - k).max(0) * ra
            };
            let below_at = |pct: Percent, (ra, rp): (i128, i128)| {
                end_at(ra, rp) * 10_000 < i128::from(pct.hundredths()) * i128::from(plan) * n * rp
            };
            if !below_at(c.below_pct, (ra, rp)) {
                continue;
            }
            let outlook =
                i64::try_from(div_round_half_away(end_at(ra, rp), n * rp)).unwrap_or(i64::MAX);
            // Critical: the month very likely ends below the critical share of plan:
            // even the rest of it at twice plan pace (or at the rep's recent rate, if
            // better) falls short. Counts are small: one more activity must not be
            // enough to prove a critical alert wrong.
            let best = if ra >= 2 * rp { (ra, rp) } else { (2, 1) };
            let critical = c.critical_below_pct.is_some_and(|p| below_at(p, best));
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
                    projected: Some(outlook),
                    ..Figures::default()
                },
                money_at_stake: mul_div_round(revenue_plan, behind, plan),
                message: format!(
                    "{bucket} is behind: {actual} of {expected} expected by today ({}% of pace), heading for {outlook} of {plan} planned for {}",
                    percent_text(actual, expected),
                    self.month
                ),
                suggested_action: format!(
                    "Plan this week's {kind} activities with {}: {behind} behind pace, {} still to do this month.",
                    self.name,
                    (plan - actual).max(0)
                ),
                explanation: Vec::new(),
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
            explanation: Vec::new(),
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
            explanation: Vec::new(),
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
        // Next month's pipeline is still being built early in this one.
        if self.pace.days_in_month - self.pace.days_worked >= c.last_working_days {
            return;
        }
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
            explanation: Vec::new(),
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
            explanation: Vec::new(),
            suggested_action: format!(
                "Join {}'s next customer meetings and agree a follow-up plan on {weakest} with the lowest-rating accounts.",
                self.name
            ),
        });
    }

    fn month_missed(&self, cfg: &AlertConfig, out: &mut Vec<Finding>) {
        let c = &cfg.month_missed;
        // Rear-view: for the review of last month, early in this one.
        if self.pace.days_worked > c.review_working_days {
            return;
        }
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
            explanation: Vec::new(),
            suggested_action: format!(
                "Go over what slipped in {last} with {} and carry the lessons into {}.",
                self.name, self.month
            ),
        });
    }
}
