//! `director.dispatch.internal.v1.DispatchInternalService`: the bulk upserts imports make —
//! never routed by the gateway (its package is not public in the catalog).
//!
//! Each call is one statement whatever its size: the batch goes in as column arrays,
//! `INSERT … ON CONFLICT (tenant_id, external_id) DO UPDATE … WHERE <something differs>`
//! creates the unknown rows and touches only the changed ones (an unchanged task gets no new
//! version and no task event), and the counts come back from `RETURNING (xmax = 0)`.

mod drivers;
mod tasks;

use director_platform::identity::writer;
use director_platform::time::to_timestamp;
use director_proto::internal::dispatch::dispatch_internal_service_server::DispatchInternalService;
use director_proto::internal::dispatch::{
    DriverAssignments, UpsertCounts, UpsertDriversRequest, UpsertDriversResponse,
    UpsertTasksRequest, UpsertTasksResponse,
};
use director_store::tenant::TenantDb;
use tonic::{Request, Response, Status};

use crate::error::DispatchError;

/// Most rows per call.
const MAX_BATCH: usize = 1000;
/// Why a driver caller is refused.
const DRIVERS_CANNOT_IMPORT: &str = "Drivers cannot import drivers or tasks";

/// The internal Dispatch API.
#[derive(Debug, Clone)]
pub struct DispatchInternalApi {
    db: TenantDb,
}

impl DispatchInternalApi {
    pub fn new(db: TenantDb) -> Self {
        Self { db }
    }
}

/// What one upsert statement did, as counted by the database.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
struct Written {
    created: i64,
    updated: i64,
}

impl Written {
    /// The counts of a batch of `sent` rows: the rest were already as sent.
    fn counts(self, sent: usize) -> UpsertCounts {
        let sent = i64::try_from(sent).unwrap_or(i64::MAX);
        let narrow = |count: i64| i32::try_from(count).unwrap_or(i32::MAX);
        UpsertCounts {
            created: narrow(self.created),
            updated: narrow(self.updated),
            unchanged: narrow(sent - self.created - self.updated),
        }
    }
}

#[tonic::async_trait]
impl DispatchInternalService for DispatchInternalApi {
    async fn upsert_drivers(
        &self,
        request: Request<UpsertDriversRequest>,
    ) -> Result<Response<UpsertDriversResponse>, Status> {
        let caller = writer(&request, DRIVERS_CANNOT_IMPORT)?;
        let batch = drivers::checked(&request.into_inner().drivers)?;
        let sent = batch.len();
        let written = drivers::upsert(&self.db, &caller, batch)
            .await
            .map_err(DispatchError::from)?;
        Ok(Response::new(UpsertDriversResponse {
            counts: Some(written.counts(sent)),
        }))
    }

    async fn upsert_tasks(
        &self,
        request: Request<UpsertTasksRequest>,
    ) -> Result<Response<UpsertTasksResponse>, Status> {
        let caller = writer(&request, DRIVERS_CANNOT_IMPORT)?;
        let batch = tasks::checked(&request.into_inner().tasks)?;
        let sent = batch.len();
        let upserted = tasks::upsert(&self.db, &caller, batch)
            .await
            .map_err(DispatchError::from)?;
        let narrow = |count: i64| i32::try_from(count).unwrap_or(i32::MAX);
        Ok(Response::new(UpsertTasksResponse {
            counts: Some(upserted.written.counts(sent)),
            assigned: narrow(upserted.assigned),
            new_assignments: upserted
                .new_assignments
                .into_iter()
                .map(|driver| DriverAssignments {
                    driver_id: driver.driver_id.to_string(),
                    phone: driver.phone,
                    tasks: narrow(driver.tasks),
                    first_window_start: driver.first_window_start.map(to_timestamp),
                    first_title: driver.first_title,
                })
                .collect(),
        }))
    }
}
