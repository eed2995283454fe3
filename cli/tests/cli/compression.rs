//! Compressed answers on the whole stack (issue 21, point 5): a list of 100 companies travels
//! gzip- or brotli-compressed over REST when the client accepts it and as it is otherwise,
//! and gzip-compressed over native gRPC and gRPC-Web when the client offers gzip (the gateway
//! passes `grpc-accept-encoding` through; the Companies service compresses).

#![allow(clippy::unwrap_used)]

use crate::common;

use std::io::Read as _;

use common::{TestStack, spawn_stack, token};
use director_proto::companies::ListCompaniesRequest;
use director_proto::companies::companies_service_client::CompaniesServiceClient;
use prost::Message as _;
use serde_json::json;
use tonic::codec::CompressionEncoding;

const LIST_100: &str = "/api/companies?limit=100";

/// A stack with 100 companies in `tenant`; the tenant's token.
async fn stack_with_100_companies(tenant: &str) -> (TestStack, String) {
    let app = spawn_stack().await;
    let token = token(tenant, None);
    for n in 0..100 {
        app.create_company(
            &token,
            json!({
                "name": format!("Compressed Farm {n}"),
                "email": format!("farm{n}@example.com"),
                "phone": "+15550100000",
                "address": format!("{n} Long Lane, Milkton"),
            }),
        )
        .await;
    }
    (app, token)
}

/// The list's answer to `accept_encoding` (none: no header): `Content-Encoding` and raw bytes.
async fn list(
    app: &TestStack,
    token: &str,
    accept_encoding: Option<&str>,
) -> (Option<String>, Vec<u8>) {
    let mut request = app.get(LIST_100, token);
    if let Some(accepted) = accept_encoding {
        request = request.header("accept-encoding", accepted);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let encoding = response
        .headers()
        .get("content-encoding")
        .map(|value| value.to_str().unwrap().to_owned());
    if encoding.is_some() {
        let vary: Vec<_> = response.headers().get_all("vary").iter().collect();
        assert!(
            vary.iter().any(|value| *value == "accept-encoding"),
            "{vary:?}"
        );
    }
    (encoding, response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn a_list_of_100_companies_travels_compressed_when_the_client_accepts_it() {
    let (app, token) = stack_with_100_companies("compression").await;

    let (encoding, plain) = list(&app, &token, None).await;
    assert_eq!(encoding, None);
    let companies: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(companies.as_array().unwrap().len(), 100);

    let (encoding, gzipped) = list(&app, &token, Some("gzip")).await;
    assert_eq!(encoding.as_deref(), Some("gzip"));
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(gzipped.as_slice())
        .read_to_end(&mut decoded)
        .unwrap();
    assert_eq!(decoded, plain);
    assert!(
        gzipped.len() * 4 < plain.len(),
        "gzip: {} of {} bytes",
        gzipped.len(),
        plain.len()
    );

    // A browser's offer: brotli preferred when the q-values tie.
    let (encoding, brotli) = list(&app, &token, Some("gzip, deflate, br")).await;
    assert_eq!(encoding.as_deref(), Some("br"));
    let mut decoded = Vec::new();
    brotli_decompressor::Decompressor::new(brotli.as_slice(), 4096)
        .read_to_end(&mut decoded)
        .unwrap();
    assert_eq!(decoded, plain);
    assert!(brotli.len() * 4 < plain.len());

    // Only encodings the client accepts: none it knows means as it is.
    let (encoding, body) = list(&app, &token, Some("identity")).await;
    assert_eq!(encoding, None);
    assert_eq!(body, plain);
    let (encoding, _) = list(&app, &token, Some("zstd;q=1, gzip;q=0")).await;
    assert_eq!(encoding, None);

    // A small answer is sent as it is, whatever the client accepts.
    let (encoding, _) = {
        let response = app
            .get("/api/companies?limit=1", &token)
            .header("accept-encoding", "gzip, br")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let encoding = response.headers().get("content-encoding").cloned();
        (encoding, response.bytes().await.unwrap())
    };
    assert_eq!(encoding, None);
}

#[tokio::test]
async fn grpc_and_grpc_web_lists_are_gzip_compressed_when_the_client_offers_it() {
    let (app, token) = stack_with_100_companies("grpc-compression").await;
    let channel = tonic::transport::Channel::from_shared(app.base.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let authorized = |request: ListCompaniesRequest| {
        let mut request = tonic::Request::new(request);
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        request
    };
    let page = ListCompaniesRequest {
        skip: None,
        limit: Some(100),
    };

    // Native gRPC: gzip both ways when offered.
    let mut client = CompaniesServiceClient::new(channel.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip);
    let response = client.list_companies(authorized(page)).await.unwrap();
    assert_eq!(
        response.metadata().get("grpc-encoding").unwrap(),
        "gzip",
        "the service compressed the answer"
    );
    assert_eq!(response.into_inner().companies.len(), 100);
    // Not offered: plain messages.
    let mut plain_client = CompaniesServiceClient::new(channel);
    let response = plain_client.list_companies(authorized(page)).await.unwrap();
    assert!(response.metadata().get("grpc-encoding").is_none());
    assert_eq!(response.into_inner().companies.len(), 100);

    // gRPC-Web over HTTP/1.1, as a browser library sends it.
    let message = page.encode_to_vec();
    let mut frame = vec![0];
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&message);
    let call = |accept: Option<&'static str>| {
        let mut request = app
            .http
            .post(app.url("/director.companies.v1.CompaniesService/ListCompanies"))
            .bearer_auth(&token)
            .header("content-type", "application/grpc-web+proto")
            .header("x-grpc-web", "1")
            .body(frame.clone());
        if let Some(accept) = accept {
            request = request.header("grpc-accept-encoding", accept);
        }
        request.send()
    };
    let response = call(Some("gzip")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["grpc-encoding"], "gzip");
    // The HTTP layer does not compress gRPC-Web a second time.
    assert!(response.headers().get("content-encoding").is_none());
    let body = response.bytes().await.unwrap();
    let (flag, length) = (body[0], u32::from_be_bytes(body[1..5].try_into().unwrap()));
    assert_eq!(flag, 1, "the message is marked compressed");
    let compressed = &body[5..5 + length as usize];
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(compressed)
        .read_to_end(&mut decoded)
        .unwrap();
    let list =
        director_proto::companies::ListCompaniesResponse::decode(decoded.as_slice()).unwrap();
    assert_eq!(list.companies.len(), 100);

    let response = call(None).await.unwrap();
    assert!(response.headers().get("grpc-encoding").is_none());
    let body = response.bytes().await.unwrap();
    assert_eq!(body[0], 0, "not compressed when not offered");
}
