//! Helpers for tests of any Director process (feature `testing`): its `/metrics` served on a
//! free port, scraped, and read series by series. Tests of a service with a database start it
//! with `director_store::testing`.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::net::SocketAddr;

use tokio_util::sync::CancellationToken;

/// An admin listener on a free loopback port serving this process' `/metrics` (until the
/// process ends); answers its address.
pub async fn spawn_metrics() -> SocketAddr {
    crate::metrics::spawn_admin(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        CancellationToken::new(),
    )
    .await
    .unwrap()
}

/// `GET /metrics` from the admin listener at `admin`, over plain HTTP/1.1; the body.
pub async fn scrape(admin: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(admin).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: metrics\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{head}"
    );
    body.to_owned()
}

/// The value of the first series `name` in Prometheus text `text` carrying every label of
/// `labels`.
pub fn series_value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| {
            line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} "))
        })
        .find(|line| {
            labels
                .iter()
                .all(|(key, value)| line.contains(&format!("{key}=\"{value}\"")))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|number| number.parse().ok())
}
