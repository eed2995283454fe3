//! The pgbouncer transaction mode (`DB_PGBOUNCER_TRANSACTION_MODE`) behind a real pgbouncer
//! in `pool_mode = transaction`, started by each test on a random port with fewer server
//! connections than the pool has client connections, so server connections are shared.
//!
//! Needs the `pgbouncer` binary (Debian: `apt-get install -y pgbouncer`; `.ci/run` installs
//! it); without it the tests fail rather than skip. pgbouncer logs in to the test server as
//! the `DATABASE_URL` user with no password (trust auth, as `common` assumes).
#![allow(clippy::unwrap_used)]

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::time::{Duration, Instant};

use common::TestDb;
use director_platform::identity::{Caller, Role};
use director_store::db::{DatabaseConfig, connect_lazy};
use director_store::tenant;
use director_store::testing::pgbouncer::{BouncerSettings, PgBouncer, pgbouncer_binary};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Acquire as _, PgPool, Row as _};

const TENANTS: [&str; 3] = ["A", "B", "C"];

/// pgbouncer in front of the server of `db`, for its (superuser, trust) user.
async fn start_bouncer(db: &TestDb, settings: BouncerSettings) -> PgBouncer {
    let user = PgConnectOptions::from_str(&db.url)
        .unwrap()
        .get_username()
        .to_owned();
    PgBouncer::start(&db.url, &[(&user, "")], &settings).await
}

/// Platform settings for a pool that reaches `db` through `bouncer`, with its sessions
/// (required in pgbouncer mode) on `db` directly.
fn bouncer_config(bouncer: &PgBouncer, db: &TestDb, extra: &[(&str, &str)]) -> DatabaseConfig {
    let url = bouncer.url_for(&db.url);
    let mut pairs = vec![
        ("PLATFORM_TEST_DATABASE_URL", url.as_str()),
        ("PLATFORM_TEST_SESSION_DATABASE_URL", db.url.as_str()),
    ];
    pairs.extend_from_slice(extra);
    DatabaseConfig::from_env(
        &director_platform::config::Env::from_pairs(pairs),
        "platform-test",
    )
    .unwrap()
}

async fn database_with_notes() -> (TestDb, PgPool) {
    pgbouncer_binary();
    let db = TestDb::create().await;
    let superuser = db
        .with_notes(&[("A", "seed-a"), ("B", "seed-b"), ("C", "seed-c")])
        .await;
    (db, superuser)
}

fn sqlstate(error: &sqlx::Error) -> Option<String> {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .map(|code| code.into_owned())
}

/// What one tenant transaction saw.
#[derive(Debug)]
struct Observed {
    tenant: String,
    echoed: i32,
    role: String,
    tenant_setting: String,
    statement_timeout: String,
    other_tenants_rows: i64,
    own_row_found: i64,
    named_statements: i64,
    backend_pid: i32,
}

async fn one_tenant_transaction(
    pool: &PgPool,
    config: &DatabaseConfig,
    n: i32,
) -> Result<Observed, sqlx::Error> {
    let tenant_id = TENANTS[usize::try_from(n).unwrap() % TENANTS.len()];
    let caller = Caller::new(format!("user-{n}"), tenant_id, Role::Admin);
    let body = format!("note-{n}");
    let mut tx = tenant::begin(pool, &caller, config).await?;
    sqlx::query("INSERT INTO notes (tenant_id, body) VALUES ($1, $2)")
        .bind(tenant_id)
        .bind(&body)
        .persistent(config.persistent_statements())
        .execute(&mut *tx)
        .await?;
    // A little work inside the transaction so clients queue for pgbouncer's server
    // connections and transactions from different clients interleave on them.
    let row = sqlx::query(
        "SELECT $1::int4, current_user::text, current_setting('app.tenant_id'), \
                current_setting('statement_timeout'), \
                (SELECT count(*) FROM notes WHERE tenant_id <> $2), \
                (SELECT count(*) FROM notes WHERE body = $3), \
                (SELECT count(*) FROM pg_prepared_statements), \
                pg_backend_pid(), pg_sleep(0.002)::text",
    )
    .bind(n)
    .bind(tenant_id)
    .bind(&body)
    .persistent(config.persistent_statements())
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Observed {
        tenant: tenant_id.to_owned(),
        echoed: row.get(0),
        role: row.get(1),
        tenant_setting: row.get(2),
        statement_timeout: row.get(3),
        other_tenants_rows: row.get(4),
        own_row_found: row.get(5),
        named_statements: row.get(6),
        backend_pid: row.get(7),
    })
}

