//! The one-process engine: `pacer serve` without a broker. Events arrive over HTTP
//! (the webhook endpoints of [`crate::http`]) and go straight into the log, in the
//! brief's order: decode → validate → dedupe → append → flush, and only then is the
//! request answered. The projections fold them at once, and each alert change is
//! sent to the live subscribers of `GET /v1/alerts/stream`.
//!
//! Appends are serialised by one mutex around the log: a request's events are one
//! batch with one flush, and requests queue for the lock.

use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use pacer_projections::event::{Event, EventBody, Recorded};
use pacer_projections::state::State;
use pacer_projections::time::Timestamp;
use tokio::sync::broadcast;

use crate::config::Config;
use crate::error::{LogError, Rejection};
use crate::log::{Appended, Log, VoidTargets};
use crate::nats::metrics::Metrics;
use crate::nats::pipeline::changes_out;
use crate::nats::Subjects;
use crate::validate::BatchRules;

/// Alert changes waiting for slow live subscribers; a subscriber that falls further
/// behind is told how many it missed.
pub const STREAM_BACKLOG_MAX: usize = 1024;

/// Why a batch was not stored.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The event at `index` breaks a rule; nothing of the batch was stored.
    #[error("event {index}: {rejection}")]
    Rejected { index: usize, rejection: Rejection },
    #[error(transparent)]
    Log(#[from] LogError),
}

/// What a stored batch came to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Submitted {
    pub stored: usize,
    pub duplicates: usize,
}

/// One alert change for live subscribers: its id and its JSON (the same object
/// `pacer serve` publishes on `<prefix>.alerts.<team>.<rep>`).
#[derive(Clone, Debug)]
pub struct AlertMessage {
    pub id: String,
    /// `<prefix>.alerts.<team>.<rep>`: whose it is, for scoping the stream.
    pub subject: String,
    pub json: Bytes,
}

/// The log, the projections and the live alert feed of one process.
pub struct Local {
    log: Mutex<Log>,
    state: Arc<RwLock<State>>,
    config: Config,
    subjects: Subjects,
    alerts: broadcast::Sender<AlertMessage>,
    metrics: Arc<Metrics>,
    clock: Box<dyn Fn() -> Timestamp + Send + Sync>,
}

impl Local {
    /// Wraps a log whose projections are already rebuilt into `state`.
    pub fn new(
        log: Log,
        state: Arc<RwLock<State>>,
        config: Config,
        metrics: Arc<Metrics>,
        clock: Box<dyn Fn() -> Timestamp + Send + Sync>,
    ) -> Self {
        let (alerts, _) = broadcast::channel(STREAM_BACKLOG_MAX);
        Local {
            log: Mutex::new(log),
            subjects: Subjects::new(&config.nats.subject_prefix),
            state,
            config,
            alerts,
            metrics,
            clock,
        }
    }

    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    pub fn state(&self) -> &Arc<RwLock<State>> {
        &self.state
    }

    /// The live feed of alert changes: `subscribe` to it for the changes from now on.
    pub fn live(&self) -> broadcast::Sender<AlertMessage> {
        self.alerts.clone()
    }

    /// A tree of the log's database for a side record (the deal mirror).
    pub fn side_tree(&self, name: &str) -> Result<sled::Tree, LogError> {
        self.log.lock().expect("not poisoned").side_tree(name)
    }

    /// A reader of the log, for the queries.
    pub fn reader(&self) -> crate::log::LogReader {
        self.log.lock().expect("not poisoned").reader()
    }

    /// Checks a batch as [`Local::submit`] would, storing nothing.
    pub fn check(&self, events: &[Event]) -> Result<(), SubmitError> {
        let mut log = self.log.lock().expect("not poisoned");
        self.check_locked(&mut log, events)
    }

    fn check_locked(&self, log: &mut Log, events: &[Event]) -> Result<(), SubmitError> {
        let state = self.state.read().expect("not poisoned");
        let mut rules = BatchRules::new(
            self.config.org.currency,
            self.config.org.timezone,
            state.fx().clone(),
        );
        for (index, ev) in events.iter().enumerate() {
            let checked = rules
                .check(ev, |id| log.seq_of(id).map(|s| s.is_some()))?
                .and_then(|()| crate::validate::plan_part_clash(&state, ev).map_or(Ok(()), Err));
            if let Err(rejection) = checked {
                self.metrics.rejected(rejection.kind.slug());
                return Err(SubmitError::Rejected { index, rejection });
            }
        }
        Ok(())
    }

