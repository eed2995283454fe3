//! `RestApi::handle` end to end against real gRPC servers (Director's generated service
//! stubs with in-memory fakes behind them): the request that reaches the service, the JSON
//! that comes back, error mapping, deadlines and Server-Sent Events.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use director_gateway::rest::RestApi;
use director_gateway::upstream::{Outbound, Upstreams};
use director_proto::companies::companies_service_server::{
    CompaniesService, CompaniesServiceServer,
};
use director_proto::companies::{self as c};
use director_proto::dispatch::tasks_service_server::{TasksService, TasksServiceServer};
use director_proto::dispatch::{self as d};
use futures::Stream;
use http::{Method, Request, StatusCode, header};
use prost_reflect::DescriptorPool;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

/// What a fake service saw of one call.
#[derive(Debug, Clone)]
struct Seen {
    rpc: &'static str,
    metadata: MetadataMap,
    update: Option<c::UpdateCompanyRequest>,
}

#[derive(Debug, Clone, Default)]
struct Log(Arc<Mutex<Vec<Seen>>>);

impl Log {
    fn push<T>(
        &self,
        rpc: &'static str,
        request: &tonic::Request<T>,
        update: Option<c::UpdateCompanyRequest>,
    ) {
        self.0.lock().unwrap().push(Seen {
            rpc,
            metadata: request.metadata().clone(),
            update,
        });
    }

    fn last(&self) -> Seen {
        self.0.lock().unwrap().last().cloned().unwrap()
    }
}

fn company(id: &str) -> c::Company {
    c::Company {
        id: id.to_owned(),
        name: "Acme".to_owned(),
        created_at: Some(prost_types::Timestamp {
            seconds: 1_714_543_200,
            nanos: 0,
        }),
        ..Default::default()
    }
}

struct FakeCompanies(Log);

#[tonic::async_trait]
impl CompaniesService for FakeCompanies {
    async fn list_companies(
        &self,
        request: tonic::Request<c::ListCompaniesRequest>,
    ) -> Result<tonic::Response<c::ListCompaniesResponse>, Status> {
        self.0.push("ListCompanies", &request, None);
        Ok(tonic::Response::new(c::ListCompaniesResponse {
            companies: vec![company("a"), company("b")],
        }))
    }

    async fn create_company(
        &self,
        request: tonic::Request<c::CreateCompanyRequest>,
    ) -> Result<tonic::Response<c::CreateCompanyResponse>, Status> {
        self.0.push("CreateCompany", &request, None);
        let mut details = ErrorDetails::new();
        details.add_bad_request_violation("email", "not a valid e-mail address");
        Err(Status::with_error_details(
            Code::InvalidArgument,
            "Invalid company",
            details,
        ))
    }

    async fn get_company(
        &self,
        request: tonic::Request<c::GetCompanyRequest>,
    ) -> Result<tonic::Response<c::GetCompanyResponse>, Status> {
        self.0.push("GetCompany", &request, None);
        match request.get_ref().id.as_str() {
            "missing" => Err(Status::not_found("Company not found")),
            "boom" => Err(Status::internal("relation \"companies\" does not exist")),
            "slow" => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(tonic::Response::new(c::GetCompanyResponse {
                    company: Some(company("slow")),
                }))
            }
            id => Ok(tonic::Response::new(c::GetCompanyResponse {
                company: Some(company(id)),
            })),
        }
    }

    async fn update_company(
        &self,
        request: tonic::Request<c::UpdateCompanyRequest>,
    ) -> Result<tonic::Response<c::UpdateCompanyResponse>, Status> {
        let update = request.get_ref().clone();
        self.0.push("UpdateCompany", &request, Some(update.clone()));
        let mut updated = company(&update.id);
        if let Some(body) = update.company {
            updated.phone = body.phone;
        }
        Ok(tonic::Response::new(c::UpdateCompanyResponse {
            company: Some(updated),
        }))
    }

    async fn delete_company(
        &self,
        request: tonic::Request<c::DeleteCompanyRequest>,
    ) -> Result<tonic::Response<c::DeleteCompanyResponse>, Status> {
        self.0.push("DeleteCompany", &request, None);
        Ok(tonic::Response::new(c::DeleteCompanyResponse {
            message: "Company deleted successfully".to_owned(),
        }))
    }
}

