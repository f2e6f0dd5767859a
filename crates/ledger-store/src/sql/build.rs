//! A statement under construction for a dialect: SQL text with placeholders and the
//! values to bind, each encoded the way that database keeps it. Inside [`Sql::values`]
//! binds are separated by commas on their own.

use std::fmt::{Display, Write};
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::db::{Arg, Piece, SqlDb};
use super::dialect::{Conn, DbRow, Dialect};

pub(crate) struct Sql<D: Dialect> {
    sql: String,
    args: Vec<Arg>,
    /// Inside a VALUES tuple: whether the next bind is its first.
    tuple_start: Option<bool>,
    _dialect: PhantomData<D>,
}

impl<D: Dialect> Sql<D> {
    pub fn new(sql: impl Into<String>) -> Self {
        Self { sql: sql.into(), args: Vec::new(), tuple_start: None, _dialect: PhantomData }
    }

    pub fn push(&mut self, sql: impl Display) -> &mut Self {
        write!(self.sql, "{sql}").expect("writing to a String");
        self
    }

    /// Binds `arg` at this point of the text.
    pub fn arg(&mut self, arg: Arg) -> &mut Self {
        if let Some(first) = self.tuple_start.as_mut() {
            if !*first {
                self.sql.push_str(", ");
            }
            *first = false;
        }
        self.args.push(arg);
        D::push_placeholder(&mut self.sql, self.args.len());
        self
    }

    pub fn uuid(&mut self, value: Uuid) -> &mut Self {
        self.arg(Arg::Uuid(value))
    }
    pub fn opt_uuid(&mut self, value: Option<Uuid>) -> &mut Self {
        self.arg(Arg::OptUuid(value))
    }
    pub fn i64(&mut self, value: i64) -> &mut Self {
        self.arg(Arg::I64(value))
    }
    pub fn i16(&mut self, value: i16) -> &mut Self {
        self.arg(Arg::I16(value))
    }
    pub fn bool(&mut self, value: bool) -> &mut Self {
        self.arg(Arg::Bool(value))
    }
    pub fn text(&mut self, value: impl Into<String>) -> &mut Self {
        self.arg(Arg::Text(value.into()))
    }
    pub fn opt_text(&mut self, value: Option<String>) -> &mut Self {
        self.arg(Arg::OptText(value))
    }
    pub fn opt_i64(&mut self, value: Option<i64>) -> &mut Self {
        self.arg(Arg::OptI64(value))
    }
    pub fn bytes(&mut self, value: &[u8]) -> &mut Self {
        self.arg(Arg::Bytes(value.to_vec()))
    }
    pub fn json(&mut self, value: String) -> &mut Self {
        self.text(value).push(D::JSON_CAST)
    }
    pub fn time(&mut self, value: DateTime<Utc>) -> &mut Self {
        self.arg(D::time(value))
    }
    pub fn opt_time(&mut self, value: Option<DateTime<Utc>>) -> &mut Self {
        self.arg(D::opt_time(value))
    }
    pub fn amount(&mut self, value: Decimal) -> &mut Self {
        self.arg(D::amount(value)).push(D::AMOUNT_CAST)
    }

    pub fn pieces(&mut self, pieces: Vec<Piece>) -> &mut Self {
        for piece in pieces {
            match piece {
                Piece::Sql(sql) => self.push(sql),
                Piece::Arg(arg) => self.arg(arg),
            };
        }
        self
    }

    /// `(a, b) IN pairs`, as this database reads it best.
    pub fn pairs(&mut self, columns: (&str, &str), pairs: &[(Uuid, Uuid)]) -> &mut Self {
        self.pieces(D::pairs(columns, pairs))
    }

    /// `(v1, v2, …)`, for `IN`; `values` must not be empty.
    pub fn uuid_list(&mut self, values: &[Uuid]) -> &mut Self {
        assert!(!values.is_empty(), "an IN list needs a value");
        self.sql.push('(');
        self.tuple_start = Some(true);
        for value in values {
            self.uuid(*value);
        }
        self.tuple_start = None;
        self.sql.push(')');
        self
    }

    /// ` VALUES (…), (…)`: `row` binds one item's columns.
    pub fn values<T>(&mut self, items: impl IntoIterator<Item = T>, mut row: impl FnMut(&mut Self, T)) -> &mut Self {
        self.sql.push_str(" VALUES ");
        for (i, item) in items.into_iter().enumerate() {
            self.sql.push_str(if i == 0 { "(" } else { ", (" });
            self.tuple_start = Some(true);
            row(self, item);
            self.tuple_start = None;
            self.sql.push(')');
        }
        self
    }

    pub async fn fetch_all(self, conn: &mut Conn<D>) -> Result<Vec<DbRow<D>>, sqlx::Error> {
        D::Db::fetch_all(self.sql, self.args, conn).await
    }
    pub async fn fetch_optional(self, conn: &mut Conn<D>) -> Result<Option<DbRow<D>>, sqlx::Error> {
        D::Db::fetch_optional(self.sql, self.args, conn).await
    }
    pub async fn execute(self, conn: &mut Conn<D>) -> Result<u64, sqlx::Error> {
        D::Db::execute(self.sql, self.args, conn).await
    }
}
