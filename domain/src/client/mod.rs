//! The `Client` aggregate: an OAuth 2.0 / OIDC client registration.

mod aggregate;
pub mod changes;
mod commands;
mod errors;
mod events;
pub mod findings;
mod keys;
mod settings;
mod stamped;

#[cfg(test)]
mod tests;

pub use aggregate::{rotate, Client, ClientState, Lifecycle, RotatingSecret};
pub use commands::{ClientCommand, DeleteClient, RegisterClient, RotateSecret, UpdateClient};
pub use errors::{ClientError, FieldError, ValidationErrors};
pub use events::{
    ClientEvent, CLIENT_REGISTERED_VERSION, CLIENT_SECRET_ROTATED_VERSION, CLIENT_UPDATED_VERSION,
    EVENT_VERSION,
};
pub use keys::{ClientKeys, ClientKeysInput};
pub use settings::{
    ClientAbout, ClientAboutInput, ClientChanges, ClientSettings, ClientSettingsInput,
    MAX_CONTACTS, MAX_CORS_ORIGINS, MAX_GRANT_TYPES, MAX_REDIRECT_URIS, MAX_SCOPES,
};
pub use stamped::StampedClient;
