//! HubSpot webhooks: checks HubSpot's request signatures (v3, and v1/v2 only when
//! allowed), parses the JSON array of CRM events HubSpot posts into [`DealChange`]s
//! (one property, creation or deletion of one deal each), and reads a deal's
//! [`DealFacts`] off the mirrored HubSpot properties through the configured
//! `[webhooks.hubspot]` mapping. Events about other objects (contacts, companies,
//! tickets) and deal events Pacer does not use are counted as ignored.
//!
//! **The account.** A deal webhook carries only the deal's own properties, and
//! HubSpot keeps the deal's company as an association, not as a deal property: no
//! default deal property holds the company's name. The account is read, first found:
//!
//! 1. `account_field`, when configured (any deal property);
//! 2. [`COMPANY_NAME_PROPERTY`] (`company_name`): a custom deal property the portal
//!    keeps equal to the associated company's name (a deal workflow's "Copy property
//!    value" action from the associated company's *Company name*), and subscribes
//!    the app to (`deal.propertyChange`);
//! 3. [`PRIMARY_COMPANY_PROPERTY`] (`hs_primary_associated_company`, the primary
//!    associated company's id) as `hubspot-company-<id>`: one account per company,
//!    though not a readable one;
//! 4. `dealname` (one account per deal);
//! 5. `unassigned`.

use axum::http::HeaderMap;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::auth::{constant_time_eq, header, hmac_sha256, TOLERANCE_S};
use super::{
    date_of_ms, ms_of_rfc3339, rfc3339_of_ms, Change, Crm, DealChange, DealFacts, DealKey,
    DealRecord, DealStatus, Mapping, OrgContext, Parsed, WebhookError,
};

const SECTION: &str = "webhooks.hubspot";
/// The keys of `[webhooks.hubspot]` that are HubSpot's own (the rest is the [`Mapping`]).
const OWN_KEYS: &[&str] = &[
    "client_secrets",
    "allow_v1_v2",
    "public_url",
    "amount_field",
    "close_date_field",
    "stage_field",
    "owner_field",
    "currency_field",
    "lost_reason_field",
];
/// The most events one request may carry (HubSpot sends at most 100).
pub const EVENTS_MAX: usize = 1000;
/// The deal property read as the account's name when `account_field` is not set or
/// not sent: a custom property (HubSpot has no default one) that a workflow copies
/// from the associated company's name. See the module docs.
pub const COMPANY_NAME_PROPERTY: &str = "company_name";
/// HubSpot's deal property holding the id of the deal's primary associated company:
/// the account is `hubspot-company-<id>` when no name is known.
pub const PRIMARY_COMPANY_PROPERTY: &str = "hs_primary_associated_company";

/// A HubSpot app's client secret; `Debug` does not show it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientSecret(pub String);

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(..)")
    }
}

/// `[webhooks.hubspot]`: the app's secrets, how to rebuild the signed URL, which
/// deal properties hold what, and the shared [`Mapping`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HubspotConfig {
    pub mapping: Mapping,
    /// The HubSpot app's client secret; several while rotating (any may match).
    pub client_secrets: Vec<ClientSecret>,
    /// Accept the v1/v2 signatures (no timestamp, so replayable). Default `false`.
    pub allow_v1_v2: bool,
    /// Scheme and host HubSpot calls (`https://pacer.example.com`), to rebuild the
    /// signed URL; `None`: `https://` and the `Host` header.
    pub public_url: Option<String>,
    /// Deal property names (defaults: `amount`, `closedate`, `dealstage`,
    /// `hubspot_owner_id`, `deal_currency_code`, `closed_lost_reason`).
    pub amount_field: String,
    pub close_date_field: String,
    pub stage_field: String,
    pub owner_field: String,
    pub currency_field: String,
    pub lost_reason_field: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Own {
    client_secrets: Option<Vec<String>>,
    #[serde(default)]
    allow_v1_v2: bool,
    public_url: Option<String>,
    amount_field: Option<String>,
    close_date_field: Option<String>,
    stage_field: Option<String>,
    owner_field: Option<String>,
    currency_field: Option<String>,
    lost_reason_field: Option<String>,
}

impl HubspotConfig {
    /// Reads `[webhooks.hubspot]`; errors name the key (`webhooks.hubspot.<key>`).
    pub fn from_toml(value: toml::Value) -> Result<Self, String> {
        let (own, mut mapping) = super::split_section(SECTION, value, OWN_KEYS)?;
        let own = Own::deserialize(toml::Value::Table(own)).map_err(|e| {
            // toml ends its message with "\nin `key`": name the key up front.
            let e = e.to_string();
            match e.trim_end().rsplit_once("\nin `") {
                Some((msg, key)) => format!("{SECTION}.{}: {msg}", key.trim_end_matches('`')),
                None => format!("{SECTION}: {}", e.trim_end()),
            }
        })?;
        let secrets = own.client_secrets.ok_or_else(|| {
            format!("{SECTION}.client_secrets: missing; list the HubSpot app's client secret")
        })?;
        if secrets.is_empty() || secrets.iter().any(|s| s.trim().is_empty()) {
            return Err(format!(
                "{SECTION}.client_secrets: needs at least one secret, and none blank"
            ));
        }
        let public_url = match own.public_url {
            Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
                Some(u.trim_end_matches('/').to_owned())
            }
            Some(u) => {
                return Err(format!(
                    "{SECTION}.public_url: {u:?} is not an http(s) URL like \"https://pacer.example.com\""
                ))
            }
            None => None,
        };
        let field = |key: &str, given: Option<String>, default: &str| match given {
            Some(f) if f.trim().is_empty() => Err(format!("{SECTION}.{key}: is empty")),
            Some(f) => Ok(f),
            None => Ok(default.to_owned()),
        };
        if mapping.won_stages.is_empty() {
            mapping.won_stages = vec!["closedwon".into()];
        }
        if mapping.lost_stages.is_empty() {
            mapping.lost_stages = vec!["closedlost".into()];
        }
        if mapping.customer_kind_field.is_none() {
            mapping.customer_kind_field = Some("dealtype".into());
            if mapping.new_customer_values.is_empty() {
                mapping.new_customer_values = vec!["newbusiness".into()];
            }
        }
        Ok(HubspotConfig {
            mapping,
            client_secrets: secrets.into_iter().map(ClientSecret).collect(),
            allow_v1_v2: own.allow_v1_v2,
            public_url,
            amount_field: field("amount_field", own.amount_field, "amount")?,
            close_date_field: field("close_date_field", own.close_date_field, "closedate")?,
            stage_field: field("stage_field", own.stage_field, "dealstage")?,
            owner_field: field("owner_field", own.owner_field, "hubspot_owner_id")?,
            currency_field: field("currency_field", own.currency_field, "deal_currency_code")?,
            lost_reason_field: field(
                "lost_reason_field",
                own.lost_reason_field,
                "closed_lost_reason",
            )?,
        })
    }
}

