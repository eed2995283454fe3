//! Protobuf binary → the REST JSON of [`super::json_out`], straight from the bytes of a unary
//! answer, without building a `DynamicMessage`.
//!
//! Why it exists: under `GET /api/companies?limit=100` (issue 9) the gateway spent about 300 µs
//! of CPU per request, nearly all of it decoding the 100 companies into prost-reflect's
//! dynamic messages (a `BTreeMap` and an allocation per field, per message) and rendering them
//! again (a `Timestamp` is re-encoded and decoded once more by prost-reflect's serializer).
//! Reading the wire format once against a plan compiled from the descriptors at start-up cuts
//! that by several times (docs/PERFORMANCE.md, issue 9). No maintained crate renders this
//! contract (every key present, `null` for unset, short enum names, proto field names) from
//! the wire.
//!
//! It is generic: the plan is built from the route's output descriptor, for any message. It
//! gives the same bytes as `json_out` for every input `DynamicMessage::decode` accepts (the
//! gateway tests compare the two), and it *gives up* ([`Fallback`]) on anything it does not
//! handle itself — malformed input, groups, recursion deeper than prost's limit — so the
//! caller decodes a `DynamicMessage` instead, which either renders or fails exactly as
//! before. Well-known types other than `Timestamp` are decoded as dynamic messages and
//! rendered by `json_out` (they are rare in answers).
//!
//! Protobuf semantics kept: the last occurrence of a singular scalar wins; occurrences of a
//! singular message merge (parsing their concatenation); repeated scalars may come packed or
//! not; the member of a oneof seen last wins and clears the others; a map entry's key seen
//! last wins, entries are ordered by key as `json_out` orders them; unknown fields are
//! skipped. Every occurrence of a known field is checked (wire type, UTF-8, nested messages)
//! even when a later one replaces it, as the dynamic decoder checks it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use base64::Engine as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value};
use serde::Serializer as _;

use super::json_out::{FieldJson, MessageJson, map_key_text, value_json};
use super::names::{NULL_VALUE, enum_value_is_null, is_well_known, short_enum_name};

/// Nesting deeper than this is left to the dynamic decoder, which decides (prost refuses
/// beyond 100 levels; staying well below it, this path never accepts what that one refuses).
const RECURSION_LIMIT: usize = 64;
/// Field numbers up to this are looked up in a table, larger ones by binary search.
const DENSE_NUMBERS: u32 = 1024;

/// Why the fast path did not render an answer; the caller decodes a `DynamicMessage` instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fallback(pub &'static str);

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// How to render the answers of one route: every message type reachable from its output.
#[derive(Debug)]
pub struct ResponsePlan {
    messages: Vec<MessagePlan>,
    /// The output message's plan.
    root: usize,
    /// With `response_body`: the index of that field among the root's fields.
    field: Option<usize>,
}

#[derive(Debug)]
enum MessagePlan {
    Fields(FieldsPlan),
    /// `google.protobuf.Timestamp`: RFC 3339 in UTC, as prost-reflect writes it.
    Timestamp,
    /// Another well-known type: decoded and rendered by `json_out`.
    Dynamic(MessageDescriptor),
}

#[derive(Debug)]
struct FieldsPlan {
    /// In declaration order (the order of the JSON keys).
    fields: Vec<FieldPlan>,
    lookup: Lookup,
    /// Whether some field is a member of a real (not synthetic) oneof.
    has_oneofs: bool,
}

#[derive(Debug)]
struct FieldPlan {
    /// `"name":`, as serde_json writes the key.
    key: Box<[u8]>,
    value: ValuePlan,
    shape: Shape,
    /// The JSON of the field when the answer does not carry it (`null`, a default, `[]`).
    absent: Box<[u8]>,
    /// The real oneof it belongs to (index among the message's oneofs).
    oneof: Option<usize>,
}

