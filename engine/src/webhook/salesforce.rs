//! Salesforce Outbound Messages: the SOAP 1.1 `notifications` call a workflow rule
//! or flow sends when an Opportunity changes, parsed into one [`DealChange`] per
//! Opportunity (all the fields the outbound message selects, under their API names),
//! and the mapping of a mirrored Opportunity to [`DealFacts`].
//!
//! Salesforce retries a message until it is acknowledged with [`ACK_RESPONSE`], so
//! each change is deduplicated by its notification `Id`, which stays the same across
//! retries. Salesforce does not sign the body: a message is taken when its
//! `OrganizationId` is the configured one, and the endpoint is best kept behind
//! Salesforce's client certificate or IP ranges.
//!
//! The outbound message should select at least `Id`, `Amount`, `CloseDate`,
//! `StageName`, `IsWon`, `IsClosed`, `OwnerId` and `SystemModstamp` (and `Type`,
//! `AccountId`, `Account_Name__c`, `Probability`, `CurrencyIsoCode` where used).
//! Salesforce sends nothing when a record is deleted, so deletions do not reach
//! Pacer this way.
//!
//! **The account.** An Outbound Message carries the Opportunity's own fields only,
//! so `Account.Name` is not among them: the usual way to send it is a text formula
//! field on Opportunity, `Account_Name__c` = `Account.Name`, selected in the message.
//! The account is, first found: `account_field` when configured; that
//! [`ACCOUNT_NAME_FIELD`]; `Account.Name`, when a message carries the related
//! Account as a nested `<sf:Account>` element (each nested element's fields are
//! kept as `<parent>.<field>`); the raw `AccountId`; `unassigned`.

use serde::Deserialize;

use super::{
    plain_decimal, Change, Crm, DealChange, DealFacts, DealKey, DealRecord, DealStatus, Mapping,
    OrgContext, Parsed, WebhookError,
};

const SOAP_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const OUTBOUND_NS: &str = "http://soap.sforce.com/2005/09/outbound";
const SOBJECT_NS: &str = "urn:sobject.enterprise.soap.sforce.com";
const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";
const SECTION: &str = "webhooks.salesforce";
/// An Outbound Message carries at most this many notifications.
const NOTIFICATIONS_MAX: usize = 100;
/// Bounds the memory a hostile body can take beyond its size.
const NODES_MAX: u32 = 1_000_000;
/// The Opportunity field read as the account's name by default: a text formula
/// field `Account.Name` the organisation adds (see the module docs).
pub const ACCOUNT_NAME_FIELD: &str = "Account_Name__c";

/// The answer that tells Salesforce the message was taken (HTTP 200); anything else
/// makes it retry.
pub const ACK_RESPONSE: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">\
<soapenv:Body><notificationsResponse xmlns=\"http://soap.sforce.com/2005/09/outbound\">\
<Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>";

/// A SOAP 1.1 Fault (`soapenv:Client`) carrying `message`, for a refused message.
pub fn fault_response(message: &str) -> String {
    let mut text = String::with_capacity(message.len());
    for c in message.chars() {
        match c {
            '&' => text.push_str("&amp;"),
            '<' => text.push_str("&lt;"),
            '>' => text.push_str("&gt;"),
            '"' => text.push_str("&quot;"),
            '\'' => text.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c < ' ' && !matches!(c, '\t' | '\n' | '\r'))
                || matches!(c, '\u{FFFE}' | '\u{FFFF}') =>
            {
                text.push('\u{FFFD}')
            }
            c => text.push(c),
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<soapenv:Envelope xmlns:soapenv=\"{SOAP_NS}\"><soapenv:Body><soapenv:Fault>\
<faultcode>soapenv:Client</faultcode><faultstring>{text}</faultstring>\
</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
}

/// `[webhooks.salesforce]`: the organisation, the Opportunity fields read, and the
/// shared [`Mapping`] (with Salesforce defaults: customer kind from `Type`; the
/// account, unless `account_field` is set, from [`ACCOUNT_NAME_FIELD`], else
/// `Account.Name`, else `AccountId`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SalesforceConfig {
    /// The organisation whose messages are accepted (15 or 18 characters; compared by
    /// the first 15, which is the id).
    pub organization_id: String,
    pub mapping: Mapping,
    /// Default `Amount`.
    pub amount_field: String,
    /// Default `CloseDate`.
    pub close_date_field: String,
    /// Default `StageName`.
    pub stage_field: String,
    /// Default `OwnerId`.
    pub owner_field: String,
    /// Default `CurrencyIsoCode` (sent by multi-currency organisations only).
    pub currency_field: String,
    /// The datetime a change is stamped with. Default `SystemModstamp`; then
    /// `LastModifiedDate`, then the time the message was received.
    pub modified_field: String,
    /// The field holding why a deal was lost, if any (default none).
    pub lost_reason_field: Option<String>,
    /// A secret the Outbound Message's endpoint URL carries as `?token=...`
    /// (Outbound Messages are not signed; the organisation id is no secret).
    pub endpoint_token: Option<String>,
}

