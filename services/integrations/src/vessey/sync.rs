//! Driver sync: every Vessey driver upserted into Dispatch by `external_id`, a page at a
//! time (one bulk call per page), progress and the tally ([`Tally`]) recorded after each
//! page. A driver record that cannot be read, or that Dispatch refuses, is rejected with its
//! reason and the sync goes on.

use director_platform::client::CallContext;
use director_platform::identity::Caller;
use director_proto::internal::dispatch::dispatch_internal_service_client::DispatchInternalServiceClient;
use director_proto::internal::dispatch::{DriverUpsert, UpsertDriversRequest};
use director_providers::VesseyDriver;

use super::pages::PageCursor;
use super::refusals::refused_rows;
use crate::app::App;
use crate::domain::{JobId, Tally};
use crate::error::IntegrationsError;

/// Pages through Vessey's drivers and upserts each page into Dispatch.
pub async fn sync_drivers(
    app: &App,
    caller: &Caller,
    job_id: JobId,
) -> Result<(), IntegrationsError> {
    let vessey = app.providers.for_tenant(caller).await?.vessey()?.clone();
    let cx = CallContext::for_caller(caller.clone());
    let mut dispatch = DispatchInternalServiceClient::new(app.dispatch.channel());
    let mut cursor = PageCursor::new();
    let mut total = 0_i32;
    let mut tally = Tally::default();
    while let Some(page_number) = cursor.next() {
        let page = vessey.drivers_page(page_number).await?;
        cursor.advance(page_number, page.next_page)?;
        total = total.saturating_add(len_i32(page.len()));
        for rejected in &page.rejected {
            tally.reject(&rejected.external_id, &rejected.reason);
        }
        let mut drivers: Vec<DriverUpsert> = Vec::with_capacity(page.items.len());
        for driver in page.items {
            let driver = driver_upsert(driver);
            if driver.external_id.is_empty() {
                tally.reject("", "id is empty");
            } else if drivers.iter().any(|d| d.external_id == driver.external_id) {
                tally.reject(driver.external_id, "appears more than once on its page");
            } else {
                drivers.push(driver);
            }
        }
        // Dispatch checks each driver (name, phone, e-mail); should it refuse some, those are
        // rejected and the rest sent again, once.
        for last_try in [false, true] {
            if drivers.is_empty() {
                break;
            }
            let request = app
                .dispatch
                .request(
                    &cx,
                    UpsertDriversRequest {
                        drivers: drivers.clone(),
                    },
                )
                .map_err(|status| IntegrationsError::call_not_made("dispatch", &status))?;
            match dispatch.upsert_drivers(request).await {
                Ok(response) => {
                    tally.add(response.into_inner().counts.as_ref());
                    break;
                }
                Err(status) if status.code() == tonic::Code::InvalidArgument && !last_try => {
                    let refused = refused_rows(&status, "drivers");
                    if refused.is_empty() {
                        return Err(IntegrationsError::service("dispatch", &status));
                    }
                    drivers = tally.reject_refused(drivers, &refused, |driver| &driver.external_id);
                }
                Err(status) => return Err(IntegrationsError::service("dispatch", &status)),
            }
        }
        app.jobs
            .progress(caller, job_id, tally.accounted(), total, &tally)
            .await?;
    }
    tracing::info!(
        %job_id, drivers = total, created = tally.created, updated = tally.updated,
        unchanged = tally.unchanged, rejected = tally.rejected, "driver sync finished"
    );
    Ok(())
}

/// The driver as Dispatch takes it, its id trimmed.
fn driver_upsert(driver: VesseyDriver) -> DriverUpsert {
    DriverUpsert {
        external_id: driver.id.trim().to_owned(),
        name: driver.name,
        phone: driver.phone,
        email: driver.email,
        active: driver.active,
    }
}

/// A count that fits a progress field.
pub(super) fn len_i32(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}
