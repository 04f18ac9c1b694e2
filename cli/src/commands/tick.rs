//! `pacer tick`: appends a `clock_tick`, the only way time moves in Pacer.

use std::process::ExitCode;

use pacer_engine::log::Appended;
use pacer_projections::event::{Event, EventBody};
use pacer_projections::time::Timestamp;

use super::common::{open_log_for_append, parse_instant, wall_clock};
use crate::context::{say, Context};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The instant of the tick (RFC 3339). Default: now.
    #[arg(long, value_parser = parse_instant)]
    at: Option<Timestamp>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let recorded_at = wall_clock();
    let at = args.at.unwrap_or(recorded_at);
    let mut log = open_log_for_append(ctx)?;
    let tick = Event {
        // The same instant ticked twice is one tick.
        event_id: format!("pacer-tick-{}", at.to_rfc3339()),
        source: "pacer-cli".into(),
        occurred_at: at,
        body: EventBody::ClockTick,
    };
    match log.append_batch(vec![tick], recorded_at)?.first() {
        Some(Appended::Stored(seq)) => say!("clock_tick at {at} stored as seq {seq}")?,
        Some(Appended::Duplicate(seq)) => {
            say!("clock_tick at {at} was already stored as seq {seq}")?
        }
        None => unreachable!("a batch of one has one outcome"),
    }
    Ok(ExitCode::SUCCESS)
}
