//! A stored job as the API shows it, for every RPC that answers one (`JobsService`, the
//! stream of `WatchJob`, and the Vessey RPCs that start a job).

use director_platform::time::to_timestamp;
use director_proto::integrations::{Job, JobProgress};

use super::store::JobRow;

/// The answer for a job that does not exist in the caller's tenant.
pub const NOT_FOUND: &str = "Job not found";

/// A stored job as the API shows it.
pub fn job_message(row: JobRow) -> Job {
    Job {
        id: row.id.to_string(),
        kind: row.kind.to_proto() as i32,
        status: row.status.to_proto() as i32,
        progress: Some(JobProgress {
            done: row.progress_done,
            total: row.progress_total,
        }),
        attempts: row.attempts,
        last_error: row.last_error,
        created_at: Some(to_timestamp(row.created_at)),
        updated_at: Some(to_timestamp(row.updated_at)),
        result: row.result.map(|tally| tally.0.to_message()),
    }
}
