//! A deal's events do not depend on the order its CRM's messages arrive in: the
//! same HubSpot messages, delivered in order, in reverse, shuffled, in batches or
//! one by one, leave the same standing events in the same order (ids, types,
//! times, figures; an event told again after a correction carries `~<n>` after its
//! id); where nothing was told before the history was complete, the very same
//! events.

use std::collections::{BTreeMap, BTreeSet};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::{json, Value};

use super::hubspot::{self, HubspotConfig};
use super::{apply, DealRecord, OrgContext};
use pacer_projections::money::Currency;

const T0: i64 = 1_793_610_000_000; // 2026-11-02T09:00:00Z
const DAY_MS: i64 = 86_400_000;

fn cfg() -> HubspotConfig {
    let text = r#"
        client_secrets = ["s"]
        owners = { 51234567 = "ana" }
        stage_probability = { appointmentscheduled = 20, qualifiedtobuy = 40 }
    "#;
    HubspotConfig::from_toml(toml::from_str(text).expect("TOML")).expect("config")
}

fn org() -> OrgContext {
    OrgContext {
        currency: Currency::from_code("EUR").expect("EUR"),
        timezone: chrono_tz::Europe::Berlin,
    }
}

fn change(event_id: u64, at: i64, name: &str, value: &str) -> Value {
    json!({"eventId": event_id, "subscriptionId": 2881781, "portalId": 62515, "appId": 1160452,
        "occurredAt": at, "subscriptionType": "deal.propertyChange", "attemptNumber": 0,
        "objectId": 42, "propertyName": name, "propertyValue": value,
        "changeSource": "CRM_UI"})
}

/// A deal's life as HubSpot tells it, in batches of one moment each: created with
/// its properties, qualified a day later, its amount raised on the third day, won
/// on the tenth.
fn batches() -> Vec<Vec<Value>> {
    let creation = json!({"eventId": 1, "subscriptionId": 2881778, "portalId": 62515,
        "appId": 1160452, "occurredAt": T0, "subscriptionType": "deal.creation",
        "attemptNumber": 0, "objectId": 42, "changeFlag": "CREATED"});
    vec![
        vec![
            creation,
            change(2, T0, "dealname", "Acme GmbH"),
            change(3, T0, "amount", "12500"),
            change(4, T0, "closedate", "1795734000000"),
            change(5, T0, "dealstage", "appointmentscheduled"),
            change(6, T0, "hubspot_owner_id", "51234567"),
        ],
        vec![change(7, T0 + DAY_MS, "dealstage", "qualifiedtobuy")],
        vec![change(8, T0 + 3 * DAY_MS, "amount", "14000")],
        vec![change(9, T0 + 10 * DAY_MS, "dealstage", "closedwon")],
    ]
}

/// Every request through parse → mirror → events, as the endpoint does it; the
/// events told, in order.
fn deliver(requests: &[Vec<Value>]) -> Vec<Value> {
    let (cfg, org) = (cfg(), org());
    let mut records: BTreeMap<_, DealRecord> = BTreeMap::new();
    let mut told = Vec::new();
    for body in requests {
        let parsed = hubspot::parse(Value::Array(body.clone()).to_string().as_bytes())
            .expect("a HubSpot body");
        let applied = apply(
            &parsed,
            &mut records,
            |r| hubspot::facts(&cfg, r, &org),
            &hubspot::tracked(&cfg),
            org.currency,
        )
        .expect("applied");
        for record in records.values_mut() {
            record.pending.clear();
        }
        for (_, ev) in applied.events {
            crate::wire::decode_value(&ev, &crate::wire::Limits::default())
                .unwrap_or_else(|e| panic!("{ev}: {e}"));
            told.push(ev);
        }
    }
    told
}

/// The events that stand, in log order (the opening first): neither a void nor
/// voided. An event told
/// again after a correction voided it carries `~<n>` after its id; that is taken
/// off here.
fn standing(events: &[Value]) -> Vec<Value> {
    let voided: BTreeSet<&str> = events
        .iter()
        .filter_map(|e| e["voided_event_id"].as_str())
        .collect();
    let mut out: Vec<Value> = events
        .iter()
        .filter(|e| e["type"] != "event_voided")
        .filter(|e| !voided.contains(e["event_id"].as_str().unwrap_or_default()))
        .map(|e| {
            let mut e = e.clone();
            let id = e["event_id"].as_str().unwrap_or_default();
            let base = id.split_once('~').map_or(id, |(base, _)| base).to_owned();
            e["event_id"] = json!(base);
            e
        })
        .collect();
    // The opening may stand after facts it precedes in time: a deal's view is
    // built on it wherever it stands. The other facts stand in time order.
    out.sort_by_key(|e| e["type"] != "deal_opened");
    out
}

