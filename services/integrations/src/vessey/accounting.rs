//! What a sync or an import did with every record Vessey returned: created, updated,
//! unchanged or rejected (with the first [`MAX_REJECTIONS`] reasons), so that the four add
//! up to the records returned and nothing is dropped without a word.

use director_proto::integrations::{JobRejection, JobResult};
use director_proto::internal::dispatch::UpsertCounts;
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

/// The tally of one job's records, stored with the job (`jobs.result`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub created: i32,
    pub updated: i32,
    pub unchanged: i32,
    pub rejected: i32,
    pub rejections: Vec<Rejection>,
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

    /// `rows` less the ones a bulk refusal named ([`refused_rows`]), which are rejected with
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

/// The batch indexes a Dispatch or Companies INVALID_ARGUMENT names (`tasks[3].title`), with
/// each one's descriptions joined: the records it refused, to reject and send the rest again.
pub fn refused_rows(status: &tonic::Status, list: &str) -> Vec<(usize, String)> {
    let mut rows: Vec<(usize, String)> = Vec::new();
    for violation in director_platform::error::field_violations(status) {
        let Some(rest) = violation.field.strip_prefix(list) else {
            continue;
        };
        let Some((index, field)) = rest.strip_prefix('[').and_then(|rest| rest.split_once(']'))
        else {
            continue;
        };
        let Ok(index) = index.parse::<usize>() else {
            continue;
        };
        let field = field.trim_start_matches('.');
        let reason = format!("{field} {}", violation.description);
        match rows.iter_mut().find(|(row, _)| *row == index) {
            Some((_, reasons)) => {
                reasons.push_str("; ");
                reasons.push_str(&reason);
            }
            None => rows.push((index, reason)),
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use director_platform::error::{FieldViolation, invalid_argument};

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
    fn the_rows_a_bulk_refusal_names_are_found_by_index() {
        let status = invalid_argument(
            "Invalid tasks",
            vec![
                FieldViolation::new("tasks[3].title", "must not be blank"),
                FieldViolation::new("tasks[3].volume_liters", "must be 0 or more"),
                FieldViolation::new("tasks[10].window_end", "must not be before window_start"),
                FieldViolation::new("tasks", "must hold 1 to 1000 tasks"),
                FieldViolation::new("companies[1].name", "x"),
            ],
        );
        assert_eq!(
            refused_rows(&status, "tasks"),
            [
                (
                    3,
                    "title must not be blank; volume_liters must be 0 or more".to_owned()
                ),
                (10, "window_end must not be before window_start".to_owned()),
            ]
        );
    }
}
