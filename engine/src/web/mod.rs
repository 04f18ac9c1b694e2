//! The web app a manager and finance open (`pacer serve --http`, one process or with
//! NATS): server-rendered pages (maud) with charts drawn on the server (plotters,
//! SVG), useful without JavaScript; a few lines of script (compiled in, no CDN)
//! refresh a page when an alert changes. Every page is for a logged-in user and
//! within their scope, read from the same JSON the API answers
//! (`nats::query::answer_params`), so a page's figures are the API's. Amounts are
//! written in the organisation's locale ([`fmt`]), times in its zone. The choices of
//! a page are in its address, so it can be shared.
//!
//! | page | what |
//! | --- | --- |
//! | `/login` | log-in form (a session cookie, as `POST /v1/login`) |
//! | `/team/<team>?month=` | each rep's plan, actual, expected and forecast as bars and a table; the open focus alerts beside their rep; the team's month so far by working day |
//! | `/rep/<rep>?month=` | plan vs actual over the horizon, the month's buckets, productivity; each actual links to its events |
//! | `/rep/<rep>/events?month=&bucket=` | the events behind one figure (seq, date, source, amount), summed |
//! | `/events/<seq>` | one event, every field as the log holds it |
//! | `/alerts?rule=&severity=&rep=` | the inbox: focus first, filters, acknowledge with a note; live |
//! | `/digest/<team>?week=` | the weekly digest, printable: `pacer digest`'s text |
//! | `/subscriptions` | where the user's alerts go: email, Slack, Teams, webhooks ([`subscriptions`]) |
//! | `/finance...` | finance's plan pages ([`finance`]): versions, lines, diff, gap, roll-up, "as recorded at" |

pub mod charts;
pub mod finance;
pub mod fmt;
pub(crate) mod page;
mod subscriptions;

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{html, Markup, PreEscaped};
use pacer_projections::bucket::Bucket;
use pacer_projections::contribution::each_contribution;
use pacer_projections::event::EventBody;
use pacer_projections::money::{format_decimal, parse_decimal};
use pacer_projections::report::team_course;
use pacer_projections::time::Month;
use serde_json::{Map, Value};

use crate::access::{Role, Scope};
use crate::http::gateway::Gateway;
use crate::http::scope::{ack_alert, in_scope};
use crate::nats::query::answer_params;
use fmt::Fmt;
use page::{
    ask, bucket_rank, encode, form_caller, major, page, page_markup, params, refused, respond, who,
    Q,
};

const CSS: &str = include_str!("app.css");
const JS: &str = include_str!("app.js");

/// The most events a drill-down lists (the sum still counts them all).
const EVENTS_SHOWN_MAX: usize = 500;

/// The most alerts the inbox lists, focus and the most severe first; the filters
/// narrow the rest.
const ALERTS_SHOWN_MAX: usize = 200;

/// The pages (one-process mode only: they read the local projections).
pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/team", get(team_choice))
        .route("/team/{team}", get(team_page))
        .route("/rep/{rep}", get(rep_page))
        .route("/rep/{rep}/events", get(events_page))
        .route("/events/{seq}", get(event_page))
        .route("/alerts", get(inbox))
        .route("/alerts/{id}/ack", post(ack_form))
        .route("/digest/{team}", get(digest_page))
        .route(
            "/subscriptions",
            get(subscriptions::list).post(subscriptions::add),
        )
        .route("/subscriptions/{id}/remove", post(subscriptions::remove))
        .route("/subscriptions/{id}/enable", post(subscriptions::enable))
        .route("/finance", get(finance::versions))
        .route("/finance/lines", get(finance::lines))
        .route("/finance/diff", get(finance::diff))
        .route("/finance/gap", get(finance::gap))
        .route("/finance/rollup", get(finance::rollup))
        .route(
            "/assets/app.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css")], CSS) }),
        )
        .route(
            "/assets/app.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], JS) }),
        )
}

