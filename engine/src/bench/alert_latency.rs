//! Alert latency under load: the time from publishing an event that crosses an alert
//! threshold to a plain NATS subscriber receiving the alert it caused, while a steady
//! background load of ordinary demo events runs through the same engine.
//!
//! Set-up (not measured): a demo organisation (`reps` reps, its year of history and
//! its final `clock_tick`, so alerts are live) plus one *probe rep* per probe. A probe
//! rep is registered in a demo team, has a plan line for this month's `total` only
//! (added to the plan version that governs this month, since a later plan event would
//! replace every rep's lines) and a won deal that already covers that plan. With no
//! other plan line, no open deal and no rating, no rule has anything to say about it.
//! The log is written directly and the engine's [`Pipeline`] is built on its rebuilt
//! state, in this process, on the bench's own nats-server.
//!
//! Measured: probe `i` is a `churned` movement of probe rep `i` for the whole plan,
//! published as JSON to `<prefix>.events.churned` on JetStream. It takes the rep's
//! month to zero, so `behind_pace` on `total` is raised — one new alert, on
//! `<prefix>.alerts.<team>.<probe rep>` — after the real path: decode → validate →
//! dedupe → append → flush → ack → fold → alert publish. A core NATS subscriber on
//! `<prefix>.alerts.>` stamps each arrival; the latency is arrival − publish, both
//! read from [`Instant`] in this process. Probes go one at a time, each after the
//! previous one's alert (or its time-out) and a short gap, after a second of
//! warm-up; a probe whose alert does not come within the time-out counts as lost.
//! After [`LOST_IN_A_ROW_MAX`] lost in a row the engine is taken to be behind the
//! load (its backlog only grows): the remaining probes are not sent, and the run
//! reports them, the engine's fold rate and its consumer's backlog instead of waiting
//! out every time-out.
//!
//! The background: a second demo history of the same reps (another seed; no plans,
//! registrations or ticks), with event and deal ids renamed per round so that every
//! event is new, published at a steady `background_events_per_s` from its own
//! connection for the whole measurement (acks awaited by a second task, through a
//! bounded channel, so a broker that falls behind slows the publisher down). The rate
//! actually achieved is reported beside the target.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishAckFuture};
use futures::StreamExt;
use pacer_projections::bucket::Bucket;
use pacer_projections::event::{
    CustomerKind, DealWon, Event, EventBody, PlanLine, RepRegistered, RetentionChange,
    RetentionKind,
};
use pacer_projections::model::Model;
use pacer_projections::money::Money;
use pacer_projections::state::is_voidable;
use pacer_projections::time::Timestamp;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

use super::{BenchError, BenchNats};
use crate::config::Config;
use crate::demo::{generate, teams, DemoSpec};
use crate::error::NatsError;
use crate::log::Log;
use crate::metrics::Metrics;
use crate::nats::pipeline::Pipeline;
use crate::nats::publish::{publish_message, Message};
use crate::nats::{ensure_streams, Subjects};
use crate::replay::{rebuild, Cut};
use crate::wire::encode;

/// The subject prefix of this measurement (its own streams and consumer on the
/// bench's nats-server).
const PREFIX: &str = "benchalerts";

/// A probe rep's plan for this month, in major units of the currency.
const PROBE_PLAN_MAJOR: i64 = 100_000;

/// Background load before the first probe.
const WARM_UP: Duration = Duration::from_secs(1);

/// Pause after each probe's alert before the next probe.
const PROBE_GAP: Duration = Duration::from_millis(20);

/// Background acks waiting for their PubAck, at most (about 100 ms at 20 000/s).
const ACKS_IN_FLIGHT: usize = 2_048;

/// Probes lost in a row after which the rest are not sent.
pub const LOST_IN_A_ROW_MAX: u32 = 3;

/// What to measure.
#[derive(Clone, Debug)]
pub struct AlertSpec {
    /// Probes, one new alert each.
    pub probes: u32,
    /// The steady background load (0: none).
    pub background_events_per_s: u32,
    /// Reps of the demo organisation (the background's reps).
    pub reps: usize,
    /// A probe whose alert has not come after this long is lost.
    pub timeout: Duration,
    pub seed: u64,
}

