//! The Vessey API client: one driver, pages of drivers, pages of a day's collections.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::{PrintableUrl, RetryPolicy, VesseyConfig};
use crate::egress::Purpose;
use crate::error::ProviderError;
use crate::http::{BODY_LIMIT, Call, HttpClient, PAGE_BODY_LIMIT, Transport, join_segments};
use crate::redact::{Redactor, url_credentials};

/// A driver as Vessey knows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VesseyDriver {
    /// Vessey's id.
    pub id: String,
    /// Full name.
    pub name: String,
    /// As typed into Vessey (loose formats); normalise before use.
    #[serde(default)]
    pub phone: Option<String>,
    /// Email, when Vessey has one.
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the driver still works for the business.
    pub active: bool,
}

/// A planned collection (a farm pick-up) as Vessey lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VesseyCollection {
    /// Vessey's id, unique across dates: what makes an import idempotent.
    pub id: String,
    /// The farm; matches a company's `external_id`.
    pub farm_id: String,
    /// The farm's name, for creating a company not yet known.
    pub farm_name: String,
    /// The assigned driver's Vessey id.
    #[serde(default)]
    pub driver_id: Option<String>,
    /// The day of the collection.
    pub scheduled_for: NaiveDate,
    /// Pick-up window start.
    #[serde(default)]
    pub window_start: Option<DateTime<Utc>>,
    /// Pick-up window end.
    #[serde(default)]
    pub window_end: Option<DateTime<Utc>>,
    /// Expected volume.
    #[serde(default)]
    pub volume_liters: Option<f64>,
}

/// One page of a Vessey listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The records on this page.
    pub items: Vec<T>,
    /// The page to ask for next; `None` after the last.
    pub next_page: Option<u32>,
}

#[derive(Deserialize)]
struct DriversPage {
    drivers: Vec<VesseyDriver>,
    next_page: Option<u32>,
}

#[derive(Deserialize)]
struct CollectionsPage {
    collections: Vec<VesseyCollection>,
    next_page: Option<u32>,
}

/// A Vessey client. Cheap to clone (the connection pool is shared).
///
/// Timeouts are per attempt (10 s for driver calls, 30 s per collections page by default; see
/// [`crate::Timeouts`]); failed attempts are retried per the [`RetryPolicy`]. Answers are
/// limited to 1 MiB, 8 MiB for a collections page.
#[derive(Clone)]
pub struct VesseyClient {
    config: VesseyConfig,
    http: Transport,
}

impl fmt::Debug for VesseyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VesseyClient")
            .field("base_url", &PrintableUrl(&self.config.base_url))
            .finish_non_exhaustive()
    }
}

impl VesseyClient {
    /// A client for the configured Vessey with an unguarded HTTP client of its own (the
    /// operator's configuration; prefer [`Self::new_with`] and a shared client).
    pub fn new(config: VesseyConfig, retry: RetryPolicy) -> Result<Self, ProviderError> {
        Ok(Self {
            http: Transport::new(Purpose::Vessey, retry, redactor(&config))?,
            config,
        })
    }

    /// A client for the configured Vessey on the shared `http` client:
    /// [`crate::HttpClients::tenant`] for a tenant's settings (guarded),
    /// [`crate::HttpClients::operator`] for the environment's.
    pub fn new_with(config: VesseyConfig, retry: RetryPolicy, http: &HttpClient) -> Self {
        Self {
            http: Transport::with_http(http, Purpose::Vessey, retry, redactor(&config)),
            config,
        }
    }

    /// The driver with Vessey id `id`; `NotFound` when Vessey has none.
    pub async fn driver(&self, id: &str) -> Result<VesseyDriver, ProviderError> {
        let url = join_segments(&self.config.base_url, &["drivers", id]);
        let call = Call {
            label: format!("Vessey GET /drivers/{id}"),
            timeout: self.config.timeouts.call,
            body_limit: BODY_LIMIT,
        };
        match self.get_json(&call, url, &[]).await {
            Err(ProviderError::NotFound(_)) => Err(ProviderError::NotFound(format!(
                "Vessey has no driver {id:?}"
            ))),
            other => other,
        }
    }

    /// Page `page` (from 1) of every driver.
    pub async fn drivers_page(&self, page: u32) -> Result<Page<VesseyDriver>, ProviderError> {
        let url = join_segments(&self.config.base_url, &["drivers"]);
        let call = Call {
            label: format!("Vessey GET /drivers?page={page}"),
            timeout: self.config.timeouts.call,
            body_limit: BODY_LIMIT,
        };
        let page_text = page.to_string();
        let body: DriversPage = self.get_json(&call, url, &[("page", &page_text)]).await?;
        Ok(Page {
            items: body.drivers,
            next_page: body.next_page,
        })
    }

    /// Page `page` (from 1) of the collections planned for `date`.
    pub async fn collections_page(
        &self,
        date: NaiveDate,
        page: u32,
    ) -> Result<Page<VesseyCollection>, ProviderError> {
        let url = join_segments(&self.config.base_url, &["collections"]);
        let date_text = date.format("%Y-%m-%d").to_string();
        let call = Call {
            label: format!("Vessey GET /collections?date={date_text}&page={page}"),
            timeout: self.config.timeouts.collections_page,
            body_limit: PAGE_BODY_LIMIT,
        };
        let page_text = page.to_string();
        let body: CollectionsPage = self
            .get_json(&call, url, &[("date", &date_text), ("page", &page_text)])
            .await?;
        Ok(Page {
            items: body.collections,
            next_page: body.next_page,
        })
    }

    /// GET `url` with `query` and the bearer key, retried, parsed as `T`.
    async fn get_json<T: DeserializeOwned>(
        &self,
        call: &Call,
        url: reqwest::Url,
        query: &[(&str, &str)],
    ) -> Result<T, ProviderError> {
        let answer = self
            .http
            .send(call, || {
                self.http
                    .client()
                    .get(url.clone())
                    .query(query)
                    .bearer_auth(self.config.api_key.expose())
            })
            .await?;
        self.http.parse_json(call, &answer)
    }
}

/// What a Vessey client's messages must never hold: the key, and any credential in the base URL.
fn redactor(config: &VesseyConfig) -> Redactor {
    let mut secrets = vec![config.api_key.expose().to_owned()];
    secrets.extend(url_credentials(&config.base_url));
    Redactor::new(secrets)
}
