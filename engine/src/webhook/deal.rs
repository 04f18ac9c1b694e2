//! The one place where what a CRM knows about a deal becomes Pacer events:
//! [`reconcile`] compares a deal's [`DealFacts`] with what Pacer has been [`Told`] and
//! emits the events that close the gap, in wire JSON.
//!
//! - Open, not yet told: `deal_opened` once rep, amount and expected close are known
//!   (account and customer kind fall back as the adapter's mapping says).
//! - Open and told: `deal_stage_changed` when stage, probability, amount or expected
//!   close differ from what was last told.
//! - Won: `deal_won` once rep, amount and a close date are known; a won deal whose
//!   figures change is corrected by voiding the `deal_won` and telling the new one.
//! - Lost: `deal_lost` (of a deal Pacer knew).
//! - Reopened (won or lost, then open again), or deleted: `event_voided` of the
//!   standing `deal_won` / `deal_lost`; a deleted open deal is lost.
//!
//! What [`reconcile`] reads and keeps ([`DealFacts`], [`Told`]) and how it takes a
//! CRM's amount ([`amount_text`]) are defined here too, and re-exported by [`super`];
//! this module builds only on [`super::crm`], never on its parent.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::crm::DealKey;
use pacer_projections::money::Currency;

/// A deal's status in the CRM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DealStatus {
    #[default]
    Open,
    Won,
    Lost,
}

/// What the mirror knows about a deal, in Pacer's terms. `None`: not known (yet).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DealFacts {
    pub rep: Option<String>,
    pub account: Option<String>,
    /// `new` or `existing`.
    pub customer_kind: Option<String>,
    pub product: Option<String>,
    pub region: Option<String>,
    /// A decimal as the CRM wrote it (`12500`, `12500.0`, `12500.00`).
    pub amount: Option<String>,
    /// ISO 4217; `None`: the organisation's currency.
    pub currency: Option<String>,
    /// `YYYY-MM-DD`.
    pub expected_close: Option<String>,
    pub stage: Option<String>,
    /// 0–100.
    pub probability: Option<u8>,
    pub status: DealStatus,
    /// `YYYY-MM-DD`; when won. `None`: the expected close date stands in.
    pub closed_on: Option<String>,
    pub lost_reason: Option<String>,
    /// The CRM owner id when it maps to no rep, and when it was set (ms): the deal
    /// cannot be told until the owner is mapped.
    pub unmapped_owner: Option<(String, i64)>,
}

/// What Pacer has been told about a deal (the events emitted so far).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Told {
    /// Events emitted about the deal: the `n` of the next id is `n + 1`.
    pub n: u32,
    pub opened: bool,
    /// The open deal's figures as last told (`deal_opened` or `deal_stage_changed`).
    pub open: Option<OpenTold>,
    /// The standing `deal_won`.
    pub won: Option<WonTold>,
    /// The id of the standing `deal_lost`.
    pub lost: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenTold {
    pub stage: Option<String>,
    pub probability: Option<u8>,
    pub amount: String,
    pub currency: String,
    pub expected_close: String,
}

/// A told `deal_won`: its id (to void it) and its figures (to notice a correction).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WonTold {
    pub event_id: String,
    pub rep: String,
    pub account: String,
    pub customer_kind: String,
    pub product: Option<String>,
    pub region: Option<String>,
    pub amount: String,
    pub currency: String,
    pub closed_on: String,
}

/// How [`reconcile`] names the events it emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ids {
    /// `<deal>:<n>:<type>`, `n` counting the events told about the deal: the ids of
    /// deals first told before histories were kept (their records hold no told log).
    Counted,
    /// `<deal>:<type>:<digest>`, the digest of the event's own content (time and
    /// figures): the same event has the same id whatever order the CRM's messages
    /// came in, and a different one has another.
    Content,
}

