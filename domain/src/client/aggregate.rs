use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use super::commands::{ClientCommand, DeleteClient, RegisterClient, RotateSecret, UpdateClient};
use super::errors::{ClientError, ValidationErrors};
use super::events::ClientEvent;
use super::settings::{ClientChanges, ClientSettings, ClientSettingsInput};
use crate::values::{ClientId, SecretRecord, TokenEndpointAuthMethod};

/// The `Client` aggregate: one OAuth client registration, rebuilt from its event stream.
/// The aggregate id is the `client_id`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Client {
    lifecycle: Lifecycle,
    version: u64,
}

/// Where a client is in its life.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum Lifecycle {
    /// No event yet (cqrs-es loads an unknown id as `Default`).
    #[default]
    NeverRegistered,
    /// Registered and not deleted.
    Active(ClientState),
    /// Deleted; the last state is kept for the record.
    Deleted(ClientState),
}

/// Everything known about a registered client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientState {
    /// Its id.
    pub client_id: ClientId,
    /// Its editable settings.
    pub settings: ClientSettings,
    /// Its secrets that have not expired at the time of the last event, oldest first.
    pub secrets: Vec<SecretRecord>,
}

impl ClientState {
    /// Whether it holds a secret that no rotation has retired by `at` — current, or in its
    /// grace — even one past its lifetime: that one is renewed by a rotation, an
    /// administrator's decision, never silently by an update.
    pub fn has_unretired_secret(&self, at: DateTime<Utc>) -> bool {
        (self.secrets.iter()).any(|s| s.expires_at.is_none_or(|grace| grace > at))
    }
}

impl Client {
    /// Number of events applied; the optimistic-concurrency version (`ETag`).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Where the client is in its life.
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// The state of a live (registered, not deleted) client.
    pub fn live(&self) -> Option<&ClientState> {
        match &self.lifecycle {
            Lifecycle::Active(state) => Some(state),
            _ => None,
        }
    }

    /// Whether an update to `settings` at `at` needs a newly generated secret: the client
    /// comes to authenticate with a secret (made confidential, or moved off its keys: an old,
    /// possibly leaked secret never comes back), or keeps doing so with none left (every one
    /// retired by a rotation). A secret past its lifetime is not renewed by an update: a
    /// rotation renews it.
    /// The write side asks this before hashing, so it only pays for argon2 when a secret will
    /// be used.
    pub fn update_needs_secret(&self, settings: &ClientSettingsInput, at: DateTime<Utc>) -> bool {
        self.live().is_some_and(|state| {
            settings.uses_secret(state.settings.token_endpoint_auth_method)
                && (!state.settings.uses_secret() || !state.has_unretired_secret(at))
        })
    }

    /// Decides which event, if any, `command` produces. Pure: no I/O, no clock.
    ///
    /// # Errors
    /// [`ClientError::NotFound`] for a command on an unknown or deleted client,
    /// [`ClientError::AlreadyExists`] for registering a live id,
    /// [`ClientError::VersionMismatch`] for a stale expected version,
    /// [`ClientError::Invalid`] with every violated rule.
    pub fn decide(&self, command: ClientCommand) -> Result<Option<ClientEvent>, ClientError> {
        match command {
            ClientCommand::Register(cmd) => self.register(cmd).map(Some),
            ClientCommand::Update(cmd) => self.update(cmd),
            ClientCommand::RotateSecret(cmd) => self.rotate_secret(cmd).map(Some),
            ClientCommand::Delete(cmd) => self.delete(cmd).map(Some),
        }
    }

    fn check_version(&self, expected: Option<u64>) -> Result<(), ClientError> {
        match expected {
            Some(expected) if expected != self.version => Err(ClientError::VersionMismatch {
                expected,
                actual: self.version,
            }),
            _ => Ok(()),
        }
    }

    fn live_at(&self, expected: Option<u64>) -> Result<&ClientState, ClientError> {
        let state = self.live().ok_or(ClientError::NotFound)?;
        self.check_version(expected)?;
        Ok(state)
    }

