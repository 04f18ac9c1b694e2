//! The HTTP side: the webhook endpoints CRMs call, and (one-process mode) the
//! queries and the live alert stream. Served by `pacer serve --http ADDR` and by the
//! stateless `pacer gateway --nats URL --http ADDR`.
//!
//! A webhook request goes: content type → body (at most `webhooks.body_bytes_max`)
//! → authentication on the raw bytes → the CRM's parser ([`crate::webhook`]) → the
//! deal mirror and [`crate::webhook::deal::reconcile`] → decode of every resulting
//! event → the [`Sink`] (the log and its flush, or JetStream and its PubAcks) → the
//! deal records, compare-and-set → 2xx. Any failure before the sink has made the
//! events durable answers with an error status and stores nothing that a retry
//! would not recompute identically (event ids are deterministic), so a CRM's retry,
//! minutes or days later, never doubles an event.
//!
//! | status | when |
//! | --- | --- |
//! | 200 | durable (Salesforce: the SOAP `<Ack>true</Ack>`) |
//! | 400 | a malformed body or event; the JSON error names the field |
//! | 401 | a bad or stale signature, wrong credentials, another Salesforce org |
//! | 404 | a CRM without a `[webhooks.<crm>]` section |
//! | 413 | over the body limit |
//! | 415 | the wrong content type |
//! | 503 | NATS (or the mirror bucket) unreachable: `Retry-After`, and retry |

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures::StreamExt;
use pacer_projections::event::Event;
use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::local::{Local, SubmitError};
use crate::nats::metrics::Metrics;
use crate::nats::publish::{event_message, publish_all};
use crate::nats::query::{answer_params, QueryContext};
use crate::nats::Subjects;
use crate::webhook::mirror::{Mirror, MirrorError, Version};
use crate::webhook::native::Format;
use crate::webhook::{
    apply, auth, deal_keys, hubspot, native, pipedrive, salesforce, Crm, DealFacts, DealKey,
    DealRecord, OrgContext, Parsed, WebhookError,
};
use crate::wire::decode_value;

/// How long a request waits for JetStream to acknowledge its events before it
/// answers 503.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// What the CRM is told to wait before retrying after a 503.
const RETRY_AFTER_S: u64 = 10;

/// How often a request recomputes when another request changed one of its deals
/// meanwhile, before it answers 503. Each losing attempt means another request's
/// write won (a claim or its settling, two per request), so with at most
/// [`REQUESTS_MAX`] requests at once this many attempts outlast every request that
/// was in flight; only a stream of new ones about the same deals gets the 503. (Five
/// attempts were too few: eight racing requests on a busy machine saw a 503.)
const CONFLICT_RETRIES_MAX: usize = 2 * REQUESTS_MAX + 1;

/// How long a request's body may take to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of a body over the limit is read and thrown away so that its client
/// can read the 413 (see [`read_body`]).
const DRAIN_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// Webhook requests handled at once; more wait for a turn.
pub const REQUESTS_MAX: usize = 64;

/// In-flight publishes per request (NATS mode).
const IN_FLIGHT_MAX: usize = 256;

/// Where a request's events are made durable.
// One per process, never per message: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum Sink {
    /// The log of this process (one-process mode).
    Local(Arc<Local>),
    /// JetStream (`pacer serve --nats`, `pacer gateway`); the engine consumes them.
    Nats {
        js: jetstream::Context,
        subjects: Subjects,
    },
}

/// Everything a request needs.
pub struct Gateway {
    pub config: Config,
    pub mirror: Mirror,
    pub sink: Sink,
    pub metrics: Arc<Metrics>,
    /// The wall clock in ms, for signature timestamps.
    pub now_ms: fn() -> i64,
    /// Turns true when the process stops: ends the live streams.
    pub stop: tokio::sync::watch::Receiver<bool>,
    /// At most [`REQUESTS_MAX`] webhook requests at once.
    permits: tokio::sync::Semaphore,
    /// What the query routes read (one-process mode).
    queries: Option<QueryContext>,
}

