//! Actuals: per rep × month, the sum of every contribution to each bucket.
//!
//! A rep's month is one small vector of (bucket, sum) kept in bucket-name order, so
//! readers get buckets in the order a report lists them, while the fold finds a
//! bucket by comparing 4-byte ids. A bucket whose sum returns to zero is removed,
//! and a month with no bucket left, so "applied then voided" is "never applied".

use rustc_hash::FxHashMap;

use super::names::{BucketId, Buckets, Sym};
use crate::bucket::Bucket;
use crate::time::Month;

/// Rep × month → (bucket, sum) in bucket order, never a zero sum.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Actuals {
    months: FxHashMap<(Sym, Month), Vec<(BucketId, i64)>>,
}

impl Actuals {
    /// Adds `delta` to one bucket of a rep's month.
    pub(super) fn add(
        &mut self,
        rep: Sym,
        month: Month,
        bucket: BucketId,
        delta: i64,
        buckets: &Buckets,
    ) {
        if delta == 0 {
            return;
        }
        let cells = self.months.entry((rep, month)).or_default();
        if let Some(i) = cells.iter().position(|(b, _)| *b == bucket) {
            // Wrapping, not saturating: adding then removing is exact even at the
            // edge of the i64 range, so a void always undoes its event and the
            // invariants hold.
            let sum = cells[i].1.wrapping_add(delta);
            if sum != 0 {
                cells[i].1 = sum;
                return;
            }
            cells.remove(i);
            if cells.is_empty() {
                self.months.remove(&(rep, month));
            }
            return;
        }
        let name = buckets.bucket(bucket);
        let at = cells.partition_point(|(b, _)| buckets.bucket(*b) < name);
        cells.insert(at, (bucket, delta));
    }

    pub(super) fn month(&self, rep: Sym, month: Month) -> Option<&[(BucketId, i64)]> {
        self.months.get(&(rep, month)).map(Vec::as_slice)
    }

    /// Every rep's months, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (Sym, Month, &[(BucketId, i64)])> + '_ {
        self.months
            .iter()
            .map(|((rep, month), cells)| (*rep, *month, cells.as_slice()))
    }
}

/// Values by bucket, in bucket order: a rep's actuals of one month (each bucket
/// that moved and its sum), or a rep's plan lines of one month (each bucket and its
/// target).
#[derive(Clone, Copy)]
pub struct ByBucket<'s> {
    pub(super) cells: &'s [(BucketId, i64)],
    pub(super) buckets: &'s Buckets,
}

/// A rep's actuals of one month.
pub type MonthActuals<'s> = ByBucket<'s>;

impl<'s> ByBucket<'s> {
    /// The cells as stored: (bucket id, value) in bucket-name order.
    pub(crate) fn cells(&self) -> &'s [(BucketId, i64)] {
        self.cells
    }

    /// The value of `bucket`, if it has one.
    pub fn get(&self, bucket: &Bucket) -> Option<&'s i64> {
        let id = self.buckets.get(bucket.borrowed())?;
        self.cells.iter().find(|(b, _)| *b == id).map(|(_, v)| v)
    }

    /// The buckets and their sums, in bucket order.
    pub fn iter(&self) -> Cells<'s> {
        Cells {
            cells: self.cells.iter(),
            buckets: self.buckets,
        }
    }

    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }
}

impl<'s> IntoIterator for ByBucket<'s> {
    type Item = (&'s Bucket, &'s i64);
    type IntoIter = Cells<'s>;

    fn into_iter(self) -> Cells<'s> {
        self.iter()
    }
}

/// The (bucket, value) cells of a [`ByBucket`], in bucket order.
pub struct Cells<'s> {
    pub(super) cells: std::slice::Iter<'s, (BucketId, i64)>,
    pub(super) buckets: &'s Buckets,
}

impl<'s> Iterator for Cells<'s> {
    type Item = (&'s Bucket, &'s i64);

    fn next(&mut self) -> Option<Self::Item> {
        let (b, v) = self.cells.next()?;
        Some((self.buckets.bucket(*b), v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.cells.size_hint()
    }
}

impl std::fmt::Debug for ByBucket<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}
