//! The task state machine as the service names it.
//!
//! pending → assigned → in_progress → completed, and pending/assigned/in_progress →
//! cancelled; an assigned task may be assigned again (to another driver). The transition
//! statements in [`super::store`] only match rows in an allowed status, and a trigger in the
//! database refuses any other change of status whatever statement tries it.

use director_proto::dispatch::TaskStatus;

/// A transition a caller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Assign,
    Start,
    Complete,
    Cancel,
}

impl Transition {
    /// The statuses a task may be in for this transition, as stored.
    pub fn allowed_from(self) -> &'static [&'static str] {
        match self {
            Self::Assign => &["pending", "assigned"],
            Self::Start => &["assigned"],
            Self::Complete => &["in_progress"],
            Self::Cancel => &["pending", "assigned", "in_progress"],
        }
    }

    /// The verb, for messages: "Cannot start a task that is completed".
    pub fn verb(self) -> &'static str {
        match self {
            Self::Assign => "assign",
            Self::Start => "start",
            Self::Complete => "complete",
            Self::Cancel => "cancel",
        }
    }

    /// The FAILED_PRECONDITION message for a task in `current` status.
    pub fn refusal(self, current: &str) -> String {
        let allowed = self.allowed_from().join(" or ");
        format!(
            "Cannot {} a task that is {current}; it must be {allowed}",
            self.verb()
        )
    }
}

/// The stored name of a status.
pub fn name(status: TaskStatus) -> Option<&'static str> {
    match status {
        TaskStatus::Unspecified => None,
        TaskStatus::Pending => Some("pending"),
        TaskStatus::Assigned => Some("assigned"),
        TaskStatus::InProgress => Some("in_progress"),
        TaskStatus::Completed => Some("completed"),
        TaskStatus::Cancelled => Some("cancelled"),
    }
}

/// The status a stored name stands for.
pub fn from_name(name: &str) -> TaskStatus {
    match name {
        "pending" => TaskStatus::Pending,
        "assigned" => TaskStatus::Assigned,
        "in_progress" => TaskStatus::InProgress,
        "completed" => TaskStatus::Completed,
        "cancelled" => TaskStatus::Cancelled,
        _ => TaskStatus::Unspecified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for status in [
            TaskStatus::Pending,
            TaskStatus::Assigned,
            TaskStatus::InProgress,
            TaskStatus::Completed,
            TaskStatus::Cancelled,
        ] {
            assert_eq!(name(status).map(from_name), Some(status));
        }
    }

    #[test]
    fn refusals_name_the_current_status() {
        assert_eq!(
            Transition::Start.refusal("completed"),
            "Cannot start a task that is completed; it must be assigned"
        );
        assert!(
            Transition::Cancel
                .refusal("cancelled")
                .contains("cancelled")
        );
    }
}
