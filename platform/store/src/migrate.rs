//! Database creation and schema migrations: a deploy step (`director migrate`, or a service's
//! own `migrate` subcommand), never a side effect of a service starting.
//!
//! Each service owns one database on the server and one folder of sqlx migrations,
//! `migrations/<service>/`, applied after the folder every database shares,
//! `migrations/shared/` (the application role, the `updated_at` trigger function); versions
//! are one sequence across both. The folders are read at run time: from `MIGRATIONS_DIR` when
//! set (the container images ship it at `/app/migrations`), else from the source checkout.
//!
//! `migrate` logs in as the databases' **owner**: `<SERVICE>_MIGRATION_DATABASE_URL` (used
//! verbatim), else `MIGRATION_DATABASE_URL` pointed at the service's database, else the
//! services' own URL (one role for everything, as before least privilege). When the
//! services' URL (`DATABASE_URL` / `<SERVICE>_DATABASE_URL`) logs in as another user,
//! `migrate` also makes that user the least-privilege login role the services run as
//! ([`crate::roles::ensure_service_login`]), with the URL's password.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::Postgres;
use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::db::{
    DEFAULT_WAIT_TIMEOUT, DatabaseConfig, database_url_for, is_not_accepting_connections,
    server_address, url_credentials, validate_url, wait_for_server,
};
use crate::jobs;
use crate::roles::{ServiceLogin, ensure_service_login};
use director_platform::catalog::ServiceSpec;
use director_platform::config::{ConfigError, Env, Environment};
use director_platform::secrets::PUBLISHED_SECRETS;

/// The folder holding `migrations/<service>/` folders.
pub fn migrations_root(env: &Env) -> PathBuf {
    env.string("MIGRATIONS_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations"),
        PathBuf::from,
    )
}

/// What one migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// The database migrated.
    pub database: String,
    /// Whether this run created it.
    pub created: bool,
    /// Migrations known in the folder.
    pub known: usize,
    /// Migrations applied by this run (0 when already up to date).
    pub applied: usize,
}

/// The owner's URL for `service`'s database (see the module docs); `service_database` is the
/// services' settings ([`DatabaseConfig::from_env`]), whose database it names.
pub fn migration_url(
    env: &Env,
    service: &str,
    service_database: &DatabaseConfig,
) -> Result<String, ConfigError> {
    let service_var = format!(
        "{}_MIGRATION_DATABASE_URL",
        service.to_ascii_uppercase().replace('-', "_")
    );
    if let Some(url) = env.string(&service_var) {
        validate_url(&service_var, &url)?;
        return Ok(url);
    }
    match env.string("MIGRATION_DATABASE_URL") {
        Some(server) => {
            let database = service_database
                .database_name()
                .unwrap_or_else(|| format!("director_{}", service.replace('-', "_")));
            database_url_for(&server, &database)
                .map_err(|e| ConfigError::new("MIGRATION_DATABASE_URL", e.reason))
        }
        None => Ok(service_database.url.expose().to_owned()),
    }
}

/// What [`migrate_service`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceMigration {
    /// The database's migrations.
    pub migrations: MigrationReport,
    /// The services' login role, when it is not the owner.
    pub login: Option<ServiceLogin>,
}

/// `DB_WAIT_TIMEOUT_MS` when unset: a minute.
#[allow(clippy::cast_possible_truncation)]
const DEFAULT_WAIT_TIMEOUT_MS: u64 = DEFAULT_WAIT_TIMEOUT.as_millis() as u64;

