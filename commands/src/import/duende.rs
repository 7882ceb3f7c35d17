//! A Duende IdentityServer `Clients` configuration (appsettings JSON), read as .NET binds it
//! (keys case-insensitively).

use registry_domain::values::{ClientUri, CorsOrigin, GrantType, RedirectUri, Scope};
use serde_json::{Map, Value};

use super::{shown, strings, text, Builder, Conversion, Finding};
use crate::documents::DocumentClient;

/// The fields of a Duende client that are mapped (`ClientSecrets`: never copied).
const DUENDE_FIELDS: [&str; 13] = [
    "ClientId",
    "ClientName",
    "ClientUri",
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
    let empty = Map::new();
    for (index, client) in clients.iter().enumerate() {
        // .NET's configuration binding ignores case: `clientId` is `ClientId`.
        let client = &Value::Object(
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
        );
        let fields = client.as_object().unwrap_or(&empty);
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
        let flag = |name: &str, default: bool| client[name].as_bool().unwrap_or(default);
        let client_name = text(&client["ClientName"]).unwrap_or_else(|| source_id.clone());
        let client_uri = text(&client["ClientUri"]).and_then(|uri| match ClientUri::parse(&uri) {
            Ok(_) => Some(uri),
            Err(e) => {
                b.note("ClientUri", format!("{uri:?} left out: {}", e.0));
                None
            }
        });
        let require_client_secret = flag("RequireClientSecret", true);
        let offline_access = flag("AllowOfflineAccess", false);
        let mut grant_types = Vec::new();
        for grant in strings(&client["AllowedGrantTypes"]) {
            match grant.as_str() {
                "authorization_code" | "client_credentials" | "refresh_token"
                | "urn:ietf:params:oauth:grant-type:device_code" => {
                    if grant == "client_credentials" && !require_client_secret {
                        b.note(
                            "AllowedGrantTypes",
                            "client_credentials needs a client secret (RequireClientSecret is false): left out",
                        );
                    } else {
                        grant_types.push(grant);
                    }
                }
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
            // Duende issues refresh tokens to clients with AllowOfflineAccess; here that is
            // the refresh_token grant.
            grant_types.push("refresh_token".to_owned());
        }
        grant_types.sort_by_key(|g| GrantType::parse(g).ok());
        grant_types.dedup();
        let redirect_uris = b.list(
            "RedirectUris",
            strings(&client["RedirectUris"]),
            RedirectUri::parse,
        );
        let post_logout_redirect_uris = b.list(
            "PostLogoutRedirectUris",
            strings(&client["PostLogoutRedirectUris"]),
            RedirectUri::parse,
        );
        let allowed_cors_origins = b.list(
            "AllowedCorsOrigins",
            strings(&client["AllowedCorsOrigins"]),
            CorsOrigin::parse,
        );
        let allowed_scopes = b.list(
            "AllowedScopes",
            strings(&client["AllowedScopes"]),
            Scope::parse,
        );
        for (field, value) in fields {
            if !DUENDE_FIELDS.contains(&field.as_str()) {
                b.note(
                    field.clone(),
                    format!("{} has no equivalent here: not kept", shown(field, value)),
                );
            }
        }
        let entry = DocumentClient {
            client_id: source_id.clone(),
            client_name,
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
        };
        b.check(&entry);
        if require_client_secret {
            conversion.need_secret.push(source_id);
        }
        conversion.document.clients.push(entry);
    }
    Ok(conversion)
}
