//! The plan book: every published version in log order, each with its lines by
//! month and rep, and the rule that picks the version governing a month.
//!
//! A version may come in **parts**: several `plan_published` events of the same plan
//! and version (by team, by month, in any order), so a plan over the 100 000 lines
//! of one event can be published whole. The event governing a month is the last one
//! in the log whose `effective_from` is not after the month and whose horizon covers
//! it (the brief's rule); the lines in force for the month are those of every part of
//! its plan and version that governs the month, a rep's month taken from the latest
//! part that has it (parts overlapping on a rep's month are refused by `pacer plan
//! publish`; from elsewhere, the later part's lines for that rep and month count).
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
        // The lines by month and rep, each rep's in log order (a stable sort: a plan's
        // lines usually come in that order already, and then it is one pass).
        let rep_month = |i: usize| (p.lines[i].month, p.lines[i].rep.as_str());
        let mut order: Vec<usize> = (0..p.lines.len()).collect();
        order.sort_by(|&a, &b| rep_month(a).cmp(&rep_month(b)));
        let mut lines: BTreeMap<Month, Vec<RepCells>> = BTreeMap::new();
        for run in order.chunk_by(|&a, &b| rep_month(a) == rep_month(b)) {
            let (month, rep) = rep_month(run[0]);
            // Bucket order; of a bucket repeated, the last line counts.
            let mut cells: Vec<(&Bucket, i64)> = run
                .iter()
                .map(|&i| (&p.lines[i].bucket, p.lines[i].target))
                .collect();
            cells.sort_by(|a, b| a.0.cmp(b.0));
            let mut kept: Vec<(BucketId, i64)> = Vec::with_capacity(cells.len());
            for (i, (bucket, target)) in cells.iter().enumerate() {
                if cells.get(i + 1).is_some_and(|next| next.0 == *bucket) {
                    continue;
                }
                kept.push((buckets.intern(bucket.borrowed()), *target));
            }
            lines
                .entry(month)
                .or_default()
                .push((rep.into(), kept.into_boxed_slice()));
        }
        let lines = lines
            .into_iter()
            .map(|(month, reps)| (month, reps.into_boxed_slice()))
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
        let i = self.rep_place(rep, month)?;
        Some(&self.lines.get(&month)?[i].1)
    }

    /// The rep's place among this version's reps of `month`.
    fn rep_place(&self, rep: &str, month: Month) -> Option<usize> {
        let reps = self.lines.get(&month)?;
        reps.binary_search_by(|(r, _)| (**r).cmp(rep)).ok()
    }

    /// Whether this version has lines for `rep` in `month`.
    pub fn has_rep_month(&self, rep: &str, month: Month) -> bool {
        self.rep_cells(rep, month).is_some()
    }

    /// The reps this version plans in `month`, in order.
    pub fn reps_in(&self, month: Month) -> impl Iterator<Item = &str> + '_ {
        self.lines
            .get(&month)
            .into_iter()
            .flat_map(|reps| reps.iter().map(|(r, _)| &**r))
    }
}

/// Where a submitted plan version stands: submitted, then approved or rejected. A
/// version never submitted (published straight) has none and is in force as
/// published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Review {
    pub submitted_by: String,
    /// How it was made (target or growth, allocation, seasonality, ramp, inputs).
    pub method: Option<String>,
    pub submitted_seq: u64,
    pub approved_by: Option<String>,
    /// Who rejected it, and why.
    pub rejected: Option<(String, String)>,
}

impl Review {
    /// Approved, and so in force; a pending or rejected version never is.
    pub fn in_force(&self) -> bool {
        self.approved_by.is_some() && self.rejected.is_none()
    }

    /// `submitted`, `approved` or `rejected`.
    pub fn status(&self) -> &'static str {
        match (&self.approved_by, &self.rejected) {
            (_, Some(_)) => "rejected",
            (Some(_), None) => "approved",
            (None, None) => "submitted",
        }
    }
}

/// Every published plan version, in log order, the parts of each plan version, and
/// the review of each version submitted for approval.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct PlanBook {
    versions: Vec<PlanVersion>,
    /// Plan → version → the indices in `versions` of its parts, in log order
    /// (looked up by `&str` on every plan read: no key is built).
    parts: BTreeMap<String, BTreeMap<u32, Vec<usize>>>,
    /// Plan → version → its review, for versions submitted for approval.
    reviews: BTreeMap<String, BTreeMap<u32, Review>>,
}

