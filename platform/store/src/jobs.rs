//! Durable background jobs, on [graphile_worker](https://docs.rs/graphile_worker).
//!
//! Why graphile_worker (over apalis-postgres): jobs are enqueued by a SQL function
//! (`graphile_worker.add_job`) callable inside the transaction that causes them, so a change
//! and its job commit or vanish together; `job_key` de-duplicates pending jobs; retries with
//! exponential backoff, `attempts`/`last_error` and permanently failed jobs kept in the table
//! come built in; LISTEN/NOTIFY picks jobs up in milliseconds; and heartbeat-based recovery
//! hands the jobs of a worker that died (killed, OOM, lost its node) to another one.
//!
//! A service that runs jobs:
//! - names them in its catalog entry ([`ServiceSpec::jobs`]), whose constants its handlers
//!   use as their `TaskHandler::IDENTIFIER`;
//! - installs the queue's schema in its database with its migrations ([`install`], run by
//!   `migrate` for services whose catalog entry says `runs_jobs`);
//! - enqueues with [`enqueue`] inside a tenant transaction, with a payload naming that
//!   tenant (`tenant_id`); SQL triggers call the same `director_enqueue_job` function;
//! - runs a worker in the process with [`spawn_worker`], configured here the same way for
//!   every service (concurrency, attempts, recovery, shutdown with the service).
//!
//! Handlers must be idempotent: a job runs at least once, and again after a crash.
//!
//! # Attempts
//!
//! A job's `attempts` (`WorkerContext::job().attempts()` in its handler, 1 on its first run)
//! counts every run it has started, including one cut short — its worker killed, or stopped
//! past the shutdown grace. graphile_worker hands such a job back *un*counting that run
//! (recovery decrements `attempts`), so a job recovered after a crash read `attempts: 1`
//! after running twice, and one that crashes its worker would run forever; the recovery hook
//! here keeps the count instead (`keep_interrupted_attempt`). A run cut short therefore
//! spends one of the job's attempts, with one exception so that every job gets a run that
//! can record how it ended: when it was the job's last attempt, the job gets one more run
//! (its `max_attempts` raised to that run), once.
//!
//! # Retry delays
//!
//! A failed attempt is retried after graphile_worker's exponential backoff, `e^attempts`
//! seconds (capped at `e^10`, about 6 hours). A service may cap it
//! ([`JobsConfig::with_max_retry_delay`]), and a handler that wants a delay of its own hands
//! its work on to a fresh job instead of failing ([`enqueue_after`]).
//!
//! # Least privilege
//!
//! The queue's tables are private (row-level security; policies only for [`WORKER_ROLE`],
//! which the worker, running in the service's session outside any tenant transaction, reaches
//! them as). The application role's one door into the queue is `director_enqueue_job`,
//! `SECURITY DEFINER` so that it may write the queue on the caller's behalf. Its owner is
//! [`QUEUE_ROLE`], which owns the queue (the `graphile_worker` schema and everything in it:
//! graphile_worker's own functions run with their caller's rights, so the owner needs the
//! tables) and nothing else, is no superuser and a member of no role: the function can do
//! what the queue's owner can, and not what the migrating owner can (a superuser under
//! `director up` and compose). Before queueing anything it refuses
//!
//! - a task identifier that is not one of the service's ([`ServiceSpec::jobs`]), baked into
//!   the function by [`install`]: nothing can queue a job no handler of the service runs;
//! - a payload that is not a JSON object whose `tenant_id` is a non-empty string;
//! - a payload for another tenant than the calling transaction's `app.tenant_id` (set by
//!   [`crate::tenant::begin`]), and a caller with no tenant set — unless the session's login
//!   has the queue's rights itself (a superuser, or the owner doing maintenance outside any
//!   tenant), who could write the queue directly anyway.
//!
//! It is as strong as row-level security, which reads the same setting: it keeps a tenant
//! transaction's jobs to its own tenant, whatever the code running in it passes; it is no
//! defence against SQL that sets `app.tenant_id` itself. What is queued is the payload as
//! checked (parsed once, so a key given twice is read once), and a `job_key` is scoped to the
//! payload's tenant (stored as the JSON array `[tenant, job_key]`), so one tenant's key never
//! replaces another tenant's pending job.
//!
//! [`ServiceSpec::jobs`]: director_platform::catalog::ServiceSpec::jobs

use std::fmt;
use std::time::Duration;

