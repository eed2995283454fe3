//! Director's gateway: the one public entry point of the system.
//!
//! One listener speaks, per request, REST/JSON (transcoded from the `google.api.http`
//! annotations of the descriptor pool), Connect, gRPC-Web and native gRPC (proxied by package
//! to the owning service). In front of all of them: Supabase token authentication, CORS, body, rate
//! and concurrency limits, request ids and security headers. See [`Gateway`].
//!
//! Module map: [`server`] (listener, layering), [`compression`] (REST answers),
//! [`connection`] (connection cap and timeouts), [`api`] (HTTP side), [`proxy`] and
//! [`proxy_body`] (gRPC and gRPC-Web, message cap, token expiry), [`connect`] (the Connect
//! protocol, translated to gRPC), [`local_grpc`] (reflection, health), [`auth`],
//! [`admission`] (token then rate limit), [`client_addr`] (trusted proxies), [`forward`]
//! (identity sent upstream), [`upstream`] (balanced channels), [`cors`], [`limits`],
//! [`edge`], [`security`], [`health`], [`rest`] and [`openapi`] (transcoding, documentation
//! and its embedded assets).

pub mod admission;
pub mod api;
pub mod auth;
pub mod client_addr;
pub mod compression;
pub mod config;
pub mod connect;
pub mod connection;
pub mod cors;
pub mod edge;
pub mod error;
pub mod forward;
pub mod health;
pub mod limits;
pub mod local_grpc;
pub mod openapi;
pub mod protocol;
pub mod proxy;
pub mod proxy_body;
pub mod request_id;
pub mod rest;
pub mod resume;
pub mod security;
pub mod server;
pub mod state;
pub mod upstream;

pub use config::GatewayConfig;
pub use error::ApiError;
pub use server::Gateway;
