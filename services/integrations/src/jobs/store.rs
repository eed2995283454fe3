//! The `jobs` table: the tenant's view of its background jobs, written by the API when a job
//! is started and by the job's handler as it runs.

use chrono::{DateTime, Utc};
use director_platform::identity::Caller;
use director_platform::validate::Page;
use director_store::jobs::{self, NewJob};
use director_store::tenant::TenantDb;
use sqlx::FromRow;

use crate::domain::{JobId, JobKind, JobRequest, JobStatus, RunJob, Tally};

/// Columns of a job, in [`JobRow`] order.
macro_rules! columns {
    () => {
        "id, kind, params, status, progress_done, progress_total, attempts, last_error, \
         created_at, updated_at, result"
    };
}

/// One job as stored.
#[derive(Debug, Clone, FromRow)]
pub struct JobRow {
    pub id: JobId,
    pub kind: JobKind,
    pub params: serde_json::Value,
    pub status: JobStatus,
    pub progress_done: i32,
    pub progress_total: i32,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The [`Tally`] so far, once a page has been handled.
    pub result: Option<sqlx::types::Json<Tally>>,
}

impl JobRow {
    /// Whether the job will not change again.
    pub fn is_finished(&self) -> bool {
        self.status.is_finished()
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
    fn status(self) -> JobStatus {
        match self {
            Outcome::Succeeded => JobStatus::Succeeded,
            Outcome::Failed => JobStatus::Failed,
            Outcome::Dead => JobStatus::Dead,
        }
    }
}

/// What asking for a job got.
#[derive(Debug, Clone)]
pub enum Started {
    /// A new job, queued.
    New(JobRow),
    /// The same job, already queued or running.
    Existing(JobRow),
    /// The tenant already has `limit` jobs queued or running.
    TooMany { limit: u32 },
}

/// Whether an attempt may start.
#[derive(Debug, Clone)]
pub enum Attempting {
    /// Yes: the job, now `running`.
    Run(Box<JobRow>),
    /// Not yet: another job of the tenant is running.
    Wait,
    /// No: the job is finished or gone.
    Gone,
}

/// Jobs, through tenant transactions.
#[derive(Debug, Clone)]
pub struct JobStore {
    db: TenantDb,
    max_attempts: i16,
    /// Jobs a tenant may have queued or running at once (`MAX_ACTIVE_JOBS_PER_TENANT`).
    max_active: u32,
}

impl JobStore {
    /// The pool, for the queue's own bookkeeping.
    pub fn pool(&self) -> &sqlx::PgPool {
        self.db.pool()
    }

    /// The attempts each job gets.
    pub fn max_attempts(&self) -> i16 {
        self.max_attempts
    }

    pub fn new(db: TenantDb, max_attempts: i16, max_active: u32) -> Self {
        Self {
            db,
            max_attempts,
            max_active,
        }
    }

