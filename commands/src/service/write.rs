//! How a command is carried out: load the client (snapshot and the events after it), issue
//! its secret, and commit in a task of its own — the writer gate, the append, the snapshot,
//! the inline projection, and forgetting the client's verified secrets.

use super::checks::{infra, Issued};
#[allow(clippy::wildcard_imports)]
use super::*;

impl ClientCommands {
    /// Loads a client: its latest snapshot (if any) and the events after it, upcast. The
    /// context is the one cqrs-es's event store builds, so `commit` numbers new events after
    /// `current_sequence` as usual.
    pub(super) async fn load(&self, client_id: &str) -> Result<Loaded, CommandError> {
        if ClientId::parse(client_id).is_err() {
            // No stream can exist under an id the rules refuse (nothing is looked up: such an
            // id may hold characters the database cannot, such as U+0000 on PostgreSQL).
            return Ok(Loaded {
                context: EventStoreAggregateContext {
                    aggregate_id: client_id.to_owned(),
                    aggregate: Client::default(),
                    current_sequence: 0,
                    current_snapshot: Some(0),
                },
                registered_at: None,
                changed_at: None,
            });
        }
        let (snapshot_version, mut stamped) = self.snapshot(client_id).await.unwrap_or_default();
        let mut version = snapshot_version;
        let tail = (self.repository)
            .get_last_events::<Client>(client_id, usize::try_from(version).unwrap_or(usize::MAX))
            .await
            .map_err(|e| CommandError::from(AggregateError::<ClientError>::from(e)))?;
        let upcasters = registry_domain::upcasters();
        for serialized in tail {
            let (sequence, event, recorded_at) = upcast(serialized, &upcasters, client_id)?;
            version = sequence;
            stamped.apply(event, recorded_at);
        }
        let StampedClient {
            client: aggregate,
            registered_at,
            changed_at,
        } = stamped;
        Ok(Loaded {
            context: EventStoreAggregateContext {
                aggregate_id: client_id.to_owned(),
                aggregate,
                current_sequence: usize::try_from(version).unwrap_or(usize::MAX),
                // cqrs-es's field for its own snapshot store, unused in event-store mode: here,
                // the version of the snapshot this load started from (0 when none).
                current_snapshot: Some(usize::try_from(snapshot_version).unwrap_or(usize::MAX)),
            },
            registered_at,
            changed_at,
        })
    }

    /// The client's latest snapshot this registry signed, if any (one edited in the
    /// database, or signed with another key, is refused and counted: the events replayed).
    async fn snapshot(&self, client_id: &str) -> Option<(u64, StampedClient)> {
        let key = self.writer.snapshot_key.as_ref()?;
        match self.database.load_snapshot(client_id, key).await {
            Ok(StoredSnapshot::Trusted(version, client)) => Some((version, *client)),
            Ok(StoredSnapshot::Rejected(version)) => {
                self.metrics.snapshot_rejected();
                tracing::warn!(
                    version,
                    "snapshot refused: it does not carry this registry's MAC (edited in \
                     the database, or signed with another key); replaying the events"
                );
                None
            }
            Ok(StoredSnapshot::None) => None,
            Err(error) => {
                tracing::warn!(%error, "snapshot unreadable; replaying the whole stream");
                None
            }
        }
    }

    pub(super) async fn issue(
        &self,
        wanted: bool,
        given: Option<SecretString>,
        at: DateTime<Utc>,
    ) -> Result<Issued, CommandError> {
        if !wanted {
            return Ok(Issued::None);
        }
        let (plaintext, generated) = match given {
            Some(given) => (given, false),
            None => (SecretString::generate(), true),
        };
        let mut issued = self.hasher.issue(plaintext, at).await?;
        issued.record.valid_until = self.secret_lifetime.map(|lifetime| at + lifetime);
        Ok(Issued::Some { issued, generated })
    }

