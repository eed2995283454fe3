//! A fake Supabase JWKS endpoint that counts its hits, and the ES256 keys and tokens it
//! serves.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;

/// Two fixed P-256 test keys (PKCS#8 PEM) and their public coordinates, for ES256 tokens.
pub const EC_KEY_A_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg6HZiAUY9m9ZMkemK
rMjLTZDcCqT6m6WGKqkCwGCoO0qhRANCAARxs3x9CtAZrnL7IhEu/XVyouX7T3De
J/6YF9O5CzfXRJcdW8atvWhMQTfqTBzCxIOGjRFB9LN3epQW2lDF+Fgz
-----END PRIVATE KEY-----
";
pub const EC_KEY_A_XY: (&str, &str) = (
    "cbN8fQrQGa5y-yIRLv11cqLl-09w3if-mBfTuQs310Q",
    "lx1bxq29aExBN-pMHMLEg4aNEUH0s3d6lBbaUMX4WDM",
);
pub const EC_KEY_B_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg1QoAYiMQ7AqFxudC
pLDRATwiTQ662jmpntv6pzt5LgahRANCAARokvL3iPGt4gxdno/g4rJNifaGWXPF
NcBNqXySnHzhMlTaC5ClA8xSwvXR2f7w/C9GX5Dpw3zhhGUBiq5D9xbd
-----END PRIVATE KEY-----
";
pub const EC_KEY_B_XY: (&str, &str) = (
    "aJLy94jxreIMXZ6P4OKyTYn2hllzxTXATal8kpx84TI",
    "VNoLkKUDzFLC9dHZ_vD8L0ZfkOnDfOGEZQGKrkP3Ft0",
);

/// The public JWK of a P-256 key.
pub fn ec_jwk(kid: &str, (x, y): (&str, &str)) -> serde_json::Value {
    serde_json::json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid, "x": x, "y": y})
}

/// An ES256 token for `sub` signed with `pem` under `kid`, valid for an hour.
pub fn es256_token(pem: &str, kid: &str, sub: &str) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "sub": sub, "aud": "authenticated", "role": "authenticated",
        "iat": now, "exp": now + 3600,
    });
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// A JWKS server whose key set can be changed and whose hits are counted.
#[derive(Clone)]
pub struct FakeJwks {
    pub url: String,
    hits: Arc<AtomicUsize>,
    served: Arc<AtomicUsize>,
    keys: Arc<Mutex<serde_json::Value>>,
}

impl FakeJwks {
    /// Serves `{"keys": keys}` at `/auth/v1/.well-known/jwks.json` on 127.0.0.1:0, each
    /// answer after 100 ms.
    pub async fn start(keys: Vec<serde_json::Value>) -> Self {
        Self::start_with_delay(keys, Duration::from_millis(100)).await
    }

    /// Like [`FakeJwks::start`], each answer after `delay`.
    pub async fn start_with_delay(keys: Vec<serde_json::Value>, delay: Duration) -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let served_count = Arc::new(AtomicUsize::new(0));
        let document = Arc::new(Mutex::new(serde_json::json!({ "keys": keys })));
        let (counter, served, done) = (hits.clone(), document.clone(), served_count.clone());
        let app = axum::Router::new().route(
            "/auth/v1/.well-known/jwks.json",
            axum::routing::get(move || {
                let (counter, served, done) = (counter.clone(), served.clone(), done.clone());
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    // A little latency so concurrent requests overlap one refresh.
                    tokio::time::sleep(delay).await;
                    let document = served.lock().unwrap().clone();
                    done.fetch_add(1, Ordering::SeqCst);
                    axum::Json(document)
                }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url: format!("http://{addr}"),
            hits,
            served: served_count,
            keys: document,
        }
    }

    /// Replaces the served key set.
    pub fn set_keys(&self, keys: Vec<serde_json::Value>) {
        *self.keys.lock().unwrap() = serde_json::json!({ "keys": keys });
    }

    /// How many times the key set was fetched.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` fetches were answered (e.g. the gateway's start-up fetch).
    pub async fn wait_for_hits(&self, n: usize) {
        for _ in 0..200 {
            if self.served.load(Ordering::SeqCst) >= n {
                // Let the gateway read and store the answer.
                tokio::time::sleep(Duration::from_millis(50)).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the JWKS was fetched {} times, expected {n}", self.hits());
    }
}
