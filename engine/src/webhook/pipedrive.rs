//! Pipedrive webhooks: reads the JSON Pipedrive posts for deals and activities, in
//! both webhook versions (v2, the default now: `data` / `previous` / `meta.entity`;
//! v1, legacy: `current` / `previous` / `meta.object`), into [`Change`]s. A deal
//! message becomes one [`DealChange`] carrying every scalar field of the deal (custom
//! fields by their 40-character keys), stamped with the message's time, so the mirror
//! keeps the newest value of each; [`facts`] reads a mirrored deal through
//! `[webhooks.pipedrive]`. An activity marked done becomes one `activity_logged`.
//! Pipedrive signs nothing: the endpoint checks the HTTP Basic credentials set on the
//! webhook ([`super::auth::verify_basic`] with [`PipedriveConfig::user`] and
//! [`PipedriveConfig::password`]).
//!
//! **The account** of a deal is, first found: `account_field` when configured; the
//! name of the deal's organisation; `pipedrive-org-<org_id>`; `unassigned`. The name
//! is what the message gives for the `org_id` it carries: v1's `current.org_name`, or
//! the `name` of an expanded `org_id` object (`{"name": "Globex", "value": 8}`). The
//! mirror keeps it with the organisation id it names ([`ORG_NAME_OF`]), so a later
//! message without a name (every v2 message: v2's `data.org_id` is the bare id) keeps
//! it while the deal stays with that organisation, and a deal moved to another
//! organisation never shows the old one's name. An activity's account is likewise
//! its organisation's name (v1 `current.org_name`), else `pipedrive-org-<org_id>`.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::{
    Change, Crm, DealChange, DealFacts, DealKey, DealRecord, DealStatus, ItemError, Mapping,
    OrgContext, Parsed, WebhookError,
};

const SECTION: &str = "webhooks.pipedrive";
const OWN_KEYS: &[&str] = &["user", "password", "activity_kinds", "lost_reason_field"];
/// The longest id (company, deal, activity, organisation) taken from a payload.
const ID_MAX: usize = 64;
const TIME_RULE: &str = "RFC 3339, or seconds since the epoch";
const ID_RULE: &str = "letters, digits, - or _, at most 64 bytes";
/// The mirrored property recording which `org_id` the mirrored `org_name` belongs to
/// (a name Pacer keeps, not a Pipedrive field: Pipedrive's keys have no dot).
pub const ORG_NAME_OF: &str = "org_name.org_id";

/// `[webhooks.pipedrive]`.
#[derive(Clone, PartialEq, Eq)]
pub struct PipedriveConfig {
    /// The HTTP Basic user name set on the Pipedrive webhook.
    pub user: String,
    /// The HTTP Basic password set on the Pipedrive webhook.
    pub password: String,
    /// Pipedrive activity type key (lowercase) → Pacer activity kind; a type not
    /// listed is its own kind, lowercased.
    pub activity_kinds: BTreeMap<String, String>,
    /// The deal field holding the lost reason (default `lost_reason`; a custom
    /// field's key if the account keeps it there).
    pub lost_reason_field: String,
    /// Owners by Pipedrive user id; stage names and probabilities by stage id.
    pub mapping: Mapping,
}

/// Shows everything but the password.
impl std::fmt::Debug for PipedriveConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipedriveConfig")
            .field("user", &self.user)
            .field("password", &"..")
            .field("activity_kinds", &self.activity_kinds)
            .field("lost_reason_field", &self.lost_reason_field)
            .field("mapping", &self.mapping)
            .finish()
    }
}

impl PipedriveConfig {
    /// Reads `[webhooks.pipedrive]`; errors name the key (`webhooks.pipedrive.user: ...`).
    /// Keys other than these and the [`Mapping`]'s are refused.
    pub fn from_toml(value: toml::Value) -> Result<Self, String> {
        let (mut own, mapping) = super::split_section(SECTION, value, OWN_KEYS)?;
        let mut credential = |key: &str| match own_key::<String>(&mut own, key)? {
            Some(v) if !v.trim().is_empty() => Ok(v),
            Some(_) => Err(format!("{SECTION}.{key}: is empty")),
            None => Err(format!(
                "{SECTION}.{key}: missing; set the HTTP Basic {key} of the Pipedrive webhook"
            )),
        };
        let (user, password) = (credential("user")?, credential("password")?);
        let mut activity_kinds = BTreeMap::new();
        let kinds: Option<BTreeMap<String, String>> = own_key(&mut own, "activity_kinds")?;
        for (ty, kind) in kinds.unwrap_or_default() {
            let kind = kind.trim().to_owned();
            if kind.is_empty() {
                return Err(format!("{SECTION}.activity_kinds.{ty}: the kind is empty"));
            }
            activity_kinds.insert(ty.trim().to_lowercase(), kind);
        }
        let lost_reason_field = own_key::<String>(&mut own, "lost_reason_field")?
            .unwrap_or_else(|| "lost_reason".into());
        if lost_reason_field.trim().is_empty() {
            return Err(format!("{SECTION}.lost_reason_field: is empty"));
        }
        Ok(PipedriveConfig {
            user,
            password,
            activity_kinds,
            lost_reason_field,
            mapping,
        })
    }
}

