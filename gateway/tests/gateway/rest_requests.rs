//! Turning REST requests (path, query, JSON body) into gRPC request messages.
#![allow(clippy::unwrap_used)]

use crate::things;

use director_gateway::error::ApiError;
use director_gateway::rest::RestApi;
use director_proto::{companies, dispatch};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use prost_reflect::{DescriptorPool, DynamicMessage, ReflectMessage as _, Value};
use things::things_pool;
use tonic::Code;

fn director_api() -> RestApi {
    let pool = DescriptorPool::decode(director_proto::FILE_DESCRIPTOR_SET).unwrap();
    RestApi::new(&pool).unwrap()
}

/// The test contract's REST API.
fn things_api() -> RestApi {
    RestApi::new(&things_pool()).unwrap()
}

fn json_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers
}

fn transcode(
    api: &RestApi,
    method: Method,
    uri: &str,
    body: &str,
) -> Result<DynamicMessage, ApiError> {
    let uri: Uri = uri.parse().unwrap();
    api.request_message(&method, &uri, &json_headers(), body.as_bytes())
        .map(|(_, message)| message)
}

fn ok<T: prost::Message + Default>(result: Result<DynamicMessage, ApiError>) -> T {
    result.unwrap().transcode_to::<T>().unwrap()
}

fn violations(error: &ApiError) -> Vec<&str> {
    error
        .fields
        .iter()
        .map(|field| field.field.as_str())
        .collect()
}

#[test]
fn a_body_star_request_takes_proto_and_json_names_and_null_as_unset() {
    let request: companies::CreateCompanyRequest = ok(transcode(
        &director_api(),
        Method::POST,
        "/api/companies",
        r#"{"name": "Acme Farm", "externalId": "F-1", "email": null, "phone": "+15551234567"}"#,
    ));
    assert_eq!(request.name, "Acme Farm");
    assert_eq!(request.external_id.as_deref(), Some("F-1"));
    assert_eq!(request.email, None);
    assert_eq!(request.phone.as_deref(), Some("+15551234567"));
}

#[test]
fn an_empty_body_is_an_empty_object() {
    let request: companies::CreateCompanyRequest = ok(transcode(
        &director_api(),
        Method::POST,
        "/api/companies",
        "",
    ));
    assert_eq!(request, companies::CreateCompanyRequest::default());
}

#[test]
fn unknown_body_keys_are_refused_all_together_by_name() {
    let error = transcode(
        &director_api(),
        Method::POST,
        "/api/companies",
        r#"{"name": "Acme", "colour": "red", "size": 3}"#,
    )
    .unwrap_err();
    assert_eq!(error.code, Code::InvalidArgument);
    assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error.message, "Unknown field(s): colour, size");
    assert_eq!(violations(&error), vec!["colour", "size"]);
}

#[test]
fn malformed_json_names_the_position() {
    let error = transcode(
        &director_api(),
        Method::POST,
        "/api/companies",
        "{\"name\": ",
    )
    .unwrap_err();
    assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    assert!(
        error.message.starts_with("Malformed JSON body"),
        "{}",
        error.message
    );
    assert!(error.message.contains("line 1 column"), "{}", error.message);
}

#[test]
fn a_body_that_is_not_an_object_is_refused() {
    let error = transcode(&director_api(), Method::POST, "/api/companies", "[1, 2]").unwrap_err();
    assert_eq!(error.message, "Request body must be a JSON object");
}

#[test]
fn values_of_the_wrong_type_name_their_field() {
    let error = transcode(
        &director_api(),
        Method::POST,
        "/api/tasks",
        r#"{"company_id": 5, "title": "Milk", "volume_liters": "lots", "window_start": "yesterday"}"#,
    )
    .unwrap_err();
    assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    let mut fields = violations(&error);
    fields.sort_unstable();
    assert_eq!(fields, vec!["company_id", "volume_liters", "window_start"]);
    assert!(
        error
            .message
            .contains("window_start: expected an RFC 3339 timestamp"),
        "{}",
        error.message
    );
}

#[test]
fn timestamps_are_read_as_rfc_3339_with_offsets() {
    let request: dispatch::CreateTaskRequest = ok(transcode(
        &director_api(),
        Method::POST,
        "/api/tasks",
        r#"{"company_id": "c1", "title": "Milk", "scheduled_for": "2024-05-01",
            "window_start": "2024-05-01T08:00:00+02:00", "windowEnd": "2024-05-01T10:30:00.5Z",
            "volume_liters": 1200.5}"#,
    ));
    let start = request.window_start.unwrap();
    assert_eq!(start.seconds, 1_714_543_200); // 2024-05-01T06:00:00Z
    let end = request.window_end.unwrap();
    assert_eq!((end.seconds, end.nanos), (1_714_559_400, 500_000_000));
    assert_eq!(request.volume_liters, Some(1200.5));
}

