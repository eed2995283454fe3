//! Whose Vessey, Slack and Twilio a tenant uses.
//!
//! A tenant's own settings ([`crate::settings`]) come first. Without them, the deployment's
//! credentials (`VESSEY_*`, `SLACK_WEBHOOK_URL`, `TWILIO_*`) serve only the tenants listed in
//! `INTEGRATIONS_SHARED_TENANTS` (`*` for all, accepted only in dev, where it is the default;
//! empty elsewhere): on a deployment where anyone can sign up, a new tenant must not spend the
//! operator's SMS, post to the operator's Slack or read the operator's Vessey. Neither →
//! FAILED_PRECONDITION naming what is missing.
//!
//! Clients for a tenant's own settings connect through the egress guard
//! ([`director_providers::egress`]); the deployment's own URLs are the operator's and are not
//! checked.

use std::collections::HashSet;

use director_platform::config::{ConfigError, Env, Environment};
use director_platform::identity::{Caller, TenantId};
use director_proto::integrations::Integration as IntegrationMessage;
use director_providers::{EgressPolicy, GuardedHttp};
use director_providers::{
    HttpClient, ProviderError, ProvidersConfig, SlackClient, SlackConfig, TwilioClient,
    TwilioConfig, VesseyClient, VesseyConfig,
};

use crate::error::IntegrationsError;
use crate::settings::sections::{Integration, TenantSettings, fields};
use crate::settings::store::SettingsStore;

/// The variable listing the tenants the deployment's credentials serve.
pub const SHARED_TENANTS_VARIABLE: &str = "INTEGRATIONS_SHARED_TENANTS";

/// Whose credentials a tenant's client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The tenant's own settings.
    Tenant,
    /// The deployment's.
    Shared,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tenant => "tenant",
            Self::Shared => "shared",
        }
    }
}

/// The tenants the deployment's credentials serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedTenants {
    All,
    Listed(HashSet<String>),
}

impl SharedTenants {
    /// Reads [`SHARED_TENANTS_VARIABLE`]: comma-separated tenant ids, or `*` (dev only).
    /// Unset: `*` in dev, nobody elsewhere.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let environment = Environment::from_env(env)?;
        let Some(raw) = env.string(SHARED_TENANTS_VARIABLE) else {
            return Ok(if environment.is_dev() {
                Self::All
            } else {
                Self::Listed(HashSet::new())
            });
        };
        let tenants: HashSet<String> = raw
            .split(',')
            .map(str::trim)
            .filter(|tenant| !tenant.is_empty())
            .map(str::to_owned)
            .collect();
        if tenants.contains("*") {
            if !environment.is_dev() || tenants.len() > 1 {
                return Err(ConfigError::new(
                    SHARED_TENANTS_VARIABLE,
                    format!(
                        "`*` (every tenant, sign-ups included) is accepted only alone and when \
                         ENVIRONMENT is dev, not {environment}; list the tenants instead"
                    ),
                ));
            }
            return Ok(Self::All);
        }
        Ok(Self::Listed(tenants))
    }

    pub fn includes(&self, tenant_id: &TenantId) -> bool {
        match self {
            Self::All => true,
            Self::Listed(tenants) => tenants.contains(tenant_id.as_str()),
        }
    }
}

/// A client and whose credentials it uses.
#[derive(Debug, Clone)]
pub struct Resolved<T> {
    pub client: T,
    pub source: Source,
}

/// Twilio for one tenant: the client and the sender number it sends from.
#[derive(Debug, Clone)]
pub struct Twilio {
    pub client: TwilioClient,
    pub from_number: String,
}

/// One tenant's third parties, each usable or the reason it is not.
#[derive(Debug, Clone)]
pub struct TenantProviders {
    vessey: Result<Resolved<VesseyClient>, ProviderError>,
    slack: Result<Resolved<SlackClient>, ProviderError>,
    twilio: Result<Resolved<Twilio>, ProviderError>,
}

impl TenantProviders {
    pub fn vessey(&self) -> Result<&VesseyClient, ProviderError> {
        self.vessey
            .as_ref()
            .map(|resolved| &resolved.client)
            .map_err(Clone::clone)
    }

