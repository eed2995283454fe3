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

use crate::error::CompaniesError;
use crate::store::{CompanyChanges, CompanyRow, CompanyStore, NewCompany};

/// Why a driver's write is refused.
const DRIVERS_CANNOT_WRITE: &str = "Drivers cannot modify companies";
/// Longest company name, in characters.
const NAME_MAX: usize = 255;
/// Longest postal address, in characters.
const ADDRESS_MAX: usize = 1000;
/// Longest Vessey farm id, in characters.
const EXTERNAL_ID_MAX: usize = 255;

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
        let rows = self
            .store
            .list(&caller, page)
            .await
            .map_err(CompaniesError::from)?;
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
        let row = self
            .store
            .create(&caller, new)
            .await
            .map_err(CompaniesError::from)?;
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
        let id = validate::id("id", &request.get_ref().id)?;
        let row = self
            .store
            .get(&caller, id)
            .await
            .map_err(CompaniesError::from)?
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
        let id = validate::id("id", &request.id)?;
        let changes = company_changes(request)?;
        let row = self
            .store
            .update(&caller, id, changes)
            .await
            .map_err(CompaniesError::from)?
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
        let id = validate::id("id", &request.get_ref().id)?;
        if !self
            .store
            .soft_delete(&caller, id)
            .await
            .map_err(CompaniesError::from)?
        {
            return Err(CompaniesError::NotFound.into());
        }
        Ok(Response::new(DeleteCompanyResponse {
            message: "Company deleted successfully".to_owned(),
        }))
    }
}

/// A new company from a request that kept its contract's rules (`contract_rules::check`):
/// text trimmed, blank optional text absent, the phone number in E.164.
fn new_company(request: CreateCompanyRequest) -> Result<NewCompany, Status> {
    let mut violations = Violations::new();
    let new = NewCompany {
        name: validate::trimmed(&request.name),
        email: validate::present(request.email.as_deref()),
        phone: validate::optional_with(
            &mut violations,
            "phone",
            request.phone.as_deref(),
            validate::phone_e164,
        ),
        address: validate::present(request.address.as_deref()),
        external_id: validate::present(request.external_id.as_deref()),
    };
    violations.into_result()?;
    Ok(new)
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
        match path.as_str() {
            "name" => {
                changes.name =
                    violations.check("name", validate::required_text(&values.name, NAME_MAX));
            }
            "email" => {
                changes.email = Some(validate::optional_with(
                    &mut violations,
                    "email",
                    values.email.as_deref(),
                    validate::email,
                ))
            }
            "phone" => {
                changes.phone = Some(validate::optional_with(
                    &mut violations,
                    "phone",
                    values.phone.as_deref(),
                    validate::phone_e164,
                ));
            }
            "address" => {
                changes.address = violations.check(
                    "address",
                    validate::optional_text(values.address.as_deref(), ADDRESS_MAX),
                );
            }
            "external_id" => {
                changes.external_id = violations.check(
                    "external_id",
                    validate::optional_text(values.external_id.as_deref(), EXTERNAL_ID_MAX),
                );
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
        name: row.name,
        email: row.email,
        phone: row.phone,
        address: row.address,
        external_id: row.external_id,
        created_at: Some(to_timestamp(row.created_at)),
        updated_at: Some(to_timestamp(row.updated_at)),
        deleted_at: row.deleted_at.map(to_timestamp),
    }
}