    /// Records the job `request` asks for and queues its run, in one transaction: the job is
    /// visible if and only if it will run. A job of the same kind and parameters still queued,
    /// running or waiting for a retry is answered instead of a new one ([`Started::Existing`]); a
    /// tenant with `max_active` such jobs gets [`Started::TooMany`]. The tenant's jobs are
    /// locked for the check (an advisory lock of the transaction), so two requests at once
    /// cannot both pass it.
    pub async fn start(
        &self,
        caller: &Caller,
        request: &JobRequest,
    ) -> Result<Started, sqlx::Error> {
        let (kind, params) = (request.kind(), request.params());
        let mut tx = self.db.begin(caller).await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('director.jobs/' || $1, 0))")
            .bind(caller.tenant_id.as_str())
            .persistent(self.db.persistent())
            .execute(&mut *tx)
            .await?;
        let existing: Option<JobRow> = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM jobs
             WHERE tenant_id = $1 AND kind = $2 AND params = $3
               AND status IN ('queued', 'running', 'failed')
             ORDER BY created_at
             LIMIT 1"
        ))
        .bind(caller.tenant_id.as_str())
        .bind(kind)
        .bind(&params)
        .persistent(self.db.persistent())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(existing) = existing {
            return Ok(Started::Existing(existing));
        }
        let (active,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM jobs
             WHERE tenant_id = $1 AND status IN ('queued', 'running', 'failed')",
        )
        .bind(caller.tenant_id.as_str())
        .persistent(self.db.persistent())
        .fetch_one(&mut *tx)
        .await?;
        if active >= i64::from(self.max_active) {
            return Ok(Started::TooMany {
                limit: self.max_active,
            });
        }
        let row: JobRow = sqlx::query_as(concat!(
            "INSERT INTO jobs (tenant_id, kind, params, created_by)
             VALUES ($1, $2, $3, $4)
             RETURNING ",
            columns!()
        ))
        .bind(caller.tenant_id.as_str())
        .bind(kind)
        .bind(&params)
        .bind(caller.user_id.as_str())
        .persistent(self.db.persistent())
        .fetch_one(&mut *tx)
        .await?;
        let run = RunJob {
            job_id: row.id,
            tenant_id: caller.tenant_id.clone(),
        };
        let mut job = NewJob::new(RunJob::QUEUE_IDENTIFIER, run.payload());
        job.max_attempts = Some(self.max_attempts);
        jobs::enqueue(&mut tx, &job).await?;
        tx.commit().await?;
        Ok(Started::New(row))
    }

    pub async fn get(&self, caller: &Caller, id: JobId) -> Result<Option<JobRow>, sqlx::Error> {
        let query = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM jobs WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(caller.tenant_id.as_str())
        .bind(id);
        self.db.read_optional(caller, query).await
    }

    /// The tenant's jobs, newest first.
    pub async fn list(
        &self,
        caller: &Caller,
        status: Option<JobStatus>,
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
        .bind(caller.tenant_id.as_str())
        .bind(status)
        .bind(page.offset)
        .bind(page.limit);
        self.db.fetch_all(caller, query).await
    }

    /// Marks attempt number `attempt` as running — unless another job of the tenant is
    /// running ([`Attempting::Wait`]: a tenant runs one sync or import at a time, however
    /// many it queued, so it cannot take every worker from the others). `Gone` when the job
    /// is gone or already finished (a duplicate run of a job that succeeded). The tenant's
    /// jobs are locked for the check, so two workers cannot both start one.
    pub async fn begin_attempt(
        &self,
        caller: &Caller,
        id: JobId,
        attempt: i32,
    ) -> Result<Attempting, sqlx::Error> {
        let mut tx = self.db.begin(caller).await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('director.jobs/' || $1, 0))")
            .bind(caller.tenant_id.as_str())
            .persistent(self.db.persistent())
            .execute(&mut *tx)
            .await?;
        // A `running` row unchanged for ten minutes is not running: its process died, and its
        // queue job ran out of attempts before it could say so. A live one writes its progress
        // after every page.
        let (others_running,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM jobs
                            WHERE tenant_id = $1 AND status = 'running' AND id <> $2
                              AND updated_at > now() - interval '10 minutes')",
        )
        .bind(caller.tenant_id.as_str())
        .bind(id)
        .persistent(self.db.persistent())
        .fetch_one(&mut *tx)
        .await?;
        if others_running {
            return Ok(Attempting::Wait);
        }
        let row: Option<JobRow> = sqlx::query_as(concat!(
            "UPDATE jobs SET status = 'running', attempts = greatest(attempts, $3)
             WHERE tenant_id = $1 AND id = $2 AND status NOT IN ('succeeded', 'dead')
             RETURNING ",
            columns!()
        ))
        .bind(caller.tenant_id.as_str())
        .bind(id)
        .bind(attempt)
        .persistent(self.db.persistent())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row.map_or(Attempting::Gone, |row| Attempting::Run(Box::new(row))))
    }

    /// Records how far the job has got and what it did with the records so far.
    pub async fn progress(
        &self,
        caller: &Caller,
        id: JobId,
        done: i32,
        total: i32,
        tally: &Tally,
    ) -> Result<(), sqlx::Error> {
        let query = sqlx::query(
            "UPDATE jobs SET progress_done = $3, progress_total = greatest($4, $3), result = $5
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(caller.tenant_id.as_str())
        .bind(id)
        .bind(done)
        .bind(total)
        .bind(sqlx::types::Json(tally));
        self.db.execute(caller, query).await.map(drop)
    }

    /// Records where an attempt ended, with its error when it failed.
    pub async fn finish(
        &self,
        caller: &Caller,
        id: JobId,
        outcome: Outcome,
        error: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        let query = sqlx::query(
            "UPDATE jobs SET status = $3, last_error = coalesce($4, last_error)
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(caller.tenant_id.as_str())
        .bind(id)
        .bind(outcome.status())
        .bind(error);
        self.db.execute(caller, query).await.map(drop)
    }
}
