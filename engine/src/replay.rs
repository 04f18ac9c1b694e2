//! Rebuilding the projections from the log: the one way state is made, whether at
//! start-up, for a report "as of" an earlier moment, or to verify a live state.

use pacer_projections::bucket::Bucket;
use pacer_projections::event::Recorded;
use pacer_projections::model::Model;
use pacer_projections::state::OrgConfig;
use pacer_projections::time::{Date, Timestamp};

use crate::engine::tick_event;
use crate::error::LogError;
use crate::log::ids::IdIndex;
use crate::log::{Log, LogReader};

/// Which part of the log a rebuild folds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Cut {
    /// Every event.
    #[default]
    All,
    /// The events with seq ≤ N: the log as it was after its N-th event.
    ToSeq(u64),
    /// The events recorded at or before T: what Pacer knew at T, even about earlier
    /// months (an event recorded later is left out whatever its `occurred_at`).
    RecordedBy(Timestamp),
}

impl Cut {
    fn admits(self, seq: u64, recorded_at: Timestamp) -> bool {
        match self {
            Cut::All => true,
            Cut::ToSeq(n) => seq <= n,
            Cut::RecordedBy(t) => recorded_at <= t,
        }
    }

    /// Whether nothing after `seq` can be admitted (seqs only grow; `recorded_at`
    /// follows the wall clock, which may step back, so a time cut reads to the end).
    fn ends_after(self, seq: u64) -> bool {
        matches!(self, Cut::ToSeq(n) if seq >= n)
    }
}

/// Folds the log's events that `cut` admits into a fresh state, reading and decoding
/// on a second thread while this one folds. `progress` is called with each seq read
/// (cheap: call sites throttle themselves).
pub fn rebuild(
    log: &Log,
    org: &OrgConfig,
    cut: Cut,
    mut progress: impl FnMut(u64),
) -> Result<Model, LogError> {
    rebuild_observed(log, org, cut, |_, rec, _| progress(rec.seq))
}

/// [`rebuild`], calling `observe(state, record, now_before)` after each folded event:
/// for those who need what each event changed (alert changes, the tick that crossed
/// a moment), not only the end state.
pub fn rebuild_observed(
    log: &Log,
    org: &OrgConfig,
    cut: Cut,
    mut observe: impl FnMut(&Model, &Recorded, Option<Timestamp>),
) -> Result<Model, LogError> {
    fold_log(&log.reader(), org, cut, |state, rec, target| {
        let before = state.now();
        state.apply(rec, target);
        observe(state, rec, before);
    })
}

/// [`rebuild`] from a reader of the log (what a running server's queries hold): for
/// a report "as recorded at" a moment while the log is being appended to.
pub fn rebuild_from(reader: &LogReader, org: &OrgConfig, cut: Cut) -> Result<Model, LogError> {
    fold_log(reader, org, cut, |state, rec, target| {
        state.apply(rec, target)
    })
}

/// When a working day ends for the daily ticks of [`rebuild_daily`] and the demo's
/// history: 18:00 local.
pub fn day_end(day: Date, tz: chrono_tz::Tz) -> Timestamp {
    day.at_local_hour(18, tz)
}

/// What [`rebuild_daily`] folded.
pub struct Daily {
    pub state: Model,
    /// Events that arrived after the day they occurred on had been ticked past (the
    /// log is not in time order there): their days were judged without them, as a
    /// live Pacer would have.
    pub late_events: u64,
}

