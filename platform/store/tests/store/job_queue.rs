//! The job queue's one door, `director_enqueue_job`, on a real PostgreSQL (issue 16, item 6):
//! - it is owned by `director_queue`, a NOLOGIN role that is no superuser, a member of no
//!   role, granted nothing, and owns the queue and nothing else — also when the migrating
//!   owner is not a superuser;
//! - it queues only the service's own jobs, for the calling tenant transaction's tenant, and
//!   refuses any other identifier, tenant, a payload naming none and a caller with no tenant;
//! - Dispatch's trigger still queues its relay through it, and a worker still runs what it
//!   queues;
//! - installing again, or twice at once, changes nothing;
//! - a job enqueued in a traced request carries its `traceparent` ([`traced_payloads`]).
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use director_platform::catalog;
use director_platform::config::Env;
use director_platform::identity::{Caller, Role};
use director_store::db::{DatabaseConfig, database_url_for, with_login};
use director_store::jobs::{self, JobsConfig, NewJob};
use director_store::migrate::create_and_migrate;
use director_store::roles::{DEV_SERVICE_PASSWORD, QUEUE_ROLE, SERVICE_ROLE, ensure_service_login};
use director_store::tenant;
use graphile_worker::{IntoTaskHandlerResult, TaskHandler, WorkerContext};
use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, PgPool};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const RELAY: &str = catalog::DISPATCH_RELAY_TASK_EVENTS;

fn migrations() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations")
}

/// A database migrated as `director migrate` leaves it (`service`'s migrations and queue,
/// the services' login role), logging in as the owner of `owner_url`'s server.
struct Database {
    owner: PgPool,
    service: PgPool,
    config: DatabaseConfig,
}

impl Database {
    /// `service`'s database, made by the test server's user (a superuser).
    async fn of(service: &str) -> (common::TestDb, Self) {
        let db = common::TestDb::create().await;
        create_and_migrate(&db.url, &migrations(), service)
            .await
            .unwrap();
        let database = Self::logged_in(&db.url).await;
        (db, database)
    }

    /// The pools and settings of the database at `owner_url`, after setting up the login.
    async fn logged_in(owner_url: &str) -> Self {
        let service_url = with_login(owner_url, SERVICE_ROLE, DEV_SERVICE_PASSWORD).unwrap();
        ensure_service_login(owner_url, &service_url).await.unwrap();
        let config = DatabaseConfig::from_env(
            &Env::from_pairs([("JOBTEST_DATABASE_URL", service_url.as_str())]),
            "jobtest",
        )
        .unwrap();
        Self {
            owner: PgPool::connect(owner_url).await.unwrap(),
            service: PgPool::connect(&service_url).await.unwrap(),
            config,
        }
    }

