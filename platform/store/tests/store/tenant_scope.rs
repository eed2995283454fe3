//! A tenant transaction sees only its tenant's rows through row-level security, even when
//! the pool logs in as a superuser and the query forgets the tenant filter.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::TestDb;
use director_platform::identity::{Caller, Role};
use director_store::db::connect_lazy;
use director_store::tenant;

#[tokio::test]
async fn a_tenant_transaction_counts_only_its_own_rows_without_a_tenant_filter() {
    let db = TestDb::create().await;
    let superuser = db
        .with_notes(&[("A", "a1"), ("A", "a2"), ("B", "b1")])
        .await;
    let (all,): (i64,) = sqlx::query_as("SELECT count(*) FROM notes")
        .fetch_one(&superuser)
        .await
        .unwrap();
    assert_eq!(
        all, 3,
        "the superuser outside a tenant transaction sees every row"
    );

    let config = db.config_with(&[("DB_STATEMENT_TIMEOUT_MS", "4321")]);
    let pool = connect_lazy(&config).unwrap();
    let tenant_a = Caller::new("user-1", "A", Role::Admin);

    let mut tx = tenant::begin(&pool, &tenant_a, &config).await.unwrap();
    let (visible,): (i64,) = sqlx::query_as("SELECT count(*) FROM notes")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(visible, 2);
    let (role, tenant, timeout): (String, String, String) = sqlx::query_as(
        "SELECT current_user::text, current_setting('app.tenant_id'), \
                current_setting('statement_timeout')",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(
        (role.as_str(), tenant.as_str(), timeout.as_str()),
        ("director_app", "A", "4321ms")
    );

    // Writing a row for another tenant is refused by the policy's WITH CHECK.
    let cross_tenant = sqlx::query("INSERT INTO notes (tenant_id, body) VALUES ('B', 'sneaky')")
        .execute(&mut *tx)
        .await;
    assert!(cross_tenant.is_err());
    tx.rollback().await.unwrap();

    // The settings were transaction-local: the pooled connection is a superuser again.
    let (after,): (String,) = sqlx::query_as("SELECT current_user::text")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_ne!(after, "director_app");

    let tenant_b = Caller::new("user-2", "B", Role::Driver);
    let mut tx = tenant::begin(&pool, &tenant_b, &config).await.unwrap();
    let bodies: Vec<(String,)> = sqlx::query_as("SELECT body FROM notes ORDER BY id")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(bodies, vec![("b1".to_owned(),)]);
    tx.commit().await.unwrap();

    pool.close().await;
    superuser.close().await;
    db.drop().await;
}

#[tokio::test]
async fn a_tenant_transaction_in_pgbouncer_mode_leaves_no_named_statement() {
    let db = TestDb::create().await;
    let superuser = db.superuser_pool().await;
    sqlx::raw_sql(common::CREATE_APP_ROLE)
        .execute(&superuser)
        .await
        .unwrap();
    let config = db.config_with(&[
        ("DB_PGBOUNCER_TRANSACTION_MODE", "yes"),
        ("PLATFORM_TEST_SESSION_DATABASE_URL", &db.url),
        ("DB_MAX_CONNECTIONS", "1"),
    ]);
    let pool = connect_lazy(&config).unwrap();

    let caller = Caller::new("user-1", "A", Role::Admin);
    let mut tx = tenant::begin(&pool, &caller, &config).await.unwrap();
    let rows = sqlx::raw_sql(
        "SELECT current_setting('app.tenant_id'), current_setting('statement_timeout'), \
                (SELECT count(*) FROM pg_prepared_statements)",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    use sqlx::Row as _;
    assert_eq!(rows[0].get::<String, _>(0), "A");
    assert_eq!(rows[0].get::<String, _>(1), "15s");
    assert_eq!(rows[0].get::<i64, _>(2), 0);
    tx.commit().await.unwrap();

    pool.close().await;
    superuser.close().await;
    db.drop().await;
}

#[tokio::test]
async fn a_policed_login_reads_in_one_scoped_statement() {
    use director_store::db::with_login;
    use director_store::roles::{DEV_SERVICE_PASSWORD, SERVICE_ROLE, ensure_service_login};
    use director_store::tenant::TenantDb;

    let service_url = |owner: &str| with_login(owner, SERVICE_ROLE, DEV_SERVICE_PASSWORD).unwrap();

    let db = TestDb::create().await;
    let superuser = db
        .with_notes(&[("A", "a1"), ("A", "a2"), ("B", "b1")])
        .await;
    ensure_service_login(&db.url, &service_url(&db.url))
        .await
        .unwrap();
    let config = db.config_with(&[("PLATFORM_TEST_DATABASE_URL", &service_url(&db.url))]);
    let tenants = TenantDb::new(connect_lazy(&config).unwrap(), config);
    let tenant_a = Caller::new("user-1", "A", Role::Admin);
    let body =
        |id: i32| sqlx::query_as::<_, (String,)>("SELECT body FROM notes WHERE id = $1").bind(id);

    // Its own row, and nothing of another tenant's even by id.
    assert_eq!(
        tenants.read_optional(&tenant_a, body(1)).await.unwrap(),
        Some(("a1".to_owned(),))
    );
    assert_eq!(
        tenants.read_optional(&tenant_a, body(3)).await.unwrap(),
        None
    );
    let (count,) = tenants
        .fetch_one(
            &tenant_a,
            sqlx::query_as::<_, (i64,)>("SELECT count(*) FROM notes"),
        )
        .await
        .unwrap();
    assert_eq!(count, 2, "the forgotten tenant filter is the policy's");

    // Many rows in one statement: only the tenant's, in the order asked for.
    let bodies = |descending: bool| {
        sqlx::query_as::<_, (String,)>(if descending {
            "SELECT body FROM notes ORDER BY body DESC"
        } else {
            "SELECT body FROM notes ORDER BY body"
        })
    };
    let strings = |rows: Vec<(String,)>| rows.into_iter().map(|(body,)| body).collect::<Vec<_>>();
    assert_eq!(
        strings(
            tenants
                .read_all(&tenant_a, bodies(true), "body DESC")
                .await
                .unwrap()
        ),
        ["a2", "a1"]
    );
    assert_eq!(
        strings(
            tenants
                .read_all(&tenant_a, bodies(false), "body")
                .await
                .unwrap()
        ),
        ["a1", "a2"]
    );
    let tenant_c = Caller::new("user-3", "C", Role::Admin);
    assert!(
        tenants
            .read_all(&tenant_c, bodies(false), "body")
            .await
            .unwrap()
            .is_empty()
    );

    // The setting lived only as long as the statement.
    let mut connection = tenants.pool().acquire().await.unwrap();
    let (leftover,): (Option<String>,) =
        sqlx::query_as("SELECT nullif(current_setting('app.tenant_id', true), '')")
            .fetch_one(&mut *connection)
            .await
            .unwrap();
    assert_eq!(leftover, None, "the pooled connection holds no tenant");
    let (unscoped,): (i64,) = sqlx::query_as("SELECT count(*) FROM notes")
        .fetch_one(&mut *connection)
        .await
        .unwrap();
    assert_eq!(unscoped, 0, "without a tenant the login role sees nothing");
    drop(connection);

    tenants.pool().close().await;
    superuser.close().await;
    db.drop().await;
}
