//! The PostgreSQL pool every service uses.
//!
//! A service must start while its database is down (Kubernetes restarts them in any order),
//! report NOT_SERVING until the database answers, and fail requests fast with UNAVAILABLE
//! rather than hang. So the pool is built lazily ([`connect_lazy`] never touches the
//! network) and every acquire is bounded by `acquire_timeout`.
//!
//! # pgbouncer transaction pooling
//!
//! In transaction mode pgbouncer hands each *transaction* (or each statement outside one) to
//! whichever server connection is free, so per-session state — named prepared statements,
//! `SET`, startup parameters it does not know — cannot be relied on. What sqlx 0.9 does, as
//! read in `sqlx-postgres-0.9.0/src/connection/{executor,establish}.rs`:
//!
//! - A query built with `sqlx::query*` is *persistent* by default: sqlx sends a `Parse` for a
//!   **named** statement (`sqlx_s_<n>`, numbered per client connection) whether or not the
//!   statement cache is enabled. `statement_cache_capacity(0)` only stops sqlx from keeping
//!   and re-executing it; the named statement stays on the server until the connection
//!   closes. Two client connections can therefore both create `sqlx_s_1` on one server
//!   connection behind pgbouncer ("prepared statement already exists").
//! - `.persistent(false)` makes sqlx `Parse` the **unnamed** statement instead, then `Bind`
//!   and `Execute` it after a second `Sync`. Inside a transaction pgbouncer keeps the same
//!   server connection for both, so this is safe; outside one it is not.
//! - Queries without bound arguments (`sqlx::raw_sql`) use the simple query protocol: one
//!   message, no statement, safe anywhere.
//! - At connect, sqlx sends the startup parameters `DateStyle`, `client_encoding`,
//!   `TimeZone`, `extra_float_digits` and optionally `application_name` and `options`.
//!   pgbouncer rejects startup parameters it does not track unless listed in its
//!   `ignore_startup_parameters`; `extra_float_digits` and `options` are such parameters.
//!
//! Hence, with `pgbouncer_transaction_mode`: the statement cache is disabled, neither
//! `extra_float_digits` nor `options` is sent (the statement timeout is set per transaction
//! by [`crate::tenant::begin`] instead), the platform's own statements are unnamed or use the
//! simple protocol, and services must run their queries inside a transaction (normally
//! [`crate::tenant::begin`]) with `.persistent(config.persistent_statements())` — reads
//! included: an unnamed statement outside a transaction can run another client's statement
//! (see [`crate::tenant`], "Reads behind pgbouncer in transaction mode").
//! pgbouncer ≥ 1.21 with `max_prepared_statements` set also copes with named statements;
//! the rules above do not depend on it.
//!
//! # Sessions
//!
//! Some work needs a PostgreSQL session of its own, which a transaction-mode pooler does not
//! keep: `LISTEN` (a notification reaches the server connection that listened, which
//! pgbouncer has long handed to someone else — or to no one), the job worker
//! (graphile_worker listens for new jobs and prepares named statements), the Dispatch relay
//! and sweep that run in it. Each service therefore has a second, small pool, the **session
//! pool** ([`DatabaseConfig::session`], built by the runner): `<SERVICE>_SESSION_DATABASE_URL`
//! (verbatim), else `SESSION_DATABASE_URL` pointed at the service's database — PostgreSQL
//! itself, or a session-mode pooler (Supabase's on port 5432) — with
//! `DB_SESSION_MAX_CONNECTIONS` connections (5). Request traffic stays on the main pool.
//! Without a session URL, sessions share the main pool, which is right for a direct
//! connection; with `DB_PGBOUNCER_TRANSACTION_MODE` the session URL is required, since
//! through pgbouncer the worker's notifications would be lost without a word.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use director_platform::config::{ConfigError, Env, Secret};

/// Where the server-side default database URL points when nothing is configured.
///
/// A loopback server needs no TLS, and negotiating it costs CPU on every statement (sqlx's
/// default `sslmode=prefer` uses TLS whenever the server offers it), so the default says
/// `sslmode=disable`; a configured URL's own `sslmode` decides everywhere else.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@localhost:5432?sslmode=disable";