async fn home(State(g): State<Arc<Gateway>>, method: Method, headers: HeaderMap) -> Response {
    let c = match who(&g, &method, &headers, "/") {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Some(ctx) = &g.queries else {
        return refused();
    };
    let state = ctx.state.read().expect("not poisoned");
    let target = match Scope::of(&c.user, &state) {
        Scope::Rep(rep) => format!("/rep/{}", encode(&rep)),
        Scope::Teams(teams) => match teams.iter().next() {
            Some(t) => format!("/team/{}", encode(t)),
            None => "/alerts".into(),
        },
        Scope::All if c.user.role == Role::Finance => "/finance".into(),
        Scope::All => state
            .teams_now()
            .into_iter()
            .next()
            .map_or("/alerts".into(), |t| format!("/team/{}", encode(&t))),
        Scope::Nothing => return refused(),
    };
    Redirect::to(&target).into_response()
}

async fn login_form(Query(q): Q) -> Response {
    let next = q.get("next").cloned().unwrap_or_else(|| "/".into());
    let failed = q.contains_key("failed");
    page(
        "Log in",
        None,
        html! {
            h1 { "Log in" }
            @if failed { p.error role="alert" { "Wrong user or password." } }
            form.login method="post" action="/login" {
                input type="hidden" name="next" value=(next);
                label { "User" input name="user" autocomplete="username" required autofocus; }
                label { "Password" input type="password" name="password" autocomplete="current-password" required; }
                button type="submit" { "Log in" }
            }
        },
    )
}

#[derive(serde::Deserialize)]
struct LoginForm {
    user: String,
    password: String,
    #[serde(default)]
    next: String,
}

async fn login(
    State(g): State<Arc<Gateway>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    Form(f): Form<LoginForm>,
) -> Response {
    // Only a path of this site, so the form cannot send anyone elsewhere.
    let next = if f.next.starts_with('/') && !f.next.starts_with("//") {
        f.next.clone()
    } else {
        "/".into()
    };
    match g
        .access
        .log_in(&f.user, &f.password, &peer.ip().to_string(), (g.now_ms)())
    {
        Ok((_, session, _)) => {
            let mut r = Redirect::to(&next).into_response();
            let cookie = format!(
                "pacer_session={session}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={}",
                crate::access::SESSION_MS / 1000
            );
            if let Ok(v) = header::HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err((delay, _)) => {
            tokio::time::sleep(delay).await;
            Redirect::to(&format!("/login?failed=1&next={}", encode(&next))).into_response()
        }
    }
}

#[derive(serde::Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    back: String,
}

async fn logout(
    State(g): State<Arc<Gateway>>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = form_caller(&g, &headers, &f.csrf_token, "/") {
        return *r;
    }
    g.access
        .log_out(crate::webhook::auth::header(&headers, "cookie"));
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        header::HeaderValue::from_static(
            "pacer_session=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0",
        ),
    );
    r
}

/// The month chooser: a GET form, so the URL is shareable.
fn month_form(action: &str, month: &str) -> Markup {
    html! {
        form.choose method="get" action=(action) {
            label { "Month " input type="month" name="month" value=(month); }
            button type="submit" { "Show" }
        }
    }
}

/// The team and month chosen in a page's form: `/team?team=T&month=M` →
/// `/team/T?month=M`, so the address of what is shown can be shared.
async fn team_choice(Query(q): Q) -> Response {
    let team = q.get("team").map(String::as_str).unwrap_or_default();
    if team.is_empty() {
        return Redirect::to("/").into_response();
    }
    let month = q
        .get("month")
        .filter(|m| Month::parse(m).is_ok())
        .map(|m| format!("?month={m}"))
        .unwrap_or_default();
    Redirect::to(&format!("/team/{}{month}", encode(team))).into_response()
}

