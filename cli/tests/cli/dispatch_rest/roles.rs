//! Roles and tenancy: what a driver sees and may do, and another tenant's view.

use super::*;

#[tokio::test]
async fn a_driver_sees_their_own_record_and_tasks_and_only_starts_and_completes_them() {
    let app = spawn_stack().await;
    let admin = token("tenant-a", None);
    let company = create_company(&app, &admin, "Hill Farm").await;
    let ann = create_driver(&app, &admin, json!({"name": "Ann", "user_id": "ann-login"})).await;
    let bob = create_driver(&app, &admin, json!({"name": "Bob", "user_id": "bob-login"})).await;
    let for_ann = create_task(
        &app,
        &admin,
        &company,
        "For Ann",
        "2026-11-23",
        json!({"driver_id": ann["id"]}),
    )
    .await;
    let for_bob = create_task(
        &app,
        &admin,
        &company,
        "For Bob",
        "2026-11-23",
        json!({"driver_id": bob["id"]}),
    )
    .await;
    let unassigned = create_task(&app, &admin, &company, "Nobody's", "2026-11-23", json!({})).await;
    let as_ann = token_for("ann-login", "tenant-a", Some(Role::Driver));
    let (ann_id, bob_id) = (id(&ann), id(&bob));
    let (ann_task, bob_task) = (id(&for_ann), id(&for_bob));

    // Drivers: their own record only; no writes.
    assert_eq!(
        app.get_json("/api/drivers", Some(&as_ann)).await,
        json!([ann])
    );
    assert_eq!(
        app.get_json(&format!("/api/drivers/{ann_id}"), Some(&as_ann))
            .await,
        ann
    );
    let (status, error) = send(app.get(&format!("/api/drivers/{bob_id}"), &as_ann)).await;
    assert_eq!(status, 404);
    assert_eq!(error["detail"], "Driver not found");
    for answer in [
        send(app.post("/api/drivers", &as_ann, json!({"name": "Me too"}))).await,
        send(app.patch(
            &format!("/api/drivers/{ann_id}"),
            &as_ann,
            json!({"name": "Queen Ann"}),
        ))
        .await,
        send(app.patch(
            &format!("/api/drivers/{bob_id}"),
            &as_ann,
            json!({"status": "inactive"}),
        ))
        .await,
        send(app.delete(&format!("/api/drivers/{ann_id}"), &as_ann)).await,
    ] {
        assert_eq!(answer.0, 403, "{}", answer.1);
        assert_eq!(answer.1["code"], "PERMISSION_DENIED");
    }

    // Tasks: only those assigned to them.
    assert_eq!(titles(&app, &as_ann, "").await, ["For Ann"]);
    assert!(
        titles(&app, &as_ann, &format!("?driver_id={bob_id}"))
            .await
            .is_empty(),
        "a filter does not widen what a driver sees"
    );
    assert_eq!(
        app.get_json(&format!("/api/tasks/{ann_task}"), Some(&as_ann))
            .await,
        for_ann
    );
    for other in [&bob_task, &id(&unassigned)] {
        let (status, error) = send(app.get(&format!("/api/tasks/{other}"), &as_ann)).await;
        assert_eq!(status, 404);
        assert_eq!(error["detail"], "Task not found");
    }
    for answer in [
        send(app.post(
            "/api/tasks",
            &as_ann,
            json!({"company_id": company, "title": "Mine", "scheduled_for": "2026-11-23"}),
        ))
        .await,
        transition(
            &app,
            &as_ann,
            &ann_task,
            "assign",
            json!({"driver_id": ann_id}),
        )
        .await,
        transition(
            &app,
            &as_ann,
            &id(&unassigned),
            "assign",
            json!({"driver_id": ann_id}),
        )
        .await,
        transition(
            &app,
            &as_ann,
            &ann_task,
            "cancel",
            json!({"reason": "tired"}),
        )
        .await,
        send(app.patch(
            &format!("/api/tasks/{ann_task}"),
            &as_ann,
            json!({"title": "x"}),
        ))
        .await,
        send(app.delete(&format!("/api/tasks/{ann_task}"), &as_ann)).await,
    ] {
        assert_eq!(answer.0, 403, "{}", answer.1);
        assert_eq!(answer.1["code"], "PERMISSION_DENIED");
    }

    // Someone else's task is not theirs to start or complete.
    for verb in ["start", "complete"] {
        let (status, error) = transition(&app, &as_ann, &bob_task, verb, json!({})).await;
        assert_eq!(status, 404, "{verb}: {error}");
        assert_eq!(error["detail"], "Task not found");
    }

    // Their own task they start and complete.
    let (status, started) = transition(&app, &as_ann, &ann_task, "start", json!({})).await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["status"], "in_progress");
    let (status, completed) = transition(
        &app,
        &as_ann,
        &ann_task,
        "complete",
        json!({"volume_liters": 800}),
    )
    .await;
    assert_eq!(status, 200, "{completed}");
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["volume_liters"].as_f64(), Some(800.0));

    // Nothing Ann tried changed anyone else's records.
    assert_eq!(
        app.get_json(&format!("/api/tasks/{bob_task}"), Some(&admin))
            .await,
        for_bob
    );
    assert_eq!(
        app.get_json(&format!("/api/tasks/{}", id(&unassigned)), Some(&admin))
            .await,
        unassigned
    );
    assert_eq!(
        app.get_json("/api/drivers", Some(&admin)).await,
        json!([ann, bob])
    );
}

