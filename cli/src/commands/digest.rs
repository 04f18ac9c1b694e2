//! `pacer digest`: a manager's weekly to-do list: per rep, the focus items, the
//! watch items, pace, the week's pipeline moves, the report card, and the reason to
//! talk this week.

use std::process::ExitCode;

use anyhow::bail;
use pacer_engine::digest::{digest_json, digest_text};
use pacer_projections::alerts::alert_week;
use pacer_projections::digest::{digest, Audience};
use pacer_projections::time::IsoWeek;

use super::common::{json_text, open_existing_log, rebuild_state, AsOf};
use crate::context::{write_stdout, Context};

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("audience").required(true).args(["team", "manager"])))]
pub struct Args {
    /// The team's digest.
    #[arg(long)]
    team: Option<String>,
    /// The digest of every rep this manager leads.
    #[arg(long)]
    manager: Option<String>,
    /// The ISO week (2026-W47). Default: the week alerts raised now are due in (on
    /// Friday afternoon and at the weekend, the next week).
    #[arg(long, value_parser = |s: &str| IsoWeek::parse(s).map_err(|e| e.to_string()))]
    week: Option<IsoWeek>,
    #[command(flatten)]
    as_of: AsOf,
    #[arg(long, value_enum, default_value_t = DigestFormat::Text)]
    format: DigestFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DigestFormat {
    Text,
    Markdown,
    Json,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let log = open_existing_log(ctx)?;
    let state = rebuild_state(ctx, &log, args.as_of.cut())?;
    let audience = match (args.team, args.manager) {
        (Some(t), _) => Audience::Team(t),
        (None, Some(m)) => Audience::Manager(m),
        (None, None) => unreachable!("clap requires --team or --manager"),
    };
    let Some(now) = state.now() else {
        bail!(
            "the log has no clock_tick yet, so there is no week to digest: run `pacer tick` first"
        );
    };
    let org = state.config();
    let week = args.week.unwrap_or_else(|| alert_week(now, org.timezone));
    let Some(d) = digest(&state, &audience, week) else {
        bail!("the log has no clock_tick yet");
    };
    if d.reps.is_empty() {
        let (kind, who) = match &audience {
            Audience::Team(t) => ("team", t),
            Audience::Manager(m) => ("manager", m),
        };
        let known: std::collections::BTreeSet<String> = state
            .reps()
            .values()
            .filter(|r| r.registered)
            .map(|r| {
                let info = r.at(d.month);
                if kind == "team" {
                    info.team
                } else {
                    info.manager
                }
            })
            .collect();
        bail!(
            "no active rep in {kind} {who:?} in {}; known: {}",
            d.month,
            known.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    let text = match args.format {
        DigestFormat::Json => json_text(&digest_json(&d, org.currency, org.timezone))?,
        DigestFormat::Text => digest_text(&d, org.currency, org.timezone, false),
        DigestFormat::Markdown => digest_text(&d, org.currency, org.timezone, true),
    };
    write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}