async fn team_page(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
    Path(team): Path<String>,
    Query(q): Q,
) -> Response {
    let back = format!("/team/{}", encode(&team));
    let c = match who(&g, &method, &headers, &back) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let month = q.get("month").map(String::as_str);
    let p = params(&[
        ("team", Some(&team)),
        ("month", month),
        ("bucket", Some("total")),
    ]);
    let rows = match ask(&g, &c, "report", p) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let alerts = match ask(&g, &c, "alerts", params(&[("team", Some(&team))])) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let rows: Vec<Value> = rows.as_array().cloned().unwrap_or_default();
    let shown_month = rows
        .first()
        .and_then(|r| r["month"].as_str())
        .map(str::to_owned)
        .or_else(|| month.map(str::to_owned))
        .unwrap_or_default();
    let focus: Vec<&Value> = alerts
        .as_array()
        .map(|a| a.iter().filter(|a| a["focus"] == true).collect())
        .unwrap_or_default();
    let bars: Vec<charts::RepBar> = rows
        .iter()
        .map(|r| charts::RepBar {
            rep: r["rep"].as_str().unwrap_or_default().to_owned(),
            plan: major(&r["plan"]).unwrap_or(0.0),
            actual: major(&r["actual"]).unwrap_or(0.0),
            expected: major(&r["expected_to_date"]),
            forecast: major(&r["forecast"]),
        })
        .collect();
    let chart = charts::team_bars(&bars);
    let f = Fmt::of(&g);
    let (course, teams) = match (&g.queries, Month::parse(&shown_month)) {
        (Some(ctx), Ok(m)) => {
            let state = ctx.state.read().expect("not poisoned");
            let exp = state.config().currency.exponent();
            let minor = |v: &Value| v.as_str().and_then(|t| parse_decimal(t, exp).ok());
            let plans: Vec<(&str, i64)> = rows
                .iter()
                .map(|r| {
                    (
                        r["rep"].as_str().unwrap_or_default(),
                        minor(&r["plan"]).unwrap_or(0),
                    )
                })
                .collect();
            let forecasts: Vec<i64> = rows.iter().filter_map(|r| minor(&r["forecast"])).collect();
            let forecast = (!forecasts.is_empty())
                .then(|| forecasts.iter().fold(0i64, |a, v| a.saturating_add(*v)));
            let course = team_course(&state, &team, m, &plans, forecast);
            let teams = match Scope::of(&c.user, &state) {
                Scope::All => state.teams_now(),
                Scope::Teams(t) => t,
                Scope::Rep(_) | Scope::Nothing => Default::default(),
            };
            (course, teams)
        }
        _ => (Vec::new(), Default::default()),
    };
    let text = |v: i64| f.decimal(&format_decimal(v, g.config.org.currency.exponent()));
    let major_of = |v: i64| v as f64 / 10f64.powi(g.config.org.currency.exponent() as i32);
    let course_chart = charts::team_course(
        &course
            .iter()
            .map(|d| d.date.month_and_day().1.to_string())
            .collect::<Vec<_>>(),
        &course
            .iter()
            .map(|d| major_of(d.plan_to_date))
            .collect::<Vec<_>>(),
        &course
            .iter()
            .map(|d| d.actual.map(major_of))
            .collect::<Vec<_>>(),
        &course
            .iter()
            .map(|d| d.forecast.map(major_of))
            .collect::<Vec<_>>(),
    );
    let body = html! {
        h1 { "Team " (team) " · " (shown_month) }
        form.choose method="get" action="/team" {
            @if teams.len() > 1 {
                label { "Team "
                    select name="team" {
                        @for t in &teams { option value=(t) selected[*t == team] { (t) } }
                    }
                }
            } @else {
                input type="hidden" name="team" value=(team);
            }
            label { "Month " input type="month" name="month" value=(shown_month); }
            button type="submit" { "Show" }
        }
        figure {
            (PreEscaped(chart))
            figcaption { "Each rep's actual (blue) against the plan (grey), with the expected-to-date (black mark) and the forecast (orange mark). The table below holds the same figures." }
        }
        div.scroll { table.figures id="team-table" {
            caption { "Plan vs actual, total bucket, " (shown_month) }
            thead { tr { th scope="col" { "Rep" } th { "Plan" } th { "Actual" } th { "Attainment" } th { "Expected to date" } th { "Pace gap" } th { "Forecast" } th { "Focus alerts" } } }
            tbody {
                @for r in &rows {
                    @let rep = r["rep"].as_str().unwrap_or_default();
                    tr data-rep=(rep) {
                        th scope="row" { a href={ "/rep/" (encode(rep)) "?month=" (shown_month) } { (rep) } }
                        td.num data-field="plan" data-label="Plan" { (f.money(&r["plan"])) }
                        td.num data-field="actual" data-label="Actual" { (f.money(&r["actual"])) }
                        td.num data-field="attainment" data-label="Attainment" { (f.percent(&r["attainment"])) }
                        td.num data-field="expected_to_date" data-label="Expected to date" { (f.money(&r["expected_to_date"])) }
                        td.num data-field="pace_gap" data-label="Pace gap" { (f.money(&r["pace_gap"])) }
                        td.num data-field="forecast" data-label="Forecast" { (f.money(&r["forecast"])) }
                        td.focus data-label="Focus alerts" {
                            @for a in focus.iter().filter(|a| a["rep"] == rep) {
                                div class={ "alert " (a["severity"].as_str().unwrap_or_default()) } {
                                    strong { (a["rule"].as_str().unwrap_or_default()) }
                                    " " (a["suggested_action"].as_str().unwrap_or_default())
                                    " "
                                    small { "act by " (f.time(&a["act_by"])) }
                                }
                            }
                        }
                    }
                }
            }
        }
        }
        @if !course.is_empty() {
            h2 { "The month so far" }
            figure {
                (PreEscaped(course_chart))
                figcaption { "The team's total booked to date (blue) against the plan expected by each working day (grey), and the forecast from today to the month's end (orange)." }
            }
            details {
                summary { "The same as a table" }
                div.scroll { table.figures id="course-table" {
                    thead { tr { th scope="col" { "Working day" } th { "Plan to date" } th { "Actual" } th { "Forecast" } } }
                    tbody { @for d in &course {
                        tr {
                            th scope="row" { (d.date.to_string()) }
                            td.num data-field="plan_to_date" { (text(d.plan_to_date)) }
                            td.num data-field="actual" { (d.actual.map_or("–".into(), text)) }
                            td.num data-field="forecast" { (d.forecast.map_or("–".into(), text)) }
                        }
                    } }
                } }
            }
        }
        p { a href={ "/digest/" (encode(&team)) } { "This week's digest" } " · " a href="/alerts" { "Alerts inbox" } }
    };
    respond(&format!("Team {team}"), &c, &headers, body)
}

