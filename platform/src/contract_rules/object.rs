//! Objects held in `google.protobuf.Value` fields that declare the message they must be
//! (`(director.contract.v1.object_of)`): a Value is how a contract tells `null` from absent,
//! and this module reads the object in it as its message's JSON form, so the message's rules
//! apply to it as to any other field.
//!
//! A key the message does not have, or a value not of its field's JSON type, is a violation
//! named by its path (`vessey.extra`, `twilio.from_number`); the value itself may only be the
//! object or `null` (the field's own path otherwise).

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::Value as Json;

use crate::error::FieldViolation;

/// The sentence for a value that is neither an object nor `null`.
pub const NOT_AN_OBJECT: &str = "must be an object or null";

/// The message `object` (a `google.protobuf.Value`'s JSON) reads as, `descriptor`, with a
/// violation in `found` for each key it cannot take. `None` for `null`, and for anything but
/// an object or `null` (a violation at `path`).
pub fn read(
    object: &Json,
    descriptor: &MessageDescriptor,
    path: &str,
    found: &mut Vec<FieldViolation>,
) -> Option<DynamicMessage> {
    let entries = match object {
        Json::Null => return None,
        Json::Object(entries) => entries,
        _ => {
            found.push(FieldViolation::new(path, NOT_AN_OBJECT));
            return None;
        }
    };
    let mut message = DynamicMessage::new(descriptor.clone());
    for (key, value) in entries {
        let Some(field) = descriptor
            .get_field_by_json_name(key)
            .or_else(|| descriptor.get_field_by_name(key))
        else {
            found.push(FieldViolation::new(
                format!("{path}.{key}"),
                format!(
                    "is not a field of this object ({})",
                    field_names(descriptor)
                ),
            ));
            continue;
        };
        // One key at a time, so a bad value is named by its own path.
        let single = Json::Object([(key.clone(), value.clone())].into_iter().collect());
        match DynamicMessage::deserialize(descriptor.clone(), single) {
            Ok(one) if one.has_field(&field) => {
                message.set_field(&field, one.get_field(&field).into_owned());
            }
            // `null`: the field keeps its zero value, as in the message's JSON form.
            Ok(_) => {}
            Err(_) => found.push(FieldViolation::new(
                format!("{path}.{}", field.name()),
                json_type(&field),
            )),
        }
    }
    Some(message)
}

/// `api_url, api_key`: the keys an object of `descriptor` may hold.
fn field_names(descriptor: &MessageDescriptor) -> String {
    let names: Vec<String> = descriptor
        .fields()
        .map(|field| field.name().to_owned())
        .collect();
    names.join(", ")
}

/// The sentence for a value that is not of `field`'s JSON type.
fn json_type(field: &FieldDescriptor) -> String {
    if field.is_map() {
        return "must be an object".to_owned();
    }
    if field.is_list() {
        return "must be a list".to_owned();
    }
    match field.kind() {
        Kind::String => "must be a string".to_owned(),
        Kind::Bytes => "must be base64 text".to_owned(),
        Kind::Bool => "must be true or false".to_owned(),
        Kind::Enum(declared) => format!("must be one of the values of {}", declared.name()),
        Kind::Message(_) => "must be an object".to_owned(),
        _ => "must be a number".to_owned(),
    }
}