impl PlanBook {
    pub(super) fn publish(&mut self, version: PlanVersion) {
        self.parts
            .entry(version.plan.clone())
            .or_default()
            .entry(version.version)
            .or_default()
            .push(self.versions.len());
        self.versions.push(version);
    }

    fn governing(&self, month: Month) -> Option<&PlanVersion> {
        self.versions
            .iter()
            .rev()
            .find(|v| v.governs(month) && self.admits(v))
    }

    /// The indices of the parts of `v`'s plan and version.
    fn parts_of(&self, v: &PlanVersion) -> Option<&Vec<usize>> {
        self.parts.get(v.plan.as_str())?.get(&v.version)
    }

    /// Whether a version may be in force: never submitted, or approved.
    fn admits(&self, v: &PlanVersion) -> bool {
        self.review(&v.plan, v.version).is_none_or(Review::in_force)
    }

    fn review(&self, plan: &str, version: u32) -> Option<&Review> {
        self.reviews.get(plan)?.get(&version)
    }

    /// A version submitted for approval (again: a resubmission starts over).
    pub(super) fn submit(&mut self, plan: &str, version: u32, review: Review) {
        self.reviews
            .entry(plan.to_owned())
            .or_default()
            .insert(version, review);
    }

    /// A submitted version approved (nothing for one not submitted or rejected).
    pub(super) fn approve(&mut self, plan: &str, version: u32, by: &str) {
        if let Some(r) = self.reviews.get_mut(plan).and_then(|m| m.get_mut(&version)) {
            if r.rejected.is_none() {
                r.approved_by = Some(by.to_owned());
            }
        }
    }

    /// A submitted version rejected (nothing for one not submitted or approved).
    pub(super) fn reject(&mut self, plan: &str, version: u32, by: &str, reason: &str) {
        if let Some(r) = self.reviews.get_mut(plan).and_then(|m| m.get_mut(&version)) {
            if r.approved_by.is_none() {
                r.rejected = Some((by.to_owned(), reason.to_owned()));
            }
        }
    }

    /// The parts in force for `month`, the latest first: those of the governing
    /// event's plan and version that govern the month (the governing event alone
    /// when its version has one part). No allocation: a plan read is on hot paths.
    fn parts_governing(&self, month: Month) -> impl Iterator<Item = &PlanVersion> + '_ {
        self.parts_governing_at(month).map(|i| &self.versions[i])
    }

    /// [`PlanBook::parts_governing`] by their indices in `versions`.
    fn parts_governing_at(&self, month: Month) -> impl Iterator<Item = usize> + '_ {
        let g = self.governing(month);
        let ixs: &[usize] = g.and_then(|g| self.parts_of(g)).map_or(&[], Vec::as_slice);
        ixs.iter()
            .rev()
            .copied()
            .filter(move |i| self.versions[*i].governs(month))
    }

    /// [`PlanBook::parts_governing`], collected.
    fn parts_in_force(&self, month: Month) -> Vec<&PlanVersion> {
        self.parts_governing(month).collect()
    }

    /// A rep's cells in force for `month`: from the latest part in force that has
    /// them.
    fn rep_cells(&self, rep: &str, month: Month) -> Option<&[(BucketId, i64)]> {
        let at = self.locate(rep, month)?;
        self.cells_at(at, month)
    }

    /// Where [`PlanBook::rep_cells`] finds a rep's cells for `month`.
    fn locate(&self, rep: &str, month: Month) -> Option<PlanAt> {
        self.parts_governing_at(month).find_map(|i| {
            let place = self.versions[i].rep_place(rep, month)?;
            Some(PlanAt { version: i, place })
        })
    }

    /// The cells at `at` in `month`, as [`PlanBook::locate`] found them.
    fn cells_at(&self, at: PlanAt, month: Month) -> Option<&[(BucketId, i64)]> {
        let reps = self.versions.get(at.version)?.lines.get(&month)?;
        reps.get(at.place).map(|(_, cells)| &**cells)
    }
}

