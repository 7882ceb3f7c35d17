//! Configuration from flags and `REGISTRY_*` environment variables.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{ArgAction, Args};
use registry_commands::DEFAULT_DATABASE_URL;

/// How the service runs. Every flag has a `REGISTRY_*` environment variable.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// `sqlite://path/to/file.db` (created if missing) or `postgres://user@host/db`.
    #[arg(long, env = "REGISTRY_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,

    /// Address and port to listen on.
    #[arg(long, env = "REGISTRY_LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen_addr: String,

    /// The admin bearer token (at least 16 characters). Unset: one is generated at the first
    /// start of a store and printed once.
    #[arg(long, env = "REGISTRY_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Most database connections.
    #[arg(long, env = "REGISTRY_DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub max_connections: u32,

    /// Register the admin guide's default clients the first time a store is set up.
    #[arg(long, env = "REGISTRY_SEED_DEFAULT_CLIENTS", default_value_t = true, action = ArgAction::Set)]
    pub seed_default_clients: bool,

    /// Most argon2id hashes computed at once (default: the number of CPUs).
    #[arg(long, env = "REGISTRY_HASH_CONCURRENCY")]
    pub hash_concurrency: Option<usize>,

    /// Most argon2id jobs waiting for a hashing thread; past it, secret operations answer 503
    /// `overloaded` with `Retry-After` (default: 32 per hashing thread).
    #[arg(long, env = "REGISTRY_HASH_QUEUE")]
    pub hash_queue: Option<usize>,

    /// Serve the admin screens at `/` (`false`: the API only).
    #[arg(long, env = "REGISTRY_UI", default_value_t = true, action = ArgAction::Set)]
    pub ui: bool,

    /// Minutes without a request after which a screen session ends.
    #[arg(long, env = "REGISTRY_UI_SESSION_IDLE_MINUTES", default_value_t = 30)]
    pub ui_session_idle_minutes: u32,

    /// Hours after sign-in at which a screen session ends, used or not.
    #[arg(long, env = "REGISTRY_UI_SESSION_HOURS", default_value_t = 12)]
    pub ui_session_hours: u32,

    /// Sign in to the screens through this OpenID Connect issuer (`https`, or `http` on
    /// loopback); with `REGISTRY_OIDC_CLIENT_ID`.
    #[arg(long, env = "REGISTRY_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,

    /// The registry's client id at the identity service.
    #[arg(long, env = "REGISTRY_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,

    /// The registry's client secret there, for a confidential registration.
    #[arg(long, env = "REGISTRY_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<String>,

    /// Scopes asked for at sign-in; mapped to roles by `REGISTRY_JWT_SCOPE_ROLES`.
    #[arg(
        long,
        env = "REGISTRY_OIDC_SCOPES",
        default_value = "openid profile octo_api"
    )]
    pub oidc_scopes: String,

    /// Take each person's roles from this claim of the ID token (a string or a list, e.g.
    /// `groups` or `roles`), whose values `REGISTRY_JWT_SCOPE_ROLES` maps to roles, instead
    /// of from the granted scopes. Scopes are granted per application at most identity
    /// services: this claim is how roles differ from one person to the next.
    #[arg(long, env = "REGISTRY_OIDC_ROLES_CLAIM")]
    pub oidc_roles_claim: Option<String>,

    /// The registry's public base URL (the sign-in redirect URI is `<it>/oidc/callback`);
    /// without it, the request's host is used (only allowed with an issuer on loopback).
    #[arg(long, env = "REGISTRY_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Most exports (xlsx, PDF) rendered at once.
    #[arg(long, env = "REGISTRY_EXPORT_CONCURRENCY", default_value_t = 2)]
    pub export_concurrency: usize,

    /// Most exports waiting for their turn; past it, exports answer 503 `overloaded`.
    #[arg(long, env = "REGISTRY_EXPORT_QUEUE", default_value_t = 8)]
    pub export_queue: usize,

    /// Clients whose verified secrets are remembered (as keyed digests, in memory) so that the
    /// same correct secret presented again costs no argon2id; 0: every verification hashes.
    #[arg(long, env = "REGISTRY_VERIFY_CACHE_CLIENTS", default_value_t = 100_000)]
    pub verify_cache_clients: usize,

    /// Most `GET /api/v1/events?wait=` requests waiting at once; past it, 503 `overloaded`.
    #[arg(long, env = "REGISTRY_FEED_WAITERS", default_value_t = 256)]
    pub feed_waiters: usize,

    /// The longest a `GET /api/v1/events?wait=` request really waits (at most 60), e.g. below
    /// a proxy's idle timeout: a longer `wait` is cut to it.
    #[arg(long, env = "REGISTRY_FEED_WAIT_LIMIT_SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=60))]
    pub feed_wait_limit_seconds: u64,

    /// Dynamic client registration (RFC 7591/7592): `POST /register` with an initial access
    /// token, and the client configuration endpoint. Off by default.
    #[arg(long, env = "REGISTRY_DYNAMIC_REGISTRATION", default_value_t = false, action = clap::ArgAction::Set)]
    pub dynamic_registration: bool,

    /// Registrations admitted per minute from one client address (ten times that from all
    /// addresses together); past it, 429 with `Retry-After`.
    #[arg(long, env = "REGISTRY_REGISTRATION_RATE_PER_MINUTE", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub registration_rate_per_minute: u32,

    /// Clients registered dynamically that authenticate with a secret and have not done so for
    /// this many days (nor been registered or replaced) are deleted by the pruner (`0`: never).
    #[arg(long, env = "REGISTRY_REGISTRATION_PRUNE_DAYS", default_value_t = 90)]
    pub registration_prune_days: u32,

    /// Seconds between the pruner's passes.
    #[arg(long, env = "REGISTRY_REGISTRATION_PRUNE_INTERVAL_SECONDS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub registration_prune_interval_seconds: u64,

    /// Client ID metadata documents: a client whose id is an `https` URL is what the document
    /// there says, fetched (guarded) when the identity service looks it up. `off` (default),
    /// `*` for any host, or the domains (and their subdomains) allowed, separated by commas.
    #[arg(long, env = "REGISTRY_CLIENT_ID_DOCUMENTS", default_value = "off")]
    pub client_id_documents: String,

    /// Fetch documents from loopback, private and link-local addresses too (refused by
    /// default: a document URL must not reach into the registry's own network).
    #[arg(long, env = "REGISTRY_CLIENT_ID_DOCUMENT_PRIVATE_ADDRESSES", default_value_t = false, action = clap::ArgAction::Set)]
    pub client_id_document_private_addresses: bool,

    /// A PEM file of certificates to trust for document servers, beside the public roots.
    #[arg(long, env = "REGISTRY_CLIENT_ID_DOCUMENT_CA_FILE")]
    pub client_id_document_ca_file: Option<PathBuf>,

    /// The shortest time a fetched document (or a refused fetch) stands without a new fetch.
    #[arg(long, env = "REGISTRY_CLIENT_ID_DOCUMENT_MIN_SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(0..=604_800))]
    pub client_id_document_min_seconds: u64,

    /// The longest, whatever its `Cache-Control` says.
    #[arg(long, env = "REGISTRY_CLIENT_ID_DOCUMENT_MAX_SECONDS", default_value_t = 86_400,
          value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub client_id_document_max_seconds: u64,

    /// The grant types a document's client may have (space- or comma-separated).
    #[arg(
        long,
        env = "REGISTRY_CLIENT_ID_DOCUMENT_GRANT_TYPES",
        default_value = "authorization_code refresh_token"
    )]
    pub client_id_document_grant_types: String,

    /// The scopes a document's client may ask for (space- or comma-separated).
    #[arg(
        long,
        env = "REGISTRY_CLIENT_ID_DOCUMENT_SCOPES",
        default_value = "openid profile email"
    )]
    pub client_id_document_scopes: String,

    /// Register a document's client disabled, and disable it again on each changed version,
    /// until an administrator enables it.
    #[arg(long, env = "REGISTRY_CLIENT_ID_DOCUMENT_HOLD", default_value_t = false, action = clap::ArgAction::Set)]
    pub client_id_document_hold: bool,

    /// The connection and the whole answer of a document fetch, in milliseconds.
    #[arg(long, env = "REGISTRY_CLIENT_ID_DOCUMENT_TIMEOUT_MS", default_value_t = 3000,
          value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub client_id_document_timeout_ms: u64,

    /// Every secret issued from now on (registration, rotation, dynamic registration) stops
    /// verifying this many days after it was issued (`client_secret_expires_at`; `0`: never).
    #[arg(long, env = "REGISTRY_SECRET_LIFETIME_DAYS", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=36_500))]
    pub secret_lifetime_days: u32,

    /// Profile checks report a client secret older than this many days (`0`: never).
    #[arg(long, env = "REGISTRY_MAX_SECRET_AGE_DAYS", default_value_t = 365)]
    pub max_secret_age_days: u32,

    /// A streamed export (the sealed log's JSON Lines) stops when its reader takes nothing
    /// for this many seconds, and frees its place.
    #[arg(long, env = "REGISTRY_EXPORT_IDLE_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub export_idle_seconds: u64,

    /// A streamed export stops after this many seconds in all, and frees its place.
    #[arg(long, env = "REGISTRY_EXPORT_TOTAL_SECONDS", default_value_t = 1800,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub export_total_seconds: u64,

    /// API keys: `<name> <roles> sha256:<digest>` entries, one per line or separated by `;`
    /// (make one with `client-registry api-key`).
    #[arg(long, env = "REGISTRY_API_KEYS", hide_env_values = true)]
    pub api_keys: Option<String>,

    /// A file of API key entries, one per line, `#` for comments.
    #[arg(long, env = "REGISTRY_API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,

    /// Accept JWTs issued by this `iss` (needs an audience and a JWKS).
    #[arg(long, env = "REGISTRY_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// The `aud` JWTs must carry.
    #[arg(long, env = "REGISTRY_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// The identity service's JWKS endpoint (https, or http on loopback).
    #[arg(long, env = "REGISTRY_JWT_JWKS_URL")]
    pub jwt_jwks_url: Option<String>,

    /// A JWKS file (instead of a URL).
    #[arg(long, env = "REGISTRY_JWT_JWKS_FILE")]
    pub jwt_jwks_file: Option<PathBuf>,

    /// Scope (or group, with `REGISTRY_OIDC_ROLES_CLAIM`) to roles mapping: `scope=role,role`
    /// entries separated by spaces. Empty by default: no token and no person has a role until
    /// one is mapped (a default would give write access to everyone who can sign in).
    #[arg(long, env = "REGISTRY_JWT_SCOPE_ROLES", default_value = "")]
    pub jwt_scope_roles: String,

    /// Clock leeway for a JWT's `exp` and `nbf`, in seconds.
    #[arg(long, env = "REGISTRY_JWT_LEEWAY_SECONDS", default_value_t = 30)]
    pub jwt_leeway_seconds: u64,

    /// Shortest time between two JWKS reloads caused by an unknown `kid`, in seconds.
    #[arg(long, env = "REGISTRY_JWT_MIN_RELOAD_SECONDS", default_value_t = 10)]
    pub jwt_min_reload_seconds: u64,

    /// The JWKS is refetched (in the background, while the one held keeps serving) after
    /// this many seconds.
    #[arg(long, env = "REGISTRY_JWT_JWKS_CACHE_SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub jwt_jwks_cache_seconds: u64,

    /// Longest a request may take before it is answered 503, in seconds.
    #[arg(long, env = "REGISTRY_REQUEST_TIMEOUT_SECONDS", default_value_t = 60)]
    pub request_timeout_seconds: u64,

    /// Seconds the service keeps serving after SIGTERM, with `/readyz` failing, so that load
    /// balancers stop sending it requests; then it refuses new connections, finishes the
    /// requests in flight and exits. SIGINT (Ctrl-C) skips the wait.
    #[arg(long, env = "REGISTRY_SHUTDOWN_GRACE_SECONDS", default_value_t = 10)]
    pub shutdown_grace_seconds: u64,

    /// The Ed25519 key (PKCS#8 PEM) that signs the sealed log's tree heads. Unset: beside the
    /// SQLite file, or `data/audit-signing-key.pem` for PostgreSQL; generated there (mode
    /// 0600) at the first start, its public key printed. Give every process of one database
    /// the same key.
    #[arg(long, env = "REGISTRY_AUDIT_KEY_FILE")]
    pub audit_key_file: Option<PathBuf>,

    /// Run the sealer of the event log in this process (`false`: another process seals, or
    /// for measuring what sealing costs).
    #[arg(long, env = "REGISTRY_AUDIT_SEAL", default_value_t = true, action = ArgAction::Set)]
    pub audit_seal: bool,

    /// At most one signed tree head per this many milliseconds while events arrive.
    #[arg(long, env = "REGISTRY_AUDIT_HEAD_INTERVAL_MS", default_value_t = 1000)]
    pub audit_head_interval_ms: u64,

    /// How long a signed plan may be applied after it was made, in minutes.
    #[arg(long, env = "REGISTRY_PLAN_LIFETIME_MINUTES", default_value_t = 1440,
          value_parser = clap::value_parser!(u32).range(1..=10080))]
    pub plan_lifetime_minutes: u32,

    /// Browser origins allowed to call this API (CORS), comma-separated. Unset: CORS off.
    #[arg(long, env = "REGISTRY_CORS_ALLOWED_ORIGINS")]
    pub cors_allowed_origins: Option<String>,
}

