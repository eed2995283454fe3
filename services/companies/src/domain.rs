//! Companies' domain core, the leaf the gRPC layer and the store both build on: the typed id
//! of a company and the checked values a company is made of, and what a new company and an
//! update carry.
//!
//! A value type can only be built by parsing, with the rules of
//! `director_platform::validate` (which every service shares), declared with
//! `director_platform::checked_text!` as every service declares its values; a bad value is recorded in the
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

use director_platform::checked_text;
use director_platform::domain_value::rule::{Bounded, Email as EmailRule, PhoneE164 as E164};

director_platform::uuid_id! {
    /// A company (its `id` column, and the `id` of `director.companies.v1.Company`).
    pub struct CompanyId;
}

checked_text! {
    /// A company's display name: trimmed, 1 to 255 characters, no NUL.
    pub struct CompanyName: Bounded<255>;
}

checked_text! {
    /// A contact e-mail address (RFC 5321/5322 syntax), trimmed, at most 320 characters.
    pub struct Email: EmailRule;
}

checked_text! {
    /// A phone number in E.164 form: `+` and 7 to 15 digits.
    pub struct PhoneE164: E164;
}

checked_text! {
    /// A postal address: free text, trimmed, 1 to 1000 characters, no NUL.
    pub struct Address: Bounded<1000>;
}

checked_text! {
    /// A farm's id in the Vessey collection system: trimmed, 1 to 255 characters, no NUL.
    pub struct ExternalId: Bounded<255>;
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
    use director_platform::validate::Violations;

    use super::*;

    #[test]
    fn values_are_normalised_by_the_shared_rules() {
        let mut violations = Violations::new();
        let name = CompanyName::check(&mut violations, "name", "  Hill Farm \t");
        assert_eq!(name.as_ref().map(CompanyName::as_str), Some("Hill Farm"));
        let phone = PhoneE164::check_optional(&mut violations, "phone", Some("+1 (555) 012-3456"));
        assert_eq!(
            phone.map(PhoneE164::into_string).as_deref(),
            Some("+15550123456")
        );
        let email = Email::check_optional(&mut violations, "email", Some(" a@b.example "));
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
            Email::check_optional(&mut violations, "email", Some("  ")),
            None
        );
        assert_eq!(
            PhoneE164::check_optional(&mut violations, "phone", None),
            None
        );
        assert_eq!(
            Address::check_optional(&mut violations, "address", Some(" ")),
            None
        );
        assert!(violations.is_empty());
        assert_eq!(
            Email::check_optional(&mut violations, "email", Some("nope")),
            None
        );
        assert_eq!(CompanyName::check(&mut violations, "name", " "), None);
        let long = "x".repeat(ExternalId::MAX_CHARS + 1);
        assert_eq!(
            ExternalId::check_optional(&mut violations, "external_id", Some(&long)),
            None
        );
        let status = violations.into_result().expect_err("three bad fields");
        assert_eq!(status.message(), "Invalid email, name, external_id");
    }
}
