//! Request/reply queries on the NATS service API (so `nats micro ls` and friends
//! discover them): `<prefix>.query.report`, `.alerts`, `.digest` and `.log`. Each
//! takes a JSON object of parameters (an empty body means the defaults) and answers
//! with the same JSON as the CLI; an error answers `{"error": "..."}`.
//!
//! - `report`: `{"month"?, "rep"?, "team"?, "bucket"?, "view"?: "plan-vs-actual" |
//!   "productivity"}`
//! - `alerts`: `{"status"?: "open"|"acknowledged"|"resolved"|"all", "team"?,
//!   "manager"?, "rep"?}`
//! - `digest`: `{"team"? | "manager"?, "week"?}`
//! - `log`: `{"from_seq"?: 1, "limit"?: 100}` (at most 1000 events a page)
//!
//! Answers are made once per state of the projections: [`answer_bytes`] keeps each
//! answer's JSON bytes (a bounded [`QueryCache`], keyed by the query and its
//! parameters) until the next event is folded, so a dashboard asking again reads
//! them rather than recomputing; the report's rows are written straight to bytes
//! ([`crate::output::report_json_bytes`]), with no intermediate JSON tree.
//!
//! The same three figures queries per team: `<prefix>.query.team.<team>.report`,
//! `.alerts`, `.digest` answer for that team only (the subject's team overrides any
//! `team` parameter; other filters narrow within it). So NATS itself enforces who may
//! ask what: a manager's user may publish to its teams' subjects, while the org-wide
//! ones are for finance (deploy/nats/secure.conf).

use std::sync::{Arc, RwLock};

use async_nats::service::{Service, ServiceExt};
use async_nats::Client;
use bytes::Bytes;
use chrono_tz::Tz;
use futures::StreamExt;
use pacer_projections::alerts::{alert_views, alert_week, AlertQuery, StatusFilter};
use pacer_projections::bucket::Bucket;
use pacer_projections::digest::{digest, Audience};
use pacer_projections::model::Model;
use pacer_projections::money::Currency;
use pacer_projections::productivity::productivity;
use pacer_projections::report::{report, ReportQuery};
use pacer_projections::time::{IsoWeek, Month};
use serde_json::{json, Map, Value};

use super::Subjects;
use crate::error::NatsError;
use crate::log::LogReader;
use crate::output::{alerts_json, productivity_json, report_json};
use crate::wire::encode_recorded;

/// The most events one `log` page returns.
pub const LOG_PAGE_MAX: u64 = 1000;

/// What the queries read.
#[derive(Clone)]
pub struct QueryContext {
    pub state: Arc<RwLock<Model>>,
    pub log: LogReader,
    /// The answers made for the state as it is now.
    pub cache: Arc<QueryCache>,
}

impl QueryContext {
    pub fn new(state: Arc<RwLock<Model>>, log: LogReader) -> Self {
        QueryContext {
            state,
            log,
            cache: Arc::new(QueryCache::default()),
        }
    }
}

/// The most answers kept for one state of the projections.
pub const CACHE_ANSWERS_MAX: usize = 512;
/// The largest answer kept (bytes): a bigger one is made again when asked again.
/// Room for the org's comp report at 10 000 reps (about 16 MB), which finance's
/// screens ask again and again between folds.
pub const CACHE_ANSWER_BYTES_MAX: usize = 24 << 20;
/// The most bytes kept in all.
pub const CACHE_BYTES_MAX: usize = 64 << 20;

/// Answers made for one state of the projections (the seq of the last event
/// folded): all dropped as soon as another event is folded. At most
/// [`CACHE_ANSWERS_MAX`] answers of at most [`CACHE_ANSWER_BYTES_MAX`] bytes, and
/// [`CACHE_BYTES_MAX`] in all (past either, the kept ones are dropped and the
/// cache starts again).
#[derive(Default)]
pub struct QueryCache {
    inner: std::sync::Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    seq: u64,
    answers: std::collections::HashMap<String, (Bytes, bool)>,
    bytes: usize,
    hits: u64,
    misses: u64,
}

