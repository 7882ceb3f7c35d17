//! What differs between the registry's two databases, PostgreSQL and SQLite, behind one
//! interface: the read store, the sealed log and the write side's own tables are written once,
//! generic over [`Backend`], and never ask which database they talk to. Knows nothing of
//! clients or events.
//!
//! - [`Engine`] is what really differs, implemented once per database (`postgres.rs`,
//!   `sqlite.rs`): the few statements of its [`Dialect`], reading a column, the leases that
//!   make one process the projector or the sealer, and waiting for other processes' commits;
//! - [`Backend`] runs a [`Statement`] on a pool or a connection. It is implemented for every
//!   engine at once: sqlx's per-database bounds are written here, once, and nowhere else;
//! - [`Statement`] is SQL text with its arguments, built up with `$N` placeholders (which
//!   both databases accept); [`Record`] reads one of its rows into a value.
#![cfg_attr(test, allow(clippy::restriction, clippy::too_many_lines))]

mod dialect;
mod lease;
mod postgres;
mod sqlite;
mod statement;

use std::future::Future;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::value::RawValue;
use sqlx::pool::PoolConnection;
use sqlx::types::Json;
use sqlx::{Database, Decode, Encode, Executor, IntoArguments, Pool, Postgres, Sqlite, Type};

pub use dialect::Dialect;
pub use lease::{Lease, PgWaiter, ProjectorLease};
pub use statement::{Arg, Statement};

/// A transaction of a backend.
pub type Transaction<DB> = sqlx::Transaction<'static, DB>;

/// A value a column can be read as, on either database.
pub trait Column:
    for<'r> Decode<'r, Postgres> + Type<Postgres> + for<'r> Decode<'r, Sqlite> + Type<Sqlite>
{
}

impl<T> Column for T where
    T: for<'r> Decode<'r, Postgres> + Type<Postgres> + for<'r> Decode<'r, Sqlite> + Type<Sqlite>
{
}

/// A value read from one row, on either database.
pub trait Record: Sized {
    /// Reads `row` (its columns by name, with [`Engine::get`]).
    ///
    /// # Errors
    /// A column is missing or of another type.
    fn read<DB: Engine>(row: &DB::Row) -> Result<Self, sqlx::Error>;
}

/// The first column of a row, read as `T`.
pub struct First<T>(pub T);

impl<T: Column> Record for First<T> {
    fn read<DB: Engine>(row: &DB::Row) -> Result<Self, sqlx::Error> {
        DB::first(row).map(First)
    }
}

/// A stored hash of the sealed log: its level (0: a leaf), its index, the hash.
pub type NodeHash = (i64, i64, Vec<u8>);

/// What differs between the databases, implemented once for each.
pub trait Engine: Database {
    /// The statements that differ.
    const DIALECT: Dialect;

    /// What waiting for other processes' commits keeps between waits.
    type Waiter: Default + Send + Sync;

    /// Reads a column by name.
    ///
    /// # Errors
    /// The column is missing or of another type.
    fn get<T: Column>(row: &Self::Row, column: &str) -> Result<T, sqlx::Error>;

    /// How many rows a statement changed.
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// Reads the first column.
    ///
    /// # Errors
    /// There is none, or it is of another type.
    fn first<T: Column>(row: &Self::Row) -> Result<T, sqlx::Error>;

    /// Tries to take `lease` without waiting: `None` while another process holds it.
    fn try_lease(
        pool: &Pool<Self>,
        lease: Lease,
    ) -> impl Future<Output = Result<Option<Box<dyn ProjectorLease>>, sqlx::Error>> + Send;

    /// The sealed log's stored hashes `(level, index, hash)` of the given leaf indexes and
    /// inner nodes `(level, index)`, in as few round trips as the database allows.
    fn node_hashes(
        pool: &Pool<Self>,
        leaves: Vec<i64>,
        inner: Vec<(i64, i64)>,
    ) -> impl Future<Output = Result<Vec<NodeHash>, sqlx::Error>> + Send;

    /// Returns when another process may have committed events, or after `timeout`.
    fn wait(
        waiter: &Self::Waiter,
        pool: &Pool<Self>,
        timeout: Duration,
    ) -> impl Future<Output = ()> + Send;
}

/// Where a statement runs: on the pool (any connection) or on one connection (a transaction).
pub enum On<'c, DB: Database> {
    /// Any connection of the pool.
    Pool(&'c Pool<DB>),
    /// This connection.
    Connection(&'c mut DB::Connection),
}

/// What a statement can run on: a pool, a transaction, a connection of a pool.
pub trait Target<'c>: Send {
    /// Its database.
    type Db: Backend;

    /// Where the statement runs.
    fn on(self) -> On<'c, Self::Db>;
}

impl<'c, DB: Backend> Target<'c> for &'c Pool<DB> {
    type Db = DB;

    fn on(self) -> On<'c, DB> {
        On::Pool(self)
    }
}

impl<'c, DB: Backend> Target<'c> for &'c mut sqlx::Transaction<'_, DB> {
    type Db = DB;

    fn on(self) -> On<'c, DB> {
        On::Connection(&mut **self)
    }
}

