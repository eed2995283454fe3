//! Normalisation every service applies the same way (text trimmed of ASCII whitespace, blank
//! optional text absent, E.164 phone numbers, UUIDs and dates parsed, skip/limit pages), and
//! the rules the contracts cannot declare: fields of an update checked per `update_mask`, the
//! service-to-service batches, and a date that must exist.
//!
//! Public requests are first checked against their contract's `buf.validate` rules
//! ([`crate::contract_rules::check`]); what those rules cover is not checked again here.
//! Each rule answers the normalised value or why it is refused ([`Refused`], whose `Display`
//! is the sentence saying what is wrong); `Violations` gathers the sentences per field so one
//! answer names every bad field at once. Services build their checked values on these rules
//! with [`crate::checked_text!`].

use std::fmt::Display;

use uuid::Uuid;

use crate::error::{FieldViolation, invalid_argument};

/// Default page size of list RPCs when `limit` is not given.
pub const DEFAULT_PAGE_LIMIT: i64 = 100;
/// Largest page size; larger requests are capped to it.
pub const MAX_PAGE_LIMIT: i64 = 500;
/// Longest e-mail address accepted, in characters.
pub const EMAIL_MAX_CHARS: usize = 320;

/// Why a rule refused a value: each variant's `Display` is the sentence of the field
/// violation the request answers ("must be …").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Required text that is blank.
    #[error("must not be empty")]
    Empty,
    /// Text holding a NUL character (PostgreSQL `text` cannot store one).
    #[error("must not contain NUL characters")]
    Nul,
    /// Text longer than its bound.
    #[error("must be at most {max_chars} characters")]
    TooLong { max_chars: usize },
    /// Not an e-mail address.
    #[error("must be a valid e-mail address")]
    NotEmail,
    /// Not a phone number in E.164 form.
    #[error("must be an E.164 phone number: '+' and 7 to 15 digits")]
    NotE164,
    /// Not a UUID.
    #[error("must be a UUID")]
    NotUuid,
    /// Not a calendar day written `YYYY-MM-DD`.
    #[error("must be a date written YYYY-MM-DD")]
    NotDate,
    /// A negative, infinite or NaN amount.
    #[error("must be a finite number, 0 or more")]
    NotNonNegative,
    /// A service's own rule, in its words (a credential's shape, an enum number).
    #[error("{0}")]
    Rule(String),
}

impl Refused {
    /// The refusal of a service's own rule, saying what the value must be.
    pub fn rule(sentence: impl Into<String>) -> Self {
        Self::Rule(sentence.into())
    }
}

/// The field violations found while validating one request.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// No violations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` is wrong.
    pub fn add(&mut self, field: &str, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.to_owned(),
            description: description.into(),
        });
    }

    /// Keeps the value of a passed rule, or records the refusal (its sentence) under `field`.
    pub fn check<T>(&mut self, field: &str, outcome: Result<T, impl Display>) -> Option<T> {
        match outcome {
            Ok(value) => Some(value),
            Err(refused) => {
                self.add(field, refused.to_string());
                None
            }
        }
    }

    /// Whether nothing was wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when nothing was wrong, else INVALID_ARGUMENT naming every bad field.
    pub fn into_result(self) -> Result<(), tonic::Status> {
        if self.0.is_empty() {
            return Ok(());
        }
        let fields: Vec<&str> = self.0.iter().map(|v| v.field.as_str()).collect();
        let message = format!("Invalid {}", fields.join(", "));
        Err(invalid_argument(&message, self.0))
    }
}

/// Text trimmed of ASCII whitespace (what the contracts' not-blank pattern counts as blank).
pub fn trimmed(value: &str) -> String {
    value.trim_ascii().to_owned()
}

/// Optional text trimmed; blank means absent.
pub fn present(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim_ascii)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}

/// Required text: trimmed, 1 to `max_chars` characters.
pub fn required_text(value: &str, max_chars: usize) -> Result<String, Refused> {
    let trimmed = value.trim_ascii();
    if trimmed.is_empty() {
        return Err(Refused::Empty);
    }
    within_length(trimmed, max_chars)
}