/// Database pool settings for one service.
#[derive(Clone)]
pub struct DatabaseConfig {
    /// Full connection URL including the database name (may hold a password).
    pub url: Secret,
    /// `DB_MAX_CONNECTIONS` (10): pool size per process.
    pub max_connections: u32,
    /// `DB_CONNECT_TIMEOUT_MS` (5000): how long [`connect`] waits for a first connection.
    /// sqlx 0.9 has no per-attempt connect timeout for pooled connections: the pool keeps
    /// retrying refused connections until the acquire deadline, so inside the pool
    /// `acquire_timeout` is the bound that applies.
    pub connect_timeout: Duration,
    /// `DB_ACQUIRE_TIMEOUT_MS` (3000): the longest a query waits for a connection, including
    /// opening one. A dead database fails requests after this long.
    pub acquire_timeout: Duration,
    /// `DB_STATEMENT_TIMEOUT_MS` (15000): PostgreSQL `statement_timeout`.
    pub statement_timeout: Duration,
    /// `application_name` shown in `pg_stat_activity`: `director-<service>`.
    pub application_name: String,
    /// `DB_PGBOUNCER_TRANSACTION_MODE` (false): see the module docs.
    pub pgbouncer_transaction_mode: bool,
    /// `DB_APP_ROLE` (`director_app`): the non-superuser role each tenant transaction
    /// switches to so row-level security applies.
    pub app_role: String,
    /// The direct session URL (see "Sessions" in the module docs):
    /// `<SERVICE>_SESSION_DATABASE_URL` (verbatim), else `SESSION_DATABASE_URL` pointed at
    /// this service's database; `None` when neither is set, and then sessions use [`Self::url`].
    pub session_url: Option<Secret>,
    /// `DB_SESSION_MAX_CONNECTIONS` (5): the session pool's size, when it is a pool of its own.
    pub session_max_connections: u32,
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.url)
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("application_name", &self.application_name)
            .field(
                "pgbouncer_transaction_mode",
                &self.pgbouncer_transaction_mode,
            )
            .field("app_role", &self.app_role)
            .field("session_url", &self.session_url)
            .field("session_max_connections", &self.session_max_connections)
            .finish()
    }
}

impl DatabaseConfig {
    /// Reads the settings for `service` (e.g. `companies`).
    ///
    /// The URL is `<SERVICE>_DATABASE_URL` when set (used verbatim), else `DATABASE_URL`
    /// (default [`DEFAULT_DATABASE_URL`]) pointed at database `director_<service>`; the
    /// session URL likewise `<SERVICE>_SESSION_DATABASE_URL`, else `SESSION_DATABASE_URL`,
    /// else none (sessions use the URL). Behind pgbouncer in transaction mode a session URL
    /// is required: nothing listening through pgbouncer would hear a notification.
    pub fn from_env(env: &Env, service: &str) -> Result<Self, ConfigError> {
        let url = service_url(env, service, "DATABASE_URL", Some(DEFAULT_DATABASE_URL))?
            .unwrap_or_default(); // always set: `DATABASE_URL` has a default
        let session_url = service_url(env, service, "SESSION_DATABASE_URL", None)?;

        let max_connections = positive(env, "DB_MAX_CONNECTIONS", 10)?;
        let pgbouncer_transaction_mode = env.bool_or("DB_PGBOUNCER_TRANSACTION_MODE", false)?;
        if pgbouncer_transaction_mode && session_url.is_none() {
            let prefix = service.to_ascii_uppercase().replace('-', "_");
            return Err(ConfigError::new(
                format!("{prefix}_SESSION_DATABASE_URL or SESSION_DATABASE_URL"),
                "is required with DB_PGBOUNCER_TRANSACTION_MODE: LISTEN, advisory locks and \
                 the job worker need a session of their own, which pgbouncer in transaction \
                 mode does not keep; point it at PostgreSQL directly (or at a session-mode \
                 pooler)",
            ));
        }

        Ok(Self {
            url: Secret::new(url),
            max_connections,
            connect_timeout: env.millis_or("DB_CONNECT_TIMEOUT_MS", 5_000)?,
            acquire_timeout: env.millis_or("DB_ACQUIRE_TIMEOUT_MS", 3_000)?,
            statement_timeout: env.millis_or("DB_STATEMENT_TIMEOUT_MS", 15_000)?,
            application_name: director_platform::catalog::binary_name(service),
            pgbouncer_transaction_mode,
            app_role: env
                .string("DB_APP_ROLE")
                .unwrap_or_else(|| "director_app".to_owned()),
            session_url: session_url.map(Secret::new),
            session_max_connections: positive(env, "DB_SESSION_MAX_CONNECTIONS", 5)?,
        })
    }

