//! `pacer bench --web-reps N`: the web app's speed on a large organisation. Writes the
//! demo history of N reps (10 000: the bench org), gives 20 of them a team of
//! their own (`bench-20`, a manager's team in a large org: `rep_reassigned` events
//! twelve months back, so its history is the team's), serves it as `pacer serve
//! --http` does (one process), logs in as that team's manager with a token, and
//! times whole requests over loopback: the team page, a rep page, the alerts inbox
//! and one drill-down.
//! The times are each request from sending it to the last byte of its body, so
//! they include the server's work and a loopback round trip; the size is the body as
//! sent (no compression).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use pacer_engine::access::{Access, Role, Users, USERS_FILE};
use pacer_engine::bench::scale;
use pacer_engine::http::{Sink, Stores};
use pacer_engine::metrics::Metrics;
use pacer_engine::replay::{rebuild, Cut};
use serde_json::{json, Value};

use super::common::move_into_team;
use super::serve::{local_engine, runtime, serve_webhooks};

/// The team the bench builds.
const TEAM: &str = "bench-20";
/// Its size: the "team page of 20 reps".
const TEAM_REPS: usize = 20;

/// p50 and p99 of a page's requests, and its size.
#[derive(Clone, Debug, Default)]
pub struct PageFigures {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub bytes: usize,
    pub requests: u32,
}

impl PageFigures {
    fn to_json(&self) -> Value {
        json!({"p50_ms": self.p50_ms, "p99_ms": self.p99_ms, "bytes": self.bytes, "requests": self.requests})
    }
}

/// What the web bench measured.
#[derive(Clone, Debug, Default)]
pub struct WebFigures {
    pub reps: usize,
    pub events: u64,
    pub team: PageFigures,
    pub rep: PageFigures,
    /// The manager's alerts inbox.
    pub inbox: PageFigures,
    /// The events behind one figure: a scan of the whole log.
    pub events_page: PageFigures,
}

impl WebFigures {
    pub fn to_json(&self) -> Value {
        json!({
            "reps": self.reps,
            "events": self.events,
            "team_page": self.team.to_json(),
            "rep_page": self.rep.to_json(),
            "inbox": self.inbox.to_json(),
            "events_page": self.events_page.to_json(),
        })
    }
}

pub fn measure(
    config: &pacer_engine::Config,
    dir: &Path,
    reps: usize,
    requests: u32,
    seed: u64,
) -> anyhow::Result<WebFigures> {
    let say = |what: &str| eprintln!("bench: web: {what}");
    let log_dir = dir.join("web-log");
    say(&format!("writing the history of {reps} reps"));
    let written = scale::write_log(&log_dir, reps, seed, config, say)?;
    let now = pacer_engine::bench::bench_now();
    let mut log = pacer_engine::Log::open(&log_dir)?;
    log.bind_org(&config.org)?;
    say(&format!(
        "{} events written; replaying them to pick the team",
        written.events
    ));
    let state = rebuild(&log, &config.org, Cut::All, |_| {})?;
    let month = now.local_date(config.org.timezone).month();
    let members: Vec<String> = state.reps().keys().take(TEAM_REPS).cloned().collect();
    anyhow::ensure!(
        members.len() == TEAM_REPS,
        "the bench org has {} reps; the web bench needs at least {TEAM_REPS}",
        members.len()
    );
    drop(state);
    move_into_team(&mut log, &members, TEAM, "bench-manager", month, now)?;
    let state = rebuild(&log, &config.org, Cut::All, |_| {})?;
    // The team's manager, with a token.
    let rt = runtime()?;
    let server = BenchServer::start(
        &rt,
        config,
        (log, state),
        &dir.join("web-data"),
        ("bench-manager", Role::Manager, vec![TEAM.into()]),
    )?;
    let (base, token) = (&server.base, &server.token);
    let agent = ureq::AgentBuilder::new().build();
    let get = |path: &str| -> anyhow::Result<(f64, usize)> {
        let started = Instant::now();
        let resp = agent
            .get(&format!("{base}{path}"))
            .set("Authorization", &format!("Bearer {token}"))
            .call()
            .with_context(|| format!("GET {path}"))?;
        let body = resp.into_string()?;
        Ok((started.elapsed().as_secs_f64() * 1000.0, body.len()))
    };
    let time = |path: &str, n: u32| -> anyhow::Result<PageFigures> {
        // Two to warm up (the first page of a kind builds its caches).
        for _ in 0..2 {
            get(path)?;
        }
        let mut ms = Vec::with_capacity(n as usize);
        let mut bytes = 0;
        for _ in 0..n {
            let (t, b) = get(path)?;
            ms.push(t);
            bytes = b;
        }
        ms.sort_by(f64::total_cmp);
        let q = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
        Ok(PageFigures {
            p50_ms: q(0.5),
            p99_ms: q(0.99),
            bytes,
            requests: n,
        })
    };
    let m = month.to_string();
    say(&format!("timing the team page ({requests} requests)"));
    let team = time(&format!("/team/{TEAM}?month={m}"), requests)?;
    say(&format!("timing a rep page ({requests} requests)"));
    let rep = time(&format!("/rep/{}?month={m}", members[0]), requests)?;
    say(&format!("timing the alerts inbox ({requests} requests)"));
    let inbox = time("/alerts", requests)?;
    say("timing a drill-down (3 requests)");
    let events_page = time(
        &format!("/rep/{}/events?month={m}&bucket=total", members[0]),
        3,
    )?;
    let _ = std::fs::remove_dir_all(&log_dir);
    Ok(WebFigures {
        reps,
        events: written.events,
        team,
        rep,
        inbox,
        events_page,
    })
}

/// A bench organisation served as `pacer serve --http` serves it (one process), on a
/// loopback port, with one user and a token of theirs: what the web and query
/// benches time.
pub struct BenchServer {
    pub local: Arc<pacer_engine::local::Local>,
    pub base: String,
    pub token: String,
    // Kept while the server runs: dropping the sender would stop it.
    _stop: tokio::sync::watch::Sender<bool>,
    _server: tokio::task::JoinHandle<()>,
}

impl BenchServer {
    /// Serves `log` (folded into `state`) on `rt`; the user `name` with `role` over
    /// `teams` is written to `data`'s users file.
    pub fn start(
        rt: &tokio::runtime::Runtime,
        config: &pacer_engine::Config,
        (log, state): (pacer_engine::Log, pacer_projections::model::Model),
        data: &Path,
        (name, role, teams): (&str, Role, Vec<String>),
    ) -> anyhow::Result<BenchServer> {
        std::fs::create_dir_all(data)?;
        let mut users = Users::load(&data.join(USERS_FILE))?;
        users.add(name, role, teams, None)?;
        let (_, token) = users.create_token(name, None, Some("bench".into()))?;
        users.save(&data.join(USERS_FILE))?;
        let metrics = Arc::new(Metrics::new());
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let (local, mirror, dlq) = local_engine(log, state, config, &metrics)?;
        let (bound, server) = rt.block_on(serve_webhooks(
            config,
            "127.0.0.1:0",
            Sink::Local(Arc::clone(&local)),
            Stores {
                mirror,
                dlq,
                access: Arc::new(Access::new(data)),
                deliverer: None,
            },
            &metrics,
            stop_rx,
            None,
        ))?;
        Ok(BenchServer {
            local,
            base: format!("http://{bound}"),
            token,
            _stop: stop,
            _server: server,
        })
    }
}
