//! Executes client commands: load the client's stream, decide, hash secrets, append, project.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventRepository;
use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventStore};
use cqrs_es::{Aggregate, AggregateError, EventEnvelope, EventStore, Query};
use registry_domain::client::{
    ClientCommand, DeleteClient, RegisterClient, RotateSecret, UpdateClient, ValidationErrors,
};
use registry_domain::values::{ClientId, SecretRecord};
use registry_domain::{Client, ClientError, ClientSettingsInput, EventMetadata, StampedClient};

use crate::database::Database;
use crate::error::CommandError;
use crate::event_store::EventRepository;
use crate::mac::MacKey;
use crate::secrets::{dry_run_record, SecretHasher, SecretString};
use crate::snapshots::{StoredSnapshot, SNAPSHOT_EVERY};
use crate::verified::VerifiedSecrets;

/// Longest wait for the writer gate (SQLite): past it the command answers busy (503) without
/// writing, instead of queueing behind a stalled writer for ever.
pub const WRITER_GATE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The write side: runs the four client commands against the event store (cqrs-es in
/// event-store mode) and applies their events to the read models before returning.
///
/// This is cqrs-es's `CqrsFramework::execute_with_metadata` (load, handle, commit, dispatch)
/// written out, because the framework returns `()`: the API needs the new version for its
/// `ETag`, and needs to look at the loaded client before hashing a secret (argon2 is paid only
/// for commands that will be accepted).
pub struct ClientCommands {
    /// Appends and projects; shared with the task each commit runs in.
    writer: Arc<Writer>,
    /// When clients last passed verification.
    last_authenticated: Arc<crate::last_authenticated::LastAuthenticated>,
    /// The same repository, read directly to load a stream's tail after a snapshot.
    repository: EventRepository,
    database: Database,
    hasher: SecretHasher,
    metrics: crate::metrics::CommandMetrics,
    /// How long an issued secret lives (`None`: until rotated).
    secret_lifetime: Option<chrono::Duration>,
}

/// The part of a command that holds the writer gate, a transaction or a per-client lock:
/// append the events, save a due snapshot, apply the inline projections. It runs as a task of
/// its own ([`Writer::spawn_commit`]), so a caller that goes away (a client disconnect, a
/// request timeout: axum drops the handler's future) cannot stop it half-way; it finishes or
/// fails on its own, and every lock and connection it took is released either way.
struct Writer {
    store: PersistedEventStore<EventRepository, Client>,
    database: Database,
    writer_gate: Option<Arc<tokio::sync::Mutex<()>>>,
    queries: Vec<Arc<dyn Query<Client>>>,
    /// Signs and checks snapshots; without one, none are written or read.
    snapshot_key: Option<MacKey>,
    /// Secrets verified before; every commit forgets its client's.
    verified: Arc<VerifiedSecrets>,
}

impl ClientCommands {
    /// Commands on `database`, dispatching committed events to `queries`.
    pub fn new(
        database: &Database,
        queries: Vec<Arc<dyn Query<Client>>>,
        hasher: SecretHasher,
    ) -> Self {
        let store = PersistedEventStore::new_event_store(EventRepository::new(database))
            .with_upcasters(registry_domain::upcasters());
        Self {
            writer: Arc::new(Writer {
                store,
                database: database.clone(),
                writer_gate: database.writer_gate(),
                queries,
                snapshot_key: None,
                verified: Arc::new(VerifiedSecrets::new(crate::verified::DEFAULT_CAPACITY)),
            }),
            repository: EventRepository::new(database),
            database: database.clone(),
            metrics: crate::metrics::CommandMetrics::new(hasher.wait_histogram()),
            hasher,
            last_authenticated: Arc::new(crate::last_authenticated::LastAuthenticated::new(
                database.clone(),
            )),
            secret_lifetime: None,
        }
    }

    /// Gives every secret issued from now on a lifetime (`client_secret_expires_at`): past
    /// it, the secret no longer verifies.
    #[must_use]
    pub fn with_secret_lifetime(mut self, lifetime: Option<chrono::Duration>) -> Self {
        self.secret_lifetime = lifetime;
        self
    }

    /// Signs and checks snapshots of long streams with `key` (every process of a store must
    /// use the same; another's are ignored). Without a key no snapshot is written or read.
    #[must_use]
    pub fn with_snapshot_key(mut self, key: MacKey) -> Self {
        if let Some(writer) = Arc::get_mut(&mut self.writer) {
            writer.snapshot_key = Some(key);
        }
        self
    }

    /// Remembers at most `capacity` clients' verified secrets (0: verify every time with
    /// argon2id).
    #[must_use]
    pub fn with_verified_capacity(mut self, capacity: usize) -> Self {
        if let Some(writer) = Arc::get_mut(&mut self.writer) {
            writer.verified = Arc::new(VerifiedSecrets::new(capacity));
        }
        self
    }

    /// The memory of verified secrets, for the feed follower to tell of other processes'
    /// events.
    pub fn verified_secrets(&self) -> &Arc<VerifiedSecrets> {
        &self.writer.verified
    }

    /// Registers `client_id`. A confidential client without `client_secret` gets a generated
    /// one, returned once in [`Executed::secret`].
    ///
    /// # Errors
    /// [`CommandError::Rejected`] with `AlreadyExists` or every invalid field;
    /// [`CommandError::Conflict`] when registered concurrently; infrastructure failures.
    pub async fn register(
        &self,
        ctx: &CommandContext,
        client_id: &str,
        settings: ClientSettingsInput,
        client_secret: Option<String>,
    ) -> Result<Executed, CommandError> {
        self.register_at(ctx, client_id, settings, client_secret, None)
            .await
    }

    /// Like [`Self::register`], only if the client's stream is at `expected_version` (0: never
    /// registered; else the version it was deleted at): a plan made before the id was used
    /// again does not register it once more.
    ///
    /// # Errors
    /// As [`Self::register`]; [`CommandError::Rejected`] with `VersionMismatch` when the
    /// stream moved on.
    #[tracing::instrument(skip_all, fields(client_id = %client_id))]
    pub async fn register_at(
        &self,
        ctx: &CommandContext,
        client_id: &str,
        settings: ClientSettingsInput,
        client_secret: Option<String>,
        expected_version: Option<u64>,
    ) -> Result<Executed, CommandError> {
        let by_hand = (client_secret, expected_version);
        self.register_as(ctx, client_id, settings, by_hand, false)
            .await
    }

    /// Registers the client whose id is the URL of the client ID metadata document that
    /// `settings` were read from: only the registry's resolver does (an administrator cannot
    /// register such an id by hand: the document says what the client is).
    ///
    /// # Errors
    /// As [`Self::register`].
    pub async fn register_document(
        &self,
        ctx: &CommandContext,
        client_id: &str,
        settings: ClientSettingsInput,
    ) -> Result<Executed, CommandError> {
        self.register_as(ctx, client_id, settings, (None, None), true)
            .await
    }

    async fn register_as(
        &self,
        ctx: &CommandContext,
        client_id: &str,
        settings: ClientSettingsInput,
        (client_secret, expected_version): (Option<String>, Option<u64>),
        document: bool,
    ) -> Result<Executed, CommandError> {
        self.counted("register", async {
            let loaded = self.load(client_id).await?;
            let mut errors = ValidationErrors::default();
            let url = ClientId::names_document(client_id);
            if url && !document {
                errors.add(
                    "client_id",
                    "is the URL of a client ID metadata document: such a client is registered \
                     by the registry fetching its document (REGISTRY_CLIENT_ID_DOCUMENTS), not \
                     by hand",
                );
            }
            let given = parse_given_secret(client_secret, &mut errors);
            let wants_secret = given.is_some() || settings.uses_secret(None);
            let command = |secret: Option<SecretRecord>| {
                ClientCommand::Register(RegisterClient {
                    client_id: client_id.to_owned(),
                    settings: settings.clone(),
                    secret,
                    expected_version,
                })
            };
            (self.with_secret(loaded, ctx, errors, (wants_secret, given), command)).await
        })
        .await
    }

    /// Replaces every editable setting of `client_id`. A client made confidential without an
    /// active secret gets a generated one. An update that changes nothing writes no event.
    ///
    /// # Errors
    /// [`CommandError::Rejected`] with `NotFound`, `VersionMismatch` or every invalid field;
    /// [`CommandError::Conflict`]; infrastructure failures.
    #[tracing::instrument(skip_all, fields(client_id = %client_id))]
    pub async fn update(
        &self,
        ctx: &CommandContext,
        client_id: &str,
        settings: ClientSettingsInput,
        expected_version: Option<u64>,
    ) -> Result<Executed, CommandError> {
        self.update_as(ctx, client_id, settings, expected_version, false)
            .await
    }

    /// Updates the client of a client ID metadata document to the settings its new version
    /// describes: only the registry's resolver (and an administrator's approval of a held
    /// version) does; by hand, only what the document has no field for may change.
    ///
    /// # Errors
    /// As [`Self::update`].
    pub async fn update_document(
        &self,
        ctx: &CommandContext,
        client_id: &str,
        settings: ClientSettingsInput,
        expected_version: Option<u64>,
    ) -> Result<Executed, CommandError> {
        self.update_as(ctx, client_id, settings, expected_version, true)
            .await
    }

    async fn update_as(
        &self,
        ctx: &CommandContext,
        client_id: &str,
        settings: ClientSettingsInput,
        expected_version: Option<u64>,
        document: bool,
    ) -> Result<Executed, CommandError> {
        self.counted("update", async {
            let loaded = self.load(client_id).await?;
            let mut errors = ValidationErrors::default();
            if !document {
                document_fields_kept(&loaded, client_id, &settings, &mut errors);
            }
            let needs_secret = loaded.aggregate().update_needs_secret(&settings, ctx.at);
            let command = |new_secret: Option<SecretRecord>| {
                ClientCommand::Update(UpdateClient {
                    settings: settings.clone(),
                    new_secret,
                    expected_version,
                    at: ctx.at,
                })
            };
            (self.with_secret(loaded, ctx, errors, (needs_secret, None), command)).await
        })
        .await
    }

    /// Gives `client_id` a new secret (`client_secret`, or a generated one). The previous
    /// secrets stay valid until `previous_secrets_valid_until`, or stop at once.
    ///
    /// # Errors
    /// [`CommandError::Rejected`] with `NotFound`, `VersionMismatch`, a public client or an
    /// unacceptable secret; [`CommandError::Conflict`]; infrastructure failures.
    #[tracing::instrument(skip_all, fields(client_id = %client_id))]
    pub async fn rotate_secret(
        &self,
        ctx: &CommandContext,
        client_id: &str,
        client_secret: Option<String>,
        previous_secrets_valid_until: Option<DateTime<Utc>>,
        expected_version: Option<u64>,
    ) -> Result<Executed, CommandError> {
        self.counted("rotate_secret", async {
            let loaded = self.load(client_id).await?;
            let mut errors = ValidationErrors::default();
            let given = parse_given_secret(client_secret, &mut errors);
            let command = |secret: SecretRecord| {
                ClientCommand::RotateSecret(RotateSecret {
                    secret,
                    previous_secrets_valid_until,
                    expected_version,
                })
            };
            dry_run(
                &loaded,
                command(dry_run_record(ctx.at).map_err(infra)?),
                errors,
            )?;
            let issued = self.issue(true, given, ctx.at).await?;
            let Some(record) = issued.record() else {
                return Err(infra(anyhow::anyhow!("no secret issued for a rotation")));
            };
            let client = self.commit(loaded, command(record), ctx).await?;
            Ok(issued.executed(client))
        })
        .await
    }

    /// Tries `command` with a placeholder secret (when `wants` one) so that a refusal lists
    /// every invalid field before any hashing, then issues the secret (`given`, or a
    /// generated one) and commits the command with it.
    async fn with_secret(
        &self,
        loaded: Loaded,
        ctx: &CommandContext,
        errors: ValidationErrors,
        (wants, given): (bool, Option<SecretString>),
        command: impl Fn(Option<SecretRecord>) -> ClientCommand,
    ) -> Result<Executed, CommandError> {
        dry_run(&loaded, command(placeholder(wants, ctx.at)?), errors)?;
        let issued = self.issue(wants, given, ctx.at).await?;
        let client = self.commit(loaded, command(issued.record()), ctx).await?;
        Ok(issued.executed(client))
    }

    /// Runs a command's `work` and counts its outcome (and a secret it issued) in the
    /// metrics.
    async fn counted(
        &self,
        name: &'static str,
        work: impl Future<Output = Result<Executed, CommandError>>,
    ) -> Result<Executed, CommandError> {
        let result = work.await;
        self.metrics.command(name, &result);
        if result.as_ref().is_ok_and(|done| done.secret.is_some()) {
            self.metrics.secret_issued();
        }
        result
    }

    /// Deletes `client_id`. Its history stays; its id may be registered again.
    ///
    /// # Errors
    /// [`CommandError::Rejected`] with `NotFound` or `VersionMismatch`;
    /// [`CommandError::Conflict`]; infrastructure failures.
    #[tracing::instrument(skip_all, fields(client_id = %client_id))]
    pub async fn delete(
        &self,
        ctx: &CommandContext,
        client_id: &str,
        expected_version: Option<u64>,
    ) -> Result<Executed, CommandError> {
        self.counted("delete", async {
            let loaded = self.load(client_id).await?;
            let command = ClientCommand::Delete(DeleteClient { expected_version });
            let client = self.commit(loaded, command, ctx).await?;
            Ok(Issued::None.executed(client))
        })
        .await
    }

    /// Whether `plaintext` is a valid secret of `client_id` at `at`: the client exists, is not
    /// deleted, is enabled and confidential, and the secret matches one of its unexpired
    /// secrets; and if so, until when that secret is valid. Read from the event store (not a
    /// read model), so a delete, a disable or a rotation counts at once. An unknown client
    /// costs the same argon2 work as a known one. A correct secret verified before is found in
    /// [`VerifiedSecrets`] without argon2 (or the database).
    ///
    /// # Errors
    /// [`CommandError::Busy`] when the hashing queue is full; infrastructure failures.
    #[tracing::instrument(skip_all, fields(client_id = %client_id))]
    pub async fn verify_secret(
        &self,
        client_id: &str,
        plaintext: String,
        at: DateTime<Utc>,
    ) -> Result<Verification, CommandError> {
        if let Some(hit) = self.writer.verified.check(client_id, &plaintext, at) {
            self.last_authenticated.record(client_id, at.timestamp());
            self.metrics.verified_from_memory();
            self.metrics.verification(Ok(true));
            return Ok(Verification::Valid {
                expires_at: hit.expires_at,
            });
        }
        let result: Result<Verification, CommandError> = async {
            // Before the load: a memory cleared while this verification runs keeps nothing.
            let epoch = self.writer.verified.epoch();
            let loaded = self.load(client_id).await?;
            let version = loaded.aggregate().version();
            let candidates: Vec<SecretRecord> = match loaded.aggregate().live() {
                Some(state) if state.settings.enabled && state.settings.uses_secret() => state
                    .secrets
                    .iter()
                    .filter(|secret| secret.is_active_at(at))
                    .cloned()
                    .collect(),
                _ => Vec::new(),
            };
            let hashes = candidates.iter().map(|s| s.hash.clone()).collect();
            let remembered = plaintext.clone();
            let matched = self.hasher.verify_which(plaintext, hashes).await?;
            let Some(secret) = matched.and_then(|index| candidates.get(index)) else {
                return Ok(Verification::Invalid);
            };
            self.writer.verified.remember(
                client_id,
                version,
                epoch,
                (&secret.secret_id, secret.ends_at()),
                &remembered,
            );
            self.last_authenticated.record(client_id, at.timestamp());
            Ok(Verification::Valid {
                expires_at: secret.ends_at(),
            })
        }
        .await;
        self.metrics
            .verification(result.as_ref().map(Verification::is_valid));
        result
    }

    /// When clients last passed verification (noted here, written in batches).
    pub fn last_authenticated(&self) -> &Arc<crate::last_authenticated::LastAuthenticated> {
        &self.last_authenticated
    }

    /// The database under the write side.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// The write side's metrics collectors (commands, secrets, verifications, hashing waits),
    /// to register with the app's.
    pub fn metrics_collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        self.metrics.collectors()
    }

    /// Whether a write of this process holds the writer gate now (SQLite; never on
    /// PostgreSQL, which has none).
    pub fn writer_busy(&self) -> bool {
        (self.writer.writer_gate.as_ref()).is_some_and(|gate| gate.try_lock().is_err())
    }

    /// Jobs waiting for a hashing thread now.
    pub fn hashing_queue_depth(&self) -> usize {
        self.hasher.queue_depth()
    }

    /// Hashing jobs dropped because their caller had gone away.
    pub fn hashing_jobs_skipped(&self) -> usize {
        self.hasher.skipped()
    }

    /// The client as its stream says it is now (the write model). `version` 0: never
    /// registered.
    ///
    /// # Errors
    /// Infrastructure failures.
    pub async fn load_client(&self, client_id: &str) -> Result<StampedClient, CommandError> {
        let loaded = self.load(client_id).await?;
        Ok(StampedClient {
            client: loaded.context.aggregate,
            registered_at: loaded.registered_at,
            changed_at: loaded.changed_at,
        })
    }
}

