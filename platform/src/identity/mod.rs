//! Who is calling: the verified identity services act on.
//!
//! The gateway authenticates end users (Supabase tokens) and forwards each request with a
//! short-lived *internal* token ([`InternalTokens`]) carrying a [`Caller`]. Services trust
//! only that token: [`InternalAuthLayer`] verifies it on every request and puts the `Caller`
//! in the request extensions, where handlers read it with [`caller`].

mod ids;
mod internal;
mod layer;
pub mod user_token;

use std::fmt;
use std::str::FromStr;

pub use ids::{EmptyId, TenantId, UserId};
pub use internal::{
    DEV_INTERNAL_TOKEN_SECRET, INTERNAL_AUDIENCE, INTERNAL_ISSUER, InternalTokenConfig,
    InternalTokens, MIN_SECRET_LEN, TokenError,
};
pub use layer::{InternalAuth, InternalAuthLayer};

/// What a caller may do within its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything in the tenant.
    Admin,
    /// Manages companies, drivers and tasks.
    Dispatcher,
    /// Sees and acts on the tasks assigned to them only.
    Driver,
}

impl Role {
    /// `admin`, `dispatcher` or `driver`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Dispatcher => "dispatcher",
            Self::Driver => "driver",
        }
    }
}

/// A role name that is not `admin`, `dispatcher` or `driver`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected admin, dispatcher or driver")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    /// Accepts the lowercase names; other casings too, since claims come from many tools.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw.to_ascii_lowercase().as_str() {
            "admin" => Ok(Self::Admin),
            "dispatcher" => Ok(Self::Dispatcher),
            "driver" => Ok(Self::Driver),
            _ => Err(UnknownRole(raw.to_owned())),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The authenticated identity a request acts for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Caller {
    /// The user (token `sub`), or a service identity for background jobs.
    pub user_id: UserId,
    /// The tenant whose rows the request may see.
    pub tenant_id: TenantId,
    /// What the caller may do.
    pub role: Role,
}

impl Caller {
    /// The caller named by a token's claims: [`EmptyId`] when the user or the tenant is
    /// empty. Where a token is decoded (the gateway's user tokens, [`InternalTokens::verify`]).
    pub fn parse(
        user_id: impl Into<String>,
        tenant_id: impl Into<String>,
        role: Role,
    ) -> Result<Self, EmptyId> {
        Ok(Self {
            user_id: UserId::parse(user_id)?,
            tenant_id: TenantId::parse(tenant_id)?,
            role,
        })
    }

    /// A caller the process itself vouches for: ids it holds already (a background job's
    /// service identity and the tenant of a row it wrote, a test's constants). Not checked;
    /// ids from outside go through [`Caller::parse`].
    pub fn new(user_id: impl Into<String>, tenant_id: impl Into<String>, role: Role) -> Self {
        Self {
            user_id: UserId::trusted(user_id.into()),
            tenant_id: TenantId::trusted(tenant_id.into()),
            role,
        }
    }

    /// Whether the caller may create, change or delete companies, drivers and tasks:
    /// admins and dispatchers.
    pub fn can_write(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Dispatcher)
    }

    /// Whether the caller is a driver (sees only their own tasks).
    pub fn is_driver(&self) -> bool {
        self.role == Role::Driver
    }
}

/// The [`Caller`] that [`InternalAuthLayer`] attached to this request, or UNAUTHENTICATED
/// (a service mounted without the layer, or a route the layer exempts).
pub fn caller<T>(request: &tonic::Request<T>) -> Result<Caller, tonic::Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| tonic::Status::unauthenticated("missing caller identity"))
}

/// The caller of `request` if their role may write (admins and dispatchers); otherwise
/// PERMISSION_DENIED with `denial` as the message.
pub fn writer<T>(request: &tonic::Request<T>, denial: &str) -> Result<Caller, tonic::Status> {
    let caller = caller(request)?;
    if caller.can_write() {
        Ok(caller)
    } else {
        Err(tonic::Status::permission_denied(denial))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_from_their_names_only() {
        for role in [Role::Admin, Role::Dispatcher, Role::Driver] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert_eq!("Admin".parse::<Role>(), Ok(Role::Admin));
        assert!("owner".parse::<Role>().is_err());
        assert!("".parse::<Role>().is_err());
    }

    #[test]
    fn only_admins_and_dispatchers_can_write() {
        assert!(Caller::new("u", "t", Role::Admin).can_write());
        assert!(Caller::new("u", "t", Role::Dispatcher).can_write());
        assert!(!Caller::new("u", "t", Role::Driver).can_write());
    }

    #[test]
    fn a_caller_from_a_token_names_a_user_and_a_tenant() {
        let caller = Caller::parse("u1", "t1", Role::Driver).expect("both present");
        assert_eq!(caller, Caller::new("u1", "t1", Role::Driver));
        assert_eq!(caller.user_id, "u1");
        assert_eq!(caller.tenant_id, "t1");
        assert_eq!(Caller::parse("", "t1", Role::Admin), Err(EmptyId("user")));
        assert_eq!(Caller::parse("u1", "", Role::Admin), Err(EmptyId("tenant")));
    }

    #[test]
    fn caller_is_read_from_request_extensions() {
        let mut request = tonic::Request::new(());
        assert_eq!(
            caller(&request).map_err(|s| s.code()),
            Err(tonic::Code::Unauthenticated)
        );
        let who = Caller::new("u1", "t1", Role::Driver);
        request.extensions_mut().insert(who.clone());
        assert_eq!(caller(&request).ok(), Some(who));
    }
}
