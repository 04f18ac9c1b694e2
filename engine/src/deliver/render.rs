//! What a delivery says, per channel: an email (subject, plain text and HTML), a
//! Slack Block Kit message, a Teams Adaptive Card, or a signed webhook's JSON. Made
//! from the delivery's items alone (the alert objects and digests as published), so
//! every attempt of a delivery says the same thing.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::store::{Delivery, Kind};
use crate::output::group_thousands;

/// Alerts shown in full in one chat message; the rest are counted.
const CHAT_ALERTS_MAX: usize = 10;

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// A decimal string with thousands grouped (`12500.00` → `12,500.00`).
fn num(v: &Value, k: &str) -> String {
    match v.get(k).and_then(Value::as_str) {
        Some(t) if !t.is_empty() => group_thousands(t),
        _ => "–".into(),
    }
}

/// An RFC 3339 time as people read it: `Fri 11 Dec 17:00`.
fn when(t: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.format("%a %-d %b %H:%M").to_string())
        .unwrap_or_else(|_| t.to_owned())
}

fn esc(t: &str) -> String {
    maud::html! { (t) }.into_string()
}

fn rule_label(rule: &str) -> String {
    pacer_projections::alerts::Rule::parse(rule)
        .map_or_else(|| rule.replace('_', " "), |r| r.label().to_owned())
}

fn bucket_text(a: &Value) -> String {
    let b = s(a, "bucket");
    if b.is_empty() {
        String::new()
    } else {
        format!(" · {b}")
    }
}

/// The headline of one alert change: `Critical · Behind pace · ana (west) · raised`.
fn headline(a: &Value) -> String {
    let sev = s(a, "severity");
    let mut sev_cap = sev.to_owned();
    if let Some(c) = sev_cap.get_mut(0..1) {
        c.make_ascii_uppercase();
    }
    format!(
        "{sev_cap} · {}{} · {} ({}) · {}",
        rule_label(s(a, "rule")),
        bucket_text(a),
        s(a, "rep"),
        s(a, "team"),
        s(a, "change")
    )
}

/// The figures of one alert: `plan 50,000.00 · actual 12,000.00 · …`.
fn figures(a: &Value) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("Plan", num(a, "plan")),
        ("Actual", num(a, "actual")),
        ("Expected to date", num(a, "expected_to_date")),
        ("Gap", num(a, "gap")),
        ("Projected", num(a, "projected")),
    ];
    if a.get("money_at_stake").and_then(Value::as_str).is_some() {
        out.push((
            "At stake",
            format!("{} {}", num(a, "money_at_stake"), s(a, "currency")),
        ));
    }
    out.retain(|(_, v)| v != "–");
    out
}

fn link(app_url: Option<&str>, path: &str) -> Option<String> {
    app_url.map(|u| format!("{u}{path}"))
}

fn rep_link(app_url: Option<&str>, a: &Value) -> Option<String> {
    link(app_url, &format!("/rep/{}", s(a, "rep")))
}

/// An email: subject, plain text and HTML.
pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The email of a delivery.
pub fn email(d: &Delivery, app_url: Option<&str>) -> Email {
    match d.kind {
        Kind::Alerts => alerts_email(d, app_url),
        Kind::Digest => digest_email(d.items.first().unwrap_or(&Value::Null), app_url),
        Kind::Notice => {
            let text = d.items.first().map_or("", |n| s(n, "text")).to_owned();
            Email {
                subject: "[Pacer] A subscription of yours was stopped".into(),
                html: page(&format!("<p>{}</p>", esc(&text))),
                text: text + "\n",
            }
        }
    }
}

