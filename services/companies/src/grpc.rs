//! The `director.companies.v1.CompaniesService` gRPC API: checks the caller's role, validates
//! the input, calls the store, and turns rows into messages.

use director_platform::contract_rules;
use director_platform::identity::{caller, writer};
use director_platform::time::to_timestamp;
use director_platform::validate::{self, Violations};
use director_proto::companies::companies_service_server::CompaniesService;
use director_proto::companies::{
    Company, CreateCompanyRequest, CreateCompanyResponse, DeleteCompanyRequest,
    DeleteCompanyResponse, GetCompanyRequest, GetCompanyResponse, ListCompaniesRequest,
    ListCompaniesResponse, UpdateCompanyRequest, UpdateCompanyResponse,
};
use tonic::{Request, Response, Status};

use crate::domain::{
    Address, CompanyChanges, CompanyId, CompanyName, Email, ExternalId, NewCompany, PhoneE164,
};
use crate::error::CompaniesError;
use crate::store::{CompanyRow, CompanyStore};

/// Why a driver's write is refused.
const DRIVERS_CANNOT_WRITE: &str = "Drivers cannot modify companies";

/// The Companies gRPC service.
#[derive(Debug, Clone)]
pub struct CompaniesApi {
    store: CompanyStore,
}

impl CompaniesApi {
    pub fn new(store: CompanyStore) -> Self {
        Self { store }
    }
}

#[tonic::async_trait]
impl CompaniesService for CompaniesApi {
    async fn list_companies(
        &self,
        request: Request<ListCompaniesRequest>,
    ) -> Result<Response<ListCompaniesResponse>, Status> {
        let caller = caller(&request)?;
        contract_rules::check(request.get_ref())?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let page = validate::page(request.skip, request.limit, &mut violations);
        violations.into_result()?;
        let rows = self.store.list(&caller, page).await?;
        Ok(Response::new(ListCompaniesResponse {
            companies: rows.into_iter().map(company).collect(),
        }))
    }

    async fn create_company(
        &self,
        request: Request<CreateCompanyRequest>,
    ) -> Result<Response<CreateCompanyResponse>, Status> {
        let caller = writer(&request, DRIVERS_CANNOT_WRITE)?;
        contract_rules::check(request.get_ref())?;
        let new = new_company(request.into_inner())?;
        let row = self.store.create(&caller, new).await?;
        Ok(Response::new(CreateCompanyResponse {
            company: Some(company(row)),
        }))
    }

    async fn get_company(
        &self,
        request: Request<GetCompanyRequest>,
    ) -> Result<Response<GetCompanyResponse>, Status> {
        let caller = caller(&request)?;
        contract_rules::check(request.get_ref())?;
        let id = CompanyId::parse_field("id", &request.get_ref().id)?;
        let row = self
            .store
            .get(&caller, id)
            .await?
            .ok_or(CompaniesError::NotFound)?;
        Ok(Response::new(GetCompanyResponse {
            company: Some(company(row)),
        }))
    }

    async fn update_company(
        &self,
        request: Request<UpdateCompanyRequest>,
    ) -> Result<Response<UpdateCompanyResponse>, Status> {
        let caller = writer(&request, DRIVERS_CANNOT_WRITE)?;
        contract_rules::check(request.get_ref())?;
        let request = request.into_inner();
        let id = CompanyId::parse_field("id", &request.id)?;
        let changes = company_changes(request)?;
        let row = self
            .store
            .update(&caller, id, changes)
            .await?
            .ok_or(CompaniesError::NotFound)?;
        Ok(Response::new(UpdateCompanyResponse {
            company: Some(company(row)),
        }))
    }

    async fn delete_company(
        &self,
        request: Request<DeleteCompanyRequest>,
    ) -> Result<Response<DeleteCompanyResponse>, Status> {
        let caller = writer(&request, DRIVERS_CANNOT_WRITE)?;
        contract_rules::check(request.get_ref())?;
        let id = CompanyId::parse_field("id", &request.get_ref().id)?;
        if !self.store.soft_delete(&caller, id).await? {
            return Err(CompaniesError::NotFound.into());
        }
        Ok(Response::new(DeleteCompanyResponse {
            message: "Company deleted successfully".to_owned(),
        }))
    }
}