/// Takes `key` out of the section's own keys, typed; errors name the key.
fn own_key<T: serde::de::DeserializeOwned>(
    own: &mut toml::Table,
    key: &str,
) -> Result<Option<T>, String> {
    own.remove(key)
        .map(|v| {
            T::deserialize(v).map_err(|e| format!("{SECTION}.{key}: {}", e.to_string().trim_end()))
        })
        .transpose()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Create,
    Change,
    Delete,
}

/// What the envelope of either version says, in one shape.
struct Msg<'a> {
    action: Action,
    entity: String,
    tenant: String,
    at_ms: i64,
    dedupe: String,
    /// `meta.entity_id` (v2) or `meta.id` (v1).
    entity_id: Option<String>,
    /// `data` (v2) or `current` (v1).
    data_path: &'static str,
    data: Option<&'a Map<String, Value>>,
    previous: Option<&'a Map<String, Value>>,
}

/// Parses one Pipedrive webhook body (v1 or v2) into changes: a deal's fields for the
/// mirror, or an `activity_logged` for an activity marked done. Other objects, and
/// activities not newly done or of an unmapped owner, are counted in `ignored`.
pub fn parse(
    cfg: &PipedriveConfig,
    body: &[u8],
    _org: &OrgContext,
) -> Result<Parsed, WebhookError> {
    let root: Value = match serde_json::from_slice(body) {
        Ok(root) => root,
        Err(e) => return bad("body", format!("not JSON: {e}")),
    };
    let Value::Object(root) = &root else {
        return bad(
            "body",
            format!("expected one JSON object, got {}", shown(&root)),
        );
    };
    // The body is one item: what is wrong inside it refuses the item, which the
    // dead-letter store keeps whole.
    let mut parsed = Parsed::default();
    if let Err(e) = item(cfg, root, &mut parsed) {
        parsed.refuse(0, e)?;
    }
    Ok(parsed)
}

/// The one item of a body, into `parsed`.
fn item(
    cfg: &PipedriveConfig,
    root: &Map<String, Value>,
    parsed: &mut Parsed,
) -> Result<(), WebhookError> {
    let msg = envelope(root)?;
    match msg.entity.as_str() {
        "deal" => parsed.push(0, Change::Deal(deal_change(&msg)?)),
        "activity" => match activity(cfg, &msg)? {
            Done::Event(event) => parsed.push(0, Change::Event(event)),
            Done::Not => parsed.ignored += 1,
            Done::Unmapped { field, owner } => parsed.invalid.push(ItemError {
                index: 0,
                field,
                reason: format!(
                    "owner {owner:?} is not mapped to a rep; add it to [webhooks.pipedrive] owners and retry the dead letter"
                ),
                kind: "owner_unmapped".into(),
            }),
        },
        _ => parsed.ignored += 1,
    }
    Ok(())
}

/// What an activity message comes to.
enum Done {
    /// Newly done: its `activity_logged`.
    Event(Value),
    /// Not newly done (or deleted): nothing to log.
    Not,
    /// Done by an owner mapped to no rep.
    Unmapped { field: String, owner: String },
}

fn envelope(root: &Map<String, Value>) -> Result<Msg<'_>, WebhookError> {
    let Some(meta) = object(root, "meta")? else {
        return bad("meta", "missing");
    };
    let v1 = !meta.contains_key("entity") && meta.contains_key("object");
    let entity = text(meta, if v1 { "object" } else { "entity" }, "meta")?.to_lowercase();
    let action_text = text(meta, "action", "meta")?;
    let action = match action_text {
        "create" | "added" => Action::Create,
        "change" | "updated" | "merged" => Action::Change,
        "delete" | "deleted" => Action::Delete,
        other => {
            let also = "v1: added, updated, merged, deleted";
            return bad(
                "meta.action",
                format!("{other:?} is not create, change or delete ({also})"),
            );
        }
    };
    let tenant = need_id(meta, "company_id", "meta")?;
    let (at_ms, time_key) = meta_time(meta, v1)?;
    let entity_id = meta
        .get(if v1 { "id" } else { "entity_id" })
        .and_then(id_of);
    let dedupe = match meta.get("id").filter(|_| !v1).and_then(id_of) {
        Some(id) => format!("v2:{id}"),
        None => {
            let id = entity_id.as_deref().unwrap_or("-");
            format!(
                "v{}:{entity}:{id}:{time_key}:{action_text}",
                if v1 { 1 } else { 2 }
            )
        }
    };
    let data_path = if v1 { "current" } else { "data" };
    Ok(Msg {
        action,
        entity,
        tenant,
        at_ms,
        dedupe,
        entity_id,
        data_path,
        data: object(root, data_path)?,
        previous: object(root, "previous")?,
    })
}

