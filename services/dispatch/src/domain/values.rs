//! Values checked once, where Dispatch takes them: each type is built only by parsing with
//! the platform's rule for it ([`director_platform::validate`], wrapped here, not copied), so
//! a row type or a store parameter holding one holds a value already checked. Read back from
//! our own tables they decode as they were written (sqlx-transparent over `text`).

use director_platform::validate::{self, Violations};

/// Why a value was refused: a sentence for its field violation ("must be …").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(String);

impl Refused {
    /// The sentence, for a field violation.
    pub fn into_description(self) -> String {
        self.0
    }
}

/// Keeps a parsed value, or records under `field` why it was refused.
pub fn check<T>(violations: &mut Violations, field: &str, parsed: Result<T, Refused>) -> Option<T> {
    violations.check(field, parsed.map_err(Refused::into_description))
}

/// Declares a checked text newtype: `parse` (required) and `parse_optional` (absent or blank
/// is `None`) with the given platform rules.
macro_rules! checked_text {
    (
        $(#[$meta:meta])*
        pub struct $name:ident;
        required: $required:expr,
        optional: $optional:expr $(,)?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, sqlx::Type)]
        #[sqlx(transparent)]
        pub struct $name(String);

        impl $name {
            /// The value, normalised, or why it is refused.
            pub fn parse(value: &str) -> Result<Self, Refused> {
                let rule: fn(&str) -> Result<String, String> = $required;
                rule(value).map(Self).map_err(Refused)
            }

            /// An optional value: absent or blank is `None`; otherwise as [`Self::parse`].
            pub fn parse_optional(value: Option<&str>) -> Result<Option<Self>, Refused> {
                let rule: fn(Option<&str>) -> Result<Option<String>, String> = $optional;
                rule(value)
                    .map(|value| value.map(Self))
                    .map_err(Refused)
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The text, for a message.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// Declares a checked text newtype of at most `max` characters, trimmed, never empty.
macro_rules! bounded_text {
    ($(#[$meta:meta])* pub struct $name:ident; max: $max:expr) => {
        checked_text! {
            $(#[$meta])*
            pub struct $name;
            required: |value| validate::required_text(value, $max),
            optional: |value| validate::optional_text(value, $max),
        }

        impl $name {
            /// The most characters it may hold.
            pub const MAX_CHARS: usize = $max;
        }
    };
}

/// Optional text checked with `rule` unless absent or blank (as
/// [`validate::optional_with`] does).
fn unless_blank(
    value: Option<&str>,
    rule: fn(&str) -> Result<String, String>,
) -> Result<Option<String>, String> {
    value
        .filter(|value| !value.trim().is_empty())
        .map(rule)
        .transpose()
}

checked_text! {
    /// A phone number in E.164 form: `+` and 7 to 15 digits.
    pub struct PhoneE164;
    required: validate::phone_e164,
    optional: |value| unless_blank(value, validate::phone_e164),
}

checked_text! {
    /// An e-mail address, trimmed, at most 320 characters.
    pub struct Email;
    required: validate::email,
    optional: |value| unless_blank(value, validate::email),
}

bounded_text! {
    /// A task's title.
    pub struct Title;
    max: 255
}

bounded_text! {
    /// A task's notes.
    pub struct Notes;
    max: 2000
}

bounded_text! {
    /// A driver's name.
    pub struct DriverName;
    max: 255
}

bounded_text! {
    /// A row's id in Vessey (`external_id`), the key imports match on.
    pub struct ExternalId;
    max: 255
}

bounded_text! {
    /// The auth user id (`sub`) a driver signs in as (`drivers.user_id`).
    pub struct UserRef;
    max: 255
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phone_is_normalised_or_refused() {
        assert_eq!(
            PhoneE164::parse(" +44 (20) 7946-0958 ")
                .expect("a phone")
                .as_str(),
            "+442079460958"
        );
        assert!(PhoneE164::parse("020 7946 0958").is_err());
        assert_eq!(PhoneE164::parse_optional(Some("  ")), Ok(None));
        assert!(PhoneE164::parse_optional(Some("12")).is_err());
    }

    #[test]
    fn an_email_is_checked() {
        assert_eq!(
            Email::parse(" ada@example.com ")
                .expect("an address")
                .as_str(),
            "ada@example.com"
        );
        assert!(Email::parse("not an address").is_err());
        assert_eq!(Email::parse_optional(None), Ok(None));
    }

    #[test]
    fn bounded_text_is_trimmed_and_bounded() {
        assert_eq!(
            Title::parse("  Collect ").expect("a title").as_str(),
            "Collect"
        );
        assert!(Title::parse("   ").is_err());
        assert!(Title::parse(&"x".repeat(Title::MAX_CHARS + 1)).is_err());
        assert!(Notes::parse(&"x".repeat(Notes::MAX_CHARS)).is_ok());
        assert_eq!(ExternalId::parse_optional(Some(" ")), Ok(None));
        let refused = DriverName::parse("a\0b").expect_err("NUL refused");
        assert_eq!(
            refused.into_description(),
            "must not contain NUL characters"
        );
    }

    #[test]
    fn a_refusal_is_recorded_under_its_field() {
        let mut violations = Violations::new();
        assert_eq!(check(&mut violations, "phone", PhoneE164::parse("x")), None);
        assert!(!violations.is_empty());
    }
}