fn summary(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["type"].as_str().unwrap_or_default(),
                e["occurred_at"].as_str().unwrap_or_default(),
                e["amount"].as_str().unwrap_or("-")
            )
        })
        .collect()
}

#[test]
fn in_order_the_history_is_each_change_at_its_own_time() {
    let events = deliver(&batches());
    assert_eq!(
        summary(&events),
        [
            "deal_opened 2026-11-02T09:00:00.000Z 12500",
            "deal_stage_changed 2026-11-03T09:00:00.000Z 12500",
            "deal_stage_changed 2026-11-05T09:00:00.000Z 14000",
            "deal_won 2026-11-12T09:00:00.000Z 14000",
        ]
    );
    assert_eq!(events[0]["account"], "Acme GmbH");
    assert_eq!(events[0]["probability"], 20);
    assert_eq!(events[1]["probability"], 40);
    let ids: BTreeSet<&str> = events
        .iter()
        .filter_map(|e| e["event_id"].as_str())
        .collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert!(ids
        .iter()
        .all(|id| id.starts_with("hubspot:62515:42:deal_")));
}

#[test]
fn in_reverse_the_same_events_byte_for_byte() {
    let in_order = deliver(&batches());
    let mut reverse = batches();
    reverse.reverse();
    for batch in &mut reverse {
        batch.reverse();
    }
    assert_eq!(deliver(&reverse), in_order);
    // The won stage first: nothing can be told until the amount, close date and
    // owner come (with the creation), which then bring the deal_opened they imply
    // at its own time, and the win.
    let won_first: Vec<Vec<Value>> = [3, 0, 1, 2].iter().map(|&i| batches()[i].clone()).collect();
    let events = deliver(&won_first);
    assert_eq!(standing(&events), in_order);
}

#[test]
fn any_order_leaves_the_same_standing_events() {
    let in_order = deliver(&batches());
    let messages: Vec<Value> = batches().into_iter().flatten().collect();
    for seed in 0..200_u64 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut shuffled = messages.clone();
        shuffled.shuffle(&mut rng);
        // One message a request, or the shuffled messages in requests of up to three.
        let one_by_one: Vec<Vec<Value>> = shuffled.iter().map(|m| vec![m.clone()]).collect();
        let in_threes: Vec<Vec<Value>> = shuffled.chunks(3).map(<[Value]>::to_vec).collect();
        for requests in [one_by_one, in_threes] {
            let events = deliver(&requests);
            assert_eq!(
                standing(&events),
                in_order,
                "seed {seed}: {}",
                summary(&events).join("\n")
            );
            // However it got there, a message that changes nothing tells nothing.
            let mut more = requests.clone();
            more.push(vec![change(99, T0 + 20 * DAY_MS, "dealname", "Acme GmbH")]);
            assert_eq!(deliver(&more).len(), events.len(), "seed {seed}");
        }
    }
}

#[test]
fn a_retry_and_a_late_copy_change_nothing() {
    let mut requests = batches();
    requests.push(batches()[1].clone());
    requests.push(batches()[0].clone());
    assert_eq!(deliver(&requests), deliver(&batches()));
}

#[test]
fn a_late_message_corrects_what_was_told_with_voids_at_the_events_own_times() {
    // Won before the amount was raised: the win was told at 12 500, then corrected.
    let requests: Vec<Vec<Value>> = [0, 1, 3, 2].iter().map(|&i| batches()[i].clone()).collect();
    let events = deliver(&requests);
    assert_eq!(
        summary(&events),
        [
            "deal_opened 2026-11-02T09:00:00.000Z 12500",
            "deal_stage_changed 2026-11-03T09:00:00.000Z 12500",
            "deal_won 2026-11-12T09:00:00.000Z 12500",
            "event_voided 2026-11-12T09:00:00.000Z -",
            "deal_stage_changed 2026-11-05T09:00:00.000Z 14000",
            "deal_won 2026-11-12T09:00:00.000Z 14000",
        ]
    );
    assert_eq!(events[3]["voided_event_id"], events[2]["event_id"]);
    assert!(events[3]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("came late")));
}

