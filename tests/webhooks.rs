//! The webhook endpoints end to end, through real processes: `pacer serve --http`
//! as one process (webhooks → log → projections → alerts over HTTP and SSE), and
//! `pacer gateway` publishing to a real nats-server that is killed and restarted.
//! Payloads are the fixtures in the vendors' shapes (tests/fixtures/webhooks);
//! signatures are computed here from each vendor's documented formula.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use common::nats::{
    connect_js, free_port, http_get, stream_messages, wait_drained, NatsServer, Serve,
};
use common::*;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

const HUBSPOT_SECRET: &str = "hs-client-secret-2f6c";
const PUBLIC_URL: &str = "https://pacer.example.com";
const TOKEN: &str = "native-token-0123456789";
const SF_TOKEN: &str = "sf-endpoint-token-4711";
/// The Standard Webhooks specification's example secret.
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// EUR, Berlin. One rep, ana, is every CRM's owner of the fixtures' deals.
fn config(extra: &str) -> String {
    format!(
        r#"[org]
currency = "EUR"
timezone = "Europe/Berlin"

[serve]
tick_interval_s = 0

[webhooks]
body_bytes_max = 65536

[webhooks.native]
bearer_tokens = ["{TOKEN}"]
secrets = ["{WHSEC}"]

[webhooks.hubspot]
client_secrets = ["{HUBSPOT_SECRET}"]
public_url = "{PUBLIC_URL}"
owners = {{ "51234567" = "ana" }}

[webhooks.pipedrive]
user = "pipedrive"
password = "pd-pass-77"
owners = {{ "9" = "ana" }}

[webhooks.salesforce]
organization_id = "00D5g000004EXAMEAS"
endpoint_token = "{SF_TOKEN}"
owners = {{ "0055g00000AbCdEAAA" = "ana" }}
{extra}"#
    )
}

