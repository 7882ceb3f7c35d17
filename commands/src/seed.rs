//! The default clients of the admin guide, registered once per store by the `system` actor.

use chrono::{DateTime, Utc};
use registry_domain::ClientSettingsInput;

use crate::error::CommandError;
use crate::service::{ClientCommands, CommandContext};

/// The actor recorded on events the registry causes itself.
pub const SYSTEM_ACTOR: &str = "system";

/// The guide's three default clients, all public (no secret to hand out at set-up):
///
/// - `octo-cli` — the command-line tool: device code (RFC 8628) with refresh tokens, so a
///   login survives between invocations.
/// - `octo-idenityServices-swagger` (sic, the guide's spelling) — the Identity API's Swagger
///   UI: authorization code with PKCE, redirecting to Swagger UI's `oauth2-redirect.html`.
/// - `octo-data-refinery-studio` — the Data Refinery Studio SPA: authorization code with PKCE
///   and refresh tokens.
///
/// Their URLs point at local development addresses (loopback `http`, as RFC 8252 allows);
/// admins edit them for their deployment.
pub fn default_clients() -> Vec<(&'static str, ClientSettingsInput)> {
    let strings = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    vec![
        (
            "octo-cli",
            ClientSettingsInput {
                offline_access: true,
                grant_types: strings(&[
                    "urn:ietf:params:oauth:grant-type:device_code",
                    "refresh_token",
                ]),
                ..public("OctoMesh CLI", None)
            },
        ),
        (
            "octo-idenityServices-swagger",
            ClientSettingsInput {
                grant_types: strings(&["authorization_code"]),
                redirect_uris: strings(&["http://localhost:5003/swagger/oauth2-redirect.html"]),
                allowed_cors_origins: strings(&["http://localhost:5003"]),
                ..public(
                    "Identity Services Swagger UI",
                    Some("http://localhost:5003/swagger"),
                )
            },
        ),
        (
            "octo-data-refinery-studio",
            ClientSettingsInput {
                offline_access: true,
                grant_types: strings(&["authorization_code", "refresh_token"]),
                redirect_uris: strings(&["http://localhost:4200/callback"]),
                post_logout_redirect_uris: strings(&["http://localhost:4200/"]),
                allowed_cors_origins: strings(&["http://localhost:4200"]),
                ..public("Data Refinery Studio", Some("http://localhost:4200"))
            },
        ),
    ]
}

/// A public, enabled client with PKCE and the guide's scopes; no grant, URI or origin yet.
fn public(name: &str, uri: Option<&str>) -> ClientSettingsInput {
    ClientSettingsInput {
        client_name: Some(name.to_owned()),
        client_uri: uri.map(str::to_owned),
        require_client_secret: false,
        enabled: true,
        offline_access: false,
        require_pkce: true,
        grant_types: vec![],
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        allowed_cors_origins: vec![],
        allowed_scopes: ["openid", "profile", "email", "role", "octo_api"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        about: None,
        token_endpoint_auth_method: None,
        keys: None,
    }
}

/// The `registry_settings` key recording what the store's first set-up decided about the
/// default clients: `pending` (seed them; still so if a crash interrupted it), `done`, or
/// `skipped` (the store was set up with seeding off).
pub const DEFAULT_CLIENTS_SETTING: &str = "default_clients";

impl ClientCommands {
    /// Sets the store up the first time it is started: whether the guide's default clients
    /// are registered is decided then, from `seed`, and recorded; later starts follow that
    /// decision whatever `seed` says (a store first created with seeding off never gets them
    /// on a later start, and one whose admin deleted them never gets them back). A store set
    /// up before this was recorded, and holding events, counts as done. Returns the ids
    /// registered now.
    ///
    /// # Errors
    /// Infrastructure failures.
    pub async fn set_up_store(
        &self,
        seed: bool,
        at: DateTime<Utc>,
    ) -> Result<Vec<String>, CommandError> {
        let infra = |e: sqlx::Error| CommandError::Infrastructure(e.into());
        if self.defaults_decision(seed).await.map_err(infra)? != "pending" {
            return Ok(Vec::new());
        }
        let seeded = self.seed_default_clients(at).await?;
        (self.database())
            .set_setting(DEFAULT_CLIENTS_SETTING, "done")
            .await
            .map_err(infra)?;
        Ok(seeded)
    }

    /// What this store decided about the default clients: `pending` (to register now),
    /// `done` or `skipped`; decided once, by the first process to start on a new store.
    async fn defaults_decision(&self, seed: bool) -> Result<String, sqlx::Error> {
        let database = self.database();
        if let Some(decided) = database.setting(DEFAULT_CLIENTS_SETTING).await? {
            return Ok(decided);
        }
        let first = if database.has_events().await? {
            "done"
        } else if seed {
            "pending"
        } else {
            "skipped"
        };
        // Several processes may start on a new store at once: the first to record its
        // decision sets it for all.
        database
            .insert_setting_if_absent(DEFAULT_CLIENTS_SETTING, first)
            .await?;
        Ok((database.setting(DEFAULT_CLIENTS_SETTING).await?).unwrap_or_else(|| first.to_owned()))
    }

    /// Registers each default client whose id has never been registered in this store (its
    /// stream is empty). A default client an admin deleted has events, so it is not brought
    /// back; a crash half-way through seeding is finished at the next start. Returns the ids
    /// registered now.
    ///
    /// # Errors
    /// Infrastructure failures. A concurrent registration by another process is not an
    /// error.
    pub async fn seed_default_clients(
        &self,
        at: DateTime<Utc>,
    ) -> Result<Vec<String>, CommandError> {
        let ctx = CommandContext {
            actor: SYSTEM_ACTOR.to_owned(),
            request_id: "seed-default-clients".to_owned(),
            reason: Some("default client of the admin guide".to_owned()),
            at,
        };
        let mut seeded = Vec::new();
        for (client_id, settings) in default_clients() {
            if self.load_client(client_id).await?.client.version() > 0 {
                continue;
            }
            match self.register(&ctx, client_id, settings, None).await {
                Ok(_) => seeded.push(client_id.to_owned()),
                Err(CommandError::Conflict) => {}
                Err(CommandError::Rejected(registry_domain::ClientError::AlreadyExists)) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(seeded)
    }
}
