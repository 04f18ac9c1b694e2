//! `pacer dlq`: the webhook items Pacer could not take, and what an operator does
//! with them: `list`, `show`, `retry` (with the current configuration, after adding
//! an owner mapping or an FX rate) and `drop`. The same operations reach three
//! places: the log's database in `--data-dir` (one-process mode, with `pacer serve`
//! stopped), the `PACER_DLQ` stream (`--nats`, or `[nats] urls`), or a running
//! `pacer serve --http` / `pacer gateway` (`--http URL`, with a bearer token).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use pacer_engine::access::Access;
use pacer_engine::dlq::{parse_since, select, DeadLetter};
use pacer_engine::http::{Gateway, Redriven, Sink, Stores};
use pacer_engine::metrics::Metrics;
use pacer_engine::nats::{connect, ensure_streams, Subjects};
use pacer_engine::replay::rebuild_for_append;
use pacer_engine::webhook::mirror::Mirror;
use serde_json::{json, Value};

use super::common::{call_server, json_text, open_log};
use super::serve::{local_engine, nats_dlq, runtime, wall_clock_ms, NatsArgs};
use super::user::operator;
use crate::context::{say, Context};

#[derive(clap::Subcommand, Debug)]
pub enum DlqCommand {
    /// The dead letters, oldest first.
    #[command(
        after_help = "Examples:\n  pacer dlq list\n  pacer dlq list --crm hubspot --since 2026-12-01 --format json\n  \
                      pacer dlq list --http http://127.0.0.1:8080 --api-token $PACER_API_TOKEN"
    )]
    List(ListArgs),
    /// One dead letter in full, with its raw item.
    #[command(after_help = "Example:\n  pacer dlq show dl-3f9c0e1a2b4d5c6e")]
    Show(ShowArgs),
    /// Takes dead letters again with the current configuration; those taken are removed.
    #[command(
        after_help = "Examples:\n  pacer dlq retry dl-3f9c0e1a2b4d5c6e\n  pacer dlq retry --all --crm hubspot\n\n\
                      Safe to run again: what was taken already is not stored twice.\n\
                      Exit status: 0 when every letter was taken, 3 when some were refused again."
    )]
    Retry(RetryArgs),
    /// Removes dead letters for good, saying why.
    #[command(
        after_help = "Example:\n  pacer dlq drop dl-3f9c0e1a2b4d5c6e --reason \"test deal, deleted in HubSpot\""
    )]
    Drop(DropArgs),
}

/// Where the store is: the data dir (default), NATS, or a running server.
#[derive(clap::Args, Debug)]
pub struct Where {
    #[command(flatten)]
    nats: NatsArgs,
    /// A running `pacer serve --http` or `pacer gateway` (its base URL).
    #[arg(long)]
    http: Option<String>,
    /// The bearer token for `--http`: an admin's or a service user's (`pacer token create`).
    #[arg(long, env = "PACER_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Only this CRM (hubspot, pipedrive, salesforce, native; nats for the engine's).
    #[arg(long)]
    crm: Option<String>,
    /// Only letters refused at or after this date (YYYY-MM-DD) or RFC 3339 time.
    #[arg(long, value_parser = parse_since)]
    since: Option<i64>,
    /// The deals waiting for their owner's mapping (taken in, not refused: they are
    /// told once `[webhooks.<crm>] owners` maps the owner and the server reloads, on
    /// SIGHUP or restart) instead of the dead letters.
    #[arg(long)]
    waiting: bool,
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    format: ListFormat,
    #[command(flatten)]
    at: Where,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    id: String,
    #[command(flatten)]
    at: Where,
}

#[derive(clap::Args, Debug)]
pub struct RetryArgs {
    /// The letters to retry.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    ids: Vec<String>,
    /// Every letter (of `--crm`, when given).
    #[arg(long)]
    all: bool,
    #[arg(long, requires = "all")]
    crm: Option<String>,
    #[command(flatten)]
    at: Where,
}

#[derive(clap::Args, Debug)]
pub struct DropArgs {
    #[arg(required = true)]
    ids: Vec<String>,
    /// Why (logged with each letter dropped).
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    at: Where,
}

