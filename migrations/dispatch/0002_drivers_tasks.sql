-- Dispatch: drivers, the collection tasks they are given, and the events of those tasks.
--
-- The database enforces what must hold whatever the service does: tenant isolation (row-level
-- security), the task state machine (a trigger refuses any other transition), the columns
-- that go with each status (checks), and one event per task change, written by a trigger in
-- the same transaction (the transactional outbox `WatchTasks` and `integrations` read).

-- Drivers. A deleted driver keeps its row with `deleted_at` set, so its tasks still name it.
CREATE TABLE drivers (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   text        NOT NULL CHECK (tenant_id <> ''),
    name        text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 255),
    -- E.164, normalised by the service; SMS notifications go here.
    phone       text        CHECK (phone ~ '^\+[0-9]{7,15}$'),
    email       text        CHECK (char_length(email) <= 320),
    -- The driver's id in Vessey.
    external_id text        CHECK (char_length(external_id) BETWEEN 1 AND 255),
    -- The auth user id (`sub`) of the driver's own login: a caller with role `driver` is the
    -- driver whose `user_id` is their `sub`.
    user_id     text        CHECK (char_length(user_id) BETWEEN 1 AND 255),
    status      text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    -- The target of tasks' (tenant_id, driver_id) reference: a task can only name a driver of
    -- its own tenant.
    CONSTRAINT drivers_tenant_id_key UNIQUE (tenant_id, id)
);

CREATE UNIQUE INDEX drivers_tenant_external_id_key
    ON drivers (tenant_id, external_id)
    WHERE deleted_at IS NULL AND external_id IS NOT NULL;

CREATE UNIQUE INDEX drivers_tenant_user_id_key
    ON drivers (tenant_id, user_id)
    WHERE deleted_at IS NULL AND user_id IS NOT NULL;

-- The list query, without and with `?status=`.
CREATE INDEX drivers_tenant_created_idx
    ON drivers (tenant_id, created_at, id)
    WHERE deleted_at IS NULL;
CREATE INDEX drivers_tenant_status_created_idx
    ON drivers (tenant_id, status, created_at, id)
    WHERE deleted_at IS NULL;

CREATE TRIGGER drivers_set_updated_at
    BEFORE UPDATE ON drivers
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

ALTER TABLE drivers ENABLE ROW LEVEL SECURITY;
ALTER TABLE drivers FORCE ROW LEVEL SECURITY;
CREATE POLICY drivers_tenant_isolation ON drivers
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

GRANT SELECT, INSERT, UPDATE ON drivers TO director_app;

-- Tasks: one milk collection at a company (farm) on a day.
CREATE TABLE tasks (
    id            uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     text             NOT NULL CHECK (tenant_id <> ''),
    -- A company of the `companies` service (another database): checked over gRPC when set.
    company_id    uuid             NOT NULL,
    driver_id     uuid,
    title         text             NOT NULL CHECK (char_length(title) BETWEEN 1 AND 255),
    notes         text             CHECK (char_length(notes) <= 2000),
    scheduled_for date             NOT NULL,
    window_start  timestamptz,
    window_end    timestamptz,
    status        text             NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'assigned', 'in_progress', 'completed', 'cancelled')),
    volume_liters double precision
                  CHECK (volume_liters >= 0 AND volume_liters < 'Infinity'::double precision),
    -- The collection's id in Vessey: imports upsert by it.
    external_id   text             CHECK (char_length(external_id) BETWEEN 1 AND 255),
    -- Bumped by the trigger below on every change: optimistic concurrency for updates.
    version       integer          NOT NULL DEFAULT 1,
    created_at    timestamptz      NOT NULL DEFAULT now(),
    updated_at    timestamptz      NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    cancel_reason text             CHECK (char_length(cancel_reason) BETWEEN 1 AND 1000),
    deleted_at    timestamptz,
    CONSTRAINT tasks_driver_of_tenant
        FOREIGN KEY (tenant_id, driver_id) REFERENCES drivers (tenant_id, id),
    CONSTRAINT tasks_window_order
        CHECK (window_start IS NULL OR window_end IS NULL OR window_end >= window_start),
    -- What each status implies: a pending task has no driver; assigned, started and
    -- completed ones have one; only completed tasks have `completed_at`, only cancelled
    -- ones a reason.
    CONSTRAINT tasks_driver_matches_status CHECK (
        CASE status
            WHEN 'pending' THEN driver_id IS NULL
            WHEN 'cancelled' THEN true
            ELSE driver_id IS NOT NULL
        END),
    CONSTRAINT tasks_completed_at_matches_status
        CHECK ((status = 'completed') = (completed_at IS NOT NULL)),
    CONSTRAINT tasks_cancel_reason_matches_status
        CHECK ((status = 'cancelled') = (cancel_reason IS NOT NULL))
);

