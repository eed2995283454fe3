//! The `director.dispatch.v1.TasksService` gRPC API: checks the caller's role, validates the
//! input ([`super::input`]), checks companies with the Companies service, calls the store and
//! explains a refused transition.

use director_platform::client::CallContext;
use director_platform::contract_rules;
use director_platform::identity::{Caller, caller, writer};
use director_platform::validate::{self, Violations};
use director_proto::dispatch::tasks_service_server::TasksService;
use director_proto::dispatch::{
    AssignTaskRequest, AssignTaskResponse, CancelTaskRequest, CancelTaskResponse,
    CompleteTaskRequest, CompleteTaskResponse, CreateTaskRequest, CreateTaskResponse,
    DeleteTaskRequest, DeleteTaskResponse, GetTaskRequest, GetTaskResponse, ListTasksRequest,
    ListTasksResponse, StartTaskRequest, StartTaskResponse, Task, UpdateTaskRequest,
    UpdateTaskResponse, WatchTasksRequest, WatchTasksResponse,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::input;
use super::store::TaskStore;
use crate::companies::CompanyDirectory;
use crate::domain::{DriverId, TaskId, TaskRow, Transition};
use crate::error::DispatchError;
use crate::events::TaskEvents;

/// The answer for a task that does not exist or that the caller may not see.
const NOT_FOUND: &str = "Task not found";
/// Why a driver's write is refused.
const DRIVERS_CANNOT: &str = "Drivers can only start and complete the tasks assigned to them";

/// The Tasks gRPC service.
#[derive(Debug, Clone)]
pub struct TasksApi {
    store: TaskStore,
    companies: CompanyDirectory,
    events: TaskEvents,
}

impl TasksApi {
    pub fn new(store: TaskStore, companies: CompanyDirectory, events: TaskEvents) -> Self {
        Self {
            store,
            companies,
            events,
        }
    }

    /// Why `transition` matched no row of task `id`: not found (or not the caller's), its
    /// status, or for an assignment the driver.
    async fn refusal(
        &self,
        caller: &Caller,
        id: TaskId,
        transition: Transition,
        driver_id: Option<DriverId>,
    ) -> DispatchError {
        let state = match self.store.state(caller, id).await {
            Ok(Some(state)) => state,
            Ok(None) => return DispatchError::NotFound(NOT_FOUND),
            Err(error) => return error.into(),
        };
        if !transition.allows(state.status) {
            return DispatchError::Refused(transition.refusal(state.status));
        }
        if let Some(driver_id) = driver_id {
            match self.store.driver_is_assignable(caller, driver_id).await {
                Ok(false) => return inactive_driver(),
                Ok(true) => {}
                Err(error) => return error.into(),
            }
        }
        // The task moved between the statement and this look: the caller may retry.
        DispatchError::Conflict("The task changed concurrently; retry".to_owned())
    }
}

fn inactive_driver() -> DispatchError {
    DispatchError::Refused("driver_id does not name an active driver of this tenant".to_owned())
}

/// The answer of a transition: the task, or why not.
async fn transitioned(
    api: &TasksApi,
    caller: &Caller,
    id: TaskId,
    transition: Transition,
    driver_id: Option<DriverId>,
    row: Result<Option<TaskRow>, sqlx::Error>,
) -> Result<Task, Status> {
    match row.map_err(DispatchError::from)? {
        Some(row) => Ok(Task::from(row)),
        None => Err(api.refusal(caller, id, transition, driver_id).await.into()),
    }
}

#[tonic::async_trait]
impl TasksService for TasksApi {
    async fn list_tasks(
        &self,
        request: Request<ListTasksRequest>,
    ) -> Result<Response<ListTasksResponse>, Status> {
        let caller = caller(&request)?;
        contract_rules::check(request.get_ref())?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let filter = input::task_filter(&request, &mut violations);
        let page = validate::page(request.skip, request.limit, &mut violations);
        violations.into_result()?;
        let rows = self
            .store
            .list(&caller, filter, page)
            .await
            .map_err(DispatchError::from)?;
        Ok(Response::new(ListTasksResponse {
            tasks: rows.into_iter().map(Task::from).collect(),
        }))
    }

    async fn create_task(
        &self,
        request: Request<CreateTaskRequest>,
    ) -> Result<Response<CreateTaskResponse>, Status> {
        let caller = writer(&request, DRIVERS_CANNOT)?;
        contract_rules::check(request.get_ref())?;
        let cx = CallContext::of(&request)?;
        let new = input::new_task(request.into_inner())?;
        self.companies.ensure_live(&cx, new.company_id).await?;
        let row = self
            .store
            .create(&caller, new)
            .await
            .map_err(DispatchError::from)?
            .ok_or_else(inactive_driver)?;
        Ok(Response::new(CreateTaskResponse {
            task: Some(Task::from(row)),
        }))
    }

    type WatchTasksStream = ReceiverStream<Result<WatchTasksResponse, Status>>;

    async fn watch_tasks(
        &self,
        request: Request<WatchTasksRequest>,
    ) -> Result<Response<Self::WatchTasksStream>, Status> {
        let caller = caller(&request)?;
        let after = input::after_event_id(&request.get_ref().after_event_id)?;
        let stream = self.events.watch(caller, after).await?;
        Ok(Response::new(stream))
    }

    async fn get_task(
        &self,
        request: Request<GetTaskRequest>,
    ) -> Result<Response<GetTaskResponse>, Status> {
        let caller = caller(&request)?;
        contract_rules::check(request.get_ref())?;
        let id = TaskId::parse_field("id", &request.get_ref().id)?;
        let row = self
            .store
            .get(&caller, id)
            .await
            .map_err(DispatchError::from)?
            .ok_or(DispatchError::NotFound(NOT_FOUND))?;
        Ok(Response::new(GetTaskResponse {
            task: Some(Task::from(row)),
        }))
    }

    async fn update_task(
        &self,
        request: Request<UpdateTaskRequest>,
    ) -> Result<Response<UpdateTaskResponse>, Status> {
        let caller = writer(&request, DRIVERS_CANNOT)?;
        contract_rules::check(request.get_ref())?;
        let cx = CallContext::of(&request)?;
        let request = request.into_inner();
        let id = TaskId::parse_field("id", &request.id)?;
        let changes = input::task_changes(request)?;
        if let Some(company_id) = changes.company_id {
            // A missing task is 404 whatever company it would have moved to.
            self.store
                .state(&caller, id)
                .await
                .map_err(DispatchError::from)?
                .ok_or(DispatchError::NotFound(NOT_FOUND))?;
            self.companies.ensure_live(&cx, company_id).await?;
        }
        let expected_version = changes.expected_version;
        let updated = self
            .store
            .update(&caller, id, changes)
            .await
            .map_err(DispatchError::from)?;
        let row = match updated {
            Some(row) => row,
            None => {
                let state = self
                    .store
                    .state(&caller, id)
                    .await
                    .map_err(DispatchError::from)?
                    .ok_or(DispatchError::NotFound(NOT_FOUND))?;
                let expected = expected_version.unwrap_or(state.version);
                return Err(DispatchError::Conflict(format!(
                    "Task version is {}, not {expected}; reload it and retry",
                    state.version
                ))
                .into());
            }
        };
        Ok(Response::new(UpdateTaskResponse {
            task: Some(Task::from(row)),
        }))
    }

    async fn delete_task(
        &self,
        request: Request<DeleteTaskRequest>,
    ) -> Result<Response<DeleteTaskResponse>, Status> {
        let caller = writer(&request, DRIVERS_CANNOT)?;
        contract_rules::check(request.get_ref())?;
        let id = TaskId::parse_field("id", &request.get_ref().id)?;
        if !self
            .store
            .soft_delete(&caller, id)
            .await
            .map_err(DispatchError::from)?
        {
            return Err(DispatchError::NotFound(NOT_FOUND).into());
        }
        Ok(Response::new(DeleteTaskResponse {
            message: "Task deleted successfully".to_owned(),
        }))
    }

    async fn assign_task(
        &self,
        request: Request<AssignTaskRequest>,
    ) -> Result<Response<AssignTaskResponse>, Status> {
        let caller = writer(&request, DRIVERS_CANNOT)?;
        contract_rules::check(request.get_ref())?;
        let request = request.get_ref();
        let id = TaskId::parse_field("id", &request.id)?;
        let driver_id = DriverId::parse_field("driver_id", &request.driver_id)?;
        let row = self.store.assign(&caller, id, driver_id).await;
        let task =
            transitioned(self, &caller, id, Transition::Assign, Some(driver_id), row).await?;
        Ok(Response::new(AssignTaskResponse { task: Some(task) }))
    }

    async fn start_task(
        &self,
        request: Request<StartTaskRequest>,
    ) -> Result<Response<StartTaskResponse>, Status> {
        let caller = caller(&request)?;
        contract_rules::check(request.get_ref())?;
        let id = TaskId::parse_field("id", &request.get_ref().id)?;
        let row = self.store.start(&caller, id).await;
        let task = transitioned(self, &caller, id, Transition::Start, None, row).await?;
        Ok(Response::new(StartTaskResponse { task: Some(task) }))
    }

    async fn complete_task(
        &self,
        request: Request<CompleteTaskRequest>,
    ) -> Result<Response<CompleteTaskResponse>, Status> {
        let caller = caller(&request)?;
        contract_rules::check(request.get_ref())?;
        let request = request.into_inner();
        let id = TaskId::parse_field("id", &request.id)?;
        let (volume, notes) = input::completion(&request)?;
        let row = self.store.complete(&caller, id, volume, notes).await;
        let task = transitioned(self, &caller, id, Transition::Complete, None, row).await?;
        Ok(Response::new(CompleteTaskResponse { task: Some(task) }))
    }

    async fn cancel_task(
        &self,
        request: Request<CancelTaskRequest>,
    ) -> Result<Response<CancelTaskResponse>, Status> {
        let caller = writer(&request, DRIVERS_CANNOT)?;
        contract_rules::check(request.get_ref())?;
        let request = request.into_inner();
        let id = TaskId::parse_field("id", &request.id)?;
        let reason = validate::trimmed(&request.reason);
        let row = self.store.cancel(&caller, id, reason).await;
        let task = transitioned(self, &caller, id, Transition::Cancel, None, row).await?;
        Ok(Response::new(CancelTaskResponse { task: Some(task) }))
    }
}