impl Config {
    /// The configuration with every default, on `database_url`.
    pub fn with_database(database_url: &str) -> Self {
        Self {
            database_url: database_url.to_owned(),
            listen_addr: "127.0.0.1:0".to_owned(),
            admin_token: None,
            max_connections: 16,
            seed_default_clients: true,
            hash_concurrency: None,
            hash_queue: None,
            ui: true,
            oidc_issuer: None,
            oidc_client_id: None,
            oidc_client_secret: None,
            oidc_scopes: "openid profile octo_api".to_owned(),
            oidc_roles_claim: None,
            public_url: None,
            ui_session_idle_minutes: 30,
            ui_session_hours: 12,
            export_concurrency: 2,
            export_queue: 8,
            verify_cache_clients: 100_000,
            feed_waiters: 256,
            feed_wait_limit_seconds: 60,
            max_secret_age_days: 365,
            secret_lifetime_days: 0,
            dynamic_registration: false,
            client_id_documents: "off".to_owned(),
            client_id_document_private_addresses: false,
            client_id_document_ca_file: None,
            client_id_document_min_seconds: 60,
            client_id_document_max_seconds: 86_400,
            client_id_document_grant_types: "authorization_code refresh_token".to_owned(),
            client_id_document_scopes: "openid profile email".to_owned(),
            client_id_document_hold: false,
            client_id_document_timeout_ms: 3000,
            registration_rate_per_minute: 60,
            registration_prune_days: 90,
            registration_prune_interval_seconds: 3600,
            export_idle_seconds: 30,
            export_total_seconds: 1800,
            api_keys: None,
            api_keys_file: None,
            jwt_issuer: None,
            jwt_audience: None,
            jwt_jwks_url: None,
            jwt_jwks_file: None,
            jwt_scope_roles: String::new(),
            jwt_leeway_seconds: 30,
            jwt_min_reload_seconds: 10,
            jwt_jwks_cache_seconds: 300,
            request_timeout_seconds: 60,
            shutdown_grace_seconds: 10,
            cors_allowed_origins: None,
            audit_key_file: None,
            audit_seal: true,
            audit_head_interval_ms: 1000,
            plan_lifetime_minutes: 1440,
        }
    }

