//! The task state machine: transitions, refusals, versions, deletion and races.

use super::*;

#[tokio::test]
async fn a_dispatcher_takes_a_task_from_pending_to_assigned_in_progress_and_completed() {
    let app = spawn_stack().await;
    let t = token("tenant-a", Some(Role::Dispatcher));
    let company = create_company(&app, &t, "Hill Farm").await;
    let ann = create_driver(&app, &t, json!({"name": "Ann"})).await;
    let task = create_task(
        &app,
        &t,
        &company,
        "Collect",
        "2026-11-23",
        json!({"notes": "Gate code 1234"}),
    )
    .await;
    let task_id = id(&task);

    let (status, assigned) = transition(
        &app,
        &t,
        &task_id,
        "assign",
        json!({"driver_id": ann["id"]}),
    )
    .await;
    assert_eq!(status, 200, "{assigned}");
    assert_eq!(assigned["status"], "assigned");
    assert_eq!(assigned["driver_id"], ann["id"]);
    assert_eq!(assigned["version"], 2);

    let (status, started) = transition(&app, &t, &task_id, "start", json!({})).await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["status"], "in_progress");
    assert_eq!(started["version"], 3);
    assert_eq!(started["completed_at"], Value::Null);

    let (status, error) =
        transition(&app, &t, &task_id, "complete", json!({"volume_liters": -1})).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(fields(&error), ["volume_liters"]);
    assert_eq!(
        app.get_json(&format!("/api/tasks/{task_id}"), Some(&t))
            .await,
        started,
        "a refused completion changes nothing"
    );

    let (status, completed) = transition(
        &app,
        &t,
        &task_id,
        "complete",
        json!({"volume_liters": 1234.5, "notes": "Tank 2 was full"}),
    )
    .await;
    assert_eq!(status, 200, "{completed}");
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["volume_liters"], 1234.5);
    assert_eq!(completed["notes"], "Tank 2 was full");
    assert_eq!(completed["driver_id"], ann["id"]);
    assert_eq!(completed["version"], 4);
    assert_eq!(completed["cancel_reason"], Value::Null);
    let completed_at = completed["completed_at"].as_str().unwrap();
    assert!(completed_at.ends_with('Z'), "{completed_at}");
    assert_eq!(
        app.get_json(&format!("/api/tasks/{task_id}"), Some(&t))
            .await,
        completed
    );

    // A completed task goes nowhere.
    for (verb, body) in [
        ("assign", json!({"driver_id": ann["id"]})),
        ("start", json!({})),
        ("complete", json!({"volume_liters": 1.0})),
        ("cancel", json!({"reason": "too late"})),
    ] {
        assert_refused(
            &transition(&app, &t, &task_id, verb, body).await,
            "completed",
        );
    }
    assert_eq!(
        app.get_json(&format!("/api/tasks/{task_id}"), Some(&t))
            .await,
        completed,
        "refusals change nothing"
    );
}

