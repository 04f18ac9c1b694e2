//! `/v1/subscriptions` (each user their own; an admin anyone's) and `/v1/deliveries`
//! (the operator's): the HTTP side of [`crate::deliver`].
//!
//! | route | who | what |
//! | --- | --- | --- |
//! | `GET /v1/subscriptions` | any reader | their subscriptions (an admin: all, or `?user=`) |
//! | `POST /v1/subscriptions` | any reader | subscribes themself (an admin: `user`), teams within scope |
//! | `DELETE /v1/subscriptions/{id}` | its user, an admin | removes it |
//! | `POST /v1/subscriptions/{id}/enable` | its user, an admin | starts it again |
//! | `GET /v1/deliveries?state=` | admin, service | the deliveries |
//! | `POST /v1/deliveries/{id}/retry`, `POST /v1/deliveries/retry` | admin, service | failed ones due again |

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::gateway::Gateway;
use super::scope::{caller, denied, operator};
use crate::access::{audit, Caller, Denied, Role, Scope};
use crate::deliver::store::DeliveryState;
use crate::deliver::subscription::{Channel, Subscription, Subscriptions, Wish};
use crate::deliver::{DeliverError, Deliverer};

fn bad(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": message})),
    )
        .into_response()
}

fn failure(e: impl std::fmt::Display) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(json!({"error": e.to_string()})),
    )
        .into_response()
}

fn deliverer(g: &Gateway) -> Result<&Arc<Deliverer>, Box<Response>> {
    g.deliverer.as_ref().ok_or_else(|| {
        Box::new(
            (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"error": "no engine runs in this process: subscriptions are kept by pacer serve"})),
            )
                .into_response(),
        )
    })
}

fn reader(g: &Gateway, method: &Method, headers: &HeaderMap) -> Result<Caller, Box<Response>> {
    let c = caller(g, method, headers)?;
    if !c.user.role.reads() {
        return Err(denied(Denied::Forbidden(format!(
            "a {} user reads no alerts",
            c.user.role.as_str()
        ))));
    }
    Ok(c)
}

/// Whether the caller may change this subscription: their own, or any for an admin.
fn owns(c: &Caller, s: &Subscription) -> bool {
    c.user.role == Role::Admin || s.user == c.user.name
}

/// `GET /v1/subscriptions`.
pub(super) async fn list(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let (c, d) = match reader(&g, &method, &headers).and_then(|c| Ok((c, deliverer(&g)?))) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let subs = match d.subscriptions() {
        Ok(s) => s,
        Err(e) => return failure(e),
    };
    let user = match (c.user.role, q.get("user")) {
        (Role::Admin, u) => u.cloned(),
        _ => Some(c.user.name.clone()),
    };
    let list: Vec<Value> = subs
        .subscriptions
        .values()
        .filter(|s| user.as_ref().is_none_or(|u| &s.user == u))
        .map(Subscription::to_json)
        .collect();
    axum::Json(json!({"subscriptions": list})).into_response()
}

/// `POST /v1/subscriptions` with `{"channel": {"kind": "email", "to": …} | {"kind":
/// "slack" | "teams" | "webhook", "url": …, "secret"?}, "teams"?, "rules"?,
/// "severity_min"?, "focus_only"?, "cadence"?, "quiet"?, "user"? (an admin)}`.
pub(super) async fn add(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
    body: Option<axum::Json<Value>>,
) -> Response {
    let (c, d) = match reader(&g, &method, &headers).and_then(|c| Ok((c, deliverer(&g)?))) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let Some(axum::Json(body)) = body else {
        return bad("body: a JSON object with channel is needed".into());
    };
    let wish = match wish_of(&body, &c) {
        Ok(w) => w,
        Err(m) => return bad(m),
    };
    match add_for(&g, d, &c, wish).await {
        Ok(sub) => {
            let mut v = sub.to_json();
            if let Channel::Webhook { secret, .. } = &sub.channel {
                // Shown this once: the receiver verifies the signatures with it.
                v["channel"]["secret"] = Value::String(secret.clone());
            }
            (StatusCode::CREATED, axum::Json(v)).into_response()
        }
        Err((code, m)) => (code, axum::Json(json!({"error": m}))).into_response(),
    }
}