#[test]
fn path_variables_fill_the_request_and_conflicting_body_values_are_refused() {
    let api = director_api();
    let request: dispatch::AssignTaskRequest = ok(transcode(
        &api,
        Method::POST,
        "/api/tasks/t-1/assign",
        r#"{"driver_id": "d-9"}"#,
    ));
    assert_eq!(
        (request.id.as_str(), request.driver_id.as_str()),
        ("t-1", "d-9")
    );

    let same: dispatch::AssignTaskRequest = ok(transcode(
        &api,
        Method::POST,
        "/api/tasks/t-1/assign",
        r#"{"id": "t-1", "driver_id": "d-9"}"#,
    ));
    assert_eq!(same.id, "t-1");

    let error = transcode(
        &api,
        Method::POST,
        "/api/tasks/t-1/assign",
        r#"{"id": "t-2", "driver_id": "d-9"}"#,
    )
    .unwrap_err();
    assert_eq!(violations(&error), vec!["id"]);
}

#[test]
fn patch_derives_the_update_mask_from_the_keys_present_including_nulls() {
    let request: companies::UpdateCompanyRequest = ok(transcode(
        &director_api(),
        Method::PATCH,
        "/api/companies/c-42",
        r#"{"phone": "+1 555 123 4567", "email": null, "externalId": "F-9"}"#,
    ));
    assert_eq!(request.id, "c-42");
    let company = request.company.unwrap();
    assert_eq!(company.email, None);
    assert_eq!(company.phone.as_deref(), Some("+1 555 123 4567"));
    assert_eq!(company.external_id.as_deref(), Some("F-9"));
    assert_eq!(
        request.update_mask.unwrap().paths,
        vec!["email", "phone", "external_id"]
    );
}

#[test]
fn patch_with_an_empty_object_or_no_body_changes_nothing() {
    let request: companies::UpdateCompanyRequest = ok(transcode(
        &director_api(),
        Method::PATCH,
        "/api/companies/c-42",
        "{}",
    ));
    assert_eq!(request.update_mask.unwrap().paths, Vec::<String>::new());

    let request: companies::UpdateCompanyRequest = ok(transcode(
        &director_api(),
        Method::PATCH,
        "/api/companies/c-42",
        "",
    ));
    assert_eq!(request.update_mask.unwrap().paths, Vec::<String>::new());
    assert_eq!(request.company, None);
}

#[test]
fn an_explicit_update_mask_is_respected() {
    let request: companies::UpdateCompanyRequest = ok(transcode(
        &director_api(),
        Method::PATCH,
        "/api/companies/c-42?update_mask=name,externalId",
        r#"{"name": "New", "email": "a@b.example"}"#,
    ));
    assert_eq!(
        request.update_mask.unwrap().paths,
        vec!["name", "external_id"]
    );
}

#[test]
fn patch_bodies_with_unknown_keys_are_refused() {
    let error = transcode(
        &director_api(),
        Method::PATCH,
        "/api/drivers/d-1",
        r#"{"status": "active", "nickname": "Al"}"#,
    )
    .unwrap_err();
    assert_eq!(error.message, "Unknown field(s): nickname");
}

#[test]
fn enums_accept_short_full_and_numeric_names() {
    let api = director_api();
    for (query, expected) in [
        ("status=active", dispatch::DriverStatus::Active),
        ("status=INACTIVE", dispatch::DriverStatus::Inactive),
        (
            "status=DRIVER_STATUS_ACTIVE",
            dispatch::DriverStatus::Active,
        ),
        ("status=2", dispatch::DriverStatus::Inactive),
    ] {
        let request: dispatch::ListDriversRequest = ok(transcode(
            &api,
            Method::GET,
            &format!("/api/drivers?{query}"),
            "",
        ));
        assert_eq!(request.status(), expected, "{query}");
    }
    let body: dispatch::CreateDriverRequest = ok(transcode(
        &api,
        Method::POST,
        "/api/drivers",
        r#"{"name": "Al", "status": "inactive"}"#,
    ));
    assert_eq!(body.status(), dispatch::DriverStatus::Inactive);
}

