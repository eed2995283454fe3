//! What a sync or an import did with every record Vessey returned: created, updated,
//! unchanged or rejected (with the first [`MAX_REJECTIONS`] reasons), so that the four add
//! up to the records returned and nothing is dropped without a word. Stored with its job
//! (`jobs.result`), and shown as the proto's `JobResult`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use director_platform::time::from_timestamp;
use director_proto::integrations::{JobRejection, JobResult};
use director_proto::internal::dispatch::{DriverAssignments, UpsertCounts};
use serde::{Deserialize, Serialize};

/// Rejections kept with their reason; beyond, they are only counted.
pub const MAX_REJECTIONS: usize = 100;

/// A record not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// Its id in Vessey (empty when it has no readable one).
    pub external_id: String,
    pub reason: String,
}

/// The collections an import newly assigned to one driver, for the driver's summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverSummary {
    pub phone: Option<String>,
    pub tasks: i32,
    pub first_window_start: Option<DateTime<Utc>>,
    pub first_title: String,
}

/// The tally of one job's records, stored with the job (`jobs.result`). It is kept across
/// the job's attempts for what the records did that a retry cannot see again: the drivers
/// given new collections (`assignments`, not shown in answers).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub created: i32,
    pub updated: i32,
    pub unchanged: i32,
    pub rejected: i32,
    pub rejections: Vec<Rejection>,
    /// Driver id → what the job newly assigned to them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub assignments: BTreeMap<String, DriverSummary>,
}

impl Tally {
    /// Counts a record out, keeping its reason while there is room.
    pub fn reject(&mut self, external_id: impl Into<String>, reason: impl Into<String>) {
        self.rejected = self.rejected.saturating_add(1);
        if self.rejections.len() < MAX_REJECTIONS {
            self.rejections.push(Rejection {
                external_id: external_id.into(),
                reason: reason.into(),
            });
        }
    }

    /// Adds what one bulk upsert reports.
    pub fn add(&mut self, counts: Option<&UpsertCounts>) {
        if let Some(counts) = counts {
            self.created = self.created.saturating_add(counts.created);
            self.updated = self.updated.saturating_add(counts.updated);
            self.unchanged = self.unchanged.saturating_add(counts.unchanged);
        }
    }

    /// `rows` less the ones a bulk refusal named (index and reason), which are rejected with
    /// its reasons.
    pub fn reject_refused<T>(
        &mut self,
        rows: Vec<T>,
        refused: &[(usize, String)],
        external_id: impl Fn(&T) -> &str,
    ) -> Vec<T> {
        let mut kept = Vec::with_capacity(rows.len());
        for (index, row) in rows.into_iter().enumerate() {
            match refused.iter().find(|(refused, _)| *refused == index) {
                Some((_, reason)) => self.reject(external_id(&row), reason.clone()),
                None => kept.push(row),
            }
        }
        kept
    }

    /// Adds the drivers one task upsert newly assigned collections to.
    pub fn add_assignments(&mut self, assignments: &[DriverAssignments]) {
        for assigned in assignments {
            let summary = self
                .assignments
                .entry(assigned.driver_id.clone())
                .or_default();
            summary.phone.clone_from(&assigned.phone);
            summary.tasks = summary.tasks.saturating_add(assigned.tasks);
            let start = assigned
                .first_window_start
                .as_ref()
                .and_then(from_timestamp);
            let earlier = match (start, summary.first_window_start) {
                (Some(start), Some(first)) => start < first,
                (Some(_), None) => true,
                (None, _) => summary.first_title.is_empty(),
            };
            if earlier {
                summary.first_window_start = start;
                summary.first_title.clone_from(&assigned.first_title);
            }
        }
    }

    /// Every record accounted for so far.
    pub fn accounted(&self) -> i32 {
        self.created
            .saturating_add(self.updated)
            .saturating_add(self.unchanged)
            .saturating_add(self.rejected)
    }

    /// As the API shows it.
    pub fn to_message(&self) -> JobResult {
        JobResult {
            created: self.created,
            updated: self.updated,
            unchanged: self.unchanged,
            rejected: self.rejected,
            rejections: self
                .rejections
                .iter()
                .map(|rejection| JobRejection {
                    external_id: rejection.external_id.clone(),
                    reason: rejection.reason.clone(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn every_rejection_is_counted_and_the_first_hundred_kept() {
        let mut tally = Tally::default();
        for n in 0..150 {
            tally.reject(format!("c{n}"), "bad");
        }
        tally.add(Some(&UpsertCounts {
            created: 5,
            updated: 2,
            unchanged: 3,
        }));
        assert_eq!(tally.rejected, 150);
        assert_eq!(tally.rejections.len(), MAX_REJECTIONS);
        assert_eq!(tally.accounted(), 160);
    }

    #[test]
    fn a_drivers_new_collections_add_up_and_the_earliest_pickup_is_kept() {
        let at = |hour: i64| prost_types::Timestamp {
            seconds: 1_795_000_000 + hour * 3600,
            nanos: 0,
        };
        let mut tally = Tally::default();
        let batch = |tasks, start, title: &str| DriverAssignments {
            driver_id: "d1".to_owned(),
            phone: Some("+15550100042".to_owned()),
            tasks,
            first_window_start: start,
            first_title: title.to_owned(),
        };
        tally.add_assignments(&[batch(2, Some(at(5)), "later")]);
        tally.add_assignments(&[batch(3, Some(at(2)), "earliest")]);
        tally.add_assignments(&[batch(1, None, "unplanned")]);
        let summary = &tally.assignments["d1"];
        assert_eq!(summary.tasks, 6);
        assert_eq!(summary.first_title, "earliest");
        // Kept in the stored form, not in the answer.
        let stored: Tally = serde_json::from_value(serde_json::to_value(&tally).unwrap()).unwrap();
        assert_eq!(stored, tally);
        assert_eq!(tally.to_message().rejections.len(), 0);
    }
}
