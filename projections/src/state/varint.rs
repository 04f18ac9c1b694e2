//! Variable-length integers (LEB128; signed ones zigzag-encoded first), for the
//! parts of the state kept packed in bytes: a rep's bookings by day, a deal's facts.
//! Small numbers take one byte, the dates and amounts the fold sees three or four.
//! The bytes are the state's own, written by these functions in the same process, so
//! reading past their end is a bug.

/// Appends `v`, seven bits a byte, low bits first.
pub(super) fn write_u64(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads what [`write_u64`] wrote at the start of `bytes`: the number and the rest.
pub(super) fn read_u64(bytes: &[u8]) -> (u64, &[u8]) {
    let mut v = 0u64;
    let mut shift = 0;
    for (i, b) in bytes.iter().enumerate() {
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return (v, &bytes[i + 1..]);
        }
        shift += 7;
    }
    unreachable!("write_u64 always ends a number")
}

/// Appends `v` zigzag-encoded, so small negative numbers stay short too.
pub(super) fn write_i64(out: &mut Vec<u8>, v: i64) {
    write_u64(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Reads what [`write_i64`] wrote.
pub(super) fn read_i64(bytes: &[u8]) -> (i64, &[u8]) {
    let (z, rest) = read_u64(bytes);
    (((z >> 1) as i64) ^ -((z & 1) as i64), rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_varints_round_trip_at_every_edge() {
        for v in [
            0,
            1,
            -1,
            63,
            -64,
            64,
            127,
            128,
            -129,
            i64::MAX,
            i64::MIN,
            12_345_678_900,
        ] {
            let mut out = Vec::new();
            write_i64(&mut out, v);
            let (back, rest) = read_i64(&out);
            assert_eq!((back, rest.len()), (v, 0), "{v}");
        }
    }

    #[test]
    fn unsigned_varints_round_trip_and_small_ones_take_one_byte() {
        for (v, len) in [
            (0, 1),
            (127, 1),
            (128, 2),
            (u64::from(u32::MAX), 5),
            (u64::MAX, 10),
        ] {
            let mut out = vec![];
            write_u64(&mut out, v);
            assert_eq!(out.len(), len, "{v}");
            out.push(0xAA);
            assert_eq!(read_u64(&out), (v, &[0xAA][..]), "{v}");
        }
    }
}
