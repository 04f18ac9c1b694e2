//! `pacer publish FILE.jsonl`: publishes events to JetStream (`<prefix>.events.<type>`,
//! `Nats-Msg-Id` = `event_id`), waiting for every acknowledgement.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use pacer_engine::ingest::{read_lines, Line};
use pacer_engine::nats::publish::publish_lines;
use pacer_engine::nats::{connect, Subjects};

use super::serve::{runtime, NatsArgs};
use crate::context::{say, Context};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// JSON Lines file of events (`-` reads standard input).
    file: PathBuf,
    #[command(flatten)]
    nats: NatsArgs,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let nats = args.nats.apply(&ctx.config.nats)?;
    let line_bytes_max = ctx.config.limits.bytes_max();
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(1024);
    let file = args.file.clone();
    let reader = std::thread::spawn(move || -> anyhow::Result<u64> {
        let input: Box<dyn std::io::Read> = if file.as_os_str() == "-" {
            Box::new(std::io::stdin())
        } else {
            Box::new(File::open(&file).with_context(|| format!("cannot open {}", file.display()))?)
        };
        let mut too_long = 0u64;
        let result = read_lines(
            BufReader::new(input),
            line_bytes_max,
            |line_no, line| match line {
                Line::Text(bytes) => tx.blocking_send(bytes).map_err(|_| ()),
                Line::TooLong { bytes } => {
                    eprintln!(
                        "{}:{line_no}: event: {bytes} bytes is over the {line_bytes_max}-byte limit; not published",
                        file.display()
                    );
                    too_long += 1;
                    Ok(())
                }
            },
        );
        match result {
            Ok(()) => Ok(too_long),
            Err(pacer_engine::ingest::ReadLinesError::Io(e)) => {
                Err(anyhow::Error::new(e).context(format!("reading {}", file.display())))
            }
            // The publisher stopped (it failed and says why).
            Err(pacer_engine::ingest::ReadLinesError::Sink(())) => Ok(too_long),
        }
    });
    let stats = runtime()?.block_on(async {
        let client = connect(&nats, "pacer publish").await?;
        let js = async_nats::jetstream::new(client.clone());
        let stats = publish_lines(&js, &Subjects::new(&nats.subject_prefix), rx, 256).await?;
        client.flush().await.ok();
        anyhow::Ok(stats)
    });
    let too_long = match reader.join() {
        Ok(r) => r?,
        Err(_) => bail!("the reading thread failed"),
    };
    let stats = stats?;
    say!(
        "published {}, duplicate {}, too long {too_long}",
        stats.published - stats.duplicates,
        stats.duplicates
    )?;
    Ok(if too_long > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}
