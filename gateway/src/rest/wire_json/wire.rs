//! Reading the protobuf wire format: field occurrences and their wire types.

use super::Fallback;
use super::plan::{Scalar, ValuePlan};

/// One field occurrence on the wire.
#[derive(Debug, Clone, Copy)]
pub(super) enum Raw<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Len(&'a [u8]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WireType {
    Varint,
    Fixed64,
    Len,
    Fixed32,
}

impl Raw<'_> {
    pub(super) fn wire_type(&self) -> WireType {
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
pub(super) struct Occurrence<'a> {
    pub(super) field: u16,
    pub(super) rank: u32,
    pub(super) raw: Raw<'a>,
}

impl Scalar {
    pub(super) fn wire_type(self) -> WireType {
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

    pub(super) fn packable(self) -> bool {
        !matches!(self, Self::String | Self::Bytes)
    }
}

impl ValuePlan {
    pub(super) fn wire_type(&self) -> WireType {
        match self {
            Self::Scalar(scalar) => scalar.wire_type(),
            Self::Enum(_) => WireType::Varint,
            Self::Message(_) => WireType::Len,
        }
    }

    pub(super) fn packable(&self) -> bool {
        match self {
            Self::Scalar(scalar) => scalar.packable(),
            Self::Enum(_) => true,
            Self::Message(_) => false,
        }
    }
}

/// A cursor over one serialized message.
pub(super) struct Reader<'a> {
    pub(super) bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn varint(&mut self) -> Result<u64, Fallback> {
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

    pub(super) fn take(&mut self, len: usize) -> Result<&'a [u8], Fallback> {
        if self.bytes.len() < len {
            return Err(Fallback("truncated field"));
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    /// The next field: its number and value. Groups give up.
    pub(super) fn field(&mut self) -> Result<(u32, Raw<'a>), Fallback> {
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
