//! `client-registry`: the registry of OAuth 2.0 / OpenID Connect clients.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    client_registry::cli::main().await
}