const TRANSACTIONS: i32 = 200;
const CLIENT_CONNECTIONS: u32 = 8;
const SERVER_CONNECTIONS: u32 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_tenant_transactions_share_two_server_connections_in_pgbouncer_mode() {
    pgbouncer_binary();
    let (db, superuser) = database_with_notes().await;
    let bouncer = start_bouncer(
        &db,
        BouncerSettings {
            default_pool_size: SERVER_CONNECTIONS,
            ignore_startup_parameters: "",
        },
    )
    .await;
    let max_connections = CLIENT_CONNECTIONS.to_string();
    let config = bouncer_config(
        &bouncer,
        &db,
        &[
            ("DB_PGBOUNCER_TRANSACTION_MODE", "true"),
            ("DB_MAX_CONNECTIONS", &max_connections),
            ("DB_STATEMENT_TIMEOUT_MS", "4321"),
            ("DB_ACQUIRE_TIMEOUT_MS", "30000"),
        ],
    );
    let pool = connect_lazy(&config).unwrap();

    // Open every client connection up front (pgbouncer takes a server connection only per
    // transaction), so 8 clients really do share 2 server connections.
    let held = futures::future::try_join_all((0..CLIENT_CONNECTIONS).map(|_| pool.acquire()))
        .await
        .unwrap();
    drop(held);
    assert_eq!(pool.size(), CLIENT_CONNECTIONS);

    let tasks: Vec<_> = (0..TRANSACTIONS)
        .map(|n| {
            let (pool, config) = (pool.clone(), config.clone());
            tokio::spawn(async move { one_tenant_transaction(&pool, &config, n).await })
        })
        .collect();
    let mut backend_pids = BTreeSet::new();
    let mut inserted: BTreeMap<String, i64> = BTreeMap::new();
    for (n, task) in (0..TRANSACTIONS).zip(tasks) {
        let seen = task
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("transaction {n} failed behind pgbouncer: {e:?}"));
        assert_eq!(seen.echoed, n);
        assert_eq!(seen.role, "director_app", "{seen:?}");
        assert_eq!(seen.tenant_setting, seen.tenant, "{seen:?}");
        assert_eq!(seen.statement_timeout, "4321ms", "{seen:?}");
        assert_eq!(
            seen.other_tenants_rows, 0,
            "RLS let another tenant's rows through: {seen:?}"
        );
        assert_eq!(seen.own_row_found, 1, "{seen:?}");
        assert_eq!(
            seen.named_statements, 0,
            "a named prepared statement was left on a server connection: {seen:?}"
        );
        backend_pids.insert(seen.backend_pid);
        *inserted.entry(seen.tenant).or_default() += 1;
    }
    assert_eq!(pool.size(), CLIENT_CONNECTIONS);
    assert!(
        !backend_pids.is_empty() && backend_pids.len() <= SERVER_CONNECTIONS as usize,
        "expected at most {SERVER_CONNECTIONS} server backends, saw {backend_pids:?}"
    );

    // Every insert landed under its own tenant, and a tenant transaction still sees only
    // its own rows when it does not filter.
    for tenant_id in TENANTS {
        let expected = inserted[tenant_id] + 1; // plus the seed row
        let (all,): (i64,) = sqlx::query_as("SELECT count(*) FROM notes WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_one(&superuser)
            .await
            .unwrap();
        assert_eq!(all, expected, "tenant {tenant_id}");
        let caller = Caller::new("auditor", tenant_id, Role::Admin);
        let mut tx = tenant::begin(&pool, &caller, &config).await.unwrap();
        let (visible,): (i64,) = sqlx::query_as("SELECT count(*) FROM notes")
            .persistent(config.persistent_statements())
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(visible, expected, "tenant {tenant_id} sees only its rows");
    }

    pool.close().await;
    superuser.close().await;
    drop(bouncer);
    db.drop().await;
}

