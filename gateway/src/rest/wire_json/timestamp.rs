//! `google.protobuf.Timestamp` as prost-reflect renders it, written digit by digit.

use super::Fallback;
use super::wire::{Occurrence, Raw, Reader};

/// Earliest and latest seconds prost-reflect renders (0001-01-01 to 9999-12-31).
const MIN_TIMESTAMP_SECONDS: i64 = -62_135_596_800;
const MAX_TIMESTAMP_SECONDS: i64 = 253_402_300_799;

/// A `google.protobuf.Timestamp` as prost-reflect renders it: its range checked, then
/// prost-types' RFC 3339 text (UTC, `Z`, 0, 3, 6 or 9 fractional digits).
pub(super) fn timestamp(segments: &[Occurrence<'_>], out: &mut Vec<u8>) -> Result<(), Fallback> {
    let mut value = prost_types::Timestamp::default();
    for segment in segments {
        let Raw::Len(bytes) = segment.raw else {
            return Err(Fallback("message is not length-delimited"));
        };
        let mut reader = Reader { bytes };
        while !reader.bytes.is_empty() {
            match reader.field()? {
                (1, Raw::Varint(seconds)) => value.seconds = seconds as i64,
                (2, Raw::Varint(nanos)) => value.nanos = nanos as i32,
                (1 | 2, _) => return Err(Fallback("unexpected wire type")),
                _ => {}
            }
        }
    }
    if !(MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS).contains(&value.seconds) {
        return Err(Fallback("timestamp out of range"));
    }
    out.push(b'"');
    if (0..1_000_000_000).contains(&value.nanos) {
        rfc3339(value.seconds, value.nanos, out);
    } else {
        // Nanoseconds out of their range: prost-types normalises them; let it.
        use std::io::Write as _;
        write!(out, "{value}").map_err(|_| Fallback("timestamp"))?;
    }
    out.push(b'"');
    Ok(())
}

/// `seconds` (0001-01-01 to 9999-12-31) and `nanos` (0 to 999,999,999) as prost-types'
/// `Display` writes a timestamp: `YYYY-MM-DDTHH:MM:SS`, then no fraction, 3, 6 or 9 digits,
/// then `Z`. Written digit by digit: through `core::fmt` the 200 timestamps of a page of 100
/// companies were a sixth of the gateway's CPU for that request (perf, issue 9).
fn rfc3339(seconds: i64, nanos: i32, out: &mut Vec<u8>) {
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    // Howard Hinnant's days → civil date (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);

    let mut text = [0u8; 30];
    let mut put = |at: usize, value: i64, width: usize| {
        let mut value = value;
        for index in (at..at + width).rev() {
            text[index] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, of_day / 3600, 2);
    put(14, of_day / 60 % 60, 2);
    put(17, of_day % 60, 2);
    let nanos = i64::from(nanos);
    let end = if nanos == 0 {
        19
    } else if nanos % 1_000_000 == 0 {
        put(20, nanos / 1_000_000, 3);
        23
    } else if nanos % 1000 == 0 {
        put(20, nanos / 1000, 6);
        26
    } else {
        put(20, nanos, 9);
        29
    };
    text[4] = b'-';
    text[7] = b'-';
    text[10] = b'T';
    text[13] = b':';
    text[16] = b':';
    text[19] = b'.';
    text[end] = b'Z';
    out.extend_from_slice(&text[..=end]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn display(seconds: i64, nanos: i32) -> String {
        prost_types::Timestamp { seconds, nanos }.to_string()
    }

    fn fast(seconds: i64, nanos: i32) -> String {
        let mut out = Vec::new();
        rfc3339(seconds, nanos, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    pub(super) fn timestamps_are_written_as_prost_types_writes_them() {
        let mut seconds = vec![
            MIN_TIMESTAMP_SECONDS,
            MIN_TIMESTAMP_SECONDS + 1,
            MAX_TIMESTAMP_SECONDS,
            MAX_TIMESTAMP_SECONDS - 86_400,
            -1,
            0,
            1,
            86_399,
            86_400,
            951_782_400,    // 2000-02-29
            951_868_800,    // 2000-03-01
            -2_203_891_200, // 1900-03-01
            4_107_542_400,  // 2100-03-01
            1_714_543_200,
        ];
        // Every day boundary of a few centuries either side of the epoch, and odd seconds.
        let mut second = MIN_TIMESTAMP_SECONDS;
        while second <= MAX_TIMESTAMP_SECONDS {
            seconds.push(second);
            seconds.push(second + 43_261);
            second += 86_400 * 97 + 3_599;
        }
        for &seconds in &seconds {
            for nanos in [0, 1, 999_999_999, 250_000_000, 120_000, 7_000, 100_000_000] {
                assert_eq!(
                    fast(seconds, nanos),
                    display(seconds, nanos),
                    "{seconds} {nanos}"
                );
            }
        }
    }
}
