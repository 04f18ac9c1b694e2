//! The log's tests, and test support for other modules' tests: [`damage_record`]
//! (and [`damage_segment`]) change stored bytes behind the log's back.

use std::path::Path;

use pacer_projections::event::{Event, EventBody, FxRate, Recorded};
use pacer_projections::money::Currency;
use pacer_projections::state::OrgConfig;
use pacer_projections::time::{Month, Timestamp};

use super::record::{bincode_config, frame, seq_of_key};
use super::segment::{
    chunk_key, segment_holding, Stored, LENGTH_BYTES, SEGMENT_BYTES_MAX, SEGMENT_HEADER_BYTES,
};
use super::upgrade::{open_db, FORMAT, FORMAT_V1, FORMAT_V2};
use super::writer::{Appended, Log};

/// Test support: changes the stored bytes of record `seq` (its version byte, CRC
/// and payload) behind the log's back, as a bad disk or a stray write would.
pub(crate) fn damage_record(dir: &Path, seq: u64, edit: impl FnOnce(&mut [u8])) {
    damage_segment(dir, seq, |stored, value| {
        let base = stored.raw.as_ptr() as usize;
        let (_, raw) = stored
            .records()
            .map(Result::unwrap)
            .find(|(at, _)| *at == seq)
            .unwrap();
        let start = raw.as_ptr() as usize - base;
        edit(&mut value[start..start + raw.len()]);
    });
}

/// Test support: changes the stored bytes of the segment holding `seq` (given as
/// read, and as bytes to edit) behind the log's back.
fn damage_segment(dir: &Path, seq: u64, edit: impl FnOnce(&Stored, &mut Vec<u8>)) {
    let db = open_db(dir).unwrap();
    let events = db.open_tree("events").unwrap();
    let stored = segment_holding(&events, seq).unwrap().unwrap();
    let mut value = stored.raw.to_vec();
    edit(&stored, &mut value);
    events.insert(stored.first.to_be_bytes(), value).unwrap();
    db.flush().unwrap();
}

fn tick(id: &str) -> Event {
    Event {
        event_id: id.into(),
        source: "test".into(),
        occurred_at: Timestamp::parse_rfc3339("2026-11-18T09:00:00Z").unwrap(),
        body: EventBody::ClockTick,
    }
}

fn at() -> Timestamp {
    Timestamp::parse_rfc3339("2026-11-18T09:00:01Z").unwrap()
}

#[test]
fn exchange_rates_are_kept_beside_the_events_the_last_one_winning() {
    let dir = tempfile::tempdir().unwrap();
    let usd = Currency::from_code("USD").unwrap();
    let nov = Month::parse("2026-11").unwrap();
    let rate = |id: &str, r: &str| Event {
        event_id: id.into(),
        source: "test".into(),
        occurred_at: at(),
        body: EventBody::FxRateSet(pacer_projections::event::FxRateSet {
            currency: usd,
            month: nov,
            rate: FxRate::parse(r).unwrap(),
        }),
    };
    {
        let mut log = Log::open(dir.path()).unwrap();
        log.append_batch(vec![rate("r1", "0.9"), tick("t")], at())
            .unwrap();
        log.append_batch(vec![rate("r2", "0.95")], at()).unwrap();
    }
    let log = Log::open(dir.path()).unwrap();
    let table = log.fx_table().unwrap();
    assert_eq!(table.rate(usd, nov), Some(FxRate::parse("0.95").unwrap()));
    assert_eq!(table.iter().count(), 1);
}

#[test]
fn recorded_at_never_steps_back_even_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let late = Timestamp::parse_rfc3339("2026-11-18T10:00:00Z").unwrap();
    {
        let mut log = Log::open(dir.path()).unwrap();
        log.append_batch(vec![tick("a")], late).unwrap();
        // The wall clock stepped back an hour.
        log.append_batch(vec![tick("b")], at()).unwrap();
    }
    let mut log = Log::open(dir.path()).unwrap();
    log.append_batch(vec![tick("c")], at()).unwrap();
    let times: Vec<Timestamp> = log.iter_from(1).map(|r| r.unwrap().recorded_at).collect();
    assert_eq!(times, vec![late, late, late]);
    assert_eq!(log.last_recorded_at(), Some(late));
}

