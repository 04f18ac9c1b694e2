//! Rebuilding the projections from the log: the one way state is made, whether at
//! start-up, for a report "as of" an earlier seq, or to verify a live state.

use pacer_projections::state::{OrgConfig, State};

use crate::error::LogError;
use crate::log::Log;

/// Folds the log's events with seq ≤ `to_seq` (all when `None`) into a fresh state.
/// `progress` is called with each applied seq (cheap: call sites throttle themselves).
pub fn rebuild(
    log: &Log,
    org: &OrgConfig,
    to_seq: Option<u64>,
    mut progress: impl FnMut(u64),
) -> Result<State, LogError> {
    let mut state = State::new(org.clone());
    for rec in log.iter_from(1) {
        let rec = rec?;
        if to_seq.is_some_and(|n| rec.seq > n) {
            break;
        }
        state.apply(&rec);
        progress(rec.seq);
    }
    Ok(state)
}
