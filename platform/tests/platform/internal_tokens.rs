//! Internal tokens carry the caller between processes and accept nothing else.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use director_platform::config::Secret;
use director_platform::identity::user_token::{UserTokenClaims, mint_hs256, mint_hs256_at};
use director_platform::identity::{Caller, InternalTokens, Role, TokenError};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const SECRET: &str = "an-internal-secret-of-at-least-32-bytes!";

fn tokens() -> InternalTokens {
    InternalTokens::new(&Secret::from(SECRET), Duration::from_secs(60))
}

fn caller() -> Caller {
    Caller::new("user-42", "tenant-7", Role::Dispatcher)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims like `mint` writes them, for tests that forge variations.
fn claims() -> Value {
    json!({
        "sub": "user-42", "tid": "tenant-7", "role": "dispatcher",
        "iss": "director", "aud": "director-internal",
        "iat": now(), "exp": now() + 60,
    })
}

fn sign(claims: &Value, algorithm: Algorithm, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn decode_part(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn encode_part(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

#[test]
fn a_minted_token_verifies_back_to_the_same_caller() {
    let tokens = tokens();
    for role in [Role::Admin, Role::Dispatcher, Role::Driver] {
        let who = Caller::new("user-42", "tenant-7", role);
        let token = tokens.mint(&who).unwrap();
        assert_eq!(tokens.verify(&token), Ok(who));
    }
}

#[test]
fn a_minted_token_has_the_documented_claims_and_lifetime() {
    let token = tokens().mint(&caller()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(decode_part(parts[0])["alg"], "HS256");
    let payload = decode_part(parts[1]);
    assert_eq!(payload["sub"], "user-42");
    assert_eq!(payload["tid"], "tenant-7");
    assert_eq!(payload["role"], "dispatcher");
    assert_eq!(payload["iss"], "director");
    assert_eq!(payload["aud"], "director-internal");
    let lifetime = payload["exp"].as_u64().unwrap() - payload["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 60);
}

#[test]
fn a_hand_forged_token_with_our_claims_is_accepted() {
    // Guards the negative tests below: they differ from this one in one respect only.
    let token = sign(&claims(), Algorithm::HS256, SECRET);
    assert_eq!(tokens().verify(&token), Ok(caller()));
}

#[test]
fn an_expired_token_is_rejected_as_expired() {
    let mut expired = claims();
    expired["iat"] = json!(now() - 600);
    expired["exp"] = json!(now() - 300);
    let token = sign(&expired, Algorithm::HS256, SECRET);
    assert_eq!(tokens().verify(&token), Err(TokenError::Expired));
}

#[test]
fn a_token_whose_payload_was_changed_is_rejected() {
    let token = tokens().mint(&caller()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload = decode_part(parts[1]);
    payload["tid"] = json!("someone-elses-tenant");
    let tampered = format!("{}.{}.{}", parts[0], encode_part(&payload), parts[2]);
    assert!(matches!(
        tokens().verify(&tampered),
        Err(TokenError::Invalid(_))
    ));
}

#[test]
fn a_token_signed_with_another_secret_is_rejected() {
    let other = InternalTokens::new(
        &Secret::from("another-secret-that-is-also-32-bytes-long"),
        Duration::from_secs(60),
    );
    let token = other.mint(&caller()).unwrap();
    assert!(matches!(
        tokens().verify(&token),
        Err(TokenError::Invalid(_))
    ));
}

#[test]
fn an_unsigned_alg_none_token_is_rejected() {
    let header = encode_part(&json!({"alg": "none", "typ": "JWT"}));
    let payload = encode_part(&claims());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
    ] {
        assert!(
            matches!(tokens().verify(&token), Err(TokenError::Invalid(_))),
            "{token}"
        );
    }
}

#[test]
fn a_token_with_another_hmac_algorithm_is_rejected_even_with_our_secret() {
    let token = sign(&claims(), Algorithm::HS512, SECRET);
    assert!(matches!(
        tokens().verify(&token),
        Err(TokenError::Invalid(_))
    ));
}

#[test]
fn a_token_for_another_audience_or_issuer_is_rejected() {
    let mut user_audience = claims();
    user_audience["aud"] = json!("authenticated");
    let mut other_issuer = claims();
    other_issuer["iss"] = json!("https://example.supabase.co/auth/v1");
    let mut no_audience = claims();
    no_audience.as_object_mut().unwrap().remove("aud");
    for forged in [user_audience, other_issuer, no_audience] {
        let token = sign(&forged, Algorithm::HS256, SECRET);
        assert!(
            matches!(tokens().verify(&token), Err(TokenError::Invalid(_))),
            "{forged}"
        );
    }
}

#[test]
fn a_token_with_an_unknown_role_or_no_tenant_is_rejected() {
    let mut unknown_role = claims();
    unknown_role["role"] = json!("superadmin");
    let mut no_tenant = claims();
    no_tenant.as_object_mut().unwrap().remove("tid");
    let mut empty_tenant = claims();
    empty_tenant["tid"] = json!("");
    for forged in [unknown_role, no_tenant, empty_tenant] {
        let token = sign(&forged, Algorithm::HS256, SECRET);
        assert!(
            matches!(tokens().verify(&token), Err(TokenError::Invalid(_))),
            "{forged}"
        );
    }
}

#[test]
fn a_user_token_has_the_supabase_shape() {
    let mut claims = UserTokenClaims::new("user-1");
    claims.tenant_id = Some("tenant-1".to_owned());
    claims.role = Some(Role::Driver);
    claims.issuer = Some("https://example.supabase.co/auth/v1".to_owned());
    let token = mint_hs256("a-supabase-jwt-secret-with-enough-length", &claims).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(decode_part(parts[0])["alg"], "HS256");
    let payload = decode_part(parts[1]);
    assert_eq!(payload["sub"], "user-1");
    assert_eq!(payload["aud"], "authenticated");
    assert_eq!(payload["role"], "authenticated");
    assert_eq!(payload["iss"], "https://example.supabase.co/auth/v1");
    assert_eq!(
        payload["app_metadata"],
        json!({"tenant_id": "tenant-1", "role": "driver"})
    );
    assert_eq!(
        payload["exp"].as_u64().unwrap() - payload["iat"].as_u64().unwrap(),
        3600
    );

    // The signature is a real HS256 signature over the secret.
    let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
    validation.set_audience(&["authenticated"]);
    let decoded = jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_secret(b"a-supabase-jwt-secret-with-enough-length"),
        &validation,
    )
    .unwrap();
    assert_eq!(decoded.claims["sub"], "user-1");
}

#[test]
fn a_user_token_without_tenant_or_role_omits_them_and_can_be_minted_expired() {
    let claims = UserTokenClaims::new("user-2");
    let issued = SystemTime::now() - Duration::from_secs(7200);
    let token = mint_hs256_at("secret", &claims, issued).unwrap();
    let payload = decode_part(token.split('.').nth(1).unwrap());
    assert_eq!(payload["app_metadata"], json!({}));
    assert!(payload.get("iss").is_none());
    assert!(payload["exp"].as_u64().unwrap() < now());
}
