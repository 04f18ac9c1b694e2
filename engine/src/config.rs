//! The configuration file (TOML). Every key has a default, an unknown key or a bad
//! value is an error at start-up that names the key, and the parsed [`Config`] is
//! passed down as an argument: nothing reads it from a global.
//!
//! ```toml
//! [org]
//! timezone = "Europe/Berlin"      # IANA name; default "UTC"
//! currency = "EUR"                # reporting currency; default "USD"
//! fiscal_year_start_month = 4     # 1-12; default 1
//! locale = "de"                   # how the web app writes numbers (CLDR name); default "en"
//!
//! [alerts]
//! max_focus_per_rep = 2           # focus items per rep; the rest are "watch"
//!
//! [alerts.behind_pace]            # one table per rule; every key is optional
//! enabled = true
//! severity = "warning"            # info | warning | critical
//! below_pct = 90                  # projected attainment below this → alert
//! critical_below_pct = 70         # very likely to end below this → critical (false: never)
//! min_working_days = 3
//! min_share_of_total_pct = 10     # a breakdown raises only for this share of the month
//! min_expected_deals = 1          # bookings due by today before a breakdown or critical
//! credibility_deals = 20
//! track_record_months = 3
//!
//! [pace]
//! curve = "history"               # history | linear
//! history_months = 12
//! min_history_months = 6
//! ```
//!
//! The other rules and their keys are listed in README.md ("Alerts"); thresholds are
//! exact decimals (a TOML integer, float or string, at most two decimals).

use std::path::{Path, PathBuf};

use pacer_projections::alerts::config::{BehindPace, PaceRule};
use pacer_projections::alerts::{AlertConfig, Severity};
use pacer_projections::event::Percent;
use pacer_projections::money::{parse_decimal, Currency};
use pacer_projections::pacing::{CurveMode, PaceConfig};
use pacer_projections::state::OrgConfig;
use serde::Deserialize;

use crate::error::ConfigError;
use crate::webhook::hubspot::HubspotConfig;
use crate::webhook::native::NativeConfig;
use crate::webhook::pipedrive::PipedriveConfig;
use crate::webhook::salesforce::SalesforceConfig;
use crate::wire::Limits;

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub org: OrgConfig,
    /// How people of the organisation write numbers (`[org] locale`, a CLDR name):
    /// the web app's separators. Files and the JSON API keep plain decimals.
    pub locale: num_format::Locale,
    pub limits: Limits,
    /// How `pacer serve` and `pacer publish` reach NATS.
    pub nats: NatsConfig,
    /// How `pacer serve` consumes, ticks and publishes.
    pub serve: ServeConfig,
    /// The HTTP endpoints CRMs call (`pacer serve --http`, `pacer gateway`).
    pub webhooks: WebhooksConfig,
    /// The dead-letter store of the webhook endpoints.
    pub dlq: DlqConfig,
    /// How alerts reach managers' email and chat (`[deliver]`, `[deliver.smtp]`).
    pub deliver: DeliverConfig,
}

/// `[deliver]`: how subscribed alerts and digests are gathered and delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliverConfig {
    /// Alert changes for one subscription within this window after the first go out
    /// as one message.
    pub gather_ms: u64,
    /// The daily summary goes out at this local hour (org time zone).
    pub daily_hour: u32,
    /// The first retry waits about this long; each next one twice as long (with
    /// jitter), up to `retry_max_ms`.
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// A delivery not made this long after it was due is given up and kept as failed.
    pub give_up_after_s: u64,
    /// One attempt's limit (connect, send, answer).
    pub timeout_ms: u64,
    /// The web app's address, for the links in messages (`https://pacer.example.com`).
    pub app_url: Option<String>,
    /// How email is sent; none: email subscriptions wait, failed, until it is set.
    pub smtp: Option<SmtpConfig>,
    /// Webhook subscriptions may use plain `http://` to this machine (a local relay,
    /// tests). Off: every webhook URL is `https://`.
    pub allow_http_loopback: bool,
}

impl Default for DeliverConfig {
    fn default() -> Self {
        DeliverConfig {
            gather_ms: 60_000,
            daily_hour: 8,
            retry_base_ms: 2_000,
            retry_max_ms: 3_600_000,
            give_up_after_s: 24 * 3600,
            timeout_ms: 10_000,
            app_url: None,
            smtp: None,
            allow_http_loopback: false,
        }
    }
}

/// How the SMTP server is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP (a relay on the same host or a test server only).
    None,
    /// Plain connection upgraded with STARTTLS (port 587), required.
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// `[deliver.smtp]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub user: Option<String>,
    /// The password; `password_env` names a variable to read it from instead.
    pub password: Option<String>,
    /// The sender: `Pacer <pacer@example.com>`.
    pub from: String,
}

/// `[dlq]`: how many dead letters are kept, and when waiting ones raise an alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DlqConfig {
    /// At most this many dead letters are kept; past it the oldest is dropped, with a
    /// logged warning and `pacer_dlq_dropped_total`.
    pub items_max: usize,
    /// A dead letter waiting longer than this raises the `dead_letters` system alert.
    pub alert_after_s: u64,
}

impl Default for DlqConfig {
    fn default() -> Self {
        DlqConfig {
            items_max: 10_000,
            alert_after_s: 3600,
        }
    }
}

/// `[webhooks]` and its `[webhooks.<crm>]` sections; a CRM without a section has no
/// endpoint (404).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhooksConfig {
    /// The largest request body taken (413 above it).
    pub body_bytes_max: usize,
    /// How long a deal whose CRM owner maps to no rep may wait (seconds since the
    /// owner was set) before its items go to the dead-letter store; 0: at once.
    pub unmapped_owner_grace_s: u64,
    pub native: NativeConfig,
    pub hubspot: Option<HubspotConfig>,
    pub pipedrive: Option<PipedriveConfig>,
    pub salesforce: Option<SalesforceConfig>,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            body_bytes_max: 1024 * 1024,
            unmapped_owner_grace_s: 0,
            native: NativeConfig::default(),
            hubspot: None,
            pipedrive: None,
            salesforce: None,
        }
    }
}

