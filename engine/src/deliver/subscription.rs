//! Subscriptions: which alert changes (or which team's weekly digest) a user wants,
//! where, and when. They live outside the event log, like users, in
//! `subscriptions.json` in the data dir (mode 0600: webhook secrets), written whole
//! under a lock file by `pacer subscribe`, the HTTP API and the deliverer (which
//! disables one whose receiver is gone), and read again by a running server when the
//! file changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use pacer_projections::alerts::{Rule, Severity};
use serde::{Deserialize, Serialize};

use crate::access::{now_rfc3339, random_bytes, valid_name, write_private, AccessError};

/// The subscriptions file in a data dir.
pub const SUBSCRIPTIONS_FILE: &str = "subscriptions.json";
/// Held (exclusively) while the file is read, changed and written.
const LOCK_FILE: &str = "subscriptions.lock";
/// The most subscriptions one file holds.
pub const SUBSCRIPTIONS_MAX: usize = 10_000;
/// The longest URL or address taken.
const ADDRESS_BYTES_MAX: usize = 2048;

/// Where a subscription's messages go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Channel {
    /// An email over the configured SMTP server.
    Email { to: String },
    /// A Slack incoming webhook (Block Kit).
    Slack { url: String },
    /// A Microsoft Teams workflow webhook (an Adaptive Card).
    Teams { url: String },
    /// Any HTTPS endpoint, signed with Standard Webhooks under `secret` (`whsec_…`).
    Webhook { url: String, secret: String },
}

impl Channel {
    pub fn kind(&self) -> &'static str {
        match self {
            Channel::Email { .. } => "email",
            Channel::Slack { .. } => "slack",
            Channel::Teams { .. } => "teams",
            Channel::Webhook { .. } => "webhook",
        }
    }

    /// Where it goes, as a person reads it (a webhook's path, query and credentials
    /// are left out: Slack's and Teams' URLs are secrets).
    pub fn target(&self) -> String {
        match self {
            Channel::Email { to } => to.clone(),
            Channel::Slack { url } | Channel::Teams { url } | Channel::Webhook { url, .. } => {
                origin(url) + "/…"
            }
        }
    }
}

/// When a subscription's messages go out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cadence {
    /// As alert changes happen, a burst gathered into one message.
    Immediate,
    /// One summary a day at `[deliver] daily_hour`, local time.
    Daily,
    /// The team's weekly digest, when the engine makes it.
    Weekly,
}

impl Cadence {
    pub fn parse(text: &str) -> Result<Cadence, String> {
        match text {
            "immediate" => Ok(Cadence::Immediate),
            "daily" => Ok(Cadence::Daily),
            "weekly" => Ok(Cadence::Weekly),
            _ => Err(format!(
                "cadence: {text:?} is not immediate, daily or weekly"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Cadence::Immediate => "immediate",
            Cadence::Daily => "daily",
            Cadence::Weekly => "weekly",
        }
    }
}

/// Why and when a subscription stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disabled {
    pub at: String,
    pub reason: String,
}

/// One user's wish for alerts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// `sub-` and 8 hex digits.
    pub id: String,
    pub user: String,
    pub channel: Channel,
    /// Only these teams (each within the user's scope); empty: every team in scope.
    #[serde(default)]
    pub teams: Vec<String>,
    /// Only these rules; empty: every rule.
    #[serde(default)]
    pub rules: Vec<String>,
    /// `info`, `warning` or `critical`.
    pub severity_min: String,
    /// Only alerts in the rep's focus list.
    #[serde(default)]
    pub focus_only: bool,
    pub cadence: Cadence,
    /// `HH:MM-HH:MM` local time: messages due then wait for its end.
    #[serde(default)]
    pub quiet: Option<String>,
    pub created_at: String,
    #[serde(default)]
    pub disabled: Option<Disabled>,
}

/// The alert changes a subscription hears of: the ones a manager acts on.
pub const CHANGES: [&str; 3] = ["raised", "escalated", "reopened"];

/// What a subscription is asked for, before it has an id.
#[derive(Clone, Debug, Default)]
pub struct Wish {
    pub user: String,
    pub channel: Option<Channel>,
    pub teams: Vec<String>,
    pub rules: Vec<String>,
    pub severity_min: Option<String>,
    pub focus_only: bool,
    pub cadence: Option<String>,
    pub quiet: Option<String>,
    /// Plain HTTP to this machine is taken (`[deliver] allow_http_loopback`).
    pub allow_http_loopback: bool,
}