/// A new company from a request that kept its contract's rules (`contract_rules::check`):
/// text trimmed, blank optional text absent, the phone number in E.164. The contract's rules
/// are the domain's, so parsing refuses nothing more; it makes each value a checked one.
fn new_company(request: CreateCompanyRequest) -> Result<NewCompany, Status> {
    let mut violations = Violations::new();
    let name = CompanyName::check(&mut violations, "name", &request.name);
    let email = Email::check_optional(&mut violations, "email", request.email.as_deref());
    let phone = PhoneE164::check_optional(&mut violations, "phone", request.phone.as_deref());
    let address = Address::check_optional(&mut violations, "address", request.address.as_deref());
    let external_id = ExternalId::check_optional(
        &mut violations,
        "external_id",
        request.external_id.as_deref(),
    );
    violations.into_result()?;
    // A refused name is a recorded violation, answered just above.
    let name = name.ok_or_else(|| Status::internal("the name was refused without a reason"))?;
    Ok(NewCompany {
        name,
        email,
        phone,
        address,
        external_id,
    })
}

/// The changes an update asks for. With an `update_mask`, exactly the named fields change (an
/// unset optional one is cleared); without one, every field set in `company` changes.
fn company_changes(request: UpdateCompanyRequest) -> Result<CompanyChanges, Status> {
    let values = request.company.unwrap_or_default();
    let mut violations = Violations::new();
    let paths: Vec<String> = match request.update_mask {
        Some(mask) => mask.paths,
        None => populated_fields(&values),
    };
    let mut changes = CompanyChanges::default();
    for path in paths {
        let field = path.as_str();
        match field {
            "name" => changes.name = CompanyName::check(&mut violations, field, &values.name),
            "email" => {
                changes.email = Some(Email::check_optional(&mut violations,
                    field,
                    values.email.as_deref(),
                ));
            }
            "phone" => {
                changes.phone = Some(PhoneE164::check_optional(&mut violations,
                    field,
                    values.phone.as_deref(),
                ));
            }
            "address" => {
                changes.address = Some(Address::check_optional(&mut violations,
                    field,
                    values.address.as_deref(),
                ));
            }
            "external_id" => {
                changes.external_id = Some(ExternalId::check_optional(&mut violations,
                    field,
                    values.external_id.as_deref(),
                ));
            }
            // Output-only fields (AIP-203): a client echoing a whole company back changes
            // nothing by sending them.
            "id" | "created_at" | "updated_at" | "deleted_at" => {}
            other => violations.add(
                "update_mask",
                format!(
                    "{other:?} is not a field of Company; use name, email, phone, address or external_id"
                ),
            ),
        }
    }
    violations.into_result()?;
    Ok(changes)
}

/// The fields a mask-less update sets: the non-empty name and every present optional field.
fn populated_fields(values: &Company) -> Vec<String> {
    let present = [
        ("name", !values.name.is_empty()),
        ("email", values.email.is_some()),
        ("phone", values.phone.is_some()),
        ("address", values.address.is_some()),
        ("external_id", values.external_id.is_some()),
    ];
    present
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(field, _)| field.to_owned())
        .collect()
}

fn company(row: CompanyRow) -> Company {
    Company {
        id: row.id.to_string(),
        name: row.name.into_string(),
        email: row.email.map(Email::into_string),
        phone: row.phone.map(PhoneE164::into_string),
        address: row.address.map(Address::into_string),
        external_id: row.external_id.map(ExternalId::into_string),
        created_at: Some(to_timestamp(row.created_at)),
        updated_at: Some(to_timestamp(row.updated_at)),
        deleted_at: row.deleted_at.map(to_timestamp),
    }
}