fn page(body: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"></head>\
<body style=\"margin:0;padding:8px;background:#f4f5f7;font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1d2329;font-size:15px;line-height:1.45\">\
<div style=\"max-width:680px;margin:0 auto;background:#ffffff;border:1px solid #dfe3e8;border-radius:8px;padding:16px 18px\">{body}\
<p style=\"color:#6b7480;font-size:12px;margin-top:24px;border-top:1px solid #eef0f2;padding-top:10px\">Sent by Pacer because of a subscription of yours. \
Change or stop it with <code>pacer subscribe</code> or in the web app.</p></div></body></html>"
    )
}

/// The subject of an alerts message.
fn alerts_subject(d: &Delivery) -> String {
    let n = d.items.len();
    let critical = d
        .items
        .iter()
        .filter(|a| s(a, "severity") == "critical")
        .count();
    if d.cadence == "daily" {
        return format!(
            "[Pacer] Daily summary: {n} alert change{}{}",
            if n == 1 { "" } else { "s" },
            if critical > 0 {
                format!(", {critical} critical")
            } else {
                String::new()
            }
        );
    }
    match d.items.as_slice() {
        [a] => format!("[Pacer] {}: {}", headline_short(a), s(a, "message")),
        _ => {
            let mut teams: Vec<&str> = d.items.iter().map(|a| s(a, "team")).collect();
            teams.sort();
            teams.dedup();
            format!(
                "[Pacer] {n} alert changes for {} {}{}",
                if teams.len() == 1 { "team" } else { "teams" },
                teams.join(", "),
                if critical > 0 {
                    format!(" ({critical} critical)")
                } else {
                    String::new()
                }
            )
        }
    }
}

fn headline_short(a: &Value) -> String {
    let sev = s(a, "severity");
    format!(
        "{} {}",
        sev.to_uppercase(),
        rule_label(s(a, "rule")).to_lowercase()
    )
}

fn alerts_email(d: &Delivery, app_url: Option<&str>) -> Email {
    let mut text = String::new();
    let mut html = String::new();
    let n = d.items.len();
    let _ = writeln!(
        text,
        "{n} alert change{} to act on this week.\n",
        if n == 1 { "" } else { "s" }
    );
    let _ = write!(
        html,
        "<h1 style=\"font-size:20px;margin:0 0 4px\">{n} alert change{} to act on</h1>",
        if n == 1 { "" } else { "s" }
    );
    for a in &d.items {
        let _ = writeln!(text, "{}", headline(a));
        let _ = writeln!(text, "{}", s(a, "message"));
        let figs: Vec<String> = figures(a)
            .iter()
            .map(|(k, v)| format!("{} {v}", k.to_lowercase()))
            .collect();
        let _ = writeln!(text, "  {}", figs.join(" · "));
        let _ = writeln!(text, "  What to do: {}", s(a, "suggested_action"));
        let _ = writeln!(text, "  Act by: {}", when(s(a, "act_by")));
        if let Some(l) = rep_link(app_url, a) {
            let _ = writeln!(text, "  Open: {l}");
        }
        let _ = writeln!(text, "  Alert: {}\n", s(a, "alert_id"));
        let colour = match s(a, "severity") {
            "critical" => "#c62828",
            "warning" => "#b26a00",
            _ => "#44617b",
        };
        let _ = write!(
            html,
            "<div style=\"border-left:4px solid {colour};padding:8px 12px;margin:16px 0;background:#fafbfc\">\
<div style=\"font-size:12px;color:{colour};font-weight:600;text-transform:uppercase;letter-spacing:.03em\">{}</div>\
<div style=\"font-size:16px;font-weight:600;margin:2px 0 8px\">{}</div><table style=\"border-collapse:collapse;font-size:14px\">",
            esc(&headline(a)),
            esc(s(a, "message"))
        );
        for (k, v) in figures(a) {
            let _ = write!(
                html,
                "<tr><td style=\"color:#6b7480;padding:1px 16px 1px 0\">{k}</td><td style=\"text-align:right;font-variant-numeric:tabular-nums\">{}</td></tr>",
                esc(&v)
            );
        }
        let _ = write!(
            html,
            "</table><p style=\"margin:8px 0 2px\"><b>What to do:</b> {}</p><p style=\"margin:2px 0\"><b>Act by:</b> {}</p>",
            esc(s(a, "suggested_action")),
            esc(&when(s(a, "act_by")))
        );
        if let Some(l) = rep_link(app_url, a) {
            let _ = write!(
                html,
                "<p style=\"margin:8px 0 0\"><a href=\"{}\" style=\"color:#1565c0\">Open {} in Pacer</a></p>",
                esc(&l),
                esc(s(a, "rep"))
            );
        }
        html.push_str("</div>");
    }
    Email {
        subject: alerts_subject(d),
        text,
        html: page(&html),
    }
}

