//! `pacer bench --query-reps 100,1600,10000`: how fast the figures come back, and
//! how the cost grows. For each size it writes the demo history of that many reps,
//! gives a fifth of them a team of their own (`bench-query`: 320 reps at 1 600, the
//! issue's team), serves it as `pacer serve --http` does (one process) and, with a
//! nats-server of the bench's own, as the NATS query service does, then times:
//!
//! - the team report (`month`, `team`, `bucket=total`) and the org report
//!   (`month`, `bucket=total`), and the org's comp report (every rep's pay this
//!   quarter under the demo's comp plan: `GET /v1/comp`);
//! - on three paths: in process (`answer_bytes`, the function both servers call),
//!   over HTTP (`GET /v1/report`, an admin's token, a kept-alive connection) and over
//!   NATS (a request to `<prefix>.query.report`);
//! - each twice: **ready** (asked again with nothing folded in between: the answer
//!   kept for this state) and **after a fold** (one event folded before each
//!   question, so the answer is made anew).
//!
//! Times run from sending the question to the last byte of the answer.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use pacer_engine::access::Role;
use pacer_engine::bench::{scale, BenchNats};
use pacer_engine::nats::query::{answer_bytes, serve_queries, QueryContext};
use pacer_engine::nats::Subjects;
use pacer_engine::replay::{rebuild, Cut};
use pacer_projections::event::{ActivityLogged, Event, EventBody};
use serde_json::{json, Map, Value};

use super::common::move_into_team;
use super::serve::runtime;
use super::web_bench::BenchServer;

/// The team the bench builds: a fifth of the org.
const TEAM: &str = "bench-query";

/// p50 and p99 (ms) of one question on one path, ready and after a fold.
#[derive(Clone, Debug, Default)]
pub struct PathFigures {
    pub ready_ms: (f64, f64),
    pub fresh_ms: (f64, f64),
    pub bytes: usize,
    /// Why the path was not timed (the answer does not fit in one NATS message).
    pub skipped: Option<String>,
}