    /// Where the tree-head signing key is (see `audit_key_file`).
    ///
    /// # Errors
    /// A SQLite URL that names no file.
    pub fn audit_key_path(&self) -> anyhow::Result<PathBuf> {
        if let Some(path) = &self.audit_key_file {
            return Ok(path.clone());
        }
        Ok(self.data_dir()?.join("audit-signing-key.pem"))
    }

    /// Where files the service makes for itself go: the SQLite store's folder, or `data/`
    /// for PostgreSQL.
    ///
    /// # Errors
    /// A SQLite URL that names no file.
    pub fn data_dir(&self) -> anyhow::Result<PathBuf> {
        if self.database_url.starts_with("sqlite:") && !self.database_url.contains(":memory:") {
            let store = registry_commands::backup::sqlite_path(&self.database_url)?;
            return Ok(store
                .parent()
                .map(std::path::Path::to_path_buf)
                .unwrap_or_default());
        }
        Ok(PathBuf::from("data"))
    }

    /// The API keys of `api_keys` and `api_keys_file`.
    ///
    /// # Errors
    /// An unreadable file or a malformed entry.
    pub fn api_keys(&self) -> anyhow::Result<registry_api::auth::ApiKeys> {
        let mut entries = self.api_keys.clone().unwrap_or_default();
        if let Some(path) = &self.api_keys_file {
            let file = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            entries.push('\n');
            entries.push_str(&file);
        }
        registry_api::auth::ApiKeys::parse(&entries).map_err(anyhow::Error::msg)
    }

