//! Tasks: creation, input validation, the company check, and listing with filters and pages.

use super::*;

#[tokio::test]
async fn a_task_is_created_pending_with_every_key_or_assigned_to_an_active_driver_only() {
    let app = spawn_stack().await;
    let t = token("tenant-a", None);
    let company = create_company(&app, &t, "Hill Farm").await;

    let (status, task) = send(app.post(
        "/api/tasks",
        &t,
        json!({"company_id": company, "title": "Morning collection", "scheduled_for": "2026-11-23"}),
    ))
    .await;
    assert_eq!(status, 200, "{task}");
    assert_eq!(keys(&task), TASK_KEYS, "every key is present");
    assert_eq!(task["status"], "pending");
    assert_eq!(task["company_id"], company.as_str());
    assert_eq!(task["title"], "Morning collection");
    assert_eq!(task["scheduled_for"], "2026-11-23");
    assert_eq!(task["version"], 1);
    for unset in [
        "driver_id",
        "notes",
        "window_start",
        "window_end",
        "volume_liters",
        "external_id",
        "completed_at",
        "cancel_reason",
    ] {
        assert_eq!(task[unset], Value::Null, "{unset}");
    }
    assert!(task["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        app.get_json(&format!("/api/tasks/{}", id(&task)), Some(&t))
            .await,
        task
    );

    let full = create_task(
        &app,
        &t,
        &company,
        "Evening collection",
        "2026-11-23",
        json!({
            "notes": "Gate code 1234",
            "window_start": "2026-11-23T16:00:00Z",
            "window_end": "2026-11-23T18:30:00Z",
            "volume_liters": 1500.5,
            "external_id": "C-77",
        }),
    )
    .await;
    assert_eq!(full["notes"], "Gate code 1234");
    assert_eq!(full["window_start"], "2026-11-23T16:00:00Z");
    assert_eq!(full["window_end"], "2026-11-23T18:30:00Z");
    assert_eq!(full["volume_liters"], 1500.5);
    assert_eq!(full["external_id"], "C-77");
    let (status, error) = send(app.post(
        "/api/tasks",
        &t,
        json!({"company_id": company, "title": "Copy", "scheduled_for": "2026-11-23", "external_id": "C-77"}),
    ))
    .await;
    assert_eq!(status, 409, "external_id is unique per tenant: {error}");
    assert_eq!(error["code"], "ALREADY_EXISTS");

    let ann = create_driver(&app, &t, json!({"name": "Ann"})).await;
    let assigned = create_task(
        &app,
        &t,
        &company,
        "Ann's collection",
        "2026-11-24",
        json!({"driver_id": ann["id"]}),
    )
    .await;
    assert_eq!(assigned["status"], "assigned");
    assert_eq!(assigned["driver_id"], ann["id"]);

    let inactive = create_driver(&app, &t, json!({"name": "Ina", "status": "inactive"})).await;
    let deleted = create_driver(&app, &t, json!({"name": "Del"})).await;
    send(app.delete(&format!("/api/drivers/{}", id(&deleted)), &t)).await;
    let elsewhere = create_driver(&app, &token("tenant-b", None), json!({"name": "B"})).await;
    for driver_id in [
        id(&inactive),
        id(&deleted),
        id(&elsewhere),
        uuid::Uuid::new_v4().to_string(),
    ] {
        let (status, error) = send(app.post(
            "/api/tasks",
            &t,
            json!({"company_id": company, "title": "No", "scheduled_for": "2026-11-24", "driver_id": driver_id}),
        ))
        .await;
        assert_eq!(status, PRECONDITION_FAILED, "{error}");
        assert_eq!(error["code"], "FAILED_PRECONDITION");
        assert!(
            error["error"].as_str().unwrap().contains("driver_id"),
            "{error} names driver_id"
        );
    }
    assert_eq!(
        titles(&app, &t, "").await,
        [
            "Morning collection",
            "Evening collection",
            "Ann's collection"
        ],
        "no task was created for a driver who cannot take it"
    );
}

#[tokio::test]
async fn task_input_errors_are_400_naming_each_field_and_bad_ids_are_400() {
    let app = spawn_stack().await;
    let t = token("tenant-a", None);
    let company = create_company(&app, &t, "Hill Farm").await;
    let cases = [
        (json!({}), vec!["company_id", "scheduled_for", "title"]),
        (
            json!({"company_id": "farm", "title": " ", "scheduled_for": "23/11/2026"}),
            vec!["company_id", "scheduled_for", "title"],
        ),
        (
            json!({"company_id": company, "title": "x", "scheduled_for": "2026-02-30"}),
            vec!["scheduled_for"],
        ),
        (
            json!({"company_id": company, "title": "x", "scheduled_for": "2026-11-23", "driver_id": "ann"}),
            vec!["driver_id"],
        ),
        (
            json!({"company_id": company, "title": "x", "scheduled_for": "2026-11-23", "volume_liters": -1}),
            vec!["volume_liters"],
        ),
        (
            json!({"company_id": company, "title": "x", "scheduled_for": "2026-11-23",
                   "window_start": "2026-11-23T10:00:00Z", "window_end": "2026-11-23T09:00:00Z"}),
            vec!["window_end"],
        ),
    ];
    for (body, expected) in cases {
        let (status, error) = send(app.post("/api/tasks", &t, body.clone())).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(error["code"], "INVALID_ARGUMENT");
        assert_eq!(fields(&error), expected, "{body}");
    }
    assert!(titles(&app, &t, "").await.is_empty(), "nothing was created");

    for answer in [
        send(app.get("/api/tasks/not-a-uuid", &t)).await,
        send(app.patch("/api/tasks/123", &t, json!({"title": "x"}))).await,
        send(app.delete("/api/tasks/abc", &t)).await,
        transition(&app, &t, "abc", "start", json!({})).await,
        transition(&app, &t, "abc", "complete", json!({})).await,
        transition(&app, &t, "abc", "cancel", json!({"reason": "r"})).await,
        transition(
            &app,
            &t,
            "abc",
            "assign",
            json!({"driver_id": uuid::Uuid::new_v4().to_string()}),
        )
        .await,
    ] {
        assert_eq!(answer.0, 400, "{}", answer.1);
        assert_eq!(fields(&answer.1), ["id"]);
    }
}

#[tokio::test]
async fn a_task_needs_a_live_company_of_the_callers_tenant() {
    let app = spawn_stack().await;
    let a = token("tenant-a", None);
    let b = token("tenant-b", None);
    let deleted = create_company(&app, &a, "Closed Farm").await;
    let (status, _) = send(app.delete(&format!("/api/companies/{deleted}"), &a)).await;
    assert_eq!(status, 200);
    let bs_company = create_company(&app, &b, "B's Farm").await;

    for (company_id, what) in [
        (uuid::Uuid::new_v4().to_string(), "an unknown company"),
        (deleted, "a deleted company"),
        (bs_company, "another tenant's company"),
    ] {
        let (status, error) = send(app.post(
            "/api/tasks",
            &a,
            json!({"company_id": company_id, "title": "Collect", "scheduled_for": "2026-11-23"}),
        ))
        .await;
        assert_eq!(status, PRECONDITION_FAILED, "{what}: {error}");
        assert_eq!(error["code"], "FAILED_PRECONDITION", "{what}");
        assert!(
            error["error"].as_str().unwrap().contains("company_id"),
            "{what}: {error} names company_id"
        );
    }
    assert!(titles(&app, &a, "").await.is_empty(), "nothing was created");

    // Moving a task to a company that is not the tenant's is refused the same way.
    let live = create_company(&app, &a, "Hill Farm").await;
    let task = create_task(&app, &a, &live, "Collect", "2026-11-23", json!({})).await;
    let (status, error) = send(app.patch(
        &format!("/api/tasks/{}", id(&task)),
        &a,
        json!({"company_id": uuid::Uuid::new_v4().to_string()}),
    ))
    .await;
    assert_eq!(status, PRECONDITION_FAILED, "{error}");
    assert_eq!(
        app.get_json(&format!("/api/tasks/{}", id(&task)), Some(&a))
            .await,
        task,
        "the task is unchanged"
    );
    let other = create_company(&app, &a, "Dale Farm").await;
    let (status, moved) = send(app.patch(
        &format!("/api/tasks/{}", id(&task)),
        &a,
        json!({"company_id": other}),
    ))
    .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["company_id"], other.as_str());

    // A task that does not exist is 404, whichever company it would have moved to.
    let (status, error) = send(app.patch(
        &format!("/api/tasks/{}", uuid::Uuid::new_v4()),
        &a,
        json!({"company_id": uuid::Uuid::new_v4().to_string()}),
    ))
    .await;
    assert_eq!(status, 404, "{error}");
    assert_eq!(error["error"], "Task not found");
}

