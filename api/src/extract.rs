//! Extractors whose rejections are problem documents naming the offending field.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use chrono::{DateTime, Utc};
use registry_commands::CommandContext;
use serde::de::DeserializeOwned;

use crate::auth::Principal;

use crate::error::{ApiError, ProblemFieldError};

/// Largest accepted request body, in bytes. A client with the maximum number of the longest
/// URLs stays below it.
pub const BODY_LIMIT: usize = 256 * 1024;

/// Largest accepted clients document (`/clients/plan` raises the body limit to it): about
/// 45,000 clients.
pub const DOCUMENT_LIMIT: usize = 16 * 1024 * 1024;

/// Largest accepted plan to apply (`/clients/apply`): a plan is about three times its
/// document (each step's changes and desired client).
pub const PLAN_LIMIT: usize = 64 * 1024 * 1024;

/// Longest `X-Change-Reason`, in characters.
pub const MAX_REASON_LEN: usize = 500;

/// A JSON body. Rejections: 415 without a JSON `Content-Type`, 413 above [`BODY_LIMIT`], 400
/// for malformed JSON, 422 naming the field for a value of the wrong type or an unknown field.
/// `LIMIT` is the limit the route's `DefaultBodyLimit` enforces, named in the 413.
#[derive(Debug)]
pub struct AppJson<T, const LIMIT: usize = BODY_LIMIT>(pub T);

impl<S, T, const LIMIT: usize> FromRequest<S> for AppJson<T, LIMIT>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = read_body(req, state, LIMIT).await?;
        parse_json(&bytes).map(Self)
    }
}

/// Like [`AppJson`], but an empty body (with or without `Content-Type`) is `T::default()`.
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = has_json_content_type(req.headers());
        let bytes = read_body(req, state, BODY_LIMIT).await?;
        if bytes.is_empty() {
            return Ok(Self(T::default()));
        }
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
        parse_json(&bytes).map(Self)
    }
}

fn has_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The body (at most the route's `DefaultBodyLimit`, `limit`).
///
/// # Errors
/// 413 above the limit; 400 when the body cannot be read.
pub async fn read_body<S: Send + Sync>(
    req: Request,
    state: &S,
    limit: usize,
) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(limit)
        } else {
            ApiError::MalformedJson("the request body could not be read".to_owned())
        }
    })
}

/// Parses a JSON document, naming the field of a type error.
///
/// # Errors
/// [`ApiError::MalformedJson`] for a syntax error, [`ApiError::Validation`] for a value that
/// does not fit its field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde reads a struct from a JSON array too (by position); bodies are objects only.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{')
        && serde_json::from_slice::<serde_json::Value>(bytes).is_ok()
    {
        return Err(ApiError::invalid_field("body", "must be a JSON object"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let field = field_name(&error.path().to_string());
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => ApiError::Validation(vec![ProblemFieldError {
                field,
                message: without_position(&inner.to_string()),
            }]),
            _ => ApiError::MalformedJson(format!("the request body is not valid JSON: {inner}")),
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::MalformedJson(format!("the request body is not valid JSON: {e}")))?;
    Ok(value)
}

fn field_name(path: &str) -> String {
    if path == "." || path.is_empty() {
        "body".to_owned()
    } else {
        path.to_owned()
    }
}

/// serde_json appends " at line 1 column 42" to data errors; the field name says more.
fn without_position(message: &str) -> String {
    message
        .rfind(" at line ")
        .map_or(message, |i| &message[..i])
        .to_owned()
}

/// A path parameter. A value that cannot be decoded (invalid percent-encoding) names no
/// resource: 404 like any other unknown id.
#[derive(Debug)]
pub struct AppPath<T>(pub T);

impl<S, T> FromRequestParts<S> for AppPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|_| ApiError::RouteNotFound)
    }
}

/// Query parameters. Rejections are 400 `invalid_query`, naming the parameter; a value with
/// U+0000 is refused before it can reach a query (PostgreSQL text cannot hold it).
#[derive(Debug)]
pub struct AppQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for AppQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        if let Some((name, _)) =
            form_urlencoded::parse(query.as_bytes()).find(|(_, value)| value.contains('\0'))
        {
            return Err(ApiError::InvalidQuery(vec![ProblemFieldError {
                field: name.into_owned(),
                message: "must not contain the NUL character (U+0000)".to_owned(),
            }]));
        }
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(Self)
            .map_err(|error| {
                let field = field_name(&error.path().to_string());
                ApiError::InvalidQuery(vec![ProblemFieldError {
                    field,
                    message: error.into_inner().to_string(),
                }])
            })
    }
}

