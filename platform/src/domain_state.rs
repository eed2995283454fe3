//! Stored states: an enum kept in a `text` column, one name per variant, declared once with
//! [`stored_as_text!`] by each service's domain module (task and driver status, job kind,
//! notification channel, ...).
//!
//! The enum binds as `text` (so `$1::text IS NULL OR status = $1` and `text[]` arrays work
//! unchanged) and decodes from it; a name that is none of the enum's is a decoding error
//! ([`UnknownValue`], surfacing as `sqlx::Error::ColumnDecode`), so a row we wrote never turns
//! silently into a default. The sqlx impls are written out rather than derived so that binding
//! needs no look-up of a type by name, and they expand in the service's crate, which links
//! sqlx: this crate does not (the gateway uses it without a database).

/// A stored text, or a number read as an enum, that names no value of its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a known {kind}")]
pub struct UnknownValue {
    /// Which kind of value (`task status`).
    pub kind: &'static str,
    /// What was read.
    pub value: String,
}

impl UnknownValue {
    /// `value` names no `kind`.
    pub fn new(kind: &'static str, value: &str) -> Self {
        Self {
            kind,
            value: value.to_owned(),
        }
    }
}

/// Declares `ALL`, `as_str`, `FromStr`, `Display` and the sqlx `Type`/`Encode`/`Decode` (and
/// `text[]`) of a fieldless enum from its table of stored names; `$kind` names the enum in
/// errors (see the [module docs](crate::domain_state)).
///
/// ```ignore
/// #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
/// pub enum DriverStatus { Active, Inactive }
///
/// director_platform::stored_as_text!("driver status", DriverStatus {
///     Active => "active",
///     Inactive => "inactive",
/// });
/// ```
#[macro_export]
macro_rules! stored_as_text {
    ($kind:literal, $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            /// Every value, in the order the migrations list them.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The name stored in the database (and used in messages).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::domain_state::UnknownValue;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $($text => Ok(Self::$variant),)+
                    other => Err($crate::domain_state::UnknownValue::new($kind, other)),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::sqlx::Type<::sqlx::Postgres> for $name {
            fn type_info() -> ::sqlx::postgres::PgTypeInfo {
                <&str as ::sqlx::Type<::sqlx::Postgres>>::type_info()
            }

            fn compatible(ty: &::sqlx::postgres::PgTypeInfo) -> bool {
                <&str as ::sqlx::Type<::sqlx::Postgres>>::compatible(ty)
            }
        }

        impl ::sqlx::postgres::PgHasArrayType for $name {
            fn array_type_info() -> ::sqlx::postgres::PgTypeInfo {
                <&str as ::sqlx::postgres::PgHasArrayType>::array_type_info()
            }

            fn array_compatible(ty: &::sqlx::postgres::PgTypeInfo) -> bool {
                <&str as ::sqlx::postgres::PgHasArrayType>::array_compatible(ty)
            }
        }

        impl<'q> ::sqlx::Encode<'q, ::sqlx::Postgres> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut ::sqlx::postgres::PgArgumentBuffer,
            ) -> Result<::sqlx::encode::IsNull, ::sqlx::error::BoxDynError> {
                <&str as ::sqlx::Encode<'q, ::sqlx::Postgres>>::encode(self.as_str(), buf)
            }

            fn size_hint(&self) -> usize {
                self.as_str().len()
            }
        }

        impl<'r> ::sqlx::Decode<'r, ::sqlx::Postgres> for $name {
            fn decode(
                value: ::sqlx::postgres::PgValueRef<'r>,
            ) -> Result<Self, ::sqlx::error::BoxDynError> {
                let text = <&str as ::sqlx::Decode<'r, ::sqlx::Postgres>>::decode(value)?;
                Ok(text.parse::<Self>()?)
            }
        }
    };
}
