//! `director-integrations`: runs the Integrations gRPC service and its job worker (`serve`,
//! the default) or applies its migrations (`migrate`). `--help` lists every setting.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    director_store::runner::main(&director_integrations::SERVICE).await
}
