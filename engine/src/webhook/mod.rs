//! CRM webhooks: turning what HubSpot, Pipedrive, Salesforce and Pacer's own JSON
//! say into Pacer events, with no I/O of its own (the HTTP side is [`crate::http`]).
//!
//! A CRM says things about a deal a piece at a time: HubSpot one property per
//! message, Pipedrive and Salesforce the whole record each time, never in a
//! guaranteed order, and again on every retry. Each adapter ([`hubspot`],
//! [`pipedrive`], [`salesforce`], [`native`]) parses its payload into [`Change`]s:
//! either a finished Pacer event, or a [`DealChange`] (properties of one deal, with the
//! time the CRM gives them). Every value is kept in the deal's [`DealRecord`] (the
//! mirror, see [`mirror`]) with its time: the latest in `props`, the ones before in
//! `past`, so a late or repeated message changes nothing it should not. The
//! adapter reads [`DealFacts`] off a record through its configured mapping.
//!
//! A deal's events are its [`history`]: at each moment of the record (each value's
//! time, its creation, its deletion) the facts as they stood then go through one
//! function, [`deal::reconcile`], which emits the events that close the gap with
//! what that history had told so far: `deal_opened` once enough is known,
//! `deal_stage_changed`, `deal_won`, `deal_lost`, and `event_voided` when a won or
//! lost deal is reopened. Each event is stamped with its moment. [`retell`] tells
//! what the history holds that was not told yet; when a message that came late
//! changes history already told, it voids the events that no longer stand (or that
//! the late one must precede) and tells them as they should be.
//!
//! Event ids are `<crm>:<tenant>:<deal>:<type>:<digest>`, the digest that of the
//! event's content (time and figures): the same messages give the same events, with
//! the same ids, in whatever order they arrive, and a retry that recomputes from the
//! same record makes the same ids, which the log drops as duplicates. A deal first
//! told by an earlier version (ids `<crm>:<tenant>:<deal>:<n>:<type>`, no told log)
//! goes on as it began ([`DealRecord::is_counted`]).

pub mod auth;
pub mod crm;
pub mod deal;
pub mod hubspot;
pub mod mirror;
pub mod native;
pub mod pipedrive;
pub mod salesforce;

use std::collections::{BTreeMap, VecDeque};

use chrono_tz::Tz;
use pacer_projections::money::Currency;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

pub use crm::{Crm, DealKey};
pub use deal::{amount_text, plain_decimal, DealFacts, DealStatus, Ids, OpenTold, Told, WonTold};

/// How many dedupe keys of recent messages a deal's record remembers.
pub const SEEN_MAX: usize = 64;

/// Why a webhook request was refused; each maps to one HTTP status.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum WebhookError {
    /// 401: a missing, bad or stale signature, or wrong credentials.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// 400: the body is not what this endpoint takes. `field` is its path in the
    /// payload (`[2].occurredAt`, `meta.action`, `Notification[0].sObject.Amount`).
    #[error("{field}: {reason}")]
    BadRequest { field: String, reason: String },
    /// 415: the wrong `Content-Type`.
    #[error("content type {found:?} is not accepted here; send {expected}")]
    UnsupportedMediaType {
        found: String,
        expected: &'static str,
    },
    /// 408: the body did not arrive in time.
    #[error("the body did not arrive within {0} s")]
    Timeout(u64),
    /// 413: the body is over the configured limit.
    #[error("the body is over the limit of {limit_bytes} bytes")]
    TooLarge { limit_bytes: usize },
    /// 404: the endpoint of a CRM the configuration does not set up.
    #[error("the {0} webhook is not configured (add a [webhooks.{0}] section)")]
    NotConfigured(&'static str),
    /// 503: the events could not be made durable now (NATS away); retry later.
    #[error("unavailable, retry later: {0}")]
    Unavailable(String),
    /// 500: the engine failed (the log, the mirror).
    #[error("internal error: {0}")]
    Internal(String),
}

