//! A tenant's own integration settings, section by section: what a PUT may say, how each
//! field is checked, and how answers show them (secrets masked).

use std::collections::BTreeMap;
use std::fmt;

use director_platform::contract_rules;
use director_platform::validate::Violations;
use director_proto::integrations as pb;
use director_providers::egress::{EgressPolicy, Purpose};
use prost_types::value::Kind;
use serde::{Deserialize, Serialize};

use crate::domain::{AccountSid, ApiSecret, PhoneE164};
/// Secrets shorter than this are shown as `"…"` alone: their last 4 characters would give
/// away too much of them.
const MASK_MIN_LEN: usize = 12;

/// The third parties a tenant may configure: `director-providers`' own list, so a provider
/// is named in one place.
pub use director_providers::Provider as Integration;

/// The settings fields a tenant sets for `integration`, as error messages name them.
pub fn fields(integration: Integration) -> &'static [&'static str] {
    match integration {
        Integration::Vessey => &["vessey.api_url", "vessey.api_key"],
        Integration::Slack => &["slack.webhook_url"],
        Integration::Twilio => &[
            "twilio.account_sid",
            "twilio.auth_token",
            "twilio.from_number",
        ],
    }
}

/// A tenant's Vessey API.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VesseySection {
    pub api_url: String,
    pub api_key: ApiSecret,
}

/// A tenant's Slack webhook (its URL is its secret).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackSection {
    pub webhook_url: String,
}

/// A tenant's Twilio account.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwilioSection {
    pub account_sid: AccountSid,
    pub auth_token: ApiSecret,
    pub from_number: PhoneE164,
}

/// One section's content.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Section {
    Vessey(VesseySection),
    Slack(SlackSection),
    Twilio(TwilioSection),
}

impl Section {
    pub fn integration(&self) -> Integration {
        match self {
            Self::Vessey(_) => Integration::Vessey,
            Self::Slack(_) => Integration::Slack,
            Self::Twilio(_) => Integration::Twilio,
        }
    }

    /// The section as stored (then sealed): JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The section `integration`'s stored JSON describes.
    pub fn from_bytes(integration: Integration, bytes: &[u8]) -> Option<Self> {
        match integration {
            Integration::Vessey => serde_json::from_slice(bytes).ok().map(Self::Vessey),
            Integration::Slack => serde_json::from_slice(bytes).ok().map(Self::Slack),
            Integration::Twilio => serde_json::from_slice(bytes).ok().map(Self::Twilio),
        }
    }

    /// Every value in it that must never be shown, logged or stored in clear.
    pub fn secrets(&self) -> Vec<&str> {
        match self {
            Self::Vessey(vessey) => vec![vessey.api_key.as_str()],
            Self::Slack(slack) => vec![&slack.webhook_url],
            Self::Twilio(twilio) => vec![twilio.auth_token.as_str(), twilio.account_sid.as_str()],
        }
    }
}

/// Never prints a value: only which section it is.
impl fmt::Debug for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Section({})", self.integration().as_str())
    }
}

/// `Debug` for a section's struct that prints its name only: every field is, or may reveal,
/// a credential.
macro_rules! opaque_debug {
    ($($section:ty),*) => {$(
        impl fmt::Debug for $section {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($section), "([redacted])"))
            }
        }
    )*};
}

opaque_debug!(VesseySection, SlackSection, TwilioSection);

/// The sections a tenant has set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantSettings(pub BTreeMap<Integration, Section>);

impl TenantSettings {
    pub fn vessey(&self) -> Option<&VesseySection> {
        match self.0.get(&Integration::Vessey) {
            Some(Section::Vessey(vessey)) => Some(vessey),
            _ => None,
        }
    }

    pub fn slack(&self) -> Option<&SlackSection> {
        match self.0.get(&Integration::Slack) {
            Some(Section::Slack(slack)) => Some(slack),
            _ => None,
        }
    }

    pub fn twilio(&self) -> Option<&TwilioSection> {
        match self.0.get(&Integration::Twilio) {
            Some(Section::Twilio(twilio)) => Some(twilio),
            _ => None,
        }
    }

    /// As answers show them: secrets masked.
    pub fn to_message(&self) -> pb::IntegrationSettings {
        pb::IntegrationSettings {
            vessey: self.vessey().map(|vessey| pb::VesseySettings {
                api_url: vessey.api_url.clone(),
                api_key: mask(vessey.api_key.as_str()),
            }),
            slack: self.slack().map(|slack| pb::SlackSettings {
                webhook_url: mask(&slack.webhook_url),
            }),
            twilio: self.twilio().map(|twilio| pb::TwilioSettings {
                account_sid: twilio.account_sid.as_str().to_owned(),
                auth_token: mask(twilio.auth_token.as_str()),
                from_number: twilio.from_number.as_str().to_owned(),
            }),
        }
    }
}

/// `"…"` and the secret's last 4 characters (`"…"` alone for a short one).
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < MASK_MIN_LEN {
        return "…".to_owned();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("…{tail}")
}

