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
//! - [`QUEUE_ROLE`] (`director_queue`, NOLOGIN): owns the job queue — the `graphile_worker`
//!   schema with everything in it, and `director_enqueue_job` — and nothing else; no
//!   superuser, no other attribute, a member of no role ([`ensure_queue_roles`]). The
//!   enqueue function is `SECURITY DEFINER`, so it runs with exactly this role's rights: the
//!   queue's, not the migrating owner's (a superuser under `director up` and compose). When
//!   the owner is not a superuser it is made a member of this role, to hand it the queue's
//!   objects and change them later; the services' login role must never be one.

use anyhow::Context as _;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, PgConnection};

use crate::db::url_credentials;

/// The role tenant transactions run as.
pub const APP_ROLE: &str = "director_app";

/// The role holding the job queue's privileges.
pub const WORKER_ROLE: &str = "director_worker";

/// The role owning the job queue and the function the application role enqueues with.
pub const QUEUE_ROLE: &str = "director_queue";

/// The services' login role `director up` and the test harness derive from the owner's URL.
pub const SERVICE_ROLE: &str = "director_service";

/// `DB_SERVICE_PASSWORD` under `ENVIRONMENT=dev` when unset (`director up`, the tests):
/// published, so refused elsewhere (listed in [`director_platform::secrets`]).
pub use director_platform::secrets::DEV_SERVICE_PASSWORD;

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

/// Makes [`WORKER_ROLE`] and [`QUEUE_ROLE`] exist, logging in as the owner (`owner`, pointed
/// at the maintenance database `postgres`, where migrators of different databases take turns
/// at role changes). [`QUEUE_ROLE`] is created NOLOGIN with no other attribute, or an existing
/// one is brought back to that (LOGIN, CREATEDB, CREATEROLE, SUPERUSER, REPLICATION and
/// BYPASSRLS are taken away; the last three need a superuser owner); one that is a member of
/// any role is refused, since the enqueue function would run with that role's rights too.
/// An owner that is not a superuser is made a member of [`QUEUE_ROLE`]: handing the queue's
/// objects to a role, and later changing them, takes that.
pub async fn ensure_queue_roles(owner: &PgConnectOptions) -> anyhow::Result<()> {
    let maintenance = owner.clone().database("postgres");
    let mut connection = PgConnection::connect_with(&maintenance)
        .await
        .context("could not connect to the maintenance database `postgres` as the owner")?;
    let mut tx = connection.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(ROLE_LOCK)
        .execute(&mut *tx)
        .await?;
    ensure_nologin_role(&mut tx, WORKER_ROLE).await?;
    ensure_nologin_role(&mut tx, QUEUE_ROLE).await?;

    let (login, createdb, createrole, superuser, replication, bypassrls): (
        bool,
        bool,
        bool,
        bool,
        bool,
        bool,
    ) = sqlx::query_as(
        "SELECT rolcanlogin, rolcreatedb, rolcreaterole, rolsuper, rolreplication, rolbypassrls \
         FROM pg_roles WHERE rolname = $1",
    )
    .bind(QUEUE_ROLE)
    .fetch_one(&mut *tx)
    .await?;
    // Only the attributes it has: naming SUPERUSER, REPLICATION or BYPASSRLS at all takes a
    // superuser.
    let mut alter = format!("ALTER ROLE {QUEUE_ROLE} WITH");
    let unaltered = alter.len();
    for (has, attribute) in [
        (login, " NOLOGIN"),
        (createdb, " NOCREATEDB"),
        (createrole, " NOCREATEROLE"),
        (superuser, " NOSUPERUSER"),
        (replication, " NOREPLICATION"),
        (bypassrls, " NOBYPASSRLS"),
    ] {
        if has {
            alter.push_str(attribute);
        }
    }
    if alter.len() > unaltered {
        // Built from constants only.
        sqlx::raw_sql(sqlx::AssertSqlSafe(alter.as_str()))
            .execute(&mut *tx)
            .await
            .with_context(|| format!("could not run `{alter}`"))?;
    }

    let memberships: Option<String> = sqlx::query_scalar(
        "SELECT string_agg(m.roleid::regrole::text, ', ' ORDER BY m.roleid::regrole::text) \
         FROM pg_auth_members m WHERE m.member = $1::text::regrole",
    )
    .bind(QUEUE_ROLE)
    .fetch_one(&mut *tx)
    .await?;
    if let Some(memberships) = memberships {
        anyhow::bail!(
            "the job queue's role {QUEUE_ROLE} is a member of {memberships}; it must hold the \
             queue's rights and nothing else, since director_enqueue_job runs with them: \
             REVOKE those roles FROM {QUEUE_ROLE}"
        );
    }

    let (owner_is_superuser, owner_is_member): (bool, bool) = sqlx::query_as(
        "SELECT rolsuper, pg_has_role(current_user, $1, 'MEMBER') \
         FROM pg_roles WHERE rolname = current_user",
    )
    .bind(QUEUE_ROLE)
    .fetch_one(&mut *tx)
    .await?;
    if !owner_is_superuser && !owner_is_member {
        let grant = format!("GRANT {QUEUE_ROLE} TO CURRENT_USER");
        // Built from constants only.
        sqlx::raw_sql(sqlx::AssertSqlSafe(grant.as_str()))
            .execute(&mut *tx)
            .await
            .with_context(|| format!("could not run `{grant}`"))?;
    }
    tx.commit().await?;
    connection.close().await?;
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
/// object or has the privileges of the owner or of [`QUEUE_ROLE`].
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
            let (owns, has_owner_rights, has_queue_rights): (bool, bool, bool) = sqlx::query_as(
                "SELECT EXISTS (SELECT 1 FROM pg_shdepend \
                                    WHERE refclassid = 'pg_authid'::regclass \
                                      AND refobjid = $1::text::regrole AND deptype = 'o'), \
                            pg_has_role($1, $2, 'USAGE'), \
                            coalesce(pg_has_role($1, to_regrole($3), 'USAGE'), false)",
            )
            .bind(&role)
            .bind(&owner_role)
            .bind(QUEUE_ROLE)
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
            if has_queue_rights {
                return Err(refuse(&format!(
                    "has the privileges of the job queue's owner {QUEUE_ROLE}"
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
