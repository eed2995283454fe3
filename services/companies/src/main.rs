//! `director-companies`: runs the Companies gRPC service, or applies its migrations.

use anyhow::Context;
use clap::{Parser, Subcommand};
use director_companies::{CompaniesConfig, SERVICE};
use director_platform::config::{Env, load_env_files};
use director_platform::{migrate, server, telemetry};
use tokio_util::sync::CancellationToken;

/// Director's Companies service.
///
/// Settings come from the environment (and `.env`, `.env.<ENVIRONMENT>`):
/// ENVIRONMENT, DEBUG, RUST_LOG, LOG_FORMAT, OTEL_EXPORTER_OTLP_ENDPOINT,
/// COMPANIES_ADDR (0.0.0.0:50051), DATABASE_URL or COMPANIES_DATABASE_URL,
/// DB_MAX_CONNECTIONS, DB_CONNECT_TIMEOUT_MS, DB_ACQUIRE_TIMEOUT_MS, DB_STATEMENT_TIMEOUT_MS,
/// DB_PGBOUNCER_TRANSACTION_MODE, DB_APP_ROLE, INTERNAL_TOKEN_SECRET, INTERNAL_TOKEN_TTL_MS,
/// MIGRATIONS_DIR. See the README's configuration table.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the gRPC API (the default).
    Serve,
    /// Create the service's database if missing and apply its migrations.
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    load_env_files();
    let env = Env::from_process();
    let config = CompaniesConfig::from_env(&env)?;
    let _telemetry = telemetry::init(&config.common.telemetry)?;

    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(config.listen_addr)
                .await
                .with_context(|| format!("could not listen on {}", config.listen_addr))?;
            tracing::info!(addr = %config.listen_addr, "companies service listening");
            let shutdown = CancellationToken::new();
            server::shutdown_on_signals(shutdown.clone());
            director_companies::serve(config, listener, shutdown).await
        }
        Command::Migrate => {
            let root = migrate::migrations_root(&env);
            let report =
                migrate::create_and_migrate(config.database.url.expose(), &root, SERVICE).await?;
            tracing::info!(
                database = %report.database,
                created = report.created,
                applied = report.applied,
                "migrations applied"
            );
            Ok(())
        }
    }
}
