//! Large event sets written straight into the event store with SQL (a million events through
//! the API would take most of the time budget): `clients` new clients, each with one
//! `ClientRegistered` and `per_client - 1` `ClientUpdated` events, in the exact shape the
//! service writes.

use sqlx::Connection as _;

/// The id of the `i`-th (from 1) bulk client with `prefix`.
pub fn client_id(prefix: &str, i: usize) -> String {
    format!("{prefix}-{i:07}")
}

const SETTINGS: &str = r#"{"client_name":"Bulk client %s","client_uri":null,"require_client_secret":false,"enabled":true,"offline_access":false,"require_pkce":true,"grant_types":["authorization_code"],"redirect_uris":["https://bulk.example.com/cb"],"post_logout_redirect_uris":[],"allowed_cors_origins":[],"allowed_scopes":["openid"]}"#;

fn postgres_sql(prefix: &str, clients: usize, per_client: usize) -> String {
    let settings = SETTINGS.replace("%s", "' || c || '");
    format!(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         select 'Client', '{prefix}-' || lpad(c::text, 7, '0'), s, \
           case when s = 1 then 'ClientRegistered' else 'ClientUpdated' end, '1.0', \
           case when s = 1 then jsonb_build_object('ClientRegistered', jsonb_build_object('client_id', '{prefix}-' || lpad(c::text, 7, '0'), 'settings', ('{settings}')::jsonb)) \
                else jsonb_build_object('ClientUpdated', jsonb_build_object('changes', jsonb_build_object('client_name', 'Bulk client ' || c || ' v' || s))) end, \
           jsonb_build_object('event_id', md5(c || '-' || s), 'actor', 'bench', 'request_id', 'bulk', \
             'recorded_at', to_char(clock_timestamp() at time zone 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')) \
         from generate_series(1, {clients}) c, generate_series(1, {per_client}) s order by c, s"
    )
}

fn sqlite_sql(prefix: &str, clients: usize, per_client: usize) -> String {
    let settings = SETTINGS.replace("%s", "' || c.n || '");
    format!(
        "with recursive c(n) as (select 1 union all select n + 1 from c where n < {clients}), \
         s(k) as (select 1 union all select k + 1 from s where k < {per_client}) \
         insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         select 'Client', '{prefix}-' || printf('%07d', c.n), s.k, \
           case when s.k = 1 then 'ClientRegistered' else 'ClientUpdated' end, '1.0', \
           case when s.k = 1 then json_object('ClientRegistered', json_object('client_id', '{prefix}-' || printf('%07d', c.n), 'settings', json('{settings}'))) \
                else json_object('ClientUpdated', json_object('changes', json_object('client_name', 'Bulk client ' || c.n || ' v' || s.k))) end, \
           json_object('event_id', hex(randomblob(16)), 'actor', 'bench', 'request_id', 'bulk', \
             'recorded_at', strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z') \
         from c, s order by c.n, s.k"
    )
}

/// Inserts the events; returns how many.
///
/// # Errors
/// The database error.
pub fn insert(url: &str, prefix: &str, clients: usize, per_client: usize) -> anyhow::Result<usize> {
    if clients == 0 {
        return Ok(0);
    }
    super::runtime().block_on(async {
        let inserted = if url.starts_with("postgres") {
            let mut connection = sqlx::PgConnection::connect(url).await?;
            sqlx::query(&postgres_sql(prefix, clients, per_client))
                .execute(&mut connection)
                .await?
                .rows_affected()
        } else {
            let mut connection = sqlx::SqliteConnection::connect(url).await?;
            sqlx::query("pragma busy_timeout = 60000")
                .execute(&mut connection)
                .await?;
            sqlx::query(&sqlite_sql(prefix, clients, per_client))
                .execute(&mut connection)
                .await?
                .rows_affected()
        };
        Ok(usize::try_from(inserted).unwrap_or(0))
    })
}

/// Events in the store.
///
/// # Errors
/// The database error.
pub fn count_events(url: &str) -> anyhow::Result<usize> {
    super::runtime().block_on(async {
        let count: i64 = if url.starts_with("postgres") {
            let mut connection = sqlx::PgConnection::connect(url).await?;
            sqlx::query_scalar("select count(*) from events")
                .fetch_one(&mut connection)
                .await?
        } else {
            let mut connection = sqlx::SqliteConnection::connect(url).await?;
            sqlx::query_scalar("select count(*) from events")
                .fetch_one(&mut connection)
                .await?
        };
        Ok(usize::try_from(count).unwrap_or(0))
    })
}

/// Rows of `table`.
///
/// # Errors
/// The database error.
pub fn count_rows(url: &str, table: &str) -> anyhow::Result<usize> {
    let sql = format!("select count(*) from {table}");
    super::runtime().block_on(async {
        let count: i64 = if url.starts_with("postgres") {
            let mut connection = sqlx::PgConnection::connect(url).await?;
            sqlx::query_scalar(&sql).fetch_one(&mut connection).await?
        } else {
            let mut connection = sqlx::SqliteConnection::connect(url).await?;
            sqlx::query_scalar(&sql).fetch_one(&mut connection).await?
        };
        Ok(usize::try_from(count).unwrap_or(0))
    })
}

/// Positions of sealed events spread over the whole log: every `step`-th leaf's.
///
/// # Errors
/// The database error.
pub fn sample_positions(url: &str, step: i64) -> anyhow::Result<Vec<i64>> {
    let sql = format!("select position from seal_leaves where leaf_index % {step} = 0");
    super::runtime().block_on(async {
        let positions: Vec<i64> = if url.starts_with("postgres") {
            let mut connection = sqlx::PgConnection::connect(url).await?;
            sqlx::query_scalar(&sql).fetch_all(&mut connection).await?
        } else {
            let mut connection = sqlx::SqliteConnection::connect(url).await?;
            sqlx::query_scalar(&sql).fetch_all(&mut connection).await?
        };
        anyhow::ensure!(!positions.is_empty(), "nothing is sealed");
        Ok(positions)
    })
}
