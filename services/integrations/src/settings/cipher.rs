//! Sealing a tenant's integration settings at rest: AES-256-GCM (RustCrypto's `aes-gcm`)
//! under `INTEGRATIONS_ENCRYPTION_KEY`.
//!
//! Each sealed value is `nonce (12 bytes) || ciphertext || tag`, with a fresh random nonce per
//! write, and the row's tenant and integration as associated data: a value moved to another
//! tenant's row, or from the Slack row to the Twilio one, fails to open instead of being used.
//! Each row names the key that sealed it by the key's fingerprint (`key_id`, the first 8 bytes
//! of its SHA-256 in hex — never the key). Rotation: the new key becomes
//! `INTEGRATIONS_ENCRYPTION_KEY`, the old one moves to
//! `INTEGRATIONS_ENCRYPTION_PREVIOUS_KEYS`; rows sealed with an old key still open, and are
//! sealed again with the current key the next time the service reads them.

use std::collections::HashMap;
use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use director_platform::config::{ConfigError, Env, Environment, Secret};
use director_platform::identity::TenantId;
use director_platform::secrets::{DEV_INTEGRATIONS_ENCRYPTION_KEY, PUBLISHED_SECRETS};
use director_providers::Provider;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

/// The current key's variable.
pub const KEY_VARIABLE: &str = "INTEGRATIONS_ENCRYPTION_KEY";
/// Earlier keys, still accepted for reading.
pub const PREVIOUS_KEYS_VARIABLE: &str = "INTEGRATIONS_ENCRYPTION_PREVIOUS_KEYS";

const NONCE_LEN: usize = 12;

/// A sealed value and the fingerprint of the key that sealed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub bytes: Vec<u8>,
}

/// Why a sealed value did not open. Never carries the value or the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// No configured key has this fingerprint: a key was dropped before every row moved on.
    #[error(
        "sealed with key {0}, which is not configured (keep it in {PREVIOUS_KEYS_VARIABLE} until its rows are re-sealed)"
    )]
    UnknownKey(String),
    /// The bytes were altered, or belong to another tenant or integration.
    #[error("the sealed settings do not open with key {0}: altered, or moved from another row")]
    Tampered(String),
}

/// The current key and the earlier ones, by fingerprint.
#[derive(Clone)]
pub struct SettingsCipher {
    current_id: String,
    keys: HashMap<String, Aes256Gcm>,
}

impl fmt::Debug for SettingsCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SettingsCipher")
            .field("current_id", &self.current_id)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl SettingsCipher {
    /// Reads [`KEY_VARIABLE`] (32 bytes, base64) and [`PREVIOUS_KEYS_VARIABLE`] (a
    /// comma-separated list of the same). Outside dev the key is required and the development
    /// key written in this repository is refused; in dev that key is the default.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let environment = Environment::from_env(env)?;
        let current = match env.secret(KEY_VARIABLE) {
            Some(secret) => secret,
            None if environment.is_dev() => Secret::from(DEV_INTEGRATIONS_ENCRYPTION_KEY),
            None => {
                return Err(ConfigError::new(
                    KEY_VARIABLE,
                    format!(
                        "is required when ENVIRONMENT is {environment}: 32 random bytes in \
                         base64 (`openssl rand -base64 32`)"
                    ),
                ));
            }
        };
        if !environment.is_dev() && PUBLISHED_SECRETS.contains(&current.expose().trim()) {
            return Err(ConfigError::new(
                KEY_VARIABLE,
                format!(
                    "is the development key published in Director's repository; set a \
                     private one when ENVIRONMENT is {environment}"
                ),
            ));
        }
        let previous = env
            .secret(PREVIOUS_KEYS_VARIABLE)
            .map(|list| {
                list.expose()
                    .split(',')
                    .map(str::trim)
                    .filter(|key| !key.is_empty())
                    .map(|key| decode_key(PREVIOUS_KEYS_VARIABLE, key))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        Ok(Self::new(
            decode_key(KEY_VARIABLE, current.expose().trim())?,
            previous,
        ))
    }

    /// A cipher sealing with `current` and opening with it or any of `previous`.
    pub fn new(current: [u8; 32], previous: Vec<[u8; 32]>) -> Self {
        let current_id = fingerprint(&current);
        let mut keys: HashMap<String, Aes256Gcm> = previous
            .iter()
            .map(|key| (fingerprint(key), Aes256Gcm::new(key.into())))
            .collect();
        keys.insert(current_id.clone(), Aes256Gcm::new((&current).into()));
        Self { current_id, keys }
    }

    /// The current key's fingerprint: rows with another `key_id` are due to be sealed again.
    pub fn current_key_id(&self) -> &str {
        &self.current_id
    }

    /// Seals `plaintext` for `tenant_id`'s `integration` row with the current key.
    pub fn seal(&self, tenant_id: &TenantId, integration: Provider, plaintext: &[u8]) -> Sealed {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = associated_data(tenant_id, integration);
        let key = &self.keys[&self.current_id];
        // AES-GCM encryption fails only for messages over 64 GiB.
        let ciphertext = key
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        let mut bytes = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&ciphertext);
        Sealed {
            key_id: self.current_id.clone(),
            bytes,
        }
    }

    /// Opens what [`Self::seal`] sealed for the same tenant and integration.
    pub fn open(
        &self,
        tenant_id: &TenantId,
        integration: Provider,
        sealed: &Sealed,
    ) -> Result<Vec<u8>, OpenError> {
        let key = self
            .keys
            .get(&sealed.key_id)
            .ok_or_else(|| OpenError::UnknownKey(sealed.key_id.clone()))?;
        let tampered = || OpenError::Tampered(sealed.key_id.clone());
        if sealed.bytes.len() < NONCE_LEN {
            return Err(tampered());
        }
        let (nonce, ciphertext) = sealed.bytes.split_at(NONCE_LEN);
        let nonce = <[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| tampered())?;
        let aad = associated_data(tenant_id, integration);
        key.decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| tampered())
    }
}

