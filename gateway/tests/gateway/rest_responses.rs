//! Rendering gRPC responses as the reference API's JSON: every key present, `null` for unset,
//! enums by short name, 64-bit integers as strings, `response_body` selection.
#![allow(clippy::unwrap_used)]

use crate::things;

use director_gateway::rest::{RestApi, RestRoute, render_json};
use director_proto::{companies, dispatch, integrations};
use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::{Value, json};
use things::things_pool;

fn director_pool() -> DescriptorPool {
    DescriptorPool::decode(director_proto::FILE_DESCRIPTOR_SET).unwrap()
}

fn dynamic<T: prost::Message>(pool: &DescriptorPool, name: &str, message: &T) -> DynamicMessage {
    let mut dynamic = DynamicMessage::new(pool.get_message_by_name(name).unwrap());
    dynamic.transcode_from(message).unwrap();
    dynamic
}

fn route<'a>(api: &'a RestApi, method: &str, template: &str) -> &'a RestRoute {
    api.routes()
        .iter()
        .find(|route| route.http_method == method && route.template == template)
        .unwrap()
}

fn rendered(route: &RestRoute, message: &DynamicMessage) -> Value {
    serde_json::from_slice(&route.render_response(message).unwrap()).unwrap()
}

fn timestamp(seconds: i64, nanos: i32) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos })
}

#[test]
fn a_company_has_every_key_with_nulls_for_unset_values() {
    let pool = director_pool();
    let api = RestApi::new(&pool).unwrap();
    let response = companies::GetCompanyResponse {
        company: Some(companies::Company {
            id: "c-1".into(),
            name: "Acme".into(),
            email: Some("a@acme.example".into()),
            created_at: timestamp(1_714_543_200, 0),
            updated_at: timestamp(1_714_543_200, 250_000_000),
            ..Default::default()
        }),
    };
    let message = dynamic(&pool, "director.companies.v1.GetCompanyResponse", &response);
    let body = route(&api, "GET", "/api/companies/{id}")
        .render_response(&message)
        .unwrap();
    // Keys in declaration order, as the reference API listed them.
    assert_eq!(
        String::from_utf8(body).unwrap(),
        r#"{"id":"c-1","name":"Acme","email":"a@acme.example","phone":null,"address":null,"external_id":null,"created_at":"2024-05-01T06:00:00Z","updated_at":"2024-05-01T06:00:00.250Z","deleted_at":null}"#
    );
}

#[test]
fn a_list_route_answers_a_bare_array_of_complete_objects() {
    let pool = director_pool();
    let api = RestApi::new(&pool).unwrap();
    let response = companies::ListCompaniesResponse {
        companies: vec![
            companies::Company {
                id: "a".into(),
                name: "A".into(),
                ..Default::default()
            },
            companies::Company {
                id: "b".into(),
                name: "B".into(),
                phone: Some("+15550001111".into()),
                ..Default::default()
            },
        ],
    };
    let message = dynamic(
        &pool,
        "director.companies.v1.ListCompaniesResponse",
        &response,
    );
    let body = rendered(route(&api, "GET", "/api/companies"), &message);
    let items = body.as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        assert_eq!(item.as_object().unwrap().len(), 9, "{item}");
    }
    assert_eq!(items[1]["phone"], "+15550001111");
    assert_eq!(items[0]["phone"], Value::Null);

    let empty = dynamic(
        &pool,
        "director.companies.v1.ListCompaniesResponse",
        &companies::ListCompaniesResponse::default(),
    );
    assert_eq!(
        rendered(route(&api, "GET", "/api/companies"), &empty),
        json!([])
    );
}

#[test]
fn a_route_without_response_body_answers_the_whole_message() {
    let pool = director_pool();
    let api = RestApi::new(&pool).unwrap();
    let response = companies::DeleteCompanyResponse {
        message: "Company deleted successfully".into(),
    };
    let message = dynamic(
        &pool,
        "director.companies.v1.DeleteCompanyResponse",
        &response,
    );
    assert_eq!(
        rendered(route(&api, "DELETE", "/api/companies/{id}"), &message),
        json!({"message": "Company deleted successfully"})
    );

    let response = integrations::ListIntegrationsResponse {
        integrations: vec![integrations::Integration {
            name: "vessey".into(),
            configured: false,
            missing: vec!["VESSEY_API_KEY".into()],
            source: None,
        }],
    };
    let message = dynamic(
        &pool,
        "director.integrations.v1.ListIntegrationsResponse",
        &response,
    );
    assert_eq!(
        rendered(route(&api, "GET", "/api/integrations"), &message),
        json!({"integrations": [{"name": "vessey", "configured": false, "missing": ["VESSEY_API_KEY"], "source": null}]})
    );
}

