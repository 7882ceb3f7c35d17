//! The write side of the client registry: the event store (postgres-es or sqlite-es, chosen
//! once from the database URL), command execution with optimistic concurrency, secret
//! generation and argon2id hashing, and the seeding of the guide's default clients.
//!
//! Committed events are dispatched to the read side through cqrs-es [`cqrs_es::Query`]s handed
//! in at construction, so this crate does not depend on `registry-projections`.
#![cfg_attr(test, allow(clippy::restriction, clippy::too_many_lines))]

pub mod backup;
pub mod client_documents;
pub mod database;
pub mod documents;
pub mod error;
pub mod event_store;
pub mod files;
pub mod import;
pub mod last_authenticated;
pub mod mac;
pub mod metrics;
pub mod pruner;
pub mod registration;
pub mod secrets;
pub mod seed;
pub mod service;
pub mod sessions;
pub mod snapshots;
pub mod verified;

pub use database::{Database, PoolOptions, PoolStats, DEFAULT_DATABASE_URL};
pub use error::CommandError;
pub use secrets::{HashingError, SecretHasher, SecretString};
pub use service::{ClientCommands, CommandContext, Executed, NewSecret};