#[test]
fn an_unknown_enum_value_lists_the_accepted_names() {
    let error = transcode(
        &director_api(),
        Method::GET,
        "/api/drivers?status=retired",
        "",
    )
    .unwrap_err();
    assert_eq!(violations(&error), vec!["status"]);
    assert!(
        error.fields[0].description.contains("active, inactive"),
        "{}",
        error.fields[0].description
    );
}

#[test]
fn query_parameters_fill_scalars_and_empty_values_count_as_absent() {
    let request: dispatch::ListTasksRequest = ok(transcode(
        &director_api(),
        Method::GET,
        "/api/tasks?status=in_progress&driver_id=d%201&company_id=&from=2024-05-01&skip=5&limit=50",
        "",
    ));
    assert_eq!(request.status(), dispatch::TaskStatus::InProgress);
    assert_eq!(request.driver_id.as_deref(), Some("d 1"));
    assert_eq!(request.company_id, None);
    assert_eq!(request.from.as_deref(), Some("2024-05-01"));
    assert_eq!(request.to, None);
    assert_eq!((request.skip, request.limit), (Some(5), Some(50)));
}

#[test]
fn unknown_query_parameters_are_refused_by_name() {
    let error = transcode(
        &director_api(),
        Method::GET,
        "/api/companies?skip=1&colour=red&page=2",
        "",
    )
    .unwrap_err();
    assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error.message, "Unknown query parameter(s): colour, page");
    assert_eq!(violations(&error), vec!["colour", "page"]);
}

#[test]
fn bad_query_values_name_the_parameter() {
    let error =
        transcode(&director_api(), Method::GET, "/api/companies?skip=many", "").unwrap_err();
    assert_eq!(violations(&error), vec!["skip"]);
    let error = transcode(
        &director_api(),
        Method::GET,
        "/api/companies?limit=99999999999",
        "",
    )
    .unwrap_err();
    assert!(error.fields[0].description.contains("out of range"));
}

#[test]
fn a_query_parameter_cannot_override_a_path_variable_or_the_body() {
    let api = director_api();
    let error = transcode(&api, Method::GET, "/api/companies/c-1?id=c-2", "").unwrap_err();
    assert_eq!(violations(&error), vec!["id"]);
    let error = transcode(
        &api,
        Method::POST,
        "/api/companies?name=x",
        r#"{"name": "y"}"#,
    )
    .unwrap_err();
    assert_eq!(violations(&error), vec!["name"]);
}

