//! Partitions: which of N engines owns a rep, and which partitions fold each event
//! in full (docs/partitions.md has the design). Pure, like the rest of the crate:
//! the [`Router`] is a fold over the events in stream order, and every partition
//! runs the same one, so every partition routes every event the same way.
//!
//! A rep belongs to partition `fnv1a64(rep) mod N` for good (a rep who moves team
//! stays). An event is folded in full by:
//! - every partition when it is org-wide (the org's reps, plans, rates, ticks, comp
//!   plans) or an acknowledgement (an alert id does not name its rep);
//! - its rep's partition when it names one rep and no deal;
//! - its deal's partition set when it is a deal event: every partition one of whose
//!   reps has owned the deal or shared in it (splits), as of that event. A set only
//!   grows. A partition that joins a deal's set must first fold the deal's earlier
//!   events, which another partition holds ([`Route::joined`]). A rep-less fact of a
//!   deal not yet opened goes to every partition;
//! - every partition when it is a void (rare, like acknowledgements): each undoes
//!   what it holds of the target, which it looks up in its own log, the event
//!   first. The event, folded in full or taken when the partition joined its deal:
//!   [`crate::model::Model::apply`] with it. Only its shared part (another
//!   partition's revenue): [`crate::model::Model::apply_shared`] with it. Nothing:
//!   `apply` without a target, which keeps the id, should the event come or be taken
//!   by joining later.
//!
//! A partition that does not fold a revenue event in full still folds its day
//! amounts ([`crate::model::Model::apply_shared`]): the pacing curves are the team's
//! and the organisation's, whoever's partition the revenue was in.

use rustc_hash::FxHashMap;

use crate::event::{EventBody, Recorded};
use crate::state::deal_of;

/// The most partitions an organisation can be split into.
pub const PARTITIONS_MAX: u32 = 64;

/// The partition of `rep` among `count`: FNV-1a (64-bit) of the id's UTF-8 bytes,
/// modulo `count`. Stable across versions and machines: changing it moves reps.
pub fn partition_of(rep: &str, count: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in rep.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(count.max(1))) as u32
}

/// One partition of `count`: what a partitioned engine owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    index: u32,
    count: u32,
}

impl Owner {
    /// Partition `index` of `count`; `None` unless `index < count ≤`
    /// [`PARTITIONS_MAX`].
    pub fn new(index: u32, count: u32) -> Option<Owner> {
        (index < count && count <= PARTITIONS_MAX).then_some(Owner { index, count })
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether `rep` is this partition's.
    pub fn owns(&self, rep: &str) -> bool {
        partition_of(rep, self.count) == self.index
    }
}

/// A set of partitions (at most [`PARTITIONS_MAX`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartitionSet(u64);

impl PartitionSet {
    /// No partition.
    pub const EMPTY: PartitionSet = PartitionSet(0);

    /// Every partition of `count`.
    pub fn every(count: u32) -> PartitionSet {
        match count {
            0 => PartitionSet(0),
            n if n >= 64 => PartitionSet(u64::MAX),
            n => PartitionSet((1u64 << n) - 1),
        }
    }

    /// Partition `k` alone.
    pub fn one(k: u32) -> PartitionSet {
        PartitionSet(1u64 << (k % 64))
    }

    pub fn contains(self, k: u32) -> bool {
        k < 64 && self.0 & (1u64 << k) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn union(self, other: PartitionSet) -> PartitionSet {
        PartitionSet(self.0 | other.0)
    }

    /// The partitions of `self` not in `other`.
    pub fn minus(self, other: PartitionSet) -> PartitionSet {
        PartitionSet(self.0 & !other.0)
    }
}

/// Where one event goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The partitions that fold it in full.
    pub full: PartitionSet,
    /// Of those, the ones that join its deal here: before this event, they fold the
    /// deal's earlier events, which they never folded in full (the voids of them
    /// reached every partition already).
    pub joined: PartitionSet,
}

impl Route {
    fn to(full: PartitionSet) -> Route {
        Route {
            full,
            joined: PartitionSet::EMPTY,
        }
    }
}

/// The fold that routes events: each deal's partition set.
#[derive(Clone, Debug, Default)]
pub struct Router {
    count: u32,
    deals: FxHashMap<String, PartitionSet>,
}

impl Router {
    /// A router for `count` partitions, taken into 1 to [`PARTITIONS_MAX`] (check
    /// the count with [`Owner::new`] first).
    pub fn new(count: u32) -> Router {
        Router {
            count: count.clamp(1, PARTITIONS_MAX),
            deals: FxHashMap::default(),
        }
    }

