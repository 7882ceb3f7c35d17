//! A Keycloak realm export (`realm.json`): its `clients` array, with Keycloak's defaults and
//! shorthands (`+` web origins) understood, its built-in clients skipped unless asked for.

use std::collections::BTreeSet;

use registry_domain::values::{ClientUri, CorsOrigin, GrantType, RedirectUri, Scope};
use serde_json::{Map, Value};

use super::{
    is_keycloak_default, origin_of, page, shown, strings, text, Builder, Conversion, Finding,
    Options, KEYCLOAK_BUILTIN,
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

/// Client fields the conversion reads (or knows to leave alone).
const KNOWN_FIELDS: [&str; 25] = [
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

/// Fields Keycloak sets to true by default.
const DEFAULT_TRUE: [&str; 2] = ["fullScopeAllowed", "frontchannelLogout"];

/// Attributes the conversion reads (or knows to leave alone).
const MAPPED_ATTRIBUTES: [&str; 11] = [
    "post.logout.redirect.uris",
    "logoUri",
    "policyUri",
    "tosUri",
    "oauth2.device.authorization.grant.enabled",
    "pkce.code.challenge.method",
    "client.secret.creation.time",
    "use.refresh.tokens",
    "backchannel.logout.session.required",
    "frontchannel.logout.session.required",
    "display.on.consent.screen",
];

pub(super) fn convert(realm: &Value, options: Options) -> anyhow::Result<Conversion> {
    let clients = realm["clients"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("a Keycloak realm export has a `clients` array"))?;
    let mut conversion = Conversion::default();
    for (index, client) in clients.iter().enumerate() {
        let Some(source_id) = admitted_id(&mut conversion, index, client, options) else {
            continue;
        };
        let mut b = Builder {
            source_id: source_id.clone(),
            findings: &mut conversion.findings,
        };
        let entry = entry(&mut b, client, &source_id);
        b.check(&entry);
        if entry.require_client_secret {
            conversion.need_secret.push(source_id);
        }
        conversion.document.clients.push(entry);
    }
    Ok(conversion)
}

/// The id of a client to convert, or `None` (with the reason noted) for one that is not: no
/// id, a Keycloak built-in, another protocol, an id this registry refuses or a duplicate.
fn admitted_id(
    conversion: &mut Conversion,
    index: usize,
    client: &Value,
    options: Options,
) -> Option<String> {
    let Some(source_id) = text(&client["clientId"]) else {
        conversion.findings.push(Finding {
            client: None,
            field: format!("clients[{index}].clientId"),
            message: "missing: the client was skipped".into(),
        });
        return None;
    };
    if KEYCLOAK_BUILTIN.contains(&source_id.as_str()) && !options.include_builtin {
        conversion
            .skipped
            .push(format!("{source_id} (Keycloak built-in)"));
        return None;
    }
    let protocol = client["protocol"].as_str().unwrap_or("openid-connect");
    if protocol != "openid-connect" {
        conversion
            .skipped
            .push(format!("{source_id} (protocol {protocol})"));
        return None;
    }
    conversion
        .accepts_id(&source_id, "clientId")
        .then_some(source_id)
}

/// One Keycloak client as a document entry, every field not carried over noted.
fn entry(b: &mut Builder<'_>, client: &Value, source_id: &str) -> DocumentClient {
    let attributes = client["attributes"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let public = client["publicClient"].as_bool().unwrap_or(false);
    let (root, client_uri) = client_uri(b, client);
    let mut grant_types = grant_types(b, client, &attributes, public);
    let (allowed_scopes, offline_access) = scopes(b, client, &mut grant_types);
    let (redirect_uris, post_logout_redirect_uris, allowed_cors_origins) =
        uris(b, client, &attributes, root.as_deref());
    let require_pkce = require_pkce(b, &attributes);
    unmapped(b, client, &attributes);
    DocumentClient {
        client_id: source_id.to_owned(),
        client_name: client_name(b, client, source_id),
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
        logo_uri: attribute_page(b, &attributes, "logoUri"),
        policy_uri: attribute_page(b, &attributes, "policyUri"),
        tos_uri: attribute_page(b, &attributes, "tosUri"),
        ..DocumentClient::default()
    }
}

/// A page of the client kept in an attribute (Keycloak's `logoUri`, `policyUri`, `tosUri`).
fn attribute_page(
    b: &mut Builder<'_>,
    attributes: &Map<String, Value>,
    name: &str,
) -> Option<String> {
    let value = attributes.get(name)?;
    page(b, &format!("attributes.{name}"), value)
}

fn client_name(b: &mut Builder<'_>, client: &Value, source_id: &str) -> String {
    match text(&client["name"]) {
        Some(name) if name.starts_with("${") => {
            b.note(
                "name",
                format!("{name} is a Keycloak message key: the client id is used as the name"),
            );
            source_id.to_owned()
        }
        Some(name) => name,
        None => source_id.to_owned(),
    }
}

/// The root URL (relative URIs are resolved against it) and the client URI.
fn client_uri(b: &mut Builder<'_>, client: &Value) -> (Option<String>, Option<String>) {
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
    (root, client_uri)
}

/// The grant types, the flows this registry does not offer noted.
fn grant_types(
    b: &mut Builder<'_>,
    client: &Value,
    attributes: &Map<String, Value>,
    public: bool,
) -> Vec<String> {
    let attribute = |name: &str| attributes.get(name).and_then(Value::as_str);
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
    grant_types
}

/// The scopes a client may request (Keycloak's mapper scopes left out, `openid` added where
/// it signs people in) and whether it has offline access (a refresh token grant added then).
fn scopes(
    b: &mut Builder<'_>,
    client: &Value,
    grant_types: &mut Vec<String>,
) -> (Vec<String>, bool) {
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
    let signs_in = grant_types
        .iter()
        .any(|g| g == GrantType::AuthorizationCode.as_str() || g == GrantType::DeviceCode.as_str());
    if signs_in && !scopes.iter().any(|s| s == "openid") {
        // Keycloak answers `openid` for every OIDC client; here it must be allowed.
        scopes.insert(0, "openid".to_owned());
    }
    if offline_access {
        grant_types.push(GrantType::RefreshToken.as_str().to_owned());
    }
    grant_types.sort_by_key(|g| GrantType::parse(g).ok());
    let allowed_scopes = b.list("defaultClientScopes", scopes, Scope::parse);
    (allowed_scopes, offline_access)
}

/// Redirect URIs (relative ones resolved against the root URL), post-logout redirect URIs and
/// CORS origins, Keycloak's `+` shorthands expanded.
fn uris(
    b: &mut Builder<'_>,
    client: &Value,
    attributes: &Map<String, Value>,
    root: Option<&str>,
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let resolve = |uri: &str| -> String {
        match (root, uri.starts_with('/')) {
            (Some(root), true) => format!("{}{uri}", root.trim_end_matches('/')),
            _ => uri.to_owned(),
        }
    };
    let resolved: Vec<String> = strings(&client["redirectUris"])
        .iter()
        .map(|u| resolve(u))
        .collect();
    let redirect_uris = b.list("redirectUris", resolved.clone(), RedirectUri::parse);
    let logout = logout_uris(b, attributes, &redirect_uris, resolve);
    let post_logout_redirect_uris = b.list(
        "attributes.\"post.logout.redirect.uris\"",
        logout,
        RedirectUri::parse,
    );
    let origins = origins(b, client, &resolved);
    let allowed_cors_origins = b.list("webOrigins", origins, CorsOrigin::parse);
    (
        redirect_uris,
        post_logout_redirect_uris,
        allowed_cors_origins,
    )
}

/// The post-logout redirect URIs (a `##`-separated attribute; `+`: the redirect URIs).
fn logout_uris(
    b: &mut Builder<'_>,
    attributes: &Map<String, Value>,
    redirect_uris: &[String],
    resolve: impl Fn(&str) -> String,
) -> Vec<String> {
    let listed = attributes
        .get("post.logout.redirect.uris")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut logout = Vec::new();
    for uri in listed.split("##").filter(|s| !s.is_empty()) {
        if uri == "+" {
            b.note(
                "attributes.\"post.logout.redirect.uris\"",
                "\"+\" (the redirect URIs) expanded to the valid redirect URIs",
            );
            logout.extend(redirect_uris.iter().cloned());
        } else {
            logout.push(resolve(uri));
        }
    }
    logout
}

/// The web origins (`+`: the origins of every redirect URI, wildcard ones included, as
/// Keycloak takes them).
fn origins(b: &mut Builder<'_>, client: &Value, resolved: &[String]) -> Vec<String> {
    let mut origins = Vec::new();
    for origin in strings(&client["webOrigins"]) {
        if origin != "+" {
            origins.push(origin);
            continue;
        }
        let derived: BTreeSet<String> = resolved.iter().filter_map(|u| origin_of(u)).collect();
        let expanded = if derived.is_empty() {
            "nothing (no valid redirect URI)".to_owned()
        } else {
            derived.iter().cloned().collect::<Vec<_>>().join(", ")
        };
        b.note(
            "webOrigins",
            format!("\"+\" (the redirect URIs' origins) expanded to {expanded}"),
        );
        origins.extend(derived);
    }
    origins
}

fn require_pkce(b: &mut Builder<'_>, attributes: &Map<String, Value>) -> bool {
    match attributes
        .get("pkce.code.challenge.method")
        .and_then(Value::as_str)
    {
        Some("S256") => true,
        Some("plain") => {
            b.note(
                "attributes.\"pkce.code.challenge.method\"",
                "plain PKCE is not offered: converted to required PKCE (S256)",
            );
            true
        }
        _ => false,
    }
}

/// Notes every field and attribute set to something other than Keycloak's default that has
/// no equivalent here.
fn unmapped(b: &mut Builder<'_>, client: &Value, attributes: &Map<String, Value>) {
    for (field, value) in client.as_object().into_iter().flatten() {
        if KNOWN_FIELDS.contains(&field.as_str()) {
            continue;
        }
        let at_default = if DEFAULT_TRUE.contains(&field.as_str()) {
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
    for (name, value) in attributes {
        if MAPPED_ATTRIBUTES.contains(&name.as_str()) || is_keycloak_default(value) {
            continue;
        }
        b.note(
            format!("attributes.{name:?}"),
            format!("{} has no equivalent here: not kept", shown(name, value)),
        );
    }
}
