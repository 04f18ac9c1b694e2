//! What an operator watches: Prometheus metrics (`/metrics`, text format from the
//! `prometheus-client` crate) and readiness (`/healthz`: ready only after the rebuild
//! and while the NATS connection is up).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_nats::connection::State as ConnectionState;
use async_nats::Client;
use axum::extract::State as AxumState;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::error::NatsError;

type Labels = Vec<(String, String)>;

/// Every metric `pacer serve` keeps.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub accepted: Counter,
    pub duplicates: Counter,
    pub rejected: Family<Labels, Counter>,
    pub batch_events: Histogram,
    pub flush_seconds: Histogram,
    pub consumer_pending: Gauge,
    /// 1 while this engine holds the engine lease (it consumes), 0 while it stands by.
    pub lease_held: Gauge,
    pub alerts: Family<Labels, Gauge>,
    pub alerts_published: Counter,
    /// Webhook requests by CRM and HTTP status.
    pub webhook_requests: Family<Labels, Counter>,
    /// Events made from webhooks, by CRM.
    pub webhook_events: Family<Labels, Counter>,
    /// Webhook items that map to no event, by CRM.
    pub webhook_ignored: Family<Labels, Counter>,
    /// Webhook messages seen before (CRM retries), by CRM.
    pub webhook_retried: Family<Labels, Counter>,
    /// Answers that left a deal waiting for its owner's mapping, by CRM.
    pub webhook_waiting: Family<Labels, Counter>,
    /// Deals waiting for their owner's mapping now, by CRM and reason.
    pub webhook_waiting_now: Family<Labels, Gauge>,
    /// Dead letters waiting, by CRM and reason.
    pub dlq_items: Family<Labels, Gauge>,
    /// Dead letters dropped to keep the store within `dlq.items_max`.
    pub dlq_dropped: Counter,
    /// Delivery attempts of subscribed alerts, by channel and outcome (`sent`,
    /// `retry`, `gone`, `refused`).
    pub delivery_attempts: Family<Labels, Counter>,
    /// Deliveries now, by state (`due`, `failed`).
    pub deliveries: Family<Labels, Gauge>,
    /// Deliveries given up or refused, by channel.
    pub deliveries_failed: Family<Labels, Counter>,
    /// How many dead letters wait, and since when the oldest (ms): for `/healthz`.
    dlq_waiting: Mutex<(i64, Option<i64>)>,
    /// The rebuild is done and the pipeline runs.
    pub ready: AtomicBool,
    /// Another engine holds the lease: this one stands by.
    pub standing_by: AtomicBool,
    client: Mutex<Option<Client>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let m = Metrics {
            registry: Mutex::new(Registry::with_prefix("pacer")),
            accepted: Counter::default(),
            duplicates: Counter::default(),
            rejected: Family::default(),
            batch_events: Histogram::new(exponential_buckets(1.0, 4.0, 9)),
            flush_seconds: Histogram::new(exponential_buckets(0.000_25, 2.0, 14)),
            consumer_pending: Gauge::default(),
            lease_held: Gauge::default(),
            alerts: Family::default(),
            alerts_published: Counter::default(),
            webhook_requests: Family::default(),
            webhook_events: Family::default(),
            webhook_ignored: Family::default(),
            webhook_retried: Family::default(),
            webhook_waiting: Family::default(),
            webhook_waiting_now: Family::default(),
            dlq_items: Family::default(),
            dlq_dropped: Counter::default(),
            delivery_attempts: Family::default(),
            deliveries: Family::default(),
            deliveries_failed: Family::default(),
            dlq_waiting: Mutex::new((0, None)),
            ready: AtomicBool::new(false),
            standing_by: AtomicBool::new(false),
            client: Mutex::new(None),
        };
        {
            let mut r = m.registry.lock().expect("not poisoned");
            r.register(
                "events_accepted",
                "Events appended to the log",
                m.accepted.clone(),
            );
            r.register(
                "events_duplicate",
                "Events whose event_id was already in the log",
                m.duplicates.clone(),
            );
            r.register(
                "events_rejected",
                "Events sent to the dead-letter stream, by reason",
                m.rejected.clone(),
            );
            r.register(
                "batch_events",
                "Messages per consumed batch",
                m.batch_events.clone(),
            );
            r.register(
                "flush_seconds",
                "Time to append and flush one batch",
                m.flush_seconds.clone(),
            );
            r.register(
                "consumer_pending",
                "Messages on the stream not yet delivered to the engine",
                m.consumer_pending.clone(),
            );
            r.register(
                "lease_held",
                "1 while this engine holds the engine lease and consumes, 0 while it stands by",
                m.lease_held.clone(),
            );
            r.register("alerts", "Alerts by rule and status", m.alerts.clone());
            r.register(
                "alerts_published",
                "Alert changes published to NATS",
                m.alerts_published.clone(),
            );
            r.register(
                "webhook_requests",
                "Webhook requests by CRM and HTTP status",
                m.webhook_requests.clone(),
            );
            r.register(
                "webhook_events",
                "Events made from webhook requests, by CRM",
                m.webhook_events.clone(),
            );
            r.register(
                "webhook_ignored",
                "Webhook items that map to no event, by CRM",
                m.webhook_ignored.clone(),
            );
            r.register(
                "webhook_retried",
                "Webhook messages seen before (CRM retries), by CRM",
                m.webhook_retried.clone(),
            );
            r.register(
                "webhook_answers_waiting",
                "Answers that left a deal waiting for its owner's mapping, by CRM",
                m.webhook_waiting.clone(),
            );
            r.register(
                "webhook_waiting",
                "Deals waiting now for their owner's mapping, by CRM and reason (pacer dlq list --waiting)",
                m.webhook_waiting_now.clone(),
            );
            r.register(
                "dlq_items",
                "Dead letters waiting for a retry or a drop, by CRM and reason",
                m.dlq_items.clone(),
            );
            r.register(
                "dlq_dropped",
                "Dead letters dropped, oldest first, to keep within dlq.items_max",
                m.dlq_dropped.clone(),
            );
            r.register(
                "delivery_attempts",
                "Attempts to deliver subscribed alerts and digests, by channel and outcome",
                m.delivery_attempts.clone(),
            );
            r.register(
                "deliveries",
                "Deliveries by state: due (waiting for an attempt) and failed (pacer deliveries list --state failed)",
                m.deliveries.clone(),
            );
            r.register(
                "deliveries_failed",
                "Deliveries given up or refused, by channel",
                m.deliveries_failed.clone(),
            );
        }
        m
    }

    /// Counts a rejection under its reason slug.
    pub fn rejected(&self, reason: &str) {
        self.rejected
            .get_or_create(&vec![("reason".to_owned(), reason.to_owned())])
            .inc();
    }

    /// Replaces the alert gauges with fresh counts by (rule, status).
    pub fn set_alerts(&self, counts: &BTreeMap<(String, String), i64>) {
        self.alerts.clear();
        for ((rule, status), n) in counts {
            self.alerts
                .get_or_create(&vec![
                    ("rule".to_owned(), rule.clone()),
                    ("status".to_owned(), status.clone()),
                ])
                .set(*n);
        }
    }

    /// Replaces the dead-letter gauges with fresh counts by (crm, reason), and notes
    /// since when the oldest waits (ms since the epoch).
    pub fn set_dlq(&self, counts: &BTreeMap<(String, String), i64>, oldest_ms: Option<i64>) {
        self.dlq_items.clear();
        for ((crm, reason), n) in counts {
            self.dlq_items
                .get_or_create(&vec![
                    ("crm".to_owned(), crm.clone()),
                    ("reason".to_owned(), reason.clone()),
                ])
                .set(*n);
        }
        *self.dlq_waiting.lock().expect("not poisoned") = (counts.values().sum(), oldest_ms);
    }

    /// The deals waiting now for an owner's mapping, by CRM
    /// (`pacer_webhook_waiting{crm,reason="owner_unmapped"}`).
    pub fn set_waiting(&self, by_crm: &BTreeMap<String, i64>) {
        self.webhook_waiting_now.clear();
        for (crm, n) in by_crm {
            self.webhook_waiting_now
                .get_or_create(&vec![
                    ("crm".to_owned(), crm.clone()),
                    ("reason".to_owned(), "owner_unmapped".to_owned()),
                ])
                .set(*n);
        }
    }

    /// What `/healthz` says besides readiness: how many dead letters wait.
    pub fn health_note(&self) -> String {
        let (n, oldest) = *self.dlq_waiting.lock().expect("not poisoned");
        match (n, oldest.and_then(chrono::DateTime::from_timestamp_millis)) {
            (0, _) => String::new(),
            (n, Some(t)) => format!(
                "dead letters waiting: {n}, the oldest since {} (pacer dlq list)\n",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            (n, None) => format!("dead letters waiting: {n} (pacer dlq list)\n"),
        }
    }

    /// The NATS client whose connection `/healthz` reports.
    pub fn set_client(&self, client: Client) {
        *self.client.lock().expect("not poisoned") = Some(client);
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry.lock().expect("not poisoned"))
            .expect("writing to a String cannot fail");
        out
    }

    /// `Ok` when ready, else why not.
    pub fn health(&self) -> Result<(), &'static str> {
        if self.standing_by.load(Ordering::SeqCst) {
            return Err("standing by: another engine holds the engine lease");
        }
        if !self.ready.load(Ordering::SeqCst) {
            return Err("rebuilding the projections");
        }
        match &*self.client.lock().expect("not poisoned") {
            Some(c) if c.connection_state() == ConnectionState::Connected => Ok(()),
            Some(_) => Err("NATS connection down"),
            // One-process mode: no broker to be connected to.
            None => Ok(()),
        }
    }
}

/// Serves `/metrics` and `/healthz` on `addr` until the process ends.
pub async fn serve_http(addr: &str, metrics: Arc<Metrics>) -> Result<(), NatsError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| NatsError::Http {
            addr: addr.to_owned(),
            reason: e.to_string(),
        })?;
    let app = Router::new()
        .route(
            "/metrics",
            get(|AxumState(m): AxumState<Arc<Metrics>>| async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    m.render(),
                )
            }),
        )
        .route(
            "/healthz",
            get(|AxumState(m): AxumState<Arc<Metrics>>| async move {
                match m.health() {
                    Ok(()) => (StatusCode::OK, format!("ready\n{}", m.health_note())),
                    Err(why) => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("not ready: {why}\n"),
                    ),
                }
            }),
        )
        .with_state(metrics);
    let addr = addr.to_owned();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("pacer serve: the metrics server on {addr} stopped: {e}");
        }
    });
    Ok(())
}