#[tokio::test]
async fn a_driver_token_that_matches_no_live_driver_sees_nothing() {
    let app = spawn_stack().await;
    let admin = token("tenant-a", None);
    let company = create_company(&app, &admin, "Hill Farm").await;
    let ann = create_driver(&app, &admin, json!({"name": "Ann", "user_id": "ann-login"})).await;
    let task = create_task(
        &app,
        &admin,
        &company,
        "For Ann",
        "2026-11-23",
        json!({"driver_id": ann["id"]}),
    )
    .await;
    let stranger = token_for("nobody-login", "tenant-a", Some(Role::Driver));
    // The same login name in another tenant is another person.
    let ann_in_b = token_for("ann-login", "tenant-b", Some(Role::Driver));
    let as_ann = token_for("ann-login", "tenant-a", Some(Role::Driver));

    let assert_sees_nothing = |who: &'static str, token: String| {
        let app = &app;
        let (ann_id, task_id) = (id(&ann), id(&task));
        async move {
            assert_eq!(
                app.get_json("/api/drivers", Some(&token)).await,
                json!([]),
                "{who}"
            );
            assert_eq!(
                app.get_json("/api/tasks", Some(&token)).await,
                json!([]),
                "{who}"
            );
            for answer in [
                send(app.get(&format!("/api/drivers/{ann_id}"), &token)).await,
                send(app.get(&format!("/api/tasks/{task_id}"), &token)).await,
                transition(app, &token, &task_id, "start", json!({})).await,
                transition(app, &token, &task_id, "complete", json!({})).await,
            ] {
                assert_eq!(answer.0, 404, "{who}: {}", answer.1);
            }
        }
    };
    assert_sees_nothing("a stranger", stranger).await;
    assert_sees_nothing("Ann's login name in tenant B", ann_in_b).await;

    // Once Ann's record is deleted, her login is no one's.
    assert_eq!(titles(&app, &as_ann, "").await, ["For Ann"]);
    let (status, _) = send(app.delete(&format!("/api/drivers/{}", id(&ann)), &admin)).await;
    assert_eq!(status, 200);
    assert_sees_nothing("Ann after her record was deleted", as_ann).await;
    assert_eq!(
        app.get_json(&format!("/api/tasks/{}", id(&task)), Some(&admin))
            .await["status"],
        "assigned",
        "the task was not started"
    );
}

#[tokio::test]
async fn another_tenant_gets_404_for_drivers_and_tasks_on_every_route_and_empty_lists() {
    let app = spawn_stack().await;
    let a = token("tenant-a", None);
    let b = token("tenant-b", None);
    let company = create_company(&app, &a, "A's Farm").await;
    let ann = create_driver(&app, &a, json!({"name": "Ann"})).await;
    let task = create_task(
        &app,
        &a,
        &company,
        "A's collection",
        "2026-11-23",
        json!({"driver_id": ann["id"]}),
    )
    .await;
    let bs_driver = create_driver(&app, &b, json!({"name": "Bea"})).await;
    let driver_path = format!("/api/drivers/{}", id(&ann));
    let task_id = id(&task);
    let task_path = format!("/api/tasks/{task_id}");

    for answer in [
        send(app.get(&driver_path, &b)).await,
        send(app.patch(&driver_path, &b, json!({"name": "Stolen"}))).await,
        send(app.delete(&driver_path, &b)).await,
    ] {
        assert_eq!(answer.0, 404, "{}", answer.1);
        assert_eq!(answer.1["detail"], "Driver not found");
    }
    for answer in [
        send(app.get(&task_path, &b)).await,
        send(app.patch(&task_path, &b, json!({"title": "Stolen"}))).await,
        transition(
            &app,
            &b,
            &task_id,
            "assign",
            json!({"driver_id": bs_driver["id"]}),
        )
        .await,
        transition(&app, &b, &task_id, "start", json!({})).await,
        transition(&app, &b, &task_id, "complete", json!({})).await,
        transition(&app, &b, &task_id, "cancel", json!({"reason": "mine now"})).await,
        send(app.delete(&task_path, &b)).await,
    ] {
        assert_eq!(answer.0, 404, "{}", answer.1);
        assert_eq!(answer.1["detail"], "Task not found");
    }
    assert_eq!(
        app.get_json("/api/drivers", Some(&b)).await,
        json!([bs_driver])
    );
    for query in [
        String::new(),
        format!("?driver_id={}", id(&ann)),
        format!("?company_id={company}"),
    ] {
        assert!(titles(&app, &b, &query).await.is_empty(), "{query}");
    }

    // B cannot hand its own task to A's driver either.
    let bs_company = create_company(&app, &b, "B's Farm").await;
    let bs_task = create_task(&app, &b, &bs_company, "B's", "2026-11-23", json!({})).await;
    let (status, error) = transition(
        &app,
        &b,
        &id(&bs_task),
        "assign",
        json!({"driver_id": ann["id"]}),
    )
    .await;
    assert_eq!(status, PRECONDITION_FAILED, "{error}");
    assert!(
        error["error"].as_str().unwrap().contains("driver_id"),
        "{error}"
    );

    assert_eq!(app.get_json(&driver_path, Some(&a)).await, ann);
    assert_eq!(app.get_json(&task_path, Some(&a)).await, task);
}
