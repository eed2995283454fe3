//! connect-web in a real browser, from another origin (issue 21, point 6): headless Chromium
//! loads a page served on `127.0.0.2` (not the gateway's origin) whose script — bundled with
//! esbuild from `clients/ts/browser-test/` — calls the whole stack through the gateway with
//! `@connectrpc/connect-web`'s `createConnectTransport` (Connect, binary messages, `useHttpGet`
//! for the side-effect-free calls), the client's generated service descriptors and its `bearerInterceptor`:
//! it lists the companies the test created over REST, then follows `WatchTasks`, receiving a
//! replayed event and then one the test creates while the stream is open. The same page from
//! an origin `CORS_ORIGINS` does not name (the same host, another port) fails in the same
//! browser: CORS is enforced, not merely permissive.
//!
//! The page reports each step by POSTing it to the server that served it (its own origin), so
//! the test follows the browser as it goes instead of guessing when to read the DOM.
//!
//! Needs Chromium (`CHROMIUM` names another binary) and the page's bundle (`npm ci && npm run
//! build` in `clients/ts/browser-test`), so it is ignored by the plain test run; `.ci/run`
//! builds the bundle and runs it with `--ignored`.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::routing::{get, post};
use common::{TestStack, spawn_stack_with, token};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// How long the browser gets for each step it reports.
const STEP_PATIENCE: Duration = Duration::from_secs(30);

/// The page's folder: its HTML and the bundle `npm run build` writes.
fn page_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../clients/ts/browser-test")
}

/// A file of the page, or a failure saying how to produce it.
fn page_file(name: &str) -> String {
    let path = page_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "{} ({error}): run `npm ci && npm run build` in clients/ts/browser-test",
            path.display()
        )
    })
}

/// A web server for the page on an origin of its own; it hands on what the page reports.
struct PageServer {
    origin: String,
    reports: mpsc::UnboundedReceiver<Value>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl PageServer {
    /// Serves `index.html`, the bundle and `POST /report` on a random port of `ip`.
    async fn start(ip: &str) -> Self {
        let html = page_file("index.html");
        let script = page_file("dist/page.js");
        let (sender, reports) = mpsc::unbounded_channel();
        let app = Router::new()
            .route(
                "/",
                get(move || async move { ([(header::CONTENT_TYPE, "text/html")], html) }),
            )
            .route(
                "/page.js",
                get(move || async move { ([(header::CONTENT_TYPE, "text/javascript")], script) }),
            )
            .route(
                "/report",
                post(move |axum::Json(report): axum::Json<Value>| async move {
                    let _ = sender.send(report);
                }),
            );
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            origin: format!("http://{addr}"),
            reports,
            server,
        }
    }

    /// The next step the page shown in `browser` reports.
    async fn next_report(&mut self, browser: &Browser, waiting_for: &str) -> Value {
        tokio::time::timeout(STEP_PATIENCE, self.reports.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the page did not report {waiting_for} within 30 s; its console:\n{}",
                    browser.console()
                )
            })
            .expect("the page's server is running")
    }
}

/// The browser binary.
fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_owned())
}

/// Headless Chromium showing `url` until dropped, on a fresh profile; its log (with the
/// page's console) goes to a file. On drop it is shut down, then both are removed.
struct Browser {
    process: tokio::process::Child,
    profile: PathBuf,
    log: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SIGTERM: Chromium shuts down with its helper processes and stops writing to its
        // profile (a SIGKILL leaves the helpers running a while longer); SIGKILL if it
        // lingers.
        if let Some(pid) = self.process.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while matches!(self.process.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.process.start_kill();
        let _ = std::fs::remove_dir_all(&self.profile);
        let _ = std::fs::remove_file(&self.log);
    }
}

