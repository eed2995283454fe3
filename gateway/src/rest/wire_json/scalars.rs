//! Scalars, enums and map keys from their wire values, written as `json_out` writes them.

use base64::Engine as _;
use prost_reflect::MapKey;
use serde::Serializer as _;

use super::Fallback;
use super::plan::{Scalar, ValuePlan};
use super::wire::Raw;

/// What the dynamic decoder would check of an occurrence a later one replaces.
pub(super) fn check_value(value: &ValuePlan, raw: Raw<'_>) -> Result<(), Fallback> {
    match (value, raw) {
        (ValuePlan::Scalar(Scalar::String), Raw::Len(bytes)) => std::str::from_utf8(bytes)
            .map(|_| ())
            .map_err(|_| Fallback("invalid UTF-8")),
        _ => Ok(()),
    }
}

pub(super) fn write_value(
    value: &ValuePlan,
    raw: Raw<'_>,
    out: &mut Vec<u8>,
) -> Result<(), Fallback> {
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

pub(super) fn write_str(text: &str, out: &mut Vec<u8>) -> Result<(), Fallback> {
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

pub(super) fn map_key(kind: Scalar, raw: Raw<'_>) -> Result<MapKey, Fallback> {
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

pub(super) fn map_key_default(kind: Scalar) -> MapKey {
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
