//! Plan vs actual: variance, attainment, pace and the pipeline forecast, per rep ×
//! month × bucket, exactly as the brief defines them.
//!
//! For the current month (the month of the latest `clock_tick`): f = working days of
//! the month up to and including today ÷ working days in the month; expected-to-date
//! = P × f; pace gap = A − P × f; run-rate projection = A ÷ f; forecast = A + Σ open
//! deals expected to close this month × probability. Every money product is rounded
//! to the minor unit, halves away from zero, per term.

use std::collections::BTreeMap;

use crate::bucket::{weighted, Bucket, Movement};
use crate::money::{mul_div_round, Currency, Ratio};
use crate::state::State;
use crate::time::{Date, Month};

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

impl State {
    /// The pace of "now"; `None` before the first `clock_tick`.
    pub fn pace(&self) -> Option<Pace> {
        self.now()
            .map(|t| Pace::new(t.local_date(self.config().timezone)))
    }

    /// Probability-weighted open pipeline per rep and bucket for deals expected to
    /// close in `month`, each deal's weight rounded on its own.
    pub fn weighted_pipeline(&self, month: Month) -> BTreeMap<(String, Bucket), i64> {
        let mut out = BTreeMap::new();
        for rep in self.reps_with_open_deals() {
            for (bucket, v) in self.weighted_pipeline_of(rep, month) {
                out.insert((rep.clone(), bucket), v);
            }
        }
        out
    }

    /// One rep's probability-weighted open pipeline per bucket for deals expected to
    /// close in `month`.
    pub fn weighted_pipeline_of(&self, rep: &str, month: Month) -> BTreeMap<Bucket, i64> {
        let mut out: BTreeMap<Bucket, i64> = BTreeMap::new();
        for d in self.open_deals(rep) {
            if d.expected_close.month() != month {
                continue;
            }
            let hundredths = d.probability.map_or(0, |p| p.hundredths());
            let movement = Movement {
                rep: &d.rep,
                month,
                account: &d.account,
                customer_kind: d.customer_kind,
                product: d.product.as_deref(),
                region: d.region.as_deref(),
                amount: weighted(d.amount, hundredths),
            };
            // The movement's buckets, as its contributions would name them (the rep
            // is this one's, so it is not copied five times per deal).
            for bucket in movement.buckets() {
                let slot = out.entry(bucket).or_insert(0);
                *slot = slot.saturating_add(movement.amount);
            }
        }
        out
    }
}

/// What a report covers. `None` filters nothing.
#[derive(Clone, Debug, Default)]
pub struct ReportQuery {
    pub rep: Option<String>,
    pub team: Option<String>,
    pub bucket: Option<Bucket>,
}

/// One rep × month × bucket line of plan vs actual.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportRow {
    pub rep: String,
    pub team: String,
    pub month: Month,
    pub bucket: Bucket,
    /// Minor units for money buckets, a count for activity buckets.
    pub plan: i64,
    pub actual: i64,
    /// Only in the current month.
    pub expected_to_date: Option<i64>,
    /// Only in the current month, and for money buckets.
    pub forecast: Option<i64>,
    /// Only in the current month.
    pub projection: Option<i64>,
    pub currency: Currency,
}

impl ReportRow {
    pub fn variance(&self) -> i64 {
        self.actual.saturating_sub(self.plan)
    }

    /// Actual ÷ plan; `None` where the plan is zero.
    pub fn attainment(&self) -> Option<Ratio> {
        Ratio::new(self.actual, self.plan)
    }

    /// Actual − expected-to-date, in the current month.
    pub fn pace_gap(&self) -> Option<i64> {
        self.expected_to_date.map(|e| self.actual.saturating_sub(e))
    }

    pub fn is_activity(&self) -> bool {
        self.bucket.is_activity()
    }
}

/// Plan vs actual for one month: a row for every bucket that has a plan line or a
/// non-zero actual, sorted by rep, then bucket name.
pub fn report(state: &State, month: Month, query: &ReportQuery) -> Vec<ReportRow> {
    let pace = state.pace().filter(|p| p.month == month);
    let currency = state.config().currency;
    // Every rep with a plan line or an actual is a rep the log knows (plans and
    // contributions register theirs), so the report walks reps, not the whole book.
    let reps: Vec<(&String, &crate::state::Rep)> = match &query.rep {
        Some(r) => state.reps().get_key_value(r).into_iter().collect(),
        None => state.reps().iter().collect(),
    };
    let mut rows = Vec::new();
    for (rep, record) in reps {
        let team = record.team_at(month);
        if query.team.as_ref().is_some_and(|t| t != team) {
            continue;
        }
        let mut cells: BTreeMap<Bucket, (i64, i64)> = BTreeMap::new();
        for (bucket, target) in state.plans().rep_lines(rep, month) {
            cells.entry(bucket.clone()).or_insert((0, 0)).0 = target;
        }
        if let Some(buckets) = state.month_actuals(rep, month) {
            for (bucket, actual) in buckets {
                cells.entry(bucket.clone()).or_insert((0, 0)).1 = *actual;
            }
        }
        if let Some(b) = &query.bucket {
            cells.retain(|k, _| k == b);
        }
        if cells.is_empty() {
            continue;
        }
        let team = team.to_owned();
        let pipeline = if pace.is_some() {
            state.weighted_pipeline_of(rep, month)
        } else {
            BTreeMap::new()
        };
        for (bucket, (plan, actual)) in cells {
            let forecast = match pace {
                Some(_) if !bucket.is_activity() => {
                    Some(actual.saturating_add(pipeline.get(&bucket).copied().unwrap_or(0)))
                }
                _ => None,
            };
            rows.push(ReportRow {
                expected_to_date: pace.map(|p| p.expected_to_date(plan)),
                projection: pace.and_then(|p| p.run_rate_projection(actual)),
                forecast,
                rep: rep.clone(),
                team: team.clone(),
                month,
                bucket,
                plan,
                actual,
                currency,
            });
        }
    }
    rows
}