    /// Routes `rec` (the events before it routed already, in order).
    pub fn route(&mut self, rec: &Recorded) -> Route {
        let every = PartitionSet::every(self.count);
        match &rec.event.body {
            EventBody::DealOpened(o) => self.grow(&o.deal, [o.rep.as_str()]),
            EventBody::DealWon(w) => self.grow(
                &w.deal,
                std::iter::once(w.rep.as_str()).chain(w.splits.iter().map(|s| s.rep.as_str())),
            ),
            EventBody::DealStageChanged(_) | EventBody::DealLost(_) => {
                let deal = deal_of(&rec.event.body).unwrap_or_default();
                // A fact of a deal not opened yet goes to every partition.
                Route::to(self.deals.get(deal).copied().unwrap_or(every))
            }
            EventBody::ActivityLogged(_)
            | EventBody::ForecastSubmitted(_)
            | EventBody::Retention(..)
            | EventBody::CustomerRated(_) => {
                Route::to(rec.event.body.rep().map_or(every, |rep| self.of(rep)))
            }
            EventBody::RepRegistered(_)
            | EventBody::RepReassigned(_)
            | EventBody::RepDeparted(_)
            | EventBody::PlanPublished(_)
            | EventBody::PlanSubmitted(_)
            | EventBody::PlanApproved(_)
            | EventBody::PlanRejected(_)
            | EventBody::CompPlanPublished(_)
            | EventBody::FxRateSet(_)
            | EventBody::ClockTick
            | EventBody::AlertAcknowledged(_)
            | EventBody::EventVoided(_) => Route::to(every),
        }
    }

    fn of(&self, rep: &str) -> PartitionSet {
        PartitionSet::one(partition_of(rep, self.count))
    }

    /// A deal event naming `reps`: the deal's set grows by their partitions.
    fn grow<'r>(&mut self, deal: &str, reps: impl IntoIterator<Item = &'r str>) -> Route {
        let mut add = PartitionSet::EMPTY;
        for rep in reps {
            add = add.union(self.of(rep));
        }
        let before = self.deals.get(deal).copied();
        let after = before.unwrap_or(PartitionSet::EMPTY).union(add);
        if before != Some(after) {
            self.deals.insert(deal.to_owned(), after);
        }
        Route {
            full: after,
            // The first set a deal gets joins no partition: a rep-less fact before
            // it went to every partition.
            joined: match before {
                Some(b) => after.minus(b),
                None => PartitionSet::EMPTY,
            },
        }
    }
}

/// The one answer from the partitions' answers, each narrowed to its own reps and
/// in the order a single engine lists them, which `key` gives: report rows, digest
/// sections and alert listings keyed by rep (a rep's rows are all in one
/// partition's answer), and alert listings in raise order keyed by
/// `(raised_seq, rep)`. That is the single engine's raise order: one event raises
/// its alerts rep by rep in rep order, and a rep's in the order its partition
/// keeps. A stable sort keeps each partition's own order within a key.
pub fn merge<T, K: Ord>(parts: impl IntoIterator<Item = Vec<T>>, key: impl Fn(&T) -> K) -> Vec<T> {
    let mut all: Vec<T> = parts.into_iter().flatten().collect();
    all.sort_by_key(|t| key(t));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rep_partition_is_stable_and_spreads_reps() {
        // FNV-1a of "ana" is 0xe6f79c19051ffb05, of "rep-0001" 0xcef09041d548b7b4
        // (worked out apart from this code): changing the function moves reps.
        assert_eq!((partition_of("ana", 2), partition_of("ana", 7)), (1, 2));
        assert_eq!(
            (partition_of("rep-0001", 3), partition_of("rep-0001", 7)),
            (1, 4)
        );
        let mut counts = [0u32; 4];
        for i in 0..4000 {
            counts[partition_of(&format!("rep-{i:04}"), 4) as usize] += 1;
        }
        for c in counts {
            assert!((900..=1100).contains(&c), "{counts:?}");
        }
        assert_eq!(partition_of("anything", 1), 0);
    }

    #[test]
    fn a_merge_orders_by_key_and_keeps_each_partitions_order_within_one() {
        let a = vec![(1, "ana", 'x'), (1, "ana", 'a'), (3, "cy", 'c')];
        let b = vec![(1, "bo", 'b'), (2, "bo", 'd')];
        let merged = merge([a, b], |t| (t.0, t.1));
        assert_eq!(
            merged,
            vec![
                (1, "ana", 'x'),
                (1, "ana", 'a'),
                (1, "bo", 'b'),
                (2, "bo", 'd'),
                (3, "cy", 'c')
            ]
        );
    }

    #[test]
    fn an_owner_is_one_of_at_most_64_partitions() {
        assert!(Owner::new(0, 1).is_some() && Owner::new(63, 64).is_some());
        assert_eq!(Owner::new(2, 2), None);
        assert_eq!(Owner::new(0, 65), None);
        assert_eq!(Owner::new(0, 0), None);
    }

    #[test]
    fn sets_hold_partitions() {
        let s = PartitionSet::one(1).union(PartitionSet::one(3));
        assert!(s.contains(1) && s.contains(3) && !s.contains(0));
        assert_eq!(s.minus(PartitionSet::one(1)), PartitionSet::one(3));
        assert_eq!(PartitionSet::every(3), PartitionSet(0b111));
        assert_eq!(PartitionSet::every(64), PartitionSet(u64::MAX));
    }
}
