//! The plan book: every published version in log order, each with its lines by
//! month and rep, and the rule that picks the version governing a month.
//!
//! A version's lines are held as (bucket id, target) per rep and month, in bucket
//! order, the buckets interned in the state's [`Buckets`]; [`Plans`] is how readers
//! see them, with buckets by name.

use std::collections::BTreeMap;

use super::actuals::ByBucket;
use super::names::{BucketId, Buckets};
use crate::bucket::Bucket;
use crate::event::{PlanBasis, PlanPublished, Recorded};
use crate::money::Currency;
use crate::time::{Month, Timestamp};

/// One rep's plan lines of one month: each bucket and its target, in bucket order.
pub type RepLines<'s> = ByBucket<'s>;

/// One rep's lines of a month in a version.
type RepCells = (Box<str>, Box<[(BucketId, i64)]>);

/// One published plan version, its lines indexed by month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanVersion {
    pub seq: u64,
    pub event_id: String,
    pub source: String,
    pub recorded_at: Timestamp,
    pub plan: String,
    pub version: u32,
    pub basis: PlanBasis,
    pub horizon_start: Month,
    pub effective_from: Month,
    pub currency: Currency,
    /// Month → each rep's lines, sorted by rep (exact-size slices: a plan of 10 000
    /// reps holds hundreds of thousands of them).
    lines: BTreeMap<Month, Box<[RepCells]>>,
}

impl PlanVersion {
    /// The version a `plan_published` publishes, its buckets interned in `buckets`.
    /// A line repeated for the same rep, month and bucket: the last one counts.
    pub(super) fn of(rec: &Recorded, p: &PlanPublished, buckets: &mut Buckets) -> Self {
        let mut by_month: BTreeMap<Month, BTreeMap<&str, BTreeMap<&Bucket, i64>>> = BTreeMap::new();
        for l in &p.lines {
            by_month
                .entry(l.month)
                .or_default()
                .entry(l.rep.as_str())
                .or_default()
                .insert(&l.bucket, l.target);
        }
        let lines = by_month
            .into_iter()
            .map(|(month, reps)| {
                let reps: Box<[RepCells]> = reps
                    .into_iter()
                    .map(|(rep, cells)| {
                        let cells = cells
                            .into_iter()
                            .map(|(b, t)| (buckets.intern(b.borrowed()), t))
                            .collect();
                        (rep.into(), cells)
                    })
                    .collect();
                (month, reps)
            })
            .collect();
        PlanVersion {
            seq: rec.seq,
            event_id: rec.event.event_id.clone(),
            source: rec.event.source.clone(),
            recorded_at: rec.recorded_at,
            plan: p.plan.clone(),
            version: p.version,
            basis: p.basis,
            horizon_start: p.horizon_start,
            effective_from: p.effective_from,
            currency: p.currency,
            lines,
        }
    }

    /// The months this version has lines for, in order.
    pub fn months(&self) -> impl Iterator<Item = Month> + '_ {
        self.lines.keys().copied()
    }

    /// The number of lines (rep × month × bucket) of this version.
    pub fn line_count(&self) -> usize {
        self.lines
            .values()
            .flat_map(|reps| reps.iter())
            .map(|(_, cells)| cells.len())
            .sum()
    }

    fn governs(&self, month: Month) -> bool {
        self.effective_from <= month && {
            let k = self.horizon_start.months_until(month);
            (0..PlanPublished::HORIZON_MONTHS).contains(&k)
        }
    }

    fn rep_cells(&self, rep: &str, month: Month) -> Option<&[(BucketId, i64)]> {
        let reps = self.lines.get(&month)?;
        let i = reps.binary_search_by(|(r, _)| (**r).cmp(rep)).ok()?;
        Some(&reps[i].1)
    }
}

/// Every published plan version, in log order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct PlanBook {
    versions: Vec<PlanVersion>,
}

impl PlanBook {
    pub(super) fn publish(&mut self, version: PlanVersion) {
        self.versions.push(version);
    }

    fn governing(&self, month: Month) -> Option<&PlanVersion> {
        self.versions.iter().rev().find(|v| v.governs(month))
    }
}

/// The plan book as readers see it: buckets by name.
#[derive(Clone, Copy)]
pub struct Plans<'s> {
    pub(super) book: &'s PlanBook,
    pub(super) buckets: &'s Buckets,
}

impl<'s> Plans<'s> {
    pub fn versions(&self) -> &'s [PlanVersion] {
        &self.book.versions
    }

    /// The version that sets the plan for `month`: the last one in the log whose
    /// `effective_from` is not after the month and whose 24-month horizon covers it.
    pub fn governing(&self, month: Month) -> Option<&'s PlanVersion> {
        self.book.governing(month)
    }

    /// The plan lines of `month` (rep, bucket, target), by rep, then bucket; empty
    /// when no plan governs it.
    pub fn lines(&self, month: Month) -> impl Iterator<Item = (&'s str, &'s Bucket, i64)> + 's {
        let buckets = self.buckets;
        self.governing(month)
            .and_then(|v| v.lines.get(&month))
            .into_iter()
            .flat_map(|reps| reps.iter())
            .flat_map(move |(rep, cells)| {
                cells
                    .iter()
                    .map(move |(b, t)| (&**rep, buckets.bucket(*b), *t))
            })
    }

    /// Every line of `version`: (month, rep, bucket, target), by month, rep, bucket.
    pub fn version_lines(
        &self,
        version: &'s PlanVersion,
    ) -> impl Iterator<Item = (Month, &'s str, &'s Bucket, i64)> + 's {
        let buckets = self.buckets;
        version.lines.iter().flat_map(move |(month, reps)| {
            reps.iter().flat_map(move |(rep, cells)| {
                cells
                    .iter()
                    .map(move |(b, t)| (*month, &**rep, buckets.bucket(*b), *t))
            })
        })
    }

    /// One rep's plan lines for `month`, if the governing plan has any.
    pub fn rep_month(&self, rep: &str, month: Month) -> Option<RepLines<'s>> {
        let cells = self.governing(month)?.rep_cells(rep, month)?;
        Some(ByBucket {
            cells,
            buckets: self.buckets,
        })
    }

    /// One rep's plan lines for `month`, in bucket order.
    pub fn rep_lines(
        &self,
        rep: &str,
        month: Month,
    ) -> impl Iterator<Item = (&'s Bucket, i64)> + 's {
        self.rep_month(rep, month)
            .into_iter()
            .flatten()
            .map(|(b, t)| (b, *t))
    }

    pub fn target(&self, rep: &str, month: Month, bucket: &Bucket) -> i64 {
        self.rep_month(rep, month)
            .and_then(|lines| lines.get(bucket))
            .copied()
            .unwrap_or(0)
    }
}
