//! `director migrate`: creates each service's database when missing, applies
//! `migrations/<service>/` as the owner (`MIGRATION_DATABASE_URL`) and sets up the services'
//! least-privilege login role (`DATABASE_URL`'s user). Idempotent.

use director_platform::catalog;
use director_platform::config::{ConfigError, Env, Environment, Secret};
use director_platform::secrets::check_deployed_secret;
use director_store::db::{DatabaseConfig, with_login};
use director_store::migrate::{ServiceMigration, migrate_service};
use director_store::roles;

/// Every service that owns a database, in start-up order.
pub fn services() -> impl Iterator<Item = &'static str> {
    catalog::SERVICES.iter().map(|spec| spec.name)
}

/// Migrates the databases of `services` (all when empty), one after the other.
pub async fn migrate_services(env: &Env, only: &[String]) -> anyhow::Result<Vec<ServiceMigration>> {
    if let Some(unknown) = only
        .iter()
        .find(|name| !services().any(|s| s == name.as_str()))
    {
        anyhow::bail!(
            "unknown service {unknown:?}; expected one of: {}",
            services().collect::<Vec<_>>().join(", ")
        );
    }
    let mut reports = Vec::new();
    for service in services().filter(|s| only.is_empty() || only.iter().any(|o| o == s)) {
        reports.push(migrate_service(env, service).await?);
    }
    Ok(reports)
}

/// `director up`'s database settings. Unless `MIGRATION_DATABASE_URL` (or a
/// `<SERVICE>_MIGRATION_DATABASE_URL`) is set, the URLs the developer gave
/// (`DATABASE_URL` / `<SERVICE>_DATABASE_URL`, default the local superuser) are the owner's:
/// `migrate` logs in with them, and the services log in as
/// [`roles::SERVICE_ROLE`] with `DB_SERVICE_PASSWORD` (under `ENVIRONMENT=dev` it defaults
/// to [`roles::DEV_SERVICE_PASSWORD`]; elsewhere it is required and must not be a published
/// secret). Host, port, database and query (`sslmode`) are kept.
pub fn with_service_login(env: Env) -> anyhow::Result<Env> {
    let configured = env.string("MIGRATION_DATABASE_URL").is_some()
        || catalog::SERVICES.iter().any(|spec| {
            env.string(&format!("{}_MIGRATION_DATABASE_URL", spec.env_prefix()))
                .is_some()
        });
    if configured {
        return Ok(env);
    }
    let environment = Environment::from_env(&env)?;
    let password = match env.secret("DB_SERVICE_PASSWORD") {
        Some(password) => password,
        None if environment.is_dev() => Secret::from(roles::DEV_SERVICE_PASSWORD),
        None => {
            return Err(ConfigError::new(
                "DB_SERVICE_PASSWORD",
                format!(
                    "must be set when ENVIRONMENT is {environment}: the password of the \
                     services' database role {}",
                    roles::SERVICE_ROLE
                ),
            )
            .into());
        }
    };
    check_deployed_secret("DB_SERVICE_PASSWORD", &password, environment)?;
    let mut overrides = Vec::new();
    for spec in catalog::SERVICES {
        let owner = DatabaseConfig::from_env(&env, spec.name)?;
        let owner_url = owner.url.expose().to_owned();
        let service_url = with_login(&owner_url, roles::SERVICE_ROLE, password.expose())?;
        let prefix = spec.env_prefix();
        overrides.push((format!("{prefix}_MIGRATION_DATABASE_URL"), owner_url));
        overrides.push((format!("{prefix}_DATABASE_URL"), service_url));
    }
    Ok(env.with_overrides(overrides))
}
