//! `pacer plan`: finance's commands. `publish` validates a plan file (every problem
//! with its row and column; nothing published unless all is valid) and appends
//! `plan_published`; `show` prints a version as the same CSV; `history` lists the
//! published versions; `diff` compares two versions; `gap` sets the top-down plan
//! beside the reps' commits and the pipeline forecast.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use comfy_table::Cell;
use pacer_engine::ingest::Ingest;
use pacer_engine::output::{csv_text, group_thousands};
use pacer_engine::plan_file::{read_plan_csv, write_plan_csv, PlanRules};
use pacer_engine::replay::Cut;
use pacer_engine::wire::encode;
use pacer_projections::bucket::Bucket;
use pacer_projections::event::{Event, EventBody, PlanBasis, PlanLine, PlanPublished};
use pacer_projections::money::format_decimal;
use pacer_projections::plan::{as_plan_lines, latest, version_lines};
use pacer_projections::time::Month;
use serde_json::{json, Value};

use super::common::{json_text, open_existing_log, open_log_for_append, rebuild_state, wall_clock};
use crate::context::{say, write_stdout, Context};

#[derive(clap::Subcommand, Debug)]
pub enum PlanCommand {
    /// Validate a plan file (CSV or XLSX: rep,month,bucket,target) and publish it.
    #[command(
        after_help = "Example:\n  pacer plan publish fy27.csv --plan fy27 --version 2 --basis revision --effective-from 2027-02\n\n\
                            Every problem is reported with its row and column; nothing is published unless the whole file is valid."
    )]
    Publish(PublishArgs),
    /// Put a plan file up for approval: validated as `publish` does, stored, and not
    /// in force until `plan approve` (by another finance or admin user).
    #[command(
        after_help = "Example:\n  pacer plan submit fy27.csv --plan fy27 --version 2 --basis revision --effective-from 2027-02 --as fin --method \"growth 10%, trailing-12\""
    )]
    Submit(SubmitArgs),
    /// Approve a submitted plan version: it is in force from now on.
    Approve(ReviewArgs),
    /// Reject a submitted plan version, with a reason: it is never in force.
    Reject(RejectArgs),
    /// Draft a top-down plan from the log's history (CSV, ready for `publish`).
    #[command(
        after_help = "Examples:\n  pacer plan draft --start 2027-01 --growth 12 --out fy27.csv\n  \
                            pacer plan draft --start 2027-01 --months 12 --target 2400000 --allocate even --seasonality flat --ramp 25,50,75,100"
    )]
    Draft(DraftArgs),
    /// Print a version's lines as the CSV `publish` reads.
    Show(ShowArgs),
    /// The published versions: basis, author, effective month, lines, total.
    History(FormatArgs),
    /// What changed between two versions, per rep, month and bucket, with totals.
    Diff(DiffArgs),
    /// Top-down plan vs the reps' commits vs the pipeline forecast, per rep, team and org.
    Gap(GapArgs),
}

#[derive(clap::Args, Debug)]
pub struct PublishArgs {
    file: PathBuf,
    /// The plan's id.
    #[arg(long)]
    plan: String,
    #[arg(long)]
    version: u32,
    #[arg(long, default_value = "top_down", value_parser = parse_basis)]
    basis: PlanBasis,
    /// The first month this version governs (YYYY-MM).
    #[arg(long, value_parser = parse_month)]
    effective_from: Month,
    /// The first month of the 24-month horizon. Default: --effective-from.
    #[arg(long, value_parser = parse_month)]
    horizon_start: Option<Month>,
    /// One part of a version published in several files (a plan over the lines one
    /// event holds, or one per team): a name for this part (letters, digits, - and
    /// _). The version in force is every part's lines; parts may not both plan the
    /// same rep and month differently.
    #[arg(long)]
    part: Option<String>,
    /// Publish even though the file leaves out reps or lines in force from
    /// --effective-from on (they would have no plan, or lose those lines).
    #[arg(long)]
    allow_dropped: bool,
}

