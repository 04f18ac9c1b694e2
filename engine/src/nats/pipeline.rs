//! The engine's main loop: JetStream in, the log, the projections, alerts out.
//!
//! For each batch taken from the durable pull consumer: decode and validate every
//! message (a bad one goes, as it came, to `<prefix>.dlq.<reason>` with the error in
//! a `Pacer-Error` header, and is terminated once the dead-letter stream has it);
//! dedupe by `event_id`, append, **one flush, then ack** every message of the batch.
//! Only then are the stored events folded into the projections and the alert changes
//! they caused published (through JetStream, with a `Nats-Msg-Id` made of the alert
//! id, the change and the event's seq, so a restart that publishes them again is
//! deduplicated by the stream).
//!
//! A `clock_tick` is appended every `tick_interval_s` through the same path, and the
//! weekly digest is published when a tick crosses the configured weekday and local
//! time. Which alert changes have been published is remembered in the log's meta
//! (`nats.published_seq`); on start-up the rebuild publishes whatever came after it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{pull, AckPolicy, PullConsumer};
use async_nats::jetstream::{self, AckKind};
use async_nats::HeaderMap;
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use pacer_projections::alerts::{alert_view, Change};
use pacer_projections::digest::{digest, Audience};
use pacer_projections::event::{Event, EventBody, Recorded};
use pacer_projections::state::State;
use pacer_projections::time::{IsoWeek, Timestamp};
use serde_json::Value;
use tokio::sync::watch;

use super::metrics::Metrics;
use super::{Subjects, ERROR_HEADER};
use crate::config::{Config, ServeConfig};
use crate::error::{NatsError, Rejection};
use crate::ingest::too_long;
use crate::local::{append_counted, tick_event};
use crate::log::{Log, VoidTargets};
use crate::output::alert_object;
use crate::replay::rebuild_for_append;
use crate::validate::BatchRules;
use crate::wire::decode;

/// The meta key of the last seq whose alert changes JetStream has acknowledged.
const PUBLISHED_SEQ: &str = "nats.published_seq";

/// How long an ack may wait for room in the client's buffer (NATS away).
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// At most this many messages wait for publishing before the engine stops taking
/// new events (NATS refuses alerts; events would only pile up more).
const OUTBOX_MAX: usize = 100_000;

/// The longest pause between retries when NATS is away.
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// A message for the alerts stream, waiting for its PubAck.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub subject: String,
    pub msg_id: String,
    pub payload: Bytes,
    /// The seq of the event that caused it.
    pub seq: u64,
}

