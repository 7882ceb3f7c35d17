//! Request and response bodies of the `/clients` routes, kept apart from the domain types.
//! Field names follow RFC 7591 / OIDC Dynamic Client Registration.

use chrono::{DateTime, Utc};
use registry_commands::NewSecret;
use registry_domain::client::{ClientAboutInput, ClientKeysInput};
use registry_domain::ClientSettingsInput;
use registry_projections::{ClientPage, ClientView, ListItem, SecretView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::state::AppState;

/// The body of `POST /clients` (register) and `PUT /clients/{client_id}` (replace every
/// editable setting). On `POST`, omitted options take the admin guide's defaults; `PUT`
/// needs every editable field (a missing one is a 422, never a silent reset to a default:
/// use `PATCH` to change some).
///
/// The read-only fields of a client response (`version`, `created_at`, `updated_at`,
/// `secrets`) are accepted and ignored, so a fetched client can be edited and sent back.
/// Any other unknown field is refused (a misspelt `redirect_uri` would otherwise be lost).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientRequest {
    /// Unique, case-sensitive id: 1–128 of `A-Z a-z 0-9 - . _ ~`. Required to register; it
    /// cannot change, so on `PUT` it must equal the path's id if given.
    #[schema(example = "data-refinery-studio")]
    pub client_id: Option<String>,
    /// Register only: the secret of a confidential client (16–256 characters). Omitted, one
    /// is generated and returned once. Refused on `PUT`: rotate the secret instead.
    pub client_secret: Option<String>,
    /// Display name (required, 1–200 characters).
    #[schema(example = "Data Refinery Studio")]
    pub client_name: Option<String>,
    /// Base URL of the client application (`https`, or `http` on loopback); `null` for none.
    #[schema(example = "https://studio.example.com", value_type = Option<String>)]
    #[serde(default, deserialize_with = "present")]
    pub client_uri: Option<Option<String>>,
    /// Confidential client that authenticates with a secret. Default `true`.
    pub require_client_secret: Option<bool>,
    /// Whether the client can be used for authentication. Default `true`.
    pub enabled: Option<bool>,
    /// Allow refresh tokens. Default `false`.
    pub offline_access: Option<bool>,
    /// Require PKCE for the authorization code grant. Default `true`.
    pub require_pkce: Option<bool>,
    /// Allowed grant types: `authorization_code`, `client_credentials`,
    /// `urn:ietf:params:oauth:grant-type:device_code`, `refresh_token`. Default
    /// `["authorization_code"]` (RFC 7591 §2).
    #[schema(example = json!(["authorization_code", "refresh_token"]))]
    pub grant_types: Option<Vec<String>>,
    /// Where to redirect after login: full URLs, no fragment, no wildcard.
    #[schema(example = json!(["https://studio.example.com/callback"]))]
    pub redirect_uris: Option<Vec<String>>,
    /// Where to redirect after logout.
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// Origins allowed to call the identity service from a browser: `scheme://host[:port]`,
    /// no trailing slash.
    #[schema(example = json!(["https://studio.example.com"]))]
    pub allowed_cors_origins: Option<Vec<String>>,
    /// Scopes the client may request (RFC 6749 scope tokens).
    #[schema(example = json!(["openid", "profile", "octo_api"]))]
    pub allowed_scopes: Option<Vec<String>>,
    /// How the client authenticates at the token endpoint: `client_secret_basic`,
    /// `client_secret_post` (a confidential client with a secret), `private_key_jwt` (a
    /// confidential client that signs with a key of `jwks` or `jwks_uri`, RFC 7523; it has no
    /// secret) or `none` (a public one). Absent on `PUT`:
    /// as it is; `null` or absent on `POST`: the default for `require_client_secret` (Basic,
    /// or none).
    #[schema(value_type = Option<String>, example = "client_secret_basic")]
    #[serde(default, deserialize_with = "present")]
    pub token_endpoint_auth_method: Option<Option<String>>,
    /// `web` (default) or `native` (a mobile, desktop or command-line app, RFC 8252).
    ///
    /// This and the six fields after it describe the client (RFC 7591 §2) and are replaced
    /// together: a body with any of them sets each (absent or `null`: none); a `PUT` or
    /// `PATCH` with none of them keeps the client's description as it is.
    #[schema(value_type = Option<String>, example = "web")]
    #[serde(default, deserialize_with = "present")]
    pub application_type: Option<Option<String>>,
    /// The client's logo (`https`, or `http` on loopback).
    #[schema(value_type = Option<String>)]
    #[serde(default, deserialize_with = "present")]
    pub logo_uri: Option<Option<String>>,
    /// Its terms of service.
    #[schema(value_type = Option<String>)]
    #[serde(default, deserialize_with = "present")]
    pub tos_uri: Option<Option<String>>,
    /// Its privacy policy.
    #[schema(value_type = Option<String>)]
    #[serde(default, deserialize_with = "present")]
    pub policy_uri: Option<Option<String>>,
    /// E-mail addresses of the people responsible for it (at most 20).
    #[schema(value_type = Option<Vec<String>>, example = json!(["identity-team@example.com"]))]
    #[serde(default, deserialize_with = "present")]
    pub contacts: Option<Option<Vec<String>>>,
    /// The software's identifier, the same for every instance of it (1–200 characters).
    #[schema(value_type = Option<String>)]
    #[serde(default, deserialize_with = "present")]
    pub software_id: Option<Option<String>>,
    /// The software's version (1–200 characters).
    #[schema(value_type = Option<String>)]
    #[serde(default, deserialize_with = "present")]
    pub software_version: Option<Option<String>>,
    /// The client's public signing keys, a JWK Set (RFC 7517): 1–20 `RSA` (2048+ bits),
    /// `EC` P-256 or `OKP` Ed25519 public keys, each `kid` unique; a private member (`d`, …)
    /// is refused. Members other than `kty kid use alg n e crv x y` are not kept.
    ///
    /// This and `jwks_uri` are replaced together: a body with either sets both (absent or
    /// `null`: none); a `PUT` or `PATCH` with neither keeps the keys as they are, and a
    /// `PATCH` that gives one drops the other.
    #[schema(value_type = Option<Object>)]
    #[serde(default, deserialize_with = "present")]
    pub jwks: Option<Option<serde_json::Value>>,
    /// Where the client publishes its JWK Set (`https`). Not together with `jwks`.
    #[schema(value_type = Option<String>, example = "https://studio.example.com/jwks.json")]
    #[serde(default, deserialize_with = "present")]
    pub jwks_uri: Option<Option<String>>,
    /// Ignored (read-only).
    #[schema(read_only, value_type = Option<u64>)]
    pub version: Option<serde_json::Value>,
    /// Ignored (read-only).
    #[schema(read_only, value_type = Option<String>)]
    pub created_at: Option<serde_json::Value>,
    /// Ignored (read-only).
    #[schema(read_only, value_type = Option<String>)]
    pub updated_at: Option<serde_json::Value>,
    /// Ignored (read-only).
    #[schema(read_only, value_type = Option<Vec<SecretResponse>>)]
    pub secrets: Option<serde_json::Value>,
}

