//! The error responses routes share, declared once for the OpenAPI document (each route lists
//! the sets it can answer, then its own responses). Every one is a problem+json body.

use std::collections::BTreeMap;

use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::IntoResponses;

/// The responses of one set: each status with its description, a [`crate::error::Problem`]
/// body.
fn problems(statuses: &[(u16, &str)]) -> BTreeMap<String, RefOr<Response>> {
    statuses
        .iter()
        .map(|(status, description)| {
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build();
            let response = ResponseBuilder::new()
                .description(*description)
                .content("application/problem+json", content)
                .build();
            (status.to_string(), RefOr::T(response))
        })
        .collect()
}

const UNAUTHORIZED: (u16, &str) = (401, "No or wrong bearer token");

/// Declares a set of problem responses.
macro_rules! problem_set {
    ($(#[$doc:meta])* $name:ident: $($status:expr),+) => {
        $(#[$doc])*
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                problems(&[$($status),+])
            }
        }
    };
}

problem_set!(
    /// Any authenticated route: no or a wrong token.
    Unauthenticated: UNAUTHORIZED
);
problem_set!(
    /// A route that needs a role (its description names it).
    Denied: UNAUTHORIZED, (403, "The token lacks the role this route needs")
);
problem_set!(
    /// A route of the audit views (`audit:read`).
    AuditDenied: UNAUTHORIZED, (403, "The token lacks audit:read")
);
problem_set!(
    /// A route with query parameters; the problem names the parameter.
    BadQuery: (400, "Malformed or unknown query parameter")
);
problem_set!(
    /// A route that takes a JSON body.
    BadBody: (400, "Malformed JSON or header"), (413, "Body too large"), (415, "Body is not JSON")
);
problem_set!(
    /// A write with optimistic concurrency (`If-Match`).
    Conflicts: (409, "Changed concurrently"), (412, "If-Match does not match")
);
problem_set!(
    /// A route that takes a turn at the export gate.
    ExportsBusy: (503, "Too many exports running and queued (Retry-After)")
);
