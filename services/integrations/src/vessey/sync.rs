//! Driver sync: every Vessey driver upserted into Dispatch by `external_id`, a page at a
//! time (one bulk call per page), progress recorded after each page.

use director_platform::client::CallContext;
use director_platform::identity::Caller;
use director_proto::internal::dispatch::dispatch_internal_service_client::DispatchInternalServiceClient;
use director_proto::internal::dispatch::{DriverUpsert, UpsertDriversRequest};
use director_providers::VesseyDriver;
use uuid::Uuid;

use super::pages::PageCursor;
use crate::app::App;
use crate::error::IntegrationsError;

/// The `jobs.kind` of a driver sync.
pub const KIND: &str = "vessey_driver_sync";

/// Pages through Vessey's drivers and upserts each page into Dispatch.
pub async fn sync_drivers(
    app: &App,
    caller: &Caller,
    job_id: Uuid,
) -> Result<(), IntegrationsError> {
    let vessey = app.providers.for_tenant(caller).await?.vessey()?.clone();
    let cx = CallContext::for_caller(caller.clone());
    let mut dispatch = DispatchInternalServiceClient::new(app.dispatch.channel());
    let mut cursor = PageCursor::new();
    let (mut done, mut total) = (0_i32, 0_i32);
    while let Some(page_number) = cursor.next() {
        let page = vessey.drivers_page(page_number).await?;
        cursor.advance(page_number, page.next_page)?;
        total = total.saturating_add(len_i32(page.items.len()));
        if !page.items.is_empty() {
            let request = app.dispatch.request(
                &cx,
                UpsertDriversRequest {
                    drivers: page.items.into_iter().map(driver_upsert).collect(),
                },
            )?;
            dispatch
                .upsert_drivers(request)
                .await
                .map_err(|status| IntegrationsError::service("dispatch", &status))?;
        }
        done = total;
        app.jobs.progress(caller, job_id, done, total).await?;
    }
    tracing::info!(%job_id, drivers = done, "driver sync finished");
    Ok(())
}

fn driver_upsert(driver: VesseyDriver) -> DriverUpsert {
    DriverUpsert {
        external_id: driver.id,
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
