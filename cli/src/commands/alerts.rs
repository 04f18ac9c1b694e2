//! `pacer alerts`: the variance alerts the fold has raised, with status, focus and
//! `act_by`, as a table for managers or as JSON for programs; `pacer alerts
//! backtest`: every rule scored against the months that have ended.

use std::process::ExitCode;

use anyhow::Context as _;
use pacer_engine::output::{alerts_json, backtest_csv, backtest_json};
use pacer_engine::replay::rebuild_daily;
use pacer_projections::alerts::backtest::{backtest, BacktestQuery, DaySet};
use pacer_projections::alerts::{alert_views, AlertQuery, StatusFilter};
use pacer_projections::time::Month;

use super::common::{emit, json_text, open_existing_log, progress_bar, rebuild_state, AsOf};
use crate::context::{write_stdout, Context};
use crate::human;

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    #[command(flatten)]
    list: ListArgs,
}

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Score every rule against the months that have ended: precision, recall, lead time.
    #[command(
        after_help = "Examples:\n  pacer alerts backtest\n  pacer alerts backtest --from 2026-01 --to 2026-10 --format csv\n  \
                      pacer alerts backtest --days 1-10 --config tuned.toml\n\n\
                      The log is folded once with a tick at the end of every working day, so each day's\n\
                      alerts are raised as a running Pacer would have raised them, with the configuration given."
    )]
    Backtest(BacktestArgs),
}

#[derive(clap::Args, Debug)]
pub struct BacktestArgs {
    /// The first month scored (YYYY-MM). Default: 12 months before the current month.
    #[arg(long, value_parser = parse_month)]
    from: Option<Month>,
    /// The last month scored. Default: the last month that has ended.
    #[arg(long, value_parser = parse_month)]
    to: Option<Month>,
    /// Only alerts seen on these working days of a month count, e.g. 1-10 or 5,10,15.
    #[arg(long, value_parser = DaySet::parse)]
    days: Option<DaySet>,
    /// A month that ended below the threshold counts as caught when it was flagged by
    /// this working day.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=23))]
    recall_by_day: u32,
    #[arg(long, value_enum, default_value_t = BacktestFormat::Table)]
    format: BacktestFormat,
    /// Write to this file instead of standard output.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

/// Output formats of the backtest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BacktestFormat {
    Table,
    Json,
    Csv,
}

fn parse_month(s: &str) -> Result<Month, String> {
    Month::parse(s).map_err(|e| e.to_string())
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// open (standing, not acknowledged), acknowledged (standing), resolved (cleared
    /// or superseded by the next week's alert), or all.
    #[arg(long, default_value = "open", value_parser = parse_status)]
    status: StatusFilter,
    /// Only this team.
    #[arg(long)]
    team: Option<String>,
    /// Only this manager's reps.
    #[arg(long)]
    manager: Option<String>,
    /// Only this rep.
    #[arg(long)]
    rep: Option<String>,
    #[command(flatten)]
    as_of: AsOf,
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    format: ListFormat,
    /// The operator's alerts instead of the teams': `dead_letters` when CRM items
    /// have waited in the dead-letter store longer than `[dlq] alert_after_s`.
    #[arg(long, conflicts_with_all = ["team", "manager", "rep"])]
    system: bool,
}

/// Output formats of listings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

fn parse_status(s: &str) -> Result<StatusFilter, String> {
    StatusFilter::parse(s)
        .ok_or_else(|| format!("{s:?} is not a status: open, acknowledged, resolved or all"))
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Some(Action::Backtest(b)) => run_backtest(ctx, b),
        None => list(ctx, args.list),
    }
}

