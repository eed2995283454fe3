//! Reads the `buf.validate.field` option of a field into [`FieldRules`], the subset of
//! protovalidate's rules Director's contracts use.
//!
//! A rule outside that subset is an error, never skipped: a contract must not declare a rule
//! that nothing enforces (the rule book refuses to load, and its test fails).

use prost_reflect::{
    DescriptorPool, DynamicMessage, ExtensionDescriptor, FieldDescriptor, Kind, MessageDescriptor,
    Value,
};
use regex::Regex;

/// The full name of protovalidate's field option.
pub const FIELD_OPTION: &str = "buf.validate.field";
/// The full name of Director's field option naming the message an object in a
/// `google.protobuf.Value` field must be (`proto/director/contract/v1/contract.proto`).
pub const OBJECT_OF_OPTION: &str = "director.contract.v1.object_of";

/// The rules of one field.
#[derive(Debug, Clone, Default)]
pub struct FieldRules {
    /// The field must be set (with presence) or not hold its zero value (without).
    pub required: bool,
    /// Rules are skipped when the field holds its zero value (`IGNORE_IF_ZERO_VALUE`; only for
    /// fields without presence, as in protovalidate).
    pub ignore_if_zero: bool,
    /// Rules of the field's value (of each item for a repeated field).
    pub value: ValueRules,
    /// Item count limits of a repeated field.
    pub items: Option<ItemRules>,
}

/// The rules of one value, by its type.
#[derive(Debug, Clone, Default)]
pub enum ValueRules {
    /// No rule on the value itself.
    #[default]
    None,
    /// `string` rules.
    Text(TextRules),
    /// `int32` / `int64` rules.
    Integer(NumberRules<i64>),
    /// `double` rules.
    Number(NumberRules<f64>),
    /// `enum` rules.
    Enum {
        /// Only values the enum declares are accepted.
        defined_only: bool,
    },
    /// `field_mask` rules (a `google.protobuf.FieldMask`).
    FieldMask(FieldMaskRules),
}

/// `string` rules (lengths count characters, as protovalidate does).
#[derive(Debug, Clone, Default)]
pub struct TextRules {
    /// At least this many characters.
    pub min_len: Option<u64>,
    /// At most this many characters.
    pub max_len: Option<u64>,
    /// The whole value matches this regular expression (RE2 syntax, unanchored).
    pub pattern: Option<Regex>,
    /// A well-known format.
    pub format: Option<TextFormat>,
}

/// protovalidate's well-known string formats used by Director.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFormat {
    /// An RFC 5322 address (`email`).
    Email,
    /// A hyphenated UUID (`uuid`).
    Uuid,
    /// An absolute URI as RFC 3986 defines it (`uri`): a scheme, then its characters and
    /// structure exactly as the RFC allows.
    Uri,
}

/// Bounds of a number; each is inclusive unless named `gt`/`lt`.
#[derive(Debug, Clone, Default)]
pub struct NumberRules<T> {
    /// Greater than this.
    pub gt: Option<T>,
    /// Greater than or equal to this.
    pub gte: Option<T>,
    /// Less than this.
    pub lt: Option<T>,
    /// Less than or equal to this.
    pub lte: Option<T>,
    /// Not NaN nor infinite (doubles only).
    pub finite: bool,
}

/// Which paths a `google.protobuf.FieldMask` may hold; a path also matches the rules of the
/// field it lies under (`a.b` is under `a`), as in protovalidate.
#[derive(Debug, Clone, Default)]
pub struct FieldMaskRules {
    /// Every path must be one of these (or under one); empty: no such limit.
    pub only: Vec<String>,
    /// No path may be one of these (or under one).
    pub not_in: Vec<String>,
}

impl FieldMaskRules {
    /// Whether the mask may name `path` (a field name, or a dotted path into one).
    pub fn admits(&self, path: &str) -> bool {
        let within = |listed: &String| {
            path == listed
                || path
                    .strip_prefix(listed.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
        };
        (self.only.is_empty() || self.only.iter().any(within)) && !self.not_in.iter().any(within)
    }
}

/// Item count limits of a repeated field.
#[derive(Debug, Clone, Default)]
pub struct ItemRules {
    /// At least this many items.
    pub min_items: Option<u64>,
    /// At most this many items.
    pub max_items: Option<u64>,
}

/// A rule Director's evaluator does not implement, or a malformed one.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct RuleError {
    /// The annotated field's full name.
    pub field: String,
    /// What is unsupported or wrong.
    pub problem: RuleProblem,
}

