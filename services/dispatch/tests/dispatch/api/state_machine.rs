//! The task state machine over gRPC: transitions, refusals, versions, deletion and races.
//! (Partial updates, whose fields the gateway reads from a JSON body, are tested through the
//! gateway: `cli/tests/cli/dispatch_rest/state_machine.rs`.)

use director_platform::identity::Role;
use director_proto::dispatch::{
    CreateDriverRequest, CreateTaskRequest, DriverStatus, Task, TaskStatus,
};
use tonic::Code;

use super::{Answer, Api, assert_refused, caller, driver, fields};

#[tokio::test]
async fn a_dispatcher_takes_a_task_from_pending_to_assigned_in_progress_and_completed() {
    let api = Api::start().await;
    let t = caller("tenant-a", Role::Dispatcher);
    let company = api.create_company(&t, "Hill Farm").await;
    let ann = api.create_driver(&t, driver("Ann")).await;
    let task = api
        .create_task(
            &t,
            &company,
            "Collect",
            "2026-11-23",
            CreateTaskRequest {
                notes: Some("Gate code 1234".into()),
                ..Default::default()
            },
        )
        .await;
    let task_id = task.id.clone();

    let assigned = api.assign(&t, &task_id, &ann.id).await.unwrap();
    assert_eq!(assigned.status(), TaskStatus::Assigned);
    assert_eq!(assigned.driver_id.as_ref(), Some(&ann.id));
    assert_eq!(assigned.version, 2);

    let started = api.start_task(&t, &task_id).await.unwrap();
    assert_eq!(started.status(), TaskStatus::InProgress);
    assert_eq!(started.version, 3);
    assert_eq!(started.completed_at, None);

    let error = api
        .complete(&t, &task_id, Some(-1.0), None)
        .await
        .unwrap_err();
    assert_eq!(fields(&error), ["volume_liters"]);
    assert_eq!(
        api.get(&t, &task_id).await.unwrap(),
        started,
        "a refused completion changes nothing"
    );

    let completed = api
        .complete(&t, &task_id, Some(1234.5), Some("Tank 2 was full"))
        .await
        .unwrap();
    assert_eq!(completed.status(), TaskStatus::Completed);
    assert_eq!(completed.volume_liters, Some(1234.5));
    assert_eq!(completed.notes.as_deref(), Some("Tank 2 was full"));
    assert_eq!(completed.driver_id.as_ref(), Some(&ann.id));
    assert_eq!(completed.version, 4);
    assert_eq!(completed.cancel_reason, None);
    assert!(completed.completed_at.is_some(), "{completed:?}");
    assert_eq!(api.get(&t, &task_id).await.unwrap(), completed);

    // A completed task goes nowhere.
    for answer in [
        api.assign(&t, &task_id, &ann.id).await,
        api.start_task(&t, &task_id).await,
        api.complete(&t, &task_id, Some(1.0), None).await,
        api.cancel(&t, &task_id, "too late").await,
    ] {
        assert_refused(&answer, "completed");
    }
    assert_eq!(
        api.get(&t, &task_id).await.unwrap(),
        completed,
        "refusals change nothing"
    );
}

#[tokio::test]
async fn every_other_transition_is_refused_naming_the_current_status_and_cancel_needs_a_reason() {
    let api = Api::start().await;
    let t = caller("tenant-a", Role::Dispatcher);
    let company = api.create_company(&t, "Hill Farm").await;
    let ann = api.create_driver(&t, driver("Ann")).await;
    let bob = api.create_driver(&t, driver("Bob")).await;
    let ina = api
        .create_driver(
            &t,
            CreateDriverRequest {
                status: DriverStatus::Inactive.into(),
                ..driver("Ina")
            },
        )
        .await;
    let task = api
        .create_task(&t, &company, "Collect", "2026-11-23", Default::default())
        .await;
    let task_id = task.id.clone();

    // pending
    assert_refused(&api.start_task(&t, &task_id).await, "pending");
    assert_refused(&api.complete(&t, &task_id, None, None).await, "pending");

    // assigned, and assigned again to another driver
    api.assign(&t, &task_id, &ann.id).await.unwrap();
    assert_refused(&api.complete(&t, &task_id, None, None).await, "assigned");
    let reassigned = api.assign(&t, &task_id, &bob.id).await.unwrap();
    assert_eq!(reassigned.driver_id.as_ref(), Some(&bob.id));
    let error = api.assign(&t, &task_id, &ina.id).await.unwrap_err();
    assert_eq!(
        error.code(),
        Code::FailedPrecondition,
        "an inactive driver: {error:?}"
    );
    assert!(error.message().contains("driver_id"), "{error:?}");
    let error = api.assign(&t, &task_id, "").await.unwrap_err();
    assert_eq!(fields(&error), ["driver_id"]);
    assert_eq!(api.get(&t, &task_id).await.unwrap(), reassigned);

    // in_progress
    api.start_task(&t, &task_id).await.unwrap();
    assert_refused(&api.assign(&t, &task_id, &ann.id).await, "in_progress");
    assert_refused(&api.start_task(&t, &task_id).await, "in_progress");

    // cancel needs a reason
    for reason in ["", "   "] {
        let error = api.cancel(&t, &task_id, reason).await.unwrap_err();
        assert_eq!(fields(&error), ["reason"], "{reason:?}");
    }
    assert_eq!(
        api.get(&t, &task_id).await.unwrap().status(),
        TaskStatus::InProgress
    );

    // in_progress → cancelled, and then nowhere
    let cancelled = api.cancel(&t, &task_id, "Tank broke").await.unwrap();
    assert_eq!(cancelled.status(), TaskStatus::Cancelled);
    assert_eq!(cancelled.cancel_reason.as_deref(), Some("Tank broke"));
    assert_eq!(cancelled.completed_at, None);
    for answer in [
        api.assign(&t, &task_id, &ann.id).await,
        api.start_task(&t, &task_id).await,
        api.complete(&t, &task_id, None, None).await,
        api.cancel(&t, &task_id, "again").await,
    ] {
        assert_refused(&answer, "cancelled");
    }
    assert_eq!(api.get(&t, &task_id).await.unwrap(), cancelled);

    // pending → cancelled and assigned → cancelled
    let pending = api
        .create_task(&t, &company, "Pending", "2026-11-23", Default::default())
        .await;
    let assigned = api
        .create_task(
            &t,
            &company,
            "Assigned",
            "2026-11-23",
            CreateTaskRequest {
                driver_id: Some(ann.id.clone()),
                ..Default::default()
            },
        )
        .await;
    for task in [pending, assigned] {
        let cancelled = api.cancel(&t, &task.id, "Farm closed").await;
        let cancelled = cancelled.unwrap_or_else(|error| panic!("{:?} {error:?}", task.status()));
        assert_eq!(cancelled.status(), TaskStatus::Cancelled);
        assert_eq!(cancelled.cancel_reason.as_deref(), Some("Farm closed"));
    }
}

