//! The Companies service's settings, read from the environment once at start-up.

use std::net::SocketAddr;

use director_platform::config::{CommonConfig, ConfigError, Env};
use director_platform::db::DatabaseConfig;
use director_platform::identity::InternalTokenConfig;

/// The service's name: its database is `director_companies`, its variables `COMPANIES_*`.
pub const SERVICE: &str = "companies";

/// Everything the Companies service needs to run.
#[derive(Debug, Clone)]
pub struct CompaniesConfig {
    /// Environment, debug flag, logging and tracing.
    pub common: CommonConfig,
    /// Its own database.
    pub database: DatabaseConfig,
    /// The cluster secret internal tokens are verified with.
    pub internal_tokens: InternalTokenConfig,
    /// Where the gRPC server listens (`COMPANIES_ADDR`, default `0.0.0.0:50051`).
    pub listen_addr: SocketAddr,
}

impl CompaniesConfig {
    /// Reads and validates every setting; an error names the offending variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let common = CommonConfig::from_env(env, "director-companies")?;
        Ok(Self {
            database: DatabaseConfig::from_env(env, SERVICE)?,
            internal_tokens: InternalTokenConfig::from_env(env, common.environment)?,
            listen_addr: env.parse_or("COMPANIES_ADDR", SocketAddr::from(([0, 0, 0, 0], 50051)))?,
            common,
        })
    }
}
