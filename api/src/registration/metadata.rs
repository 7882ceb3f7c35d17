//! Client metadata as RFC 7591 §2 writes it (`scope` a string, `response_types`, no
//! `require_client_secret`), to and from the registry's settings.

use registry_domain::client::{ClientAboutInput, ClientKeysInput, FieldError, ValidationErrors};
use registry_domain::registration::RegistrationPolicy;
use registry_domain::{ClientSettings, ClientSettingsInput};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::RegistrationError;

/// What a client sends to register (RFC 7591 §2, §3.1) or to replace its registration (RFC
/// 7592 §2.2). Fields the registry does not know are ignored (RFC 7591 §2).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ClientMetadata {
    /// Required with `PUT` (RFC 7592): the client's id.
    pub client_id: Option<String>,
    /// Display name (required, 1–200 characters).
    pub client_name: Option<String>,
    /// Where to redirect after login.
    pub redirect_uris: Option<Vec<String>>,
    /// Where to redirect after logout (OpenID Connect RP-Initiated Logout).
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// `client_secret_basic` (default), `client_secret_post`, `private_key_jwt` or `none`.
    pub token_endpoint_auth_method: Option<String>,
    /// Default `["authorization_code"]`; `refresh_token` asks for refresh tokens.
    pub grant_types: Option<Vec<String>>,
    /// `["code"]` or nothing (the implicit grant is refused).
    pub response_types: Option<Vec<String>>,
    /// Space-separated scopes; default: the scopes the initial access token's policy allows.
    pub scope: Option<String>,
    /// Base URL of the client.
    pub client_uri: Option<String>,
    /// `web` (default) or `native`.
    pub application_type: Option<String>,
    /// The client's logo.
    pub logo_uri: Option<String>,
    /// Its terms of service.
    pub tos_uri: Option<String>,
    /// Its privacy policy.
    pub policy_uri: Option<String>,
    /// E-mail addresses of the people responsible for it.
    pub contacts: Option<Vec<String>>,
    /// The software's id.
    pub software_id: Option<String>,
    /// The software's version.
    pub software_version: Option<String>,
    /// Its public keys (a JWK Set), for `private_key_jwt`.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Value>,
    /// Where it publishes them (`https`).
    pub jwks_uri: Option<String>,
    /// Not accepted: a software statement is refused (`invalid_software_statement`).
    pub software_statement: Option<Value>,
}

/// What the registry keeps of a client when its registration is replaced through RFC 7592:
/// what RFC 7591 has no field for, which only an administrator sets.
#[derive(Debug, Clone)]
pub struct Kept {
    /// Whether it may authenticate (a client held for approval cannot enable itself).
    pub enabled: bool,
    /// Whether it must use PKCE.
    pub require_pkce: bool,
    /// Its CORS origins.
    pub allowed_cors_origins: Vec<String>,
}

impl Kept {
    /// A new registration's: enabled unless the policy holds it, PKCE, no CORS origin.
    pub fn new(policy: &RegistrationPolicy) -> Self {
        Self {
            enabled: !policy.hold_for_approval,
            require_pkce: true,
            allowed_cors_origins: Vec::new(),
        }
    }

    /// An existing client's; under a policy that holds registrations for approval, a change
    /// is held again (the client is disabled until an administrator enables it).
    pub fn of(settings: &ClientSettings, policy: &RegistrationPolicy) -> Self {
        Self {
            enabled: settings.enabled && !policy.hold_for_approval,
            require_pkce: settings.require_pkce,
            allowed_cors_origins: (settings.allowed_cors_origins.iter())
                .map(ToString::to_string)
                .collect(),
        }
    }
}

