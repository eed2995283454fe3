//! The states of Dispatch's rows and the kinds of its task events, each mapped to the text
//! the migrations store (`director_platform::stored_as_text!`, the `CHECK … IN (…)` lists of
//! migrations/dispatch/0002) and to its proto enum, in one place each; and the task state
//! machine over them.
//!
//! pending → assigned → in_progress → completed, and pending/assigned/in_progress →
//! cancelled; an assigned task may be assigned again (to another driver). The transition
//! statements in the task store bind [`Transition::target`] and only match rows in a status
//! [`Transition::allowed_from`] lists, and a trigger in the database refuses any other change
//! of status whatever statement tries it.

use director_proto::dispatch as proto;

pub use director_platform::domain_state::UnknownValue;

/// Where a collection task stands (`tasks.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    Pending,
    Assigned,
    InProgress,
    Completed,
    Cancelled,
}

director_platform::stored_as_text!("task status", TaskStatus {
    Pending => "pending",
    Assigned => "assigned",
    InProgress => "in_progress",
    Completed => "completed",
    Cancelled => "cancelled",
});

impl TaskStatus {
    /// The status a request names: `None` for UNSPECIFIED (not given), an error for a number
    /// the proto does not define.
    pub fn from_proto(raw: i32) -> Result<Option<Self>, UnknownValue> {
        match proto::TaskStatus::try_from(raw) {
            Ok(proto::TaskStatus::Unspecified) => Ok(None),
            Ok(proto::TaskStatus::Pending) => Ok(Some(Self::Pending)),
            Ok(proto::TaskStatus::Assigned) => Ok(Some(Self::Assigned)),
            Ok(proto::TaskStatus::InProgress) => Ok(Some(Self::InProgress)),
            Ok(proto::TaskStatus::Completed) => Ok(Some(Self::Completed)),
            Ok(proto::TaskStatus::Cancelled) => Ok(Some(Self::Cancelled)),
            Err(_) => Err(UnknownValue::new("task status", &raw.to_string())),
        }
    }
}

impl From<TaskStatus> for proto::TaskStatus {
    fn from(status: TaskStatus) -> Self {
        match status {
            TaskStatus::Pending => Self::Pending,
            TaskStatus::Assigned => Self::Assigned,
            TaskStatus::InProgress => Self::InProgress,
            TaskStatus::Completed => Self::Completed,
            TaskStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// Whether a driver may be given tasks (`drivers.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DriverStatus {
    Active,
    Inactive,
}

director_platform::stored_as_text!("driver status", DriverStatus {
    Active => "active",
    Inactive => "inactive",
});

impl DriverStatus {
    /// The status a request names: `None` for UNSPECIFIED (not given), an error for a number
    /// the proto does not define.
    pub fn from_proto(raw: i32) -> Result<Option<Self>, UnknownValue> {
        match proto::DriverStatus::try_from(raw) {
            Ok(proto::DriverStatus::Unspecified) => Ok(None),
            Ok(proto::DriverStatus::Active) => Ok(Some(Self::Active)),
            Ok(proto::DriverStatus::Inactive) => Ok(Some(Self::Inactive)),
            Err(_) => Err(UnknownValue::new("driver status", &raw.to_string())),
        }
    }
}

impl From<DriverStatus> for proto::DriverStatus {
    fn from(status: DriverStatus) -> Self {
        match status {
            DriverStatus::Active => Self::Active,
            DriverStatus::Inactive => Self::Inactive,
        }
    }
}

/// What a task event records (`task_events.kind`, written by the `tasks_record_event`
/// trigger).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskEventKind {
    Created,
    Updated,
    Assigned,
    Started,
    Completed,
    Cancelled,
    Deleted,
}

director_platform::stored_as_text!("task event kind", TaskEventKind {
    Created => "created",
    Updated => "updated",
    Assigned => "assigned",
    Started => "started",
    Completed => "completed",
    Cancelled => "cancelled",
    Deleted => "deleted",
});

impl From<TaskEventKind> for proto::TaskEventKind {
    fn from(kind: TaskEventKind) -> Self {
        match kind {
            TaskEventKind::Created => Self::Created,
            TaskEventKind::Updated => Self::Updated,
            TaskEventKind::Assigned => Self::Assigned,
            TaskEventKind::Started => Self::Started,
            TaskEventKind::Completed => Self::Completed,
            TaskEventKind::Cancelled => Self::Cancelled,
            TaskEventKind::Deleted => Self::Deleted,
        }
    }
}

/// A transition a caller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Assign,
    Start,
    Complete,
    Cancel,
}