fn fixture(path: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/webhooks")
        .join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn hmac_b64(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for p in parts {
        mac.update(p);
    }
    B64.encode(mac.finalize().into_bytes())
}

/// A response: status, headers we look at, body.
struct Reply {
    status: u16,
    retry_after: Option<String>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// A POST to the one process, with these headers and a 30 s timeout.
fn request(port: u16, path: &str, headers: &[(&str, String)]) -> ureq::Request {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build();
    let mut req = agent.post(&format!("http://127.0.0.1:{port}{path}"));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    req
}

/// The answer to a request, whatever its status; a transport error fails the test.
fn reply(path: &str, sent: Result<ureq::Response, ureq::Error>) -> Reply {
    let resp = match sent {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("POST {path}: {e}"),
    };
    Reply {
        status: resp.status(),
        retry_after: resp.header("retry-after").map(str::to_owned),
        body: resp.into_string().unwrap(),
    }
}

fn post(port: u16, path: &str, headers: &[(&str, String)], body: &[u8]) -> Reply {
    reply(path, request(port, path, headers).send_bytes(body))
}

/// [`post`] with a body of unknown length (`Transfer-Encoding: chunked`).
fn post_chunked(port: u16, path: &str, headers: &[(&str, String)], body: &[u8]) -> Reply {
    reply(path, request(port, path, headers).send(body))
}

/// Sends only the head of a request declaring `Expect: 100-continue` and a body of
/// `body_bytes`, and returns the status line the server answers with.
fn expect_continue_status(port: u16, path: &str, body_bytes: usize) -> String {
    use std::io::{BufRead, BufReader, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        conn,
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
         authorization: Bearer {TOKEN}\r\ncontent-length: {body_bytes}\r\n\
         expect: 100-continue\r\n\r\n"
    )
    .unwrap();
    let mut line = String::new();
    BufReader::new(conn).read_line(&mut line).unwrap();
    line
}

/// A GET as the one process's admin.
fn get_json(p: &OneProcess, path: &str) -> Value {
    let resp = ureq::get(&format!("http://127.0.0.1:{}{path}", p.port))
        .set("authorization", &format!("Bearer {}", p.admin))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    serde_json::from_str(&resp.into_string().unwrap()).unwrap()
}

fn native(port: u16, lines: &str) -> Reply {
    post(
        port,
        "/v1/events",
        &[
            ("content-type", "application/x-ndjson".into()),
            ("authorization", format!("Bearer {TOKEN}")),
        ],
        lines.as_bytes(),
    )
}

/// HubSpot's v3 signature of a POST to the public URL, at `ts_ms`.
fn hubspot_headers(body: &[u8], ts_ms: i64, secret: &str) -> Vec<(&'static str, String)> {
    let ts = ts_ms.to_string();
    let uri = format!("{PUBLIC_URL}/webhooks/hubspot");
    let sig = hmac_b64(
        secret.as_bytes(),
        &[b"POST", uri.as_bytes(), body, ts.as_bytes()],
    );
    vec![
        ("content-type", "application/json".into()),
        ("x-hubspot-signature-v3", sig),
        ("x-hubspot-request-timestamp", ts),
    ]
}

fn hubspot(port: u16, body: &[u8]) -> Reply {
    post(
        port,
        "/webhooks/hubspot",
        &hubspot_headers(body, now_ms(), HUBSPOT_SECRET),
        body,
    )
}

fn pipedrive(port: u16, body: &[u8], password: &str) -> Reply {
    post(
        port,
        "/webhooks/pipedrive",
        &[
            ("content-type", "application/json".into()),
            (
                "authorization",
                format!("Basic {}", B64.encode(format!("pipedrive:{password}"))),
            ),
        ],
        body,
    )
}

fn salesforce(port: u16, body: &[u8]) -> Reply {
    post(
        port,
        &format!("/webhooks/salesforce?token={SF_TOKEN}"),
        &[("content-type", "text/xml; charset=utf-8".into())],
        body,
    )
}

/// ana in team north, her November plan of 100 000.00, and the tick of Wednesday
/// 18 November 10:00 Berlin (working day 13 of 21): with nothing won she is behind.
const ORG: &str = r#"{"event_id":"r-ana","source":"hris","occurred_at":"2026-10-01T08:00:00Z","type":"rep_registered","rep":"ana","name":"Ana Silva","team":"north","manager":"maria","region":"emea"}
{"event_id":"fy27-v1","source":"finance","occurred_at":"2026-10-20T08:00:00Z","type":"plan_published","plan":"fy27","version":1,"basis":"top_down","horizon_start":"2026-11","effective_from":"2026-11","currency":"EUR","lines":[{"rep":"ana","month":"2026-11","bucket":"total","target":"100000"}]}
{"event_id":"t-1","source":"pacer","occurred_at":"2026-11-18T09:00:00Z","type":"clock_tick"}
"#;

struct OneProcess {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    port: u16,
    serve: Serve,
    /// An admin's API token.
    admin: String,
}

fn one_process(extra_config: &str) -> OneProcess {
    let (tmp, data) = temp_org(&config(extra_config));
    let cfg = tmp.path().join("pacer.toml");
    let port = free_port();
    let admin = user_token(&data, "root", "admin", &[]);
    let serve = Serve::start_with(
        "serve",
        &data,
        &cfg,
        "",
        &["--http".into(), format!("127.0.0.1:{port}")],
    );
    OneProcess {
        _tmp: tmp,
        data,
        port,
        serve,
        admin,
    }
}

/// Reads server-sent events on a thread, with a token; sends each `(event, data)`.
fn subscribe(port: u16, token: &str) -> mpsc::Receiver<(String, String)> {
    let (tx, rx) = mpsc::channel();
    let resp = ureq::get(&format!("http://127.0.0.1:{port}/v1/alerts/stream"))
        .set("authorization", &format!("Bearer {token}"))
        .call()
        .expect("the stream opens");
    std::thread::spawn(move || {
        let mut event = String::new();
        for line in BufReader::new(resp.into_reader()).lines() {
            let Ok(line) = line else { return };
            if let Some(e) = line.strip_prefix("event: ") {
                event = e.to_owned();
            } else if let Some(d) = line.strip_prefix("data: ") {
                if tx.send((event.clone(), d.to_owned())).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

fn count_type(events: &[Value], ty: &str) -> usize {
    events.iter().filter(|e| e["type"] == ty).count()
}

/// A copy of the config file `cfg` beside it, named `name`, with each `(from, to)`
/// replaced.
fn config_copy(cfg: &Path, name: &str, replace: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(cfg).unwrap();
    for (from, to) in replace {
        text = text.replace(from, to);
    }
    let copy = cfg.with_file_name(name);
    std::fs::write(&copy, text).unwrap();
    copy
}

/// `pacer gateway` publishing to a nats-server of its own, in a temp dir with the
/// config of [`config`].
struct Gateway {
    tmp: tempfile::TempDir,
    cfg: PathBuf,
    nats: NatsServer,
    /// The gateway's data dir.
    gw_data: PathBuf,
    gateway: Serve,
    /// The engine's data dir, for [`engine_log`].
    data: PathBuf,
}

fn gateway_over_nats() -> Gateway {
    let (tmp, data) = temp_org(&config(""));
    let cfg = tmp.path().join("pacer.toml");
    let nats = NatsServer::start(&tmp.path().join("nats"));
    let gw_data = tmp.path().join("gateway-data");
    let gateway = Serve::start_with("gateway", &gw_data, &cfg, &nats.url(), &[]);
    Gateway {
        tmp,
        cfg,
        nats,
        gw_data,
        gateway,
        data,
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Runtime::new().unwrap().block_on(f)
}

/// How many messages the stream `name` of `nats` holds.
fn messages_in(nats: &NatsServer, name: &str) -> u64 {
    block_on(async {
        let (_, js) = connect_js(&nats.url()).await;
        stream_messages(&js, name).await
    })
}

/// Runs the engine on `data` until it has consumed everything the stream holds,
/// stops it, and returns its log.
fn engine_log(data: &Path, cfg: &Path, nats: &NatsServer) -> Vec<Value> {
    let mut serve = Serve::start(data, cfg, &nats.url());
    block_on(async {
        let (_, js) = connect_js(&nats.url()).await;
        wait_drained(&js, Duration::from_secs(60)).await;
    });
    assert_eq!(serve.stop(), Some(0), "{}", serve.output());
    log_events(data)
}

#[test]
fn one_process_takes_every_crm_and_streams_the_alert() {
    let mut p = one_process("");
    let alerts = subscribe(p.port, &p.admin);

    // Pacer's own JSON: the org, the plan and the tick; the tick raises behind_pace.
    let r = native(p.port, ORG);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["events"], 3);
    let (event, data) = alerts
        .recv_timeout(Duration::from_secs(10))
        .expect("an alert arrives on the stream");
    assert_eq!(event, "alert");
    let alert: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(
        (
            alert["rule"].as_str(),
            alert["rep"].as_str(),
            alert["change"].as_str()
        ),
        (Some("behind_pace"), Some("ana"), Some("raised"))
    );

    // HubSpot: the deal's properties one by one (opened once enough is known), then
    // closedwon; the retry of the same payload changes nothing.
    let r = hubspot(p.port, &fixture("hubspot/deal_won_sequence.json"));
    assert_eq!(
        (r.status, r.json()["events"].as_u64()),
        (200, Some(1)),
        "{}",
        r.body
    );
    let won = fixture("hubspot/deal_closed_won.json");
    let r = hubspot(p.port, &won);
    assert_eq!(
        (r.status, r.json()["events"].as_u64()),
        (200, Some(1)),
        "{}",
        r.body
    );
    let retry = hubspot(p.port, &won);
    assert_eq!(retry.status, 200);
    assert_eq!(retry.json()["events"], 0);
    assert_eq!(retry.json()["retried"], 2);

    // Pipedrive v2: created, then updated to won.
    for f in [
        "pipedrive/v2_deal_create.json",
        "pipedrive/v2_deal_won.json",
    ] {
        let r = pipedrive(p.port, &fixture(f), "pd-pass-77");
        assert_eq!(r.status, 200, "{f}: {}", r.body);
    }

    // Salesforce Outbound Messages: answered with the SOAP Ack.
    for f in [
        "salesforce/opportunity_prospecting.xml",
        "salesforce/opportunity_closed_won.xml",
    ] {
        let r = salesforce(p.port, &fixture(f));
        assert_eq!(r.status, 200, "{f}: {}", r.body);
        assert!(r.body.contains("<Ack>true</Ack>"), "{}", r.body);
    }

    // The report over HTTP: three deals of 12 500.00 won in November.
    let report = get_json(&p, "/v1/report?month=2026-11&rep=ana&bucket=total");
    let rows = report.as_array().expect("report rows");
    assert_eq!(rows.len(), 1, "{report}");
    assert_eq!(rows[0]["actual"], "37500.00", "{report}");
    assert_eq!(rows[0]["plan"], "100000.00", "{report}");
    let new_customers = get_json(&p, "/v1/report?month=2026-11&rep=ana&bucket=new_customer");
    assert_eq!(new_customers[0]["actual"], "37500.00", "{new_customers}");
    let open = get_json(&p, "/v1/alerts?status=open&rep=ana");
    let rules: Vec<&str> = open
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["rule"].as_str())
        .collect();
    assert!(rules.contains(&"behind_pace"), "{open}");
    let digest = get_json(&p, "/v1/digest/north");
    assert_eq!(digest["reps"][0]["rep"], "ana", "{digest}");
    assert_eq!(digest["reps"][0]["status"], "needs_attention", "{digest}");

    assert_eq!(p.serve.stop(), Some(0), "{}", p.serve.output());
    let events = log_events(&p.data);
    assert_eq!(count_type(&events, "deal_won"), 3, "{events:#?}");
    assert_eq!(count_type(&events, "deal_opened"), 3);
    let won: Vec<&Value> = events.iter().filter(|e| e["type"] == "deal_won").collect();
    let hs = won.iter().find(|e| e["source"] == "hubspot").unwrap();
    // closedate 2026-11-26T23:00Z is the 27th in Berlin.
    assert_eq!(hs["closed_on"], "2026-11-27");
    assert_eq!(hs["deal"], "hubspot:62515:18274510231");
    let pd = won.iter().find(|e| e["source"] == "pipedrive").unwrap();
    assert_eq!(
        (pd["closed_on"].as_str(), pd["rep"].as_str()),
        (Some("2026-11-04"), Some("ana"))
    );
    let sf = won.iter().find(|e| e["source"] == "salesforce").unwrap();
    assert_eq!(sf["closed_on"], "2026-11-25");
}

#[test]
fn refusals_name_the_reason_and_store_nothing() {
    let mut p = one_process("");
    let before = {
        let r = native(p.port, ORG);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["events"].as_u64().unwrap()
    };
    let json_ct = ("content-type", "application/json".to_owned());
    let event = br#"{"event_id":"a-1","source":"crm","occurred_at":"2026-11-05T10:00:00Z","type":"activity_logged","rep":"ana","kind":"call"}"#;

    // No credentials, a wrong token: 401, saying what could be sent.
    let none = post(p.port, "/v1/events", std::slice::from_ref(&json_ct), event);
    assert_eq!(none.status, 401);
    assert!(
        none.body.contains("Authorization: Bearer") && none.body.contains("webhook-signature"),
        "{}",
        none.body
    );
    // A Standard Webhooks sender that forgot the signature is told so, not "no bearer".
    let unsigned = post(
        p.port,
        "/v1/events",
        &[
            json_ct.clone(),
            ("webhook-id", "msg_unsigned".into()),
            ("webhook-timestamp", "1700000000".into()),
        ],
        event,
    );
    assert_eq!(unsigned.status, 401);
    assert!(
        unsigned.body.contains("webhook-signature is missing")
            && !unsigned.body.contains("no bearer"),
        "{}",
        unsigned.body
    );
    let wrong = ("authorization", "Bearer native-token-wrong-000".to_owned());
    assert_eq!(
        post(p.port, "/v1/events", &[json_ct.clone(), wrong], event).status,
        401
    );
    // Two parts of one plan version that plan ana's November differently: the
    // second is refused, naming the clash.
    let part = |id: &str, target: &str| {
        format!(
            r#"{{"event_id":"{id}","source":"finance","occurred_at":"2026-10-20T08:00:00Z","type":"plan_published","plan":"fy27","version":5,"basis":"revision","horizon_start":"2026-11","effective_from":"2026-11","currency":"EUR","lines":[{{"rep":"ana","month":"2026-11","bucket":"total","target":"{target}"}}]}}"#
        )
    };
    let bearer = ("authorization", format!("Bearer {TOKEN}"));
    let r = post(
        p.port,
        "/v1/events",
        &[json_ct.clone(), bearer.clone()],
        part("part-a", "100").as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post(
        p.port,
        "/v1/events",
        &[json_ct.clone(), bearer.clone()],
        part("part-b", "200").as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body
            .contains("plans ana in 2026-11 differently from another part of plan fy27 version 5"),
        "{}",
        r.body
    );
    // Approving a plan is finance's, with the CLI: a sender may not.
    let approve = br#"{"event_id":"ap-1","source":"crm","occurred_at":"2026-11-05T10:00:00Z","type":"plan_approved","plan":"fy27","version":1,"by":"mallory"}"#;
    let r = post(
        p.port,
        "/v1/events",
        &[
            json_ct.clone(),
            ("authorization", format!("Bearer {TOKEN}")),
        ],
        approve,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("[0].type") && r.body.contains("pacer plan submit|approve|reject"),
        "{}",
        r.body
    );

    // Standard Webhooks: signed now → 200; stale, tampered → 401.
    let key = B64.decode(WHSEC.trim_start_matches("whsec_")).unwrap();
    let signed = |id: &str, ts: i64, body: &[u8]| {
        let sig = hmac_b64(
            &key,
            &[id.as_bytes(), b".", ts.to_string().as_bytes(), b".", body],
        );
        vec![
            json_ct.clone(),
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", format!("v1,{sig}")),
        ]
    };
    let now_s = now_ms() / 1000;
    let r = post(p.port, "/v1/events", &signed("msg_1", now_s, event), event);
    assert_eq!(
        (r.status, r.json()["events"].as_u64()),
        (200, Some(1)),
        "{}",
        r.body
    );
    let stale = post(
        p.port,
        "/v1/events",
        &signed("msg_2", now_s - 6 * 60, event),
        event,
    );
    assert_eq!(stale.status, 401, "{}", stale.body);
    let mut tampered = event.to_vec();
    tampered.extend_from_slice(b" ");
    let r = post(
        p.port,
        "/v1/events",
        &signed("msg_3", now_s, event),
        &tampered,
    );
    assert_eq!(r.status, 401, "{}", r.body);

    // A bad field: 400 naming it, and nothing of the batch stored.
    let bad = format!(
        "{}\n{}",
        r#"{"event_id":"a-2","source":"crm","occurred_at":"2026-11-05T10:00:00Z","type":"activity_logged","rep":"ana","kind":"call"}"#,
        r#"{"event_id":"w-9","source":"crm","occurred_at":"2026-11-05T10:00:00Z","type":"deal_won","rep":"ana","deal":"d","account":"a","customer_kind":"new","amount":"12.345","currency":"EUR","closed_on":"2026-11-05"}"#
    );
    let r = native(p.port, &bad);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["field"], "[1].amount", "{}", r.body);
    // Malformed JSON: 400; wrong content type: 415; over the limit: 413.
    assert_eq!(native(p.port, "{oops").status, 400);
    let text = ("content-type", "text/plain".to_owned());
    let bearer = ("authorization", format!("Bearer {TOKEN}"));
    assert_eq!(
        post(p.port, "/v1/events", &[text, bearer.clone()], event).status,
        415
    );
    // Over the limit: a client that sends the whole body still reads the 413,
    // whether it declares the length or streams it in chunks, rather than a
    // connection reset mid-upload. 1 MiB is past what socket buffers absorb.
    let big = vec![b' '; 1024 * 1024];
    let declared = post(
        p.port,
        "/v1/events",
        &[json_ct.clone(), bearer.clone()],
        &big,
    );
    assert_eq!(declared.status, 413, "{}", declared.body);
    assert!(declared.body.contains("65536"), "{}", declared.body);
    assert_eq!(
        post_chunked(p.port, "/v1/events", &[json_ct.clone(), bearer], &big).status,
        413
    );
    // A client that asks `Expect: 100-continue` hears the 413 before sending a byte.
    let head = expect_continue_status(p.port, "/v1/events", big.len());
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");

    // HubSpot: a wrong secret, a stale timestamp, a tampered body → 401.
    let body = fixture("hubspot/deal_won_sequence.json");
    let wrong = hubspot_headers(&body, now_ms(), "not-the-secret");
    assert_eq!(post(p.port, "/webhooks/hubspot", &wrong, &body).status, 401);
    let stale = hubspot_headers(&body, now_ms() - 6 * 60 * 1000, HUBSPOT_SECRET);
    assert_eq!(post(p.port, "/webhooks/hubspot", &stale, &body).status, 401);
    let mut changed = body.clone();
    changed.extend_from_slice(b"\n");
    let good = hubspot_headers(&body, now_ms(), HUBSPOT_SECRET);
    assert_eq!(
        post(p.port, "/webhooks/hubspot", &good, &changed).status,
        401
    );
    // Objects Pacer does not use are accepted and counted.
    let r = hubspot(p.port, &fixture("hubspot/mixed_objects.json"));
    assert_eq!(r.status, 200, "{}", r.body);
    // A contact, a company and an association; the deletion of a deal Pacer never
    // heard of tells nothing.
    assert_eq!(r.json()["ignored"], 3, "{}", r.body);
    assert_eq!(r.json()["events"], 0, "{}", r.body);

    // Pipedrive: the wrong password → 401. Salesforce: another org → 401 (a fault).
    let r = pipedrive(p.port, &fixture("pipedrive/v2_deal_create.json"), "guess");
    assert_eq!(r.status, 401);
    let other_org = String::from_utf8(fixture("salesforce/opportunity_prospecting.xml"))
        .unwrap()
        .replace("00D5g000004EXAMEAS", "00D5g000009OTHERAA");
    let r = salesforce(p.port, other_org.as_bytes());
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("Fault"), "{}", r.body);
    let no_token = post(
        p.port,
        "/webhooks/salesforce?token=guess",
        &[("content-type", "text/xml".into())],
        &fixture("salesforce/opportunity_prospecting.xml"),
    );
    assert_eq!(no_token.status, 401, "{}", no_token.body);

    assert_eq!(p.serve.stop(), Some(0), "{}", p.serve.output());
    let events = log_events(&p.data);
    // The org's events, the one signed activity and the first plan part; nothing
    // refused got in.
    assert_eq!(events.len() as u64, before + 2, "{events:#?}");
}

#[test]
fn a_crm_retry_after_a_broker_outage_is_stored_once() {
    let Gateway {
        tmp: _tmp,
        cfg,
        mut nats,
        gw_data: _,
        mut gateway,
        data,
    } = gateway_over_nats();
    let port = gateway.metrics_port;

    let r = hubspot(port, &fixture("hubspot/deal_won_sequence.json"));
    assert_eq!(
        (r.status, r.json()["events"].as_u64()),
        (200, Some(1)),
        "{}",
        r.body
    );

    // The broker goes away: the CRM is told to come back later.
    nats.kill();
    let won = fixture("hubspot/deal_closed_won.json");
    let r = hubspot(port, &won);
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.retry_after.is_some());

    // It comes back; the CRM retries (HubSpot: attemptNumber 1) until accepted.
    nats.restart();
    let retried = String::from_utf8(won)
        .unwrap()
        .replace("\"attemptNumber\":0", "\"attemptNumber\":1");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = hubspot(port, retried.as_bytes());
        if r.status == 200 {
            assert_eq!(r.json()["events"], 1, "{}", r.body);
            break;
        }
        assert_eq!(r.status, 503, "{}", r.body);
        assert!(
            Instant::now() < deadline,
            "never accepted again:\n{}",
            gateway.output()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // And once more, days later as far as the mirror knows: nothing new.
    let r = hubspot(port, retried.as_bytes());
    assert_eq!(
        (r.status, r.json()["events"].as_u64()),
        (200, Some(0)),
        "{}",
        r.body
    );
    assert_eq!(gateway.stop(), Some(0), "{}", gateway.output());

    // The gateway published each event once, whatever the outage cost it.
    assert_eq!(messages_in(&nats, "PACER_EVENTS"), 2);
    // The engine consumes what the gateway published: each event once.
    let events = engine_log(&data, &cfg, &nats);
    assert_eq!(count_type(&events, "deal_opened"), 1, "{events:#?}");
    assert_eq!(count_type(&events, "deal_won"), 1, "{events:#?}");
    let won = events.iter().find(|e| e["type"] == "deal_won").unwrap();
    assert_eq!(
        (
            won["rep"].as_str(),
            won["amount"].as_str(),
            won["closed_on"].as_str()
        ),
        (Some("ana"), Some("12500.00"), Some("2026-11-27"))
    );
}

#[test]
fn concurrent_requests_about_one_deal_tell_it_once() {
    let mut p = one_process("");
    assert_eq!(native(p.port, ORG).status, 200);
    let r = hubspot(p.port, &fixture("hubspot/deal_won_sequence.json"));
    assert_eq!(r.status, 200, "{}", r.body);
    // Eight deliveries of "closedwon" for the same deal, each its own message (as
    // two HubSpot subscriptions, or a workflow and a person, would send), at once.
    let won = String::from_utf8(fixture("hubspot/deal_closed_won.json")).unwrap();
    let port = p.port;
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let body = won.replace("1187302265", &format!("9{i}187302265"));
            std::thread::spawn(move || hubspot(port, body.as_bytes()))
        })
        .collect();
    // What the requests newly stored: a request may also make durable again what a
    // racing one claimed (a duplicate), but only one stores the win.
    let stored: u64 = threads
        .into_iter()
        .map(|t| {
            let r = t.join().unwrap();
            assert_eq!(r.status, 200, "{}", r.body);
            let v = r.json();
            v["events"].as_u64().unwrap() - v["duplicates"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(p.serve.stop(), Some(0), "{}", p.serve.output());
    let events = log_events(&p.data);
    assert_eq!(count_type(&events, "deal_won"), 1, "{events:#?}");
    assert_eq!(count_type(&events, "event_voided"), 0, "{events:#?}");
    assert_eq!(stored, 1);
}

/// A HubSpot property change of deal `5000 + deal`.
fn hs_change(event_id: u64, deal: u64, property: &str, value: Value) -> Value {
    serde_json::json!({
        "eventId": event_id, "subscriptionId": 2881781, "portalId": 62515, "appId": 1160452,
        "occurredAt": 1_793_610_000_000_i64 + deal as i64,
        "subscriptionType": "deal.propertyChange", "attemptNumber": 0,
        "objectId": 5000 + deal, "propertyName": property, "propertyValue": value,
    })
}

/// `pacer dlq list --format json` (more arguments after): the letters.
fn dlq_letters(data: &std::path::Path, cfg: &std::path::Path, more: &[&str]) -> Vec<Value> {
    let cfg = cfg.to_str().unwrap();
    let mut args = vec!["--config", cfg, "dlq", "list", "--format", "json"];
    args.extend_from_slice(more);
    json_of(data, &args)["letters"].as_array().unwrap().clone()
}

/// Runs `pacer dlq retry --all` (more arguments after), killing one run with SIGKILL
/// after `kill_after_ms`, then running it to the end twice. Returns the two runs'
/// exit codes and outputs.
fn retry_killed_then_twice(
    data: &std::path::Path,
    cfg: &std::path::Path,
    more: &[&str],
    kill_after_ms: u64,
) -> Vec<(Option<i32>, String)> {
    let cfg = cfg.to_str().unwrap();
    let mut args = vec!["--config", cfg, "dlq", "retry", "--all"];
    args.extend_from_slice(more);
    let mut child = pacer(data)
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(kill_after_ms));
    child.kill().ok();
    child.wait().ok();
    (0..2)
        .map(|_| {
            let o = run(data, &args);
            (o.status.code(), format!("{}{}", stdout(&o), stderr(&o)))
        })
        .collect()
}

#[test]
fn a_crm_batch_keeps_its_good_items_and_its_bad_ones_wait_for_a_retry() {
    let seed = now_ms() as u64 % 250;
    eprintln!("seed (SIGKILL after ms): {seed}");
    // Dead letters raise the operator's alert at once.
    let mut p = one_process("[dlq]\nalert_after_s = 0\n");
    assert_eq!(native(p.port, ORG).status, 200);
    // 100 deals known to HubSpot: each with an amount (but 100) and a close date,
    // each owned by ana (but 98). 98 of them open.
    let mut setup = Vec::new();
    for d in 1..=100u64 {
        if d != 100 {
            setup.push(hs_change(10_000 + d, d, "amount", "1000".into()));
        }
        setup.push(hs_change(
            20_000 + d,
            d,
            "closedate",
            "1795734000000".into(),
        ));
        if d != 98 {
            setup.push(hs_change(
                30_000 + d,
                d,
                "hubspot_owner_id",
                "51234567".into(),
            ));
        }
    }
    let mut opened = 0;
    for half in setup.chunks(setup.len() / 2 + 1) {
        let r = hubspot(p.port, Value::Array(half.to_vec()).to_string().as_bytes());
        assert_eq!(r.status, 200, "{}", r.body);
        opened += r.json()["events"].as_u64().unwrap();
    }
    assert_eq!(opened, 98);

    // A batch of 100: 97 wins, and three items that cannot be taken: an owner no
    // rep maps to, a property value that is not text, an amount with three decimals.
    let mut batch: Vec<Value> = (1..=97u64)
        .map(|d| hs_change(40_000 + d, d, "dealstage", "closedwon".into()))
        .collect();
    batch.push(hs_change(50_098, 98, "hubspot_owner_id", "777".into()));
    batch.push(hs_change(
        50_099,
        99,
        "dealstage",
        serde_json::json!({"x": 1}),
    ));
    batch.push(hs_change(50_100, 100, "amount", "12.345".into()));
    // A minute after the deals were set up: a deal's history is told in the order
    // of its messages' times.
    for item in &mut batch {
        item["occurredAt"] = serde_json::json!(item["occurredAt"].as_i64().unwrap() + 60_000);
    }
    let batch = Value::Array(batch).to_string();
    let r = hubspot(p.port, batch.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    let answer = r.json();
    assert_eq!(answer["events"], 97, "{answer}");
    let rejected = answer["rejected"].as_array().unwrap();
    let summary: Vec<(u64, &str)> = rejected
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            (97, "owner_unmapped"),
            (98, "malformed"),
            (99, "invalid_value")
        ],
        "{answer}"
    );
    assert!(
        rejected[0]["error"].as_str().unwrap().contains("\"777\""),
        "{answer}"
    );
    assert_eq!(rejected[1]["field"], "[98].propertyValue", "{answer}");
    assert!(
        rejected[2]["error"].as_str().unwrap().contains("12.345"),
        "{answer}"
    );
    // The CRM retries the same batch: nothing new stored, the same three letters.
    let again = hubspot(p.port, batch.as_bytes()).json();
    assert_eq!(
        (again["events"].as_u64(), again["retried"].as_u64()),
        (Some(0), Some(97))
    );

    // A Pipedrive activity done by an unmapped owner; native events, partly bad.
    let activity = String::from_utf8(fixture("pipedrive/v2_activity_done.json"))
        .unwrap()
        .replace("\"owner_id\": 9", "\"owner_id\": 77");
    let r = pipedrive(p.port, activity.as_bytes(), "pd-pass-77");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["rejected"][0]["reason"],
        "owner_unmapped",
        "{}",
        r.body
    );
    let mut lines: Vec<String> = (0..10)
        .map(|i| format!(r#"{{"event_id":"call-{i}","source":"crm","occurred_at":"2026-11-05T10:00:00Z","type":"activity_logged","rep":"ana","kind":"call"}}"#))
        .collect();
    lines.insert(4, r#"{"event_id":"w-bad","source":"crm","occurred_at":"2026-11-05T10:00:00Z","type":"deal_won","rep":"ana","deal":"d","account":"a","customer_kind":"new","amount":"12.345","currency":"EUR","closed_on":"2026-11-05"}"#.into());
    let body = lines.join("\n");
    let atomic = native(p.port, &body);
    assert_eq!(atomic.status, 400, "{}", atomic.body);
    let partial = post(
        p.port,
        "/v1/events?partial=true",
        &[
            ("content-type", "application/x-ndjson".into()),
            ("authorization", format!("Bearer {TOKEN}")),
        ],
        body.as_bytes(),
    );
    assert_eq!(partial.status, 200, "{}", partial.body);
    let partial = partial.json();
    assert_eq!(partial["events"], 10, "{partial}");
    assert_eq!(partial["rejected"][0]["index"], 4, "{partial}");
    assert_eq!(partial["rejected"][0]["field"], "[4].amount", "{partial}");

    // Nobody is left unaware: the API, the metrics, /healthz.
    let listed = get_json(&p, "/v1/dlq?crm=hubspot");
    assert_eq!(listed["count"], 3, "{listed}");
    let metrics = p.serve.metrics();
    assert!(
        metrics.contains("pacer_dlq_items{crm=\"hubspot\",reason=\"owner_unmapped\"} 1"),
        "{metrics}"
    );
    let health = http_get(p.port, "/healthz").unwrap();
    assert!(
        health.contains("ready\ndead letters waiting: 5"),
        "{health}"
    );
    let system = get_json(&p, "/v1/alerts?system=true");
    assert_eq!(system["alerts"][0]["rule"], "dead_letters", "{system}");
    assert_eq!(system["alerts"][0]["waiting"], 5, "{system}");
    assert_eq!(
        system["alerts"][0]["by_crm_and_reason"]["hubspot"]["owner_unmapped"],
        1
    );
    assert_eq!(p.serve.stop(), Some(0), "{}", p.serve.output());

    // They survive the stop; the owners get mapped; a retry is killed midway, then
    // run to the end twice.
    let letters = dlq_letters(&p.data, &p.serve.config, &[]);
    assert_eq!(letters.len(), 5, "{letters:#?}");
    let mapped = config_copy(
        &p.serve.config,
        "mapped.toml",
        &[
            (
                "owners = { \"51234567\" = \"ana\" }",
                "owners = { \"51234567\" = \"ana\", \"777\" = \"ana\" }",
            ),
            (
                "owners = { \"9\" = \"ana\" }",
                "owners = { \"9\" = \"ana\", \"77\" = \"ana\" }",
            ),
        ],
    );
    let runs = retry_killed_then_twice(&p.data, &mapped, &[], seed);
    // Three cannot be taken whatever the configuration: exit 3 each time.
    assert_eq!(runs[0].0, Some(3), "{}", runs[0].1);
    assert!(runs[1].1.contains("0 taken"), "{}", runs[1].1);
    let left = dlq_letters(&p.data, &mapped, &[]);
    let reasons: Vec<&str> = left.iter().map(|l| l["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons.len(), 3, "{left:#?}");
    assert!(
        left.iter().all(|l| l["attempts"].as_u64() >= Some(1)),
        "{left:#?}"
    );
    let events = log_events(&p.data);
    let about = |deal: &str, ty: &str| {
        events
            .iter()
            .filter(|e| e["type"] == ty && e["deal"] == deal)
            .count()
    };
    assert_eq!(about("hubspot:62515:5098", "deal_opened"), 1, "{events:#?}");
    assert_eq!(about("hubspot:62515:5100", "deal_opened"), 0);
    assert_eq!(count_type(&events, "deal_won"), 97);
    let activities = events
        .iter()
        .filter(|e| e["event_id"] == "pipedrive:4:activity:31:done")
        .count();
    assert_eq!(activities, 1);
    assert!(events.iter().all(|e| e["event_id"] != "w-bad"));

    // What cannot be fixed is dropped, with a reason.
    let cfg = mapped.to_str().unwrap();
    let mut args = vec![
        "--config",
        cfg,
        "dlq",
        "drop",
        "--reason",
        "fixed in the CRM",
    ];
    let ids: Vec<String> = left
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_owned())
        .collect();
    args.extend(ids.iter().map(String::as_str));
    let system = ok(run(&p.data, &["--config", cfg, "alerts", "--system"]));
    assert!(
        system.starts_with("WARNING dead_letters: 3 CRM items"),
        "{system}"
    );
    assert!(ok(run(&p.data, &args)).contains("dropped 3"));
    assert!(dlq_letters(&p.data, &mapped, &[]).is_empty());
    let system = ok(run(&p.data, &["--config", cfg, "alerts", "--system"]));
    assert!(
        system.starts_with("no system alerts (0 dead letters"),
        "{system}"
    );
    let no_letter = run(&p.data, &["--config", cfg, "dlq", "show", &ids[0]]);
    assert!(!no_letter.status.success());
    assert!(
        stderr(&no_letter).contains(&ids[0]),
        "{}",
        stderr(&no_letter)
    );
    let audit = std::fs::read_to_string(p.data.join("audit.jsonl")).unwrap();
    assert!(
        audit.contains("\"dlq.retry\"") && audit.contains("\"dlq.drop\""),
        "{audit}"
    );
    assert!(audit.contains("fixed in the CRM"), "{audit}");
}

/// A deal won by a HubSpot owner no rep maps to waits as a dead letter that says so;
/// once the owner is added to `owners` and the server restarted, the deal comes in by
/// itself, once, and stays once across another restart.
#[test]
fn a_deal_waiting_for_its_owner_comes_in_when_the_owner_is_mapped_and_the_server_restarts() {
    let mut p = one_process("");
    assert_eq!(native(p.port, ORG).status, 200);
    let deal = vec![
        hs_change(61_001, 61, "amount", "4200".into()),
        hs_change(61_002, 61, "closedate", "1795734000000".into()),
        hs_change(61_003, 61, "hubspot_owner_id", "777".into()),
        hs_change(61_004, 61, "dealstage", "closedwon".into()),
    ];
    let r = hubspot(p.port, Value::Array(deal).to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    let answer = r.json();
    assert_eq!(answer["events"], 0, "{answer}");
    assert_eq!(
        answer["rejected"][0]["reason"], "owner_unmapped",
        "{answer}"
    );
    assert!(
        answer["rejected"][0]["error"]
            .as_str()
            .unwrap()
            .contains("owner \"777\" is not mapped"),
        "{answer}"
    );
    assert_eq!(get_json(&p, "/v1/dlq")["count"], 1);
    assert!(p
        .serve
        .metrics()
        .contains("pacer_dlq_items{crm=\"hubspot\",reason=\"owner_unmapped\"} 1"));
    // A restart with the owner still unmapped leaves the letter as it was.
    assert_eq!(p.serve.stop(), Some(0), "{}", p.serve.output());
    p.serve.spawn();
    p.serve.wait_ready();
    std::thread::sleep(Duration::from_millis(500));
    let still = get_json(&p, "/v1/dlq");
    assert_eq!(still["count"], 1, "{still}");
    assert_eq!(still["letters"][0]["attempts"], 0, "{still}");
    assert_eq!(p.serve.stop(), Some(0), "{}", p.serve.output());

    // The owner is mapped; the server restarts and takes the deal in by itself.
    p.serve.config = config_copy(
        &p.serve.config,
        "mapped.toml",
        &[(
            "owners = { \"51234567\" = \"ana\" }",
            "owners = { \"51234567\" = \"ana\", \"777\" = \"ana\" }",
        )],
    );
    for _ in 0..2 {
        p.serve.spawn();
        p.serve.wait_ready();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while get_json(&p, "/v1/dlq")["count"] != 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let left = get_json(&p, "/v1/dlq");
        assert_eq!(left["count"], 0, "{left}\n{}", p.serve.output());
        assert_eq!(p.serve.stop(), Some(0), "{}", p.serve.output());
    }
    assert!(
        p.serve.output().contains("owner now mapped were taken in"),
        "{}",
        p.serve.output()
    );
    let events = log_events(&p.data);
    let won: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "deal_won" && e["deal"] == "hubspot:62515:5061")
        .collect();
    assert_eq!(won.len(), 1, "{events:#?}");
    assert_eq!(won[0]["rep"], "ana");
    assert_eq!(won[0]["amount"], "4200.00");
    let audit = std::fs::read_to_string(p.data.join("audit.jsonl")).unwrap();
    assert!(audit.contains("owner now mapped"), "{audit}");
}

/// With `[webhooks] unmapped_owner_grace_s`, a deal whose owner maps to no rep waits
/// in the mirror instead of becoming a dead letter at once: the answer says so, the
/// log, the metrics (a gauge of the deals waiting now) and `pacer dlq list --waiting`
/// too; once the owner is mapped and the server reloads its configuration (SIGHUP),
/// the deal is told from its mirror, once.
#[test]
fn a_deal_waiting_for_its_owner_is_seen_and_told_once_after_a_reload() {
    let mut p = one_process("");
    assert_eq!(p.serve.stop(), Some(0), "{}", p.serve.output());
    p.serve.config = config_copy(
        &p.serve.config,
        "graced.toml",
        &[(
            "body_bytes_max = 65536",
            "body_bytes_max = 65536\nunmapped_owner_grace_s = 3600",
        )],
    );
    p.serve.spawn();
    p.serve.wait_ready();
    assert_eq!(native(p.port, ORG).status, 200);
    // Sent now: the grace runs from the owner's change.
    let deal: Vec<Value> = [
        hs_change(71_001, 71, "amount", "900".into()),
        hs_change(71_002, 71, "closedate", "1795734000000".into()),
        hs_change(71_003, 71, "hubspot_owner_id", "777".into()),
    ]
    .into_iter()
    .map(|mut v| {
        v["occurredAt"] = serde_json::json!(now_ms());
        v
    })
    .collect();
    let r = hubspot(p.port, Value::Array(deal).to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    let answer = r.json();
    assert_eq!(answer["events"], 0, "{answer}");
    assert_eq!(answer["rejected"], serde_json::json!([]), "{answer}");
    assert_eq!(
        answer["waiting"][0]["deal"], "hubspot:62515:5071",
        "{answer}"
    );
    let reason = answer["waiting"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("owner \"777\" is not mapped to a rep")
            && reason.contains("becomes a dead letter in"),
        "{reason}"
    );
    // A Pipedrive deal and a Salesforce opportunity whose owners map to no rep, now.
    let now = chrono::DateTime::from_timestamp_millis(now_ms())
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut pd: Value = serde_json::from_slice(&fixture("pipedrive/v2_deal_create.json")).unwrap();
    pd["data"]["owner_id"] = serde_json::json!(77);
    pd["meta"]["timestamp"] = serde_json::json!(now);
    let r = pipedrive(p.port, pd.to_string().as_bytes(), "pd-pass-77");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["waiting"][0]["deal"],
        "pipedrive:4:17",
        "{}",
        r.body
    );
    let sf = sf_message(9_001, 1, &[9_001]).replace("2026-11-25T15:30:00.000Z", &now);
    let r = salesforce(p.port, sf.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    let metrics = p.serve.metrics();
    assert!(
        metrics.contains("pacer_webhook_answers_waiting_total{crm=\"hubspot\"} 1"),
        "{metrics}"
    );
    let gauge = "pacer_webhook_waiting{crm=\"hubspot\",reason=\"owner_unmapped\"} 1";
    assert!(metrics.contains(gauge), "{metrics}");
    for crm in ["pipedrive", "salesforce"] {
        let line = format!("pacer_webhook_waiting{{crm=\"{crm}\",reason=\"owner_unmapped\"}} 1");
        assert!(metrics.contains(&line), "{metrics}");
    }
    // Not a dead letter: listed with --waiting.
    assert_eq!(get_json(&p, "/v1/dlq")["count"], 0);
    let waiting = get_json(&p, "/v1/dlq?waiting=true");
    assert_eq!(waiting["count"], 3, "{waiting}");
    let fields: Vec<&str> = waiting["letters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["field"].as_str())
        .collect();
    assert!(
        fields.contains(&"deal hubspot:62515:5071.owner")
            && fields.contains(&"deal pipedrive:4:17.owner")
            && fields.contains(&"deal salesforce:00D5g000004EXAM:0065g0000009001AAA.owner"),
        "{waiting}"
    );
    let url = format!("http://127.0.0.1:{}", p.port);
    let listed = run(
        &p.data,
        &[
            "dlq",
            "list",
            "--waiting",
            "--http",
            &url,
            "--api-token",
            &p.admin,
        ],
    );
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success() && text.contains("owner_waiting") && text.contains("\"777\""),
        "{text}{}",
        String::from_utf8_lossy(&listed.stderr)
    );

    // A file that does not load changes nothing, and the operator is told why.
    let cfg = std::fs::read_to_string(&p.serve.config).unwrap();
    std::fs::write(&p.serve.config, format!("{cfg}\n[webhooks.hubspot\n")).unwrap();
    let reload = run(
        &p.data,
        &["config", "reload", "--http", &url, "--api-token", &p.admin],
    );
    let said = String::from_utf8_lossy(&reload.stderr);
    assert!(
        !reload.status.success() && said.contains("422") && said.contains("not reloaded"),
        "{said}"
    );
    assert_eq!(get_json(&p, "/v1/dlq?waiting=true")["count"], 3);

    // The owner is mapped in the same file, and the server told to read it again.
    let mapped = cfg
        .replace(
            "owners = { \"51234567\" = \"ana\" }",
            "owners = { \"51234567\" = \"ana\", \"777\" = \"ana\" }",
        )
        .replace(
            "owners = { \"9\" = \"ana\" }",
            "owners = { \"9\" = \"ana\", \"77\" = \"ana\" }",
        )
        .replace(
            "owners = { \"0055g00000AbCdEAAA\" = \"ana\" }",
            "owners = { \"0055g00000AbCdEAAA\" = \"ana\", \"0055g00000ZzZzZAAA\" = \"ana\" }",
        );
    assert_ne!(mapped, cfg);
    std::fs::write(&p.serve.config, mapped).unwrap();
    let pid = p.serve.child.as_ref().unwrap().id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while get_json(&p, "/v1/dlq?waiting=true")["count"] != 0 && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let left = get_json(&p, "/v1/dlq?waiting=true");
    assert_eq!(left["count"], 0, "{left}\n{}", p.serve.output());
    assert!(
        !p.serve.metrics().contains("pacer_webhook_waiting{"),
        "{}",
        p.serve.metrics()
    );
    // `pacer config reload` does what SIGHUP does: here, nothing is left to tell.
    let reload = run(
        &p.data,
        &["config", "reload", "--http", &url, "--api-token", &p.admin],
    );
    let said = String::from_utf8_lossy(&reload.stdout);
    assert!(
        reload.status.success() && said.contains("0 waiting deal(s)"),
        "{said}{}",
        String::from_utf8_lossy(&reload.stderr)
    );
    // A restart tells nothing twice.
    assert_eq!(p.serve.stop(), Some(0), "{}", p.serve.output());
    p.serve.spawn();
    p.serve.wait_ready();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(p.serve.stop(), Some(0), "{}", p.serve.output());
    let output = p.serve.output();
    assert!(output.contains("deal hubspot:62515:5071 waits"), "{output}");
    assert!(output.contains("pacer: SIGHUP: [webhooks] of"), "{output}");
    // Each deal told once, as it stands: open in HubSpot and Pipedrive, won in
    // Salesforce.
    let events = log_events(&p.data);
    for (deal, kind, amount) in [
        ("hubspot:62515:5071", "deal_opened", "900.00"),
        ("pipedrive:4:17", "deal_opened", "12500.00"),
        (
            "salesforce:00D5g000004EXAM:0065g0000009001AAA",
            "deal_won",
            "2500.00",
        ),
    ] {
        let told: Vec<&Value> = events.iter().filter(|e| e["deal"] == deal).collect();
        assert_eq!(told.len(), 1, "{deal}: {events:#?}");
        assert_eq!(told[0]["type"], kind, "{deal}");
        assert_eq!(told[0]["rep"], "ana", "{deal}");
        assert_eq!(told[0]["amount"], amount, "{deal}");
    }
}

/// `n` Salesforce notifications of won Opportunities in one Outbound Message; those
/// in `unmapped` are owned by a user no rep maps to.
fn sf_message(first: usize, n: usize, unmapped: &[usize]) -> String {
    let mut notes = String::new();
    for i in first..first + n {
        let owner = if unmapped.contains(&i) {
            "0055g00000ZzZzZAAA"
        } else {
            "0055g00000AbCdEAAA"
        };
        notes.push_str(&format!(
            "<Notification><Id>04l5g{i:013}</Id>\
             <sObject xsi:type=\"sf:Opportunity\" xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\">\
             <sf:Id>0065g{i:010}AAA</sf:Id><sf:Amount>2500.0</sf:Amount>\
             <sf:CloseDate>2026-11-25</sf:CloseDate><sf:IsClosed>true</sf:IsClosed>\
             <sf:IsWon>true</sf:IsWon><sf:OwnerId>{owner}</sf:OwnerId>\
             <sf:StageName>Closed Won</sf:StageName>\
             <sf:SystemModstamp>2026-11-25T15:30:00.000Z</sf:SystemModstamp></sObject></Notification>"
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body>\
         <notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\">\
         <OrganizationId>00D5g000004EXAMEAS</OrganizationId><ActionId>04k5g000000ABCDAA0</ActionId>\
         {notes}</notifications></soapenv:Body></soapenv:Envelope>"
    )
}

#[test]
fn through_nats_a_salesforce_message_is_acked_once_its_valid_items_are_durable() {
    let seed = now_ms() as u64 % 400;
    eprintln!("seed (SIGKILL after ms): {seed}");
    let Gateway {
        tmp: _tmp,
        cfg,
        mut nats,
        gw_data,
        mut gateway,
        data,
    } = gateway_over_nats();
    let port = gateway.metrics_port;

    // 100 notifications, three owned by an unmapped user: acknowledged, the three
    // kept in the PACER_DLQ stream.
    let message = sf_message(0, 100, &[7, 50, 93]);
    assert!(message.len() < 65536, "{}", message.len());
    let r = salesforce(port, message.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("<Ack>true</Ack>"), "{}", r.body);
    let url = nats.url();
    let letters = dlq_letters(&gw_data, &cfg, &["--nats", &url, "--crm", "salesforce"]);
    let indices: Vec<u64> = letters
        .iter()
        .map(|l| l["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indices, [7, 50, 93], "{letters:#?}");
    assert!(letters[0]["raw"]
        .as_str()
        .unwrap()
        .contains("0065g0000000007AAA"));
    let health = http_get(port, "/healthz").unwrap();
    assert!(health.contains("dead letters waiting: 3"), "{health}");

    // The store goes down: a message of valid notifications is not acknowledged,
    // so Salesforce keeps it; nothing of it is stored.
    assert_eq!(messages_in(&nats, "PACER_EVENTS"), 97);
    nats.kill();
    let later = sf_message(100, 5, &[]);
    let r = salesforce(port, later.as_bytes());
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(!r.body.contains("<Ack>true</Ack>"), "{}", r.body);
    nats.restart();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = salesforce(port, later.as_bytes());
        if r.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never acked:\n{}",
            gateway.output()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(gateway.stop(), Some(0), "{}", gateway.output());

    // The user gets mapped; the retry runs from the CLI against NATS, killed once.
    let mapped = config_copy(
        &cfg,
        "mapped.toml",
        &[(
            "owners = { \"0055g00000AbCdEAAA\" = \"ana\" }",
            "owners = { \"0055g00000AbCdEAAA\" = \"ana\", \"0055g00000ZzZzZAAA\" = \"ana\" }",
        )],
    );
    let runs = retry_killed_then_twice(&gw_data, &mapped, &["--nats", &url], seed);
    assert_eq!(runs[0].0, Some(0), "{}", runs[0].1);
    assert_eq!(
        (runs[1].0, runs[1].1.contains("retried 0")),
        (Some(0), true),
        "{}",
        runs[1].1
    );
    assert!(dlq_letters(&gw_data, &mapped, &["--nats", &url]).is_empty());

    // The engine consumes: every won Opportunity once.
    let events = engine_log(&data, &mapped, &nats);
    let mut won: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "deal_won")
        .map(|e| e["deal"].as_str().unwrap())
        .collect();
    assert_eq!(won.len(), 105, "{events:#?}");
    won.sort_unstable();
    won.dedup();
    assert_eq!(won.len(), 105);
}

/// Two teams: north (ana, managed by maria) and south (bo, managed by sam), each rep
/// with a November plan of 100 000.00; no tick yet.
const TWO_TEAMS: &str = r#"{"event_id":"r-ana","source":"hris","occurred_at":"2026-10-01T08:00:00Z","type":"rep_registered","rep":"ana","name":"Ana Silva","team":"north","manager":"maria","region":"emea"}
{"event_id":"r-bo","source":"hris","occurred_at":"2026-10-01T08:00:00Z","type":"rep_registered","rep":"bo","name":"Bo Berg","team":"south","manager":"sam","region":"emea"}
{"event_id":"fy27-v1","source":"finance","occurred_at":"2026-10-20T08:00:00Z","type":"plan_published","plan":"fy27","version":1,"basis":"top_down","horizon_start":"2026-11","effective_from":"2026-11","currency":"EUR","lines":[{"rep":"ana","month":"2026-11","bucket":"total","target":"100000"},{"rep":"bo","month":"2026-11","bucket":"total","target":"100000"}]}
"#;

/// A request with a bearer token (or none): status and body.
fn get_as(port: u16, path: &str, token: Option<&str>) -> Reply {
    let mut req = ureq::get(&format!("http://127.0.0.1:{port}{path}"));
    if let Some(t) = token {
        req = req.set("authorization", &format!("Bearer {t}"));
    }
    reply(path, req.call())
}

fn post_as(port: u16, path: &str, headers: &[(&str, String)], body: &str) -> Reply {
    let mut req = ureq::post(&format!("http://127.0.0.1:{port}{path}"))
        .set("content-type", "application/json");
    for (k, v) in headers {
        req = req.set(k, v);
    }
    reply(path, req.send_string(body))
}

#[test]
fn every_route_asks_who_is_calling_and_a_manager_sees_only_their_teams() {
    let mut p = one_process("");
    let port = p.port;
    let bearer = |t: &str| ("authorization", format!("Bearer {t}"));
    let maria = user_token(&p.data, "maria", "manager", &[]);
    let fin = user_token(&p.data, "fin", "finance", &[]);
    let crm = user_token(&p.data, "crm-bot", "crm", &[]);
    // A token for a service user, sent to the native endpoint: it may send events.
    let r = post(
        port,
        "/v1/events",
        &[
            ("content-type", "application/x-ndjson".into()),
            bearer(&crm),
        ],
        TWO_TEAMS.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    // No credentials: 401 on every query, stream, operator and webhook route.
    for path in [
        "/v1/report?month=2026-11",
        "/v1/alerts",
        "/v1/digest/north",
        "/v1/alerts/stream",
        "/v1/dlq",
        "/metrics",
        "/v1/me",
    ] {
        let r = get_as(port, path, None);
        assert_eq!(r.status, 401, "{path}: {}", r.body);
    }
    for path in [
        "/v1/events",
        "/webhooks/hubspot",
        "/webhooks/pipedrive",
        "/webhooks/salesforce",
    ] {
        let r = post_as(port, path, &[], "[]");
        assert!(
            matches!(r.status, 401 | 415),
            "{path}: {} {}",
            r.status,
            r.body
        );
        assert_ne!(r.status, 200);
    }
    assert_eq!(post_as(port, "/v1/events", &[], "[]").status, 401);
    assert_eq!(get_as(port, "/healthz", None).status, 200);

    // maria manages north (ana names her): north yes; south, the org and bo no,
    // with the same answer for a team that does not exist.
    let status = |path: &str, t: &str| get_as(port, path, Some(t)).status;
    assert_eq!(status("/v1/report?month=2026-11&team=north", &maria), 200);
    assert_eq!(status("/v1/report?month=2026-11&rep=ana", &maria), 200);
    let south = get_as(port, "/v1/report?month=2026-11&team=south", Some(&maria));
    let nowhere = get_as(port, "/v1/report?month=2026-11&team=atlantis", Some(&maria));
    assert_eq!((south.status, nowhere.status), (403, 403));
    assert_eq!(south.body, nowhere.body);
    assert_eq!(status("/v1/report?month=2026-11", &maria), 403);
    assert_eq!(status("/v1/report?month=2026-11&rep=bo", &maria), 403);
    assert_eq!(
        status("/v1/report?month=2026-11&team=north&rep=bo", &maria),
        403
    );
    assert_eq!(status("/v1/digest/south", &maria), 403);
    assert_eq!(status("/v1/dlq", &maria), 403);
    assert_eq!(status("/metrics", &maria), 403);
    // Finance reads everything; a crm token reads nothing.
    assert_eq!(status("/v1/report?month=2026-11", &fin), 200);
    assert_eq!(status("/v1/report?month=2026-11&team=south", &fin), 200);
    assert_eq!(status("/v1/report?month=2026-11&team=north", &crm), 403);
    assert_eq!(status("/v1/alerts/stream", &crm), 403);

    // The streams: maria hears north's changes only, while south's change too.
    let maria_stream = subscribe(port, &maria);
    let admin_stream = subscribe(port, &p.admin);
    std::thread::sleep(Duration::from_millis(300));
    let tick = r#"{"event_id":"t-1","source":"pacer","occurred_at":"2026-11-18T09:00:00Z","type":"clock_tick"}"#;
    assert_eq!(native(port, tick).status, 200);
    let mut teams_heard = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !teams_heard.contains("south") || !teams_heard.contains("north") {
        let left = deadline.saturating_duration_since(Instant::now());
        let (_, data) = admin_stream
            .recv_timeout(left)
            .expect("the admin hears both teams");
        let v: Value = serde_json::from_str(&data).unwrap();
        teams_heard.insert(v["team"].as_str().unwrap().to_owned());
    }
    std::thread::sleep(Duration::from_millis(500));
    let maria_heard: Vec<Value> = maria_stream
        .try_iter()
        .map(|(_, d)| serde_json::from_str(&d).unwrap())
        .collect();
    assert!(!maria_heard.is_empty());
    assert!(
        maria_heard.iter().all(|v| v["team"] == "north"),
        "{maria_heard:#?}"
    );
    assert_eq!(status("/v1/digest/north", &maria), 200);
    assert_eq!(status("/v1/digest/south", &fin), 200);

    // Acks record who is logged in; another team's alert is out of reach.
    let alerts = get_json(&p, "/v1/alerts?status=open");
    let id_of = |rep: &str| {
        alerts
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["rep"] == rep)
            .map(|a| a["alert_id"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no alert for {rep}: {alerts}"))
    };
    let (ana_alert, bo_alert) = (id_of("ana"), id_of("bo"));
    let ack = |id: &str, headers: &[(&str, String)]| {
        post_as(
            port,
            &format!("/v1/alerts/{id}/ack"),
            headers,
            r#"{"note":"pipeline review Tuesday"}"#,
        )
    };
    assert_eq!(ack(&bo_alert, &[bearer(&maria)]).status, 403);
    assert_eq!(ack("al-nope", &[bearer(&maria)]).status, 403);

    // Log-in with a password: slowed when wrong; a session needs its CSRF token to
    // change anything.
    let password = "maria-long-password-4711";
    let set = run_with_stdin(
        &p.data,
        &["user", "reset", "maria"],
        &format!("{password}\n"),
    );
    assert!(set.status.success(), "{}", stderr(&set));
    let started = Instant::now();
    let wrong = post_as(
        port,
        "/v1/login",
        &[],
        r#"{"user":"maria","password":"guess-guess-guess"}"#,
    );
    assert_eq!(wrong.status, 401);
    assert!(started.elapsed() >= Duration::from_millis(250));
    let login = ureq::post(&format!("http://127.0.0.1:{port}/v1/login"))
        .set("content-type", "application/json")
        .send_string(&format!(r#"{{"user":"maria","password":"{password}"}}"#))
        .unwrap();
    let set_cookie = login.header("set-cookie").unwrap().to_owned();
    for attr in ["HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(set_cookie.contains(attr), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let csrf = serde_json::from_str::<Value>(&login.into_string().unwrap()).unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let with_cookie = ureq::get(&format!(
        "http://127.0.0.1:{port}/v1/report?month=2026-11&team=north"
    ))
    .set("cookie", &cookie)
    .call();
    assert_eq!(with_cookie.map(|r| r.status()).ok(), Some(200));
    assert_eq!(ack(&ana_alert, &[("cookie", cookie.clone())]).status, 403);
    let acked = ack(
        &ana_alert,
        &[("cookie", cookie.clone()), ("x-csrf-token", csrf)],
    );
    assert_eq!(
        (acked.status, acked.json()["by"].as_str()),
        (200, Some("maria")),
        "{}",
        acked.body
    );

    // A revoked token is refused at once; an expired one too.
    let list = ok(run(&p.data, &["token", "list", "--user", "maria"]));
    let maria_id = list.split('\t').next().unwrap().to_owned();
    ok(run(&p.data, &["token", "revoke", &maria_id]));
    assert_eq!(status("/v1/report?month=2026-11&team=north", &maria), 401);
    ok(run(&p.data, &["user", "add", "old", "--role", "finance"]));
    let old = ok(run(
        &p.data,
        &[
            "token",
            "create",
            "--user",
            "old",
            "--expires",
            "2020-01-01",
        ],
    ));
    assert_eq!(status("/v1/report?month=2026-11", old.trim()), 401);

    assert_eq!(p.serve.stop(), Some(0), "{}", p.serve.output());
    let events = log_events(&p.data);
    let ack_event = events
        .iter()
        .find(|e| e["type"] == "alert_acknowledged")
        .expect("the ack is in the log");
    assert_eq!(ack_event["by"], "maria");
    let audit = std::fs::read_to_string(p.data.join("audit.jsonl")).unwrap();
    assert!(
        audit.contains("\"action\":\"alert.ack\"") && audit.contains("\"token.revoke\""),
        "{audit}"
    );

    // No secret anywhere: not the data dir (users file included), not the output.
    let secrets = [
        maria.as_str(),
        fin.as_str(),
        crm.as_str(),
        p.admin.as_str(),
        password,
    ];
    let mut files = vec![p.data.clone()];
    let mut haystack = p.serve.output().into_bytes();
    while let Some(f) = files.pop() {
        if f.is_dir() {
            files.extend(std::fs::read_dir(&f).unwrap().map(|e| e.unwrap().path()));
        } else {
            haystack.extend(std::fs::read(&f).unwrap());
        }
    }
    for secret in secrets {
        let found = haystack
            .windows(secret.len())
            .any(|w| w == secret.as_bytes());
        assert!(!found, "a secret was written somewhere");
    }
}

/// With gateways, the deals waiting for their owner are indexed in the deals bucket:
/// marked, listed (again with what is said now), and told, on a real nats-server.
#[test]
fn the_waiting_index_lives_in_the_deals_bucket_with_nats() {
    use pacer_engine::webhook::mirror::{Mirror, WaitingDeal};
    use pacer_engine::webhook::{Crm, DealKey};
    let tmp = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&tmp.path().join("nats"));
    block_on(async {
        let (_, js) = connect_js(&nats.url()).await;
        let mirror = Mirror::kv(&js, "pacer", 1).await.unwrap();
        assert_eq!(mirror.waiting().await.unwrap(), []);
        let key = |deal: &str| DealKey {
            crm: Crm::Salesforce,
            tenant: "00D5g000004EXAM".into(),
            deal: deal.into(),
        };
        let waiting = |deal: &str, owner: &str| WaitingDeal {
            crm: "salesforce".into(),
            tenant: "00D5g000004EXAM".into(),
            deal: deal.into(),
            owner: owner.into(),
            reason: format!("owner {owner:?} is not mapped to a rep"),
            since_ms: 1_795_000_000_000,
        };
        mirror
            .wait(&waiting("006B", "005X"), &key("006B"))
            .await
            .unwrap();
        mirror
            .wait(&waiting("006A", "005X"), &key("006A"))
            .await
            .unwrap();
        mirror
            .wait(&waiting("006A", "005Y"), &key("006A"))
            .await
            .unwrap();
        let listed = mirror.waiting().await.unwrap();
        assert_eq!(listed, [waiting("006A", "005Y"), waiting("006B", "005X")]);
        mirror.unwait(&key("006A")).await.unwrap();
        assert_eq!(mirror.waiting().await.unwrap(), [waiting("006B", "005X")]);
        // A deal record is not a waiting deal.
        let (record, version) = mirror.load(&key("006C")).await.unwrap();
        assert!(mirror
            .store(&key("006C"), &record, &version)
            .await
            .unwrap()
            .is_some());
        assert_eq!(mirror.waiting().await.unwrap().len(), 1);
    });
}

/// What `pacer serve --http` answers is what the CLI answers, on random demo
/// organisations: every report (by team, rep, bucket, month, view), the alerts and a
/// digest, asked twice (the second answer kept from the first).
#[test]
fn served_answers_are_the_clis_on_random_demo_logs() {
    let seed = test_seed("demo", now_ms() as u64 % 10_000);
    let (tmp, data) = temp_org(EUR);
    demo(&data, &["--reps", "9", "--seed", &seed.to_string()]);
    let admin = user_token(&data, "root", "admin", &[]);
    let port = free_port();
    let mut serve = Serve::start_with(
        "serve",
        &data,
        &tmp.path().join("pacer.toml"),
        "",
        &["--http".into(), format!("127.0.0.1:{port}")],
    );
    let served = |path: &str| -> Value {
        let resp = ureq::get(&format!("http://127.0.0.1:{port}{path}"))
            .set("authorization", &format!("Bearer {admin}"))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(resp.content_type(), "application/json", "{path}");
        serde_json::from_str(&resp.into_string().unwrap()).unwrap()
    };
    let org = served("/v1/report?month=2026-11");
    let team = org[0]["team"].as_str().unwrap().to_owned();
    let rep = org[org.as_array().unwrap().len() - 1]["rep"]
        .as_str()
        .unwrap()
        .to_owned();
    let questions: Vec<(String, Vec<String>)> = vec![
        (
            "/v1/report?month=2026-11".into(),
            vec!["report", "--month", "2026-11"],
        ),
        (
            format!("/v1/report?month=2026-10&team={team}"),
            vec!["report", "--month", "2026-10", "--team", &team],
        ),
        (
            format!("/v1/report?month=2026-11&team={team}&bucket=total"),
            vec![
                "report", "--month", "2026-11", "--team", &team, "--bucket", "total",
            ],
        ),
        (
            format!("/v1/report?month=2026-12&rep={rep}"),
            vec!["report", "--month", "2026-12", "--rep", &rep],
        ),
        (
            format!("/v1/report?month=2026-11&team={team}&view=productivity"),
            vec![
                "report",
                "--view",
                "productivity",
                "--month",
                "2026-11",
                "--team",
                &team,
            ],
        ),
        ("/v1/alerts".into(), vec!["alerts"]),
        (
            format!("/v1/alerts?status=all&team={team}"),
            vec!["alerts", "--status", "all", "--team", &team],
        ),
        (
            format!("/v1/digest/{team}"),
            vec!["digest", "--team", &team],
        ),
    ]
    .into_iter()
    .map(|(path, args)| (path, args.into_iter().map(str::to_owned).collect()))
    .collect();
    let mut answers = Vec::new();
    for (path, _) in &questions {
        answers.push((served(path), served(path)));
    }
    assert_eq!(serve.stop(), Some(0), "{}", serve.output());
    for ((path, args), (first, again)) in questions.iter().zip(answers) {
        assert_eq!(first, again, "seed {seed}: {path} asked again");
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        args.extend(["--format", "json"]);
        let cli = json_of(&data, &args);
        assert_eq!(
            first,
            cli,
            "seed {seed}: {path} vs pacer {}",
            args.join(" ")
        );
    }
}