async fn rep_page(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
    Path(rep): Path<String>,
    Query(q): Q,
) -> Response {
    let back = format!("/rep/{}", encode(&rep));
    let c = match who(&g, &method, &headers, &back) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let f = Fmt::of(&g);
    let month = q.get("month").map(String::as_str);
    let mut buckets = match ask(
        &g,
        &c,
        "report",
        params(&[("rep", Some(&rep)), ("month", month)]),
    ) {
        Ok(v) => v.as_array().cloned().unwrap_or_default(),
        Err(r) => return *r,
    };
    buckets.sort_by(|a, b| {
        bucket_rank(a["bucket"].as_str().unwrap_or(""))
            .cmp(&bucket_rank(b["bucket"].as_str().unwrap_or("")))
    });
    let shown = buckets
        .first()
        .and_then(|r| r["month"].as_str())
        .map(str::to_owned)
        .or_else(|| month.map(str::to_owned))
        .unwrap_or_default();
    let productivity = ask(
        &g,
        &c,
        "report",
        params(&[
            ("rep", Some(&rep)),
            ("month", Some(&shown)),
            ("view", Some("productivity")),
        ]),
    )
    .ok()
    .and_then(|v| v.as_array().and_then(|a| a.first().cloned()))
    .unwrap_or(Value::Null);
    // The horizon: twelve months back and twelve ahead of the month shown. The rep's
    // scope was checked by the `ask` above: the 24 months are answered without
    // checking it 24 times more.
    let (mut labels, mut plan, mut actual) = (Vec::new(), Vec::new(), Vec::new());
    if let (Ok(m), Some(ctx)) = (Month::parse(&shown), &g.queries) {
        for k in -11..=12 {
            let mm = m.plus(k).to_string();
            let p = params(&[
                ("rep", Some(&rep)),
                ("month", Some(&mm)),
                ("bucket", Some("total")),
            ]);
            let row = tokio::task::block_in_place(|| answer_params("report", &p, ctx));
            let row = row.as_array().and_then(|a| a.first().cloned());
            plan.push(row.as_ref().and_then(|r| major(&r["plan"])).unwrap_or(0.0));
            actual.push(if k <= 0 {
                row.as_ref().and_then(|r| major(&r["actual"]))
            } else {
                None
            });
            labels.push(mm);
        }
    }
    let chart = charts::months_line(&labels, &plan, &actual);
    let body = html! {
        h1 { "Rep " (rep) " · " (shown) }
        (month_form(&back, &shown))
        figure {
            (PreEscaped(chart))
            figcaption { "Plan (grey) and actual (blue), total bucket, over the 24 months around " (shown) "." }
        }
        details {
            summary { "The same as a table" }
            table.figures { thead { tr { th { "Month" } th { "Plan" } th { "Actual" } } }
                tbody { @for (i, l) in labels.iter().enumerate() {
                    tr { th scope="row" { (l) } td.num { (format!("{:.2}", plan[i])) } td.num { (actual[i].map_or("–".into(), |a| format!("{a:.2}"))) } }
                } } }
        }
        h2 { "Buckets" }
        div.scroll { table.figures id="bucket-table" {
            thead { tr { th scope="col" { "Bucket" } th { "Plan" } th { "Actual" } th { "Attainment" } th { "Expected to date" } th { "Forecast" } } }
            tbody {
                @for r in &buckets {
                    @let bucket = r["bucket"].as_str().unwrap_or_default();
                    tr data-bucket=(bucket) {
                        th scope="row" { (bucket) }
                        td.num { (f.money(&r["plan"])) }
                        td.num data-field="actual" {
                            a href={ "/rep/" (encode(&rep)) "/events?month=" (shown) "&bucket=" (encode(bucket)) } { (f.money(&r["actual"])) }
                        }
                        td.num { (f.percent(&r["attainment"])) }
                        td.num { (f.money(&r["expected_to_date"])) }
                        td.num { (f.money(&r["forecast"])) }
                    }
                }
            }
        }
        }
        h2 { "Productivity" }
        @if let Value::Object(p) = &productivity {
            dl.productivity {
                @for (k, v) in p.iter().filter(|(k, _)| !matches!(k.as_str(), "rep" | "team" | "month")) {
                    dt { (k.replace('_', " ")) }
                    dd { (productivity_value(&f, k, v)) }
                }
            }
        } @else { p { "No productivity figures for this month." } }
    };
    respond(&format!("Rep {rep}"), &c, &headers, body)
}

