//! From verified claims to a [`Caller`]: the tenant and role are read from configurable
//! dotted claim paths. Where claims are required (`REQUIRE_CLAIMS`, always outside dev) a
//! token lacking either is refused naming the claim; otherwise (the dev default) the
//! reference's behaviour stands in: each user is its own tenant and admin of it. A role
//! Director does not know is refused everywhere.

use director_platform::identity::{Caller, Role};
use serde_json::Value;

use super::AuthError;

/// Reads the caller out of verified claims. `require_claims` refuses a token without the
/// tenant or the role claim instead of falling back to `sub` and admin.
pub fn caller_from_claims(
    claims: &Value,
    tenant_claim: &str,
    role_claim: &str,
    require_claims: bool,
) -> Result<Caller, AuthError> {
    let user_id = match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
        _ => {
            return Err(AuthError::Invalid(
                "Token is missing the \"sub\" claim".to_owned(),
            ));
        }
    };
    let tenant = match claim_at(claims, tenant_claim) {
        Claim::Text(tenant) => Some(tenant),
        Claim::Absent | Claim::Other(_) => None,
    };
    let role = match claim_at(claims, role_claim) {
        Claim::Absent => None,
        Claim::Text(name) => Some(
            name.parse::<Role>()
                .map_err(|_| AuthError::UnknownRole(name.clone()))?,
        ),
        // `true`, a list, an object: not a role, whatever the environment.
        Claim::Other(value) => return Err(AuthError::UnknownRole(value.to_string())),
    };
    if require_claims {
        let missing: Vec<String> = [
            (tenant.is_none(), tenant_claim),
            (role.is_none(), role_claim),
        ]
        .into_iter()
        .filter(|(absent, _)| *absent)
        .map(|(_, path)| path.to_owned())
        .collect();
        if !missing.is_empty() {
            return Err(AuthError::MissingClaims(missing));
        }
    }
    let tenant_id = tenant.unwrap_or_else(|| user_id.clone());
    Caller::parse(user_id, tenant_id, role.unwrap_or(Role::Admin))
        .map_err(|empty| AuthError::Invalid(format!("Token claims: {empty}")))
}

/// A claim as read at a dotted path.
enum Claim<'a> {
    /// Missing, null, or empty text.
    Absent,
    /// Text (trimmed) or a number written out.
    Text(String),
    /// Anything else: a boolean, a list, an object.
    Other(&'a Value),
}

fn claim_at<'a>(claims: &'a Value, path: &str) -> Claim<'a> {
    let Some(value) = path
        .split('.')
        .try_fold(claims, |value, key| value.get(key))
    else {
        return Claim::Absent;
    };
    match value {
        Value::Null => Claim::Absent,
        Value::String(text) if text.trim().is_empty() => Claim::Absent,
        Value::String(text) => Claim::Text(text.trim().to_owned()),
        Value::Number(number) => Claim::Text(number.to_string()),
        other => Claim::Other(other),
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
    fn without_required_claims_a_plain_supabase_token_makes_the_user_admin_of_its_own_tenant() {
        let caller = caller_from_claims(
            &json!({"sub": "user-1", "role": "authenticated"}),
            TENANT,
            ROLE,
            false,
        )
        .unwrap();
        assert_eq!(caller.user_id, "user-1");
        assert_eq!(caller.tenant_id, "user-1");
        assert_eq!(caller.role, Role::Admin);
    }

    #[test]
    fn tenant_and_role_come_from_the_configured_claims() {
        let claims = json!({"sub": "u", "app_metadata": {"tenant_id": "t-9", "role": "driver"}});
        for required in [false, true] {
            let caller = caller_from_claims(&claims, TENANT, ROLE, required).unwrap();
            assert_eq!(caller.tenant_id, "t-9");
            assert_eq!(caller.role, Role::Driver);
        }
    }

    #[test]
    fn required_claims_refuse_a_token_lacking_either_naming_the_configured_path() {
        let refused = |claims: Value, tenant: &str, role: &str| {
            caller_from_claims(&claims, tenant, role, true).unwrap_err()
        };
        let neither = refused(json!({"sub": "u", "role": "authenticated"}), TENANT, ROLE);
        assert_eq!(
            neither,
            AuthError::MissingClaims(vec![TENANT.to_owned(), ROLE.to_owned()])
        );
        assert_eq!(
            neither.to_string(),
            r#"Token is missing the "app_metadata.tenant_id" and "app_metadata.role" claims"#
        );
        assert_eq!(neither.code(), tonic::Code::PermissionDenied);

        let no_role = refused(
            json!({"sub": "u", "app_metadata": {"tenant_id": "t-1"}}),
            TENANT,
            ROLE,
        );
        assert_eq!(
            no_role.to_string(),
            r#"Token is missing the "app_metadata.role" claim"#
        );

        // The configured path is the one named; null and blank values count as missing.
        let no_tenant = refused(
            json!({"sub": "u", "claims": {"org": " ", "kind": "admin"}}),
            "claims.org",
            "claims.kind",
        );
        assert_eq!(
            no_tenant.to_string(),
            r#"Token is missing the "claims.org" claim"#
        );
        let null_role = refused(
            json!({"sub": "u", "claims": {"org": "t", "kind": null}}),
            "claims.org",
            "claims.kind",
        );
        assert_eq!(
            null_role,
            AuthError::MissingClaims(vec!["claims.kind".to_owned()])
        );
    }

    #[test]
    fn an_unknown_role_is_refused_whether_or_not_claims_are_required() {
        for required in [false, true] {
            let claims = json!({"sub": "u", "app_metadata": {"tenant_id": "t", "role": "owner"}});
            let error = caller_from_claims(&claims, TENANT, ROLE, required).unwrap_err();
            assert_eq!(error, AuthError::UnknownRole("owner".to_owned()));
            assert_eq!(error.code(), tonic::Code::PermissionDenied);
            // Not text at all is no role either, and does not fall back to admin.
            let claims = json!({"sub": "u", "app_metadata": {"role": true}});
            assert_eq!(
                caller_from_claims(&claims, TENANT, ROLE, required).unwrap_err(),
                AuthError::UnknownRole("true".to_owned())
            );
        }
    }

    #[test]
    fn a_token_without_subject_is_invalid() {
        for required in [false, true] {
            assert!(matches!(
                caller_from_claims(&json!({"aud": "x"}), TENANT, ROLE, required),
                Err(AuthError::Invalid(_))
            ));
        }
    }
}
