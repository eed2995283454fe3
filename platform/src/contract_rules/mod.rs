//! Input rules declared in the contracts with protovalidate's `buf.validate` annotations
//! (`proto/buf/validate/validate.proto`, vendored), enforced here for every service and read
//! by the gateway to publish them in the OpenAPI document.
//!
//! **Why our own evaluator.** The maintained protovalidate crate for prost
//! (`prost-protovalidate`) builds `validate.proto` with a system `protoc` in its build
//! script, and Director builds without `protoc` (contracts compile with `protox`). The rules
//! the contracts use are a small subset (string `min_len`/`max_len`/`pattern`/`email`/`uuid`/
//! `uri`, integer and double bounds and `finite`, `repeated` item counts, `enum.defined_only`,
//! `field_mask` `in`/`not_in`, `required`, `ignore = IGNORE_IF_ZERO_VALUE`), so this module
//! reads them from the descriptor pool (`buf.validate.field` options survive in the encoded
//! descriptor set) and evaluates them over `prost_reflect::DynamicMessage`. Any other rule —
//! CEL included — makes the rule book refuse to load, so nothing declared goes unenforced.
//!
//! Director's own option `director.contract.v1.object_of` names the message an object in a
//! `google.protobuf.Value` field must be (for input that tells `null` from absent); that
//! message's rules then apply to the object, its fields named under the Value's
//! ([`object`]; services read the object as their message with [`read_object`]).
//!
//! Services call [`check`] first thing in a handler; normalisation that is not validation
//! (trimming, E.164 phone formatting) stays in their code.

mod evaluate;
mod object;
pub mod rules;

use std::collections::HashMap;
use std::sync::LazyLock;

use prost_reflect::{DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor};

pub use rules::{
    FieldMaskRules, FieldRules, OBJECT_OF_OPTION, RuleError, RuleProblem, TextFormat, ValueRules,
};

use crate::error::{FieldViolation, invalid_argument};

/// Text: not blank (a character other than ASCII whitespace) and no NUL (PostgreSQL text
/// cannot hold it). Services trim ASCII whitespace, so "1 to N characters after trimming".
pub const NOT_BLANK_PATTERN: &str = r"^[^\x00]*[^\x00\t\n\f\r ][^\x00]*$";
/// Optional text: anything but NUL.
pub const NO_NUL_PATTERN: &str = r"^[^\x00]*$";
/// A phone number services normalise to E.164: `+`, then 7 to 15 digits with spaces, dots,
/// dashes and parentheses allowed between them.
pub const PHONE_PATTERN: &str = r"^\+([ .()-]*[0-9]){7,15}[ .()-]*$";
/// A day written `YYYY-MM-DD` (whether it exists is checked when the service parses it;
/// the OpenAPI document publishes it as `format: date`).
pub const DATE_PATTERN: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$";

/// A URL Director may call: `http://` or `https://` (which of them the deployment's egress
/// policy says), a host, and no user name or password. With the `uri` rule beside it.
pub const HTTP_URL_PATTERN: &str = r"^[hH][tT][tT][pP][sS]?://[^@/?#:][^@/?#]*([/?#]|$)";

/// A credential (an API key, a token): printable ASCII characters without spaces.
pub const CREDENTIAL_PATTERN: &str = r"^[!-~]+$";

// Optional fields track presence, and protovalidate applies the rules of a set optional field
// even to `""` (`IGNORE_IF_ZERO_VALUE` is a no-op there). Services read a blank optional value
// as absent, so these patterns admit the empty string explicitly.

/// An optional phone number: empty, or [`PHONE_PATTERN`].
pub const OPTIONAL_PHONE_PATTERN: &str = r"^$|^\+([ .()-]*[0-9]){7,15}[ .()-]*$";
/// An optional UUID: empty, or the hyphenated form (published as `format: uuid`).
pub const OPTIONAL_UUID_PATTERN: &str =
    r"^$|^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
/// An optional day: empty, or [`DATE_PATTERN`] (published as `format: date`).
pub const OPTIONAL_DATE_PATTERN: &str = r"^$|^[0-9]{4}-[0-9]{2}-[0-9]{2}$";