use anyhow::Context as _;
use graphile_worker::{
    Job, JobComplete, JobCompleteContext, JobFail, JobFailContext, JobPermanentlyFail,
    JobPermanentlyFailContext, JobRecovery, JobRecoveryContext, JobRecoveryResult, WorkerOptions,
};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::roles::{APP_ROLE, QUEUE_ROLE, WORKER_ROLE, ensure_queue_roles};
use crate::tenant::literal;
use director_platform::config::{ConfigError, Env};
use director_platform::identity::TenantId;

/// The PostgreSQL schema holding the queue.
pub const SCHEMA: &str = "graphile_worker";

/// How long to wait before retrying a worker start that failed (database down).
const START_RETRY: Duration = Duration::from_secs(2);

/// How often the queue's gauges are sampled.
const QUEUE_SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// How a service's worker runs.
#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// Jobs run at once per process (`JOB_CONCURRENCY`, default 4).
    pub concurrency: usize,
    /// Attempts before a job is given up (`JOB_MAX_ATTEMPTS`, default 5).
    pub max_attempts: i16,
    /// Fallback polling when no notification arrives (`JOB_POLL_INTERVAL_MS`, default 1 s).
    pub poll_interval: Duration,
    /// How often a worker proves it is alive (`JOB_HEARTBEAT_MS`, default 5 s).
    pub heartbeat_interval: Duration,
    /// A worker silent for this long is dead and its jobs go to others
    /// (`JOB_RECOVERY_AFTER_MS`, default 30 s).
    pub recovery_after: Duration,
    /// How long running jobs may finish once shutdown begins (`JOB_SHUTDOWN_GRACE_MS`,
    /// default 8 s, inside the runner's drain deadline).
    pub shutdown_grace: Duration,
    /// The longest a failed attempt waits for its retry, when the service caps
    /// graphile_worker's backoff ([`Self::with_max_retry_delay`]; none by default).
    pub max_retry_delay: Option<Duration>,
}

impl JobsConfig {
    /// Reads and validates the `JOB_*` settings.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let concurrency: usize = env.parse_or("JOB_CONCURRENCY", 4)?;
        if concurrency == 0 {
            return Err(ConfigError::invalid("JOB_CONCURRENCY", "1 or more", "0"));
        }
        let max_attempts: i16 = env.parse_or("JOB_MAX_ATTEMPTS", 5)?;
        if max_attempts < 1 {
            return Err(ConfigError::invalid(
                "JOB_MAX_ATTEMPTS",
                "1 or more",
                &max_attempts.to_string(),
            ));
        }
        let heartbeat_interval = env.millis_or("JOB_HEARTBEAT_MS", 5_000)?;
        let recovery_after = env.millis_or("JOB_RECOVERY_AFTER_MS", 30_000)?;
        if recovery_after <= heartbeat_interval {
            return Err(ConfigError::new(
                "JOB_RECOVERY_AFTER_MS",
                "must be longer than JOB_HEARTBEAT_MS, or live workers would be declared dead",
            ));
        }
        Ok(Self {
            concurrency,
            max_attempts,
            poll_interval: env.millis_or("JOB_POLL_INTERVAL_MS", 1_000)?,
            heartbeat_interval,
            recovery_after,
            shutdown_grace: env.millis_or("JOB_SHUTDOWN_GRACE_MS", 8_000)?,
            max_retry_delay: None,
        })
    }

    /// These settings with failed attempts retried after `max` at most: graphile_worker's
    /// backoff (`e^attempts` seconds) is cut down to `max` once the attempt is failed.
    #[must_use]
    pub fn with_max_retry_delay(mut self, max: Duration) -> Self {
        self.max_retry_delay = Some(max);
        self
    }

    /// Worker options with these settings, stopping when `shutdown` is cancelled; the
    /// caller adds its job definitions and extensions.
    fn worker_options(&self, pool: PgPool, shutdown: CancellationToken) -> WorkerOptions {
        let recovering = pool.clone();
        let failing = pool.clone();
        let max_retry_delay = self.max_retry_delay;
        WorkerOptions::default()
            .pg_pool(pool)
            .schema(SCHEMA)
            .concurrency(self.concurrency)
            .poll_interval(self.poll_interval)
            .heartbeat_interval(self.heartbeat_interval)
            .sweep_interval(self.heartbeat_interval)
            .sweep_threshold(self.recovery_after)
            .recovery_delay(Duration::ZERO)
            .listen_os_shutdown_signals(false)
            .shutdown_grace_period(self.shutdown_grace)
            .shutdown_interrupted_job_retry_delay(Duration::ZERO)
            .shutdown_signal(async move { shutdown.cancelled_owned().await })
            .on(JobComplete, |done: JobCompleteContext| async move {
                count_attempt(done.job.task_identifier(), "succeeded");
            })
            .on(JobFail, move |failed: JobFailContext| {
                let pool = failing.clone();
                async move {
                    count_attempt(failed.job.task_identifier(), "failed");
                    if let Some(max) = max_retry_delay {
                        cap_retry_delay(&pool, &failed.job, max).await;
                    }
                }
            })
            .on(
                JobPermanentlyFail,
                |failed: JobPermanentlyFailContext| async move {
                    count_attempt(failed.job.task_identifier(), "failed");
                },
            )
            .on(JobRecovery, move |recovery: JobRecoveryContext| {
                let pool = recovering.clone();
                async move { keep_interrupted_attempt(&pool, &recovery).await }
            })
    }
}

