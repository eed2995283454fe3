//! The OpenAPI 3.1 document generated from Director's contracts.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use director_gateway::openapi::{docs_html, openapi_document, redoc_html};
use director_gateway::rest::RestApi;
use prost_reflect::DescriptorPool;
use serde_json::Value;

fn document() -> Value {
    let pool = DescriptorPool::decode(director_proto::FILE_DESCRIPTOR_SET).unwrap();
    let api = RestApi::new(&pool).unwrap();
    openapi_document(&api, &pool)
}

/// Every `$ref` anywhere in `value`.
fn refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                if key == "$ref" {
                    out.insert(item.as_str().unwrap().to_owned());
                } else {
                    refs(item, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, out)),
        _ => {}
    }
}

#[test]
fn the_document_is_openapi_3_1_and_round_trips_as_json() {
    let document = document();
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["info"]["title"], "IntegrationDirector API");
    assert!(document["info"]["version"].is_string());
    assert_eq!(document["servers"][0]["url"], "/");
    let text = serde_json::to_string(&document).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), document);
}

#[test]
fn every_rest_route_is_an_operation_with_a_unique_id() {
    let pool = DescriptorPool::decode(director_proto::FILE_DESCRIPTOR_SET).unwrap();
    let api = RestApi::new(&pool).unwrap();
    let document = openapi_document(&api, &pool);
    let mut ids = BTreeSet::new();
    for route in api.routes() {
        let path = route.openapi_path();
        let operation = &document["paths"][&path][route.http_method.as_str().to_ascii_lowercase()];
        assert!(
            operation.is_object(),
            "{} {path} missing",
            route.http_method
        );
        assert_eq!(operation["operationId"], route.operation_id());
        assert_eq!(operation["tags"][0], route.method.parent_service().name());
        assert!(
            operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{path}"
        );
        assert!(operation["responses"]["200"].is_object());
        assert_eq!(
            operation["responses"]["default"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Error"
        );
        assert!(
            ids.insert(route.operation_id()),
            "duplicate {}",
            route.operation_id()
        );
    }
    assert!(document["paths"]["/api/integrations/vessey/drivers:sync"]["post"].is_object());
    assert!(document["paths"]["/api/tasks/watch"]["get"].is_object());
}

#[test]
fn every_ref_points_at_an_existing_component() {
    let document = document();
    let mut found = BTreeSet::new();
    refs(&document, &mut found);
    assert!(found.contains("#/components/schemas/director.companies.v1.Company"));
    for reference in found {
        let name = reference.strip_prefix("#/components/schemas/").unwrap();
        assert!(
            document["components"]["schemas"][name].is_object(),
            "{reference} has no component"
        );
    }
}

#[test]
fn path_parameters_are_required_and_query_parameters_are_the_remaining_fields() {
    let document = document();
    let get = &document["paths"]["/api/companies/{id}"]["get"];
    assert_eq!(get["parameters"][0]["name"], "id");
    assert_eq!(get["parameters"][0]["in"], "path");
    assert_eq!(get["parameters"][0]["required"], true);
    assert_eq!(get["parameters"].as_array().unwrap().len(), 1);

    let list = &document["paths"]["/api/tasks"]["get"]["parameters"];
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec![
            "status",
            "driver_id",
            "company_id",
            "from",
            "to",
            "skip",
            "limit"
        ]
    );
    let status = &list[0];
    assert_eq!(status["in"], "query");
    // The short names, then the numbers proto3 JSON accepts too; an empty value is absent.
    let values = status["schema"]["anyOf"][0]["enum"].as_array().unwrap();
    assert_eq!(
        values[..5],
        serde_json::json!([
            "pending",
            "assigned",
            "in_progress",
            "completed",
            "cancelled"
        ])
        .as_array()
        .unwrap()[..]
    );
    assert!(values.contains(&serde_json::json!("1")));
    assert_eq!(
        status["schema"]["anyOf"][1],
        serde_json::json!({ "const": "" })
    );
    assert!(
        status["description"]
            .as_str()
            .unwrap()
            .contains("Only tasks with this status")
    );

    // body "*": everything comes from the body, nothing from the query.
    assert!(document["paths"]["/api/companies"]["post"]["parameters"].is_null());
}