    /// The settings of the session pool when it is a pool of its own (a session URL is set):
    /// that URL, `DB_SESSION_MAX_CONNECTIONS` connections, named statements (a session is
    /// never pgbouncer's transaction mode) and `application_name` `director-<service>-session`.
    /// `None` when sessions share the request pool.
    pub fn session(&self) -> Option<DatabaseConfig> {
        let url = self.session_url.clone()?;
        Some(DatabaseConfig {
            url,
            max_connections: self.session_max_connections,
            application_name: format!("{}-session", self.application_name),
            pgbouncer_transaction_mode: false,
            session_url: None,
            ..self.clone()
        })
    }

    /// What to pass to `.persistent(..)` on a query: false behind pgbouncer in transaction
    /// mode (unnamed statements), true otherwise (named, cached statements).
    pub fn persistent_statements(&self) -> bool {
        !self.pgbouncer_transaction_mode
    }

    /// The URL with any password replaced by `***`, for logs.
    pub fn redacted_url(&self) -> String {
        redact_password(self.url.expose())
    }

    /// The database name in the URL, if any.
    pub fn database_name(&self) -> Option<String> {
        let (_, path, _) = split_url(self.url.expose())?;
        let name = path.trim_start_matches('/');
        (!name.is_empty()).then(|| name.to_owned())
    }
}

/// `<SERVICE>_<variable>` (verbatim), else the server-wide `<variable>` (else
/// `server_default`) pointed at database `director_<service>`; `None` when nothing applies.
fn service_url(
    env: &Env,
    service: &str,
    variable: &str,
    server_default: Option<&str>,
) -> Result<Option<String>, ConfigError> {
    let service_var = format!(
        "{}_{variable}",
        service.to_ascii_uppercase().replace('-', "_")
    );
    if let Some(url) = env.string(&service_var) {
        validate_url(&service_var, &url)?;
        return Ok(Some(url));
    }
    let Some(server) = env
        .string(variable)
        .or_else(|| server_default.map(str::to_owned))
    else {
        return Ok(None);
    };
    let database = format!("director_{}", service.replace('-', "_"));
    database_url_for(&server, &database)
        .map(Some)
        .map_err(|e| ConfigError::new(variable, e.reason))
}

/// A positive integer setting, or `default`.
fn positive(env: &Env, variable: &str, default: u32) -> Result<u32, ConfigError> {
    match env.string(variable) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ConfigError::invalid(variable, "a positive integer", &raw)),
    }
}

pub(crate) fn validate_url(variable: &str, url: &str) -> Result<(), ConfigError> {
    if split_url(url).is_none() {
        let scheme = url.split("://").next().unwrap_or_default();
        let shown = if url.contains("://") { scheme } else { url };
        return Err(ConfigError::new(
            variable,
            format!("expected a postgres:// or postgresql:// URL, got {shown:?}"),
        ));
    }
    Ok(())
}

/// `server_url` with its database replaced by `database` (query parameters kept), e.g.
/// `database_url_for("postgres://u@h:5432/postgres?sslmode=require", "director_companies")`
/// is `postgres://u@h:5432/director_companies?sslmode=require`.
pub fn database_url_for(server_url: &str, database: &str) -> Result<String, ConfigError> {
    validate_url("DATABASE_URL", server_url)?;
    if database.is_empty() || database.contains(['/', '?', '#', '@']) {
        return Err(ConfigError::new(
            "DATABASE_URL",
            format!("invalid database name {database:?}"),
        ));
    }
    let (base, _, query) =
        split_url(server_url).ok_or_else(|| ConfigError::new("DATABASE_URL", "invalid URL"))?;
    Ok(format!("{base}/{database}{query}"))
}

/// The user and password written in a postgres URL, percent-decoded (`None` when absent).
pub fn url_credentials(url: &str) -> Option<(String, Option<String>)> {
    let (base, _, _) = split_url(url)?;
    let authority = &base[base.find("://").map_or(0, |i| i + 3)..];
    let userinfo = &authority[..authority.rfind('@')?];
    let (user, password) = match userinfo.split_once(':') {
        Some((user, password)) => (user, Some(percent_decode(password))),
        None => (userinfo, None),
    };
    (!user.is_empty()).then(|| (percent_decode(user), password))
}