fn run_backtest(ctx: &Context, args: BacktestArgs) -> anyhow::Result<ExitCode> {
    if let (Some(from), Some(to)) = (args.from, args.to) {
        if from > to {
            anyhow::bail!("--from {from} is after --to {to}: no month to score");
        }
    }
    let log = open_existing_log(ctx)?;
    // Daily ticks from the month before the first one scored (a coverage alert is
    // about the month after the one it is raised in); from the start without --from.
    let start = args
        .from
        .map_or(pacer_projections::time::Date::from_ymd(1, 1, 1), |m| {
            Some(m.plus(-1).first_day())
        })
        .context("a start date")?;
    let bar = progress_bar(log.last_seq(), "backtest");
    let daily = rebuild_daily(&log, &ctx.config.org, start, |seq| {
        if seq % 1024 == 0 {
            bar.set_position(seq);
        }
    })?;
    bar.finish_and_clear();
    let state = daily.state;
    let Some(now) = state.current_month() else {
        anyhow::bail!("no clock_tick in the log yet: there is no month that has ended to score");
    };
    let query = BacktestQuery {
        from: args.from.unwrap_or(now.plus(-12)),
        to: args.to.unwrap_or(now.plus(-1)),
        days: args.days,
        recall_by_day: args.recall_by_day,
    };
    let result = backtest(&state, &query);
    let text = match args.format {
        BacktestFormat::Json => {
            let mut v = backtest_json(&result);
            v["late_events"] = serde_json::json!(daily.late_events);
            json_text(&v)?
        }
        BacktestFormat::Csv => backtest_csv(&result),
        BacktestFormat::Table => {
            let mut t = human::backtest_table(&result);
            if daily.late_events > 0 {
                t.push_str(&format!(
                    "note: {} events arrived after their day had passed (the log is not in time order there); \
                     those days were judged without them, as Pacer saw them then\n",
                    daily.late_events
                ));
            }
            t
        }
    };
    emit(args.out.as_deref(), text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// `pacer alerts --system`, from the dead-letter store and the deliveries in the
/// data dir.
fn system(ctx: &Context, format: ListFormat) -> anyhow::Result<ExitCode> {
    let log = open_existing_log(ctx)?;
    let store = pacer_engine::dlq::DlqStore::sled(
        log.side_tree("dlq")?,
        log.side_tree("dlq_order")?,
        ctx.config.dlq.items_max,
    );
    let letters = tokio::runtime::Builder::new_current_thread()
        .build()
        .context("starting a runtime")?
        .block_on(store.list())?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut alerts: Vec<serde_json::Value> =
        pacer_engine::dlq::system_alert(&letters, now_ms, ctx.config.dlq.alert_after_s)
            .into_iter()
            .collect();
    let deliveries =
        pacer_engine::deliver::store::Store::new(log.side_tree(pacer_engine::deliver::TREE)?)
            .deliveries()?;
    alerts.extend(pacer_engine::deliver::system_alert(&deliveries));
    let text = match format {
        ListFormat::Json => json_text(&serde_json::json!({"alerts": alerts}))?,
        ListFormat::Table if alerts.is_empty() => format!(
            "no system alerts ({} dead letters waiting, none longer than {} s; no failed deliveries)\n",
            letters.len(),
            ctx.config.dlq.alert_after_s
        ),
        ListFormat::Table => alerts
            .iter()
            .map(|a| {
                format!(
                    "{} {}: {}\n  act: {}\n",
                    a["severity"].as_str().unwrap_or_default().to_uppercase(),
                    a["rule"].as_str().unwrap_or_default(),
                    a["message"].as_str().unwrap_or_default(),
                    a["suggested_action"].as_str().unwrap_or_default()
                )
            })
            .collect(),
    };
    write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn list(ctx: &Context, args: ListArgs) -> anyhow::Result<ExitCode> {
    if args.system {
        return system(ctx, args.format);
    }
    let log = open_existing_log(ctx)?;
    let state = rebuild_state(ctx, &log, args.as_of.cut())?;
    let query = AlertQuery {
        status: args.status,
        team: args.team,
        manager: args.manager,
        rep: args.rep,
    };
    let views = alert_views(&state, &query);
    let org = state.config();
    let text = match args.format {
        ListFormat::Json => json_text(&alerts_json(&views, org.currency, org.timezone))?,
        ListFormat::Table => {
            if state.now().is_none() {
                "no clock_tick in the log yet: alerts are evaluated from the first tick (run `pacer tick`)\n".to_owned()
            } else {
                human::alerts_table(&views, org.currency, org.timezone)
            }
        }
    };
    write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}
