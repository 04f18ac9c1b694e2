//! `pacer comp`: incentive plans on the same buckets as the sales plan. `publish`
//! reads finance's comp plan file (CSV or XLSX; every problem with its row and
//! column, nothing published unless all is valid) and appends `comp_plan_published`;
//! `report` prints each rep's statement for a period: earned for a closed period,
//! projected at today's pace and at the pipeline forecast for the current one.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use pacer_engine::comp_file::{
    accruals_json, accruals_table, period_name, problem_of, read_comp_csv, statements_list_json,
};
use pacer_engine::ingest::Ingest;
use pacer_projections::comp::{statements, PeriodStatus, Scenario};
use pacer_projections::money::{format_decimal, group_thousands};
use pacer_projections::time::Month;
use serde_json::{json, Value};

use super::common::{
    emit, json_text, open_existing_log, open_log_for_append, rebuild_state, wall_clock, AsOf,
};
use crate::context::{say, Context};

#[derive(clap::Subcommand, Debug)]
pub enum CompCommand {
    /// Publishes a comp plan version from a CSV or XLSX file.
    #[command(
        after_help = "Example:\n  pacer comp publish comp.csv --comp-plan fy27-comp --version 1 --effective-from 2026-10 --period quarter\n\n\
The file (header first):\n  \
kind,name,variable_pay,measure,weight_pct,curve,accelerator,cap_pct,gate,target_score\n  \
pay,team:north,6000.00,,,,,,,\n  \
pay,rep:ana,7500.00,,,,,,,\n  \
measure,,,total,50,50:0 100:100,2,200,retention>=90,\n  \
measure,,,new_customer,30,60:0 100:100,1.5,180,,\n  \
measure,,,report_card,20,80:0 100:100,,100,,4.00\n\n\
Weights sum to 100; a curve's attainment rises and its payout never falls; a cap lies\n\
above the curve; a gate holds the accelerator back while its bucket is below the percent."
    )]
    Publish(PublishArgs),
    /// Finance's accruals by month and team: each period's pay (earned, or projected at
    /// today's pace) in equal parts over its months.
    #[command(
        after_help = "Examples:\n  pacer comp accruals\n  pacer comp accruals --from 2026-01 --to 2026-12 --format csv > accruals.csv"
    )]
    Accruals(AccrualArgs),
    /// What changed between two versions of a comp plan.
    #[command(after_help = "Example:\n  pacer comp diff 1 2 --comp-plan fy27-comp")]
    Diff(DiffArgs),
    /// Each rep's pay for a period: earned (closed) or projected (the current one).
    #[command(
        after_help = "Examples:\n  pacer comp report --team north\n  pacer comp report --rep ana --period 2026-09 --format json"
    )]
    Report(ReportArgs),
}

#[derive(clap::Args, Debug)]
pub struct PublishArgs {
    file: PathBuf,
    #[arg(long)]
    comp_plan: String,
    #[arg(long)]
    version: u32,
    /// The first month this version governs (YYYY-MM).
    #[arg(long)]
    effective_from: String,
    /// month or quarter (quarters follow [org] fiscal_year_start_month).
    #[arg(long, default_value = "month")]
    period: String,
}

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Any month of the period (default: the current month).
    #[arg(long)]
    period: Option<String>,
    #[arg(long, conflicts_with = "team")]
    rep: Option<String>,
    #[arg(long)]
    team: Option<String>,
    #[command(flatten)]
    output: Output,
    #[command(flatten)]
    as_of: AsOf,
}

/// How a report is written, and where.
#[derive(clap::Args, Debug)]
pub struct Output {
    #[arg(long, value_enum, default_value_t = CompFormat::Table)]
    format: CompFormat,
    /// Write to this file instead of standard output (required for xlsx).
    #[arg(long)]
    out: Option<PathBuf>,
}

impl Output {
    /// Refuses a workbook to the terminal, before any work.
    fn check(&self) -> anyhow::Result<()> {
        if self.format == CompFormat::Xlsx && self.out.is_none() {
            bail!("--format xlsx writes a workbook: pass --out FILE.xlsx");
        }
        Ok(())
    }