/// `url` logging in as `user` with `password` instead of whoever it named (host, port,
/// database and query kept), e.g. the services' URL derived from the owner's by
/// `director up`.
pub fn with_login(url: &str, user: &str, password: &str) -> Result<String, ConfigError> {
    validate_url("DATABASE_URL", url)?;
    let (base, path, query) =
        split_url(url).ok_or_else(|| ConfigError::new("DATABASE_URL", "invalid URL"))?;
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority = &base[scheme_end..];
    let host = authority
        .rfind('@')
        .map_or(authority, |at| &authority[at + 1..]);
    Ok(format!(
        "{}{}:{}@{host}{path}{query}",
        &base[..scheme_end],
        percent_encode(user),
        percent_encode(password)
    ))
}

fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// Splits a postgres URL into (scheme + authority, path, `?query` or empty).
fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))?;
    let scheme_len = url.len() - rest.len();
    let (before_query, query) = match url.find('?') {
        Some(i) if i >= scheme_len => url.split_at(i),
        _ => (url, ""),
    };
    let after_scheme = &before_query[scheme_len..];
    // A password may hold an unescaped '@', never an unescaped '/': the authority ends at the
    // first '/' after the last '@'.
    let host_start = after_scheme.rfind('@').map_or(0, |i| i + 1);
    let authority_len = after_scheme[host_start..]
        .find('/')
        .map_or(after_scheme.len(), |i| host_start + i);
    if authority_len == 0 {
        return None;
    }
    let base = &before_query[..scheme_len + authority_len];
    let path = &before_query[scheme_len + authority_len..];
    Some((base, path, query))
}

fn redact_password(url: &str) -> String {
    let Some((base, path, query)) = split_url(url) else {
        return "[unparseable url]".to_owned();
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority = &base[scheme_end..];
    let redacted = match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***@{}", &authority[at + 1..]),
                None => authority.to_owned(),
            }
        }
        None => authority.to_owned(),
    };
    format!("{}{redacted}{path}{query}", &base[..scheme_end])
}

/// The connect options for `config`; see the module docs for the pgbouncer differences.
pub fn connect_options(config: &DatabaseConfig) -> Result<PgConnectOptions, sqlx::Error> {
    let options =
        PgConnectOptions::from_str(config.url.expose())?.application_name(&config.application_name);
    if config.pgbouncer_transaction_mode {
        Ok(options.statement_cache_capacity(0).extra_float_digits(None))
    } else {
        let timeout_ms = config.statement_timeout.as_millis().to_string();
        Ok(options.options([("statement_timeout", timeout_ms.as_str())]))
    }
}

fn pool_options(config: &DatabaseConfig) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(config.max_connections)
        .min_connections(0)
        .acquire_timeout(config.acquire_timeout)
}

/// A pool that opens connections on demand: building it never touches the network, so a
/// service starts while its database is down. A query then fails after `acquire_timeout`
/// with `PoolTimedOut` (UNAVAILABLE via [`crate::error::status_from_sqlx`]).
pub fn connect_lazy(config: &DatabaseConfig) -> Result<PgPool, sqlx::Error> {
    Ok(pool_options(config).connect_lazy_with(connect_options(config)?))
}

/// A pool with one connection already open, or an error after `connect_timeout`: for tools
/// such as `director migrate` that should fail at once when the database is unreachable.
pub async fn connect(config: &DatabaseConfig) -> Result<PgPool, sqlx::Error> {
    let options = pool_options(config).acquire_timeout(config.connect_timeout);
    let pool = options.connect_lazy_with(connect_options(config)?);
    drop(pool.acquire().await?);
    Ok(pool)
}

/// `DB_WAIT_TIMEOUT_MS`'s default: how long [`wait_for_server`] (`migrate`) keeps trying.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether `error` means the server is not accepting connections yet (nothing listens, the
/// host name does not resolve yet, the server is starting up or shutting down), as opposed
/// to a server that answered and refused (a wrong password, a missing database).
pub fn is_not_accepting_connections(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(database) => database.code().is_some_and(|code| {
            // 57P03 cannot_connect_now ("the database system is starting up"), 08xxx
            // connection exceptions.
            code == "57P03" || code.starts_with("08")
        }),
        _ => false,
    }
}

/// `host:port` of a PostgreSQL URL, for saying what is waited for (never the password).
pub fn server_address(url: &str) -> String {
    match PgConnectOptions::from_str(url) {
        Ok(options) => format!("{}:{}", options.get_host(), options.get_port()),
        Err(_) => redact_password(url),
    }
}

