//! The `notifications` table: the delivery log.

use chrono::{DateTime, Utc};
use director_platform::identity::Caller;
use director_platform::validate::Page;
use director_store::jobs::{self, NewJob};
use director_store::tenant::TenantDb;
use sqlx::{FromRow, PgConnection};

use super::limits::SpendingLimits;
use crate::domain::{NotificationChannel, NotificationId, NotificationStatus, SendNotification};
use crate::error::IntegrationsError;

/// Columns of a notification, in [`NotificationRow`] order.
macro_rules! columns {
    () => {
        "id, channel, recipient, message, status, attempts, last_error, provider_id, \
         created_at, updated_at"
    };
}

/// One notification as stored.
#[derive(Debug, Clone, FromRow)]
pub struct NotificationRow {
    pub id: NotificationId,
    pub channel: NotificationChannel,
    pub recipient: Option<String>,
    pub message: String,
    pub status: NotificationStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub provider_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A message to queue.
#[derive(Debug, Clone)]
pub struct NewNotification {
    pub channel: NotificationChannel,
    /// The E.164 number of an SMS; the channel override of a Slack message.
    pub recipient: Option<String>,
    pub message: String,
    /// The task event that caused it, if one did.
    pub source_event_id: Option<i64>,
    /// Makes it once-only: a notification with the same key already recorded for the tenant
    /// is not recorded, charged or sent again (see [`NotificationStore::queue_once_in`]).
    pub dedup_key: Option<String>,
}

/// Where a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted by the provider, with its id for the message when it gives one.
    Sent(Option<String>),
    /// Failed; another attempt is scheduled.
    Failed(String),
    /// Failed for good.
    Dead(String),
}

/// Notifications, through tenant transactions, charged to their tenant's spending limits.
#[derive(Debug, Clone)]
pub struct NotificationStore {
    db: TenantDb,
    max_attempts: i16,
    limits: SpendingLimits,
}

impl NotificationStore {
    /// The pool, for the queue's own bookkeeping.
    pub fn pool(&self) -> &sqlx::PgPool {
        self.db.pool()
    }

    pub fn new(db: TenantDb, max_attempts: i16, limits: SpendingLimits) -> Self {
        Self {
            db,
            max_attempts,
            limits,
        }
    }

    /// The limits notifications are held to.
    pub fn limits(&self) -> &SpendingLimits {
        &self.limits
    }

    pub fn db(&self) -> &TenantDb {
        &self.db
    }

