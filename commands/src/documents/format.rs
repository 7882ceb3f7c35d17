//! The clients-as-code document: one YAML or JSON file with a top-level `clients` array (each
//! entry with exactly the API's field names) and an optional `unmanaged` list of client ids
//! that apply never touches. No secret is ever written in it: a confidential client may name
//! one by reference (`client_secret_env: NAME`), resolved where the file is applied.

use registry_domain::client::{ClientAbout, ClientAboutInput, ClientKeysInput};
use registry_domain::{ClientSettings, ClientSettingsInput};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A document of clients.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientsDocument {
    /// The clients this document manages, each as the API describes it.
    pub clients: Vec<DocumentClient>,
    /// Client ids that apply never changes or deletes, even with prune (e.g. clients managed
    /// by hand or by another pipeline).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmanaged: Vec<String>,
}

fn yes() -> bool {
    true
}

fn authorization_code() -> Vec<String> {
    vec!["authorization_code".to_owned()]
}

/// One client of a document: the API's fields, the guide's defaults where one is left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentClient {
    /// Unique id: 1–128 of `A-Z a-z 0-9 - . _ ~`.
    #[schema(example = "data-refinery-studio")]
    pub client_id: String,
    /// Display name (1–200 characters).
    pub client_name: String,
    /// Base URL of the client application (`https`, or `http` on loopback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// Confidential client that authenticates with a secret. Default `true`.
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub require_client_secret: bool,
    /// For a confidential client: the environment variable holding its secret where the
    /// document is applied (used when the client is created). Never the secret itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Za-z_][A-Za-z0-9_]*$", example = "STUDIO_CLIENT_SECRET")]
    pub client_secret_env: Option<String>,
    /// Whether the client can be used for authentication. Default `true`.
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub enabled: bool,
    /// Allow refresh tokens. Default `false`.
    #[serde(default)]
    #[schema(default = false)]
    pub offline_access: bool,
    /// Require PKCE for the authorization code grant. Default `true`.
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub require_pkce: bool,
    /// Allowed grant types. Default `["authorization_code"]`.
    #[serde(default = "authorization_code")]
    #[schema(default = json!(["authorization_code"]))]
    pub grant_types: Vec<String>,
    /// Where to redirect after login.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Where to redirect after logout.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Origins allowed to call the identity service from a browser.
    #[serde(default)]
    pub allowed_cors_origins: Vec<String>,
    /// Scopes the client may request.
    #[serde(default)]
    pub allowed_scopes: Vec<String>,
    /// How it authenticates at the token endpoint: `client_secret_basic`,
    /// `client_secret_post`, `private_key_jwt` (with `jwks` or `jwks_uri`, no secret) or
    /// `none`; left out: the default for `require_client_secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    /// `web` (default) or `native` (a mobile, desktop or command-line app, RFC 8252).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "native")]
    pub application_type: Option<String>,
    /// The client's logo (`https`, or `http` on loopback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// Its terms of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    /// Its privacy policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    /// E-mail addresses of the people responsible for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    /// The software's identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    /// The software's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    /// Its public signing keys, a JWK Set (RFC 7517): `RSA`, `EC` P-256 or `OKP` Ed25519
    /// public keys only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// Where it publishes its JWK Set (`https`); not with `jwks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
}

impl DocumentClient {
    /// The settings this entry asks for, as a command takes them.
    pub fn settings_input(&self) -> ClientSettingsInput {
        ClientSettingsInput {
            client_name: Some(self.client_name.clone()),
            client_uri: self.client_uri.clone(),
            require_client_secret: self.require_client_secret,
            enabled: self.enabled,
            offline_access: self.offline_access,
            require_pkce: self.require_pkce,
            grant_types: self.grant_types.clone(),
            redirect_uris: self.redirect_uris.clone(),
            post_logout_redirect_uris: self.post_logout_redirect_uris.clone(),
            allowed_cors_origins: self.allowed_cors_origins.clone(),
            allowed_scopes: self.allowed_scopes.clone(),
            // A document states the whole client: its description too (none given: none).
            about: Some(ClientAboutInput {
                application_type: self.application_type.clone(),
                logo_uri: self.logo_uri.clone(),
                tos_uri: self.tos_uri.clone(),
                policy_uri: self.policy_uri.clone(),
                contacts: self.contacts.clone(),
                software_id: self.software_id.clone(),
                software_version: self.software_version.clone(),
            }),
            token_endpoint_auth_method: Some(self.token_endpoint_auth_method.clone()),
            keys: Some(ClientKeysInput {
                jwks: self.jwks.clone(),
                jwks_uri: self.jwks_uri.clone(),
            }),
        }
    }

    /// A registered client as a document entry (what applies back to it).
    pub fn of(client_id: &str, s: &ClientSettings) -> Self {
        let strings = |values: Vec<String>| values;
        Self {
            client_id: client_id.to_owned(),
            client_name: s.client_name.to_string(),
            client_uri: s.client_uri.as_ref().map(ToString::to_string),
            require_client_secret: s.require_client_secret,
            client_secret_env: None,
            enabled: s.enabled,
            offline_access: s.offline_access,
            require_pkce: s.require_pkce,
            grant_types: strings(
                s.grant_types
                    .iter()
                    .map(|g| g.as_str().to_owned())
                    .collect(),
            ),
            redirect_uris: s.redirect_uris.iter().map(ToString::to_string).collect(),
            post_logout_redirect_uris: s
                .post_logout_redirect_uris
                .iter()
                .map(ToString::to_string)
                .collect(),
            allowed_cors_origins: s
                .allowed_cors_origins
                .iter()
                .map(ToString::to_string)
                .collect(),
            allowed_scopes: s.allowed_scopes.iter().map(ToString::to_string).collect(),
            token_endpoint_auth_method: (s.token_endpoint_auth_method)
                .map(|method| method.name().to_owned()),
            jwks: s.keys.input().jwks,
            jwks_uri: s.keys.input().jwks_uri,
            ..Self::described(&s.about)
        }
    }

    /// An entry with only `about` of a client set.
    fn described(about: &ClientAbout) -> Self {
        let input = about.input();
        Self {
            application_type: input.application_type.filter(|t| t != "web"),
            logo_uri: input.logo_uri,
            tos_uri: input.tos_uri,
            policy_uri: input.policy_uri,
            contacts: input.contacts,
            software_id: input.software_id,
            software_version: input.software_version,
            ..Self::default()
        }
    }
}

/// The serialisation of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentFormat {
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

impl DocumentFormat {
    /// The media type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Yaml => "application/yaml",
            Self::Json => "application/json",
        }
    }

    /// The format of a request body with this `Content-Type` (YAML by default: JSON is
    /// YAML too).
    pub fn of_content_type(content_type: Option<&str>) -> Option<Self> {
        let essence = content_type
            .unwrap_or("application/yaml")
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/json" => Some(Self::Json),
            "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => {
                Some(Self::Yaml)
            }
            _ => None,
        }
    }
}

/// Writes a document.
///
/// # Errors
/// Serialisation failures (none are expected).
pub fn render(document: &ClientsDocument, format: DocumentFormat) -> anyhow::Result<String> {
    Ok(match format {
        DocumentFormat::Json => {
            let mut text = serde_json::to_string_pretty(document)?;
            text.push('\n');
            text
        }
        DocumentFormat::Yaml => serde_yaml_ng::to_string(document)?,
    })
}
