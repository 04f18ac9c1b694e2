//! Finance's plan views as tables of text (exact decimals): the published versions
//! (`history`) and the change between two versions (`diff`). `pacer plan history|diff`
//! prints them as a table, CSV or JSON; the web app shows them and offers them as CSV
//! and XLSX downloads, so the screen and the files hold the same text.

use std::collections::{BTreeMap, BTreeSet};

use pacer_projections::bucket::Bucket;
use pacer_projections::event::PlanPublished;
use pacer_projections::money::format_decimal;
use pacer_projections::plan::{diff, latest, version_lines};
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
/// the `total` bucket's sum, author, when recorded (org zone) and its seq.
pub fn history(state: &State) -> Table {
    let tz = state.config().timezone;
    let currency = state.config().currency;
    let plans = state.plans();
    let rows = plans
        .versions()
        .iter()
        .map(|v| {
            let total: i64 = plans
                .version_lines(v)
                .filter(|(_, _, bucket, _)| **bucket == Bucket::Total)
                .fold(0i64, |a, (_, _, _, t)| a.saturating_add(t));
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
                v.source.clone(),
                v.recorded_at.to_rfc3339_in(tz),
                v.seq.to_string(),
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
        "author",
        "recorded_at",
        "seq",
    ];
    Table {
        header: header.iter().map(|h| (*h).to_owned()).collect(),
        rows,
        money: vec![6],
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
    let header = vec![
        "rep".to_owned(),
        "month".into(),
        "bucket".into(),
        format!("v{before_v}"),
        format!("v{after_v}"),
        "change".into(),
    ];
    Ok((
        Table {
            header,
            rows,
            money: vec![3, 4, 5],
        },
        notes,
    ))
}
