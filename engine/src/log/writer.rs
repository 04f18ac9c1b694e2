//! [`Log`], the handle that holds the log open and appends to it: opening it (and
//! upgrading an older format), its metadata and exchange rates, the id index that
//! makes appends idempotent, and the append path, which writes a batch to its trees
//! in one transaction and flushes once. Also [`VoidTargets`], the stored events the
//! voids of a batch name, read before the batch is appended.

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

use super::ids::IdIndex;
use super::reader::{LogIter, LogReader, Segments};
use super::record::{bincode_config, decode_record, record_id, seq_of_key};
use super::segment::{chunk_key, whole, SegmentWriter, Stored, CHUNK_BYTES};
use super::upgrade::{open_db, upgrade, FORMAT, FORMAT_V1, FORMAT_V2};

/// The most ids the id index makes room for before it has read any.
const ID_CAPACITY_HINT_MAX: usize = 1 << 22;

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
    pub(super) db: sled::Db,
    pub(super) events: sled::Tree,
    /// Seq of an `event_voided` → seq of the event it names, stored before it.
    pub(super) voids: sled::Tree,
    /// The pieces of records too large for a segment (spans).
    pub(super) chunks: sled::Tree,
    pub(super) meta: sled::Tree,
    /// `CUR:YYYY-MM` → the latest `fx_rate_set` rate (ten-decimal integer, BE): written
    /// in the same transaction as the events, so validation reads the rates without
    /// scanning the log.
    fx: sled::Tree,
    /// Built from the records on first use (see the `log` module docs).
    pub(super) ids: Option<IdIndex>,
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
    /// (see [`ids`](super::ids)).
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
    pub(super) fn id_index(&mut self) -> Result<&IdIndex, LogError> {
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
        self.note_meta(key, value)?;
        self.flush()
    }

    /// Writes a metadata value without flushing: it becomes durable with the next
    /// flush (the next append's). For a mark that may fall back after a crash but
    /// never runs ahead of what it marks, such as how far publishing got.
    pub fn note_meta(&mut self, key: &str, value: &str) -> Result<(), LogError> {
        self.meta
            .insert(key, value)
            .map_err(|source| LogError::Storage {
                doing: "writing metadata",
                source,
            })?;
        Ok(())
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
