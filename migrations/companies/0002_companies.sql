-- Companies (farms). One row per company of a tenant; a deleted company keeps its row with
-- `deleted_at` set, so history (tasks, imports) can still point at it.
CREATE TABLE companies (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- The owning tenant: the `app_metadata.tenant_id` claim, or the user's `sub`.
    tenant_id   text        NOT NULL CHECK (tenant_id <> ''),
    name        text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 255),
    email       text        CHECK (char_length(email) <= 320),
    -- E.164, normalised by the service: '+' and 7 to 15 digits.
    phone       text        CHECK (phone ~ '^\+[0-9]{7,15}$'),
    address     text        CHECK (char_length(address) <= 1000),
    -- The farm's id in Vessey (`farm_id` of a collection).
    external_id text        CHECK (char_length(external_id) BETWEEN 1 AND 255),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);

-- A Vessey farm maps to at most one live company per tenant; imports rely on it.
CREATE UNIQUE INDEX companies_tenant_external_id_key
    ON companies (tenant_id, external_id)
    WHERE deleted_at IS NULL AND external_id IS NOT NULL;

-- The list query: a tenant's live companies, oldest first.
CREATE INDEX companies_tenant_created_idx
    ON companies (tenant_id, created_at, id)
    WHERE deleted_at IS NULL;

CREATE TRIGGER companies_set_updated_at
    BEFORE UPDATE ON companies
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Tenant isolation enforced by the database as well as by every query's own filter: a query
-- that forgets `tenant_id = $1` still sees only the tenant set for its transaction.
ALTER TABLE companies ENABLE ROW LEVEL SECURITY;
ALTER TABLE companies FORCE ROW LEVEL SECURITY;

CREATE POLICY companies_tenant_isolation ON companies
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

-- No DELETE: deletion is soft.
GRANT SELECT, INSERT, UPDATE ON companies TO director_app;
