//! The route table: one [`RestRoute`] per `google.api.http` binding (additional bindings
//! included) of every method in the descriptor pool, resolved against the descriptors once at
//! start-up, and the matcher that picks a route for a request.

use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use http::Method;
use http::uri::PathAndQuery;
use prost_reflect::{
    DescriptorPool, DynamicMessage, ExtensionDescriptor, FieldDescriptor, Kind, MethodDescriptor,
    Value,
};

use super::template::{PathTemplate, RequestPath};
use super::wire_json::ResponsePlan;

/// One REST binding of a gRPC method, with everything the hot path needs precomputed.
#[derive(Debug, Clone)]
pub struct RestRoute {
    /// The HTTP method of the binding.
    pub http_method: Method,
    /// The path template as written in the proto, e.g. `/api/companies/{id}`.
    pub template: String,
    /// The gRPC method it calls.
    pub method: MethodDescriptor,
    /// `body` of the rule: `*` (the whole request message), a field name, or none.
    pub body: Option<String>,
    /// `response_body` of the rule: the response field answered instead of the whole message.
    pub response_body: Option<String>,
    /// Whether the method is a server stream (answered as Server-Sent Events).
    pub server_streaming: bool,
    /// 0 for the rule itself, 1.. for its `additional_bindings`.
    pub binding_index: usize,
    pub(crate) path: PathTemplate,
    /// For each variable of `path` (same order), the request fields from the top message to
    /// the bound leaf.
    pub(crate) path_fields: Vec<Vec<FieldDescriptor>>,
    pub(crate) body_field: Option<FieldDescriptor>,
    pub(crate) response_field: Option<FieldDescriptor>,
    pub(crate) update_mask_field: Option<FieldDescriptor>,
    pub(crate) grpc_path: PathAndQuery,
    /// How unary answers are rendered straight from their bytes (`None`: always through a
    /// `DynamicMessage`).
    pub(crate) response_plan: Option<Arc<ResponsePlan>>,
}

impl RestRoute {
    /// The parsed path template.
    pub fn path_template(&self) -> &PathTemplate {
        &self.path
    }

    /// The path as OpenAPI writes it: `{id}` for every variable, `:verb` kept.
    pub fn openapi_path(&self) -> String {
        self.path.openapi_path()
    }

    /// The dotted request field path and leaf field of each path variable.
    pub fn path_parameters(&self) -> impl Iterator<Item = (String, &FieldDescriptor)> {
        self.path
            .variables()
            .iter()
            .zip(&self.path_fields)
            .filter_map(|(variable, chain)| chain.last().map(|leaf| (variable.dotted(), leaf)))
    }

    /// The request field filled from the body when `body` names a field.
    pub fn body_field(&self) -> Option<&FieldDescriptor> {
        self.body_field.as_ref()
    }

    /// The response field answered when `response_body` is set.
    pub fn response_field(&self) -> Option<&FieldDescriptor> {
        self.response_field.as_ref()
    }

    /// The `google.protobuf.FieldMask update_mask` filled from the body's keys (PATCH).
    pub fn update_mask_field(&self) -> Option<&FieldDescriptor> {
        self.update_mask_field.as_ref()
    }

    /// `/{package.Service}/{Method}`.
    pub fn grpc_path(&self) -> &str {
        self.grpc_path.as_str()
    }

    /// `<Service>_<Method>`, with `_<n>` for additional bindings so every id is unique.
    pub fn operation_id(&self) -> String {
        let base = format!(
            "{}_{}",
            self.method.parent_service().name(),
            self.method.name()
        );
        if self.binding_index == 0 {
            base
        } else {
            format!("{base}_{}", self.binding_index)
        }
    }

    /// Whether the request field `chain` (top to leaf) is bound by a path variable.
    pub(crate) fn is_path_bound(&self, chain: &[FieldDescriptor]) -> bool {
        self.path_fields
            .iter()
            .any(|bound| bound.as_slice() == chain)
    }
}

