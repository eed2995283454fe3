//! The contracts' `buf.validate` rules as JSON Schema keywords, so the OpenAPI document tells
//! clients (and schemathesis) what the services accept: `minLength`, `maxLength`, `pattern`,
//! `format` (`email`, `uuid`, `uri`, and `date` for the house date pattern), `minimum` / `maximum`
//! (exclusive for `gt` / `lt`), `minItems` / `maxItems`; `required` is read by the caller.
//!
//! An update's body is read differently from other input ([`Keys::Update`]): its present keys
//! are its update mask, so a key the mask's `field_mask` rules refuse is left out of the
//! schema, and a field without presence whose rules skip its zero value
//! (`IGNORE_IF_ZERO_VALUE`: empty means "not set" to a mask-less update) must hold a non-zero
//! value when its key is present — naming it in the mask with the zero value would clear it,
//! which services refuse for such fields (that check is theirs, in code, as it depends on the
//! mask).

use director_platform::contract_rules::{
    FieldRules, RuleBook, TextFormat, ValueRules, pattern_format, rules::NumberRules,
};
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

/// The rules of `field` in Director's contracts, if it declares any.
pub fn of(field: &FieldDescriptor) -> Option<&'static FieldRules> {
    RuleBook::director().rules_of(field)
}

/// How the keys of the body holding a field relate to the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// A present key sets the field, an absent one leaves it unset (create bodies, queries).
    Plain,
    /// The body of an update: the present keys are its update mask.
    Update,
}

/// Whether the update mask `mask` may name the field `name` (its `field_mask` rules, if any).
pub fn mask_admits(mask: &FieldDescriptor, name: &str) -> bool {
    match of(mask).map(|rules| &rules.value) {
        Some(ValueRules::FieldMask(paths)) => paths.admits(name),
        _ => true,
    }
}

/// Whether `field`, present in a body read as `keys`, must not hold its zero value: an
/// update naming a field without presence whose rules skip the zero value.
pub fn zero_is_refused(field: &FieldDescriptor, keys: Keys) -> bool {
    keys == Keys::Update
        && !field.supports_presence()
        && !field.is_list()
        && of(field).is_some_and(|rules| rules.ignore_if_zero)
}

/// Whether `field` (without presence) accepts its zero value in a body read as `keys`: it
/// declares no rules, or rules skipped for the zero value outside an update. JSON `null` is
/// read as the zero value, so such a field's input schema admits `null` too.
pub fn zero_is_accepted(field: &FieldDescriptor, keys: Keys) -> bool {
    match of(field) {
        None => true,
        Some(rules) => rules.ignore_if_zero && keys == Keys::Plain,
    }
}

/// The message an object in the `google.protobuf.Value` `field` must be
/// (`director.contract.v1.object_of`), from `field`'s own pool.
pub fn object_of(field: &FieldDescriptor) -> Option<MessageDescriptor> {
    let declared = RuleBook::director().object_of(field)?;
    field
        .parent_pool()
        .get_message_by_name(declared.full_name())
}

/// Whether a request must carry `field` (its rules say `required`).
pub fn is_required(field: &FieldDescriptor) -> bool {
    of(field).is_some_and(|rules| rules.required)
}

/// Adds `field`'s rules to `schema`, the schema of its whole value (an array for a repeated
/// field). Rules skipped for the zero value (`IGNORE_IF_ZERO_VALUE`, fields without presence)
/// are published as "the empty string, or a value keeping the rules" — except in an update
/// body, where the present key must hold a non-empty value keeping them (see [`Keys`]).
pub fn constrain(schema: &mut Value, field: &FieldDescriptor, keys: Keys) {
    let Some(rules) = of(field) else {
        return;
    };
    let Value::Object(target) = schema else {
        return;
    };
    if field.is_list() {
        if let Some(items) = &rules.items {
            if let Some(min) = items.min_items {
                target.insert("minItems".into(), json!(min));
            }
            if let Some(max) = items.max_items {
                target.insert("maxItems".into(), json!(max));
            }
        }
        if let Some(Value::Object(item)) = target.get_mut("items") {
            item.extend(keywords(&rules.value));
        }
        return;
    }
    let mut value = keywords(&rules.value);
    if zero_is_refused(field, keys) && field.kind() == Kind::String {
        let min = value.get("minLength").and_then(Value::as_u64).unwrap_or(0);
        value.insert("minLength".into(), json!(min.max(1)));
    }
    if value.is_empty() {
        return;
    }
    let nullable =
        matches!(target.get("type"), Some(Value::Array(types)) if types.contains(&json!("null")));
    let skipped_when_zero = keys == Keys::Plain
        && rules.ignore_if_zero
        && !field.supports_presence()
        && matches!(rules.value, ValueRules::Text(_));
    if skipped_when_zero {
        target.insert(
            "anyOf".into(),
            json!([{ "const": "" }, Value::Object(value)]),
        );
    } else {
        target.extend(value);
    }
    // `anyOf` alternatives must leave room for the `null` a nullable field accepts.
    if nullable && let Some(Value::Array(choices)) = target.get_mut("anyOf") {
        choices.push(json!({ "type": "null" }));
    }
}

fn keywords(rules: &ValueRules) -> Map<String, Value> {
    let mut out = Map::new();
    match rules {
        ValueRules::Text(text) => {
            if let Some(min) = text.min_len {
                out.insert("minLength".into(), json!(min));
            }
            if let Some(max) = text.max_len {
                out.insert("maxLength".into(), json!(max));
            }
            if let Some(pattern) = &text.pattern {
                out.insert("pattern".into(), json!(pattern.as_str()));
                match pattern_format(pattern.as_str()) {
                    Some((format, false)) => {
                        out.insert("format".into(), json!(format));
                    }
                    // `""` or a value in the format (a blank optional value is absent).
                    Some((format, true)) => {
                        out.insert(
                            "anyOf".into(),
                            json!([{ "const": "" }, { "format": format }]),
                        );
                    }
                    None => {}
                }
            }
            match text.format {
                Some(TextFormat::Email) => {
                    out.insert("format".into(), json!("email"));
                }
                Some(TextFormat::Uuid) => {
                    out.insert("format".into(), json!("uuid"));
                }
                Some(TextFormat::Uri) => {
                    out.insert("format".into(), json!("uri"));
                }
                None => {}
            }
        }
        ValueRules::Integer(bounds) => number_keywords(bounds, &mut out),
        ValueRules::Number(bounds) => number_keywords(bounds, &mut out),
        // Enums already list their values; `defined_only` adds nothing a schema can say. A
        // mask's rules shape the update body instead (see `mask_admits`).
        ValueRules::Enum { .. } | ValueRules::FieldMask(_) | ValueRules::None => {}
    }
    out
}

fn number_keywords<T: Into<Value> + Copy>(bounds: &NumberRules<T>, out: &mut Map<String, Value>) {
    if let Some(gte) = bounds.gte {
        out.insert("minimum".into(), gte.into());
    }
    if let Some(gt) = bounds.gt {
        out.insert("exclusiveMinimum".into(), gt.into());
    }
    if let Some(lte) = bounds.lte {
        out.insert("maximum".into(), lte.into());
    }
    if let Some(lt) = bounds.lt {
        out.insert("exclusiveMaximum".into(), lt.into());
    }
}
