//! Finance's comp plan file (CSV, or the first sheet of a workbook through
//! `xlsx::xlsx_to_csv_at`) → the `comp_plan_published` event's JSON, and the JSON of
//! a rep's comp statement.
//!
//! One row per line, the header first:
//!
//! | kind | name | variable_pay | measure | weight_pct | curve | accelerator | cap_pct | gate | target_score |
//! | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
//! | `pay` | `rep:ana` or `team:north` | `7500.00` | | | | | | | |
//! | `measure` | | | `total` | `50` | `50:0 100:100` | `2` | `200` | `retention>=90` | |
//! | `measure` | | | `report_card` | `20` | `80:0 100:100` | | `100` | | `4.00` |
//!
//! A curve is `attainment:payout` pairs in percent, separated by spaces; a gate is
//! `bucket>=percent`. Every problem names its row and column; the event then goes
//! through the same decoding and checks as any other (weights, curves, caps), and a
//! problem found there is named by the row of the measure it is about.

use pacer_projections::comp::{Payout, PeriodStatus, Scenario, Statement};
use pacer_projections::money::{format_decimal, group_thousands, Currency, Decimal};
use serde_json::{json, Map, Value};

use crate::plan_file::PlanProblem;

/// The header, in order.
pub const COMP_COLUMNS: [&str; 10] = [
    "kind",
    "name",
    "variable_pay",
    "measure",
    "weight_pct",
    "curve",
    "accelerator",
    "cap_pct",
    "gate",
    "target_score",
];

/// The event's JSON (without `event_id`, `source` and `occurred_at`), and for each
/// measure the file row it came from.
pub struct CompFile {
    pub fields: Map<String, Value>,
    pub measure_rows: Vec<u64>,
    pub pay_rows: Vec<u64>,
}

fn problem(row: u64, column: &'static str, message: String) -> PlanProblem {
    PlanProblem {
        row: Some(row),
        column: Some(column),
        message,
    }
}

