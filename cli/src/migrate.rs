//! `director migrate`: creates each service's database when missing and applies
//! `migrations/<service>/`. Idempotent.

use director_platform::catalog;
use director_platform::config::Env;
use director_platform::db::DatabaseConfig;
use director_platform::migrate::{MigrationReport, create_and_migrate, migrations_root};

/// Every service that owns a database, in start-up order.
pub fn services() -> impl Iterator<Item = &'static str> {
    catalog::SERVICES.iter().map(|spec| spec.name)
}

/// Migrates the databases of `services` (all when empty), one after the other.
pub async fn migrate_services(env: &Env, only: &[String]) -> anyhow::Result<Vec<MigrationReport>> {
    if let Some(unknown) = only
        .iter()
        .find(|name| !services().any(|s| s == name.as_str()))
    {
        anyhow::bail!(
            "unknown service {unknown:?}; expected one of: {}",
            services().collect::<Vec<_>>().join(", ")
        );
    }
    let root = migrations_root(env);
    let mut reports = Vec::new();
    for service in services().filter(|s| only.is_empty() || only.iter().any(|o| o == s)) {
        let database = DatabaseConfig::from_env(env, service)?;
        let report = create_and_migrate(database.url.expose(), &root, service).await?;
        reports.push(report);
    }
    Ok(reports)
}
