//! Output for people: grouped thousands, percentages, aligned tables (comfy-table).
//! Machine output (JSON, CSV) lives in the engine's `output` module instead.

use std::collections::BTreeMap;

use chrono_tz::Tz;
use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{Cell, CellAlignment, Table};
pub use pacer_engine::output::group_thousands;
use pacer_engine::output::{amount_text, local_short, percent_text, productivity_cells};
use pacer_projections::alerts::backtest::Backtest;
use pacer_projections::alerts::{AlertView, Status};
use pacer_projections::bucket::Bucket;
use pacer_projections::money::{format_decimal, Currency, Ratio};
use pacer_projections::productivity::Productivity;
use pacer_projections::report::{Pace, ReportRow};
use pacer_projections::state::State;

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
    r.map_or_else(|| "-".into(), percent_text)
}

pub fn right(s: String) -> Cell {
    Cell::new(s).set_alignment(CellAlignment::Right)
}

pub fn new_table(header: &[&str]) -> Table {
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
pub fn report_table(rows: &[ReportRow<'_>]) -> String {
    if rows.is_empty() {
        return "no plan lines and no actuals match\n".into();
    }
    let mut out = String::new();
    let mut i = 0;
    while i < rows.len() {
        let rep = rows[i].rep;
        let group: Vec<&ReportRow> = rows[i..].iter().take_while(|r| r.rep == rep).collect();
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
pub fn team_summary(state: &State, rows: &[ReportRow<'_>], pace: Option<Pace>) -> String {
    let currency = state.config().currency;
    let mut teams: BTreeMap<&str, BTreeMap<&str, Line>> = BTreeMap::new();
    for r in rows {
        let line = teams.entry(r.team).or_default().entry(r.rep).or_default();
        match r.bucket {
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
             minus the plan expected by today, as the team's months have typically filled \
             (its curve is named by each team); projected is actual ÷ that share; \
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
        let curve = rows
            .iter()
            .find(|r| r.team == *team && *r.bucket == Bucket::Total)
            .and_then(|r| r.curve)
            .map(|c| format!(" · expected to date by {c}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "Team {team} (manager: {}){curve}\n",
            managers.join(", ")
        ));
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

/// Alerts as a table per rep: focus first, then watch, then the rest.
pub fn alerts_table(views: &[AlertView<'_>], currency: Currency, tz: Tz) -> String {
    if views.is_empty() {
        return "no alerts match\n".into();
    }
    let mut by_rep: BTreeMap<&str, Vec<&AlertView<'_>>> = BTreeMap::new();
    for v in views {
        by_rep.entry(v.alert.rep.as_str()).or_default().push(v);
    }
    let mut out = String::new();
    for (rep, mut list) in by_rep {
        list.sort_by_key(|v| (!v.focus, v.status, v.alert.order));
        let first = list[0];
        out.push_str(&format!(
            "{rep} · team {} · manager {}\n",
            first.team, first.manager
        ));
        let mut t = new_table(&[
            "", "severity", "rule", "bucket", "month", "at stake", "act by", "alert",
        ]);
        for v in list {
            let a = v.alert;
            let tag = match (v.status, v.focus) {
                (Status::Open | Status::Acknowledged, true) => "FOCUS",
                (Status::Open | Status::Acknowledged, false) => "watch",
                (Status::Resolved, _) => "resolved",
                (Status::Superseded, _) => "superseded",
            };
            let tag = if v.status == Status::Acknowledged {
                format!("{tag} (ack)")
            } else {
                tag.to_owned()
            };
            t.add_row(vec![
                Cell::new(tag),
                Cell::new(a.severity.as_str()),
                Cell::new(a.rule().as_str()),
                Cell::new(
                    a.finding
                        .bucket
                        .as_ref()
                        .map_or("-".to_owned(), ToString::to_string),
                ),
                right(a.finding.month.to_string()),
                right(whole_money(a.finding.money_at_stake, currency)),
                right(local_short(a.act_by, tz)),
                Cell::new(a.id.clone()),
            ]);
        }
        out.push_str(&t.to_string());
        out.push('\n');
        for v in views.iter().filter(|v| v.alert.rep == rep) {
            if v.alert.is_standing() {
                out.push_str(&format!(
                    "  {}: {}\n    → {}\n",
                    v.alert.id, v.alert.finding.message, v.alert.finding.suggested_action
                ));
            }
        }
        out.push('\n');
    }
    out
}

/// The productivity view as one table.
pub fn productivity_table(rows: &[Productivity], currency: Currency) -> String {
    if rows.is_empty() {
        return "no rep has a plan, a deal or an activity in that month\n".into();
    }
    let mut t = new_table(&[
        "rep",
        "team",
        "won",
        "lost",
        "win rate",
        "avg won deal",
        "median cycle",
        "coverage",
        "activities/won",
    ]);
    for p in rows {
        let cells = productivity_cells(p, currency);
        let text = |i: usize| cells[i].clone().unwrap_or_else(|| "-".into());
        t.add_row(vec![
            Cell::new(&p.rep),
            right(p.team.clone()),
            right(p.won_deals.to_string()),
            right(p.lost_deals.to_string()),
            right(percent(p.win_rate())),
            right(
                p.average_won()
                    .map_or("-".into(), |v| whole_money(v, currency)),
            ),
            right(cells[8].clone().map_or("-".into(), |d| format!("{d} d"))),
            right(
                p.coverage()
                    .map_or("-".into(), |r| format!("{}×", r.to_decimal_string(2))),
            ),
            right(text(13)),
        ]);
    }
    format!(
        "{} · how they sell (coverage: open pipeline closing this month ÷ plan not yet booked)\n{t}\n",
        rows[0].month
    )
}

/// Focus alerts one line each: rep, severity, rule, bucket, money at stake, act_by.
pub fn focus_list(views: &[AlertView<'_>], state: &State) -> String {
    let org = state.config();
    let mut t = new_table(&[
        "rep", "team", "severity", "rule", "bucket", "at stake", "act by",
    ]);
    for v in views {
        let a = v.alert;
        t.add_row(vec![
            Cell::new(&a.rep),
            right(v.team.clone()),
            right(a.severity.as_str().to_owned()),
            right(a.rule().as_str().to_owned()),
            right(
                a.finding
                    .bucket
                    .as_ref()
                    .map_or("-".to_owned(), ToString::to_string),
            ),
            right(whole_money(a.finding.money_at_stake, org.currency)),
            right(local_short(a.act_by, org.timezone)),
        ]);
    }
    format!("{t}\n\n")
}

/// The backtest as a table: per rule, scope and severity, claims made and how often
/// they came true, months that ended below the threshold and how many were caught in
/// time, and the median lead time.
pub fn backtest_table(b: &Backtest) -> String {
    let (Some(first), Some(last)) = (b.months.first(), b.months.last()) else {
        return "no month that has ended is in the range: nothing to score\n".into();
    };
    let mut out = format!(
        "{} months scored ({first} to {last}) · a claim is right when its month ended below the threshold · \
         caught: flagged by working day {} · lead: working days from the first flag to month end\n",
        b.months.len(),
        b.recall_by_day
    );
    let mut t = new_table(&[
        "rule",
        "scope",
        "severity",
        "below",
        "alerts",
        "right",
        "precision",
        "ended below",
        "caught",
        "recall",
        "lead (median)",
    ]);
    let pct = |bp: Option<i64>| bp.map_or("-".to_owned(), |v| format!("{}%", format_decimal(v, 2)));
    for r in &b.rows {
        t.add_row(vec![
            Cell::new(r.rule.as_str()),
            Cell::new(r.scope),
            Cell::new(r.severity.as_str()),
            right(format!("{}%", r.threshold.to_decimal_string())),
            right(r.alerts.to_string()),
            right(r.right.to_string()),
            right(pct(r.precision_bp())),
            right(r.ended_below.to_string()),
            right(r.flagged.to_string()),
            right(pct(r.recall_bp())),
            right(
                r.median_lead_days()
                    .map_or("-".to_owned(), |d| d.to_string()),
            ),
        ]);
    }
    out.push_str(&t.to_string());
    out.push('\n');
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
