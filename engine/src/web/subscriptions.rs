//! `/subscriptions`: where a user's alerts go. Lists their subscriptions (an
//! admin: everyone's) with what became of the last messages, and lets them add one
//! (email, Slack, Teams, a signed webhook; teams within scope, rules, severity, focus
//! only, cadence, quiet hours), stop, start again or remove one. Plain forms with
//! the session's CSRF token, through the same checks as `/v1/subscriptions`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use pacer_projections::alerts::Rule;

use super::page::{form_caller, page, who, Q};
use crate::access::Role;
use crate::deliver::subscription::{Channel, Subscription, Subscriptions, Wish};
use crate::http::gateway::Gateway;
use crate::http::subscriptions::{add_for, change_for};

/// The form of a new subscription (field names as the API's).
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct AddForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    teams: String,
    #[serde(default)]
    rule: String,
    #[serde(default)]
    severity_min: String,
    #[serde(default)]
    focus_only: Option<String>,
    #[serde(default)]
    cadence: String,
    #[serde(default)]
    quiet: String,
}

#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct TokenForm {
    #[serde(default)]
    csrf_token: String,
}

fn back(message: &str, error: bool) -> Response {
    let key = if error { "error" } else { "done" };
    Redirect::to(&format!(
        "/subscriptions?{key}={}",
        super::page::encode(message)
    ))
    .into_response()
}

