//! The shared state of the HTTP side and the webhook intake: the [`Gateway`] every
//! handler reads (the configuration, the deal mirror, the [`Sink`], the dead letters,
//! who may call, and the engine's projections when the process has them), and what a
//! webhook request goes through on its way to durable events (content type, body,
//! authentication, the CRM's parser, the mirror's compare-and-set, the sink, the
//! answer), with the retry and drop of dead letters and the operator's system alerts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use pacer_projections::event::Event;
use serde_json::{json, Value};

use crate::access::{audit, Access};
use crate::config::Config;
use crate::dlq::{DeadLetter, DlqStore, ENGINE_CRM};
use crate::local::{Local, SubmitError};
use crate::metrics::Metrics;
use crate::nats::publish::{event_message, publish_all};
use crate::nats::query::QueryContext;
use crate::nats::Subjects;
use crate::webhook::mirror::{Mirror, MirrorError, Version, WaitingDeal, RECORD_BYTES_MAX};
use crate::webhook::native::Format;
use crate::webhook::{
    apply, auth, deal_keys, hubspot, native, pipedrive, salesforce, Crm, DealFacts, DealKey,
    DealRecord, ItemError, OrgContext, Parsed, WebhookError,
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

/// Why a reload of the configuration file did not do all it should.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("the server was started without a configuration file (--config): nothing to reload")]
    NoFile,
    /// Nothing changed.
    #[error("{path} not reloaded: {reason}")]
    NotLoaded { path: String, reason: String },
    /// The new `[webhooks]` is in force; what waited is retried at the next reload
    /// or restart.
    #[error("[webhooks] is in force, but what waited was not retried: {0}")]
    NotRetried(WebhookError),
}

/// Everything a request needs.
pub struct Gateway {
    pub config: Config,
    /// `[webhooks]` as in force: the configuration's at start, replaced by
    /// [`Gateway::reload_webhooks`] (SIGHUP) without a restart.
    hooks: std::sync::RwLock<Arc<crate::config::WebhooksConfig>>,
    /// The configuration file the process was started with, read again by
    /// [`Gateway::reload_config_file`] (`None`: the defaults; nothing to reload).
    pub config_path: Option<std::path::PathBuf>,
    /// Subscriptions and deliveries (`/v1/subscriptions`, `/v1/deliveries`), where an
    /// engine runs in the process.
    pub deliverer: Option<Arc<crate::deliver::Deliverer>>,
    pub mirror: Mirror,
    pub sink: Sink,
    /// Where refused items wait for a retry.
    pub dlq: DlqStore,
    /// Who may see what: users, tokens, sessions.
    pub access: Arc<Access>,
    pub metrics: Arc<Metrics>,
    /// The wall clock in ms, for signature timestamps.
    pub now_ms: fn() -> i64,
    /// Turns true when the process stops: ends the live streams.
    pub stop: tokio::sync::watch::Receiver<bool>,
    /// At most [`REQUESTS_MAX`] webhook requests at once.
    pub(super) permits: tokio::sync::Semaphore,
    /// What the query routes and the web app read: the engine's projections and log
    /// (one process, or `pacer serve` with NATS; not the stateless `pacer gateway`).
    pub(crate) queries: Option<QueryContext>,
    /// The live alert changes, for `/v1/alerts/stream` and the web app.
    pub(crate) live: Option<Live>,
    /// The last "as recorded at" replay of the finance pages: (the moment, when the
    /// replay was made in ms, the projections), so paging through a replayed view
    /// does not read the whole log again for every page.
    pub(crate) as_of_replay: std::sync::Mutex<
        Option<(
            pacer_projections::time::Timestamp,
            i64,
            Arc<pacer_projections::model::Model>,
        )>,
    >,
}

/// The live feed of alert changes and the subjects they are named by.
#[derive(Clone)]
pub struct Live {
    pub alerts: tokio::sync::broadcast::Sender<crate::local::AlertMessage>,
    pub subjects: Subjects,
}

impl Gateway {
    pub fn new(
        config: Config,
        sink: Sink,
        stores: Stores,
        metrics: Arc<Metrics>,
        now_ms: fn() -> i64,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        let (queries, live) = match &sink {
            Sink::Local(local) => (
                Some(QueryContext::new(Arc::clone(local.state()), local.reader())),
                Some(Live {
                    alerts: local.live(),
                    subjects: local.subjects().clone(),
                }),
            ),
            Sink::Nats { .. } => (None, None),
        };
        Gateway {
            queries,
            live,
            as_of_replay: std::sync::Mutex::new(None),
            hooks: std::sync::RwLock::new(Arc::new(config.webhooks.clone())),
            config_path: None,
            deliverer: stores.deliverer,
            config,
            mirror: stores.mirror,
            sink,
            dlq: stores.dlq,
            access: stores.access,
            metrics,
            now_ms,
            stop,
            permits: tokio::sync::Semaphore::new(REQUESTS_MAX),
        }
    }

    /// Adds the engine's projections and live alert feed to a gateway that publishes
    /// to JetStream (`pacer serve --nats --http`): the queries, the live stream and the
    /// web app are served too, from the engine in the same process.
    pub fn with_reads(mut self, queries: QueryContext, live: Live) -> Self {
        self.queries = Some(queries);
        self.live = Some(live);
        self
    }
}

