//! Plan vs actual: variance, attainment, pace and the pipeline forecast, per rep ×
//! month × bucket, exactly as the brief defines them.
//!
//! For the current month (the month of the latest `clock_tick`): f = the share of a
//! month's bookings expected by today ([`crate::pacing`]: the team's learned curve,
//! or working days of the month up to and including today ÷ working days in the
//! month); expected-to-date = P × f; pace gap = A − P × f; run-rate projection =
//! A ÷ f; forecast = A + Σ open deals expected to close this month × probability.
//! Every money product is rounded to the minor unit, halves away from zero, per term.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::bucket::{Bucket, BucketRef};
use crate::contribution::weighted;
use crate::money::{mul_div_round, Currency, Ratio};
pub use crate::pacing::Pace;
use crate::pacing::{CurveSource, Share, ShareMemo};
use crate::state::names::BucketId;
use crate::state::State;
use crate::time::{Date, Month};

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
                out.insert((rep.to_owned(), bucket), v);
            }
        }
        out
    }

    /// One rep's probability-weighted open pipeline per bucket for deals expected to
    /// close in `month`.
    pub fn weighted_pipeline_of(&self, rep: &str, month: Month) -> BTreeMap<Bucket, i64> {
        self.weighted_pipeline_by_ref(rep, month)
            .into_iter()
            .map(|(bucket, v)| (bucket.to_bucket(), v))
            .collect()
    }

    /// [`State::weighted_pipeline_of`] with the bucket names borrowed from the deals,
    /// for a reader that only looks figures up (the alert rules, on every deal event).
    pub(crate) fn weighted_pipeline_by_ref<'a>(
        &'a self,
        rep: &str,
        month: Month,
    ) -> BTreeMap<BucketRef<'a>, i64> {
        let mut out = BTreeMap::new();
        for (amount, buckets) in self.weighted_deals(rep, month) {
            for bucket in buckets {
                let slot = out.entry(bucket).or_insert(0i64);
                *slot = slot.saturating_add(amount);
            }
        }
        out
    }

    /// Each open deal of `rep` expected to close in `month`, in deal-id order: its
    /// weighted amount and the five buckets its movement would name (the rep is this
    /// one's, so it is not copied five times per deal).
    fn weighted_deals<'a>(
        &'a self,
        rep: &str,
        month: Month,
    ) -> impl Iterator<Item = (i64, [BucketRef<'a>; 5])> + 'a {
        self.open_forecasts_closing(rep, month)
            .map(move |(movement, probability)| {
                let hundredths = probability.map_or(0, |p| p.hundredths());
                let amount = weighted(movement.amount, hundredths);
                (amount, movement.bucket_refs())
            })
    }
}

/// What a report covers. `None` filters nothing.
#[derive(Clone, Debug, Default)]
pub struct ReportQuery {
    pub rep: Option<String>,
    pub team: Option<String>,
    pub bucket: Option<Bucket>,
}

/// One rep × month × bucket line of plan vs actual. Its names are borrowed from the
/// [`State`] it was computed from, so a report copies no strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportRow<'s> {
    pub rep: &'s str,
    pub team: &'s str,
    pub month: Month,
    pub bucket: &'s Bucket,
    /// Minor units for money buckets, a count for activity buckets.
    pub plan: i64,
    pub actual: i64,
    /// Only in the current month.
    pub expected_to_date: Option<i64>,
    /// Only in the current month, and for money buckets.
    pub forecast: Option<i64>,
    /// Only in the current month.
    pub projection: Option<i64>,
    /// Where expected-to-date and the projection came from: only in the current month.
    pub curve: Option<CurveSource>,
    pub currency: Currency,
}

impl ReportRow<'_> {
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

/// One bucket of a rep's month while its row is made.
struct Cell<'s> {
    bucket: &'s Bucket,
    plan: i64,
    actual: i64,
    /// The weighted pipeline of the bucket.
    pipeline: i64,
}

