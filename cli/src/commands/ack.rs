//! `pacer ack`: a manager acknowledges an alert. The acknowledgement is an ordinary
//! `alert_acknowledged` event in the log, so it survives restarts and rebuilds.

use std::process::ExitCode;

use anyhow::{bail, Context as _};
use pacer_engine::ingest::Ingest;
use pacer_engine::wire::encode;
use pacer_projections::event::{AlertAcknowledged, Event, EventBody};

use super::common::{open_existing_log, rebuild_state, wall_clock};
use crate::context::{say, Context};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The alert's id (`pacer alerts` lists them).
    alert_id: String,
    /// Who acknowledges it.
    #[arg(long)]
    by: String,
    /// What was agreed with the rep.
    #[arg(long)]
    note: Option<String>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let log = open_existing_log(ctx)?;
    let state = rebuild_state(ctx, &log, pacer_engine::replay::Cut::All)?;
    let Some(alert) = state.alert_book().get(&args.alert_id) else {
        bail!(
            "no alert with id {:?} in {} (`pacer alerts --status all` lists them)",
            args.alert_id,
            ctx.data_dir.display()
        );
    };
    if let Some(ack) = state.acks().get(&args.alert_id) {
        say!(
            "{} was already acknowledged by {} at {}",
            args.alert_id,
            ack.by,
            ack.at.to_rfc3339_in(state.config().timezone)
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let (rep, rule) = (alert.rep.clone(), alert.rule());
    drop(state);
    let mut log = log;
    if log.meta("created_by")?.as_deref() != Some("pacer") {
        log.set_meta("created_by", "pacer")?;
    }
    let now = wall_clock();
    let event = Event {
        // One acknowledgement per alert: a second `pacer ack` is a duplicate.
        event_id: format!("pacer-ack-{}", args.alert_id),
        source: "pacer-cli".into(),
        occurred_at: now,
        body: EventBody::AlertAcknowledged(AlertAcknowledged {
            alert_id: args.alert_id.clone(),
            by: args.by,
            note: args.note,
        }),
    };
    let bytes = serde_json::to_vec(&encode(&event)).context("encoding the acknowledgement")?;
    let mut clock = move || now;
    let mut ingest = Ingest::new(&mut log, &ctx.config, &mut clock, 1);
    if let Some(rejection) = ingest.push(&bytes)? {
        bail!("the acknowledgement was rejected: {rejection}");
    }
    let stats = ingest.finish()?;
    if stats.accepted == 1 {
        say!("acknowledged {} ({rule} for {rep})", args.alert_id)?;
    } else {
        say!("{} was already acknowledged", args.alert_id)?;
    }
    Ok(ExitCode::SUCCESS)
}