/// The facts of one alert change a subscription is matched on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertFacts {
    pub id: String,
    pub change: String,
    pub rule: String,
    pub severity: Severity,
    pub focus: bool,
    pub team: String,
    pub rep: String,
}

impl AlertFacts {
    /// Reads them from an alert change as published (`output::alert_object` with
    /// `change`); `None` for anything else (a system alert).
    pub fn of(json: &serde_json::Value) -> Option<AlertFacts> {
        let s = |k: &str| json.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        Some(AlertFacts {
            id: s("alert_id")?,
            change: s("change")?,
            rule: s("rule")?,
            severity: Severity::parse(json.get("severity")?.as_str()?)?,
            focus: json.get("focus")?.as_bool()?,
            team: s("team")?,
            rep: s("rep")?,
        })
    }
}

impl Subscription {
    pub fn severity(&self) -> Severity {
        Severity::parse(&self.severity_min).unwrap_or(Severity::Info)
    }

    /// Whether this subscription wants an alert change (scope is the caller's).
    pub fn wants(&self, a: &AlertFacts) -> bool {
        self.disabled.is_none()
            && self.cadence != Cadence::Weekly
            && CHANGES.contains(&a.change.as_str())
            && (self.teams.is_empty() || self.teams.contains(&a.team))
            && (self.rules.is_empty() || self.rules.contains(&a.rule))
            && a.severity >= self.severity()
            && (!self.focus_only || a.focus)
    }

    /// Whether this subscription wants a team's weekly digest.
    pub fn wants_digest(&self, team: &str) -> bool {
        self.disabled.is_none()
            && self.cadence == Cadence::Weekly
            && (self.teams.is_empty() || self.teams.iter().any(|t| t == team))
    }

    /// The quiet hours as minutes of the day `(from, to)`.
    pub fn quiet_minutes(&self) -> Option<(u32, u32)> {
        self.quiet.as_deref().and_then(|q| parse_quiet(q).ok())
    }

    /// The JSON shown to people: a webhook's secret is never shown again.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("subscriptions serialise");
        if let Some(ch) = v.get_mut("channel").and_then(|c| c.as_object_mut()) {
            if ch.contains_key("secret") {
                ch.insert("secret".into(), "(hidden)".into());
            }
            if ch.contains_key("url") {
                ch.insert("url".into(), self.channel.target().into());
            }
        }
        v
    }
}

/// `HH:MM-HH:MM` as minutes of the day; the window may wrap midnight.
pub fn parse_quiet(text: &str) -> Result<(u32, u32), String> {
    let bad = || format!("quiet: {text:?} is not HH:MM-HH:MM (such as 20:00-07:00)");
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let minutes = |t: &str| -> Option<u32> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
        (h < 24 && m < 60 && t.trim().len() == 5).then_some(h * 60 + m)
    };
    let (from, to) = (minutes(a).ok_or_else(bad)?, minutes(b).ok_or_else(bad)?);
    if from == to {
        return Err(format!("quiet: {text:?} starts and ends at the same time"));
    }
    Ok((from, to))
}

/// Whether minute-of-day `m` falls in the quiet window `(from, to)`.
pub fn in_quiet(m: u32, (from, to): (u32, u32)) -> bool {
    if from < to {
        (from..to).contains(&m)
    } else {
        m >= from || m < to
    }
}

/// `scheme://host[:port]` of a URL, without credentials, path or query.
pub fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}")
}

