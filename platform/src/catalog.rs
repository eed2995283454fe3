//! The one list of Director's services.
//!
//! Everything that needs to know which services exist derives it from [`SERVICES`]: the
//! gateway's upstreams (one per public package), its readiness report and OpenAPI document,
//! `director up` and `director migrate`, and service-to-service clients. The deployment
//! follows it too: the Kubernetes manifests of the services are rendered from it, and every
//! other list of services (compose, Prometheus, the image, the benchmark, CI) is checked
//! against it by `cli/tests/service_lists.rs`. Adding a service is adding its [`ServiceSpec`]
//! here (the README's "Adding a service" has the whole recipe).
//!
//! From a spec's `name` follow, by convention, its listen variable (`DISPATCH_ADDR`), the URL
//! others reach it at (`DISPATCH_URL`, else [`UPSTREAM_URL_TEMPLATE`]), its database
//! (`director_dispatch`, or `DISPATCH_DATABASE_URL`) and its binary (`director-dispatch`).

use std::net::SocketAddr;

use crate::config::{ConfigError, Env};

/// One Director service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Short lowercase name: `companies`, `dispatch`.
    pub name: &'static str,
    /// The port it listens on by default (and is reached at by default).
    pub default_port: u16,
    /// The protobuf packages it serves that the gateway exposes (REST, gRPC-Web, gRPC).
    /// Its other packages (service-to-service calls) are never routed by the gateway.
    pub public_packages: &'static [&'static str],
    /// Whether it runs durable jobs: its migrations then install the job queue
    /// (`director_store::jobs`). True exactly when it has [`ServiceSpec::jobs`].
    pub runs_jobs: bool,
    /// The task identifiers of its durable jobs: the only ones `director_enqueue_job` accepts
    /// in its database (`director_store::jobs::install`). Each is one of the constants below, which
    /// the job's handler uses as its `TaskHandler::IDENTIFIER`, so the handlers and this list
    /// cannot name different jobs.
    pub jobs: &'static [&'static str],
    /// How it is deployed: what the Kubernetes manifests rendered from the catalog need to
    /// know besides its name and port (`deploy/k8s/templates/grpc-service.yaml`).
    pub deployment: Deployment,
}

/// A service's deployment needs, for the manifests rendered from the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deployment {
    /// The most replicas its autoscaler may run (the fewest is two, for availability).
    pub max_replicas: u16,
    /// Whether it calls third parties over HTTPS: only then may its pods reach public
    /// addresses on port 443.
    pub reaches_third_parties: bool,
}

/// Dispatch's relay of task events to Integrations (its handler, and the trigger queueing it
/// in `migrations/dispatch/`).
pub const DISPATCH_RELAY_TASK_EVENTS: &str = "dispatch_relay_task_events";

/// Integrations' run of a sync or import job.
pub const INTEGRATIONS_RUN_JOB: &str = "integrations_run_job";

/// Integrations' delivery of one notification.
pub const INTEGRATIONS_SEND_NOTIFICATION: &str = "integrations_send_notification";

/// The farms milk is collected from.
pub const COMPANIES: ServiceSpec = ServiceSpec {
    name: "companies",
    default_port: 50051,
    public_packages: &["director.companies.v1"],
    runs_jobs: false,
    jobs: &[],
    // Plain CRUD, light next to the others.
    deployment: Deployment {
        max_replicas: 4,
        reaches_third_parties: false,
    },
};

/// Drivers, collection tasks, their state machine and live task events.
pub const DISPATCH: ServiceSpec = ServiceSpec {
    name: "dispatch",
    default_port: 50052,
    public_packages: &["director.dispatch.v1"],
    runs_jobs: true,
    jobs: &[DISPATCH_RELAY_TASK_EVENTS],
    deployment: Deployment {
        max_replicas: 8,
        reaches_third_parties: false,
    },
};

/// Vessey sync and import, Slack and Twilio notifications, as durable jobs.
pub const INTEGRATIONS: ServiceSpec = ServiceSpec {
    name: "integrations",
    default_port: 50053,
    public_packages: &["director.integrations.v1"],
    runs_jobs: true,
    jobs: &[INTEGRATIONS_RUN_JOB, INTEGRATIONS_SEND_NOTIFICATION],
    // Vessey, Slack and Twilio.
    deployment: Deployment {
        max_replicas: 6,
        reaches_third_parties: true,
    },
};

/// Every Director service, in start-up order (a service comes after those it calls; Dispatch
/// and Integrations call each other, and neither needs the other to start).
pub const SERVICES: &[ServiceSpec] = &[COMPANIES, DISPATCH, INTEGRATIONS];

/// `UPSTREAM_URL_TEMPLATE`: how a service's URL is made when `<NAME>_URL` is not set;
/// `{service}` and `{port}` are replaced by the spec's name and default port. The default
/// reaches every service on loopback (`director up`); compose and Kubernetes set
/// `http://{service}:{port}`.
pub const UPSTREAM_URL_TEMPLATE: &str = "UPSTREAM_URL_TEMPLATE";
const DEFAULT_URL_TEMPLATE: &str = "http://127.0.0.1:{port}";

