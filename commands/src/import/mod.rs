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

use std::fmt;

use registry_domain::values::ClientId;
use registry_domain::{ClientSettings, ClientSettingsInput};
use serde_json::Value;

use crate::documents::{ClientsDocument, DocumentClient};

mod duende;
mod keycloak;
#[cfg(test)]
mod tests;

/// Where a configuration comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Converts a configuration.
///
/// # Errors
/// When the text is not JSON or has no clients where the source keeps them.
pub fn convert(source: Source, text: &str, options: Options) -> anyhow::Result<Conversion> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| anyhow::anyhow!("the file is not JSON ({e})"))?;
    match source {
        Source::Keycloak => keycloak::convert(&value, options),
        Source::Duende => duende::convert(&value),
    }
}

/// Collects one client's entry and findings.
pub(super) struct Builder<'a> {
    pub(super) source_id: String,
    pub(super) findings: &'a mut Vec<Finding>,
}

impl Builder<'_> {
    pub(super) fn note(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.findings.push(Finding {
            client: Some(self.source_id.clone()),
            field: field.into(),
            message: message.into(),
        });
    }

    /// Keeps the values the registry's `rule` accepts, reporting each refused one.
    pub(super) fn list<T>(
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
    pub(super) fn check(&mut self, client: &DocumentClient) {
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

/// A URL of the client's (its home page, logo, terms, policy) named `field` in the source:
/// kept when the registry accepts it (`https`, or `http` on loopback), else noted and left out.
pub(super) fn page(b: &mut Builder<'_>, field: &str, value: &Value) -> Option<String> {
    let uri = text(value)?;
    match registry_domain::values::ClientUri::parse(&uri) {
        Ok(_) => Some(uri),
        Err(e) => {
            b.note(field, format!("{uri:?} left out: {}", e.0));
            None
        }
    }
}

pub(super) fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned).filter(|s| !s.is_empty())
}

pub(super) fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// Whether a Keycloak field holds what Keycloak does by default (nothing to report).
pub(super) fn is_keycloak_default(value: &Value) -> bool {
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
pub(super) fn sensitive(name: &str) -> bool {
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
pub(super) fn shown(name: &str, value: &Value) -> String {
    if sensitive(name) {
        return "(value not shown: it may be a credential)".to_owned();
    }
    short(value)
}

pub(super) fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}

/// The origin (`scheme://host[:port]`) of a URL.
pub(super) fn origin_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    match parsed.origin() {
        url::Origin::Tuple(..) => Some(parsed.origin().ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}