/// Reads a comp plan file; every problem, with its row and column.
pub fn read_comp_csv(
    text: &str,
    comp_plan: &str,
    version: u32,
    effective_from: &str,
    period: &str,
    currency: Currency,
) -> Result<CompFile, Vec<PlanProblem>> {
    let mut problems = Vec::new();
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = match rdr.headers() {
        Ok(h) => h.iter().map(str::to_owned).collect(),
        Err(e) => {
            return Err(vec![PlanProblem {
                row: Some(1),
                column: None,
                message: format!("not a CSV header: {e}"),
            }])
        }
    };
    let col = |name: &str| header.iter().position(|h| h == name);
    for required in [
        "kind",
        "name",
        "variable_pay",
        "measure",
        "weight_pct",
        "curve",
    ] {
        if col(required).is_none() {
            problems.push(PlanProblem {
                row: Some(1),
                column: None,
                message: format!(
                    "the header lacks {required:?} (columns: {})",
                    COMP_COLUMNS.join(",")
                ),
            });
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut assignments = Vec::new();
    let mut measures = Vec::new();
    let (mut measure_rows, mut pay_rows) = (Vec::new(), Vec::new());
    for (i, rec) in rdr.records().enumerate() {
        let row = i as u64 + 2;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                problems.push(PlanProblem {
                    row: Some(row),
                    column: None,
                    message: format!("not a CSV row: {e}"),
                });
                continue;
            }
        };
        let get = |name: &str| col(name).and_then(|c| rec.get(c)).unwrap_or("").to_owned();
        match get("kind").as_str() {
            "" if rec.iter().all(str::is_empty) => continue,
            "pay" => {
                let name = get("name");
                let (key, who) = match name.split_once(':') {
                    Some(("rep", r)) if !r.is_empty() => ("rep", r.to_owned()),
                    Some(("team", t)) if !t.is_empty() => ("team", t.to_owned()),
                    _ => {
                        problems.push(problem(
                            row,
                            "name",
                            format!("{name:?} is not rep:<id> or team:<name>"),
                        ));
                        continue;
                    }
                };
                let pay = get("variable_pay");
                if pay.is_empty() {
                    problems.push(problem(row, "variable_pay", "is empty".into()));
                    continue;
                }
                let mut a = Map::new();
                a.insert(key.into(), Value::String(who));
                a.insert("variable_pay".into(), Value::String(pay));
                assignments.push(Value::Object(a));
                pay_rows.push(row);
            }
            "measure" => {
                let mut m = Map::new();
                let measure = get("measure");
                if measure.is_empty() {
                    problems.push(problem(row, "measure", "is empty".into()));
                    continue;
                }
                m.insert("measure".into(), Value::String(measure));
                m.insert("weight_pct".into(), Value::String(get("weight_pct")));
                let mut curve = Vec::new();
                for pair in get("curve").split_whitespace() {
                    match pair.split_once(':') {
                        Some((a, p)) => curve.push(json!({"attainment_pct": a, "payout_pct": p})),
                        None => problems.push(problem(
                            row,
                            "curve",
                            format!("{pair:?} is not attainment:payout (such as 100:100)"),
                        )),
                    }
                }
                m.insert("curve".into(), Value::Array(curve));
                for (column, key) in [
                    ("accelerator", "accelerator"),
                    ("cap_pct", "cap_pct"),
                    ("target_score", "target_score"),
                ] {
                    let v = get(column);
                    if !v.is_empty() {
                        m.insert(key.into(), Value::String(v));
                    }
                }
                let gate = get("gate");
                if !gate.is_empty() {
                    match gate.split_once(">=") {
                        Some((b, pct)) => {
                            m.insert(
                                "gate".into(),
                                json!({"measure": b.trim(), "min_attainment_pct": pct.trim()}),
                            );
                        }
                        None => problems.push(problem(
                            row,
                            "gate",
                            format!("{gate:?} is not bucket>=percent (such as retention>=90)"),
                        )),
                    }
                }
                measures.push(Value::Object(m));
                measure_rows.push(row);
            }
            other => problems.push(problem(
                row,
                "kind",
                format!("{other:?} is not pay or measure"),
            )),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut fields = Map::new();
    fields.insert("type".into(), "comp_plan_published".into());
    fields.insert("comp_plan".into(), comp_plan.into());
    fields.insert("version".into(), version.into());
    fields.insert("effective_from".into(), effective_from.into());
    fields.insert("period".into(), period.into());
    fields.insert("currency".into(), currency.code().into());
    fields.insert("assignments".into(), Value::Array(assignments));
    fields.insert("measures".into(), Value::Array(measures));
    Ok(CompFile {
        fields,
        measure_rows,
        pay_rows,
    })
}

/// The problem of a rejected event, named by its row and column in the file: the
/// decoder names the field (`measures[1].curve[0].payout_pct`), the file knows the
/// row.
pub fn problem_of(file: &CompFile, field: &str, message: &str) -> PlanProblem {
    let index = |prefix: &str| -> Option<(usize, &str)> {
        let rest = field.strip_prefix(prefix)?;
        let (i, after) = rest.split_once(']')?;
        Some((i.parse().ok()?, after.trim_start_matches('.')))
    };
    let column_of = |rest: &str| -> Option<&'static str> {
        let head = rest.split(['.', '[']).next().unwrap_or("");
        COMP_COLUMNS
            .iter()
            .copied()
            .find(|c| {
                *c == head
                    || (head == "measure" && *c == "measure")
                    || (head == "min_attainment_pct" && *c == "gate")
            })
            .or(match head {
                "gate" => Some("gate"),
                "curve" => Some("curve"),
                _ => None,
            })
    };
    if let Some((i, rest)) = index("measures[") {
        if let Some(row) = file.measure_rows.get(i) {
            let column = if rest.starts_with("gate") {
                Some("gate")
            } else {
                column_of(rest)
            };
            return PlanProblem {
                row: Some(*row),
                column,
                message: message.to_owned(),
            };
        }
    }
    if let Some((i, rest)) = index("assignments[") {
        if let Some(row) = file.pay_rows.get(i) {
            return PlanProblem {
                row: Some(*row),
                column: column_of(rest).or(Some("name")),
                message: message.to_owned(),
            };
        }
    }
    PlanProblem {
        row: None,
        column: None,
        message: format!("{field}: {message}"),
    }
}

/// A value written as a JSON string through its `Display`, with no `String` in
/// between.
struct Shown<T>(T);

impl<T: std::fmt::Display> serde::Serialize for Shown<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// A period's months as a statement names it: `2026-11`, or `2026-10..2026-12`.
struct PeriodName<'a>(&'a [pacer_projections::time::Month]);

