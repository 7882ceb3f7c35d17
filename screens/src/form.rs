//! The client form as the browser sends it (`application/x-www-form-urlencoded`, list fields
//! as repeated names), and back: what was typed, the action asked for (save, add an entry,
//! remove one, apply a suggested correction), and the errors to show beside each field.

use std::collections::BTreeMap;

use registry_domain::client::{ClientAboutInput, ClientKeysInput};
use registry_domain::ClientSettingsInput;
use registry_projections::ClientView;

/// A list field of the form: its name (the API's), its label (the guide's), and what an
/// empty entry stands for.
#[derive(Debug, Clone, Copy)]
pub struct ListField {
    /// Field name, as the API and its error paths name it.
    pub name: &'static str,
    /// Label, the guide's words.
    pub label: &'static str,
    /// Placeholder of an entry.
    pub example: &'static str,
}

/// The four list fields, in the guide's order.
pub const LIST_FIELDS: [ListField; 5] = [
    ListField {
        name: "redirect_uris",
        label: "Redirect URIs",
        example: "https://myapp.example.com/callback/",
    },
    ListField {
        name: "post_logout_redirect_uris",
        label: "Post Logout Redirect URIs",
        example: "https://myapp.example.com/",
    },
    ListField {
        name: "allowed_cors_origins",
        label: "Allowed CORS Origins",
        example: "https://myapp.example.com",
    },
    ListField {
        name: "allowed_scopes",
        label: "Allowed Scopes",
        example: "openid",
    },
    ListField {
        name: "contacts",
        label: "Contacts",
        example: "identity-team@example.com",
    },
];

/// The guide's grant types with their use cases.
pub const GRANT_TYPES: [(&str, &str); 4] = [
    (
        "authorization_code",
        "Web applications with browser-based login",
    ),
    (
        "client_credentials",
        "Service-to-service authentication (no user context)",
    ),
    (
        "urn:ietf:params:oauth:grant-type:device_code",
        "Devices and CLI tools without a browser",
    ),
    ("refresh_token", "Refresh expired access tokens"),
];

/// The guide's common scopes, offered as suggestions.
pub const COMMON_SCOPES: [(&str, &str); 6] = [
    ("openid", "Required for OIDC — provides user identifier"),
    ("profile", "User profile information (name)"),
    ("email", "User email address"),
    ("role", "User roles"),
    ("octo_api", "Full access to all OctoMesh APIs"),
    (
        "octo_api.read_only",
        "Read-only access to all OctoMesh APIs",
    ),
];

/// Percent-encodes a value for a URL query or form.
pub fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The most entries of one list field a posted form is read with (every list's own limit is
/// lower: the rest is refused by validation, with the field named).
const MAX_POSTED_ENTRIES: usize = 200;

/// The value of a choice that keeps what the client has (a form from a page that did not
/// offer the choice).
pub const KEEP: &str = "keep";

/// A form post: every value of every name, in order.
#[derive(Debug, Clone, Default)]
pub struct Posted(BTreeMap<String, Vec<String>>);

impl Posted {
    /// Parses an `application/x-www-form-urlencoded` body.
    pub fn parse(body: &[u8]) -> Self {
        let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in form_urlencoded::parse(body) {
            fields
                .entry(name.into_owned())
                .or_default()
                .push(value.into_owned());
        }
        Self(fields)
    }

    /// The first value of `name`.
    pub fn one(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .and_then(|values| values.first())
            .map(String::as_str)
    }

    /// The client version the form was loaded at (its hidden `version` field).
    pub fn version(&self) -> Option<u64> {
        self.one("version").and_then(|v| v.parse().ok())
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> &[String] {
        self.0.get(name).map_or(&[], Vec::as_slice)
    }

    /// Whether a checkbox named `name` was checked.
    pub fn checked(&self, name: &str) -> bool {
        self.one(name).is_some()
    }
}

/// What the person asked for with the button they pressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Save the client.
    Save,
    /// Add an empty entry to a list field.
    Add(String),
    /// Remove entry `index` of a list field.
    Remove(String, usize),
    /// Replace entry `index` of a list field with a suggested value (the corrected CORS
    /// origin).
    Replace(String, usize, String),
}

impl Action {
    /// The action of a posted form: its `action` button's value.
    pub fn of(posted: &Posted) -> Self {
        let Some(action) = posted.one("action") else {
            return Self::Save;
        };
        let mut parts = action.splitn(4, ':');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("add"), Some(field), None, None) => Self::Add(field.to_owned()),
            (Some("remove"), Some(field), Some(index), None) => index
                .parse()
                .map_or(Self::Save, |i| Self::Remove(field.to_owned(), i)),
            (Some("replace"), Some(field), Some(index), Some(value)) => {
                index.parse().map_or(Self::Save, |i| {
                    Self::Replace(field.to_owned(), i, value.to_owned())
                })
            }
            _ => Self::Save,
        }
    }
}

