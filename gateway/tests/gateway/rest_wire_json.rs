//! The REST answer rendered straight from protobuf bytes (`rest::wire_json`) must be the very
//! bytes `json_out` renders from the decoded `DynamicMessage`: checked on every field kind,
//! on random messages, and on wire input a simple encoder never writes (repeated singular
//! fields, merged messages, a oneof switching member, packed and unpacked lists, duplicate
//! map keys, unknown fields), and it must give up (for the dynamic path to decide) on
//! malformed input.
#![allow(clippy::unwrap_used)]

use director_gateway::rest::{Fallback, ResponsePlan, RestApi, render_json};
use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value,
};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};
use serde_json::json;

const WIRE_PROTO: &str = r#"
syntax = "proto3";
package test.wire.v1;

import "google/protobuf/duration.proto";
import "google/protobuf/empty.proto";
import "google/protobuf/field_mask.proto";
import "google/protobuf/struct.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

enum Mood {
  MOOD_UNSPECIFIED = 0;
  MOOD_HAPPY = 1;
  MOOD_VERY_SAD = 2;
}

enum Shade {
  SHADE_LIGHT = 0;
  SHADE_DARK = 1;
}

message Leaf {
  string name = 1;
  optional int32 n = 2;
  Leaf next = 3;
  Shade shade = 4;
}

message All {
  double f_double = 1;
  float f_float = 2;
  int32 f_int32 = 3;
  int64 f_int64 = 4;
  uint32 f_uint32 = 5;
  uint64 f_uint64 = 6;
  sint32 f_sint32 = 7;
  sint64 f_sint64 = 8;
  fixed32 f_fixed32 = 9;
  fixed64 f_fixed64 = 10;
  sfixed32 f_sfixed32 = 11;
  sfixed64 f_sfixed64 = 12;
  bool f_bool = 13;
  string f_string = 14;
  bytes f_bytes = 15;
  Mood f_mood = 16;
  optional int32 o_int32 = 17;
  optional string o_string = 18;
  optional Mood o_mood = 19;
  repeated int32 r_int32 = 20;
  repeated sint64 r_sint64 = 21;
  repeated double r_double = 22;
  repeated float r_float = 23 [packed = false];
  repeated fixed32 r_fixed32 = 24;
  repeated bool r_bool = 25;
  repeated string r_string = 26;
  repeated bytes r_bytes = 27;
  repeated Mood r_mood = 28;
  repeated Leaf r_leaf = 29;
  Leaf leaf = 30;
  map<string, Leaf> m_leaf = 31;
  map<int32, Mood> m_mood = 32;
  map<bool, string> m_bool = 33;
  map<uint64, double> m_u64 = 34;
  map<sint32, bytes> m_s32 = 35;
  map<fixed64, Leaf> m_f64 = 36;
  oneof choice {
    string c_text = 37;
    Leaf c_leaf = 38;
    int64 c_number = 39;
    Mood c_mood = 40;
  }
  google.protobuf.Timestamp ts = 41;
  repeated google.protobuf.Timestamp r_ts = 42;
  google.protobuf.Duration dur = 43;
  google.protobuf.FieldMask mask = 44;
  google.protobuf.Struct st = 45;
  google.protobuf.Value val = 46;
  google.protobuf.Int64Value w_int64 = 47;
  google.protobuf.StringValue w_string = 48;
  google.protobuf.Empty empty = 49;
  google.protobuf.NullValue null_value = 50;
  repeated google.protobuf.Int32Value r_w = 51;
  map<string, google.protobuf.Timestamp> m_ts = 52;
  Shade shade = 53;
  int32 sparse = 5000;
}

message Holder {
  All all = 1;
  repeated All alls = 2;
}
"#;

const LEGACY_PROTO: &str = r#"
syntax = "proto2";
package test.legacy.v1;

enum Level {
  LEVEL_LOW = 1;
  LEVEL_HIGH = 2;
}