    /// `sql` (which takes the identifier and the payload) in a tenant transaction of
    /// `tenant`, as the services run it: logged in as the services' role, switched to the
    /// application role.
    async fn enqueue_as(
        &self,
        tenant: &str,
        identifier: &str,
        payload: serde_json::Value,
    ) -> Result<i64, sqlx::Error> {
        let caller = Caller::new("user", tenant, Role::Admin);
        let mut tx = tenant::begin(&self.service, &caller, &self.config)
            .await
            .unwrap();
        let id = jobs::enqueue(&mut tx, &NewJob::new(identifier, payload)).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The payload's tenant and the key of every job of `identifier`, oldest first.
    async fn queued(&self, identifier: &str) -> Vec<(String, Option<String>)> {
        sqlx::query_as(
            "SELECT j.payload->>'tenant_id', j.key
             FROM graphile_worker._private_jobs j
             JOIN graphile_worker._private_tasks t ON t.id = j.task_id
             WHERE t.identifier = $1 ORDER BY j.id",
        )
        .bind(identifier)
        .fetch_all(&self.owner)
        .await
        .unwrap()
    }
}

/// The SQLSTATE and message of a refusal.
fn refusal<T: std::fmt::Debug>(result: Result<T, sqlx::Error>) -> (String, String) {
    let error = result.expect_err("refused");
    let database = error.as_database_error().expect("a database error");
    (
        database.code().unwrap_or_default().into_owned(),
        database.message().to_owned(),
    )
}

/// The queue belongs to its role alone, and the enqueue function takes a tenant's own job and
/// refuses one for another tenant.
async fn assert_installed_and_tenant_scoped(database: &Database) {
    assert_owned_by_the_queue_role_alone(&database.owner).await;
    database
        .enqueue_as(
            "tenant-a",
            RELAY,
            serde_json::json!({ "tenant_id": "tenant-a" }),
        )
        .await
        .unwrap();
    let (code, _) = refusal(
        database
            .enqueue_as(
                "tenant-a",
                RELAY,
                serde_json::json!({ "tenant_id": "tenant-b" }),
            )
            .await,
    );
    assert_eq!(code, "42501");
}

#[tokio::test]
async fn a_tenant_transaction_queues_only_the_services_jobs_for_its_own_tenant() {
    let (db, database) = Database::of("dispatch").await;
    let tenant_a = serde_json::json!({ "tenant_id": "tenant-a" });

    database
        .enqueue_as("tenant-a", RELAY, tenant_a.clone())
        .await
        .unwrap();
    assert_eq!(
        database.queued(RELAY).await,
        [("tenant-a".to_owned(), None)]
    );

    // Another tenant's job, from a transaction of tenant-a: the call of the issue, and
    // through `jobs::enqueue`.
    let caller = Caller::new("user", "tenant-a", Role::Admin);
    let mut tx = tenant::begin(&database.service, &caller, &database.config)
        .await
        .unwrap();
    let (code, message) = refusal(
        sqlx::query(
            "SELECT director_enqueue_job('dispatch_relay_task_events', '{\"tenant_id\":\"tenant-b\"}')",
        )
        .execute(&mut *tx)
        .await,
    );
    assert_eq!(code, "42501", "{message}");
    assert!(message.contains("'tenant-b'"), "{message}");
    drop(tx);
    let (code, _) = refusal(
        database
            .enqueue_as(
                "tenant-a",
                RELAY,
                serde_json::json!({ "tenant_id": "tenant-b" }),
            )
            .await,
    );
    assert_eq!(code, "42501");

    // Unknown identifiers, another service's included.
    for identifier in ["no_such_job", catalog::INTEGRATIONS_SEND_NOTIFICATION, ""] {
        let (code, message) = refusal(
            database
                .enqueue_as("tenant-a", identifier, tenant_a.clone())
                .await,
        );
        assert_eq!(code, "22023", "{identifier}: {message}");
        assert!(
            message.contains("is not a job of this service"),
            "{message}"
        );
    }

    // Payloads that name no tenant, or name it twice: what is checked is what is queued.
    for payload in [
        serde_json::json!({}),
        serde_json::json!({ "tenant_id": "" }),
        serde_json::json!({ "tenant_id": 7 }),
        serde_json::json!({ "tenant_id": null }),
        serde_json::json!(["tenant-a"]),
        serde_json::json!("tenant-a"),
    ] {
        let (code, message) = refusal(database.enqueue_as("tenant-a", RELAY, payload).await);
        assert_eq!(code, "22023", "{message}");
    }
    let caller = Caller::new("user", "tenant-a", Role::Admin);
    let mut tx = tenant::begin(&database.service, &caller, &database.config)
        .await
        .unwrap();
    let (code, _) = refusal(
        sqlx::query(
            "SELECT director_enqueue_job('dispatch_relay_task_events', \
             '{\"tenant_id\":\"tenant-a\",\"tenant_id\":\"tenant-b\"}')",
        )
        .execute(&mut *tx)
        .await,
    );
    assert_eq!(
        code, "42501",
        "the last of duplicate keys is the one that counts"
    );
    drop(tx);

    // The services' login outside any tenant transaction, and as the application role
    // without a tenant.
    let (code, message) = refusal(
        sqlx::query("SELECT director_enqueue_job('dispatch_relay_task_events', '{\"tenant_id\":\"tenant-a\"}')")
            .execute(&database.service)
            .await,
    );
    assert_eq!(code, "42501", "{message}");
    assert!(message.contains("no tenant"), "{message}");
    let mut tx = database.service.begin().await.unwrap();
    sqlx::query("SET LOCAL ROLE director_app")
        .execute(&mut *tx)
        .await
        .unwrap();
    let (code, _) = refusal(
        sqlx::query("SELECT director_enqueue_job('dispatch_relay_task_events', '{\"tenant_id\":\"tenant-a\"}')")
            .execute(&mut *tx)
            .await,
    );
    assert_eq!(code, "42501");
    drop(tx);

    // Nothing but the first job was queued.
    assert_eq!(database.queued(RELAY).await.len(), 1);
    db.drop().await;
}

#[tokio::test]
async fn a_job_key_is_scoped_to_its_tenant() {
    let (db, database) = Database::of("dispatch").await;
    for tenant in ["tenant-a", "tenant-b", "tenant-a"] {
        let caller = Caller::new("user", tenant, Role::Admin);
        let mut tx = tenant::begin(&database.service, &caller, &database.config)
            .await
            .unwrap();
        let mut job = NewJob::new(RELAY, serde_json::json!({ "tenant_id": tenant }));
        job.job_key = Some("relay".to_owned());
        jobs::enqueue(&mut tx, &job).await.unwrap();
        tx.commit().await.unwrap();
    }
    // tenant-b's key did not replace tenant-a's pending job; tenant-a's second replaced its
    // first.
    let mut queued = database.queued(RELAY).await;
    queued.sort();
    assert_eq!(
        queued,
        [
            (
                "tenant-a".to_owned(),
                Some(r#"["tenant-a", "relay"]"#.to_owned())
            ),
            (
                "tenant-b".to_owned(),
                Some(r#"["tenant-b", "relay"]"#.to_owned())
            ),
        ]
    );
    db.drop().await;
}

#[tokio::test]
async fn dispatchs_trigger_queues_the_relay_for_the_tasks_tenant_and_owner_maintenance_still_works()
{
    let (db, database) = Database::of("dispatch").await;
    let caller = Caller::new("user", "dairy", Role::Admin);
    let mut tx = tenant::begin(&database.service, &caller, &database.config)
        .await
        .unwrap();
    let driver: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO drivers (tenant_id, name) VALUES ('dairy', 'Ann') RETURNING id",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let task: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO tasks (tenant_id, company_id, title, scheduled_for)
         VALUES ('dairy', gen_random_uuid(), 'collect', '2026-11-23') RETURNING id",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    sqlx::query("UPDATE tasks SET status = 'assigned', driver_id = $1 WHERE id = $2")
        .bind(driver)
        .bind(task)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let key = Some(r#"["dairy", "dispatch_relay_task_events/dairy"]"#.to_owned());
    assert_eq!(
        database.queued(RELAY).await,
        [("dairy".to_owned(), key.clone())]
    );

    // The owner, outside any tenant (maintenance), may still change a task: it could write
    // the queue directly anyway. The job is for the task's tenant, under the same key.
    sqlx::query("UPDATE tasks SET status = 'cancelled', cancel_reason = 'rain' WHERE id = $1")
        .bind(task)
        .execute(&database.owner)
        .await
        .unwrap();
    assert_eq!(database.queued(RELAY).await, [("dairy".to_owned(), key)]);
    db.drop().await;
}

/// Checks the enqueue function of the database `pool` reaches belongs to a role that is no
/// superuser, has no attribute, is a member of no role, is granted nothing, and owns the
/// queue — all of it — and nothing else.
async fn assert_owned_by_the_queue_role_alone(pool: &PgPool) {
    let (owner, definer, superuser, attributes): (String, bool, bool, bool) = sqlx::query_as(
        "SELECT r.rolname::text, p.prosecdef, r.rolsuper,
                r.rolcanlogin OR r.rolcreatedb OR r.rolcreaterole OR r.rolreplication
                    OR r.rolbypassrls
         FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
         WHERE p.oid = 'public.director_enqueue_job(text, json, integer, text, text)'::regprocedure",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(owner, QUEUE_ROLE);
    assert!(definer);
    assert!(!superuser, "the function's owner is a superuser");
    assert!(
        !attributes,
        "the function's owner can log in or has attributes"
    );

    let memberships: Vec<String> = sqlx::query_scalar(
        "SELECT roleid::regrole::text FROM pg_auth_members WHERE member = $1::text::regrole",
    )
    .bind(QUEUE_ROLE)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(memberships, Vec::<String>::new());
    // No privilege granted to it, on this database's objects or on shared ones (databases,
    // tablespaces, roles' parameters).
    let granted: Vec<String> = sqlx::query_scalar(
        "SELECT pg_describe_object(classid, objid, objsubid) FROM pg_shdepend
         WHERE refclassid = 'pg_authid'::regclass AND refobjid = $1::text::regrole
           AND deptype = 'a'
           AND dbid IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))",
    )
    .bind(QUEUE_ROLE)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(granted, Vec::<String>::new());
    // What it owns here: the queue's schema, what is in it, and the function.
    let elsewhere: Vec<String> = sqlx::query_scalar(
        "SELECT pg_describe_object(d.classid, d.objid, d.objsubid) FROM pg_shdepend d
         WHERE d.refclassid = 'pg_authid'::regclass AND d.refobjid = $1::text::regrole
           AND d.deptype = 'o'
           AND d.dbid IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
           AND NOT (d.classid = 'pg_namespace'::regclass
                    AND d.objid = 'graphile_worker'::regnamespace)
           AND NOT (d.classid = 'pg_class'::regclass AND EXISTS (
                    SELECT 1 FROM pg_class c WHERE c.oid = d.objid
                      AND c.relnamespace = 'graphile_worker'::regnamespace))
           AND NOT (d.classid = 'pg_type'::regclass AND EXISTS (
                    SELECT 1 FROM pg_type t WHERE t.oid = d.objid
                      AND t.typnamespace = 'graphile_worker'::regnamespace))
           AND NOT (d.classid = 'pg_proc'::regclass AND EXISTS (
                    SELECT 1 FROM pg_proc p WHERE p.oid = d.objid
                      AND (p.pronamespace = 'graphile_worker'::regnamespace
                           OR p.oid = 'public.director_enqueue_job(text, json, integer, text, text)'::regprocedure)))",
    )
    .bind(QUEUE_ROLE)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(elsewhere, Vec::<String>::new());
    // ... all of the queue.
    let not_its_own: Vec<String> = sqlx::query_scalar(
        "SELECT c.oid::regclass::text FROM pg_class c
         WHERE c.relnamespace = 'graphile_worker'::regnamespace
           AND c.relowner <> $1::text::regrole
         UNION ALL
         SELECT p.oid::regprocedure::text FROM pg_proc p
         WHERE p.pronamespace = 'graphile_worker'::regnamespace
           AND p.proowner <> $1::text::regrole
         UNION ALL
         SELECT t.oid::regtype::text FROM pg_type t
         WHERE t.typnamespace = 'graphile_worker'::regnamespace
           AND t.typowner <> $1::text::regrole
         UNION ALL
         SELECT n.nspname::text FROM pg_namespace n
         WHERE n.nspname = 'graphile_worker' AND n.nspowner <> $1::text::regrole",
    )
    .bind(QUEUE_ROLE)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(not_its_own, Vec::<String>::new());
}

#[tokio::test]
async fn the_function_belongs_to_a_role_that_owns_only_the_queue_and_installing_again_changes_nothing()
 {
    let (db, database) = Database::of("dispatch").await;
    assert_owned_by_the_queue_role_alone(&database.owner).await;

    // Again, then twice at once.
    create_and_migrate(&db.url, &migrations(), "dispatch")
        .await
        .unwrap();
    let (first, second) = tokio::join!(
        jobs::install(&database.owner, catalog::DISPATCH.jobs),
        jobs::install(&database.owner, catalog::DISPATCH.jobs),
    );
    first.unwrap();
    second.unwrap();
    assert_installed_and_tenant_scoped(&database).await;
    db.drop().await;
}

#[tokio::test]
async fn a_login_with_the_queue_roles_rights_is_refused_as_the_services_role() {
    let (db, _database) = Database::of("dispatch").await;
    let role = format!("job_queue_test_{}", uuid::Uuid::new_v4().simple());
    let admin = PgPool::connect(&db.url).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE ROLE {role} LOGIN; GRANT {QUEUE_ROLE} TO {role}"
    )))
    .execute(&admin)
    .await
    .unwrap();
    let error = ensure_service_login(&db.url, &with_login(&db.url, &role, "pw").unwrap())
        .await
        .expect_err("refused");
    assert!(error.to_string().contains(QUEUE_ROLE), "{error}");
    sqlx::raw_sql(AssertSqlSafe(format!("DROP ROLE {role}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    db.drop().await;
}

/// A managed PostgreSQL's owner is no superuser: it can still hand the queue over, and
/// migrate again afterwards.
#[tokio::test]
async fn an_owner_that_is_not_a_superuser_hands_the_queue_over_too() {
    let migrator = format!("job_queue_owner_{}", uuid::Uuid::new_v4().simple());
    let server = common::server_url();
    let admin = PgPool::connect(&database_url_for(&server, "postgres").unwrap())
        .await
        .unwrap();
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE ROLE {migrator} LOGIN CREATEDB CREATEROLE PASSWORD 'owner-pw'"
    )))
    .execute(&admin)
    .await
    .unwrap();
    let name = format!("platform_test_{}", uuid::Uuid::new_v4().simple());
    let owner_url = with_login(
        &database_url_for(&server, &name).unwrap(),
        &migrator,
        "owner-pw",
    )
    .unwrap();

