//! `director sync drivers` and `director import collections`: start an Integrations job
//! through the gateway, then follow it with `WatchJob`, drawing a progress bar, until it
//! succeeds (exit 0) or is dead (an error naming its last failure).

use std::time::Duration;

use anyhow::{Context as _, bail};
use director_proto::integrations::integrations_service_client::IntegrationsServiceClient;
use director_proto::integrations::jobs_service_client::JobsServiceClient;
use director_proto::integrations::{
    ImportVesseyCollectionsRequest, Job, JobStatus, SyncVesseyDriversRequest, WatchJobRequest,
};
use indicatif::{ProgressBar, ProgressStyle};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

/// Where and as whom to call the gateway.
#[derive(Debug, Clone)]
pub struct GatewayTarget {
    /// The gateway's URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// A bearer token for the gateway (the one `director up` prints).
    pub token: String,
}

/// What to start.
#[derive(Debug, Clone)]
pub enum JobRequest {
    SyncDrivers,
    ImportCollections { date: String },
}

/// Starts the job, follows it to its end and answers it; an error when it is dead.
pub async fn run(target: &GatewayTarget, request: JobRequest) -> anyhow::Result<Job> {
    let channel = Endpoint::from_shared(target.url.clone())
        .with_context(|| format!("{} is not a valid gateway URL", target.url))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| format!("could not reach the gateway at {}", target.url))?;
    let job = start(&channel, target, request).await?;
    let progress = progress_bar();
    let finished = follow(&channel, target, &job.id, &progress).await;
    progress.finish_and_clear();
    let job = finished?;
    if job.status == JobStatus::Dead as i32 {
        bail!(
            "job {} failed after {} attempts: {}",
            job.id,
            job.attempts,
            job.last_error.as_deref().unwrap_or("no error recorded")
        );
    }
    Ok(job)
}

fn authorized<T>(target: &GatewayTarget, message: T) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {}", target.token)
        .parse()
        .context("the token is not valid header text")?;
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

async fn start(
    channel: &Channel,
    target: &GatewayTarget,
    request: JobRequest,
) -> anyhow::Result<Job> {
    let mut client = IntegrationsServiceClient::new(channel.clone());
    let job = match request {
        JobRequest::SyncDrivers => {
            client
                .sync_vessey_drivers(authorized(target, SyncVesseyDriversRequest {})?)
                .await
                .map_err(refused)?
                .into_inner()
                .job
        }
        JobRequest::ImportCollections { date } => {
            client
                .import_vessey_collections(authorized(
                    target,
                    ImportVesseyCollectionsRequest { date },
                )?)
                .await
                .map_err(refused)?
                .into_inner()
                .job
        }
    };
    job.context("the gateway answered without a job")
}

/// Follows the job until the stream ends (the job is finished); answers its last state.
async fn follow(
    channel: &Channel,
    target: &GatewayTarget,
    id: &str,
    progress: &ProgressBar,
) -> anyhow::Result<Job> {
    let mut client = JobsServiceClient::new(channel.clone());
    let mut stream = client
        .watch_job(authorized(target, WatchJobRequest { id: id.to_owned() })?)
        .await
        .map_err(refused)?
        .into_inner();
    let mut last = None;
    while let Some(update) = stream.message().await.map_err(refused)? {
        let Some(job) = update.job else { continue };
        show(progress, &job);
        last = Some(job);
    }
    last.context("the job stream ended without a state")
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:<10} [{bar:40}] {pos}/{len} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn show(bar: &ProgressBar, job: &Job) {
    let progress = job.progress.unwrap_or_default();
    bar.set_length(u64::try_from(progress.total).unwrap_or(0));
    bar.set_position(u64::try_from(progress.done).unwrap_or(0));
    let status = JobStatus::try_from(job.status).unwrap_or(JobStatus::Unspecified);
    let label = match status {
        JobStatus::Queued => "queued",
        JobStatus::Running => "running",
        JobStatus::Succeeded => "done",
        JobStatus::Failed => "retrying",
        JobStatus::Dead => "failed",
        JobStatus::Unspecified => "",
    };
    bar.set_message(label);
    if status == JobStatus::Failed
        && let Some(error) = &job.last_error
    {
        bar.println(format!("attempt {} failed: {error}", job.attempts));
    }
}

/// A refusal from the gateway or the service, as a readable error: the status, its message
/// and each field violation of its `google.rpc.BadRequest` details, one per line.
fn refused(status: tonic::Status) -> anyhow::Error {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    for violation in director_platform::error::field_violations(&status) {
        text.push_str(&format!(
            "\n  {}: {}",
            violation.field, violation.description
        ));
    }
    anyhow::anyhow!(text)
}

#[cfg(test)]
mod tests {
    use director_platform::error::{FieldViolation, invalid_argument};

    use super::*;

    #[test]
    fn a_refusal_names_each_field_violation() {
        let status = invalid_argument(
            "the request is invalid",
            vec![
                FieldViolation::new("date", "must be a date, YYYY-MM-DD"),
                FieldViolation::new("window.start", "must be before window.end"),
            ],
        );
        let text = format!("{:#}", refused(status));
        assert_eq!(
            text,
            "InvalidArgument: the request is invalid\n  date: must be a date, YYYY-MM-DD\n  \
             window.start: must be before window.end"
        );
        assert_eq!(
            format!("{:#}", refused(tonic::Status::not_found("no such job"))),
            "NotFound: no such job"
        );
    }
}