impl WebhookError {
    pub fn bad(field: impl Into<String>, reason: impl Into<String>) -> Self {
        WebhookError::BadRequest {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// One property value as the CRM sent it, with the time it gave it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prop {
    /// `None`: the CRM cleared it.
    pub value: Option<String>,
    /// When it took this value (ms since the Unix epoch).
    pub at_ms: i64,
    /// The times (ms) later messages said the same value again, the latest
    /// [`SEEN_TIMES_MAX`] (Pipedrive and Salesforce send every field each time):
    /// kept instead of an entry per message, so that a change arriving late between
    /// them still finds when the value came back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<i64>,
}

/// How many times of a value said again are kept (the latest).
pub const SEEN_TIMES_MAX: usize = 16;

/// A deal's properties by the CRM's own names.
pub type Props = BTreeMap<String, Prop>;

/// What one message says about one deal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DealChange {
    pub key: DealKey,
    /// When the CRM says this happened (ms since the epoch).
    pub at_ms: i64,
    /// Properties by the CRM's names; `None` clears one.
    pub props: Vec<(String, Option<String>)>,
    /// The CRM deleted the deal.
    pub deleted: bool,
    /// Identifies the message across retries (HubSpot: portal, subscription, event
    /// id and time, since `eventId` alone is not unique).
    pub dedupe: String,
}

/// One thing a payload says.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// About a deal: goes through the mirror.
    Deal(DealChange),
    /// A finished Pacer event in wire JSON (activities, Pacer's own events).
    Event(Value),
}

/// One item of a request that cannot be taken, while the rest of the request
/// stands: it goes to the dead-letter store ([`crate::dlq`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemError {
    /// The item's place in the request (0-based: HubSpot's array, Salesforce's
    /// notifications, the native endpoint's events; a Pipedrive body is one item).
    pub index: usize,
    /// Where in the request, as the CRM names it (`[2].occurredAt`,
    /// `notifications.Notification[3].sObject.Id`, `deal hubspot:1:2.amount`).
    pub field: String,
    /// What is wrong, quoting the value.
    pub reason: String,
    /// The kind, as a metric label and subject token: `malformed`, `owner_unmapped`,
    /// `record_too_large`, or a validation rule's slug.
    pub kind: String,
}

impl ItemError {
    /// An item the CRM's parser could not read.
    pub fn malformed(index: usize, field: impl Into<String>, reason: impl Into<String>) -> Self {
        ItemError {
            index,
            field: field.into(),
            reason: reason.into(),
            kind: "malformed".into(),
        }
    }

    /// The error of an item refused on its own: `field: reason`.
    pub fn message(&self) -> String {
        format!("{}: {}", self.field, self.reason)
    }
}

/// A parsed request body.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Parsed {
    pub changes: Vec<Change>,
    /// The item each change came from, parallel to `changes`.
    pub items: Vec<usize>,
    /// Items that map to no event (a property or object Pacer does not use):
    /// accepted and counted, not errors.
    pub ignored: usize,
    /// Items refused on their own (the rest of the request stands).
    pub invalid: Vec<ItemError>,
    /// Deals to look at again with no new message (their owner is mapped now).
    pub reconsider: Vec<DealKey>,
}

impl Parsed {
    /// Adds a change of item `index`.
    pub fn push(&mut self, index: usize, change: Change) {
        self.changes.push(change);
        self.items.push(index);
    }

    /// Refuses item `index` when its parser said why; other errors are the request's.
    pub fn refuse(&mut self, index: usize, error: WebhookError) -> Result<(), WebhookError> {
        match error {
            WebhookError::BadRequest { field, reason } => {
                self.invalid
                    .push(ItemError::malformed(index, field, reason));
                Ok(())
            }
            other => Err(other),
        }
    }

    /// The same request without the changes of `items`.
    pub fn without(&self, items: &std::collections::BTreeSet<usize>) -> Parsed {
        let mut out = Parsed {
            ignored: self.ignored,
            invalid: self.invalid.clone(),
            reconsider: self.reconsider.clone(),
            ..Parsed::default()
        };
        for (change, item) in self.changes.iter().zip(&self.items) {
            if !items.contains(item) {
                out.push(*item, change.clone());
            }
        }
        out
    }

    /// The items whose changes are about `key`.
    pub fn items_of(&self, key: &DealKey) -> Vec<usize> {
        let mut out: Vec<usize> = self
            .changes
            .iter()
            .zip(&self.items)
            .filter(|(c, _)| matches!(c, Change::Deal(d) if &d.key == key))
            .map(|(_, i)| *i)
            .collect();
        out.dedup();
        out
    }
}

