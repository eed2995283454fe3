//! The route table built from Director's contracts, and how requests are matched to it.
#![allow(clippy::unwrap_used)]

use director_gateway::rest::{RestApi, RouteMatch};
use http::Method;
use prost_reflect::DescriptorPool;

fn api() -> RestApi {
    let pool = DescriptorPool::decode(director_proto::FILE_DESCRIPTOR_SET).unwrap();
    RestApi::new(&pool).unwrap()
}

/// Every route of API.md, and nothing else.
const API_MD_ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/api/companies", "ListCompanies"),
    ("POST", "/api/companies", "CreateCompany"),
    ("GET", "/api/companies/{id}", "GetCompany"),
    ("PATCH", "/api/companies/{id}", "UpdateCompany"),
    ("DELETE", "/api/companies/{id}", "DeleteCompany"),
    ("GET", "/api/drivers", "ListDrivers"),
    ("POST", "/api/drivers", "CreateDriver"),
    ("GET", "/api/drivers/{id}", "GetDriver"),
    ("PATCH", "/api/drivers/{id}", "UpdateDriver"),
    ("DELETE", "/api/drivers/{id}", "DeleteDriver"),
    ("GET", "/api/tasks", "ListTasks"),
    ("POST", "/api/tasks", "CreateTask"),
    ("GET", "/api/tasks/watch", "WatchTasks"),
    ("GET", "/api/tasks/{id}", "GetTask"),
    ("PATCH", "/api/tasks/{id}", "UpdateTask"),
    ("DELETE", "/api/tasks/{id}", "DeleteTask"),
    ("POST", "/api/tasks/{id}/assign", "AssignTask"),
    ("POST", "/api/tasks/{id}/start", "StartTask"),
    ("POST", "/api/tasks/{id}/complete", "CompleteTask"),
    ("POST", "/api/tasks/{id}/cancel", "CancelTask"),
    ("GET", "/api/integrations", "ListIntegrations"),
    (
        "GET",
        "/api/integrations/settings",
        "GetIntegrationSettings",
    ),
    (
        "PUT",
        "/api/integrations/settings",
        "UpdateIntegrationSettings",
    ),
    (
        "GET",
        "/api/integrations/vessey/drivers/{driver_id}",
        "GetVesseyDriver",
    ),
    (
        "POST",
        "/api/integrations/vessey/drivers:sync",
        "SyncVesseyDrivers",
    ),
    (
        "POST",
        "/api/integrations/vessey/collections:import",
        "ImportVesseyCollections",
    ),
    ("GET", "/api/integrations/jobs", "ListJobs"),
    ("GET", "/api/integrations/jobs/{id}", "GetJob"),
    ("POST", "/api/integrations/notifications/sms", "SendSms"),
    (
        "POST",
        "/api/integrations/notifications/slack",
        "SendSlackMessage",
    ),
    (
        "GET",
        "/api/integrations/notifications",
        "ListNotifications",
    ),
    ("GET", "/api/integrations/jobs/{id}/watch", "WatchJob"),
];

#[test]
fn the_route_table_has_exactly_the_routes_of_api_md() {
    let api = api();
    let mut actual: Vec<(String, String, String)> = api
        .routes()
        .iter()
        .map(|route| {
            (
                route.http_method.to_string(),
                route.template.clone(),
                route.method.name().to_owned(),
            )
        })
        .collect();
    let mut expected: Vec<(String, String, String)> = API_MD_ROUTES
        .iter()
        .map(|(method, path, rpc)| ((*method).to_owned(), (*path).to_owned(), (*rpc).to_owned()))
        .collect();
    actual.sort();
    expected.sort();
    assert_eq!(actual, expected);
}

#[test]
fn bindings_carry_body_response_body_and_streaming() {
    let api = api();
    let route = |method: &str, template: &str| {
        api.routes()
            .iter()
            .find(|route| route.http_method == method && route.template == template)
            .unwrap()
    };
    let update = route("PATCH", "/api/companies/{id}");
    assert_eq!(update.body.as_deref(), Some("company"));
    assert_eq!(update.response_body.as_deref(), Some("company"));
    assert_eq!(update.update_mask_field().unwrap().name(), "update_mask");
    assert_eq!(
        update.grpc_path(),
        "/director.companies.v1.CompaniesService/UpdateCompany"
    );

    let create = route("POST", "/api/tasks");
    assert_eq!(create.body.as_deref(), Some("*"));
    assert!(create.update_mask_field().is_none());

    let delete = route("DELETE", "/api/companies/{id}");
    assert_eq!(delete.body, None);
    assert_eq!(delete.response_body, None);

    let watch = route("GET", "/api/tasks/watch");
    assert!(watch.server_streaming);
    assert!(!route("GET", "/api/tasks/{id}").server_streaming);
}

