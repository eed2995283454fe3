//! Collections import: one day's Vessey collections become tasks in Dispatch, unknown farms
//! becoming companies first. Bulk calls only — one `EnsureCompanies` for the new farms of a
//! page and one `UpsertTasks` per page — and the next page is fetched while the current one
//! is written, so a 100-page day costs about 100 writes, not 100 fetches plus 100 writes.
//! Idempotent: farms are matched by `external_id`, tasks by the collection id.

use std::collections::HashMap;

use chrono::NaiveDate;
use director_platform::client::CallContext;
use director_platform::identity::Caller;
use director_platform::metrics::MeteredChannel;
use director_platform::time::to_timestamp;
use director_proto::internal::companies::companies_internal_service_client::CompaniesInternalServiceClient;
use director_proto::internal::companies::{CompanyRef, EnsureCompaniesRequest};
use director_proto::internal::dispatch::dispatch_internal_service_client::DispatchInternalServiceClient;
use director_proto::internal::dispatch::{TaskUpsert, UpsertTasksRequest};
use director_providers::{Page, ProviderError, VesseyClient, VesseyCollection};
use tokio_util::task::AbortOnDropHandle;
use uuid::Uuid;

use super::pages::PageCursor;
use super::sync::len_i32;
use crate::app::App;
use crate::error::IntegrationsError;

/// The `jobs.kind` of a collections import.
pub const KIND: &str = "vessey_collection_import";
/// Most rows per bulk call (the internal RPCs' limit).
const BATCH: usize = 1000;
/// Longest task title, in characters.
const TITLE_MAX: usize = 255;

/// The job's parameters.
pub fn params(date: NaiveDate) -> serde_json::Value {
    serde_json::json!({ "date": date.to_string() })
}

/// The day a stored import job is for.
pub fn date_param(params: &serde_json::Value) -> Result<NaiveDate, IntegrationsError> {
    params
        .get("date")
        .and_then(serde_json::Value::as_str)
        .and_then(|date| date.parse().ok())
        .ok_or_else(|| {
            IntegrationsError::Invalid(tonic::Status::internal(
                "the import job has no valid date parameter",
            ))
        })
}

/// Imports `date`'s collections for `caller`'s tenant, recording progress on `job_id`.
pub async fn import_collections(
    app: &App,
    caller: &Caller,
    job_id: Uuid,
    date: NaiveDate,
) -> Result<(), IntegrationsError> {
    let vessey = app.providers.for_tenant(caller).await?.vessey()?.clone();
    let mut writer = Writer {
        app,
        cx: CallContext::for_caller(caller.clone()),
        companies: CompaniesInternalServiceClient::new(app.companies.channel()),
        dispatch: DispatchInternalServiceClient::new(app.dispatch.channel()),
        farms: HashMap::new(),
    };
    let mut cursor = PageCursor::new();
    let mut prefetch = Some(fetch(&vessey, date, 1));
    let (mut done, mut total) = (0_i32, 0_i32);
    while let Some(fetching) = prefetch.take() {
        let page_number = cursor.next().unwrap_or(1);
        let page = fetching.await.map_err(|error| {
            ProviderError::InvalidResponse(format!("page fetch ended: {error}"))
        })??;
        cursor.advance(page_number, page.next_page)?;
        prefetch = cursor.next().map(|next| fetch(&vessey, date, next));
        total = total.saturating_add(len_i32(page.items.len()));
        for batch in page.items.chunks(BATCH) {
            writer.write(batch).await?;
            metrics::counter!("director_import_collections_total").increment(batch.len() as u64);
        }
        done = total;
        app.jobs.progress(caller, job_id, done, total).await?;
    }
    tracing::info!(%job_id, %date, collections = done, farms = writer.farms.len(), "collections import finished");
    Ok(())
}

/// Fetches one page in the background; dropping the handle (an error elsewhere) stops it.
fn fetch(
    vessey: &VesseyClient,
    date: NaiveDate,
    page: u32,
) -> AbortOnDropHandle<Result<Page<VesseyCollection>, ProviderError>> {
    let vessey = vessey.clone();
    AbortOnDropHandle::new(tokio::spawn(async move {
        vessey.collections_page(date, page).await
    }))
}

/// Writes batches of collections, remembering the company of every farm seen.
struct Writer<'a> {
    app: &'a App,
    cx: CallContext,
    companies: CompaniesInternalServiceClient<MeteredChannel>,
    dispatch: DispatchInternalServiceClient<MeteredChannel>,
    /// Vessey farm id → company id.
    farms: HashMap<String, String>,
}

impl Writer<'_> {
    async fn write(&mut self, batch: &[VesseyCollection]) -> Result<(), IntegrationsError> {
        self.ensure_farms(batch).await?;
        let tasks = batch
            .iter()
            .filter_map(|collection| {
                let company_id = self.farms.get(&collection.farm_id)?.clone();
                Some(task_upsert(collection, company_id))
            })
            .collect();
        let request = self
            .app
            .dispatch
            .request(&self.cx, UpsertTasksRequest { tasks })?;
        self.dispatch
            .upsert_tasks(request)
            .await
            .map_err(|status| IntegrationsError::service("dispatch", &status))?;
        Ok(())
    }

    /// Makes sure every farm of `batch` is a company, asking Companies only about farms not
    /// seen before in this import.
    async fn ensure_farms(&mut self, batch: &[VesseyCollection]) -> Result<(), IntegrationsError> {
        let mut unknown: Vec<CompanyRef> = Vec::new();
        for collection in batch {
            if !self.farms.contains_key(&collection.farm_id)
                && !unknown
                    .iter()
                    .any(|farm| farm.external_id == collection.farm_id)
            {
                unknown.push(CompanyRef {
                    external_id: collection.farm_id.clone(),
                    name: farm_name(collection),
                });
            }
        }
        if unknown.is_empty() {
            return Ok(());
        }
        let request = self
            .app
            .companies
            .request(&self.cx, EnsureCompaniesRequest { companies: unknown })?;
        let ensured = self
            .companies
            .ensure_companies(request)
            .await
            .map_err(|status| IntegrationsError::service("companies", &status))?
            .into_inner();
        for company in ensured.companies {
            self.farms.insert(company.external_id, company.id);
        }
        Ok(())
    }
}

/// A farm's name for a new company: Vessey's, or its id when Vessey has none.
fn farm_name(collection: &VesseyCollection) -> String {
    let name = collection.farm_name.trim();
    if name.is_empty() {
        format!("Farm {}", collection.farm_id)
    } else {
        name.to_owned()
    }
}

fn task_upsert(collection: &VesseyCollection, company_id: String) -> TaskUpsert {
    let title: String = format!("Collection at {}", farm_name(collection))
        .chars()
        .take(TITLE_MAX)
        .collect();
    TaskUpsert {
        external_id: collection.id.clone(),
        company_id,
        driver_external_id: collection.driver_id.clone(),
        title,
        scheduled_for: collection.scheduled_for.to_string(),
        window_start: collection.window_start.map(to_timestamp),
        window_end: collection.window_end.map(to_timestamp),
        volume_liters: collection.volume_liters,
    }
}