/// Reads a field that is present (`null` included) as `Some`, so that an absent field
/// (`None`, through `#[serde(default)]`) and an explicit `null` differ.
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

impl ClientRequest {
    /// The editable fields this body leaves out: `PUT` replaces every one, so each must be
    /// given (`client_uri` may be `null`).
    pub fn missing_for_replace(&self) -> Vec<&'static str> {
        [
            ("client_name", self.client_name.is_none()),
            ("client_uri", self.client_uri.is_none()),
            (
                "require_client_secret",
                self.require_client_secret.is_none(),
            ),
            ("enabled", self.enabled.is_none()),
            ("offline_access", self.offline_access.is_none()),
            ("require_pkce", self.require_pkce.is_none()),
            ("grant_types", self.grant_types.is_none()),
            ("redirect_uris", self.redirect_uris.is_none()),
            (
                "post_logout_redirect_uris",
                self.post_logout_redirect_uris.is_none(),
            ),
            ("allowed_cors_origins", self.allowed_cors_origins.is_none()),
            ("allowed_scopes", self.allowed_scopes.is_none()),
        ]
        .into_iter()
        .filter_map(|(field, missing)| missing.then_some(field))
        .collect()
    }

    /// The settings with the guide's defaults filled in.
    pub fn settings(&self) -> ClientSettingsInput {
        ClientSettingsInput {
            client_name: self.client_name.clone(),
            client_uri: self.client_uri.clone().flatten(),
            require_client_secret: self.require_client_secret.unwrap_or(true),
            enabled: self.enabled.unwrap_or(true),
            offline_access: self.offline_access.unwrap_or(false),
            require_pkce: self.require_pkce.unwrap_or(true),
            grant_types: self
                .grant_types
                .clone()
                .unwrap_or_else(|| vec!["authorization_code".to_owned()]),
            redirect_uris: self.redirect_uris.clone().unwrap_or_default(),
            post_logout_redirect_uris: self.post_logout_redirect_uris.clone().unwrap_or_default(),
            allowed_cors_origins: self.allowed_cors_origins.clone().unwrap_or_default(),
            allowed_scopes: self.allowed_scopes.clone().unwrap_or_default(),
            about: self.about(),
            token_endpoint_auth_method: self.token_endpoint_auth_method.clone(),
            keys: (self.jwks.is_some() || self.jwks_uri.is_some()).then(|| ClientKeysInput {
                jwks: self.jwks.clone().flatten(),
                jwks_uri: self.jwks_uri.clone().flatten(),
            }),
        }
    }

    /// The client's description, when the body gives any of it (see `application_type`).
    fn about(&self) -> Option<ClientAboutInput> {
        let given = [
            self.application_type.is_some(),
            self.logo_uri.is_some(),
            self.tos_uri.is_some(),
            self.policy_uri.is_some(),
            self.contacts.is_some(),
            self.software_id.is_some(),
            self.software_version.is_some(),
        ];
        let text = |field: &Option<Option<String>>| field.clone().flatten();
        given.contains(&true).then(|| ClientAboutInput {
            application_type: text(&self.application_type),
            logo_uri: text(&self.logo_uri),
            tos_uri: text(&self.tos_uri),
            policy_uri: text(&self.policy_uri),
            contacts: self.contacts.clone().flatten().unwrap_or_default(),
            software_id: text(&self.software_id),
            software_version: text(&self.software_version),
        })
    }
}

