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
//! being the bincode-2 encoding of the [`Recorded`] event. The version byte routes
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

pub mod ids;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;

use pacer_projections::event::{Event, EventBody, FxRate, Recorded};
use pacer_projections::fx::FxTable;
use pacer_projections::money::Currency;
use pacer_projections::state::{void_target, OrgConfig};
use pacer_projections::time::Month;
use pacer_projections::time::Timestamp;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use crate::error::LogError;
use ids::IdIndex;

/// The format this version writes.
const FORMAT: &str = "pacer-log/3";
/// The formats before, which this version reads (and marks as its own).
const FORMAT_V2: &str = "pacer-log/2";
const FORMAT_V1: &str = "pacer-log/1";
/// The record framing version this version writes.
const RECORD_V1: u8 = 1;
const HEADER_BYTES: usize = 5;
/// The segment framing version.
const SEGMENT_V2: u8 = 2;
/// A segment's version and record count.
const SEGMENT_HEADER_BYTES: usize = 5;
/// A record's length within a segment.
const LENGTH_BYTES: usize = 4;
/// The most bytes one segment holds. sled keeps a leaf of up to 17 values inline,
/// where its cache counts and evicts it, only below 128 KiB (a quarter of its 512 KiB
/// I/O segment); a larger leaf becomes a blob that its cache does not count, and
/// every blob read would stay in memory. 7 KiB keeps any leaf of segments inline.
pub const SEGMENT_BYTES_MAX: usize = 7 * 1024;
/// A record too large for a segment (a plan of many lines) is stored as a span: a
/// stub in the segment, the record itself in tree `chunks`, in pieces of this size
/// (for the same reason as [`SEGMENT_BYTES_MAX`]).
const CHUNK_BYTES: usize = SEGMENT_BYTES_MAX;
/// The first byte of a span stub: `[SPAN][record length u32 BE][chunks u32 BE]`.
const SPAN: u8 = 0xFF;
const SPAN_STUB_BYTES: usize = 9;
/// The most ids the id index makes room for before it has read any.
const ID_CAPACITY_HINT_MAX: usize = 1 << 22;

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard()
}

/// What happened to one event of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Appended {
    /// Stored under this seq.
    Stored(u64),
    /// An event with the same id is already stored under this seq; this one was not.
    Duplicate(u64),
}

/// The durable log. One process holds it open at a time (sled locks the directory).
pub struct Log {
    path: PathBuf,
    db: sled::Db,
    events: sled::Tree,
    /// Seq of an `event_voided` → seq of the event it names, stored before it.
    voids: sled::Tree,
    /// The pieces of records too large for a segment (spans).
    chunks: sled::Tree,
    meta: sled::Tree,
    /// `CUR:YYYY-MM` → the latest `fx_rate_set` rate (ten-decimal integer, BE): written
    /// in the same transaction as the events, so validation reads the rates without
    /// scanning the log.
    fx: sled::Tree,
    /// Built from the records on first use (see the module docs).
    ids: Option<IdIndex>,
    next_seq: u64,
    /// Set when an append failed part-way; see [`Log::append_batch`].
    poisoned: bool,
    /// The latest `recorded_at` stored: a batch is never recorded before it, even when
    /// the wall clock steps back, so "as recorded by T" is always a prefix of the log.
    last_recorded_at: Option<Timestamp>,
}

impl Log {
    /// Opens (or creates) the log in `dir`, recovering after a crash.
    pub fn open(dir: &Path) -> Result<Log, LogError> {
        let open_err = |source| LogError::Open {
            path: dir.to_owned(),
            source,
        };
        let db = open_db(dir)?;
        let events = db.open_tree("events").map_err(open_err)?;
        let voids = db.open_tree("voids").map_err(open_err)?;
        let chunks = db.open_tree("chunks").map_err(open_err)?;
        let meta = db.open_tree("meta").map_err(open_err)?;
        let fx = db.open_tree("fx").map_err(open_err)?;
        match meta.get("format").map_err(open_err)? {
            Some(f) if f.as_ref() == FORMAT.as_bytes() => {}
            Some(f) if f.as_ref() == FORMAT_V1.as_bytes() || f.as_ref() == FORMAT_V2.as_bytes() => {
                upgrade(&db, &events, &voids)?;
                meta.insert("format", FORMAT).map_err(open_err)?;
                db.flush().map_err(open_err)?;
            }
            Some(f) => {
                return Err(LogError::Format {
                    path: dir.to_owned(),
                    found: String::from_utf8_lossy(&f).into_owned(),
                })
            }
            None => {
                meta.insert("format", FORMAT).map_err(open_err)?;
                db.flush().map_err(open_err)?;
            }
        }
        // The id index of an older format, once the log is marked as this one's (an
        // upgrade that stopped after marking leaves it behind).
        if db.tree_names().iter().any(|n| n.as_ref() == b"ids") {
            db.drop_tree("ids").map_err(open_err)?;
            db.flush().map_err(open_err)?;
        }
        let (next_seq, last_recorded_at) = match events.last().map_err(open_err)? {
            Some((k, v)) => {
                let first =
                    seq_of_key(&k).map_err(|reason| LogError::Corrupt { seq: 0, reason })?;
                let stored = Stored::new(first, v)?;
                // A damaged last record is reported by whoever reads it (replay names
                // its seq); opening the log must still work, to inspect it.
                let last = stored.records().last().and_then(Result::ok);
                (
                    stored.end(),
                    last.and_then(|(seq, raw)| {
                        let raw = whole(seq, raw, &chunks).ok()?;
                        decode_record(seq, &raw).ok()
                    })
                    .map(|r| r.recorded_at),
                )
            }
            None => (1, None),
        };
        Ok(Log {
            path: dir.to_owned(),
            db,
            events,
            voids,
            chunks,
            meta,
            fx,
            ids: None,
            next_seq,
            poisoned: false,
            last_recorded_at,
        })
    }

    /// A tree of the log's database for another durable record kept beside the log
    /// (the webhook gateway's deal mirror): flushed with it, never part of replay.
    pub fn side_tree(&self, name: &str) -> Result<sled::Tree, LogError> {
        self.db
            .open_tree(format!("side:{name}"))
            .map_err(|source| LogError::Storage {
                doing: "opening a side tree",
                source,
            })
    }

