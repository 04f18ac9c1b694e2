//! Memory at scale: the peak resident memory of rebuilding the projections of a large
//! organisation (the 10 000 reps × 24 months of plans and a year of events),
//! and what that is per rep × month × bucket cell.
//!
//! Two steps, two processes. The bench writes the log with
//! [`generate_sliced`](crate::demo::generate_sliced), a few hundred reps of history at
//! a time, so the generator never holds the whole history (its plan events, one per
//! month and version with every rep's lines, are written one by one). Then a *fresh
//! process* — the same binary, `pacer bench --replay-child DIR`, started by the CLI —
//! opens the log and runs [`measure_replay`]: `replay::rebuild` of the whole log, the
//! same fold `pacer replay` runs, and reports its own peak RSS (`VmHWM`), so the peak
//! is the replay's and not the generator's. The parent samples the child's RSS
//! meanwhile ([`watch_child`]) and stops it above a cap, so a run that would take the
//! machine's memory ends with "more than the cap" instead.
//!
//! The peak includes everything the replay process holds: the projections, the
//! decoded batches read ahead, and sled's page cache of the log (sled's default,
//! up to 1 GiB). The projections' own share is the RSS after the rebuild, with the
//! log closed again, minus the RSS with the log just opened (before the fold).

use std::path::Path;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use pacer_projections::event::PlanPublished;
use serde_json::{json, Value};

use super::{cells, proc_kb};
use crate::config::Config;
use crate::demo::{generate_sliced, DemoSpec};
use crate::error::LogError;
use crate::log::Log;
use crate::replay::{rebuild, Cut};

/// Reps whose history the generator holds at once.
pub const REPS_PER_SLICE: usize = 250;

/// The target for the peak at 10 000 reps: 700 MiB.
pub const TARGET_PEAK_RSS_BYTES: u64 = 700 << 20;
/// [`TARGET_PEAK_RSS_BYTES`] for people.
pub const TARGET_PEAK_RSS_TEXT: &str = "≤ 700 MiB at 10 000 reps";

/// The log written for the measurement.
#[derive(Clone, Debug, Default)]
pub struct ScaleLog {
    pub reps: usize,
    pub events: u64,
    pub seconds: f64,
    /// The log's size on disk.
    pub disk_bytes: u64,
}

/// Writes the demo history of `reps` reps into the log in `dir` (absent or empty),
/// slice by slice, with `append_batch` in batches of up to 20 000 events.
pub fn write_log(
    dir: &Path,
    reps: usize,
    seed: u64,
    config: &Config,
    mut say: impl FnMut(&str),
) -> Result<ScaleLog, LogError> {
    let now = super::bench_now();
    let started = Instant::now();
    let mut log = Log::open(dir)?;
    log.bind_org(&config.org)?;
    let mut events = 0u64;
    let mut next_say = 1_000_000u64;
    let spec = DemoSpec {
        reps,
        seed,
        now,
        timezone: config.org.timezone,
        currency: config.org.currency,
        daily_ticks: false,
        prior_months: 0,
    };
    generate_sliced(&spec, REPS_PER_SLICE, |slice| {
        events += slice.len() as u64;
        super::write_events(&mut log, slice, now)?;
        if events >= next_say {
            say(&format!("{events} events written"));
            next_say += 1_000_000;
        }
        Ok::<(), LogError>(())
    })?;
    drop(log);
    Ok(ScaleLog {
        reps,
        events,
        seconds: started.elapsed().as_secs_f64(),
        disk_bytes: disk_bytes(dir),
    })
}

/// The bytes of the files under `dir`.
fn disk_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// What the replay process measured about itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplayMemory {
    pub events: u64,
    pub reps: u64,
    /// Rep × month × bucket cells of the projections (actuals and plan lines).
    pub cells: u64,
    /// RSS when the measurement started, before the log was opened.
    pub rss_start_bytes: u64,
    /// RSS with the log open, before the rebuild.
    pub rss_opened_bytes: u64,
    /// RSS after the rebuild, the log still open.
    pub rss_with_log_bytes: u64,
    /// RSS after the rebuild, the log closed: the projections and the process.
    pub rss_after_bytes: u64,
    /// The process's peak RSS (`VmHWM`).
    pub peak_rss_bytes: u64,
    pub replay_seconds: f64,
}