impl Browser {
    fn open(url: &str) -> Self {
        let profile = std::env::temp_dir().join(format!("connect-web-{}", uuid::Uuid::new_v4()));
        let log = profile.with_extension("log");
        let log_file = std::fs::File::create(&log).unwrap();
        let process = tokio::process::Command::new(chromium())
            .args([
                "--headless",
                // Root in CI: Chromium's sandbox needs user namespaces it may not have.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                // The page's console messages and uncaught errors, for a failure's message.
                "--enable-logging=stderr",
                &format!("--user-data-dir={}", profile.display()),
                url,
            ])
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "could not run {} ({error}); install it: apt-get install chromium",
                    chromium()
                )
            });
        Self {
            process,
            profile,
            log,
        }
    }

    /// What the page wrote to its console so far, and its uncaught errors.
    fn console(&self) -> String {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains(":CONSOLE"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The page's URL on `page` for the gateway of `app`, sending `token`, following `events`.
fn page_url(page: &PageServer, app: &TestStack, token: &str, events: usize) -> String {
    let mut url = reqwest::Url::parse(&format!("{}/", page.origin)).unwrap();
    url.query_pairs_mut()
        .append_pair("gateway", &app.base)
        .append_pair("token", token)
        .append_pair("events", &events.to_string());
    url.into()
}

/// Creates a task of `company` titled `title` over REST.
async fn create_task(app: &TestStack, token: &str, company: &Value, title: &str) {
    let created = app
        .post(
            "/api/tasks",
            token,
            json!({"company_id": company["id"], "title": title, "scheduled_for": "2026-12-07"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200, "{}", created.text().await.unwrap());
}

#[tokio::test]
#[ignore = "needs Chromium and the page's bundle (npm); .ci/run runs it"]
async fn connect_web_lists_companies_and_follows_tasks_from_another_origin() {
    // Both pages on 127.0.0.2, another host than the gateway's 127.0.0.1, each on a port of
    // its own: they differ only by their origins' ports, and only one origin is allowed.
    let mut allowed = PageServer::start("127.0.0.2").await;
    let mut refused = PageServer::start("127.0.0.2").await;
    let app = spawn_stack_with(&[("CORS_ORIGINS", allowed.origin.as_str())]).await;
    let dairy = token("connect-web", None);
    let company = app
        .create_company(&dairy, json!({"name": "Browser Dairy"}))
        .await;
    create_task(&app, &dairy, &company, "Before the page").await;

    let browser = Browser::open(&page_url(&allowed, &app, &dairy, 2));
    let listed = allowed.next_report(&browser, "the companies").await;
    assert_eq!(
        listed,
        json!({"step": "listed", "companies": ["Browser Dairy"]})
    );
    // Replayed from after event 0: the task created before the page opened the stream.
    let replayed = allowed.next_report(&browser, "the replayed event").await;
    assert_eq!(replayed["step"], "event", "{replayed}");
    assert_eq!(replayed["kind"], "CREATED", "{replayed}");
    assert_eq!(replayed["title"], "Before the page", "{replayed}");
    // The stream is open now (an event came through it): a task created now arrives live.
    create_task(&app, &dairy, &company, "While watching").await;
    let live = allowed.next_report(&browser, "the live event").await;
    assert_eq!(live["step"], "event", "{live}");
    assert_eq!(live["title"], "While watching", "{live}");
    let (replayed_id, live_id): (u64, u64) = (
        replayed["eventId"].as_str().unwrap().parse().unwrap(),
        live["eventId"].as_str().unwrap().parse().unwrap(),
    );
    assert!(live_id > replayed_id, "{replayed} then {live}");

    // The same page from an origin CORS_ORIGINS does not name: the browser refuses to hand the
    // gateway's answer to it (no Access-Control-Allow-Origin), so connect-web fails the call.
    let refused_browser = Browser::open(&page_url(&refused, &app, &dairy, 1));
    let failed = refused
        .next_report(&refused_browser, "the refused call")
        .await;
    assert_eq!(failed["step"], "failed", "{failed}");
    assert!(
        failed["message"]
            .as_str()
            .is_some_and(|message| message.contains("Failed to fetch")),
        "{failed}"
    );
    // And the browser says why: the gateway's answer did not allow the page's origin.
    let blocked = format!(
        "from origin '{}' has been blocked by CORS policy",
        refused.origin
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !refused_browser.console().contains(&blocked) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no CORS error in the console:\n{}",
            refused_browser.console()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
