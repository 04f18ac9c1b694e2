//! The engine's main loop: JetStream in, the log, the projections, alerts out.
//!
//! For each batch taken from the durable pull consumer: decode and validate every
//! message (a bad one goes, as it came, to `<prefix>.dlq.<reason>` with the error in
//! a `Pacer-Error` header, and is terminated once the dead-letter stream has it);
//! dedupe by `event_id`, append, **one flush, then ack** every message of the batch.
//! Only then are the stored events folded into the projections (the engine core,
//! [`crate::engine`]) and the alert changes they caused handed to the outbox
//! ([`crate::outbox`]), whose publisher task sends them through JetStream with a
//! `Nats-Msg-Id` made of the alert id, the change and a key of the event id (a restart
//! that publishes them again is deduplicated by the stream). The loop never waits
//! for a PubAck: the publisher does, off the loop.
//!
//! A `clock_tick` is published to the events stream every `tick_interval_s` and
//! comes back through the consumer like any event (so every engine reading the
//! stream holds the same ticks); the weekly digest is published when a tick crosses
//! the configured weekday and local time. Which alert changes have been published is remembered in the log's meta
//! (`nats.published_seq`); on start-up the rebuild publishes whatever came after it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::{self, AckKind};
use async_nats::HeaderMap;
use futures::{FutureExt, StreamExt};
use pacer_projections::event::Event;
use pacer_projections::model::Model;
use pacer_projections::time::Timestamp;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::watch;

use super::lease::{Guard, Held, Holder, Lease, Leases, Look, TAKEN_AFTER};
use super::{Task, ERROR_HEADER};
use crate::config::Config;
pub use crate::engine::{digest_msg_id, Outgoing};
use crate::engine::{tick_event, Engine, Stored};
use crate::error::{NatsError, Rejection};
use crate::ingest::too_long;
use crate::log::Log;
use crate::metrics::Metrics;
pub use crate::outbox::Progress;
pub use crate::outbox::PUBLISHED_SEQ;
pub use crate::outbox::{rebuild_for_serve, Rebuilt};
use crate::outbox::{Entry, OUTBOX_MAX};
use crate::validate::BatchRules;
use crate::wire::decode;

/// How long an ack may wait for room in the client's buffer (NATS away).
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest pause between retries when NATS is away.
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Alert messages published before their PubAcks are awaited, at most.
const PUBLISH_WINDOW: usize = 256;

/// Outbox entries handed to the publisher and not yet published, at most; the rest
/// wait in the engine's part of the outbox (at most [`OUTBOX_MAX`]).
const PUBLISHER_QUEUE_MAX: usize = 4 * 1024;

/// Events folded between two hand-overs to the publisher.
const FOLD_PART_EVENTS: usize = 256;

/// The log's meta key for the highest sequence of the events stream whose message
/// this log has handled (stored, found a duplicate, or dead-lettered). It may lag
/// after a crash (it becomes durable with the next append's flush), never run ahead.
pub const STREAM_SEQ: &str = "nats.stream_seq";

/// How long the catch-up waits for the stream's next message before it asks whether
/// any is left.
const CATCH_UP_WAIT: Duration = Duration::from_secs(5);

/// How long one pull request of the engine's consumer (and of its catch-up reader)
/// stands. A request the broker lost (its consumer's leader moved to another node)
/// holds the client's count of messages to come until it expires or a heartbeat is
/// missed; a short expiry bounds that stall, at the cost of a new request every 10 s
/// when the stream is idle.
const PULL_EXPIRES: Duration = Duration::from_secs(10);

/// The broker's idle heartbeat on a pull request (under half its expiry, as the
/// server requires): two missed ones end the request.
const PULL_HEARTBEAT: Duration = Duration::from_secs(3);

/// The running engine: the engine core, driven by a JetStream consumer, and the
/// publisher of its outbox.
pub struct Pipeline {
    engine: Engine,
    js: jetstream::Context,
    clock: Box<dyn FnMut() -> Timestamp + Send>,
    /// Outbox entries waiting for room in the publisher's queue: the engine stops
    /// taking events while there are [`OUTBOX_MAX`] of them.
    waiting: VecDeque<Entry>,
    /// The publisher's queue (bounded); `None` once closed for the stop.
    to_publisher: Option<mpsc::Sender<Entry>>,
    /// Taken by [`Pipeline::run`] to start the publisher.
    from_engine: Option<mpsc::Receiver<Entry>>,
    /// How far the publisher got.
    progress: Progress,
    /// The mark last noted in the log's meta, and the last made durable by a flush of
    /// its own.
    published_seq_saved: u64,
    published_seq_flushed: u64,
    last_saved: Instant,
    alerts_dirty: bool,
    last_counted: Instant,
    /// [`STREAM_SEQ`] as last noted; `None` until [`Pipeline::run`] has read it.
    stream_seq: Option<u64>,
    /// The clock tick being published, if any.
    ticking: Option<Task>,
    /// The lease this engine holds while it runs: checked before events are taken
    /// and before they are acknowledged.
    guard: Option<Guard>,
    /// Every alert change of the events up to this seq of the log was published by
    /// the engine that held the lease before this one (its last mark); the catch-up
    /// publishes those after it. `None`: every one the catch-up stores quietly.
    published_before: Option<u64>,
    /// A standby's reader of the events stream, between its catch-ups.
    reader: Option<Reader>,
}

/// A standby's reader of the events stream, kept between its catch-ups: its
/// consumer (made once, not every second), the messages it pulls, and one read past
/// the last catch-up's end.
struct Reader {
    consumer: PullConsumer,
    messages: pull::Stream,
    peeked: Option<jetstream::Message>,
    /// Everything of the stream up to this seq has been handed out.
    through: u64,
    /// The consumer seq of the last message read: the next must be one more (a
    /// message lost on the way, a connection dropped, is a gap: read again).
    consumer_seq: u64,
}

/// What one [`Pipeline::catch_up`] did.
#[derive(Clone, Copy, Debug, Default)]
struct Caught {
    /// It read as far as it was to (not stopped by a shutdown).
    finished: bool,
    stored: usize,
    /// Already in the log.
    duplicates: usize,
    /// Rejected (dead-lettered by the engine they were delivered to).
    skipped: usize,
}

/// How far [`Pipeline::catch_up`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CatchUp {
    /// Before the consumer is read: up to what it delivered.
    Delivered,
    /// A standby, quietly: up to what the holder of the lease acknowledged.
    AckFloor,
}

