use super::*;

use crate::validate::{validate, Rules};
use pacer_projections::fx::FxTable;

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

fn limits() -> Limits {
    Limits::default()
}

fn cur(code: &str) -> Currency {
    Currency::from_code(code).unwrap()
}

fn eur() -> Currency {
    cur("EUR")
}

fn ts(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

fn date(y: i32, m: u32, d: u32) -> Date {
    Date::from_ymd(y, m, d).unwrap()
}

fn month(y: i32, m: u32) -> Month {
    Month::new(y, m).unwrap()
}

fn pct(hundredths: u16) -> Percent {
    Percent::from_hundredths(hundredths).unwrap()
}

/// Parses JSON text into a value, keeping numbers' text exactly (arbitrary_precision).
fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("test JSON {text} does not parse: {e}"))
}

/// An event of `type_name` with the standard envelope and the given body fields.
fn event_json(type_name: &str, body: &str) -> Value {
    let Value::Object(fields) = parse(body) else {
        panic!("body must be an object: {body}")
    };
    let mut m = Map::new();
    m.insert("event_id".into(), json!("e-1"));
    m.insert("source".into(), json!("hubspot"));
    m.insert("occurred_at".into(), json!("2026-11-03T10:00:00Z"));
    m.insert("type".into(), json!(type_name));
    m.extend(fields);
    Value::Object(m)
}

/// The typed event with the standard envelope.
fn typed(body: EventBody) -> Event {
    Event {
        event_id: "e-1".into(),
        source: "hubspot".into(),
        occurred_at: ts("2026-11-03T10:00:00Z"),
        body,
    }
}

fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// Decodes from bytes (the path the engine uses), panicking with the rejection.
fn ok(v: &Value) -> Event {
    decode(&to_bytes(v), &limits()).unwrap_or_else(|r| panic!("{v} should decode, got {r:?}"))
}

fn rejected_with(v: &Value, lim: &Limits) -> Rejection {
    match decode(&to_bytes(v), lim) {
        Ok(ev) => panic!("{v} should be rejected, decoded to {ev:?}"),
        Err(r) => r,
    }
}

fn rejected(v: &Value) -> Rejection {
    rejected_with(v, &limits())
}

/// Asserts the rejection's kind and field, and that its reason contains `quoted`.
#[track_caller]
fn assert_rejection(r: &Rejection, kind: RejectKind, field: &str, quoted: &str) {
    assert_eq!(r.kind, kind, "kind of {r:?}");
    assert_eq!(r.field, field, "field of {r:?}");
    assert!(
        r.reason.contains(quoted),
        "reason {:?} should contain {quoted:?}",
        r.reason
    );
}

/// Asserts that `v` is rejected with this kind and field and a reason quoting `quoted`.
#[track_caller]
fn assert_rejects(v: &Value, kind: RejectKind, field: &str, quoted: &str) {
    let r = rejected(v);
    assert_rejection(&r, kind, field, quoted);
}

/// `v` with `key` set to `value` (at the top level).
fn set(v: &Value, key: &str, value: Value) -> Value {
    let mut v = v.clone();
    v.as_object_mut().unwrap().insert(key.to_owned(), value);
    v
}

/// `v` with the top-level `key` removed.
fn without(v: &Value, key: &str) -> Value {
    let mut v = v.clone();
    assert!(
        v.as_object_mut().unwrap().shift_remove(key).is_some(),
        "{key} was not in {v}"
    );
    v
}

/// `v` with `key` of the `i`-th item of the array `array` set to `value`.
fn set_in(v: &Value, array: &str, i: usize, key: &str, value: Value) -> Value {
    let mut v = v.clone();
    v[array][i]
        .as_object_mut()
        .unwrap()
        .insert(key.to_owned(), value);
    v
}

/// How serde_json shows the JSON text `json` in a message: a string's content, or a
/// number's text (which serde_json normalises: `1e3` becomes `1e+3`).
fn shown(json: &str) -> String {
    match parse(json) {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// Encodes, then decodes the encoding: must give the same event back.
#[track_caller]
fn assert_round_trip(ev: &Event) {
    let encoded = Value::Object(encode(ev));
    let back = decode_value(&encoded, &limits())
        .unwrap_or_else(|r| panic!("{encoded} does not decode: {r:?}"));
    assert_eq!(&back, ev, "round trip through {encoded}");
    // And through bytes, as the log and NATS carry it.
    let back = decode(&to_bytes(&encoded), &limits()).unwrap();
    assert_eq!(&back, ev);
}

/// Decodes `v`, checks it is `expected`, and that it round-trips through `encode`.
#[track_caller]
fn assert_decodes_to(v: &Value, expected: &Event) {
    let ev = ok(v);
    assert_eq!(&ev, expected);
    assert_round_trip(&ev);
}

// ---------------------------------------------------------------------------------
// Valid examples, one (with every optional field) per type name
// ---------------------------------------------------------------------------------

const DEAL_WON: &str = r#"{"deal":"d-17","rep":"ana","account":"acme","customer_kind":"new",
    "product":"analytics","region":"emea","amount":"12500.00","currency":"EUR","closed_on":"2026-11-03"}"#;

const DEAL_OPENED: &str = r#"{"deal":"d-17","rep":"ana","account":"acme","customer_kind":"existing",
    "product":"analytics","region":"emea","amount":12500.5,"currency":"EUR","expected_close":"2026-12-15",
    "probability":12.5}"#;

const PLAN: &str = r#"{"plan":"fy27","version":1,"basis":"top_down","horizon_start":"2026-11",
    "effective_from":"2026-11","currency":"EUR","lines":[
      {"rep":"ana","month":"2026-11","bucket":"total","target":"100000"},
      {"rep":"ana","month":"2026-11","bucket":"activity:meeting","target":"40"},
      {"rep":"ben","month":"2028-10","bucket":"geo:emea","target":2500.5}]}"#;

const RETENTION: &str = r#"{"rep":"ana","account":"acme","product":"analytics","region":"emea",
    "amount":"3000.00","currency":"EUR","effective_on":"2026-11-30"}"#;

const CUSTOMER_RATED: &str = r#"{"rep":"ana","account":"acme","listening":5,"trust":4,"problem_solving":3,"responsiveness":1}"#;

fn body_example(type_name: &str) -> &'static str {
    match type_name {
        "rep_registered" => {
            r#"{"rep":"ana","name":"Ana Lima","team":"emea-1","manager":"mia","region":"emea","start_month":"2026-01"}"#
        }
        "rep_reassigned" => {
            r#"{"rep":"ana","team":"emea-2","manager":"max","region":"dach","effective_month":"2026-12"}"#
        }
        "rep_departed" => r#"{"rep":"ana","effective_month":"2027-03"}"#,
        "plan_published" => PLAN,
        "forecast_submitted" => {
            r#"{"rep":"ana","month":"2026-12","amount":"80000.00","currency":"EUR","category":"best_case"}"#
        }
        "deal_opened" => DEAL_OPENED,
        "deal_stage_changed" => {
            r#"{"deal":"d-17","stage":"proposal","probability":60,"amount":"15000","currency":"EUR",
                "expected_close":"2026-12-20"}"#
        }
        "deal_won" => {
            r#"{"deal":"d-17","rep":"ana","account":"acme","customer_kind":"new","product":"analytics",
                "region":"emea","amount":"12500.00","currency":"EUR","closed_on":"2026-11-03",
                "splits":[{"rep":"ana","percent":60},{"rep":"ben","percent":"40"}]}"#
        }
        "deal_lost" => r#"{"deal":"d-18","reason":"went with a competitor"}"#,
        "activity_logged" => r#"{"rep":"ana","kind":"meeting","account":"acme","deal":"d-17"}"#,
        "renewed" | "expanded" | "contracted" | "churned" => RETENTION,
        "customer_rated" => CUSTOMER_RATED,
        "event_voided" => r#"{"voided_event_id":"hs-9911","reason":"entered twice"}"#,
        "alert_acknowledged" => r#"{"alert_id":"a-1f3","by":"mia","note":"talked on Monday"}"#,
        "clock_tick" => "{}",
        "fx_rate_set" => r#"{"currency":"USD","month":"2026-11","rate":"0.9234"}"#,
        "plan_submitted" => {
            r#"{"plan":"fy27","version":2,"by":"fin","method":"growth 10%, trailing-12, history","note":"Q1 revision"}"#
        }
        "plan_approved" => r#"{"plan":"fy27","version":2,"by":"cfo","note":"ok"}"#,
        "plan_rejected" => r#"{"plan":"fy27","version":2,"by":"cfo","reason":"too low for EMEA"}"#,
        "comp_plan_published" => {
            r#"{"comp_plan":"fy27-comp","version":1,"effective_from":"2026-11","period":"quarter","currency":"EUR","assignments":[{"team":"emea-1","variable_pay":"6000.00"},{"rep":"ana","variable_pay":"7500.50"}],"measures":[{"measure":"total","weight_pct":"50","curve":[{"attainment_pct":"50","payout_pct":"0"},{"attainment_pct":"100","payout_pct":"100"}],"accelerator":"2","cap_pct":"200","gate":{"measure":"retention","min_attainment_pct":"90"}},{"measure":"new_customer","weight_pct":"30","curve":[{"attainment_pct":"60","payout_pct":"0"},{"attainment_pct":"100","payout_pct":"100"}],"accelerator":"1.5"},{"measure":"report_card","weight_pct":"20","target_score":"4.00","curve":[{"attainment_pct":"80","payout_pct":"0"},{"attainment_pct":"100","payout_pct":"100"}],"cap_pct":"100"}]}"#
        }
        other => panic!("no example for {other}"),
    }
}