/// The weekly digest as an email.
pub fn digest_email(dg: &Value, app_url: Option<&str>) -> Email {
    let team = s(dg, "team");
    let who = if team.is_empty() {
        format!("manager {}", s(dg, "manager"))
    } else {
        format!("team {team}")
    };
    let week = s(dg, "week");
    let month = s(dg, "month");
    let currency = s(dg, "currency");
    let reps: &[Value] = dg
        .get("reps")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let attention: Vec<&Value> = reps
        .iter()
        .filter(|r| s(r, "status") != "on_track")
        .collect();
    let subject = format!(
        "[Pacer] Weekly digest · {who} · {week}: {} to talk to, {} on track",
        attention.len(),
        reps.len() - attention.len()
    );
    let mut text = format!(
        "Weekly digest · {who} · {week} · as of {}\n{} reps: {} to talk to, {} on track.\n\n",
        when(s(dg, "as_of")),
        reps.len(),
        attention.len(),
        reps.len() - attention.len()
    );
    let mut html = format!(
        "<h1 style=\"font-size:20px;margin:0\">Weekly digest · {}</h1>\
<p style=\"color:#6b7480;margin:2px 0 12px\">{} · as of {} · {} reps: <b>{} to talk to</b>, {} on track</p>",
        esc(&who),
        esc(week),
        esc(&when(s(dg, "as_of"))),
        reps.len(),
        attention.len(),
        reps.len() - attention.len()
    );
    for r in reps {
        let on_track = s(r, "status") == "on_track";
        let name = s(r, "name");
        let _ = writeln!(
            text,
            "{name} ({}) · {}",
            s(r, "rep"),
            if on_track {
                "on track"
            } else {
                "needs attention"
            }
        );
        let _ = writeln!(text, "  Why talk this week: {}", s(r, "reason"));
        let (badge, colour) = if on_track {
            ("on track", "#2e7d32")
        } else {
            ("needs attention", "#c62828")
        };
        let _ = write!(
            html,
            "<div style=\"border-top:1px solid #eef0f2;padding:12px 0\">\
<div><span style=\"font-size:16px;font-weight:600\">{}</span> <span style=\"color:#6b7480\">{}</span> \
<span style=\"font-size:12px;color:#fff;background:{colour};border-radius:10px;padding:1px 8px;margin-left:6px\">{badge}</span></div>\
<p style=\"margin:4px 0\">{}</p>",
            esc(name),
            esc(s(r, "rep")),
            esc(s(r, "reason"))
        );
        let focus: &[Value] = r
            .get("focus")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        if !focus.is_empty() {
            html.push_str("<ol style=\"margin:4px 0 4px 18px;padding:0\">");
        }
        for a in focus {
            let _ = writeln!(
                text,
                "  Focus: [{}] {}{}: {}\n    → {} Act by {}.",
                s(a, "severity"),
                rule_label(s(a, "rule")),
                bucket_text(a),
                s(a, "message"),
                s(a, "suggested_action"),
                when(s(a, "act_by"))
            );
            let _ = write!(
                html,
                "<li style=\"margin:4px 0\"><b>{}</b>{} — {}<br><span style=\"color:#44617b\">→ {} <i>Act by {}.</i></span></li>",
                esc(&rule_label(s(a, "rule"))),
                esc(&bucket_text(a)),
                esc(s(a, "message")),
                esc(s(a, "suggested_action")),
                esc(&when(s(a, "act_by")))
            );
        }
        if !focus.is_empty() {
            html.push_str("</ol>");
        }
        let pace: &[Value] = r
            .get("pace")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        if !pace.is_empty() {
            let _ = write!(
                html,
                "<div style=\"font-size:12px;color:#6b7480;margin-top:8px\">Pace in {} ({})</div>\
<table style=\"border-collapse:collapse;font-size:12px;margin:2px 0 6px;width:100%\">\
<tr style=\"color:#6b7480;text-align:right\"><th style=\"text-align:left;font-weight:500\">Bucket</th><th style=\"font-weight:500;padding-left:6px\">Actual</th><th style=\"font-weight:500;padding-left:6px\">Plan</th><th style=\"font-weight:500;padding-left:6px\">Expected</th><th style=\"font-weight:500;padding-left:6px\">Forecast</th></tr>",
                esc(month),
                esc(currency)
            );
            let mut parts = Vec::new();
            for row in pace {
                parts.push(format!(
                    "{} {} of {}",
                    s(row, "bucket"),
                    num(row, "actual"),
                    num(row, "plan")
                ));
                let _ = write!(
                    html,
                    "<tr style=\"text-align:right;font-variant-numeric:tabular-nums\"><td style=\"text-align:left;word-break:break-word\">{}</td><td style=\"padding-left:6px\">{}</td><td style=\"padding-left:6px\">{}</td><td style=\"padding-left:6px\">{}</td><td style=\"padding-left:6px\">{}</td></tr>",
                    esc(s(row, "bucket")),
                    esc(&num(row, "actual")),
                    esc(&num(row, "plan")),
                    esc(&num(row, "expected_to_date")),
                    esc(&num(row, "forecast"))
                );
            }
            html.push_str("</table>");
            let _ = writeln!(text, "  Pace ({month}, {currency}): {}", parts.join("; "));
        }
        if let Some(p) = r.get("pipeline") {
            let deals = |k: &str| {
                p.get(k).map_or(String::new(), |x| {
                    format!(
                        "{} ({})",
                        x.get("count").map_or(0, |c| c.as_i64().unwrap_or(0)),
                        num(x, "amount")
                    )
                })
            };
            let line = format!(
                "opened {}, won {}, lost {}, moved out of the month {}",
                deals("opened"),
                deals("won"),
                deals("lost"),
                deals("moved_out")
            );
            let _ = writeln!(text, "  Pipeline this week: {line}");
            let _ = write!(
                html,
                "<p style=\"margin:4px 0;font-size:13px\"><b>Pipeline this week:</b> {}</p>",
                esc(&line)
            );
        }
        if let Some(l) = link(app_url, &format!("/rep/{}", s(r, "rep"))) {
            let _ = write!(
                html,
                "<p style=\"margin:2px 0;font-size:13px\"><a href=\"{}\" style=\"color:#1565c0\">Open {} in Pacer</a></p>",
                esc(&l),
                esc(name)
            );
        }
        text.push('\n');
        html.push_str("</div>");
    }
    if let Some(l) = link(app_url, &format!("/digest/{team}")) {
        let _ = writeln!(text, "The digest in Pacer: {l}");
    }
    Email {
        subject,
        text,
        html: page(&html),
    }
}

