//! Alerts delivered where managers work, end to end, through real processes: `pacer
//! serve` (one process, and with a real nats-server), a real SMTP server (aiosmtpd)
//! and an HTTP receiver standing in for Slack, Teams and a company's webhook
//! (tests/deliver/receivers.py). Emails are parsed with Python's MIME library; signed
//! webhooks are verified with the official `standardwebhooks` library; the digest
//! email is rendered in headless Chromium and screenshotted.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::nats::{free_port, NatsServer, Serve};
use common::*;
use serde_json::{json, Value};

/// The receivers' process: SMTP and HTTP on loopback ports of their own.
struct Receivers {
    child: Child,
    smtp: u16,
    http: u16,
}

impl Receivers {
    fn start() -> Receivers {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/deliver/receivers.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs (tests/run.sh installs aiosmtpd and standardwebhooks)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("the receivers say where they listen");
        let ports: Vec<u16> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|p| p.parse().ok())
            .collect();
        assert_eq!(
            ports.len(),
            2,
            "tests/deliver/receivers.py did not start (is aiosmtpd installed? tests/run.sh installs it): {line:?}"
        );
        Receivers {
            child,
            smtp: ports[0],
            http: ports[1],
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http)
    }

    fn control(&self, what: &str, body: Value) {
        ureq::post(&self.url(&format!("/control/{what}")))
            .send_string(&body.to_string())
            .expect("the receivers take a control request");
    }

    /// Every request and email received so far.
    fn received(&self) -> (Vec<Value>, Vec<Value>) {
        let v: Value = serde_json::from_str(
            &ureq::get(&self.url("/received"))
                .call()
                .expect("the receivers answer")
                .into_string()
                .unwrap(),
        )
        .unwrap();
        (
            v["http"].as_array().cloned().unwrap_or_default(),
            v["mail"].as_array().cloned().unwrap_or_default(),
        )
    }

    fn requests_to(&self, prefix: &str) -> Vec<Value> {
        self.received()
            .0
            .into_iter()
            .filter(|r| r["path"].as_str().unwrap_or("").starts_with(prefix))
            .collect()
    }

    /// Waits until `done` holds of what was received.
    fn wait_for(&self, what: &str, timeout_s: u64, done: impl Fn(&[Value], &[Value]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(timeout_s);
        loop {
            let (http, mail) = self.received();
            if done(&http, &mail) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {timeout_s} s; received {} request(s): {:#?}\nand {} email(s)",
                http.len(),
                http.iter()
                    .map(|r| (r["path"].clone(), r["status"].clone()))
                    .collect::<Vec<_>>(),
                mail.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Receivers {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// The config: no wall-clock ticks (the tests tick), bursts gathered for 700 ms,
/// retries from 150 ms, email to the test's SMTP server.
fn config(r: &Receivers, extra: &str) -> String {
    format!(
        r#"[serve]
tick_interval_s = 0

[deliver]
gather_ms = 700
retry_base_ms = 150
retry_max_ms = 600
timeout_ms = 5000
app_url = "https://pacer.example.com"
# The test's receivers listen on plain HTTP on this machine.
allow_http_loopback = true
{extra}
[deliver.smtp]
host = "127.0.0.1"
port = {}
tls = "none"
from = "Pacer <pacer@example.com>"
"#,
        r.smtp
    )
}

/// A demo organisation of 20 reps (teams north, south, east, west, central) at
/// DEMO_NOW, a Wednesday, with an admin; returns (dir, data dir, config, admin token).
fn org(r: &Receivers, extra: &str) -> (tempfile::TempDir, PathBuf, PathBuf, String) {
    let (tmp, data) = temp_org(&config(r, extra));
    let cfg = tmp.path().join("pacer.toml");
    ok(pacer(&data)
        .args(["--config", cfg.to_str().unwrap()])
        .args(["demo", "--reps", "20", "--now", DEMO_NOW])
        .output()
        .unwrap());
    let admin = user_token(&data, "root", "admin", &[]);
    (tmp, data, cfg, admin)
}

fn serve(data: &Path, cfg: &Path, nats: &str, port: u16) -> Serve {
    Serve::start_with(
        "serve",
        data,
        cfg,
        nats,
        &["--http".into(), format!("127.0.0.1:{port}")],
    )
}

fn subscribe(data: &Path, cfg: &Path, args: &[&str]) -> String {
    let out = ok(pacer(data)
        .args(["--config", cfg.to_str().unwrap(), "subscribe", "add"])
        .args(args)
        .output()
        .unwrap());
    out.split_whitespace()
        .find(|w| w.starts_with("sub-"))
        .expect("subscribe add names the subscription")
        .to_owned()
}

fn api(port: u16, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let req = ureq::request(method, &format!("http://127.0.0.1:{port}{path}"))
        .set("authorization", &format!("Bearer {token}"));
    let sent = match body {
        Some(b) => req
            .set("content-type", "application/json")
            .send_string(&b.to_string()),
        None => req.call(),
    };
    let (code, text) = match sent {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("{method} {path}: {e}"),
    };
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A clock tick through the native endpoint; answered once it is durable.
fn tick(port: u16, token: &str, at: &str) {
    let body = json!({"event_id": format!("test-tick-{at}"), "source": "test", "occurred_at": at, "type": "clock_tick"});
    let r = ureq::post(&format!("http://127.0.0.1:{port}/v1/events"))
        .set("authorization", &format!("Bearer {token}"))
        .set("content-type", "application/x-ndjson")
        .send_string(&body.to_string())
        .expect("the tick is taken");
    assert_eq!(r.status(), 200);
}

/// A decimal as people read it, grouped by thousands (`-131132.00` → `-131,132.00`):
/// written here, not taken from the code under test.
fn grouped(d: &str) -> String {
    let (sign, rest) = d.strip_prefix('-').map_or(("", d), |r| ("-", r));
    let (int, frac) = rest
        .split_once('.')
        .map_or((rest, None), |(i, f)| (i, Some(f)));
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!(
        "{sign}{out}{}",
        frac.map_or(String::new(), |f| format!(".{f}"))
    )
}

fn ids_in(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("al-"))
        .map(str::to_owned)
        .collect()
}

/// The Monday after DEMO_NOW, after the weekly digest's time (07:00): a new week, so
/// every team's alerts are raised afresh and each team's digest is made.
const MONDAY: &str = "2026-11-23T08:00:00Z";

#[test]
fn a_manager_gets_alerts_by_email_slack_teams_and_a_signed_webhook_and_the_team_digest() {
    let r = Receivers::start();
    let (_tmp, data, cfg, admin) = org(&r, "");
    ok(run_with_stdin(
        &data,
        &[
            "user",
            "add",
            "maria",
            "--role",
            "manager",
            "--teams",
            "north",
            "--password-stdin",
        ],
        "maria-password-2026\n",
    ));
    let maria = ok(run(&data, &["token", "create", "--user", "maria"]))
        .trim()
        .to_owned();
    // By the CLI: the burst by email, and the weekly digest.
    let _email = subscribe(
        &data,
        &cfg,
        &[
            "--user",
            "maria",
            "--email",
            "maria@example.com",
            "--team",
            "north",
        ],
    );
    let _weekly = subscribe(
        &data,
        &cfg,
        &[
            "--user",
            "maria",
            "--email",
            "maria@example.com",
            "--cadence",
            "weekly",
            "--team",
            "north",
        ],
    );
    let port = free_port();
    let mut server = serve(&data, &cfg, "", port);
    // By HTTP, as the manager herself: Slack (focus only), Teams, a signed webhook.
    let add = |channel: Value, more: Value| {
        let mut body = json!({"channel": channel});
        body.as_object_mut()
            .unwrap()
            .extend(more.as_object().unwrap().clone());
        api(port, &maria, "POST", "/v1/subscriptions", Some(body))
    };
    let (code, slack) = add(
        json!({"kind": "slack", "url": r.url("/slack/maria")}),
        json!({"focus_only": true}),
    );
    assert_eq!(code, 201, "{slack}");
    let (code, teams) = add(
        json!({"kind": "teams", "url": r.url("/teams/maria")}),
        json!({}),
    );
    assert_eq!(code, 201, "{teams}");
    let (code, hook) = add(
        json!({"kind": "webhook", "url": r.url("/hook/maria")}),
        json!({"rules": ["activity_behind", "low_coverage", "customer_mix", "behind_pace", "product_concentration", "report_card_drop", "month_missed"]}),
    );
    assert_eq!(code, 201, "{hook}");
    let secret = hook["channel"]["secret"]
        .as_str()
        .expect("the secret, shown once");
    assert!(secret.starts_with("whsec_"));
    r.control("secret", json!({"path": "/hook/maria", "secret": secret}));
    // A manager cannot subscribe to a team outside her scope, or for someone else.
    let (code, why) = add(
        json!({"kind": "slack", "url": r.url("/slack/x")}),
        json!({"teams": ["south"]}),
    );
    assert_eq!(code, 403, "{why}");
    assert!(why["error"].as_str().unwrap().contains("south"), "{why}");
    let (code, why) = add(json!({"kind": "email", "to": "not an address"}), json!({}));
    assert_eq!(code, 400);
    assert!(
        why["error"].as_str().unwrap().contains("not an address"),
        "{why}"
    );
    let (code, _) = add(
        json!({"kind": "email", "to": "x@example.com"}),
        json!({"user": "root"}),
    );
    assert_eq!(code, 400);
    // What she sees of her subscriptions: her five, the webhook's secret hidden.
    let (_, mine) = api(port, &maria, "GET", "/v1/subscriptions", None);
    let mine = mine["subscriptions"].as_array().unwrap().clone();
    assert_eq!(mine.len(), 5, "{mine:#?}");
    assert!(!Value::Array(mine).to_string().contains(secret));

    tick(port, &admin, MONDAY);
    r.wait_for(
        "an email of alerts, the digest, Slack, Teams and the webhook",
        30,
        |http, mail| {
            mail.len() >= 2
                && ["/slack/", "/teams/", "/hook/"].iter().all(|p| {
                    http.iter()
                        .any(|q| q["path"].as_str().unwrap().starts_with(p))
                })
        },
    );
    // A burst is one message per subscription: nothing more comes after the window.
    std::thread::sleep(Duration::from_millis(2000));
    let (http, mail) = r.received();
    assert_eq!(mail.len(), 2, "{mail:#?}");
    assert_eq!(
        http.len(),
        3,
        "one request each to Slack, Teams and the webhook"
    );

    // The alerts the tick raised for team north, as the engine's API says.
    let (_, alerts) = api(port, &admin, "GET", "/v1/alerts?team=north", None);
    let alerts: BTreeMap<String, Value> = alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["alert_id"].as_str().unwrap().to_owned(), a.clone()))
        .collect();
    let raised_now: BTreeSet<String> = alerts
        .values()
        .filter(|a| {
            a["raised_at"]
                .as_str()
                .unwrap()
                .starts_with("2026-11-23T08:00:00")
        })
        .map(|a| a["alert_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        raised_now.len() >= 3,
        "the new week raises alerts in north: {raised_now:?}"
    );

    // The email of alerts: to maria, multipart text + HTML, every alert raised in
    // north with its figures, what to do and by when.
    let alert_mail = mail
        .iter()
        .find(|m| !m["subject"].as_str().unwrap().contains("digest"))
        .unwrap();
    assert_eq!(alert_mail["rcpt_tos"], json!(["maria@example.com"]));
    assert_eq!(alert_mail["content_type"], "multipart/alternative");
    let subject = alert_mail["subject"].as_str().unwrap();
    assert!(
        subject.starts_with("[Pacer] ") && subject.contains("north"),
        "{subject}"
    );
    let (text, html) = (
        alert_mail["text"].as_str().unwrap(),
        alert_mail["html"].as_str().unwrap(),
    );
    let in_mail = ids_in(text);
    assert_eq!(
        in_mail, raised_now,
        "the email names exactly the alerts the tick raised in north"
    );
    assert_eq!(ids_in(html).len(), 0, "the HTML names reps, not alert ids");
    for id in &in_mail {
        let a = &alerts[id];
        for field in ["message", "suggested_action"] {
            let want = a[field].as_str().unwrap();
            assert!(text.contains(want), "{field} of {id} in the text: {want}");
            assert!(
                html.contains(
                    &want
                        .replace('&', "&amp;")
                        .replace('<', "&lt;")
                        .replace('>', "&gt;")
                ),
                "{field} of {id} in the HTML"
            );
        }
        for field in ["plan", "actual", "gap"] {
            if let Some(v) = a[field].as_str() {
                assert!(
                    text.contains(&grouped(v)),
                    "{field} {v} of {id} in the text"
                );
                assert!(
                    html.contains(&grouped(v)),
                    "{field} {v} of {id} in the HTML"
                );
            }
        }
        assert!(html.contains(&format!(
            "https://pacer.example.com/rep/{}",
            a["rep"].as_str().unwrap()
        )));
    }
    assert!(
        text.contains("Act by: Fri 27 Nov 17:00"),
        "act_by as people read it"
    );
    let message_id = alert_mail["message_id"].as_str().unwrap();
    assert!(
        message_id.starts_with("<dl-") && message_id.ends_with("@example.com>"),
        "{message_id}"
    );

    // Slack: Block Kit, only focus alerts, each with its figures and a link.
    let slack_req = http.iter().find(|q| q["path"] == "/slack/maria").unwrap();
    let blocks = slack_req["body"]["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert!(slack_req["body"]["text"]
        .as_str()
        .unwrap()
        .starts_with("[Pacer] "));
    assert!(blocks.len() <= 50, "Slack takes at most 50 blocks");
    let sections: Vec<&Value> = blocks.iter().filter(|b| b["type"] == "section").collect();
    assert!(!sections.is_empty());
    for s in &sections {
        let ids: Vec<&str> = raised_now
            .iter()
            .filter(|id| {
                s["text"]["text"]
                    .as_str()
                    .unwrap()
                    .contains(alerts[*id]["message"].as_str().unwrap())
            })
            .map(String::as_str)
            .collect();
        assert_eq!(ids.len(), 1, "each section is one alert: {s}");
        let a = &alerts[ids[0]];
        assert_eq!(
            a["focus"], true,
            "a focus-only subscription hears of focus alerts only"
        );
        let fields: Vec<&str> = s["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["text"].as_str().unwrap())
            .collect();
        assert!(
            fields.contains(&format!("*Plan*\n{}", grouped(a["plan"].as_str().unwrap())).as_str()),
            "{fields:?}"
        );
    }
    assert!(blocks.iter().any(|b| b["type"] == "actions"
        && b["elements"][0]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://pacer.example.com/rep/")));
    assert!(blocks.iter().any(|b| b["type"] == "context"
        && b["elements"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Act by")));

    // Teams: one Adaptive Card with a fact set per alert.
    let teams_req = http.iter().find(|q| q["path"] == "/teams/maria").unwrap();
    let att = &teams_req["body"]["attachments"][0];
    assert_eq!(teams_req["body"]["type"], "message");
    assert_eq!(
        att["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(att["content"]["type"], "AdaptiveCard");
    assert!(att["content"]["version"].as_str().is_some());
    let facts = att["content"]["body"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "FactSet")
        .count();
    assert_eq!(facts, raised_now.len().min(10));

    // The webhook: verified by the standardwebhooks library, the alerts as published.
    let hook_req = http.iter().find(|q| q["path"] == "/hook/maria").unwrap();
    assert_eq!(hook_req["verified"], true, "{hook_req}");
    assert_eq!(hook_req["body"]["type"], "pacer.alerts");
    let items: BTreeSet<String> = hook_req["body"]["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["alert_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(items, raised_now);
    assert!(hook_req["webhook_id"].as_str().unwrap().starts_with("dl-"));

    // The weekly digest: every rep of north by name, in text and HTML.
    let digest_mail = mail
        .iter()
        .find(|m| m["subject"].as_str().unwrap().contains("digest"))
        .unwrap();
    let subject = digest_mail["subject"].as_str().unwrap();
    assert!(
        subject.contains("Weekly digest · team north · 2026-W48"),
        "{subject}"
    );
    let (_, digest) = api(port, &admin, "GET", "/v1/digest/north?week=2026-W48", None);
    let reps = digest["reps"].as_array().expect("the digest's reps");
    assert!(reps.len() >= 3);
    let (dtext, dhtml) = (
        digest_mail["text"].as_str().unwrap(),
        digest_mail["html"].as_str().unwrap(),
    );
    for rep in reps {
        let name = rep["name"].as_str().unwrap();
        assert!(
            dtext.contains(name) && dhtml.contains(name),
            "{name} in the digest email"
        );
        assert!(
            dtext.contains(rep["reason"].as_str().unwrap()),
            "why talk to {name}"
        );
    }
    // Rendered in a real browser, at a laptop's and a phone's width.
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/web-screenshots/deliveries");
    std::fs::create_dir_all(&shots).unwrap();
    std::fs::write(shots.join("digest-email.html"), dhtml).unwrap();
    std::fs::write(shots.join("alerts-email.html"), html).unwrap();
    for name in ["digest-email", "alerts-email"] {
        let out = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/deliver/screenshot.py"))
            .arg(shots.join(format!("{name}.html")))
            .arg(shots.join(name))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for size in ["laptop", "phone"] {
            let png = std::fs::metadata(shots.join(format!("{name}-{size}.png"))).unwrap();
            assert!(
                png.len() > 10_000,
                "a screenshot of the {name} at {size} width"
            );
        }
    }

    // Her subscriptions in the web app, in a real browser: listed, one added by the
    // form and removed again, a team outside her scope refused.
    let out = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/deliver/subscriptions_page.py"))
        .args([
            "--url",
            &format!("http://127.0.0.1:{port}"),
            "--user",
            "maria",
        ])
        .args(["--password", "maria-password-2026", "--count", "5"])
        .args(["--slack", &r.url("/slack/web"), "--out"])
        .arg(&shots)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The operator's view: five deliveries sent.
    let (_, listed) = api(port, &admin, "GET", "/v1/deliveries?state=sent", None);
    assert_eq!(listed["count"], 5, "{listed:#}");
    let (code, _) = api(port, &maria, "GET", "/v1/deliveries", None);
    assert_eq!(code, 403, "a manager does not operate the service");
    // A restart sends nothing again.
    server.stop();
    let _server = serve(&data, &cfg, "", port);
    std::thread::sleep(Duration::from_millis(2000));
    let (http, mail) = r.received();
    assert_eq!(
        (http.len(), mail.len()),
        (3, 2),
        "nothing is sent twice after a restart"
    );
}

#[test]
fn a_failing_receiver_gets_one_message_under_one_key_and_a_gone_one_stops_its_subscription() {
    let r = Receivers::start();
    let (_tmp, data, cfg, admin) = org(&r, "give_up_after_s = 5\n");
    user_token(&data, "maria", "manager", &["--teams", "north"]);
    let _email = subscribe(
        &data,
        &cfg,
        &[
            "--user",
            "maria",
            "--email",
            "maria@example.com",
            "--rule",
            "low_coverage",
        ],
    );
    // The operator's own subscriptions (not maria's: she hears of her stopped one).
    let flaky = subscribe(
        &data,
        &cfg,
        &[
            "--user",
            "root",
            "--team",
            "north",
            "--webhook",
            &r.url("/hook/flaky"),
            "--secret",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ],
    );
    r.control(
        "secret",
        json!({"path": "/hook/flaky", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}),
    );
    r.control(
        "answers",
        json!({"path": "/hook/flaky", "answers": [503, 500, 429]}),
    );
    let gone = subscribe(
        &data,
        &cfg,
        &["--user", "maria", "--slack", &r.url("/slack/gone")],
    );
    r.control("answers", json!({"path": "/slack/gone", "answers": [410]}));
    // An address the SMTP server does not know: a bounce (550 5.1.1 at RCPT TO).
    r.control("bounce", json!({"address": "left-the-company@example.com"}));
    let bounced = subscribe(
        &data,
        &cfg,
        &[
            "--user",
            "maria",
            "--email",
            "left-the-company@example.com",
            "--team",
            "north",
        ],
    );
    let down = subscribe(
        &data,
        &cfg,
        &[
            "--user",
            "root",
            "--team",
            "north",
            "--ms-teams",
            &r.url("/teams/down"),
        ],
    );
    r.control("answers", json!({"path": "/teams/down", "default": 503}));
    let port = free_port();
    let server = serve(&data, &cfg, "", port);
    tick(port, &admin, MONDAY);

    // Three failures (5xx, then 429 with Retry-After), then it takes it: every try
    // carries the same webhook-id, each verifies, and it is taken once.
    r.wait_for("the flaky receiver takes the message", 30, |http, _| {
        http.iter()
            .any(|q| q["path"] == "/hook/flaky" && q["status"] == 200)
    });
    // The gone receiver's subscription is stopped, and maria hears of it by email.
    r.wait_for(
        "the notices about the gone Slack webhook and the bounce",
        30,
        |_, mail| {
            mail.iter()
                .filter(|m| m["subject"].as_str().unwrap().contains("stopped"))
                .count()
                >= 2
        },
    );
    // The receiver that stays down is given up after give_up_after_s.
    let deadline = Instant::now() + Duration::from_secs(30);
    let failed = loop {
        let (_, failed) = api(port, &admin, "GET", "/v1/deliveries?state=failed", None);
        if failed["count"] == 3 {
            break failed;
        }
        assert!(
            Instant::now() < deadline,
            "three failed deliveries: {failed:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_millis(1500));
    let flaky_reqs = r.requests_to("/hook/flaky");
    let statuses: Vec<i64> = flaky_reqs
        .iter()
        .map(|q| q["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [503, 500, 429, 200], "{flaky_reqs:#?}");
    let keys: BTreeSet<&str> = flaky_reqs
        .iter()
        .map(|q| q["webhook_id"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 1, "one idempotency key for every try: {keys:?}");
    assert!(
        flaky_reqs.iter().all(|q| q["verified"] == true),
        "{flaky_reqs:#?}"
    );
    // A 503 and a 429 came with Retry-After: 1; the next try waited for it (the
    // configured backoff alone is at most 600 ms).
    let at: Vec<f64> = flaky_reqs
        .iter()
        .map(|q| q["at"].as_f64().unwrap())
        .collect();
    for (i, gap) in at.windows(2).map(|w| w[1] - w[0]).enumerate() {
        if matches!(statuses[i], 503 | 429) {
            assert!(
                gap >= 0.95,
                "try {} came {gap:.2} s after a Retry-After: 1",
                i + 2
            );
        }
    }

    let gone_reqs = r.requests_to("/slack/gone");
    assert_eq!(gone_reqs.len(), 1, "a 410 is not tried again");
    let subs = ok(pacer(&data)
        .args(["subscribe", "list", "--json"])
        .output()
        .unwrap());
    let subs: Value = serde_json::from_str(&subs).unwrap();
    let find = |id: &str| {
        subs["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap()
            .clone()
    };
    let reason = find(&gone)["disabled"]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(reason.contains("410"), "{reason}");
    let reason = find(&bounced)["disabled"]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(reason.contains("5.1.1"), "{reason}");
    assert!(find(&flaky)["disabled"].is_null() && find(&down)["disabled"].is_null());
    let (_, mail) = r.received();
    let notices: Vec<&Value> = mail
        .iter()
        .filter(|m| m["subject"].as_str().unwrap().contains("stopped"))
        .collect();
    for (sub, rcpt) in [
        (&gone, "maria@example.com"),
        (&bounced, "maria@example.com"),
    ] {
        let n = notices
            .iter()
            .find(|m| m["text"].as_str().unwrap().contains(sub.as_str()))
            .unwrap_or_else(|| panic!("a notice names {sub}: {notices:#?}"));
        assert_eq!(n["rcpt_tos"], json!([rcpt]));
    }
    assert!(
        !mail
            .iter()
            .any(|m| m["rcpt_tos"] == json!(["left-the-company@example.com"])),
        "nothing reached the unknown mailbox"
    );
    let states: BTreeMap<String, String> = failed["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["subscription"].as_str().unwrap().to_owned(),
                d["last_error"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(states[&gone].contains("410"), "{states:?}");
    assert!(states[&bounced].contains("5.1.1"), "{states:?}");
    assert!(
        states[&down].contains("given up") && states[&down].contains("503"),
        "{states:?}"
    );
    assert!(
        server
            .metrics()
            .contains("pacer_deliveries_failed_total{channel=\"teams\"} 1"),
        "{}",
        server.metrics()
    );
    // The operator's system alert says so.
    let (_, system) = api(port, &admin, "GET", "/v1/alerts?system=true", None);
    let failed_alert = system["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == "failed_deliveries")
        .cloned();
    assert_eq!(
        failed_alert.as_ref().map(|a| a["failed"].clone()),
        Some(json!(3)),
        "{system:#}"
    );

    // The operator retries the given-up one once the receiver is back: it arrives
    // with the key its failed tries had.
    let down_key = r.requests_to("/teams/down")[0]["webhook_id"]
        .as_str()
        .unwrap()
        .to_owned();
    r.control("answers", json!({"path": "/teams/down", "answers": []}));
    let out = ok(pacer(&data)
        .args([
            "deliveries",
            "retry",
            "--failed",
            "--http",
            &format!("http://127.0.0.1:{port}"),
            "--api-token",
            &admin,
        ])
        .output()
        .unwrap());
    assert!(out.contains("due again"), "{out}");
    r.wait_for("the retried delivery", 30, |http, _| {
        http.iter()
            .any(|q| q["path"] == "/teams/down" && q["status"] == 200)
    });
    let ok_req = r
        .requests_to("/teams/down")
        .into_iter()
        .find(|q| q["status"] == 200)
        .unwrap();
    assert_eq!(ok_req["webhook_id"].as_str().unwrap(), down_key);
}

#[test]
fn kill_9_with_50_deliveries_due_loses_none_and_sends_none_under_a_second_key() {
    let r = Receivers::start();
    let (_tmp, data, cfg, admin) = org(&r, "");
    const N: usize = 50;
    for i in 0..N {
        let path = format!("/hook/k{i:02}");
        subscribe(
            &data,
            &cfg,
            &[
                "--user",
                "root",
                "--webhook",
                &r.url(&path),
                "--secret",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "--team",
                "north",
            ],
        );
        r.control(
            "secret",
            json!({"path": path, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}),
        );
    }
    r.control("answers", json!({"path": "/hook/k*", "default": 503}));
    let port = free_port();
    let mut server = serve(&data, &cfg, "", port);
    tick(port, &admin, MONDAY);
    // All 50 due and tried at least once, none taken: kill -9.
    r.wait_for("a first try of each of the 50", 60, |http, _| {
        http.iter()
            .filter_map(|q| q["path"].as_str())
            .filter(|p| p.starts_with("/hook/k"))
            .collect::<BTreeSet<_>>()
            .len()
            == N
    });
    let (_, due) = api(port, &admin, "GET", "/v1/deliveries?state=due", None);
    assert_eq!(due["count"], N, "{due:#}");
    server.kill();
    r.control("answers", json!({"path": "/hook/k*", "answers": []}));
    server.spawn();
    server.wait_ready();
    r.wait_for("each of the 50 taken after the restart", 60, |http, _| {
        http.iter()
            .filter(|q| q["status"] == 200)
            .filter_map(|q| q["path"].as_str())
            .collect::<BTreeSet<_>>()
            .len()
            == N
    });

    // A second week's burst, and kill -9 the moment the tick is durable: before its
    // alerts can have been matched to subscriptions. They are made again from the log.
    tick(port, &admin, "2026-11-30T08:00:00Z");
    server.kill();
    server.spawn();
    server.wait_ready();
    r.wait_for(
        "each of the 50 takes the second week's message",
        60,
        |http, _| {
            let mut ok_keys: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
            for q in http.iter().filter(|q| q["status"] == 200) {
                ok_keys
                    .entry(q["path"].as_str().unwrap())
                    .or_default()
                    .insert(q["webhook_id"].as_str().unwrap());
            }
            ok_keys.len() == N && ok_keys.values().all(|k| k.len() == 2)
        },
    );
    std::thread::sleep(Duration::from_millis(2000));
    let http = r.requests_to("/hook/k");
    for i in 0..N {
        let path = format!("/hook/k{i:02}");
        let reqs: Vec<&Value> = http.iter().filter(|q| q["path"] == path.as_str()).collect();
        let taken: Vec<&str> = reqs
            .iter()
            .filter(|q| q["status"] == 200)
            .map(|q| q["webhook_id"].as_str().unwrap())
            .collect();
        let keys: BTreeSet<&str> = reqs
            .iter()
            .map(|q| q["webhook_id"].as_str().unwrap())
            .collect();
        assert_eq!(
            taken.len(),
            2,
            "{path}: each week's message taken once: {reqs:#?}"
        );
        assert_eq!(
            keys.len(),
            2,
            "{path}: no message under a second key: {reqs:#?}"
        );
        assert!(reqs.iter().all(|q| q["verified"] == true));
        // The same alert changes to every subscription.
        let first = &reqs.iter().find(|q| q["status"] == 200).unwrap()["body"]["data"]["items"];
        assert!(first.as_array().is_some_and(|a| !a.is_empty()));
    }
}

#[test]
fn with_nats_the_deliverer_consumes_the_alerts_stream_and_delivers_once() {
    let r = Receivers::start();
    let nats_dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(nats_dir.path());
    let (_tmp, data, cfg, admin) = org(&r, "");
    let sub = subscribe(
        &data,
        &cfg,
        &[
            "--user",
            "root",
            "--slack",
            &r.url("/slack/ops"),
            "--team",
            "north",
            "--severity-min",
            "warning",
        ],
    );
    let port = free_port();
    let mut server = serve(&data, &cfg, &nats.url(), port);
    tick(port, &admin, MONDAY);
    r.wait_for("the Slack message through PACER_ALERTS", 60, |http, _| {
        !http.is_empty()
    });
    // kill -9 and a restart: the consumer's acked messages are not delivered again.
    server.kill();
    server.spawn();
    server.wait_ready();
    std::thread::sleep(Duration::from_millis(3000));
    let reqs = r.requests_to("/slack/ops");
    assert_eq!(reqs.len(), 1, "{reqs:#?}");
    let text = reqs[0]["body"]["text"].as_str().unwrap();
    assert!(text.contains("north"), "{text}");
    for b in reqs[0]["body"]["blocks"].as_array().unwrap() {
        if b["type"] == "section" {
            assert!(
                !b["text"]["text"].as_str().unwrap().starts_with("*Info"),
                "severity ≥ warning only"
            );
        }
    }
    let (_, listed) = api(port, &admin, "GET", "/v1/deliveries", None);
    // The delivery was made by the process before the kill: its store is the data dir's.
    assert_eq!(
        listed["deliveries"][0]["subscription"],
        sub.as_str(),
        "{listed:#}"
    );
}