impl ClientMetadata {
    /// Reads a request body: a JSON object whose known fields have the right types.
    ///
    /// # Errors
    /// `invalid_client_metadata` naming the field of the wrong type.
    pub fn parse(body: &[u8]) -> Result<Self, RegistrationError> {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let path = e.path().to_string();
            RegistrationError::Metadata(format!(
                "{}: {}",
                if path == "." { "body" } else { path.as_str() },
                "must be a JSON object of client metadata (RFC 7591 §2) with fields of the right types"
            ))
        })
    }

    /// The settings this metadata asks for, with `kept` for what it has no field for.
    ///
    /// # Errors
    /// `invalid_software_statement`, or `invalid_client_metadata` for response types the
    /// registry does not offer.
    pub fn settings(
        &self,
        policy: &RegistrationPolicy,
        kept: Kept,
    ) -> Result<ClientSettingsInput, RegistrationError> {
        if self.software_statement.is_some() {
            return Err(RegistrationError::SoftwareStatement);
        }
        let method = (self.token_endpoint_auth_method.clone())
            .unwrap_or_else(|| "client_secret_basic".to_owned());
        let grant_types =
            (self.grant_types.clone()).unwrap_or_else(|| vec!["authorization_code".to_owned()]);
        if let Some(types) = &self.response_types {
            let code = grant_types.iter().any(|g| g == "authorization_code");
            if types.iter().any(|t| t != "code") || (code && types.is_empty()) {
                return Err(RegistrationError::Metadata(
                    "response_types: only code is offered (with the authorization_code grant)"
                        .to_owned(),
                ));
            }
        }
        let scopes = match &self.scope {
            Some(scope) => scope.split_whitespace().map(str::to_owned).collect(),
            None => policy.scopes.iter().map(ToString::to_string).collect(),
        };
        Ok(ClientSettingsInput {
            client_name: self.client_name.clone(),
            client_uri: self.client_uri.clone(),
            require_client_secret: method != "none",
            enabled: kept.enabled,
            offline_access: grant_types.iter().any(|g| g == "refresh_token"),
            require_pkce: kept.require_pkce,
            grant_types,
            redirect_uris: self.redirect_uris.clone().unwrap_or_default(),
            post_logout_redirect_uris: self.post_logout_redirect_uris.clone().unwrap_or_default(),
            allowed_cors_origins: kept.allowed_cors_origins,
            allowed_scopes: scopes,
            about: Some(ClientAboutInput {
                application_type: self.application_type.clone(),
                logo_uri: self.logo_uri.clone(),
                tos_uri: self.tos_uri.clone(),
                policy_uri: self.policy_uri.clone(),
                contacts: self.contacts.clone().unwrap_or_default(),
                software_id: self.software_id.clone(),
                software_version: self.software_version.clone(),
            }),
            token_endpoint_auth_method: Some(Some(method)),
            keys: Some(ClientKeysInput {
                jwks: self.jwks.clone(),
                jwks_uri: self.jwks_uri.clone(),
            }),
        })
    }
}

