//! Another tenant's company is invisible: 404 on every read, update and delete, absent from
//! lists — and row-level security hides it even from a query that forgets the tenant filter.

#![allow(clippy::unwrap_used)]

use crate::common;

use common::{admin, spawn_app};
use director_platform::config::Env;
use director_proto::companies::{Company, CreateCompanyRequest, UpdateCompanyRequest};
use director_store::db::DatabaseConfig;
use director_store::tenant;
use tonic::Code;

#[tokio::test]
async fn another_tenants_company_is_not_found_for_every_rpc() {
    let app = spawn_app().await;
    let mut client = app.client().await;
    let (a, b) = (admin("tenant-a"), admin("tenant-b"));
    let company = app
        .create(
            &mut client,
            &a,
            CreateCompanyRequest {
                name: "A's farm".into(),
                ..Default::default()
            },
        )
        .await;
    let id = company.id.clone();

    let get = app.get(&mut client, &b, &id).await.unwrap_err();
    assert_eq!(get.code(), Code::NotFound);
    let update = client
        .update_company(app.request(
            &b,
            UpdateCompanyRequest {
                id: id.clone(),
                company: Some(Company {
                    name: "stolen".into(),
                    ..Default::default()
                }),
                update_mask: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(update.code(), Code::NotFound);
    let delete = app.delete(&mut client, &b, &id).await.unwrap_err();
    assert_eq!(delete.code(), Code::NotFound);
    let listed = app.list(&mut client, &b).await;
    assert!(listed.is_empty());

    // A's company is untouched.
    let still = app
        .get(&mut client, &a, &id)
        .await
        .unwrap()
        .company
        .unwrap();
    assert_eq!(still, company);
}

#[tokio::test]
async fn row_level_security_alone_hides_other_tenants_rows_from_an_unfiltered_query() {
    let app = spawn_app().await;
    let mut client = app.client().await;
    for tenant in ["tenant-a", "tenant-a", "tenant-b"] {
        client
            .create_company(app.request(
                &admin(tenant),
                CreateCompanyRequest {
                    name: format!("farm of {tenant}"),
                    ..Default::default()
                },
            ))
            .await
            .unwrap();
    }

    // The pool logs in as a superuser, like the dev stack does; the tenant scope still applies.
    let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    let database = DatabaseConfig::from_env(
        &Env::from_pairs([("COMPANIES_DATABASE_URL", app.database_url.as_str())]),
        "companies",
    )
    .unwrap();
    let all: i64 = sqlx::query_scalar("SELECT count(*) FROM companies")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(all, 3, "the superuser itself sees every row");

    for (tenant, expected) in [("tenant-a", 2), ("tenant-b", 1), ("tenant-c", 0)] {
        let mut tx = tenant::begin(&pool, &admin(tenant), &database)
            .await
            .unwrap();
        let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM companies")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(visible, expected, "rows visible to {tenant}");

        let smuggled = sqlx::query(
            "INSERT INTO companies (tenant_id, name) VALUES ('someone-else', 'smuggled')",
        )
        .execute(&mut *tx)
        .await;
        assert!(smuggled.is_err(), "{tenant} wrote a row of another tenant");
    }
}