    fn register(&self, cmd: RegisterClient) -> Result<ClientEvent, ClientError> {
        if self.live().is_some() {
            return Err(ClientError::AlreadyExists);
        }
        self.check_version(cmd.expected_version)?;
        let mut errors = ValidationErrors::default();
        let client_id = ClientId::parse(&cmd.client_id)
            .and_then(|id| id.check_registrable().map(|()| id))
            .map_err(|e| errors.add("client_id", e.0))
            .ok();
        let settings = ClientSettings::validate(&cmd.settings)
            .map_err(|e| errors.merge(e))
            .ok();
        match (cmd.settings.uses_secret(None), &cmd.secret) {
            (true, None) => errors.add(
                "client_secret",
                "a confidential client (require_client_secret: true) needs a secret",
            ),
            (false, Some(_)) if cmd.settings.require_client_secret => errors.add(
                "client_secret",
                "a private_key_jwt client authenticates with its keys and has no secret",
            ),
            (false, Some(_)) => errors.add(
                "client_secret",
                "a public client (require_client_secret: false) cannot have a secret",
            ),
            _ => {}
        }
        match (client_id, settings) {
            (Some(client_id), Some(settings)) if errors.is_empty() => {
                Ok(ClientEvent::ClientRegistered {
                    client_id,
                    settings,
                    secret: cmd.secret,
                })
            }
            _ => Err(ClientError::Invalid(errors)),
        }
    }

    fn update(&self, cmd: UpdateClient) -> Result<Option<ClientEvent>, ClientError> {
        let state = self.live_at(cmd.expected_version)?;
        let mut errors = ValidationErrors::default();
        // What the command leaves out (the description, the authentication method) the
        // client keeps: validated with the rest, against the settings it now has.
        let mut input = cmd.settings.clone();
        let kept = &state.settings;
        input.about.get_or_insert_with(|| kept.about.input());
        input.keys.get_or_insert_with(|| kept.keys.input());
        (input.token_endpoint_auth_method)
            .get_or_insert_with(|| kept.token_endpoint_auth_method.map(|m| m.name().to_owned()));
        let settings = ClientSettings::validate(&input)
            .map_err(|e| errors.merge(e))
            .ok();
        let needs_secret = self.update_needs_secret(&cmd.settings, cmd.at);
        match (needs_secret, &cmd.new_secret) {
            (true, None) => errors.add(
                "client_secret",
                "a confidential client (require_client_secret: true) needs a secret",
            ),
            (false, Some(_)) => errors.add(
                "client_secret",
                "secrets of an existing client change only through rotation",
            ),
            _ => {}
        }
        let Some(settings) = settings.filter(|_| errors.is_empty()) else {
            return Err(ClientError::Invalid(errors));
        };
        let changes = ClientChanges::between(&state.settings, &settings);
        // A client made public, or moved to its keys, loses every secret; one that comes back
        // to a secret loses any an older event left behind (it gets a new one above).
        let revoked_secrets: Vec<String> = if state.settings.require_client_secret
            != settings.require_client_secret
            || state.settings.uses_secret() != settings.uses_secret()
        {
            state.secrets.iter().map(|s| s.secret_id.clone()).collect()
        } else {
            Vec::new()
        };
        if changes.is_empty() && cmd.new_secret.is_none() {
            return Ok(None);
        }
        Ok(Some(ClientEvent::ClientUpdated {
            changes,
            secret: cmd.new_secret,
            revoked_secrets,
        }))
    }

    fn rotate_secret(&self, cmd: RotateSecret) -> Result<ClientEvent, ClientError> {
        let state = self.live_at(cmd.expected_version)?;
        if !state.settings.uses_secret() {
            let mut errors = ValidationErrors::default();
            if state.settings.require_client_secret {
                errors.add(
                    "token_endpoint_auth_method",
                    "a private_key_jwt client authenticates with its keys and has no secret; rotate its keys instead",
                );
            } else {
                errors.add(
                    "require_client_secret",
                    "a public client has no secret; make it confidential first",
                );
            }
            return Err(ClientError::Invalid(errors));
        }
        let now = cmd.secret.created_at;
        let previous_secrets_expire_at = cmd
            .previous_secrets_valid_until
            .map_or(now, |until| until.max(now));
        // Only the current secret gets the grace: one still in the grace of an earlier
        // rotation ends now, so at most two secrets are ever valid (and a wrong secret costs
        // at most two argon2 verifications).
        let ended_secrets = state
            .secrets
            .iter()
            .filter(|s| s.expires_at.is_some() && s.is_active_at(now))
            .map(|s| s.secret_id.clone())
            .collect();
        Ok(ClientEvent::ClientSecretRotated {
            secret: cmd.secret,
            previous_secrets_expire_at,
            ended_secrets,
        })
    }

