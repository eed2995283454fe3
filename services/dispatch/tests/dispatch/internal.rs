//! The bulk upserts imports make: idempotent (re-sending changes nothing, not even a
//! version or a task event), drivers resolved by external id, history left alone, bad
//! batches refused whole, tenants apart.

#![allow(clippy::unwrap_used)]

use director_platform::identity::{Caller, Role};
use director_proto::internal::dispatch::dispatch_internal_service_client::DispatchInternalServiceClient;
use director_proto::internal::dispatch::{
    DriverUpsert, TaskUpsert, UpsertCounts, UpsertDriversRequest, UpsertTasksRequest,
};
use director_store::testing::{TestService, spawn_service};
use sqlx::Connection;

const COMPANY: &str = "5b0c8f6e-0000-4000-8000-000000000002";

fn driver(id: &str, active: bool) -> DriverUpsert {
    DriverUpsert {
        external_id: id.to_owned(),
        name: format!("Driver {id}"),
        phone: Some("+44 7700 900123".to_owned()),
        email: Some("not an address".to_owned()),
        active,
    }
}

fn task(id: &str, driver: Option<&str>) -> TaskUpsert {
    TaskUpsert {
        external_id: id.to_owned(),
        company_id: COMPANY.to_owned(),
        driver_external_id: driver.map(str::to_owned),
        title: format!("Collection {id}"),
        scheduled_for: "2026-11-23".to_owned(),
        window_start: None,
        window_end: None,
        volume_liters: Some(1200.0),
    }
}

fn counts(created: i32, updated: i32, unchanged: i32) -> Option<UpsertCounts> {
    Some(UpsertCounts {
        created,
        updated,
        unchanged,
    })
}

struct Dispatch {
    service: TestService,
    admin: Caller,
}

impl Dispatch {
    async fn start() -> Self {
        Self {
            service: spawn_service(&director_dispatch::SERVICE, &[]).await,
            admin: Caller::new("import", "dairy", Role::Admin),
        }
    }

    async fn drivers(
        &self,
        caller: &Caller,
        drivers: Vec<DriverUpsert>,
    ) -> Result<Option<UpsertCounts>, tonic::Status> {
        DispatchInternalServiceClient::new(self.service.channel().await)
            .upsert_drivers(
                self.service
                    .request(caller, UpsertDriversRequest { drivers }),
            )
            .await
            .map(|answer| answer.into_inner().counts)
    }

    async fn tasks(
        &self,
        caller: &Caller,
        tasks: Vec<TaskUpsert>,
    ) -> Result<(Option<UpsertCounts>, i32), tonic::Status> {
        DispatchInternalServiceClient::new(self.service.channel().await)
            .upsert_tasks(self.service.request(caller, UpsertTasksRequest { tasks }))
            .await
            .map(|answer| {
                let answer = answer.into_inner();
                (answer.counts, answer.assigned)
            })
    }

