//! The `client-registry` binary, built inside this package so that its integration tests can
//! start it as a real process (`CARGO_BIN_EXE_registry-under-test`), kill it and restart it.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    registry_api::cli::main().await
}