/// The keys of the section that are not the shared [`Mapping`]'s.
const OWN_KEYS: &[&str] = &[
    "organization_id",
    "amount_field",
    "close_date_field",
    "stage_field",
    "owner_field",
    "currency_field",
    "modified_field",
    "lost_reason_field",
    "endpoint_token",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Own {
    organization_id: Option<String>,
    amount_field: Option<String>,
    close_date_field: Option<String>,
    stage_field: Option<String>,
    owner_field: Option<String>,
    currency_field: Option<String>,
    modified_field: Option<String>,
    lost_reason_field: Option<String>,
    endpoint_token: Option<String>,
}

impl SalesforceConfig {
    /// Reads `[webhooks.salesforce]`; errors name the key
    /// (`webhooks.salesforce.organization_id: ...`).
    pub fn from_toml(value: toml::Value) -> Result<Self, String> {
        let (own, mut mapping) = super::split_section(SECTION, value, OWN_KEYS)?;
        let own = Own::deserialize(toml::Value::Table(own))
            .map_err(|e| format!("{SECTION}: {}", e.to_string().trim_end()))?;
        let organization_id = own.organization_id.ok_or_else(|| {
            format!("{SECTION}.organization_id: missing; set the Salesforce organisation id (Setup → Company Information)")
        })?;
        if org15(&organization_id).is_none() {
            return Err(format!(
                "{SECTION}.organization_id: {organization_id:?} is not a Salesforce id (15 or 18 letters and digits)"
            ));
        }
        let field = |key: &str, value: Option<String>, default: &str| match value {
            Some(v) if v.trim().is_empty() => {
                Err(format!("{SECTION}.{key}: the field name is empty"))
            }
            Some(v) => Ok(v.trim().to_owned()),
            None => Ok(default.to_owned()),
        };
        let lost_reason_field = match own.lost_reason_field {
            Some(v) => Some(field("lost_reason_field", Some(v), "")?),
            None => None,
        };
        mapping
            .customer_kind_field
            .get_or_insert_with(|| "Type".into());
        if mapping.new_customer_values.is_empty() {
            mapping.new_customer_values = vec!["New Customer".into()];
        }
        Ok(SalesforceConfig {
            organization_id: organization_id.trim().to_owned(),
            mapping,
            amount_field: field("amount_field", own.amount_field, "Amount")?,
            close_date_field: field("close_date_field", own.close_date_field, "CloseDate")?,
            stage_field: field("stage_field", own.stage_field, "StageName")?,
            owner_field: field("owner_field", own.owner_field, "OwnerId")?,
            currency_field: field("currency_field", own.currency_field, "CurrencyIsoCode")?,
            modified_field: field("modified_field", own.modified_field, "SystemModstamp")?,
            lost_reason_field,
            endpoint_token: match own.endpoint_token {
                Some(t)
                    if t.len() < 16
                        || !t
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
                {
                    return Err(format!(
                        "{SECTION}.endpoint_token: needs at least 16 letters, digits, - or _"
                    ))
                }
                t => t,
            },
        })
    }
}

/// The 15-character form of a Salesforce id given in its 15- or 18-character form.
fn org15(id: &str) -> Option<&str> {
    let id = id.trim();
    let ok = matches!(id.len(), 15 | 18) && id.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then(|| &id[..15])
}

/// An element's own text (its text children, joined).
fn text_of(node: roxmltree::Node) -> String {
    node.children()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text())
        .collect()
}

/// The first child element named `name` in `ns`.
fn child<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    ns: &str,
    name: &str,
) -> Option<roxmltree::Node<'a, 'i>> {
    node.children().find(|c| c.has_tag_name((ns, name)))
}

/// Whether an `sObject` is an Opportunity (`xsi:type="sf:Opportunity"`).
fn is_opportunity(sobject: roxmltree::Node) -> bool {
    let Some(ty) = sobject.attribute((XSI_NS, "type")) else {
        return false;
    };
    let (prefix, local) = match ty.trim().split_once(':') {
        Some((p, l)) => (Some(p), l),
        None => (None, ty.trim()),
    };
    local == "Opportunity" && sobject.lookup_namespace_uri(prefix) == Some(SOBJECT_NS)
}