#[test]
fn appends_are_idempotent_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = Log::open(dir.path()).unwrap();
        let out = log
            .append_batch(vec![tick("a"), tick("b"), tick("a")], at())
            .unwrap();
        assert_eq!(
            out,
            vec![
                Appended::Stored(1),
                Appended::Stored(2),
                Appended::Duplicate(1)
            ]
        );
    }
    let mut log = Log::open(dir.path()).unwrap();
    assert_eq!(log.last_seq(), 2);
    let out = log.append_batch(vec![tick("b"), tick("c")], at()).unwrap();
    assert_eq!(out, vec![Appended::Duplicate(2), Appended::Stored(3)]);
    let ids: Vec<String> = log
        .iter_from(1)
        .map(|r| r.unwrap().event.event_id)
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
    let from2: Vec<u64> = log.iter_from(2).map(|r| r.unwrap().seq).collect();
    assert_eq!(from2, [2, 3]);
    assert_eq!(log.get(3).unwrap().unwrap().recorded_at, at());
}

#[test]
fn the_log_remembers_its_currency_and_time_zone() {
    let dir = tempfile::tempdir().unwrap();
    let eur = Currency::from_code("EUR").unwrap();
    let org = |currency, timezone| OrgConfig {
        timezone,
        currency,
        fiscal_year_start_month: 1,
        alerts: Default::default(),
        pace: Default::default(),
    };
    let mut log = Log::open(dir.path()).unwrap();
    log.bind_org(&org(eur, chrono_tz::UTC)).unwrap();
    log.bind_org(&org(eur, chrono_tz::UTC)).unwrap();
    let jpy = Currency::from_code("JPY").unwrap();
    let err = log
        .bind_org(&org(jpy, chrono_tz::UTC))
        .unwrap_err()
        .to_string();
    assert!(err.contains("EUR") && err.contains("JPY"), "{err}");
    let err = log
        .bind_org(&org(eur, chrono_tz::Europe::Berlin))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("UTC") && err.contains("Europe/Berlin"),
        "{err}"
    );
}

#[test]
fn a_flipped_bit_is_reported_with_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = Log::open(dir.path()).unwrap();
        log.append_batch(vec![tick("a"), tick("b"), tick("c")], at())
            .unwrap();
    }
    damage_record(dir.path(), 2, |raw| {
        let last = raw.len() - 1;
        raw[last] ^= 0x04;
    });
    let log = Log::open(dir.path()).unwrap();
    let results: Vec<_> = log.iter_from(1).collect();
    assert_eq!(results.len(), 2, "replay stops at the corrupt record");
    assert!(results[0].is_ok());
    let err = results[1].as_ref().unwrap_err().to_string();
    assert!(err.contains("seq 2") && err.contains("CRC"), "{err}");
    assert!(log.get(2).unwrap_err().to_string().contains("seq 2"));
    assert_eq!(log.get(3).unwrap().unwrap().event.event_id, "c");
}

#[test]
fn an_unknown_record_version_is_an_error_not_a_guess() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = Log::open(dir.path()).unwrap();
        log.append_batch(vec![tick("a")], at()).unwrap();
    }
    damage_record(dir.path(), 1, |raw| raw[0] = 9);
    let log = Log::open(dir.path()).unwrap();
    let err = log.iter_from(1).next().unwrap().unwrap_err().to_string();
    assert!(err.contains("seq 1") && err.contains("version 9"), "{err}");
}

/// `n` ticks with ids `{prefix}0`...
fn ticks(prefix: &str, n: usize) -> Vec<Event> {
    (0..n).map(|i| tick(&format!("{prefix}{i}"))).collect()
}

#[test]
fn a_large_append_is_split_into_segments_that_read_back_from_any_seq() {
    let dir = tempfile::tempdir().unwrap();
    let n = 5_000;
    let mut log = Log::open(dir.path()).unwrap();
    log.append_batch(ticks("t", n), at()).unwrap();
    log.append_batch(ticks("u", 3), at()).unwrap();
    let total = n as u64 + 3;
    let keys: Vec<u64> = log
        .events
        .iter()
        .keys()
        .map(|k| seq_of_key(&k.unwrap()).unwrap())
        .collect();
    assert!(
        keys.len() > 2 && keys.len() < 100,
        "{} keys for {total} events",
        keys.len()
    );
    for v in log.events.iter().values() {
        assert!(v.unwrap().len() <= SEGMENT_BYTES_MAX);
    }
    // Every segment edge, and either side of it.
    let mut starts: Vec<u64> = keys.iter().flat_map(|&k| [k - 1, k, k + 1]).collect();
    starts.extend([total, total + 1]);
    for from in starts.into_iter().filter(|&s| s >= 1) {
        let seqs: Vec<u64> = log.iter_from(from).map(|r| r.unwrap().seq).collect();
        let want: Vec<u64> = (from..=total).collect();
        assert_eq!(seqs, want, "from {from}");
        if from <= total {
            assert_eq!(log.get(from).unwrap().unwrap().seq, from);
        }
    }
    assert!(log.get(total + 1).unwrap().is_none());
    drop(log);
    let mut log = Log::open(dir.path()).unwrap();
    assert_eq!(log.last_seq(), total);
    assert_eq!(log.seq_of("t4999").unwrap(), Some(n as u64));
    let out = log
        .append_batch(vec![tick("t17"), tick("v")], at())
        .unwrap();
    assert_eq!(out, [Appended::Duplicate(18), Appended::Stored(total + 1)]);
}