/// Adds a subscription the caller asks for: for themself (an admin: anyone), to a
/// user who reads alerts, and to teams within that user's scope. The error: the
/// status and what to say.
pub(crate) async fn add_for(
    g: &Gateway,
    d: &Deliverer,
    c: &Caller,
    mut wish: Wish,
) -> Result<Subscription, (StatusCode, String)> {
    wish.allow_http_loopback = g.config.deliver.allow_http_loopback;
    if wish.user != c.user.name && c.user.role != Role::Admin {
        return Err((
            StatusCode::BAD_REQUEST,
            format!(
                "user: {:?}: only an admin subscribes someone else",
                wish.user
            ),
        ));
    }
    let users = g.access.users().map_err(|_| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the users file cannot be read".to_owned(),
        )
    })?;
    let Some(user) = users.users.get(&wish.user) else {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("user: no user {:?}", wish.user),
        ));
    };
    if !user.role.reads() {
        return Err((
            StatusCode::BAD_REQUEST,
            format!(
                "user: {:?} is a {} user, who reads no alerts",
                user.name,
                user.role.as_str()
            ),
        ));
    }
    let scope = d.scope_of(user);
    if let Some(t) = wish.teams.iter().find(|t| !scope.team(t)) {
        return Err((
            StatusCode::FORBIDDEN,
            format!("teams: {t:?} is not in {}'s scope", user.name),
        ));
    }
    if matches!(scope, Scope::Rep(_)) && wish.cadence.as_deref() == Some("weekly") {
        return Err((
            StatusCode::BAD_REQUEST,
            "cadence: the weekly digest is a team's; a rep subscribes to their own alerts (immediate or daily)".into(),
        ));
    }
    let dir = g.access.data_dir().to_owned();
    let actor = c.user.name.clone();
    tokio::task::spawn_blocking(move || {
        let sub = Subscriptions::update(&dir, |subs| subs.add(wish))?;
        audit(&dir, &actor, "subscription.add", &sub.id, sub.to_json())?;
        Ok::<_, crate::access::AccessError>(sub)
    })
    .await
    .expect("the subscription task does not panic")
    .map_err(|e| match e {
        crate::access::AccessError::Invalid(m) => (StatusCode::BAD_REQUEST, m),
        other => (StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    })
}

fn wish_of(body: &Value, c: &Caller) -> Result<Wish, String> {
    let text = |k: &str| -> Result<Option<String>, String> {
        match body.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(format!("{k}: {v} is not a string")),
        }
    };
    let list = |k: &str| -> Result<Vec<String>, String> {
        match body.get(k) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("{k}: {v} is not a string"))
                })
                .collect(),
            Some(v) => Err(format!("{k}: {v} is not a list of strings")),
        }
    };
    let user = text("user")?.unwrap_or_else(|| c.user.name.clone());
    let ch = body.get("channel").ok_or("channel: missing")?;
    let field = |k: &str| -> Result<String, String> {
        ch.get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("channel.{k}: missing"))
    };
    let channel = match ch.get("kind").and_then(Value::as_str) {
        Some("email") => Channel::Email { to: field("to")? },
        Some("slack") => Channel::Slack { url: field("url")? },
        Some("teams") => Channel::Teams { url: field("url")? },
        Some("webhook") => Channel::Webhook {
            url: field("url")?,
            secret: ch
                .get("secret")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        },
        other => {
            return Err(format!(
                "channel.kind: {} is not email, slack, teams or webhook",
                other.map_or("missing".to_owned(), |k| format!("{k:?}"))
            ))
        }
    };
    Ok(Wish {
        user,
        channel: Some(channel),
        teams: list("teams")?,
        rules: list("rules")?,
        severity_min: text("severity_min")?,
        focus_only: match body.get("focus_only") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(v) => return Err(format!("focus_only: {v} is not true or false")),
        },
        cadence: text("cadence")?,
        quiet: text("quiet")?,
        allow_http_loopback: false,
    })
}

