//! The first start of a store, as its operator sees it: on a terminal, one framed block with
//! the generated admin token, the sealed log's public key, the screens' address and a `curl`
//! line that works as printed; anywhere else (a service manager, a pipe) the token goes to a
//! file only its owner can read, and never into the log.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use registry_tests::{eventually, Backend, TestDatabase};

use crate::process::client;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The service's command with the environment of a first start: no admin token configured,
/// run in `dir` (PostgreSQL's files go to `data/` under it).
fn service(url: &str, port: u16, dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_registry-under-test"));
    command
        .arg("serve")
        .current_dir(dir)
        .env_remove("REGISTRY_ADMIN_TOKEN")
        .env_remove("REGISTRY_AUDIT_KEY_FILE")
        .env("REGISTRY_DATABASE_URL", url)
        .env("REGISTRY_LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("REGISTRY_LOG", "info")
        .env("REGISTRY_SHUTDOWN_GRACE_SECONDS", "0");
    command
}

async fn ready(base: &str) {
    let http = client();
    eventually(30, "the server to be ready", || async {
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
}

async fn status_with(base: &str, token: &str) -> u16 {
    client()
        .get(format!("{base}/api/v1/clients"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn scratch() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("registry-first-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Not a terminal: the token is in `admin-token` beside the store (mode 0600), named in the
/// log and absent from everything the process wrote; a second start writes no new one.
async fn without_a_terminal_the_token_goes_to_a_private_file(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let dir = scratch();
    let token_file = match &database.sqlite_file {
        Some(file) => file.parent().unwrap().join("admin-token"),
        None => dir.join("data").join("admin-token"),
    };
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let output = dir.join("output.log");
    let mut child = service(&database.url, port, &dir)
        .stdout(std::fs::File::create(&output).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    ready(&base).await;
    let token = std::fs::read_to_string(&token_file).unwrap();
    let token = token.trim();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the token file is the owner's only");
    }
    assert_eq!(status_with(&base, token).await, 200);
    let written = std::fs::read_to_string(&output).unwrap()
        + &std::fs::read_to_string(dir.join("stderr.log")).unwrap();
    assert!(
        !written.contains(token),
        "the token is never printed or logged"
    );
    assert!(
        written.contains(&token_file.display().to_string()),
        "the log names the file: {written}"
    );
    child.kill().unwrap();
    child.wait().unwrap();

    // The operator read it and deleted it; the next start generates nothing new.
    std::fs::remove_file(&token_file).unwrap();
    let mut again = service(&database.url, port, &dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    ready(&base).await;
    assert!(!token_file.exists());
    assert_eq!(status_with(&base, token).await, 200);
    again.kill().unwrap();
    again.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// On a terminal (`script` gives the process one): the framed block, with a `curl` line that
/// works when run exactly as printed.
async fn on_a_terminal_a_framed_block_with_a_curl_line_that_works(backend: Backend) {
    let script = registry_tests::require_tool("script");
    registry_tests::require_tool("curl");
    let database = TestDatabase::create(backend).await;
    let dir = scratch();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let binary = env!("CARGO_BIN_EXE_registry-under-test");
    let child = service(&database.url, port, &dir);
    let mut child = Command::new(script)
        .args(["-qfec", &format!("{binary} serve"), "/dev/null"])
        .current_dir(&dir)
        .envs(child.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env_remove("REGISTRY_ADMIN_TOKEN")
        .env_remove("REGISTRY_AUDIT_KEY_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let mut block = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let end = line.starts_with('└');
            if line.starts_with('┌') || !block.is_empty() {
                block.push(line);
            }
            if end {
                break;
            }
        }
        block
    })
    .await
    .unwrap();
    let block = lines.join("\n");
    assert!(block.contains("Admin token"), "{block}");
    assert!(block.contains("Sealed-log public key"), "{block}");
    assert!(
        block.contains(&format!("Admin screens: {base}/")),
        "{block}"
    );
    let curl = lines
        .iter()
        .find_map(|l| {
            let start = l.find("curl ")?;
            Some(l[start..].trim_end().to_owned())
        })
        .unwrap();
    ready(&base).await;
    let ran = Command::new("sh")
        .args([
            "-c",
            &format!("{curl} -sf -o /dev/null -w '%{{http_code}}'"),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout),
        "200",
        "{curl} answered {ran:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

registry_tests::backend_tests!(
    without_a_terminal_the_token_goes_to_a_private_file,
    on_a_terminal_a_framed_block_with_a_curl_line_that_works,
);