impl Gateway {
    pub fn new(
        config: Config,
        mirror: Mirror,
        sink: Sink,
        metrics: Arc<Metrics>,
        now_ms: fn() -> i64,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        let queries = match &sink {
            Sink::Local(local) => Some(QueryContext {
                state: Arc::clone(local.state()),
                log: local.reader(),
            }),
            Sink::Nats { .. } => None,
        };
        Gateway {
            queries,
            config,
            mirror,
            sink,
            metrics,
            now_ms,
            stop,
            permits: tokio::sync::Semaphore::new(REQUESTS_MAX),
        }
    }
}

/// What a webhook request came to (the 200 body).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Events the request made (stored, or acknowledged by JetStream).
    pub events: usize,
    /// Of them, already in the log (one-process mode; with NATS the engine counts).
    pub duplicates: usize,
    /// Messages seen before (a CRM retry), which changed nothing.
    pub retried: usize,
    /// Items that map to no event.
    pub ignored: usize,
}

/// The routes: webhooks always; with a local engine also the queries and the live
/// alert stream; `/healthz` and `/metrics`.
pub fn router(gateway: Arc<Gateway>) -> Router {
    let mut app = Router::new()
        .route("/v1/events", endpoint(Crm::Native))
        .route("/webhooks/hubspot", endpoint(Crm::Hubspot))
        .route("/webhooks/pipedrive", endpoint(Crm::Pipedrive))
        .route("/webhooks/salesforce", endpoint(Crm::Salesforce))
        .route("/healthz", get(health))
        .route("/metrics", get(metrics));
    if gateway.queries.is_some() {
        app = app
            .route("/v1/report", get(report))
            .route("/v1/alerts", get(alerts))
            .route("/v1/alerts/stream", get(alert_stream))
            .route("/v1/digest/{team}", get(digest));
    }
    // The handlers read the raw body themselves, within `body_bytes_max`.
    app.with_state(gateway)
}

/// Serves the router on `addr` until the gateway's `stop` turns true; then finishes the requests
/// in hand. Returns the bound address and the server's task.
pub async fn serve(
    addr: &str,
    gateway: Arc<Gateway>,
) -> Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>), std::io::Error> {
    let mut stop = gateway.stop.clone();
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = router(gateway);
    let task = tokio::spawn(async move {
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
        {
            eprintln!("pacer: the HTTP server on {bound} stopped: {e}");
        }
    });
    Ok((bound, task))
}

type Req = (Method, Uri, HeaderMap, Body);

/// The `POST` route of one CRM's endpoint.
fn endpoint(crm: Crm) -> axum::routing::MethodRouter<Arc<Gateway>> {
    post(
        move |State(g): State<Arc<Gateway>>,
              method: Method,
              uri: Uri,
              headers: HeaderMap,
              body: Body| async move {
            let Ok(_permit) = g.permits.acquire().await else {
                unreachable!("the semaphore is never closed");
            };
            let result = g.webhook(crm, (method, uri, headers, body)).await;
            g.respond(crm, result)
        },
    )
}

impl Gateway {
    fn org(&self) -> OrgContext {
        OrgContext {
            currency: self.config.org.currency,
            timezone: self.config.org.timezone,
        }
    }

