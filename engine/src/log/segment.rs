//! The segment format: how the records of one append are packed into sled values.
//!
//! A segment is `[2: u8][records: u32 BE]`, then each record as `[length: u32 BE]
//! [record]`, at most [`SEGMENT_BYTES_MAX`] bytes. [`SegmentWriter`] builds them on
//! append; a [`Stored`] value and its [`Cursor`] walk one back, record by record. A
//! record too large for a segment is a span: a stub in the segment, the record itself
//! in tree `chunks` under [`chunk_key`], which [`whole`] puts back together. A value
//! of a `pacer-log/1` log is a single record, read as a [`Stored`] of one.
//! [`segment_holding`] finds the value that holds a seq.

use crate::error::LogError;

use super::record::{seq_of_key, HEADER_BYTES, RECORD_V1};

/// The segment framing version.
const SEGMENT_V2: u8 = 2;
/// A segment's version and record count.
pub(super) const SEGMENT_HEADER_BYTES: usize = 5;
/// A record's length within a segment.
pub(super) const LENGTH_BYTES: usize = 4;
/// The most bytes one segment holds. sled keeps a leaf of up to 17 values inline,
/// where its cache counts and evicts it, only below 128 KiB (a quarter of its 512 KiB
/// I/O segment); a larger leaf becomes a blob that its cache does not count, and
/// every blob read would stay in memory. 7 KiB keeps any leaf of segments inline.
pub const SEGMENT_BYTES_MAX: usize = 7 * 1024;
/// A record too large for a segment (a plan of many lines) is stored as a span: a
/// stub in the segment, the record itself in tree `chunks`, in pieces of this size
/// (for the same reason as [`SEGMENT_BYTES_MAX`]).
pub(super) const CHUNK_BYTES: usize = SEGMENT_BYTES_MAX;
/// The first byte of a span stub: `[SPAN][record length u32 BE][chunks u32 BE]`.
const SPAN: u8 = 0xFF;
const SPAN_STUB_BYTES: usize = 9;

/// The key of part `part` of the span of record `seq` in tree `chunks`.
pub(super) fn chunk_key(seq: u64, part: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&seq.to_be_bytes());
    k[8..].copy_from_slice(&part.to_be_bytes());
    k
}

/// The record of segment entry `entry` (of `seq`): the entry itself, or for a span
/// stub the record put back together from its chunks.
pub(super) fn whole<'r>(
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
pub(super) fn segment_holding(events: &sled::Tree, seq: u64) -> Result<Option<Stored>, LogError> {
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
pub(super) struct SegmentWriter {
    first: u64,
    count: u32,
    buf: Vec<u8>,
}

impl SegmentWriter {
    pub(super) fn new(first: u64) -> Self {
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
    pub(super) fn push(
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
    pub(super) fn finish(&mut self) -> Option<(u64, Vec<u8>)> {
        (self.count > 0).then(|| self.take())
    }

    fn take(&mut self) -> (u64, Vec<u8>) {
        self.buf[1..SEGMENT_HEADER_BYTES].copy_from_slice(&self.count.to_be_bytes());
        (self.first, std::mem::take(&mut self.buf))
    }
}

/// One stored value: a segment, or a single record of a `pacer-log/1` log.
pub(super) struct Stored {
    pub(super) first: u64,
    pub(super) raw: sled::IVec,
    /// How many records it holds.
    len: u32,
}

impl Stored {
    pub(super) fn new(first: u64, raw: sled::IVec) -> Result<Stored, LogError> {
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
    pub(super) fn end(&self) -> u64 {
        self.first.saturating_add(u64::from(self.len))
    }

    /// Where its first record starts.
    pub(super) fn cursor(&self) -> Cursor {
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
    pub(super) fn records(&self) -> impl Iterator<Item = Result<(u64, &[u8]), LogError>> + '_ {
        let mut cursor = self.cursor();
        std::iter::from_fn(move || cursor.next(&self.raw))
    }
}

/// A position among the records of a [`Stored`] value.
pub(super) struct Cursor {
    segment: bool,
    pos: usize,
    seq: u64,
    left: u32,
}

impl Cursor {
    /// The next record of `raw` (the value this cursor is for) and its seq.
    pub(super) fn next<'a>(&mut self, raw: &'a [u8]) -> Option<Result<(u64, &'a [u8]), LogError>> {
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