/// The message's time in ms, and its text as sent (for the dedupe key): v1's
/// `timestamp_micro` when given, else `timestamp` (RFC 3339 text, or seconds or ms
/// since the epoch).
fn meta_time(meta: &Map<String, Value>, v1: bool) -> Result<(i64, String), WebhookError> {
    if let (true, Some(Value::Number(n))) = (v1, meta.get("timestamp_micro")) {
        let ms = n.as_i64().map(|us| us.div_euclid(1000));
        if let Some(ms) = ms.filter(|ms| valid_ms(*ms)) {
            return Ok((ms, n.to_string()));
        }
    }
    let Some(v) = meta.get("timestamp") else {
        return bad("meta.timestamp", "missing");
    };
    let ms = match v {
        Value::String(s) => {
            super::ms_of_rfc3339(s).or_else(|| s.trim().parse().ok().and_then(epoch_ms))
        }
        Value::Number(n) => n.as_i64().and_then(epoch_ms),
        _ => None,
    };
    match ms.filter(|ms| valid_ms(*ms)) {
        Some(ms) => Ok((ms, v.to_string())),
        None => bad(
            "meta.timestamp",
            format!("{} is not a time ({TIME_RULE})", shown(v)),
        ),
    }
}

/// Seconds (below 10^11) or milliseconds since the epoch → milliseconds.
fn epoch_ms(n: i64) -> Option<i64> {
    if n.unsigned_abs() < 100_000_000_000 {
        n.checked_mul(1000)
    } else {
        Some(n)
    }
}

fn valid_ms(ms: i64) -> bool {
    ms >= 0 && super::rfc3339_of_ms(ms).is_some()
}

fn deal_change(msg: &Msg) -> Result<DealChange, WebhookError> {
    let deal = object_id(msg)?;
    let mut props = Vec::new();
    let mut deleted = msg.action == Action::Delete;
    if let Some(data) = msg.data {
        for (name, v) in data {
            if name == "custom_fields" {
                for (key, field) in v.as_object().into_iter().flatten() {
                    let inner = field
                        .as_object()
                        .and_then(|o| o.get("value").or_else(|| o.get("id")));
                    if let Some(text) = scalar(inner.unwrap_or(field)) {
                        props.push((key.clone(), text));
                    }
                }
            } else if let Some(text) = scalar(v) {
                props.push((name.clone(), text));
            }
        }
        deleted |= data.get("status").and_then(Value::as_str) == Some("deleted")
            || data.get("is_deleted").and_then(Value::as_bool) == Some(true)
            || data.get("deleted").and_then(Value::as_bool) == Some(true);
        // The organisation's name, recorded with the id it is the name of.
        if let (Some(org), Some(name)) = (data.get("org_id").and_then(id_of), org_name(data)) {
            props.retain(|(n, _)| n != "org_name");
            props.push(("org_name".into(), Some(name)));
            props.push((ORG_NAME_OF.into(), Some(org)));
        }
    }
    Ok(DealChange {
        key: deal_key(&msg.tenant, deal),
        at_ms: msg.at_ms,
        props,
        deleted,
        dedupe: msg.dedupe.clone(),
    })
}

/// The name of the organisation a deal or activity is with, as a v1 message gives
/// it: `org_name`, else the `name` of an expanded `org_id` object. v2 gives neither.
fn org_name(data: &Map<String, Value>) -> Option<String> {
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    };
    text(data.get("org_name")).or_else(|| text(data.get("org_id").and_then(|o| o.get("name"))))
}

/// A field as a property value: text of a scalar (`None` for null), the `id` (or
/// v1's `value`) of an object such as `{"id": 9, "name": ..}`; arrays are skipped.
fn scalar(v: &Value) -> Option<Option<String>> {
    match v {
        Value::Null => Some(None),
        Value::Bool(b) => Some(Some(b.to_string())),
        Value::Number(n) => Some(Some(n.to_string())),
        Value::String(s) => Some(Some(s.clone())),
        Value::Object(o) => match o.get("id").or_else(|| o.get("value")) {
            Some(Value::Number(n)) => Some(Some(n.to_string())),
            Some(Value::String(s)) => Some(Some(s.clone())),
            _ => None,
        },
        Value::Array(_) => None,
    }
}

/// The `activity_logged` of an activity marked done by this message.
fn activity(cfg: &PipedriveConfig, msg: &Msg) -> Result<Done, WebhookError> {
    let Some(data) = msg.data.filter(|_| msg.action != Action::Delete) else {
        return Ok(Done::Not);
    };
    let was_undone = msg
        .previous
        .and_then(|p| p.get("done"))
        .is_some_and(|d| d.as_bool() != Some(true));
    if data.get("done").and_then(Value::as_bool) != Some(true)
        || (msg.action == Action::Change && !was_undone)
    {
        return Ok(Done::Not);
    }
    let (owner, key) = match opt_id(data, "owner_id", msg.data_path)? {
        Some(o) => (Some(o), "owner_id"),
        None => (opt_id(data, "user_id", msg.data_path)?, "user_id"),
    };
    let Some(owner) = owner else {
        return Ok(Done::Not);
    };
    let Some(rep) = cfg.mapping.owners.get(&owner) else {
        let field = format!("{}.{key}", msg.data_path);
        return Ok(Done::Unmapped { field, owner });
    };
    let id = object_id(msg)?;
    let ty = text(data, "type", msg.data_path)?.to_lowercase();
    let kind = cfg.activity_kinds.get(&ty).cloned().unwrap_or(ty);
    let Some(occurred_at) = super::rfc3339_of_ms(msg.at_ms) else {
        return bad("meta.timestamp", format!("{} is out of range", msg.at_ms));
    };
    let mut event = json!({
        "event_id": format!("pipedrive:{}:activity:{id}:done", msg.tenant),
        "source": Crm::Pipedrive.as_str(),
        "occurred_at": occurred_at,
        "type": "activity_logged",
        "rep": rep,
        "kind": kind,
    });
    if let Some(deal) = opt_id(data, "deal_id", msg.data_path)? {
        event["deal"] = json!(deal_key(&msg.tenant, deal).id());
    }
    if let Some(org) = opt_id(data, "org_id", msg.data_path)? {
        let account = org_name(data).unwrap_or_else(|| format!("pipedrive-org-{org}"));
        event["account"] = json!(account);
    }
    Ok(Done::Event(event))
}