    /// One webhook request, checked, parsed and made durable.
    async fn webhook(
        &self,
        crm: Crm,
        (method, uri, headers, body): Req,
    ) -> Result<Accepted, WebhookError> {
        let hooks = &self.config.webhooks;
        let content_type = auth::header(&headers, "content-type")
            .unwrap_or("")
            .to_owned();
        let mime = crate::webhook::mime_of(&content_type);
        let expect = |ok: bool, expected: &'static str| {
            if ok {
                Ok(())
            } else {
                Err(WebhookError::UnsupportedMediaType {
                    found: content_type.clone(),
                    expected,
                })
            }
        };
        let format = match crm {
            Crm::Native => Some(Format::of(&content_type).ok_or_else(|| {
                WebhookError::UnsupportedMediaType {
                    found: content_type.clone(),
                    expected: "application/json or application/x-ndjson",
                }
            })?),
            Crm::Hubspot | Crm::Pipedrive => {
                expect(mime == "application/json", "application/json")?;
                None
            }
            Crm::Salesforce => {
                expect(
                    mime == "text/xml" || mime == "application/soap+xml",
                    "text/xml",
                )?;
                None
            }
        };
        let body = read_body(&headers, body, hooks.body_bytes_max).await?;
        let now_ms = (self.now_ms)();
        let parsed = match crm {
            Crm::Native => {
                let cfg = &hooks.native;
                if !cfg.is_open_to_anyone() {
                    return Err(WebhookError::Unauthorized(
                        "no [webhooks.native] secrets or bearer_tokens are configured".into(),
                    ));
                }
                if headers.contains_key("webhook-signature") || cfg.bearer_tokens.is_empty() {
                    auth::verify_standard_webhook(&cfg.secrets, &headers, &body, now_ms / 1000)?;
                } else {
                    auth::verify_bearer(&cfg.bearer_tokens, &headers)?;
                }
                native::parse(format.unwrap_or(Format::Json), &body)?
            }
            Crm::Hubspot => {
                let cfg = hooks
                    .hubspot
                    .as_ref()
                    .ok_or(WebhookError::NotConfigured("hubspot"))?;
                let path = uri.path_and_query().map_or("/", |p| p.as_str());
                hubspot::verify(
                    cfg,
                    method.as_str(),
                    path,
                    auth::header(&headers, "host"),
                    &headers,
                    &body,
                    now_ms,
                )?;
                hubspot::parse(&body)?
            }
            Crm::Pipedrive => {
                let cfg = hooks
                    .pipedrive
                    .as_ref()
                    .ok_or(WebhookError::NotConfigured("pipedrive"))?;
                auth::verify_basic(&cfg.user, &cfg.password, &headers)?;
                pipedrive::parse(cfg, &body, &self.org())?
            }
            Crm::Salesforce => {
                let cfg = hooks
                    .salesforce
                    .as_ref()
                    .ok_or(WebhookError::NotConfigured("salesforce"))?;
                if let Some(token) = &cfg.endpoint_token {
                    let given = uri
                        .query()
                        .unwrap_or("")
                        .split('&')
                        .find_map(|kv| kv.strip_prefix("token="))
                        .unwrap_or("");
                    if !auth::constant_time_eq(given.as_bytes(), token.as_bytes()) {
                        return Err(WebhookError::Unauthorized(
                            "the endpoint URL's token is not the configured endpoint_token".into(),
                        ));
                    }
                }
                salesforce::parse(cfg, &body, now_ms)?
            }
        };
        self.accept(crm, &parsed).await
    }

    /// Reads a deal's facts through its CRM's mapping.
    fn facts(&self, crm: Crm, record: &DealRecord) -> DealFacts {
        let hooks = &self.config.webhooks;
        let org = self.org();
        match crm {
            Crm::Hubspot => hooks
                .hubspot
                .as_ref()
                .map(|c| hubspot::facts(c, record, &org)),
            Crm::Pipedrive => hooks
                .pipedrive
                .as_ref()
                .map(|c| pipedrive::facts(c, record, &org)),
            Crm::Salesforce => hooks
                .salesforce
                .as_ref()
                .map(|c| salesforce::facts(c, record, &org)),
            Crm::Native => None,
        }
        .unwrap_or_default()
    }

    /// Turns the changes into events and makes them durable, claim first: each
    /// changed deal's record is stored (compare-and-set) with its new `told` and
    /// the events as `pending`, then the events are made durable, then `pending` is
    /// cleared. A request that loses the compare-and-set has published nothing and
    /// recomputes; one that fails after its claim leaves `pending` for the next
    /// request about the deal (a retry, or any other) to make durable first, under
    /// the same ids. So no event is told twice under two ids, and none is lost.
    async fn accept(&self, crm: Crm, parsed: &Parsed) -> Result<Accepted, WebhookError> {
        'attempt: for _ in 0..CONFLICT_RETRIES_MAX {
            let mut records: BTreeMap<DealKey, DealRecord> = BTreeMap::new();
            let mut versions: BTreeMap<DealKey, Version> = BTreeMap::new();
            for key in deal_keys(parsed) {
                let (record, version) = self.mirror.load(&key).await.map_err(mirror_error)?;
                records.insert(key.clone(), record);
                versions.insert(key, version);
            }
            let applied = apply(
                parsed,
                &mut records,
                |r| self.facts(crm, r),
                self.config.org.currency,
            )?;
            let events = applied.events;
            let mut accepted = Accepted {
                ignored: parsed.ignored,
                retried: applied.retried,
                ..Default::default()
            };
            let mut decoded = Vec::with_capacity(events.len());
            for (label, v) in &events {
                let ev = decode_value(v, &self.config.limits).map_err(|r| {
                    WebhookError::bad(format!("{label}.{}", r.field), r.reason.clone())
                })?;
                decoded.push(ev);
            }
            // Rules that need the log (one-process mode) are checked before the claim,
            // so a refused request leaves nothing pending.
            if let Sink::Local(local) = &self.sink {
                let local = Arc::clone(local);
                let checked = tokio::task::block_in_place(|| local.check(&decoded));
                self.refused(checked, &events)?;
            }
            // The claim.
            let mut claimed: Vec<(DealKey, Version)> = Vec::new();
            for key in applied.touched {
                let version = versions.get(&key).expect("loaded above");
                match self
                    .mirror
                    .store(&key, &records[&key], version)
                    .await
                    .map_err(mirror_error)?
                {
                    Some(v) => claimed.push((key, v)),
                    // Another request got there first: nothing of ours is out yet.
                    // Let it finish before recomputing.
                    None => {
                        tokio::task::yield_now().await;
                        continue 'attempt;
                    }
                }
            }
            accepted.events = decoded.len();
            accepted.duplicates = self.store(decoded, &events).await?;
            // Durable: the claims are settled.
            for (key, version) in claimed {
                let record = records.get_mut(&key).expect("claimed above");
                record.pending.clear();
                // Lost to a newer writer: it made our pending durable again (same
                // ids) and cleared or re-claimed it; nothing to do.
                let _ = self
                    .mirror
                    .store(&key, record, &version)
                    .await
                    .map_err(mirror_error)?;
            }
            self.mirror.flush().await.map_err(mirror_error)?;
            return Ok(accepted);
        }
        Err(WebhookError::Unavailable(
            "the deals of this request kept changing under other requests".into(),
        ))
    }

    /// A refusal of the local engine as the request's error.
    fn refused(
        &self,
        result: Result<(), SubmitError>,
        events: &[(String, Value)],
    ) -> Result<(), WebhookError> {
        match result {
            Ok(()) => Ok(()),
            Err(SubmitError::Rejected { index, rejection }) => Err(WebhookError::bad(
                format!("{}.{}", events[index].0, rejection.field),
                rejection.reason,
            )),
            Err(SubmitError::Log(e)) => Err(WebhookError::Internal(e.to_string())),
        }
    }

    /// Makes the events durable; returns how many were duplicates (when known).
    async fn store(
        &self,
        decoded: Vec<Event>,
        events: &[(String, Value)],
    ) -> Result<usize, WebhookError> {
        if decoded.is_empty() {
            return Ok(0);
        }
        match &self.sink {
            Sink::Local(local) => {
                let local = Arc::clone(local);
                match tokio::task::block_in_place(|| local.submit(decoded)) {
                    Ok(s) => Ok(s.duplicates),
                    Err(e) => self.refused(Err(e), events).map(|()| 0),
                }
            }
            Sink::Nats { js, subjects } => {
                let messages: Vec<_> = events
                    .iter()
                    .map(|(_, v)| {
                        let bytes = serde_json::to_vec(v).expect("JSON values serialise");
                        event_message(subjects, &bytes)
                    })
                    .collect();
                let publish = publish_all(js, futures::stream::iter(messages), IN_FLIGHT_MAX);
                match tokio::time::timeout(PUBLISH_TIMEOUT, publish).await {
                    Ok(Ok(stats)) => Ok(stats.duplicates as usize),
                    Ok(Err(e)) => Err(WebhookError::Unavailable(e.to_string())),
                    Err(_) => Err(WebhookError::Unavailable(format!(
                        "JetStream did not acknowledge the events within {} s",
                        PUBLISH_TIMEOUT.as_secs()
                    ))),
                }
            }
        }
    }

    /// The response for a webhook request, counted.
    fn respond(&self, crm: Crm, result: Result<Accepted, WebhookError>) -> Response {
        let status = match &result {
            Ok(_) => StatusCode::OK,
            Err(e) => status_of(e),
        };
        let m = &self.metrics;
        m.webhook_requests
            .get_or_create(&vec![
                ("crm".to_owned(), crm.as_str().to_owned()),
                ("status".to_owned(), status.as_u16().to_string()),
            ])
            .inc();
        if let Ok(a) = &result {
            let by_crm = vec![("crm".to_owned(), crm.as_str().to_owned())];
            m.webhook_events
                .get_or_create(&by_crm)
                .inc_by(a.events as u64);
            m.webhook_ignored
                .get_or_create(&by_crm)
                .inc_by(a.ignored as u64);
            m.webhook_retried
                .get_or_create(&by_crm)
                .inc_by(a.retried as u64);
        }
        if let Err(e) = &result {
            if status.is_server_error() {
                eprintln!("pacer: {} webhook: {e}", crm.as_str());
            }
        }
        let mut response = match (crm, result) {
            (Crm::Salesforce, Ok(_)) => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
                salesforce::ACK_RESPONSE,
            )
                .into_response(),
            (Crm::Salesforce, Err(e)) => (
                status,
                [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
                salesforce::fault_response(&e.to_string()),
            )
                .into_response(),
            (_, Ok(a)) => (
                StatusCode::OK,
                axum::Json(json!({
                    "events": a.events, "duplicates": a.duplicates,
                    "retried": a.retried, "ignored": a.ignored,
                })),
            )
                .into_response(),
            (_, Err(e)) => {
                let mut body = json!({"error": e.to_string()});
                if let WebhookError::BadRequest { field, .. } = &e {
                    body["field"] = json!(field);
                }
                (status, axum::Json(body)).into_response()
            }
        };
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                RETRY_AFTER_S
                    .to_string()
                    .parse()
                    .expect("digits are a header value"),
            );
        }
        response
    }
}

