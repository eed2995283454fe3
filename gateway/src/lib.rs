//! Director's gateway: the one public entry point of the system.
//!
//! One listener speaks, per request, REST/JSON (transcoded from the `google.api.http`
//! annotations of the descriptor pool), Connect, gRPC-Web and native gRPC (proxied by package
//! to the owning service). In front of all of them: Supabase token authentication, CORS, body, rate
//! and concurrency limits, request ids and security headers. See [`Gateway`].
//!
//! Modules are layered: each imports only modules named before it in this list, so none is
//! part of an import circle (`tools/module_cycles.py` checks it). From the bottom:
//!
//! 1. leaves, importing no other module: [`error`] (the one error shape), [`request_id`],
//!    [`security`] (headers), [`client_addr`] (the peer a request came from, trusted
//!    proxies), [`event_ids`] (the conventions resuming streams rely on), [`proxy_body`]
//!    (message cap, token expiry, hidden internal errors);
//! 2. settings: [`config`], every setting read and checked once;
//! 3. building blocks: [`auth`], [`cors`], [`connection`] (connection cap and timeouts),
//!    [`resume`] (streams reopened on another replica) under [`upstream`] (balanced
//!    channels), [`forward`] (identity sent upstream);
//! 4. the protocols, translated without knowing who answers: [`connect`] (the Connect
//!    protocol, translated to gRPC and handed to the forwarding it is given), [`protocol`]
//!    (which protocol a request speaks, and the shape of an error the gateway raises itself),
//!    [`rest`] and [`openapi`] (transcoding, documentation and its embedded assets),
//!    [`health`] (the HTTP probes), [`compression`] (REST answers);
//! 5. limits: [`limits`] (rate limits, body cap, stream caps, shedding beyond the
//!    concurrency cap), [`local_grpc`] (reflection, health);
//! 6. [`state`]: the shared state every handler receives, composed of the layers below;
//! 7. handlers: [`admission`] (token then rate limit), [`proxy`] (gRPC and gRPC-Web, and the
//!    forwarding every protocol shares), [`api`] (HTTP side);
//! 8. the top: [`edge`] (request id, span, security headers, access log) and [`server`]
//!    (the listener, assembling the layers).

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
pub mod event_ids;
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
