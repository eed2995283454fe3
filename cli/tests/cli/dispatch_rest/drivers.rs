//! Drivers: create, read, list, update, soft delete, validation and uniqueness.

use super::*;

#[tokio::test]
async fn a_driver_goes_through_create_read_list_update_and_soft_delete() {
    let app = spawn_stack().await;
    let t = token("tenant-a", Some(Role::Dispatcher));

    let (status, ann) = send(app.post(
        "/api/drivers",
        &t,
        json!({"name": "Ann Driver", "phone": "+1 555 010 0001", "email": "ann@example.com"}),
    ))
    .await;
    assert_eq!(status, 200, "{ann}");
    assert_eq!(keys(&ann), DRIVER_KEYS, "every key is present");
    assert_eq!(ann["name"], "Ann Driver");
    assert_eq!(ann["phone"], "+15550100001", "stored normalised");
    assert_eq!(ann["email"], "ann@example.com");
    assert_eq!(ann["status"], "active", "active by default, lowercase");
    for unset in ["external_id", "user_id", "deleted_at"] {
        assert_eq!(ann[unset], Value::Null, "{unset}");
    }
    assert!(ann["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(ann["updated_at"].as_str().unwrap().ends_with('Z'));
    let ann_id = id(&ann);

    let bob = create_driver(
        &app,
        &t,
        json!({"name": "Bob", "status": "inactive", "external_id": "V-2", "user_id": "bob-login"}),
    )
    .await;
    assert_eq!(bob["status"], "inactive");
    assert_eq!(bob["external_id"], "V-2");
    assert_eq!(bob["user_id"], "bob-login");

    let (status, list) = send(app.get("/api/drivers", &t)).await;
    assert_eq!(status, 200);
    assert_eq!(list, json!([ann, bob]), "a bare array, oldest first");
    let inactive = app.get_json("/api/drivers?status=inactive", Some(&t)).await;
    assert_eq!(inactive, json!([bob]));
    let active = app.get_json("/api/drivers?status=active", Some(&t)).await;
    assert_eq!(active, json!([ann]));

    let read = app
        .get_json(&format!("/api/drivers/{ann_id}"), Some(&t))
        .await;
    assert_eq!(read, ann);

    let (status, patched) = send(app.patch(
        &format!("/api/drivers/{ann_id}"),
        &t,
        json!({"email": null, "external_id": "V-1", "status": "inactive"}),
    ))
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["email"], Value::Null, "null clears");
    assert_eq!(patched["external_id"], "V-1");
    assert_eq!(patched["status"], "inactive");
    assert_eq!(patched["name"], "Ann Driver", "absent keys are untouched");
    assert_eq!(patched["phone"], "+15550100001");
    assert_eq!(patched["user_id"], Value::Null);
    assert_eq!(patched["created_at"], ann["created_at"]);
    assert_eq!(
        app.get_json(&format!("/api/drivers/{ann_id}"), Some(&t))
            .await,
        patched
    );

    let (status, deleted) = send(app.delete(&format!("/api/drivers/{ann_id}"), &t)).await;
    assert_eq!(status, 200);
    assert_eq!(deleted, json!({"message": "Driver deleted successfully"}));

    let (status, gone) = send(app.get(&format!("/api/drivers/{ann_id}"), &t)).await;
    assert_eq!(status, 404);
    assert_eq!(gone["detail"], "Driver not found");
    assert_eq!(gone["code"], "NOT_FOUND");
    assert_eq!(
        app.get_json("/api/drivers", Some(&t)).await,
        json!([bob]),
        "the list omits a deleted driver"
    );
    for answer in [
        send(app.delete(&format!("/api/drivers/{ann_id}"), &t)).await,
        send(app.patch(
            &format!("/api/drivers/{ann_id}"),
            &t,
            json!({"name": "back"}),
        ))
        .await,
    ] {
        assert_eq!(answer.0, 404, "{}", answer.1);
        assert_eq!(answer.1["detail"], "Driver not found");
    }
}

#[tokio::test]
async fn driver_validation_failures_are_400_naming_each_field_and_bad_ids_are_400() {
    let app = spawn_stack().await;
    let t = token("tenant-a", None);
    let cases = [
        (json!({"name": ""}), vec!["name"]),
        (json!({"name": "   "}), vec!["name"]),
        (json!({"phone": "+15550100001"}), vec!["name"]),
        (json!({"name": "x".repeat(256)}), vec!["name"]),
        (json!({"name": "ok", "email": "nope"}), vec!["email"]),
        (json!({"name": "ok", "phone": "12345"}), vec!["phone"]),
        (json!({"name": "ok", "phone": "+1 555 abc"}), vec!["phone"]),
        (
            json!({"name": " ", "email": "nope", "phone": "1"}),
            vec!["email", "name", "phone"],
        ),
    ];
    for (body, expected) in cases {
        let (status, error) = send(app.post("/api/drivers", &t, body.clone())).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(error["code"], "INVALID_ARGUMENT");
        assert_eq!(fields(&error), expected, "{body}");
    }
    let (status, error) = send(app.post(
        "/api/drivers",
        &t,
        json!({"name": "ok", "status": "on_leave"}),
    ))
    .await;
    assert_eq!(status, 400, "an unknown status: {error}");
    assert_eq!(fields(&error), ["status"]);
    assert_eq!(
        app.get_json("/api/drivers", Some(&t)).await,
        json!([]),
        "nothing was created"
    );

    let ann = create_driver(&app, &t, json!({"name": "Ann", "phone": "+15550100001"})).await;
    let path = format!("/api/drivers/{}", id(&ann));
    for (body, expected) in [
        (json!({"name": ""}), vec!["name"]),
        (json!({"name": null}), vec!["name"]),
        (
            json!({"email": "nope", "phone": "12"}),
            vec!["email", "phone"],
        ),
    ] {
        let (status, error) = send(app.patch(&path, &t, body.clone())).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(fields(&error), expected, "{body}");
    }
    assert_eq!(
        app.get_json(&path, Some(&t)).await,
        ann,
        "refused updates change nothing"
    );

    for answer in [
        send(app.get("/api/drivers/not-a-uuid", &t)).await,
        send(app.patch("/api/drivers/123", &t, json!({"name": "x"}))).await,
        send(app.delete("/api/drivers/abc", &t)).await,
    ] {
        assert_eq!(answer.0, 400, "{}", answer.1);
        assert_eq!(fields(&answer.1), ["id"]);
    }
}

#[tokio::test]
async fn external_ids_and_user_ids_are_unique_among_a_tenants_live_drivers_only() {
    let app = spawn_stack().await;
    let a = token("tenant-a", None);
    let b = token("tenant-b", None);
    let ann = create_driver(
        &app,
        &a,
        json!({"name": "Ann", "external_id": "V-1", "user_id": "ann-login"}),
    )
    .await;

    for (body, field) in [
        (json!({"name": "Copy", "external_id": "V-1"}), "external_id"),
        (json!({"name": "Copy", "user_id": "ann-login"}), "user_id"),
    ] {
        let (status, error) = send(app.post("/api/drivers", &a, body.clone())).await;
        assert_eq!(status, 409, "{body}: {error}");
        assert_eq!(error["code"], "ALREADY_EXISTS");
        assert!(
            error["error"].as_str().unwrap().contains(field),
            "{error} names {field}"
        );
    }
    let other = create_driver(&app, &a, json!({"name": "Other", "external_id": "V-9"})).await;
    let (status, error) = send(app.patch(
        &format!("/api/drivers/{}", id(&other)),
        &a,
        json!({"external_id": "V-1"}),
    ))
    .await;
    assert_eq!(
        status, 409,
        "an update cannot take a used id either: {error}"
    );
    assert_eq!(
        app.get_json("/api/drivers", Some(&a)).await,
        json!([ann, other]),
        "no copy was created or changed"
    );

    let in_b = create_driver(
        &app,
        &b,
        json!({"name": "Ann in B", "external_id": "V-1", "user_id": "ann-login"}),
    )
    .await;
    assert_eq!(
        in_b["external_id"], "V-1",
        "another tenant may use the same ids"
    );

    let (status, _) = send(app.delete(&format!("/api/drivers/{}", id(&ann)), &a)).await;
    assert_eq!(status, 200);
    let again = create_driver(
        &app,
        &a,
        json!({"name": "Ann again", "external_id": "V-1", "user_id": "ann-login"}),
    )
    .await;
    assert_ne!(
        id(&again),
        id(&ann),
        "a deleted driver's ids are free again"
    );
}
