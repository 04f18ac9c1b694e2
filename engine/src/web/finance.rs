//! Finance's screens: the plan versions, a version's lines, the diff of two versions,
//! top-down vs bottom-up (the gap) and the organisation rolled up by team and region.
//! Every table is the text of [`crate::plans`] (the same as `pacer plan ...`), offered
//! as CSV and XLSX downloads of what is on screen (with its filters; every page of
//! it). With `as_of` (a date and time in the org's zone, or RFC 3339), a page shows
//! what Pacer had recorded by then: the log replayed up to that moment, as
//! `pacer report --as-of` does.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;
use std::sync::{Arc, RwLockReadGuard};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use pacer_projections::model::Model as Projections;
use pacer_projections::time::{Month, Timestamp};

use super::fmt::Fmt;
use super::page::{encode, page_markup, refused, respond, who, Q};
use crate::access::{Caller, Role};
use crate::http::gateway::Gateway;
use crate::nats::query::QueryContext;
use crate::plans::Table;
use crate::replay::{rebuild_from, Cut};

/// Rows on one page of a table; the downloads hold them all.
pub const PAGE_ROWS: usize = 200;

/// Finance's pages are for `finance` and `admin` users.
fn finance_caller(
    g: &Gateway,
    method: &Method,
    headers: &HeaderMap,
    back: &str,
) -> Result<Caller, Box<Response>> {
    let c = who(g, method, headers, back)?;
    if matches!(c.user.role, Role::Admin | Role::Finance) {
        Ok(c)
    } else {
        Err(Box::new(refused()))
    }
}

/// What a finance page reads: the live projections, or those replayed to `as_of`.
enum Seen<'a> {
    Live(RwLockReadGuard<'a, Projections>),
    Then(Arc<Projections>),
}

impl Deref for Seen<'_> {
    type Target = Projections;
    fn deref(&self) -> &Projections {
        match self {
            Seen::Live(s) => s,
            Seen::Then(s) => s,
        }
    }
}

/// `as_of` as a moment: `2026-11-15T09:30` (the org's zone, as a
/// `datetime-local` field sends it), `2026-11-15` (the end of that day) or RFC 3339.
fn parse_as_of(text: &str, tz: chrono_tz::Tz) -> Result<Timestamp, String> {
    use chrono::TimeZone as _;
    if let Ok(t) = Timestamp::parse_rfc3339(text) {
        return Ok(t);
    }
    let local = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(|d| d.and_hms_milli_opt(23, 59, 59, 999).unwrap_or_default())
        })
        .map_err(|_| {
            format!("as_of: {text:?} is not a date (2026-11-15), a local time (2026-11-15T09:30) or RFC 3339")
        })?;
    tz.from_local_datetime(&local)
        .earliest()
        .map(|t| Timestamp::from_utc(t.with_timezone(&chrono::Utc)))
        .ok_or_else(|| format!("as_of: {text:?} does not exist in {tz} (a clock change)"))
}

/// The projections a page reads, and the `as_of` text it was asked for.
fn seen<'a>(
    ctx: &'a QueryContext,
    g: &Gateway,
    q: &BTreeMap<String, String>,
) -> Result<(Seen<'a>, Option<String>), String> {
    match q.get("as_of").map(|t| t.trim()).filter(|t| !t.is_empty()) {
        None => Ok((Seen::Live(ctx.state.read().expect("not poisoned")), None)),
        Some(text) => {
            let at = parse_as_of(text, g.config.org.timezone)?;
            // A replay to a moment before it was made stays true: what is recorded
            // later is recorded after that moment (recorded_at never goes back).
            let kept = g
                .as_of_replay
                .lock()
                .expect("not poisoned")
                .as_ref()
                .filter(|(t, made_ms, _)| *t == at && at.to_utc().timestamp_millis() < *made_ms)
                .map(|(_, _, state)| Arc::clone(state));
            let state = match kept {
                Some(state) => state,
                None => {
                    let made_ms = (g.now_ms)();
                    let state = Arc::new(
                        tokio::task::block_in_place(|| {
                            rebuild_from(&ctx.log, &g.config.org, Cut::RecordedBy(at))
                        })
                        .map_err(|e| e.to_string())?,
                    );
                    *g.as_of_replay.lock().expect("not poisoned") =
                        Some((at, made_ms, Arc::clone(&state)));
                    state
                }
            };
            Ok((Seen::Then(state), Some(text.to_owned())))
        }
    }
}

