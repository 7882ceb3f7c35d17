//! Every failure of the API as an RFC 9457 problem document (`application/problem+json`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use registry_commands::CommandError;
use registry_domain::client::{FieldError, ValidationErrors};
use registry_domain::ClientError;
use registry_projections::ReadError;
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of problem documents (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem document (RFC 9457). `code` is stable: clients branch on it, not on `title`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `urn:client-registry:problem:<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short, human-readable summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence.
    pub detail: String,
    /// Stable machine-readable code, e.g. `validation_failed`.
    pub code: String,
    /// For validation problems: every offending field with its message.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemFieldError>,
}

/// One offending field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProblemFieldError {
    /// The field, with an index for list entries: `redirect_uris[1]`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl From<&FieldError> for ProblemFieldError {
    fn from(error: &FieldError) -> Self {
        Self {
            field: error.field.clone(),
            message: error.message.clone(),
        }
    }
}

/// Every way a request can fail. Each variant maps to one status and one stable code; the
/// messages are safe to show (a 5xx says nothing of its cause: the log has it, keyed by the
/// request id the response carries in `x-request-id`).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 422 `validation_failed`: fields break the rules; all are listed.
    #[error("the request has invalid fields")]
    Validation(Vec<ProblemFieldError>),
    /// 400: the JSON body is not JSON (`malformed_json`).
    #[error("{0}")]
    MalformedJson(String),
    /// 400: a query parameter is malformed or unknown (`invalid_query`).
    #[error("invalid query parameters")]
    InvalidQuery(Vec<ProblemFieldError>),
    /// 400: a header is malformed (`invalid_header`).
    #[error("{1}")]
    InvalidHeader(&'static str, String),
    /// 401: no or wrong bearer token.
    #[error("a valid bearer token is required")]
    Unauthorized {
        /// Whether a token was presented (RFC 6750 §3: then `error="invalid_token"`).
        token_presented: bool,
    },
    /// 403 `forbidden`: authenticated, without the role the route needs.
    #[error("this requires the role {0}")]
    Forbidden(crate::auth::Role),
    /// 503 `timeout`: the request took longer than the configured limit.
    #[error("the request took longer than {0} seconds")]
    Timeout(u64),
    /// 404 `client_not_found`.
    #[error("no client with this client_id")]
    ClientNotFound,
    /// 404 `client_not_found`: a client ID metadata document URL the registry does not
    /// resolve (not allowed, blocked, or its document refused), and why.
    #[error("{0}")]
    DocumentRefused(String),
    /// 410 `client_deleted`: the client was deleted at the time asked for.
    #[error("{0}")]
    ClientDeleted(String),
    /// 404 `not_found`: no such route.
    #[error("no such resource")]
    RouteNotFound,
    /// 404 `not_sealed`: the sealed log has no such leaf or tree head (yet).
    #[error("{0}")]
    NotSealed(String),
    /// 405 `method_not_allowed`.
    #[error("method not allowed on this resource")]
    MethodNotAllowed,
    /// 409 `client_exists`.
    #[error("a client with this client_id already exists")]
    ClientExists,
    /// 409 `concurrent_modification`: another write to the client committed first.
    #[error("the client was changed concurrently; reload it and retry")]
    ConcurrentModification,
    /// 412 `precondition_failed`: `If-Match` does not name the current version.
    #[error("{0}")]
    PreconditionFailed(String),
    /// 413 `payload_too_large`.
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// 415 `unsupported_media_type`.
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// 503 `not_ready`: a background task of this process is down or stuck (readiness).
    #[error("not ready: {0}")]
    NotReady(String),
    /// 503 `overloaded`: every hashing thread is busy and its queue is full; `Retry-After`.
    #[error("the service is busy; retry in a moment")]
    Overloaded,
    /// 503 `unavailable`: the database cannot be reached.
    #[error("the service is temporarily unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// 500 `internal_error`.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// One invalid field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![ProblemFieldError {
            field: field.to_owned(),
            message: message.into(),
        }])
    }

    /// Invalid query parameters.
    pub fn invalid_query(errors: ValidationErrors) -> Self {
        Self::InvalidQuery(
            errors
                .errors()
                .iter()
                .map(ProblemFieldError::from)
                .collect(),
        )
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        self.request_parts().unwrap_or_else(|| self.outcome_parts())
    }

    /// What is wrong with the request itself (its shape, its credentials, its route).
    fn request_parts(&self) -> Option<(StatusCode, &'static str, &'static str)> {
        Some(match self {
            Self::Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "Invalid client",
            ),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            Self::MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed_json", "Malformed JSON"),
            Self::InvalidQuery(_) => (
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "Invalid query parameters",
            ),
            Self::InvalidHeader(..) => {
                (StatusCode::BAD_REQUEST, "invalid_header", "Invalid header")
            }
            Self::Unauthorized { .. } => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Authentication required",
            ),
            Self::RouteNotFound => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
            ),
            Self::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
            ),
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
            ),
            _ => return None,
        })
    }

    /// What the request met: the client's state, a conflict, the service's state.
    fn outcome_parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::Timeout(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "Request timed out",
            ),
            Self::ClientNotFound | Self::DocumentRefused(_) => (
                StatusCode::NOT_FOUND,
                "client_not_found",
                "Client not found",
            ),
            Self::ClientDeleted(_) => (StatusCode::GONE, "client_deleted", "Client deleted"),
            Self::NotSealed(_) => (StatusCode::NOT_FOUND, "not_sealed", "Not sealed"),
            Self::ClientExists => (
                StatusCode::CONFLICT,
                "client_exists",
                "Client already exists",
            ),
            Self::ConcurrentModification => (
                StatusCode::CONFLICT,
                "concurrent_modification",
                "Concurrent modification",
            ),
            Self::PreconditionFailed(_) => (
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                "Precondition failed",
            ),
            Self::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            Self::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_ready", "Not ready"),
            Self::Overloaded => (
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "Service overloaded",
            ),
            // `Internal`, and the request errors `request_parts` answers first.
            _ => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "Internal error",
            ),
        }
    }

    /// The problem document of this error.
    pub fn problem(&self) -> Problem {
        let (status, code, title) = self.parts();
        let errors = match self {
            Self::Validation(errors) | Self::InvalidQuery(errors) => errors.clone(),
            _ => Vec::new(),
        };
        let detail = match self {
            Self::Internal(_) | Self::Unavailable(_) => {
                format!("{self}; quote the x-request-id response header when reporting it")
            }
            _ if errors.len() == 1 => format!("{}: {}", errors[0].field, errors[0].message),
            _ => self.to_string(),
        };
        Problem {
            problem_type: format!("urn:client-registry:problem:{code}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            code: code.to_owned(),
            errors,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(cause) | Self::Unavailable(cause) => {
                // The request span carries the request id, so this line is found by it.
                tracing::error!(error = format!("{cause:#}"), "request failed");
            }
            _ => {}
        }
        let problem = self.problem();
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if matches!(self, Self::Overloaded) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Self::Unavailable(cause) = &self {
            // For the metrics: this request waited for a connection until the pool gave up.
            let pool_timed_out = cause.chain().any(|c| {
                matches!(
                    c.downcast_ref::<sqlx::Error>(),
                    Some(sqlx::Error::PoolTimedOut)
                )
            });
            if pool_timed_out {
                response.extensions_mut().insert(PoolTimedOut);
            }
        }
        if let Self::Unauthorized { token_presented } = self {
            let challenge = if token_presented {
                r#"Bearer realm="client-registry", error="invalid_token""#
            } else {
                r#"Bearer realm="client-registry""#
            };
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        Self::Validation(
            errors
                .errors()
                .iter()
                .map(ProblemFieldError::from)
                .collect(),
        )
    }
}

impl From<ClientError> for ApiError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Invalid(errors) => errors.into(),
            ClientError::NotFound => Self::ClientNotFound,
            ClientError::AlreadyExists => Self::ClientExists,
            mismatch @ ClientError::VersionMismatch { .. } => {
                Self::PreconditionFailed(format!("If-Match: {mismatch}"))
            }
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::Rejected(e) => e.into(),
            CommandError::Conflict => Self::ConcurrentModification,
            CommandError::Busy => Self::Overloaded,
            // Nobody reads this answer; were someone to, the write did not happen.
            CommandError::Abandoned => Self::Overloaded,
            CommandError::Infrastructure(e) => infrastructure(e),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        infrastructure(anyhow::Error::new(error))
    }
}

impl From<ReadError> for ApiError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Database(e) => infrastructure(anyhow::Error::new(e)),
            other => Self::Internal(anyhow::Error::new(other)),
        }
    }
}

/// Marks a response whose request gave up waiting for a database connection.
#[derive(Debug, Clone, Copy)]
pub struct PoolTimedOut;

/// A database that cannot be reached or is failing over is a 503, so callers and load
/// balancers retry; anything else is a 500.
fn infrastructure(error: anyhow::Error) -> ApiError {
    let unreachable = error.chain().any(|cause| {
        cause
            .downcast_ref::<sqlx::Error>()
            .is_some_and(is_transient)
    });
    if unreachable {
        ApiError::Unavailable(error)
    } else {
        ApiError::Internal(error)
    }
}

/// Whether a database error says "not now" rather than "wrong": the connection was refused
/// or lost, the pool is exhausted or closed, the server is shutting down or restarting
/// (PostgreSQL class 08 connection exceptions, 57P01–57P03, 53300 too many connections), the
/// database was taken offline (55000: "not currently accepting connections", as `ALTER
/// DATABASE … ALLOW_CONNECTIONS false` does for maintenance), the server is a read-only
/// standby for a moment after a failover (25006), a session was ended for idling (25P03,
/// 57P05), a lock or statement wait ran out (55P03, 57014), a retryable conflict (40001
/// serialization failure, 40P01 deadlock), a connection dropped mid-message (a protocol
/// error), or SQLite stayed busy (5, 6 and their extended codes).
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database) => {
            let sqlite = database
                .try_downcast_ref::<sqlx::sqlite::SqliteError>()
                .is_some();
            database.code().is_some_and(|code| {
                let code = code.as_ref();
                if sqlite {
                    sqlite_busy(code)
                } else {
                    code.starts_with("08")
                        || matches!(
                            code,
                            "57P01"
                                | "57P02"
                                | "57P03"
                                | "57P05"
                                | "53300"
                                | "55000"
                                | "55P03"
                                | "57014"
                                | "25006"
                                | "25P03"
                                | "40001"
                                | "40P01"
                        )
                }
            })
        }
        _ => false,
    }
}

/// SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes (`code | n << 8`).
fn sqlite_busy(code: &str) -> bool {
    code.parse::<i32>()
        .is_ok_and(|code| matches!(code & 0xff, 5 | 6))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn render(error: ApiError) -> (StatusCode, Option<String>, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, content_type, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn validation_errors_become_422_with_every_field() {
        let mut errors = ValidationErrors::default();
        errors.add("client_id", "is required");
        errors.add("redirect_uris[0]", "must not contain a fragment (#…)");
        let (status, content_type, body) = render(ClientError::Invalid(errors).into()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(content_type.as_deref(), Some(PROBLEM_JSON));
        assert_eq!(body["code"], "validation_failed");
        assert_eq!(
            body["type"],
            "urn:client-registry:problem:validation_failed"
        );
        assert_eq!(body["status"], 422);
        assert_eq!(body["errors"][1]["field"], "redirect_uris[0]");
    }

    #[tokio::test]
    async fn domain_errors_map_to_their_statuses() {
        let cases = [
            (
                ClientError::NotFound,
                StatusCode::NOT_FOUND,
                "client_not_found",
            ),
            (
                ClientError::AlreadyExists,
                StatusCode::CONFLICT,
                "client_exists",
            ),
            (
                ClientError::VersionMismatch {
                    expected: 1,
                    actual: 2,
                },
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
            ),
        ];
        for (error, status, code) in cases {
            let (got, _, body) = render(error.into()).await;
            assert_eq!((got, body["code"].as_str()), (status, Some(code)));
        }
    }

    #[tokio::test]
    async fn a_concurrent_write_is_409() {
        let (status, _, body) = render(CommandError::Conflict.into()).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["code"], "concurrent_modification");
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause() {
        let error = CommandError::Infrastructure(anyhow::anyhow!("password=hunter2 at db:5432"));
        let (status, _, body) = render(error.into()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("hunter2"));
        assert!(body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("x-request-id"));
    }

    #[tokio::test]
    async fn an_unreachable_database_is_503() {
        let error = CommandError::Infrastructure(anyhow::Error::new(sqlx::Error::PoolTimedOut));
        let (status, _, body) = render(error.into()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["code"], "unavailable");
    }

    #[tokio::test]
    async fn unauthorized_carries_a_bearer_challenge() {
        let response = ApiError::Unauthorized {
            token_presented: true,
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenge = response.headers().get(header::WWW_AUTHENTICATE);
        assert_eq!(
            challenge.and_then(|v| v.to_str().ok()),
            Some(r#"Bearer realm="client-registry", error="invalid_token""#)
        );
    }

    #[tokio::test]
    async fn request_shape_errors_have_their_codes() {
        let cases = [
            (ApiError::MalformedJson("x".into()), 400, "malformed_json"),
            (ApiError::PayloadTooLarge(10), 413, "payload_too_large"),
            (
                ApiError::UnsupportedMediaType,
                415,
                "unsupported_media_type",
            ),
            (
                ApiError::InvalidHeader("If-Match", "x".into()),
                400,
                "invalid_header",
            ),
            (ApiError::RouteNotFound, 404, "not_found"),
            (ApiError::MethodNotAllowed, 405, "method_not_allowed"),
            (ApiError::ClientDeleted("x".into()), 410, "client_deleted"),
            (
                ApiError::Forbidden(crate::auth::Role::AuditRead),
                403,
                "forbidden",
            ),
            (ApiError::Timeout(60), 503, "timeout"),
        ];
        for (error, status, code) in cases {
            let (got, _, body) = render(error).await;
            assert_eq!((got.as_u16(), body["code"].as_str()), (status, Some(code)));
        }
    }
}
