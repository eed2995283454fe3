//! Director's Integrations service: the Vessey collection API, Slack and Twilio, and the
//! durable jobs and notifications that talk to them
//! (`director.integrations.v1.IntegrationsService`, `JobsService`, `NotificationsService`).
//!
//! - [`domain`]: the typed core every other module speaks — row ids, stored states, parsed
//!   values, the job tally and the queue payloads; a leaf that imports nothing of the crate.
//!   [`error`]: the one error type and its table of gRPC codes. [`access`]: who may call.
//! - [`vessey`]: configuration state, driver look-up, and the driver sync and collections
//!   import — jobs that page through Vessey and write to Dispatch and Companies with their
//!   bulk internal RPCs — and the queue job that runs them.
//! - [`jobs`]: the tenant's view of its jobs, run by the platform's durable queue
//!   ([`director_store::jobs`]), watched live.
//! - [`settings`]: each tenant's own integration credentials, sealed at rest;
//!   [`providers`]: whose credentials a tenant's calls use (its own, or the deployment's for
//!   the tenants it serves).
//! - [`notifications`]: SMS and Slack messages queued with a delivery log and sent by jobs,
//!   within each tenant's spending limits.
//! - [`task_events`]: Dispatch's task events, relayed here at least once and consumed once.
//!
//! The third parties' clients live in `director-providers`; their fakes in `director-fakes`.
//!
//! Modules depend downwards only (`tools/module_cycles.py` checks there is no circle):
//! `domain` ← `error`, `access` ← the stores (`jobs::store`, `notifications::store`,
//! `settings`) ← `providers` ← `app` ← the work and its handlers (`vessey`, `task_events`);
//! a store enqueues a payload of `domain::queue` and never names the handler that runs it.

pub mod access;
pub mod app;
pub mod domain;
pub mod error;
pub mod jobs;
pub mod notifications;
pub mod providers;
pub mod settings;
pub mod task_events;
pub mod vessey;

use director_platform::catalog;
use director_platform::config::ConfigError;
use director_platform::server::{
    GRPC_COMPRESSION, MAX_BULK_MESSAGE_BYTES, MAX_REQUEST_MESSAGE_BYTES,
};
use director_proto::integrations::integrations_service_server::{self, IntegrationsServiceServer};
use director_proto::integrations::jobs_service_server::{self, JobsServiceServer};
use director_proto::integrations::notifications_service_server::{
    self, NotificationsServiceServer,
};
use director_proto::internal::integrations::task_event_sink_service_server::{
    self, TaskEventSinkServiceServer,
};
use director_providers::ProvidersConfig;
use director_providers::egress::EgressPolicy;
use director_store::jobs::JobsConfig;
use director_store::notify::Notifications;
use director_store::runner::{Service, ServiceContext};

use crate::app::App;
use crate::domain::{RunJob, SendNotification};
use crate::jobs::store::JobStore;
use crate::jobs::watch::JobWatch;
use crate::notifications::limits::SpendingLimits;
use crate::notifications::send::Outbox;
use crate::notifications::store::NotificationStore;
use crate::providers::Providers;
use crate::settings::cipher::SettingsCipher;
use crate::settings::store::SettingsStore;

/// The Integrations service, as the runner (and `director up`) start it.
pub const SERVICE: Service = Service {
    spec: &catalog::INTEGRATIONS,
    grpc_services: &[
        integrations_service_server::SERVICE_NAME,
        jobs_service_server::SERVICE_NAME,
        notifications_service_server::SERVICE_NAME,
        task_event_sink_service_server::SERVICE_NAME,
    ],
    descriptor_set: director_proto::FILE_DESCRIPTOR_SET,
    routes,
};

