//! The service kit's runner: everything between a service's routes and a running process.
//!
//! A service is its [`Service`] description — its catalog entry, the gRPC services it
//! serves, and a function building their routes from a [`ServiceContext`] — and a `main` of
//! one line calling [`main`]. The runner does the rest the same way for every service:
//! settings from the environment, telemetry, a lazily connecting pool, the gRPC server with
//! health, reflection, internal auth, trace context and graceful drain ([`director_platform::server`]),
//! metrics (pool gauges; the binary's admin listener at `ADMIN_ADDR`), signals, and the
//! `migrate` subcommand.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::db::{self, DatabaseConfig};
use crate::migrate;
use crate::pool_metrics::observe_pool;
use crate::tenant::TenantDb;
use director_platform::balance::SideEffectFree;
use director_platform::catalog::ServiceSpec;
use director_platform::client::ServiceClient;
use director_platform::config::{CommonConfig, ConfigError, Env, load_env_files};
use director_platform::identity::{InternalTokenConfig, InternalTokens};
use director_platform::server::{self, ServeOptions};
use director_platform::{metrics, telemetry};

/// How long in-flight calls may take to finish once shutdown begins.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);
/// How often health re-checks the database.
const HEALTH_INTERVAL: Duration = Duration::from_secs(5);
/// How long a service-to-service connection attempt may take.
const CLIENT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Deadline of a service-to-service call made without an incoming deadline.
const CLIENT_DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A Director service as the runner needs it.
pub struct Service {
    /// Its catalog entry: name, default port, public packages.
    pub spec: &'static ServiceSpec,
    /// Fully-qualified names of the gRPC services it serves, for health and reflection.
    pub grpc_services: &'static [&'static str],
    /// The encoded `FileDescriptorSet` reflection serves (dependencies included).
    pub descriptor_set: &'static [u8],
    /// Builds its routes. Runs inside the Tokio runtime, once, before the server starts;
    /// background tasks it spawns should stop when `context.shutdown` is cancelled.
    pub routes: fn(&ServiceContext) -> anyhow::Result<tonic::service::Routes>,
}

impl fmt::Debug for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Service")
            .field("spec", &self.spec)
            .field("grpc_services", &self.grpc_services)
            .finish_non_exhaustive()
    }
}

/// The settings every service reads, named after its catalog entry.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Environment, debug flag, logging and tracing.
    pub common: CommonConfig,
    /// Its own database (`<NAME>_DATABASE_URL`, else `DATABASE_URL` + `director_<name>`).
    pub database: DatabaseConfig,
    /// The cluster secret internal tokens are verified and minted with.
    pub internal_tokens: InternalTokenConfig,
    /// Where it listens (`<NAME>_ADDR`, default `0.0.0.0:<port>`).
    pub listen_addr: SocketAddr,
    /// Where the service binary serves `/metrics` (`ADMIN_ADDR`, default `0.0.0.0:9090`).
    pub admin_addr: SocketAddr,
}

impl ServiceConfig {
    /// Reads and validates `spec`'s settings; an error names the offending variable.
    pub fn from_env(spec: &ServiceSpec, env: &Env) -> Result<Self, ConfigError> {
        let common = CommonConfig::from_env(env, &spec.binary())?;
        Ok(Self {
            database: DatabaseConfig::from_env(env, spec.name)?,
            internal_tokens: InternalTokenConfig::from_env(env, common.environment)?,
            listen_addr: spec.listen_addr(env)?,
            admin_addr: metrics::admin_addr(env, metrics::DEFAULT_ADMIN_ADDR)?,
            common,
        })
    }
}

/// What a service's routes are built from.
#[derive(Debug, Clone)]
pub struct ServiceContext {
    /// The service's catalog entry.
    pub spec: &'static ServiceSpec,
    /// The environment, for the service's own settings.
    pub env: Env,
    /// The service's settings.
    pub config: ServiceConfig,
    /// Its database, through tenant transactions: request traffic (through pgbouncer in
    /// transaction mode when the service is deployed so).
    pub db: TenantDb,
    /// Its database for work that needs a session of its own — `LISTEN`, the job worker and
    /// the jobs it runs, their sweeps and gauges: the session pool (see "Sessions" in
    /// [`crate::db`]), or the same pool as [`Self::db`] when no session URL is set.
    pub session: TenantDb,
    /// Mints internal tokens for calls to other services.
    pub tokens: Arc<InternalTokens>,
    /// Cancelled when the service begins to shut down: long-lived streams end then.
    pub shutdown: CancellationToken,
    /// Background work (job workers, relays) the process waits for after the server has
    /// drained, up to [`DRAIN_DEADLINE`]; spawn it here rather than with `tokio::spawn`.
    pub background: TaskTracker,
    /// The methods (of every Director service: the service's descriptor set describes them
    /// all) its clients may send again after a lost connection.
    pub side_effect_free: SideEffectFree,
}