    /// Decides `command` on the loaded client and, when it produces events, commits them in a
    /// task of their own (see [`Writer`]). Returns the client as committed.
    pub(super) async fn commit(
        &self,
        loaded: Loaded,
        command: ClientCommand,
        ctx: &CommandContext,
    ) -> Result<StampedClient, CommandError> {
        let Loaded {
            mut context,
            registered_at,
            changed_at,
        } = loaded;
        let sink = EventSink::default();
        context.aggregate.handle(command, &(), &sink).await?;
        let events = sink.collect().await;
        let mut client = StampedClient {
            client: context.aggregate.clone(),
            registered_at,
            changed_at,
        };
        if events.is_empty() {
            return Ok(client);
        }
        for event in &events {
            client.stamp(event, ctx.at);
        }
        let metadata = EventMetadata {
            // One event per command, so one id per event.
            event_id: uuid::Uuid::now_v7().to_string(),
            actor: ctx.actor.clone(),
            request_id: ctx.request_id.clone(),
            recorded_at: ctx.at,
            reason: ctx.reason.clone(),
        };
        let writer = self.writer.clone();
        let committed = client.clone();
        // Dropped with this future: tells the commit task, before it writes anything, that
        // nobody is waiting for the answer any more (see `Writer::append`).
        let (caller, waiting) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            writer
                .append(context, events, metadata, committed, caller)
                .await
        });
        let answer = task.await;
        drop(waiting);
        answer.map_err(|e| infra(anyhow::anyhow!("the commit task failed: {e}")))??;
        Ok(client)
    }
}

impl Writer {
    /// Appends `events` (under the writer gate where the database needs one), saves a
    /// snapshot when one is due, and dispatches the commit to the inline projections.
    ///
    /// A caller that went away before its turn at the gate (`caller` closed) gets nothing
    /// written: it has an error (a timeout) or no answer, and a commit made minutes later
    /// would, for a rotation, revoke the secret it knows and keep the new one from anybody.
    /// Once appending has begun, it is finished whatever happens to the caller.
    async fn append(
        &self,
        context: Context,
        events: Vec<registry_domain::ClientEvent>,
        metadata: EventMetadata,
        client: StampedClient,
        caller: tokio::sync::oneshot::Sender<()>,
    ) -> Result<(), CommandError> {
        // Append and project under the database's writer gate (see `Database::writer_gate`).
        let _turn = match &self.writer_gate {
            Some(gate) => Some(
                tokio::time::timeout(WRITER_GATE_WAIT, gate.lock())
                    .await
                    .map_err(|_| CommandError::Busy)?,
            ),
            None => None,
        };
        if caller.is_closed() {
            return Err(CommandError::Abandoned);
        }
        let client_id = context.aggregate_id.clone();
        let version = client.client.version();
        let snapshot_version = context
            .current_snapshot
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or_default();
        let snapshot_due = version.saturating_sub(snapshot_version) >= SNAPSHOT_EVERY;
        let committed = self.store.commit(events, context, metadata.to_map()).await;
        // Forgotten whatever the outcome (a commit that failed may still have landed), and
        // before the answer: a secret this change revokes is never found in memory again.
        self.verified.invalidate(&client_id, version);
        let committed = committed?;
        if let (true, Some(key)) = (snapshot_due, &self.snapshot_key) {
            // A cache: failing to write one costs a longer load later, nothing else.
            if let Err(error) = self
                .database
                .save_snapshot(&client_id, version, &client, key)
                .await
            {
                tracing::warn!(%error, "snapshot not saved");
            }
        }
        for query in &self.queries {
            query.dispatch(&client_id, &committed).await;
        }
        Ok(())
    }
}

/// A stored event in this build's shape: its sequence, the event, and when it was recorded.
fn upcast(
    serialized: cqrs_es::persist::SerializedEvent,
    upcasters: &[Box<dyn cqrs_es::persist::EventUpcaster>],
    client_id: &str,
) -> Result<
    (
        u64,
        registry_domain::ClientEvent,
        chrono::DateTime<chrono::Utc>,
    ),
    CommandError,
> {
    let upcast = upcasters.iter().fold(serialized, |event, upcaster| {
        if upcaster.can_upcast(&event.event_type, &event.event_version) {
            upcaster.upcast(event)
        } else {
            event
        }
    });
    let envelope = EventEnvelope::<Client>::try_from(upcast)
        .map_err(|e| CommandError::from(AggregateError::<ClientError>::from(e)))?;
    let version = u64::try_from(envelope.sequence).unwrap_or(u64::MAX);
    let recorded_at = EventMetadata::from_map(&envelope.metadata)
        .map(|m| m.recorded_at)
        .ok_or_else(|| {
            infra(anyhow::anyhow!(
                "event {version} of client {client_id} has no recorded_at"
            ))
        })?;
    Ok((version, envelope.payload, recorded_at))
}
