//! Search, filter, sort and keyset pagination over a few hundred clients.

use std::collections::BTreeSet;

use axum::http::Method;
use registry_tests::{backend_tests, spa_client, Backend, TestApp};
use serde_json::{json, Value};

backend_tests!(
    index_and_sql_answer_alike,
    another_process_sees_writes_through_the_feed,
    search_is_case_insensitive_and_literal,
    pages_cover_every_client_once_in_order,
    filters_and_sorts_combine_with_pages,
    bad_list_parameters_are_named,
);

const CLIENTS: usize = 240;

fn name_of(i: usize) -> String {
    match i % 3 {
        0 => format!("Billing Service {i}"),
        1 => format!("Łódź Portal {i}"),
        _ => format!("analytics {i}"),
    }
}

/// Registers `CLIENTS` clients (every fourth disabled) plus a few with LIKE wildcards in
/// their id or name, 8 requests at a time. Returns (id, name, enabled) of all.
async fn populate(app: &TestApp) -> Vec<(String, String, bool)> {
    let mut clients: Vec<(String, String, bool)> = (0..CLIENTS)
        .map(|i| (format!("app-{i:03}"), name_of(i), i % 4 != 0))
        .collect();
    clients.push(("cli_ff".into(), "Underscore client".into(), true));
    clients.push(("cli-ff".into(), "Dash client".into(), true));
    clients.push(("coverage".into(), "100% Coverage".into(), true));
    clients.push(("back".into(), "Back\\slash".into(), true));
    for chunk in clients.chunks(8) {
        let mut tasks = tokio::task::JoinSet::new();
        for (id, name, enabled) in chunk {
            let mut body = spa_client(id, name);
            body["enabled"] = json!(*enabled);
            let request = app.call(Method::POST, "/api/v1/clients").json(&body);
            tasks.spawn(async move { request.send().await.status.as_u16() });
        }
        while let Some(status) = tasks.join_next().await {
            assert_eq!(status.unwrap(), 201);
        }
    }
    clients
}

async fn without_defaults(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await
}

fn ids(page: &Value) -> Vec<String> {
    page["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn search_ids(app: &TestApp, term: &str) -> BTreeSet<String> {
    let encoded: String = form_encode(term);
    let page = app
        .list_clients(&format!("search={encoded}&limit=500"))
        .await;
    page.assert_status(200);
    let body = page.json();
    let found: BTreeSet<String> = ids(&body).into_iter().collect();
    assert_eq!(
        body["total"],
        found.len(),
        "total counts the matches of {term:?}"
    );
    found
}

/// `term` percent-encoded for a query string.
fn form_encode(term: &str) -> String {
    form_urlencoded::byte_serialize(term.as_bytes()).collect()
}

async fn search_is_case_insensitive_and_literal(backend: Backend) {
    let app = without_defaults(backend).await;
    let clients = populate(&app).await;
    let expected = |pred: &dyn Fn(&str, &str) -> bool| -> BTreeSet<String> {
        clients
            .iter()
            .filter(|(id, name, _)| pred(id, name))
            .map(|(id, _, _)| id.clone())
            .collect()
    };

    let billing = search_ids(&app, "BILLING service").await;
    assert_eq!(billing, expected(&|_, n| n.starts_with("Billing Service")));
    assert_eq!(billing.len(), CLIENTS / 3);

    // Non-ASCII letters fold too.
    let lodz = search_ids(&app, "ŁÓDŹ").await;
    assert_eq!(lodz, expected(&|_, n| n.starts_with("Łódź")));

    // By id.
    assert_eq!(search_ids(&app, "APP-00").await.len(), 10);

    // LIKE wildcards match only themselves.
    let underscore = search_ids(&app, "cli_ff").await;
    assert_eq!(underscore, BTreeSet::from(["cli_ff".to_owned()]));
    assert_eq!(
        search_ids(&app, "_").await,
        BTreeSet::from(["cli_ff".to_owned()])
    );
    assert_eq!(
        search_ids(&app, "%").await,
        BTreeSet::from(["coverage".to_owned()])
    );
    assert_eq!(
        search_ids(&app, "\\").await,
        BTreeSet::from(["back".to_owned()])
    );

    // A term never spans the id and the name.
    assert!(search_ids(&app, "coverage100").await.is_empty());
    assert!(search_ids(&app, "no such client").await.is_empty());

    // An empty term is no filter.
    let all = app.list_clients("search=&limit=1").await.json();
    assert_eq!(all["total"], clients.len());
}

async fn walk(app: &TestApp, query: &str, limit: usize) -> (Vec<Value>, u64) {
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    let mut total = None;
    for _ in 0..1000 {
        let url = match &cursor {
            Some(c) => format!("{query}&limit={limit}&cursor={c}"),
            None => format!("{query}&limit={limit}"),
        };
        let page = app.list_clients(&url).await;
        page.assert_status(200);
        let body = page.json();
        let page_rows = body["clients"].as_array().unwrap().clone();
        assert!(page_rows.len() <= limit);
        let page_total = body["total"].as_u64().unwrap();
        assert_eq!(
            *total.get_or_insert(page_total),
            page_total,
            "total is stable"
        );
        rows.extend(page_rows);
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (rows, page_total),
        }
    }
    panic!("pagination did not end");
}

