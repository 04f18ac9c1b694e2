//! `pacer subscribe` and `pacer deliveries`: who gets which alerts where, and what
//! became of each message. Subscriptions live in `subscriptions.json` in the data dir
//! (a running server reads it again when it changes), so `pacer subscribe` works
//! whether or not the server runs. Deliveries live in the log's database: `pacer
//! deliveries` reads them there with the server stopped, or asks a running server
//! (`--http URL`, with an admin's or a service user's token).

use std::process::ExitCode;

use anyhow::Context as _;
use pacer_engine::access::{audit, Users, USERS_FILE};
use pacer_engine::deliver::store::{DeliveryState, Store};
use pacer_engine::deliver::subscription::{Channel, Subscriptions, Wish};
use serde_json::{json, Value};

use super::common::{call_server, json_text};
use super::user::operator;
use crate::context::{say, Context};

#[derive(clap::Subcommand, Debug)]
pub enum SubscribeCommand {
    /// Subscribes a user to alerts (or a team's weekly digest) by email, Slack, Teams
    /// or a signed webhook.
    #[command(after_help = "Examples:\n  \
pacer subscribe add --user maria --email maria@example.com --severity-min warning\n  \
pacer subscribe add --user maria --slack https://hooks.slack.com/services/T0/B0/XXXX --focus-only --quiet 19:00-07:30\n  \
pacer subscribe add --user maria --email maria@example.com --cadence weekly --team west\n  \
pacer subscribe add --user ops --webhook https://alerts.example.com/pacer --cadence daily\n\n\
A user hears only of reps and teams in their scope (a manager: the teams they manage and\n\
any listed for them), checked when each alert comes. Cadence: immediate (a burst gathered\n\
into one message within [deliver] gather_ms), daily (one summary at [deliver] daily_hour),\n\
weekly (the team's digest). Quiet hours are in the org's time zone.")]
    Add(Box<AddArgs>),
    /// The subscriptions (a webhook's secret is never shown again).
    List {
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Removes a subscription; what it was still waiting for is not sent.
    Remove { id: String },
    /// Stops a subscription for now.
    Disable {
        id: String,
        #[arg(long, default_value = "disabled by the operator")]
        reason: String,
    },
    /// Starts a stopped subscription again (after a 410 or a bounce was fixed).
    Enable { id: String },
}

#[derive(clap::Args, Debug)]
pub struct AddArgs {
    /// The user (`pacer user add`) whose scope bounds what they hear of.
    #[arg(long)]
    user: String,
    /// Email to this address (needs `[deliver.smtp]`).
    #[arg(long, group = "channel")]
    email: Option<String>,
    /// A Slack incoming-webhook URL.
    #[arg(long, group = "channel")]
    slack: Option<String>,
    /// A Microsoft Teams workflow-webhook URL ("Post to a channel when a webhook
    /// request is received").
    #[arg(long, group = "channel")]
    ms_teams: Option<String>,
    /// Any HTTPS endpoint; requests are signed with Standard Webhooks.
    #[arg(long, group = "channel")]
    webhook: Option<String>,
    /// The `whsec_…` secret for `--webhook`; made (and shown once) when not given.
    #[arg(long, requires = "webhook")]
    secret: Option<String>,
    /// Only these teams (repeat, or separate with commas); default: every team in scope.
    #[arg(long, value_delimiter = ',')]
    team: Vec<String>,
    /// Only these rules (behind_pace, activity_behind, ...); default: every rule.
    #[arg(long, value_delimiter = ',')]
    rule: Vec<String>,
    /// info (default), warning or critical.
    #[arg(long)]
    severity_min: Option<String>,
    /// Only alerts in a rep's focus list (the few to act on this week).
    #[arg(long)]
    focus_only: bool,
    /// immediate (default), daily or weekly.
    #[arg(long)]
    cadence: Option<String>,
    /// HH:MM-HH:MM, local time: messages due then wait for its end.
    #[arg(long)]
    quiet: Option<String>,
}

impl AddArgs {
    fn wish(self, allow_http_loopback: bool) -> Wish {
        let channel = if let Some(to) = self.email {
            Some(Channel::Email { to })
        } else if let Some(url) = self.slack {
            Some(Channel::Slack { url })
        } else if let Some(url) = self.ms_teams {
            Some(Channel::Teams { url })
        } else {
            self.webhook.map(|url| Channel::Webhook {
                url,
                secret: self.secret.unwrap_or_default(),
            })
        };
        Wish {
            user: self.user,
            channel,
            teams: self.team,
            rules: self.rule,
            severity_min: self.severity_min,
            focus_only: self.focus_only,
            cadence: self.cadence,
            quiet: self.quiet,
            allow_http_loopback,
        }
    }
}

/// One line on a subscription.
pub fn describe(s: &Value) -> String {
    let ch = &s["channel"];
    let target = ch["to"].as_str().or(ch["url"].as_str()).unwrap_or("");
    let list = |k: &str, all: &str| {
        let v: Vec<&str> = s[k]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if v.is_empty() {
            all.to_owned()
        } else {
            v.join(",")
        }
    };
    format!(
        "{}\t{}\t{} {}\t{}\tteams={}\trules={}\tseverity>={}{}{}{}",
        s["id"].as_str().unwrap_or(""),
        s["user"].as_str().unwrap_or(""),
        ch["kind"].as_str().unwrap_or(""),
        target,
        s["cadence"].as_str().unwrap_or(""),
        list("teams", "all-in-scope"),
        list("rules", "all"),
        s["severity_min"].as_str().unwrap_or(""),
        if s["focus_only"].as_bool() == Some(true) {
            "\tfocus-only"
        } else {
            ""
        },
        s["quiet"]
            .as_str()
            .map_or(String::new(), |q| format!("\tquiet={q}")),
        s["disabled"]["reason"]
            .as_str()
            .map_or(String::new(), |r| format!("\tDISABLED: {r}")),
    )
}

pub fn run_subscribe(ctx: &Context, cmd: SubscribeCommand) -> anyhow::Result<ExitCode> {
    let dir = &ctx.data_dir;
    match cmd {
        SubscribeCommand::Add(args) => {
            let wish = (*args).wish(ctx.config.deliver.allow_http_loopback);
            let users = Users::load(&dir.join(USERS_FILE))?;
            let Some(user) = users.users.get(&wish.user) else {
                anyhow::bail!(
                    "user: no user {:?} (pacer user add {} --role manager)",
                    wish.user,
                    wish.user
                );
            };
            anyhow::ensure!(
                user.role.reads(),
                "user: {:?} is a {} user, who reads no alerts",
                user.name,
                user.role.as_str()
            );
            let sub = Subscriptions::update(dir, |subs| subs.add(wish))?;
            audit(dir, &operator(), "subscription.add", &sub.id, sub.to_json())?;
            say!("added {}", describe(&sub.to_json()))?;
            if let Channel::Webhook { secret, .. } = &sub.channel {
                say!(
                    "secret: {secret}\n(shown once: the receiver checks each request's webhook-signature with it, as Standard Webhooks says)"
                )?;
            }
        }
        SubscribeCommand::List { user, json } => {
            let subs = Subscriptions::load(dir)?;
            let list: Vec<Value> = subs
                .subscriptions
                .values()
                .filter(|s| user.as_ref().is_none_or(|u| &s.user == u))
                .map(|s| s.to_json())
                .collect();
            if json {
                say!("{}", json_text(&json!({"subscriptions": list}))?)?;
            } else if list.is_empty() {
                say!("no subscriptions (pacer subscribe add --user NAME --email ADDRESS)")?;
            } else {
                for s in &list {
                    say!("{}", describe(s))?;
                }
            }
        }
        SubscribeCommand::Remove { id } => {
            let sub = Subscriptions::update(dir, |subs| subs.remove(&id))?;
            audit(dir, &operator(), "subscription.remove", &id, sub.to_json())?;
            say!("removed {id}")?;
        }
        SubscribeCommand::Disable { id, reason } => {
            Subscriptions::update(dir, |subs| subs.disable(&id, &reason))?;
            audit(
                dir,
                &operator(),
                "subscription.disable",
                &id,
                json!({"reason": reason}),
            )?;
            say!("disabled {id}")?;
        }
        SubscribeCommand::Enable { id } => {
            Subscriptions::update(dir, |subs| subs.enable(&id))?;
            audit(dir, &operator(), "subscription.enable", &id, json!({}))?;
            say!("enabled {id}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Subcommand, Debug)]
pub enum DeliveriesCommand {
    /// The deliveries: due (waiting for an attempt), sent, failed.
    #[command(after_help = "Examples:\n  pacer deliveries list --state failed\n  \
pacer deliveries list --http http://127.0.0.1:8080 --api-token $PACER_API_TOKEN")]
    List {
        /// due, sent or failed; default: all.
        #[arg(long, value_parser = DeliveryState::parse)]
        state: Option<DeliveryState>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        at: Server,
    },
    /// Makes failed deliveries due again, with the same idempotency key.
    #[command(
        after_help = "Examples:\n  pacer deliveries retry dl-0a1b2c3d4e5f60718293\n  \
pacer deliveries retry --failed --http http://127.0.0.1:8080 --api-token $PACER_API_TOKEN"
    )]
    Retry {
        /// One delivery's id.
        id: Option<String>,
        /// Every failed delivery.
        #[arg(long, conflicts_with = "id")]
        failed: bool,
        #[command(flatten)]
        at: Server,
    },
}

/// A running server, or (default) the data dir with the server stopped.
#[derive(clap::Args, Debug)]
pub struct Server {
    /// A running `pacer serve --http` (its base URL).
    #[arg(long)]
    http: Option<String>,
    /// The bearer token for `--http`: an admin's or a service user's.
    #[arg(long, env = "PACER_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
}

impl Server {
    fn token(&self) -> anyhow::Result<&str> {
        self.api_token.as_deref().context(
            "--http needs --api-token (or PACER_API_TOKEN): an admin's or a service user's token",
        )
    }
}

/// The deliveries store of a data dir whose server is stopped.
fn local_store(ctx: &Context) -> anyhow::Result<Store> {
    let log = pacer_engine::Log::open(&ctx.data_dir).with_context(|| {
        format!(
            "opening {} (if pacer serve runs on it, ask it: --http URL --api-token TOKEN)",
            ctx.data_dir.display()
        )
    })?;
    Ok(Store::new(log.side_tree(pacer_engine::deliver::TREE)?))
}

pub fn run_deliveries(ctx: &Context, cmd: DeliveriesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DeliveriesCommand::List { state, json, at } => {
            let list: Vec<Value> = match &at.http {
                Some(base) => {
                    let mut url = format!("{}/v1/deliveries", base.trim_end_matches('/'));
                    if let Some(s) = state {
                        url.push_str(&format!("?state={}", s.as_str()));
                    }
                    let v = call_server(base, at.token()?, ureq::get(&url), None)?;
                    v["deliveries"].as_array().cloned().unwrap_or_default()
                }
                None => local_store(ctx)?
                    .deliveries()?
                    .iter()
                    .filter(|d| state.is_none_or(|s| d.state == s))
                    .map(|d| d.to_json())
                    .collect(),
            };
            if json {
                say!(
                    "{}",
                    json_text(&json!({"count": list.len(), "deliveries": list}))?
                )?;
            } else if list.is_empty() {
                say!("no deliveries")?;
            } else {
                for d in &list {
                    let t = |k: &str| d[k].as_str().unwrap_or("-").to_owned();
                    say!(
                        "{}\t{}\t{} {}\t{} {} item(s)\tsubscription={} user={}\tattempts={}\tcreated={}{}{}",
                        t("id"),
                        t("state"),
                        t("channel"),
                        t("to"),
                        t("cadence"),
                        d["items"],
                        t("subscription"),
                        t("user"),
                        d["attempts"],
                        t("created_at"),
                        d["next_attempt_at"]
                            .as_str()
                            .map_or(String::new(), |n| format!("\tnext={n}")),
                        d["last_error"]
                            .as_str()
                            .map_or(String::new(), |e| format!("\terror: {e}")),
                    )?;
                }
            }
        }
        DeliveriesCommand::Retry { id, failed, at } => {
            anyhow::ensure!(
                id.is_some() || failed,
                "retry: name a delivery's id, or --failed for every failed one"
            );
            let retried: Vec<String> = match &at.http {
                Some(base) => {
                    let url = match &id {
                        Some(id) => {
                            format!("{}/v1/deliveries/{id}/retry", base.trim_end_matches('/'))
                        }
                        None => format!("{}/v1/deliveries/retry", base.trim_end_matches('/')),
                    };
                    let v = call_server(base, at.token()?, ureq::post(&url), Some(&json!({})))?;
                    v["retried"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default()
                }
                None => {
                    let store = local_store(ctx)?;
                    if let Some(id) = &id {
                        anyhow::ensure!(store.get(id)?.is_some(), "id: no delivery {id:?}");
                    }
                    pacer_engine::deliver::retry(
                        &store,
                        id.as_deref(),
                        chrono::Utc::now().timestamp_millis(),
                    )?
                }
            };
            if retried.is_empty() {
                say!("nothing to retry (only failed deliveries are retried)")?;
            }
            for r in &retried {
                say!("{r}: due again")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
