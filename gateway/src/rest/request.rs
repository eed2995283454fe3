//! Builds the gRPC request message of a matched route from the path variables, the query
//! string and the JSON body, following the `google.api.http` rules:
//!
//! - `body: "*"`: the JSON object fills the whole request message (an empty body is `{}`);
//!   query parameters are not accepted (every field comes from the path or the body).
//! - `body: "<field>"`: the JSON is that field's value; the other fields come from the query.
//! - no body: every non-path field may come from the query; a request body is ignored.
//! - Path variables are set last. A body that gives a path-bound field a different value is
//!   a 400 naming it.
//! - Query parameters: `a=1&a=2` for repeated fields, `a.b=x` for nested ones, enums by short
//!   name, booleans as `true`/`false`, Timestamps RFC 3339, FieldMask as `a,b`. An empty value
//!   (`?status=`) counts as absent, as HTML forms and URL builders produce them. Keys that
//!   name no field are reported all together (400 "Unknown query parameter(s): …").
//! - Update masks: when `body` names a field and the request has a
//!   `google.protobuf.FieldMask update_mask` that the client did not send (`?update_mask=`),
//!   the mask is the set of top-level keys present in the body object — keys whose value is
//!   `null` included, so `null` clears an optional field.
//! - `Last-Event-ID` (server streams, Server-Sent Events): when the request message has a
//!   top-level string or integer field `after_event_id`, the header sets it, converted like a
//!   query value (a bad value is a 400 naming `after_event_id`), unless the query, the body
//!   or the path gives it explicitly. See the resume conventions in `sse`.

use std::collections::HashSet;

use http::HeaderValue;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage as _, Value,
};
use serde_json::Value as Json;

use super::json_in::{Mode, Problems, field_value, fill_message, set_checked, single_value};
use super::names::{find_field, is_well_known};
use super::routes::RestRoute;
use super::sse::resume_field;
use super::template::percent_decode;
use crate::error::ApiError;

/// The request message for `route`.
/// `path_values` are the decoded path variable values in template order; `body` is the raw
/// request body (empty when none was sent); `last_event_id` the `Last-Event-ID` header.
pub fn build_request(
    route: &RestRoute,
    path_values: &[String],
    query: Option<&str>,
    body: &[u8],
    last_event_id: Option<&HeaderValue>,
) -> Result<DynamicMessage, ApiError> {
    let input = route.method.input();
    let mut message = DynamicMessage::new(input.clone());
    let mut problems = Problems::default();

    let json = parse_body(route, body)?;
    let mut body_keys: Option<Vec<String>> = None;
    match (route.body.as_deref(), &route.body_field) {
        (Some("*"), _) => {
            let empty = serde_json::Map::new();
            let object = match &json {
                None | Some(Json::Null) => &empty,
                Some(Json::Object(object)) => object,
                Some(_) => {
                    return Err(ApiError::invalid_argument(
                        "Request body must be a JSON object",
                    ));
                }
            };
            fill_message(&mut message, object, "", &mut problems);
        }
        (Some(_), Some(field)) => {
            // No body (or `null`) changes nothing: an empty update mask, like `{}`.
            body_keys = Some(Vec::new());
            if let Some(json) = json.as_ref().filter(|json| !json.is_null()) {
                let is_message =
                    matches!(field.kind(), Kind::Message(_)) && !field.is_list() && !field.is_map();
                if is_message && !json.is_object() && !is_string_form(field) {
                    return Err(ApiError::invalid_argument(
                        "Request body must be a JSON object",
                    ));
                }
                if let Json::Object(object) = json {
                    body_keys = Some(object.keys().cloned().collect());
                }
                let prefix = if is_message { "" } else { field.name() };
                if let Some(value) = field_value(field, json, prefix, Mode::Json, &mut problems) {
                    set_checked(&mut message, field, value, field.name(), &mut problems);
                }
            }
        }
        _ => {}
    }

    let query_fields = apply_query(route, &input, &mut message, query, &mut problems)?;
    let mask_from_query = route
        .update_mask_field
        .as_ref()
        .is_some_and(|mask| query_fields.contains(mask.name()));
    if let Some(header) = last_event_id {
        apply_last_event_id(route, &mut message, &query_fields, header, &mut problems);
    }

    for ((variable, chain), value) in route
        .path
        .variables()
        .iter()
        .zip(&route.path_fields)
        .zip(path_values)
    {
        set_path_value(
            &mut message,
            chain,
            value,
            &variable.dotted(),
            &mut problems,
        );
    }

    if let (Some(mask_field), Some(keys), false) =
        (&route.update_mask_field, body_keys, mask_from_query)
        && let Some(body_field) = &route.body_field
        && let Kind::Message(body_message) = body_field.kind()
    {
        set_update_mask(&mut message, mask_field, &body_message, &keys);
    }

    problems.into_result()?;
    Ok(message)
}

