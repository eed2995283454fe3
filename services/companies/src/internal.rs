//! `director.companies.internal.v1.CompaniesInternalService`: the bulk call imports make —
//! never routed by the gateway (its package is not public in the catalog).
//!
//! `EnsureCompanies` is one statement per call: the missing companies are inserted and every
//! requested one is read back, in request order. A company created by a concurrent call
//! between the two is not visible to the statement's snapshot; the statement then runs again
//! and finds it, so overlapping imports neither fail nor duplicate.

use director_platform::identity::{Caller, writer};
use director_platform::validate::{self, Violations};
use director_proto::internal::companies::companies_internal_service_server::CompaniesInternalService;
use director_proto::internal::companies::{
    CompanyRef, EnsureCompaniesRequest, EnsureCompaniesResponse, EnsuredCompany,
};
use director_store::tenant::TenantDb;
use tonic::{Request, Response, Status};

use crate::domain::{CompanyId, CompanyName, ExternalId};
use crate::error::CompaniesError;

/// Most companies per call.
const MAX_BATCH: usize = 1000;
/// Runs of the statement before a company that stays invisible is an error (it would take
/// a company created and deleted again between runs).
const ATTEMPTS: usize = 3;

/// The internal Companies API.
#[derive(Debug, Clone)]
pub struct CompaniesInternalApi {
    db: TenantDb,
}

impl CompaniesInternalApi {
    pub fn new(db: TenantDb) -> Self {
        Self { db }
    }
}

#[tonic::async_trait]
impl CompaniesInternalService for CompaniesInternalApi {
    async fn ensure_companies(
        &self,
        request: Request<EnsureCompaniesRequest>,
    ) -> Result<Response<EnsureCompaniesResponse>, Status> {
        let caller = writer(&request, "Drivers cannot create companies")?;
        let (external_ids, names) = checked(&request.into_inner().companies)?;
        for _ in 0..ATTEMPTS {
            let rows = self.ensure(&caller, &external_ids, &names).await?;
            if rows.iter().all(|row| row.id.is_some()) {
                let companies = rows
                    .into_iter()
                    .map(|row| EnsuredCompany {
                        external_id: row.external_id.into_string(),
                        id: row.id.map(|id| id.to_string()).unwrap_or_default(),
                        created: row.created,
                    })
                    .collect();
                return Ok(Response::new(EnsureCompaniesResponse { companies }));
            }
        }
        Err(CompaniesError::ChangedConcurrently.into())
    }
}

/// One requested company as the statement answers it (columns read by name).
#[derive(Debug, sqlx::FromRow)]
struct EnsuredRow {
    external_id: ExternalId,
    /// `None` when created by a transaction the statement could not see.
    id: Option<CompanyId>,
    /// Whether this statement created it.
    created: bool,
}

impl CompaniesInternalApi {
    /// Inserts the missing companies and answers each requested one, in request order.
    async fn ensure(
        &self,
        caller: &Caller,
        external_ids: &[ExternalId],
        names: &[CompanyName],
    ) -> Result<Vec<EnsuredRow>, CompaniesError> {
        let query = sqlx::query_as(
            "WITH wanted AS (
                 SELECT * FROM unnest($2::text[], $3::text[]) WITH ORDINALITY
                     AS w(external_id, name, position)
             ), inserted AS (
                 INSERT INTO companies (tenant_id, name, external_id)
                 SELECT $1, name, external_id FROM wanted
                 ON CONFLICT (tenant_id, external_id)
                     WHERE deleted_at IS NULL AND external_id IS NOT NULL
                     DO NOTHING
                 RETURNING id, external_id
             )
             SELECT w.external_id, coalesce(i.id, c.id) AS id, i.id IS NOT NULL AS created
             FROM wanted w
             LEFT JOIN inserted i ON i.external_id = w.external_id
             LEFT JOIN companies c
                 ON c.tenant_id = $1 AND c.external_id = w.external_id AND c.deleted_at IS NULL
             ORDER BY w.position",
        )
        .bind(caller.tenant_id.as_str())
        .bind(external_ids)
        .bind(names);
        Ok(self.db.fetch_all(caller, query).await?)
    }
}

/// The external ids and names, trimmed and checked, or INVALID_ARGUMENT naming every bad
/// field.
fn checked(companies: &[CompanyRef]) -> Result<(Vec<ExternalId>, Vec<CompanyName>), Status> {
    let mut violations = Violations::new();
    let mut external_ids = Vec::with_capacity(companies.len());
    let mut names = Vec::with_capacity(companies.len());
    if validate::batch_size(&mut violations, "companies", companies.len(), MAX_BATCH) {
        for (index, company) in companies.iter().enumerate() {
            let field = |name: &str| format!("companies[{index}].{name}");
            external_ids.push(ExternalId::check(
                &mut violations,
                &field("external_id"),
                &company.external_id,
            ));
            names.push(CompanyName::check(
                &mut violations,
                &field("name"),
                &company.name,
            ));
        }
        // A refused external id counts as blank here (it is named as refused already).
        validate::distinct_keys(
            &mut violations,
            "companies",
            "external_id",
            external_ids
                .iter()
                .map(|id| id.as_ref().map_or("", ExternalId::as_str)),
        );
    }
    violations.into_result()?;
    // Every value was accepted: a refused one is a violation, answered just above.
    Ok((
        external_ids.into_iter().flatten().collect(),
        names.into_iter().flatten().collect(),
    ))
}