#[test]
fn a_log_of_the_first_format_is_read_and_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    {
        // A pacer-log/1 log: one record per key.
        let db = open_db(dir.path()).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("format", FORMAT_V1)
            .unwrap();
        let events = db.open_tree("events").unwrap();
        let ids = db.open_tree("ids").unwrap();
        for (seq, id) in [(1u64, "a"), (2, "b")] {
            let rec = Recorded {
                seq,
                recorded_at: at(),
                event: tick(id),
            };
            let payload = bincode::encode_to_vec(&rec, bincode_config()).unwrap();
            events.insert(seq.to_be_bytes(), frame(&payload)).unwrap();
            ids.insert(id, &seq.to_be_bytes()).unwrap();
        }
        db.flush().unwrap();
    }
    let mut log = Log::open(dir.path()).unwrap();
    assert_eq!(log.meta("format").unwrap().as_deref(), Some(FORMAT));
    assert_eq!(log.last_seq(), 2);
    assert_eq!(log.last_recorded_at(), Some(at()));
    let out = log.append_batch(vec![tick("b"), tick("c")], at()).unwrap();
    assert_eq!(out, [Appended::Duplicate(2), Appended::Stored(3)]);
    let ids: Vec<String> = log
        .iter_from(2)
        .map(|r| r.unwrap().event.event_id)
        .collect();
    assert_eq!(ids, ["b", "c"]);
    assert_eq!(log.get(1).unwrap().unwrap().event.event_id, "a");
}

#[test]
fn ids_that_share_a_hash_are_each_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path()).unwrap();
    // Every id hashes the same: each after the first is a collision, with a
    // stored id or with one earlier in its batch.
    log.id_index().unwrap();
    log.ids.as_mut().unwrap().colliding = true;
    log.append_batch(vec![tick("a")], at()).unwrap();
    let out = log
        .append_batch(vec![tick("b"), tick("c"), tick("b"), tick("a")], at())
        .unwrap();
    assert_eq!(
        out,
        [
            Appended::Stored(2),
            Appended::Stored(3),
            Appended::Duplicate(2),
            Appended::Duplicate(1)
        ]
    );
    let out = log
        .append_batch(vec![tick("c"), tick("d"), tick("a")], at())
        .unwrap();
    assert_eq!(
        out,
        [
            Appended::Duplicate(3),
            Appended::Stored(4),
            Appended::Duplicate(1)
        ]
    );
    assert_eq!(log.seq_of("d").unwrap(), Some(4));
    assert_eq!(log.seq_of("e").unwrap(), None);
    assert_eq!(log.ids.as_ref().unwrap().shared(), 3);
    // Reopened, the index is built from the records again.
    drop(log);
    let mut log = Log::open(dir.path()).unwrap();
    for (id, seq) in [("a", 1), ("b", 2), ("c", 3), ("d", 4)] {
        assert_eq!(log.seq_of(id).unwrap(), Some(seq), "{id}");
    }
}

fn void(id: &str, target: &str) -> Event {
    Event {
        event_id: id.into(),
        source: "test".into(),
        occurred_at: at(),
        body: EventBody::EventVoided(pacer_projections::event::EventVoided {
            voided_event_id: target.into(),
            reason: None,
        }),
    }
}

