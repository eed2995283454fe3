//! From verified claims to a [`Caller`]: the tenant and role are read from configurable
//! dotted claim paths, with the reference's behaviour as the fallback (each user is its own
//! tenant and admin of it).

use director_platform::identity::{Caller, Role};
use serde_json::Value;

use super::AuthError;

/// Reads the caller out of verified claims.
pub fn caller_from_claims(
    claims: &Value,
    tenant_claim: &str,
    role_claim: &str,
) -> Result<Caller, AuthError> {
    let user_id = match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
        _ => {
            return Err(AuthError::Invalid(
                "Token is missing the \"sub\" claim".to_owned(),
            ));
        }
    };
    let tenant_id = claim_text(claims, tenant_claim).unwrap_or_else(|| user_id.clone());
    let role = match claim_text(claims, role_claim) {
        None => Role::Admin,
        Some(name) => name
            .parse::<Role>()
            .map_err(|_| AuthError::UnknownRole(name.clone()))?,
    };
    Ok(Caller {
        user_id,
        tenant_id,
        role,
    })
}

/// The claim at a dotted path as text: strings as they are, numbers written out; missing,
/// null and empty values are absent.
fn claim_text(claims: &Value, path: &str) -> Option<String> {
    let value = path
        .split('.')
        .try_fold(claims, |value, key| value.get(key))?;
    match value {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    const TENANT: &str = "app_metadata.tenant_id";
    const ROLE: &str = "app_metadata.role";

    #[test]
    fn a_plain_supabase_token_makes_the_user_admin_of_its_own_tenant() {
        let caller = caller_from_claims(
            &json!({"sub": "user-1", "role": "authenticated"}),
            TENANT,
            ROLE,
        )
        .unwrap();
        assert_eq!(caller.user_id, "user-1");
        assert_eq!(caller.tenant_id, "user-1");
        assert_eq!(caller.role, Role::Admin);
    }

    #[test]
    fn tenant_and_role_come_from_the_configured_claims() {
        let claims = json!({"sub": "u", "app_metadata": {"tenant_id": "t-9", "role": "driver"}});
        let caller = caller_from_claims(&claims, TENANT, ROLE).unwrap();
        assert_eq!(caller.tenant_id, "t-9");
        assert_eq!(caller.role, Role::Driver);
    }

    #[test]
    fn an_unknown_role_is_refused() {
        let claims = json!({"sub": "u", "app_metadata": {"role": "owner"}});
        assert_eq!(
            caller_from_claims(&claims, TENANT, ROLE).unwrap_err(),
            AuthError::UnknownRole("owner".to_owned())
        );
    }

    #[test]
    fn a_token_without_subject_is_invalid() {
        assert!(matches!(
            caller_from_claims(&json!({"aud": "x"}), TENANT, ROLE),
            Err(AuthError::Invalid(_))
        ));
    }
}
