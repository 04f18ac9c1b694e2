//! The durable record of what is to be delivered: intents and deliveries, in one sled
//! tree beside the log (`deliveries`).
//!
//! | key | value |
//! | --- | --- |
//! | `m:log_seq` | how far the one-process feed got: the last log seq whose messages are recorded |
//! | `s:<stream seq>` | a `PACER_ALERTS` message (NATS) whose intents are recorded: a redelivery of it is only acked |
//! | `p:<subscription>:<intent>` | an [`Intent`]: one alert change (or digest) one subscription wants, not yet gathered |
//! | `d:<delivery>` | a due [`Delivery`]: the message made of a subscription's gathered intents, and its attempts |
//! | `x:<delivery>` | a delivery done with: sent, or failed (kept for the operator) |
//!
//! Intents are written in one batch with the mark that covers them, and flushed
//! before the feed is acknowledged (NATS) or moves on; a delivery replaces its
//! intents in one batch. sled recovers a prefix of its writes, so after kill -9 an
//! intent is either still pending or in exactly one delivery, and a delivery's id is
//! a digest of its subscription and intents: the receiver sees the same key on every
//! attempt, before and after a restart.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::DeliverError;
use super::subscription::Channel;

/// Deliveries kept once sent, for `pacer deliveries list --state sent` (the oldest go).
pub const SENT_KEPT_MAX: usize = 2_000;
/// Failed deliveries kept for the operator; past it the oldest failed one goes, logged.
pub const FAILED_KEPT_MAX: usize = 10_000;
/// Items in one delivery; a longer burst goes out as several messages.
pub const ITEMS_PER_DELIVERY_MAX: usize = 50;

/// What an intent or delivery carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Alert changes (each item an alert object with its `change`).
    Alerts,
    /// A team's weekly digest (one item).
    Digest,
    /// A word to a subscription's owner from Pacer (one item: `{"text": …}`).
    Notice,
}

/// One message one subscription wants, waiting to be gathered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    /// The message's id (its `Nats-Msg-Id`): alert, change and seq, or team and week.
    pub key: String,
    pub kind: Kind,
    /// Gathered into a delivery at or after this time (ms since the epoch).
    pub due_ms: i64,
    pub created_ms: i64,
    pub item: Value,
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// To be attempted at `next_ms`.
    Due,
    Sent,
    /// Given up (or refused for good): kept for the operator.
    Failed,
    /// Not sent: its subscription was removed or stopped before it went.
    Cancelled,
}

impl DeliveryState {
    pub fn parse(text: &str) -> Result<DeliveryState, String> {
        match text {
            "due" => Ok(DeliveryState::Due),
            "sent" => Ok(DeliveryState::Sent),
            "failed" => Ok(DeliveryState::Failed),
            "cancelled" => Ok(DeliveryState::Cancelled),
            _ => Err(format!(
                "state: {text:?} is not due, sent, failed or cancelled"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Due => "due",
            DeliveryState::Sent => "sent",
            DeliveryState::Failed => "failed",
            DeliveryState::Cancelled => "cancelled",
        }
    }
}

/// One message to one subscription: what it says, and how its attempts went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// `dl-` and 20 hex digits of a digest of the subscription and the intents: the
    /// idempotency key (`webhook-id`, the email's Message-ID).
    pub id: String,
    pub subscription: String,
    pub user: String,
    pub channel: Channel,
    pub kind: Kind,
    /// Why the message goes: `immediate`, `daily` or `weekly` (or `notice`).
    pub cadence: String,
    pub items: Vec<Value>,
    pub state: DeliveryState,
    /// When it was made (or last retried by the operator): the give-up clock.
    pub created_ms: i64,
    pub attempts: u32,
    pub next_ms: i64,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub sent_ms: Option<i64>,
}

impl Delivery {
    /// A delivery due now to `sub`'s channel.
    pub fn due(
        id: String,
        sub: &super::subscription::Subscription,
        kind: Kind,
        cadence: &str,
        items: Vec<Value>,
        now_ms: i64,
    ) -> Delivery {
        Delivery {
            id,
            subscription: sub.id.clone(),
            user: sub.user.clone(),
            channel: sub.channel.clone(),
            kind,
            cadence: cadence.to_owned(),
            items,
            state: DeliveryState::Due,
            created_ms: now_ms,
            attempts: 0,
            next_ms: now_ms,
            last_error: None,
            sent_ms: None,
        }
    }