#[test]
fn a_void_is_read_back_with_the_event_it_names_when_that_came_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path()).unwrap();
    log.append_batch(vec![tick("a"), void("v1", "a")], at())
        .unwrap();
    // Before the event it names: nothing to hand over, now or later.
    log.append_batch(
        vec![void("v2", "b"), tick("b"), void("v3", "nothing")],
        at(),
    )
    .unwrap();
    log.append_batch(vec![void("v4", "b")], at()).unwrap();
    drop(log);
    let log = Log::open(dir.path()).unwrap();
    let reader = log.reader();
    let targets: Vec<(String, Option<u64>)> = log
        .iter_from(1)
        .map(|r| {
            let r = r.unwrap();
            let t = reader.void_target(&r).unwrap().map(|t| t.seq);
            (r.event.event_id, t)
        })
        .collect();
    let want: Vec<(String, Option<u64>)> = [
        ("a", None),
        ("v1", Some(1)),
        ("v2", None),
        ("b", None),
        ("v3", None),
        ("v4", Some(4)),
    ]
    .into_iter()
    .map(|(id, t)| (id.to_owned(), t))
    .collect();
    assert_eq!(targets, want);
}

#[test]
fn a_log_of_the_second_format_keeps_its_void_targets_and_drops_its_id_tree() {
    let dir = tempfile::tempdir().unwrap();
    {
        // A pacer-log/2 log: segments, and an `ids` tree beside them.
        let mut log = Log::open(dir.path()).unwrap();
        log.append_batch(vec![tick("a"), void("v", "a"), tick("b")], at())
            .unwrap();
        log.voids.clear().unwrap();
        log.meta.insert("format", FORMAT_V2).unwrap();
        let ids = log.db.open_tree("ids").unwrap();
        for (id, seq) in [("a", 1u64), ("v", 2), ("b", 3)] {
            ids.insert(id, &seq.to_be_bytes()).unwrap();
        }
        log.db.flush().unwrap();
    }
    let mut log = Log::open(dir.path()).unwrap();
    assert_eq!(log.meta("format").unwrap().as_deref(), Some(FORMAT));
    assert!(!log.db.tree_names().iter().any(|n| n.as_ref() == b"ids"));
    let void = log.get(2).unwrap().unwrap();
    assert_eq!(log.reader().void_target(&void).unwrap().unwrap().seq, 1);
    let out = log.append_batch(vec![tick("b"), tick("c")], at()).unwrap();
    assert_eq!(out, [Appended::Duplicate(3), Appended::Stored(4)]);
}

/// A tick whose `source` is `bytes` long: a record too large for a segment.
fn large(id: &str, bytes: usize) -> Event {
    Event {
        source: "s".repeat(bytes),
        ..tick(id)
    }
}

#[test]
fn a_record_too_large_for_a_segment_is_stored_in_chunks_and_read_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = Log::open(dir.path()).unwrap();
        let mut batch = ticks("t", 3);
        batch.insert(1, large("big", 5 * SEGMENT_BYTES_MAX + 17));
        batch.push(large("edge", SEGMENT_BYTES_MAX));
        log.append_batch(batch, at()).unwrap();
        log.append_batch(vec![large("big", 9), tick("after")], at())
            .unwrap();
        for tree in [&log.events, &log.chunks] {
            for v in tree.iter().values() {
                assert!(v.unwrap().len() <= SEGMENT_BYTES_MAX);
            }
        }
        assert!(log.chunks.len() >= 6, "{} chunks", log.chunks.len());
    }
    let mut log = Log::open(dir.path()).unwrap();
    let read: Vec<(u64, String, usize)> = log
        .iter_from(1)
        .map(|r| {
            let r = r.unwrap();
            (r.seq, r.event.event_id, r.event.source.len())
        })
        .collect();
    let want = [
        (1, "t0", 4),
        (2, "big", 5 * SEGMENT_BYTES_MAX + 17),
        (3, "t1", 4),
        (4, "t2", 4),
        (5, "edge", SEGMENT_BYTES_MAX),
        (6, "after", 4),
    ];
    let want: Vec<(u64, String, usize)> = want
        .into_iter()
        .map(|(s, id, n)| (s, id.to_owned(), n))
        .collect();
    assert_eq!(read, want);
    assert_eq!(log.get(2).unwrap().unwrap().event.event_id, "big");
    assert_eq!(log.iter_from(3).next().unwrap().unwrap().seq, 3);
    // The id index, built from the records, reads the span's id.
    assert_eq!(log.seq_of("big").unwrap(), Some(2));
    assert_eq!(log.last_recorded_at(), Some(at()));
}

