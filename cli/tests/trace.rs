//! One trace across the whole stack, as `director up` runs it with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` set: a `POST /api/tasks` carrying a `traceparent` continues
//! that trace through the gateway, Dispatch's `CreateTask`, its `GetCompany` call to Companies
//! and their SQL statements, each span under its own service's `service.name` although all
//! run in one process; the relay job an assignment queues runs in a consumer span of its own
//! trace, linked to the request that queued it. A real OTLP/gRPC receiver collects the spans.
//!
//! Its own test binary, with one test: telemetry installs process-wide state once.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{spawn_stack, token};
use director_platform::config::{CommonConfig, Env};
use director_platform::telemetry;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::json;

const CREATE_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const ASSIGN_TRACE: &str = "5c0a93a688c45eb7b4df03ae1f1f5847";
const BROWSER_SPAN: &str = "00f067aa0ba902b7";

/// One received span, flattened.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    kind: SpanKind,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: HashMap<String, String>,
    /// Trace ids of the spans it links to.
    linked_traces: Vec<String>,
}

/// An OTLP trace receiver keeping every span it is sent.
#[derive(Debug, Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Received>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = Vec::new();
        for resource_spans in request.into_inner().resource_spans {
            let resource = resource_spans
                .resource
                .map(|resource| attributes(&resource.attributes))
                .unwrap_or_default();
            let service = resource.get("service.name").cloned().unwrap_or_default();
            for span in resource_spans
                .scope_spans
                .into_iter()
                .flat_map(|scope| scope.spans)
            {
                received.push(Received {
                    service: service.clone(),
                    kind: span.kind(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    attributes: attributes(&span.attributes),
                    linked_traces: span.links.iter().map(|link| hex(&link.trace_id)).collect(),
                });
            }
        }
        self.spans.lock().unwrap().extend(received);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn attributes(
    pairs: &[opentelemetry_proto::tonic::common::v1::KeyValue],
) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|pair| {
            let value = match pair.value.as_ref().and_then(|value| value.value.as_ref()) {
                Some(AnyValue::StringValue(text)) => text.clone(),
                Some(AnyValue::IntValue(number)) => number.to_string(),
                Some(AnyValue::BoolValue(flag)) => flag.to_string(),
                other => format!("{other:?}"),
            };
            (pair.key.clone(), value)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

async fn start_collector() -> (String, Collector) {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(collector.clone()))
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
    tokio::spawn(server);
    (url, collector)
}

/// Waits (the batch exporter sends every few seconds) until `done` holds for what was
/// received; fails listing what arrived.
async fn wait_for(collector: &Collector, what: &str, done: impl Fn(&[Received]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let spans = collector.spans.lock().unwrap().clone();
        if done(&spans) {
            return;
        }
        if Instant::now() > deadline {
            let summary: Vec<String> = spans
                .iter()
                .map(|span| {
                    format!(
                        "{} {} {:?} trace {} parent {}",
                        span.service, span.name, span.kind, span.trace_id, span.parent_span_id
                    )
                })
                .collect();
            panic!("no {what} after 30 s; received:\n{}", summary.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn traceparent(trace: &str) -> String {
    format!("00-{trace}-{BROWSER_SPAN}-01")
}

fn is_server_span(span: &Received, service: &str, rpc: &str) -> bool {
    span.service == service && span.kind == SpanKind::Server && span.name.ends_with(rpc)
}

fn is_sql_span(span: &Received, service: &str) -> bool {
    span.service == service
        && span.kind == SpanKind::Client
        && span.attributes.get("db.system.name").map(String::as_str) == Some("postgresql")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_one_trace_across_every_service_and_its_job_links_to_it() {
    let (collector_url, collector) = start_collector().await;
    // As `director up` does: the process is `director`, its services report their own names.
    let common = CommonConfig::from_env(
        &Env::from_pairs([("OTEL_EXPORTER_OTLP_ENDPOINT", collector_url.as_str())]),
        "director",
    )
    .unwrap();
    let guard = telemetry::init(&common.telemetry).unwrap();
    assert!(format!("{guard:?}").contains("active: true"), "{guard:?}");

    let app = spawn_stack().await;
    let t = token("tenant-traced", None);
    let company = app.create_company(&t, json!({"name": "Traced Farm"})).await;
    let created = app
        .post(
            "/api/tasks",
            &t,
            json!({"company_id": company["id"], "title": "Collect", "scheduled_for": "2026-12-01"}),
        )
        .header("traceparent", traceparent(CREATE_TRACE))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let task: serde_json::Value = created.json().await.unwrap();

    wait_for(&collector, "trace of POST /api/tasks", |spans| {
        let trace: Vec<&Received> = spans
            .iter()
            .filter(|span| span.trace_id == CREATE_TRACE)
            .collect();
        trace
            .iter()
            .any(|s| is_server_span(s, "director-companies", "/GetCompany"))
            && trace.iter().any(|s| is_sql_span(s, "director-companies"))
            && trace.iter().any(|s| is_sql_span(s, "director-dispatch"))
    })
    .await;
    let spans = collector.spans.lock().unwrap().clone();
    let trace: Vec<&Received> = spans
        .iter()
        .filter(|span| span.trace_id == CREATE_TRACE)
        .collect();
    let one = |what: &str, matches: &dyn Fn(&Received) -> bool| -> Received {
        let found: Vec<&&Received> = trace.iter().filter(|span| matches(span)).collect();
        assert_eq!(found.len(), 1, "one {what} in {trace:#?}");
        (*found[0]).clone()
    };

    // The browser's span is the gateway's parent; each hop is the parent of the next.
    let gateway = one("gateway request", &|span| {
        span.service == "director-gateway"
            && span.kind == SpanKind::Server
            && span.name == "POST /api/tasks"
    });
    assert_eq!(gateway.parent_span_id, BROWSER_SPAN);
    assert_eq!(gateway.attributes["http.route"], "/api/tasks");
    assert_eq!(gateway.attributes["http.response.status_code"], "200");
    let create_task = one("CreateTask", &|span| {
        is_server_span(span, "director-dispatch", "/CreateTask")
    });
    assert_eq!(create_task.parent_span_id, gateway.span_id);
    let get_company_call = one("GetCompany call", &|span| {
        span.service == "director-dispatch"
            && span.kind == SpanKind::Client
            && span.name.ends_with("/GetCompany")
    });
    assert_eq!(get_company_call.parent_span_id, create_task.span_id);
    let get_company = one("GetCompany", &|span| {
        is_server_span(span, "director-companies", "/GetCompany")
    });
    assert_eq!(get_company.parent_span_id, get_company_call.span_id);

    // SQL statements are client spans of the service that ran them, inside its server span,
    // naming the database and the operation but never the SQL text.
    for (service, server_span) in [
        ("director-dispatch", &create_task),
        ("director-companies", &get_company),
    ] {
        let sql: Vec<&&Received> = trace
            .iter()
            .filter(|span| is_sql_span(span, service))
            .collect();
        assert!(!sql.is_empty(), "no SQL span of {service}");
        for span in sql {
            assert_eq!(span.parent_span_id, server_span.span_id, "{span:#?}");
            let database = &span.attributes["db.namespace"];
            assert!(
                database.starts_with(&format!("test_e2e_{}", &service["director-".len()..])),
                "{database}"
            );
            assert!(span.attributes.contains_key("db.operation.name"));
            assert!(!span.attributes.contains_key("db.query.text"));
        }
    }
    for span in &trace {
        assert!(
            [
                "director-gateway",
                "director-dispatch",
                "director-companies"
            ]
            .contains(&span.service.as_str()),
            "{span:#?}"
        );
        assert!(
            !span.attributes.contains_key("service.name"),
            "service.name is the resource's, not a span attribute: {span:#?}"
        );
    }

    // Assigning queues the relay job; its span is in a trace of its own, linked to the
    // assignment's.
    let driver: serde_json::Value = app
        .post(
            "/api/drivers",
            &t,
            json!({"name": "Ann", "phone": "+1 555 010 0001"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let assigned = app
        .post(
            &format!("/api/tasks/{}/assign", task["id"].as_str().unwrap()),
            &t,
            json!({"driver_id": driver["id"]}),
        )
        .header("traceparent", traceparent(ASSIGN_TRACE))
        .send()
        .await
        .unwrap();
    assert_eq!(assigned.status(), 200);
    wait_for(
        &collector,
        "relay job span linked to the assignment",
        |spans| {
            spans.iter().any(|span| {
                span.name == "dispatch_relay_task_events"
                    && span.service == "director-dispatch"
                    && span.kind == SpanKind::Consumer
                    && span.trace_id != ASSIGN_TRACE
                    && span.linked_traces.iter().any(|trace| trace == ASSIGN_TRACE)
            })
        },
    )
    .await;

    let spans = collector.spans.lock().unwrap().clone();
    // The queue's own spans (polling, claiming, completing) are not exported: the job's span
    // is the root of its trace.
    let job = spans
        .iter()
        .find(|span| span.name == "dispatch_relay_task_events")
        .unwrap();
    assert_eq!(job.parent_span_id, "", "{job:#?}");
    assert!(
        spans.iter().all(|span| span.service != "director"),
        "{spans:#?}"
    );
    // Personal data stays out of span attributes.
    for span in &spans {
        for value in span.attributes.values() {
            assert!(
                !value.contains("555 010 0001")
                    && !value.contains("5550100001")
                    && !value.contains(&t),
                "a phone number or token in {span:#?}"
            );
        }
    }

    app.stack.stop().await.unwrap();
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();
}
