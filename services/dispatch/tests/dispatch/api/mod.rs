//! Dispatch's public API over gRPC, as the gateway calls it: the real Dispatch server on its
//! own database with the real Companies beside it (Dispatch asks it whether a task's company
//! exists), both in this process. The gateway's REST mapping of the same calls (routes, JSON,
//! HTTP statuses) is tested across the stack in `cli/tests`.
//!
//! Its files by subject: [`state_machine`], [`roles`] (roles and tenancy).

use director_platform::identity::{Caller, Role};
use director_proto::companies::CreateCompanyRequest;
use director_proto::companies::companies_service_client::CompaniesServiceClient;
use director_proto::dispatch::drivers_service_client::DriversServiceClient;
use director_proto::dispatch::tasks_service_client::TasksServiceClient;
use director_proto::dispatch::{
    AssignTaskRequest, CancelTaskRequest, CompleteTaskRequest, CreateDriverRequest,
    CreateTaskRequest, DeleteDriverRequest, DeleteTaskRequest, Driver, GetDriverRequest,
    GetTaskRequest, ListDriversRequest, ListTasksRequest, StartTaskRequest, Task,
    UpdateDriverRequest, UpdateTaskRequest,
};
use director_store::testing::{TestService, spawn_service};
use tonic::transport::Channel;
use tonic::{Code, Status};

mod roles;
mod state_machine;

/// Dispatch and the Companies service it calls, each on its own fresh database.
struct Api {
    dispatch: TestService,
    companies: TestService,
}

/// What a call answers: the task, or the refusal.
type Answer = Result<Task, Status>;

impl Api {
    async fn start() -> Self {
        let companies = spawn_service(&director_companies::SERVICE, &[]).await;
        let companies_url = format!("http://{}", companies.addr);
        let dispatch = spawn_service(
            &director_dispatch::SERVICE,
            &[("COMPANIES_URL", companies_url.as_str())],
        )
        .await;
        Self {
            dispatch,
            companies,
        }
    }

    async fn tasks(&self) -> TasksServiceClient<Channel> {
        TasksServiceClient::new(self.dispatch.channel().await)
    }

    async fn create_company(&self, caller: &Caller, name: &str) -> String {
        let request = CreateCompanyRequest {
            name: name.to_owned(),
            ..Default::default()
        };
        CompaniesServiceClient::new(self.companies.channel().await)
            .create_company(self.companies.request(caller, request))
            .await
            .unwrap()
            .into_inner()
            .company
            .unwrap()
            .id
    }

    async fn drivers(&self) -> DriversServiceClient<Channel> {
        DriversServiceClient::new(self.dispatch.channel().await)
    }

    async fn create_driver(&self, caller: &Caller, request: CreateDriverRequest) -> Driver {
        self.try_create_driver(caller, request).await.unwrap()
    }

    async fn try_create_driver(
        &self,
        caller: &Caller,
        request: CreateDriverRequest,
    ) -> Result<Driver, Status> {
        let answer = self
            .drivers()
            .await
            .create_driver(self.dispatch.request(caller, request))
            .await?;
        Ok(answer.into_inner().driver.unwrap())
    }

    async fn get_driver(&self, caller: &Caller, id: &str) -> Result<Driver, Status> {
        let request = GetDriverRequest { id: id.to_owned() };
        let answer = self
            .drivers()
            .await
            .get_driver(self.dispatch.request(caller, request))
            .await?;
        Ok(answer.into_inner().driver.unwrap())
    }

    async fn list_drivers(&self, caller: &Caller) -> Vec<Driver> {
        let request = ListDriversRequest::default();
        self.drivers()
            .await
            .list_drivers(self.dispatch.request(caller, request))
            .await
            .unwrap()
            .into_inner()
            .drivers
    }

    /// Updates the fields of `driver` named in `paths`.
    async fn update_driver(
        &self,
        caller: &Caller,
        id: &str,
        driver: Driver,
        paths: &[&str],
    ) -> Result<Driver, Status> {
        let request = UpdateDriverRequest {
            id: id.to_owned(),
            driver: Some(driver),
            update_mask: Some(mask(paths)),
        };
        let answer = self
            .drivers()
            .await
            .update_driver(self.dispatch.request(caller, request))
            .await?;
        Ok(answer.into_inner().driver.unwrap())
    }

    async fn delete_driver(&self, caller: &Caller, id: &str) -> Result<String, Status> {
        let request = DeleteDriverRequest { id: id.to_owned() };
        let answer = self
            .drivers()
            .await
            .delete_driver(self.dispatch.request(caller, request))
            .await?;
        Ok(answer.into_inner().message)
    }

    /// Creates a task at `company_id` on `day`; `extra` sets the other fields.
    async fn create_task(
        &self,
        caller: &Caller,
        company_id: &str,
        title: &str,
        day: &str,
        extra: CreateTaskRequest,
    ) -> Task {
        let request = CreateTaskRequest {
            company_id: company_id.to_owned(),
            title: title.to_owned(),
            scheduled_for: day.to_owned(),
            ..extra
        };
        self.try_create_task(caller, request).await.unwrap()
    }