/// Checks HubSpot's signature of a request. v3 (`X-HubSpot-Signature-v3`): base64
/// HMAC-SHA256 under a client secret of method + URL + body + timestamp, the
/// timestamp (`X-HubSpot-Request-Timestamp`, ms) within [`TOLERANCE_S`] of `now_ms`.
/// v1 (hex SHA-256 of secret + body) and v2 (of secret + method + URL + body) only
/// when `allow_v1_v2`.
pub fn verify(
    cfg: &HubspotConfig,
    method: &str,
    path_and_query: &str,
    host: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    now_ms: i64,
) -> Result<(), WebhookError> {
    let refused = |m: String| Err(WebhookError::Unauthorized(m));
    let secrets = || cfg.client_secrets.iter().map(|s| s.0.as_bytes());
    if let Some(sig) = header(headers, "x-hubspot-signature-v3") {
        let Some(ts_text) = header(headers, "x-hubspot-request-timestamp") else {
            return refused("X-HubSpot-Request-Timestamp is missing".into());
        };
        let Ok(ts) = ts_text.parse::<i64>() else {
            return refused(format!(
                "X-HubSpot-Request-Timestamp: {ts_text:?} is not milliseconds since the epoch"
            ));
        };
        let off_ms = now_ms.saturating_sub(ts);
        if off_ms.saturating_abs() > TOLERANCE_S * 1000 {
            return refused(format!(
                "X-HubSpot-Request-Timestamp: {ts} is {} s from now; the tolerance is {TOLERANCE_S} s",
                off_ms / 1000
            ));
        }
        // A proxy may have turned a `+` of the base64 into a space.
        let Ok(given) = B64.decode(sig.replace(' ', "+")) else {
            return refused("X-HubSpot-Signature-v3: not base64".into());
        };
        let url = signed_url(cfg, path_and_query, host)?;
        // HubSpot documents the URL with its %-escapes decoded; its own client
        // libraries sign it as sent. Either one passes.
        let decoded = percent_decode(&url);
        let mut urls = vec![decoded.as_slice()];
        if decoded != url.as_bytes() {
            urls.push(url.as_bytes());
        }
        for secret in secrets() {
            for u in &urls {
                let mac = hmac_sha256(secret, &[method.as_bytes(), u, body, ts_text.as_bytes()]);
                if constant_time_eq(&mac, &given) {
                    return Ok(());
                }
            }
        }
        return refused(
            "X-HubSpot-Signature-v3: does not match the request with any configured client secret"
                .into(),
        );
    }
    let Some(sig) = header(headers, "x-hubspot-signature") else {
        return refused("no HubSpot signature: X-HubSpot-Signature-v3 is missing".into());
    };
    let version = header(headers, "x-hubspot-signature-version").unwrap_or("v1");
    if version != "v1" && version != "v2" {
        return refused(format!(
            "X-HubSpot-Signature-Version: {version:?} is not v1 or v2"
        ));
    }
    if !cfg.allow_v1_v2 {
        return refused(format!(
            "a {version} signature without X-HubSpot-Signature-v3: v1/v2 signatures are not \
             allowed (no timestamp, so replayable); set {SECTION}.allow_v1_v2 = true to accept them"
        ));
    }
    let url = if version == "v2" {
        signed_url(cfg, path_and_query, host)?
    } else {
        String::new()
    };
    let given = sig.to_ascii_lowercase();
    for secret in secrets() {
        let mut h = Sha256::new();
        h.update(secret);
        if version == "v2" {
            h.update(method.as_bytes());
            h.update(url.as_bytes());
        }
        h.update(body);
        if constant_time_eq(hex(&h.finalize()).as_bytes(), given.as_bytes()) {
            return Ok(());
        }
    }
    refused(format!(
        "X-HubSpot-Signature ({version}): does not match the request with any configured client secret"
    ))
}

/// The URL HubSpot called: `public_url` (or `https://` and the Host) and the path.
fn signed_url(
    cfg: &HubspotConfig,
    path_and_query: &str,
    host: Option<&str>,
) -> Result<String, WebhookError> {
    let base = match (
        &cfg.public_url,
        host.map(str::trim).filter(|h| !h.is_empty()),
    ) {
        (Some(url), _) => url.clone(),
        (None, Some(host)) => format!("https://{host}"),
        (None, None) => {
            return Err(WebhookError::Unauthorized(format!(
                "cannot rebuild the URL HubSpot signed: no Host header; set {SECTION}.public_url"
            )))
        }
    };
    Ok(format!("{base}{path_and_query}"))
}

/// Decodes `%XX` escapes, except `%3F` (a `?` that is not the query's start).
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let digit = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if let (b'%', Some(&h), Some(&l)) = (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            if let (Some(h), Some(l)) = (digit(h), digit(l)) {
                let b = (h * 16 + l) as u8;
                if b != b'?' {
                    out.push(b);
                    i += 3;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses HubSpot's body: a JSON array (at most [`EVENTS_MAX`]) of events. Deal
/// creation, property change and deletion become [`DealChange`]s; everything else
/// is counted in [`Parsed::ignored`]. Errors name the item and field (`[2].occurredAt`).
pub fn parse(body: &[u8]) -> Result<Parsed, WebhookError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| WebhookError::bad("body", format!("not JSON: {e}")))?;
    let items = match value {
        Value::Array(items) if items.len() <= EVENTS_MAX => items,
        Value::Array(items) => {
            let n = items.len();
            return Err(WebhookError::bad(
                "body",
                format!("{n} events; at most {EVENTS_MAX} a request"),
            ));
        }
        v => {
            return Err(WebhookError::bad(
                "body",
                format!("expected an array of events, got {}", describe(&v)),
            ))
        }
    };
    let mut parsed = Parsed::default();
    for (i, item) in items.iter().enumerate() {
        match deal_change(i, item) {
            Ok(Some(change)) => parsed.push(i, Change::Deal(change)),
            Ok(None) => parsed.ignored += 1,
            Err(e) => parsed.refuse(i, e)?,
        }
    }
    Ok(parsed)
}

/// The items of a body as the dead-letter store keeps them: each event's JSON text
/// (a body that is not an array is one item). [`parse`] takes one back wrapped in
/// `[...]`.
pub fn split(body: &[u8]) -> Vec<String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => items.iter().map(Value::to_string).collect(),
        _ => vec![String::from_utf8_lossy(body).into_owned()],
    }
}