/// The mirror's record of one deal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealRecord {
    /// Each property's latest value.
    pub props: Props,
    /// The values each property had before its latest, oldest first: with `props`,
    /// the deal's history, from which its events are rebuilt.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub past: BTreeMap<String, Vec<Prop>>,
    pub deleted: bool,
    /// When the CRM deleted the deal (the earliest deletion message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_ms: Option<i64>,
    /// When the CRM created the deal (the earliest creation message, which names no
    /// property): the first moment of its history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_ms: Option<i64>,
    /// Dedupe keys of the latest messages, oldest first (at most [`SEEN_MAX`]).
    pub seen: VecDeque<String>,
    /// What Pacer was told of a deal first told before histories were kept (its
    /// `n` is above 0 and `told_log` empty): such a deal goes on as it began, each
    /// request's changes told at the request's time under counted ids.
    pub told: Told,
    /// Every event told about the deal, in order: what the rebuilt history is
    /// compared with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub told_log: Vec<ToldEvent>,
    /// The CRM owner id the deal waits for (no rep maps to it): the mirror's index
    /// of waiting deals holds it ([`mirror::WaitingDeal`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waits_for: Option<String>,
    /// Events claimed by `told` but not yet known to be durable (JSON text): whoever
    /// loads the record makes them durable (same ids) before anything else.
    #[serde(default)]
    pub pending: Vec<String>,
}

/// One event told about a deal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToldEvent {
    pub id: String,
    /// The history's id of the event this one stands for, when it was told under
    /// another (`<id>~<n>`: told again after a correction voided it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// Its `occurred_at` (ms): a correction that voids it is stamped the same.
    pub at_ms: i64,
    /// For an `event_voided`, the event it voids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voids: Option<String>,
}

impl DealRecord {
    /// Takes in one message about the deal; `false` when it was seen before (a
    /// retry), and nothing changed. Every change of a value is kept with the time
    /// the CRM gave it (see [`put`]): `props` holds each property's latest (of two
    /// at the same millisecond, the greater text, so arrival order never decides),
    /// `past` the ones before.
    pub fn merge(&mut self, change: &DealChange) -> bool {
        self.merge_tracked(change, &|_| true)
    }

    /// [`DealRecord::merge`], keeping every change only of the `tracked`
    /// properties (see [`apply`]); of the others, the latest value.
    pub fn merge_tracked(&mut self, change: &DealChange, tracked: &dyn Fn(&str) -> bool) -> bool {
        if self.seen.iter().any(|k| k == &change.dedupe) {
            return false;
        }
        if self.seen.len() >= SEEN_MAX {
            self.seen.pop_front();
        }
        self.seen.push_back(change.dedupe.clone());
        for (name, value) in &change.props {
            let new = Prop {
                value: value.clone(),
                at_ms: change.at_ms,
                seen: Vec::new(),
            };
            if !tracked(name) {
                let newer = self
                    .props
                    .get(name)
                    .is_none_or(|p| order(p, &new) != std::cmp::Ordering::Greater);
                if newer {
                    self.props.insert(name.clone(), new);
                }
                continue;
            }
            let mut line = self.past.remove(name).unwrap_or_default();
            line.extend(self.props.remove(name));
            put(&mut line, new);
            if let Some(latest) = line.pop() {
                self.props.insert(name.clone(), latest);
            }
            if !line.is_empty() {
                self.past.insert(name.clone(), line);
            }
        }
        if change.deleted {
            self.deleted = true;
            self.deleted_ms = Some(
                self.deleted_ms
                    .map_or(change.at_ms, |d| d.min(change.at_ms)),
            );
        } else if change.props.is_empty() {
            self.created_ms = Some(
                self.created_ms
                    .map_or(change.at_ms, |c| c.min(change.at_ms)),
            );
        }
        true
    }

    /// The value of a configured field (`None`: no field configured, or not set).
    pub fn field(&self, name: &Option<String>) -> Option<String> {
        name.as_deref()
            .and_then(|n| self.prop(n))
            .map(str::to_owned)
    }

