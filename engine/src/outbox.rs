//! The durable outbox: the messages that stored events' alert changes (and digests)
//! call for, from the fold until a publisher has them acknowledged.
//!
//! It is durable without a store of its own: what it holds is recoverable from the
//! log. The publisher reports how far it got ([`Progress`]: every message of every
//! event up to that seq is acknowledged); the engine saves that mark in the log's
//! meta (`nats.published_seq`, at most once a second), and on start-up
//! [`rebuild_for_serve`] re-creates the messages of every event after it with the
//! ids the first attempt used, so the receiver drops what it already has. The
//! outbox is bounded ([`OUTBOX_MAX`]): when the publisher cannot keep up (the
//! broker is away), the engine stops taking events until there is room again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pacer_projections::event::EventBody;
use pacer_projections::model::Model;

use crate::config::Config;
use crate::engine::{changes_out, digests_out, Outgoing};
use crate::error::{LogError, NatsError};
use crate::log::Log;
use crate::replay::rebuild_for_append;
use crate::subjects::Subjects;

/// The meta key of the last seq whose alert changes JetStream has acknowledged.
pub const PUBLISHED_SEQ: &str = "nats.published_seq";

/// At most this many messages wait for publishing before the engine stops taking
/// new events (NATS refuses alerts; events would only pile up more).
pub const OUTBOX_MAX: usize = 100_000;

/// One entry of the outbox, in the order of the events that called for it.
#[derive(Clone, Debug)]
pub enum Entry {
    Message(Outgoing),
    /// Every message of the events up to this seq is ahead of this entry.
    Through(u64),
}

/// How far publishing got: every message of every event up to this seq is
/// acknowledged. Shared between the publisher, which moves it, and the engine,
/// which saves it.
#[derive(Clone, Debug, Default)]
pub struct Progress(Arc<AtomicU64>);

impl Progress {
    pub fn new(seq: u64) -> Self {
        Progress(Arc::new(AtomicU64::new(seq)))
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Moves the mark forward to `seq` (never back).
    pub fn reached(&self, seq: u64) {
        self.0.fetch_max(seq, Ordering::AcqRel);
    }
}

/// Rebuilds the projections from the log, and re-creates the messages (alert changes
/// and digests, with their figures of the moment) of events after `published_seq`:
/// the ones a crash may have kept from being published. Their `Nats-Msg-Id`s are the
/// ones the first attempt used, so the stream drops what it already has.
///
/// A log that `pacer serve --nats` has never published from (one filled by `pacer
/// ingest`, the demo or the one-process server) starts publishing at its end: its
/// history is not announced again, and the mark is stored at once.
pub fn rebuild_for_serve(
    log: &mut Log,
    config: &Config,
    progress: impl FnMut(u64),
) -> Result<Rebuilt, NatsError> {
    let published_seq = match log.meta(PUBLISHED_SEQ)?.and_then(|s| s.parse::<u64>().ok()) {
        // A catch-up marks a batch published up to the seqs it could take before it
        // is appended (`Pipeline::catch_up`): past the log's end, the mark is its end.
        Some(seq) => seq.min(log.last_seq()),
        None => {
            let seq = log.last_seq();
            log.set_meta(PUBLISHED_SEQ, &seq.to_string())?;
            seq
        }
    };
    let (state, unpublished) = rebuild_with_messages(log, config, published_seq, progress)?;
    Ok(Rebuilt {
        state,
        published_seq,
        unpublished,
    })
}

/// Rebuilds the projections from the log, and re-creates the messages (alert changes
/// and digests, with their figures of the moment and the ids the first time used)
/// of the events after `after_seq`, in seq order.
pub fn rebuild_with_messages(
    log: &mut Log,
    config: &Config,
    after_seq: u64,
    mut progress: impl FnMut(u64),
) -> Result<(Model, Vec<Outgoing>), LogError> {
    let subjects = Subjects::new(&config.nats.subject_prefix);
    let mut messages = Vec::new();
    let state = rebuild_for_append(log, &config.org, |state, rec, before| {
        if rec.seq > after_seq {
            messages.extend(changes_out(
                state,
                &subjects,
                rec,
                state.alert_book().changes(),
            ));
            if matches!(rec.event.body, EventBody::ClockTick) {
                messages.extend(digests_out(
                    state,
                    &subjects,
                    &config.serve,
                    before,
                    rec.seq,
                ));
            }
        }
        progress(rec.seq);
    })?;
    Ok((state, messages))
}

/// The projections rebuilt for `pacer serve`, and what the last run may not have
/// published.
pub struct Rebuilt {
    pub state: Model,
    /// Messages up to this seq are known to be published.
    pub published_seq: u64,
    /// The messages of later events, in seq order.
    pub unpublished: Vec<Outgoing>,
}
