//! The OpenAPI 3.1 document of the REST surface, generated once at start-up from the route
//! table and the descriptors (comments included), plus the Swagger UI / Redoc pages and their
//! embedded assets.
//!
//! - Every REST route is an operation: `operationId` `<Service>_<Method>`, tag = service name,
//!   summary (first sentence) and description from the method's proto comment.
//! - Path parameters: each template variable (`{name=shelves/*}` becomes `{name}`, a `:verb`
//!   stays literal), required.
//! - Query parameters: every request field not bound by the path or the body (nested fields
//!   as `a.b`), repeated ones as arrays (`?a=1&a=2`), enums as their short names; none for
//!   `body: "*"` routes.
//! - Request bodies: `body: "*"` → the request message without its path fields (inline);
//!   `body: "<field>"` → that field's input schema; for PATCH, the keys present are the update
//!   mask, so the resource's input schema is read as an update (see [`rules::Keys`]).
//! - Responses: 200 with the `response_body` field's schema (not nullable: services always
//!   set the field they answer) or the whole response message (server streams:
//!   `text/event-stream`, the message schema under `x-event-data-schema`), `default` → the
//!   gateway's `Error`.
//! - Security: `bearerAuth` (HTTP bearer, JWT) everywhere except the gateway's own public
//!   routes, which are listed with `security: []`.
//!
//! See [`schema`] for how messages map to JSON Schema.

pub mod assets;
mod comments;
mod pages;
mod rules;
pub mod schema;

use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

pub use pages::{OPENAPI_URL, docs_html, redoc_html};

use self::comments::{Comments, summary};
use self::rules::Keys;
use self::schema::{Direction, Schemas, describe};
use crate::rest::names::{enum_short_names, is_well_known};
use crate::rest::{RestApi, RestRoute};

/// The document's title, the reference API's name.
pub const TITLE: &str = "IntegrationDirector API";

/// How deep query parameters follow nested messages (`a.b.c`), which also stops cycles.
const MAX_QUERY_DEPTH: usize = 3;

/// Builds the whole document. Call once at start-up and serve the serialized bytes.
pub fn openapi_document(api: &RestApi, pool: &DescriptorPool) -> Value {
    let comments = Comments::new(pool);
    let mut schemas = Schemas::new(&comments);
    for route in api.routes() {
        if let (Some(mask), Some(body)) = (route.update_mask_field(), route.body_field())
            && let Kind::Message(resource) = body.kind()
        {
            schemas.read_as_update(&resource, mask);
        }
    }
    let mut paths: Map<String, Value> = Map::new();
    let mut tags: Vec<Value> = Vec::new();

    for (path, item) in public_paths() {
        paths.insert(path, item);
    }

    for route in api.routes() {
        let service = route.method.parent_service();
        if !tags.iter().any(|tag| tag["name"] == service.name()) {
            let mut tag = json!({ "name": service.name() });
            if let Some(comment) = comments.of(service) {
                tag["description"] = json!(comment);
            }
            tags.push(tag);
        }
        let operation = operation(route, &comments, &mut schemas);
        let item = paths
            .entry(route.openapi_path())
            .or_insert_with(|| json!({}));
        if let Value::Object(item) = item {
            item.insert(route.http_method.as_str().to_ascii_lowercase(), operation);
        }
    }
    tags.push(json!({ "name": "Gateway", "description": "The gateway's own public routes." }));

    let mut components: Map<String, Value> = schemas.into_components().into_iter().collect();
    components.insert("Error".into(), error_schema());
    components.insert("FieldViolation".into(), field_violation_schema());

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": env!("CARGO_PKG_VERSION"),
            "description": INFO_DESCRIPTION,
        },
        "servers": [{ "url": "/" }],
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A Supabase access token.",
                }
            },
        },
        "security": [{ "bearerAuth": [] }],
    })
}