message Legacy {
  optional int32 a = 1 [default = 7];
  optional string s = 2 [default = "hi"];
  optional Level level = 3 [default = LEVEL_HIGH];
  repeated int32 plain = 4;
  repeated int32 packed = 5 [packed = true];
  required int64 id = 6;
}

message WithGroup {
  optional group Inner = 1 {
    optional int32 x = 2;
  }
}
"#;

fn pool() -> DescriptorPool {
    struct Memory;
    impl FileResolver for Memory {
        fn open_file(&self, name: &str) -> Result<File, protox::Error> {
            match name {
                "test/wire.proto" => File::from_source(name, WIRE_PROTO),
                "test/legacy.proto" => File::from_source(name, LEGACY_PROTO),
                _ => Err(protox::Error::file_not_found(name)),
            }
        }
    }
    let mut resolver = ChainFileResolver::new();
    resolver.add(Memory);
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true);
    compiler
        .open_files(["test/wire.proto", "test/legacy.proto"])
        .unwrap();
    DescriptorPool::decode(compiler.encode_file_descriptor_set().as_slice()).unwrap()
}

/// What `json_out` renders for `bytes` (the reference), if the dynamic decoder takes them.
fn reference(
    message: &MessageDescriptor,
    field: Option<&FieldDescriptor>,
    bytes: &[u8],
) -> Option<String> {
    let decoded = DynamicMessage::decode(message.clone(), bytes).ok()?;
    render_json(&decoded, field)
        .ok()
        .map(|json| String::from_utf8(json).unwrap())
}

/// Renders `bytes` by the fast path and checks it against the reference, byte for byte.
fn same_as_reference(message: &MessageDescriptor, field: Option<&FieldDescriptor>, bytes: &[u8]) {
    let plan = ResponsePlan::compile(message, field).unwrap();
    let expected = reference(message, field, bytes).expect("the reference renders it");
    let fast = plan
        .render(bytes)
        .unwrap_or_else(|fallback| panic!("fast path gave up ({fallback}) on {expected}"));
    assert_eq!(String::from_utf8(fast).unwrap(), expected);
}

fn all(pool: &DescriptorPool) -> MessageDescriptor {
    pool.get_message_by_name("test.wire.v1.All").unwrap()
}

fn from_json(descriptor: &MessageDescriptor, value: serde_json::Value) -> Vec<u8> {
    DynamicMessage::deserialize(descriptor.clone(), value)
        .unwrap()
        .encode_to_vec()
}

// ------------------------------------------------------------------------------------------
// A tiny deterministic generator (no dependency, same messages every run)
// ------------------------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const TEXTS: &[&str] = &[
    "",
    "plain",
    "quote \" and \\ backslash",
    "tab\tnew\nline\u{1}",
    "émoji 🐄 ünïcode",
    "</script>",
];

fn random_scalar(rng: &mut Rng, kind: &Kind) -> Value {
    let wide = |rng: &mut Rng| match rng.below(4) {
        0 => 0,
        1 => rng.below(300),
        2 => rng.next(),
        _ => u64::MAX - rng.below(3),
    };
    match kind {
        Kind::Double => Value::F64(match rng.below(6) {
            0 => f64::NAN,
            1 => f64::INFINITY,
            2 => f64::NEG_INFINITY,
            3 => 0.1,
            4 => -1e300,
            _ => (rng.next() as f64) / 7.0,
        }),
        Kind::Float => Value::F32(match rng.below(4) {
            0 => f32::NAN,
            1 => 0.1,
            2 => -3.4e38,
            _ => (rng.below(1_000_000) as f32) / 3.0,
        }),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(wide(rng) as i32),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(wide(rng) as i64),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(wide(rng) as u32),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(wide(rng)),
        Kind::Bool => Value::Bool(rng.chance(50)),
        Kind::String => Value::String(TEXTS[rng.below(TEXTS.len() as u64) as usize].to_owned()),
        Kind::Bytes => Value::Bytes(
            (0..rng.below(6))
                .map(|_| rng.below(256) as u8)
                .collect::<Vec<_>>()
                .into(),
        ),
        Kind::Enum(enum_desc) => Value::EnumNumber(match rng.below(5) {
            // A number the enum does not declare renders as the number.
            0 => 17,
            _ => {
                let values: Vec<_> = enum_desc.values().collect();
                values[rng.below(values.len() as u64) as usize].number()
            }
        }),
        Kind::Message(_) => unreachable!("not a scalar"),
    }
}

