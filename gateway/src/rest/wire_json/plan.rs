//! The plan of a route's answers, compiled once from the descriptors: for each message type
//! reachable from the output, its fields in declaration order with their pre-rendered keys,
//! the JSON of an absent field, enum names, and a field-number lookup.

use std::collections::HashMap;
use std::sync::Arc;

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value};

use super::super::json_out::{FieldJson, value_json};
use super::super::names::{NULL_VALUE, enum_value_is_null, is_well_known, short_enum_name};

/// Field numbers up to this are looked up in a table, larger ones by binary search.
const DENSE_NUMBERS: u32 = 1024;

/// How to render the answers of one route: every message type reachable from its output.
#[derive(Debug)]
pub struct ResponsePlan {
    pub(super) messages: Vec<MessagePlan>,
    /// The output message's plan.
    pub(super) root: usize,
    /// With `response_body`: the index of that field among the root's fields.
    pub(super) field: Option<usize>,
}

#[derive(Debug)]
pub(super) enum MessagePlan {
    Fields(FieldsPlan),
    /// `google.protobuf.Timestamp`: RFC 3339 in UTC, as prost-reflect writes it.
    Timestamp,
    /// Another well-known type: decoded and rendered by `json_out`.
    Dynamic(MessageDescriptor),
}

#[derive(Debug)]
pub(super) struct FieldsPlan {
    /// In declaration order (the order of the JSON keys).
    pub(super) fields: Vec<FieldPlan>,
    pub(super) lookup: Lookup,
    /// Whether some field is a member of a real (not synthetic) oneof.
    pub(super) has_oneofs: bool,
}

#[derive(Debug)]
pub(super) struct FieldPlan {
    /// `"name":`, as serde_json writes the key.
    pub(super) key: Box<[u8]>,
    pub(super) value: ValuePlan,
    pub(super) shape: Shape,
    /// The JSON of the field when the answer does not carry it (`null`, a default, `[]`).
    pub(super) absent: Box<[u8]>,
    /// The real oneof it belongs to (index among the message's oneofs).
    pub(super) oneof: Option<usize>,
}

#[derive(Debug)]
pub(super) enum Shape {
    Single,
    List,
    Map {
        key: Scalar,
        value: ValuePlan,
        /// The value's JSON when an entry carries no value.
        value_absent: Box<[u8]>,
    },
}

