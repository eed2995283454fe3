//! Supabase-shaped user tokens, minted locally.
//!
//! Production user tokens come from Supabase; these are for `director token`, `director up`
//! and tests, signed with the legacy HS256 project secret (`SUPABASE_JWT_SECRET`) that the
//! gateway accepts. The shape follows Supabase's access tokens: `sub`, `aud`, `exp`, `iat`,
//! optional `iss`, `role: "authenticated"` (the Postgres role Supabase means, not Director's)
//! and `app_metadata` holding Director's `tenant_id` and `role` claims.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};

use super::{Role, TokenError};

/// What to put in a user token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserTokenClaims {
    /// The user id (`sub`).
    pub sub: String,
    /// `app_metadata.tenant_id`; absent is refused outside dev (`REQUIRE_CLAIMS`), and falls
    /// back to `sub` in dev.
    pub tenant_id: Option<String>,
    /// `app_metadata.role`; absent is refused outside dev, and means admin in dev.
    pub role: Option<Role>,
    /// `aud`, normally `authenticated`.
    pub audience: String,
    /// Lifetime from now (`exp - iat`).
    pub ttl: Duration,
    /// `iss`, e.g. `https://<project>.supabase.co/auth/v1`; omitted when `None`.
    pub issuer: Option<String>,
}

impl UserTokenClaims {
    /// Claims for `sub` with audience `authenticated`, one hour of validity, no tenant, role
    /// or issuer.
    pub fn new(sub: impl Into<String>) -> Self {
        Self {
            sub: sub.into(),
            tenant_id: None,
            role: None,
            audience: "authenticated".to_owned(),
            ttl: Duration::from_secs(3600),
            issuer: None,
        }
    }

    /// The JWT payload for a token issued at `issued_at`.
    pub fn to_payload(&self, issued_at: SystemTime) -> Value {
        let iat = issued_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut app_metadata = Map::new();
        if let Some(tenant_id) = &self.tenant_id {
            app_metadata.insert("tenant_id".to_owned(), json!(tenant_id));
        }
        if let Some(role) = self.role {
            app_metadata.insert("role".to_owned(), json!(role.as_str()));
        }
        let mut payload = json!({
            "sub": self.sub,
            "aud": self.audience,
            "iat": iat,
            "exp": iat + self.ttl.as_secs(),
            "role": "authenticated",
            "app_metadata": app_metadata,
        });
        if let (Some(issuer), Some(object)) = (&self.issuer, payload.as_object_mut()) {
            object.insert("iss".to_owned(), json!(issuer));
        }
        payload
    }
}

/// An HS256 user token for `claims`, issued now.
pub fn mint_hs256(secret: &str, claims: &UserTokenClaims) -> Result<String, TokenError> {
    mint_hs256_at(secret, claims, SystemTime::now())
}

/// An HS256 user token for `claims` issued at `issued_at` (a past instant makes an expired
/// token, for tests).
pub fn mint_hs256_at(
    secret: &str,
    claims: &UserTokenClaims,
    issued_at: SystemTime,
) -> Result<String, TokenError> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims.to_payload(issued_at),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| TokenError::Signing(e.to_string()))
}
