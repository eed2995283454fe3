//! Message codecs and compression of the Connect protocol.
//!
//! Connect carries a message either as binary protobuf (`proto`) or as canonical proto3 JSON
//! (`json`: camelCase names, 64-bit integers as strings, enum names, well-known types in
//! their JSON forms), the mapping every Connect client implements — not the REST routes'
//! wire shapes. Upstreams speak protobuf only, so JSON is converted here with the method's
//! descriptors (prost-reflect's serde support); protobuf passes through untouched and the
//! upstream decodes it.
//!
//! The one compression offered is gzip. Decompression is bounded: a small compressed body
//! cannot expand past the gateway's body limit.

use std::io::{Read as _, Write as _};

use bytes::Bytes;
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use prost::Message as _;
use prost_reflect::{DynamicMessage, MessageDescriptor, SerializeOptions};
use tonic::Code;

use super::error::ConnectError;

/// Answers smaller than this are not worth compressing (gzip's own framing is ~20 bytes).
pub(crate) const MIN_COMPRESSED_BYTES: usize = 1024;

/// The compression this gateway speaks, as named in `*-encoding` headers.
pub(crate) const GZIP: &str = "gzip";

/// How one call's messages are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    /// Binary protobuf.
    Proto,
    /// Canonical proto3 JSON.
    Json,
}

impl Codec {
    /// The codec named by a content type's suffix (`proto`, `json`), or by a GET request's
    /// `encoding` parameter.
    pub(crate) fn named(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "proto" => Some(Self::Proto),
            "json" => Some(Self::Json),
            _ => None,
        }
    }

    /// Its name in content types.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Proto => "proto",
            Self::Json => "json",
        }
    }

    /// A request message in this codec as the protobuf the upstream reads.
    pub(crate) fn to_proto(
        self,
        message: Bytes,
        descriptor: &MessageDescriptor,
    ) -> Result<Bytes, ConnectError> {
        match self {
            Self::Proto => Ok(message),
            Self::Json => {
                let mut deserializer = serde_json::Deserializer::from_slice(&message);
                let decoded = DynamicMessage::deserialize(descriptor.clone(), &mut deserializer)
                    .and_then(|decoded| deserializer.end().map(|()| decoded))
                    .map_err(|error| {
                        ConnectError::new(
                            Code::InvalidArgument,
                            format!("Invalid JSON for {}: {error}", descriptor.full_name()),
                        )
                    })?;
                Ok(decoded.encode_to_vec().into())
            }
        }
    }

    /// An upstream's protobuf answer in this codec.
    pub(crate) fn render(
        self,
        message: Bytes,
        descriptor: &MessageDescriptor,
    ) -> Result<Bytes, ConnectError> {
        match self {
            Self::Proto => Ok(message),
            Self::Json => {
                let decoded =
                    DynamicMessage::decode(descriptor.clone(), message).map_err(|error| {
                        ConnectError::new(
                            Code::Internal,
                            format!(
                                "The service answered an invalid {}: {error}",
                                descriptor.full_name()
                            ),
                        )
                    })?;
                let mut serializer = serde_json::Serializer::new(Vec::new());
                decoded
                    .serialize_with_options(&mut serializer, &SerializeOptions::new())
                    .map_err(|error| {
                        ConnectError::new(
                            Code::Internal,
                            format!(
                                "Could not render {} as JSON: {error}",
                                descriptor.full_name()
                            ),
                        )
                    })?;
                Ok(serializer.into_inner().into())
            }
        }
    }
}

/// Whether an `Accept-Encoding`-style list (`gzip, br;q=0.5`) accepts gzip.
pub(crate) fn accepts_gzip(list: Option<&http::HeaderValue>) -> bool {
    list.and_then(|value| value.to_str().ok())
        .is_some_and(|list| {
            list.split(',').any(|entry| {
                let mut parts = entry.split(';');
                let name = parts.next().unwrap_or_default().trim();
                let refused = parts.any(|parameter| {
                    parameter
                        .trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.trim().parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                });
                name.eq_ignore_ascii_case(GZIP) && !refused
            })
        })
}

/// The bytes gzip-compressed.
pub(crate) fn gzip(bytes: &[u8]) -> Bytes {
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 2), Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default().into()
}

/// Gunzips `bytes`, refusing output beyond `limit` bytes.
pub(crate) fn gunzip(bytes: &[u8], limit: usize) -> Result<Bytes, ConnectError> {
    let mut out = Vec::new();
    let read = GzDecoder::new(bytes)
        .take(limit as u64 + 1)
        .read_to_end(&mut out);
    match read {
        Ok(_) if out.len() > limit => Err(ConnectError::new(
            Code::ResourceExhausted,
            format!("Decompressed message is larger than {limit} bytes"),
        )),
        Ok(_) => Ok(out.into()),
        Err(error) => Err(ConnectError::new(
            Code::InvalidArgument,
            format!("Invalid gzip data: {error}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_accepted_unless_refused() {
        let accepts =
            |list: &'static str| accepts_gzip(Some(&http::HeaderValue::from_static(list)));
        assert!(accepts("gzip"));
        assert!(accepts("br, GZIP;q=0.8"));
        assert!(!accepts("br, identity"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts_gzip(None));
    }

    #[test]
    fn decompression_stops_at_the_limit() {
        let packed = gzip(&[7; 4096]);
        assert_eq!(gunzip(&packed, 4096).expect("within the limit").len(), 4096);
        let error = gunzip(&packed, 4095).expect_err("over the limit");
        assert_eq!(error.code, Code::ResourceExhausted);
        assert_eq!(
            gunzip(b"not gzip", 10).expect_err("garbage").code,
            Code::InvalidArgument
        );
    }
}
