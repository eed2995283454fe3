//! The `integration_settings` table: each tenant's sections, sealed ([`super::cipher`]).

use director_platform::identity::Caller;
use director_store::tenant::TenantDb;
use sqlx::PgConnection;

use super::cipher::{Sealed, SettingsCipher};
use super::sections::{Change, Integration, Section, TenantSettings};
use crate::domain::UnknownValue;
use crate::error::IntegrationsError;

/// Tenants' integration settings, through tenant transactions.
#[derive(Debug, Clone)]
pub struct SettingsStore {
    db: TenantDb,
    cipher: SettingsCipher,
}

impl SettingsStore {
    pub fn new(db: TenantDb, cipher: SettingsCipher) -> Self {
        Self { db, cipher }
    }

    /// The caller's tenant's sections. Rows sealed with an earlier key are sealed again with
    /// the current one on the way (see the cipher's rotation notes).
    pub async fn load(&self, caller: &Caller) -> Result<TenantSettings, IntegrationsError> {
        let rows: Vec<(String, String, Vec<u8>)> = self
            .db
            .read_all(
                caller,
                sqlx::query_as(
                    "SELECT integration, key_id, sealed FROM integration_settings
                     WHERE tenant_id = $1",
                )
                .bind(caller.tenant_id.as_str()),
                "integration",
            )
            .await?;
        let mut settings = TenantSettings::default();
        let mut stale = Vec::new();
        for (name, key_id, bytes) in rows {
            // The table's CHECK allows only the integrations this version knows; anything else
            // is a row it did not write.
            let integration = Integration::from_name(&name).ok_or_else(|| {
                sqlx::Error::Decode(Box::new(UnknownValue::new("integration", &name)))
            })?;
            let sealed = Sealed { key_id, bytes };
            let section = self.open(caller, integration, &sealed)?;
            if sealed.key_id != self.cipher.current_key_id() {
                stale.push(section.clone());
            }
            settings.0.insert(integration, section);
        }
        if !stale.is_empty() {
            let mut tx = self.db.begin(caller).await?;
            for section in &stale {
                self.save(&mut tx, caller, section).await?;
            }
            tx.commit().await?;
            tracing::info!(
                sections = stale.len(),
                key_id = self.cipher.current_key_id(),
                "integration settings sealed again with the current key"
            );
        }
        Ok(settings)
    }

    /// Applies `changes` in one transaction and answers the settings after them.
    pub async fn apply(
        &self,
        caller: &Caller,
        changes: &[(Integration, Change)],
    ) -> Result<TenantSettings, IntegrationsError> {
        let mut tx = self.db.begin(caller).await?;
        for (integration, change) in changes {
            match change {
                Change::Keep => {}
                Change::Remove => {
                    sqlx::query(
                        "DELETE FROM integration_settings
                         WHERE tenant_id = $1 AND integration = $2",
                    )
                    .bind(caller.tenant_id.as_str())
                    .bind(integration.as_str())
                    .persistent(self.db.persistent())
                    .execute(&mut *tx)
                    .await?;
                }
                Change::Set(section) => self.save(&mut tx, caller, section).await?,
            }
        }
        tx.commit().await?;
        let changed: Vec<&str> = changes
            .iter()
            .filter(|(_, change)| *change != Change::Keep)
            .map(|(integration, _)| integration.as_str())
            .collect();
        tracing::info!(tenant_id = %caller.tenant_id, user_id = %caller.user_id, ?changed, "integration settings changed");
        self.load(caller).await
    }

    /// Seals and upserts one section.
    async fn save(
        &self,
        connection: &mut PgConnection,
        caller: &Caller,
        section: &Section,
    ) -> Result<(), sqlx::Error> {
        let integration = section.integration();
        let sealed = self
            .cipher
            .seal(&caller.tenant_id, integration, &section.to_bytes());
        sqlx::query(
            "INSERT INTO integration_settings (tenant_id, integration, key_id, sealed)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, integration)
             DO UPDATE SET key_id = EXCLUDED.key_id, sealed = EXCLUDED.sealed",
        )
        .bind(caller.tenant_id.as_str())
        .bind(integration.as_str())
        .bind(&sealed.key_id)
        .bind(&sealed.bytes)
        .persistent(self.db.persistent())
        .execute(connection)
        .await?;
        Ok(())
    }

    fn open(
        &self,
        caller: &Caller,
        integration: Integration,
        sealed: &Sealed,
    ) -> Result<Section, IntegrationsError> {
        let unreadable = |reason: String| {
            tracing::error!(tenant_id = %caller.tenant_id, integration = integration.as_str(), reason, "integration settings unreadable");
            IntegrationsError::SettingsUnreadable {
                integration,
                reason,
            }
        };
        let bytes = self
            .cipher
            .open(&caller.tenant_id, integration, sealed)
            .map_err(|error| unreadable(error.to_string()))?;
        Section::from_bytes(integration, &bytes)
            .ok_or_else(|| unreadable("the opened settings are not this section's".to_owned()))
    }
}