/// Parses the body as JSON when the route takes one; whitespace only counts as no body.
fn parse_body(route: &RestRoute, body: &[u8]) -> Result<Option<Json>, ApiError> {
    if route.body.is_none() || body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|error| ApiError::invalid_argument(format!("Malformed JSON body: {error}")))
}

/// Well-known types whose JSON form is a string (a Timestamp body field, say).
fn is_string_form(field: &FieldDescriptor) -> bool {
    matches!(field.kind(), Kind::Message(m) if is_well_known(&m) && m.name() != "Struct" && m.name() != "Empty")
}

/// Applies the query string; returns the dotted proto names of the singular fields it gave.
fn apply_query(
    route: &RestRoute,
    input: &MessageDescriptor,
    message: &mut DynamicMessage,
    query: Option<&str>,
    problems: &mut Problems,
) -> Result<HashSet<String>, ApiError> {
    let mut seen: HashSet<String> = HashSet::new();
    let Some(query) = query.filter(|query| !query.is_empty()) else {
        return Ok(seen);
    };
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let (Some(key), Some(value)) = (
            percent_decode(raw_key, true),
            percent_decode(raw_value, true),
        ) else {
            return Err(ApiError::invalid_argument(format!(
                "Query parameter {raw_key:?} is not valid percent-encoded UTF-8"
            )));
        };
        if value.is_empty() {
            continue;
        }
        let Some(chain) = resolve_query_key(input, &key) else {
            problems.unknown_param(key.into_owned());
            continue;
        };
        if route.body.as_deref() == Some("*")
            || route
                .body_field
                .as_ref()
                .is_some_and(|body| chain[0] == *body)
        {
            problems.invalid(key.as_ref(), "must be sent in the request body");
            continue;
        }
        if route.is_path_bound(&chain) {
            problems.invalid(key.as_ref(), "is given by the path");
            continue;
        }
        let Some(leaf) = chain.last() else { continue };
        let canonical: String = chain
            .iter()
            .map(FieldDescriptor::name)
            .collect::<Vec<_>>()
            .join(".");
        if !leaf.is_list() && !seen.insert(canonical) {
            problems.invalid(key.as_ref(), "given more than once");
            continue;
        }
        let text = Json::String(value.into_owned());
        let Some(converted) = single_value(&leaf.kind(), &text, &key, Mode::Text, problems) else {
            continue;
        };
        let Some(target) = parent_of(message, &chain) else {
            problems.invalid(key.as_ref(), "cannot be set from the query");
            continue;
        };
        if leaf.is_list() {
            if let Value::List(items) = target.get_field_mut(leaf) {
                items.push(converted);
            }
        } else {
            set_checked(target, leaf, converted, &key, problems);
        }
    }
    Ok(seen)
}

/// Sets the route's `after_event_id` from a `Last-Event-ID` header, unless the query
/// (`query_fields`), the body or the path gives it; an empty header counts as absent.
fn apply_last_event_id(
    route: &RestRoute,
    message: &mut DynamicMessage,
    query_fields: &HashSet<String>,
    header: &HeaderValue,
    problems: &mut Problems,
) {
    let Some(field) = resume_field(route) else {
        return;
    };
    let name = field.name();
    if query_fields.contains(name)
        || message.has_field(&field)
        || route.is_path_bound(std::slice::from_ref(&field))
    {
        return;
    }
    let Ok(text) = std::str::from_utf8(header.as_bytes()) else {
        problems.invalid(name, "the Last-Event-ID header is not valid UTF-8");
        return;
    };
    if text.is_empty() {
        return;
    }
    let json = Json::String(text.to_owned());
    if let Some(value) = single_value(&field.kind(), &json, name, Mode::Text, problems) {
        set_checked(message, &field, value, name, problems);
    }
}