/// A webhook URL must be HTTPS; plain HTTP only to this machine (a test receiver or a
/// local relay), and only where `[deliver] allow_http_loopback` says so.
pub fn check_url(field: &str, url: &str, allow_http_loopback: bool) -> Result<(), String> {
    if url.len() > ADDRESS_BYTES_MAX {
        return Err(format!("{field}: longer than {ADDRESS_BYTES_MAX} bytes"));
    }
    let host = |rest: &str| rest.split(['/', '?', '#']).next().unwrap_or("").to_owned();
    if let Some(rest) = url.strip_prefix("https://") {
        if !host(rest).is_empty() {
            return Ok(());
        }
    } else if let Some(rest) = url.strip_prefix("http://") {
        let h = host(rest);
        let name = h.rsplit_once(':').map_or(h.as_str(), |(n, _)| n);
        if matches!(name, "127.0.0.1" | "localhost" | "[::1]") {
            if allow_http_loopback {
                return Ok(());
            }
            return Err(format!(
                "{field}: {url:?} is plain HTTP to this machine; use https:// (or set [deliver] allow_http_loopback for a local relay)"
            ));
        }
        return Err(format!(
            "{field}: {url:?} is plain HTTP to another machine; use https://"
        ));
    }
    Err(format!("{field}: {url:?} is not an https:// URL"))
}

/// Every subscription, by id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscriptions {
    #[serde(default)]
    pub subscriptions: BTreeMap<String, Subscription>,
}

impl Subscriptions {
    /// The subscriptions file of a data dir (none when there is no file).
    pub fn load(data_dir: &Path) -> Result<Subscriptions, AccessError> {
        let path = data_dir.join(SUBSCRIPTIONS_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| AccessError::Corrupt {
                path,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Subscriptions::default()),
            Err(source) => Err(AccessError::Io {
                doing: "read",
                path,
                source,
            }),
        }
    }

    /// Reads the file, applies `change` and writes it back, holding the lock file so
    /// that the CLI, the HTTP API and the deliverer never undo each other's change.
    /// Nothing is written when `change` fails.
    pub fn update<T>(
        data_dir: &Path,
        change: impl FnOnce(&mut Subscriptions) -> Result<T, AccessError>,
    ) -> Result<T, AccessError> {
        let lock_path = data_dir.join(LOCK_FILE);
        let io = |doing, path: &PathBuf, source| AccessError::Io {
            doing,
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(|e| io("create", &data_dir.to_owned(), e))?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io("open", &lock_path, e))?;
        lock.lock().map_err(|e| io("lock", &lock_path, e))?;
        let mut subs = Subscriptions::load(data_dir)?;
        let out = change(&mut subs)?;
        let text = serde_json::to_vec_pretty(&subs).expect("subscriptions serialise");
        write_private(&data_dir.join(SUBSCRIPTIONS_FILE), &text)?;
        Ok(out)
    }

    /// Adds a subscription for `wish.user` (who must exist, with `role`'s scope
    /// checked by the caller) and returns it, with a webhook secret made when none
    /// was given.
    pub fn add(&mut self, wish: Wish) -> Result<Subscription, AccessError> {
        let allow_http_loopback = wish.allow_http_loopback;
        let invalid = |m: String| AccessError::Invalid(m);
        if self.subscriptions.len() >= SUBSCRIPTIONS_MAX {
            return Err(invalid(format!(
                "subscription: at most {SUBSCRIPTIONS_MAX} subscriptions"
            )));
        }
        let channel = match wish.channel {
            None => {
                return Err(invalid(
                    "channel: give one of --email, --slack, --teams or --webhook".into(),
                ))
            }
            Some(Channel::Email { to }) => {
                if to.len() > ADDRESS_BYTES_MAX || to.parse::<lettre::Address>().is_err() {
                    return Err(invalid(format!("email: {to:?} is not an email address")));
                }
                Channel::Email { to }
            }
            Some(Channel::Slack { url }) => {
                check_url("slack", &url, allow_http_loopback).map_err(invalid)?;
                Channel::Slack { url }
            }
            Some(Channel::Teams { url }) => {
                check_url("teams", &url, allow_http_loopback).map_err(invalid)?;
                Channel::Teams { url }
            }
            Some(Channel::Webhook { url, secret }) => {
                check_url("webhook", &url, allow_http_loopback).map_err(invalid)?;
                let secret = if secret.is_empty() {
                    format!(
                        "whsec_{}",
                        base64::engine::general_purpose::STANDARD.encode(random_bytes::<24>())
                    )
                } else {
                    crate::webhook::auth::WebhookSecret::parse(&secret)
                        .map_err(|e| invalid(format!("secret: {e}")))?;
                    secret
                };
                Channel::Webhook { url, secret }
            }
        };
        if let Some(t) = wish.teams.iter().find(|t| !valid_name(t)) {
            return Err(invalid(format!("team: {t:?} is not a team name")));
        }
        if let Some(r) = wish.rules.iter().find(|r| Rule::parse(r).is_none()) {
            let all: Vec<&str> = Rule::ALL.iter().map(|r| r.as_str()).collect();
            return Err(invalid(format!(
                "rule: {r:?} is not one of {}",
                all.join(", ")
            )));
        }
        let severity_min = wish.severity_min.unwrap_or_else(|| "info".into());
        if Severity::parse(&severity_min).is_none() {
            return Err(invalid(format!(
                "severity_min: {severity_min:?} is not info, warning or critical"
            )));
        }
        let cadence =
            Cadence::parse(wish.cadence.as_deref().unwrap_or("immediate")).map_err(invalid)?;
        if let Some(q) = &wish.quiet {
            parse_quiet(q).map_err(invalid)?;
        }
        let id = loop {
            let b = random_bytes::<4>();
            let id = format!("sub-{:02x}{:02x}{:02x}{:02x}", b[0], b[1], b[2], b[3]);
            if !self.subscriptions.contains_key(&id) {
                break id;
            }
        };
        let mut teams = wish.teams;
        teams.sort();
        teams.dedup();
        let mut rules = wish.rules;
        rules.sort();
        rules.dedup();
        let sub = Subscription {
            id: id.clone(),
            user: wish.user,
            channel,
            teams,
            rules,
            severity_min,
            focus_only: wish.focus_only,
            cadence,
            quiet: wish.quiet,
            created_at: now_rfc3339(),
            disabled: None,
        };
        self.subscriptions.insert(id, sub.clone());
        Ok(sub)
    }

