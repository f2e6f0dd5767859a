//! The part of sqlx both databases share, behind one trait so the store's flow can be
//! written once. Generic sqlx code must repeat every `T: Encode<DB> + Decode<DB>` bound
//! at each use (Rust does not carry such bounds along); [`SqlDb`] states them once, in
//! its blanket impl, and offers the typed reads and the executions the flow uses.
//!
//! Statements carry their values as [`Arg`]s and bind them only when they run: sqlx's
//! SQLite arguments borrow for as long as the statement text, which a statement that
//! is built in one place and run in another cannot promise.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sqlx::{Arguments, ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};
use uuid::Uuid;

use crate::error::StoreError;

/// A value to bind. Amounts and arrays travel as text and are cast in SQL where the
/// database wants them typed (see the dialects).
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Uuid(Uuid),
    OptUuid(Option<Uuid>),
    I64(i64),
    OptI64(Option<i64>),
    I16(i16),
    Bool(bool),
    Text(String),
    OptText(Option<String>),
    Bytes(Vec<u8>),
    Time(DateTime<Utc>),
    OptTime(Option<DateTime<Utc>>),
}

/// A piece of a statement a dialect writes: text, or a value to bind there.
#[derive(Debug, Clone)]
pub(crate) enum Piece {
    Sql(String),
    Arg(Arg),
}

/// A database the store's shared flow runs on (Postgres and SQLite).
pub(crate) trait SqlDb: Database + Sized {
    fn uuid(row: &Self::Row, column: &str) -> Result<Uuid, StoreError>;
    fn opt_uuid(row: &Self::Row, column: &str) -> Result<Option<Uuid>, StoreError>;
    fn i64(row: &Self::Row, column: &str) -> Result<i64, StoreError>;
    fn opt_i64(row: &Self::Row, column: &str) -> Result<Option<i64>, StoreError>;
    fn i16(row: &Self::Row, column: &str) -> Result<i16, StoreError>;
    fn text(row: &Self::Row, column: &str) -> Result<String, StoreError>;
    fn opt_text(row: &Self::Row, column: &str) -> Result<Option<String>, StoreError>;
    fn bytes(row: &Self::Row, column: &str) -> Result<Vec<u8>, StoreError>;

    fn fetch_all<'c>(
        sql: String,
        args: Vec<Arg>,
        conn: &'c mut Self::Connection,
    ) -> BoxFuture<'c, Result<Vec<Self::Row>, sqlx::Error>>;
    fn fetch_optional<'c>(
        sql: String,
        args: Vec<Arg>,
        conn: &'c mut Self::Connection,
    ) -> BoxFuture<'c, Result<Option<Self::Row>, sqlx::Error>>;
    /// Runs a statement; returns the rows it affected.
    fn execute<'c>(
        sql: String,
        args: Vec<Arg>,
        conn: &'c mut Self::Connection,
    ) -> BoxFuture<'c, Result<u64, sqlx::Error>>;
}

/// How many rows a statement changed (each driver has its own result type).
pub(crate) trait RowsAffected {
    fn rows_affected(&self) -> u64;
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn rows_affected(&self) -> u64 {
        sqlx::postgres::PgQueryResult::rows_affected(self)
    }
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        sqlx::sqlite::SqliteQueryResult::rows_affected(self)
    }
}

fn column<T, DB>(row: &DB::Row, column: &str) -> Result<T, StoreError>
where
    DB: Database,
    T: for<'r> Decode<'r, DB> + Type<DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
{
    row.try_get(column).map_err(|e| StoreError::Corrupt(format!("column {column}: {e}")))
}

/// Binds every value, in order.
fn arguments<'q, DB>(args: Vec<Arg>) -> Result<DB::Arguments<'q>, sqlx::Error>
where
    DB: Database,
    Uuid: Encode<'q, DB> + Type<DB>,
    Option<Uuid>: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    Option<i64>: Encode<'q, DB> + Type<DB>,
    i16: Encode<'q, DB> + Type<DB>,
    bool: Encode<'q, DB> + Type<DB>,
    String: Encode<'q, DB> + Type<DB>,
    Option<String>: Encode<'q, DB> + Type<DB>,
    Vec<u8>: Encode<'q, DB> + Type<DB>,
    DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    Option<DateTime<Utc>>: Encode<'q, DB> + Type<DB>,
{
    let mut arguments = DB::Arguments::<'q>::default();
    for arg in args {
        match arg {
            Arg::Uuid(v) => arguments.add(v),
            Arg::OptUuid(v) => arguments.add(v),
            Arg::I64(v) => arguments.add(v),
            Arg::OptI64(v) => arguments.add(v),
            Arg::I16(v) => arguments.add(v),
            Arg::Bool(v) => arguments.add(v),
            Arg::Text(v) => arguments.add(v),
            Arg::OptText(v) => arguments.add(v),
            Arg::Bytes(v) => arguments.add(v),
            Arg::Time(v) => arguments.add(v),
            Arg::OptTime(v) => arguments.add(v),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(arguments)
}

impl<DB> SqlDb for DB
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
    for<'q> Uuid: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i16: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB> + Type<DB>,
    DB::QueryResult: RowsAffected,
{
    fn uuid(row: &Self::Row, name: &str) -> Result<Uuid, StoreError> {
        column::<Uuid, DB>(row, name)
    }
    fn opt_uuid(row: &Self::Row, name: &str) -> Result<Option<Uuid>, StoreError> {
        column::<Option<Uuid>, DB>(row, name)
    }
    fn i64(row: &Self::Row, name: &str) -> Result<i64, StoreError> {
        column::<i64, DB>(row, name)
    }
    fn opt_i64(row: &Self::Row, name: &str) -> Result<Option<i64>, StoreError> {
        column::<Option<i64>, DB>(row, name)
    }
    fn opt_text(row: &Self::Row, name: &str) -> Result<Option<String>, StoreError> {
        column::<Option<String>, DB>(row, name)
    }
    fn i16(row: &Self::Row, name: &str) -> Result<i16, StoreError> {
        column::<i16, DB>(row, name)
    }
    fn text(row: &Self::Row, name: &str) -> Result<String, StoreError> {
        column::<String, DB>(row, name)
    }
    fn bytes(row: &Self::Row, name: &str) -> Result<Vec<u8>, StoreError> {
        column::<Vec<u8>, DB>(row, name)
    }

    fn fetch_all<'c>(
        sql: String,
        args: Vec<Arg>,
        conn: &'c mut Self::Connection,
    ) -> BoxFuture<'c, Result<Vec<Self::Row>, sqlx::Error>> {
        Box::pin(async move { sqlx::query_with(&sql, arguments::<DB>(args)?).fetch_all(conn).await })
    }
    fn fetch_optional<'c>(
        sql: String,
        args: Vec<Arg>,
        conn: &'c mut Self::Connection,
    ) -> BoxFuture<'c, Result<Option<Self::Row>, sqlx::Error>> {
        Box::pin(async move { sqlx::query_with(&sql, arguments::<DB>(args)?).fetch_optional(conn).await })
    }
    fn execute<'c>(
        sql: String,
        args: Vec<Arg>,
        conn: &'c mut Self::Connection,
    ) -> BoxFuture<'c, Result<u64, sqlx::Error>> {
        Box::pin(async move {
            let done = sqlx::query_with(&sql, arguments::<DB>(args)?).execute(conn).await?;
            Ok(done.rows_affected())
        })
    }
}