/// What happens to a job whose run was cut short — its worker found dead by another's sweep,
/// or this worker stopping past its shutdown grace: it is handed back due at once, as
/// graphile_worker does, but keeping the run in its `attempts` (graphile_worker takes it back
/// off). When that run was its last attempt and it has not had this grace before, its
/// `max_attempts` is raised to one more run, so that its handler still runs once more and
/// can record how it ended; a job whose grace run is cut short too (a job that kills its
/// worker) is left out of attempts, as any job that failed its last.
///
/// A job replaced by a newer one with its key while it ran ("retired": out of attempts, its
/// key cleared) stays out of attempts, except in a race graphile_worker's own rescheduling
/// has too: retired between the sweep reading it and handing it back, it runs once more.
/// Should the grace fail to be written (database trouble), the job is handed back
/// graphile_worker's way, its run uncounted, rather than risk leaving it without a run.
async fn keep_interrupted_attempt(
    pool: &PgPool,
    recovery: &JobRecoveryContext,
) -> JobRecoveryResult {
    let job = &recovery.job;
    count_attempt(job.task_identifier(), "interrupted");
    if job.attempts() >= job.max_attempts()
        && let Err(error) = grant_final_run(pool, job, &recovery.previous_worker_id).await
    {
        tracing::warn!(%error, job_id = job.id(), "could not give an interrupted last attempt another run");
        return JobRecoveryResult::Default;
    }
    JobRecoveryResult::Reschedule {
        run_at: *job.run_at(),
        attempts: Some(*job.attempts()),
    }
}

/// The job flag marking a job given one more run after its last attempt was cut short.
const FINAL_RUN_FLAG: &str = "director_final_run";

/// Raises `job`'s `max_attempts` to one more run, unless it had that grace before or was
/// retired, while it is still locked by the worker that ran it.
async fn grant_final_run(pool: &PgPool, job: &Job, locked_by: &str) -> Result<(), sqlx::Error> {
    // In a transaction: safe behind pgbouncer in transaction mode too. The sweep handing the
    // job back has not locked its row yet (it locks it after this hook answers).
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE graphile_worker._private_jobs AS jobs
         SET max_attempts = jobs.attempts + 1,
             flags = coalesce(jobs.flags, '{}'::jsonb) || jsonb_build_object($3::text, true)
         WHERE jobs.id = $1 AND jobs.locked_by = $2
           AND jobs.attempts >= jobs.max_attempts
           AND NOT coalesce(jobs.flags ? $3, false)
           AND NOT EXISTS (SELECT 1 FROM graphile_worker._private_job_retirements AS retired
                           WHERE retired.id = jobs.id)",
    )
    .bind(job.id())
    .bind(locked_by)
    .bind(FINAL_RUN_FLAG)
    .persistent(false)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Brings the retry of `job`'s failed attempt, which graphile_worker has just scheduled, to
/// within `max` from now. Before this the job waits `e^attempts` seconds (at least e ≈ 2.7 s),
/// so no worker can have taken it in between.
async fn cap_retry_delay(pool: &PgPool, job: &Job, max: Duration) {
    let capped = async {
        let mut tx = pool.begin().await?;
        sqlx::query(
            "UPDATE graphile_worker._private_jobs
             SET run_at = least(run_at, now() + $2::bigint * interval '1 millisecond')
             WHERE id = $1 AND locked_at IS NULL",
        )
        .bind(job.id())
        .bind(millis(max))
        .persistent(false)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    };
    if let Err(error) = capped.await {
        tracing::warn!(%error, job_id = job.id(), "could not cap the job's retry delay");
    }
}