impl Pipeline {
    /// Wraps a log whose projections are already rebuilt into `state`; every alert
    /// change up to `published_seq` is known to be published.
    pub fn new(
        log: Log,
        state: Arc<RwLock<Model>>,
        config: Config,
        js: jetstream::Context,
        metrics: Arc<Metrics>,
        clock: Box<dyn FnMut() -> Timestamp + Send>,
        published_seq: u64,
    ) -> Self {
        let (to_publisher, from_engine) = mpsc::channel(PUBLISHER_QUEUE_MAX);
        Pipeline {
            engine: Engine::new(log, state, config, metrics),
            js,
            clock,
            waiting: VecDeque::new(),
            to_publisher: Some(to_publisher),
            from_engine: Some(from_engine),
            progress: Progress::new(published_seq),
            published_seq_saved: published_seq,
            published_seq_flushed: published_seq,
            last_saved: Instant::now(),
            alerts_dirty: true,
            last_counted: Instant::now() - Duration::from_secs(60),
            stream_seq: None,
            ticking: None,
            guard: None,
            published_before: None,
            reader: None,
        }
    }

    /// Queues the messages the rebuild found unpublished.
    pub fn queue_unpublished(&mut self, messages: Vec<Outgoing>) {
        self.alerts_dirty = true;
        let through = self.engine.state().read().expect("not poisoned").last_seq();
        self.waiting
            .extend(messages.into_iter().map(Entry::Message));
        self.mark_through(through);
        self.hand_over();
    }

    /// Folds a stored batch into the projections and queues what it changed.
    /// The batch is folded [`FOLD_PART_EVENTS`] at a time, each part's messages
    /// handed to the publisher before the next part: an alert early in a batch of
    /// thousands goes out without waiting for the rest.
    fn fold(&mut self, stored: &Stored) {
        self.fold_from(stored, 0);
    }

    /// [`Pipeline::fold`] of the records from index `from` on.
    fn fold_from(&mut self, stored: &Stored, mut from: usize) {
        let records = stored.records.len();
        while from < records {
            let to = (from + FOLD_PART_EVENTS).min(records);
            let out = self
                .engine
                .fold_part(stored, from..to, Some(&self.engine.config().serve));
            if !out.is_empty() {
                self.alerts_dirty = true;
            }
            self.waiting.extend(out.into_iter().map(Entry::Message));
            self.mark_through(stored.records[to - 1].seq);
            self.hand_over();
            from = to;
        }
    }

    /// Adds the mark that every message of the events up to `seq` is queued; merged
    /// with a mark just before it, so that waiting marks never fill the outbox.
    fn mark_through(&mut self, seq: u64) {
        match self.waiting.back_mut() {
            Some(Entry::Through(s)) => *s = (*s).max(seq),
            _ => self.waiting.push_back(Entry::Through(seq)),
        }
    }

    /// Moves waiting entries into the publisher's queue, as far as there is room;
    /// never waits.
    fn hand_over(&mut self) {
        let Some(tx) = &self.to_publisher else {
            return;
        };
        while let Some(entry) = self.waiting.pop_front() {
            if let Err(e) = tx.try_send(entry) {
                let entry = match e {
                    TrySendError::Full(e) | TrySendError::Closed(e) => e,
                };
                self.waiting.push_front(entry);
                break;
            }
        }
    }

    /// Remembers how far alert publishing got, at most once a second, made durable by
    /// the next append's flush (no flush of its own in the loop; `at_stop` flushes):
    /// a crash re-sends the rest, and the stream's duplicate window drops what it
    /// already has.
    fn save_published_seq(&mut self, at_stop: bool) -> Result<(), NatsError> {
        let seq = self.progress.get();
        if at_stop {
            if seq > self.published_seq_flushed {
                self.engine
                    .log_mut()
                    .set_meta(PUBLISHED_SEQ, &seq.to_string())?;
                self.published_seq_saved = seq;
                self.published_seq_flushed = seq;
            }
            return Ok(());
        }
        if seq > self.published_seq_saved && self.last_saved.elapsed() >= Duration::from_secs(1) {
            self.engine
                .log_mut()
                .note_meta(PUBLISHED_SEQ, &seq.to_string())?;
            self.published_seq_saved = seq;
            self.last_saved = Instant::now();
        }
        Ok(())
    }

    /// Appends events and flushes; returns what was stored.
    fn append(&mut self, events: Vec<Event>) -> Result<Stored, NatsError> {
        let at = (self.clock)();
        Ok(tokio::task::block_in_place(|| {
            self.engine.append(events, at)
        })?)
    }

