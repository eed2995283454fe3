//! Partial updates of a task through the gateway: the JSON body's keys are the fields updated
//! (absent keys untouched, `null` clears), the version is honoured, even under a race, and the
//! status never changes. The transitions, deletion and their races are Dispatch's own, tested
//! over gRPC in `services/dispatch/tests/dispatch/api/state_machine.rs`.

use super::*;

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