    /// The `recorded_at` of the latest stored event.
    pub fn last_recorded_at(&self) -> Option<Timestamp> {
        self.last_recorded_at
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The seq of the last stored event (0 for an empty log).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Binds the log to an organisation's reporting currency and time zone: the first
    /// time, they are recorded; afterwards a different configuration is refused, since
    /// the stored amounts are minor units of that currency and months are cut in that
    /// zone.
    pub fn bind_org(&mut self, org: &OrgConfig) -> Result<(), LogError> {
        let wanted = [
            ("org.currency", org.currency.code().to_owned()),
            ("org.timezone", org.timezone.name().to_owned()),
        ];
        let mut recorded = false;
        for (key, value) in &wanted {
            match self.meta(key)? {
                Some(stored) if stored != *value => {
                    return Err(LogError::OrgMismatch {
                        path: self.path.clone(),
                        key,
                        stored,
                        configured: value.clone(),
                    })
                }
                Some(_) => {}
                None => {
                    self.meta
                        .insert(key, value.as_str())
                        .map_err(|source| LogError::Storage {
                            doing: "writing metadata",
                            source,
                        })?;
                    recorded = true;
                }
            }
        }
        if recorded {
            self.flush()?;
        }
        Ok(())
    }

    /// The seq an event id is stored under. The first call reads every record's id
    /// (see [`ids`]).
    pub fn seq_of(&mut self, event_id: &str) -> Result<Option<u64>, LogError> {
        let hash = self.id_index()?.hash(event_id);
        self.seq_of_hashed(event_id, hash)
    }

    /// The stored event with this id, if any.
    pub fn event(&mut self, event_id: &str) -> Result<Option<Recorded>, LogError> {
        match self.seq_of(event_id)? {
            Some(seq) => self.get(seq),
            None => Ok(None),
        }
    }

    /// [`Log::seq_of`] with the id's hash already taken (the index is built).
    fn seq_of_hashed(&self, event_id: &str, hash: u64) -> Result<Option<u64>, LogError> {
        let index = self.ids.as_ref().expect("the id index is built first");
        index.get(event_id, hash, |seq| self.reader().event_id(seq))
    }

    /// Takes an id index built from every record of this log by whoever read them
    /// all anyway (the start-up rebuild), instead of reading them again.
    pub(crate) fn install_ids(&mut self, ids: IdIndex) {
        self.ids = Some(ids);
    }

    /// Whether the id index is built (tests).
    #[cfg(test)]
    pub(crate) fn ids_built(&self) -> bool {
        self.ids.is_some()
    }

    /// Room to make in a new id index: a hint only (the table grows), so that a
    /// damaged last key cannot size it.
    pub(crate) fn ids_capacity_hint(&self) -> usize {
        usize::try_from(self.next_seq).map_or(ID_CAPACITY_HINT_MAX, |n| n.min(ID_CAPACITY_HINT_MAX))
    }

    /// The id index, built from the records the first time it is asked for.
    fn id_index(&mut self) -> Result<&IdIndex, LogError> {
        if self.ids.is_none() {
            let mut index = IdIndex::with_capacity(self.ids_capacity_hint());
            let reader = self.reader();
            for stored in Segments::from(&self.events, 1) {
                let stored = stored?;
                for record in stored.records() {
                    let (seq, raw) = record?;
                    let raw = whole(seq, raw, &self.chunks)?;
                    // Ids are unique in the log: an id already filed is not one.
                    index.file(record_id(seq, &raw)?, seq, |seq| reader.event_id(seq))?;
                }
            }
            self.ids = Some(index);
        }
        Ok(self.ids.as_ref().expect("built above"))
    }

    /// A metadata value (`created_by`, ...).
    pub fn meta(&self, key: &str) -> Result<Option<String>, LogError> {
        let v = self.meta.get(key).map_err(|source| LogError::Storage {
            doing: "reading metadata",
            source,
        })?;
        Ok(v.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// The exchange rates the log has set (a later rate for the same currency and
    /// month replaces an earlier one), as validation needs them.
    pub fn fx_table(&self) -> Result<FxTable, LogError> {
        let mut table = FxTable::default();
        for item in self.fx.iter() {
            let (k, v) = item.map_err(|source| LogError::Storage {
                doing: "reading exchange rates",
                source,
            })?;
            let bad = |reason: &str| LogError::Corrupt {
                seq: 0,
                reason: format!("exchange rate {:?}: {reason}", String::from_utf8_lossy(&k)),
            };
            let key = std::str::from_utf8(&k).map_err(|_| bad("not text"))?;
            let (code, month) = key.split_once(':').ok_or_else(|| bad("no currency"))?;
            let currency = Currency::from_code(code).map_err(|_| bad("unknown currency"))?;
            let month = Month::parse(month).map_err(|_| bad("bad month"))?;
            let scaled = <[u8; 8]>::try_from(v.as_ref())
                .map(i64::from_be_bytes)
                .map_err(|_| bad("bad rate"))?;
            let rate = FxRate::from_scaled(scaled).ok_or_else(|| bad("bad rate"))?;
            table.set(currency, month, rate);
        }
        Ok(table)
    }

    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<(), LogError> {
        self.meta
            .insert(key, value)
            .map_err(|source| LogError::Storage {
                doing: "writing metadata",
                source,
            })?;
        self.flush()
    }

    fn flush(&self) -> Result<(), LogError> {
        self.db.flush().map_err(|source| LogError::Storage {
            doing: "flushing to disk",
            source,
        })?;
        Ok(())
    }

    /// Appends a batch: duplicates (of stored events or of earlier events in the
    /// batch) are reported and skipped; the rest get consecutive seqs and
    /// `recorded_at` (never earlier than the last batch's). Returns only after the
    /// batch is flushed to disk.
    pub fn append_batch(
        &mut self,
        batch: Vec<Event>,
        recorded_at: Timestamp,
    ) -> Result<Vec<Appended>, LogError> {
        self.append_recorded(batch, recorded_at)
            .map(|(outcome, _)| outcome)
    }

    /// [`Log::append_batch`], also returning the stored events as they were
    /// recorded (seq order), for a caller that folds them next.
    pub fn append_recorded(
        &mut self,
        batch: Vec<Event>,
        recorded_at: Timestamp,
    ) -> Result<(Vec<Appended>, Vec<Recorded>), LogError> {
        if self.poisoned {
            return Err(LogError::Poisoned {
                path: self.path.clone(),
            });
        }
        self.id_index()?;
        if self.next_seq.checked_add(batch.len() as u64).is_none() {
            return Err(LogError::Corrupt {
                seq: self.next_seq,
                reason: "the log's last seq leaves no room for more events".into(),
            });
        }
        let recorded_at = self
            .last_recorded_at
            .map_or(recorded_at, |last| last.max(recorded_at));
        let mut outcome = Vec::with_capacity(batch.len());
        let mut stored: Vec<Recorded> = Vec::with_capacity(batch.len());
        // The hash of each stored event's id, in `stored` order.
        let mut hashes: Vec<u64> = Vec::with_capacity(batch.len());
        // Hash → position in `stored` of the first event of this batch with it.
        let mut in_batch: FxHashMap<u64, usize> = FxHashMap::default();
        let mut event_batch = sled::Batch::default();
        let mut segment = SegmentWriter::new(self.next_seq);
        let mut payload = Vec::new();
        let mut fx_batch = sled::Batch::default();
        let mut void_batch = sled::Batch::default();
        let mut chunk_batch = sled::Batch::default();
        // Whether the fx, voids or chunks tree is written too.
        let mut more_trees = false;
        let mut seq = self.next_seq;
        let index = self.ids.as_ref().expect("built above");
        // The seq of `id` (hash `hash`): stored before, or earlier in this batch.
        let find = |id: &str,
                    hash: u64,
                    stored: &[Recorded],
                    in_batch: &FxHashMap<u64, usize>|
         -> Result<Option<u64>, LogError> {
            if let Some(seq) = self.seq_of_hashed(id, hash)? {
                return Ok(Some(seq));
            }
            Ok(match in_batch.get(&hash) {
                Some(&at) if stored[at].event.event_id == id => Some(stored[at].seq),
                // Another id with the same hash: look through the batch.
                Some(_) => stored
                    .iter()
                    .find(|r| r.event.event_id == id)
                    .map(|r| r.seq),
                None => None,
            })
        };
        for event in batch {
            let hash = index.hash(&event.event_id);
            if let Some(existing) = find(&event.event_id, hash, &stored, &in_batch)? {
                outcome.push(Appended::Duplicate(existing));
                continue;
            }
            if let Some(target) = void_target(&event) {
                let target_hash = index.hash(target);
                if let Some(target_seq) = find(target, target_hash, &stored, &in_batch)? {
                    void_batch.insert(&seq.to_be_bytes(), &target_seq.to_be_bytes());
                    more_trees = true;
                }
            }
            let rec = Recorded {
                seq,
                recorded_at,
                event,
            };
            let encode_err = |reason: String| LogError::Encode {
                event_id: rec.event.event_id.clone(),
                reason,
            };
            payload.clear();
            bincode::encode_into_std_write(&rec, &mut payload, bincode_config())
                .map_err(|e| encode_err(e.to_string()))?;
            let (closed, span) = segment.push(seq, &payload).map_err(encode_err)?;
            if let Some((first, full)) = closed {
                event_batch.insert(&first.to_be_bytes(), full);
            }
            if let Some(record) = span {
                for (part, chunk) in record.chunks(CHUNK_BYTES).enumerate() {
                    chunk_batch.insert(chunk_key(seq, part as u32).as_slice(), chunk);
                }
                more_trees = true;
            }
            if let EventBody::FxRateSet(r) = &rec.event.body {
                fx_batch.insert(
                    format!("{}:{}", r.currency.code(), r.month).as_bytes(),
                    &r.rate.scaled().to_be_bytes(),
                );
                more_trees = true;
            }
            in_batch.entry(hash).or_insert(stored.len());
            hashes.push(hash);
            outcome.push(Appended::Stored(seq));
            stored.push(rec);
            seq += 1;
        }
        if stored.is_empty() {
            return Ok((outcome, stored));
        }
        if let Some((first, last)) = segment.finish() {
            event_batch.insert(&first.to_be_bytes(), last);
        }
        // From here a failure leaves memory and disk in doubt (written but maybe not
        // flushed): refuse further appends until the log is reopened, so nothing
        // unflushed is ever reported as stored, nor a seq used twice.
        self.poisoned = true;
        let storage = |source| LogError::Storage {
            doing: "appending a batch",
            source,
        };
        if !more_trees {
            // One tree: its batch is atomic by itself.
            self.events.apply_batch(event_batch).map_err(storage)?;
        } else {
            (&self.events, &self.fx, &self.voids, &self.chunks)
                .transaction(|(events, fx, voids, chunks)| {
                    events.apply_batch(&event_batch)?;
                    fx.apply_batch(&fx_batch)?;
                    voids.apply_batch(&void_batch)?;
                    chunks.apply_batch(&chunk_batch)?;
                    Ok::<(), ConflictableTransactionError<()>>(())
                })
                .map_err(|e| match e {
                    TransactionError::Storage(source) => storage(source),
                    TransactionError::Abort(()) => {
                        unreachable!("the append transaction never aborts")
                    }
                })?;
        }
        self.flush()?;
        let index = self.ids.as_mut().expect("built above");
        for (rec, hash) in stored.iter().zip(hashes) {
            index.insert(&rec.event.event_id, hash, rec.seq);
        }
        self.next_seq = seq;
        self.last_recorded_at = Some(recorded_at);
        self.poisoned = false;
        Ok((outcome, stored))
    }

    /// The stored events from `from_seq` on, in seq order. A record that fails its
    /// CRC or does not decode ends the iteration with an error naming its seq.
    pub fn iter_from(&self, from_seq: u64) -> LogIter {
        self.reader().iter_from(from_seq)
    }

    /// A read-only handle that other threads can hold while this one appends (for
    /// queries that page through the log).
    pub fn reader(&self) -> LogReader {
        LogReader {
            events: self.events.clone(),
            voids: self.voids.clone(),
            chunks: self.chunks.clone(),
        }
    }

    /// One stored event.
    pub fn get(&self, seq: u64) -> Result<Option<Recorded>, LogError> {
        self.reader().get(seq)
    }
}

/// The events the voids of a batch name, for the fold ([`State::apply`] takes the
/// voided event with the void). Those already stored are read before the batch is
/// appended, so that a failed read stores nothing; those in the batch itself come
/// from its stored records.
///
/// [`State::apply`]: pacer_projections::State::apply
#[derive(Debug, Default)]
pub struct VoidTargets {
    stored: HashMap<String, Recorded>,
}

impl VoidTargets {
    /// Reads the stored events that the voids among `events` name.
    pub fn before_append(log: &mut Log, events: &[Event]) -> Result<VoidTargets, LogError> {
        let mut stored = HashMap::new();
        for id in events.iter().filter_map(void_target) {
            if stored.contains_key(id) {
                continue;
            }
            if let Some(rec) = log.event(id)? {
                stored.insert(id.to_owned(), rec);
            }
        }
        Ok(VoidTargets { stored })
    }

    /// For a record of the appended `batch`, what the fold takes with it: the event
    /// an `event_voided` names, stored before it.
    pub fn of<'a>(&'a self, rec: &Recorded, batch: &'a [Recorded]) -> Option<&'a Recorded> {
        let id = void_target(&rec.event)?;
        self.stored.get(id).or_else(|| {
            batch
                .iter()
                .find(|r| r.event.event_id == id && r.seq < rec.seq)
        })
    }
}

/// The key of part `part` of the span of record `seq` in tree `chunks`.
fn chunk_key(seq: u64, part: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&seq.to_be_bytes());
    k[8..].copy_from_slice(&part.to_be_bytes());
    k
}

/// The record of segment entry `entry` (of `seq`): the entry itself, or for a span
/// stub the record put back together from its chunks.
fn whole<'r>(
    seq: u64,
    entry: &'r [u8],
    chunks: &sled::Tree,
) -> Result<std::borrow::Cow<'r, [u8]>, LogError> {
    if entry.first() != Some(&SPAN) {
        return Ok(std::borrow::Cow::Borrowed(entry));
    }
    let corrupt = |reason: String| LogError::Corrupt { seq, reason };
    let field = |at: usize| {
        entry
            .get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(|b| u32::from_be_bytes(b) as usize)
    };
    let (Some(len), Some(parts), SPAN_STUB_BYTES) = (field(1), field(5), entry.len()) else {
        return Err(corrupt(format!("a span stub of {} bytes", entry.len())));
    };
    // A get per chunk, not a range: sled's cache counts a page only when it is
    // looked up (see `Segments`).
    let mut record = Vec::with_capacity(len.min(SEGMENT_BYTES_MAX * parts.min(1 << 16)));
    for part in 0..parts {
        let chunk = chunks
            .get(chunk_key(seq, part as u32))
            .map_err(|source| LogError::Storage {
                doing: "reading the chunks of a large record",
                source,
            })?
            .ok_or_else(|| corrupt(format!("chunk {part} of {parts} is missing")))?;
        record.extend_from_slice(&chunk);
    }
    if record.len() != len {
        return Err(corrupt(format!(
            "the record spans {len} bytes; its {parts} chunks hold {}",
            record.len()
        )));
    }
    Ok(std::borrow::Cow::Owned(record))
}