    fn delete(&self, cmd: DeleteClient) -> Result<ClientEvent, ClientError> {
        self.live_at(cmd.expected_version)?;
        Ok(ClientEvent::ClientDeleted {})
    }
}

impl Aggregate for Client {
    const TYPE: &'static str = "Client";
    type Command = ClientCommand;
    type Event = ClientEvent;
    type Error = ClientError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if let Some(event) = self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.version += 1;
        let lifecycle = std::mem::take(&mut self.lifecycle);
        self.lifecycle = match (lifecycle, event) {
            (
                _,
                ClientEvent::ClientRegistered {
                    client_id,
                    settings,
                    secret,
                },
            ) => Lifecycle::Active(ClientState {
                client_id,
                settings,
                secrets: secret.into_iter().collect(),
            }),
            (
                Lifecycle::Active(mut state),
                ClientEvent::ClientUpdated {
                    changes,
                    secret,
                    revoked_secrets,
                },
            ) => {
                changes.apply_to(&mut state.settings);
                state
                    .secrets
                    .retain(|s| !revoked_secrets.contains(&s.secret_id));
                state.secrets.extend(secret);
                Lifecycle::Active(state)
            }
            (
                Lifecycle::Active(mut state),
                ClientEvent::ClientSecretRotated {
                    secret,
                    previous_secrets_expire_at,
                    ended_secrets,
                },
            ) => {
                rotate(
                    &mut state.secrets,
                    secret,
                    previous_secrets_expire_at,
                    &ended_secrets,
                );
                Lifecycle::Active(state)
            }
            (Lifecycle::Active(state), ClientEvent::ClientDeleted {}) => Lifecycle::Deleted(state),
            // A stream the aggregate would never have produced; keep the state as it was.
            (other, _) => other,
        };
    }
}

/// A secret as rotation sees it: the aggregate's records and the read model's views (which have
/// no hash) rotate by the one rule of [`rotate`].
pub trait RotatingSecret {
    /// Its id, when it was created, and when it stops being accepted (`None`: the current
    /// secret).
    fn parts(&mut self) -> (&str, DateTime<Utc>, &mut Option<DateTime<Utc>>);
}

impl RotatingSecret for SecretRecord {
    fn parts(&mut self) -> (&str, DateTime<Utc>, &mut Option<DateTime<Utc>>) {
        (&self.secret_id, self.created_at, &mut self.expires_at)
    }
}

/// Caps the expiry of the previous secrets (those in `ended` at the new one's creation),
/// drops those already expired when the new one is created, and appends the new one.
pub fn rotate<S: RotatingSecret>(
    secrets: &mut Vec<S>,
    mut new: S,
    previous_expire_at: DateTime<Utc>,
    ended: &[String],
) {
    let (_, now, _) = new.parts();
    for previous in secrets.iter_mut() {
        let (id, _, expires_at) = previous.parts();
        let until = if ended.iter().any(|e| e == id) {
            now
        } else {
            previous_expire_at
        };
        *expires_at = Some(expires_at.map_or(until, |e| e.min(until)));
    }
    secrets.retain_mut(|s| s.parts().2.is_none_or(|expiry| expiry > now));
    secrets.push(new);
}

impl ClientSettingsInput {
    /// Whether the client these settings describe authenticates with a shared secret: a
    /// confidential client but one that signs with its keys (`private_key_jwt`). `kept` is
    /// the method it has when the input leaves the method out.
    pub fn uses_secret(&self, kept: Option<TokenEndpointAuthMethod>) -> bool {
        let named = match &self.token_endpoint_auth_method {
            None => kept.map(|m| m.name().to_owned()),
            Some(named) => named.clone(),
        };
        self.require_client_secret
            && named.as_deref() != Some(TokenEndpointAuthMethod::PrivateKeyJwt.name())
    }
}
