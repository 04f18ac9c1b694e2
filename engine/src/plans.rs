//! Finance's plan views as tables of text (exact decimals): the published versions
//! (`history`), a version's lines (`lines`), the change between two versions
//! (`diff`), top-down vs bottom-up (`gap`) and the organisation rolled up by team and
//! region (`rollup`). `pacer plan history|diff|gap` prints them as a table, CSV or
//! JSON; the web app shows them and offers them as CSV and XLSX downloads, so the
//! screen and the files hold the same text.

use std::collections::{BTreeMap, BTreeSet};

use pacer_projections::bucket::Bucket;
use pacer_projections::event::PlanPublished;
use pacer_projections::money::format_decimal;
use pacer_projections::plan::{diff, gap, latest, version_lines, GapRow};
use pacer_projections::report::{report, ReportQuery, ReportRow};
use pacer_projections::state::State;
use pacer_projections::time::Month;

/// Rows of text under a header; `money` lists the columns that hold amounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub money: Vec<usize>,
}

/// Every published version: plan, version, basis, effective month, horizon, lines,
/// the `total` bucket's sum as filed and the part of it in force (its months that
/// this version governs: not before its effective month, not taken over by a later
/// version), author, when recorded (org zone), its seq, where its approval stands
/// (empty for a version published straight) and how it was made.
pub fn history(state: &State) -> Table {
    let tz = state.config().timezone;
    let currency = state.config().currency;
    let plans = state.plans();
    // The parts in force for each month any version plans, the latest first.
    let mut in_force_parts: BTreeMap<Month, Vec<&pacer_projections::state::PlanVersion>> =
        BTreeMap::new();
    let rows = plans
        .versions()
        .iter()
        .map(|v| {
            let (mut total, mut in_force) = (0i64, 0i64);
            for (month, rep, bucket, t) in plans.version_lines(v) {
                if *bucket != Bucket::Total {
                    continue;
                }
                total = total.saturating_add(t);
                let parts = in_force_parts
                    .entry(month)
                    .or_insert_with(|| plans.parts_in_force(month));
                // In force: this part is, and no later part in force has the rep's month.
                let here = parts.iter().position(|p| p.seq == v.seq);
                if here.is_some_and(|i| !parts[..i].iter().any(|p| p.has_rep_month(rep, month))) {
                    in_force = in_force.saturating_add(t);
                }
            }
            vec![
                v.plan.clone(),
                v.version.to_string(),
                v.basis.as_str().to_owned(),
                v.effective_from.to_string(),
                format!(
                    "{}..{}",
                    v.horizon_start,
                    v.horizon_start.plus(PlanPublished::HORIZON_MONTHS - 1)
                ),
                v.line_count().to_string(),
                format_decimal(total, currency.exponent()),
                format_decimal(in_force, currency.exponent()),
                v.source.clone(),
                v.recorded_at.to_rfc3339_in(tz),
                v.seq.to_string(),
                plans
                    .review(&v.plan, v.version)
                    .map_or_else(String::new, |r| match (&r.approved_by, &r.rejected) {
                        (_, Some((by, why))) => {
                            format!("rejected by {by}: {why} (submitted by {})", r.submitted_by)
                        }
                        (Some(by), None) => {
                            format!("approved by {by} (submitted by {})", r.submitted_by)
                        }
                        (None, None) => {
                            format!("submitted by {}, awaiting approval", r.submitted_by)
                        }
                    }),
                plans
                    .review(&v.plan, v.version)
                    .and_then(|r| r.method.clone())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let header = [
        "plan",
        "version",
        "basis",
        "effective_from",
        "horizon",
        "lines",
        "total",
        "in_force",
        "author",
        "recorded_at",
        "seq",
        "review",
        "method",
    ];
    Table {
        header: header.iter().map(|h| (*h).to_owned()).collect(),
        rows,
        money: vec![6, 7],
    }
}

/// The lines that changed from version `before` to `after` of a plan (default: the
/// plan published last), over the months both plan, then the `total` bucket's sum per
/// month that changed and overall. Also says which months only one version plans.
pub fn plan_diff(
    state: &State,
    plan: Option<&str>,
    before_v: u32,
    after_v: u32,
) -> Result<(Table, Vec<String>), String> {
    let plan = match plan {
        Some(p) => p.to_owned(),
        None => latest(state)
            .map(|(p, _)| p)
            .ok_or("no plan has been published yet")?,
    };
    let before = version_lines(state, &plan, before_v);
    let after = version_lines(state, &plan, after_v);
    for (v, lines) in [(before_v, &before), (after_v, &after)] {
        if lines.is_empty() {
            return Err(format!("plan {plan:?} has no version {v}"));
        }
    }
    // A revision may plan only some months: compare the months both versions plan.
    let months = |lines: &BTreeMap<(String, Month, Bucket), i64>| -> BTreeSet<Month> {
        lines.keys().map(|(_, m, _)| *m).collect()
    };
    let (mb, ma) = (months(&before), months(&after));
    let both: BTreeSet<Month> = mb.intersection(&ma).copied().collect();
    if both.is_empty() {
        return Err(format!(
            "versions {before_v} and {after_v} of plan {plan:?} plan no month in common"
        ));
    }
    let mut notes = Vec::new();
    for (v, only) in [
        (before_v, mb.difference(&ma)),
        (after_v, ma.difference(&mb)),
    ] {
        let only: Vec<String> = only.map(ToString::to_string).collect();
        if !only.is_empty() {
            notes.push(format!(
                "only version {v} plans {}: not compared",
                only.join(", ")
            ));
        }
    }
    let keep = |lines: BTreeMap<(String, Month, Bucket), i64>| -> BTreeMap<_, _> {
        lines
            .into_iter()
            .filter(|((_, m, _), _)| both.contains(m))
            .collect()
    };
    let (before, after) = (keep(before), keep(after));
    let currency = state.config().currency;
    let amount = |b: &Bucket, v: i64| {
        format_decimal(
            v,
            if b.is_activity() {
                0
            } else {
                currency.exponent()
            },
        )
    };
    let mut rows: Vec<Vec<String>> = diff(&before, &after)
        .iter()
        .map(|r| {
            vec![
                r.rep.clone(),
                r.month.to_string(),
                r.bucket.to_string(),
                amount(&r.bucket, r.before),
                amount(&r.bucket, r.after),
                amount(&r.bucket, r.change()),
            ]
        })
        .collect();
    // Totals of the `total` bucket: per month, then overall.
    let mut per_month: BTreeMap<Month, (i64, i64)> = BTreeMap::new();
    for (lines, first) in [(&before, true), (&after, false)] {
        for ((_, m, b), t) in lines {
            if *b == Bucket::Total {
                let e = per_month.entry(*m).or_default();
                if first {
                    e.0 = e.0.saturating_add(*t);
                } else {
                    e.1 = e.1.saturating_add(*t);
                }
            }
        }
    }
    let (mut all_before, mut all_after) = (0i64, 0i64);
    for (m, (b, af)) in &per_month {
        all_before = all_before.saturating_add(*b);
        all_after = all_after.saturating_add(*af);
        if b != af {
            rows.push(vec![
                "TOTAL".into(),
                m.to_string(),
                "total".into(),
                amount(&Bucket::Total, *b),
                amount(&Bucket::Total, *af),
                amount(&Bucket::Total, af.saturating_sub(*b)),
            ]);
        }
    }
    rows.push(vec![
        "TOTAL".into(),
        "all".into(),
        "total".into(),
        amount(&Bucket::Total, all_before),
        amount(&Bucket::Total, all_after),
        amount(&Bucket::Total, all_after.saturating_sub(all_before)),
    ]);
    // Stable keys whatever the versions (the versions are in the caller's title).
    let header = ["rep", "month", "bucket", "from", "to", "change"]
        .iter()
        .map(|h| (*h).to_owned())
        .collect();
    Ok((
        Table {
            header,
            rows,
            money: vec![3, 4, 5],
        },
        notes,
    ))
}

/// The lines of one version of a plan, by rep, month and bucket, with each rep's team
/// in that month; `month` and `rep` narrow them. `None` when the plan has no such
/// version.
pub fn lines(
    state: &State,
    plan: &str,
    version: u32,
    month: Option<Month>,
    rep: Option<&str>,
) -> Option<Table> {
    let lines = version_lines(state, plan, version);
    if lines.is_empty() {
        return None;
    }
    let currency = state.config().currency;
    let rows = lines
        .iter()
        .filter(|((r, m, _), _)| month.is_none_or(|x| x == *m) && rep.is_none_or(|x| x == r))
        .map(|((r, m, b), target)| {
            let exp = if b.is_activity() {
                0
            } else {
                currency.exponent()
            };
            vec![
                r.clone(),
                state.rep_at(r, *m).team,
                m.to_string(),
                b.to_string(),
                format_decimal(*target, exp),
            ]
        })
        .collect();
    Some(Table {
        header: ["rep", "team", "month", "bucket", "target"]
            .iter()
            .map(|h| (*h).to_owned())
            .collect(),
        rows,
        money: vec![4],
    })
}

/// Top-down plan vs the reps' commits vs the pipeline forecast in `month`: each rep
/// (by team), a `TEAM` line after each team and an `ORG` line at the end.
pub fn gap_table(state: &State, month: Month) -> Table {
    let rows = gap(state, month);
    let currency = state.config().currency;
    let money = |v: i64| format_decimal(v, currency.exponent());
    let opt = |v: Option<i64>| v.map_or_else(String::new, money);
    let sum = |label: String, team: String, list: &[&GapRow]| {
        let plan = list.iter().fold(0i64, |a, r| a.saturating_add(r.plan));
        let commits: Vec<i64> = list.iter().filter_map(|r| r.commit).collect();
        let commit =
            (!commits.is_empty()).then(|| commits.iter().fold(0i64, |a, c| a.saturating_add(*c)));
        let actual = list.iter().fold(0i64, |a, r| a.saturating_add(r.actual));
        let forecast = list.iter().fold(0i64, |a, r| a.saturating_add(r.forecast));
        vec![
            label,
            team,
            money(plan),
            opt(commit),
            opt(commit.map(|c| c.saturating_sub(plan))),
            money(actual),
            money(forecast),
            money(forecast.saturating_sub(plan)),
        ]
    };
    let mut teams: BTreeMap<&str, Vec<&GapRow>> = BTreeMap::new();
    for r in &rows {
        teams.entry(r.team.as_str()).or_default().push(r);
    }
    let mut out = Vec::new();
    for (team, list) in &teams {
        for r in list {
            out.push(vec![
                r.rep.clone(),
                r.team.clone(),
                money(r.plan),
                opt(r.commit),
                opt(r.commit_gap()),
                money(r.actual),
                money(r.forecast),
                money(r.forecast_gap()),
            ]);
        }
        out.push(sum("TEAM".into(), (*team).to_owned(), list));
    }
    let all: Vec<&GapRow> = rows.iter().collect();
    out.push(sum("ORG".into(), String::new(), &all));
    Table {
        header: [
            "rep",
            "team",
            "plan",
            "commit",
            "commit_gap",
            "actual",
            "forecast",
            "forecast_gap",
        ]
        .iter()
        .map(|h| (*h).to_owned())
        .collect(),
        rows: out,
        money: vec![2, 3, 4, 5, 6, 7],
    }
}

/// The organisation's `total` in `month` rolled up: one line per team, one per
/// region (each rep's team and region in that month; a rep with no region is
/// `unassigned`), and the organisation. Each line sums its reps' report rows: plan,
/// actual, attainment, and in the current month expected to date, pace gap and
/// forecast.
pub fn rollup(state: &State, month: Month) -> Table {
    let rows = report(
        state,
        month,
        &ReportQuery {
            bucket: Some(Bucket::Total),
            ..ReportQuery::default()
        },
    );
    #[derive(Default)]
    struct Sum {
        reps: usize,
        plan: i64,
        actual: i64,
        expected: Option<i64>,
        forecast: Option<i64>,
    }
    let add = |s: &mut Sum, r: &ReportRow| {
        let plus = |a: Option<i64>, b: Option<i64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.saturating_add(b)),
            (a, b) => a.or(b),
        };
        s.reps += 1;
        s.plan = s.plan.saturating_add(r.plan);
        s.actual = s.actual.saturating_add(r.actual);
        s.expected = plus(s.expected, r.expected_to_date);
        s.forecast = plus(s.forecast, r.forecast);
    };
    let mut teams: BTreeMap<String, Sum> = BTreeMap::new();
    let mut regions: BTreeMap<String, Sum> = BTreeMap::new();
    let mut org = Sum::default();
    for r in &rows {
        let info = state.rep_at(r.rep, month);
        add(teams.entry(info.team).or_default(), r);
        let region = info.region.unwrap_or_else(|| "unassigned".to_owned());
        add(regions.entry(region).or_default(), r);
        add(&mut org, r);
    }
    let currency = state.config().currency;
    let money = |v: i64| format_decimal(v, currency.exponent());
    let opt = |v: Option<i64>| v.map_or_else(String::new, money);
    let line = |level: &str, name: &str, s: &Sum| {
        vec![
            level.to_owned(),
            name.to_owned(),
            s.reps.to_string(),
            money(s.plan),
            money(s.actual),
            pacer_projections::money::Ratio::new(s.actual, s.plan)
                .map_or_else(String::new, crate::output::percent_text),
            opt(s.expected),
            opt(s.expected.map(|e| s.actual.saturating_sub(e))),
            opt(s.forecast),
        ]
    };
    let mut out: Vec<Vec<String>> = Vec::new();
    out.extend(teams.iter().map(|(t, s)| line("team", t, s)));
    out.extend(regions.iter().map(|(r, s)| line("region", r, s)));
    out.push(line("org", "", &org));
    Table {
        header: [
            "level",
            "name",
            "reps",
            "plan",
            "actual",
            "attainment",
            "expected_to_date",
            "pace_gap",
            "forecast",
        ]
        .iter()
        .map(|h| (*h).to_owned())
        .collect(),
        rows: out,
        money: vec![3, 4, 6, 7, 8],
    }
}