/// The stored value whose records include `seq`, if any: the segment with the
/// greatest first seq not after it.
fn segment_holding(events: &sled::Tree, seq: u64) -> Result<Option<Stored>, LogError> {
    let found = events
        .range(..=seq.to_be_bytes())
        .next_back()
        .transpose()
        .map_err(|source| LogError::Storage {
            doing: "reading a record",
            source,
        })?;
    let Some((k, v)) = found else {
        return Ok(None);
    };
    let first = seq_of_key(&k).map_err(|reason| LogError::Corrupt { seq: 0, reason })?;
    let stored = Stored::new(first, v)?;
    Ok((seq < stored.end()).then_some(stored))
}

/// Collects the records of one append into segments of at most
/// [`SEGMENT_BYTES_MAX`] bytes.
struct SegmentWriter {
    first: u64,
    count: u32,
    buf: Vec<u8>,
}

impl SegmentWriter {
    fn new(first: u64) -> Self {
        let mut w = SegmentWriter {
            first,
            count: 0,
            buf: Vec::new(),
        };
        w.start(first);
        w
    }

    fn start(&mut self, first: u64) {
        self.first = first;
        self.count = 0;
        self.buf.clear();
        self.buf.push(SEGMENT_V2);
        self.buf.extend_from_slice(&0u32.to_be_bytes());
    }