/// What one run measured.
#[derive(Clone, Debug, Default)]
pub struct AlertFigures {
    pub probes: u32,
    /// Probes whose alert did not arrive within the time-out.
    pub lost: u32,
    /// Probes not sent: the engine had fallen behind (see the module doc).
    pub not_sent: u32,
    /// Publish → alert received, in milliseconds, sorted.
    pub latencies_ms: Vec<f64>,
    pub background_target_per_s: u32,
    /// Background events published ÷ the time the background ran.
    pub background_events_per_s: f64,
    pub background_events: u64,
    /// Background publishes that got no PubAck.
    pub background_errors: u64,
    /// Events folded by the engine during the measurement (background and probes).
    pub engine_events: u64,
    /// Events on the stream the engine had not yet acked when the probes ended.
    pub backlog_at_end: Option<u64>,
    pub seconds: f64,
}

impl AlertFigures {
    /// The engine's fold rate during the measurement.
    pub fn engine_events_per_s(&self) -> f64 {
        self.engine_events as f64 / self.seconds.max(1e-9)
    }

    /// The `q` quantile of the received probes' latencies (nearest rank), in ms.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let n = self.latencies_ms.len();
        (n > 0).then(|| self.latencies_ms[((n - 1) as f64 * q).round() as usize])
    }

    pub fn p50_ms(&self) -> Option<f64> {
        self.quantile_ms(0.5)
    }

    pub fn p99_ms(&self) -> Option<f64> {
        self.quantile_ms(0.99)
    }

    pub fn max_ms(&self) -> Option<f64> {
        self.latencies_ms.last().copied()
    }

    pub fn to_json(&self) -> Value {
        let ms = |v: Option<f64>| v.map(|v| (v * 100.0).round() / 100.0);
        json!({
            "p50_ms": ms(self.p50_ms()),
            "p99_ms": ms(self.p99_ms()),
            "max_ms": ms(self.max_ms()),
            "probes": self.probes,
            "lost": self.lost,
            "not_sent": self.not_sent,
            "background_events_per_second": self.background_events_per_s.round(),
            "background_target_events_per_second": self.background_target_per_s,
            "background_events": self.background_events,
            "background_publish_errors": self.background_errors,
            "engine_events_folded": self.engine_events,
            "engine_events_per_second": self.engine_events_per_s().round(),
            "engine_backlog_at_end": self.backlog_at_end,
            "seconds": (self.seconds * 10.0).round() / 10.0,
            "target_p99_ms": 25,
        })
    }
}

/// One probe: its rep and its event.
#[derive(Clone, Debug)]
pub struct Probe {
    pub rep: String,
    pub event: Event,
}

/// Everything the measurement needs, built before it starts.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The log's events: the demo organisation, the probe reps, a final tick.
    pub events: Vec<Event>,
    pub probes: Vec<Probe>,
    /// Ordinary demo events for the background, before renaming.
    pub background: Vec<Event>,
}

