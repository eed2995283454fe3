//! The fakes over real HTTP: their answers, their records, and every failure mode.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant, SystemTime};

use axum::http::StatusCode;
use director_fakes::{
    DEFAULT_TWILIO_ACCOUNT_SID, DEFAULT_TWILIO_AUTH_TOKEN, DEFAULT_VESSEY_API_KEY, FakeAddrs,
    FakeServer, FakeSlack, FakeThirdParties, FakeTwilio, FakeVessey, GeneratedSpec, RetryAfter,
    VesseyData,
};
use serde_json::Value;
use tokio::net::TcpListener;

async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

async fn vessey() -> FakeServer {
    FakeVessey::sample().start(listener().await).unwrap()
}

/// A client that does not follow redirects, so the fakes' 302s are visible.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get(server: &FakeServer, path_and_query: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path_and_query}", server.url()))
        .bearer_auth(DEFAULT_VESSEY_API_KEY)
        .send()
        .await
        .unwrap()
}

async fn get_json(server: &FakeServer, path_and_query: &str) -> (StatusCode, Value) {
    let response = get(server, path_and_query).await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn vessey_serves_a_driver_and_404s_an_unknown_one() {
    let vessey = vessey().await;
    let (status, driver) = get_json(&vessey, "/drivers/1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(driver["name"], "Ann Murphy");
    assert_eq!(driver["phone"], "(555) 010-0001");
    assert_eq!(driver["active"], true);

    let (status, body) = get_json(&vessey, "/drivers/nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("nobody"));
}

#[tokio::test]
async fn vessey_refuses_a_wrong_or_missing_api_key() {
    let vessey = vessey().await;
    let wrong = client()
        .get(format!("{}/drivers/1", vessey.url()))
        .bearer_auth("not-the-key")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let missing = client()
        .get(format!("{}/drivers", vessey.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn vessey_lists_drivers_with_page_one_as_the_default() {
    let vessey = vessey().await;
    let (_, implicit) = get_json(&vessey, "/drivers").await;
    let (_, explicit) = get_json(&vessey, "/drivers?page=1").await;
    assert_eq!(implicit, explicit);
    let drivers = implicit["drivers"].as_array().unwrap();
    assert_eq!(drivers.len(), 5);
    assert_eq!(
        drivers.iter().filter(|d| d["active"] == false).count(),
        1,
        "one sample driver is inactive"
    );
    assert_eq!(implicit["next_page"], Value::Null);

    let (status, _) = get_json(&vessey, "/drivers?page=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn vessey_pages_a_days_collections_until_next_page_is_null() {
    let vessey = vessey().await;
    let mut page = Some(1);
    let mut ids = Vec::new();
    let mut pages = 0;
    while let Some(number) = page {
        let (status, body) = get_json(
            &vessey,
            &format!("/collections?date=2026-11-23&page={number}"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        for collection in body["collections"].as_array().unwrap() {
            assert_eq!(collection["scheduled_for"], "2026-11-23");
            ids.push(collection["id"].as_str().unwrap().to_owned());
        }
        page = body["next_page"]
            .as_u64()
            .map(|n| u32::try_from(n).unwrap());
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(ids.len(), 20);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "collection ids are unique");

    let (status, _) = get_json(&vessey, "/collections?date=23/11/2026").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_generated_page_of_a_thousand_is_served_quickly() {
    let data = VesseyData::generated(GeneratedSpec::default());
    let vessey = FakeVessey::sample()
        .with_data(data)
        .start(listener().await)
        .unwrap();
    // Warm the connection up so the measurement is the page, not the handshake.
    get_json(&vessey, "/drivers?page=1").await;
    let started = Instant::now();
    let (status, body) = get_json(&vessey, "/collections?date=2026-11-23&page=100").await;
    let elapsed = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["collections"].as_array().unwrap().len(), 1_000);
    assert_eq!(
        body["next_page"],
        Value::Null,
        "page 100 of 100 is the last"
    );
    assert_eq!(body["collections"][999]["id"], "col-2026-11-23-100000");
    assert!(elapsed < Duration::from_millis(500), "took {elapsed:?}");
}

#[tokio::test]
async fn every_request_is_recorded_before_faults_apply() {
    let vessey = vessey().await;
    vessey.fail_next(1, StatusCode::BAD_GATEWAY);
    get(&vessey, "/collections?date=2026-11-23&page=2").await;
    let received = vessey.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].method, "GET");
    assert_eq!(received[0].path, "/collections");
    assert_eq!(received[0].query_param("page"), Some("2"));
    assert_eq!(
        received[0].header("authorization"),
        Some(format!("Bearer {DEFAULT_VESSEY_API_KEY}").as_str())
    );
}

#[tokio::test]
async fn fail_next_answers_the_given_status_that_many_times_then_recovers() {
    let vessey = vessey().await;
    vessey.fail_next(2, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(get(&vessey, "/drivers/1").await.status(), 503);
    assert_eq!(get(&vessey, "/drivers/1").await.status(), 503);
    assert_eq!(get(&vessey, "/drivers/1").await.status(), 200);
}

#[tokio::test]
async fn rate_limit_next_sends_retry_after_in_seconds_or_as_a_date() {
    let vessey = vessey().await;
    vessey.rate_limit_next(1, RetryAfter::Seconds(3));
    vessey.rate_limit_next(1, RetryAfter::DateIn(Duration::from_secs(60)));

    let first = get(&vessey, "/drivers/1").await;
    assert_eq!(first.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(first.headers()["retry-after"], "3");

    let second = get(&vessey, "/drivers/1").await;
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    let date =
        httpdate::parse_http_date(second.headers()["retry-after"].to_str().unwrap()).unwrap();
    let ahead = date.duration_since(SystemTime::now()).unwrap();
    assert!(ahead > Duration::from_secs(55) && ahead <= Duration::from_secs(60));

    assert_eq!(get(&vessey, "/drivers/1").await.status(), 200);
}

#[tokio::test]
async fn delay_next_answers_normally_but_late() {
    let vessey = vessey().await;
    vessey.delay_next(1, Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(get(&vessey, "/drivers/1").await.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(get(&vessey, "/drivers/1").await.status(), 200);
    assert!(started.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn redirect_next_answers_302_to_the_given_location_once() {
    let vessey = vessey().await;
    vessey.redirect_next("http://elsewhere.invalid/drivers/1");
    let redirected = get(&vessey, "/drivers/1").await;
    assert_eq!(redirected.status(), StatusCode::FOUND);
    assert_eq!(
        redirected.headers()["location"],
        "http://elsewhere.invalid/drivers/1"
    );
    assert_eq!(get(&vessey, "/drivers/1").await.status(), 200);
}

#[tokio::test]
async fn garbage_next_answers_200_with_a_body_that_is_not_json() {
    let vessey = vessey().await;
    vessey.garbage_next(1);
    let response = get(&vessey, "/drivers/1").await;
    assert_eq!(response.status(), 200);
    assert!(response.json::<Value>().await.is_err());
}

#[tokio::test]
async fn magic_driver_ids_misbehave_as_documented() {
    let vessey = vessey().await;
    let statuses = |path: &'static str, times: usize| {
        let vessey = &vessey;
        async move {
            let mut seen = Vec::new();
            for _ in 0..times {
                seen.push(get(vessey, path).await.status().as_u16());
            }
            seen
        }
    };
    assert_eq!(statuses("/drivers/flaky", 4).await, [503, 503, 200, 200]);
    assert_eq!(statuses("/drivers/rate-limited", 2).await, [429, 200]);
    assert_eq!(statuses("/drivers/bad-request", 2).await, [400, 400]);

    let redirect = get(&vessey, "/drivers/redirect").await;
    assert_eq!(redirect.status(), StatusCode::FOUND);
    assert_eq!(
        redirect.headers()["location"],
        format!("http://127.0.0.2:{}/drivers/1", vessey.addr().port()).as_str()
    );
    let moved = get(&vessey, "/drivers/moved").await;
    assert_eq!(moved.headers()["location"], "/drivers/1");
}

#[tokio::test]
async fn the_slow_driver_takes_longer_than_a_client_timeout() {
    let vessey = vessey().await;
    let outcome = client()
        .get(format!("{}/drivers/slow", vessey.url()))
        .bearer_auth(DEFAULT_VESSEY_API_KEY)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(outcome.unwrap_err().is_timeout());
}

#[tokio::test]
async fn twilio_queues_a_message_and_records_the_form() {
    let twilio = FakeTwilio::default().start(listener().await).unwrap();
    let url = format!(
        "{}/2010-04-01/Accounts/{DEFAULT_TWILIO_ACCOUNT_SID}/Messages.json",
        twilio.url()
    );
    let body = "From=%2B15005550006&To=%2B15550100001&Body=Pick+up+at+6";
    let response = client()
        .post(&url)
        .basic_auth(DEFAULT_TWILIO_ACCOUNT_SID, Some(DEFAULT_TWILIO_AUTH_TOKEN))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let message: Value = response.json().await.unwrap();
    let sid = message["sid"].as_str().unwrap();
    assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");
    assert!(sid[2..].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(message["status"], "queued");
    assert_eq!(message["to"], "+15550100001");
    assert_eq!(message["body"], "Pick up at 6");

    let received = twilio.received();
    assert_eq!(received[0].form_field("To"), Some("+15550100001"));
    assert_eq!(received[0].form_field("Body"), Some("Pick up at 6"));
}

#[tokio::test]
async fn twilio_refuses_bad_credentials_and_invalid_numbers() {
    let twilio = FakeTwilio::default().start(listener().await).unwrap();
    let url = format!(
        "{}/2010-04-01/Accounts/{DEFAULT_TWILIO_ACCOUNT_SID}/Messages.json",
        twilio.url()
    );
    let send = |token: &'static str, to: &'static str| {
        client()
            .post(&url)
            .basic_auth(DEFAULT_TWILIO_ACCOUNT_SID, Some(token))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("From=%2B15005550006&To={to}&Body=hi"))
            .send()
    };
    let unauthorized = send("wrong", "%2B15550100001").await.unwrap();
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);

    let invalid = send(DEFAULT_TWILIO_AUTH_TOKEN, "555-0100").await.unwrap();
    assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
    let error: Value = invalid.json().await.unwrap();
    assert_eq!(error["code"], 21211);
    assert!(error["message"].as_str().unwrap().contains("555-0100"));
}

#[tokio::test]
async fn slack_accepts_text_and_refuses_anything_else() {
    let slack = FakeSlack::new().start(listener().await).unwrap();
    assert!(slack.url().contains("/services/"));
    let post = |body: &'static str| {
        client()
            .post(slack.url())
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let ok = post(r##"{"text": "Collection done", "channel": "#ops"}"##)
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.text().await.unwrap(), "ok");
    for bad in ["not json", r##"{"channel": "#ops"}"##, r#"{"text": ""}"#] {
        let refused = post(bad).await.unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(refused.text().await.unwrap(), "invalid_payload");
    }
    let received = slack.received();
    assert_eq!(received.len(), 4);
    assert_eq!(received[0].json().unwrap()["channel"], "#ops");
}

#[tokio::test]
async fn the_three_fakes_start_together_and_describe_their_environment() {
    let fakes = FakeThirdParties::start(FakeAddrs::any_loopback())
        .await
        .unwrap();
    let env = fakes.env();
    let value = |name: &str| env.iter().find(|(n, _)| *n == name).unwrap().1.clone();
    assert_eq!(value("VESSEY_API_URL"), fakes.vessey.url());
    assert_eq!(value("SLACK_WEBHOOK_URL"), fakes.slack.url());
    assert_eq!(value("TWILIO_API_URL"), fakes.twilio.url());
    assert_eq!(value("VESSEY_API_KEY"), DEFAULT_VESSEY_API_KEY);
    let (status, _) = get_json(&fakes.vessey, "/drivers/3").await;
    assert_eq!(status, StatusCode::OK);
    let addr = fakes.vessey.addr();
    fakes.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "a stopped fake no longer listens"
    );
}
