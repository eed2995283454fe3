-- The relay job links to the request whose event queued it: a tenant transaction carries its
-- caller's W3C trace context in `app.traceparent` (set with the tenant at BEGIN), copied here
-- into the job's payload, where the job's span finds it (as for jobs queued from Rust). When
-- later events fold into a pending job, its payload, and so its link, is the latest one's.
CREATE OR REPLACE FUNCTION task_events_queue_relay() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM director_enqueue_job(
        'dispatch_relay_task_events',
        json_build_object(
            'tenant_id', NEW.tenant_id,
            'traceparent', nullif(current_setting('app.traceparent', true), '')),
        max_attempts => 25,
        job_key => 'dispatch_relay_task_events/' || NEW.tenant_id,
        job_key_mode => 'preserve_run_at');
    RETURN NULL;
END
$$;