    pub fn slack(&self) -> Result<&SlackClient, ProviderError> {
        self.slack
            .as_ref()
            .map(|resolved| &resolved.client)
            .map_err(Clone::clone)
    }

    pub fn twilio(&self) -> Result<&Twilio, ProviderError> {
        self.twilio
            .as_ref()
            .map(|resolved| &resolved.client)
            .map_err(Clone::clone)
    }

    /// Vessey, Slack and Twilio as `GET /api/integrations` shows them.
    pub fn states(&self) -> Vec<IntegrationMessage> {
        fn state<T>(
            name: &str,
            resolved: &Result<Resolved<T>, ProviderError>,
        ) -> IntegrationMessage {
            // A tenant's section is the only source that can fail to build.
            let (configured, missing, source) = match resolved {
                Ok(resolved) => (true, Vec::new(), Some(resolved.source.as_str().to_owned())),
                Err(ProviderError::NotConfigured { missing, .. }) => (
                    false,
                    missing.iter().map(|name| (*name).to_owned()).collect(),
                    None,
                ),
                // Set but unusable (refused by the egress guard since it was stored, or no
                // HTTP client): configured by the tenant, and calls say what is wrong.
                Err(_) => (true, Vec::new(), Some(Source::Tenant.as_str().to_owned())),
            };
            IntegrationMessage {
                name: name.to_owned(),
                configured,
                missing,
                source,
            }
        }
        vec![
            state("vessey", &self.vessey),
            state("slack", &self.slack),
            state("twilio", &self.twilio),
        ]
    }
}

/// The deployment's clients, built once, and what it takes to build a tenant's.
#[derive(Debug, Clone)]
pub struct Providers {
    shared: ProvidersConfig,
    shared_vessey: Result<VesseyClient, ProviderError>,
    shared_slack: Result<SlackClient, ProviderError>,
    shared_twilio: Result<Twilio, ProviderError>,
    shared_tenants: SharedTenants,
    /// Where tenants' Twilio accounts are reached (`TWILIO_API_URL`: the operator's choice).
    twilio_api_url: String,
    settings: SettingsStore,
    /// Tenants' Vessey and Slack: through the egress guard.
    guarded: GuardedHttp,
    /// Tenants' Twilio accounts, at the operator's `TWILIO_API_URL`.
    operator_http: HttpClient,
}

impl Providers {
    /// The deployment's clients from `shared`; tenants' settings from `settings`.
    pub fn new(
        env: &Env,
        shared: ProvidersConfig,
        settings: SettingsStore,
        egress: EgressPolicy,
    ) -> Result<Self, ConfigError> {
        let retry = shared.retry.clone();
        let shared_vessey = shared.vessey_client();
        let shared_slack = shared.slack_client();
        let shared_twilio = shared.twilio_client().map(|client| Twilio {
            client,
            from_number: shared
                .twilio
                .as_ref()
                .map(|twilio| twilio.from_number.clone())
                .unwrap_or_default(),
        });
        Ok(Self {
            shared_vessey,
            shared_slack,
            shared_twilio,
            shared_tenants: SharedTenants::from_env(env)?,
            twilio_api_url: env
                .string("TWILIO_API_URL")
                .unwrap_or_else(|| director_providers::DEFAULT_TWILIO_API_URL.to_owned()),
            settings,
            guarded: GuardedHttp::new(egress, retry).map_err(|error| {
                ConfigError::new("EGRESS_ALLOW_PRIVATE_NETWORKS", error.to_string())
            })?,
            operator_http: HttpClient::operator()
                .map_err(|error| ConfigError::new("TWILIO_API_URL", error.to_string()))?,
            shared,
        })
    }

    /// Tenants' own settings.
    pub fn settings(&self) -> &SettingsStore {
        &self.settings
    }

    /// The guard tenants' URLs pass.
    pub fn egress(&self) -> &EgressPolicy {
        self.guarded.policy()
    }