    create_and_migrate(&owner_url, &migrations(), "dispatch")
        .await
        .unwrap();
    create_and_migrate(&owner_url, &migrations(), "dispatch")
        .await
        .unwrap();
    let database = Database::logged_in(&owner_url).await;
    assert_installed_and_tenant_scoped(&database).await;

    database.owner.close().await;
    database.service.close().await;
    for statement in [
        format!("DROP DATABASE \"{name}\" WITH (FORCE)"),
        format!("DROP ROLE {migrator}"),
    ] {
        sqlx::raw_sql(AssertSqlSafe(statement))
            .execute(&admin)
            .await
            .unwrap();
    }
    admin.close().await;
}

/// A job of the test's own service.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Ping {
    tenant_id: String,
}

impl TaskHandler for Ping {
    const IDENTIFIER: &'static str = "platform_test_ping";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let Some(seen) = ctx
            .get_ext::<tokio::sync::mpsc::UnboundedSender<String>>()
            .cloned()
        else {
            return Err("no channel".to_owned());
        };
        seen.send(self.tenant_id).map_err(|error| error.to_string())
    }
}

#[tokio::test]
async fn the_worker_runs_as_the_services_role_what_a_tenant_transaction_queued() {
    // A service of the test's own: the shared migrations and a queue accepting `Ping`.
    let db = common::TestDb::create().await;
    create_and_migrate(&db.url, &migrations(), "platform-test-jobs")
        .await
        .unwrap();
    let owner = PgPool::connect(&db.url).await.unwrap();
    jobs::install(&owner, &[Ping::IDENTIFIER]).await.unwrap();
    owner.close().await;
    let database = Database::logged_in(&db.url).await;

    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel::<String>();
    let shutdown = CancellationToken::new();
    let background = TaskTracker::new();
    let config = JobsConfig::from_env(&Env::from_pairs([("JOB_POLL_INTERVAL_MS", "100")])).unwrap();
    jobs::spawn_worker(
        config,
        database.service.clone(),
        shutdown.clone(),
        &background,
        move |options| options.define_job::<Ping>().add_extension(seen_tx.clone()),
    );
    database
        .enqueue_as(
            "tenant-a",
            Ping::IDENTIFIER,
            serde_json::json!({ "tenant_id": "tenant-a" }),
        )
        .await
        .unwrap();
    let ran = tokio::time::timeout(Duration::from_secs(20), seen.recv())
        .await
        .expect("the worker ran the job in time");
    assert_eq!(ran.as_deref(), Some("tenant-a"));
    let (code, _) = refusal(
        database
            .enqueue_as(
                "tenant-a",
                RELAY,
                serde_json::json!({ "tenant_id": "tenant-a" }),
            )
            .await,
    );
    assert_eq!(code, "22023", "another service's job");

    shutdown.cancel();
    background.close();
    background.wait().await;
    database.owner.close().await;
    database.service.close().await;
    db.drop().await;
}