/// The registry's rules and the token's policy, checked before anything is written.
///
/// # Errors
/// `invalid_redirect_uri` or `invalid_client_metadata`, listing every violation.
pub fn check(
    input: &ClientSettingsInput,
    policy: &RegistrationPolicy,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<ClientSettings, RegistrationError> {
    let settings = ClientSettings::validate(input).map_err(|e| refused(&e))?;
    let errors = policy.check(&settings, now);
    if errors.is_empty() {
        Ok(settings)
    } else {
        Err(refused(&errors))
    }
}

/// Violations as RFC 7591 §3.2.2 reports them: `invalid_redirect_uri` when every one is about
/// redirect URIs, else `invalid_client_metadata`; each named as RFC 7591 names the field.
pub fn refused(errors: &ValidationErrors) -> RegistrationError {
    let named = |e: &FieldError| {
        let field = match e.field.as_str() {
            "allowed_scopes" => "scope".to_owned(),
            "require_client_secret" => "token_endpoint_auth_method".to_owned(),
            f if f.starts_with("allowed_scopes[") => f.replacen("allowed_scopes", "scope", 1),
            f => f.to_owned(),
        };
        format!("{field}: {}", e.message)
    };
    let description = errors
        .errors()
        .iter()
        .map(named)
        .collect::<Vec<_>>()
        .join("; ");
    let redirects = (errors.errors().iter()).all(|e| {
        e.field.starts_with("redirect_uris") || e.field.starts_with("post_logout_redirect_uris")
    });
    if redirects && !errors.is_empty() {
        RegistrationError::RedirectUri(description)
    } else {
        RegistrationError::Metadata(description)
    }
}

/// A registered client as RFC 7591 §3.2.1 and RFC 7592 §3 answer it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegistrationResponse {
    /// Its id, issued by the registry.
    pub client_id: String,
    /// Only when issued (a registration, never a read): the secret. Store it now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// When the id was issued (seconds since the epoch).
    pub client_id_issued_at: i64,
    /// For a client with a secret: when its current secret's lifetime ends (seconds since the
    /// epoch); 0, never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<i64>,
    /// Only when issued (a registration or a replacement): the token for the client
    /// configuration endpoint. Each replacement issues a new one; the old one stops working.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_access_token: Option<String>,
    /// The client configuration endpoint (RFC 7592).
    pub registration_client_uri: String,
    /// Display name.
    pub client_name: String,
    /// Base URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// Redirect URIs after login.
    pub redirect_uris: Vec<String>,
    /// Redirect URIs after logout.
    pub post_logout_redirect_uris: Vec<String>,
    /// Grant types.
    pub grant_types: Vec<String>,
    /// `["code"]` with the authorization code grant, else none.
    pub response_types: Vec<String>,
    /// How it authenticates at the token endpoint.
    pub token_endpoint_auth_method: String,
    /// Space-separated scopes.
    pub scope: String,
    /// `web` or `native`.
    pub application_type: String,
    /// Its logo, terms and policy, contacts, software, keys: as registered.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub described: serde_json::Map<String, Value>,
    /// Whether it may authenticate now (a client held for approval: not until an
    /// administrator enables it).
    pub enabled: bool,
}

impl RegistrationResponse {
    /// The response for `settings` of `client_id`, registered at `issued_at`.
    pub fn new(
        client_id: &str,
        settings: &ClientSettings,
        (issued_at, secret_ends): (i64, Option<i64>),
        registration_client_uri: String,
    ) -> Self {
        let about = settings.about.input();
        let keys = settings.keys.input();
        let mut described = serde_json::Map::new();
        let mut put = |name: &str, value: Option<Value>| {
            if let Some(value) = value {
                described.insert(name.to_owned(), value);
            }
        };
        put("logo_uri", about.logo_uri.map(Value::from));
        put("tos_uri", about.tos_uri.map(Value::from));
        put("policy_uri", about.policy_uri.map(Value::from));
        put(
            "contacts",
            Some(about.contacts)
                .filter(|c| !c.is_empty())
                .map(Value::from),
        );
        put("software_id", about.software_id.map(Value::from));
        put("software_version", about.software_version.map(Value::from));
        put("jwks", keys.jwks);
        put("jwks_uri", keys.jwks_uri.map(Value::from));
        let grant_types: Vec<String> = settings
            .grant_types
            .iter()
            .map(|g| g.as_str().to_owned())
            .collect();
        let code = grant_types.iter().any(|g| g == "authorization_code");
        Self {
            client_id: client_id.to_owned(),
            client_secret: None,
            client_id_issued_at: issued_at,
            client_secret_expires_at: settings.uses_secret().then_some(secret_ends.unwrap_or(0)),
            registration_access_token: None,
            registration_client_uri,
            client_name: settings.client_name.to_string(),
            client_uri: settings.client_uri.as_ref().map(ToString::to_string),
            redirect_uris: settings
                .redirect_uris
                .iter()
                .map(ToString::to_string)
                .collect(),
            post_logout_redirect_uris: (settings.post_logout_redirect_uris.iter())
                .map(ToString::to_string)
                .collect(),
            grant_types,
            response_types: if code {
                vec!["code".to_owned()]
            } else {
                Vec::new()
            },
            token_endpoint_auth_method: settings.auth_method().name().to_owned(),
            scope: (settings.allowed_scopes.iter())
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            application_type: settings.about.application_type.name().to_owned(),
            described,
            enabled: settings.enabled,
        }
    }
}