    async fn sql<T>(&self, query: &str) -> T
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    {
        let mut db = sqlx::PgConnection::connect(&self.service.database_url)
            .await
            .unwrap();
        sqlx::query_as(sqlx::AssertSqlSafe(query))
            .fetch_one(&mut db)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn drivers_are_created_then_resending_changes_nothing_and_changes_are_applied() {
    let dispatch = Dispatch::start().await;
    let admin = dispatch.admin.clone();
    let batch = vec![driver("1", true), driver("2", false)];
    assert_eq!(
        dispatch.drivers(&admin, batch.clone()).await.unwrap(),
        counts(2, 0, 0)
    );
    assert_eq!(
        dispatch.drivers(&admin, batch).await.unwrap(),
        counts(0, 0, 2)
    );
    let (phone, email, status): (Option<String>, Option<String>, String) = dispatch
        .sql("SELECT phone, email, status FROM drivers WHERE external_id = '2'")
        .await;
    assert_eq!(
        phone.as_deref(),
        Some("+447700900123"),
        "normalised to E.164"
    );
    assert_eq!(email, None, "an unusable address is dropped, not refused");
    assert_eq!(status, "inactive");

    let mut renamed = driver("1", true);
    renamed.name = "Ada".to_owned();
    assert_eq!(
        dispatch
            .drivers(&admin, vec![renamed, driver("3", true)])
            .await
            .unwrap(),
        counts(1, 1, 0)
    );
}

#[tokio::test]
async fn tasks_are_assigned_to_known_drivers_and_resending_writes_no_version_or_event() {
    let dispatch = Dispatch::start().await;
    let admin = dispatch.admin.clone();
    dispatch
        .drivers(&admin, vec![driver("d1", true), driver("off", false)])
        .await
        .unwrap();
    let batch = vec![
        task("c1", Some("d1")),
        task("c2", Some("nobody")),
        task("c3", Some("off")),
    ];
    let (written, assigned) = dispatch.tasks(&admin, batch.clone()).await.unwrap();
    assert_eq!((written, assigned), (counts(3, 0, 0), 1));
    let (events,): (i64,) = dispatch.sql("SELECT count(*) FROM task_events").await;

    let (written, assigned) = dispatch.tasks(&admin, batch).await.unwrap();
    assert_eq!((written, assigned), (counts(0, 0, 3), 0));
    let (events_after, versions): (i64, i32) = dispatch
        .sql("SELECT (SELECT count(*) FROM task_events), (SELECT max(version) FROM tasks)")
        .await;
    assert_eq!((events_after, versions), (events, 1));
    let (statuses,): (String,) = dispatch
        .sql("SELECT string_agg(external_id || '=' || status, ',' ORDER BY external_id) FROM tasks")
        .await;
    assert_eq!(statuses, "c1=assigned,c2=pending,c3=pending");

    // The driver appears later: the pending task gets it.
    dispatch
        .drivers(&admin, vec![driver("nobody", true)])
        .await
        .unwrap();
    let (written, assigned) = dispatch
        .tasks(&admin, vec![task("c2", Some("nobody"))])
        .await
        .unwrap();
    assert_eq!((written, assigned), (counts(0, 1, 0), 1));
}

#[tokio::test]
async fn tasks_already_started_completed_or_cancelled_are_left_as_they_are() {
    let dispatch = Dispatch::start().await;
    let admin = dispatch.admin.clone();
    dispatch
        .drivers(&admin, vec![driver("d1", true)])
        .await
        .unwrap();
    dispatch
        .tasks(&admin, vec![task("c1", Some("d1"))])
        .await
        .unwrap();
    let mut db = sqlx::PgConnection::connect(&dispatch.service.database_url)
        .await
        .unwrap();
    for change in [
        "UPDATE tasks SET status = 'in_progress'",
        "UPDATE tasks SET status = 'completed', completed_at = now(), volume_liters = 980",
    ] {
        sqlx::query(change).execute(&mut db).await.unwrap();
    }
    let mut changed = task("c1", None);
    changed.title = "Renamed in Vessey".to_owned();
    let (written, _) = dispatch.tasks(&admin, vec![changed]).await.unwrap();
    assert_eq!(written, counts(0, 0, 1));
    let (title, status, volume): (String, String, f64) = dispatch
        .sql("SELECT title, status, volume_liters FROM tasks")
        .await;
    assert_eq!(
        (title.as_str(), status.as_str(), volume),
        ("Collection c1", "completed", 980.0)
    );
}

#[tokio::test]
async fn a_bad_batch_is_refused_whole_drivers_may_not_call_and_tenants_stay_apart() {
    let dispatch = Dispatch::start().await;
    let admin = dispatch.admin.clone();
    let mut bad_window = task("c3", None);
    bad_window.window_start = Some(prost_types::Timestamp {
        seconds: 2_000_000_000,
        nanos: 0,
    });
    bad_window.window_end = Some(prost_types::Timestamp {
        seconds: 1_000_000_000,
        nanos: 0,
    });
    let mut bad_company = task("c4", None);
    bad_company.company_id = "farm-7".to_owned();
    let status = dispatch
        .tasks(
            &admin,
            vec![task("c1", None), task("c1", None), bad_window, bad_company],
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    for field in [
        "tasks[1].external_id",
        "tasks[2].window_end",
        "tasks[3].company_id",
    ] {
        assert!(status.message().contains(field), "{field}: {status:?}");
    }
    let (tasks,): (i64,) = dispatch.sql("SELECT count(*) FROM tasks").await;
    assert_eq!(tasks, 0, "nothing of a refused batch is written");

    let driver_login = Caller::new("someone", "dairy", Role::Driver);
    let status = dispatch
        .tasks(&driver_login, vec![task("c1", None)])
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);

    dispatch
        .drivers(&admin, vec![driver("d1", true)])
        .await
        .unwrap();
    let other = Caller::new("import", "creamery", Role::Admin);
    // Creamery's collection names d1, which only dairy has: not assigned.
    let (written, assigned) = dispatch
        .tasks(&other, vec![task("c1", Some("d1"))])
        .await
        .unwrap();
    assert_eq!((written, assigned), (counts(1, 0, 0), 0));
    assert_eq!(
        dispatch
            .drivers(&other, vec![driver("d1", true)])
            .await
            .unwrap(),
        counts(1, 0, 0)
    );
}
