//! The `director.dispatch.v1.DriversService` gRPC API: checks the caller's role, validates
//! the input, calls the store, and turns rows into messages.

use director_platform::contract_rules;
use director_platform::identity::{caller, writer};
use director_platform::validate::{self, Refused, Violations};
use director_proto::dispatch::drivers_service_server::DriversService;
use director_proto::dispatch::{
    self as proto, CreateDriverRequest, CreateDriverResponse, DeleteDriverRequest,
    DeleteDriverResponse, Driver, GetDriverRequest, GetDriverResponse, ListDriversRequest,
    ListDriversResponse, UpdateDriverRequest, UpdateDriverResponse,
};
use tonic::{Request, Response, Status};

use super::store::{DriverChanges, DriverStore, NewDriver};
use crate::domain::{DriverId, DriverName, DriverStatus, Email, ExternalId, PhoneE164, UserRef};
use crate::error::DispatchError;

/// Why a driver's write is refused.
const DRIVERS_CANNOT_WRITE: &str = "Drivers cannot modify drivers";
/// The answer for a driver that does not exist or that the caller may not see.
const NOT_FOUND: &str = "Driver not found";

/// The Drivers gRPC service.
#[derive(Debug, Clone)]
pub struct DriversApi {
    store: DriverStore,
}

impl DriversApi {
    pub fn new(store: DriverStore) -> Self {
        Self { store }
    }
}

#[tonic::async_trait]
impl DriversService for DriversApi {
    async fn list_drivers(
        &self,
        request: Request<ListDriversRequest>,
    ) -> Result<Response<ListDriversResponse>, Status> {
        let caller = caller(&request)?;
        contract_rules::check(request.get_ref())?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        // UNSPECIFIED: any status.
        let status = violations
            .check("status", driver_status(request.status))
            .flatten();
        let page = validate::page(request.skip, request.limit, &mut violations);
        violations.into_result()?;
        let rows = self
            .store
            .list(&caller, status, page)
            .await
            .map_err(DispatchError::from)?;
        Ok(Response::new(ListDriversResponse {
            drivers: rows.into_iter().map(Driver::from).collect(),
        }))
    }

    async fn create_driver(
        &self,
        request: Request<CreateDriverRequest>,
    ) -> Result<Response<CreateDriverResponse>, Status> {
        let caller = writer(&request, DRIVERS_CANNOT_WRITE)?;
        contract_rules::check(request.get_ref())?;
        let new = new_driver(&request.into_inner())?;
        let row = self
            .store
            .create(&caller, new)
            .await
            .map_err(DispatchError::from)?;
        Ok(Response::new(CreateDriverResponse {
            driver: Some(Driver::from(row)),
        }))
    }

    async fn get_driver(
        &self,
        request: Request<GetDriverRequest>,
    ) -> Result<Response<GetDriverResponse>, Status> {
        let caller = caller(&request)?;
        contract_rules::check(request.get_ref())?;
        let id = DriverId::parse_field("id", &request.get_ref().id)?;
        let row = self
            .store
            .get(&caller, id)
            .await
            .map_err(DispatchError::from)?
            .ok_or(DispatchError::NotFound(NOT_FOUND))?;
        Ok(Response::new(GetDriverResponse {
            driver: Some(Driver::from(row)),
        }))
    }

    async fn update_driver(
        &self,
        request: Request<UpdateDriverRequest>,
    ) -> Result<Response<UpdateDriverResponse>, Status> {
        let caller = writer(&request, DRIVERS_CANNOT_WRITE)?;
        contract_rules::check(request.get_ref())?;
        let request = request.into_inner();
        let id = DriverId::parse_field("id", &request.id)?;
        let changes = driver_changes(request)?;
        let row = self
            .store
            .update(&caller, id, changes)
            .await
            .map_err(DispatchError::from)?
            .ok_or(DispatchError::NotFound(NOT_FOUND))?;
        Ok(Response::new(UpdateDriverResponse {
            driver: Some(Driver::from(row)),
        }))
    }

    async fn delete_driver(
        &self,
        request: Request<DeleteDriverRequest>,
    ) -> Result<Response<DeleteDriverResponse>, Status> {
        let caller = writer(&request, DRIVERS_CANNOT_WRITE)?;
        contract_rules::check(request.get_ref())?;
        let id = DriverId::parse_field("id", &request.get_ref().id)?;
        if !self
            .store
            .soft_delete(&caller, id)
            .await
            .map_err(DispatchError::from)?
        {
            return Err(DispatchError::NotFound(NOT_FOUND).into());
        }
        Ok(Response::new(DeleteDriverResponse {
            message: "Driver deleted successfully".to_owned(),
        }))
    }
}