/// The client form's values, as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientForm {
    /// Client ID.
    pub client_id: String,
    /// Client Name.
    pub client_name: String,
    /// Client URI.
    pub client_uri: String,
    /// Client Secret (create only; empty: generated for a confidential client).
    pub client_secret: String,
    /// Require Client Secret.
    pub require_client_secret: bool,
    /// Enabled.
    pub enabled: bool,
    /// Offline Access (Refresh Tokens).
    pub offline_access: bool,
    /// Require PKCE.
    pub require_pkce: bool,
    /// Allowed Grant Types.
    pub grant_types: Vec<String>,
    /// The four list fields, by name.
    pub lists: BTreeMap<&'static str, Vec<String>>,
    /// The version the form was loaded at (editing).
    pub version: Option<u64>,
    /// Reason for the change.
    pub reason: String,
    /// Token Endpoint Authentication: `Some("")` the default, `None` a form posted without
    /// the field (from a page older than it), which keeps the client's.
    pub token_endpoint_auth_method: Option<String>,
    /// "About the Application" (RFC 7591 §2) but the contacts, which are a list field;
    /// `None`: a form posted without that section (from a page older than it), which keeps
    /// the client's.
    pub about: Option<ClientAboutInput>,
    /// "Client Keys"; `None`: a form posted without that section (from a page older than
    /// it), which keeps the client's.
    pub keys: Option<KeysForm>,
}

/// "Client Keys" as typed: the JWK Set (JSON) and its URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeysForm {
    /// The JWK Set, as JSON text.
    pub jwks: String,
    /// Where the client publishes it.
    pub jwks_uri: String,
}

impl KeysForm {
    /// Whether what was typed may hold a private key, which a page never shows again (like a
    /// typed secret): a private or symmetric member in any JSON object of it, a PEM private
    /// key, or text that is not JSON at all (nothing can be told of it).
    pub fn may_hold_private_key(&self) -> bool {
        fn private(value: &serde_json::Value) -> bool {
            match value {
                serde_json::Value::Object(members) => {
                    (registry_domain::values::PRIVATE_KEY_MEMBERS.iter())
                        .any(|member| members.contains_key(*member))
                        || members.values().any(private)
                }
                serde_json::Value::Array(items) => items.iter().any(private),
                _ => false,
            }
        }
        let text = self.jwks.trim();
        !text.is_empty()
            && (text.contains("PRIVATE KEY")
                || serde_json::from_str::<serde_json::Value>(text).map_or(true, |v| private(&v)))
    }

    /// As the domain takes it: blank fields are none; text that is not JSON goes on as a
    /// string, which the rules refuse naming `jwks`.
    fn input(&self) -> ClientKeysInput {
        let jwks = Some(self.jwks.trim())
            .filter(|t| !t.is_empty())
            .map(|text| {
                serde_json::from_str(text)
                    .unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))
            });
        ClientKeysInput {
            jwks,
            jwks_uri: Some(self.jwks_uri.trim().to_owned()).filter(|u| !u.is_empty()),
        }
    }
}