    /// Charges `new` to the tenant's limit and queues it, in its own transaction; over the
    /// limit, nothing is stored and the answer says which limit.
    pub async fn queue(
        &self,
        caller: &Caller,
        new: NewNotification,
    ) -> Result<NotificationRow, IntegrationsError> {
        let mut tx = self.db.begin(caller).await?;
        if let Err(reached) = self
            .limits
            .charge(
                &mut tx,
                &caller.tenant_id,
                new.channel,
                self.db.persistent(),
            )
            .await?
        {
            return Err(IntegrationsError::LimitReached(reached));
        }
        let row = self.queue_in(&mut tx, caller, new).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Inside the caller's transaction: charges `new` to the tenant's limit and queues it, or,
    /// over the limit, records it `refused` with the reason (for notifications nobody is
    /// waiting on, such as those task events cause).
    pub async fn queue_or_refuse_in(
        &self,
        connection: &mut PgConnection,
        caller: &Caller,
        new: NewNotification,
    ) -> Result<NotificationRow, sqlx::Error> {
        match self
            .limits
            .charge(
                connection,
                &caller.tenant_id,
                new.channel,
                self.db.persistent(),
            )
            .await?
        {
            Ok(()) => self.queue_in(connection, caller, new).await,
            Err(reached) => {
                self.refuse_in(connection, caller, new, &reached.to_string())
                    .await
            }
        }
    }

    /// Like [`Self::queue_or_refuse_in`], unless a notification with `new`'s `dedup_key` is
    /// already recorded for the tenant: then nothing is done and `None` answered.
    pub async fn queue_once_in(
        &self,
        connection: &mut PgConnection,
        caller: &Caller,
        new: NewNotification,
    ) -> Result<Option<NotificationRow>, sqlx::Error> {
        if let Some(key) = &new.dedup_key {
            let recorded: Option<(NotificationId,)> = sqlx::query_as(
                "SELECT id FROM notifications WHERE tenant_id = $1 AND dedup_key = $2",
            )
            .bind(caller.tenant_id.as_str())
            .bind(key)
            .persistent(self.db.persistent())
            .fetch_optional(&mut *connection)
            .await?;
            if recorded.is_some() {
                return Ok(None);
            }
        }
        self.queue_or_refuse_in(connection, caller, new)
            .await
            .map(Some)
    }

    /// Records `new` as `refused` for `reason`, never to be sent.
    pub async fn refuse_in(
        &self,
        connection: &mut PgConnection,
        caller: &Caller,
        new: NewNotification,
        reason: &str,
    ) -> Result<NotificationRow, sqlx::Error> {
        tracing::info!(
            channel = new.channel.as_str(),
            reason,
            "notification refused"
        );
        self.insert(
            connection,
            caller,
            &new,
            NotificationStatus::Refused,
            Some(reason),
        )
        .await
    }

    /// Records `new` and queues its delivery inside the caller's transaction (already
    /// charged).
    async fn queue_in(
        &self,
        connection: &mut PgConnection,
        caller: &Caller,
        new: NewNotification,
    ) -> Result<NotificationRow, sqlx::Error> {
        let row = self
            .insert(connection, caller, &new, NotificationStatus::Queued, None)
            .await?;
        let send = SendNotification {
            notification_id: row.id,
            tenant_id: caller.tenant_id.clone(),
        };
        let mut job = NewJob::new(SendNotification::QUEUE_IDENTIFIER, send.payload());
        job.max_attempts = Some(self.max_attempts);
        jobs::enqueue(connection, &job).await?;
        Ok(row)
    }

    async fn insert(
        &self,
        connection: &mut PgConnection,
        caller: &Caller,
        new: &NewNotification,
        status: NotificationStatus,
        error: Option<&str>,
    ) -> Result<NotificationRow, sqlx::Error> {
        sqlx::query_as(concat!(
            "INSERT INTO notifications
                 (tenant_id, channel, recipient, message, source_event_id, status, last_error,
                  dedup_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             RETURNING ",
            columns!()
        ))
        .bind(caller.tenant_id.as_str())
        .bind(new.channel)
        .bind(&new.recipient)
        .bind(&new.message)
        .bind(new.source_event_id)
        .bind(status)
        .bind(error)
        .bind(&new.dedup_key)
        .persistent(self.db.persistent())
        .fetch_one(connection)
        .await
    }

    pub async fn get(
        &self,
        caller: &Caller,
        id: NotificationId,
    ) -> Result<Option<NotificationRow>, sqlx::Error> {
        let query = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM notifications WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(caller.tenant_id.as_str())
        .bind(id);
        self.db.read_optional(caller, query).await
    }

    /// The tenant's delivery log, newest first.
    pub async fn list(
        &self,
        caller: &Caller,
        status: Option<NotificationStatus>,
        page: Page,
    ) -> Result<Vec<NotificationRow>, sqlx::Error> {
        let query = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM notifications
             WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2)
             ORDER BY created_at DESC, id DESC
             OFFSET $3 LIMIT $4"
        ))
        .bind(caller.tenant_id.as_str())
        .bind(status)
        .bind(page.offset)
        .bind(page.limit);
        self.db.fetch_all(caller, query).await
    }

    /// Records attempt number `attempt` and where it ended.
    pub async fn record(
        &self,
        caller: &Caller,
        id: NotificationId,
        attempt: i32,
        delivery: &Delivery,
    ) -> Result<(), sqlx::Error> {
        let (status, provider_id, error) = match delivery {
            Delivery::Sent(provider_id) => (NotificationStatus::Sent, provider_id.as_deref(), None),
            Delivery::Failed(error) => (NotificationStatus::Failed, None, Some(error.as_str())),
            Delivery::Dead(error) => (NotificationStatus::Dead, None, Some(error.as_str())),
        };
        let query = sqlx::query(
            "UPDATE notifications
             SET status = $3, attempts = greatest(attempts, $4), provider_id = $5,
                 last_error = $6
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(caller.tenant_id.as_str())
        .bind(id)
        .bind(status)
        .bind(attempt)
        .bind(provider_id)
        .bind(error);
        self.db.execute(caller, query).await.map(drop)
    }
}
