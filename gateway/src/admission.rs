//! Whether a call that needs a caller may proceed: its token is verified, then the rate limit
//! that applies to it is charged — the caller's own when the token is good, the client
//! address' when it is missing or bad (so failed logins are throttled per address while users
//! sharing an address never spend each other's quota).

use std::net::IpAddr;

use director_platform::identity::Caller;
use http::{HeaderMap, Response};

use crate::auth::{AuthError, Authenticated};
use crate::error::ApiError;
use crate::limits::RateLimited;
use crate::state::AppState;

/// Why a call was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No valid token (and the address is within its limit).
    Unauthenticated(AuthError),
    /// The caller, or the address of an unauthenticated client, is over its limit.
    RateLimited(RateLimited),
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Unauthenticated(error) => error.into(),
            Refusal::RateLimited(limited) => limited.to_api_error(),
        }
    }
}

impl Refusal {
    /// The refusal as a gRPC response (trailers-only status).
    pub fn to_grpc_response<B: Default>(&self) -> Response<B> {
        match self {
            Self::Unauthenticated(error) => error.to_status().into_http(),
            Self::RateLimited(limited) => limited.to_grpc_response(),
        }
    }
}

/// Verifies the bearer token in `headers` and charges the rate limit that applies; `client`
/// is the request's client address (`RateLimits::client_address`).
pub(crate) async fn admit(
    state: &AppState,
    headers: &HeaderMap,
    client: Option<IpAddr>,
) -> Result<Authenticated, Refusal> {
    let verified = state.authenticator.authenticate(headers).await;
    charge(state, verified, client)
}

fn charge(
    state: &AppState,
    verified: Result<Authenticated, AuthError>,
    client: Option<IpAddr>,
) -> Result<Authenticated, Refusal> {
    match verified {
        Ok(authenticated) => {
            let Caller {
                tenant_id, user_id, ..
            } = &authenticated.caller;
            state
                .rate_limits
                .check_caller(tenant_id, user_id)
                .map_err(Refusal::RateLimited)?;
            Ok(authenticated)
        }
        Err(error) => {
            state
                .rate_limits
                .check_client(client)
                .map_err(Refusal::RateLimited)?;
            Err(Refusal::Unauthenticated(error))
        }
    }
}
