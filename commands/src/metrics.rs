//! What the write side counts: commands by outcome, secrets issued, verifications by outcome,
//! and the time hashing jobs wait for a thread. Prometheus collectors owned by the write side
//! and registered by whoever serves them (each app its own registry: several apps in one
//! test process never share a count).
//!
//! Every label value comes from a closed set (command names, error codes, outcomes): nothing
//! a client sends becomes a label.

use prometheus::core::Collector;
use prometheus::{Histogram, IntCounter, IntCounterVec, Opts};

use crate::error::CommandError;

/// The write side's metrics.
#[derive(Clone)]
pub struct CommandMetrics {
    commands: IntCounterVec,
    secrets_issued: IntCounter,
    verifications: IntCounterVec,
    hash_wait: Histogram,
    snapshots_rejected: IntCounter,
    verified_from_memory: IntCounter,
}

impl std::fmt::Debug for CommandMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommandMetrics")
    }
}

/// Builds a collector whose options are fixed here; they are valid by construction.
fn built<T>(made: prometheus::Result<T>) -> T {
    match made {
        Ok(collector) => collector,
        // Unreachable: names, help texts and buckets are constants checked by a test.
        Err(error) => unreachable!("invalid metric definition: {error}"),
    }
}

impl CommandMetrics {
    /// Fresh, unregistered collectors, with the hasher's wait histogram.
    pub fn new(hash_wait: Histogram) -> Self {
        Self {
            commands: built(IntCounterVec::new(
                Opts::new(
                    "registry_commands_total",
                    "Commands by name and outcome (accepted, rejected, conflict, unavailable) \
                     and, when rejected, the error code.",
                ),
                &["command", "outcome", "code"],
            )),
            secrets_issued: built(IntCounter::new(
                "registry_secrets_issued_total",
                "Client secrets issued (given or generated), by accepted commands.",
            )),
            verifications: built(IntCounterVec::new(
                Opts::new(
                    "registry_secret_verifications_total",
                    "Secret verifications by outcome (valid, invalid, busy, error).",
                ),
                &["outcome"],
            )),
            hash_wait,
            verified_from_memory: built(IntCounter::new(
                "registry_secret_verifications_from_memory_total",
                "Valid verifications answered from the memory of secrets verified before \
                 (no argon2id, no database read); also counted as valid above.",
            )),
            snapshots_rejected: built(IntCounter::new(
                "registry_snapshots_rejected_total",
                "Snapshots of the write model ignored because their MAC did not match \
                 (edited in the database, or another key's): the events were replayed.",
            )),
        }
    }

    /// The collectors, to register.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.commands.clone()),
            Box::new(self.secrets_issued.clone()),
            Box::new(self.verifications.clone()),
            Box::new(self.hash_wait.clone()),
            Box::new(self.snapshots_rejected.clone()),
            Box::new(self.verified_from_memory.clone()),
        ]
    }

    /// Counts the outcome of a command.
    pub fn command<T>(&self, command: &'static str, result: &Result<T, CommandError>) {
        let (outcome, code) = match result {
            Ok(_) => ("accepted", ""),
            Err(CommandError::Rejected(error)) => ("rejected", rejection_code(error)),
            Err(CommandError::Conflict) => ("conflict", ""),
            Err(CommandError::Busy) => ("unavailable", "overloaded"),
            Err(CommandError::Abandoned) => ("unavailable", "abandoned"),
            Err(CommandError::Infrastructure(_)) => ("unavailable", "infrastructure"),
        };
        self.commands
            .with_label_values(&[command, outcome, code])
            .inc();
    }

    /// Counts a snapshot refused.
    pub fn snapshot_rejected(&self) {
        self.snapshots_rejected.inc();
    }

    /// Counts a secret issued.
    pub fn secret_issued(&self) {
        self.secrets_issued.inc();
    }

    /// Counts a verification.
    pub fn verification(&self, result: Result<bool, &CommandError>) {
        let outcome = match result {
            Ok(true) => "valid",
            Ok(false) => "invalid",
            Err(CommandError::Busy) => "busy",
            Err(_) => "error",
        };
        self.verifications.with_label_values(&[outcome]).inc();
    }

    /// Counts a verification answered from memory (no argon2id, no database).
    pub fn verified_from_memory(&self) {
        self.verified_from_memory.inc();
    }
}

/// The API's problem code of a rejection.
fn rejection_code(error: &registry_domain::ClientError) -> &'static str {
    use registry_domain::ClientError;
    match error {
        ClientError::Invalid(_) => "validation_failed",
        ClientError::NotFound => "client_not_found",
        ClientError::AlreadyExists => "client_exists",
        ClientError::VersionMismatch { .. } => "precondition_failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_definition_is_valid_and_registers() {
        let metrics = CommandMetrics::new(crate::secrets::hash_wait_histogram());
        let registry = prometheus::Registry::new();
        for collector in metrics.collectors() {
            assert!(registry.register(collector).is_ok());
        }
        metrics.command::<()>("register", &Err(CommandError::Conflict));
        metrics.verification(Ok(true));
        assert_eq!(registry.gather().len(), 6);
    }
}