/// The outcome of matching a request against the route table.
#[derive(Debug)]
pub enum RouteMatch<'a> {
    /// A route for this method and path, with the decoded path variable values.
    Found(PathMatch<'a>),
    /// The path exists, but not for this method; the methods it has.
    MethodNotAllowed(Vec<Method>),
    /// No route has this path.
    NotFound,
}

/// A matched route and the values of its path variables.
#[derive(Debug)]
pub struct PathMatch<'a> {
    /// The route.
    pub route: &'a RestRoute,
    /// Percent-decoded value of each path variable, in template order.
    pub values: Vec<String>,
}

impl PathMatch<'_> {
    /// `(dotted field path, value)` of each path variable.
    pub fn variables(&self) -> impl Iterator<Item = (String, &str)> {
        self.route
            .path
            .variables()
            .iter()
            .map(|variable| variable.dotted())
            .zip(self.values.iter().map(String::as_str))
    }
}

/// Picks the route for `method` and `path`. Among routes whose template matches, the most
/// specific wins (segment by segment, literal over `*` over `**`), so `/api/tasks/watch`
/// reaches `WatchTasks`, not `GetTask` with id `watch`.
pub fn find<'a>(routes: &'a [RestRoute], method: &Method, path: &str) -> RouteMatch<'a> {
    let request_path = RequestPath::parse(path);
    let mut best: Option<PathMatch<'a>> = None;
    let mut allowed: Vec<Method> = Vec::new();
    for route in routes {
        let Some(values) = route.path.match_path(&request_path) else {
            continue;
        };
        if route.http_method != *method {
            if !allowed.contains(&route.http_method) {
                allowed.push(route.http_method.clone());
            }
            continue;
        }
        let better = best.as_ref().is_none_or(|current| {
            route.path.specificity_cmp(&current.route.path) == std::cmp::Ordering::Less
        });
        if better {
            best = Some(PathMatch { route, values });
        }
    }
    match best {
        Some(found) => RouteMatch::Found(found),
        None if !allowed.is_empty() => RouteMatch::MethodNotAllowed(allowed),
        None => RouteMatch::NotFound,
    }
}

/// Builds the route table from every method carrying a `google.api.http` option.
pub fn build_routes(pool: &DescriptorPool) -> anyhow::Result<Vec<RestRoute>> {
    let Some(http) = pool.get_extension_by_name("google.api.http") else {
        return Ok(Vec::new());
    };
    let mut routes = Vec::new();
    for service in pool.services() {
        for method in service.methods() {
            for (index, rule) in http_rules(&method, &http).into_iter().enumerate() {
                let route = route_from_rule(&method, &rule, index)
                    .with_context(|| format!("google.api.http of {}", method.full_name()))?;
                routes.push(route);
            }
        }
    }
    for (index, route) in routes.iter().enumerate() {
        if let Some(other) = routes[..index].iter().find(|other| {
            other.http_method == route.http_method
                && other.path.segments() == route.path.segments()
                && other.path.verb() == route.path.verb()
        }) {
            bail!(
                "{} {} is bound twice: {} and {}",
                route.http_method,
                route.template,
                other.method.full_name(),
                route.method.full_name()
            );
        }
    }
    Ok(routes)
}

/// The method's rule followed by its additional bindings (whose own nested bindings are
/// ignored, as the annotation's documentation says).
fn http_rules(method: &MethodDescriptor, http: &ExtensionDescriptor) -> Vec<DynamicMessage> {
    let options = method.options();
    if !options.has_extension(http) {
        return Vec::new();
    }
    let Value::Message(rule) = options.get_extension(http).into_owned() else {
        return Vec::new();
    };
    let mut rules = vec![rule.clone()];
    if let Some(extra) = rule.get_field_by_name("additional_bindings")
        && let Value::List(items) = extra.as_ref()
    {
        rules.extend(items.iter().filter_map(|item| item.as_message().cloned()));
    }
    rules
}

fn string_field(rule: &DynamicMessage, name: &str) -> Option<String> {
    rule.get_field_by_name(name)
        .and_then(|value| value.as_str().map(str::to_owned))
        .filter(|text| !text.is_empty())
}

