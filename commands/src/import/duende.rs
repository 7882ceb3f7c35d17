//! A Duende IdentityServer `Clients` configuration (appsettings JSON), read as .NET binds it
//! (keys case-insensitively).

use registry_domain::values::{CorsOrigin, GrantType, RedirectUri, Scope};
use serde_json::{Map, Value};

use super::{page, shown, strings, text, Builder, Conversion, Finding};
use crate::documents::DocumentClient;

/// The fields of a Duende client that are mapped (`ClientSecrets`: never copied).
const DUENDE_FIELDS: [&str; 14] = [
    "ClientId",
    "ClientName",
    "ClientUri",
    "LogoUri",
    "RequireClientSecret",
    "Enabled",
    "AllowOfflineAccess",
    "RequirePkce",
    "AllowedGrantTypes",
    "RedirectUris",
    "PostLogoutRedirectUris",
    "AllowedCorsOrigins",
    "AllowedScopes",
    "ClientSecrets",
];

/// The `Clients` array of an appsettings file (`IdentityServer:Clients`, `Clients`, or the
/// array itself).
fn duende_clients(value: &Value) -> Option<&Vec<Value>> {
    value
        .as_array()
        .or_else(|| value["Clients"].as_array())
        .or_else(|| value["IdentityServer"]["Clients"].as_array())
        .or_else(|| {
            value
                .as_object()?
                .values()
                .find_map(|section| section["Clients"].as_array())
        })
}

pub(super) fn convert(settings: &Value) -> anyhow::Result<Conversion> {
    let clients = duende_clients(settings).ok_or_else(|| {
        anyhow::anyhow!("no `Clients` array (looked at the top level and IdentityServer:Clients)")
    })?;
    let mut conversion = Conversion::default();
    for (index, client) in clients.iter().enumerate() {
        let client = canonical_keys(client);
        let Some(source_id) = text(&client["ClientId"]) else {
            conversion.findings.push(Finding {
                client: None,
                field: format!("Clients[{index}].ClientId"),
                message: "missing: the client was skipped".into(),
            });
            continue;
        };
        if !conversion.accepts_id(&source_id, "ClientId") {
            continue;
        }
        let mut b = Builder {
            source_id: source_id.clone(),
            findings: &mut conversion.findings,
        };
        let entry = entry(&mut b, &client, &source_id);
        b.check(&entry);
        if entry.require_client_secret {
            conversion.need_secret.push(source_id);
        }
        conversion.document.clients.push(entry);
    }
    Ok(conversion)
}

/// The client with its keys spelled as [`DUENDE_FIELDS`] spells them: .NET's configuration
/// binding ignores case, so `clientId` is `ClientId`.
fn canonical_keys(client: &Value) -> Value {
    let empty = Map::new();
    Value::Object(
        client
            .as_object()
            .unwrap_or(&empty)
            .iter()
            .map(|(key, value)| {
                let name = DUENDE_FIELDS
                    .iter()
                    .find(|known| known.eq_ignore_ascii_case(key))
                    .map_or_else(|| key.clone(), |known| (*known).to_owned());
                (name, value.clone())
            })
            .collect(),
    )
}

/// One Duende client as a document entry, every field not carried over noted.
fn entry(b: &mut Builder<'_>, client: &Value, source_id: &str) -> DocumentClient {
    let flag = |name: &str, default: bool| client[name].as_bool().unwrap_or(default);
    let client_uri = page(b, "ClientUri", &client["ClientUri"]);
    let logo_uri = page(b, "LogoUri", &client["LogoUri"]);
    let require_client_secret = flag("RequireClientSecret", true);
    let offline_access = flag("AllowOfflineAccess", false);
    let grant_types = grant_types(b, client, require_client_secret, offline_access);
    let mut list =
        |field: &str, rule: fn(&str) -> Result<(), registry_domain::values::ValueError>| {
            b.list(field, strings(&client[field]), rule)
        };
    let redirect_uris = list("RedirectUris", |v| RedirectUri::parse(v).map(drop));
    let post_logout_redirect_uris = list("PostLogoutRedirectUris", |v| {
        RedirectUri::parse(v).map(drop)
    });
    let allowed_cors_origins = list("AllowedCorsOrigins", |v| CorsOrigin::parse(v).map(drop));
    let allowed_scopes = list("AllowedScopes", |v| Scope::parse(v).map(drop));
    for (field, value) in client.as_object().into_iter().flatten() {
        if !DUENDE_FIELDS.contains(&field.as_str()) {
            b.note(
                field.clone(),
                format!("{} has no equivalent here: not kept", shown(field, value)),
            );
        }
    }
    DocumentClient {
        client_id: source_id.to_owned(),
        client_name: text(&client["ClientName"]).unwrap_or_else(|| source_id.to_owned()),
        client_uri,
        require_client_secret,
        client_secret_env: None,
        enabled: flag("Enabled", true),
        offline_access,
        require_pkce: flag("RequirePkce", true),
        grant_types,
        redirect_uris,
        post_logout_redirect_uris,
        allowed_cors_origins,
        allowed_scopes,
        logo_uri,
        ..DocumentClient::default()
    }
}

/// The grant types, the flows this registry does not offer noted (hybrid becomes
/// authorization_code; offline access is the refresh_token grant here).
fn grant_types(
    b: &mut Builder<'_>,
    client: &Value,
    require_client_secret: bool,
    offline_access: bool,
) -> Vec<String> {
    let mut grant_types = Vec::new();
    for grant in strings(&client["AllowedGrantTypes"]) {
        match grant.as_str() {
            "client_credentials" if !require_client_secret => b.note(
                "AllowedGrantTypes",
                "client_credentials needs a client secret (RequireClientSecret is false): left out",
            ),
            "authorization_code" | "client_credentials" | "refresh_token"
            | "urn:ietf:params:oauth:grant-type:device_code" => grant_types.push(grant),
            "hybrid" => {
                b.note(
                    "AllowedGrantTypes",
                    "hybrid is not offered: converted to authorization_code",
                );
                grant_types.push("authorization_code".to_owned());
            }
            "implicit" => b.note(
                "AllowedGrantTypes",
                "implicit is not offered (OAuth 2.0 Security BCP): use authorization_code with PKCE",
            ),
            "password" => b.note(
                "AllowedGrantTypes",
                "password is not offered (OAuth 2.0 Security BCP)",
            ),
            other => b.note(
                "AllowedGrantTypes",
                format!("{other:?} is not offered here: left out"),
            ),
        }
    }
    if offline_access {
        // Duende issues refresh tokens to clients with AllowOfflineAccess; here that is the
        // refresh_token grant.
        grant_types.push("refresh_token".to_owned());
    }
    grant_types.sort_by_key(|g| GrantType::parse(g).ok());
    grant_types.dedup();
    grant_types
}