fn random_key(rng: &mut Rng, kind: &Kind) -> MapKey {
    // Few distinct keys, so merged encodings repeat them.
    let n = rng.below(3);
    match kind {
        Kind::Bool => MapKey::Bool(n == 1),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(n as i32 - 1),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(n as i64 - 1),
        Kind::Uint32 | Kind::Fixed32 => MapKey::U32(n as u32 * 1000),
        Kind::Uint64 | Kind::Fixed64 => MapKey::U64(u64::MAX / 2 * n),
        Kind::String => MapKey::String(["a", "b\"", "ünï"][n as usize].to_owned()),
        _ => unreachable!("not a map key"),
    }
}

fn random_value(rng: &mut Rng, kind: &Kind, depth: usize) -> Value {
    match kind {
        Kind::Message(message) => Value::Message(random_message(rng, message, depth + 1)),
        _ => random_scalar(rng, kind),
    }
}

fn random_message(rng: &mut Rng, descriptor: &MessageDescriptor, depth: usize) -> DynamicMessage {
    let mut message = DynamicMessage::new(descriptor.clone());
    match descriptor.full_name() {
        "google.protobuf.Timestamp" => {
            let seconds = rng.below(253_402_300_799 + 62_135_596_800) as i64 - 62_135_596_800;
            let nanos = match rng.below(4) {
                0 => 0,
                1 => rng.below(1000) * 1_000_000,
                2 => rng.below(1_000_000) * 1000,
                _ => rng.below(1_000_000_000),
            } as i32;
            message.set_field_by_name("seconds", Value::I64(seconds));
            message.set_field_by_name("nanos", Value::I32(nanos));
            return message;
        }
        "google.protobuf.Duration" => {
            let seconds = rng.below(1_000_000) as i64 - 500_000;
            let nanos = (rng.below(1_000_000_000) as i32) * seconds.signum() as i32;
            message.set_field_by_name("seconds", Value::I64(seconds));
            message.set_field_by_name("nanos", Value::I32(nanos));
            return message;
        }
        "google.protobuf.FieldMask" => {
            let paths = ["name", "leaf.name", "f_int32"][..rng.below(4) as usize]
                .iter()
                .map(|path| Value::String((*path).to_owned()))
                .collect();
            message.set_field_by_name("paths", Value::List(paths));
            return message;
        }
        "google.protobuf.Struct" | "google.protobuf.Value" => {
            let json = match rng.below(4) {
                0 => json!({"a": 1.5, "b": [true, null, "x"]}),
                1 => json!({}),
                2 => json!({"nested": {"k": "v"}}),
                _ => json!({"n": -2.0}),
            };
            return DynamicMessage::deserialize(descriptor.clone(), json).unwrap();
        }
        _ => {}
    }
    if depth > 3 {
        return message;
    }
    for field in descriptor.fields() {
        if !rng.chance(60) {
            continue;
        }
        let value = if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                unreachable!()
            };
            let key_kind = entry.map_entry_key_field().kind();
            let value_field = entry.map_entry_value_field();
            let entries = (0..rng.below(4))
                .map(|_| {
                    (
                        random_key(rng, &key_kind),
                        random_value(rng, &value_field.kind(), depth),
                    )
                })
                .collect();
            Value::Map(entries)
        } else if field.is_list() {
            Value::List(
                (0..rng.below(4))
                    .map(|_| random_value(rng, &field.kind(), depth))
                    .collect(),
            )
        } else {
            random_value(rng, &field.kind(), depth)
        };
        message.set_field(&field, value);
    }
    message
}

