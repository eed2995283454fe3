//! Values Integrations takes from outside, each built by parsing: holding one means it passed
//! its rule. Phone numbers use `director_platform::validate`'s rule (the one every service
//! applies, declared with `director_platform::checked_text!`); the credentials' rules are the
//! service's own, refused with the platform's `Refused` all the same. Each keeps the text it was given,
//! normalised, and is stored as that text (`serde` goes through the same parse on the way in,
//! so a sealed settings section that no longer passes does not open).

use std::fmt;

use director_platform::checked_text;
use director_platform::domain_value::rule;
use director_platform::validate::Refused;
use serde::{Deserialize, Serialize};

/// Longest API key or auth token accepted, in characters.
const SECRET_MAX: usize = 512;

/// The common shape of a credential: `as_str`, and `serde` through `parse`.
macro_rules! parsed_text {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Refused;

            fn try_from(text: String) -> Result<Self, Self::Error> {
                Self::parse(&text)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}

checked_text! {
    /// A phone number in E.164 form (`+` and 7 to 15 digits), as the platform's rule
    /// normalises it.
    pub struct PhoneE164: rule::PhoneE164;
}

/// An API key or auth token: 1 to 512 printable ASCII characters without spaces. Never
/// printed: its `Debug` says only what it is.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ApiSecret(String);

impl ApiSecret {
    pub fn parse(text: &str) -> Result<Self, Refused> {
        let ok = !text.is_empty()
            && text.chars().count() <= SECRET_MAX
            && text.chars().all(|c| c.is_ascii_graphic());
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(Refused::rule(format!(
                "must be 1 to {SECRET_MAX} printable ASCII characters without spaces"
            )))
        }
    }
}

parsed_text!(ApiSecret);

/// A Twilio account SID: `AC` and 32 hexadecimal digits (it goes into Twilio's URL path),
/// trimmed. Treated as a secret: its `Debug` does not print it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountSid(String);

impl AccountSid {
    pub fn parse(text: &str) -> Result<Self, Refused> {
        let text = text.trim();
        let ok = text.len() == 34
            && text.starts_with("AC")
            && text[2..].chars().all(|c| c.is_ascii_hexdigit());
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(Refused::rule(
                "must be a Twilio account SID: 'AC' and 32 hexadecimal digits",
            ))
        }
    }
}

parsed_text!(AccountSid);

/// `Debug` that names the type only: the value is a credential.
macro_rules! redacted_debug {
    ($($name:ident),*) => {$(
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    )*};
}

redacted_debug!(ApiSecret, AccountSid);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn phone_numbers_are_normalised_by_the_platforms_rule() {
        let phone = PhoneE164::parse(" +1 (555) 010-0042 ").unwrap();
        assert_eq!(phone.as_str(), "+15550100042");
        assert_eq!(
            PhoneE164::parse("555").unwrap_err(),
            director_platform::validate::phone_e164("555").unwrap_err()
        );
        assert_eq!(
            serde_json::from_str::<PhoneE164>("\"+1 555 010 0042\"").unwrap(),
            PhoneE164::parse("+15550100042").unwrap()
        );
        assert!(serde_json::from_str::<PhoneE164>("\"555\"").is_err());
    }

    #[test]
    fn account_sids_and_secrets_are_checked() {
        assert!(AccountSid::parse(&format!("AC{}", "0f".repeat(16))).is_ok());
        assert!(AccountSid::parse("AC123").is_err());
        assert!(AccountSid::parse(&format!("AC{}/../x", "0".repeat(27))).is_err());
        assert!(ApiSecret::parse("abc def").is_err());
        assert!(ApiSecret::parse("").is_err());
        assert!(ApiSecret::parse("k-123").is_ok());
    }

    #[test]
    fn secrets_are_never_printed_and_are_checked_again_when_read() {
        let secret = ApiSecret::parse("sk_live_0123456789").unwrap();
        assert_eq!(format!("{secret:?}"), "ApiSecret([redacted])");
        let json = serde_json::to_string(&secret).unwrap();
        assert_eq!(json, "\"sk_live_0123456789\"");
        assert!(serde_json::from_str::<ApiSecret>("\"has a space\"").is_err());
    }
}