fn bad<T>(field: impl Into<String>, reason: impl Into<String>) -> Result<T, WebhookError> {
    Err(WebhookError::bad(field, reason))
}

fn deal_key(tenant: &str, deal: String) -> DealKey {
    DealKey {
        crm: Crm::Pipedrive,
        tenant: tenant.to_owned(),
        deal,
    }
}

/// `root[key]` when an object; `None` when absent or null.
fn object<'a>(
    root: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, WebhookError> {
    match root.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(v) => bad(key, format!("expected an object, got {}", shown(v))),
    }
}

/// `map[key]`: text, not blank; trimmed.
fn text<'a>(map: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a str, WebhookError> {
    match map.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim()),
        None | Some(Value::Null) => bad(format!("{path}.{key}"), "missing"),
        Some(v) => bad(format!("{path}.{key}"), format!("{} is not text", shown(v))),
    }
}

/// The id of the deal or activity: `data.id`, else the one meta names, else
/// `previous.id`.
fn object_id(msg: &Msg) -> Result<String, WebhookError> {
    let in_data = match msg.data {
        Some(d) => opt_id(d, "id", msg.data_path)?,
        None => None,
    };
    let in_previous = || msg.previous.and_then(|p| p.get("id")).and_then(id_of);
    match in_data
        .or_else(|| msg.entity_id.clone())
        .or_else(in_previous)
    {
        Some(id) => Ok(id),
        None => bad(
            format!("{}.id", msg.data_path),
            "missing, and meta names no id",
        ),
    }
}

/// An id: a string or non-negative integer (or an object's `id`/`value`) of ASCII
/// letters, digits, `-` and `_`, at most [`ID_MAX`] bytes (ids go into event ids).
fn id_of(v: &Value) -> Option<String> {
    let text = match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.as_u64()?.to_string(),
        Value::Object(o) => match o.get("id").or_else(|| o.get("value"))? {
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.as_u64()?.to_string(),
            _ => return None,
        },
        _ => return None,
    };
    let ok = !text.is_empty()
        && text.len() <= ID_MAX
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(text)
}

fn opt_id(map: &Map<String, Value>, key: &str, path: &str) -> Result<Option<String>, WebhookError> {
    let Some(v) = map.get(key).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    match id_of(v) {
        Some(id) => Ok(Some(id)),
        None => bad(
            format!("{path}.{key}"),
            format!("{} is not an id ({ID_RULE})", shown(v)),
        ),
    }
}

fn need_id(map: &Map<String, Value>, key: &str, path: &str) -> Result<String, WebhookError> {
    opt_id(map, key, path)?.map_or_else(|| bad(format!("{path}.{key}"), "missing"), Ok)
}

/// A value for an error message, cut to 80 characters.
fn shown(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// What a mirrored Pipedrive deal says, in Pacer's terms (see the module docs; the
/// account: `account_field`, the organisation's name, `pipedrive-org-<org_id>`,
/// `unassigned`).
/// The fields [`facts`] reads as the deal goes, whose every change the mirror keeps
/// with its time (what a deal is — account, kind, product, region — is read as it
/// is now; `update_time` and the like, which change with every message, are not).
pub fn tracked(cfg: &PipedriveConfig) -> impl Fn(&str) -> bool + '_ {
    move |name| {
        matches!(
            name,
            "owner_id"
                | "user_id"
                | "stage_id"
                | "status"
                | "value"
                | "currency"
                | "expected_close_date"
                | "probability"
                | "won_time"
        ) || name == cfg.lost_reason_field
    }
}

pub fn facts(cfg: &PipedriveConfig, record: &DealRecord, org: &OrgContext) -> DealFacts {
    let m = &cfg.mapping;
    let owner = record.prop("owner_id").or_else(|| record.prop("user_id"));
    let stage_id = record.prop("stage_id");
    let stage_name = |s: &str| {
        m.stage_names
            .get(s)
            .cloned()
            .unwrap_or(format!("stage {s}"))
    };
    let status = match record.prop("status") {
        Some("won") => DealStatus::Won,
        Some("lost") => DealStatus::Lost,
        _ => m.stage_status(stage_id).unwrap_or(DealStatus::Open),
    };
    let rep = owner.and_then(|o| m.owners.get(o)).cloned();
    let owner_field = if record.prop("owner_id").is_some() {
        "owner_id"
    } else {
        "user_id"
    };
    DealFacts {
        unmapped_owner: DealFacts::unmapped_owner_of(record, owner_field, &rep),
        rep,
        account: Some(account_of(m, record)),
        customer_kind: Some(m.customer_kind_of(record)),
        product: record.field(&m.product_field),
        region: record.field(&m.region_field),
        amount: record
            .prop("value")
            .filter(|v| is_decimal(v))
            .map(str::to_owned),
        currency: record.prop("currency").map(str::to_ascii_uppercase),
        expected_close: record.prop("expected_close_date").and_then(date_part),
        stage: stage_id.map(stage_name),
        probability: m
            .stage_probability(stage_id)
            .or_else(|| record.prop("probability").and_then(percent)),
        status,
        closed_on: record
            .prop("won_time")
            .and_then(ms_of_time)
            .and_then(|ms| super::date_of_ms(ms, org.timezone)),
        lost_reason: record.prop(&cfg.lost_reason_field).map(str::to_owned),
    }
}

