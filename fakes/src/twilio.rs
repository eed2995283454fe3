//! The fake Twilio Messages API: `POST /2010-04-01/Accounts/{sid}/Messages.json` with HTTP
//! basic auth and a form body, answered the way Twilio does (201 with the message, 401, 400
//! with Twilio's error codes).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::server::{FakeServer, error_json};

/// The account SID the fake accepts unless told otherwise.
pub const DEFAULT_TWILIO_ACCOUNT_SID: &str = "ACfa4e0000000000000000000000000001";
/// The auth token the fake accepts unless told otherwise.
pub const DEFAULT_TWILIO_AUTH_TOKEN: &str = "fake-twilio-token";
/// A sender number for the fake (Twilio's own test "from" number).
pub const DEFAULT_TWILIO_FROM_NUMBER: &str = "+15005550006";
/// A `To` that is always refused with code 21211, like Twilio's magic test number.
pub const INVALID_TO_NUMBER: &str = "+15005550001";

/// A second account the fake accepts by default: a tenant's own Twilio account in tests of
/// per-tenant settings, told apart from the deployment's ([`DEFAULT_TWILIO_ACCOUNT_SID`]).
pub const TENANT_TWILIO_ACCOUNT_SID: &str = "ACfa4e00000000000000000000000000a2";
/// The second account's auth token.
pub const TENANT_TWILIO_AUTH_TOKEN: &str = "fake-twilio-tenant-token";

/// A fake Twilio to start: the credentials it accepts.
#[derive(Debug, Clone)]
pub struct FakeTwilio {
    account_sid: String,
    auth_token: String,
    /// Further `(account_sid, auth_token)` pairs accepted, each on its own account's path.
    other_accounts: Vec<(String, String)>,
}

impl Default for FakeTwilio {
    /// The default account and the tenant account.
    fn default() -> Self {
        Self::new(DEFAULT_TWILIO_ACCOUNT_SID, DEFAULT_TWILIO_AUTH_TOKEN)
            .with_account(TENANT_TWILIO_ACCOUNT_SID, TENANT_TWILIO_AUTH_TOKEN)
    }
}

impl FakeTwilio {
    /// Accepts basic auth `account_sid:auth_token` on that account's path only.
    pub fn new(account_sid: impl Into<String>, auth_token: impl Into<String>) -> Self {
        Self {
            account_sid: account_sid.into(),
            auth_token: auth_token.into(),
            other_accounts: Vec::new(),
        }
    }

    /// Accepts another account too.
    pub fn with_account(
        mut self,
        account_sid: impl Into<String>,
        auth_token: impl Into<String>,
    ) -> Self {
        self.other_accounts
            .push((account_sid.into(), auth_token.into()));
        self
    }

    /// Whether `user:password` is one of the accepted accounts and `sid` its path.
    fn accepts(&self, sid: &str, user: &str, password: &str) -> bool {
        std::iter::once((self.account_sid.as_str(), self.auth_token.as_str()))
            .chain(
                self.other_accounts
                    .iter()
                    .map(|(sid, token)| (sid.as_str(), token.as_str())),
            )
            .any(|(account, token)| account == sid && user == sid && password == token)
    }

    /// The account SID accepted.
    pub fn account_sid(&self) -> &str {
        &self.account_sid
    }

    /// The auth token accepted.
    pub fn auth_token(&self) -> &str {
        &self.auth_token
    }

    /// Serves on `listener`; [`FakeServer::url`] is the `TWILIO_API_URL`.
    pub fn start(self, listener: TcpListener) -> std::io::Result<FakeServer> {
        let shutdown = CancellationToken::new();
        let state = Arc::new(TwilioState {
            fake: self,
            sent: AtomicU64::new(0),
        });
        let routes = Router::new()
            .route(
                "/2010-04-01/Accounts/{sid}/Messages.json",
                post(create_message),
            )
            .fallback(|| async { twilio_error(StatusCode::NOT_FOUND, 20404, "not found") })
            .with_state(state);
        FakeServer::spawn("twilio", listener, "", routes, shutdown)
    }

    /// Binds `addr` (port 0 for any) and serves there.
    pub async fn start_on(self, addr: SocketAddr) -> std::io::Result<FakeServer> {
        self.start(TcpListener::bind(addr).await?)
    }
}

#[derive(Debug)]
struct TwilioState {
    fake: FakeTwilio,
    sent: AtomicU64,
}

/// Twilio's error body: `{"code", "message", "more_info", "status"}`.
fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status.as_u16(),
        })),
    )
        .into_response()
}

/// The `(user, password)` of a basic `Authorization` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let encoded = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// E.164: `+`, then 7 to 15 digits not starting with 0.
fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

async fn create_message(
    State(state): State<Arc<TwilioState>>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let authorized = basic_credentials(&headers)
        .is_some_and(|(user, password)| state.fake.accepts(&sid, &user, &password));
    if !authorized {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let Ok(Form(fields)) = form else {
        return error_json(StatusCode::BAD_REQUEST, "expected a form body");
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(key, value)| key == name && !value.is_empty())
            .map(|(_, value)| value.clone())
    };
    let Some(to) = field("To") else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21604,
            "A 'To' phone number is required.",
        );
    };
    let Some(from) = field("From") else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21603,
            "A 'From' phone number is required.",
        );
    };
    let Some(body) = field("Body") else {
        return twilio_error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
    };
    if !is_e164(&to) || to == INVALID_TO_NUMBER {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21211,
            &format!("The 'To' number {to} is not a valid phone number."),
        );
    }
    let number = state.sent.fetch_add(1, Ordering::SeqCst) + 1;
    let message_sid = format!("SM{:032x}", u128::from(number) * 0x9e37_79b9_7f4a_7c15);
    (
        StatusCode::CREATED,
        axum::Json(serde_json::json!({
            "sid": message_sid,
            "account_sid": sid,
            "status": "queued",
            "to": to,
            "from": from,
            "body": body,
            "num_segments": "1",
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::is_e164;

    #[test]
    fn only_e164_numbers_are_valid_recipients() {
        assert!(is_e164("+15550100001"));
        assert!(is_e164("+447700900123"));
        assert!(!is_e164("(555) 010-0001"));
        assert!(!is_e164("+0123456789"));
        assert!(!is_e164("+12"));
    }
}