#[tokio::test]
async fn every_other_transition_is_refused_naming_the_current_status_and_cancel_needs_a_reason() {
    let app = spawn_stack().await;
    let t = token("tenant-a", Some(Role::Dispatcher));
    let company = create_company(&app, &t, "Hill Farm").await;
    let ann = create_driver(&app, &t, json!({"name": "Ann"})).await;
    let bob = create_driver(&app, &t, json!({"name": "Bob"})).await;
    let ina = create_driver(&app, &t, json!({"name": "Ina", "status": "inactive"})).await;
    let task = create_task(&app, &t, &company, "Collect", "2026-11-23", json!({})).await;
    let task_id = id(&task);
    let path = format!("/api/tasks/{task_id}");

    // pending
    assert_refused(
        &transition(&app, &t, &task_id, "start", json!({})).await,
        "pending",
    );
    assert_refused(
        &transition(&app, &t, &task_id, "complete", json!({})).await,
        "pending",
    );

    // assigned, and assigned again to another driver
    let (status, _) = transition(
        &app,
        &t,
        &task_id,
        "assign",
        json!({"driver_id": ann["id"]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_refused(
        &transition(&app, &t, &task_id, "complete", json!({})).await,
        "assigned",
    );
    let (status, reassigned) = transition(
        &app,
        &t,
        &task_id,
        "assign",
        json!({"driver_id": bob["id"]}),
    )
    .await;
    assert_eq!(status, 200, "{reassigned}");
    assert_eq!(reassigned["driver_id"], bob["id"]);
    let (status, error) = transition(
        &app,
        &t,
        &task_id,
        "assign",
        json!({"driver_id": ina["id"]}),
    )
    .await;
    assert_eq!(status, PRECONDITION_FAILED, "an inactive driver: {error}");
    assert!(
        error["error"].as_str().unwrap().contains("driver_id"),
        "{error}"
    );
    let (status, error) = transition(&app, &t, &task_id, "assign", json!({})).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(fields(&error), ["driver_id"]);
    assert_eq!(app.get_json(&path, Some(&t)).await, reassigned);

    // in_progress
    let (status, _) = transition(&app, &t, &task_id, "start", json!({})).await;
    assert_eq!(status, 200);
    assert_refused(
        &transition(
            &app,
            &t,
            &task_id,
            "assign",
            json!({"driver_id": ann["id"]}),
        )
        .await,
        "in_progress",
    );
    assert_refused(
        &transition(&app, &t, &task_id, "start", json!({})).await,
        "in_progress",
    );

    // cancel needs a reason
    for body in [json!({}), json!({"reason": ""}), json!({"reason": "   "})] {
        let (status, error) = transition(&app, &t, &task_id, "cancel", body.clone()).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(fields(&error), ["reason"], "{body}");
    }
    assert_eq!(app.get_json(&path, Some(&t)).await["status"], "in_progress");

    // in_progress → cancelled, and then nowhere
    let (status, cancelled) = transition(
        &app,
        &t,
        &task_id,
        "cancel",
        json!({"reason": "Tank broke"}),
    )
    .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["cancel_reason"], "Tank broke");
    assert_eq!(cancelled["completed_at"], Value::Null);
    for (verb, body) in [
        ("assign", json!({"driver_id": ann["id"]})),
        ("start", json!({})),
        ("complete", json!({})),
        ("cancel", json!({"reason": "again"})),
    ] {
        assert_refused(
            &transition(&app, &t, &task_id, verb, body).await,
            "cancelled",
        );
    }
    assert_eq!(app.get_json(&path, Some(&t)).await, cancelled);

    // pending → cancelled and assigned → cancelled
    let pending = create_task(&app, &t, &company, "Pending", "2026-11-23", json!({})).await;
    let assigned = create_task(
        &app,
        &t,
        &company,
        "Assigned",
        "2026-11-23",
        json!({"driver_id": ann["id"]}),
    )
    .await;
    for task in [pending, assigned] {
        let (status, cancelled) = transition(
            &app,
            &t,
            &id(&task),
            "cancel",
            json!({"reason": "Farm closed"}),
        )
        .await;
        assert_eq!(status, 200, "{} {cancelled}", task["status"]);
        assert_eq!(cancelled["status"], "cancelled");
        assert_eq!(cancelled["cancel_reason"], "Farm closed");
    }
}

#[tokio::test]
async fn patch_honours_the_version_and_never_changes_the_status() {
    let app = spawn_stack().await;
    let t = token("tenant-a", Some(Role::Dispatcher));
    let company = create_company(&app, &t, "Hill Farm").await;
    let task = create_task(
        &app,
        &t,
        &company,
        "Collect",
        "2026-11-23",
        json!({"notes": "n"}),
    )
    .await;
    let path = format!("/api/tasks/{}", id(&task));

    let (status, renamed) =
        send(app.patch(&path, &t, json!({"title": "Collect early", "version": 1}))).await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["title"], "Collect early");
    assert_eq!(renamed["version"], 2, "the version is incremented");
    assert_eq!(renamed["notes"], "n", "absent keys are untouched");
    assert_eq!(renamed["scheduled_for"], "2026-11-23");

    for body in [
        json!({"title": "Lost update", "version": 1}),
        json!({"version": 1}),
    ] {
        let (status, error) = send(app.patch(&path, &t, body.clone())).await;
        assert_eq!(status, 409, "a stale version: {body}: {error}");
        assert_eq!(error["code"], "ABORTED");
    }
    assert_eq!(app.get_json(&path, Some(&t)).await, renamed);

    let (status, moved) = send(app.patch(
        &path,
        &t,
        json!({"scheduled_for": "2026-11-24", "notes": null, "version": 2}),
    ))
    .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["scheduled_for"], "2026-11-24");
    assert_eq!(moved["notes"], Value::Null, "null clears");
    assert_eq!(moved["version"], 3);
    let (status, unversioned) = send(app.patch(&path, &t, json!({"volume_liters": 900}))).await;
    assert_eq!(
        status, 200,
        "without a version the update applies: {unversioned}"
    );
    assert_eq!(unversioned["version"], 4);

    for (body, field) in [
        (json!({"status": "completed"}), "status"),
        (json!({"status": "completed", "version": 4}), "status"),
        (
            json!({"driver_id": uuid::Uuid::new_v4().to_string()}),
            "driver_id",
        ),
        (json!({"cancel_reason": "no"}), "cancel_reason"),
        (json!({"title": null}), "title"),
        (json!({"scheduled_for": "tomorrow"}), "scheduled_for"),
    ] {
        let (status, error) = send(app.patch(&path, &t, body.clone())).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(fields(&error), [field], "{body}");
    }
    assert_eq!(
        app.get_json(&path, Some(&t)).await,
        unversioned,
        "refused updates change nothing"
    );

    // A window may not end before it starts, whether both ends or one end changes.
    let (status, error) = send(app.patch(
        &path,
        &t,
        json!({"window_start": "2026-11-24T10:00:00Z", "window_end": "2026-11-24T09:00:00Z"}),
    ))
    .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(fields(&error), ["window_end"]);
    let (status, windowed) = send(app.patch(
        &path,
        &t,
        json!({"window_start": "2026-11-24T10:00:00Z", "window_end": "2026-11-24T12:00:00Z"}),
    ))
    .await;
    assert_eq!(status, 200, "{windowed}");
    let (status, error) =
        send(app.patch(&path, &t, json!({"window_end": "2026-11-24T09:00:00Z"}))).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(fields(&error), ["window_end"]);
    assert_eq!(app.get_json(&path, Some(&t)).await, windowed);
}