/// `[nats]`: the connection and the streams. Command-line flags override each key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsConfig {
    /// One URL, or several for a cluster; none: no broker (`pacer serve` runs as one
    /// process, and the commands that need NATS say so).
    pub urls: Vec<String>,
    pub creds: Option<PathBuf>,
    /// A file holding an nkey seed.
    pub nkey: Option<PathBuf>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// A PEM file of root certificates to trust (and TLS required).
    pub tls_ca: Option<PathBuf>,
    /// Every subject starts with it: `<prefix>.events.>`, `<prefix>.alerts.>`...
    pub subject_prefix: String,
    /// JetStream's duplicate window on `Nats-Msg-Id` for the streams Pacer creates.
    pub duplicate_window_s: u64,
    pub replicas: u32,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            urls: Vec::new(),
            creds: None,
            nkey: None,
            user: None,
            password: None,
            token: None,
            tls_ca: None,
            subject_prefix: "pacer".into(),
            duplicate_window_s: 24 * 3600,
            replicas: 1,
        }
    }
}

/// `[serve]`: the consumer's bounds, the clock tick, the weekly digest, metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeConfig {
    /// Messages taken from the consumer and appended with one flush (and the size of
    /// each pull). A flush waits on the disk (about 1.7 ms here) whatever the batch,
    /// so under load larger batches carry more events per flush; when the engine
    /// keeps up, batches stay small and this bound is never reached.
    pub batch_events_max: usize,
    /// The consumer's `max_ack_pending`: messages delivered but not yet acked.
    pub acks_pending_max: i64,
    /// How long NATS waits for an ack before redelivering.
    pub ack_wait_s: u64,
    /// A `clock_tick` is published to the events stream this often (and once at
    /// start-up) by the engine that holds the lease; 0: never, for deployments where
    /// ticks arrive as events from elsewhere (a scheduler, tests).
    pub tick_interval_s: u64,
    /// The engine lease (`pacer serve` on NATS): the engine that holds it consumes the
    /// stream and renews it every third of this; another engine started beside it
    /// waits as a hot standby and takes over once it has not been renewed for this
    /// long.
    pub lease_ttl_s: u64,
    /// The weekly digest goes out at this weekday and local time (org time zone).
    pub digest_weekday: chrono::Weekday,
    pub digest_hour: u32,
    pub digest_minute: u32,
    /// `/metrics` and `/healthz` listen here when set.
    pub metrics_addr: Option<String>,
    /// The webhook endpoints (and, without NATS, the queries) listen here when set.
    pub http_addr: Option<String>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            batch_events_max: 4000,
            acks_pending_max: 20_000,
            ack_wait_s: 30,
            tick_interval_s: 15 * 60,
            lease_ttl_s: 15,
            digest_weekday: chrono::Weekday::Mon,
            digest_hour: 7,
            digest_minute: 0,
            metrics_addr: None,
            http_addr: None,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::from_raw(RawConfig::default()).expect("the defaults are valid")
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    org: RawOrg,
    #[serde(default)]
    alerts: RawAlerts,
    #[serde(default)]
    pace: RawPace,
    #[serde(default)]
    nats: RawNats,
    #[serde(default)]
    serve: RawServe,
    #[serde(default)]
    webhooks: RawWebhooks,
    #[serde(default)]
    dlq: RawDlq,
    #[serde(default)]
    deliver: RawDeliver,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeliver {
    gather_ms: Option<i64>,
    daily_hour: Option<i64>,
    retry_base_ms: Option<i64>,
    retry_max_ms: Option<i64>,
    give_up_after_s: Option<i64>,
    timeout_ms: Option<i64>,
    app_url: Option<String>,
    allow_http_loopback: Option<bool>,
    smtp: Option<RawSmtp>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    host: String,
    port: Option<i64>,
    /// `starttls` (default), `tls` or `none`.
    tls: Option<String>,
    user: Option<String>,
    password: Option<String>,
    password_env: Option<String>,
    from: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDlq {
    items_max: Option<i64>,
    alert_after_s: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhooks {
    body_bytes_max: Option<i64>,
    unmapped_owner_grace_s: Option<i64>,
    native: Option<toml::Value>,
    hubspot: Option<toml::Value>,
    pipedrive: Option<toml::Value>,
    salesforce: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNats {
    urls: Option<Vec<String>>,
    creds: Option<PathBuf>,
    nkey: Option<PathBuf>,
    user: Option<String>,
    password: Option<String>,
    token: Option<String>,
    tls_ca: Option<PathBuf>,
    subject_prefix: Option<String>,
    duplicate_window_s: Option<i64>,
    replicas: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPace {
    /// `history` or `linear`.
    curve: Option<String>,
    history_months: Option<i64>,
    min_history_months: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServe {
    batch_events_max: Option<i64>,
    acks_pending_max: Option<i64>,
    ack_wait_s: Option<i64>,
    tick_interval_s: Option<i64>,
    lease_ttl_s: Option<i64>,
    /// `monday` ... `sunday`.
    digest_weekday: Option<String>,
    /// `HH:MM`, local time.
    digest_time: Option<String>,
    metrics_addr: Option<String>,
    http_addr: Option<String>,
}

/// A threshold as written: an integer, a float (read back through its shortest
/// decimal form, so `3.5` is exactly 3.5) or a decimal string; `false` switches a
/// critical threshold off.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawNum {
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    max_focus_per_rep: Option<i64>,
    #[serde(default)]
    behind_pace: RawRule,
    #[serde(default)]
    activity_behind: RawRule,
    #[serde(default)]
    product_concentration: RawRule,
    #[serde(default)]
    customer_mix: RawRule,
    #[serde(default)]
    low_coverage: RawRule,
    #[serde(default)]
    report_card_drop: RawRule,
    #[serde(default)]
    month_missed: RawRule,
}

/// Every key any rule takes; [`apply_rule`] refuses the ones a rule does not.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    enabled: Option<bool>,
    severity: Option<String>,
    below_pct: Option<RawNum>,
    critical_below_pct: Option<RawNum>,
    above_pct: Option<RawNum>,
    critical_above_pct: Option<RawNum>,
    target_new_pct: Option<RawNum>,
    tolerance_pct: Option<RawNum>,
    critical_tolerance_pct: Option<RawNum>,
    min_ratio: Option<RawNum>,
    critical_min_ratio: Option<RawNum>,
    below_score: Option<RawNum>,
    critical_below_score: Option<RawNum>,
    min_working_days: Option<i64>,
    min_open_deals: Option<i64>,
    window_months: Option<i64>,
    min_ratings: Option<i64>,
    min_share_of_total_pct: Option<RawNum>,
    min_expected_deals: Option<RawNum>,
    credibility_deals: Option<RawNum>,
    track_record_months: Option<i64>,
    min_expected: Option<i64>,
    last_working_days: Option<i64>,
    review_working_days: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrg {
    #[serde(default = "default_timezone")]
    timezone: String,
    #[serde(default = "default_currency")]
    currency: String,
    #[serde(default = "default_fiscal_start")]
    fiscal_year_start_month: i64,
    #[serde(default = "default_locale")]
    locale: String,
}

impl Default for RawOrg {
    fn default() -> Self {
        RawOrg {
            timezone: default_timezone(),
            currency: default_currency(),
            fiscal_year_start_month: default_fiscal_start(),
            locale: default_locale(),
        }
    }
}

fn default_locale() -> String {
    "en".into()
}

fn default_timezone() -> String {
    "UTC".into()
}

fn default_currency() -> String {
    "USD".into()
}

fn default_fiscal_start() -> i64 {
    1
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses config text; the error names the key and the value.
    pub fn parse(text: &str) -> Result<Config, String> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())?;
        Config::from_raw(raw)
    }

    fn from_raw(raw: RawConfig) -> Result<Config, String> {
        let timezone = raw.org.timezone.parse::<chrono_tz::Tz>().map_err(|_| {
            format!(
                "org.timezone: {:?} is not an IANA time zone name",
                raw.org.timezone
            )
        })?;
        let currency =
            Currency::from_code(&raw.org.currency).map_err(|e| format!("org.currency: {e}"))?;
        let fiscal = raw.org.fiscal_year_start_month;
        if !(1..=12).contains(&fiscal) {
            return Err(format!(
                "org.fiscal_year_start_month: {fiscal} is not a month number from 1 to 12"
            ));
        }
        let locale = num_format::Locale::from_name(&raw.org.locale).map_err(|_| {
            format!(
                "org.locale: {:?} is not a CLDR locale name (such as en, en-IN, de, fr, de-CH)",
                raw.org.locale
            )
        })?;
        Ok(Config {
            locale,
            org: OrgConfig {
                timezone,
                currency,
                fiscal_year_start_month: fiscal as u32,
                alerts: alert_config(raw.alerts)?,
                pace: pace_config(raw.pace)?,
            },
            limits: Limits::default(),
            nats: nats_config(raw.nats)?,
            serve: serve_config(raw.serve)?,
            webhooks: webhooks_config(raw.webhooks)?,
            dlq: dlq_config(raw.dlq)?,
            deliver: deliver_config(raw.deliver)?,
        })
    }
}

/// Whether a subject prefix is usable: dot-separated tokens of letters, digits, `-`
/// and `_`.
pub fn valid_subject_prefix(p: &str) -> bool {
    !p.is_empty()
        && p.split('.').all(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

fn nats_config(raw: RawNats) -> Result<NatsConfig, String> {
    let d = NatsConfig::default();
    // Unset: no broker (`pacer serve` runs as one process); set: at least one URL.
    let given = raw.urls.is_some();
    let urls = raw.urls.unwrap_or(d.urls);
    if (given && urls.is_empty()) || urls.iter().any(|u| u.trim().is_empty()) {
        return Err(format!(
            "nats.urls: {urls:?} must list at least one server URL"
        ));
    }
    let subject_prefix = raw.subject_prefix.unwrap_or(d.subject_prefix);
    if !valid_subject_prefix(&subject_prefix) {
        return Err(format!(
            "nats.subject_prefix: {subject_prefix:?} is not dot-separated tokens of letters, digits, - and _"
        ));
    }
    Ok(NatsConfig {
        urls,
        creds: raw.creds,
        nkey: raw.nkey,
        user: raw.user,
        password: raw.password,
        token: raw.token,
        tls_ca: raw.tls_ca,
        subject_prefix,
        duplicate_window_s: raw
            .duplicate_window_s
            .map_or(Ok(d.duplicate_window_s), |v| {
                count("nats.duplicate_window_s", v, 30 * 24 * 3600).map(u64::from)
            })?,
        replicas: raw
            .replicas
            .map_or(Ok(d.replicas), |v| count("nats.replicas", v, 5))?
            .max(1),
    })
}

fn webhooks_config(raw: RawWebhooks) -> Result<WebhooksConfig, String> {
    let d = WebhooksConfig::default();
    let body_bytes_max = match raw.body_bytes_max {
        None => d.body_bytes_max,
        Some(v) if (1024..=64 * 1024 * 1024).contains(&v) => v as usize,
        Some(v) => {
            return Err(format!(
                "webhooks.body_bytes_max: {v} is not a whole number from 1024 to 67108864"
            ))
        }
    };
    Ok(WebhooksConfig {
        body_bytes_max,
        unmapped_owner_grace_s: raw
            .unmapped_owner_grace_s
            .map_or(Ok(d.unmapped_owner_grace_s), |v| {
                count("webhooks.unmapped_owner_grace_s", v, 90 * 24 * 3600).map(u64::from)
            })?,
        native: raw
            .native
            .map(NativeConfig::from_toml)
            .transpose()?
            .unwrap_or_default(),
        hubspot: raw.hubspot.map(HubspotConfig::from_toml).transpose()?,
        pipedrive: raw.pipedrive.map(PipedriveConfig::from_toml).transpose()?,
        salesforce: raw
            .salesforce
            .map(SalesforceConfig::from_toml)
            .transpose()?,
    })
}

fn dlq_config(raw: RawDlq) -> Result<DlqConfig, String> {
    let d = DlqConfig::default();
    let items_max = match raw.items_max {
        None => d.items_max,
        Some(v) => count("dlq.items_max", v, 1_000_000)?.max(1) as usize,
    };
    Ok(DlqConfig {
        items_max,
        alert_after_s: raw.alert_after_s.map_or(Ok(d.alert_after_s), |v| {
            count("dlq.alert_after_s", v, 30 * 24 * 3600).map(u64::from)
        })?,
    })
}

fn deliver_config(raw: RawDeliver) -> Result<DeliverConfig, String> {
    let d = DeliverConfig::default();
    let within = |key: &str, v: Option<i64>, default: u64, min: i64, max: i64| match v {
        None => Ok(default),
        Some(v) if (min..=max).contains(&v) => Ok(v as u64),
        Some(v) => Err(format!(
            "deliver.{key}: {v} is not a whole number from {min} to {max}"
        )),
    };
    let retry_base_ms = within(
        "retry_base_ms",
        raw.retry_base_ms,
        d.retry_base_ms,
        1,
        3_600_000,
    )?;
    let retry_max_ms = within(
        "retry_max_ms",
        raw.retry_max_ms,
        d.retry_max_ms,
        1,
        86_400_000,
    )?;
    if retry_max_ms < retry_base_ms {
        return Err(format!(
            "deliver.retry_max_ms: {retry_max_ms} is below deliver.retry_base_ms ({retry_base_ms})"
        ));
    }
    let app_url = match raw.app_url {
        Some(u) if !(u.starts_with("https://") || u.starts_with("http://")) => {
            return Err(format!("deliver.app_url: {u:?} is not an http(s) URL"))
        }
        other => other.map(|u| u.trim_end_matches('/').to_owned()),
    };
    let smtp = match raw.smtp {
        None => None,
        Some(s) => {
            let tls = match s.tls.as_deref().unwrap_or("starttls") {
                "starttls" => SmtpTls::Starttls,
                "tls" => SmtpTls::Tls,
                "none" => SmtpTls::None,
                t => {
                    return Err(format!(
                        "deliver.smtp.tls: {t:?} is not starttls, tls or none"
                    ))
                }
            };
            let default_port = match tls {
                SmtpTls::Tls => 465,
                SmtpTls::Starttls => 587,
                SmtpTls::None => 25,
            };
            let port = within("smtp.port", s.port, default_port, 1, 65_535)? as u16;
            if s.host.trim().is_empty() {
                return Err("deliver.smtp.host: \"\" is not a host name".into());
            }
            if s.from.parse::<lettre::message::Mailbox>().is_err() {
                return Err(format!(
                    "deliver.smtp.from: {:?} is not an address (\"Pacer <pacer@example.com>\")",
                    s.from
                ));
            }
            let password = match (s.password, s.password_env) {
                (Some(_), Some(_)) => {
                    return Err("deliver.smtp: give password or password_env, not both".into())
                }
                (Some(p), None) => Some(p),
                (None, Some(var)) => Some(std::env::var(&var).map_err(|_| {
                    format!("deliver.smtp.password_env: the variable {var:?} is not set")
                })?),
                (None, None) => None,
            };
            if password.is_some() != s.user.is_some() {
                return Err("deliver.smtp: user and a password go together".into());
            }
            Some(SmtpConfig {
                host: s.host,
                port,
                tls,
                user: s.user,
                password,
                from: s.from,
            })
        }
    };
    Ok(DeliverConfig {
        gather_ms: within("gather_ms", raw.gather_ms, d.gather_ms, 0, 86_400_000)?,
        daily_hour: within("daily_hour", raw.daily_hour, u64::from(d.daily_hour), 0, 23)? as u32,
        retry_base_ms,
        retry_max_ms,
        give_up_after_s: within(
            "give_up_after_s",
            raw.give_up_after_s,
            d.give_up_after_s,
            1,
            30 * 86_400,
        )?,
        timeout_ms: within("timeout_ms", raw.timeout_ms, d.timeout_ms, 100, 120_000)?,
        app_url,
        smtp,
        allow_http_loopback: raw.allow_http_loopback.unwrap_or(d.allow_http_loopback),
    })
}

fn serve_config(raw: RawServe) -> Result<ServeConfig, String> {
    let d = ServeConfig::default();
    let positive = |key: &str, v: Option<i64>, default: u64, max: i64| -> Result<u64, String> {
        match v {
            None => Ok(default),
            Some(v) if (1..=max).contains(&v) => Ok(v as u64),
            Some(v) => Err(format!("{key}: {v} is not a whole number from 1 to {max}")),
        }
    };
    let digest_weekday = match raw.digest_weekday {
        None => d.digest_weekday,
        Some(w) => w.parse::<chrono::Weekday>().map_err(|_| {
            format!("serve.digest_weekday: {w:?} is not a weekday (monday ... sunday)")
        })?,
    };
    let (digest_hour, digest_minute) = match raw.digest_time {
        None => (d.digest_hour, d.digest_minute),
        Some(t) => chrono::NaiveTime::parse_from_str(&t, "%H:%M")
            .map(|n| {
                use chrono::Timelike;
                (n.hour(), n.minute())
            })
            .map_err(|_| format!("serve.digest_time: {t:?} is not a local time HH:MM"))?,
    };
    Ok(ServeConfig {
        batch_events_max: positive(
            "serve.batch_events_max",
            raw.batch_events_max,
            d.batch_events_max as u64,
            100_000,
        )? as usize,
        acks_pending_max: positive(
            "serve.acks_pending_max",
            raw.acks_pending_max,
            d.acks_pending_max as u64,
            1_000_000,
        )? as i64,
        ack_wait_s: positive("serve.ack_wait_s", raw.ack_wait_s, d.ack_wait_s, 3600)?,
        tick_interval_s: match raw.tick_interval_s {
            Some(0) => 0,
            v => positive("serve.tick_interval_s", v, d.tick_interval_s, 7 * 24 * 3600)?,
        },
        lease_ttl_s: match positive("serve.lease_ttl_s", raw.lease_ttl_s, d.lease_ttl_s, 300)? {
            ttl if ttl < 3 => {
                return Err(format!(
                    "serve.lease_ttl_s: {ttl} is too short (at least 3 s: the lease is renewed every third of it)"
                ))
            }
            ttl => ttl,
        },
        digest_weekday,
        digest_hour,
        digest_minute,
        metrics_addr: raw.metrics_addr,
        http_addr: raw.http_addr,
    })
}

/// Hundredths from a threshold as written; `Ok(None)` for `false`.
fn hundredths(key: &str, v: &RawNum) -> Result<Option<i64>, String> {
    let text = match v {
        RawNum::Int(i) => i.to_string(),
        RawNum::Float(f) => f.to_string(),
        RawNum::Text(t) => t.clone(),
        RawNum::Bool(false) => return Ok(None),
        RawNum::Bool(true) => {
            return Err(format!(
                "{key}: true is not a threshold (a number, or false for none)"
            ))
        }
    };
    parse_decimal(&text, 2)
        .map(Some)
        .map_err(|_| format!("{key}: {text:?} is not a decimal number with at most two decimals"))
}

fn percent(key: &str, v: &RawNum) -> Result<Option<Percent>, String> {
    match hundredths(key, v)? {
        None => Ok(None),
        Some(h) => u16::try_from(h)
            .ok()
            .and_then(Percent::from_hundredths)
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "{key}: {} is not a percentage from 0 to 100",
                    format_hundredths(h)
                )
            }),
    }
}

fn ratio(key: &str, v: &RawNum, max: i64) -> Result<Option<u32>, String> {
    match hundredths(key, v)? {
        None => Ok(None),
        Some(h) if (0..=max).contains(&h) => Ok(Some(h as u32)),
        Some(h) => Err(format!(
            "{key}: {} is not from 0 to {}",
            format_hundredths(h),
            format_hundredths(max)
        )),
    }
}

fn format_hundredths(h: i64) -> String {
    pacer_projections::money::format_decimal(h, 2)
}

fn count(key: &str, v: i64, max: i64) -> Result<u32, String> {
    if (0..=max).contains(&v) {
        Ok(v as u32)
    } else {
        Err(format!("{key}: {v} is not a whole number from 0 to {max}"))
    }
}

/// The settings of one rule, as written, checked key by key.
struct RuleKeys<'a> {
    rule: &'a str,
    raw: RawRule,
}