#[derive(clap::Args, Debug)]
pub struct SubmitArgs {
    #[command(flatten)]
    publish: PublishArgs,
    /// The Pacer user submitting (a finance or admin user of `pacer user`).
    #[arg(long = "as", value_name = "USER")]
    by: String,
    /// How the plan was made (target or growth, allocation, seasonality, ramp,
    /// inputs). Default: what `plan draft --out FILE` wrote to FILE.method, if any.
    #[arg(long)]
    method: Option<String>,
    #[arg(long)]
    note: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct ReviewArgs {
    #[arg(long)]
    plan: String,
    #[arg(long)]
    version: u32,
    /// The Pacer user deciding (finance or admin; not the one who submitted it).
    #[arg(long = "as", value_name = "USER")]
    by: String,
    #[arg(long)]
    note: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct RejectArgs {
    #[command(flatten)]
    review: ReviewArgs,
    /// Why: the submitter reads it in `plan history`.
    #[arg(long)]
    reason: String,
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("size").required(true).args(["target", "growth"])))]
pub struct DraftArgs {
    /// The first month of the plan (YYYY-MM).
    #[arg(long, value_parser = parse_month)]
    start: Month,
    /// How many months, 1 to 24.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(i32).range(1..=24))]
    months: i32,
    /// The organisation's total over the whole horizon, in the reporting currency.
    #[arg(long)]
    target: Option<String>,
    /// Or: the trailing 12 complete months' bookings grown by this percentage per
    /// year, compounding (year 2 plans the base × (1 + g)²).
    #[arg(long, allow_hyphen_values = true)]
    growth: Option<String>,
    #[arg(long, value_enum, default_value_t = AllocateArg::Trailing12)]
    allocate: AllocateArg,
    /// history, flat, or a CSV file `month,percent` (12 rows, percents summing to 100).
    #[arg(long, default_value = "history")]
    seasonality: String,
    /// Percent of a full share in a new rep's first months, e.g. 25,50,75,100.
    #[arg(long, value_delimiter = ',')]
    ramp: Vec<i64>,
    /// Count the current, unfinished month in the history (seasonality, trailing 12
    /// months, prior year). By default only complete months count.
    #[arg(long)]
    include_current: bool,
    /// Write the plan here (`.csv`, or `.xlsx` for a workbook) instead of standard
    /// output.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AllocateArg {
    Even,
    PriorYear,
    #[value(name = "trailing-12")]
    Trailing12,
}

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// Default: the plan published last.
    #[arg(long)]
    plan: Option<String>,
    /// Default: the version published last.
    #[arg(long)]
    version: Option<u32>,
    #[arg(long, value_enum, default_value_t = PlanFormat::Csv)]
    format: PlanFormat,
}

#[derive(clap::Args, Debug)]
pub struct FormatArgs {
    #[arg(long, value_enum, default_value_t = PlanFormat::Table)]
    format: PlanFormat,
}

#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    before: u32,
    after: u32,
    /// Default: the plan published last.
    #[arg(long)]
    plan: Option<String>,
    #[arg(long, value_enum, default_value_t = PlanFormat::Table)]
    format: PlanFormat,
}

#[derive(clap::Args, Debug)]
pub struct GapArgs {
    /// Default: the month of the latest clock_tick.
    #[arg(long, value_parser = parse_month)]
    month: Option<Month>,
    #[arg(long, value_enum, default_value_t = PlanFormat::Table)]
    format: PlanFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    Table,
    Csv,
    Json,
}

/// Whether a path names a workbook (`.xlsx`).
fn is_xlsx(path: &std::path::Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xlsx"))
}

fn parse_month(s: &str) -> Result<Month, String> {
    Month::parse(s).map_err(|e| e.to_string())
}

fn parse_basis(s: &str) -> Result<PlanBasis, String> {
    [PlanBasis::TopDown, PlanBasis::BottomUp, PlanBasis::Revision]
        .into_iter()
        .find(|b| b.as_str() == s)
        .ok_or_else(|| format!("{s:?} is not top_down, bottom_up or revision"))
}

pub fn run(ctx: &Context, cmd: PlanCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PlanCommand::Publish(a) => publish(ctx, a, None),
        PlanCommand::Submit(a) => submit(ctx, a),
        PlanCommand::Approve(a) => review(ctx, &a, None),
        PlanCommand::Reject(a) => review(ctx, &a.review, Some(&a.reason)),
        PlanCommand::Draft(a) => draft_plan(ctx, a),
        PlanCommand::Show(a) => show(ctx, a),
        PlanCommand::History(a) => history(ctx, a),
        PlanCommand::Diff(a) => plan_diff(ctx, a),
        PlanCommand::Gap(a) => plan_gap(ctx, a),
    }
}

