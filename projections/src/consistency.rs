//! The consistency contract: what a reader sees after a write, on which route, in which
//! process, and how long it may take. The README's "Consistency" section says the same for
//! users; `/metrics` shows each part of it as it is.
//!
//! **Positions are the currency.** Every event has a `global_position`. The feed is final
//! below its *safe head* (PostgreSQL: the position under the feed barrier, every event at or
//! below it committed or never will be; SQLite: the last position, writers being serialised).
//! Each read model knows the position up to which it reflects every event, and starts only
//! from a position known to be complete (the checkpoint, read in the same snapshot as its
//! rows, moved forward over events the rows already reflect — never `max(last_position)`).
//! An event that cannot be projected is parked (`projection_failures`), counted and shown,
//! and counts as passed: it never stops a read model.
//!
//! **A write** is acknowledged only after its event committed, and its answer is built from
//! the state it committed (never from a read after the commit). Its commit and its inline
//! projection run in a task of their own: a client that goes away cannot leave them half-done.
//!
//! | what is read | the writing process | another process |
//! | --- | --- | --- |
//! | the write's own answer (`201`/`200`, `ETag`, a one-time secret) | exactly the state committed | — |
//! | `GET /clients/{id}` (detail) | at once (inline projection before the answer) | at once: the same tables, written before the answer |
//! | `GET /clients` (search, list) | at once (the inline projection also updates this process's index) | within [`OTHER_PROCESS_SEARCH_BOUND`]: its feed follower wakes on `NOTIFY` (PostgreSQL) or a 1 s timer, and pauses [`crate::search::FOLLOW_PAUSE`] between steps |
//! | exports (`X-Feed-Position`) | every event up to that position, from one snapshot | the same |
//! | history, `as_of` | at once: read from the event store | at once |
//! | secret verification (`/secret/verify`) | at once: a change forgets the client's verified secrets before its answer, and a first verification reads the event store | within [`OTHER_PROCESS_SECRET_BOUND`] for a secret this process verified before (its memory of verified secrets forgets a client when its feed follower reads the event); at once for any other |
//! | `GET /events` (feed) | complete below `next_after`, in one order, safe to tail | the same |
//! | `GET /events?wait=` and `/events/head` (the change stream for caches) | an event is told once this process's memory of verified secrets forgot its client and `GET /clients/{id}` shows it: a cache that forgets a client and reads it again at once gets the new state | the same, within [`OTHER_PROCESS_SEARCH_BOUND`]; `503 not_ready` while this process's follower is not caught up (a cache then trusts itself only briefly) |
//!
//! When an inline projection fails (the database went away after the commit), the
//! background projector repairs it within its cycle ([`crate::projector::MIN_PAUSE`] after a
//! batch, [`crate::projector::IDLE_WAIT`] when idle); readers of other processes see it
//! then, plus the follower's delay.
//!
//! **What `/metrics` shows** (per process): `registry_projector_checkpoint_position` and
//! `registry_projector_lag_events` (the projection's checkpoint and how far it is behind the
//! latest committed position), `registry_search_index_position` and
//! `registry_search_index_lag_positions` (this process's index), and
//! `registry_projection_parked_events`. `/readyz` fails while the projector or the follower
//! is down or has made no progress for 30 s.

use std::time::Duration;

/// How long, in normal operation, a client written through one process takes to reach
/// another process's search: the follower's idle wait (1 s, cut short by `NOTIFY` on
/// PostgreSQL), one pause between steps (250 ms) and its queries, with room to spare. The
/// multi-process test holds the registry to it.
pub const OTHER_PROCESS_SEARCH_BOUND: Duration = Duration::from_secs(2);

/// How long a secret revoked (rotated, the client disabled or deleted) through one process
/// may still verify through another that verified it before. In normal operation it is the
/// follower's wake-up, as [`OTHER_PROCESS_SEARCH_BOUND`] (the follower forgets a client as
/// soon as it reads its event). Whatever fails, a process trusts its memory only while a
/// read of the feed that began less than this long ago (`registry_commands::verified::
/// LISTENING_WINDOW`) reached the end of the feed with the read model caught up; otherwise
/// (the database unreachable, the follower stopped or stuck behind a projection) it verifies
/// every secret with argon2id against the event store again. The one exception: an event whose
/// PostgreSQL transaction commits after a later one's is read when it commits (the feed's safe
/// head waits for it), so the bound starts then.
pub const OTHER_PROCESS_SECRET_BOUND: Duration = Duration::from_secs(3);
