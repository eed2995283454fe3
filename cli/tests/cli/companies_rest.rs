//! The reference REST API for companies, end to end: HTTP → gateway → gRPC → Companies →
//! PostgreSQL, with the status codes and JSON of API.md.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{spawn_stack, token};
use director_platform::identity::Role;
use director_platform::identity::user_token::{UserTokenClaims, mint_hs256, mint_hs256_at};
use serde_json::{Value, json};

const COMPANY_KEYS: [&str; 9] = [
    "address",
    "created_at",
    "deleted_at",
    "email",
    "external_id",
    "id",
    "name",
    "phone",
    "updated_at",
];

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

fn fields(error: &Value) -> Vec<String> {
    let mut fields: Vec<String> = error["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_owned())
        .collect();
    fields.sort();
    fields
}

#[tokio::test]
async fn a_company_goes_through_create_read_list_update_and_soft_delete() {
    let app = spawn_stack().await;
    let t = token("tenant-a", None);

    let created = app
        .create_company(&t, json!({"name": "Acme Dairy Farm", "email": "contact@acmedairy.com", "phone": "+1-555-012-3456"}))
        .await;
    assert_eq!(keys(&created), COMPANY_KEYS, "every key is present");
    assert_eq!(created["name"], "Acme Dairy Farm");
    assert_eq!(created["phone"], "+15550123456");
    assert_eq!(created["address"], Value::Null);
    assert_eq!(created["external_id"], Value::Null);
    assert_eq!(created["deleted_at"], Value::Null);
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));
    let id = created["id"].as_str().unwrap().to_owned();

    let read = app
        .get_json(&format!("/api/companies/{id}"), Some(&t))
        .await;
    assert_eq!(read, created);

    let list = app.get("/api/companies", &t).send().await.unwrap();
    assert_eq!(list.status(), 200);
    let list: Value = list.json().await.unwrap();
    assert_eq!(list, json!([created]), "the list is a bare array");

    let patched = app
        .patch(
            &format!("/api/companies/{id}"),
            &t,
            json!({"address": "1 Farm Road", "email": null}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["address"], "1 Farm Road");
    assert_eq!(patched["email"], Value::Null, "null clears");
    assert_eq!(
        patched["name"], "Acme Dairy Farm",
        "absent keys are untouched"
    );
    assert_eq!(patched["phone"], "+15550123456");

    let deleted = app
        .delete(&format!("/api/companies/{id}"), &t)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(
        deleted.json::<Value>().await.unwrap(),
        json!({"message": "Company deleted successfully"})
    );

    let gone = app
        .get(&format!("/api/companies/{id}"), &t)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    let gone: Value = gone.json().await.unwrap();
    assert_eq!(gone["detail"], "Company not found");
    assert_eq!(gone["code"], "NOT_FOUND");
    let list = app.get_json("/api/companies", Some(&t)).await;
    assert_eq!(list, json!([]));
    for response in [
        app.delete(&format!("/api/companies/{id}"), &t)
            .send()
            .await
            .unwrap(),
        app.patch(&format!("/api/companies/{id}"), &t, json!({"name": "x"}))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(response.status(), 404);
    }
}

#[tokio::test]
async fn lists_paginate_with_skip_and_limit() {
    let app = spawn_stack().await;
    let t = token("tenant-a", None);
    for name in ["one", "two", "three", "four"] {
        app.create_company(&t, json!({ "name": name })).await;
    }
    let page = app
        .get_json("/api/companies?skip=1&limit=2", Some(&t))
        .await;
    let names: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["two", "three"]);

    let bad = app
        .get("/api/companies?limit=abc", &t)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let bad = app.get("/api/companies?skip=-5", &t).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(fields(&bad.json().await.unwrap()), ["skip"]);
}