impl QueryCache {
    fn get(&self, seq: u64, key: &str) -> Option<(Bytes, bool)> {
        let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let found = (c.seq == seq)
            .then(|| c.answers.get(key).cloned())
            .flatten();
        match found {
            Some(_) => c.hits += 1,
            None => c.misses += 1,
        }
        found
    }

    fn put(&self, seq: u64, key: String, answer: (Bytes, bool)) {
        if answer.0.len() > CACHE_ANSWER_BYTES_MAX {
            return;
        }
        let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        // Made for a state older than the one kept: the newer answers stay.
        if seq < c.seq {
            return;
        }
        let bytes = key.len() + answer.0.len();
        if c.seq != seq || c.answers.len() >= CACHE_ANSWERS_MAX || c.bytes + bytes > CACHE_BYTES_MAX
        {
            c.answers.clear();
            c.bytes = 0;
            c.seq = seq;
        }
        c.bytes += bytes;
        if let Some(old) = c.answers.insert(key.clone(), answer) {
            c.bytes -= key.len() + old.0.len();
        }
    }

    /// Answers read from the cache, and made, so far.
    pub fn counts(&self) -> (u64, u64) {
        let c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (c.hits, c.misses)
    }
}

/// Starts the service; it answers for as long as the returned handle is kept.
pub async fn serve_queries(
    client: Client,
    subjects: &Subjects,
    ctx: QueryContext,
) -> Result<Service, NatsError> {
    let service_err = |e: &dyn std::fmt::Display| NatsError::Service {
        reason: e.to_string(),
    };
    let service = client
        .service_builder()
        .description("Pacer: plan vs actual, alerts and digests")
        .start("pacer", env!("CARGO_PKG_VERSION"))
        .await
        .map_err(|e| service_err(&e))?;
    let group = service.group(subjects.query_group());
    for name in ["report", "alerts", "digest", "comp", "log"] {
        let mut endpoint = group.endpoint(name).await.map_err(|e| service_err(&e))?;
        let (ctx, client) = (ctx.clone(), client.clone());
        tokio::spawn(async move {
            while let Some(request) = endpoint.next().await {
                let bytes = match params_of(&request.message.payload) {
                    Ok(params) => answer_bytes(name, &params, &ctx).0,
                    Err(e) => Bytes::from(serde_json::to_vec(&e).expect("JSON values serialise")),
                };
                let bytes = fitting(bytes, client.max_payload());
                if let Err(e) = request.respond(Ok(bytes)).await {
                    eprintln!("pacer serve: answering a {name} query failed: {e}");
                }
            }
        });
    }
    for name in ["report", "alerts", "digest", "comp"] {
        let mut endpoint = group
            .endpoint_builder()
            .name(format!("team-{name}"))
            .add(format!("team.*.{name}"))
            .await
            .map_err(|e| service_err(&e))?;
        let (ctx, client) = (ctx.clone(), client.clone());
        let prefix = format!("{}.team.", subjects.query_group());
        tokio::spawn(async move {
            while let Some(request) = endpoint.next().await {
                let subject = request.message.subject.as_str();
                let token = subject
                    .strip_prefix(&prefix)
                    .and_then(|rest| rest.split('.').next())
                    .unwrap_or("");
                let bytes = match team_params(token, &request.message.payload, &ctx) {
                    Ok(params) => answer_bytes(name, &params, &ctx).0,
                    Err(e) => Bytes::from(serde_json::to_vec(&e).expect("JSON values serialise")),
                };
                let bytes = fitting(bytes, client.max_payload());
                if let Err(e) = request.respond(Ok(bytes)).await {
                    eprintln!("pacer serve: answering a team {name} query failed: {e}");
                }
            }
        });
    }
    Ok(service)
}