async fn events_page(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
    Path(rep): Path<String>,
    Query(q): Q,
) -> Response {
    let back = format!("/rep/{}", encode(&rep));
    let c = match who(&g, &method, &headers, &back) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    if in_scope(&g, &c, &params(&[("rep", Some(&rep))])).is_err() {
        return refused();
    }
    let (Some(month), Some(bucket)) = (
        q.get("month").and_then(|m| Month::parse(m).ok()),
        q.get("bucket").and_then(|b| Bucket::parse(b).ok()),
    ) else {
        return (StatusCode::BAD_REQUEST, "month and bucket are needed").into_response();
    };
    let Some(ctx) = &g.queries else {
        return refused();
    };
    let f = Fmt::of(&g);
    let (tz, currency) = {
        let state = ctx.state.read().expect("not poisoned");
        (state.config().timezone, state.config().currency)
    };
    let behind = tokio::task::block_in_place(|| events_behind(&ctx.log, tz, &rep, month, &bucket));
    let (rows, total, count) = match behind {
        Ok(x) => x,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    };
    let is_money = !matches!(bucket, Bucket::Activity(_));
    let amount = |minor: i64| {
        if is_money {
            f.decimal(&pacer_projections::money::format_decimal(
                minor,
                currency.exponent(),
            ))
        } else {
            minor.to_string()
        }
    };
    let body = html! {
        h1 { "Events behind " (rep) "'s " (bucket.to_string()) ", " (month.to_string()) }
        p { a href={ "/rep/" (encode(&rep)) "?month=" (month.to_string()) } { "Back to " (rep) } }
        p id="events-total" data-total=(total) { (count) " events, in all " strong { (amount(total)) } }
        div.scroll {
        table.figures id="events-table" {
            thead { tr { th { "seq" } th { "Occurred" } th { "Type" } th { "Deal / account" } th { "Source" } th { "Adds" } } }
            tbody {
                @for r in &rows {
                    tr {
                        td.num { a href={ "/events/" (r.seq) } { (r.seq) } }
                        td { (r.occurred_at) }
                        td { (r.kind) }
                        td { (r.what) }
                        td { (r.source) }
                        td.num data-delta=(r.delta) { (amount(r.delta)) }
                    }
                }
            }
        }
        }
        @if count > rows.len() { p { "The first " (rows.len()) " of " (count) " are listed; the total counts all." } }
    };
    respond("Events", &c, &headers, body)
}

