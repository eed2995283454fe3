//! Authentication at the edge: the reference's 401 messages for every kind of bad token, HS256
//! only with the secret, ES256 through a JWKS served by a real HTTP server, one shared JWKS
//! refresh for an unknown `kid`, and gRPC-shaped failures for gRPC callers.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::{Duration, SystemTime};

use common::*;
use director_platform::identity::Role;
use director_platform::identity::user_token::{UserTokenClaims, mint_hs256, mint_hs256_at};
use serde_json::Value;

/// A route that exists only behind authentication: a 404 from it means the token passed.
const PROTECTED_UNKNOWN: &str = "/api/no-such-route";

async fn get_with(gateway: &TestGateway, path: &str, authorization: Option<&str>) -> (u16, Value) {
    let mut request = http().get(gateway.at(path));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// GETs the protected route with `Bearer {token}`.
async fn get_bearer(gateway: &TestGateway, token: &str) -> (u16, Value) {
    get_with(gateway, PROTECTED_UNKNOWN, Some(&format!("Bearer {token}"))).await
}

/// Asserts that `Bearer {token}` is refused with a 401 carrying `error`.
async fn assert_refused(gateway: &TestGateway, token: &str, error: &str) {
    let (status, body) = get_bearer(gateway, token).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], error);
}

async fn gateway(overrides: &[(&str, &str)]) -> TestGateway {
    spawn_gateway(config(overrides), echo_pool(), vec![]).await
}

/// A JWKS serving key-a, and a gateway configured with it that has made its start-up fetch.
async fn gateway_with_jwks() -> (FakeJwks, TestGateway) {
    let jwks = FakeJwks::start(vec![ec_jwk("key-a", EC_KEY_A_XY)]).await;
    let url = format!("{}/auth/v1/.well-known/jwks.json", jwks.url);
    let gateway = gateway(&[("SUPABASE_JWKS_URL", &url)]).await;
    jwks.wait_for_hits(1).await;
    (jwks, gateway)
}

#[tokio::test]
async fn a_request_without_authorization_header_is_refused_with_the_reference_message() {
    let gateway = gateway(&[]).await;
    let (status, body) = get_with(&gateway, PROTECTED_UNKNOWN, None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "Missing or invalid authorization header");
    assert_eq!(body["code"], "UNAUTHENTICATED");
    assert!(
        body["request_id"].is_string(),
        "request id in the body: {body}"
    );
}

#[tokio::test]
async fn a_non_bearer_authorization_header_is_refused() {
    let gateway = gateway(&[]).await;
    for header in ["Basic dXNlcjpwYXNz", "Token abc", "Bearer ", "bearer abc"] {
        let (status, body) = get_with(&gateway, PROTECTED_UNKNOWN, Some(header)).await;
        assert_eq!(status, 401, "{header}");
        assert_eq!(
            body["error"], "Missing or invalid authorization header",
            "{header}"
        );
    }
}

#[tokio::test]
async fn an_expired_token_is_refused_as_expired() {
    let gateway = gateway(&[]).await;
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    let expired = mint_hs256_at(JWT_SECRET, &UserTokenClaims::new("u1"), two_hours_ago).unwrap();
    assert_refused(&gateway, &expired, "Token has expired").await;
}