/// Optional text: trimmed; blank means absent; at most `max_chars` characters.
pub fn optional_text(value: Option<&str>, max_chars: usize) -> Result<Option<String>, Refused> {
    match value.map(str::trim_ascii) {
        None | Some("") => Ok(None),
        Some(trimmed) => within_length(trimmed, max_chars).map(Some),
    }
}

fn within_length(value: &str, max_chars: usize) -> Result<String, Refused> {
    // PostgreSQL text cannot hold NUL; refuse it here so the field is named in the answer.
    if value.contains('\0') {
        Err(Refused::Nul)
    } else if value.chars().count() > max_chars {
        Err(Refused::TooLong { max_chars })
    } else {
        Ok(value.to_owned())
    }
}

/// An e-mail address (RFC 5321/5322 syntax), trimmed, at most 320 characters.
pub fn email(value: &str) -> Result<String, Refused> {
    let trimmed = value.trim();
    if trimmed.chars().count() > EMAIL_MAX_CHARS || !email_address::EmailAddress::is_valid(trimmed)
    {
        return Err(Refused::NotEmail);
    }
    Ok(trimmed.to_owned())
}

/// A phone number in E.164 form. Spaces, dots, dashes and parentheses are tolerated on input
/// and removed; the answer is `+` followed by 7 to 15 digits.
pub fn phone_e164(value: &str) -> Result<String, Refused> {
    let trimmed = value.trim();
    let Some(rest) = trimmed.strip_prefix('+') else {
        return Err(Refused::NotE164);
    };
    let mut digits = String::with_capacity(rest.len() + 1);
    digits.push('+');
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '.' | '-' | '(' | ')' => {}
            _ => return Err(Refused::NotE164),
        }
    }
    if (8..=16).contains(&digits.len()) {
        Ok(digits)
    } else {
        Err(Refused::NotE164)
    }
}

/// A UUID in its canonical hyphenated form (any case).
pub fn uuid(value: &str) -> Result<Uuid, Refused> {
    Uuid::try_parse(value.trim()).map_err(|_| Refused::NotUuid)
}

/// A required UUID named `field` (a path parameter), or INVALID_ARGUMENT naming the field.
pub fn id(field: &str, value: &str) -> Result<Uuid, tonic::Status> {
    uuid(value).map_err(|refused| {
        invalid_argument(
            &format!("Invalid {field}"),
            vec![FieldViolation::new(field, refused.to_string())],
        )
    })
}

/// A bulk request's list `field` holds 1 to `max` items; a violation is recorded otherwise.
/// Answers whether the size is acceptable (items are worth checking one by one).
pub fn batch_size(violations: &mut Violations, field: &str, len: usize, max: usize) -> bool {
    let fits = (1..=max).contains(&len);
    if !fits {
        violations.add(field, format!("must hold 1 to {max} items, not {len}"));
    }
    fits
}

/// Records a violation under `field[i].key` for every item whose key repeats an earlier
/// item's (bulk upserts by key must not name a row twice).
pub fn distinct_keys<'a>(
    violations: &mut Violations,
    field: &str,
    key: &str,
    keys: impl IntoIterator<Item = &'a str>,
) {
    let mut seen = std::collections::HashSet::new();
    for (index, value) in keys.into_iter().enumerate() {
        if !seen.insert(value) {
            violations.add(
                &format!("{field}[{index}].{key}"),
                "repeats an earlier item's",
            );
        }
    }
}

/// A calendar day written `YYYY-MM-DD`.
pub fn date(value: &str) -> Result<chrono::NaiveDate, Refused> {
    chrono::NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").map_err(|_| Refused::NotDate)
}

/// A number of litres (or any amount): finite and 0 or more.
pub fn non_negative(value: f64) -> Result<f64, Refused> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(Refused::NotNonNegative)
    }
}

/// One page of a list: rows to skip and rows to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Rows skipped, 0 or more.
    pub offset: i64,
    /// Rows returned, 1 to [`MAX_PAGE_LIMIT`].
    pub limit: i64,
}

