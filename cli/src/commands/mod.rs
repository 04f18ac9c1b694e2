//! One module per subcommand, plus what they share: opening the log, the wall
//! clock, and rebuilding the projections with a progress bar.

pub mod demo;
pub mod ingest;
pub mod log;
pub mod report;
pub mod tick;

use std::io::ErrorKind;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use pacer_engine::replay::rebuild;
use pacer_engine::Log;
use pacer_projections::state::State;
use pacer_projections::time::Timestamp;

use crate::Context;

/// The wall clock, the only one in Pacer: it stamps `recorded_at` and default ticks.
pub fn wall_clock() -> Timestamp {
    Timestamp::from_utc(chrono::Utc::now())
}

/// Opens the log in the data dir, creating it when it does not exist.
pub fn open_log(ctx: &Context) -> anyhow::Result<Log> {
    std::fs::create_dir_all(&ctx.data_dir)
        .with_context(|| format!("cannot create the data dir {}", ctx.data_dir.display()))?;
    Ok(Log::open(&ctx.data_dir)?)
}

/// A progress bar on stderr for `len` steps (drawn only on a terminal).
pub fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)")
            .expect("the template is valid")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// Rebuilds the projections from the log (up to `to_seq`), with a progress bar on
/// long logs.
pub fn rebuild_state(ctx: &Context, log: &Log, to_seq: Option<u64>) -> anyhow::Result<State> {
    let total = to_seq.map_or(log.last_seq(), |n| n.min(log.last_seq()));
    let bar = progress_bar(total, "rebuilding");
    if total < 200_000 {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let state = rebuild(log, &ctx.config.org, to_seq, |seq| {
        if seq % 4096 == 0 {
            bar.set_position(seq);
        }
    })?;
    bar.finish_and_clear();
    Ok(state)
}

/// Whether an error is a closed stdout (`pacer log | head`): not a failure.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == ErrorKind::BrokenPipe)
    })
}

/// Opens the log of a data dir that must already hold one (reading commands never
/// create an empty log by accident).
pub fn open_existing_log(ctx: &Context) -> anyhow::Result<Log> {
    if !ctx.data_dir.join("conf").exists() {
        anyhow::bail!(
            "no Pacer log in {} (run `pacer demo` or `pacer ingest FILE` first, or pass --data-dir)",
            ctx.data_dir.display()
        );
    }
    Ok(Log::open(&ctx.data_dir)?)
}

/// Writes to stdout; a closed pipe surfaces as an error that `main` treats as done.
pub fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}