#[tokio::test]
async fn a_deleted_task_answers_404_everywhere_and_leaves_the_list() {
    let app = spawn_stack().await;
    let t = token("tenant-a", Some(Role::Dispatcher));
    let company = create_company(&app, &t, "Hill Farm").await;
    let ann = create_driver(&app, &t, json!({"name": "Ann"})).await;
    let task = create_task(
        &app,
        &t,
        &company,
        "Doomed",
        "2026-11-23",
        json!({"driver_id": ann["id"]}),
    )
    .await;
    let kept = create_task(&app, &t, &company, "Kept", "2026-11-23", json!({})).await;
    let task_id = id(&task);
    let path = format!("/api/tasks/{task_id}");

    let (status, deleted) = send(app.delete(&path, &t)).await;
    assert_eq!(status, 200);
    assert_eq!(deleted, json!({"message": "Task deleted successfully"}));

    let (status, gone) = send(app.get(&path, &t)).await;
    assert_eq!(status, 404);
    assert_eq!(gone["detail"], "Task not found");
    assert_eq!(gone["code"], "NOT_FOUND");
    assert_eq!(app.get_json("/api/tasks", Some(&t)).await, json!([kept]));
    for answer in [
        send(app.delete(&path, &t)).await,
        send(app.patch(&path, &t, json!({"title": "back"}))).await,
        transition(
            &app,
            &t,
            &task_id,
            "assign",
            json!({"driver_id": ann["id"]}),
        )
        .await,
        transition(&app, &t, &task_id, "start", json!({})).await,
        transition(&app, &t, &task_id, "complete", json!({})).await,
        transition(&app, &t, &task_id, "cancel", json!({"reason": "r"})).await,
    ] {
        assert_eq!(answer.0, 404, "{}", answer.1);
        assert_eq!(answer.1["detail"], "Task not found");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_starts_and_cancels_of_one_task_leave_exactly_one_cancel() {
    let app = spawn_stack().await;
    let t = token("tenant-a", None);
    let company = create_company(&app, &t, "Hill Farm").await;
    let ann = create_driver(&app, &t, json!({"name": "Ann"})).await;

    // Several rounds, each on a fresh assigned task, to give the race more chances.
    for round in 0..3 {
        let task = create_task(
            &app,
            &t,
            &company,
            &format!("Round {round}"),
            "2026-11-23",
            json!({"driver_id": ann["id"]}),
        )
        .await;
        let path = format!("/api/tasks/{}", id(&task));
        let requests = (0..12).map(|i| {
            let (verb, body) = if i % 2 == 0 {
                ("start", json!({}))
            } else {
                ("cancel", json!({"reason": format!("cancel {i}")}))
            };
            let request = app.post(&format!("{path}/{verb}"), &t, body);
            async move { (verb, send(request).await) }
        });
        let answers = futures::future::join_all(requests).await;

        let succeeded = |verb: &str| {
            answers
                .iter()
                .filter(|(v, (status, _))| *v == verb && *status == 200)
                .count()
        };
        assert_eq!(succeeded("cancel"), 1, "round {round}: {answers:?}");
        assert!(succeeded("start") <= 1, "round {round}: {answers:?}");
        for (verb, (status, body)) in &answers {
            assert!(
                *status < 500,
                "round {round}: {verb} answered {status}: {body}"
            );
            if *status != 200 {
                assert_eq!(
                    *status, PRECONDITION_FAILED,
                    "round {round}: {verb} refused with {body}"
                );
                let message = body["error"].as_str().unwrap();
                assert!(
                    message.contains("is in_progress") || message.contains("is cancelled"),
                    "round {round}: {verb}: {message:?} names the status"
                );
            }
        }
        let last = app.get_json(&path, Some(&t)).await;
        assert_eq!(last["status"], "cancelled", "round {round}");
        // Created assigned at version 1; every successful transition adds one.
        let expected_version = task["version"].as_u64().unwrap() + succeeded("start") as u64 + 1;
        assert_eq!(
            last["version"], expected_version,
            "round {round}: one change per success"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_with_the_same_version_let_exactly_one_through() {
    let app = spawn_stack().await;
    let t = token("tenant-a", None);
    let company = create_company(&app, &t, "Hill Farm").await;
    let task = create_task(&app, &t, &company, "Collect", "2026-11-23", json!({})).await;
    let path = format!("/api/tasks/{}", id(&task));

    let requests = (0..8).map(|i| {
        let request = app.patch(
            &path,
            &t,
            json!({"title": format!("Edit {i}"), "version": 1}),
        );
        async move { send(request).await }
    });
    let answers = futures::future::join_all(requests).await;
    let winners: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == 200)
        .map(|(_, task)| task)
        .collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    for (status, body) in &answers {
        assert!(*status == 200 || *status == 409, "{status}: {body}");
    }
    let last = app.get_json(&path, Some(&t)).await;
    assert_eq!(&last, winners[0], "the one accepted edit is the stored one");
    assert_eq!(last["version"], 2);
}