impl RuleKeys<'_> {
    fn key(&self, name: &str) -> String {
        format!("alerts.{}.{name}", self.rule)
    }

    fn enabled(&self, default: bool) -> bool {
        self.raw.enabled.unwrap_or(default)
    }

    fn severity(&self, default: Severity) -> Result<Severity, String> {
        match &self.raw.severity {
            None => Ok(default),
            Some(s) => Severity::parse(s).ok_or_else(|| {
                format!(
                    "{}: {s:?} is not info, warning or critical",
                    self.key("severity")
                )
            }),
        }
    }

    /// A required threshold: `false` is refused.
    fn pct(&self, name: &str, v: &Option<RawNum>, default: Percent) -> Result<Percent, String> {
        match v {
            None => Ok(default),
            Some(v) => percent(&self.key(name), v)?.ok_or_else(|| {
                format!(
                    "{}: false is not allowed here (a percentage)",
                    self.key(name)
                )
            }),
        }
    }

    /// An optional (critical) threshold: `false` switches it off.
    fn opt_pct(
        &self,
        name: &str,
        v: &Option<RawNum>,
        default: Option<Percent>,
    ) -> Result<Option<Percent>, String> {
        match v {
            None => Ok(default),
            Some(v) => percent(&self.key(name), v),
        }
    }

    fn ratio(&self, name: &str, v: &Option<RawNum>, default: u32, max: i64) -> Result<u32, String> {
        match v {
            None => Ok(default),
            Some(v) => ratio(&self.key(name), v, max)?
                .ok_or_else(|| format!("{}: false is not allowed here (a number)", self.key(name))),
        }
    }

    fn opt_ratio(
        &self,
        name: &str,
        v: &Option<RawNum>,
        default: Option<u32>,
        max: i64,
    ) -> Result<Option<u32>, String> {
        match v {
            None => Ok(default),
            Some(v) => ratio(&self.key(name), v, max),
        }
    }

    fn count(&self, name: &str, v: Option<i64>, default: u32, max: i64) -> Result<u32, String> {
        v.map_or(Ok(default), |v| count(&self.key(name), v, max))
    }

    /// Refuses keys that this rule does not take.
    fn only(&self, allowed: &[&str]) -> Result<(), String> {
        let r = &self.raw;
        let present = [
            ("below_pct", r.below_pct.is_some()),
            ("critical_below_pct", r.critical_below_pct.is_some()),
            ("above_pct", r.above_pct.is_some()),
            ("critical_above_pct", r.critical_above_pct.is_some()),
            ("target_new_pct", r.target_new_pct.is_some()),
            ("tolerance_pct", r.tolerance_pct.is_some()),
            ("critical_tolerance_pct", r.critical_tolerance_pct.is_some()),
            ("min_ratio", r.min_ratio.is_some()),
            ("critical_min_ratio", r.critical_min_ratio.is_some()),
            ("below_score", r.below_score.is_some()),
            ("critical_below_score", r.critical_below_score.is_some()),
            ("min_working_days", r.min_working_days.is_some()),
            ("min_open_deals", r.min_open_deals.is_some()),
            ("window_months", r.window_months.is_some()),
            ("min_ratings", r.min_ratings.is_some()),
            ("min_share_of_total_pct", r.min_share_of_total_pct.is_some()),
            ("min_expected_deals", r.min_expected_deals.is_some()),
            ("credibility_deals", r.credibility_deals.is_some()),
            ("track_record_months", r.track_record_months.is_some()),
            ("min_expected", r.min_expected.is_some()),
            ("last_working_days", r.last_working_days.is_some()),
            ("review_working_days", r.review_working_days.is_some()),
        ];
        match present.iter().find(|(k, set)| *set && !allowed.contains(k)) {
            Some((k, _)) => Err(format!(
                "{}: not a setting of {} (it takes enabled, severity, {})",
                self.key(k),
                self.rule,
                allowed.join(", ")
            )),
            None => Ok(()),
        }
    }
}