/// The HTTP status of a refusal.
pub fn status_of(e: &WebhookError) -> StatusCode {
    match e {
        WebhookError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        WebhookError::BadRequest { .. } => StatusCode::BAD_REQUEST,
        WebhookError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        WebhookError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        WebhookError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
        WebhookError::NotConfigured(_) => StatusCode::NOT_FOUND,
        WebhookError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        WebhookError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn mirror_error(e: MirrorError) -> WebhookError {
    match e {
        MirrorError::Unavailable { .. } => WebhookError::Unavailable(e.to_string()),
        _ => WebhookError::Internal(e.to_string()),
    }
}

/// The body, at most `limit` bytes; a body that does not arrive within
/// [`BODY_TIMEOUT`] is refused too.
///
/// A body over the limit is read to its end and thrown away, up to
/// [`DRAIN_BYTES_MAX`], before the 413 goes out: a client that sends its whole body
/// before reading the answer (most do) would otherwise meet a reset connection
/// instead of the status. A client that asked `Expect: 100-continue`, or declared a
/// length past the drain bound, is answered at once, before it sends the body.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<bytes::Bytes, WebhookError> {
    let limit_bytes = limit as u64;
    let too_large = || WebhookError::TooLarge { limit_bytes: limit };
    let declared = auth::header(headers, "content-length").and_then(|v| v.parse::<u64>().ok());
    let expects_continue =
        auth::header(headers, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if declared.is_some_and(|n| n > limit_bytes && (expects_continue || n > DRAIN_BYTES_MAX)) {
        return Err(too_large());
    }
    let deadline = tokio::time::Instant::now() + BODY_TIMEOUT;
    // Grown as the body arrives, not sized by what the client declares.
    let mut taken = bytes::BytesMut::new();
    let mut seen_bytes: u64 = 0;
    let mut stream = body.into_data_stream();
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            // Past the limit already: the answer is 413 whether the rest came or not.
            Err(_) if seen_bytes > limit_bytes => return Err(too_large()),
            Err(_) => return Err(WebhookError::Timeout(BODY_TIMEOUT.as_secs())),
            Ok(None) => break,
            Ok(Some(Err(_))) if seen_bytes > limit_bytes => return Err(too_large()),
            // A client gone, bad chunking.
            Ok(Some(Err(e))) => {
                return Err(WebhookError::bad("body", format!("could not be read: {e}")))
            }
            Ok(Some(Ok(chunk))) => {
                seen_bytes += chunk.len() as u64;
                if seen_bytes <= limit_bytes {
                    taken.extend_from_slice(&chunk);
                } else if expects_continue || seen_bytes > DRAIN_BYTES_MAX {
                    return Err(too_large());
                }
            }
        }
    }
    if seen_bytes > limit_bytes {
        return Err(too_large());
    }
    Ok(taken.freeze())
}