/// `ev` without its id, after checking the id is `<deal>:<type>:<12 hex digits>`:
/// what the adapters' tests compare.
pub(crate) fn without_id(ev: &Value) -> Value {
    let id = ev["event_id"].as_str().unwrap_or_default();
    let (deal, kind) = (
        ev["deal"].as_str().map(str::to_owned),
        ev["type"].as_str().unwrap_or_default(),
    );
    let (head, digest) = id.rsplit_once(':').unwrap_or_default();
    assert!(
        head.ends_with(&format!(":{kind}"))
            && digest.len() == 12
            && digest.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id} is not <deal>:{kind}:<digest>"
    );
    if let Some(deal) = deal {
        assert_eq!(head, format!("{deal}:{kind}"), "{id}");
    }
    let mut out = ev.clone();
    if let Value::Object(m) = &mut out {
        m.shift_remove("event_id");
    }
    out
}

#[test]
fn a_deal_told_before_histories_were_kept_goes_on_with_counted_ids() {
    let (cfg, org) = (cfg(), org());
    let parsed = hubspot::parse(Value::Array(batches()[0].clone()).to_string().as_bytes())
        .expect("a HubSpot body");
    let mut records: BTreeMap<_, DealRecord> = BTreeMap::new();
    // As an earlier version left it: the latest values and what was told, no log.
    for c in &parsed.changes {
        if let super::Change::Deal(c) = c {
            records.entry(c.key.clone()).or_default().merge(c);
        }
    }
    let record = records.values_mut().next().expect("one deal");
    record.past.clear();
    record.created_ms = None;
    let facts = hubspot::facts(&cfg, record, &org);
    let opened = super::deal::reconcile(
        &super::DealKey {
            crm: super::Crm::Hubspot,
            tenant: "62515".into(),
            deal: "42".into(),
        },
        &facts,
        false,
        &mut record.told,
        "2026-11-02T09:00:00.000Z",
        org.currency,
        super::Ids::Counted,
    );
    assert_eq!(opened[0]["event_id"], "hubspot:62515:42:1:deal_opened");
    assert!(record.is_counted());
    let later = hubspot::parse(Value::Array(batches()[1].clone()).to_string().as_bytes())
        .expect("a HubSpot body");
    let applied = apply(
        &later,
        &mut records,
        |r| hubspot::facts(&cfg, r, &org),
        &hubspot::tracked(&cfg),
        org.currency,
    )
    .expect("applied");
    let ids: Vec<&str> = applied
        .events
        .iter()
        .filter_map(|(_, e)| e["event_id"].as_str())
        .collect();
    assert_eq!(ids, ["hubspot:62515:42:2:deal_stage_changed"]);
}

#[test]
fn a_company_name_filled_in_later_is_the_account_of_the_whole_history() {
    let mut requests = batches();
    requests.insert(
        1,
        vec![change(10, T0 + 2_000, "company_name", "Acme Holding GmbH")],
    );
    let events = deliver(&requests);
    let standing = standing(&events);
    assert_eq!(
        summary(&standing),
        summary(&deliver(&batches())),
        "the same history"
    );
    for ev in standing
        .iter()
        .filter(|e| e["type"] != "deal_stage_changed")
    {
        assert_eq!(ev["account"], "Acme Holding GmbH", "{ev}");
    }
    // The opening told with the deal's name was corrected.
    assert!(events
        .iter()
        .any(|e| e["type"] == "event_voided" && e["voided_event_id"] == events[0]["event_id"]));
}

/// A property's timeline after these `(time, value)` messages about one deal.
fn timeline(messages: &[(i64, &str)]) -> Vec<(i64, String)> {
    let mut record = DealRecord::default();
    let key = super::DealKey {
        crm: super::Crm::Pipedrive,
        tenant: "4".into(),
        deal: "17".into(),
    };
    for (i, (at, value)) in messages.iter().enumerate() {
        record.merge(&super::DealChange {
            key: key.clone(),
            at_ms: *at,
            props: vec![("value".into(), Some((*value).to_owned()))],
            deleted: false,
            dedupe: format!("m{i}"),
        });
    }
    let mut out: Vec<(i64, String)> = record
        .past
        .get("value")
        .into_iter()
        .flatten()
        .chain(record.props.get("value"))
        .map(|p| (p.at_ms, p.value.clone().unwrap_or_default()))
        .collect();
    out.sort();
    out
}