    /// The JWT verifier, when an issuer is configured.
    ///
    /// # Errors
    /// An issuer without audience or JWKS, both a JWKS URL and file, or a bad scope mapping.
    pub fn jwt(&self) -> anyhow::Result<Option<registry_api::auth::JwtVerifier>> {
        use registry_api::auth::jwt::{parse_scope_roles, JwksSource, JwtConfig};
        let Some(issuer) = &self.jwt_issuer else {
            return Ok(None);
        };
        let audience = self
            .jwt_audience
            .clone()
            .context("REGISTRY_JWT_AUDIENCE is required with REGISTRY_JWT_ISSUER")?;
        let source = match (&self.jwt_jwks_url, &self.jwt_jwks_file) {
            (Some(url), None) => JwksSource::Url(url.clone()),
            (None, Some(path)) => JwksSource::File(path.clone()),
            _ => anyhow::bail!(
                "give exactly one of REGISTRY_JWT_JWKS_URL and REGISTRY_JWT_JWKS_FILE"
            ),
        };
        let scope_roles = parse_scope_roles(&self.jwt_scope_roles).map_err(anyhow::Error::msg)?;
        if scope_roles.is_empty() {
            tracing::warn!(
                "REGISTRY_JWT_SCOPE_ROLES maps nothing: the identity service's tokens are \
                 accepted but give no role (403) until scopes are mapped to roles"
            );
        }
        Ok(Some(registry_api::auth::JwtVerifier::new(JwtConfig {
            issuer: issuer.clone(),
            audience,
            source,
            scope_roles,
            leeway: self.jwt_leeway_seconds,
            min_reload_interval: std::time::Duration::from_secs(self.jwt_min_reload_seconds),
            cache_for: std::time::Duration::from_secs(self.jwt_jwks_cache_seconds),
        })?))
    }