async fn health(State(g): State<Arc<Gateway>>) -> Response {
    match g.metrics.health() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(g): State<Arc<Gateway>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        g.metrics.render(),
    )
        .into_response()
}

fn local(g: &Gateway) -> &Arc<Local> {
    match &g.sink {
        Sink::Local(l) => l,
        Sink::Nats { .. } => unreachable!("query routes exist only with a local engine"),
    }
}

/// A query's answer over HTTP: the CLI's JSON, or 400 with `{"error"}`.
fn query(g: &Gateway, name: &str, params: Map<String, Value>) -> Response {
    let Some(ctx) = &g.queries else {
        unreachable!("query routes exist only with a local engine");
    };
    // Reading the projections can wait for a flush: off the async workers.
    let out = tokio::task::block_in_place(|| answer_params(name, &params, ctx));
    let status = if out.get("error").is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    (status, axum::Json(out)).into_response()
}

fn params(q: BTreeMap<String, String>) -> Map<String, Value> {
    q.into_iter().map(|(k, v)| (k, Value::String(v))).collect()
}

/// `GET /v1/report?month=&rep=&team=&bucket=&view=`.
async fn report(
    State(g): State<Arc<Gateway>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    query(&g, "report", params(q))
}

/// `GET /v1/alerts?status=&team=&manager=&rep=`.
async fn alerts(
    State(g): State<Arc<Gateway>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    query(&g, "alerts", params(q))
}

/// `GET /v1/digest/<team>?week=`.
async fn digest(
    State(g): State<Arc<Gateway>>,
    Path(team): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let mut p = params(q);
    p.insert("team".into(), Value::String(team));
    query(&g, "digest", p)
}

/// `GET /v1/alerts/stream`: server-sent events, one `alert` event per alert change
/// (`id` its message id, `data` its JSON); `lagged` says how many a slow reader
/// missed (read them with `GET /v1/alerts`).
async fn alert_stream(
    State(g): State<Arc<Gateway>>,
) -> Sse<impl futures::Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = local(&g).subscribe();
    let mut stop = g.stop.clone();
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let stream = tokio_stream::wrappers::BroadcastStream::new(rx).map(|item| {
        Ok(match item {
            Ok(msg) => SseEvent::default()
                .event("alert")
                .id(msg.id)
                .data(String::from_utf8_lossy(&msg.json)),
            Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                SseEvent::default().event("lagged").data(n.to_string())
            }
        })
    });
    // Ends with the process, so a graceful stop does not wait for the readers.
    Sse::new(stream.take_until(stopped)).keep_alive(KeepAlive::default())
}