    pub fn get(&self, id: &str) -> Result<&Subscription, AccessError> {
        self.subscriptions
            .get(id)
            .ok_or_else(|| AccessError::Invalid(format!("subscription: no subscription {id:?}")))
    }

    pub fn remove(&mut self, id: &str) -> Result<Subscription, AccessError> {
        self.get(id)?;
        Ok(self.subscriptions.remove(id).expect("just found"))
    }

    /// Stops a subscription, saying why; `false` when it was stopped already.
    pub fn disable(&mut self, id: &str, reason: &str) -> Result<bool, AccessError> {
        self.get(id)?;
        let sub = self.subscriptions.get_mut(id).expect("just found");
        if sub.disabled.is_some() {
            return Ok(false);
        }
        sub.disabled = Some(Disabled {
            at: now_rfc3339(),
            reason: reason.to_owned(),
        });
        Ok(true)
    }

    pub fn enable(&mut self, id: &str) -> Result<(), AccessError> {
        self.get(id)?;
        self.subscriptions.get_mut(id).expect("just found").disabled = None;
        Ok(())
    }

    /// A user's subscriptions, by id.
    pub fn of_user<'a>(&'a self, user: &'a str) -> impl Iterator<Item = &'a Subscription> + 'a {
        self.subscriptions.values().filter(move |s| s.user == user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(change: &str, severity: Severity, focus: bool) -> AlertFacts {
        AlertFacts {
            id: "a1".into(),
            change: change.into(),
            rule: "behind_pace".into(),
            severity,
            focus,
            team: "west".into(),
            rep: "ana".into(),
        }
    }

    fn wish() -> Wish {
        Wish {
            user: "maria".into(),
            channel: Some(Channel::Email {
                to: "maria@example.com".into(),
            }),
            ..Wish::default()
        }
    }

    #[test]
    fn a_subscription_wants_what_it_names_and_nothing_else() {
        let mut subs = Subscriptions::default();
        let all = subs.add(wish()).unwrap();
        assert!(all.wants(&facts("raised", Severity::Info, false)));
        assert!(all.wants(&facts("escalated", Severity::Info, false)));
        assert!(!all.wants(&facts("resolved", Severity::Critical, true)));
        assert!(!all.wants(&facts("acknowledged", Severity::Critical, true)));
        let narrow = subs
            .add(Wish {
                teams: vec!["east".into()],
                severity_min: Some("critical".into()),
                ..wish()
            })
            .unwrap();
        assert!(!narrow.wants(&facts("raised", Severity::Critical, true)));
        let mut f = facts("raised", Severity::Critical, true);
        f.team = "east".into();
        assert!(narrow.wants(&f));
        f.severity = Severity::Warning;
        assert!(!narrow.wants(&f));
        let focus = subs
            .add(Wish {
                focus_only: true,
                rules: vec!["low_coverage".into()],
                ..wish()
            })
            .unwrap();
        let mut f = facts("raised", Severity::Info, true);
        assert!(!focus.wants(&f), "another rule");
        f.rule = "low_coverage".into();
        assert!(focus.wants(&f));
        f.focus = false;
        assert!(!focus.wants(&f), "not in focus");
        let weekly = subs
            .add(Wish {
                cadence: Some("weekly".into()),
                ..wish()
            })
            .unwrap();
        assert!(!weekly.wants(&facts("raised", Severity::Critical, true)));
        assert!(weekly.wants_digest("west"));
        assert!(!all.wants_digest("west"));
    }

    #[test]
    fn bad_wishes_name_the_field_and_the_value() {
        let mut subs = Subscriptions::default();
        let err = |w: Wish, subs: &mut Subscriptions| subs.add(w).unwrap_err().to_string();
        let e = err(
            Wish {
                channel: Some(Channel::Email {
                    to: "not-an-address".into(),
                }),
                ..wish()
            },
            &mut subs,
        );
        assert!(e.contains("email") && e.contains("not-an-address"), "{e}");
        let e = err(
            Wish {
                channel: Some(Channel::Slack {
                    url: "http://hooks.slack.com/x".into(),
                }),
                ..wish()
            },
            &mut subs,
        );
        assert!(e.contains("slack") && e.contains("https"), "{e}");
        let e = err(
            Wish {
                rules: vec!["behind".into()],
                ..wish()
            },
            &mut subs,
        );
        assert!(e.contains("rule") && e.contains("\"behind\""), "{e}");
        let e = err(
            Wish {
                severity_min: Some("high".into()),
                ..wish()
            },
            &mut subs,
        );
        assert!(e.contains("severity_min") && e.contains("high"), "{e}");
        let e = err(
            Wish {
                quiet: Some("22-07".into()),
                ..wish()
            },
            &mut subs,
        );
        assert!(e.contains("quiet") && e.contains("22-07"), "{e}");
        let e = err(
            Wish {
                cadence: Some("hourly".into()),
                ..wish()
            },
            &mut subs,
        );
        assert!(e.contains("cadence") && e.contains("hourly"), "{e}");
        let e = err(
            Wish {
                channel: Some(Channel::Teams {
                    url: "http://127.0.0.1:8080/admin".into(),
                }),
                ..wish()
            },
            &mut subs,
        );
        assert!(
            e.contains("teams") && e.contains("allow_http_loopback"),
            "{e}"
        );
        assert!(subs.subscriptions.is_empty(), "nothing half-added");
        assert_eq!(
            origin("https://user:pw@hooks.slack.com/services/T0/B0/XYZ?x=1"),
            "https://hooks.slack.com"
        );
        // A webhook without a secret gets one, and it is never shown again.
        let hook = subs
            .add(Wish {
                channel: Some(Channel::Webhook {
                    url: "http://127.0.0.1:9/in".into(),
                    secret: String::new(),
                }),
                allow_http_loopback: true,
                ..wish()
            })
            .unwrap();
        let Channel::Webhook { secret, .. } = &hook.channel else {
            unreachable!()
        };
        assert!(secret.starts_with("whsec_"));
        assert!(!hook.to_json().to_string().contains(secret.as_str()));
    }

    #[test]
    fn quiet_hours_may_wrap_midnight() {
        let night = parse_quiet("20:00-07:00").unwrap();
        assert!(in_quiet(21 * 60, night) && in_quiet(3 * 60, night));
        assert!(!in_quiet(7 * 60, night) && !in_quiet(12 * 60, night));
        let lunch = parse_quiet("12:00-13:30").unwrap();
        assert!(in_quiet(12 * 60 + 10, lunch) && !in_quiet(13 * 60 + 30, lunch));
        assert!(parse_quiet("25:00-07:00").is_err());
        assert!(parse_quiet("07:00-07:00").is_err());
    }
}