    /// Sign-in through the identity service, when an issuer and a client id are configured.
    ///
    /// # Errors
    /// Only one of them set, an issuer that is not `https` (or loopback `http`), or a bad
    /// scope mapping.
    pub fn oidc(&self) -> anyhow::Result<Option<registry_screens::oidc::Oidc>> {
        use registry_api::auth::jwt::parse_scope_roles;
        use registry_screens::oidc::{Oidc, OidcConfig};
        match (&self.oidc_issuer, &self.oidc_client_id) {
            (None, None) => Ok(None),
            (Some(issuer), Some(client_id)) => {
                if self.jwt_scope_roles.trim().is_empty() {
                    tracing::warn!(
                        "REGISTRY_JWT_SCOPE_ROLES maps nothing: people can sign in to the \
                         screens but have no role until their scopes or groups are mapped"
                    );
                } else if self.oidc_roles_claim.is_none() {
                    tracing::warn!(
                        "screen roles come from the scopes granted at sign-in: at most identity \
                         services every person who may sign in to this application is granted \
                         them; set REGISTRY_OIDC_ROLES_CLAIM to give roles per person"
                    );
                }
                Ok(Some(Oidc::new(OidcConfig {
                    issuer: issuer.clone(),
                    client_id: client_id.clone(),
                    client_secret: self.oidc_client_secret.clone(),
                    scopes: self.oidc_scopes.clone(),
                    public_url: self.public_url.clone(),
                    scope_roles: parse_scope_roles(&self.jwt_scope_roles)
                        .map_err(anyhow::Error::msg)?,
                    roles_claim: self.oidc_roles_claim.clone(),
                })?))
            }
            _ => anyhow::bail!("set both REGISTRY_OIDC_ISSUER and REGISTRY_OIDC_CLIENT_ID"),
        }
    }

