//! What a tenant may spend of the operator's (or its own) SMS and Slack: per-tenant counts per
//! window, and the countries an SMS may go to.
//!
//! - `SMS_DAILY_LIMIT` (default 500) SMS per tenant per UTC day, `SLACK_PER_MINUTE_LIMIT`
//!   (default 30) Slack messages per tenant per minute. A notification is charged in the
//!   transaction that queues it (`notification_usage`, one row per tenant, channel and
//!   window, taken with an atomic upsert), so replicas share the count and a refused request
//!   costs nothing. Beyond the limit the API answers RESOURCE_EXHAUSTED with a RetryInfo (429
//!   with `Retry-After` through the gateway); a notification a task event causes is recorded
//!   `refused`.
//! - `SMS_ALLOWED_CALLING_CODES` (e.g. `1,44,353`): the calling codes an SMS may go to,
//!   parsed with `phonenumber` (libphonenumber's data). Unset, only the sender number's own.

use std::time::Duration;

use chrono::Utc;
use director_platform::config::{ConfigError, Env};
use director_platform::identity::TenantId;
use sqlx::PgConnection;

use crate::domain::{LimitReached, NotificationChannel, Window};

/// A channel's limit: so many per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limit {
    /// The variable that sets it, named in refusals.
    variable: &'static str,
    per_window: u32,
    window: Window,
}

const SMS_DAILY_LIMIT: &str = "SMS_DAILY_LIMIT";
const SLACK_PER_MINUTE_LIMIT: &str = "SLACK_PER_MINUTE_LIMIT";
const SMS_ALLOWED_CALLING_CODES: &str = "SMS_ALLOWED_CALLING_CODES";

/// The limits every tenant is held to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendingLimits {
    sms: Limit,
    slack: Limit,
    /// `None`: the sender number's own calling code only.
    calling_codes: Option<Vec<u16>>,
}

impl SpendingLimits {
    /// Reads `SMS_DAILY_LIMIT`, `SLACK_PER_MINUTE_LIMIT` and `SMS_ALLOWED_CALLING_CODES`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let calling_codes = env
            .string(SMS_ALLOWED_CALLING_CODES)
            .map(|raw| parse_calling_codes(&raw))
            .transpose()?;
        Ok(Self {
            sms: Limit {
                variable: SMS_DAILY_LIMIT,
                per_window: env.parse_or(SMS_DAILY_LIMIT, 500)?,
                window: Window::UtcDay,
            },
            slack: Limit {
                variable: SLACK_PER_MINUTE_LIMIT,
                per_window: env.parse_or(SLACK_PER_MINUTE_LIMIT, 30)?,
                window: Window::Minute,
            },
            calling_codes,
        })
    }

    /// Whether an SMS to `to` (E.164) may be sent from `sender`: the reason when not.
    pub fn check_destination(&self, to: &str, sender: &str) -> Result<(), DestinationRefused> {
        let code = calling_code(to).ok_or(DestinationRefused::NoCallingCode)?;
        let allowed = match &self.calling_codes {
            Some(codes) => codes.clone(),
            None => vec![calling_code(sender).ok_or(DestinationRefused::SenderUnknown)?],
        };
        if allowed.contains(&code) {
            return Ok(());
        }
        Err(DestinationRefused::NotAllowed { code, allowed })
    }

    /// Charges one `channel` notification to `tenant_id` in the caller's transaction, or says
    /// which limit it is over (charging nothing). `persistent` is the store's
    /// [`TenantDb::persistent`](director_store::tenant::TenantDb::persistent).
    pub async fn charge(
        &self,
        connection: &mut PgConnection,
        tenant_id: &TenantId,
        channel: NotificationChannel,
        persistent: bool,
    ) -> Result<Result<(), LimitReached>, sqlx::Error> {
        let limit = match channel {
            NotificationChannel::Sms => self.sms,
            NotificationChannel::Slack => self.slack,
        };
        let now = Utc::now();
        let window_start = limit.window.start(now);
        let reached = || LimitReached {
            channel,
            variable: limit.variable,
            per_window: limit.per_window,
            window: limit.window,
            retry_after: (window_start + limit.window.length() - now)
                .to_std()
                .unwrap_or_default()
                .max(Duration::from_secs(1)),
        };
        if limit.per_window == 0 {
            return Ok(Err(reached()));
        }
        let used: Option<(i32,)> = sqlx::query_as(
            "INSERT INTO notification_usage (tenant_id, channel, window_start, used)
             VALUES ($1, $2, $3, 1)
             ON CONFLICT (tenant_id, channel, window_start)
             DO UPDATE SET used = notification_usage.used + 1
             WHERE notification_usage.used < $4
             RETURNING used",
        )
        .bind(tenant_id.as_str())
        .bind(channel)
        .bind(window_start)
        .bind(i32::try_from(limit.per_window).unwrap_or(i32::MAX))
        .persistent(persistent)
        .fetch_optional(&mut *connection)
        .await?;
        match used {
            None => Ok(Err(reached())),
            Some((1,)) => {
                // A new window: the tenant's earlier ones of this channel are spent.
                sqlx::query(
                    "DELETE FROM notification_usage
                     WHERE tenant_id = $1 AND channel = $2 AND window_start < $3",
                )
                .bind(tenant_id.as_str())
                .bind(channel)
                .bind(window_start)
                .persistent(persistent)
                .execute(connection)
                .await?;
                Ok(Ok(()))
            }
            Some(_) => Ok(Ok(())),
        }
    }
}