// ------------------------------------------------------------------------------------------
// The tests
// ------------------------------------------------------------------------------------------

#[test]
fn random_messages_render_exactly_as_the_dynamic_path_does() {
    let pool = pool();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for name in [
        "test.wire.v1.All",
        "test.wire.v1.Holder",
        "test.wire.v1.Leaf",
    ] {
        let descriptor = pool.get_message_by_name(name).unwrap();
        for _ in 0..300 {
            let one = random_message(&mut rng, &descriptor, 0).encode_to_vec();
            same_as_reference(&descriptor, None, &one);
            // Two encodings back to back are one message with both merged: later scalars
            // win, messages merge, a oneof may switch member, map keys repeat, lists grow.
            let mut merged = one.clone();
            merged.extend(random_message(&mut rng, &descriptor, 0).encode_to_vec());
            same_as_reference(&descriptor, None, &merged);
            for field in descriptor.fields() {
                same_as_reference(&descriptor, Some(&field), &merged);
            }
        }
    }
}

#[test]
fn director_answers_render_exactly_as_the_dynamic_path_does() {
    let pool = DescriptorPool::decode(director_proto::FILE_DESCRIPTOR_SET).unwrap();
    let api = RestApi::new(&pool).unwrap();
    let mut rng = Rng(42);
    let mut fast = 0;
    for route in api.routes().iter().filter(|route| !route.server_streaming) {
        let output = route.method.output();
        for _ in 0..20 {
            let bytes = random_message(&mut rng, &output, 0).encode_to_vec();
            let decoded = DynamicMessage::decode(output.clone(), bytes.as_slice()).unwrap();
            let expected = route.render_response(&decoded).unwrap();
            let rendered = route
                .render_encoded_fast(&bytes)
                .expect("Director's answers have a plan")
                .unwrap();
            assert_eq!(
                String::from_utf8(rendered).unwrap(),
                String::from_utf8(expected.clone()).unwrap(),
                "{}",
                route.template
            );
            assert_eq!(route.render_encoded_response(&bytes).unwrap(), expected);
            fast += 1;
        }
    }
    assert!(fast > 100, "only {fast} answers rendered");
}

#[test]
fn every_kind_of_field_and_the_empty_message() {
    let pool = pool();
    let all = all(&pool);
    same_as_reference(&all, None, &[]);
    let bytes = from_json(
        &all,
        serde_json::from_str(
            r#"{
            "fDouble": 1.5, "fFloat": 0.1, "fInt32": -5, "fInt64": "-9007199254740993",
            "fUint32": 4294967295, "fUint64": "18446744073709551615", "fSint32": -2147483648,
            "fSint64": "-9223372036854775808", "fFixed32": 7, "fFixed64": "8",
            "fSfixed32": -9, "fSfixed64": "-10", "fBool": true, "fString": "a\"b\\c\u0000é",
            "fBytes": "AAEC/w==", "fMood": "MOOD_VERY_SAD", "oInt32": 0, "oString": "",
            "oMood": "MOOD_UNSPECIFIED", "rInt32": [1, -1, 300], "rSint64": ["-1", "1"],
            "rDouble": [0.5, "NaN", "-Infinity"], "rFloat": [1.25, "Infinity"],
            "rFixed32": [1, 2], "rBool": [true, false], "rString": ["x", ""],
            "rBytes": ["", "AA=="], "rMood": ["MOOD_HAPPY", "MOOD_UNSPECIFIED", 9],
            "rLeaf": [{}, {"name": "n", "n": 0, "next": {"shade": "SHADE_DARK"}}],
            "leaf": {}, "mLeaf": {"z": {}, "a": {"name": "a"}}, "mMood": {"-1": "MOOD_HAPPY", "5": 0},
            "mBool": {"true": "t", "false": "f"}, "mU64": {"18446744073709551615": 1.0, "2": 2.0},
            "mS32": {"-3": "AQ=="}, "mF64": {"1": {"name": "f"}}, "cLeaf": {"name": "chosen"},
            "ts": "1970-01-01T00:00:00Z", "rTs": ["2024-05-01T06:00:00.250Z", "0001-01-01T00:00:00Z"],
            "dur": "-1.5s", "mask": "leaf.name,fInt32", "st": {"k": [1, "x", null]},
            "val": null, "wInt64": "5", "wString": "w", "empty": {}, "nullValue": null,
            "rW": [1, 0], "mTs": {"t": "9999-12-31T23:59:59.999999999Z"}, "sparse": 1
        }"#,
        )
        .unwrap(),
    );
    same_as_reference(&all, None, &bytes);
    let holder = pool.get_message_by_name("test.wire.v1.Holder").unwrap();
    let mut wrapped = Vec::new();
    prost::encoding::bytes::encode(2, &bytes, &mut wrapped);
    prost::encoding::bytes::encode(2, &Vec::<u8>::new(), &mut wrapped);
    same_as_reference(&holder, None, &wrapped);
    same_as_reference(&holder, holder.get_field_by_name("alls").as_ref(), &wrapped);
    same_as_reference(&holder, holder.get_field_by_name("all").as_ref(), &wrapped);
}