/// Waits, retrying with backoff (250 ms doubling up to 5 s) for at most `timeout`, until the
/// PostgreSQL server of `url` answers a connection attempt, logging at info what it waits
/// for. A server that answers with a refusal (authentication, a database that does not
/// exist yet) counts as up: the caller's own connection reports that. For deploy steps
/// (`migrate`) started alongside their database by runners that do not order them.
pub async fn wait_for_server(url: &str, timeout: Duration) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let options = PgConnectOptions::from_str(url)
        .map_err(|error| anyhow::anyhow!("the database URL is not valid: {error}"))?;
    let address = server_address(url);
    let started = tokio::time::Instant::now();
    let deadline = started + timeout;
    let mut delay = Duration::from_millis(250);
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(5),
            sqlx::PgConnection::connect_with(&options),
        )
        .await;
        let error = match attempt {
            Ok(Ok(connection)) => {
                let _ = connection.close().await;
                return Ok(());
            }
            Ok(Err(error)) if !is_not_accepting_connections(&error) => return Ok(()),
            Ok(Err(error)) => error.to_string(),
            Err(_) => "no answer within 5s".to_owned(),
        };
        let now = tokio::time::Instant::now();
        if now >= deadline {
            anyhow::bail!(
                "PostgreSQL at {address} did not accept connections within {}s \
                 (DB_WAIT_TIMEOUT_MS): {error}",
                timeout.as_secs_f32()
            );
        }
        let pause = delay.min(deadline - now);
        tracing::info!(
            postgres = %address,
            %error,
            waited_s = started.elapsed().as_secs(),
            gives_up_in_s = (deadline - now).as_secs(),
            "waiting for PostgreSQL to accept connections"
        );
        tokio::time::sleep(pause).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Whether the database answers a trivial query (within the pool's acquire timeout). Uses
/// the simple query protocol, so it is safe behind pgbouncer.
pub async fn ping(pool: &PgPool) -> bool {
    match sqlx::raw_sql("SELECT 1").execute(pool).await {
        Ok(_) => true,
        Err(error) => {
            tracing::debug!(%error, "database ping failed");
            false
        }
    }
}

/// The health of a service whose database is `pool`: it passes while [`ping`] does. What
/// the runner gives [`director_platform::server::serve`].
pub fn health_check(pool: PgPool) -> director_platform::server::HealthCheck {
    std::sync::Arc::new(move || {
        let pool = pool.clone();
        Box::pin(async move { ping(&pool).await })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_for_replaces_the_path_and_keeps_the_query() {
        assert_eq!(
            database_url_for("postgres://postgres@localhost:5432", "director_x").ok(),
            Some("postgres://postgres@localhost:5432/director_x".to_owned())
        );
        assert_eq!(
            database_url_for(
                "postgresql://u:p@w/rd@db:5432/postgres?sslmode=require",
                "d"
            )
            .ok(),
            Some("postgresql://u:p@w/rd@db:5432/d?sslmode=require".to_owned())
        );
        assert_eq!(
            database_url_for("postgres://h/", "d").ok(),
            Some("postgres://h/d".to_owned())
        );
        assert!(database_url_for("mysql://h/x", "d").is_err());
        assert!(database_url_for("postgres://h", "a/b").is_err());
    }

    #[test]
    fn with_login_replaces_only_the_credentials() {
        assert_eq!(
            with_login(
                "postgres://postgres:pw@db:5432/director_x?sslmode=require",
                "director_service",
                "p@ss:w/rd"
            )
            .ok(),
            Some(
                "postgres://director_service:p%40ss%3Aw%2Frd@db:5432/director_x?sslmode=require"
                    .to_owned()
            )
        );
        assert_eq!(
            with_login("postgres://localhost/d", "u", "p").ok(),
            Some("postgres://u:p@localhost/d".to_owned())
        );
        let url = with_login("postgresql://a@h/d", "svc", "p@ss:w/rd").expect("valid URL");
        assert_eq!(
            url_credentials(&url),
            Some(("svc".to_owned(), Some("p@ss:w/rd".to_owned())))
        );
        assert_eq!(
            url_credentials("postgres://owner@h/d"),
            Some(("owner".to_owned(), None))
        );
        assert_eq!(url_credentials("postgres://h/d"), None);
    }

    #[test]
    fn redacted_url_hides_only_the_password() {
        assert_eq!(
            redact_password("postgres://app:s3cret@db:5432/director_companies?sslmode=require"),
            "postgres://app:***@db:5432/director_companies?sslmode=require"
        );
        assert_eq!(
            redact_password("postgres://postgres@localhost/x"),
            "postgres://postgres@localhost/x"
        );
    }
}
