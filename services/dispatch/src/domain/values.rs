//! Values checked once, where Dispatch takes them: each type is built only by parsing with
//! the platform's rule for it (declared with [`director_platform::checked_text!`], one line
//! each; a refusal is the platform's [`Refused`](director_platform::validate::Refused)), so
//! a row type or a store parameter holding one holds a value already checked. Read back from
//! our own tables they decode as they were written (sqlx-transparent over `text`).

use director_platform::checked_text;
use director_platform::domain_value::rule::{Bounded, Email as EmailRule, PhoneE164 as E164};

checked_text! {
    /// A phone number in E.164 form: `+` and 7 to 15 digits.
    pub struct PhoneE164: E164;
}

checked_text! {
    /// An e-mail address, trimmed, at most 320 characters.
    pub struct Email: EmailRule;
}

checked_text! {
    /// A task's title.
    pub struct Title: Bounded<255>;
}

checked_text! {
    /// A task's notes.
    pub struct Notes: Bounded<2000>;
}

checked_text! {
    /// A driver's name.
    pub struct DriverName: Bounded<255>;
}

checked_text! {
    /// A row's id in Vessey (`external_id`), the key imports match on.
    pub struct ExternalId: Bounded<255>;
}

checked_text! {
    /// The auth user id (`sub`) a driver signs in as (`drivers.user_id`).
    pub struct UserRef: Bounded<255>;
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
        assert_eq!(refused.to_string(), "must not contain NUL characters");
    }

    #[test]
    fn a_refusal_is_recorded_under_its_field() {
        let mut violations = director_platform::validate::Violations::new();
        assert_eq!(violations.check("phone", PhoneE164::parse("x")), None);
        assert!(!violations.is_empty());
    }
}