/// The events that bring Pacer from `told` to `facts` (updating `told`), stamped
/// `occurred_at` (RFC 3339).
pub fn reconcile(
    key: &DealKey,
    facts: &DealFacts,
    deleted: bool,
    told: &mut Told,
    occurred_at: &str,
    org_currency: Currency,
    ids: Ids,
) -> Vec<Value> {
    let mut out = Emitter {
        key,
        occurred_at,
        ids,
        events: Vec::new(),
    };
    let crm = key.crm.as_str();
    let deal = key.id();
    if deleted {
        if let Some(won) = told.won.take() {
            out.void(told, &won.event_id, &format!("deal deleted in {crm}"));
        } else if told.opened && told.lost.is_none() {
            let id = out.push(
                told,
                "deal_lost",
                json!({"deal": deal, "reason": format!("deal deleted in {crm}")}),
            );
            told.lost = Some(id);
        }
        return out.events;
    }
    let currency = facts
        .currency
        .clone()
        .unwrap_or_else(|| org_currency.code().to_owned());
    // Every CRM's amount, as Pacer takes it (E notation spelled out, zeros past the
    // currency's digits dropped).
    let exponent = Currency::from_code(&currency).ok().map(|c| c.exponent());
    let amount = facts.amount.as_deref().map(|a| amount_text(a, exponent));
    match facts.status {
        DealStatus::Won => {
            if let Some(lost) = told.lost.take() {
                out.void(told, &lost, &format!("won after all in {crm}"));
            }
            let Some(want) = won_of(facts, amount, &currency) else {
                return out.events;
            };
            if let Some(old) = &told.won {
                if same_won(old, &want) {
                    return out.events;
                }
                let old = old.event_id.clone();
                out.void(told, &old, &format!("corrected in {crm}"));
            }
            let mut fields = json!({
                "deal": deal, "rep": want.rep, "account": want.account,
                "customer_kind": want.customer_kind, "amount": want.amount,
                "currency": want.currency, "closed_on": want.closed_on,
            });
            optional(&mut fields, "product", &want.product);
            optional(&mut fields, "region", &want.region);
            let id = out.push(told, "deal_won", fields);
            told.won = Some(WonTold {
                event_id: id,
                ..want
            });
        }
        DealStatus::Lost => {
            let had_won = told.won.take();
            if let Some(won) = &had_won {
                out.void(told, &won.event_id, &format!("lost after all in {crm}"));
            }
            if told.lost.is_none() && (told.opened || had_won.is_some()) {
                let mut fields = json!({"deal": deal});
                optional(&mut fields, "reason", &facts.lost_reason);
                told.lost = Some(out.push(told, "deal_lost", fields));
            }
        }
        DealStatus::Open => {
            if let Some(won) = told.won.take() {
                out.void(told, &won.event_id, &format!("reopened in {crm}"));
            }
            if let Some(lost) = told.lost.take() {
                out.void(told, &lost, &format!("reopened in {crm}"));
            }
            let (Some(amount), Some(expected_close)) = (&amount, &facts.expected_close) else {
                return out.events;
            };
            let now = OpenTold {
                stage: facts.stage.clone(),
                probability: facts.probability,
                amount: amount.clone(),
                currency: currency.clone(),
                expected_close: expected_close.clone(),
            };
            if !told.opened {
                let (Some(rep), Some(account), Some(kind)) =
                    (&facts.rep, &facts.account, &facts.customer_kind)
                else {
                    return out.events;
                };
                let mut fields = json!({
                    "deal": deal, "rep": rep, "account": account, "customer_kind": kind,
                    "amount": amount, "currency": currency, "expected_close": expected_close,
                });
                optional(&mut fields, "product", &facts.product);
                optional(&mut fields, "region", &facts.region);
                if let Some(p) = facts.probability {
                    fields["probability"] = json!(p);
                }
                out.push(told, "deal_opened", fields);
                told.opened = true;
                told.open = Some(now);
            } else if told.open.as_ref() != Some(&now) {
                let mut fields = json!({
                    "deal": deal,
                    "stage": now.stage.clone().unwrap_or_else(|| "open".into()),
                    "amount": now.amount, "currency": now.currency,
                    "expected_close": now.expected_close,
                });
                if let Some(p) = now.probability {
                    fields["probability"] = json!(p);
                }
                out.push(told, "deal_stage_changed", fields);
                told.open = Some(now);
            }
        }
    }
    out.events
}

