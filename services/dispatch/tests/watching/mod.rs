//! What the `WatchTasks` tests share: Dispatch on a fresh database, task changes written
//! straight into that database in tenant transactions (so Dispatch's own statements are only
//! the watching), and watch streams read message by message.

#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

use std::time::Duration;

use director_platform::config::Env;
use director_platform::identity::{Caller, Role};
use director_proto::dispatch::tasks_service_client::TasksServiceClient;
use director_proto::dispatch::{WatchTasksRequest, WatchTasksResponse};
use director_store::db::DatabaseConfig;
use director_store::tenant;
use director_store::testing::{TestService, fresh_database, service_url, spawn_service_on};
use sqlx::PgPool;
use tonic::codec::Streaming;
use tonic::transport::Channel;
use uuid::Uuid;

/// How long a live event may take to reach a watcher.
pub const LIVE: Duration = Duration::from_secs(5);

/// Dispatch on its own database, and the owner's pool to write and inspect it.
pub struct Fixture {
    pub service: TestService,
    /// The owner (bypasses row-level security): for writing changes and reading the truth.
    pub pool: PgPool,
    config: DatabaseConfig,
}

impl Fixture {
    pub async fn start() -> Self {
        let url = fresh_database("dispatch").await;
        let service = spawn_service_on(&director_dispatch::SERVICE, url.clone(), &[]).await;
        let config = DatabaseConfig::from_env(
            &Env::from_pairs([("DISPATCH_DATABASE_URL", url.as_str())]),
            "dispatch",
        )
        .unwrap();
        Self {
            service,
            pool: PgPool::connect(&url).await.unwrap(),
            config,
        }
    }

    /// The service's database URL as the services' login role (row-level security applies).
    pub fn service_login_url(&self) -> String {
        service_url(&self.service.database_url)
    }

    /// Runs `sql` (binding `task` then `driver` as `$1`, `$2` where used) in one tenant
    /// transaction of `tenant`; the ids it returns.
    pub async fn change(
        &self,
        tenant: &str,
        sql: &str,
        task: Option<Uuid>,
        driver: Option<Uuid>,
    ) -> Vec<Uuid> {
        let caller = Caller::new("writer", tenant, Role::Admin);
        let mut tx = tenant::begin(&self.pool, &caller, &self.config)
            .await
            .unwrap();
        let mut query = sqlx::query_scalar::<_, Uuid>(sqlx::AssertSqlSafe(sql.to_owned()));
        if let Some(task) = task {
            query = query.bind(task);
        }
        if let Some(driver) = driver {
            query = query.bind(driver);
        }
        let ids = query.fetch_all(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        ids
    }

    /// A driver of `tenant` who logs in as `user`.
    pub async fn driver(&self, tenant: &str, user: &str) -> Uuid {
        let sql = format!(
            "INSERT INTO drivers (tenant_id, name, user_id)
             VALUES (current_setting('app.tenant_id'), 'Driver', '{user}') RETURNING id"
        );
        self.change(tenant, &sql, None, None).await[0]
    }

    /// `count` new pending tasks of `tenant`, in one statement (one notification).
    pub async fn create_tasks(&self, tenant: &str, count: usize) -> Vec<Uuid> {
        self.create_tasks_with_notes(tenant, count, 0).await
    }

    /// [`Fixture::create_tasks`] with `notes_length` characters of notes each (up to 2,000),
    /// for events that weigh on a stream.
    pub async fn create_tasks_with_notes(
        &self,
        tenant: &str,
        count: usize,
        notes_length: usize,
    ) -> Vec<Uuid> {
        let sql = format!(
            "INSERT INTO tasks (tenant_id, company_id, title, scheduled_for, notes)
             SELECT current_setting('app.tenant_id'), gen_random_uuid(), 'collect ' || n,
                    '2026-11-23', nullif(repeat('n', {notes_length}), '')
             FROM generate_series(1, {count}) n
             RETURNING id"
        );
        self.change(tenant, &sql, None, None).await
    }

    /// A new task of `tenant` already assigned to `driver`, as an import creates it: a
    /// `created` event of origin `import`, which queues no relay job to Integrations (a
    /// person's would: it texts the driver).
    pub async fn create_assigned_task(&self, tenant: &str, driver: Uuid) -> Uuid {
        self.change(
            tenant,
            "WITH origin AS (SELECT set_config('app.task_event_origin', 'import', true))
             INSERT INTO tasks (tenant_id, company_id, title, scheduled_for, status, driver_id)
             SELECT current_setting('app.tenant_id'), gen_random_uuid(), 'collect',
                    '2026-11-23', 'assigned', $1
             FROM origin
             RETURNING id",
            Some(driver),
            None,
        )
        .await[0]
    }

    /// Assigns (or reassigns) `task` to `driver`.
    pub async fn assign(&self, tenant: &str, task: Uuid, driver: Uuid) {
        self.change(
            tenant,
            "UPDATE tasks SET status = 'assigned', driver_id = $2 WHERE id = $1 RETURNING id",
            Some(task),
            Some(driver),
        )
        .await;
    }

    /// Changes `task`'s notes: an `updated` event.
    pub async fn touch(&self, tenant: &str, task: Uuid) {
        self.change(
            tenant,
            "UPDATE tasks SET notes = 'touched ' || version WHERE id = $1 RETURNING id",
            Some(task),
            None,
        )
        .await;
    }

    /// The ids of `tenant`'s events after `after`, in order; only those whose task was then
    /// assigned to `driver` when given.
    pub async fn event_ids(&self, tenant: &str, after: i64, driver: Option<Uuid>) -> Vec<i64> {
        sqlx::query_scalar(
            "SELECT id FROM task_events
             WHERE tenant_id = $1 AND id > $2 AND ($3::uuid IS NULL OR driver_id = $3)
             ORDER BY id",
        )
        .bind(tenant)
        .bind(after)
        .bind(driver)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// A client of the service on a connection of its own.
    pub async fn client(&self) -> TasksServiceClient<Channel> {
        TasksServiceClient::new(self.service.channel().await)
    }

    /// `WatchTasks` as `caller` on `client`, resuming after `after` when given.
    pub async fn watch(
        &self,
        client: &mut TasksServiceClient<Channel>,
        caller: &Caller,
        after: Option<i64>,
    ) -> Streaming<WatchTasksResponse> {
        let request = self.service.request(
            caller,
            WatchTasksRequest {
                after_event_id: after.map(|id| id.to_string()).unwrap_or_default(),
            },
        );
        client.watch_tasks(request).await.unwrap().into_inner()
    }
}

pub fn admin(tenant: &str) -> Caller {
    Caller::new("dispatcher-1", tenant, Role::Dispatcher)
}

pub fn driver_caller(tenant: &str, user: &str) -> Caller {
    Caller::new(user, tenant, Role::Driver)
}

/// The ids of the next `count` events on `stream` (each within [`LIVE`]).
pub async fn next_ids(stream: &mut Streaming<WatchTasksResponse>, count: usize) -> Vec<i64> {
    let mut ids = Vec::with_capacity(count);
    while ids.len() < count {
        let message = tokio::time::timeout(LIVE, stream.message())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} events arrived: {ids:?}", ids.len()))
            .unwrap()
            .expect("the stream ended");
        ids.push(message.event_id.parse().unwrap());
    }
    ids
}

/// Asserts that `stream` sends nothing more for `wait`.
pub async fn assert_quiet(stream: &mut Streaming<WatchTasksResponse>, wait: Duration) {
    if let Ok(message) = tokio::time::timeout(wait, stream.message()).await {
        panic!("unexpected: {message:?}");
    }
}
