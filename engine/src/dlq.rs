//! The dead-letter store: the webhook items Pacer could not take, kept with their raw
//! text until an operator retries them (after adding an owner mapping or an FX rate)
//! or drops them. Never in the event log: a dead letter is not a fact about sales.
//!
//! - One-process mode: two trees of the log's sled database, `dlq` (id → the
//!   letter's JSON) and `dlq_order` (received time and id → nothing, oldest first).
//! - With NATS: the `PACER_DLQ` stream that the engine's own dead letters go to; a
//!   gateway's letter is a message on `<prefix>.dlq.webhook.<crm>.<reason>` whose
//!   `Nats-Msg-Id` is the letter's id. The engine's letters (events refused after
//!   JetStream took them) are listed too, as CRM `nats`.
//!
//! A letter's id is a hash of its CRM and raw text, so the same item refused twice
//! (a CRM's retry) is one letter. The store keeps at most `[dlq] items_max` letters:
//! past it the oldest is dropped with a logged warning and `pacer_dlq_dropped_total`
//! (the newest letters are the ones nobody has looked at yet; refusing new ones
//! would make the CRM's requests fail, which is what this store is there to avoid).

use std::collections::BTreeMap;

use async_nats::jetstream;
use async_nats::HeaderMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::metrics::Metrics;
use crate::nats::{Subjects, ERROR_HEADER};

/// The CRM name of the engine's own dead letters (NATS mode).
pub const ENGINE_CRM: &str = "nats";

/// Operating errors of the store.
#[derive(Debug, Error)]
pub enum DlqError {
    #[error("the dead-letter store (sled) failed while {doing}: {source}")]
    Sled {
        doing: &'static str,
        source: sled::Error,
    },
    #[error("the dead-letter stream {stream} is unavailable while {doing}: {reason}")]
    Unavailable {
        stream: String,
        doing: &'static str,
        reason: String,
    },
    #[error("dead letter {id} is corrupt: {reason}")]
    Corrupt { id: String, reason: String },
}

/// One item Pacer could not take.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// `dl-` and 16 hex digits of a hash of the CRM and the raw item.
    pub id: String,
    /// `hubspot`, `pipedrive`, `salesforce`, `native`; `nats` for the engine's own.
    pub crm: String,
    /// The request it came in (the sender's `webhook-id` or `x-request-id`, else a
    /// hash of the body).
    pub request_id: String,
    /// Its place in that request.
    pub index: usize,
    /// `malformed`, `owner_unmapped`, `record_too_large`, or a validation rule.
    pub reason: String,
    /// Where in the item, as the CRM names it.
    pub field: String,
    /// What is wrong, quoting the value.
    pub error: String,
    /// The item as the CRM sent it: a HubSpot event object, a native event, a
    /// Pipedrive body, a Salesforce message holding this one notification.
    pub raw: String,
    /// When it was first refused (ms since the epoch).
    pub received_ms: i64,
    /// Retries so far.
    #[serde(default)]
    pub attempts: u32,
    /// When it was last retried (ms), if ever.
    #[serde(default)]
    pub retried_ms: Option<i64>,
    /// Where NATS holds it (stream sequences); not stored.
    #[serde(skip)]
    pub sequences: Vec<u64>,
}

/// The reason a deal waiting for its owner's mapping shows with (`pacer dlq list
/// --waiting`): not a dead letter, but a deal taken in that cannot be told yet,
/// kept in the mirror's index of waiting deals
/// ([`crate::webhook::mirror::WaitingDeal`]).
pub const OWNER_WAITING: &str = "owner_waiting";

/// A waiting deal as the dead-letter listings show one.
pub fn waiting_letter(w: &crate::webhook::mirror::WaitingDeal) -> DeadLetter {
    let deal = format!("{}:{}:{}", w.crm, w.tenant, w.deal);
    let raw = serde_json::json!({"crm": w.crm, "tenant": w.tenant, "deal": w.deal}).to_string();
    let mut id = DeadLetter::id_of(&w.crm, &format!("waiting {deal}"));
    id.replace_range(..3, "dw-");
    DeadLetter {
        id,
        crm: w.crm.clone(),
        request_id: String::new(),
        index: 0,
        reason: OWNER_WAITING.to_owned(),
        field: format!("deal {deal}.owner"),
        error: w.reason.clone(),
        raw,
        received_ms: w.since_ms,
        attempts: 0,
        retried_ms: None,
        sequences: Vec::new(),
    }
}

