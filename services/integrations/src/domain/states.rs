//! The states the service stores as text, each an enum mapped in one place to the database
//! (the values `migrations/integrations` allows; `director_platform::stored_as_text!`) and to
//! the proto.
//!
//! Decoding is strict both ways: a value in our own table the enum does not know fails the
//! read ([`UnknownValue`], a database error), and an enum value the proto cannot say does not
//! compile. The proto's `UNSPECIFIED` is only ever read as a request's "any" filter.

use director_proto::integrations as pb;

pub use director_platform::domain_state::UnknownValue;
use director_platform::validate::Refused;

/// Declares a stored state: the enum, its text in the database (`stored_as_text!`), its proto
/// value.
macro_rules! stored_state {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($state:literal, proto $proto:ident) {
            $( $(#[$variant_meta:meta])* $variant:ident = $text:literal => $proto_variant:ident, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant, )+
        }

        director_platform::stored_as_text!($state, $name { $($variant => $text),+ });

        impl $name {
            /// As the API shows it.
            pub const fn to_proto(self) -> pb::$proto {
                match self {
                    $(Self::$variant => pb::$proto::$proto_variant,)+
                }
            }

            /// The value a request's filter names: `None` for UNSPECIFIED (any), and the
            /// values allowed when it names none.
            pub fn filter_from_proto(value: i32) -> Result<Option<Self>, Refused> {
                match pb::$proto::try_from(value) {
                    Ok(pb::$proto::Unspecified) => Ok(None),
                    $(Ok(pb::$proto::$proto_variant) => Ok(Some(Self::$variant)),)+
                    Err(_) => Err(Refused::rule(format!(
                        "must be {}",
                        one_of(Self::ALL.iter().map(|state| state.as_str()))
                    ))),
                }
            }
        }

    };
}

stored_state! {
    /// What a job does (`jobs.kind`).
    pub enum JobKind ("job kind", proto JobKind) {
        /// Every Vessey driver upserted into Dispatch.
        VesseyDriverSync = "vessey_driver_sync" => VesseyDriverSync,
        /// One day's Vessey collections imported as tasks.
        VesseyCollectionImport = "vessey_collection_import" => VesseyCollectionImport,
    }
}

stored_state! {
    /// Where a job is (`jobs.status`).
    pub enum JobStatus ("job status", proto JobStatus) {
        Queued = "queued" => Queued,
        Running = "running" => Running,
        Succeeded = "succeeded" => Succeeded,
        /// An attempt failed; another is scheduled.
        Failed = "failed" => Failed,
        /// Failed for good.
        Dead = "dead" => Dead,
    }
}

impl JobStatus {
    /// Whether a job in this state will not change again.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Succeeded | Self::Dead)
    }
}

stored_state! {
    /// How a notification is sent (`notifications.channel`, `notification_usage.channel`).
    pub enum NotificationChannel ("notification channel", proto NotificationChannel) {
        /// A text message through Twilio.
        Sms = "sms" => Sms,
        /// A message to the tenant's Slack webhook.
        Slack = "slack" => Slack,
    }
}

stored_state! {
    /// Where a notification's delivery is (`notifications.status`).
    pub enum NotificationStatus ("notification status", proto NotificationStatus) {
        Queued = "queued" => Queued,
        Sent = "sent" => Sent,
        /// An attempt failed; another is scheduled.
        Failed = "failed" => Failed,
        /// Failed for good.
        Dead = "dead" => Dead,
        /// Never sent: over a spending limit, or to a destination not allowed.
        Refused = "refused" => Refused,
    }
}

impl NotificationStatus {
    /// Whether a delivery attempt has something to do: the notification is not sent, dead
    /// or refused.
    pub fn awaits_delivery(self) -> bool {
        matches!(self, Self::Queued | Self::Failed)
    }
}

/// `a, b or c`.
fn one_of<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn every_state_reads_back_as_written_and_an_unknown_one_is_an_error() {
        for status in JobStatus::ALL {
            assert_eq!(status.as_str().parse::<JobStatus>().unwrap(), *status);
        }
        for status in NotificationStatus::ALL {
            assert_eq!(
                status.as_str().parse::<NotificationStatus>().unwrap(),
                *status
            );
        }
        let unknown = "paused".parse::<JobStatus>().unwrap_err();
        assert_eq!(unknown.to_string(), "\"paused\" is not a known job status");
        assert!("SMS".parse::<NotificationChannel>().is_err());
    }

    #[test]
    fn filters_map_unspecified_to_any_and_name_the_allowed_values() {
        assert_eq!(JobStatus::filter_from_proto(0).unwrap(), None);
        assert_eq!(
            JobStatus::filter_from_proto(pb::JobStatus::Dead as i32).unwrap(),
            Some(JobStatus::Dead)
        );
        assert_eq!(
            JobStatus::filter_from_proto(99).unwrap_err().to_string(),
            "must be queued, running, succeeded, failed or dead"
        );
        assert_eq!(
            NotificationStatus::filter_from_proto(99)
                .unwrap_err()
                .to_string(),
            "must be queued, sent, failed, dead or refused"
        );
    }

    #[test]
    fn the_api_sees_each_state_as_its_proto_value() {
        assert_eq!(
            JobKind::VesseyCollectionImport.to_proto(),
            pb::JobKind::VesseyCollectionImport
        );
        assert_eq!(
            NotificationChannel::Slack.to_proto(),
            pb::NotificationChannel::Slack
        );
        assert_eq!(
            NotificationStatus::Refused.to_proto(),
            pb::NotificationStatus::Refused
        );
    }

    /// Every value of each enum is one the table's CHECK accepts and reads back as itself; a
    /// text no value has fails the read.
    #[tokio::test]
    async fn each_state_matches_what_the_migrations_store() {
        use sqlx::Connection as _;

        let url = director_store::testing::fresh_database("integrations").await;
        let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query("SELECT set_config('app.tenant_id', 't1', false)")
            .execute(&mut db)
            .await
            .unwrap();
        for kind in JobKind::ALL {
            for status in JobStatus::ALL {
                let stored: (JobKind, JobStatus) = sqlx::query_as(
                    "INSERT INTO jobs (tenant_id, kind, status, created_by)
                     VALUES ('t1', $1, $2, 'u1') RETURNING kind, status",
                )
                .bind(kind)
                .bind(status)
                .fetch_one(&mut db)
                .await
                .unwrap();
                assert_eq!(stored, (*kind, *status));
            }
        }
        for channel in NotificationChannel::ALL {
            for status in NotificationStatus::ALL {
                let stored: (NotificationChannel, NotificationStatus) = sqlx::query_as(
                    "INSERT INTO notifications (tenant_id, channel, recipient, message, status)
                     VALUES ('t1', $1, '+15550100042', 'hello', $2) RETURNING channel, status",
                )
                .bind(channel)
                .bind(status)
                .fetch_one(&mut db)
                .await
                .unwrap();
                assert_eq!(stored, (*channel, *status));
            }
        }
        let unknown = sqlx::query_as::<_, (JobStatus,)>("SELECT 'paused'::text")
            .fetch_one(&mut db)
            .await
            .unwrap_err();
        assert!(
            unknown
                .to_string()
                .contains("\"paused\" is not a known job status"),
            "{unknown}"
        );
    }
}