    fn emit(&self, bytes: &[u8]) -> anyhow::Result<()> {
        emit(self.out.as_deref(), bytes)
    }

    /// JSON, pretty, with a final newline.
    fn emit_json(&self, v: &Value) -> anyhow::Result<()> {
        self.emit(format!("{}\n", json_text(v)?).as_bytes())
    }

    /// A table as CSV or a workbook.
    fn emit_table(&self, table: &pacer_engine::plans::Table, sheet: &str) -> anyhow::Result<()> {
        self.emit(&table_bytes(self.format, table, sheet)?)
    }
}

#[derive(clap::Args, Debug)]
pub struct AccrualArgs {
    /// The first month (default: eleven months before the current one).
    #[arg(long)]
    from: Option<String>,
    /// The last month (default: the current one).
    #[arg(long)]
    to: Option<String>,
    #[arg(long)]
    team: Option<String>,
    #[command(flatten)]
    output: Output,
}

#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    v1: u32,
    v2: u32,
    /// The comp plan (default: the only one).
    #[arg(long)]
    comp_plan: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompFormat {
    Table,
    Json,
    Csv,
    /// A workbook of one sheet (with --out FILE.xlsx): figures as numbers.
    Xlsx,
}

/// A table as CSV or a workbook (the other formats are written by their command).
fn table_bytes(
    format: CompFormat,
    table: &pacer_engine::plans::Table,
    sheet: &str,
) -> anyhow::Result<Vec<u8>> {
    Ok(match format {
        CompFormat::Xlsx => pacer_engine::xlsx::table_xlsx(table, sheet)?,
        _ => pacer_engine::output::csv_text(
            &table.header.iter().map(String::as_str).collect::<Vec<_>>(),
            &table.rows,
        )
        .into_bytes(),
    })
}

pub fn run(ctx: &Context, cmd: CompCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CompCommand::Publish(a) => publish(ctx, a),
        CompCommand::Report(a) => report(ctx, a),
        CompCommand::Accruals(a) => accruals(ctx, a),
        CompCommand::Diff(a) => diff(ctx, a),
    }
}

