//! The weekly digest rendered for its readers: JSON for programs (and the NATS
//! digest subject), plain text for a terminal or an e-mail, Markdown for a chat
//! channel or a wiki. The digest itself is computed in `pacer_projections::digest`.

use chrono_tz::Tz;
use pacer_projections::alerts::AlertView;
use pacer_projections::digest::{Audience, Deals, Digest, Rating, RepDigest};
use pacer_projections::money::{format_decimal, Currency};
use pacer_projections::report::ReportRow;
use serde_json::{json, Map, Value};

use crate::output::{
    alerts_json, group_thousands as group, local_short, percent_text, report_json,
};

fn audience(d: &Digest<'_>) -> (&'static str, String) {
    match &d.audience {
        Audience::Team(t) => ("team", t.clone()),
        Audience::Manager(m) => ("manager", m.clone()),
    }
}

fn deals_json(d: Deals, currency: Currency) -> Value {
    json!({"count": d.count, "amount": format_decimal(d.amount, currency.exponent())})
}

fn rating_json(r: Option<Rating>) -> Value {
    r.map_or(
        Value::Null,
        |r| json!({"score": format_decimal(r.score, 2), "ratings": r.ratings}),
    )
}

/// `up`, `down` or `flat` from last month's average to this month's.
fn trend(r: &RepDigest<'_>) -> Option<&'static str> {
    let (now, before) = (r.rating_this_month?, r.rating_last_month?);
    Some(match now.score.cmp(&before.score) {
        std::cmp::Ordering::Greater => "up",
        std::cmp::Ordering::Less => "down",
        std::cmp::Ordering::Equal => "flat",
    })
}

/// The digest as one JSON object.
pub fn digest_json(d: &Digest<'_>, currency: Currency, tz: Tz) -> Value {
    let (kind, who) = audience(d);
    let alerts = |list: &[AlertView<'_>]| alerts_json(list, currency, tz);
    let reps: Vec<Value> = d
        .reps
        .iter()
        .map(|r| {
            json!({
                "rep": r.rep,
                "name": r.name,
                "team": r.team,
                "manager": r.manager,
                "status": if r.on_track() { "on_track" } else { "needs_attention" },
                "reason": r.reason,
                "focus": alerts(&r.focus),
                "watch": alerts(&r.watch),
                "resolved_this_week": r.resolved,
                "pace": report_json(&r.pace),
                "pipeline": {
                    "opened": deals_json(r.pipeline.opened, currency),
                    "won": deals_json(r.pipeline.won, currency),
                    "lost": deals_json(r.pipeline.lost, currency),
                    "moved_out": deals_json(r.pipeline.moved_out, currency),
                },
                "report_card": {
                    "this_month": rating_json(r.rating_this_month),
                    "last_month": rating_json(r.rating_last_month),
                    "trend": trend(r),
                },
            })
        })
        .collect();
    let mut m = Map::new();
    m.insert(kind.to_owned(), Value::String(who));
    m.insert("week".into(), Value::String(d.week.to_string()));
    m.insert("month".into(), Value::String(d.month.to_string()));
    m.insert("as_of".into(), Value::String(d.as_of.to_rfc3339_in(tz)));
    m.insert("currency".into(), Value::String(currency.code().to_owned()));
    m.insert("reps".into(), Value::Array(reps));
    Value::Object(m)
}

/// The digest as plain text (`markdown = false`) or Markdown.
pub fn digest_text(d: &Digest<'_>, currency: Currency, tz: Tz, markdown: bool) -> String {
    let (kind, who) = audience(d);
    let money = |v: i64| group(&format_decimal(v, currency.exponent()));
    let local = |t| local_short(t, tz);
    let mut out = String::new();
    let h1 = if markdown { "# " } else { "" };
    let h2 = if markdown { "## " } else { "" };
    let item = if markdown { "- " } else { "  " };
    let sub = if markdown { "  - " } else { "    " };
    out.push_str(&format!(
        "{h1}Weekly digest · {kind} {who} · {} · as of {} ({tz})\n\n",
        d.week,
        local(d.as_of)
    ));
    if d.reps.is_empty() {
        out.push_str(&format!("No active reps in {kind} {who}.\n"));
        return out;
    }
    let attention = d.reps.iter().filter(|r| !r.on_track()).count();
    out.push_str(&format!(
        "{} reps: {attention} to talk to, {} on track.\n\n",
        d.reps.len(),
        d.reps.len() - attention
    ));
    for r in &d.reps {
        let status = if r.on_track() {
            "on track"
        } else {
            "needs attention"
        };
        out.push_str(&format!("{h2}{} ({}) · {status}\n", r.name, r.rep));
        let bold = |s: &str| {
            if markdown {
                format!("**{s}**")
            } else {
                s.to_owned()
            }
        };
        out.push_str(&format!(
            "{item}{} {}\n",
            bold("Why talk this week:"),
            r.reason
        ));
        for (i, v) in r.focus.iter().enumerate() {
            let a = v.alert;
            let ack = if v.ack.is_some() {
                " (acknowledged)"
            } else {
                ""
            };
            out.push_str(&format!(
                "{item}{} {}. [{}] {} {}{ack}: {}\n{sub}→ {} Act by {}.\n",
                bold("Focus"),
                i + 1,
                a.severity,
                a.rule(),
                a.finding
                    .bucket
                    .as_ref()
                    .map_or(String::new(), ToString::to_string),
                a.finding.message,
                a.finding.suggested_action,
                local(a.act_by)
            ));
        }
        if !r.watch.is_empty() {
            out.push_str(&format!(
                "{item}{} {} item(s)\n",
                bold("Watch:"),
                r.watch.len()
            ));
            for v in &r.watch {
                let a = v.alert;
                out.push_str(&format!(
                    "{sub}[{}] {}: {}\n",
                    a.severity,
                    a.rule(),
                    a.finding.message
                ));
            }
        }
        if r.resolved > 0 {
            out.push_str(&format!("{item}Resolved this week: {}\n", r.resolved));
        }
        let pace: Vec<String> = r.pace.iter().map(|row| pace_text(row, &money)).collect();
        if pace.is_empty() {
            out.push_str(&format!(
                "{item}{} no plan and no bookings for {}\n",
                bold("Pace:"),
                d.month
            ));
        } else {
            out.push_str(&format!(
                "{item}{} {}\n",
                bold(&format!("Pace ({}):", d.month)),
                pace.join("; ")
            ));
        }
        let p = &r.pipeline;
        let deals = |x: Deals| format!("{} ({})", x.count, money(x.amount));
        out.push_str(&format!(
            "{item}{} opened {}, won {}, lost {}, moved out of the month {}\n",
            bold("Pipeline this week:"),
            deals(p.opened),
            deals(p.won),
            deals(p.lost),
            deals(p.moved_out)
        ));
        let rating = |x: Option<Rating>| {
            x.map_or("no ratings".to_owned(), |x| {
                format!(
                    "{} ({} rating{})",
                    format_decimal(x.score, 2),
                    x.ratings,
                    if x.ratings == 1 { "" } else { "s" }
                )
            })
        };
        out.push_str(&format!(
            "{item}{} this month {}, last month {}{}\n\n",
            bold("Report card:"),
            rating(r.rating_this_month),
            rating(r.rating_last_month),
            trend(r).map_or(String::new(), |t| format!(" · trend {t}"))
        ));
    }
    out
}

fn pace_text(row: &ReportRow<'_>, money: &dyn Fn(i64) -> String) -> String {
    let mut s = format!(
        "{} {} of {}",
        row.bucket,
        money(row.actual),
        money(row.plan)
    );
    if let Some(a) = row.attainment() {
        s.push_str(&format!(" ({})", percent_text(a)));
    }
    if let Some(e) = row.expected_to_date {
        s.push_str(&format!(", expected {}", money(e)));
    }
    if let Some(f) = row.forecast {
        s.push_str(&format!(", forecast {}", money(f)));
    }
    s
}
