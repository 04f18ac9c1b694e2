//! Alerts where managers work: subscriptions, and the durable delivery of what they
//! ask for to email (SMTP), Slack, Microsoft Teams and signed webhooks.
//!
//! The engine's messages (alert changes and weekly digests, as the alerts stream
//! carries them) are fed to [`Deliverer::record`]: in one process from the engine
//! core after each fold, with NATS from a durable consumer of `PACER_ALERTS`
//! ([`crate::nats::deliver`]). Each message a subscription wants becomes an
//! [`store::Intent`], recorded durably with the feed's mark before anything is sent.
//! The worker ([`Deliverer::run`]) gathers each subscription's intents once the
//! first is due (a burst within `[deliver] gather_ms`, the daily summary at its
//! hour, the digest at once; never in the subscription's quiet hours) into one
//! [`store::Delivery`] whose id is the receiver's idempotency key, attempts it, and
//! retries it with exponential backoff and jitter until it is sent or given up.
//!
//! | file | what |
//! | --- | --- |
//! | `error` | what can go wrong in the store and the subscriptions file |
//! | `subscription` | who wants what, where and when (`subscriptions.json`) |
//! | `store` | intents and deliveries in the log's database |
//! | `render` | what a message says, per channel |
//! | `send` | one attempt over SMTP or HTTPS, and what its answer means |

mod error;
pub mod render;
pub mod send;
pub mod store;
pub mod subscription;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use chrono::{TimeZone as _, Timelike as _};
use pacer_projections::model::Model;
use serde_json::Value;

use crate::access::{AccessError, Scope, Users, USERS_FILE};
use crate::config::Config;
use crate::metrics::Metrics;
pub use error::DeliverError;
use store::{Delivery, DeliveryState, Intent, Kind, Mark, Store, ITEMS_PER_DELIVERY_MAX};
use subscription::{
    in_quiet, AlertFacts, Cadence, Subscription, Subscriptions, SUBSCRIPTIONS_FILE,
};

/// The sled tree of the log's database that holds intents and deliveries.
pub const TREE: &str = "deliveries";
/// How often the worker looks for intents to gather and deliveries due.
const WORKER_TICK_MS: u64 = 250;
/// Deliveries attempted in one turn of the worker before it gathers again.
const ATTEMPTS_PER_TURN_MAX: usize = 100;

/// One message of the engine, as the alerts stream carries it.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    pub subject: &'a str,
    /// Its `Nats-Msg-Id`: alert, change and event key, or team and week.
    pub msg_id: &'a str,
    pub payload: &'a [u8],
}

impl<'a> From<&'a crate::engine::Outgoing> for Message<'a> {
    fn from(o: &'a crate::engine::Outgoing) -> Self {
        Message {
            subject: &o.subject,
            msg_id: &o.msg_id,
            payload: &o.payload,
        }
    }
}

/// A file read again when it changes (its time or length); a file that does not
/// parse keeps the last good copy in force, said once in the log.
struct Cached<T> {
    seen: Option<(SystemTime, u64)>,
    value: Option<Arc<T>>,
}

impl<T> Cached<T> {
    fn new() -> Self {
        Cached {
            seen: None,
            value: None,
        }
    }

    fn get(
        &mut self,
        path: &std::path::Path,
        load: impl FnOnce() -> Result<T, AccessError>,
    ) -> Result<Arc<T>, DeliverError> {
        let seen = std::fs::metadata(path)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())));
        if let (Some(v), true) = (&self.value, seen.is_some() && seen == self.seen) {
            return Ok(Arc::clone(v));
        }
        match load() {
            Ok(v) => {
                let v = Arc::new(v);
                self.value = Some(Arc::clone(&v));
                self.seen = seen;
                Ok(v)
            }
            Err(e) => match &self.value {
                Some(v) => {
                    if self.seen != seen {
                        eprintln!("pacer deliver: {e}; the last good copy stays in force");
                        self.seen = seen;
                    }
                    Ok(Arc::clone(v))
                }
                None => Err(e.into()),
            },
        }
    }
}

/// Subscriptions matched, intents recorded, deliveries made and attempted.
pub struct Deliverer {
    data_dir: PathBuf,
    store: Store,
    config: Config,
    state: Arc<RwLock<Model>>,
    metrics: Arc<Metrics>,
    subscriptions: Mutex<Cached<Subscriptions>>,
    users: Mutex<Cached<Users>>,
    /// Wall-clock milliseconds (a test may move it).
    clock: fn() -> i64,
}