/// Merges a rep's plan lines and actuals, both in bucket order, into `cells` (in
/// bucket order): a cell for every bucket that has either.
fn merge_cells<'s>(
    plan: impl Iterator<Item = (&'s Bucket, i64)>,
    actual: impl Iterator<Item = (&'s Bucket, i64)>,
    cells: &mut Vec<Cell<'s>>,
) {
    let cell = |bucket, plan, actual| Cell {
        bucket,
        plan,
        actual,
        pipeline: 0,
    };
    let mut plan = plan.peekable();
    let mut actual = actual.peekable();
    loop {
        let next = match (plan.peek(), actual.peek()) {
            (None, None) => break,
            (Some(&(b, p)), None) => {
                plan.next();
                cell(b, p, 0)
            }
            (None, Some(&(b, a))) => {
                actual.next();
                cell(b, 0, a)
            }
            (Some(&(pb, p)), Some(&(ab, a))) => match pb.cmp(ab) {
                Ordering::Less => {
                    plan.next();
                    cell(pb, p, 0)
                }
                Ordering::Greater => {
                    actual.next();
                    cell(ab, 0, a)
                }
                Ordering::Equal => {
                    plan.next();
                    actual.next();
                    cell(pb, p, a)
                }
            },
        };
        cells.push(next);
    }
}

/// One working day of a team's month in [`team_course`] (minor units).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CourseDay {
    pub date: Date,
    /// The plan expected by the end of the day: each rep's plan × the team's pace
    /// share by then, summed (so on today it is the sum of the rows'
    /// `expected_to_date`).
    pub plan_to_date: i64,
    /// The reps' `total` booked through the day, for days up to today.
    pub actual: Option<i64>,
    /// From today to the month's last working day, a straight line from today's
    /// actual to the month-end forecast.
    pub forecast: Option<i64>,
}

/// The course of a team's month over its working days: how its reps' cumulative
/// `total` compares with the plan expected to date, and where the forecast says the
/// month ends. `reps` are the team's rows: (rep, `total` plan); `forecast` is the
/// sum of their forecasts. Days after "now" have no actual; a past month has no
/// forecast line, a future one only the plan.
pub fn team_course(
    state: &State,
    team: &str,
    month: Month,
    reps: &[(&str, i64)],
    forecast: Option<i64>,
) -> Vec<CourseDay> {
    let today = state.now().map(|t| t.local_date(state.config().timezone));
    // Each rep's bookings by day of the month, summed over the team's reps.
    let mut by_day = [0i64; 32];
    for (rep, _) in reps {
        if let Some(rm) = state.rep_bookings(rep, month) {
            for (day, amount) in rm.days() {
                let d = usize::from(day).min(31);
                by_day[d] = by_day[d].saturating_add(amount);
            }
        }
    }
    let working: Vec<Date> = month.days().filter(|d| d.is_working_day()).collect();
    let mut out = Vec::with_capacity(working.len());
    let mut cumulative = 0i64;
    let mut next_day = 1usize;
    for date in &working {
        let (_, dom) = date.month_and_day();
        while next_day <= dom as usize {
            cumulative = cumulative.saturating_add(by_day[next_day]);
            next_day += 1;
        }
        let share = state.pace_share(team, &Pace::new(*date)).0;
        let plan_to_date = reps
            .iter()
            .fold(0i64, |a, (_, plan)| a.saturating_add(share.of(*plan)));
        let come = today.is_some_and(|t| *date <= t);
        out.push(CourseDay {
            date: *date,
            plan_to_date,
            actual: come.then_some(cumulative),
            forecast: None,
        });
    }
    // The forecast line: from the last day with an actual (today, in the month) to
    // the last working day.
    if let (Some(f), Some(t)) = (forecast, today) {
        if t.month() == month {
            if let Some(k0) = out.iter().rposition(|d| d.actual.is_some()) {
                let start = out[k0].actual.unwrap_or(0);
                let steps = (out.len() - 1 - k0) as i64;
                for (i, d) in out.iter_mut().enumerate().skip(k0) {
                    let k = (i - k0) as i64;
                    d.forecast = Some(if steps == 0 {
                        f
                    } else {
                        start.saturating_add(mul_div_round(f.saturating_sub(start), k, steps))
                    });
                }
            }
        }
    }
    out
}

/// Plan vs actual for one month: a row for every bucket that has a plan line or a
/// non-zero actual, sorted by rep, then bucket name.
pub fn report<'s>(state: &'s State, month: Month, query: &ReportQuery) -> Vec<ReportRow<'s>> {
    report_of(state, month, query, |b| {
        query.bucket.as_ref().is_none_or(|q| q == b)
    })
}

/// [`report`] of the buckets `keep` says (the comp report reads a few buckets of
/// every rep: the others are left out before their rows are made).
pub fn report_of<'s>(
    state: &'s State,
    month: Month,
    query: &ReportQuery,
    keep: impl Fn(&Bucket) -> bool,
) -> Vec<ReportRow<'s>> {
    // Every rep with a plan line or an actual is a rep the log knows (plans and
    // contributions register theirs), so the report walks reps, not the whole book.
    let reps: Vec<(&String, &crate::state::Rep)> = match &query.rep {
        Some(r) => state.reps().get_key_value(r).into_iter().collect(),
        None => state.reps().iter().collect(),
    };
    let mut maker = RowMaker::new(state);
    let mut rows = Vec::new();
    for (rep, record) in reps {
        if query
            .team
            .as_ref()
            .is_some_and(|t| t != record.team_at(month))
        {
            continue;
        }
        maker.rep_rows(rep, record, month, &keep, &mut rows);
    }
    rows
}

