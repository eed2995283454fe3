//! Span export under each span's own service: the OpenTelemetry `service.name` is a resource
//! attribute, one per tracer provider, but `director up` runs the gateway and every service in
//! one process with one provider. There, spans opened by the platform carry the name of the
//! service they belong to in a [`SERVICE_NAME`] attribute; [`PerServiceExporter`] groups each
//! batch by it and exports every group with the process's resource renamed to its service, so a
//! trace across `director up` shows the same services as one across separate processes.
//!
//! Writing a span exporter is the SDK's extension point for exactly this; no crate offers
//! per-span resources, and separate tracer providers would need separate tracing layers
//! whose span data collide in the subscriber.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// The span attribute naming the service a span belongs to, e.g. `director-dispatch`: the
/// name the service's own binary reports by default (set by
/// [`crate::telemetry::name_service`]). Exported as the resource's `service.name`, never as a
/// span attribute.
pub const SERVICE_NAME: &str = "service.name";

/// Wraps a process's exporter: spans naming no service (every span of a process that hosts
/// one) are exported with the process's resource unchanged (which honours
/// `OTEL_SERVICE_NAME`); spans naming a service with that resource's `service.name` replaced
/// by theirs.
pub struct PerServiceExporter<E> {
    // The SDK never calls `export` concurrently; the lock only lets one export set the inner
    // exporter's resource and then use it, across the export's await.
    state: tokio::sync::Mutex<State<E>>,
}

struct State<E> {
    exporter: E,
    /// The process's resource, as the tracer provider gave it.
    resource: Resource,
    /// `resource` renamed, per other service seen.
    renamed: HashMap<String, Resource>,
}

impl<E> State<E> {
    fn resource_for(&mut self, service: Option<&str>) -> Resource {
        let Some(service) = service else {
            return self.resource.clone();
        };
        if let Some(resource) = self.renamed.get(service) {
            return resource.clone();
        }
        let renamed = Resource::builder_empty()
            .with_attributes(
                self.resource
                    .iter()
                    .filter(|(key, _)| key.as_str() != SERVICE_NAME)
                    .map(|(key, value)| KeyValue::new(key.clone(), value.clone())),
            )
            .with_service_name(service.to_owned())
            .build();
        self.renamed.insert(service.to_owned(), renamed.clone());
        renamed
    }
}

impl<E> PerServiceExporter<E> {
    /// `exporter`, wrapped.
    pub fn new(exporter: E) -> Self {
        Self {
            state: tokio::sync::Mutex::new(State {
                exporter,
                resource: Resource::builder_empty().build(),
                renamed: HashMap::new(),
            }),
        }
    }
}

impl<E> fmt::Debug for PerServiceExporter<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerServiceExporter").finish_non_exhaustive()
    }
}

impl<E: SpanExporter> SpanExporter for PerServiceExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let groups = by_service(batch);
        let mut state = self.state.lock().await;
        let mut outcome = Ok(());
        for (service, spans) in groups {
            let resource = state.resource_for(service.as_deref());
            state.exporter.set_resource(&resource);
            // One service's failed export does not keep the others' spans back.
            if let Err(error) = state.exporter.export(spans).await {
                outcome = Err(error);
            }
        }
        outcome
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.with_exporter(|exporter| exporter.shutdown_with_timeout(timeout))
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.with_exporter(SpanExporter::force_flush)
    }

    fn set_resource(&mut self, resource: &Resource) {
        let state = self.state.get_mut();
        state.resource = resource.clone();
        state.renamed.clear();
        state.exporter.set_resource(resource);
    }
}

impl<E> PerServiceExporter<E> {
    /// Runs `f` on the inner exporter; the SDK calls shutdown and flush between exports, so
    /// the lock is free then.
    fn with_exporter(&self, f: impl FnOnce(&E) -> OTelSdkResult) -> OTelSdkResult {
        let state = self.state.try_lock().map_err(|_| {
            OTelSdkError::InternalFailure("an export is still in progress".to_owned())
        })?;
        f(&state.exporter)
    }
}