impl std::fmt::Display for PeriodName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.0.first(), self.0.last()) {
            (Some(a), Some(b)) if a == b => write!(f, "{a}"),
            (Some(a), Some(b)) => write!(f, "{a}..{b}"),
            _ => Ok(()),
        }
    }
}

/// One measure line of a payout, as the statement's JSON has it.
#[derive(serde::Serialize)]
struct MeasureOut<'a> {
    measure: &'a str,
    weight_pct: Shown<Decimal>,
    plan: Shown<Decimal>,
    actual: Shown<Decimal>,
    attainment_pct: Option<Shown<Decimal>>,
    payout_pct: Shown<Decimal>,
    gate_open: bool,
    pay: Shown<Decimal>,
}

/// One payout (earned, or projected under one scenario).
#[derive(serde::Serialize)]
struct PayoutOut<'a> {
    basis: &'static str,
    measures: Vec<MeasureOut<'a>>,
    total: Shown<Decimal>,
}

/// What moves the needle.
#[derive(serde::Serialize)]
struct NeedleOut<'a> {
    deal_kind: &'a str,
    typical_deal: Shown<Decimal>,
    deals_seen: usize,
    adds: Shown<Decimal>,
    message: String,
}

/// A rep's statement, its fields in the order the answer writes them.
#[derive(serde::Serialize)]
struct StatementOut<'a> {
    rep: &'a str,
    team: &'a str,
    comp_plan: &'a str,
    version: u32,
    period: Shown<PeriodName<'a>>,
    period_kind: &'static str,
    status: &'static str,
    currency: &'a str,
    variable_pay: Shown<Decimal>,
    payouts: Vec<PayoutOut<'a>>,
    needle: Option<NeedleOut<'a>>,
}

/// The comp report's answer.
#[derive(serde::Serialize)]
struct StatementsOut<'a> {
    statements: Vec<StatementOut<'a>>,
}

/// The decimal places of a measure's plan and actual: a report card's score has two,
/// a bucket its own (money in the currency's minor units, counts none).
fn measure_scale(measure: &str, currency: Currency) -> u32 {
    if measure == "report_card" {
        2
    } else {
        pacer_projections::bucket::Bucket::parse(measure)
            .map_or(currency.exponent(), |b| b.scale(currency))
    }
}

fn payout_out(p: &Payout, currency: Currency) -> PayoutOut<'_> {
    let money = |v: i64| Shown(Decimal(v, currency.exponent()));
    let measures = p
        .measures
        .iter()
        .map(|l| {
            let scale = measure_scale(&l.measure, currency);
            MeasureOut {
                measure: &l.measure,
                weight_pct: Shown(Decimal(i64::from(l.weight_bp), 2)),
                plan: Shown(Decimal(l.plan, scale)),
                actual: Shown(Decimal(l.actual, scale)),
                attainment_pct: l.attainment_bp.map(|a| Shown(Decimal(a.rounded(), 2))),
                payout_pct: Shown(Decimal(l.payout_bp.rounded(), 2)),
                gate_open: l.gate_open,
                pay: money(l.pay),
            }
        })
        .collect();
    PayoutOut {
        basis: match p.scenario {
            Scenario::Earned => "earned",
            Scenario::Pace => "projected_at_pace",
            Scenario::Forecast => "projected_at_forecast",
        },
        measures,
        total: money(p.total),
    }
}

fn statement_out<'a>(s: &'a Statement<'_>, currency: &'a Currency) -> StatementOut<'a> {
    let money = |v: i64| Shown(Decimal(v, currency.exponent()));
    StatementOut {
        rep: &s.rep,
        team: &s.team,
        comp_plan: &s.plan.comp_plan,
        version: s.plan.version,
        period: Shown(PeriodName(&s.months)),
        period_kind: s.plan.period.as_str(),
        status: match s.status {
            PeriodStatus::Closed => "closed",
            PeriodStatus::Open => "open",
            PeriodStatus::Future => "future",
        },
        currency: currency.code(),
        variable_pay: money(s.variable_pay),
        payouts: s.payouts.iter().map(|p| payout_out(p, *currency)).collect(),
        needle: s.needle.as_ref().map(|n| NeedleOut {
            deal_kind: &n.kind,
            typical_deal: money(n.deal),
            deals_seen: n.deals_seen,
            adds: money(n.adds),
            message: needle_text(n, s.plan.period, *currency),
        }),
    }
}

