//! The security review's cases, one test each (`scripts/attack.sh` runs them and prints one
//! line per case): each was an attack that worked, and each test is that attack, which must
//! now fail. SECURITY.md says what is promised for each.

use axum::body::Body;
use axum::http::{header, Method, Request};
use registry_api::auth::api_keys::generate;
use registry_api::auth::Roles;
use registry_tests::{backend_tests, Backend, TestApp, ADMIN_TOKEN};

backend_tests!(case_01_a_yaml_alias_bomb_of_large_values_is_refused_by_bytes,);

/// An API key with only `roles`, and the configuration line that accepts it.
pub fn key(name: &str, roles: &str) -> (String, String) {
    generate(name, Roles::parse(roles).unwrap())
}

/// Case 1: one 1 MB string under an anchor and 10,000 aliases to it (10 GB once expanded),
/// posted with a read-only key, made the server abort. Now: a 422 naming the document, soon,
/// and the server answers the next request.
async fn case_01_a_yaml_alias_bomb_of_large_values_is_refused_by_bytes(backend: Backend) {
    let (reader, line) = key("reader", "clients:read");
    let app = TestApp::spawn_with(backend, |c| c.api_keys = Some(line)).await;
    let mut bomb = format!("big: &big \"{}\"\ncopies:\n", "x".repeat(1024 * 1024));
    for _ in 0..10_000 {
        bomb.push_str("  - *big\n");
    }
    bomb.push_str("clients: []\n");
    let response = app
        .send(
            Request::builder()
                .method(Method::POST)
                .uri("/api/v1/clients/plan")
                .header(header::AUTHORIZATION, format!("Bearer {reader}"))
                .header(header::CONTENT_TYPE, "application/yaml")
                .body(Body::from(bomb))
                .unwrap(),
        )
        .await;
    let fields = response.assert_problem(422, "validation_failed");
    assert_eq!(
        fields,
        ["document"],
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert!(String::from_utf8_lossy(&response.body).contains("expands to far more"));
    // Nested 64 deep: refused by depth, not by the parser's stack.
    let deep = format!("clients: {}{}\n", "[".repeat(64), "]".repeat(64));
    let response = app
        .send(
            Request::builder()
                .method(Method::POST)
                .uri("/api/v1/clients/plan")
                .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
                .header(header::CONTENT_TYPE, "application/yaml")
                .body(Body::from(deep))
                .unwrap(),
        )
        .await;
    response.assert_problem(422, "validation_failed");
    assert!(String::from_utf8_lossy(&response.body).contains("deeper than"));
    app.list_clients("").await.assert_status(200);
}

/// Case 1, on the command line: `clients plan -f` read the file unguarded before sending it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_01_the_cli_reads_a_file_within_the_same_limits() {
    use crate::documents_cli::{cli, temp_dir, write};
    let dir = temp_dir();
    let mut bomb = format!("big: &big \"{}\"\ncopies:\n", "x".repeat(1024 * 1024));
    for _ in 0..10_000 {
        bomb.push_str("  - *big\n");
    }
    bomb.push_str("clients: []\n");
    let file = write(&dir, "bomb.yaml", &bomb);
    // Nothing listens there: the file must be refused before anything is sent.
    let run = cli(
        &[
            "plan",
            "-f",
            file.to_str().unwrap(),
            "--url",
            "http://127.0.0.1:9",
        ],
        &[("REGISTRY_TOKEN", "unused-token-0123456789")],
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("expands to far more"), "{run:?}");
    std::fs::remove_dir_all(dir).unwrap();
}
