//! Durability with real processes: `pacer ingest` is killed with SIGKILL part-way
//! through a large file. Reopening the log must show a prefix of the file, each event
//! exactly once, no corrupt record; re-running the same ingest completes it, the
//! events stored before the kill reported as duplicates.

mod common;

use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

const EVENTS: usize = 60_000;

fn write_big_file(path: &std::path::Path) -> Vec<String> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let kinds = ["call", "meeting", "demo", "proposal"];
    let mut ids = Vec::with_capacity(EVENTS);
    for i in 0..EVENTS {
        let id = format!("crm-{i:06}");
        let line = if i % 10 == 0 {
            format!(
                r#"{{"event_id":"{id}","source":"crm","occurred_at":"2026-11-05T10:00:00Z","type":"deal_won","rep":"rep{r}","deal":"d{i}","account":"acc{a}","customer_kind":"new","product":"p{p}","region":"emea","amount":"{amt}.50","currency":"USD","closed_on":"2026-11-05"}}"#,
                r = i % 50,
                a = i % 300,
                p = i % 4,
                amt = 1000 + i
            )
        } else {
            format!(
                r#"{{"event_id":"{id}","source":"crm","occurred_at":"2026-11-05T10:00:00Z","type":"activity_logged","rep":"rep{r}","kind":"{k}"}}"#,
                r = i % 50,
                k = kinds[i % 4]
            )
        };
        writeln!(f, "{line}").unwrap();
        ids.push(id);
    }
    f.flush().unwrap();
    ids
}

/// Starts an ingest, kills it with SIGKILL after `delay`, returns whether it was
/// still running when killed.
fn ingest_and_kill(data: &std::path::Path, delay: Duration) -> bool {
    let mut child = pacer(data)
        .args(["ingest", "--batch-events-max", "500", "big.jsonl"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < delay {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    true
}

#[test]
fn kill_9_during_ingest_loses_nothing_acknowledged_and_duplicates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let ids = write_big_file(&tmp.path().join("big.jsonl"));
    let mut mid_way_kills = 0;
    // Kill at growing delays until kills have landed mid-way a few times; each round
    // uses a fresh data dir. The delays are printed so a failure can be replayed.
    for (round, delay_ms) in [150u64, 400, 800, 1500, 2500, 4000].into_iter().enumerate() {
        let data = tmp.path().join(format!("data-{round}"));
        let killed = ingest_and_kill(&data, Duration::from_millis(delay_ms));
        if !data.join("conf").exists() {
            continue; // killed before the log was even created
        }
        let events = log_events(&data);
        let stored: Vec<&str> = events
            .iter()
            .map(|e| e["event_id"].as_str().unwrap())
            .collect();
        eprintln!(
            "round {round}: killed after {delay_ms} ms (still running: {killed}), {} stored",
            stored.len()
        );
        // A prefix of the file, in order, each once, with seqs 1..=n.
        assert_eq!(
            stored,
            ids[..stored.len()]
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            "round {round}"
        );
        let unique: HashSet<&str> = stored.iter().copied().collect();
        assert_eq!(
            unique.len(),
            stored.len(),
            "round {round}: an event was stored twice"
        );
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e["seq"], i as u64 + 1, "round {round}: seqs are contiguous");
        }
        if killed && !stored.is_empty() && stored.len() < EVENTS {
            mid_way_kills += 1;
        }
        // Re-running the same ingest completes it; what was stored is a duplicate.
        let out = ok(run(&data, &["ingest", "big.jsonl"]));
        assert_eq!(
            out.trim(),
            format!(
                "accepted {}, duplicate {}, rejected 0",
                EVENTS - stored.len(),
                stored.len()
            ),
            "round {round}"
        );
        let all = log_events(&data);
        assert_eq!(all.len(), EVENTS, "round {round}");
        let all_ids: Vec<&str> = all
            .iter()
            .map(|e| e["event_id"].as_str().unwrap())
            .collect();
        assert_eq!(
            all_ids,
            ids.iter().map(String::as_str).collect::<Vec<_>>(),
            "round {round}"
        );
        if mid_way_kills >= 2 {
            break;
        }
    }
    assert!(
        mid_way_kills >= 1,
        "no kill landed part-way through the ingest; the test proved nothing"
    );
}
