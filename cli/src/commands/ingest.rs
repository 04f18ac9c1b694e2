//! `pacer ingest`: appends JSON Lines events to the log, reporting each rejected
//! line as `FILE:LINE: <field>: <reason>` on stderr while the good lines are stored.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use pacer_engine::ingest::{read_lines, too_long, Ingest, Line, ReadLinesError, BATCH_EVENTS_MAX};

use super::common::{open_log_for_append, wall_clock};
use crate::context::{say, Context};

/// Exit status when some lines were rejected.
pub const EXIT_REJECTED: u8 = 3;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// JSON Lines files, one event per line; `-` is standard input.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Events per append (each append is one flush to disk).
    #[arg(long, default_value_t = BATCH_EVENTS_MAX)]
    batch_events_max: usize,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    // Open every file first: a typo in the last name should not leave the first
    // files half ingested.
    let mut inputs: Vec<(String, Box<dyn BufRead>)> = Vec::with_capacity(args.files.len());
    for file in &args.files {
        let name = file.display().to_string();
        let reader: Box<dyn BufRead> = if name == "-" {
            Box::new(BufReader::new(std::io::stdin().lock()))
        } else {
            Box::new(BufReader::new(
                File::open(file).with_context(|| format!("cannot open {name}"))?,
            ))
        };
        inputs.push((name, reader));
    }
    let mut log = open_log_for_append(ctx)?;
    let mut clock = wall_clock;
    let mut ingest = Ingest::new(&mut log, &ctx.config, &mut clock, args.batch_events_max);
    let line_bytes_max = ctx.config.limits.bytes_max();
    let mut stderr = std::io::stderr().lock();
    for (name, reader) in inputs {
        let result = read_lines(reader, line_bytes_max, |line_no, line| {
            let rejection = match line {
                Line::Text(bytes) => ingest.push(&bytes)?,
                Line::TooLong { bytes } => Some(ingest.reject(too_long(bytes, line_bytes_max))),
            };
            if let Some(r) = rejection {
                // A closed stderr must not stop the ingest.
                let _ = writeln!(stderr, "{name}:{line_no}: {r}");
            }
            Ok::<(), pacer_engine::LogError>(())
        });
        match result {
            Ok(()) => {}
            Err(ReadLinesError::Io(e)) => {
                // What was read so far is still stored.
                ingest.flush()?;
                return Err(e).with_context(|| format!("cannot read {name}"));
            }
            Err(ReadLinesError::Sink(e)) => return Err(e.into()),
        }
    }
    let stats = ingest.finish()?;
    say!(
        "accepted {}, duplicate {}, rejected {}",
        stats.accepted,
        stats.duplicates,
        stats.rejected
    )?;
    Ok(if stats.rejected > 0 {
        ExitCode::from(EXIT_REJECTED)
    } else {
        ExitCode::SUCCESS
    })
}