/// What a gateway keeps besides the events: the deal mirror, the dead letters, and
/// who may call it.
pub struct Stores {
    pub mirror: Mirror,
    pub dlq: DlqStore,
    pub access: Arc<Access>,
    /// Subscriptions and deliveries, where an engine runs in the process.
    pub deliverer: Option<Arc<crate::deliver::Deliverer>>,
}

/// What a webhook request came to (the 200 body).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Events the request made (stored, or acknowledged by JetStream).
    pub events: usize,
    /// Of them, already in the log (one-process mode; with NATS the engine counts).
    pub duplicates: usize,
    /// Messages seen before (a CRM retry), which changed nothing.
    pub retried: usize,
    /// Items that map to no event.
    pub ignored: usize,
    /// Items refused on their own, now in the dead-letter store.
    pub rejected: Vec<Rejected>,
    /// Deals kept in the mirror whose events wait (their owner maps to no rep yet,
    /// within `[webhooks] unmapped_owner_grace_s`): (deal, why).
    pub waiting: Vec<(String, String)>,
}

/// An item refused on its own: in the 200 body as `{index, field, error, dlq_id}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub error: ItemError,
    /// Its dead letter.
    pub dlq_id: String,
}

/// A request judged: what it comes to, and what is wrong with it.
struct Judged {
    records: BTreeMap<DealKey, DealRecord>,
    applied: crate::webhook::Applied,
    decoded: Vec<Event>,
    blames: Vec<Blame>,
    /// Deals whose owner maps to no rep yet, within the grace (or looked at
    /// again): as the mirror's waiting index keeps them.
    waiting: Vec<(DealKey, WaitingDeal)>,
}

/// Something wrong, and the items it could come from (all of a deal's, for an
/// event about the deal).
struct Blame {
    items: Vec<usize>,
    /// The deal, when it is about one.
    key: Option<DealKey>,
    error: ItemError,
}

/// What a retry of dead letters came to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Redriven {
    /// Letters taken this time, now removed from the store.
    pub succeeded: Vec<String>,
    /// Letters refused again: id and the error of this attempt.
    pub failed: Vec<(String, String)>,
    /// Events made by the letters taken (some may have been in the log already).
    pub events: usize,
}

pub(super) type Req = (Method, Uri, HeaderMap, Body);

impl Gateway {
    fn org(&self) -> OrgContext {
        OrgContext {
            currency: self.config.org.currency,
            timezone: self.config.org.timezone,
        }
    }

