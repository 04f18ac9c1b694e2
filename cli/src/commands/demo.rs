//! `pacer demo`: generates a demo organisation, writes it through the ordinary ingest
//! path (JSON bytes → decode → validate → dedupe → append → flush) into a fresh data
//! dir, and prints the team summary of the current month.

use std::process::ExitCode;

use anyhow::{bail, Context as _};
use pacer_engine::demo::{generate, DemoSpec};
use pacer_engine::ingest::{Ingest, BATCH_EVENTS_MAX};
use pacer_engine::wire::encode;
use pacer_engine::Log;
use pacer_projections::alerts::{alert_views, AlertQuery, AlertView};
use pacer_projections::report::{report, ReportQuery};
use pacer_projections::time::Timestamp;

use super::common::{open_log, parse_instant, progress_bar, rebuild_state, wall_clock, DEMO_MARK};
use crate::context::{say, write_stdout, Context};
use crate::human;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Number of reps (in up to 5 teams), 1 to 2000.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..=2_000))]
    reps: u32,
    /// Random seed: the same seed and --now give the same organisation.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The demo's "now" (RFC 3339): history ends and the last clock_tick is here.
    /// Default: the wall clock.
    #[arg(long, value_parser = parse_instant)]
    now: Option<Timestamp>,
}

/// Makes sure the data dir is fresh: absent, empty, or an earlier demo's (replaced).
fn prepare_data_dir(ctx: &Context) -> anyhow::Result<()> {
    let dir = &ctx.data_dir;
    if !dir.exists() {
        return Ok(());
    }
    let mut entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    if entries.next().is_none() {
        return Ok(());
    }
    if !dir.join("conf").exists() {
        bail!(
            "{} is not empty and holds no Pacer log; choose another --data-dir",
            dir.display()
        );
    }
    let created_by = Log::open(dir)?.meta("created_by")?;
    if created_by.as_deref() != Some(DEMO_MARK) {
        bail!(
            "{} holds a Pacer log that `pacer demo` did not create; the demo never overwrites real data: \
             choose another --data-dir",
            dir.display()
        );
    }
    std::fs::remove_dir_all(dir)
        .with_context(|| format!("cannot remove the earlier demo in {}", dir.display()))?;
    Ok(())
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    prepare_data_dir(ctx)?;
    let now = args.now.unwrap_or_else(wall_clock);
    let year = now.local_date(ctx.config.org.timezone).month().year();
    if !(1900..=9000).contains(&year) {
        bail!("--now {now} is outside the years 1900 to 9000 that a demo history can span");
    }
    let spec = DemoSpec {
        reps: args.reps as usize,
        seed: args.seed,
        now,
        timezone: ctx.config.org.timezone,
        currency: ctx.config.org.currency,
        daily_ticks: true,
        prior_months: 3,
    };
    let demo = generate(&spec);
    let mut log = open_log(ctx)?;
    log.set_meta("created_by", DEMO_MARK)?;
    let bar = progress_bar(demo.events.len() as u64, "ingesting");
    // Every demo event is recorded at the demo's "now": the log is deterministic too.
    let mut clock = move || now;
    let mut ingest = Ingest::new(&mut log, &ctx.config, &mut clock, BATCH_EVENTS_MAX);
    for (i, ev) in demo.events.iter().enumerate() {
        let bytes = serde_json::to_vec(&encode(ev)).context("encoding a demo event")?;
        if let Some(r) = ingest.push(&bytes)? {
            bail!(
                "the demo generated an event the engine rejects ({}: {r}); this is a bug",
                ev.event_id
            );
        }
        if i % 1024 == 0 {
            bar.set_position(i as u64);
        }
    }
    let stats = ingest.finish()?;
    bar.finish_and_clear();
    let state = rebuild_state(ctx, &log, pacer_engine::replay::Cut::All)?;
    let month = state
        .current_month()
        .expect("the demo ends with a clock_tick");
    let rows = report(&state, month, &ReportQuery::default());
    let teams: std::collections::BTreeSet<&str> =
        demo.reps.iter().map(|r| r.team.as_str()).collect();
    say!(
        "Demo organisation: {} reps in {} teams, {} events stored in {} (seed {}, now {}).\n",
        demo.reps.len(),
        teams.len(),
        stats.accepted,
        ctx.data_dir.display(),
        args.seed,
        now
    )?;
    write_stdout(&human::team_summary(&state, &rows, state.pace()))?;
    let focus: Vec<AlertView<'_>> = alert_views(&state, &AlertQuery::default())
        .into_iter()
        .filter(|v| v.focus)
        .collect();
    say!(
        "\nFocus alerts ({} open, at most {} per rep):",
        focus.len(),
        ctx.config.org.alerts.max_focus_per_rep
    )?;
    write_stdout(&human::focus_list(&focus, &state))?;
    let dir = ctx.data_dir.display();
    say!(
        "Next: pacer alerts --data-dir {dir} --team north   ·   pacer digest --data-dir {dir} --team north   ·   \
         pacer report --data-dir {dir} --view productivity   ·   pacer alerts backtest --data-dir {dir}"
    )?;
    Ok(ExitCode::SUCCESS)
}