fn publish(ctx: &Context, a: PublishArgs) -> anyhow::Result<ExitCode> {
    let mut bytes =
        std::fs::read(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
    if a.file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xlsx"))
    {
        let (csv, _) = pacer_engine::xlsx::xlsx_to_csv_at(&bytes)
            .with_context(|| format!("{}", a.file.display()))?;
        bytes = csv.into_bytes();
    }
    let text = String::from_utf8(bytes)
        .with_context(|| format!("{} is not UTF-8 text", a.file.display()))?;
    let currency = ctx.config.org.currency;
    let file = match read_comp_csv(
        &text,
        &a.comp_plan,
        a.version,
        &a.effective_from,
        &a.period,
        currency,
    ) {
        Ok(f) => f,
        Err(problems) => {
            for p in &problems {
                eprintln!("{}: {p}", a.file.display());
            }
            bail!(
                "{} problem{} in {}: nothing was published",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" },
                a.file.display()
            );
        }
    };
    let now = wall_clock();
    let mut fields = file.fields.clone();
    let event_id = format!("comp-{}-v{}", a.comp_plan, a.version);
    fields.insert("event_id".into(), event_id.clone().into());
    fields.insert("source".into(), "pacer-comp".into());
    fields.insert("occurred_at".into(), now.to_rfc3339().into());
    let body = serde_json::to_vec(&Value::Object(fields)).context("encoding the comp plan")?;
    let mut log = open_log_for_append(ctx)?;
    if log.seq_of(&event_id)?.is_some() {
        bail!(
            "comp plan {} version {} is already published: publish the new terms as version {}",
            a.comp_plan,
            a.version,
            a.version.saturating_add(1)
        );
    }
    let mut clock = move || now;
    let mut ingest = Ingest::new(&mut log, &ctx.config, &mut clock, 1);
    if let Some(r) = ingest.push(&body)? {
        let p = problem_of(&file, &r.field, &r.reason);
        eprintln!("{}: {p}", a.file.display());
        bail!("1 problem in {}: nothing was published", a.file.display());
    }
    ingest.finish()?;
    pacer_engine::access::audit(
        &ctx.data_dir,
        &super::user::operator(),
        "comp.publish",
        &a.comp_plan,
        json!({"version": a.version, "effective_from": a.effective_from, "period": a.period,
               "file": a.file.display().to_string(), "event_id": event_id}),
    )?;
    say!(
        "published comp plan {} version {} ({}) effective from {}: {} measure(s), {} pay line(s)",
        a.comp_plan,
        a.version,
        a.period,
        a.effective_from,
        file.measure_rows.len(),
        file.pay_rows.len()
    )?;
    Ok(ExitCode::SUCCESS)
}

fn report(ctx: &Context, a: ReportArgs) -> anyhow::Result<ExitCode> {
    a.output.check()?;
    let log = open_existing_log(ctx)?;
    let model = rebuild_state(ctx, &log, a.as_of.cut())?;
    let state = model.state();
    let month = match &a.period {
        Some(p) => Month::parse(p).map_err(|e| anyhow::anyhow!("--period: {p:?}: {e}"))?,
        None => state
            .current_month()
            .context("no clock tick yet: name the period with --period YYYY-MM")?,
    };
    let currency = ctx.config.org.currency;
    let statements = statements(state, month, a.rep.as_deref(), a.team.as_deref());
    if statements.is_empty() {
        bail!(
            "no comp plan pays {} in {month} (pacer comp publish)",
            match (&a.rep, &a.team) {
                (Some(r), _) => format!("rep {r}"),
                (None, Some(t)) => format!("team {t}"),
                _ => "anyone".into(),
            }
        );
    }
    match a.output.format {
        CompFormat::Json => {
            // The answer of `GET /v1/comp` and the NATS `comp` query.
            a.output
                .emit_json(&statements_list_json(&statements, currency))?;
        }
        CompFormat::Csv | CompFormat::Xlsx => {
            let table = pacer_engine::comp_file::statements_table(&statements, currency);
            a.output.emit_table(&table, "comp")?;
        }
        CompFormat::Table => {
            let money = |v: i64| group_thousands(&format_decimal(v, currency.exponent()));
            let mut out = String::new();
            for s in &statements {
                out.push_str(&format!(
                    "{} ({}) · comp plan {} v{} · {} ({}) · {} · variable pay {} {}\n",
                    s.rep,
                    s.team,
                    s.plan.comp_plan,
                    s.plan.version,
                    period_name(&s.months),
                    s.plan.period.as_str(),
                    match s.status {
                        PeriodStatus::Closed => "closed: earned",
                        PeriodStatus::Open => "open: projected",
                        PeriodStatus::Future => "not begun",
                    },
                    money(s.variable_pay),
                    currency.code()
                ));
                for p in &s.payouts {
                    let basis = match p.scenario {
                        Scenario::Earned => "earned",
                        Scenario::Pace => "at today's pace",
                        Scenario::Forecast => "at the pipeline forecast",
                    };
                    out.push_str(&format!("  {basis}:\n"));
                    for l in &p.measures {
                        out.push_str(&format!(
                            "    {:<22} weight {:>6}%  attainment {:>8}  payout {:>8}%{}  pay {:>12}\n",
                            l.measure,
                            format_decimal(i64::from(l.weight_bp), 2),
                            l.attainment_bp
                                .map_or("–".to_owned(), |a| format!("{}%", format_decimal(a.rounded(), 2))),
                            format_decimal(l.payout_bp.rounded(), 2),
                            if l.gate_open { "" } else { " (gate closed)" },
                            money(l.pay)
                        ));
                    }
                    out.push_str(&format!("    {:<22} {:>73}\n", "total", money(p.total)));
                }
                if let Some(n) = &s.needle {
                    out.push_str(&format!(
                        "  what moves the needle: {}\n",
                        pacer_engine::comp_file::needle_text(n, s.plan.period, currency)
                    ));
                }
                out.push('\n');
            }
            a.output.emit(out.as_bytes())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn month_arg(flag: &str, v: &str) -> anyhow::Result<Month> {
    Month::parse(v).map_err(|e| anyhow::anyhow!("{flag}: {v:?}: {e}"))
}

fn accruals(ctx: &Context, a: AccrualArgs) -> anyhow::Result<ExitCode> {
    a.output.check()?;
    let log = open_existing_log(ctx)?;
    let model = rebuild_state(ctx, &log, pacer_engine::replay::Cut::All)?;
    let state = model.state();
    let now = state.current_month();
    let to = match &a.to {
        Some(v) => month_arg("--to", v)?,
        None => now.context("no clock tick yet: give --to YYYY-MM")?,
    };
    let from = match &a.from {
        Some(v) => month_arg("--from", v)?,
        None => to.plus(-11),
    };
    anyhow::ensure!(from <= to, "--from {from} is after --to {to}");
    anyhow::ensure!(
        from.months_until(to) < 120,
        "--from {from} --to {to}: at most 120 months at once"
    );
    let currency = ctx.config.org.currency;
    let money = |v: i64| format_decimal(v, currency.exponent());
    let rows: Vec<_> = pacer_projections::comp::accruals(state, from, to)
        .into_iter()
        .filter(|r| a.team.as_ref().is_none_or(|t| *t == r.team))
        .collect();
    match a.output.format {
        CompFormat::Json => a.output.emit_json(&accruals_json(&rows, currency))?,
        CompFormat::Csv | CompFormat::Xlsx => {
            a.output
                .emit_table(&accruals_table(&rows, currency), "accruals")?;
        }
        CompFormat::Table => {
            let g = |v: i64| group_thousands(&money(v));
            let mut out = format!(
                "{:<8} {:<12} {:>5} {:>16} {:>16} {:>16}  ({})\n",
                "month",
                "team",
                "reps",
                "earned",
                "projected",
                "total",
                currency.code()
            );
            let mut month_total: std::collections::BTreeMap<Month, (i64, i64)> = Default::default();
            for r in &rows {
                out.push_str(&format!(
                    "{:<8} {:<12} {:>5} {:>16} {:>16} {:>16}\n",
                    r.month.to_string(),
                    r.team,
                    r.reps,
                    g(r.earned),
                    g(r.projected),
                    g(r.earned.saturating_add(r.projected))
                ));
                let t = month_total.entry(r.month).or_default();
                t.0 = t.0.saturating_add(r.earned);
                t.1 = t.1.saturating_add(r.projected);
            }
            for (m, (e, p)) in month_total {
                out.push_str(&format!(
                    "{:<8} {:<12} {:>5} {:>16} {:>16} {:>16}\n",
                    m.to_string(),
                    "(all)",
                    "",
                    g(e),
                    g(p),
                    g(e.saturating_add(p))
                ));
            }
            a.output.emit(out.as_bytes())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn diff(ctx: &Context, a: DiffArgs) -> anyhow::Result<ExitCode> {
    let log = open_existing_log(ctx)?;
    let model = rebuild_state(ctx, &log, pacer_engine::replay::Cut::All)?;
    let plans = model.state().comp_plans();
    let name = match &a.comp_plan {
        Some(n) => n.clone(),
        None => match plans.keys().collect::<Vec<_>>().as_slice() {
            [one] => (*one).clone(),
            [] => bail!("no comp plan is published (pacer comp publish)"),
            many => bail!(
                "--comp-plan: which one? {}",
                many.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    };
    let versions = plans
        .get(&name)
        .with_context(|| format!("--comp-plan: no comp plan {name:?}"))?;
    let find = |v: u32| {
        versions
            .iter()
            .map(|(_, p)| p)
            .find(|p| p.version == v)
            .with_context(|| format!("comp plan {name} has no version {v}"))
    };
    let (p1, p2) = (find(a.v1)?, find(a.v2)?);
    let lines = pacer_engine::comp_file::diff(p1, p2);
    if lines.is_empty() {
        say!(
            "comp plan {name}: versions {} and {} say the same",
            a.v1,
            a.v2
        )?;
    }
    for (what, from, to) in lines {
        say!("{what}\t{from}\t→ {to}")?;
    }
    Ok(ExitCode::SUCCESS)
}