/// `POST /clients/{client_id}/secret`: rotate the secret. The body may be empty.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretRequest {
    /// The new secret (16–256 characters). Omitted: one is generated and returned once.
    pub client_secret: Option<String>,
    /// Seconds the previous secret stays valid (0 – 2,592,000 = 30 days). Omitted or 0: it
    /// stops at once.
    #[schema(maximum = 2_592_000)]
    pub previous_secret_valid_for: Option<u64>,
}

/// `POST /clients/{client_id}/secret/verify`: check a secret.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifySecretRequest {
    /// The secret the client presented (no secret is longer than 256 characters).
    #[schema(max_length = 256)]
    pub client_secret: String,
}

/// Whether the secret is valid.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VerifySecretResponse {
    /// True only for an existing, enabled, confidential client with a matching, unexpired
    /// secret.
    pub valid: bool,
    /// For a valid secret in its grace period (replaced by a rotation) or with a lifetime: when
    /// it stops being valid, whichever comes first. `null` for a current secret without an end,
    /// and for an invalid one. An identity service
    /// that remembers a verified secret must not remember it past this.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A secret, as the API shows it: never its value or hash.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SecretResponse {
    /// Opaque id.
    pub secret_id: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When a rotation's grace ends for it; `null` while current.
    pub expires_at: Option<DateTime<Utc>>,
    /// The end of its lifetime (`client_secret_expires_at`, set from
    /// `REGISTRY_SECRET_LIFETIME_DAYS` when it was issued); `null`: no end. Past it, the secret
    /// no longer verifies.
    pub valid_until: Option<DateTime<Utc>>,
}

impl From<SecretView> for SecretResponse {
    fn from(secret: SecretView) -> Self {
        Self {
            secret_id: secret.secret_id,
            created_at: secret.created_at,
            expires_at: secret.expires_at,
            valid_until: secret.valid_until,
        }
    }
}

