//! Background work that loses nothing and starves no one (issue 17), end to end through the
//! gateway against a scripted Vessey (a real HTTP server whose pages each test writes):
//! every collection is accounted for, a malformed one is reported while the rest import, a
//! page that is not JSON ends the job at once, the same import asked twice is one job, a
//! tenant's heavy jobs are capped, and notifications never wait behind imports.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use common::{TestStack, spawn_stack_with_fakes, token};
use director_fakes::FakeThirdParties;
use director_platform::identity::Role;
use director_store::testing::eventually;
use serde_json::{Value, json};

/// What the scripted Vessey answers for `(date, page)`: the body, served after `delay`.
type Script = Arc<dyn Fn(&str, u32) -> String + Send + Sync>;

/// A Vessey whose collections pages come from `script`, each after `delay`.
async fn scripted_vessey(script: Script, delay: Duration) -> SocketAddr {
    let collections = move |Query(query): Query<HashMap<String, String>>| {
        let script = Arc::clone(&script);
        async move {
            tokio::time::sleep(delay).await;
            let date = query.get("date").cloned().unwrap_or_default();
            let page = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
            ([("content-type", "application/json")], script(&date, page))
        }
    };
    let app = Router::new()
        .route("/v1/collections", get(collections))
        .route(
            "/v1/drivers",
            get(|| async { axum::Json(json!({"drivers": [], "next_page": null})) }),
        );
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// `count` collections of `date` in pages of `page_size`, each shaped by `shape(n)`.
fn pages(
    count: usize,
    page_size: usize,
    shape: impl Fn(usize) -> Value + Send + Sync + 'static,
) -> Script {
    Arc::new(move |date, page| {
        let page = page as usize;
        let start = (page - 1) * page_size;
        let end = (start + page_size).min(count);
        let collections: Vec<Value> = (start..end)
            .map(|n| {
                let mut collection = json!({
                    "id": format!("{date}-c{n}"),
                    "farm_id": format!("F{}", n % 5),
                    "farm_name": format!("Farm {}", n % 5),
                    "driver_id": null,
                    "scheduled_for": date,
                    "window_start": format!("{date}T05:00:00Z"),
                    "window_end": format!("{date}T06:00:00Z"),
                    "volume_liters": 1000.0,
                });
                let shaped = shape(n);
                for (key, value) in shaped.as_object().unwrap() {
                    collection[key] = value.clone();
                }
                collection
            })
            .collect();
        let next = (end < count).then_some(page + 1);
        json!({"collections": collections, "next_page": next}).to_string()
    })
}

async fn stack_with_vessey(
    vessey: SocketAddr,
    extra: &[(&str, &str)],
) -> (TestStack, FakeThirdParties) {
    let url = format!("http://{vessey}/v1");
    let mut env = vec![
        ("VESSEY_API_URL", url.as_str()),
        ("VESSEY_API_KEY", "scripted-key-123"),
    ];
    env.extend_from_slice(extra);
    spawn_stack_with_fakes(&env).await
}

async fn post(stack: &TestStack, path: &str, token: &str, body: Value) -> (u16, Value) {
    let response = stack.post(path, token, body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn import(stack: &TestStack, token: &str, date: &str) -> (u16, Value) {
    post(
        stack,
        "/api/integrations/vessey/collections:import",
        token,
        json!({"date": date}),
    )
    .await
}

/// Waits for job `id` to finish; answers its last state.
async fn finished(stack: &TestStack, token: &str, id: &str) -> Value {
    eventually("the job to finish", || async {
        let job = stack
            .get_json(&format!("/api/integrations/jobs/{id}"), Some(token))
            .await;
        matches!(job["status"].as_str(), Some("succeeded" | "dead")).then_some(job)
    })
    .await
}

/// Every task of the tenant, page by page.
async fn task_count(stack: &TestStack, token: &str) -> usize {
    let mut count = 0;
    loop {
        let page = stack
            .get_json(&format!("/api/tasks?limit=500&skip={count}"), Some(token))
            .await;
        let len = page.as_array().unwrap().len();
        count += len;
        if len < 500 {
            return count;
        }
    }
}

#[tokio::test]
async fn padded_farm_ids_lose_no_collection_and_a_malformed_one_is_reported_while_the_rest_import()
{
    // 6,000 collections; one in seven names its farm `" F3 "`.
    let padded = pages(6_000, 1_000, |n| {
        if n % 7 == 0 {
            json!({"farm_id": " F3 "})
        } else {
            json!({})
        }
    });
    // Twenty, the eighth of which has a window end that is not a time.
    let malformed = pages(20, 8, |n| {
        if n == 7 {
            json!({"window_end": "not a timestamp"})
        } else {
            json!({})
        }
    });
    let script: Script = Arc::new(move |date, page| match date {
        "2026-11-23" => padded(date, page),
        "2026-11-24" => malformed(date, page),
        _ => "this is not JSON".to_owned(),
    });
    let vessey = scripted_vessey(script, Duration::ZERO).await;
    let (stack, _fakes) = stack_with_vessey(vessey, &[]).await;
    let admin = token("accounting-co", Some(Role::Admin));

    let (status, job) = import(&stack, &admin, "2026-11-23").await;
    assert_eq!(status, 200, "{job}");
    let job = finished(&stack, &admin, job["id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        job["result"],
        json!({"created": 6000, "updated": 0, "unchanged": 0, "rejected": 0, "rejections": []}),
        "{job}"
    );
    assert_eq!(job["progress"], json!({"done": 6000, "total": 6000}));
    assert_eq!(task_count(&stack, &admin).await, 6_000);
    let companies = stack
        .get_json("/api/companies?limit=500", Some(&admin))
        .await;
    assert_eq!(companies.as_array().unwrap().len(), 5, "{companies}");

    let (_, job) = import(&stack, &admin, "2026-11-24").await;
    let job = finished(&stack, &admin, job["id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let result = &job["result"];
    assert_eq!(result["created"], 19, "{job}");
    assert_eq!(result["rejected"], 1, "{job}");
    assert_eq!(
        result["rejections"][0]["external_id"], "2026-11-24-c7",
        "{job}"
    );
    assert!(
        result["rejections"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("input"),
        "{job}"
    );
    assert_eq!(task_count(&stack, &admin).await, 6_019);

    // Importing the first day again changes nothing, and says so.
    let (_, job) = import(&stack, &admin, "2026-11-23").await;
    let job = finished(&stack, &admin, job["id"].as_str().unwrap()).await;
    assert_eq!(job["result"]["unchanged"], 6000, "{job}");

    // A page that is not JSON ends the job at once, with the reason.
    let started = Instant::now();
    let (_, job) = import(&stack, &admin, "2026-11-25").await;
    let job = finished(&stack, &admin, job["id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "dead", "{job}");
    assert_eq!(job["attempts"], 1, "{job}");
    assert!(
        job["last_error"]
            .as_str()
            .unwrap()
            .contains("unexpected answer"),
        "{job}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn the_same_import_asked_twice_is_one_job_and_a_tenant_holds_few_heavy_jobs() {
    let script = pages(5, 5, |_| json!({}));
    let vessey = scripted_vessey(script, Duration::from_secs(2)).await;
    let (stack, _fakes) = stack_with_vessey(vessey, &[("MAX_ACTIVE_JOBS_PER_TENANT", "3")]).await;
    let admin = token("eager-co", Some(Role::Admin));

    let (first, second) = tokio::join!(
        import(&stack, &admin, "2026-12-01"),
        import(&stack, &admin, "2026-12-01")
    );
    assert_eq!(first.0, 200, "{first:?}");
    assert_eq!(second.0, 200, "{second:?}");
    assert_eq!(first.1["id"], second.1["id"]);
    let (status, third) = import(&stack, &admin, "2026-12-01").await;
    assert_eq!(status, 200);
    assert_eq!(third["id"], first.1["id"]);

    for date in ["2026-12-02", "2026-12-03"] {
        let (status, body) = import(&stack, &admin, date).await;
        assert_eq!(status, 200, "{body}");
    }
    let response = stack
        .post(
            "/api/integrations/vessey/collections:import",
            &admin,
            json!({"date": "2026-12-04"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("MAX_ACTIVE_JOBS_PER_TENANT"),
        "{body}"
    );
    // Another tenant is not held to this one's jobs.
    let other = token("patient-co", Some(Role::Admin));
    let (status, body) = import(&stack, &other, "2026-12-04").await;
    assert_eq!(status, 200, "{body}");

    // Once the first has finished, the same day is a new job again.
    let done = finished(&stack, &admin, first.1["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let (status, again) = import(&stack, &admin, "2026-12-01").await;
    assert_eq!(status, 200, "{again}");
    assert_ne!(again["id"], first.1["id"]);
}

#[tokio::test]
async fn another_tenants_sms_does_not_wait_behind_one_tenants_imports() {
    // Every page takes 5 s: twelve imports would hold every worker for a minute.
    let script = pages(10, 10, |_| json!({}));
    let vessey = scripted_vessey(script, Duration::from_secs(5)).await;
    let (stack, fakes) = stack_with_vessey(vessey, &[("MAX_ACTIVE_JOBS_PER_TENANT", "12")]).await;
    let busy = token("busy-co", Some(Role::Dispatcher));
    for day in 1..=12 {
        let (status, body) = import(&stack, &busy, &format!("2026-10-{day:02}")).await;
        assert_eq!(status, 200, "{body}");
    }
    // Let the imports take the workers.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let other = token("quiet-co", Some(Role::Admin));
    let asked = Instant::now();
    let (status, body) = post(
        &stack,
        "/api/integrations/notifications/sms",
        &other,
        json!({"to": "+15550100001", "message": "your pickup is ready"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    eventually("the SMS at the fake", || async {
        (!fakes.twilio.received().is_empty()).then_some(())
    })
    .await;
    let waited = asked.elapsed();
    assert!(waited < Duration::from_secs(2), "the SMS waited {waited:?}");

    // One import of the busy tenant runs at a time; another tenant's starts at once.
    let busy_jobs = stack
        .get_json("/api/integrations/jobs?limit=50", Some(&busy))
        .await;
    let running = busy_jobs
        .as_array()
        .unwrap()
        .iter()
        .filter(|job| job["status"] == "running")
        .count();
    assert_eq!(running, 1, "{busy_jobs}");
    let (status, theirs) = import(&stack, &other, "2026-10-01").await;
    assert_eq!(status, 200, "{theirs}");
    let id = theirs["id"].as_str().unwrap().to_owned();
    eventually("the other tenant's import to start", || async {
        let job = stack
            .get_json(&format!("/api/integrations/jobs/{id}"), Some(&other))
            .await;
        (job["status"] != "queued").then_some(())
    })
    .await;
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "{:?}",
        asked.elapsed()
    );
}

#[tokio::test]
async fn an_import_texts_each_driver_it_gave_collections_one_summary_once() {
    let (stack, fakes) = spawn_stack_with_fakes(&[]).await;
    let admin = token("summary-co", Some(Role::Admin));
    let (status, sync) = post(
        &stack,
        "/api/integrations/vessey/drivers:sync",
        &admin,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{sync}");
    let sync = finished(&stack, &admin, sync["id"].as_str().unwrap()).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");

    let (_, job) = import(&stack, &admin, "2026-11-23").await;
    let job = finished(&stack, &admin, job["id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(job["result"].get("assignments").is_none(), "{job}");

    // The sample assigns four collections each to drivers 1 to 4: only 2 has a +1 phone
    // (1's has no country code, so Dispatch keeps none), 3 has a +44 one (not the sender's
    // calling code), 4 none. Four collections, one message.
    eventually("the driver's summary", || async {
        (!fakes.twilio.received().is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let texts = fakes.twilio.received();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert_eq!(texts[0].form_field("To"), Some("+15550100002"));
    assert_eq!(
        texts[0].form_field("Body"),
        Some(
            "4 collections assigned to you on 2026-11-23. First pickup: Collection at \
             Meadowbrook Dairy at 04:30 UTC."
        )
    );
    let refused = stack
        .get_json(
            "/api/integrations/notifications?status=refused",
            Some(&admin),
        )
        .await;
    let refused = refused.as_array().unwrap();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0]["last_error"].as_str().unwrap().contains("+44"),
        "{refused:?}"
    );

    // The same day again assigns nothing new: nobody is texted again.
    let (_, again) = import(&stack, &admin, "2026-11-23").await;
    let again = finished(&stack, &admin, again["id"].as_str().unwrap()).await;
    assert_eq!(again["status"], "succeeded", "{again}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fakes.twilio.received().len(), 1);
}

#[tokio::test]
async fn a_task_created_with_a_driver_texts_the_driver_as_assign_does() {
    let (stack, fakes) = spawn_stack_with_fakes(&[]).await;
    let admin = token("direct-co", Some(Role::Admin));
    let company = stack.create_company(&admin, json!({"name": "Farm"})).await;
    let driver = stack
        .create_driver(&admin, json!({"name": "Ann", "phone": "+15550100042"}))
        .await;
    let (status, task) = post(
        &stack,
        "/api/tasks",
        &admin,
        json!({"company_id": company["id"], "title": "Morning", "scheduled_for": "2026-12-07",
               "driver_id": driver["id"]}),
    )
    .await;
    assert_eq!(status, 200, "{task}");
    assert_eq!(task["status"], "assigned", "{task}");
    let texts = eventually("the driver's SMS", || async {
        let texts = fakes.twilio.received();
        (!texts.is_empty()).then_some(texts)
    })
    .await;
    assert_eq!(texts[0].form_field("To"), Some("+15550100042"));
    assert_eq!(
        texts[0].form_field("Body"),
        Some("New collection assigned to you: Morning on 2026-12-07.")
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(fakes.twilio.received().len(), 1);
}