/// A critical threshold must be at least as strict as the alert's own threshold.
fn stricter<T: PartialOrd + Copy>(
    key: &str,
    critical: Option<T>,
    threshold: T,
    lower_is_stricter: bool,
) -> Result<(), String> {
    match critical {
        Some(c)
            if (lower_is_stricter && c > threshold) || (!lower_is_stricter && c < threshold) =>
        {
            Err(format!(
                "{key}: the critical threshold must be {} the alert threshold",
                if lower_is_stricter {
                    "at or below"
                } else {
                    "at or above"
                }
            ))
        }
        _ => Ok(()),
    }
}

/// `[pace]`: the defaults, overridden key by key.
fn pace_config(raw: RawPace) -> Result<PaceConfig, String> {
    let d = PaceConfig::default();
    let curve = match raw.curve {
        None => d.curve,
        Some(c) => CurveMode::parse(&c)
            .ok_or_else(|| format!("pace.curve: {c:?} is not history or linear"))?,
    };
    let history_months = match raw.history_months {
        None => d.history_months,
        Some(n) => match count("pace.history_months", n, 120)? {
            0 => return Err("pace.history_months: 0 is not a whole number from 1 to 120".into()),
            n => n,
        },
    };
    let min_history_months = match raw.min_history_months {
        None => d.min_history_months.min(history_months),
        Some(n) => count("pace.min_history_months", n, i64::from(history_months))?,
    };
    Ok(PaceConfig {
        curve,
        history_months,
        min_history_months,
    })
}

