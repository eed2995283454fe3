//! A tonic codec for `DynamicMessage`: requests are encoded from the message itself, responses
//! are decoded against the method's output descriptor (a cheap `Arc` clone per call).

use bytes::{Buf as _, Bytes};
use prost::Message as _;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Encodes any `DynamicMessage`, decodes messages of one type.
#[derive(Debug, Clone)]
pub struct DynamicCodec {
    response: MessageDescriptor,
}

impl DynamicCodec {
    /// A codec whose responses are `response` messages.
    pub fn new(response: MessageDescriptor) -> Self {
        Self { response }
    }
}

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        DynamicDecoder {
            response: self.response.clone(),
        }
    }
}

/// Encodes a `DynamicMessage` in protobuf binary form.
#[derive(Debug, Clone, Copy)]
pub struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        item.encode(dst)
            .map_err(|error| Status::internal(format!("encoding the request failed: {error}")))
    }
}

/// Decodes protobuf binary into a `DynamicMessage` of the expected type.
#[derive(Debug, Clone)]
pub struct DynamicDecoder {
    response: MessageDescriptor,
}

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        DynamicMessage::decode(self.response.clone(), src)
            .map(Some)
            .map_err(|error| Status::internal(format!("decoding the response failed: {error}")))
    }
}

/// Encodes a `DynamicMessage` request and hands the response over as its protobuf bytes,
/// undecoded (the REST path renders JSON straight from them, see `wire_json`).
#[derive(Debug, Clone, Copy, Default)]
pub struct EncodedResponseCodec;

impl Codec for EncodedResponseCodec {
    type Encode = DynamicMessage;
    type Decode = Bytes;
    type Encoder = DynamicEncoder;
    type Decoder = EncodedDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        EncodedDecoder
    }
}

/// A response message's bytes (no copy: the frame's buffer is split off).
#[derive(Debug, Clone, Copy)]
pub struct EncodedDecoder;

impl Decoder for EncodedDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