/// An answer as a NATS reply: itself when it fits in one message
/// (`max_payload_bytes`, the server's), else an error that says so and how to ask
/// for less (an org report of thousands of reps is megabytes; over HTTP it is
/// whole).
fn fitting(answer: Bytes, max_payload_bytes: usize) -> Bytes {
    if answer.len() <= max_payload_bytes.saturating_sub(1024) {
        return answer;
    }
    let message = format!(
        "the answer is {} bytes, too large for one message of this NATS server (max_payload {max_payload_bytes}): ask for less (a team, a rep or a bucket), or over HTTP",
        answer.len()
    );
    Bytes::from(serde_json::to_vec(&error(&message)).expect("JSON values serialise"))
}

/// The answer to one query as the JSON bytes sent (the bytes of
/// [`answer_params`]'s value), and whether it is an error. Made once per state of
/// the projections and kept ([`QueryCache`]); `log` reads the log and is made each
/// time.
pub fn answer_bytes(name: &str, params: &Map<String, Value>, ctx: &QueryContext) -> (Bytes, bool) {
    let made = |v: Value| {
        let error = v.get("error").is_some();
        (
            exact(serde_json::to_vec(&v).expect("JSON values serialise")),
            error,
        )
    };
    let seq = |ctx: &QueryContext| ctx.state.read().ok().map(|s| s.last_seq());
    let (Some(before), Some(key)) = (seq(ctx), cache_key(name, params)) else {
        return made(answer_params(name, params, ctx));
    };
    if let Some(kept) = ctx.cache.get(before, &key) {
        return kept;
    }
    let answer = match name {
        "report" => match report_bytes(params, ctx) {
            Ok(Some(bytes)) => (exact(bytes), false),
            Ok(None) => made(answer_params(name, params, ctx)),
            Err(e) => made(error(&e)),
        },
        "comp" => match comp_bytes(params, ctx) {
            Ok(bytes) => (exact(bytes), false),
            Err(e) => made(error(&e)),
        },
        _ => made(answer_params(name, params, ctx)),
    };
    // Kept only when no event was folded while it was made.
    if seq(ctx) == Some(before) {
        ctx.cache.put(before, key, answer.clone());
    }
    answer
}

/// The longest question kept with its answer (bytes of its key).
pub const CACHE_KEY_BYTES_MAX: usize = 1024;

/// The cache's key of a question: its name and the parameters it reads, in one
/// order (a parameter a query does not read does not make another question, so
/// `?_=<time>` cannot fill the cache). `None`: not kept (`log` reads the log, not
/// the state; a key over [`CACHE_KEY_BYTES_MAX`]).
fn cache_key(name: &str, params: &Map<String, Value>) -> Option<String> {
    let reads: &[&str] = match name {
        "report" => &["bucket", "month", "rep", "team", "view"],
        "alerts" => &["manager", "rep", "status", "team"],
        "digest" => &["manager", "team", "week"],
        "comp" => &["manager", "period", "rep", "team"],
        _ => return None,
    };
    let mut key = name.to_owned();
    for p in reads {
        if let Some(v) = params.get(*p) {
            key.push('\n');
            key.push_str(p);
            key.push('=');
            key.push_str(&serde_json::to_string(v).expect("JSON values serialise"));
        }
    }
    (key.len() <= CACHE_KEY_BYTES_MAX).then_some(key)
}

/// An answer's bytes, holding no more memory than they need (the cache counts
/// what it keeps by its length).
fn exact(mut bytes: Vec<u8>) -> Bytes {
    bytes.shrink_to_fit();
    Bytes::from(bytes)
}

