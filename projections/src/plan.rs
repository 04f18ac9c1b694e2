//! Finance's view of the plan book: the lines of a version, what changed between two
//! versions, and the gap between the top-down plan, the reps' bottom-up commits and
//! the pipeline forecast.
//!
//! A version may have been published as several `plan_published` events (one per
//! effective month, say): its lines are the union, a later event's line replacing an
//! earlier one for the same rep, month and bucket.

use std::collections::{BTreeMap, BTreeSet};

use crate::bucket::Bucket;
use crate::event::{ForecastCategory, PlanLine};
use crate::state::{PlanVersion, State};
use crate::time::Month;

/// The merged lines of plan `plan`, version `version`; empty when it was never published.
pub fn version_lines(
    state: &State,
    plan: &str,
    version: u32,
) -> BTreeMap<(String, Month, Bucket), i64> {
    let mut out = BTreeMap::new();
    let plans = state.plans();
    for v in versions_of(state, plan, version) {
        for (month, rep, bucket, target) in plans.version_lines(v) {
            out.insert((rep.to_owned(), month, bucket.clone()), target);
        }
    }
    out
}

fn versions_of<'a>(
    state: &'a State,
    plan: &'a str,
    version: u32,
) -> impl Iterator<Item = &'a PlanVersion> + 'a {
    state
        .plans()
        .versions()
        .iter()
        .filter(move |v| v.plan == plan && v.version == version)
}

/// The merged lines as plan lines, sorted by rep, month and bucket.
pub fn as_plan_lines(lines: &BTreeMap<(String, Month, Bucket), i64>) -> Vec<PlanLine> {
    lines
        .iter()
        .map(|((rep, month, bucket), target)| PlanLine {
            rep: rep.clone(),
            month: *month,
            bucket: bucket.clone(),
            target: *target,
        })
        .collect()
}

/// The plan id and version published last.
pub fn latest(state: &State) -> Option<(String, u32)> {
    state
        .plans()
        .versions()
        .last()
        .map(|v| (v.plan.clone(), v.version))
}

/// One rep × month × bucket that differs between two versions (a line missing from a
/// version counts as 0 there).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffRow {
    pub rep: String,
    pub month: Month,
    pub bucket: Bucket,
    pub before: i64,
    pub after: i64,
}

impl DiffRow {
    pub fn change(&self) -> i64 {
        self.after.saturating_sub(self.before)
    }
}

/// The lines that differ between `before` and `after`, sorted by rep, month, bucket.
pub fn diff(
    before: &BTreeMap<(String, Month, Bucket), i64>,
    after: &BTreeMap<(String, Month, Bucket), i64>,
) -> Vec<DiffRow> {
    let keys: BTreeSet<&(String, Month, Bucket)> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (b, a) = (
                before.get(k).copied().unwrap_or(0),
                after.get(k).copied().unwrap_or(0),
            );
            (a != b).then(|| DiffRow {
                rep: k.0.clone(),
                month: k.1,
                bucket: k.2.clone(),
                before: b,
                after: a,
            })
        })
        .collect()
}

/// Top-down vs bottom-up vs pipeline for one rep and month (minor units).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GapRow {
    pub rep: String,
    pub team: String,
    pub month: Month,
    /// The governing plan's `total` line.
    pub plan: i64,
    /// The rep's latest `commit` (`forecast_submitted` with category commit, or with
    /// no category); `None` when the rep committed nothing.
    pub commit: Option<i64>,
    pub actual: i64,
    /// Actual + each open deal expected to close in the month × its probability.
    pub forecast: i64,
}

impl GapRow {
    /// Commit − plan: negative when the reps promise less than finance asks.
    pub fn commit_gap(&self) -> Option<i64> {
        self.commit.map(|c| c.saturating_sub(self.plan))
    }

    /// Forecast − plan.
    pub fn forecast_gap(&self) -> i64 {
        self.forecast.saturating_sub(self.plan)
    }
}

/// The gap of every rep with a plan, a commit or a forecast in `month`, by rep.
pub fn gap(state: &State, month: Month) -> Vec<GapRow> {
    let mut reps: BTreeSet<String> = state
        .plans()
        .lines(month)
        .filter(|(_, b, _)| **b == Bucket::Total)
        .map(|(r, _, _)| r.to_owned())
        .collect();
    for rep in state.reps().keys() {
        if commit_of(state, rep, month).is_some() {
            reps.insert(rep.clone());
        }
    }
    reps.extend(state.reps_with_open_deals().map(str::to_owned));
    reps.into_iter()
        .filter_map(|rep| {
            let plan = state.plans().target(&rep, month, &Bucket::Total);
            let commit = commit_of(state, &rep, month);
            let actual = state.actual(&rep, month, &Bucket::Total);
            let weighted = state
                .weighted_pipeline_of(&rep, month)
                .get(&Bucket::Total)
                .copied()
                .unwrap_or(0);
            let forecast = actual.saturating_add(weighted);
            (plan != 0 || commit.is_some() || forecast != 0).then(|| GapRow {
                team: state.rep_at(&rep, month).team,
                rep,
                month,
                plan,
                commit,
                actual,
                forecast,
            })
        })
        .collect()
}

fn commit_of(state: &State, rep: &str, month: Month) -> Option<i64> {
    state
        .forecast(rep, month, Some(ForecastCategory::Commit))
        .or_else(|| state.forecast(rep, month, None))
}

/// The rep-months of `lines` that another part of `plan` `version` with the same
/// effective month already plans with other lines: (rep, month, seq of that part).
/// A part that repeats them exactly is no clash; nor is a part from a later
/// effective month, which revises the months from there on (the latest part in force
/// for a month has the say).
pub fn part_clashes(
    state: &State,
    plan: &str,
    version: u32,
    effective_from: Month,
    event_id: &str,
    lines: &[PlanLine],
) -> Vec<(String, Month, u64)> {
    let plans = state.plans();
    let parts: Vec<&crate::state::PlanVersion> = plans
        .versions()
        .iter()
        .filter(|v| {
            v.plan == plan
                && v.version == version
                && v.effective_from == effective_from
                && v.event_id != event_id
        })
        .collect();
    if parts.is_empty() {
        return Vec::new();
    }
    let mut mine: BTreeMap<(&str, Month), BTreeMap<&Bucket, i64>> = BTreeMap::new();
    for l in lines {
        mine.entry((l.rep.as_str(), l.month))
            .or_default()
            .insert(&l.bucket, l.target);
    }
    // Each part's lines of the rep-months this file plans, in one pass per part.
    let mut clashes: BTreeMap<(&str, Month), u64> = BTreeMap::new();
    for part in &parts {
        let mut theirs: BTreeMap<(&str, Month), BTreeMap<&Bucket, i64>> = BTreeMap::new();
        for (m, r, b, t) in plans.version_lines(part) {
            if mine.contains_key(&(r, m)) {
                theirs.entry((r, m)).or_default().insert(b, t);
            }
        }
        for (key, lines) in theirs {
            if mine.get(&key) != Some(&lines) {
                clashes.entry(key).or_insert(part.seq);
            }
        }
    }
    clashes
        .into_iter()
        .map(|((r, m), seq)| (r.to_owned(), m, seq))
        .collect()
}
