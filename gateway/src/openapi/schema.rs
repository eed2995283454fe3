//! JSON Schemas (OpenAPI 3.1 dialect) of messages, fields and enums, exactly as the REST
//! transcoder reads and writes them (see `rest::json_in` / `rest::json_out`).
//!
//! Two directions, because the gateway's JSON differs between them:
//! - **Output** (responses): component `<full proto name>`. Every field is listed in
//!   `required`, because the gateway renders every key; fields with presence (messages,
//!   `optional`, oneof members) and `_UNSPECIFIED`-able enums are nullable (`type: [X, "null"]`
//!   or `anyOf` with `null` around a `$ref`).
//! - **Input** (request bodies): component `<full proto name>.Input`, created only for
//!   messages sent in bodies. Fields carry their contract's `buf.validate` rules (see
//!   [`super::rules`]) and only fields the rules mark `required` are required (the services
//!   enforce the same rules and answer 400 naming the field), fields with presence accept
//!   `null` (clears / leaves unset), and so do the others whose zero value is accepted (`null`
//!   reads as the zero value), and `additionalProperties: false` because unknown keys
//!   are refused. A `google.protobuf.Value` field declaring the message an object in it must
//!   be (`director.contract.v1.object_of`) is that message's input schema or `null`. A message sent as an update's body (PATCH: its present keys are the update
//!   mask) is read as an update wherever it is input: keys its mask may not name are left out
//!   and a present key may not clear a field the services keep set (see [`rules::Keys`]).
//!
//! Proto3 JSON types: 64-bit integers are strings (`format: int64`; numbers are accepted on
//! input), Timestamp `date-time`, Duration `"1.5s"`, FieldMask a comma-separated string, enums
//! their short lowercase names.

use std::collections::{BTreeMap, HashMap, HashSet};

use prost_reflect::{EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

use super::comments::Comments;
use super::rules::{self, Keys};
use crate::rest::names::{enum_short_names, enum_value_is_null, is_wrapper, short_enum_name};

/// Which side of the API a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// What the gateway answers.
    Output,
    /// What a client sends in a body.
    Input,
}

/// Collects component schemas while operations refer to them.
#[derive(Debug)]
pub struct Schemas<'c> {
    comments: &'c Comments,
    components: BTreeMap<String, Value>,
    in_progress: HashSet<String>,
    /// Messages sent as an update's body, by full name, with the request's update mask field.
    update_bodies: HashMap<String, FieldDescriptor>,
}

impl<'c> Schemas<'c> {
    /// An empty set of components.
    pub fn new(comments: &'c Comments) -> Self {
        Self {
            comments,
            components: BTreeMap::new(),
            in_progress: HashSet::new(),
            update_bodies: HashMap::new(),
        }
    }

    /// Reads `message`, as input, as the body of an update whose mask is `mask` (its present
    /// keys). Call before building any schema.
    pub fn read_as_update(&mut self, message: &MessageDescriptor, mask: &FieldDescriptor) {
        self.update_bodies
            .insert(message.full_name().to_owned(), mask.clone());
    }

    /// The collected components, by name.
    pub fn into_components(self) -> BTreeMap<String, Value> {
        self.components
    }

    /// The component name of a message in one direction.
    pub fn component_name(message: &MessageDescriptor, direction: Direction) -> String {
        match direction {
            Direction::Output => message.full_name().to_owned(),
            Direction::Input => format!("{}.Input", message.full_name()),
        }
    }

    /// A schema for a message value: inline for well-known types, else a `$ref` to its
    /// component (built on first use).
    pub fn message(&mut self, message: &MessageDescriptor, direction: Direction) -> Value {
        if let Some(inline) = self.well_known(message, direction) {
            return inline;
        }
        let name = Self::component_name(message, direction);
        if !self.components.contains_key(&name) && self.in_progress.insert(name.clone()) {
            let schema = self.object(message, direction, &[]);
            self.components.insert(name.clone(), schema);
            self.in_progress.remove(&name);
        }
        json!({ "$ref": format!("#/components/schemas/{name}") })
    }

