//! The log's database and formats: opening sled ([`open_db`]), the format this
//! version writes and the older ones it reads, and [`upgrade`], which brings an older
//! log up to this format when it is opened.

use std::path::Path;

use pacer_projections::state::void_target;

use crate::error::LogError;

use super::reader::LogReader;
use super::record::seq_of_key;

/// The format this version writes.
pub(super) const FORMAT: &str = "pacer-log/3";
/// The formats before, which this version reads (and marks as its own).
pub(super) const FORMAT_V2: &str = "pacer-log/2";
pub(super) const FORMAT_V1: &str = "pacer-log/1";

/// sled's page cache (its default is 1 GiB). The log is appended at its end and read
/// front to back on a rebuild, so a large cache mostly holds pages that will not be
/// read again, and it would count against the engine's memory beside the
/// projections; the operating system's file cache still serves re-reads.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// How long `open` waits for another holder of the log to let go of it (a process
/// that is exiting, or a handle being dropped) before saying the log is in use.
const LOCK_WAIT_MS: u64 = 3_000;

pub(crate) fn open_db(dir: &Path) -> Result<sled::Db, LogError> {
    let mut waited_ms = 0;
    loop {
        match sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            .open()
        {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                if waited_ms >= LOCK_WAIT_MS {
                    return Err(LogError::Locked {
                        path: dir.to_owned(),
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
                waited_ms += 20;
            }
            Err(source) => {
                return Err(LogError::Open {
                    path: dir.to_owned(),
                    source,
                })
            }
        }
    }
}

/// Brings a `pacer-log/1` or `/2` log to this format: the void targets its `ids` tree
/// knew go into `voids` (the caller then marks the format; `open` drops `ids`).
pub(super) fn upgrade(
    db: &sled::Db,
    events: &sled::Tree,
    voids: &sled::Tree,
) -> Result<(), LogError> {
    let storage = |source| LogError::Storage {
        doing: "upgrading the log's format",
        source,
    };
    let ids = db.open_tree("ids").map_err(storage)?;
    let reader = LogReader {
        events: events.clone(),
        voids: voids.clone(),
        chunks: db.open_tree("chunks").map_err(storage)?,
    };
    for rec in reader.iter_from(1) {
        // A damaged record ends the upgrade there: the log must still open, and
        // whoever reads it reports the damage with its seq.
        let Ok(rec) = rec else {
            break;
        };
        let Some(target) = void_target(&rec.event) else {
            continue;
        };
        let Some(seq) = ids.get(target).map_err(storage)? else {
            continue;
        };
        let seq = seq_of_key(&seq).map_err(|reason| LogError::Corrupt {
            seq: rec.seq,
            reason: format!("the old id index: {reason}"),
        })?;
        if seq < rec.seq {
            voids
                .insert(rec.seq.to_be_bytes(), &seq.to_be_bytes())
                .map_err(storage)?;
        }
    }
    db.flush().map_err(storage)?;
    Ok(())
}
