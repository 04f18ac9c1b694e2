//! `pacer log`: the stored events as JSON Lines, each with `seq` and `recorded_at`.

use std::io::Write;
use std::process::ExitCode;

use pacer_engine::wire::encode_recorded;

use super::common::open_existing_log;
use crate::context::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// First seq to print.
    #[arg(long, default_value_t = 1)]
    from_seq: u64,
    /// Print at most this many events.
    #[arg(long)]
    limit: Option<u64>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let log = open_existing_log(ctx)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for rec in log
        .iter_from(args.from_seq)
        .take(args.limit.unwrap_or(u64::MAX) as usize)
    {
        let rec = rec?;
        serde_json::to_writer(&mut out, &encode_recorded(&rec))?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