    /// A property's value, if it is set and not blank.
    pub fn prop(&self, name: &str) -> Option<&str> {
        self.props
            .get(name)
            .and_then(|p| p.value.as_deref())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    /// Whether the deal was first told before histories were kept.
    pub fn is_counted(&self) -> bool {
        self.told.n > 0 && self.told_log.is_empty()
    }

    /// Every moment of the deal's history: each value's time, its creation and
    /// its deletion, in order.
    pub fn moments(&self) -> std::collections::BTreeSet<i64> {
        let mut out: std::collections::BTreeSet<i64> =
            self.props.values().map(|p| p.at_ms).collect();
        out.extend(self.past.values().flatten().map(|p| p.at_ms));
        out.extend(self.created_ms);
        out.extend(self.deleted_ms);
        out
    }

    /// The record as it stood at `at_ms`: each property's latest value then (a
    /// property first set later is absent), deleted if it was by then.
    pub fn as_of(&self, at_ms: i64) -> DealRecord {
        let mut props = Props::new();
        for (name, latest) in &self.props {
            let then = std::iter::once(latest)
                .chain(self.past.get(name).into_iter().flatten())
                .filter(|p| p.at_ms <= at_ms)
                .max_by(|a, b| order(a, b));
            if let Some(p) = then {
                props.insert(name.clone(), p.clone());
            }
        }
        let deleted = self.deleted_ms.is_some_and(|d| d <= at_ms)
            || (self.deleted && self.deleted_ms.is_none());
        DealRecord {
            props,
            deleted,
            deleted_ms: self.deleted_ms,
            created_ms: self.created_ms,
            ..DealRecord::default()
        }
    }
}

/// Values in time order; at the same millisecond, by their text.
fn order(a: &Prop, b: &Prop) -> std::cmp::Ordering {
    (a.at_ms, &a.value).cmp(&(b.at_ms, &b.value))
}

/// Takes one value into a property's timeline (in [`order`], each entry's value
/// other than the one before it). The same value as the one in effect at its time
/// says nothing new: its time joins that entry's `seen`. A different value goes in
/// at its time; when the entry in effect then was said again later, that value
/// stands again from the first such time after it. (Beyond the latest
/// [`SEEN_TIMES_MAX`] times of a value said again, the latest kept stands in.)
fn put(line: &mut Vec<Prop>, new: Prop) {
    let at = line.partition_point(|p| order(p, &new) != std::cmp::Ordering::Greater);
    if let Some(e) = at.checked_sub(1).and_then(|i| line.get_mut(i)) {
        if e.value == new.value {
            if new.at_ms != e.at_ms {
                add_seen(&mut e.seen, [new.at_ms]);
            }
            return;
        }
    }
    let mut insert = Vec::with_capacity(2);
    let again = at.checked_sub(1).and_then(|i| {
        let e = &mut line[i];
        let split = e.seen.partition_point(|s| *s <= new.at_ms);
        let later = e.seen.split_off(split);
        let (first, rest) = later.split_first()?;
        Some(Prop {
            value: e.value.clone(),
            at_ms: *first,
            seen: rest.to_vec(),
        })
    });
    insert.push(new);
    insert.extend(again);
    line.splice(at..at, insert);
    line.sort_by(order);
    // A value said again right after itself is the same entry, said again.
    let mut merged: Vec<Prop> = Vec::with_capacity(line.len());
    for p in line.drain(..) {
        match merged.last_mut() {
            Some(last) if last.value == p.value => {
                add_seen(&mut last.seen, std::iter::once(p.at_ms).chain(p.seen));
            }
            _ => merged.push(p),
        }
    }
    *line = merged;
}

/// Adds times to a value's `seen`, in order, once each, the latest
/// [`SEEN_TIMES_MAX`].
fn add_seen(seen: &mut Vec<i64>, times: impl IntoIterator<Item = i64>) {
    seen.extend(times);
    seen.sort_unstable();
    seen.dedup();
    if seen.len() > SEEN_TIMES_MAX {
        seen.drain(..seen.len() - SEEN_TIMES_MAX);
    }
}

// `DealFacts` is defined in `deal`, which does not import this module: what it
// reads off a `DealRecord` is here, beside the record.
impl DealFacts {
    /// `unmapped_owner` of a record whose owner is in property `name` and maps to
    /// `rep` (`None`: not mapped).
    pub fn unmapped_owner_of(
        record: &DealRecord,
        name: &str,
        rep: &Option<String>,
    ) -> Option<(String, i64)> {
        if rep.is_some() {
            return None;
        }
        let owner = record.prop(name)?;
        Some((owner.to_owned(), record.props.get(name)?.at_ms))
    }
}

/// A request taken into its deals' records: the events to make durable, in order,
/// each with a label for error messages (`[3]`, `deal hubspot:1:2`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Applied {
    pub events: Vec<(String, Value)>,
    /// The request items each event comes from, parallel to `events`: its own item,
    /// or every item of the request about its deal.
    pub origins: Vec<Vec<usize>>,
    /// Messages seen before (a CRM retry), which changed nothing.
    pub retried: usize,
    /// The deals whose records changed (new messages, or events left pending by an
    /// earlier request): the ones to claim.
    pub touched: Vec<DealKey>,
}