async fn pages_cover_every_client_once_in_order(backend: Backend) {
    let app = without_defaults(backend).await;
    let clients = populate(&app).await;

    let (rows, total) = walk(&app, "sort=client_id", 37).await;
    let got: Vec<&str> = rows
        .iter()
        .map(|r| r["client_id"].as_str().unwrap())
        .collect();
    let mut want: Vec<&str> = clients.iter().map(|c| c.0.as_str()).collect();
    want.sort_unstable();
    assert_eq!(got, want, "every client once, in byte order of client_id");
    assert_eq!(total as usize, clients.len());

    let (rows, _) = walk(&app, "sort=-client_name", 50).await;
    let got: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["client_name"].as_str().unwrap().to_lowercase(),
                r["client_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut want: Vec<(String, String)> = clients
        .iter()
        .map(|(id, name, _)| (name.to_lowercase(), id.clone()))
        .collect();
    want.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(got, want, "descending by name, ties by id");

    let (rows, _) = walk(&app, "sort=created_at", 64).await;
    let unique: BTreeSet<&str> = rows
        .iter()
        .map(|r| r["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(unique.len(), clients.len());
    let times: Vec<&str> = rows
        .iter()
        .map(|r| r["created_at"].as_str().unwrap())
        .collect();
    let parsed: Vec<chrono::DateTime<chrono::Utc>> =
        times.iter().map(|t| t.parse().unwrap()).collect();
    assert!(
        parsed.windows(2).all(|w| w[0] <= w[1]),
        "ascending by creation"
    );
}

async fn filters_and_sorts_combine_with_pages(backend: Backend) {
    let app = without_defaults(backend).await;
    let clients = populate(&app).await;
    let (rows, total) = walk(&app, "search=billing&enabled=true&sort=-updated_at", 7).await;
    let want: BTreeSet<String> = clients
        .iter()
        .filter(|(_, name, enabled)| *enabled && name.starts_with("Billing"))
        .map(|(id, _, _)| id.clone())
        .collect();
    let got: BTreeSet<String> = rows
        .iter()
        .map(|r| r["client_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, want);
    assert_eq!(total as usize, want.len());
    assert!(rows.iter().all(|r| r["enabled"] == true));

    let disabled = app.list_clients("enabled=false&limit=500").await.json();
    assert_eq!(
        disabled["total"].as_u64().unwrap() as usize,
        clients.iter().filter(|c| !c.2).count()
    );
}

async fn bad_list_parameters_are_named(backend: Backend) {
    let app = without_defaults(backend).await;
    let fields = app
        .list_clients("limit=0&sort=name")
        .await
        .assert_problem(400, "invalid_query");
    assert_eq!(fields, ["sort", "limit"]);
    let fields = app
        .list_clients("limit=abc")
        .await
        .assert_problem(400, "invalid_query");
    assert_eq!(fields, ["limit"]);
    let fields = app
        .list_clients("enabled=yes")
        .await
        .assert_problem(400, "invalid_query");
    assert_eq!(fields, ["enabled"]);
    let fields = app
        .list_clients("q=billing")
        .await
        .assert_problem(400, "invalid_query");
    assert_eq!(fields.len(), 1);
    let fields = app
        .list_clients("cursor=not-a-cursor")
        .await
        .assert_problem(400, "invalid_query");
    assert_eq!(fields, ["cursor"]);
    // A cursor from another sort is refused, not misread.
    for id in ["a", "b"] {
        app.create_client(&spa_client(id, id))
            .await
            .assert_status(201);
    }
    let page = app.list_clients("limit=1&sort=client_name").await.json();
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    app.list_clients(&format!("limit=1&sort=client_name&cursor={cursor}"))
        .await
        .assert_status(200);
    let fields = app
        .list_clients(&format!("limit=1&sort=-created_at&cursor={cursor}"))
        .await
        .assert_problem(400, "invalid_query");
    assert_eq!(fields, ["cursor"]);
}

/// The in-memory index (what the API answers from) and the SQL list (its fallback, and what
/// exports read) agree on every page of every query.
async fn index_and_sql_answer_alike(backend: Backend) {
    use registry_projections::ListQuery;
    let app = without_defaults(backend).await;
    populate(&app).await;
    app.delete_client("app-007").await.assert_status(204);
    let mut renamed = spa_client("app-008", "Zzz renamed");
    renamed["enabled"] = json!(false);
    app.update_client("app-008", &renamed, None)
        .await
        .assert_status(200);
    let reads = app.reads();
    type Query<'a> = (Option<&'a str>, Option<bool>, Option<&'a str>, u32);
    let queries: [Query; 11] = [
        (None, None, None, 50),
        (None, None, Some("-client_id"), 6),
        (None, Some(true), None, 7),
        (None, Some(false), Some("-client_id"), 1),
        (Some("portal"), None, Some("-client_name"), 17),
        (Some("ŁÓDŹ"), Some(true), Some("created_at"), 9),
        (Some("_"), None, None, 5),
        (Some("%"), None, Some("-updated_at"), 5),
        (Some("app-0"), Some(false), Some("client_name"), 11),
        (Some("zzz"), None, Some("-client_id"), 3),
        (Some("no such thing"), None, None, 10),
    ];
    for (search, enabled, sort, limit) in queries {
        let mut query = ListQuery::parse(search, enabled, sort, Some(limit), None).unwrap();
        let mut pages = 0;
        loop {
            let from_sql = reads.list(&query).await.unwrap();
            let from_index = app.search.search(&query);
            assert_eq!(
                from_index, from_sql,
                "{search:?} {enabled:?} {sort:?} page {pages}"
            );
            pages += 1;
            match from_sql.next_cursor {
                Some(cursor) => {
                    query = ListQuery::parse(search, enabled, sort, Some(limit), Some(&cursor))
                        .unwrap();
                }
                None => break,
            }
        }
    }
}

/// With several processes on one database, each one's search sees the others' writes by
/// following the global feed.
async fn another_process_sees_writes_through_the_feed(backend: Backend) {
    let first = without_defaults(backend).await;
    let second = first.second_process().await;
    first
        .create_client(&spa_client("from-first", "Written by the first process"))
        .await
        .assert_status(201);
    let total = |app: &TestApp| {
        let query =
            registry_projections::ListQuery::parse(Some("first process"), None, None, None, None)
                .unwrap();
        app.search.search(&query).total
    };
    assert_eq!(total(&first), 1, "read-your-writes in the writing process");
    assert_eq!(
        total(&second),
        0,
        "the other process has not followed the feed yet"
    );
    let reads = second.reads();
    registry_tests::eventually(10, "the second process to follow the feed", || async {
        second.search.follow_once(reads.as_ref()).await.unwrap();
        total(&second) == 1
    })
    .await;
    first.delete_client("from-first").await.assert_status(204);
    registry_tests::eventually(10, "the delete to reach the second process", || async {
        second.search.follow_once(reads.as_ref()).await.unwrap();
        total(&second) == 0
    })
    .await;
}