    /// The object schema of `message` without the fields in `excluded` (path variables of a
    /// `body: "*"` request).
    pub fn object(
        &mut self,
        message: &MessageDescriptor,
        direction: Direction,
        excluded: &[FieldDescriptor],
    ) -> Value {
        let mask = match direction {
            Direction::Input => self.update_bodies.get(message.full_name()).cloned(),
            Direction::Output => None,
        };
        let keys = if mask.is_some() {
            Keys::Update
        } else {
            Keys::Plain
        };
        let mut properties = Map::new();
        let mut required = Vec::new();
        let mut required_input = Vec::new();
        for field in message.fields().filter(|field| !excluded.contains(field)) {
            if let Some(mask) = &mask
                && !rules::mask_admits(mask, field.name())
            {
                continue;
            }
            properties.insert(
                field.name().to_owned(),
                self.field_in(&field, direction, keys),
            );
            required.push(Value::String(field.name().to_owned()));
            if rules::is_required(&field) {
                required_input.push(Value::String(field.name().to_owned()));
            }
        }
        let mut schema = Map::new();
        schema.insert("type".into(), json!("object"));
        if let Some(comment) = self.comments.of(message) {
            schema.insert("description".into(), json!(comment));
        }
        schema.insert("properties".into(), Value::Object(properties));
        match direction {
            Direction::Output => {
                if !required.is_empty() {
                    schema.insert("required".into(), Value::Array(required));
                }
            }
            Direction::Input => {
                if !required_input.is_empty() {
                    schema.insert("required".into(), Value::Array(required_input));
                }
                schema.insert("additionalProperties".into(), json!(false));
            }
        }
        Value::Object(schema)
    }

    /// The schema of one field: its type (array for repeated, object for maps), nullable
    /// when it has presence, with the field's comment as description.
    pub fn field(&mut self, field: &FieldDescriptor, direction: Direction) -> Value {
        self.field_in(field, direction, Keys::Plain)
    }

    /// [`Self::field`] in a body whose keys are read as `keys`.
    fn field_in(&mut self, field: &FieldDescriptor, direction: Direction, keys: Keys) -> Value {
        let kind = field.kind();
        let mut schema = if field.is_map() {
            let value_kind = match &kind {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                _ => Kind::String,
            };
            json!({ "type": "object", "additionalProperties": self.kind(&value_kind, direction) })
        } else if field.is_list() {
            json!({ "type": "array", "items": self.kind(&kind, direction) })
        } else if let Kind::Enum(enum_desc) = &kind
            && direction == Direction::Input
            && rules::zero_is_refused(field, keys)
        {
            set_enumeration(enum_desc)
        } else {
            // A Value declaring the message an object in it must be: that object (or null).
            let object = (direction == Direction::Input)
                .then(|| rules::object_of(field))
                .flatten();
            let single = match &object {
                Some(object) => self.message(object, direction),
                None => self.kind(&kind, direction),
            };
            // `null` is the zero value on input: fine where the zero value is.
            let null_is_zero = direction == Direction::Input
                && !matches!(kind, Kind::Message(_) | Kind::Enum(_))
                && rules::zero_is_accepted(field, keys);
            if field.supports_presence() || null_is_zero {
                nullable(single)
            } else {
                single
            }
        };
        if direction == Direction::Input {
            rules::constrain(&mut schema, field, keys);
        }
        if let Some(comment) = self.comments.of(field) {
            describe(&mut schema, comment);
        }
        schema
    }