/// `duration` in whole milliseconds, for SQL intervals.
fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// `director_enqueue_job`, the application role's one door into the queue (see the module
/// docs, "Least privilege"). `{accepted}` is replaced by the service's task identifiers, as
/// SQL literals, and `{queue_role}` by [`QUEUE_ROLE`].
const ENQUEUE_FUNCTION: &str = "
CREATE OR REPLACE FUNCTION public.director_enqueue_job(
    identifier text, payload json, max_attempts integer DEFAULT NULL,
    job_key text DEFAULT NULL, job_key_mode text DEFAULT 'replace')
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $enqueue$
DECLARE
    accepted CONSTANT text[] := ARRAY[{accepted}]::text[];
    caller_tenant CONSTANT text := nullif(current_setting('app.tenant_id', true), '');
    checked jsonb;
    job_tenant text;
BEGIN
    IF identifier IS NULL OR NOT identifier = ANY (accepted) THEN
        RAISE EXCEPTION 'director_enqueue_job: % is not a job of this service',
                coalesce(quote_literal(identifier), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'its jobs are ' || array_to_string(accepted, ', ');
    END IF;
    IF payload IS NULL OR json_typeof(payload) <> 'object' THEN
        RAISE EXCEPTION 'director_enqueue_job: a payload is a JSON object naming its tenant'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    checked := payload::jsonb;
    IF jsonb_typeof(checked -> 'tenant_id') IS DISTINCT FROM 'string'
       OR checked ->> 'tenant_id' = '' THEN
        RAISE EXCEPTION 'director_enqueue_job: the payload names no tenant (tenant_id)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    job_tenant := checked ->> 'tenant_id';
    IF caller_tenant IS NULL THEN
        IF NOT pg_has_role(session_user, '{queue_role}', 'USAGE') THEN
            RAISE EXCEPTION 'director_enqueue_job: the transaction has no tenant (app.tenant_id)'
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'jobs are queued in a tenant transaction';
        END IF;
    ELSIF job_tenant <> caller_tenant THEN
        RAISE EXCEPTION 'director_enqueue_job: a transaction of tenant % cannot queue a job for tenant %',
                quote_literal(caller_tenant), quote_literal(job_tenant)
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN (graphile_worker.add_job(
        identifier, checked::json,
        max_attempts => max_attempts,
        job_key => CASE WHEN job_key IS NULL THEN NULL
                        ELSE json_build_array(job_tenant, job_key)::text END,
        job_key_mode => job_key_mode)).id;
END
$enqueue$";

/// The enqueue function's signature.
const ENQUEUE_SIGNATURE: &str = "public.director_enqueue_job(text, json, integer, text, text)";

/// Hands the queue — the `graphile_worker` schema and every object in it — to
/// [`QUEUE_ROLE`]: what graphile_worker's own migrations just created belongs to the
/// migrating owner. Objects that follow another (indexes, a table's row type, sequences owned
/// by a column, array types) move with it. A new owner must be allowed to create where the
/// object lives, which a superuser doing this is not asked; an owner that is not a superuser
/// grants the queue role that right on the database and takes it back in the same
/// transaction.
const HAND_OVER_QUEUE: &str = "
DO $hand_over$
DECLARE
    transient boolean := NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user);
    object record;
BEGIN
    IF transient THEN
        EXECUTE format('GRANT CREATE ON DATABASE %I TO {queue_role}', current_database());
    END IF;
    IF (SELECT nspowner <> '{queue_role}'::regrole FROM pg_namespace
        WHERE nspname = 'graphile_worker') THEN
        ALTER SCHEMA graphile_worker OWNER TO {queue_role};
    END IF;
    FOR object IN
        SELECT c.oid::regclass AS name,
               CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                              WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
                              WHEN 'c' THEN 'TYPE' ELSE 'TABLE' END AS kind
        FROM pg_class c
        WHERE c.relnamespace = 'graphile_worker'::regnamespace
          AND c.relowner <> '{queue_role}'::regrole
          AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S', 'c')
          AND NOT EXISTS (SELECT 1 FROM pg_depend d
                          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                            AND d.refclassid = 'pg_class'::regclass
                            AND d.deptype IN ('a', 'i'))
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO {queue_role}', object.kind, object.name);
    END LOOP;
    FOR object IN
        SELECT t.oid::regtype AS name FROM pg_type t
        WHERE t.typnamespace = 'graphile_worker'::regnamespace
          AND t.typowner <> '{queue_role}'::regrole
          AND t.typtype IN ('b', 'd', 'e', 'r')
          AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid)
    LOOP
        EXECUTE format('ALTER TYPE %s OWNER TO {queue_role}', object.name);
    END LOOP;
    FOR object IN
        SELECT p.oid::regprocedure AS name,
               CASE p.prokind WHEN 'a' THEN 'AGGREGATE' ELSE 'ROUTINE' END AS kind
        FROM pg_proc p
        WHERE p.pronamespace = 'graphile_worker'::regnamespace
          AND p.proowner <> '{queue_role}'::regrole
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO {queue_role}', object.kind, object.name);
    END LOOP;
    IF transient THEN
        EXECUTE format('REVOKE CREATE ON DATABASE %I FROM {queue_role}', current_database());
    END IF;