#[derive(Debug)]
enum Shape {
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
enum ValuePlan {
    Scalar(Scalar),
    Enum(Arc<EnumPlan>),
    Message(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scalar {
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
struct EnumPlan {
    /// `google.protobuf.NullValue`: `null` whatever the number.
    always_null: bool,
    /// The JSON of each known number (`null` or `"short_name"`), sorted by number.
    values: Vec<(i32, Box<[u8]>)>,
}

#[derive(Debug)]
enum Lookup {
    /// Indexed by field number: the field's index + 1, 0 for none.
    Dense(Vec<u16>),
    /// `(number, index)`, sorted by number.
    Sparse(Vec<(u32, u16)>),
}

impl Lookup {
    fn get(&self, number: u32) -> Option<usize> {
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

// ------------------------------------------------------------------------------------------
// Compiling a plan
// ------------------------------------------------------------------------------------------

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

// ------------------------------------------------------------------------------------------
// Reading the wire format
// ------------------------------------------------------------------------------------------

/// One field occurrence on the wire.
#[derive(Debug, Clone, Copy)]
enum Raw<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Len(&'a [u8]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WireType {
    Varint,
    Fixed64,
    Len,
    Fixed32,
}

impl Raw<'_> {
    fn wire_type(&self) -> WireType {
        match self {
            Self::Varint(_) => WireType::Varint,
            Self::Fixed64(_) => WireType::Fixed64,
            Self::Fixed32(_) => WireType::Fixed32,
            Self::Len(_) => WireType::Len,
        }
    }
}

/// A known field's occurrence: the field's index in its message plan, the occurrence's rank
/// in the message (wire order), and its value.
#[derive(Debug, Clone, Copy)]
struct Occurrence<'a> {
    field: u16,
    rank: u32,
    raw: Raw<'a>,
}

impl Scalar {
    fn wire_type(self) -> WireType {
        match self {
            Self::Int32
            | Self::Int64
            | Self::Uint32
            | Self::Uint64
            | Self::Sint32
            | Self::Sint64
            | Self::Bool => WireType::Varint,
            Self::Fixed64 | Self::Sfixed64 | Self::Double => WireType::Fixed64,
            Self::Fixed32 | Self::Sfixed32 | Self::Float => WireType::Fixed32,
            Self::String | Self::Bytes => WireType::Len,
        }
    }

    fn packable(self) -> bool {
        !matches!(self, Self::String | Self::Bytes)
    }
}

impl ValuePlan {
    fn wire_type(&self) -> WireType {
        match self {
            Self::Scalar(scalar) => scalar.wire_type(),
            Self::Enum(_) => WireType::Varint,
            Self::Message(_) => WireType::Len,
        }
    }

    fn packable(&self) -> bool {
        match self {
            Self::Scalar(scalar) => scalar.packable(),
            Self::Enum(_) => true,
            Self::Message(_) => false,
        }
    }
}

/// A cursor over one serialized message.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, Fallback> {
        let mut value = 0u64;
        for (index, &byte) in self.bytes.iter().enumerate().take(10) {
            if index == 9 && byte > 1 {
                return Err(Fallback("varint overflow"));
            }
            value |= u64::from(byte & 0x7f) << (7 * index);
            if byte < 0x80 {
                self.bytes = &self.bytes[index + 1..];
                return Ok(value);
            }
        }
        Err(Fallback("truncated varint"))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], Fallback> {
        if self.bytes.len() < len {
            return Err(Fallback("truncated field"));
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    /// The next field: its number and value. Groups give up.
    fn field(&mut self) -> Result<(u32, Raw<'a>), Fallback> {
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| Fallback("field number"))?;
        if number == 0 || number > 536_870_911 {
            return Err(Fallback("field number"));
        }
        let raw = match key & 7 {
            0 => Raw::Varint(self.varint()?),
            1 => {
                let bytes = self.take(8)?;
                Raw::Fixed64(u64::from_le_bytes(
                    bytes.try_into().map_err(|_| Fallback("fixed64"))?,
                ))
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| Fallback("length"))?;
                Raw::Len(self.take(len)?)
            }
            5 => {
                let bytes = self.take(4)?;
                Raw::Fixed32(u32::from_le_bytes(
                    bytes.try_into().map_err(|_| Fallback("fixed32"))?,
                ))
            }
            _ => return Err(Fallback("group or invalid wire type")),
        };
        Ok((number, raw))
    }
}

// ------------------------------------------------------------------------------------------
// Rendering
// ------------------------------------------------------------------------------------------

impl ResponsePlan {
    /// The JSON answer for the serialized output message `bytes`.
    pub fn render(&self, bytes: &[u8]) -> Result<Vec<u8>, Fallback> {
        let mut out = Vec::with_capacity(bytes.len().saturating_mul(2).max(64));
        let mut renderer = Renderer {
            plan: self,
            buffers: Vec::new(),
        };
        let whole = [Occurrence {
            field: 0,
            rank: 0,
            raw: Raw::Len(bytes),
        }];
        match self.field {
            None => renderer.message(self.root, &whole, 0, &mut out)?,
            Some(field) => {
                let MessagePlan::Fields(fields) = &self.messages[self.root] else {
                    return Err(Fallback("response_body of a well-known type"));
                };
                let mut occurrences = renderer.take_buffer(0);
                renderer.scan(fields, &whole, &mut occurrences)?;
                let result = renderer.fields_of(fields, &occurrences, Some(field), 0, &mut out);
                renderer.put_buffer(0, occurrences);
                result?;
            }
        }
        Ok(out)
    }
}

struct Renderer<'p, 'a> {
    plan: &'p ResponsePlan,
    /// One occurrence buffer per nesting depth, reused by sibling messages.
    buffers: Vec<Vec<Occurrence<'a>>>,
}

impl<'a> Renderer<'_, 'a> {
    fn take_buffer(&mut self, depth: usize) -> Vec<Occurrence<'a>> {
        if self.buffers.len() <= depth {
            self.buffers.resize_with(depth + 1, Vec::new);
        }
        let mut buffer = std::mem::take(&mut self.buffers[depth]);
        buffer.clear();
        buffer
    }