    /// The schema of a single value of `kind`.
    pub fn kind(&mut self, kind: &Kind, direction: Direction) -> Value {
        match kind {
            Kind::Double => json!({ "type": "number", "format": "double" }),
            Kind::Float => json!({ "type": "number", "format": "float" }),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({ "type": "integer", "format": "int32" })
            }
            Kind::Uint32 | Kind::Fixed32 => {
                json!({ "type": "integer", "minimum": 0, "maximum": u32::MAX })
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                json!({ "type": "string", "format": "int64", "pattern": "^-?[0-9]+$" })
            }
            Kind::Uint64 | Kind::Fixed64 => {
                json!({ "type": "string", "format": "uint64", "pattern": "^[0-9]+$" })
            }
            Kind::Bool => json!({ "type": "boolean" }),
            Kind::String => json!({ "type": "string" }),
            Kind::Bytes => json!({ "type": "string", "contentEncoding": "base64" }),
            Kind::Enum(enum_desc) => match direction {
                Direction::Output => self.enumeration(enum_desc),
                // Proto3 JSON parsers accept an enum's numbers besides its names.
                Direction::Input => {
                    let numbers: Vec<i32> =
                        enum_desc.values().map(|value| value.number()).collect();
                    json!({ "anyOf": [
                        self.enumeration(enum_desc),
                        { "type": "integer", "enum": numbers },
                    ] })
                }
            },
            Kind::Message(message) => self.message(message, direction),
        }
    }

    /// A `$ref` to the enum's component: its short names, plus `null` when it has an
    /// `_UNSPECIFIED` zero value (rendered as `null`).
    pub fn enumeration(&mut self, enum_desc: &EnumDescriptor) -> Value {
        let name = enum_desc.full_name().to_owned();
        if !self.components.contains_key(&name) {
            let schema = self.enum_component(enum_desc);
            self.components.insert(name.clone(), schema);
        }
        json!({ "$ref": format!("#/components/schemas/{name}") })
    }

    fn enum_component(&self, enum_desc: &EnumDescriptor) -> Value {
        let mut values: Vec<Value> = enum_short_names(enum_desc)
            .into_iter()
            .map(Value::String)
            .collect();
        let has_null = enum_desc.values().any(|value| enum_value_is_null(&value));
        let mut lines: Vec<String> = Vec::new();
        if let Some(comment) = self.comments.of(enum_desc) {
            lines.push(comment.to_owned());
            lines.push(String::new());
        }
        for value in enum_desc
            .values()
            .filter(|value| !enum_value_is_null(value))
        {
            let text = self
                .comments
                .of(&value)
                .map(|comment| comment.replace('\n', " "))
                .unwrap_or_default();
            lines.push(
                format!("- `{}`: {text}", short_enum_name(&value))
                    .trim_end()
                    .to_owned(),
            );
        }
        if has_null {
            lines.push("- `null`: not set".to_owned());
            values.push(Value::Null);
        }
        json!({
            "type": if has_null { json!(["string", "null"]) } else { json!("string") },
            "enum": values,
            "description": lines.join("\n"),
        })
    }

    /// The inline schema of a well-known type (`None` for ordinary messages).
    fn well_known(&mut self, message: &MessageDescriptor, direction: Direction) -> Option<Value> {
        if !message.full_name().starts_with("google.protobuf.") {
            return None;
        }
        if is_wrapper(message) {
            let inner = message.get_field_by_name("value")?;
            return Some(self.kind(&inner.kind(), direction));
        }
        Some(match message.name() {
            "Timestamp" => json!({ "type": "string", "format": "date-time" }),
            "Duration" => json!({
                "type": "string",
                "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$",
                "description": "A duration in seconds, e.g. `1.5s`.",
            }),
            "FieldMask" => json!({
                "type": "string",
                "description": "Comma-separated field names, e.g. `name,email`.",
            }),
            "Struct" => json!({ "type": "object", "additionalProperties": true }),
            "Value" => json!({}),
            "ListValue" => json!({ "type": "array", "items": {} }),
            "Empty" => json!({ "type": "object", "properties": {}, "additionalProperties": false }),
            "Any" => json!({
                "type": "object",
                "properties": { "@type": { "type": "string" } },
                "required": ["@type"],
                "additionalProperties": true,
            }),
            _ => return None,
        })
    }
}

/// An enum's input values other than its zero value: short names and numbers (no `null`).
fn set_enumeration(enum_desc: &EnumDescriptor) -> Value {
    let set: Vec<_> = enum_desc
        .values()
        .filter(|value| value.number() != 0)
        .collect();
    let names: Vec<String> = set.iter().map(short_enum_name).collect();
    let numbers: Vec<i32> = set.iter().map(|value| value.number()).collect();
    json!({ "anyOf": [
        { "type": "string", "enum": names },
        { "type": "integer", "enum": numbers },
    ] })
}

/// Allows `null` besides the schema's values.
pub fn nullable(schema: Value) -> Value {
    let Value::Object(mut map) = schema else {
        return schema;
    };
    if map.is_empty() {
        // `{}` (google.protobuf.Value) already allows null.
        return Value::Object(map);
    }
    if map.contains_key("$ref") {
        return json!({ "anyOf": [Value::Object(map), { "type": "null" }] });
    }
    match map.get_mut("type") {
        Some(Value::String(single)) => {
            let single = std::mem::take(single);
            map.insert("type".into(), json!([single, "null"]));
        }
        Some(Value::Array(types)) if !types.contains(&json!("null")) => {
            types.push(json!("null"));
        }
        _ => {}
    }
    if let Some(Value::Array(values)) = map.get_mut("enum")
        && !values.contains(&Value::Null)
    {
        values.push(Value::Null);
    }
    Value::Object(map)
}

/// Sets (or, for a bare `$ref`, adds alongside) the description.
pub fn describe(schema: &mut Value, text: &str) {
    if let Value::Object(map) = schema {
        map.insert("description".into(), json!(text));
    }
}
