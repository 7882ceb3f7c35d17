//! A Keycloak realm export (`realm.json`): its `clients` array, with Keycloak's defaults and
//! shorthands (`+` web origins) understood, its built-in clients skipped unless asked for.

use std::collections::BTreeSet;

use registry_domain::values::{ClientUri, CorsOrigin, GrantType, RedirectUri, Scope};
use serde_json::Value;

use super::{
    is_keycloak_default, origin_of, shown, strings, text, Builder, Conversion, Finding, Options,
    KEYCLOAK_BUILTIN,
};
use crate::documents::DocumentClient;

/// Keycloak client scopes that configure its token mappers rather than name an OAuth scope a
/// client requests.
const KEYCLOAK_INTERNAL_SCOPES: [&str; 6] = [
    "web-origins",
    "acr",
    "roles",
    "basic",
    "role_list",
    "microprofile-jwt",
];

pub(super) fn convert(realm: &Value, options: Options) -> anyhow::Result<Conversion> {
    let clients = realm["clients"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("a Keycloak realm export has a `clients` array"))?;
    let mut conversion = Conversion::default();
    for (index, client) in clients.iter().enumerate() {
        let Some(source_id) = text(&client["clientId"]) else {
            conversion.findings.push(Finding {
                client: None,
                field: format!("clients[{index}].clientId"),
                message: "missing: the client was skipped".into(),
            });
            continue;
        };
        if KEYCLOAK_BUILTIN.contains(&source_id.as_str()) && !options.include_builtin {
            conversion
                .skipped
                .push(format!("{source_id} (Keycloak built-in)"));
            continue;
        }
        let protocol = client["protocol"].as_str().unwrap_or("openid-connect");
        if protocol != "openid-connect" {
            conversion
                .skipped
                .push(format!("{source_id} (protocol {protocol})"));
            continue;
        }
        if !conversion.accepts_id(&source_id, "clientId") {
            continue;
        }
        let mut b = Builder {
            source_id: source_id.clone(),
            findings: &mut conversion.findings,
        };
        let attributes = client["attributes"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let attribute = |name: &str| attributes.get(name).and_then(Value::as_str);

        let client_name = match text(&client["name"]) {
            Some(name) if name.starts_with("${") => {
                b.note(
                    "name",
                    format!("{name} is a Keycloak message key: the client id is used as the name"),
                );
                source_id.clone()
            }
            Some(name) => name,
            None => source_id.clone(),
        };

        let root = text(&client["rootUrl"]);
        let base = text(&client["baseUrl"]);
        let absolute_base = base
            .as_ref()
            .filter(|b| url::Url::parse(b).is_ok())
            .cloned();
        let client_uri = match (root.clone(), absolute_base) {
            (Some(root), _) => Some(root),
            (None, Some(base)) => Some(base),
            (None, None) => None,
        };
        if let (Some(root), Some(base)) = (&root, &base) {
            if root != base {
                b.note(
                    "baseUrl",
                    format!("{base:?} not kept: client_uri is the rootUrl {root:?}"),
                );
            }
        }
        let client_uri = client_uri.and_then(|uri| match ClientUri::parse(&uri) {
            Ok(_) => Some(uri),
            Err(e) => {
                b.note("rootUrl", format!("{uri:?} left out: {}", e.0));
                None
            }
        });

        let public = client["publicClient"].as_bool().unwrap_or(false);
        if client["bearerOnly"].as_bool() == Some(true) {
            b.note(
                "bearerOnly",
                "a bearer-only client never signs anyone in: converted as a confidential client; \
                 consider not registering it",
            );
        }
        let mut grant_types = Vec::new();
        if client["standardFlowEnabled"].as_bool().unwrap_or(true) {
            grant_types.push(GrantType::AuthorizationCode.as_str().to_owned());
        }
        if client["serviceAccountsEnabled"].as_bool() == Some(true) {
            if public {
                b.note(
                    "serviceAccountsEnabled",
                    "a public client cannot use client_credentials: left out",
                );
            } else {
                grant_types.push(GrantType::ClientCredentials.as_str().to_owned());
            }
        }
        if attribute("oauth2.device.authorization.grant.enabled") == Some("true") {
            grant_types.push(GrantType::DeviceCode.as_str().to_owned());
        }
        if client["implicitFlowEnabled"].as_bool() == Some(true) {
            b.note(
                "implicitFlowEnabled",
                "the implicit flow is not offered (OAuth 2.0 Security BCP): use authorization_code with PKCE",
            );
        }
        if client["directAccessGrantsEnabled"].as_bool() == Some(true) {
            b.note(
                "directAccessGrantsEnabled",
                "the password grant is not offered (OAuth 2.0 Security BCP)",
            );
        }

        let mut scopes: Vec<String> = Vec::new();
        let mut offline_access = false;
        let declared: Vec<String> = strings(&client["defaultClientScopes"])
            .into_iter()
            .chain(strings(&client["optionalClientScopes"]))
            .collect();
        let mut internal = Vec::new();
        for scope in declared {
            if scope == "offline_access" {
                offline_access = true;
            }
            if KEYCLOAK_INTERNAL_SCOPES.contains(&scope.as_str()) {
                internal.push(scope);
            } else {
                scopes.push(scope);
            }
        }
        if !internal.is_empty() {
            b.note(
                "defaultClientScopes",
                format!(
                    "{} configure Keycloak's token mappers, not scopes a client requests: left out",
                    internal.join(", ")
                ),
            );
        }
        let signs_in = grant_types.iter().any(|g| {
            g == GrantType::AuthorizationCode.as_str() || g == GrantType::DeviceCode.as_str()
        });
        if signs_in && !scopes.iter().any(|s| s == "openid") {
            // Keycloak answers `openid` for every OIDC client; here it must be allowed.
            scopes.insert(0, "openid".to_owned());
        }
        if offline_access {
            grant_types.push(GrantType::RefreshToken.as_str().to_owned());
        }
        grant_types.sort_by_key(|g| GrantType::parse(g).ok());
        let allowed_scopes = b.list("defaultClientScopes", scopes, Scope::parse);

        let resolve = |uri: &str| -> String {
            match (&root, uri.starts_with('/')) {
                (Some(root), true) => format!("{}{uri}", root.trim_end_matches('/')),
                _ => uri.to_owned(),
            }
        };
        let resolved: Vec<String> = strings(&client["redirectUris"])
            .iter()
            .map(|u| resolve(u))
            .collect();
        let redirect_uris = b.list("redirectUris", resolved.clone(), RedirectUri::parse);
        let logout_source: Vec<String> = attribute("post.logout.redirect.uris")
            .map(|v| {
                v.split("##")
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let mut logout = Vec::new();
        for uri in logout_source {
            if uri == "+" {
                b.note(
                    "attributes.\"post.logout.redirect.uris\"",
                    "\"+\" (the redirect URIs) expanded to the valid redirect URIs",
                );
                logout.extend(redirect_uris.iter().cloned());
            } else {
                logout.push(resolve(&uri));
            }
        }
        let post_logout_redirect_uris = b.list(
            "attributes.\"post.logout.redirect.uris\"",
            logout,
            RedirectUri::parse,
        );
        let mut origins = Vec::new();
        for origin in strings(&client["webOrigins"]) {
            if origin == "+" {
                // Keycloak takes the origins of every redirect URI, wildcard ones included.
                let derived: BTreeSet<String> =
                    resolved.iter().filter_map(|u| origin_of(u)).collect();
                b.note(
                    "webOrigins",
                    format!(
                        "\"+\" (the redirect URIs' origins) expanded to {}",
                        if derived.is_empty() {
                            "nothing (no valid redirect URI)".to_owned()
                        } else {
                            derived.iter().cloned().collect::<Vec<_>>().join(", ")
                        }
                    ),
                );
                origins.extend(derived);
            } else {
                origins.push(origin);
            }
        }
        let allowed_cors_origins = b.list("webOrigins", origins, CorsOrigin::parse);

        let require_pkce = match attribute("pkce.code.challenge.method") {
            Some("S256") => true,
            Some("plain") => {
                b.note(
                    "attributes.\"pkce.code.challenge.method\"",
                    "plain PKCE is not offered: converted to required PKCE (S256)",
                );
                true
            }
            _ => false,
        };

        for (field, value) in client.as_object().into_iter().flatten() {
            let known = [
                "id",
                "clientId",
                "name",
                "rootUrl",
                "baseUrl",
                "adminUrl",
                "enabled",
                "publicClient",
                "standardFlowEnabled",
                "serviceAccountsEnabled",
                "implicitFlowEnabled",
                "directAccessGrantsEnabled",
                "bearerOnly",
                "redirectUris",
                "webOrigins",
                "defaultClientScopes",
                "optionalClientScopes",
                "attributes",
                "secret",
                "clientAuthenticatorType",
                "protocol",
                "surrogateAuthRequired",
                "alwaysDisplayInConsole",
                "nodeReRegistrationTimeout",
                "access",
            ];
            // Fields Keycloak sets to true by default.
            let default_true = ["fullScopeAllowed", "frontchannelLogout"];
            if known.contains(&field.as_str()) {
                continue;
            }
            let at_default = if default_true.contains(&field.as_str()) {
                value.as_bool() == Some(true)
            } else {
                is_keycloak_default(value)
            };
            if !at_default {
                b.note(
                    field.clone(),
                    format!("{} has no equivalent here: not kept", shown(field, value)),
                );
            }
        }
        if let Some(admin) = text(&client["adminUrl"]) {
            b.note(
                "adminUrl",
                format!("{admin:?}: Keycloak's back-channel admin URL has no equivalent here"),
            );
        }
        if client["clientAuthenticatorType"]
            .as_str()
            .is_some_and(|t| t != "client-secret")
        {
            b.note(
                "clientAuthenticatorType",
                format!(
                    "{} is not offered: the client authenticates with a secret here",
                    client["clientAuthenticatorType"]
                ),
            );
        }
        let mapped_attributes = [
            "post.logout.redirect.uris",
            "oauth2.device.authorization.grant.enabled",
            "pkce.code.challenge.method",
            "client.secret.creation.time",
            "use.refresh.tokens",
            "backchannel.logout.session.required",
            "frontchannel.logout.session.required",
            "display.on.consent.screen",
        ];
        for (name, value) in &attributes {
            if mapped_attributes.contains(&name.as_str()) || is_keycloak_default(value) {
                continue;
            }
            b.note(
                format!("attributes.{name:?}"),
                format!("{} has no equivalent here: not kept", shown(name, value)),
            );
        }

        let entry = DocumentClient {
            client_id: source_id.clone(),
            client_name,
            client_uri,
            require_client_secret: !public,
            client_secret_env: None,
            enabled: client["enabled"].as_bool().unwrap_or(true),
            offline_access,
            require_pkce,
            grant_types,
            redirect_uris,
            post_logout_redirect_uris,
            allowed_cors_origins,
            allowed_scopes,
        };
        b.check(&entry);
        if !public {
            conversion.need_secret.push(source_id);
        }
        conversion.document.clients.push(entry);
    }
    Ok(conversion)
}