END
$hand_over$";

/// Makes [`QUEUE_ROLE`] the owner of the enqueue function, which lives in `public`: an owner
/// that is not a superuser lends the queue role CREATE there for the change (see
/// [`HAND_OVER_QUEUE`]).
const HAND_OVER_FUNCTION: &str = "
DO $hand_over$
DECLARE
    transient boolean := NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user);
BEGIN
    IF transient THEN
        GRANT CREATE ON SCHEMA public TO {queue_role};
    END IF;
    ALTER FUNCTION {signature} OWNER TO {queue_role};
    IF transient THEN
        REVOKE CREATE ON SCHEMA public FROM {queue_role};
    END IF;
END
$hand_over$";

/// What the worker, running as the services' login role (a member of [`WORKER_ROLE`]), may
/// do with the queue: use its schema, read its migrations (the worker checks them at start;
/// it never needs to run them, `migrate` has), read and write its other tables and
/// sequences. graphile_worker enables row-level security on its tables without policies;
/// each such table gets one letting [`WORKER_ROLE`] see and change every row.
const WORKER_GRANTS: &str = "
GRANT USAGE ON SCHEMA graphile_worker TO director_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA graphile_worker TO director_worker;
REVOKE INSERT, UPDATE, DELETE ON graphile_worker.migrations FROM director_worker;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA graphile_worker TO director_worker;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA graphile_worker TO director_worker;
DO $$
DECLARE
    private regclass;
BEGIN
    FOR private IN
        SELECT c.oid::regclass FROM pg_class c
        WHERE c.relnamespace = 'graphile_worker'::regnamespace AND c.relrowsecurity
          AND NOT EXISTS (SELECT 1 FROM pg_policy p
                          WHERE p.polrelid = c.oid AND p.polname = 'director_worker_all')
    LOOP
        EXECUTE format(
            'CREATE POLICY director_worker_all ON %s TO director_worker USING (true) WITH CHECK (true)',
            private);
    END LOOP;
END
$$;
";

/// The advisory lock serialising installs of the queue in one database.
const INSTALL_LOCK: i64 = 0x6469_7265_6374_6f71;

/// Installs or updates the queue's schema in the database `pool` reaches (logged in as the
/// databases' owner), hands it to [`QUEUE_ROLE`], and (re)creates the function the
/// application role enqueues with, accepting only `identifiers` — the service's jobs,
/// [`ServiceSpec::jobs`](director_platform::catalog::ServiceSpec::jobs) — and the worker's privileges
/// ([`WORKER_ROLE`]). Safe to run again, and concurrently.
pub async fn install(pool: &PgPool, identifiers: &[&str]) -> anyhow::Result<()> {
    anyhow::ensure!(
        !identifiers.is_empty(),
        "a service running jobs names their task identifiers in its catalog entry"
    );
    graphile_worker_migrations::migrate(pool.clone(), SCHEMA)
        .await
        .map_err(|error| anyhow::anyhow!("{error:?}"))
        .context("could not install the job queue schema")?;
    ensure_queue_roles(&pool.connect_options())
        .await
        .with_context(|| format!("could not set up roles {WORKER_ROLE} and {QUEUE_ROLE}"))?;
    let accepted = identifiers
        .iter()
        .map(|identifier| literal(identifier))
        .collect::<Result<Vec<_>, _>>()?
        .join(", ");
    let statements = [
        HAND_OVER_QUEUE.replace("{queue_role}", QUEUE_ROLE),
        ENQUEUE_FUNCTION
            .replace("{accepted}", &accepted)
            .replace("{queue_role}", QUEUE_ROLE),
        HAND_OVER_FUNCTION
            .replace("{signature}", ENQUEUE_SIGNATURE)
            .replace("{queue_role}", QUEUE_ROLE),
        format!("REVOKE ALL ON FUNCTION {ENQUEUE_SIGNATURE} FROM PUBLIC"),
        format!("GRANT EXECUTE ON FUNCTION {ENQUEUE_SIGNATURE} TO {APP_ROLE}"),
        WORKER_GRANTS.to_owned(),
    ];
    // One transaction: the function is never seen owned by anyone but the queue role, nor
    // accepting anything else.
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(INSTALL_LOCK)
        .execute(&mut *tx)
        .await?;
    for statement in statements {
        // Built from constants, and identifiers quoted as literals.
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.as_str()))
            .execute(&mut *tx)
            .await
            .with_context(|| format!("could not run `{statement}`"))?;
    }
    tx.commit().await?;
    Ok(())
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    /// The handler's `TaskHandler::IDENTIFIER`.
    pub identifier: &'a str,
    /// The handler's payload.
    pub payload: serde_json::Value,
    /// Replaces a pending job with the same key instead of adding another (a job already
    /// running is left alone and a new one queued behind it).
    pub job_key: Option<String>,
    /// Overrides the worker's attempts for this job.
    pub max_attempts: Option<i16>,
}

