//! Rendering an answer: its known fields collected from the wire, then written in
//! declaration order with protobuf's merge rules (last scalar wins, messages merge, the last
//! oneof member set wins, map entries ordered by key).

use std::collections::BTreeMap;

use prost_reflect::{DynamicMessage, MapKey, MessageDescriptor};

use super::super::json_out::{MessageJson, map_key_text};
use super::plan::{FieldPlan, FieldsPlan, MessagePlan, ResponsePlan, Scalar, Shape, ValuePlan};
use super::scalars::{check_value, map_key, map_key_default, write_str, write_value};
use super::timestamp::timestamp;
use super::wire::{Occurrence, Raw, Reader, WireType};
use super::{Fallback, RECURSION_LIMIT};

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
