//! The abuse suite (issue 18, item 7): one attacker on its own source address (`127.0.0.2`)
//! tries to take the gateway down — silent connections, half HTTP/2 prefaces, held
//! `Health/Watch`, held gRPC watch streams and Server-Sent Event streams (50 users of the
//! attacker's own tenant), a reflection flood,
//! bodies of 60,000 unknown keys — while a client on `127.0.0.1` with a valid token makes 100
//! REST requests and polls `/api/health`. Every one of its requests must answer 200, p99
//! under 250 ms, and liveness never 503.
//!
//! Bounded (well under two minutes), loopback only, figures printed per attack. Ignored by
//! the plain `cargo test`; CI runs it on its own step:
//! `cargo test -p director-gateway --test gateway -- --ignored --nocapture abuse::`.
//!
//! The gateway runs with its defaults except `HEADER_READ_TIMEOUT_MS` (2 s instead of 10, to
//! keep the suite short); the client paces its calls within the default per-caller rate
//! limit (20/s, burst 40), which the attacker's token is held to as well.
#![allow(clippy::unwrap_used)]
// Printing its figures is what the suite is for.
#![allow(clippy::print_stdout)]

use crate::common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::*;
use director_platform::identity::Role;
use futures::StreamExt as _;
use prost::Message as _;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
/// How many connections or streams an attack opens: past the gateway's global caps
/// (`MAX_CONNECTIONS` 4096, `MAX_CONCURRENT_REQUESTS` 1024).
const CONNECTIONS: usize = 4400;
const STREAMS: usize = 1100;
/// The attacker's users, all in its own tenant, for the authenticated streams: enough that
/// the per-caller rate limit (burst 40) does not slow the attack down.
const ATTACKER_USERS: usize = 50;
/// How long an attack keeps retrying streams refused by a rate limit.
const OPENING: Duration = Duration::from_secs(10);

/// What the legitimate client saw during one attack.
struct Observed {
    ok: usize,
    failures: Vec<String>,
    latencies: Vec<Duration>,
    health_checks: usize,
    health_503: usize,
    health_failed: usize,
}

impl Observed {
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    fn passed(&self) -> bool {
        self.ok == 100
            && self.percentile(99.0) < Duration::from_millis(250)
            && self.health_503 == 0
            && self.health_failed == 0
    }
}

/// The legitimate client's pace: within the default per-caller rate limit (20/s, burst 40).
const CLIENT_PACE: Duration = Duration::from_millis(50);
/// A client run that takes longer than this (a gateway taken down) stops early.
const CLIENT_RUN_LIMIT: Duration = Duration::from_secs(15);

/// The legitimate client: 100 authenticated REST calls from 127.0.0.1, one every 50 ms (2 s
/// limit each), `/api/health` before every tenth.
async fn client_run(gateway: &TestGateway) -> Observed {
    let client = reqwest::Client::builder()
        .local_address(CLIENT)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let bearer = format!(
        "Bearer {}",
        token_for("client", "client-tenant", Role::Admin)
    );
    let mut observed = Observed {
        ok: 0,
        failures: Vec::new(),
        latencies: Vec::new(),
        health_checks: 0,
        health_503: 0,
        health_failed: 0,
    };
    let run = Instant::now();
    for call in 0..100 {
        if run.elapsed() > CLIENT_RUN_LIMIT {
            observed
                .failures
                .extend((call..100).map(|_| "not made (run over its time)".to_owned()));
            break;
        }
        if call > 0 {
            tokio::time::sleep(CLIENT_PACE).await;
        }
        if call % 10 == 0 {
            observed.health_checks += 1;
            match client.get(gateway.at("/api/health")).send().await {
                Ok(response) if response.status() == 200 => {}
                Ok(response) if response.status() == 503 => observed.health_503 += 1,
                _ => observed.health_failed += 1,
            }
        }
        let started = Instant::now();
        let answer = client
            .get(gateway.at("/api/testing/echo/legit?count=1"))
            .header("authorization", &bearer)
            .send()
            .await;
        let elapsed = started.elapsed();
        observed.latencies.push(elapsed);
        match answer {
            Ok(response) if response.status() == 200 => {
                let _ = response.bytes().await;
                observed.ok += 1;
            }
            Ok(response) => observed.failures.push(response.status().to_string()),
            Err(error) if error.is_timeout() => observed.failures.push("timeout".to_owned()),
            Err(_) => observed.failures.push("connection error".to_owned()),
        }
    }
    observed
}