/// `batch` grouped by the service each span names (`None`: the process's own), in order of
/// first appearance, with the [`SERVICE_NAME`] field taken out of the spans' attributes.
fn by_service(batch: Vec<SpanData>) -> Vec<(Option<String>, Vec<SpanData>)> {
    let mut groups: Vec<(Option<String>, Vec<SpanData>)> = Vec::new();
    for mut span in batch {
        let service = take_service_name(&mut span);
        match groups.iter_mut().find(|(named, _)| *named == service) {
            Some((_, spans)) => spans.push(span),
            None => groups.push((service, vec![span])),
        }
    }
    groups
}

fn take_service_name(span: &mut SpanData) -> Option<String> {
    let at = span
        .attributes
        .iter()
        .position(|attribute| attribute.key.as_str() == SERVICE_NAME)?;
    Some(span.attributes.remove(at).value.as_str().into_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId};
    use opentelemetry::{InstrumentationScope, Key};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};

    use super::*;

    /// What the inner exporter was asked to send: (service.name, span names, attribute keys).
    type Sent = Vec<(String, Vec<String>, Vec<String>)>;

    #[derive(Debug, Default, Clone)]
    struct Recording {
        resource: Option<Resource>,
        sent: Arc<Mutex<Sent>>,
    }

    impl SpanExporter for Recording {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            let service = self
                .resource
                .as_ref()
                .and_then(|resource| resource.get(&Key::from_static_str(SERVICE_NAME)))
                .map(|value| value.as_str().into_owned())
                .unwrap_or_default();
            let names = batch.iter().map(|span| span.name.to_string()).collect();
            let keys = batch
                .iter()
                .flat_map(|span| span.attributes.iter().map(|kv| kv.key.to_string()))
                .collect();
            self.sent.lock().unwrap().push((service, names, keys));
            Ok(())
        }

        fn set_resource(&mut self, resource: &Resource) {
            self.resource = Some(resource.clone());
        }
    }

    fn span(name: &'static str, service: Option<&'static str>) -> SpanData {
        let mut attributes = vec![KeyValue::new("rpc.system", "grpc")];
        if let Some(service) = service {
            attributes.push(KeyValue::new(SERVICE_NAME, service));
        }
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(1),
                SpanId::from(1),
                TraceFlags::SAMPLED,
                false,
                Default::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: name.into(),
            start_time: std::time::SystemTime::UNIX_EPOCH,
            end_time: std::time::SystemTime::UNIX_EPOCH,
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("test").build(),
        }
    }

    #[tokio::test]
    async fn each_service_is_exported_under_its_own_name_and_the_field_is_not_an_attribute() {
        let recording = Recording::default();
        let sent = Arc::clone(&recording.sent);
        let mut exporter = PerServiceExporter::new(recording);
        exporter.set_resource(
            &Resource::builder_empty()
                .with_service_name("director-dev")
                .with_attribute(KeyValue::new("host.name", "box"))
                .build(),
        );

        exporter
            .export(vec![
                span("db", Some("director-dispatch")),
                span("request", Some("director-gateway")),
                span("CreateTask", Some("director-dispatch")),
                span("untagged", None),
            ])
            .await
            .unwrap();

        let sent = sent.lock().unwrap().clone();
        let strings = |names: &[&str]| names.iter().map(|name| (*name).to_owned()).collect();
        assert_eq!(
            sent,
            vec![
                (
                    "director-dispatch".to_owned(),
                    strings(&["db", "CreateTask"]),
                    strings(&["rpc.system", "rpc.system"])
                ),
                (
                    "director-gateway".to_owned(),
                    strings(&["request"]),
                    strings(&["rpc.system"])
                ),
                // Spans naming no service keep the process's resource, OTEL_SERVICE_NAME
                // included.
                (
                    "director-dev".to_owned(),
                    strings(&["untagged"]),
                    strings(&["rpc.system"])
                ),
            ]
        );
    }

    #[test]
    fn a_renamed_resource_keeps_the_process_attributes() {
        let mut state = State {
            exporter: (),
            resource: Resource::builder_empty()
                .with_service_name("director")
                .with_attribute(KeyValue::new("host.name", "box"))
                .build(),
            renamed: HashMap::new(),
        };
        let renamed = state.resource_for(Some("director-companies"));
        assert_eq!(
            renamed.get(&Key::from_static_str(SERVICE_NAME)),
            Some("director-companies".into())
        );
        assert_eq!(
            renamed.get(&Key::from_static_str("host.name")),
            Some("box".into())
        );
        assert_eq!(renamed.len(), 2);
    }
}