/// The reason of an `owner_unmapped` refusal, as the intake writes it and
/// [`unmapped_owner`] reads it back: the one place the wording lives.
pub fn owner_unmapped_reason(owner: &str, crm: &str) -> String {
    format!(
        "owner {owner:?} is not mapped to a rep; add it to [webhooks.{crm}] owners, then `pacer dlq retry` (or restart)"
    )
}

/// The CRM owner id an `owner_unmapped` letter waits for, as its error quotes it
/// (`deal <id>.owner: ` and [`owner_unmapped_reason`]).
pub fn unmapped_owner(letter: &DeadLetter) -> Option<&str> {
    if letter.reason != "owner_unmapped" {
        return None;
    }
    let at = letter.error.find("owner \"")?;
    let rest = &letter.error[at + "owner \"".len()..];
    let end = rest.find('"')?;
    Some(&rest[..end]).filter(|o| !o.is_empty())
}

impl DeadLetter {
    /// The id of an item of a CRM.
    pub fn id_of(crm: &str, raw: &str) -> String {
        let digest = Sha256::digest(format!("{crm}\n{raw}").as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("dl-{hex}")
    }

    /// When it was first refused, as RFC 3339.
    pub fn received_at(&self) -> String {
        crate::webhook::rfc3339_of_ms(self.received_ms).unwrap_or_default()
    }

    /// The letter as the CLI and the HTTP API show it.
    pub fn to_json(&self) -> serde_json::Value {
        let retried = self.retried_ms.and_then(crate::webhook::rfc3339_of_ms);
        serde_json::json!({
            "id": self.id, "crm": self.crm, "request_id": self.request_id,
            "index": self.index, "reason": self.reason, "field": self.field,
            "error": self.error, "received_at": self.received_at(),
            "attempts": self.attempts, "retried_at": retried, "raw": self.raw,
        })
    }
}

/// Where the letters are kept.
// One per process, never per message: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum DlqStore {
    Sled {
        letters: sled::Tree,
        order: sled::Tree,
        items_max: usize,
    },
    Nats {
        js: jetstream::Context,
        subjects: Subjects,
        items_max: usize,
    },
}

impl DlqStore {
    /// The store in two trees of a sled database (the log's): `dlq` and `dlq_order`.
    pub fn sled(letters: sled::Tree, order: sled::Tree, items_max: usize) -> Self {
        DlqStore::Sled {
            letters,
            order,
            items_max: items_max.max(1),
        }
    }