#[test]
fn a_non_json_content_type_is_415_but_a_missing_one_is_read_as_json() {
    let api = director_api();
    let uri: Uri = "/api/companies".parse().unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    let error = api
        .request_message(&Method::POST, &uri, &headers, br#"{"name": "x"}"#)
        .unwrap_err();
    assert_eq!(error.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let (_, message) = api
        .request_message(&Method::POST, &uri, &HeaderMap::new(), br#"{"name": "x"}"#)
        .unwrap();
    assert_eq!(
        message
            .transcode_to::<companies::CreateCompanyRequest>()
            .unwrap()
            .name,
        "x"
    );

    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    assert!(
        api.request_message(&Method::POST, &uri, &headers, br#"{"name": "x"}"#)
            .is_ok()
    );
}

#[test]
fn unknown_routes_are_404_and_wrong_methods_405() {
    let api = director_api();
    let error = transcode(&api, Method::GET, "/api/unknown", "").unwrap_err();
    assert_eq!(
        (error.status(), error.message.as_str()),
        (StatusCode::NOT_FOUND, "Not Found")
    );
    let error = transcode(&api, Method::PUT, "/api/companies/c-1", "{}").unwrap_err();
    assert_eq!(error.status(), StatusCode::METHOD_NOT_ALLOWED);
}

// ---- the test contract: repeated, nested, 64-bit and well-known query parameters ----

fn field(message: &DynamicMessage, path: &str) -> Value {
    let mut current = message.clone();
    let parts: Vec<&str> = path.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        current = current
            .get_field_by_name(part)
            .unwrap()
            .as_message()
            .unwrap()
            .clone();
    }
    current
        .get_field_by_name(parts[parts.len() - 1])
        .unwrap()
        .into_owned()
}

#[test]
fn repeated_nested_and_well_known_query_parameters_are_parsed() {
    let api = things_api();
    let message = transcode(
        &api,
        Method::GET,
        "/v1/shelves/s1/things?tags=a&tags=b+c&colours=deep_red&colours=2&filter.colour=BLUE\
         &filter.minSize=9007199254740993&include_deleted=true&since=2024-01-01T00:00:00Z\
         &fields=name,mainPart.name&after=-5&page=3",
        "",
    )
    .unwrap();
    assert_eq!(
        field(&message, "shelf.name"),
        Value::String("shelves/s1".into())
    );
    assert_eq!(
        field(&message, "tags"),
        Value::List(vec![Value::String("a".into()), Value::String("b c".into())])
    );
    assert_eq!(
        field(&message, "colours"),
        Value::List(vec![Value::EnumNumber(1), Value::EnumNumber(2)])
    );
    assert_eq!(field(&message, "filter.colour"), Value::EnumNumber(2));
    assert_eq!(
        field(&message, "filter.min_size"),
        Value::I64(9_007_199_254_740_993)
    );
    assert_eq!(field(&message, "include_deleted"), Value::Bool(true));
    assert_eq!(field(&message, "since.seconds"), Value::I64(1_704_067_200));
    assert_eq!(
        field(&message, "fields.paths"),
        Value::List(vec![
            Value::String("name".into()),
            Value::String("main_part.name".into())
        ])
    );
    assert_eq!(field(&message, "after"), Value::I64(-5));
    assert_eq!(field(&message, "page.value"), Value::I32(3));
}

#[test]
fn additional_bindings_reach_the_same_method() {
    let api = things_api();
    let (route, message) = api
        .request_message(
            &Method::GET,
            &"/v1/things?tags=x".parse().unwrap(),
            &HeaderMap::new(),
            b"",
        )
        .unwrap();
    assert_eq!(route.method.name(), "ListThings");
    assert_eq!(route.binding_index, 1);
    assert_eq!(route.operation_id(), "ThingsService_ListThings_1");
    assert!(!message.has_field_by_name("shelf"));
}

#[test]
fn a_scalar_query_parameter_given_twice_is_refused() {
    let api = things_api();
    let error = transcode(&api, Method::GET, "/v1/things?after=1&after=2", "").unwrap_err();
    assert_eq!(violations(&error), vec!["after"]);
    assert!(error.fields[0].description.contains("more than once"));
}

#[test]
fn a_message_cannot_be_a_query_parameter() {
    let api = things_api();
    let error = transcode(&api, Method::GET, "/v1/things?filter=x", "").unwrap_err();
    assert_eq!(error.message, "Unknown query parameter(s): filter");
}

#[test]
fn nested_path_variables_inside_the_body_field_are_set() {
    let api = things_api();
    let message = transcode(
        &api,
        Method::PATCH,
        "/v1/things/t-7",
        r#"{"size": "12", "label": null, "colour": "deep_red"}"#,
    )
    .unwrap();
    assert_eq!(field(&message, "thing.id"), Value::String("t-7".into()));
    assert_eq!(field(&message, "thing.size"), Value::I64(12));
    assert_eq!(field(&message, "thing.colour"), Value::EnumNumber(1));
    assert_eq!(
        field(&message, "update_mask.paths"),
        Value::List(vec![
            Value::String("size".into()),
            Value::String("label".into()),
            Value::String("colour".into()),
        ])
    );
}

#[test]
fn body_values_for_64_bit_integers_and_bytes_and_structs_are_converted() {
    let api = things_api();
    let message = transcode(
        &api,
        Method::POST,
        "/v1/things/t-1:touch",
        r#"{"note": "hi", "force": "18446744073709551615"}"#,
    )
    .unwrap();
    assert_eq!(field(&message, "force"), Value::U64(u64::MAX));
    assert_eq!(field(&message, "id"), Value::String("t-1".into()));

    let message = transcode(
        &api,
        Method::PATCH,
        "/v1/things/t-1",
        r#"{"blob": "aGk=", "extra": {"a": [1, "x", null]}, "rating": 4, "counters": {"x": "3"},
            "parts": [{"name": "p", "grams": 5, "inner": {"name": "q"}}], "origin": {"name": "o"}}"#,
    )
    .unwrap();
    assert_eq!(
        field(&message, "thing.blob"),
        Value::Bytes(b"hi".to_vec().into())
    );
    assert_eq!(field(&message, "thing.rating.value"), Value::I32(4));
    let thing = field(&message, "thing");
    let thing = thing.as_message().unwrap();
    assert!(thing.has_field_by_name("extra"));
    assert_eq!(thing.descriptor().name(), "Thing");
    let parts = thing.get_field_by_name("parts").unwrap();
    assert_eq!(parts.as_list().unwrap().len(), 1);
}

#[test]
fn errors_deep_in_the_body_carry_the_full_path() {
    let api = things_api();
    let error = transcode(
        &api,
        Method::PATCH,
        "/v1/things/t-1",
        r#"{"parts": [{"name": "ok"}, {"grams": "heavy", "wings": 2}], "size": 1.5, "small": 3000000000}"#,
    )
    .unwrap_err();
    let mut fields = violations(&error);
    fields.sort_unstable();
    assert_eq!(
        fields,
        vec!["parts[1].grams", "parts[1].wings", "size", "small"]
    );
    assert!(
        error
            .message
            .starts_with("Unknown field(s): parts[1].wings"),
        "{}",
        error.message
    );
}

#[test]
fn two_members_of_a_oneof_are_refused() {
    let api = things_api();
    let error = transcode(
        &api,
        Method::PATCH,
        "/v1/things/t-1",
        r#"{"vendor": "v", "origin": {"name": "o"}}"#,
    )
    .unwrap_err();
    assert_eq!(error.fields.len(), 1);
    assert!(error.fields[0].description.contains("only one of"));
}

#[test]
fn the_same_field_under_both_spellings_is_refused() {
    let api = things_api();
    let error = transcode(
        &api,
        Method::PATCH,
        "/v1/things/t-1",
        r#"{"main_part": {"name": "a"}, "mainPart": {"name": "b"}}"#,
    )
    .unwrap_err();
    assert_eq!(error.fields.len(), 1);
}

/// `uri` (GET, no body) with a `Last-Event-ID` header.
fn transcode_resumed(
    api: &RestApi,
    uri: &str,
    last_event_id: &str,
) -> Result<DynamicMessage, ApiError> {
    let mut headers = HeaderMap::new();
    headers.insert(
        "last-event-id",
        HeaderValue::from_str(last_event_id).unwrap(),
    );
    api.request_message(&Method::GET, &uri.parse().unwrap(), &headers, b"")
        .map(|(_, message)| message)
}

fn after_event_id(message: &DynamicMessage) -> i64 {
    message
        .get_field_by_name("after_event_id")
        .unwrap()
        .as_i64()
        .unwrap()
}

#[test]
fn last_event_id_fills_after_event_id_of_a_server_stream_converted_to_its_type() {
    let api = things_api();
    let message = transcode_resumed(&api, "/v1/watch/s1", "41").unwrap();
    assert_eq!(after_event_id(&message), 41);
    let shelf = message.get_field_by_name("shelf").unwrap();
    let shelf = shelf.as_message().unwrap();
    assert_eq!(
        shelf.get_field_by_name("name").unwrap().as_str(),
        Some("s1")
    );
}

#[test]
fn an_explicit_after_event_id_wins_over_last_event_id() {
    let api = things_api();
    let message = transcode_resumed(&api, "/v1/watch/s1?after_event_id=7", "41").unwrap();
    assert_eq!(after_event_id(&message), 7);
    // Explicitly 0 is still explicit.
    let message = transcode_resumed(&api, "/v1/watch/s1?afterEventId=0", "41").unwrap();
    assert_eq!(after_event_id(&message), 0);
    // The path gives it: the header is not a conflicting second value.
    let message = transcode_resumed(&api, "/v1/watch/s1/after/3", "41").unwrap();
    assert_eq!(after_event_id(&message), 3);
    // An empty query value counts as absent, as everywhere.
    let message = transcode_resumed(&api, "/v1/watch/s1?after_event_id=", "41").unwrap();
    assert_eq!(after_event_id(&message), 41);
}

#[test]
fn a_last_event_id_the_field_cannot_hold_is_a_400_naming_after_event_id() {
    let api = things_api();
    for bad in ["abc", "1.5", "99999999999999999999"] {
        let error = transcode_resumed(&api, "/v1/watch/s1", bad).unwrap_err();
        assert_eq!(error.code, Code::InvalidArgument, "{bad}");
        assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(violations(&error), vec!["after_event_id"], "{bad}");
        assert!(
            error.message.contains("after_event_id"),
            "{}",
            error.message
        );
    }
    // The query wins, so a header it overrides is not looked at.
    let message = transcode_resumed(&api, "/v1/watch/s1?after_event_id=2", "abc").unwrap();
    assert_eq!(after_event_id(&message), 2);
}

#[test]
fn last_event_id_is_ignored_by_unary_routes_and_when_empty() {
    let api = things_api();
    let message = transcode_resumed(&api, "/v1/cursor/s1", "41").unwrap();
    assert_eq!(after_event_id(&message), 0);
    let message = transcode_resumed(&api, "/v1/cursor/s1", "abc").unwrap();
    assert_eq!(after_event_id(&message), 0);
    let message = transcode_resumed(&api, "/v1/watch/s1", "").unwrap();
    assert_eq!(after_event_id(&message), 0);
}