/// The plan-vs-actual report's bytes, written row by row (`None`: another view, or
/// a `view` that is not one, answered by [`answer_params`] with its error).
fn report_bytes(
    params: &Map<String, Value>,
    ctx: &QueryContext,
) -> Result<Option<Vec<u8>>, String> {
    let state = ctx
        .state
        .read()
        .map_err(|_| "the state is unavailable".to_owned())?;
    // As `report_query` does it: month and filters first, then the view.
    let (month, query) = report_params(params, &state)?;
    match params.get("view") {
        None | Some(Value::Null) => {}
        Some(Value::String(v)) if v == "plan-vs-actual" => {}
        Some(_) => return Ok(None),
    }
    Ok(Some(crate::output::report_json_bytes(&report(
        &state, month, &query,
    ))))
}

/// A report query's month (default: the current one) and filters.
fn report_params(
    params: &Map<String, Value>,
    state: &Model,
) -> Result<(Month, ReportQuery), String> {
    let month = match text(params, "month")? {
        Some(m) => Month::parse(m).map_err(|e| format!("month: {e}"))?,
        None => state
            .current_month()
            .ok_or("the log has no clock_tick yet: pass \"month\"")?,
    };
    let bucket = text(params, "bucket")?
        .map(|b| Bucket::parse(b).map_err(|e| format!("bucket: {e}")))
        .transpose()?;
    let query = ReportQuery {
        rep: text(params, "rep")?.map(str::to_owned),
        team: text(params, "team")?.map(str::to_owned),
        bucket,
    };
    Ok((month, query))
}

/// A request body as parameters (an empty body: none), or the error answer.
fn params_of(body: &[u8]) -> Result<Map<String, Value>, Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(error("the request must be a JSON object of parameters")),
        Err(e) => Err(error(&format!("the request is not JSON: {e}"))),
    }
}

/// A team query's parameters: the body's, with `team` the one whose subject token is
/// `token`; or the error answer.
fn team_params(token: &str, body: &[u8], ctx: &QueryContext) -> Result<Map<String, Value>, Value> {
    let team = match ctx.state.read() {
        Ok(state) => state
            .teams_now()
            .into_iter()
            .find(|t| super::token(t) == token),
        Err(_) => return Err(error("the state is unavailable")),
    };
    let Some(team) = team else {
        return Err(error(&format!("no team {token:?}")));
    };
    let mut params = params_of(body)?;
    params.insert("team".into(), Value::String(team));
    Ok(params)
}

/// The answer to one query whose parameters are parsed already.
pub fn answer_params(name: &str, params: &Map<String, Value>, ctx: &QueryContext) -> Value {
    let result = match name {
        "report" => report_query(params, ctx),
        "alerts" => alerts_query(params, ctx),
        "digest" => digest_query(params, ctx),
        "comp" => comp_query(params, ctx),
        "log" => log_query(params, ctx),
        _ => Err(format!("no query named {name:?}")),
    };
    result.unwrap_or_else(|e| error(&e))
}

fn error(message: &str) -> Value {
    json!({ "error": message })
}

fn text<'a>(params: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, String> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("{key}: {other} is not a string")),
    }
}

fn number(params: &Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("{key}: {v} is not a whole number")),
    }
}

fn report_query(params: &Map<String, Value>, ctx: &QueryContext) -> Result<Value, String> {
    let state = ctx
        .state
        .read()
        .map_err(|_| "the state is unavailable".to_owned())?;
    let (month, query) = report_params(params, &state)?;
    match text(params, "view")?.unwrap_or("plan-vs-actual") {
        "plan-vs-actual" => Ok(report_json(&report(&state, month, &query))),
        "productivity" => Ok(productivity_json(
            &productivity(&state, month, &query),
            state.config().currency,
        )),
        other => Err(format!(
            "view: {other:?} is not plan-vs-actual or productivity"
        )),
    }
}

/// `comp`: the comp statements of the period holding `period` (a month; default the
/// current one) for `rep`, `team` or everyone.
fn comp_query(params: &Map<String, Value>, ctx: &QueryContext) -> Result<Value, String> {
    let state = ctx
        .state
        .read()
        .map_err(|_| "the state is unavailable".to_owned())?;
    let (month, rep, team) = comp_params(params, &state)?;
    Ok(crate::comp_file::statements_json(&state, month, rep, team))
}

