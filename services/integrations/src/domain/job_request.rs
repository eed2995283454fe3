//! What a job is asked to do: its kind with its parameters, as `jobs.kind` and `jobs.params`
//! store them. Built by the RPC that starts the job, read back by the handler that runs it.

use chrono::NaiveDate;

use super::states::JobKind;

/// A job's kind and parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobRequest {
    /// Every Vessey driver upserted into Dispatch.
    DriverSync,
    /// `date`'s Vessey collections imported as tasks.
    CollectionImport { date: NaiveDate },
}

impl JobRequest {
    pub fn kind(&self) -> JobKind {
        match self {
            Self::DriverSync => JobKind::VesseyDriverSync,
            Self::CollectionImport { .. } => JobKind::VesseyCollectionImport,
        }
    }

    /// The parameters as stored (`jobs.params`): a job of the same kind and parameters still
    /// under way is the same job.
    pub fn params(&self) -> serde_json::Value {
        match self {
            Self::DriverSync => serde_json::json!({}),
            Self::CollectionImport { date } => serde_json::json!({ "date": date.to_string() }),
        }
    }

    /// The request a stored job of `kind` with `params` is; the reason when its parameters do
    /// not read (a row this service did not write).
    pub fn from_stored(kind: JobKind, params: &serde_json::Value) -> Result<Self, &'static str> {
        match kind {
            JobKind::VesseyDriverSync => Ok(Self::DriverSync),
            JobKind::VesseyCollectionImport => params
                .get("date")
                .and_then(serde_json::Value::as_str)
                .and_then(|date| date.parse().ok())
                .map(|date| Self::CollectionImport { date })
                .ok_or("the import job has no valid date parameter"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_request_reads_back_from_what_is_stored() {
        let import = JobRequest::CollectionImport {
            date: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
        };
        assert_eq!(import.params(), serde_json::json!({ "date": "2026-11-23" }));
        assert_eq!(
            JobRequest::from_stored(import.kind(), &import.params()).unwrap(),
            import
        );
        let sync = JobRequest::DriverSync;
        assert_eq!(
            JobRequest::from_stored(sync.kind(), &sync.params()).unwrap(),
            sync
        );
        assert!(
            JobRequest::from_stored(JobKind::VesseyCollectionImport, &serde_json::json!({}))
                .is_err()
        );
    }
}
