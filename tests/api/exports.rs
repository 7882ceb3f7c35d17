//! Exports read back: the xlsx opened with calamine, the PDF's text extracted with pdftotext.

use std::io::Cursor;
use std::process::Command;

use axum::http::Method;
use calamine::{Data, Reader, Xlsx};
use registry_tests::{backend_tests, service_client, spa_client, Backend, TestApp, TestResponse};
use serde_json::json;

backend_tests!(
    xlsx_export_of_a_filtered_list,
    pdf_export_of_a_filtered_list,
    empty_exports_have_only_the_header,
    history_exports,
    generic_clients_get_the_same_bytes_as_the_type_they_ask_for,
);

/// Generated clients know JSON, `text/*` and `application/octet-stream` only: asked for
/// those (and not for the file's own type), the exports answer the same bytes under them.
async fn generic_clients_get_the_same_bytes_as_the_type_they_ask_for(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_client(&spa_client("generic", "Generic"))
        .await
        .assert_status(201);
    for (path, own, generic, accept) in [
        (
            "/api/v1/clients/export.pdf",
            "application/pdf",
            "application/octet-stream",
            "application/octet-stream",
        ),
        (
            "/api/v1/clients/generic/history.xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/octet-stream",
            "application/octet-stream;q=0.9, application/json",
        ),
        (
            "/api/v1/clients/export.yaml",
            "application/yaml",
            "text/yaml; charset=utf-8",
            "text/yaml",
        ),
    ] {
        let plain = app.request(Method::GET, path, None, &[]).await;
        plain.assert_status(200);
        assert_eq!(plain.header("content-type"), Some(own), "{path}");
        let anything = app
            .request(Method::GET, path, None, &[("accept", "*/*")])
            .await;
        assert_eq!(anything.header("content-type"), Some(own), "{path}");
        let both = app
            .request(
                Method::GET,
                path,
                None,
                &[("accept", &format!("{own}, {accept}"))],
            )
            .await;
        assert_eq!(
            both.header("content-type"),
            Some(own),
            "its own type wins: {path}"
        );
        let asked = app
            .request(Method::GET, path, None, &[("accept", accept)])
            .await;
        asked.assert_status(200);
        assert_eq!(asked.header("content-type"), Some(generic), "{path}");
        assert!(
            asked.header("content-disposition").is_some() || path.ends_with(".yaml"),
            "{path}"
        );
        let again = app.request(Method::GET, path, None, &[]).await;
        if !path.ends_with(".pdf") && !path.ends_with(".xlsx") {
            assert_eq!(asked.body, again.body, "{path}");
        } else {
            assert_eq!(&asked.body[..2], &again.body[..2], "{path}");
        }
    }
    // Errors stay problems whatever was asked.
    let missing = app
        .request(
            Method::GET,
            "/api/v1/clients/nobody/history.pdf",
            None,
            &[("accept", "application/octet-stream")],
        )
        .await;
    missing.assert_status(404);
    assert_eq!(
        missing.header("content-type"),
        Some("application/problem+json")
    );
}

const NAMES: [&str; 4] = ["Łódź Portal", "Ωmega Gateway", "Привет мир", "東京 Service"];

/// 120 ordinary clients (every third disabled), plus four with non-Latin names, plus one
/// whose name is far too long for its PDF column.
async fn populate(app: &TestApp) {
    for i in 0..120 {
        let mut body = spa_client(&format!("app-{i:03}"), &format!("Portal app {i}"));
        body["enabled"] = json!(i % 3 != 0);
        app.create_client(&body).await.assert_status(201);
    }
    for (i, name) in NAMES.iter().enumerate() {
        app.create_client(&spa_client(&format!("intl-{i}"), name))
            .await
            .assert_status(201);
    }
    let long = "Portal with a name that is much too long to fit in its column of the PDF table";
    app.create_client(&spa_client("long", long))
        .await
        .assert_status(201);
}

