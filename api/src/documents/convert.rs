//! Conversion from the systems people leave: a Keycloak realm export (`realm.json`, its
//! `clients` array) and a Duende IdentityServer `Clients` configuration (appsettings JSON).
//!
//! The result is a clients document, to be planned and applied like any other, and a report of
//! everything that could not be carried over and why: settings this registry has no
//! equivalent for (implicit flow, password grant, protocol mappers…), values its rules refuse
//! (wildcard redirect URIs, `*` origins), Keycloak's shorthands that were expanded (`+`), and
//! the clients that need a new secret (a secret in those files is never copied).
//!
//! Values are checked one by one with the registry's own rules, so a refused URL is dropped
//! and reported rather than failing the whole client; a client that still breaks a rule
//! between fields (an authorization-code client left with no redirect URI) is kept and
//! reported, and the plan names the error.

use std::collections::BTreeSet;
use std::fmt;

use registry_domain::values::{ClientId, ClientUri, CorsOrigin, GrantType, RedirectUri, Scope};
use registry_domain::{ClientSettings, ClientSettingsInput};
use serde_json::{Map, Value};

use super::format::{ClientsDocument, DocumentClient};

/// Where a configuration comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// A Keycloak realm export (`realm.json`).
    Keycloak,
    /// A Duende IdentityServer `Clients` section (appsettings JSON).
    Duende,
}

/// Something of the source that was not carried over as it was.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// The source client (its id as written there), if the finding is about one.
    pub client: Option<String>,
    /// The source's field (`webOrigins`, `attributes."pkce.code.challenge.method"`,
    /// `AllowedGrantTypes`…).
    pub field: String,
    /// What happened to it and why.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.client {
            Some(client) => write!(f, "{client}: {}: {}", self.field, self.message),
            None => write!(f, "{}: {}", self.field, self.message),
        }
    }
}

/// A converted configuration.
#[derive(Debug, Clone, Default)]
pub struct Conversion {
    /// The document, in the source's order.
    pub document: ClientsDocument,
    /// What was not carried over, client by client.
    pub findings: Vec<Finding>,
    /// The clients (new ids) that had a secret in the source: they need a new one.
    pub need_secret: Vec<String>,
    /// Source clients left out entirely (built-in, another protocol, an unusable id).
    pub skipped: Vec<String>,
}

impl Conversion {
    /// Whether `source_id` is a client id here; if not, the client is reported under
    /// `field` and skipped.
    fn accepts_id(&mut self, source_id: &str, field: &str) -> bool {
        match ClientId::parse(source_id) {
            Ok(_) => true,
            Err(e) => {
                self.findings.push(Finding {
                    client: Some(source_id.to_owned()),
                    field: field.to_owned(),
                    message: format!("the client was skipped: {}", e.0),
                });
                self.skipped.push(format!("{source_id} (its id)"));
                false
            }
        }
    }

    /// The report written to standard error: one line per finding, then the clients that need
    /// a new secret and the ones skipped.
    pub fn report(&self) -> String {
        let mut out = String::new();
        if !self.findings.is_empty() {
            out.push_str("not carried over as written (client: field: what and why):\n");
        }
        for finding in &self.findings {
            out.push_str(&format!("  {finding}\n"));
        }
        if !self.need_secret.is_empty() {
            out.push_str(&format!(
                "need a new secret (the source's secret was not copied; apply generates one, or \
                 name it with client_secret_env): {}\n",
                self.need_secret.join(", ")
            ));
        }
        if !self.skipped.is_empty() {
            out.push_str(&format!("skipped: {}\n", self.skipped.join(", ")));
        }
        out.push_str(&format!(
            "{} clients converted, {} findings, {} need a new secret, {} skipped\n",
            self.document.clients.len(),
            self.findings.len(),
            self.need_secret.len(),
            self.skipped.len()
        ));
        out
    }
}

/// Options of a conversion.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Keep Keycloak's built-in clients (`account`, `admin-cli`, …), skipped by default.
    pub include_builtin: bool,
}

