//! Signing in to the screens through the identity service (OpenID Connect, code + PKCE, state
//! and nonce), against the test provider, as a browser would follow the redirects.

use axum::http::Method;
use registry_tests::idp::{Idp, IdpUser};
use registry_tests::{backend_tests, Backend, TestApp, TestResponse};

backend_tests!(
    signing_in_through_the_identity_service,
    an_answer_that_is_not_this_browsers_is_refused,
    roles_come_from_what_was_granted_not_what_was_asked,
    a_flood_of_sign_ins_writes_nothing_and_locks_nobody_out,
);

pub(crate) fn alice() -> IdpUser {
    IdpUser::new("248289761001", "Alice Admin", "openid profile octo_api")
}

/// The scope mapping these tests sign in with (nothing is mapped by default).
pub(crate) const SCOPE_ROLES: &str =
    "octo_api=clients:read,clients:write octo_api.read_only=clients:read";

pub(crate) async fn app_with(idp: &Idp, backend: Backend) -> TestApp {
    let issuer = idp.issuer.clone();
    TestApp::spawn_with(backend, move |c| {
        c.oidc_issuer = Some(issuer);
        c.oidc_client_id = Some("registry-screens".to_owned());
        c.jwt_scope_roles = SCOPE_ROLES.to_owned();
    })
    .await
}

pub(crate) fn cookie_of(response: &TestResponse, name: &str) -> Option<String> {
    response
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
}

/// Follows `/oidc/login` to the provider and back; returns the callback path and the login
/// cookie.
pub(crate) async fn to_provider_and_back(app: &TestApp) -> (String, String) {
    let login = app
        .call(Method::GET, "/oidc/login?next=%2Fclients")
        .anonymous()
        .send()
        .await;
    login.assert_status(303);
    let cookie = cookie_of(&login, "__Host-registry-login").unwrap();
    let set = login
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(set.contains("SameSite=Lax") && set.contains("HttpOnly") && set.contains("Secure"));
    let authorize = login.header("location").unwrap().to_owned();
    assert!(authorize.contains("code_challenge_method=S256") && authorize.contains("nonce="));
    let answer = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&authorize)
        .send()
        .await
        .unwrap();
    let back = answer.headers()["location"].to_str().unwrap().to_owned();
    let path = back
        .strip_prefix("http://localhost")
        .unwrap_or(&back)
        .to_owned();
    (path, cookie)
}

pub(crate) async fn callback(app: &TestApp, path: &str, cookie: Option<&str>) -> TestResponse {
    let mut call = app.get(path).anonymous();
    if let Some(cookie) = cookie {
        call = call.header("cookie", cookie);
    }
    call.send().await
}

async fn signing_in_through_the_identity_service(backend: Backend) {
    let idp = Idp::start(alice()).await;
    let app = app_with(&idp, backend).await;
    let page = app.call(Method::GET, "/sign-in").anonymous().send().await;
    assert!(String::from_utf8_lossy(&page.body).contains("Sign in with the identity service"));

    let (path, cookie) = to_provider_and_back(&app).await;
    let signed = callback(&app, &path, Some(&cookie)).await;
    signed.assert_status(200);
    assert!(String::from_utf8_lossy(&signed.body).contains("url=/clients"));
    let session = cookie_of(&signed, "__Host-registry-session").unwrap();
    assert!(
        idp.pkce_always_checked(),
        "the code was redeemed with the PKCE verifier"
    );

    let list = app
        .call(Method::GET, "/clients")
        .anonymous()
        .header("cookie", &session)
        .send()
        .await;
    list.assert_status(200);
    let html = String::from_utf8_lossy(&list.body).into_owned();
    assert!(
        html.contains("Alice Admin &lt;248289761001&gt;"),
        "the person is named"
    );
    assert!(html.contains("New Client"), "octo_api gives clients:write");

    // The same answer a second time: refused (state is single-use).
    callback(&app, &path, Some(&cookie))
        .await
        .assert_status(400);

    // A person without the scopes that give a role here.
    idp.set_user(IdpUser {
        scope: "openid profile".to_owned(),
        ..alice()
    });
    let (path, cookie) = to_provider_and_back(&app).await;
    let refused = callback(&app, &path, Some(&cookie)).await;
    refused.assert_status(403);
    assert!(cookie_of(&refused, "__Host-registry-session").is_none());
}

