//! Event ids of server streams, by two field-name conventions (the gateway knows no
//! particular service): a streamed response message's top-level `event_id` names the event,
//! and a request's top-level `after_event_id` asks for what came after it.
//!
//! Two layers read them: the REST layer's Server-Sent Events (the SSE id of each event, and
//! `Last-Event-ID` filling `after_event_id`) and the reopening of a stream on another replica
//! (`resume`, which continues after the last event forwarded). Both sit above this leaf, so
//! neither depends on the other for the conventions.

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value};

/// The response field whose value becomes the SSE event id.
pub const EVENT_ID_FIELD: &str = "event_id";

/// The request field a `Last-Event-ID` header fills on server-streaming routes.
pub const AFTER_EVENT_ID_FIELD: &str = "after_event_id";

/// A top-level, singular string or integer field named `name`.
pub(crate) fn convention_field(message: &MessageDescriptor, name: &str) -> Option<FieldDescriptor> {
    let field = message.get_field_by_name(name)?;
    let usable = !field.is_list()
        && !field.is_map()
        && matches!(
            field.kind(),
            Kind::String
                | Kind::Int32
                | Kind::Sint32
                | Kind::Sfixed32
                | Kind::Int64
                | Kind::Sint64
                | Kind::Sfixed64
                | Kind::Uint32
                | Kind::Fixed32
                | Kind::Uint64
                | Kind::Fixed64
        );
    usable.then_some(field)
}

/// The message's `event_id` as SSE id text, when it is set and fits on one SSE line.
pub(crate) fn event_id(message: &DynamicMessage, field: &FieldDescriptor) -> Option<String> {
    if !message.has_field(field) {
        return None;
    }
    let id = match message.get_field(field).as_ref() {
        Value::String(text) => text.clone(),
        Value::I32(number) => number.to_string(),
        Value::I64(number) => number.to_string(),
        Value::U32(number) => number.to_string(),
        Value::U64(number) => number.to_string(),
        _ => return None,
    };
    if id.is_empty() {
        return None;
    }
    if id.contains(['\r', '\n', '\0']) {
        tracing::warn!("a streamed event_id has a line break or NUL; sent without an SSE id");
        return None;
    }
    Some(id)
}