/// The comp report's bytes, written statement by statement.
fn comp_bytes(params: &Map<String, Value>, ctx: &QueryContext) -> Result<Vec<u8>, String> {
    let state = ctx
        .state
        .read()
        .map_err(|_| "the state is unavailable".to_owned())?;
    let (month, rep, team) = comp_params(params, &state)?;
    Ok(crate::comp_file::statements_json_bytes(
        &state, month, rep, team,
    ))
}

/// A comp query's period (default: the current month), rep and team.
fn comp_params<'p>(
    params: &'p Map<String, Value>,
    state: &Model,
) -> Result<(Month, Option<&'p str>, Option<&'p str>), String> {
    // A manager names themself to pass the scope check; pay is asked of a rep or a
    // team, never of a manager's whole organisation.
    if params.get("manager").is_some_and(|v| !v.is_null()) {
        return Err(
            "manager: the comp query takes rep or team (a manager asks for their team)".into(),
        );
    }
    let month = match text(params, "period")? {
        Some(p) => Month::parse(p).map_err(|e| format!("period: {p:?}: {e}"))?,
        None => state
            .current_month()
            .ok_or_else(|| "period: no clock tick yet; name a month (YYYY-MM)".to_owned())?,
    };
    Ok((month, text(params, "rep")?, text(params, "team")?))
}

fn alerts_query(params: &Map<String, Value>, ctx: &QueryContext) -> Result<Value, String> {
    let status = match text(params, "status")? {
        None => StatusFilter::Open,
        Some(s) => StatusFilter::parse(s)
            .ok_or_else(|| format!("status: {s:?} is not open, acknowledged, resolved or all"))?,
    };
    let query = AlertQuery {
        status,
        team: text(params, "team")?.map(str::to_owned),
        manager: text(params, "manager")?.map(str::to_owned),
        rep: text(params, "rep")?.map(str::to_owned),
    };
    let state = ctx
        .state
        .read()
        .map_err(|_| "the state is unavailable".to_owned())?;
    let org = state.config();
    Ok(alerts_json(
        &alert_views(&state, &query),
        org.currency,
        org.timezone,
    ))
}

fn digest_query(params: &Map<String, Value>, ctx: &QueryContext) -> Result<Value, String> {
    with_digest(params, ctx, crate::digest::digest_json)
}