/// The sentence a broken `pattern` rule answers: plain words for the house patterns above,
/// the pattern itself for any other.
pub fn describe_pattern(pattern: &str) -> String {
    match pattern {
        NOT_BLANK_PATTERN => "must not be blank nor contain NUL characters".to_owned(),
        NO_NUL_PATTERN => "must not contain NUL characters".to_owned(),
        PHONE_PATTERN | OPTIONAL_PHONE_PATTERN => {
            "must be an E.164 phone number: '+' and 7 to 15 digits".to_owned()
        }
        DATE_PATTERN | OPTIONAL_DATE_PATTERN => "must be a date written YYYY-MM-DD".to_owned(),
        OPTIONAL_UUID_PATTERN => "must be a UUID".to_owned(),
        CREDENTIAL_PATTERN => "must be printable ASCII characters without spaces".to_owned(),
        HTTP_URL_PATTERN => {
            "must be an http:// or https:// URL with a host and no user name or password".to_owned()
        }
        other => format!("must match the pattern `{other}`"),
    }
}

/// The JSON Schema `format` a house pattern stands for, and whether the pattern also admits
/// the empty string (the optional forms).
pub fn pattern_format(pattern: &str) -> Option<(&'static str, bool)> {
    match pattern {
        DATE_PATTERN => Some(("date", false)),
        OPTIONAL_DATE_PATTERN => Some(("date", true)),
        OPTIONAL_UUID_PATTERN => Some(("uuid", true)),
        _ => None,
    }
}

/// Every annotated field of a descriptor pool with its rules, read once.
#[derive(Debug)]
pub struct RuleBook {
    pool: DescriptorPool,
    fields: HashMap<String, FieldRules>,
    /// `google.protobuf.Value` fields declaring the message an object in them must be.
    objects: HashMap<String, MessageDescriptor>,
}

impl RuleBook {
    /// Reads the rules of every field in `pool`; fails on a rule the evaluator does not
    /// implement or one that does not fit its field's type.
    pub fn new(pool: DescriptorPool) -> Result<Self, RuleError> {
        let mut fields = HashMap::new();
        if let Some(option) = pool.get_extension_by_name(rules::FIELD_OPTION) {
            for message in pool.all_messages() {
                for field in message.fields() {
                    if let Some(declared) = FieldRules::of(&field, &option)? {
                        fits(&field, &declared)?;
                        fields.insert(field.full_name().to_owned(), declared);
                    }
                }
            }
        }
        let mut objects = HashMap::new();
        if let Some(option) = pool.get_extension_by_name(OBJECT_OF_OPTION) {
            for message in pool.all_messages() {
                for field in message.fields() {
                    if let Some(object) = rules::object_of(&pool, &field, &option)? {
                        objects.insert(field.full_name().to_owned(), object);
                    }
                }
            }
        }
        Ok(Self {
            pool,
            fields,
            objects,
        })
    }

    /// The rules of Director's contracts (`director_proto::FILE_DESCRIPTOR_SET`).
    pub fn director() -> &'static Self {
        static BOOK: LazyLock<RuleBook> = LazyLock::new(|| {
            let pool = DescriptorPool::decode(director_proto::FILE_DESCRIPTOR_SET)
                .expect("the compiled descriptor set decodes");
            // The `contract_rules` tests load this book, so a contract with a rule the
            // evaluator cannot enforce fails the build's tests, not a running service.
            RuleBook::new(pool).expect("every buf.validate rule in the contracts is supported")
        });
        &BOOK
    }

    /// The rules declared on `field`, if any.
    pub fn rules_of(&self, field: &FieldDescriptor) -> Option<&FieldRules> {
        self.fields.get(field.full_name())
    }

    /// The message an object in the `google.protobuf.Value` `field` must be, if it declares
    /// one (`director.contract.v1.object_of`).
    pub fn object_of(&self, field: &FieldDescriptor) -> Option<&MessageDescriptor> {
        self.objects.get(field.full_name())
    }

    /// The violations of `message`, field by field.
    pub fn violations(&self, message: &DynamicMessage) -> Vec<FieldViolation> {
        let mut found = Vec::new();
        evaluate::violations(self, message, "", &mut found);
        found
    }

    /// `Ok` when `message` keeps every rule of its contract, else INVALID_ARGUMENT naming
    /// each bad field (`google.rpc.BadRequest`), as services answer.
    pub fn check<M: prost::Message + prost::Name>(&self, message: &M) -> Result<(), tonic::Status> {
        let Some(descriptor) = self.pool.get_message_by_name(&M::full_name()) else {
            // Not one of the contracts' messages: it declares no rules.
            return Ok(());
        };
        let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
            .map_err(|error| {
                tonic::Status::internal(format!("re-reading {}: {error}", M::full_name()))
            })?;
        let found = self.violations(&dynamic);
        if found.is_empty() {
            return Ok(());
        }
        Err(refusal(found))
    }
}