/// `statement_timeout` is set per transaction (no startup `options` behind pgbouncer): it
/// fires inside a tenant transaction and does not outlive it on the shared server connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statement_timeout_applies_per_transaction_and_does_not_leak_in_pgbouncer_mode() {
    pgbouncer_binary();
    let (db, superuser) = database_with_notes().await;
    let (server_default,): (String,) =
        sqlx::query_as("SELECT current_setting('statement_timeout')")
            .fetch_one(&superuser)
            .await
            .unwrap();
    let bouncer = start_bouncer(
        &db,
        BouncerSettings {
            default_pool_size: 1,
            ignore_startup_parameters: "",
        },
    )
    .await;
    let config = bouncer_config(
        &bouncer,
        &db,
        &[
            ("DB_PGBOUNCER_TRANSACTION_MODE", "true"),
            ("DB_MAX_CONNECTIONS", "2"),
            ("DB_STATEMENT_TIMEOUT_MS", "200"),
        ],
    );
    let pool = connect_lazy(&config).unwrap();
    let caller = Caller::new("user-1", "A", Role::Admin);

    let mut tx = tenant::begin(&pool, &caller, &config).await.unwrap();
    let started = Instant::now();
    let error = sqlx::query("SELECT pg_sleep($1)")
        .bind(5.0_f64)
        .persistent(config.persistent_statements())
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&error).as_deref(), Some("57014"), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    tx.rollback().await.unwrap();

    // Outside a tenant transaction (simple protocol, so safe anywhere) the one server
    // connection is back to the server's defaults: neither the timeout nor the role leaked.
    let mut conns = vec![pool.acquire().await.unwrap(), pool.acquire().await.unwrap()];
    for conn in &mut conns {
        let rows = sqlx::raw_sql(
            "SELECT current_setting('statement_timeout'), current_user::text, \
                    coalesce(current_setting('app.tenant_id', true), '')",
        )
        .fetch_all(&mut **conn)
        .await
        .unwrap();
        assert_eq!(rows[0].get::<String, _>(0), server_default);
        assert_ne!(rows[0].get::<String, _>(1), "director_app");
        assert_eq!(rows[0].get::<String, _>(2), "");
    }
    drop(conns);

    pool.close().await;
    superuser.close().await;
    drop(bouncer);
    db.drop().await;
}

/// Without the mode, the pool sends startup parameters pgbouncer does not track: every
/// connection is refused unless pgbouncer is told to ignore them. The pgbouncer-mode pool
/// above works through the same configuration (no `ignore_startup_parameters`).
#[tokio::test]
async fn a_normal_mode_pool_is_refused_by_pgbouncer_for_its_startup_parameters() {
    pgbouncer_binary();
    let db = TestDb::create().await;
    let bouncer = start_bouncer(
        &db,
        BouncerSettings {
            default_pool_size: SERVER_CONNECTIONS,
            ignore_startup_parameters: "",
        },
    )
    .await;
    let normal = connect_lazy(&bouncer_config(&bouncer, &db, &[])).unwrap();
    let error = sqlx::raw_sql("SELECT 1")
        .execute(&normal)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("unsupported startup parameter"),
        "{error:?}"
    );
    normal.close().await;

    let bouncer_mode = connect_lazy(&bouncer_config(
        &bouncer,
        &db,
        &[("DB_PGBOUNCER_TRANSACTION_MODE", "true")],
    ))
    .unwrap();
    assert!(director_store::db::ping(&bouncer_mode).await);
    bouncer_mode.close().await;

    drop(bouncer);
    db.drop().await;
}