/// `/events/<seq>`: one event as the log holds it, every field, for a caller whose
/// scope covers a rep it is about (its rep, or a rep it credits).
async fn event_page(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
    Path(seq): Path<String>,
) -> Response {
    let back = format!("/events/{}", encode(&seq));
    let c = match who(&g, &method, &headers, &back) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Some(ctx) = &g.queries else {
        return refused();
    };
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            page_markup(
                "No such event",
                Some(&c),
                html! { h1 { "No such event" } p { "The log has no event " (seq) "." } },
            ),
        )
            .into_response()
    };
    let Ok(n) = seq.parse::<u64>() else {
        return not_found();
    };
    let rec = match tokio::task::block_in_place(|| ctx.log.get(n)) {
        Ok(Some(rec)) => rec,
        Ok(None) => return not_found(),
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let tz = g.config.org.timezone;
    let mut reps: std::collections::BTreeSet<String> = rec
        .event
        .body
        .rep()
        .map(str::to_owned)
        .into_iter()
        .collect();
    each_contribution(&rec.event, tz, |c| {
        reps.insert(c.rep.to_owned());
    });
    let within = {
        let state = ctx.state.read().expect("not poisoned");
        let scope = Scope::of(&c.user, &state);
        scope == Scope::All || reps.iter().any(|r| scope.rep(r, &state))
    };
    if !within {
        return refused();
    }
    let fields = crate::wire::encode_recorded(&rec);
    let body = html! {
        h1 { "Event " (rec.seq) " · " (rec.event.body.type_name()) }
        p { "Occurred " (rec.event.occurred_at.to_rfc3339_in(tz)) ", recorded " (rec.recorded_at.to_rfc3339_in(tz)) ", from " (rec.event.source) "." }
        dl.productivity id="event-fields" {
            @for (k, v) in &fields {
                dt { (k) }
                dd { @match v { Value::String(t) => { (t) }, other => { code { (other.to_string()) } } } }
            }
        }
        @for r in &reps { p { a href={ "/rep/" (encode(r)) } { "Rep " (r) } } }
    };
    respond(&format!("Event {}", rec.seq), &c, &headers, body)
}

/// One event behind a figure.
struct Behind {
    seq: u64,
    occurred_at: String,
    kind: &'static str,
    what: String,
    source: String,
    delta: i64,
}

