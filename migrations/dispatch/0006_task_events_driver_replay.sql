-- A driver's replay of task events (`WatchTasks` with `after_event_id`) reads only the events
-- of tasks assigned to them, by this index: (tenant, driver) then id, so the scan is the
-- range of the driver's own events after the resume point, in order — never the rest of the
-- tenant's history, which a driver does not see. Events of unassigned tasks (no driver) are
-- never a driver's, so they are left out of the index.
--
-- Admins and dispatchers replay the tenant's events by `task_events_tenant_id_idx`.
--
-- A plain CREATE INDEX (the migration runs in a transaction): it holds back task writes for
-- as long as the build takes, which at the sizes measured (tens of thousands of events per
-- tenant) is well under a second.
CREATE INDEX task_events_tenant_driver_idx
    ON task_events (tenant_id, driver_id, id)
    WHERE driver_id IS NOT NULL;