    async fn try_create_task(&self, caller: &Caller, request: CreateTaskRequest) -> Answer {
        let answer = self
            .tasks()
            .await
            .create_task(self.dispatch.request(caller, request))
            .await?;
        Ok(answer.into_inner().task.unwrap())
    }

    async fn get(&self, caller: &Caller, id: &str) -> Answer {
        let request = GetTaskRequest { id: id.to_owned() };
        let answer = self
            .tasks()
            .await
            .get_task(self.dispatch.request(caller, request))
            .await?;
        Ok(answer.into_inner().task.unwrap())
    }

    async fn list(&self, caller: &Caller, request: ListTasksRequest) -> Vec<Task> {
        self.tasks()
            .await
            .list_tasks(self.dispatch.request(caller, request))
            .await
            .unwrap()
            .into_inner()
            .tasks
    }

    /// The titles of the tasks `caller` lists with `request`, in order.
    async fn titles(&self, caller: &Caller, request: ListTasksRequest) -> Vec<String> {
        let tasks = self.list(caller, request).await;
        tasks.into_iter().map(|task| task.title).collect()
    }

    async fn delete(&self, caller: &Caller, id: &str) -> Result<String, Status> {
        let request = DeleteTaskRequest { id: id.to_owned() };
        let answer = self
            .tasks()
            .await
            .delete_task(self.dispatch.request(caller, request))
            .await?;
        Ok(answer.into_inner().message)
    }

    /// Updates the fields of `task` named in `paths`.
    async fn update(&self, caller: &Caller, id: &str, task: Task, paths: &[&str]) -> Answer {
        let request = UpdateTaskRequest {
            id: id.to_owned(),
            task: Some(task),
            update_mask: Some(mask(paths)),
        };
        let answer = self
            .tasks()
            .await
            .update_task(self.dispatch.request(caller, request))
            .await?;
        Ok(answer.into_inner().task.unwrap())
    }

    async fn assign(&self, caller: &Caller, id: &str, driver_id: &str) -> Answer {
        let request = AssignTaskRequest {
            id: id.to_owned(),
            driver_id: driver_id.to_owned(),
        };
        let answer = self
            .tasks()
            .await
            .assign_task(self.dispatch.request(caller, request))
            .await?;
        Ok(answer.into_inner().task.unwrap())
    }

    async fn start_task(&self, caller: &Caller, id: &str) -> Answer {
        let request = StartTaskRequest { id: id.to_owned() };
        let answer = self
            .tasks()
            .await
            .start_task(self.dispatch.request(caller, request))
            .await?;
        Ok(answer.into_inner().task.unwrap())
    }

    async fn complete(
        &self,
        caller: &Caller,
        id: &str,
        volume_liters: Option<f64>,
        notes: Option<&str>,
    ) -> Answer {
        let request = CompleteTaskRequest {
            id: id.to_owned(),
            volume_liters,
            notes: notes.map(str::to_owned),
        };
        let answer = self
            .tasks()
            .await
            .complete_task(self.dispatch.request(caller, request))
            .await?;
        Ok(answer.into_inner().task.unwrap())
    }

    async fn cancel(&self, caller: &Caller, id: &str, reason: &str) -> Answer {
        let request = CancelTaskRequest {
            id: id.to_owned(),
            reason: reason.to_owned(),
        };
        let answer = self
            .tasks()
            .await
            .cancel_task(self.dispatch.request(caller, request))
            .await?;
        Ok(answer.into_inner().task.unwrap())
    }
}

/// A user of `tenant` with `role`.
fn caller(tenant: &str, role: Role) -> Caller {
    Caller::new(format!("user-of-{tenant}"), tenant, role)
}

/// An update mask naming `paths`.
fn mask(paths: &[&str]) -> prost_types::FieldMask {
    prost_types::FieldMask {
        paths: paths.iter().map(|path| (*path).to_owned()).collect(),
    }
}

/// An active driver named `name`.
fn driver(name: &str) -> CreateDriverRequest {
    CreateDriverRequest {
        name: name.to_owned(),
        ..Default::default()
    }
}

/// The sorted field names of an INVALID_ARGUMENT refusal.
fn fields(refusal: &Status) -> Vec<String> {
    assert_eq!(refusal.code(), Code::InvalidArgument, "{refusal:?}");
    let mut fields: Vec<String> = director_platform::error::field_violations(refusal)
        .into_iter()
        .map(|violation| violation.field)
        .collect();
    fields.sort();
    fields
}

/// Asserts a refusal of the state machine: FAILED_PRECONDITION whose message names the
/// task's current status.
fn assert_refused(answer: &Answer, current: &str) {
    let refusal = answer.as_ref().unwrap_err();
    assert_eq!(refusal.code(), Code::FailedPrecondition, "{refusal:?}");
    assert!(
        refusal.message().contains(&format!("is {current}")),
        "{:?} does not name the status {current}",
        refusal.message()
    );
}
