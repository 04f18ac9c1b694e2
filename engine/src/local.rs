//! The one-process engine: `pacer serve` without a broker. Events arrive over HTTP
//! (the webhook endpoints of [`crate::http`]) and go straight into the log, in the
//! brief's order: decode → validate → dedupe → append → flush, and only then is the
//! request answered. The projections fold them at once, and each alert change is
//! sent to the live subscribers of `GET /v1/alerts/stream` and, with subscriptions,
//! to the deliverer ([`Local::feed_deliveries`]).
//!
//! It is a thin adapter over the engine core ([`crate::engine`]): appends are
//! serialised by one mutex around it, a request's events are one batch with one
//! flush, and requests queue for the lock.

use std::sync::{Arc, Mutex, RwLock};

use pacer_projections::event::Event;
use pacer_projections::model::Model;
use pacer_projections::time::Timestamp;
use tokio::sync::broadcast;

use crate::config::Config;
use crate::engine::{tick_event, Engine, Outgoing};
pub use crate::engine::{AlertMessage, STREAM_BACKLOG_MAX};
use crate::error::{LogError, Rejection};
use crate::log::Log;
use crate::metrics::Metrics;
use crate::subjects::Subjects;

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

/// The engine core and the live alert feed of one process.
pub struct Local {
    /// One lock: a request's events are checked, appended and folded in turn.
    engine: Mutex<Engine>,
    /// The engine's model and names, shared, so that readers (the queries, the web
    /// app, the live feed's scoping) never wait for the engine's lock.
    state: Arc<RwLock<Model>>,
    subjects: Subjects,
    alerts: broadcast::Sender<AlertMessage>,
    clock: Box<dyn Fn() -> Timestamp + Send + Sync>,
    /// Each stored batch's last seq and messages (alert changes and digests), for
    /// the deliverer; bounded: a deliverer that falls behind holds up requests.
    deliveries: Mutex<Option<DeliveryFeed>>,
}

/// Where a stored batch's last seq and messages go for the deliverer.
pub type DeliveryFeed = std::sync::mpsc::SyncSender<(u64, Vec<Outgoing>)>;

/// Batches waiting for the deliverer to record them.
pub const DELIVERY_FEED_MAX: usize = 256;

impl Local {
    /// Wraps a log whose projections are already rebuilt into `state`.
    pub fn new(
        log: Log,
        state: Arc<RwLock<Model>>,
        config: Config,
        metrics: Arc<Metrics>,
        clock: Box<dyn Fn() -> Timestamp + Send + Sync>,
    ) -> Self {
        let (alerts, _) = broadcast::channel(STREAM_BACKLOG_MAX);
        let engine = Engine::new(log, Arc::clone(&state), config, metrics);
        Local {
            subjects: engine.subjects().clone(),
            engine: Mutex::new(engine),
            state,
            alerts,
            clock,
            deliveries: Mutex::new(None),
        }
    }

    /// From now on, each stored batch's messages (alert changes and each team's
    /// weekly digest) also go to `feed`, in seq order.
    pub fn feed_deliveries(&self, feed: DeliveryFeed) {
        *self.deliveries.lock().expect("not poisoned") = Some(feed);
    }

    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    pub fn state(&self) -> &Arc<RwLock<Model>> {
        &self.state
    }

    /// The live feed of alert changes: `subscribe` to it for the changes from now on.
    pub fn live(&self) -> broadcast::Sender<AlertMessage> {
        self.alerts.clone()
    }

    /// A tree of the log's database for a side record (the deal mirror).
    pub fn side_tree(&self, name: &str) -> Result<sled::Tree, LogError> {
        self.engine
            .lock()
            .expect("not poisoned")
            .log()
            .side_tree(name)
    }

    /// A reader of the log, for the queries.
    pub fn reader(&self) -> crate::log::LogReader {
        self.engine.lock().expect("not poisoned").log().reader()
    }

    /// Checks a batch as [`Local::submit`] would, storing nothing.
    pub fn check(&self, events: &[Event]) -> Result<(), SubmitError> {
        check_all(&mut self.engine.lock().expect("not poisoned"), events)
    }

    /// Validates every event, then stores them all with one flush, or none: the
    /// first rule broken rejects the batch. Blocking (disk): call it off the async
    /// workers, or through [`tokio::task::block_in_place`].
    pub fn submit(&self, events: Vec<Event>) -> Result<Submitted, SubmitError> {
        let mut engine = self.engine.lock().expect("not poisoned");
        check_all(&mut engine, &events)?;
        let stored = engine.append(events, (self.clock)())?;
        // Still under the engine's lock, so the fold sees events in seq order.
        let feed = self.deliveries.lock().expect("not poisoned").clone();
        let serve = engine.config().serve.clone();
        let out = engine.fold(&stored, feed.as_ref().map(|_| &serve));
        let digests = format!("{}.digest.", self.subjects.prefix);
        for out in &out {
            if out.subject.starts_with(&digests) {
                continue;
            }
            // No subscriber is not an error: the alert is in the book anyway.
            let _ = self.alerts.send(AlertMessage {
                id: out.msg_id.clone(),
                subject: out.subject.clone(),
                json: out.payload.clone(),
            });
        }
        if let (Some(feed), Some(last)) = (feed, stored.records.last()) {
            // The deliverer records them with the seq as its mark; after a crash
            // before it did, they are made again from the log (`outbox`).
            if feed.send((last.seq, out)).is_err() {
                eprintln!(
                    "pacer serve: the deliverer has stopped; alert changes from seq {} on are delivered after a restart (made again from the log)",
                    last.seq
                );
                *self.deliveries.lock().expect("not poisoned") = None;
            }
        }
        Ok(Submitted {
            stored: stored.records.len(),
            duplicates: stored.duplicates,
        })
    }

    /// Appends a `clock_tick` at the wall clock's now.
    pub fn tick(&self) -> Result<(), SubmitError> {
        self.submit(vec![tick_event((self.clock)())]).map(|_| ())
    }
}

/// Checks every event of a batch; the first rule broken rejects it.
fn check_all(engine: &mut Engine, events: &[Event]) -> Result<(), SubmitError> {
    let mut rules = engine.rules();
    for (index, ev) in events.iter().enumerate() {
        if let Err(rejection) = engine.check(&mut rules, ev)? {
            engine.metrics().rejected(rejection.kind.slug());
            return Err(SubmitError::Rejected { index, rejection });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pacer_projections::bucket::Bucket;
    use pacer_projections::event::{ActivityLogged, EventBody, EventVoided};
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

    fn calls(state: &Model) -> i64 {
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
        let state = Arc::new(RwLock::new(Model::new(config.org.clone())));
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
