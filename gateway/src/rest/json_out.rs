//! `DynamicMessage` → JSON as the reference API's clients expect it:
//! - proto field names, in declaration order;
//! - EVERY field present: fields with presence (messages, `optional`, oneof members) that are
//!   unset are `null`, other scalars carry their default; recursively, lists included;
//! - enums as short lowercase names (`active`), the `_UNSPECIFIED` zero value as `null`, an
//!   unknown number as the number;
//! - 64-bit integers as strings, non-finite floats as `"NaN"`/`"Infinity"` (proto3 JSON);
//! - bytes as standard base64; well-known types in their proto3 JSON form (Timestamp RFC 3339
//!   in UTC with `Z`, FieldMask as snake_case `"a,b"`).
//!
//! Rendering streams straight into the serializer (no intermediate `serde_json::Value`).

use std::borrow::Cow;

use base64::Engine as _;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, ReflectMessage as _, SerializeOptions, Value,
};
use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use super::names::{NULL_VALUE, enum_value_is_null, is_well_known, short_enum_name};

/// A whole message rendered as a JSON object.
#[derive(Debug, Clone, Copy)]
pub struct MessageJson<'a>(pub &'a DynamicMessage);

/// One field of a message rendered as the field's JSON value (for `response_body`).
#[derive(Debug, Clone, Copy)]
pub struct FieldJson<'a> {
    /// The message holding the field.
    pub message: &'a DynamicMessage,
    /// The field to render.
    pub field: &'a FieldDescriptor,
}

/// Renders `message`, or only `field` of it when a `response_body` is selected.
pub fn render(
    message: &DynamicMessage,
    field: Option<&FieldDescriptor>,
) -> Result<Vec<u8>, serde_json::Error> {
    match field {
        Some(field) => serde_json::to_vec(&FieldJson { message, field }),
        None => serde_json::to_vec(&MessageJson(message)),
    }
}

impl Serialize for MessageJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let message = self.0;
        let descriptor = message.descriptor();
        if is_well_known(&descriptor) {
            return serialize_well_known(message, serializer);
        }
        let mut map = serializer.serialize_map(Some(descriptor.fields().len()))?;
        for field in descriptor.fields() {
            map.serialize_entry(
                field.name(),
                &FieldJson {
                    message,
                    field: &field,
                },
            )?;
        }
        map.end()
    }
}

impl Serialize for FieldJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Self { message, field } = *self;
        if !field.is_list()
            && !field.is_map()
            && field.supports_presence()
            && !message.has_field(field)
        {
            return serializer.serialize_none();
        }
        let value: Cow<'_, Value> = message.get_field(field);
        let kind = field.kind();
        match value.as_ref() {
            Value::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&ValueJson {
                        kind: &kind,
                        value: item,
                    })?;
                }
                seq.end()
            }
            Value::Map(entries) => {
                let value_kind = match &kind {
                    Kind::Message(entry) => entry.map_entry_value_field().kind(),
                    _ => return Err(S::Error::custom("map field without an entry message")),
                };
                let mut sorted: Vec<(&MapKey, &Value)> = entries.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(b.0));
                let mut map = serializer.serialize_map(Some(sorted.len()))?;
                for (key, item) in sorted {
                    map.serialize_entry(
                        &map_key_text(key),
                        &ValueJson {
                            kind: &value_kind,
                            value: item,
                        },
                    )?;
                }
                map.end()
            }
            single => ValueJson {
                kind: &kind,
                value: single,
            }
            .serialize(serializer),
        }
    }
}

/// One non-list value of `kind` as JSON (a map's value, say).
pub(super) fn value_json(kind: &Kind, value: &Value) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&ValueJson { kind, value })
}

/// One non-list value of a known kind.
struct ValueJson<'a> {
    kind: &'a Kind,
    value: &'a Value,
}

impl Serialize for ValueJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.value {
            Value::Bool(flag) => serializer.serialize_bool(*flag),
            Value::I32(n) => serializer.serialize_i32(*n),
            Value::U32(n) => serializer.serialize_u32(*n),
            Value::I64(n) => serializer.collect_str(n),
            Value::U64(n) => serializer.collect_str(n),
            Value::F32(n) => serialize_float(f64::from(*n), serializer),
            Value::F64(n) => serialize_float(*n, serializer),
            Value::String(text) => serializer.serialize_str(text),
            Value::Bytes(bytes) => {
                serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            Value::EnumNumber(number) => match self.kind {
                Kind::Enum(enum_desc) => {
                    if enum_desc.full_name() == NULL_VALUE {
                        return serializer.serialize_none();
                    }
                    match enum_desc.get_value(*number) {
                        Some(value) if enum_value_is_null(&value) => serializer.serialize_none(),
                        Some(value) => serializer.serialize_str(&short_enum_name(&value)),
                        None => serializer.serialize_i32(*number),
                    }
                }
                _ => serializer.serialize_i32(*number),
            },
            Value::Message(message) => MessageJson(message).serialize(serializer),
            Value::List(_) | Value::Map(_) => {
                Err(S::Error::custom("nested list or map outside a field"))
            }
        }
    }
}

fn serialize_float<S: Serializer>(value: f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.is_nan() {
        serializer.serialize_str("NaN")
    } else if value == f64::INFINITY {
        serializer.serialize_str("Infinity")
    } else if value == f64::NEG_INFINITY {
        serializer.serialize_str("-Infinity")
    } else {
        serializer.serialize_f64(value)
    }
}

pub(super) fn map_key_text(key: &MapKey) -> String {
    match key {
        MapKey::Bool(flag) => flag.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(text) => text.clone(),
    }
}

/// Well-known types: FieldMask as snake_case paths (our JSON uses proto names), the rest by
/// prost-reflect's proto3 JSON serializer (Timestamp → RFC 3339 UTC `Z`, Duration → `"1.5s"`,
/// wrappers → their scalar, Struct/Value → plain JSON, Empty → `{}`).
fn serialize_well_known<S: Serializer>(
    message: &DynamicMessage,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    if message.descriptor().full_name() == "google.protobuf.FieldMask" {
        let paths = message
            .get_field_by_name("paths")
            .map(|value| match value.as_ref() {
                Value::List(items) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
                _ => String::new(),
            })
            .unwrap_or_default();
        return serializer.serialize_str(&paths);
    }
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .stringify_64_bit_integers(true);
    message.serialize_with_options(serializer, &options)
}
