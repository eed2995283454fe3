//! The Vessey API client: one driver, pages of drivers, pages of a day's collections.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

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
    /// The records on this page that could be read.
    pub items: Vec<T>,
    /// The records that could not, in page order: one malformed record does not cost the
    /// others of its page (the page itself must be valid JSON of the expected shape).
    pub rejected: Vec<RejectedRecord>,
    /// The page to ask for next; `None` after the last.
    pub next_page: Option<u32>,
}

impl<T> Page<T> {
    /// How many records the page held, read or not.
    pub fn len(&self) -> usize {
        self.items.len() + self.rejected.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A record of a page that could not be read as Vessey documents it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRecord {
    /// Its `id` as text, when it has a readable one (else empty).
    pub external_id: String,
    /// What is wrong with it.
    pub reason: String,
}

#[derive(Deserialize)]
struct DriversPage {
    drivers: Vec<Box<RawValue>>,
    next_page: Option<u32>,
}

#[derive(Deserialize)]
struct CollectionsPage {
    collections: Vec<Box<RawValue>>,
    next_page: Option<u32>,
}

/// Just a record's id, to name a record that does not read as a whole.
#[derive(Deserialize)]
struct RecordId {
    id: serde_json::Value,
}

/// Reads each record on its own: the readable ones, and the others with their reason.
fn read_records<T: DeserializeOwned>(
    records: Vec<Box<RawValue>>,
    redactor: &Redactor,
) -> (Vec<T>, Vec<RejectedRecord>) {
    let mut items = Vec::with_capacity(records.len());
    let mut rejected = Vec::new();
    for record in records {
        match serde_json::from_str::<T>(record.get()) {
            Ok(item) => items.push(item),
            Err(error) => {
                let external_id = match serde_json::from_str::<RecordId>(record.get()) {
                    Ok(RecordId {
                        id: serde_json::Value::String(id),
                    }) => id.trim().to_owned(),
                    Ok(RecordId {
                        id: serde_json::Value::Number(id),
                    }) => id.to_string(),
                    _ => String::new(),
                };
                // serde's position ("at line 1 column 80") means nothing to a reader.
                let reason = error.to_string();
                let reason = reason
                    .split(" at line ")
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                rejected.push(RejectedRecord {
                    external_id: redactor.redact(&external_id),
                    reason: redactor.redact(&reason),
                });
            }
        }
    }
    (items, rejected)
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
        let (items, rejected) = read_records(body.drivers, self.http.redactor());
        Ok(Page {
            items,
            rejected,
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
        let (items, rejected) = read_records(body.collections, self.http.redactor());
        Ok(Page {
            items,
            rejected,
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_malformed_record_is_rejected_with_its_id_and_reason_and_the_others_are_read() {
        let page: CollectionsPage = serde_json::from_str(
            r#"{"collections": [
                {"id": "c1", "farm_id": "F1", "farm_name": "A", "scheduled_for": "2026-11-23"},
                {"id": "c2", "farm_id": "F1", "farm_name": "A", "scheduled_for": "2026-11-23",
                 "window_end": "not a timestamp"},
                {"id": "c3", "farm_name": "B", "scheduled_for": "2026-11-23"},
                {"id": 4, "farm_id": "F2", "farm_name": "B", "scheduled_for": "2026-11-23"},
                ["not", "an", "object"],
                {"id": "c5", "farm_id": "F2", "farm_name": "B", "scheduled_for": "2026-11-23"}
            ], "next_page": null}"#,
        )
        .unwrap();
        let redactor = Redactor::new(vec!["secret-key".to_owned()]);
        let (items, rejected): (Vec<VesseyCollection>, _) =
            read_records(page.collections, &redactor);
        let ids: Vec<&str> = items.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["c1", "c5"]);
        let rejected_ids: Vec<&str> = rejected.iter().map(|r| r.external_id.as_str()).collect();
        assert_eq!(rejected_ids, ["c2", "c3", "4", ""]);
        assert!(rejected[0].reason.contains("input"), "{:?}", rejected[0]);
        assert!(rejected[1].reason.contains("farm_id"), "{:?}", rejected[1]);
        assert!(rejected.iter().all(|r| !r.reason.contains("line")));
    }
}