impl ServiceContext {
    /// A client of another Director service, at the URL the catalog derives for it.
    pub fn client(&self, spec: &'static ServiceSpec) -> Result<ServiceClient, ConfigError> {
        Ok(ServiceClient::new(
            spec,
            spec.url(&self.env)?,
            Arc::clone(&self.tokens),
            CLIENT_CONNECT_TIMEOUT,
            CLIENT_DEFAULT_TIMEOUT,
            self.side_effect_free.clone(),
        )
        .calling_from(self.spec.name))
    }
}

/// Serves `service` on `listener` with the settings in `env` until `shutdown` is cancelled.
/// Starts even when the database is down: health answers NOT_SERVING and calls fail fast with
/// UNAVAILABLE until it answers.
pub async fn serve(
    service: &Service,
    env: &Env,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let config = ServiceConfig::from_env(service.spec, env)?;
    metrics::install();
    let pool = db::connect_lazy(&config.database)?;
    let _pool_metrics = observe_pool(
        pool.clone(),
        service.spec.name,
        config.database.max_connections,
    );
    let db = TenantDb::new(pool.clone(), config.database.clone());
    let session = match config.database.session() {
        Some(session) => TenantDb::new(db::connect_lazy(&session)?, session),
        None => db.clone(),
    };
    let tokens = Arc::new(config.internal_tokens.tokens());
    let context = ServiceContext {
        spec: service.spec,
        env: env.clone(),
        db,
        session,
        config,
        tokens: Arc::clone(&tokens),
        shutdown: shutdown.clone(),
        background: TaskTracker::new(),
        side_effect_free: SideEffectFree::from_descriptor_set(service.descriptor_set)
            .context("the service's descriptor set does not decode")?,
    };
    if service.spec.runs_jobs {
        crate::jobs::spawn_queue_metrics(
            context.session.pool().clone(),
            service.spec.name,
            shutdown.clone(),
            &context.background,
        );
    }
    let routes = (service.routes)(&context)
        .with_context(|| format!("could not build the {} service", service.spec.name))?;
    let served = server::serve(
        listener,
        routes,
        ServeOptions {
            name: service.spec.name,
            service_names: service.grpc_services.to_vec(),
            descriptor_set: service.descriptor_set,
            health: db::health_check(pool),
            tokens,
            shutdown: shutdown.clone(),
            drain_deadline: DRAIN_DEADLINE,
            health_interval: HEALTH_INTERVAL,
        },
    )
    .await;
    // The server has drained (or failed); background work was told to stop by the same
    // token, and gets the drain deadline to finish what it holds.
    shutdown.cancel();
    context.background.close();
    if tokio::time::timeout(DRAIN_DEADLINE, context.background.wait())
        .await
        .is_err()
    {
        tracing::warn!("background work did not stop within the drain deadline");
    }
    served
}

/// The process entry point of a service binary: `serve` (the default) or `migrate`.
///
/// Reads `.env` files, validates every setting before doing anything, starts telemetry,
/// and stops on SIGTERM or Ctrl-C after draining.
pub async fn main(service: &'static Service) -> anyhow::Result<()> {
    let matches = command(service.spec).get_matches();
    load_env_files();
    let env = Env::from_process();
    let config = ServiceConfig::from_env(service.spec, &env)?;
    let _telemetry = telemetry::init(&config.common.telemetry)?;

    match matches.subcommand_name() {
        Some("migrate") if wait_requested(&matches) => {
            let timeout = wait_timeout(&matches);
            let version = migrate::wait_until_migrated(
                &env,
                service.spec.name,
                timeout,
                MIGRATION_POLL_INTERVAL,
            )
            .await?;
            tracing::info!(version, "the database is migrated");
            Ok(())
        }
        Some("migrate") => {
            let done = migrate::migrate_service(&env, service.spec.name).await?;
            let report = done.migrations;
            tracing::info!(
                database = %report.database,
                created = report.created,
                applied = report.applied,
                login_role = done.login.as_ref().map(|login| login.role.as_str()),
                "migrations applied"
            );
            Ok(())
        }
        _ => {
            let listener = TcpListener::bind(config.listen_addr)
                .await
                .with_context(|| format!("could not listen on {}", config.listen_addr))?;
            let shutdown = CancellationToken::new();
            server::shutdown_on_signals(shutdown.clone());
            metrics::spawn_admin(config.admin_addr, shutdown.clone()).await?;
            serve(service, &env, listener, shutdown).await
        }
    }
}

