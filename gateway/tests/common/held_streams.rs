//! Held streams: `WatchEchoes` answers `count` events, then (with `hold`) nothing until the
//! caller goes away; opened through the gateway over native gRPC or gRPC-Web.

use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, Value};

use super::{DynamicCodec, TestGateway, authorized, echo_pool, grpc_channel, grpc_web_frame, http};

/// The echo service's resumable stream, as a gRPC path.
pub const WATCH_PATH: &str = "/director.testing.v1.EchoService/WatchEchoes";

/// A `WatchEchoes` request for `count` events, held open after them with `hold`.
pub fn watch_request(pool: &DescriptorPool, count: i32, hold: bool) -> DynamicMessage {
    let mut request = DynamicMessage::new(
        pool.get_message_by_name("director.testing.v1.WatchEchoesRequest")
            .unwrap(),
    );
    request.set_field_by_name("count", Value::I32(count));
    request.set_field_by_name("hold", Value::Bool(hold));
    request
}

/// The `WatchEchoes` response message.
pub fn watch_response_descriptor(pool: &DescriptorPool) -> MessageDescriptor {
    pool.get_message_by_name("director.testing.v1.WatchEchoesResponse")
        .unwrap()
}

/// A native gRPC `WatchEchoes` stream through `gateway` (one event, then held), once its
/// first message has arrived, so it is surely open end to end.
pub async fn open_held_grpc_stream(
    gateway: &TestGateway,
    authorization: &str,
) -> tonic::codec::Streaming<DynamicMessage> {
    let pool = echo_pool();
    let mut client = tonic::client::Grpc::new(grpc_channel(gateway).await);
    client.ready().await.unwrap();
    let mut stream = client
        .server_streaming(
            authorized(watch_request(&pool, 1, true), authorization),
            http::uri::PathAndQuery::from_static(WATCH_PATH),
            DynamicCodec::new(watch_response_descriptor(&pool)),
        )
        .await
        .unwrap()
        .into_inner();
    assert!(stream.message().await.unwrap().is_some());
    stream
}

/// The same stream over gRPC-Web: the response, checked 200, before its body is read.
pub async fn open_held_grpc_web_stream(
    gateway: &TestGateway,
    authorization: &str,
) -> reqwest::Response {
    let request = watch_request(&echo_pool(), 1, true).encode_to_vec();
    let response = http()
        .post(gateway.at(WATCH_PATH))
        .header("content-type", "application/grpc-web+proto")
        .header("authorization", authorization)
        .body(grpc_web_frame(&request))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
}
