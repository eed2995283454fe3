//! Authentication of callers: Supabase bearer tokens in, a verified [`Caller`] out.
//!
//! - [`token`] verifies one token (signature, algorithm pinned by the key, `exp`, `aud`,
//!   `iss`) and words failures like the reference API (PyJWT's messages);
//! - [`jwks`] keeps the project's public keys, refreshed off the request path;
//! - [`claims`] turns verified claims into a caller (tenant, role).

pub mod claims;
pub mod jwks;
pub mod token;

use std::sync::Arc;
use std::time::SystemTime;

use director_platform::identity::Caller;
use http::HeaderMap;
use tokio_util::sync::CancellationToken;

use crate::config::AuthConfig;
use crate::error::ApiError;

pub use jwks::JwksCache;
pub use token::TokenVerifier;

/// Why a request was not authenticated. The `Display` text is the exact client message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header, or not `Bearer <token>`.
    #[error("Missing or invalid authorization header")]
    MissingHeader,
    /// The token's `exp` is past (beyond the leeway).
    #[error("Token has expired")]
    Expired,
    /// Anything else wrong with the token; the reason follows PyJWT's wording.
    #[error("Invalid token: {0}")]
    Invalid(String),
    /// The token is valid but names a role Director does not know.
    #[error("Unknown role: {0}")]
    UnknownRole(String),
    /// The token is valid but lacks the tenant or role claim (named by their configured
    /// paths) where claims are required (`REQUIRE_CLAIMS`, always outside dev).
    #[error("{}", missing_claims_message(.0))]
    MissingClaims(Vec<String>),
}

/// `Token is missing the "app_metadata.role" claim`, or both paths when both are missing.
fn missing_claims_message(paths: &[String]) -> String {
    let quoted: Vec<String> = paths.iter().map(|path| format!("\"{path}\"")).collect();
    match quoted.as_slice() {
        [one] => format!("Token is missing the {one} claim"),
        _ => format!("Token is missing the {} claims", quoted.join(" and ")),
    }
}

impl AuthError {
    /// The gRPC code of the failure: UNAUTHENTICATED when the token itself is missing or bad,
    /// PERMISSION_DENIED (HTTP 403) when a genuine token names an unknown role or lacks a
    /// required claim.
    pub fn code(&self) -> tonic::Code {
        match self {
            Self::UnknownRole(_) | Self::MissingClaims(_) => tonic::Code::PermissionDenied,
            _ => tonic::Code::Unauthenticated,
        }
    }

    /// The failure as a gRPC status (native gRPC and gRPC-Web callers).
    pub fn to_status(&self) -> tonic::Status {
        tonic::Status::new(self.code(), self.to_string())
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        ApiError::new(error.code(), error.to_string())
    }
}

/// A verified token: who calls, and until when the token is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The caller the token names.
    pub caller: Caller,
    /// When the token expires (its `exp` plus the leeway); streams opened with it end then.
    pub expires_at: SystemTime,
}

/// How long until `expires_at` (zero once it has passed).
pub fn time_left(expires_at: SystemTime) -> std::time::Duration {
    expires_at
        .duration_since(SystemTime::now())
        .unwrap_or_default()
}

/// Verifies the `Authorization` header of a request.
#[derive(Debug, Clone)]
pub struct Authenticator {
    verifier: Arc<TokenVerifier>,
    jwks: Option<Arc<JwksCache>>,
}

impl Authenticator {
    /// Builds the verifier and, when a JWKS URL is configured, the key cache (empty until
    /// [`Authenticator::spawn_refresh`] or the first unknown `kid` fills it).
    pub fn new(config: &AuthConfig) -> anyhow::Result<Self> {
        let jwks = config
            .jwks_url
            .as_ref()
            .map(|url| JwksCache::new(url.clone(), config).map(Arc::new))
            .transpose()?;
        if config.jwt_secret.is_none() && jwks.is_none() {
            tracing::warn!(
                "neither SUPABASE_JWT_SECRET nor SUPABASE_URL/SUPABASE_JWKS_URL is set: every token will be refused"
            );
        }
        Ok(Self {
            verifier: Arc::new(TokenVerifier::new(config, jwks.clone())),
            jwks,
        })
    }

    /// Keeps the JWKS fresh in the background until `shutdown`.
    pub fn spawn_refresh(&self, shutdown: CancellationToken) {
        if let Some(jwks) = &self.jwks {
            jwks.clone().spawn_refresh(shutdown);
        }
    }

    /// The caller of a request carrying `Authorization: Bearer <token>`.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Authenticated, AuthError> {
        let token = bearer_token(headers).ok_or(AuthError::MissingHeader)?;
        self.verifier.verify(token).await
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme is matched exactly, like
/// the reference's `startswith("Bearer ")`).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?.trim();
    (!token.is_empty()).then_some(token)
}