#[test]
fn request_bodies_follow_the_body_rule() {
    let document = document();
    let create = &document["paths"]["/api/companies"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"];
    assert_eq!(create["type"], "object");
    assert_eq!(create["additionalProperties"], false);
    assert!(create["properties"]["name"].is_object());

    // body "*" with a path variable: the variable is not in the body schema.
    let assign = &document["paths"]["/api/tasks/{id}/assign"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"];
    assert!(assign["properties"]["id"].is_null());
    assert!(assign["properties"]["driver_id"].is_object());

    // PATCH: the body field's input schema, with the update-mask rule spelled out.
    let patch = &document["paths"]["/api/companies/{id}"]["patch"];
    let body = &patch["requestBody"];
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .contains("Only the keys present are changed")
    );
    // Optional and nullable: the gateway reads a missing or `null` body as no change.
    assert_eq!(body["required"], false);
    assert_eq!(
        body["content"]["application/json"]["schema"]["anyOf"][0]["$ref"],
        "#/components/schemas/director.companies.v1.Company.Input"
    );
    let input = &document["components"]["schemas"]["director.companies.v1.Company.Input"];
    assert!(input["required"].is_null());
    assert_eq!(
        input["properties"]["email"]["type"],
        serde_json::json!(["string", "null"])
    );
    let mask = patch["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "update_mask")
        .unwrap();
    assert_eq!(mask["in"], "query");
}

#[test]
fn response_schemas_list_every_key_with_nullable_types() {
    let document = document();
    let company = &document["components"]["schemas"]["director.companies.v1.Company"];
    let required: Vec<&str> = company["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        required,
        vec![
            "id",
            "name",
            "email",
            "phone",
            "address",
            "external_id",
            "created_at",
            "updated_at",
            "deleted_at"
        ]
    );
    assert_eq!(company["properties"]["id"]["type"], "string");
    assert_eq!(
        company["properties"]["email"]["type"],
        serde_json::json!(["string", "null"])
    );
    assert_eq!(
        company["properties"]["created_at"]["type"],
        serde_json::json!(["string", "null"])
    );
    assert_eq!(company["properties"]["created_at"]["format"], "date-time");
    assert!(
        company["properties"]["name"]["description"]
            .as_str()
            .unwrap()
            .contains("255 characters")
    );

    // response_body "companies": a bare array.
    let list = &document["paths"]["/api/companies"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    assert_eq!(list["type"], "array");
    assert_eq!(
        list["items"]["$ref"],
        "#/components/schemas/director.companies.v1.Company"
    );

    let status = &document["components"]["schemas"]["director.dispatch.v1.DriverStatus"];
    assert_eq!(
        status["enum"],
        serde_json::json!(["active", "inactive", null])
    );
    assert_eq!(status["type"], serde_json::json!(["string", "null"]));

    let job = &document["components"]["schemas"]["director.integrations.v1.Job"];
    assert_eq!(job["properties"]["progress"]["anyOf"][1]["type"], "null");
}

#[test]
fn server_streams_are_documented_as_event_streams() {
    let document = document();
    let watch = &document["paths"]["/api/tasks/watch"]["get"]["responses"]["200"];
    assert!(watch["content"]["text/event-stream"].is_object());
    assert!(watch["content"]["application/json"].is_null());
}

#[test]
fn bearer_auth_is_global_and_the_public_routes_opt_out() {
    let document = document();
    assert_eq!(
        document["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    assert_eq!(document["security"][0]["bearerAuth"], serde_json::json!([]));
    for path in [
        "/api",
        "/api/health",
        "/api/health/ready",
        "/api/openapi.json",
        "/api/docs",
        "/api/redoc",
    ] {
        assert_eq!(
            document["paths"][path]["get"]["security"],
            serde_json::json!([]),
            "{path}"
        );
    }
    assert!(document["paths"]["/api/companies"]["get"]["security"].is_null());
}

#[tokio::test]
async fn the_error_schema_matches_the_gateway_error_body() {
    let document = document();
    let error = &document["components"]["schemas"]["Error"];
    let required: BTreeSet<&str> = error["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        required,
        BTreeSet::from(["error", "detail", "code", "status", "fields", "request_id"])
    );
    // The real error body has exactly those keys.
    let response = axum::response::IntoResponse::into_response(
        director_gateway::error::ApiError::invalid_argument("x"),
    );
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    let keys: BTreeSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, required);
}

#[test]
fn the_documentation_pages_load_the_document() {
    assert!(docs_html().contains("/api/openapi.json"));
    assert!(redoc_html().contains("/api/openapi.json"));
}

/// Writes the document where an external validator can read it:
/// `DUMP_OPENAPI=/tmp/openapi.json cargo test -p director-gateway --test openapi_document`.
#[test]
fn the_document_can_be_dumped_for_external_validation() {
    if let Ok(path) = std::env::var("DUMP_OPENAPI") {
        std::fs::write(path, serde_json::to_vec_pretty(&document()).unwrap()).unwrap();
    }
}