    fn put_buffer(&mut self, depth: usize, buffer: Vec<Occurrence<'a>>) {
        self.buffers[depth] = buffer;
    }

    /// Message `index` made of the `Len` occurrences `segments` (merged in order).
    fn message(
        &mut self,
        index: usize,
        segments: &[Occurrence<'a>],
        depth: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), Fallback> {
        if depth > RECURSION_LIMIT {
            return Err(Fallback("recursion limit"));
        }
        let plan = self.plan;
        match &plan.messages[index] {
            MessagePlan::Timestamp => timestamp(segments, out),
            MessagePlan::Dynamic(descriptor) => dynamic(descriptor, segments, out),
            MessagePlan::Fields(fields) => {
                let mut occurrences = self.take_buffer(depth);
                let result = self
                    .scan(fields, segments, &mut occurrences)
                    .and_then(|()| self.fields_of(fields, &occurrences, None, depth, out));
                self.put_buffer(depth, occurrences);
                result
            }
        }
    }

    /// Collects the known fields of `segments`, checking each one's wire type, grouped by
    /// field in declaration order (wire order within a field).
    fn scan(
        &self,
        plan: &FieldsPlan,
        segments: &[Occurrence<'a>],
        occurrences: &mut Vec<Occurrence<'a>>,
    ) -> Result<(), Fallback> {
        let mut rank = 0u32;
        for segment in segments {
            let Raw::Len(bytes) = segment.raw else {
                return Err(Fallback("message is not length-delimited"));
            };
            let mut reader = Reader { bytes };
            while !reader.bytes.is_empty() {
                let (number, raw) = reader.field()?;
                let Some(field) = plan.lookup.get(number) else {
                    continue;
                };
                let field_plan = &plan.fields[field];
                let expected = match &field_plan.shape {
                    Shape::Map { .. } => WireType::Len,
                    Shape::List
                        if field_plan.value.packable() && raw.wire_type() == WireType::Len =>
                    {
                        WireType::Len
                    }
                    Shape::List | Shape::Single => field_plan.value.wire_type(),
                };
                if raw.wire_type() != expected {
                    return Err(Fallback("unexpected wire type"));
                }
                occurrences.push(Occurrence {
                    field: u16::try_from(field).map_err(|_| Fallback("field index"))?,
                    rank,
                    raw,
                });
                rank = rank.checked_add(1).ok_or(Fallback("too many fields"))?;
            }
        }
        // Encoders write fields in number order, which is nearly always declaration order.
        if !occurrences.is_sorted_by_key(|occurrence| occurrence.field) {
            occurrences.sort_by_key(|occurrence| occurrence.field);
        }
        Ok(())
    }

    /// The object of a message's fields, or with `only` the JSON of that one field.
    fn fields_of(
        &mut self,
        plan: &FieldsPlan,
        occurrences: &[Occurrence<'a>],
        only: Option<usize>,
        depth: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), Fallback> {
        if only.is_none() {
            out.push(b'{');
        }
        let mut rest = occurrences;
        for (index, field) in plan.fields.iter().enumerate() {
            let count = rest
                .iter()
                .position(|occurrence| usize::from(occurrence.field) != index)
                .unwrap_or(rest.len());
            let (run, after) = rest.split_at(count);
            rest = after;
            let selected = only.is_none_or(|wanted| wanted == index);
            if selected && only.is_none() {
                if index > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&field.key);
            }
            // The member of a real oneof that is not the last one set renders as unset; only
            // the occurrences after the last one of another member count for the winner.
            let (ignored, effective) = match field.oneof {
                Some(oneof) if plan.has_oneofs => {
                    let others = occurrences
                        .iter()
                        .filter(|other| {
                            usize::from(other.field) != index
                                && plan.fields[usize::from(other.field)].oneof == Some(oneof)
                        })
                        .map(|other| other.rank)
                        .max();
                    match others {
                        Some(cutoff) => {
                            let split = run.partition_point(|occurrence| occurrence.rank < cutoff);
                            run.split_at(split)
                        }
                        None => (&run[..0], run),
                    }
                }
                _ => (&run[..0], run),
            };
            if !ignored.is_empty() {
                let mut scratch = Vec::new();
                self.field_value(field, ignored, depth, &mut scratch)?;
            }
            if selected {
                if effective.is_empty() {
                    out.extend_from_slice(&field.absent);
                } else {
                    self.field_value(field, effective, depth, out)?;
                }
            } else if !effective.is_empty() {
                // Not rendered (another field is the response body) but checked all the same.
                let mut scratch = Vec::new();
                self.field_value(field, effective, depth, &mut scratch)?;
            }
        }
        if only.is_none() {
            out.push(b'}');
        }
        Ok(())
    }

    /// The JSON of a field from its (non-empty) occurrences.
    fn field_value(
        &mut self,
        field: &FieldPlan,
        run: &[Occurrence<'a>],
        depth: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), Fallback> {
        match &field.shape {
            Shape::Single => match &field.value {
                ValuePlan::Message(index) => self.message(*index, run, depth + 1, out),
                value => {
                    let Some((last, earlier)) = run.split_last() else {
                        return Err(Fallback("no occurrence"));
                    };
                    for occurrence in earlier {
                        check_value(value, occurrence.raw)?;
                    }
                    write_value(value, last.raw, out)
                }
            },
            Shape::List => {
                out.push(b'[');
                let mut first = true;
                for occurrence in run {
                    match (&field.value, occurrence.raw) {
                        (ValuePlan::Message(index), _) => {
                            separator(&mut first, out);
                            self.message(*index, std::slice::from_ref(occurrence), depth + 1, out)?;
                        }
                        (value, Raw::Len(packed)) if value.packable() => {
                            let mut reader = Reader { bytes: packed };
                            while !reader.bytes.is_empty() {
                                let raw = match value.wire_type() {
                                    WireType::Varint => Raw::Varint(reader.varint()?),
                                    WireType::Fixed64 => {
                                        let bytes = reader.take(8)?;
                                        Raw::Fixed64(u64::from_le_bytes(
                                            bytes.try_into().map_err(|_| Fallback("fixed64"))?,
                                        ))
                                    }
                                    WireType::Fixed32 => {
                                        let bytes = reader.take(4)?;
                                        Raw::Fixed32(u32::from_le_bytes(
                                            bytes.try_into().map_err(|_| Fallback("fixed32"))?,
                                        ))
                                    }
                                    WireType::Len => return Err(Fallback("packed strings")),
                                };
                                separator(&mut first, out);
                                write_value(value, raw, out)?;
                            }
                        }
                        (value, raw) => {
                            separator(&mut first, out);
                            write_value(value, raw, out)?;
                        }
                    }
                }
                out.push(b']');
                Ok(())
            }
            Shape::Map {
                key,
                value,
                value_absent,
            } => {
                let mut entries: BTreeMap<MapKey, Vec<u8>> = BTreeMap::new();
                for occurrence in run {
                    let Raw::Len(entry) = occurrence.raw else {
                        return Err(Fallback("map entry is not length-delimited"));
                    };
                    let (entry_key, rendered) =
                        self.map_entry(*key, value, value_absent, entry, depth)?;
                    entries.insert(entry_key, rendered);
                }
                out.push(b'{');
                let mut first = true;
                for (entry_key, rendered) in &entries {
                    separator(&mut first, out);
                    write_str(&map_key_text(entry_key), out)?;
                    out.push(b':');
                    out.extend_from_slice(rendered);
                }
                out.push(b'}');
                Ok(())
            }
        }
    }

    /// One map entry: its key (the default when absent) and its value's JSON.
    fn map_entry(
        &mut self,
        key_kind: Scalar,
        value: &ValuePlan,
        value_absent: &[u8],
        entry: &'a [u8],
        depth: usize,
    ) -> Result<(MapKey, Vec<u8>), Fallback> {
        if depth + 1 > RECURSION_LIMIT {
            return Err(Fallback("recursion limit"));
        }
        let mut key = None;
        let mut values: Vec<Occurrence<'a>> = Vec::new();
        let mut reader = Reader { bytes: entry };
        while !reader.bytes.is_empty() {
            let (number, raw) = reader.field()?;
            match number {
                1 => {
                    if raw.wire_type() != key_kind.wire_type() {
                        return Err(Fallback("unexpected wire type"));
                    }
                    key = Some(map_key(key_kind, raw)?);
                }
                2 => {
                    if raw.wire_type() != value.wire_type() {
                        return Err(Fallback("unexpected wire type"));
                    }
                    values.push(Occurrence {
                        field: 0,
                        rank: 0,
                        raw,
                    });
                }
                _ => {}
            }
        }
        let key = match key {
            Some(key) => key,
            None => map_key_default(key_kind),
        };
        let mut rendered = Vec::new();
        match (value, values.split_last()) {
            (_, None) => rendered.extend_from_slice(value_absent),
            (ValuePlan::Message(index), Some(_)) => {
                self.message(*index, &values, depth + 2, &mut rendered)?;
            }
            (value, Some((last, earlier))) => {
                for occurrence in earlier {
                    check_value(value, occurrence.raw)?;
                }
                write_value(value, last.raw, &mut rendered)?;
            }
        }
        Ok((key, rendered))
    }
}

fn separator(first: &mut bool, out: &mut Vec<u8>) {
    if *first {
        *first = false;
    } else {
        out.push(b',');
    }
}

/// What the dynamic decoder would check of an occurrence a later one replaces.
fn check_value(value: &ValuePlan, raw: Raw<'_>) -> Result<(), Fallback> {
    match (value, raw) {
        (ValuePlan::Scalar(Scalar::String), Raw::Len(bytes)) => std::str::from_utf8(bytes)
            .map(|_| ())
            .map_err(|_| Fallback("invalid UTF-8")),
        _ => Ok(()),
    }
}

fn write_value(value: &ValuePlan, raw: Raw<'_>, out: &mut Vec<u8>) -> Result<(), Fallback> {
    match value {
        ValuePlan::Scalar(scalar) => write_scalar(*scalar, raw, out),
        ValuePlan::Enum(plan) => {
            let Raw::Varint(raw) = raw else {
                return Err(Fallback("unexpected wire type"));
            };
            let number = raw as i32;
            if plan.always_null {
                out.extend_from_slice(b"null");
                return Ok(());
            }
            match plan
                .values
                .binary_search_by_key(&number, |(known, _)| *known)
            {
                Ok(at) => out.extend_from_slice(&plan.values[at].1),
                Err(_) => json(out, |s| s.serialize_i32(number))?,
            }
            Ok(())
        }
        ValuePlan::Message(_) => Err(Fallback("message as a scalar")),
    }
}

fn write_scalar(scalar: Scalar, raw: Raw<'_>, out: &mut Vec<u8>) -> Result<(), Fallback> {
    match (scalar, raw) {
        (Scalar::Int32, Raw::Varint(v)) => json(out, |s| s.serialize_i32(v as i32)),
        (Scalar::Sint32, Raw::Varint(v)) => {
            let v = v as u32;
            json(out, |s| {
                s.serialize_i32(((v >> 1) as i32) ^ -((v & 1) as i32))
            })
        }
        (Scalar::Uint32, Raw::Varint(v)) => json(out, |s| s.serialize_u32(v as u32)),
        (Scalar::Int64, Raw::Varint(v)) => quoted(out, |s| s.serialize_i64(v as i64)),
        (Scalar::Sint64, Raw::Varint(v)) => quoted(out, |s| {
            s.serialize_i64(((v >> 1) as i64) ^ -((v & 1) as i64))
        }),
        (Scalar::Uint64, Raw::Varint(v)) => quoted(out, |s| s.serialize_u64(v)),
        (Scalar::Bool, Raw::Varint(v)) => json(out, |s| s.serialize_bool(v != 0)),
        (Scalar::Fixed64, Raw::Fixed64(v)) => quoted(out, |s| s.serialize_u64(v)),
        (Scalar::Sfixed64, Raw::Fixed64(v)) => quoted(out, |s| s.serialize_i64(v as i64)),
        (Scalar::Double, Raw::Fixed64(v)) => float(f64::from_bits(v), out),
        (Scalar::Fixed32, Raw::Fixed32(v)) => json(out, |s| s.serialize_u32(v)),
        (Scalar::Sfixed32, Raw::Fixed32(v)) => json(out, |s| s.serialize_i32(v as i32)),
        (Scalar::Float, Raw::Fixed32(v)) => float(f64::from(f32::from_bits(v)), out),
        (Scalar::String, Raw::Len(bytes)) => {
            let text = std::str::from_utf8(bytes).map_err(|_| Fallback("invalid UTF-8"))?;
            write_str(text, out)
        }
        (Scalar::Bytes, Raw::Len(bytes)) => write_str(
            &base64::engine::general_purpose::STANDARD.encode(bytes),
            out,
        ),
        _ => Err(Fallback("unexpected wire type")),
    }
}

/// A JSON value written by serde_json itself (the same digits and escapes as `json_out`).
fn json(
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut serde_json::Serializer<&mut Vec<u8>>) -> Result<(), serde_json::Error>,
) -> Result<(), Fallback> {
    write(&mut serde_json::Serializer::new(out)).map_err(|_| Fallback("serializer"))
}

/// A 64-bit integer as a JSON string, as `json_out` writes it.
fn quoted(
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut serde_json::Serializer<&mut Vec<u8>>) -> Result<(), serde_json::Error>,
) -> Result<(), Fallback> {
    out.push(b'"');
    json(out, write)?;
    out.push(b'"');
    Ok(())
}

fn write_str(text: &str, out: &mut Vec<u8>) -> Result<(), Fallback> {
    json(out, |s| s.serialize_str(text))
}

fn float(value: f64, out: &mut Vec<u8>) -> Result<(), Fallback> {
    if value.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if value == f64::INFINITY {
        out.extend_from_slice(b"\"Infinity\"");
    } else if value == f64::NEG_INFINITY {
        out.extend_from_slice(b"\"-Infinity\"");
    } else {
        json(out, |s| s.serialize_f64(value))?;
    }
    Ok(())
}

fn map_key(kind: Scalar, raw: Raw<'_>) -> Result<MapKey, Fallback> {
    Ok(match (kind, raw) {
        (Scalar::Bool, Raw::Varint(v)) => MapKey::Bool(v != 0),
        (Scalar::Int32, Raw::Varint(v)) => MapKey::I32(v as i32),
        (Scalar::Sint32, Raw::Varint(v)) => {
            let v = v as u32;
            MapKey::I32(((v >> 1) as i32) ^ -((v & 1) as i32))
        }
        (Scalar::Sfixed32, Raw::Fixed32(v)) => MapKey::I32(v as i32),
        (Scalar::Int64, Raw::Varint(v)) => MapKey::I64(v as i64),
        (Scalar::Sint64, Raw::Varint(v)) => MapKey::I64(((v >> 1) as i64) ^ -((v & 1) as i64)),
        (Scalar::Sfixed64, Raw::Fixed64(v)) => MapKey::I64(v as i64),
        (Scalar::Uint32, Raw::Varint(v)) => MapKey::U32(v as u32),
        (Scalar::Fixed32, Raw::Fixed32(v)) => MapKey::U32(v),
        (Scalar::Uint64, Raw::Varint(v)) => MapKey::U64(v),
        (Scalar::Fixed64, Raw::Fixed64(v)) => MapKey::U64(v),
        (Scalar::String, Raw::Len(bytes)) => MapKey::String(
            std::str::from_utf8(bytes)
                .map_err(|_| Fallback("invalid UTF-8"))?
                .to_owned(),
        ),
        _ => return Err(Fallback("map key")),
    })
}

fn map_key_default(kind: Scalar) -> MapKey {
    match kind {
        Scalar::Bool => MapKey::Bool(false),
        Scalar::Int32 | Scalar::Sint32 | Scalar::Sfixed32 => MapKey::I32(0),
        Scalar::Int64 | Scalar::Sint64 | Scalar::Sfixed64 => MapKey::I64(0),
        Scalar::Uint32 | Scalar::Fixed32 => MapKey::U32(0),
        Scalar::Uint64 | Scalar::Fixed64 => MapKey::U64(0),
        Scalar::String | Scalar::Bytes | Scalar::Float | Scalar::Double => {
            MapKey::String(String::new())
        }
    }
}

/// Earliest and latest seconds prost-reflect renders (0001-01-01 to 9999-12-31).
const MIN_TIMESTAMP_SECONDS: i64 = -62_135_596_800;
const MAX_TIMESTAMP_SECONDS: i64 = 253_402_300_799;

/// A `google.protobuf.Timestamp` as prost-reflect renders it: its range checked, then
/// prost-types' RFC 3339 text (UTC, `Z`, 0, 3, 6 or 9 fractional digits).
fn timestamp(segments: &[Occurrence<'_>], out: &mut Vec<u8>) -> Result<(), Fallback> {
    let mut value = prost_types::Timestamp::default();
    for segment in segments {
        let Raw::Len(bytes) = segment.raw else {
            return Err(Fallback("message is not length-delimited"));
        };
        let mut reader = Reader { bytes };
        while !reader.bytes.is_empty() {
            match reader.field()? {
                (1, Raw::Varint(seconds)) => value.seconds = seconds as i64,
                (2, Raw::Varint(nanos)) => value.nanos = nanos as i32,
                (1 | 2, _) => return Err(Fallback("unexpected wire type")),
                _ => {}
            }
        }
    }
    if !(MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS).contains(&value.seconds) {
        return Err(Fallback("timestamp out of range"));
    }
    out.push(b'"');
    if (0..1_000_000_000).contains(&value.nanos) {
        rfc3339(value.seconds, value.nanos, out);
    } else {
        // Nanoseconds out of their range: prost-types normalises them; let it.
        use std::io::Write as _;
        write!(out, "{value}").map_err(|_| Fallback("timestamp"))?;
    }
    out.push(b'"');
    Ok(())
}

/// `seconds` (0001-01-01 to 9999-12-31) and `nanos` (0 to 999,999,999) as prost-types'
/// `Display` writes a timestamp: `YYYY-MM-DDTHH:MM:SS`, then no fraction, 3, 6 or 9 digits,
/// then `Z`. Written digit by digit: through `core::fmt` the 200 timestamps of a page of 100
/// companies were a sixth of the gateway's CPU for that request (perf, issue 9).
fn rfc3339(seconds: i64, nanos: i32, out: &mut Vec<u8>) {
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    // Howard Hinnant's days → civil date (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);

    let mut text = [0u8; 30];
    let mut put = |at: usize, value: i64, width: usize| {
        let mut value = value;
        for index in (at..at + width).rev() {
            text[index] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, of_day / 3600, 2);
    put(14, of_day / 60 % 60, 2);
    put(17, of_day % 60, 2);
    let nanos = i64::from(nanos);
    let end = if nanos == 0 {
        19
    } else if nanos % 1_000_000 == 0 {
        put(20, nanos / 1_000_000, 3);
        23
    } else if nanos % 1000 == 0 {
        put(20, nanos / 1000, 6);
        26
    } else {
        put(20, nanos, 9);
        29
    };
    text[4] = b'-';
    text[7] = b'-';
    text[10] = b'T';
    text[13] = b':';
    text[16] = b':';
    text[19] = b'.';
    text[end] = b'Z';
    out.extend_from_slice(&text[..=end]);
}

/// A well-known type other than `Timestamp`: decoded and rendered by `json_out`.
fn dynamic(
    descriptor: &MessageDescriptor,
    segments: &[Occurrence<'_>],
    out: &mut Vec<u8>,
) -> Result<(), Fallback> {
    let mut joined = Vec::new();
    for segment in segments {
        let Raw::Len(bytes) = segment.raw else {
            return Err(Fallback("message is not length-delimited"));
        };
        joined.extend_from_slice(bytes);
    }
    let message = DynamicMessage::decode(descriptor.clone(), joined.as_slice())
        .map_err(|_| Fallback("well-known type"))?;
    serde_json::to_writer(out, &MessageJson(&message)).map_err(|_| Fallback("well-known type"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn display(seconds: i64, nanos: i32) -> String {
        prost_types::Timestamp { seconds, nanos }.to_string()
    }

    fn fast(seconds: i64, nanos: i32) -> String {
        let mut out = Vec::new();
        rfc3339(seconds, nanos, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn timestamps_are_written_as_prost_types_writes_them() {
        let mut seconds = vec![
            MIN_TIMESTAMP_SECONDS,
            MIN_TIMESTAMP_SECONDS + 1,
            MAX_TIMESTAMP_SECONDS,
            MAX_TIMESTAMP_SECONDS - 86_400,
            -1,
            0,
            1,
            86_399,
            86_400,
            951_782_400,    // 2000-02-29
            951_868_800,    // 2000-03-01
            -2_203_891_200, // 1900-03-01
            4_107_542_400,  // 2100-03-01
            1_714_543_200,
        ];
        // Every day boundary of a few centuries either side of the epoch, and odd seconds.
        let mut second = MIN_TIMESTAMP_SECONDS;
        while second <= MAX_TIMESTAMP_SECONDS {
            seconds.push(second);
            seconds.push(second + 43_261);
            second += 86_400 * 97 + 3_599;
        }
        for &seconds in &seconds {
            for nanos in [0, 1, 999_999_999, 250_000_000, 120_000, 7_000, 100_000_000] {
                assert_eq!(
                    fast(seconds, nanos),
                    display(seconds, nanos),
                    "{seconds} {nanos}"
                );
            }
        }
    }
}