/// A Slack incoming-webhook message (Block Kit, with a plain-text fallback).
pub fn slack(d: &Delivery, app_url: Option<&str>) -> Value {
    let mail = email(d, app_url);
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": clip(&mail.subject.replace("[Pacer] ", ""), 150)}
    })];
    match d.kind {
        Kind::Alerts => {
            for a in d.items.iter().take(CHAT_ALERTS_MAX) {
                blocks.push(json!({
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": clip(&format!("*{}*\n{}", headline(a), s(a, "message")), 3000)},
                    "fields": figures(a).iter().map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}*\n{v}")})).collect::<Vec<_>>(),
                }));
                blocks.push(json!({
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": clip(&format!("→ {}  ·  *Act by {}*", s(a, "suggested_action"), when(s(a, "act_by"))), 3000)}]
                }));
                if let Some(l) = rep_link(app_url, a) {
                    blocks.push(json!({
                        "type": "actions",
                        "elements": [{"type": "button", "text": {"type": "plain_text", "text": format!("Open {} in Pacer", s(a, "rep"))}, "url": l}]
                    }));
                }
                blocks.push(json!({"type": "divider"}));
            }
            if d.items.len() > CHAT_ALERTS_MAX {
                blocks.push(json!({
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": format!("and {} more in Pacer", d.items.len() - CHAT_ALERTS_MAX)}]
                }));
            }
        }
        Kind::Digest | Kind::Notice => {
            blocks.push(json!({
                "type": "section",
                "text": {"type": "mrkdwn", "text": clip(&mail.text, 3000)}
            }));
        }
    }
    json!({"text": mail.subject, "blocks": blocks})
}

