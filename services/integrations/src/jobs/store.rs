//! The `jobs` table: the tenant's view of its background jobs, written by the API when a job
//! is started and by the job's handler as it runs.

use chrono::{DateTime, Utc};
use director_platform::identity::Caller;
use director_platform::jobs::{self, NewJob};
use director_platform::tenant::TenantDb;
use director_platform::validate::Page;
use graphile_worker::TaskHandler;
use sqlx::FromRow;
use uuid::Uuid;

use super::run::RunJob;

/// Columns of a job, in [`JobRow`] order.
macro_rules! columns {
    () => {
        "id, kind, params, status, progress_done, progress_total, attempts, last_error, \
         created_at, updated_at"
    };
}

/// One job as stored.
#[derive(Debug, Clone, FromRow)]
pub struct JobRow {
    pub id: Uuid,
    pub kind: String,
    pub params: serde_json::Value,
    pub status: String,
    pub progress_done: i32,
    pub progress_total: i32,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl JobRow {
    /// Whether the job will not change again.
    pub fn is_finished(&self) -> bool {
        matches!(self.status.as_str(), "succeeded" | "dead")
    }
}

/// Where a job's attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// Failed; another attempt is scheduled.
    Failed,
    /// Failed for good: out of attempts, or a failure retrying cannot fix.
    Dead,
}

impl Outcome {
    fn status(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Dead => "dead",
        }
    }
}

/// Jobs, through tenant transactions.
#[derive(Debug, Clone)]
pub struct JobStore {
    db: TenantDb,
    max_attempts: i16,
}

impl JobStore {
    /// The pool, for the queue's own bookkeeping.
    pub fn pool(&self) -> &sqlx::PgPool {
        self.db.pool()
    }

    pub fn new(db: TenantDb, max_attempts: i16) -> Self {
        Self { db, max_attempts }
    }

    /// Records a job of `kind` and queues its run, in one transaction: the job is visible if
    /// and only if it will run.
    pub async fn start(
        &self,
        caller: &Caller,
        kind: &'static str,
        params: serde_json::Value,
    ) -> Result<JobRow, sqlx::Error> {
        let mut tx = self.db.begin(caller).await?;
        let row: JobRow = sqlx::query_as(concat!(
            "INSERT INTO jobs (tenant_id, kind, params, created_by)
             VALUES ($1, $2, $3, $4)
             RETURNING ",
            columns!()
        ))
        .bind(&caller.tenant_id)
        .bind(kind)
        .bind(&params)
        .bind(&caller.user_id)
        .fetch_one(&mut *tx)
        .await?;
        let run = RunJob {
            job_id: row.id,
            tenant_id: caller.tenant_id.clone(),
        };
        let mut job = NewJob::new(RunJob::IDENTIFIER, run.payload());
        job.max_attempts = Some(self.max_attempts);
        jobs::enqueue(&mut tx, &job).await?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn get(&self, caller: &Caller, id: Uuid) -> Result<Option<JobRow>, sqlx::Error> {
        let query = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM jobs WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(&caller.tenant_id)
        .bind(id);
        self.db.read_optional(caller, query).await
    }

    /// The tenant's jobs, newest first.
    pub async fn list(
        &self,
        caller: &Caller,
        status: Option<&'static str>,
        page: Page,
    ) -> Result<Vec<JobRow>, sqlx::Error> {
        let query = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM jobs
             WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2)
             ORDER BY created_at DESC, id DESC
             OFFSET $3 LIMIT $4"
        ))
        .bind(&caller.tenant_id)
        .bind(status)
        .bind(page.offset)
        .bind(page.limit);
        self.db.fetch_all(caller, query).await
    }

    /// Marks attempt number `attempt` as running; `None` when the job is gone or already
    /// finished (a duplicate run of a job that succeeded).
    pub async fn begin_attempt(
        &self,
        caller: &Caller,
        id: Uuid,
        attempt: i32,
    ) -> Result<Option<JobRow>, sqlx::Error> {
        let query = sqlx::query_as(concat!(
            "UPDATE jobs SET status = 'running', attempts = greatest(attempts, $3)
             WHERE tenant_id = $1 AND id = $2 AND status NOT IN ('succeeded', 'dead')
             RETURNING ",
            columns!()
        ))
        .bind(&caller.tenant_id)
        .bind(id)
        .bind(attempt);
        self.db.fetch_optional(caller, query).await
    }

    /// Records how far the job has got.
    pub async fn progress(
        &self,
        caller: &Caller,
        id: Uuid,
        done: i32,
        total: i32,
    ) -> Result<(), sqlx::Error> {
        let query = sqlx::query(
            "UPDATE jobs SET progress_done = $3, progress_total = greatest($4, $3)
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&caller.tenant_id)
        .bind(id)
        .bind(done)
        .bind(total);
        self.db.execute(caller, query).await.map(drop)
    }

    /// Records where an attempt ended, with its error when it failed.
    pub async fn finish(
        &self,
        caller: &Caller,
        id: Uuid,
        outcome: Outcome,
        error: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        let query = sqlx::query(
            "UPDATE jobs SET status = $3, last_error = coalesce($4, last_error)
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&caller.tenant_id)
        .bind(id)
        .bind(outcome.status())
        .bind(error);
        self.db.execute(caller, query).await.map(drop)
    }
}
