//! Each tenant's own integration credentials (`GET`/`PUT /api/integrations/settings`):
//! checked ([`sections`]), sealed at rest ([`cipher`]), stored per tenant ([`store`]), and
//! write-only — answers show a secret as `"…"` and its last 4 characters.

pub mod cipher;
pub mod grpc;
pub mod sections;
pub mod store;
