//! The contracts' `buf.validate` rules as the OpenAPI document publishes them.
#![allow(clippy::unwrap_used)]

use director_gateway::openapi::openapi_document;
use director_gateway::rest::RestApi;
use director_platform::contract_rules::{
    DATE_PATTERN, HTTP_URL_PATTERN, NOT_BLANK_PATTERN, OPTIONAL_PHONE_PATTERN,
};
use prost_reflect::DescriptorPool;
use serde_json::{Value, json};

fn document() -> Value {
    let pool = DescriptorPool::decode(director_proto::FILE_DESCRIPTOR_SET).unwrap();
    let api = RestApi::new(&pool).unwrap();
    openapi_document(&api, &pool)
}

/// The request body schema of `method path` (a `$ref` followed, `null` left out).
fn body(document: &Value, path: &str, method: &str) -> Value {
    let schema =
        &document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"];
    // A body that may be left out is `anyOf` its schema and `null`.
    let schema = match schema["anyOf"][0].get("$ref") {
        Some(_) => &schema["anyOf"][0],
        None => schema,
    };
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

#[test]
fn an_update_body_keeps_the_rules_of_each_present_key() {
    let document = document();
    let company = body(&document, "/api/companies/{id}", "patch");
    // Present, the name is in the mask: it may not be empty (nor blank), and keeps the limits.
    let name = &company["properties"]["name"];
    assert_eq!(name["type"], "string");
    assert_eq!(name["minLength"], 1);
    assert_eq!(name["maxLength"], 255);
    assert_eq!(name["pattern"], NOT_BLANK_PATTERN);
    assert!(name.get("anyOf").is_none(), "{name}");
    // Optional fields: `null` clears them, a value keeps the create rules.
    let email = &company["properties"]["email"];
    assert_eq!(email["format"], "email");
    assert_eq!(email["type"], json!(["string", "null"]));
    assert_eq!(
        company["properties"]["phone"]["pattern"],
        OPTIONAL_PHONE_PATTERN
    );
    assert!(company["required"].is_null(), "{company}");

    let driver = body(&document, "/api/drivers/{id}", "patch");
    assert_eq!(
        driver["properties"]["status"]["anyOf"],
        json!([
            { "type": "string", "enum": ["active", "inactive"] },
            { "type": "integer", "enum": [1, 2] },
        ])
    );

    let task = body(&document, "/api/tasks/{id}", "patch");
    assert_eq!(task["properties"]["company_id"]["format"], "uuid");
    assert_eq!(task["properties"]["scheduled_for"]["format"], "date");
    assert_eq!(task["properties"]["volume_liters"]["minimum"], 0.0);
    // The mask may not name the fields the transitions own, nor `external_id`.
    for refused in ["status", "driver_id", "cancel_reason", "external_id"] {
        assert!(task["properties"].get(refused).is_none(), "{refused}");
    }
    assert_eq!(task["additionalProperties"], false);
    assert!(task["properties"].get("version").is_some());
}

#[test]
fn outside_update_bodies_an_empty_value_still_means_unset() {
    // The resources' answers carry no input rules, and their rules change only the update
    // body: a create body's optional-empty forms stay as they are.
    let document = document();
    let output = &document["components"]["schemas"]["director.dispatch.v1.Task"];
    assert!(output["properties"]["title"].get("minLength").is_none());
    assert!(output["properties"].get("status").is_some());
}

#[test]
fn a_value_declaring_its_object_is_that_object_or_null() {
    let document = document();
    let settings = body(&document, "/api/integrations/settings", "put");
    let vessey = &settings["properties"]["vessey"];
    assert_eq!(
        vessey["anyOf"],
        json!([
            { "$ref": "#/components/schemas/director.integrations.v1.VesseySettings.Input" },
            { "type": "null" },
        ]),
        "{vessey}"
    );
    // The section's input schema carries its rules; every field is required (a section is
    // replaced whole) and no other key is accepted.
    let section =
        &document["components"]["schemas"]["director.integrations.v1.VesseySettings.Input"];
    assert_eq!(section["required"], json!(["api_url", "api_key"]));
    assert_eq!(section["additionalProperties"], json!(false));
    let url = &section["properties"]["api_url"];
    assert_eq!(url["format"], "uri");
    assert_eq!(url["pattern"], HTTP_URL_PATTERN);
    assert_eq!(url["maxLength"], 2048);
    // Answers are the output form, without input rules (secrets there are masked).
    let output = &document["components"]["schemas"]["director.integrations.v1.VesseySettings"];
    assert!(
        output["properties"]["api_key"].get("pattern").is_none(),
        "{output}"
    );
}