/// `GET /subscriptions?done=|error=`.
pub(super) async fn list(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
    Query(q): Q,
) -> Response {
    let c = match who(&g, &method, &headers, "/subscriptions") {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Some(d) = g.deliverer.clone() else {
        return (StatusCode::NOT_FOUND, "no engine runs in this process").into_response();
    };
    let subs = match d.subscriptions() {
        Ok(s) => s,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let admin = c.user.role == Role::Admin;
    let mine: Vec<&Subscription> = subs
        .subscriptions
        .values()
        .filter(|s| admin || s.user == c.user.name)
        .collect();
    // What became of each subscription's latest message.
    let store = d.store().clone();
    let latest: BTreeMap<String, (String, Option<String>)> =
        tokio::task::block_in_place(|| store.deliveries())
            .unwrap_or_default()
            .into_iter()
            .map(|x| {
                let when =
                    chrono::DateTime::from_timestamp_millis(x.sent_ms.unwrap_or(x.created_ms))
                        .map(|t| {
                            t.with_timezone(&g.config.org.timezone)
                                .format("%a %-d %b %H:%M")
                                .to_string()
                        })
                        .unwrap_or_default();
                (
                    x.subscription,
                    (format!("{} {when}", x.state.as_str()), x.last_error),
                )
            })
            .collect();
    let scope = d.scope_of(&c.user);
    let teams_hint = match &scope {
        crate::access::Scope::Teams(t) => t.iter().cloned().collect::<Vec<_>>().join(", "),
        crate::access::Scope::All => "every team".into(),
        crate::access::Scope::Rep(_) => "your own alerts".into(),
        crate::access::Scope::Nothing => String::new(),
    };
    let csrf = c.csrf.clone().unwrap_or_default();
    let body = html! {
        h1 { "Where your alerts go" }
        @if let Some(m) = q.get("done") { p.note role="status" { (m) } }
        @if let Some(m) = q.get("error") { p.error role="alert" { (m) } }
        @if mine.is_empty() {
            p { "No subscriptions yet: alerts reach you only in Pacer. Add one below." }
        } @else {
            div.scroll { table.figures #subs-table {
                thead { tr {
                    @if admin { th { "User" } }
                    th { "Where" } th { "When" } th { "What" } th { "Last message" } th { "" }
                } }
                tbody { @for s in &mine { tr {
                    @if admin { td { (s.user) } }
                    td { (s.channel.kind()) br; small { (s.channel.target()) } }
                    td { (s.cadence.as_str()) @if let Some(q) = &s.quiet { br; small { "quiet " (q) } } }
                    td {
                        (if s.teams.is_empty() { "all teams in scope".to_owned() } else { s.teams.join(", ") })
                        br; small {
                            (if s.rules.is_empty() { "every rule".to_owned() } else { s.rules.join(", ") })
                            " · " (s.severity_min) " and above"
                            @if s.focus_only { " · focus only" }
                        }
                    }
                    td {
                        @if let Some(dis) = &s.disabled {
                            strong.error { "Stopped: " } (dis.reason)
                        } @else if let Some((state, err)) = latest.get(&s.id) {
                            (state) @if let Some(e) = err { br; small.error { (e) } }
                        } @else { "none yet" }
                    }
                    td {
                        @if s.disabled.is_some() {
                            form method="post" action=(format!("/subscriptions/{}/enable", s.id)) {
                                input type="hidden" name="csrf_token" value=(csrf);
                                button type="submit" { "Start again" }
                            }
                        }
                        form method="post" action=(format!("/subscriptions/{}/remove", s.id)) {
                            input type="hidden" name="csrf_token" value=(csrf);
                            button type="submit" aria-label=(format!("Remove {}", s.id)) { "Remove" }
                        }
                    }
                } } }
            } }
        }
        h2 { "Add a subscription" }
        form.choose method="post" action="/subscriptions" {
            input type="hidden" name="csrf_token" value=(csrf);
            label { "Send to"
                select name="kind" {
                    option value="email" { "Email" }
                    option value="slack" { "Slack (incoming webhook URL)" }
                    option value="teams" { "Microsoft Teams (workflow URL)" }
                    option value="webhook" { "Signed webhook (HTTPS URL)" }
                }
            }
            label { "Address or URL" input name="address" required size="36" placeholder="you@example.com"; }
            label { "Teams (comma-separated; empty: " (teams_hint) ")" input name="teams" size="20"; }
            label { "Rule"
                select name="rule" {
                    option value="" { "every rule" }
                    @for r in Rule::ALL { option value=(r.as_str()) { (r.label()) } }
                }
            }
            label { "At least"
                select name="severity_min" {
                    option value="info" { "info" }
                    option value="warning" { "warning" }
                    option value="critical" { "critical" }
                }
            }
            label { "When"
                select name="cadence" {
                    option value="immediate" { "as they happen (a burst in one message)" }
                    option value="daily" { "a daily summary" }
                    option value="weekly" { "the team's weekly digest" }
                }
            }
            label { "Quiet hours (HH:MM-HH:MM)" input name="quiet" size="11" placeholder="20:00-07:00"; }
            label { "Focus only" input type="checkbox" name="focus_only" value="on"; }
            button type="submit" { "Subscribe" }
        }
        p { small { "Times are in the organisation's zone (" (g.config.org.timezone) "). A signed webhook's secret is shown once, after adding it." } }
    };
    page("Subscriptions", Some(&c), body)
}

/// `POST /subscriptions`.
pub(super) async fn add(
    State(g): State<Arc<Gateway>>,
    headers: HeaderMap,
    Form(f): Form<AddForm>,
) -> Response {
    let c = match form_caller(&g, &headers, &f.csrf_token, "/subscriptions") {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Some(d) = g.deliverer.clone() else {
        return (StatusCode::NOT_FOUND, "no engine runs in this process").into_response();
    };
    let address = f.address.trim().to_owned();
    let channel = match f.kind.as_str() {
        "email" => Channel::Email { to: address },
        "slack" => Channel::Slack { url: address },
        "teams" => Channel::Teams { url: address },
        "webhook" => Channel::Webhook {
            url: address,
            secret: String::new(),
        },
        other => {
            return back(
                &format!("kind: {other:?} is not email, slack, teams or webhook"),
                true,
            )
        }
    };
    let list = |t: &str| -> Vec<String> {
        t.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let wish = Wish {
        user: c.user.name.clone(),
        channel: Some(channel),
        teams: list(&f.teams),
        rules: list(&f.rule),
        severity_min: Some(f.severity_min).filter(|s| !s.is_empty()),
        focus_only: f.focus_only.is_some(),
        cadence: Some(f.cadence).filter(|s| !s.is_empty()),
        quiet: Some(f.quiet.trim().to_owned()).filter(|s| !s.is_empty()),
        allow_http_loopback: false,
    };
    match add_for(&g, &d, &c, wish).await {
        Ok(sub) => match &sub.channel {
            // The secret is shown on this page once, never put in an address.
            Channel::Webhook { secret, url } => page(
                "Subscription added",
                Some(&c),
                html! {
                    h1 { "Signed webhook added" }
                    p { (sub.id) " sends to " (url) ", signed with Standard Webhooks." }
                    p { "Its signing secret, shown this once: give it to the receiver, which checks each request's "
                        code { "webhook-signature" } " with it." }
                    p { code.secret { (secret) } }
                    p { a href="/subscriptions" { "Back to your subscriptions" } }
                },
            ),
            ch => back(
                &format!("Added {}: {} to {}.", sub.id, ch.kind(), ch.target()),
                false,
            ),
        },
        Err((_, m)) => back(&m, true),
    }
}

async fn change(
    g: Arc<Gateway>,
    headers: HeaderMap,
    id: String,
    csrf: &str,
    action: &'static str,
    f: fn(&mut Subscriptions, &str) -> Result<(), crate::access::AccessError>,
    done: &str,
) -> Response {
    let c = match form_caller(&g, &headers, csrf, "/subscriptions") {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Some(d) = g.deliverer.clone() else {
        return (StatusCode::NOT_FOUND, "no engine runs in this process").into_response();
    };
    match change_for(&g, &d, &c, id.clone(), action, f).await {
        Ok(()) => back(&format!("{id} {done}."), false),
        Err((_, m)) => back(&m, true),
    }
}

/// `POST /subscriptions/{id}/remove`.
pub(super) async fn remove(
    State(g): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<TokenForm>,
) -> Response {
    change(
        g,
        headers,
        id,
        &f.csrf_token,
        "subscription.remove",
        |s, id| s.remove(id).map(|_| ()),
        "removed",
    )
    .await
}

/// `POST /subscriptions/{id}/enable`.
pub(super) async fn enable(
    State(g): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<TokenForm>,
) -> Response {
    change(
        g,
        headers,
        id,
        &f.csrf_token,
        "subscription.enable",
        |s, id| s.enable(id),
        "started again",
    )
    .await
}
