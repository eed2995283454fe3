//! A watch whose replica drains is reopened on another, below every protocol: `WatchJob`
//! (whole states, `NO_SIDE_EFFECTS`) is subscribed again and the state the client already
//! has is not sent twice; the client's stream neither fails nor ends early.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use director_gateway::resume::{ResumePlans, Resuming};
use director_platform::discovery::{BalanceOptions, Resolver, balanced_channel_with};
use director_proto::integrations::jobs_service_client::JobsServiceClient;
use director_proto::integrations::jobs_service_server::{JobsService, JobsServiceServer};
use director_proto::integrations::{
    GetJobRequest, GetJobResponse, Job, JobStatus, ListJobsRequest, ListJobsResponse,
    WatchJobRequest, WatchJobResponse,
};
use futures::{Stream, StreamExt};
use prost_reflect::DescriptorPool;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

fn state(status: JobStatus, processed: i32) -> WatchJobResponse {
    WatchJobResponse {
        job: Some(Job {
            id: "job-1".to_owned(),
            status: status as i32,
            attempts: processed,
            ..Job::default()
        }),
    }
}

/// A replica of the jobs service whose `WatchJob` sends `states`, then either ends (the job
/// finished) or holds the stream until the replica drains.
struct Replica {
    states: Vec<WatchJobResponse>,
    finished: bool,
    drain: CancellationToken,
}

type States = Pin<Box<dyn Stream<Item = Result<WatchJobResponse, Status>> + Send>>;

#[tonic::async_trait]
impl JobsService for Replica {
    async fn list_jobs(
        &self,
        _request: Request<ListJobsRequest>,
    ) -> Result<Response<ListJobsResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    async fn get_job(
        &self,
        _request: Request<GetJobRequest>,
    ) -> Result<Response<GetJobResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    type WatchJobStream = States;

    async fn watch_job(
        &self,
        _request: Request<WatchJobRequest>,
    ) -> Result<Response<States>, Status> {
        let states = futures::stream::iter(self.states.clone().into_iter().map(Ok));
        let stream: States = if self.finished {
            Box::pin(states)
        } else {
            // Like Dispatch and Integrations: a watch ends cleanly when the replica drains.
            let drain = self.drain.clone();
            Box::pin(states.chain(
                futures::stream::once(drain.cancelled_owned()).filter_map(|()| async { None }),
            ))
        };
        Ok(Response::new(stream))
    }
}

async fn start(replica: Replica) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let drain = replica.drain.clone();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(JobsServiceServer::new(replica))
            .serve_with_incoming_shutdown(
                TcpListenerStream::new(listener),
                drain.cancelled_owned(),
            ),
    );
    address
}

#[tokio::test]
async fn a_job_watch_moves_to_another_replica_when_its_replica_drains() {
    let draining = CancellationToken::new();
    let first = start(Replica {
        states: vec![state(JobStatus::Queued, 0), state(JobStatus::Running, 10)],
        finished: false,
        drain: draining.clone(),
    })
    .await;
    let second = start(Replica {
        // What a new subscriber gets: the current state (the client has it), then the rest.
        states: vec![
            state(JobStatus::Running, 10),
            state(JobStatus::Succeeded, 20),
        ],
        finished: true,
        drain: CancellationToken::new(),
    })
    .await;
    // The first resolution finds only the first replica, so the watch starts there; the
    // second appears at the next one.
    let resolutions = Arc::new(AtomicUsize::new(0));
    let resolver: Resolver = Arc::new(move |_host: String, _port: u16| {
        let resolved = if resolutions.fetch_add(1, Ordering::SeqCst) == 0 {
            vec![first]
        } else {
            vec![first, second]
        };
        Box::pin(async move { Ok(resolved) })
    });
    let pool = DescriptorPool::decode(director_proto::FILE_DESCRIPTOR_SET).unwrap();
    let channel = balanced_channel_with(
        "http://jobs.test:50051".parse().unwrap(),
        BalanceOptions {
            refresh: Duration::from_millis(50),
            ..BalanceOptions::new(Duration::from_secs(1))
        },
        |endpoint| endpoint,
        resolver,
    );
    let resuming = Resuming::new(channel, ResumePlans::from_descriptors(&pool));

    let mut stream = JobsServiceClient::new(resuming)
        .watch_job(WatchJobRequest {
            id: "job-1".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen = vec![
        stream
            .message()
            .await
            .unwrap()
            .unwrap()
            .job
            .unwrap()
            .status(),
    ];
    tokio::time::sleep(Duration::from_millis(200)).await;
    draining.cancel();
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(message) = stream.message().await.unwrap() {
            seen.push(message.job.unwrap().status());
        }
    })
    .await;
    assert!(rest.is_ok(), "the watch did not end: {seen:?}");
    assert_eq!(
        seen,
        vec![JobStatus::Queued, JobStatus::Running, JobStatus::Succeeded],
        "moved to the other replica, the state the client had not repeated"
    );
}
