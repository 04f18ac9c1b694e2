//! What every page shares: who is asking (or the way to the log-in page), the
//! refusal, escaping of text in addresses, the query's parameters, the order of
//! buckets and major units in charts, and the page frame (title, the navigation for
//! the caller's role, the stylesheet and script) or, for the live refresh, only the
//! page's main part.

use std::collections::BTreeMap;

use axum::extract::Query;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup, DOCTYPE};

use crate::access::{Caller, Role};
use crate::http::gateway::Gateway;
use crate::http::scope::{caller, in_scope};
use crate::nats::query::answer_params;
use serde_json::{Map, Value};

pub(super) type Q = Query<BTreeMap<String, String>>;

/// The caller, or the way to the log-in page.
pub(super) fn who(
    g: &Gateway,
    method: &Method,
    headers: &HeaderMap,
    back: &str,
) -> Result<Caller, Box<Response>> {
    caller(g, method, headers).map_err(|r| {
        if r.status() == StatusCode::UNAUTHORIZED {
            Box::new(Redirect::to(&format!("/login?next={}", encode(back))).into_response())
        } else {
            r
        }
    })
}

/// The caller of a form post, its CSRF field checked (a form cannot send a header);
/// without a session, the way to the log-in page and back to `back`.
pub(super) fn form_caller(
    g: &Gateway,
    headers: &HeaderMap,
    csrf: &str,
    back: &str,
) -> Result<Caller, Box<Response>> {
    let mut h = headers.clone();
    if let Ok(v) = axum::http::HeaderValue::from_str(csrf) {
        h.insert("x-csrf-token", v);
    }
    who(g, &Method::POST, &h, back)
}

/// The caller's answer to a query within scope, or the refusal page.
pub(super) fn ask(
    g: &Gateway,
    c: &Caller,
    name: &str,
    params: Map<String, Value>,
) -> Result<Value, Box<Response>> {
    in_scope(g, c, &params).map_err(|_| Box::new(refused()))?;
    let Some(ctx) = &g.queries else {
        return Err(Box::new(refused()));
    };
    Ok(tokio::task::block_in_place(|| {
        answer_params(name, &params, ctx)
    }))
}

pub(super) fn refused() -> Response {
    (
        StatusCode::FORBIDDEN,
        page_markup(
            "Not in your scope",
            None,
            html! {
                h1 { "Not in your scope" }
                p { "This page is about a team or rep you do not manage." }
                p { a href="/" { "Back to your page" } }
            },
        ),
    )
        .into_response()
}

pub(super) fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(super) fn params(pairs: &[(&str, Option<&str>)]) -> Map<String, Value> {
    pairs
        .iter()
        .filter_map(|(k, v)| v.map(|v| ((*k).to_owned(), Value::String(v.to_owned()))))
        .collect()
}

/// The order buckets are listed in: the total and its halves, then geography,
/// products, accounts, activities.
pub(super) fn bucket_rank(bucket: &str) -> (u8, &str) {
    let rank = match bucket {
        "total" => 0,
        "new_customer" => 1,
        "retention" => 2,
        b if b.starts_with("geo:") => 3,
        b if b.starts_with("product:") => 4,
        b if b.starts_with("account:") => 5,
        _ => 6,
    };
    (rank, bucket)
}

/// Major units of a money text, for drawing only.
pub(super) fn major(v: &Value) -> Option<f64> {
    v.as_str().and_then(|t| t.parse().ok())
}

pub(super) fn page(title: &str, c: Option<&Caller>, body: Markup) -> Response {
    page_markup(title, c, body).into_response()
}

pub(super) fn page_markup(
    title: &str,
    c: Option<&Caller>,
    body: Markup,
) -> axum::response::Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Pacer" }
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body {
                header {
                    a.brand href="/" { "Pacer" }
                    @if let Some(c) = c {
                        nav aria-label="main" {
                            a href="/" { "Home" }
                            a href="/alerts" { "Alerts" }
                            a href="/subscriptions" { "Subscriptions" }
                            @if matches!(c.user.role, Role::Admin | Role::Finance) {
                                a href="/finance" { "Plans" }
                            }
                        }
                        form.logout method="post" action="/logout" {
                            input type="hidden" name="csrf_token" value=(c.csrf.clone().unwrap_or_default());
                            span { (c.user.name) " (" (c.user.role.as_str()) ")" }
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main id="main" { (body) }
            }
        }
    };
    axum::response::Html(markup.into_string())
}

/// Only the page's main part, for the script's live refresh.
fn wants_fragment(headers: &HeaderMap) -> bool {
    headers.get("x-pacer-fragment").is_some()
}

pub(super) fn respond(title: &str, c: &Caller, headers: &HeaderMap, body: Markup) -> Response {
    if wants_fragment(headers) {
        return axum::response::Html(body.into_string()).into_response();
    }
    page(title, Some(c), body)
}
