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
    for name in ["report", "alerts", "digest", "log"] {
        let mut endpoint = group.endpoint(name).await.map_err(|e| service_err(&e))?;
        let ctx = ctx.clone();
        tokio::spawn(async move {
            while let Some(request) = endpoint.next().await {
                let answer = answer(name, &request.message.payload, &ctx);
                let bytes =
                    Bytes::from(serde_json::to_vec(&answer).expect("JSON values serialise"));
                if let Err(e) = request.respond(Ok(bytes)).await {
                    eprintln!("pacer serve: answering a {name} query failed: {e}");
                }
            }
        });
    }
    for name in ["report", "alerts", "digest"] {
        let mut endpoint = group
            .endpoint_builder()
            .name(format!("team-{name}"))
            .add(format!("team.*.{name}"))
            .await
            .map_err(|e| service_err(&e))?;
        let ctx = ctx.clone();
        let prefix = format!("{}.team.", subjects.query_group());
        tokio::spawn(async move {
            while let Some(request) = endpoint.next().await {
                let subject = request.message.subject.as_str();
                let token = subject
                    .strip_prefix(&prefix)
                    .and_then(|rest| rest.split('.').next())
                    .unwrap_or("");
                let answer = answer_team(name, token, &request.message.payload, &ctx);
                let bytes =
                    Bytes::from(serde_json::to_vec(&answer).expect("JSON values serialise"));
                if let Err(e) = request.respond(Ok(bytes)).await {
                    eprintln!("pacer serve: answering a team {name} query failed: {e}");
                }
            }
        });
    }
    Ok(service)
}

/// The answer to one query: the CLI's JSON, or `{"error": ...}`.
pub fn answer(name: &str, body: &[u8], ctx: &QueryContext) -> Value {
    match params_of(body) {
        Ok(params) => answer_params(name, &params, ctx),
        Err(e) => e,
    }
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

/// The answer to a team's query: the team is the one whose subject token is `token`.
pub fn answer_team(name: &str, token: &str, body: &[u8], ctx: &QueryContext) -> Value {
    let team = match ctx.state.read() {
        Ok(state) => state
            .teams_now()
            .into_iter()
            .find(|t| super::token(t) == token),
        Err(_) => return error("the state is unavailable"),
    };
    let Some(team) = team else {
        return error(&format!("no team {token:?}"));
    };
    let mut params = match params_of(body) {
        Ok(p) => p,
        Err(e) => return e,
    };
    params.insert("team".into(), Value::String(team));
    answer_params(name, &params, ctx)
}

/// The answer to one query whose parameters are parsed already.
pub fn answer_params(name: &str, params: &Map<String, Value>, ctx: &QueryContext) -> Value {
    let result = match name {
        "report" => report_query(params, ctx),
        "alerts" => alerts_query(params, ctx),
        "digest" => digest_query(params, ctx),
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
