//! One SQL interface over the store's two databases: the embedded SQLite file and a
//! PostgreSQL server (the fleet store, [`super::postgres`]).
//!
//! Statements are written once, in the SQL both accept, with SQLite's numbered parameters
//! (`?1`, `?2`, reused freely); for PostgreSQL each is rewritten to `$1`, `$2` once and
//! prepared once per connection. Values are integers, text, bytes or NULL: the stores keep
//! nothing else (times are Unix seconds, JSON is text, sealed values are text, hashes are
//! bytes). What differs between the two (the schema's types, locks, the change counter) is
//! asked of [`Db::backend`] by the few places that need it.

use std::cell::RefCell;

use super::StoreError;
use super::postgres::Pg;

/// Which database a [`Db`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A value bound to a statement's parameter.
#[derive(Clone, Copy, Debug)]
pub enum Param<'a> {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(&'a str),
    /// Bytes (`BLOB`, `BYTEA`).
    Bytes(&'a [u8]),
}

/// What can be bound to a parameter.
pub trait ToParam {
    /// The value to bind.
    fn param(&self) -> Param<'_>;
}

impl ToParam for i64 {
    fn param(&self) -> Param<'_> {
        Param::Int(*self)
    }
}

impl ToParam for str {
    fn param(&self) -> Param<'_> {
        Param::Text(self)
    }
}

impl ToParam for String {
    fn param(&self) -> Param<'_> {
        Param::Text(self)
    }
}

impl ToParam for [u8] {
    fn param(&self) -> Param<'_> {
        Param::Bytes(self)
    }
}

impl ToParam for Vec<u8> {
    fn param(&self) -> Param<'_> {
        Param::Bytes(self)
    }
}

impl<const N: usize> ToParam for [u8; N] {
    fn param(&self) -> Param<'_> {
        Param::Bytes(self)
    }
}

impl<T: ToParam + ?Sized> ToParam for &T {
    fn param(&self) -> Param<'_> {
        (**self).param()
    }
}

impl<T: ToParam> ToParam for Option<T> {
    fn param(&self) -> Param<'_> {
        self.as_ref().map_or(Param::Null, ToParam::param)
    }
}

/// A statement's parameters, in order: `sql_params![name, now]`.
#[macro_export]
macro_rules! sql_params {
    ($($value:expr),* $(,)?) => {
        &[$(&$value as &dyn $crate::store::db::ToParam),*] as &[&dyn $crate::store::db::ToParam]
    };
}

/// One row of an answer.
pub enum Row<'a> {
    /// A row SQLite is stepping through.
    Sqlite(&'a rusqlite::Row<'a>),
    /// A row PostgreSQL answered.
    Postgres(&'a postgres::Row),
}

/// What a column can be read as.
pub trait FromColumn: Sized {
    /// The value of column `index` of `row`.
    fn column(row: &Row<'_>, index: usize) -> Result<Self, StoreError>;
}

impl Row<'_> {
    /// Column `index` (from 0), as `T`.
    pub fn get<T: FromColumn>(&self, index: usize) -> Result<T, StoreError> {
        T::column(self, index)
    }
}

/// A column that was NULL where a value was expected, or of another type.
fn wrong_type(index: usize, expected: &str) -> StoreError {
    StoreError::Database(format!("column {index} is not {expected}"))
}

impl FromColumn for Option<i64> {
    fn column(row: &Row<'_>, index: usize) -> Result<Self, StoreError> {
        match row {
            Row::Sqlite(row) => Ok(row.get(index)?),
            Row::Postgres(row) => super::postgres::int(row, index),
        }
    }
}

impl FromColumn for i64 {
    fn column(row: &Row<'_>, index: usize) -> Result<Self, StoreError> {
        Option::<i64>::column(row, index)?.ok_or_else(|| wrong_type(index, "an integer"))
    }
}

impl FromColumn for bool {
    fn column(row: &Row<'_>, index: usize) -> Result<Self, StoreError> {
        Ok(i64::column(row, index)? != 0)
    }
}

impl FromColumn for Option<String> {
    fn column(row: &Row<'_>, index: usize) -> Result<Self, StoreError> {
        match row {
            Row::Sqlite(row) => Ok(row.get(index)?),
            Row::Postgres(row) => row.try_get(index).map_err(|_| wrong_type(index, "text")),
        }
    }
}

impl FromColumn for String {
    fn column(row: &Row<'_>, index: usize) -> Result<Self, StoreError> {
        Option::<String>::column(row, index)?.ok_or_else(|| wrong_type(index, "text"))
    }
}

impl FromColumn for Option<Vec<u8>> {
    fn column(row: &Row<'_>, index: usize) -> Result<Self, StoreError> {
        match row {
            Row::Sqlite(row) => Ok(row.get(index)?),
            Row::Postgres(row) => row.try_get(index).map_err(|_| wrong_type(index, "bytes")),
        }
    }
}

impl FromColumn for Vec<u8> {
    fn column(row: &Row<'_>, index: usize) -> Result<Self, StoreError> {
        Option::<Vec<u8>>::column(row, index)?.ok_or_else(|| wrong_type(index, "bytes"))
    }
}

/// A transaction [`Db::transaction`] began, rolled back when dropped before its commit.
struct OpenTransaction<'a>(&'a Db);

impl Drop for OpenTransaction<'_> {
    fn drop(&mut self) {
        let _ = self.0.batch("ROLLBACK");
        self.0.in_transaction(false);
    }
}

