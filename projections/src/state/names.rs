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
    fn index(self) -> usize {
        self.0.get() as usize - 1
    }

    fn of_index(i: usize) -> Sym {
        let n = u32::try_from(i + 1).expect("fewer than 4 billion names");
        Sym(NonZeroU32::new(n).expect("one more than an index is never zero"))
    }
}

/// Names, each stored once, looked up by text or by [`Sym`].
#[derive(Clone, Default)]
pub struct Names {
    strings: Vec<Box<str>>,
    /// The syms, hashed by their text.
    table: HashTable<Sym>,
}

fn hash_str(s: &str) -> u64 {
    FxBuildHasher.hash_one(s)
}

impl Names {
    /// The sym of `name`, interning it if it is new.
    pub fn intern(&mut self, name: &str) -> Sym {
        let hash = hash_str(name);
        let strings = &self.strings;
        if let Some(sym) = self.table.find(hash, |s| &*strings[s.index()] == name) {
            return *sym;
        }
        let sym = Sym::of_index(self.strings.len());
        self.strings.push(name.into());
        let strings = &self.strings;
        self.table
            .insert_unique(hash, sym, |s| hash_str(&strings[s.index()]));
        sym
    }

    /// The sym of `name`, if it was interned.
    pub fn get(&self, name: &str) -> Option<Sym> {
        let strings = &self.strings;
        self.table
            .find(hash_str(name), |s| &*strings[s.index()] == name)
            .copied()
    }

    pub fn name(&self, sym: Sym) -> &str {
        &self.strings[sym.index()]
    }

    pub fn len(&self) -> usize {
        self.strings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }
}

/// Two tables are equal when they hold the same names under the same syms (the hash
/// table is derived from the names).
impl PartialEq for Names {
    fn eq(&self, other: &Self) -> bool {
        self.strings == other.strings
    }
}

impl Eq for Names {}

impl fmt::Debug for Names {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.strings).finish()
    }
}

/// An interned bucket (see [`Buckets`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BucketId(u32);

/// Buckets, each stored once, looked up by a borrowed bucket or by [`BucketId`].
#[derive(Clone, Default)]
pub struct Buckets {
    all: Vec<Bucket>,
    table: HashTable<BucketId>,
}

fn hash_bucket(b: BucketRef<'_>) -> u64 {
    FxBuildHasher.hash_one(b)
}

impl Buckets {
    /// The id of `bucket`, interning it if it is new.
    pub fn intern(&mut self, bucket: BucketRef<'_>) -> BucketId {
        let hash = hash_bucket(bucket);
        let all = &self.all;
        if let Some(id) = self
            .table
            .find(hash, |id| all[id.0 as usize].borrowed() == bucket)
        {
            return *id;
        }
        let id = BucketId(u32::try_from(self.all.len()).expect("fewer than 4 billion buckets"));
        self.all.push(bucket.to_bucket());
        let all = &self.all;
        self.table
            .insert_unique(hash, id, |id| hash_bucket(all[id.0 as usize].borrowed()));
        id
    }

    /// The id of `bucket`, if it was interned.
    pub fn get(&self, bucket: BucketRef<'_>) -> Option<BucketId> {
        let all = &self.all;
        self.table
            .find(hash_bucket(bucket), |id| {
                all[id.0 as usize].borrowed() == bucket
            })
            .copied()
    }

    pub fn bucket(&self, id: BucketId) -> &Bucket {
        &self.all[id.0 as usize]
    }
}

impl PartialEq for Buckets {
    fn eq(&self, other: &Self) -> bool {
        self.all == other.all
    }
}

impl Eq for Buckets {}

impl fmt::Debug for Buckets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.all).finish()
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