impl ServiceSpec {
    /// The spec named `name`, if there is one.
    pub fn named(name: &str) -> Option<&'static ServiceSpec> {
        SERVICES.iter().find(|spec| spec.name == name)
    }

    /// The prefix of its variables: `DISPATCH`.
    pub fn env_prefix(&self) -> String {
        self.name.to_ascii_uppercase().replace('-', "_")
    }

    /// The variable holding its listen address: `DISPATCH_ADDR`.
    pub fn addr_var(&self) -> String {
        format!("{}_ADDR", self.env_prefix())
    }

    /// The variable holding the URL others reach it at: `DISPATCH_URL`.
    pub fn url_var(&self) -> String {
        format!("{}_URL", self.env_prefix())
    }

    /// Its binary: `director-dispatch`.
    pub fn binary(&self) -> String {
        binary_name(self.name)
    }

    /// Where it listens: `<NAME>_ADDR`, default `0.0.0.0:<default_port>`.
    pub fn listen_addr(&self, env: &Env) -> Result<SocketAddr, ConfigError> {
        env.parse_or(
            &self.addr_var(),
            SocketAddr::from(([0, 0, 0, 0], self.default_port)),
        )
    }

    /// Where others reach it: `<NAME>_URL`, else [`UPSTREAM_URL_TEMPLATE`] filled in.
    pub fn url(&self, env: &Env) -> Result<http::Uri, ConfigError> {
        let (variable, raw) = match env.string(&self.url_var()) {
            Some(url) => (self.url_var(), url),
            None => {
                let template = env
                    .string(UPSTREAM_URL_TEMPLATE)
                    .unwrap_or_else(|| DEFAULT_URL_TEMPLATE.to_owned());
                let url = template
                    .replace("{service}", self.name)
                    .replace("{port}", &self.default_port.to_string());
                (UPSTREAM_URL_TEMPLATE.to_owned(), url)
            }
        };
        if !(raw.starts_with("http://") || raw.starts_with("https://")) {
            return Err(ConfigError::invalid(
                &variable,
                "an http:// or https:// URL",
                &raw,
            ));
        }
        raw.parse()
            .map_err(|_| ConfigError::invalid(&variable, "a valid URL", &raw))
    }
}

/// Every public package and the URL of the service serving it: the gateway's upstreams.
pub fn public_upstreams(env: &Env) -> Result<Vec<(String, http::Uri)>, ConfigError> {
    let mut upstreams = Vec::new();
    for spec in SERVICES {
        let url = spec.url(env)?;
        for package in spec.public_packages {
            upstreams.push(((*package).to_owned(), url.clone()));
        }
    }
    Ok(upstreams)
}

/// Which spec serves `package` publicly, if any.
pub fn owner_of(package: &str) -> Option<&'static ServiceSpec> {
    SERVICES
        .iter()
        .find(|spec| spec.public_packages.contains(&package))
}

/// The binary of the service named `service` in the catalog: `director-dispatch`; also the
/// `service.name` its telemetry reports by default.
pub fn binary_name(service: &str) -> String {
    format!("director-{service}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ports_and_packages_are_unique() {
        for (i, a) in SERVICES.iter().enumerate() {
            for b in &SERVICES[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.default_port, b.default_port);
                assert!(
                    a.public_packages
                        .iter()
                        .all(|p| !b.public_packages.contains(p))
                );
            }
        }
    }

    #[test]
    fn a_service_runs_jobs_exactly_when_it_names_them_and_no_two_name_the_same() {
        let mut seen = std::collections::BTreeSet::new();
        for spec in SERVICES {
            assert_eq!(spec.runs_jobs, !spec.jobs.is_empty(), "{}", spec.name);
            for identifier in spec.jobs {
                assert!(!identifier.is_empty());
                assert!(seen.insert(*identifier), "{identifier} is named twice");
            }
        }
    }

    #[test]
    fn urls_come_from_the_service_variable_then_the_template() {
        let env = Env::default();
        assert_eq!(
            DISPATCH.url(&env).map(|u| u.to_string()),
            Ok("http://127.0.0.1:50052/".to_owned())
        );
        let env = Env::from_pairs([(UPSTREAM_URL_TEMPLATE, "http://{service}.svc:{port}")]);
        assert_eq!(
            COMPANIES.url(&env).map(|u| u.to_string()),
            Ok("http://companies.svc:50051/".to_owned())
        );
        let env = env.with_defaults([("DISPATCH_URL", "http://10.0.0.9:9000")]);
        assert_eq!(
            DISPATCH.url(&env).map(|u| u.to_string()),
            Ok("http://10.0.0.9:9000/".to_owned())
        );
        let env = Env::from_pairs([("COMPANIES_URL", "companies:50051")]);
        assert_eq!(
            COMPANIES.url(&env).map_err(|e| e.variable),
            Err("COMPANIES_URL".to_owned())
        );
    }

    #[test]
    fn listen_addresses_default_to_the_port() {
        assert_eq!(
            DISPATCH.listen_addr(&Env::default()),
            Ok(SocketAddr::from(([0, 0, 0, 0], 50052)))
        );
        assert_eq!(DISPATCH.addr_var(), "DISPATCH_ADDR");
        assert_eq!(owner_of("director.dispatch.v1"), Some(&DISPATCH));
        assert_eq!(owner_of("director.dispatch.internal.v1"), None);
    }
}
