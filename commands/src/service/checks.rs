//! The steps every command shares before it writes: the secret it issues, and a dry run of
//! the command on the loaded client (every invalid field at once, before any hashing).

#[allow(clippy::wildcard_imports)]
use super::types::*;
use chrono::{DateTime, Utc};
use registry_domain::client::{ClientCommand, ValidationErrors};
use registry_domain::values::SecretRecord;
use registry_domain::{ClientError, StampedClient};

use super::types::Loaded;
use crate::error::CommandError;
use crate::secrets::{dry_run_record, IssuedSecret, SecretString};

pub(super) enum Issued {
    None,
    Some {
        issued: IssuedSecret,
        generated: bool,
    },
}

impl Issued {
    pub(super) fn record(&self) -> Option<SecretRecord> {
        match self {
            Self::None => None,
            Self::Some { issued, .. } => Some(issued.record.clone()),
        }
    }

    pub(super) fn executed(self, client: StampedClient) -> Executed {
        let secret = match self {
            Self::None => None,
            Self::Some { issued, generated } => Some(NewSecret {
                secret_id: issued.record.secret_id,
                generated: generated.then_some(issued.plaintext),
            }),
        };
        Executed {
            version: client.client.version(),
            secret,
            client,
        }
    }
}

/// The error cqrs-es boxed, as an `anyhow` chain whose causes can be downcast again (a
/// `sqlx::Error` must stay recognisable: a lost connection is a 503, not a 500).
pub(super) fn infra(error: impl Into<anyhow::Error>) -> CommandError {
    CommandError::Infrastructure(error.into())
}

pub(super) fn placeholder(
    wanted: bool,
    at: DateTime<Utc>,
) -> Result<Option<SecretRecord>, CommandError> {
    wanted
        .then(|| dry_run_record(at))
        .transpose()
        .map_err(infra)
}

pub(super) fn parse_given_secret(
    given: Option<String>,
    errors: &mut ValidationErrors,
) -> Option<SecretString> {
    given.and_then(|raw| {
        SecretString::parse(raw)
            .map_err(|e| errors.add("client_secret", e.0))
            .ok()
    })
}

/// Runs `command` through the aggregate's rules without committing, adding `errors` found
/// earlier (secret format), so every violation is reported together and nothing is hashed for
/// a command that will be refused.
pub(super) fn dry_run(
    loaded: &Loaded,
    command: ClientCommand,
    mut errors: ValidationErrors,
) -> Result<(), CommandError> {
    match loaded.aggregate().decide(command) {
        Err(ClientError::Invalid(invalid)) => {
            let mut all = invalid;
            all.merge(std::mem::take(&mut errors));
            Err(ClientError::Invalid(all).into())
        }
        Err(other) => Err(other.into()),
        Ok(_) if errors.is_empty() => Ok(()),
        Ok(_) => Err(ClientError::Invalid(errors).into()),
    }
}
