//! `pacer bench`: measures the engine against its targets on this machine, side by
//! side with the raw rates that bound them.
//!
//! Measured today, in one run on one generated log:
//! - **replay**: events/s of a full rebuild of the projections (the fold, alerts
//!   included), beside events/s of scanning and decoding the same log with no
//!   projection work, in alternating rounds (the median of each counts: this
//!   machine's speed wanders by a quarter between runs);
//! - **queries**: the report for one team and for the whole organisation, p50 / p99;
//! - the log is left in place for the caller to measure the memory of its replay in
//!   a fresh process ([`scale::measure_replay`]).
//!
//! The data comes from the demo generator (about 1 800 events per rep and year); the
//! log is written directly with `append_batch` in large batches (setup, not measured).
//!
//! Beside them, each in its own module: durable ingest through JetStream ([`ingest`],
//! here), alert latency under a steady background load ([`alert_latency`]) and
//! memory at 10 000 reps × 24 months, measured in a fresh process ([`scale`]).

pub mod alert_latency;
pub mod scale;

use std::path::Path;
use std::time::Instant;

use pacer_projections::report::{report, ReportQuery};
use pacer_projections::time::Timestamp;
use serde_json::{json, Value};

use crate::config::Config;
use crate::demo::{generate, DemoSpec};
use crate::error::LogError;
use crate::log::Log;
use crate::replay::{rebuild, Cut};

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchSpec {
    /// About this many events in the log.
    pub events: u64,
    pub seed: u64,
    /// Repetitions of each query.
    pub queries: u32,
    /// Rounds of scan and replay (and of raw and durable ingest), alternating; the
    /// median of each is the figure.
    pub rounds: u32,
}

/// The median of `rates` (of an even count, the lower middle one: no round's luck
/// counts twice); 0 for none.
pub fn median(rates: &[f64]) -> f64 {
    let mut sorted = rates.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
        .get(sorted.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0.0)
}

/// The figures of one run.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    pub cores: usize,
    pub memory_bytes: u64,
    pub version: String,
    pub events: u64,
    pub reps: usize,
    pub setup_s: f64,
    /// The median round.
    pub scan_events_per_s: f64,
    pub replay_events_per_s: f64,
    /// Every round.
    pub scan_rounds: Vec<f64>,
    pub replay_rounds: Vec<f64>,
    pub cells: u64,
    pub team_report_us: (f64, f64),
    pub org_report_us: (f64, f64),
}

impl Figures {
    /// Replay ÷ raw scan.
    pub fn replay_ratio(&self) -> f64 {
        self.replay_events_per_s / self.scan_events_per_s.max(1e-9)
    }

    /// The figures as JSON, with the machine and the version.
    pub fn to_json(&self) -> Value {
        json!({
            "machine": {"cores": self.cores, "memory_bytes": self.memory_bytes},
            "version": self.version,
            "events": self.events,
            "reps": self.reps,
            "setup_seconds": self.setup_s,
            "replay": {
                "events_per_second": self.replay_events_per_s.round(),
                "raw_scan_events_per_second": self.scan_events_per_s.round(),
                "ratio": (self.replay_ratio() * 1000.0).round() / 1000.0,
                "rounds": {
                    "events_per_second": self.replay_rounds.iter().map(|r| r.round()).collect::<Vec<_>>(),
                    "raw_scan_events_per_second": self.scan_rounds.iter().map(|r| r.round()).collect::<Vec<_>>(),
                },
                "target_events_per_second": 2_000_000,
                "target_ratio": REPLAY_RATIO_TARGET,
                "rep_month_bucket_cells": self.cells,
            },
            "queries": {
                "team_report_us": {"p50": self.team_report_us.0, "p99": self.team_report_us.1},
                "org_report_us": {"p50": self.org_report_us.0, "p99": self.org_report_us.1},
                "target_team_report_p99_us": 1000,
            },
        })
    }
}

/// What the measurements beyond the log can fail with.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Nats(#[from] crate::error::NatsError),
    /// The bench's own preparation is wrong (a bug, or a demo that changed shape).
    #[error("bench set-up: {0}")]
    Setup(String),
}

/// The machine: cores and physical memory in bytes.
pub fn machine() -> (usize, u64) {
    (
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        proc_kb("/proc/meminfo", "MemTotal:"),
    )
}