impl ClientForm {
    /// A new client's form: the guide's defaults.
    pub fn new_client() -> Self {
        let mut lists: BTreeMap<&'static str, Vec<String>> =
            LIST_FIELDS.iter().map(|f| (f.name, Vec::new())).collect();
        lists.insert("redirect_uris", vec![String::new()]);
        lists.insert(
            "allowed_scopes",
            vec!["openid".to_owned(), "profile".to_owned()],
        );
        Self {
            client_id: String::new(),
            client_name: String::new(),
            client_uri: String::new(),
            client_secret: String::new(),
            require_client_secret: true,
            enabled: true,
            offline_access: false,
            require_pkce: true,
            grant_types: vec!["authorization_code".to_owned()],
            lists,
            version: None,
            reason: String::new(),
            token_endpoint_auth_method: Some(String::new()),
            about: Some(ClientAboutInput {
                application_type: Some("web".to_owned()),
                ..ClientAboutInput::default()
            }),
            keys: Some(KeysForm::default()),
        }
    }

    /// The form of an existing client, at its version.
    pub fn of(view: &ClientView) -> Self {
        let settings = &view.settings;
        fn texts<T: ToString>(values: &[T]) -> Vec<String> {
            values.iter().map(ToString::to_string).collect()
        }
        let lists = BTreeMap::from([
            ("redirect_uris", texts(&settings.redirect_uris)),
            (
                "post_logout_redirect_uris",
                texts(&settings.post_logout_redirect_uris),
            ),
            (
                "allowed_cors_origins",
                texts(&settings.allowed_cors_origins),
            ),
            ("allowed_scopes", texts(&settings.allowed_scopes)),
            ("contacts", texts(&settings.about.contacts)),
        ]);
        Self {
            client_id: view.client_id.clone(),
            client_name: settings.client_name.to_string(),
            client_uri: settings
                .client_uri
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            client_secret: String::new(),
            require_client_secret: settings.require_client_secret,
            enabled: settings.enabled,
            offline_access: settings.offline_access,
            require_pkce: settings.require_pkce,
            grant_types: settings
                .grant_types
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            lists,
            version: Some(view.version),
            reason: String::new(),
            token_endpoint_auth_method: Some(
                (settings.token_endpoint_auth_method)
                    .map(|m| m.name().to_owned())
                    .unwrap_or_default(),
            ),
            about: Some(settings.about.input()),
            keys: Some(KeysForm {
                jwks: (settings.keys.jwks.as_ref())
                    .and_then(|jwks| serde_json::to_string_pretty(jwks).ok())
                    .unwrap_or_default(),
                jwks_uri: (settings.keys.jwks_uri.as_ref())
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            }),
        }
    }

    /// The form as posted (list entries kept as typed, empty ones included, so the page comes
    /// back as it was).
    pub fn from_posted(posted: &Posted) -> Self {
        let text = |name: &str| posted.one(name).unwrap_or_default().to_owned();
        Self {
            client_id: text("client_id").trim().to_owned(),
            client_name: text("client_name"),
            client_uri: text("client_uri"),
            client_secret: text("client_secret"),
            require_client_secret: posted.checked("require_client_secret"),
            enabled: posted.checked("enabled"),
            offline_access: posted.checked("offline_access"),
            require_pkce: posted.checked("require_pkce"),
            grant_types: posted
                .all("grant_types")
                .iter()
                .take(MAX_POSTED_ENTRIES)
                .cloned()
                .collect(),
            // More than any list may hold (validation names the field), but never a page of
            // tens of thousands of inputs.
            lists: LIST_FIELDS
                .iter()
                .map(|field| {
                    let entries = posted.all(field.name);
                    (
                        field.name,
                        entries[..entries.len().min(MAX_POSTED_ENTRIES)].to_vec(),
                    )
                })
                .collect(),
            version: posted.version(),
            reason: text("reason"),
            token_endpoint_auth_method: posted
                .one("token_endpoint_auth_method")
                .filter(|method| *method != KEEP)
                .map(ToOwned::to_owned),
            about: posted.one("application_type").map(|kind| {
                let optional = |name: &str| posted.one(name).map(ToOwned::to_owned);
                ClientAboutInput {
                    application_type: Some(kind.to_owned()),
                    logo_uri: optional("logo_uri"),
                    tos_uri: optional("tos_uri"),
                    policy_uri: optional("policy_uri"),
                    contacts: Vec::new(),
                    software_id: optional("software_id"),
                    software_version: optional("software_version"),
                }
            }),
            keys: posted.one("jwks_uri").map(|uri| KeysForm {
                jwks: text("jwks"),
                jwks_uri: uri.to_owned(),
            }),
        }
    }