/// The deals a request names, in the order it first names them, then the deals it
/// asks to look at again.
pub fn deal_keys(parsed: &Parsed) -> Vec<DealKey> {
    let mut keys: Vec<DealKey> = Vec::new();
    for change in &parsed.changes {
        if let Change::Deal(c) = change {
            if !keys.contains(&c.key) {
                keys.push(c.key.clone());
            }
        }
    }
    for key in &parsed.reconsider {
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }
    keys
}

/// Takes a request into its deals' records (`records` holds each deal's record as
/// loaded; one missing starts empty): every change merged first, then each deal
/// once, after the events an earlier request left pending. The new events join the
/// record's `pending`; the caller makes them durable and then clears it.
///
/// A deal's events are its [`history`] rebuilt from every value the CRM sent, each
/// at its own time, less what was told already ([`retell`]): the same messages give
/// the same events in any order of delivery. (A deal first told before histories
/// were kept goes on through [`deal::reconcile`] at the request's latest time.)
///
/// `tracked`: the properties the adapter's facts read as the deal goes (owner,
/// amount, stage, dates, status...), whose every change is kept with its time; of
/// the others (a modification stamp that changes with every message, say) only the
/// latest is kept, so a record grows with the deal's changes, not its messages.
pub fn apply(
    parsed: &Parsed,
    records: &mut BTreeMap<DealKey, DealRecord>,
    facts: impl Fn(&DealRecord) -> DealFacts,
    tracked: &dyn Fn(&str) -> bool,
    currency: Currency,
) -> Result<Applied, WebhookError> {
    let mut out = Applied::default();
    // The latest time of the request's new messages about each deal.
    let mut new_at: BTreeMap<&DealKey, i64> = BTreeMap::new();
    for (change, item) in parsed.changes.iter().zip(&parsed.items) {
        match change {
            Change::Event(v) => {
                out.events.push((format!("[{item}]"), v.clone()));
                out.origins.push(vec![*item]);
            }
            Change::Deal(c) => {
                if records
                    .entry(c.key.clone())
                    .or_default()
                    .merge_tracked(c, tracked)
                {
                    let at = new_at.entry(&c.key).or_insert(c.at_ms);
                    *at = (*at).max(c.at_ms);
                } else {
                    out.retried += 1;
                }
            }
        }
    }
    for key in deal_keys(parsed) {
        let record = records.entry(key.clone()).or_default();
        let label = format!("deal {}", key.id());
        let items = parsed.items_of(&key);
        for text in &record.pending {
            let ev = serde_json::from_str(text).map_err(|e| {
                WebhookError::Internal(format!("{label}: a pending event is corrupt: {e}"))
            })?;
            out.events.push((label.clone(), ev));
            out.origins.push(items.clone());
        }
        let again = parsed.reconsider.contains(&key);
        let new = new_at.get(&key).copied();
        if new.is_none() && !again && record.pending.is_empty() {
            continue;
        }
        out.touched.push(key.clone());
        let events = if record.is_counted() {
            let Some(at_ms) = new.or_else(|| record.moments().last().copied()) else {
                continue;
            };
            let at = rfc3339_of_ms(at_ms).ok_or_else(|| {
                WebhookError::bad(&label, format!("time {at_ms} ms is out of range"))
            })?;
            let facts = facts(record);
            let deleted = record.deleted;
            let told = &mut record.told;
            deal::reconcile(&key, &facts, deleted, told, &at, currency, Ids::Counted)
        } else if new.is_none() && !again {
            continue;
        } else {
            let ideal = history(&key, record, &facts, currency).map_err(|at_ms| {
                WebhookError::bad(&label, format!("time {at_ms} ms is out of range"))
            })?;
            retell(&key, &mut record.told_log, ideal)
        };
        for ev in events {
            record
                .pending
                .push(serde_json::to_string(&ev).expect("JSON values serialise"));
            out.events.push((label.clone(), ev));
            out.origins.push(items.clone());
        }
    }
    Ok(out)
}

