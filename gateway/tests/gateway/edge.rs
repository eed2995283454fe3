//! The edge's own answers: body cap (413), rate limits (429 with Retry-After, per caller, and
//! per client address for unauthenticated work), content type (415), unknown routes and methods (404, 405), request ids,
//! security headers, and the gateway's public routes.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::*;
use serde_json::Value;

#[tokio::test]
async fn an_oversized_body_is_refused_with_413_in_the_error_shape() {
    let gateway = spawn_gateway(config(&[("MAX_BODY_BYTES", "1024")]), echo_pool(), vec![]).await;
    let response = http()
        .post(gateway.at("/api/companies"))
        .header("authorization", format!("Bearer {}", token("u1")))
        .header("content-type", "application/json")
        .body(format!(r#"{{"name": "{}"}}"#, "x".repeat(4096)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], 413);
    assert!(body["error"].as_str().unwrap().contains("1024"));
}

#[tokio::test]
async fn a_client_over_its_burst_gets_429_with_retry_after() {
    let gateway = spawn_gateway(
        config(&[
            ("ADDRESS_RATE_LIMIT_PER_SECOND", "1"),
            ("ADDRESS_RATE_LIMIT_BURST", "3"),
        ]),
        echo_pool(),
        vec![],
    )
    .await;
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..5 {
        let response = http().get(gateway.at("/api")).send().await.unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            limited = Some(response);
        }
    }
    assert_eq!(statuses, vec![200, 200, 200, 429, 429]);
    let response = limited.unwrap();
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "RESOURCE_EXHAUSTED");
    assert_eq!(body["status"], 429);
}