/// The `deal_won` the facts call for, once enough is known.
fn won_of(facts: &DealFacts, amount: Option<String>, currency: &str) -> Option<WonTold> {
    Some(WonTold {
        event_id: String::new(),
        rep: facts.rep.clone()?,
        account: facts.account.clone()?,
        customer_kind: facts.customer_kind.clone()?,
        product: facts.product.clone(),
        region: facts.region.clone(),
        amount: amount?,
        currency: currency.to_owned(),
        closed_on: facts
            .closed_on
            .clone()
            .or_else(|| facts.expected_close.clone())?,
    })
}

fn same_won(a: &WonTold, b: &WonTold) -> bool {
    WonTold {
        event_id: String::new(),
        ..a.clone()
    } == WonTold {
        event_id: String::new(),
        ..b.clone()
    }
}

fn optional(fields: &mut Value, name: &str, value: &Option<String>) {
    if let Some(v) = value {
        fields[name] = json!(v);
    }
}

/// A decimal as plain digits: CRMs write doubles in E notation (Salesforce from 10^7
/// up and below 10^-3: `1.25E7`), which Pacer's amounts do not take. `None`: not a
/// number.
pub fn plain_decimal(text: &str) -> Option<String> {
    let t = text.trim();
    let (m, exp) = match t.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().ok().filter(|e| e.abs() <= 40)?),
        None => (t, 0),
    };
    let (sign, m) = match m.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", m.strip_prefix('+').unwrap_or(m)),
    };
    let (int, frac) = m.split_once('.').unwrap_or((m, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || m.ends_with('.') || !digits(int) || !digits(frac) {
        return None;
    }
    if exp == 0 {
        return Some(format!("{sign}{m}"));
    }
    // Zeros either side, so the point moves within the digits.
    let pad = "0".repeat(exp.unsigned_abs() as usize);
    let all = format!("{pad}{int}{frac}{pad}");
    let point = (pad.len() + int.len()).checked_add_signed(exp as isize)?;
    let (i, f) = all.split_at(point);
    let (i, f) = (i.trim_start_matches('0'), f.trim_end_matches('0'));
    let i = if i.is_empty() { "0" } else { i };
    Some(if f.is_empty() {
        format!("{sign}{i}")
    } else {
        format!("{sign}{i}.{f}")
    })
}

/// An amount as Pacer takes it: as written when it is a plain decimal that fits the
/// currency; E notation spelled out; zeros past the currency's digits dropped
/// (`12500.0` in JPY is `12500`). Anything else as is, for validation to refuse.
/// Every CRM's amounts go through it, in [`reconcile`].
pub fn amount_text(text: &str, exponent: Option<u32>) -> String {
    let Some(mut plain) = plain_decimal(text) else {
        return text.to_owned();
    };
    if let (Some(exponent), Some(dot)) = (exponent, plain.find('.')) {
        while plain.len() - dot - 1 > exponent as usize && plain.ends_with('0') {
            plain.pop();
        }
        if plain.ends_with('.') {
            plain.pop();
        }
    }
    plain
}

/// The id of a deal's event by its content (everything but the id itself): the
/// deal, the type and the first 48 bits of the SHA-256 of the event's JSON, which
/// holds its time and figures.
pub fn content_id(deal: &str, kind: &str, content: &Map<String, Value>) -> String {
    use sha2::{Digest, Sha256};
    let bytes = serde_json::to_vec(content).expect("JSON values serialise");
    let digest = Sha256::digest(&bytes);
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("{deal}:{kind}:{hex}")
}

/// A deal event in wire JSON, `event_id` first.
pub fn deal_event(
    key: &DealKey,
    ids: Ids,
    n: u32,
    occurred_at: &str,
    kind: &str,
    fields: Value,
) -> Value {
    let mut content = Map::new();
    content.insert("source".into(), json!(key.crm.as_str()));
    content.insert("occurred_at".into(), json!(occurred_at));
    content.insert("type".into(), json!(kind));
    if let Value::Object(f) = fields {
        content.extend(f);
    }
    let id = match ids {
        Ids::Counted => format!("{}:{n}:{kind}", key.id()),
        Ids::Content => content_id(&key.id(), kind, &content),
    };
    let mut ev = Map::new();
    ev.insert("event_id".into(), json!(id));
    ev.extend(content);
    Value::Object(ev)
}

struct Emitter<'a> {
    key: &'a DealKey,
    occurred_at: &'a str,
    ids: Ids,
    events: Vec<Value>,
}

