//! The editable settings of a client, their validation and their field-level difference.

use serde::{Deserialize, Deserializer, Serialize};

use super::errors::ValidationErrors;
use super::keys::{ClientKeys, ClientKeysInput};
use crate::values::{
    ApplicationType, ClientName, ClientUri, Contact, CorsOrigin, GrantType, RedirectUri, Scope,
    SoftwareText, TokenEndpointAuthMethod, ValueError,
};

/// Most redirect URIs (and post-logout redirect URIs) one client may have.
pub const MAX_REDIRECT_URIS: usize = 50;
/// Most entries a `grant_types` list may have (there are four grant types; duplicates are
/// dropped, but the raw list is bounded too).
pub const MAX_GRANT_TYPES: usize = 16;
/// Most CORS origins one client may have.
pub const MAX_CORS_ORIGINS: usize = 50;
/// Most scopes one client may have.
pub const MAX_SCOPES: usize = 100;
/// Most contacts one client may have.
pub const MAX_CONTACTS: usize = 20;

/// What RFC 7591 §2 says about a client besides its flows, as a caller sent it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientAboutInput {
    /// `web` (default) or `native`.
    pub application_type: Option<String>,
    /// The client's logo.
    pub logo_uri: Option<String>,
    /// Its terms of service.
    pub tos_uri: Option<String>,
    /// Its privacy policy.
    pub policy_uri: Option<String>,
    /// E-mail addresses of the people responsible for it.
    pub contacts: Vec<String>,
    /// The software's identifier, the same for every instance of it.
    pub software_id: Option<String>,
    /// The software's version.
    pub software_version: Option<String>,
}

/// What RFC 7591 §2 says about a client besides its flows: the kind of application, its
/// pages, who to contact, the software. Stored flattened into the settings; an unset field is
/// left out of stored events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientAbout {
    /// `web` or `native`.
    #[serde(default, skip_serializing_if = "ApplicationType::is_web")]
    pub application_type: ApplicationType,
    /// The client's logo (`https`, or `http` on loopback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<ClientUri>,
    /// Its terms of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<ClientUri>,
    /// Its privacy policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<ClientUri>,
    /// E-mail addresses of the people responsible for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<Contact>,
    /// The software's identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<SoftwareText>,
    /// The software's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<SoftwareText>,
}

impl ClientAbout {
    /// Validates every field of `input`, adding each violation to `errors`.
    fn parse(input: &ClientAboutInput, errors: &mut ValidationErrors) -> Self {
        let uri = |errors: &mut ValidationErrors, field: &str, raw: &Option<String>| {
            let raw = raw.as_deref()?;
            record(errors, field, ClientUri::parse(raw))
        };
        let text = |errors: &mut ValidationErrors, field: &str, raw: &Option<String>| {
            let raw = raw.as_deref()?;
            record(errors, field, SoftwareText::parse(raw))
        };
        let application_type = input
            .application_type
            .as_deref()
            .map_or(Some(ApplicationType::Web), |raw| {
                record(errors, "application_type", ApplicationType::parse(raw))
            });
        Self {
            application_type: application_type.unwrap_or_default(),
            logo_uri: uri(errors, "logo_uri", &input.logo_uri),
            tos_uri: uri(errors, "tos_uri", &input.tos_uri),
            policy_uri: uri(errors, "policy_uri", &input.policy_uri),
            contacts: parse_list(
                errors,
                "contacts",
                &input.contacts,
                MAX_CONTACTS,
                Contact::parse,
            ),
            software_id: text(errors, "software_id", &input.software_id),
            software_version: text(errors, "software_version", &input.software_version),
        }
    }

    /// The raw form of these values (what a caller would send to keep them).
    pub fn input(&self) -> ClientAboutInput {
        let text = |value: &Option<SoftwareText>| value.as_ref().map(ToString::to_string);
        let uri = |value: &Option<ClientUri>| value.as_ref().map(ToString::to_string);
        ClientAboutInput {
            application_type: Some(self.application_type.name().to_owned()),
            logo_uri: uri(&self.logo_uri),
            tos_uri: uri(&self.tos_uri),
            policy_uri: uri(&self.policy_uri),
            contacts: self.contacts.iter().map(ToString::to_string).collect(),
            software_id: text(&self.software_id),
            software_version: text(&self.software_version),
        }
    }
}

