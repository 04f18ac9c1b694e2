//! The engine core: one path for every event, whatever carried it here —
//! decode → validate → dedupe → append → flush → fold → changes.
//!
//! [`Engine`] owns the log and the model (the projections) and knows nothing of HTTP
//! or NATS. The modes are thin adapters that drive it: the one-process server
//! ([`crate::local`]) answers a request after [`Engine::append`] and sends what
//! [`Engine::fold`] returns to live subscribers; the NATS pipeline
//! ([`crate::nats::pipeline`]) acks its messages after [`Engine::append`] and hands
//! what [`Engine::fold`] returns to the durable outbox ([`crate::outbox`]); the
//! benchmarks drive the same calls. What a stored event's alert changes call for is
//! an [`Outgoing`] message, named by [`Subjects`], with an id made of the alert id,
//! the change and the event's id, so that publishing it again is harmless (from any
//! engine).

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use pacer_projections::alerts::{alert_view, Change};
use pacer_projections::digest::{digest, Audience};
use pacer_projections::event::{Event, EventBody, Recorded};
use pacer_projections::model::Model;
use pacer_projections::time::{IsoWeek, Timestamp};
use serde_json::Value;

use crate::config::{Config, ServeConfig};
use crate::error::{LogError, Rejection};
use crate::log::{Appended, Log, VoidTargets};
use crate::metrics::Metrics;
use crate::output::alert_object;
use crate::subjects::Subjects;
use crate::validate::BatchRules;

/// The log and the model of one engine, and the names its messages go by.
pub struct Engine {
    log: Log,
    state: Arc<RwLock<Model>>,
    config: Config,
    subjects: Subjects,
    metrics: Arc<Metrics>,
}

/// A batch made durable by [`Engine::append`]: its stored events, in seq order, and
/// the events their voids name (read before the append).
pub struct Stored {
    pub records: Vec<Recorded>,
    pub targets: VoidTargets,
    /// Events of the batch the log already held (same `event_id`): not stored again.
    pub duplicates: usize,
}

impl Engine {
    /// Wraps a log whose projections are already rebuilt into `state`.
    pub fn new(log: Log, state: Arc<RwLock<Model>>, config: Config, metrics: Arc<Metrics>) -> Self {
        Engine {
            log,
            subjects: Subjects::new(&config.nats.subject_prefix),
            state,
            config,
            metrics,
        }
    }

    pub fn log(&self) -> &Log {
        &self.log
    }

    pub fn log_mut(&mut self) -> &mut Log {
        &mut self.log
    }

    /// The log and the model, let go.
    pub fn into_parts(self) -> (Log, Arc<RwLock<Model>>) {
        (self.log, self.state)
    }