/// The projections' rep × month × bucket cells: actual buckets and plan lines (of
/// every published version).
pub fn cells(state: &pacer_projections::state::State) -> u64 {
    state.actuals().map(|(_, b)| b.len() as u64).sum::<u64>()
        + state
            .plans()
            .versions()
            .iter()
            .map(|v| v.line_count() as u64)
            .sum::<u64>()
}

/// A line of `/proc/self/status` or `/proc/meminfo` in bytes (`VmRSS:  1234 kB`).
pub(crate) fn proc_kb(file: &str, key: &str) -> u64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// p50 and p99 of `n` timed runs of `f`, in microseconds.
fn percentiles(n: u32, mut f: impl FnMut()) -> (f64, f64) {
    let mut us: Vec<f64> = (0..n.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    us.sort_by(f64::total_cmp);
    let at = |q: f64| us[((us.len() - 1) as f64 * q).round() as usize];
    (
        (at(0.5) * 10.0).round() / 10.0,
        (at(0.99) * 10.0).round() / 10.0,
    )
}

/// The bench's "now": where every generated history ends (fixed, so runs compare).
pub fn bench_now() -> Timestamp {
    Timestamp::parse_rfc3339("2026-11-18T15:00:00Z").expect("a valid instant")
}

/// Reps of a demo organisation of about `events` events (about 1 800 per rep).
fn reps_for(events: u64) -> usize {
    ((events / 1_800).max(1) as usize).min(20_000)
}

/// Events per `append_batch` when the bench writes a generated history (setup).
const WRITE_BATCH_EVENTS: usize = 20_000;

/// The replay's target as a share of the raw scan (issue 20): the table and the JSON
/// both read it.
pub const REPLAY_RATIO_TARGET: f64 = 0.6;

/// Durable ingest's target as a share of the raw consume + ack (issue 20).
pub const INGEST_RATIO_TARGET: f64 = 0.75;

/// Appends generated events to the log in batches of [`WRITE_BATCH_EVENTS`], in
/// order, each batch moved out of `events` as it goes (splitting the rest off instead
/// copied every event left once per batch: a fifth of the bench's set-up time).
pub(crate) fn write_events(
    log: &mut Log,
    events: Vec<pacer_projections::event::Event>,
    now: Timestamp,
) -> Result<(), LogError> {
    let mut events = events.into_iter();
    loop {
        let batch: Vec<_> = events.by_ref().take(WRITE_BATCH_EVENTS).collect();
        if batch.is_empty() {
            return Ok(());
        }
        log.append_batch(batch, now)?;
    }
}

/// Generates the log in `dir` (which must be empty) and measures.
pub fn run(
    dir: &Path,
    spec: &BenchSpec,
    config: &Config,
    mut say: impl FnMut(&str),
) -> Result<Figures, LogError> {
    let started = Instant::now();
    let reps = reps_for(spec.events);
    let now = bench_now();
    say(&format!(
        "generating about {} events for {reps} reps",
        spec.events
    ));
    let demo = generate(&DemoSpec {
        reps,
        seed: spec.seed,
        now,
        timezone: config.org.timezone,
        currency: config.org.currency,
        daily_ticks: false,
        prior_months: 0,
    });
    let mut log = Log::open(dir)?;
    log.bind_org(&config.org)?;
    let n = demo.events.len() as u64;
    say(&format!("writing {n} events to the log"));
    write_events(&mut log, demo.events, now)?;
    let setup_s = started.elapsed().as_secs_f64();

    let rounds = spec.rounds.max(1);
    let (mut scan_rounds, mut replay_rounds) = (Vec::new(), Vec::new());
    let mut scanned = 0u64;
    let mut state = None;
    for round in 1..=rounds {
        say(&format!(
            "round {round} of {rounds}: scanning the log (decode only), then replaying it"
        ));
        let t = Instant::now();
        scanned = 0;
        for rec in log.iter_from(1) {
            std::hint::black_box(rec?);
            scanned += 1;
        }
        scan_rounds.push(scanned as f64 / t.elapsed().as_secs_f64().max(1e-9));
        // The state of the round before is freed first, as a fresh rebuild would be.
        drop(state.take());
        let t = Instant::now();
        let rebuilt = rebuild(&log, &config.org, Cut::All, |_| {})?;
        replay_rounds.push(rebuilt.events_applied() as f64 / t.elapsed().as_secs_f64().max(1e-9));
        state = Some(rebuilt);
    }
    let state = state.expect("at least one round");
    let cells = cells(&state);

    say("timing queries");
    let month = state.current_month().expect("the demo ends with a tick");
    let team = ReportQuery {
        team: Some("north".into()),
        ..ReportQuery::default()
    };
    let team_report_us = percentiles(spec.queries, || {
        std::hint::black_box(report(&state, month, &team));
    });
    let org_report_us = percentiles(spec.queries.div_ceil(4), || {
        std::hint::black_box(report(&state, month, &ReportQuery::default()));
    });
    let (cores, memory_bytes) = machine();
    Ok(Figures {
        cores,
        memory_bytes,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        events: scanned,
        reps,
        setup_s,
        scan_events_per_s: median(&scan_rounds),
        replay_events_per_s: median(&replay_rounds),
        scan_rounds,
        replay_rounds,
        cells,
        team_report_us,
        org_report_us,
    })
}

/// Durable ingest through JetStream, beside the raw rate of consuming and acking the
/// same messages with no processing.
#[derive(Clone, Debug, Default)]
pub struct IngestFigures {
    pub events: u64,
    /// The median round.
    pub durable_events_per_s: f64,
    pub raw_events_per_s: f64,
    /// Every round.
    pub durable_rounds: Vec<f64>,
    pub raw_rounds: Vec<f64>,
}

impl IngestFigures {
    pub fn ratio(&self) -> f64 {
        self.durable_events_per_s / self.raw_events_per_s.max(1e-9)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "events": self.events,
            "durable_events_per_second": self.durable_events_per_s.round(),
            "raw_consume_events_per_second": self.raw_events_per_s.round(),
            "ratio": (self.ratio() * 1000.0).round() / 1000.0,
            "rounds": {
                "durable_events_per_second": self.durable_rounds.iter().map(|r| r.round()).collect::<Vec<_>>(),
                "raw_consume_events_per_second": self.raw_rounds.iter().map(|r| r.round()).collect::<Vec<_>>(),
            },
            "target_events_per_second": 100_000,
            "target_ratio": INGEST_RATIO_TARGET,
        })
    }
}

