//! `pacer serve` against a real nats-server that each test starts on a free port with
//! its own JetStream store: alerts to subscribers, queries like the CLI, the
//! dead-letter stream, duplicates, kill -9 of the engine and of the broker, SIGTERM.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use bytes::Bytes;
use common::nats::*;
use common::*;
use futures::StreamExt;
use rand::{Rng, SeedableRng};
use serde_json::Value;

/// EUR, Berlin; no ticks of the engine's own: time comes from the events, so the
/// expected alerts do not depend on the day the test runs.
const CONFIG: &str = "[org]\ncurrency = \"EUR\"\ntimezone = \"Europe/Berlin\"\n\n[serve]\ntick_interval_s = 0\nbatch_events_max = 500\ndigest_weekday = \"wednesday\"\ndigest_time = \"09:00\"\n";

/// The scenario of tests/alerts.rs ([`ANA_BEHIND`]), ticked on Tuesday and on
/// Wednesday 2026-11-18 at 10:00 Berlin time, past the digest time (Wednesday 09:00).
fn events() -> String {
    format!("{ANA_BEHIND}{TICKS}")
}

const TICKS: &str = r#"{"event_id":"t-0","source":"pacer","occurred_at":"2026-11-17T09:00:00Z","type":"clock_tick"}
{"event_id":"t-1","source":"pacer","occurred_at":"2026-11-18T09:00:00Z","type":"clock_tick"}
"#;

struct Setup {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    data: PathBuf,
    config: PathBuf,
    nats: NatsServer,
}

fn setup() -> Setup {
    let (tmp, data) = temp_org(CONFIG);
    let dir = tmp.path().to_owned();
    let config = dir.join("pacer.toml");
    let nats = NatsServer::start(&dir.join("jetstream"));
    Setup {
        data,
        dir,
        config,
        nats,
        _tmp: tmp,
    }
}

/// Writes the setup's config: the tests' one with `from` replaced by `to`.
fn configure(s: &Setup, from: &str, to: &str) {
    std::fs::write(&s.config, CONFIG.replace(from, to)).unwrap();
}

fn pacer_with(config: &Path, data: &Path, args: &[&str]) -> std::process::Output {
    pacer(data)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("pacer runs")
}

/// `pacer ARGS...` on the setup's data dir and config, which must succeed, its output
/// parsed as JSON.
/// Puts JSON Lines onto the events stream with `pacer publish`, as an operator would.
fn publish_lines(s: &Setup, lines: &str) {
    let file = s.dir.join("events.jsonl");
    std::fs::write(&file, lines).unwrap();
    ok(pacer_with(
        &s.config,
        &s.data,
        &["publish", file.to_str().unwrap(), "--nats", &s.nats.url()],
    ));
}

fn cli_json(s: &Setup, args: &[&str]) -> Value {
    ok_json(pacer_with(&s.config, &s.data, args))
}

/// The event ids in the log, checking that none is there twice.
fn stored_ids(s: &Setup) -> BTreeSet<String> {
    ids_once(&s.config, &s.data)
}

/// The event ids in the log of `data`, checking that none is there twice.
fn ids_once(config: &Path, data: &Path) -> BTreeSet<String> {
    let out = ok(pacer_with(config, data, &["log"]));
    let mut ids = BTreeSet::new();
    for line in out.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let id = v["event_id"].as_str().unwrap().to_owned();
        assert!(ids.insert(id.clone()), "{id} is in the log twice");
    }
    ids
}

