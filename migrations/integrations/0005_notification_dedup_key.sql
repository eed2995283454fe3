-- A notification a job sends once in effect however often the job runs (an import's summary
-- to each driver: `import/<job id>/<driver id>`): a second insert with the same key is a
-- no-op.
ALTER TABLE notifications ADD COLUMN dedup_key text CHECK (char_length(dedup_key) <= 200);

CREATE UNIQUE INDEX notifications_tenant_dedup_key_idx
    ON notifications (tenant_id, dedup_key)
    WHERE dedup_key IS NOT NULL;
