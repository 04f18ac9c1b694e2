//! `pacer bench`: the engine's figures on this machine (see `pacer_engine::bench`),
//! as a table and, with `--json FILE`, as JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Cell, CellAlignment, Table};
use pacer_engine::bench::{ingest, run as bench, BenchNats, BenchSpec};

use crate::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// About this many events in the generated log.
    #[arg(long, default_value_t = 2_000_000)]
    events: u64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Repetitions of the team report (the org report runs a quarter as often).
    #[arg(long, default_value_t = 400)]
    queries: u32,
    /// Events for the durable-ingest measurement through a nats-server the bench starts
    /// itself (0: skip it).
    #[arg(long, default_value_t = 200_000)]
    ingest_events: u64,
    /// Also write the figures here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let dir = tempfile::Builder::new()
        .prefix("pacer-bench-")
        .tempdir()
        .context("creating a scratch dir for the bench log")?;
    let spec = BenchSpec {
        events: args.events,
        seed: args.seed,
        queries: args.queries,
    };
    let f = bench(dir.path(), &spec, &ctx.config, |what| {
        eprintln!("bench: {what}")
    })?;
    let ingest = if args.ingest_events == 0 {
        None
    } else {
        match BenchNats::start(&dir.path().join("jetstream")) {
            None => {
                eprintln!("bench: durable ingest skipped: nats-server is not installed (apt-get install nats-server)");
                None
            }
            Some(nats) => {
                eprintln!(
                    "bench: durable ingest of {} events through {}",
                    args.ingest_events, nats.url
                );
                let log_dir = dir.path().join("ingest-log");
                Some(super::serve::runtime()?.block_on(ingest(
                    &nats,
                    &log_dir,
                    args.ingest_events,
                    &ctx.config,
                ))?)
            }
        }
    };
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY);
    t.set_header(["measure", "figure", "target"].map(Cell::new));
    let right = |s: String| Cell::new(s).set_alignment(CellAlignment::Right);
    let rate = |r: f64| format!("{:.0} events/s", r);
    for (what, figure, target) in [
        (
            "replay (rebuild the projections)",
            rate(f.replay_events_per_s),
            "≥ 2 000 000 events/s",
        ),
        ("raw scan (decode only)", rate(f.scan_events_per_s), ""),
        (
            "replay ÷ raw scan",
            format!("{:.1}%", f.replay_ratio() * 100.0),
            "≥ 50%",
        ),
        (
            "projections memory",
            format!("{:.1} MiB", f.state_bytes as f64 / 1_048_576.0),
            "",
        ),
        (
            "per rep × month × bucket cell",
            format!("{:.0} B", f.bytes_per_cell()),
            "",
        ),
        (
            "peak RSS (incl. generation)",
            format!("{:.1} MiB", f.peak_rss_bytes as f64 / 1_048_576.0),
            "≤ 1 GiB at 10 000 reps",
        ),
        (
            "team report p50 / p99",
            format!("{} / {} µs", f.team_report_us.0, f.team_report_us.1),
            "p99 ≤ 1 000 µs",
        ),
        (
            "org report p50 / p99",
            format!("{} / {} µs", f.org_report_us.0, f.org_report_us.1),
            "",
        ),
    ] {
        t.add_row(vec![Cell::new(what), right(figure), Cell::new(target)]);
    }
    if let Some(i) = &ingest {
        for (what, figure, target) in [
            (
                "durable ingest (JetStream → log → fold)",
                rate(i.durable_events_per_s),
                "≥ 100 000 events/s",
            ),
            ("raw consume + ack", rate(i.raw_events_per_s), ""),
            (
                "durable ÷ raw",
                format!("{:.1}%", i.ratio() * 100.0),
                "≥ 70%",
            ),
        ] {
            t.add_row(vec![Cell::new(what), right(figure), Cell::new(target)]);
        }
    }
    crate::say!(
        "pacer {} · {} events, {} reps · {} cores, {:.1} GiB · setup {:.1} s\n{t}",
        f.version,
        f.events,
        f.reps,
        f.cores,
        f.memory_bytes as f64 / 1_073_741_824.0,
        f.setup_s
    )?;
    if let Some(path) = &args.json {
        let mut v = f.to_json();
        if let (Some(i), serde_json::Value::Object(m)) = (&ingest, &mut v) {
            m.insert("ingest".into(), i.to_json());
        }
        let text = serde_json::to_string_pretty(&v).context("rendering JSON")?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