/// `behind_pace`: the defaults `d`, overridden key by key.
fn behind_pace(raw: RawRule, d: &BehindPace) -> Result<BehindPace, String> {
    let k = RuleKeys {
        rule: "behind_pace",
        raw,
    };
    k.only(&[
        "below_pct",
        "critical_below_pct",
        "min_working_days",
        "min_share_of_total_pct",
        "min_expected_deals",
        "credibility_deals",
        "track_record_months",
    ])?;
    let c = BehindPace {
        enabled: k.enabled(d.enabled),
        severity: k.severity(d.severity)?,
        below_pct: k.pct("below_pct", &k.raw.below_pct, d.below_pct)?,
        critical_below_pct: k.opt_pct(
            "critical_below_pct",
            &k.raw.critical_below_pct,
            d.critical_below_pct,
        )?,
        min_working_days: k.count(
            "min_working_days",
            k.raw.min_working_days,
            d.min_working_days,
            DAYS_MAX,
        )?,
        min_share_of_total_pct: k.pct(
            "min_share_of_total_pct",
            &k.raw.min_share_of_total_pct,
            d.min_share_of_total_pct,
        )?,
        min_expected_deals: k.ratio(
            "min_expected_deals",
            &k.raw.min_expected_deals,
            d.min_expected_deals,
            100_000,
        )?,
        credibility_deals: k.ratio(
            "credibility_deals",
            &k.raw.credibility_deals,
            d.credibility_deals,
            100_000,
        )?,
        track_record_months: k.count(
            "track_record_months",
            k.raw.track_record_months,
            d.track_record_months,
            120,
        )?,
    };
    stricter(
        &k.key("critical_below_pct"),
        c.critical_below_pct,
        c.below_pct,
        true,
    )?;
    Ok(c)
}