/// The settings as a caller sent them, not yet validated. Commands carry this; the aggregate
/// turns it into [`ClientSettings`] or reports every violation at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientSettingsInput {
    /// Display name; required.
    pub client_name: Option<String>,
    /// Base URL of the client application.
    pub client_uri: Option<String>,
    /// Confidential (`true`) or public client.
    pub require_client_secret: bool,
    /// Whether the client may authenticate.
    pub enabled: bool,
    /// Whether the client may obtain refresh tokens.
    pub offline_access: bool,
    /// Whether authorization-code requests must use PKCE (RFC 7636).
    pub require_pkce: bool,
    /// Grant type names.
    pub grant_types: Vec<String>,
    /// Redirect URIs after login.
    pub redirect_uris: Vec<String>,
    /// Redirect URIs after logout.
    pub post_logout_redirect_uris: Vec<String>,
    /// Browser origins allowed to call the identity service.
    pub allowed_cors_origins: Vec<String>,
    /// Scopes the client may request.
    pub allowed_scopes: Vec<String>,
    /// What RFC 7591 says about the client besides its flows; `None`: as it is (a new
    /// client: nothing).
    pub about: Option<ClientAboutInput>,
    /// How it authenticates at the token endpoint: `None`, as it is (a new client: the
    /// default); `Some(None)`, the default for its confidentiality; else the method named.
    pub token_endpoint_auth_method: Option<Option<String>>,
    /// Its public keys (`jwks` or `jwks_uri`); `None`: as they are (a new client: none).
    pub keys: Option<ClientKeysInput>,
}

/// The validated, editable settings of a client (everything but its id and secrets). Field
/// names follow RFC 7591 / OIDC Dynamic Client Registration where one exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSettings {
    /// Display name.
    pub client_name: ClientName,
    /// Base URL of the client application.
    pub client_uri: Option<ClientUri>,
    /// Confidential (`true`): must authenticate with a secret. Public (`false`): SPAs, CLIs.
    pub require_client_secret: bool,
    /// Whether the client may authenticate at all.
    pub enabled: bool,
    /// Whether the client may obtain refresh tokens.
    pub offline_access: bool,
    /// Whether authorization-code requests must use PKCE (RFC 7636, RFC 9700 §2.1.1).
    pub require_pkce: bool,
    /// Allowed grant types, in canonical order, without duplicates.
    pub grant_types: Vec<GrantType>,
    /// Redirect URIs after login, in the order given, without duplicates.
    pub redirect_uris: Vec<RedirectUri>,
    /// Redirect URIs after logout.
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// Browser origins allowed to call the identity service.
    pub allowed_cors_origins: Vec<CorsOrigin>,
    /// Scopes the client may request.
    pub allowed_scopes: Vec<Scope>,
    /// What RFC 7591 says about the client besides its flows.
    #[serde(flatten)]
    pub about: ClientAbout,
    /// How it authenticates at the token endpoint, when it said (else the default for its
    /// confidentiality: [`TokenEndpointAuthMethod::default_for`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
    /// Its public keys.
    #[serde(flatten)]
    pub keys: ClientKeys,
}

impl ClientSettings {
    /// Whether the client authenticates with a shared secret: confidential, and not with its
    /// keys (`private_key_jwt`). Only such a client has secrets to rotate or verify.
    pub fn uses_secret(&self) -> bool {
        self.require_client_secret && self.auth_method() != TokenEndpointAuthMethod::PrivateKeyJwt
    }

    /// How the client authenticates at the token endpoint: the method it named, else the
    /// default for its confidentiality.
    pub fn auth_method(&self) -> TokenEndpointAuthMethod {
        (self.token_endpoint_auth_method)
            .unwrap_or_else(|| TokenEndpointAuthMethod::default_for(self.require_client_secret))
    }

