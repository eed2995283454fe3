//! Secrets that must not protect anything real: those written in this repository (the
//! compose file's and the dev overlay's defaults, CI's, the tests', the code's development
//! fallback) and those too short to be keys. Outside `ENVIRONMENT=dev` a process refuses to
//! start with one ([`check_deployed_secret`]), so a deployment that forgot to set a secret
//! fails loudly instead of running with a public one.
//!
//! The list is kept honest by a test that reads every tracked file of the repository: any
//! secret-shaped value found there must be listed here.

use crate::config::{ConfigError, Environment, Secret};

/// The internal token secret used on a developer machine when `INTERNAL_TOKEN_SECRET` is
/// unset (see `identity::InternalTokenConfig`). Public, hence refused outside
/// `ENVIRONMENT=dev`.
pub const DEV_INTERNAL_TOKEN_SECRET: &str =
    "director-dev-only-internal-token-secret-not-for-production";

/// The services' database password under `ENVIRONMENT=dev` when `DB_SERVICE_PASSWORD` is
/// unset (`director up`, the tests; see `director_store::roles`). Refused elsewhere.
pub const DEV_SERVICE_PASSWORD: &str = "dev-db-service-password-0123456789abcdef";

/// The shortest secret accepted outside dev, in bytes (an HS256 key).
pub const MIN_DEPLOYED_SECRET_LEN: usize = 32;

/// The key that seals tenants' integration settings in development (`INTEGRATIONS_ENCRYPTION_KEY`
/// unset under `ENVIRONMENT=dev`): 32 bytes, base64. Refused everywhere else.
pub const DEV_INTEGRATIONS_ENCRYPTION_KEY: &str = "ZGlyZWN0b3ItZGV2LW9ubHktc2V0dGluZ3Mta2V5ISE=";

/// Every secret value written in this repository. Public by definition.
pub const PUBLISHED_SECRETS: &[&str] = &[
    DEV_INTERNAL_TOKEN_SECRET,
    DEV_SERVICE_PASSWORD,
    DEV_INTEGRATIONS_ENCRYPTION_KEY,
    // docker-compose.yml defaults
    "compose-dev-internal-secret-0123456789abcdef",
    "compose-dev-jwt-secret-0123456789abcdef",
    "compose-dev-db-service-password-0123456789abcdef",
    // deploy/k8s/overlays/dev
    "dev-only-internal-secret-0123456789abcdef",
    "dev-only-jwt-secret-0123456789abcdef",
    "dev-only-db-service-password-0123456789abcdef",
    // .ci/run
    "ci-schemathesis-internal-0123456789abcdef",
    "ci-schemathesis-secret-0123456789abcdef",
    // tests
    "AC-sid-secret-0123456789abcdef",
    "another-secret-entirely-0123456789abcdef",
    "e2e-internal-token-secret-0123456789abcdef",
    "e2e-supabase-jwt-secret-0123456789abcdef",
    "some-other-secret-0123456789abcdef",
    "test-internal-secret-0123456789abcdef-0123",
    "test-internal-token-secret-0123456789abcdef",
    "test-supabase-jwt-secret-0123456789abcdef",
];

/// Refuses `secret` (read from `variable`) outside dev when it is published or shorter than
/// [`MIN_DEPLOYED_SECRET_LEN`] bytes; the error names the variable, never the value.
pub fn check_deployed_secret(
    variable: &str,
    secret: &Secret,
    environment: Environment,
) -> Result<(), ConfigError> {
    if environment.is_dev() {
        return Ok(());
    }
    let value = secret.expose();
    if PUBLISHED_SECRETS.contains(&value) {
        return Err(ConfigError::new(
            variable,
            format!(
                "is a development secret published in Director's repository; \
                 set a private one when ENVIRONMENT is {environment}"
            ),
        ));
    }
    if value.len() < MIN_DEPLOYED_SECRET_LEN {
        return Err(ConfigError::new(
            variable,
            format!(
                "must be at least {MIN_DEPLOYED_SECRET_LEN} bytes when ENVIRONMENT is \
                 {environment}, got {}",
                value.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::*;

    #[test]
    fn published_and_short_secrets_are_refused_outside_dev_only() {
        let published = Secret::from("compose-dev-jwt-secret-0123456789abcdef");
        let short = Secret::from("short-but-private");
        let good = Secret::from("a-private-secret-nobody-has-seen-before-42");
        for environment in [Environment::Staging, Environment::Prod] {
            let error = check_deployed_secret("SUPABASE_JWT_SECRET", &published, environment)
                .expect_err("published");
            assert!(error.to_string().contains("SUPABASE_JWT_SECRET"), "{error}");
            assert!(!error.to_string().contains("compose-dev"), "{error}");
            assert!(check_deployed_secret("X", &short, environment).is_err());
            assert!(check_deployed_secret("X", &good, environment).is_ok());
        }
        assert!(check_deployed_secret("X", &published, Environment::Dev).is_ok());
        assert!(check_deployed_secret("X", &short, Environment::Dev).is_ok());
    }

    /// Secret-shaped values in the repository: the development secrets' convention (a
    /// `0123456789abcdef` run), and any value given to a `*_SECRET` variable in the compose
    /// file, the Kubernetes overlays and CI.
    #[test]
    fn every_secret_written_in_the_repository_is_listed_as_published() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let Ok(listed) = Command::new("git")
            .args(["ls-files"])
            .current_dir(&root)
            .output()
        else {
            return;
        };
        let convention = regex::Regex::new(r"[A-Za-z0-9_-]*0123456789abcdef[A-Za-z0-9_-]*")
            .expect("valid regex");
        let assigned = regex::Regex::new(r"_SECRET\s*[:=]\s*(?:\$\{[A-Z_]+:-)?([^\s}'\x22]{8,})")
            .expect("valid regex");
        let mut unlisted = Vec::new();
        for file in String::from_utf8_lossy(&listed.stdout).lines() {
            let Ok(text) = std::fs::read_to_string(root.join(file)) else {
                continue;
            };
            let deploy_file =
                file.ends_with(".yml") || file.ends_with(".yaml") || file == ".ci/run";
            let mut found: Vec<String> = convention
                .find_iter(&text)
                .map(|m| m.as_str().trim_start_matches('-').to_owned())
                .collect();
            if deploy_file {
                found.extend(assigned.captures_iter(&text).map(|c| c[1].to_owned()));
            }
            for value in found {
                if value.starts_with('$') || value == "0123456789abcdef" {
                    continue;
                }
                if !PUBLISHED_SECRETS.contains(&value.as_str()) {
                    unlisted.push(format!("{file}: {value}"));
                }
            }
        }
        assert!(
            unlisted.is_empty(),
            "add these to PUBLISHED_SECRETS: {unlisted:?}"
        );
    }
}