/// A fold of the whole log with a `clock_tick` at 18:00 local on every working day
/// from `from` (or the first event's day, if later) on, each applied before the
/// first event that occurred after it (unless the log's own ticks had passed it):
/// the alerts of every day, as a Pacer that ticked at least daily would have raised
/// them, for `pacer alerts backtest`. A log that was ticked live (every
/// `tick_interval_s`) already has them; a history imported in time order gets them
/// here (one imported rep by rep gets them only up to the first rep's end: see
/// [`Daily::late_events`]). The synthetic ticks take the seq of the event before
/// them. `progress` is called with each seq read.
pub fn rebuild_daily(
    log: &Log,
    org: &OrgConfig,
    from: Date,
    mut progress: impl FnMut(u64),
) -> Result<Daily, LogError> {
    let tz = org.timezone;
    let mut next: Option<Date> = None;
    let mut late_events = 0u64;
    let state = fold_log(&log.reader(), org, Cut::All, |state, rec, target| {
        let day = rec.event.occurred_at.local_date(tz);
        if state.now().is_some_and(|now| day < now.local_date(tz)) {
            late_events += 1;
        }
        let next = next.get_or_insert(from.max(day));
        loop {
            while !next.is_working_day() {
                *next = next.add_days(1);
            }
            let at = day_end(*next, tz);
            if at >= rec.event.occurred_at {
                break;
            }
            if state.now().is_none_or(|now| now < at) {
                let tick = Recorded {
                    seq: rec.seq.saturating_sub(1),
                    recorded_at: rec.recorded_at,
                    event: tick_event(at),
                };
                state.apply(&tick, None);
            }
            *next = next.add_days(1);
        }
        state.apply(rec, target);
        progress(rec.seq);
    })?;
    Ok(Daily { state, late_events })
}

/// Folds the log's events that `cut` admits into a fresh state with `fold(state,
/// record, void target)`, reading and decoding on a second thread.
fn fold_log(
    reader: &LogReader,
    org: &OrgConfig,
    cut: Cut,
    mut fold: impl FnMut(&mut Model, &Recorded, Option<&Recorded>),
) -> Result<Model, LogError> {
    let mut state = Model::new(org.clone());
    // Two stages on two threads: a reader scans the log and decodes records in
    // batches, the fold applies them. At most READ_AHEAD_BATCHES batches and about
    // READ_AHEAD_BYTES_MAX bytes of records wait decoded ahead of the fold (a plan
    // of every rep of a large org is one record of megabytes: a few dozen of them
    // decoded at once once took more memory than the projections). An error ends
    // the reader's batches.
    let budget = ReadAhead::default();
    std::thread::scope(|scope| {
        let (batches, received) = std::sync::mpsc::sync_channel(READ_AHEAD_BATCHES);
        // Folded batches go back to the reader, which frees their records where it
        // allocated them and refills the vectors: freeing on the fold's thread cost it
        // a cross-thread free per string.
        let (spent, spent_received) =
            std::sync::mpsc::sync_channel::<Vec<Read>>(READ_AHEAD_BATCHES + 1);
        let budget = &budget;
        scope.spawn(move || {
            // Every folded batch that came back is freed here, one kept for reuse, so
            // none waits with its records beside the batches ahead.
            let fresh = || {
                let mut reuse = None;
                while let Ok(mut used) = spent_received.try_recv() {
                    used.clear();
                    reuse.get_or_insert(used);
                }
                reuse.unwrap_or_else(|| Vec::with_capacity(READ_AHEAD_BATCH_EVENTS))
            };
            let mut batch = fresh();
            let mut batch_bytes = 0;
            let mut records = reader.iter_from(1);
            while let Some(rec) = records.next_sized() {
                // A void travels with the event it names, which the fold needs to
                // undo an activity.
                let rec = rec.and_then(|(r, bytes)| {
                    let target = reader.void_target(&r)?;
                    Ok((r, target, bytes))
                });
                let last = match &rec {
                    Ok((r, _, _)) => cut.ends_after(r.seq),
                    Err(_) => true,
                };
                batch.push(rec.map(|(r, target, bytes)| {
                    batch_bytes += bytes;
                    (r, target)
                }));
                if last
                    || batch.len() == READ_AHEAD_BATCH_EVENTS
                    || batch_bytes >= READ_AHEAD_BATCH_BYTES
                {
                    let full = std::mem::replace(&mut batch, fresh());
                    let bytes = std::mem::take(&mut batch_bytes);
                    // The fold stopped (an error): nothing more to read for it.
                    if !budget.take(bytes) || batches.send((full, bytes)).is_err() || last {
                        return;
                    }
                }
            }
            if !batch.is_empty() && budget.take(batch_bytes) {
                let _ = batches.send((batch, batch_bytes));
            }
        });
        // However the fold ends, a reader waiting for room is let go.
        let _closed = budget.close_on_drop();
        for (mut batch, bytes) in received {
            // The reader ends its batches at an error, so only the last can be one.
            let failed = match batch.last() {
                Some(Err(_)) => batch.pop(),
                _ => None,
            };
            for (rec, target) in batch.iter().filter_map(|r| r.as_ref().ok()) {
                if cut.admits(rec.seq, rec.recorded_at) {
                    fold(&mut state, rec, target.as_ref());
                }
            }
            if let Some(Err(e)) = failed {
                return Err(e);
            }
            // Full, or the reader is done: the batch is freed here instead.
            let _ = spent.try_send(batch);
            budget.give(bytes);
        }
        Ok(state)
    })
}

