//! Checks one decoded message against its fields' rules, naming each bad field by its path
//! (`name`, `window.start`, `tasks[2].title`) with one sentence per field.
//!
//! An update request (one holding a `google.protobuf.FieldMask`) names its resource's fields
//! as its mask does, without the resource's own name (`email`, not `company.email`), and a
//! path its mask's rules refuse by that path: over REST the body's keys are the mask, so the
//! client reads the keys it sent.

use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage, Value,
};

use super::RuleBook;
use super::rules::{
    FieldMaskRules, FieldRules, ItemRules, NumberRules, TextFormat, TextRules, ValueRules,
};
use crate::error::FieldViolation;

/// Appends to `found` a violation for every field of `message` (and of the messages it
/// holds) that breaks its rules. `prefix` is the path of `message` itself (`""` at the top).
pub fn violations(
    book: &RuleBook,
    message: &DynamicMessage,
    prefix: &str,
    found: &mut Vec<FieldViolation>,
) {
    let descriptor = message.descriptor();
    let update = descriptor.fields().any(|field| is_field_mask(&field));
    for field in descriptor.fields() {
        let path = format!("{prefix}{}", field.name());
        if let Some(rules) = book.rules_of(&field) {
            if let ValueRules::FieldMask(mask_rules) = &rules.value {
                refused_paths(message, &field, mask_rules, prefix, found);
            } else {
                check_field(message, &field, rules, &path, found);
            }
        }
        if let Some(object) = book.object_of(&field) {
            held_object(book, message, &field, object, &path, found);
        }
        // The resource of an update: its fields are named as the mask names them.
        let inner_prefix = if update && !field.is_list() {
            prefix.to_owned()
        } else {
            format!("{path}.")
        };
        nested(book, message, &field, &path, &inner_prefix, found);
    }
}

/// The rules of the message an object held in the `google.protobuf.Value` `field` must be
/// (`director.contract.v1.object_of`), its fields named under the field's path.
fn held_object(
    book: &RuleBook,
    message: &DynamicMessage,
    field: &FieldDescriptor,
    object: &MessageDescriptor,
    path: &str,
    found: &mut Vec<FieldViolation>,
) {
    if !message.has_field(field) {
        return;
    }
    let Value::Message(held) = &*message.get_field(field) else {
        return;
    };
    // A Value's serde form is the JSON it holds; one JSON cannot hold (a NaN number, sent
    // over gRPC) is no object.
    let Ok(json) = serde_json::to_value(held) else {
        found.push(FieldViolation::new(path, super::object::NOT_AN_OBJECT));
        return;
    };
    let mut unreadable = Vec::new();
    let Some(read) = super::object::read(&json, object, path, &mut unreadable) else {
        found.extend(unreadable);
        return;
    };
    let mut broken = Vec::new();
    violations(book, &read, &format!("{path}."), &mut broken);
    // A value of the wrong type is left unset in `read`: named once, for its type.
    broken.retain(|violation| !unreadable.iter().any(|v| v.field == violation.field));
    found.extend(unreadable);
    found.extend(broken);
}

fn is_field_mask(field: &FieldDescriptor) -> bool {
    matches!(field.kind(), Kind::Message(kind) if kind.full_name() == "google.protobuf.FieldMask")
}

/// One violation per path of a set update mask that its rules refuse, named by the path.
fn refused_paths(
    message: &DynamicMessage,
    field: &FieldDescriptor,
    rules: &FieldMaskRules,
    prefix: &str,
    found: &mut Vec<FieldViolation>,
) {
    if !message.has_field(field) {
        return;
    }
    let value = message.get_field(field);
    let Some(paths) = value
        .as_message()
        .and_then(|mask| mask.get_field_by_name("paths"))
    else {
        return;
    };
    for path in paths.as_list().unwrap_or_default() {
        if let Some(path) = path.as_str()
            && !rules.admits(path)
        {
            found.push(FieldViolation::new(
                format!("{prefix}{path}"),
                "cannot be changed by an update",
            ));
        }
    }
}

fn check_field(
    message: &DynamicMessage,
    field: &FieldDescriptor,
    rules: &FieldRules,
    path: &str,
    found: &mut Vec<FieldViolation>,
) {
    if field.is_list() {
        let value = message.get_field(field);
        let items = value.as_list().unwrap_or_default();
        if let Some(limits) = &rules.items
            && let Some(description) = item_count(limits, items.len())
        {
            found.push(FieldViolation::new(path, description));
            return;
        }
        for (index, item) in items.iter().enumerate() {
            if let Some(description) = value_rule(&rules.value, item, field) {
                found.push(FieldViolation::new(format!("{path}[{index}]"), description));
            }
        }
        return;
    }
    let set = message.has_field(field);
    let value = message.get_field(field);
    let zero = !set || is_zero(&value);
    if rules.required && zero {
        found.push(FieldViolation::new(path, required_description(field)));
        return;
    }
    // With presence, rules apply whenever the field is set, even to its zero value
    // (protovalidate: `IGNORE_IF_ZERO_VALUE` is a no-op for such fields).
    if field.supports_presence() {
        if !set {
            return;
        }
    } else if rules.ignore_if_zero && zero {
        return;
    }
    if let Some(description) = value_rule(&rules.value, &value, field) {
        found.push(FieldViolation::new(path, description));
    }
}

