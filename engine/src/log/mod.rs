//! The append-only event log on sled.
//!
//! Layout: tree `events` maps a big-endian `u64` seq (from 1) to a segment, the
//! records of one append from that seq on; tree `voids` maps the seq of an
//! `event_voided` to the seq of the event it names, when the log held that event
//! before the void (what a rebuild hands the fold with the void); tree `fx` holds the
//! latest exchange rate per currency and month; tree `meta` holds the format name,
//! the organisation the log is bound to and who created it.
//!
//! Which seq holds an `event_id` is not stored: the records hold their ids, and
//! [`ids::IdIndex`] is built from them in memory the first time an append needs it.
//! That makes appends idempotent (the first event with an id wins; later ones are
//! reported as duplicates, not stored) without a second key per event on disk, and
//! the index cannot disagree with the log after a crash.
//!
//! A record is `[format version: u8][crc32 of payload: u32 BE][payload]`, the payload
//! being the bincode-2 encoding of the
//! [`Recorded`](pacer_projections::event::Recorded) event. The version byte routes
//! decoding: when the schema changes, the old version's types move to a module of
//! their own with an upcaster into the new ones, so old logs stay readable.
//!
//! A segment is `[2: u8][records: u32 BE]`, then each record as `[length: u32 BE]
//! [record]`, at most [`SEGMENT_BYTES_MAX`] bytes. A record that does not fit in one
//! (a plan of many lines) is a span: its entry in the segment is a stub, and the
//! record is in tree `chunks` under `[seq: u64 BE][part: u32 BE]`, in pieces of at
//! most the same size. A rebuild reads one value per segment. Each record keeps its
//! own CRC, so a damaged record is still reported with its seq and everything before
//! it is read. Small values keep every sled page inline, where sled's cache counts
//! and evicts it (see [`SEGMENT_BYTES_MAX`]).
//!
//! Formats: `pacer-log/1` held one record per key, `pacer-log/2` segments; both kept
//! an `ids` tree (event id → seq). This version writes `pacer-log/3`. It reads the
//! older logs as they are: on opening one, it fills `voids` from the `ids` tree,
//! marks the log `pacer-log/3` (so an older version refuses it rather than append
//! without the ids it expects) and drops `ids`.
//!
//! Appends are batched: a batch is written to its trees in one transaction, then
//! the database is flushed once, and only then does [`Log::append_batch`] return.
//! What it returned as stored survives a crash (kill -9) and is never doubled.
//!
//! The code is split by concern, each file using only those listed after it:
//! `writer` ([`Log`]: opening, metadata, the id index, appends; and [`VoidTargets`]),
//! `upgrade` (opening the database, the formats, upgrading an older log), `reader`
//! ([`LogReader`], [`LogIter`]), `segment` (the segment format), `record` (the record
//! codec) and [`ids`] (the id index). This file only declares and re-exports them.

pub mod ids;
mod reader;
mod record;
mod segment;
#[cfg(test)]
mod tests;
mod upgrade;
#[cfg(test)]
pub(crate) use upgrade::open_db;
mod writer;

pub use reader::{LogIter, LogReader};
pub use segment::SEGMENT_BYTES_MAX;
#[cfg(test)]
pub(crate) use tests::damage_record;
pub use writer::{Appended, Log, VoidTargets};