/// A client.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClientResponse {
    /// Unique id.
    pub client_id: String,
    /// Display name.
    pub client_name: String,
    /// Base URL.
    pub client_uri: Option<String>,
    /// Confidential client.
    pub require_client_secret: bool,
    /// Can be used for authentication.
    pub enabled: bool,
    /// Refresh tokens allowed.
    pub offline_access: bool,
    /// PKCE required.
    pub require_pkce: bool,
    /// Allowed grant types.
    pub grant_types: Vec<String>,
    /// Redirect URIs after login.
    pub redirect_uris: Vec<String>,
    /// Redirect URIs after logout.
    pub post_logout_redirect_uris: Vec<String>,
    /// Allowed CORS origins.
    pub allowed_cors_origins: Vec<String>,
    /// Allowed scopes.
    pub allowed_scopes: Vec<String>,
    /// How it authenticates at the token endpoint (`client_secret_basic`,
    /// `client_secret_post`, `private_key_jwt`, `none`).
    #[schema(example = "client_secret_basic")]
    pub token_endpoint_auth_method: String,
    /// `web` or `native`.
    #[schema(example = "web")]
    pub application_type: String,
    /// The client's logo.
    pub logo_uri: Option<String>,
    /// Its terms of service.
    pub tos_uri: Option<String>,
    /// Its privacy policy.
    pub policy_uri: Option<String>,
    /// E-mail addresses of the people responsible for it.
    pub contacts: Vec<String>,
    /// The software's identifier.
    pub software_id: Option<String>,
    /// The software's version.
    pub software_version: Option<String>,
    /// Its public signing keys (a JWK Set).
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// Where it publishes them.
    pub jwks_uri: Option<String>,
    /// Current secrets (id and times only; none for a `private_key_jwt` client).
    pub secrets: Vec<SecretResponse>,
    /// Version (number of changes); the `ETag`.
    pub version: u64,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Only in the response that generated it: the plaintext secret. Store it now; it is
    /// never shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

fn strings<T: ToString>(values: &[T]) -> Vec<String> {
    values.iter().map(ToString::to_string).collect()
}

impl ClientResponse {
    /// The client, with the plaintext of a secret the server just generated.
    pub fn new(view: ClientView, secret: Option<&NewSecret>) -> Self {
        let settings = view.settings;
        let auth_method = settings.auth_method().name().to_owned();
        let about = settings.about.input();
        let keys = settings.keys.input();
        Self {
            client_id: view.client_id,
            client_name: settings.client_name.to_string(),
            client_uri: settings.client_uri.map(String::from),
            require_client_secret: settings.require_client_secret,
            enabled: settings.enabled,
            offline_access: settings.offline_access,
            require_pkce: settings.require_pkce,
            grant_types: strings(&settings.grant_types),
            redirect_uris: strings(&settings.redirect_uris),
            post_logout_redirect_uris: strings(&settings.post_logout_redirect_uris),
            allowed_cors_origins: strings(&settings.allowed_cors_origins),
            allowed_scopes: strings(&settings.allowed_scopes),
            token_endpoint_auth_method: auth_method,
            application_type: about.application_type.unwrap_or_default(),
            logo_uri: about.logo_uri,
            tos_uri: about.tos_uri,
            policy_uri: about.policy_uri,
            contacts: about.contacts,
            software_id: about.software_id,
            software_version: about.software_version,
            jwks: keys.jwks,
            jwks_uri: keys.jwks_uri,
            secrets: view.secrets.into_iter().map(SecretResponse::from).collect(),
            version: view.version,
            created_at: view.created_at,
            updated_at: view.updated_at,
            client_secret: secret
                .and_then(|s| s.generated.as_ref())
                .map(|plaintext| plaintext.expose().to_owned()),
        }
    }
}

/// The result of a rotation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RotateSecretResponse {
    /// The client.
    pub client_id: String,
    /// Id of the new secret.
    pub secret_id: String,
    /// Only when generated: the new secret's plaintext. Store it now; it is never shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// The client's secrets after the rotation (previous ones only while in a grace period).
    pub secrets: Vec<SecretResponse>,
    /// The client's version after the rotation.
    pub version: u64,
}