async fn request(client: &async_nats::Client, subject: &str, body: &str) -> Value {
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        client.request(subject.to_owned(), Bytes::from(body.to_owned())),
    )
    .await
    .expect("the query answers in time")
    .expect("the query answers");
    serde_json::from_slice(&reply.payload).expect("the answer is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_subscribers_bad_input_reaches_the_dlq_and_queries_answer_like_the_cli() {
    let s = setup();
    let mut serve = Serve::start(&s.data, &s.config, &s.nats.url());
    let (client, js) = connect_js(&s.nats.url()).await;
    let mut alerts = client.subscribe("pacer.alerts.>").await.unwrap();
    let mut dlq = client.subscribe("pacer.dlq.>").await.unwrap();
    let mut digests = client.subscribe("pacer.digest.>").await.unwrap();
    client.flush().await.unwrap();

    let bad = "{\"event_id\":\"bad-1\",\"source\":\"crm\",\"type\":\"deal_won\"}\nnot json\n";
    std::fs::write(s.dir.join("events.jsonl"), format!("{}{bad}", events())).unwrap();
    let out = ok(pacer_with(
        &s.config,
        &s.data,
        &[
            "publish",
            s.dir.join("events.jsonl").to_str().unwrap(),
            "--nats",
            &s.nats.url(),
        ],
    ));
    assert_eq!(out.trim(), "published 9, duplicate 0, too long 0");

    // The alerts of the scenario: behind_pace, activity_behind, low_coverage for ana.
    let mut raised = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while raised.len() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, alerts.next())
            .await
            .expect("alerts arrive in time")
            .unwrap();
        assert_eq!(msg.subject.as_str(), "pacer.alerts.north.ana");
        let v: Value = serde_json::from_slice(&msg.payload).unwrap();
        assert_eq!(v["change"], "raised");
        let id = msg
            .headers
            .as_ref()
            .unwrap()
            .get("Nats-Msg-Id")
            .unwrap()
            .to_string();
        assert!(
            id.starts_with(&format!(
                "pacer:{}:raised:",
                v["alert_id"].as_str().unwrap()
            )),
            "{id}"
        );
        raised.insert(v["rule"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        raised,
        BTreeSet::from([
            "activity_behind".into(),
            "behind_pace".into(),
            "low_coverage".into()
        ])
    );

    // Both bad lines are dead letters with their reason; the stream went on.
    let mut letters = Vec::new();
    for _ in 0..2 {
        let msg = tokio::time::timeout(Duration::from_secs(10), dlq.next())
            .await
            .expect("dead letters arrive")
            .unwrap();
        let reason = msg
            .headers
            .as_ref()
            .unwrap()
            .get("Pacer-Error")
            .unwrap()
            .to_string();
        letters.push((msg.subject.to_string(), reason, msg.payload.clone()));
    }
    letters.sort();
    assert_eq!(letters[0].0, "pacer.dlq.malformed_json");
    assert_eq!(letters[0].2, Bytes::from("not json"));
    assert_eq!(letters[1].0, "pacer.dlq.missing_field");
    assert!(letters[1].1.contains("occurred_at"), "{}", letters[1].1);
    assert!(serve
        .metrics()
        .contains("pacer_events_rejected_total{reason=\"missing_field\"} 1"));

    // The tick that crossed Wednesday 09:00 published north's weekly digest.
    let msg = tokio::time::timeout(Duration::from_secs(10), digests.next())
        .await
        .expect("the digest arrives")
        .unwrap();
    assert_eq!(msg.subject.as_str(), "pacer.digest.north");
    let d: Value = serde_json::from_slice(&msg.payload).unwrap();
    assert_eq!(d["week"], "2026-W47");
    assert_eq!(d["reps"][0]["rep"], "ana");
    assert_eq!(d["reps"][0]["focus"].as_array().unwrap().len(), 2);

    // Queries answer with the CLI's JSON; errors are JSON too.
    let report = request(&client, "pacer.query.report", "").await;
    let all_alerts = request(&client, "pacer.query.alerts", r#"{"status":"all"}"#).await;
    let digest = request(&client, "pacer.query.digest", r#"{"team":"north"}"#).await;
    assert_eq!(digest["reps"][0]["rep"], "ana");
    let page = request(&client, "pacer.query.log", r#"{"from_seq":2,"limit":2}"#).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    assert_eq!(page["events"][0]["event_id"], "fy27-v1");
    assert_eq!(page["next_from_seq"], 4);
    let err = request(&client, "pacer.query.report", r#"{"month":"2026-13"}"#).await;
    assert!(
        err["error"].as_str().unwrap().starts_with("month:"),
        "{err}"
    );
    let err = request(&client, "pacer.query.alerts", "[1]").await;
    assert!(err["error"].is_string(), "{err}");

    assert_eq!(serve.stop(), Some(0), "{}", serve.output());
    let cli_report = cli_json(&s, &["report", "--format", "json"]);
    assert_eq!(report, cli_report);
    let cli_alerts = cli_json(&s, &["alerts", "--status", "all", "--format", "json"]);
    assert_eq!(all_alerts, cli_alerts);

    // A restart rebuilds and publishes nothing twice.
    let published = stream_messages(&js, "PACER_ALERTS").await;
    // Three alerts raised on Tuesday (the same ones stand on Wednesday) and the digest.
    assert_eq!(published, 4);
    let _serve = Serve::start(&s.data, &s.config, &s.nats.url());
    let quiet = tokio::time::timeout(Duration::from_secs(2), alerts.next()).await;
    assert!(quiet.is_err(), "an alert was published again: {quiet:?}");
    let again = stream_messages(&js, "PACER_ALERTS").await;
    assert_eq!(again, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_ticks_the_clock_on_its_own() {
    let s = setup();
    configure(&s, "tick_interval_s = 0", "tick_interval_s = 1");
    let started = Instant::now();
    let mut serve = Serve::start(&s.data, &s.config, &s.nats.url());
    // One at start-up, then one a second: the third cannot come before 2 s (however
    // slow the machine, it can only come later).
    let deadline = started + Duration::from_secs(60);
    while accepted(&serve.metrics()) < 3 {
        assert!(Instant::now() < deadline, "fewer than 3 ticks in 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    assert_eq!(serve.stop(), Some(0));
    assert!(elapsed >= Duration::from_secs(2), "3 ticks in {elapsed:?}");
    let out = ok(pacer_with(&s.config, &s.data, &["log"]));
    let ticks = out
        .lines()
        .filter(|l| l.contains("\"clock_tick\"") && l.contains("\"pacer-serve\""))
        .count();
    assert!(ticks >= 3, "{ticks} ticks:\n{out}");

    // The ticks went through the events stream, each once (one published as the
    // engine stopped may not be in its log yet): an engine on an empty data dir
    // (ticking on its own never) holds every one, in the stream's order.
    let (_, js) = connect_js(&s.nats.url()).await;
    let published = stream_contents(&js, "PACER_EVENTS").await;
    assert!(published.len() >= ticks, "{published:?}");
    assert!(published
        .iter()
        .all(|(subject, id, _)| subject == "pacer.events.clock_tick"
            && id.starts_with("pacer-tick-")));
    let quiet = s.dir.join("no-ticks.toml");
    std::fs::write(&quiet, CONFIG).unwrap();
    let data = s.dir.join("data-new");
    let mut replacement = Serve::start(&data, &quiet, &s.nats.url());
    wait_drained(&js, Duration::from_secs(60)).await;
    assert_eq!(replacement.stop(), Some(0));
    let in_stream: Vec<String> = published.into_iter().map(|(_, id, _)| id).collect();
    let first_log = log_ids(&s.config, &s.data);
    assert_eq!(log_ids(&quiet, &data), in_stream);
    assert_eq!(first_log[..], in_stream[..first_log.len()]);
}

/// Messages for `publish_all`: an optional `Nats-Msg-Id` and the JSON line.
type Items = Vec<(Option<String>, String)>;

/// `n` activities tagged `tag`, with a malformed line (id `{tag}-bad-{k}`) after
/// every `every`-th, so that dead letters fall in the middle of batches and, when
/// `every` divides `n`, last.
fn with_bad_lines(tag: &str, n: usize, every: usize) -> (Vec<(String, String)>, Items) {
    let good = activities(tag, n);
    let mut items = Vec::new();
    for (i, item) in with_msg_ids(&good).into_iter().enumerate() {
        items.push(item);
        if (i + 1) % every == 0 {
            items.push((Some(format!("{tag}-bad-{i}")), "not json".to_owned()));
        }
    }
    (good, items)
}

/// The engine's consumer (its ack policy, its ack floor and what is pending).
async fn engine_consumer(js: &jetstream::Context) -> jetstream::consumer::Info {
    let stream = js.get_stream("PACER_EVENTS").await.unwrap();
    let mut consumer: jetstream::consumer::PullConsumer =
        stream.get_consumer("pacer-engine").await.unwrap();
    consumer.info().await.unwrap().clone()
}

/// Acknowledged and nothing left pending: the ack floor at the stream's last seq.
async fn assert_all_acknowledged(js: &jetstream::Context) {
    wait_drained(js, Duration::from_secs(120)).await;
    let last = stream_info(js, "PACER_EVENTS").await.state.last_sequence;
    let info = engine_consumer(js).await;
    assert_eq!(
        (
            info.num_pending,
            info.num_ack_pending,
            info.ack_floor.stream_sequence
        ),
        (0, 0, last),
        "pending, ack pending, ack floor"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_in_the_middle_and_at_the_end_of_batches_are_acknowledged() {
    let s = setup();
    configure(&s, "[serve]\n", "[serve]\nack_wait_s = 2\n");
    let (_client, js) = connect_js(&s.nats.url()).await;
    let mut serve = Serve::start(&s.data, &s.config, &s.nats.url());
    let (good, items) = with_bad_lines("mid", 3_000, 750);
    publish_all(&js, &items).await;
    assert_all_acknowledged(&js).await;
    assert_eq!(stream_messages(&js, "PACER_DLQ").await, 4);
    // Nothing comes back after the ack wait (2 s here) either.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_all_acknowledged(&js).await;
    assert_eq!(stream_messages(&js, "PACER_DLQ").await, 4);
    assert_eq!(serve.stop(), Some(0), "{}", serve.output());
    let want: BTreeSet<String> = good.into_iter().map(|(id, _)| id).collect();
    assert_eq!(stored_ids(&s), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_duplicates_are_stored_once() {
    let s = setup();
    let mut serve = Serve::start(&s.data, &s.config, &s.nats.url());
    let (_client, js) = connect_js(&s.nats.url()).await;
    let events = activities("dup", 10_000);
    // Every tenth event again, without a Nats-Msg-Id: the stream keeps it, the engine
    // must drop it by event_id.
    let mut items = with_msg_ids(&events);
    items.extend(events.iter().step_by(10).map(|(_, l)| (None, l.clone())));
    publish_all(&js, &items).await;
    wait_drained(&js, Duration::from_secs(120)).await;
    assert_eq!(serve.stop(), Some(0));
    let ids = stored_ids(&s);
    let want: BTreeSet<String> = events.into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, want);
    assert!(serve.output().contains("stopped cleanly"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_engine_loses_nothing_and_doubles_nothing() {
    let seed = test_seed("kill_9", 20261122);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let s = setup();
    let mut serve = Serve::start(&s.data, &s.config, &s.nats.url());
    let (_client, js) = connect_js(&s.nats.url()).await;
    let events = activities("crash", 100_000);
    let items = with_msg_ids(&events);
    let publisher = {
        let js = js.clone();
        tokio::spawn(async move { publish_all(&js, &items).await })
    };
    // Six kills at seeded points of the stream: when the engine has taken about
    // 14 000, 28 000, ... 84 000 of the 100 000 events (plus a random 0-4 000).
    let mut kills_mid_stream = 0;
    for k in 1..=6u64 {
        let at = k * 14_000 + rng.gen_range(0..4_000);
        let deadline = Instant::now() + Duration::from_secs(120);
        while consumer_state(&js).await.map_or(0, |c| c.2) < at {
            assert!(
                Instant::now() < deadline,
                "the engine stalled before {at}:\n{}",
                serve.output()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (pending, _, delivered, _) = consumer_state(&js).await.unwrap_or((0, 0, 0, 0));
        serve.kill();
        if pending > 0 || delivered < 100_000 {
            kills_mid_stream += 1;
        }
        serve.spawn();
    }
    publisher.await.unwrap();
    serve.wait_ready();
    wait_drained(&js, Duration::from_secs(180)).await;
    assert!(
        kills_mid_stream >= 5,
        "only {kills_mid_stream} kills landed mid-stream"
    );

    // The live projections equal a rebuild from the log.
    let client = async_nats::connect(s.nats.url()).await.unwrap();
    let live = request(&client, "pacer.query.report", r#"{"month":"2026-11"}"#).await;
    assert_eq!(serve.stop(), Some(0), "{}", serve.output());
    let rebuilt = cli_json(&s, &["report", "--month", "2026-11", "--format", "json"]);
    assert_eq!(live, rebuilt);
    let ids = stored_ids(&s);
    let want: BTreeSet<String> = events.into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), 100_000);
    assert_eq!(ids, want);
}

/// Fails on any alert change, digest or dead letter `heard` gets until a second
/// passes without a message.
async fn assert_nothing_published(heard: &mut async_nats::Subscriber) {
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(1), heard.next()).await {
        assert!(
            !m.subject.starts_with("pacer.alerts.")
                && !m.subject.starts_with("pacer.digest.")
                && !m.subject.starts_with("pacer.dlq."),
            "published again: {} {}",
            m.subject,
            String::from_utf8_lossy(&m.payload)
        );
    }
}

/// How many messages stream `name` holds once the count has not moved for a second.
async fn settled_messages(js: &async_nats::jetstream::Context, name: &str) -> u64 {
    let mut last = stream_messages(js, name).await;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = stream_messages(js, name).await;
        if now == last {
            return now;
        }
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_engine_on_an_empty_data_dir_stores_the_history_from_the_stream_and_publishes_no_alert_again(
) {
    let s = setup();
    short_lease(&s);
    let mut first = Serve::start(&s.data, &s.config, &s.nats.url());
    let (client, js) = connect_js(&s.nats.url()).await;
    // The scenario (ana's alerts, a digest), a bad event, 3 000 activities.
    let bad = "{\"event_id\":\"bad-1\",\"source\":\"crm\",\"type\":\"deal_won\"}\n";
    publish_lines(&s, &format!("{}{bad}", events()));
    let before = activities("before", 3_000);
    publish_all(&js, &with_msg_ids(&before)).await;
    wait_drained(&js, Duration::from_secs(120)).await;
    let alerts = settled_messages(&js, "PACER_ALERTS").await;
    assert!(alerts >= 3, "ana's three alerts were published: {alerts}");
    assert_eq!(stream_messages(&js, "PACER_DLQ").await, 1);

    // The engine's machine is gone with its disk: a new engine on an empty data dir,
    // the same consumer, once the lease has expired (before, it would stand by).
    first.kill();
    wait_lease_expired(&js).await;
    // Whatever is published from now on is heard here, before a stream could drop a
    // copy under the message id it had.
    let mut heard = client.subscribe("pacer.>").await.unwrap();
    client.flush().await.unwrap();
    let data = s.dir.join("data-new");
    let mut second = Serve::start(&data, &s.config, &s.nats.url());
    let scenario = events().lines().count();
    let out = second.output();
    assert!(
        out.contains("storing the rest from the stream first"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            " s: {} events stored, 0 already here, 1 rejected ones skipped",
            scenario + 3_000
        )),
        "{out}"
    );
    // Nothing published again: no alert, no digest, no dead letter.
    assert_eq!(settled_messages(&js, "PACER_ALERTS").await, alerts);
    assert_eq!(stream_messages(&js, "PACER_DLQ").await, 1);
    assert_nothing_published(&mut heard).await;

    // It goes on with the stream.
    let after = activities("after", 1_000);
    publish_all(&js, &with_msg_ids(&after)).await;
    wait_drained(&js, Duration::from_secs(120)).await;
    let live = request(&client, "pacer.query.report", r#"{"month":"2026-11"}"#).await;

    // What one process makes of the same good events.
    let all: String = events()
        .lines()
        .chain(before.iter().map(|(_, l)| l.as_str()))
        .chain(after.iter().map(|(_, l)| l.as_str()))
        .map(|l| format!("{l}\n"))
        .collect();
    let all_file = s.dir.join("all.jsonl");
    std::fs::write(&all_file, &all).unwrap();
    let reference = s.dir.join("data-reference");
    ok(pacer_with(
        &s.config,
        &reference,
        &["ingest", all_file.to_str().unwrap()],
    ));
    let want = ok_json(pacer_with(
        &s.config,
        &reference,
        &["report", "--month", "2026-11", "--format", "json"],
    ));
    assert_eq!(live, want);

    // Every event once, in the new log; a restart finds it current.
    assert_eq!(second.stop(), Some(0), "{}", second.output());
    let ids = ids_once(&s.config, &data);
    assert_eq!(ids.len(), scenario + 3_000 + 1_000);
    second.spawn();
    second.wait_ready();
    assert_eq!(second.stop(), Some(0));
    assert_eq!(
        second
            .output()
            .matches("storing the rest from the stream first")
            .count(),
        1,
        "{}",
        second.output()
    );
}

/// An engine that stored and acknowledged a scenario but could not publish its
/// changes dies with nobody standing by: the engine that takes the expired lease
/// publishes them, from the mark the dead one kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_publishes_what_the_dead_engine_had_not_though_its_lease_expired_unwatched() {
    let s = setup();
    short_lease(&s);
    let mut first = Serve::start(&s.data, &s.config, &s.nats.url());
    let (client, js) = connect_js(&s.nats.url()).await;
    // The alerts stream is gone (an operator's mistake, a broker that lost it): the
    // engine stores and acknowledges the scenario, and cannot publish its changes.
    js.delete_stream("PACER_ALERTS").await.unwrap();
    publish_lines(&s, &events());
    wait_drained(&js, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // It dies, and nobody stands by: a replacement on an empty data dir starts once
    // the lease has expired, and publishes what the dead engine never did.
    first.kill();
    an_unwatched_replacement_publishes_anas_changes(&s, &client, &js, "data-new").await;
}

/// Once the lease has expired, starts an engine on the empty data dir `data` (in the
/// setup's dir): it takes the expired lease and publishes ana's three alerts and
/// north's digest, once each, and nothing more.
async fn an_unwatched_replacement_publishes_anas_changes(
    s: &Setup,
    client: &async_nats::Client,
    js: &async_nats::jetstream::Context,
    data: &str,
) {
    wait_lease_expired(js).await;
    let mut heard = client.subscribe("pacer.>").await.unwrap();
    client.flush().await.unwrap();
    let mut engine = Serve::start(&s.dir.join(data), &s.config, &s.nats.url());
    let out = engine.output();
    assert!(
        out.contains("took the engine lease, which had expired; engine "),
        "{out}"
    );
    assert_anas_changes_published_once(js, &mut heard, &engine).await;
    assert_eq!(engine.stop(), Some(0), "{}", engine.output());
}

/// An engine that stored ana's scenario after a long history and could not publish
/// its alert changes (the alerts stream deleted under it) is killed, nobody standing
/// by; a replacement on an empty data dir takes the expired lease and is killed in
/// turn while it is still storing the history from the stream, long before ana's
/// events. Returns the replacement (stopped) and its data dir.
async fn dead_engine_then_a_replacement_killed_in_its_catch_up(
    s: &Setup,
    js: &async_nats::jetstream::Context,
) -> (Serve, PathBuf) {
    let mut first = Serve::start(&s.data, &s.config, &s.nats.url());
    publish_all(js, &with_msg_ids(&activities("history", 60_000))).await;
    wait_drained(js, Duration::from_secs(180)).await;
    js.delete_stream("PACER_ALERTS").await.unwrap();
    publish_lines(s, &events());
    wait_drained(js, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    first.kill();
    wait_lease_expired(js).await;
    let marks = js.get_key_value("PACER_MARKS").await.unwrap();
    let kept = marks.entry("engine").await.unwrap().expect("a kept mark");

    let data = s.dir.join("data-second");
    let mut second = Serve::spawned(&data, &s.config, &s.nats.url());
    second.wait_said("storing the rest from the stream first");
    // Killed after it has renewed its lease once (when a holder writes its mark),
    // still storing the history.
    let deadline = Instant::now() + Duration::from_secs(60);
    let leases = js.get_key_value("PACER_LEASES").await.unwrap();
    let taken = leases.entry("engine").await.unwrap().map(|e| e.revision);
    while leases.entry("engine").await.unwrap().map(|e| e.revision) == taken {
        assert!(Instant::now() < deadline, "{}", second.output());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    second.kill();
    // It had not got to the mark it took over: the dead engine's stays.
    let after = marks.entry("engine").await.unwrap().expect("a kept mark");
    assert_eq!(
        (after.revision, &after.value),
        (kept.revision, &kept.value),
        "{}",
        second.output()
    );
    let out = second.output();
    assert!(
        out.contains("took the engine lease, which had expired; engine "),
        "{out}"
    );
    assert!(
        !out.contains("caught up through"),
        "the kill came after the catch-up:\n{out}"
    );
    (second, data)
}

/// Waits for ana's three alerts and north's digest, each published once, then for
/// nothing more.
async fn assert_anas_changes_published_once(
    js: &async_nats::jetstream::Context,
    heard: &mut async_nats::Subscriber,
    serve: &Serve,
) {
    let mut got = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < 4 {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, heard.next())
            .await
            .unwrap_or_else(|_| panic!("only {got:?} were published; {}", serve.output()))
            .unwrap();
        let v: Value = serde_json::from_slice(&msg.payload).unwrap();
        let what = match msg.subject.as_str() {
            "pacer.alerts.north.ana" => v["rule"].as_str().unwrap().to_owned(),
            "pacer.digest.north" => "digest".to_owned(),
            other => panic!("published {other}: {v}"),
        };
        assert!(got.insert(what.clone()), "{what} published twice");
    }
    assert_eq!(
        got,
        BTreeSet::from([
            "activity_behind".into(),
            "behind_pace".into(),
            "digest".into(),
            "low_coverage".into()
        ])
    );
    assert_eq!(settled_messages(js, "PACER_ALERTS").await, 4);
    assert_nothing_published(heard).await;
}

/// The replacement that died during its catch-up had not yet got to where the dead
/// engine's publishing stood, so it kept no mark of its own: a third engine, on
/// another empty data dir, still publishes what the first one had not, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_killed_in_its_catch_up_leaves_the_dead_engines_mark_to_the_next() {
    let s = setup();
    short_lease(&s);
    let (client, js) = connect_js(&s.nats.url()).await;
    let (_second, _) = dead_engine_then_a_replacement_killed_in_its_catch_up(&s, &js).await;
    an_unwatched_replacement_publishes_anas_changes(&s, &client, &js, "data-third").await;
}

/// The replacement that died during its catch-up starts again on its own data dir
/// (its lease still held, or expired by then): it goes on from the mark it took over
/// with, and publishes what the dead engine had not, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_killed_in_its_catch_up_goes_on_from_the_mark_it_took_over_with() {
    let s = setup();
    short_lease(&s);
    let (client, js) = connect_js(&s.nats.url()).await;
    let (mut second, data) = dead_engine_then_a_replacement_killed_in_its_catch_up(&s, &js).await;
    let mut heard = client.subscribe("pacer.>").await.unwrap();
    client.flush().await.unwrap();
    second.spawn();
    second.wait_ready();
    assert_anas_changes_published_once(&js, &mut heard, &second).await;
    assert_eq!(second.stop(), Some(0), "{}", second.output());
    let ids = ids_once(&s.config, &data);
    assert_eq!(ids.len(), events().lines().count() + 60_000);
}

/// The batch in flight when an engine stops was delivered and never acknowledged:
/// at the next start the catch-up stores it, and its alerts go out then (not half a
/// minute later, when the consumer would deliver it again as duplicates).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_delivered_and_never_acknowledged_has_its_alerts_published_at_the_next_start() {
    let s = setup();
    let mut serve = Serve::start(&s.data, &s.config, &s.nats.url());
    assert_eq!(serve.stop(), Some(0), "{}", serve.output());
    let (client, js) = connect_js(&s.nats.url()).await;
    publish_lines(&s, &events());
    // The engine's consumer hands the scenario out, and nobody acknowledges it: an
    // engine killed after the delivery, before its flush.
    let consumer: jetstream::consumer::PullConsumer = js
        .get_stream("PACER_EVENTS")
        .await
        .unwrap()
        .get_consumer("pacer-engine")
        .await
        .unwrap();
    let scenario = events().lines().count();
    // A fetch hands out what the consumer has at that moment: taken until all is.
    let mut n = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while n < scenario {
        assert!(
            Instant::now() < deadline,
            "the consumer handed out {n} of {scenario}"
        );
        let mut taken = consumer
            .fetch()
            .max_messages(scenario - n)
            .messages()
            .await
            .unwrap();
        while let Some(m) = taken.next().await {
            m.unwrap();
            n += 1;
        }
    }
    assert_eq!(n, scenario);
    let (_, ack_pending, delivered, acked) = consumer_state(&js).await.unwrap();
    assert_eq!(
        (ack_pending, delivered, acked),
        (scenario, scenario as u64, 0)
    );

    let mut alerts = client.subscribe("pacer.alerts.>").await.unwrap();
    client.flush().await.unwrap();
    serve.spawn();
    serve.wait_ready();
    let mut raised = BTreeSet::new();
    while raised.len() < 3 {
        let msg = tokio::time::timeout(Duration::from_secs(10), alerts.next())
            .await
            .unwrap_or_else(|_| panic!("ana's alerts were not published:\n{}", serve.output()))
            .unwrap();
        let v: Value = serde_json::from_slice(&msg.payload).unwrap();
        raised.insert(v["rule"].as_str().unwrap().to_owned());
    }
    assert!(
        serve.output().contains(&format!(
            "the alerts of the {scenario} never acknowledged or never published go out now"
        )),
        "{}",
        serve.output()
    );
    assert_eq!(serve.stop(), Some(0), "{}", serve.output());
    assert_eq!(stored_ids(&s).len(), scenario);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_the_catch_up_goes_on_at_the_next_start_and_publishes_nothing() {
    let s = setup();
    short_lease(&s);
    let mut first = Serve::start(&s.data, &s.config, &s.nats.url());
    let (client, js) = connect_js(&s.nats.url()).await;
    publish_lines(&s, &events());
    let history = activities("history", 60_000);
    publish_all(&js, &with_msg_ids(&history)).await;
    wait_drained(&js, Duration::from_secs(180)).await;
    let alerts = settled_messages(&js, "PACER_ALERTS").await;
    first.kill();
    wait_lease_expired(&js).await;
    let mut heard = client.subscribe("pacer.>").await.unwrap();
    client.flush().await.unwrap();

    // A new engine on an empty data dir, killed as soon as it says it is catching up.
    let data = s.dir.join("data-new");
    let mut second = Serve::spawned(&data, &s.config, &s.nats.url());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !second
        .output()
        .contains("storing the rest from the stream first")
    {
        assert!(Instant::now() < deadline, "{}", second.output());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    second.kill();
    let cut_short = !second.output().contains("caught up through");
    second.spawn();
    second.wait_ready();
    let out = second.output();
    assert_eq!(
        out.matches("storing the rest from the stream first")
            .count(),
        if cut_short { 2 } else { 1 },
        "{out}"
    );
    assert_eq!(settled_messages(&js, "PACER_ALERTS").await, alerts);
    assert_nothing_published(&mut heard).await;
    assert_eq!(second.stop(), Some(0), "{}", second.output());
    let ids = ids_once(&s.config, &data);
    assert_eq!(ids.len(), events().lines().count() + 60_000);
    assert!(cut_short, "the kill came after the catch-up:\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_broker_loses_no_acknowledged_event() {
    let mut s = setup();
    let mut serve = Serve::start(&s.data, &s.config, &s.nats.url());
    let (_client, js) = connect_js(&s.nats.url()).await;
    let events = activities("broker", 20_000);
    let (first, second) = events.split_at(8_000);
    publish_all(&js, &with_msg_ids(first)).await;
    // Mid-stream: the engine is consuming what was published when the broker dies.
    let deadline = Instant::now() + Duration::from_secs(60);
    while consumer_state(&js).await.map_or(0, |c| c.2) == 0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.nats.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.nats.restart();
    let (_client, js) = connect_js(&s.nats.url()).await;
    publish_all(&js, &with_msg_ids(second)).await;
    wait_drained(&js, Duration::from_secs(180)).await;
    assert_eq!(serve.stop(), Some(0), "{}", serve.output());
    let want: BTreeSet<String> = events.into_iter().map(|(id, _)| id).collect();
    assert_eq!(stored_ids(&s), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stores_and_acks_what_was_fetched() {
    let s = setup();
    let (_client, js) = connect_js(&s.nats.url()).await;
    // The streams exist once the engine has run; start it, stop it, then publish.
    let mut serve = Serve::start(&s.data, &s.config, &s.nats.url());
    assert_eq!(serve.stop(), Some(0));
    let events = activities("term", 20_000);
    let items = with_msg_ids(&events);
    publish_all(&js, &items).await;
    serve.spawn();
    let deadline = Instant::now() + Duration::from_secs(60);
    while consumer_state(&js).await.map_or(0, |c| c.2) < 1_000 {
        assert!(Instant::now() < deadline, "{}", serve.output());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(serve.stop(), Some(0), "{}", serve.output());
    let (pending, ack_pending, _, acked) = consumer_state(&js).await.unwrap();
    // Everything the engine took is stored and acked: the acked prefix is exactly the
    // log. What the server had sent but the engine had not yet taken is redelivered
    // to the next run: the pull stream asks for the next batch when half of one is
    // left, so at most one and a half batches are on their way (600 seen once).
    let stored = stored_ids(&s).len() as u64;
    assert_eq!(
        stored, acked,
        "every stored message is acked, every acked one stored"
    );
    assert!(
        ack_pending <= 750,
        "{ack_pending} messages in flight at the stop"
    );
    assert!(
        pending + ack_pending as u64 > 0,
        "the test stopped the engine mid-stream"
    );
    // The rest is consumed by the next run.
    let mut serve = Serve::start(&s.data, &s.config, &s.nats.url());
    wait_drained(&js, Duration::from_secs(120)).await;
    assert_eq!(serve.stop(), Some(0));
    assert_eq!(stored_ids(&s).len(), 20_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_nats_is_away_still_exits_cleanly() {
    let mut s = setup();
    let mut serve = Serve::start(&s.data, &s.config, &s.nats.url());
    s.nats.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    assert_eq!(serve.stop(), Some(0), "{}", serve.output());
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

/// A core NATS subscriber may hear an alert change again after a kill -9 of the
/// engine (the published position is saved at most once a second, README
/// "Subscribing to alerts"). Deduplicated on `Nats-Msg-Id`, it hears exactly the
/// changes the stream holds, and a change heard twice is the same JSON both times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_core_subscriber_deduplicating_on_the_message_id_hears_each_change_once() {
    let s = setup();
    let mut serve = Serve::start(&s.data, &s.config, &s.nats.url());
    let (client, js) = connect_js(&s.nats.url()).await;
    let mut alerts = client.subscribe("pacer.alerts.>").await.unwrap();
    client.flush().await.unwrap();
    publish_lines(&s, &events());
    let id_of = |m: &async_nats::Message| {
        m.headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.to_string())
            .expect("every alert change carries its message id")
    };
    // The first change is heard: kill -9 at once, most likely before the position
    // is saved, and start again.
    let first = tokio::time::timeout(Duration::from_secs(30), alerts.next())
        .await
        .expect("an alert arrives")
        .unwrap();
    serve.kill();
    let mut heard = vec![(id_of(&first), first.payload.clone())];
    serve.spawn();
    serve.wait_ready();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(3), alerts.next()).await {
        heard.push((id_of(&m), m.payload.clone()));
    }
    let mut distinct: std::collections::BTreeMap<String, Bytes> = Default::default();
    for (id, payload) in &heard {
        let kept = distinct
            .entry(id.clone())
            .or_insert_with(|| payload.clone());
        assert_eq!(kept, payload, "{id} was heard twice with different JSON");
    }
    eprintln!(
        "heard {} alert messages, {} distinct",
        heard.len(),
        distinct.len()
    );
    // What the stream kept (JetStream drops a repeated message id).
    let mut stream = js.get_stream("PACER_ALERTS").await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut kept = BTreeSet::new();
    for seq in 1..=last {
        let Ok(m) = stream.get_raw_message(seq).await else {
            continue;
        };
        if m.subject.starts_with("pacer.alerts.") {
            let id = m.headers.get("Nats-Msg-Id").unwrap().to_string();
            assert!(kept.insert(id.clone()), "{id} is in the stream twice");
        }
    }
    assert!(kept.len() >= 3, "{kept:?}");
    assert_eq!(distinct.keys().cloned().collect::<BTreeSet<_>>(), kept);
    assert_eq!(serve.stop(), Some(0), "{}", serve.output());
}

/// nats-server with the shipped deploy/nats/secure.conf: only its store dir and port
/// are this test's; users, passwords (from the environment) and permissions are the
/// shipped ones.
struct SecureNats {
    child: std::process::Child,
    port: u16,
}

impl Drop for SecureNats {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

const PASSWORDS: [(&str, &str); 5] = [
    ("PACER_NATS_ENGINE_PASSWORD", "engine-pw-5a1c9e"),
    ("PACER_NATS_GATEWAY_PASSWORD", "gateway-pw-7b2d0f"),
    ("PACER_NATS_FINANCE_PASSWORD", "finance-pw-3c4e1a"),
    ("PACER_NATS_NORTH_PASSWORD", "north-pw-9d8f7b"),
    ("PACER_NATS_ADMIN_PASSWORD", "admin-pw-1e2f3a"),
];

fn secure_nats(dir: &Path) -> SecureNats {
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/nats/secure.conf");
    let text = std::fs::read_to_string(&shipped).unwrap();
    let port = free_port();
    let store = dir.join("secure-js");
    let ours = text
        .replace(
            "store_dir: /var/lib/nats/jetstream",
            &format!("store_dir: {}", store.display()),
        )
        .replace(
            "listen: 127.0.0.1:4222",
            &format!("listen: 127.0.0.1:{port}"),
        );
    assert_ne!(
        ours, text,
        "the shipped config names its store dir and port as expected"
    );
    let conf = dir.join("secure.conf");
    std::fs::write(&conf, ours).unwrap();
    // The users and permissions it includes, as shipped.
    std::fs::copy(
        shipped.with_file_name("permissions.conf"),
        dir.join("permissions.conf"),
    )
    .unwrap();
    let mut cmd = std::process::Command::new(nats_server_bin());
    cmd.arg("-c").arg(&conf);
    for (k, v) in PASSWORDS {
        cmd.env(k, v);
    }
    let child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port, "nats-server");
    SecureNats { child, port }
}

/// A client as `user`, with a private inbox prefix; server errors (permission
/// violations) arrive on the returned channel.
async fn connect_as(
    port: u16,
    user: &str,
    password: &str,
    inbox: &str,
) -> (
    async_nats::Client,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
        .custom_inbox_prefix(inbox)
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    let _ = tx.send(e.to_string());
                }
            }
        })
        .connect(format!("nats://127.0.0.1:{port}"))
        .await
        .unwrap();
    (client, rx)
}

/// The next server error within 5 s.
async fn violation(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("the server refuses it")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_nats_permissions_keep_each_role_to_its_own() {
    let token = "native-token-0123456789";
    let (tmp, data) = temp_org(&format!(
        "{CONFIG}\n[webhooks.native]\nbearer_tokens = [\"{token}\"]\n"
    ));
    let cfg = tmp.path().join("pacer.toml");
    let nats = secure_nats(tmp.path());
    let url = format!("nats://127.0.0.1:{}", nats.port);
    let pw = |k: &str| {
        PASSWORDS
            .iter()
            .find(|(n, _)| *n == k)
            .unwrap()
            .1
            .to_owned()
    };
    let as_user = |user: &str, key: &str| {
        vec![
            "--user".to_owned(),
            user.to_owned(),
            "--password".to_owned(),
            pw(key),
        ]
    };
    let mut engine = Serve::start_with(
        "serve",
        &data,
        &cfg,
        &url,
        &as_user("engine", "PACER_NATS_ENGINE_PASSWORD"),
    );
    let gateway = Serve::start_with(
        "gateway",
        &tmp.path().join("gw"),
        &cfg,
        &url,
        &as_user("gateway", "PACER_NATS_GATEWAY_PASSWORD"),
    );

    // The manager of north hears north's alerts, asks north's questions, and is
    // refused anything else by the server itself.
    let (north, mut north_errors) = connect_as(
        nats.port,
        "manager_north",
        &pw("PACER_NATS_NORTH_PASSWORD"),
        "_INBOX_north",
    )
    .await;
    let mut north_alerts = north.subscribe("pacer.alerts.north.>").await.unwrap();
    let _south = north.subscribe("pacer.alerts.south.>").await.unwrap();
    let refused = violation(&mut north_errors).await;
    assert!(
        refused.contains("ermissions") && refused.contains("pacer.alerts.south"),
        "{refused}"
    );
    north
        .publish("pacer.events.deal_won", "{}".into())
        .await
        .unwrap();
    north.flush().await.unwrap();
    let refused = violation(&mut north_errors).await;
    assert!(
        refused.contains("ermissions") && refused.contains("pacer.events"),
        "{refused}"
    );

    // The gateway may publish events but not consume them.
    let (gw_client, _gw_errors) = connect_as(
        nats.port,
        "gateway",
        &pw("PACER_NATS_GATEWAY_PASSWORD"),
        "_INBOX",
    )
    .await;
    let gw_js = jetstream::new(gw_client);
    let consume = tokio::time::timeout(Duration::from_secs(10), async {
        gw_js
            .get_stream("PACER_EVENTS")
            .await?
            .create_consumer(jetstream::consumer::pull::Config {
                durable_name: Some("sneak".into()),
                ..Default::default()
            })
            .await
            .map(|_| ())
            .map_err(async_nats::Error::from)
    })
    .await;
    assert!(
        !matches!(consume, Ok(Ok(()))),
        "the gateway user made a consumer"
    );

    // End to end through the permissions: events in at the gateway, the engine
    // consumes them and publishes ana's alert, north's manager hears it and asks.
    let events = events().replace(
        r#"{"event_id":"r-ana""#,
        r#"{"event_id":"r-bo","source":"hris","occurred_at":"2026-10-01T08:00:00Z","type":"rep_registered","rep":"bo","name":"Bo Berg","team":"south","manager":"sam","region":"emea"}
{"event_id":"r-ana""#,
    );
    let resp = ureq::post(&format!(
        "http://127.0.0.1:{}/v1/events",
        gateway.metrics_port
    ))
    .set("authorization", &format!("Bearer {token}"))
    .set("content-type", "application/x-ndjson")
    .send_string(&events)
    .expect("the gateway takes the events");
    assert_eq!(resp.status(), 200);
    let alert = tokio::time::timeout(Duration::from_secs(30), north_alerts.next())
        .await
        .expect("north's manager hears ana's alert")
        .unwrap();
    assert!(
        alert.subject.as_str().starts_with("pacer.alerts.north.ana"),
        "{}",
        alert.subject
    );
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        north.request(
            "pacer.query.team.north.report",
            r#"{"month":"2026-11"}"#.into(),
        ),
    )
    .await
    .expect("the team query answers")
    .unwrap();
    let rows: Value = serde_json::from_slice(&answer.payload).unwrap();
    let rows = rows.as_array().unwrap_or_else(|| panic!("{rows}"));
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r["team"] == "north"),
        "{rows:?}"
    );
    // The org-wide query is finance's.
    let org = tokio::time::timeout(
        Duration::from_secs(3),
        north.request("pacer.query.report", "{}".into()),
    )
    .await;
    assert!(!matches!(org, Ok(Ok(_))), "the manager got the org report");
    let (fin, _fin_errors) = connect_as(
        nats.port,
        "finance",
        &pw("PACER_NATS_FINANCE_PASSWORD"),
        "_INBOX_finance",
    )
    .await;
    let all = fin
        .request("pacer.query.report", r#"{"month":"2026-11"}"#.into())
        .await
        .unwrap();
    let all: Value = serde_json::from_slice(&all.payload).unwrap();
    assert!(all.as_array().is_some_and(|rows| !rows.is_empty()), "{all}");
    let south = fin
        .request("pacer.query.team.south.alerts", "{}".into())
        .await
        .unwrap();
    let south: Value = serde_json::from_slice(&south.payload).unwrap();
    assert!(south.is_array(), "{south}");
    assert_eq!(engine.stop(), Some(0), "{}", engine.output());
}

/// The engine lease lasts 3 s in this test's config (not 15): a replacement started
/// after a kill -9 waits less.
fn short_lease(s: &Setup) {
    configure(s, "[serve]\n", "[serve]\nlease_ttl_s = 3\n");
}

/// Waits until the lease of a killed engine has expired.
async fn wait_lease_expired(js: &async_nats::jetstream::Context) {
    let leases = js.get_key_value("PACER_LEASES").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while leases
        .entry("engine")
        .await
        .unwrap()
        .is_some_and(|e| e.operation == async_nats::jetstream::kv::Operation::Put)
    {
        assert!(Instant::now() < deadline, "the lease did not expire");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every message stream `name` holds, in order: (subject, `Nats-Msg-Id`, payload).
async fn stream_contents(
    js: &async_nats::jetstream::Context,
    name: &str,
) -> Vec<(String, String, String)> {
    let mut stream = js.get_stream(name).await.unwrap();
    let n = stream.info().await.unwrap().state.messages as usize;
    let reader = stream
        .create_consumer(jetstream::consumer::pull::Config {
            ack_policy: jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = reader.messages().await.unwrap();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("the stream's messages come")
            .unwrap()
            .unwrap();
        let id = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        out.push((
            m.subject.to_string(),
            id,
            String::from_utf8_lossy(&m.payload).into_owned(),
        ));
    }
    out
}

/// The event ids of a log, in the log's order.
fn log_ids(config: &Path, data: &Path) -> Vec<String> {
    ok(pacer_with(config, data, &["log"]))
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["event_id"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// (event id, line) of each line of JSON Lines.
fn with_ids(lines: &str) -> Vec<(String, String)> {
    lines
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["event_id"].as_str().unwrap().to_owned(), l.to_owned())
        })
        .collect()
}

/// Two engines on one stream: one holds the lease and consumes, the other stands by,
/// storing what the first acknowledges. The first is killed with kill -9 mid-stream:
/// the standby takes over within the lease's TTL, publishes again what the first may
/// not have published (the alerts stream drops what it has), and goes on. The alerts
/// stream then holds exactly what a single engine publishes for the same events, each
/// id once, and the logs hold the same events in the same order. A clean stop hands
/// the lease over at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_from_a_killed_engine_and_the_alerts_stream_is_a_single_engines() {
    let s = setup();
    short_lease(&s);
    let config = s.config.clone();
    let url = s.nats.url();
    let mut first = Serve::start(&s.data, &config, &url);
    let data_b = s.dir.join("data-b");
    let mut second = Serve::spawned(&data_b, &config, &url);
    second.wait_said("standing by: engine");
    // A standby answers no query and is not ready.
    assert!(
        http_get(second.metrics_port, "/healthz").is_some_and(|r| !r.starts_with("HTTP/1.1 200")),
        "{}",
        second.output()
    );

    // Ana's plan and deals, Tuesday's tick, 2 000 activities; then 4 000 more, the
    // first engine killed among them; then Wednesday's tick (alerts and a digest)
    // and 500 more.
    let all = events();
    let (scenario, wednesday) = all.split_at(all.find(r#"{"event_id":"t-1""#).unwrap());
    let before: Vec<(String, String)> = with_ids(scenario)
        .into_iter()
        .chain(activities("before", 2_000))
        .collect();
    let during = activities("during", 4_000);
    let after: Vec<(String, String)> = with_ids(wednesday)
        .into_iter()
        .chain(activities("after", 500))
        .collect();
    let (client, js) = connect_js(&url).await;
    publish_all(&js, &with_msg_ids(&before)).await;
    wait_drained(&js, Duration::from_secs(120)).await;
    let publishing = {
        let js = js.clone();
        let during = with_msg_ids(&during);
        tokio::spawn(async move { publish_all(&js, &during).await })
    };
    let base = before.len() as u64;
    while accepted(&first.metrics()) < base + 1_000 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill();
    let killed = Instant::now();

    second.wait_ready();
    // The killed engine's log, as it left it.
    let first_ids = log_ids(&config, &s.data);
    let failover = killed.elapsed();
    println!(
        "failover: {:.1} s from kill -9 to the standby ready (lease TTL 3 s)",
        failover.as_secs_f64()
    );
    let out = second.output();
    assert!(
        out.contains("took over the engine lease of engine"),
        "{out}"
    );
    assert!(failover < Duration::from_secs(30), "{out}");
    for line in out.lines().filter(|l| {
        [
            "took over",
            "publishing again",
            "going on with",
            "rebuil",
            "caught up",
        ]
        .iter()
        .any(|w| l.contains(w))
    }) {
        println!("standby: {line}");
    }
    publishing.await.unwrap();
    publish_all(&js, &with_msg_ids(&after)).await;
    wait_drained(&js, Duration::from_secs(120)).await;
    let alerts = settled_messages(&js, "PACER_ALERTS").await;
    let live = request(&client, "pacer.query.report", r#"{"month":"2026-11"}"#).await;

    // A single engine, on a server of its own, given the same events in the same order.
    let reference_dir = s.dir.join("reference");
    std::fs::create_dir_all(&reference_dir).unwrap();
    let reference_nats = NatsServer::start(&reference_dir.join("jetstream"));
    let reference_data = reference_dir.join("data");
    let mut reference = Serve::start(&reference_data, &config, &reference_nats.url());
    let (_, reference_js) = connect_js(&reference_nats.url()).await;
    for part in [&before, &during, &after] {
        publish_all(&reference_js, &with_msg_ids(part)).await;
    }
    wait_drained(&reference_js, Duration::from_secs(120)).await;
    assert_eq!(
        settled_messages(&reference_js, "PACER_ALERTS").await,
        alerts
    );
    let want = stream_contents(&reference_js, "PACER_ALERTS").await;
    let got = stream_contents(&js, "PACER_ALERTS").await;
    assert!(
        want.iter()
            .any(|(subject, _, _)| subject == "pacer.digest.north"),
        "the reference published north's digest: {want:?}"
    );
    assert_eq!(got, want, "the alerts stream after the failover");
    let reference_report = request(
        &async_nats::connect(reference_nats.url()).await.unwrap(),
        "pacer.query.report",
        r#"{"month":"2026-11"}"#,
    )
    .await;
    assert_eq!(live, reference_report);
    assert_eq!(reference.stop(), Some(0));
    let reference_ids = log_ids(&config, &reference_data);

    // The first engine, started again, stands by; a clean stop of the second hands
    // it the lease at once.
    first.spawn();
    first.wait_said("standing by: engine");
    let mut heard = client.subscribe("pacer.>").await.unwrap();
    client.flush().await.unwrap();
    assert_eq!(second.stop(), Some(0), "{}", second.output());
    let stopped = Instant::now();
    // The logs: the killed engine's is where the standby's begins, and the standby's
    // is the single engine's; every event once.
    let second_ids = log_ids(&config, &data_b);
    // Killed mid-stream: with some of the events of the middle part, not all.
    assert!(first_ids.len() > before.len(), "{}", first_ids.len());
    assert!(
        first_ids.len() < before.len() + during.len(),
        "{}",
        first_ids.len()
    );
    assert_eq!(second_ids[..first_ids.len()], first_ids[..]);
    assert_eq!(second_ids, reference_ids);
    assert_eq!(
        ids_once(&config, &data_b).len(),
        before.len() + during.len() + after.len()
    );
    first.wait_ready();
    println!(
        "handover: {:.1} s from the clean stop to the standby ready",
        stopped.elapsed().as_secs_f64()
    );
    assert!(
        first
            .output()
            .contains("took over the engine lease released by engine"),
        "{}",
        first.output()
    );
    assert_nothing_published(&mut heard).await;
    let last = activities("last", 200);
    publish_all(&js, &with_msg_ids(&last)).await;
    wait_drained(&js, Duration::from_secs(120)).await;
    assert_eq!(first.stop(), Some(0), "{}", first.output());
    assert_eq!(
        ids_once(&config, &s.data).len(),
        before.len() + during.len() + after.len() + last.len()
    );
}
