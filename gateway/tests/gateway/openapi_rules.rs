//! The contracts' `buf.validate` rules as the OpenAPI document publishes them.
#![allow(clippy::unwrap_used)]

use director_gateway::openapi::openapi_document;
use director_gateway::rest::RestApi;
use director_platform::contract_rules::{DATE_PATTERN, NOT_BLANK_PATTERN, OPTIONAL_PHONE_PATTERN};
use prost_reflect::DescriptorPool;
use serde_json::{Value, json};

fn document() -> Value {
    let pool = DescriptorPool::decode(director_proto::FILE_DESCRIPTOR_SET).unwrap();
    let api = RestApi::new(&pool).unwrap();
    openapi_document(&api, &pool)
}

/// The request body schema of `method path` (a `$ref` followed).
fn body(document: &Value, path: &str, method: &str) -> Value {
    let schema =
        &document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"];
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            document["components"]["schemas"][name].clone()
        }
        None => schema.clone(),
    }
}

fn parameter(document: &Value, path: &str, method: &str, name: &str) -> Value {
    document["paths"][path][method]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|parameter| parameter["name"] == name)
        .unwrap_or_else(|| panic!("{method} {path} has no parameter {name}"))
        .clone()
}

#[test]
fn text_rules_become_length_pattern_and_required() {
    let document = document();
    let company = body(&document, "/api/companies", "post");
    assert_eq!(company["required"], json!(["name"]));
    let name = &company["properties"]["name"];
    assert_eq!(name["maxLength"], 255);
    assert_eq!(name["pattern"], NOT_BLANK_PATTERN);
    let address = &company["properties"]["address"];
    assert_eq!(address["maxLength"], 1000);
}

#[test]
fn optional_fields_keep_their_rules_and_patterns_admit_the_empty_value() {
    let document = document();
    let company = body(&document, "/api/companies", "post");
    // A set optional field keeps its rules (protovalidate), so `email` has no empty form...
    let email = &company["properties"]["email"];
    assert_eq!(email["format"], "email");
    assert_eq!(email["maxLength"], 320);
    // ...while the optional phone, UUID and day patterns admit "" (read as absent).
    assert_eq!(
        company["properties"]["phone"]["pattern"],
        OPTIONAL_PHONE_PATTERN
    );
    let task = body(&document, "/api/tasks", "post");
    assert_eq!(
        task["properties"]["driver_id"]["anyOf"],
        json!([{ "const": "" }, { "format": "uuid" }, { "type": "null" }])
    );
}

#[test]
fn uuids_dates_and_numbers_carry_formats_and_bounds() {
    let document = document();
    let task = body(&document, "/api/tasks", "post");
    assert_eq!(task["properties"]["company_id"]["format"], "uuid");
    assert_eq!(task["properties"]["scheduled_for"]["format"], "date");
    assert_eq!(task["properties"]["scheduled_for"]["pattern"], DATE_PATTERN);
    assert_eq!(task["properties"]["volume_liters"]["minimum"], 0.0);
    assert_eq!(
        task["required"],
        json!(["company_id", "title", "scheduled_for"])
    );

    let id = parameter(&document, "/api/companies/{id}", "get", "id");
    assert_eq!(id["schema"]["format"], "uuid");
    let skip = parameter(&document, "/api/companies", "get", "skip");
    assert_eq!(skip["schema"]["anyOf"][0]["minimum"], 0);
    assert_eq!(skip["schema"]["anyOf"][1], json!({ "const": "" }));
    let limit = parameter(&document, "/api/companies", "get", "limit");
    assert_eq!(limit["schema"]["anyOf"][0]["minimum"], 1);
    let from = parameter(&document, "/api/tasks", "get", "from");
    assert_eq!(from["schema"]["anyOf"][1]["format"], "date");
}

#[test]
fn a_body_is_required_only_when_its_rules_require_a_field() {
    let document = document();
    let create = &document["paths"]["/api/companies"]["post"]["requestBody"];
    assert_eq!(create["required"], true);
    let sync = &document["paths"]["/api/integrations/vessey/drivers:sync"]["post"]["requestBody"];
    assert_eq!(sync["required"], false);
    assert_eq!(
        sync["content"]["application/json"]["schema"]["type"],
        json!(["object", "null"])
    );
}

#[test]
fn fields_without_rules_stay_unconstrained() {
    let document = document();
    let changes = body(&document, "/api/companies/{id}", "patch");
    assert!(changes.is_object(), "{changes}");
    assert!(changes["required"].is_null(), "{changes}");
    let output = &document["components"]["schemas"]["director.companies.v1.Company"];
    assert!(output["properties"]["name"].get("maxLength").is_none());
}