impl<'a> NewJob<'a> {
    /// A job for `identifier` with `payload`, no key, default attempts.
    pub fn new(identifier: &'a str, payload: serde_json::Value) -> Self {
        Self {
            identifier,
            payload,
            job_key: None,
            max_attempts: None,
        }
    }

    /// A job for `identifier` whose payload names `tenant_id` and nothing else.
    pub fn for_tenant(identifier: &'a str, tenant_id: &TenantId) -> Self {
        Self::new(identifier, serde_json::json!({ "tenant_id": tenant_id }))
    }
}

/// Enqueues `job` on `connection` — inside the caller's tenant transaction, so the job exists
/// if and only if the transaction commits. Its payload names that tenant (`tenant_id`) and its
/// identifier is one of the service's, or the database refuses it (see the module docs).
/// Answers the queue's job id. The current span's trace context travels in the payload
/// ([`TRACEPARENT`]) so the job's span links to the request that enqueued it ([`job_span`]).
///
/// The statement is unnamed (`persistent(false)`): the caller's connection may be a client
/// of pgbouncer in transaction mode, where a named statement would outlive the transaction
/// on a shared server connection (see [`crate::db`]).
pub async fn enqueue(connection: &mut PgConnection, job: &NewJob<'_>) -> Result<i64, sqlx::Error> {
    let payload = traced_payload(&job.payload);
    let (id,): (i64,) =
        sqlx::query_as("SELECT director_enqueue_job($1, $2::json, $3::int, $4::text)")
            .bind(job.identifier)
            .bind(payload.as_ref())
            .bind(job.max_attempts.map(i32::from))
            .bind(job.job_key.as_deref())
            .persistent(false)
            .fetch_one(connection)
            .await?;
    Ok(id)
}

/// Enqueues `job` from the worker's session — a handler handing its work on to a later run,
/// outside any tenant transaction — to run once `delay` has passed: one transaction queues it
/// and sets its `run_at`, so no worker ever sees it due sooner. With a `job_key`, it replaces
/// that key's pending job (its `run_at` too) or, when that job is the one running, retires it
/// and queues a new one, as [`enqueue`] does; a job the caller then ends successfully is gone.
///
/// The queueing goes through `director_enqueue_job`, with `app.tenant_id` set to the
/// payload's tenant: the service's identifiers only, a payload naming its tenant, the key
/// scoped to that tenant, as for any job. (That the job is the transaction's tenant's holds
/// by construction: the worker's session may write the queue anyway.) The transaction keeps
/// the session's role — the services' login, a member of [`WORKER_ROLE`], as the worker runs
/// — whose rights on the queue set the job's `run_at`, which the enqueue function does not
/// take; it touches nothing but the queue.
pub async fn enqueue_after(
    pool: &PgPool,
    job: &NewJob<'_>,
    delay: Duration,
) -> Result<i64, sqlx::Error> {
    let tenant_id = job
        .payload
        .get("tenant_id")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    // Prepared statements are not kept (`persistent(false)`): safe behind pgbouncer in
    // transaction mode, like the worker's own queries.
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
        .bind(tenant_id)
        .persistent(false)
        .execute(&mut *tx)
        .await?;
    let id = enqueue(&mut tx, job).await?;
    sqlx::query(
        "UPDATE graphile_worker._private_jobs
         SET run_at = now() + $2::bigint * interval '1 millisecond'
         WHERE id = $1",
    )
    .bind(id)
    .bind(millis(delay))
    .persistent(false)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// How one attempt of a job ended, for the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Done, or nothing was left to do.
    Finished,
    /// Failed; another attempt may succeed.
    Retry(String),
    /// Dead: refused data, missing credentials, attempts spent — no attempt can succeed.
    GiveUp(String),
}

