//! The deliverer's gathering, against a real store: bursts become one message, the
//! daily summary waits for its hour and quiet hours for their end (org time zone),
//! and the same intents always make the same delivery id.

use std::sync::{Arc, RwLock};

use pacer_projections::model::Model;

use super::store::{Mark, Store};
use super::subscription::{Channel, Subscriptions, Wish};
use super::{Deliverer, Message};
use crate::access::{Role, Users, USERS_FILE};
use crate::config::Config;
use crate::metrics::Metrics;

/// Milliseconds of a local time in Berlin (winter: UTC+1).
fn berlin(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&format!("{t}+01:00"))
        .unwrap()
        .timestamp_millis()
}

fn alert(id: &str, severity: &str) -> Vec<u8> {
    serde_json::json!({
        "alert_id": id, "rule": "behind_pace", "severity": severity, "focus": true,
        "rep": "ana", "team": "north", "change": "raised", "message": format!("{id} is behind"),
    })
    .to_string()
    .into_bytes()
}

fn deliverer(dir: &std::path::Path) -> (Deliverer, [String; 3]) {
    let mut users = Users::default();
    users.add("root", Role::Admin, vec![], None).unwrap();
    users.save(&dir.join(USERS_FILE)).unwrap();
    let wish = |cadence: &str, quiet: Option<&str>| Wish {
        user: "root".into(),
        channel: Some(Channel::Email {
            to: "root@example.com".into(),
        }),
        cadence: Some(cadence.into()),
        quiet: quiet.map(str::to_owned),
        ..Wish::default()
    };
    let ids = Subscriptions::update(dir, |s| {
        Ok([
            s.add(wish("immediate", None))?.id,
            s.add(wish("daily", None))?.id,
            s.add(wish("immediate", Some("20:00-07:00")))?.id,
        ])
    })
    .unwrap();
    let mut config = Config::parse(
        "[org]\ntimezone = \"Europe/Berlin\"\n[deliver]\ngather_ms = 60000\ndaily_hour = 8\n",
    )
    .unwrap();
    config.deliver.smtp = None;
    let db = sled::open(dir.join("db")).unwrap();
    let state = Arc::new(RwLock::new(Model::new(config.org.clone())));
    let d = Deliverer::new(
        dir.to_owned(),
        Store::new(db.open_tree("deliveries").unwrap()),
        config,
        state,
        Arc::new(Metrics::new()),
    );
    (d, ids)
}

fn record(d: &Deliverer, seq: u64, ids: &[(&str, &str)], now_ms: i64) {
    let payloads: Vec<(String, Vec<u8>)> = ids
        .iter()
        .map(|(id, sev)| (format!("pacer:{id}:raised:{seq}"), alert(id, sev)))
        .collect();
    let messages: Vec<Message<'_>> = payloads
        .iter()
        .map(|(msg_id, payload)| Message {
            subject: "pacer.alerts.north.ana",
            msg_id,
            payload,
        })
        .collect();
    d.record_at(Mark::Log(seq), &messages, now_ms).unwrap();
}

/// Deliveries made, by subscription: (subscription, alert ids in order).
fn made(d: &Deliverer) -> Vec<(String, Vec<String>)> {
    d.store()
        .due()
        .unwrap()
        .into_iter()
        .map(|x| {
            let ids = x
                .items
                .iter()
                .map(|i| i["alert_id"].as_str().unwrap().to_owned())
                .collect();
            (x.subscription, ids)
        })
        .collect()
}

