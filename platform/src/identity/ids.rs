//! The ids a [`Caller`](super::Caller) is known by: its user ([`UserId`]) and its tenant
//! ([`TenantId`]). Each is a type of its own, so passing a user's id where a tenant's is
//! expected does not compile; both are non-empty text, checked by `parse` where a token is
//! decoded.
//!
//! Code that needs the text reads it through `as_str()` (a database bind) or `Deref`
//! (`&caller.tenant_id` is a `&str` wherever one is expected), and `Display` prints it. In a
//! job's payload an id is its text (serde), checked again when the payload is read.
//!
//! ```compile_fail,E0308
//! use director_platform::identity::{TenantId, UserId};
//!
//! fn rows_of(tenant: &TenantId) {}
//! let user = UserId::parse("u-1").unwrap();
//! rows_of(&user); // a user's id is not a tenant's
//! ```

use std::fmt;
use std::ops::Deref;

/// An id that was empty where a user or tenant was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the {0} id is empty")]
pub struct EmptyId(pub &'static str);

/// Declares a newtype over a non-empty `String` naming one kind of party.
macro_rules! text_id {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// `value` as an id, or [`EmptyId`] when it is empty.
            pub fn parse(value: impl Into<String>) -> Result<Self, EmptyId> {
                let value = value.into();
                if value.is_empty() {
                    Err(EmptyId($what))
                } else {
                    Ok(Self(value))
                }
            }

            /// `value` as an id without the check: for ids the process already holds (its
            /// own constants, a row it wrote), through [`Caller::new`](super::Caller::new).
            pub(super) fn trusted(value: String) -> Self {
                Self(value)
            }

            /// The id's text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        /// Written as its text (a job's payload names its tenant so).
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        /// Read back through [`Self::parse`]: an empty id does not deserialize.
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::parse(text).map_err(serde::de::Error::custom)
            }
        }
    };
}

text_id! {
    /// The user a request acts for (a token's `sub`), or a service identity for background
    /// jobs.
    UserId, "user"
}

text_id! {
    /// The tenant whose rows a request may see (row-level security's `app.tenant_id`).
    TenantId, "tenant"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_non_empty_text() {
        let tenant = TenantId::parse("t-1").expect("non-empty");
        assert_eq!(tenant.as_str(), "t-1");
        assert_eq!(tenant, "t-1");
        assert_eq!(tenant.to_string(), "t-1");
        assert_eq!(String::from(tenant), "t-1");
        assert_eq!(TenantId::parse(""), Err(EmptyId("tenant")));
        assert_eq!(
            UserId::parse(String::new()).expect_err("empty").to_string(),
            "the user id is empty"
        );
    }

    #[test]
    fn an_id_is_its_text_in_json_and_an_empty_one_does_not_read_back() {
        let tenant = TenantId::parse("t-1").expect("non-empty");
        let json = serde_json::to_string(&tenant).expect("serialises");
        assert_eq!(json, "\"t-1\"");
        assert_eq!(
            serde_json::from_str::<TenantId>(&json).expect("reads back"),
            tenant
        );
        let empty = serde_json::from_str::<TenantId>("\"\"").expect_err("empty");
        assert!(
            empty.to_string().contains("the tenant id is empty"),
            "{empty}"
        );
    }

    #[test]
    fn an_id_reads_as_str_where_one_is_expected() {
        fn length(text: &str) -> usize {
            text.len()
        }
        let user = UserId::parse("u-42").expect("non-empty");
        assert_eq!(length(&user), 4);
        assert!(user.starts_with("u-"));
    }
}