    /// Adds the record of `seq`, framing its `payload` (version, CRC) in place.
    /// Returns the segment it closed, if adding it would have made that one too
    /// large; and for a record too large for any segment, the framed record, which
    /// the caller stores in chunks (the segment holds its stub).
    /// A record of 4 GiB or more cannot be framed: the error says its size.
    #[allow(clippy::type_complexity)]
    fn push(
        &mut self,
        seq: u64,
        payload: &[u8],
    ) -> Result<(Option<(u64, Vec<u8>)>, Option<Vec<u8>>), String> {
        let record_len = HEADER_BYTES + payload.len();
        let len = u32::try_from(record_len).map_err(|_| {
            format!("the record of {record_len} bytes is larger than a log record can be (4 GiB)")
        })?;
        let span = SEGMENT_HEADER_BYTES + LENGTH_BYTES + record_len > SEGMENT_BYTES_MAX;
        let entry_len = if span { SPAN_STUB_BYTES } else { record_len };
        let closed = (self.count > 0
            && self.buf.len() + LENGTH_BYTES + entry_len > SEGMENT_BYTES_MAX)
            .then(|| {
                let done = self.take();
                self.start(seq);
                done
            });
        self.count += 1;
        let crc = crc32fast::hash(payload).to_be_bytes();
        if span {
            let mut record = Vec::with_capacity(record_len);
            record.push(RECORD_V1);
            record.extend_from_slice(&crc);
            record.extend_from_slice(payload);
            let parts = record_len.div_ceil(CHUNK_BYTES) as u32;
            self.buf
                .extend_from_slice(&(SPAN_STUB_BYTES as u32).to_be_bytes());
            self.buf.push(SPAN);
            self.buf.extend_from_slice(&len.to_be_bytes());
            self.buf.extend_from_slice(&parts.to_be_bytes());
            return Ok((closed, Some(record)));
        }
        self.buf.reserve(LENGTH_BYTES + record_len);
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.push(RECORD_V1);
        self.buf.extend_from_slice(&crc);
        self.buf.extend_from_slice(payload);
        Ok((closed, None))
    }

    /// The last segment, if it holds any record.
    fn finish(&mut self) -> Option<(u64, Vec<u8>)> {
        (self.count > 0).then(|| self.take())
    }

    fn take(&mut self) -> (u64, Vec<u8>) {
        self.buf[1..SEGMENT_HEADER_BYTES].copy_from_slice(&self.count.to_be_bytes());
        (self.first, std::mem::take(&mut self.buf))
    }
}

/// One stored value: a segment, or a single record of a `pacer-log/1` log.
struct Stored {
    first: u64,
    raw: sled::IVec,
    /// How many records it holds.
    len: u32,
}

impl Stored {
    fn new(first: u64, raw: sled::IVec) -> Result<Stored, LogError> {
        let len = match raw.first() {
            Some(&SEGMENT_V2) => {
                let count = raw
                    .get(1..SEGMENT_HEADER_BYTES)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map(u32::from_be_bytes)
                    .ok_or_else(|| LogError::Corrupt {
                        seq: first,
                        reason: format!("a segment of {} bytes has no header", raw.len()),
                    })?;
                if count == 0 {
                    return Err(LogError::Corrupt {
                        seq: first,
                        reason: "an empty segment".into(),
                    });
                }
                count
            }
            // A record of its own; its version is checked when it is decoded.
            _ => 1,
        };
        Ok(Stored { first, raw, len })
    }

    /// The seq after its last record (saturating: the first seq comes from a key on
    /// disk, which damage could make anything).
    fn end(&self) -> u64 {
        self.first.saturating_add(u64::from(self.len))
    }

    /// Where its first record starts.
    fn cursor(&self) -> Cursor {
        let segment = self.raw.first() == Some(&SEGMENT_V2);
        Cursor {
            segment,
            pos: if segment { SEGMENT_HEADER_BYTES } else { 0 },
            seq: self.first,
            left: self.len,
        }
    }

    /// Each record with its seq, in order; a damaged length ends it with an error
    /// naming the seq it was reading.
    fn records(&self) -> impl Iterator<Item = Result<(u64, &[u8]), LogError>> + '_ {
        let mut cursor = self.cursor();
        std::iter::from_fn(move || cursor.next(&self.raw))
    }
}

/// A position among the records of a [`Stored`] value.
struct Cursor {
    segment: bool,
    pos: usize,
    seq: u64,
    left: u32,
}

impl Cursor {
    /// The next record of `raw` (the value this cursor is for) and its seq.
    fn next<'a>(&mut self, raw: &'a [u8]) -> Option<Result<(u64, &'a [u8]), LogError>> {
        if self.left == 0 {
            // The header's count is not under a CRC: bytes past its last record mean
            // a damaged count, and the records in them would be skipped unseen.
            if self.segment && self.pos < raw.len() {
                self.pos = raw.len();
                return Some(Err(LogError::Corrupt {
                    seq: self.seq,
                    reason: "the segment holds bytes after the records its header counts".into(),
                }));
            }
            return None;
        }
        self.left -= 1;
        let seq = self.seq;
        self.seq = self.seq.saturating_add(1);
        if !self.segment {
            return Some(Ok((seq, raw)));
        }
        let record = raw
            .get(self.pos..self.pos + LENGTH_BYTES)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(|b| u32::from_be_bytes(b) as usize)
            .and_then(|len| {
                let start = self.pos + LENGTH_BYTES;
                raw.get(start..start.checked_add(len)?)
            });
        match record {
            Some(r) => {
                self.pos += LENGTH_BYTES + r.len();
                Some(Ok((seq, r)))
            }
            None => {
                self.left = 0;
                Some(Err(LogError::Corrupt {
                    seq,
                    reason: "the segment ends inside the record".into(),
                }))
            }
        }
    }
}

/// A read-only view of the stored events; see [`Log::reader`].
#[derive(Clone)]
pub struct LogReader {
    events: sled::Tree,
    voids: sled::Tree,
    chunks: sled::Tree,
}

impl LogReader {
    /// See [`Log::get`].
    pub fn get(&self, seq: u64) -> Result<Option<Recorded>, LogError> {
        let Some(stored) = segment_holding(&self.events, seq)? else {
            return Ok(None);
        };
        for record in stored.records() {
            let (at, raw) = record?;
            if at == seq {
                let raw = whole(seq, raw, &self.chunks)?;
                return decode_record(seq, &raw).map(Some);
            }
        }
        Ok(None)
    }

    /// The event id of the record at `seq`, read without decoding the whole event.
    pub fn event_id(&self, seq: u64) -> Result<String, LogError> {
        let stored = segment_holding(&self.events, seq)?.ok_or_else(|| LogError::Corrupt {
            seq,
            reason: "the id index names a seq the log does not hold".into(),
        })?;
        for record in stored.records() {
            let (at, raw) = record?;
            if at == seq {
                let raw = whole(seq, raw, &self.chunks)?;
                return record_id(seq, &raw).map(str::to_owned);
            }
        }
        Err(LogError::Corrupt {
            seq,
            reason: "the segment that should hold it does not".into(),
        })
    }

    /// What [`State::apply`](pacer_projections::State::apply) takes with an event:
    /// for an `event_voided`, the event it names, if the log holds it before the
    /// void; `None` for every other event.
    pub fn void_target(&self, rec: &Recorded) -> Result<Option<Recorded>, LogError> {
        if void_target(&rec.event).is_none() {
            return Ok(None);
        }
        let target = self
            .voids
            .get(rec.seq.to_be_bytes())
            .map_err(|source| LogError::Storage {
                doing: "reading the target of a void",
                source,
            })?;
        let Some(target) = target else {
            return Ok(None);
        };
        let seq = seq_of_key(&target).map_err(|reason| LogError::Corrupt {
            seq: rec.seq,
            reason: format!("the target of the void: {reason}"),
        })?;
        Ok(self.get(seq)?.filter(|target| target.seq < rec.seq))
    }