    /// The resolver of client ID metadata documents, when they are on.
    ///
    /// # Errors
    /// An unreadable CA file, or a minimum above the maximum.
    pub fn client_documents(
        &self,
    ) -> anyhow::Result<Option<registry_api::client_documents::ClientDocuments>> {
        use registry_api::client_documents::{fetch::FetchSettings, DocumentSettings, Hosts};
        use std::time::Duration;
        let Some(hosts) = Hosts::parse(&self.client_id_documents) else {
            return Ok(None);
        };
        anyhow::ensure!(
            self.client_id_document_min_seconds <= self.client_id_document_max_seconds,
            "REGISTRY_CLIENT_ID_DOCUMENT_MIN_SECONDS is above REGISTRY_CLIENT_ID_DOCUMENT_MAX_SECONDS"
        );
        let extra_roots_pem = (self.client_id_document_ca_file.as_ref())
            .map(|path| std::fs::read(path).with_context(|| format!("reading {}", path.display())))
            .transpose()?;
        let settings = DocumentSettings {
            hosts,
            fetch: FetchSettings {
                allow_private_addresses: self.client_id_document_private_addresses,
                extra_roots_pem,
                timeout: Duration::from_millis(self.client_id_document_timeout_ms),
                max_bytes: registry_api::client_documents::MAX_DOCUMENT_BYTES,
            },
            min_fresh: Duration::from_secs(self.client_id_document_min_seconds),
            max_fresh: Duration::from_secs(self.client_id_document_max_seconds),
            policy: self.client_document_policy()?,
        };
        registry_api::client_documents::ClientDocuments::new(settings).map(Some)
    }

    /// What a document's client may be: the configured grant types and scopes, `none` or
    /// `private_key_jwt`, held for approval if configured.
    fn client_document_policy(
        &self,
    ) -> anyhow::Result<registry_domain::registration::RegistrationPolicy> {
        use registry_domain::values::{GrantType, Scope, TokenEndpointAuthMethod};
        fn each<T, E: std::fmt::Display>(
            setting: &str,
            value: &str,
            parse: impl Fn(&str) -> Result<T, E>,
        ) -> anyhow::Result<Vec<T>> {
            (value.split([',', ' ']).filter(|w| !w.is_empty()))
                .map(|w| parse(w).map_err(|e| anyhow::anyhow!("{setting}: {w}: {e}")))
                .collect()
        }
        Ok(registry_domain::registration::RegistrationPolicy {
            grant_types: each(
                "REGISTRY_CLIENT_ID_DOCUMENT_GRANT_TYPES",
                &self.client_id_document_grant_types,
                GrantType::parse,
            )?,
            token_endpoint_auth_methods: vec![
                TokenEndpointAuthMethod::None,
                TokenEndpointAuthMethod::PrivateKeyJwt,
            ],
            scopes: each(
                "REGISTRY_CLIENT_ID_DOCUMENT_SCOPES",
                &self.client_id_document_scopes,
                Scope::parse,
            )?,
            hold_for_approval: self.client_id_document_hold,
            ..Default::default()
        })
    }

    /// The argon2id queue bound: the configured one or 32 per hashing thread.
    pub fn hash_queue(&self) -> usize {
        self.hash_queue.unwrap_or_else(|| {
            self.hash_concurrency() * registry_commands::secrets::DEFAULT_QUEUE_PER_THREAD
        })
    }

    /// The argon2 concurrency: configured, else one per CPU.
    pub fn hash_concurrency(&self) -> usize {
        self.hash_concurrency.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
        })
    }
}