#[tokio::test]
async fn liveness_is_not_rate_limited_but_readiness_is() {
    let gateway = spawn_gateway(
        config(&[
            ("ADDRESS_RATE_LIMIT_PER_SECOND", "1"),
            ("ADDRESS_RATE_LIMIT_BURST", "1"),
        ]),
        echo_pool(),
        vec![],
    )
    .await;
    for _ in 0..5 {
        let response = http().get(gateway.at("/api/health")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    // Readiness calls every upstream: it is unauthenticated work like the other public routes.
    let statuses = futures::future::join_all((0..3).map(|_| async {
        http()
            .get(gateway.at("/api/health/ready"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }))
    .await;
    assert_eq!(
        statuses.iter().filter(|status| **status == 429).count(),
        2,
        "{statuses:?}"
    );
}

/// A client whose connections come from `ip` (any 127.0.0.0/8 address reaches the gateway).
fn http_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(ip))
        .build()
        .unwrap()
}

#[tokio::test]
async fn each_caller_has_its_own_rate_limit_whatever_its_address() {
    let gateway = spawn_gateway(
        config(&[("RATE_LIMIT_PER_SECOND", "1"), ("RATE_LIMIT_BURST", "2")]),
        echo_pool(),
        vec![],
    )
    .await;
    let status = |client: reqwest::Client, user: &'static str| {
        let url = gateway.at("/api/nothing");
        async move {
            client
                .get(url)
                .header("authorization", format!("Bearer {}", token(user)))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // user-a spends its burst from one address…
    assert_eq!(status(http_from([127, 0, 0, 1]), "user-a").await, 404);
    assert_eq!(status(http_from([127, 0, 0, 1]), "user-a").await, 404);
    // …and is refused from a fresh address: the caller limit, not an address limit.
    assert_eq!(status(http_from([127, 0, 0, 2]), "user-a").await, 429);
    // Other users from either address still pass: their own quotas are untouched.
    assert_eq!(status(http_from([127, 0, 0, 2]), "user-b").await, 404);
    assert_eq!(status(http_from([127, 0, 0, 1]), "user-c").await, 404);
}

#[tokio::test]
async fn ten_users_behind_one_address_each_get_their_full_quota() {
    // The per-address limit is far below what ten users need together.
    let gateway = spawn_gateway(
        config(&[
            ("RATE_LIMIT_PER_SECOND", "1"),
            ("RATE_LIMIT_BURST", "10"),
            ("ADDRESS_RATE_LIMIT_PER_SECOND", "1"),
            ("ADDRESS_RATE_LIMIT_BURST", "5"),
        ]),
        echo_pool(),
        vec![],
    )
    .await;
    let client = http_from([127, 0, 0, 9]);
    let requests = (0..10).flat_map(|user| {
        let token = token(&format!("office-user-{user}"));
        let (client, url) = (client.clone(), gateway.at("/api/nothing"));
        (0..10).map(move |_| {
            let request = client
                .get(&url)
                .header("authorization", format!("Bearer {token}"));
            async move { request.send().await.unwrap().status().as_u16() }
        })
    });
    let statuses = futures::future::join_all(requests).await;
    let limited = statuses.iter().filter(|status| **status == 429).count();
    assert_eq!(limited, 0, "{limited} of 100 requests were rate limited");
    // The eleventh request of one user is over that user's quota.
    let over = client
        .get(gateway.at("/api/nothing"))
        .header(
            "authorization",
            format!("Bearer {}", token("office-user-0")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(over.status(), 429);
}

#[tokio::test]
async fn requests_without_a_valid_token_are_limited_per_address() {
    let gateway = spawn_gateway(
        config(&[
            ("ADDRESS_RATE_LIMIT_PER_SECOND", "1"),
            ("ADDRESS_RATE_LIMIT_BURST", "3"),
        ]),
        echo_pool(),
        vec![],
    )
    .await;
    let attempt = |client: reqwest::Client, authorization: &'static str| {
        let url = gateway.at("/api/nothing");
        async move {
            let mut request = client.get(url);
            if !authorization.is_empty() {
                request = request.header("authorization", authorization);
            }
            request.send().await.unwrap().status().as_u16()
        }
    };
    let here = || http_from([127, 0, 0, 3]);
    assert_eq!(attempt(here(), "").await, 401);
    assert_eq!(attempt(here(), "Bearer forged").await, 401);
    assert_eq!(attempt(here(), "Bearer forged.again.x").await, 401);
    // Failed logins from this address are now throttled…
    assert_eq!(attempt(here(), "Bearer forged").await, 429);
    assert_eq!(attempt(here(), "").await, 429);
    // …but not from another one, and a valid token from the same address still passes.
    assert_eq!(attempt(http_from([127, 0, 0, 4]), "").await, 401);
    let valid = here()
        .get(gateway.at("/api/nothing"))
        .header("authorization", format!("Bearer {}", token("u1")))
        .send()
        .await
        .unwrap();
    assert_eq!(valid.status(), 404);
}

#[tokio::test]
async fn a_non_json_body_is_refused_with_415() {
    let gateway = spawn_gateway(config(&[]), director_pool_with_echo(), vec![]).await;
    let response = http()
        .post(gateway.at("/api/companies"))
        .header("authorization", format!("Bearer {}", token("u1")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], 415);
}

#[tokio::test]
async fn a_wrong_method_on_a_known_path_is_405_with_allow() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let response = http()
        .delete(gateway.at("/api/testing/echo/x"))
        .header("authorization", format!("Bearer {}", token("u1")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert!(
        response.headers()["allow"]
            .to_str()
            .unwrap()
            .contains("GET")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], 405);
    assert!(body["request_id"].is_string());

    let response = http().post(gateway.at("/api/health")).send().await.unwrap();
    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn the_request_id_is_echoed_or_generated_and_put_in_error_bodies() {
    let gateway = spawn_gateway(config(&[]), echo_pool(), vec![]).await;
    let response = http()
        .get(gateway.at("/api/anything"))
        .header("x-request-id", "client-chosen-id")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "client-chosen-id");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["request_id"], "client-chosen-id");

    let response = http().get(gateway.at("/api")).send().await.unwrap();
    let generated = response.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    // Production refuses the published test secrets: this deployment has its own.
    let prod = config(&[
        ("ENVIRONMENT", "prod"),
        (
            "SUPABASE_JWT_SECRET",
            "a-private-jwt-secret-only-this-test-knows-1",
        ),
        (
            "INTERNAL_TOKEN_SECRET",
            "a-private-internal-secret-only-this-test-knows",
        ),
        ("JWT_ISSUER", "https://project.supabase.co/auth/v1"),
    ]);
    let gateway = spawn_gateway(prod, echo_pool(), vec![]).await;
    for path in ["/api", "/api/no-such-thing", "/api/docs"] {
        let response = http().get(gateway.at(path)).send().await.unwrap();
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert!(
            headers["strict-transport-security"]
                .to_str()
                .unwrap()
                .contains("max-age")
        );
        let csp = headers["content-security-policy"].to_str().unwrap();
        if path == "/api/docs" {
            // The pages' assets are the gateway's own: nothing from another origin.
            assert!(csp.contains("script-src 'self';"), "{csp}");
            assert!(!csp.contains("https:"), "{csp}");
        } else {
            assert!(csp.starts_with("default-src 'none'"), "{csp}");
        }
    }
    let response = http()
        .get(
            spawn_gateway(config(&[]), echo_pool(), vec![])
                .await
                .at("/api"),
        )
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_none()
    );
}

#[tokio::test]
async fn the_banner_and_documentation_routes_are_public() {
    let gateway = spawn_gateway(config(&[]), echo_pool(), vec![]).await;
    let banner: Value = http()
        .get(gateway.at("/api"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        banner,
        serde_json::json!({"message": "IntegrationDirector API", "docs": "/api/docs"})
    );
    for path in ["/api/docs", "/api/redoc"] {
        let response = http().get(gateway.at(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(response.text().await.unwrap().contains("/api/openapi.json"));
    }
    let response = http()
        .get(gateway.at("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
}

#[tokio::test]
async fn requests_beyond_the_concurrency_cap_are_shed_with_503() {
    // One slot, held by a request that waits ~2 s on a JWKS refresh (its `kid` is new).
    let jwks = FakeJwks::start_with_delay(
        vec![ec_jwk("key-a", EC_KEY_A_XY)],
        std::time::Duration::from_secs(2),
    )
    .await;
    let url = format!("{}/auth/v1/.well-known/jwks.json", jwks.url);
    let gateway = spawn_gateway(
        config(&[
            ("MAX_CONCURRENT_REQUESTS", "1"),
            ("SUPABASE_JWKS_URL", &url),
        ]),
        echo_pool(),
        vec![],
    )
    .await;
    jwks.wait_for_hits(1).await;
    let slow_token = es256_token(EC_KEY_B_PEM, "key-new", "u1");
    let slow = {
        let url = gateway.at("/api/anything");
        tokio::spawn(async move {
            http()
                .get(url)
                .header("authorization", format!("Bearer {slow_token}"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    // The refresh has started (the fake JWKS counts before its delay): the slot is taken.
    while jwks.hits() < 2 {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let response = http().get(gateway.at("/api")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "UNAVAILABLE");
    assert_eq!(slow.await.unwrap(), 401);
}

#[tokio::test]
async fn forwarded_for_names_the_client_only_behind_a_trusted_proxy() {
    let limits = [
        ("ADDRESS_RATE_LIMIT_PER_SECOND", "1"),
        ("ADDRESS_RATE_LIMIT_BURST", "1"),
    ];
    let get = |gateway: &TestGateway, forwarded: &'static str| {
        let url = gateway.at("/api");
        async move {
            http()
                .get(url)
                .header("x-forwarded-for", forwarded)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };

    // The test client connects from 127.0.0.1: a trusted proxy here.
    let mut trusted = limits.to_vec();
    trusted.push(("TRUSTED_PROXIES", "127.0.0.0/8, 10.0.0.0/8"));
    let gateway = spawn_gateway(config(&trusted), echo_pool(), vec![]).await;
    // Walking from the right past trusted hops (10.0.0.5, an inner proxy) the first
    // untrusted entry is the client; what the client wrote before it is ignored.
    assert_eq!(get(&gateway, "1.1.1.1, 203.0.113.1, 10.0.0.5").await, 200);
    assert_eq!(get(&gateway, "1.1.1.1, 203.0.113.2, 10.0.0.5").await, 200);
    assert_eq!(get(&gateway, "9.9.9.9, 203.0.113.1").await, 429);
    // IPv6 clients share a limit per /64.
    assert_eq!(get(&gateway, "2001:db8:0:1::1").await, 200);
    assert_eq!(get(&gateway, "2001:db8:0:1:ffff::2").await, 429);
    assert_eq!(get(&gateway, "2001:db8:0:2::1").await, 200);

    // Without trusted proxies the header is ignored: the TCP peer is the client.
    let gateway = spawn_gateway(config(&limits), echo_pool(), vec![]).await;
    assert_eq!(get(&gateway, "203.0.113.1").await, 200);
    assert_eq!(
        get(&gateway, "203.0.113.2").await,
        429,
        "the header is ignored"
    );
}

#[tokio::test]
async fn a_connection_stalled_mid_headers_is_closed_after_the_header_read_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let gateway = spawn_gateway(
        config(&[("HEADER_READ_TIMEOUT_MS", "500")]),
        echo_pool(),
        vec![],
    )
    .await;
    let mut stream = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    stream
        .write_all(b"GET /api HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    // The client never finishes its headers: the gateway must hang up on it.
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut answer),
    )
    .await;
    assert!(closed.is_ok(), "still open after 5 s");
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(400),
        "closed before the timeout: {waited:?}"
    );
}