/// What is wrong with the rules declared on a field.
#[derive(Debug, thiserror::Error)]
pub enum RuleProblem {
    /// The option holds something other than a `buf.validate.FieldRules`.
    #[error("the option is not a FieldRules message")]
    NotFieldRules,
    /// A rule outside the subset Director enforces.
    #[error("the {group} rule `{rule}` is not implemented by Director's evaluator")]
    Unsupported { group: &'static str, rule: String },
    /// A `pattern` that is not a regular expression.
    #[error("pattern `{pattern}` does not compile: {error}")]
    BadPattern {
        pattern: String,
        error: regex::Error,
    },
    /// A number bound that does not hold a number.
    #[error("`{rule}` is not a number")]
    NotANumber { rule: String },
    /// Rules of one type declared on a field of another.
    #[error("its rules do not fit the field's type")]
    WrongType,
    /// `director.contract.v1.object_of` on a field that is not a `google.protobuf.Value`.
    #[error("`{OBJECT_OF_OPTION}` is declared on a field that is not a google.protobuf.Value")]
    ObjectOfNotAValue,
    /// `director.contract.v1.object_of` naming a message the contracts do not define.
    #[error("`{OBJECT_OF_OPTION}` names `{message}`, which is not a message of the contracts")]
    ObjectOfUnknown { message: String },
}

impl FieldRules {
    /// The rules declared on `field`, or `None` when it carries no `buf.validate.field`
    /// option. `option` is the extension descriptor of [`FIELD_OPTION`].
    pub fn of(
        field: &FieldDescriptor,
        option: &ExtensionDescriptor,
    ) -> Result<Option<Self>, RuleError> {
        let options = field.options();
        if !options.has_extension(option) {
            return Ok(None);
        }
        let fail = |problem: RuleProblem| RuleError {
            field: field.full_name().to_owned(),
            problem,
        };
        let Value::Message(declared) = options.get_extension(option).into_owned() else {
            return Err(fail(RuleProblem::NotFieldRules));
        };
        let mut rules = Self::default();
        for (rule, value) in declared.fields() {
            match (rule.name(), value) {
                ("required", Value::Bool(required)) => rules.required = *required,
                // IGNORE_IF_ZERO_VALUE = 1 in buf.validate.Ignore.
                ("ignore", Value::EnumNumber(1)) => rules.ignore_if_zero = true,
                ("ignore", Value::EnumNumber(0)) => {}
                ("string", Value::Message(text)) => {
                    rules.value = ValueRules::Text(text_rules(text).map_err(fail)?);
                }
                ("int32" | "int64", Value::Message(number)) => {
                    rules.value = ValueRules::Integer(
                        number_rules(number, |value| match value {
                            Value::I32(n) => Some(i64::from(*n)),
                            Value::I64(n) => Some(*n),
                            _ => None,
                        })
                        .map_err(fail)?,
                    );
                }
                ("double", Value::Message(number)) => {
                    rules.value = ValueRules::Number(
                        number_rules(number, |value| value.as_f64()).map_err(fail)?,
                    );
                }
                ("enum", Value::Message(declared)) => {
                    let mut defined_only = false;
                    for (rule, value) in declared.fields() {
                        match (rule.name(), value) {
                            ("defined_only", Value::Bool(set)) => defined_only = *set,
                            (other, _) => return Err(fail(unsupported("enum", other))),
                        }
                    }
                    rules.value = ValueRules::Enum { defined_only };
                }
                ("field_mask", Value::Message(declared)) => {
                    rules.value = ValueRules::FieldMask(field_mask_rules(declared).map_err(fail)?);
                }
                ("repeated", Value::Message(repeated)) => {
                    let mut items = ItemRules::default();
                    for (rule, value) in repeated.fields() {
                        match (rule.name(), value) {
                            ("min_items", Value::U64(n)) => items.min_items = Some(*n),
                            ("max_items", Value::U64(n)) => items.max_items = Some(*n),
                            ("items", Value::Message(item)) => {
                                let item = item_rules(item).map_err(fail)?;
                                rules.value = item;
                            }
                            (other, _) => return Err(fail(unsupported("repeated", other))),
                        }
                    }
                    rules.items = Some(items);
                }
                (other, _) => return Err(fail(unsupported("field", other))),
            }
        }
        Ok(Some(rules))
    }
}

/// The message `field`'s `director.contract.v1.object_of` option names, if it has one;
/// refused on a field that is not a `google.protobuf.Value` or for an unknown message.
pub fn object_of(
    pool: &DescriptorPool,
    field: &FieldDescriptor,
    option: &ExtensionDescriptor,
) -> Result<Option<MessageDescriptor>, RuleError> {
    let options = field.options();
    if !options.has_extension(option) {
        return Ok(None);
    }
    let fail = |problem: RuleProblem| RuleError {
        field: field.full_name().to_owned(),
        problem,
    };
    let is_value =
        matches!(field.kind(), Kind::Message(kind) if kind.full_name() == "google.protobuf.Value");
    if !is_value || field.is_list() {
        return Err(fail(RuleProblem::ObjectOfNotAValue));
    }
    let name = options.get_extension(option);
    let name = name.as_str().unwrap_or_default();
    pool.get_message_by_name(name).map(Some).ok_or_else(|| {
        fail(RuleProblem::ObjectOfUnknown {
            message: name.to_owned(),
        })
    })
}

fn unsupported(group: &'static str, rule: &str) -> RuleProblem {
    RuleProblem::Unsupported {
        group,
        rule: rule.to_owned(),
    }
}

/// The value rules of a repeated field's items (`repeated.items`).
fn item_rules(declared: &DynamicMessage) -> Result<ValueRules, RuleProblem> {
    let mut value = ValueRules::None;
    for (rule, declared) in declared.fields() {
        match (rule.name(), declared) {
            ("string", Value::Message(text)) => value = ValueRules::Text(text_rules(text)?),
            (other, _) => return Err(unsupported("repeated.items", other)),
        }
    }
    Ok(value)
}

fn text_rules(declared: &DynamicMessage) -> Result<TextRules, RuleProblem> {
    let mut rules = TextRules::default();
    for (rule, value) in declared.fields() {
        match (rule.name(), value) {
            ("min_len", Value::U64(n)) => rules.min_len = Some(*n),
            ("max_len", Value::U64(n)) => rules.max_len = Some(*n),
            ("pattern", Value::String(pattern)) => {
                let compiled = Regex::new(pattern).map_err(|error| RuleProblem::BadPattern {
                    pattern: pattern.clone(),
                    error,
                })?;
                rules.pattern = Some(compiled);
            }
            ("email", Value::Bool(true)) => rules.format = Some(TextFormat::Email),
            ("uuid", Value::Bool(true)) => rules.format = Some(TextFormat::Uuid),
            ("uri", Value::Bool(true)) => rules.format = Some(TextFormat::Uri),
            (other, _) => return Err(unsupported("string", other)),
        }
    }
    Ok(rules)
}

fn field_mask_rules(declared: &DynamicMessage) -> Result<FieldMaskRules, RuleProblem> {
    let mut rules = FieldMaskRules::default();
    for (rule, value) in declared.fields() {
        let paths = || -> Vec<String> {
            value
                .as_list()
                .unwrap_or_default()
                .iter()
                .filter_map(|path| path.as_str().map(str::to_owned))
                .collect()
        };
        match rule.name() {
            "in" => rules.only = paths(),
            "not_in" => rules.not_in = paths(),
            other => return Err(unsupported("field_mask", other)),
        }
    }
    Ok(rules)
}

fn number_rules<T>(
    declared: &DynamicMessage,
    read: impl Fn(&Value) -> Option<T>,
) -> Result<NumberRules<T>, RuleProblem> {
    let mut rules = NumberRules {
        gt: None,
        gte: None,
        lt: None,
        lte: None,
        finite: false,
    };
    for (rule, value) in declared.fields() {
        let bound = || {
            read(value).ok_or_else(|| RuleProblem::NotANumber {
                rule: rule.name().to_owned(),
            })
        };
        match rule.name() {
            "gt" => rules.gt = Some(bound()?),
            "gte" => rules.gte = Some(bound()?),
            "lt" => rules.lt = Some(bound()?),
            "lte" => rules.lte = Some(bound()?),
            "finite" => rules.finite = value.as_bool() == Some(true),
            other => return Err(unsupported("number", other)),
        }
    }
    Ok(rules)
}
