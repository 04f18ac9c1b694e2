//! The record codec: how one event is framed on disk and read back.
//!
//! A record is `[format version: u8][crc32 of payload: u32 BE][payload]`, the payload
//! being the bincode-2 encoding of the [`Recorded`] event. [`decode_record`] checks
//! the CRC, routes on the version byte and checks the seq the record holds against
//! the seq it is stored under; [`record_id`] reads only the event id (the id index is
//! built from them). Also [`seq_of_key`], a seq from a big-endian sled key.

use pacer_projections::event::Recorded;
use pacer_projections::time::Timestamp;

use crate::error::LogError;

/// The record framing version this version writes.
pub(super) const RECORD_V1: u8 = 1;
pub(super) const HEADER_BYTES: usize = 5;

pub(super) fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard()
}

pub(super) fn seq_of_key(k: &[u8]) -> Result<u64, String> {
    let bytes: [u8; 8] = k
        .try_into()
        .map_err(|_| format!("a key of {} bytes is not a u64 seq", k.len()))?;
    Ok(u64::from_be_bytes(bytes))
}

#[cfg(test)]
pub(super) fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.push(RECORD_V1);
    out.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Checks one framed record and reads only its event id (the id index is built from
/// them without decoding whole events).
pub(super) fn record_id(seq: u64, raw: &[u8]) -> Result<&str, LogError> {
    let corrupt = |reason: String| LogError::Corrupt { seq, reason };
    let payload = checked_payload(seq, raw)?;
    // The payload starts with `Recorded`'s seq and `recorded_at`, then the event's id.
    let ((at, _, id), _) =
        bincode::borrow_decode_from_slice::<(u64, Timestamp, &str), _>(payload, bincode_config())
            .map_err(|e| corrupt(format!("payload does not decode: {e}")))?;
    if at != seq {
        return Err(corrupt(format!(
            "the record says seq {at}, its key says {seq}"
        )));
    }
    Ok(id)
}

/// The payload of a framed record, once its version is known and its CRC matches.
fn checked_payload(seq: u64, raw: &[u8]) -> Result<&[u8], LogError> {
    let corrupt = |reason: String| LogError::Corrupt { seq, reason };
    if raw.len() < HEADER_BYTES {
        return Err(corrupt(format!(
            "the record has {} bytes, fewer than its header",
            raw.len()
        )));
    }
    let version = raw[0];
    let crc = u32::from_be_bytes([raw[1], raw[2], raw[3], raw[4]]);
    let payload = &raw[HEADER_BYTES..];
    let actual = crc32fast::hash(payload);
    if crc != actual {
        return Err(corrupt(format!(
            "CRC mismatch (stored {crc:08x}, computed {actual:08x})"
        )));
    }
    if version != RECORD_V1 {
        return Err(corrupt(format!("unknown record format version {version}")));
    }
    Ok(payload)
}

/// Checks and decodes one framed record, routing on its format version.
pub(super) fn decode_record(seq: u64, raw: &[u8]) -> Result<Recorded, LogError> {
    let corrupt = |reason: String| LogError::Corrupt { seq, reason };
    // The version byte routes decoding; RECORD_V1 is the only one so far.
    let payload = checked_payload(seq, raw)?;
    let (rec, used) = bincode::decode_from_slice::<Recorded, _>(payload, bincode_config())
        .map_err(|e| corrupt(format!("payload does not decode: {e}")))?;
    if used != payload.len() {
        return Err(corrupt(format!(
            "{} trailing bytes after the payload",
            payload.len() - used
        )));
    }
    if rec.seq != seq {
        return Err(corrupt(format!(
            "the record says seq {}, its key says {seq}",
            rec.seq
        )));
    }
    Ok(rec)
}