/// Builds the organisation, the probes and the background pool (see the module doc).
pub fn setup(spec: &AlertSpec, config: &Config, now: Timestamp) -> Result<Setup, BenchError> {
    let demo_spec = |seed| DemoSpec {
        reps: spec.reps.max(1),
        seed,
        now,
        timezone: config.org.timezone,
        currency: config.org.currency,
        daily_ticks: false,
        prior_months: 0,
    };
    let mut events = generate(&demo_spec(spec.seed)).events;
    let tick = match events.pop() {
        Some(e) if matches!(e.body, EventBody::ClockTick) => e,
        _ => {
            return Err(BenchError::Setup(
                "the demo does not end with a tick".into(),
            ))
        }
    };
    let tz = config.org.timezone;
    let today = now.local_date(tz);
    let month = today.month();
    let currency = config.org.currency;
    let plan = Money::new(PROBE_PLAN_MAJOR * 10i64.pow(currency.exponent()), currency);
    let reps: Vec<String> = (0..spec.probes).map(|i| format!("probe-{i:05}")).collect();
    // The plan event that governs this month: the last one whose effective month is
    // not after it (the demo publishes one per month and version, each covering it).
    let governing = events
        .iter_mut()
        .rev()
        .find_map(|e| match &mut e.body {
            EventBody::PlanPublished(p) if p.effective_from <= month && p.covers(month) => Some(p),
            _ => None,
        })
        .ok_or_else(|| BenchError::Setup(format!("the demo has no plan for {month}")))?;
    for rep in &reps {
        governing.lines.push(PlanLine {
            rep: rep.clone(),
            month,
            bucket: Bucket::Total,
            target: plan.minor,
        });
    }
    let at =
        |hours_before: i64| Timestamp::from_micros(now.micros() - hours_before * 3_600_000_000);
    let teams: Vec<_> = teams().collect();
    let mut probes = Vec::with_capacity(reps.len());
    for (i, rep) in reps.iter().enumerate() {
        let (team, manager, region) = teams[i % teams.len()];
        events.push(Event {
            event_id: format!("bench-{rep}-registered"),
            source: "hris".into(),
            occurred_at: at(3),
            body: EventBody::RepRegistered(RepRegistered {
                rep: rep.clone(),
                name: format!("Probe {i}"),
                team: team.into(),
                manager: manager.into(),
                region: Some(region.into()),
                start_month: None,
            }),
        });
        let account = format!("{rep}-account");
        events.push(Event {
            event_id: format!("bench-{rep}-won"),
            source: "crm".into(),
            occurred_at: at(2),
            body: EventBody::DealWon(DealWon {
                deal: format!("{rep}-deal"),
                rep: rep.clone(),
                account: account.clone(),
                customer_kind: CustomerKind::Existing,
                product: Some("analytics".into()),
                region: Some(region.into()),
                amount: plan,
                closed_on: today,
                splits: Vec::new(),
            }),
        });
        probes.push(Probe {
            rep: rep.clone(),
            event: Event {
                event_id: format!("bench-{rep}-churned"),
                source: "crm".into(),
                occurred_at: at(1),
                body: EventBody::Retention(
                    RetentionKind::Churned,
                    RetentionChange {
                        rep: rep.clone(),
                        account,
                        product: Some("analytics".into()),
                        region: Some(region.into()),
                        amount: plan,
                        effective_on: today,
                    },
                ),
            },
        });
    }
    events.push(tick);
    let background = generate(&demo_spec(spec.seed.wrapping_add(1)))
        .events
        .into_iter()
        // What moves actuals, deals, ratings or forecasts (the voidable kinds); no
        // plans, registrations or ticks.
        .filter(|e| is_voidable(&e.body))
        .collect();
    Ok(Setup {
        events,
        probes,
        background,
    })
}

/// Checks that no probe rep has a standing alert before its probe.
pub fn check_quiet(state: &Model, probes: &[Probe]) -> Result<(), BenchError> {
    let reps: HashSet<&str> = probes.iter().map(|p| p.rep.as_str()).collect();
    match state
        .alert_book()
        .iter()
        .find(|a| a.is_standing() && reps.contains(a.rep.as_str()))
    {
        Some(a) => Err(BenchError::Setup(format!(
            "probe rep {} already has a standing {} alert",
            a.rep,
            a.rule()
        ))),
        None => Ok(()),
    }
}

/// A background event of round `round`: new event and deal ids, the rest as it was.
pub fn renamed(ev: &Event, round: u64) -> Event {
    let mut e = ev.clone();
    let new = |id: &str| format!("bg{round}-{id}");
    e.event_id = new(&e.event_id);
    match &mut e.body {
        EventBody::DealOpened(d) => d.deal = new(&d.deal),
        EventBody::DealStageChanged(d) => d.deal = new(&d.deal),
        EventBody::DealWon(d) => d.deal = new(&d.deal),
        EventBody::DealLost(d) => d.deal = new(&d.deal),
        _ => {}
    }
    e
}

fn json_line(ev: &Event) -> Vec<u8> {
    serde_json::to_vec(&encode(ev)).expect("JSON values serialise")
}

/// An event as `pacer publish` sends it (the subject of its type, `Nats-Msg-Id` = its
/// id), built from the event rather than parsed back from its JSON: the publisher
/// shares the engine's two cores.
fn message(subjects: &Subjects, ev: &Event) -> Message {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", ev.event_id.as_str());
    (
        subjects.event(ev.body.type_name()),
        headers,
        json_line(ev).into(),
    )
}

fn connect_err(url: &str, e: &dyn std::fmt::Display) -> NatsError {
    NatsError::Connect {
        urls: url.to_owned(),
        reason: e.to_string(),
    }
}

/// What the background publisher did.
#[derive(Clone, Copy, Debug, Default)]
struct Background {
    sent: u64,
    seconds: f64,
}