/// Why the mode exists: with one pgbouncer server connection shared by two client
/// connections, a named prepared statement created by one client is in the way of the
/// other, which numbers its statements from `sqlx_s_1` too (and prepared statements outlive
/// transactions). This happens in normal mode (once pgbouncer is told to ignore its startup
/// parameters) and in pgbouncer mode when a query forgets
/// `.persistent(config.persistent_statements())`; not when it does not forget.
#[tokio::test]
async fn named_prepared_statements_collide_on_a_shared_server_connection() {
    pgbouncer_binary();
    let db = TestDb::create().await;
    // One server connection; the normal-mode pool's startup parameters ignored so that it
    // gets as far as preparing statements.
    let settings = BouncerSettings {
        default_pool_size: 1,
        ignore_startup_parameters: "extra_float_digits,options",
    };

    // Runs `SELECT $1` in a transaction on one client connection, then in a transaction on
    // a second client connection of the same pool (both on the one server connection), and
    // returns the second client's result.
    async fn second_client(config: &DatabaseConfig, persistent: bool) -> Result<i32, sqlx::Error> {
        let pool = connect_lazy(config).unwrap();
        let mut first = pool.acquire().await.unwrap();
        let mut second = pool.acquire().await.unwrap();
        let mut tx = first.begin().await.unwrap();
        let one: i32 = sqlx::query_scalar("SELECT $1::int4")
            .bind(1)
            .persistent(persistent)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(one, 1);
        let mut tx = second.begin().await.unwrap();
        let result = sqlx::query_scalar("SELECT $1::int4")
            .bind(2)
            .persistent(persistent)
            .fetch_one(&mut *tx)
            .await;
        if result.is_ok() {
            tx.commit().await.unwrap();
        } else {
            tx.rollback().await.unwrap();
        }
        drop((first, second));
        pool.close().await;
        result
    }

    // Normal mode: named, cached statements.
    let bouncer = start_bouncer(&db, settings).await;
    let normal = bouncer_config(&bouncer, &db, &[("DB_MAX_CONNECTIONS", "2")]);
    assert!(normal.persistent_statements());
    let error = second_client(&normal, normal.persistent_statements())
        .await
        .unwrap_err();
    // 42P05 duplicate_prepared_statement: prepared statement "sqlx_s_1" already exists.
    assert_eq!(sqlstate(&error).as_deref(), Some("42P05"), "{error:?}");
    assert!(error.to_string().contains("already exists"), "{error:?}");
    drop(bouncer);

    // pgbouncer mode, but a query without `.persistent(false)`: the statement cache is off,
    // yet sqlx still names the statement.
    let bouncer = start_bouncer(&db, settings).await;
    let bouncer_mode = bouncer_config(
        &bouncer,
        &db,
        &[
            ("DB_MAX_CONNECTIONS", "2"),
            ("DB_PGBOUNCER_TRANSACTION_MODE", "true"),
        ],
    );
    let forgot = second_client(&bouncer_mode, true).await.unwrap_err();
    assert_eq!(sqlstate(&forgot).as_deref(), Some("42P05"), "{forgot:?}");

    // pgbouncer mode as meant: unnamed statements, unaffected even by the `sqlx_s_1` the
    // collision above left on the server connection.
    for _ in 0..2 {
        assert_eq!(
            second_client(&bouncer_mode, bouncer_mode.persistent_statements())
                .await
                .unwrap(),
            2
        );
    }
    drop(bouncer);

    db.drop().await;
}