const INFO_DESCRIPTION: &str = "REST/JSON surface of Director, transcoded from the gRPC \
contracts.\n\n\
- JSON keys are proto field names (`external_id`); lowerCamelCase (`externalId`) is also \
accepted on input. Unknown keys are refused with 400 naming them.\n\
- Every key is present in answers; unset values are `null`.\n\
- Enums are short lowercase names (`active`); inputs also accept the full name or number.\n\
- 64-bit integers are strings; inputs accept strings or numbers. Times are RFC 3339.\n\
- PATCH changes only the keys present in the body; `null` clears an optional field.\n\
- Errors share one shape (`Error`): `error`/`detail` message, gRPC `code` name, HTTP \
`status`, offending `fields`, `request_id`.\n\
- Server streams are Server-Sent Events: one `data:` line per message, `event: error` with an \
`Error` before the stream ends on failure.";

fn operation(route: &RestRoute, comments: &Comments, schemas: &mut Schemas<'_>) -> Value {
    let mut operation = Map::new();
    operation.insert("tags".into(), json!([route.method.parent_service().name()]));
    operation.insert("operationId".into(), json!(route.operation_id()));
    if let Some(comment) = comments.of(&route.method) {
        operation.insert("summary".into(), json!(summary(comment)));
        operation.insert("description".into(), json!(comment));
    }

    let mut parameters: Vec<Value> = route
        .path_parameters()
        .map(|(name, field)| {
            let mut schema = schemas.kind(&field.kind(), Direction::Input);
            inline_enum(&mut schema, field);
            rules::constrain(&mut schema, field, Keys::Plain);
            let mut parameter = json!({
                "name": name,
                "in": "path",
                "required": true,
                "schema": schema,
            });
            if let Some(comment) = comments.of(field) {
                parameter["description"] = json!(comment);
            }
            parameter
        })
        .collect();
    if route.body.as_deref() != Some("*") {
        let excluded: Vec<FieldDescriptor> = route.body_field().cloned().into_iter().collect();
        query_parameters(
            route,
            &route.method.input(),
            "",
            &excluded,
            comments,
            schemas,
            0,
            &mut parameters,
        );
    }
    if !parameters.is_empty() {
        operation.insert("parameters".into(), Value::Array(parameters));
    }

    if let Some(body) = request_body(route, comments, schemas) {
        operation.insert("requestBody".into(), body);
    }

    operation.insert(
        "responses".into(),
        json!({
            "200": success_response(route, comments, schemas),
            "default": {
                "description": "Error (the gateway's one error shape).",
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
            },
        }),
    );
    Value::Object(operation)
}

/// Query parameters for the fields of `message` (under `prefix`) not bound elsewhere.
#[allow(clippy::too_many_arguments)]
fn query_parameters(
    route: &RestRoute,
    message: &MessageDescriptor,
    prefix: &str,
    excluded: &[FieldDescriptor],
    comments: &Comments,
    schemas: &mut Schemas<'_>,
    depth: usize,
    out: &mut Vec<Value>,
) {
    let path_leaves: Vec<&FieldDescriptor> =
        route.path_parameters().map(|(_, field)| field).collect();
    for field in message.fields() {
        if excluded.contains(&field) || path_leaves.contains(&&field) || field.is_map() {
            continue;
        }
        let name = if prefix.is_empty() {
            field.name().to_owned()
        } else {
            format!("{prefix}.{}", field.name())
        };
        let kind = field.kind();
        if let Kind::Message(nested) = &kind
            && !is_well_known(nested)
        {
            if !field.is_list() && depth + 1 < MAX_QUERY_DEPTH {
                query_parameters(route, nested, &name, &[], comments, schemas, depth + 1, out);
            }
            continue;
        }
        if let Kind::Message(nested) = &kind
            && matches!(
                nested.name(),
                "Struct" | "Value" | "ListValue" | "Any" | "Empty"
            )
        {
            continue;
        }
        let mut single = schemas.kind(&kind, Direction::Input);
        inline_enum(&mut single, &field);
        let mut schema = if field.is_list() {
            json!({ "type": "array", "items": single })
        } else {
            single
        };
        rules::constrain(&mut schema, &field, Keys::Plain);
        if route.update_mask_field() == Some(&field)
            && let Some(body) = route.body_field()
            && let Kind::Message(resource) = body.kind()
        {
            schema = mask_parameter(&resource, &field);
        }
        if !field.is_list() && schema.get("anyOf").is_none() {
            // An empty query value (`?skip=`) means the parameter is absent.
            schema = json!({ "anyOf": [schema, { "const": "" }] });
        }
        let mut parameter = json!({
            "name": name,
            "in": "query",
            "required": rules::is_required(&field),
            "schema": schema,
        });
        if field.is_list() {
            parameter["style"] = json!("form");
            parameter["explode"] = json!(true);
        }
        let mut description = comments.of(&field).unwrap_or_default().to_owned();
        if route.update_mask_field() == Some(&field) {
            description.push_str(
                "\n\nOptional: by default the mask is the set of keys present in the body.",
            );
        }
        if !description.trim().is_empty() {
            parameter["description"] = json!(description.trim());
        }
        out.push(parameter);
    }
}