    /// See [`Log::iter_from`].
    pub fn iter_from(&self, from_seq: u64) -> LogIter {
        // Start at the segment that holds `from_seq`, if one does.
        let start = match segment_holding(&self.events, from_seq) {
            Ok(Some(stored)) => stored.first,
            Ok(None) => from_seq,
            Err(e) => {
                return LogIter {
                    inner: Segments::from(&self.events, from_seq),
                    chunks: self.chunks.clone(),
                    current: None,
                    from_seq,
                    failed: Some(e),
                    done: false,
                }
            }
        };
        LogIter {
            inner: Segments::from(&self.events, start),
            chunks: self.chunks.clone(),
            current: None,
            from_seq,
            failed: None,
            done: false,
        }
    }
}

/// The stored values (segments) in seq order, from the one whose key is `from`.
///
/// Each is fetched by its key (the seq after the previous one's last record), not
/// with a sled iterator: sled's cache counts a page only when it is looked up often
/// enough, which a `get` per segment does and an iterator (one look-up per page)
/// does not, so a scan would otherwise keep every page it read in memory (sled
/// issue 1036). The keys of a log are contiguous (an append is all or nothing), so
/// a gap (a damaged key or count) is reported as corruption, not skipped.
struct Segments {
    events: sled::Tree,
    next: Option<u64>,
}

impl Segments {
    fn from(events: &sled::Tree, from: u64) -> Segments {
        Segments {
            events: events.clone(),
            next: Some(from),
        }
    }

    fn fetch(&self, key: u64) -> Result<Option<(u64, sled::IVec)>, LogError> {
        let storage = |source| LogError::Storage {
            doing: "reading the log",
            source,
        };
        if let Some(v) = self.events.get(key.to_be_bytes()).map_err(storage)? {
            return Ok(Some((key, v)));
        }
        match self.events.range(key.to_be_bytes()..).next() {
            None => Ok(None),
            Some(Err(source)) => Err(storage(source)),
            Some(Ok((k, _))) => Err(LogError::Corrupt {
                seq: key,
                reason: match seq_of_key(&k) {
                    Ok(next) => {
                        format!("no segment starts at seq {key}; the next starts at {next}")
                    }
                    Err(reason) => reason,
                },
            }),
        }
    }
}

impl Iterator for Segments {
    type Item = Result<Stored, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        let key = self.next.take()?;
        let (first, raw) = match self.fetch(key) {
            Ok(found) => found?,
            Err(e) => return Some(Err(e)),
        };
        let stored = match Stored::new(first, raw) {
            Ok(s) => s,
            Err(e) => return Some(Err(e)),
        };
        // A damaged count that points back would loop: the log ends there instead.
        self.next = Some(stored.end()).filter(|&end| end > first);
        Some(Ok(stored))
    }
}

/// Iterator over stored events; see [`Log::iter_from`].
pub struct LogIter {
    inner: Segments,
    chunks: sled::Tree,
    /// The value being read, and the next record's position in it.
    current: Option<(Stored, Cursor)>,
    from_seq: u64,
    /// An error to report next (then nothing more).
    failed: Option<LogError>,
    /// Set after an error.
    done: bool,
}

impl LogIter {
    /// Reports `e`; nothing comes after it.
    fn failed(&mut self, e: LogError) -> Option<Result<Recorded, LogError>> {
        self.current = None;
        self.done = true;
        Some(Err(e))
    }
}

impl Iterator for LogIter {
    type Item = Result<Recorded, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Some(e) = self.failed.take() {
            return self.failed(e);
        }
        loop {
            if let Some((stored, cursor)) = &mut self.current {
                if let Some(item) = cursor.next(&stored.raw) {
                    let (at, raw) = match item {
                        Ok(r) => r,
                        Err(e) => return self.failed(e),
                    };
                    if at < self.from_seq {
                        continue;
                    }
                    return match whole(at, raw, &self.chunks).and_then(|r| decode_record(at, &r)) {
                        Ok(rec) => Some(Ok(rec)),
                        Err(e) => self.failed(e),
                    };
                }
                self.current = None;
            }
            let stored = match self.inner.next()? {
                Ok(s) => s,
                Err(e) => return self.failed(e),
            };
            let cursor = stored.cursor();
            self.current = Some((stored, cursor));
        }
    }
}

/// sled's page cache (its default is 1 GiB). The log is appended at its end and read
/// front to back on a rebuild, so a large cache mostly holds pages that will not be
/// read again, and it would count against the engine's memory beside the
/// projections; the operating system's file cache still serves re-reads.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// How long `open` waits for another holder of the log to let go of it (a process
/// that is exiting, or a handle being dropped) before saying the log is in use.
const LOCK_WAIT_MS: u64 = 3_000;