    /// The rules between the description, the authentication method and the rest, checked
    /// on settings that are otherwise valid.
    fn check_between(&self, errors: &mut ValidationErrors) {
        self.check_native_redirects(errors);
        let method = self.token_endpoint_auth_method;
        match (method, self.require_client_secret) {
            (Some(TokenEndpointAuthMethod::None), true) => errors.add(
                "token_endpoint_auth_method",
                "none is for a public client (require_client_secret: false)",
            ),
            (Some(m), false) if m != TokenEndpointAuthMethod::None => errors.add(
                "token_endpoint_auth_method",
                format!(
                    "{} needs a confidential client (require_client_secret: true); use none or leave it out",
                    m.name()
                ),
            ),
            _ => {}
        }
        if method == Some(TokenEndpointAuthMethod::PrivateKeyJwt) && self.keys.is_empty() {
            errors.add(
                "jwks",
                "private_key_jwt needs the client's public keys: jwks or jwks_uri",
            );
        }
    }

    /// The rules between the kind of application and its redirect URIs (after login and
    /// after logout): a native app's loopback redirect is `http` on `127.0.0.1`, `[::1]` or
    /// `localhost` (RFC 8252 §7.3, §8.3), never `https` on a loopback address (`https` names
    /// a claimed URL on the app's own domain) — as identity services check them.
    fn check_native_redirects(&self, errors: &mut ValidationErrors) {
        if self.about.application_type != ApplicationType::Native {
            return;
        }
        let lists = [
            ("redirect_uris", &self.redirect_uris),
            ("post_logout_redirect_uris", &self.post_logout_redirect_uris),
        ];
        for (field, uris) in lists {
            for (i, uri) in uris.iter().enumerate() {
                let Ok(url) = url::Url::parse(uri.as_ref()) else {
                    continue;
                };
                let literal = matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
                let message = match url.scheme() {
                    "https" if crate::values::is_loopback(url.host()) => {
                        "a native app's loopback redirect URI uses http (RFC 8252 §7.3)"
                    }
                    "http" if !literal => {
                        "a native app's loopback redirect URI names 127.0.0.1, [::1] or localhost (RFC 8252 §7.3)"
                    }
                    _ => continue,
                };
                errors.add(format!("{field}[{i}]"), message);
            }
        }
    }

    /// Validates every field and the rules between them, collecting every violation.
    ///
    /// Rules between fields: at least one grant type; `authorization_code` needs a redirect
    /// URI; `client_credentials` needs a confidential client; `refresh_token` needs
    /// `offline_access`.
    ///
    /// # Errors
    /// [`ValidationErrors`] naming each offending field.
    pub fn validate(input: &ClientSettingsInput) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let client_name = match input.client_name.as_deref() {
            None => {
                errors.add("client_name", "is required");
                None
            }
            Some(raw) => record(&mut errors, "client_name", ClientName::parse(raw)),
        };
        let client_uri = match input.client_uri.as_deref() {
            None => None,
            Some(raw) => record(&mut errors, "client_uri", ClientUri::parse(raw)),
        };
        let mut grant_types = parse_list(
            &mut errors,
            "grant_types",
            &input.grant_types,
            MAX_GRANT_TYPES,
            GrantType::parse,
        );
        grant_types.sort();
        let lists = Lists::parse(input, &mut errors);
        check_flows(input, &grant_types, &mut errors);
        let about = (input.about.as_ref())
            .map(|about| ClientAbout::parse(about, &mut errors))
            .unwrap_or_default();
        // Naming the default is following it (a fetched client sent back names it).
        let default = TokenEndpointAuthMethod::default_for(input.require_client_secret);
        let token_endpoint_auth_method = (input.token_endpoint_auth_method.clone().flatten())
            .and_then(|raw| {
                record(
                    &mut errors,
                    "token_endpoint_auth_method",
                    TokenEndpointAuthMethod::parse(&raw),
                )
            });
        let token_endpoint_auth_method = token_endpoint_auth_method.filter(|m| *m != default);
        let keys = (input.keys.as_ref())
            .map(|keys| ClientKeys::parse(keys, &mut errors))
            .unwrap_or_default();
        let settings = match (client_name, errors.is_empty()) {
            (Some(client_name), true) => Ok(Self {
                client_name,
                client_uri,
                require_client_secret: input.require_client_secret,
                enabled: input.enabled,
                offline_access: input.offline_access,
                require_pkce: input.require_pkce,
                grant_types,
                redirect_uris: lists.redirect_uris,
                post_logout_redirect_uris: lists.post_logout_redirect_uris,
                allowed_cors_origins: lists.allowed_cors_origins,
                allowed_scopes: lists.allowed_scopes,
                about,
                token_endpoint_auth_method,
                keys,
            }),
            _ => Err(errors),
        }?;
        let mut errors = ValidationErrors::default();
        settings.check_between(&mut errors);
        errors.into_result(settings)
    }
}

