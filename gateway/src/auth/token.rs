//! Verification of one Supabase access token.
//!
//! The key decides the algorithm: HS256 tokens are checked against `SUPABASE_JWT_SECRET`
//! (and refused when it is unset); asymmetric tokens are checked against the JWKS key named by
//! their `kid`, with that key's pinned algorithm. The token header's `alg` only has to agree;
//! `none`, or an `alg` that differs from the key's, is refused before any verification.
//!
//! Failure reasons reuse PyJWT's wording, which the reference API put in its 401 bodies
//! (`Invalid token: Signature verification failed`).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use super::claims::caller_from_claims;
use super::jwks::JwksCache;
use super::{AuthError, Authenticated};
use crate::config::AuthConfig;

/// PyJWT's message for an algorithm that the key does not allow.
const ALG_NOT_ALLOWED: &str = "The specified alg value is not allowed";

/// Verifies tokens and extracts the caller.
pub struct TokenVerifier {
    hmac: Option<DecodingKey>,
    jwks: Option<Arc<JwksCache>>,
    audience: String,
    issuer: Option<String>,
    leeway_seconds: u64,
    tenant_claim: String,
    role_claim: String,
    require_claims: bool,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("hmac", &self.hmac.is_some())
            .field("jwks", &self.jwks)
            .field("audience", &self.audience)
            .field("issuer", &self.issuer)
            .field("require_claims", &self.require_claims)
            .finish_non_exhaustive()
    }
}

/// The part of the JOSE header read before verification.
#[derive(Deserialize)]
struct PeekedHeader {
    alg: Option<String>,
    kid: Option<String>,
}

impl TokenVerifier {
    /// A verifier for the configured secret and/or key set.
    pub fn new(config: &AuthConfig, jwks: Option<Arc<JwksCache>>) -> Self {
        Self {
            hmac: config
                .jwt_secret
                .as_ref()
                .map(|secret| DecodingKey::from_secret(secret.expose().as_bytes())),
            jwks,
            audience: config.audience.clone(),
            issuer: config.issuer.clone(),
            leeway_seconds: config.leeway.as_secs(),
            tenant_claim: config.tenant_claim.clone(),
            role_claim: config.role_claim.clone(),
            require_claims: config.require_claims,
        }
    }

    /// Verifies `token` and answers its caller and how long the token stays valid.
    pub async fn verify(&self, token: &str) -> Result<Authenticated, AuthError> {
        let header = peek_header(token)?;
        let alg = header.alg.as_deref().unwrap_or("none");
        let claims = if alg == "HS256" {
            let key = self.hmac.as_ref().ok_or_else(not_allowed)?;
            self.decode(token, key, Algorithm::HS256)?
        } else if is_asymmetric(alg) {
            let jwks = self.jwks.as_ref().ok_or_else(not_allowed)?;
            let kid = header.kid.ok_or_else(|| {
                AuthError::Invalid("Token is missing the \"kid\" header".to_owned())
            })?;
            // The kid is the client's text: it is not echoed back.
            let key = jwks.key(&kid).await.ok_or_else(|| {
                AuthError::Invalid("Unable to find a signing key that matches the token".to_owned())
            })?;
            if alg.parse::<Algorithm>().ok() != Some(key.algorithm) {
                return Err(not_allowed());
            }
            self.decode(token, &key.key, key.algorithm)?
        } else {
            return Err(not_allowed());
        };
        let caller = caller_from_claims(
            &claims,
            &self.tenant_claim,
            &self.role_claim,
            self.require_claims,
        )?;
        Ok(Authenticated {
            caller,
            expires_at: self.expiry(&claims),
        })
    }

    /// When the token stops being accepted: `exp` (checked present and numeric by the
    /// decoder) plus the leeway.
    fn expiry(&self, claims: &Value) -> SystemTime {
        let exp = claims
            .get("exp")
            .and_then(Value::as_f64)
            .filter(|exp| exp.is_finite() && *exp >= 0.0)
            .unwrap_or_default();
        UNIX_EPOCH + Duration::from_secs_f64(exp) + Duration::from_secs(self.leeway_seconds)
    }

    fn decode(&self, token: &str, key: &DecodingKey, alg: Algorithm) -> Result<Value, AuthError> {
        let mut validation = Validation::new(alg);
        validation.leeway = self.leeway_seconds;
        validation.validate_nbf = true;
        validation.set_audience(&[&self.audience]);
        let mut required = vec!["exp", "aud", "sub"];
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        jsonwebtoken::decode::<Value>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|error| describe(error.kind()))
    }
}

fn not_allowed() -> AuthError {
    AuthError::Invalid(ALG_NOT_ALLOWED.to_owned())
}

fn is_asymmetric(alg: &str) -> bool {
    matches!(
        alg,
        "ES256" | "ES384" | "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" | "EdDSA"
    )
}

/// Reads `alg` and `kid` without trusting them; malformed tokens fail here with PyJWT's
/// messages.
fn peek_header(token: &str) -> Result<PeekedHeader, AuthError> {
    let segments: Vec<&str> = token.split('.').collect();
    if segments.len() != 3 {
        return Err(AuthError::Invalid("Not enough segments".to_owned()));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(segments[0].trim_end_matches('='))
        .map_err(|_| AuthError::Invalid("Invalid header padding".to_owned()))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| AuthError::Invalid("Invalid header string".to_owned()))
}

/// PyJWT's wording of a verification failure.
fn describe(kind: &ErrorKind) -> AuthError {
    let reason = match kind {
        ErrorKind::ExpiredSignature => return AuthError::Expired,
        ErrorKind::InvalidSignature => "Signature verification failed".to_owned(),
        ErrorKind::InvalidAudience => "Audience doesn't match".to_owned(),
        ErrorKind::InvalidIssuer => "Invalid issuer".to_owned(),
        ErrorKind::ImmatureSignature => "The token is not yet valid (nbf)".to_owned(),
        ErrorKind::MissingRequiredClaim(claim) => format!("Token is missing the \"{claim}\" claim"),
        ErrorKind::InvalidClaimFormat(claim) => format!("The \"{claim}\" claim is malformed"),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => ALG_NOT_ALLOWED.to_owned(),
        ErrorKind::Base64(_) => "Invalid crypto padding".to_owned(),
        ErrorKind::Json(_) | ErrorKind::Utf8(_) => "Invalid payload string".to_owned(),
        _ => "Token could not be verified".to_owned(),
    };
    AuthError::Invalid(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_tokens_are_described_like_pyjwt() {
        assert_eq!(
            peek_header("abc").err(),
            Some(AuthError::Invalid("Not enough segments".to_owned()))
        );
        assert_eq!(
            peek_header("!!.e30.sig").err(),
            Some(AuthError::Invalid("Invalid header padding".to_owned()))
        );
        let header = peek_header("eyJhbGciOiJub25lIn0.e30.").ok();
        assert_eq!(header.and_then(|h| h.alg), Some("none".to_owned()));
    }
}