    /// Applies an add, remove or replace action to the lists.
    pub fn apply(&mut self, action: &Action) {
        fn list<'a>(form: &'a mut ClientForm, name: &str) -> Option<&'a mut Vec<String>> {
            let field = LIST_FIELDS.iter().find(|f| f.name == name)?;
            form.lists.get_mut(field.name)
        }
        match action {
            Action::Save => {}
            Action::Add(name) => {
                if let Some(entries) = list(self, name) {
                    entries.push(String::new());
                }
            }
            Action::Remove(name, index) => {
                if let Some(entries) = list(self, name) {
                    if *index < entries.len() {
                        entries.remove(*index);
                    }
                }
            }
            Action::Replace(name, index, value) => {
                if let Some(entry) = list(self, name).and_then(|e| e.get_mut(*index)) {
                    value.clone_into(entry);
                }
            }
        }
    }

    /// The entries of a list field.
    pub fn list(&self, name: &str) -> &[String] {
        self.lists.get(name).map_or(&[], Vec::as_slice)
    }

    /// The settings to validate and save. Blank list entries are dropped (an "Add" left
    /// empty); everything else goes to the domain's rules as typed.
    pub fn settings(&self) -> ClientSettingsInput {
        let entries = |name: &str| {
            self.list(name)
                .iter()
                .filter(|e| !e.trim().is_empty())
                .cloned()
                .collect::<Vec<_>>()
        };
        ClientSettingsInput {
            client_name: Some(self.client_name.clone()),
            client_uri: Some(self.client_uri.trim().to_owned()).filter(|u| !u.is_empty()),
            require_client_secret: self.require_client_secret,
            enabled: self.enabled,
            offline_access: self.offline_access,
            require_pkce: self.require_pkce,
            grant_types: self.grant_types.clone(),
            redirect_uris: entries("redirect_uris"),
            post_logout_redirect_uris: entries("post_logout_redirect_uris"),
            allowed_cors_origins: entries("allowed_cors_origins"),
            allowed_scopes: entries("allowed_scopes"),
            token_endpoint_auth_method: (self.token_endpoint_auth_method.as_ref())
                .map(|method| Some(method.clone()).filter(|m| !m.is_empty())),
            about: self.about.as_ref().map(|about| {
                let filled = |value: &Option<String>| {
                    (value.as_deref().map(str::trim))
                        .filter(|v| !v.is_empty())
                        .map(ToOwned::to_owned)
                };
                ClientAboutInput {
                    application_type: about.application_type.clone(),
                    logo_uri: filled(&about.logo_uri),
                    tos_uri: filled(&about.tos_uri),
                    policy_uri: filled(&about.policy_uri),
                    contacts: entries("contacts"),
                    software_id: filled(&about.software_id),
                    software_version: filled(&about.software_version),
                }
            }),
            keys: self.keys.as_ref().map(KeysForm::input),
        }
    }

    /// Error paths of the rules point into the lists without blank entries
    /// (`redirect_uris[1]` is the second non-blank one); this is the index of that entry in
    /// the form as shown.
    pub fn shown_index(&self, name: &str, index: usize) -> Option<usize> {
        self.list(name)
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.trim().is_empty())
            .nth(index)
            .map(|(i, _)| i)
    }
}