fn example(type_name: &str) -> Value {
    event_json(type_name, body_example(type_name))
}

fn examples() -> Vec<Value> {
    EventBody::TYPE_NAMES.iter().map(|t| example(t)).collect()
}

// ---------------------------------------------------------------------------------
// 1. Every type decodes to the expected typed value and round-trips
// ---------------------------------------------------------------------------------

#[test]
fn every_type_name_has_an_example_that_decodes_validates_and_round_trips() {
    assert_eq!(EventBody::TYPE_NAMES.len(), 23);
    let rules = rules_in(eur());
    for name in EventBody::TYPE_NAMES {
        let v = example(name);
        let ev = ok(&v);
        assert_eq!(ev.body.type_name(), name);
        assert_eq!(ev.event_id, "e-1");
        assert_eq!(ev.source, "hubspot");
        assert_eq!(ev.occurred_at.to_rfc3339(), "2026-11-03T10:00:00Z");
        assert_round_trip(&ev);
        validate(&ev, &rules).unwrap_or_else(|r| panic!("{name} example should validate: {r:?}"));
        // The encoding writes the type and the envelope back.
        let enc = encode(&ev);
        assert_eq!(enc["type"], json!(name));
        assert_eq!(enc["event_id"], json!("e-1"));
        assert_eq!(enc["occurred_at"], json!("2026-11-03T10:00:00Z"));
    }
}

#[test]
fn rep_registered_decodes() {
    let expected = typed(EventBody::RepRegistered(RepRegistered {
        rep: "ana".into(),
        name: "Ana Lima".into(),
        team: "emea-1".into(),
        manager: "mia".into(),
        region: Some("emea".into()),
        start_month: Some(month(2026, 1)),
    }));
    assert_decodes_to(&example("rep_registered"), &expected);

    let minimal = event_json(
        "rep_registered",
        r#"{"rep":"ana","name":"Ana","team":"t","manager":"mia"}"#,
    );
    let expected = typed(EventBody::RepRegistered(RepRegistered {
        rep: "ana".into(),
        name: "Ana".into(),
        team: "t".into(),
        manager: "mia".into(),
        region: None,
        start_month: None,
    }));
    assert_decodes_to(&minimal, &expected);
    // Optional fields given as null are absent, and encode writes no nulls.
    let nulls = event_json(
        "rep_registered",
        r#"{"rep":"ana","name":"Ana","team":"t","manager":"mia","region":null,"start_month":null}"#,
    );
    assert_decodes_to(&nulls, &expected);
    let enc = encode(&expected);
    assert!(
        !enc.contains_key("region") && !enc.contains_key("start_month"),
        "{enc:?}"
    );
}

#[test]
fn rep_reassigned_decodes() {
    let expected = typed(EventBody::RepReassigned(RepReassigned {
        rep: "ana".into(),
        team: Some("emea-2".into()),
        manager: Some("max".into()),
        region: Some("dach".into()),
        effective_month: month(2026, 12),
    }));
    assert_decodes_to(&example("rep_reassigned"), &expected);
    let minimal = event_json(
        "rep_reassigned",
        r#"{"rep":"ana","effective_month":"2026-12"}"#,
    );
    let expected = typed(EventBody::RepReassigned(RepReassigned {
        rep: "ana".into(),
        team: None,
        manager: None,
        region: None,
        effective_month: month(2026, 12),
    }));
    assert_decodes_to(&minimal, &expected);
}

#[test]
fn rep_departed_decodes() {
    let expected = typed(EventBody::RepDeparted(RepDeparted {
        rep: "ana".into(),
        effective_month: month(2027, 3),
    }));
    assert_decodes_to(&example("rep_departed"), &expected);
}

#[test]
fn plan_published_decodes_targets_in_minor_units_and_activity_counts() {
    let expected = typed(EventBody::PlanPublished(PlanPublished {
        plan: "fy27".into(),
        version: 1,
        basis: PlanBasis::TopDown,
        horizon_start: month(2026, 11),
        effective_from: month(2026, 11),
        currency: eur(),
        lines: vec![
            PlanLine {
                rep: "ana".into(),
                month: month(2026, 11),
                bucket: Bucket::Total,
                target: 10_000_000,
            },
            PlanLine {
                rep: "ana".into(),
                month: month(2026, 11),
                bucket: Bucket::Activity("meeting".into()),
                target: 40,
            },
            PlanLine {
                rep: "ben".into(),
                month: month(2028, 10),
                bucket: Bucket::Geo("emea".into()),
                target: 250_050,
            },
        ],
    }));
    assert_decodes_to(&example("plan_published"), &expected);

    // The encoding writes targets with the currency's digits, counts as whole numbers.
    let enc = encode(&expected);
    assert_eq!(enc["lines"][0]["target"], json!("100000.00"));
    assert_eq!(enc["lines"][1]["target"], json!("40"));
    assert_eq!(enc["lines"][2]["target"], json!("2500.50"));
    assert_eq!(enc["lines"][1]["bucket"], json!("activity:meeting"));

    // The other bases, an empty plan, and a JPY plan (no minor digits).
    for (basis, typed_basis) in [
        ("bottom_up", PlanBasis::BottomUp),
        ("revision", PlanBasis::Revision),
    ] {
        let v = event_json(
            "plan_published",
            &format!(
                r#"{{"plan":"fy27","version":4294967295,"basis":"{basis}","horizon_start":"2026-11",
                    "effective_from":"2027-01","currency":"JPY","lines":[
                    {{"rep":"ana","month":"2027-01","bucket":"product:analytics","target":"1200"}}]}}"#
            ),
        );
        let ev = ok(&v);
        let EventBody::PlanPublished(p) = &ev.body else {
            panic!("{ev:?}")
        };
        assert_eq!(p.basis, typed_basis);
        assert_eq!(p.version, u32::MAX);
        assert_eq!(p.currency, cur("JPY"));
        assert_eq!(p.lines[0].target, 1200);
        assert_eq!(p.lines[0].bucket, Bucket::Product("analytics".into()));
        assert_round_trip(&ev);
    }
    let empty = event_json(
        "plan_published",
        r#"{"plan":"p","version":0,"basis":"revision","horizon_start":"2026-11","effective_from":"2026-11",
            "currency":"EUR","lines":[]}"#,
    );
    let ev = ok(&empty);
    let EventBody::PlanPublished(p) = &ev.body else {
        panic!("{ev:?}")
    };
    assert!(p.lines.is_empty());
    assert_round_trip(&ev);
}

#[test]
fn forecast_submitted_decodes() {
    let expected = typed(EventBody::ForecastSubmitted(ForecastSubmitted {
        rep: "ana".into(),
        month: month(2026, 12),
        amount: Money::new(8_000_000, eur()),
        category: Some(ForecastCategory::BestCase),
    }));
    assert_decodes_to(&example("forecast_submitted"), &expected);
    let commit = event_json(
        "forecast_submitted",
        r#"{"rep":"ana","month":"2026-12","amount":"1.5","currency":"EUR","category":"commit"}"#,
    );
    let ev = ok(&commit);
    let EventBody::ForecastSubmitted(f) = &ev.body else {
        panic!("{ev:?}")
    };
    assert_eq!(f.amount, Money::new(150, eur()));
    assert_eq!(f.category, Some(ForecastCategory::Commit));
    assert_round_trip(&ev);
}

#[test]
fn deal_opened_decodes_number_amount_and_probability_exactly() {
    let expected = typed(EventBody::DealOpened(DealOpened {
        deal: "d-17".into(),
        rep: "ana".into(),
        account: "acme".into(),
        customer_kind: CustomerKind::Existing,
        product: Some("analytics".into()),
        region: Some("emea".into()),
        amount: Money::new(1_250_050, eur()),
        expected_close: date(2026, 12, 15),
        probability: Some(pct(1250)),
    }));
    assert_decodes_to(&example("deal_opened"), &expected);
    // The encoding writes the amount as a decimal string and the probability as a number.
    let enc = encode(&expected);
    assert_eq!(enc["amount"], json!("12500.50"));
    assert_eq!(enc["currency"], json!("EUR"));
    assert_eq!(enc["probability"].to_string(), "12.5");

    // Numbers that a float would get wrong are exact here.
    let v = set(&example("deal_opened"), "amount", parse("0.29"));
    let v = set(&v, "probability", parse("0.07"));
    let ev = ok(&v);
    let EventBody::DealOpened(d) = &ev.body else {
        panic!("{ev:?}")
    };
    assert_eq!(d.amount.minor, 29);
    assert_eq!(d.probability, Some(pct(7)));
    let v = set(
        &example("deal_opened"),
        "amount",
        parse("92233720368547758.07"),
    );
    let EventBody::DealOpened(d) = ok(&v).body else {
        panic!()
    };
    assert_eq!(d.amount.minor, i64::MAX);

    // Probability bounds are inclusive; the field is optional.
    for (p, h) in [
        ("0", 0),
        ("100", 10_000),
        ("\"100.00\"", 10_000),
        ("99.99", 9_999),
    ] {
        let ev = ok(&set(&example("deal_opened"), "probability", parse(p)));
        let EventBody::DealOpened(d) = &ev.body else {
            panic!()
        };
        assert_eq!(d.probability, Some(pct(h)), "probability {p}");
        assert_round_trip(&ev);
    }
    let ev = ok(&without(&example("deal_opened"), "probability"));
    let EventBody::DealOpened(d) = &ev.body else {
        panic!()
    };
    assert_eq!(d.probability, None);
    assert_round_trip(&ev);
}

