//! `pacer bench`: the engine's figures on this machine (see `pacer_engine::bench`),
//! as a table and, with `--json FILE`, as JSON.
//!
//! One run measures, side by side: replay vs raw scan, projections memory and
//! queries on a generated log (`--events`, 0 skips them); durable ingest and alert
//! latency under a background load through a nats-server the bench starts itself
//! (`--ingest-events`, `--alert-probes`, 0 skips each); and with `--reps N`, the peak
//! RSS of replaying N reps × 24 months, measured in a fresh process: this binary
//! again, as the hidden `pacer bench --replay-child DIR`, which prints its own
//! figures as one line of JSON.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};

use anyhow::{bail, Context as _};
use comfy_table::{presets::UTF8_BORDERS_ONLY, Cell, CellAlignment, Table};
use pacer_engine::bench::alert_latency::{alert_latency, AlertFigures, AlertSpec};
use pacer_engine::bench::scale::{self, MemoryAtScale, ReplayMemory};
use pacer_engine::bench::{
    ingest, machine, run as bench, BenchNats, BenchSpec, INGEST_RATIO_TARGET, REPLAY_RATIO_TARGET,
};
use serde_json::{json, Value};

use crate::context::{say, Context};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// About this many events in the generated log (0: skip replay, memory and
    /// queries).
    #[arg(long, default_value_t = 2_000_000)]
    events: u64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Repetitions of the team report (the org report runs a quarter as often).
    #[arg(long, default_value_t = 400)]
    queries: u32,
    /// Rounds of scan and replay, and of raw and durable ingest, alternating: the
    /// median of each is the figure (this machine's speed wanders between runs).
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Events for the durable-ingest measurement through a nats-server the bench starts
    /// itself (0: skip it).
    #[arg(long, default_value_t = 200_000)]
    ingest_events: u64,
    /// Alert-latency probes, each an event that raises one new alert, timed from its
    /// publish to a subscriber receiving the alert (0: skip the measurement).
    #[arg(long, default_value_t = 200)]
    alert_probes: u32,
    /// The steady background load of demo events while the probes run (0: none).
    #[arg(long, default_value_t = 20_000)]
    background_events_per_s: u32,
    /// Reps of the demo organisation the alert-latency engine holds (and the
    /// background load is about).
    #[arg(long, default_value_t = 100)]
    alert_reps: usize,
    /// A probe whose alert has not arrived after this many seconds is lost.
    #[arg(long, default_value_t = 5)]
    alert_timeout_s: u64,
    /// Also measure memory at scale: write the demo history of this many reps
    /// (10 000: the target) and replay it in a fresh process. Minutes.
    #[arg(long, default_value_t = 0)]
    reps: usize,
    /// Stop the replay process above this RSS (MiB); 0: three quarters of the memory.
    #[arg(long, default_value_t = 0)]
    rss_cap_mib: u64,
    /// Also time the web app's pages on an organisation of this many reps (10 000: the
    /// issue's bench org): a team page of 20 reps, a rep page, a drill-down. Minutes.
    #[arg(long, default_value_t = 0)]
    web_reps: usize,
    /// Requests per page for `--web-reps`.
    #[arg(long, default_value_t = 200)]
    web_requests: u32,
    /// Also time the report queries in process, over HTTP and over NATS at these
    /// organisation sizes (`100,1600,10000`: the issue's), with a team of a fifth
    /// of the reps, and print how the cost grows. Minutes at 10 000.
    #[arg(long, value_delimiter = ',', value_name = "REPS,...")]
    query_reps: Vec<usize>,
    /// Questions per path and size for `--query-reps` (each asked ready, and again
    /// after a fold).
    #[arg(long, default_value_t = 300)]
    query_requests: u32,
    /// Also write the figures here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the log of `--reps` into DIR and keep it there, for replaying it again
    /// with `pacer replay` or `--replay-child DIR` (the default is a scratch dir).
    #[arg(long, value_name = "DIR", requires = "reps")]
    reps_log: Option<PathBuf>,
    /// The replay process of `--reps`: rebuild the log in DIR and print the figures.
    #[arg(long, hide = true, value_name = "DIR")]
    replay_child: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    if let Some(dir) = &args.replay_child {
        let measured = scale::measure_replay(dir, &ctx.config)?;
        say!("{}", measured.to_json())?;
        return Ok(ExitCode::SUCCESS);
    }
    // Said before minutes of other measurements, not after them.
    if let Some(kept) = args.reps_log.as_deref().filter(|d| !is_empty_dir(d)) {
        bail!(
            "{} is not empty: the bench writes a new log there (replay a kept one with `pacer replay --data-dir`)",
            kept.display()
        );
    }
    let dir = tempfile::Builder::new()
        .prefix("pacer-bench-")
        .tempdir()
        .context("creating a scratch dir for the bench log")?;
    let say = |what: &str| eprintln!("bench: {what}");
    let spec = BenchSpec {
        events: args.events,
        seed: args.seed,
        queries: args.queries,
        rounds: args.rounds,
    };
    let f = if args.events == 0 {
        None
    } else {
        Some(bench(dir.path(), &spec, &ctx.config, say)?)
    };
    // The memory of replaying that log, in a process that does nothing else.
    let replayed = match &f {
        None => None,
        Some(_) => {
            say("replaying the log in a fresh process, for its memory");
            let cap_bytes = machine().1 / 4 * 3;
            let (replay, watched) = replay_in_child(dir.path(), cap_bytes)?;
            match replay {
                Some(r) => Some(r),
                None => bail!(
                    "the replay process went over {} MiB ({:?} bytes)",
                    cap_bytes >> 20,
                    watched.killed_at_bytes
                ),
            }
        }
    };
    let mut ingested = None;
    let mut alerts = None;
    if args.ingest_events > 0 || args.alert_probes > 0 {
        match BenchNats::start(&dir.path().join("jetstream")) {
            None => eprintln!(
                "bench: durable ingest and alert latency skipped: nats-server is not installed (apt-get install nats-server)"
            ),
            Some(nats) => {
                let rt = super::serve::runtime()?;
                if args.ingest_events > 0 {
                    say(&format!(
                        "durable ingest of {} events through {}",
                        args.ingest_events, nats.url
                    ));
                    ingested = Some(rt.block_on(ingest(
                        &nats,
                        &dir.path().join("ingest-log"),
                        args.ingest_events,
                        args.rounds,
                        &ctx.config,
                    ))?);
                }
                if args.alert_probes > 0 {
                    let spec = AlertSpec {
                        probes: args.alert_probes,
                        background_events_per_s: args.background_events_per_s,
                        reps: args.alert_reps.max(1),
                        timeout: std::time::Duration::from_secs(args.alert_timeout_s.max(1)),
                        seed: args.seed,
                    };
                    alerts = Some(rt.block_on(alert_latency(
                        &nats,
                        &dir.path().join("alerts-log"),
                        &spec,
                        &ctx.config,
                        say,
                    ))?);
                }
            }
        }
    }
    let at_scale = if args.reps == 0 {
        None
    } else {
        let log_dir = match &args.reps_log {
            Some(kept) => kept.clone(),
            None => dir.path().join("scale-log"),
        };
        Some(memory_at_scale(ctx, &args, &log_dir)?)
    };
    let web = if args.web_reps == 0 {
        None
    } else {
        Some(super::web_bench::measure(
            &ctx.config,
            dir.path(),
            args.web_reps,
            args.web_requests.max(1),
            args.seed,
        )?)
    };
    let queries = if args.query_reps.is_empty() {
        None
    } else {
        Some(super::query_bench::measure(
            &ctx.config,
            dir.path(),
            &args.query_reps,
            args.query_requests.max(1),
            args.seed,
        )?)
    };

    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY);
    t.set_header(["measure", "figure", "target"].map(Cell::new));
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let mut row = |what: &str, figure: String, target: &str| {
        rows.push((what.to_owned(), figure, target.to_owned()))
    };
    let rate = |r: f64| format!("{:.0} events/s", r);
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / 1_048_576.0);
    if let Some(f) = &f {
        row(
            "replay (rebuild the projections)",
            rate(f.replay_events_per_s),
            "≥ 2 000 000 events/s",
        );
        row("raw scan (decode only)", rate(f.scan_events_per_s), "");
        row(
            "replay ÷ raw scan",
            format!("{:.1}%", f.replay_ratio() * 100.0),
            &format!("≥ {:.0}%", REPLAY_RATIO_TARGET * 100.0),
        );
        if let Some(r) = &replayed {
            row(
                "peak RSS of a replay (fresh process)",
                mib(r.peak_rss_bytes),
                "",
            );
            row("projections memory", mib(r.state_bytes()), "");
            row(
                "per rep × month × bucket cell",
                format!("{:.0} B", r.state_bytes() as f64 / f.cells.max(1) as f64),
                "",
            );
        }
        row(
            "team report p50 / p99",
            format!("{} / {} µs", f.team_report_us.0, f.team_report_us.1),
            "p99 ≤ 1 000 µs",
        );
        row(
            "org report p50 / p99",
            format!("{} / {} µs", f.org_report_us.0, f.org_report_us.1),
            "",
        );
    }
    if let Some(i) = &ingested {
        row(
            "durable ingest (JetStream → log → fold)",
            rate(i.durable_events_per_s),
            "≥ 100 000 events/s",
        );
        row("raw consume + ack", rate(i.raw_events_per_s), "");
        row(
            "durable ÷ raw",
            format!("{:.1}%", i.ratio() * 100.0),
            &format!("≥ {:.0}%", INGEST_RATIO_TARGET * 100.0),
        );
    }
    if let Some(a) = &alerts {
        row(
            "alert latency p50 / p99 / max",
            latency_text(a),
            "p99 ≤ 25 ms",
        );
        let lost = match a.not_sent {
            0 => format!("{} of {}", a.lost, a.probes),
            n => format!("{} of {} (and {n} not sent)", a.lost, a.probes),
        };
        row("alert probes lost", lost, "0");
        row(
            "background load during the probes",
            rate(a.background_events_per_s),
            &format!("{} events/s", a.background_target_per_s),
        );
        let behind = match a.backlog_at_end {
            Some(n) if n > 0 => format!(" (backlog {n})"),
            _ => String::new(),
        };
        row(
            "engine fold rate during the probes",
            format!("{}{behind}", rate(a.engine_events_per_s())),
            "",
        );
    }
    if let Some(m) = &at_scale {
        let what = format!("peak RSS, replay of {} reps × 24 months", m.log.reps);
        match (&m.replay, m.over_cap_bytes) {
            (Some(r), _) => {
                row(&what, mib(r.peak_rss_bytes), scale::TARGET_PEAK_RSS_TEXT);
                row(
                    "  per cell: peak RSS / projections",
                    format!(
                        "{:.0} / {:.0} B",
                        m.peak_bytes_per_cell().unwrap_or(0.0),
                        m.state_bytes_per_cell().unwrap_or(0.0)
                    ),
                    "",
                );
                row(
                    "  replay at scale",
                    format!(
                        "{} ({} events)",
                        rate(r.events as f64 / r.replay_seconds.max(1e-9)),
                        r.events
                    ),
                    "",
                );
            }
            (None, Some(at)) => row(
                &what,
                format!("> {} (stopped at the cap)", mib(at)),
                scale::TARGET_PEAK_RSS_TEXT,
            ),
            (None, None) => row(&what, "not measured".into(), scale::TARGET_PEAK_RSS_TEXT),
        }
    }
    if let Some(w) = &web {
        let kb = |b: usize| format!("{:.0} KB", b as f64 / 1000.0);
        let times =
            |p: &super::web_bench::PageFigures| format!("{:.1} / {:.1} ms", p.p50_ms, p.p99_ms);
        row(
            &format!("web: team page, 20 reps of {} · p50 / p99", w.reps),
            times(&w.team),
            "≤ 20 ms",
        );
        row("web: team page size", kb(w.team.bytes), "< 300 KB");
        row("web: rep page · p50 / p99", times(&w.rep), "≤ 20 ms");
        row("web: rep page size", kb(w.rep.bytes), "< 300 KB");
        row("web: the manager's inbox · p50 / p99", times(&w.inbox), "");
        row("web: inbox size", kb(w.inbox.bytes), "< 300 KB");
        row(
            &format!("web: drill-down (scans {} events) · p50", w.events),
            format!("{:.0} ms", w.events_page.p50_ms),
            "",
        );
    }
    if let Some(sizes) = &queries {
        let ms = |(p50, p99): (f64, f64)| format!("{p50:.3} / {p99:.3} ms");
        for size in sizes {
            for (which, list) in [
                ("team", &size.team),
                ("org", &size.org),
                ("comp", &size.comp),
            ] {
                for (path, f) in list.iter() {
                    let what = match which {
                        "team" => format!(
                            "query: team report ({} of {} reps), {path}",
                            size.team_reps, size.reps
                        ),
                        "org" => format!("query: org report ({} reps), {path}", size.reps),
                        _ => format!("query: org comp report ({} reps), {path}", size.reps),
                    };
                    let target = match (which, *path, size.reps) {
                        ("team", "HTTP", 1600) => "p99 ≤ 0.5 ms",
                        ("org", "HTTP", 10_000) => "p99 ≤ 2 ms",
                        ("comp", "in process", 10_000) => "< 100 ms",
                        _ => "",
                    };
                    if let Some(why) = &f.skipped {
                        let short: String = why.chars().take(60).collect();
                        row(&what, format!("not timed: {short}…"), target);
                        continue;
                    }
                    row(&format!("{what} · ready p50 / p99"), ms(f.ready_ms), target);
                    row(
                        &format!("{what} · after a fold p50 / p99"),
                        ms(f.fresh_ms),
                        "",
                    );
                }
            }
        }
        // How the team report's cost grows with the team: from the smallest size to
        // each larger one, against the team's growth.
        if let Some(first) = sizes.first() {
            for size in sizes.iter().skip(1) {
                let at = |s: &super::query_bench::SizeFigures, path: &str| {
                    s.team
                        .iter()
                        .find(|(p, f)| *p == path && f.skipped.is_none())
                        .map(|(_, f)| f.fresh_ms.0)
                };
                for path in ["in process", "HTTP", "NATS"] {
                    if let (Some(a), Some(b)) = (at(first, path), at(size, path)) {
                        row(
                            &format!(
                                "query: team report growth {}→{} reps, {path}, after a fold p50",
                                first.reps, size.reps
                            ),
                            format!(
                                "× {:.1} (team × {:.1})",
                                b / a.max(1e-9),
                                size.team_reps as f64 / first.team_reps.max(1) as f64
                            ),
                            "≤ the team's growth",
                        );
                    }
                }
            }
        }
    }
    let right = |s: String| Cell::new(s).set_alignment(CellAlignment::Right);
    for (what, figure, target) in rows {
        t.add_row(vec![Cell::new(what), right(figure), Cell::new(target)]);
    }
    let (cores, memory_bytes) = machine();
    let scope = match &f {
        Some(f) => format!(
            "{} events, {} reps · {cores} cores, {:.1} GiB · setup {:.1} s",
            f.events,
            f.reps,
            memory_bytes as f64 / 1_073_741_824.0,
            f.setup_s
        ),
        None => format!(
            "{cores} cores, {:.1} GiB",
            memory_bytes as f64 / 1_073_741_824.0
        ),
    };
    say!("pacer {} · {scope}\n{t}", env!("CARGO_PKG_VERSION"))?;
    if let Some(path) = &args.json {
        let mut v = match &f {
            Some(f) => f.to_json(),
            None => json!({
                "machine": {"cores": cores, "memory_bytes": memory_bytes},
                "version": env!("CARGO_PKG_VERSION"),
            }),
        };
        if let Value::Object(m) = &mut v {
            if let Some(r) = &replayed {
                m.insert("memory".into(), r.to_json());
            }
            if let Some(i) = &ingested {
                m.insert("ingest".into(), i.to_json());
            }
            if let Some(a) = &alerts {
                m.insert("alert_latency".into(), a.to_json());
            }
            if let Some(s) = &at_scale {
                m.insert("memory_at_scale".into(), s.to_json());
            }
            if let Some(w) = &web {
                m.insert("web".into(), w.to_json());
            }
            if let Some(q) = &queries {
                m.insert(
                    "queries".into(),
                    q.iter()
                        .map(super::query_bench::SizeFigures::to_json)
                        .collect(),
                );
            }
        }
        let text = serde_json::to_string_pretty(&v).context("rendering JSON")?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn latency_text(a: &AlertFigures) -> String {
    match (a.p50_ms(), a.p99_ms(), a.max_ms()) {
        (Some(p50), Some(p99), Some(max)) => format!("{p50:.1} / {p99:.1} / {max:.1} ms"),
        _ => "no alert arrived".into(),
    }
}

/// Whether `dir` is absent or holds nothing.
fn is_empty_dir(dir: &Path) -> bool {
    dir.read_dir().map_or(true, |mut d| d.next().is_none())
}

/// Writes the log of `args.reps` reps in slices, then replays it in a fresh process
/// (this binary, `bench --replay-child`) under the RSS cap.
fn memory_at_scale(ctx: &Context, args: &Args, log_dir: &Path) -> anyhow::Result<MemoryAtScale> {
    eprintln!(
        "bench: memory at scale: writing the history of {} reps (in slices of {})",
        args.reps,
        scale::REPS_PER_SLICE
    );
    let log = scale::write_log(log_dir, args.reps, args.seed, &ctx.config, |what| {
        eprintln!("bench: {what}")
    })?;
    let cap_bytes = if args.rss_cap_mib > 0 {
        args.rss_cap_mib << 20
    } else {
        machine().1 / 4 * 3
    };
    eprintln!(
        "bench: {} events written in {:.0} s ({:.1} GiB on disk); replaying them in a fresh process (RSS cap {:.1} GiB)",
        log.events,
        log.seconds,
        log.disk_bytes as f64 / 1_073_741_824.0,
        cap_bytes as f64 / 1_073_741_824.0
    );
    let (replay, watched) = replay_in_child(log_dir, cap_bytes)?;
    if args.reps_log.is_none() {
        let _ = std::fs::remove_dir_all(log_dir);
    }
    Ok(MemoryAtScale {
        log,
        replay,
        cap_bytes,
        over_cap_bytes: watched.killed_at_bytes,
    })
}

/// Replays the log in `log_dir` in a fresh process (this binary, `bench
/// --replay-child`), stopped above `cap_bytes`: its figures, `None` if it was stopped.
fn replay_in_child(
    log_dir: &Path,
    cap_bytes: u64,
) -> anyhow::Result<(Option<ReplayMemory>, scale::Watched)> {
    // This very binary, even if a build has replaced the file meanwhile (the run takes
    // minutes): /proc/self/exe names the running image, not the path.
    let exe = match Path::new("/proc/self/exe") {
        p if p.exists() => p.to_owned(),
        _ => std::env::current_exe().context("finding the pacer binary for the replay process")?,
    };
    let mut cmd = std::process::Command::new(exe);
    if let Some(config) = config_arg() {
        cmd.arg("--config").arg(config);
    }
    let mut child = cmd
        .args(["bench", "--replay-child"])
        .arg(log_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the replay process")?;
    let watched =
        scale::watch_child(&mut child, cap_bytes).context("waiting for the replay process")?;
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout
            .read_to_string(&mut out)
            .context("reading the replay process's figures")?;
    }
    if watched.killed_at_bytes.is_some() {
        return Ok((None, watched));
    }
    if !watched.status.success() {
        bail!("the replay process failed ({})", watched.status);
    }
    match serde_json::from_str::<Value>(out.trim())
        .ok()
        .and_then(|v| ReplayMemory::from_json(&v))
    {
        Some(r) => Ok((Some(r), watched)),
        None => bail!("the replay process printed no figures: {out:?}"),
    }
}

/// The `--config` this process was started with, for the replay process.
fn config_arg() -> Option<std::ffi::OsString> {
    let mut args = std::env::args_os();
    while let Some(a) = args.next() {
        if a == "--config" {
            return args.next();
        }
        if let Some(v) = a.to_str().and_then(|s| s.strip_prefix("--config=")) {
            return Some(v.into());
        }
    }
    None
}
