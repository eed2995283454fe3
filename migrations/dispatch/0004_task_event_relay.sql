-- The relay of task events to Integrations (notifications).
--
-- An event that notifies (`assigned`, `completed`, `cancelled`) queues, in its own
-- transaction, a relay job for its tenant (one pending job per tenant: later events fold into
-- it). The job sends the tenant's events after its cursor to Integrations in order and moves
-- the cursor only once Integrations has acknowledged them, so delivery is at least once and
-- survives either side restarting: the job is retried with backoff until it gets through.
-- The job queue (graphile_worker, and `director_enqueue_job`) is installed by `migrate` after
-- these migrations; the function below calls it only when an event is written.

-- How far each tenant's events have been delivered.
CREATE TABLE task_event_relay (
    tenant_id     text        PRIMARY KEY CHECK (tenant_id <> ''),
    last_event_id bigint      NOT NULL DEFAULT 0 CHECK (last_event_id >= 0),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER task_event_relay_set_updated_at
    BEFORE UPDATE ON task_event_relay
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

ALTER TABLE task_event_relay ENABLE ROW LEVEL SECURITY;
ALTER TABLE task_event_relay FORCE ROW LEVEL SECURITY;
CREATE POLICY task_event_relay_tenant_isolation ON task_event_relay
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

GRANT SELECT, INSERT, UPDATE ON task_event_relay TO director_app;

-- Queues the tenant's relay job. `preserve_run_at`: a job waiting out a backoff (Integrations
-- down) keeps waiting instead of being retried at once by every new event.
CREATE FUNCTION task_events_queue_relay() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM director_enqueue_job(
        'dispatch_relay_task_events',
        json_build_object('tenant_id', NEW.tenant_id),
        max_attempts => 25,
        job_key => 'dispatch_relay_task_events/' || NEW.tenant_id,
        job_key_mode => 'preserve_run_at');
    RETURN NULL;
END
$$;

CREATE TRIGGER task_events_queue_relay
    AFTER INSERT ON task_events
    FOR EACH ROW
    WHEN (NEW.kind IN ('assigned', 'completed', 'cancelled'))
    EXECUTE FUNCTION task_events_queue_relay();
