//! The PostgreSQL roles Director runs as.
//!
//! - The **owner** (`MIGRATION_DATABASE_URL`, see [`crate::migrate`]) creates the databases,
//!   owns every object in them and applies migrations. Only `migrate` logs in as it.
//! - The **service login role** (the user in `DATABASE_URL` / `<SERVICE>_DATABASE_URL`) is
//!   what services log in as at run time: `LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB
//!   NOCREATEROLE NOREPLICATION`, owner of nothing, member of [`APP_ROLE`] and
//!   [`WORKER_ROLE`]. `migrate` creates or updates it ([`ensure_service_login`]) whenever its
//!   name differs from the owner's, and refuses one that is a superuser, may bypass
//!   row-level security, owns anything or inherits the owner's rights.
//! - [`APP_ROLE`] (`director_app`, NOLOGIN, created by `migrations/shared`): what each tenant
//!   transaction switches to (`set_config('role', ..)`); row-level security applies to it.
//! - [`WORKER_ROLE`] (`director_worker`, NOLOGIN): the job queue's tables, for the worker
//!   that runs in the service's session outside any tenant transaction. Kept apart from
//!   [`APP_ROLE`] so tenant transactions reach the queue only through
//!   `director_enqueue_job` (see [`crate::jobs`]).

use anyhow::Context as _;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, PgConnection};

use crate::db::url_credentials;

/// The role tenant transactions run as.
pub const APP_ROLE: &str = "director_app";

/// The role holding the job queue's privileges.
pub const WORKER_ROLE: &str = "director_worker";

/// The services' login role `director up` and the test harness derive from the owner's URL.
pub const SERVICE_ROLE: &str = "director_service";

/// `DB_SERVICE_PASSWORD` under `ENVIRONMENT=dev` when unset (`director up`, the tests):
/// published, so refused elsewhere (see [`crate::secrets`]).
pub const DEV_SERVICE_PASSWORD: &str = "dev-db-service-password-0123456789abcdef";

/// The advisory lock (in the maintenance database `postgres`) serialising role changes:
/// roles are cluster-wide and concurrent `ALTER ROLE`s of one role fail with "tuple
/// concurrently updated", so migrators of different databases take turns.
const ROLE_LOCK: i64 = 0x6469_7265_6374_6f72;

/// Creates the NOLOGIN role `name` (one of this module's constants) unless it exists; a
/// creation race with another migrator counts as success.
pub async fn ensure_nologin_role(
    connection: &mut PgConnection,
    name: &'static str,
) -> sqlx::Result<()> {
    let statement = format!(
        "DO $$ BEGIN CREATE ROLE {name} NOLOGIN; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    );
    // Built from constants only.
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
        .execute(connection)
        .await?;
    Ok(())
}

/// What [`ensure_service_login`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceLogin {
    /// The services' login role.
    pub role: String,
    /// Whether this run created it (else it existed and was brought up to date).
    pub created: bool,
}