/// `key` of field `number` with wire type `wire`.
fn key(number: u32, wire: u8, out: &mut Vec<u8>) {
    prost::encoding::encode_varint(u64::from(number << 3 | u32::from(wire)), out);
}

fn string_field(number: u32, text: &[u8], out: &mut Vec<u8>) {
    key(number, 2, out);
    prost::encoding::encode_varint(text.len() as u64, out);
    out.extend_from_slice(text);
}

fn varint_field(number: u32, value: u64, out: &mut Vec<u8>) {
    key(number, 0, out);
    prost::encoding::encode_varint(value, out);
}

#[test]
fn repeated_singular_fields_merge_as_protobuf_says() {
    let pool = pool();
    let all = all(&pool);
    let leaf = pool.get_message_by_name("test.wire.v1.Leaf").unwrap();
    let mut bytes = Vec::new();
    // The last scalar wins.
    varint_field(3, 1, &mut bytes);
    varint_field(3, 2, &mut bytes);
    string_field(14, b"first", &mut bytes);
    string_field(14, b"second", &mut bytes);
    // Two occurrences of a message field merge (the second sets `n`, keeps `name`).
    string_field(30, &from_json(&leaf, json!({"name": "kept"})), &mut bytes);
    string_field(30, &from_json(&leaf, json!({"n": 4})), &mut bytes);
    // Unknown fields of every wire type are skipped.
    varint_field(999, 5, &mut bytes);
    string_field(998, b"\xff\xfe not UTF-8 but unknown", &mut bytes);
    key(997, 1, &mut bytes);
    bytes.extend_from_slice(&[0; 8]);
    key(996, 5, &mut bytes);
    bytes.extend_from_slice(&[0; 4]);
    // A packed and an unpacked run of the same repeated field make one list.
    string_field(20, &[1, 2, 0x7f], &mut bytes);
    varint_field(20, 9, &mut bytes);
    key(23, 5, &mut bytes);
    bytes.extend_from_slice(&1.5f32.to_le_bytes());
    string_field(23, &2.5f32.to_le_bytes(), &mut bytes);
    // Fields out of number order.
    varint_field(13, 1, &mut bytes);
    key(1, 1, &mut bytes);
    bytes.extend_from_slice(&0.25f64.to_le_bytes());
    same_as_reference(&all, None, &bytes);
    let rendered: serde_json::Value = serde_json::from_slice(
        &ResponsePlan::compile(&all, None)
            .unwrap()
            .render(&bytes)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(rendered["f_int32"], 2);
    assert_eq!(rendered["f_string"], "second");
    assert_eq!(
        rendered["leaf"],
        json!({"name": "kept", "n": 4, "next": null, "shade": "light"})
    );
    assert_eq!(rendered["r_int32"], json!([1, 2, 127, 9]));
    assert_eq!(rendered["r_float"], json!([1.5, 2.5]));
}

#[test]
fn the_oneof_member_set_last_wins() {
    let pool = pool();
    let all = all(&pool);
    let leaf = pool.get_message_by_name("test.wire.v1.Leaf").unwrap();
    let cases: Vec<Vec<u8>> = vec![
        // text, then a number: the number.
        {
            let mut b = Vec::new();
            string_field(37, b"text", &mut b);
            varint_field(39, 5, &mut b);
            b
        },
        // leaf, number, leaf again: only the second leaf (the number cleared the first).
        {
            let mut b = Vec::new();
            string_field(38, &from_json(&leaf, json!({"name": "old"})), &mut b);
            varint_field(39, 5, &mut b);
            string_field(38, &from_json(&leaf, json!({"n": 1})), &mut b);
            b
        },
        // leaf twice: merged.
        {
            let mut b = Vec::new();
            string_field(38, &from_json(&leaf, json!({"name": "a"})), &mut b);
            string_field(38, &from_json(&leaf, json!({"n": 1})), &mut b);
            b
        },
        // enum, then text.
        {
            let mut b = Vec::new();
            varint_field(40, 2, &mut b);
            string_field(37, b"", &mut b);
            b
        },
    ];
    for bytes in &cases {
        same_as_reference(&all, None, bytes);
    }
    let second: serde_json::Value = serde_json::from_slice(
        &ResponsePlan::compile(&all, None)
            .unwrap()
            .render(&cases[1])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        second["c_leaf"],
        json!({"name": "", "n": 1, "next": null, "shade": "light"})
    );
    assert_eq!(second["c_number"], serde_json::Value::Null);
}

#[test]
fn a_repeated_map_key_keeps_the_last_entry_and_keys_are_ordered() {
    let pool = pool();
    let all = all(&pool);
    let mut bytes = Vec::new();
    for (k, v) in [(b"b".as_slice(), 1u64), (b"a", 2), (b"b", 3)] {
        let mut entry = Vec::new();
        string_field(1, k, &mut entry);
        let mut leaf = Vec::new();
        varint_field(2, v, &mut leaf);
        string_field(2, &leaf, &mut entry);
        string_field(31, &entry, &mut bytes);
    }
    // An entry without key or value: the default key ("") and an empty leaf.
    string_field(31, &[], &mut bytes);
    // An entry whose value comes before its key, with an unknown field.
    let mut entry = Vec::new();
    varint_field(2, 1, &mut entry);
    varint_field(7, 1, &mut entry);
    varint_field(1, 5, &mut entry);
    string_field(32, &entry, &mut bytes);
    same_as_reference(&all, None, &bytes);
    let rendered: serde_json::Value = serde_json::from_slice(
        &ResponsePlan::compile(&all, None)
            .unwrap()
            .render(&bytes)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(rendered["m_leaf"]["b"]["n"], 3);
    assert_eq!(rendered["m_leaf"][""]["name"], "");
    assert_eq!(rendered["m_mood"], json!({"5": "happy"}));
}

#[test]
fn proto2_defaults_and_presence_render_as_the_dynamic_path_does() {
    let pool = pool();
    let legacy = pool.get_message_by_name("test.legacy.v1.Legacy").unwrap();
    same_as_reference(&legacy, None, &[]);
    let mut bytes = Vec::new();
    varint_field(3, 1, &mut bytes);
    varint_field(4, 3, &mut bytes);
    string_field(4, &[4, 5], &mut bytes);
    string_field(5, &[6], &mut bytes);
    varint_field(5, 7, &mut bytes);
    varint_field(6, 8, &mut bytes);
    same_as_reference(&legacy, None, &bytes);
}

#[test]
fn groups_are_left_to_the_dynamic_path() {
    let pool = pool();
    let with_group = pool
        .get_message_by_name("test.legacy.v1.WithGroup")
        .unwrap();
    assert!(ResponsePlan::compile(&with_group, None).is_none());
}

#[test]
fn malformed_answers_give_up_where_the_dynamic_decoder_fails() {
    let pool = pool();
    let all = all(&pool);
    let plan = ResponsePlan::compile(&all, None).unwrap();
    let mut invalid_utf8 = Vec::new();
    string_field(14, b"\xff", &mut invalid_utf8);
    // An overridden occurrence is still checked.
    let mut overridden = invalid_utf8.clone();
    string_field(14, b"fine", &mut overridden);
    let mut invalid_leaf = Vec::new();
    string_field(1, b"\xff", &mut invalid_leaf);
    let mut nested = Vec::new();
    string_field(30, &invalid_leaf, &mut nested);
    let mut wrong_wire_type = Vec::new();
    string_field(3, b"x", &mut wrong_wire_type);
    let mut truncated = Vec::new();
    string_field(14, b"abcdef", &mut truncated);
    truncated.truncate(4);
    let mut bad_timestamp = Vec::new();
    let mut ts = Vec::new();
    varint_field(1, 253_402_300_800, &mut ts);
    string_field(41, &ts, &mut bad_timestamp);
    let mut losing_oneof = Vec::new();
    string_field(38, &invalid_leaf, &mut losing_oneof);
    varint_field(39, 1, &mut losing_oneof);
    let overlong_varint = vec![
        3 << 3,
        0xff,
        0xff,
        0xff,
        0xff,
        0xff,
        0xff,
        0xff,
        0xff,
        0xff,
        0x02,
    ];
    for bytes in [
        &invalid_utf8,
        &overridden,
        &nested,
        &wrong_wire_type,
        &truncated,
        &bad_timestamp,
        &losing_oneof,
        &overlong_varint,
    ] {
        assert!(plan.render(bytes).is_err(), "{bytes:?}");
        assert_eq!(reference(&all, None, bytes), None, "{bytes:?}");
    }
}

#[test]
fn a_route_falls_back_to_the_dynamic_path_with_the_same_answer_or_error() {
    let pool = DescriptorPool::decode(director_proto::FILE_DESCRIPTOR_SET).unwrap();
    let api = RestApi::new(&pool).unwrap();
    let list = api
        .routes()
        .iter()
        .find(|route| route.http_method == "GET" && route.template == "/api/companies")
        .unwrap();
    // Invalid: neither path renders it, and the error is the decoder's.
    let mut bytes = Vec::new();
    string_field(1, b"\x0a\x01\xff", &mut bytes);
    assert!(matches!(
        list.render_encoded_fast(&bytes),
        Some(Err(Fallback(_)))
    ));
    assert!(matches!(
        list.render_encoded_response(&bytes),
        Err(director_gateway::rest::ResponseError::Decode(_))
    ));
    // Empty: a bare empty array.
    assert_eq!(list.render_encoded_response(&[]).unwrap(), b"[]");
}

#[test]
fn deep_nesting_is_left_to_the_dynamic_path() {
    let pool = pool();
    let leaf = pool.get_message_by_name("test.wire.v1.Leaf").unwrap();
    let plan = ResponsePlan::compile(&leaf, None).unwrap();
    let nested = |levels: usize| {
        let mut bytes = Vec::new();
        string_field(1, b"bottom", &mut bytes);
        for _ in 0..levels {
            let mut outer = Vec::new();
            string_field(3, &bytes, &mut outer);
            bytes = outer;
        }
        bytes
    };
    // Ordinary depth: rendered here, as the dynamic path renders it.
    same_as_reference(&leaf, None, &nested(20));
    // Deeper: this path gives up and the route's answer is the dynamic path's, whatever it is.
    assert!(plan.render(&nested(80)).is_err());
    assert!(plan.render(&nested(150)).is_err());
    assert_eq!(reference(&leaf, None, &nested(150)), None);
}