/// Scopes asked for are not scopes granted: an answer that names none gives no role. With a
/// roles claim configured, the person's claim decides, whatever the scopes. An ID token for
/// several audiences must name this client as `azp`.
async fn roles_come_from_what_was_granted_not_what_was_asked(backend: Backend) {
    let idp = Idp::start(IdpUser {
        omit_scope: true,
        ..alice()
    })
    .await;
    let app = app_with(&idp, backend).await;
    let (path, cookie) = to_provider_and_back(&app).await;
    let refused = callback(&app, &path, Some(&cookie)).await;
    refused.assert_status(403);
    assert!(cookie_of(&refused, "__Host-registry-session").is_none());
    // The same answer, with the access token a JWT of the issuer: its scopes are the grant.
    idp.set_user(IdpUser {
        omit_scope: true,
        scope_in_access_token: true,
        ..alice()
    });
    let (path, cookie) = to_provider_and_back(&app).await;
    let signed = callback(&app, &path, Some(&cookie)).await;
    signed.assert_status(200);
    assert!(cookie_of(&signed, "__Host-registry-session").is_some());

    idp.set_user(IdpUser {
        extra_audience: Some("another-app".to_owned()),
        ..alice()
    });
    let (path, cookie) = to_provider_and_back(&app).await;
    callback(&app, &path, Some(&cookie))
        .await
        .assert_status(502);

    let issuer = idp.issuer.clone();
    let by_claim = TestApp::spawn_with(backend, move |c| {
        c.oidc_issuer = Some(issuer);
        c.oidc_client_id = Some("registry-screens".to_owned());
        c.oidc_roles_claim = Some("groups".to_owned());
        c.jwt_scope_roles = SCOPE_ROLES.to_owned();
    })
    .await;
    // octo_api granted as a scope, but the person is in no group that gives a role.
    idp.set_user(IdpUser {
        groups: Some(vec!["staff".to_owned()]),
        ..alice()
    });
    let (path, cookie) = to_provider_and_back(&by_claim).await;
    callback(&by_claim, &path, Some(&cookie))
        .await
        .assert_status(403);
    // In the group: a read-only session, whatever the scopes.
    idp.set_user(IdpUser {
        groups: Some(vec!["staff".to_owned(), "octo_api.read_only".to_owned()]),
        omit_scope: true,
        ..alice()
    });
    let (path, cookie) = to_provider_and_back(&by_claim).await;
    let signed = callback(&by_claim, &path, Some(&cookie)).await;
    signed.assert_status(200);
    let session = cookie_of(&signed, "__Host-registry-session").unwrap();
    let list = by_claim
        .call(Method::GET, "/clients")
        .anonymous()
        .header("cookie", &session)
        .send()
        .await;
    list.assert_status(200);
    let html = String::from_utf8_lossy(&list.body).into_owned();
    assert!(html.contains("octo-cli") && !html.contains("New Client"));
}

async fn an_answer_that_is_not_this_browsers_is_refused(backend: Backend) {
    let idp = Idp::start(alice()).await;
    let app = app_with(&idp, backend).await;
    // Login CSRF: an answer carried to another browser (no login cookie, or another one).
    let (path, _) = to_provider_and_back(&app).await;
    callback(&app, &path, None).await.assert_status(400);
    let (path, _) = to_provider_and_back(&app).await;
    let (_, other_cookie) = to_provider_and_back(&app).await;
    callback(&app, &path, Some(&other_cookie))
        .await
        .assert_status(400);
    // A forged state.
    let (_, cookie) = to_provider_and_back(&app).await;
    callback(&app, "/oidc/callback?code=x&state=forged", Some(&cookie))
        .await
        .assert_status(400);
    // An ID token whose nonce is not the one asked for.
    idp.set_user(IdpUser {
        wrong_nonce: true,
        ..alice()
    });
    let (path, cookie) = to_provider_and_back(&app).await;
    let refused = callback(&app, &path, Some(&cookie)).await;
    assert_eq!(refused.status.as_u16(), 502);
    assert!(cookie_of(&refused, "__Host-registry-session").is_none());
}

/// `/oidc/login` needs no credential: a flood of it writes nothing at all (each sign-in under
/// way lives in its browser's signed cookie), so it can fill nothing and lock nobody out; a
/// `next` longer than 2 KiB is not carried (the person lands on the client list).
async fn a_flood_of_sign_ins_writes_nothing_and_locks_nobody_out(backend: Backend) {
    let idp = Idp::start(alice()).await;
    let app = app_with(&idp, backend).await;
    let before = app.dump_tables().await;
    let long_next = format!("/clients?search={}", "x".repeat(3000));
    for i in 0..500 {
        let next = if i % 2 == 0 {
            "/clients"
        } else {
            long_next.as_str()
        };
        app.call(Method::GET, &format!("/oidc/login?next={next}"))
            .anonymous()
            .send()
            .await
            .assert_status(303);
    }
    assert_eq!(
        app.dump_tables().await,
        before,
        "no row written by 500 sign-ins"
    );
    let login = app
        .call(Method::GET, &format!("/oidc/login?next={long_next}"))
        .anonymous()
        .send()
        .await;
    let cookie = cookie_of(&login, "__Host-registry-login").unwrap();
    assert!(
        cookie.len() < 1024,
        "the long next is not in the cookie: {}",
        cookie.len()
    );
    let (path, cookie) = to_provider_and_back(&app).await;
    let signed = callback(&app, &path, Some(&cookie)).await;
    signed.assert_status(200);
    assert!(cookie_of(&signed, "__Host-registry-session").is_some());
}