/// Query of `GET /clients`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListClientsParams {
    /// Case-insensitive substring of the client id or name, matched literally (`%` and `_`
    /// are ordinary characters). At most 200 characters.
    pub search: Option<String>,
    /// Only enabled (`true`) or disabled (`false`) clients.
    pub enabled: Option<bool>,
    /// `client_id` (default), `client_name`, `created_at` or `updated_at`; prefix `-` for
    /// descending. Ties are broken by `client_id`.
    pub sort: Option<String>,
    /// Page size, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page (same search, filter and sort).
    pub cursor: Option<String>,
    /// Only clients registered dynamically (RFC 7591): `any`, or those of one initial access
    /// token (its `token_id`).
    pub registered_by: Option<String>,
    /// Only clients with findings in this profile: `rfc9700`, `oauth2.1` or `fapi2`. Read
    /// from every client's details, like a report.
    pub findings: Option<String>,
    /// Only clients with a secret that stops verifying within this many days (0–3650; its
    /// lifetime or a rotation's grace), or already has. Read from every client's details.
    #[param(maximum = 3650)]
    pub secret_expires_within_days: Option<u32>,
}

/// Query of `GET /clients/{client_id}`: read the client as it was.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GetClientParams {
    /// The client after its N-th event.
    pub as_of_version: Option<u64>,
    /// The client at this time (RFC 3339; write `+` as `%2B`).
    pub as_of: Option<DateTime<Utc>>,
}

/// One client in the list (the read model's list item, answered as it is).
pub type ClientListItem = ListItem;

/// A page of the client list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClientListResponse {
    /// The clients of this page.
    pub clients: Vec<ClientListItem>,
    /// Number of clients matching `search` and `enabled`, across all pages.
    pub total: u64,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl From<ClientPage> for ClientListResponse {
    fn from(page: ClientPage) -> Self {
        Self {
            clients: page.items,
            total: page.total,
            next_cursor: page.next_cursor,
        }
    }
}

/// The editable fields of a client response, as a JSON object: what `PATCH` merges into.
///
/// # Errors
/// Serialisation failures (none in practice).
pub fn editable_document(client: &ClientResponse) -> Result<serde_json::Value, serde_json::Error> {
    let mut document = serde_json::to_value(client)?;
    if let Some(fields) = document.as_object_mut() {
        for read_only in [
            "client_id",
            "secrets",
            "version",
            "created_at",
            "updated_at",
            "client_secret",
        ] {
            fields.remove(read_only);
        }
    }
    Ok(document)
}

/// JSON Merge Patch (RFC 7396 §2): `patch` applied to `target`. An object merges member by
/// member, `null` removes a member, anything else replaces the target whole.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    let serde_json::Value::Object(members) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = serde_json::Value::Object(serde_json::Map::new());
    }
    if let serde_json::Value::Object(fields) = target {
        for (name, value) in members {
            if value.is_null() {
                fields.remove(name);
            } else {
                merge_patch(
                    fields
                        .entry(name.clone())
                        .or_insert(serde_json::Value::Null),
                    value,
                );
            }
        }
    }
}

impl RotateSecretResponse {
    /// The answer of a rotation: the new secret (its plaintext when generated) and every
    /// secret of the client now.
    ///
    /// # Errors
    /// [`ApiError::Internal`] when the rotation answered no secret (never expected).
    pub fn of(executed: registry_commands::Executed) -> Result<Self, ApiError> {
        let view = AppState::client_after_write(&executed)?;
        let secret = executed
            .secret
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("rotation returned no secret")))?;
        Ok(Self {
            client_id: view.client_id,
            secret_id: secret.secret_id,
            client_secret: secret.generated.map(|s| s.expose().to_owned()),
            secrets: view.secrets.into_iter().map(SecretResponse::from).collect(),
            version: view.version,
        })
    }
}

impl From<registry_commands::service::Verification> for VerifySecretResponse {
    fn from(verification: registry_commands::service::Verification) -> Self {
        match verification {
            registry_commands::service::Verification::Valid { expires_at } => Self {
                valid: true,
                expires_at,
            },
            registry_commands::service::Verification::Invalid => Self {
                valid: false,
                expires_at: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_the_examples_of_rfc_7396() {
        // RFC 7396 Appendix A, every case.
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"a":"foo"}), json!(null), json!(null)),
            (json!({"a":"foo"}), json!("bar"), json!("bar")),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (mut target, patch, expected) in cases {
            merge_patch(&mut target, &patch);
            assert_eq!(target, expected, "patch {patch}");
        }
    }
}