/// Why an attempt of a job failed, as a handler answers it to the queue: the queue keeps it
/// as the job's `last_error`.
#[derive(Clone, PartialEq, Eq)]
pub struct AttemptFailed(String);

impl AttemptFailed {
    /// The failure, in words.
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

impl fmt::Display for AttemptFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// graphile_worker records a handler's error by its `Debug`: the message's own (quoted), as
/// when handlers answered a bare `String`, so `last_error` reads the same.
impl fmt::Debug for AttemptFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl std::error::Error for AttemptFailed {}

/// What a handler returns to the queue for `attempt` of queue job `queue_job_id`: `Ok` when
/// finished, the error to retry, and for a dead job its error with no attempt left, so the
/// queue keeps it as permanently failed — counted in `director_jobs_dead`, the attempt as
/// `failed` — instead of retrying it, or reporting a success as returning `Ok` would. An
/// attempt that could not even be recorded (`Err`) is retried with that error.
pub async fn end_attempt(
    pool: &PgPool,
    queue_job_id: i64,
    attempt: Result<Attempt, impl fmt::Display>,
) -> Result<(), AttemptFailed> {
    let attempt = attempt.map_err(|failure| AttemptFailed(failure.to_string()))?;
    match attempt {
        Attempt::Finished => Ok(()),
        Attempt::Retry(error) => Err(AttemptFailed(error)),
        Attempt::GiveUp(error) => {
            if let Err(db) = make_last_attempt(pool, queue_job_id).await {
                // The application's own record already says dead: an attempt the queue
                // still makes finds it finished.
                tracing::warn!(%db, queue_job_id, "could not end the queue job's attempts");
            }
            Err(AttemptFailed(error))
        }
    }
}

/// Makes the running attempt of queue job `job_id` its last.
async fn make_last_attempt(pool: &PgPool, job_id: i64) -> Result<(), sqlx::Error> {
    // In a transaction: safe behind pgbouncer in transaction mode too.
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE graphile_worker._private_jobs SET max_attempts = attempts WHERE id = $1")
        .bind(job_id)
        .persistent(false)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// The payload key carrying the enqueuing request's W3C `traceparent`.
pub const TRACEPARENT: &str = "traceparent";

/// `payload` with the current span's `traceparent` added, when there is a traced span and
/// the payload is an object (handlers ignore keys they do not know).
pub fn traced_payload(payload: &serde_json::Value) -> std::borrow::Cow<'_, serde_json::Value> {
    let mut headers = http::HeaderMap::new();
    director_platform::telemetry::inject_context(&mut headers);
    let traceparent = headers
        .get(TRACEPARENT)
        .and_then(|value| value.to_str().ok());
    match (traceparent, payload) {
        (Some(traceparent), serde_json::Value::Object(fields)) => {
            let mut fields = fields.clone();
            fields.insert(TRACEPARENT.to_owned(), traceparent.into());
            std::borrow::Cow::Owned(serde_json::Value::Object(fields))
        }
        _ => std::borrow::Cow::Borrowed(payload),
    }
}

/// The span one attempt of a job runs in: a consumer span of its own trace, linked to the
/// request that enqueued the job when its payload carries that request's `traceparent` (a
/// job can run long after, and many times; a link, not a parent, is the OpenTelemetry way).
/// `service` is the service whose worker runs it.
pub fn job_span(
    service: &director_platform::catalog::ServiceSpec,
    identifier: &'static str,
    payload: &serde_json::Value,
) -> tracing::Span {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let span = tracing::info_span!(
        "job",
        otel.name = identifier,
        otel.kind = "consumer",
        messaging.system = "graphile_worker",
        messaging.operation.type = "process",
    );
    director_platform::telemetry::name_service(&span, &service.binary());
    if let Some(traceparent) = payload.get(TRACEPARENT).and_then(serde_json::Value::as_str) {
        let mut headers = http::HeaderMap::new();
        if let Ok(value) = http::HeaderValue::from_str(traceparent) {
            headers.insert(TRACEPARENT, value);
            let enqueued_by = director_platform::telemetry::extract_context(&headers);
            let context = enqueued_by.span().span_context().clone();
            if context.is_valid() {
                span.add_link(context);
            }
        }
    }
    span
}

/// Runs a worker for the service until `shutdown`, tracked by `background` so the process
/// waits for it to finish its jobs. `define` adds the service's jobs and extensions to the
/// common options; it is called again when a start fails (database down) and is retried.
pub fn spawn_worker<F>(
    config: JobsConfig,
    pool: PgPool,
    shutdown: CancellationToken,
    background: &TaskTracker,
    define: F,
) where
    F: Fn(WorkerOptions) -> WorkerOptions + Send + 'static,
{
    background.spawn(async move {
        loop {
            let options = define(config.worker_options(pool.clone(), shutdown.clone()));
            let started = tokio::select! {
                () = shutdown.cancelled() => return,
                started = options.init() => started,
            };
            match started {
                Ok(worker) => {
                    tracing::info!(concurrency = config.concurrency, "job worker started");
                    if let Err(error) = worker.run().await {
                        tracing::error!(error = ?error, "job worker stopped with an error");
                    }
                    if shutdown.is_cancelled() {
                        return;
                    }
                }
                Err(error) => {
                    tracing::warn!(error = ?error, "job worker cannot start yet; retrying");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(START_RETRY) => {}
            }
        }
    });
}

/// `director_job_attempts_total{task_identifier, outcome}`: one attempt of a job ran here
/// (`succeeded`, `failed`), or one cut short was handed back here (`interrupted`: its worker
/// died, or stopped past its shutdown grace).
fn count_attempt(task_identifier: &str, outcome: &'static str) {
    metrics::counter!(
        "director_job_attempts_total",
        "task_identifier" => task_identifier.to_owned(),
        "outcome" => outcome,
    )
    .increment(1);
}

/// Per task: jobs waiting to run (not locked, attempts left), dead jobs (no attempts left),
/// and the age of the oldest job due and waiting.
const QUEUE_STATE: &str = "
SELECT t.identifier,
       count(*) FILTER (WHERE j.is_available) AS queued,
       count(*) FILTER (WHERE j.attempts >= j.max_attempts) AS dead,
       EXTRACT(EPOCH FROM now() - min(j.run_at)
           FILTER (WHERE j.is_available AND j.run_at <= now()))::float8 AS oldest_age
FROM graphile_worker._private_jobs j
JOIN graphile_worker._private_tasks t ON t.id = j.task_id
GROUP BY t.identifier";

/// Samples the queue of `service_name`'s database every few seconds until `shutdown`:
/// `director_jobs_queued{task_identifier}`, `director_jobs_oldest_age_seconds` and
/// `director_jobs_dead` (each also labelled `service_name`).
pub fn spawn_queue_metrics(
    pool: PgPool,
    service_name: &'static str,
    shutdown: CancellationToken,
    background: &TaskTracker,
) {
    background.spawn(async move {
        let mut seen = std::collections::BTreeSet::<String>::new();
        let mut interval = tokio::time::interval(QUEUE_SAMPLE_INTERVAL);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            let rows: Vec<(String, i64, i64, Option<f64>)> =
                match sqlx::query_as(QUEUE_STATE).fetch_all(&pool).await {
                    Ok(rows) => rows,
                    Err(error) => {
                        tracing::debug!(%error, "could not sample the job queue");
                        continue;
                    }
                };
            let mut dead = 0;
            let mut oldest_age: f64 = 0.0;
            let mut now_seen = std::collections::BTreeSet::new();
            for (identifier, queued, task_dead, task_oldest) in rows {
                queued_gauge(service_name, &identifier).set(queued as f64);
                dead += task_dead;
                oldest_age = oldest_age.max(task_oldest.unwrap_or(0.0));
                now_seen.insert(identifier);
            }
            // A task whose jobs are all gone reads 0, not its last count.
            for gone in seen.difference(&now_seen) {
                queued_gauge(service_name, gone).set(0.0);
            }
            seen.extend(now_seen);
            metrics::gauge!("director_jobs_dead", director_platform::metrics::SERVICE_NAME => service_name)
                .set(dead as f64);
            metrics::gauge!(
                "director_jobs_oldest_age_seconds",
                director_platform::metrics::SERVICE_NAME => service_name
            )
            .set(oldest_age);
        }
    });
}

fn queued_gauge(service_name: &'static str, task_identifier: &str) -> metrics::Gauge {
    metrics::gauge!(
        "director_jobs_queued",
        director_platform::metrics::SERVICE_NAME => service_name,
        "task_identifier" => task_identifier.to_owned(),
    )
}