/// Parses an Outbound Message: one [`Change::Deal`] per Opportunity notification, the
/// others counted as ignored. `received_ms` stamps changes without a modified time.
pub fn parse(
    cfg: &SalesforceConfig,
    body: &[u8],
    received_ms: i64,
) -> Result<Parsed, WebhookError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| WebhookError::bad("body", format!("not UTF-8 ({e})")))?;
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: NODES_MAX,
    };
    let doc = roxmltree::Document::parse_with_options(text, options)
        .map_err(|e| WebhookError::bad("body", format!("not well-formed XML: {e}")))?;
    let envelope = doc.root_element();
    if !envelope.has_tag_name((SOAP_NS, "Envelope")) {
        return Err(WebhookError::bad(
            "Envelope",
            format!(
                "the root element is {:?}; an Outbound Message is a SOAP 1.1 Envelope ({SOAP_NS})",
                envelope.tag_name().name()
            ),
        ));
    }
    let soap_body = child(envelope, SOAP_NS, "Body")
        .ok_or_else(|| WebhookError::bad("Envelope.Body", "missing"))?;
    let notifications = child(soap_body, OUTBOUND_NS, "notifications").ok_or_else(|| {
        WebhookError::bad(
            "notifications",
            format!("the SOAP Body holds no notifications element of {OUTBOUND_NS}"),
        )
    })?;
    let org_id = child(notifications, OUTBOUND_NS, "OrganizationId")
        .map(text_of)
        .ok_or_else(|| WebhookError::bad("notifications.OrganizationId", "missing"))?;
    let tenant = org15(&cfg.organization_id).unwrap_or(&cfg.organization_id);
    if org15(&org_id) != Some(tenant) {
        return Err(WebhookError::Unauthorized(format!(
            "OrganizationId {:?} is not the configured organisation",
            org_id.trim()
        )));
    }
    let items: Vec<_> = notifications
        .children()
        .filter(|c| c.has_tag_name((OUTBOUND_NS, "Notification")))
        .collect();
    if items.len() > NOTIFICATIONS_MAX {
        return Err(WebhookError::bad(
            "notifications.Notification",
            format!(
                "{} notifications; a message carries at most {NOTIFICATIONS_MAX}",
                items.len()
            ),
        ));
    }
    let mut parsed = Parsed::default();
    for (i, item) in items.into_iter().enumerate() {
        match notification(cfg, tenant, i, item, received_ms) {
            Ok(Some(change)) => parsed.push(i, Change::Deal(change)),
            Ok(None) => parsed.ignored += 1,
            Err(e) => parsed.refuse(i, e)?,
        }
    }
    Ok(parsed)
}

/// One notification: its Opportunity's change, `None` for another object.
fn notification(
    cfg: &SalesforceConfig,
    tenant: &str,
    i: usize,
    item: roxmltree::Node,
    received_ms: i64,
) -> Result<Option<DealChange>, WebhookError> {
    let path = format!("notifications.Notification[{i}]");
    let bad = |field: &str, reason: String| WebhookError::bad(format!("{path}{field}"), reason);
    let id = child(item, OUTBOUND_NS, "Id").map(text_of);
    let id = id.ok_or_else(|| bad(".Id", "missing".into()))?;
    let id = id.trim();
    if id.is_empty() || id.chars().any(char::is_control) {
        return Err(bad(".Id", format!("{id:?} is not a notification id")));
    }
    let sobject = child(item, OUTBOUND_NS, "sObject");
    let sobject = sobject.ok_or_else(|| bad(".sObject", "missing".into()))?;
    if !is_opportunity(sobject) {
        return Ok(None);
    }
    let mut props = Vec::new();
    let value_of = |field: roxmltree::Node| {
        let nil = matches!(field.attribute((XSI_NS, "nil")), Some("true" | "1"));
        Some(text_of(field)).filter(|v| !nil && !v.trim().is_empty())
    };
    for field in sobject.children().filter(|c| c.is_element()) {
        let name = field.tag_name().name();
        props.push((name.to_owned(), value_of(field)));
        // A related record (`<sf:Account><sf:Name>..`): its fields as `Account.Name`.
        for inner in field.children().filter(|c| c.is_element()) {
            let inner_name = inner.tag_name().name();
            props.push((format!("{name}.{inner_name}"), value_of(inner)));
        }
    }
    let get = |name: &str| {
        props
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    };
    let deal = get("Id").map(str::trim).unwrap_or_default();
    if deal.is_empty() {
        return Err(bad(".sObject.Id", "missing".into()));
    }
    if org15(deal).is_none() {
        let reason = format!("{deal:?} is not a Salesforce id (15 or 18 letters and digits)");
        return Err(bad(".sObject.Id", reason));
    }
    let mut at_ms = received_ms;
    for name in [cfg.modified_field.as_str(), "LastModifiedDate"] {
        if let Some(t) = get(name) {
            let reason = || format!("{t:?} is not an ISO 8601 datetime");
            at_ms = super::ms_of_rfc3339(t)
                .ok_or_else(|| bad(&format!(".sObject.{name}"), reason()))?;
            break;
        }
    }
    let key = DealKey {
        crm: Crm::Salesforce,
        tenant: tenant.to_owned(),
        deal: deal.to_owned(),
    };
    let deal = DealChange {
        key,
        at_ms,
        props,
        deleted: false,
        dedupe: format!("notification:{id}"),
    };
    Ok(Some(deal))
}

