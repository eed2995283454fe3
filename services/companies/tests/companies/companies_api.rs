//! The Companies gRPC API against a real database: CRUD, soft delete, pagination, validation,
//! roles and tenant isolation.

#![allow(clippy::unwrap_used)]

use crate::common;

use common::{admin, caller, spawn_app};
use director_platform::identity::Role;
use director_proto::companies::{
    Company, CreateCompanyRequest, GetCompanyRequest, ListCompaniesRequest, UpdateCompanyRequest,
};
use tonic::Code;
use tonic_types::StatusExt;

fn acme() -> CreateCompanyRequest {
    CreateCompanyRequest {
        name: "  Acme Dairy Farm ".into(),
        email: Some("contact@acmedairy.com".into()),
        phone: Some("+1 (555) 012-3456".into()),
        address: Some("123 Farm Road".into()),
        external_id: None,
    }
}

fn named(name: &str) -> CreateCompanyRequest {
    CreateCompanyRequest {
        name: name.into(),
        ..Default::default()
    }
}

fn violated_fields(status: &tonic::Status) -> Vec<String> {
    let mut fields: Vec<String> = status
        .get_details_bad_request()
        .expect("a BadRequest detail")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    fields.sort();
    fields
}

#[tokio::test]
async fn a_created_company_is_trimmed_normalised_and_readable() {
    let app = spawn_app().await;
    let mut client = app.client().await;
    let tenant = admin("tenant-a");

    let created = app.create(&mut client, &tenant, acme()).await;
    assert_eq!(created.name, "Acme Dairy Farm");
    assert_eq!(created.phone.as_deref(), Some("+15550123456"));
    assert!(created.created_at.is_some() && created.updated_at.is_some());
    assert_eq!(created.deleted_at, None);

    let read = app
        .get(&mut client, &tenant, &created.id)
        .await
        .unwrap()
        .company
        .unwrap();
    assert_eq!(read, created);
}

/// Rows are read by column position: every column must land in its own field, whichever
/// statement (insert, one-row read, list) returned it.
#[tokio::test]
async fn every_column_lands_in_its_own_field_in_creates_reads_and_lists() {
    let app = spawn_app().await;
    let mut client = app.client().await;
    let tenant = admin("tenant-a");
    let request = CreateCompanyRequest {
        name: "Columns Farm".into(),
        email: Some("columns@example.com".into()),
        phone: Some("+15550109999".into()),
        address: Some("9 Column Lane".into()),
        external_id: Some("vessey-columns".into()),
    };
    let created = app.create(&mut client, &tenant, request).await;
    assert!(uuid::Uuid::parse_str(&created.id).is_ok());
    assert_eq!(created.name, "Columns Farm");
    assert_eq!(created.email.as_deref(), Some("columns@example.com"));
    assert_eq!(created.phone.as_deref(), Some("+15550109999"));
    assert_eq!(created.address.as_deref(), Some("9 Column Lane"));
    assert_eq!(created.external_id.as_deref(), Some("vessey-columns"));
    assert!(created.created_at.is_some());
    assert_eq!(created.updated_at, created.created_at);
    assert_eq!(created.deleted_at, None);

    let read = app
        .get(&mut client, &tenant, &created.id)
        .await
        .unwrap()
        .company
        .unwrap();
    assert_eq!(read, created);
    assert_eq!(app.list(&mut client, &tenant).await, [created]);
}

#[tokio::test]
async fn every_invalid_field_is_named_and_nothing_is_created() {
    let app = spawn_app().await;
    let mut client = app.client().await;
    let tenant = admin("tenant-a");

    let status = client
        .create_company(app.request(
            &tenant,
            CreateCompanyRequest {
                name: "   ".into(),
                email: Some("not-an-address".into()),
                phone: Some("555-0123".into()),
                address: Some("x".repeat(1001)),
                external_id: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        ["address", "email", "name", "phone"]
    );

    let too_long = client
        .create_company(app.request(&tenant, named(&"n".repeat(256))))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&too_long), ["name"]);

    let listed = app.list(&mut client, &tenant).await;
    assert!(listed.is_empty());
}