/// The `update_mask` query parameter of an update: comma-separated names of the resource's
/// fields that the mask's rules admit.
fn mask_parameter(resource: &MessageDescriptor, mask: &FieldDescriptor) -> Value {
    let names: Vec<String> = resource
        .fields()
        .map(|field| field.name().to_owned())
        .filter(|name| rules::mask_admits(mask, name))
        .collect();
    let one = format!("({})", names.join("|"));
    json!({ "type": "string", "pattern": format!("^{one}(,{one})*$") })
}

/// Query and path parameters list an enum's short names inline (no `null`: leave it out),
/// then its numbers, which proto3 JSON accepts as well.
fn inline_enum(schema: &mut Value, field: &FieldDescriptor) {
    if let Kind::Enum(enum_desc) = field.kind() {
        let mut values: Vec<Value> = enum_short_names(&enum_desc)
            .into_iter()
            .map(Value::String)
            .collect();
        values.extend(
            enum_desc
                .values()
                .map(|value| Value::String(value.number().to_string())),
        );
        *schema = json!({ "type": "string", "enum": values });
    }
}

fn request_body(
    route: &RestRoute,
    comments: &Comments,
    schemas: &mut Schemas<'_>,
) -> Option<Value> {
    let (schema, description) = match (route.body.as_deref(), route.body_field()) {
        (Some("*"), _) => {
            let path_leaves: Vec<FieldDescriptor> = route
                .path_parameters()
                .map(|(_, field)| field.clone())
                .filter(|field| *field.parent_message() == route.method.input())
                .collect();
            let schema = schemas.object(&route.method.input(), Direction::Input, &path_leaves);
            (schema, None)
        }
        (Some(_), Some(field)) => {
            let single = schemas.kind(&field.kind(), Direction::Input);
            let mut schema = if field.is_list() {
                json!({ "type": "array", "items": single })
            } else {
                single
            };
            if let Some(comment) = comments.of(field) {
                describe(&mut schema, comment);
            }
            let description = route.update_mask_field().map(|_| {
                "Only the keys present are changed (they become the update mask); `null` \
                 clears an optional field."
                    .to_owned()
            });
            (schema, description)
        }
        _ => return None,
    };
    // The gateway reads a missing body (and `null`) as an empty message: the body is required
    // only when its rules require a field, and else `null` is a valid body too.
    let required = schema.get("required").is_some();
    let schema = if required {
        schema
    } else {
        schema::nullable(schema)
    };
    let mut body = json!({
        "required": required,
        "content": { "application/json": { "schema": schema } },
    });
    if let Some(description) = description {
        body["description"] = json!(description);
    }
    Some(body)
}

