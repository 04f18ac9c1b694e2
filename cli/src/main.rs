//! `pacer`: the command-line front end of the engine.
//!
//! Each subcommand opens the log in `--data-dir`, does one job and exits: `demo`
//! builds a demo organisation, `ingest` appends JSON Lines events, `tick` appends a
//! `clock_tick`, `report` shows plan vs actual, `alerts` lists variance alerts, `ack`
//! acknowledges one, `digest` writes a manager's week, `log` exports the stored events,
//! `serve` runs the NATS service and `publish` puts events onto JetStream. This
//! is the only crate that reads the wall clock (for `recorded_at` and default ticks)
//! and the only one that uses `anyhow`.

mod commands;
mod context;
mod human;

/// mimalloc instead of the system allocator: the fold allocates many small strings
/// (ids, buckets), and glibc's malloc was a third of a replay's profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use pacer_engine::Config;

use context::Context;

/// Pacer: plan vs actual for sales teams, from an append-only event log.
#[derive(Parser, Debug)]
#[command(name = "pacer", version, about, long_about = None)]
struct Cli {
    /// Where the event log lives.
    #[arg(
        long,
        global = true,
        env = "PACER_DATA_DIR",
        default_value = "./pacer-data"
    )]
    data_dir: PathBuf,

    /// Configuration file (TOML). Default: ./pacer.toml when it exists.
    #[arg(long, global = true)]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate a realistic demo organisation into a fresh data dir and summarise it.
    #[command(
        after_help = "Example:\n  pacer demo --reps 40 --seed 7 --now 2026-11-18T15:00:00Z --data-dir ./demo-data"
    )]
    Demo(commands::demo::Args),
    /// Append events from JSON Lines files (`-` reads standard input).
    #[command(
        after_help = "Example:\n  pacer ingest hubspot-export.jsonl finance-plan.jsonl\n  \
                            cat events.jsonl | pacer ingest -\n\n\
                            Exit status: 0 when every line was stored or was a duplicate, 3 when some were rejected."
    )]
    Ingest(commands::ingest::Args),
    /// Append a clock_tick: time only moves when a tick is logged.
    #[command(after_help = "Example:\n  pacer tick\n  pacer tick --at 2026-11-18T09:00:00Z")]
    Tick(commands::tick::Args),
    /// Plan vs actual per rep, month and bucket.
    #[command(
        after_help = "Examples:\n  pacer report\n  pacer report --team north --bucket total\n  \
                            pacer report --month 2026-10 --rep ana --format json\n  pacer report --as-of-seq 5000 --format csv\n  \
                            pacer report --view productivity --team north"
    )]
    Report(commands::report::Args),
    /// Variance alerts: what each rep is slipping on, focus first, with act_by.
    #[command(
        after_help = "Examples:\n  pacer alerts\n  pacer alerts --team north\n  \
                            pacer alerts --rep ana --status all --format json"
    )]
    Alerts(commands::alerts::Args),
    /// Acknowledge an alert (appends alert_acknowledged to the log).
    #[command(
        after_help = "Example:\n  pacer ack al-3f9c0e1a2b4d5c6e7f80 --by maria --note \"pipeline review on Tuesday\""
    )]
    Ack(commands::ack::Args),
    /// A manager's weekly digest: per rep, focus items, pace, pipeline moves and the reason to talk.
    #[command(
        after_help = "Examples:\n  pacer digest --team north\n  pacer digest --manager \"Maria Keller\" --week 2026-W47 --format markdown"
    )]
    Digest(commands::digest::Args),
    /// Run the service: with NATS, JetStream in and alerts, digests and queries out; without, one process with webhooks and queries over HTTP.
    #[command(
        after_help = "Examples:\n  pacer serve --http 127.0.0.1:8080                  # one process, no broker\n  \
                            pacer serve --nats nats://127.0.0.1:4222 --metrics-addr 127.0.0.1:9464\n  \
                            pacer serve --nats nats://a:4222,nats://b:4222 --creds /etc/pacer/pacer.creds --http 0.0.0.0:8080\n\n\
                            Stops cleanly on SIGTERM or SIGINT: the batch in hand is stored and acked first."
    )]
    Serve(commands::serve::Args),
    /// Run a stateless webhook gateway: CRM webhooks in, events onto JetStream.
    #[command(
        after_help = "Example:\n  pacer gateway --nats nats://127.0.0.1:4222 --http 0.0.0.0:8080\n\n\
                            Run as many as you like behind a load balancer; they share the deal mirror in a JetStream bucket."
    )]
    Gateway(commands::gateway::Args),
    /// Publish JSON Lines events to JetStream (Nats-Msg-Id = event_id), waiting for each ack.
    #[command(
        after_help = "Example:\n  pacer publish events.jsonl --nats nats://127.0.0.1:4222\n\n\
                            Exit status: 0 when every line was published, 3 when some were over the size limit."
    )]
    Publish(commands::publish::Args),
    /// Rebuild every projection from the log, report events/s, optionally verify.
    #[command(
        after_help = "Examples:\n  pacer replay --verify\n  pacer replay --to 2026-10-31T23:59:59Z\n  pacer replay --to-seq 50000 --verify"
    )]
    Replay(commands::replay::Args),
    /// Finance: publish a plan file, show, compare and list versions, the commit gap.
    #[command(subcommand)]
    Plan(commands::plan::PlanCommand),
    /// Measure replay, memory and queries on a generated log (see BENCHMARKS.md).
    #[command(
        after_help = "Examples:\n  pacer bench\n  pacer bench --events 200000 --json bench.json"
    )]
    Bench(commands::bench::Args),
    /// Export the stored events as JSON Lines, with seq and recorded_at.
    #[command(after_help = "Example:\n  pacer log --from-seq 1000 --limit 50")]
    Log(commands::log::Args),
    /// Webhook items Pacer could not take: list, show, retry, drop.
    #[command(subcommand)]
    Dlq(commands::dlq::DlqCommand),
    /// The NATS cluster as Pacer uses it: streams, consumers, leaders, followers.
    #[command(subcommand)]
    Cluster(commands::cluster::ClusterCommand),
    /// A running server's configuration: reload (as SIGHUP does).
    #[command(subcommand)]
    Config(commands::config::ConfigCommand),
    /// Who may use a running Pacer: add, list, remove, set-teams, reset.
    #[command(subcommand)]
    User(commands::user::UserCommand),
    /// API tokens of users: create (shown once), list, revoke.
    #[command(subcommand)]
    Token(commands::user::TokenCommand),
    /// Incentive plans on the same buckets: publish a comp plan, report the pay.
    #[command(subcommand)]
    Comp(commands::comp::CompCommand),
    /// Who gets which alerts where (email, Slack, Teams, webhooks): add, list,
    /// remove, disable, enable.
    #[command(subcommand)]
    Subscribe(commands::subscribe::SubscribeCommand),
    /// What became of each alert message: list, retry.
    #[command(subcommand)]
    Deliveries(commands::subscribe::DeliveriesCommand),
}