/// Reads `skip` (default 0, not negative) and `limit` (default 100, at least 1, capped at 500).
pub fn page(skip: Option<i32>, limit: Option<i32>, violations: &mut Violations) -> Page {
    let offset = match skip {
        None => 0,
        Some(skip) if skip >= 0 => i64::from(skip),
        Some(_) => {
            violations.add("skip", "must be 0 or more");
            0
        }
    };
    let limit = match limit {
        None => DEFAULT_PAGE_LIMIT,
        Some(limit) if limit >= 1 => i64::from(limit).min(MAX_PAGE_LIMIT),
        Some(_) => {
            violations.add("limit", "must be 1 or more");
            DEFAULT_PAGE_LIMIT
        }
    };
    Page { offset, limit }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_normalised_to_e164() {
        assert_eq!(
            phone_e164("+1 (555) 012-3456").as_deref(),
            Ok("+15550123456")
        );
        assert_eq!(
            phone_e164(" +44.20.7946.0958 ").as_deref(),
            Ok("+442079460958")
        );
    }

    #[test]
    fn phone_numbers_without_plus_or_with_letters_or_wrong_length_are_rejected() {
        for bad in [
            "5550123456",
            "+1555abc1234",
            "+123456",
            "+1234567890123456",
            "+",
        ] {
            assert!(phone_e164(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(required_text("  Acme  ", 255).as_deref(), Ok("Acme"));
        assert!(required_text("   ", 255).is_err());
        assert!(required_text(&"x".repeat(256), 255).is_err());
        assert!(required_text(&"é".repeat(255), 255).is_ok());
    }

    #[test]
    fn emails_must_be_addresses() {
        assert_eq!(email(" a@b.example ").as_deref(), Ok("a@b.example"));
        assert!(email("not-an-email").is_err());
        assert!(email("a@").is_err());
    }

    #[test]
    fn pages_default_cap_and_reject_negative_values() {
        let mut violations = Violations::new();
        assert_eq!(
            page(None, None, &mut violations),
            Page {
                offset: 0,
                limit: 100
            }
        );
        assert_eq!(
            page(Some(5), Some(10_000), &mut violations),
            Page {
                offset: 5,
                limit: 500
            }
        );
        assert!(violations.is_empty());
        page(Some(-1), Some(0), &mut violations);
        assert!(violations.into_result().is_err());
    }

    #[test]
    fn text_with_a_nul_character_is_rejected() {
        assert!(required_text("Acme\0Farm", 255).is_err());
        assert!(optional_text(Some("a\0"), 10).is_err());
    }

    #[test]
    fn dates_are_calendar_days() {
        assert_eq!(
            date("2026-11-22"),
            Ok(chrono::NaiveDate::from_ymd_opt(2026, 11, 22).expect("valid date"))
        );
        for bad in ["2026-02-30", "22/11/2026", "2026-11-22T00:00:00Z", ""] {
            assert!(date(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn amounts_are_finite_and_not_negative() {
        assert_eq!(non_negative(0.0), Ok(0.0));
        assert!(non_negative(-0.5).is_err());
        assert!(non_negative(f64::NAN).is_err());
        assert!(non_negative(f64::INFINITY).is_err());
    }

    #[test]
    fn ids_name_their_field_when_they_are_not_uuids() {
        assert!(id("id", "6f1c0e6e-2b1a-4c3e-9a53-0d2f4f7b9a10").is_ok());
        let status = id("driver_id", "42").expect_err("not a UUID");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), "Invalid driver_id");
    }

    #[test]
    fn blank_optional_text_means_absent() {
        assert_eq!(optional_text(Some("  "), 10), Ok(None));
        assert_eq!(optional_text(None, 10), Ok(None));
        assert!(optional_text(Some("12345678901"), 10).is_err());
    }

    #[test]
    fn batches_must_hold_1_to_max_items_with_distinct_keys() {
        let mut violations = Violations::new();
        assert!(batch_size(&mut violations, "tasks", 3, 1000));
        assert!(violations.is_empty());
        assert!(!batch_size(&mut violations, "tasks", 0, 1000));
        assert!(!batch_size(&mut violations, "tasks", 1001, 1000));
        let mut repeated = Violations::new();
        distinct_keys(&mut repeated, "tasks", "external_id", ["a", "b", "a"]);
        let status = repeated
            .into_result()
            .expect_err("a repeated key is a violation");
        assert!(
            status.message().contains("tasks[2].external_id"),
            "{status:?}"
        );
        assert!(violations.into_result().is_err());
    }
}