/// A finance or admin user of the data dir's users, by name.
fn plan_user(ctx: &Context, name: &str) -> anyhow::Result<()> {
    let users =
        pacer_engine::access::Users::load(&ctx.data_dir.join(pacer_engine::access::USERS_FILE))?;
    match users.users.get(name).map(|u| u.role) {
        Some(pacer_engine::access::Role::Finance | pacer_engine::access::Role::Admin) => Ok(()),
        Some(role) => bail!(
            "--as {name}: a {} user may not submit, approve or reject plans (finance or admin)",
            role.as_str()
        ),
        None => {
            bail!("--as {name}: no such user (add one with `pacer user add {name} --role finance`)")
        }
    }
}

fn submit(ctx: &Context, a: SubmitArgs) -> anyhow::Result<ExitCode> {
    plan_user(ctx, &a.by)?;
    let method = match a.method.clone() {
        Some(m) => Some(m),
        None => {
            let mut side = a.publish.file.clone().into_os_string();
            side.push(".method");
            std::fs::read_to_string(std::path::PathBuf::from(side))
                .ok()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
        }
    };
    let event = Event {
        event_id: format!(
            "plan-{}-v{}-submitted-{}",
            a.publish.plan,
            a.publish.version,
            wall_clock().to_rfc3339()
        ),
        source: "pacer-plan".into(),
        occurred_at: wall_clock(),
        body: EventBody::PlanSubmitted(pacer_projections::event::PlanSubmitted {
            plan: a.publish.plan.clone(),
            version: a.publish.version,
            by: a.by.clone(),
            method,
            note: a.note.clone(),
        }),
    };
    publish(ctx, a.publish, Some(event))
}

/// `plan approve` / `plan reject`: the decision on a submitted, pending version.
fn review(ctx: &Context, a: &ReviewArgs, reason: Option<&str>) -> anyhow::Result<ExitCode> {
    plan_user(ctx, &a.by)?;
    let mut log = open_log_for_append(ctx)?;
    let state = rebuild_state(ctx, &log, Cut::All)?;
    let Some(r) = state.plans().review(&a.plan, a.version) else {
        bail!(
            "plan {} version {} was not submitted for approval (plan submit)",
            a.plan,
            a.version
        );
    };
    if r.status() != "submitted" {
        bail!(
            "plan {} version {} is already {}",
            a.plan,
            a.version,
            r.status()
        );
    }
    if r.submitted_by == a.by {
        bail!(
            "--as {}: the user who submitted plan {} version {} may not decide on it (four eyes)",
            a.by,
            a.plan,
            a.version
        );
    }
    let now = wall_clock();
    let (kind, body) = match reason {
        None => (
            "approved",
            EventBody::PlanApproved(pacer_projections::event::PlanApproved {
                plan: a.plan.clone(),
                version: a.version,
                by: a.by.clone(),
                note: a.note.clone(),
            }),
        ),
        Some(why) => (
            "rejected",
            EventBody::PlanRejected(pacer_projections::event::PlanRejected {
                plan: a.plan.clone(),
                version: a.version,
                by: a.by.clone(),
                reason: why.to_owned(),
            }),
        ),
    };
    let event = Event {
        event_id: format!("plan-{}-v{}-{kind}-{}", a.plan, a.version, r.submitted_seq),
        source: "pacer-plan".into(),
        occurred_at: now,
        body,
    };
    let bytes = serde_json::to_vec(&encode(&event)).context("encoding the decision")?;
    let mut clock = move || now;
    let mut ingest = Ingest::new(&mut log, &ctx.config, &mut clock, 1);
    if let Some(r) = ingest.push(&bytes)? {
        bail!("the decision was rejected: {r}");
    }
    ingest.finish()?;
    pacer_engine::access::audit(
        &ctx.data_dir,
        &a.by,
        &format!(
            "plan.{}",
            if reason.is_some() {
                "reject"
            } else {
                "approve"
            }
        ),
        &a.plan,
        serde_json::json!({"version": a.version, "reason": reason, "note": a.note}),
    )?;
    say!("plan {} version {} {kind} by {}", a.plan, a.version, a.by)?;
    Ok(ExitCode::SUCCESS)
}

