//! Checked values: text newtypes built only by parsing with one of the platform's rules, and
//! [`Refused`], the typed answer of a rule that does not accept a value.
//!
//! Each service declares its values in its domain module with [`checked_text!`], one line
//! each, as it declares its ids with [`uuid_id!`](crate::uuid_id); the rule is a
//! [`TextRule`] ([`rule::Email`], [`rule::PhoneE164`], [`rule::Bounded`]), the rules
//! themselves being [`crate::validate`]'s. The macro gives every value the same shape:
//!
//! - **parsing:** `parse` (required) and `parse_optional` (absent or blank is `None`) answer
//!   the normalised value or [`Refused`]; `check` and `check_optional` record a refusal in the
//!   request's [`Violations`] under the field it came from instead.
//! - **database:** `sqlx::Type` (transparent over `text`): a value read back from our own
//!   tables decodes as it was written. The derive is expanded in the service's crate, which
//!   links sqlx; this crate does not need to.
//! - **serde:** written as its text, and read back through `parse`, so a stored document
//!   holding a value that no longer passes its rule does not open.

use std::fmt;

pub use crate::validate::{Refused, Violations};

/// A rule a checked text value is built by: the required form normalises or refuses; the
/// optional form reads absent or blank as `None` first.
pub trait TextRule {
    /// The most characters a value may hold.
    const MAX_CHARS: usize;

    /// The value, normalised, or why it is refused.
    fn required(value: &str) -> Result<String, Refused>;

    /// An optional value: absent or blank (any whitespace) is `None`, otherwise as
    /// [`Self::required`].
    fn optional(value: Option<&str>) -> Result<Option<String>, Refused> {
        value
            .filter(|value| !value.trim().is_empty())
            .map(Self::required)
            .transpose()
    }
}

/// The platform's rules, for [`checked_text!`].
pub mod rule {
    use super::{Refused, TextRule};
    use crate::validate;

    /// An e-mail address (RFC 5321/5322 syntax), trimmed, at most 320 characters.
    #[derive(Debug)]
    pub enum Email {}

    impl TextRule for Email {
        const MAX_CHARS: usize = validate::EMAIL_MAX_CHARS;

        fn required(value: &str) -> Result<String, Refused> {
            validate::email(value)
        }
    }

    /// A phone number normalised to E.164: `+` and 7 to 15 digits.
    #[derive(Debug)]
    pub enum PhoneE164 {}

    impl TextRule for PhoneE164 {
        const MAX_CHARS: usize = 16;

        fn required(value: &str) -> Result<String, Refused> {
            validate::phone_e164(value)
        }
    }

    /// Free text trimmed of ASCII whitespace, 1 to `MAX` characters, no NUL; blank optional
    /// text is absent.
    #[derive(Debug)]
    pub enum Bounded<const MAX: usize> {}

    impl<const MAX: usize> TextRule for Bounded<MAX> {
        const MAX_CHARS: usize = MAX;

        fn required(value: &str) -> Result<String, Refused> {
            validate::required_text(value, MAX)
        }

        fn optional(value: Option<&str>) -> Result<Option<String>, Refused> {
            validate::optional_text(value, MAX)
        }
    }
}

/// Writes the checked text `value` (the `Display` of every [`checked_text!`] value).
#[doc(hidden)]
pub fn write_text(value: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(value)
}

/// What [`checked_text!`]'s expansion names in a crate that need not depend on it.
#[doc(hidden)]
pub mod __private {
    pub use serde;
}