/// What binds a sealed value to its row.
fn associated_data(tenant_id: &TenantId, integration: Provider) -> Vec<u8> {
    let integration = integration.as_str();
    format!("director/integration_settings/v1\0{tenant_id}\0{integration}").into_bytes()
}

/// The first 8 bytes of the key's SHA-256, in hex: names the key without revealing it.
fn fingerprint(key: &[u8; 32]) -> String {
    Sha256::digest(key)[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A base64 key of exactly 32 bytes; the error never repeats the value.
fn decode_key(variable: &str, raw: &str) -> Result<[u8; 32], ConfigError> {
    let bytes = BASE64.decode(raw).map_err(|_| {
        ConfigError::new(
            variable,
            "must be base64 (standard alphabet, padded) of 32 bytes",
        )
    })?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        ConfigError::new(
            variable,
            format!("must decode to 32 bytes (AES-256), got {}", bytes.len()),
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn tenant(id: &str) -> TenantId {
        TenantId::parse(id).unwrap()
    }

    fn cipher() -> SettingsCipher {
        SettingsCipher::new([7; 32], Vec::new())
    }

    #[test]
    fn a_sealed_value_opens_for_its_own_row_only() {
        let cipher = cipher();
        let sealed = cipher.seal(
            &tenant("tenant-a"),
            Provider::Slack,
            b"https://hooks.slack.com/x",
        );
        assert!(!sealed.bytes.windows(5).any(|w| w == b"hooks"));
        assert_eq!(
            cipher
                .open(&tenant("tenant-a"), Provider::Slack, &sealed)
                .unwrap(),
            b"https://hooks.slack.com/x"
        );
        assert!(matches!(
            cipher.open(&tenant("tenant-b"), Provider::Slack, &sealed),
            Err(OpenError::Tampered(_))
        ));
        assert!(matches!(
            cipher.open(&tenant("tenant-a"), Provider::Twilio, &sealed),
            Err(OpenError::Tampered(_))
        ));
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let cipher = cipher();
        let one = cipher.seal(&tenant("t"), Provider::Vessey, b"same");
        let two = cipher.seal(&tenant("t"), Provider::Vessey, b"same");
        assert_ne!(one.bytes, two.bytes);
    }

    #[test]
    fn an_altered_byte_is_refused() {
        let cipher = cipher();
        let mut sealed = cipher.seal(&tenant("t"), Provider::Vessey, b"secret");
        let last = sealed.bytes.len() - 1;
        sealed.bytes[last] ^= 1;
        assert!(matches!(
            cipher.open(&tenant("t"), Provider::Vessey, &sealed),
            Err(OpenError::Tampered(_))
        ));
    }

    #[test]
    fn rows_sealed_with_a_previous_key_still_open_after_rotation() {
        let old = SettingsCipher::new([1; 32], Vec::new());
        let sealed = old.seal(&tenant("t"), Provider::Twilio, b"token");
        let rotated = SettingsCipher::new([2; 32], vec![[1; 32]]);
        assert_ne!(rotated.current_key_id(), sealed.key_id);
        assert_eq!(
            rotated
                .open(&tenant("t"), Provider::Twilio, &sealed)
                .unwrap(),
            b"token"
        );
        let forgotten = SettingsCipher::new([2; 32], Vec::new());
        assert_eq!(
            forgotten.open(&tenant("t"), Provider::Twilio, &sealed),
            Err(OpenError::UnknownKey(sealed.key_id.clone()))
        );
    }

    #[test]
    fn the_key_is_required_outside_dev_and_the_published_one_refused() {
        let staging = Env::from_pairs([("ENVIRONMENT", "staging")]);
        let error = SettingsCipher::from_env(&staging).unwrap_err();
        assert_eq!(error.variable, KEY_VARIABLE);
        let published = Env::from_pairs([
            ("ENVIRONMENT", "prod"),
            (KEY_VARIABLE, DEV_INTEGRATIONS_ENCRYPTION_KEY),
        ]);
        let error = SettingsCipher::from_env(&published).unwrap_err();
        assert!(error.to_string().contains("published"), "{error}");
        assert!(SettingsCipher::from_env(&Env::default()).is_ok());
    }

    #[test]
    fn a_malformed_key_is_refused_without_repeating_it() {
        for bad in ["not base64 at all!", "c2hvcnQ="] {
            let env = Env::from_pairs([(KEY_VARIABLE, bad)]);
            let error = SettingsCipher::from_env(&env).unwrap_err();
            assert_eq!(error.variable, KEY_VARIABLE);
            assert!(!error.to_string().contains(bad), "{error}");
        }
        let env = Env::from_pairs([
            (KEY_VARIABLE, BASE64.encode([3u8; 32]).as_str()),
            (PREVIOUS_KEYS_VARIABLE, "nope"),
        ]);
        assert_eq!(
            SettingsCipher::from_env(&env).unwrap_err().variable,
            PREVIOUS_KEYS_VARIABLE
        );
    }
}