fn success_response(route: &RestRoute, comments: &Comments, schemas: &mut Schemas<'_>) -> Value {
    let output = route.method.output();
    let (schema, description) = match route.response_field() {
        // The selected field itself, not nullable: services always set what they answer.
        Some(field) => {
            let single = schemas.kind(&field.kind(), Direction::Output);
            let schema = if field.is_list() {
                json!({ "type": "array", "items": single })
            } else {
                single
            };
            (schema, comments.of(field).map(summary))
        }
        None => (
            schemas.message(&output, Direction::Output),
            comments.of(&output).map(summary),
        ),
    };
    let description = description.unwrap_or_else(|| "OK".to_owned());
    if route.server_streaming {
        return json!({
            "description": format!(
                "Server-Sent Events. Each event's `data` is one JSON message: {description} \
                 An upstream failure is sent as `event: error` with an `Error`, then the stream ends. \
                 A comment line keeps the stream alive every 15 s."
            ),
            "content": {
                "text/event-stream": {
                    "schema": { "type": "string" },
                    "x-event-data-schema": schema,
                }
            },
        });
    }
    json!({
        "description": description,
        "content": { "application/json": { "schema": schema } },
    })
}

/// The gateway's own routes: no authentication.
fn public_paths() -> Vec<(String, Value)> {
    let open = |summary: &str, operation_id: &str, content_type: &str, schema: Value| {
        json!({
            "get": {
                "tags": ["Gateway"],
                "operationId": operation_id,
                "summary": summary,
                "security": [],
                "responses": {
                    "200": {
                        "description": summary,
                        "content": { content_type: { "schema": schema } },
                    },
                },
            }
        })
    };
    let mut ready = open(
        "Readiness: every service and its database answer",
        "Gateway_Ready",
        "application/json",
        json!({ "type": "object", "additionalProperties": true }),
    );
    ready["get"]["responses"]["503"] = json!({
        "description": "A service or its database does not answer; the body names each state.",
        "content": { "application/json": { "schema": { "type": "object", "additionalProperties": true } } },
    });
    vec![
        (
            "/api".to_owned(),
            open(
                "API banner",
                "Gateway_Banner",
                "application/json",
                json!({
                    "type": "object",
                    "properties": {
                        "message": { "type": "string", "const": TITLE },
                        "docs": { "type": "string" },
                    },
                    "required": ["message", "docs"],
                }),
            ),
        ),
        (
            "/api/health".to_owned(),
            open(
                "Liveness (no upstream calls)",
                "Gateway_Health",
                "application/json",
                json!({
                    "type": "object",
                    "properties": {
                        "status": { "type": "string", "const": "healthy" },
                        "service": { "type": "string" },
                    },
                    "required": ["status", "service"],
                }),
            ),
        ),
        ("/api/health/ready".to_owned(), ready),
        (
            OPENAPI_URL.to_owned(),
            open(
                "This OpenAPI document",
                "Gateway_OpenApi",
                "application/json",
                json!({ "type": "object" }),
            ),
        ),
        (
            "/api/docs".to_owned(),
            open(
                "Swagger UI",
                "Gateway_Docs",
                "text/html",
                json!({ "type": "string" }),
            ),
        ),
        (
            "/api/redoc".to_owned(),
            open(
                "Redoc",
                "Gateway_Redoc",
                "text/html",
                json!({ "type": "string" }),
            ),
        ),
    ]
}

/// `crate::error::ApiError`'s JSON.
fn error_schema() -> Value {
    json!({
        "type": "object",
        "description": "Every error answer, from the gateway or a service.",
        "properties": {
            "error": { "type": "string", "description": "Human-readable message." },
            "detail": { "type": "string", "description": "The same message (FastAPI's key)." },
            "code": {
                "type": "string",
                "description": "The gRPC status code name.",
                "enum": [
                    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                    "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
                    "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
                ],
            },
            "status": { "type": "integer", "description": "The HTTP status." },
            "fields": {
                "type": "array",
                "description": "Offending fields of a validation failure.",
                "items": { "$ref": "#/components/schemas/FieldViolation" },
            },
            "request_id": { "type": ["string", "null"], "description": "The request's id, for support." },
        },
        "required": ["error", "detail", "code", "status", "fields", "request_id"],
    })
}

fn field_violation_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "field": { "type": "string", "description": "The field as the client sent it (dotted for nested fields)." },
            "description": { "type": "string", "description": "What is wrong with it." },
        },
        "required": ["field", "description"],
    })
}
