//! Collections import: one day's Vessey collections become tasks in Dispatch, unknown farms
//! becoming companies first. Bulk calls only — one `EnsureCompanies` for the new farms of a
//! page and one `UpsertTasks` per page — and the next page is fetched while the current one
//! is written, so a 100-page day costs about 100 writes, not 100 fetches plus 100 writes.
//! Idempotent: farms are matched by `external_id`, tasks by the collection id.
//!
//! Every collection is accounted for ([`Tally`]): ids are normalised once (trimmed) before
//! any use, and a collection that cannot become a task — malformed, out of Director's
//! bounds, a duplicate of an earlier one, or refused by Dispatch — is rejected with its
//! reason while the import goes on. A page that is not the JSON Vessey documents, or a
//! Vessey 4xx, ends the job at once with the reason; outages are retried.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use director_platform::client::CallContext;
use director_platform::client::MeteredChannel;
use director_platform::identity::Caller;
use director_platform::time::to_timestamp;
use director_proto::internal::companies::companies_internal_service_client::CompaniesInternalServiceClient;
use director_proto::internal::companies::{CompanyRef, EnsureCompaniesRequest};
use director_proto::internal::dispatch::dispatch_internal_service_client::DispatchInternalServiceClient;
use director_proto::internal::dispatch::{TaskUpsert, UpsertTasksRequest};
use director_providers::{Page, ProviderError, VesseyClient, VesseyCollection};
use tokio_util::task::AbortOnDropHandle;

use super::pages::PageCursor;
use super::refusals::refused_rows;
use super::summaries;
use super::sync::len_i32;
use crate::app::App;
use crate::domain::{JobId, Tally};
use crate::error::IntegrationsError;
/// Most rows per bulk call (the internal RPCs' limit).
const BATCH: usize = 1000;
/// Longest task title, farm name and id, in characters (Dispatch's and Companies' bounds).
const TEXT_MAX: usize = 255;

/// Imports `date`'s collections for `caller`'s tenant, recording progress and the tally on
/// `job_id`, then texts each driver given new collections one summary. `earlier` is the
/// tally an earlier attempt of the job left: the drivers it assigned collections to are
/// still told.
pub async fn import_collections(
    app: &App,
    caller: &Caller,
    job_id: JobId,
    date: NaiveDate,
    earlier: Option<&Tally>,
) -> Result<(), IntegrationsError> {
    let vessey = app.providers.for_tenant(caller).await?.vessey()?.clone();
    let mut writer = Writer {
        app,
        cx: CallContext::for_caller(caller.clone()),
        companies: CompaniesInternalServiceClient::new(app.companies.channel()),
        dispatch: DispatchInternalServiceClient::new(app.dispatch.channel()),
        farms: HashMap::new(),
        seen: HashSet::new(),
        tally: Tally {
            assignments: earlier
                .map(|tally| tally.assignments.clone())
                .unwrap_or_default(),
            ..Tally::default()
        },
    };
    let mut cursor = PageCursor::new();
    let mut prefetch = Some(fetch(&vessey, date, 1));
    let mut total = 0_i32;
    while let Some(fetching) = prefetch.take() {
        let page_number = cursor.next().unwrap_or(1);
        let page = fetching
            .await
            .map_err(|error| ProviderError::Unavailable(format!("page fetch ended: {error}")))??;
        cursor.advance(page_number, page.next_page)?;
        prefetch = cursor.next().map(|next| fetch(&vessey, date, next));
        total = total.saturating_add(len_i32(page.len()));
        for rejected in &page.rejected {
            writer.tally.reject(&rejected.external_id, &rejected.reason);
        }
        let collections = writer.normalised(page.items);
        for batch in collections.chunks(BATCH) {
            writer.write(batch).await?;
            metrics::counter!("director_import_collections_total").increment(batch.len() as u64);
        }
        app.jobs
            .progress(
                caller,
                job_id,
                writer.tally.accounted(),
                total,
                &writer.tally,
            )
            .await?;
    }
    let tally = &writer.tally;
    summaries::text_drivers(app, caller, job_id, date, tally).await?;
    tracing::info!(
        %job_id, %date, collections = total, created = tally.created, updated = tally.updated,
        unchanged = tally.unchanged, rejected = tally.rejected, farms = writer.farms.len(),
        "collections import finished"
    );
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
    /// Vessey farm id (normalised) → company id.
    farms: HashMap<String, String>,
    /// Collection ids already handled in this import.
    seen: HashSet<String>,
    tally: Tally,
}