/// Checks `message` against the rules of Director's contracts: the one call a handler makes
/// before reading its request.
pub fn check<M: prost::Message + prost::Name>(message: &M) -> Result<(), tonic::Status> {
    RuleBook::director().check(message)
}

/// The message `M` an object held in a `director.contract.v1.object_of` Value is, read from
/// its JSON form: for a handler, after [`check`] has passed its request. A key `M` does not
/// have or a value of the wrong type is INVALID_ARGUMENT naming it under `path`, as
/// [`check`] names it.
pub fn read_object<M>(object: &prost_types::Struct, path: &str) -> Result<M, tonic::Status>
where
    M: prost::Message + prost::Name + Default,
{
    let book = RuleBook::director();
    let unreadable = |what: &str, error: &dyn std::fmt::Display| {
        tonic::Status::internal(format!("reading {what} as JSON: {error}"))
    };
    let descriptor = book
        .pool
        .get_message_by_name(&M::full_name())
        .ok_or_else(|| unreadable(&M::full_name(), &"not a message of the contracts"))?;
    let value = book
        .pool
        .get_message_by_name("google.protobuf.Struct")
        .ok_or_else(|| unreadable(path, &"google.protobuf.Struct is not in the contracts"))?;
    let held = DynamicMessage::decode(value, prost::Message::encode_to_vec(object).as_slice())
        .map_err(|error| unreadable(path, &error))?;
    let json = serde_json::to_value(&held).map_err(|error| unreadable(path, &error))?;
    let mut found = Vec::new();
    let read = object::read(&json, &descriptor, path, &mut found);
    if !found.is_empty() {
        return Err(refusal(found));
    }
    read.unwrap_or_else(|| DynamicMessage::new(descriptor))
        .transcode_to::<M>()
        .map_err(|error| unreadable(path, &error))
}

/// INVALID_ARGUMENT naming each field in `found` (`google.rpc.BadRequest`), as services
/// answer a request that breaks its contract.
fn refusal(found: Vec<FieldViolation>) -> tonic::Status {
    let fields: Vec<&str> = found.iter().map(|v| v.field.as_str()).collect();
    let message = format!("Invalid {}", fields.join(", "));
    invalid_argument(&message, found)
}

/// Refuses rules declared on a field of another type (`string` rules on an `int32`, ...).
fn fits(field: &FieldDescriptor, rules: &FieldRules) -> Result<(), RuleError> {
    let kind = field.kind();
    let fits = match &rules.value {
        ValueRules::None => true,
        ValueRules::Text(_) => kind == Kind::String,
        ValueRules::Integer(_) => matches!(kind, Kind::Int32 | Kind::Int64),
        ValueRules::Number(_) => kind == Kind::Double,
        ValueRules::Enum { .. } => matches!(kind, Kind::Enum(_)),
        ValueRules::FieldMask(_) => {
            matches!(&kind, Kind::Message(mask) if mask.full_name() == "google.protobuf.FieldMask")
        }
    };
    let items_fit = rules.items.is_none() || field.is_list();
    if fits && items_fit && !(field.is_map()) {
        Ok(())
    } else {
        Err(RuleError {
            field: field.full_name().to_owned(),
            problem: RuleProblem::WrongType,
        })
    }
}

#[cfg(test)]
mod tests;
