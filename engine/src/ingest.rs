//! Ingest: raw event bytes in, durable log records out, in the one order the brief
//! allows: decode → validate → dedupe → append → flush (→ ack, for a broker).
//!
//! [`Ingest`] collects valid events into batches of at most `batch_events_max` and
//! appends each batch with one flush. A bad event is reported to the caller with its
//! position and costs nothing else. [`read_lines`] splits JSON Lines input with a
//! bound on line length, so one giant line cannot exhaust memory.

use std::io::{BufRead, Read};

use pacer_projections::event::Event;
use pacer_projections::time::Timestamp;

use crate::config::Config;
use crate::error::{LogError, RejectKind, Rejection};
use crate::log::{Appended, Log};
use crate::validate::BatchRules;
use crate::wire::decode;

/// Events per append batch (one flush each) unless the caller says otherwise.
pub const BATCH_EVENTS_MAX: usize = 1024;

/// Counts of one ingest run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngestStats {
    /// Stored in the log.
    pub accepted: u64,
    /// Already in the log (same `event_id`); not stored again.
    pub duplicates: u64,
    /// Failed decoding or validation; not stored.
    pub rejected: u64,
}

/// Batches valid events into the log.
pub struct Ingest<'a> {
    log: &'a mut Log,
    config: &'a Config,
    clock: &'a mut dyn FnMut() -> Timestamp,
    batch_events_max: usize,
    pending: Vec<Event>,
    stats: IngestStats,
    /// The rules, with the rates of the log and of the events pushed so far (read on
    /// the first push).
    rules: Option<BatchRules>,
}

impl<'a> Ingest<'a> {
    /// `clock` gives `recorded_at` for each batch (the wall clock in production, a
    /// fixed instant in the demo and in tests).
    pub fn new(
        log: &'a mut Log,
        config: &'a Config,
        clock: &'a mut dyn FnMut() -> Timestamp,
        batch_events_max: usize,
    ) -> Self {
        Ingest {
            log,
            config,
            clock,
            batch_events_max: batch_events_max.max(1),
            pending: Vec::new(),
            stats: IngestStats::default(),
            rules: None,
        }
    }

    /// Decodes and validates one event; a valid one joins the batch (appended when
    /// the batch is full), a bad one is counted and returned as the reason.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Option<Rejection>, LogError> {
        let rules = match &mut self.rules {
            Some(r) => r,
            None => self.rules.insert(BatchRules::new(
                self.config.org.currency,
                self.config.org.timezone,
                self.log.fx_table()?,
            )),
        };
        let log = &mut *self.log;
        let checked = match decode(bytes, &self.config.limits) {
            // A rate counts for the lines after it, unless it is a duplicate.
            Ok(ev) => rules
                .check(&ev, |id| log.seq_of(id).map(|s| s.is_some()))?
                .map(|()| ev),
            Err(r) => Err(r),
        };
        match checked {
            Ok(ev) => {
                self.pending.push(ev);
                if self.pending.len() >= self.batch_events_max {
                    self.flush()?;
                }
                Ok(None)
            }
            Err(rejection) => {
                self.stats.rejected += 1;
                Ok(Some(rejection))
            }
        }
    }

    /// Counts a rejection found before decoding (a line over the size limit).
    pub fn reject(&mut self, rejection: Rejection) -> Rejection {
        self.stats.rejected += 1;
        rejection
    }

    /// Appends and flushes the pending batch.
    pub fn flush(&mut self) -> Result<(), LogError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        let recorded_at = (self.clock)();
        for outcome in self.log.append_batch(batch, recorded_at)? {
            match outcome {
                Appended::Stored(_) => self.stats.accepted += 1,
                Appended::Duplicate(_) => self.stats.duplicates += 1,
            }
        }
        Ok(())
    }

    /// Counts so far (the pending batch is not yet counted).
    pub fn stats(&self) -> IngestStats {
        self.stats
    }

    /// Flushes what is pending and returns the counts.
    pub fn finish(mut self) -> Result<IngestStats, LogError> {
        self.flush()?;
        Ok(self.stats)
    }
}

/// One line of JSON Lines input.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The line's bytes, without the line ending.
    Text(Vec<u8>),
    /// The line was longer than the limit; its bytes were skipped.
    TooLong { bytes: usize },
}

/// Calls `f(line_number, line)` for every non-blank line (numbered from 1), reading
/// at most `line_bytes_max + 1` bytes of any line into memory.
pub fn read_lines<R: BufRead, E>(
    mut reader: R,
    line_bytes_max: usize,
    mut f: impl FnMut(u64, Line) -> Result<(), E>,
) -> Result<(), ReadLinesError<E>> {
    let mut line_no = 0u64;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = Read::take(&mut reader, line_bytes_max as u64 + 2)
            .read_until(b'\n', &mut buf)
            .map_err(ReadLinesError::Io)?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        let ended = buf.last() == Some(&b'\n');
        if ended {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        }
        if buf.len() > line_bytes_max {
            let mut skipped = buf.len();
            if !ended {
                skipped += skip_line(&mut reader).map_err(ReadLinesError::Io)?;
            }
            f(line_no, Line::TooLong { bytes: skipped }).map_err(ReadLinesError::Sink)?;
            continue;
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        f(line_no, Line::Text(std::mem::take(&mut buf))).map_err(ReadLinesError::Sink)?;
    }
}

/// Skips the rest of a line; returns how many bytes it had.
fn skip_line<R: BufRead>(reader: &mut R) -> std::io::Result<usize> {
    let mut skipped = 0;
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(skipped);
        }
        match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(skipped + i);
            }
            None => {
                let len = chunk.len();
                reader.consume(len);
                skipped += len;
            }
        }
    }
}

/// A failure of [`read_lines`]: reading, or the callback's own error.
#[derive(Debug)]
pub enum ReadLinesError<E> {
    Io(std::io::Error),
    Sink(E),
}

/// The rejection of a line over the event size limit.
pub fn too_long(bytes: usize, limit: usize) -> Rejection {
    Rejection::new(
        RejectKind::TooLarge,
        "event",
        format!("{bytes} bytes is over the limit of {limit} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &str, max: usize) -> Vec<(u64, Line)> {
        let mut out = Vec::new();
        read_lines::<_, ()>(input.as_bytes(), max, |n, l| {
            out.push((n, l));
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn numbers_lines_and_skips_blanks() {
        let got = lines("a\r\n\n  \nbb\nccc", 10);
        assert_eq!(
            got,
            vec![
                (1, Line::Text(b"a".to_vec())),
                (4, Line::Text(b"bb".to_vec())),
                (5, Line::Text(b"ccc".to_vec()))
            ]
        );
    }

    #[test]
    fn overlong_lines_are_skipped_whole() {
        let long = "x".repeat(100);
        let got = lines(&format!("ok\n{long}\nafter\n{long}"), 10);
        assert_eq!(
            got,
            vec![
                (1, Line::Text(b"ok".to_vec())),
                (2, Line::TooLong { bytes: 100 }),
                (3, Line::Text(b"after".to_vec())),
                (4, Line::TooLong { bytes: 100 }),
            ]
        );
    }
}