/// Where a rep's plan lines of a month are in the plan book: the version in force
/// that has them and the rep's place among its reps. It holds until the next plan
/// event ([`crate::pacing::Memo`] keeps it so).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanAt {
    version: usize,
    place: usize,
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

    /// The review of a version submitted for approval; `None` for one published
    /// straight.
    pub fn review(&self, plan: &str, version: u32) -> Option<&'s Review> {
        self.book.review(plan, version)
    }

    /// The parts of the plan version in force for `month`, the latest first (one,
    /// unless the version was published in parts); empty when no plan governs it.
    pub fn parts_in_force(&self, month: Month) -> Vec<&'s PlanVersion> {
        self.book.parts_in_force(month)
    }

    /// The plan lines in force for `month` (rep, bucket, target), by rep, then
    /// bucket; empty when no plan governs it.
    pub fn lines(&self, month: Month) -> impl Iterator<Item = (&'s str, &'s Bucket, i64)> + 's {
        let buckets = self.buckets;
        let parts = self.book.parts_in_force(month);
        // Each rep's month from the latest part that has it.
        let mut reps: Vec<&'s RepCells> = match parts.as_slice() {
            [one] => one
                .lines
                .get(&month)
                .map_or(Vec::new(), |r| r.iter().collect()),
            many => {
                let mut by_rep: BTreeMap<&str, &'s RepCells> = BTreeMap::new();
                for part in many {
                    for cells in part.lines.get(&month).into_iter().flatten() {
                        by_rep.entry(&*cells.0).or_insert(cells);
                    }
                }
                by_rep.into_values().collect()
            }
        };
        reps.shrink_to_fit();
        reps.into_iter().flat_map(move |(rep, cells)| {
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
        let cells = self.book.rep_cells(rep, month)?;
        Some(ByBucket {
            cells,
            buckets: self.buckets,
        })
    }

    /// Where [`Plans::rep_month`] finds the rep's lines for `month`.
    pub fn locate(&self, rep: &str, month: Month) -> Option<PlanAt> {
        self.book.locate(rep, month)
    }

    /// The lines at `at` (from [`Plans::locate`] with the same `month`, and no plan
    /// event since).
    pub fn rep_month_at(&self, at: PlanAt, month: Month) -> Option<RepLines<'s>> {
        let cells = self.book.cells_at(at, month)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, EventBody, PlanLine};
    use crate::money::Currency;

    #[test]
    fn a_version_holds_its_lines_by_month_rep_and_bucket_the_last_of_a_repeat_counting() {
        let month = |s: &str| Month::parse(s).unwrap();
        let line = |rep: &str, m: &str, bucket: &str, target: i64| PlanLine {
            rep: rep.into(),
            month: month(m),
            bucket: Bucket::parse(bucket).unwrap(),
            target,
        };
        let p = PlanPublished {
            plan: "fy27".into(),
            version: 1,
            basis: PlanBasis::TopDown,
            horizon_start: month("2026-11"),
            effective_from: month("2026-11"),
            currency: Currency::from_code("EUR").unwrap(),
            lines: vec![
                line("bo", "2026-12", "total", 5),
                line("ana", "2026-12", "total", 1),
                line("ana", "2026-11", "total", 2),
                line("ana", "2026-12", "geo:emea", 3),
                line("ana", "2026-12", "total", 4),
            ],
        };
        let rec = Recorded {
            seq: 1,
            recorded_at: Timestamp::from_micros(0),
            event: Event {
                event_id: "p".into(),
                source: "test".into(),
                occurred_at: Timestamp::from_micros(0),
                body: EventBody::ClockTick,
            },
        };
        let mut buckets = Buckets::default();
        let v = PlanVersion::of(&rec, &p, &mut buckets);
        let mut book = PlanBook::default();
        book.publish(v.clone());
        let plans = Plans {
            book: &book,
            buckets: &buckets,
        };
        let lines: Vec<(String, String, String, i64)> = plans
            .version_lines(&v)
            .map(|(m, rep, b, t)| (m.to_string(), rep.to_owned(), b.to_string(), t))
            .collect();
        let want = [
            ("2026-11", "ana", "total", 2),
            ("2026-12", "ana", "geo:emea", 3),
            ("2026-12", "ana", "total", 4),
            ("2026-12", "bo", "total", 5),
        ];
        let want: Vec<(String, String, String, i64)> = want
            .iter()
            .map(|(m, r, b, t)| (m.to_string(), r.to_string(), b.to_string(), *t))
            .collect();
        assert_eq!(lines, want);
        assert_eq!(v.line_count(), 4);
        assert_eq!(plans.target("ana", month("2026-12"), &Bucket::Total), 4);
        assert_eq!(plans.target("cy", month("2026-12"), &Bucket::Total), 0);
    }
}