/// The bytes of records the rebuild's reader has decoded and the fold not yet
/// folded: the reader takes room for a batch before handing it over (waiting while
/// the fold catches up), the fold gives it back once the batch is folded. A batch
/// larger than the whole budget goes alone, when nothing else is ahead.
#[derive(Default)]
struct ReadAhead {
    /// Bytes ahead, and whether the fold has ended.
    ahead: std::sync::Mutex<(usize, bool)>,
    freed: std::sync::Condvar,
}

impl ReadAhead {
    /// Waits for room for `bytes`; `false` once the fold has ended.
    fn take(&self, bytes: usize) -> bool {
        let ahead = self.ahead.lock().unwrap_or_else(|p| p.into_inner());
        let mut ahead = self
            .freed
            .wait_while(ahead, |(ahead, closed)| {
                !*closed && *ahead > 0 && *ahead + bytes > READ_AHEAD_BYTES_MAX
            })
            .unwrap_or_else(|p| p.into_inner());
        ahead.0 += bytes;
        !ahead.1
    }

    fn give(&self, bytes: usize) {
        let mut ahead = self.ahead.lock().unwrap_or_else(|p| p.into_inner());
        ahead.0 = ahead.0.saturating_sub(bytes);
        self.freed.notify_all();
    }

    fn close_on_drop(&self) -> impl Drop + '_ {
        struct Close<'a>(&'a ReadAhead);
        impl Drop for Close<'_> {
            fn drop(&mut self) {
                let mut ahead = self.0.ahead.lock().unwrap_or_else(|p| p.into_inner());
                ahead.1 = true;
                self.0.freed.notify_all();
            }
        }
        Close(self)
    }
}

