//! `director`: run the whole stack for development, migrate the databases, mint tokens.

// A command-line tool: printing the URLs, the token and reports is its job.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use clap::{Args, Parser, Subcommand};
use director::token::{self, TokenRequest};
use director::{migrate, stack};
use director_platform::catalog;
use director_platform::config::{Env, Environment, load_env_files};
use director_platform::identity::Role;
use director_platform::server::shutdown_on_signals;
use director_platform::telemetry::{self, TelemetryConfig};
use tokio_util::sync::CancellationToken;

/// Director: companies, drivers, collection tasks and their integrations, as gRPC services
/// behind one gateway.
///
/// Settings are read from the environment and from `.env` / `.env.<ENVIRONMENT>`; see the
/// README's configuration table.
#[derive(Debug, Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole stack locally: migrate the databases, start every service and the
    /// gateway, print the URLs and a dev token; Ctrl-C stops it.
    ///
    /// Needs only PostgreSQL at DATABASE_URL (default postgres://postgres@localhost:5432?sslmode=disable),
    /// which migrates; the services log in as the least-privilege role director_service
    /// (password DB_SERVICE_PASSWORD, a development default under ENVIRONMENT=dev).
    /// Generates SUPABASE_JWT_SECRET and INTERNAL_TOKEN_SECRET when unset, and says so.
    Up(UpArgs),
    /// Run fake Vessey, Slack and Twilio until Ctrl-C and print the environment that points
    /// Director at them (see the README: "Trying integrations with fake third parties").
    Fakes(FakesArgs),
    /// Create each service's database if missing and apply migrations/<service>/.
    /// Safe to run repeatedly.
    Migrate(MigrateArgs),
    /// Mint a bearer token: for the gateway (HS256 with SUPABASE_JWT_SECRET), or with
    /// --internal for calling one service directly (INTERNAL_TOKEN_SECRET).
    Token(TokenArgs),
    /// Print the OpenAPI 3.1 document the gateway serves at /api/openapi.json.
    Openapi,
    /// Sync from Vessey through the gateway, showing the job's progress until it ends
    /// (exit status 1 if it fails).
    Sync(SyncArgs),
    /// Import from Vessey through the gateway, showing the job's progress until it ends
    /// (exit status 1 if it fails).
    Import(ImportArgs),
    /// Probe a running process, for a container healthcheck: a service's gRPC health
    /// (SERVING when its database answers) or the gateway's readiness (an upstream
    /// serving). Exit status 0 when healthy, 1 otherwise, saying why.
    Health(HealthArgs),
}

#[derive(Debug, Args)]
struct HealthArgs {
    /// companies, dispatch, integrations or gateway.
    #[arg(value_name = "PROCESS", value_parser = director::health::Target::parse)]
    target: director::health::Target,
    /// Where it listens; by default its listen address setting (<SERVICE>_ADDR,
    /// GATEWAY_ADDR) or its default port, on loopback.
    #[arg(long, value_name = "HOST:PORT")]
    addr: Option<std::net::SocketAddr>,
    /// How long to wait for the answer, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 3.0)]
    timeout: f64,
}

#[derive(Debug, Args)]
struct SyncArgs {
    #[command(subcommand)]
    what: SyncWhat,
    #[command(flatten)]
    gateway: GatewayArgs,
}

#[derive(Debug, Subcommand)]
enum SyncWhat {
    /// Upsert every Vessey driver into Dispatch, matched by external id.
    Drivers,
}

#[derive(Debug, Args)]
struct ImportArgs {
    #[command(subcommand)]
    what: ImportWhat,
    #[command(flatten)]
    gateway: GatewayArgs,
}

#[derive(Debug, Subcommand)]
enum ImportWhat {
    /// Turn one day's Vessey collections into tasks (unknown farms become companies).
    Collections {
        /// The collection day, YYYY-MM-DD.
        #[arg(long)]
        date: String,
    },
}