/// A nats-server of the bench's own, on a free loopback port, killed on drop.
pub struct BenchNats {
    child: std::process::Child,
    pub url: String,
}

impl BenchNats {
    /// Starts Debian's nats-server (`/usr/sbin/nats-server`) with JetStream in `store`;
    /// `None` when it is not installed.
    pub fn start(store: &Path) -> Option<BenchNats> {
        let bin = [
            "/usr/sbin/nats-server",
            "/usr/bin/nats-server",
            "/usr/local/bin/nats-server",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .ok()?
            .port();
        let child = std::process::Command::new(bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Some(BenchNats {
            child,
            url: format!("nats://127.0.0.1:{port}"),
        })
    }
}

impl Drop for BenchNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Measures durable ingest of `events` demo events through a real nats-server, in
/// `rounds` alternating rounds: the raw rate (a pull consumer that only acks the
/// stream's messages), then the engine's pipeline (decode, validate, dedupe, append,
/// flush, ack, fold) on a fresh log, each round with a consumer of its own that
/// reads the same messages from the start.
pub async fn ingest(
    nats: &BenchNats,
    dir: &Path,
    events: u64,
    rounds: u32,
    config: &Config,
) -> Result<IngestFigures, crate::error::NatsError> {
    use async_nats::jetstream::consumer::{pull, AckPolicy};
    use futures::StreamExt;
    use std::sync::{Arc, RwLock};

    use crate::metrics::Metrics;
    use crate::nats::publish::{event_message, publish_all, Message};
    use crate::nats::{ensure_streams, pipeline::Pipeline, Subjects};
    use crate::wire::encode;

    let nats_err = |e: &dyn std::fmt::Display| crate::error::NatsError::Connect {
        urls: nats.url.clone(),
        reason: e.to_string(),
    };
    let client = async_nats::connect(&nats.url)
        .await
        .map_err(|e| nats_err(&e))?;
    let js = async_nats::jetstream::new(client.clone());
    let now = bench_now();
    let demo = generate(&DemoSpec {
        reps: reps_for(events),
        seed: 7,
        now,
        timezone: config.org.timezone,
        currency: config.org.currency,
        daily_ticks: false,
        prior_months: 0,
    });
    let subjects = Subjects::new("bench");
    let lines: Vec<Vec<u8>> = demo
        .events
        .iter()
        .take(events as usize)
        .map(|e| serde_json::to_vec(&encode(e)).expect("JSON values serialise"))
        .collect();
    let n = lines.len() as u64;
    let messages_for =
        |s: &Subjects| -> Vec<Message> { lines.iter().map(|l| event_message(s, l)).collect() };

    // The same messages on two streams: one only consumed, one the engine's.
    let raw_stream = js
        .create_stream(async_nats::jetstream::stream::Config {
            name: "BENCH_RAW".into(),
            subjects: vec!["benchraw.>".into()],
            ..Default::default()
        })
        .await
        .map_err(|e| nats_err(&e))?;
    publish_all(
        &js,
        futures::stream::iter(messages_for(&Subjects::new("benchraw"))),
        256,
    )
    .await?;
    let mut cfg = config.clone();
    cfg.nats.subject_prefix = "bench".into();
    cfg.serve.tick_interval_s = 0;
    ensure_streams(&js, &cfg.nats, &subjects).await?;
    publish_all(&js, futures::stream::iter(messages_for(&subjects)), 256).await?;
    let events_stream = js
        .get_stream(subjects.events_stream())
        .await
        .map_err(|e| nats_err(&e))?;

    let (mut raw_rounds, mut durable_rounds) = (Vec::new(), Vec::new());
    for round in 1..=rounds.max(1) {
        // Raw: a pull consumer of its own that only acks.
        let name = format!("raw{round}");
        let consumer = raw_stream
            .create_consumer(pull::Config {
                durable_name: Some(name.clone()),
                ack_policy: AckPolicy::Explicit,
                max_ack_pending: 20_000,
                ..Default::default()
            })
            .await
            .map_err(|e| nats_err(&e))?;
        let started = Instant::now();
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(1_000)
            .messages()
            .await
            .map_err(|e| nats_err(&e))?;
        let mut seen = 0u64;
        while seen < n {
            match messages.next().await {
                Some(Ok(m)) => {
                    m.ack().await.map_err(|e| nats_err(&e))?;
                    seen += 1;
                }
                Some(Err(e)) => return Err(nats_err(&e)),
                None => break,
            }
        }
        raw_rounds.push(n as f64 / started.elapsed().as_secs_f64().max(1e-9));
        drop(messages);
        let _ = raw_stream.delete_consumer(&name).await;

        // Durable: the engine's pipeline on a fresh log, its consumer made anew so it
        // reads the stream from the start.
        let _ = events_stream.delete_consumer(&subjects.consumer()).await;
        let log_dir = dir.join(format!("round-{round}"));
        let mut log = Log::open(&log_dir)?;
        log.bind_org(&cfg.org)?;
        let state = Arc::new(RwLock::new(pacer_projections::model::Model::new(
            cfg.org.clone(),
        )));
        let pipeline = Pipeline::new(
            log,
            Arc::clone(&state),
            cfg.clone(),
            js.clone(),
            Arc::new(Metrics::new()),
            Box::new(move || now),
            0,
        );
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let started = Instant::now();
        // The pipeline and the stopwatch run side by side in this task.
        let watch = async {
            loop {
                let applied = state.read().map_or(0, |s| s.events_applied());
                if applied >= n {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            let elapsed = started.elapsed().as_secs_f64();
            let _ = stop.send(true);
            elapsed
        };
        let (ran, durable_s) = tokio::join!(pipeline.run(stopped, None), watch);
        ran?;
        durable_rounds.push(n as f64 / durable_s.max(1e-9));
        let _ = std::fs::remove_dir_all(&log_dir);
    }
    Ok(IngestFigures {
        events: n,
        durable_events_per_s: median(&durable_rounds),
        raw_events_per_s: median(&raw_rounds),
        durable_rounds,
        raw_rounds,
    })
}