/// Why an SMS may not go to a number; said of the number (`to …`, or as the field's
/// violation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationRefused {
    #[error("is not a phone number with a known country calling code")]
    NoCallingCode,
    /// The default (the sender's own calling code) cannot be worked out.
    #[error(
        "cannot be checked: the sender number has no recognisable calling code; set \
         SMS_ALLOWED_CALLING_CODES"
    )]
    SenderUnknown,
    #[error("calling code +{code} is not allowed (allowed: {})", listed(allowed))]
    NotAllowed { code: u16, allowed: Vec<u16> },
}

/// `+1, +44`.
fn listed(codes: &[u16]) -> String {
    let listed: Vec<String> = codes.iter().map(|code| format!("+{code}")).collect();
    listed.join(", ")
}

/// The country calling code of an E.164 number.
fn calling_code(number: &str) -> Option<u16> {
    phonenumber::parse(None, number)
        .ok()
        .map(|parsed| parsed.code().value())
}

/// `1,44,353` (a leading `+` is accepted) as calling codes.
fn parse_calling_codes(raw: &str) -> Result<Vec<u16>, ConfigError> {
    let codes = raw
        .split(',')
        .map(str::trim)
        .filter(|code| !code.is_empty())
        .map(|code| {
            code.trim_start_matches('+')
                .parse::<u16>()
                .ok()
                .filter(|code| (1..=999).contains(code))
                .ok_or_else(|| {
                    ConfigError::invalid(
                        SMS_ALLOWED_CALLING_CODES,
                        "comma-separated calling codes such as 1,44,353",
                        raw,
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if codes.is_empty() {
        return Err(ConfigError::invalid(
            SMS_ALLOWED_CALLING_CODES,
            "comma-separated calling codes such as 1,44,353",
            raw,
        ));
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn by_default_only_the_senders_calling_code_is_allowed() {
        let limits = SpendingLimits::from_env(&Env::default()).unwrap();
        assert_eq!(
            limits.check_destination("+15550100001", "+15550100000"),
            Ok(())
        );
        let refused = limits
            .check_destination("+882123456789", "+15550100000")
            .unwrap_err()
            .to_string();
        assert_eq!(refused, "calling code +882 is not allowed (allowed: +1)");
        assert!(
            limits
                .check_destination("+447700900123", "+447700900000")
                .is_ok()
        );
    }

    #[test]
    fn listed_calling_codes_replace_the_default() {
        let env = Env::from_pairs([(SMS_ALLOWED_CALLING_CODES, "1, +44,353")]);
        let limits = SpendingLimits::from_env(&env).unwrap();
        assert!(
            limits
                .check_destination("+353861234567", "+15550100000")
                .is_ok()
        );
        let refused = limits
            .check_destination("+33612345678", "+15550100000")
            .unwrap_err()
            .to_string();
        assert!(refused.contains("+33"), "{refused}");
        assert!(refused.contains("+1, +44, +353"), "{refused}");
    }

    #[test]
    fn nonsense_settings_are_refused_naming_the_variable() {
        for (variable, value) in [
            (SMS_ALLOWED_CALLING_CODES, "one"),
            (SMS_ALLOWED_CALLING_CODES, ","),
            (SMS_ALLOWED_CALLING_CODES, "1000"),
            (SMS_DAILY_LIMIT, "-1"),
            (SLACK_PER_MINUTE_LIMIT, "lots"),
        ] {
            let error =
                SpendingLimits::from_env(&Env::from_pairs([(variable, value)])).expect_err(value);
            assert_eq!(error.variable, variable);
        }
    }
}
