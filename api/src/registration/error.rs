//! How the registration endpoints fail: RFC 7591 §3.2.2 errors (`invalid_redirect_uri`,
//! `invalid_client_metadata`, `invalid_software_statement`) and RFC 6750 §3.1 for a missing or
//! bad token, as JSON `{"error", "error_description"}` — what OAuth clients parse, not
//! problem+json.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;

/// An error of the registration endpoints.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// 400 `invalid_redirect_uri`.
    #[error("{0}")]
    RedirectUri(String),
    /// 400 `invalid_client_metadata`.
    #[error("{0}")]
    Metadata(String),
    /// 400 `invalid_software_statement`.
    #[error("software statements are not accepted by this registry")]
    SoftwareStatement,
    /// 401 `invalid_token`: no, an unknown, an expired, a used-up or a revoked token.
    #[error("a valid initial access token (or registration access token) is required")]
    InvalidToken,
    /// 413: the body is larger than the registration endpoint takes.
    #[error("the client metadata is larger than {0} bytes")]
    TooLarge(usize),
    /// 429: too many registrations from one address, or in all; `Retry-After`.
    #[error("too many registrations; retry after {0} seconds")]
    RateLimited(u64),
    /// Anything else, answered as the rest of the API answers it (503, 500, 409…).
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<sqlx::Error> for RegistrationError {
    fn from(error: sqlx::Error) -> Self {
        Self::Api(error.into())
    }
}

impl From<registry_commands::CommandError> for RegistrationError {
    fn from(error: registry_commands::CommandError) -> Self {
        Self::Api(error.into())
    }
}

/// The body of a registration error.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegistrationErrorBody {
    /// `invalid_redirect_uri`, `invalid_client_metadata`, `invalid_software_statement`,
    /// `invalid_token`, `invalid_request` (too large) or `temporarily_unavailable` (429).
    pub error: String,
    /// What is wrong, naming each field.
    pub error_description: String,
}

impl IntoResponse for RegistrationError {
    fn into_response(self) -> Response {
        let description = self.to_string();
        let (status, code) = match &self {
            Self::RedirectUri(_) => (StatusCode::BAD_REQUEST, "invalid_redirect_uri"),
            Self::Metadata(_) => (StatusCode::BAD_REQUEST, "invalid_client_metadata"),
            Self::SoftwareStatement => (StatusCode::BAD_REQUEST, "invalid_software_statement"),
            Self::InvalidToken => (StatusCode::UNAUTHORIZED, "invalid_token"),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "invalid_request"),
            Self::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "temporarily_unavailable"),
            Self::Api(_) => {
                let Self::Api(error) = self else {
                    return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                };
                return error.into_response();
            }
        };
        let body = RegistrationErrorBody {
            error: code.to_owned(),
            error_description: description,
        };
        let mut response = (status, super::no_store(), axum::Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            Self::InvalidToken => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                );
            }
            Self::RateLimited(seconds) => {
                if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                    headers.insert(header::RETRY_AFTER, value);
                }
            }
            _ => {}
        }
        response
    }
}