#[test]
fn deal_stage_changed_decodes() {
    let expected = typed(EventBody::DealStageChanged(DealStageChanged {
        deal: "d-17".into(),
        stage: "proposal".into(),
        probability: Some(pct(6000)),
        amount: Some(Money::new(1_500_000, eur())),
        expected_close: Some(date(2026, 12, 20)),
    }));
    assert_decodes_to(&example("deal_stage_changed"), &expected);
    let minimal = event_json(
        "deal_stage_changed",
        r#"{"deal":"d-17","stage":"negotiation"}"#,
    );
    let expected = typed(EventBody::DealStageChanged(DealStageChanged {
        deal: "d-17".into(),
        stage: "negotiation".into(),
        probability: None,
        amount: None,
        expected_close: None,
    }));
    assert_decodes_to(&minimal, &expected);
    // A null amount is no amount (and then no currency is needed).
    let v = event_json(
        "deal_stage_changed",
        r#"{"deal":"d-17","stage":"negotiation","amount":null}"#,
    );
    assert_decodes_to(&v, &expected);
    // An amount needs its currency.
    let v = event_json(
        "deal_stage_changed",
        r#"{"deal":"d-17","stage":"negotiation","amount":"5"}"#,
    );
    assert_rejects(&v, RejectKind::MissingField, "currency", "missing");
}

#[test]
fn deal_won_decodes_the_brief_example() {
    let expected = typed(EventBody::DealWon(DealWon {
        deal: "d-17".into(),
        rep: "ana".into(),
        account: "acme".into(),
        customer_kind: CustomerKind::New,
        product: Some("analytics".into()),
        region: Some("emea".into()),
        amount: Money::new(1_250_000, eur()),
        closed_on: date(2026, 11, 3),
        splits: vec![],
    }));
    assert_decodes_to(&event_json("deal_won", DEAL_WON), &expected);
    // The brief's own line, verbatim, with its own envelope.
    let line = r#"{"event_id":"hs-9911","source":"hubspot","occurred_at":"2026-11-03T10:00:00Z",
        "type":"deal_won","rep":"ana","deal":"d-17","account":"acme","customer_kind":"new",
        "product":"analytics","region":"emea","amount":"12500.00","currency":"EUR",
        "closed_on":"2026-11-03"}"#;
    let ev = decode(line.as_bytes(), &limits()).unwrap();
    assert_eq!(ev.event_id, "hs-9911");
    assert_eq!(ev.body, expected.body);
    assert_round_trip(&ev);
    // The same amount as a JSON number.
    let v = set(
        &event_json("deal_won", DEAL_WON),
        "amount",
        parse("12500.5"),
    );
    let EventBody::DealWon(d) = ok(&v).body else {
        panic!()
    };
    assert_eq!(d.amount, Money::new(1_250_050, eur()));
    // Empty or null splits are no splits.
    for splits in ["[]", "null"] {
        let v = set(&event_json("deal_won", DEAL_WON), "splits", parse(splits));
        assert_decodes_to(&v, &expected);
    }
}

#[test]
fn deal_won_decodes_splits() {
    let expected = typed(EventBody::DealWon(DealWon {
        deal: "d-17".into(),
        rep: "ana".into(),
        account: "acme".into(),
        customer_kind: CustomerKind::New,
        product: Some("analytics".into()),
        region: Some("emea".into()),
        amount: Money::new(1_250_000, eur()),
        closed_on: date(2026, 11, 3),
        splits: vec![
            Split {
                rep: "ana".into(),
                percent: pct(6000),
            },
            Split {
                rep: "ben".into(),
                percent: pct(4000),
            },
        ],
    }));
    assert_decodes_to(&example("deal_won"), &expected);
    let enc = encode(&expected);
    assert_eq!(
        Value::Array(vec![
            json!({"rep": "ana", "percent": 60}),
            json!({"rep": "ben", "percent": 40})
        ]),
        enc["splits"]
    );

    let v = event_json(
        "deal_won",
        r#"{"deal":"d","rep":"ana","account":"a","customer_kind":"existing","amount":"1","currency":"EUR",
            "closed_on":"2026-11-03","splits":[{"rep":"ana","percent":33.33},{"rep":"ben","percent":"66.67"}]}"#,
    );
    let ev = ok(&v);
    let EventBody::DealWon(d) = &ev.body else {
        panic!()
    };
    assert_eq!(d.customer_kind, CustomerKind::Existing);
    assert_eq!(d.product, None);
    assert_eq!(d.region, None);
    assert_eq!(
        d.splits
            .iter()
            .map(|s| s.percent.hundredths())
            .collect::<Vec<_>>(),
        vec![3333, 6667]
    );
    assert_round_trip(&ev);
}

