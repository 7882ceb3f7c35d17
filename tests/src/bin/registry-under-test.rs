//! The `client-registry` binary, built inside this package so that its integration tests can
//! start it as a real process (`CARGO_BIN_EXE_registry-under-test`), kill it and restart it.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    client_registry::cli::main().await
}