/// Resolves `a.b.c` (proto or JSON names) to a chain of fields ending in a field settable from
/// text: a scalar, an enum, or a well-known type with a string form; lists of those too.
fn resolve_query_key(input: &MessageDescriptor, key: &str) -> Option<Vec<FieldDescriptor>> {
    let parts: Vec<&str> = key.split('.').collect();
    let mut chain = Vec::with_capacity(parts.len());
    let mut message = input.clone();
    for (index, part) in parts.iter().enumerate() {
        let field = find_field(&message, part)?;
        let is_leaf = index + 1 == parts.len();
        if field.is_map() {
            return None;
        }
        match field.kind() {
            Kind::Message(next) if !is_leaf => {
                if field.is_list() || is_well_known(&next) {
                    return None;
                }
                message = next;
            }
            Kind::Message(leaf) if is_leaf && !is_well_known(&leaf) => return None,
            _ if !is_leaf => return None,
            _ => {}
        }
        chain.push(field);
    }
    Some(chain)
}

/// The message holding the last field of `chain`, creating the messages on the way.
fn parent_of<'m>(
    message: &'m mut DynamicMessage,
    chain: &[FieldDescriptor],
) -> Option<&'m mut DynamicMessage> {
    let (_, parents) = chain.split_last()?;
    let mut current = message;
    for field in parents {
        current = current.get_field_mut(field).as_message_mut()?;
    }
    Some(current)
}

/// The current value of a nested field, if every message on the way and the field are set.
fn nested_value<'m>(message: &'m DynamicMessage, chain: &[FieldDescriptor]) -> Option<&'m Value> {
    let mut current = message;
    let mut found = None;
    for (index, field) in chain.iter().enumerate() {
        let (_, value) = current.fields().find(|(set, _)| set == field)?;
        if index + 1 == chain.len() {
            found = Some(value);
        } else {
            current = value.as_message()?;
        }
    }
    found
}

fn set_path_value(
    message: &mut DynamicMessage,
    chain: &[FieldDescriptor],
    text: &str,
    name: &str,
    problems: &mut Problems,
) {
    let Some(leaf) = chain.last() else { return };
    let Some(value) = single_value(
        &leaf.kind(),
        &Json::String(text.to_owned()),
        name,
        Mode::Text,
        problems,
    ) else {
        return;
    };
    if let Some(existing) = nested_value(message, chain)
        && *existing != value
    {
        problems.invalid(name, "the body gives a different value than the path");
        return;
    }
    match parent_of(message, chain) {
        Some(parent) => set_checked(parent, leaf, value, name, problems),
        None => problems.invalid(name, "cannot be set from the path"),
    }
}

/// `update_mask` = the body keys that name fields of the body message, as proto names, in
/// declaration order (unknown keys are already reported).
fn set_update_mask(
    message: &mut DynamicMessage,
    mask_field: &FieldDescriptor,
    body_message: &MessageDescriptor,
    keys: &[String],
) {
    let mut fields: Vec<FieldDescriptor> = keys
        .iter()
        .filter_map(|key| find_field(body_message, key))
        .collect();
    fields.sort_by_key(FieldDescriptor::number);
    fields.dedup();
    let Kind::Message(mask_descriptor) = mask_field.kind() else {
        return;
    };
    let mut mask = DynamicMessage::new(mask_descriptor);
    if let Some(paths) = mask.descriptor().get_field_by_name("paths") {
        let names = fields
            .iter()
            .map(|field| Value::String(field.name().to_owned()))
            .collect();
        mask.set_field(&paths, Value::List(names));
    }
    message.set_field(mask_field, Value::Message(mask));
}
