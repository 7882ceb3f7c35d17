//! A fetched document read as client settings: a JSON object of RFC 7591 client metadata
//! whose `client_id` is its own URL, for a client without a shared secret.

use registry_domain::registration::RegistrationPolicy;
use registry_domain::{ClientSettings, ClientSettingsInput};
use serde_json::Value;

use super::fetch::Refusal;
use crate::registration::metadata::{check, ClientMetadata, Kept};
pub use registry_commands::registration::sha256_hex;

/// Members that would give a public document a shared secret.
const SECRET_MEMBERS: [&str; 2] = ["client_secret", "client_secret_expires_at"];

/// The settings `body`, fetched from `url`, describes, checked against the registry's rules
/// and `policy` (as a dynamic registration's); `current` the client's settings now, whose
/// administrator-only parts (enabled, PKCE, CORS origins) are kept — under a policy that holds
/// clients for approval, a changed document disables its client again.
///
/// # Errors
/// A [`Refusal`] naming what the document breaks.
pub fn settings(
    url: &str,
    body: &[u8],
    current: Option<&ClientSettings>,
    policy: &RegistrationPolicy,
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
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned));
    if metadata.client_name.is_none() {
        metadata.client_name.clone_from(&host);
    }
    // The identity service fetches the keys itself, unguarded: only from the document's host.
    if let Some(jwks_uri) = &metadata.jwks_uri {
        let keys_host = url::Url::parse(jwks_uri)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned));
        if keys_host.is_none() || keys_host != host {
            return Err(Refusal::new(
                "jwks_uri must be on the document's own host (or give jwks by value)",
            ));
        }
    }
    let kept = current.map_or_else(|| Kept::new(policy), |settings| Kept::of(settings, policy));
    let input = (metadata.settings(policy, kept)).map_err(|e| Refusal::new(e.to_string()))?;
    check(&input, policy, chrono::Utc::now()).map_err(|e| Refusal::new(e.to_string()))?;
    Ok(input)
}
