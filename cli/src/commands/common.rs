//! What the subcommands share: opening the log, the wall clock, parsing instants,
//! the `--as-of` options, rebuilding the projections with a progress bar, and writing
//! JSON or `--out` files. A leaf below the commands: it uses only `crate::context`,
//! never a command, so any command can import it.

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use pacer_engine::replay::{rebuild, Cut};
use pacer_engine::Log;
use pacer_projections::model::Model;
use pacer_projections::time::Timestamp;

use crate::context::{say, write_stdout, Context};

/// JSON for people and programs alike: pretty, with a final newline.
pub fn json_text(v: &serde_json::Value) -> anyhow::Result<String> {
    let mut s = serde_json::to_string_pretty(v).context("rendering JSON")?;
    s.push('\n');
    Ok(s)
}

/// The wall clock, the only one in Pacer: it stamps `recorded_at` and default ticks.
pub fn wall_clock() -> Timestamp {
    Timestamp::from_utc(chrono::Utc::now())
}

/// An instant on the command line (RFC 3339), for clap's `value_parser`.
pub fn parse_instant(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(s).map_err(|e| e.to_string())
}

/// The `created_by` mark of a log that only `pacer demo` has written to: only such a
/// log may be replaced by a new demo.
pub const DEMO_MARK: &str = "pacer demo";

/// Opens the log in the data dir, creating it when it does not exist, bound to the
/// configured currency and time zone.
pub fn open_log(ctx: &Context) -> anyhow::Result<Log> {
    std::fs::create_dir_all(&ctx.data_dir)
        .with_context(|| format!("cannot create the data dir {}", ctx.data_dir.display()))?;
    open_bound(ctx)
}

/// Opens the log in the data dir and binds it to the configured currency and zone.
fn open_bound(ctx: &Context) -> anyhow::Result<Log> {
    let mut log = Log::open(&ctx.data_dir)?;
    log.bind_org(&ctx.config.org)?;
    Ok(log)
}

/// Opens the log for appending events that are not the demo's: from now on a new
/// demo will refuse to replace it.
pub fn open_log_for_append(ctx: &Context) -> anyhow::Result<Log> {
    let mut log = open_log(ctx)?;
    if log.meta("created_by")?.as_deref() != Some("pacer") {
        log.set_meta("created_by", "pacer")?;
    }
    Ok(log)
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
    open_bound(ctx)
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

/// "As of" for every command that reports: the log as it was after event N, or what
/// Pacer had recorded by a moment.
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct AsOf {
    /// Compute from the log's first N events only.
    #[arg(long, conflicts_with = "as_of")]
    as_of_seq: Option<u64>,
    /// Compute from the events recorded at or before this moment (RFC 3339): what
    /// Pacer knew then, even about earlier months.
    #[arg(long, value_parser = parse_instant)]
    as_of: Option<pacer_projections::time::Timestamp>,
}

impl AsOf {
    pub fn cut(self) -> Cut {
        match (self.as_of_seq, self.as_of) {
            (Some(n), _) => Cut::ToSeq(n),
            (None, Some(t)) => Cut::RecordedBy(t),
            (None, None) => Cut::All,
        }
    }
}

/// Rebuilds the projections from the part of the log `cut` admits, with a progress
/// bar on long logs.
pub fn rebuild_state(ctx: &Context, log: &Log, cut: Cut) -> anyhow::Result<Model> {
    let total = match cut {
        Cut::ToSeq(n) => n.min(log.last_seq()),
        _ => log.last_seq(),
    };
    let bar = progress_bar(total, "rebuilding");
    if total < 200_000 {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let state = rebuild(log, &ctx.config.org, cut, |seq| {
        if seq % 4096 == 0 {
            bar.set_position(seq);
        }
    })?;
    bar.finish_and_clear();
    Ok(state)
}

/// Writes `bytes` to `--out` (and says so), or text to standard output.
pub fn emit(out: Option<&std::path::Path>, bytes: &[u8]) -> anyhow::Result<()> {
    match out {
        Some(path) => {
            std::fs::write(path, bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            say!("wrote {}", path.display())
        }
        None => write_stdout(&String::from_utf8_lossy(bytes)),
    }
}

/// One call to a running server's JSON API (`pacer dlq --http`, `pacer config
/// reload`): the answer's JSON, or an error that says what the server answered (its
/// `error`) or that it could not be reached.
pub fn call_server(
    base: &str,
    token: &str,
    req: ureq::Request,
    body: Option<&serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    let req = req.set("Authorization", &format!("Bearer {token}"));
    let result = match body {
        Some(b) => req
            .set("Content-Type", "application/json")
            .send_string(&b.to_string()),
        None => req.call(),
    };
    let text = match result {
        Ok(r) => r.into_string()?,
        Err(ureq::Error::Status(code, r)) => {
            let text = r.into_string().unwrap_or_default();
            let why = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or(text);
            anyhow::bail!("{base} answered {code}: {why}");
        }
        Err(e) => anyhow::bail!("cannot reach {base}: {e}"),
    };
    serde_json::from_str(&text).with_context(|| format!("{base} answered with no JSON"))
}

/// Moves `members` into team `team` (manager `manager`) from twelve months before
/// `month` on, as HR would (`rep_reassigned`): what the benches do to give a large
/// org a team of a chosen size whose history is the team's.
pub fn move_into_team(
    log: &mut pacer_engine::Log,
    members: &[String],
    team: &str,
    manager: &str,
    month: pacer_projections::time::Month,
    now: pacer_projections::time::Timestamp,
) -> anyhow::Result<()> {
    use pacer_projections::event::{Event, EventBody, RepReassigned};
    let moves: Vec<Event> = members
        .iter()
        .map(|rep| Event {
            event_id: format!("bench-move-{team}-{rep}"),
            source: "pacer-bench".into(),
            occurred_at: now,
            body: EventBody::RepReassigned(RepReassigned {
                rep: rep.clone(),
                team: Some(team.into()),
                manager: Some(manager.into()),
                region: None,
                effective_month: month.plus(-12),
            }),
        })
        .collect();
    log.append_batch(moves, now)?;
    Ok(())
}
