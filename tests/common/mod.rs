//! Shared helpers of the integration tests: run the real `pacer` binary against a
//! temporary data dir and read what it printed.

#![allow(dead_code)]

pub mod nats;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub fn pacer_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pacer"))
}

/// A `pacer` command for `data_dir`, with no config file from the working directory.
pub fn pacer(data_dir: &Path) -> Command {
    let mut c = Command::new(pacer_bin());
    c.arg("--data-dir").arg(data_dir);
    c.current_dir(data_dir.parent().expect("data dirs live inside a temp dir"));
    c.env_remove("PACER_DATA_DIR");
    c
}

/// Runs `pacer ARGS...` and returns its output.
pub fn run(data_dir: &Path, args: &[&str]) -> Output {
    pacer(data_dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("pacer runs")
}

/// Runs `pacer ARGS...` with `stdin` as standard input.
pub fn run_with_stdin(data_dir: &Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = pacer(data_dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pacer runs");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin.as_bytes())
        .expect("stdin accepts");
    child.wait_with_output().expect("pacer finishes")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
pub fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "pacer failed: {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// Asserts success and parses stdout as JSON.
pub fn ok_json(o: Output) -> Value {
    let out = ok(o);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON: {e}\n{out}"))
}

/// Runs `pacer ARGS...`, which must succeed, and parses what it printed as JSON.
pub fn json_of(data_dir: &Path, args: &[&str]) -> Value {
    ok_json(run(data_dir, args))
}

/// Runs `pacer ARGS...`, which must fail and leave the log as it was; returns its
/// output.
pub fn refused(data_dir: &Path, args: &[&str]) -> Output {
    let before = log_events(data_dir).len();
    let o = run(data_dir, args);
    assert!(
        !o.status.success(),
        "pacer {args:?} succeeded:\n{}",
        stdout(&o)
    );
    assert_eq!(
        log_events(data_dir).len(),
        before,
        "pacer {args:?} appended to the log"
    );
    o
}

/// The stored events, parsed from `pacer log`.
pub fn log_events(data_dir: &Path) -> Vec<Value> {
    ok(run(data_dir, &["log"]))
        .lines()
        .map(|l| serde_json::from_str(l).expect("log lines are JSON"))
        .collect()
}

/// The config of an org that reports in EUR, in the default time zone.
pub const EUR: &str = "[org]\ncurrency = \"EUR\"\n";

/// A temp dir holding `pacer.toml` with `config`, and the data dir `data` inside it
/// (the first command creates it).
pub fn temp_org(config: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("pacer.toml"), config).unwrap();
    let data = tmp.path().join("data");
    (tmp, data)
}

/// The moment the tests' demo organisations are generated at.
pub const DEMO_NOW: &str = "2026-11-18T15:00:00Z";

/// Runs `pacer demo ARGS... --now DEMO_NOW`, which must succeed; returns its output.
pub fn demo(data_dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["demo"];
    all.extend_from_slice(args);
    all.extend(["--now", DEMO_NOW]);
    ok(run(data_dir, &all))
}

/// Adds a user to a data dir (before or while it is served) and returns a token of
/// theirs.
pub fn user_token(data_dir: &Path, name: &str, role: &str, more: &[&str]) -> String {
    let mut args = vec!["user", "add", name, "--role", role];
    args.extend_from_slice(more);
    ok(run(data_dir, &args));
    ok(run(data_dir, &["token", "create", "--user", name]))
        .trim()
        .to_owned()
}

/// The seed of a randomised test: `PACER_TEST_SEED`, else `default`; printed, so that
/// a failing run can be replayed.
pub fn test_seed(what: &str, default: u64) -> u64 {
    let seed: u64 = std::env::var("PACER_TEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    eprintln!("{what} seed: {seed} (set PACER_TEST_SEED to replay)");
    seed
}

/// ana (team north, manager maria) far behind plan in November 2026, in EUR: a plan
/// of 100 000.00 and 40 meetings, December 90 000.50; 12 500.00 won, one open deal
/// of 10 000 at 25%, one meeting logged. No tick: each test adds its own.
pub const ANA_BEHIND: &str = r#"{"event_id":"r-ana","source":"hris","occurred_at":"2026-10-01T08:00:00Z","type":"rep_registered","rep":"ana","name":"Ana Silva","team":"north","manager":"maria","region":"emea"}
{"event_id":"fy27-v1","source":"finance","occurred_at":"2026-10-20T08:00:00Z","type":"plan_published","plan":"fy27","version":1,"basis":"top_down","horizon_start":"2026-11","effective_from":"2026-11","currency":"EUR","lines":[{"rep":"ana","month":"2026-11","bucket":"total","target":"100000"},{"rep":"ana","month":"2026-11","bucket":"activity:meeting","target":"40"},{"rep":"ana","month":"2026-12","bucket":"total","target":"90000.50"}]}
{"event_id":"hs-1","source":"hubspot","occurred_at":"2026-11-03T10:00:00Z","type":"deal_won","rep":"ana","deal":"d-17","account":"acme","customer_kind":"new","product":"analytics","region":"emea","amount":"12500.00","currency":"EUR","closed_on":"2026-11-03"}
{"event_id":"hs-2","source":"hubspot","occurred_at":"2026-11-04T10:00:00Z","type":"deal_opened","rep":"ana","deal":"d-18","account":"beta","customer_kind":"existing","product":"platform","amount":10000,"currency":"EUR","expected_close":"2026-11-25","probability":25}
{"event_id":"hs-3","source":"hubspot","occurred_at":"2026-11-05T10:00:00Z","type":"activity_logged","rep":"ana","kind":"meeting","account":"acme"}
"#;