/// Where the gateway is and how to authenticate to it.
#[derive(Debug, Args)]
struct GatewayArgs {
    /// The gateway's URL.
    #[arg(
        long,
        env = "DIRECTOR_GATEWAY_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    gateway_url: String,
    /// A bearer token for the gateway (the one `director up` prints). Without it, one is
    /// minted for the dev tenant with SUPABASE_JWT_SECRET when that is set.
    #[arg(long, env = "DIRECTOR_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl GatewayArgs {
    fn target(self, env: &Env) -> anyhow::Result<director::jobs::GatewayTarget> {
        let token = match self.token {
            Some(token) => token,
            None => token::gateway_token(env, &dev_token_request()).context(
                "no token: pass --token (or DIRECTOR_TOKEN) with the token `director up` printed",
            )?,
        };
        Ok(director::jobs::GatewayTarget {
            url: self.gateway_url,
            token,
        })
    }
}

#[derive(Debug, Args)]
struct UpArgs {
    /// Also run fake Vessey, Slack and Twilio on free loopback ports and point the services
    /// at them. The fakes replace any VESSEY_*, SLACK_WEBHOOK_URL and TWILIO_* settings.
    #[arg(long)]
    fakes: bool,
}

#[derive(Debug, Args)]
struct FakesArgs {
    /// Where the fake Vessey listens.
    #[arg(
        long,
        default_value = director::fakes::DEFAULT_VESSEY_ADDR,
        value_parser = director::fakes::parse_addr
    )]
    vessey_addr: std::net::SocketAddr,
    /// Where the fake Slack webhook listens.
    #[arg(
        long,
        default_value = director::fakes::DEFAULT_SLACK_ADDR,
        value_parser = director::fakes::parse_addr
    )]
    slack_addr: std::net::SocketAddr,
    /// Where the fake Twilio listens.
    #[arg(
        long,
        default_value = director::fakes::DEFAULT_TWILIO_ADDR,
        value_parser = director::fakes::parse_addr
    )]
    twilio_addr: std::net::SocketAddr,
}

#[derive(Debug, Args)]
struct MigrateArgs {
    /// Only these services (see `director_platform::catalog`); all when omitted.
    #[arg(long = "service", value_name = "SERVICE")]
    services: Vec<String>,
}

#[derive(Debug, Args)]
struct TokenArgs {
    /// The user id (`sub` claim).
    #[arg(long, default_value = "00000000-0000-4000-8000-000000000001")]
    sub: String,
    /// The tenant (`app_metadata.tenant_id`); without it the claim is left out, which the
    /// gateway accepts only in dev (where the tenant is then the user).
    #[arg(long)]
    tenant: Option<String>,
    /// admin, dispatcher or driver (`app_metadata.role`); without it the claim is left out,
    /// which the gateway accepts only in dev (where the caller is then admin).
    #[arg(long, value_parser = parse_role)]
    role: Option<Role>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    /// Mint an internal token (what the gateway forwards to services) instead.
    #[arg(long)]
    internal: bool,
}