/// Publishes the pool's events (renamed per round) at `rate` per second until `stop`.
/// A publisher more than 100 ms behind its schedule starts a new one from where it is
/// rather than bursting to catch up: the load stays steady, and the achieved rate
/// says how much of it there was.
async fn background(
    js: jetstream::Context,
    subjects: Subjects,
    pool: Arc<Vec<Event>>,
    rate: u32,
    mut stop: watch::Receiver<bool>,
    acks: mpsc::Sender<PublishAckFuture>,
) -> Background {
    let started = Instant::now();
    let rate = f64::from(rate.max(1));
    let slack = (rate / 10.0).max(1.0) as u64;
    let mut sent = 0u64;
    let (mut base_t, mut base_sent) = (Instant::now(), 0u64);
    let mut next = 0usize;
    let mut round = 0u64;
    'run: while !*stop.borrow() && !pool.is_empty() {
        let due = base_sent + (base_t.elapsed().as_secs_f64() * rate) as u64;
        if due > sent + slack {
            (base_t, base_sent) = (Instant::now(), sent);
        }
        while sent < due.min(sent + slack) {
            let ev = renamed(&pool[next], round);
            next += 1;
            if next == pool.len() {
                next = 0;
                round += 1;
            }
            let (subject, headers, payload) = message(&subjects, &ev);
            match js.publish_with_headers(subject, headers, payload).await {
                Ok(ack) => {
                    if acks.send(ack).await.is_err() {
                        break 'run;
                    }
                }
                Err(e) => eprintln!("bench: a background publish failed: {e}"),
            }
            sent += 1;
        }
        tokio::select! {
            _ = stop.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(1)) => {}
        }
    }
    Background {
        sent,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Awaits the background's PubAcks; returns how many failed.
async fn drain_acks(mut acks: mpsc::Receiver<PublishAckFuture>) -> u64 {
    let mut failed = 0;
    while let Some(ack) = acks.recv().await {
        if ack.await.is_err() {
            failed += 1;
        }
    }
    failed
}

/// Stamps the arrival of every alert about a probe rep and passes (rep, when) on.
async fn watch_alerts(
    mut sub: async_nats::Subscriber,
    reps: HashSet<String>,
    arrivals: mpsc::Sender<(String, Instant)>,
) {
    while let Some(msg) = sub.next().await {
        let at = Instant::now();
        let rep = msg.subject.as_str().rsplit('.').next().unwrap_or_default();
        if reps.contains(rep) && arrivals.send((rep.to_owned(), at)).await.is_err() {
            return;
        }
    }
}

/// What the probes measured.
#[derive(Clone, Debug, Default)]
struct Probed {
    /// Milliseconds, sorted.
    latencies: Vec<f64>,
    lost: u32,
    not_sent: u32,
}

/// Sends the probes one by one (see the module doc).
async fn probe_all(
    js: jetstream::Context,
    probes: Vec<(String, Message)>,
    mut arrivals: mpsc::Receiver<(String, Instant)>,
    timeout: Duration,
) -> Result<Probed, NatsError> {
    tokio::time::sleep(WARM_UP).await;
    let total = probes.len() as u32;
    let mut latencies = Vec::with_capacity(probes.len());
    let mut lost = 0;
    let mut lost_in_a_row = 0;
    for (rep, message) in probes {
        if lost_in_a_row >= LOST_IN_A_ROW_MAX {
            eprintln!(
                "bench: {lost_in_a_row} probes lost in a row: the engine is behind the load; the other probes are not sent"
            );
            break;
        }
        let sent = Instant::now();
        let subject = message.0.clone();
        let ack = publish_message(&js, message).await?;
        let deadline = tokio::time::Instant::from_std(sent + timeout);
        loop {
            match tokio::time::timeout_at(deadline, arrivals.recv()).await {
                Ok(Some((r, at))) if r == rep => {
                    latencies.push(at.duration_since(sent).as_secs_f64() * 1e3);
                    lost_in_a_row = 0;
                    break;
                }
                // Another probe's alert, late: its probe was counted as lost.
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => {
                    eprintln!("bench: no alert for probe {rep} within {timeout:?}");
                    lost += 1;
                    lost_in_a_row += 1;
                    break;
                }
            }
        }
        ack.await.map_err(|e| NatsError::Publish {
            subject,
            reason: format!("no acknowledgement: {e}"),
        })?;
        tokio::time::sleep(PROBE_GAP).await;
    }
    latencies.sort_by(f64::total_cmp);
    let not_sent = total - lost - latencies.len() as u32;
    Ok(Probed {
        latencies,
        lost,
        not_sent,
    })
}

/// The events on the engine's stream it has not acked yet (pending or unacked).
async fn backlog(js: &jetstream::Context, subjects: &Subjects) -> Option<u64> {
    let stream = js.get_stream(subjects.events_stream()).await.ok()?;
    let mut consumer: jetstream::consumer::PullConsumer =
        stream.get_consumer(&subjects.consumer()).await.ok()?;
    let info = consumer.info().await.ok()?;
    Some(info.num_pending + info.num_ack_pending as u64)
}

/// Measures alert latency under the background load (see the module doc). `dir`
/// (absent or empty) receives the engine's log.
pub async fn alert_latency(
    nats: &BenchNats,
    dir: &Path,
    spec: &AlertSpec,
    config: &Config,
    mut say: impl FnMut(&str),
) -> Result<AlertFigures, BenchError> {
    let now = super::bench_now();
    let mut cfg = config.clone();
    cfg.nats.subject_prefix = PREFIX.into();
    cfg.serve.tick_interval_s = 0;
    let subjects = Subjects::new(PREFIX);

    say(&format!(
        "alert latency: setting up {} demo reps and {} probe reps",
        spec.reps, spec.probes
    ));
    let setup = setup(spec, &cfg, now)?;
    let mut log = Log::open(dir)?;
    log.bind_org(&cfg.org)?;
    super::write_events(&mut log, setup.events, now)?;
    let state = rebuild(&log, &cfg.org, Cut::All, |_| {})?;
    check_quiet(&state, &setup.probes)?;
    let applied_before = state.events_applied();
    let state = Arc::new(RwLock::new(state));

    let url = nats.url.clone();
    let connect = |name: &'static str| {
        let url = url.clone();
        async move {
            async_nats::ConnectOptions::new()
                .name(name)
                .connect(url.as_str())
                .await
                .map_err(|e| connect_err(&url, &e))
        }
    };
    let engine = connect("pacer-bench-engine").await?;
    let loader = connect("pacer-bench-background").await?;
    let prober = connect("pacer-bench-probe").await?;
    let watcher = connect("pacer-bench-subscriber").await?;
    let engine_js = jetstream::new(engine);
    ensure_streams(&engine_js, &cfg.nats, &subjects).await?;
    let observer = engine_js.clone();

    let probe_reps: HashSet<String> = setup.probes.iter().map(|p| p.rep.clone()).collect();
    let sub = watcher
        .subscribe(format!("{PREFIX}.alerts.>"))
        .await
        .map_err(|e| connect_err(&url, &e))?;
    watcher.flush().await.map_err(|e| connect_err(&url, &e))?;
    let (arrived, arrivals) = mpsc::channel(1_024);
    let watching = tokio::spawn(watch_alerts(sub, probe_reps, arrived));

    let probes: Vec<(String, Message)> = setup
        .probes
        .iter()
        .map(|p| (p.rep.clone(), message(&subjects, &p.event)))
        .collect();
    let (stop_load, load_stopped) = watch::channel(false);
    let (ack_tx, ack_rx) = mpsc::channel(ACKS_IN_FLIGHT);
    let draining = tokio::spawn(drain_acks(ack_rx));
    let loading = (spec.background_events_per_s > 0).then(|| {
        tokio::spawn(background(
            jetstream::new(loader),
            subjects.clone(),
            Arc::new(setup.background),
            spec.background_events_per_s,
            load_stopped,
            ack_tx,
        ))
    });
    say(&format!(
        "alert latency: {} probes under {} background events/s",
        spec.probes, spec.background_events_per_s
    ));
    let started = Instant::now();
    let mut probing = tokio::spawn(probe_all(
        jetstream::new(prober),
        probes,
        arrivals,
        spec.timeout,
    ));

    let pipeline = Pipeline::new(
        log,
        Arc::clone(&state),
        cfg,
        engine_js,
        Arc::new(Metrics::new()),
        Box::new(move || now),
        0,
    );
    let (stop_engine, engine_stopped) = watch::channel(false);
    let running = pipeline.run(engine_stopped, None);
    tokio::pin!(running);
    let probed = tokio::select! {
        ran = &mut running => {
            probing.abort();
            let _ = stop_load.send(true);
            watching.abort();
            ran?;
            return Err(BenchError::Setup("the engine stopped before the probes were done".into()));
        }
        probed = &mut probing => probed,
    };
    let seconds = started.elapsed().as_secs_f64();
    let engine_events = state
        .read()
        .map_or(0, |s| s.events_applied())
        .saturating_sub(applied_before);
    let backlog_at_end = backlog(&observer, &subjects).await;
    let _ = stop_load.send(true);
    let load = match loading {
        Some(task) => task.await.unwrap_or_default(),
        None => Background::default(),
    };
    let background_errors = draining.await.unwrap_or_default();
    let _ = stop_engine.send(true);
    running.await?;
    watching.abort();
    let probed = probed.map_err(|e| BenchError::Setup(format!("the probe task failed: {e}")))??;
    Ok(AlertFigures {
        probes: spec.probes,
        lost: probed.lost,
        not_sent: probed.not_sent,
        latencies_ms: probed.latencies,
        background_target_per_s: spec.background_events_per_s,
        background_events_per_s: load.sent as f64 / load.seconds.max(1e-9),
        background_events: load.sent,
        background_errors,
        engine_events,
        backlog_at_end,
        seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pacer_projections::alerts::{Change, Rule};
    use pacer_projections::event::Recorded;

    fn spec() -> AlertSpec {
        AlertSpec {
            probes: 7,
            background_events_per_s: 0,
            reps: 6,
            timeout: Duration::from_secs(5),
            seed: 42,
        }
    }

    /// Folds the set-up events, which void nothing.
    fn fold(events: &[Event], config: &Config, now: Timestamp) -> Model {
        let mut state = Model::new(config.org.clone());
        for (i, e) in events.iter().enumerate() {
            let rec = Recorded {
                seq: i as u64 + 1,
                recorded_at: now,
                event: e.clone(),
            };
            state.apply(&rec, None);
        }
        state
    }

    #[test]
    fn every_probe_raises_one_new_alert_for_its_rep() {
        let config = Config::default();
        let now = crate::bench::bench_now();
        let setup = setup(&spec(), &config, now).unwrap();
        let mut state = fold(&setup.events, &config, now);
        check_quiet(&state, &setup.probes).unwrap();
        let first = setup.events.len() as u64 + 1;
        for (seq, p) in (first..).zip(&setup.probes) {
            let probe = Recorded {
                seq,
                recorded_at: now,
                event: p.event.clone(),
            };
            state.apply(&probe, None);
            let changes = state.alert_book().changes();
            assert_eq!(changes.len(), 1, "{}: {changes:?}", p.rep);
            let (id, change) = &changes[0];
            assert_eq!(*change, Change::Raised);
            let alert = state.alert_book().get(id).unwrap();
            assert_eq!(alert.rep, p.rep);
            assert_eq!(alert.rule(), Rule::BehindPace);
            assert_eq!(alert.finding.bucket, Some(Bucket::Total));
        }
    }

    #[test]
    fn messages_are_what_pacer_publish_sends() {
        let config = Config::default();
        let now = crate::bench::bench_now();
        let setup = setup(&spec(), &config, now).unwrap();
        let subjects = Subjects::new(PREFIX);
        for e in setup
            .background
            .iter()
            .take(500)
            .chain([&setup.probes[0].event])
        {
            let ours = message(&subjects, e);
            let theirs = crate::nats::publish::event_message(&subjects, &json_line(e));
            assert_eq!((&ours.0, &ours.2), (&theirs.0, &theirs.2));
            assert_eq!(
                ours.1.get("Nats-Msg-Id").map(|v| v.as_str()),
                theirs.1.get("Nats-Msg-Id").map(|v| v.as_str())
            );
        }
    }

    #[test]
    fn background_events_are_new_and_keep_to_the_demo_reps() {
        let config = Config::default();
        let now = crate::bench::bench_now();
        let setup = setup(&spec(), &config, now).unwrap();
        let ids: HashSet<&str> = setup.events.iter().map(|e| e.event_id.as_str()).collect();
        let mut seen = HashSet::new();
        for round in 0..2 {
            for e in &setup.background {
                let e = renamed(e, round);
                assert!(!ids.contains(e.event_id.as_str()));
                assert!(e.body.rep().is_none_or(|r| !r.starts_with("probe-")));
                assert!(seen.insert(e.event_id));
            }
        }
    }
}