    /// The id of a delivery of these intents to this subscription.
    pub fn id_of(subscription: &str, intents: &[&str]) -> String {
        let mut h = Sha256::new();
        h.update(subscription.as_bytes());
        for k in intents {
            h.update(b"\n");
            h.update(k.as_bytes());
        }
        let d = h.finalize();
        let hex: String = d.iter().take(10).map(|b| format!("{b:02x}")).collect();
        format!("dl-{hex}")
    }

    /// The JSON shown to the operator.
    pub fn to_json(&self) -> Value {
        let ms = |v: i64| {
            chrono::DateTime::from_timestamp_millis(v)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        };
        serde_json::json!({
            "id": self.id,
            "subscription": self.subscription,
            "user": self.user,
            "channel": self.channel.kind(),
            "to": self.channel.target(),
            "kind": self.kind,
            "cadence": self.cadence,
            "items": self.items.len(),
            "state": self.state.as_str(),
            "created_at": ms(self.created_ms),
            "attempts": self.attempts,
            "next_attempt_at": (self.state == DeliveryState::Due).then(|| ms(self.next_ms)),
            "last_error": self.last_error,
            "sent_at": self.sent_ms.and_then(ms),
        })
    }
}

/// What a batch of intents covers: the one-process feed's log seq, or the
/// `PACER_ALERTS` stream seqs of the messages they were made of.
#[derive(Clone, Copy, Debug)]
pub enum Mark<'a> {
    Log(u64),
    Stream(&'a [u64]),
}

const LOG_MARK: &[u8] = b"m:log_seq";
/// Stream seqs kept as seen: a message is redelivered within the consumer's ack wait,
/// long before this many later messages.
const STREAM_SEEN_MAX: u64 = 100_000;

fn stream_key(seq: u64) -> Vec<u8> {
    let mut k = b"s:".to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The store: a sled tree of the log's database.
#[derive(Clone)]
pub struct Store {
    tree: sled::Tree,
}

fn db(doing: &'static str, e: sled::Error) -> DeliverError {
    DeliverError::Store {
        doing,
        reason: e.to_string(),
    }
}

fn decode<T: serde::de::DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, DeliverError> {
    serde_json::from_slice(bytes).map_err(|e| DeliverError::Store {
        doing: "reading",
        reason: format!("{}: {e}", String::from_utf8_lossy(key)),
    })
}

fn delivery_key(state: DeliveryState, id: &str) -> Vec<u8> {
    match state {
        DeliveryState::Due => format!("d:{id}"),
        DeliveryState::Sent | DeliveryState::Failed | DeliveryState::Cancelled => {
            format!("x:{id}")
        }
    }
    .into_bytes()
}

fn pending_key(subscription: &str, intent: &str) -> Vec<u8> {
    format!("p:{subscription}:{intent}").into_bytes()
}

impl Store {
    pub fn new(tree: sled::Tree) -> Self {
        Store { tree }
    }

    /// The last log seq whose messages are recorded; `None` before the first.
    pub fn log_mark(&self) -> Result<Option<u64>, DeliverError> {
        Ok(self
            .tree
            .get(LOG_MARK)
            .map_err(|e| db("reading the mark", e))?
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes)))
    }

    /// Forgets the log mark: the data dir is served with NATS, whose feed is the
    /// stream; a later one-process start begins at the log's end again instead of
    /// delivering what NATS delivered.
    pub fn forget_log_mark(&self) -> Result<(), DeliverError> {
        self.tree
            .remove(LOG_MARK)
            .map_err(|e| db("forgetting the mark", e))?;
        Ok(())
    }

    /// Whether the `PACER_ALERTS` message of stream seq `seq` was recorded.
    pub fn stream_seen(&self, seq: u64) -> Result<bool, DeliverError> {
        self.tree
            .contains_key(stream_key(seq))
            .map_err(|e| db("reading the stream marks", e))
    }

    /// Records intents with the mark that covers them, in one batch, flushed when it
    /// holds an intent or stream seqs (which are acked next); a log mark alone is not
    /// flushed (lost, its messages are only matched again). An intent recorded
    /// before is kept.
    pub fn record(&self, mark: Mark<'_>, intents: &[(String, Intent)]) -> Result<(), DeliverError> {
        let mut batch = sled::Batch::default();
        for (sub, intent) in intents {
            let key = pending_key(sub, &intent.key);
            if self
                .tree
                .contains_key(&key)
                .map_err(|e| db("reading an intent", e))?
            {
                continue;
            }
            batch.insert(key, serde_json::to_vec(intent).expect("intents serialise"));
        }
        let flush = match mark {
            Mark::Log(seq) => {
                batch.insert(LOG_MARK, &seq.to_be_bytes());
                !intents.is_empty()
            }
            Mark::Stream(seqs) => {
                for seq in seqs {
                    batch.insert(stream_key(*seq), &[]);
                }
                // Seqs long past are forgotten.
                if let Some(low) = seqs
                    .iter()
                    .min()
                    .and_then(|m| m.checked_sub(STREAM_SEEN_MAX))
                {
                    for kv in self.tree.range(stream_key(0)..stream_key(low)) {
                        let (k, _) = kv.map_err(|e| db("reading the stream marks", e))?;
                        batch.remove(k);
                    }
                }
                true
            }
        };
        self.tree
            .apply_batch(batch)
            .map_err(|e| db("recording intents", e))?;
        if flush {
            self.tree.flush().map_err(|e| db("flushing intents", e))?;
        }
        Ok(())
    }

