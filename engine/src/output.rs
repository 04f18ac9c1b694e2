//! Machine-readable output shared by every front end (the CLI today, NATS queries
//! later), so that the same question gets the same bytes wherever it is asked.
//!
//! Money is a decimal string with the currency's digits, activity counts are integer
//! strings, attainment is a JSON number with four decimals (exact, from integers).

use chrono_tz::Tz;
use pacer_projections::alerts::backtest::{Backtest, ScoreRow};
use pacer_projections::alerts::AlertView;
use pacer_projections::money::{format_decimal, Currency, Ratio};
use pacer_projections::productivity::Productivity;
use pacer_projections::report::ReportRow;
use pacer_projections::time::Timestamp;
use serde_json::{Map, Value};

pub use pacer_projections::money::group_thousands;

/// The report's field names, in output order. `pace_curve` says what
/// expected-to-date followed in the current month: `team` (the team's learned
/// curve), `org` (the organisation's), or `linear`.
pub const REPORT_FIELDS: [&str; 13] = [
    "rep",
    "team",
    "month",
    "bucket",
    "plan",
    "actual",
    "variance",
    "attainment",
    "expected_to_date",
    "pace_gap",
    "forecast",
    "pace_curve",
    "currency",
];

/// Decimal places of a report's attainment.
pub const ATTAINMENT_PLACES: u32 = 4;

/// Formats a bucket value: money with the currency's digits, counts as integers.
pub fn amount_text(row: &ReportRow<'_>, value: i64) -> String {
    format_decimal(value, row.bucket.scale(row.currency))
}

/// The row's fields as text (`None` for null), in [`REPORT_FIELDS`] order.
pub fn report_cells(row: &ReportRow<'_>) -> [Option<String>; 13] {
    let amount = |v: i64| Some(amount_text(row, v));
    [
        Some(row.rep.to_owned()),
        Some(row.team.to_owned()),
        Some(row.month.to_string()),
        Some(row.bucket.to_string()),
        amount(row.plan),
        amount(row.actual),
        amount(row.variance()),
        row.attainment()
            .map(|a| a.to_decimal_string(ATTAINMENT_PLACES)),
        row.expected_to_date.and_then(amount),
        row.pace_gap().and_then(amount),
        row.forecast.and_then(amount),
        row.curve.map(|c| c.as_str().to_owned()),
        Some(row.currency.code().to_owned()),
    ]
}

/// An exact decimal string as a JSON number without trailing zeros (0.1250 → 0.125,
/// 1.0000 → 1).
pub fn decimal_number(text: &str) -> Value {
    let trimmed = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    };
    serde_json::from_str(trimmed).expect("a decimal string is a JSON number")
}

/// The report as a JSON array of row objects.
pub fn report_json(rows: &[ReportRow<'_>]) -> Value {
    let list = rows
        .iter()
        .map(|row| {
            let mut m = Map::new();
            for (name, cell) in REPORT_FIELDS.iter().zip(report_cells(row)) {
                let v = match (name, cell) {
                    (_, None) => Value::Null,
                    (&"attainment", Some(text)) => decimal_number(&text),
                    (_, Some(text)) => Value::String(text),
                };
                m.insert((*name).to_owned(), v);
            }
            Value::Object(m)
        })
        .collect();
    Value::Array(list)
}

/// [`report_json`]'s bytes, written row by row with no JSON tree in between: what
/// the HTTP and NATS queries send (byte for byte the same as serialising
/// [`report_json`], which the tests check).
pub fn report_json_bytes(rows: &[ReportRow<'_>]) -> Vec<u8> {
    /// A value written as a JSON string through its `Display`, with no `String` in
    /// between.
    struct Shown<T>(T);
    impl<T: std::fmt::Display> serde::Serialize for Shown<T> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(&self.0)
        }
    }
    /// One row, its fields in [`REPORT_FIELDS`] order, as [`report_cells`] has them.
    #[derive(serde::Serialize)]
    struct Row<'a> {
        rep: &'a str,
        team: &'a str,
        month: Shown<pacer_projections::time::Month>,
        bucket: Shown<&'a pacer_projections::bucket::Bucket>,
        plan: String,
        actual: String,
        variance: String,
        attainment: Option<Box<serde_json::value::RawValue>>,
        expected_to_date: Option<String>,
        pace_gap: Option<String>,
        forecast: Option<String>,
        pace_curve: Option<&'static str>,
        currency: &'a str,
    }
    let list: Vec<Row<'_>> = rows
        .iter()
        .map(|row| {
            let amount = |v: i64| amount_text(row, v);
            let attainment = row.attainment().map(|a| {
                let text = a.to_decimal_string(ATTAINMENT_PLACES);
                let number = decimal_number(&text).to_string();
                serde_json::value::RawValue::from_string(number)
                    .expect("a decimal number is valid JSON")
            });
            Row {
                rep: row.rep,
                team: row.team,
                month: Shown(row.month),
                bucket: Shown(row.bucket),
                plan: amount(row.plan),
                actual: amount(row.actual),
                variance: amount(row.variance()),
                attainment,
                expected_to_date: row.expected_to_date.map(amount),
                pace_gap: row.pace_gap().map(amount),
                forecast: row.forecast.map(amount),
                pace_curve: row.curve.map(|c| c.as_str()),
                currency: row.currency.code(),
            }
        })
        .collect();
    // About 260 bytes a row.
    let mut out = Vec::with_capacity(2 + rows.len() * 280);
    serde_json::to_writer(&mut out, &list).expect("writing JSON to memory cannot fail");
    out
}

