//! The gRPC `grpc-timeout` header: how long the caller gives a call, read by the client
//! (to pass what is left on) and the balancer (to stop retrying once it is spent).

use std::time::Duration;

/// A `grpc-timeout` value (1 to 8 ASCII digits and a unit: `H`, `M`, `S`, `m`, `u`, `n`);
/// `None` if malformed. Shared by the gateway (the deadline it forwards) and the services'
/// clients and balancer.
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let split = value.len().checked_sub(1)?;
    let (digits, unit) = value.split_at(split);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        assert_eq!(parse_grpc_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_grpc_timeout("7000000u"), Some(Duration::from_secs(7)));
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("S"), None);
        assert_eq!(parse_grpc_timeout("12x"), None);
        assert_eq!(parse_grpc_timeout("123456789S"), None);
        // Only digits: `u64::from_str` alone would take a sign.
        assert_eq!(parse_grpc_timeout("+5S"), None);
        assert_eq!(parse_grpc_timeout("H"), None);
    }
}
