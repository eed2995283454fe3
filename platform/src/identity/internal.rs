//! The internal token: a short-lived HS256 JWT signed with a secret shared by the gateway and
//! the services, carrying the verified [`Caller`].

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{Caller, Role};
use crate::config::{ConfigError, Env, Environment, Secret};

/// `iss` of every internal token.
pub const INTERNAL_ISSUER: &str = "director";
/// `aud` of every internal token; user tokens (`authenticated`) are thereby never accepted as
/// internal ones even if someone reused a secret.
pub const INTERNAL_AUDIENCE: &str = "director-internal";
/// The shortest accepted `INTERNAL_TOKEN_SECRET`, in bytes (the HS256 key size).
pub const MIN_SECRET_LEN: usize = 32;
/// The secret used on a developer machine when `INTERNAL_TOKEN_SECRET` is unset (listed
/// with the other published secrets).
pub use crate::secrets::DEV_INTERNAL_TOKEN_SECRET;

/// Clock skew tolerated between the pod that minted a token and the one verifying it.
const LEEWAY_SECS: u64 = 5;

/// Why a token was not minted or not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Past its `exp` (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// Malformed, wrongly signed, wrong algorithm, issuer or audience, or bad claims.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The token could not be signed.
    #[error("cannot sign token: {0}")]
    Signing(String),
}

impl From<jsonwebtoken::errors::Error> for TokenError {
    fn from(error: jsonwebtoken::errors::Error) -> Self {
        match error.kind() {
            ErrorKind::ExpiredSignature => Self::Expired,
            _ => Self::Invalid(error.to_string()),
        }
    }
}

/// The claims of an internal token.
#[derive(Debug, Serialize, Deserialize)]
struct InternalClaims {
    sub: String,
    tid: String,
    role: Role,
    iss: String,
    aud: String,
    iat: u64,
    exp: u64,
}

/// Mints and verifies internal tokens with one shared secret. Cheap to clone via `Arc`;
/// build it once at start-up.
pub struct InternalTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl fmt::Debug for InternalTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InternalTokens")
            .field("secret", &"[redacted]")
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl InternalTokens {
    /// Tokens signed with `secret` and valid for `ttl` (rounded up to whole seconds).
    pub fn new(secret: &Secret, ttl: Duration) -> Self {
        let key = secret.expose().as_bytes();
        // Pinned to HS256: the header's `alg` must be exactly this, so `none` or an
        // asymmetric algorithm is rejected before any signature check.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_audience(&[INTERNAL_AUDIENCE]);
        validation.set_issuer(&[INTERNAL_ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        Self {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
            ttl,
        }
    }

    /// How long minted tokens are valid.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A token for `caller`, valid from now for the configured ttl.
    pub fn mint(&self, caller: &Caller) -> Result<String, TokenError> {
        let now = unix_now();
        let ttl_secs = self.ttl.as_secs() + u64::from(self.ttl.subsec_nanos() > 0);
        let claims = InternalClaims {
            sub: caller.user_id.to_string(),
            tid: caller.tenant_id.to_string(),
            role: caller.role,
            iss: INTERNAL_ISSUER.to_owned(),
            aud: INTERNAL_AUDIENCE.to_owned(),
            iat: now,
            exp: now + ttl_secs.max(1),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| TokenError::Signing(e.to_string()))
    }

    /// The caller in `token`, if it is an unexpired HS256 internal token signed with our
    /// secret for our issuer and audience.
    pub fn verify(&self, token: &str) -> Result<Caller, TokenError> {
        let data = jsonwebtoken::decode::<InternalClaims>(token, &self.decoding, &self.validation)?;
        let claims = data.claims;
        Caller::parse(claims.sub, claims.tid, claims.role)
            .map_err(|_| TokenError::Invalid("empty subject or tenant".to_owned()))
    }
}

/// Seconds since the Unix epoch.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Settings for [`InternalTokens`].
#[derive(Debug, Clone)]
pub struct InternalTokenConfig {
    /// `INTERNAL_TOKEN_SECRET`: at least [`MIN_SECRET_LEN`] bytes; required outside dev.
    pub secret: Secret,
    /// `INTERNAL_TOKEN_TTL_MS` (60000): lifetime of a minted token.
    pub ttl: Duration,
}

impl InternalTokenConfig {
    /// Reads `INTERNAL_TOKEN_SECRET` and `INTERNAL_TOKEN_TTL_MS`. In `dev` a missing secret
    /// falls back to [`DEV_INTERNAL_TOKEN_SECRET`] (with a warning); in staging and prod it is
    /// an error, as is a secret published in the repository ([`crate::secrets`]), and a
    /// secret shorter than [`MIN_SECRET_LEN`] bytes is refused anywhere.
    pub fn from_env(env: &Env, environment: Environment) -> Result<Self, ConfigError> {
        const VAR: &str = "INTERNAL_TOKEN_SECRET";
        let secret = match env.secret(VAR) {
            Some(secret) if secret.expose().len() < MIN_SECRET_LEN => {
                return Err(ConfigError::new(
                    VAR,
                    format!(
                        "must be at least {MIN_SECRET_LEN} bytes, got {}",
                        secret.expose().len()
                    ),
                ));
            }
            Some(secret) => {
                crate::secrets::check_deployed_secret(VAR, &secret, environment)?;
                secret
            }
            None if environment.is_dev() => {
                tracing::warn!(
                    "INTERNAL_TOKEN_SECRET is not set; using the public development secret"
                );
                Secret::from(DEV_INTERNAL_TOKEN_SECRET)
            }
            None => {
                return Err(ConfigError::new(
                    VAR,
                    format!("is required when ENVIRONMENT is {environment}"),
                ));
            }
        };
        let ttl = env.millis_or("INTERNAL_TOKEN_TTL_MS", 60_000)?;
        if ttl.is_zero() {
            return Err(ConfigError::invalid(
                "INTERNAL_TOKEN_TTL_MS",
                "a positive number of milliseconds",
                "0",
            ));
        }
        Ok(Self { secret, ttl })
    }

    /// The token minter/verifier for these settings.
    pub fn tokens(&self) -> InternalTokens {
        InternalTokens::new(&self.secret, self.ttl)
    }
}
