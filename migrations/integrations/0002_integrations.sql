-- Integrations: the jobs the API starts (sync, import) as the API shows them, the delivery
-- log of notifications, and the task events already consumed. The job queue itself
-- (graphile_worker's schema) is installed by `migrate` after these migrations; a job row
-- here is the tenant's view of a queued job, updated by its handler.

CREATE TABLE jobs (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      text        NOT NULL CHECK (tenant_id <> ''),
    kind           text        NOT NULL
                   CHECK (kind IN ('vessey_driver_sync', 'vessey_collection_import')),
    -- The job's input, e.g. {"date": "2026-11-22"} for an import.
    params         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status         text        NOT NULL DEFAULT 'queued'
                   CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'dead')),
    progress_done  integer     NOT NULL DEFAULT 0 CHECK (progress_done >= 0),
    progress_total integer     NOT NULL DEFAULT 0 CHECK (progress_total >= 0),
    attempts       integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error     text,
    -- Who started it (the caller's user id).
    created_by     text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Newest first, without and with `?status=`.
CREATE INDEX jobs_tenant_created_idx ON jobs (tenant_id, created_at DESC, id DESC);
CREATE INDEX jobs_tenant_status_created_idx ON jobs (tenant_id, status, created_at DESC, id DESC);

CREATE TRIGGER jobs_set_updated_at
    BEFORE UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Wakes `WatchJob` streams (any replica) when a job changes; they re-read the row.
CREATE FUNCTION jobs_notify_change() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify('director_jobs', NEW.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_change
    AFTER INSERT OR UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_notify_change();

ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY jobs_tenant_isolation ON jobs
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

GRANT SELECT, INSERT, UPDATE ON jobs TO director_app;

-- The delivery log: one row per outgoing SMS or Slack message.
CREATE TABLE notifications (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       text        NOT NULL CHECK (tenant_id <> ''),
    channel         text        NOT NULL CHECK (channel IN ('sms', 'slack')),
    -- The phone number (E.164) of an SMS, the channel override of a Slack message.
    recipient       text        CHECK (char_length(recipient) <= 80),
    message         text        NOT NULL CHECK (char_length(message) BETWEEN 1 AND 40000),
    status          text        NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'sent', 'failed', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      text,
    -- Twilio's message SID.
    provider_id     text,
    -- The Dispatch task event that caused it, when one did.
    source_event_id bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT notifications_sms_has_recipient CHECK (channel <> 'sms' OR recipient IS NOT NULL),
    CONSTRAINT notifications_sent_has_no_error CHECK (status <> 'sent' OR last_error IS NULL)
);

CREATE INDEX notifications_tenant_created_idx
    ON notifications (tenant_id, created_at DESC, id DESC);
CREATE INDEX notifications_tenant_status_created_idx
    ON notifications (tenant_id, status, created_at DESC, id DESC);

CREATE TRIGGER notifications_set_updated_at
    BEFORE UPDATE ON notifications
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

ALTER TABLE notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE notifications FORCE ROW LEVEL SECURITY;
CREATE POLICY notifications_tenant_isolation ON notifications
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

GRANT SELECT, INSERT, UPDATE ON notifications TO director_app;

-- Task events from Dispatch already consumed: delivery is at least once, and an event whose
-- id is here is acknowledged again without effect. Written in the same transaction as the
-- notifications the event causes.
CREATE TABLE consumed_task_events (
    tenant_id   text        NOT NULL CHECK (tenant_id <> ''),
    event_id    bigint      NOT NULL,
    consumed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, event_id)
);

ALTER TABLE consumed_task_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE consumed_task_events FORCE ROW LEVEL SECURITY;
CREATE POLICY consumed_task_events_tenant_isolation ON consumed_task_events
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

GRANT SELECT, INSERT ON consumed_task_events TO director_app;