CREATE UNIQUE INDEX tasks_tenant_external_id_key
    ON tasks (tenant_id, external_id)
    WHERE deleted_at IS NULL AND external_id IS NOT NULL;

-- The list query orders by (scheduled_for, created_at, id); one index per filter, each
-- also serving `from`/`to` on scheduled_for.
CREATE INDEX tasks_tenant_scheduled_idx
    ON tasks (tenant_id, scheduled_for, created_at, id)
    WHERE deleted_at IS NULL;
CREATE INDEX tasks_tenant_status_scheduled_idx
    ON tasks (tenant_id, status, scheduled_for, created_at, id)
    WHERE deleted_at IS NULL;
CREATE INDEX tasks_tenant_driver_scheduled_idx
    ON tasks (tenant_id, driver_id, scheduled_for, created_at, id)
    WHERE deleted_at IS NULL;
CREATE INDEX tasks_tenant_company_scheduled_idx
    ON tasks (tenant_id, company_id, scheduled_for, created_at, id)
    WHERE deleted_at IS NULL;

-- The state machine, enforced on every UPDATE whatever its WHERE clause:
-- pending → assigned → in_progress → completed; pending/assigned/in_progress → cancelled;
-- assigned → assigned (another driver). Also bumps `version` and stamps `updated_at`.
CREATE FUNCTION tasks_before_update() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
           (OLD.status = 'pending' AND NEW.status IN ('assigned', 'cancelled'))
        OR (OLD.status = 'assigned' AND NEW.status IN ('in_progress', 'cancelled'))
        OR (OLD.status = 'in_progress' AND NEW.status IN ('completed', 'cancelled'))
    ) THEN
        RAISE EXCEPTION 'a task cannot go from % to %', OLD.status, NEW.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'tasks_status_transition';
    END IF;
    NEW.version := OLD.version + 1;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER tasks_before_update
    BEFORE UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_before_update();

ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE tasks FORCE ROW LEVEL SECURITY;
CREATE POLICY tasks_tenant_isolation ON tasks
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

-- No DELETE: deletion is soft.
GRANT SELECT, INSERT, UPDATE ON tasks TO director_app;

-- Task events: the outbox. One row per change of a task, with the task as it was after the
-- change. Ids increase in commit order within a tenant (see tasks_lock_tenant_events), so a
-- reader that has seen every event up to id N of a tenant resumes with `id > N` and misses
-- nothing.
CREATE TABLE task_events (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   text        NOT NULL CHECK (tenant_id <> ''),
    task_id     uuid        NOT NULL,
    -- The driver the task is assigned to after the change: drivers watch their own tasks.
    driver_id   uuid,
    kind        text        NOT NULL CHECK (kind IN
                    ('created', 'updated', 'assigned', 'started', 'completed', 'cancelled', 'deleted')),
    -- `to_jsonb` of the tasks row; read back with `jsonb_populate_record(NULL::tasks, task)`.
    task        jsonb       NOT NULL,
    occurred_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX task_events_tenant_id_idx ON task_events (tenant_id, id);

ALTER TABLE task_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE task_events FORCE ROW LEVEL SECURITY;
CREATE POLICY task_events_tenant_isolation ON task_events
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

-- Events are appended, never changed.
GRANT SELECT, INSERT ON task_events TO director_app;

-- Serialises the writers of one tenant's events from before their first task row is locked
-- until commit, so event ids are taken — and become visible — in order. Taken per statement
-- before any row lock, a writer never waits for it while holding a task row another writer
-- needs (no deadlock between a bulk import and a single transition).
CREATE FUNCTION tasks_lock_tenant_events() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_advisory_xact_lock(
        hashtextextended('director.task_events/' || coalesce(current_setting('app.tenant_id', true), ''), 0));
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_lock_tenant_events
    BEFORE INSERT OR UPDATE ON tasks
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_lock_tenant_events();

-- Appends the event of one task change and wakes the watchers of its tenant (NOTIFY is
-- delivered at commit, and only if the transaction commits).
CREATE FUNCTION tasks_record_event() RETURNS trigger
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
    INSERT INTO task_events (tenant_id, task_id, driver_id, kind, task)
    VALUES (NEW.tenant_id, NEW.id, NEW.driver_id, event_kind, to_jsonb(NEW));
    PERFORM pg_notify('director_task_events', NEW.tenant_id);
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_record_event
    AFTER INSERT OR UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_record_event();