    /// Every pending intent, by subscription, in key order.
    pub fn pending(&self) -> Result<BTreeMap<String, Vec<Intent>>, DeliverError> {
        let mut out: BTreeMap<String, Vec<Intent>> = BTreeMap::new();
        for kv in self.tree.scan_prefix(b"p:") {
            let (k, v) = kv.map_err(|e| db("reading intents", e))?;
            let text = String::from_utf8_lossy(&k[2..]).into_owned();
            let sub = text.split(':').next().unwrap_or_default().to_owned();
            out.entry(sub).or_default().push(decode(&k, &v)?);
        }
        Ok(out)
    }

    /// Replaces a subscription's intents by the delivery made of them, in one batch,
    /// flushed.
    pub fn gather(&self, delivery: &Delivery, intents: &[String]) -> Result<(), DeliverError> {
        let mut batch = sled::Batch::default();
        for k in intents {
            batch.remove(pending_key(&delivery.subscription, k));
        }
        // The same intents again (a crash between two writes) make the same delivery:
        // the one recorded stands.
        if self.get(&delivery.id)?.is_none() {
            batch.insert(
                delivery_key(delivery.state, &delivery.id),
                serde_json::to_vec(delivery).expect("deliveries serialise"),
            );
        }
        self.tree
            .apply_batch(batch)
            .map_err(|e| db("gathering intents", e))?;
        self.tree
            .flush()
            .map_err(|e| db("flushing a delivery", e))?;
        Ok(())
    }

    /// Drops a subscription's pending intents (it is gone or disabled).
    pub fn drop_pending(&self, subscription: &str, intents: &[String]) -> Result<(), DeliverError> {
        let mut batch = sled::Batch::default();
        for k in intents {
            batch.remove(pending_key(subscription, k));
        }
        self.tree
            .apply_batch(batch)
            .map_err(|e| db("dropping intents", e))
    }

    /// Adds a delivery made outside gathering (a notice); kept when it exists.
    pub fn add(&self, delivery: &Delivery) -> Result<(), DeliverError> {
        if self.get(&delivery.id)?.is_none() {
            self.put(delivery)?;
        }
        Ok(())
    }

    /// Writes a delivery's new state; flushed, so a sent one is never sent again
    /// after a restart (unless the crash came between the send and this).
    pub fn put(&self, delivery: &Delivery) -> Result<(), DeliverError> {
        let mut batch = sled::Batch::default();
        for state in [DeliveryState::Due, DeliveryState::Sent] {
            batch.remove(delivery_key(state, &delivery.id));
        }
        batch.insert(
            delivery_key(delivery.state, &delivery.id),
            serde_json::to_vec(delivery).expect("deliveries serialise"),
        );
        self.tree
            .apply_batch(batch)
            .map_err(|e| db("writing a delivery", e))?;
        self.tree
            .flush()
            .map_err(|e| db("flushing a delivery", e))?;
        Ok(())
    }

    pub fn get(&self, id: &str) -> Result<Option<Delivery>, DeliverError> {
        for state in [DeliveryState::Due, DeliveryState::Sent] {
            let key = delivery_key(state, id);
            if let Some(v) = self
                .tree
                .get(&key)
                .map_err(|e| db("reading a delivery", e))?
            {
                return Ok(Some(decode(&key, &v)?));
            }
        }
        Ok(None)
    }

    /// The deliveries due, in id order.
    pub fn due(&self) -> Result<Vec<Delivery>, DeliverError> {
        self.scan(b"d:")
    }

    fn scan(&self, prefix: &[u8]) -> Result<Vec<Delivery>, DeliverError> {
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(prefix) {
            let (k, v) = kv.map_err(|e| db("reading deliveries", e))?;
            out.push(decode::<Delivery>(&k, &v)?);
        }
        Ok(out)
    }