impl Transition {
    /// The statuses a task may be in for this transition.
    pub fn allowed_from(self) -> &'static [TaskStatus] {
        use TaskStatus::{Assigned, InProgress, Pending};
        match self {
            Self::Assign => &[Pending, Assigned],
            Self::Start => &[Assigned],
            Self::Complete => &[InProgress],
            Self::Cancel => &[Pending, Assigned, InProgress],
        }
    }

    /// The status a task has after this transition.
    pub fn target(self) -> TaskStatus {
        match self {
            Self::Assign => TaskStatus::Assigned,
            Self::Start => TaskStatus::InProgress,
            Self::Complete => TaskStatus::Completed,
            Self::Cancel => TaskStatus::Cancelled,
        }
    }

    /// Whether a task in `current` status may take this transition.
    pub fn allows(self, current: TaskStatus) -> bool {
        self.allowed_from().contains(&current)
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
    pub fn refusal(self, current: TaskStatus) -> String {
        let allowed: Vec<&str> = self
            .allowed_from()
            .iter()
            .map(|status| status.as_str())
            .collect();
        format!(
            "Cannot {} a task that is {current}; it must be {}",
            self.verb(),
            allowed.join(" or ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_round_trip() {
        for status in TaskStatus::ALL {
            assert_eq!(status.as_str().parse::<TaskStatus>(), Ok(*status));
        }
        for status in DriverStatus::ALL {
            assert_eq!(status.as_str().parse::<DriverStatus>(), Ok(*status));
        }
        for kind in TaskEventKind::ALL {
            assert_eq!(kind.as_str().parse::<TaskEventKind>(), Ok(*kind));
        }
    }

    #[test]
    fn an_unknown_stored_name_is_an_error_not_a_default() {
        let error = "archived".parse::<TaskStatus>().expect_err("not a status");
        assert_eq!(error.to_string(), "\"archived\" is not a known task status");
        assert!("".parse::<DriverStatus>().is_err());
        assert!("moved".parse::<TaskEventKind>().is_err());
    }

    #[test]
    fn proto_statuses_round_trip_and_unspecified_is_not_given() {
        for status in TaskStatus::ALL {
            let raw = proto::TaskStatus::from(*status) as i32;
            assert_eq!(TaskStatus::from_proto(raw), Ok(Some(*status)));
        }
        for status in DriverStatus::ALL {
            let raw = proto::DriverStatus::from(*status) as i32;
            assert_eq!(DriverStatus::from_proto(raw), Ok(Some(*status)));
        }
        assert_eq!(TaskStatus::from_proto(0), Ok(None));
        assert_eq!(DriverStatus::from_proto(0), Ok(None));
        assert!(TaskStatus::from_proto(99).is_err());
        assert!(DriverStatus::from_proto(-1).is_err());
    }

    #[test]
    fn every_event_kind_has_its_own_proto_value() {
        let mut seen: Vec<i32> = TaskEventKind::ALL
            .iter()
            .map(|kind| proto::TaskEventKind::from(*kind) as i32)
            .collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), TaskEventKind::ALL.len());
        assert!(!seen.contains(&(proto::TaskEventKind::Unspecified as i32)));
    }

    #[test]
    fn refusals_name_the_current_status() {
        assert_eq!(
            Transition::Start.refusal(TaskStatus::Completed),
            "Cannot start a task that is completed; it must be assigned"
        );
        assert_eq!(
            Transition::Cancel.refusal(TaskStatus::Cancelled),
            "Cannot cancel a task that is cancelled; it must be pending or assigned or in_progress"
        );
        assert!(Transition::Assign.allows(TaskStatus::Assigned));
        assert_eq!(Transition::Start.target(), TaskStatus::InProgress);
        assert!(!Transition::Complete.allows(TaskStatus::Assigned));
    }
}