/// The events that add to a rep's bucket in a month, voided ones left out: each with
/// what it adds (the one mapping the fold uses, `each_contribution`). Returns the
/// first [`EVENTS_SHOWN_MAX`], the sum and the count.
fn events_behind(
    log: &crate::log::LogReader,
    tz: chrono_tz::Tz,
    rep: &str,
    month: Month,
    bucket: &Bucket,
) -> Result<(Vec<Behind>, i64, usize), String> {
    // One pass: the events that add to the figure, and the ids voided (a void comes
    // after its target, so the candidates are filtered at the end).
    let mut voided = std::collections::BTreeSet::new();
    let mut candidates: Vec<(String, Behind)> = Vec::new();
    for rec in log.iter_from(1) {
        let rec = rec.map_err(|e| e.to_string())?;
        if let EventBody::EventVoided(v) = &rec.event.body {
            voided.insert(v.voided_event_id.clone());
            continue;
        }
        let mut delta = 0i64;
        each_contribution(&rec.event, tz, |c| {
            if c.rep == rep && c.month == month && &c.bucket.to_bucket() == bucket {
                delta += c.delta;
            }
        });
        if delta == 0 {
            continue;
        }
        let (kind, what) = match &rec.event.body {
            EventBody::DealWon(w) => ("deal_won", format!("{} · {}", w.deal, w.account)),
            EventBody::Retention(k, r) => (k.as_str(), r.account.clone()),
            EventBody::ActivityLogged(a) => {
                ("activity_logged", a.account.clone().unwrap_or_default())
            }
            _ => ("event", String::new()),
        };
        let behind = Behind {
            seq: rec.seq,
            occurred_at: rec.event.occurred_at.to_rfc3339_in(tz),
            kind,
            what,
            source: rec.event.source.clone(),
            delta,
        };
        candidates.push((rec.event.event_id.clone(), behind));
    }
    let kept: Vec<Behind> = candidates
        .into_iter()
        .filter(|(id, _)| !voided.contains(id))
        .map(|(_, b)| b)
        .collect();
    let total = kept.iter().fold(0i64, |t, b| t.saturating_add(b.delta));
    let count = kept.len();
    let rows = kept.into_iter().take(EVENTS_SHOWN_MAX).collect();
    Ok((rows, total, count))
}

async fn inbox(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
    Query(q): Q,
) -> Response {
    let c = match who(&g, &method, &headers, "/alerts") {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Some(ctx) = &g.queries else {
        return refused();
    };
    let scope = Scope::of(&c.user, &ctx.state.read().expect("not poisoned"));
    // Ask for the caller's own part when it is one team or one rep: the listing then
    // reads only their alerts.
    let narrowed = match &scope {
        Scope::Teams(t) if t.len() == 1 => params(&[("team", t.iter().next().map(String::as_str))]),
        Scope::Rep(r) => params(&[("rep", Some(r))]),
        _ => Map::new(),
    };
    let all = tokio::task::block_in_place(|| answer_params("alerts", &narrowed, ctx));
    let get = |k: &str| q.get(k).filter(|v| !v.is_empty()).cloned();
    let (rule, severity, rep) = (get("rule"), get("severity"), get("rep"));
    let mut alerts: Vec<Value> = all
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| match &scope {
            Scope::All => true,
            Scope::Teams(t) => a["team"].as_str().is_some_and(|team| t.contains(team)),
            Scope::Rep(r) => a["rep"] == r.as_str(),
            Scope::Nothing => false,
        })
        .filter(|a| rule.as_ref().is_none_or(|r| a["rule"] == r.as_str()))
        .filter(|a| {
            severity
                .as_ref()
                .is_none_or(|s| a["severity"] == s.as_str())
        })
        .filter(|a| rep.as_ref().is_none_or(|r| a["rep"] == r.as_str()))
        .collect();
    // Focus first, then by severity, then as raised.
    let rank = |s: &str| match s {
        "critical" => 0,
        "warning" => 1,
        _ => 2,
    };
    alerts.sort_by_key(|a| {
        (
            a["focus"] != true,
            rank(a["severity"].as_str().unwrap_or("")),
        )
    });
    let csrf = c.csrf.clone().unwrap_or_default();
    let f = Fmt::of(&g);
    let may_ack = !matches!(c.user.role, Role::Crm | Role::Service);
    let body = html! {
        h1 { "Alerts" }
        form.choose method="get" action="/alerts" {
            label { "Rule " input name="rule" value=(rule.clone().unwrap_or_default()); }
            label { "Severity "
                select name="severity" {
                    option value="" { "any" }
                    @for s in ["critical", "warning", "info"] {
                        option value=(s) selected[severity.as_deref() == Some(s)] { (s) }
                    }
                }
            }
            label { "Rep " input name="rep" value=(rep.clone().unwrap_or_default()); }
            button type="submit" { "Filter" }
        }
        p id="alert-count" {
            (alerts.len()) " open alerts"
            @if alerts.len() > ALERTS_SHOWN_MAX { " · the first " (ALERTS_SHOWN_MAX) " are listed: filter by rule, severity or rep for the rest" }
        }
        ul.inbox id="inbox" data-live="1" {
            @for a in alerts.iter().take(ALERTS_SHOWN_MAX) {
                @let id = a["alert_id"].as_str().unwrap_or_default();
                li class={ "alert " (a["severity"].as_str().unwrap_or_default()) } data-alert=(id) {
                    p {
                        @if a["focus"] == true { span.badge { "focus" } " " }
                        strong { (a["rule"].as_str().unwrap_or_default()) }
                        " · " a href={ "/rep/" (encode(a["rep"].as_str().unwrap_or_default())) } { (a["rep"].as_str().unwrap_or_default()) }
                        " · " (a["team"].as_str().unwrap_or_default())
                        " · act by " (f.time(&a["act_by"]))
                    }
                    p { (a["message"].as_str().unwrap_or_default()) }
                    p.action { (a["suggested_action"].as_str().unwrap_or_default()) }
                    @if may_ack {
                        form.ack method="post" action={ "/alerts/" (id) "/ack" } {
                            input type="hidden" name="csrf_token" value=(csrf);
                            label { "Note " input name="note" placeholder="what was agreed"; }
                            button type="submit" { "Acknowledge" }
                        }
                    }
                }
            }
        }
    };
    respond("Alerts", &c, &headers, body)
}

