-- Each tenant's own integration credentials, and the counters its spending limits are kept by.

-- One row per tenant and integration. The section (URL, key, token, sender…) is stored only as
-- AES-256-GCM ciphertext: `nonce || ciphertext`, sealed with the key whose fingerprint is
-- `key_id` and bound to the row's tenant and integration (the associated data), so a value
-- copied to another row does not open. Rotating the key: see the README.
CREATE TABLE integration_settings (
    tenant_id   text        NOT NULL CHECK (tenant_id <> ''),
    integration text        NOT NULL CHECK (integration IN ('vessey', 'slack', 'twilio')),
    key_id      text        NOT NULL CHECK (key_id <> ''),
    sealed      bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, integration)
);

CREATE TRIGGER integration_settings_set_updated_at
    BEFORE UPDATE ON integration_settings
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

ALTER TABLE integration_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE integration_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY integration_settings_tenant_isolation ON integration_settings
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

GRANT SELECT, INSERT, UPDATE, DELETE ON integration_settings TO director_app;

-- Notifications charged to a tenant per limit window (a UTC day for SMS, a minute for
-- Slack). Charged in the transaction that queues the notification, so a refused one costs
-- nothing and concurrent requests cannot both take the last unit.
CREATE TABLE notification_usage (
    tenant_id    text        NOT NULL CHECK (tenant_id <> ''),
    channel      text        NOT NULL CHECK (channel IN ('sms', 'slack')),
    window_start timestamptz NOT NULL,
    used         integer     NOT NULL CHECK (used > 0),
    PRIMARY KEY (tenant_id, channel, window_start)
);

ALTER TABLE notification_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE notification_usage FORCE ROW LEVEL SECURITY;
CREATE POLICY notification_usage_tenant_isolation ON notification_usage
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

GRANT SELECT, INSERT, UPDATE, DELETE ON notification_usage TO director_app;

-- A notification never sent because a limit or the allowed destinations refused it.
ALTER TABLE notifications DROP CONSTRAINT notifications_status_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_status_check
    CHECK (status IN ('queued', 'sent', 'failed', 'dead', 'refused'));
