//! The error responses routes share, declared once for the OpenAPI document (each route lists
//! the sets it can answer, then its own responses).

#![allow(dead_code)] // The variants only describe responses; `ApiError` builds them.

use utoipa::IntoResponses;

use crate::error::Problem;

/// Any authenticated route: no or a wrong token.
#[derive(IntoResponses)]
pub enum Unauthenticated {
    /// No or wrong bearer token.
    #[response(
        status = 401,
        description = "No or wrong bearer token",
        content_type = "application/problem+json"
    )]
    Unauthorized(Problem),
}

/// A route that needs a role (its description names it).
#[derive(IntoResponses)]
pub enum Denied {
    /// No or wrong bearer token.
    #[response(
        status = 401,
        description = "No or wrong bearer token",
        content_type = "application/problem+json"
    )]
    Unauthorized(Problem),
    /// The token lacks the role.
    #[response(
        status = 403,
        description = "The token lacks the role this route needs",
        content_type = "application/problem+json"
    )]
    Forbidden(Problem),
}

/// A route of the audit views (`audit:read`).
#[derive(IntoResponses)]
pub enum AuditDenied {
    /// No or wrong bearer token.
    #[response(
        status = 401,
        description = "No or wrong bearer token",
        content_type = "application/problem+json"
    )]
    Unauthorized(Problem),
    /// The token lacks `audit:read`.
    #[response(
        status = 403,
        description = "The token lacks audit:read",
        content_type = "application/problem+json"
    )]
    Forbidden(Problem),
}

/// A route with query parameters.
#[derive(IntoResponses)]
pub enum BadQuery {
    /// A parameter is malformed or unknown (the problem names it).
    #[response(
        status = 400,
        description = "Malformed or unknown query parameter",
        content_type = "application/problem+json"
    )]
    BadRequest(Problem),
}

/// A route that takes a JSON body.
#[derive(IntoResponses)]
pub enum BadBody {
    /// The body is not JSON of the right shape, or a header is malformed.
    #[response(
        status = 400,
        description = "Malformed JSON or header",
        content_type = "application/problem+json"
    )]
    BadRequest(Problem),
    /// The body is too large.
    #[response(
        status = 413,
        description = "Body too large",
        content_type = "application/problem+json"
    )]
    TooLarge(Problem),
    /// The body is not JSON.
    #[response(
        status = 415,
        description = "Body is not JSON",
        content_type = "application/problem+json"
    )]
    NotJson(Problem),
}

/// A write with optimistic concurrency (`If-Match`).
#[derive(IntoResponses)]
pub enum Conflicts {
    /// Another write to the client came first.
    #[response(
        status = 409,
        description = "Changed concurrently",
        content_type = "application/problem+json"
    )]
    Conflict(Problem),
    /// `If-Match` names another version.
    #[response(
        status = 412,
        description = "If-Match does not match",
        content_type = "application/problem+json"
    )]
    PreconditionFailed(Problem),
}

/// A route that takes a turn at the export gate.
#[derive(IntoResponses)]
pub enum ExportsBusy {
    /// Every export place is taken and the queue is full.
    #[response(
        status = 503,
        description = "Too many exports running and queued (Retry-After)",
        content_type = "application/problem+json"
    )]
    Busy(Problem),
}