/// The list fields but the grant types, each entry checked.
struct Lists {
    redirect_uris: Vec<RedirectUri>,
    post_logout_redirect_uris: Vec<RedirectUri>,
    allowed_cors_origins: Vec<CorsOrigin>,
    allowed_scopes: Vec<Scope>,
}

impl Lists {
    fn parse(input: &ClientSettingsInput, errors: &mut ValidationErrors) -> Self {
        Self {
            redirect_uris: parse_list(
                errors,
                "redirect_uris",
                &input.redirect_uris,
                MAX_REDIRECT_URIS,
                RedirectUri::parse,
            ),
            post_logout_redirect_uris: parse_list(
                errors,
                "post_logout_redirect_uris",
                &input.post_logout_redirect_uris,
                MAX_REDIRECT_URIS,
                RedirectUri::parse,
            ),
            allowed_cors_origins: parse_list(
                errors,
                "allowed_cors_origins",
                &input.allowed_cors_origins,
                MAX_CORS_ORIGINS,
                CorsOrigin::parse,
            ),
            allowed_scopes: parse_list(
                errors,
                "allowed_scopes",
                &input.allowed_scopes,
                MAX_SCOPES,
                Scope::parse,
            ),
        }
    }
}

/// The rules between the grant types and the other settings: at least one grant type;
/// `authorization_code` needs a redirect URI; `client_credentials` a confidential client;
/// `refresh_token` offline access.
fn check_flows(
    input: &ClientSettingsInput,
    grant_types: &[GrantType],
    errors: &mut ValidationErrors,
) {
    if input.grant_types.is_empty() {
        errors.add("grant_types", "at least one grant type is required");
    }
    if grant_types.contains(&GrantType::AuthorizationCode) && input.redirect_uris.is_empty() {
        errors.add(
            "redirect_uris",
            "the authorization_code grant needs at least one redirect URI",
        );
    }
    if grant_types.contains(&GrantType::ClientCredentials) && !input.require_client_secret {
        errors.add(
            "grant_types",
            "client_credentials needs a confidential client (require_client_secret: true)",
        );
    }
    if grant_types.contains(&GrantType::RefreshToken) && !input.offline_access {
        errors.add(
            "grant_types",
            "refresh_token needs offline access (offline_access: true)",
        );
    }
}

fn record<T>(
    errors: &mut ValidationErrors,
    field: &str,
    result: Result<T, ValueError>,
) -> Option<T> {
    result.map_err(|e| errors.add(field, e.0)).ok()
}

/// Parses each entry, naming failures `field[i]`; drops exact duplicates, keeping the first.
fn parse_list<T: PartialEq>(
    errors: &mut ValidationErrors,
    field: &str,
    raw: &[String],
    max: usize,
    parse: impl Fn(&str) -> Result<T, ValueError>,
) -> Vec<T> {
    if raw.len() > max {
        errors.add(field, format!("must have at most {max} entries"));
        return Vec::new();
    }
    let mut values: Vec<T> = Vec::with_capacity(raw.len());
    for (i, entry) in raw.iter().enumerate() {
        if let Some(value) = record(errors, &format!("{field}[{i}]"), parse(entry)) {
            if !values.contains(&value) {
                values.push(value);
            }
        }
    }
    values
}