#[tokio::test]
async fn with_companies_down_creating_a_task_is_503_and_creates_nothing() {
    let app = spawn_stack().await;
    let t = token("tenant-a", None);
    let company = create_company(&app, &t, "Hill Farm").await;
    let before = create_task(&app, &t, &company, "Before", "2026-11-23", json!({})).await;

    app.stack.stop_service("companies").unwrap();
    // Wait until the gateway itself can no longer reach Companies.
    let mut down = false;
    for _ in 0..100 {
        let (status, _) = send(app.get("/api/companies", &t)).await;
        if status != 200 {
            down = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(down, "companies never stopped");

    for _ in 0..3 {
        let (status, error) = send(app.post(
            "/api/tasks",
            &t,
            json!({"company_id": company, "title": "During", "scheduled_for": "2026-11-23"}),
        ))
        .await;
        assert_eq!(status, 503, "never a silent accept: {error}");
        assert_eq!(error["code"], "UNAVAILABLE");
    }
    let (status, error) = send(app.patch(
        &format!("/api/tasks/{}", id(&before)),
        &t,
        json!({"company_id": company}),
    ))
    .await;
    assert_eq!(status, 503, "{error}");
    assert_eq!(error["code"], "UNAVAILABLE");

    let (status, list) = send(app.get("/api/tasks", &t)).await;
    assert_eq!(status, 200, "reading tasks does not need Companies");
    assert_eq!(list, json!([before]), "nothing was created or changed");
}
#[tokio::test]
async fn task_lists_filter_by_status_driver_company_and_inclusive_days_and_paginate() {
    let app = spawn_stack().await;
    let t = token("tenant-a", None);
    let x = create_company(&app, &t, "X Farm").await;
    let y = create_company(&app, &t, "Y Farm").await;
    let d1 = id(&create_driver(&app, &t, json!({"name": "D1"})).await);
    let d2 = id(&create_driver(&app, &t, json!({"name": "D2"})).await);
    create_task(&app, &t, &x, "t1", "2026-11-20", json!({})).await;
    create_task(&app, &t, &x, "t2", "2026-11-21", json!({"driver_id": d1})).await;
    create_task(&app, &t, &y, "t3", "2026-11-22", json!({"driver_id": d2})).await;
    let t4 = create_task(&app, &t, &y, "t4", "2026-11-23", json!({})).await;
    let (status, _) = transition(&app, &t, &id(&t4), "cancel", json!({"reason": "closed"})).await;
    assert_eq!(status, 200);
    // Created last but scheduled earlier: the list is by day, then creation.
    create_task(&app, &t, &x, "t5", "2026-11-21", json!({})).await;

    let cases = [
        (String::new(), vec!["t1", "t2", "t5", "t3", "t4"]),
        ("?status=pending".to_owned(), vec!["t1", "t5"]),
        ("?status=assigned".to_owned(), vec!["t2", "t3"]),
        ("?status=cancelled".to_owned(), vec!["t4"]),
        ("?status=completed".to_owned(), vec![]),
        (format!("?driver_id={d1}"), vec!["t2"]),
        (format!("?company_id={y}"), vec!["t3", "t4"]),
        (format!("?company_id={x}&status=pending"), vec!["t1", "t5"]),
        (
            "?from=2026-11-21&to=2026-11-22".to_owned(),
            vec!["t2", "t5", "t3"],
        ),
        ("?from=2026-11-22".to_owned(), vec!["t3", "t4"]),
        ("?to=2026-11-20".to_owned(), vec!["t1"]),
        ("?from=2026-11-24".to_owned(), vec![]),
        ("?skip=1&limit=2".to_owned(), vec!["t2", "t5"]),
        ("?skip=4".to_owned(), vec!["t4"]),
        ("?limit=1000".to_owned(), vec!["t1", "t2", "t5", "t3", "t4"]),
    ];
    for (query, expected) in cases {
        assert_eq!(titles(&app, &t, &query).await, expected, "{query}");
    }

    for (query, field) in [
        ("?from=2026-13-01", "from"),
        ("?to=yesterday", "to"),
        ("?driver_id=d1", "driver_id"),
        ("?company_id=42", "company_id"),
        ("?skip=-1", "skip"),
        ("?limit=0", "limit"),
    ] {
        let (status, error) = send(app.get(&format!("/api/tasks{query}"), &t)).await;
        assert_eq!(status, 400, "{query}: {error}");
        assert_eq!(fields(&error), [field], "{query}");
    }
    let (status, error) = send(app.get("/api/tasks?status=lost", &t)).await;
    assert_eq!(status, 400, "an unknown status: {error}");
    assert_eq!(fields(&error), ["status"]);
}