pub fn run(ctx: &Context, cmd: DlqCommand) -> anyhow::Result<ExitCode> {
    let at = match &cmd {
        DlqCommand::List(a) => &a.at,
        DlqCommand::Show(a) => &a.at,
        DlqCommand::Retry(a) => &a.at,
        DlqCommand::Drop(a) => &a.at,
    };
    if let Some(url) = &at.http {
        return over_http(url.trim_end_matches('/'), at.api_token.as_deref(), &cmd);
    }
    let mut config = ctx.config.clone();
    config.nats = at.nats.apply(&config.nats)?;
    runtime()?.block_on(async move {
        let store = Store::open(ctx, &config, matches!(cmd, DlqCommand::Retry(_))).await?;
        let gateway = &store.gateway;
        match cmd {
            DlqCommand::List(a) => {
                let all = match a.waiting {
                    true => gateway.waiting_letters().await?,
                    false => list(gateway).await?,
                };
                let letters = select(all, a.crm.as_deref(), a.since);
                print_list(&letters, a.format, a.waiting)?;
                Ok(ExitCode::SUCCESS)
            }
            DlqCommand::Show(a) => {
                let letter = gateway
                    .dlq
                    .get(&a.id)
                    .await?
                    .with_context(|| format!("no dead letter {}", a.id))?;
                print!("{}", json_text(&letter.to_json())?);
                Ok(ExitCode::SUCCESS)
            }
            DlqCommand::Retry(a) => {
                let all = list(gateway).await?;
                let letters = if a.all {
                    select(all, a.crm.as_deref(), None)
                } else {
                    pick(all, &a.ids)?
                };
                let n = letters.len();
                let done = gateway.redrive(letters, &operator()).await?;
                print_redriven(n, &done)?;
                Ok(exit_of(done.failed.is_empty()))
            }
            DlqCommand::Drop(a) => {
                anyhow::ensure!(
                    !a.reason.trim().is_empty(),
                    "--reason: say why the items are dropped"
                );
                let letters = pick(list(gateway).await?, &a.ids)?;
                let dropped = gateway
                    .drop_letters(letters, a.reason.trim(), &operator())
                    .await?;
                say!("dropped {} dead letters", dropped.len())?;
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

async fn list(gateway: &Gateway) -> anyhow::Result<Vec<DeadLetter>> {
    Ok(gateway.dlq.list().await?)
}

fn exit_of(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    }
}

/// The letters named, in the order named; an unknown id is an error.
fn pick(all: Vec<DeadLetter>, ids: &[String]) -> anyhow::Result<Vec<DeadLetter>> {
    ids.iter()
        .map(|id| {
            all.iter()
                .find(|l| &l.id == id)
                .cloned()
                .with_context(|| format!("no dead letter {id} (see pacer dlq list)"))
        })
        .collect()
}

/// The store, and a gateway over it to retry through (the same intake as requests).
struct Store {
    gateway: Gateway,
}

impl Store {
    async fn open(
        ctx: &Context,
        config: &pacer_engine::Config,
        retrying: bool,
    ) -> anyhow::Result<Store> {
        let metrics = Arc::new(Metrics::new());
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        if !config.nats.urls.is_empty() {
            let client = connect(&config.nats, "pacer dlq").await?;
            let js = async_nats::jetstream::new(client);
            let subjects = Subjects::new(&config.nats.subject_prefix);
            ensure_streams(&js, &config.nats, &subjects).await?;
            let mirror = Mirror::kv(
                &js,
                &config.nats.subject_prefix,
                config.nats.replicas as usize,
            )
            .await
            .context("opening the deal mirror bucket")?;
            let dlq = nats_dlq(&js, config);
            let sink = Sink::Nats { js, subjects };
            let stores = Stores {
                mirror,
                dlq,
                access: Arc::new(Access::new(&ctx.data_dir)),
                deliverer: None,
            };
            let gateway = Gateway::new(config.clone(), sink, stores, metrics, wall_clock_ms, stop);
            return Ok(Store { gateway });
        }
        let mut log = open_log(ctx).map_err(|e| {
            e.context(
                "the dead letters live in the log's database, which a running `pacer serve` holds: \
                 stop it, or pass --http URL to ask it",
            )
        })?;
        // Retrying folds what it stores, as the server would: rebuild first.
        let state = if retrying {
            tokio::task::block_in_place(|| rebuild_for_append(&mut log, &config.org, |_, _, _| {}))?
        } else {
            pacer_projections::model::Model::new(config.org.clone())
        };
        let (local, mirror, dlq) = local_engine(log, state, config, &metrics)?;
        let stores = Stores {
            mirror,
            dlq,
            access: Arc::new(Access::new(&ctx.data_dir)),
            deliverer: None,
        };
        let gateway = Gateway::new(
            config.clone(),
            Sink::Local(local),
            stores,
            metrics,
            wall_clock_ms,
            stop,
        );
        Ok(Store { gateway })
    }
}

/// The letters (or, with `waiting`, the deals waiting for their owner's mapping).
fn print_list(letters: &[DeadLetter], format: ListFormat, waiting: bool) -> anyhow::Result<()> {
    match format {
        ListFormat::Json => {
            let out: Vec<Value> = letters.iter().map(DeadLetter::to_json).collect();
            print!(
                "{}",
                json_text(&json!({"count": out.len(), "letters": out}))?
            );
        }
        ListFormat::Table => {
            if letters.is_empty() {
                match waiting {
                    true => say!("no deals waiting for their owner's mapping")?,
                    false => say!("no dead letters")?,
                }
                return Ok(());
            }
            let mut table = comfy_table::Table::new();
            table.load_preset(comfy_table::presets::NOTHING);
            table.set_header(["id", "crm", "reason", "received", "tries", "item", "error"]);
            for l in letters {
                let mut error = l.error.clone();
                if let Some((cut, _)) = error.char_indices().nth(90) {
                    error.truncate(cut);
                    error.push('…');
                }
                table.add_row([
                    l.id.clone(),
                    l.crm.clone(),
                    l.reason.clone(),
                    l.received_at(),
                    l.attempts.to_string(),
                    format!("{}#{}", l.request_id, l.index),
                    error,
                ]);
            }
            say!("{table}")?;
            say!(
                "{} dead letters (pacer dlq show ID for the raw item)",
                letters.len()
            )?;
        }
    }
    Ok(())
}

fn print_redriven(n: usize, done: &Redriven) -> anyhow::Result<()> {
    say!(
        "retried {n}: {} taken ({} events), {} refused again",
        done.succeeded.len(),
        done.events,
        done.failed.len()
    )?;
    for (id, error) in &done.failed {
        say!("  {id}: {error}")?;
    }
    Ok(())
}

/// The same operations against a running server's `/v1/dlq` routes.
fn over_http(base: &str, token: Option<&str>, cmd: &DlqCommand) -> anyhow::Result<ExitCode> {
    let token = token.context(
        "--http needs --api-token (or PACER_API_TOKEN): an admin's or service user's token (pacer token create)",
    )?;
    let call = |req: ureq::Request, body: Option<Value>| -> anyhow::Result<Value> {
        call_server(base, token, req, body.as_ref())
    };
    match cmd {
        DlqCommand::List(a) => {
            let mut req = ureq::get(&format!("{base}/v1/dlq"));
            if let Some(crm) = &a.crm {
                req = req.query("crm", crm);
            }
            if let Some(ms) = a.since {
                let t = pacer_engine::webhook::rfc3339_of_ms(ms).unwrap_or_default();
                req = req.query("since", &t);
            }
            if a.waiting {
                req = req.query("waiting", "true");
            }
            let out = call(req, None)?;
            let letters: Vec<DeadLetter> = out["letters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(letter_of_json)
                .collect();
            print_list(&letters, a.format, a.waiting)?;
            Ok(ExitCode::SUCCESS)
        }
        DlqCommand::Show(a) => {
            let out = call(ureq::get(&format!("{base}/v1/dlq/{}", a.id)), None)?;
            print!("{}", json_text(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        DlqCommand::Retry(a) => {
            let body = if a.all {
                json!({"all": true, "crm": a.crm})
            } else {
                json!({"ids": a.ids})
            };
            let out = call(ureq::post(&format!("{base}/v1/dlq/retry")), Some(body))?;
            let ids = |k: &str| -> Vec<String> {
                out[k]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            };
            let done = Redriven {
                succeeded: ids("succeeded"),
                failed: out["failed"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| {
                        let s = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
                        (s("id"), s("error"))
                    })
                    .collect(),
                events: out["events"].as_u64().unwrap_or(0) as usize,
            };
            print_redriven(done.succeeded.len() + done.failed.len(), &done)?;
            Ok(exit_of(done.failed.is_empty()))
        }
        DlqCommand::Drop(a) => {
            let body = json!({"ids": a.ids, "reason": a.reason});
            let out = call(ureq::post(&format!("{base}/v1/dlq/drop")), Some(body))?;
            let n = out["dropped"].as_array().map_or(0, Vec::len);
            say!("dropped {n} dead letters")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A letter from the HTTP API's JSON (for the table).
fn letter_of_json(v: &Value) -> Option<DeadLetter> {
    let s = |k: &str| v[k].as_str().map(str::to_owned);
    Some(DeadLetter {
        id: s("id")?,
        crm: s("crm")?,
        request_id: s("request_id").unwrap_or_default(),
        index: v["index"].as_u64()? as usize,
        reason: s("reason").unwrap_or_default(),
        field: s("field").unwrap_or_default(),
        error: s("error").unwrap_or_default(),
        raw: s("raw").unwrap_or_default(),
        received_ms: s("received_at")
            .and_then(|t| pacer_engine::webhook::ms_of_rfc3339(&t))
            .unwrap_or(0),
        attempts: v["attempts"].as_u64().unwrap_or(0) as u32,
        retried_ms: s("retried_at").and_then(|t| pacer_engine::webhook::ms_of_rfc3339(&t)),
        sequences: Vec::new(),
    })
}
