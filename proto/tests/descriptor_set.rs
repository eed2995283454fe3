//! The exported descriptor set keeps what the gateway and reflection need: the
//! `google.api.http` options of every method (re-encoding through `prost_types` would drop
//! them) and the proto comments that become OpenAPI descriptions. And the REST routes it
//! declares are exactly the routes of API.md.

use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor, Value};

fn pool() -> DescriptorPool {
    DescriptorPool::decode(director_proto::FILE_DESCRIPTOR_SET).expect("descriptor set decodes")
}

/// The `google.api.http` rule of a method, if it has one.
fn http_rule(pool: &DescriptorPool, method: &MethodDescriptor) -> Option<DynamicMessage> {
    let extension = pool
        .get_extension_by_name("google.api.http")
        .expect("google.api.http is in the pool");
    let options = method.options();
    if !options.has_extension(&extension) {
        return None;
    }
    match options.get_extension(&extension).into_owned() {
        Value::Message(rule) => Some(rule),
        other => panic!("google.api.http is not a message: {other:?}"),
    }
}

/// (HTTP method, path template) of a rule.
fn route(rule: &DynamicMessage) -> (String, String) {
    for verb in ["get", "put", "post", "delete", "patch"] {
        if rule.has_field_by_name(verb) {
            let path = rule.get_field_by_name(verb).expect("set field");
            return (
                verb.to_uppercase(),
                path.as_str().expect("a string path").to_owned(),
            );
        }
    }
    panic!("rule without a pattern: {rule:?}");
}

fn director_methods(pool: &DescriptorPool) -> impl Iterator<Item = MethodDescriptor> + '_ {
    pool.services()
        .filter(|service| service.package_name().starts_with("director."))
        .flat_map(|service| service.methods().collect::<Vec<_>>())
}

/// Every route of API.md served by a Director service (the gateway's own public routes,
/// `/api`, `/api/health`, ..., are not RPCs).
const API_MD_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/companies"),
    ("POST", "/api/companies"),
    ("GET", "/api/companies/{id}"),
    ("PATCH", "/api/companies/{id}"),
    ("DELETE", "/api/companies/{id}"),
    ("GET", "/api/drivers"),
    ("POST", "/api/drivers"),
    ("GET", "/api/drivers/{id}"),
    ("PATCH", "/api/drivers/{id}"),
    ("DELETE", "/api/drivers/{id}"),
    ("GET", "/api/tasks"),
    ("POST", "/api/tasks"),
    ("GET", "/api/tasks/{id}"),
    ("PATCH", "/api/tasks/{id}"),
    ("DELETE", "/api/tasks/{id}"),
    ("POST", "/api/tasks/{id}/assign"),
    ("POST", "/api/tasks/{id}/start"),
    ("POST", "/api/tasks/{id}/complete"),
    ("POST", "/api/tasks/{id}/cancel"),
    ("GET", "/api/tasks/watch"),
    ("GET", "/api/integrations"),
    ("GET", "/api/integrations/settings"),
    ("PUT", "/api/integrations/settings"),
    ("GET", "/api/integrations/vessey/drivers/{driver_id}"),
    ("POST", "/api/integrations/vessey/drivers:sync"),
    ("POST", "/api/integrations/vessey/collections:import"),
    ("GET", "/api/integrations/jobs/{id}"),
    ("GET", "/api/integrations/jobs"),
    ("POST", "/api/integrations/notifications/sms"),
    ("POST", "/api/integrations/notifications/slack"),
    ("GET", "/api/integrations/notifications"),
    ("GET", "/api/integrations/jobs/{id}/watch"),
];

#[test]
fn the_rest_routes_in_the_descriptor_set_are_exactly_the_routes_of_api_md() {
    let pool = pool();
    let mut declared: Vec<(String, String)> = director_methods(&pool)
        .filter_map(|method| http_rule(&pool, &method))
        .map(|rule| route(&rule))
        .collect();
    declared.sort();
    let mut expected: Vec<(String, String)> = API_MD_ROUTES
        .iter()
        .map(|(verb, path)| ((*verb).to_owned(), (*path).to_owned()))
        .collect();
    expected.sort();
    assert_eq!(declared, expected);
}

#[test]
fn every_public_rpc_has_a_rest_route_and_each_route_is_unique() {
    let pool = pool();
    let unrouted: Vec<String> = director_methods(&pool)
        .filter(|method| http_rule(&pool, method).is_none())
        .map(|method| method.full_name().to_owned())
        .collect();
    // Service-to-service RPCs (the `.internal.` packages) have no REST route; all others do.
    assert_eq!(
        unrouted,
        [
            "director.companies.internal.v1.CompaniesInternalService.EnsureCompanies",
            "director.dispatch.internal.v1.DispatchInternalService.UpsertDrivers",
            "director.dispatch.internal.v1.DispatchInternalService.UpsertTasks",
            "director.integrations.internal.v1.TaskEventSinkService.DeliverTaskEvents",
        ]
    );

    let mut routes: Vec<_> = director_methods(&pool)
        .filter_map(|method| http_rule(&pool, &method))
        .map(|rule| route(&rule))
        .collect();
    let count = routes.len();
    routes.sort();
    routes.dedup();
    assert_eq!(routes.len(), count, "two RPCs share a route");
}

#[test]
fn list_routes_answer_bare_arrays_through_response_body() {
    let pool = pool();
    let method = pool
        .get_service_by_name("director.companies.v1.CompaniesService")
        .and_then(|service| service.methods().find(|m| m.name() == "ListCompanies"))
        .expect("ListCompanies");
    let rule = http_rule(&pool, &method).expect("annotated");
    assert_eq!(
        rule.get_field_by_name("response_body")
            .and_then(|v| v.as_str().map(str::to_owned)),
        Some("companies".to_owned())
    );
}

#[test]
fn the_two_server_streams_are_declared() {
    let pool = pool();
    let streams: Vec<String> = director_methods(&pool)
        .filter(|method| method.is_server_streaming())
        .map(|method| method.name().to_owned())
        .collect();
    assert_eq!(streams, ["WatchTasks", "WatchJob"]);
}

#[test]
fn proto_comments_survive_for_openapi_descriptions() {
    let pool = pool();
    let file = pool
        .get_file_by_name("director/companies/v1/companies.proto")
        .expect("companies.proto");
    let source_info = file
        .file_descriptor_proto()
        .source_code_info
        .clone()
        .expect("source info is kept");
    assert!(
        source_info
            .location
            .iter()
            .any(|location| location.leading_comments().contains("1 to 255 characters")),
        "the comment of Company.name is missing"
    );
}
