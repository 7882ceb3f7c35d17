//! A JSON value read within a budget of bytes and depth, refusing duplicate keys.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// What one value costs against [`super::read::expansion_limit`], besides its text.
pub const VALUE_COST: usize = 32;

/// How deeply values may nest (a document needs 4 levels: document, clients, a client, a list).
pub const MAX_DEPTH: usize = 32;

/// What is left to spend.
pub(super) struct Budget<'a> {
    bytes: Cell<usize>,
    depth: Cell<usize>,
    cancelled: &'a AtomicBool,
}

impl<'a> Budget<'a> {
    pub(super) fn new(bytes: usize, cancelled: &'a AtomicBool) -> Self {
        Self {
            bytes: Cell::new(bytes),
            depth: Cell::new(0),
            cancelled,
        }
    }
}

#[derive(Clone, Copy)]
pub(super) struct Bounded<'a> {
    pub(super) budget: &'a Budget<'a>,
}

impl Bounded<'_> {
    /// Pays for one value holding `text` bytes of text, before it is built.
    fn spend<E: de::Error>(self, text: usize) -> Result<(), E> {
        if self.budget.cancelled.load(Ordering::Relaxed) {
            return Err(E::custom("reading stopped: the request ended"));
        }
        let cost = VALUE_COST.saturating_add(text);
        match self.budget.bytes.get().checked_sub(cost) {
            Some(left) => {
                self.budget.bytes.set(left);
                Ok(())
            }
            None => Err(E::custom(
                "expands to far more than it is long (YAML aliases of large values?): \
                 refused",
            )),
        }
    }

    /// Enters a list or mapping.
    fn enter<E: de::Error>(self) -> Result<(), E> {
        self.spend(0)?;
        let depth = self.budget.depth.get() + 1;
        if depth > MAX_DEPTH {
            return Err(E::custom(format!(
                "nests deeper than {MAX_DEPTH} levels: refused"
            )));
        }
        self.budget.depth.set(depth);
        Ok(())
    }

    fn leave(self) {
        self.budget
            .depth
            .set(self.budget.depth.get().saturating_sub(1));
    }
}

impl<'de> DeserializeSeed<'de> for Bounded<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Bounded<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.spend(0)?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.spend(0)?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.spend(0)?;
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.spend(0)?;
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.spend(v.len())?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.spend(v.len())?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.spend(0)?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        self.leave();
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut members = Map::new();
        while let Some(key) = map.next_key_seed(self)? {
            let key = match key {
                Value::String(key) => key,
                other => other.to_string(),
            };
            let value = map.next_value_seed(self)?;
            if members.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "the key {key:?} appears twice in one mapping"
                )));
            }
            members.insert(key, value);
        }
        self.leave();
        Ok(Value::Object(members))
    }
}