/// The notifications of a message as the dead-letter store keeps them: for each, the
/// message with only that notification (the text before the first and after the
/// last kept as sent), itself an Outbound Message [`parse`] takes. A body that is not
/// one is kept whole.
pub fn split(body: &[u8]) -> Vec<String> {
    let whole = || vec![String::from_utf8_lossy(body).into_owned()];
    let Ok(text) = std::str::from_utf8(body) else {
        return whole();
    };
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: NODES_MAX,
    };
    let Ok(doc) = roxmltree::Document::parse_with_options(text, options) else {
        return whole();
    };
    let items: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name((OUTBOUND_NS, "Notification")))
        .filter(|n| {
            n.parent()
                .is_some_and(|p| p.has_tag_name((OUTBOUND_NS, "notifications")))
        })
        .map(|n| n.range())
        .collect();
    let (Some(first), Some(last)) = (items.first(), items.last()) else {
        return whole();
    };
    let (head, tail) = (&text[..first.start], &text[last.end..]);
    items
        .iter()
        .map(|r| format!("{head}{}{tail}", &text[r.clone()]))
        .collect()
}

/// A percent from Salesforce's `Probability` (`"10.0"`, `"25.5"` → 26): rounded half
/// up, clamped to 0–100, without floats.
fn percent(text: &str) -> Option<u8> {
    let plain = plain_decimal(text)?;
    if plain.starts_with('-') {
        return Some(0);
    }
    let plain = plain.trim_start_matches('+');
    let (int, frac) = plain.split_once('.').unwrap_or((plain, ""));
    let int = int.trim_start_matches('0');
    let whole: u32 = if int.len() > 3 {
        1000
    } else {
        int.parse().unwrap_or(0)
    };
    let up = u32::from(frac.as_bytes().first().is_some_and(|d| *d >= b'5'));
    u8::try_from((whole + up).min(100)).ok()
}

/// `"true"` / `"1"`: a Salesforce checkbox that is ticked.
fn ticked(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The Pacer rep of a Salesforce User id, matching configured ids of either length.
fn rep_of(mapping: &Mapping, owner: &str) -> Option<String> {
    if let Some(rep) = mapping.owners.get(owner) {
        return Some(rep.clone());
    }
    let short = org15(owner)?;
    mapping
        .owners
        .iter()
        .find(|(id, _)| org15(id) == Some(short))
        .map(|(_, rep)| rep.clone())
}

/// What the mirrored Opportunity says, in Pacer's terms (see the module's mapping;
/// the account: `account_field`, [`ACCOUNT_NAME_FIELD`], `Account.Name`,
/// `AccountId`, `unassigned`).
/// The fields [`facts`] reads as the opportunity goes, whose every change the
/// mirror keeps with its time (what it is — account, kind, product, region — is
/// read as it is now; `SystemModstamp`, which changes with every message, is not).
pub fn tracked(cfg: &SalesforceConfig) -> impl Fn(&str) -> bool + '_ {
    move |name| {
        [
            &cfg.owner_field,
            &cfg.amount_field,
            &cfg.currency_field,
            &cfg.close_date_field,
            &cfg.stage_field,
        ]
        .into_iter()
        .any(|f| f == name)
            || matches!(name, "IsWon" | "IsClosed" | "Probability")
            || cfg.lost_reason_field.as_deref() == Some(name)
    }
}