    /// Every delivery, oldest first (then by id).
    pub fn deliveries(&self) -> Result<Vec<Delivery>, DeliverError> {
        let mut out = self.scan(b"d:")?;
        out.extend(self.scan(b"x:")?);
        out.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        Ok(out)
    }

    /// Keeps at most [`SENT_KEPT_MAX`] sent and [`FAILED_KEPT_MAX`] failed deliveries
    /// (the oldest go); returns the failed ones dropped.
    pub fn prune(&self) -> Result<Vec<Delivery>, DeliverError> {
        let mut all = self.scan(b"x:")?;
        all.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        let mut dropped = Vec::new();
        for (states, max) in [
            (
                &[DeliveryState::Sent, DeliveryState::Cancelled][..],
                SENT_KEPT_MAX,
            ),
            (&[DeliveryState::Failed][..], FAILED_KEPT_MAX),
        ] {
            let of: Vec<&Delivery> = all.iter().filter(|d| states.contains(&d.state)).collect();
            for d in of.iter().take(of.len().saturating_sub(max)) {
                self.tree
                    .remove(delivery_key(d.state, &d.id))
                    .map_err(|e| db("pruning deliveries", e))?;
                if d.state == DeliveryState::Failed {
                    dropped.push((*d).clone());
                }
            }
        }
        Ok(dropped)
    }

    /// Makes a failed delivery due again now, with a fresh give-up clock; the same
    /// id, so a receiver that had it drops it. `false`: not failed.
    pub fn retry(&self, id: &str, now_ms: i64) -> Result<Option<bool>, DeliverError> {
        let Some(mut d) = self.get(id)? else {
            return Ok(None);
        };
        if d.state != DeliveryState::Failed {
            return Ok(Some(false));
        }
        d.state = DeliveryState::Due;
        d.created_ms = now_ms;
        d.next_ms = now_ms;
        d.attempts = 0;
        self.put(&d)?;
        Ok(Some(true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        (dir, Store::new(db.open_tree("deliveries").unwrap()))
    }

    fn intent(key: &str) -> Intent {
        Intent {
            key: key.into(),
            kind: Kind::Alerts,
            due_ms: 10,
            created_ms: 1,
            item: serde_json::json!({"id": key}),
        }
    }

    #[test]
    fn an_intent_is_pending_or_in_one_delivery_and_recording_it_again_changes_nothing() {
        let (_dir, s) = store();
        assert_eq!(s.log_mark().unwrap(), None);
        let both = [
            ("sub-1".to_owned(), intent("a")),
            ("sub-1".to_owned(), intent("b")),
        ];
        s.record(Mark::Log(7), &both).unwrap();
        assert_eq!(s.log_mark().unwrap(), Some(7));
        s.record(Mark::Stream(&[5, 3]), &[]).unwrap();
        assert!(s.stream_seen(3).unwrap() && s.stream_seen(5).unwrap());
        assert!(
            !s.stream_seen(4).unwrap(),
            "a seq redelivered out of order is not skipped"
        );
        s.record(Mark::Stream(&[STREAM_SEEN_MAX + 4]), &[]).unwrap();
        assert!(
            !s.stream_seen(3).unwrap() && s.stream_seen(5).unwrap(),
            "seqs long past are forgotten"
        );
        let pending = s.pending().unwrap();
        assert_eq!(pending["sub-1"].len(), 2);
        let keys = vec!["a".to_owned(), "b".to_owned()];
        let id = Delivery::id_of("sub-1", &["a", "b"]);
        assert_ne!(id, Delivery::id_of("sub-1", &["a"]));
        assert_ne!(id, Delivery::id_of("sub-2", &["a", "b"]));
        let d = Delivery {
            id: id.clone(),
            subscription: "sub-1".into(),
            user: "maria".into(),
            channel: Channel::Email {
                to: "m@example.com".into(),
            },
            kind: Kind::Alerts,
            cadence: "immediate".into(),
            items: vec![],
            state: DeliveryState::Due,
            created_ms: 5,
            attempts: 0,
            next_ms: 5,
            last_error: None,
            sent_ms: None,
        };
        s.gather(&d, &keys).unwrap();
        assert!(s.pending().unwrap().is_empty());
        let mut sent = d.clone();
        sent.state = DeliveryState::Sent;
        s.put(&sent).unwrap();
        // The same gathering again (a crash between two writes) keeps the sent one.
        s.gather(&d, &keys).unwrap();
        assert_eq!(s.get(&id).unwrap().unwrap().state, DeliveryState::Sent);
        assert_eq!(s.retry(&id, 9).unwrap(), Some(false));
        assert_eq!(s.retry("dl-none", 9).unwrap(), None);
    }
}
