//! Companies' domain core, the leaf the gRPC layer and the store both build on: the typed id
//! of a company and the checked values a company is made of, and what a new company and an
//! update carry.
//!
//! A value type can only be built by parsing, with the rules of
//! `director_platform::validate` (which every service shares); a bad value is recorded in the
//! request's [`Violations`] under the field it came from, and the request then fails naming
//! every bad field. So a [`NewCompany`] or a [`CompanyChanges`] holds nothing unchecked, and
//! neither does a stored row: the database gives back what was written by these rules (the
//! types encode and decode as the text or UUID inside, transparently).
//!
//! Ids do not mix with bare UUIDs (nor with other services' ids): the store takes a
//! [`CompanyId`], and a [`Uuid`](uuid::Uuid) does not compile in its place. The first call
//! below compiles; the second, the same call with a bare UUID, does not (E0308, mismatched
//! types).
//!
//! ```
//! # use director_companies::{domain::CompanyId, store::CompanyStore};
//! # async fn delete(store: &CompanyStore, caller: &director_platform::identity::Caller) {
//! let id = CompanyId::new_random();
//! let _ = store.soft_delete(caller, id).await;
//! # }
//! ```
//!
//! ```compile_fail,E0308
//! # use director_companies::store::CompanyStore;
//! # async fn delete(store: &CompanyStore, caller: &director_platform::identity::Caller) {
//! let id = uuid::Uuid::new_v4();
//! let _ = store.soft_delete(caller, id).await;
//! # }
//! ```

use director_platform::validate::{self, Violations};

/// Longest company name, in characters.
const NAME_MAX: usize = 255;
/// Longest postal address, in characters.
const ADDRESS_MAX: usize = 1000;
/// Longest Vessey farm id, in characters.
const EXTERNAL_ID_MAX: usize = 255;

director_platform::uuid_id! {
    /// A company (its `id` column, and the `id` of `director.companies.v1.Company`).
    pub struct CompanyId;
}

/// Declares a text value checked by one of `director_platform::validate`'s rules, stored as
/// the text itself.
macro_rules! checked_text {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, sqlx::Type)]
        #[sqlx(transparent)]
        pub struct $name(String);

        impl $name {
            /// The checked text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The checked text, for a message.
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

checked_text! {
    /// A company's display name: trimmed, 1 to 255 characters, no NUL.
    CompanyName
}

checked_text! {
    /// A contact e-mail address (RFC 5321/5322 syntax), trimmed, at most 320 characters.
    Email
}

checked_text! {
    /// A phone number in E.164 form: `+` and 7 to 15 digits.
    PhoneE164
}

checked_text! {
    /// A postal address: free text, trimmed, 1 to 1000 characters, no NUL.
    Address
}

checked_text! {
    /// A farm's id in the Vessey collection system: trimmed, 1 to 255 characters, no NUL.
    ExternalId
}

impl CompanyName {
    /// The required name sent in `field`, or a violation recorded under it.
    pub fn parse(violations: &mut Violations, field: &str, value: &str) -> Option<Self> {
        violations
            .check(field, validate::required_text(value, NAME_MAX))
            .map(Self)
    }
}

impl Email {
    /// The optional address sent in `field` (absent or blank: none), or a violation recorded
    /// under it.
    pub fn parse_optional(
        violations: &mut Violations,
        field: &str,
        value: Option<&str>,
    ) -> Option<Self> {
        validate::optional_with(violations, field, value, validate::email).map(Self)
    }
}

impl PhoneE164 {
    /// The optional number sent in `field` (absent or blank: none), normalised to E.164, or a
    /// violation recorded under it.
    pub fn parse_optional(
        violations: &mut Violations,
        field: &str,
        value: Option<&str>,
    ) -> Option<Self> {
        validate::optional_with(violations, field, value, validate::phone_e164).map(Self)
    }
}

impl Address {
    /// The optional address sent in `field` (absent or blank: none), or a violation recorded
    /// under it.
    pub fn parse_optional(
        violations: &mut Violations,
        field: &str,
        value: Option<&str>,
    ) -> Option<Self> {
        optional_text(violations, field, value, ADDRESS_MAX).map(Self)
    }
}

impl ExternalId {
    /// The required external id sent in `field`, or a violation recorded under it.
    pub fn parse(violations: &mut Violations, field: &str, value: &str) -> Option<Self> {
        violations
            .check(field, validate::required_text(value, EXTERNAL_ID_MAX))
            .map(Self)
    }

    /// The optional external id sent in `field` (absent or blank: none), or a violation
    /// recorded under it.
    pub fn parse_optional(
        violations: &mut Violations,
        field: &str,
        value: Option<&str>,
    ) -> Option<Self> {
        optional_text(violations, field, value, EXTERNAL_ID_MAX).map(Self)
    }
}

/// Optional bounded text by `validate::optional_text`: none when absent, blank or refused
/// (the refusal recorded under `field`).
fn optional_text(
    violations: &mut Violations,
    field: &str,
    value: Option<&str>,
    max_chars: usize,
) -> Option<String> {
    violations
        .check(field, validate::optional_text(value, max_chars))
        .flatten()
}

/// The checked fields of a new company.
#[derive(Debug, Clone)]
pub struct NewCompany {
    pub name: CompanyName,
    pub email: Option<Email>,
    pub phone: Option<PhoneE164>,
    pub address: Option<Address>,
    pub external_id: Option<ExternalId>,
}

/// The checked changes of an update: `None` leaves a column alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct CompanyChanges {
    pub name: Option<CompanyName>,
    pub email: Option<Option<Email>>,
    pub phone: Option<Option<PhoneE164>>,
    pub address: Option<Option<Address>>,
    pub external_id: Option<Option<ExternalId>>,
}

impl CompanyChanges {
    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.email.is_none()
            && self.phone.is_none()
            && self.address.is_none()
            && self.external_id.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_normalised_by_the_shared_rules() {
        let mut violations = Violations::new();
        let name = CompanyName::parse(&mut violations, "name", "  Hill Farm \t");
        assert_eq!(name.as_ref().map(CompanyName::as_str), Some("Hill Farm"));
        let phone = PhoneE164::parse_optional(&mut violations, "phone", Some("+1 (555) 012-3456"));
        assert_eq!(
            phone.map(PhoneE164::into_string).as_deref(),
            Some("+15550123456")
        );
        let email = Email::parse_optional(&mut violations, "email", Some(" a@b.example "));
        assert_eq!(
            email.map(Email::into_string).as_deref(),
            Some("a@b.example")
        );
        assert!(violations.is_empty());
    }

    #[test]
    fn blank_optional_values_are_absent_and_bad_ones_are_recorded_under_their_field() {
        let mut violations = Violations::new();
        assert_eq!(
            Email::parse_optional(&mut violations, "email", Some("  ")),
            None
        );
        assert_eq!(
            PhoneE164::parse_optional(&mut violations, "phone", None),
            None
        );
        assert_eq!(
            Address::parse_optional(&mut violations, "address", Some(" ")),
            None
        );
        assert!(violations.is_empty());
        assert_eq!(
            Email::parse_optional(&mut violations, "email", Some("nope")),
            None
        );
        assert_eq!(CompanyName::parse(&mut violations, "name", " "), None);
        let long = "x".repeat(EXTERNAL_ID_MAX + 1);
        assert_eq!(
            ExternalId::parse_optional(&mut violations, "external_id", Some(&long)),
            None
        );
        let status = violations.into_result().expect_err("three bad fields");
        assert_eq!(status.message(), "Invalid email, name, external_id");
    }
}