#[tokio::test]
async fn a_token_expired_within_the_leeway_is_accepted() {
    let gateway = gateway(&[]).await;
    // Issued an hour and ten seconds ago with a one-hour lifetime: 10 s past `exp`.
    let issued = SystemTime::now() - Duration::from_secs(3610);
    let token = mint_hs256_at(JWT_SECRET, &UserTokenClaims::new("u1"), issued).unwrap();
    let (status, _) = get_bearer(&gateway, &token).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_invalid() {
    let gateway = gateway(&[]).await;
    let forged = mint_hs256(
        "some-other-secret-0123456789abcdef",
        &UserTokenClaims::new("u1"),
    )
    .unwrap();
    assert_refused(
        &gateway,
        &forged,
        "Invalid token: Signature verification failed",
    )
    .await;
}

#[tokio::test]
async fn a_token_for_another_audience_is_invalid() {
    let gateway = gateway(&[]).await;
    let mut claims = UserTokenClaims::new("u1");
    claims.audience = "anon".to_owned();
    let token = mint_hs256(JWT_SECRET, &claims).unwrap();
    assert_refused(&gateway, &token, "Invalid token: Audience doesn't match").await;
}

#[tokio::test]
async fn an_unsigned_alg_none_token_is_refused() {
    let gateway = gateway(&[]).await;
    let header = base64_url(br#"{"alg":"none","typ":"JWT"}"#);
    let exp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let payload =
        base64_url(format!(r#"{{"sub":"u1","aud":"authenticated","exp":{exp}}}"#).as_bytes());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}.c2ln"),
    ] {
        assert_refused(
            &gateway,
            &token,
            "Invalid token: The specified alg value is not allowed",
        )
        .await;
    }
}

#[tokio::test]
async fn a_malformed_token_is_invalid() {
    let gateway = gateway(&[]).await;
    assert_refused(&gateway, "not-a-jwt", "Invalid token: Not enough segments").await;
}

#[tokio::test]
async fn a_valid_token_passes_and_an_unknown_route_then_answers_404_in_the_error_shape() {
    let gateway = gateway(&[]).await;
    let (status, body) = get_bearer(&gateway, &token("u1")).await;
    assert_eq!(status, 404);
    assert_eq!(body["detail"], "Not Found");
    assert_eq!(body["code"], "NOT_FOUND");
}

#[tokio::test]
async fn an_unknown_role_is_forbidden() {
    let dev = gateway(&[]).await;
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({
            "sub": "u1", "aud": "authenticated",
            "exp": SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() + 600,
            "app_metadata": {"role": "superuser"},
        }),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let (status, body) = get_bearer(&dev, &token).await;
    assert_eq!(status, 403);
    assert_eq!(body["code"], "PERMISSION_DENIED");
    assert_eq!(body["error"], "Unknown role: superuser");

    // Outside dev too, with the tenant claim present.
    let prod = gateway(&claims_settings("prod", &[])).await;
    assert_forbidden(
        &prod,
        &token_with_metadata(
            "u1",
            serde_json::json!({"tenant_id": "t-1", "role": "superuser"}),
        ),
        "Unknown role: superuser",
    )
    .await;
}

/// A token for `sub` with exactly these `app_metadata` claims (no tenant or role unless given).
fn token_with_metadata(sub: &str, app_metadata: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({
            "sub": sub, "aud": "authenticated", "role": "authenticated",
            "iss": STAGING_ISSUER,
            "exp": SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() + 600,
            "app_metadata": app_metadata,
        }),
        &jsonwebtoken::EncodingKey::from_secret(private_secret().as_bytes()),
    )
    .unwrap()
}

const STAGING_ISSUER: &str = "https://project.supabase.co/auth/v1";

/// The HS256 secret the gateways of the claim tests accept: outside dev the published test
/// secret is refused, so every environment here uses one of its own.
fn private_secret() -> &'static str {
    "a-private-jwt-secret-only-this-test-knows-1"
}

/// Settings for a gateway in `environment` accepting [`token_with_metadata`]'s tokens.
fn claims_settings<'a>(
    environment: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut settings = vec![
        ("ENVIRONMENT", environment),
        ("SUPABASE_JWT_SECRET", private_secret()),
        (
            "INTERNAL_TOKEN_SECRET",
            "a-private-internal-secret-only-this-test-knows",
        ),
        ("JWT_ISSUER", STAGING_ISSUER),
    ];
    settings.extend_from_slice(extra);
    settings
}

/// Asserts that `token` is refused with 403 PERMISSION_DENIED and `message`, over REST.
async fn assert_forbidden(gateway: &TestGateway, token: &str, message: &str) {
    let (status, body) = get_bearer(gateway, token).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "PERMISSION_DENIED");
    assert_eq!(body["error"], message);
    assert_eq!(body["detail"], message);
}

