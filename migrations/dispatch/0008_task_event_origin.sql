-- Where a task change came from, on its event: `import` for the bulk upserts of a Vessey
-- import (which tell each driver about their new collections in one summary), null for a
-- person's request. The upsert statement sets `app.task_event_origin` for its own
-- transaction; everything else leaves it unset.
ALTER TABLE task_events ADD COLUMN origin text CHECK (origin IN ('import'));

CREATE OR REPLACE FUNCTION tasks_record_event() RETURNS trigger
    LANGUAGE plpgsql AS
$$
DECLARE
    event_kind text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        event_kind := 'created';
    ELSIF NEW.deleted_at IS NOT NULL AND OLD.deleted_at IS NULL THEN
        event_kind := 'deleted';
    ELSIF NEW.status IS DISTINCT FROM OLD.status OR NEW.driver_id IS DISTINCT FROM OLD.driver_id THEN
        event_kind := CASE NEW.status
            WHEN 'assigned' THEN 'assigned'
            WHEN 'in_progress' THEN 'started'
            WHEN 'completed' THEN 'completed'
            WHEN 'cancelled' THEN 'cancelled'
            ELSE 'updated'
        END;
    ELSE
        event_kind := 'updated';
    END IF;
    -- Also locked here by the row's own tenant, in case a statement ran without the tenant
    -- setting (maintenance as the owner); a no-op when the statement trigger holds it.
    PERFORM pg_advisory_xact_lock(hashtextextended('director.task_events/' || NEW.tenant_id, 0));
    INSERT INTO task_events (tenant_id, task_id, driver_id, kind, task, origin)
    VALUES (NEW.tenant_id, NEW.id, NEW.driver_id, event_kind, to_jsonb(NEW),
            nullif(current_setting('app.task_event_origin', true), ''));
    PERFORM pg_notify('director_task_events', NEW.tenant_id);
    RETURN NULL;
END
$$;

-- Which events notify — are relayed to Integrations: a task assigned (or created with a
-- driver: `POST /api/tasks` with `driver_id` texts the driver as `/assign` does), completed
-- or cancelled, by a person's request. An import's events do not (the import tells each
-- driver in one summary). One definition for the relay trigger, its index, its query and the
-- sweep's backlog; immutable so that the index can be partial on it.
CREATE FUNCTION task_event_notifies(kind text, driver_id uuid, origin text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$
    SELECT origin IS NULL
       AND (kind IN ('assigned', 'completed', 'cancelled')
            OR (kind = 'created' AND driver_id IS NOT NULL))
$$;

DROP TRIGGER task_events_queue_relay ON task_events;
CREATE TRIGGER task_events_queue_relay
    AFTER INSERT ON task_events
    FOR EACH ROW
    WHEN (task_event_notifies(NEW.kind, NEW.driver_id, NEW.origin))
    EXECUTE FUNCTION task_events_queue_relay();

DROP INDEX task_events_relay_idx;
CREATE INDEX task_events_relay_idx ON task_events (tenant_id, id)
    WHERE task_event_notifies(kind, driver_id, origin);

GRANT SELECT (driver_id, origin) ON task_events TO director_relay_backlog;

CREATE OR REPLACE FUNCTION task_event_relay_backlog()
    RETURNS TABLE (tenant_id text, oldest_pending timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE tenants(tenant_id) AS (
        (SELECT e.tenant_id FROM public.task_events e
         WHERE public.task_event_notifies(e.kind, e.driver_id, e.origin)
         ORDER BY e.tenant_id LIMIT 1)
        UNION ALL
        SELECT (SELECT e.tenant_id FROM public.task_events e
                WHERE public.task_event_notifies(e.kind, e.driver_id, e.origin)
                  AND e.tenant_id > t.tenant_id
                ORDER BY e.tenant_id LIMIT 1)
        FROM tenants t
        WHERE t.tenant_id IS NOT NULL
    )
    SELECT t.tenant_id, pending.occurred_at
    FROM tenants t
    CROSS JOIN LATERAL (
        SELECT e.occurred_at FROM public.task_events e
        WHERE e.tenant_id = t.tenant_id
          AND public.task_event_notifies(e.kind, e.driver_id, e.origin)
          AND e.id > coalesce((SELECT r.last_event_id FROM public.task_event_relay r
                               WHERE r.tenant_id = t.tenant_id), 0)
        ORDER BY e.id
        LIMIT 1
    ) pending
    WHERE t.tenant_id IS NOT NULL
$$;