/// The deal's account, first found: `account_field`, the name of its organisation
/// (the mirrored `org_name`, when it is the name of the deal's `org_id`),
/// `pipedrive-org-<org_id>`, `unassigned`.
fn account_of(m: &Mapping, record: &DealRecord) -> String {
    let org = record.prop("org_id");
    // A name recorded before [`ORG_NAME_OF`] was kept is taken as it is.
    let named = record.prop(ORG_NAME_OF).is_none_or(|of| Some(of) == org);
    record
        .field(&m.account_field)
        .or_else(|| {
            record
                .prop("org_name")
                .filter(|_| named && org.is_some())
                .map(str::to_owned)
        })
        .or_else(|| org.map(|o| format!("pipedrive-org-{o}")))
        .unwrap_or_else(|| "unassigned".into())
}

/// `YYYY-MM-DD` at the start of a date or time text.
fn date_part(text: &str) -> Option<String> {
    let day = text.get(..10)?;
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    Some(day.to_owned())
}

/// A Pipedrive time in ms: v2's RFC 3339, or v1's `YYYY-MM-DD HH:MM:SS` (UTC).
fn ms_of_time(text: &str) -> Option<i64> {
    super::ms_of_rfc3339(text).or_else(|| {
        chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
            .ok()
            .map(|t| t.and_utc().timestamp_millis())
    })
}

/// 0–100 from `40` or `40.00`.
fn percent(text: &str) -> Option<u8> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if !frac.bytes().all(|b| b == b'0') || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    int.parse::<u8>().ok().filter(|p| *p <= 100)
}