impl ReplayMemory {
    /// The projections' share: RSS after (log closed) − RSS with the log opened.
    pub fn state_bytes(&self) -> u64 {
        self.rss_after_bytes.saturating_sub(self.rss_opened_bytes)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "events": self.events,
            "reps": self.reps,
            "cells": self.cells,
            "rss_start_bytes": self.rss_start_bytes,
            "rss_opened_bytes": self.rss_opened_bytes,
            "rss_with_log_bytes": self.rss_with_log_bytes,
            "rss_after_bytes": self.rss_after_bytes,
            "peak_rss_bytes": self.peak_rss_bytes,
            "replay_seconds": self.replay_seconds,
        })
    }

    /// Reads [`ReplayMemory::to_json`]'s output back; `None` when a field is missing.
    pub fn from_json(v: &Value) -> Option<ReplayMemory> {
        let n = |k: &str| v.get(k).and_then(Value::as_u64);
        Some(ReplayMemory {
            events: n("events")?,
            reps: n("reps")?,
            cells: n("cells")?,
            rss_start_bytes: n("rss_start_bytes")?,
            rss_opened_bytes: n("rss_opened_bytes")?,
            rss_with_log_bytes: n("rss_with_log_bytes")?,
            rss_after_bytes: n("rss_after_bytes")?,
            peak_rss_bytes: n("peak_rss_bytes")?,
            replay_seconds: v.get("replay_seconds").and_then(Value::as_f64)?,
        })
    }
}

/// Rebuilds the projections of the log in `dir` and measures this process's memory:
/// what `pacer bench --replay-child DIR` runs, in a process that has done nothing else.
pub fn measure_replay(dir: &Path, config: &Config) -> Result<ReplayMemory, LogError> {
    let rss = || proc_kb("/proc/self/status", "VmRSS:");
    let rss_start_bytes = rss();
    let mut log = Log::open(dir)?;
    log.bind_org(&config.org)?;
    let rss_opened_bytes = rss();
    let started = Instant::now();
    let state = rebuild(&log, &config.org, Cut::All, |_| {})?;
    let replay_seconds = started.elapsed().as_secs_f64();
    let rss_with_log_bytes = rss();
    drop(log);
    let rss_after_bytes = rss();
    let measured = ReplayMemory {
        events: state.events_applied(),
        reps: state.reps().len() as u64,
        cells: cells(&state),
        rss_start_bytes,
        rss_opened_bytes,
        rss_with_log_bytes,
        rss_after_bytes,
        peak_rss_bytes: proc_kb("/proc/self/status", "VmHWM:"),
        replay_seconds,
    };
    drop(std::hint::black_box(state));
    Ok(measured)
}

/// How a watched child ended.
#[derive(Debug)]
pub struct Watched {
    pub status: ExitStatus,
    /// The highest `VmHWM` seen while it ran (sampled).
    pub sampled_peak_rss_bytes: u64,
    /// Set when the child went over the cap and was killed: its RSS then.
    pub killed_at_bytes: Option<u64>,
}

