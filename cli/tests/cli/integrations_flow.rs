//! Integrations end to end, as a user tries them: the whole stack behind the gateway, pointed
//! at real HTTP fakes of Vessey, Slack and Twilio (what `director up --fakes` runs).
//!
//! Driver sync and collections import finish as jobs with the right results and change
//! nothing when run again; SMS and Slack messages sent through the API reach the fakes and
//! are logged; assigning a task texts its driver once and completing it posts to Slack; jobs
//! that keep failing go dead with their error; service-to-service RPCs cannot be reached
//! through the gateway.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use common::{TestStack, spawn_stack_with_fakes, token};
use director_fakes::FakeThirdParties;
use director_platform::identity::Role;
use director_store::testing::{PATIENCE, eventually};
use serde_json::{Value, json};

/// A day the sample data has collections for (it has them for any day).
const DAY: &str = "2026-11-23";

struct App {
    stack: TestStack,
    fakes: FakeThirdParties,
}

/// The stack pointed at fresh fakes ([`spawn_stack_with_fakes`]).
async fn spawn_app(extra: &[(&str, &str)]) -> App {
    let (stack, fakes) = spawn_stack_with_fakes(extra).await;
    App { stack, fakes }
}

impl App {
    async fn post_json(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let response = self.stack.post(path, token, body).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get_json(&self, path: &str, token: &str) -> (u16, Value) {
        let response = self.stack.get(path, token).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Starts a job with `path` and waits until it is finished; answers its last state.
    async fn run_job(&self, path: &str, token: &str, body: Value) -> Value {
        let (status, job) = self.post_json(path, token, body).await;
        assert_eq!(status, 200, "{job}");
        assert_eq!(job["status"], "queued", "{job}");
        let id = job["id"].as_str().unwrap().to_owned();
        eventually("the job to finish", || async {
            let (_, job) = self
                .get_json(&format!("/api/integrations/jobs/{id}"), token)
                .await;
            matches!(job["status"].as_str(), Some("succeeded" | "dead")).then_some(job)
        })
        .await
    }

    async fn list(&self, path: &str, token: &str) -> Vec<Value> {
        let (status, body) = self.get_json(path, token).await;
        assert_eq!(status, 200, "{body}");
        body.as_array().unwrap().clone()
    }
}

#[tokio::test]
async fn the_configuration_is_reported_without_secrets_and_a_vessey_driver_is_fetched() {
    let app = spawn_app(&[]).await;
    let admin = token("acme", None);

    let (status, body) = app.get_json("/api/integrations", &admin).await;
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|integration| {
            assert_eq!(integration["configured"], true, "{integration}");
            integration["name"].as_str().unwrap()
        })
        .collect();
    assert_eq!(names, ["vessey", "slack", "twilio"]);
    let text = body.to_string();
    for (variable, value) in app.fakes.env() {
        if variable.ends_with("_KEY") || variable.ends_with("_TOKEN") {
            assert!(!text.contains(&value), "{variable} leaked: {text}");
        }
    }

    let (status, driver) = app
        .get_json("/api/integrations/vessey/drivers/1", &admin)
        .await;
    assert_eq!(status, 200, "{driver}");
    assert_eq!(driver["id"], "1");
    assert!(driver["name"].is_string());

    let (status, _) = app
        .get_json(
            "/api/integrations/vessey/drivers/nobody-has-this-id",
            &admin,
        )
        .await;
    assert_eq!(status, 404);

    let driver_token = token("acme", Some(Role::Driver));
    let (status, _) = app.get_json("/api/integrations", &driver_token).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn vessey_5xx_bursts_and_429s_are_ridden_out_but_400s_and_foreign_redirects_are_not() {
    let app = spawn_app(&[]).await;
    let admin = token("acme", None);
    let vessey_calls = |id: &str| {
        let path = format!("/drivers/{id}");
        app.fakes
            .vessey
            .received()
            .iter()
            .filter(|request| request.path == path)
            .count()
    };

    let (status, driver) = app
        .get_json("/api/integrations/vessey/drivers/flaky", &admin)
        .await;
    assert_eq!(status, 200, "{driver}");
    assert_eq!(vessey_calls("flaky"), 3, "two 503s, then the answer");

    let (status, driver) = app
        .get_json("/api/integrations/vessey/drivers/rate-limited", &admin)
        .await;
    assert_eq!(status, 200, "{driver}");
    assert_eq!(vessey_calls("rate-limited"), 2);

    let (status, body) = app
        .get_json("/api/integrations/vessey/drivers/bad-request", &admin)
        .await;
    assert!(status >= 400 && status != 503, "{status} {body}");
    assert_eq!(vessey_calls("bad-request"), 1, "a 400 is never retried");

    let (status, body) = app
        .get_json("/api/integrations/vessey/drivers/redirect", &admin)
        .await;
    assert!(status >= 400, "{status} {body}");
    assert_eq!(
        vessey_calls("1"),
        0,
        "the redirect to another host was not followed"
    );
}

#[tokio::test]
async fn driver_sync_and_collections_import_finish_as_jobs_and_running_them_again_changes_nothing()
{
    let app = spawn_app(&[]).await;
    let admin = token("acme", None);
    let data = director_fakes::VesseyData::sample();
    let vessey_drivers = data.all_drivers();
    let collections = data.all_collections(DAY.parse().unwrap());

    let job = app
        .run_job("/api/integrations/vessey/drivers:sync", &admin, json!({}))
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["kind"], "vessey_driver_sync");
    let count = i64::try_from(vessey_drivers.len()).unwrap();
    assert_eq!(job["progress"], json!({"done": count, "total": count}));
    let drivers = app.list("/api/drivers", &admin).await;
    assert_eq!(drivers.len(), vessey_drivers.len());
    for vessey in &vessey_drivers {
        let driver = drivers
            .iter()
            .find(|driver| driver["external_id"] == vessey.id.as_str())
            .unwrap_or_else(|| panic!("driver {} was not synced", vessey.id));
        let expected = if vessey.active { "active" } else { "inactive" };
        assert_eq!(driver["status"], expected, "{driver}");
    }

    let job = app
        .run_job(
            "/api/integrations/vessey/collections:import",
            &admin,
            json!({"date": DAY}),
        )
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let count = i64::try_from(collections.len()).unwrap();
    assert_eq!(job["progress"], json!({"done": count, "total": count}));
    let tasks = app.list("/api/tasks?limit=500", &admin).await;
    assert_eq!(tasks.len(), collections.len());
    let companies = app.list("/api/companies?limit=500", &admin).await;
    let mut farms: Vec<&str> = collections.iter().map(|c| c.farm_id.as_str()).collect();
    farms.sort_unstable();
    farms.dedup();
    assert_eq!(companies.len(), farms.len(), "one company per farm");
    for collection in &collections {
        let task = tasks
            .iter()
            .find(|task| task["external_id"] == collection.id.as_str())
            .unwrap_or_else(|| panic!("collection {} was not imported", collection.id));
        let company = companies
            .iter()
            .find(|company| company["id"] == task["company_id"])
            .unwrap();
        assert_eq!(company["external_id"], collection.farm_id.as_str());
        let driver = collection.driver_id.as_ref().and_then(|id| {
            drivers
                .iter()
                .find(|driver| driver["external_id"] == id.as_str())
        });
        match driver {
            Some(driver) => {
                assert_eq!(task["status"], "assigned", "{task}");
                assert_eq!(task["driver_id"], driver["id"], "{task}");
            }
            None => assert_eq!(task["status"], "pending", "{task}"),
        }
    }

    // Again: the same jobs succeed and change nothing.
    let job = app
        .run_job("/api/integrations/vessey/drivers:sync", &admin, json!({}))
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let job = app
        .run_job(
            "/api/integrations/vessey/collections:import",
            &admin,
            json!({"date": DAY}),
        )
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(app.list("/api/drivers", &admin).await, drivers);
    assert_eq!(app.list("/api/tasks?limit=500", &admin).await, tasks);
    assert_eq!(
        app.list("/api/companies?limit=500", &admin).await,
        companies
    );

    let jobs = app.list("/api/integrations/jobs", &admin).await;
    assert_eq!(jobs.len(), 4, "every job is listed, newest first");
    assert_eq!(jobs[0]["kind"], "vessey_collection_import");
    // Another tenant sees none of it.
    let other = token("globex", None);
    assert!(app.list("/api/integrations/jobs", &other).await.is_empty());
    let (status, _) = app
        .get_json(
            &format!("/api/integrations/jobs/{}", jobs[0]["id"].as_str().unwrap()),
            &other,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_job_whose_vessey_keeps_failing_goes_dead_after_its_last_attempt_with_the_error() {
    let app = spawn_app(&[("JOB_MAX_ATTEMPTS", "2")]).await;
    let admin = token("acme", None);
    app.fakes.vessey.fail_next(1000, axum_status(503));
    let job = app
        .run_job("/api/integrations/vessey/drivers:sync", &admin, json!({}))
        .await;
    assert_eq!(job["status"], "dead", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    let error = job["last_error"].as_str().unwrap();
    assert!(error.contains("Vessey"), "{error}");
    let dead = app.list("/api/integrations/jobs?status=dead", &admin).await;
    assert_eq!(dead.len(), 1);
}

fn axum_status(code: u16) -> http::StatusCode {
    http::StatusCode::from_u16(code).unwrap()
}

#[tokio::test]
async fn a_job_is_followed_as_server_sent_events_until_it_is_finished() {
    let app = spawn_app(&[]).await;
    let admin = token("acme", None);
    let (status, job) = app
        .post_json("/api/integrations/vessey/drivers:sync", &admin, json!({}))
        .await;
    assert_eq!(status, 200, "{job}");
    let response = app
        .stack
        .get(
            &format!(
                "/api/integrations/jobs/{}/watch",
                job["id"].as_str().unwrap()
            ),
            &admin,
        )
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The stream ends by itself once the job is finished.
    let body = tokio::time::timeout(PATIENCE, response.text())
        .await
        .expect("the stream did not end")
        .unwrap();
    let states: Vec<Value> = body
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|data| serde_json::from_str(data.trim()).unwrap())
        .collect();
    let last = states.last().unwrap();
    assert_eq!(last["job"]["status"], "succeeded", "{body}");
    assert_eq!(last["job"]["id"], job["id"]);
}

#[tokio::test]
async fn an_sms_and_a_slack_message_sent_through_the_api_reach_the_providers_and_are_logged() {
    let app = spawn_app(&[]).await;
    let admin = token("acme", None);

    let (status, sms) = app
        .post_json(
            "/api/integrations/notifications/sms",
            &admin,
            json!({"to": "+1 (555) 010-0001", "message": "Collection at 7"}),
        )
        .await;
    assert_eq!(status, 200, "{sms}");
    assert_eq!(sms["channel"], "sms");
    assert_eq!(sms["recipient"], "+15550100001");
    assert_eq!(sms["status"], "queued");

    let (status, slack) = app
        .post_json(
            "/api/integrations/notifications/slack",
            &admin,
            json!({"text": "Tanker 3 is back", "channel": "#dispatch"}),
        )
        .await;
    assert_eq!(status, 200, "{slack}");

    let log = eventually("both messages to be sent", || async {
        let log = app.list("/api/integrations/notifications", &admin).await;
        log.iter()
            .all(|notification| notification["status"] == "sent")
            .then_some(log)
    })
    .await;
    assert_eq!(log.len(), 2);
    let sent_sms = log.iter().find(|n| n["channel"] == "sms").unwrap();
    assert!(
        sent_sms["provider_id"].as_str().unwrap().starts_with("SM"),
        "{sent_sms}"
    );

    let twilio = app.fakes.twilio.received();
    assert_eq!(twilio.len(), 1);
    assert_eq!(twilio[0].form_field("To"), Some("+15550100001"));
    assert_eq!(twilio[0].form_field("Body"), Some("Collection at 7"));
    assert_eq!(
        twilio[0].form_field("From"),
        Some(director_fakes::DEFAULT_TWILIO_FROM_NUMBER)
    );
    let posted = app.fakes.slack.received();
    assert_eq!(posted.len(), 1);
    assert_eq!(
        posted[0].json().unwrap(),
        json!({"text": "Tanker 3 is back", "channel": "#dispatch"})
    );

    // Bad input is refused and queues nothing.
    for body in [
        json!({"to": "555-0100", "message": "hi"}),
        json!({"to": "+15550100001", "message": "   "}),
        json!({"to": "+15550100001", "message": "x".repeat(1601)}),
    ] {
        let (status, answer) = app
            .post_json("/api/integrations/notifications/sms", &admin, body)
            .await;
        assert_eq!(status, 400, "{answer}");
    }
    let (status, _) = app
        .post_json(
            "/api/integrations/notifications/slack",
            &admin,
            json!({"text": ""}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        app.list("/api/integrations/notifications", &admin)
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn sending_without_twilio_credentials_is_a_precondition_failure_naming_the_variable() {
    let app = spawn_app(&[("TWILIO_AUTH_TOKEN", "")]).await;
    let admin = token("acme", None);
    let (status, body) = app
        .post_json(
            "/api/integrations/notifications/sms",
            &admin,
            json!({"to": "+15550100001", "message": "hi"}),
        )
        .await;
    assert_eq!(status, 412, "{body}");
    assert!(body.to_string().contains("TWILIO_AUTH_TOKEN"), "{body}");
    let (_, state) = app.get_json("/api/integrations", &admin).await;
    let twilio = &state["integrations"][2];
    assert_eq!(twilio["configured"], false);
    assert_eq!(twilio["missing"], json!(["TWILIO_AUTH_TOKEN"]));
}

#[tokio::test]
async fn assigning_a_task_texts_its_driver_once_and_completing_it_posts_to_slack() {
    let app = spawn_app(&[]).await;
    let admin = token("acme", None);
    let company = app
        .stack
        .create_company(&admin, json!({"name": "Brookside Dairy"}))
        .await;
    let (status, driver) = app
        .post_json(
            "/api/drivers",
            &admin,
            json!({"name": "Ada", "phone": "+15550100042"}),
        )
        .await;
    assert_eq!(status, 200, "{driver}");
    let (status, task) = app
        .post_json(
            "/api/tasks",
            &admin,
            json!({"company_id": company["id"], "title": "Morning pickup", "scheduled_for": DAY}),
        )
        .await;
    assert_eq!(status, 200, "{task}");
    let task_path = format!("/api/tasks/{}", task["id"].as_str().unwrap());

    let (status, _) = app
        .post_json(
            &format!("{task_path}/assign"),
            &admin,
            json!({"driver_id": driver["id"]}),
        )
        .await;
    assert_eq!(status, 200);
    let texts = eventually("the driver's SMS", || async {
        let texts = app.fakes.twilio.received();
        (!texts.is_empty()).then_some(texts)
    })
    .await;
    assert_eq!(texts[0].form_field("To"), Some("+15550100042"));
    assert!(
        texts[0]
            .form_field("Body")
            .unwrap()
            .contains("Morning pickup"),
        "{:?}",
        texts[0].form_field("Body")
    );

    for step in ["start", "complete"] {
        let (status, body) = app
            .post_json(&format!("{task_path}/{step}"), &admin, json!({}))
            .await;
        assert_eq!(status, 200, "{step}: {body}");
    }
    let posts = eventually("the Slack message", || async {
        let posts = app.fakes.slack.received();
        (!posts.is_empty()).then_some(posts)
    })
    .await;
    let text = posts[0].json().unwrap()["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains("Morning pickup"), "{text}");
    assert!(text.contains("Brookside Dairy"), "{text}");

    // Nothing is sent twice, even after the relay had time to run again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(app.fakes.twilio.received().len(), 1);
    assert_eq!(app.fakes.slack.received().len(), 1);
    let log = app.list("/api/integrations/notifications", &admin).await;
    assert_eq!(log.len(), 2, "{log:?}");
}

#[tokio::test]
async fn service_to_service_rpcs_cannot_be_reached_through_the_gateway_whatever_the_role() {
    use director_proto::internal::companies::EnsureCompaniesRequest;
    use director_proto::internal::companies::companies_internal_service_client::CompaniesInternalServiceClient;
    use director_proto::internal::dispatch::UpsertTasksRequest;
    use director_proto::internal::dispatch::dispatch_internal_service_client::DispatchInternalServiceClient;
    use director_proto::internal::integrations::DeliverTaskEventsRequest;
    use director_proto::internal::integrations::task_event_sink_service_client::TaskEventSinkServiceClient;
    use tonic::transport::Channel;

    let app = spawn_app(&[]).await;
    let gateway = Channel::from_shared(app.stack.base.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let bearer = |token: &str, request: &mut tonic::metadata::MetadataMap| {
        request.insert("authorization", format!("Bearer {token}").parse().unwrap());
    };
    for role in [None, Some(Role::Dispatcher), Some(Role::Driver)] {
        let token = token("acme", role);
        let mut request = tonic::Request::new(UpsertTasksRequest { tasks: vec![] });
        bearer(&token, request.metadata_mut());
        let status = DispatchInternalServiceClient::new(gateway.clone())
            .upsert_tasks(request)
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            tonic::Code::Unimplemented,
            "{role:?}: {status:?}"
        );

        let mut request = tonic::Request::new(EnsureCompaniesRequest { companies: vec![] });
        bearer(&token, request.metadata_mut());
        let status = CompaniesInternalServiceClient::new(gateway.clone())
            .ensure_companies(request)
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            tonic::Code::Unimplemented,
            "{role:?}: {status:?}"
        );

        let mut request = tonic::Request::new(DeliverTaskEventsRequest { events: vec![] });
        bearer(&token, request.metadata_mut());
        let status = TaskEventSinkServiceClient::new(gateway.clone())
            .deliver_task_events(request)
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            tonic::Code::Unimplemented,
            "{role:?}: {status:?}"
        );

        // Nor as REST or gRPC-Web paths.
        let response = app
            .stack
            .http
            .post(
                app.stack
                    .url("/director.dispatch.internal.v1.DispatchInternalService/UpsertTasks"),
            )
            .bearer_auth(&token)
            .header("content-type", "application/grpc-web+proto")
            .body(vec![0_u8, 0, 0, 0, 0])
            .send()
            .await
            .unwrap();
        let grpc_status = response
            .headers()
            .get("grpc-status")
            .map(|value| value.to_str().unwrap().to_owned());
        assert!(
            response.status() == 404 || grpc_status.as_deref() == Some("12"),
            "{role:?}: {} {grpc_status:?}",
            response.status()
        );
    }

    // The services themselves do serve them, to other services: the refusal above is the
    // gateway's, not a missing implementation.
    let dispatch = Channel::from_shared(format!(
        "http://{}",
        app.stack.stack.service_addr("dispatch").unwrap()
    ))
    .unwrap()
    .connect()
    .await
    .unwrap();
    let internal = director::token::internal_token(
        &director_platform::config::Env::from_pairs(app.stack.env.clone()),
        &director::token::TokenRequest {
            subject: "service:test".to_owned(),
            tenant: Some("acme".to_owned()),
            role: Some(Role::Admin),
            ttl: Duration::from_secs(60),
        },
    )
    .unwrap();
    let mut request = tonic::Request::new(UpsertTasksRequest { tasks: vec![] });
    bearer(&internal, request.metadata_mut());
    let status = DispatchInternalServiceClient::new(dispatch)
        .upsert_tasks(request)
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
}

#[tokio::test]
async fn the_sync_command_follows_its_job_to_success_and_fails_when_the_job_dies() {
    use director::jobs::{GatewayTarget, JobRequest, run};

    let app = spawn_app(&[("JOB_MAX_ATTEMPTS", "1")]).await;
    let target = GatewayTarget {
        url: app.stack.base.clone(),
        token: token("acme", None),
    };
    let job = run(&target, JobRequest::SyncDrivers).await.unwrap();
    assert_eq!(
        job.status,
        director_proto::integrations::JobStatus::Succeeded as i32
    );
    let drivers = i32::try_from(director_fakes::VesseyData::sample().all_drivers().len()).unwrap();
    assert_eq!(job.progress.unwrap().done, drivers);

    app.fakes.vessey.fail_next(1000, axum_status(500));
    let error = run(&target, JobRequest::SyncDrivers).await.unwrap_err();
    assert!(
        error.to_string().contains("failed after 1 attempts"),
        "{error:#}"
    );

    let error = run(
        &target,
        JobRequest::ImportCollections {
            date: "23/11/2026".to_owned(),
        },
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("date"), "{error:#}");
}