fn wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Deliverer {
    pub fn new(
        data_dir: PathBuf,
        store: Store,
        config: Config,
        state: Arc<RwLock<Model>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Deliverer {
            data_dir,
            store,
            config,
            state,
            metrics,
            subscriptions: Mutex::new(Cached::new()),
            users: Mutex::new(Cached::new()),
            clock: wall_ms,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// What `user` may hear of, against the organisation as it stands now.
    pub fn scope_of(&self, user: &crate::access::User) -> Scope {
        Scope::of(user, self.state.read().expect("not poisoned").state())
    }

    /// The subscriptions as the file holds them now.
    pub fn subscriptions(&self) -> Result<Arc<Subscriptions>, DeliverError> {
        let path = self.data_dir.join(SUBSCRIPTIONS_FILE);
        self.subscriptions
            .lock()
            .expect("not poisoned")
            .get(&path, || Subscriptions::load(&self.data_dir))
    }

    fn users(&self) -> Result<Arc<Users>, DeliverError> {
        let path = self.data_dir.join(USERS_FILE);
        self.users
            .lock()
            .expect("not poisoned")
            .get(&path, || Users::load(&path))
    }

    /// The intents these messages call for: each wanted by an enabled subscription
    /// whose user may see it now.
    fn intents(
        &self,
        messages: &[Message<'_>],
        now_ms: i64,
    ) -> Result<Vec<(String, Intent)>, DeliverError> {
        let subs = self.subscriptions()?;
        if subs.subscriptions.is_empty() {
            return Ok(Vec::new());
        }
        let users = self.users()?;
        let state = self.state.read().expect("not poisoned");
        let mut scopes: BTreeMap<&str, Scope> = BTreeMap::new();
        let prefix = &self.config.nats.subject_prefix;
        let digest_subject = format!("{prefix}.digest.");
        let system_subject = format!("{prefix}.alerts.system");
        let mut out = Vec::new();
        for m in messages {
            if m.subject == system_subject {
                continue;
            }
            let Ok(item) = serde_json::from_slice::<Value>(m.payload) else {
                eprintln!("pacer deliver: {} is not JSON; skipped", m.msg_id);
                continue;
            };
            let digest = m.subject.starts_with(&digest_subject);
            let facts = if digest { None } else { AlertFacts::of(&item) };
            let team = item.get("team").and_then(Value::as_str).unwrap_or_default();
            for sub in subs.subscriptions.values() {
                let Some(user) = users.users.get(&sub.user) else {
                    continue;
                };
                let scope = scopes
                    .entry(sub.user.as_str())
                    .or_insert_with(|| Scope::of(user, state.state()));
                let wanted = match &facts {
                    Some(a) => sub.wants(a) && scope.rep(&a.rep, state.state()),
                    None if digest => sub.wants_digest(team) && scope.team(team),
                    None => false,
                };
                if !wanted {
                    continue;
                }
                let due_ms = match sub.cadence {
                    Cadence::Immediate => now_ms + self.config.deliver.gather_ms as i64,
                    Cadence::Daily => self.next_daily_ms(now_ms),
                    Cadence::Weekly => now_ms,
                };
                out.push((
                    sub.id.clone(),
                    Intent {
                        key: m.msg_id.to_owned(),
                        kind: if digest { Kind::Digest } else { Kind::Alerts },
                        due_ms,
                        created_ms: now_ms,
                        item: item.clone(),
                    },
                ));
            }
        }
        Ok(out)
    }

    /// Records the intents `messages` call for, with the mark that covers them,
    /// durably: call it before acknowledging the messages. Returns how many intents.
    pub fn record(&self, mark: Mark<'_>, messages: &[Message<'_>]) -> Result<usize, DeliverError> {
        self.record_at(mark, messages, (self.clock)())
    }

    /// [`Deliverer::record`] at `now_ms`.
    pub fn record_at(
        &self,
        mark: Mark<'_>,
        messages: &[Message<'_>],
        now_ms: i64,
    ) -> Result<usize, DeliverError> {
        let intents = self.intents(messages, now_ms)?;
        self.store.record(mark, &intents)?;
        Ok(intents.len())
    }

    /// The next daily summary time after `now_ms` (org time zone).
    fn next_daily_ms(&self, now_ms: i64) -> i64 {
        let tz = self.config.org.timezone;
        let Some(now) = chrono::DateTime::from_timestamp_millis(now_ms) else {
            return now_ms;
        };
        let local = now.with_timezone(&tz);
        let mut day = local.date_naive();
        if local.hour() >= self.config.deliver.daily_hour {
            day = day.succ_opt().unwrap_or(day);
        }
        let at = day
            .and_hms_opt(self.config.deliver.daily_hour, 0, 0)
            .expect("an hour below 24");
        // An hour a clock change skips (02:00 in spring) is read as the hour after.
        tz.from_local_datetime(&at)
            .earliest()
            .or_else(|| {
                tz.from_local_datetime(&(at + chrono::Duration::hours(1)))
                    .earliest()
            })
            .map_or(now_ms + 86_400_000, |t| t.timestamp_millis())
    }

    fn quiet_now(&self, sub: &Subscription, now_ms: i64) -> bool {
        let Some(window) = sub.quiet_minutes() else {
            return false;
        };
        let Some(now) = chrono::DateTime::from_timestamp_millis(now_ms) else {
            return false;
        };
        let local = now.with_timezone(&self.config.org.timezone);
        in_quiet(local.hour() * 60 + local.minute(), window)
    }

    /// Makes deliveries of the intents that are due: per subscription, every pending
    /// intent once the first is due, outside its quiet hours. Returns how many.
    pub fn gather(&self, now_ms: i64) -> Result<usize, DeliverError> {
        let pending = self.store.pending()?;
        if pending.is_empty() {
            return Ok(0);
        }
        let subs = self.subscriptions()?;
        let mut made = 0;
        for (sub_id, intents) in pending {
            let keys: Vec<String> = intents.iter().map(|i| i.key.clone()).collect();
            let Some(sub) = subs
                .subscriptions
                .get(&sub_id)
                .filter(|s| s.disabled.is_none())
            else {
                // Removed or stopped since: what it wanted is not sent.
                self.store.drop_pending(&sub_id, &keys)?;
                continue;
            };
            let first_due = intents.iter().map(|i| i.due_ms).min().unwrap_or(now_ms);
            if first_due > now_ms || self.quiet_now(sub, now_ms) {
                continue;
            }
            let (digests, mut alerts): (Vec<Intent>, Vec<Intent>) =
                intents.into_iter().partition(|i| i.kind == Kind::Digest);
            // The most severe first, then in the order they were published.
            alerts.sort_by(|a, b| {
                let sev = |i: &Intent| match i.item.get("severity").and_then(Value::as_str) {
                    Some("critical") => 0,
                    Some("warning") => 1,
                    _ => 2,
                };
                // The seq of the event that made the change, as its message says.
                let seq = |i: &Intent| i.item.get("seq").and_then(Value::as_u64).unwrap_or(0);
                (sev(a), a.created_ms, seq(a), &a.key).cmp(&(sev(b), b.created_ms, seq(b), &b.key))
            });
            let mut groups: Vec<(Kind, Vec<Intent>)> = alerts
                .chunks(ITEMS_PER_DELIVERY_MAX)
                .map(|c| (Kind::Alerts, c.to_vec()))
                .collect();
            groups.extend(digests.into_iter().map(|d| (Kind::Digest, vec![d])));
            for (kind, group) in groups {
                let keys: Vec<String> = group.iter().map(|i| i.key.clone()).collect();
                let mut sorted: Vec<&str> = keys.iter().map(String::as_str).collect();
                sorted.sort_unstable();
                let d = Delivery::due(
                    Delivery::id_of(&sub.id, &sorted),
                    sub,
                    kind,
                    sub.cadence.as_str(),
                    group.into_iter().map(|i| i.item).collect(),
                    now_ms,
                );
                self.store.gather(&d, &keys)?;
                made += 1;
            }
        }
        Ok(made)
    }

    /// Attempts the deliveries due (at most [`ATTEMPTS_PER_TURN_MAX`]), and writes
    /// what each came to. Returns how many were attempted.
    pub fn send_due(&self, now_ms: i64, stop: &AtomicBool) -> Result<usize, DeliverError> {
        let due: Vec<Delivery> = self
            .store
            .due()?
            .into_iter()
            .filter(|d| d.next_ms <= now_ms)
            .take(ATTEMPTS_PER_TURN_MAX)
            .collect();
        if due.is_empty() {
            return Ok(0);
        }
        let subs = self.subscriptions()?;
        let mut attempted = 0;
        for mut d in due {
            if stop.load(Ordering::Acquire) {
                break;
            }
            // A subscription removed or stopped since takes nothing more.
            let standing = subs
                .subscriptions
                .get(&d.subscription)
                .is_some_and(|s| s.disabled.is_none());
            if !standing {
                d.state = DeliveryState::Cancelled;
                d.last_error = Some("not sent: its subscription was removed or stopped".into());
                self.store.put(&d)?;
                continue;
            }
            let now_ms = (self.clock)();
            let outcome = send::attempt(&d, &self.config.deliver, now_ms / 1000);
            attempted += 1;
            d.attempts += 1;
            let channel = d.channel.kind();
            let count = |outcome: &str| {
                self.metrics
                    .delivery_attempts
                    .get_or_create(&vec![
                        ("channel".to_owned(), channel.to_owned()),
                        ("outcome".to_owned(), outcome.to_owned()),
                    ])
                    .inc();
            };
            match outcome {
                send::Outcome::Sent => {
                    count("sent");
                    d.state = DeliveryState::Sent;
                    d.sent_ms = Some(now_ms);
                    d.last_error = None;
                }
                send::Outcome::Retry { error, after_ms } => {
                    count("retry");
                    let cfg = &self.config.deliver;
                    let give_up_ms = (cfg.give_up_after_s as i64).saturating_mul(1000);
                    let waited_ms = now_ms.saturating_sub(d.created_ms);
                    if waited_ms >= give_up_ms {
                        d.last_error = Some(format!(
                            "given up after {} attempts over {} s: {error}",
                            d.attempts,
                            waited_ms / 1000
                        ));
                        self.failed(&mut d);
                    } else {
                        let jitter = u64::from_le_bytes(crate::access::random_bytes::<8>());
                        let backoff = send::backoff_ms(
                            d.attempts,
                            cfg.retry_base_ms,
                            cfg.retry_max_ms,
                            jitter,
                        );
                        // The receiver's Retry-After counts, but never past the time
                        // the delivery is given up (one more try then).
                        let left_ms = (give_up_ms - waited_ms).max(0) as u64;
                        let wait = backoff.max(after_ms.unwrap_or(0)).min(left_ms.max(1));
                        d.next_ms = now_ms.saturating_add(wait as i64);
                        d.last_error = Some(error);
                    }
                }
                send::Outcome::Gone { error } => {
                    count("gone");
                    d.last_error = Some(error.clone());
                    // The owner's notices first (made again the same after a crash),
                    // once, while the subscription still stands.
                    let subs_now = self.subscriptions()?;
                    let stands = subs_now
                        .subscriptions
                        .get(&d.subscription)
                        .is_some_and(|s| s.disabled.is_none());
                    if stands {
                        for n in self.notices(&subs_now, &d, &error, now_ms) {
                            self.store.add(&n)?;
                        }
                    }
                    self.failed(&mut d);
                    self.store.put(&d)?;
                    self.disable(&d, &error)?;
                    continue;
                }
                send::Outcome::Refused { error } => {
                    count("refused");
                    d.last_error = Some(error);
                    self.failed(&mut d);
                }
            }
            self.store.put(&d)?;
        }
        if attempted > 0 {
            for dropped in self.store.prune()? {
                eprintln!(
                    "pacer deliver: failed delivery {} dropped to keep within {} failed deliveries",
                    dropped.id,
                    store::FAILED_KEPT_MAX
                );
            }
        }
        Ok(attempted)
    }

    fn failed(&self, d: &mut Delivery) {
        d.state = DeliveryState::Failed;
        self.metrics
            .deliveries_failed
            .get_or_create(&vec![("channel".to_owned(), d.channel.kind().to_owned())])
            .inc();
        eprintln!(
            "pacer deliver: delivery {} ({} to {}, subscription {} of {}) failed: {} (pacer deliveries retry {})",
            d.id,
            d.channel.kind(),
            d.channel.target(),
            d.subscription,
            d.user,
            d.last_error.as_deref().unwrap_or(""),
            d.id
        );
    }

    fn gone_reason(d: &Delivery, error: &str) -> String {
        format!(
            "{} {} answered that it is gone ({error}); start it again with pacer subscribe enable {} or on the Subscriptions page",
            d.channel.kind(),
            d.channel.target(),
            d.subscription
        )
    }

    /// The notices telling a subscription's owner, through their other enabled
    /// subscriptions, that its receiver is gone; their ids follow from the failed
    /// delivery's, so making them again adds nothing.
    fn notices(
        &self,
        subs: &Subscriptions,
        d: &Delivery,
        error: &str,
        now_ms: i64,
    ) -> Vec<Delivery> {
        let text = format!(
            "Your Pacer subscription {} ({} to {}) was stopped: {}.",
            d.subscription,
            d.channel.kind(),
            d.channel.target(),
            Self::gone_reason(d, error)
        );
        subs.of_user(&d.user)
            .filter(|s| s.id != d.subscription && s.disabled.is_none())
            .map(|other| {
                let key = format!("notice:{}:{}", d.subscription, d.id);
                Delivery::due(
                    Delivery::id_of(&other.id, &[&key]),
                    other,
                    Kind::Notice,
                    "notice",
                    vec![serde_json::json!({"text": text, "subscription": d.subscription})],
                    now_ms,
                )
            })
            .collect()
    }

    /// The receiver of a subscription is gone: the subscription is stopped.
    fn disable(&self, d: &Delivery, error: &str) -> Result<(), DeliverError> {
        let reason = Self::gone_reason(d, error);
        let changed = Subscriptions::update(&self.data_dir, |subs| {
            match subs.subscriptions.contains_key(&d.subscription) {
                true => subs.disable(&d.subscription, &reason),
                false => Ok(false),
            }
        })?;
        if changed {
            eprintln!(
                "pacer deliver: subscription {} stopped: {reason}",
                d.subscription
            );
        }
        Ok(())
    }

    /// Sets the deliveries gauges.
    fn count(&self) -> Result<(), DeliverError> {
        let mut by_state: BTreeMap<&str, i64> = BTreeMap::from([("due", 0), ("failed", 0)]);
        for d in self.store.deliveries()? {
            if d.state != DeliveryState::Sent {
                *by_state.entry(d.state.as_str()).or_default() += 1;
            }
        }
        for (state, n) in by_state {
            self.metrics
                .deliveries
                .get_or_create(&vec![("state".to_owned(), state.to_owned())])
                .set(n);
        }
        Ok(())
    }

    /// The worker: gathers and attempts until `stop`, on its own thread (attempts
    /// block on the network).
    pub fn run(self: Arc<Self>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
        std::thread::Builder::new()
            .name("pacer-deliver".into())
            .spawn(move || {
                let mut turns: u64 = 0;
                while !stop.load(Ordering::Acquire) {
                    let now_ms = (self.clock)();
                    let turn = self
                        .gather(now_ms)
                        .and_then(|_| self.send_due(now_ms, &stop))
                        .and_then(|n| {
                            if n > 0 || turns.is_multiple_of(40) {
                                self.count()?;
                            }
                            Ok(())
                        });
                    if let Err(e) = turn {
                        eprintln!("pacer deliver: {e}; trying again");
                        std::thread::sleep(Duration::from_secs(1));
                    }
                    turns += 1;
                    std::thread::sleep(Duration::from_millis(WORKER_TICK_MS));
                }
            })
            .expect("a thread starts")
    }
}

/// The operator's system alert while deliveries stand failed (with the dead letters'
/// one: `GET /v1/alerts?system=true`, and `<prefix>.alerts.system` with NATS).
pub fn system_alert(deliveries: &[Delivery]) -> Option<Value> {
    let failed: Vec<&Delivery> = deliveries
        .iter()
        .filter(|d| d.state == DeliveryState::Failed)
        .collect();
    let oldest = failed.iter().min_by_key(|d| (d.created_ms, &d.id))?;
    let mut by_channel: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &failed {
        *by_channel.entry(d.channel.kind()).or_default() += 1;
    }
    Some(serde_json::json!({
        "id": format!("system:failed_deliveries:{}", oldest.id),
        "rule": "failed_deliveries",
        "severity": "warning",
        "failed": failed.len(),
        "by_channel": by_channel,
        "oldest_id": oldest.id,
        "oldest_error": oldest.last_error,
        "message": format!(
            "{} alert message(s) could not be delivered: managers did not get them",
            failed.len()
        ),
        "suggested_action": "pacer deliveries list --state failed; fix the receiver or the subscription, then pacer deliveries retry --failed",
    }))
}

/// Makes a failed delivery (or, with no id, every failed one) due again now; returns
/// the ids made due.
pub fn retry(store: &Store, id: Option<&str>, now_ms: i64) -> Result<Vec<String>, DeliverError> {
    let ids: Vec<String> = match id {
        Some(id) => vec![id.to_owned()],
        None => store
            .deliveries()?
            .into_iter()
            .filter(|d| d.state == DeliveryState::Failed)
            .map(|d| d.id)
            .collect(),
    };
    let mut retried = Vec::new();
    for id in ids {
        if store.retry(&id, now_ms)? == Some(true) {
            retried.push(id);
        }
    }
    Ok(retried)
}
