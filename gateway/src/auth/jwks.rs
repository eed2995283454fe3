//! The Supabase project's public signing keys (JWKS), kept in memory.
//!
//! Keys are downloaded in the background (at start-up, then every refresh interval, sooner
//! after a failure) so verifying a token never waits on the network in the common case. A
//! token signed with a `kid` the cache does not know (a key rotation) triggers one on-demand
//! refresh, which that request waits for. Other requests with unknown `kid`s are refused at
//! once while it runs instead of queueing behind it (holding connections and concurrency
//! permits while a slow key server answers), and further on-demand refreshes are refused
//! until the minimum interval has passed, so a flood of forged `kid`s can neither turn the
//! gateway into a JWKS-fetching amplifier nor pile requests up. The document is read up to
//! [`MAX_JWKS_BYTES`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::AuthConfig;

/// The largest key set document read; a real JWKS holds a handful of keys (a few KiB).
pub const MAX_JWKS_BYTES: usize = 64 * 1024;

/// Delay before retrying a failed background refresh.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// One verification key and the only algorithm it may be used with.
#[derive(Clone)]
pub struct VerifyingKey {
    /// Pinned by the key (its `alg`, else its key type and curve), never by the token.
    pub algorithm: Algorithm,
    /// The public key.
    pub key: DecodingKey,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

type KeyMap = HashMap<String, Arc<VerifyingKey>>;

/// The cached key set.
#[derive(Debug)]
pub struct JwksCache {
    url: String,
    client: reqwest::Client,
    keys: RwLock<Arc<KeyMap>>,
    /// When the last on-demand (unknown `kid`) refresh started; held while it runs, so at
    /// most one runs at a time.
    last_on_demand: tokio::sync::Mutex<Option<Instant>>,
    refresh_interval: Duration,
    min_refresh_interval: Duration,
}

/// Why a refresh failed.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The request failed or answered a non-2xx status.
    #[error("jwks request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The document is not a JWKS.
    #[error("jwks document is malformed: {0}")]
    Malformed(String),
    /// The document is larger than [`MAX_JWKS_BYTES`].
    #[error("jwks document is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
}

#[derive(Deserialize)]
struct RawKeySet {
    keys: Vec<serde_json::Value>,
}