#[tokio::test]
async fn the_contracts_rules_are_enforced_as_declared_with_their_descriptions() {
    let app = spawn_app().await;
    let mut client = app.client().await;
    let tenant = admin("tenant-a");

    // `uuid` in the contract is the hyphenated form: the 32-digit form parses as a UUID but
    // is refused by the rule.
    let simple = client
        .get_company(app.request(
            &tenant,
            GetCompanyRequest {
                id: "6f1c0e6e2b1a4c3e9a530d2f4f7b9a10".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&simple), ["id"]);

    // A set optional e-mail keeps its rule even when empty (protovalidate semantics); the
    // description says which rule broke.
    let status = client
        .create_company(app.request(
            &tenant,
            CreateCompanyRequest {
                email: Some(String::new()),
                ..named("Acme")
            },
        ))
        .await
        .unwrap_err();
    let details = status
        .get_details_bad_request()
        .expect("a BadRequest detail");
    assert_eq!(details.field_violations[0].field, "email");
    assert_eq!(
        details.field_violations[0].description,
        "must be a valid e-mail address"
    );
    assert_eq!(status.message(), "Invalid email");
}

#[tokio::test]
async fn an_id_that_is_not_a_uuid_is_an_invalid_argument() {
    let app = spawn_app().await;
    let mut client = app.client().await;
    let status = client
        .get_company(app.request(&admin("t"), GetCompanyRequest { id: "42".into() }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["id"]);
}

#[tokio::test]
async fn lists_are_oldest_first_paginated_and_capped() {
    let app = spawn_app().await;
    let mut client = app.client().await;
    let tenant = admin("tenant-a");
    for name in ["first", "second", "third"] {
        client
            .create_company(app.request(&tenant, named(name)))
            .await
            .unwrap();
    }

    let names = |companies: Vec<Company>| -> Vec<String> {
        companies.into_iter().map(|c| c.name).collect()
    };
    let all = app.list(&mut client, &tenant).await;
    assert_eq!(names(all), ["first", "second", "third"]);

    let page = client
        .list_companies(app.request(
            &tenant,
            ListCompaniesRequest {
                skip: Some(1),
                limit: Some(1),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(page.companies), ["second"]);

    let capped = client
        .list_companies(app.request(
            &tenant,
            ListCompaniesRequest {
                skip: None,
                limit: Some(100_000),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(capped.companies.len(), 3);

    let negative = client
        .list_companies(app.request(
            &tenant,
            ListCompaniesRequest {
                skip: Some(-1),
                limit: Some(0),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&negative), ["limit", "skip"]);
}

#[tokio::test]
async fn an_update_changes_only_the_masked_fields_and_clears_unset_optional_ones() {
    let app = spawn_app().await;
    let mut client = app.client().await;
    let tenant = admin("tenant-a");
    let created = app.create(&mut client, &tenant, acme()).await;

    let updated = client
        .update_company(app.request(
            &tenant,
            UpdateCompanyRequest {
                id: created.id.clone(),
                company: Some(Company {
                    name: "Renamed".into(),
                    email: Some("ignored@example.com".into()),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["name".into(), "phone".into()],
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .company
        .unwrap();
    assert_eq!(updated.name, "Renamed");
    assert_eq!(
        updated.phone, None,
        "a masked, unset optional field is cleared"
    );
    assert_eq!(
        updated.email, created.email,
        "an unmasked field is untouched"
    );
    assert_eq!(updated.address, created.address);
    let stamp = |t: &Option<prost_types::Timestamp>| t.as_ref().map(|t| (t.seconds, t.nanos));
    assert!(stamp(&updated.updated_at) > stamp(&created.updated_at));

    let status = client
        .update_company(app.request(
            &tenant,
            UpdateCompanyRequest {
                id: created.id.clone(),
                company: Some(Company::default()),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["name".into(), "created_at".into(), "colour".into()],
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["name", "update_mask"]);
}

#[tokio::test]
async fn a_deleted_company_is_gone_from_reads_lists_updates_and_deletes() {
    let app = spawn_app().await;
    let mut client = app.client().await;
    let tenant = admin("tenant-a");
    let created = app.create(&mut client, &tenant, acme()).await;

    let deleted = app.delete(&mut client, &tenant, &created.id).await.unwrap();
    assert_eq!(deleted.message, "Company deleted successfully");

    let get = app
        .get(&mut client, &tenant, &created.id)
        .await
        .unwrap_err();
    assert_eq!(
        (get.code(), get.message()),
        (Code::NotFound, "Company not found")
    );
    let again = app
        .delete(&mut client, &tenant, &created.id)
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::NotFound);
    let update = client
        .update_company(app.request(
            &tenant,
            UpdateCompanyRequest {
                id: created.id.clone(),
                company: Some(Company {
                    name: "x".into(),
                    ..Default::default()
                }),
                update_mask: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(update.code(), Code::NotFound);
    let listed = app.list(&mut client, &tenant).await;
    assert!(listed.is_empty());

    // The row itself is kept, with deleted_at set.
    let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    let kept: bool =
        sqlx::query_scalar("SELECT deleted_at IS NOT NULL FROM companies WHERE id = $1::uuid")
            .bind(&created.id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(kept);
}

#[tokio::test]
async fn drivers_read_companies_but_cannot_change_them() {
    let app = spawn_app().await;
    let mut client = app.client().await;
    let created = app.create(&mut client, &admin("tenant-a"), acme()).await;
    let driver = caller("tenant-a", Role::Driver);

    app.get(&mut client, &driver, &created.id).await.unwrap();
    let create = client
        .create_company(app.request(&driver, named("mine")))
        .await
        .unwrap_err();
    assert_eq!(create.code(), Code::PermissionDenied);
    let delete = app
        .delete(&mut client, &driver, &created.id)
        .await
        .unwrap_err();
    assert_eq!(delete.code(), Code::PermissionDenied);

    let dispatcher = caller("tenant-a", Role::Dispatcher);
    client
        .create_company(app.request(&dispatcher, named("by dispatcher")))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_duplicate_external_id_in_one_tenant_already_exists_but_not_across_tenants() {
    let app = spawn_app().await;
    let mut client = app.client().await;
    let farm = || CreateCompanyRequest {
        name: "Farm".into(),
        external_id: Some("vessey-farm-7".into()),
        ..Default::default()
    };
    client
        .create_company(app.request(&admin("tenant-a"), farm()))
        .await
        .unwrap();
    let duplicate = client
        .create_company(app.request(&admin("tenant-a"), farm()))
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);
    assert!(!duplicate.message().contains("duplicate key"));
    assert!(!duplicate.message().contains("companies_tenant"));

    client
        .create_company(app.request(&admin("tenant-b"), farm()))
        .await
        .unwrap();
}

#[tokio::test]
async fn calls_without_an_internal_token_are_unauthenticated() {
    let app = spawn_app().await;
    let mut client = app.client().await;
    let status = client
        .list_companies(ListCompaniesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn a_message_over_the_decode_limit_is_refused_before_it_is_decoded() {
    let app = spawn_app().await;
    // The client would send it; the service must not read it.
    let mut client = app.client().await.max_encoding_message_size(usize::MAX);
    let tenant = admin("tenant-a");
    let huge = named(&"x".repeat(2 * 1024 * 1024));
    let status = client
        .create_company(app.request(&tenant, huge))
        .await
        .unwrap_err();
    // tonic's answer for a message over the decode limit.
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("limit is: 1048576"), "{status:?}");
}
