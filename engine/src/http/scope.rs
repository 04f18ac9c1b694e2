//! Who calls and what they may see or do, for the JSON API and the web pages alike:
//! the caller from a bearer token or the session cookie (with the session's CSRF
//! check), the operator's routes, whether a query stays within the caller's scope,
//! and the acknowledgement of an alert by its caller. A refusal is the response to
//! send: 401 (with `WWW-Authenticate`), 403 or 500, with `{"error"}`.

use std::time::Duration;

use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use pacer_projections::event::Event;
use serde_json::{json, Map, Value};

use super::gateway::{Gateway, Sink};
use crate::access::{audit, Caller, Denied, Role, Scope};
use crate::webhook::auth;

/// How long an acknowledgement published to JetStream waits for the engine to fold
/// it before answering (it is durable already; only what the next page shows waits).
const ACK_FOLD_WAIT: Duration = Duration::from_secs(5);

/// A refusal as its response: 401 (with `WWW-Authenticate`), 403, or 500.
pub(crate) fn denied(d: Denied) -> Box<Response> {
    let (status, why) = match d {
        Denied::Unauthenticated(why) => (StatusCode::UNAUTHORIZED, why.to_owned()),
        Denied::Forbidden(why) => (StatusCode::FORBIDDEN, why),
        Denied::Broken(why) => {
            eprintln!("pacer: {why}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the users file cannot be read".to_owned(),
            )
        }
    };
    let mut r = (status, axum::Json(json!({"error": why}))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"pacer\""),
        );
    }
    Box::new(r)
}

/// Who is asking: a bearer token or the session cookie. A request that changes
/// something and comes with the cookie must carry the session's `X-CSRF-Token`.
pub(crate) fn caller(
    g: &Gateway,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Caller, Box<Response>> {
    let c = g
        .access
        .caller(
            auth::header(headers, "authorization"),
            auth::header(headers, "cookie"),
            (g.now_ms)(),
        )
        .map_err(denied)?;
    if let Some(csrf) = &c.csrf {
        let safe = matches!(*method, Method::GET | Method::HEAD);
        let given = auth::header(headers, "x-csrf-token").unwrap_or("");
        if !safe && !auth::constant_time_eq(given.as_bytes(), csrf.as_bytes()) {
            return Err(denied(Denied::Forbidden(
                "the X-CSRF-Token header is missing or not this session's".into(),
            )));
        }
    }
    Ok(c)
}

/// The operator's routes (`/v1/dlq...`, `/metrics`, system alerts): an `admin` or
/// `service` user.
pub(super) fn operator(
    g: &Gateway,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Caller, Box<Response>> {
    let c = caller(g, method, headers)?;
    if !c.user.role.operates() {
        return Err(denied(Denied::Forbidden(format!(
            "a {} user may not operate the service",
            c.user.role.as_str()
        ))));
    }
    Ok(c)
}

/// Whether a query's parameters stay within the caller's scope: a scoped user must
/// name a team, a rep or (a manager) themself, each within scope; an org-wide
/// question needs an unscoped role. The answer never says whether a team exists.
pub(crate) fn in_scope(
    g: &Gateway,
    c: &Caller,
    params: &Map<String, Value>,
) -> Result<(), Box<Response>> {
    if !c.user.role.reads() {
        return Err(denied(Denied::Forbidden(format!(
            "a {} user may only send events",
            c.user.role.as_str()
        ))));
    }
    let Some(ctx) = &g.queries else {
        unreachable!("query routes exist only with an engine's projections");
    };
    let state = ctx.state.read().expect("not poisoned");
    let scope = Scope::of(&c.user, &state);
    if scope == Scope::All {
        return Ok(());
    }
    let text = |k: &str| params.get(k).and_then(Value::as_str);
    let checks = [
        text("team").map(|t| scope.team(t)),
        text("rep").map(|r| scope.rep(r, &state)),
        text("manager").map(|m| c.user.role == Role::Manager && m == c.user.name),
    ];
    let named = checks.iter().any(Option::is_some);
    if named && checks.iter().all(|c| *c != Some(false)) {
        Ok(())
    } else {
        Err(denied(Denied::Forbidden("not in your scope".into())))
    }
}

/// The caller acknowledges alert `id` (within their scope): an `alert_acknowledged`
/// by them, and a line in the audit trail. The answer's JSON, or the refusal.
pub(crate) async fn ack_alert(
    g: &Gateway,
    c: &Caller,
    id: &str,
    note: Option<String>,
) -> Result<Value, Box<Response>> {
    if matches!(c.user.role, Role::Crm | Role::Service) {
        return Err(denied(Denied::Forbidden(format!(
            "a {} user may not acknowledge alerts",
            c.user.role.as_str()
        ))));
    }
    let Some(ctx) = &g.queries else {
        unreachable!("query routes exist only with an engine's projections");
    };
    {
        let state = ctx.state.read().expect("not poisoned");
        let scope = Scope::of(&c.user, &state);
        let found = state.alert_book().get(id).map(|a| a.rep.clone());
        let within = found.as_deref().is_some_and(|rep| scope.rep(rep, &state));
        if !within && scope != Scope::All {
            // A scoped caller learns nothing of alerts outside their scope.
            return Err(denied(Denied::Forbidden("not in your scope".into())));
        }
        if found.is_none() {
            return Err(Box::new(
                (
                    StatusCode::NOT_FOUND,
                    axum::Json(json!({"error": format!("no alert {id}")})),
                )
                    .into_response(),
            ));
        }
        if let Some(ack) = state.acks().get(id) {
            return Ok(json!({"acknowledged": id, "by": ack.by, "already": true}));
        }
    }
    let at = chrono::DateTime::from_timestamp_millis((g.now_ms)()).unwrap_or_default();
    let event = Event {
        event_id: format!("pacer-ack-{id}"),
        source: "pacer-http".into(),
        occurred_at: pacer_projections::time::Timestamp::from_utc(at),
        body: pacer_projections::event::EventBody::AlertAcknowledged(
            pacer_projections::event::AlertAcknowledged {
                alert_id: id.to_owned(),
                by: c.user.name.clone(),
                note,
            },
        ),
    };
    let line = (
        format!("alert_acknowledged {id}"),
        Value::Object(crate::wire::encode(&event)),
    );
    match g.store(vec![event], &[line]).await {
        Ok(_) => {
            if matches!(g.sink, Sink::Nats { .. }) {
                // The engine folds what JetStream took a moment later: wait for it
                // (briefly), so the page the manager sees next shows their ack.
                let folded = || {
                    ctx.state
                        .read()
                        .expect("not poisoned")
                        .acks()
                        .contains_key(id)
                };
                let deadline = tokio::time::Instant::now() + ACK_FOLD_WAIT;
                while !folded() && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            if let Err(e) = audit(
                g.access.data_dir(),
                &c.user.name,
                "alert.ack",
                id,
                json!({}),
            ) {
                eprintln!("pacer: {e}");
            }
            Ok(json!({"acknowledged": id, "by": c.user.name}))
        }
        Err(e) => Err(Box::new(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"error": e.to_string()})),
            )
                .into_response(),
        )),
    }
}