    /// One webhook request, checked, parsed and made durable.
    pub(super) async fn webhook(
        &self,
        crm: Crm,
        (method, uri, headers, body): Req,
    ) -> Result<Accepted, WebhookError> {
        let hooks = &*self.hooks();
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
        self.authenticate(crm, &method, &uri, &headers, &body, now_ms)?;
        let parsed = self.parse(crm, format, &body, now_ms)?;
        // CRMs take per item; the native endpoint is all or nothing unless asked.
        let partial = crm != Crm::Native
            || uri
                .query()
                .unwrap_or("")
                .split('&')
                .any(|kv| kv == "partial=true" || kv == "partial=1");
        let (mut accepted, refused) = self.accept(crm, &parsed, partial).await?;
        if !refused.is_empty() {
            let request_id = ["webhook-id", "x-request-id", "x-hubspot-request-id"]
                .iter()
                .find_map(|h| auth::header(&headers, h))
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    DeadLetter::id_of("request", &String::from_utf8_lossy(&body))
                        .replacen("dl-", "req-", 1)
                });
            accepted.rejected = self
                .dead_letter(crm, format, &body, &request_id, refused, now_ms)
                .await?;
        }
        Ok(accepted)
    }

    /// Checks the sender: a signature, a token, credentials, or the endpoint token.
    fn authenticate(
        &self,
        crm: Crm,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        now_ms: i64,
    ) -> Result<(), WebhookError> {
        let hooks = &*self.hooks();
        match crm {
            Crm::Native => {
                let cfg = &hooks.native;
                let bearer = auth::header(headers, "authorization")
                    .and_then(|a| a.strip_prefix("Bearer "))
                    .map(str::trim);
                if let Some(token) = bearer.filter(|t| t.starts_with("pacer_")) {
                    let users = self.access.users().map_err(|_| {
                        WebhookError::Internal("the users file cannot be read".into())
                    })?;
                    return match users.by_token(token, now_ms).map(|u| u.role) {
                        Some(role) if role.writes_events() => Ok(()),
                        Some(role) => Err(WebhookError::Unauthorized(format!(
                            "a {} user may not send events",
                            role.as_str()
                        ))),
                        None => Err(WebhookError::Unauthorized(
                            "the token is not valid (unknown, revoked or expired)".into(),
                        )),
                    };
                }
                if !cfg.is_open_to_anyone() {
                    return Err(WebhookError::Unauthorized(
                        "no [webhooks.native] secrets or bearer_tokens are configured".into(),
                    ));
                }
                if headers.contains_key("webhook-signature") || cfg.bearer_tokens.is_empty() {
                    auth::verify_standard_webhook(&cfg.secrets, headers, body, now_ms / 1000)
                } else if headers.contains_key("authorization") || cfg.secrets.is_empty() {
                    auth::verify_bearer(&cfg.bearer_tokens, headers)
                } else {
                    Err(WebhookError::Unauthorized(auth::missing_credentials(
                        headers,
                    )))
                }
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
                    auth::header(headers, "host"),
                    headers,
                    body,
                    now_ms,
                )
            }
            Crm::Pipedrive => {
                let cfg = hooks
                    .pipedrive
                    .as_ref()
                    .ok_or(WebhookError::NotConfigured("pipedrive"))?;
                auth::verify_basic(&cfg.user, &cfg.password, headers)
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
                Ok(())
            }
        }
    }

    /// A body through its CRM's parser, with the current configuration.
    fn parse(
        &self,
        crm: Crm,
        format: Option<Format>,
        body: &[u8],
        now_ms: i64,
    ) -> Result<Parsed, WebhookError> {
        let hooks = &*self.hooks();
        match crm {
            Crm::Native => native::parse(format.unwrap_or(Format::Json), body),
            Crm::Hubspot => hubspot::parse(body),
            Crm::Pipedrive => {
                let cfg = hooks
                    .pipedrive
                    .as_ref()
                    .ok_or(WebhookError::NotConfigured("pipedrive"))?;
                pipedrive::parse(cfg, body, &self.org())
            }
            Crm::Salesforce => {
                let cfg = hooks
                    .salesforce
                    .as_ref()
                    .ok_or(WebhookError::NotConfigured("salesforce"))?;
                salesforce::parse(cfg, body, now_ms)
            }
        }
    }

    /// Keeps the refused items of a request in the dead-letter store, each with its
    /// raw text; durable when it returns (else the request fails, and the CRM's retry
    /// refuses them again under the same ids).
    async fn dead_letter(
        &self,
        crm: Crm,
        format: Option<Format>,
        body: &[u8],
        request_id: &str,
        refused: Vec<ItemError>,
        now_ms: i64,
    ) -> Result<Vec<Rejected>, WebhookError> {
        let raws = match crm {
            Crm::Native => native::split(format.unwrap_or(Format::Json), body),
            Crm::Hubspot => hubspot::split(body),
            Crm::Pipedrive => vec![String::from_utf8_lossy(body).into_owned()],
            Crm::Salesforce => salesforce::split(body),
        };
        let whole = String::from_utf8_lossy(body);
        let mut letters = Vec::with_capacity(refused.len());
        let mut out = Vec::with_capacity(refused.len());
        for error in refused {
            let raw = raws.get(error.index).map_or(whole.as_ref(), String::as_str);
            let letter = DeadLetter {
                id: DeadLetter::id_of(crm.as_str(), raw),
                crm: crm.as_str().into(),
                request_id: request_id.to_owned(),
                index: error.index,
                reason: error.kind.clone(),
                field: error.field.clone(),
                error: error.message(),
                raw: raw.to_owned(),
                received_ms: now_ms,
                attempts: 0,
                retried_ms: None,
                sequences: Vec::new(),
            };
            out.push(Rejected {
                dlq_id: letter.id.clone(),
                error,
            });
            letters.push(letter);
        }
        self.dlq
            .put(&letters, &self.metrics)
            .await
            .map_err(dlq_error)?;
        Ok(out)
    }

    /// Retries dead letters with the current configuration, through the same intake
    /// as a request (per item); those taken are removed, the others keep their place
    /// with the new error and one more attempt. Safe to run again after a crash: the
    /// mirror and the log drop what was taken already (same ids).
    pub async fn redrive(
        &self,
        letters: Vec<DeadLetter>,
        actor: &str,
    ) -> Result<Redriven, WebhookError> {
        let ids: Vec<String> = letters.iter().map(|l| l.id.clone()).collect();
        let mut out = Redriven::default();
        for mut letter in letters {
            let outcome = self.redrive_one(&letter).await?;
            match outcome {
                Ok(events) => {
                    self.dlq.remove(&letter).await.map_err(dlq_error)?;
                    out.events += events;
                    out.succeeded.push(letter.id);
                }
                Err(error) => {
                    letter.attempts += 1;
                    letter.retried_ms = Some((self.now_ms)());
                    letter.error.clone_from(&error);
                    self.dlq.update(&letter).await.map_err(dlq_error)?;
                    out.failed.push((letter.id, error));
                }
            }
        }
        self.dlq.count(&self.metrics).await.map_err(dlq_error)?;
        let detail = json!({"ids": ids, "succeeded": out.succeeded.len()});
        self.audit(actor, "dlq.retry", detail);
        Ok(out)
    }

    /// Takes in what waited for an owner's mapping, with the configuration in force:
    /// what `pacer serve` does at start and on a reload, so adding an owner to
    /// `[webhooks.<crm>] owners` brings the waiting deals in (each once: the events'
    /// ids are what they would have had). First every deal of the mirror's waiting
    /// index is looked at again (told when its owner is mapped now, still waiting
    /// otherwise); then the dead letters refused for an owner now mapped are
    /// retried. What still waits, or is refused again, is in `failed`.
    pub async fn redrive_mapped_owners(&self) -> Result<Redriven, WebhookError> {
        let mut out = Redriven::default();
        for waiting in self.mirror.waiting().await.map_err(mirror_error)? {
            let id = format!("{}:{}:{}", waiting.crm, waiting.tenant, waiting.deal);
            let Some(key) = waiting.key() else {
                out.failed
                    .push((id, format!("crm {:?} is not one Pacer takes", waiting.crm)));
                continue;
            };
            let parsed = Parsed {
                reconsider: vec![key.clone()],
                ..Parsed::default()
            };
            match self.accept(key.crm, &parsed, true).await {
                Ok((accepted, _)) => match accepted.waiting.first() {
                    None => {
                        out.events += accepted.events;
                        out.succeeded.push(id);
                    }
                    Some((_, why)) => out.failed.push((id, why.clone())),
                },
                Err(e @ WebhookError::Unavailable(_)) => return Err(e),
                // One deal that cannot be told does not stop the others.
                Err(e) => out.failed.push((id, e.to_string())),
            }
        }
        if !out.succeeded.is_empty() {
            let detail = json!({"deals": out.succeeded, "events": out.events});
            self.audit("pacer-serve (owner now mapped)", "waiting.told", detail);
        }
        let letters = self.dlq.list().await.map_err(dlq_error)?;
        let now_mapped: Vec<DeadLetter> = letters
            .into_iter()
            .filter(|l| l.reason == "owner_unmapped")
            .filter(|l| {
                crate::dlq::unmapped_owner(l).is_some_and(|owner| self.maps_owner(&l.crm, owner))
            })
            .collect();
        if !now_mapped.is_empty() {
            let letters = self
                .redrive(now_mapped, "pacer-serve (owner now mapped)")
                .await?;
            out.events += letters.events;
            out.succeeded.extend(letters.succeeded);
            out.failed.extend(letters.failed);
        }
        self.count_waiting().await?;
        Ok(out)
    }

    /// The deals waiting for an owner's mapping, as the dead-letter listings show
    /// them (reason `owner_waiting`), oldest first.
    pub async fn waiting_letters(&self) -> Result<Vec<DeadLetter>, WebhookError> {
        let mut out: Vec<DeadLetter> = self
            .mirror
            .waiting()
            .await
            .map_err(mirror_error)?
            .iter()
            .map(crate::dlq::waiting_letter)
            .collect();
        out.sort_by(|a, b| (a.received_ms, &a.id).cmp(&(b.received_ms, &b.id)));
        Ok(out)
    }

    /// Refreshes `pacer_webhook_waiting{crm,reason}` from the mirror's index.
    pub async fn count_waiting(&self) -> Result<(), WebhookError> {
        let mut by_crm: BTreeMap<String, i64> = BTreeMap::new();
        for w in self.mirror.waiting().await.map_err(mirror_error)? {
            *by_crm.entry(w.crm).or_default() += 1;
        }
        self.metrics.set_waiting(&by_crm);
        Ok(())
    }

    /// `[webhooks]` as in force now.
    pub fn hooks(&self) -> Arc<crate::config::WebhooksConfig> {
        Arc::clone(&self.hooks.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Puts a new `[webhooks]` in force (the configuration file read again, on
    /// SIGHUP), then takes in what now can be: the deals waiting for an owner it
    /// maps, and the dead letters refused for one.
    pub async fn reload_webhooks(
        &self,
        hooks: crate::config::WebhooksConfig,
    ) -> Result<Redriven, WebhookError> {
        *self.hooks.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(hooks);
        self.redrive_mapped_owners().await
    }

    /// Reads the configuration file again and puts its `[webhooks]` in force (see
    /// [`Gateway::reload_webhooks`]); what SIGHUP and `pacer config reload` do. The
    /// rest of the file takes a restart. A file that does not load changes nothing:
    /// `Err` says why.
    pub async fn reload_config_file(&self, actor: &str) -> Result<Redriven, ReloadError> {
        let Some(path) = &self.config_path else {
            return Err(ReloadError::NoFile);
        };
        let config = Config::load(path).map_err(|e| ReloadError::NotLoaded {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let redriven = self
            .reload_webhooks(config.webhooks)
            .await
            .map_err(ReloadError::NotRetried)?;
        let detail = json!({
            "path": path.display().to_string(),
            "taken_in": redriven.succeeded.len(),
            "events": redriven.events,
            "still_waiting": redriven.failed.len(),
        });
        self.audit(actor, "config.reload", detail);
        Ok(redriven)
    }

    /// Whether `[webhooks.<crm>] owners` maps `owner` to a rep.
    fn maps_owner(&self, crm: &str, owner: &str) -> bool {
        let hooks = &*self.hooks();
        let mapping = match crm {
            "hubspot" => hooks.hubspot.as_ref().map(|c| &c.mapping),
            "pipedrive" => hooks.pipedrive.as_ref().map(|c| &c.mapping),
            "salesforce" => hooks.salesforce.as_ref().map(|c| &c.mapping),
            _ => None,
        };
        mapping.is_some_and(|m| m.owners.contains_key(owner))
    }

    /// One letter: `Ok(Ok(events))` taken, `Ok(Err(why))` refused again, `Err` when
    /// the store is away (nothing changed; retry later).
    async fn redrive_one(
        &self,
        letter: &DeadLetter,
    ) -> Result<Result<usize, String>, WebhookError> {
        if letter.crm == ENGINE_CRM {
            // An event the engine refused: back onto the events stream, where the
            // engine judges it again (and dead-letters it anew if it still fails).
            let Sink::Nats { js, subjects } = &self.sink else {
                return Ok(Err("an engine dead letter is retried with --nats".into()));
            };
            let message = event_message(subjects, letter.raw.as_bytes());
            let publish = publish_all(js, futures::stream::iter([message]), 1);
            return match tokio::time::timeout(PUBLISH_TIMEOUT, publish).await {
                Ok(Ok(_)) => Ok(Ok(1)),
                Ok(Err(e)) => Err(WebhookError::Unavailable(e.to_string())),
                Err(_) => Err(WebhookError::Unavailable("JetStream did not answer".into())),
            };
        }
        let Some(crm) = [Crm::Native, Crm::Hubspot, Crm::Pipedrive, Crm::Salesforce]
            .into_iter()
            .find(|c| c.as_str() == letter.crm)
        else {
            return Ok(Err(format!("crm {:?} is not one Pacer takes", letter.crm)));
        };
        let body = match crm {
            Crm::Hubspot => format!("[{}]", letter.raw),
            _ => letter.raw.clone(),
        };
        let parsed = match self.parse(crm, Some(Format::Json), body.as_bytes(), letter.received_ms)
        {
            Ok(p) => p,
            Err(e @ (WebhookError::Unavailable(_) | WebhookError::Internal(_))) => return Err(e),
            Err(e) => return Ok(Err(e.to_string())),
        };
        match self.accept(crm, &parsed, true).await {
            Ok((accepted, refused)) => match refused.first() {
                None => Ok(Ok(accepted.events)),
                Some(e) => Ok(Err(e.message())),
            },
            Err(e @ (WebhookError::Unavailable(_) | WebhookError::Internal(_))) => Err(e),
            Err(e) => Ok(Err(e.to_string())),
        }
    }

    /// Reads a deal's facts through its CRM's mapping.
    fn facts(&self, crm: Crm, record: &DealRecord) -> DealFacts {
        let hooks = &*self.hooks();
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
    ///
    /// With `partial`, an item that cannot be taken (its event does not decode or
    /// breaks a rule, its deal's owner maps to no rep past the grace, its deal's
    /// record would be over the bound) is left out with all the items of its deal,
    /// and the rest recomputed without it; the refused items are returned, in order.
    /// Without, the first one refuses the request.
    async fn accept(
        &self,
        crm: Crm,
        parsed: &Parsed,
        partial: bool,
    ) -> Result<(Accepted, Vec<ItemError>), WebhookError> {
        let first_bad = |e: &ItemError| WebhookError::bad(e.field.clone(), e.reason.clone());
        if let (false, Some(e)) = (partial, parsed.invalid.first()) {
            return Err(first_bad(e));
        }
        let now_ms = (self.now_ms)();
        'attempt: for _ in 0..CONFLICT_RETRIES_MAX {
            let mut loaded: BTreeMap<DealKey, DealRecord> = BTreeMap::new();
            let mut versions: BTreeMap<DealKey, Version> = BTreeMap::new();
            for key in deal_keys(parsed) {
                let (record, version) = self.mirror.load(&key).await.map_err(mirror_error)?;
                loaded.insert(key.clone(), record);
                versions.insert(key, version);
            }
            let mut taken = parsed.clone();
            let mut refused: Vec<ItemError> = parsed.invalid.clone();
            // Each round refuses at least one item more, or ends.
            let (mut records, applied, decoded, waiting) = loop {
                let judged = self.judge(crm, &taken, &loaded, now_ms)?;
                if judged.blames.is_empty() {
                    break (
                        judged.records,
                        judged.applied,
                        judged.decoded,
                        judged.waiting,
                    );
                }
                if !partial {
                    return Err(first_bad(&judged.blames[0].error));
                }
                let mut out: BTreeMap<usize, ItemError> = BTreeMap::new();
                for blame in judged.blames {
                    for item in self.narrow(crm, &taken, &loaded, now_ms, &blame)? {
                        out.entry(item).or_insert_with(|| ItemError {
                            index: item,
                            ..blame.error.clone()
                        });
                    }
                }
                let items: std::collections::BTreeSet<usize> = out.keys().copied().collect();
                refused.extend(out.into_values());
                taken = taken.without(&items);
            };
            refused.sort_by_key(|e| e.index);
            let events = applied.events;
            let mut accepted = Accepted {
                ignored: parsed.ignored,
                retried: applied.retried,
                waiting: waiting
                    .iter()
                    .map(|(key, w)| (key.id(), w.reason.clone()))
                    .collect(),
                ..Default::default()
            };
            // Whether each deal waits for its owner now: the mirror's index says so
            // before the claim (a deal that starts waiting, or waits for another
            // owner), and stops saying so once the deal's events are durable.
            let mut unwait: Vec<DealKey> = Vec::new();
            let mut index_changed = false;
            for key in &applied.touched {
                if taken.items_of(key).is_empty() && !taken.reconsider.contains(key) {
                    continue;
                }
                let record = records.get_mut(key).expect("touched records are loaded");
                match waiting.iter().find(|(k, _)| k == key) {
                    Some((_, w)) => {
                        if record.waits_for.as_ref() != Some(&w.owner) {
                            self.mirror.wait(w, key).await.map_err(mirror_error)?;
                            index_changed = true;
                        }
                        record.waits_for = Some(w.owner.clone());
                    }
                    None => {
                        if record.waits_for.take().is_some() {
                            unwait.push(key.clone());
                        }
                    }
                }
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
            for key in &unwait {
                self.mirror.unwait(key).await.map_err(mirror_error)?;
            }
            if index_changed || !unwait.is_empty() {
                self.count_waiting().await?;
            }
            return Ok((accepted, refused));
        }
        Err(WebhookError::Unavailable(
            "the deals of this request kept changing under other requests".into(),
        ))
    }

    /// A request's items through the mirror records as loaded: the records, events
    /// and decoded events it comes to, and what is wrong with it (`blames`, each on
    /// the items it could come from, first found first).
    fn judge(
        &self,
        crm: Crm,
        taken: &Parsed,
        loaded: &BTreeMap<DealKey, DealRecord>,
        now_ms: i64,
    ) -> Result<Judged, WebhookError> {
        let grace_ms = (self.hooks().unmapped_owner_grace_s as i64).saturating_mul(1000);
        let mut records = loaded.clone();
        let hooks = self.hooks();
        let tracked = |name: &str| match crm {
            Crm::Hubspot => hooks
                .hubspot
                .as_ref()
                .is_some_and(|c| hubspot::tracked(c)(name)),
            Crm::Pipedrive => hooks
                .pipedrive
                .as_ref()
                .is_some_and(|c| pipedrive::tracked(c)(name)),
            Crm::Salesforce => hooks
                .salesforce
                .as_ref()
                .is_some_and(|c| salesforce::tracked(c)(name)),
            Crm::Native => false,
        };
        let applied = apply(
            taken,
            &mut records,
            |r| self.facts(crm, r),
            &tracked,
            self.config.org.currency,
        )?;
        let mut blames: Vec<Blame> = Vec::new();
        let mut waiting: Vec<(DealKey, WaitingDeal)> = Vec::new();
        let key_of = |label: &str| {
            label
                .strip_prefix("deal ")
                .and_then(|id| applied.touched.iter().find(|k| k.id() == id).cloned())
        };
        let mut decoded = Vec::with_capacity(applied.events.len());
        for ((label, v), items) in applied.events.iter().zip(&applied.origins) {
            match decode_value(v, &self.config.limits) {
                // The plan approval cycle is finance's, with four eyes and roles: it
                // is made by `pacer plan submit|approve|reject`, never by a sender.
                Ok(ev)
                    if !items.is_empty()
                        && matches!(
                            ev.body,
                            pacer_projections::event::EventBody::PlanSubmitted(_)
                                | pacer_projections::event::EventBody::PlanApproved(_)
                                | pacer_projections::event::EventBody::PlanRejected(_)
                                | pacer_projections::event::EventBody::CompPlanPublished(_)
                        ) =>
                {
                    push_blame(
                        &mut blames,
                        items,
                        None,
                        format!("{label}.type"),
                        format!(
                            "{} is not taken over HTTP: plans are submitted, approved and rejected with `pacer plan submit|approve|reject`, and comp plans published with `pacer comp publish`, by finance and admin users",
                            ev.body.type_name()
                        ),
                        "invalid_value",
                    )
                }
                Ok(ev) => decoded.push(ev),
                Err(r) if !items.is_empty() => push_blame(
                    &mut blames,
                    items,
                    key_of(label).as_ref(),
                    format!("{label}.{}", r.field),
                    r.reason.clone(),
                    r.kind.slug(),
                ),
                // An event an earlier request left pending no longer decodes.
                Err(r) => {
                    return Err(WebhookError::Internal(format!(
                        "{label}.{}: {}",
                        r.field, r.reason
                    )))
                }
            }
        }
        for key in &applied.touched {
            let record = &records[key];
            let items = taken.items_of(key);
            let again = taken.reconsider.contains(key);
            if items.is_empty() && !again {
                continue;
            }
            if let (false, Some((owner, at_ms))) =
                (record.deleted, self.facts(crm, record).unmapped_owner)
            {
                let left_s = (grace_ms - now_ms.saturating_sub(at_ms)) / 1000;
                let reason = if items.is_empty() {
                    // Looked at again (a reload): still waiting.
                    Some(format!(
                        "owner {owner:?} is not mapped to a rep; the deal waits until [webhooks.{}] owners maps it",
                        crm.as_str()
                    ))
                } else {
                    (now_ms.saturating_sub(at_ms) < grace_ms).then(|| format!(
                        "owner {owner:?} is not mapped to a rep; the deal waits, and becomes a dead letter in {left_s} s unless [webhooks.{}] owners maps it",
                        crm.as_str()
                    ))
                };
                if let Some(reason) = reason {
                    let waits = WaitingDeal {
                        crm: crm.as_str().to_owned(),
                        tenant: key.tenant.clone(),
                        deal: key.deal.clone(),
                        owner,
                        reason,
                        since_ms: at_ms,
                    };
                    waiting.push((key.clone(), waits));
                } else {
                    let reason = crate::dlq::owner_unmapped_reason(&owner, crm.as_str());
                    let field = format!("deal {}.owner", key.id());
                    push_blame(
                        &mut blames,
                        &items,
                        Some(key),
                        field,
                        reason,
                        "owner_unmapped",
                    );
                }
            }
            let bytes = serde_json::to_vec(record).map_or(0, |b| b.len());
            if bytes > RECORD_BYTES_MAX {
                let reason = format!(
                    "the deal's mirrored record would be {bytes} bytes, over the limit of {RECORD_BYTES_MAX}; map fewer fields"
                );
                let field = format!("deal {}", key.id());
                push_blame(
                    &mut blames,
                    &items,
                    Some(key),
                    field,
                    reason,
                    "record_too_large",
                );
            }
        }
        // Rules that need the log (one-process mode) are checked before the claim, so
        // a refused item leaves nothing pending.
        if let (true, Sink::Local(local)) = (blames.is_empty(), &self.sink) {
            let local = Arc::clone(local);
            match tokio::task::block_in_place(|| local.check(&decoded)) {
                Ok(()) => {}
                Err(SubmitError::Rejected { index, rejection }) => {
                    let (label, _) = &applied.events[index];
                    let field = format!("{label}.{}", rejection.field);
                    if applied.origins[index].is_empty() {
                        return Err(WebhookError::Internal(format!(
                            "{field}: {}",
                            rejection.reason
                        )));
                    }
                    push_blame(
                        &mut blames,
                        &applied.origins[index],
                        key_of(label).as_ref(),
                        field,
                        rejection.reason.clone(),
                        rejection.kind.slug(),
                    );
                }
                Err(SubmitError::Log(e)) => return Err(WebhookError::Internal(e.to_string())),
            }
        }
        Ok(Judged {
            records,
            applied,
            decoded,
            blames,
            waiting,
        })
    }

    /// The items to refuse for a blame on a deal: the one item without which the
    /// deal's items are fine (tried first: those whose values the error quotes, then
    /// the latest first), so that the deal's other properties are kept; else all of
    /// the deal's items.
    fn narrow(
        &self,
        crm: Crm,
        taken: &Parsed,
        loaded: &BTreeMap<DealKey, DealRecord>,
        now_ms: i64,
        blame: &Blame,
    ) -> Result<Vec<usize>, WebhookError> {
        let (Some(key), true) = (&blame.key, blame.items.len() > 1) else {
            return Ok(blame.items.clone());
        };
        let all: std::collections::BTreeSet<usize> = taken.items.iter().copied().collect();
        let others: std::collections::BTreeSet<usize> = all
            .iter()
            .copied()
            .filter(|i| !blame.items.contains(i))
            .collect();
        let deal_only = taken.without(&others);
        let quoted = |item: usize| {
            deal_only
                .changes
                .iter()
                .zip(&deal_only.items)
                .filter(|(_, i)| **i == item)
                .any(|(c, _)| match c {
                    crate::webhook::Change::Deal(d) => d.props.iter().any(|(_, v)| {
                        v.as_deref()
                            .is_some_and(|v| blame.error.reason.contains(&format!("{v:?}")))
                    }),
                    crate::webhook::Change::Event(_) => false,
                })
        };
        let mut order: Vec<usize> = blame.items.iter().rev().copied().collect();
        order.sort_by_key(|i| !quoted(*i));
        for item in order {
            let trial = deal_only.without(&[item].into_iter().collect());
            let judged = self.judge(crm, &trial, loaded, now_ms)?;
            if judged.blames.iter().all(|b| b.key.as_ref() != Some(key)) {
                return Ok(vec![item]);
            }
        }
        Ok(blame.items.clone())
    }

    /// A refusal of the local engine at the append, after the check passed: another
    /// request changed what the rules see meanwhile; the CRM retries.
    fn refused(
        &self,
        result: Result<(), SubmitError>,
        events: &[(String, Value)],
    ) -> Result<(), WebhookError> {
        match result {
            Ok(()) => Ok(()),
            Err(SubmitError::Rejected { index, rejection }) => {
                Err(WebhookError::Unavailable(format!(
                    "{}.{}: {} (changed by another request meanwhile)",
                    events[index].0, rejection.field, rejection.reason
                )))
            }
            Err(SubmitError::Log(e)) => Err(WebhookError::Internal(e.to_string())),
        }
    }

    /// Makes the events durable; returns how many were duplicates (when known).
    pub(super) async fn store(
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
    pub(super) fn respond(&self, crm: Crm, result: Result<Accepted, WebhookError>) -> Response {
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
            m.webhook_waiting
                .get_or_create(&by_crm)
                .inc_by(a.waiting.len() as u64);
            for (deal, reason) in &a.waiting {
                eprintln!(
                    "pacer: {} webhook: deal {deal} waits: {reason}",
                    crm.as_str()
                );
            }
            for r in &a.rejected {
                eprintln!(
                    "pacer: {} webhook: item {} refused, kept as dead letter {}: {}",
                    crm.as_str(),
                    r.error.index,
                    r.dlq_id,
                    r.error.message()
                );
            }
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
            (_, Ok(a)) => {
                let rejected: Vec<Value> = a
                    .rejected
                    .iter()
                    .map(|r| {
                        json!({
                            "index": r.error.index, "field": r.error.field,
                            "error": r.error.message(), "reason": r.error.kind,
                            "dlq_id": r.dlq_id,
                        })
                    })
                    .collect();
                let mut body = json!({
                    "events": a.events, "duplicates": a.duplicates,
                    "retried": a.retried, "ignored": a.ignored,
                    "rejected": rejected,
                });
                // Said only when some deal waits, so every other answer is as before.
                if !a.waiting.is_empty() {
                    body["waiting"] = a
                        .waiting
                        .iter()
                        .map(|(deal, reason)| json!({"deal": deal, "reason": reason}))
                        .collect();
                }
                (StatusCode::OK, axum::Json(body)).into_response()
            }
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

/// Notes something wrong with `items` (of deal `key`, when about one).
fn push_blame(
    blames: &mut Vec<Blame>,
    items: &[usize],
    key: Option<&DealKey>,
    field: String,
    reason: String,
    kind: &str,
) {
    blames.push(Blame {
        items: items.to_vec(),
        key: key.cloned(),
        error: ItemError {
            index: items.first().copied().unwrap_or(0),
            field,
            reason,
            kind: kind.to_owned(),
        },
    });
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

pub(super) fn dlq_error(e: crate::dlq::DlqError) -> WebhookError {
    match e {
        crate::dlq::DlqError::Unavailable { .. } => WebhookError::Unavailable(e.to_string()),
        _ => WebhookError::Internal(e.to_string()),
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

impl Gateway {
    /// The operator's standing alerts: `dead_letters` when letters wait too long.
    pub async fn system_alerts(&self) -> Result<Vec<Value>, WebhookError> {
        let letters = self.dlq.list().await.map_err(dlq_error)?;
        let mut alerts: Vec<Value> =
            crate::dlq::system_alert(&letters, (self.now_ms)(), self.config.dlq.alert_after_s)
                .into_iter()
                .collect();
        if let Some(d) = &self.deliverer {
            let d = Arc::clone(d);
            let failed = tokio::task::spawn_blocking(move || d.store().deliveries())
                .await
                .expect("the listing task does not panic")
                .map_err(|e| WebhookError::Unavailable(e.to_string()))?;
            alerts.extend(crate::deliver::system_alert(&failed));
        }
        Ok(alerts)
    }

    /// Publishes the standing system alerts on `<prefix>.alerts.system` (NATS mode),
    /// one message per alert and hour (its `Nats-Msg-Id`), so an operator's
    /// subscriber hears of it again while it stands. Returns how many were sent.
    pub async fn publish_system_alerts(&self) -> Result<usize, WebhookError> {
        let Sink::Nats { js, subjects } = &self.sink else {
            return Ok(0);
        };
        let alerts = self.system_alerts().await?;
        let hour = (self.now_ms)() / 3_600_000;
        for alert in &alerts {
            let mut headers = async_nats::HeaderMap::new();
            let id = format!("{}:{hour}", alert["id"].as_str().unwrap_or("system"));
            headers.insert("Nats-Msg-Id", id.as_str());
            let payload = serde_json::to_vec(alert).expect("JSON values serialise");
            js.publish_with_headers(
                format!("{}.alerts.system", subjects.prefix),
                headers,
                payload.into(),
            )
            .await
            .map_err(|e| WebhookError::Unavailable(e.to_string()))?
            .await
            .map_err(|e| WebhookError::Unavailable(e.to_string()))?;
        }
        Ok(alerts.len())
    }

    /// Removes letters for good, logging each with the operator's reason.
    pub async fn drop_letters(
        &self,
        letters: Vec<DeadLetter>,
        reason: &str,
        actor: &str,
    ) -> Result<Vec<String>, WebhookError> {
        let mut out = Vec::new();
        for letter in letters {
            if self.dlq.remove(&letter).await.map_err(dlq_error)? {
                eprintln!(
                    "pacer: dead letter {} ({} item {} of request {}) dropped: {reason}",
                    letter.id, letter.crm, letter.index, letter.request_id
                );
                out.push(letter.id);
            }
        }
        self.dlq.count(&self.metrics).await.map_err(dlq_error)?;
        self.audit(actor, "dlq.drop", json!({"ids": out, "reason": reason}));
        Ok(out)
    }

    /// Notes an operator's action in the audit trail; a trail that cannot be written
    /// is said on stderr (the action is done).
    fn audit(&self, actor: &str, action: &str, detail: Value) {
        if let Err(e) = audit(self.access.data_dir(), actor, action, "dlq", detail) {
            eprintln!("pacer: {e}");
        }
    }
}
