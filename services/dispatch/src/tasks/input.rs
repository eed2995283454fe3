//! The input rules of the tasks API: each request message becomes validated values, or
//! INVALID_ARGUMENT naming every bad field at once.

use chrono::{DateTime, Utc};
use director_platform::time::from_timestamp;
use director_platform::validate::{self, Violations};
use director_proto::dispatch::{
    CompleteTaskRequest, CreateTaskRequest, ListTasksRequest, Task, UpdateTaskRequest,
};
use prost_types::Timestamp;
use tonic::Status;

use super::store::{NewTask, TaskChanges, TaskFilter};
use crate::domain::{CompanyId, DriverId, ExternalId, Notes, TaskStatus, Title};

/// A new task from a request that kept its contract's rules (`contract_rules::check`): ids
/// and the day parsed (a day that does not exist is refused here), text trimmed, the window's
/// order checked.
pub fn new_task(request: CreateTaskRequest) -> Result<NewTask, Status> {
    let mut violations = Violations::new();
    let company_id = violations.check(
        "company_id",
        validate::uuid(&request.company_id).map(CompanyId::from_uuid),
    );
    let title = violations.check("title", Title::parse(&request.title));
    let scheduled_for = violations.check("scheduled_for", validate::date(&request.scheduled_for));
    let driver_id = optional_id(
        &mut violations,
        "driver_id",
        request.driver_id.as_deref(),
        DriverId::from_uuid,
    );
    let notes = notes(&mut violations, "notes", request.notes.as_deref());
    let window_start = timestamp(
        &mut violations,
        "window_start",
        request.window_start.as_ref(),
    );
    let window_end = timestamp(&mut violations, "window_end", request.window_end.as_ref());
    window_order(&mut violations, window_start, window_end);
    let volume_liters = request.volume_liters;
    let external_id = violations
        .check(
            "external_id",
            ExternalId::parse_optional(request.external_id.as_deref()),
        )
        .flatten();
    violations.into_result()?;
    match (company_id, title, scheduled_for) {
        (Some(company_id), Some(title), Some(scheduled_for)) => Ok(NewTask {
            company_id,
            driver_id,
            title,
            notes,
            scheduled_for,
            window_start,
            window_end,
            volume_liters,
            external_id,
        }),
        _ => Err(Status::internal("validated fields missing")),
    }
}

/// The changes an update asks for. With an `update_mask`, exactly the named fields change (an
/// unset optional one is cleared); without one, every field set in `task` changes. A
/// non-zero `task.version` must match the stored one.
pub fn task_changes(request: UpdateTaskRequest) -> Result<TaskChanges, Status> {
    let values = request.task.unwrap_or_default();
    let paths: Vec<String> = match request.update_mask {
        Some(mask) => mask.paths,
        None => populated_fields(&values),
    };
    let mut violations = Violations::new();
    let mut changes = TaskChanges {
        expected_version: (values.version != 0).then_some(values.version),
        ..TaskChanges::default()
    };
    for path in paths {
        match path.as_str() {
            "title" => {
                changes.title = violations.check("title", Title::parse(&values.title));
            }
            "notes" => {
                changes.notes = Some(notes(&mut violations, "notes", values.notes.as_deref()))
            }
            "scheduled_for" => {
                changes.scheduled_for =
                    violations.check("scheduled_for", validate::date(&values.scheduled_for));
            }
            "window_start" => {
                changes.window_start = Some(timestamp(
                    &mut violations,
                    "window_start",
                    values.window_start.as_ref(),
                ));
            }
            "window_end" => {
                changes.window_end = Some(timestamp(
                    &mut violations,
                    "window_end",
                    values.window_end.as_ref(),
                ));
            }
            "volume_liters" => {
                changes.volume_liters = Some(volume(
                    &mut violations,
                    "volume_liters",
                    values.volume_liters,
                ));
            }
            "company_id" => {
                changes.company_id = violations.check(
                    "company_id",
                    validate::uuid(&values.company_id).map(CompanyId::from_uuid),
                );
            }
            "status" | "driver_id" | "cancel_reason" => violations.add(
                &path,
                "changes only through the assign, start, complete and cancel calls",
            ),
            "external_id" => violations.add("external_id", "cannot be changed"),
            // Output-only fields (AIP-203), and `version`, which is read from the task.
            "id" | "version" | "created_at" | "updated_at" | "completed_at" => {}
            other => violations.add(
                "update_mask",
                format!(
                    "{other:?} is not an updatable field of Task; use title, notes, \
                     scheduled_for, window_start, window_end, volume_liters or company_id"
                ),
            ),
        }
    }
    if let (Some(Some(start)), Some(Some(end))) = (changes.window_start, changes.window_end) {
        window_order(&mut violations, Some(start), Some(end));
    }
    violations.into_result()?;
    Ok(changes)
}