#[test]
fn a_value_said_again_adds_nothing_and_a_late_change_between_comes_back_after() {
    // Pipedrive and Salesforce send every field each time: 200 messages, 2 changes.
    let mut said: Vec<(i64, &str)> = (0..200).map(|i| (i, "1000")).collect();
    said.push((250, "1200"));
    assert_eq!(
        timeline(&said),
        [(0, "1000".to_owned()), (250, "1200".to_owned())]
    );
    // a at 1, b at 2, a again at 3 and 4 (a whole record sent each time): in any
    // order of arrival, the same timeline.
    let want = [
        (1, "a".to_owned()),
        (2, "b".to_owned()),
        (3, "a".to_owned()),
    ];
    let messages = [(1, "a"), (2, "b"), (3, "a"), (4, "a")];
    let mut orders = Vec::new();
    for n in 0..256_usize {
        let order: Vec<usize> = (0..4).map(|k| (n >> (2 * k)) & 3).collect();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        if sorted == [0, 1, 2, 3] {
            orders.push(order);
        }
    }
    assert_eq!(orders.len(), 24);
    for order in orders {
        let arrived: Vec<(i64, &str)> = order.iter().map(|&i| messages[i]).collect();
        assert_eq!(timeline(&arrived), want, "{arrived:?}");
    }
}

#[test]
fn after_a_correction_the_next_messages_tell_only_what_is_new() {
    // The win told at 12 500, corrected when the raise came late; then a message
    // that changes nothing, a retry, and a later change.
    let mut requests: Vec<Vec<Value>> =
        [0, 1, 3, 2].iter().map(|&i| batches()[i].clone()).collect();
    let corrected = deliver(&requests).len();
    requests.push(vec![change(11, T0 + 11 * DAY_MS, "dealname", "Acme GmbH")]);
    requests.push(batches()[2].clone());
    assert_eq!(
        deliver(&requests).len(),
        corrected,
        "nothing new, nothing told"
    );
    // Reopened in the stage it was in before the win: the win that stands (told
    // again after the correction) is voided, and the deal is as it was told before.
    requests.push(vec![change(
        12,
        T0 + 12 * DAY_MS,
        "dealstage",
        "qualifiedtobuy",
    )]);
    let events = deliver(&requests);
    let new = &events[corrected..];
    assert_eq!(
        summary(new),
        ["event_voided 2026-11-14T09:00:00.000Z -"],
        "{new:#?}"
    );
    let standing_won = events
        .iter()
        .rfind(|e| e["type"] == "deal_won")
        .and_then(|e| e["event_id"].as_str())
        .unwrap_or_default();
    assert_eq!(new[0]["voided_event_id"], standing_won);
    assert!(standing(&events).iter().all(|e| e["type"] != "deal_won"));
}

#[test]
fn a_stamp_that_changes_with_every_message_keeps_only_its_latest() {
    // Pipedrive and Salesforce send the whole record, with a stamp of its own
    // (`update_time`, `SystemModstamp`) new in every message.
    let mut record = DealRecord::default();
    let key = super::DealKey {
        crm: super::Crm::Pipedrive,
        tenant: "4".into(),
        deal: "17".into(),
    };
    let tracked = |name: &str| name == "value";
    for i in 0..500_i64 {
        record.merge_tracked(
            &super::DealChange {
                key: key.clone(),
                at_ms: T0 + i * 60_000,
                props: vec![
                    (
                        "value".into(),
                        Some(if i < 250 { "1000" } else { "1200" }.into()),
                    ),
                    ("update_time".into(), Some(format!("stamp {i}"))),
                ],
                deleted: false,
                dedupe: format!("m{i}"),
            },
            &tracked,
        );
    }
    assert_eq!(record.past.len(), 1, "{:?}", record.past.keys());
    assert_eq!(record.past["value"].len(), 1);
    assert_eq!(record.prop("update_time"), Some("stamp 499"));
    let bytes = serde_json::to_vec(&record).map_or(0, |b| b.len());
    assert!(bytes < 8 * 1024, "{bytes} bytes");
    assert_eq!(record.moments().len(), 3, "{:?}", record.moments());
}