/// Descends into set message fields (and message items) so nested rules apply too; a single
/// message's fields are named under `inner_prefix`.
fn nested(
    book: &RuleBook,
    message: &DynamicMessage,
    field: &FieldDescriptor,
    path: &str,
    inner_prefix: &str,
    found: &mut Vec<FieldViolation>,
) {
    let Kind::Message(kind) = field.kind() else {
        return;
    };
    if field.is_map() || kind.full_name().starts_with("google.protobuf.") {
        return;
    }
    if !message.has_field(field) {
        return;
    }
    match &*message.get_field(field) {
        Value::Message(inner) => violations(book, inner, inner_prefix, found),
        Value::List(items) => {
            for (index, item) in items.iter().enumerate() {
                if let Value::Message(inner) = item {
                    violations(book, inner, &format!("{path}[{index}]."), found);
                }
            }
        }
        _ => {}
    }
}

fn required_description(field: &FieldDescriptor) -> &'static str {
    match field.kind() {
        Kind::String | Kind::Bytes => "must not be empty",
        _ => "is required",
    }
}

fn is_zero(value: &Value) -> bool {
    match value {
        Value::Bool(value) => !value,
        Value::I32(value) | Value::EnumNumber(value) => *value == 0,
        Value::I64(value) => *value == 0,
        Value::U32(value) => *value == 0,
        Value::U64(value) => *value == 0,
        Value::F32(value) => *value == 0.0,
        Value::F64(value) => *value == 0.0,
        Value::String(value) => value.is_empty(),
        Value::Bytes(value) => value.is_empty(),
        Value::List(items) => items.is_empty(),
        Value::Map(entries) => entries.is_empty(),
        Value::Message(_) => false,
    }
}

fn item_count(limits: &ItemRules, count: usize) -> Option<String> {
    let count = count as u64;
    let too_few = limits.min_items.is_some_and(|min| count < min);
    let too_many = limits.max_items.is_some_and(|max| count > max);
    if !too_few && !too_many {
        return None;
    }
    Some(match (limits.min_items, limits.max_items) {
        (Some(min), Some(max)) => format!("must hold {min} to {max} items, not {count}"),
        (Some(min), None) => format!("must hold at least {min} items, not {count}"),
        (_, Some(max)) => format!("must hold at most {max} items, not {count}"),
        (None, None) => unreachable!("a limit was broken"),
    })
}

/// The sentence saying why `value` breaks `rules`, or `None` when it passes.
fn value_rule(rules: &ValueRules, value: &Value, field: &FieldDescriptor) -> Option<String> {
    match (rules, value) {
        (ValueRules::None, _) => None,
        (ValueRules::Text(rules), Value::String(text)) => text_rule(rules, text),
        (ValueRules::Integer(rules), Value::I32(number)) => bounds(rules, i64::from(*number)),
        (ValueRules::Integer(rules), Value::I64(number)) => bounds(rules, *number),
        (ValueRules::Number(rules), Value::F64(number)) => {
            if rules.finite && !number.is_finite() {
                return Some("must be a finite number".to_owned());
            }
            bounds(rules, *number)
        }
        (ValueRules::Enum { defined_only }, Value::EnumNumber(number)) => {
            let Kind::Enum(declared) = field.kind() else {
                return None;
            };
            (*defined_only && declared.get_value(*number).is_none())
                .then(|| format!("must be one of the values of {}", declared.name()))
        }
        // The rule book refuses rules that do not match their field's type, so any other
        // pair cannot be built from a contract.
        _ => None,
    }
}

fn text_rule(rules: &TextRules, text: &str) -> Option<String> {
    let length = text.chars().count() as u64;
    if let Some(min) = rules.min_len
        && length < min
    {
        return Some(format!("must be at least {min} characters"));
    }
    if let Some(max) = rules.max_len
        && length > max
    {
        return Some(format!("must be at most {max} characters"));
    }
    if let Some(pattern) = &rules.pattern
        && !pattern.is_match(text)
    {
        return Some(super::describe_pattern(pattern.as_str()));
    }
    match rules.format {
        Some(TextFormat::Email) if !email_address::EmailAddress::is_valid(text) => {
            Some("must be a valid e-mail address".to_owned())
        }
        Some(TextFormat::Uuid) if !is_hyphenated_uuid(text) => Some("must be a UUID".to_owned()),
        Some(TextFormat::Uri) if fluent_uri::Uri::parse(text).is_err() => {
            Some("must be an absolute URI (RFC 3986)".to_owned())
        }
        _ => None,
    }
}

/// protovalidate's `uuid`: 8-4-4-4-12 hexadecimal digits, either case.
fn is_hyphenated_uuid(text: &str) -> bool {
    text.len() == 36 && uuid::Uuid::try_parse(text).is_ok()
}

fn bounds<T: PartialOrd + std::fmt::Display + Copy>(
    rules: &NumberRules<T>,
    number: T,
) -> Option<String> {
    if let Some(gt) = rules.gt
        && number <= gt
    {
        return Some(format!("must be more than {gt}"));
    }
    if let Some(gte) = rules.gte
        && number < gte
    {
        return Some(format!("must be {gte} or more"));
    }
    if let Some(lt) = rules.lt
        && number >= lt
    {
        return Some(format!("must be less than {lt}"));
    }
    if let Some(lte) = rules.lte
        && number > lte
    {
        return Some(format!("must be {lte} or less"));
    }
    None
}
