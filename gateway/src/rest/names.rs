//! Naming rules shared by JSON input, JSON output and the OpenAPI document, so the three can
//! never disagree: enum values as short lowercase names, well-known types, field lookup by
//! proto name or `json_name`.

use prost_reflect::{EnumDescriptor, EnumValueDescriptor, FieldDescriptor, MessageDescriptor};

/// `google.protobuf.NullValue`: rendered as JSON `null` whatever its number.
pub const NULL_VALUE: &str = "google.protobuf.NullValue";

/// The well-known types whose JSON form is not an object of their fields (proto3 JSON).
pub fn is_well_known(message: &MessageDescriptor) -> bool {
    message.full_name().starts_with("google.protobuf.")
        && matches!(
            message.name(),
            "Any"
                | "Timestamp"
                | "Duration"
                | "FieldMask"
                | "Struct"
                | "Value"
                | "ListValue"
                | "Empty"
                | "DoubleValue"
                | "FloatValue"
                | "Int64Value"
                | "UInt64Value"
                | "Int32Value"
                | "UInt32Value"
                | "BoolValue"
                | "StringValue"
                | "BytesValue"
        )
}

/// Whether `message` is one of the `google.protobuf.*Value` scalar wrappers.
pub fn is_wrapper(message: &MessageDescriptor) -> bool {
    message.full_name().starts_with("google.protobuf.")
        && matches!(
            message.name(),
            "DoubleValue"
                | "FloatValue"
                | "Int64Value"
                | "UInt64Value"
                | "Int32Value"
                | "UInt32Value"
                | "BoolValue"
                | "StringValue"
                | "BytesValue"
        )
}

/// `DriverStatus` → `DRIVER_STATUS_`: the prefix stripped from value names.
pub fn enum_value_prefix(enum_desc: &EnumDescriptor) -> String {
    let mut prefix = upper_snake(enum_desc.name());
    prefix.push('_');
    prefix
}

/// `DRIVER_STATUS_ACTIVE` in `DriverStatus` → `active`; a value without the prefix is just
/// lowercased.
pub fn short_enum_name(value: &EnumValueDescriptor) -> String {
    let prefix = enum_value_prefix(value.parent_enum());
    value
        .name()
        .strip_prefix(prefix.as_str())
        .filter(|rest| !rest.is_empty())
        .unwrap_or(value.name())
        .to_ascii_lowercase()
}

/// Whether a value is rendered as JSON `null`: the `_UNSPECIFIED` zero value (and every value
/// of `google.protobuf.NullValue`).
pub fn enum_value_is_null(value: &EnumValueDescriptor) -> bool {
    value.parent_enum().full_name() == NULL_VALUE
        || (value.number() == 0 && value.name().ends_with("_UNSPECIFIED"))
}

/// The short names a client may send for `enum_desc`, in declaration order, without the
/// `_UNSPECIFIED` zero value.
pub fn enum_short_names(enum_desc: &EnumDescriptor) -> Vec<String> {
    enum_desc
        .values()
        .filter(|value| !enum_value_is_null(value))
        .map(|value| short_enum_name(&value))
        .collect()
}

/// Resolves a client's spelling of an enum value: the short name (any case), the full value
/// name, or the number as text.
pub fn parse_enum_value(enum_desc: &EnumDescriptor, text: &str) -> Option<EnumValueDescriptor> {
    if let Some(value) = enum_desc.get_value_by_name(text) {
        return Some(value);
    }
    if let Ok(number) = text.trim().parse::<i32>() {
        return enum_desc.get_value(number);
    }
    let prefix = enum_value_prefix(enum_desc);
    enum_desc.values().find(|value| {
        value.name().eq_ignore_ascii_case(text)
            || value
                .name()
                .strip_prefix(prefix.as_str())
                .is_some_and(|short| short.eq_ignore_ascii_case(text))
    })
}

/// Finds a field by its proto name or its `json_name` (lowerCamelCase).
pub fn find_field(message: &MessageDescriptor, key: &str) -> Option<FieldDescriptor> {
    message
        .get_field_by_name(key)
        .or_else(|| message.get_field_by_json_name(key))
}

/// `DriverStatus` → `DRIVER_STATUS`, `HTTPMethod` → `HTTP_METHOD`, `V2Thing` → `V2_THING`.
pub fn upper_snake(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (index, &ch) in chars.iter().enumerate() {
        if ch.is_ascii_uppercase() && index > 0 {
            let previous = chars[index - 1];
            let next_is_lower = chars.get(index + 1).is_some_and(char::is_ascii_lowercase);
            if previous.is_ascii_lowercase()
                || previous.is_ascii_digit()
                || (previous.is_ascii_uppercase() && next_is_lower)
            {
                out.push('_');
            }
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

/// `externalId` → `external_id` (field mask paths in lowerCamelCase); snake case passes
/// through unchanged.
pub fn camel_to_snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for ch in name.chars() {
        if ch.is_ascii_uppercase() {
            out.push('_');
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_snake_splits_words_and_acronyms() {
        assert_eq!(upper_snake("DriverStatus"), "DRIVER_STATUS");
        assert_eq!(upper_snake("TaskEventKind"), "TASK_EVENT_KIND");
        assert_eq!(upper_snake("HTTPMethod"), "HTTP_METHOD");
        assert_eq!(upper_snake("V2Thing"), "V2_THING");
        assert_eq!(upper_snake("Kind"), "KIND");
    }

    #[test]
    fn camel_case_mask_paths_become_snake_case() {
        assert_eq!(camel_to_snake("externalId"), "external_id");
        assert_eq!(camel_to_snake("external_id"), "external_id");
        assert_eq!(camel_to_snake("name"), "name");
    }
}