/// `activity_behind`: the defaults `d`, overridden key by key.
fn pace_rule(rule: &str, raw: RawRule, d: &PaceRule) -> Result<PaceRule, String> {
    let k = RuleKeys { rule, raw };
    k.only(&[
        "below_pct",
        "critical_below_pct",
        "min_working_days",
        "min_expected",
        "track_record_months",
    ])?;
    let c = PaceRule {
        enabled: k.enabled(d.enabled),
        severity: k.severity(d.severity)?,
        below_pct: k.pct("below_pct", &k.raw.below_pct, d.below_pct)?,
        critical_below_pct: k.opt_pct(
            "critical_below_pct",
            &k.raw.critical_below_pct,
            d.critical_below_pct,
        )?,
        min_working_days: k.count(
            "min_working_days",
            k.raw.min_working_days,
            d.min_working_days,
            DAYS_MAX,
        )?,
        min_expected: k.count(
            "min_expected",
            k.raw.min_expected,
            d.min_expected,
            1_000_000,
        )?,
        track_record_months: k.count(
            "track_record_months",
            k.raw.track_record_months,
            d.track_record_months,
            120,
        )?,
    };
    stricter(
        &k.key("critical_below_pct"),
        c.critical_below_pct,
        c.below_pct,
        true,
    )?;
    Ok(c)
}

/// The most working days a month can have.
const DAYS_MAX: i64 = 23;

