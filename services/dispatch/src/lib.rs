//! Director's Dispatch service: the drivers who collect milk and the collection tasks they are
//! given (`director.dispatch.v1.DriversService`, `TasksService`).
//!
//! - [`domain`]: the typed core every other module speaks in (ids, states, checked values,
//!   rows); a leaf.
//! - [`error`]: the service's one error type and its table of gRPC codes.
//! - [`drivers`]: driver CRUD; a caller with role `driver` is the driver whose `user_id` is
//!   their user id and sees only that record.
//! - [`tasks`]: task CRUD and the state machine, one SQL statement per transition (the
//!   database refuses any other transition too); `company_id` is checked with Companies over
//!   gRPC as the caller ([`companies`]).
//! - [`events`]: the task-event outbox (rows written by a trigger in the same transaction as
//!   the change) streamed live by `WatchTasks`, woken by LISTEN/NOTIFY so any number of
//!   replicas serve watchers; each process reads a tenant's new events once and fans them
//!   out to that tenant's watchers in memory.
//! - [`internal`]: bulk upserts of drivers and tasks for imports, to other services only.
//! - [`relay`]: the events that notify, delivered to Integrations at least once by a durable
//!   job queued with each such event.

pub mod companies;
pub mod domain;
pub mod drivers;
pub mod error;
pub mod events;
pub mod internal;
pub mod relay;
pub mod scope;
pub mod tasks;

use director_platform::catalog;
use director_platform::server::{
    GRPC_COMPRESSION, MAX_BULK_MESSAGE_BYTES, MAX_REQUEST_MESSAGE_BYTES,
};
use director_proto::dispatch::drivers_service_server::{self, DriversServiceServer};
use director_proto::dispatch::tasks_service_server::{self, TasksServiceServer};
use director_proto::internal::dispatch::dispatch_internal_service_server::{
    self, DispatchInternalServiceServer,
};
use director_store::jobs::JobsConfig;
use director_store::runner::{Service, ServiceContext};

/// The Dispatch service, as the runner (and `director up`) start it.
pub const SERVICE: Service = Service {
    spec: &catalog::DISPATCH,
    grpc_services: &[
        drivers_service_server::SERVICE_NAME,
        tasks_service_server::SERVICE_NAME,
        dispatch_internal_service_server::SERVICE_NAME,
    ],
    descriptor_set: director_proto::FILE_DESCRIPTOR_SET,
    routes,
};

fn routes(context: &ServiceContext) -> anyhow::Result<tonic::service::Routes> {
    let companies = companies::CompanyDirectory::new(context.client(&catalog::COMPANIES)?);
    // Requests read and write through `context.db`; listening, the job worker with the relay
    // it runs, and the relay's sweep and gauge need sessions: `context.session`.
    let events = events::TaskEvents::start(
        context.db.clone(),
        context.session.pool().clone(),
        context.shutdown.clone(),
    );
    let relay_config = relay::RelayConfig::from_env(&context.env)?;
    let relay = relay::Relay::new(
        context.session.clone(),
        context.client(&catalog::INTEGRATIONS)?,
    )
    .with_config(relay_config.clone());
    director_store::jobs::spawn_worker(
        JobsConfig::from_env(&context.env)?.with_max_retry_delay(relay_config.retry_max),
        context.session.pool().clone(),
        context.shutdown.clone(),
        &context.background,
        move |options| {
            options
                .define_job::<relay::RelayTaskEvents>()
                .add_extension(relay.clone())
        },
    );
    relay::spawn_lag_metrics(
        context.session.pool().clone(),
        context.shutdown.clone(),
        &context.background,
    );
    relay::spawn_sweep(
        context.session.clone(),
        relay_config.sweep_interval,
        context.shutdown.clone(),
        &context.background,
    );
    let drivers = drivers::DriversApi::new(drivers::DriverStore::new(context.db.clone()));
    let tasks = tasks::TasksApi::new(tasks::TaskStore::new(context.db.clone()), companies, events);
    Ok(tonic::service::Routes::new(
        DriversServiceServer::new(drivers)
            .max_decoding_message_size(MAX_REQUEST_MESSAGE_BYTES)
            .accept_compressed(GRPC_COMPRESSION)
            .send_compressed(GRPC_COMPRESSION),
    )
    .add_service(
        TasksServiceServer::new(tasks)
            .max_decoding_message_size(MAX_REQUEST_MESSAGE_BYTES)
            .accept_compressed(GRPC_COMPRESSION)
            .send_compressed(GRPC_COMPRESSION),
    )
    .add_service(
        DispatchInternalServiceServer::new(internal::DispatchInternalApi::new(context.db.clone()))
            .max_decoding_message_size(MAX_BULK_MESSAGE_BYTES),
    ))
}
