//! Interned names: each rep, account, product, region, stage... and each bucket is
//! stored once per state, and the fold's records refer to it by a 4-byte number.
//!
//! A number says nothing about order: what reaches output is ordered by the names
//! (see [`Names::name`], [`Buckets::bucket`]), never by the numbers, which depend on
//! the order names first appeared in the log.

use std::fmt;
use std::hash::BuildHasher;
use std::num::NonZeroU32;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use crate::bucket::{Bucket, BucketRef};

/// An interned name (see [`Names`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sym(NonZeroU32);

impl Sym {
    /// The sym's number, from 0 in the order names were first interned.
    pub fn index(self) -> usize {
        self.0.get() as usize - 1
    }

    /// The sym as a number that is never 0, for packed storage (0 can then stand
    /// for "none").
    pub(super) fn packed(self) -> u32 {
        self.0.get()
    }

    /// The sym [`Sym::packed`] gave `n`, or `None` for 0.
    pub(super) fn unpacked(n: u32) -> Option<Sym> {
        NonZeroU32::new(n).map(Sym)
    }

    fn of_index(i: usize) -> Sym {
        let n = u32::try_from(i + 1).expect("fewer than 4 billion interned items");
        Sym(NonZeroU32::new(n).expect("one more than an index is never zero"))
    }
}

/// Items stored once each, numbered in the order they were first interned, and
/// found by a hash of their key: what [`Names`] and [`Buckets`] are made of.
#[derive(Clone)]
struct Interner<T> {
    items: Vec<T>,
    /// Indexes into `items`, hashed by the item's key.
    table: HashTable<u32>,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            items: Vec::new(),
            table: HashTable::new(),
        }
    }
}

impl<T> Interner<T> {
    /// The index of the item of key hash `hash` that `is` recognises.
    fn find(&self, hash: u64, is: impl Fn(&T) -> bool) -> Option<usize> {
        let items = &self.items;
        self.table
            .find(hash, |&i| is(&items[i as usize]))
            .map(|&i| i as usize)
    }

    /// The index of the item `is` recognises, adding `make()` under `hash` if none
    /// does; `hash_of` hashes a stored item's key (to grow the table).
    fn intern(
        &mut self,
        hash: u64,
        is: impl Fn(&T) -> bool,
        make: impl FnOnce() -> T,
        hash_of: impl Fn(&T) -> u64,
    ) -> usize {
        if let Some(i) = self.find(hash, is) {
            return i;
        }
        let i = self.items.len();
        let index = u32::try_from(i).expect("fewer than 4 billion interned items");
        self.items.push(make());
        let items = &self.items;
        self.table
            .insert_unique(hash, index, |&j| hash_of(&items[j as usize]));
        i
    }
}

/// Two interners are equal when they hold the same items under the same numbers
/// (the hash table is derived from the items).
impl<T: PartialEq> PartialEq for Interner<T> {
    fn eq(&self, other: &Self) -> bool {
        self.items == other.items
    }
}

impl<T: Eq> Eq for Interner<T> {}

impl<T: fmt::Debug> fmt::Debug for Interner<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.items).finish()
    }
}

fn hash_str(s: &str) -> u64 {
    FxBuildHasher.hash_one(s)
}

/// Names, each stored once, looked up by text or by [`Sym`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names(Interner<Box<str>>);

impl Names {
    /// The sym of `name`, interning it if it is new.
    pub fn intern(&mut self, name: &str) -> Sym {
        let i = self.0.intern(
            hash_str(name),
            |s| &**s == name,
            || name.into(),
            |s| hash_str(s),
        );
        Sym::of_index(i)
    }

    /// The sym of `name`, if it was interned.
    pub fn get(&self, name: &str) -> Option<Sym> {
        self.0
            .find(hash_str(name), |s| &**s == name)
            .map(Sym::of_index)
    }

    pub fn name(&self, sym: Sym) -> &str {
        &self.0.items[sym.index()]
    }

    pub fn len(&self) -> usize {
        self.0.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.items.is_empty()
    }
}

/// An interned bucket (see [`Buckets`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BucketId(u32);

fn hash_bucket(b: BucketRef<'_>) -> u64 {
    FxBuildHasher.hash_one(b)
}

/// Buckets, each stored once, looked up by a borrowed bucket or by [`BucketId`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Buckets(Interner<Bucket>);

impl Buckets {
    /// The id of `bucket`, interning it if it is new.
    pub fn intern(&mut self, bucket: BucketRef<'_>) -> BucketId {
        let i = self.0.intern(
            hash_bucket(bucket),
            |b| b.borrowed() == bucket,
            || bucket.to_bucket(),
            |b| hash_bucket(b.borrowed()),
        );
        BucketId(i as u32)
    }

    /// The id of `bucket`, if it was interned.
    pub fn get(&self, bucket: BucketRef<'_>) -> Option<BucketId> {
        self.0
            .find(hash_bucket(bucket), |b| b.borrowed() == bucket)
            .map(|i| BucketId(i as u32))
    }

    pub fn bucket(&self, id: BucketId) -> &Bucket {
        &self.0.items[id.0 as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_interned_once_and_read_back() {
        let mut names = Names::default();
        let ana = names.intern("ana");
        let bo = names.intern("bo");
        assert_eq!(names.intern("ana"), ana);
        assert_ne!(ana, bo);
        assert_eq!((names.name(ana), names.name(bo)), ("ana", "bo"));
        assert_eq!(names.get("bo"), Some(bo));
        assert_eq!(names.get("cy"), None);
        // Many names: the table grows and still finds each.
        let syms: Vec<Sym> = (0..10_000)
            .map(|i| names.intern(&format!("n{i}")))
            .collect();
        for (i, s) in syms.iter().enumerate() {
            assert_eq!(names.get(&format!("n{i}")), Some(*s));
        }
        assert_eq!(names.len(), 10_002);
    }

    #[test]
    fn a_bucket_is_interned_once_by_kind_and_name() {
        let mut buckets = Buckets::default();
        let call = buckets.intern(BucketRef::Activity("call"));
        let acme = buckets.intern(BucketRef::Account("call"));
        assert_ne!(call, acme, "same name, another kind");
        assert_eq!(buckets.intern(BucketRef::Activity("call")), call);
        assert_eq!(buckets.get(BucketRef::Account("call")), Some(acme));
        assert_eq!(buckets.get(BucketRef::Total), None);
        assert_eq!(buckets.bucket(call), &Bucket::Activity("call".into()));
    }
}