    /// Keeps `letters` (one already kept stays as it is), dropping the oldest past
    /// the bound. Durable when it returns. Returns how many were dropped.
    pub async fn put(&self, letters: &[DeadLetter], metrics: &Metrics) -> Result<usize, DlqError> {
        let dropped = match self {
            DlqStore::Sled {
                letters: tree,
                order,
                items_max,
            } => {
                let sled_err = |doing| move |source| DlqError::Sled { doing, source };
                for letter in letters {
                    if tree
                        .contains_key(letter.id.as_bytes())
                        .map_err(sled_err("reading"))?
                    {
                        continue;
                    }
                    let json = serde_json::to_vec(letter).expect("a dead letter serialises");
                    tree.insert(letter.id.as_bytes(), json)
                        .map_err(sled_err("storing"))?;
                    order
                        .insert(order_key(letter.received_ms, &letter.id), &[])
                        .map_err(sled_err("storing"))?;
                }
                let mut dropped = 0;
                while tree.len() > *items_max {
                    let Some((key, _)) = order.pop_min().map_err(sled_err("dropping"))? else {
                        break;
                    };
                    tree.remove(&key[8..]).map_err(sled_err("dropping"))?;
                    dropped += 1;
                }
                tree.flush_async().await.map_err(sled_err("flushing"))?;
                order.flush_async().await.map_err(sled_err("flushing"))?;
                dropped
            }
            DlqStore::Nats {
                js,
                subjects,
                items_max,
            } => {
                let stream = subjects.stream("DLQ");
                let err = |doing: &'static str| {
                    let stream = stream.clone();
                    move |e: &dyn std::fmt::Display| DlqError::Unavailable {
                        stream: stream.clone(),
                        doing,
                        reason: e.to_string(),
                    }
                };
                for letter in letters {
                    publish_letter(js, subjects, letter, &letter.id)
                        .await
                        .map_err(|e| err("storing")(&e))?;
                }
                let mut s = js
                    .get_stream(&stream)
                    .await
                    .map_err(|e| err("reading")(&e))?;
                let info = s.info().await.map_err(|e| err("reading")(&e))?;
                let (mut n, mut seq) = (info.state.messages as usize, info.state.first_sequence);
                let last = info.state.last_sequence;
                let mut dropped = 0;
                while n > *items_max && seq <= last {
                    if s.delete_message(seq).await.unwrap_or(false) {
                        n -= 1;
                        dropped += 1;
                    }
                    seq += 1;
                }
                dropped
            }
        };
        if dropped > 0 {
            eprintln!(
                "pacer: the dead-letter store is full ([dlq] items_max = {}): dropped the {dropped} oldest",
                self.items_max()
            );
            metrics.dlq_dropped.inc_by(dropped as u64);
        }
        self.count(metrics).await?;
        Ok(dropped)
    }

    fn items_max(&self) -> usize {
        match self {
            DlqStore::Sled { items_max, .. } | DlqStore::Nats { items_max, .. } => *items_max,
        }
    }

    /// Every letter, oldest first.
    pub async fn list(&self) -> Result<Vec<DeadLetter>, DlqError> {
        match self {
            DlqStore::Sled { letters, order, .. } => {
                let mut out = Vec::new();
                for key in order.iter().keys() {
                    let key = key.map_err(|source| DlqError::Sled {
                        doing: "listing",
                        source,
                    })?;
                    let id = String::from_utf8_lossy(&key[8..]).into_owned();
                    let got = letters
                        .get(id.as_bytes())
                        .map_err(|source| DlqError::Sled {
                            doing: "listing",
                            source,
                        })?;
                    if let Some(v) = got {
                        out.push(decode(&id, &v)?);
                    }
                }
                // A letter whose order key was lost still shows.
                if out.len() < letters.len() {
                    let mut all = Vec::new();
                    for item in letters.iter() {
                        let (k, v) = item.map_err(|source| DlqError::Sled {
                            doing: "listing",
                            source,
                        })?;
                        all.push(decode(&String::from_utf8_lossy(&k), &v)?);
                    }
                    out = all;
                }
                out.sort_by(in_order);
                Ok(out)
            }
            DlqStore::Nats { js, subjects, .. } => {
                let stream = subjects.stream("DLQ");
                let unavailable = |e: &dyn std::fmt::Display| DlqError::Unavailable {
                    stream: stream.clone(),
                    doing: "listing",
                    reason: e.to_string(),
                };
                let mut s = js.get_stream(&stream).await.map_err(|e| unavailable(&e))?;
                let info = s.info().await.map_err(|e| unavailable(&e))?;
                let (first, last) = (info.state.first_sequence, info.state.last_sequence);
                let mut by_id: BTreeMap<String, DeadLetter> = BTreeMap::new();
                if info.state.messages > 0 {
                    for seq in first..=last {
                        // A deleted sequence is a gap.
                        let Ok(msg) = s.get_raw_message(seq).await else {
                            continue;
                        };
                        let letter = letter_of(&msg, subjects);
                        by_id
                            .entry(letter.id.clone())
                            .and_modify(|l| l.sequences.push(seq))
                            .or_insert(letter);
                    }
                }
                let mut out: Vec<DeadLetter> = by_id.into_values().collect();
                out.sort_by(in_order);
                Ok(out)
            }
        }
    }

    /// One letter.
    pub async fn get(&self, id: &str) -> Result<Option<DeadLetter>, DlqError> {
        match self {
            DlqStore::Sled { letters, .. } => {
                let got = letters
                    .get(id.as_bytes())
                    .map_err(|source| DlqError::Sled {
                        doing: "reading",
                        source,
                    })?;
                got.map(|v| decode(id, &v)).transpose()
            }
            DlqStore::Nats { .. } => Ok(self.list().await?.into_iter().find(|l| l.id == id)),
        }
    }

    /// Removes a letter (retried with success, or dropped); `false`: not there.
    pub async fn remove(&self, letter: &DeadLetter) -> Result<bool, DlqError> {
        let removed = match self {
            DlqStore::Sled { letters, order, .. } => {
                let sled_err = |source| DlqError::Sled {
                    doing: "removing",
                    source,
                };
                let was = letters.remove(letter.id.as_bytes()).map_err(sled_err)?;
                order
                    .remove(order_key(letter.received_ms, &letter.id))
                    .map_err(sled_err)?;
                letters.flush_async().await.map_err(sled_err)?;
                was.is_some()
            }
            DlqStore::Nats { js, subjects, .. } => {
                let stream = subjects.stream("DLQ");
                let s = js
                    .get_stream(&stream)
                    .await
                    .map_err(|e| DlqError::Unavailable {
                        stream: stream.clone(),
                        doing: "removing",
                        reason: e.to_string(),
                    })?;
                let mut any = false;
                for seq in &letter.sequences {
                    any |= s.delete_message(*seq).await.unwrap_or(false);
                }
                any
            }
        };
        Ok(removed)
    }

    /// Stores a letter's new state after a failed retry (attempts, error).
    pub async fn update(&self, letter: &DeadLetter) -> Result<(), DlqError> {
        match self {
            DlqStore::Sled { letters, .. } => {
                let json = serde_json::to_vec(letter).expect("a dead letter serialises");
                let sled_err = |source| DlqError::Sled {
                    doing: "updating",
                    source,
                };
                letters
                    .insert(letter.id.as_bytes(), json)
                    .map_err(sled_err)?;
                letters.flush_async().await.map_err(sled_err)?;
            }
            DlqStore::Nats { js, subjects, .. } => {
                // A new message under a new message id, then the old ones go.
                let msg_id = format!("{}:{}", letter.id, letter.attempts);
                publish_letter(js, subjects, letter, &msg_id)
                    .await
                    .map_err(|e| DlqError::Unavailable {
                        stream: subjects.stream("DLQ"),
                        doing: "updating",
                        reason: e,
                    })?;
                self.remove(letter).await?;
            }
        }
        Ok(())
    }

    /// Refreshes the gauges (letters by CRM and reason, the oldest's time): after a
    /// request's letters are stored, and once after a retry or drop of many. With NATS
    /// from the stream's message count per subject and its first message, two requests
    /// whatever the number of letters.
    pub async fn count(&self, metrics: &Metrics) -> Result<(), DlqError> {
        let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
        let oldest_ms = match self {
            DlqStore::Sled { .. } => {
                let all = self.list().await?;
                for l in &all {
                    *counts.entry((l.crm.clone(), l.reason.clone())).or_default() += 1;
                }
                all.iter().map(|l| l.received_ms).min()
            }
            DlqStore::Nats { js, subjects, .. } => {
                use futures::StreamExt;
                let stream = subjects.stream("DLQ");
                let unavailable = |e: &dyn std::fmt::Display| DlqError::Unavailable {
                    stream: stream.clone(),
                    doing: "counting",
                    reason: e.to_string(),
                };
                let mut s = js.get_stream(&stream).await.map_err(|e| unavailable(&e))?;
                let (webhook, engine) = (
                    format!("{}.dlq.webhook.", subjects.prefix),
                    format!("{}.dlq.", subjects.prefix),
                );
                let mut per_subject = s
                    .info_with_subjects(format!("{}.dlq.>", subjects.prefix))
                    .await
                    .map_err(|e| unavailable(&e))?;
                while let Some(item) = per_subject.next().await {
                    let (subject, n) = item.map_err(|e| unavailable(&e))?;
                    let key = match subject
                        .strip_prefix(&webhook)
                        .and_then(|r| r.split_once('.'))
                    {
                        Some((crm, reason)) => (crm.to_owned(), reason.to_owned()),
                        None => (
                            ENGINE_CRM.to_owned(),
                            subject.strip_prefix(&engine).unwrap_or(&subject).to_owned(),
                        ),
                    };
                    *counts.entry(key).or_default() += n as i64;
                }
                let info = s.info().await.map_err(|e| unavailable(&e))?;
                let first = info.state.first_sequence;
                match info.state.messages {
                    0 => None,
                    _ => s
                        .get_raw_message(first)
                        .await
                        .ok()
                        .map(|m| m.time.unix_timestamp_nanos().div_euclid(1_000_000) as i64),
                }
            }
        };
        metrics.set_dlq(&counts, oldest_ms);
        Ok(())
    }
}