    /// Validates every event, then stores them all with one flush, or none: the
    /// first rule broken rejects the batch. Blocking (disk): call it off the async
    /// workers, or through [`tokio::task::block_in_place`].
    pub fn submit(&self, events: Vec<Event>) -> Result<Submitted, SubmitError> {
        let mut log = self.log.lock().expect("not poisoned");
        self.check_locked(&mut log, &events)?;
        let targets = VoidTargets::before_append(&mut log, &events)?;
        let (stored, duplicates) = append_counted(&mut log, events, (self.clock)(), &self.metrics)?;
        let out = Submitted {
            stored: stored.len(),
            duplicates,
        };
        // Still under the log's lock, so the fold sees events in seq order.
        self.apply(stored, &targets);
        Ok(out)
    }

    /// Appends a `clock_tick` at the wall clock's now.
    pub fn tick(&self) -> Result<(), SubmitError> {
        self.submit(vec![tick_event((self.clock)())]).map(|_| ())
    }

    fn apply(&self, records: Vec<Recorded>, targets: &VoidTargets) {
        let mut state = self.state.write().expect("not poisoned");
        for rec in &records {
            state.apply(rec, targets.of(rec, &records));
            let changes = state.alert_book().changes().to_vec();
            for out in changes_out(&state, &self.subjects, rec.seq, &changes) {
                // No subscriber is not an error: the alert is in the book anyway.
                let _ = self.alerts.send(AlertMessage {
                    id: out.msg_id,
                    subject: out.subject,
                    json: out.payload,
                });
            }
        }
    }
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
pub fn append_counted(
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

#[cfg(test)]
mod tests {
    use super::*;
    use pacer_projections::bucket::Bucket;
    use pacer_projections::event::{ActivityLogged, EventVoided};
    use pacer_projections::time::Month;

    fn at() -> Timestamp {
        Timestamp::parse_rfc3339("2026-11-18T09:00:00Z").unwrap()
    }

    fn call(id: &str) -> Event {
        Event {
            event_id: id.into(),
            source: "test".into(),
            occurred_at: at(),
            body: EventBody::ActivityLogged(ActivityLogged {
                rep: "ana".into(),
                kind: "call".into(),
                account: None,
                deal: None,
            }),
        }
    }

    fn void(id: &str, target: &str) -> Event {
        Event {
            event_id: id.into(),
            source: "test".into(),
            occurred_at: at(),
            body: EventBody::EventVoided(EventVoided {
                voided_event_id: target.into(),
                reason: None,
            }),
        }
    }

    fn calls(state: &State) -> i64 {
        let nov = Month::parse("2026-11").unwrap();
        state.actual("ana", nov, &Bucket::Activity("call".into()))
    }

    /// An activity keeps no undo record in the fold: its void is undone from the
    /// activity as the log holds it, whether it was stored in an earlier batch or
    /// earlier in the same one; a void that overtakes its activity, or names an id
    /// never stored, or repeats, takes nothing more. A rebuild agrees.
    #[test]
    fn a_void_undoes_an_activity_from_an_earlier_batch_or_the_same_one() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::default();
        let state = Arc::new(RwLock::new(State::new(config.org.clone())));
        let local = Local::new(
            Log::open(dir.path()).unwrap(),
            Arc::clone(&state),
            config.clone(),
            Arc::new(Metrics::new()),
            Box::new(at),
        );
        let batches = [
            vec![call("a1"), call("a2"), call("a3")],
            vec![void("v1", "a1")],
            vec![call("a4"), void("v4", "a4")],
            vec![
                void("v5", "a5"),
                void("v1-again", "a1"),
                void("vx", "never"),
            ],
            vec![call("a5")],
        ];
        // a1 and a4 voided, a5 voided before it arrived: a2 and a3 count.
        for (batch, want) in batches.into_iter().zip([3, 2, 2, 2, 2]) {
            local.submit(batch).unwrap();
            assert_eq!(calls(&state.read().unwrap()), want);
        }
        let live = state.read().unwrap().clone();
        drop(local);
        let log = Log::open(dir.path()).unwrap();
        let rebuilt =
            crate::replay::rebuild(&log, &config.org, crate::replay::Cut::All, |_| {}).unwrap();
        assert_eq!(calls(&rebuilt), 2);
        assert!(rebuilt == live, "the rebuild differs from the live fold");
    }
}