/// An open database: the store's SQLite file, or a session with the PostgreSQL server.
pub enum Db {
    /// The SQLite file.
    Sqlite(rusqlite::Connection),
    /// A PostgreSQL session, reconnected when it was lost (boxed: its statement caches
    /// would make every `Db` large).
    Postgres(Box<RefCell<Pg>>),
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Self::Null => ValueRef::Null,
            Self::Int(value) => ValueRef::Integer(value),
            Self::Text(text) => ValueRef::Text(text.as_bytes()),
            Self::Bytes(bytes) => ValueRef::Blob(bytes),
        }))
    }
}

/// `params` as SQLite binds them.
fn sqlite_params<'a>(params: &'a [&'a dyn ToParam]) -> Vec<Param<'a>> {
    params.iter().map(|param| param.param()).collect()
}

impl Db {
    /// Which database this is.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs one statement; returns how many rows it changed.
    pub fn execute(&self, sql: &str, params: &[&dyn ToParam]) -> Result<usize, StoreError> {
        match self {
            Self::Sqlite(db) => {
                let params = sqlite_params(params);
                Ok(db
                    .prepare_cached(sql)?
                    .execute(rusqlite::params_from_iter(params))?)
            }
            Self::Postgres(pg) => pg.borrow_mut().execute(sql, params),
        }
    }

    /// Runs a query; `read` turns each row into a `T`.
    pub fn query<T>(
        &self,
        sql: &str,
        params: &[&dyn ToParam],
        mut read: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        match self {
            Self::Sqlite(db) => {
                let params = sqlite_params(params);
                let mut statement = db.prepare_cached(sql)?;
                let mut rows = statement.query(rusqlite::params_from_iter(params))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(read(&Row::Sqlite(row))?);
                }
                Ok(out)
            }
            Self::Postgres(pg) => {
                // The borrow ends before `read` runs (which never touches the database).
                let rows = pg.borrow_mut().query(sql, params)?;
                rows.iter().map(|row| read(&Row::Postgres(row))).collect()
            }
        }
    }

    /// Runs a query for at most one row: `None` when there is none.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&dyn ToParam],
        read: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        match self {
            Self::Sqlite(db) => {
                let params = sqlite_params(params);
                let mut statement = db.prepare_cached(sql)?;
                let mut rows = statement.query(rusqlite::params_from_iter(params))?;
                match rows.next()? {
                    Some(row) => read(&Row::Sqlite(row)).map(Some),
                    None => Ok(None),
                }
            }
            Self::Postgres(pg) => {
                let rows = pg.borrow_mut().query(sql, params)?;
                rows.first()
                    .map(|row| read(&Row::Postgres(row)))
                    .transpose()
            }
        }
    }

    /// Runs a query that answers exactly one row (an aggregate, for example).
    pub fn query_one<T>(
        &self,
        sql: &str,
        params: &[&dyn ToParam],
        read: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.query_opt(sql, params, read)?
            .ok_or_else(|| StoreError::Database("a query answered no row".to_owned()))
    }

    /// Runs statements without parameters (a schema's `CREATE TABLE`s), in one round trip.
    pub fn batch(&self, sql: &str) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(db) => Ok(db.execute_batch(sql)?),
            Self::Postgres(pg) => pg.borrow_mut().batch(sql),
        }
    }

    /// Runs `work` in one transaction: committed when it returns `Ok`, rolled back when it
    /// returns an error (which is passed on). SQLite takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so a transaction that reads and then writes never has to be
    /// retried for a writer that came between; PostgreSQL's row locks and unique keys do the
    /// same for the statements written here. A PostgreSQL session lost inside a transaction
    /// fails it ([`StoreError::Unavailable`]): its work is gone with the session, and nothing
    /// is replayed behind the caller's back.
    pub fn transaction<T, E: From<StoreError>>(
        &self,
        work: impl FnOnce(&Db) -> Result<T, E>,
    ) -> Result<T, E> {
        self.batch(match self.backend() {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        })?;
        self.in_transaction(true);
        // Rolled back unless committed: also when `work` panics (a store thread catches the
        // panic and goes on with this connection, which must not stay inside the
        // transaction).
        let open = OpenTransaction(self);
        let value = work(self)?;
        self.batch("COMMIT")?;
        std::mem::forget(open);
        self.in_transaction(false);
        Ok(value)
    }

    /// PostgreSQL: the schema version recorded in `table` (its one `version` row), after
    /// creating the table and running `ddl` at `version` when there is none (a new
    /// database; `what` names it in the log). In one transaction, under the
    /// transaction-scoped advisory lock `lock`, so that processes starting together create
    /// the schema once. Returns the version found, or `version` when this call created it.
    pub fn postgres_schema(
        &self,
        lock: i64,
        table: &str,
        version: i64,
        ddl: &str,
        what: &str,
    ) -> Result<i64, StoreError> {
        self.transaction(|db| {
            db.query_one(
                "SELECT pg_advisory_xact_lock(?1)",
                crate::sql_params![lock],
                |_| Ok(()),
            )?;
            db.batch(&format!(
                "CREATE TABLE IF NOT EXISTS {table} (version BIGINT NOT NULL)"
            ))?;
            let found = db.query_opt(&format!("SELECT version FROM {table}"), &[], |row| {
                row.get::<i64>(0)
            })?;
            if let Some(found) = found {
                return Ok(found);
            }
            tracing::debug!(to = version, "creating {what}");
            db.batch(ddl)?;
            db.execute(
                &format!("INSERT INTO {table} (version) VALUES (?1)"),
                crate::sql_params![version],
            )?;
            Ok(version)
        })
    }

    /// Tells a PostgreSQL session that a transaction began or ended: a session lost inside
    /// one is not silently replaced (the transaction's work is gone with it).
    fn in_transaction(&self, inside: bool) {
        if let Self::Postgres(pg) = self {
            pg.borrow_mut().in_transaction = inside;
        }
    }
}