fn parse_role(value: &str) -> Result<Role, String> {
    value
        .parse()
        .map_err(|_| format!("unknown role {value:?}; expected admin, dispatcher or driver"))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    load_env_files();
    let env = Env::from_process();
    match run(cli, env).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            if telemetry::logs_json() {
                // One JSON line like every other, for the log collector.
                tracing::error!(error = format!("{error:#}"), "director failed");
            } else if wants_json_logs() {
                // Failed before logging was set up (an invalid setting): still one JSON line.
                eprintln!(
                    "{}",
                    serde_json::json!({
                        "level": "ERROR",
                        "target": "director",
                        "message": "director failed",
                        "error": format!("{error:#}"),
                    })
                );
            } else {
                eprintln!("Error: {error:?}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// Whether `LOG_FORMAT` asks for JSON, read directly (for errors before logging is set up).
fn wants_json_logs() -> bool {
    std::env::var("LOG_FORMAT").is_ok_and(|format| format.trim().eq_ignore_ascii_case("json"))
}

async fn run(cli: Cli, env: Env) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(args) => up(env, args).await,
        Command::Fakes(args) => run_fakes(&env, args).await,
        Command::Migrate(args) => {
            // A deploy step: its report is logged at info, like a service's `migrate`.
            let _telemetry = init_cli_logging(&env, "info")?;
            for done in migrate::migrate_services(&env, &args.services).await? {
                let report = done.migrations;
                let state = if report.created { "created" } else { "exists" };
                let login_role = done.login.as_ref().map(|login| login.role.as_str());
                if telemetry::logs_json() {
                    tracing::info!(
                        database = %report.database,
                        state,
                        applied = report.applied,
                        known = report.known,
                        login_role,
                        "database migrated"
                    );
                    continue;
                }
                let login = login_role
                    .map(|role| format!("; services log in as {role}"))
                    .unwrap_or_default();
                println!(
                    "{}: {state}, {} of {} migrations applied now{login}",
                    report.database, report.applied, report.known
                );
            }
            Ok(())
        }
        Command::Openapi => {
            let document = director::openapi::document()?;
            println!("{}", serde_json::to_string_pretty(&document)?);
            Ok(())
        }
        Command::Sync(args) => {
            let target = args.gateway.target(&env)?;
            let SyncWhat::Drivers = args.what;
            let job = director::jobs::run(&target, director::jobs::JobRequest::SyncDrivers).await?;
            print_finished(&job);
            Ok(())
        }
        Command::Import(args) => {
            let target = args.gateway.target(&env)?;
            let ImportWhat::Collections { date } = args.what;
            let job = director::jobs::run(
                &target,
                director::jobs::JobRequest::ImportCollections { date },
            )
            .await?;
            print_finished(&job);
            Ok(())
        }
        Command::Health(args) => {
            let addr = match args.addr {
                Some(addr) => addr,
                None => args.target.local_addr(&env)?,
            };
            let timeout = Duration::try_from_secs_f64(args.timeout)
                .context("--timeout must be a positive number of seconds")?;
            let healthy = director::health::probe(&args.target, addr, timeout).await?;
            println!("{healthy}");
            Ok(())
        }
        Command::Token(args) => {
            let request = TokenRequest {
                subject: args.sub,
                tenant: args.tenant,
                role: args.role,
                ttl: Duration::from_secs(args.ttl),
            };
            let token = if args.internal {
                token::internal_token(&env, &request)?
            } else {
                token::gateway_token(&env, &request)?
            };
            println!("{token}");
            Ok(())
        }
    }
}

/// `director fakes`: the three fakes on fixed ports until Ctrl-C.
async fn run_fakes(env: &Env, args: FakesArgs) -> anyhow::Result<()> {
    let _telemetry = init_cli_logging(env, "warn")?;
    let addrs = director::fakes::FakeAddrs {
        vessey: args.vessey_addr,
        slack: args.slack_addr,
        twilio: args.twilio_addr,
    };
    let fakes = director::fakes::start(addrs).await?;
    for (name, url) in director::fakes::urls(&fakes) {
        println!("{name:<13} {url}");
    }
    println!("\nPoint Director at them (e.g. in .env, or exported before `director up`):\n");
    for line in director::fakes::env_lines(&fakes) {
        println!("{line}");
    }
    println!("\nCtrl-C stops them.");
    let shutdown = CancellationToken::new();
    shutdown_on_signals(shutdown.clone());
    shutdown.cancelled().await;
    fakes.shutdown().await;
    Ok(())
}

/// Logs for one-shot commands: to stderr (stdout carries the command's output), in
/// `LOG_FORMAT` (JSON outside dev), `default_filter` unless `RUST_LOG` says otherwise.
fn init_cli_logging(env: &Env, default_filter: &str) -> anyhow::Result<telemetry::TelemetryGuard> {
    let environment = Environment::from_env(env)?;
    let config = TelemetryConfig::from_env(env, "director", environment)?;
    telemetry::init_for_command(&config, default_filter)
}

async fn up(process_env: Env, args: UpArgs) -> anyhow::Result<()> {
    let (env, generated) = with_dev_defaults(process_env);
    let fakes = if args.fakes {
        Some(director::fakes::start(director::fakes::FakeAddrs::any_loopback()).await?)
    } else {
        None
    };
    let env = match &fakes {
        Some(fakes) => director::fakes::use_fakes(env, fakes),
        None => env,
    };
    let common = director_platform::config::CommonConfig::from_env(&env, "director")?;
    let _telemetry = telemetry::init(&common.telemetry)?;
    for variable in &generated {
        println!(
            "{variable} was not set: generated a random one for this run \
             (set it to keep tokens valid across restarts)"
        );
    }

    let env = migrate::with_service_login(env)?;
    for done in migrate::migrate_services(&env, &[]).await.context(
        "could not migrate the databases; is PostgreSQL running at DATABASE_URL \
         (default postgres://postgres@localhost:5432?sslmode=disable)?",
    )? {
        tracing::info!(
            database = %done.migrations.database,
            applied = done.migrations.applied,
            login_role = done.login.as_ref().map(|login| login.role.as_str()),
            "database ready"
        );
    }

    let shutdown = CancellationToken::new();
    shutdown_on_signals(shutdown.clone());
    let mut running = stack::start(&env, shutdown).await?;

    let dev_token = token::gateway_token(&env, &dev_token_request())?;
    let url = running.gateway_url();
    println!("\nDirector is up.");
    println!("  REST API      {url}/api");
    println!("  API docs      {url}/api/docs");
    println!("  OpenAPI       {url}/api/openapi.json");
    println!("  gRPC/gRPC-Web {}", running.gateway_addr);
    println!("  Metrics       {}", running.metrics_url());
    for service in &running.services {
        println!(
            "  {:<13} {} (gRPC, internal token)",
            service.name, service.addr
        );
    }
    for (name, url) in fakes.iter().flat_map(director::fakes::urls) {
        println!("  {name:<13} {url}");
    }
    println!("\nDev token (admin of tenant dev-tenant, 12 h):\n  {dev_token}");
    println!("\nTry: curl -H 'authorization: Bearer {dev_token}' {url}/api/companies");
    println!("Ctrl-C stops everything.");

    running.wait().await?;
    running.stop().await
}

/// The token `director up` prints: an admin of the dev tenant, for 12 hours.
fn dev_token_request() -> TokenRequest {
    TokenRequest {
        subject: "00000000-0000-4000-8000-000000000001".to_owned(),
        tenant: Some("dev-tenant".to_owned()),
        role: Some(Role::Admin),
        ttl: Duration::from_secs(12 * 3600),
    }
}

/// The summary line of a finished job.
fn print_finished(job: &director_proto::integrations::Job) {
    let progress = job.progress.unwrap_or_default();
    println!(
        "job {} succeeded: {} of {} done in {} attempt(s)",
        job.id, progress.done, progress.total, job.attempts
    );
}

/// The process environment, plus random secrets for the ones a developer has not set and
/// loopback listen addresses (a dev stack is not meant to be reachable from the network).
/// Returns which secrets were generated.
fn with_dev_defaults(process_env: Env) -> (Env, Vec<&'static str>) {
    let mut generated = Vec::new();
    let mut pairs: Vec<(String, String)> =
        vec![("GATEWAY_ADDR".to_owned(), "127.0.0.1:8080".to_owned())];
    pairs.extend(
        catalog::SERVICES
            .iter()
            .map(|spec| (spec.addr_var(), format!("127.0.0.1:{}", spec.default_port))),
    );
    for variable in ["SUPABASE_JWT_SECRET", "INTERNAL_TOKEN_SECRET"] {
        if process_env.string(variable).is_none() {
            pairs.push((variable.to_owned(), random_secret()));
            generated.push(variable);
        }
    }
    (process_env.with_defaults(pairs), generated)
}

fn random_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