/// Rows of text cells as CSV under a header row: the one CSV writer of every front
/// end.
pub fn csv_text<R, C>(header: &[&str], rows: impl IntoIterator<Item = R>) -> String
where
    R: IntoIterator<Item = C>,
    C: AsRef<[u8]>,
{
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header)
        .expect("writing to memory cannot fail");
    for row in rows {
        w.write_record(row).expect("writing to memory cannot fail");
    }
    String::from_utf8(w.into_inner().expect("writing to memory cannot fail"))
        .expect("CSV of UTF-8 cells is UTF-8")
}

/// Optional cells as CSV cells: nulls are empty.
fn filled<const N: usize>(cells: [Option<String>; N]) -> [String; N] {
    cells.map(Option::unwrap_or_default)
}

/// The report as CSV with a header row; nulls are empty cells.
pub fn report_csv(rows: &[ReportRow<'_>]) -> String {
    csv_text(&REPORT_FIELDS, rows.iter().map(|r| filled(report_cells(r))))
}

/// A ratio as a percentage with one decimal (`85.3%`).
pub fn percent_text(r: Ratio) -> String {
    format!(
        "{}%",
        Ratio {
            num: r.num.saturating_mul(100),
            den: r.den
        }
        .to_decimal_string(1)
    )
}

/// An instant as people read it in the org's zone: `Fri 2026-11-20 17:00`.
pub fn local_short(t: Timestamp, tz: Tz) -> String {
    t.to_utc()
        .with_timezone(&tz)
        .format("%a %Y-%m-%d %H:%M")
        .to_string()
}

/// The alert listing's field names, in output order: the fields first, then
/// what a manager or an on-call engineer also needs.
pub const ALERT_FIELDS: [&str; 31] = [
    "alert_id",
    "rule",
    "severity",
    "status",
    "focus",
    "rep",
    "team",
    "manager",
    "month",
    "bucket",
    "plan",
    "actual",
    "expected_to_date",
    "forecast",
    "gap",
    "projected",
    "money_at_stake",
    "message",
    "suggested_action",
    "raised_at",
    "act_by",
    "week",
    "pipeline",
    "score",
    "currency",
    "escalated_at",
    "resolved_at",
    "acknowledged_by",
    "acknowledged_at",
    "acknowledgement_note",
    "explanation",
];

/// One alert as a JSON object with [`ALERT_FIELDS`]: money as decimal strings in the
/// reporting currency (activity figures as whole counts, scores with two decimals),
/// times as RFC 3339 with the organisation's offset.
pub fn alert_object(view: &AlertView<'_>, currency: Currency, tz: Tz) -> Value {
    let a = view.alert;
    let f = &a.finding;
    let scale = f
        .bucket
        .as_ref()
        .map_or(currency.exponent(), |b| b.scale(currency));
    let amount =
        |v: Option<i64>| v.map_or(Value::Null, |v| Value::String(format_decimal(v, scale)));
    let money = |v: Option<i64>| {
        v.map_or(Value::Null, |v| {
            Value::String(format_decimal(v, currency.exponent()))
        })
    };
    let time = |t: Option<Timestamp>| t.map_or(Value::Null, |t| Value::String(t.to_rfc3339_in(tz)));
    let text = |s: Option<&str>| s.map_or(Value::Null, |s| Value::String(s.to_owned()));
    let closed_at = a.closed.map(|(t, _)| t);
    let values: [Value; 31] = [
        Value::String(a.id.clone()),
        Value::String(f.rule.as_str().to_owned()),
        Value::String(a.severity.as_str().to_owned()),
        Value::String(view.status.as_str().to_owned()),
        Value::Bool(view.focus),
        Value::String(a.rep.clone()),
        Value::String(view.team.clone()),
        Value::String(view.manager.clone()),
        Value::String(f.month.to_string()),
        f.bucket
            .as_ref()
            .map_or(Value::Null, |b| Value::String(b.to_string())),
        amount(f.figures.plan),
        amount(f.figures.actual),
        amount(f.figures.expected_to_date),
        money(f.figures.forecast),
        if f.figures.score.is_some() {
            f.figures
                .gap
                .map_or(Value::Null, |g| Value::String(format_decimal(g, 2)))
        } else {
            amount(f.figures.gap)
        },
        amount(f.figures.projected),
        money(Some(f.money_at_stake)),
        Value::String(f.message.clone()),
        Value::String(f.suggested_action.clone()),
        time(Some(a.raised_at)),
        time(Some(a.act_by)),
        Value::String(a.week.to_string()),
        money(f.figures.pipeline),
        f.figures
            .score
            .map_or(Value::Null, |s| Value::String(format_decimal(s, 2))),
        Value::String(currency.code().to_owned()),
        time(a.escalated_at),
        time(closed_at),
        text(view.ack.map(|k| k.by.as_str())),
        time(view.ack.map(|k| k.at)),
        text(view.ack.and_then(|k| k.note.as_deref())),
        Value::Array(
            f.explanation
                .iter()
                .map(|s| {
                    let mut m = Map::new();
                    m.insert("bucket".into(), Value::String(s.bucket.to_string()));
                    for (k, v) in [
                        ("expected_to_date", s.expected_to_date),
                        ("actual", s.actual),
                        ("gap", s.gap()),
                    ] {
                        m.insert(k.into(), Value::String(format_decimal(v, scale)));
                    }
                    Value::Object(m)
                })
                .collect(),
        ),
    ];
    let mut m = Map::new();
    for (name, v) in ALERT_FIELDS.iter().zip(values) {
        m.insert((*name).to_owned(), v);
    }
    Value::Object(m)
}

/// Alerts as a JSON array, in the order given.
pub fn alerts_json(views: &[AlertView<'_>], currency: Currency, tz: Tz) -> Value {
    Value::Array(
        views
            .iter()
            .map(|v| alert_object(v, currency, tz))
            .collect(),
    )
}

/// The productivity view's field names, in output order.
pub const PRODUCTIVITY_FIELDS: [&str; 15] = [
    "rep",
    "team",
    "month",
    "won_deals",
    "lost_deals",
    "win_rate",
    "won_amount",
    "average_won_deal",
    "median_cycle_days",
    "open_pipeline",
    "remaining_plan",
    "coverage",
    "activities",
    "activities_per_won_deal",
    "currency",
];

/// A productivity row's fields as text (`None` for null), in
/// [`PRODUCTIVITY_FIELDS`] order. Ratios have four decimals (win rate, coverage) or
/// two (activities per won deal); the median cycle is in days with one decimal.
pub fn productivity_cells(p: &Productivity, currency: Currency) -> [Option<String>; 15] {
    let money = |v: i64| Some(format_decimal(v, currency.exponent()));
    [
        Some(p.rep.clone()),
        Some(p.team.clone()),
        Some(p.month.to_string()),
        Some(p.won_deals.to_string()),
        Some(p.lost_deals.to_string()),
        p.win_rate().map(|r| r.to_decimal_string(4)),
        money(p.won_amount),
        p.average_won().and_then(money),
        p.median_cycle_half_days().map(|h| format_decimal(h * 5, 1)),
        money(p.open_pipeline),
        money(p.remaining_plan),
        p.coverage().map(|r| r.to_decimal_string(4)),
        Some(p.activities.to_string()),
        p.activities_per_won().map(|r| r.to_decimal_string(2)),
        Some(currency.code().to_owned()),
    ]
}

/// The productivity view as a JSON array: counts and ratios as numbers, money and
/// days as decimal strings.
pub fn productivity_json(rows: &[Productivity], currency: Currency) -> Value {
    const NUMBERS: [&str; 6] = [
        "won_deals",
        "lost_deals",
        "win_rate",
        "coverage",
        "activities",
        "activities_per_won_deal",
    ];
    Value::Array(
        rows.iter()
            .map(|p| {
                let mut m = Map::new();
                for (name, cell) in PRODUCTIVITY_FIELDS
                    .iter()
                    .zip(productivity_cells(p, currency))
                {
                    let v = match cell {
                        None => Value::Null,
                        Some(text) if NUMBERS.contains(name) => decimal_number(&text),
                        Some(text) => Value::String(text),
                    };
                    m.insert((*name).to_owned(), v);
                }
                Value::Object(m)
            })
            .collect(),
    )
}

/// The productivity view as CSV with a header row.
pub fn productivity_csv(rows: &[Productivity], currency: Currency) -> String {
    csv_text(
        &PRODUCTIVITY_FIELDS,
        rows.iter().map(|p| filled(productivity_cells(p, currency))),
    )
}

/// The backtest's row fields, in output order.
pub const BACKTEST_FIELDS: [&str; 11] = [
    "rule",
    "scope",
    "severity",
    "threshold_pct",
    "alerts",
    "right",
    "precision",
    "ended_below",
    "flagged",
    "recall",
    "median_lead_days",
];

/// A backtest row's fields as text (`None` for null), in [`BACKTEST_FIELDS`] order:
/// precision and recall as fractions with four decimals.
pub fn backtest_cells(r: &ScoreRow) -> [Option<String>; 11] {
    let fraction = |bp: Option<i64>| bp.map(|v| format_decimal(v, 4));
    [
        Some(r.rule.as_str().to_owned()),
        Some(r.scope.to_owned()),
        Some(r.severity.as_str().to_owned()),
        Some(r.threshold.to_decimal_string()),
        Some(r.alerts.to_string()),
        Some(r.right.to_string()),
        fraction(r.precision_bp()),
        Some(r.ended_below.to_string()),
        Some(r.flagged.to_string()),
        fraction(r.recall_bp()),
        r.median_lead_days().map(|d| d.to_string()),
    ]
}

/// The backtest as a JSON object: the months scored, the recall day, and the rows
/// (counts and fractions as numbers).
pub fn backtest_json(b: &Backtest) -> Value {
    const TEXT: [&str; 3] = ["rule", "scope", "severity"];
    let rows = b
        .rows
        .iter()
        .map(|r| {
            let mut m = Map::new();
            for (name, cell) in BACKTEST_FIELDS.iter().zip(backtest_cells(r)) {
                let v = match cell {
                    None => Value::Null,
                    Some(text) if TEXT.contains(name) => Value::String(text),
                    Some(text) => decimal_number(&text),
                };
                m.insert((*name).to_owned(), v);
            }
            Value::Object(m)
        })
        .collect();
    let mut m = Map::new();
    m.insert(
        "months".into(),
        Value::Array(
            b.months
                .iter()
                .map(|m| Value::String(m.to_string()))
                .collect(),
        ),
    );
    m.insert("recall_by_day".into(), Value::from(b.recall_by_day));
    m.insert("rows".into(), Value::Array(rows));
    Value::Object(m)
}

/// The backtest's rows as CSV with a header row.
pub fn backtest_csv(b: &Backtest) -> String {
    csv_text(
        &BACKTEST_FIELDS,
        b.rows.iter().map(|r| filled(backtest_cells(r))),
    )
}
