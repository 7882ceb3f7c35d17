//! The client list query: search, filter, sort and keyset pagination.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use registry_domain::client::ValidationErrors;
use serde::{Deserialize, Serialize};

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size.
pub const MAX_LIMIT: u32 = 500;
/// Longest search term, in characters.
pub const MAX_SEARCH_LEN: usize = 200;

/// The column a list is sorted by; `client_id` breaks ties, so the order is total and stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// By id (byte order).
    ClientId,
    /// By lowercased name.
    ClientName,
    /// By registration time.
    CreatedAt,
    /// By time of last change.
    UpdatedAt,
}

impl SortKey {
    /// The `client_list` column holding the key.
    pub fn column(self) -> &'static str {
        match self {
            Self::ClientId => "client_id",
            Self::ClientName => "name_key",
            Self::CreatedAt => "created_at",
            Self::UpdatedAt => "updated_at",
        }
    }

    /// The name the API uses for it.
    pub fn name(self) -> &'static str {
        match self {
            Self::ClientId => "client_id",
            Self::ClientName => "client_name",
            Self::CreatedAt => "created_at",
            Self::UpdatedAt => "updated_at",
        }
    }
}

/// A sort order: `client_name`, or `-client_name` for descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    /// The key.
    pub key: SortKey,
    /// Descending when true.
    pub descending: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Self {
            key: SortKey::ClientId,
            descending: false,
        }
    }
}

impl Sort {
    /// Parses `[-]client_id|client_name|created_at|updated_at`.
    ///
    /// # Errors
    /// A message listing the accepted values.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (descending, name) = s.strip_prefix('-').map_or((false, s), |rest| (true, rest));
        let key = [
            SortKey::ClientId,
            SortKey::ClientName,
            SortKey::CreatedAt,
            SortKey::UpdatedAt,
        ]
        .into_iter()
        .find(|k| k.name() == name)
        .ok_or_else(|| {
            "must be one of client_id, client_name, created_at, updated_at, optionally \
             prefixed with - for descending order"
                .to_owned()
        })?;
        Ok(Self { key, descending })
    }

    /// `ASC` or `DESC`.
    pub fn direction(self) -> &'static str {
        if self.descending {
            "DESC"
        } else {
            "ASC"
        }
    }

    /// The keyset comparison operator for rows after the cursor.
    pub fn after_operator(self) -> &'static str {
        if self.descending {
            "<"
        } else {
            ">"
        }
    }
}

/// The sort key value of the last row of a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CursorValue {
    /// Sorting by id: the id is the whole key.
    None,
    /// A text key (`name_key`).
    Text(String),
    /// A time key.
    Time(DateTime<Utc>),
}

/// Where the next page starts: strictly after this row in the sort order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The sort the cursor belongs to.
    sort: SortKey,
    descending: bool,
    /// The sort key of the last row.
    pub value: CursorValue,
    /// The id of the last row.
    pub client_id: String,
}

impl Cursor {
    /// The cursor after `row` under `sort`.
    pub fn after(row: &ListItem, sort: Sort) -> Self {
        let value = match sort.key {
            SortKey::ClientId => CursorValue::None,
            SortKey::ClientName => CursorValue::Text(row.client_name.to_lowercase()),
            SortKey::CreatedAt => CursorValue::Time(row.created_at),
            SortKey::UpdatedAt => CursorValue::Time(row.updated_at),
        };
        Self {
            sort: sort.key,
            descending: sort.descending,
            value,
            client_id: row.client_id.clone(),
        }
    }

    /// The opaque, URL-safe form handed to callers.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Reads a cursor for `sort`.
    ///
    /// # Errors
    /// A message when the cursor is not one this service issued for this sort.
    pub fn decode(s: &str, sort: Sort) -> Result<Self, String> {
        let invalid = || "is not a cursor returned by this list (with this sort)".to_owned();
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| invalid())?;
        let cursor: Self = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        let value_fits = matches!(
            (cursor.sort, &cursor.value),
            (SortKey::ClientId, CursorValue::None)
                | (SortKey::ClientName, CursorValue::Text(_))
                | (
                    SortKey::CreatedAt | SortKey::UpdatedAt,
                    CursorValue::Time(_)
                )
        );
        // A cursor is not signed: what it carries reaches SQL, so it must be something a row
        // could hold (no U+0000, which PostgreSQL text cannot store; a time PostgreSQL can
        // represent), or the database answers an error instead of an empty page.
        let storable = |text: &str| !text.contains('\0');
        let value_storable = match &cursor.value {
            CursorValue::None => true,
            CursorValue::Text(text) => storable(text),
            CursorValue::Time(time) => (0..=9999).contains(&chrono::Datelike::year(time)),
        };
        if cursor.sort != sort.key
            || cursor.descending != sort.descending
            || !value_fits
            || !value_storable
            || !storable(&cursor.client_id)
        {
            return Err(invalid());
        }
        Ok(cursor)
    }
}

/// A validated list query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Lowercased, trimmed search term matched literally against id and name.
    pub search: Option<String>,
    /// Only enabled (or only disabled) clients.
    pub enabled: Option<bool>,
    /// The order.
    pub sort: Sort,
    /// Page size.
    pub limit: u32,
    /// Start after this row.
    pub after: Option<Cursor>,
    /// Only these clients (a set the caller made, e.g. those registered dynamically). Served
    /// by the search index only.
    pub only: Option<std::sync::Arc<std::collections::HashSet<String>>>,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            search: None,
            enabled: None,
            sort: Sort::default(),
            limit: DEFAULT_LIMIT,
            after: None,
            only: None,
        }
    }
}

