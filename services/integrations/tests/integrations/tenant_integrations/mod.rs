//! Each tenant's own integration credentials and its spending limits, over gRPC as the
//! gateway calls them: the real Integrations server on its own database, in this process,
//! pointed at the real fakes of Vessey, Slack and Twilio (HTTP servers on loopback ports);
//! Dispatch and Companies beside it where a case needs them. The gateway's REST mapping of
//! the settings (route, JSON, HTTP statuses) is tested across the stack in
//! `cli/tests/cli/tenant_integrations.rs`.
//!
//! Its files by subject: [`own_credentials`] (a tenant outside the shared list brings its
//! own), [`refused_settings`] (what a PUT may not set), [`limits`] (spending limits and the
//! SMS calling codes).

use std::fmt::Debug;
use std::time::Duration;

use director_fakes::{FakeAddrs, FakeThirdParties};
use director_platform::identity::{Caller, Role};
use director_proto::integrations::integrations_service_client::IntegrationsServiceClient;
use director_proto::integrations::jobs_service_client::JobsServiceClient;
use director_proto::integrations::notifications_service_client::NotificationsServiceClient;
use director_proto::integrations::{
    GetIntegrationSettingsRequest, GetJobRequest, GetVesseyDriverRequest, Integration,
    IntegrationSettings, Job, ListIntegrationsRequest, ListJobsRequest, ListNotificationsRequest,
    Notification, NotificationStatus, SendSlackMessageRequest, SendSmsRequest,
    SyncVesseyDriversRequest, UpdateIntegrationSettingsRequest, VesseyDriver,
};
use director_store::testing::{TestService, eventually, spawn_service};
use prost_types::value::Kind;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::{FieldViolation, StatusExt as _};

mod limits;
mod own_credentials;
mod refused_settings;

/// The one tenant the deployment's credentials serve in these tests.
const SHARED_TENANT: &str = "operator-co";

/// The Integrations service of one test, and a channel to it.
struct Integrations {
    service: TestService,
    channel: Channel,
}

