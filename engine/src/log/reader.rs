//! Reading the log: [`LogReader`], a read-only handle that other threads hold while
//! the log appends, and [`LogIter`], the stored events from a seq on, in order.
//!
//! Scans go through [`Segments`], which fetches each stored value by its key so that
//! sled's cache counts (and evicts) the pages a scan reads.

use pacer_projections::event::Recorded;
use pacer_projections::state::void_target;

use crate::error::LogError;

use super::record::{decode_record, record_id, seq_of_key};
use super::segment::{segment_holding, whole, Cursor, Stored};

/// A read-only view of the stored events; see [`Log::reader`](super::writer::Log::reader).
#[derive(Clone)]
pub struct LogReader {
    pub(super) events: sled::Tree,
    pub(super) voids: sled::Tree,
    pub(super) chunks: sled::Tree,
}

impl LogReader {
    /// See [`Log::get`](super::writer::Log::get).
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

    /// See [`Log::iter_from`](super::writer::Log::iter_from).
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
pub(super) struct Segments {
    events: sled::Tree,
    next: Option<u64>,
}

impl Segments {
    pub(super) fn from(events: &sled::Tree, from: u64) -> Segments {
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

/// Iterator over stored events; see [`Log::iter_from`](super::writer::Log::iter_from).
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
    fn failed<T>(&mut self, e: LogError) -> Option<Result<T, LogError>> {
        self.current = None;
        self.done = true;
        Some(Err(e))
    }
}

impl LogIter {
    /// The next record and the bytes it takes in the log (what decoding it cost, as
    /// far as a reader that bounds its read-ahead by bytes needs to know).
    pub fn next_sized(&mut self) -> Option<Result<(Recorded, usize), LogError>> {
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
                    let decoded = whole(at, raw, &self.chunks)
                        .and_then(|r| decode_record(at, &r).map(|rec| (rec, r.len())));
                    return match decoded {
                        Ok(sized) => Some(Ok(sized)),
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

impl Iterator for LogIter {
    type Item = Result<Recorded, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_sized().map(|r| r.map(|(rec, _)| rec))
    }
}