/// [`rebuild_observed`] of the whole log for a process that will append to it (`pacer
/// serve`): the log's id index is filed from the same records on the way, so the
/// first append does not read every record again.
pub fn rebuild_for_append(
    log: &mut Log,
    org: &OrgConfig,
    mut observe: impl FnMut(&Model, &Recorded, Option<Timestamp>),
) -> Result<Model, LogError> {
    let reader = log.reader();
    let mut ids = IdIndex::with_capacity(log.ids_capacity_hint());
    let mut failed = None;
    let state = rebuild_observed(log, org, Cut::All, |state, rec, before| {
        if failed.is_none() {
            // Ids are unique in the log: an id already filed is not one.
            if let Err(e) = ids.file(&rec.event.event_id, rec.seq, |seq| reader.event_id(seq)) {
                failed = Some(e);
            }
        }
        observe(state, rec, before);
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    log.install_ids(ids);
    Ok(state)
}

/// A record as the rebuild's reader hands it over: the record and, for a void, the
/// event it names.
type Read = Result<(Recorded, Option<Recorded>), LogError>;

/// Records per batch the rebuild's reader hands to the fold.
const READ_AHEAD_BATCH_EVENTS: usize = 1_024;
/// A batch ends at this many bytes of records (as stored in the log), whatever
/// their count.
const READ_AHEAD_BATCH_BYTES: usize = 512 * 1024;
/// Decoded batches the reader may hold ahead of the fold.
const READ_AHEAD_BATCHES: usize = 8;
/// Bytes of records (as stored) the reader may hold decoded ahead of the fold,
/// whatever their count: a record takes a few times its stored size once decoded.
const READ_AHEAD_BYTES_MAX: usize = 4 * 1024 * 1024;

/// What `verify` checked, for the operator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verified {
    pub events: u64,
    pub rep_months: u64,
    pub reps_with_alerts_checked: u64,
}

/// Checks a rebuilt state against the log and against itself: every stored event id is
/// stored once, seqs are contiguous, the brief's bucket invariants hold for
/// every rep and month, every rep's standing alerts are exactly the conditions that
/// hold now, and a second fold of the same events gives an identical state. Returns
/// the first disagreement as an error message.
pub fn verify(log: &Log, org: &OrgConfig, cut: Cut, state: &Model) -> Result<Verified, String> {
    let mut again = Model::new(org.clone());
    let mut events = 0;
    let reader = log.reader();
    let mut ids = IdIndex::default();
    for (expected_seq, rec) in (1u64..).zip(reader.iter_from(1)) {
        let rec = rec.map_err(|e| e.to_string())?;
        if rec.seq != expected_seq {
            return Err(format!(
                "seq {expected_seq} is missing (the next record is {})",
                rec.seq
            ));
        }
        let id = rec.event.event_id.as_str();
        let earlier = ids
            .file(id, rec.seq, |seq| reader.event_id(seq))
            .map_err(|e| e.to_string())?;
        if let Some(earlier) = earlier {
            return Err(format!(
                "event {id:?} is stored twice, at seq {earlier} and {}",
                rec.seq
            ));
        }
        if cut.admits(rec.seq, rec.recorded_at) {
            let target = reader.void_target(&rec).map_err(|e| e.to_string())?;
            again.apply(&rec, target.as_ref());
            events += 1;
        }
        if cut.ends_after(rec.seq) {
            break;
        }
    }
    if &again != state {
        return Err("a second fold of the same events gave a different state".into());
    }
    let mut rep_months = 0;
    for ((rep, month), buckets) in state.actuals() {
        rep_months += 1;
        let get = |b: &Bucket| buckets.get(b).copied().unwrap_or(0);
        let total = get(&Bucket::Total);
        let sum = |f: fn(&Bucket) -> bool| -> i64 {
            buckets
                .iter()
                .filter(|(b, _)| f(b))
                .fold(0i64, |a, (_, v)| a.wrapping_add(*v))
        };
        let new_plus_retention = get(&Bucket::NewCustomer).wrapping_add(get(&Bucket::Retention));
        let geo = sum(|b| matches!(b, Bucket::Geo(_)));
        let product = sum(|b| matches!(b, Bucket::Product(_)));
        if new_plus_retention != total || geo != total || product != total {
            return Err(format!(
                "{rep} {month}: total {total}, new_customer + retention {new_plus_retention}, geo {geo}, product {product}"
            ));
        }
    }
    let mut reps_checked = 0;
    if let Some(now) = state.now() {
        let cfg = &state.config().alerts;
        for rep in state.reps().keys() {
            let want: Vec<_> = pacer_projections::alerts::rules::findings(state, rep, now, cfg)
                .iter()
                .map(|f| f.key())
                .collect();
            let mut have: Vec<_> = state
                .alert_book()
                .iter()
                .filter(|a| a.rep == *rep && a.is_standing())
                .map(|a| a.finding.key())
                .collect();
            have.sort();
            if have != want {
                return Err(format!(
                    "{rep}: standing alerts {have:?} but the conditions that hold are {want:?}"
                ));
            }
            reps_checked += 1;
        }
    }
    Ok(Verified {
        events,
        rep_months,
        reps_with_alerts_checked: reps_checked,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A demo organisation's log: thousands of events, many read-ahead batches.
    fn demo_log(dir: &std::path::Path) -> (Log, OrgConfig) {
        crate::demo::demo_log(dir, 3, 11)
    }

    #[test]
    fn the_reader_waits_while_the_bytes_ahead_are_over_the_bound() {
        let budget = ReadAhead::default();
        let big = READ_AHEAD_BYTES_MAX - 10;
        // Nothing ahead: even a batch over the whole bound goes.
        assert!(budget.take(2 * READ_AHEAD_BYTES_MAX));
        budget.give(2 * READ_AHEAD_BYTES_MAX);
        assert!(budget.take(big));
        let (took, took_received) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(|| took.send(budget.take(100)).unwrap());
            // Over the bound with `big` ahead: the reader waits...
            let waited = took_received.recv_timeout(std::time::Duration::from_millis(200));
            assert!(waited.is_err(), "took room it did not have: {waited:?}");
            // ...until the fold gives `big` back.
            budget.give(big);
            assert!(took_received.recv().unwrap());
        });
        // A fold that ended lets a waiting reader go, and tells it so.
        std::thread::scope(|scope| {
            let reader = scope.spawn(|| budget.take(READ_AHEAD_BYTES_MAX));
            std::thread::sleep(std::time::Duration::from_millis(50));
            drop(budget.close_on_drop());
            assert!(!reader.join().unwrap());
        });
    }

    #[test]
    fn the_two_thread_rebuild_folds_exactly_what_a_plain_fold_does() {
        let dir = tempfile::tempdir().unwrap();
        let (log, org) = demo_log(dir.path());
        let records: Vec<Recorded> = log.iter_from(1).collect::<Result<_, _>>().unwrap();
        let n = records.len() as u64;
        assert!(n > 3 * READ_AHEAD_BATCH_EVENTS as u64, "{n} events");
        let batch = READ_AHEAD_BATCH_EVENTS as u64;
        for cut in [
            Cut::All,
            Cut::ToSeq(1),
            Cut::ToSeq(batch),
            Cut::ToSeq(batch + 1),
            Cut::ToSeq(2 * batch + 7),
            Cut::ToSeq(n - 1),
            Cut::ToSeq(n + 100),
        ] {
            let mut plain = Model::new(org.clone());
            for r in records.iter().filter(|r| cut.admits(r.seq, r.recorded_at)) {
                plain.apply(r, log.reader().void_target(r).unwrap().as_ref());
            }
            let mut seen = Vec::new();
            let rebuilt = rebuild(&log, &org, cut, |seq| seen.push(seq)).unwrap();
            assert_eq!(rebuilt.events_applied(), plain.events_applied(), "{cut:?}");
            assert!(rebuilt == plain, "{cut:?}: the states differ");
            // Every admitted seq, once, in order.
            let want: Vec<u64> = records
                .iter()
                .filter(|r| cut.admits(r.seq, r.recorded_at))
                .map(|r| r.seq)
                .collect();
            assert_eq!(seen, want, "{cut:?}");
        }
    }

    #[test]
    fn a_rebuild_for_append_leaves_the_id_index_of_every_record_behind() {
        let dir = tempfile::tempdir().unwrap();
        let (log, org) = demo_log(dir.path());
        let records: Vec<Recorded> = log.iter_from(1).collect::<Result<_, _>>().unwrap();
        drop(log);
        let mut log = Log::open(dir.path()).unwrap();
        let mut seen = 0;
        let state = rebuild_for_append(&mut log, &org, |_, _, _| seen += 1).unwrap();
        assert_eq!(state, rebuild(&log, &org, Cut::All, |_| {}).unwrap());
        assert_eq!(seen, records.len());
        // Built by the rebuild, not by a scan of the first look-up.
        assert!(log.ids_built());
        for r in records.iter().step_by(97) {
            assert_eq!(log.seq_of(&r.event.event_id).unwrap(), Some(r.seq));
        }
        let again = records[records.len() / 2].event.clone();
        let out = log
            .append_batch(vec![again], records[0].recorded_at)
            .unwrap();
        let half = records[records.len() / 2].seq;
        assert_eq!(out, vec![crate::log::Appended::Duplicate(half)]);
    }

    #[test]
    fn a_corrupt_record_deep_in_the_log_ends_the_rebuild_with_its_seq() {
        let dir = tempfile::tempdir().unwrap();
        let (log, org) = demo_log(dir.path());
        let bad_seq = 2 * READ_AHEAD_BATCH_EVENTS as u64 + 5;
        drop(log);
        // Flip a bit of one record behind the log's back, as a bad disk would.
        crate::log::damage_record(dir.path(), bad_seq, |raw| {
            let last = raw.len() - 1;
            raw[last] ^= 0x10;
        });
        let log = Log::open(dir.path()).unwrap();
        let mut last_folded = 0;
        let err = rebuild(&log, &org, Cut::All, |seq| last_folded = seq)
            .map(|_| ())
            .expect_err("a corrupt record is an error")
            .to_string();
        assert!(err.contains(&format!("seq {bad_seq}")), "{err}");
        assert_eq!(last_folded, bad_seq - 1, "everything before it was folded");
    }
}
