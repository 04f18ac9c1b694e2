//! `pacer alerts`: the variance alerts the fold has raised, with status, focus and
//! `act_by`, as a table for managers or as JSON for programs.

use std::process::ExitCode;

use pacer_engine::output::alerts_json;
use pacer_projections::alerts::{alert_views, AlertQuery, StatusFilter};

use super::{json_text, open_existing_log, rebuild_state};
use crate::{human, Context};

#[derive(clap::Args, Debug)]
pub struct Args {
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
    as_of: super::AsOf,
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    format: ListFormat,
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
    super::write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}
