//! `director-companies`: runs the Companies gRPC service (`serve`, the default) or applies
//! its migrations (`migrate`). `--help` lists every setting.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    director_store::runner::main(&director_companies::SERVICE).await
}