struct FakeTasks;

type EventStream = Pin<Box<dyn Stream<Item = Result<d::WatchTasksResponse, Status>> + Send>>;

fn unimplemented<T>() -> Result<tonic::Response<T>, Status> {
    Err(Status::unimplemented("not in this fake"))
}

#[tonic::async_trait]
impl TasksService for FakeTasks {
    type WatchTasksStream = EventStream;

    async fn list_tasks(
        &self,
        _: tonic::Request<d::ListTasksRequest>,
    ) -> Result<tonic::Response<d::ListTasksResponse>, Status> {
        unimplemented()
    }
    async fn create_task(
        &self,
        _: tonic::Request<d::CreateTaskRequest>,
    ) -> Result<tonic::Response<d::CreateTaskResponse>, Status> {
        unimplemented()
    }
    async fn watch_tasks(
        &self,
        _: tonic::Request<d::WatchTasksRequest>,
    ) -> Result<tonic::Response<EventStream>, Status> {
        let event = |n: u32, kind: d::TaskEventKind| {
            Ok(d::WatchTasksResponse {
                event_id: format!("e-{n}"),
                kind: kind as i32,
                task: Some(d::Task {
                    id: "t-1".into(),
                    version: i32::try_from(n).unwrap(),
                    ..Default::default()
                }),
                occurred_at: None,
            })
        };
        let events = vec![
            event(1, d::TaskEventKind::Created),
            event(2, d::TaskEventKind::Assigned),
            Err(Status::unavailable("event relay went away")),
        ];
        Ok(tonic::Response::new(Box::pin(futures::stream::iter(
            events,
        ))))
    }
    async fn get_task(
        &self,
        _: tonic::Request<d::GetTaskRequest>,
    ) -> Result<tonic::Response<d::GetTaskResponse>, Status> {
        unimplemented()
    }
    async fn update_task(
        &self,
        _: tonic::Request<d::UpdateTaskRequest>,
    ) -> Result<tonic::Response<d::UpdateTaskResponse>, Status> {
        unimplemented()
    }
    async fn delete_task(
        &self,
        _: tonic::Request<d::DeleteTaskRequest>,
    ) -> Result<tonic::Response<d::DeleteTaskResponse>, Status> {
        unimplemented()
    }
    async fn assign_task(
        &self,
        _: tonic::Request<d::AssignTaskRequest>,
    ) -> Result<tonic::Response<d::AssignTaskResponse>, Status> {
        unimplemented()
    }
    async fn start_task(
        &self,
        _: tonic::Request<d::StartTaskRequest>,
    ) -> Result<tonic::Response<d::StartTaskResponse>, Status> {
        unimplemented()
    }
    async fn complete_task(
        &self,
        _: tonic::Request<d::CompleteTaskRequest>,
    ) -> Result<tonic::Response<d::CompleteTaskResponse>, Status> {
        unimplemented()
    }
    async fn cancel_task(
        &self,
        _: tonic::Request<d::CancelTaskRequest>,
    ) -> Result<tonic::Response<d::CancelTaskResponse>, Status> {
        unimplemented()
    }
}

struct Harness {
    api: RestApi,
    upstreams: Upstreams,
    log: Log,
}

async fn start() -> Harness {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    let log = Log::default();
    let server = tonic::transport::Server::builder()
        .add_service(CompaniesServiceServer::new(FakeCompanies(log.clone())))
        .add_service(TasksServiceServer::new(FakeTasks))
        .serve_with_incoming(TcpListenerStream::new(listener));
    tokio::spawn(server);
    let uri: http::Uri = format!("http://{address}").parse().unwrap();
    let pool = DescriptorPool::decode(director_proto::FILE_DESCRIPTOR_SET).unwrap();
    let upstreams = Upstreams::new(
        vec![
            ("director.companies.v1".to_owned(), uri.clone()),
            ("director.dispatch.v1".to_owned(), uri),
        ],
        Duration::from_secs(1),
        64,
        &pool,
    );
    Harness {
        api: RestApi::new(&pool).unwrap(),
        upstreams,
        log,
    }
}