impl ListQuery {
    /// Validates the raw query parameters, naming every bad one.
    ///
    /// # Errors
    /// [`ValidationErrors`] naming `search`, `sort`, `limit` or `cursor`.
    pub fn parse(
        search: Option<&str>,
        enabled: Option<bool>,
        sort: Option<&str>,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let search = search.map(str::trim).filter(|s| !s.is_empty());
        if search.is_some_and(|s| s.chars().count() > MAX_SEARCH_LEN) {
            errors.add(
                "search",
                format!("must be at most {MAX_SEARCH_LEN} characters"),
            );
        }
        let sort = match sort.map(Sort::parse).transpose() {
            Ok(sort) => sort.unwrap_or_default(),
            Err(message) => {
                errors.add("sort", message);
                Sort::default()
            }
        };
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            errors.add("limit", format!("must be between 1 and {MAX_LIMIT}"));
        }
        let after = match cursor
            .filter(|c| !c.is_empty())
            .map(|c| Cursor::decode(c, sort))
        {
            Some(Err(message)) => {
                errors.add("cursor", message);
                None
            }
            Some(Ok(cursor)) => Some(cursor),
            None => None,
        };
        errors.into_result(Self {
            search: search.map(str::to_lowercase),
            enabled,
            sort,
            limit,
            after,
            only: None,
        })
    }

    /// The LIKE pattern for the search term, with `\`, `%` and `_` escaped so they match only
    /// themselves (use with `ESCAPE '\'`).
    pub fn like_pattern(&self) -> Option<String> {
        self.search.as_ref().map(|term| {
            let mut pattern = String::with_capacity(term.len() + 2);
            pattern.push('%');
            for c in term.chars() {
                if matches!(c, '\\' | '%' | '_') {
                    pattern.push('\\');
                }
                pattern.push(c);
            }
            pattern.push('%');
            pattern
        })
    }
}

/// One client in the list: the columns of the guide's list screen, plus grant types and times.
// The API answers it as it is, as `ClientListItem`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ClientListItem)]
pub struct ListItem {
    /// Unique id.
    pub client_id: String,
    /// Display name.
    pub client_name: String,
    /// Whether it is active.
    pub enabled: bool,
    /// Base URL.
    pub client_uri: Option<String>,
    /// Allowed grant types.
    pub grant_types: Vec<String>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// One page of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPage {
    /// The clients of this page, in order.
    pub items: Vec<ListItem>,
    /// How many clients match the search and filter, across all pages.
    pub total: u64,
    /// Pass as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl ClientPage {
    /// Builds a page from up to `limit + 1` fetched rows: the extra row only says there is a
    /// next page.
    pub fn from_rows(mut items: Vec<ListItem>, total: u64, query: &ListQuery) -> Self {
        let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items
                .last()
                .map(|last| Cursor::after(last, query.sort).encode())
        } else {
            None
        };
        Self {
            items,
            total,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forged_cursor_with_nul_or_an_impossible_time_is_refused() {
        let sort = Sort::parse("client_name").unwrap();
        let forged = |value: CursorValue, client_id: &str| {
            Cursor {
                sort: sort.key,
                descending: false,
                value,
                client_id: client_id.to_owned(),
            }
            .encode()
        };
        assert!(Cursor::decode(&forged(CursorValue::Text("a".into()), "b"), sort).is_ok());
        assert!(Cursor::decode(&forged(CursorValue::Text("a\0".into()), "b"), sort).is_err());
        assert!(Cursor::decode(&forged(CursorValue::Text("a".into()), "b\0"), sort).is_err());
        let by_time = Sort::parse("created_at").unwrap();
        let far = chrono::DateTime::<chrono::Utc>::MAX_UTC;
        let cursor = Cursor {
            sort: by_time.key,
            descending: false,
            value: CursorValue::Time(far),
            client_id: "b".into(),
        };
        assert!(Cursor::decode(&cursor.encode(), by_time).is_err());
    }

    #[test]
    fn like_pattern_escapes_wildcards() {
        let query = ListQuery::parse(Some(" Cli_F%\\x "), None, None, None, None);
        assert_eq!(
            query.ok().and_then(|q| q.like_pattern()),
            Some("%cli\\_f\\%\\\\x%".to_owned())
        );
    }

    #[test]
    fn cursor_of_another_sort_is_rejected() {
        let item = ListItem {
            client_id: "a".into(),
            client_name: "A".into(),
            enabled: true,
            client_uri: None,
            grant_types: vec![],
            created_at: DateTime::<Utc>::default(),
            updated_at: DateTime::<Utc>::default(),
        };
        let by_name = Sort::parse("client_name").unwrap_or_default();
        let cursor = Cursor::after(&item, by_name).encode();
        assert!(Cursor::decode(&cursor, by_name).is_ok());
        assert!(Cursor::decode(&cursor, Sort::default()).is_err());
        assert!(Cursor::decode("garbage", by_name).is_err());
    }

    #[test]
    fn every_bad_parameter_is_named() {
        let errors = ListQuery::parse(None, None, Some("name"), Some(0), Some("x"));
        let fields: Vec<String> = errors
            .err()
            .map(|e| e.errors().iter().map(|f| f.field.clone()).collect())
            .unwrap_or_default();
        assert_eq!(fields, ["sort", "limit", "cursor"]);
    }
}
