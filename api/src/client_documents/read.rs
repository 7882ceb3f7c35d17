//! A fetched document read as client settings: a JSON object of RFC 7591 client metadata
//! whose `client_id` is its own URL, for a client without a shared secret.

use registry_domain::registration::RegistrationPolicy;
use registry_domain::{ClientSettings, ClientSettingsInput};
use serde_json::Value;

use super::fetch::Refusal;
use crate::registration::metadata::{refused, ClientMetadata, Kept};
pub use registry_commands::registration::sha256_hex;

/// Members that would give a public document a shared secret.
const SECRET_MEMBERS: [&str; 2] = ["client_secret", "client_secret_expires_at"];

/// The settings `body`, fetched from `url`, describes; `current` the client's settings now,
/// whose administrator-only parts (enabled, PKCE, CORS origins) are kept.
///
/// # Errors
/// A [`Refusal`] naming what the document breaks.
pub fn settings(
    url: &str,
    body: &[u8],
    current: Option<&ClientSettings>,
) -> Result<ClientSettingsInput, Refusal> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| Refusal::new("it is not JSON (a client metadata object)"))?;
    let Some(object) = value.as_object() else {
        return Err(Refusal::new("it is not a JSON object of client metadata"));
    };
    if object.get("client_id").and_then(Value::as_str) != Some(url) {
        return Err(Refusal::new(format!(
            "its client_id is not the URL it was fetched from ({url})"
        )));
    }
    if let Some(member) = SECRET_MEMBERS.iter().find(|m| object.contains_key(**m)) {
        return Err(Refusal::new(format!(
            "it contains {member}: a published document cannot hold a shared secret"
        )));
    }
    let mut metadata = ClientMetadata::parse(body).map_err(|e| Refusal::new(e.to_string()))?;
    match metadata.token_endpoint_auth_method.as_deref() {
        None => metadata.token_endpoint_auth_method = Some("none".to_owned()),
        Some("none" | "private_key_jwt") => {}
        Some(other) => {
            return Err(Refusal::new(format!(
                "token_endpoint_auth_method: {other} needs a shared secret, which a published \
                 document cannot hold (use none or private_key_jwt)"
            )))
        }
    }
    metadata.scope.get_or_insert_with(|| "openid".to_owned());
    if metadata.client_name.is_none() {
        let host = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned));
        metadata.client_name = host;
    }
    let kept = current.map_or(
        Kept {
            enabled: true,
            require_pkce: true,
            allowed_cors_origins: Vec::new(),
        },
        |settings| Kept {
            enabled: settings.enabled,
            require_pkce: settings.require_pkce,
            allowed_cors_origins: (settings.allowed_cors_origins.iter())
                .map(ToString::to_string)
                .collect(),
        },
    );
    let input = (metadata.settings(&RegistrationPolicy::default(), kept))
        .map_err(|e| Refusal::new(e.to_string()))?;
    ClientSettings::validate(&input).map_err(|e| Refusal::new(refused(&e).to_string()))?;
    Ok(input)
}