/// The running engine.
pub struct Pipeline {
    log: Log,
    state: Arc<RwLock<State>>,
    config: Config,
    subjects: Subjects,
    js: jetstream::Context,
    metrics: Arc<Metrics>,
    clock: Box<dyn FnMut() -> Timestamp + Send>,
    outbox: VecDeque<Outgoing>,
    /// Everything up to this seq has had its alert changes acknowledged by JetStream.
    published_seq: u64,
    published_seq_saved: u64,
    last_saved: Instant,
    alerts_dirty: bool,
    last_counted: Instant,
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
    mut progress: impl FnMut(u64),
) -> Result<Rebuilt, NatsError> {
    let published_seq = match log.meta(PUBLISHED_SEQ)?.and_then(|s| s.parse::<u64>().ok()) {
        Some(seq) => seq,
        None => {
            let seq = log.last_seq();
            log.set_meta(PUBLISHED_SEQ, &seq.to_string())?;
            seq
        }
    };
    let subjects = Subjects::new(&config.nats.subject_prefix);
    let mut unpublished = Vec::new();
    let state = rebuild_for_append(log, &config.org, |state, rec, before| {
        if rec.seq > published_seq {
            unpublished.extend(changes_out(
                state,
                &subjects,
                rec.seq,
                state.alert_book().changes(),
            ));
            if matches!(rec.event.body, EventBody::ClockTick) {
                unpublished.extend(digests_out(
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
    Ok(Rebuilt {
        state,
        published_seq,
        unpublished,
    })
}

/// The projections rebuilt for `pacer serve`, and what the last run may not have
/// published.
pub struct Rebuilt {
    pub state: State,
    /// Messages up to this seq are known to be published.
    pub published_seq: u64,
    /// The messages of later events, in seq order.
    pub unpublished: Vec<Outgoing>,
}

/// The messages announcing one event's alert changes.
pub(crate) fn changes_out(
    state: &State,
    subjects: &Subjects,
    seq: u64,
    changes: &[(String, Change)],
) -> Vec<Outgoing> {
    if changes.is_empty() {
        return Vec::new();
    }
    let book = state.alert_book();
    let reps: BTreeSet<&str> = changes
        .iter()
        .filter_map(|(id, _)| book.get(id))
        .map(|a| a.rep.as_str())
        .collect();
    let focus = book.focus_of(reps, &state.config().alerts);
    let org = state.config();
    let mut out = Vec::new();
    for (id, change) in changes {
        let Some(view) = alert_view(state, id, &focus) else {
            continue;
        };
        let mut obj = alert_object(&view, org.currency, org.timezone);
        if let Value::Object(m) = &mut obj {
            m.insert("change".into(), Value::String(change.as_str().to_owned()));
            m.insert("seq".into(), Value::from(seq));
        }
        out.push(Outgoing {
            subject: subjects.alert(&view.team, &view.alert.rep),
            msg_id: format!("{}:{id}:{}:{seq}", subjects.prefix, change.as_str()),
            payload: Bytes::from(serde_json::to_vec(&obj).expect("JSON values serialise")),
            seq,
        });
    }
    out
}

/// Each team's weekly digest, when the tick that was just folded crossed this week's
/// digest time (`before` is "now" before the tick).
fn digests_out(
    state: &State,
    subjects: &Subjects,
    serve: &ServeConfig,
    before: Option<Timestamp>,
    seq: u64,
) -> Vec<Outgoing> {
    let (Some(before), Some(now)) = (before, state.now()) else {
        return Vec::new();
    };
    let tz = state.config().timezone;
    let week = now.local_date(tz).iso_week();
    let day = week
        .monday()
        .add_days(serve.digest_weekday.num_days_from_monday() as i32);
    let slot = Timestamp::from_micros(
        day.at_local_hour(serve.digest_hour, tz).micros()
            + i64::from(serve.digest_minute) * 60_000_000,
    );
    if !(before < slot && slot <= now) {
        return Vec::new();
    }
    let month = now.local_date(tz).month();
    let teams: BTreeSet<String> = state
        .reps()
        .values()
        .filter(|r| r.registered && r.departed.is_none_or(|d| d > month))
        .map(|r| r.at(month).team)
        .collect();
    let mut out = Vec::new();
    for team in teams {
        if let Some(d) = digest(state, &Audience::Team(team.clone()), week) {
            let json = crate::digest::digest_json(&d, state.config().currency, tz);
            out.push(Outgoing {
                subject: subjects.digest(&team),
                msg_id: format!("{}:{}", subjects.prefix, digest_msg_id(&team, week)),
                payload: Bytes::from(serde_json::to_vec(&json).expect("JSON values serialise")),
                seq,
            });
        }
    }
    out
}

impl Pipeline {
    /// Wraps a log whose projections are already rebuilt into `state`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        log: Log,
        state: Arc<RwLock<State>>,
        config: Config,
        js: jetstream::Context,
        metrics: Arc<Metrics>,
        clock: Box<dyn FnMut() -> Timestamp + Send>,
        published_seq: u64,
    ) -> Self {
        let subjects = Subjects::new(&config.nats.subject_prefix);
        Pipeline {
            log,
            state,
            config,
            subjects,
            js,
            metrics,
            clock,
            outbox: VecDeque::new(),
            published_seq,
            published_seq_saved: published_seq,
            last_saved: Instant::now(),
            alerts_dirty: true,
            last_counted: Instant::now() - Duration::from_secs(60),
        }
    }

    /// Queues the messages the rebuild found unpublished.
    pub fn queue_unpublished(&mut self, messages: Vec<Outgoing>) {
        self.alerts_dirty = true;
        self.outbox.extend(messages);
    }

    /// Folds stored events into the projections and queues what they changed.
    fn apply(&mut self, records: Vec<Recorded>, targets: &VoidTargets) {
        let state = Arc::clone(&self.state);
        let mut state = state.write().expect("not poisoned");
        for rec in &records {
            let before = state.now();
            state.apply(rec, targets.of(rec, &records));
            let changes = state.alert_book().changes().to_vec();
            let mut out = changes_out(&state, &self.subjects, rec.seq, &changes);
            if matches!(rec.event.body, EventBody::ClockTick) {
                out.extend(digests_out(
                    &state,
                    &self.subjects,
                    &self.config.serve,
                    before,
                    rec.seq,
                ));
            }
            if !out.is_empty() {
                self.alerts_dirty = true;
            }
            self.outbox.extend(out);
            if self.outbox.is_empty() {
                self.published_seq = self.published_seq.max(rec.seq);
            }
        }
    }

    /// Publishes the outbox in order, waiting for each PubAck (pipelined); stops at the
    /// first failure and keeps the rest for the next try.
    async fn flush_outbox(&mut self) {
        const WINDOW: usize = 256;
        while !self.outbox.is_empty() {
            let take = self.outbox.len().min(WINDOW);
            let mut acks = Vec::with_capacity(take);
            for out in self.outbox.iter().take(take) {
                let mut headers = HeaderMap::new();
                headers.insert("Nats-Msg-Id", out.msg_id.as_str());
                match self
                    .js
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
            let mut done = 0;
            for ack in acks {
                match ack.await {
                    Ok(_) => done += 1,
                    Err(e) => {
                        eprintln!("pacer serve: no acknowledgement for an alert, will retry: {e}");
                        break;
                    }
                }
            }
            for _ in 0..done {
                if let Some(out) = self.outbox.pop_front() {
                    self.metrics.alerts_published.inc();
                    if self.outbox.front().is_none_or(|next| next.seq > out.seq) {
                        self.published_seq = self.published_seq.max(out.seq);
                    }
                }
            }
            if done < take {
                return;
            }
        }
        let last = self.state.read().expect("not poisoned").last_seq();
        self.published_seq = self.published_seq.max(last);
    }

    /// Remembers how far alert publishing got, at most once a second (a crash re-sends
    /// the rest, and the stream's duplicate window drops what it already has).
    fn save_published_seq(&mut self, force: bool) -> Result<(), NatsError> {
        if self.published_seq > self.published_seq_saved
            && (force || self.last_saved.elapsed() >= Duration::from_secs(1))
        {
            self.log
                .set_meta(PUBLISHED_SEQ, &self.published_seq.to_string())?;
            self.published_seq_saved = self.published_seq;
            self.last_saved = Instant::now();
        }
        Ok(())
    }

    /// Appends events and flushes; returns what was stored, as records, and the
    /// events their voids name (read before the append: a failed read stores nothing).
    fn append(&mut self, events: Vec<Event>) -> Result<(Vec<Recorded>, VoidTargets), NatsError> {
        let at = (self.clock)();
        let (stored, targets) = tokio::task::block_in_place(|| {
            let targets = VoidTargets::before_append(&mut self.log, &events)?;
            let (stored, _) = append_counted(&mut self.log, events, at, &self.metrics)?;
            Ok::<_, NatsError>((stored, targets))
        })?;
        Ok((stored, targets))
    }

    /// Appends a `clock_tick` at the wall clock's now.
    fn tick(&mut self) -> Result<(), NatsError> {
        let tick = tick_event((self.clock)());
        let (stored, targets) = self.append(vec![tick])?;
        self.apply(stored, &targets);
        Ok(())
    }

    /// One batch of messages, in the brief's order.
    async fn handle(&mut self, messages: Vec<jetstream::Message>) -> Result<(), NatsError> {
        self.metrics.batch_events.observe(messages.len() as f64);
        let limits = self.config.limits;
        let fx = self.state.read().expect("not poisoned").fx().clone();
        let mut rules = BatchRules::new(self.config.org.currency, self.config.org.timezone, fx);
        let mut good: Vec<(Event, jetstream::Message)> = Vec::with_capacity(messages.len());
        for msg in messages {
            let checked = if msg.payload.len() > limits.bytes_max() {
                Err(too_long(msg.payload.len(), limits.bytes_max()))
            } else {
                match decode(&msg.payload, &limits) {
                    Ok(ev) => rules
                        .check(&ev, |id| self.log.seq_of(id).map(|s| s.is_some()))?
                        .and_then(|()| {
                            let state = self.state.read().expect("not poisoned");
                            crate::validate::plan_part_clash(&state, &ev).map_or(Ok(()), Err)
                        })
                        .map(|()| ev),
                    Err(r) => Err(r),
                }
            };
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
            return Ok(());
        }
        let (events, messages): (Vec<Event>, Vec<jetstream::Message>) = good.into_iter().unzip();
        let (stored, targets) = self.append(events)?;
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
        self.apply(stored, &targets);
        Ok(())
    }

    /// Sends a rejected message to the dead-letter stream, then terminates it.
    async fn dead_letter(
        &mut self,
        msg: &jetstream::Message,
        rejection: &Rejection,
    ) -> Result<(), NatsError> {
        let subject = self.subjects.dlq(rejection.kind.slug());
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
        self.metrics.rejected(rejection.kind.slug());
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
        let state = self.state.read().expect("not poisoned");
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
        self.metrics.set_alerts(&counts);
        self.alerts_dirty = false;
        self.last_counted = Instant::now();
    }

    /// Runs until `shutdown` turns true: then takes what was already fetched, stores
    /// and acks it, publishes what it can, and returns.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), NatsError> {
        let consumer = loop {
            match self.consumer().await {
                Ok(c) => break c,
                Err(e) => {
                    eprintln!("pacer serve: {e}; retrying");
                    if wait_or_shutdown(&mut shutdown, Duration::from_secs(1)).await {
                        return Ok(());
                    }
                }
            }
        };
        let ticking = self.config.serve.tick_interval_s > 0;
        // Without ticks of its own, the engine waits a year between looks at the clock.
        let tick_every = Duration::from_secs(if ticking {
            self.config.serve.tick_interval_s
        } else {
            365 * 24 * 3600
        });
        if ticking {
            self.tick()?;
        }
        let mut next_tick = tokio::time::Instant::now() + tick_every;
        let mut backoff = Duration::from_millis(100);
        let mut last_info = Instant::now() - Duration::from_secs(60);
        let batch_max = self.config.serve.batch_events_max;
        'outer: loop {
            let mut messages = match consumer
                .stream()
                .max_messages_per_batch(batch_max)
                .heartbeat(Duration::from_secs(5))
                .expires(Duration::from_secs(30))
                .messages()
                .await
            {
                Ok(m) => m,
                Err(e) => {
                    eprintln!(
                        "pacer serve: cannot pull from {} ({e}); retrying in {backoff:?}",
                        self.subjects.consumer()
                    );
                    if wait_or_shutdown(&mut shutdown, backoff).await {
                        break 'outer;
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            };
            loop {
                self.flush_outbox().await;
                self.save_published_seq(false)?;
                if !self.outbox.is_empty() {
                    // Publishing fails: back off, and stop taking events while the
                    // outbox is full (they would only add to it).
                    let full = self.outbox.len() >= OUTBOX_MAX;
                    if full {
                        eprintln!(
                            "pacer serve: {} alert messages wait for NATS; not taking events until they are out",
                            self.outbox.len()
                        );
                    }
                    if wait_or_shutdown(&mut shutdown, backoff).await {
                        break 'outer;
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    if full {
                        continue;
                    }
                }
                self.count_alerts();
                if last_info.elapsed() >= Duration::from_secs(5) {
                    last_info = Instant::now();
                    let mut c = consumer.clone();
                    if let Ok(info) = c.info().await {
                        self.metrics.consumer_pending.set(info.num_pending as i64);
                    }
                }
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
                                eprintln!("pacer serve: {e}; what was not acked will be redelivered");
                            }
                        }
                        break 'outer;
                    }
                    _ = tokio::time::sleep_until(next_tick) => {
                        if ticking {
                            self.tick()?;
                        }
                        next_tick = tokio::time::Instant::now() + tick_every;
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
        // NATS may be away at the stop: publish what can be published in a few seconds;
        // the rest is re-created from the log at the next start.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.flush_outbox()).await;
        self.save_published_seq(true)?;
        Ok(())
    }

    async fn consumer(&self) -> Result<PullConsumer, NatsError> {
        let name = self.subjects.consumer();
        let err = |doing: &'static str, e: &dyn std::fmt::Display| NatsError::Consumer {
            consumer: name.clone(),
            doing,
            reason: e.to_string(),
        };
        let stream = self
            .js
            .get_stream(self.subjects.events_stream())
            .await
            .map_err(|e| err("finding the events stream", &e))?;
        let mut consumer: PullConsumer = stream
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: Duration::from_secs(self.config.serve.ack_wait_s),
                    max_ack_pending: self.config.serve.acks_pending_max,
                    filter_subject: self.subjects.events_all(),
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
        if info.config.filter_subject != self.subjects.events_all() {
            return Err(err(
                "checking the durable consumer",
                &format!(
                    "it filters {:?}, not {:?}; delete it or choose another subject prefix",
                    info.config.filter_subject,
                    self.subjects.events_all()
                ),
            ));
        }
        Ok(consumer)
    }
}

/// The `Nats-Msg-Id` of a team's digest for a week: published once per week.
pub fn digest_msg_id(team: &str, week: IsoWeek) -> String {
    format!("digest:{team}:{week}")
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