impl Writer<'_> {
    /// The page's collections normalised and checked; the others rejected.
    fn normalised(&mut self, collections: Vec<VesseyCollection>) -> Vec<VesseyCollection> {
        let mut accepted = Vec::with_capacity(collections.len());
        for collection in collections {
            match normalise(collection) {
                Err((id, reason)) => self.tally.reject(id, reason),
                Ok(collection) if !self.seen.insert(collection.id.clone()) => self.tally.reject(
                    collection.id,
                    "appears more than once in the day's collections; the first was imported",
                ),
                Ok(collection) => accepted.push(collection),
            }
        }
        accepted
    }

    async fn write(&mut self, batch: &[VesseyCollection]) -> Result<(), IntegrationsError> {
        self.ensure_farms(batch).await?;
        let mut tasks: Vec<TaskUpsert> = batch
            .iter()
            .filter_map(|collection| {
                let company_id = self.farms.get(&collection.farm_id)?.clone();
                Some(task_upsert(collection, company_id))
            })
            .collect();
        // Dispatch checks each task as these rules do; should it still refuse some, those
        // are rejected and the rest sent again, once.
        for last_try in [false, true] {
            let request = self
                .app
                .dispatch
                .request(
                    &self.cx,
                    UpsertTasksRequest {
                        tasks: tasks.clone(),
                    },
                )
                .map_err(|status| IntegrationsError::call_not_made("dispatch", &status))?;
            match self.dispatch.upsert_tasks(request).await {
                Ok(response) => {
                    let response = response.into_inner();
                    self.tally.add(response.counts.as_ref());
                    self.tally.add_assignments(&response.new_assignments);
                    return Ok(());
                }
                Err(status) if status.code() == tonic::Code::InvalidArgument && !last_try => {
                    let refused = refused_rows(&status, "tasks");
                    if refused.is_empty() {
                        return Err(IntegrationsError::service("dispatch", &status));
                    }
                    tasks = self
                        .tally
                        .reject_refused(tasks, &refused, |task| &task.external_id);
                    if tasks.is_empty() {
                        return Ok(());
                    }
                }
                Err(status) => return Err(IntegrationsError::service("dispatch", &status)),
            }
        }
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
            .request(&self.cx, EnsureCompaniesRequest { companies: unknown })
            .map_err(|status| IntegrationsError::call_not_made("companies", &status))?;
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

/// The collection with its ids trimmed (Companies and Dispatch match them trimmed: a farm
/// `" F3 "` is farm `F3`), or its id and why it cannot become a task.
fn normalise(mut collection: VesseyCollection) -> Result<VesseyCollection, (String, String)> {
    collection.id = collection.id.trim().to_owned();
    collection.farm_id = collection.farm_id.trim().to_owned();
    collection.farm_name = collection.farm_name.trim().to_owned();
    collection.driver_id = collection
        .driver_id
        .map(|driver| driver.trim().to_owned())
        .filter(|driver| !driver.is_empty());
    let reject = |reason: &str| Err((collection.id.clone(), reason.to_owned()));
    let too_long = |text: &str| text.chars().count() > TEXT_MAX;
    if collection.id.is_empty() {
        return reject("id is empty");
    }
    if too_long(&collection.id) {
        return reject("id is longer than 255 characters");
    }
    if collection.farm_id.is_empty() {
        return reject("farm_id is empty");
    }
    if too_long(&collection.farm_id) {
        return reject("farm_id is longer than 255 characters");
    }
    if collection.driver_id.as_deref().is_some_and(too_long) {
        return reject("driver_id is longer than 255 characters");
    }
    if let (Some(start), Some(end)) = (collection.window_start, collection.window_end)
        && end < start
    {
        return reject("window_end is before window_start");
    }
    if let Some(volume) = collection.volume_liters
        && !(volume.is_finite() && volume >= 0.0)
    {
        return reject("volume_liters must be a number, 0 or more");
    }
    Ok(collection)
}

/// A farm's name for a new company: Vessey's, or its id when Vessey has none.
fn farm_name(collection: &VesseyCollection) -> String {
    let name = if collection.farm_name.is_empty() {
        format!("Farm {}", collection.farm_id)
    } else {
        collection.farm_name.clone()
    };
    name.chars().take(TEXT_MAX).collect()
}

fn task_upsert(collection: &VesseyCollection, company_id: String) -> TaskUpsert {
    let title: String = format!("Collection at {}", farm_name(collection))
        .chars()
        .take(TEXT_MAX)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn collection(id: &str, farm: &str) -> VesseyCollection {
        VesseyCollection {
            id: id.to_owned(),
            farm_id: farm.to_owned(),
            farm_name: " Green Acres ".to_owned(),
            driver_id: Some("  ".to_owned()),
            scheduled_for: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
            window_start: None,
            window_end: None,
            volume_liters: Some(120.0),
        }
    }

    #[test]
    fn ids_are_trimmed_before_any_use() {
        let normal = normalise(collection(" c1 ", " F3 ")).unwrap();
        assert_eq!(normal.id, "c1");
        assert_eq!(normal.farm_id, "F3");
        assert_eq!(normal.farm_name, "Green Acres");
        assert_eq!(normal.driver_id, None);
    }

    #[test]
    fn collections_out_of_bounds_are_rejected_with_their_reason() {
        let mut backwards = collection("c2", "F1");
        backwards.window_start = Some(chrono::Utc::now());
        backwards.window_end = Some(chrono::Utc::now() - chrono::TimeDelta::hours(1));
        let mut negative = collection("c3", "F1");
        negative.volume_liters = Some(-1.0);
        for (bad, id, reason) in [
            (collection("  ", "F1"), "", "id is empty"),
            (collection("c1", " "), "c1", "farm_id is empty"),
            (backwards, "c2", "window_end is before window_start"),
            (negative, "c3", "volume_liters must be a number, 0 or more"),
        ] {
            assert_eq!(normalise(bad), Err((id.to_owned(), reason.to_owned())));
        }
    }
}