mod checks;
mod types;
mod write;

use checks::{dry_run, infra, parse_given_secret, placeholder, Issued};
pub use types::{CommandContext, Executed, NewSecret, Verification};
use types::{Context, Loaded};

/// What an administrator may change of a client ID metadata document's client: what the
/// document has no field for. Each other changed field is refused, named (the document says
/// what the client is; its next version would overwrite the edit).
fn document_fields_kept(
    loaded: &Loaded,
    client_id: &str,
    settings: &ClientSettingsInput,
    errors: &mut ValidationErrors,
) {
    const ADMINS: [&str; 3] = ["enabled", "require_pkce", "allowed_cors_origins"];
    let url = ClientId::names_document(client_id);
    let Some(current) = loaded.aggregate().live().filter(|_| url) else {
        return;
    };
    // What the command leaves out the client keeps, as the aggregate fills it in; settings
    // that do not validate so are refused by the aggregate anyway.
    let mut input = settings.clone();
    let kept = &current.settings;
    input.about.get_or_insert_with(|| kept.about.input());
    input.keys.get_or_insert_with(|| kept.keys.input());
    (input.token_endpoint_auth_method)
        .get_or_insert_with(|| kept.token_endpoint_auth_method.map(|m| m.name().to_owned()));
    let Ok(wanted) = registry_domain::ClientSettings::validate(&input) else {
        return;
    };
    let changes = registry_domain::client::ClientChanges::between(&current.settings, &wanted);
    let changed = serde_json::to_value(&changes).unwrap_or_default();
    for field in changed.as_object().into_iter().flat_map(|o| o.keys()) {
        if !ADMINS.contains(&field.as_str()) {
            // As the request names them.
            let field = match field.as_str() {
                "keys" => "jwks",
                "about" => "application_type, logo_uri, tos_uri, policy_uri, contacts, software_id, software_version",
                other => other,
            };
            errors.add(
                field,
                "is set by the client's metadata document (change the document, or pin and \
                 approve it); only enabled, require_pkce and allowed_cors_origins are set here",
            );
        }
    }
}