/// Who, which request, why and when: the metadata every command records. The actor is the
/// authenticated principal, never a field of the body.
#[derive(Debug, Clone)]
pub struct RequestContext(pub CommandContext);

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let principal = Principal::of(parts)?;
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let reason = match parts.headers.get("x-change-reason") {
            None => None,
            Some(value) => Some(parse_reason(value.to_str().ok())?),
        };
        Ok(Self(CommandContext {
            actor: principal.name,
            request_id,
            reason,
            at: now(),
        }))
    }
}

/// A reason given in a body field: 1–500 characters without control characters.
///
/// # Errors
/// [`ApiError::Validation`] naming `field`.
pub fn parse_reason_text(value: &str, field: &str) -> Result<String, ApiError> {
    let reason = value.trim();
    if reason.is_empty()
        || reason.chars().count() > MAX_REASON_LEN
        || reason.chars().any(char::is_control)
    {
        return Err(ApiError::invalid_field(
            field,
            format!("must be 1–{MAX_REASON_LEN} characters without control characters"),
        ));
    }
    Ok(reason.to_owned())
}

fn parse_reason(value: Option<&str>) -> Result<String, ApiError> {
    let invalid = |message: &str| {
        ApiError::InvalidHeader("X-Change-Reason", format!("X-Change-Reason {message}"))
    };
    let reason = value
        .ok_or_else(|| invalid("must be visible ASCII text"))?
        .trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_LEN {
        return Err(invalid(&format!("must be 1–{MAX_REASON_LEN} characters")));
    }
    Ok(reason.to_owned())
}

/// Now, at the microsecond precision both databases store, so a time read back equals the
/// time written.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// The version named by `If-Match` (RFC 9110 §13.1.1), if the header is present.
///
/// `*` matches any existing client (no version check). A well-formed entity tag that is not a
/// version of ours can never match: 412. A malformed header: 400.
#[derive(Debug, Clone, Copy)]
pub struct IfMatch(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(Self(None));
        };
        let malformed = || {
            ApiError::InvalidHeader(
                "If-Match",
                "If-Match must be an entity tag such as \"3\" (quotes included) or *".to_owned(),
            )
        };
        let text = value.to_str().map_err(|_| malformed())?.trim();
        if text == "*" {
            return Ok(Self(None));
        }
        let tag = text.strip_prefix("W/").unwrap_or(text);
        let opaque = tag
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .filter(|t| !t.contains('"'))
            .ok_or_else(malformed)?;
        opaque.parse::<u64>().map(|v| Self(Some(v))).map_err(|_| {
            ApiError::PreconditionFailed(format!(
                "If-Match: {text} is not a version of this client"
            ))
        })
    }
}

/// The entity tags of `If-None-Match` (RFC 9110 §13.1.2), as given (empty: none).
#[derive(Debug, Clone, Default)]
pub struct IfNoneMatch(String);

impl IfNoneMatch {
    /// Whether a cached copy at `version` is what the caller has (weak comparison).
    pub fn matches(&self, version: u64) -> bool {
        let tag = etag(version);
        self.0
            .split(',')
            .any(|t| t.trim().trim_start_matches("W/") == tag)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfNoneMatch {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let given = (parts.headers.get(header::IF_NONE_MATCH))
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        Ok(Self(given.to_owned()))
    }
}

/// The `ETag` of a client at `version`.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        enabled: Option<bool>,
        list: Option<Vec<String>>,
    }

    fn error_field(json: &str) -> (u16, String) {
        match parse_json::<Body>(json.as_bytes()) {
            Ok(_) => (200, String::new()),
            Err(error) => {
                let problem = error.problem();
                let field = problem
                    .errors
                    .first()
                    .map(|e| e.field.clone())
                    .unwrap_or_default();
                (problem.status, field)
            }
        }
    }

    #[test]
    fn a_wrong_type_names_its_field() {
        assert_eq!(
            error_field(r#"{"enabled": "yes"}"#),
            (422, "enabled".to_owned())
        );
        assert_eq!(
            error_field(r#"{"list": ["a", 3]}"#),
            (422, "list[1]".to_owned())
        );
    }

    #[test]
    fn malformed_json_is_400() {
        assert_eq!(error_field(r#"{"enabled": tru"#).0, 400);
        assert_eq!(error_field(r#"{} trailing"#).0, 400);
        assert_eq!(error_field("").0, 400);
    }

    #[test]
    fn an_unknown_field_is_named() {
        let (status, field) = error_field(r#"{"redirect_uri": []}"#);
        assert_eq!(status, 422);
        assert_eq!(field, "redirect_uri");
    }
}
