//! What the machine itself can do, measured in the same run: pgbench running the SQL our
//! write path and our search run, and argon2id hashes per second with our parameters.

use std::process::Command;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;

/// One public registration, statement for statement as the service runs it: the stream read
/// (cqrs-es), the event insert in its own transaction (postgres-es), then the projection's
/// transaction (relaxed commit, lock, read the detail row, read the events after it, upsert
/// detail and list).
pub const REGISTRATION_SQL: &str = r#"\set n random(1, 1000000000000)
SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata FROM events WHERE aggregate_type = 'Client' AND aggregate_id = 'pgb-' || cast(:n as text) ORDER BY sequence;
BEGIN;
INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES ('Client', 'pgb-' || cast(:n as text), 1, 'ClientRegistered', '1.0', jsonb_build_object('ClientRegistered', jsonb_build_object('client_id', 'pgb-' || cast(:n as text), 'settings', '{"client_name": "pgbench client", "client_uri": null, "require_client_secret": false, "enabled": true, "offline_access": false, "require_pkce": true, "grant_types": ["authorization_code"], "redirect_uris": ["https://pgb.example.com/cb"], "post_logout_redirect_uris": [], "allowed_cors_origins": [], "allowed_scopes": ["openid"]}'::jsonb)), '{"actor": "bench", "event_id": "0", "request_id": "pgbench", "recorded_at": "2026-01-01T00:00:00.000000Z"}'::jsonb);
COMMIT;
BEGIN;
SET LOCAL synchronous_commit = off;
SELECT pg_advisory_xact_lock(hashtextextended('client' || chr(58) || 'pgb-' || cast(:n as text), 0));
SELECT document, deleted, last_position FROM client_detail WHERE client_id = 'pgb-' || cast(:n as text);
SELECT aggregate_id, sequence, global_position, event_type, event_version, payload, metadata, recorded_at FROM events WHERE aggregate_type = 'Client' AND aggregate_id = 'pgb-' || cast(:n as text) AND sequence > 0 AND sequence <= 9223372036854775807 ORDER BY sequence;
INSERT INTO client_detail (client_id, version, last_position, deleted, document, created_at, updated_at) VALUES ('pgb-' || cast(:n as text), 1, 1, false, jsonb_build_object('client_id', 'pgb-' || cast(:n as text), 'settings', '{"client_name": "pgbench client", "client_uri": null, "require_client_secret": false, "enabled": true, "offline_access": false, "require_pkce": true, "grant_types": ["authorization_code"], "redirect_uris": ["https://pgb.example.com/cb"], "post_logout_redirect_uris": [], "allowed_cors_origins": [], "allowed_scopes": ["openid"]}'::jsonb, 'secrets', '[]'::jsonb, 'version', 1, 'created_at', '2026-01-01T00:00:00Z', 'updated_at', '2026-01-01T00:00:00Z'), now(), now()) ON CONFLICT (client_id) DO UPDATE SET version = excluded.version, last_position = excluded.last_position, deleted = excluded.deleted, document = excluded.document, created_at = excluded.created_at, updated_at = excluded.updated_at WHERE client_detail.version < excluded.version;
INSERT INTO client_list (client_id, client_name, name_key, client_uri, enabled, grant_types, search_text, created_at, updated_at) VALUES ('pgb-' || cast(:n as text), 'pgbench client', 'pgbench client', null, true, '["authorization_code"]'::jsonb, 'pgb-' || cast(:n as text) || chr(31) || 'pgbench client', now(), now()) ON CONFLICT (client_id) DO UPDATE SET client_name = excluded.client_name;
COMMIT;
"#;

/// The list query the service runs for `search=<term>` (first page of 50, sorted by id),
/// with its exact count.
pub fn search_sql(pattern: &str) -> String {
    format!(
        "SELECT count(*) FROM client_list WHERE true AND search_text LIKE '{pattern}' ESCAPE '\\';\n\
         SELECT client_id, client_name, client_uri, enabled, grant_types, created_at, updated_at \
         FROM client_list WHERE true AND search_text LIKE '{pattern}' ESCAPE '\\' \
         ORDER BY client_id ASC LIMIT 51;\n"
    )
}

/// pgbench's result: transactions per second and latency.
#[derive(Debug, Clone)]
pub struct PgbenchResult {
    /// Transactions (script runs) per second.
    pub tps: f64,
    /// Average latency in ms.
    pub latency_ms: f64,
}

/// Runs `script` with pgbench against `url` at `clients` connections for `seconds`.
///
/// # Errors
/// When pgbench is missing or fails.
pub fn pgbench(
    url: &str,
    script: &str,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<PgbenchResult> {
    let dir = std::env::temp_dir().join(format!(
        "registry-pgbench-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("script.sql");
    std::fs::write(&file, script)?;
    let threads = clients.min(2).to_string();
    let output = Command::new("pgbench")
        .args([
            "-n",
            "-M",
            "prepared",
            "-c",
            &clients.to_string(),
            "-j",
            &threads,
            "-T",
            &seconds.to_string(),
            "-f",
        ])
        .arg(&file)
        .arg(url)
        .output()?;
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    anyhow::ensure!(
        output.status.success(),
        "pgbench failed: {}{}",
        text,
        String::from_utf8_lossy(&output.stderr)
    );
    let number = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_once('=').map(|(_, v)| v.trim().to_owned()))
            .and_then(|v| {
                v.split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<f64>().ok())
            })
    };
    Ok(PgbenchResult {
        tps: number("tps").unwrap_or(0.0),
        latency_ms: number("latency average").unwrap_or(0.0),
    })
}

/// argon2id hashes per second with the service's parameters (the `argon2` crate's defaults:
/// m = 19 MiB, t = 2, p = 1) on `threads` threads for `duration`.
pub fn argon2_rate(threads: usize, duration: Duration) -> f64 {
    let started = Instant::now();
    let hashes: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut count = 0;
                    while started.elapsed() < duration {
                        let salt = SaltString::generate(&mut OsRng);
                        let _ = Argon2::default()
                            .hash_password(b"a-client-secret-of-43-characters-long-xxxx", &salt);
                        count += 1;
                    }
                    count
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
    });
    hashes as f64 / started.elapsed().as_secs_f64()
}