/// The links between finance's pages (keeping `as_of`) and the "as recorded at"
/// field, with the page's other choices kept as hidden fields.
fn finance_nav(path: &str, q: &BTreeMap<String, String>, as_of: Option<&str>) -> Markup {
    let keep = as_of
        .map(|a| format!("?as_of={}", encode(a)))
        .unwrap_or_default();
    let pages = [
        ("/finance", "Versions"),
        ("/finance/lines", "Lines"),
        ("/finance/diff", "Diff"),
        ("/finance/gap", "Gap"),
        ("/finance/rollup", "Roll-up"),
    ];
    html! {
        nav.tabs aria-label="finance" {
            @for (p, label) in pages {
                @if p == path { strong aria-current="page" { (label) } }
                @else { a href={ (p) (keep) } { (label) } }
            }
        }
        form.choose.asof method="get" action=(path) {
            @for (k, v) in q.iter().filter(|(k, _)| !matches!(k.as_str(), "as_of" | "page" | "format")) {
                input type="hidden" name=(k) value=(v);
            }
            label { "As recorded at "
                input type="datetime-local" name="as_of" value=(as_of.unwrap_or_default());
            }
            button type="submit" { "Replay" }
            @if as_of.is_some() {
                " " a href=(path) { "Now" }
            }
        }
        @if let Some(a) = as_of {
            p.note id="as-of" { "What Pacer had recorded by " (a) " (the organisation's time zone): events recorded later are left out, even about earlier months." }
        }
    }
}

/// Keeps the rows whose columns equal the non-empty filters of `q` named in `cols`.
fn narrow(mut t: Table, q: &BTreeMap<String, String>, cols: &[&str]) -> Table {
    let filters: Vec<(usize, &String)> = cols
        .iter()
        .filter_map(|c| {
            let v = q.get(*c).filter(|v| !v.is_empty())?;
            let i = t.header.iter().position(|h| h == c)?;
            Some((i, v))
        })
        .collect();
    if !filters.is_empty() {
        t.rows
            .retain(|r| filters.iter().all(|(i, v)| r.get(*i) == Some(*v)));
    }
    t
}

/// A table on screen, one page of it, with its downloads (the same text as CSV and
/// XLSX, every page) and the links to the other pages. `here` is the page's address
/// with its choices, ending in `?` or `&`.
fn table_markup(f: &Fmt, t: &Table, id: &str, here: &str, page: usize) -> Markup {
    let pages = t.rows.len().div_ceil(PAGE_ROWS).max(1);
    let page = page.clamp(1, pages);
    let from = (page - 1) * PAGE_ROWS;
    let shown = &t.rows[from.min(t.rows.len())..(from + PAGE_ROWS).min(t.rows.len())];
    html! {
        p.downloads {
            "Download: "
            a href={ (here) "format=csv" } download { "CSV" }
            " · "
            a href={ (here) "format=xlsx" } download { "XLSX" }
            " (all " (t.rows.len()) " rows)"
        }
        @if pages > 1 {
            nav.pager aria-label="pages" id={ (id) "-pages" } data-from=(from) data-rows=(t.rows.len()) {
                "Rows " (from + 1) "–" (from + shown.len()) " of " (t.rows.len()) " · "
                @if page > 1 { a rel="prev" href={ (here) "page=" (page - 1) } { "← previous" } " " }
                "page " (page) " of " (pages)
                @if page < pages { " " a rel="next" href={ (here) "page=" (page + 1) } { "next →" } }
            }
        }
        div.scroll { table.figures id=(id) {
            thead { tr { @for h in &t.header { th scope="col" { (h) } } } }
            tbody { @for r in shown {
                tr { @for (i, v) in r.iter().enumerate() {
                    @if t.money.contains(&i) {
                        td.num data-value=(v) { (if v.is_empty() { "–".to_owned() } else { f.decimal(v) }) }
                    } @else { td { (v) } }
                } }
            } }
        } }
    }
}

/// The page's address with its choices (not `page` or `format`), for links and
/// downloads: ends in `?` or `&`.
fn address(path: &str, q: &BTreeMap<String, String>) -> String {
    let mut out = format!("{path}?");
    for (k, v) in q {
        if !matches!(k.as_str(), "page" | "format") && !v.is_empty() {
            out.push_str(&format!("{}={}&", encode(k), encode(v)));
        }
    }
    out
}

