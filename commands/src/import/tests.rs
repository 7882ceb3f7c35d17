//! The conversions against fixture files that cover every mapped field.

use super::*;

const REALM: &str = include_str!("../../../tests/fixtures/convert/keycloak-realm.json");
const DUENDE: &str = include_str!("../../../tests/fixtures/convert/duende-appsettings.json");

fn client<'a>(conversion: &'a Conversion, id: &str) -> &'a DocumentClient {
    conversion
        .document
        .clients
        .iter()
        .find(|c| c.client_id == id)
        .unwrap_or_else(|| panic!("{id} converted"))
}

fn about<'a>(conversion: &'a Conversion, id: &str) -> Vec<(&'a str, &'a str)> {
    conversion
        .findings
        .iter()
        .filter(|f| f.client.as_deref() == Some(id))
        .map(|f| (f.field.as_str(), f.message.as_str()))
        .collect()
}

fn has(findings: &[(&str, &str)], field: &str, words: &str) -> bool {
    findings
        .iter()
        .any(|(f, m)| *f == field && m.contains(words))
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn a_keycloak_realm_maps_every_field_it_can() {
    let conversion = convert(Source::Keycloak, REALM, Options::default()).unwrap();
    let studio = client(&conversion, "data-refinery-studio");
    let expected = DocumentClient {
        client_id: "data-refinery-studio".into(),
        client_name: "Data Refinery Studio".into(),
        client_uri: Some("https://studio.example.com".into()),
        require_client_secret: true,
        client_secret_env: None,
        enabled: true,
        offline_access: true,
        require_pkce: true,
        grant_types: strings(&[
            "authorization_code",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code",
            "refresh_token",
        ]),
        redirect_uris: strings(&[
            "https://studio.example.com/callback",
            "https://studio.example.com/silent-renew",
        ]),
        post_logout_redirect_uris: strings(&[
            "https://studio.example.com/signed-out",
            "https://studio.example.com/callback",
            "https://studio.example.com/silent-renew",
        ]),
        allowed_cors_origins: strings(&["https://studio.example.com", "https://tools.example.com"]),
        allowed_scopes: strings(&[
            "openid",
            "profile",
            "email",
            "address",
            "phone",
            "offline_access",
            "octo_api",
        ]),
        logo_uri: Some("https://studio.example.com/logo.svg".into()),
        policy_uri: Some("https://studio.example.com/privacy".into()),
        ..DocumentClient::default()
    };
    assert_eq!(studio, &expected);
    assert!(
        has(
            &about(&conversion, "data-refinery-studio"),
            "attributes.tosUri",
            "left out"
        ),
        "an ftp terms page is reported, not kept"
    );
    let cli = client(&conversion, "octo-cli");
    assert!(!cli.enabled && !cli.require_client_secret && cli.require_pkce);
    assert_eq!(
        cli.grant_types,
        ["urn:ietf:params:oauth:grant-type:device_code"]
    );
    assert_eq!(cli.allowed_scopes, ["openid", "octo_api.read_only"]);
    assert!(cli.allowed_cors_origins.is_empty());
    let portal = client(&conversion, "legacy-portal");
    assert!(
        !portal.require_pkce,
        "no PKCE attribute: Keycloak did not require it"
    );
    assert!(portal.redirect_uris.is_empty());
    assert_eq!(conversion.need_secret, ["data-refinery-studio"]);
    assert_eq!(conversion.skipped.len(), 7, "{:?}", conversion.skipped);
    assert!(conversion
        .skipped
        .contains(&"saml-intranet (protocol saml)".to_owned()));
}

#[test]
fn what_keycloak_has_and_this_registry_does_not_is_reported_with_its_reason() {
    let conversion = convert(Source::Keycloak, REALM, Options::default()).unwrap();
    let studio = about(&conversion, "data-refinery-studio");
    for (field, words) in [
        ("redirectUris", "wildcards"),
        (
            "webOrigins",
            "expanded to https://*.example.com, https://studio.example.com",
        ),
        ("webOrigins", "\"https://*.example.com\" left out"),
        ("fullScopeAllowed", "false has no equivalent"),
        ("registrationAccessToken", "value not shown"),
        ("attributes.\"client.secret.rotated\"", "value not shown"),
        ("attributes.\"post.logout.redirect.uris\"", "expanded"),
        ("baseUrl", "not kept"),
        ("adminUrl", "no equivalent"),
        ("implicitFlowEnabled", "not offered"),
        ("directAccessGrantsEnabled", "password grant"),
        ("consentRequired", "no equivalent"),
        ("description", "no equivalent"),
        ("protocolMappers", "no equivalent"),
        ("attributes.\"access.token.lifespan\"", "\"600\""),
        (
            "defaultClientScopes",
            "web-origins, acr, roles, microprofile-jwt",
        ),
    ] {
        assert!(
            has(&studio, field, words),
            "{field}: {words} in {studio:#?}"
        );
    }
    // Defaults are not noise: nothing about frontchannelLogout, notBefore, the secret's
    // creation time or exclude.session.state (false).
    for quiet in ["frontchannelLogout", "notBefore"] {
        assert!(!studio.iter().any(|(f, _)| *f == quiet), "{quiet}");
    }
    assert!(!studio
        .iter()
        .any(|(f, _)| f.contains("creation.time") || f.contains("exclude")));
    let cli = about(&conversion, "octo-cli");
    assert!(has(&cli, "serviceAccountsEnabled", "public client"));
    assert!(has(&cli, "webOrigins", "\"*\" left out"));
    assert!(has(
        &cli,
        "attributes.\"pkce.code.challenge.method\"",
        "plain"
    ));
    let portal = about(&conversion, "legacy-portal");
    assert!(has(&portal, "redirectUris", "wildcards"));
    assert!(has(&portal, "redirect_uris", "plan will refuse"));
    let report = conversion.report();
    assert!(report.contains("need a new secret"), "{report}");
    assert!(report.contains("3 clients converted"), "{report}");
    assert!(!report.contains("**********"));
    assert!(!report.contains("never-shown"), "{report}");
}

#[test]
fn keycloak_builtin_clients_are_kept_only_when_asked() {
    let all = convert(
        Source::Keycloak,
        REALM,
        Options {
            include_builtin: true,
        },
    )
    .unwrap();
    let console = client(&all, "security-admin-console");
    assert_eq!(console.client_name, "security-admin-console");
    assert!(about(&all, "security-admin-console")
        .iter()
        .any(|(f, m)| *f == "redirectUris" && m.contains("/admin/studio/console/*")));
    assert_eq!(all.skipped, ["saml-intranet (protocol saml)"]);
}

#[test]
fn a_duende_configuration_maps_every_field_it_can() {
    let conversion = convert(Source::Duende, DUENDE, Options::default()).unwrap();
    assert_eq!(
        client(&conversion, "billing-web"),
        &DocumentClient {
            client_id: "billing-web".into(),
            client_name: "Billing".into(),
            client_uri: Some("https://billing.example.com".into()),
            require_client_secret: true,
            client_secret_env: None,
            enabled: true,
            offline_access: true,
            require_pkce: true,
            grant_types: strings(&["authorization_code", "client_credentials", "refresh_token"]),
            redirect_uris: strings(&["https://billing.example.com/signin-oidc"]),
            post_logout_redirect_uris: strings(&[
                "https://billing.example.com/signout-callback-oidc"
            ]),
            allowed_cors_origins: strings(&["https://billing.example.com"]),
            allowed_scopes: strings(&["openid", "profile", "email", "octo_api"]),
            logo_uri: Some("https://billing.example.com/logo.png".into()),
            ..DocumentClient::default()
        }
    );
    let spa = client(&conversion, "spa");
    assert!(!spa.require_client_secret && !spa.require_pkce && !spa.enabled);
    assert_eq!(spa.grant_types, ["authorization_code"]);
    assert_eq!(spa.redirect_uris, ["http://localhost:5173/callback"]);
    assert_eq!(spa.allowed_scopes, ["openid", "profile"]);
    let worker = client(&conversion, "worker");
    assert_eq!(worker.client_name, "worker");
    assert_eq!(worker.grant_types, ["client_credentials"]);
    assert_eq!(
        conversion.need_secret,
        ["billing-web", "worker", "camel-case"]
    );
    let camel = client(&conversion, "camel-case");
    assert_eq!(camel.client_name, "Written in camelCase");
    assert_eq!(camel.grant_types, ["client_credentials"]);
    assert!(has(
        &about(&conversion, "camel-case"),
        "signingCredential",
        "value not shown"
    ));

    let billing = about(&conversion, "billing-web");
    assert!(has(&billing, "RedirectUris", "wildcards"));
    assert!(has(
        &billing,
        "AllowedCorsOrigins",
        "https://app.example.com/"
    ));
    assert!(has(&billing, "AccessTokenLifetime", "900"));
    assert!(has(&billing, "RequireConsent", "no equivalent"));
    assert!(!billing.iter().any(|(f, _)| *f == "ClientSecrets"));
    let spa = about(&conversion, "spa");
    for (field, words) in [
        ("AllowedGrantTypes", "implicit"),
        ("AllowedGrantTypes", "hybrid"),
        ("AllowedGrantTypes", "password"),
        (
            "AllowedGrantTypes",
            "client_credentials needs a client secret",
        ),
        ("AllowedScopes", "\"bad scope\" left out"),
        ("AllowAccessTokensViaBrowser", "no equivalent"),
    ] {
        assert!(has(&spa, field, words), "{field}: {words} in {spa:#?}");
    }
    assert!(has(
        &about(&conversion, "worker"),
        "AllowedGrantTypes",
        "urn:openid:params:grant-type:ciba"
    ));
    let report = conversion.report();
    assert!(!report.contains("K7gNU3sdo"), "no secret in the report");
    assert!(!report.contains("never-shown"), "{report}");
    for converted in &conversion.document.clients {
        ClientSettings::validate(&converted.settings_input()).unwrap();
    }
}

#[test]
fn what_is_not_such_a_file_says_so() {
    let error = convert(Source::Keycloak, "{\"realm\": \"x\"}", Options::default())
        .unwrap_err()
        .to_string();
    assert!(error.contains("clients"), "{error}");
    let error = convert(Source::Duende, "{}", Options::default())
        .unwrap_err()
        .to_string();
    assert!(error.contains("Clients"), "{error}");
    assert!(convert(Source::Duende, "not json", Options::default()).is_err());
    // The bare array of clients, as some appsettings keep it.
    let bare = convert(
        Source::Duende,
        r#"[{"ClientId": "a", "AllowedGrantTypes": ["client_credentials"]}]"#,
        Options::default(),
    )
    .unwrap();
    assert_eq!(bare.document.clients.len(), 1);
}