/// Makes the user of `service_url` a least-privilege login role for the database both URLs
/// name, logging in as the owner (`owner_url`): creates it, or updates an existing one (its
/// password when `service_url` holds one, LOGIN, NOCREATEDB, NOCREATEROLE, INHERIT), grants
/// it [`APP_ROLE`], [`WORKER_ROLE`] and CONNECT on the database. Answers `None`, doing
/// nothing, when both URLs log in as the same user (a deployment that manages roles
/// itself). Refuses a role that is a superuser, has BYPASSRLS or REPLICATION, owns any
/// object or has the owner's privileges.
pub async fn ensure_service_login(
    owner_url: &str,
    service_url: &str,
) -> anyhow::Result<Option<ServiceLogin>> {
    let owner: PgConnectOptions = owner_url
        .parse()
        .context("the migration database URL is not a valid PostgreSQL URL")?;
    let service: PgConnectOptions = service_url
        .parse()
        .context("the services' database URL is not a valid PostgreSQL URL")?;
    let role = service.get_username().to_owned();
    let owner_role = owner.get_username().to_owned();
    if role == owner_role {
        return Ok(None);
    }
    let database = owner
        .get_database()
        .context("the migration database URL names no database")?
        .to_owned();
    let password = url_credentials(service_url).and_then(|(_, password)| password);

    let maintenance = owner.database("postgres");
    let mut connection = PgConnection::connect_with(&maintenance)
        .await
        .context("could not connect to the maintenance database `postgres` as the owner")?;
    let mut tx = connection.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(ROLE_LOCK)
        .execute(&mut *tx)
        .await?;
    ensure_nologin_role(&mut tx, APP_ROLE).await?;
    ensure_nologin_role(&mut tx, WORKER_ROLE).await?;

    let existing: Option<(bool, bool, bool, bool, bool, bool, bool)> = sqlx::query_as(
        "SELECT rolsuper, rolbypassrls, rolreplication, rolcreatedb, rolcreaterole, \
                rolcanlogin, rolinherit \
         FROM pg_roles WHERE rolname = $1",
    )
    .bind(&role)
    .fetch_optional(&mut *tx)
    .await?;

    let refuse = |why: &str| {
        anyhow::anyhow!(
            "the services' database role {role:?} {why}; services must log in as a \
             least-privilege role (see the README: MIGRATION_DATABASE_URL): name another \
             role in DATABASE_URL, or fix this one"
        )
    };
    let created = match existing {
        None => {
            let mut template = String::from(
                "CREATE ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE \
                 NOREPLICATION INHERIT",
            );
            if password.is_some() {
                template.push_str(" PASSWORD %L");
            }
            run_formatted(&mut tx, &template, &role, password.as_deref()).await?;
            true
        }
        Some((superuser, bypassrls, replication, createdb, createrole, login, inherit)) => {
            if superuser {
                return Err(refuse("is a superuser"));
            }
            if bypassrls {
                return Err(refuse("has BYPASSRLS"));
            }
            if replication {
                return Err(refuse("has REPLICATION"));
            }
            let (owns, has_owner_rights): (bool, bool) = sqlx::query_as(
                "SELECT EXISTS (SELECT 1 FROM pg_shdepend \
                                WHERE refclassid = 'pg_authid'::regclass \
                                  AND refobjid = $1::text::regrole AND deptype = 'o'), \
                        pg_has_role($1, $2, 'USAGE')",
            )
            .bind(&role)
            .bind(&owner_role)
            .fetch_one(&mut *tx)
            .await?;
            if owns {
                return Err(refuse("owns database objects"));
            }
            if has_owner_rights {
                return Err(refuse(&format!(
                    "has the privileges of the owner {owner_role:?}"
                )));
            }
            let mut template = String::from("ALTER ROLE %I WITH");
            for (needed, attribute) in [
                (!login, " LOGIN"),
                (!inherit, " INHERIT"),
                (createdb, " NOCREATEDB"),
                (createrole, " NOCREATEROLE"),
                (password.is_some(), " PASSWORD %L"),
            ] {
                if needed {
                    template.push_str(attribute);
                }
            }
            if template.len() > "ALTER ROLE %I WITH".len() {
                run_formatted(&mut tx, &template, &role, password.as_deref()).await?;
            }
            false
        }
    };
    run_formatted(
        &mut tx,
        &format!("GRANT {APP_ROLE}, {WORKER_ROLE} TO %I"),
        &role,
        None,
    )
    .await?;
    let grant_connect: String = sqlx::query_scalar(
        "SELECT format('GRANT CONNECT ON DATABASE %I TO %I', $1::text, $2::text)",
    )
    .bind(&database)
    .bind(&role)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(grant_connect))
        .execute(&mut *tx)
        .await
        .with_context(|| format!("could not grant CONNECT on {database} to {role}"))?;
    tx.commit().await?;
    connection.close().await?;
    Ok(Some(ServiceLogin { role, created }))
}

/// Runs `template` after PostgreSQL's `format` has quoted `role` (`%I`) and `password`
/// (`%L`) into it: utility statements take no bind parameters.
async fn run_formatted(
    connection: &mut PgConnection,
    template: &str,
    role: &str,
    password: Option<&str>,
) -> anyhow::Result<()> {
    let statement: String = sqlx::query_scalar("SELECT format($1, $2::text, $3::text)")
        .bind(template)
        .bind(role)
        .bind(password)
        .fetch_one(&mut *connection)
        .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
        .execute(&mut *connection)
        .await
        // The statement may hold the password: name the template only.
        .with_context(|| format!("could not run `{template}` for role {role:?}"))?;
    Ok(())
}