/// A job enqueued inside a traced request carries the request's W3C `traceparent` in its
/// payload, so the job's span links back to it.
mod traced_payloads {
    use director_platform::telemetry::extract_context;
    use director_store::jobs::{TRACEPARENT, traced_payload};

    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

    fn incoming_headers() -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01")
                .parse()
                .unwrap(),
        );
        headers
    }

    #[test]
    fn a_job_enqueued_in_a_traced_request_carries_its_traceparent() {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        use tracing_subscriber::layer::SubscriberExt as _;

        // A subscriber of this thread only: the process-wide one belongs to the other tests,
        // which may shut its provider down while this one runs.
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("jobs-test")));
        tracing::subscriber::with_default(subscriber, || {
            let payload = serde_json::json!({"job_id": "j-1"});
            assert_eq!(
                traced_payload(&payload).as_ref(),
                &payload,
                "outside a traced span nothing is added"
            );

            let span = tracing::info_span!("request");
            let _ = span.set_parent(extract_context(&incoming_headers()));
            let traced = span.in_scope(|| traced_payload(&payload).into_owned());
            let traceparent = traced[TRACEPARENT].as_str().expect("a traceparent");
            assert_eq!(
                traceparent.split('-').nth(1),
                Some(TRACE_ID),
                "{traceparent}"
            );
            assert_eq!(traced["job_id"], "j-1", "the payload is kept");

            let not_an_object = serde_json::json!([1, 2]);
            assert_eq!(
                span.in_scope(|| traced_payload(&not_an_object).into_owned()),
                not_an_object
            );
        });
    }
}
