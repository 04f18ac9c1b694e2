//! Output for people: grouped thousands, percentages, aligned tables (comfy-table).
//! Machine output (JSON, CSV) lives in the engine's `output` module instead.

use std::collections::BTreeMap;

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{Cell, CellAlignment, Table};
use pacer_engine::output::amount_text;
use pacer_projections::bucket::Bucket;
use pacer_projections::money::{format_decimal, Currency, Ratio};
use pacer_projections::report::{Pace, ReportRow};
use pacer_projections::state::State;

/// `"-1234567.89"` → `"-1,234,567.89"`.
pub fn group_thousands(s: &str) -> String {
    let (sign, rest) = s.strip_prefix('-').map_or(("", s), |r| ("-", r));
    let (int, frac) = rest
        .split_once('.')
        .map_or((rest, None), |(i, f)| (i, Some(f)));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// Money in whole units of the currency, grouped (`1,234,568`), rounded half away
/// from zero.
pub fn whole_money(minor: i64, currency: Currency) -> String {
    let unit = 10i64.pow(currency.exponent());
    group_thousands(&format_decimal(
        pacer_projections::money::mul_div_round(minor, 1, unit),
        0,
    ))
}

/// A ratio as a percentage with one decimal (`85.3%`), or `-` when undefined.
pub fn percent(r: Option<Ratio>) -> String {
    match r {
        Some(r) => format!(
            "{}%",
            Ratio {
                num: r.num.saturating_mul(100),
                den: r.den
            }
            .to_decimal_string(1)
        ),
        None => "-".into(),
    }
}

fn right(s: String) -> Cell {
    Cell::new(s).set_alignment(CellAlignment::Right)
}

fn new_table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY);
    t.set_header(header.iter().map(|h| Cell::new(*h)));
    for i in 1..header.len() {
        if let Some(col) = t.column_mut(i) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// The report as tables, one per rep.
pub fn report_table(rows: &[ReportRow]) -> String {
    if rows.is_empty() {
        return "no plan lines and no actuals match\n".into();
    }
    let mut out = String::new();
    let mut i = 0;
    while i < rows.len() {
        let rep = &rows[i].rep;
        let group: Vec<&ReportRow> = rows[i..].iter().take_while(|r| &r.rep == rep).collect();
        i += group.len();
        let first = group[0];
        out.push_str(&format!(
            "{} · team {} · {} · {}\n",
            first.rep, first.team, first.month, first.currency
        ));
        let mut t = new_table(&[
            "bucket",
            "plan",
            "actual",
            "variance",
            "attainment",
            "expected",
            "pace gap",
            "forecast",
        ]);
        for r in group {
            let amount = |v: i64| group_thousands(&amount_text(r, v));
            let opt = |v: Option<i64>| v.map_or_else(|| "-".to_owned(), amount);
            t.add_row(vec![
                Cell::new(r.bucket.to_string()),
                right(amount(r.plan)),
                right(amount(r.actual)),
                right(amount(r.variance())),
                right(percent(r.attainment())),
                right(opt(r.expected_to_date)),
                right(opt(r.pace_gap())),
                right(opt(r.forecast)),
            ]);
        }
        out.push_str(&t.to_string());
        out.push_str("\n\n");
    }
    out
}

/// Per-rep figures of the team summary.
#[derive(Default)]
struct Line {
    plan: i64,
    actual: i64,
    expected: i64,
    projected: i64,
    forecast: i64,
    new_plan: i64,
    new_actual: i64,
    ret_plan: i64,
    ret_actual: i64,
    meetings_plan: i64,
    meetings: i64,
}

impl Line {
    fn add(&mut self, o: &Line) {
        self.plan += o.plan;
        self.actual += o.actual;
        self.expected += o.expected;
        self.projected += o.projected;
        self.forecast += o.forecast;
        self.new_plan += o.new_plan;
        self.new_actual += o.new_actual;
        self.ret_plan += o.ret_plan;
        self.ret_actual += o.ret_actual;
        self.meetings_plan += o.meetings_plan;
        self.meetings += o.meetings;
    }
}

/// The team summary of a month: per team and rep, plan, actual, variance,
/// attainment and pace of the main buckets.
pub fn team_summary(state: &State, rows: &[ReportRow], pace: Option<Pace>) -> String {
    let currency = state.config().currency;
    let mut teams: BTreeMap<&str, BTreeMap<&str, Line>> = BTreeMap::new();
    for r in rows {
        let line = teams.entry(&r.team).or_default().entry(&r.rep).or_default();
        match &r.bucket {
            Bucket::Total => {
                line.plan = r.plan;
                line.actual = r.actual;
                line.expected = r.expected_to_date.unwrap_or(r.plan);
                line.projected = r.projection.unwrap_or(r.actual);
                line.forecast = r.forecast.unwrap_or(r.actual);
            }
            Bucket::NewCustomer => (line.new_plan, line.new_actual) = (r.plan, r.actual),
            Bucket::Retention => (line.ret_plan, line.ret_actual) = (r.plan, r.actual),
            Bucket::Activity(k) if k == "meeting" => {
                (line.meetings_plan, line.meetings) = (r.plan, r.actual)
            }
            _ => {}
        }
    }
    let mut out = String::new();
    if let Some(p) = pace {
        out.push_str(&format!(
            "{} · today {} · working day {} of {} · amounts in {}\n\
             attainment is month to date against the whole month's plan; pace gap is actual \
             minus the plan's share to date; projected is the run rate's month-end attainment; \
             forecast adds open deals due this month, weighted by probability\n\n",
            p.month, p.today, p.days_worked, p.days_in_month, currency
        ));
    }
    let money = |m: i64| whole_money(m, currency);
    for (team, reps) in &teams {
        let managers: std::collections::BTreeSet<String> = reps
            .keys()
            .map(|rep| state.rep_at(rep, rows[0].month).manager)
            .collect();
        let managers: Vec<String> = managers.into_iter().collect();
        out.push_str(&format!("Team {team} (manager: {})\n", managers.join(", ")));
        let mut t = new_table(&[
            "rep",
            "plan",
            "actual",
            "variance",
            "attainment",
            "pace gap",
            "projected",
            "forecast",
            "new cust.",
            "retention",
            "meetings",
        ]);
        let mut total = Line::default();
        let add_row = |t: &mut Table, name: &str, l: &Line| {
            t.add_row(vec![
                Cell::new(name),
                right(money(l.plan)),
                right(money(l.actual)),
                right(money(l.actual - l.plan)),
                right(percent(Ratio::new(l.actual, l.plan))),
                right(money(l.actual - l.expected)),
                right(percent(Ratio::new(l.projected, l.plan))),
                right(money(l.forecast)),
                right(percent(Ratio::new(l.new_actual, l.new_plan))),
                right(percent(Ratio::new(l.ret_actual, l.ret_plan))),
                right(format!("{}/{}", l.meetings, l.meetings_plan)),
            ]);
        };
        for (rep, line) in reps {
            add_row(&mut t, rep, line);
            total.add(line);
        }
        add_row(&mut t, "TEAM", &total);
        out.push_str(&t.to_string());
        out.push_str("\n\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(group_thousands("1234567.89"), "1,234,567.89");
        assert_eq!(group_thousands("-1234"), "-1,234");
        assert_eq!(group_thousands("999"), "999");
        assert_eq!(group_thousands("-0.50"), "-0.50");
    }

    #[test]
    fn percentages_have_one_decimal() {
        assert_eq!(percent(Ratio::new(853, 1000)), "85.3%");
        assert_eq!(percent(Ratio::new(1, 0)), "-");
    }
}
