//! The windows a tenant's spending is counted in, and the refusal a notification over its
//! limit gets. The limits themselves are configuration (`notifications::limits`).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, DurationRound as _, TimeDelta, Utc};

use super::states::NotificationChannel;

/// What a limit counts per: notifications are charged to the window they are queued in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    UtcDay,
    Minute,
}

impl Window {
    pub fn length(self) -> TimeDelta {
        match self {
            Self::UtcDay => TimeDelta::days(1),
            Self::Minute => TimeDelta::minutes(1),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::UtcDay => "UTC day",
            Self::Minute => "minute",
        }
    }

    /// The window `now` falls in.
    pub fn start(self, now: DateTime<Utc>) -> DateTime<Utc> {
        now.duration_trunc(self.length()).unwrap_or(now)
    }
}

/// A notification over its tenant's limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitReached {
    pub channel: NotificationChannel,
    /// The variable that sets the limit, named in the refusal.
    pub variable: &'static str,
    pub per_window: u32,
    pub window: Window,
    /// Until the next window opens.
    pub retry_after: Duration,
}

impl fmt::Display for LimitReached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.channel {
            NotificationChannel::Sms => "SMS",
            NotificationChannel::Slack => "Slack messages",
        };
        write!(
            f,
            "{} reached: this tenant may send {} {what} per {}; the next window opens in {} s",
            self.variable,
            self.per_window,
            self.window.name(),
            self.retry_after.as_secs().max(1)
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn windows_are_utc_days_and_minutes() {
        let now = DateTime::parse_from_rfc3339("2026-12-06T13:45:30.5Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            Window::UtcDay.start(now).to_rfc3339(),
            "2026-12-06T00:00:00+00:00"
        );
        assert_eq!(
            Window::Minute.start(now).to_rfc3339(),
            "2026-12-06T13:45:00+00:00"
        );
    }
}
