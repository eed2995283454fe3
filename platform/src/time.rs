//! Conversions between database times (`chrono`) and protobuf `Timestamp`s.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

/// A database time as a protobuf `Timestamp`.
pub fn to_timestamp(time: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: time.timestamp(),
        // Always below 2e9 (chrono keeps leap seconds under 2e9), so it fits an i32.
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(999_999_999),
    }
}

/// A protobuf `Timestamp` as a database time; `None` when it is outside chrono's range or
/// not normalised.
pub fn from_timestamp(timestamp: &Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(timestamp.nanos).ok()?;
    DateTime::from_timestamp(timestamp.seconds, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_with_nanoseconds() {
        let time = DateTime::from_timestamp(1_700_000_000, 123_456_789).expect("valid time");
        assert_eq!(from_timestamp(&to_timestamp(time)), Some(time));
    }

    #[test]
    fn negative_nanos_are_rejected() {
        assert_eq!(
            from_timestamp(&Timestamp {
                seconds: 0,
                nanos: -1
            }),
            None
        );
    }
}