/// What a PUT asks of one section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Absent: leave it.
    Keep,
    /// `null`: remove it.
    Remove,
    /// An object: replace it.
    Set(Section),
}

/// A PUT, checked: one change per integration, or every problem found. The request has
/// passed its contract's rules (`director_platform::contract_rules::check`): each section is
/// absent, `null` or an object of its settings message with every field set and well formed;
/// what is left are the checks that need the service (each URL through the egress guard) and
/// the typed values.
pub async fn parse_update(
    request: pb::UpdateIntegrationSettingsRequest,
    egress: &EgressPolicy,
) -> Result<Vec<(Integration, Change)>, tonic::Status> {
    let mut violations = Violations::new();
    let mut changes = Vec::new();
    for (integration, value) in [
        (Integration::Vessey, request.vessey),
        (Integration::Slack, request.slack),
        (Integration::Twilio, request.twilio),
    ] {
        let change = match value.and_then(|value| value.kind) {
            None => Change::Keep,
            Some(Kind::NullValue(_)) => Change::Remove,
            Some(Kind::StructValue(object)) => {
                match section(integration, &object, egress, &mut violations).await? {
                    Some(section) => Change::Set(section),
                    None => continue,
                }
            }
            Some(_) => {
                violations.add(integration.as_str(), "must be an object or null");
                continue;
            }
        };
        changes.push((integration, change));
    }
    violations.into_result()?;
    Ok(changes)
}

/// The section `object` sets for `integration`, or `None` with its problems in `violations`.
async fn section(
    integration: Integration,
    object: &prost_types::Struct,
    egress: &EgressPolicy,
    violations: &mut Violations,
) -> Result<Option<Section>, tonic::Status> {
    let name = integration.as_str();
    let path = |key: &str| format!("{name}.{key}");
    Ok(match integration {
        Integration::Vessey => {
            let read: pb::VesseySettings = contract_rules::read_object(object, name)?;
            let url = tenant_url(
                &path("api_url"),
                &read.api_url,
                Purpose::Vessey,
                egress,
                violations,
            )
            .await;
            let key = violations.check(&path("api_key"), ApiSecret::parse(&read.api_key));
            url.zip(key)
                .map(|(api_url, api_key)| Section::Vessey(VesseySection { api_url, api_key }))
        }
        Integration::Slack => {
            let read: pb::SlackSettings = contract_rules::read_object(object, name)?;
            tenant_url(
                &path("webhook_url"),
                &read.webhook_url,
                Purpose::Slack,
                egress,
                violations,
            )
            .await
            .map(|webhook_url| Section::Slack(SlackSection { webhook_url }))
        }
        Integration::Twilio => {
            let read: pb::TwilioSettings = contract_rules::read_object(object, name)?;
            let sid = violations.check(&path("account_sid"), AccountSid::parse(&read.account_sid));
            let token = violations.check(&path("auth_token"), ApiSecret::parse(&read.auth_token));
            let from = violations.check(&path("from_number"), PhoneE164::parse(&read.from_number));
            match (sid, token, from) {
                (Some(account_sid), Some(auth_token), Some(from_number)) => {
                    Some(Section::Twilio(TwilioSection {
                        account_sid,
                        auth_token,
                        from_number,
                    }))
                }
                _ => None,
            }
        }
    })
}

/// A URL a tenant supplies (`raw`, at `path`): through the egress guard, its addresses
/// resolved now too (the guard checks them again at every connection).
async fn tenant_url(
    path: &str,
    raw: &str,
    purpose: Purpose,
    egress: &EgressPolicy,
    violations: &mut Violations,
) -> Option<String> {
    // The guard's refusal names the field; the violation names it already, so only the
    // rule is kept.
    let url = violations.check(
        path,
        egress
            .check_url(path, raw, purpose)
            .map_err(|refused| refused.rule),
    )?;
    violations.check(
        path,
        egress
            .check_resolves(path, &url)
            .await
            .map_err(|refused| refused.rule),
    )?;
    Some(url.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn masks_keep_only_the_last_four_characters_of_long_secrets() {
        assert_eq!(mask("sk_live_0123456789abcd"), "…abcd");
        assert_eq!(mask("short"), "…");
        assert_eq!(mask("ünïcödé-ключ-1234"), "…1234");
    }

    #[test]
    fn sections_round_trip_through_their_stored_form() {
        let twilio = Section::Twilio(TwilioSection {
            account_sid: AccountSid::parse(&format!("AC{}", "a".repeat(32))).unwrap(),
            auth_token: ApiSecret::parse("token").unwrap(),
            from_number: PhoneE164::parse("+15550100000").unwrap(),
        });
        let bytes = twilio.to_bytes();
        assert_eq!(
            Section::from_bytes(Integration::Twilio, &bytes).unwrap(),
            twilio
        );
        assert!(Section::from_bytes(Integration::Slack, &bytes).is_none());
        assert_eq!(format!("{twilio:?}"), "Section(twilio)");
    }
}