/// One event; `None` when it is not about a deal's creation, properties or deletion.
fn deal_change(i: usize, item: &Value) -> Result<Option<DealChange>, WebhookError> {
    let bad = |field: &str, what: &str, v: Option<&Value>| {
        let reason = match v {
            Some(v) => format!("expected {what}, got {}", describe(v)),
            None => format!("missing; expected {what}"),
        };
        WebhookError::bad(format!("[{i}]{field}"), reason)
    };
    let Value::Object(map) = item else {
        return Err(bad("", "an event object", Some(item)));
    };
    let get = |field: &str, what: &str| {
        map.get(field)
            .ok_or_else(|| bad(&format!(".{field}"), what, None))
    };
    let kind = get("subscriptionType", "a string")?;
    let Value::String(kind) = kind else {
        return Err(bad(".subscriptionType", "a string", Some(kind)));
    };
    let (object, action) = kind.split_once('.').unwrap_or((kind, ""));
    // The newer generic subscriptions name deals by object type id 0-3.
    let is_deal = object == "deal"
        || (object == "object" && map.get("objectTypeId").and_then(Value::as_str) == Some("0-3"));
    if !is_deal || !matches!(action, "creation" | "propertyChange" | "deletion") {
        return Ok(None);
    }
    let id = |field: &str| {
        let what = "a whole non-negative number";
        let v = get(field, what)?;
        let n = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) if s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse().ok()
            }
            _ => None,
        };
        n.map(|n: u64| n.to_string())
            .ok_or_else(|| bad(&format!(".{field}"), what, Some(v)))
    };
    let (portal, event_id, object_id) = (id("portalId")?, id("eventId")?, id("objectId")?);
    let subscription = match map.get("subscriptionId") {
        None | Some(Value::Null) => String::new(),
        Some(_) => id("subscriptionId")?,
    };
    let what = "milliseconds since the epoch";
    let occurred = get("occurredAt", what)?;
    let at_ms = occurred
        .as_i64()
        .filter(|ms| *ms >= 0 && rfc3339_of_ms(*ms).is_some())
        .ok_or_else(|| bad(".occurredAt", what, Some(occurred)))?;
    let (mut props, mut name) = (Vec::new(), String::new());
    if action == "propertyChange" {
        name = match get("propertyName", "a property name")? {
            Value::String(s) if !s.trim().is_empty() => s.clone(),
            v => return Err(bad(".propertyName", "a property name", Some(v))),
        };
        let value = match get("propertyValue", "text")? {
            Value::String(s) => Some(s.clone()).filter(|s| !s.is_empty()),
            Value::Null => None,
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            v => return Err(bad(".propertyValue", "text", Some(v))),
        };
        props.push((name.clone(), value));
    }
    let dedupe = format!("{portal}:{subscription}:{event_id}:{at_ms}:{object_id}:{name}");
    let key = DealKey {
        crm: Crm::Hubspot,
        tenant: portal,
        deal: object_id,
    };
    Ok(Some(DealChange {
        key,
        at_ms,
        props,
        deleted: action == "deletion",
        dedupe,
    }))
}

/// A JSON value for an error message, cut short.
fn describe(v: &Value) -> String {
    let text = match v {
        Value::Array(_) => return "an array".into(),
        Value::Object(_) => return "an object".into(),
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// What the mirrored HubSpot properties of a deal say, through the mapping. The
/// account is `account_field`, else [`COMPANY_NAME_PROPERTY`], else
/// `hubspot-company-<`[`PRIMARY_COMPANY_PROPERTY`]`>`, else `dealname`, else
/// `unassigned` (see the module docs); the probability is the mapping's for the
/// stage, else HubSpot's `hs_deal_stage_probability` (0–1).
pub fn facts(cfg: &HubspotConfig, record: &DealRecord, org: &OrgContext) -> DealFacts {
    let m = &cfg.mapping;
    let prop = |name: &str| record.prop(name).map(str::to_owned);
    let stage_id = record.prop(&cfg.stage_field);
    let status = m.stage_status(stage_id).unwrap_or(DealStatus::Open);
    let expected_close = record
        .prop(&cfg.close_date_field)
        .and_then(|t| date_of(t, org.timezone));
    let rep = record
        .prop(&cfg.owner_field)
        .and_then(|o| m.owners.get(o))
        .cloned();
    DealFacts {
        unmapped_owner: DealFacts::unmapped_owner_of(record, &cfg.owner_field, &rep),
        rep,
        account: Some(account_of(m, record)),
        customer_kind: Some(m.customer_kind_of(record)),
        product: record.field(&m.product_field),
        region: record.field(&m.region_field),
        amount: prop(&cfg.amount_field),
        currency: record
            .prop(&cfg.currency_field)
            .map(str::to_ascii_uppercase),
        stage: stage_id.map(|s| m.stage_name(s)),
        probability: m.stage_probability(stage_id).or_else(|| {
            record
                .prop("hs_deal_stage_probability")
                .and_then(percent_of)
        }),
        closed_on: (status == DealStatus::Won)
            .then(|| expected_close.clone())
            .flatten(),
        expected_close,
        status,
        lost_reason: prop(&cfg.lost_reason_field),
    }
}

/// The deal's account, first found: `account_field`, the company's name
/// ([`COMPANY_NAME_PROPERTY`]), its id ([`PRIMARY_COMPANY_PROPERTY`]) as
/// `hubspot-company-<id>`, `dealname`, `unassigned`.
fn account_of(m: &Mapping, record: &DealRecord) -> String {
    record
        .field(&m.account_field)
        .or_else(|| record.prop(COMPANY_NAME_PROPERTY).map(str::to_owned))
        .or_else(|| {
            record
                .prop(PRIMARY_COMPANY_PROPERTY)
                .map(|id| format!("hubspot-company-{id}"))
        })
        .or_else(|| record.prop("dealname").map(str::to_owned))
        .unwrap_or_else(|| "unassigned".into())
}

/// The properties [`facts`] reads as the deal goes, whose every change the mirror
/// keeps with its time (what a deal is — account, kind, product, region — is read
/// as it is now).
pub fn tracked(cfg: &HubspotConfig) -> impl Fn(&str) -> bool + '_ {
    move |name| {
        [
            &cfg.owner_field,
            &cfg.amount_field,
            &cfg.currency_field,
            &cfg.close_date_field,
            &cfg.stage_field,
            &cfg.lost_reason_field,
        ]
        .into_iter()
        .any(|f| f == name)
            || name == "hs_deal_stage_probability"
    }
}

/// `YYYY-MM-DD` of a HubSpot date: ms since the epoch (in the org's zone), an RFC 3339
/// time (likewise), or a date / date-time whose date part is kept.
fn date_of(text: &str, tz: Tz) -> Option<String> {
    let t = text.trim();
    let date = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        date_of_ms(t.parse().ok()?, tz)?
    } else if let Some(ms) = ms_of_rfc3339(t) {
        date_of_ms(ms, tz)?
    } else {
        let rest = t.get(10..)?;
        if !(rest.is_empty() || rest.starts_with(['T', ' '])) {
            return None;
        }
        let d = chrono::NaiveDate::parse_from_str(t.get(..10)?, "%Y-%m-%d").ok()?;
        d.format("%Y-%m-%d").to_string()
    };
    (date.len() == 10).then_some(date)
}