#[tokio::test]
async fn with_require_claims_in_dev_a_token_with_neither_claim_is_forbidden() {
    let gateway = gateway(&claims_settings("dev", &[("REQUIRE_CLAIMS", "true")])).await;
    assert_forbidden(
        &gateway,
        &token_with_metadata("u1", serde_json::json!({})),
        r#"Token is missing the "app_metadata.tenant_id" and "app_metadata.role" claims"#,
    )
    .await;
    // Both claims: the token passes (404 from the unknown route behind authentication).
    let both = token_with_metadata(
        "u1",
        serde_json::json!({"tenant_id": "t-1", "role": "dispatcher"}),
    );
    assert_eq!(get_bearer(&gateway, &both).await.0, 404);
}

#[tokio::test]
async fn outside_dev_a_token_lacking_a_claim_is_forbidden_naming_it_on_every_protocol() {
    for environment in ["staging", "prod"] {
        let gateway = gateway(&claims_settings(environment, &[])).await;
        assert_forbidden(
            &gateway,
            &token_with_metadata("u1", serde_json::json!({"tenant_id": "t-1"})),
            r#"Token is missing the "app_metadata.role" claim"#,
        )
        .await;
        assert_forbidden(
            &gateway,
            &token_with_metadata("u1", serde_json::json!({"role": "admin"})),
            r#"Token is missing the "app_metadata.tenant_id" claim"#,
        )
        .await;
        let both = token_with_metadata(
            "u1",
            serde_json::json!({"tenant_id": "t-1", "role": "driver"}),
        );
        assert_eq!(get_bearer(&gateway, &both).await.0, 404, "{environment}");
    }

    // The configured paths are the ones named, and gRPC and gRPC-Web callers get
    // PERMISSION_DENIED with the same message.
    let settings = claims_settings(
        "prod",
        &[
            ("TENANT_CLAIM", "app_metadata.org"),
            ("ROLE_CLAIM", "app_metadata.kind"),
        ],
    );
    let upstream = spawn_echo_upstream().await;
    let mut config = config(&settings);
    // The echo upstream checks internal tokens with the harness' secret.
    config.internal_token.secret = director_platform::config::Secret::from(INTERNAL_SECRET);
    let gateway = spawn_gateway(
        config,
        echo_pool(),
        vec![(ECHO_PACKAGE.to_owned(), upstream.uri.clone())],
    )
    .await;
    // The default paths' claims do not count once others are configured.
    let token = token_with_metadata(
        "u1",
        serde_json::json!({"tenant_id": "t-1", "role": "admin", "kind": "admin"}),
    );
    let message = r#"Token is missing the "app_metadata.org" claim"#;
    assert_forbidden(&gateway, &token, message).await;

    let pool = echo_pool();
    let mut client = tonic::client::Grpc::new(grpc_channel(&gateway).await);
    let request = authorized(echo_request(&pool, "n", 1, 0), &format!("Bearer {token}"));
    let status = echo_unary(&mut client, &pool, ECHO_PATH, request)
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert_eq!(status.message(), message);

    let response = http()
        .post(gateway.at(ECHO_PATH))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header("authorization", format!("Bearer {token}"))
        .body(grpc_web_frame(&[]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["grpc-status"], "7");
    assert_eq!(
        response.headers()["grpc-message"],
        "Token%20is%20missing%20the%20%22app_metadata.org%22%20claim"
    );

    // With both configured claims the call reaches the service as that tenant and role.
    let token = token_with_metadata(
        "u1",
        serde_json::json!({"org": "t-7", "kind": "dispatcher"}),
    );
    let request = authorized(echo_request(&pool, "n", 1, 0), &format!("Bearer {token}"));
    let echo = echo_unary(&mut client, &pool, ECHO_PATH, request)
        .await
        .unwrap();
    assert_eq!(text(&echo, "tenant_id"), "t-7");
    assert_eq!(text(&echo, "role"), "dispatcher");
}

#[tokio::test]
async fn in_dev_by_default_a_token_without_claims_falls_back_to_its_own_tenant_as_admin() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let pool = echo_pool();
    let mut client = tonic::client::Grpc::new(grpc_channel(&gateway).await);
    let request = authorized(
        echo_request(&pool, "n", 1, 0),
        &format!("Bearer {}", token("user-9")),
    );
    let echo = echo_unary(&mut client, &pool, ECHO_PATH, request)
        .await
        .unwrap();
    assert_eq!(text(&echo, "user_id"), "user-9");
    assert_eq!(text(&echo, "tenant_id"), "user-9");
    assert_eq!(text(&echo, "role"), "admin");
}