    /// The caller's tenant's clients: its own settings first, else the deployment's when it
    /// is a shared tenant.
    pub async fn for_tenant(&self, caller: &Caller) -> Result<TenantProviders, IntegrationsError> {
        let settings = self.settings.load(caller).await?;
        Ok(self.resolve(&caller.tenant_id, &settings))
    }

    fn resolve(&self, tenant_id: &TenantId, settings: &TenantSettings) -> TenantProviders {
        let shared = self.shared_tenants.includes(tenant_id);
        let vessey = match settings.vessey() {
            Some(own) => VesseyConfig::new(&own.api_url, own.api_key.as_str())
                .map_err(|_| unusable(Integration::Vessey))
                .and_then(|config| self.guarded.vessey(config))
                .map(tenant),
            None => self.shared_or(shared, Integration::Vessey, &self.shared_vessey),
        };
        let slack = match settings.slack() {
            Some(own) => SlackConfig::new(&own.webhook_url)
                .map_err(|_| unusable(Integration::Slack))
                .and_then(|config| self.guarded.slack(config))
                .map(tenant),
            None => self.shared_or(shared, Integration::Slack, &self.shared_slack),
        };
        let twilio = match settings.twilio() {
            Some(own) => TwilioConfig::new(
                &self.twilio_api_url,
                own.account_sid.as_str(),
                own.auth_token.as_str(),
                own.from_number.as_str(),
            )
            .map_err(|_| unusable(Integration::Twilio))
            .map(|config| {
                TwilioClient::new_with(config, self.shared.retry.clone(), &self.operator_http)
            })
            .map(|client| {
                tenant(Twilio {
                    client,
                    from_number: own.from_number.to_string(),
                })
            }),
            None => self.shared_or(shared, Integration::Twilio, &self.shared_twilio),
        };
        TenantProviders {
            vessey,
            slack,
            twilio,
        }
    }

    /// The deployment's client for a shared tenant; otherwise NotConfigured naming the
    /// tenant's settings fields.
    fn shared_or<T: Clone>(
        &self,
        shared: bool,
        integration: Integration,
        client: &Result<T, ProviderError>,
    ) -> Result<Resolved<T>, ProviderError> {
        if !shared {
            return Err(ProviderError::not_configured(
                integration,
                fields(integration),
            ));
        }
        client.clone().map(|client| Resolved {
            client,
            source: Source::Shared,
        })
    }
}

fn tenant<T>(client: T) -> Resolved<T> {
    Resolved {
        client,
        source: Source::Tenant,
    }
}

/// A stored section no client can be built from (it passed validation when it was stored).
fn unusable(integration: Integration) -> ProviderError {
    ProviderError::InvalidResponse(format!(
        "the tenant's {} settings are unusable; set them again",
        integration.as_str()
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn every_tenant_is_shared_in_dev_and_none_elsewhere_by_default() {
        assert_eq!(
            SharedTenants::from_env(&Env::default()).unwrap(),
            SharedTenants::All
        );
        let prod = SharedTenants::from_env(&Env::from_pairs([("ENVIRONMENT", "prod")])).unwrap();
        assert!(!prod.includes(&TenantId::parse("anyone").unwrap()));
    }

    #[test]
    fn listed_tenants_only_and_star_only_in_dev() {
        let listed = SharedTenants::from_env(&Env::from_pairs([
            ("ENVIRONMENT", "prod"),
            (SHARED_TENANTS_VARIABLE, "acme, dairy-co"),
        ]))
        .unwrap();
        assert!(
            listed.includes(&TenantId::parse("acme").unwrap())
                && listed.includes(&TenantId::parse("dairy-co").unwrap())
        );
        assert!(!listed.includes(&TenantId::parse("signup-123").unwrap()));
        let star = Env::from_pairs([("ENVIRONMENT", "staging"), (SHARED_TENANTS_VARIABLE, "*")]);
        assert_eq!(
            SharedTenants::from_env(&star).unwrap_err().variable,
            SHARED_TENANTS_VARIABLE
        );
        let dev = Env::from_pairs([(SHARED_TENANTS_VARIABLE, "acme")]);
        assert!(
            !SharedTenants::from_env(&dev)
                .unwrap()
                .includes(&TenantId::parse("other").unwrap())
        );
    }
}