#[test]
fn deal_lost_decodes() {
    let expected = typed(EventBody::DealLost(DealLost {
        deal: "d-18".into(),
        reason: Some("went with a competitor".into()),
    }));
    assert_decodes_to(&example("deal_lost"), &expected);
    let expected = typed(EventBody::DealLost(DealLost {
        deal: "d-18".into(),
        reason: None,
    }));
    assert_decodes_to(&event_json("deal_lost", r#"{"deal":"d-18"}"#), &expected);
}

#[test]
fn activity_logged_decodes() {
    let expected = typed(EventBody::ActivityLogged(ActivityLogged {
        rep: "ana".into(),
        kind: "meeting".into(),
        account: Some("acme".into()),
        deal: Some("d-17".into()),
    }));
    assert_decodes_to(&example("activity_logged"), &expected);
    let expected = typed(EventBody::ActivityLogged(ActivityLogged {
        rep: "ana".into(),
        kind: "call".into(),
        account: None,
        deal: None,
    }));
    assert_decodes_to(
        &event_json("activity_logged", r#"{"rep":"ana","kind":"call"}"#),
        &expected,
    );
}

#[test]
fn retention_types_decode_with_their_kind() {
    let change = RetentionChange {
        rep: "ana".into(),
        account: "acme".into(),
        product: Some("analytics".into()),
        region: Some("emea".into()),
        amount: Money::new(300_000, eur()),
        effective_on: date(2026, 11, 30),
    };
    for (name, kind) in [
        ("renewed", RetentionKind::Renewed),
        ("expanded", RetentionKind::Expanded),
        ("contracted", RetentionKind::Contracted),
        ("churned", RetentionKind::Churned),
    ] {
        let expected = typed(EventBody::Retention(kind, change.clone()));
        assert_decodes_to(&example(name), &expected);
        assert_eq!(encode(&expected)["type"], json!(name));
    }
    // Other currencies' exponents: JPY has none, KWD has three.
    let v = event_json(
        "churned",
        r#"{"rep":"ana","account":"acme","amount":"1200","currency":"JPY","effective_on":"2026-11-30"}"#,
    );
    let ev = ok(&v);
    let EventBody::Retention(RetentionKind::Churned, c) = &ev.body else {
        panic!("{ev:?}")
    };
    assert_eq!(c.amount, Money::new(1200, cur("JPY")));
    assert_eq!((c.product.as_deref(), c.region.as_deref()), (None, None));
    assert_round_trip(&ev);
    assert_eq!(encode(&ev)["amount"], json!("1200"));
    let v = set(&set(&v, "currency", json!("KWD")), "amount", parse("1.234"));
    let ev = ok(&v);
    let EventBody::Retention(_, c) = &ev.body else {
        panic!()
    };
    assert_eq!(c.amount, Money::new(1234, cur("KWD")));
    assert_eq!(encode(&ev)["amount"], json!("1.234"));
    assert_round_trip(&ev);
}

#[test]
fn customer_rated_decodes() {
    let expected = typed(EventBody::CustomerRated(CustomerRated {
        rep: "ana".into(),
        account: "acme".into(),
        listening: 5,
        trust: 4,
        problem_solving: 3,
        responsiveness: 1,
    }));
    assert_decodes_to(&example("customer_rated"), &expected);
}

#[test]
fn event_voided_decodes() {
    let expected = typed(EventBody::EventVoided(EventVoided {
        voided_event_id: "hs-9911".into(),
        reason: Some("entered twice".into()),
    }));
    assert_decodes_to(&example("event_voided"), &expected);
    let expected = typed(EventBody::EventVoided(EventVoided {
        voided_event_id: "hs-9911".into(),
        reason: None,
    }));
    assert_decodes_to(
        &event_json("event_voided", r#"{"voided_event_id":"hs-9911"}"#),
        &expected,
    );
}

#[test]
fn alert_acknowledged_decodes() {
    let expected = typed(EventBody::AlertAcknowledged(AlertAcknowledged {
        alert_id: "a-1f3".into(),
        by: "mia".into(),
        note: Some("talked on Monday".into()),
    }));
    assert_decodes_to(&example("alert_acknowledged"), &expected);
    let expected = typed(EventBody::AlertAcknowledged(AlertAcknowledged {
        alert_id: "a".into(),
        by: "mia".into(),
        note: None,
    }));
    assert_decodes_to(
        &event_json("alert_acknowledged", r#"{"alert_id":"a","by":"mia"}"#),
        &expected,
    );
}

#[test]
fn clock_tick_decodes_and_timestamps_normalise_to_utc() {
    assert_decodes_to(&example("clock_tick"), &typed(EventBody::ClockTick));
    let line = r#"{"event_id":"t-1","source":"pacer","occurred_at":"2026-11-18T10:00:00+01:00","type":"clock_tick"}"#;
    let ev = decode(line.as_bytes(), &limits()).unwrap();
    assert_eq!(ev.occurred_at, ts("2026-11-18T09:00:00Z"));
    assert_eq!(ev.body, EventBody::ClockTick);
    let enc = encode(&ev);
    assert_eq!(enc["occurred_at"], json!("2026-11-18T09:00:00Z"));
    assert_eq!(enc.len(), 4, "a tick has the envelope only: {enc:?}");
    assert_round_trip(&ev);
    // Fractional seconds are kept (to the microsecond).
    let v = set(
        &example("clock_tick"),
        "occurred_at",
        json!("2026-11-18T09:00:00.123456Z"),
    );
    let ev = ok(&v);
    assert_eq!(ev.occurred_at.micros() % 1_000_000, 123_456);
    assert_round_trip(&ev);
}

#[test]
fn encode_recorded_adds_seq_and_recorded_at_and_still_decodes() {
    let event = ok(&example("deal_won"));
    let rec = Recorded {
        seq: 42,
        recorded_at: ts("2026-11-03T10:00:01.5Z"),
        event: event.clone(),
    };
    let m = encode_recorded(&rec);
    assert_eq!(m["seq"], json!(42));
    assert_eq!(m["recorded_at"], json!("2026-11-03T10:00:01.500Z"));
    assert_eq!(m["type"], json!("deal_won"));
    // The engine's own fields are ignored on the way back in.
    assert_eq!(decode_value(&Value::Object(m), &limits()).unwrap(), event);
}

// ---------------------------------------------------------------------------------
// 2. Bad input: kind, field and a reason that quotes the value
// ---------------------------------------------------------------------------------

#[test]
fn malformed_json_is_rejected_as_the_whole_event() {
    let inputs: [&[u8]; 7] = [
        br#"{"event_id":"#,
        b"",
        b"   ",
        b"{",
        b"{\"a\":1,}",
        b"\xff\xfe",
        br#"{"a":1} {"b":2}"#,
    ];
    for text in inputs {
        let r = decode(text, &limits()).unwrap_err();
        assert_rejection(&r, RejectKind::MalformedJson, "event", "not valid JSON");
    }
}

#[test]
fn a_json_value_that_is_not_an_object_is_rejected() {
    for (text, quoted) in [
        ("[1,2]", "an array"),
        ("\"deal_won\"", "\"deal_won\""),
        ("42", "42"),
        ("null", "null"),
        ("true", "true"),
    ] {
        let r = decode(text.as_bytes(), &limits()).unwrap_err();
        assert_rejection(&r, RejectKind::MalformedJson, "event", quoted);
        assert!(r.reason.contains("expected a JSON object"), "{r:?}");
    }
}

#[test]
fn unknown_type_is_rejected_naming_it_and_the_known_types() {
    for name in ["deal_closed", "Deal_Won", "", "deal_won "] {
        let v = set(&event_json("deal_won", DEAL_WON), "type", json!(name));
        let r = rejected(&v);
        assert_rejection(&r, RejectKind::UnknownType, "type", &format!("{name:?}"));
        assert!(r.reason.contains("deal_won, deal_lost"), "{r:?}");
    }
}

#[test]
fn missing_envelope_fields_are_named() {
    let base = event_json("deal_won", DEAL_WON);
    for field in ["event_id", "source", "occurred_at", "type"] {
        assert_rejects(
            &without(&base, field),
            RejectKind::MissingField,
            field,
            "required field is missing",
        );
    }
}

#[test]
fn missing_body_fields_are_named() {
    let won = event_json("deal_won", DEAL_WON);
    for field in [
        "deal",
        "rep",
        "account",
        "customer_kind",
        "amount",
        "currency",
        "closed_on",
    ] {
        assert_rejects(
            &without(&won, field),
            RejectKind::MissingField,
            field,
            "missing",
        );
    }
    let rated = event_json("customer_rated", CUSTOMER_RATED);
    assert_rejects(
        &without(&rated, "trust"),
        RejectKind::MissingField,
        "trust",
        "missing",
    );
    let plan = event_json("plan_published", PLAN);
    for field in [
        "plan",
        "version",
        "basis",
        "horizon_start",
        "effective_from",
        "currency",
        "lines",
    ] {
        assert_rejects(
            &without(&plan, field),
            RejectKind::MissingField,
            field,
            "missing",
        );
    }
    let mut v = plan.clone();
    v["lines"][1]
        .as_object_mut()
        .unwrap()
        .shift_remove("target");
    assert_rejects(&v, RejectKind::MissingField, "lines[1].target", "missing");
    let mut v = plan.clone();
    v["lines"][2].as_object_mut().unwrap().shift_remove("rep");
    assert_rejects(&v, RejectKind::MissingField, "lines[2].rep", "missing");
    let mut v = example("deal_won");
    v["splits"][0]
        .as_object_mut()
        .unwrap()
        .shift_remove("percent");
    assert_rejects(&v, RejectKind::MissingField, "splits[0].percent", "missing");
    assert_rejects(
        &without(&example("rep_registered"), "name"),
        RejectKind::MissingField,
        "name",
        "missing",
    );
    assert_rejects(
        &without(&example("rep_departed"), "effective_month"),
        RejectKind::MissingField,
        "effective_month",
        "missing",
    );
}

#[test]
fn wrong_json_types_are_named_and_the_value_described() {
    let won = event_json("deal_won", DEAL_WON);
    // A number where a string (an id) is expected.
    assert_rejects(
        &set(&won, "rep", json!(5)),
        RejectKind::WrongType,
        "rep",
        "the number 5",
    );
    assert_rejects(
        &set(&won, "event_id", json!(9911)),
        RejectKind::WrongType,
        "event_id",
        "the number 9911",
    );
    assert_rejects(
        &set(&won, "type", json!(7)),
        RejectKind::WrongType,
        "type",
        "the number 7",
    );
    assert_rejects(
        &set(&won, "occurred_at", json!(1_700_000_000)),
        RejectKind::WrongType,
        "occurred_at",
        "1700000000",
    );
    assert_rejects(
        &set(&won, "closed_on", json!(20261103)),
        RejectKind::WrongType,
        "closed_on",
        "20261103",
    );
    assert_rejects(
        &set(&won, "currency", json!(978)),
        RejectKind::WrongType,
        "currency",
        "978",
    );
    // Optional fields still have a type.
    assert_rejects(
        &set(&won, "region", json!(7)),
        RejectKind::WrongType,
        "region",
        "the number 7",
    );
    assert_rejects(
        &set(&won, "product", json!(["a"])),
        RejectKind::WrongType,
        "product",
        "an array",
    );
    // null for a required field.
    for field in ["amount", "rep", "event_id", "closed_on", "currency"] {
        assert_rejects(
            &set(&won, field, Value::Null),
            RejectKind::WrongType,
            field,
            "null",
        );
    }
    // Amounts: a decimal string or a number, nothing else.
    assert_rejects(
        &set(&won, "amount", json!(true)),
        RejectKind::WrongType,
        "amount",
        "the boolean true",
    );
    assert_rejects(
        &set(&won, "amount", json!({"value": 1})),
        RejectKind::WrongType,
        "amount",
        "an object",
    );
    // A string where a score is expected.
    let rated = event_json("customer_rated", CUSTOMER_RATED);
    assert_rejects(
        &set(&rated, "listening", json!("4")),
        RejectKind::WrongType,
        "listening",
        "the string \"4\"",
    );
    assert_rejects(
        &set(&rated, "trust", Value::Null),
        RejectKind::WrongType,
        "trust",
        "null",
    );
    // Plan structure.
    let plan = event_json("plan_published", PLAN);
    assert_rejects(
        &set(&plan, "version", json!("1")),
        RejectKind::WrongType,
        "version",
        "the string \"1\"",
    );
    assert_rejects(
        &set(&plan, "lines", json!({})),
        RejectKind::WrongType,
        "lines",
        "an object",
    );
    assert_rejects(
        &set(&plan, "lines", json!([1])),
        RejectKind::WrongType,
        "lines[0]",
        "the number 1",
    );
    assert_rejects(
        &set_in(&plan, "lines", 2, "bucket", json!(3)),
        RejectKind::WrongType,
        "lines[2].bucket",
        "3",
    );
    assert_rejects(
        &set_in(&plan, "lines", 1, "target", json!(false)),
        RejectKind::WrongType,
        "lines[1].target",
        "false",
    );
    // Splits structure.
    let won = example("deal_won");
    assert_rejects(
        &set(&won, "splits", json!("ana")),
        RejectKind::WrongType,
        "splits",
        "the string \"ana\"",
    );
    assert_rejects(
        &set(
            &won,
            "splits",
            json!([{"rep": "ana", "percent": 100}, "ben"]),
        ),
        RejectKind::WrongType,
        "splits[1]",
        "\"ben\"",
    );
    assert_rejects(
        &set_in(&won, "splits", 1, "rep", json!(2)),
        RejectKind::WrongType,
        "splits[1].rep",
        "the number 2",
    );
    // A long string is described, truncated.
    let long = "x".repeat(500);
    let r = rejected(&set(&rated, "listening", json!(long)));
    assert_eq!(
        (r.kind, r.field.as_str()),
        (RejectKind::WrongType, "listening")
    );
    assert!(
        r.reason.contains("xxxxxxxxxx") && r.reason.len() < 200,
        "{r:?}"
    );
}

#[test]
fn bad_decimals_are_rejected_quoting_the_amount() {
    let won = event_json("deal_won", DEAL_WON);
    for bad in [
        "12,5",
        "1.234",
        "1e3",
        "",
        " 5",
        "5.",
        ".5",
        "12 500",
        "1_000",
        "0x10",
        "NaN",
        "92233720368547758.08",
    ] {
        let r = rejected(&set(&won, "amount", json!(bad)));
        assert_rejection(&r, RejectKind::InvalidValue, "amount", &format!("{bad:?}"));
        assert!(r.reason.contains("EUR"), "{r:?}");
    }
    let r = rejected(&set(&won, "amount", json!("1.234")));
    assert!(r.reason.contains("more than 2 digits"), "{r:?}");
    let r = rejected(&set(&won, "amount", json!("92233720368547758.08")));
    assert!(r.reason.contains("too large"), "{r:?}");
    // JSON numbers are held to the same rules.
    // (serde_json keeps a number's digits but writes an exponent as `e+3`.)
    for bad in ["1.234", "1e3", "1.5E2", "99999999999999999999999"] {
        let shown = shown(bad);
        assert_rejects(
            &set(&won, "amount", parse(bad)),
            RejectKind::InvalidValue,
            "amount",
            &format!("{shown:?}"),
        );
    }
    // JPY has no minor digits.
    let jpy = set(&won, "currency", json!("JPY"));
    let r = rejected(&set(&jpy, "amount", json!("1200.5")));
    assert_rejection(&r, RejectKind::InvalidValue, "amount", "\"1200.5\"");
    assert!(r.reason.contains("JPY"), "{r:?}");
    assert_rejects(
        &set(&jpy, "amount", parse("1200.5")),
        RejectKind::InvalidValue,
        "amount",
        "\"1200.5\"",
    );
    let EventBody::DealWon(d) = ok(&set(&jpy, "amount", json!("1200"))).body else {
        panic!()
    };
    assert_eq!(d.amount, Money::new(1200, cur("JPY")));
    // Plan targets and forecasts too.
    let plan = event_json("plan_published", PLAN);
    let r = rejected(&set_in(&plan, "lines", 0, "target", json!("100.001")));
    assert_rejection(
        &r,
        RejectKind::InvalidValue,
        "lines[0].target",
        "\"100.001\"",
    );
    assert!(r.reason.contains("EUR"), "{r:?}");
    let forecast = example("forecast_submitted");
    assert_rejects(
        &set(&forecast, "amount", json!("12,5")),
        RejectKind::InvalidValue,
        "amount",
        "\"12,5\"",
    );
    let stage = example("deal_stage_changed");
    assert_rejects(
        &set(&stage, "amount", json!("1.234")),
        RejectKind::InvalidValue,
        "amount",
        "\"1.234\"",
    );
}

#[test]
fn unknown_currencies_are_rejected_quoting_the_code() {
    for code in ["EURO", "ABC", "eur", "", "XAU", " EUR", "€"] {
        for name in [
            "deal_won",
            "plan_published",
            "forecast_submitted",
            "renewed",
            "deal_stage_changed",
        ] {
            let v = set(&example(name), "currency", json!(code));
            assert_rejects(
                &v,
                RejectKind::InvalidValue,
                "currency",
                &format!("{code:?}"),
            );
        }
    }
}

#[test]
fn bad_dates_months_and_timestamps_are_rejected_quoting_the_value() {
    let won = event_json("deal_won", DEAL_WON);
    for bad in [
        "2026-02-30",
        "2026-11-3",
        "2026-13-01",
        "2026/11/03",
        "03.11.2026",
        "2026-11-03T10:00:00Z",
        "",
    ] {
        assert_rejects(
            &set(&won, "closed_on", json!(bad)),
            RejectKind::InvalidValue,
            "closed_on",
            &format!("{bad:?}"),
        );
    }
    let opened = example("deal_opened");
    assert_rejects(
        &set(&opened, "expected_close", json!("2026-02-29")),
        RejectKind::InvalidValue,
        "expected_close",
        "\"2026-02-29\"",
    );
    let stage = example("deal_stage_changed");
    assert_rejects(
        &set(&stage, "expected_close", json!("2026-11-31")),
        RejectKind::InvalidValue,
        "expected_close",
        "\"2026-11-31\"",
    );
    // Leap day of a leap year is fine.
    assert!(decode_value(&set(&won, "closed_on", json!("2028-02-29")), &limits()).is_ok());

    for bad in [
        "2026-13",
        "2026-00",
        "2026-1",
        "2026-11-01",
        "26-11",
        "0000-01",
        "",
    ] {
        let v = set(&example("rep_departed"), "effective_month", json!(bad));
        assert_rejects(
            &v,
            RejectKind::InvalidValue,
            "effective_month",
            &format!("{bad:?}"),
        );
    }
    assert_rejects(
        &set(&example("rep_registered"), "start_month", json!("2026-13")),
        RejectKind::InvalidValue,
        "start_month",
        "\"2026-13\"",
    );
    assert_rejects(
        &set(
            &example("plan_published"),
            "horizon_start",
            json!("2026-13"),
        ),
        RejectKind::InvalidValue,
        "horizon_start",
        "\"2026-13\"",
    );
    assert_rejects(
        &set_in(
            &example("plan_published"),
            "lines",
            2,
            "month",
            json!("2026-13"),
        ),
        RejectKind::InvalidValue,
        "lines[2].month",
        "\"2026-13\"",
    );

    for bad in [
        "2026-11-03",
        "2026-11-03 10:00",
        "2026-11-03T10:00:00",
        "2026-11-03T25:00:00Z",
        "yesterday",
        "",
    ] {
        let v = set(&won, "occurred_at", json!(bad));
        assert_rejects(
            &v,
            RejectKind::InvalidValue,
            "occurred_at",
            &format!("{bad:?}"),
        );
    }
}

#[test]
fn probabilities_outside_0_to_100_are_rejected() {
    let opened = example("deal_opened");
    for bad in [
        "101",
        "-1",
        "\"150\"",
        "100.01",
        "655.36",
        "-0.01",
        "1000000000000",
    ] {
        let r = rejected(&set(&opened, "probability", parse(bad)));
        assert_rejection(
            &r,
            RejectKind::InvalidValue,
            "probability",
            bad.trim_matches('"'),
        );
        assert!(r.reason.contains("outside 0–100"), "{r:?}");
    }
    for bad in ["12.345", "\"12,5\"", "\"high\"", "1e2"] {
        assert_rejects(
            &set(&opened, "probability", parse(bad)),
            RejectKind::InvalidValue,
            "probability",
            &shown(bad),
        );
    }
    assert_rejects(
        &set(&opened, "probability", json!(true)),
        RejectKind::WrongType,
        "probability",
        "true",
    );
    let stage = example("deal_stage_changed");
    assert_rejects(
        &set(&stage, "probability", parse("101")),
        RejectKind::InvalidValue,
        "probability",
        "101",
    );
    let won = example("deal_won");
    let r = rejected(&set_in(&won, "splits", 0, "percent", parse("150")));
    assert_rejection(&r, RejectKind::InvalidValue, "splits[0].percent", "150");
    let r = rejected(&set_in(&won, "splits", 1, "percent", json!("-40")));
    assert_rejection(&r, RejectKind::InvalidValue, "splits[1].percent", "-40");
}

#[test]
fn scores_must_be_whole_numbers_from_1_to_5() {
    let rated = event_json("customer_rated", CUSTOMER_RATED);
    for field in ["listening", "trust", "problem_solving", "responsiveness"] {
        for bad in [
            "0",
            "6",
            "2.5",
            "-1",
            "5.0",
            "1e0",
            "256",
            "18446744073709551616",
        ] {
            let r = rejected(&set(&rated, field, parse(bad)));
            assert_rejection(
                &r,
                RejectKind::InvalidValue,
                field,
                &format!("{} is not", shown(bad)),
            );
        }
        for good in 1..=5u8 {
            let ev = ok(&set(&rated, field, json!(good)));
            let EventBody::CustomerRated(c) = &ev.body else {
                panic!()
            };
            let got = match field {
                "listening" => c.listening,
                "trust" => c.trust,
                "problem_solving" => c.problem_solving,
                _ => c.responsiveness,
            };
            assert_eq!(got, good);
        }
    }
}

#[test]
fn negative_amounts_are_rejected_where_the_type_gives_the_direction() {
    for name in [
        "deal_won",
        "deal_opened",
        "deal_stage_changed",
        "renewed",
        "expanded",
        "contracted",
        "churned",
    ] {
        let r = rejected(&set(&example(name), "amount", json!("-300.50")));
        assert_rejection(&r, RejectKind::InvalidValue, "amount", "\"-300.50\"");
        assert!(r.reason.contains("negative"), "{r:?}");
        let r = rejected(&set(&example(name), "amount", parse("-1")));
        assert_rejection(&r, RejectKind::InvalidValue, "amount", "-1");
    }
    // Zero is not negative.
    let ev = ok(&set(&example("deal_won"), "amount", json!("-0")));
    let EventBody::DealWon(d) = &ev.body else {
        panic!()
    };
    assert_eq!(d.amount.minor, 0);
    // A negative plan target.
    let r = rejected(&set_in(
        &example("plan_published"),
        "lines",
        0,
        "target",
        json!("-5"),
    ));
    assert_rejection(&r, RejectKind::InvalidValue, "lines[0].target", "\"-5\"");
}

#[test]
fn ids_over_the_byte_limit_are_too_large() {
    let won = event_json("deal_won", DEAL_WON);
    let at_limit = "a".repeat(256);
    let over = "a".repeat(257);
    for field in [
        "event_id", "source", "rep", "deal", "account", "region", "product",
    ] {
        let ev = ok(&set(&won, field, json!(at_limit)));
        assert_round_trip(&ev);
        let r = rejected(&set(&won, field, json!(over)));
        assert_rejection(&r, RejectKind::TooLarge, field, "257 bytes");
        assert!(r.reason.contains("256"), "{r:?}");
    }
    // Bytes, not characters: 129 two-byte characters are 258 bytes.
    let r = rejected(&set(&won, "rep", json!("é".repeat(129))));
    assert_rejection(&r, RejectKind::TooLarge, "rep", "258 bytes");
    // Nested ids.
    let r = rejected(&set_in(
        &example("deal_won"),
        "splits",
        1,
        "rep",
        json!(over),
    ));
    assert_rejection(&r, RejectKind::TooLarge, "splits[1].rep", "257 bytes");
    let r = rejected(&set_in(
        &example("plan_published"),
        "lines",
        0,
        "rep",
        json!(over),
    ));
    assert_rejection(&r, RejectKind::TooLarge, "lines[0].rep", "257 bytes");
    // A custom limit.
    let lim = Limits {
        id_bytes_max: 9,
        ..Limits::default()
    };
    let r = rejected_with(&set(&won, "rep", json!("ana-lima-x")), &lim);
    assert_rejection(&r, RejectKind::TooLarge, "rep", "10 bytes");
    assert!(r.reason.contains("limit of 9 bytes"), "{r:?}");
}

#[test]
fn empty_or_control_character_ids_are_invalid() {
    let won = event_json("deal_won", DEAL_WON);
    for field in ["event_id", "source", "rep", "deal", "account", "region"] {
        for empty in ["", "   ", "\t"] {
            assert_rejects(
                &set(&won, field, json!(empty)),
                RejectKind::InvalidValue,
                field,
                "empty",
            );
        }
    }
    assert_rejects(
        &set(&won, "rep", json!("an\na")),
        RejectKind::InvalidValue,
        "rep",
        "\"an\\na\"",
    );
    assert_rejects(
        &set_in(&example("deal_won"), "splits", 0, "rep", json!("")),
        RejectKind::InvalidValue,
        "splits[0].rep",
        "empty",
    );
    assert_rejects(
        &set(&example("activity_logged"), "kind", json!("")),
        RejectKind::InvalidValue,
        "kind",
        "empty",
    );
}

#[test]
fn events_over_the_byte_limit_are_too_large() {
    let base = example("rep_registered");
    let size_without_name = to_bytes(&set(&base, "name", json!(""))).len();
    let limit = Limits::default().event_bytes_max;
    assert_eq!(limit, 64 * 1024);
    // Exactly at the limit: accepted. (`name` is free text, bounded by the event size only.)
    let at_limit = set(&base, "name", json!("n".repeat(limit - size_without_name)));
    assert_eq!(to_bytes(&at_limit).len(), limit);
    assert!(decode(&to_bytes(&at_limit), &limits()).is_ok());
    // One byte over: rejected as the whole event, naming the size.
    let over = set(
        &base,
        "name",
        json!("n".repeat(limit - size_without_name + 1)),
    );
    let r = decode(&to_bytes(&over), &limits()).unwrap_err();
    assert_rejection(
        &r,
        RejectKind::TooLarge,
        "event",
        &format!("{} bytes", limit + 1),
    );
    assert!(r.reason.contains("65536"), "{r:?}");
    // Beyond every limit (a plan's included), the bytes are not even parsed.
    let lim = Limits {
        event_bytes_max: 100,
        plan_bytes_max: 1000,
        ..Limits::default()
    };
    assert_eq!(lim.bytes_max(), 1000);
    let r = decode(&b"x".repeat(1001), &lim).unwrap_err();
    assert_rejection(&r, RejectKind::TooLarge, "event", "1001 bytes");
    assert!(r.reason.contains("limit of 1000 bytes"), "{r:?}");
}

#[test]
fn plans_have_their_own_byte_limit() {
    let plan = to_bytes(&event_json("plan_published", PLAN));
    let n = plan.len();
    assert!(n > 300, "{n}");
    // A plan over the event limit but within the plan limit is accepted ...
    let lim = Limits {
        event_bytes_max: 100,
        plan_bytes_max: n,
        ..Limits::default()
    };
    assert!(decode(&plan, &lim).is_ok());
    // ... while any other event of that size is not.
    let tick = to_bytes(&set(
        &example("clock_tick"),
        "pad",
        json!("p".repeat(n - 150)),
    ));
    assert!(tick.len() > 100 && tick.len() < n, "{}", tick.len());
    let r = decode(&tick, &lim).unwrap_err();
    assert_rejection(&r, RejectKind::TooLarge, "event", "limit of 100 bytes");
    // A plan over the plan limit is too large.
    let lim = Limits {
        event_bytes_max: 100,
        plan_bytes_max: n - 1,
        ..Limits::default()
    };
    let r = decode(&plan, &lim).unwrap_err();
    assert_rejection(&r, RejectKind::TooLarge, "event", &format!("{n} bytes"));
    // The defaults: 64 KiB for an event, more for a plan.
    assert!(Limits::default().plan_bytes_max >= Limits::default().event_bytes_max);
}

#[test]
fn plans_over_the_line_limit_are_too_large() {
    let lim = Limits {
        plan_lines_max: 2,
        ..Limits::default()
    };
    let plan = event_json("plan_published", PLAN);
    assert_eq!(plan["lines"].as_array().unwrap().len(), 3);
    let r = rejected_with(&plan, &lim);
    assert_rejection(&r, RejectKind::TooLarge, "lines", "3 lines");
    assert!(r.reason.contains("limit of 2"), "{r:?}");
    let mut two = plan.clone();
    two["lines"].as_array_mut().unwrap().pop();
    assert!(decode(&to_bytes(&two), &lim).is_ok());
}

#[test]
fn plan_lines_with_unknown_buckets_or_fractional_activity_targets_are_rejected() {
    let plan = event_json("plan_published", PLAN);
    for bad in [
        "region:emea",
        "Total",
        "geo:",
        "activity: call",
        "",
        "totals",
    ] {
        let r = rejected(&set_in(&plan, "lines", 1, "bucket", json!(bad)));
        assert_rejection(
            &r,
            RejectKind::InvalidValue,
            "lines[1].bucket",
            &format!("{bad:?}"),
        );
    }
    let r = rejected(&set_in(&plan, "lines", 1, "target", json!("40.5")));
    assert_rejection(&r, RejectKind::InvalidValue, "lines[1].target", "\"40.5\"");
    assert!(r.reason.contains("whole numbers"), "{r:?}");
    let r = rejected(&set_in(&plan, "lines", 1, "target", parse("40.0")));
    assert_rejection(&r, RejectKind::InvalidValue, "lines[1].target", "\"40.0\"");
    // Unknown basis.
    assert_rejects(
        &set(&plan, "basis", json!("top-down")),
        RejectKind::InvalidValue,
        "basis",
        "\"top-down\"",
    );
    // Version must be a whole u32.
    for bad in ["-1", "1.5", "4294967296"] {
        assert_rejects(
            &set(&plan, "version", parse(bad)),
            RejectKind::InvalidValue,
            "version",
            bad,
        );
    }
}

#[test]
fn choices_are_rejected_quoting_the_value_and_listing_the_options() {
    let r = rejected(&set(
        &event_json("deal_won", DEAL_WON),
        "customer_kind",
        json!("New"),
    ));
    assert_rejection(&r, RejectKind::InvalidValue, "customer_kind", "\"New\"");
    assert!(r.reason.contains("new, existing"), "{r:?}");
    let r = rejected(&set(
        &example("forecast_submitted"),
        "category",
        json!("pipeline"),
    ));
    assert_rejection(&r, RejectKind::InvalidValue, "category", "\"pipeline\"");
    assert!(r.reason.contains("commit, best_case"), "{r:?}");
    assert_rejects(
        &set(&example("forecast_submitted"), "category", json!(1)),
        RejectKind::WrongType,
        "category",
        "1",
    );
}

#[test]
fn the_first_problem_in_schema_order_is_reported() {
    // Envelope before body; an unknown type before its (absent) body fields.
    let v = json!({"event_id": "", "type": "nope"});
    assert_rejects(&v, RejectKind::InvalidValue, "event_id", "empty");
    let v = json!({"event_id": "e", "source": "s", "occurred_at": "2026-11-03T10:00:00Z", "type": "nope"});
    assert_rejects(&v, RejectKind::UnknownType, "type", "\"nope\"");
    let v = json!({"event_id": "e", "source": "s", "occurred_at": "2026-11-03T10:00:00Z", "type": "deal_won"});
    assert_rejects(&v, RejectKind::MissingField, "deal", "missing");
}

// ---------------------------------------------------------------------------------
// 3. Validation against the deployment's rules
// ---------------------------------------------------------------------------------

/// No exchange rates: the log has set none.
static NO_FX: FxTable = FxTable::new();

fn rules_in(currency: Currency) -> Rules<'static> {
    Rules {
        currency,
        timezone: chrono_tz::UTC,
        fx: &NO_FX,
    }
}

fn rules() -> Rules<'static> {
    rules_in(eur())
}

fn invalid(v: &Value) -> Rejection {
    let ev = ok(v);
    validate(&ev, &rules()).expect_err("should not validate")
}

#[test]
fn valid_events_pass_validation() {
    for v in examples() {
        let ev = ok(&v);
        assert_eq!(validate(&ev, &rules()), Ok(()), "{v}");
    }
    // Events without money pass whatever their other content.
    let ev = ok(&event_json(
        "deal_stage_changed",
        r#"{"deal":"d","stage":"s"}"#,
    ));
    assert_eq!(validate(&ev, &rules_in(cur("JPY"))), Ok(()));
    // Horizon edges: the first and the 24th month.
    let v = event_json(
        "plan_published",
        r#"{"plan":"p","version":2,"basis":"revision","horizon_start":"2026-11","effective_from":"2028-10",
            "currency":"EUR","lines":[{"rep":"ana","month":"2026-11","bucket":"total","target":"1"},
                                      {"rep":"ana","month":"2028-10","bucket":"total","target":"1"},
                                      {"rep":"ana","month":"2028-10","bucket":"activity:call","target":"1"},
                                      {"rep":"ben","month":"2028-10","bucket":"total","target":"1"}]}"#,
    );
    assert_eq!(validate(&ok(&v), &rules()), Ok(()));
}

#[test]
fn a_currency_other_than_the_reporting_one_is_unsupported() {
    for name in [
        "deal_won",
        "deal_opened",
        "deal_stage_changed",
        "forecast_submitted",
        "plan_published",
        "renewed",
        "churned",
    ] {
        let v = set(&example(name), "currency", json!("USD"));
        let r = invalid(&v);
        assert_rejection(&r, RejectKind::UnsupportedCurrency, "currency", "\"USD\"");
        assert!(r.reason.contains("\"EUR\""), "{name}: {r:?}");
    }
    // The same event passes under a USD deployment.
    let ev = ok(&set(&example("deal_won"), "currency", json!("USD")));
    assert_eq!(validate(&ev, &rules_in(cur("USD"))), Ok(()));
}

#[test]
fn plan_line_months_must_be_inside_the_24_month_horizon() {
    let plan = event_json("plan_published", PLAN);
    for (bad, i) in [("2028-11", 1), ("2026-10", 2), ("2030-01", 0)] {
        let r = invalid(&set_in(&plan, "lines", i, "month", json!(bad)));
        assert_rejection(
            &r,
            RejectKind::InvalidValue,
            &format!("lines[{i}].month"),
            bad,
        );
        assert!(r.reason.contains("2026-11..2028-10"), "{r:?}");
    }
}

#[test]
fn duplicate_plan_lines_are_rejected() {
    let mut plan = event_json("plan_published", PLAN);
    let first = plan["lines"][0].clone();
    // Same rep, month and bucket, another target: still a duplicate.
    let mut dup = first.clone();
    dup["target"] = json!("5");
    plan["lines"].as_array_mut().unwrap().push(dup);
    let r = invalid(&plan);
    assert_rejection(&r, RejectKind::InvalidValue, "lines[3]", "lines[0]");
    assert!(
        r.reason.contains("\"ana\"") && r.reason.contains("2026-11") && r.reason.contains("total"),
        "{r:?}"
    );
    // Another rep, month or bucket is not a duplicate.
    let plan = event_json("plan_published", PLAN);
    for (key, value) in [
        ("rep", "zoe"),
        ("month", "2026-12"),
        ("bucket", "retention"),
    ] {
        let mut v = plan.clone();
        let mut line = first.clone();
        line[key] = json!(value);
        v["lines"].as_array_mut().unwrap().push(line);
        assert_eq!(validate(&ok(&v), &rules()), Ok(()), "{key}");
    }
}

#[test]
fn effective_from_must_be_inside_the_horizon() {
    let plan = event_json("plan_published", PLAN);
    for bad in ["2026-10", "2028-11", "2040-01"] {
        let r = invalid(&set(&plan, "effective_from", json!(bad)));
        assert_rejection(&r, RejectKind::InvalidValue, "effective_from", bad);
        assert!(r.reason.contains("24-month horizon"), "{r:?}");
    }
    assert_eq!(
        validate(
            &ok(&set(&plan, "effective_from", json!("2028-10"))),
            &rules()
        ),
        Ok(())
    );
}

#[test]
fn splits_must_sum_to_100_with_each_rep_once() {
    let won = example("deal_won");
    for (a, b, sum) in [
        ("60", "50", "110.00"),
        ("60", "39.99", "99.99"),
        ("0", "0", "0.00"),
    ] {
        let v = set(
            &won,
            "splits",
            json!([{"rep": "ana", "percent": parse(a)}, {"rep": "ben", "percent": parse(b)}]),
        );
        let r = invalid(&v);
        assert_rejection(&r, RejectKind::InvalidValue, "splits", sum);
        assert!(r.reason.contains("not 100"), "{r:?}");
    }
    let v = set(
        &won,
        "splits",
        json!([{"rep": "ana", "percent": 50}, {"rep": "ana", "percent": 50}]),
    );
    let r = invalid(&v);
    assert_rejection(&r, RejectKind::InvalidValue, "splits[1].rep", "\"ana\"");
    // A single split of 100% and uneven shares that add up are fine.
    for splits in [
        json!([{"rep": "ben", "percent": 100}]),
        json!([{"rep": "a", "percent": 33.33}, {"rep": "b", "percent": 33.33}, {"rep": "c", "percent": "33.34"}]),
    ] {
        assert_eq!(
            validate(&ok(&set(&won, "splits", splits)), &rules()),
            Ok(())
        );
    }
}

// ---------------------------------------------------------------------------------
// 4. Unknown fields are ignored
// ---------------------------------------------------------------------------------

#[test]
fn unknown_fields_are_ignored_at_every_level() {
    for name in EventBody::TYPE_NAMES {
        let plain = example(name);
        let extra = set(&plain, "foo", json!(1));
        let extra = set(
            &extra,
            "crm_meta",
            json!({"a": {"b": [1, 2, {"c": null}]}, "d": "e"}),
        );
        assert_eq!(ok(&extra), ok(&plain), "{name}");
    }
    let plan = event_json("plan_published", PLAN);
    let extra = set_in(&plan, "lines", 0, "note", json!({"why": ["stretch"]}));
    assert_eq!(ok(&extra), ok(&plan));
    let won = example("deal_won");
    let extra = set_in(&won, "splits", 1, "role", json!("overlay"));
    assert_eq!(ok(&extra), ok(&won));
    // The engine's own fields on input are ignored too.
    let extra = set(
        &set(&won, "seq", json!(7)),
        "recorded_at",
        json!("not even a time"),
    );
    assert_eq!(ok(&extra), ok(&won));
}

// ---------------------------------------------------------------------------------
// 5. Decoding never panics
// ---------------------------------------------------------------------------------

/// Decodes `bytes`; whatever comes back must be well-formed: an event that round-trips
/// through `encode`, or a rejection that names a field and gives a reason.
fn check_total(bytes: &[u8]) {
    match decode(bytes, &limits()) {
        Ok(ev) => {
            let back = decode_value(&Value::Object(encode(&ev)), &limits());
            assert_eq!(
                back.as_ref(),
                Ok(&ev),
                "input {:?}",
                String::from_utf8_lossy(bytes)
            );
            let _ = validate(&ev, &rules());
        }
        Err(r) => {
            assert!(
                !r.field.is_empty() && !r.reason.is_empty(),
                "{r:?} for {:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}

#[test]
fn decoding_never_panics_on_truncations_and_byte_replacements() {
    let mut inputs = 0usize;
    let mut accepted = 0usize;
    for v in examples() {
        let bytes = to_bytes(&v);
        for end in 0..=bytes.len() {
            check_total(&bytes[..end]);
            inputs += 1;
        }
        for i in 0..bytes.len() {
            for b in [b'"', b'{', b'1', 0xff] {
                let mut m = bytes.clone();
                m[i] = b;
                if decode(&m, &limits()).is_ok() {
                    accepted += 1;
                }
                check_total(&m);
                inputs += 1;
            }
        }
    }
    assert!(inputs > 5_000, "{inputs}");
    // Some replacements (a digit in an amount, a letter in an id) stay valid.
    assert!(accepted > 100, "{accepted}");
}

#[test]
fn decoding_never_panics_on_pseudo_random_edits() {
    // A deterministic xorshift generator: the same edits on every run.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet: &[u8] = b"\"{}[]:,-.0123456789eE+ \\nulltruefalse\x00\x7f\xc3\xa9\xff";
    for v in examples() {
        let bytes = to_bytes(&v);
        for _ in 0..300 {
            let mut m = bytes.clone();
            for _ in 0..(1 + next() % 4) {
                let pos = (next() as usize) % (m.len() + 1);
                match next() % 3 {
                    0 if pos < m.len() => {
                        m.remove(pos);
                    }
                    1 => m.insert(pos, alphabet[(next() as usize) % alphabet.len()]),
                    _ if pos < m.len() => m[pos] = alphabet[(next() as usize) % alphabet.len()],
                    _ => {}
                }
            }
            check_total(&m);
        }
    }
    // Deep nesting is an error, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let r = decode(
        deep.as_bytes(),
        &Limits {
            event_bytes_max: usize::MAX,
            ..Limits::default()
        },
    )
    .unwrap_err();
    assert_eq!(r.kind, RejectKind::MalformedJson);
    // Deep nesting in a field the event type does not have is skipped like any
    // unknown field (without recursion); in a field it reads, it is the wrong type.
    let nested = |field: &str| {
        format!(
            r#"{{"event_id":"e","source":"s","occurred_at":"2026-11-03T10:00:00Z","type":"activity_logged","rep":"ana","kind":"call","{field}":{}1{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        )
    };
    assert!(decode(nested("x").as_bytes(), &limits()).is_ok());
    let r = decode(nested("account").as_bytes(), &limits()).unwrap_err();
    assert_eq!(r.kind, RejectKind::WrongType);
    assert_eq!(r.field, "account");
    assert!(r.reason.contains("an array"), "{}", r.reason);
}

#[test]
fn wrong_values_in_every_field_of_every_example_never_panic() {
    let replacements = [
        Value::Null,
        json!(true),
        json!(0),
        json!(-1),
        parse("1.5"),
        parse("1e400"),
        parse("18446744073709551616"),
        json!(""),
        json!("x"),
        json!("-0"),
        json!("2026-11"),
        json!("2026-11-03"),
        json!([]),
        json!([{}]),
        json!({}),
    ];
    for v in examples() {
        let keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        for key in keys {
            for r in &replacements {
                check_total(&to_bytes(&set(&v, &key, r.clone())));
            }
            check_total(&to_bytes(&without(&v, &key)));
        }
    }
}

/// Dates and instants outside the years a month can name (`"0000-06-15"`,
/// `"-001-01-01"`, `"0000-01-01T00:00:00Z"`) are rejected at the door: once stored,
/// the fold could not place them in a month.
#[test]
fn dates_and_timestamps_before_the_year_1_are_rejected() {
    let won = example("deal_won");
    for bad in ["0000-06-15", "-001-01-01"] {
        assert_rejects(
            &set(&won, "closed_on", json!(bad)),
            RejectKind::InvalidValue,
            "closed_on",
            &format!("{bad:?}"),
        );
    }
    let v = set(
        &example("activity_logged"),
        "occurred_at",
        json!("0000-01-01T00:00:00Z"),
    );
    assert_rejects(
        &v,
        RejectKind::InvalidValue,
        "occurred_at",
        "\"0000-01-01T00:00:00Z\"",
    );
}

#[test]
fn ids_with_surrounding_spaces_are_rejected() {
    let v = set(&example("deal_won"), "region", json!("emea "));
    assert_rejects(&v, RejectKind::InvalidValue, "region", "\"emea \"");
    let v = set(&example("activity_logged"), "rep", json!(" ana"));
    assert_rejects(&v, RejectKind::InvalidValue, "rep", "\" ana\"");
}

#[test]
fn amounts_over_the_per_event_limit_are_rejected() {
    let rules = rules_in(Currency::from_code("EUR").unwrap());
    let ok_amount = set(&example("deal_won"), "amount", json!("10000000000000.00"));
    validate(&ok(&ok_amount), &rules).unwrap();
    let too_big = set(&example("deal_won"), "amount", json!("10000000000000.01"));
    let r = validate(&ok(&too_big), &rules).unwrap_err();
    assert_eq!(r.kind, RejectKind::InvalidValue);
    assert_eq!(r.field, "amount");
    assert!(r.reason.contains("10000000000000.01"), "{}", r.reason);
}

#[test]
fn fx_rates_are_positive_exact_decimals_for_another_currency() {
    let v = example("fx_rate_set");
    let ev = ok(&v);
    assert_eq!(
        ev.body,
        EventBody::FxRateSet(FxRateSet {
            currency: cur("USD"),
            month: Month::parse("2026-11").unwrap(),
            rate: FxRate::from_scaled(9_234_000_000).unwrap(),
        })
    );
    assert_eq!(
        ok(&set(&v, "rate", json!(1.5))).body.type_name(),
        "fx_rate_set"
    );
    for bad in ["0", "-0.5", "1,05", "0.00000000001", "abc"] {
        assert_rejects(
            &set(&v, "rate", json!(bad)),
            RejectKind::InvalidValue,
            "rate",
            bad,
        );
    }
    assert_rejects(
        &set(&v, "currency", json!("XXX")),
        RejectKind::InvalidValue,
        "currency",
        "XXX",
    );
    assert_rejects(
        &set(&v, "month", json!("2026-13")),
        RejectKind::InvalidValue,
        "month",
        "2026-13",
    );
    // A rate for the reporting currency means nothing.
    let r = invalid(&set(&v, "currency", json!("EUR")));
    assert_rejection(
        &r,
        RejectKind::InvalidValue,
        "currency",
        "reporting currency",
    );
}

#[test]
fn an_unpaired_surrogate_escape_is_malformed_json_wherever_it_is() {
    let with = |field: &str, value: &str| {
        format!(
            r#"{{"event_id":"e","source":"s","occurred_at":"2026-11-03T10:00:00Z","type":"activity_logged","rep":"ana","kind":"call","{field}":"{value}"}}"#
        )
    };
    for (field, value) in [
        ("x", r"\ud800"),
        ("account", r"\udc00"),
        ("event_id", r"a\ud800b"),
    ] {
        let r = decode(with(field, value).as_bytes(), &limits()).unwrap_err();
        assert_eq!(r.kind, RejectKind::MalformedJson, "{field}: {r}");
        assert!(r.reason.contains("not valid JSON"), "{r}");
    }
    // A pair is a character; other escapes and a backslash before a `u` are text.
    let ev = decode(
        with("account", r"\ud83d\ude00 \u00e9 C:\\users").as_bytes(),
        &limits(),
    )
    .unwrap();
    match ev.body {
        EventBody::ActivityLogged(a) => assert_eq!(a.account.as_deref(), Some("😀 é C:\\users")),
        other => panic!("{other:?}"),
    }
    // Not an object, and not JSON either: the parser's reason, not a guess.
    let r = decode(br#""\ud800""#, &limits()).unwrap_err();
    assert_eq!(r.kind, RejectKind::MalformedJson);
    assert!(r.reason.contains("not valid JSON"), "{r}");
}