/// One size's figures: for the team and the org report, each path
/// (`in process`, `HTTP`, `NATS`; NATS absent without a nats-server).
#[derive(Clone, Debug, Default)]
pub struct SizeFigures {
    pub reps: usize,
    pub team_reps: usize,
    pub events: u64,
    pub team: Vec<(&'static str, PathFigures)>,
    pub org: Vec<(&'static str, PathFigures)>,
    /// The org's comp statements (`comp`, no filter).
    pub comp: Vec<(&'static str, PathFigures)>,
}

impl SizeFigures {
    pub fn to_json(&self) -> Value {
        let paths = |list: &[(&str, PathFigures)]| -> Value {
            list.iter()
                .map(|(path, f)| {
                    json!({
                        "path": path,
                        "ready_p50_ms": f.ready_ms.0, "ready_p99_ms": f.ready_ms.1,
                        "after_fold_p50_ms": f.fresh_ms.0, "after_fold_p99_ms": f.fresh_ms.1,
                        "bytes": f.bytes, "skipped": f.skipped,
                    })
                })
                .collect()
        };
        json!({
            "reps": self.reps, "team_reps": self.team_reps, "events": self.events,
            "team_report": paths(&self.team), "org_report": paths(&self.org),
            "org_comp_report": paths(&self.comp),
        })
    }
}

/// p50 and p99 of a list of times.
fn quantiles(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    let q = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    (q(0.5), q(0.99))
}

pub fn measure(
    config: &pacer_engine::Config,
    dir: &Path,
    sizes: &[usize],
    requests: u32,
    seed: u64,
) -> anyhow::Result<Vec<SizeFigures>> {
    let mut out = Vec::new();
    for &reps in sizes {
        out.push(measure_size(config, dir, reps, requests.max(1), seed)?);
    }
    Ok(out)
}

fn measure_size(
    config: &pacer_engine::Config,
    dir: &Path,
    reps: usize,
    requests: u32,
    seed: u64,
) -> anyhow::Result<SizeFigures> {
    let say = |what: &str| eprintln!("bench: queries at {reps} reps: {what}");
    let log_dir = dir.join(format!("query-log-{reps}"));
    say("writing the history");
    let written = scale::write_log(&log_dir, reps, seed, config, say)?;
    let now = pacer_engine::bench::bench_now();
    let mut log = pacer_engine::Log::open(&log_dir)?;
    log.bind_org(&config.org)?;
    let state = rebuild(&log, &config.org, Cut::All, |_| {})?;
    let month = now.local_date(config.org.timezone).month();
    let team_reps = (reps / 5).max(1);
    let members: Vec<String> = state.reps().keys().take(team_reps).cloned().collect();
    // Whose activity the folds log: a rep outside the team (in a one-rep org, the
    // rep), so that the figures asked about stay the same size.
    let outsider = state
        .reps()
        .keys()
        .find(|r| !members.contains(r))
        .or(members.first())
        .cloned()
        .context("the bench org has no reps")?;
    // The demo's comp plan pays its own teams: its next version pays the bench's team
    // too, so that the org's comp report has a statement for every rep.
    let comp = state
        .comp_plans()
        .values()
        .flat_map(|versions| versions.iter().map(|(_, p)| p))
        .max_by_key(|p| p.version)
        .cloned();
    drop(state);
    move_into_team(&mut log, &members, TEAM, "bench-manager", month, now)?;
    if let Some(mut plan) = comp {
        plan.version += 1;
        let pay = plan.assignments.first().map_or(0, |a| a.variable_pay);
        plan.assignments
            .push(pacer_projections::event::CompAssignment {
                rep: None,
                team: Some(TEAM.into()),
                variable_pay: pay,
            });
        let event = Event {
            event_id: format!("bench-comp-{reps}"),
            source: "pacer-bench".into(),
            occurred_at: now,
            body: EventBody::CompPlanPublished(plan),
        };
        log.append_batch(vec![event], now)?;
    }
    say("replaying it");
    let state = rebuild(&log, &config.org, Cut::All, |_| {})?;
    let rt = runtime()?;
    let server = BenchServer::start(
        &rt,
        config,
        (log, state),
        &dir.join(format!("query-data-{reps}")),
        ("bench-admin", Role::Admin, vec![]),
    )?;
    let (local, token) = (&server.local, &server.token);
    let ctx = QueryContext::new(Arc::clone(local.state()), local.reader());
    // The NATS query service over the same projections, when a nats-server is here.
    let nats = BenchNats::start(&dir.join(format!("query-nats-{reps}")));
    let subjects = Subjects::new(&config.nats.subject_prefix);
    let nats_client = match &nats {
        None => {
            eprintln!("bench: the NATS query path is skipped: nats-server is not installed");
            None
        }
        Some(n) => Some(rt.block_on(async {
            let client = async_nats::connect(&n.url).await?;
            let service = serve_queries(client.clone(), &subjects, ctx.clone()).await?;
            anyhow::Ok((client, service))
        })?),
    };

    // One event folded before each "after a fold" question: an activity of the
    // outsider.
    let mut folds = 0_u64;
    let mut fold = || -> anyhow::Result<()> {
        folds += 1;
        let event = Event {
            event_id: format!("bench-query-fold-{reps}-{folds}"),
            source: "pacer-bench".into(),
            occurred_at: now,
            body: EventBody::ActivityLogged(ActivityLogged {
                rep: outsider.clone(),
                kind: "call".into(),
                account: None,
                deal: None,
            }),
        };
        local
            .submit(vec![event])
            .map_err(|e| anyhow::anyhow!("folding a bench event: {e:?}"))?;
        Ok(())
    };

    let base = &server.base;
    let agent = ureq::AgentBuilder::new().build();
    let m = month.to_string();
    let mut figures = SizeFigures {
        reps,
        team_reps,
        events: written.events,
        ..SizeFigures::default()
    };
    for (which, name, query) in [
        (
            "team",
            "report",
            format!("month={m}&team={TEAM}&bucket=total"),
        ),
        ("org", "report", format!("month={m}&bucket=total")),
        ("comp", "comp", format!("period={m}")),
    ] {
        let params: Map<String, Value> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
            .collect();
        let body = serde_json::to_vec(&params)?;
        // Each path: (name, one question → bytes).
        let mut ask_in_process =
            || -> anyhow::Result<usize> { Ok(answer_bytes(name, &params, &ctx).0.len()) };
        let url = format!("{base}/v1/{name}?{query}");
        let ask_http = || -> anyhow::Result<usize> {
            let resp = agent
                .get(&url)
                .set("Authorization", &format!("Bearer {token}"))
                .call()
                .with_context(|| format!("GET {url}"))?;
            // Read whole, whatever its size (an org's comp report is megabytes).
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut resp.into_reader(), &mut body)?;
            Ok(body.len())
        };
        let report_subject = format!("{}.{name}", subjects.query_group());
        let ask_nats = |client: &async_nats::Client| -> anyhow::Result<usize> {
            let reply = rt.block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(30),
                    client.request(report_subject.clone(), body.clone().into()),
                )
                .await
            })??;
            if reply.payload.starts_with(br#"{"error""#) {
                anyhow::bail!("{}", String::from_utf8_lossy(&reply.payload));
            }
            Ok(reply.payload.len())
        };
        let time = |ask: &mut dyn FnMut() -> anyhow::Result<usize>,
                    fold: &mut dyn FnMut() -> anyhow::Result<()>|
         -> anyhow::Result<PathFigures> {
            // Warm up: the first answers build their caches.
            for _ in 0..3 {
                ask()?;
            }
            let mut ready = Vec::with_capacity(requests as usize);
            let mut bytes = 0;
            for _ in 0..requests {
                let started = Instant::now();
                bytes = ask()?;
                ready.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            let mut fresh = Vec::with_capacity(requests as usize);
            for _ in 0..requests {
                fold()?;
                let started = Instant::now();
                ask()?;
                fresh.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            Ok(PathFigures {
                ready_ms: quantiles(ready),
                fresh_ms: quantiles(fresh),
                bytes,
                skipped: None,
            })
        };
        say(&format!(
            "timing the {which} {name} ({requests} questions a path, twice)"
        ));
        let mut list = vec![
            ("in process", time(&mut ask_in_process, &mut fold)?),
            ("HTTP", time(&mut || ask_http(), &mut fold)?),
        ];
        if let Some((client, _)) = &nats_client {
            // An answer over the server's max_payload is refused with an error.
            let figures = match ask_nats(client) {
                Ok(_) => time(&mut || ask_nats(client), &mut fold)?,
                Err(e) => PathFigures {
                    skipped: Some(e.to_string()),
                    ..PathFigures::default()
                },
            };
            list.push(("NATS", figures));
        }
        match which {
            "team" => figures.team = list,
            "org" => figures.org = list,
            _ => figures.comp = list,
        }
    }
    drop(nats_client);
    drop(nats);
    let _ = std::fs::remove_dir_all(&log_dir);
    Ok(figures)
}