fn page_of(q: &BTreeMap<String, String>) -> usize {
    q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1)
}

fn bad_request(title: &str, c: &Caller, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        page_markup(
            title,
            Some(c),
            html! { h1 { (title) } p.error { (message) } p { a href="/finance" { "Plan versions" } } },
        ),
    )
        .into_response()
}

/// The caller, the projections to read and the `as_of` asked for; or the response.
fn open<'a>(
    g: &'a Gateway,
    method: &Method,
    headers: &HeaderMap,
    q: &BTreeMap<String, String>,
    path: &str,
    title: &str,
) -> Result<(Caller, Seen<'a>, Option<String>), Box<Response>> {
    let c = finance_caller(g, method, headers, path)?;
    let Some(ctx) = &g.queries else {
        return Err(Box::new(refused()));
    };
    match seen(ctx, g, q) {
        Ok((s, as_of)) => Ok((c, s, as_of)),
        Err(e) => Err(Box::new(bad_request(title, &c, &e))),
    }
}

/// A month from the query, or the current month of the projections.
fn month_of(q: &BTreeMap<String, String>, state: &Projections) -> Result<Month, String> {
    match q.get("month").filter(|m| !m.is_empty()) {
        Some(m) => Month::parse(m).map_err(|_| format!("month: {m:?} is not YYYY-MM")),
        None => state
            .current_month()
            .ok_or_else(|| "no clock_tick yet: choose a month".to_owned()),
    }
}

/// Each plan's revisions once (a version has a history row per effective month):
/// (plan, version) for versions above 1.
fn revisions(t: &Table) -> BTreeSet<(String, u32)> {
    t.rows
        .iter()
        .filter_map(|r| {
            let v = r.get(1)?.parse::<u32>().ok().filter(|v| *v > 1)?;
            Some((r.first()?.clone(), v))
        })
        .collect()
}

