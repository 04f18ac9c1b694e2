//! The JSON API: `/healthz`, `/metrics`, the queries (`/v1/report`, `/v1/alerts`,
//! `/v1/digest/<team>`), the live alert stream (`/v1/alerts/stream`), acknowledging
//! an alert, log-in, log-out and `/v1/me`, and the operator's dead-letter routes
//! (`/v1/dlq...`). Each handler checks its caller first (`scope`) and answers JSON;
//! the parent module's `router` mounts them.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{json, Map, Value};

use super::gateway::{dlq_error, status_of, Gateway, Redriven, ReloadError};
use super::scope::{ack_alert, caller, denied, in_scope, operator};
use crate::access::{Denied, Scope};
use crate::dlq::DeadLetter;
use crate::nats::query::answer_bytes;
use crate::nats::Subjects;
use crate::webhook::{auth, WebhookError};

pub(super) async fn health(State(g): State<Arc<Gateway>>) -> Response {
    match g.metrics.health() {
        Ok(()) => (
            StatusCode::OK,
            format!("ready\n{}", g.metrics.health_note()),
        )
            .into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

/// `/metrics` on the router takes an operator's token (`admin` or `service`); the
/// separate `--metrics-addr` server is for a loopback address.
pub(super) async fn metrics(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = operator(&g, &method, &headers) {
        return *r;
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        g.metrics.render(),
    )
        .into_response()
}

/// A query's answer over HTTP, for a caller within scope: the CLI's JSON, or 400
/// with `{"error"}`.
fn query(
    g: &Gateway,
    method: &Method,
    headers: &HeaderMap,
    name: &str,
    params: Map<String, Value>,
) -> Response {
    let Some(ctx) = &g.queries else {
        unreachable!("query routes exist only with an engine's projections");
    };
    if let Err(r) = caller(g, method, headers).and_then(|c| in_scope(g, &c, &params)) {
        return *r;
    }
    // Reading the projections can wait for a flush: off the async workers.
    let (bytes, error) = tokio::task::block_in_place(|| answer_bytes(name, &params, ctx));
    let status = if error {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from(bytes),
    )
        .into_response()
}

fn params(q: BTreeMap<String, String>) -> Map<String, Value> {
    q.into_iter().map(|(k, v)| (k, Value::String(v))).collect()
}

/// `GET /v1/report?month=&rep=&team=&bucket=&view=`.
pub(super) async fn report(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    query(&g, &method, &headers, "report", params(q))
}

/// `GET /v1/alerts?status=&team=&manager=&rep=`; `?system=true`: the operator's.
pub(super) async fn alerts(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if q.get("system").is_some_and(|v| v == "true") {
        if let Err(r) = operator(&g, &method, &headers) {
            return *r;
        }
        return match g.system_alerts().await {
            Ok(alerts) => axum::Json(json!({"alerts": alerts})).into_response(),
            Err(e) => dlq_failure(e),
        };
    }
    query(&g, &method, &headers, "alerts", params(q))
}

/// `GET /v1/comp?period=&rep=&team=`: comp statements (a rep: their own; a manager:
/// their teams'; finance and admin: everyone's).
pub(super) async fn comp(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    query(&g, &method, &headers, "comp", params(q))
}

/// `GET /v1/digest/<team>?week=`.
pub(super) async fn digest(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
    Path(team): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let mut p = params(q);
    p.insert("team".into(), Value::String(team));
    query(&g, &method, &headers, "digest", p)
}

/// `GET /v1/alerts/stream`: server-sent events, one `alert` event per alert change
/// within the caller's scope (`id` its message id, `data` its JSON); `lagged` says
/// how many a slow reader missed (read them with `GET /v1/alerts`).
pub(super) async fn alert_stream(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let c = match caller(&g, &method, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    if !c.user.role.reads() {
        return *denied(Denied::Forbidden("a crm user may only send events".into()));
    }
    let (Some(ctx), Some(live)) = (&g.queries, &g.live) else {
        unreachable!("query routes exist only with an engine's projections");
    };
    let scope = Scope::of(&c.user, &ctx.state.read().expect("not poisoned"));
    let subjects = live.subjects.clone();
    let rx = live.alerts.subscribe();
    let mut stop = g.stop.clone();
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let stream = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |item| {
        let out = match item {
            Ok(msg) => visible(&scope, &subjects, &msg).then(|| {
                SseEvent::default()
                    .event("alert")
                    .id(msg.id)
                    .data(String::from_utf8_lossy(&msg.json))
            }),
            Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                Some(SseEvent::default().event("lagged").data(n.to_string()))
            }
        };
        futures::future::ready(out.map(Ok::<_, Infallible>))
    });
    // Ends with the process, so a graceful stop does not wait for the readers.
    Sse::new(stream.take_until(stopped))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Whether an alert change is within a scope, by its subject
/// (`<prefix>.alerts.<team>.<rep>`).
fn visible(scope: &Scope, subjects: &Subjects, msg: &crate::local::AlertMessage) -> bool {
    let alerts = format!("{}.alerts.", subjects.prefix);
    let Some(rest) = msg.subject.strip_prefix(&alerts) else {
        return false;
    };
    match scope {
        Scope::All => true,
        Scope::Nothing => false,
        Scope::Teams(teams) => teams
            .iter()
            .any(|t| rest.starts_with(&format!("{}.", crate::nats::token(t)))),
        Scope::Rep(rep) => rest.ends_with(&format!(".{}", crate::nats::token(rep))),
    }
}

/// `POST /v1/alerts/<id>/ack` with `{"note": "..."}`: the caller acknowledges an
/// alert in their scope; the `alert_acknowledged` records them as `by`.
pub(super) async fn acknowledge(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Option<axum::Json<Value>>,
) -> Response {
    let c = match caller(&g, &method, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let note = body
        .as_ref()
        .and_then(|b| b.get("note"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    match ack_alert(&g, &c, &id, note).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(r) => *r,
    }
}

/// `POST /v1/login` with `{"user", "password"}`: a session cookie (HttpOnly, Secure,
/// SameSite=Strict) and the CSRF token that state-changing requests send back as
/// `X-CSRF-Token`. Failures wait longer each time, per user and per address.
pub(super) async fn log_in(
    State(g): State<Arc<Gateway>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    body: Option<axum::Json<Value>>,
) -> Response {
    let field = |k: &str| {
        body.as_ref()
            .and_then(|b| b.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let (name, password) = (field("user"), field("password"));
    let from = peer.ip().to_string();
    match g.access.log_in(&name, &password, &from, (g.now_ms)()) {
        Ok((user, session, csrf)) => {
            let cookie = format!(
                "pacer_session={session}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={}",
                crate::access::SESSION_MS / 1000
            );
            let mut r = axum::Json(json!({
                "user": user.name, "role": user.role.as_str(), "csrf_token": csrf,
            }))
            .into_response();
            if let Ok(v) = header::HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err((delay, why)) => {
            tokio::time::sleep(delay).await;
            *denied(Denied::Unauthenticated(why))
        }
    }
}

/// `POST /v1/logout`: ends the session.
pub(super) async fn log_out(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = caller(&g, &method, &headers) {
        return *r;
    }
    g.access.log_out(auth::header(&headers, "cookie"));
    let mut r = axum::Json(json!({"logged_out": true})).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        header::HeaderValue::from_static(
            "pacer_session=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0",
        ),
    );
    r
}

/// `GET /v1/me`: who the caller is and what they may read.
pub(super) async fn me(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let c = match caller(&g, &method, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let scope = match &g.queries {
        Some(ctx) => match Scope::of(&c.user, &ctx.state.read().expect("not poisoned")) {
            Scope::All => json!("all"),
            Scope::Teams(t) => json!({"teams": t}),
            Scope::Rep(r) => json!({"rep": r}),
            Scope::Nothing => json!("none"),
        },
        None => Value::Null,
    };
    axum::Json(json!({"user": c.user.name, "role": c.user.role.as_str(), "scope": scope}))
        .into_response()
}

fn dlq_failure(e: WebhookError) -> Response {
    (status_of(&e), axum::Json(json!({"error": e.to_string()}))).into_response()
}

/// `GET /v1/dlq?crm=&since=&waiting=`: the dead letters, oldest first; with
/// `waiting=true`, the deals waiting for their owner's mapping instead.
pub(super) async fn dlq_list(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(r) = operator(&g, &method, &headers) {
        return *r;
    }
    let since_ms = match q.get("since").map(|t| crate::dlq::parse_since(t)) {
        Some(Err(e)) => {
            return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": e}))).into_response()
        }
        Some(Ok(ms)) => Some(ms),
        None => None,
    };
    let waiting = q
        .get("waiting")
        .is_some_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
    let listed = match waiting {
        true => g.waiting_letters().await,
        false => g.dlq.list().await.map_err(dlq_error),
    };
    match listed {
        Ok(all) => {
            let crm = q.get("crm").map(String::as_str);
            let letters = crate::dlq::select(all, crm, since_ms);
            let out: Vec<Value> = letters.iter().map(DeadLetter::to_json).collect();
            axum::Json(json!({"count": out.len(), "letters": out})).into_response()
        }
        Err(e) => dlq_failure(e),
    }
}

/// `GET /v1/dlq/<id>`.
pub(super) async fn dlq_show(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = operator(&g, &method, &headers) {
        return *r;
    }
    match g.dlq.get(&id).await {
        Ok(Some(l)) => axum::Json(l.to_json()).into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": format!("no dead letter {id}")})),
        )
            .into_response(),
        Err(e) => dlq_failure(dlq_error(e)),
    }
}

/// The letters a retry or drop names: `{"ids": [...]}` or `{"all": true, "crm": C}`.
async fn chosen(g: &Gateway, body: &Value) -> Result<Vec<DeadLetter>, Box<Response>> {
    let all = g
        .dlq
        .list()
        .await
        .map_err(|e| Box::new(dlq_failure(dlq_error(e))))?;
    let bad = |why: String| {
        Box::new((StatusCode::BAD_REQUEST, axum::Json(json!({"error": why}))).into_response())
    };
    if body.get("all").and_then(Value::as_bool) == Some(true) {
        let crm = body.get("crm").and_then(Value::as_str);
        return Ok(crate::dlq::select(all, crm, None));
    }
    let Some(ids) = body.get("ids").and_then(Value::as_array) else {
        return Err(bad(
            "ids: missing; send {\"ids\": [...]} or {\"all\": true}".into(),
        ));
    };
    let mut out = Vec::new();
    for id in ids {
        let Some(id) = id.as_str() else {
            return Err(bad(format!("ids: {id} is not a dead letter id")));
        };
        match all.iter().find(|l| l.id == id) {
            Some(l) => out.push(l.clone()),
            None => {
                return Err(Box::new(
                    (
                        StatusCode::NOT_FOUND,
                        axum::Json(json!({"error": format!("no dead letter {id}")})),
                    )
                        .into_response(),
                ))
            }
        }
    }
    Ok(out)
}

/// `POST /v1/dlq/retry` with `{"ids": [...]}` or `{"all": true, "crm": C}`.
pub(super) async fn dlq_retry(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let c = match operator(&g, &method, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let letters = match chosen(&g, &body).await {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let Ok(_permit) = g.permits.acquire().await else {
        unreachable!("the semaphore is never closed");
    };
    match g.redrive(letters, &c.user.name).await {
        Ok(r) => axum::Json(redriven_json(&r)).into_response(),
        Err(e) => dlq_failure(e),
    }
}

/// `POST /v1/config/reload` (an admin or service user): the configuration file read
/// again, its `[webhooks]` put in force, and what waited for an owner it now maps
/// told. `{path, succeeded, failed, events}`; 422 when the file does not load
/// (nothing changed); 503 when the new `[webhooks]` is in force but what waited
/// could not be retried now.
pub(super) async fn config_reload(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let c = match operator(&g, &method, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Ok(_permit) = g.permits.acquire().await else {
        unreachable!("the semaphore is never closed");
    };
    match g.reload_config_file(&c.user.name).await {
        Ok(r) => {
            let mut body = redriven_json(&r);
            body["path"] = json!(g.config_path.as_ref().map(|p| p.display().to_string()));
            axum::Json(body).into_response()
        }
        Err(e) => {
            let status = match &e {
                ReloadError::NoFile | ReloadError::NotLoaded { .. } => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                ReloadError::NotRetried(inner) => status_of(inner),
            };
            (status, axum::Json(json!({"error": e.to_string()}))).into_response()
        }
    }
}

/// A retry's outcome as JSON: `{succeeded, failed: [{id, error}], events}`.
pub fn redriven_json(r: &Redriven) -> Value {
    let failed: Vec<Value> = r
        .failed
        .iter()
        .map(|(id, error)| json!({"id": id, "error": error}))
        .collect();
    json!({"succeeded": r.succeeded, "failed": failed, "events": r.events})
}

/// `POST /v1/dlq/drop` with `{"ids": [...], "reason": "..."}`.
pub(super) async fn dlq_drop(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let c = match operator(&g, &method, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let reason = body
        .get("reason")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("");
    if reason.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "reason: missing; say why the items are dropped"})),
        )
            .into_response();
    }
    let letters = match chosen(&g, &body).await {
        Ok(l) => l,
        Err(r) => return *r,
    };
    match g.drop_letters(letters, reason, &c.user.name).await {
        Ok(ids) => axum::Json(json!({"dropped": ids})).into_response(),
        Err(e) => dlq_failure(e),
    }
}
