//! The third parties Director talks to, named once: in errors, in each tenant's settings (the
//! integrations service stores a section per provider under [`Provider::as_str`]) and in
//! `GET /api/integrations`.

/// A third party.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Provider {
    Vessey,
    Slack,
    Twilio,
}

impl Provider {
    /// In the order answers list them.
    pub const ALL: [Self; 3] = [Self::Vessey, Self::Slack, Self::Twilio];

    /// The name used in the database, the API and error fields.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vessey => "vessey",
            Self::Slack => "slack",
            Self::Twilio => "twilio",
        }
    }

    /// The provider a stored name is; `None` for a name this version does not know.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|provider| provider.as_str() == name)
    }

    /// How errors name its credentials.
    pub fn credentials(self) -> &'static str {
        match self {
            Self::Vessey => "Vessey API credentials",
            Self::Slack => "Slack webhook",
            Self::Twilio => "Twilio credentials",
        }
    }
}