impl Emitter<'_> {
    /// Adds an event with the deal's next id; returns the id.
    fn push(&mut self, told: &mut Told, kind: &str, fields: Value) -> String {
        told.n += 1;
        let ev = deal_event(self.key, self.ids, told.n, self.occurred_at, kind, fields);
        let id = ev["event_id"].as_str().unwrap_or_default().to_owned();
        self.events.push(ev);
        id
    }

    fn void(&mut self, told: &mut Told, event_id: &str, reason: &str) {
        self.push(
            told,
            "event_voided",
            json!({"voided_event_id": event_id, "reason": reason}),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::Crm;

    fn key() -> DealKey {
        DealKey {
            crm: Crm::Hubspot,
            tenant: "62515".into(),
            deal: "17".into(),
        }
    }

    fn open_facts() -> DealFacts {
        DealFacts {
            rep: Some("ana".into()),
            account: Some("acme".into()),
            customer_kind: Some("new".into()),
            amount: Some("12500".into()),
            expected_close: Some("2026-11-20".into()),
            stage: Some("qualified".into()),
            probability: Some(40),
            ..Default::default()
        }
    }

    fn types(events: &[Value]) -> Vec<String> {
        events
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect()
    }

    const EUR: fn() -> Currency = || Currency::from_code("EUR").unwrap();

    #[test]
    fn opens_once_enough_is_known_then_tells_changes_only() {
        let mut told = Told::default();
        let mut facts = open_facts();
        facts.amount = None;
        assert!(reconcile(&key(), &facts, false, &mut told, "t", EUR(), Ids::Counted).is_empty());
        facts.amount = Some("12500".into());
        let evs = reconcile(&key(), &facts, false, &mut told, "t", EUR(), Ids::Counted);
        assert_eq!(types(&evs), ["deal_opened"]);
        assert_eq!(evs[0]["event_id"], "hubspot:62515:17:1:deal_opened");
        assert_eq!(evs[0]["deal"], "hubspot:62515:17");
        assert_eq!(evs[0]["currency"], "EUR");
        assert!(reconcile(&key(), &facts, false, &mut told, "t", EUR(), Ids::Counted).is_empty());
        facts.stage = Some("proposal".into());
        let evs = reconcile(&key(), &facts, false, &mut told, "t", EUR(), Ids::Counted);
        assert_eq!(types(&evs), ["deal_stage_changed"]);
        assert_eq!(evs[0]["stage"], "proposal");
    }

    #[test]
    fn won_then_reopened_voids_the_win_and_a_correction_retells_it() {
        let mut told = Told::default();
        let mut facts = open_facts();
        reconcile(&key(), &facts, false, &mut told, "t", EUR(), Ids::Counted);
        facts.status = DealStatus::Won;
        facts.closed_on = Some("2026-11-03".into());
        let won = reconcile(&key(), &facts, false, &mut told, "t", EUR(), Ids::Counted);
        assert_eq!(types(&won), ["deal_won"]);
        assert_eq!(won[0]["closed_on"], "2026-11-03");
        facts.amount = Some("13000".into());
        let fixed = reconcile(&key(), &facts, false, &mut told, "t", EUR(), Ids::Counted);
        assert_eq!(types(&fixed), ["event_voided", "deal_won"]);
        assert_eq!(fixed[0]["voided_event_id"], won[0]["event_id"]);
        facts.status = DealStatus::Open;
        let reopened = reconcile(&key(), &facts, false, &mut told, "t", EUR(), Ids::Counted);
        assert_eq!(types(&reopened), ["event_voided", "deal_stage_changed"]);
        assert_eq!(reopened[0]["voided_event_id"], fixed[1]["event_id"]);
    }

    #[test]
    fn lost_and_deleted() {
        let mut told = Told::default();
        let mut facts = open_facts();
        // A deal Pacer never heard of is not lost.
        facts.status = DealStatus::Lost;
        assert!(reconcile(&key(), &facts, false, &mut told, "t", EUR(), Ids::Counted).is_empty());
        facts.status = DealStatus::Open;
        reconcile(&key(), &facts, false, &mut told, "t", EUR(), Ids::Counted);
        facts.status = DealStatus::Lost;
        facts.lost_reason = Some("budget".into());
        let lost = reconcile(&key(), &facts, false, &mut told, "t", EUR(), Ids::Counted);
        assert_eq!(types(&lost), ["deal_lost"]);
        assert_eq!(lost[0]["reason"], "budget");
        let mut told2 = Told::default();
        facts.status = DealStatus::Open;
        reconcile(&key(), &facts, false, &mut told2, "t", EUR(), Ids::Counted);
        let deleted = reconcile(&key(), &facts, true, &mut told2, "t", EUR(), Ids::Counted);
        assert_eq!(types(&deleted), ["deal_lost"]);
        assert!(reconcile(&key(), &facts, true, &mut told2, "t", EUR(), Ids::Counted).is_empty());
    }

    #[test]
    fn any_crm_amount_is_taken_as_pacer_takes_amounts() {
        let mut told = Told::default();
        let mut facts = open_facts();
        facts.currency = Some("JPY".into());
        facts.amount = Some("1.25E7".into());
        let evs = reconcile(&key(), &facts, false, &mut told, "t", EUR(), Ids::Counted);
        assert_eq!(evs[0]["amount"], "12500000");
        facts.amount = Some("12500000.0".into());
        facts.status = DealStatus::Won;
        let evs = reconcile(&key(), &facts, false, &mut told, "t", EUR(), Ids::Counted);
        assert_eq!(types(&evs), ["deal_won"]);
        assert_eq!(evs[0]["amount"], "12500000");
    }

    #[test]
    fn every_emitted_event_decodes() {
        let mut told = Told::default();
        let mut facts = open_facts();
        let mut all = reconcile(
            &key(),
            &facts,
            false,
            &mut told,
            "2026-11-03T10:00:00Z",
            EUR(),
            Ids::Counted,
        );
        facts.stage = Some("proposal".into());
        all.extend(reconcile(
            &key(),
            &facts,
            false,
            &mut told,
            "2026-11-03T10:00:00Z",
            EUR(),
            Ids::Counted,
        ));
        facts.status = DealStatus::Won;
        all.extend(reconcile(
            &key(),
            &facts,
            false,
            &mut told,
            "2026-11-03T10:00:00Z",
            EUR(),
            Ids::Counted,
        ));
        facts.status = DealStatus::Lost;
        all.extend(reconcile(
            &key(),
            &facts,
            false,
            &mut told,
            "2026-11-03T10:00:00Z",
            EUR(),
            Ids::Counted,
        ));
        assert_eq!(all.len(), 5);
        for ev in all {
            crate::wire::decode_value(&ev, &crate::wire::Limits::default())
                .unwrap_or_else(|e| panic!("{ev}: {e}"));
        }
    }
}