/// Why services need a session URL behind pgbouncer (issue 20): a listener connected through
/// pgbouncer in transaction mode never hears a notification — its `LISTEN` ran on a server
/// connection pgbouncer handed back at once — while the same listener on the session pool
/// (`DatabaseConfig::session`, PostgreSQL directly) does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_reach_a_listener_on_the_session_pool_and_not_through_pgbouncer() {
    use director_store::notify::{Notifications, Wake};
    use tokio_util::sync::CancellationToken;

    const CHANNEL: &str = "director_pgbouncer_test";

    /// Whether a listener on `pool` hears `NOTIFY` sent (through `sender`, directly) after it
    /// has connected, within two seconds.
    async fn hears(pool: PgPool, sender: &PgPool) -> bool {
        let shutdown = CancellationToken::new();
        let notifications = Notifications::start(pool, CHANNEL, shutdown.clone());
        let mut wake = notifications.subscribe();
        // The listener says it (re)connected (and has run LISTEN) with `Everyone`.
        let connected = tokio::time::timeout(Duration::from_secs(10), wake.recv()).await;
        assert_eq!(connected.unwrap().unwrap(), Wake::Everyone);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        let heard = loop {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("NOTIFY {CHANNEL}, 'tenant-a'")))
                .execute(sender)
                .await
                .unwrap();
            match tokio::time::timeout_at(
                deadline.min(tokio::time::Instant::now() + Duration::from_millis(200)),
                wake.recv(),
            )
            .await
            {
                Ok(Ok(Wake::Key(key))) => break key.as_ref() == "tenant-a",
                Ok(_) | Err(_) if tokio::time::Instant::now() < deadline => {}
                Ok(_) | Err(_) => break false,
            }
        };
        shutdown.cancel();
        heard
    }

    let db = TestDb::create().await;
    let sender = db.superuser_pool().await;
    let bouncer = start_bouncer(&db, BouncerSettings::default()).await;
    let config = bouncer_config(&bouncer, &db, &[("DB_PGBOUNCER_TRANSACTION_MODE", "true")]);
    let through_pgbouncer = connect_lazy(&config).unwrap();
    let session = connect_lazy(&config.session().expect("a session URL is set")).unwrap();

    assert!(
        !hears(through_pgbouncer.clone(), &sender).await,
        "a listener through pgbouncer in transaction mode heard a notification"
    );
    assert!(
        hears(session.clone(), &sender).await,
        "the listener on the session pool missed the notification"
    );

    through_pgbouncer.close().await;
    session.close().await;
    sender.close().await;
    drop(bouncer);
    db.drop().await;
}

/// Why one-statement reads stay in a transaction behind pgbouncer (< 1.21, Debian's 1.18):
/// sqlx runs an unnamed statement in two round trips — `Parse`+`Describe`+`Sync`, then
/// `Bind`+`Execute`+`Sync` — and outside a transaction pgbouncer may hand the second to
/// another server connection, where the unnamed statement is missing or is another
/// client's. Concurrent one-statement queries from 8 clients over 1 server connection fail
/// or answer another client's statement; inside transactions the same queries all succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unnamed_statements_outside_a_transaction_cross_clients_behind_pgbouncer() {
    let db = TestDb::create().await;
    let bouncer = start_bouncer(
        &db,
        BouncerSettings {
            default_pool_size: 1,
            ..BouncerSettings::default()
        },
    )
    .await;
    let config = bouncer_config(
        &bouncer,
        &db,
        &[
            ("DB_PGBOUNCER_TRANSACTION_MODE", "true"),
            ("DB_MAX_CONNECTIONS", "8"),
            ("DB_ACQUIRE_TIMEOUT_MS", "30000"),
        ],
    );
    let pool = connect_lazy(&config).unwrap();

    /// Runs 400 one-statement queries of three kinds on `pool`, in transactions or not;
    /// answers how many failed or answered what another kind would.
    async fn wrong_answers(pool: &PgPool, in_transaction: bool) -> usize {
        let tasks: Vec<_> = (0..400_i32)
            .map(|n| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    // Three statements answering differently, so one run with another's
                    // parameters shows.
                    let (sql, expected) = match n % 3 {
                        0 => ("SELECT $1::int4", n),
                        1 => ("SELECT $1::int4 + 1000000", n + 1_000_000),
                        _ => ("SELECT -$1::int4", -n),
                    };
                    let query = sqlx::query_scalar::<_, i32>(sql).bind(n).persistent(false);
                    let echoed = if in_transaction {
                        let mut tx = pool.begin().await.unwrap();
                        let echoed = query.fetch_one(&mut *tx).await;
                        tx.commit().await.map(|()| echoed).and_then(|echoed| echoed)
                    } else {
                        query.fetch_one(&pool).await
                    };
                    echoed.ok() == Some(expected)
                })
            })
            .collect();
        let mut wrong = 0;
        for task in tasks {
            if !task.await.unwrap() {
                wrong += 1;
            }
        }
        wrong
    }

    assert_eq!(wrong_answers(&pool, true).await, 0);
    let wrong = wrong_answers(&pool, false).await;
    eprintln!("outside transactions: {wrong} of 400 wrong");
    assert!(
        wrong > 0,
        "every unnamed statement outside a transaction came back right"
    );

    pool.close().await;
    drop(bouncer);
    db.drop().await;
}