/// `migrate` for one service with the settings in `env`: waits for the PostgreSQL server to
/// accept connections (at most `DB_WAIT_TIMEOUT_MS`, default a minute, retrying with backoff
/// and saying so), creates and migrates its database as the owner, then sets up the
/// services' login role.
pub async fn migrate_service(env: &Env, service: &str) -> anyhow::Result<ServiceMigration> {
    let database = DatabaseConfig::from_env(env, service)?;
    let owner_url = migration_url(env, service, &database)?;
    refuse_published_password(env, service, database.url.expose())?;
    let wait = env.millis_or("DB_WAIT_TIMEOUT_MS", DEFAULT_WAIT_TIMEOUT_MS)?;
    wait_for_server(&owner_url, wait).await?;
    let migrations = create_and_migrate(&owner_url, &migrations_root(env), service).await?;
    let login = ensure_service_login(&owner_url, database.url.expose())
        .await
        .with_context(|| format!("could not set up the login role of {service}"))?;
    Ok(ServiceMigration { migrations, login })
}

/// Outside `ENVIRONMENT=dev`, refuses a services' URL whose password is one written in this
/// repository (the compose file's, the dev overlay's, the development default): `migrate`
/// would make it the login password of the services' role.
fn refuse_published_password(env: &Env, service: &str, url: &str) -> Result<(), ConfigError> {
    let environment = Environment::from_env(env)?;
    let published = url_credentials(url)
        .and_then(|(_, password)| password)
        .is_some_and(|password| PUBLISHED_SECRETS.contains(&password.as_str()));
    if published && !environment.is_dev() {
        let prefix = service.to_ascii_uppercase().replace('-', "_");
        return Err(ConfigError::new(
            format!("DATABASE_URL or {prefix}_DATABASE_URL"),
            format!(
                "holds a development password published in Director's repository; set a \
                 private one when ENVIRONMENT is {environment}"
            ),
        ));
    }
    Ok(())
}

/// The folder of migrations every service's database gets first.
const SHARED: &str = "shared";

/// Creates the database named by `database_url` when it does not exist, then applies every
/// migration of `root/shared/` and `root/<service>/` (which may be absent) not yet applied,
/// after installing the job queue's schema when the catalog says the service runs jobs.
/// Safe to run again and concurrently: a database created by someone else in the meantime
/// counts as existing, and sqlx serialises migrators with an advisory lock.
pub async fn create_and_migrate(
    database_url: &str,
    root: &Path,
    service: &str,
) -> anyhow::Result<MigrationReport> {
    let options: PgConnectOptions = database_url
        .parse()
        .context("the database URL is not a valid PostgreSQL URL")?;
    let database = options
        .get_database()
        .context("the database URL names no database")?
        .to_owned();

    let created = create_if_missing(database_url)
        .await
        .with_context(|| format!("could not create database {database}"))?;

    let migrator = service_migrator(root, service).await?;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .with_context(|| format!("could not connect to database {database}"))?;
    let applied_before = applied_versions(&pool).await?;
    migrator
        .run(&pool)
        .await
        .with_context(|| format!("migrating database {database} failed"))?;
    // After the shared migrations, which create the application role the queue is granted to.
    if let Some(spec) = ServiceSpec::named(service).filter(|spec| spec.runs_jobs) {
        jobs::install(&pool, spec.jobs).await?;
    }
    let applied_after = applied_versions(&pool).await?;
    record_migrated(&pool, latest_version(&migrator)).await?;
    pool.close().await;

    Ok(MigrationReport {
        database,
        created,
        known: migrator.iter().count(),
        applied: applied_after.saturating_sub(applied_before),
    })
}

/// The shared migrations followed by the service's, refusing a version used by both.
async fn service_migrator(root: &Path, service: &str) -> anyhow::Result<Migrator> {
    let mut migrations = read_folder(&root.join(SHARED)).await?;
    let service_dir = root.join(service);
    if service_dir.is_dir() {
        for migration in read_folder(&service_dir).await? {
            if let Some(clash) = migrations.iter().find(|m| m.version == migration.version) {
                anyhow::bail!(
                    "migration version {} of {service} ({}) is already taken by {SHARED} ({}); \
                     service migrations start after the shared ones",
                    migration.version,
                    migration.description,
                    clash.description
                );
            }
            migrations.push(migration);
        }
    }
    Ok(Migrator::with_migrations(migrations))
}