fn load_config(explicit: Option<&Path>) -> anyhow::Result<Config> {
    match explicit {
        Some(path) => Ok(Config::load(path)?),
        None => {
            let default = Path::new("pacer.toml");
            if default.exists() {
                Config::load(default).context("loading the default config ./pacer.toml")
            } else {
                Ok(Config::default())
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config_path = cli
        .config
        .clone()
        .or_else(|| Some(PathBuf::from("pacer.toml")).filter(|p| p.exists()));
    let ctx = Context {
        config: load_config(cli.config.as_deref())?,
        data_dir: cli.data_dir,
        config_path,
    };
    match cli.command {
        Command::Demo(args) => commands::demo::run(&ctx, args),
        Command::Ingest(args) => commands::ingest::run(&ctx, args),
        Command::Tick(args) => commands::tick::run(&ctx, args),
        Command::Report(args) => commands::report::run(&ctx, args),
        Command::Log(args) => commands::log::run(&ctx, args),
        Command::Alerts(args) => commands::alerts::run(&ctx, args),
        Command::Ack(args) => commands::ack::run(&ctx, args),
        Command::Digest(args) => commands::digest::run(&ctx, args),
        Command::Serve(args) => commands::serve::run(&ctx, args),
        Command::Gateway(args) => commands::gateway::run(&ctx, args),
        Command::Replay(args) => commands::replay::run(&ctx, args),
        Command::Plan(cmd) => commands::plan::run(&ctx, cmd),
        Command::Dlq(cmd) => commands::dlq::run(&ctx, cmd),
        Command::Cluster(cmd) => commands::cluster::run(&ctx, cmd),
        Command::Config(cmd) => commands::config::run(cmd),
        Command::User(cmd) => commands::user::run_user(&ctx, cmd),
        Command::Token(cmd) => commands::user::run_token(&ctx, cmd),
        Command::Comp(cmd) => commands::comp::run(&ctx, cmd),
        Command::Subscribe(cmd) => commands::subscribe::run_subscribe(&ctx, cmd),
        Command::Deliveries(cmd) => commands::subscribe::run_deliveries(&ctx, cmd),
        Command::Bench(args) => commands::bench::run(&ctx, args),
        Command::Publish(args) => commands::publish::run(&ctx, args),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if context::is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
