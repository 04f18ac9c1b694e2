//! CRM webhooks: turning what HubSpot, Pipedrive, Salesforce and Pacer's own JSON
//! say into Pacer events, with no I/O of its own (the HTTP side is [`crate::http`]).
//!
//! A CRM says things about a deal a piece at a time: HubSpot one property per
//! message, Pipedrive and Salesforce the whole record each time, never in a
//! guaranteed order, and again on every retry. Each adapter ([`hubspot`],
//! [`pipedrive`], [`salesforce`], [`native`]) parses its payload into [`Change`]s:
//! either a finished Pacer event, or a [`DealChange`] (properties of one deal, with the
//! time the CRM gives them). The deal's properties are kept in a [`DealRecord`] (the
//! mirror, see [`mirror`]): a property is only replaced by a newer one, so a late or
//! repeated message changes nothing. The adapter reads its [`DealFacts`] off the
//! mirror through its configured mapping, and one function, [`deal::reconcile`],
//! compares them with what Pacer has already been told ([`Told`]) and emits the
//! events that close the gap: `deal_opened` once enough is known, `deal_stage_changed`,
//! `deal_won`, `deal_lost`, and `event_voided` when a won or lost deal is reopened.
//!
//! Event ids are `<crm>:<tenant>:<deal>:<n>:<type>`, `n` counting the events told
//! about that deal: a retry that recomputes from the same record makes the same ids,
//! and the log drops them as duplicates.

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
pub use deal::{amount_text, plain_decimal, DealFacts, DealStatus, OpenTold, Told, WonTold};

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
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
}

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
    pub props: Props,
    pub deleted: bool,
    /// Dedupe keys of the latest messages, oldest first (at most [`SEEN_MAX`]).
    pub seen: VecDeque<String>,
    pub told: Told,
    /// Events claimed by `told` but not yet known to be durable (JSON text): whoever
    /// loads the record makes them durable (same ids) before anything else.
    #[serde(default)]
    pub pending: Vec<String>,
}

impl DealRecord {
    /// Takes in one message about the deal; `false` when it was seen before (a
    /// retry), and nothing changed. A property is replaced only by a value at least
    /// as new as the one held, so out-of-order delivery ends in the newest values.
    pub fn merge(&mut self, change: &DealChange) -> bool {
        if self.seen.iter().any(|k| k == &change.dedupe) {
            return false;
        }
        if self.seen.len() >= SEEN_MAX {
            self.seen.pop_front();
        }
        self.seen.push_back(change.dedupe.clone());
        for (name, value) in &change.props {
            let newer = self.props.get(name).is_none_or(|p| p.at_ms <= change.at_ms);
            if newer {
                self.props.insert(
                    name.clone(),
                    Prop {
                        value: value.clone(),
                        at_ms: change.at_ms,
                    },
                );
            }
        }
        if change.deleted {
            self.deleted = true;
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

/// The deals a request names, in the order it first names them.
pub fn deal_keys(parsed: &Parsed) -> Vec<DealKey> {
    let mut keys: Vec<DealKey> = Vec::new();
    for change in &parsed.changes {
        if let Change::Deal(c) = change {
            if !keys.contains(&c.key) {
                keys.push(c.key.clone());
            }
        }
    }
    keys
}

/// Takes a request into its deals' records (`records` holds each deal's record as
/// loaded; one missing starts empty): every change merged first, then each deal once
/// through [`deal::reconcile`] (a CRM's batch order is not the order its properties
/// were set in), after the events an earlier request left pending. The new events
/// join the record's `pending`; the caller makes them durable and then clears it.
pub fn apply(
    parsed: &Parsed,
    records: &mut BTreeMap<DealKey, DealRecord>,
    facts: impl Fn(&DealRecord) -> DealFacts,
    currency: Currency,
) -> Result<Applied, WebhookError> {
    let mut out = Applied::default();
    // The latest time of the request's new messages about each deal: its events' time.
    let mut new_at: BTreeMap<&DealKey, i64> = BTreeMap::new();
    for (change, item) in parsed.changes.iter().zip(&parsed.items) {
        match change {
            Change::Event(v) => {
                out.events.push((format!("[{item}]"), v.clone()));
                out.origins.push(vec![*item]);
            }
            Change::Deal(c) => {
                if records.entry(c.key.clone()).or_default().merge(c) {
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
        let new = new_at.get(&key).copied();
        if new.is_none() && record.pending.is_empty() {
            continue;
        }
        out.touched.push(key.clone());
        let Some(at_ms) = new else {
            continue;
        };
        let at = rfc3339_of_ms(at_ms)
            .ok_or_else(|| WebhookError::bad(&label, format!("time {at_ms} ms is out of range")))?;
        let facts = facts(record);
        let deleted = record.deleted;
        for ev in deal::reconcile(&key, &facts, deleted, &mut record.told, &at, currency) {
            record
                .pending
                .push(serde_json::to_string(&ev).expect("JSON values serialise"));
            out.events.push((label.clone(), ev));
            out.origins.push(items.clone());
        }
    }
    Ok(out)
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
