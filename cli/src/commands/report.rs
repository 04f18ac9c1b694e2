//! `pacer report`: plan vs actual per rep × month × bucket, as a table for people or
//! as JSON / CSV for programs (the engine's shared output format).

use std::process::ExitCode;

use anyhow::bail;
use pacer_engine::output::{productivity_csv, productivity_json, report_csv, report_json};
use pacer_engine::xlsx::report_xlsx;
use pacer_projections::bucket::Bucket;
use pacer_projections::productivity::productivity;
use pacer_projections::report::{report, ReportQuery};
use pacer_projections::time::Month;

use super::common::{emit, json_text, open_existing_log, rebuild_state, AsOf};
use crate::context::{Context, Format};
use crate::human;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The month (YYYY-MM). Default: the month of the latest clock_tick.
    #[arg(long, value_parser = |s: &str| Month::parse(s).map_err(|e| e.to_string()))]
    month: Option<Month>,
    /// Only this rep.
    #[arg(long)]
    rep: Option<String>,
    /// Only this team.
    #[arg(long)]
    team: Option<String>,
    /// Only this bucket (total, new_customer, retention, geo:<region>, product:<line>,
    /// account:<customer>, activity:<kind>).
    #[arg(long, value_parser = |s: &str| Bucket::parse(s).map_err(|e| e.to_string()))]
    bucket: Option<Bucket>,
    #[command(flatten)]
    as_of: AsOf,
    /// plan-vs-actual (per bucket) or productivity (how each rep sells: win rate,
    /// average won deal, median sales cycle, coverage, activities per won deal).
    #[arg(long, value_enum, default_value_t = View::PlanVsActual)]
    view: View,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write to this file instead of standard output (required for xlsx).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

/// What the report shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum View {
    PlanVsActual,
    Productivity,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    if args.format == Format::Xlsx && args.out.is_none() {
        bail!("--format xlsx writes a workbook: pass --out FILE.xlsx");
    }
    let log = open_existing_log(ctx)?;
    let state = rebuild_state(ctx, &log, args.as_of.cut())?;
    if args.format == Format::Xlsx && args.view == View::PlanVsActual {
        // A sheet per month: the one asked for, or every month with a plan or actuals.
        let months: std::collections::BTreeSet<Month> = match args.month {
            Some(m) => [m].into(),
            None => state
                .plans()
                .versions()
                .iter()
                .flat_map(|v| v.months())
                .chain(state.actuals().map(|((_, m), _)| m))
                .collect(),
        };
        let query = ReportQuery {
            rep: args.rep.clone(),
            team: args.team.clone(),
            bucket: args.bucket.clone(),
        };
        let sheets: Vec<(Month, Vec<_>)> = months
            .into_iter()
            .map(|m| (m, report(&state, m, &query)))
            .collect();
        let book = report_xlsx(&sheets, state.config().currency)?;
        emit(args.out.as_deref(), &book)?;
        return Ok(ExitCode::SUCCESS);
    }
    let month = match args.month.or(state.current_month()) {
        Some(m) => m,
        None => bail!("the log has no clock_tick yet, so there is no current month: pass --month YYYY-MM or run `pacer tick`"),
    };
    let query = ReportQuery {
        rep: args.rep,
        team: args.team,
        bucket: args.bucket,
    };
    if args.view == View::Productivity {
        if query.bucket.is_some() {
            bail!("--bucket does not apply to --view productivity (it covers the whole month of each rep)");
        }
        let rows = productivity(&state, month, &query);
        let currency = state.config().currency;
        let text = match args.format {
            Format::Json => json_text(&productivity_json(&rows, currency))?,
            Format::Csv => productivity_csv(&rows, currency),
            Format::Table => human::productivity_table(&rows, currency),
            Format::Xlsx => bail!("--view productivity has no xlsx form yet: use --format csv"),
        };
        emit(args.out.as_deref(), text.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows = report(&state, month, &query);
    let text = match args.format {
        Format::Json => json_text(&report_json(&rows))?,
        Format::Csv => report_csv(&rows),
        Format::Table => human::report_table(&rows),
        Format::Xlsx => unreachable!("written above"),
    };
    emit(args.out.as_deref(), text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