fn report(name: &str, attack: &str, observed: &Observed) {
    let mut failures: Vec<(String, usize)> = Vec::new();
    for failure in &observed.failures {
        match failures.iter_mut().find(|(name, _)| name == failure) {
            Some((_, count)) => *count += 1,
            None => failures.push((failure.clone(), 1)),
        }
    }
    println!(
        "abuse | {name:<28} | attack: {attack} | client: {}/100 ok, p50 {:.1} ms, p99 {:.1} ms, \
         max {:.1} ms{} | /api/health: {} checks, {} answered 503, {} failed | {}",
        observed.ok,
        observed.percentile(50.0).as_secs_f64() * 1e3,
        observed.percentile(99.0).as_secs_f64() * 1e3,
        observed.percentile(100.0).as_secs_f64() * 1e3,
        if failures.is_empty() {
            String::new()
        } else {
            format!(", failed: {failures:?}")
        },
        observed.health_checks,
        observed.health_503,
        observed.health_failed,
        if observed.passed() { "PASS" } else { "FAIL" },
    );
}

/// A TCP connection from the attacker's address, or `None` when it cannot be made in 3 s.
async fn attacker_connect(addr: SocketAddr) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::new(ATTACKER, 0)).ok()?;
    tokio::time::timeout(Duration::from_secs(3), socket.connect(addr))
        .await
        .ok()?
        .ok()
}

/// How many of `streams` the gateway has not closed (nothing to read, or unread data).
fn still_open(streams: &[TcpStream]) -> usize {
    let mut buffer = [0; 64];
    streams
        .iter()
        .filter(|stream| match stream.try_read(&mut buffer) {
            Ok(n) => n > 0,
            Err(error) => error.kind() == std::io::ErrorKind::WouldBlock,
        })
        .count()
}