fn open_db(dir: &Path) -> Result<sled::Db, LogError> {
    let mut waited_ms = 0;
    loop {
        match sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            .open()
        {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                if waited_ms >= LOCK_WAIT_MS {
                    return Err(LogError::Locked {
                        path: dir.to_owned(),
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
                waited_ms += 20;
            }
            Err(source) => {
                return Err(LogError::Open {
                    path: dir.to_owned(),
                    source,
                })
            }
        }
    }
}

fn seq_of_key(k: &[u8]) -> Result<u64, String> {
    let bytes: [u8; 8] = k
        .try_into()
        .map_err(|_| format!("a key of {} bytes is not a u64 seq", k.len()))?;
    Ok(u64::from_be_bytes(bytes))
}

#[cfg(test)]
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.push(RECORD_V1);
    out.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Checks one framed record and reads only its event id (the id index is built from
/// them without decoding whole events).
fn record_id(seq: u64, raw: &[u8]) -> Result<&str, LogError> {
    let corrupt = |reason: String| LogError::Corrupt { seq, reason };
    let payload = checked_payload(seq, raw)?;
    // The payload starts with `Recorded`'s seq and `recorded_at`, then the event's id.
    let ((at, _, id), _) =
        bincode::borrow_decode_from_slice::<(u64, Timestamp, &str), _>(payload, bincode_config())
            .map_err(|e| corrupt(format!("payload does not decode: {e}")))?;
    if at != seq {
        return Err(corrupt(format!(
            "the record says seq {at}, its key says {seq}"
        )));
    }
    Ok(id)
}

/// The payload of a framed record, once its version is known and its CRC matches.
fn checked_payload(seq: u64, raw: &[u8]) -> Result<&[u8], LogError> {
    let corrupt = |reason: String| LogError::Corrupt { seq, reason };
    if raw.len() < HEADER_BYTES {
        return Err(corrupt(format!(
            "the record has {} bytes, fewer than its header",
            raw.len()
        )));
    }
    let version = raw[0];
    let crc = u32::from_be_bytes([raw[1], raw[2], raw[3], raw[4]]);
    let payload = &raw[HEADER_BYTES..];
    let actual = crc32fast::hash(payload);
    if crc != actual {
        return Err(corrupt(format!(
            "CRC mismatch (stored {crc:08x}, computed {actual:08x})"
        )));
    }
    if version != RECORD_V1 {
        return Err(corrupt(format!("unknown record format version {version}")));
    }
    Ok(payload)
}

/// Brings a `pacer-log/1` or `/2` log to this format: the void targets its `ids` tree
/// knew go into `voids` (the caller then marks the format; `open` drops `ids`).
fn upgrade(db: &sled::Db, events: &sled::Tree, voids: &sled::Tree) -> Result<(), LogError> {
    let storage = |source| LogError::Storage {
        doing: "upgrading the log's format",
        source,
    };
    let ids = db.open_tree("ids").map_err(storage)?;
    let reader = LogReader {
        events: events.clone(),
        voids: voids.clone(),
        chunks: db.open_tree("chunks").map_err(storage)?,
    };
    for rec in reader.iter_from(1) {
        // A damaged record ends the upgrade there: the log must still open, and
        // whoever reads it reports the damage with its seq.
        let Ok(rec) = rec else {
            break;
        };
        let Some(target) = void_target(&rec.event) else {
            continue;
        };
        let Some(seq) = ids.get(target).map_err(storage)? else {
            continue;
        };
        let seq = seq_of_key(&seq).map_err(|reason| LogError::Corrupt {
            seq: rec.seq,
            reason: format!("the old id index: {reason}"),
        })?;
        if seq < rec.seq {
            voids
                .insert(rec.seq.to_be_bytes(), &seq.to_be_bytes())
                .map_err(storage)?;
        }
    }
    db.flush().map_err(storage)?;
    Ok(())
}

/// Checks and decodes one framed record, routing on its format version.
fn decode_record(seq: u64, raw: &[u8]) -> Result<Recorded, LogError> {
    let corrupt = |reason: String| LogError::Corrupt { seq, reason };
    // The version byte routes decoding; RECORD_V1 is the only one so far.
    let payload = checked_payload(seq, raw)?;
    let (rec, used) = bincode::decode_from_slice::<Recorded, _>(payload, bincode_config())
        .map_err(|e| corrupt(format!("payload does not decode: {e}")))?;
    if used != payload.len() {
        return Err(corrupt(format!(
            "{} trailing bytes after the payload",
            payload.len() - used
        )));
    }
    if rec.seq != seq {
        return Err(corrupt(format!(
            "the record says seq {}, its key says {seq}",
            rec.seq
        )));
    }
    Ok(rec)
}

/// Test support: changes the stored bytes of record `seq` (its version byte, CRC
/// and payload) behind the log's back, as a bad disk or a stray write would.
#[cfg(test)]
pub(crate) fn damage_record(dir: &Path, seq: u64, edit: impl FnOnce(&mut [u8])) {
    damage_segment(dir, seq, |stored, value| {
        let base = stored.raw.as_ptr() as usize;
        let (_, raw) = stored
            .records()
            .map(Result::unwrap)
            .find(|(at, _)| *at == seq)
            .unwrap();
        let start = raw.as_ptr() as usize - base;
        edit(&mut value[start..start + raw.len()]);
    });
}

/// Test support: changes the stored bytes of the segment holding `seq` (given as
/// read, and as bytes to edit) behind the log's back.
#[cfg(test)]
fn damage_segment(dir: &Path, seq: u64, edit: impl FnOnce(&Stored, &mut Vec<u8>)) {
    let db = open_db(dir).unwrap();
    let events = db.open_tree("events").unwrap();
    let stored = segment_holding(&events, seq).unwrap().unwrap();
    let mut value = stored.raw.to_vec();
    edit(&stored, &mut value);
    events.insert(stored.first.to_be_bytes(), value).unwrap();
    db.flush().unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(id: &str) -> Event {
        Event {
            event_id: id.into(),
            source: "test".into(),
            occurred_at: Timestamp::parse_rfc3339("2026-11-18T09:00:00Z").unwrap(),
            body: EventBody::ClockTick,
        }
    }

    fn at() -> Timestamp {
        Timestamp::parse_rfc3339("2026-11-18T09:00:01Z").unwrap()
    }

    #[test]
    fn exchange_rates_are_kept_beside_the_events_the_last_one_winning() {
        let dir = tempfile::tempdir().unwrap();
        let usd = Currency::from_code("USD").unwrap();
        let nov = Month::parse("2026-11").unwrap();
        let rate = |id: &str, r: &str| Event {
            event_id: id.into(),
            source: "test".into(),
            occurred_at: at(),
            body: EventBody::FxRateSet(pacer_projections::event::FxRateSet {
                currency: usd,
                month: nov,
                rate: FxRate::parse(r).unwrap(),
            }),
        };
        {
            let mut log = Log::open(dir.path()).unwrap();
            log.append_batch(vec![rate("r1", "0.9"), tick("t")], at())
                .unwrap();
            log.append_batch(vec![rate("r2", "0.95")], at()).unwrap();
        }
        let log = Log::open(dir.path()).unwrap();
        let table = log.fx_table().unwrap();
        assert_eq!(table.rate(usd, nov), Some(FxRate::parse("0.95").unwrap()));
        assert_eq!(table.iter().count(), 1);
    }

    #[test]
    fn recorded_at_never_steps_back_even_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let late = Timestamp::parse_rfc3339("2026-11-18T10:00:00Z").unwrap();
        {
            let mut log = Log::open(dir.path()).unwrap();
            log.append_batch(vec![tick("a")], late).unwrap();
            // The wall clock stepped back an hour.
            log.append_batch(vec![tick("b")], at()).unwrap();
        }
        let mut log = Log::open(dir.path()).unwrap();
        log.append_batch(vec![tick("c")], at()).unwrap();
        let times: Vec<Timestamp> = log.iter_from(1).map(|r| r.unwrap().recorded_at).collect();
        assert_eq!(times, vec![late, late, late]);
        assert_eq!(log.last_recorded_at(), Some(late));
    }

    #[test]
    fn appends_are_idempotent_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = Log::open(dir.path()).unwrap();
            let out = log
                .append_batch(vec![tick("a"), tick("b"), tick("a")], at())
                .unwrap();
            assert_eq!(
                out,
                vec![
                    Appended::Stored(1),
                    Appended::Stored(2),
                    Appended::Duplicate(1)
                ]
            );
        }
        let mut log = Log::open(dir.path()).unwrap();
        assert_eq!(log.last_seq(), 2);
        let out = log.append_batch(vec![tick("b"), tick("c")], at()).unwrap();
        assert_eq!(out, vec![Appended::Duplicate(2), Appended::Stored(3)]);
        let ids: Vec<String> = log
            .iter_from(1)
            .map(|r| r.unwrap().event.event_id)
            .collect();
        assert_eq!(ids, ["a", "b", "c"]);
        let from2: Vec<u64> = log.iter_from(2).map(|r| r.unwrap().seq).collect();
        assert_eq!(from2, [2, 3]);
        assert_eq!(log.get(3).unwrap().unwrap().recorded_at, at());
    }

    #[test]
    fn the_log_remembers_its_currency_and_time_zone() {
        let dir = tempfile::tempdir().unwrap();
        let eur = Currency::from_code("EUR").unwrap();
        let org = |currency, timezone| OrgConfig {
            timezone,
            currency,
            fiscal_year_start_month: 1,
            alerts: Default::default(),
            pace: Default::default(),
        };
        let mut log = Log::open(dir.path()).unwrap();
        log.bind_org(&org(eur, chrono_tz::UTC)).unwrap();
        log.bind_org(&org(eur, chrono_tz::UTC)).unwrap();
        let jpy = Currency::from_code("JPY").unwrap();
        let err = log
            .bind_org(&org(jpy, chrono_tz::UTC))
            .unwrap_err()
            .to_string();
        assert!(err.contains("EUR") && err.contains("JPY"), "{err}");
        let err = log
            .bind_org(&org(eur, chrono_tz::Europe::Berlin))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("UTC") && err.contains("Europe/Berlin"),
            "{err}"
        );
    }

    #[test]
    fn a_flipped_bit_is_reported_with_its_seq() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = Log::open(dir.path()).unwrap();
            log.append_batch(vec![tick("a"), tick("b"), tick("c")], at())
                .unwrap();
        }
        damage_record(dir.path(), 2, |raw| {
            let last = raw.len() - 1;
            raw[last] ^= 0x04;
        });
        let log = Log::open(dir.path()).unwrap();
        let results: Vec<_> = log.iter_from(1).collect();
        assert_eq!(results.len(), 2, "replay stops at the corrupt record");
        assert!(results[0].is_ok());
        let err = results[1].as_ref().unwrap_err().to_string();
        assert!(err.contains("seq 2") && err.contains("CRC"), "{err}");
        assert!(log.get(2).unwrap_err().to_string().contains("seq 2"));
        assert_eq!(log.get(3).unwrap().unwrap().event.event_id, "c");
    }

    #[test]
    fn an_unknown_record_version_is_an_error_not_a_guess() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = Log::open(dir.path()).unwrap();
            log.append_batch(vec![tick("a")], at()).unwrap();
        }
        damage_record(dir.path(), 1, |raw| raw[0] = 9);
        let log = Log::open(dir.path()).unwrap();
        let err = log.iter_from(1).next().unwrap().unwrap_err().to_string();
        assert!(err.contains("seq 1") && err.contains("version 9"), "{err}");
    }

    /// `n` ticks with ids `{prefix}0`...
    fn ticks(prefix: &str, n: usize) -> Vec<Event> {
        (0..n).map(|i| tick(&format!("{prefix}{i}"))).collect()
    }

    #[test]
    fn a_large_append_is_split_into_segments_that_read_back_from_any_seq() {
        let dir = tempfile::tempdir().unwrap();
        let n = 5_000;
        let mut log = Log::open(dir.path()).unwrap();
        log.append_batch(ticks("t", n), at()).unwrap();
        log.append_batch(ticks("u", 3), at()).unwrap();
        let total = n as u64 + 3;
        let keys: Vec<u64> = log
            .events
            .iter()
            .keys()
            .map(|k| seq_of_key(&k.unwrap()).unwrap())
            .collect();
        assert!(
            keys.len() > 2 && keys.len() < 100,
            "{} keys for {total} events",
            keys.len()
        );
        for v in log.events.iter().values() {
            assert!(v.unwrap().len() <= SEGMENT_BYTES_MAX);
        }
        // Every segment edge, and either side of it.
        let mut starts: Vec<u64> = keys.iter().flat_map(|&k| [k - 1, k, k + 1]).collect();
        starts.extend([total, total + 1]);
        for from in starts.into_iter().filter(|&s| s >= 1) {
            let seqs: Vec<u64> = log.iter_from(from).map(|r| r.unwrap().seq).collect();
            let want: Vec<u64> = (from..=total).collect();
            assert_eq!(seqs, want, "from {from}");
            if from <= total {
                assert_eq!(log.get(from).unwrap().unwrap().seq, from);
            }
        }
        assert!(log.get(total + 1).unwrap().is_none());
        drop(log);
        let mut log = Log::open(dir.path()).unwrap();
        assert_eq!(log.last_seq(), total);
        assert_eq!(log.seq_of("t4999").unwrap(), Some(n as u64));
        let out = log
            .append_batch(vec![tick("t17"), tick("v")], at())
            .unwrap();
        assert_eq!(out, [Appended::Duplicate(18), Appended::Stored(total + 1)]);
    }

    #[test]
    fn a_log_of_the_first_format_is_read_and_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        {
            // A pacer-log/1 log: one record per key.
            let db = open_db(dir.path()).unwrap();
            db.open_tree("meta")
                .unwrap()
                .insert("format", FORMAT_V1)
                .unwrap();
            let events = db.open_tree("events").unwrap();
            let ids = db.open_tree("ids").unwrap();
            for (seq, id) in [(1u64, "a"), (2, "b")] {
                let rec = Recorded {
                    seq,
                    recorded_at: at(),
                    event: tick(id),
                };
                let payload = bincode::encode_to_vec(&rec, bincode_config()).unwrap();
                events.insert(seq.to_be_bytes(), frame(&payload)).unwrap();
                ids.insert(id, &seq.to_be_bytes()).unwrap();
            }
            db.flush().unwrap();
        }
        let mut log = Log::open(dir.path()).unwrap();
        assert_eq!(log.meta("format").unwrap().as_deref(), Some(FORMAT));
        assert_eq!(log.last_seq(), 2);
        assert_eq!(log.last_recorded_at(), Some(at()));
        let out = log.append_batch(vec![tick("b"), tick("c")], at()).unwrap();
        assert_eq!(out, [Appended::Duplicate(2), Appended::Stored(3)]);
        let ids: Vec<String> = log
            .iter_from(2)
            .map(|r| r.unwrap().event.event_id)
            .collect();
        assert_eq!(ids, ["b", "c"]);
        assert_eq!(log.get(1).unwrap().unwrap().event.event_id, "a");
    }

    #[test]
    fn ids_that_share_a_hash_are_each_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path()).unwrap();
        // Every id hashes the same: each after the first is a collision, with a
        // stored id or with one earlier in its batch.
        log.id_index().unwrap();
        log.ids.as_mut().unwrap().colliding = true;
        log.append_batch(vec![tick("a")], at()).unwrap();
        let out = log
            .append_batch(vec![tick("b"), tick("c"), tick("b"), tick("a")], at())
            .unwrap();
        assert_eq!(
            out,
            [
                Appended::Stored(2),
                Appended::Stored(3),
                Appended::Duplicate(2),
                Appended::Duplicate(1)
            ]
        );
        let out = log
            .append_batch(vec![tick("c"), tick("d"), tick("a")], at())
            .unwrap();
        assert_eq!(
            out,
            [
                Appended::Duplicate(3),
                Appended::Stored(4),
                Appended::Duplicate(1)
            ]
        );
        assert_eq!(log.seq_of("d").unwrap(), Some(4));
        assert_eq!(log.seq_of("e").unwrap(), None);
        assert_eq!(log.ids.as_ref().unwrap().shared(), 3);
        // Reopened, the index is built from the records again.
        drop(log);
        let mut log = Log::open(dir.path()).unwrap();
        for (id, seq) in [("a", 1), ("b", 2), ("c", 3), ("d", 4)] {
            assert_eq!(log.seq_of(id).unwrap(), Some(seq), "{id}");
        }
    }

    fn void(id: &str, target: &str) -> Event {
        Event {
            event_id: id.into(),
            source: "test".into(),
            occurred_at: at(),
            body: EventBody::EventVoided(pacer_projections::event::EventVoided {
                voided_event_id: target.into(),
                reason: None,
            }),
        }
    }

    #[test]
    fn a_void_is_read_back_with_the_event_it_names_when_that_came_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path()).unwrap();
        log.append_batch(vec![tick("a"), void("v1", "a")], at())
            .unwrap();
        // Before the event it names: nothing to hand over, now or later.
        log.append_batch(
            vec![void("v2", "b"), tick("b"), void("v3", "nothing")],
            at(),
        )
        .unwrap();
        log.append_batch(vec![void("v4", "b")], at()).unwrap();
        drop(log);
        let log = Log::open(dir.path()).unwrap();
        let reader = log.reader();
        let targets: Vec<(String, Option<u64>)> = log
            .iter_from(1)
            .map(|r| {
                let r = r.unwrap();
                let t = reader.void_target(&r).unwrap().map(|t| t.seq);
                (r.event.event_id, t)
            })
            .collect();
        let want: Vec<(String, Option<u64>)> = [
            ("a", None),
            ("v1", Some(1)),
            ("v2", None),
            ("b", None),
            ("v3", None),
            ("v4", Some(4)),
        ]
        .into_iter()
        .map(|(id, t)| (id.to_owned(), t))
        .collect();
        assert_eq!(targets, want);
    }

    #[test]
    fn a_log_of_the_second_format_keeps_its_void_targets_and_drops_its_id_tree() {
        let dir = tempfile::tempdir().unwrap();
        {
            // A pacer-log/2 log: segments, and an `ids` tree beside them.
            let mut log = Log::open(dir.path()).unwrap();
            log.append_batch(vec![tick("a"), void("v", "a"), tick("b")], at())
                .unwrap();
            log.voids.clear().unwrap();
            log.meta.insert("format", FORMAT_V2).unwrap();
            let ids = log.db.open_tree("ids").unwrap();
            for (id, seq) in [("a", 1u64), ("v", 2), ("b", 3)] {
                ids.insert(id, &seq.to_be_bytes()).unwrap();
            }
            log.db.flush().unwrap();
        }
        let mut log = Log::open(dir.path()).unwrap();
        assert_eq!(log.meta("format").unwrap().as_deref(), Some(FORMAT));
        assert!(!log.db.tree_names().iter().any(|n| n.as_ref() == b"ids"));
        let void = log.get(2).unwrap().unwrap();
        assert_eq!(log.reader().void_target(&void).unwrap().unwrap().seq, 1);
        let out = log.append_batch(vec![tick("b"), tick("c")], at()).unwrap();
        assert_eq!(out, [Appended::Duplicate(3), Appended::Stored(4)]);
    }

    /// A tick whose `source` is `bytes` long: a record too large for a segment.
    fn large(id: &str, bytes: usize) -> Event {
        Event {
            source: "s".repeat(bytes),
            ..tick(id)
        }
    }

    #[test]
    fn a_record_too_large_for_a_segment_is_stored_in_chunks_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = Log::open(dir.path()).unwrap();
            let mut batch = ticks("t", 3);
            batch.insert(1, large("big", 5 * SEGMENT_BYTES_MAX + 17));
            batch.push(large("edge", SEGMENT_BYTES_MAX));
            log.append_batch(batch, at()).unwrap();
            log.append_batch(vec![large("big", 9), tick("after")], at())
                .unwrap();
            for tree in [&log.events, &log.chunks] {
                for v in tree.iter().values() {
                    assert!(v.unwrap().len() <= SEGMENT_BYTES_MAX);
                }
            }
            assert!(log.chunks.len() >= 6, "{} chunks", log.chunks.len());
        }
        let mut log = Log::open(dir.path()).unwrap();
        let read: Vec<(u64, String, usize)> = log
            .iter_from(1)
            .map(|r| {
                let r = r.unwrap();
                (r.seq, r.event.event_id, r.event.source.len())
            })
            .collect();
        let want = [
            (1, "t0", 4),
            (2, "big", 5 * SEGMENT_BYTES_MAX + 17),
            (3, "t1", 4),
            (4, "t2", 4),
            (5, "edge", SEGMENT_BYTES_MAX),
            (6, "after", 4),
        ];
        let want: Vec<(u64, String, usize)> = want
            .into_iter()
            .map(|(s, id, n)| (s, id.to_owned(), n))
            .collect();
        assert_eq!(read, want);
        assert_eq!(log.get(2).unwrap().unwrap().event.event_id, "big");
        assert_eq!(log.iter_from(3).next().unwrap().unwrap().seq, 3);
        // The id index, built from the records, reads the span's id.
        assert_eq!(log.seq_of("big").unwrap(), Some(2));
        assert_eq!(log.last_recorded_at(), Some(at()));
    }

    #[test]
    fn a_damaged_or_missing_chunk_is_reported_with_the_seq_of_its_record() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = Log::open(dir.path()).unwrap();
            let batch = vec![tick("a"), large("big", 3 * SEGMENT_BYTES_MAX), tick("c")];
            log.append_batch(batch, at()).unwrap();
            // A bit flipped in the second chunk.
            let mut chunk = log.chunks.get(chunk_key(2, 1)).unwrap().unwrap().to_vec();
            chunk[10] ^= 0x01;
            log.chunks.insert(chunk_key(2, 1), chunk).unwrap();
        }
        let log = Log::open(dir.path()).unwrap();
        let results: Vec<_> = log.iter_from(1).collect();
        assert_eq!(results.len(), 2);
        let err = results[1].as_ref().unwrap_err().to_string();
        assert!(err.contains("seq 2") && err.contains("CRC"), "{err}");
        log.chunks.remove(chunk_key(2, 1)).unwrap();
        let err = log.get(2).unwrap_err().to_string();
        assert!(err.contains("seq 2") && err.contains("missing"), "{err}");
        assert_eq!(log.get(3).unwrap().unwrap().event.event_id, "c");
    }

    #[test]
    fn a_missing_segment_is_reported_with_its_seq_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = Log::open(dir.path()).unwrap();
            log.append_batch(ticks("a", 2), at()).unwrap();
            log.append_batch(ticks("b", 2), at()).unwrap();
            log.append_batch(ticks("c", 1), at()).unwrap();
            // The second append's segment is lost.
            log.events.remove(3u64.to_be_bytes()).unwrap();
            log.db.flush().unwrap();
        }
        let log = Log::open(dir.path()).unwrap();
        let results: Vec<_> = log.iter_from(1).collect();
        assert_eq!(results.len(), 3);
        assert!(results[..2].iter().all(Result::is_ok));
        let err = results[2].as_ref().unwrap_err().to_string();
        assert!(
            err.contains("seq 3") && err.contains("starts at 5"),
            "{err}"
        );
    }

    #[test]
    fn an_old_log_with_a_damaged_record_still_opens_and_reports_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = Log::open(dir.path()).unwrap();
            log.append_batch(vec![tick("a"), tick("b"), void("v", "a")], at())
                .unwrap();
            log.meta.insert("format", FORMAT_V2).unwrap();
            log.db.flush().unwrap();
        }
        damage_record(dir.path(), 2, |raw| {
            let last = raw.len() - 1;
            raw[last] ^= 0x01;
        });
        let log = Log::open(dir.path()).unwrap();
        assert_eq!(log.meta("format").unwrap().as_deref(), Some(FORMAT));
        let err = log.iter_from(1).nth(1).unwrap().unwrap_err().to_string();
        assert!(err.contains("seq 2"), "{err}");
    }

    #[test]
    fn a_damaged_segment_length_is_reported_with_the_seq_it_was_reading() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = Log::open(dir.path()).unwrap();
            log.append_batch(ticks("t", 4), at()).unwrap();
        }
        // The third record's length now runs past the segment's end.
        damage_segment(dir.path(), 1, |stored, raw| {
            let third = stored.records().nth(2).unwrap().unwrap().1.as_ptr() as usize
                - stored.raw.as_ptr() as usize;
            raw[third - LENGTH_BYTES..third].copy_from_slice(&u32::MAX.to_be_bytes());
        });
        let log = Log::open(dir.path()).unwrap();
        let results: Vec<_> = log.iter_from(1).collect();
        assert_eq!(results.len(), 3);
        assert!(results[..2].iter().all(Result::is_ok));
        let err = results[2].as_ref().unwrap_err().to_string();
        assert!(err.contains("seq 3"), "{err}");
    }

    #[test]
    fn a_segment_count_lowered_by_damage_is_reported_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = Log::open(dir.path()).unwrap();
            log.append_batch(ticks("t", 4), at()).unwrap();
        }
        // The header now counts two records of the four.
        damage_segment(dir.path(), 1, |_, raw| {
            raw[1..SEGMENT_HEADER_BYTES].copy_from_slice(&2u32.to_be_bytes());
        });
        let log = Log::open(dir.path()).unwrap();
        let results: Vec<_> = log.iter_from(1).collect();
        assert_eq!(results.len(), 3);
        assert!(results[..2].iter().all(Result::is_ok));
        let err = results[2].as_ref().unwrap_err().to_string();
        assert!(err.contains("seq 3"), "{err}");
    }
}