/// Makes report rows one rep and month at a time, doing each team's work once (its
/// share of the month expected by today): [`report_of`] walks every rep with it, the
/// comp report one rep's few rows after another's.
pub struct RowMaker<'s> {
    state: &'s State,
    /// Where "now" is ([`State::pace`]), worked out once.
    pace: Option<Pace>,
    cells: Vec<Cell<'s>>,
    shares: ShareMemo,
}

impl<'s> RowMaker<'s> {
    pub fn new(state: &'s State) -> RowMaker<'s> {
        RowMaker {
            state,
            pace: state.pace(),
            cells: Vec::new(),
            shares: ShareMemo::default(),
        }
    }

    /// Appends to `rows` the rep's rows of `month` in bucket order, of the buckets
    /// `keep` says.
    pub fn rep_rows(
        &mut self,
        rep: &'s str,
        record: &'s crate::state::Rep,
        month: Month,
        keep: impl Fn(&Bucket) -> bool,
        rows: &mut Vec<ReportRow<'s>>,
    ) {
        let state = self.state;
        self.cells.clear();
        merge_cells(
            state.plans().rep_lines(rep, month),
            state
                .month_actuals(rep, month)
                .into_iter()
                .flatten()
                .map(|(b, a)| (b, *a)),
            &mut self.cells,
        );
        self.cells.retain(|c| keep(c.bucket));
        self.rows_of_cells(rep, record, month, rows);
    }

    /// [`RowMaker::rep_rows`] of a few buckets, named by their ids (see
    /// [`State::bucket_id`]) in bucket order: each looked up, not merged with the
    /// rep's other buckets (what the comp report reads of every rep).
    pub(crate) fn rep_rows_of(
        &mut self,
        rep: &'s str,
        record: &'s crate::state::Rep,
        month: Month,
        buckets: &[(BucketId, &'s Bucket)],
        rows: &mut Vec<ReportRow<'s>>,
    ) {
        let state = self.state;
        let plan = state
            .plans()
            .rep_month(rep, month)
            .map_or(&[][..], |l| l.cells());
        let actual = state
            .month_actuals(rep, month)
            .map_or(&[][..], |a| a.cells());
        let find = |cells: &[(BucketId, i64)], id: BucketId| {
            cells.iter().find(|(b, _)| *b == id).map(|(_, v)| *v)
        };
        self.cells.clear();
        for &(id, bucket) in buckets {
            let (p, a) = (find(plan, id), find(actual, id));
            if p.is_some() || a.is_some() {
                self.cells.push(Cell {
                    bucket,
                    plan: p.unwrap_or(0),
                    actual: a.unwrap_or(0),
                    pipeline: 0,
                });
            }
        }
        self.rows_of_cells(rep, record, month, rows);
    }

    /// The rows of the cells made (in bucket order): their pipeline, share of the
    /// month expected by today, projection and forecast.
    fn rows_of_cells(
        &mut self,
        rep: &'s str,
        record: &'s crate::state::Rep,
        month: Month,
        rows: &mut Vec<ReportRow<'s>>,
    ) {
        let state = self.state;
        let pace = self.pace.filter(|p| p.month == month);
        let currency = state.config().currency;
        let team = record.team_at(month);
        let cells = &mut self.cells;
        if cells.is_empty() {
            return;
        }
        if pace.is_some() {
            // Each deal's weight, added in deal-id order to the cells it names (a
            // bucket with no cell has no row to forecast).
            for (amount, buckets) in state.weighted_deals(rep, month) {
                for bucket in buckets {
                    if let Ok(i) = cells.binary_search_by(|c| c.bucket.borrowed().cmp(&bucket)) {
                        let slot = &mut cells[i].pipeline;
                        *slot = slot.saturating_add(amount);
                    }
                }
            }
        }
        let money_share = pace.map(|p| self.shares.get(state, team, &p));
        rows.extend(cells.iter().map(|c| {
            let share = match (pace, money_share) {
                (Some(p), _) if c.bucket.is_activity() => {
                    Some((Share::linear(&p), CurveSource::Linear))
                }
                (_, s) => s,
            };
            ReportRow {
                rep,
                team,
                month,
                bucket: c.bucket,
                plan: c.plan,
                actual: c.actual,
                expected_to_date: share.map(|(s, _)| s.of(c.plan)),
                forecast: match pace {
                    Some(_) if !c.bucket.is_activity() => Some(c.actual.saturating_add(c.pipeline)),
                    _ => None,
                },
                projection: share.and_then(|(s, _)| s.project(c.actual)),
                curve: share.map(|(_, src)| src),
                currency,
            }
        }));
    }
}