/// `/finance`: every published version, and the links to compare revisions.
pub async fn versions(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
    Query(q): Q,
) -> Response {
    let (c, state, as_of) = match open(&g, &method, &headers, &q, "/finance", "Plan versions") {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let t = crate::plans::history(&state);
    drop(state);
    if let Some(r) = download(&t, &q, "plan-history") {
        return r;
    }
    let f = Fmt::of(&g);
    let keep = as_of
        .as_deref()
        .map(|a| format!("&as_of={}", encode(a)))
        .unwrap_or_default();
    let body = html! {
        h1 { "Plan versions" }
        (finance_nav("/finance", &q, as_of.as_deref()))
        (table_markup(&f, &t, "history-table", &address("/finance", &q), page_of(&q)))
        h2 { "A version's lines" }
        ul.versions {
            @for (plan, v) in t.rows.iter().filter_map(|r| Some((r.first()?.clone(), r.get(1)?.clone()))).collect::<BTreeSet<_>>() {
                li { a href={ "/finance/lines?plan=" (encode(&plan)) "&version=" (v) (keep) } { (plan) " version " (v) } }
            }
        }
        h2 { "Compare versions" }
        ul.diffs {
            @for (plan, v) in revisions(&t) {
                li { a href={ "/finance/diff?plan=" (encode(&plan)) "&before=" (v - 1) "&after=" (v) (keep) } {
                    (plan) ": version " (v - 1) " → " (v)
                } }
            }
        }
    };
    respond("Plans", &c, &headers, body)
}

/// `/finance/lines?plan=&version=&month=&rep=`: one version's lines.
pub async fn lines(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
    Query(q): Q,
) -> Response {
    let title = "Plan lines";
    let (c, state, as_of) = match open(&g, &method, &headers, &q, "/finance/lines", title) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let latest = pacer_projections::plan::latest(&state);
    let plan = q
        .get("plan")
        .filter(|p| !p.is_empty())
        .cloned()
        .or(latest.as_ref().map(|(p, _)| p.clone()));
    let Some(plan) = plan else {
        drop(state);
        return bad_request(title, &c, "no plan has been published yet");
    };
    let version = match q.get("version").filter(|v| !v.is_empty()) {
        Some(v) => match v.parse::<u32>() {
            Ok(v) => v,
            Err(_) => {
                drop(state);
                return bad_request(
                    title,
                    &c,
                    &format!("version: {v:?} is not a version number"),
                );
            }
        },
        None => state
            .plans()
            .versions()
            .iter()
            .filter(|v| v.plan == plan)
            .map(|v| v.version)
            .max()
            .unwrap_or(1),
    };
    let month = match q
        .get("month")
        .filter(|m| !m.is_empty())
        .map(|m| Month::parse(m))
    {
        Some(Ok(m)) => Some(m),
        Some(Err(_)) => {
            drop(state);
            return bad_request(title, &c, "month: not YYYY-MM");
        }
        None => None,
    };
    let rep = q.get("rep").filter(|r| !r.is_empty()).map(String::as_str);
    let t = crate::plans::lines(&state, &plan, version, month, rep);
    drop(state);
    let Some(t) = t else {
        return bad_request(
            title,
            &c,
            &format!("plan {plan:?} has no version {version}"),
        );
    };
    let t = narrow(t, &q, &["bucket", "team"]);
    if let Some(r) = download(&t, &q, &format!("plan-{plan}-v{version}")) {
        return r;
    }
    let f = Fmt::of(&g);
    let here = address("/finance/lines", &q);
    let value = |k: &str| q.get(k).cloned().unwrap_or_default();
    let body = html! {
        h1 { "Plan " (plan) ", version " (version) }
        (finance_nav("/finance/lines", &q, as_of.as_deref()))
        form.choose method="get" action="/finance/lines" {
            input type="hidden" name="plan" value=(plan);
            input type="hidden" name="version" value=(version);
            @if let Some(a) = &as_of { input type="hidden" name="as_of" value=(a); }
            label { "Month " input type="month" name="month" value=(value("month")); }
            label { "Rep " input name="rep" value=(value("rep")); }
            label { "Team " input name="team" value=(value("team")); }
            label { "Bucket " input name="bucket" value=(value("bucket")) placeholder="total"; }
            button type="submit" { "Filter" }
        }
        (table_markup(&f, &t, "lines-table", &here, page_of(&q)))
    };
    respond(title, &c, &headers, body)
}

/// `/finance/diff?plan=&before=&after=&rep=&month=&bucket=`: what changed.
pub async fn diff(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
    Query(q): Q,
) -> Response {
    let title = "Plan diff";
    let (c, state, as_of) = match open(&g, &method, &headers, &q, "/finance/diff", title) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let version = |k: &str| q.get(k).and_then(|v| v.parse::<u32>().ok());
    let plan = q.get("plan").filter(|p| !p.is_empty()).cloned();
    let latest = pacer_projections::plan::latest(&state);
    let after = version("after")
        .or(latest.as_ref().map(|(_, v)| *v))
        .unwrap_or(1);
    let before = version("before").unwrap_or(after.saturating_sub(1).max(1));
    let result = crate::plans::plan_diff(&state, plan.as_deref(), before, after);
    let plan_name = plan.or(latest.map(|(p, _)| p)).unwrap_or_default();
    drop(state);
    let (t, notes) = match result {
        Ok(x) => x,
        Err(e) => return bad_request(title, &c, &e),
    };
    let t = narrow(t, &q, &["rep", "month", "bucket"]);
    if let Some(r) = download(&t, &q, &format!("plan-diff-v{before}-v{after}")) {
        return r;
    }
    let f = Fmt::of(&g);
    let here = address("/finance/diff", &q);
    let value = |k: &str| q.get(k).cloned().unwrap_or_default();
    let body = html! {
        h1 { "Plan " (plan_name) ": version " (before) " → " (after) }
        (finance_nav("/finance/diff", &q, as_of.as_deref()))
        @for n in &notes { p { (n) } }
        form.choose method="get" action="/finance/diff" {
            input type="hidden" name="plan" value=(plan_name);
            input type="hidden" name="before" value=(before);
            input type="hidden" name="after" value=(after);
            @if let Some(a) = &as_of { input type="hidden" name="as_of" value=(a); }
            label { "Rep " input name="rep" value=(value("rep")); }
            label { "Month " input type="month" name="month" value=(value("month")); }
            label { "Bucket " input name="bucket" value=(value("bucket")) placeholder="total"; }
            button type="submit" { "Filter" }
        }
        (table_markup(&f, &t, "diff-table", &here, page_of(&q)))
    };
    respond(title, &c, &headers, body)
}

/// A month's table of finance: its page and what it says.
struct MonthTable {
    path: &'static str,
    title: &'static str,
    /// The table's id and the download's name (with the month).
    id: &'static str,
    file: &'static str,
    /// The columns the query's filters narrow.
    filters: &'static [&'static str],
    heading: &'static str,
    /// What the table shows; `{currency}` is the reporting currency's code.
    note: &'static str,
    build: fn(&pacer_projections::state::State, Month) -> Table,
}