fn outbound(timeout: Duration) -> Outbound {
    let mut metadata = MetadataMap::new();
    metadata.insert(
        "authorization",
        MetadataValue::from_static("Bearer internal-token"),
    );
    metadata.insert("x-request-id", MetadataValue::from_static("req-42"));
    Outbound {
        metadata,
        timeout,
        max_body_bytes: 1024,
        expose_internal_errors: false,
        shutdown: tokio_util::sync::CancellationToken::new(),
        token_expires_at: std::time::SystemTime::now() + Duration::from_secs(3600),
        reauthorize: None,
    }
}

fn request(method: Method, uri: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

async fn call(
    harness: &Harness,
    request: Request<Body>,
    outbound: Outbound,
) -> (StatusCode, http::HeaderMap, String) {
    let response = match harness
        .api
        .handle(request, &harness.upstreams, outbound)
        .await
    {
        Ok(response) => response,
        Err(error) => axum::response::IntoResponse::into_response(error),
    };
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[tokio::test]
async fn a_patch_reaches_the_service_with_its_mask_and_metadata_and_answers_the_company() {
    let harness = start().await;
    let (status, headers, body) = call(
        &harness,
        request(
            Method::PATCH,
            "/api/companies/c-1",
            r#"{"phone": "+15551234567", "email": null}"#,
        ),
        outbound(Duration::from_secs(5)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let body = json_of(&body);
    assert_eq!(body["id"], "c-1");
    assert_eq!(body["phone"], "+15551234567");
    assert_eq!(body["email"], Value::Null);
    assert_eq!(body["created_at"], "2024-05-01T06:00:00Z");

    let seen = harness.log.last();
    assert_eq!(seen.rpc, "UpdateCompany");
    let update = seen.update.unwrap();
    assert_eq!(update.id, "c-1");
    assert_eq!(update.update_mask.unwrap().paths, vec!["email", "phone"]);
    assert_eq!(
        seen.metadata.get("authorization").unwrap(),
        "Bearer internal-token"
    );
    assert_eq!(seen.metadata.get("x-request-id").unwrap(), "req-42");
    assert!(
        seen.metadata.get("grpc-timeout").is_some(),
        "the deadline is sent upstream"
    );
}

#[tokio::test]
async fn a_list_answers_a_bare_array() {
    let harness = start().await;
    let (status, _, body) = call(
        &harness,
        request(Method::GET, "/api/companies?skip=0&limit=10", ""),
        outbound(Duration::from_secs(5)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let body = json_of(&body);
    assert_eq!(body.as_array().unwrap().len(), 2);
    assert_eq!(body[1]["id"], "b");
}

#[tokio::test]
async fn upstream_not_found_is_404_with_the_services_message() {
    let harness = start().await;
    let (status, _, body) = call(
        &harness,
        request(Method::GET, "/api/companies/missing", ""),
        outbound(Duration::from_secs(5)),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let body = json_of(&body);
    assert_eq!(body["detail"], "Company not found");
    assert_eq!(body["code"], "NOT_FOUND");
}

#[tokio::test]
async fn upstream_validation_failures_keep_their_field_violations() {
    let harness = start().await;
    let (status, _, body) = call(
        &harness,
        request(
            Method::POST,
            "/api/companies",
            r#"{"name": "Acme", "email": "nope"}"#,
        ),
        outbound(Duration::from_secs(5)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body = json_of(&body);
    assert_eq!(
        body["fields"],
        json!([{"field": "email", "description": "not a valid e-mail address"}])
    );
}

#[tokio::test]
async fn internal_error_details_are_hidden_unless_exposed() {
    let harness = start().await;
    let (status, _, body) = call(
        &harness,
        request(Method::GET, "/api/companies/boom", ""),
        outbound(Duration::from_secs(5)),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!body.contains("relation"), "{body}");
    assert_eq!(json_of(&body)["error"], "An error occurred");

    let mut exposed = outbound(Duration::from_secs(5));
    exposed.expose_internal_errors = true;
    let (_, _, body) = call(
        &harness,
        request(Method::GET, "/api/companies/boom", ""),
        exposed,
    )
    .await;
    assert!(body.contains("relation"), "{body}");
}

#[tokio::test]
async fn a_slow_service_answers_504_after_the_timeout() {
    let harness = start().await;
    let started = std::time::Instant::now();
    let (status, _, body) = call(
        &harness,
        request(Method::GET, "/api/companies/slow", ""),
        outbound(Duration::from_millis(300)),
    )
    .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_eq!(json_of(&body)["code"], "DEADLINE_EXCEEDED");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn an_unreachable_or_unknown_upstream_is_503() {
    let pool = DescriptorPool::decode(director_proto::FILE_DESCRIPTOR_SET).unwrap();
    // Bind then drop a listener: nothing listens on that port any more.
    let dead = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let harness = Harness {
        api: RestApi::new(&pool).unwrap(),
        upstreams: Upstreams::new(
            vec![(
                "director.companies.v1".to_owned(),
                format!("http://{dead}").parse().unwrap(),
            )],
            Duration::from_millis(500),
            64,
            &pool,
        ),
        log: Log::default(),
    };
    let (status, _, body) = call(
        &harness,
        request(Method::GET, "/api/companies/c-1", ""),
        outbound(Duration::from_secs(5)),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        error["error"], "Service unavailable",
        "transport details stay in the logs"
    );
    let (status, _, _) = call(
        &harness,
        request(Method::GET, "/api/drivers/d-1", ""),
        outbound(Duration::from_secs(5)),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let harness = start().await;
    let big = format!(r#"{{"name": "{}"}}"#, "x".repeat(2048));
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/companies")
        // No Content-Length: the limit must hold while streaming too.
        .body(Body::from_stream(futures::stream::iter(vec![Ok::<
            _,
            std::io::Error,
        >(
            big
        )])))
        .unwrap();
    let (status, _, body) = call(&harness, request, outbound(Duration::from_secs(5))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow_and_an_unknown_path_404() {
    let harness = start().await;
    let (status, headers, body) = call(
        &harness,
        request(Method::PUT, "/api/companies/c-1", "{}"),
        outbound(Duration::from_secs(5)),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers[header::ALLOW], "GET, PATCH, DELETE");
    assert_eq!(json_of(&body)["code"], "UNIMPLEMENTED");

    let (status, _, body) = call(
        &harness,
        request(Method::GET, "/api/nope", ""),
        outbound(Duration::from_secs(5)),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json_of(&body)["detail"], "Not Found");
}

#[tokio::test]
async fn a_server_stream_is_answered_as_server_sent_events_ending_with_an_error_event() {
    let harness = start().await;
    let (status, headers, body) = call(
        &harness,
        request(Method::GET, "/api/tasks/watch", ""),
        // Shorter than the whole stream would take if it were bounded: streams are not.
        outbound(Duration::from_secs(5)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/event-stream");
    let events: Vec<&str> = body
        .split("\n\n")
        .filter(|event| !event.is_empty())
        .collect();
    assert_eq!(events.len(), 3, "{body}");

    // `event_id` is also the SSE id, so a reconnecting EventSource sends it back.
    let first = json_of(events[0].strip_prefix("id: e-1\ndata: ").unwrap());
    assert_eq!(first["event_id"], "e-1");
    assert_eq!(first["kind"], "created");
    assert_eq!(first["task"]["id"], "t-1");
    assert_eq!(first["task"]["driver_id"], Value::Null);
    assert_eq!(first["occurred_at"], Value::Null);
    let second = json_of(events[1].strip_prefix("id: e-2\ndata: ").unwrap());
    assert_eq!(second["kind"], "assigned");
    assert_eq!(second["task"]["version"], 2);

    let error = events[2].strip_prefix("event: error\ndata: ").unwrap();
    let error = json_of(error);
    assert_eq!(error["code"], "UNAVAILABLE");
    assert_eq!(error["status"], 503);
    assert_eq!(error["request_id"], "req-42");
}