/// Applies `change` to a subscription the caller owns.
async fn change(
    g: Arc<Gateway>,
    method: Method,
    headers: HeaderMap,
    id: String,
    action: &'static str,
    change: fn(&mut Subscriptions, &str) -> Result<(), crate::access::AccessError>,
) -> Response {
    let (c, d) = match reader(&g, &method, &headers).and_then(|c| Ok((c, deliverer(&g)?))) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    match change_for(&g, d, &c, id, action, change).await {
        Ok(()) => axum::Json(json!({"ok": true})).into_response(),
        Err((code, m)) => (code, axum::Json(json!({"error": m}))).into_response(),
    }
}

/// Applies `change` to subscription `id` when the caller owns it (an admin: any);
/// another user's is not said to exist.
pub(crate) async fn change_for(
    g: &Gateway,
    d: &Deliverer,
    c: &Caller,
    id: String,
    action: &'static str,
    change: fn(&mut Subscriptions, &str) -> Result<(), crate::access::AccessError>,
) -> Result<(), (StatusCode, String)> {
    let found = d
        .subscriptions()
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .subscriptions
        .get(&id)
        .cloned();
    let Some(sub) = found.filter(|s| owns(c, s)) else {
        return Err((
            StatusCode::NOT_FOUND,
            format!("id: no subscription {id:?} of yours"),
        ));
    };
    let dir = g.access.data_dir().to_owned();
    let actor = c.user.name.clone();
    tokio::task::spawn_blocking(move || {
        Subscriptions::update(&dir, |subs| change(subs, &id))?;
        audit(&dir, &actor, action, &id, sub.to_json())
    })
    .await
    .expect("the subscription task does not panic")
    .map_err(|e| match e {
        crate::access::AccessError::Invalid(m) => (StatusCode::BAD_REQUEST, m),
        other => (StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    })
}

/// `DELETE /v1/subscriptions/{id}`.
pub(super) async fn remove(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    change(g, method, headers, id, "subscription.remove", |s, id| {
        s.remove(id).map(|_| ())
    })
    .await
}

/// `POST /v1/subscriptions/{id}/enable`.
pub(super) async fn enable(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    change(g, method, headers, id, "subscription.enable", |s, id| {
        s.enable(id)
    })
    .await
}

/// `GET /v1/deliveries?state=due|sent|failed`.
pub(super) async fn deliveries(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let d = match operator(&g, &method, &headers).and_then(|_| deliverer(&g)) {
        Ok(d) => Arc::clone(d),
        Err(r) => return *r,
    };
    let state = match q.get("state").map(|s| DeliveryState::parse(s)) {
        Some(Err(e)) => return bad(e),
        Some(Ok(s)) => Some(s),
        None => None,
    };
    let listed = tokio::task::spawn_blocking(move || d.store().deliveries())
        .await
        .expect("the listing task does not panic");
    match listed {
        Ok(all) => {
            let list: Vec<Value> = all
                .iter()
                .filter(|x| state.is_none_or(|s| x.state == s))
                .map(|x| x.to_json())
                .collect();
            axum::Json(json!({"count": list.len(), "deliveries": list})).into_response()
        }
        Err(e) => failure(e),
    }
}

/// `POST /v1/deliveries/{id}/retry`.
pub(super) async fn retry_one(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    retry(g, method, headers, Some(id)).await
}

/// `POST /v1/deliveries/retry`: every failed delivery.
pub(super) async fn retry_failed(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    retry(g, method, headers, None).await
}

async fn retry(
    g: Arc<Gateway>,
    method: Method,
    headers: HeaderMap,
    id: Option<String>,
) -> Response {
    let d = match operator(&g, &method, &headers).and_then(|_| deliverer(&g)) {
        Ok(d) => Arc::clone(d),
        Err(r) => return *r,
    };
    let now_ms = (g.now_ms)();
    let done = tokio::task::spawn_blocking(move || -> Result<Option<Vec<String>>, DeliverError> {
        if let Some(id) = &id {
            if d.store().get(id)?.is_none() {
                return Ok(None);
            }
        }
        crate::deliver::retry(d.store(), id.as_deref(), now_ms).map(Some)
    })
    .await
    .expect("the retry task does not panic");
    match done {
        Ok(Some(retried)) => axum::Json(json!({"retried": retried})).into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "id: no such delivery"})),
        )
            .into_response(),
        Err(e) => failure(e),
    }
}