impl<'c, DB: Backend> Target<'c> for &'c mut PoolConnection<DB> {
    type Db = DB;

    fn on(self) -> On<'c, DB> {
        On::Connection(&mut **self)
    }
}

/// Running a statement.
impl Statement {
    /// Every row it answers.
    pub fn rows<'c, O: Target<'c>>(self, on: O) -> Answer<'c, Vec<<O::Db as Database>::Row>> {
        O::Db::fetch_all(on.on(), self)
    }

    /// The first row it answers, if any (for statements of one row: the rest are read and
    /// dropped).
    pub fn row<'c, O: Target<'c>>(self, on: O) -> Answer<'c, Option<<O::Db as Database>::Row>> {
        let rows = O::Db::fetch_all(on.on(), self);
        Box::pin(async move { Ok(rows.await?.into_iter().next()) })
    }

    /// The first column of the first row (`None`: no row).
    pub fn scalar<'c, O: Target<'c>, T: Column + Send + 'c>(self, on: O) -> Answer<'c, Option<T>> {
        let row = self.row(on);
        Box::pin(async move { row.await?.map(|row| O::Db::first(&row)).transpose() })
    }

    /// The first column of the one row it answers (an error when there is none).
    pub fn one<'c, O: Target<'c>, T: Column + Send + 'c>(self, on: O) -> Answer<'c, T> {
        let value = self.scalar::<O, T>(on);
        Box::pin(async move { value.await?.ok_or(sqlx::Error::RowNotFound) })
    }

    /// The first row it answers, read as `R` (`None`: no row).
    pub fn record<'c, O: Target<'c>, R: Record + Send + 'c>(self, on: O) -> Answer<'c, Option<R>> {
        let row = self.row(on);
        Box::pin(async move { row.await?.map(|row| R::read::<O::Db>(&row)).transpose() })
    }

    /// Every row it answers, read as `R`.
    pub fn records<'c, O: Target<'c>, R: Record + Send + 'c>(self, on: O) -> Answer<'c, Vec<R>> {
        let rows = self.rows(on);
        Box::pin(async move { rows.await?.iter().map(R::read::<O::Db>).collect() })
    }

    /// Runs it; answers how many rows it changed.
    pub fn execute<'c, O: Target<'c>>(self, on: O) -> Answer<'c, u64> {
        O::Db::execute(on.on(), self)
    }
}

/// What a statement answers, once run: the database may fail (or, reading a column, find
/// another type).
pub type Answer<'c, T> = BoxFuture<'c, Result<T, sqlx::Error>>;

/// Runs statements: every [`Engine`] is one.
pub trait Backend: Binds {
    /// Every row the statement answers.
    fn fetch_all<'c>(
        on: On<'c, Self>,
        statement: Statement,
    ) -> BoxFuture<'c, Result<Vec<Self::Row>, sqlx::Error>>;

    /// Runs the statement; returns the rows it changed.
    fn execute<'c>(
        on: On<'c, Self>,
        statement: Statement,
    ) -> BoxFuture<'c, Result<u64, sqlx::Error>>;
}

/// Binds a statement's arguments: every [`Engine`] can.
pub trait Binds: Engine {
    /// The query of `statement`, its arguments bound.
    fn query(statement: &Statement) -> sqlx::query::Query<'_, Self, Self::Arguments<'_>>;
}

impl<DB> Binds for DB
where
    DB: Engine,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> chrono::DateTime<chrono::Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> Json<&'q RawValue>: Encode<'q, DB> + Type<DB>,
{
    fn query(statement: &Statement) -> sqlx::query::Query<'_, Self, Self::Arguments<'_>> {
        let mut query = sqlx::query(statement.sql());
        for arg in statement.args() {
            query = match arg {
                Arg::I64(value) => query.bind(*value),
                Arg::OptionalI64(value) => query.bind(*value),
                Arg::Bool(value) => query.bind(*value),
                Arg::Text(value) => query.bind(value.as_str()),
                Arg::OptionalText(value) => query.bind(value.as_deref()),
                Arg::Bytes(value) => query.bind(value.as_slice()),
                Arg::Time(value) => query.bind(*value),
                Arg::Json(value) => query.bind(Json(value.as_ref())),
            };
        }
        query
    }
}

impl<DB> Backend for DB
where
    DB: Binds,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    fn fetch_all<'c>(
        on: On<'c, Self>,
        statement: Statement,
    ) -> BoxFuture<'c, Result<Vec<Self::Row>, sqlx::Error>> {
        Box::pin(async move {
            match on {
                On::Pool(pool) => DB::query(&statement).fetch_all(pool).await,
                On::Connection(connection) => DB::query(&statement).fetch_all(connection).await,
            }
        })
    }

    fn execute<'c>(
        on: On<'c, Self>,
        statement: Statement,
    ) -> BoxFuture<'c, Result<u64, sqlx::Error>> {
        Box::pin(async move {
            let done = match on {
                On::Pool(pool) => DB::query(&statement).execute(pool).await?,
                On::Connection(connection) => DB::query(&statement).execute(connection).await?,
            };
            Ok(DB::rows_affected(&done))
        })
    }
}