/// The fields a mask-less update sets.
fn populated_fields(values: &Task) -> Vec<String> {
    let present = [
        ("title", !values.title.is_empty()),
        ("notes", values.notes.is_some()),
        ("scheduled_for", !values.scheduled_for.is_empty()),
        ("window_start", values.window_start.is_some()),
        ("window_end", values.window_end.is_some()),
        ("volume_liters", values.volume_liters.is_some()),
        ("company_id", !values.company_id.is_empty()),
    ];
    present
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(field, _)| field.to_owned())
        .collect()
}

pub fn task_filter(request: &ListTasksRequest, violations: &mut Violations) -> TaskFilter {
    let status = match TaskStatus::from_proto(request.status) {
        Ok(status) => status,
        Err(_) => {
            violations.add(
                "status",
                "must be pending, assigned, in_progress, completed or cancelled",
            );
            None
        }
    };
    let day = |violations: &mut Violations, field: &str, value: Option<&str>| {
        value
            .filter(|value| !value.trim().is_empty())
            .and_then(|value| violations.check(field, validate::date(value)))
    };
    TaskFilter {
        status,
        driver_id: optional_id(
            violations,
            "driver_id",
            request.driver_id.as_deref(),
            DriverId::from_uuid,
        ),
        company_id: optional_id(
            violations,
            "company_id",
            request.company_id.as_deref(),
            CompanyId::from_uuid,
        ),
        from: day(violations, "from", request.from.as_deref()),
        to: day(violations, "to", request.to.as_deref()),
    }
}

/// The volume and notes a completion records (its contract's rules already held).
pub fn completion(request: &CompleteTaskRequest) -> Result<(Option<f64>, Option<Notes>), Status> {
    let mut violations = Violations::new();
    let notes = notes(&mut violations, "notes", request.notes.as_deref());
    violations.into_result()?;
    Ok((request.volume_liters, notes))
}

/// `after_event_id`: empty for "from now", else an event id (a non-negative integer).
pub fn after_event_id(value: &str) -> Result<Option<i64>, Status> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let mut violations = Violations::new();
    let id = violations.check(
        "after_event_id",
        value
            .parse::<i64>()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| "must be an event id: a whole number, 0 or more".to_owned()),
    );
    violations.into_result()?;
    Ok(id)
}

/// An optional id of the kind `id` makes: absent or blank is `None`.
fn optional_id<Id>(
    violations: &mut Violations,
    field: &str,
    value: Option<&str>,
    id: fn(uuid::Uuid) -> Id,
) -> Option<Id> {
    value
        .filter(|value| !value.trim().is_empty())
        .and_then(|value| violations.check(field, validate::uuid(value).map(id)))
}

fn notes(violations: &mut Violations, field: &str, value: Option<&str>) -> Option<Notes> {
    Notes::check_optional(violations, field, value)
}

fn volume(violations: &mut Violations, field: &str, value: Option<f64>) -> Option<f64> {
    value.and_then(|value| violations.check(field, validate::non_negative(value)))
}

fn timestamp(
    violations: &mut Violations,
    field: &str,
    value: Option<&Timestamp>,
) -> Option<DateTime<Utc>> {
    let value = value?;
    violations.check(
        field,
        from_timestamp(value).ok_or_else(|| "must be a valid time".to_owned()),
    )
}

fn window_order(
    violations: &mut Violations,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) {
    if let (Some(start), Some(end)) = (start, end)
        && end < start
    {
        violations.add("window_end", "must not be before window_start");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_whole_numbers_or_empty() {
        assert_eq!(after_event_id("").ok(), Some(None));
        assert_eq!(after_event_id(" 42 ").ok(), Some(Some(42)));
        assert!(after_event_id("-1").is_err());
        assert!(after_event_id("abc").is_err());
    }

    #[test]
    fn a_window_may_not_end_before_it_starts() {
        let request = CreateTaskRequest {
            company_id: CompanyId::new_random().to_string(),
            title: "Collect".to_owned(),
            scheduled_for: "2026-11-22".to_owned(),
            window_start: Some(Timestamp {
                seconds: 1_000,
                nanos: 0,
            }),
            window_end: Some(Timestamp {
                seconds: 999,
                nanos: 0,
            }),
            ..Default::default()
        };
        let status = new_task(request).expect_err("window ends before it starts");
        assert_eq!(status.message(), "Invalid window_end");
    }

    #[test]
    fn status_and_driver_cannot_be_patched() {
        let request = UpdateTaskRequest {
            id: crate::domain::TaskId::new_random().to_string(),
            task: Some(Task::default()),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["status".to_owned(), "driver_id".to_owned()],
            }),
        };
        let status = task_changes(request).expect_err("status is not patchable");
        assert_eq!(status.message(), "Invalid status, driver_id");
    }
}