async fn read_folder(dir: &Path) -> anyhow::Result<Vec<sqlx::migrate::Migration>> {
    let migrator = Migrator::new(dir)
        .await
        .with_context(|| format!("could not read migrations from {}", dir.display()))?;
    Ok(migrator.iter().cloned().collect())
}

async fn create_if_missing(database_url: &str) -> Result<bool, sqlx::Error> {
    if Postgres::database_exists(database_url).await? {
        return Ok(false);
    }
    match Postgres::create_database(database_url).await {
        Ok(()) => Ok(true),
        // Another migrator created it between our check and our create.
        Err(_) if Postgres::database_exists(database_url).await? => Ok(false),
        Err(error) => Err(error),
    }
}

/// The newest migration version of `migrator` (0 for none).
fn latest_version(migrator: &Migrator) -> i64 {
    migrator
        .iter()
        .map(|migration| migration.version)
        .max()
        .unwrap_or(0)
}

/// `migrate`'s own record, beside sqlx's `_sqlx_migrations`: the newest migration version a
/// completed run (migrations and job queue) has brought the database to. Any login may read it
/// (it holds a number and a time), so services wait on it with their own credentials.
const MIGRATED_TABLE: &str = "
CREATE TABLE IF NOT EXISTS director_migrated (
    singleton   boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    version     bigint      NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON director_migrated TO PUBLIC";

/// Records that a run brought the database to `version`. A run of an older release, which
/// ships fewer migrations, does not lower it: the schema stays what the newest run made it.
async fn record_migrated(pool: &sqlx::PgPool, version: i64) -> anyhow::Result<()> {
    sqlx::raw_sql(MIGRATED_TABLE)
        .execute(pool)
        .await
        .context("could not create director_migrated")?;
    sqlx::query(
        "INSERT INTO director_migrated (version) VALUES ($1) \
         ON CONFLICT (singleton) DO UPDATE \
         SET version = greatest(director_migrated.version, excluded.version), finished_at = now()",
    )
    .bind(version)
    .execute(pool)
    .await
    .context("could not record the migration run")?;
    Ok(())
}

/// The least time [`wait_until_migrated`] gives one connection attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `migrate --wait`: waits, with the service's own credentials, until a migration run (the
/// deployment's migration Job) has brought `service`'s database to the newest migration this
/// build ships, checking every `poll`; fails after `timeout` saying what it last saw. Answers
/// the version found. Applies nothing: the services never hold the owner's credentials.
pub async fn wait_until_migrated(
    env: &Env,
    service: &str,
    timeout: Duration,
    poll: Duration,
) -> anyhow::Result<i64> {
    let database = DatabaseConfig::from_env(env, service)?;
    let wanted = latest_version(&service_migrator(&migrations_root(env), service).await?);
    let deadline = Instant::now() + timeout;
    loop {
        // Each attempt may take what is left of the wait, and at least CONNECT_TIMEOUT: a TLS
        // handshake can outlast the poll interval, and cutting it short would read as "not
        // accepting connections" while the server answers (the wait may then overrun its
        // timeout by one connection attempt).
        let connect_timeout = deadline
            .saturating_duration_since(Instant::now())
            .max(CONNECT_TIMEOUT);
        let waiting_for = match migrated_version(database.url.expose(), connect_timeout).await {
            Ok(Some(version)) if version >= wanted => return Ok(version),
            Ok(Some(version)) => {
                format!("the database is at migration {version}; this build needs {wanted}")
            }
            Ok(None) => "no migration run has finished yet".to_owned(),
            Err(error)
                if error
                    .downcast_ref::<sqlx::Error>()
                    .is_some_and(is_not_accepting_connections)
                    || error.to_string().contains("timed out") =>
            {
                format!(
                    "PostgreSQL at {} does not accept connections yet: {error:#}",
                    server_address(database.url.expose())
                )
            }
            Err(error) => format!("{error:#}"),
        };
        if Instant::now() >= deadline {
            anyhow::bail!(
                "the database of {service} was not migrated within {}s: {waiting_for}",
                timeout.as_secs()
            );
        }
        tracing::info!(%waiting_for, "waiting for the migrations");
        tokio::time::sleep(poll).await;
    }
}

/// The version `director_migrated` records, `None` before the first completed run.
async fn migrated_version(url: &str, connect_timeout: Duration) -> anyhow::Result<Option<i64>> {
    use sqlx::Connection as _;
    let mut connection = tokio::time::timeout(connect_timeout, sqlx::PgConnection::connect(url))
        .await
        .context("connecting to the database timed out")?
        .context("could not connect to the database")?;
    let recorded: bool =
        sqlx::query_scalar("SELECT to_regclass('public.director_migrated') IS NOT NULL")
            .fetch_one(&mut connection)
            .await?;
    let version = if recorded {
        sqlx::query_scalar("SELECT version FROM director_migrated")
            .fetch_optional(&mut connection)
            .await?
    } else {
        None
    };
    let _ = connection.close().await;
    Ok(version)
}

/// How many migrations the database records as applied (0 before the first run).
async fn applied_versions(pool: &sqlx::PgPool) -> anyhow::Result<usize> {
    let table_exists: bool =
        sqlx::query_scalar("SELECT to_regclass('public._sqlx_migrations') IS NOT NULL")
            .fetch_one(pool)
            .await?;
    if !table_exists {
        return Ok(0);
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await?;
    Ok(usize::try_from(count).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_services_password_is_refused_outside_dev_only() {
        let url = format!(
            "postgres://director_service:{}@db:5432/director_companies",
            crate::roles::DEV_SERVICE_PASSWORD
        );
        for environment in ["staging", "prod"] {
            let env = Env::from_pairs([("ENVIRONMENT", environment)]);
            let error = refuse_published_password(&env, "companies", &url).expect_err("refused");
            assert!(
                error.to_string().contains("COMPANIES_DATABASE_URL"),
                "{error}"
            );
            assert!(
                !error
                    .to_string()
                    .contains(crate::roles::DEV_SERVICE_PASSWORD),
                "{error}"
            );
            let private = "postgres://director_service:a-private-one@db:5432/d";
            assert!(refuse_published_password(&env, "companies", private).is_ok());
        }
        let dev = Env::from_pairs([("ENVIRONMENT", "dev")]);
        assert!(refuse_published_password(&dev, "companies", &url).is_ok());
    }

    #[test]
    fn the_migration_url_is_the_owners_pointed_at_the_services_database() {
        let env = Env::from_pairs([
            (
                "DATABASE_URL",
                "postgres://svc:pw@bouncer:6432?sslmode=require",
            ),
            (
                "MIGRATION_DATABASE_URL",
                "postgres://owner:pw@db:5432/postgres?sslmode=require",
            ),
        ]);
        let database = DatabaseConfig::from_env(&env, "companies").expect("valid");
        assert_eq!(
            migration_url(&env, "companies", &database).ok().as_deref(),
            Some("postgres://owner:pw@db:5432/director_companies?sslmode=require")
        );
        let verbatim = env.with_overrides([(
            "COMPANIES_MIGRATION_DATABASE_URL",
            "postgres://owner@elsewhere/custom",
        )]);
        assert_eq!(
            migration_url(&verbatim, "companies", &database)
                .ok()
                .as_deref(),
            Some("postgres://owner@elsewhere/custom")
        );
        let alone = Env::from_pairs([("DATABASE_URL", "postgres://one@db:5432")]);
        let database = DatabaseConfig::from_env(&alone, "companies").expect("valid");
        assert_eq!(
            migration_url(&alone, "companies", &database)
                .ok()
                .as_deref(),
            Some("postgres://one@db:5432/director_companies")
        );
    }
}
