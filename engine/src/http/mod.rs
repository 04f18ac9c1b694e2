//! The HTTP side: the webhook endpoints CRMs call, and (wherever an engine runs in
//! the process: `pacer serve --http ADDR`, with or without NATS) the queries, the
//! live alert stream and the web app. The stateless `pacer gateway --nats URL --http
//! ADDR` serves the webhooks only.
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
//!
//! The files: `gateway` holds the shared [`Gateway`] and the webhook intake, `scope`
//! who calls and what they may see or do, `api` the JSON handlers, `subscriptions`
//! those of subscriptions and deliveries; the web pages are
//! [`crate::web`]. This file is the router and the server.

mod api;
pub(crate) mod gateway;
pub(crate) mod scope;
pub(crate) mod subscriptions;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::routing::{get, post};
use axum::Router;

use crate::webhook::Crm;
use api::{
    acknowledge, alert_stream, alerts, comp, config_reload, digest, dlq_drop, dlq_list, dlq_retry,
    dlq_show, health, log_in, log_out, me, metrics, report,
};

pub use api::redriven_json;
pub use gateway::{
    status_of, Accepted, Gateway, Live, Redriven, Rejected, Sink, Stores, REQUESTS_MAX,
};

/// The routes: webhooks always; with an engine's projections also the queries, the
/// live alert stream and the web app; `/healthz` and `/metrics`.
pub fn router(gateway: Arc<Gateway>) -> Router {
    let mut app = Router::new()
        .route("/v1/events", endpoint(Crm::Native))
        .route("/webhooks/hubspot", endpoint(Crm::Hubspot))
        .route("/webhooks/pipedrive", endpoint(Crm::Pipedrive))
        .route("/webhooks/salesforce", endpoint(Crm::Salesforce))
        .route("/healthz", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/login", post(log_in))
        .route("/v1/logout", post(log_out))
        .route("/v1/me", get(me))
        .route("/v1/dlq", get(dlq_list))
        .route("/v1/dlq/retry", post(dlq_retry))
        .route("/v1/dlq/drop", post(dlq_drop))
        .route("/v1/dlq/{id}", get(dlq_show))
        .route("/v1/config/reload", post(config_reload));
    if gateway.queries.is_some() {
        app = app
            .route("/v1/report", get(report))
            .route("/v1/alerts", get(alerts))
            .route("/v1/alerts/stream", get(alert_stream))
            .route("/v1/alerts/{id}/ack", post(acknowledge))
            .merge(crate::web::routes())
            .route("/v1/digest/{team}", get(digest))
            .route("/v1/comp", get(comp))
            .route(
                "/v1/subscriptions",
                get(subscriptions::list).post(subscriptions::add),
            )
            .route(
                "/v1/subscriptions/{id}",
                axum::routing::delete(subscriptions::remove),
            )
            .route("/v1/subscriptions/{id}/enable", post(subscriptions::enable))
            .route("/v1/deliveries", get(subscriptions::deliveries))
            .route("/v1/deliveries/retry", post(subscriptions::retry_failed))
            .route("/v1/deliveries/{id}/retry", post(subscriptions::retry_one));
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
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
        {
            eprintln!("pacer: the HTTP server on {bound} stopped: {e}");
        }
    });
    Ok((bound, task))
}

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
