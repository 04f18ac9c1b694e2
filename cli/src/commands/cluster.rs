//! `pacer cluster status`: Pacer's streams and consumers on the NATS cluster, as the
//! engineer on call reads them (replicas, leaders, followers behind or offline, the
//! engine's backlog). Exit status 2 when something needs looking at.

use std::process::ExitCode;

use pacer_engine::nats::status::{cluster_status, ClusterStatus, Follower, LeaseStatus};
use pacer_engine::nats::{connect, Subjects};

use super::common::json_text;
use super::serve::{runtime, NatsArgs};
use crate::context::{write_stdout, Context};

#[derive(clap::Subcommand, Debug)]
pub enum ClusterCommand {
    /// Streams and consumers: replicas, leader, followers (current, lag, offline),
    /// messages and backlog.
    #[command(
        after_help = "Example:\n  pacer cluster status --nats nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222 --user admin\n\n\
                      Exit status: 0 healthy, 2 when a stream or consumer is missing, has no leader, or has a follower offline or behind."
    )]
    Status(StatusArgs),
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    nats: NatsArgs,
    #[arg(long, value_enum, default_value_t = StatusFormat::Table)]
    format: StatusFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFormat {
    Table,
    Json,
}

pub fn run(ctx: &Context, cmd: ClusterCommand) -> anyhow::Result<ExitCode> {
    let ClusterCommand::Status(args) = cmd;
    let nats = args.nats.apply(&ctx.config.nats)?;
    let status = runtime()?.block_on(async {
        let client = connect(&nats, "pacer cluster status").await?;
        let js = async_nats::jetstream::new(client);
        anyhow::Ok(cluster_status(&js, &Subjects::new(&nats.subject_prefix)).await?)
    })?;
    let problems = status.problems();
    match args.format {
        StatusFormat::Json => {
            let mut v = serde_json::to_value(&status)?;
            v["problems"] = serde_json::json!(problems);
            write_stdout(&format!("{}\n", json_text(&v)?))?;
        }
        StatusFormat::Table => write_stdout(&table(&status, &problems))?,
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn followers_text(list: &[Follower]) -> String {
    if list.is_empty() {
        return "–".into();
    }
    list.iter()
        .map(|f| {
            let state = if f.offline {
                "offline".to_owned()
            } else if f.current {
                "current".to_owned()
            } else {
                format!("behind {}", f.lag.map_or("?".to_owned(), |l| l.to_string()))
            };
            format!("{} ({state})", f.server)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn table(s: &ClusterStatus, problems: &[String]) -> String {
    let mut out = format!(
        "{:<20} {:>8} {:>12} {:<16} followers\n",
        "stream", "replicas", "messages", "leader"
    );
    for st in &s.streams {
        if !st.found {
            out.push_str(&format!("{:<20} not found\n", st.stream));
            continue;
        }
        out.push_str(&format!(
            "{:<20} {:>8} {:>12} {:<16} {}\n",
            st.stream,
            st.replicas,
            st.messages,
            st.leader.as_deref().unwrap_or("–"),
            followers_text(&st.followers)
        ));
    }
    out.push_str(&format!(
        "\n{:<32} {:>9} {:>11} {:<16} followers\n",
        "consumer", "pending", "ack pending", "leader"
    ));
    for c in &s.consumers {
        let name = format!("{} ({})", c.consumer, c.stream);
        if !c.found {
            out.push_str(&format!("{name:<32} not found\n"));
            continue;
        }
        out.push_str(&format!(
            "{name:<32} {:>9} {:>11} {:<16} {}\n",
            c.pending,
            c.ack_pending,
            c.leader.as_deref().unwrap_or("–"),
            followers_text(&c.followers)
        ));
    }
    match &s.lease {
        None => {}
        Some(LeaseStatus { holder: None }) => out.push_str("\nengine lease: nobody holds it\n"),
        Some(LeaseStatus { holder: Some(h) }) => out.push_str(&format!(
            "\nengine lease: {} on {} (alerts published through its log's seq {})\n",
            h.engine, h.host, h.published_seq
        )),
    }
    if problems.is_empty() {
        out.push_str("\nhealthy\n");
    } else {
        out.push_str("\nneeds looking at:\n");
        for p in problems {
            out.push_str(&format!("  {p}\n"));
        }
    }
    out
}