/// The comp report's answer for the period holding `month`: `{"statements": [...]}`,
/// what `pacer comp report --format json`, `GET /v1/comp` and the NATS `comp` query
/// all send, as a JSON value ([`statements_json_bytes`] writes the same bytes with
/// no JSON tree in between).
pub fn statements_json(
    state: &pacer_projections::state::State,
    month: pacer_projections::time::Month,
    rep: Option<&str>,
    team: Option<&str>,
) -> Value {
    let list = pacer_projections::comp::statements(state, month, rep, team);
    statements_list_json(&list, state.config().currency)
}

/// [`statements_json`] of statements made already (`pacer comp report` checks that
/// there are any before it writes them).
pub fn statements_list_json(list: &[Statement<'_>], currency: Currency) -> Value {
    let out = StatementsOut {
        statements: list.iter().map(|s| statement_out(s, &currency)).collect(),
    };
    serde_json::to_value(out).expect("a statement serialises")
}

/// A period's months as a statement names them: `2026-11`, or `2026-10..2026-12`.
pub fn period_name(months: &[pacer_projections::time::Month]) -> String {
    PeriodName(months).to_string()
}

/// The room [`statements_json_bytes`] makes for each statement at first: an open
/// period's statement is about 1.6 KB (two payouts), a closed one's half that.
const STATEMENT_BYTES_MAX: usize = 1800;

/// From this many reps asked about on, [`statements_json_bytes`] makes the report in
/// two halves side by side (under it, in one go).
pub const COMP_SPLIT_REPS_MIN: usize = 2_000;

/// [`statements_json`]'s bytes, written statement by statement with no JSON tree in
/// between: what the HTTP and NATS queries send. A large report (the org's, for
/// finance) is made in two halves on two threads, the second half's bytes appended
/// to the first's.
pub fn statements_json_bytes(
    state: &pacer_projections::state::State,
    month: pacer_projections::time::Month,
    rep: Option<&str>,
    team: Option<&str>,
) -> Vec<u8> {
    statements_bytes_split(state, month, rep, team, COMP_SPLIT_REPS_MIN)
}

/// [`statements_json_bytes`], in two halves from `split_reps_min` reps on.
pub(crate) fn statements_bytes_split(
    state: &pacer_projections::state::State,
    month: pacer_projections::time::Month,
    rep: Option<&str>,
    team: Option<&str>,
    split_reps_min: usize,
) -> Vec<u8> {
    let currency = state.config().currency;
    let asked = pacer_projections::comp::Asked::new(state, month, rep, team);
    let n = asked.reps();
    // The statements of `range`, each written after a comma if `out` has one before.
    let write = |out: &mut Vec<u8>, range: std::ops::Range<usize>| {
        let list = asked.statements(range);
        out.reserve(list.len() * STATEMENT_BYTES_MAX);
        for s in &list {
            if !matches!(out.last(), Some(b'[') | None) {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, &statement_out(s, &currency))
                .expect("writing JSON to memory cannot fail");
        }
    };
    let mut out = b"{\"statements\":[".to_vec();
    if n < split_reps_min {
        write(&mut out, 0..n);
    } else {
        let mid = n / 2;
        let second = std::thread::scope(|scope| {
            let second = scope.spawn(|| {
                let mut part = Vec::new();
                write(&mut part, mid..n);
                part
            });
            write(&mut out, 0..mid);
            second
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        if !second.is_empty() && out.last() != Some(&b'[') {
            out.push(b',');
        }
        out.extend_from_slice(&second);
    }
    out.extend_from_slice(b"]}");
    out
}

/// The statements as a table, a row per measure of each payout: what `pacer comp
/// report --format csv|xlsx` writes (the figures as the JSON has them).
pub fn statements_table(statements: &[Statement<'_>], currency: Currency) -> crate::plans::Table {
    let header = [
        "rep",
        "team",
        "comp_plan",
        "version",
        "period",
        "status",
        "basis",
        "measure",
        "weight_pct",
        "plan",
        "actual",
        "attainment_pct",
        "payout_pct",
        "gate_open",
        "pay",
        "currency",
    ];
    let mut rows = Vec::new();
    for s in statements {
        let out = statement_out(s, &currency);
        for p in &out.payouts {
            for m in &p.measures {
                rows.push(vec![
                    out.rep.to_owned(),
                    out.team.to_owned(),
                    out.comp_plan.to_owned(),
                    out.version.to_string(),
                    out.period.0.to_string(),
                    out.status.to_owned(),
                    p.basis.to_owned(),
                    m.measure.to_owned(),
                    m.weight_pct.0.to_string(),
                    m.plan.0.to_string(),
                    m.actual.0.to_string(),
                    m.attainment_pct
                        .as_ref()
                        .map_or(String::new(), |a| a.0.to_string()),
                    m.payout_pct.0.to_string(),
                    m.gate_open.to_string(),
                    m.pay.0.to_string(),
                    out.currency.to_owned(),
                ]);
            }
        }
    }
    crate::plans::Table {
        header: header.map(str::to_owned).to_vec(),
        rows,
        // The version, percentages, figures and pay are numbers in a workbook.
        money: vec![3, 8, 9, 10, 11, 12, 14],
    }
}

/// Accruals as a table, a row per month and team: what `pacer comp accruals
/// --format csv|xlsx` writes.
pub fn accruals_table(
    accruals: &[pacer_projections::comp::Accrual],
    currency: Currency,
) -> crate::plans::Table {
    let mut header = ACCRUAL_FIELDS.map(str::to_owned).to_vec();
    header.push("currency".into());
    crate::plans::Table {
        header,
        rows: accruals
            .iter()
            .map(|r| {
                let mut row = accrual_cells(r, currency).to_vec();
                row.push(currency.code().to_owned());
                row
            })
            .collect(),
        money: vec![2, 3, 4, 5],
    }
}

/// Accruals as `pacer comp accruals --format json` writes them:
/// `{"currency": ..., "accruals": [{month, team, reps, earned, projected, total}]}`.
pub fn accruals_json(accruals: &[pacer_projections::comp::Accrual], currency: Currency) -> Value {
    let list: Vec<Value> = accruals
        .iter()
        .map(|r| {
            let mut m = Map::new();
            for (k, v) in ACCRUAL_FIELDS.iter().zip(accrual_cells(r, currency)) {
                m.insert((*k).to_owned(), Value::String(v));
            }
            m.insert("reps".into(), r.reps.into());
            Value::Object(m)
        })
        .collect();
    json!({"currency": currency.code(), "accruals": list})
}

/// An accrual's fields, in the order every form writes them.
const ACCRUAL_FIELDS: [&str; 6] = ["month", "team", "reps", "earned", "projected", "total"];

/// An accrual's [`ACCRUAL_FIELDS`] as text (money as exact decimals).
fn accrual_cells(r: &pacer_projections::comp::Accrual, currency: Currency) -> [String; 6] {
    let money = |v: i64| format_decimal(v, currency.exponent());
    [
        r.month.to_string(),
        r.team.clone(),
        r.reps.to_string(),
        money(r.earned),
        money(r.projected),
        money(r.earned.saturating_add(r.projected)),
    ]
}

/// What moves the needle, as a sentence a rep reads: "a 20,000.00 USD new_customer
/// deal adds 1,150.00 USD to the pay projected this quarter".
pub fn needle_text(
    n: &pacer_projections::comp::Needle,
    period: pacer_projections::event::CompPeriod,
    currency: Currency,
) -> String {
    let money = |v: i64| group_thousands(&format_decimal(v, currency.exponent()));
    format!(
        "a {} {} {} deal (the median of {} won) adds {} {} to the pay projected this {} at today's pace",
        money(n.deal),
        currency.code(),
        n.kind,
        n.deals_seen,
        money(n.adds),
        currency.code(),
        period.as_str()
    )
}

/// What differs between two versions of a comp plan, line by line: `(what, from,
/// to)`, with `–` for what one of them does not have.
pub fn diff(
    a: &pacer_projections::event::CompPlanPublished,
    b: &pacer_projections::event::CompPlanPublished,
) -> Vec<(String, String, String)> {
    let fields = |p: &pacer_projections::event::CompPlanPublished| -> std::collections::BTreeMap<String, String> {
        let v = crate::wire::encode(&pacer_projections::event::Event {
            event_id: String::new(),
            source: String::new(),
            occurred_at: pacer_projections::time::Timestamp::from_micros(0),
            body: pacer_projections::event::EventBody::CompPlanPublished(p.clone()),
        });
        let mut out = std::collections::BTreeMap::new();
        for k in ["effective_from", "period", "currency"] {
            out.insert(k.to_owned(), v[k].as_str().unwrap_or_default().to_owned());
        }
        for a in v["assignments"].as_array().into_iter().flatten() {
            let who = a["rep"]
                .as_str()
                .map(|r| format!("rep:{r}"))
                .or_else(|| a["team"].as_str().map(|t| format!("team:{t}")))
                .unwrap_or_default();
            out.insert(
                format!("pay {who}"),
                a["variable_pay"].as_str().unwrap_or_default().to_owned(),
            );
        }
        for m in v["measures"].as_array().into_iter().flatten() {
            let name = m["measure"].as_str().unwrap_or_default();
            for (k, val) in m.as_object().into_iter().flatten() {
                if k == "measure" {
                    continue;
                }
                let text = match val {
                    Value::String(s) => s.clone(),
                    Value::Array(points) => points
                        .iter()
                        .map(|p| {
                            format!(
                                "{}:{}",
                                p["attainment_pct"].as_str().unwrap_or_default(),
                                p["payout_pct"].as_str().unwrap_or_default()
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(" "),
                    Value::Object(g) => format!(
                        "{}>={}",
                        g.get("measure").and_then(Value::as_str).unwrap_or_default(),
                        g.get("min_attainment_pct").and_then(Value::as_str).unwrap_or_default()
                    ),
                    other => other.to_string(),
                };
                out.insert(format!("measure {name} {k}"), text);
            }
        }
        out
    };
    let (fa, fb) = (fields(a), fields(b));
    let keys: std::collections::BTreeSet<&String> = fa.keys().chain(fb.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (x, y) = (fa.get(k), fb.get(k));
            (x != y).then(|| {
                (
                    k.clone(),
                    x.cloned().unwrap_or_else(|| "–".into()),
                    y.cloned().unwrap_or_else(|| "–".into()),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str =
        "kind,name,variable_pay,measure,weight_pct,curve,accelerator,cap_pct,gate,target_score
pay,team:north,3000.00,,,,,,,
measure,,,total,70,50:0 100:100,2,150,retention>=90,
measure,,,report_card,30,80:0 100:100,,100,,4.00
";

    /// A workbook finance saved (numbers as numbers, an empty cell as nothing) reads as
    /// its CSV does.
    #[test]
    fn a_workbook_reads_as_its_csv() {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (r, line) in FILE.lines().enumerate() {
            for (c, cell) in line.split(',').enumerate() {
                let (r, c) = (r as u32, c as u16);
                match cell.parse::<f64>() {
                    Ok(n) if r > 0 => sheet.write_number(r, c, n).map(|_| ()),
                    _ if cell.is_empty() => Ok(()),
                    _ => sheet.write_string(r, c, cell).map(|_| ()),
                }
                .unwrap();
            }
        }
        let bytes = book.save_to_buffer().unwrap();
        let (csv, origin) = crate::xlsx::xlsx_to_csv_at(&bytes).unwrap();
        assert_eq!(origin, (0, 0));
        let eur = Currency::from_code("EUR").unwrap();
        let from_sheet = read_comp_csv(&csv, "p", 1, "2026-11", "month", eur)
            .unwrap_or_else(|e| panic!("{e:?}\n{csv}"));
        let from_csv = read_comp_csv(FILE, "p", 1, "2026-11", "month", eur).unwrap();
        // The same event, up to how the numbers were written (3000 vs 3000.00).
        let decode = |f: &CompFile| {
            let mut v = f.fields.clone();
            v.insert("event_id".into(), "e".into());
            v.insert("source".into(), "t".into());
            v.insert("occurred_at".into(), "2026-11-01T00:00:00Z".into());
            crate::wire::decode_value(&Value::Object(v), &crate::wire::Limits::default()).unwrap()
        };
        assert_eq!(decode(&from_sheet), decode(&from_csv));
        assert_eq!(from_sheet.measure_rows, vec![3, 4]);
    }

    /// The statement's JSON as the `json!` trees made it before the serde structs:
    /// the oracle the bytes are held to.
    fn old_statement_json(s: &Statement<'_>, currency: Currency) -> Value {
        let payout = |p: &Payout| {
            let money = |v: i64| Value::String(format_decimal(v, currency.exponent()));
            let measures: Vec<Value> = p
                .measures
                .iter()
                .map(|l| {
                    let scale = measure_scale(&l.measure, currency);
                    json!({
                        "measure": l.measure,
                        "weight_pct": format_decimal(i64::from(l.weight_bp), 2),
                        "plan": format_decimal(l.plan, scale),
                        "actual": format_decimal(l.actual, scale),
                        "attainment_pct": l.attainment_bp.map(|a| format_decimal(a.rounded(), 2)),
                        "payout_pct": format_decimal(l.payout_bp.rounded(), 2),
                        "gate_open": l.gate_open,
                        "pay": money(l.pay),
                    })
                })
                .collect();
            json!({
                "basis": match p.scenario {
                    Scenario::Earned => "earned",
                    Scenario::Pace => "projected_at_pace",
                    Scenario::Forecast => "projected_at_forecast",
                },
                "measures": measures,
                "total": money(p.total),
            })
        };
        let months = &s.months;
        let period = match (months.first(), months.last()) {
            (Some(a), Some(b)) if a == b => a.to_string(),
            (Some(a), Some(b)) => format!("{a}..{b}"),
            _ => String::new(),
        };
        json!({
            "rep": s.rep,
            "team": s.team,
            "comp_plan": s.plan.comp_plan,
            "version": s.plan.version,
            "period": period,
            "period_kind": s.plan.period.as_str(),
            "status": match s.status {
                PeriodStatus::Closed => "closed",
                PeriodStatus::Open => "open",
                PeriodStatus::Future => "future",
            },
            "currency": currency.code(),
            "variable_pay": format_decimal(s.variable_pay, currency.exponent()),
            "payouts": s.payouts.iter().map(payout).collect::<Vec<_>>(),
            "needle": s.needle.as_ref().map(|n| json!({
                "deal_kind": n.kind,
                "typical_deal": format_decimal(n.deal, currency.exponent()),
                "deals_seen": n.deals_seen,
                "adds": format_decimal(n.adds, currency.exponent()),
                "message": needle_text(n, s.plan.period, currency),
            })),
        })
    }

    #[test]
    fn the_comp_reports_bytes_are_what_the_json_trees_made() {
        for seed in [2_u64, 29] {
            let dir = tempfile::tempdir().unwrap();
            let (log, org) = crate::demo::demo_log(dir.path(), 12, seed);
            let model =
                crate::replay::rebuild(&log, &org, crate::replay::Cut::All, |_| {}).unwrap();
            let state = model.state();
            let currency = state.config().currency;
            let now = state.current_month().unwrap();
            let team = state.teams_now().into_iter().next().unwrap();
            let rep = state.reps().keys().nth(2).unwrap().clone();
            let asked: [(pacer_projections::time::Month, Option<&str>, Option<&str>); 5] = [
                (now, None, None),
                (now, None, Some(team.as_str())),
                (now, Some(rep.as_str()), None),
                (now.plus(-3), None, Some(team.as_str())),
                (now.plus(-6), None, None),
            ];
            for (month, r, t) in asked {
                let list = pacer_projections::comp::statements(state, month, r, t);
                let old: Vec<Value> = list
                    .iter()
                    .map(|s| old_statement_json(s, currency))
                    .collect();
                let want = serde_json::to_vec(&json!({ "statements": old })).unwrap();
                assert_eq!(
                    String::from_utf8(statements_json_bytes(state, month, r, t)).unwrap(),
                    String::from_utf8(want.clone()).unwrap(),
                    "seed {seed}: {month} {r:?} {t:?}"
                );
                for split in [1, 5] {
                    assert_eq!(
                        statements_bytes_split(state, month, r, t, split),
                        want,
                        "seed {seed}: {month} {r:?} {t:?} in halves from {split}"
                    );
                }
                if t.is_some() && month == now {
                    assert!(
                        list.iter().any(|s| s.needle.is_some()),
                        "a team's open period names what moves the needle"
                    );
                }
            }
        }
    }
}