#[tokio::test]
async fn each_validation_failure_is_a_400_naming_the_field() {
    let app = spawn_stack().await;
    let t = token("tenant-a", None);
    let cases = [
        (json!({"name": ""}), vec!["name"]),
        (json!({"name": "   "}), vec!["name"]),
        (json!({"name": "x".repeat(256)}), vec!["name"]),
        (json!({"name": "ok", "email": "nope"}), vec!["email"]),
        (json!({"name": "ok", "phone": "12345"}), vec!["phone"]),
        (json!({"name": "ok", "phone": "+1 555 abc"}), vec!["phone"]),
        (json!({"name": "Acme\u{0}Farm"}), vec!["name"]),
        (
            json!({"email": "nope", "phone": "1"}),
            vec!["email", "name", "phone"],
        ),
    ];
    for (body, expected) in cases {
        let response = app
            .post("/api/companies", &t, body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["code"], "INVALID_ARGUMENT");
        assert_eq!(fields(&error), expected, "{body}");
    }

    let unknown = app
        .post("/api/companies", &t, json!({"name": "ok", "colour": "red"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
    let unknown: Value = unknown.json().await.unwrap();
    assert!(
        unknown["error"].as_str().unwrap().contains("colour"),
        "{unknown}"
    );

    let wrong_type = app
        .post("/api/companies", &t, json!({"name": 42}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 400);

    let patch = app
        .patch(
            &format!("/api/companies/{}", uuid::Uuid::new_v4()),
            &t,
            json!({"name": null}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 400, "the name cannot be cleared");

    let list = app.get_json("/api/companies", Some(&t)).await;
    assert_eq!(list, json!([]), "nothing was created");
}

#[tokio::test]
async fn malformed_json_and_non_uuid_ids_are_400_not_500() {
    let app = spawn_stack().await;
    let t = token("tenant-a", None);
    let malformed = app
        .http
        .post(app.url("/api/companies"))
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["code"], "INVALID_ARGUMENT");

    for response in [
        app.get("/api/companies/not-a-uuid", &t)
            .send()
            .await
            .unwrap(),
        app.delete("/api/companies/123", &t).send().await.unwrap(),
        app.patch("/api/companies/abc", &t, json!({"name": "x"}))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(response.status(), 400);
        assert_eq!(fields(&response.json().await.unwrap()), ["id"]);
    }
}

#[tokio::test]
async fn drivers_may_read_but_not_write_companies() {
    let app = spawn_stack().await;
    let admin = token("tenant-a", None);
    let driver = token("tenant-a", Some(Role::Driver));
    let created = app.create_company(&admin, json!({"name": "Farm"})).await;
    let id = created["id"].as_str().unwrap();

    let read = app
        .get(&format!("/api/companies/{id}"), &driver)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    for response in [
        app.post("/api/companies", &driver, json!({"name": "mine"}))
            .send()
            .await
            .unwrap(),
        app.patch(
            &format!("/api/companies/{id}"),
            &driver,
            json!({"name": "x"}),
        )
        .send()
        .await
        .unwrap(),
        app.delete(&format!("/api/companies/{id}"), &driver)
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(response.status(), 403);
    }
}

#[tokio::test]
async fn another_tenant_gets_404_everywhere_and_an_empty_list() {
    let app = spawn_stack().await;
    let a = token("tenant-a", None);
    let b = token("tenant-b", None);
    let created = app.create_company(&a, json!({"name": "A's farm"})).await;
    let path = format!("/api/companies/{}", created["id"].as_str().unwrap());

    for response in [
        app.get(&path, &b).send().await.unwrap(),
        app.patch(&path, &b, json!({"name": "stolen"}))
            .send()
            .await
            .unwrap(),
        app.delete(&path, &b).send().await.unwrap(),
    ] {
        assert_eq!(response.status(), 404);
        assert_eq!(
            response.json::<Value>().await.unwrap()["detail"],
            "Company not found"
        );
    }
    let list = app.get_json("/api/companies", Some(&b)).await;
    assert_eq!(list, json!([]));
    let still = app.get_json(&path, Some(&a)).await;
    assert_eq!(still, created);
}

#[tokio::test]
async fn bad_tokens_get_the_reference_401_messages() {
    let app = spawn_stack().await;
    let claims = UserTokenClaims::new("u");
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    let expired = mint_hs256_at(common::JWT_SECRET, &claims, two_hours_ago).unwrap();
    let wrong_audience = mint_hs256(
        common::JWT_SECRET,
        &UserTokenClaims {
            audience: "someone-else".into(),
            ..claims.clone()
        },
    )
    .unwrap();
    let wrong_secret = mint_hs256("another-secret-entirely-0123456789abcdef", &claims).unwrap();
    let unsigned = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let exp = (SystemTime::now() + Duration::from_secs(600))
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(format!(
                r#"{{"sub":"u","aud":"authenticated","exp":{exp}}}"#
            ))
        )
    };

    let error_of = |response: reqwest::Response| async move {
        assert_eq!(response.status(), 401);
        response.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let missing = app
        .http
        .get(app.url("/api/companies"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(missing).await,
        "Missing or invalid authorization header"
    );
    let basic = app
        .http
        .get(app.url("/api/companies"))
        .header("authorization", "Basic dTpw")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(basic).await,
        "Missing or invalid authorization header"
    );
    let response = app.get("/api/companies", &expired).send().await.unwrap();
    assert_eq!(error_of(response).await, "Token has expired");

    for bad in [wrong_audience, wrong_secret, unsigned, "garbage".to_owned()] {
        let response = app.get("/api/companies", &bad).send().await.unwrap();
        let message = error_of(response).await;
        assert!(message.starts_with("Invalid token: "), "{bad}: {message}");
    }
}

#[tokio::test]
async fn public_routes_answer_without_a_token() {
    let app = spawn_stack().await;
    let root = app.get_json("/api", None).await;
    assert_eq!(
        root,
        json!({"message": "IntegrationDirector API", "docs": "/api/docs"})
    );
    let health = app.get_json("/api/health", None).await;
    assert_eq!(
        health,
        json!({"status": "healthy", "service": "integration-director"})
    );
    let openapi = app.get_json("/api/openapi.json", None).await;
    assert_eq!(openapi["openapi"], "3.1.0");
    assert!(openapi["paths"]["/api/companies/{id}"]["patch"].is_object());
    assert!(openapi["paths"]["/api/tasks/{id}/start"]["post"].is_object());
    assert!(openapi["paths"]["/api/integrations/jobs/{id}"]["get"].is_object());
    // Documented is what the catalog's services serve, and `director openapi` says the same.
    let paths = openapi["paths"].as_object().unwrap();
    for path in paths.keys() {
        let package_served = [
            "/api/companies",
            "/api/drivers",
            "/api/tasks",
            "/api/integrations",
        ]
        .iter()
        .any(|prefix| path.starts_with(prefix));
        let gateway_own = [
            "/api",
            "/api/health",
            "/api/health/ready",
            "/api/openapi.json",
            "/api/docs",
            "/api/redoc",
        ]
        .contains(&path.as_str());
        assert!(
            package_served || gateway_own,
            "{path} is documented but not served"
        );
    }
    assert_eq!(openapi, director::openapi::document().unwrap());
}

#[tokio::test]
async fn readiness_reports_the_companies_database_connected() {
    let app = spawn_stack().await;
    // Health turns SERVING once the service's first database ping succeeds.
    let mut last = None;
    for _ in 0..50 {
        let response = app
            .http
            .get(app.url("/api/health/ready"))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        // 200 can come while another service is still starting ("degraded"): wait for
        // Companies itself.
        if status == 200 && body["services"]["director.companies.v1"]["database"] == "connected" {
            return;
        }
        last = Some((status, body));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("never ready: {last:?}");
}