/// `/finance/gap?month=&team=`: top-down plan vs the reps' commits vs the pipeline.
pub async fn gap(g: State<Arc<Gateway>>, method: Method, headers: HeaderMap, q: Q) -> Response {
    month_table(
        g,
        method,
        headers,
        q,
        &MonthTable {
            path: "/finance/gap",
            title: "Plan gap",
            id: "gap-table",
            file: "plan-gap",
            filters: &["team"],
            heading: "Top-down vs bottom-up",
            note: "The plan finance set, the reps' latest commits and the pipeline forecast (actual plus each open deal × its probability), in {currency}. TEAM lines sum their reps; ORG sums everyone.",
            build: crate::plans::gap_table,
        },
    )
    .await
}

/// `/finance/rollup?month=`: the organisation by team and by region.
pub async fn rollup(g: State<Arc<Gateway>>, method: Method, headers: HeaderMap, q: Q) -> Response {
    month_table(
        g,
        method,
        headers,
        q,
        &MonthTable {
            path: "/finance/rollup",
            title: "Roll-up",
            id: "rollup-table",
            file: "rollup",
            filters: &["level"],
            heading: "The organisation",
            note: "The total bucket by team, by region (each rep's team and region in that month) and for the whole organisation, in {currency}.",
            build: crate::plans::rollup,
        },
    )
    .await
}

async fn month_table(
    State(g): State<Arc<Gateway>>,
    method: Method,
    headers: HeaderMap,
    Query(q): Q,
    page: &MonthTable,
) -> Response {
    let (c, state, as_of) = match open(&g, &method, &headers, &q, page.path, page.title) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let month = match month_of(&q, &state) {
        Ok(m) => m,
        Err(e) => {
            drop(state);
            return bad_request(page.title, &c, &e);
        }
    };
    let t = (page.build)(&state, month);
    let currency = state.config().currency;
    drop(state);
    let t = narrow(t, &q, page.filters);
    if let Some(r) = download(&t, &q, &format!("{}-{month}", page.file)) {
        return r;
    }
    let f = Fmt::of(&g);
    let here = address(page.path, &q);
    // The team field, on a page that filters by team (empty: every team).
    let team = page
        .filters
        .contains(&"team")
        .then(|| q.get("team").map_or("", String::as_str));
    let body = html! {
        h1 { (page.heading) " · " (month.to_string()) }
        (finance_nav(page.path, &q, as_of.as_deref()))
        (month_team_form(page.path, &month, team, as_of.as_deref()))
        p { (page.note.replace("{currency}", currency.code())) }
        (table_markup(&f, &t, page.id, &here, page_of(&q)))
    };
    respond(page.title, &c, &headers, body)
}

fn month_team_form(path: &str, month: &Month, team: Option<&str>, as_of: Option<&str>) -> Markup {
    html! {
        form.choose method="get" action=(path) {
            @if let Some(a) = as_of { input type="hidden" name="as_of" value=(a); }
            label { "Month " input type="month" name="month" value=(month.to_string()); }
            @if let Some(t) = team {
                label { "Team " input name="team" value=(t); }
            }
            button type="submit" { "Show" }
        }
    }
}

/// The table as a file, when the query asks for one (`format=csv|xlsx`).
fn download(t: &crate::plans::Table, q: &BTreeMap<String, String>, name: &str) -> Option<Response> {
    let disposition = |ext: &str| format!("attachment; filename=\"{name}.{ext}\"");
    match q.get("format").map(String::as_str) {
        Some("csv") => {
            let header: Vec<&str> = t.header.iter().map(String::as_str).collect();
            let text = crate::output::csv_text(&header, &t.rows);
            Some(
                (
                    [
                        (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                        (header::CONTENT_DISPOSITION, disposition("csv")),
                    ],
                    text,
                )
                    .into_response(),
            )
        }
        Some("xlsx") => Some(match crate::xlsx::table_xlsx(t, "pacer") {
            Ok(bytes) => (
                [
                    (
                        header::CONTENT_TYPE,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                            .to_owned(),
                    ),
                    (header::CONTENT_DISPOSITION, disposition("xlsx")),
                ],
                bytes,
            )
                .into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        }),
        _ => None,
    }
}
