//! Clients as code: the document format (`format`), reading it within bounds with every error
//! at once (`read`), its JSON Schema (`schema`), a signed plan of what applying it would do
//! (`plan`, against the store through the [`CurrentClients`] port) and running that plan
//! (`apply`).

pub mod apply;
mod bounded;
pub mod format;
pub mod plan;
pub mod read;
pub mod schema;

pub use format::{render, ClientsDocument, DocumentClient, DocumentFormat};
pub use plan::{
    make_plan, signing_key, AppliedStep, ApplyRequest, ApplyResult, Current, CurrentClients,
    IssuedSecret, Plan, PlanStep, PlanSummary, PlannedChange, SkippedStep, StepAction,
};
pub use read::{
    expansion_limit, parse, parse_off_runtime, parse_unless, read_value, CheckedDocument,
};
pub use schema::json_schema;