    /// Publishes a `clock_tick` at the wall clock's now to the events stream, off the
    /// loop, under its `event_id` as `Nats-Msg-Id`. It comes back through the consumer
    /// like any event, so the log stays a function of the stream: a standby or a
    /// replacement reading the stream holds the same ticks at the same places, and
    /// its alerts the same ids. Retried with a back-off until published or the next
    /// tick is due (then that one goes instead).
    fn tick(&mut self, tick_every: Duration) {
        if self.ticking.as_ref().is_some_and(|t| !t.0.is_finished())
            || self.guard.as_ref().is_some_and(|g| g.check().is_err())
        {
            return;
        }
        let tick = tick_event((self.clock)());
        let payload = bytes::Bytes::from(
            serde_json::to_vec(&serde_json::Value::Object(crate::wire::encode(&tick)))
                .expect("JSON values serialise"),
        );
        let subject = self.engine.subjects().event(tick.body.type_name());
        let js = self.js.clone();
        self.ticking = Some(Task(tokio::spawn(async move {
            let deadline = Instant::now() + tick_every;
            let mut backoff = Duration::from_millis(100);
            loop {
                let mut headers = HeaderMap::new();
                headers.insert("Nats-Msg-Id", tick.event_id.as_str());
                let published = match js
                    .publish_with_headers(subject.clone(), headers, payload.clone())
                    .await
                {
                    Ok(ack) => match tokio::time::timeout(ACK_TIMEOUT, ack).await {
                        Ok(Ok(_)) => return,
                        Ok(Err(e)) => e.to_string(),
                        Err(_) => "no acknowledgement in time".to_owned(),
                    },
                    Err(e) => e.to_string(),
                };
                if Instant::now() + backoff >= deadline {
                    eprintln!(
                        "pacer serve: the clock tick {} was not published ({published}); the next one is due",
                        tick.event_id
                    );
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        })));
    }

    /// A message's event, decoded and validated; the rejection of a bad one. An
    /// `Err` is the log failing (reading what validation needs).
    fn checked(
        &mut self,
        rules: &mut BatchRules,
        payload: &[u8],
    ) -> Result<Result<Event, Rejection>, NatsError> {
        let limits = self.engine.config().limits;
        if payload.len() > limits.bytes_max() {
            return Ok(Err(too_long(payload.len(), limits.bytes_max())));
        }
        Ok(match decode(payload, &limits) {
            Ok(ev) => self.engine.check(rules, &ev)?.map(|()| ev),
            Err(r) => Err(r),
        })
    }

    /// One batch of messages, in the brief's order.
    async fn handle(&mut self, messages: Vec<jetstream::Message>) -> Result<(), NatsError> {
        if let Some(guard) = &self.guard {
            // Nothing of a batch is acknowledged, nor dead-lettered and terminated,
            // once the lease may be another engine's.
            guard.check()?;
        }
        self.engine
            .metrics()
            .batch_events
            .observe(messages.len() as f64);
        let handled_through = messages
            .iter()
            .filter_map(|m| m.info().ok().map(|i| i.stream_sequence))
            .max();
        let mut rules = self.engine.rules();
        let mut good: Vec<(Event, jetstream::Message)> = Vec::with_capacity(messages.len());
        for msg in messages {
            let checked = self.checked(&mut rules, &msg.payload)?;
            match checked {
                Ok(ev) => good.push((ev, msg)),
                Err(rejection) => {
                    if let Err(e) = self.dead_letter(&msg, &rejection).await {
                        // Not dead-lettered: leave this one for later and go on with the
                        // rest of the batch.
                        eprintln!("pacer serve: {e}; the rejected message will come back");
                        let _ = tokio::time::timeout(
                            ACK_TIMEOUT,
                            msg.ack_with(AckKind::Nak(Some(Duration::from_secs(5)))),
                        )
                        .await;
                    }
                }
            }
        }
        if good.is_empty() {
            return self.note_stream_seq(handled_through);
        }
        let (events, messages): (Vec<Event>, Vec<jetstream::Message>) = good.into_iter().unzip();
        let stored = self.append(events)?;
        self.note_stream_seq(handled_through)?;
        if let Some(guard) = &self.guard {
            // Another engine may hold the lease: it is given these messages when they
            // are not acknowledged. They are in this log, so they are folded here all
            // the same (their redelivery finds duplicates).
            if let Err(e) = guard.check() {
                self.fold(&stored);
                return Err(e);
            }
        }
        // Durable: now, and only now, every message of the batch is acknowledged (one
        // deadline for the batch, not a timer per message).
        let acks = async {
            let mut failed = 0usize;
            for msg in &messages {
                if let Err(e) = msg.ack().await {
                    if failed == 0 {
                        eprintln!("pacer serve: an ack was not sent ({e}); the redelivery will be deduplicated");
                    }
                    failed += 1;
                }
            }
            failed
        };
        match tokio::time::timeout(ACK_TIMEOUT, acks).await {
            Ok(0) => {}
            Ok(failed) => eprintln!("pacer serve: {failed} acks of a batch were not sent"),
            // The events are in the log; the redeliveries will be duplicates.
            Err(_) => eprintln!(
                "pacer serve: acknowledging a batch timed out; the redeliveries will be deduplicated"
            ),
        }
        self.fold(&stored);
        Ok(())
    }

    /// Sends a rejected message to the dead-letter stream, then terminates it.
    async fn dead_letter(
        &mut self,
        msg: &jetstream::Message,
        rejection: &Rejection,
    ) -> Result<(), NatsError> {
        let subject = self.engine.subjects().dlq(rejection.kind.slug());
        let mut headers = HeaderMap::new();
        let reason = rejection.to_string().replace(['\r', '\n'], " ");
        headers.insert(ERROR_HEADER, reason.as_str());
        if let Ok(info) = msg.info() {
            // A redelivered bad message is dead-lettered once.
            let id = format!("dlq:{}:{}", info.stream, info.stream_sequence);
            headers.insert("Nats-Msg-Id", id.as_str());
        }
        let publish = |e: &dyn std::fmt::Display| NatsError::Publish {
            subject: subject.clone(),
            reason: e.to_string(),
        };
        self.js
            .publish_with_headers(subject.clone(), headers, msg.payload.clone())
            .await
            .map_err(|e| publish(&e))?
            .await
            .map_err(|e| publish(&e))?;
        self.engine.metrics().rejected(rejection.kind.slug());
        if let Err(e) = tokio::time::timeout(ACK_TIMEOUT, msg.ack_with(AckKind::Term))
            .await
            .unwrap_or_else(|_| Err("timed out".into()))
        {
            eprintln!("pacer serve: a dead-lettered message was not terminated ({e}); it will come back and be dead-lettered once more under the same id");
        }
        Ok(())
    }

    /// Counts alerts by rule and status for the gauges (at most once a second).
    fn count_alerts(&mut self) {
        if !self.alerts_dirty || self.last_counted.elapsed() < Duration::from_secs(1) {
            return;
        }
        // Counted straight off the book (a listing would also rank focus and look up
        // every rep: milliseconds with the events waiting).
        let state = self.engine.state().read().expect("not poisoned");
        let mut by_kind: BTreeMap<(&str, &str), i64> = BTreeMap::new();
        for a in state.alert_book().iter() {
            let status = pacer_projections::alerts::status(a, state.acks().get(&a.id));
            *by_kind
                .entry((a.rule().as_str(), status.as_str()))
                .or_default() += 1;
        }
        let counts: BTreeMap<(String, String), i64> = by_kind
            .into_iter()
            .map(|((rule, status), n)| ((rule.to_owned(), status.to_owned()), n))
            .collect();
        drop(state);
        self.engine.metrics().set_alerts(&counts);
        self.alerts_dirty = false;
        self.last_counted = Instant::now();
    }

    /// Notes that the log has handled the events stream's messages through `seq`
    /// (durable with the next flush; see [`STREAM_SEQ`]).
    fn note_stream_seq(&mut self, seq: Option<u64>) -> Result<(), NatsError> {
        if let Some(seq) = seq.filter(|&s| self.stream_seq.is_none_or(|noted| s > noted)) {
            self.engine
                .log_mut()
                .note_meta(STREAM_SEQ, &seq.to_string())?;
            self.stream_seq = Some(seq);
        }
        Ok(())
    }

    /// Where this log stands in the events stream: its [`STREAM_SEQ`]; for a log
    /// written before that was kept, `delivered` (the log is taken to be the one of
    /// the engine the consumer delivered them to); 0 for an empty log.
    fn stream_seq_at_start(&mut self, delivered: u64) -> Result<u64, NatsError> {
        if let Some(seq) = self.stream_seq {
            return Ok(seq);
        }
        let noted = self.engine.log().meta(STREAM_SEQ)?;
        let seq = match noted.as_deref().map(str::parse::<u64>) {
            Some(Ok(seq)) => seq,
            Some(Err(_)) => {
                return Err(NatsError::Log(crate::error::LogError::Corrupt {
                    seq: 0,
                    reason: format!("the log's {STREAM_SEQ} is {noted:?}, not a number"),
                }))
            }
            None if self.engine.log().last_seq() == 0 => {
                // Written before anything is appended: a log with events and no mark
                // is one from before the mark was kept, never a catch-up cut short.
                self.engine.log_mut().set_meta(STREAM_SEQ, "0")?;
                0
            }
            None => {
                self.engine
                    .log_mut()
                    .set_meta(STREAM_SEQ, &delivered.to_string())?;
                delivered
            }
        };
        self.stream_seq = Some(seq);
        Ok(seq)
    }

    /// Stores the events the durable consumer has already delivered that this log
    /// does not hold — an engine replaced on an empty data dir, or a log restored from
    /// a backup — reading them from the events stream before the consumer is read,
    /// in stream order, through the same decode → validate → dedupe → append → flush
    /// and fold. Delivered, not only acknowledged: a message acknowledged after one
    /// that was not is above the consumer's ack floor and is not delivered again.
    /// The alert changes of those up to the ack floor are not published: the engine
    /// that acknowledged them did (what it had not yet published when it stopped is the
    /// one thing lost). Those above it were in flight when it stopped (a restart's
    /// usual case): theirs go to the outbox as any batch's. A message rejected is
    /// skipped (it was dead-lettered, or will be when the consumer delivers it again);
    /// one delivered and not acknowledged comes again from the consumer and is found a
    /// duplicate. Each quiet batch is made durable with the mark that its changes are
    /// published, so a catch-up cut short (a stop, a kill -9) publishes nothing of it,
    /// and goes on where it stopped (at most a batch read again, found duplicates).
    /// Not `finished`: stopped by `shutdown` before the end; the consumer must not be
    /// read.
    ///
    /// A standby ([`CatchUp::AckFloor`]) reads only up to the ack floor, quietly, and
    /// says nothing of it.
    async fn catch_up(
        &mut self,
        consumer: &mut PullConsumer,
        shutdown: &watch::Receiver<bool>,
        upto: CatchUp,
    ) -> Result<Caught, NatsError> {
        let name = self.engine.subjects().consumer();
        let err = |doing, e: &dyn std::fmt::Display| consumer_err(&name, doing, e);
        let info = consumer
            .info()
            .await
            .map_err(|e| err("reading the consumer", &e))?;
        let (delivered, acked) = (
            info.delivered.stream_sequence,
            info.ack_floor.stream_sequence,
        );
        let from = self.stream_seq_at_start(delivered)?;
        let target = match upto {
            CatchUp::Delivered => delivered,
            CatchUp::AckFloor => acked,
        };
        if target <= from {
            return Ok(Caught {
                finished: true,
                ..Caught::default()
            });
        }
        let verbose = upto == CatchUp::Delivered;
        // Every alert change of the log's own events was published: the caught-up
        // events' changes can be marked published as they are folded. Otherwise (a
        // log restored from a backup, with changes still to publish) the mark moves
        // once the publisher has sent those.
        let mut published_all = self.progress.get() >= self.engine.log().last_seq();
        let stream_name = self.engine.subjects().events_stream();
        if verbose {
            eprintln!(
                "pacer serve: {name} has delivered {stream_name} through seq {delivered}, this log holds it only through {from}: storing the rest from the stream first"
            );
        }
        let batch_max = self.engine.config().serve.batch_events_max;
        // A standby's reader goes on where its last catch-up ended (one consumer for
        // its life, not one a second, and no look at the stream each time); any other
        // catch-up reads with one of its own.
        let mut reader = match self.reader.take() {
            Some(r) if r.through == from => r,
            old => {
                if let Some(old) = old {
                    self.drop_reader(old).await;
                }
                let mut stream = self
                    .js
                    .get_stream(&stream_name)
                    .await
                    .map_err(|e| err("finding the events stream", &e))?;
                let first = stream
                    .info()
                    .await
                    .map_err(|e| err("reading the events stream", &e))?
                    .state
                    .first_sequence;
                if first > from + 1 {
                    eprintln!(
                        "pacer serve: {stream_name} no longer holds seqs {} to {}: their events cannot be stored here (restore the log from a backup to have them)",
                        from + 1,
                        first - 1
                    );
                }
                let consumer = stream
                    .create_consumer(pull::Config {
                        deliver_policy: DeliverPolicy::ByStartSequence {
                            start_sequence: from + 1,
                        },
                        ack_policy: AckPolicy::None,
                        filter_subject: self.engine.subjects().events_all(),
                        inactive_threshold: Duration::from_secs(60),
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| err("creating a consumer to catch up", &e))?;
                let messages = consumer
                    .stream()
                    .max_messages_per_batch(batch_max)
                    .heartbeat(PULL_HEARTBEAT)
                    .expires(PULL_EXPIRES)
                    .messages()
                    .await
                    .map_err(|e| err("reading the stream to catch up", &e))?;
                Reader {
                    consumer,
                    messages,
                    peeked: None,
                    through: from,
                    consumer_seq: 0,
                }
            }
        };
        let started = Instant::now();
        let (mut stored_n, mut duplicates, mut skipped) = (0usize, 0usize, 0usize);
        // Stored here, delivered but never acknowledged: their alerts go out as usual.
        let mut unacked_n = 0usize;
        let mut through = from;
        let mut beyond = false;
        'read: while through < target && !beyond && !*shutdown.borrow() {
            let mut batch = Vec::new();
            let mut last = through;
            while batch.len() < batch_max {
                let next = if let Some(m) = reader.peeked.take() {
                    Some(Ok(m))
                } else if batch.is_empty() {
                    match tokio::time::timeout(CATCH_UP_WAIT, reader.messages.next()).await {
                        Ok(next) => next,
                        // Nothing came: the stream holds nothing more of ours up to
                        // `delivered` (the rest were other subjects), or it is away.
                        Err(_) if *shutdown.borrow() => break 'read,
                        Err(_) => {
                            let mut consumer = reader.consumer.clone();
                            let pending = consumer
                                .info()
                                .await
                                .map_err(|e| err("reading the catch-up consumer", &e))?
                                .num_pending;
                            if pending == 0 {
                                beyond = true;
                                break 'read;
                            }
                            continue;
                        }
                    }
                } else {
                    match reader.messages.next().now_or_never() {
                        Some(next) => next,
                        None => break,
                    }
                };
                let msg = match next {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => return Err(err("reading the stream to catch up", &e)),
                    None => {
                        return Err(err(
                            "reading the stream to catch up",
                            &"the server ended the read",
                        ))
                    }
                };
                let (seq, consumer_seq) = msg
                    .info()
                    .map(|i| (i.stream_sequence, i.consumer_sequence))
                    .map_err(|e| err("reading a message's stream seq", &e))?;
                if consumer_seq <= reader.consumer_seq {
                    // Read already (handed out again after a reconnect): skip it.
                    continue;
                }
                if consumer_seq != reader.consumer_seq + 1 {
                    // Messages lost on the way: this reader goes, the next catch-up
                    // reads on from this log's mark with a new one.
                    return Err(err(
                        "reading the stream to catch up",
                        &format!(
                            "the reader missed messages {} to {}; reading again",
                            reader.consumer_seq + 1,
                            consumer_seq - 1
                        ),
                    ));
                }
                if seq > target {
                    // The consumer delivers it (or, for a standby, its holder has not
                    // acknowledged it yet: kept for the standby's next catch-up).
                    reader.peeked = Some(msg);
                    beyond = true;
                    break;
                }
                reader.consumer_seq = consumer_seq;
                last = seq;
                batch.push((seq, msg));
            }
            // Up to the ack floor the engine they were delivered to stored them and
            // published their alerts; above it, they were in flight when it stopped
            // (a restart's usual case) and nobody did.
            let split = batch.partition_point(|(seq, _)| *seq <= acked);
            for (part, quiet) in [(&batch[..split], true), (&batch[split..], false)] {
                let mut rules = self.engine.rules();
                let mut events = Vec::with_capacity(part.len());
                for (_, msg) in part {
                    match self.checked(&mut rules, &msg.payload)? {
                        Ok(ev) => events.push(ev),
                        Err(_) => skipped += 1,
                    }
                }
                if events.is_empty() {
                    continue;
                }
                let (stored, published) = self.store_caught_up(events, quiet, published_all)?;
                stored_n += stored.records.len();
                duplicates += stored.duplicates;
                unacked_n += stored.records.len() - published;
                if published < stored.records.len() {
                    published_all = false;
                }
            }
            // Durable with the next batch's flush (a kill -9 before it reads this batch
            // again: duplicates).
            self.note_stream_seq(Some(last))?;
            through = last;
        }
        let finished = beyond || through >= target;
        if finished {
            // Whatever it did not see up to `target` is not ours (other subjects) or
            // gone from the stream.
            through = through.max(target);
            self.note_stream_seq(Some(through))?;
        }
        if finished && upto == CatchUp::AckFloor {
            reader.through = through;
            self.reader = Some(reader);
        } else {
            self.drop_reader(reader).await;
        }
        // How far it got, made durable now.
        self.engine
            .log_mut()
            .set_meta(STREAM_SEQ, &through.to_string())?;
        self.published_seq_flushed = self.published_seq_saved;
        self.alerts_dirty = true;
        let seconds = started.elapsed().as_secs_f64();
        let counts = format!(
            "{stored_n} events stored, {duplicates} already here, {skipped} rejected ones skipped"
        );
        let alerts = if unacked_n > 0 {
            format!("the alerts of the {unacked_n} never acknowledged or never published go out now, the others' are not published again")
        } else {
            "their alerts are not published again".to_owned()
        };
        if !verbose {
        } else if !finished {
            eprintln!(
                "pacer serve: stopped catching up at {stream_name} seq {through} of {delivered} after {seconds:.1} s ({counts}); the next start goes on from there"
            );
        } else {
            eprintln!(
                "pacer serve: caught up through {stream_name} seq {through} in {seconds:.1} s: {counts}; {alerts}"
            );
        }
        Ok(Caught {
            finished,
            stored: stored_n,
            duplicates,
            skipped,
        })
    }

    /// Stops a reader and deletes its consumer (its server would drop it after a
    /// minute of nothing; now is better).
    async fn drop_reader(&self, reader: Reader) {
        let name = reader.consumer.cached_info().name.clone();
        drop(reader);
        let _ = self
            .js
            .delete_consumer_from_stream(&name, self.engine.subjects().events_stream())
            .await;
    }

    /// Stores and folds events the catch-up read; returns what was stored and how
    /// many of those were marked published. `quiet`: their alert changes were
    /// published by the engine that acknowledged them (up to its last mark, when
    /// known: [`Pipeline::published_before`]), so they are marked published — with
    /// the append's own flush when nothing waits to be published (`published_all`;
    /// the mark then at most the seqs the batch can take, which a start-up lowers to
    /// the log's end), so a kill -9 at any point publishes none of them. The others go
    /// to the outbox like any batch's.
    fn store_caught_up(
        &mut self,
        events: Vec<Event>,
        quiet: bool,
        published_all: bool,
    ) -> Result<(Stored, usize), NatsError> {
        let quiet_through = match (quiet, self.published_before) {
            (false, _) => 0,
            (true, before) => before.unwrap_or(u64::MAX),
        };
        let start = self.engine.log().last_seq();
        if quiet_through <= start {
            let stored = self.append(events)?;
            self.fold(&stored);
            return Ok((stored, 0));
        }
        if published_all {
            let bound = (start + events.len() as u64).min(quiet_through);
            self.engine
                .log_mut()
                .note_meta(PUBLISHED_SEQ, &bound.to_string())?;
        }
        let stored = self.append(events)?;
        let split = stored.records.partition_point(|r| r.seq <= quiet_through);
        let _ = self.engine.fold_part(&stored, 0..split, None);
        if published_all {
            // The log's end, stored or not (every one a duplicate): never the bound.
            let end = stored.records[..split]
                .last()
                .map_or(start, |r| r.seq)
                .max(start);
            self.progress.reached(end);
            self.engine
                .log_mut()
                .note_meta(PUBLISHED_SEQ, &end.to_string())?;
            self.published_seq_saved = end;
        } else if split > 0 {
            self.mark_through(stored.records[split - 1].seq);
        }
        // Above the last mark of the engine before: nobody published their changes.
        self.fold_from(&stored, split);
        Ok((stored, split))
    }

    /// Waits as a hot standby until this engine takes the lease (`Ok(Some)`, with
    /// what it knows of the holder before) or `shutdown` turns true (`Ok(None)`).
    /// Every second it looks at the lease and stores, quietly, what the holder's
    /// consumer has acknowledged, so that a takeover has little left to read.
    pub async fn stand_by(
        &mut self,
        leases: &Leases,
        me: &Holder,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Option<Takeover>, NatsError> {
        // The holder last seen, its revision, and when that revision was first seen.
        let mut seen: Option<(Holder, u64, Instant)> = None;
        let mut me = me.clone();
        // What was stored since it was last said, and when that was.
        let mut unsaid = Caught::default();
        let mut last_said: Option<Instant> = None;
        let mut failing: Option<(String, Instant)> = None;
        let mut consumer: Option<PullConsumer> = None;
        loop {
            // Written when this engine takes the lease: the mark it will start from
            // (the holder's last, within this log), until its first renewal.
            me.published_seq = seen
                .as_ref()
                .map_or(0, |(h, _, _)| h.published_seq)
                .min(self.engine.log().last_seq());
            match leases.look(&me).await {
                Ok(Look::Taken(lease)) => {
                    let last_seen = seen.map(|(holder, _, at)| (holder, at.elapsed()));
                    return Ok(Some(Takeover {
                        lease: *lease,
                        last_seen,
                    }));
                }
                Ok(Look::Gone) => {}
                Ok(Look::Held(holder, revision)) => {
                    if seen
                        .as_ref()
                        .is_none_or(|(h, _, _)| h.engine != holder.engine)
                    {
                        eprintln!(
                            "pacer serve: standing by: engine {} on {} holds the lease; this engine stores what it acknowledges and takes over when its lease is not renewed for {} s",
                            holder.engine,
                            holder.host,
                            leases.ttl().as_secs()
                        );
                    }
                    if seen.as_ref().is_none_or(|(_, r, _)| *r != revision) {
                        seen = Some((holder, revision, Instant::now()));
                    }
                }
                Err(e) => say_failing(&mut failing, &e),
            }
            let started = Instant::now();
            // The durable consumer is looked up once, not every turn (again after an
            // error).
            if consumer.is_none() {
                consumer = self
                    .consumer()
                    .await
                    .map_err(|e| say_failing(&mut failing, &e))
                    .ok();
            }
            let caught_up = match consumer.as_mut() {
                Some(c) => self.catch_up(c, shutdown, CatchUp::AckFloor).await,
                None => Ok(Caught::default()),
            };
            if caught_up.is_err() {
                consumer = None;
            }
            match caught_up {
                Ok(c) => {
                    unsaid.stored += c.stored;
                    unsaid.duplicates += c.duplicates;
                    unsaid.skipped += c.skipped;
                }
                Err(e @ NatsError::Log(_)) => return Err(e),
                Err(e) => say_failing(&mut failing, &e),
            }
            let read = unsaid.stored + unsaid.duplicates + unsaid.skipped;
            if read > 0 && last_said.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                eprintln!(
                    "pacer serve: standing by: holds {} through seq {} ({} events stored, {} already here, {} rejected ones skipped{})",
                    self.engine.subjects().events_stream(),
                    self.stream_seq.unwrap_or(0),
                    unsaid.stored,
                    unsaid.duplicates,
                    unsaid.skipped,
                    match last_said {
                        None => format!(" in {:.1} s", started.elapsed().as_secs_f64()),
                        Some(_) => " in the last minute".to_owned(),
                    }
                );
                unsaid = Caught::default();
                last_said = Some(Instant::now());
            }
            if wait_or_shutdown(shutdown, Duration::from_secs(1)).await {
                return Ok(None);
            }
        }
    }

    /// The log and, unless something else holds them, the projections: for a
    /// standby that took the lease.
    pub fn into_parts(self) -> (Log, Option<Model>) {
        let (log, state) = self.engine.into_parts();
        let state = Arc::try_unwrap(state)
            .ok()
            .and_then(|s| s.into_inner().ok());
        (log, state)
    }

    /// Sets the mark of the engine that held the lease before: the catch-up
    /// publishes the alert changes of the events after it.
    pub fn published_before(&mut self, seq: Option<u64>) {
        self.published_before = seq;
    }

    /// Publishing moves `mark` (a lease renews with it): it starts at this
    /// pipeline's published seq or above.
    pub fn publishing_to(mut self, mark: Progress) -> Self {
        mark.reached(self.progress.get());
        self.progress = mark;
        self
    }

    /// Runs until `shutdown` turns true: then takes what was already fetched, stores
    /// and acks it, publishes what it can, gives the lease up, and returns. With a
    /// `lease` (held with this pipeline's [`Pipeline::publishing_to`] mark), stops
    /// taking events (an error) as soon as it may be another engine's.
    pub async fn run(
        mut self,
        mut shutdown: watch::Receiver<bool>,
        lease: Option<Held>,
    ) -> Result<(), NatsError> {
        self.guard = lease.as_ref().map(|held| held.guard.clone());
        let consumer = loop {
            let caught_up = match self.consumer().await {
                Ok(mut c) => self
                    .catch_up(&mut c, &shutdown, CatchUp::Delivered)
                    .await
                    .map(|caught| (c, caught.finished)),
                Err(e) => Err(e),
            };
            match caught_up {
                // Stopped while catching up: nothing else to do (the marks are saved).
                Ok((_, false)) => {
                    if let Some(held) = lease {
                        held.release().await;
                    }
                    return Ok(());
                }
                Ok((c, true)) => {
                    // Queries now answer with every event the consumer delivered.
                    self.engine
                        .metrics()
                        .ready
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                    // Past the mark of the engine it took the lease from (or that
                    // mark counts events otherwise): a restart goes on from its own.
                    if let Some(held) = &lease {
                        held.caught_up();
                    }
                    if self
                        .engine
                        .log()
                        .meta(TAKEN_AFTER)?
                        .is_some_and(|v| v != "0")
                    {
                        self.engine.log_mut().set_meta(TAKEN_AFTER, "0")?;
                    }
                    break c;
                }
                Err(e @ NatsError::Log(_)) => return Err(e),
                Err(e) => {
                    eprintln!("pacer serve: {e}; retrying");
                    if wait_or_shutdown(&mut shutdown, Duration::from_secs(1)).await {
                        return Ok(());
                    }
                }
            }
        };
        let ticking = self.engine.config().serve.tick_interval_s > 0;
        // Without ticks of its own, the engine waits a year between looks at the clock.
        let tick_every = Duration::from_secs(if ticking {
            self.engine.config().serve.tick_interval_s
        } else {
            365 * 24 * 3600
        });
        // Both end with the loop, however it ends (an error too).
        let mut publisher = Task(tokio::spawn(publish_outbox(
            self.js.clone(),
            self.from_engine.take().expect("run is called once"),
            self.progress.clone(),
            Arc::clone(self.engine.metrics()),
        )));
        let gauge = Task(tokio::spawn(count_pending(
            consumer.clone(),
            Arc::clone(self.engine.metrics()),
        )));
        let mut last_full_said = Instant::now() - Duration::from_secs(60);
        if ticking {
            self.tick(tick_every);
        }
        let mut next_tick = tokio::time::Instant::now() + tick_every;
        let mut backoff = Duration::from_millis(100);
        let batch_max = self.engine.config().serve.batch_events_max;
        // The lease was lost: the loop ends, what is in hand is published, and `run`
        // returns this.
        let mut lost: Option<NatsError> = None;
        // The lease lapsed while a batch was in hand: before pulling again, store from
        // the stream what was delivered and not acknowledged (in stream order).
        let mut resync = false;
        'outer: loop {
            let mut messages = match consumer
                .stream()
                .max_messages_per_batch(batch_max)
                .heartbeat(PULL_HEARTBEAT)
                .expires(PULL_EXPIRES)
                .messages()
                .await
            {
                Ok(m) => m,
                Err(e) => {
                    eprintln!(
                        "pacer serve: cannot pull from {} ({e}); retrying in {backoff:?}",
                        self.engine.subjects().consumer()
                    );
                    if wait_or_shutdown(&mut shutdown, backoff).await {
                        break 'outer;
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            };
            loop {
                if let Some(guard) = self.guard.clone() {
                    let checked = guard.check();
                    if checked.is_err() || resync {
                        if guard.is_lost() {
                            lost = checked.err();
                            break 'outer;
                        }
                        // Lapsed: take nothing until the lease is renewed or taken
                        // back, then store first what was delivered meanwhile.
                        drop(messages);
                        if let Err(e) = checked {
                            eprintln!("pacer serve: {e}; waiting for it to be renewed");
                        }
                        loop {
                            if wait_or_shutdown(&mut shutdown, Duration::from_millis(200)).await {
                                break 'outer;
                            }
                            if guard.is_lost() {
                                lost = guard.check().err();
                                break 'outer;
                            }
                            if guard.check().is_ok() {
                                break;
                            }
                        }
                        eprintln!("pacer serve: the engine lease is held: storing what was delivered meanwhile");
                        loop {
                            let caught_up = match self.consumer().await {
                                Ok(mut c) => {
                                    self.catch_up(&mut c, &shutdown, CatchUp::Delivered).await
                                }
                                Err(e) => Err(e),
                            };
                            match caught_up {
                                Ok(c) if c.finished => break,
                                Ok(_) => break 'outer,
                                Err(e @ NatsError::Log(_)) => return Err(e),
                                Err(e) => {
                                    eprintln!("pacer serve: {e}; retrying");
                                    if wait_or_shutdown(&mut shutdown, Duration::from_secs(1)).await
                                    {
                                        break 'outer;
                                    }
                                }
                            }
                        }
                        resync = false;
                        continue 'outer;
                    }
                }
                self.hand_over();
                self.save_published_seq(false)?;
                assert!(
                    !publisher.0.is_finished(),
                    "the outbox's publisher ended while the engine runs"
                );
                if self.waiting.len() >= OUTBOX_MAX {
                    // The publisher cannot keep up (NATS refuses alerts; it retries on
                    // its own back-off): stop taking events while the outbox is full
                    // (they would only add to it), and look for room again soon.
                    if last_full_said.elapsed() >= Duration::from_secs(5) {
                        last_full_said = Instant::now();
                        eprintln!(
                            "pacer serve: {} alert messages wait for NATS; not taking events until they are out",
                            self.waiting.len()
                        );
                    }
                    if wait_or_shutdown(&mut shutdown, Duration::from_millis(50)).await {
                        break 'outer;
                    }
                    continue;
                }
                self.count_alerts();
                let next = tokio::select! {
                    biased;
                    _ = shutdown.changed() => {
                        // Stop fetching; store and ack what is already here, and what
                        // was on its way (a short grace, at most one batch).
                        let mut batch = Vec::new();
                        let grace = tokio::time::Instant::now() + Duration::from_millis(300);
                        while batch.len() < batch_max {
                            match tokio::time::timeout_at(grace, messages.next()).await {
                                Ok(Some(Ok(m))) => batch.push(m),
                                _ => break,
                            }
                        }
                        if !batch.is_empty() {
                            if let Err(e) = self.handle(batch).await {
                                if matches!(e, NatsError::Log(_)) {
                                    return Err(e);
                                }
                                if matches!(e, NatsError::LeaseLost { .. }) {
                                    lost = Some(e);
                                    break 'outer;
                                }
                                eprintln!("pacer serve: {e}; what was not acked will be redelivered");
                            }
                        }
                        break 'outer;
                    }
                    _ = tokio::time::sleep_until(next_tick) => {
                        if ticking {
                            self.tick(tick_every);
                        }
                        next_tick = tokio::time::Instant::now() + tick_every;
                        continue;
                    }
                    // Entries wait for room in the publisher's queue: look again soon.
                    _ = tokio::time::sleep(Duration::from_millis(50)), if !self.waiting.is_empty() => {
                        continue;
                    }
                    next = messages.next() => next,
                };
                match next {
                    Some(Ok(first)) => {
                        backoff = Duration::from_millis(100);
                        let mut batch = vec![first];
                        while batch.len() < batch_max {
                            match messages.next().now_or_never() {
                                Some(Some(Ok(m))) => batch.push(m),
                                _ => break,
                            }
                        }
                        if let Err(e) = self.handle(batch).await {
                            if matches!(e, NatsError::Log(_)) {
                                return Err(e);
                            }
                            if matches!(e, NatsError::LeaseLost { .. }) {
                                if self.guard.as_ref().is_some_and(Guard::is_lost) {
                                    lost = Some(e);
                                    break 'outer;
                                }
                                // Lapsed: the loop's top waits for the lease, then
                                // stores what this batch left unacknowledged.
                                resync = true;
                                continue;
                            }
                            eprintln!("pacer serve: {e}; the batch will be redelivered");
                            if wait_or_shutdown(&mut shutdown, backoff).await {
                                break 'outer;
                            }
                            backoff = (backoff * 2).min(BACKOFF_MAX);
                        }
                    }
                    Some(Err(e)) => {
                        eprintln!("pacer serve: pulling messages: {e}; retrying in {backoff:?}");
                        if wait_or_shutdown(&mut shutdown, backoff).await {
                            break 'outer;
                        }
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        continue 'outer;
                    }
                    None => continue 'outer,
                }
            }
        }
        drop(gauge);
        // NATS may be away at the stop: publish what can be published in a few seconds;
        // the rest is re-created from the log at the next start.
        let stop = tokio::time::Instant::now() + Duration::from_secs(5);
        if let Some(tx) = self.to_publisher.take() {
            while let Some(entry) = self.waiting.pop_front() {
                if !matches!(
                    tokio::time::timeout_at(stop, tx.send(entry)).await,
                    Ok(Ok(()))
                ) {
                    break;
                }
            }
        }
        // Out of time: the publisher is aborted as it drops.
        let _ = tokio::time::timeout_at(stop, &mut publisher.0).await;
        drop(publisher);
        self.save_published_seq(true)?;
        match (lost, lease) {
            (Some(e), _) => Err(e),
            (None, Some(held)) => {
                held.release().await;
                Ok(())
            }
            (None, None) => Ok(()),
        }
    }

    async fn consumer(&self) -> Result<PullConsumer, NatsError> {
        let name = self.engine.subjects().consumer();
        let err = |doing, e: &dyn std::fmt::Display| consumer_err(&name, doing, e);
        let stream = self
            .js
            .get_stream(self.engine.subjects().events_stream())
            .await
            .map_err(|e| err("finding the events stream", &e))?;
        let mut consumer: PullConsumer = stream
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: Duration::from_secs(self.engine.config().serve.ack_wait_s),
                    max_ack_pending: self.engine.config().serve.acks_pending_max,
                    filter_subject: self.engine.subjects().events_all(),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| err("creating the durable consumer", &e))?;
        // An existing consumer is returned as it is: make sure it reads our subjects.
        let info = consumer
            .info()
            .await
            .map_err(|e| err("reading the consumer", &e))?;
        if info.config.filter_subject != self.engine.subjects().events_all() {
            return Err(err(
                "checking the durable consumer",
                &format!(
                    "it filters {:?}, not {:?}; delete it or choose another subject prefix",
                    info.config.filter_subject,
                    self.engine.subjects().events_all()
                ),
            ));
        }
        Ok(consumer)
    }
}

/// The outbox's publisher: publishes its messages to JetStream in order, a window
/// of them before their PubAcks are awaited, off the engine's loop, so the fold never
/// waits for the broker. A message that fails is published again (same
/// `Nats-Msg-Id`, so the stream keeps one) after a back-off, and nothing after it
/// counts as published before it does. Returns when the engine closes the queue and
/// everything in it is out.
async fn publish_outbox(
    js: jetstream::Context,
    mut queue_in: mpsc::Receiver<Entry>,
    progress: Progress,
    metrics: Arc<Metrics>,
) {
    let mut queue: VecDeque<Entry> = VecDeque::new();
    let mut backoff = Duration::from_millis(100);
    loop {
        if queue.is_empty() {
            match queue_in.recv().await {
                Some(e) => queue.push_back(e),
                None => return,
            }
        }
        while queue.len() < 4 * PUBLISH_WINDOW {
            match queue_in.try_recv() {
                Ok(e) => queue.push_back(e),
                Err(_) => break,
            }
        }
        let mut acks = Vec::with_capacity(PUBLISH_WINDOW);
        for entry in &queue {
            let Entry::Message(out) = entry else {
                continue;
            };
            if acks.len() == PUBLISH_WINDOW {
                break;
            }
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", out.msg_id.as_str());
            match js
                .publish_with_headers(out.subject.clone(), headers, out.payload.clone())
                .await
            {
                Ok(ack) => acks.push(ack),
                Err(e) => {
                    eprintln!(
                        "pacer serve: publishing to {} failed, will retry: {e}",
                        out.subject
                    );
                    break;
                }
            }
        }
        let mut acked = 0usize;
        for ack in acks {
            match ack.await {
                Ok(_) => acked += 1,
                Err(e) => {
                    eprintln!("pacer serve: no acknowledgement for an alert, will retry: {e}");
                    break;
                }
            }
        }
        // Take off the front what is acknowledged, and the marks between.
        while let Some(front) = queue.front() {
            match front {
                Entry::Through(seq) => progress.reached(*seq),
                Entry::Message(_) if acked > 0 => {
                    acked -= 1;
                    metrics.alerts_published.inc();
                }
                Entry::Message(_) => break,
            }
            queue.pop_front();
        }
        if matches!(queue.front(), Some(Entry::Message(_))) {
            // The front message failed: wait before trying it again.
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        } else {
            backoff = Duration::from_millis(100);
        }
    }
}

/// What a standby knows when it takes the lease over.
pub struct Takeover {
    pub lease: Lease,
    /// The holder it saw last, and how long ago its last renewal was seen (`None`
    /// when it saw none: the lease had expired before this engine started).
    pub last_seen: Option<(Holder, Duration)>,
}

impl Takeover {
    /// The mark of the engine that held the lease before this one: its alert changes
    /// up to that seq are published. From the value released or last seen, or, when
    /// the lease expired with nobody watching, from the marks bucket. `None` for
    /// this engine's own lease (its log knows) or when nothing is known of the one
    /// before.
    pub fn published_before(&self) -> Option<u64> {
        let me = &self.lease.holder().engine;
        match (&self.lease.previous, &self.last_seen) {
            (Some(previous), _) if &previous.engine == me => None,
            (Some(previous), _) => Some(previous.published_seq),
            (None, Some((seen, _))) => Some(seen.published_seq),
            // Expired with nobody watching: the holder's last mark, kept apart.
            (None, None) => self.lease.expired.as_ref().map(|h| h.published_seq),
        }
    }
}

/// Keeps the consumer's backlog gauge up to date, every 5 s, off the engine's loop.
async fn count_pending(mut consumer: PullConsumer, metrics: Arc<Metrics>) {
    loop {
        if let Ok(info) = consumer.info().await {
            metrics.consumer_pending.set(info.num_pending as i64);
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// An error of the engine's consumer `consumer` while `doing`.
fn consumer_err(consumer: &str, doing: &'static str, e: &dyn std::fmt::Display) -> NatsError {
    NatsError::Consumer {
        consumer: consumer.to_owned(),
        doing,
        reason: e.to_string(),
    }
}

/// Says why a standby's look failed, at most once a minute for the same reason.
fn say_failing(failing: &mut Option<(String, Instant)>, e: &NatsError) {
    let e = e.to_string();
    if failing
        .as_ref()
        .is_some_and(|(said, at)| *said == e && at.elapsed() < Duration::from_secs(60))
    {
        return;
    }
    eprintln!("pacer serve: standing by: {e}; retrying");
    *failing = Some((e, Instant::now()));
}

/// Sleeps for `d`; `true` when shutdown was asked for meanwhile.
async fn wait_or_shutdown(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        _ = shutdown.changed() => true,
        _ = tokio::time::sleep(d) => false,
    }
}