fn matched(api: &RestApi, method: Method, path: &str) -> (String, Vec<(String, String)>) {
    match api.matches(&method, path) {
        RouteMatch::Found(found) => (
            found.route.method.name().to_owned(),
            found
                .variables()
                .map(|(name, value)| (name, value.to_owned()))
                .collect(),
        ),
        other => panic!("{method} {path} did not match: {other:?}"),
    }
}

#[test]
fn a_literal_segment_beats_a_variable() {
    let api = api();
    assert_eq!(
        matched(&api, Method::GET, "/api/tasks/watch").0,
        "WatchTasks"
    );
    assert_eq!(
        matched(
            &api,
            Method::GET,
            "/api/tasks/0b7c1d2e-aaaa-4bbb-8ccc-123456789abc"
        ),
        (
            "GetTask".to_owned(),
            vec![(
                "id".to_owned(),
                "0b7c1d2e-aaaa-4bbb-8ccc-123456789abc".to_owned()
            )]
        )
    );
    // PATCH has no literal `watch` route: the variable route takes it (the service then
    // refuses the id).
    assert_eq!(
        matched(&api, Method::PATCH, "/api/tasks/watch").0,
        "UpdateTask"
    );
}

#[test]
fn custom_verbs_select_their_own_methods() {
    let api = api();
    assert_eq!(
        matched(&api, Method::POST, "/api/integrations/vessey/drivers:sync").0,
        "SyncVesseyDrivers"
    );
    assert_eq!(
        matched(
            &api,
            Method::POST,
            "/api/integrations/vessey/collections:import"
        )
        .0,
        "ImportVesseyCollections"
    );
    assert!(matches!(
        api.matches(&Method::POST, "/api/integrations/vessey/drivers:import"),
        RouteMatch::NotFound
    ));
    // Without the verb the path is a different resource: the driver look-up (GET only).
    assert!(matches!(
        api.matches(&Method::POST, "/api/integrations/vessey/drivers"),
        RouteMatch::NotFound
    ));
}

#[test]
fn path_variables_are_percent_decoded() {
    let api = api();
    assert_eq!(
        matched(
            &api,
            Method::GET,
            "/api/integrations/vessey/drivers/drv%2042%2Fb"
        )
        .1,
        vec![("driver_id".to_owned(), "drv 42/b".to_owned())]
    );
}

#[test]
fn a_trailing_slash_is_tolerated_like_the_reference_api() {
    let api = api();
    assert_eq!(
        matched(&api, Method::GET, "/api/companies/").0,
        "ListCompanies"
    );
    assert_eq!(
        matched(&api, Method::POST, "/api/companies/").0,
        "CreateCompany"
    );
}

#[test]
fn a_known_path_with_another_method_lists_the_allowed_ones() {
    let api = api();
    match api.matches(&Method::PUT, "/api/companies/abc") {
        RouteMatch::MethodNotAllowed(mut allowed) => {
            allowed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            assert_eq!(allowed, vec![Method::DELETE, Method::GET, Method::PATCH]);
        }
        other => panic!("expected 405, got {other:?}"),
    }
    match api.matches(&Method::DELETE, "/api/companies") {
        RouteMatch::MethodNotAllowed(allowed) => {
            assert!(allowed.contains(&Method::GET) && allowed.contains(&Method::POST));
        }
        other => panic!("expected 405, got {other:?}"),
    }
}

#[test]
fn unknown_paths_are_not_found() {
    let api = api();
    for path in [
        "/api/nothing",
        "/api/companies/a/b",
        "/api/tasks/abc/explode",
        "/companies",
        "/",
    ] {
        assert!(
            matches!(api.matches(&Method::GET, path), RouteMatch::NotFound),
            "{path}"
        );
    }
}

#[test]
fn the_405_answer_carries_an_allow_header() {
    let response =
        director_gateway::rest::method_not_allowed(&[Method::GET, Method::PATCH, Method::DELETE]);
    assert_eq!(response.status(), http::StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        response.headers()[http::header::ALLOW],
        "GET, PATCH, DELETE"
    );
}