/// The digest a query's parameters ask for (`team` or `manager`, `week`: default the
/// week alerts raised now are due in), handed to `render` with the org's currency and
/// zone: the JSON of the API, the text of `pacer digest` for the web page.
pub fn with_digest<T>(
    params: &Map<String, Value>,
    ctx: &QueryContext,
    render: impl FnOnce(&pacer_projections::digest::Digest<'_>, Currency, Tz) -> T,
) -> Result<T, String> {
    let audience = match (text(params, "team")?, text(params, "manager")?) {
        (Some(t), _) => Audience::Team(t.to_owned()),
        (None, Some(m)) => Audience::Manager(m.to_owned()),
        (None, None) => return Err("pass \"team\" or \"manager\"".into()),
    };
    let state = ctx
        .state
        .read()
        .map_err(|_| "the state is unavailable".to_owned())?;
    let now = state
        .now()
        .ok_or("the log has no clock_tick yet, so there is no week to digest")?;
    let org = state.config();
    let week = match text(params, "week")? {
        Some(w) => IsoWeek::parse(w).map_err(|e| format!("week: {e}"))?,
        None => alert_week(now, org.timezone),
    };
    let d = digest(&state, &audience, week).ok_or("the log has no clock_tick yet")?;
    Ok(render(&d, org.currency, org.timezone))
}

fn log_query(params: &Map<String, Value>, ctx: &QueryContext) -> Result<Value, String> {
    let from = number(params, "from_seq")?.unwrap_or(1).max(1);
    let limit = number(params, "limit")?.unwrap_or(100).min(LOG_PAGE_MAX);
    let mut events = Vec::new();
    for rec in ctx.log.iter_from(from).take(limit as usize) {
        let rec = rec.map_err(|e| e.to_string())?;
        events.push(Value::Object(encode_recorded(&rec)));
    }
    let next = events
        .last()
        .and_then(|e| e.get("seq"))
        .and_then(Value::as_u64)
        .map(|s| s + 1);
    Ok(json!({ "events": events, "next_from_seq": next }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::log::Log;
    use crate::replay::{rebuild, Cut};
    use pacer_projections::time::Timestamp;

    /// A demo organisation of `reps` reps (seed `seed`), folded, with its log.
    fn demo(dir: &std::path::Path, reps: usize, seed: u64) -> (QueryContext, Log) {
        let (log, org) = crate::demo::demo_log(dir, reps, seed);
        let model = rebuild(&log, &org, Cut::All, |_| {}).unwrap();
        let ctx = QueryContext::new(Arc::new(RwLock::new(model)), log.reader());
        (ctx, log)
    }

    fn params(pairs: &[(&str, &str)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
            .collect()
    }

    /// What the queries answered before answers were written straight to bytes and
    /// kept: the bytes of `answer_params`'s JSON.
    fn as_before(name: &str, p: &Map<String, Value>, ctx: &QueryContext) -> (Bytes, bool) {
        let v = answer_params(name, p, ctx);
        let error = v.get("error").is_some();
        (Bytes::from(serde_json::to_vec(&v).unwrap()), error)
    }

    #[test]
    fn every_answer_is_byte_for_byte_what_it_was_and_kept_until_the_next_fold() {
        for seed in [3_u64, 17, 4242] {
            let dir = tempfile::tempdir().unwrap();
            let (ctx, _log) = demo(dir.path(), 14, seed);
            let (team, rep) = {
                let state = ctx.state.read().unwrap();
                let team = state.teams_now().into_iter().next().unwrap();
                let rep = state.reps().keys().nth(3).unwrap().clone();
                (team, rep)
            };
            let questions: Vec<(&str, Map<String, Value>)> = vec![
                ("report", params(&[])),
                ("report", params(&[("month", "2026-11")])),
                ("report", params(&[("month", "2026-10"), ("team", &team)])),
                ("report", params(&[("team", &team), ("bucket", "total")])),
                (
                    "report",
                    params(&[("rep", &rep), ("bucket", "new_customer")]),
                ),
                ("report", params(&[("rep", &rep), ("month", "2026-12")])),
                (
                    "report",
                    params(&[("view", "productivity"), ("team", &team)]),
                ),
                ("report", params(&[("month", "2026-13")])),
                ("report", params(&[("bucket", "no-such-bucket")])),
                ("report", params(&[("team", "nobody")])),
                ("alerts", params(&[])),
                ("alerts", params(&[("status", "all"), ("team", &team)])),
                ("digest", params(&[("team", &team)])),
                ("digest", params(&[])),
                ("comp", params(&[])),
                ("comp", params(&[("team", &team)])),
                ("comp", params(&[("rep", &rep), ("period", "2026-09")])),
                ("comp", params(&[("manager", "someone")])),
            ];
            for (name, p) in &questions {
                let want = as_before(name, p, &ctx);
                let made = answer_bytes(name, p, &ctx);
                assert_eq!(made, want, "seed {seed}: {name} {p:?}");
                // Asked again: the kept answer, the same bytes.
                assert_eq!(
                    answer_bytes(name, p, &ctx),
                    want,
                    "seed {seed}: {name} {p:?}"
                );
            }
            // The demo's comp plan pays every rep: the org's comp report is theirs.
            let comp: Value =
                serde_json::from_slice(&answer_bytes("comp", &params(&[]), &ctx).0).unwrap();
            assert_eq!(
                comp["statements"].as_array().map(Vec::len),
                Some(14),
                "seed {seed}"
            );
            let (hits, misses) = ctx.cache.counts();
            assert_eq!((hits, misses), (19, 18), "seed {seed}");
            // The same parameters in another order are the same question.
            let swapped: Map<String, Value> = params(&[("bucket", "total"), ("team", &team)]);
            answer_bytes("report", &swapped, &ctx);
            assert_eq!(ctx.cache.counts(), (20, 18), "seed {seed}");
            // A parameter no query reads (a browser's cache-buster) is not another
            // question either.
            let busted = params(&[("team", &team), ("bucket", "total"), ("_", "1765000000")]);
            assert_eq!(
                answer_bytes("report", &busted, &ctx),
                as_before("report", &busted, &ctx)
            );
            assert_eq!(ctx.cache.counts(), (21, 18), "seed {seed}");
        }
    }

    /// The org's comp report made in two halves on two threads is the one made in
    /// one go, byte for byte, whatever the split.
    #[test]
    fn a_comp_report_made_in_halves_is_the_one_made_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (ctx, _log) = demo(dir.path(), 9, 11);
        let state = ctx.state.read().unwrap();
        let month = state.current_month().unwrap();
        let whole = serde_json::to_vec(&crate::comp_file::statements_json(
            &state, month, None, None,
        ))
        .unwrap();
        let v: Value = serde_json::from_slice(&whole).unwrap();
        assert_eq!(v["statements"].as_array().map(Vec::len), Some(9));
        for split_min in [0, 1, 2, 9, 10] {
            let made =
                crate::comp_file::statements_bytes_split(&state, month, None, None, split_min);
            assert_eq!(
                String::from_utf8(made).unwrap(),
                String::from_utf8(whole.clone()).unwrap(),
                "split from {split_min} reps"
            );
        }
        // A team's, and one rep's (a half of one rep is empty).
        let team = state.teams_now().into_iter().next().unwrap();
        let rep = state.reps().keys().next().unwrap().clone();
        for (r, t) in [(None, Some(team.as_str())), (Some(rep.as_str()), None)] {
            let whole = serde_json::to_vec(&crate::comp_file::statements_json(&state, month, r, t))
                .unwrap();
            assert_eq!(
                crate::comp_file::statements_bytes_split(&state, month, r, t, 1),
                whole
            );
        }
    }

    #[test]
    fn a_fold_drops_the_kept_answers() {
        let dir = tempfile::tempdir().unwrap();
        let (ctx, mut log) = demo(dir.path(), 6, 5);
        let p = params(&[("month", "2026-11"), ("bucket", "total")]);
        let before = answer_bytes("report", &p, &ctx);
        // One more deal won by the first rep, folded as the engine folds it.
        let rep = ctx
            .state
            .read()
            .unwrap()
            .reps()
            .keys()
            .next()
            .unwrap()
            .clone();
        let now = Timestamp::parse_rfc3339("2026-11-18T16:00:00Z").unwrap();
        let won = crate::wire::decode_value(
            &serde_json::json!({
                "event_id": "query-test-won", "source": "test", "occurred_at": "2026-11-18T16:00:00Z",
                "type": "deal_won", "deal": "query-test-deal", "rep": rep, "account": "acme",
                "customer_kind": "new", "amount": "1000.00",
                "currency": Config::default().org.currency.code(), "closed_on": "2026-11-18",
            }),
            &crate::wire::Limits::default(),
        )
        .unwrap();
        let (_, recorded) = log.append_recorded(vec![won], now).unwrap();
        assert_eq!(recorded.len(), 1);
        ctx.state.write().unwrap().apply(&recorded[0], None);
        let after = answer_bytes("report", &p, &ctx);
        assert_ne!(after, before, "the kept answer outlived the fold");
        assert_eq!(after, as_before("report", &p, &ctx));
    }
}
