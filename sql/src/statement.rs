//! SQL text and its arguments, built up piece by piece with `$N` placeholders.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

/// An argument of a statement.
#[derive(Debug, Clone)]
pub enum Arg {
    /// An integer.
    I64(i64),
    /// An integer or NULL.
    OptionalI64(Option<i64>),
    /// A boolean.
    Bool(bool),
    /// Text.
    Text(String),
    /// Text or NULL.
    OptionalText(Option<String>),
    /// Bytes.
    Bytes(Vec<u8>),
    /// A point in time.
    Time(DateTime<Utc>),
    /// A JSON document (`jsonb` on PostgreSQL, text on SQLite).
    Json(Box<RawValue>),
}

/// `From` for each value an argument can be made of.
macro_rules! arg_from {
    ($($type:ty => |$value:ident| $arg:expr),* $(,)?) => {
        $(impl From<$type> for Arg {
            fn from($value: $type) -> Self {
                $arg
            }
        })*
    };
}

arg_from!(
    i64 => |value| Self::I64(value),
    Option<i64> => |value| Self::OptionalI64(value),
    bool => |value| Self::Bool(value),
    &str => |value| Self::Text(value.to_owned()),
    String => |value| Self::Text(value),
    &String => |value| Self::Text(value.clone()),
    Option<String> => |value| Self::OptionalText(value),
    Vec<u8> => |value| Self::Bytes(value),
    DateTime<Utc> => |value| Self::Time(value),
);

impl Arg {
    /// `value` as a JSON document.
    ///
    /// # Errors
    /// `value` cannot be written as JSON.
    pub fn json(value: &impl serde::Serialize) -> Result<Self, sqlx::Error> {
        serde_json::value::to_raw_value(value)
            .map(Self::Json)
            .map_err(|e| sqlx::Error::Encode(Box::new(e)))
    }
}

/// SQL text and its arguments.
#[derive(Debug, Clone, Default)]
pub struct Statement {
    sql: String,
    args: Vec<Arg>,
}

impl Statement {
    /// A statement of `sql`, its placeholders `$1`… bound in order by [`Self::bind`].
    pub fn new<'a>(sql: impl Into<Cow<'a, str>>) -> Self {
        Self {
            sql: sql.into().into_owned(),
            args: Vec::new(),
        }
    }

    /// Binds the next placeholder written in the text.
    #[must_use]
    pub fn bind(mut self, value: impl Into<Arg>) -> Self {
        self.args.push(value.into());
        self
    }

    /// Appends text.
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends a placeholder for `value`.
    pub fn push_bind(&mut self, value: impl Into<Arg>) -> &mut Self {
        self.args.push(value.into());
        self.sql.push('$');
        self.sql.push_str(&self.args.len().to_string());
        self
    }

    /// Appends `(` a placeholder for each of `values`, separated by commas `)`: the list of
    /// an `in`.
    pub fn push_list<A: Into<Arg>>(&mut self, values: impl IntoIterator<Item = A>) -> &mut Self {
        self.push("(");
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.push_bind(value);
        }
        self.push(")")
    }

    /// Appends one `(…)` of placeholders per row of `rows`, separated by commas: the `values`
    /// of a multi-row insert, or a list of keys.
    pub fn push_tuples<R, A>(&mut self, rows: impl IntoIterator<Item = R>) -> &mut Self
    where
        R: IntoIterator<Item = A>,
        A: Into<Arg>,
    {
        for (i, row) in rows.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.push_list(row);
        }
        self
    }

    /// The text.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The arguments, in placeholder order.
    pub fn args(&self) -> &[Arg] {
        &self.args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_the_order_values_are_bound() {
        let mut insert = Statement::new("insert into t (a, b) values ");
        insert.push_tuples([[1_i64, 2], [3, 4]]);
        insert
            .push(" on conflict (a) do update set b = ")
            .push_bind(5_i64);
        assert_eq!(
            insert.sql(),
            "insert into t (a, b) values ($1, $2), ($3, $4) on conflict (a) do update set b = $5"
        );
        let bound: Vec<i64> = insert
            .args()
            .iter()
            .map(|arg| match arg {
                Arg::I64(n) => *n,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(bound, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_list_follows_values_bound_by_position() {
        let mut select = Statement::new("select * from t where kind = $1 and id in ").bind("x");
        select.push_list(["a", "b", "c"]);
        assert_eq!(
            select.sql(),
            "select * from t where kind = $1 and id in ($2, $3, $4)"
        );
        assert_eq!(select.args().len(), 4);
    }
}
