//! The index of stored event ids: under which seq an `event_id` is stored, so that an
//! append stores each id once.
//!
//! It is kept in memory, not on disk: the log's records already hold their ids, so
//! the index is derived from the log (built by one scan the first time an append
//! needs it) and can never disagree with it after a crash. Each id is held as a
//! 64-bit keyed hash and its seq, 16 bytes; a hit is confirmed by comparing with the
//! id of the stored record, and an id whose hash another stored id already has is
//! held whole beside the hashes, so two ids are never taken for one.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use rustc_hash::FxHashMap;

/// Event id → seq of the stored event; see the module docs.
#[derive(Debug, Default)]
pub struct IdIndex {
    /// Keyed per process, so that ids chosen to collide cannot be prepared.
    hasher: RandomState,
    /// The hash of an id → the seq of the first stored id with that hash.
    by_hash: FxHashMap<u64, u64>,
    /// Ids whose hash an earlier stored id has: held whole.
    shared: HashMap<Box<str>, u64>,
    /// Tests: every id hashes the same, so each after the first is a collision.
    #[cfg(test)]
    pub(crate) colliding: bool,
}

impl IdIndex {
    /// An empty index with room for `ids` ids.
    pub fn with_capacity(ids: usize) -> Self {
        IdIndex {
            hasher: RandomState::new(),
            by_hash: FxHashMap::with_capacity_and_hasher(ids, Default::default()),
            shared: HashMap::new(),
            #[cfg(test)]
            colliding: false,
        }
    }

    /// The hash this index files `id` under.
    pub fn hash(&self, id: &str) -> u64 {
        #[cfg(test)]
        if self.colliding {
            return 7;
        }
        self.hasher.hash_one(id)
    }

    /// The seq `id` (of hash `hash`) is stored under. `stored_id(seq)` reads the id
    /// of the record at `seq`, to confirm a hash hit.
    pub fn get<E>(
        &self,
        id: &str,
        hash: u64,
        stored_id: impl FnOnce(u64) -> Result<String, E>,
    ) -> Result<Option<u64>, E> {
        let Some(&seq) = self.by_hash.get(&hash) else {
            return Ok(None);
        };
        if stored_id(seq)? == id {
            return Ok(Some(seq));
        }
        Ok(self.shared.get(id).copied())
    }

    /// Files `id` under `seq`, unless it is filed already: then `Some` of the seq it
    /// is filed under, and nothing changes. `stored_id` as for [`IdIndex::get`].
    pub fn file<E>(
        &mut self,
        id: &str,
        seq: u64,
        stored_id: impl FnOnce(u64) -> Result<String, E>,
    ) -> Result<Option<u64>, E> {
        let hash = self.hash(id);
        if let Some(earlier) = self.get(id, hash, stored_id)? {
            return Ok(Some(earlier));
        }
        self.insert(id, hash, seq);
        Ok(None)
    }

    /// Files `id` (of hash `hash`) under `seq`; the caller made sure it is not filed.
    pub fn insert(&mut self, id: &str, hash: u64, seq: u64) {
        if let Some(first) = self.by_hash.get(&hash) {
            debug_assert_ne!(*first, seq);
            self.shared.insert(id.into(), seq);
        } else {
            self.by_hash.insert(hash, seq);
        }
    }

    /// How many ids are filed.
    #[cfg(test)]
    pub fn filed(&self) -> usize {
        self.by_hash.len() + self.shared.len()
    }

    /// Ids held whole because another id has their hash (for tests).
    #[cfg(test)]
    pub fn shared(&self) -> usize {
        self.shared.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sharing_a_hash_are_told_apart_by_the_stored_id() {
        // Every id filed under one hash: each after the first is a collision.
        let mut index = IdIndex::default();
        let stored: Vec<&str> = vec!["", "a", "b", "c"];
        let read = |seq: u64| Ok::<_, ()>(stored[seq as usize].to_owned());
        for (seq, id) in [(1u64, "a"), (2, "b"), (3, "c")] {
            assert_eq!(index.get(id, 7, read), Ok(None), "{id} before it is filed");
            index.insert(id, 7, seq);
        }
        assert_eq!(index.get("a", 7, read), Ok(Some(1)));
        assert_eq!(index.get("b", 7, read), Ok(Some(2)));
        assert_eq!(index.get("c", 7, read), Ok(Some(3)));
        assert_eq!(index.get("d", 7, read), Ok(None));
        assert_eq!(index.get("a", 8, read), Ok(None), "another hash");
        assert_eq!((index.filed(), index.shared()), (3, 2));
    }

    #[test]
    fn the_hash_is_the_same_for_the_same_id() {
        let index = IdIndex::default();
        assert_eq!(index.hash("hs-9911"), index.hash("hs-9911"));
        assert_ne!(index.hash("hs-9911"), index.hash("hs-9912"));
    }
}