fn routes(context: &ServiceContext) -> anyhow::Result<tonic::service::Routes> {
    let env = &context.env;
    let jobs_config = JobsConfig::from_env(env)?;
    let cipher = SettingsCipher::from_env(env)?;
    tracing::info!(
        key_id = cipher.current_key_id(),
        "tenants' integration settings are sealed with this key"
    );
    let settings = SettingsStore::new(context.db.clone(), cipher);
    let providers = Providers::new(
        env,
        ProvidersConfig::from_env(env)?,
        settings,
        EgressPolicy::from_env(env)?,
    )?;
    let limits = SpendingLimits::from_env(env)?;
    let max_active_jobs: u32 = env.parse_or("MAX_ACTIVE_JOBS_PER_TENANT", 4)?;
    // Requests go through `context.db`; the workers, the jobs they run and the listener
    // through `context.session`, the pool with sessions of their own (see "Sessions" in
    // `director_store::db`).
    let stores = |db: &director_store::tenant::TenantDb| {
        (
            JobStore::new(db.clone(), jobs_config.max_attempts, max_active_jobs),
            NotificationStore::new(db.clone(), jobs_config.max_attempts, limits.clone()),
        )
    };
    let (jobs, notifications) = stores(&context.db);
    let app = App {
        jobs,
        notifications,
        providers,
        dispatch: context.client(&catalog::DISPATCH)?,
        companies: context.client(&catalog::COMPANIES)?,
    };
    let (jobs, notifications) = stores(&context.session);
    let background_app = App {
        jobs,
        notifications,
        ..app.clone()
    };
    // Two pools of workers, each taking only its own jobs: notifications never wait behind
    // syncs and imports, however many are queued.
    let notification_concurrency: usize = env.parse_or("NOTIFICATION_JOB_CONCURRENCY", 4)?;
    if notification_concurrency == 0 || max_active_jobs == 0 {
        let variable = if max_active_jobs == 0 {
            "MAX_ACTIVE_JOBS_PER_TENANT"
        } else {
            "NOTIFICATION_JOB_CONCURRENCY"
        };
        return Err(ConfigError::invalid(variable, "1 or more", "0").into());
    }
    let notification_workers = JobsConfig {
        concurrency: notification_concurrency,
        ..jobs_config.clone()
    };
    let worker_app = background_app.clone();
    director_store::jobs::spawn_worker(
        jobs_config,
        context.session.pool().clone(),
        context.shutdown.clone(),
        &context.background,
        move |options| {
            options
                .define_job::<RunJob>()
                .add_extension(worker_app.clone())
        },
    );
    let outbox = Outbox {
        notifications: background_app.notifications,
        providers: background_app.providers,
    };
    director_store::jobs::spawn_worker(
        notification_workers,
        context.session.pool().clone(),
        context.shutdown.clone(),
        &context.background,
        move |options| {
            options
                .define_job::<SendNotification>()
                .add_extension(outbox.clone())
        },
    );
    let notifications = Notifications::start(
        context.session.pool().clone(),
        jobs::watch::CHANNEL,
        context.shutdown.clone(),
    );
    let watch = JobWatch::new(app.jobs.clone(), notifications, context.shutdown.clone());
    Ok(tonic::service::Routes::new(
        IntegrationsServiceServer::new(vessey::grpc::IntegrationsApi::new(app.clone()))
            .max_decoding_message_size(MAX_REQUEST_MESSAGE_BYTES)
            .accept_compressed(GRPC_COMPRESSION)
            .send_compressed(GRPC_COMPRESSION),
    )
    .add_service(
        JobsServiceServer::new(jobs::grpc::JobsApi::new(app.jobs.clone(), watch))
            .max_decoding_message_size(MAX_REQUEST_MESSAGE_BYTES)
            .accept_compressed(GRPC_COMPRESSION)
            .send_compressed(GRPC_COMPRESSION),
    )
    .add_service(
        NotificationsServiceServer::new(notifications::grpc::NotificationsApi::new(
            app.notifications.clone(),
            app.providers.clone(),
        ))
        .max_decoding_message_size(MAX_REQUEST_MESSAGE_BYTES)
        .accept_compressed(GRPC_COMPRESSION)
        .send_compressed(GRPC_COMPRESSION),
    )
    .add_service(
        TaskEventSinkServiceServer::new(task_events::TaskEventSink::new(app))
            .max_decoding_message_size(MAX_BULK_MESSAGE_BYTES),
    ))
}
