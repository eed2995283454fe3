//! `EnsureCompanies`, the bulk call imports make: creates the missing companies, reuses the
//! existing ones, answers in request order, and survives overlapping concurrent calls.

#![allow(clippy::unwrap_used)]

use director_platform::identity::{Caller, Role};
use director_proto::internal::companies::companies_internal_service_client::CompaniesInternalServiceClient;
use director_proto::internal::companies::{CompanyRef, EnsureCompaniesRequest, EnsuredCompany};
use director_store::testing::{TestService, spawn_service};

fn farm(id: &str) -> CompanyRef {
    CompanyRef {
        external_id: id.to_owned(),
        name: format!("Farm {id}"),
    }
}

async fn ensure(
    service: &TestService,
    caller: &Caller,
    farms: Vec<CompanyRef>,
) -> Result<Vec<EnsuredCompany>, tonic::Status> {
    CompaniesInternalServiceClient::new(service.channel().await)
        .ensure_companies(service.request(caller, EnsureCompaniesRequest { companies: farms }))
        .await
        .map(|answer| answer.into_inner().companies)
}

#[tokio::test]
async fn missing_farms_are_created_existing_ones_reused_in_request_order() {
    let service = spawn_service(&director_companies::SERVICE, &[]).await;
    let admin = Caller::new("import", "dairy", Role::Admin);
    let first = ensure(&service, &admin, vec![farm("f1"), farm("f2")])
        .await
        .unwrap();
    assert!(first.iter().all(|company| company.created));

    let second = ensure(&service, &admin, vec![farm("f3"), farm("f1")])
        .await
        .unwrap();
    assert_eq!(second[0].external_id, "f3");
    assert!(second[0].created);
    assert_eq!(second[1].external_id, "f1");
    assert!(!second[1].created);
    assert_eq!(second[1].id, first[0].id, "the existing company is reused");

    // Another tenant's farm f1 is its own company.
    let other = Caller::new("import", "creamery", Role::Admin);
    let theirs = ensure(&service, &other, vec![farm("f1")]).await.unwrap();
    assert!(theirs[0].created);
    assert_ne!(theirs[0].id, first[0].id);
}

#[tokio::test]
async fn overlapping_concurrent_calls_neither_fail_nor_duplicate() {
    let service = spawn_service(&director_companies::SERVICE, &[]).await;
    let admin = Caller::new("import", "dairy", Role::Admin);
    let farms: Vec<CompanyRef> = (0..200).map(|i| farm(&format!("f{i}"))).collect();
    let calls = (0..4).map(|_| ensure(&service, &admin, farms.clone()));
    let answers: Vec<Vec<EnsuredCompany>> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    for index in 0..farms.len() {
        let ids: Vec<&str> = answers.iter().map(|a| a[index].id.as_str()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] == pair[1]), "{ids:?}");
        let created = answers.iter().filter(|a| a[index].created).count();
        assert_eq!(created, 1, "farm {index} created exactly once");
    }
}

#[tokio::test]
async fn bad_batches_are_refused_whole_and_drivers_may_not_call() {
    let service = spawn_service(&director_companies::SERVICE, &[]).await;
    let admin = Caller::new("import", "dairy", Role::Admin);
    for (farms, field) in [
        (vec![], "companies"),
        (vec![farm("f1"), farm("f1")], "companies[1].external_id"),
        (vec![farm("f2"), farm("")], "companies[1].external_id"),
        (
            vec![CompanyRef {
                external_id: "f3".to_owned(),
                name: "  ".to_owned(),
            }],
            "companies[0].name",
        ),
    ] {
        let status = ensure(&service, &admin, farms).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains(field), "{field}: {status:?}");
    }
    // Nothing of the refused batches was created.
    let fresh = ensure(&service, &admin, vec![farm("f2")]).await.unwrap();
    assert!(fresh[0].created);

    let driver = Caller::new("driver", "dairy", Role::Driver);
    let status = ensure(&service, &driver, vec![farm("f9")])
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
}