fn publish(ctx: &Context, a: PublishArgs, submitted: Option<Event>) -> anyhow::Result<ExitCode> {
    let mut bytes =
        std::fs::read(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
    // A workbook's problems are named by cell (`D7`), where its table starts.
    let mut sheet_origin = None;
    if is_xlsx(&a.file) {
        let (csv, origin) = pacer_engine::xlsx::xlsx_to_csv_at(&bytes)
            .with_context(|| format!("{}", a.file.display()))?;
        bytes = csv.into_bytes();
        sheet_origin = Some(origin);
    }
    let mut log = open_log_for_append(ctx)?;
    let state = rebuild_state(ctx, &log, Cut::All)?;
    let registered: BTreeSet<String> = state
        .reps()
        .iter()
        .filter(|(_, r)| r.registered)
        .map(|(id, _)| id.clone())
        .collect();
    let review = state.plans().review(&a.plan, a.version);
    let pending = review.is_some_and(|r| r.status() == "submitted");
    match (submitted.is_some(), review.map(|r| r.status())) {
        // An approved version is what finance signed: it does not change.
        (_, Some("approved")) => bail!(
            "plan {} version {} is approved: submit the new figures as version {}",
            a.plan,
            a.version,
            a.version + 1
        ),
        // Its parts stay in the log: new figures are a new version.
        (_, Some("rejected")) => bail!(
            "plan {} version {} was rejected: submit the new figures as version {}",
            a.plan,
            a.version,
            a.version + 1
        ),
        _ => {}
    }
    let horizon_start = a.horizon_start.unwrap_or(a.effective_from);
    let last = horizon_start.plus(PlanPublished::HORIZON_MONTHS - 1);
    if a.effective_from < horizon_start || a.effective_from > last {
        bail!(
            "--effective-from {} is outside the horizon {horizon_start}..{last}",
            a.effective_from
        );
    }
    let currency = ctx.config.org.currency;
    let rules = PlanRules {
        currency,
        registered: &registered,
        horizon_start,
        effective_from: a.effective_from,
        lines_max: ctx.config.limits.plan_lines_max,
    };
    let lines = match read_plan_csv(&bytes, &rules) {
        Ok(lines) => lines,
        Err(problems) => {
            for p in &problems {
                match sheet_origin {
                    Some(origin) => eprintln!("{}: {}", a.file.display(), p.in_sheet(origin)),
                    None => eprintln!("{}: {p}", a.file.display()),
                }
            }
            bail!(
                "{} problem{} in {}: nothing was published",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" },
                a.file.display()
            );
        }
    };
    let n = lines.len();
    if let Some(p) = &a.part {
        let ok = !p.is_empty()
            && p.len() <= 64
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            bail!("--part: {p:?} is not a part name (letters, digits, - and _, at most 64)");
        }
    }
    let event_id = match &a.part {
        Some(p) => format!("plan-{}-v{}-{}-{p}", a.plan, a.version, a.effective_from),
        None => format!("plan-{}-v{}-{}", a.plan, a.version, a.effective_from),
    };
    // Other parts of this version must not plan the same rep and month differently
    // (this very part again is checked below).
    let clashes = pacer_projections::plan::part_clashes(
        &state,
        &a.plan,
        a.version,
        a.effective_from,
        &event_id,
        &lines,
    );
    if !clashes.is_empty() {
        let shown: Vec<String> = clashes
            .iter()
            .take(5)
            .map(|(r, m, seq)| format!("{r} {m} (seq {seq})"))
            .collect();
        bail!(
            "{} rep-month{} of this file {} already planned differently by another part of plan {} version {}: {}{}; nothing was published",
            clashes.len(),
            if clashes.len() == 1 { "" } else { "s" },
            if clashes.len() == 1 { "is" } else { "are" },
            a.plan,
            a.version,
            shown.join(", "),
            if clashes.len() > 5 { ", ..." } else { "" }
        );
    }
    // A version (not a part) governs every month from its effective month to the end
    // of its horizon: plans in force there that the file leaves out would be gone.
    if a.part.is_none() && !a.allow_dropped {
        let last = horizon_start.plus(PlanPublished::HORIZON_MONTHS - 1);
        let (rep_months, dropped_lines) = dropped(&state, a.effective_from, last, &lines);
        if !rep_months.is_empty() || !dropped_lines.is_empty() {
            let list = |v: &[String]| {
                let mut t = v.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
                if v.len() > 5 {
                    t.push_str(", ...");
                }
                t
            };
            let mut what = Vec::new();
            if !rep_months.is_empty() {
                what.push(format!(
                    "{} rep-month{} in force would have no plan ({})",
                    rep_months.len(),
                    if rep_months.len() == 1 { "" } else { "s" },
                    list(&rep_months)
                ));
            }
            if !dropped_lines.is_empty() {
                what.push(format!(
                    "{} line{} in force would be dropped ({})",
                    dropped_lines.len(),
                    if dropped_lines.len() == 1 { "" } else { "s" },
                    list(&dropped_lines)
                ));
            }
            bail!(
                "from {} this version governs every month to {last}, and {}; include them in the file, or pass --allow-dropped; nothing was published",
                a.effective_from,
                what.join(", and ")
            );
        }
    }
    let now = wall_clock();
    let event = Event {
        event_id,
        source: "pacer-plan".into(),
        occurred_at: now,
        body: EventBody::PlanPublished(PlanPublished {
            plan: a.plan.clone(),
            version: a.version,
            basis: a.basis,
            horizon_start,
            effective_from: a.effective_from,
            currency,
            lines,
        }),
    };
    // The same plan, version and month again: a duplicate only if it says the same;
    // different figures under an existing version are an error, never ignored.
    if let Some(before) = log.event(&event.event_id)? {
        if let (EventBody::PlanPublished(old), EventBody::PlanPublished(new)) =
            (&before.event.body, &event.body)
        {
            let changed = changed_lines(&old.lines, &new.lines);
            let differs =
                changed > 0 || old.basis != new.basis || old.horizon_start != new.horizon_start;
            if differs {
                bail!(
                    "plan {} version {} effective from {} is already published (event {}, seq {}) with different content: {changed} line{} differ{}{}; publish the new figures as version {} (--basis revision), or as another part of this version (--part NAME)",
                    a.plan,
                    a.version,
                    a.effective_from,
                    event.event_id,
                    before.seq,
                    if changed == 1 { "" } else { "s" },
                    if changed == 1 { "s" } else { "" },
                    if old.basis != new.basis {
                        format!(", basis {} then, {} now", old.basis.as_str(), new.basis.as_str())
                    } else {
                        String::new()
                    },
                    a.version + 1
                );
            }
        }
    }
    let bytes = serde_json::to_vec(&encode(&event)).context("encoding the plan")?;
    // A submission: the version is marked pending first (unless it is already, with
    // another part), so its lines are never in force before the approval.
    // A part of a version already pending joins it.
    let submitted = submitted.filter(|_| !pending);
    let mut clock = move || now;
    let mut ingest = Ingest::new(&mut log, &ctx.config, &mut clock, 1);
    if let Some(s) = &submitted {
        let b = serde_json::to_vec(&encode(s)).context("encoding the submission")?;
        if let Some(r) = ingest.push(&b)? {
            bail!("the submission was rejected: {r}");
        }
    }
    if let Some(r) = ingest.push(&bytes)? {
        bail!("the plan was rejected: {r}");
    }
    let stats = ingest.finish()?;
    if stats.accepted >= 1 {
        let detail = serde_json::json!({
            "version": a.version, "basis": a.basis.as_str(),
            "effective_from": a.effective_from.to_string(), "lines": n,
            "file": a.file.display().to_string(), "event_id": event.event_id,
        });
        pacer_engine::access::audit(
            &ctx.data_dir,
            &super::user::operator(),
            "plan.publish",
            &a.plan,
            detail,
        )?;
        say!(
            "{} plan {} version {} ({}) effective from {}: {n} lines{}",
            if submitted.is_some() || pending {
                "submitted"
            } else {
                "published"
            },
            a.plan,
            a.version,
            a.basis.as_str(),
            a.effective_from,
            if submitted.is_some() || pending {
                "; not in force until approved (plan approve)"
            } else {
                ""
            }
        )?;
    } else {
        say!(
            "plan {} version {} effective from {} was already published (event {})",
            a.plan,
            a.version,
            a.effective_from,
            event.event_id
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What the plans in force from `from` to `to` have that `lines` leaves out: whole
/// rep-months (`rep month`), and lines of rep-months the file does plan (`rep month
/// bucket`), in order.
fn dropped(
    state: &pacer_projections::model::Model,
    from: Month,
    to: Month,
    lines: &[PlanLine],
) -> (Vec<String>, Vec<String>) {
    let mut planned: BTreeMap<(&str, Month), BTreeSet<&Bucket>> = BTreeMap::new();
    for l in lines {
        planned
            .entry((l.rep.as_str(), l.month))
            .or_default()
            .insert(&l.bucket);
    }
    let (mut rep_months, mut dropped_lines) = (BTreeSet::new(), Vec::new());
    let plans = state.plans();
    let mut m = from;
    while m <= to {
        for (rep, bucket, _) in plans.lines(m) {
            match planned.get(&(rep, m)) {
                None => {
                    rep_months.insert(format!("{rep} {m}"));
                }
                Some(buckets) if !buckets.contains(bucket) => {
                    dropped_lines.push(format!("{rep} {m} {bucket}"));
                }
                Some(_) => {}
            }
        }
        m = m.plus(1);
    }
    (rep_months.into_iter().collect(), dropped_lines)
}

/// How many (rep, month, bucket) lines two versions of a file disagree on: a line
/// only one has, or the same line with another target.
fn changed_lines(old: &[PlanLine], new: &[PlanLine]) -> usize {
    let key = |l: &PlanLine| (l.rep.clone(), l.month, l.bucket.clone());
    let old: BTreeMap<_, i64> = old.iter().map(|l| (key(l), l.target)).collect();
    let new: BTreeMap<_, i64> = new.iter().map(|l| (key(l), l.target)).collect();
    let mut keys: BTreeSet<_> = old.keys().collect();
    keys.extend(new.keys());
    keys.into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .count()
}

fn show(ctx: &Context, a: ShowArgs) -> anyhow::Result<ExitCode> {
    let log = open_existing_log(ctx)?;
    let state = rebuild_state(ctx, &log, Cut::All)?;
    let Some((last_plan, last_version)) = latest(&state) else {
        bail!("no plan has been published yet (pacer plan publish)");
    };
    let plan = a.plan.unwrap_or(last_plan);
    let version = a.version.unwrap_or(last_version);
    let lines = version_lines(&state, &plan, version);
    if lines.is_empty() {
        bail!("plan {plan:?} has no version {version}");
    }
    let currency = state.config().currency;
    let lines = as_plan_lines(&lines);
    let text = match a.format {
        PlanFormat::Csv | PlanFormat::Table => write_plan_csv(&lines, currency),
        PlanFormat::Json => {
            let rows: Vec<Value> = lines
                .iter()
                .map(|l| {
                    let scale = if l.bucket.is_activity() { 0 } else { currency.exponent() };
                    json!({"rep": l.rep, "month": l.month.to_string(), "bucket": l.bucket.to_string(),
                           "target": format_decimal(l.target, scale)})
                })
                .collect();
            let review = state.plans().review(&plan, version);
            json_text(&json!({
                "plan": plan, "version": version, "currency": currency.code(),
                "status": review.map_or("published", |r| r.status()),
                "submitted_by": review.map(|r| r.submitted_by.clone()),
                "approved_by": review.and_then(|r| r.approved_by.clone()),
                "rejected": review.and_then(|r| r.rejected.as_ref().map(|(by, why)| json!({"by": by, "reason": why}))),
                "method": review.and_then(|r| r.method.clone()),
                "lines": rows,
            }))?
        }
    };
    // Where the version stands and how it was made, beside the CSV (not in it, so the
    // CSV can be edited and published again).
    if a.format != PlanFormat::Json {
        if let Some(r) = state.plans().review(&plan, version) {
            eprintln!(
                "plan {plan} version {version}: {} (submitted by {}{}){}",
                r.status(),
                r.submitted_by,
                match (&r.approved_by, &r.rejected) {
                    (_, Some((by, why))) => format!(", rejected by {by}: {why}"),
                    (Some(by), None) => format!(", approved by {by}"),
                    (None, None) => String::new(),
                },
                r.method
                    .as_ref()
                    .map(|m| format!("; method: {m}"))
                    .unwrap_or_default()
            );
        }
    }
    write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// Rows as a table, CSV or a JSON array of objects (all values strings). In the
/// table, the `money` columns are right-aligned with grouped thousands.
fn render(
    header: &[&str],
    rows: &[Vec<String>],
    money: &[usize],
    format: PlanFormat,
) -> anyhow::Result<String> {
    Ok(match format {
        PlanFormat::Csv => csv_text(header, rows),
        PlanFormat::Json => json_text(&Value::Array(
            rows.iter()
                .map(|r| {
                    Value::Object(
                        header
                            .iter()
                            .zip(r)
                            // An absent value (no commit, the ORG line's team) is null.
                            .map(|(h, v)| {
                                let v = if v.is_empty() {
                                    Value::Null
                                } else {
                                    Value::String(v.clone())
                                };
                                ((*h).to_owned(), v)
                            })
                            .collect(),
                    )
                })
                .collect(),
        ))?,
        PlanFormat::Table => {
            let mut t = crate::human::new_table(header);
            for r in rows {
                t.add_row(r.iter().enumerate().map(|(i, v)| {
                    if money.contains(&i) {
                        crate::human::right(group_thousands(v))
                    } else {
                        Cell::new(v)
                    }
                }));
            }
            format!("{t}\n")
        }
    })
}

fn history(ctx: &Context, a: FormatArgs) -> anyhow::Result<ExitCode> {
    let log = open_existing_log(ctx)?;
    let state = rebuild_state(ctx, &log, Cut::All)?;
    let t = pacer_engine::plans::history(&state);
    if t.rows.is_empty() {
        say!("no plan has been published yet")?;
        return Ok(ExitCode::SUCCESS);
    }
    let header: Vec<&str> = t.header.iter().map(String::as_str).collect();
    write_stdout(&render(&header, &t.rows, &t.money, a.format)?)?;
    Ok(ExitCode::SUCCESS)
}

fn plan_diff(ctx: &Context, a: DiffArgs) -> anyhow::Result<ExitCode> {
    let log = open_existing_log(ctx)?;
    let state = rebuild_state(ctx, &log, Cut::All)?;
    let (t, notes) = pacer_engine::plans::plan_diff(&state, a.plan.as_deref(), a.before, a.after)
        .map_err(|e| anyhow::anyhow!(e))?;
    for n in notes {
        eprintln!("{n}");
    }
    if a.format == PlanFormat::Table {
        say!("from version {} to version {}", a.before, a.after)?;
    }
    let header: Vec<&str> = t.header.iter().map(String::as_str).collect();
    write_stdout(&render(&header, &t.rows, &t.money, a.format)?)?;
    Ok(ExitCode::SUCCESS)
}

fn plan_gap(ctx: &Context, a: GapArgs) -> anyhow::Result<ExitCode> {
    let log = open_existing_log(ctx)?;
    let state = rebuild_state(ctx, &log, Cut::All)?;
    let Some(month) = a.month.or(state.current_month()) else {
        bail!("the log has no clock_tick yet: pass --month YYYY-MM");
    };
    let t = pacer_engine::plans::gap_table(&state, month);
    let currency = state.config().currency;
    if a.format == PlanFormat::Table {
        say!(
            "{month} · top-down plan vs bottom-up commit vs pipeline forecast ({})",
            currency.code()
        )?;
    }
    let header: Vec<&str> = t.header.iter().map(String::as_str).collect();
    write_stdout(&render(&header, &t.rows, &t.money, a.format)?)?;
    Ok(ExitCode::SUCCESS)
}

/// Twelve month-of-year weights from `month,percent` rows summing to exactly 100.
fn read_seasonality(path: &std::path::Path) -> anyhow::Result<[i64; 12]> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_slice());
    let header: Vec<String> = reader.headers()?.iter().map(str::to_owned).collect();
    if header != ["month", "percent"] {
        bail!(
            "{}: row 1: the header is {:?}; it must be month,percent",
            path.display(),
            header.join(",")
        );
    }
    let mut w: [Option<i64>; 12] = [None; 12];
    for (i, rec) in reader.records().enumerate() {
        let row = i + 2;
        let rec = rec.with_context(|| format!("{}: row {row}", path.display()))?;
        let m: usize = match rec.get(0).and_then(|m| m.parse().ok()) {
            Some(m @ 1..=12) => m,
            _ => bail!(
                "{}: row {row}, column month: {:?} is not a month number 1-12",
                path.display(),
                rec.get(0).unwrap_or("")
            ),
        };
        let pct = rec.get(1).unwrap_or("");
        let v = pacer_projections::money::parse_decimal(pct, 2)
            .ok()
            .filter(|v| *v >= 0)
            .with_context(|| format!("{}: row {row}, column percent: {pct:?} is not a percentage with at most two decimals", path.display()))?;
        if w[m - 1].replace(v).is_some() {
            bail!("{}: row {row}: month {m} is given twice", path.display());
        }
    }
    let missing: Vec<String> = (1..=12)
        .filter(|m| w[m - 1].is_none())
        .map(|m| m.to_string())
        .collect();
    if !missing.is_empty() {
        bail!(
            "{}: months {} are missing",
            path.display(),
            missing.join(", ")
        );
    }
    let w = w.map(|v| v.unwrap_or(0));
    let sum: i64 = w.iter().sum();
    if sum != 10_000 {
        bail!(
            "{}: the percentages sum to {}, not 100",
            path.display(),
            format_decimal(sum, 2)
        );
    }
    Ok(w)
}

fn draft_plan(ctx: &Context, a: DraftArgs) -> anyhow::Result<ExitCode> {
    use pacer_projections::draft::{draft, Allocate, DraftSpec, Seasonality, Total};
    let log = open_existing_log(ctx)?;
    let state = rebuild_state(ctx, &log, Cut::All)?;
    let currency = state.config().currency;
    let total = match (&a.target, &a.growth) {
        (Some(t), _) => Total::Target(
            currency
                .parse_minor(t)
                .ok()
                .filter(|v| *v >= 0)
                .with_context(|| {
                    format!(
                        "--target {t:?} is not a non-negative exact amount in {}",
                        currency.code()
                    )
                })?,
        ),
        (None, Some(g)) => Total::Growth(
            pacer_projections::money::parse_decimal(g, 2)
                .ok()
                .filter(|v| *v > -10_000)
                .with_context(|| {
                    format!(
                        "--growth {g:?} is not a percentage above -100 with at most two decimals"
                    )
                })?,
        ),
        (None, None) => unreachable!("clap requires --target or --growth"),
    };
    let seasonality = match a.seasonality.as_str() {
        "history" => Seasonality::History,
        "flat" => Seasonality::Flat,
        file => Seasonality::Given(read_seasonality(std::path::Path::new(file))?),
    };
    if let Some(bad) = a.ramp.iter().find(|p| !(0..=100).contains(*p)) {
        bail!("--ramp: {bad} is not a percentage from 0 to 100");
    }
    let spec = DraftSpec {
        start: a.start,
        months: a.months,
        total,
        allocate: match a.allocate {
            AllocateArg::Even => Allocate::Even,
            AllocateArg::PriorYear => Allocate::PriorYear,
            AllocateArg::Trailing12 => Allocate::Trailing12,
        },
        seasonality,
        ramp: a.ramp.clone(),
        include_current: a.include_current,
    };
    let lines = draft(&state, &spec).map_err(anyhow::Error::msg)?;
    let sum: i64 = lines
        .iter()
        .filter(|l| l.bucket == Bucket::Total)
        .fold(0i64, |s, l| s.saturating_add(l.target));
    let reps: BTreeSet<&str> = lines.iter().map(|l| l.rep.as_str()).collect();
    let csv = write_plan_csv(&lines, currency);
    match &a.out {
        Some(path) => {
            let bytes = if is_xlsx(path) {
                pacer_engine::xlsx::plan_xlsx(&lines, currency)?
            } else {
                csv.into_bytes()
            };
            std::fs::write(path, bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            // How it was made, beside it: `plan submit` records it with the version.
            let method = format!(
                "{}; allocate {}; seasonality {}; ramp {}; history of the complete months to {}{}; {} months from {}",
                match (&a.target, &a.growth) {
                    (Some(t), _) => format!("target {t} {}", currency.code()),
                    (None, Some(g)) => format!("growth {g}% a year, compounding"),
                    (None, None) => String::new(),
                },
                match a.allocate {
                    AllocateArg::Even => "even",
                    AllocateArg::PriorYear => "prior-year",
                    AllocateArg::Trailing12 => "trailing-12",
                },
                a.seasonality,
                if a.ramp.is_empty() {
                    "none".to_owned()
                } else {
                    a.ramp.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
                },
                spec.history_end(&state),
                if a.include_current { " (the current month included)" } else { "" },
                a.months,
                a.start
            );
            let mut side = path.clone().into_os_string();
            side.push(".method");
            let side = std::path::PathBuf::from(side);
            std::fs::write(&side, format!("{method}\n"))
                .with_context(|| format!("cannot write {}", side.display()))?;
            say!(
                "drafted {} lines to {}: {} {} over {} months from {} for {} reps\nmethod ({}): {method}",
                lines.len(),
                path.display(),
                format_decimal(sum, currency.exponent()),
                currency.code(),
                a.months,
                a.start,
                reps.len(),
                side.display()
            )?;
        }
        None => write_stdout(&csv)?,
    }
    Ok(ExitCode::SUCCESS)
}
