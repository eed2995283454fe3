//! JSON (and query/path text) → `DynamicMessage`, written against the descriptors by hand so
//! every problem names the field the client sent: unknown keys are collected (not just the
//! first), and each bad value gets its own violation.
//!
//! Rules (proto3 JSON, plus what the reference API's clients send):
//! - keys are proto names (`external_id`) or `json_name`s (`externalId`); both at once is an
//!   error;
//! - `null` leaves a field unset (except `google.protobuf.Value`, where it is a JSON null);
//! - enums: the short lowercase name (`active`), the full value name
//!   (`DRIVER_STATUS_ACTIVE`) or the number;
//! - 64-bit integers from numbers or strings; floats also from `"NaN"`, `"Infinity"`;
//! - bytes as base64 (standard or URL-safe, padding optional);
//! - well-known types in their proto3 JSON form (Timestamp RFC 3339, Duration `"1.5s"`,
//!   FieldMask `"a,b"` in snake or camel case, wrappers as their scalar, Struct/Value/…).
//!
//! Values taken from the URL (path variables, query parameters) are text: they go through the
//! same conversion in [`Mode::Text`], which also accepts `true`/`false` for booleans.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage as _, Value,
};
use serde_json::Value as Json;

use super::names::{NULL_VALUE, camel_to_snake, enum_short_names, find_field, parse_enum_value};
use crate::error::{ApiError, FieldViolation};

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A JSON body: types must match (numbers may still be strings, per proto3 JSON).
    Json,
    /// Text from the URL: every value arrives as a string.
    Text,
}

/// At most this many problems are named in one 400 answer; the answer says how many there
/// were in all (a body of 60,000 unknown keys must not be echoed back whole).
pub const MAX_PROBLEMS_LISTED: usize = 20;

/// Longest field name or description echoed back, in bytes.
const MAX_ECHOED_BYTES: usize = 128;

/// The problems found in one request, reported together in one 400 answer: the first
/// [`MAX_PROBLEMS_LISTED`] and how many there were.
#[derive(Debug, Default)]
pub struct Problems {
    unknown_fields: Vec<String>,
    unknown_params: Vec<String>,
    invalid: Vec<FieldViolation>,
    total: usize,
}