/// The alert settings: the brief's defaults, overridden key by key.
fn alert_config(raw: RawAlerts) -> Result<AlertConfig, String> {
    const DEALS_MAX: i64 = 1_000_000;
    let mut cfg = AlertConfig::default();
    if let Some(n) = raw.max_focus_per_rep {
        cfg.max_focus_per_rep = count("alerts.max_focus_per_rep", n, 100)?;
    }

    cfg.behind_pace = behind_pace(raw.behind_pace, &cfg.behind_pace)?;
    cfg.activity_behind = pace_rule("activity_behind", raw.activity_behind, &cfg.activity_behind)?;

    let k = RuleKeys {
        rule: "product_concentration",
        raw: raw.product_concentration,
    };
    k.only(&["above_pct", "critical_above_pct", "min_open_deals"])?;
    let d = &cfg.product_concentration;
    let c = pacer_projections::alerts::config::ProductConcentration {
        enabled: k.enabled(d.enabled),
        severity: k.severity(d.severity)?,
        above_pct: k.pct("above_pct", &k.raw.above_pct, d.above_pct)?,
        critical_above_pct: k.opt_pct(
            "critical_above_pct",
            &k.raw.critical_above_pct,
            d.critical_above_pct,
        )?,
        min_open_deals: k.count(
            "min_open_deals",
            k.raw.min_open_deals,
            d.min_open_deals,
            DEALS_MAX,
        )?,
    };
    stricter(
        &k.key("critical_above_pct"),
        c.critical_above_pct,
        c.above_pct,
        false,
    )?;
    cfg.product_concentration = c;

    let k = RuleKeys {
        rule: "customer_mix",
        raw: raw.customer_mix,
    };
    k.only(&[
        "target_new_pct",
        "tolerance_pct",
        "critical_tolerance_pct",
        "min_open_deals",
    ])?;
    let d = &cfg.customer_mix;
    let c = pacer_projections::alerts::config::CustomerMix {
        enabled: k.enabled(d.enabled),
        severity: k.severity(d.severity)?,
        target_new_pct: k.pct("target_new_pct", &k.raw.target_new_pct, d.target_new_pct)?,
        tolerance_pct: k.pct("tolerance_pct", &k.raw.tolerance_pct, d.tolerance_pct)?,
        critical_tolerance_pct: k.opt_pct(
            "critical_tolerance_pct",
            &k.raw.critical_tolerance_pct,
            d.critical_tolerance_pct,
        )?,
        min_open_deals: k.count(
            "min_open_deals",
            k.raw.min_open_deals,
            d.min_open_deals,
            DEALS_MAX,
        )?,
    };
    stricter(
        &k.key("critical_tolerance_pct"),
        c.critical_tolerance_pct,
        c.tolerance_pct,
        false,
    )?;
    cfg.customer_mix = c;

    let k = RuleKeys {
        rule: "low_coverage",
        raw: raw.low_coverage,
    };
    k.only(&["min_ratio", "critical_min_ratio", "last_working_days"])?;
    let d = &cfg.low_coverage;
    let c = pacer_projections::alerts::config::LowCoverage {
        enabled: k.enabled(d.enabled),
        severity: k.severity(d.severity)?,
        min_ratio: k.ratio("min_ratio", &k.raw.min_ratio, d.min_ratio, 100_000)?,
        critical_min_ratio: k.opt_ratio(
            "critical_min_ratio",
            &k.raw.critical_min_ratio,
            d.critical_min_ratio,
            100_000,
        )?,
        last_working_days: k.count(
            "last_working_days",
            k.raw.last_working_days,
            d.last_working_days,
            DAYS_MAX,
        )?,
    };
    stricter(
        &k.key("critical_min_ratio"),
        c.critical_min_ratio,
        c.min_ratio,
        true,
    )?;
    cfg.low_coverage = c;

    let k = RuleKeys {
        rule: "report_card_drop",
        raw: raw.report_card_drop,
    };
    k.only(&[
        "below_score",
        "critical_below_score",
        "window_months",
        "min_ratings",
    ])?;
    let d = &cfg.report_card_drop;
    let c = pacer_projections::alerts::config::ReportCardDrop {
        enabled: k.enabled(d.enabled),
        severity: k.severity(d.severity)?,
        below_score: k.ratio("below_score", &k.raw.below_score, d.below_score, 500)?,
        critical_below_score: k.opt_ratio(
            "critical_below_score",
            &k.raw.critical_below_score,
            d.critical_below_score,
            500,
        )?,
        window_months: k
            .count("window_months", k.raw.window_months, d.window_months, 24)?
            .max(1),
        min_ratings: k.count("min_ratings", k.raw.min_ratings, d.min_ratings, DEALS_MAX)?,
    };
    if k.raw.window_months == Some(0) {
        return Err(format!(
            "{}: 0 is not a whole number from 1 to 24",
            k.key("window_months")
        ));
    }
    stricter(
        &k.key("critical_below_score"),
        c.critical_below_score,
        c.below_score,
        true,
    )?;
    cfg.report_card_drop = c;

    let k = RuleKeys {
        rule: "month_missed",
        raw: raw.month_missed,
    };
    k.only(&["below_pct", "critical_below_pct", "review_working_days"])?;
    let d = &cfg.month_missed;
    let c = pacer_projections::alerts::config::MonthMissed {
        enabled: k.enabled(d.enabled),
        severity: k.severity(d.severity)?,
        below_pct: k.pct("below_pct", &k.raw.below_pct, d.below_pct)?,
        critical_below_pct: k.opt_pct(
            "critical_below_pct",
            &k.raw.critical_below_pct,
            d.critical_below_pct,
        )?,
        review_working_days: k.count(
            "review_working_days",
            k.raw.review_working_days,
            d.review_working_days,
            DAYS_MAX,
        )?,
    };
    stricter(
        &k.key("critical_below_pct"),
        c.critical_below_pct,
        c.below_pct,
        true,
    )?;
    cfg.month_missed = c;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deploy_example_with_every_webhook_section_parses() {
        let c = Config::parse(include_str!("../../deploy/pacer.example.toml")).unwrap();
        assert!(c.webhooks.hubspot.is_some());
        assert!(c.webhooks.pipedrive.is_some());
        assert!(c.webhooks.salesforce.is_some());
        assert!(c.webhooks.native.is_open_to_anyone());
        assert!(c.nats.urls.is_empty(), "no broker unless configured");
        let err = Config::parse("[webhooks]\nbody_bytes_max = 10\n").unwrap_err();
        assert!(err.contains("webhooks.body_bytes_max"), "{err}");
        let err = Config::parse("[webhooks.zoho]\nuser = \"x\"\n").unwrap_err();
        assert!(err.contains("zoho"), "{err}");
    }

    #[test]
    fn defaults_apply_to_an_empty_file() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.org.timezone, chrono_tz::UTC);
        assert_eq!(c.org.currency.code(), "USD");
        assert_eq!(c.org.fiscal_year_start_month, 1);
    }

    #[test]
    fn reads_the_org_section() {
        let c = Config::parse("[org]\ntimezone = \"Europe/Berlin\"\ncurrency = \"EUR\"\nfiscal_year_start_month = 4\n")
            .unwrap();
        assert_eq!(c.org.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(c.org.currency.code(), "EUR");
        assert_eq!(c.org.fiscal_year_start_month, 4);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let e = Config::parse("[org]\ntimezon = \"UTC\"\n").unwrap_err();
        assert!(e.contains("timezon"), "{e}");
        let e = Config::parse("[orgs]\n").unwrap_err();
        assert!(e.contains("orgs"), "{e}");
        let e = Config::parse("[org]\ntimezone = \"Mars/Olympus\"\n").unwrap_err();
        assert!(
            e.contains("org.timezone") && e.contains("Mars/Olympus"),
            "{e}"
        );
        let e = Config::parse("[org]\ncurrency = \"EURO\"\n").unwrap_err();
        assert!(e.contains("org.currency") && e.contains("EURO"), "{e}");
        let e = Config::parse("[org]\nlocale = \"xx-Nowhere\"\n").unwrap_err();
        assert!(e.contains("org.locale") && e.contains("xx-Nowhere"), "{e}");
        let de = Config::parse("[org]\nlocale = \"de\"\n").unwrap();
        assert_eq!(de.locale.decimal(), ",");
        assert_eq!(Config::default().locale.decimal(), ".");
        let e = Config::parse("[org]\nfiscal_year_start_month = 13\n").unwrap_err();
        assert!(
            e.contains("fiscal_year_start_month") && e.contains("13"),
            "{e}"
        );
        let e = Config::parse("[org]\nfiscal_year_start_month = \"april\"\n").unwrap_err();
        assert!(e.contains("fiscal_year_start_month"), "{e}");
    }

    #[test]
    fn nats_and_serve_sections() {
        let c = Config::parse(
            "[nats]\nurls = [\"nats://a:4222\", \"nats://b:4222\"]\nsubject_prefix = \"acme.pacer\"\n\
             [serve]\ntick_interval_s = 60\ndigest_weekday = \"friday\"\ndigest_time = \"16:30\"\n",
        )
        .unwrap();
        assert_eq!(c.nats.urls.len(), 2);
        assert_eq!(c.nats.subject_prefix, "acme.pacer");
        assert_eq!(c.nats.duplicate_window_s, 86_400);
        assert_eq!(c.serve.tick_interval_s, 60);
        assert_eq!(c.serve.digest_weekday, chrono::Weekday::Fri);
        assert_eq!((c.serve.digest_hour, c.serve.digest_minute), (16, 30));
        for (text, key) in [
            ("[nats]\nsubject_prefix = \"a..b\"\n", "nats.subject_prefix"),
            ("[nats]\nsubject_prefix = \"a.*\"\n", "nats.subject_prefix"),
            ("[nats]\nurls = []\n", "nats.urls"),
            ("[serve]\ntick_interval_s = -1\n", "serve.tick_interval_s"),
            (
                "[serve]\ndigest_weekday = \"someday\"\n",
                "serve.digest_weekday",
            ),
            ("[serve]\ndigest_time = \"25:00\"\n", "serve.digest_time"),
            ("[serve]\nbatch = 5\n", "batch"),
        ] {
            let e = Config::parse(text).unwrap_err();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn pacing_and_evidence_settings_are_read_and_checked() {
        let c = Config::parse(
            "[pace]\ncurve = \"linear\"\nhistory_months = 9\nmin_history_months = 4\n\
             [alerts.behind_pace]\nmin_share_of_total_pct = 12.5\nmin_expected_deals = 1.5\n\
             credibility_deals = 8\ntrack_record_months = 6\n\
             [alerts.activity_behind]\nmin_expected = 3\n\
             [alerts.low_coverage]\nlast_working_days = 5\n\
             [alerts.month_missed]\nreview_working_days = 2\n",
        )
        .unwrap();
        assert_eq!(
            c.org.pace,
            PaceConfig {
                curve: CurveMode::Linear,
                history_months: 9,
                min_history_months: 4
            }
        );
        let b = &c.org.alerts.behind_pace;
        assert_eq!(b.min_share_of_total_pct.hundredths(), 1_250);
        assert_eq!((b.min_expected_deals, b.credibility_deals), (150, 800));
        assert_eq!(b.track_record_months, 6);
        assert_eq!(c.org.alerts.activity_behind.min_expected, 3);
        assert_eq!(c.org.alerts.low_coverage.last_working_days, 5);
        assert_eq!(c.org.alerts.month_missed.review_working_days, 2);
        assert_eq!(Config::parse("").unwrap().org.pace, PaceConfig::default());
        for (text, key) in [
            ("[pace]\ncurve = \"wiggly\"\n", "pace.curve"),
            ("[pace]\nhistory_months = 0\n", "pace.history_months"),
            (
                "[pace]\nhistory_months = 6\nmin_history_months = 7\n",
                "pace.min_history_months",
            ),
            (
                "[alerts.behind_pace]\nmin_share_of_total_pct = 101\n",
                "alerts.behind_pace.min_share_of_total_pct",
            ),
            (
                "[alerts.activity_behind]\nmin_share_of_total_pct = 5\n",
                "alerts.activity_behind.min_share_of_total_pct",
            ),
            (
                "[alerts.low_coverage]\nlast_working_days = 40\n",
                "alerts.low_coverage.last_working_days",
            ),
        ] {
            let e = Config::parse(text).unwrap_err();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn alert_defaults_are_the_briefs() {
        let c = Config::parse("").unwrap();
        let a = &c.org.alerts;
        assert_eq!(a.max_focus_per_rep, 2);
        assert_eq!(a.behind_pace.below_pct.hundredths(), 9_000);
        assert_eq!(a.product_concentration.above_pct.hundredths(), 7_000);
        assert_eq!(a.customer_mix.target_new_pct.hundredths(), 5_000);
        assert_eq!(a.low_coverage.min_ratio, 300);
        assert_eq!(a.month_missed.severity, Severity::Info);
        assert!(a.report_card_drop.enabled);
    }

    #[test]
    fn alert_settings_are_read_exactly() {
        let c = Config::parse(
            "[alerts]\nmax_focus_per_rep = 1\n\
             [alerts.behind_pace]\nbelow_pct = 85.5\ncritical_below_pct = false\nseverity = \"critical\"\n\
             [alerts.low_coverage]\nmin_ratio = \"2.5\"\n\
             [alerts.report_card_drop]\nbelow_score = 3.75\nenabled = false\n",
        )
        .unwrap();
        let a = &c.org.alerts;
        assert_eq!(a.max_focus_per_rep, 1);
        assert_eq!(a.behind_pace.below_pct.hundredths(), 8_550);
        assert_eq!(a.behind_pace.critical_below_pct, None);
        assert_eq!(a.behind_pace.severity, Severity::Critical);
        assert_eq!(a.low_coverage.min_ratio, 250);
        assert_eq!(a.report_card_drop.below_score, 375);
        assert!(!a.report_card_drop.enabled);
    }

    #[test]
    fn bad_alert_settings_name_the_key_and_value() {
        for (text, key, value) in [
            (
                "[alerts.behind_pace]\nbelow_pct = 120\n",
                "alerts.behind_pace.below_pct",
                "120",
            ),
            (
                "[alerts.behind_pace]\nbelow_pct = 90.125\n",
                "alerts.behind_pace.below_pct",
                "90.125",
            ),
            (
                "[alerts.behind_pace]\nseverity = \"loud\"\n",
                "alerts.behind_pace.severity",
                "loud",
            ),
            (
                "[alerts.behind_pace]\nabove_pct = 10\n",
                "alerts.behind_pace.above_pct",
                "behind_pace",
            ),
            (
                "[alerts.behind_pace]\ncritical_below_pct = 95\n",
                "alerts.behind_pace.critical_below_pct",
                "at or below",
            ),
            (
                "[alerts.product_concentration]\ncritical_above_pct = 60\n",
                "critical_above_pct",
                "at or above",
            ),
            (
                "[alerts.report_card_drop]\nwindow_months = 0\n",
                "alerts.report_card_drop.window_months",
                "0",
            ),
            (
                "[alerts.report_card_drop]\nbelow_score = 6\n",
                "alerts.report_card_drop.below_score",
                "6",
            ),
            (
                "[alerts]\nmax_focus_per_rep = -1\n",
                "alerts.max_focus_per_rep",
                "-1",
            ),
            ("[alerts.behind_pac]\n", "behind_pac", ""),
            (
                "[alerts.low_coverage]\nmin_ratio = false\n",
                "alerts.low_coverage.min_ratio",
                "false",
            ),
        ] {
            let e = Config::parse(text).unwrap_err();
            assert!(e.contains(key) && e.contains(value), "{text}: {e}");
        }
    }
}