/// The events a deal's record calls for as if every message had come in time
/// order: at each moment of its history ([`DealRecord::moments`]), the facts as
/// they stood then, told at that time, from nothing told. What the deal is rather
/// than where it stands (its account, customer kind, product and region) is taken
/// as known now at every moment: a company name a CRM workflow fills in a second
/// after the deal was created is the account of its opening too. `Err`: a moment
/// out of range for a timestamp.
pub fn history(
    key: &DealKey,
    record: &DealRecord,
    facts: impl Fn(&DealRecord) -> DealFacts,
    currency: Currency,
) -> Result<Vec<Value>, i64> {
    let mut told = Told::default();
    let mut out = Vec::new();
    let now = facts(record);
    for at_ms in record.moments() {
        let at = rfc3339_of_ms(at_ms).ok_or(at_ms)?;
        let then = record.as_of(at_ms);
        let facts = DealFacts {
            account: now.account.clone(),
            customer_kind: now.customer_kind.clone(),
            product: now.product.clone(),
            region: now.region.clone(),
            ..facts(&then)
        };
        out.extend(deal::reconcile(
            key,
            &facts,
            then.deleted,
            &mut told,
            &at,
            currency,
            Ids::Content,
        ));
    }
    Ok(out)
}

/// What to tell so that the standing told events come to `ideal` (updating
/// `told`): every event of `ideal` not told yet, in order. A late message can
/// change history already told: before the new events, a void of every standing
/// told event that `ideal` no longer holds, and of every one that `ideal` places
/// after a new event other than an opening (a deal's facts stand in the log in the
/// order of its history, as they are folded; its view is built on its opening
/// wherever that stands), each stamped at its event's own time. An event voided
/// that way and wanted again is told under `<id>~<n>`, and stands for `<id>` from
/// then on: told once more, it is not told again.
pub fn retell(key: &DealKey, told: &mut Vec<ToldEvent>, ideal: Vec<Value>) -> Vec<Value> {
    use std::collections::{BTreeMap, BTreeSet};
    let id_of = |ev: &Value| ev["event_id"].as_str().unwrap_or_default().to_owned();
    let target_of = |ev: &Value| ev["voided_event_id"].as_str().map(str::to_owned);
    // Each event of `ideal` by its place in it.
    let place: BTreeMap<String, usize> = ideal
        .iter()
        .enumerate()
        .map(|(i, ev)| (id_of(ev), i))
        .collect();
    // What `ideal` voids itself (a reopened win, say).
    let undone: BTreeSet<String> = ideal.iter().filter_map(target_of).collect();
    let mut t = Telling::new(told);
    // Whether a fact of `ideal` is to be told now: it does not stand, and it was
    // never told, or it was and `ideal` does not void it.
    let to_tell = |t: &Telling, id: &String| {
        !t.standing.contains_key(id) && (!t.ever.contains(id) || !undone.contains(id))
    };
    // The first fact of `ideal` to tell now that the facts after it must follow.
    let first_new = ideal.iter().position(|ev| {
        target_of(ev).is_none() && ev["type"] != "deal_opened" && to_tell(&t, &id_of(ev))
    });
    let stale: Vec<(String, String)> = t
        .told
        .iter()
        .filter_map(|e| {
            let base = e.base.clone().unwrap_or_else(|| e.id.clone());
            (t.standing.get(&base) == Some(&e.id)).then_some((base, e.id.clone()))
        })
        .filter(|(base, _)| match (place.get(base), first_new) {
            (None, _) => true,
            (Some(at), Some(new)) => *at > new,
            (Some(_), None) => false,
        })
        .collect();
    let crm = key.crm.as_str();
    for (_, id) in stale {
        let at_ms = t.told.iter().find(|e| e.id == id).map_or(0, |e| e.at_ms);
        let at = rfc3339_of_ms(at_ms).unwrap_or_default();
        let reason =
            format!("corrected in {crm}: a message that came late changes the deal's history");
        let fields = serde_json::json!({"voided_event_id": id, "reason": reason});
        t.tell(
            deal::deal_event(key, Ids::Content, 0, &at, "event_voided", fields),
            None,
        );
    }
    for mut ev in ideal {
        let id = id_of(&ev);
        match target_of(&ev) {
            // A void: of what stands for its event, if anything does.
            Some(target) => {
                let Some(standing) = t.standing.get(&target).cloned() else {
                    continue;
                };
                ev["voided_event_id"] = Value::String(standing);
            }
            None if !to_tell(&t, &id) => continue,
            None => {}
        }
        let mut base = None;
        if t.ever.contains(&id) {
            let fresh = (2..)
                .map(|n| format!("{id}~{n}"))
                .find(|c| !t.ids.contains(c))
                .expect("some suffix is free");
            ev["event_id"] = Value::String(fresh);
            base = Some(id);
        }
        t.tell(ev, base);
    }
    t.out
}