#[derive(Debug, Clone)]
pub(super) enum ValuePlan {
    Scalar(Scalar),
    Enum(Arc<EnumPlan>),
    Message(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scalar {
    Double,
    Float,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Sint32,
    Sint64,
    Fixed32,
    Fixed64,
    Sfixed32,
    Sfixed64,
    Bool,
    String,
    Bytes,
}

#[derive(Debug)]
pub(super) struct EnumPlan {
    /// `google.protobuf.NullValue`: `null` whatever the number.
    pub(super) always_null: bool,
    /// The JSON of each known number (`null` or `"short_name"`), sorted by number.
    pub(super) values: Vec<(i32, Box<[u8]>)>,
}

#[derive(Debug)]
pub(super) enum Lookup {
    /// Indexed by field number: the field's index + 1, 0 for none.
    Dense(Vec<u16>),
    /// `(number, index)`, sorted by number.
    Sparse(Vec<(u32, u16)>),
}

impl Lookup {
    pub(super) fn get(&self, number: u32) -> Option<usize> {
        match self {
            Self::Dense(table) => match table.get(number as usize) {
                Some(&slot) if slot > 0 => Some(usize::from(slot) - 1),
                _ => None,
            },
            Self::Sparse(pairs) => pairs
                .binary_search_by_key(&number, |&(n, _)| n)
                .ok()
                .map(|at| usize::from(pairs[at].1)),
        }
    }
}

impl ResponsePlan {
    /// The plan for answers of type `output`, rendering only `field` of it when given (a
    /// `response_body`). `None` when some reachable type is outside what the fast path reads
    /// (groups): those answers always take the dynamic path.
    pub fn compile(output: &MessageDescriptor, field: Option<&FieldDescriptor>) -> Option<Self> {
        let mut compiler = Compiler::default();
        let root = compiler.message(output)?;
        let field = match field {
            None => None,
            Some(field) => Some(
                output
                    .fields()
                    .position(|candidate| candidate.number() == field.number())?,
            ),
        };
        if field.is_some() && !matches!(compiler.messages[root], Some(MessagePlan::Fields(_))) {
            return None;
        }
        let messages = compiler.messages.into_iter().collect::<Option<Vec<_>>>()?;
        Some(Self {
            messages,
            root,
            field,
        })
    }
}

#[derive(Default)]
struct Compiler {
    /// `None` while a message is being compiled (recursive types refer to its index).
    messages: Vec<Option<MessagePlan>>,
    by_name: HashMap<String, usize>,
    enums: HashMap<String, Arc<EnumPlan>>,
}

impl Compiler {
    fn message(&mut self, descriptor: &MessageDescriptor) -> Option<usize> {
        if let Some(&index) = self.by_name.get(descriptor.full_name()) {
            return Some(index);
        }
        let index = self.messages.len();
        self.messages.push(None);
        self.by_name
            .insert(descriptor.full_name().to_owned(), index);
        let plan = if descriptor.full_name() == "google.protobuf.Timestamp" {
            MessagePlan::Timestamp
        } else if is_well_known(descriptor) {
            MessagePlan::Dynamic(descriptor.clone())
        } else {
            MessagePlan::Fields(self.fields(descriptor)?)
        };
        self.messages[index] = Some(plan);
        Some(index)
    }

    fn fields(&mut self, descriptor: &MessageDescriptor) -> Option<FieldsPlan> {
        let empty = DynamicMessage::new(descriptor.clone());
        let oneofs: Vec<_> = descriptor
            .oneofs()
            .filter(|oneof| !oneof.is_synthetic())
            .collect();
        let mut fields = Vec::new();
        let mut numbers = Vec::new();
        for field in descriptor.fields() {
            if field.is_group() {
                return None;
            }
            let (value, shape) = if field.is_map() {
                let Kind::Message(entry) = field.kind() else {
                    return None;
                };
                let key_field = entry.map_entry_key_field();
                let value_field = entry.map_entry_value_field();
                let key = scalar(&key_field.kind())?;
                let value = self.value(&value_field)?;
                let absent = Value::default_value_for_field(&value_field);
                let value_absent = value_json(&value_field.kind(), &absent).ok()?;
                (
                    value.clone(),
                    Shape::Map {
                        key,
                        value,
                        value_absent: value_absent.into(),
                    },
                )
            } else if field.is_list() {
                (self.value(&field)?, Shape::List)
            } else {
                (self.value(&field)?, Shape::Single)
            };
            let absent = serde_json::to_vec(&FieldJson {
                message: &empty,
                field: &field,
            })
            .ok()?;
            let mut key = serde_json::to_vec(field.name()).ok()?;
            key.push(b':');
            let oneof = field
                .containing_oneof()
                .and_then(|oneof| oneofs.iter().position(|real| *real == oneof));
            numbers.push((field.number(), u16::try_from(fields.len()).ok()?));
            fields.push(FieldPlan {
                key: key.into(),
                value,
                shape,
                absent: absent.into(),
                oneof,
            });
        }
        let largest = numbers.iter().map(|&(number, _)| number).max().unwrap_or(0);
        let lookup = if largest <= DENSE_NUMBERS {
            let mut table = vec![0u16; largest as usize + 1];
            for &(number, index) in &numbers {
                table[number as usize] = index + 1;
            }
            Lookup::Dense(table)
        } else {
            numbers.sort_unstable();
            Lookup::Sparse(numbers)
        };
        Some(FieldsPlan {
            has_oneofs: fields.iter().any(|field| field.oneof.is_some()),
            fields,
            lookup,
        })
    }

    fn value(&mut self, field: &FieldDescriptor) -> Option<ValuePlan> {
        if field.is_group() {
            return None;
        }
        Some(match field.kind() {
            Kind::Message(message) => ValuePlan::Message(self.message(&message)?),
            Kind::Enum(enum_desc) => {
                let name = enum_desc.full_name().to_owned();
                let plan = self
                    .enums
                    .entry(name)
                    .or_insert_with(|| {
                        let mut values: Vec<(i32, Box<[u8]>)> = Vec::new();
                        for value in enum_desc.values() {
                            let number = value.number();
                            if values.iter().any(|(known, _)| *known == number) {
                                continue;
                            }
                            // The value `json_out` finds for this number (the first alias).
                            let Some(found) = enum_desc.get_value(number) else {
                                continue;
                            };
                            let json: Box<[u8]> = if enum_value_is_null(&found) {
                                (*b"null").into()
                            } else {
                                serde_json::to_vec(&short_enum_name(&found))
                                    .unwrap_or_else(|_| b"null".to_vec())
                                    .into()
                            };
                            values.push((number, json));
                        }
                        values.sort_unstable_by_key(|(number, _)| *number);
                        Arc::new(EnumPlan {
                            always_null: enum_desc.full_name() == NULL_VALUE,
                            values,
                        })
                    })
                    .clone();
                ValuePlan::Enum(plan)
            }
            other => ValuePlan::Scalar(scalar(&other)?),
        })
    }
}

fn scalar(kind: &Kind) -> Option<Scalar> {
    Some(match kind {
        Kind::Double => Scalar::Double,
        Kind::Float => Scalar::Float,
        Kind::Int32 => Scalar::Int32,
        Kind::Int64 => Scalar::Int64,
        Kind::Uint32 => Scalar::Uint32,
        Kind::Uint64 => Scalar::Uint64,
        Kind::Sint32 => Scalar::Sint32,
        Kind::Sint64 => Scalar::Sint64,
        Kind::Fixed32 => Scalar::Fixed32,
        Kind::Fixed64 => Scalar::Fixed64,
        Kind::Sfixed32 => Scalar::Sfixed32,
        Kind::Sfixed64 => Scalar::Sfixed64,
        Kind::Bool => Scalar::Bool,
        Kind::String => Scalar::String,
        Kind::Bytes => Scalar::Bytes,
        Kind::Message(_) | Kind::Enum(_) => return None,
    })
}
