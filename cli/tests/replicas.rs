//! Replicas that come and go, from outside: two Dispatch processes behind one name resolving
//! to two loopback addresses (127.0.0.1 and 127.0.0.2, same port), the gateway, Companies
//! and Integrations beside them, six clients creating and reading tasks through the gateway
//! and watchers on `WatchTasks` (Server-Sent Events, native gRPC and gRPC-Web). One replica is killed
//! (`kill -9`) and replaced; then the other is stopped (SIGTERM: it drains) and replaced.
//! At most 0.5% of the requests may fail, none more than a second after either event, none
//! with a 500; every watcher sees every task created exactly once, without an error.
//!
//! The name: the gateway and Integrations run in this process, where
//! `discovery::testing_hosts` makes it resolve to both addresses (a headless Service's name
//! resolves to its pods the same way; no `/etc/hosts` edit, no root). The Dispatch replicas
//! are this test binary run again (`dispatch_replica`), so they can be killed.
//!
//! The figures (requests, failures, the last failure after each event) are printed on
//! stderr; docs/RELIABILITY.md records them.
//!
//! Its own test binary: it runs itself again as the replicas, and times failures that other tests'
//! load would lengthen.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::token;
use director_gateway::{Gateway, GatewayConfig};
use director_platform::catalog;
use director_platform::config::Env;
use director_platform::discovery::testing_hosts;
use director_proto::dispatch::tasks_service_client::TasksServiceClient;
use director_proto::dispatch::{WatchTasksRequest, WatchTasksResponse};
use director_store::runner;
use prost::Message;
use prost_reflect::DescriptorPool;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The name both replicas are behind.
const NAME: &str = "dispatch.replicas.test";
/// Set in a replica's environment: [`dispatch_replica`] serves only then.
const REPLICA: &str = "DIRECTOR_TEST_DISPATCH_REPLICA";
/// Concurrent clients.
const CLIENTS: usize = 6;
/// Requests the load makes at least: each client has at most one request in flight, so a
/// crash fails at most `CLIENTS` of them (creations; reads are sent again), 0.4% of these.
const MIN_REQUESTS: usize = 1_500;

/// One request of the load: when it was answered, and how (an HTTP status, or 0 when no
/// answer came).
#[derive(Debug, Clone, Copy)]
struct Outcome {
    at: Instant,
    status: u16,
}

/// A Dispatch replica: this test binary serving Dispatch at `address`.
fn start_replica(env: &[(String, String)], address: SocketAddr) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["dispatch_replica", "--exact", "--ignored", "--nocapture"])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env(REPLICA, "1")
        .env("DISPATCH_ADDR", address.to_string())
        .env(
            "RUST_LOG",
            std::env::var("REPLICA_LOG").unwrap_or("off".into()),
        )
        .stdout(Stdio::null())
        .kill_on_drop(true);
    if std::env::var_os("REPLICA_LOG").is_none() {
        command.stderr(Stdio::null());
    }
    command.spawn().unwrap()
}

/// Run by [`a_killed_and_a_drained_replica_cost_no_more_than_a_moment`] only.
#[tokio::test]
#[ignore = "a Dispatch replica, run by a_killed_and_a_drained_replica_cost_no_more_than_a_moment"]
async fn dispatch_replica() {
    if std::env::var_os(REPLICA).is_none() {
        return;
    }
    let env = Env::from_process();
    let address: SocketAddr = std::env::var("DISPATCH_ADDR").unwrap().parse().unwrap();
    let listener = TcpListener::bind(address).await.unwrap();
    let shutdown = CancellationToken::new();
    director_platform::server::shutdown_on_signals(shutdown.clone());
    runner::serve(&director_dispatch::SERVICE, &env, listener, shutdown)
        .await
        .unwrap();
}

