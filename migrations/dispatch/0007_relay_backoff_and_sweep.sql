-- The relay keeps its own capped backoff, across new events, and a periodic sweep relays any
-- tenant whose events are past its cursor with no relay job waiting (services/dispatch/src/
-- relay.rs has the whole story).
--
-- 0004 says `preserve_run_at` keeps a waiting relay job waiting; graphile_worker keeps its
-- `run_at` only while the job has never been attempted (attempts = 0), and resets its attempts
-- too. So each new event made a failing relay retry at once and restarted its backoff; without
-- events the backoff grew to about 6 hours; and a job out of attempts left the tenant's events
-- waiting for its next one. Now the relay never hands a failure to the queue's backoff: it
-- queues its next attempt itself as a fresh job (attempts = 0) due after its own delay, which
-- `preserve_run_at` does keep.

-- How the tenant's relay is failing: consecutive failed attempts (0 once it gets through),
-- from which its next delay follows, and the last error.
ALTER TABLE task_event_relay
    ADD COLUMN failures   integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    ADD COLUMN last_error text;

-- The events that notify, by tenant then id: the relay reads a tenant's next ones and the
-- sweep finds the tenants with any, without walking the events that do not notify (an
-- import's thousands of `created`).
CREATE INDEX task_events_relay_idx ON task_events (tenant_id, id)
    WHERE kind IN ('assigned', 'completed', 'cancelled');

-- Queues the tenant's relay job, in the caller's tenant transaction: one pending job per
-- tenant, later calls folding into it and keeping its run_at while it waits (it is always
-- unattempted while it waits, see above). Used by the trigger and by the sweep. plpgsql, so
-- that it may be created before `migrate` installs the queue.
CREATE FUNCTION queue_task_event_relay(tenant text) RETURNS bigint
    LANGUAGE plpgsql AS
$$
BEGIN
    RETURN director_enqueue_job(
        'dispatch_relay_task_events',
        json_build_object(
            'tenant_id', tenant,
            'traceparent', nullif(current_setting('app.traceparent', true), '')),
        max_attempts => 25,
        job_key => 'dispatch_relay_task_events/' || tenant,
        job_key_mode => 'preserve_run_at');
END
$$;

REVOKE ALL ON FUNCTION queue_task_event_relay(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION queue_task_event_relay(text) TO director_app;

CREATE OR REPLACE FUNCTION task_events_queue_relay() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM queue_task_event_relay(NEW.tenant_id);
    RETURN NULL;
END
$$;

-- The sweep's one view across tenants: `task_event_relay_backlog()` answers each tenant with
-- events that notify past its cursor, and when the oldest of them happened — tenant ids and
-- times, nothing of the events. Both tables are private to their tenant (row-level
-- security), so the function runs as `director_relay_backlog`: NOLOGIN, no superuser, no
-- attribute, a member of no role, granted reading those columns and nothing else, and the
-- only role the policies below let see every tenant's rows. Only the worker's role
-- (`director_worker`, which the services' login has outside tenant transactions) may call it;
-- tenant transactions (`director_app`) may not.
DO $$
BEGIN
    CREATE ROLE director_relay_backlog NOLOGIN;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- `migrate` creates the worker's role with the queue, after the migrations; on a new server
-- it does not exist yet.
DO $$
BEGIN
    CREATE ROLE director_worker NOLOGIN;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

DO $$
DECLARE
    wrong text;
BEGIN
    SELECT concat_ws(', ',
               CASE WHEN rolsuper THEN 'SUPERUSER' END,
               CASE WHEN rolcanlogin THEN 'LOGIN' END,
               CASE WHEN rolcreatedb THEN 'CREATEDB' END,
               CASE WHEN rolcreaterole THEN 'CREATEROLE' END,
               CASE WHEN rolreplication THEN 'REPLICATION' END,
               CASE WHEN rolbypassrls THEN 'BYPASSRLS' END,
               (SELECT 'member of ' || string_agg(m.roleid::regrole::text, ', ')
                FROM pg_auth_members m WHERE m.member = r.oid))
    INTO wrong
    FROM pg_roles r WHERE r.rolname = 'director_relay_backlog';
    IF wrong <> '' THEN
        RAISE EXCEPTION 'role director_relay_backlog must have no attribute and no membership; it has %', wrong
            USING HINT = 'the relay sweep''s function reads every tenant''s events with its rights';
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO director_relay_backlog;
GRANT SELECT (tenant_id, id, kind, occurred_at) ON task_events TO director_relay_backlog;
GRANT SELECT (tenant_id, last_event_id) ON task_event_relay TO director_relay_backlog;
CREATE POLICY task_events_relay_backlog ON task_events
    FOR SELECT TO director_relay_backlog USING (true);
CREATE POLICY task_event_relay_backlog ON task_event_relay
    FOR SELECT TO director_relay_backlog USING (true);

-- Distinct tenants by a skip scan of task_events_relay_idx, then each one's first event that
-- notifies past its cursor (none when there is no cursor yet: 0).
CREATE FUNCTION task_event_relay_backlog()
    RETURNS TABLE (tenant_id text, oldest_pending timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE tenants(tenant_id) AS (
        (SELECT e.tenant_id FROM public.task_events e
         WHERE e.kind IN ('assigned', 'completed', 'cancelled')
         ORDER BY e.tenant_id LIMIT 1)
        UNION ALL
        SELECT (SELECT e.tenant_id FROM public.task_events e
                WHERE e.kind IN ('assigned', 'completed', 'cancelled')
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
          AND e.kind IN ('assigned', 'completed', 'cancelled')
          AND e.id > coalesce((SELECT r.last_event_id FROM public.task_event_relay r
                               WHERE r.tenant_id = t.tenant_id), 0)
        ORDER BY e.id
        LIMIT 1
    ) pending
    WHERE t.tenant_id IS NOT NULL
$$;

REVOKE ALL ON FUNCTION task_event_relay_backlog() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION task_event_relay_backlog() TO director_worker;

-- Hand the function to its role. A new owner must be allowed to create in the function's
-- schema, which a superuser doing this is not asked, and an owner that is not a superuser
-- must be a member of the new owner: such an owner joins the role (as it joins the queue's,
-- see director-platform `roles`) and lends it CREATE on `public` for the change only.
DO $$
DECLARE
    transient boolean := NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user);
BEGIN
    IF transient THEN
        IF NOT pg_has_role(current_user, 'director_relay_backlog', 'MEMBER') THEN
            GRANT director_relay_backlog TO CURRENT_USER;
        END IF;
        GRANT CREATE ON SCHEMA public TO director_relay_backlog;
    END IF;
    ALTER FUNCTION task_event_relay_backlog() OWNER TO director_relay_backlog;
    IF transient THEN
        REVOKE CREATE ON SCHEMA public FROM director_relay_backlog;
    END IF;
END
$$;
