//! gRPC-Web framing: what a browser's grpc-web client sends and reads.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{Buf, BufMut, Bytes};

/// One length-prefixed data frame.
pub fn grpc_web_frame(message: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(5 + message.len());
    frame.put_u8(0);
    frame.put_u32(u32::try_from(message.len()).unwrap());
    frame.extend_from_slice(message);
    frame
}

/// A gRPC-Web response body split into its data messages and its trailers.
pub fn parse_grpc_web(mut body: &[u8]) -> (Vec<Bytes>, HashMap<String, String>) {
    let mut messages = Vec::new();
    let mut trailers = HashMap::new();
    while body.len() >= 5 {
        let flag = body.get_u8();
        let length = body.get_u32() as usize;
        let payload = &body[..length];
        if flag & 0x80 == 0 {
            messages.push(Bytes::copy_from_slice(payload));
        } else {
            for line in String::from_utf8_lossy(payload).split("\r\n") {
                if let Some((name, value)) = line.split_once(':') {
                    trailers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
                }
            }
        }
        body = &body[length..];
    }
    assert!(body.is_empty(), "trailing bytes in a grpc-web body");
    (messages, trailers)
}

/// Decodes a grpc-web-text body: base64 chunks, each padded, concatenated. Decoding quantum
/// by quantum (4 characters) handles the padding in the middle.
pub fn decode_grpc_web_text(body: &[u8]) -> Vec<u8> {
    let clean: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let mut out = Vec::new();
    for quantum in clean.chunks(4) {
        out.extend(STANDARD.decode(quantum).unwrap());
    }
    out
}
