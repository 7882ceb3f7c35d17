//! The error responses and the parameters routes share, declared once for the OpenAPI
//! document (each route lists the sets it takes or answers, then its own). Every error
//! response is a problem+json body.

use std::collections::BTreeMap;

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required, Response, ResponseBuilder};
use utoipa::{IntoParams, IntoResponses};

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

type Status = (u16, &'static str);

const UNAUTHORIZED: Status = (401, "No or wrong bearer token");
const FORBIDDEN: Status = (403, "The token lacks the role this route needs");
const BAD_QUERY: Status = (400, "Malformed or unknown query parameter");
const BAD_BODY: [Status; 3] = [
    (400, "Malformed JSON or header"),
    (413, "Body too large"),
    (415, "Body is not JSON"),
];
const CONFLICTS: [Status; 2] = [
    (409, "Changed concurrently"),
    (412, "If-Match does not match"),
];
const BUSY: Status = (503, "Too many exports running and queued (Retry-After)");

/// Declares a set of problem responses.
macro_rules! problem_set {
    ($(#[$doc:meta])* $name:ident: $statuses:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                problems(&$statuses)
            }
        }
    };
}

problem_set!(
    /// Any authenticated route: no or a wrong token.
    Unauthenticated: [UNAUTHORIZED]
);
problem_set!(
    /// A route that needs a role (its description names it).
    Denied: [UNAUTHORIZED, FORBIDDEN]
);
problem_set!(
    /// A route of the audit views (`audit:read`).
    AuditDenied: [UNAUTHORIZED, AUDIT_FORBIDDEN]
);
const AUDIT_FORBIDDEN: Status = (403, "The token lacks audit:read");

problem_set!(
    /// A route of the audit views with query parameters; the problem names the parameter.
    AuditDeniedOrBadQuery: [UNAUTHORIZED, AUDIT_FORBIDDEN, BAD_QUERY]
);
problem_set!(
    /// An export of the audit views: `audit:read` and a turn at the export gate.
    AuditExportRefusals: [UNAUTHORIZED, AUDIT_FORBIDDEN, BUSY]
);
problem_set!(
    /// A route with query parameters that needs a role; the problem names the parameter.
    DeniedOrBadQuery: [UNAUTHORIZED, FORBIDDEN, BAD_QUERY]
);
problem_set!(
    /// A route that takes a JSON body and needs a role.
    DeniedOrBadBody: [UNAUTHORIZED, FORBIDDEN, BAD_BODY[0], BAD_BODY[1], BAD_BODY[2]]
);
problem_set!(
    /// A write to one live client, with optimistic concurrency (`If-Match`) and a JSON body.
    ClientWriteRefusals: [
        UNAUTHORIZED,
        FORBIDDEN,
        BAD_BODY[0],
        BAD_BODY[1],
        BAD_BODY[2],
        CONFLICTS[0],
        CONFLICTS[1],
        (404, "Unknown or deleted"),
    ]
);
problem_set!(
    /// A write to one client without a body (`If-Match`).
    Conflicts: CONFLICTS
);
problem_set!(
    /// An export of the list: a role, a filter, a turn at the export gate.
    ListExportRefusals: [UNAUTHORIZED, FORBIDDEN, BAD_QUERY, BUSY]
);
problem_set!(
    /// The list: a role, its query, and for a set filter the loaded list index and, for
    /// `findings` and `secret_expires_within_days`, a turn at the export gate.
    ListRefusals: [
        UNAUTHORIZED,
        FORBIDDEN,
        BAD_QUERY,
        (503, "The list index still loading (not_ready), or, for findings and secret_expires_within_days, too many exports running and queued (overloaded, Retry-After)"),
    ]
);
problem_set!(
    /// An export of one client's history (deleted clients have one too).
    HistoryExportRefusals: [UNAUTHORIZED, FORBIDDEN, (404, "Never registered"), BUSY]
);
problem_set!(
    /// A route of one client's history (deleted clients have one too).
    NeverRegistered: [(404, "Never registered")]
);

/// One parameter: in the path (required), or an optional header.
fn parameter(name: &str, place: ParameterIn, description: &str) -> Parameter {
    let (required, types) = match place {
        ParameterIn::Path => (Required::True, SchemaType::Type(Type::String)),
        _ => (
            Required::False,
            SchemaType::Array(vec![Type::String, Type::Null]),
        ),
    };
    ParameterBuilder::new()
        .name(name)
        .parameter_in(place)
        .required(required)
        .description(Some(description))
        .schema(Some(ObjectBuilder::new().schema_type(types)))
        .build()
}

/// The client a route is about: `{client_id}` in its path.
pub struct ClientPath;

impl IntoParams for ClientPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![parameter("client_id", ParameterIn::Path, "The client id")]
    }
}

/// Why a write is made: `X-Change-Reason`, recorded with its events.
pub struct ChangeReason;

impl IntoParams for ChangeReason {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let why = "Why (recorded with the event)";
        vec![parameter("X-Change-Reason", ParameterIn::Header, why)]
    }
}

/// A write to one client: its path, `If-Match` and `X-Change-Reason`.
pub struct ClientWrite;

impl IntoParams for ClientWrite {
    fn into_params(place: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let only_if = "Only if the client is at this ETag";
        let mut params = ClientPath::into_params(&place);
        params.push(parameter("If-Match", ParameterIn::Header, only_if));
        params.extend(ChangeReason::into_params(place));
        params
    }
}