/// The binary's command line; `--help` lists every setting it reads.
fn command(spec: &ServiceSpec) -> clap::Command {
    let prefix = spec.env_prefix();
    let settings = format!(
        "Settings come from the environment (and .env, .env.<ENVIRONMENT>):\n\
         ENVIRONMENT, DEBUG, RUST_LOG, LOG_FORMAT, OTEL_EXPORTER_OTLP_ENDPOINT,\n\
         {prefix}_ADDR (0.0.0.0:{port}), ADMIN_ADDR (0.0.0.0:9090, /metrics), DATABASE_URL or {prefix}_DATABASE_URL,\n\
         SESSION_DATABASE_URL or {prefix}_SESSION_DATABASE_URL, DB_SESSION_MAX_CONNECTIONS,\n\
         MIGRATION_DATABASE_URL or {prefix}_MIGRATION_DATABASE_URL (migrate only),\n\
         DB_MAX_CONNECTIONS, DB_CONNECT_TIMEOUT_MS, DB_ACQUIRE_TIMEOUT_MS, DB_STATEMENT_TIMEOUT_MS,\n\
         DB_PGBOUNCER_TRANSACTION_MODE, DB_APP_ROLE, INTERNAL_TOKEN_SECRET, INTERNAL_TOKEN_TTL_MS,\n\
         MIGRATIONS_DIR, UPSTREAM_URL_TEMPLATE and <SERVICE>_URL for the services it calls.\n\
         See the README's configuration table.",
        port = spec.default_port,
    );
    clap::Command::new(spec.binary())
        .version(env!("CARGO_PKG_VERSION"))
        .about(format!("Director's {} service.", spec.name))
        .after_help(settings)
        .subcommand(clap::Command::new("serve").about("Serve the gRPC API (the default)."))
        .subcommand(
            clap::Command::new("migrate")
                .about("Create the service's database if missing and apply its migrations.")
                .arg(
                    clap::Arg::new("wait")
                        .long("wait")
                        .action(clap::ArgAction::SetTrue)
                        .help(
                            "Apply nothing: wait, with the service's own credentials, until \
                             a migration run has brought the database to this build's newest \
                             migration (a deployment's init step)",
                        ),
                )
                .arg(
                    clap::Arg::new("timeout")
                        .long("timeout")
                        .value_name("SECONDS")
                        .value_parser(clap::value_parser!(u64).range(1..))
                        .default_value("600")
                        .requires("wait")
                        .help("How long --wait waits before failing"),
                ),
        )
}

/// How often `migrate --wait` looks again.
const MIGRATION_POLL_INTERVAL: Duration = Duration::from_secs(2);

fn wait_requested(matches: &clap::ArgMatches) -> bool {
    matches
        .subcommand_matches("migrate")
        .is_some_and(|migrate| migrate.get_flag("wait"))
}

fn wait_timeout(matches: &clap::ArgMatches) -> Duration {
    let seconds = matches
        .subcommand_matches("migrate")
        .and_then(|migrate| migrate.get_one::<u64>("timeout").copied())
        .unwrap_or(600);
    Duration::from_secs(seconds)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<clap::ArgMatches, clap::Error> {
        command(&director_platform::catalog::COMPANIES)
            .try_get_matches_from(std::iter::once("director-companies").chain(args.iter().copied()))
    }

    #[test]
    fn migrate_waits_only_when_asked_and_for_as_long_as_asked() {
        let plain = parse(&["migrate"]).unwrap();
        assert!(!wait_requested(&plain));
        let waiting = parse(&["migrate", "--wait"]).unwrap();
        assert!(wait_requested(&waiting));
        assert_eq!(wait_timeout(&waiting), Duration::from_secs(600));
        let short = parse(&["migrate", "--wait", "--timeout", "5"]).unwrap();
        assert_eq!(wait_timeout(&short), Duration::from_secs(5));
        assert!(
            parse(&["migrate", "--timeout", "5"]).is_err(),
            "needs --wait"
        );
        assert!(parse(&["migrate", "--wait", "--timeout", "0"]).is_err());
        assert!(parse(&["migrate", "--wait", "--timeout", "soon"]).is_err());
    }
}