/// Declares a text newtype built only by parsing with a [`TextRule`] (see the
/// [module docs](crate::domain_value)).
///
/// ```ignore
/// director_platform::checked_text! {
///     /// A task's title.
///     pub struct Title: director_platform::domain_value::rule::Bounded<255>;
/// }
/// ```
#[macro_export]
macro_rules! checked_text {
    ($(#[$meta:meta])* $vis:vis struct $name:ident: $rule:ty;) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, ::sqlx::Type)]
        #[sqlx(transparent)]
        $vis struct $name(String);

        impl $name {
            /// The most characters it may hold.
            pub const MAX_CHARS: usize = <$rule as $crate::domain_value::TextRule>::MAX_CHARS;

            /// The value, normalised, or why it is refused.
            pub fn parse(value: &str) -> Result<Self, $crate::domain_value::Refused> {
                <$rule as $crate::domain_value::TextRule>::required(value).map(Self)
            }

            /// An optional value: absent or blank is `None`; otherwise as [`Self::parse`].
            pub fn parse_optional(
                value: Option<&str>,
            ) -> Result<Option<Self>, $crate::domain_value::Refused> {
                <$rule as $crate::domain_value::TextRule>::optional(value)
                    .map(|value| value.map(Self))
            }

            /// The required value sent in `field`, or its refusal recorded under it.
            pub fn check(
                violations: &mut $crate::domain_value::Violations,
                field: &str,
                value: &str,
            ) -> Option<Self> {
                violations.check(field, Self::parse(value))
            }

            /// The optional value sent in `field`: none when absent, blank or refused (the
            /// refusal recorded under `field`).
            pub fn check_optional(
                violations: &mut $crate::domain_value::Violations,
                field: &str,
                value: Option<&str>,
            ) -> Option<Self> {
                violations.check(field, Self::parse_optional(value)).flatten()
            }

            /// The checked text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The checked text, for a message or a reply.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                $crate::domain_value::write_text(&self.0, f)
            }
        }

        impl ::std::convert::From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl $crate::domain_value::__private::serde::Serialize for $name {
            fn serialize<S>(&self, serializer: S) -> Result<S::Ok, S::Error>
            where
                S: $crate::domain_value::__private::serde::Serializer,
            {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> $crate::domain_value::__private::serde::Deserialize<'de> for $name {
            fn deserialize<D>(deserializer: D) -> Result<Self, D::Error>
            where
                D: $crate::domain_value::__private::serde::Deserializer<'de>,
            {
                let text =
                    <String as $crate::domain_value::__private::serde::Deserialize>::deserialize(
                        deserializer,
                    )?;
                Self::parse(&text)
                    .map_err(<D::Error as $crate::domain_value::__private::serde::de::Error>::custom)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use declared::{Address, Name, Phone};

    /// Values declared as a service declares them (not every generated method is used here).
    #[allow(dead_code)]
    mod declared {
        use crate::domain_value::rule::{Bounded, Email, PhoneE164};

        crate::checked_text! {
            /// A name for the tests.
            pub struct Name: Bounded<5>;
        }

        crate::checked_text! {
            /// A phone for the tests.
            pub struct Phone: PhoneE164;
        }

        crate::checked_text! {
            /// An address for the tests.
            pub struct Address: Email;
        }
    }

    #[test]
    fn a_value_is_normalised_by_its_rule_or_refused_with_the_rules_sentence() {
        assert_eq!(
            Name::parse("  Acme ").map(Name::into_string).as_deref(),
            Ok("Acme")
        );
        assert_eq!(
            Name::parse("Acme Farm"),
            Err(Refused::TooLong { max_chars: 5 })
        );
        assert_eq!(Name::MAX_CHARS, 5);
        assert_eq!(Name::parse(" "), Err(Refused::Empty));
        assert_eq!(
            Phone::parse("+1 (555) 012-3456")
                .map(Phone::into_string)
                .as_deref(),
            Ok("+15550123456")
        );
        assert_eq!(
            Phone::parse("555").expect_err("too short").to_string(),
            "must be an E.164 phone number: '+' and 7 to 15 digits"
        );
        assert_eq!(Address::parse("nope"), Err(Refused::NotEmail));
    }

    #[test]
    fn blank_optional_values_are_absent_and_refusals_are_recorded_under_their_field() {
        assert_eq!(Name::parse_optional(Some("  ")), Ok(None));
        assert_eq!(Phone::parse_optional(None), Ok(None));
        assert_eq!(Address::parse_optional(Some("\u{a0}")), Ok(None));
        let mut violations = Violations::new();
        assert_eq!(
            Phone::check_optional(&mut violations, "phone", Some(" ")),
            None
        );
        assert!(violations.is_empty());
        assert_eq!(
            Phone::check_optional(&mut violations, "phone", Some("12")),
            None
        );
        assert_eq!(Name::check(&mut violations, "name", "a\0"), None);
        let status = violations.into_result().expect_err("two refusals");
        assert_eq!(status.message(), "Invalid phone, name");
    }

    #[test]
    fn serde_writes_the_text_and_reads_it_back_through_the_rule() {
        let phone = Phone::parse("+44 20 7946 0958").expect("a phone");
        let json = serde_json::to_string(&phone).expect("serialises");
        assert_eq!(json, "\"+442079460958\"");
        assert_eq!(
            serde_json::from_str::<Phone>(&json).expect("reads back"),
            phone
        );
        assert!(serde_json::from_str::<Phone>("\"0207\"").is_err());
        assert_eq!(phone.to_string(), "+442079460958");
    }
}