#[test]
fn a_burst_is_one_message_the_daily_waits_for_its_hour_and_quiet_hours_for_their_end() {
    let dir = tempfile::tempdir().unwrap();
    let (d, [now_sub, daily_sub, quiet_sub]) = deliverer(dir.path());
    let t0 = berlin("2026-11-23T10:00:00");
    record(&d, 1, &[("a1", "warning"), ("a2", "critical")], t0);
    assert_eq!(d.store().log_mark().unwrap(), Some(1));
    assert_eq!(
        d.gather(t0 + 59_000).unwrap(),
        0,
        "the window is still open"
    );
    record(&d, 2, &[("a3", "info")], t0 + 30_000);
    assert_eq!(
        d.gather(t0 + 60_000).unwrap(),
        2,
        "one each for the immediate ones"
    );
    let mut got = made(&d);
    got.sort();
    let burst = vec!["a2".to_owned(), "a1".into(), "a3".into()];
    let mut want = vec![
        (now_sub.clone(), burst.clone()),
        (quiet_sub.clone(), burst.clone()),
    ];
    want.sort();
    assert_eq!(
        got, want,
        "three changes in one message each, the most severe first"
    );
    assert_eq!(
        d.gather(berlin("2026-11-24T07:59:00")).unwrap(),
        0,
        "the daily one waits"
    );
    assert_eq!(d.gather(berlin("2026-11-24T08:00:00")).unwrap(), 1);
    assert!(made(&d).contains(&(daily_sub.clone(), burst)));

    // At 21:00 the quiet subscription waits until 07:00; the others do not.
    record(&d, 3, &[("b1", "warning")], berlin("2026-11-24T21:00:00"));
    let before = made(&d).len();
    assert_eq!(d.gather(berlin("2026-11-24T21:01:00")).unwrap(), 1);
    assert_eq!(d.gather(berlin("2026-11-25T06:59:00")).unwrap(), 0);
    assert_eq!(d.gather(berlin("2026-11-25T07:00:00")).unwrap(), 1);
    assert_eq!(
        d.gather(berlin("2026-11-25T08:00:00")).unwrap(),
        1,
        "the daily one"
    );
    assert_eq!(made(&d).len(), before + 3);
    assert!(d.store().pending().unwrap().is_empty());
}

#[test]
fn the_same_intents_make_the_same_delivery_and_a_removed_subscription_gets_nothing() {
    let run = |remove: bool| {
        let dir = tempfile::tempdir().unwrap();
        let (d, [now_sub, _, quiet_sub]) = deliverer(dir.path());
        if remove {
            Subscriptions::update(dir.path(), |s| s.remove(&quiet_sub)).unwrap();
        }
        let t0 = berlin("2026-11-23T10:00:00");
        record(&d, 7, &[("a1", "warning"), ("a2", "warning")], t0);
        d.gather(t0 + 60_000).unwrap();
        let ids: Vec<(String, String)> = d
            .store()
            .due()
            .unwrap()
            .into_iter()
            .map(|x| (x.subscription, x.id))
            .collect();
        (now_sub, ids)
    };
    let (_, first) = run(false);
    assert_eq!(first.len(), 2);
    // Another data dir, other subscription ids: the ids differ by subscription only.
    let (sub, fewer) = run(true);
    assert_eq!(fewer.len(), 1);
    assert_eq!(fewer[0].0, sub);
    assert_eq!(
        fewer[0].1,
        super::store::Delivery::id_of(&sub, &["pacer:a1:raised:7", "pacer:a2:raised:7"])
    );
}

/// After a crash between the append and the deliverer's recording, start-up makes
/// the messages again from the log: the same ids and figures the fold made, so the
/// same intents, the same delivery ids, the same keys the receivers see.
#[test]
fn messages_made_again_from_the_log_are_the_ones_the_fold_made() {
    use crate::engine::tick_event;
    use crate::local::Local;
    use pacer_projections::time::Timestamp;

    let dir = tempfile::tempdir().unwrap();
    let (mut log, org) = crate::demo::demo_log(dir.path(), 10, 7);
    let config = Config::default();
    assert_eq!(org, config.org);
    let state = crate::replay::rebuild_for_append(&mut log, &org, |_, _, _| {}).unwrap();
    let monday = || Timestamp::parse_rfc3339("2026-11-23T08:00:00Z").unwrap();
    let local = Local::new(
        log,
        Arc::new(RwLock::new(state)),
        config.clone(),
        Arc::new(Metrics::new()),
        Box::new(monday),
    );
    let (tx, rx) = std::sync::mpsc::sync_channel(4);
    local.feed_deliveries(tx);
    local.submit(vec![tick_event(monday())]).unwrap();
    let (seq, live) = rx.recv().unwrap();
    assert!(live.len() > 5, "a new week raises alerts: {}", live.len());
    drop(local);

    let mut log = crate::log::Log::open(dir.path()).unwrap();
    let (_, again) =
        crate::outbox::rebuild_with_messages(&mut log, &config, seq - 1, |_| {}).unwrap();
    let view = |m: &[crate::engine::Outgoing]| -> Vec<(String, String, Vec<u8>, u64)> {
        m.iter()
            .map(|o| {
                (
                    o.subject.clone(),
                    o.msg_id.clone(),
                    o.payload.to_vec(),
                    o.seq,
                )
            })
            .collect()
    };
    assert_eq!(view(&again), view(&live));
    let (_, none) = crate::outbox::rebuild_with_messages(&mut log, &config, seq, |_| {}).unwrap();
    assert!(none.is_empty(), "nothing after the mark");
}
