//! `pacer replay`: rebuilds every projection from the log (all of it, or up to a seq
//! or a moment), reports events/s, and with `--verify` checks the result.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::bail;
use pacer_engine::replay::{rebuild, verify, Cut};
use pacer_projections::time::Timestamp;

use super::common::{open_existing_log, parse_instant, progress_bar};
use crate::context::{say, Context};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Fold the events with seq ≤ N only.
    #[arg(long, conflicts_with = "to")]
    to_seq: Option<u64>,
    /// Fold the events recorded at or before this moment (RFC 3339) only.
    #[arg(long, value_parser = parse_instant)]
    to: Option<Timestamp>,
    /// Check the rebuilt state: every event id stored once, contiguous seqs, the
    /// bucket invariants, standing alerts = the conditions that hold, and a second
    /// fold identical to the first.
    #[arg(long)]
    verify: bool,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let log = open_existing_log(ctx)?;
    let cut = match (args.to_seq, args.to) {
        (Some(n), _) => Cut::ToSeq(n),
        (None, Some(t)) => Cut::RecordedBy(t),
        (None, None) => Cut::All,
    };
    let total = match cut {
        Cut::ToSeq(n) => n.min(log.last_seq()),
        _ => log.last_seq(),
    };
    let bar = progress_bar(total, "replaying");
    let started = Instant::now();
    let state = rebuild(&log, &ctx.config.org, cut, |seq| {
        if seq % 4096 == 0 {
            bar.set_position(seq);
        }
    })?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let n = state.events_applied();
    say!(
        "replayed {n} events in {secs:.3} s ({:.0} events/s); {} reps, {} alerts, now {}",
        n as f64 / secs.max(1e-9),
        state.reps().len(),
        state.alert_book().iter().count(),
        state
            .now()
            .map_or("not ticked yet".to_owned(), |t| t.to_rfc3339())
    )?;
    if args.verify {
        match verify(&log, &ctx.config.org, cut, &state) {
            Ok(v) => say!(
                "verified: {} events indexed and folded twice alike, bucket invariants in {} rep-months, alerts of {} reps",
                v.events,
                v.rep_months,
                v.reps_with_alerts_checked
            )?,
            Err(e) => bail!("verification failed: {e}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