#[tokio::test]
async fn a_deleted_task_is_not_found_everywhere_and_leaves_the_list() {
    let api = Api::start().await;
    let t = caller("tenant-a", Role::Dispatcher);
    let company = api.create_company(&t, "Hill Farm").await;
    let ann = api.create_driver(&t, driver("Ann")).await;
    let task = api
        .create_task(
            &t,
            &company,
            "Doomed",
            "2026-11-23",
            CreateTaskRequest {
                driver_id: Some(ann.id.clone()),
                ..Default::default()
            },
        )
        .await;
    let kept = api
        .create_task(&t, &company, "Kept", "2026-11-23", Default::default())
        .await;
    let task_id = task.id.clone();

    assert_eq!(
        api.delete(&t, &task_id).await.unwrap(),
        "Task deleted successfully"
    );

    let gone = api.get(&t, &task_id).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    assert_eq!(gone.message(), "Task not found");
    assert_eq!(api.list(&t, Default::default()).await, [kept]);
    let back = Task {
        title: "back".into(),
        ..Default::default()
    };
    let refusals = [
        api.delete(&t, &task_id).await.map(|_| ()),
        api.update(&t, &task_id, back, &["title"]).await.map(|_| ()),
        api.assign(&t, &task_id, &ann.id).await.map(|_| ()),
        api.start_task(&t, &task_id).await.map(|_| ()),
        api.complete(&t, &task_id, None, None).await.map(|_| ()),
        api.cancel(&t, &task_id, "r").await.map(|_| ()),
    ];
    for refusal in refusals {
        let refusal = refusal.unwrap_err();
        assert_eq!(refusal.code(), Code::NotFound, "{refusal:?}");
        assert_eq!(refusal.message(), "Task not found");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_starts_and_cancels_of_one_task_leave_exactly_one_cancel() {
    let api = Api::start().await;
    let t = caller("tenant-a", Role::Admin);
    let company = api.create_company(&t, "Hill Farm").await;
    let ann = api.create_driver(&t, driver("Ann")).await;

    // Several rounds, each on a fresh assigned task, to give the race more chances.
    for round in 0..3 {
        let task = api
            .create_task(
                &t,
                &company,
                &format!("Round {round}"),
                "2026-11-23",
                CreateTaskRequest {
                    driver_id: Some(ann.id.clone()),
                    ..Default::default()
                },
            )
            .await;
        let calls = (0..12).map(|i| {
            let (api, t, id) = (&api, &t, &task.id);
            async move {
                if i % 2 == 0 {
                    ("start", api.start_task(t, id).await)
                } else {
                    ("cancel", api.cancel(t, id, &format!("cancel {i}")).await)
                }
            }
        });
        let answers: Vec<(&str, Answer)> = futures::future::join_all(calls).await;

        let succeeded = |verb: &str| {
            answers
                .iter()
                .filter(|(v, answer)| *v == verb && answer.is_ok())
                .count()
        };
        assert_eq!(succeeded("cancel"), 1, "round {round}: {answers:?}");
        assert!(succeeded("start") <= 1, "round {round}: {answers:?}");
        for (verb, answer) in &answers {
            if let Err(refusal) = answer {
                assert_eq!(
                    refusal.code(),
                    Code::FailedPrecondition,
                    "round {round}: {verb} refused with {refusal:?}"
                );
                let message = refusal.message();
                assert!(
                    message.contains("is in_progress") || message.contains("is cancelled"),
                    "round {round}: {verb}: {message:?} names the status"
                );
            }
        }
        let last = api.get(&t, &task.id).await.unwrap();
        assert_eq!(last.status(), TaskStatus::Cancelled, "round {round}");
        // Created assigned at version 1; every successful transition adds one.
        let expected_version = task.version + i32::try_from(succeeded("start")).unwrap() + 1;
        assert_eq!(
            last.version, expected_version,
            "round {round}: one change per success"
        );
    }
}
