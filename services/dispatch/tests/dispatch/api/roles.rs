//! Roles and tenancy over gRPC: what a driver sees and may do, and another tenant's view.

use director_platform::identity::{Caller, Role};
use director_proto::dispatch::{
    CreateDriverRequest, CreateTaskRequest, Driver, DriverStatus, ListTasksRequest, Task,
    TaskStatus,
};
use tonic::{Code, Status};

use super::{Api, caller, driver};

/// A driver's own login: user `login` of `tenant`.
fn driver_login(login: &str, tenant: &str) -> Caller {
    Caller::new(login, tenant, Role::Driver)
}

/// A driver with the login `user_id`.
fn driver_with_login(name: &str, user_id: &str) -> CreateDriverRequest {
    CreateDriverRequest {
        user_id: Some(user_id.to_owned()),
        ..driver(name)
    }
}

/// A task assigned to `driver_id`.
fn assigned_to(driver_id: &str) -> CreateTaskRequest {
    CreateTaskRequest {
        driver_id: Some(driver_id.to_owned()),
        ..Default::default()
    }
}

fn named(name: &str) -> Driver {
    Driver {
        name: name.to_owned(),
        ..Default::default()
    }
}

fn titled(title: &str) -> Task {
    Task {
        title: title.to_owned(),
        ..Default::default()
    }
}

/// Asserts `answer` is NOT_FOUND with `message`.
fn assert_not_found<T: std::fmt::Debug>(answer: Result<T, Status>, message: &str) {
    let refusal = answer.unwrap_err();
    assert_eq!(refusal.code(), Code::NotFound, "{refusal:?}");
    assert_eq!(refusal.message(), message);
}

#[tokio::test]
async fn a_driver_sees_their_own_record_and_tasks_and_only_starts_and_completes_them() {
    let api = Api::start().await;
    let admin = caller("tenant-a", Role::Admin);
    let company = api.create_company(&admin, "Hill Farm").await;
    let ann = api
        .create_driver(&admin, driver_with_login("Ann", "ann-login"))
        .await;
    let bob = api
        .create_driver(&admin, driver_with_login("Bob", "bob-login"))
        .await;
    let for_ann = api
        .create_task(
            &admin,
            &company,
            "For Ann",
            "2026-11-23",
            assigned_to(&ann.id),
        )
        .await;
    let for_bob = api
        .create_task(
            &admin,
            &company,
            "For Bob",
            "2026-11-23",
            assigned_to(&bob.id),
        )
        .await;
    let unassigned = api
        .create_task(
            &admin,
            &company,
            "Nobody's",
            "2026-11-23",
            Default::default(),
        )
        .await;
    let as_ann = driver_login("ann-login", "tenant-a");
    let (ann_task, bob_task) = (&for_ann.id, &for_bob.id);

    // Drivers: their own record only; no writes.
    assert_eq!(api.list_drivers(&as_ann).await, std::slice::from_ref(&ann));
    assert_eq!(api.get_driver(&as_ann, &ann.id).await.unwrap(), ann);
    assert_not_found(api.get_driver(&as_ann, &bob.id).await, "Driver not found");
    let inactive = Driver {
        status: DriverStatus::Inactive.into(),
        ..Default::default()
    };
    for answer in [
        api.try_create_driver(&as_ann, driver("Me too"))
            .await
            .map(|_| ()),
        api.update_driver(&as_ann, &ann.id, named("Queen Ann"), &["name"])
            .await
            .map(|_| ()),
        api.update_driver(&as_ann, &bob.id, inactive, &["status"])
            .await
            .map(|_| ()),
        api.delete_driver(&as_ann, &ann.id).await.map(|_| ()),
    ] {
        let refusal = answer.unwrap_err();
        assert_eq!(refusal.code(), Code::PermissionDenied, "{refusal:?}");
    }

    // Tasks: only those assigned to them.
    assert_eq!(api.titles(&as_ann, Default::default()).await, ["For Ann"]);
    let bobs = ListTasksRequest {
        driver_id: Some(bob.id.clone()),
        ..Default::default()
    };
    assert!(
        api.titles(&as_ann, bobs).await.is_empty(),
        "a filter does not widen what a driver sees"
    );
    assert_eq!(api.get(&as_ann, ann_task).await.unwrap(), for_ann);
    for other in [bob_task, &unassigned.id] {
        assert_not_found(api.get(&as_ann, other).await, "Task not found");
    }
    let mine = CreateTaskRequest {
        company_id: company.clone(),
        title: "Mine".into(),
        scheduled_for: "2026-11-23".into(),
        ..Default::default()
    };
    for answer in [
        api.try_create_task(&as_ann, mine).await.map(|_| ()),
        api.assign(&as_ann, ann_task, &ann.id).await.map(|_| ()),
        api.assign(&as_ann, &unassigned.id, &ann.id)
            .await
            .map(|_| ()),
        api.cancel(&as_ann, ann_task, "tired").await.map(|_| ()),
        api.update(&as_ann, ann_task, titled("x"), &["title"])
            .await
            .map(|_| ()),
        api.delete(&as_ann, ann_task).await.map(|_| ()),
    ] {
        let refusal = answer.unwrap_err();
        assert_eq!(refusal.code(), Code::PermissionDenied, "{refusal:?}");
    }

    // Someone else's task is not theirs to start or complete.
    assert_not_found(api.start_task(&as_ann, bob_task).await, "Task not found");
    assert_not_found(
        api.complete(&as_ann, bob_task, None, None).await,
        "Task not found",
    );

    // Their own task they start and complete.
    let started = api.start_task(&as_ann, ann_task).await.unwrap();
    assert_eq!(started.status(), TaskStatus::InProgress);
    let completed = api
        .complete(&as_ann, ann_task, Some(800.0), None)
        .await
        .unwrap();
    assert_eq!(completed.status(), TaskStatus::Completed);
    assert_eq!(completed.volume_liters, Some(800.0));

    // Nothing Ann tried changed anyone else's records.
    assert_eq!(api.get(&admin, bob_task).await.unwrap(), for_bob);
    assert_eq!(api.get(&admin, &unassigned.id).await.unwrap(), unassigned);
    assert_eq!(api.list_drivers(&admin).await, [ann, bob]);
}

