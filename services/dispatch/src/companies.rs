//! The one question Dispatch asks Companies: is this a live company of the caller's tenant?
//! Asked over gRPC as the caller, so Companies' own tenant rules decide; no answer is never
//! taken for yes.

use director_platform::client::{CallContext, ServiceClient};
use director_proto::companies::GetCompanyRequest;
use director_proto::companies::companies_service_client::CompaniesServiceClient;
use tonic::Code;

use crate::domain::CompanyId;
use crate::error::DispatchError;

/// Checks company ids with the Companies service.
#[derive(Debug, Clone)]
pub struct CompanyDirectory {
    client: ServiceClient,
}

impl CompanyDirectory {
    pub fn new(client: ServiceClient) -> Self {
        Self { client }
    }

    /// `Ok` when `company_id` is a live company the caller sees; FAILED_PRECONDITION when it
    /// is unknown, deleted or another tenant's; UNAVAILABLE when Companies does not answer.
    pub async fn ensure_live(
        &self,
        cx: &CallContext,
        company_id: CompanyId,
    ) -> Result<(), DispatchError> {
        let request = self
            .client
            .request(
                cx,
                GetCompanyRequest {
                    id: company_id.to_string(),
                },
            )
            .map_err(DispatchError::Call)?;
        let mut companies = CompaniesServiceClient::new(self.client.channel());
        match companies.get_company(request).await {
            Ok(_) => Ok(()),
            Err(status) if status.code() == Code::NotFound => Err(DispatchError::Refused(
                "company_id does not name a company of this tenant".to_owned(),
            )),
            Err(status) => {
                tracing::warn!(
                    code = ?status.code(),
                    message = status.message(),
                    %company_id,
                    "could not check a company with the companies service"
                );
                Err(DispatchError::Unavailable(
                    "The companies service did not answer; company_id could not be checked"
                        .to_owned(),
                ))
            }
        }
    }
}