pub fn facts(cfg: &SalesforceConfig, record: &DealRecord, _org: &OrgContext) -> DealFacts {
    let m = &cfg.mapping;
    let stage_id = record.prop(&cfg.stage_field);
    let currency = record.prop(&cfg.currency_field).map(str::to_owned);
    let by_stage = m.stage_status(stage_id);
    let won = ticked(record.prop("IsWon")) || by_stage == Some(DealStatus::Won);
    let lost = !won && (ticked(record.prop("IsClosed")) || by_stage == Some(DealStatus::Lost));
    let status = match (won, lost) {
        (true, _) => DealStatus::Won,
        (false, true) => DealStatus::Lost,
        _ => DealStatus::Open,
    };
    let close = record.prop(&cfg.close_date_field).map(str::to_owned);
    let rep = record.prop(&cfg.owner_field).and_then(|o| rep_of(m, o));
    DealFacts {
        unmapped_owner: DealFacts::unmapped_owner_of(record, &cfg.owner_field, &rep),
        rep,
        account: Some(
            record
                .field(&m.account_field)
                .or_else(|| {
                    [ACCOUNT_NAME_FIELD, "Account.Name", "AccountId"]
                        .into_iter()
                        .find_map(|f| record.prop(f))
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| "unassigned".into()),
        ),
        customer_kind: Some(m.customer_kind_of(record)),
        product: record.field(&m.product_field),
        region: record.field(&m.region_field),
        amount: record.prop(&cfg.amount_field).map(str::to_owned),
        currency,
        expected_close: close.clone(),
        stage: stage_id.map(|s| m.stage_name(s)),
        probability: m
            .stage_probability(stage_id)
            .or_else(|| record.prop("Probability").and_then(percent)),
        status,
        closed_on: if won { close } else { None },
        lost_reason: record.field(&cfg.lost_reason_field),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::amount_text;
    use crate::webhook::apply;
    use pacer_projections::money::Currency;
    use serde_json::Value;
    use std::collections::BTreeMap;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!(
                "../../../tests/fixtures/webhooks/salesforce/",
                $name
            ))
        };
    }
    const PROSPECTING: &str = fixture!("opportunity_prospecting.xml");
    const CLOSED_WON: &str = fixture!("opportunity_closed_won.xml");
    const REOPENED: &str = fixture!("opportunity_reopened.xml");
    const BATCH: &str = fixture!("batch_three.xml");
    const NO_ID: &str = fixture!("notification_without_id.xml");
    const RECEIVED: i64 = 1_790_000_000_000;

    fn cfg() -> SalesforceConfig {
        let toml = r#"organization_id = "00D5g000004EXAM"
            owners = { "0055g00000AbCdE" = "ana" }"#;
        SalesforceConfig::from_toml(toml::from_str(toml).unwrap()).unwrap()
    }

    fn org() -> OrgContext {
        let currency = Currency::from_code("EUR").unwrap();
        let timezone = chrono_tz::Europe::Berlin;
        OrgContext { currency, timezone }
    }

    fn deals(body: &str) -> Vec<DealChange> {
        let parsed = parse(&cfg(), body.as_bytes(), RECEIVED).unwrap();
        let deal = |c: Change| match c {
            Change::Deal(d) => d,
            Change::Event(e) => panic!("unexpected event {e}"),
        };
        parsed.changes.into_iter().map(deal).collect()
    }

    fn facts_of(change: &DealChange) -> DealFacts {
        let mut record = DealRecord::default();
        record.merge(change);
        facts(&cfg(), &record, &org())
    }

    /// A message through the mirror and `reconcile`, as the HTTP side does it; every
    /// event must decode.
    fn feed(records: &mut BTreeMap<DealKey, DealRecord>, xml: &str) -> Vec<Value> {
        // As the endpoint does it: the whole message, then each deal once.
        let parsed = parse(&cfg(), xml.as_bytes(), RECEIVED).unwrap();
        let cfg = cfg();
        let applied = apply(
            &parsed,
            records,
            |r| facts(&cfg, r, &org()),
            &tracked(&cfg),
            org().currency,
        );
        let out: Vec<Value> = applied
            .unwrap()
            .events
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        // Made durable: nothing stays pending.
        records.values_mut().for_each(|r| r.pending.clear());
        for ev in &out {
            let decoded = crate::wire::decode_value(ev, &crate::wire::Limits::default());
            assert!(decoded.is_ok(), "{ev}: {decoded:?}");
        }
        out
    }

    /// The fields of an event named in `names` (space-separated), space-separated.
    fn get(ev: &Value, names: &str) -> String {
        let field = |n| ev[n].to_string().trim_matches('"').to_owned();
        names.split(' ').map(field).collect::<Vec<_>>().join(" ")
    }

    use crate::webhook::history_tests::without_id;

    #[test]
    fn an_opportunity_opens_then_wins() {
        let mut records = BTreeMap::new();
        let opened = feed(&mut records, PROSPECTING);
        assert_eq!(opened.len(), 1);
        let (names, values) = (
            "type occurred_at rep amount currency expected_close",
            "deal_opened 2026-11-03T10:00:00.000Z ana 12500.0 EUR 2026-11-20",
        );
        assert_eq!(get(&opened[0], names), values);
        without_id(&opened[0]);
        let names = "account customer_kind probability";
        assert_eq!(get(&opened[0], names), "0015g00000Acme1AAA new 10");
        let won = feed(&mut records, CLOSED_WON);
        assert_eq!(won.len(), 1);
        let names = "type rep amount currency closed_on customer_kind occurred_at";
        let values = "deal_won ana 12500.0 EUR 2026-11-25 new 2026-11-25T15:30:00.000Z";
        assert_eq!(get(&won[0], names), values);
    }

    #[test]
    fn the_account_is_the_account_name_when_the_message_carries_it() {
        let with = |extra: &str| PROSPECTING.replace("<sf:Amount>", &format!("{extra}<sf:Amount>"));
        let account = |cfg: &SalesforceConfig, xml: &str| {
            let mut record = DealRecord::default();
            for c in parse(cfg, xml.as_bytes(), RECEIVED).unwrap().changes {
                let Change::Deal(d) = c else { panic!("{c:?}") };
                record.merge(&d);
            }
            facts(cfg, &record, &org()).account.unwrap_or_default()
        };
        let cfg = cfg();
        // The usual way: a formula field Account_Name__c = Account.Name, sent.
        let formula = with("<sf:Account_Name__c>Acme GmbH</sf:Account_Name__c>\n     ");
        assert_eq!(account(&cfg, &formula), "Acme GmbH");
        // A message carrying the related Account itself.
        let nested = with(
            "<sf:Account xsi:type=\"sf:Account\"><sf:Id>0015g00000Acme1AAA</sf:Id>\
             <sf:Name>Acme Corporation</sf:Name></sf:Account>",
        );
        assert_eq!(account(&cfg, &nested), "Acme Corporation");
        let both = with(
            "<sf:Account_Name__c>Acme GmbH</sf:Account_Name__c><sf:Account xsi:type=\"sf:Account\">\
             <sf:Name>Acme Corporation</sf:Name></sf:Account>",
        );
        assert_eq!(account(&cfg, &both), "Acme GmbH");
        // Without a name (or a nil one): the raw AccountId, then unassigned.
        let nil = with("<sf:Account_Name__c xsi:nil=\"true\"/>");
        assert_eq!(account(&cfg, &nil), "0015g00000Acme1AAA");
        assert_eq!(account(&cfg, PROSPECTING), "0015g00000Acme1AAA");
        let no_account = PROSPECTING.replace("<sf:AccountId>0015g00000Acme1AAA</sf:AccountId>", "");
        assert_eq!(account(&cfg, &no_account), "unassigned");
        // A configured account_field wins when the message has it, else the chain goes on.
        let toml = r#"organization_id = "00D5g000004EXAM"
            account_field = "Key_Account__c""#;
        let own = SalesforceConfig::from_toml(toml::from_str(toml).unwrap()).unwrap();
        let key = with(
            "<sf:Key_Account__c>ACME Group</sf:Key_Account__c>\
             <sf:Account_Name__c>Acme GmbH</sf:Account_Name__c>",
        );
        assert_eq!(account(&own, &key), "ACME Group");
        assert_eq!(account(&own, &formula), "Acme GmbH");
        // End to end: the deal opens with the account's name.
        let opened = feed(&mut BTreeMap::new(), &formula);
        assert_eq!(get(&opened[0], "type account"), "deal_opened Acme GmbH");
    }

    #[test]
    fn a_batch_gives_one_change_per_notification() {
        let changes = deals(BATCH);
        let keys: Vec<_> = changes
            .iter()
            .map(|c| format!("{} {}", c.key.deal, c.dedupe))
            .collect();
        assert_eq!(
            keys,
            [
                "0065g0000Batch1AAA notification:04l5g000001NtB1AAC",
                "0065g0000Batch2AAA notification:04l5g000001NtB2AAC",
                "0065g0000Batch3AAA notification:04l5g000001NtB3AAC",
            ]
        );
        let amount = ("Amount".to_owned(), Some("1.25E7".to_owned()));
        assert!(changes[0].props.contains(&amount));
        let f: Vec<_> = changes.iter().map(facts_of).collect();
        assert_eq!(f[0].customer_kind.as_deref(), Some("existing"));
        let status = [f[0].status, f[1].status, f[2].status];
        assert_eq!(
            status,
            [DealStatus::Open, DealStatus::Lost, DealStatus::Open]
        );
        assert_eq!([f[0].probability, f[2].probability], [Some(20), Some(61)]);
        // The lost deal was never told to Pacer, so it is not lost there either.
        let events = feed(&mut BTreeMap::new(), BATCH);
        let types: Vec<_> = events.iter().map(|e| get(e, "type")).collect();
        assert_eq!(types, ["deal_opened", "deal_opened"]);
        // Salesforce's E notation reaches Pacer spelled out.
        assert_eq!(events[0]["amount"], "12500000");
    }

    #[test]
    fn a_retry_changes_nothing_and_a_reopened_win_is_voided() {
        let mut records = BTreeMap::new();
        feed(&mut records, PROSPECTING);
        let won = feed(&mut records, CLOSED_WON);
        assert!(feed(&mut records, CLOSED_WON).is_empty());
        assert!(feed(&mut records, PROSPECTING).is_empty());
        let reopened = feed(&mut records, REOPENED);
        let voided = format!("event_voided {}", get(&won[0], "event_id"));
        assert_eq!(get(&reopened[0], "type voided_event_id"), voided);
        let changed = "deal_stage_changed Negotiation/Review 90 2026-12-15";
        assert_eq!(
            get(&reopened[1], "type stage probability expected_close"),
            changed
        );
        assert_eq!(reopened.len(), 2);
    }

    #[test]
    fn another_organisation_is_refused_and_the_answers_are_soap() {
        let mut other = cfg();
        other.organization_id = "00D5g000004OTHR".into();
        let refused = parse(&other, PROSPECTING.as_bytes(), RECEIVED);
        assert!(
            matches!(refused, Err(WebhookError::Unauthorized(_))),
            "{refused:?}"
        );
        let ack = roxmltree::Document::parse(ACK_RESPONSE).unwrap();
        let ack = ack
            .descendants()
            .find(|n| n.has_tag_name((OUTBOUND_NS, "Ack")));
        assert_eq!(ack.and_then(|n| n.text()), Some("true"));
        let fault = fault_response("bad <Amount> & \"x\"\u{0}");
        let fault = roxmltree::Document::parse(&fault).unwrap();
        let text = fault.descendants().find(|n| n.has_tag_name("faultstring"));
        assert_eq!(
            text.and_then(|n| n.text()),
            Some("bad <Amount> & \"x\"\u{FFFD}")
        );
    }

    #[test]
    fn other_objects_nil_fields_and_fallback_times() {
        let nil = PROSPECTING.replace(">10.0</sf:Probability>", " xsi:nil=\"true\"/>");
        let (start, end) = (nil.find("<sf:SystemModstamp>"), nil.find("<sf:Type>"));
        let xml = format!("{}{}", &nil[..start.unwrap()], &nil[end.unwrap()..]);
        let c = deals(&xml).remove(0);
        assert!(c.props.contains(&("Probability".into(), None)));
        assert_eq!(
            Some(c.at_ms),
            super::super::ms_of_rfc3339("2026-11-03T10:00:00Z")
        );
        let xml = xml.replace("LastModifiedDate", "CreatedDate");
        assert_eq!(deals(&xml)[0].at_ms, RECEIVED);
        let account = PROSPECTING.replace("sf:Opportunity", "sf:Account");
        let parsed = parse(&cfg(), account.as_bytes(), RECEIVED).unwrap();
        assert_eq!((parsed.changes.len(), parsed.ignored), (0, 1));
    }

    #[test]
    fn config_keys_and_defaults() {
        let full = r#"
            organization_id = "00D5g000004EXAMEAS"
            amount_field = "Amount__c"
            close_date_field = "CloseDate"
            stage_field = "StageName"
            owner_field = "OwnerId"
            currency_field = "CurrencyIsoCode"
            modified_field = "LastModifiedDate"
            lost_reason_field = "Loss_Reason__c"
            product_field = "Product_Line__c"
            won_stages = ["Closed Won"]
            stage_probability = { Prospecting = 10 }
            owners = { "0055g00000AbCdEAAA" = "ana" }
        "#;
        let c = SalesforceConfig::from_toml(toml::from_str(full).unwrap()).unwrap();
        assert_eq!(
            [&*c.amount_field, &*c.modified_field],
            ["Amount__c", "LastModifiedDate"]
        );
        assert_eq!(c.lost_reason_field.as_deref(), Some("Loss_Reason__c"));
        let d = cfg();
        assert_eq!((&*d.stage_field, d.lost_reason_field), ("StageName", None));
        assert_eq!(d.mapping.customer_kind_field.as_deref(), Some("Type"));
        // No account_field unless set: the account's name is looked for first.
        assert_eq!(d.mapping.account_field, None);
        assert_eq!(d.mapping.new_customer_values, ["New Customer"]);
        let err = |t: &str| SalesforceConfig::from_toml(toml::from_str(t).unwrap()).unwrap_err();
        assert!(err("organization_id = \"00D5g000004EXAM\"\nsecret = 1").contains("`secret`"));
        assert!(err("owners = {}").starts_with("webhooks.salesforce.organization_id: missing"));
        assert!(err("organization_id = \"00D-short\"").contains("\"00D-short\""));
    }

    #[test]
    fn bad_bodies_name_the_field() {
        // The message's refusal, or its one refused notification's.
        let field = |body: &str| match parse(&cfg(), body.as_bytes(), RECEIVED) {
            Err(WebhookError::BadRequest { field, .. }) => field,
            Ok(p) if p.invalid.len() == 1 => p.invalid[0].field.clone(),
            other => panic!("{other:?}"),
        };
        let at = |i: usize, f: &str| format!("notifications.Notification[{i}]{f}");
        assert_eq!(field("<Envelope"), "body");
        assert_eq!(
            field(&format!("<notifications xmlns=\"{OUTBOUND_NS}\"/>")),
            "Envelope"
        );
        assert_eq!(field(NO_ID), at(1, ".Id"));
        let no_sf_id = PROSPECTING.replace("<sf:Id>0065g00000XyZ12AAA</sf:Id>", "");
        assert_eq!(field(&no_sf_id), at(0, ".sObject.Id"));
        let bad_time = PROSPECTING.replace("<sf:SystemModstamp>2026", "<sf:SystemModstamp>x");
        assert_eq!(field(&bad_time), at(0, ".sObject.SystemModstamp"));
        let (head, one) = PROSPECTING.split_once("<Notification>").unwrap();
        let (one, tail) = one.split_once("</Notification>").unwrap();
        let many = format!("<Notification>{one}</Notification>").repeat(101);
        assert_eq!(
            field(&format!("{head}{many}{tail}")),
            "notifications.Notification"
        );
        let dtd = PROSPECTING.replace("?>", "?><!DOCTYPE x [<!ENTITY a \"b\">]>");
        assert_eq!(field(&dtd), "body");
    }

    /// Each notification of a message, kept on its own, is a message that parses to
    /// that notification's change alone; a bad one among good ones refuses only itself.
    #[test]
    fn a_message_splits_into_one_message_per_notification() {
        let whole = parse(&cfg(), BATCH.as_bytes(), RECEIVED).unwrap();
        let parts = split(BATCH.as_bytes());
        assert_eq!(parts.len(), whole.changes.len() + whole.ignored);
        let mut again = Vec::new();
        for part in &parts {
            let p = parse(&cfg(), part.as_bytes(), RECEIVED).unwrap();
            assert_eq!(p.changes.len() + p.ignored, 1, "{part}");
            again.extend(p.changes);
        }
        assert_eq!(again, whole.changes);
        let broken = BATCH.replacen("<sf:Id>", "<sf:Id>?", 1);
        let p = parse(&cfg(), broken.as_bytes(), RECEIVED).unwrap();
        assert_eq!((p.invalid.len(), p.invalid[0].index), (1, 0));
        assert_eq!(p.changes.len() + p.ignored, parts.len() - 1);
        assert_eq!(p.items[0], 1);
    }

    #[test]
    fn decimals_without_floats() {
        let plain = ["1.25E7", "1.0E7", "1.5E-4", "12.", "7"].map(plain_decimal);
        let plain = plain.map(|p| p.unwrap_or_else(|| "-".into())).join(" ");
        assert_eq!(plain, "12500000 10000000 0.00015 - 7");
        let amounts = [("12500.0", 0), ("12500.50", 2), ("n/a", 2)];
        let amounts = amounts.map(|(a, e)| amount_text(a, Some(e)));
        assert_eq!(amounts, ["12500", "12500.50", "n/a"]);
        let p = ["10.0", "25.5", "25.49", "-3", "250", "99999999999999", "x"].map(percent);
        let none = None;
        assert_eq!(
            p,
            [
                Some(10),
                Some(26),
                Some(25),
                Some(0),
                Some(100),
                Some(100),
                none
            ]
        );
    }

    fn acceptable(r: &Result<Parsed, WebhookError>) -> bool {
        use WebhookError::{BadRequest, Unauthorized};
        matches!(r, Ok(_) | Err(BadRequest { .. } | Unauthorized(_)))
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(0u8.., 0..512)) {
            proptest::prop_assert!(acceptable(&parse(&cfg(), &body, RECEIVED)));
        }

        #[test]
        fn damaged_messages_never_panic(
            cut in 0..PROSPECTING.len(),
            at in 0..PROSPECTING.len(),
            byte in 0u8..,
        ) {
            let mut body = PROSPECTING.as_bytes()[..cut.max(at) + 1].to_vec();
            body[at] = byte;
            let r = parse(&cfg(), &body, RECEIVED);
            proptest::prop_assert!(acceptable(&r));
            for c in r.map(|p| p.changes).unwrap_or_default() {
                if let Change::Deal(d) = c {
                    facts_of(&d);
                }
            }
        }
    }
}