/// The settings that point Integrations at `fakes` (what `director up --fakes` sets), with
/// jobs polled quickly and provider retries short, then `extra` (which wins).
fn with_fakes(fakes: &FakeThirdParties, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut settings: Vec<(String, String)> = fakes
        .env()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    settings.extend(
        [
            ("JOB_POLL_INTERVAL_MS", "200"),
            ("PROVIDER_RETRY_MIN_DELAY_MS", "10"),
            ("PROVIDER_RETRY_MAX_DELAY_MS", "100"),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .map(|(name, value)| (name.to_owned(), value.to_owned())),
    );
    settings
}

/// Fresh fakes of Vessey, Slack and Twilio.
async fn start_fakes() -> FakeThirdParties {
    FakeThirdParties::start(FakeAddrs::any_loopback())
        .await
        .unwrap()
}

impl Integrations {
    /// The service with `settings` (later ones win), on a fresh database.
    async fn start(settings: &[(String, String)]) -> Self {
        let settings: Vec<(&str, &str)> = settings
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let service = spawn_service(&director_integrations::SERVICE, &settings).await;
        let channel = service.channel().await;
        Self { service, channel }
    }

    /// The service with only `settings` (no third party configured).
    async fn start_with(settings: &[(&str, &str)]) -> Self {
        let settings: Vec<(String, String)> = settings
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        Self::start(&settings).await
    }

    /// Where other services reach it: `http://…`.
    fn url(&self) -> String {
        format!("http://{}", self.service.addr)
    }

    fn integrations(&self) -> IntegrationsServiceClient<Channel> {
        IntegrationsServiceClient::new(self.channel.clone())
    }

    fn notifications(&self) -> NotificationsServiceClient<Channel> {
        NotificationsServiceClient::new(self.channel.clone())
    }

    fn jobs(&self) -> JobsServiceClient<Channel> {
        JobsServiceClient::new(self.channel.clone())
    }

    async fn list_integrations(&self, caller: &Caller) -> Vec<Integration> {
        let request = self.service.request(caller, ListIntegrationsRequest {});
        let answer = self.integrations().list_integrations(request).await;
        answer.unwrap().into_inner().integrations
    }

    /// The integration named `name` in `ListIntegrations`.
    async fn integration(&self, caller: &Caller, name: &str) -> Integration {
        let integrations = self.list_integrations(caller).await;
        let found = integrations
            .iter()
            .find(|integration| integration.name == name);
        found
            .unwrap_or_else(|| panic!("no {name}: {integrations:?}"))
            .clone()
    }

    async fn settings(&self, caller: &Caller) -> Result<IntegrationSettings, Status> {
        let request = self
            .service
            .request(caller, GetIntegrationSettingsRequest {});
        let answer = self
            .integrations()
            .get_integration_settings(request)
            .await?;
        Ok(answer.into_inner().settings.unwrap())
    }

    /// Sends `body` as `UpdateIntegrationSettings`: its `vessey`, `slack` and `twilio` keys
    /// become the request's `google.protobuf.Value` sections (`null` a null value, a missing
    /// key an absent section), as the gateway turns the PUT's JSON into the request.
    async fn put_settings(
        &self,
        caller: &Caller,
        body: &serde_json::Value,
    ) -> Result<IntegrationSettings, Status> {
        let object = body.as_object().unwrap();
        let sections = ["vessey", "slack", "twilio"];
        assert!(
            object.keys().all(|key| sections.contains(&key.as_str())),
            "{body}"
        );
        let section = |name: &str| object.get(name).cloned().map(value);
        let message = UpdateIntegrationSettingsRequest {
            vessey: section("vessey"),
            slack: section("slack"),
            twilio: section("twilio"),
        };
        let request = self.service.request(caller, message);
        let answer = self
            .integrations()
            .update_integration_settings(request)
            .await?;
        Ok(answer.into_inner().settings.unwrap())
    }

    async fn vessey_driver(&self, caller: &Caller, id: &str) -> Result<VesseyDriver, Status> {
        let message = GetVesseyDriverRequest {
            driver_id: id.to_owned(),
        };
        let request = self.service.request(caller, message);
        let answer = self.integrations().get_vessey_driver(request).await?;
        Ok(answer.into_inner().driver.unwrap())
    }

    async fn sync_drivers(&self, caller: &Caller) -> Result<Job, Status> {
        let request = self.service.request(caller, SyncVesseyDriversRequest {});
        let answer = self.integrations().sync_vessey_drivers(request).await?;
        Ok(answer.into_inner().job.unwrap())
    }

    async fn job(&self, caller: &Caller, id: &str) -> Job {
        let request = self
            .service
            .request(caller, GetJobRequest { id: id.to_owned() });
        let answer = self.jobs().get_job(request).await.unwrap();
        answer.into_inner().job.unwrap()
    }

    async fn list_jobs(&self, caller: &Caller) -> Vec<Job> {
        let request = self.service.request(caller, ListJobsRequest::default());
        let answer = self.jobs().list_jobs(request).await.unwrap();
        answer.into_inner().jobs
    }

    async fn send_sms(
        &self,
        caller: &Caller,
        to: &str,
        text: &str,
    ) -> Result<Notification, Status> {
        let message = SendSmsRequest {
            to: to.to_owned(),
            message: text.to_owned(),
        };
        let request = self.service.request(caller, message);
        let answer = self.notifications().send_sms(request).await?;
        Ok(answer.into_inner().notification.unwrap())
    }

    async fn send_slack(&self, caller: &Caller, text: &str) -> Result<Notification, Status> {
        let message = SendSlackMessageRequest {
            text: text.to_owned(),
            channel: None,
        };
        let request = self.service.request(caller, message);
        let answer = self.notifications().send_slack_message(request).await?;
        Ok(answer.into_inner().notification.unwrap())
    }

    /// The tenant's delivery log; `status` filters it (`Unspecified` for all).
    async fn list_notifications(
        &self,
        caller: &Caller,
        status: NotificationStatus,
    ) -> Vec<Notification> {
        let message = ListNotificationsRequest {
            status: status as i32,
            ..Default::default()
        };
        let request = self.service.request(caller, message);
        let answer = self.notifications().list_notifications(request).await;
        answer.unwrap().into_inner().notifications
    }
}

/// Dispatch, with the Companies service it asks whether a task's company exists, each on a
/// fresh database; Dispatch relays its task events to `integrations_url` when given.
struct Dispatch {
    dispatch: TestService,
    companies: TestService,
}

impl Dispatch {
    async fn start(integrations_url: Option<&str>) -> Self {
        let companies = spawn_service(&director_companies::SERVICE, &[]).await;
        let companies_url = format!("http://{}", companies.addr);
        let mut settings = vec![("COMPANIES_URL", companies_url.as_str())];
        settings.extend(integrations_url.map(|url| ("INTEGRATIONS_URL", url)));
        let dispatch = spawn_service(&director_dispatch::SERVICE, &settings).await;
        Self {
            dispatch,
            companies,
        }
    }

    /// The settings that point Integrations at these two.
    fn urls(&self) -> [(String, String); 2] {
        [
            (
                "DISPATCH_URL".to_owned(),
                format!("http://{}", self.dispatch.addr),
            ),
            (
                "COMPANIES_URL".to_owned(),
                format!("http://{}", self.companies.addr),
            ),
        ]
    }
}

/// A user of `tenant` with `role`.
fn caller(tenant: &str, role: Role) -> Caller {
    Caller::new(format!("user-of-{tenant}"), tenant, role)
}

/// `json` as a `google.protobuf.Value`, as the gateway reads a JSON body into one.
fn value(json: serde_json::Value) -> prost_types::Value {
    let kind = match json {
        serde_json::Value::Null => Kind::NullValue(prost_types::NullValue::NullValue as i32),
        serde_json::Value::Bool(flag) => Kind::BoolValue(flag),
        serde_json::Value::Number(number) => Kind::NumberValue(number.as_f64().unwrap()),
        serde_json::Value::String(text) => Kind::StringValue(text),
        serde_json::Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.into_iter().map(value).collect(),
        }),
        serde_json::Value::Object(fields) => Kind::StructValue(prost_types::Struct {
            fields: fields
                .into_iter()
                .map(|(name, field)| (name, value(field)))
                .collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

/// The `google.rpc.BadRequest` field violations of an INVALID_ARGUMENT refusal.
fn violations(refusal: &Status) -> Vec<FieldViolation> {
    assert_eq!(refusal.code(), Code::InvalidArgument, "{refusal:?}");
    let details = refusal.get_error_details();
    let bad_request = details.bad_request().unwrap_or_else(|| {
        panic!("no BadRequest in {refusal:?}");
    });
    bad_request.field_violations.clone()
}

/// The fields named in an INVALID_ARGUMENT refusal's violations, in its order.
fn violated_fields(refusal: &Status) -> Vec<String> {
    let violations = violations(refusal);
    violations
        .into_iter()
        .map(|violation| violation.field)
        .collect()
}

/// The `google.rpc.RetryInfo` delay of a RESOURCE_EXHAUSTED refusal.
fn retry_delay(refusal: &Status) -> Duration {
    assert_eq!(refusal.code(), Code::ResourceExhausted, "{refusal:?}");
    let details = refusal.get_error_details();
    let retry_info = details.retry_info().unwrap_or_else(|| {
        panic!("no RetryInfo in {refusal:?}");
    });
    retry_info.retry_delay.unwrap()
}

/// Everything an answer shows: its Debug form and its encoded bytes read as text.
fn answer_text<M: prost::Message + Debug>(answer: &M) -> String {
    let encoded = String::from_utf8_lossy(&answer.encode_to_vec()).into_owned();
    format!("{answer:?}\n{encoded}")
}

/// Everything a refusal shows: its code, message, details (raw and decoded) and metadata.
fn refusal_text(refusal: &Status) -> String {
    let details = String::from_utf8_lossy(refusal.details()).into_owned();
    format!(
        "{refusal:?}\n{}\n{details}\n{:?}",
        refusal.message(),
        refusal.get_error_details()
    )
}
