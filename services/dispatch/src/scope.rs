//! Whose rows a caller sees within its tenant.
//!
//! Admins and dispatchers see every driver and task of their tenant. A caller with role
//! `driver` is the live driver whose `user_id` is their user id (`sub`): they see that one
//! driver record and the tasks assigned to it, and anything else answers NOT_FOUND exactly
//! like a row that does not exist. Queries take the driver's user id as a nullable parameter
//! (`NULL` = everyone) so one statement serves both.

use director_platform::identity::Caller;

/// The SQL condition limiting `tasks` (or `task_events`) rows to a driver's own, with the
/// driver's user id as `$3` (NULL: no limit) and the tenant as `$2`.
macro_rules! own_tasks_only {
    () => {
        "($3::text IS NULL OR driver_id IN (
            SELECT d.id FROM drivers d
            WHERE d.tenant_id = $2 AND d.user_id = $3 AND d.deleted_at IS NULL))"
    };
}
pub(crate) use own_tasks_only;

/// The user id whose rows a driver caller is limited to; `None` for admins and dispatchers.
pub fn driver_user(caller: &Caller) -> Option<&str> {
    caller.is_driver().then_some(caller.user_id.as_str())
}