#[tokio::test]
async fn a_driver_login_that_matches_no_live_driver_sees_nothing() {
    let api = Api::start().await;
    let admin = caller("tenant-a", Role::Admin);
    let company = api.create_company(&admin, "Hill Farm").await;
    let ann = api
        .create_driver(&admin, driver_with_login("Ann", "ann-login"))
        .await;
    let task = api
        .create_task(
            &admin,
            &company,
            "For Ann",
            "2026-11-23",
            assigned_to(&ann.id),
        )
        .await;
    let stranger = driver_login("nobody-login", "tenant-a");
    // The same login name in another tenant is another person.
    let ann_in_b = driver_login("ann-login", "tenant-b");
    let as_ann = driver_login("ann-login", "tenant-a");

    let assert_sees_nothing = |who: &'static str, login: Caller| {
        let (api, ann_id, task_id) = (&api, &ann.id, &task.id);
        async move {
            assert!(api.list_drivers(&login).await.is_empty(), "{who}");
            assert!(
                api.list(&login, Default::default()).await.is_empty(),
                "{who}"
            );
            let answers = [
                api.get_driver(&login, ann_id).await.map(|_| ()),
                api.get(&login, task_id).await.map(|_| ()),
                api.start_task(&login, task_id).await.map(|_| ()),
                api.complete(&login, task_id, None, None).await.map(|_| ()),
            ];
            for answer in answers {
                let refusal = answer.unwrap_err();
                assert_eq!(refusal.code(), Code::NotFound, "{who}: {refusal:?}");
            }
        }
    };
    assert_sees_nothing("a stranger", stranger).await;
    assert_sees_nothing("Ann's login name in tenant B", ann_in_b).await;

    // Once Ann's record is deleted, her login is no one's.
    assert_eq!(api.titles(&as_ann, Default::default()).await, ["For Ann"]);
    api.delete_driver(&admin, &ann.id).await.unwrap();
    assert_sees_nothing("Ann after her record was deleted", as_ann).await;
    assert_eq!(
        api.get(&admin, &task.id).await.unwrap().status(),
        TaskStatus::Assigned,
        "the task was not started"
    );
}

#[tokio::test]
async fn another_tenant_gets_not_found_for_drivers_and_tasks_on_every_call_and_empty_lists() {
    let api = Api::start().await;
    let a = caller("tenant-a", Role::Admin);
    let b = caller("tenant-b", Role::Admin);
    let company = api.create_company(&a, "A's Farm").await;
    let ann = api.create_driver(&a, driver("Ann")).await;
    let task = api
        .create_task(
            &a,
            &company,
            "A's collection",
            "2026-11-23",
            assigned_to(&ann.id),
        )
        .await;
    let bs_driver = api.create_driver(&b, driver("Bea")).await;
    let task_id = &task.id;

    assert_not_found(api.get_driver(&b, &ann.id).await, "Driver not found");
    assert_not_found(
        api.update_driver(&b, &ann.id, named("Stolen"), &["name"])
            .await,
        "Driver not found",
    );
    assert_not_found(api.delete_driver(&b, &ann.id).await, "Driver not found");
    let answers = [
        api.get(&b, task_id).await.map(|_| ()),
        api.update(&b, task_id, titled("Stolen"), &["title"])
            .await
            .map(|_| ()),
        api.assign(&b, task_id, &bs_driver.id).await.map(|_| ()),
        api.start_task(&b, task_id).await.map(|_| ()),
        api.complete(&b, task_id, None, None).await.map(|_| ()),
        api.cancel(&b, task_id, "mine now").await.map(|_| ()),
        api.delete(&b, task_id).await.map(|_| ()),
    ];
    for answer in answers {
        assert_not_found(answer, "Task not found");
    }
    assert_eq!(api.list_drivers(&b).await, [bs_driver]);
    for request in [
        ListTasksRequest::default(),
        ListTasksRequest {
            driver_id: Some(ann.id.clone()),
            ..Default::default()
        },
        ListTasksRequest {
            company_id: Some(company.clone()),
            ..Default::default()
        },
    ] {
        assert!(
            api.titles(&b, request.clone()).await.is_empty(),
            "{request:?}"
        );
    }

    // B cannot hand its own task to A's driver either.
    let bs_company = api.create_company(&b, "B's Farm").await;
    let bs_task = api
        .create_task(&b, &bs_company, "B's", "2026-11-23", Default::default())
        .await;
    let error = api.assign(&b, &bs_task.id, &ann.id).await.unwrap_err();
    assert_eq!(error.code(), Code::FailedPrecondition, "{error:?}");
    assert!(error.message().contains("driver_id"), "{error:?}");

    assert_eq!(api.get_driver(&a, &ann.id).await.unwrap(), ann);
    assert_eq!(api.get(&a, task_id).await.unwrap(), task);
}