/// The fields an update changed, each with its new value; absent fields did not change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientChanges {
    /// New display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<ClientName>,
    /// New client URI; `Some(None)` (JSON `null`) removes it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub client_uri: Option<Option<ClientUri>>,
    /// New confidentiality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_client_secret: Option<bool>,
    /// New enabled flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// New offline-access flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_access: Option<bool>,
    /// New PKCE requirement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_pkce: Option<bool>,
    /// New grant types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<GrantType>>,
    /// New redirect URIs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<Vec<RedirectUri>>,
    /// New post-logout redirect URIs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_logout_redirect_uris: Option<Vec<RedirectUri>>,
    /// New CORS origins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_cors_origins: Option<Vec<CorsOrigin>>,
    /// New scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_scopes: Option<Vec<Scope>>,
    /// The new RFC 7591 description, whole, when any of it changed. Since event version 1.2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<ClientAbout>,
    /// The new token endpoint authentication method; `Some(None)` (JSON `null`): the default
    /// again. Since event version 1.2.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub token_endpoint_auth_method: Option<Option<TokenEndpointAuthMethod>>,
    /// The new public keys, both fields, when either changed. Since event version 1.3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<ClientKeys>,
}

/// A present field (even `null`) deserialises to `Some(..)`; an absent one defaults to `None`.
fn present<'de, T, D>(deserializer: D) -> Result<Option<T>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    T::deserialize(deserializer).map(Some)
}

fn changed<T: PartialEq + Clone>(before: &T, after: &T) -> Option<T> {
    (before != after).then(|| after.clone())
}

impl ClientChanges {
    /// The fields that differ between `before` and `after`, with their `after` values.
    pub fn between(before: &ClientSettings, after: &ClientSettings) -> Self {
        Self {
            client_name: changed(&before.client_name, &after.client_name),
            client_uri: changed(&before.client_uri, &after.client_uri),
            require_client_secret: changed(
                &before.require_client_secret,
                &after.require_client_secret,
            ),
            enabled: changed(&before.enabled, &after.enabled),
            offline_access: changed(&before.offline_access, &after.offline_access),
            require_pkce: changed(&before.require_pkce, &after.require_pkce),
            grant_types: changed(&before.grant_types, &after.grant_types),
            redirect_uris: changed(&before.redirect_uris, &after.redirect_uris),
            post_logout_redirect_uris: changed(
                &before.post_logout_redirect_uris,
                &after.post_logout_redirect_uris,
            ),
            allowed_cors_origins: changed(
                &before.allowed_cors_origins,
                &after.allowed_cors_origins,
            ),
            allowed_scopes: changed(&before.allowed_scopes, &after.allowed_scopes),
            about: changed(&before.about, &after.about),
            token_endpoint_auth_method: changed(
                &before.token_endpoint_auth_method,
                &after.token_endpoint_auth_method,
            ),
            keys: changed(&before.keys, &after.keys),
        }
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Writes the changed fields into `settings`.
    pub fn apply_to(&self, settings: &mut ClientSettings) {
        fn set<T: Clone>(target: &mut T, value: &Option<T>) {
            if let Some(value) = value {
                *target = value.clone();
            }
        }
        set(&mut settings.client_name, &self.client_name);
        set(&mut settings.client_uri, &self.client_uri);
        set(
            &mut settings.require_client_secret,
            &self.require_client_secret,
        );
        set(&mut settings.enabled, &self.enabled);
        set(&mut settings.offline_access, &self.offline_access);
        set(&mut settings.require_pkce, &self.require_pkce);
        set(&mut settings.grant_types, &self.grant_types);
        set(&mut settings.redirect_uris, &self.redirect_uris);
        set(
            &mut settings.post_logout_redirect_uris,
            &self.post_logout_redirect_uris,
        );
        set(
            &mut settings.allowed_cors_origins,
            &self.allowed_cors_origins,
        );
        set(&mut settings.allowed_scopes, &self.allowed_scopes);
        set(&mut settings.about, &self.about);
        set(
            &mut settings.token_endpoint_auth_method,
            &self.token_endpoint_auth_method,
        );
        set(&mut settings.keys, &self.keys);
    }
}