/// The letters of one CRM (`None`: all) refused at or after `since_ms`, in order.
pub fn select(
    letters: Vec<DeadLetter>,
    crm: Option<&str>,
    since_ms: Option<i64>,
) -> Vec<DeadLetter> {
    letters
        .into_iter()
        .filter(|l| crm.is_none_or(|c| l.crm == c))
        .filter(|l| since_ms.is_none_or(|t| l.received_ms >= t))
        .collect()
}

/// `--since` / `?since=`: an RFC 3339 time or a date (`2026-12-01`, midnight UTC).
pub fn parse_since(text: &str) -> Result<i64, String> {
    if let Some(ms) = crate::webhook::ms_of_rfc3339(text) {
        return Ok(ms);
    }
    chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
        .ok_or_else(|| format!("since: {text:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"))
}

/// The `dead_letters` system alert: letters have waited longer than
/// `alert_after_s` at `now_ms`. For the operator, not a team: `pacer alerts --system`,
/// `GET /v1/alerts?system=true`, `<prefix>.alerts.system`. `None`: nothing waits that
/// long.
pub fn system_alert(
    letters: &[DeadLetter],
    now_ms: i64,
    alert_after_s: u64,
) -> Option<serde_json::Value> {
    let limit_ms = (alert_after_s as i64).saturating_mul(1000);
    let old: Vec<&DeadLetter> = letters
        .iter()
        .filter(|l| now_ms.saturating_sub(l.received_ms) >= limit_ms)
        .collect();
    let oldest = old.iter().min_by_key(|l| l.received_ms)?;
    let mut by: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for l in &old {
        *by.entry(l.crm.clone())
            .or_default()
            .entry(l.reason.clone())
            .or_default() += 1;
    }
    let hours = now_ms.saturating_sub(oldest.received_ms) / 3_600_000;
    Some(serde_json::json!({
        "id": format!("system:dead_letters:{}", oldest.id),
        "rule": "dead_letters",
        "severity": if hours >= 24 { "critical" } else { "warning" },
        "waiting": old.len(),
        "waiting_total": letters.len(),
        "oldest_id": oldest.id,
        "oldest_received_at": oldest.received_at(),
        "older_than_s": alert_after_s,
        "by_crm_and_reason": by,
        "message": format!(
            "{} CRM items have waited over {alert_after_s} s in the dead-letter store (the oldest for {hours} h): their events are missing from the reports",
            old.len()
        ),
        "suggested_action": "pacer dlq list; fix the cause (an owner mapping, an FX rate), then pacer dlq retry --all, or pacer dlq drop ID --reason ...",
    }))
}