/// [`retell`]'s running account of the told events.
struct Telling<'a> {
    told: &'a mut Vec<ToldEvent>,
    /// Every id told.
    ids: std::collections::BTreeSet<String>,
    /// Every history id told, under its own id or another.
    ever: std::collections::BTreeSet<String>,
    /// The told event standing for each history id (a fact no void names).
    standing: std::collections::BTreeMap<String, String>,
    out: Vec<Value>,
}

impl<'a> Telling<'a> {
    fn new(told: &'a mut Vec<ToldEvent>) -> Self {
        let voided: std::collections::BTreeSet<&String> =
            told.iter().filter_map(|e| e.voids.as_ref()).collect();
        let mut standing = std::collections::BTreeMap::new();
        let mut ever = std::collections::BTreeSet::new();
        for e in told.iter() {
            let base = e.base.clone().unwrap_or_else(|| e.id.clone());
            if e.voids.is_none() && !voided.contains(&e.id) {
                standing.insert(base.clone(), e.id.clone());
            }
            ever.insert(base);
        }
        Telling {
            ids: told.iter().map(|e| e.id.clone()).collect(),
            ever,
            standing,
            told,
            out: Vec::new(),
        }
    }

    /// Tells `ev`, standing for history id `base` when it is told under another.
    fn tell(&mut self, ev: Value, base: Option<String>) {
        let id = ev["event_id"].as_str().unwrap_or_default().to_owned();
        let voids = ev["voided_event_id"].as_str().map(str::to_owned);
        let history_id = base.clone().unwrap_or_else(|| id.clone());
        match &voids {
            Some(target) => self.standing.retain(|_, standing| standing != target),
            None => {
                self.standing.insert(history_id.clone(), id.clone());
            }
        }
        self.ids.insert(id.clone());
        self.ever.insert(history_id);
        self.told.push(ToldEvent {
            id,
            base,
            at_ms: ev["occurred_at"]
                .as_str()
                .and_then(ms_of_rfc3339)
                .unwrap_or(0),
            voids,
        });
        self.out.push(ev);
    }
}

/// What an adapter's mapping needs to know of the organisation.
#[derive(Clone, Copy, Debug)]
pub struct OrgContext {
    /// The reporting currency: a deal's when the CRM names none.
    pub currency: Currency,
    /// Dates are taken in this zone (HubSpot's ms timestamps, Salesforce's datetimes).
    pub timezone: Tz,
}

/// The mapping every CRM section of the config shares: `[webhooks.<crm>]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// CRM owner/user id → Pacer rep. An owner not listed maps to no rep, and the
    /// deal waits (its events are not emitted) until it is mapped.
    #[serde(default)]
    pub owners: BTreeMap<String, String>,
    /// The CRM property (field) holding the product line, if any.
    pub product_field: Option<String>,
    /// The CRM property holding the region, if any.
    pub region_field: Option<String>,
    /// The CRM property holding the account (customer), if any.
    pub account_field: Option<String>,
    /// The CRM property holding new vs existing customer, if any.
    pub customer_kind_field: Option<String>,
    /// Values of `customer_kind_field` that mean a new customer (others: existing).
    #[serde(default)]
    pub new_customer_values: Vec<String>,
    /// `new` or `existing`, when the CRM does not say (default `new`).
    pub default_customer_kind: Option<String>,
    /// Stage id → the stage name Pacer shows.
    #[serde(default)]
    pub stage_names: BTreeMap<String, String>,
    /// Stage id → probability (0–100).
    #[serde(default)]
    pub stage_probability: BTreeMap<String, u8>,
    /// Stage ids that mean the deal is won.
    #[serde(default)]
    pub won_stages: Vec<String>,
    /// Stage ids that mean the deal is lost.
    #[serde(default)]
    pub lost_stages: Vec<String>,
}

