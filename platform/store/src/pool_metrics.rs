//! The connection pool's gauges, `db_client_connection_count` (`used`/`idle`) and
//! `db_client_connection_max`, set on every scrape of the process' `/metrics`
//! ([`director_platform::metrics`]).

use director_platform::metrics::{ScrapeGuard, on_scrape};
use metrics::Label;
use sqlx::PgPool;

/// Reports `pool`'s connections on every scrape as `db_client_connection_count`
/// (`used`/`idle`) and `db_client_connection_max`, named `pool_name`, while the guard lives.
pub fn observe_pool(pool: PgPool, pool_name: &'static str, max: u32) -> ScrapeGuard {
    on_scrape(move || {
        let size = pool.size();
        let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX).min(size);
        let state = |state: &'static str| {
            [
                Label::new("db_client_connection_pool_name", pool_name),
                Label::new("db_client_connection_state", state),
            ]
        };
        metrics::gauge!("db_client_connection_count", state("used").to_vec())
            .set(f64::from(size - idle));
        metrics::gauge!("db_client_connection_count", state("idle").to_vec()).set(f64::from(idle));
        metrics::gauge!("db_client_connection_max", "db_client_connection_pool_name" => pool_name)
            .set(f64::from(max));
    })
}