#[test]
fn enums_are_short_lowercase_names_and_unspecified_is_null() {
    let pool = director_pool();
    let api = RestApi::new(&pool).unwrap();
    let task = |status: dispatch::TaskStatus| dispatch::GetTaskResponse {
        task: Some(dispatch::Task {
            id: "t".into(),
            status: status as i32,
            ..Default::default()
        }),
    };
    let get = route(&api, "GET", "/api/tasks/{id}");
    let in_progress = dynamic(
        &pool,
        "director.dispatch.v1.GetTaskResponse",
        &task(dispatch::TaskStatus::InProgress),
    );
    let body = rendered(get, &in_progress);
    assert_eq!(body["status"], "in_progress");
    // Non-presence scalars keep their defaults; presence fields are null.
    assert_eq!(body["version"], 0);
    assert_eq!(body["title"], "");
    assert_eq!(body["volume_liters"], Value::Null);
    assert_eq!(body["window_start"], Value::Null);
    assert_eq!(body.as_object().unwrap().len(), 16);

    let unspecified = dynamic(
        &pool,
        "director.dispatch.v1.GetTaskResponse",
        &task(dispatch::TaskStatus::Unspecified),
    );
    assert_eq!(rendered(get, &unspecified)["status"], Value::Null);

    let driver = dispatch::GetDriverResponse {
        driver: Some(dispatch::Driver {
            status: dispatch::DriverStatus::Active as i32,
            ..Default::default()
        }),
    };
    let message = dynamic(&pool, "director.dispatch.v1.GetDriverResponse", &driver);
    assert_eq!(
        rendered(route(&api, "GET", "/api/drivers/{id}"), &message)["status"],
        "active"
    );
}

#[test]
fn an_unset_nested_message_is_null_and_a_set_one_is_complete() {
    let pool = director_pool();
    let api = RestApi::new(&pool).unwrap();
    let get = route(&api, "GET", "/api/integrations/jobs/{id}");
    let job = |progress| integrations::GetJobResponse {
        job: Some(integrations::Job {
            id: "j".into(),
            kind: integrations::JobKind::VesseyDriverSync as i32,
            status: integrations::JobStatus::Queued as i32,
            progress,
            ..Default::default()
        }),
    };
    let without = rendered(
        get,
        &dynamic(&pool, "director.integrations.v1.GetJobResponse", &job(None)),
    );
    assert_eq!(without["progress"], Value::Null);
    assert_eq!(without["kind"], "vessey_driver_sync");
    assert_eq!(without["status"], "queued");
    assert_eq!(without["last_error"], Value::Null);

    let with = rendered(
        get,
        &dynamic(
            &pool,
            "director.integrations.v1.GetJobResponse",
            &job(Some(integrations::JobProgress { done: 0, total: 7 })),
        ),
    );
    assert_eq!(with["progress"], json!({"done": 0, "total": 7}));
}

#[test]
fn every_kind_of_field_renders_as_proto3_json_with_every_key() {
    let pool = things_pool();
    let thing = pool.get_message_by_name("test.things.v1.Thing").unwrap();
    // Built from proto3 JSON (camelCase, the library's canonical form) to be independent
    // of the renderer under test.
    let input = json!({
        "id": "t-1",
        "size": "9007199254740993",
        "count": "18446744073709551615",
        "colour": "COLOUR_DEEP_RED",
        "parts": [
            {"name": "wheel", "grams": "1200"},
            {"name": "frame", "inner": {"name": "bolt"}}
        ],
        "counters": {"b": "2", "a": "-1"},
        "blob": "aGk=",
        "madeAt": "2024-05-01T06:00:00.000000001Z",
        "weight": 2.5,
        "extra": {"k": [1, "x", null, true]},
        "rating": 4,
    });
    let message = DynamicMessage::deserialize(thing, input).unwrap();
    let body: Value = serde_json::from_slice(&render_json(&message, None).unwrap()).unwrap();
    assert_eq!(
        body,
        json!({
            "id": "t-1",
            "size": "9007199254740993",
            "count": "18446744073709551615",
            "label": null,
            "colour": "deep_red",
            "parts": [
                {"name": "wheel", "grams": "1200", "inner": null},
                {"name": "frame", "grams": null, "inner": {"name": "bolt", "grams": null, "inner": null}}
            ],
            "counters": {"a": "-1", "b": "2"},
            "blob": "aGk=",
            "made_at": "2024-05-01T06:00:00.000000001Z",
            "weight": 2.5,
            "fragile": false,
            "extra": {"k": [1.0, "x", null, true]},
            "rating": 4,
            "vendor": null,
            "origin": null,
            "main_part": null,
            "small": 0
        })
    );
}

#[test]
fn an_empty_message_still_lists_every_key() {
    let pool = things_pool();
    let thing = DynamicMessage::new(pool.get_message_by_name("test.things.v1.Thing").unwrap());
    let body: Value = serde_json::from_slice(&render_json(&thing, None).unwrap()).unwrap();
    let object = body.as_object().unwrap();
    assert_eq!(object.len(), 17);
    assert_eq!(body["size"], "0");
    assert_eq!(body["count"], "0");
    assert_eq!(body["colour"], Value::Null);
    assert_eq!(body["parts"], json!([]));
    assert_eq!(body["counters"], json!({}));
    assert_eq!(body["blob"], "");
    assert_eq!(body["rating"], Value::Null);
    assert_eq!(body["extra"], Value::Null);
}

#[test]
fn non_finite_floats_are_strings() {
    let pool = things_pool();
    let thing = pool.get_message_by_name("test.things.v1.Thing").unwrap();
    let message = DynamicMessage::deserialize(thing, json!({"weight": "NaN"})).unwrap();
    let body: Value = serde_json::from_slice(&render_json(&message, None).unwrap()).unwrap();
    assert_eq!(body["weight"], "NaN");
}