impl Mapping {
    /// `new` or `existing` for a CRM value of `customer_kind_field` (`None`: not sent).
    pub fn customer_kind(&self, value: Option<&str>) -> String {
        match value {
            Some(v)
                if self
                    .new_customer_values
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(v)) =>
            {
                "new".into()
            }
            Some(_) => "existing".into(),
            None => self
                .default_customer_kind
                .clone()
                .unwrap_or_else(|| "new".into()),
        }
    }

    /// `new` or `existing` for a deal, from its `customer_kind_field`.
    pub fn customer_kind_of(&self, record: &DealRecord) -> String {
        self.customer_kind(
            self.customer_kind_field
                .as_deref()
                .and_then(|f| record.prop(f)),
        )
    }

    /// What the configured `won_stages` / `lost_stages` say of a stage; `None`:
    /// neither (or no stage).
    pub fn stage_status(&self, stage: Option<&str>) -> Option<DealStatus> {
        let stage = stage?;
        let listed = |list: &[String]| list.iter().any(|s| s == stage);
        if listed(&self.won_stages) {
            Some(DealStatus::Won)
        } else if listed(&self.lost_stages) {
            Some(DealStatus::Lost)
        } else {
            None
        }
    }

    /// The configured probability of a stage, if any.
    pub fn stage_probability(&self, stage: Option<&str>) -> Option<u8> {
        stage.and_then(|s| self.stage_probability.get(s).copied())
    }

    /// The name Pacer shows for a stage id: `stage_names`, else the id itself.
    pub fn stage_name(&self, id: &str) -> String {
        self.stage_names
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_owned())
    }

    /// Checks the values a `[webhooks.<crm>]` section gave; errors name the key.
    pub fn check(&self, section: &str) -> Result<(), String> {
        if let Some(k) = &self.default_customer_kind {
            if k != "new" && k != "existing" {
                return Err(format!(
                    "{section}.default_customer_kind: {k:?} is not \"new\" or \"existing\""
                ));
            }
        }
        for (stage, p) in &self.stage_probability {
            if *p > 100 {
                return Err(format!(
                    "{section}.stage_probability.{stage}: {p} is over 100"
                ));
            }
        }
        for (owner, rep) in &self.owners {
            if rep.trim().is_empty() {
                return Err(format!("{section}.owners.{owner}: the rep is empty"));
            }
        }
        Ok(())
    }
}

/// The media type of a `Content-Type` value, lowercased, without parameters.
pub fn mime_of(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// `YYYY-MM-DD` of a time in milliseconds, in the organisation's zone.
pub fn date_of_ms(ms: i64, tz: Tz) -> Option<String> {
    let utc = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)?;
    Some(utc.with_timezone(&tz).format("%Y-%m-%d").to_string())
}

/// RFC 3339 (UTC, milliseconds) of a time in milliseconds: an event's `occurred_at`.
pub fn rfc3339_of_ms(ms: i64) -> Option<String> {
    let utc = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)?;
    Some(utc.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// Milliseconds of an RFC 3339 time (`2026-11-03T10:00:00Z`, `2026-11-03T10:00:00.000+01:00`).
pub fn ms_of_rfc3339(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Splits a `[webhooks.<crm>]` table into the CRM's own keys (`own_keys`: secrets,
/// credentials, ids) and the shared [`Mapping`], which refuses any other key. Errors
/// name the key as `<section>.<key>`.
pub fn split_section(
    section: &str,
    value: toml::Value,
    own_keys: &[&str],
) -> Result<(toml::Table, Mapping), String> {
    let toml::Value::Table(table) = value else {
        return Err(format!("{section}: must be a table"));
    };
    let (own, rest): (toml::Table, toml::Table) = table
        .into_iter()
        .partition(|(k, _)| own_keys.contains(&k.as_str()));
    let mapping = Mapping::deserialize(toml::Value::Table(rest))
        .map_err(|e| format!("{section}: {}", e.to_string().trim_end()))?;
    mapping.check(section)?;
    Ok((own, mapping))
}

#[cfg(test)]
pub(crate) mod history_tests;
