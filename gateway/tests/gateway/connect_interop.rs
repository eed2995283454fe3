//! Real Connect clients against a running gateway (HTTP/1.1 and h2c on one port): `buf curl`
//! with its default protocol, and @connectrpc/connect-node (`connect-node/interop.mjs`), for
//! unary calls, GET, server streams, errors with details, deadlines and gzip.
//!
//! Ignored by the plain test run: they need `buf` and Node.js with `connect-node/`'s packages
//! installed (`npm ci`); `.ci/run` installs both and runs them. A missing tool fails the test.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// How long one client run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `program` with `args` (and `envs`), killed after [`RUN_TIMEOUT`].
async fn run(program: &str, args: &[&str], envs: &[(&str, &str)], dir: Option<&Path>) -> Output {
    let mut command = tokio::process::Command::new(program);
    command.args(args).kill_on_drop(true);
    for (name, value) in envs {
        command.env(name, value);
    }
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let output = command.output();
    tokio::time::timeout(RUN_TIMEOUT, output)
        .await
        .unwrap_or_else(|_| panic!("{program} took longer than {RUN_TIMEOUT:?}"))
        .unwrap_or_else(|error| panic!("{program} could not run (is it installed?): {error}"))
}

/// The echo proto and the google.rpc error details, as one binary FileDescriptorSet file
/// (what `buf curl --schema` and the node client read).
fn descriptor_file(dir: &Path) -> PathBuf {
    let mut pool = echo_pool();
    pool.decode_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .unwrap();
    let path = dir.join("descriptors.binpb");
    std::fs::write(&path, pool.encode_to_vec()).unwrap();
    path
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("director-connect-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `buf curl` (Connect, its default) of `method` with `data`; its output.
async fn buf_curl(
    gateway: &TestGateway,
    schema: &Path,
    method: &str,
    data: &str,
    extra: &[&str],
) -> Output {
    let url = gateway.at(&format!("/director.testing.v1.EchoService/{method}"));
    let authorization = format!("Authorization: Bearer {}", token("buf-user"));
    let schema = schema.to_str().unwrap();
    let mut args = vec![
        "curl",
        "--schema",
        schema,
        "--header",
        &authorization,
        "--data",
        data,
    ];
    args.extend_from_slice(extra);
    args.push(&url);
    run("buf", &args, &[], None).await
}

/// The JSON documents of a `buf curl` output, one per message.
fn json_documents(output: &[u8]) -> Vec<Value> {
    serde_json::Deserializer::from_slice(output)
        .into_iter::<Value>()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
#[ignore = "needs buf; run by .ci/run"]
async fn buf_curl_speaks_connect_with_the_gateway() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let dir = scratch_dir("buf");
    let schema = descriptor_file(&dir);

    // Unary, with the deadline buf's --timeout gives the call (sent as connect-timeout-ms).
    let output = buf_curl(
        &gateway,
        &schema,
        "Echo",
        r#"{"name":"buf","count":"3","mood":"MOOD_HAPPY"}"#,
        &["--timeout", "20s"],
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let echo = &json_documents(&output.stdout)[0];
    assert_eq!(echo["name"], "buf");
    assert_eq!(echo["count"], "3");
    assert_eq!(echo["mood"], "MOOD_HAPPY");
    assert_eq!(echo["userId"], "buf-user");
    let deadline: u64 = echo["grpcTimeout"]
        .as_str()
        .unwrap()
        .trim_end_matches('m')
        .parse()
        .unwrap();
    assert!(
        deadline <= 15_000,
        "the client's deadline capped by the gateway's: {deadline}"
    );

    // A server stream.
    let output = buf_curl(
        &gateway,
        &schema,
        "EchoStream",
        r#"{"name":"s","count":"3"}"#,
        &[],
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let sequences: Vec<_> = json_documents(&output.stdout)
        .iter()
        .map(|echo| echo["sequence"].clone())
        .collect();
    assert_eq!(sequences, [1, 2, 3]);

    // A stream that fails after its messages: the messages, then the error.
    let output = buf_curl(
        &gateway,
        &schema,
        "EchoStream",
        r#"{"name":"fail-after:gave up","count":"2"}"#,
        &[],
    )
    .await;
    assert!(!output.status.success());
    assert_eq!(json_documents(&output.stdout).len(), 2);
    let error: Value = serde_json::from_slice(&output.stderr)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(error["code"], "aborted");
    assert_eq!(error["message"], "gave up");

    // An error with BadRequest details.
    let output = buf_curl(&gateway, &schema, "Echo", r#"{"name":"invalid:name"}"#, &[]).await;
    assert!(!output.status.success());
    let error: Value = serde_json::from_slice(&output.stderr)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(error["code"], "invalid_argument");
    assert_eq!(error["details"][0]["type"], "google.rpc.BadRequest");
    assert_eq!(
        error["details"][0]["debug"]["fieldViolations"][0]["field"],
        "name"
    );

    // A call past its deadline.
    let output = buf_curl(
        &gateway,
        &schema,
        "Echo",
        r#"{"name":"slow:3000"}"#,
        &["--timeout", "500ms"],
    )
    .await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("deadline_exceeded"), "{stderr}");

    // gzip: buf asks for it; a large answer comes compressed (seen in the verbose trace).
    let name = "g".repeat(4000);
    let output = buf_curl(
        &gateway,
        &schema,
        "Echo",
        &format!(r#"{{"name":"{name}"}}"#),
        &["--verbose"],
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let trace = String::from_utf8_lossy(&output.stderr).to_ascii_lowercase();
    assert!(
        trace
            .lines()
            .any(|line| line.contains("< (#1) content-encoding: gzip")),
        "{trace}"
    );
    assert_eq!(json_documents(&output.stdout)[0]["name"], name.as_str());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
#[ignore = "needs buf; run by .ci/run"]
async fn buf_curl_finds_the_schema_by_reflection() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let authorization = format!("Authorization: Bearer {}", token("buf-user"));
    let url = gateway.at(ECHO_PATH);
    let output = run(
        "buf",
        &[
            "curl",
            "--header",
            &authorization,
            "--data",
            r#"{"name":"reflected"}"#,
            &url,
        ],
        &[],
        None,
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(json_documents(&output.stdout)[0]["name"], "reflected");
}

#[tokio::test]
#[ignore = "needs node and `npm ci` in gateway/tests/connect-node; run by .ci/run"]
async fn connect_node_speaks_connect_with_the_gateway() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let dir = scratch_dir("node");
    let descriptors = descriptor_file(&dir);
    let project = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/connect-node");
    assert!(
        project
            .join("node_modules/@connectrpc/connect-node")
            .exists(),
        "run `npm ci` in {} first",
        project.display()
    );
    let token = token("node-user");
    let output = run(
        "node",
        &["interop.mjs"],
        &[
            ("GATEWAY_URL", gateway.url.as_str()),
            ("TOKEN", token.as_str()),
            ("DESCRIPTORS", descriptors.to_str().unwrap()),
        ],
        Some(&project),
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for check in [
        "unary in protobuf",
        "unary in JSON",
        "GET for a method without side effects",
        "server stream",
        "server stream ending with an error",
        "error with BadRequest details",
        "deadline",
        "gzip both ways",
    ] {
        assert!(
            stdout.contains(&format!("ok {check}\n")),
            "{check}: {stdout}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