/// A 0–1 decimal (`0.2`) as a percentage (20), rounded half up, clamped to 0–100.
fn percent_of(text: &str) -> Option<u8> {
    let t = text.trim();
    let (negative, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return None;
    }
    if negative {
        return Some(0);
    }
    let int = int.trim_start_matches('0');
    if int.len() > 1 {
        return Some(100);
    }
    let d = |s: &str, k: usize| s.as_bytes().get(k).map_or(0, |b| u32::from(b - b'0'));
    let mut pct = d(int, 0) * 100 + d(frac, 0) * 10 + d(frac, 1);
    if d(frac, 2) >= 5 {
        pct += 1;
    }
    u8::try_from(pct.min(100)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::history_tests::without_id;
    use crate::webhook::{apply, Prop};
    use axum::http::HeaderValue;
    use hmac::{Hmac, Mac};
    use pacer_projections::money::Currency;
    use proptest::prelude::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    const SEQUENCE: &str =
        include_str!("../../../tests/fixtures/webhooks/hubspot/deal_won_sequence.json");
    const CLOSED_WON: &str =
        include_str!("../../../tests/fixtures/webhooks/hubspot/deal_closed_won.json");
    const REOPENED: &str =
        include_str!("../../../tests/fixtures/webhooks/hubspot/deal_reopened.json");
    const MIXED: &str = include_str!("../../../tests/fixtures/webhooks/hubspot/mixed_objects.json");
    const DEAL: &str = "hubspot:62515:18274510231";
    // HubSpot's documented examples: this secret signs this body (v1), and a GET of
    // https://www.example.com/webhook_uri without body (v2), to these hashes.
    const DOC_SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
    const DOC_V1_BODY: &str = r#"[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]"#;
    const DOC_V1_SIG: &str = "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de";
    const DOC_V2_SIG: &str = "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e";
    const NOW: i64 = 1_795_735_805_000;

    fn from(text: &str) -> Result<HubspotConfig, String> {
        HubspotConfig::from_toml(toml::from_str(text).expect("TOML"))
    }

    fn cfg() -> HubspotConfig {
        let text = r#"
            client_secrets = ["old-secret", "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"]
            public_url = "https://pacer.example.com/"
            owners = { 51234567 = "ana" }
            stage_names = { appointmentscheduled = "Appointment scheduled" }
            stage_probability = { appointmentscheduled = 20 }
        "#;
        from(text).unwrap()
    }

    fn org() -> OrgContext {
        let currency = Currency::from_code("EUR").unwrap();
        OrgContext {
            currency,
            timezone: chrono_tz::Europe::Berlin,
        }
    }

    /// parse → merge → facts → reconcile, as the HTTP layer does; every event decodes.
    fn feed(cfg: &HubspotConfig, record: &mut DealRecord, body: &str) -> Vec<Value> {
        // As the endpoint does it: the whole payload, then the deal once.
        let parsed = parse(body.as_bytes()).unwrap();
        let mut records = BTreeMap::new();
        for change in &parsed.changes {
            let Change::Deal(c) = change else {
                panic!("{change:?}")
            };
            assert_eq!(c.key.id(), DEAL);
            records
                .entry(c.key.clone())
                .or_insert_with(|| std::mem::take(record));
        }
        let applied = apply(
            &parsed,
            &mut records,
            |r| facts(cfg, r, &org()),
            &tracked(cfg),
            org().currency,
        );
        let out: Vec<Value> = applied
            .unwrap()
            .events
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        if let Some(mut back) = records.into_values().next() {
            // Made durable: nothing stays pending.
            back.pending.clear();
            *record = back;
        }
        for ev in &out {
            let decoded = crate::wire::decode_value(ev, &crate::wire::Limits::default());
            assert!(decoded.is_ok(), "{ev}: {decoded:?}");
        }
        out
    }

    #[test]
    fn a_deal_opens_then_wins_on_its_close_date_in_the_org_zone() {
        let (cfg, mut record) = (cfg(), DealRecord::default());
        let opened = feed(&cfg, &mut record, SEQUENCE);
        let want = json!({
            "source": "hubspot",
            "occurred_at": "2026-11-02T09:00:00.000Z", "type": "deal_opened", "deal": DEAL,
            "rep": "ana", "account": "Acme GmbH", "customer_kind": "new", "amount": "12500",
            "currency": "EUR", "expected_close": "2026-11-27", "probability": 20,
        });
        assert_eq!(opened.iter().map(without_id).collect::<Vec<_>>(), [want]);
        // closedate 1795734000000 is 2026-11-26T23:00Z: the 27th in Berlin.
        let won = feed(&cfg, &mut record, CLOSED_WON);
        let want = json!({
            "source": "hubspot",
            "occurred_at": "2026-11-26T23:30:00.000Z", "type": "deal_won", "deal": DEAL,
            "rep": "ana", "account": "Acme GmbH", "customer_kind": "new", "amount": "12500",
            "currency": "EUR", "closed_on": "2026-11-27",
        });
        assert_eq!(won.iter().map(without_id).collect::<Vec<_>>(), [want]);
    }

    #[test]
    fn an_older_value_arriving_late_takes_its_place_in_the_history() {
        let (cfg, mut record) = (cfg(), DealRecord::default());
        feed(&cfg, &mut record, SEQUENCE);
        let amount = |id: u64, at: i64, v: &str| {
            json!({"eventId": id, "subscriptionId": 2881781, "portalId": 62515,
                "occurredAt": at, "subscriptionType": "deal.propertyChange",
                "objectId": 18274510231_u64, "propertyName": "amount", "propertyValue": v})
        };
        let (newer, older) = (
            amount(7, 1_793_617_200_000, "15000"),
            amount(8, 1_793_613_600_000, "14000"),
        );
        // Delivered newest first: each value is told at its own time, in time order,
        // and the newest stands.
        let evs = feed(&cfg, &mut record, &json!([newer, older]).to_string());
        assert_eq!(evs.len(), 2, "{evs:?}");
        assert!(evs.iter().all(|e| e["type"] == "deal_stage_changed"));
        assert_eq!(
            (&evs[0]["amount"], &evs[1]["amount"]),
            (&json!("14000"), &json!("15000"))
        );
        assert_eq!(evs[0]["occurred_at"], "2026-11-02T10:00:00.000Z");
        assert_eq!(evs[1]["stage"], "Appointment scheduled");
        assert_eq!(
            facts(&cfg, &record, &org()).amount.as_deref(),
            Some("15000")
        );
    }

    #[test]
    fn a_retried_payload_changes_nothing() {
        let (cfg, mut record) = (cfg(), DealRecord::default());
        feed(&cfg, &mut record, SEQUENCE);
        let before = record.clone();
        let retry = SEQUENCE.replace("\"attemptNumber\":0", "\"attemptNumber\":1");
        assert_ne!(retry, SEQUENCE);
        for change in parse(retry.as_bytes()).unwrap().changes {
            let Change::Deal(c) = change else { panic!() };
            assert!(!record.merge(&c));
        }
        assert_eq!(record, before);
        assert!(feed(&cfg, &mut record, &retry).is_empty());
    }

    #[test]
    fn a_won_deal_moved_back_to_an_open_stage_voids_the_win() {
        let (cfg, mut record) = (cfg(), DealRecord::default());
        feed(&cfg, &mut record, SEQUENCE);
        let won = feed(&cfg, &mut record, CLOSED_WON);
        let at = "2026-12-01T10:00:00.000Z";
        let void = json!({"source": "hubspot",
            "occurred_at": at, "type": "event_voided", "voided_event_id": won[0]["event_id"],
            "reason": "reopened in hubspot"});
        let open = json!({"source": "hubspot",
            "occurred_at": at, "type": "deal_stage_changed", "deal": DEAL, "stage": "contractsent",
            "probability": 90, "amount": "12500", "currency": "EUR", "expected_close": "2026-11-27"});
        let reopened = feed(&cfg, &mut record, REOPENED);
        assert_eq!(
            reopened.iter().map(without_id).collect::<Vec<_>>(),
            [void, open]
        );
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    /// HubSpot's v3 formula, computed here with `hmac` directly.
    fn v3(secret: &str, source: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(source.as_bytes());
        B64.encode(mac.finalize().into_bytes())
    }

    fn refused(r: Result<(), WebhookError>) -> bool {
        matches!(r, Err(WebhookError::Unauthorized(_)))
    }

    #[test]
    fn v3_signatures() {
        let mut cfg = cfg();
        let path = "/webhooks/hubspot?portal=62515&note=a%3Ab%3Fc";
        let ts = (NOW - 2_000).to_string();
        let req = |cfg: &HubspotConfig, host, h: &[(&'static str, &str)], body: &str, now| {
            verify(cfg, "POST", path, host, &headers(h), body.as_bytes(), now)
        };
        let check = |cfg: &HubspotConfig, sig: &str, body: &str, now: i64| {
            let h = [
                ("x-hubspot-signature-v3", sig),
                ("x-hubspot-request-timestamp", &ts),
            ];
            req(cfg, Some("internal:8080"), &h, body, now)
        };
        // Escapes decoded but %3F; the old secret passes too (rotation).
        let url = "https://pacer.example.com/webhooks/hubspot?portal=62515&note=a:b%3Fc";
        let sig = v3(DOC_SECRET, &format!("POST{url}{CLOSED_WON}{ts}"));
        assert_eq!(check(&cfg, &sig, CLOSED_WON, NOW), Ok(()));
        let old = v3("old-secret", &format!("POST{url}{CLOSED_WON}{ts}"));
        assert_eq!(check(&cfg, &old, CLOSED_WON, NOW), Ok(()));
        // The URL as sent, as HubSpot's client libraries sign it.
        let raw = format!("POSThttps://pacer.example.com{path}{CLOSED_WON}{ts}");
        assert_eq!(check(&cfg, &v3(DOC_SECRET, &raw), CLOSED_WON, NOW), Ok(()));
        let wrong = v3("not-the-secret", &format!("POST{url}{CLOSED_WON}{ts}"));
        assert!(refused(check(&cfg, &wrong, CLOSED_WON, NOW)));
        assert!(refused(check(&cfg, &sig, CLOSED_WON, NOW + 6 * 60_000)));
        assert!(refused(check(&cfg, &sig, CLOSED_WON, NOW - 6 * 60_000)));
        let tampered = CLOSED_WON.replace("closedwon", "closedlost");
        assert!(refused(check(&cfg, &sig, &tampered, NOW)));
        assert!(refused(check(&cfg, "bm90IGl0", CLOSED_WON, NOW)));
        let no_ts = [("x-hubspot-signature-v3", sig.as_str())];
        assert!(refused(req(&cfg, None, &no_ts, CLOSED_WON, NOW)));
        assert!(refused(req(&cfg, None, &[], CLOSED_WON, NOW)));
        // Without public_url: https:// and the Host header.
        cfg.public_url = None;
        let by_host = v3(
            DOC_SECRET,
            &format!("POSThttps://internal:8080{path}{CLOSED_WON}{ts}"),
        );
        assert_eq!(check(&cfg, &by_host, CLOSED_WON, NOW), Ok(()));
        let h = [
            ("x-hubspot-signature-v3", by_host.as_str()),
            ("x-hubspot-request-timestamp", &ts),
        ];
        assert!(refused(req(&cfg, None, &h, CLOSED_WON, NOW)));
    }

    #[test]
    fn v1_and_v2_only_when_allowed() {
        let mut cfg = cfg();
        cfg.public_url = Some("https://www.example.com".into());
        let req = |cfg: &HubspotConfig, method, version, sig: &str, body: &str| {
            let h = headers(&[
                ("x-hubspot-signature-version", version),
                ("x-hubspot-signature", sig),
            ]);
            verify(cfg, method, "/webhook_uri", None, &h, body.as_bytes(), NOW)
        };
        match req(&cfg, "POST", "v1", DOC_V1_SIG, DOC_V1_BODY) {
            Err(WebhookError::Unauthorized(m)) => assert!(m.contains("not allowed"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(refused(req(&cfg, "GET", "v2", DOC_V2_SIG, "")));
        cfg.allow_v1_v2 = true;
        assert_eq!(req(&cfg, "POST", "v1", DOC_V1_SIG, DOC_V1_BODY), Ok(()));
        assert_eq!(req(&cfg, "GET", "v2", DOC_V2_SIG, ""), Ok(()));
        let tampered = DOC_V1_BODY.replace("123", "124");
        assert!(refused(req(&cfg, "POST", "v1", DOC_V1_SIG, &tampered)));
        // v2 of a POST with a body, computed with sha2 directly.
        let source = format!("{DOC_SECRET}POSThttps://www.example.com/webhook_uri{CLOSED_WON}");
        let sig = hex(&Sha256::digest(source.as_bytes()));
        assert_eq!(req(&cfg, "POST", "v2", &sig, CLOSED_WON), Ok(()));
        assert!(refused(req(&cfg, "POST", "v2", &sig, SEQUENCE)));
        assert!(refused(req(&cfg, "POST", "v9", &sig, CLOSED_WON)));
    }

    fn fields(c: &HubspotConfig) -> String {
        let f = [
            &c.amount_field,
            &c.close_date_field,
            &c.stage_field,
            &c.owner_field,
        ];
        format!("{f:?} {} {}", c.currency_field, c.lost_reason_field)
    }

    #[test]
    fn config_keys_defaults_and_errors() {
        let full = from(
            r#"
            client_secrets = ["secret-one", "secret-two"]
            allow_v1_v2 = true
            public_url = "https://pacer.example.com"
            amount_field = "hs_tcv"
            close_date_field = "hs_close_date"
            stage_field = "stage"
            owner_field = "owner"
            currency_field = "currency"
            lost_reason_field = "why_lost"
            owners = { "51234567" = "ana" }
            product_field = "product_line"
            region_field = "territory"
            account_field = "company"
            customer_kind_field = "kind"
            new_customer_values = ["new"]
            default_customer_kind = "existing"
            stage_names = { won = "Won" }
            stage_probability = { qualified = 30 }
            won_stages = ["won"]
            lost_stages = ["lost"]
        "#,
        );
        let full = full.unwrap();
        let want = r#"["hs_tcv", "hs_close_date", "stage", "owner"] currency why_lost"#;
        assert_eq!(fields(&full), want);
        assert_eq!(full.client_secrets[1], ClientSecret("secret-two".into()));
        assert!(full.allow_v1_v2 && !format!("{full:?}").contains("secret-one"));
        assert_eq!(
            full.public_url.as_deref(),
            Some("https://pacer.example.com")
        );
        let m = &full.mapping;
        assert_eq!(
            (m.won_stages.as_slice(), m.owners["51234567"].as_str()),
            (&["won".to_owned()][..], "ana")
        );
        assert_eq!(
            (m.customer_kind_field.as_deref(), m.region_field.as_deref()),
            (Some("kind"), Some("territory"))
        );
        let min = from(r#"client_secrets = ["s"]"#).unwrap();
        let want = r#"["amount", "closedate", "dealstage", "hubspot_owner_id"] deal_currency_code closed_lost_reason"#;
        assert_eq!(fields(&min), want);
        assert!(!min.allow_v1_v2 && min.public_url.is_none());
        let m = &min.mapping;
        assert_eq!(
            (m.won_stages.as_slice(), m.lost_stages.as_slice()),
            (
                &["closedwon".to_owned()][..],
                &["closedlost".to_owned()][..]
            )
        );
        assert_eq!(m.customer_kind_field.as_deref(), Some("dealtype"));
        assert_eq!(m.new_customer_values, ["newbusiness"]);
        for text in [
            "owners = {}",
            "client_secrets = []",
            "client_secrets = [\"\"]",
            "client_secrets = 's'",
        ] {
            let err = from(text).unwrap_err();
            assert!(
                err.starts_with("webhooks.hubspot.client_secrets: "),
                "{text}: {err}"
            );
        }
        for (extra, key) in [
            ("client_secret = 's'", "client_secret`"),
            (
                "public_url = 'pacer.example.com'",
                "webhooks.hubspot.public_url: ",
            ),
            ("amount_field = ''", "webhooks.hubspot.amount_field: "),
            ("allow_v1_v2 = 'yes'", "webhooks.hubspot.allow_v1_v2: "),
        ] {
            let err = from(&format!("client_secrets = ['s']\n{extra}")).unwrap_err();
            assert!(err.contains(key), "{extra}: {err}");
        }
    }

    /// The request's refusal, or its one refused item (the others stand).
    fn bad(body: &str) -> (String, String) {
        match parse(body.as_bytes()) {
            Err(WebhookError::BadRequest { field, reason }) => (field, reason),
            Ok(p) if p.invalid.len() == 1 => {
                let items = serde_json::from_str::<Vec<Value>>(body).unwrap().len();
                assert_eq!(p.changes.len() + p.ignored + 1, items, "{body}");
                let e = p.invalid[0].clone();
                assert!(e.field.starts_with(&format!("[{}]", e.index)), "{e:?}");
                (e.field, e.reason)
            }
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn malformed_items_are_refused_naming_the_field() {
        let good = json!({"eventId": 1, "subscriptionId": 2, "portalId": 62515,
            "occurredAt": 1_793_610_000_000_i64, "subscriptionType": "deal.propertyChange",
            "objectId": 7, "propertyName": "amount", "propertyValue": "1"});
        let with = |k: &str, v: Value| {
            let mut e = good.clone();
            e[k] = v;
            json!([good, e]).to_string()
        };
        let without = |k: &str| {
            let mut e = good.clone();
            e.as_object_mut().unwrap().remove(k);
            json!([e]).to_string()
        };
        assert_eq!(bad("not json").0, "body");
        assert!(bad(&good.to_string()).1.contains("array"));
        assert_eq!(bad("[1]").0, "[0]");
        assert_eq!(bad(&json!(vec![good.clone(); 1001]).to_string()).0, "body");
        let (field, reason) = bad(&with("occurredAt", json!("yesterday")));
        assert_eq!(
            (field.as_str(), reason.as_str()),
            (
                "[1].occurredAt",
                "expected milliseconds since the epoch, got \"yesterday\""
            )
        );
        for (body, field) in [
            (with("occurredAt", json!(1.5)), "[1].occurredAt"),
            (with("occurredAt", json!(-5)), "[1].occurredAt"),
            (without("occurredAt"), "[0].occurredAt"),
            (with("objectId", json!(-7)), "[1].objectId"),
            (with("portalId", json!("62x")), "[1].portalId"),
            (without("eventId"), "[0].eventId"),
            (without("propertyName"), "[0].propertyName"),
            (without("propertyValue"), "[0].propertyValue"),
            (with("propertyValue", json!([1])), "[1].propertyValue"),
            (with("subscriptionType", json!(5)), "[1].subscriptionType"),
        ] {
            assert_eq!(bad(&body).0, field, "{body}");
        }
        let deals = |body: String| -> Vec<DealChange> {
            let changes = parse(body.as_bytes()).unwrap().changes.into_iter();
            changes
                .map(|c| match c {
                    Change::Deal(d) => d,
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        // Ids as numeric strings; an empty value clears the property.
        let [a, b] = &deals(with("objectId", json!("7")))[..] else {
            panic!()
        };
        assert_eq!((&a.key, &a.dedupe), (&b.key, &b.dedupe));
        assert_eq!(a.dedupe, "62515:2:1:1793610000000:7:amount");
        let [_, cleared] = &deals(with("propertyValue", json!("")))[..] else {
            panic!()
        };
        assert_eq!(cleared.props, [("amount".to_owned(), None)]);
        // The same eventId about another deal is another message.
        let [a, b] = &deals(with("objectId", json!(8)))[..] else {
            panic!()
        };
        assert_ne!(a.dedupe, b.dedupe);
        // Other objects and deal events Pacer does not use are counted, not refused.
        let parsed = parse(DOC_V1_BODY.as_bytes()).unwrap();
        assert_eq!((parsed.changes.len(), parsed.ignored), (0, 1));
        assert_eq!(parse(MIXED.as_bytes()).unwrap().ignored, 3);
        let [gone] = &deals(MIXED.to_owned())[..] else {
            panic!()
        };
        assert!(gone.deleted && gone.props.is_empty() && gone.key.deal == "789");
    }

    #[test]
    fn dates_probabilities_and_fallbacks() {
        let tz = chrono_tz::Europe::Berlin;
        let dates = "1795734000000=2026-11-27 2026-11-03=2026-11-03 2026-11-03T00:00:00=2026-11-03 \
            2026-11-02T23:30:00Z=2026-11-03 soon= 2026-13-01= 2026-11-03x= 99999999999999999999999= =";
        for (text, want) in dates.split_whitespace().filter_map(|c| c.split_once('=')) {
            assert_eq!(date_of(text, tz).unwrap_or_default(), want, "{text}");
        }
        let percents =
            "0.2=20 0.125=13 1=100 1.0=100 0=0 .05=5 -0.1=0 12=100 0.2000000000000000111=20 \
            abc= .= = 1e-1=";
        for (text, want) in percents
            .split_whitespace()
            .filter_map(|c| c.split_once('='))
        {
            assert_eq!(
                percent_of(text).map(|p| p.to_string()).unwrap_or_default(),
                want,
                "{text}"
            );
        }
        let mut r = DealRecord::default();
        let mut set = |k: &str, v: &str| {
            r.props.insert(
                k.into(),
                Prop {
                    value: Some(v.into()),
                    at_ms: 1,
                    seen: Vec::new(),
                },
            );
            facts(&cfg(), &r, &org())
        };
        set("hubspot_owner_id", "999");
        set("hs_deal_stage_probability", "0.4");
        let f = set("deal_currency_code", "usd");
        assert_eq!(
            (f.rep, f.account.as_deref(), f.customer_kind.as_deref()),
            (None, Some("unassigned"), Some("new"))
        );
        assert_eq!(
            (f.probability, f.currency.as_deref(), f.status),
            (Some(40), Some("USD"), DealStatus::Open)
        );
        let f = set("dealstage", "qualifiedtobuy");
        assert_eq!(
            (f.stage.as_deref(), f.probability),
            (Some("qualifiedtobuy"), Some(40))
        );
        set("closed_lost_reason", "budget");
        set("dealtype", "existingbusiness");
        let f = set("dealstage", "closedlost");
        assert_eq!(
            (f.status, f.lost_reason.as_deref()),
            (DealStatus::Lost, Some("budget"))
        );
        assert_eq!(
            (f.customer_kind.as_deref(), f.closed_on),
            (Some("existing"), None)
        );
    }

    /// A `deal.propertyChange` event about deal 18274510231 as HubSpot posts it.
    fn change(event_id: u64, at_ms: i64, name: &str, value: &str) -> Value {
        json!({"eventId": event_id, "subscriptionId": 2881790, "portalId": 62515,
            "appId": 1160452, "occurredAt": at_ms, "subscriptionType": "deal.propertyChange",
            "attemptNumber": 0, "objectId": 18274510231_u64, "propertyName": name,
            "propertyValue": value, "changeSource": "CRM_UI", "sourceId": "userId:9012345"})
    }

    /// The account of a deal told these events (in this order).
    fn account_after(cfg: &HubspotConfig, events: &[&Value]) -> String {
        let mut record = DealRecord::default();
        for c in parse(json!(events).to_string().as_bytes()).unwrap().changes {
            let Change::Deal(c) = c else { panic!("{c:?}") };
            record.merge(&c);
        }
        facts(cfg, &record, &org()).account.unwrap_or_default()
    }

    #[test]
    fn the_account_is_the_associated_company_by_default() {
        let (cfg, at) = (cfg(), 1_793_610_000_000_i64);
        let deal_name = change(1, at, "dealname", "Acme analytics rollout 2027");
        let name = change(2, at, "company_name", "Acme GmbH");
        let id = change(3, at, "hs_primary_associated_company", "9876543210");
        // The company's name, in whatever order the events come.
        for events in [[&deal_name, &id, &name], [&name, &id, &deal_name]] {
            assert_eq!(account_after(&cfg, &events), "Acme GmbH");
        }
        // No name: the company's id (one account per company), then the deal's name.
        assert_eq!(
            account_after(&cfg, &[&deal_name, &id]),
            "hubspot-company-9876543210"
        );
        assert_eq!(
            account_after(&cfg, &[&deal_name]),
            "Acme analytics rollout 2027"
        );
        assert_eq!(account_after(&cfg, &[]), "unassigned");
        // A name cleared later is no name.
        let cleared = change(4, at + 60_000, "company_name", "");
        assert_eq!(
            account_after(&cfg, &[&deal_name, &id, &name, &cleared]),
            "hubspot-company-9876543210"
        );
        // A configured account_field wins when the deal has it, else the chain goes on.
        let own = from(
            r#"client_secrets = ["s"]
            account_field = "key_account""#,
        )
        .unwrap();
        let key_account = change(5, at, "key_account", "ACME Group");
        assert_eq!(
            account_after(&own, &[&deal_name, &name, &key_account]),
            "ACME Group"
        );
        assert_eq!(account_after(&own, &[&deal_name, &name]), "Acme GmbH");
        // End to end: the deal the sequence opens is the company's.
        let mut events: Vec<Value> = serde_json::from_str(SEQUENCE).unwrap();
        events[1]["propertyValue"] = json!("Acme analytics rollout 2027");
        events.push(change(6, at, "company_name", "Acme GmbH"));
        let mut record = DealRecord::default();
        let told = feed(&cfg, &mut record, &Value::Array(events).to_string());
        let opened: Vec<_> = told.iter().filter(|e| e["type"] == "deal_opened").collect();
        assert_eq!(opened.len(), 1, "{told:?}");
        assert_eq!(opened[0]["account"], "Acme GmbH");
    }

    /// Values that reach every branch of `parse` and `facts`, and arbitrary ones.
    fn leaf() -> impl Strategy<Value = Value> {
        let words = "deal.creation deal.propertyChange deal.deletion contact.creation \
            object.propertyChange 0-3 12 -1 2026-11-03 0.5 closedwon hubspot_owner_id dealstage \
            closedate amount hs_deal_stage_probability 1795734000000";
        let words: Vec<Value> = words.split_whitespace().map(Value::from).collect();
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            (0..2_000_000_000_000_i64).prop_map(Value::from),
            prop::sample::select(words),
            ".{0,12}".prop_map(Value::from),
        ]
    }

    /// A deal event with arbitrary type, property and value, some fields replaced by
    /// arbitrary values or dropped.
    fn event() -> impl Strategy<Value = Value> {
        let keys = "eventId subscriptionId portalId occurredAt subscriptionType objectId \
            objectTypeId propertyName propertyValue attemptNumber";
        let keys: Vec<&str> = keys.split_whitespace().collect();
        let changed = prop::collection::btree_map(prop::sample::select(keys), leaf(), 0..2);
        let kinds = prop::sample::select(vec![
            "deal.creation",
            "deal.propertyChange",
            "deal.propertyChange",
            "deal.deletion",
        ]);
        let names = "dealstage closedate amount hubspot_owner_id hs_deal_stage_probability \
            dealtype dealname company_name hs_primary_associated_company";
        let names = prop::sample::select(names.split_whitespace().collect::<Vec<_>>());
        (
            changed,
            prop_oneof![3 => kinds.prop_map(Value::from), 1 => leaf()],
            names,
            leaf(),
        )
            .prop_map(|(changed, kind, name, value)| {
                let mut e = json!({"eventId": 1, "subscriptionId": 2, "portalId": 3, "objectId": 4,
                "occurredAt": 1_795_734_000_000_i64, "subscriptionType": kind,
                "propertyName": name, "propertyValue": value});
                if let Value::Object(m) = &mut e {
                    for (k, v) in changed {
                        if v.is_null() {
                            m.remove(k);
                        } else {
                            m.insert(k.to_owned(), v);
                        }
                    }
                }
                e
            })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let r = parse(&bytes);
            prop_assert!(matches!(r, Ok(_) | Err(WebhookError::BadRequest { .. })), "{r:?}");
            if let Ok(p) = r {
                prop_assert!(p.invalid.iter().all(|e| !e.reason.is_empty()));
            }
        }

        #[test]
        fn arbitrary_event_arrays_never_panic(items in prop::collection::vec(event(), 1..4)) {
            let (cfg, mut record) = (cfg(), DealRecord::default());
            match parse(Value::Array(items).to_string().as_bytes()) {
                Ok(parsed) => for change in parsed.changes {
                    if let Change::Deal(c) = change {
                        record.merge(&c);
                        facts(&cfg, &record, &org());
                    }
                },
                Err(WebhookError::BadRequest { .. }) => {}
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
    }
}