/// Field errors of a save, keyed by the form's own field paths (`redirect_uris[2]` as shown).
#[derive(Debug, Clone, Default)]
pub struct FieldErrors(pub BTreeMap<String, Vec<String>>);

impl FieldErrors {
    /// The errors of the API's validation, moved onto the entries as shown.
    pub fn from_api(form: &ClientForm, errors: &[registry_api::error::ProblemFieldError]) -> Self {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for error in errors {
            // A key's member (`jwks.keys[0].d`): shown at the JWK Set, naming the member.
            if let Some(member) = error.field.strip_prefix("jwks.") {
                let message = format!("{member}: {}", error.message);
                map.entry("jwks".to_owned()).or_default().push(message);
                continue;
            }
            let field = match error.field.split_once('[') {
                Some((name, rest)) => {
                    let index = rest.trim_end_matches(']').parse::<usize>().ok();
                    match index.and_then(|i| form.shown_index(name, i)) {
                        Some(shown) => format!("{name}[{shown}]"),
                        None => name.to_owned(),
                    }
                }
                None => error.field.clone(),
            };
            map.entry(field).or_default().push(error.message.clone());
        }
        Self(map)
    }

    /// The messages of one field path.
    pub fn of(&self, field: &str) -> &[String] {
        self.0.get(field).map_or(&[], Vec::as_slice)
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The corrected origin a CORS error suggests (`must not have a trailing slash: use "…"`).
pub fn suggested_origin(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once("use \"")?;
    rest.split_once('"').map(|(origin, _)| origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_become_lists_and_buttons_become_actions() {
        let posted = Posted::parse(
            b"client_id=app&redirect_uris=https%3A%2F%2Fa%2Fcb&redirect_uris=&enabled=on\
              &grant_types=authorization_code&grant_types=refresh_token&action=remove%3Aredirect_uris%3A1",
        );
        let mut form = ClientForm::from_posted(&posted);
        assert_eq!(form.list("redirect_uris"), ["https://a/cb", ""]);
        assert!(form.enabled && !form.require_client_secret);
        assert_eq!(form.grant_types, ["authorization_code", "refresh_token"]);
        let action = Action::of(&posted);
        assert_eq!(action, Action::Remove("redirect_uris".into(), 1));
        form.apply(&action);
        assert_eq!(form.list("redirect_uris"), ["https://a/cb"]);
        form.apply(&Action::Add("allowed_cors_origins".into()));
        assert_eq!(form.list("allowed_cors_origins"), [""]);
        form.apply(&Action::Replace(
            "allowed_cors_origins".into(),
            0,
            "https://x.example.com".into(),
        ));
        assert_eq!(form.list("allowed_cors_origins"), ["https://x.example.com"]);
    }

    #[test]
    fn error_paths_point_at_the_entries_as_shown() {
        let posted =
            Posted::parse(b"redirect_uris=&redirect_uris=https%3A%2F%2Fok&redirect_uris=bad");
        let form = ClientForm::from_posted(&posted);
        let errors = FieldErrors::from_api(
            &form,
            &[registry_api::error::ProblemFieldError {
                field: "redirect_uris[1]".into(),
                message: "must be an absolute URL".into(),
            }],
        );
        assert_eq!(errors.of("redirect_uris[2]"), ["must be an absolute URL"]);
    }

    #[test]
    fn the_corrected_origin_is_read_from_the_message() {
        assert_eq!(
            suggested_origin("must not have a trailing slash: use \"https://a.example.com\""),
            Some("https://a.example.com")
        );
        assert_eq!(suggested_origin("must be an origin"), None);
    }
}