    pub fn state(&self) -> &Arc<RwLock<Model>> {
        &self.state
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The rules of one batch, with the exchange rates the model holds: rates an
    /// event of the batch sets count for the events after it.
    pub fn rules(&self) -> BatchRules {
        let fx = self.state.read().expect("not poisoned").fx().clone();
        BatchRules::new(self.config.org.currency, self.config.org.timezone, fx)
    }

    /// Validates one decoded event against the rules of its batch, the log (a
    /// duplicate is not an error: it is skipped at the append) and the plans the
    /// model holds. The outer error is the log's; the inner, the event's.
    pub fn check(
        &mut self,
        rules: &mut BatchRules,
        ev: &Event,
    ) -> Result<Result<(), Rejection>, LogError> {
        let log = &mut self.log;
        Ok(rules
            .check(ev, |id| log.seq_of(id).map(|s| s.is_some()))?
            .and_then(|()| {
                // Only a plan part can clash: the model is not locked for the rest.
                if !matches!(ev.body, EventBody::PlanPublished(_)) {
                    return Ok(());
                }
                let state = self.state.read().expect("not poisoned");
                crate::validate::plan_part_clash(&state, ev).map_or(Ok(()), Err)
            }))
    }

    /// Dedupes, appends and flushes a batch of checked events: durable when this
    /// returns. Counts it in the metrics. Blocking (disk).
    pub fn append(
        &mut self,
        events: Vec<Event>,
        recorded_at: Timestamp,
    ) -> Result<Stored, LogError> {
        let targets = VoidTargets::before_append(&mut self.log, &events)?;
        let (records, duplicates) =
            append_counted(&mut self.log, events, recorded_at, &self.metrics)?;
        Ok(Stored {
            records,
            targets,
            duplicates,
        })
    }

    /// Folds a stored batch into the model, in seq order, and returns the messages
    /// its alert changes call for (and, with `serve`, each team's weekly digest when
    /// a tick crossed its time).
    pub fn fold(&self, stored: &Stored, serve: Option<&ServeConfig>) -> Vec<Outgoing> {
        self.fold_part(stored, 0..stored.records.len(), serve)
    }

    /// [`Engine::fold`] of the records in `part` only (the parts of a batch in
    /// order, each once): a caller that hands each part's messages on before folding
    /// the next does not keep the first event's alert waiting for the whole batch,
    /// and readers get the model between parts.
    pub fn fold_part(
        &self,
        stored: &Stored,
        part: std::ops::Range<usize>,
        serve: Option<&ServeConfig>,
    ) -> Vec<Outgoing> {
        let mut state = self.state.write().expect("not poisoned");
        let mut out = Vec::new();
        for rec in &stored.records[part] {
            let before = state.now();
            state.apply(rec, stored.targets.of(rec, &stored.records));
            out.extend(changes_out(
                &state,
                &self.subjects,
                rec,
                state.alert_book().changes(),
            ));
            if let (Some(serve), EventBody::ClockTick) = (serve, &rec.event.body) {
                out.extend(digests_out(&state, &self.subjects, serve, before, rec.seq));
            }
        }
        out
    }
}

/// Alert changes waiting for slow live subscribers; a subscriber that falls further
/// behind is told how many it missed.
pub const STREAM_BACKLOG_MAX: usize = 1024;

/// One alert change for live subscribers: its id and its JSON (the same object
/// `pacer serve` publishes on `<prefix>.alerts.<team>.<rep>`).
#[derive(Clone, Debug)]
pub struct AlertMessage {
    pub id: String,
    /// `<prefix>.alerts.<team>.<rep>`: whose it is, for scoping the stream.
    pub subject: String,
    pub json: Bytes,
}

/// The `clock_tick` a running engine appends at `at`.
pub fn tick_event(at: Timestamp) -> Event {
    Event {
        event_id: format!("pacer-tick-{}", at.to_rfc3339()),
        source: "pacer-serve".into(),
        occurred_at: at,
        body: EventBody::ClockTick,
    }
}

/// Appends and flushes a batch, counting it in the metrics; returns the stored
/// events as records (in seq order) and how many were duplicates.
fn append_counted(
    log: &mut Log,
    events: Vec<Event>,
    recorded_at: Timestamp,
    metrics: &Metrics,
) -> Result<(Vec<Recorded>, usize), LogError> {
    let started = std::time::Instant::now();
    let (outcomes, stored) = log.append_recorded(events, recorded_at)?;
    metrics
        .flush_seconds
        .observe(started.elapsed().as_secs_f64());
    let duplicates = outcomes
        .iter()
        .filter(|o| matches!(o, Appended::Duplicate(_)))
        .count();
    metrics.accepted.inc_by(stored.len() as u64);
    metrics.duplicates.inc_by(duplicates as u64);
    Ok((stored, duplicates))
}

/// A message for the alerts stream, waiting for its PubAck.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub subject: String,
    pub msg_id: String,
    pub payload: Bytes,
    /// The seq of the event that caused it.
    pub seq: u64,
}

/// The messages announcing the alert changes of the event `rec`. Each one's
/// `Nats-Msg-Id` is `<prefix>:<alert_id>:<change>:<event key>`, the event key being
/// [`event_key`] of its `event_id`: the same change of the same event has the same id
/// in every engine, whatever seq its log gave the event.
pub fn changes_out(
    state: &Model,
    subjects: &Subjects,
    rec: &Recorded,
    changes: &[(String, Change)],
) -> Vec<Outgoing> {
    let seq = rec.seq;
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
    let event = event_key(&rec.event.event_id);
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
            msg_id: format!("{}:{id}:{}:{event}", subjects.prefix, change.as_str()),
            payload: Bytes::from(serde_json::to_vec(&obj).expect("JSON values serialise")),
            seq,
        });
    }
    out
}

/// Each team's weekly digest, when the tick that was just folded crossed this week's
/// digest time (`before` is "now" before the tick).
pub fn digests_out(
    state: &Model,
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

/// An event's key in alert message ids: the first 16 hex digits of the SHA-256 of
/// its `event_id` (ids run to 256 bytes of any characters; this is short and plain).
pub fn event_key(event_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(event_id.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The `Nats-Msg-Id` of a team's digest for a week: published once per week.
pub fn digest_msg_id(team: &str, week: IsoWeek) -> String {
    format!("digest:{team}:{week}")
}