/// Keycloak's own clients, present in every realm export.
pub const KEYCLOAK_BUILTIN: [&str; 6] = [
    "account",
    "account-console",
    "admin-cli",
    "broker",
    "realm-management",
    "security-admin-console",
];

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

/// Converts a configuration.
///
/// # Errors
/// When the text is not JSON or has no clients where the source keeps them.
pub fn convert(source: Source, text: &str, options: Options) -> anyhow::Result<Conversion> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| anyhow::anyhow!("the file is not JSON ({e})"))?;
    match source {
        Source::Keycloak => keycloak(&value, options),
        Source::Duende => duende(&value),
    }
}

/// Collects one client's entry and findings.
struct Builder<'a> {
    source_id: String,
    findings: &'a mut Vec<Finding>,
}

impl Builder<'_> {
    fn note(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.findings.push(Finding {
            client: Some(self.source_id.clone()),
            field: field.into(),
            message: message.into(),
        });
    }

    /// Keeps the values the registry's `rule` accepts, reporting each refused one.
    fn list<T>(
        &mut self,
        field: &str,
        values: impl IntoIterator<Item = String>,
        rule: impl Fn(&str) -> Result<T, registry_domain::values::ValueError>,
    ) -> Vec<String> {
        let mut kept: Vec<String> = Vec::new();
        for value in values {
            match rule(&value) {
                Ok(_) if !kept.contains(&value) => kept.push(value),
                Ok(_) => {}
                Err(e) => self.note(field, format!("{value:?} left out: {}", e.0)),
            }
        }
        kept
    }

    /// Reports a client that still breaks a rule between its fields.
    fn check(&mut self, client: &DocumentClient) {
        let input: ClientSettingsInput = client.settings_input();
        if let Err(errors) = ClientSettings::validate(&input) {
            for error in errors.errors() {
                self.note(
                    error.field.clone(),
                    format!(
                        "plan will refuse this client until it is fixed: {}",
                        error.message
                    ),
                );
            }
        }
    }
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned).filter(|s| !s.is_empty())
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// Whether a Keycloak field holds what Keycloak does by default (nothing to report).
fn is_keycloak_default(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64().is_some_and(|n| n <= 0),
        Value::String(s) => s.is_empty() || s == "false" || s == "{}" || s == "[]",
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Whether a field may hold a credential: its value is never repeated in the report.
fn sensitive(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "secret",
        "password",
        "credential",
        "private",
        "registrationaccesstoken",
        "registration.access.token",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// A value as the report shows it: at most 80 characters, never a credential's.
fn shown(name: &str, value: &Value) -> String {
    if sensitive(name) {
        return "(value not shown: it may be a credential)".to_owned();
    }
    short(value)
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}

/// The origin (`scheme://host[:port]`) of a URL.
fn origin_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    match parsed.origin() {
        url::Origin::Tuple(..) => Some(parsed.origin().ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

fn keycloak(realm: &Value, options: Options) -> anyhow::Result<Conversion> {
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

fn duende(settings: &Value) -> anyhow::Result<Conversion> {
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

#[cfg(test)]
mod tests {
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
            allowed_cors_origins: strings(&[
                "https://studio.example.com",
                "https://tools.example.com",
            ]),
            allowed_scopes: strings(&[
                "openid",
                "profile",
                "email",
                "address",
                "phone",
                "offline_access",
                "octo_api",
            ]),
        };
        assert_eq!(studio, &expected);
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
                grant_types: strings(&[
                    "authorization_code",
                    "client_credentials",
                    "refresh_token"
                ]),
                redirect_uris: strings(&["https://billing.example.com/signin-oidc"]),
                post_logout_redirect_uris: strings(&[
                    "https://billing.example.com/signout-callback-oidc"
                ]),
                allowed_cors_origins: strings(&["https://billing.example.com"]),
                allowed_scopes: strings(&["openid", "profile", "email", "octo_api"]),
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
}
