//! `client-registry`: the registry of OAuth 2.0 / OpenID Connect clients.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    registry_api::cli::run().await
}