/// Waits for `child`, sampling its peak RSS every 50 ms, and kills it when its RSS
/// goes over `cap_bytes` (0: no cap).
pub fn watch_child(child: &mut Child, cap_bytes: u64) -> std::io::Result<Watched> {
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Watched {
                status,
                sampled_peak_rss_bytes: peak,
                killed_at_bytes: None,
            });
        }
        peak = peak.max(proc_kb(&status_file, "VmHWM:"));
        let rss = proc_kb(&status_file, "VmRSS:");
        if cap_bytes > 0 && rss > cap_bytes {
            child.kill()?;
            let status = child.wait()?;
            return Ok(Watched {
                status,
                sampled_peak_rss_bytes: peak.max(rss),
                killed_at_bytes: Some(rss),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The memory-at-scale figures: the log, and the replay process's measurement (or
/// how far it got before the cap stopped it).
#[derive(Clone, Debug, Default)]
pub struct MemoryAtScale {
    pub log: ScaleLog,
    pub replay: Option<ReplayMemory>,
    /// The cap the replay process ran under (0: none).
    pub cap_bytes: u64,
    /// The replay process went over the cap at this RSS and was stopped.
    pub over_cap_bytes: Option<u64>,
}

impl MemoryAtScale {
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        self.replay.as_ref().map(|r| r.peak_rss_bytes)
    }

    /// Peak RSS ÷ cells.
    pub fn peak_bytes_per_cell(&self) -> Option<f64> {
        self.replay
            .as_ref()
            .map(|r| r.peak_rss_bytes as f64 / r.cells.max(1) as f64)
    }

    /// The projections' bytes ÷ cells.
    pub fn state_bytes_per_cell(&self) -> Option<f64> {
        self.replay
            .as_ref()
            .map(|r| r.state_bytes() as f64 / r.cells.max(1) as f64)
    }

    pub fn to_json(&self) -> Value {
        let r = self.replay.as_ref();
        json!({
            "reps": self.log.reps,
            "plan_months": PlanPublished::HORIZON_MONTHS,
            "events": self.log.events,
            "log_disk_bytes": self.log.disk_bytes,
            "write_seconds": (self.log.seconds * 10.0).round() / 10.0,
            "measured_in": "a fresh process (pacer bench --replay-child) that only rebuilds the projections",
            "peak_rss_bytes": self.peak_rss_bytes(),
            "state_bytes": r.map(ReplayMemory::state_bytes),
            "rss_with_log_bytes": r.map(|r| r.rss_with_log_bytes),
            "rep_month_bucket_cells": r.map(|r| r.cells),
            "peak_bytes_per_cell": self.peak_bytes_per_cell().map(f64::round),
            "state_bytes_per_cell": self.state_bytes_per_cell().map(f64::round),
            "replay_events_per_second": r.map(|r| (r.events as f64 / r.replay_seconds.max(1e-9)).round()),
            "replay_seconds": r.map(|r| (r.replay_seconds * 10.0).round() / 10.0),
            "rss_cap_bytes": self.cap_bytes,
            "stopped_over_cap_at_bytes": self.over_cap_bytes,
            "target_peak_rss_bytes": TARGET_PEAK_RSS_BYTES,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replay_figures_read_back_from_json() {
        let m = ReplayMemory {
            events: 1_800,
            reps: 1,
            cells: 700,
            rss_start_bytes: 10 << 20,
            rss_opened_bytes: 20 << 20,
            rss_with_log_bytes: 40 << 20,
            rss_after_bytes: 30 << 20,
            peak_rss_bytes: 50 << 20,
            replay_seconds: 0.25,
        };
        let text = serde_json::to_string(&m.to_json()).unwrap();
        let back = ReplayMemory::from_json(&serde_json::from_str(&text).unwrap());
        assert_eq!(back, Some(m));
    }

    #[test]
    fn a_sliced_log_replays_to_the_whole_demo_s_state() {
        let config = Config::default();
        let tmp = tempfile::tempdir().unwrap();
        let written = write_log(&tmp.path().join("sliced"), 12, 3, &config, |_| {}).unwrap();
        let measured = measure_replay(&tmp.path().join("sliced"), &config).unwrap();
        assert_eq!(measured.events, written.events);
        assert_eq!(measured.reps, 12);
        let whole = crate::demo::generate(&DemoSpec {
            reps: 12,
            seed: 3,
            now: crate::bench::bench_now(),
            timezone: config.org.timezone,
            currency: config.org.currency,
            daily_ticks: false,
            prior_months: 0,
        });
        assert_eq!(written.events, whole.events.len() as u64);
        let mut log = Log::open(&tmp.path().join("whole")).unwrap();
        log.bind_org(&config.org).unwrap();
        let now = whole.events[0].occurred_at;
        for chunk in whole.events.chunks(5_000) {
            log.append_batch(chunk.to_vec(), now).unwrap();
        }
        let whole = rebuild(&log, &config.org, Cut::All, |_| {}).unwrap();
        let sliced = rebuild(
            &Log::open(&tmp.path().join("sliced")).unwrap(),
            &config.org,
            Cut::All,
            |_| {},
        )
        .unwrap();
        assert_eq!(measured.cells, cells(&whole));
        let alerts = |s: &pacer_projections::model::Model| {
            let mut v: Vec<(String, bool)> = s
                .alert_book()
                .iter()
                .map(|a| (a.id.clone(), a.is_standing()))
                .collect();
            v.sort();
            v
        };
        assert!(!alerts(&whole).is_empty());
        assert_eq!(alerts(&sliced), alerts(&whole));
        let month = whole.current_month().unwrap();
        let everyone = pacer_projections::report::ReportQuery::default();
        assert_eq!(
            pacer_projections::report::report(&sliced, month, &everyone),
            pacer_projections::report::report(&whole, month, &everyone)
        );
    }
}
