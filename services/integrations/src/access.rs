//! Who may use the service's APIs, and who its background jobs act as.

use director_platform::identity::{Caller, Role, TenantId, caller};
use tonic::{Request, Status};

/// Why a driver is refused.
pub const DRIVERS_CANNOT_USE: &str = "Drivers cannot use integrations";

/// Why a dispatcher or driver is refused the settings.
pub const ONLY_ADMINS: &str = "Only admins can see or change integration settings";

/// The identity jobs act with towards other services: an admin of the job's tenant.
pub const SERVICE_USER: &str = "service:integrations";

/// The caller a background job of `tenant_id` acts as.
pub fn service_caller(tenant_id: &TenantId) -> Caller {
    Caller::new(SERVICE_USER, tenant_id.as_str(), Role::Admin)
}

/// The request's caller when it is an admin: the integration settings spend money and reach
/// third parties in the tenant's name.
pub fn admin<T>(request: &Request<T>) -> Result<Caller, Status> {
    let caller = caller(request)?;
    if caller.role == Role::Admin {
        Ok(caller)
    } else {
        Err(Status::permission_denied(ONLY_ADMINS))
    }
}