async fn ack_form(
    State(g): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let c = match form_caller(&g, &headers, &f.csrf_token, "/") {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let note = Some(f.note.trim().to_owned()).filter(|n| !n.is_empty());
    match ack_alert(&g, &c, &id, note).await {
        Ok(_) => {
            let back = if f.back.starts_with('/') && !f.back.starts_with("//") {
                f.back
            } else {
                "/alerts".into()
            };
            Redirect::to(&back).into_response()
        }
        Err(r) => *r,
    }
}

async fn digest_page(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
    Path(team): Path<String>,
    Query(q): Q,
) -> Response {
    let back = format!("/digest/{}", encode(&team));
    let c = match who(&g, &method, &headers, &back) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let week = q.get("week").map(String::as_str);
    let p = params(&[("team", Some(&team)), ("week", week)]);
    if in_scope(&g, &c, &p).is_err() {
        return refused();
    }
    let Some(ctx) = &g.queries else {
        return refused();
    };
    // The same text as `pacer digest`.
    let text = tokio::task::block_in_place(|| {
        crate::nats::query::with_digest(&p, ctx, |d, currency, tz| {
            crate::digest::digest_text(d, currency, tz, false)
        })
    });
    let body = html! {
        @match &text {
            Ok(t) => {
                h1 { (t.lines().next().unwrap_or("Weekly digest")) }
                pre.digest { (t.split_once('\n').map_or("", |(_, rest)| rest).trim_start()) }
            }
            Err(e) => { h1 { "Weekly digest · team " (team) } p.error { (e) } }
        }
        form.choose method="get" action=(back) {
            label { "Week " input type="week" name="week" value=(week.unwrap_or_default()); }
            button type="submit" { "Show" }
        }
        p.noprint { button type="button" onclick="window.print()" { "Print" } }
    };
    respond(&format!("Digest {team}"), &c, &headers, body)
}

/// A productivity figure as people read it: rates as percents, money grouped,
/// coverage as a multiple.
fn productivity_value(f: &Fmt, key: &str, v: &Value) -> String {
    match (key, v) {
        (_, Value::Null) => "–".into(),
        ("win_rate", v) => f.percent(v),
        ("coverage", v) => v.as_f64().map_or("–".into(), |c| format!("{c:.2}×")),
        (_, Value::String(s)) if s.contains('.') => f.money(v),
        (_, Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}