/// `CONNECTIONS` connections from the attacker, each sending `first` and then nothing.
async fn silent_connections(gateway: &TestGateway, first: &'static [u8]) -> (String, Observed) {
    let started = Instant::now();
    let opened = futures::stream::iter(0..CONNECTIONS)
        .map(|_| async {
            let mut stream = attacker_connect(gateway.addr).await?;
            stream.write_all(first).await.ok()?;
            Some(stream)
        })
        .buffer_unordered(512)
        .filter_map(|stream| async { stream })
        .collect::<Vec<_>>()
        .await;
    let took = started.elapsed();
    let open_before = still_open(&opened);
    let observed = client_run(gateway).await;
    let open_after = still_open(&opened);
    let attack = format!(
        "{} of {CONNECTIONS} connected in {:.1} s, {open_before} open when the client started, \
         {open_after} open after its run ({:.0} s after the first)",
        opened.len(),
        took.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    (attack, observed)
}

/// `STREAMS` held streams of `path` over `STREAMS / 100` attacker connections, the n-th
/// with `authorizations[n % len]` (none when empty); a stream refused with
/// RESOURCE_EXHAUSTED (a rate limit) is retried every 100 ms for [`OPENING`].
async fn held_grpc_streams(
    gateway: &TestGateway,
    path: &'static str,
    request: Vec<u8>,
    authorizations: &[String],
) -> (String, Observed) {
    let started = Instant::now();
    let mut channels = Vec::new();
    for _ in 0..STREAMS / 100 {
        let channel = tonic::transport::Endpoint::from_shared(gateway.url.clone())
            .unwrap()
            .local_address(Some(ATTACKER))
            .connect()
            .await
            .unwrap();
        channels.push(channel);
    }
    let opens = (0..STREAMS).map(|index| {
        let channel = channels[index % channels.len()].clone();
        let request = request.clone();
        let authorization = (!authorizations.is_empty())
            .then(|| authorizations[index % authorizations.len()].clone());
        async move {
            loop {
                let mut client = tonic::client::Grpc::new(channel.clone());
                client.ready().await.ok()?;
                let mut call = tonic::Request::new(bytes::Bytes::from(request.clone()));
                if let Some(authorization) = &authorization {
                    call.metadata_mut()
                        .insert("authorization", authorization.parse().unwrap());
                }
                let answer = tokio::time::timeout(
                    Duration::from_secs(3),
                    client.server_streaming(
                        call,
                        http::uri::PathAndQuery::from_static(path),
                        RawCodec,
                    ),
                )
                .await
                .ok()?;
                let status = match answer {
                    Ok(answer) => {
                        let mut stream = answer.into_inner();
                        // Held only if its first message arrived.
                        match tokio::time::timeout(Duration::from_secs(3), stream.message()).await {
                            Ok(Ok(Some(_))) => return Some(stream),
                            Ok(Err(status)) => status,
                            _ => return None,
                        }
                    }
                    Err(status) => status,
                };
                if status.code() != tonic::Code::ResourceExhausted || started.elapsed() > OPENING {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let held: Vec<_> = futures::stream::iter(opens)
        .buffer_unordered(STREAMS)
        .filter_map(|stream| async { stream })
        .collect()
        .await;
    let took = started.elapsed();
    let observed = client_run(gateway).await;
    let attack = format!(
        "{} of {STREAMS} streams held (opened in {:.1} s)",
        held.len(),
        took.as_secs_f64()
    );
    drop(held);
    (attack, observed)
}

/// `STREAMS` held Server-Sent Event streams, one per attacker connection, the n-th with
/// `authorizations[n % len]`.
async fn held_sse_streams(gateway: &TestGateway, authorizations: &[String]) -> (String, Observed) {
    let attacker = reqwest::Client::builder()
        .local_address(ATTACKER)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let started = Instant::now();
    let held: Vec<_> = futures::stream::iter(0..STREAMS)
        .map(|index| {
            let attacker = attacker.clone();
            let authorization = authorizations[index % authorizations.len()].clone();
            let url = gateway.at("/api/testing/watch?count=1&hold=true");
            async move {
                let response = tokio::time::timeout(
                    Duration::from_secs(3),
                    attacker
                        .get(url)
                        .header("authorization", authorization)
                        .send(),
                )
                .await
                .ok()?
                .ok()?;
                (response.status() == 200).then_some(response)
            }
        })
        .buffer_unordered(STREAMS)
        .filter_map(|response| async { response })
        .collect()
        .await;
    let took = started.elapsed();
    let observed = client_run(gateway).await;
    let attack = format!(
        "{} of {STREAMS} streams held (opened in {:.1} s)",
        held.len(),
        took.as_secs_f64()
    );
    drop(held);
    (attack, observed)
}

/// Eight reflection streams of 5,000 `list` requests each, unauthenticated, while the client
/// runs; what the attacker got back.
async fn reflection_flood(gateway: &TestGateway) -> (String, Observed) {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(
            ECHO_SERVICE.to_owned(),
        )),
    };
    let started = Instant::now();
    let floods = (0..8).map(|_| {
        let request = request.clone();
        let url = gateway.url.clone();
        tokio::spawn(async move {
            let channel = tonic::transport::Endpoint::from_shared(url)
                .unwrap()
                .local_address(Some(ATTACKER))
                .connect()
                .await
                .unwrap();
            let mut client = ServerReflectionClient::new(channel);
            let sent = request.encoded_len() * 5000;
            let Ok(answers) = client
                .server_reflection_info(futures::stream::iter(vec![request; 5000]))
                .await
            else {
                return (sent, 0, 0);
            };
            let mut answers = answers.into_inner();
            let (mut count, mut bytes) = (0, 0);
            while let Ok(Some(answer)) = answers.message().await {
                count += 1;
                bytes += answer.encoded_len();
            }
            (sent, count, bytes)
        })
    });
    let floods: Vec<_> = floods.collect();
    let observed = client_run(gateway).await;
    let (mut sent, mut answers, mut bytes) = (0, 0, 0);
    for flood in floods {
        let (s, a, b) = flood.await.unwrap();
        sent += s;
        answers += a;
        bytes += b;
    }
    let attack = format!(
        "8 streams sent {:.0} kB, got {answers} answers, {:.2} MB in {:.1} s",
        sent as f64 / 1e3,
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    (attack, observed)
}

/// Bodies of 60,000 unknown keys (~1 MiB), four at a time, with a valid token, while the
/// client runs; the largest answer.
async fn unknown_keys(gateway: &TestGateway, authorization: String) -> (String, Observed) {
    let mut body = String::from("{");
    for key in 0..60_000 {
        if key > 0 {
            body.push(',');
        }
        body.push_str(&format!("\"k{key}\":0"));
    }
    body.push('}');
    let body = bytes::Bytes::from(body);
    let attacker = reqwest::Client::builder()
        .local_address(ATTACKER)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let posters: Vec<_> = (0..4)
        .map(|_| {
            let attacker = attacker.clone();
            let body = body.clone();
            let authorization = authorization.clone();
            let url = gateway.at("/api/companies");
            let stop = stop.clone();
            tokio::spawn(async move {
                let (mut posts, mut refused_400, mut largest) = (0, 0, 0);
                while !stop.is_cancelled() {
                    let Ok(response) = attacker
                        .post(&url)
                        .header("authorization", &authorization)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                    else {
                        continue;
                    };
                    posts += 1;
                    refused_400 += usize::from(response.status() == 400);
                    largest = largest.max(response.bytes().await.map_or(0, |b| b.len()));
                }
                (posts, refused_400, largest)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let observed = client_run(gateway).await;
    stop.cancel();
    let (mut posts, mut refused_400, mut largest) = (0, 0, 0);
    for poster in posters {
        let (p, r, l) = poster.await.unwrap();
        posts += p;
        refused_400 += r;
        largest = largest.max(l);
    }
    let attack = format!(
        "{posts} posts of {:.2} MB ({refused_400} parsed and answered 400, the rest 429), \
         largest answer {largest} bytes",
        body.len() as f64 / 1e6
    );
    (attack, observed)
}

/// Request and response messages as raw bytes.
#[derive(Debug, Clone, Copy)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = bytes::Bytes;
    type Decode = bytes::Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = bytes::Bytes;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Self::Item,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Self::Error> {
        bytes::BufMut::put(dst, item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = bytes::Bytes;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Self::Item>, Self::Error> {
        let length = bytes::Buf::remaining(src);
        Ok(Some(bytes::Buf::copy_to_bytes(src, length)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the abuse suite: its own CI step (cargo test --test gateway -- --ignored --nocapture abuse::)"]
async fn one_address_cannot_take_the_gateway_down() {
    let suite = Instant::now();
    let upstream = spawn_echo_upstream().await;
    let pool = director_pool_with_echo();
    let fresh = || async {
        spawn_gateway(
            config(&[
                ("HEADER_READ_TIMEOUT_MS", "2000"),
                // The defaults (common::env raises them for the other tests).
                ("RATE_LIMIT_PER_SECOND", "20"),
                ("RATE_LIMIT_BURST", "40"),
            ]),
            director_pool_with_echo(),
            vec![
                (ECHO_PACKAGE.to_owned(), upstream.uri.clone()),
                ("director.companies.v1".to_owned(), unreachable_uri().await),
            ],
        )
        .await
    };
    let attacker_token = format!(
        "Bearer {}",
        token_for("attacker", "attacker-tenant", Role::Admin)
    );
    let attackers: Vec<String> = (0..ATTACKER_USERS)
        .map(|user| {
            format!(
                "Bearer {}",
                token_for(&format!("attacker-{user}"), "attacker-tenant", Role::Admin)
            )
        })
        .collect();
    let watch = watch_request(&pool, 1, true).encode_to_vec();
    let health_request = tonic_health::pb::HealthCheckRequest::default().encode_to_vec();
    let mut results = Vec::new();

    let gateway = fresh().await;
    let baseline = client_run(&gateway).await;
    results.push(("no attack", "none".to_owned(), baseline));

    let gateway = fresh().await;
    let (attack, observed) = silent_connections(&gateway, b"").await;
    results.push(("silent connections", attack, observed));
    drop(gateway);

    let gateway = fresh().await;
    let (attack, observed) =
        silent_connections(&gateway, &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..10]).await;
    results.push(("half HTTP/2 prefaces", attack, observed));
    drop(gateway);

    let gateway = fresh().await;
    let (attack, observed) = held_grpc_streams(
        &gateway,
        "/grpc.health.v1.Health/Watch",
        health_request,
        &[],
    )
    .await;
    results.push(("held Health/Watch", attack, observed));
    drop(gateway);

    let gateway = fresh().await;
    let (attack, observed) = held_grpc_streams(&gateway, WATCH_PATH, watch, &attackers).await;
    results.push(("held gRPC watch streams", attack, observed));
    drop(gateway);

    let gateway = fresh().await;
    let (attack, observed) = held_sse_streams(&gateway, &attackers).await;
    results.push(("held SSE streams", attack, observed));
    drop(gateway);

    let gateway = fresh().await;
    let (attack, observed) = reflection_flood(&gateway).await;
    results.push(("reflection flood", attack, observed));
    drop(gateway);

    let gateway = fresh().await;
    let (attack, observed) = unknown_keys(&gateway, attacker_token).await;
    results.push(("60k unknown keys", attack, observed));
    drop(gateway);

    for (name, attack, observed) in &results {
        report(name, attack, observed);
    }
    println!("abuse | suite took {:.1} s", suite.elapsed().as_secs_f64());
    let failed: Vec<_> = results
        .iter()
        .filter(|(_, _, observed)| !observed.passed())
        .map(|(name, _, _)| *name)
        .collect();
    assert!(failed.is_empty(), "the client suffered under: {failed:?}");
}