/// The status a request names, or `None` for UNSPECIFIED; an error for unknown numbers.
fn driver_status(raw: i32) -> Result<Option<DriverStatus>, Refused> {
    DriverStatus::from_proto(raw).map_err(|_| Refused::rule("must be active or inactive"))
}

/// A new driver from a request that kept its contract's rules (`contract_rules::check`):
/// text trimmed, blank optional text absent, the phone number in E.164.
fn new_driver(request: &CreateDriverRequest) -> Result<NewDriver, Status> {
    let mut violations = Violations::new();
    let name = violations.check("name", DriverName::parse(&request.name));
    let phone = violations.check("phone", PhoneE164::parse_optional(request.phone.as_deref()));
    let email = violations.check("email", Email::parse_optional(request.email.as_deref()));
    let external_id = violations.check(
        "external_id",
        ExternalId::parse_optional(request.external_id.as_deref()),
    );
    let user_id = violations.check(
        "user_id",
        UserRef::parse_optional(request.user_id.as_deref()),
    );
    let status = violations
        .check("status", driver_status(request.status))
        .flatten()
        .unwrap_or(DriverStatus::Active);
    violations.into_result()?;
    match name {
        Some(name) => Ok(NewDriver {
            name,
            phone: phone.flatten(),
            email: email.flatten(),
            external_id: external_id.flatten(),
            user_id: user_id.flatten(),
            status,
        }),
        None => Err(Status::internal("validated fields missing")),
    }
}

/// The changes an update asks for. With an `update_mask`, exactly the named fields change (an
/// unset optional one is cleared); without one, every field set in `driver` changes.
fn driver_changes(request: UpdateDriverRequest) -> Result<DriverChanges, Status> {
    let values = request.driver.unwrap_or_default();
    let paths: Vec<String> = match request.update_mask {
        Some(mask) => mask.paths,
        None => populated_fields(&values),
    };
    let mut violations = Violations::new();
    let mut changes = DriverChanges::default();
    for path in paths {
        match path.as_str() {
            "name" => {
                changes.name = violations.check("name", DriverName::parse(&values.name));
            }
            "phone" => {
                changes.phone = Some(
                    violations.check("phone",
                        PhoneE164::parse_optional(values.phone.as_deref()),
                    )
                    .flatten(),
                );
            }
            "email" => {
                changes.email = Some(
                    violations.check("email",
                        Email::parse_optional(values.email.as_deref()),
                    )
                    .flatten(),
                );
            }
            "external_id" => {
                changes.external_id = Some(
                    violations.check("external_id",
                        ExternalId::parse_optional(values.external_id.as_deref()),
                    )
                    .flatten(),
                );
            }
            "user_id" => {
                changes.user_id = Some(
                    violations.check("user_id",
                        UserRef::parse_optional(values.user_id.as_deref()),
                    )
                    .flatten(),
                );
            }
            "status" => match driver_status(values.status) {
                Ok(Some(status)) => changes.status = Some(status),
                Ok(None) => violations.add("status", "cannot be cleared; use active or inactive"),
                Err(description) => violations.add("status", description.to_string()),
            },
            // Output-only fields (AIP-203): echoing a whole driver back changes nothing.
            "id" | "created_at" | "updated_at" | "deleted_at" => {}
            other => violations.add(
                "update_mask",
                format!(
                    "{other:?} is not a field of Driver; use name, phone, email, external_id, user_id or status"
                ),
            ),
        }
    }
    violations.into_result()?;
    Ok(changes)
}

/// The fields a mask-less update sets: the non-empty name, a set status and every present
/// optional field.
fn populated_fields(values: &Driver) -> Vec<String> {
    let present = [
        ("name", !values.name.is_empty()),
        ("phone", values.phone.is_some()),
        ("email", values.email.is_some()),
        ("external_id", values.external_id.is_some()),
        ("user_id", values.user_id.is_some()),
        (
            "status",
            values.status != proto::DriverStatus::Unspecified as i32,
        ),
    ];
    present
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(field, _)| field.to_owned())
        .collect()
}