/// A plain decimal (`12500`, `-3.50`), as the wire's amounts are.
fn is_decimal(text: &str) -> bool {
    let t = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = t.split_once('.').unwrap_or((t, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(int) && digits(frac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::apply;
    use crate::webhook::history_tests::without_id;
    use pacer_projections::money::Currency;
    use proptest::prelude::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!(
                "../../../tests/fixtures/webhooks/pipedrive/",
                $name,
                ".json"
            ))
        };
    }
    const V2_CREATE: &str = fixture!("v2_deal_create");
    const V2_WON: &str = fixture!("v2_deal_won");
    const V2_REOPENED: &str = fixture!("v2_deal_reopened");
    const V1_ADDED: &str = fixture!("v1_deal_added");
    const V1_LOST: &str = fixture!("v1_deal_lost");
    const V2_ACTIVITY: &str = fixture!("v2_activity_done");
    const CONFIG: &str = r#"
        user = "pacer"
        password = "s3cret"
        lost_reason_field = "lost_reason"
        product_field = "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2"
        owners = { 9 = "ana" }
        activity_kinds = { demo_call = "demo", Call = "call" }
        stage_names = { 2 = "qualified" }
        stage_probability = { 2 = 40 }
    "#;

    fn org() -> OrgContext {
        OrgContext {
            currency: Currency::from_code("EUR").unwrap(),
            timezone: chrono_tz::Europe::Berlin,
        }
    }

    fn config(text: &str) -> Result<PipedriveConfig, String> {
        PipedriveConfig::from_toml(toml::from_str(text).unwrap())
    }

    fn cfg() -> PipedriveConfig {
        config(CONFIG).unwrap()
    }

    /// Runs bodies through parse, the mirror, facts and reconcile, as the endpoint
    /// does; returns the events, each checked to decode.
    fn run(records: &mut BTreeMap<DealKey, DealRecord>, bodies: &[&str]) -> Vec<Value> {
        let (cfg, org) = (cfg(), org());
        let mut events = Vec::new();
        // As the endpoint does it, one request at a time.
        for body in bodies {
            let parsed = parse(&cfg, body.as_bytes(), &org).unwrap();
            let applied = apply(
                &parsed,
                records,
                |r| facts(&cfg, r, &org),
                &tracked(&cfg),
                org.currency,
            );
            events.extend(applied.unwrap().events.into_iter().map(|(_, v)| v));
            // Made durable: nothing stays pending.
            records.values_mut().for_each(|r| r.pending.clear());
        }
        for ev in &events {
            crate::wire::decode_value(ev, &crate::wire::Limits::default())
                .unwrap_or_else(|e| panic!("{ev}: {e}"));
        }
        events
    }

    fn types(events: &[Value]) -> Vec<&str> {
        events.iter().map(|e| e["type"].as_str().unwrap()).collect()
    }

    /// Asserts the event has these fields (and maybe others).
    fn has(event: &Value, fields: Value) {
        for (k, v) in fields.as_object().unwrap() {
            assert_eq!(&event[k], v, "{k} of {event}");
        }
    }

    fn edited(body: &str, edit: impl FnOnce(&mut Value)) -> String {
        let mut v: Value = serde_json::from_str(body).unwrap();
        edit(&mut v);
        v.to_string()
    }

    #[test]
    fn v2_deal_created_then_won() {
        let mut records = BTreeMap::new();
        let events = run(&mut records, &[V2_CREATE, V2_WON]);
        let opened = json!({
            "source": "pipedrive",
            "occurred_at": "2026-11-03T10:00:00.000Z", "type": "deal_opened",
            "deal": "pipedrive:4:17", "rep": "ana", "account": "pipedrive-org-5",
            "customer_kind": "new", "amount": "12500", "currency": "EUR",
            "expected_close": "2026-11-20", "product": "analytics", "probability": 40,
        });
        // Won at 23:30 UTC: the 4th in Berlin.
        let won = json!({
            "source": "pipedrive",
            "occurred_at": "2026-11-03T23:30:01.000Z", "type": "deal_won",
            "deal": "pipedrive:4:17", "rep": "ana", "account": "pipedrive-org-5",
            "customer_kind": "new", "amount": "12500", "currency": "EUR",
            "closed_on": "2026-11-04", "product": "analytics",
        });
        assert_eq!(
            events.iter().map(without_id).collect::<Vec<_>>(),
            [opened, won]
        );
        let record = records.values().next().unwrap();
        assert_eq!(
            record.prop("dcf558aac1ae4e8c4f849ba5e668430d8df9be12"),
            Some("500")
        );
        assert_eq!(record.seen[0], "v2:5c3e1a0e-2f4b-4b7e-9d55-0c1f7e2a9b01");
    }

    #[test]
    fn v1_deal_added_then_lost_with_reason() {
        let events = run(&mut BTreeMap::new(), &[V1_ADDED, V1_LOST]);
        assert_eq!(types(&events), ["deal_opened", "deal_lost"]);
        has(
            &events[0],
            json!({"rep": "ana", "amount": "8000.5", "currency": "USD",
            "account": "Globex", "product": "platform", "probability": 30,
            "occurred_at": "2026-11-03T10:00:00.123Z", "expected_close": "2026-12-15"}),
        );
        has(
            &events[1],
            json!({"deal": "pipedrive:7:42", "reason": "budget"}),
        );
    }

    #[test]
    fn retries_change_nothing_and_a_late_creation_only_opens() {
        let mut records = BTreeMap::new();
        assert_eq!(run(&mut records, &[V2_CREATE, V2_WON, V1_ADDED]).len(), 3);
        let v2_retry = edited(V2_WON, |v| v["meta"]["attempt"] = json!(2));
        let v1_retry = edited(V1_ADDED, |v| v["retry"] = json!(1));
        assert!(run(&mut records, &[&v2_retry, &v1_retry]).is_empty());
        let Change::Deal(c) = &parse(&cfg(), v2_retry.as_bytes(), &org()).unwrap().changes[0]
        else {
            panic!("not a deal");
        };
        assert!(!records.get_mut(&c.key).unwrap().merge(c));
        // The win arrives first, the creation after it: the creation brings the
        // deal_opened it implies, at its own time, and nothing else; the deal
        // stays won.
        let mut late = BTreeMap::new();
        let events = run(&mut late, &[V2_WON, V2_CREATE]);
        assert_eq!(types(&events), ["deal_won", "deal_opened"]);
        assert_eq!(events[1]["occurred_at"], "2026-11-03T10:00:00.000Z");
        let record = late.values().next().unwrap();
        assert_eq!(record.prop("status"), Some("won"));
        assert_eq!(
            facts(&cfg(), record, &org()).closed_on.as_deref(),
            Some("2026-11-04")
        );
    }

    #[test]
    fn won_then_reopened_voids_the_win_and_deletes_need_no_data() {
        let events = run(&mut BTreeMap::new(), &[V2_CREATE, V2_WON, V2_REOPENED]);
        assert_eq!(types(&events), ["deal_opened", "deal_won", "event_voided"]);
        assert_eq!(events[2]["voided_event_id"], events[1]["event_id"]);
        let delete = edited(V2_CREATE, |v| {
            v["data"] = Value::Null;
            v["meta"]["action"] = json!("delete");
            v["meta"]["id"] = json!("d-1");
            v["meta"]["timestamp"] = json!("2026-11-07T08:00:00Z");
        });
        let parsed = parse(&cfg(), delete.as_bytes(), &org()).unwrap();
        let [Change::Deal(c)] = parsed.changes.as_slice() else {
            panic!("{parsed:?}")
        };
        assert!(c.deleted && c.props.is_empty() && c.key.id() == "pipedrive:4:17");
        let events = run(&mut BTreeMap::new(), &[V2_CREATE, &delete]);
        assert_eq!(types(&events), ["deal_opened", "deal_lost"]);
    }

    /// The account of one deal after these bodies, each merged into its record.
    fn account_after(cfg: &PipedriveConfig, bodies: &[&str]) -> String {
        let mut record = DealRecord::default();
        for body in bodies {
            for c in parse(cfg, body.as_bytes(), &org()).unwrap().changes {
                let Change::Deal(c) = c else { panic!("{c:?}") };
                record.merge(&c);
            }
        }
        facts(cfg, &record, &org()).account.unwrap_or_default()
    }

    #[test]
    fn the_account_is_the_organisation_name_when_the_message_gives_it() {
        let cfg = cfg();
        // v1 as Pipedrive sends it: the bare org_id, and org_name beside it.
        let v1 = edited(V1_ADDED, |v| {
            v["current"]["org_id"] = json!(8);
            v["current"]["org_name"] = json!("Globex Corporation");
        });
        assert_eq!(account_after(&cfg, &[&v1]), "Globex Corporation");
        let events = run(&mut BTreeMap::new(), &[&v1]);
        has(
            &events[0],
            json!({"type": "deal_opened", "account": "Globex Corporation"}),
        );
        // An expanded org_id object names it too; a later message naming no
        // organisation name (V1_LOST: org_id 8 alone) keeps it.
        assert_eq!(account_after(&cfg, &[V1_ADDED]), "Globex");
        assert_eq!(account_after(&cfg, &[V1_ADDED, V1_LOST]), "Globex");
        // v2 gives the bare org_id only: the id, unless a name of that id is known.
        assert_eq!(account_after(&cfg, &[V2_CREATE]), "pipedrive-org-5");
        let v2 = |org: u64| {
            edited(V2_WON, |v| {
                v["meta"]["company_id"] = json!("7");
                v["meta"]["entity_id"] = json!("42");
                v["data"]["id"] = json!(42);
                v["data"]["org_id"] = json!(org);
            })
        };
        assert_eq!(account_after(&cfg, &[&v1, &v2(8)]), "Globex Corporation");
        // Moved to another organisation: never the old one's name.
        assert_eq!(account_after(&cfg, &[&v1, &v2(9)]), "pipedrive-org-9");
        // No organisation any more.
        let none = edited(V1_LOST, |v| {
            v["current"]["org_id"] = Value::Null;
            v["current"]["org_name"] = Value::Null;
        });
        assert_eq!(account_after(&cfg, &[&v1, &none]), "unassigned");
        // A configured account_field wins when the deal has it, else the chain goes on.
        let key = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432";
        let own = config(&format!("{CONFIG}\naccount_field = \"{key}\"")).unwrap();
        let with_field = edited(V2_CREATE, |v| {
            v["data"]["custom_fields"][key] = json!({"type": "varchar", "value": "Acme Holding"});
        });
        assert_eq!(account_after(&own, &[&with_field]), "Acme Holding");
        assert_eq!(account_after(&own, &[&v1]), "Globex Corporation");
        // A v1 activity's account is its organisation's name too.
        let activity = json!({"v": 1, "event": "updated.activity",
            "previous": {"id": 8, "done": false},
            "meta": {"v": 1, "action": "updated", "object": "activity", "id": 8, "company_id": 7,
                     "user_id": 9, "timestamp": 1793800000},
            "current": {"id": 8, "type": "call", "done": true, "user_id": 9, "deal_id": 42,
                        "org_id": 8, "org_name": "Globex Corporation", "deal_title": "Globex renewal"}});
        let events = run(&mut BTreeMap::new(), &[&activity.to_string()]);
        has(
            &events[0],
            json!({"type": "activity_logged", "account": "Globex Corporation"}),
        );
    }

    #[test]
    fn activities_newly_done_are_logged() {
        let events = run(&mut BTreeMap::new(), &[V2_ACTIVITY]);
        let logged = json!({
            "event_id": "pipedrive:4:activity:31:done", "source": "pipedrive",
            "occurred_at": "2026-11-04T14:35:00.000Z", "type": "activity_logged",
            "rep": "ana", "kind": "demo", "deal": "pipedrive:4:17", "account": "pipedrive-org-5",
        });
        assert_eq!(events, [logged]);
        let not_done: [fn(&mut Value); 3] = [
            |v| v["data"]["done"] = json!(false),
            |v| v["previous"] = json!({"subject": "done before"}),
            |v| v["meta"]["entity"] = json!("person"),
        ];
        for edit in not_done {
            let p = parse(&cfg(), edited(V2_ACTIVITY, edit).as_bytes(), &org()).unwrap();
            assert!(p.changes.is_empty() && p.ignored == 1, "{p:?}");
        }
        // Done by an owner mapped to no rep: refused, to wait for the mapping in the
        // dead-letter store rather than be lost.
        let unmapped = edited(V2_ACTIVITY, |v| v["data"]["owner_id"] = json!(77));
        let p = parse(&cfg(), unmapped.as_bytes(), &org()).unwrap();
        assert!(p.changes.is_empty() && p.ignored == 0, "{p:?}");
        assert_eq!(p.invalid[0].kind, "owner_unmapped");
        assert_eq!(p.invalid[0].field, "data.owner_id");
        assert!(p.invalid[0].reason.contains("\"77\""), "{p:?}");
        // v1, added done, of a type not listed, with no deal or organisation.
        let v1 = json!({"v": 1, "event": "added.activity", "previous": null,
            "meta": {"v": 1, "action": "added", "object": "activity", "id": 8, "company_id": 4,
                     "user_id": 9, "timestamp": 1793800000},
            "current": {"id": 8, "type": "Lunch", "done": true, "user_id": 9, "deal_id": null}});
        let events = run(&mut BTreeMap::new(), &[&v1.to_string()]);
        has(
            &events[0],
            json!({"kind": "lunch", "event_id": "pipedrive:4:activity:8:done"}),
        );
        assert!(events[0].get("deal").is_none() && events[0].get("account").is_none());
    }

    #[test]
    fn config_from_toml() {
        let c = cfg();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("pacer", "s3cret"));
        assert_eq!(c.activity_kinds["call"], "call");
        assert_eq!(c.mapping.owners["9"], "ana");
        assert!(!format!("{c:?}").contains("s3cret"));
        let minimal = config("user = \"u\"\npassword = \"p\"").unwrap();
        assert_eq!(minimal.lost_reason_field, "lost_reason");
        let err = |from: &str, to: &str| config(&CONFIG.replace(from, to)).unwrap_err();
        assert!(err("user = \"pacer\"", "secret = 1").contains("secret"));
        assert!(err("password = \"s3cret\"", "").starts_with("webhooks.pipedrive.password: "));
        assert!(err("user = \"pacer\"", "user = \" \"").starts_with("webhooks.pipedrive.user: "));
        assert!(err("user = \"pacer\"", "user = 3").starts_with("webhooks.pipedrive.user: "));
        eprintln!(
            "MSG1 {}\nMSG2 {}\nMSG3 {}",
            err("user = \"pacer\"", "user = 3"),
            err("user = \"pacer\"", "secret = 1"),
            err("password = \"s3cret\"", "")
        );
        assert!(
            err("\"demo\"", "\"\"").starts_with("webhooks.pipedrive.activity_kinds.demo_call: ")
        );
    }

    #[test]
    fn malformed_bodies_name_the_field() {
        // The request's refusal, or its one item's.
        let field_of = |body: &str| match parse(&cfg(), body.as_bytes(), &org()) {
            Err(WebhookError::BadRequest { field, .. }) => field,
            Ok(p) if p.invalid.len() == 1 && p.changes.is_empty() => p.invalid[0].field.clone(),
            other => panic!("{body}: expected a bad request, got {other:?}"),
        };
        for (body, want) in [("not json", "body"), ("[1]", "body"), ("{}", "meta")] {
            assert_eq!(field_of(body), want);
        }
        assert_eq!(field_of(r#"{"meta": {"action": "change"}}"#), "meta.entity");
        let cases = [
            (V2_CREATE, "/meta/action", json!("explode"), "meta.action"),
            (
                V2_CREATE,
                "/meta/timestamp",
                json!("soon"),
                "meta.timestamp",
            ),
            (V2_CREATE, "/meta/timestamp", json!(-5), "meta.timestamp"),
            (
                V2_CREATE,
                "/meta/company_id",
                json!("a:b"),
                "meta.company_id",
            ),
            (V2_CREATE, "/meta/entity", json!(7), "meta.entity"),
            (V2_CREATE, "/data/id", json!(1.5), "data.id"),
            (V2_CREATE, "/data", json!(3), "data"),
            (V1_ADDED, "/current/id", json!(true), "current.id"),
            (V2_ACTIVITY, "/data/deal_id", json!("x y"), "data.deal_id"),
            (V2_ACTIVITY, "/data/type", json!(null), "data.type"),
        ];
        for (fixture, at, value, want) in cases {
            let body = edited(fixture, |v| *v.pointer_mut(at).unwrap() = value);
            assert_eq!(field_of(&body), want, "{at}");
        }
        let no_id = edited(V2_CREATE, |v| {
            v["data"].as_object_mut().unwrap().remove("id");
            v["meta"].as_object_mut().unwrap().remove("entity_id");
        });
        assert_eq!(field_of(&no_id), "data.id");
        let explode = edited(V2_CREATE, |v| v["meta"]["action"] = json!("explode"));
        let err = parse(&cfg(), explode.as_bytes(), &org()).unwrap().invalid[0].message();
        assert!(
            err.starts_with("meta.action: \"explode\" is not create"),
            "{err}"
        );
    }

    #[test]
    fn facts_of_an_empty_record() {
        let f = facts(&cfg(), &DealRecord::default(), &org());
        assert_eq!(
            (f.account.as_deref(), f.customer_kind.as_deref()),
            (Some("unassigned"), Some("new"))
        );
        assert_eq!((f.rep, f.amount, f.status), (None, None, DealStatus::Open));
    }

    proptest! {
        #[test]
        fn parse_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let ok = matches!(parse(&cfg(), &body, &org()), Ok(_) | Err(WebhookError::BadRequest { .. }));
            prop_assert!(ok);
        }

        #[test]
        fn spliced_fixtures_never_panic(
            which in 0usize..4, at in 0usize..4096, cut in 0usize..64,
            insert in "[\\[\\]{}\":,0-9a-z.-]{0,16}",
        ) {
            let fixture = [V2_CREATE, V2_WON, V1_LOST, V2_ACTIVITY][which].as_bytes();
            let at = at % (fixture.len() + 1);
            let end = (at + cut).min(fixture.len());
            let body = [&fixture[..at], insert.as_bytes(), &fixture[end..]].concat();
            let ok = matches!(parse(&cfg(), &body, &org()), Ok(_) | Err(WebhookError::BadRequest { .. }));
            prop_assert!(ok);
        }
    }
}