#[test]
fn a_damaged_or_missing_chunk_is_reported_with_the_seq_of_its_record() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = Log::open(dir.path()).unwrap();
        let batch = vec![tick("a"), large("big", 3 * SEGMENT_BYTES_MAX), tick("c")];
        log.append_batch(batch, at()).unwrap();
        // A bit flipped in the second chunk.
        let mut chunk = log.chunks.get(chunk_key(2, 1)).unwrap().unwrap().to_vec();
        chunk[10] ^= 0x01;
        log.chunks.insert(chunk_key(2, 1), chunk).unwrap();
    }
    let log = Log::open(dir.path()).unwrap();
    let results: Vec<_> = log.iter_from(1).collect();
    assert_eq!(results.len(), 2);
    let err = results[1].as_ref().unwrap_err().to_string();
    assert!(err.contains("seq 2") && err.contains("CRC"), "{err}");
    log.chunks.remove(chunk_key(2, 1)).unwrap();
    let err = log.get(2).unwrap_err().to_string();
    assert!(err.contains("seq 2") && err.contains("missing"), "{err}");
    assert_eq!(log.get(3).unwrap().unwrap().event.event_id, "c");
}

#[test]
fn a_missing_segment_is_reported_with_its_seq_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = Log::open(dir.path()).unwrap();
        log.append_batch(ticks("a", 2), at()).unwrap();
        log.append_batch(ticks("b", 2), at()).unwrap();
        log.append_batch(ticks("c", 1), at()).unwrap();
        // The second append's segment is lost.
        log.events.remove(3u64.to_be_bytes()).unwrap();
        log.db.flush().unwrap();
    }
    let log = Log::open(dir.path()).unwrap();
    let results: Vec<_> = log.iter_from(1).collect();
    assert_eq!(results.len(), 3);
    assert!(results[..2].iter().all(Result::is_ok));
    let err = results[2].as_ref().unwrap_err().to_string();
    assert!(
        err.contains("seq 3") && err.contains("starts at 5"),
        "{err}"
    );
}

#[test]
fn an_old_log_with_a_damaged_record_still_opens_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = Log::open(dir.path()).unwrap();
        log.append_batch(vec![tick("a"), tick("b"), void("v", "a")], at())
            .unwrap();
        log.meta.insert("format", FORMAT_V2).unwrap();
        log.db.flush().unwrap();
    }
    damage_record(dir.path(), 2, |raw| {
        let last = raw.len() - 1;
        raw[last] ^= 0x01;
    });
    let log = Log::open(dir.path()).unwrap();
    assert_eq!(log.meta("format").unwrap().as_deref(), Some(FORMAT));
    let err = log.iter_from(1).nth(1).unwrap().unwrap_err().to_string();
    assert!(err.contains("seq 2"), "{err}");
}

#[test]
fn a_damaged_segment_length_is_reported_with_the_seq_it_was_reading() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = Log::open(dir.path()).unwrap();
        log.append_batch(ticks("t", 4), at()).unwrap();
    }
    // The third record's length now runs past the segment's end.
    damage_segment(dir.path(), 1, |stored, raw| {
        let third = stored.records().nth(2).unwrap().unwrap().1.as_ptr() as usize
            - stored.raw.as_ptr() as usize;
        raw[third - LENGTH_BYTES..third].copy_from_slice(&u32::MAX.to_be_bytes());
    });
    let log = Log::open(dir.path()).unwrap();
    let results: Vec<_> = log.iter_from(1).collect();
    assert_eq!(results.len(), 3);
    assert!(results[..2].iter().all(Result::is_ok));
    let err = results[2].as_ref().unwrap_err().to_string();
    assert!(err.contains("seq 3"), "{err}");
}

#[test]
fn a_segment_count_lowered_by_damage_is_reported_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = Log::open(dir.path()).unwrap();
        log.append_batch(ticks("t", 4), at()).unwrap();
    }
    // The header now counts two records of the four.
    damage_segment(dir.path(), 1, |_, raw| {
        raw[1..SEGMENT_HEADER_BYTES].copy_from_slice(&2u32.to_be_bytes());
    });
    let log = Log::open(dir.path()).unwrap();
    let results: Vec<_> = log.iter_from(1).collect();
    assert_eq!(results.len(), 3);
    assert!(results[..2].iter().all(Result::is_ok));
    let err = results[2].as_ref().unwrap_err().to_string();
    assert!(err.contains("seq 3"), "{err}");
}