impl JwksCache {
    /// An empty cache for the JWKS at `url`. The HTTP client has a timeout and never follows
    /// redirects (the key source is configuration, not something a response may change).
    pub fn new(url: String, config: &AuthConfig) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(config.jwks_timeout)
            .connect_timeout(config.jwks_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            url,
            client,
            keys: RwLock::new(Arc::new(HashMap::new())),
            last_on_demand: tokio::sync::Mutex::new(None),
            refresh_interval: config.jwks_refresh_interval,
            min_refresh_interval: config.jwks_min_refresh_interval,
        })
    }

    /// The cached key with this id, without touching the network.
    pub fn cached(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        let keys = match self.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        keys.get(kid).cloned()
    }

    /// The key with this id; an unknown id triggers at most one rate-limited refresh, and
    /// is refused at once while another one runs.
    pub async fn key(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        if let Some(key) = self.cached(kid) {
            return Some(key);
        }
        let Ok(mut last) = self.last_on_demand.try_lock() else {
            debug!("unknown jwks kid while a refresh runs, refused without waiting");
            return None;
        };
        // A refresh may have finished between the lookup and the lock.
        if let Some(key) = self.cached(kid) {
            return Some(key);
        }
        if last.is_some_and(|at| at.elapsed() < self.min_refresh_interval) {
            debug!(kid, "unknown jwks kid, refresh rate-limited");
            return None;
        }
        *last = Some(Instant::now());
        info!(kid, "unknown jwks kid, refreshing keys");
        if let Err(error) = self.refresh().await {
            warn!(%error, "jwks refresh failed");
        }
        self.cached(kid)
    }

    /// Downloads the key set and replaces the cache with it; answers the number of usable keys.
    pub async fn refresh(&self) -> Result<usize, JwksError> {
        let mut response = self
            .client
            .get(&self.url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await?
            .error_for_status()?;
        if response
            .content_length()
            .is_some_and(|length| length > MAX_JWKS_BYTES as u64)
        {
            return Err(JwksError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(JwksError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let document: RawKeySet = serde_json::from_slice(&body)
            .map_err(|error| JwksError::Malformed(error.to_string()))?;
        let keys = parse_keys(document.keys);
        let count = keys.len();
        if count == 0 {
            return Err(JwksError::Malformed("no usable signing key".to_owned()));
        }
        match self.keys.write() {
            Ok(mut slot) => *slot = Arc::new(keys),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(keys),
        }
        debug!(keys = count, "jwks refreshed");
        Ok(count)
    }

    /// Refreshes now, then every refresh interval (30 s after a failure), until `shutdown`.
    pub fn spawn_refresh(self: Arc<Self>, shutdown: CancellationToken) {
        tokio::spawn(async move {
            loop {
                let next = match self.refresh().await {
                    Ok(_) => self.refresh_interval,
                    Err(error) => {
                        warn!(%error, url = %self.url, "jwks refresh failed");
                        RETRY_AFTER_FAILURE.min(self.refresh_interval)
                    }
                };
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(next) => {}
                }
            }
        });
    }
}

/// The usable signature keys of a JWKS, by `kid`. Keys without `kid`, encryption keys,
/// symmetric keys and keys whose `alg` contradicts their type are skipped.
fn parse_keys(raw: Vec<serde_json::Value>) -> KeyMap {
    let mut keys = HashMap::new();
    for value in raw {
        let jwk: Jwk = match serde_json::from_value(value) {
            Ok(jwk) => jwk,
            Err(error) => {
                debug!(%error, "skipping unparseable jwk");
                continue;
            }
        };
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let Some(algorithm) = pinned_algorithm(&jwk) else {
            debug!(kid, "skipping jwk with no usable signature algorithm");
            continue;
        };
        match DecodingKey::from_jwk(&jwk) {
            Ok(key) => {
                keys.insert(kid, Arc::new(VerifyingKey { algorithm, key }));
            }
            Err(error) => debug!(kid, %error, "skipping invalid jwk"),
        }
    }
    keys
}

/// The one algorithm a key may verify: its declared `alg` when that fits the key type, else
/// the natural algorithm of the key type. Symmetric (`oct`) keys are never accepted.
fn pinned_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    let declared = jwk
        .common
        .key_algorithm
        .and_then(|alg| Algorithm::try_from(alg).ok());
    match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(params) => {
            let natural = match params.curve {
                EllipticCurve::P256 => Algorithm::ES256,
                EllipticCurve::P384 => Algorithm::ES384,
                _ => return None,
            };
            declared.map_or(Some(natural), |alg| (alg == natural).then_some(alg))
        }
        AlgorithmParameters::RSA(_) => match declared {
            None => Some(Algorithm::RS256),
            Some(
                alg @ (Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512),
            ) => Some(alg),
            Some(_) => None,
        },
        AlgorithmParameters::OctetKeyPair(params) => (params.curve == EllipticCurve::Ed25519
            && declared.is_none_or(|alg| alg == Algorithm::EdDSA))
        .then_some(Algorithm::EdDSA),
        // Symmetric keys are never taken from a key set; unknown key types are skipped.
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_algorithm_is_pinned_by_the_key_type() {
        let keys = parse_keys(vec![
            json!({"kty": "EC", "crv": "P-256", "kid": "ec",
                   "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                   "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}),
            json!({"kty": "EC", "crv": "P-256", "kid": "liar", "alg": "RS256",
                   "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                   "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}),
            json!({"kty": "oct", "kid": "secret", "k": "c2VjcmV0"}),
            json!({"kty": "EC", "crv": "P-256",
                   "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                   "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}),
            json!({"kty": "nonsense"}),
        ]);
        assert_eq!(keys.len(), 1);
        assert_eq!(
            keys.get("ec").map(|key| key.algorithm),
            Some(Algorithm::ES256)
        );
    }
}