/// Waits until the replica at `address` answers its health SERVING.
async fn until_serving(address: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
            .unwrap()
            .connect()
            .await;
        if let Ok(channel) = channel {
            let answer = HealthClient::new(channel)
                .check(HealthCheckRequest::default())
                .await;
            if answer.is_ok_and(|answer| answer.into_inner().status() == ServingStatus::Serving) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "replica {address} never served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A port free on both loopback addresses.
async fn free_port(addresses: &[IpAddr]) -> u16 {
    loop {
        let first = TcpListener::bind((addresses[0], 0)).await.unwrap();
        let port = first.local_addr().unwrap().port();
        let mut free = true;
        for address in &addresses[1..] {
            free &= TcpListener::bind((*address, port)).await.is_ok();
        }
        if free {
            return port;
        }
    }
}

/// Creates and reads tasks through the gateway until `stop`, recording every outcome and
/// the ids of the tasks created.
async fn client(
    http: reqwest::Client,
    base: String,
    token: String,
    company: String,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    created: Arc<Mutex<Vec<String>>>,
    stop: CancellationToken,
) {
    let record = |status: u16| {
        outcomes.lock().unwrap().push(Outcome {
            at: Instant::now(),
            status,
        });
    };
    let mut n = 0;
    while !stop.is_cancelled() {
        n += 1;
        let answer = http
            .post(format!("{base}/api/tasks"))
            .bearer_auth(&token)
            .json(&json!({"company_id": company, "title": format!("load {n}"), "scheduled_for": "2026-11-23"}))
            .send()
            .await;
        let id = match answer {
            Ok(response) => {
                record(response.status().as_u16());
                match response.json::<Value>().await {
                    Ok(task) => task["id"].as_str().map(str::to_owned),
                    Err(_) => None,
                }
            }
            Err(_) => {
                record(0);
                None
            }
        };
        let Some(id) = id else { continue };
        created.lock().unwrap().push(id.clone());
        let read = http
            .get(format!("{base}/api/tasks/{id}"))
            .bearer_auth(&token)
            .send()
            .await;
        record(read.map_or(0, |response| response.status().as_u16()));
    }
}

/// What a watcher saw: task ids of `created` events in order, event ids, and errors.
#[derive(Debug, Default)]
struct Seen {
    created: Vec<String>,
    event_ids: Vec<String>,
    errors: Vec<String>,
}

/// Reads Server-Sent Events of `WatchTasks` through the gateway until `stop`.
async fn sse_watcher(base: String, token: String, seen: Arc<Mutex<Seen>>, stop: CancellationToken) {
    let mut response = reqwest::Client::new()
        .get(format!("{base}/api/tasks/watch"))
        .bearer_auth(&token)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut buffer = String::new();
    loop {
        let chunk = tokio::select! {
            () = stop.cancelled() => return,
            chunk = response.chunk() => chunk,
        };
        let chunk = match chunk {
            Ok(Some(chunk)) => chunk,
            Ok(None) => {
                seen.lock().unwrap().errors.push("the stream ended".into());
                return;
            }
            Err(error) => {
                seen.lock().unwrap().errors.push(error.to_string());
                return;
            }
        };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut seen = seen.lock().unwrap();
            if block.lines().any(|line| line == "event: error") {
                seen.errors.push(block.clone());
                continue;
            }
            for line in block.lines() {
                if let Some(id) = line.strip_prefix("id:") {
                    seen.event_ids.push(id.trim().to_owned());
                } else if let Some(data) = line.strip_prefix("data:") {
                    let event: Value = serde_json::from_str(data.trim()).unwrap();
                    if event["kind"] == "created" {
                        seen.created
                            .push(event["task"]["id"].as_str().unwrap().to_owned());
                    }
                }
            }
        }
    }
}

/// Reads `WatchTasks` over native gRPC through the gateway until `stop`.
async fn grpc_watcher(
    base: String,
    token: String,
    seen: Arc<Mutex<Seen>>,
    stop: CancellationToken,
) {
    let channel = tonic::transport::Endpoint::from_shared(base)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut request = tonic::Request::new(WatchTasksRequest::default());
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let mut stream = TasksServiceClient::new(channel)
        .watch_tasks(request)
        .await
        .unwrap()
        .into_inner();
    loop {
        let message = tokio::select! {
            () = stop.cancelled() => return,
            message = stream.message() => message,
        };
        let mut seen = seen.lock().unwrap();
        match message {
            Ok(Some(event)) => {
                seen.event_ids.push(event.event_id.clone());
                if event.kind() == director_proto::dispatch::TaskEventKind::Created {
                    seen.created.push(event.task.unwrap().id);
                }
            }
            Ok(None) => {
                seen.errors.push("the stream ended".into());
                return;
            }
            Err(status) => {
                seen.errors.push(format!("{status:?}"));
                return;
            }
        }
    }
}

/// Reads `WatchTasks` over gRPC-Web (binary) through the gateway until `stop`.
async fn grpc_web_watcher(
    base: String,
    token: String,
    seen: Arc<Mutex<Seen>>,
    stop: CancellationToken,
) {
    let message = WatchTasksRequest::default().encode_to_vec();
    let mut body = vec![0];
    body.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    body.extend_from_slice(&message);
    let mut response = reqwest::Client::new()
        .post(format!(
            "{base}/director.dispatch.v1.TasksService/WatchTasks"
        ))
        .bearer_auth(&token)
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut buffer: Vec<u8> = Vec::new();
    loop {
        let chunk = tokio::select! {
            () = stop.cancelled() => return,
            chunk = response.chunk() => chunk,
        };
        let chunk = match chunk {
            Ok(Some(chunk)) => chunk,
            Ok(None) => {
                seen.lock().unwrap().errors.push("the stream ended".into());
                return;
            }
            Err(error) => {
                seen.lock().unwrap().errors.push(error.to_string());
                return;
            }
        };
        buffer.extend_from_slice(&chunk);
        while buffer.len() >= 5 {
            let length = u32::from_be_bytes(buffer[1..5].try_into().unwrap()) as usize;
            if buffer.len() < 5 + length {
                break;
            }
            let frame: Vec<u8> = buffer.drain(..5 + length).collect();
            let mut seen = seen.lock().unwrap();
            if frame[0] & 0x80 != 0 {
                // The trailers: the stream ended.
                seen.errors
                    .push(String::from_utf8_lossy(&frame[5..]).into_owned());
                return;
            }
            let event = WatchTasksResponse::decode(&frame[5..]).unwrap();
            seen.event_ids.push(event.event_id.clone());
            if event.kind() == director_proto::dispatch::TaskEventKind::Created {
                seen.created.push(event.task.unwrap().id);
            }
        }
    }
}

#[tokio::test]
async fn a_killed_and_a_drained_replica_cost_no_more_than_a_moment() {
    let loopbacks = [
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
    ];
    let port = free_port(&loopbacks).await;
    testing_hosts::set(NAME, loopbacks.to_vec());
    let replica_at = |ip: IpAddr| SocketAddr::new(ip, port);

    // Companies, Integrations and the gateway here; Dispatch as two processes.
    // Internal tokens that lapse (with the verifiers' 5 s leeway) before the second event:
    // a watch reopened then needs a fresh one.
    let mut env = common::stack_env(&[("INTERNAL_TOKEN_TTL_MS", "1000")], None).await;
    let shutdown = CancellationToken::new();
    let mut services = Vec::new();
    for spec in catalog::SERVICES
        .iter()
        .filter(|spec| spec.name != "dispatch")
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        env.push((
            spec.url_var(),
            format!("http://{}", listener.local_addr().unwrap()),
        ));
        services.push((spec, listener));
    }
    env.push(("DISPATCH_URL".into(), format!("http://{NAME}:{port}")));
    let pairs = Env::from_pairs(env.clone());
    for (spec, listener) in services {
        let service = director::stack::service_for(spec).unwrap();
        let (pairs, shutdown) = (pairs.clone(), shutdown.clone());
        tokio::spawn(async move { runner::serve(service, &pairs, listener, shutdown).await });
    }
    let gateway = Gateway::build(
        GatewayConfig::from_env(&pairs).unwrap(),
        DescriptorPool::decode(director_proto::FILE_DESCRIPTOR_SET).unwrap(),
        catalog::public_upstreams(&pairs).unwrap(),
    )
    .unwrap();
    let gateway_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", gateway_listener.local_addr().unwrap());
    tokio::spawn(gateway.serve(gateway_listener, shutdown.clone()));

    let mut first = start_replica(&env, replica_at(loopbacks[0]));
    let mut second = start_replica(&env, replica_at(loopbacks[1]));
    until_serving(replica_at(loopbacks[0])).await;
    until_serving(replica_at(loopbacks[1])).await;

    let tenant = token("replicas", None);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let company = http
        .post(format!("{base}/api/companies"))
        .bearer_auth(&tenant)
        .json(&json!({"name": "Replica Farm"}))
        .send()
        .await
        .unwrap();
    assert_eq!(company.status(), 200);
    let company = company.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Watchers first (two of each kind: each replica holds some, and each goes away), then
    // the load.
    let stop_watching = CancellationToken::new();
    let mut watchers = Vec::new();
    for n in 0..6 {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (base, tenant, stop) = (base.clone(), tenant.clone(), stop_watching.clone());
        let (kind, task) = match n % 3 {
            0 => (
                "SSE",
                tokio::spawn(sse_watcher(base, tenant, seen.clone(), stop)),
            ),
            1 => (
                "gRPC",
                tokio::spawn(grpc_watcher(base, tenant, seen.clone(), stop)),
            ),
            _ => (
                "gRPC-Web",
                tokio::spawn(grpc_web_watcher(base, tenant, seen.clone(), stop)),
            ),
        };
        watchers.push((kind, seen, task));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let created = Arc::new(Mutex::new(Vec::new()));
    let stop_load = CancellationToken::new();
    let load: Vec<_> = (0..CLIENTS)
        .map(|_| {
            tokio::spawn(client(
                http.clone(),
                base.clone(),
                tenant.clone(),
                company.clone(),
                outcomes.clone(),
                created.clone(),
                stop_load.clone(),
            ))
        })
        .collect();

    // A crash, and its replacement.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let killed_at = Instant::now();
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut first = start_replica(&env, replica_at(loopbacks[0]));
    until_serving(replica_at(loopbacks[0])).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // A graceful stop of the other, and its replacement.
    let stopped_at = Instant::now();
    let terminated = Command::new("kill")
        .args(["-TERM", &second.id().unwrap().to_string()])
        .status()
        .await
        .unwrap();
    assert!(terminated.success());
    let drained = tokio::time::timeout(Duration::from_secs(15), second.wait()).await;
    assert!(
        drained.is_ok_and(|exit| exit.is_ok_and(|status| status.success())),
        "the replica drained and exited"
    );
    let mut second = start_replica(&env, replica_at(loopbacks[1]));
    until_serving(replica_at(loopbacks[1])).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // A crash can cost the creations in flight on the crashed replica (one per client at
    // most): enough requests that those stay within the 0.5%, however slow the machine.
    let enough = Instant::now() + Duration::from_secs(30);
    while outcomes.lock().unwrap().len() < MIN_REQUESTS && Instant::now() < enough {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_load.cancel();
    for client in load {
        client.await.unwrap();
    }

    // Every created task reaches every watcher.
    let created: Vec<String> = created.lock().unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let all_seen = watchers.iter().all(|(_, seen, _)| {
            let seen: HashSet<String> = seen.lock().unwrap().created.iter().cloned().collect();
            created.iter().all(|id| seen.contains(id))
        });
        if all_seen {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_watching.cancel();
    for (_, _, task) in &mut watchers {
        task.await.unwrap();
    }
    first.start_kill().unwrap();
    second.start_kill().unwrap();
    shutdown.cancel();

    // The figures.
    let outcomes = outcomes.lock().unwrap().clone();
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.status != 200).collect();
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for outcome in &failed {
        *statuses.entry(outcome.status).or_default() += 1;
    }
    let after = |event: Instant, until: Instant| {
        failed
            .iter()
            .filter(|o| o.at >= event && o.at < until)
            .map(|o| o.at - event)
            .max()
    };
    let after_kill = after(killed_at, stopped_at);
    let after_stop = after(stopped_at, Instant::now());
    let before_any = failed.iter().filter(|o| o.at < killed_at).count();
    let share = failed.len() as f64 * 100.0 / outcomes.len().max(1) as f64;
    eprintln!(
        "replicas: {} requests, {} failed ({share:.2}%), by status {statuses:?}; \
         last failure after the kill: {after_kill:?}, after the SIGTERM: {after_stop:?}; \
         {} tasks created",
        outcomes.len(),
        failed.len(),
        created.len()
    );
    for (kind, seen, _) in &watchers {
        let seen = seen.lock().unwrap();
        let unique: HashSet<&String> = seen.event_ids.iter().collect();
        let created_seen: HashMap<&String, usize> =
            seen.created.iter().fold(HashMap::new(), |mut counts, id| {
                *counts.entry(id).or_default() += 1;
                counts
            });
        let missing = created
            .iter()
            .filter(|id| !created_seen.contains_key(id))
            .count();
        let repeated = created_seen.values().filter(|count| **count > 1).count();
        eprintln!(
            "replicas: {kind} watcher: {} events, {missing} created tasks missing, {repeated} repeated, errors {:?}",
            seen.event_ids.len(),
            seen.errors
        );
        assert!(
            seen.errors.is_empty(),
            "a {kind} watcher saw an error: {:?}",
            seen.errors
        );
        assert_eq!(
            unique.len(),
            seen.event_ids.len(),
            "a {kind} watcher saw an event twice"
        );
        assert_eq!(
            (missing, repeated),
            (0, 0),
            "a {kind} watcher missed or repeated tasks"
        );
    }
    assert!(
        outcomes.len() > 300,
        "the load was light: {}",
        outcomes.len()
    );
    assert!(
        !statuses.contains_key(&500),
        "a request answered 500: {statuses:?}"
    );
    assert_eq!(
        before_any, 0,
        "requests failed before any replica went away"
    );
    assert!(share <= 0.5, "{share:.2}% of the requests failed");
    let during_drain = failed.iter().filter(|o| o.at >= stopped_at).count();
    assert_eq!(during_drain, 0, "requests failed while a replica drained");
    let second_at_most = Duration::from_secs(1);
    assert!(
        after_kill.is_none_or(|late| late <= second_at_most),
        "failures {after_kill:?} after the kill"
    );
    assert!(
        after_stop.is_none_or(|late| late <= second_at_most),
        "failures {after_stop:?} after the SIGTERM"
    );
}