fn route_from_rule(
    method: &MethodDescriptor,
    rule: &DynamicMessage,
    binding_index: usize,
) -> anyhow::Result<RestRoute> {
    if method.is_client_streaming() {
        bail!("client-streaming methods cannot be bound to REST routes");
    }
    let (http_method, template) = pattern(rule)?;
    let path = PathTemplate::parse(&template)?;
    let input = method.input();
    let output = method.output();

    let mut path_fields = Vec::new();
    for variable in path.variables() {
        let mut chain: Vec<FieldDescriptor> = Vec::new();
        let mut message = input.clone();
        for (depth, name) in variable.field_path.iter().enumerate() {
            let field = message.get_field_by_name(name).ok_or_else(|| {
                anyhow!(
                    "path variable {}: no field {name} in {}",
                    variable.dotted(),
                    message.full_name()
                )
            })?;
            if field.is_list() || field.is_map() {
                bail!("path variable {} is repeated", variable.dotted());
            }
            let is_leaf = depth + 1 == variable.field_path.len();
            match (field.kind(), is_leaf) {
                (Kind::Message(next), false) => message = next,
                (_, false) => bail!(
                    "path variable {}: {name} is not a message",
                    variable.dotted()
                ),
                (Kind::Message(leaf), true) if !super::names::is_wrapper(&leaf) => {
                    bail!("path variable {} must be a scalar field", variable.dotted())
                }
                (_, true) => {}
            }
            chain.push(field);
        }
        path_fields.push(chain);
    }

    let body = string_field(rule, "body");
    let body_field = match body.as_deref() {
        None | Some("*") => None,
        Some(name) => {
            let field = input
                .get_field_by_name(name)
                .ok_or_else(|| anyhow!("body: no field {name} in {}", input.full_name()))?;
            if path_fields
                .iter()
                .any(|chain| chain.len() == 1 && chain[0] == field)
            {
                bail!("body field {name} is also a path variable");
            }
            Some(field)
        }
    };
    let response_body = string_field(rule, "response_body");
    let response_field =
        match response_body.as_deref() {
            None => None,
            Some(name) => Some(output.get_field_by_name(name).ok_or_else(|| {
                anyhow!("response_body: no field {name} in {}", output.full_name())
            })?),
        };
    let update_mask_field = body_field.as_ref().and_then(|_| {
        input.get_field_by_name("update_mask").filter(|field| {
            !field.is_list()
                && matches!(field.kind(), Kind::Message(m) if m.full_name() == "google.protobuf.FieldMask")
        })
    });
    let grpc_path = PathAndQuery::try_from(format!(
        "/{}/{}",
        method.parent_service().full_name(),
        method.name()
    ))?;

    let response_plan = ResponsePlan::compile(&output, response_field.as_ref()).map(Arc::new);
    Ok(RestRoute {
        http_method,
        template,
        method: method.clone(),
        body,
        response_body,
        server_streaming: method.is_server_streaming(),
        binding_index,
        path,
        path_fields,
        body_field,
        response_field,
        update_mask_field,
        grpc_path,
        response_plan,
    })
}

/// The HTTP method and template of a rule's `pattern` oneof.
fn pattern(rule: &DynamicMessage) -> anyhow::Result<(Method, String)> {
    for (name, method) in [
        ("get", Method::GET),
        ("put", Method::PUT),
        ("post", Method::POST),
        ("delete", Method::DELETE),
        ("patch", Method::PATCH),
    ] {
        if let Some(template) = string_field(rule, name) {
            return Ok((method, template));
        }
    }
    if rule.has_field_by_name("custom")
        && let Some(custom) = rule.get_field_by_name("custom")
        && let Some(custom) = custom.as_message()
    {
        let kind =
            string_field(custom, "kind").ok_or_else(|| anyhow!("custom pattern without kind"))?;
        let path =
            string_field(custom, "path").ok_or_else(|| anyhow!("custom pattern without path"))?;
        return Ok((Method::from_bytes(kind.as_bytes())?, path));
    }
    bail!("the rule has no pattern (get, put, post, delete, patch or custom)")
}
