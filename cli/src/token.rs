//! `director token`: mints a bearer token for the gateway (Supabase-shaped, HS256 with
//! `SUPABASE_JWT_SECRET`) or an internal token for calling one service directly.

use std::time::Duration;

use director_platform::config::{Env, Environment};
use director_platform::identity::user_token::{self, UserTokenClaims};
use director_platform::identity::{Caller, InternalTokenConfig, InternalTokens, Role};

/// What to put in the token.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The user (`sub`).
    pub subject: String,
    /// The tenant; for gateway tokens, `None` leaves the claim out (refused outside dev; in dev
    /// the tenant is then `sub`).
    pub tenant: Option<String>,
    /// The role; for gateway tokens, `None` leaves the claim out (refused outside dev; in dev
    /// the role is then admin).
    pub role: Option<Role>,
    /// Lifetime.
    pub ttl: Duration,
}

/// A gateway token signed with `SUPABASE_JWT_SECRET`, with `aud` = `JWT_AUDIENCE`.
pub fn gateway_token(env: &Env, request: &TokenRequest) -> anyhow::Result<String> {
    let secret = env.required("SUPABASE_JWT_SECRET")?;
    let claims = UserTokenClaims {
        sub: request.subject.clone(),
        tenant_id: request.tenant.clone(),
        role: request.role,
        audience: env
            .string("JWT_AUDIENCE")
            .unwrap_or_else(|| "authenticated".to_owned()),
        ttl: request.ttl,
        issuer: env.string("JWT_ISSUER").or_else(|| {
            env.string("SUPABASE_URL")
                .map(|url| format!("{}/auth/v1", url.trim_end_matches('/')))
        }),
    };
    Ok(user_token::mint_hs256(&secret, &claims)?)
}

/// An internal token signed with `INTERNAL_TOKEN_SECRET`, as the gateway would forward it.
pub fn internal_token(env: &Env, request: &TokenRequest) -> anyhow::Result<String> {
    let environment = Environment::from_env(env)?;
    let config = InternalTokenConfig::from_env(env, environment)?;
    let tokens = InternalTokens::new(&config.secret, request.ttl);
    let caller = Caller::parse(
        request.subject.clone(),
        request
            .tenant
            .clone()
            .unwrap_or_else(|| request.subject.clone()),
        request.role.unwrap_or(Role::Admin),
    )?;
    Ok(tokens.mint(&caller)?)
}