/// Oldest first; a request's items in their order.
fn in_order(a: &DeadLetter, b: &DeadLetter) -> std::cmp::Ordering {
    (a.received_ms, &a.request_id, a.index, &a.id).cmp(&(
        b.received_ms,
        &b.request_id,
        b.index,
        &b.id,
    ))
}

/// The `dlq_order` key: the time big-endian (so keys sort oldest first), then the id.
fn order_key(received_ms: i64, id: &str) -> Vec<u8> {
    let mut key = (received_ms.max(0) as u64).to_be_bytes().to_vec();
    key.extend_from_slice(id.as_bytes());
    key
}

fn decode(id: &str, bytes: &[u8]) -> Result<DeadLetter, DlqError> {
    serde_json::from_slice(bytes).map_err(|e| DlqError::Corrupt {
        id: id.to_owned(),
        reason: e.to_string(),
    })
}

/// Publishes a letter and waits for its PubAck.
async fn publish_letter(
    js: &jetstream::Context,
    subjects: &Subjects,
    letter: &DeadLetter,
    msg_id: &str,
) -> Result<(), String> {
    let subject = format!(
        "{}.dlq.webhook.{}.{}",
        subjects.prefix,
        crate::nats::token(&letter.crm),
        crate::nats::token(&letter.reason)
    );
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", msg_id);
    headers.insert("Pacer-Dlq-Id", letter.id.as_str());
    let error = letter.error.replace(['\r', '\n'], " ");
    headers.insert(ERROR_HEADER, error.as_str());
    let payload = serde_json::to_vec(letter).expect("a dead letter serialises");
    js.publish_with_headers(subject, headers, payload.into())
        .await
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// A message of the DLQ stream as a letter: a gateway's as it was stored, the
/// engine's (an event refused after JetStream took it) as CRM `nats`.
fn letter_of(msg: &jetstream::message::StreamMessage, subjects: &Subjects) -> DeadLetter {
    let webhook = format!("{}.dlq.webhook.", subjects.prefix);
    if msg.subject.starts_with(&webhook) {
        if let Ok(mut letter) = serde_json::from_slice::<DeadLetter>(&msg.payload) {
            letter.sequences = vec![msg.sequence];
            return letter;
        }
    }
    let raw = String::from_utf8_lossy(&msg.payload).into_owned();
    let reason = msg
        .subject
        .rsplit('.')
        .next()
        .unwrap_or("invalid")
        .to_owned();
    let error = msg
        .headers
        .get(ERROR_HEADER)
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default();
    let field = error.split(':').next().unwrap_or("").trim().to_owned();
    DeadLetter {
        id: DeadLetter::id_of(ENGINE_CRM, &format!("{}\n{raw}", msg.sequence)),
        crm: ENGINE_CRM.into(),
        request_id: format!("seq-{}", msg.sequence),
        index: 0,
        reason,
        field,
        error,
        raw,
        received_ms: msg.time.unix_timestamp_nanos().div_euclid(1_000_000) as i64,
        attempts: 0,
        retried_ms: None,
        sequences: vec![msg.sequence],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unmapped_owner_is_read_back_from_the_reason_the_intake_wrote() {
        let mut l = letter("dl-1", 0);
        l.reason = "owner_unmapped".into();
        l.error = format!(
            "deal hubspot:1:2.owner: {}",
            owner_unmapped_reason("51234567", "hubspot")
        );
        assert_eq!(unmapped_owner(&l), Some("51234567"));
        l.reason = "malformed".into();
        assert_eq!(unmapped_owner(&l), None);
    }

    fn letter(id: &str, at: i64) -> DeadLetter {
        DeadLetter {
            id: id.into(),
            crm: "hubspot".into(),
            request_id: "r".into(),
            index: 0,
            reason: "malformed".into(),
            field: "[0].amount".into(),
            error: "bad".into(),
            raw: "{}".into(),
            received_ms: at,
            attempts: 0,
            retried_ms: None,
            sequences: Vec::new(),
        }
    }

    /// Letters survive reopening the database, a letter stored twice is one, and past
    /// the bound the oldest go, counted.
    #[tokio::test]
    async fn sled_letters_are_durable_deduplicated_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Metrics::new();
        {
            let db = sled::open(dir.path()).unwrap();
            let store = DlqStore::sled(db.open_tree("dlq").unwrap(), db.open_tree("o").unwrap(), 3);
            store
                .put(&[letter("b", 2), letter("a", 1), letter("b", 2)], &metrics)
                .await
                .unwrap();
            let dropped = store
                .put(&[letter("c", 3), letter("d", 4)], &metrics)
                .await
                .unwrap();
            assert_eq!(dropped, 1);
        }
        // Reopened as the log opens its database: sled's flusher may hold the lock a
        // moment after the last handle is dropped, and the log waits for it.
        let db = crate::log::open_db(dir.path()).unwrap();
        let store = DlqStore::sled(db.open_tree("dlq").unwrap(), db.open_tree("o").unwrap(), 3);
        let ids: Vec<String> = store
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.id)
            .collect();
        assert_eq!(ids, ["b", "c", "d"]);
        assert!(metrics.render().contains("pacer_dlq_dropped_total 1"));
        let c = store.get("c").await.unwrap().unwrap();
        assert!(store.remove(&c).await.unwrap());
        assert!(!store.remove(&c).await.unwrap());
        assert_eq!(store.list().await.unwrap().len(), 2);
        store.count(&metrics).await.unwrap();
        assert!(metrics
            .render()
            .contains("pacer_dlq_items{crm=\"hubspot\",reason=\"malformed\"} 2"));
    }

    /// The system alert stands only once a letter has waited the configured time,
    /// and counts only those.
    #[test]
    fn the_system_alert_waits_for_the_configured_age() {
        let hour = 3_600_000;
        let letters = [letter("a", 0), letter("b", 2 * hour)];
        assert!(system_alert(&letters, hour - 1, 3600).is_none());
        let a = system_alert(&letters, hour, 3600).unwrap();
        assert_eq!(
            (a["waiting"].as_u64(), a["waiting_total"].as_u64()),
            (Some(1), Some(2))
        );
        assert_eq!(
            (a["rule"].as_str(), a["severity"].as_str()),
            (Some("dead_letters"), Some("warning"))
        );
        let later = system_alert(&letters, 26 * hour, 3600).unwrap();
        assert_eq!(
            (later["waiting"].as_u64(), later["severity"].as_str()),
            (Some(2), Some("critical"))
        );
        assert_eq!(later["by_crm_and_reason"]["hubspot"]["malformed"], 2);
    }

    #[test]
    fn ids_depend_on_the_crm_and_the_item() {
        let a = DeadLetter::id_of("hubspot", "{}");
        assert_eq!(a.len(), 19);
        assert_eq!(a, DeadLetter::id_of("hubspot", "{}"));
        assert_ne!(a, DeadLetter::id_of("native", "{}"));
    }
}
