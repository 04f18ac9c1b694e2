//! The webhook endpoints end to end, through real processes: `pacer serve --http`
//! as one process (webhooks → log → projections → alerts over HTTP and SSE), and
//! `pacer gateway` publishing to a real nats-server that is killed and restarted.
//! Payloads are the fixtures in the vendors' shapes (tests/fixtures/webhooks);
//! signatures are computed here from each vendor's documented formula.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use common::nats::{free_port, wait_drained, NatsServer, Serve};
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

fn get_json(port: u16, path: &str) -> Value {
    let resp = ureq::get(&format!("http://127.0.0.1:{port}{path}"))
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
}

fn one_process(extra_config: &str) -> OneProcess {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = tmp.path().join("pacer.toml");
    std::fs::write(&cfg, config(extra_config)).unwrap();
    let port = free_port();
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
    }
}

/// Reads server-sent events on a thread; sends each `(event, data)`.
fn subscribe(port: u16) -> mpsc::Receiver<(String, String)> {
    let (tx, rx) = mpsc::channel();
    let resp = ureq::get(&format!("http://127.0.0.1:{port}/v1/alerts/stream"))
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

#[test]
fn one_process_takes_every_crm_and_streams_the_alert() {
    let mut p = one_process("");
    let alerts = subscribe(p.port);

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
    let report = get_json(p.port, "/v1/report?month=2026-11&rep=ana&bucket=total");
    let rows = report.as_array().expect("report rows");
    assert_eq!(rows.len(), 1, "{report}");
    assert_eq!(rows[0]["actual"], "37500.00", "{report}");
    assert_eq!(rows[0]["plan"], "100000.00", "{report}");
    let new_customers = get_json(
        p.port,
        "/v1/report?month=2026-11&rep=ana&bucket=new_customer",
    );
    assert_eq!(new_customers[0]["actual"], "37500.00", "{new_customers}");
    let open = get_json(p.port, "/v1/alerts?status=open&rep=ana");
    let rules: Vec<&str> = open
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["rule"].as_str())
        .collect();
    assert!(rules.contains(&"behind_pace"), "{open}");
    let digest = get_json(p.port, "/v1/digest/north");
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

    // No credentials, a wrong token: 401.
    assert_eq!(
        post(p.port, "/v1/events", std::slice::from_ref(&json_ct), event).status,
        401
    );
    let wrong = ("authorization", "Bearer native-token-wrong-000".to_owned());
    assert_eq!(
        post(p.port, "/v1/events", &[json_ct.clone(), wrong], event).status,
        401
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
    // The org's events and the one signed activity; nothing refused got in.
    assert_eq!(events.len() as u64, before + 1, "{events:#?}");
}

#[test]
fn a_crm_retry_after_a_broker_outage_is_stored_once() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("pacer.toml");
    std::fs::write(&cfg, config("")).unwrap();
    let mut nats = NatsServer::start(&tmp.path().join("nats"));
    let gw_data = tmp.path().join("gateway-data");
    let mut gateway = Serve::start_with("gateway", &gw_data, &cfg, &nats.url(), &[]);
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

    // The engine consumes what the gateway published: each event once.
    let data = tmp.path().join("data");
    let mut serve = Serve::start(&data, &cfg, &nats.url());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        // The gateway published each event once, whatever the outage cost it.
        let mut stream = js.get_stream("PACER_EVENTS").await.unwrap();
        assert_eq!(stream.info().await.unwrap().state.messages, 2);
        wait_drained(&js, Duration::from_secs(60)).await;
    });
    assert_eq!(serve.stop(), Some(0), "{}", serve.output());
    let events = log_events(&data);
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