async fn download(app: &TestApp, path: &str) -> TestResponse {
    let response = app.request(Method::GET, path, None, &[]).await;
    response.assert_status(200);
    response
}

fn assert_file_headers(response: &TestResponse, content_type: &str, stem: &str, ext: &str) -> i64 {
    assert_eq!(response.header("content-type"), Some(content_type));
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(
        response.header("content-disposition"),
        Some(format!("attachment; filename=\"{stem}-{today}.{ext}\"").as_str())
    );
    response.header("x-feed-position").unwrap().parse().unwrap()
}

fn sheet(bytes: &[u8], name: &str) -> Vec<Vec<Data>> {
    let mut workbook: Xlsx<_> = Xlsx::new(Cursor::new(bytes.to_vec())).unwrap();
    let range = workbook.worksheet_range(name).unwrap();
    range.rows().map(<[Data]>::to_vec).collect()
}

fn pdf_text(bytes: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("registry-pdf-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("export.pdf");
    std::fs::write(&file, bytes).unwrap();
    let output = Command::new(registry_tests::require_tool("pdftotext"))
        .args(["-layout", "-enc", "UTF-8"])
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(output.status.success(), "pdftotext failed");
    String::from_utf8(output.stdout).unwrap()
}

fn text(cell: &Data) -> String {
    match cell {
        Data::String(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

async fn xlsx_export_of_a_filtered_list(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    populate(&app).await;
    let response = download(
        &app,
        "/api/v1/clients/export.xlsx?search=PORTAL&enabled=true&sort=-client_name",
    )
    .await;
    let position = assert_file_headers(
        &response,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "clients",
        "xlsx",
    );
    let head = app.get_json("/api/v1/events?after=0&limit=1000").await["next_after"]
        .as_i64()
        .unwrap();
    assert_eq!(position, head, "the export reflects every event so far");

    let rows = sheet(&response.body, "Clients");
    let header: Vec<String> = rows[0].iter().map(text).collect();
    assert_eq!(
        header,
        ["Client ID", "Name", "Enabled", "URI", "Created", "Updated"]
    );
    // Every match, not one page: 80 enabled "Portal app" + Łódź Portal + the long one.
    let list = app
        .get_json("/api/v1/clients?search=PORTAL&enabled=true&sort=-client_name&limit=500")
        .await;
    let expected: Vec<String> = list["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(expected.len(), 82);
    let ids: Vec<String> = rows[1..].iter().map(|r| text(&r[0])).collect();
    assert_eq!(
        ids, expected,
        "the same clients in the same order as the list"
    );
    assert_eq!(response.header("x-export-rows"), Some("82"));
    for row in &rows[1..] {
        assert_eq!(row[2], Data::Bool(true), "Enabled is a real boolean");
        assert!(
            matches!(row[4], Data::DateTime(_)),
            "Created is a real date-time: {:?}",
            row[4]
        );
        assert!(matches!(row[5], Data::DateTime(_)));
    }
    let lodz = rows.iter().find(|r| text(&r[0]) == "intl-0").unwrap();
    assert_eq!(text(&lodz[1]), "Łódź Portal");
    assert_eq!(text(&lodz[3]), "https://studio.example.com");
    assert!(
        !ids.contains(&"app-000".to_owned()),
        "disabled clients are filtered out"
    );
}

async fn pdf_export_of_a_filtered_list(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    populate(&app).await;
    let response = download(&app, "/api/v1/clients/export.pdf?search=a").await;
    let position = assert_file_headers(&response, "application/pdf", "clients", "pdf");
    assert!(response.body.starts_with(b"%PDF-"));
    let text = pdf_text(&response.body);
    assert!(text.contains("OAuth clients"));
    assert!(text.contains("Filter: search: \"a\" · enabled: any · sort: client_id"));
    assert!(text.contains(&format!("reflects feed position {position}")));
    // Non-Latin names render with the embedded font.
    for name in ["Łódź Portal", "Ωmega Gateway"] {
        assert!(text.contains(name), "{name} missing from the PDF");
    }
    assert!(
        !text.contains("Привет"),
        "no 'a' in it: the filter excluded it"
    );
    // Too long: cut at the column with an ellipsis, not spilling into the next one.
    assert!(text.contains("Portal with a name that"));
    assert!(!text.contains("of the PDF table"));
    assert!(text.contains('…'));
    // Several pages, each with the header row and its number.
    let pages = text
        .match_indices("page ")
        .filter(|(i, _)| text[i + 5..].starts_with(|c: char| c.is_ascii_digit()))
        .count();
    assert!(pages >= 3, "{pages} pages");
    for page in 1..=pages {
        assert!(
            text.contains(&format!("page {page} of {pages}")),
            "page {page} of {pages}"
        );
    }
    assert_eq!(
        text.matches("Client ID").count(),
        pages,
        "the header row repeats on every page"
    );

    // CJK has no glyphs in DejaVu: shown as U+FFFD, never silently dropped.
    let cjk = download(&app, "/api/v1/clients/export.pdf?search=service").await;
    let cjk_text = pdf_text(&cjk.body);
    assert!(cjk_text.contains("\u{fffd}\u{fffd} Service"), "{cjk_text}");
    // Cyrillic renders.
    let cyrillic = pdf_text(
        &download(&app, "/api/v1/clients/export.pdf?search=%D0%BF%D1%80%D0%B8")
            .await
            .body,
    );
    assert!(cyrillic.contains("Привет мир"));
}

async fn empty_exports_have_only_the_header(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let xlsx = download(&app, "/api/v1/clients/export.xlsx?search=no-such-client").await;
    let rows = sheet(&xlsx.body, "Clients");
    assert_eq!(rows.len(), 1);
    assert_eq!(text(&rows[0][0]), "Client ID");
    let pdf = download(&app, "/api/v1/clients/export.pdf?search=no-such-client").await;
    let text = pdf_text(&pdf.body);
    assert!(text.contains("Client ID") && text.contains("0 rows") && text.contains("page 1 of 1"));
    app.request(Method::GET, "/api/v1/clients/export.pdf?limit=5", None, &[])
        .await
        .assert_problem(400, "invalid_query");
}

async fn history_exports(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_client(&service_client("svc", None))
        .await
        .assert_status(201);
    let mut changed = service_client("svc", None);
    changed["client_name"] = json!("Ωmega billing");
    app.update_client("svc", &changed, None)
        .await
        .assert_status(200);
    app.delete_client("svc").await.assert_status(204);

    let xlsx = download(&app, "/api/v1/clients/svc/history.xlsx").await;
    assert_file_headers(
        &xlsx,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "client-svc-history",
        "xlsx",
    );
    let rows = sheet(&xlsx.body, "History");
    let header: Vec<String> = rows[0].iter().map(text).collect();
    assert_eq!(
        header,
        ["Position", "Sequence", "Time", "Actor", "Event", "Field", "Before", "After"]
    );
    let rename = rows
        .iter()
        .find(|r| text(&r[5]) == "client_name" && text(&r[4]) == "ClientUpdated")
        .unwrap();
    assert_eq!(text(&rename[6]), "Billing worker");
    assert_eq!(text(&rename[7]), "Ωmega billing");
    assert_eq!(text(&rename[3]), "admin");
    assert!(matches!(rename[2], Data::DateTime(_)));
    assert!(matches!(rename[0], Data::Float(_) | Data::Int(_)));
    assert!(rows
        .iter()
        .any(|r| text(&r[4]) == "ClientDeleted" && text(&r[5]) == "deleted"));

    let pdf = download(&app, "/api/v1/clients/svc/history.pdf").await;
    let text = pdf_text(&pdf.body);
    assert!(text.contains("History of client svc"));
    assert!(text.contains("Ωmega billing") && text.contains("ClientUpdated"));
    assert!(!text.contains("argon2"));
    app.request(Method::GET, "/api/v1/clients/nobody/history.pdf", None, &[])
        .await
        .assert_problem(404, "client_not_found");
}