/// A Teams workflow-webhook message: one Adaptive Card.
pub fn teams(d: &Delivery, app_url: Option<&str>) -> Value {
    let mail = email(d, app_url);
    let mut body = vec![json!({
        "type": "TextBlock", "size": "Large", "weight": "Bolder", "wrap": true,
        "text": mail.subject.replace("[Pacer] ", "")
    })];
    let mut actions = Vec::new();
    match d.kind {
        Kind::Alerts => {
            for a in d.items.iter().take(CHAT_ALERTS_MAX) {
                body.push(json!({"type": "TextBlock", "weight": "Bolder", "wrap": true, "separator": true, "text": headline(a),
                    "color": if s(a, "severity") == "critical" { "Attention" } else { "Default" }}));
                body.push(json!({"type": "TextBlock", "wrap": true, "text": s(a, "message")}));
                body.push(json!({"type": "FactSet", "facts": figures(a).iter().map(|(k, v)| json!({"title": k, "value": v})).collect::<Vec<_>>()}));
                body.push(json!({"type": "TextBlock", "wrap": true, "text": format!("→ {} **Act by {}**", s(a, "suggested_action"), when(s(a, "act_by")))}));
                if let Some(l) = rep_link(app_url, a) {
                    if actions.len() < 5 {
                        actions.push(json!({"type": "Action.OpenUrl", "title": format!("Open {}", s(a, "rep")), "url": l}));
                    }
                }
            }
            if d.items.len() > CHAT_ALERTS_MAX {
                body.push(json!({"type": "TextBlock", "isSubtle": true, "text": format!("and {} more in Pacer", d.items.len() - CHAT_ALERTS_MAX)}));
            }
        }
        Kind::Digest | Kind::Notice => {
            body.push(json!({"type": "TextBlock", "wrap": true, "text": mail.text}));
        }
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
                "actions": actions,
            }
        }]
    })
}

/// A signed webhook's body (Standard Webhooks' `type`, `timestamp`, `data`): the
/// alert changes or the digest as published.
pub fn webhook(d: &Delivery) -> Value {
    let kind = match d.kind {
        Kind::Alerts => "pacer.alerts",
        Kind::Digest => "pacer.digest",
        Kind::Notice => "pacer.notice",
    };
    json!({
        "type": kind,
        "timestamp": chrono::DateTime::from_timestamp_millis(d.created_ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        "data": {
            "delivery": d.id,
            "subscription": d.subscription,
            "cadence": d.cadence,
            "items": d.items,
        }
    })
}

fn clip(t: &str, max: usize) -> String {
    if t.chars().count() <= max {
        return t.to_owned();
    }
    let mut out: String = t.chars().take(max - 1).collect();
    out.push('…');
    out
}
