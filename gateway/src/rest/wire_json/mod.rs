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
//!
//! The plan ([`plan`]) is compiled once per route; [`render`] walks the wire format
//! ([`wire`]) against it, writing scalars ([`scalars`]) and timestamps ([`timestamp`]).

mod plan;
mod render;
mod scalars;
mod timestamp;
mod wire;

pub use plan::ResponsePlan;

/// Nesting deeper than this is left to the dynamic decoder, which decides (prost refuses
/// beyond 100 levels; staying well below it, this path never accepts what that one refuses).
const RECURSION_LIMIT: usize = 64;

/// Why the fast path did not render an answer; the caller decodes a `DynamicMessage` instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fallback(pub &'static str);

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}
