//! Typed ids: one newtype per kind of row, so that passing a driver's id where a task's is
//! expected does not compile.
//!
//! Each service declares its own ids in its domain module with [`uuid_id!`]; the macro gives
//! every id the same shape, so no service writes the conversions again:
//!
//! - **database:** `sqlx::Type` (transparent over `uuid`), so an id binds and decodes as is.
//!   The derive is expanded in the service's crate, which links sqlx; this crate does not need
//!   to (the gateway uses it without a database).
//! - **gRPC edge:** ids travel as strings; the generated `parse_field` reads one or answers
//!   INVALID_ARGUMENT naming the field, and `Display` writes the canonical hyphenated form back.
//!
//! Each service's domain module shows, in a `compile_fail` doc test, that its ids do not mix.

/// Declares an id newtype over a UUID (see the [module docs](crate::domain_id)).
///
/// ```ignore
/// director_platform::uuid_id! {
///     /// A task.
///     pub struct TaskId;
/// }
/// ```
#[macro_export]
macro_rules! uuid_id {
    ($(#[$meta:meta])* $vis:vis struct $name:ident;) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::sqlx::Type)]
        #[sqlx(transparent)]
        $vis struct $name(::uuid::Uuid);

        impl $name {
            /// A new random id (version 4).
            pub fn new_random() -> Self {
                Self(::uuid::Uuid::new_v4())
            }

            /// The id held by a UUID read from somewhere already trusted (a row, a job).
            pub const fn from_uuid(uuid: ::uuid::Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> &::uuid::Uuid {
                &self.0
            }

            /// The id sent in `field` of a request, or INVALID_ARGUMENT naming the field.
            #[allow(clippy::result_large_err)]
            pub fn parse_field(field: &str, value: &str) -> Result<Self, ::tonic::Status> {
                $crate::validate::id(field, value).map(Self)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = ::uuid::Error;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                ::uuid::Uuid::try_parse(value).map(Self)
            }
        }
    };
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    crate::uuid_id! {
        /// An id for the tests.
        pub struct ThingId;
    }

    #[test]
    fn an_id_prints_and_parses_as_its_uuid() {
        let id = ThingId::new_random();
        let text = id.to_string();
        assert_eq!(text, id.as_uuid().hyphenated().to_string());
        assert_eq!(text.parse::<ThingId>().expect("its own text"), id);
        assert_eq!(ThingId::from_uuid(*id.as_uuid()), id);
        assert_eq!(
            ThingId::parse_field("thing_id", &text).expect("its own text"),
            id
        );
    }

    #[test]
    fn a_malformed_id_names_its_field() {
        let status = ThingId::parse_field("thing_id", "not-a-uuid").expect_err("not a UUID");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().contains("thing_id"),
            "{}",
            status.message()
        );
    }
}