#[tokio::test]
async fn the_issuer_is_checked_when_configured() {
    let gateway = gateway(&[("JWT_ISSUER", "https://project.supabase.co/auth/v1")]).await;
    let mut claims = UserTokenClaims::new("u1");
    claims.issuer = Some("https://elsewhere.example/auth/v1".to_owned());
    let wrong = mint_hs256(JWT_SECRET, &claims).unwrap();
    assert_refused(&gateway, &wrong, "Invalid token: Invalid issuer").await;

    claims.issuer = Some("https://project.supabase.co/auth/v1".to_owned());
    let right = mint_hs256(JWT_SECRET, &claims).unwrap();
    let (status, _) = get_bearer(&gateway, &right).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn hs256_tokens_are_refused_when_no_secret_is_configured() {
    let jwks = FakeJwks::start(vec![ec_jwk("key-a", EC_KEY_A_XY)]).await;
    let url = format!("{}/auth/v1/.well-known/jwks.json", jwks.url);
    let mut config = config(&[("SUPABASE_JWKS_URL", &url)]);
    config.auth.jwt_secret = None;
    let gateway = spawn_gateway(config, echo_pool(), vec![]).await;
    assert_refused(
        &gateway,
        &token("u1"),
        "Invalid token: The specified alg value is not allowed",
    )
    .await;
}

#[tokio::test]
async fn an_es256_token_is_verified_with_the_key_from_the_jwks() {
    let (_jwks, gateway) = gateway_with_jwks().await;

    let good = es256_token(EC_KEY_A_PEM, "key-a", "u-es");
    let (status, _) = get_bearer(&gateway, &good).await;
    assert_eq!(status, 404, "a valid ES256 token passes authentication");

    // Signed by another key but claiming key-a's id.
    let forged = es256_token(EC_KEY_B_PEM, "key-a", "u-es");
    assert_refused(
        &gateway,
        &forged,
        "Invalid token: Signature verification failed",
    )
    .await;
}

#[tokio::test]
async fn a_token_cannot_choose_another_algorithm_than_its_key() {
    let (_jwks, gateway) = gateway_with_jwks().await;

    // Classic key confusion: an HS256 token "signed" with the public key, naming the EC key.
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("key-a".to_owned());
    let exp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let confused = jsonwebtoken::encode(
        &header,
        &serde_json::json!({"sub": "u1", "aud": "authenticated", "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(EC_KEY_A_XY.0.as_bytes()),
    )
    .unwrap();
    assert_refused(
        &gateway,
        &confused,
        "Invalid token: Signature verification failed",
    )
    .await;

    // An RS256 header naming the EC key is refused before any verification.
    let header = base64_url(br#"{"alg":"RS256","typ":"JWT","kid":"key-a"}"#);
    let payload =
        base64_url(format!(r#"{{"sub":"u1","aud":"authenticated","exp":{exp}}}"#).as_bytes());
    assert_refused(
        &gateway,
        &format!("{header}.{payload}.c2ln"),
        "Invalid token: The specified alg value is not allowed",
    )
    .await;
}

#[tokio::test]
async fn an_unknown_kid_triggers_one_refresh_and_nobody_queues_behind_it() {
    // A slow key server: each download takes three seconds, so a request queued behind the
    // refresh is told apart from one merely slowed by a busy machine.
    let jwks =
        FakeJwks::start_with_delay(vec![ec_jwk("key-a", EC_KEY_A_XY)], Duration::from_secs(3))
            .await;
    let url = format!("{}/auth/v1/.well-known/jwks.json", jwks.url);
    let gateway = gateway(&[("SUPABASE_JWKS_URL", &url)]).await;
    jwks.wait_for_hits(1).await;

    // The project rotates to key-b; the first token signed with it waits for the refresh.
    jwks.set_keys(vec![
        ec_jwk("key-a", EC_KEY_A_XY),
        ec_jwk("key-b", EC_KEY_B_XY),
    ]);
    let rotated = es256_token(EC_KEY_B_PEM, "key-b", "u-rotated");
    let first = tokio::spawn({
        let (url, authorization) = (gateway.at(PROTECTED_UNKNOWN), format!("Bearer {rotated}"));
        async move {
            let response = http()
                .get(url)
                .header("authorization", authorization)
                .send();
            response.await.unwrap().status().as_u16()
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // While it runs, other unknown kids are refused at once instead of queueing.
    let started = std::time::Instant::now();
    for _ in 0..5 {
        assert_refused(
            &gateway,
            &rotated,
            "Invalid token: Unable to find a signing key that matches the token",
        )
        .await;
    }
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "requests waited for the refresh: {:?}",
        started.elapsed()
    );
    assert_eq!(first.await.unwrap(), 404, "the refreshing request passes");
    assert_eq!(get_bearer(&gateway, &rotated).await.0, 404);
    assert_eq!(jwks.hits(), 2, "one refresh");

    // A kid that really is unknown causes no other refresh within the rate limit, and the
    // client's text is not echoed back.
    let unknown = es256_token(EC_KEY_B_PEM, "key-z<script>", "u1");
    for _ in 0..5 {
        let (status, body) = get_bearer(&gateway, &unknown).await;
        assert_eq!(status, 401);
        assert!(!body.to_string().contains("key-z"), "{body}");
    }
    assert_eq!(jwks.hits(), 2);
}

#[tokio::test]
async fn an_oversized_key_set_is_not_read() {
    // Thousands of keys: far beyond any real key set and the 64 KiB cap.
    let keys = (0..2000)
        .map(|n| ec_jwk(&format!("key-{n}"), EC_KEY_A_XY))
        .chain([ec_jwk("key-a", EC_KEY_A_XY)])
        .collect();
    let jwks = FakeJwks::start(keys).await;
    let url = format!("{}/auth/v1/.well-known/jwks.json", jwks.url);
    let gateway = gateway(&[("SUPABASE_JWKS_URL", &url)]).await;
    jwks.wait_for_hits(1).await;
    let token = es256_token(EC_KEY_A_PEM, "key-a", "u1");
    assert_refused(
        &gateway,
        &token,
        "Invalid token: Unable to find a signing key that matches the token",
    )
    .await;
}

#[tokio::test]
async fn tenant_and_role_claims_reach_the_upstream_in_the_internal_token() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let pool = echo_pool();
    let mut client = tonic::client::Grpc::new(grpc_channel(&gateway).await);
    let bearer = format!(
        "Bearer {}",
        token_for("user-7", "tenant-3", Role::Dispatcher)
    );
    let request = authorized(echo_request(&pool, "n", 1, 0), &bearer);
    let echo = echo_unary(&mut client, &pool, ECHO_PATH, request)
        .await
        .unwrap();
    assert_eq!(text(&echo, "user_id"), "user-7");
    assert_eq!(text(&echo, "tenant_id"), "tenant-3");
    assert_eq!(text(&echo, "role"), "dispatcher");
}

#[tokio::test]
async fn grpc_callers_without_a_token_get_unauthenticated_with_the_reference_message() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let pool = echo_pool();
    let mut client = tonic::client::Grpc::new(grpc_channel(&gateway).await);
    let status = echo_unary(
        &mut client,
        &pool,
        ECHO_PATH,
        tonic::Request::new(echo_request(&pool, "n", 1, 0)),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert_eq!(status.message(), "Missing or invalid authorization header");

    // An expired token over gRPC-Web: the failure is gRPC-shaped, not JSON.
    let expired = mint_hs256_at(
        JWT_SECRET,
        &UserTokenClaims::new("u1"),
        SystemTime::now() - Duration::from_secs(7200),
    )
    .unwrap();
    let response = http()
        .post(gateway.at(ECHO_PATH))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header("authorization", format!("Bearer {expired}"))
        .body(grpc_web_frame(&[]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["grpc-status"], "16");
    assert_eq!(response.headers()["grpc-message"], "Token%20has%20expired");
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