/// `text`, cut to at most [`MAX_ECHOED_BYTES`] (on a character boundary) with `…`.
fn echoed(mut text: String) -> String {
    if text.len() > MAX_ECHOED_BYTES {
        let mut end = MAX_ECHOED_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

impl Problems {
    /// Counts one problem; whether it is still to be listed.
    fn listed(&mut self) -> bool {
        self.total += 1;
        self.total <= MAX_PROBLEMS_LISTED
    }

    /// A body key that names no field.
    pub fn unknown_field(&mut self, path: String) {
        if self.listed() {
            self.unknown_fields.push(echoed(path));
        }
    }

    /// A query parameter that names no field.
    pub fn unknown_param(&mut self, name: String) {
        if self.listed() {
            self.unknown_params.push(echoed(name));
        }
    }

    /// A value that cannot be used for `path`.
    pub fn invalid(&mut self, path: impl Into<String>, description: impl Into<String>) {
        if self.listed() {
            self.invalid.push(FieldViolation {
                field: echoed(path.into()),
                description: echoed(description.into()),
            });
        }
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// `Ok` when nothing was found, else one INVALID_ARGUMENT naming the first
    /// [`MAX_PROBLEMS_LISTED`] problems, e.g. `Unknown field(s): colour, size` with one
    /// violation per field, and, when there were more, how many in all.
    pub fn into_result(self) -> Result<(), ApiError> {
        if self.is_empty() {
            return Ok(());
        }
        let total = self.total;
        let mut parts = Vec::new();
        let mut fields = Vec::new();
        if !self.unknown_fields.is_empty() {
            parts.push(format!(
                "Unknown field(s): {}",
                self.unknown_fields.join(", ")
            ));
            fields.extend(self.unknown_fields.into_iter().map(|field| FieldViolation {
                field,
                description: "Unknown field".to_owned(),
            }));
        }
        if !self.unknown_params.is_empty() {
            parts.push(format!(
                "Unknown query parameter(s): {}",
                self.unknown_params.join(", ")
            ));
            fields.extend(self.unknown_params.into_iter().map(|field| FieldViolation {
                field,
                description: "Unknown query parameter".to_owned(),
            }));
        }
        for violation in &self.invalid {
            parts.push(format!(
                "Invalid value for {}: {}",
                violation.field, violation.description
            ));
        }
        fields.extend(self.invalid);
        if total > fields.len() {
            parts.push(format!(
                "{total} problems in all, the first {} listed",
                fields.len()
            ));
        }
        Err(ApiError::invalid_argument(parts.join("; ")).with_fields(fields))
    }
}

/// `prefix.name`, or `name` at the top level.
pub fn join_path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Sets the fields of `message` from a JSON object. Problems are named `prefix.key` with the
/// key as the client wrote it.
pub fn fill_message(
    message: &mut DynamicMessage,
    object: &serde_json::Map<String, Json>,
    prefix: &str,
    problems: &mut Problems,
) {
    let descriptor = message.descriptor();
    let mut seen: HashMap<u32, &str> = HashMap::new();
    let mut oneofs_set: HashMap<String, &str> = HashMap::new();
    for (key, json) in object {
        let path = join_path(prefix, key);
        let Some(field) = find_field(&descriptor, key) else {
            problems.unknown_field(path);
            continue;
        };
        if let Some(previous) = seen.insert(field.number(), key) {
            problems.invalid(path, format!("the same field as \"{previous}\""));
            continue;
        }
        if json.is_null() && !keeps_null(&field) {
            continue;
        }
        if let Some(oneof) = field
            .containing_oneof()
            .filter(|oneof| !oneof.is_synthetic())
            && let Some(other) = oneofs_set.insert(oneof.name().to_owned(), key)
        {
            problems.invalid(
                path,
                format!("only one of \"{other}\" and \"{key}\" may be set"),
            );
            continue;
        }
        if let Some(value) = field_value(&field, json, &path, Mode::Json, problems) {
            set_checked(message, &field, value, &path, problems);
        }
    }
}

/// Converts a JSON value for `field`, whatever its cardinality (list, map or single).
pub fn field_value(
    field: &FieldDescriptor,
    json: &Json,
    path: &str,
    mode: Mode,
    problems: &mut Problems,
) -> Option<Value> {
    if field.is_map() {
        let Json::Object(object) = json else {
            problems.invalid(path, "expected a JSON object");
            return None;
        };
        let entry = match field.kind() {
            Kind::Message(entry) => entry,
            _ => return None,
        };
        let key_kind = entry.map_entry_key_field().kind();
        let value_kind = entry.map_entry_value_field().kind();
        let mut map = HashMap::with_capacity(object.len());
        for (key, item) in object {
            let item_path = join_path(path, key);
            let Some(map_key) = map_key(&key_kind, key) else {
                problems.invalid(item_path, "invalid map key");
                continue;
            };
            if let Some(value) = single_value(&value_kind, item, &item_path, mode, problems) {
                map.insert(map_key, value);
            }
        }
        return Some(Value::Map(map));
    }
    if field.is_list() {
        let kind = field.kind();
        return match json {
            Json::Array(items) => {
                let values: Vec<Value> = items
                    .iter()
                    .enumerate()
                    .filter_map(|(index, item)| {
                        single_value(&kind, item, &format!("{path}[{index}]"), mode, problems)
                    })
                    .collect();
                Some(Value::List(values))
            }
            _ => {
                problems.invalid(path, "expected a JSON array");
                None
            }
        };
    }
    single_value(&field.kind(), json, path, mode, problems)
}

/// Converts one (non-list, non-map) value of type `kind`.
pub fn single_value(
    kind: &Kind,
    json: &Json,
    path: &str,
    mode: Mode,
    problems: &mut Problems,
) -> Option<Value> {
    let result = match kind {
        Kind::Message(message) => return message_value(message, json, path, mode, problems),
        Kind::Enum(enum_desc) => {
            if enum_desc.full_name() == NULL_VALUE && json.is_null() {
                Ok(Value::EnumNumber(0))
            } else {
                let found = match json {
                    Json::String(text) => parse_enum_value(enum_desc, text),
                    Json::Number(number) => number
                        .as_i64()
                        .and_then(|n| i32::try_from(n).ok())
                        .and_then(|n| enum_desc.get_value(n)),
                    _ => None,
                };
                found
                    .map(|value| Value::EnumNumber(value.number()))
                    .ok_or_else(|| ValueRefused::NotOneOf(enum_short_names(enum_desc).join(", ")))
            }
        }
        Kind::Bool => match (json, mode) {
            (Json::Bool(flag), _) => Ok(Value::Bool(*flag)),
            (Json::String(text), Mode::Text) => match text.as_str() {
                "true" | "1" => Ok(Value::Bool(true)),
                "false" | "0" => Ok(Value::Bool(false)),
                _ => Err(ValueRefused::Expected("true or false")),
            },
            _ => Err(ValueRefused::Expected("true or false")),
        },
        Kind::String => match json {
            Json::String(text) => Ok(Value::String(text.clone())),
            _ => Err(ValueRefused::Expected("a string")),
        },
        Kind::Bytes => match json {
            Json::String(text) => decode_base64(text)
                .map(|bytes| Value::Bytes(bytes.into()))
                .ok_or(ValueRefused::Expected("base64-encoded bytes")),
            _ => Err(ValueRefused::Expected("base64-encoded bytes")),
        },
        Kind::Double => float(json).map(Value::F64),
        Kind::Float => float(json).and_then(|value| {
            if value.is_finite() && value.abs() > f64::from(f32::MAX) {
                Err(ValueRefused::OutOfRange("a 32-bit float"))
            } else {
                #[allow(clippy::cast_possible_truncation)]
                Ok(Value::F32(value as f32))
            }
        }),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => integer(
            json,
            i128::from(i32::MIN),
            i128::from(i32::MAX),
            "a 32-bit integer",
        )
        .and_then(|n| Ok(i32::try_from(n)?))
        .map(Value::I32),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => integer(
            json,
            i128::from(i64::MIN),
            i128::from(i64::MAX),
            "a 64-bit integer",
        )
        .and_then(|n| Ok(i64::try_from(n)?))
        .map(Value::I64),
        Kind::Uint32 | Kind::Fixed32 => {
            integer(json, 0, i128::from(u32::MAX), "an unsigned 32-bit integer")
                .and_then(|n| Ok(u32::try_from(n)?))
                .map(Value::U32)
        }
        Kind::Uint64 | Kind::Fixed64 => {
            integer(json, 0, i128::from(u64::MAX), "an unsigned 64-bit integer")
                .and_then(|n| Ok(u64::try_from(n)?))
                .map(Value::U64)
        }
    };
    match result {
        Ok(value) => Some(value),
        Err(refused) => {
            let description = if json.is_null() {
                "must not be null".to_owned()
            } else {
                refused.to_string()
            };
            problems.invalid(path, description);
            None
        }
    }
}

/// Sets `value`, reporting (instead of panicking on) a value of the wrong type.
pub fn set_checked(
    message: &mut DynamicMessage,
    field: &FieldDescriptor,
    value: Value,
    path: &str,
    problems: &mut Problems,
) {
    if message.try_set_field(field, value).is_err() {
        problems.invalid(path, "value has the wrong type");
    }
}

/// Fields whose JSON `null` is a value rather than "unset".
fn keeps_null(field: &FieldDescriptor) -> bool {
    match field.kind() {
        Kind::Message(message) => {
            !field.is_list() && message.full_name() == "google.protobuf.Value"
        }
        Kind::Enum(enum_desc) => enum_desc.full_name() == NULL_VALUE,
        _ => false,
    }
}

fn message_value(
    message: &MessageDescriptor,
    json: &Json,
    path: &str,
    mode: Mode,
    problems: &mut Problems,
) -> Option<Value> {
    let full_name = message.full_name();
    if super::names::is_wrapper(message) {
        let inner = message.get_field_by_name("value")?;
        let value = single_value(&inner.kind(), json, path, mode, problems)?;
        let mut wrapper = DynamicMessage::new(message.clone());
        set_checked(&mut wrapper, &inner, value, path, problems);
        return Some(Value::Message(wrapper));
    }
    match full_name {
        "google.protobuf.FieldMask" => {
            let Json::String(text) = json else {
                problems.invalid(path, "expected a comma-separated list of field names");
                return None;
            };
            let paths: Vec<Value> = text
                .split(',')
                .map(str::trim)
                .filter(|part| !part.is_empty())
                .map(|part| {
                    let snake: Vec<String> = part.split('.').map(camel_to_snake).collect();
                    Value::String(snake.join("."))
                })
                .collect();
            let mut mask = DynamicMessage::new(message.clone());
            let paths_field = message.get_field_by_name("paths")?;
            set_checked(&mut mask, &paths_field, Value::List(paths), path, problems);
            Some(Value::Message(mask))
        }
        "google.protobuf.Timestamp"
        | "google.protobuf.Duration"
        | "google.protobuf.Struct"
        | "google.protobuf.Value"
        | "google.protobuf.ListValue"
        | "google.protobuf.Any"
        | "google.protobuf.Empty" => {
            if mode == Mode::Text
                && !matches!(
                    full_name,
                    "google.protobuf.Timestamp" | "google.protobuf.Duration"
                )
            {
                problems.invalid(path, "cannot be given as text");
                return None;
            }
            match DynamicMessage::deserialize(message.clone(), json) {
                Ok(decoded) => Some(Value::Message(decoded)),
                Err(error) => {
                    let description = match full_name {
                        "google.protobuf.Timestamp" => {
                            "expected an RFC 3339 timestamp such as 2024-05-01T08:00:00Z".to_owned()
                        }
                        "google.protobuf.Duration" => {
                            "expected a duration in seconds such as \"1.5s\"".to_owned()
                        }
                        _ => error.to_string(),
                    };
                    problems.invalid(path, description);
                    None
                }
            }
        }
        _ => match (json, mode) {
            (Json::Object(object), Mode::Json) => {
                let mut nested = DynamicMessage::new(message.clone());
                fill_message(&mut nested, object, path, problems);
                Some(Value::Message(nested))
            }
            (Json::Null, _) => {
                problems.invalid(path, "must not be null");
                None
            }
            (_, Mode::Json) => {
                problems.invalid(path, "expected a JSON object");
                None
            }
            (_, Mode::Text) => {
                problems.invalid(path, "cannot be given as text");
                None
            }
        },
    }
}

/// Why a JSON value does not convert to its field's type: each `Display` is the sentence of
/// the field's violation.
#[derive(Debug, thiserror::Error)]
enum ValueRefused {
    /// Not of the field's type (`what` names it).
    #[error("expected {0}")]
    Expected(&'static str),
    /// Not a name (nor number) of the field's enum.
    #[error("expected one of: {0}")]
    NotOneOf(String),
    /// A number beyond the field's type.
    #[error("out of range for {0}")]
    OutOfRange(&'static str),
    /// An integer in range that still does not convert (never, after the range check).
    #[error(transparent)]
    Integer(#[from] std::num::TryFromIntError),
}

fn integer(json: &Json, min: i128, max: i128, what: &'static str) -> Result<i128, ValueRefused> {
    let expected = || ValueRefused::Expected(what);
    let value: i128 = match json {
        Json::Number(number) => {
            if let Some(n) = number.as_i64() {
                i128::from(n)
            } else if let Some(n) = number.as_u64() {
                i128::from(n)
            } else {
                integral_float(number.as_f64().ok_or_else(expected)?).ok_or_else(expected)?
            }
        }
        Json::String(text) => {
            let text = text.trim();
            match text.parse::<i128>() {
                Ok(n) => n,
                Err(_) => text
                    .parse::<f64>()
                    .ok()
                    .and_then(integral_float)
                    .ok_or_else(expected)?,
            }
        }
        _ => return Err(expected()),
    };
    if value < min || value > max {
        return Err(ValueRefused::OutOfRange(what));
    }
    Ok(value)
}

/// `1e3` → 1000; `1.5` and non-finite values are not integers.
fn integral_float(value: f64) -> Option<i128> {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1.8e19 {
        #[allow(clippy::cast_possible_truncation)]
        Some(value as i128)
    } else {
        None
    }
}

fn float(json: &Json) -> Result<f64, ValueRefused> {
    let expected = ValueRefused::Expected("a number");
    match json {
        Json::Number(number) => number.as_f64().ok_or(expected),
        Json::String(text) => match text.trim() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => other
                .parse::<f64>()
                .ok()
                .filter(|value| value.is_finite())
                .ok_or(expected),
        },
        _ => Err(expected),
    }
}

fn map_key(kind: &Kind, key: &str) -> Option<MapKey> {
    Some(match kind {
        Kind::String => MapKey::String(key.to_owned()),
        Kind::Bool => MapKey::Bool(key.parse().ok()?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(key.parse().ok()?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(key.parse().ok()?),
        Kind::Uint32 | Kind::Fixed32 => MapKey::U32(key.parse().ok()?),
        Kind::Uint64 | Kind::Fixed64 => MapKey::U64(key.parse().ok()?),
        _ => return None,
    })
}

/// Standard or URL-safe base64, padded or not.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    const CONFIG: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, CONFIG);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, CONFIG);
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .ok()
}
