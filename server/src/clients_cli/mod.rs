//! `client-registry clients export|plan|apply`: clients as code from a shell or a pipeline,
//! against a running registry (`--url`, `--token`).
//!
//! `plan` prints the plan as a readable diff (colour on a terminal, plain otherwise, JSON with
//! `--output json`) and exits 0 when nothing would change, 2 when changes are pending (as
//! `terraform plan -detailed-exitcode`), 1 on error. `apply` plans (or takes a plan saved with
//! `plan --save`), shows it, applies it with the secrets named by `client_secret_env` read
//! from this environment, and exits 0 only when every step ran.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;

use registry_commands::documents::{self, DocumentFormat};
use registry_commands::documents::{ApplyResult, Plan, StepAction};
use registry_commands::import;

mod render;

pub use render::render_plan;
use render::Paint;

/// Where the registry is, and the token to call it with.
#[derive(Debug, Clone, Args)]
pub struct Remote {
    /// The registry's base URL.
    #[arg(long, env = "REGISTRY_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A bearer token (an API key with clients:read, and clients:write to apply).
    #[arg(long, env = "REGISTRY_TOKEN", hide_env_values = true)]
    token: String,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A readable diff (coloured on a terminal).
    Text,
    /// The plan or result as JSON, for CI.
    Json,
}

/// A document on disk.
#[derive(Debug, Clone, Args)]
pub struct DocumentArgs {
    /// The clients document (YAML or JSON; `-` for standard input).
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
    /// Replace `${NAME}` in the document's values with this environment's variables (off by
    /// default: a document is taken literally).
    #[arg(long)]
    env: bool,
    /// Which variables `--env` may read.
    #[command(flatten)]
    allowed: EnvAllowed,
    /// Also delete the clients the document does not name (never its unmanaged ones).
    #[arg(long)]
    prune: bool,
}

/// The variables `--env` may substitute: those with the prefix, and those named. Any other is
/// refused by name: a document (someone else's change in review) must not be able to copy
/// `REGISTRY_TOKEN` or another secret of the pipeline into a client's fields, and so into the
/// registry and its history.
#[derive(Debug, Clone, Args)]
pub struct EnvAllowed {
    /// Variables with this prefix may be substituted.
    #[arg(long = "env-prefix", default_value = "CLIENTS_")]
    prefix: String,
    /// Other variables that may be substituted (repeat, or separate with commas).
    #[arg(long = "env-allow", value_delimiter = ',')]
    names: Vec<String>,
}

impl EnvAllowed {
    fn allows(&self, name: &str) -> bool {
        (!self.prefix.is_empty() && name.starts_with(&self.prefix))
            || self.names.iter().any(|n| n == name)
    }
}

/// The `clients` subcommands.
#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Write the registry's clients as a document (that applies back to the same state).
    Export {
        /// The registry to call.
        #[command(flatten)]
        remote: Remote,
        /// yaml or json.
        #[arg(long, default_value = "yaml")]
        format: String,
        /// Only clients whose id or name contains this.
        #[arg(long)]
        search: Option<String>,
        /// Write to this file instead of standard output.
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
    /// Show what applying a document would change; exit 0 (nothing), 2 (changes) or 1.
    Plan {
        /// The registry to call.
        #[command(flatten)]
        remote: Remote,
        /// The document.
        #[command(flatten)]
        document: DocumentArgs,
        /// text or json.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
        /// Save the signed plan here, for `apply --plan`.
        #[arg(long)]
        save: Option<PathBuf>,
    },
    /// Convert a Keycloak realm export or a Duende `Clients` configuration into a document
    /// (standard output); what could not be mapped, and why, goes to standard error.
    Convert {
        /// What the file is.
        #[arg(long, value_enum)]
        from: SourceArg,
        /// The file (`realm.json`, `appsettings.json`; `-` for standard input).
        file: PathBuf,
        /// yaml or json.
        #[arg(long, default_value = "yaml")]
        format: String,
        /// Keep Keycloak's built-in clients (account, admin-cli, broker, …).
        #[arg(long)]
        include_builtin: bool,
    },
    /// Apply a document (planned now) or a saved plan; exit 0 only when every step ran.
    Apply {
        /// The registry to call.
        #[command(flatten)]
        remote: Remote,
        /// The clients document to plan and apply.
        #[arg(short = 'f', long = "file", conflicts_with = "plan")]
        file: Option<PathBuf>,
        /// A plan saved by `plan --save` (what was reviewed is what runs).
        #[arg(long)]
        plan: Option<PathBuf>,
        /// Replace `${NAME}` in the document's values with this environment's variables.
        #[arg(long, conflicts_with = "plan")]
        env: bool,
        /// Which variables `--env` may read.
        #[command(flatten)]
        allowed: EnvAllowed,
        /// Also delete the clients the document does not name (never its unmanaged ones).
        #[arg(long, conflicts_with = "plan")]
        prune: bool,
        /// Why (e.g. the git commit): recorded with every change.
        #[arg(long)]
        reason: Option<String>,
        /// text or json.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
}

fn http() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(600))
        .build()?)
}

fn endpoint(remote: &Remote, path: &str) -> String {
    format!("{}{path}", remote.url.trim_end_matches('/'))
}

/// What `clients convert --from` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceArg {
    /// A Keycloak realm export (`realm.json`).
    Keycloak,
    /// A Duende IdentityServer `Clients` section (appsettings JSON).
    Duende,
}

impl SourceArg {
    fn source(self) -> import::Source {
        match self {
            Self::Keycloak => import::Source::Keycloak,
            Self::Duende => import::Source::Duende,
        }
    }
}

/// The body of a response, or an error naming what the registry said (a problem's detail and
/// every field error).
async fn answer(response: reqwest::Response) -> anyhow::Result<String> {
    let status = response.status();
    let text = response.text().await?;
    if status.is_success() {
        return Ok(text);
    }
    let mut message = format!("the registry answered {status}");
    if let Ok(problem) = serde_json::from_str::<Value>(&text) {
        if let Some(detail) = problem["detail"].as_str() {
            message.push_str(&format!(": {detail}"));
        }
        for error in problem["errors"].as_array().into_iter().flatten() {
            message.push_str(&format!(
                "\n  {}: {}",
                error["field"].as_str().unwrap_or_default(),
                error["message"].as_str().unwrap_or_default()
            ));
        }
    }
    anyhow::bail!(message)
}

/// What substituting a document's variables found wrong.
#[derive(Default)]
struct Unresolved {
    /// Allowed, but not set here.
    missing: Vec<String>,
    /// Set or not, not allowed to be read.
    refused: Vec<String>,
}

/// Replaces `${NAME}` in every string of `value` from the environment, for the names
/// `allowed` allows.
fn substitute(value: &mut Value, allowed: &EnvAllowed, unresolved: &mut Unresolved) {
    match value {
        Value::String(text) => {
            let mut out = String::with_capacity(text.len());
            let mut rest = text.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let after = &rest[start + 2..];
                let Some(end) = after.find('}') else {
                    out.push_str(&rest[start..]);
                    rest = "";
                    break;
                };
                let name = &after[..end];
                let found = if allowed.allows(name) {
                    std::env::var(name).map_err(|_| &mut unresolved.missing)
                } else {
                    Err(&mut unresolved.refused)
                };
                match found {
                    Ok(found) => out.push_str(&found),
                    Err(list) => {
                        if !list.iter().any(|n| n == name) {
                            list.push(name.to_owned());
                        }
                        out.push_str(&rest[start..start + 3 + end]);
                    }
                }
                rest = &after[end + 1..];
            }
            out.push_str(rest);
            *text = out;
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| substitute(v, allowed, unresolved)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|v| substitute(v, allowed, unresolved)),
        _ => {}
    }
}

fn document_format(name: &str) -> anyhow::Result<DocumentFormat> {
    match name {
        "yaml" => Ok(DocumentFormat::Yaml),
        "json" => Ok(DocumentFormat::Json),
        other => anyhow::bail!("--format is yaml or json, not {other}"),
    }
}

/// A file's text (`-`: standard input).
fn read(file: &PathBuf) -> anyhow::Result<String> {
    if file.as_os_str() == "-" {
        Ok(std::io::read_to_string(std::io::stdin())?)
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
    }
}

/// The document to send: read, substituted when asked, as JSON.
fn load(file: &PathBuf, env: Option<&EnvAllowed>) -> anyhow::Result<String> {
    let text = read(file)?;
    // Within the same limits as the registry reads it with: a file of aliases must not take
    // this machine's memory either (JSON is YAML, so one reader serves both).
    let mut value = documents::read_value(
        text.as_bytes(),
        DocumentFormat::Yaml,
        &std::sync::atomic::AtomicBool::new(false),
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    if let Some(allowed) = env {
        let mut unresolved = Unresolved::default();
        substitute(&mut value, allowed, &mut unresolved);
        anyhow::ensure!(
            unresolved.refused.is_empty(),
            "{} may not be substituted: --env reads only variables starting with {} and those \
             named by --env-allow",
            unresolved.refused.join(", "),
            if allowed.prefix.is_empty() {
                "(no prefix)"
            } else {
                &allowed.prefix
            }
        );
        anyhow::ensure!(
            unresolved.missing.is_empty(),
            "not set in this environment: {}",
            unresolved.missing.join(", ")
        );
    } else if text.contains("${") {
        // `https://${HOST}/cb` is a valid URL: taken literally it would be registered as is.
        anyhow::bail!(
            "{} contains ${{…}}: pass --env to replace it with this environment's variables",
            file.display()
        );
    }
    Ok(serde_json::to_string(&value)?)
}

async fn make_plan(remote: &Remote, document: String, prune: bool) -> anyhow::Result<Plan> {
    let response = http()?
        .post(endpoint(remote, "/api/v1/clients/plan"))
        .query(&[("prune", prune)])
        .bearer_auth(&remote.token)
        .header("content-type", "application/json")
        .body(document)
        .send()
        .await
        .with_context(|| format!("calling {}", remote.url))?;
    Ok(serde_json::from_str(&answer(response).await?)?)
}

/// The secrets the plan's creations name, read from this environment.
fn secrets_of(plan: &Plan) -> anyhow::Result<BTreeMap<String, String>> {
    let mut secrets = BTreeMap::new();
    let mut missing = Vec::new();
    for step in plan.steps.iter().filter(|s| s.action == StepAction::Create) {
        if let Some(name) = step
            .desired
            .as_ref()
            .and_then(|d| d.client_secret_env.as_ref())
        {
            match std::env::var(name) {
                Ok(secret) => {
                    secrets.insert(step.client_id.clone(), secret);
                }
                Err(_) => missing.push(format!("{name} (for {})", step.client_id)),
            }
        }
    }
    anyhow::ensure!(
        missing.is_empty(),
        "secrets not set in this environment: {}",
        missing.join(", ")
    );
    Ok(secrets)
}

/// Runs a `clients` subcommand.
///
/// # Errors
/// Reading the document, reaching the registry, or what it refused.
pub async fn run(command: ClientsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ClientsCommand::Convert {
            from,
            file,
            format,
            include_builtin,
        } => {
            let format = document_format(&format)?;
            let text = read(&file)?;
            let conversion =
                import::convert(from.source(), &text, import::Options { include_builtin })
                    .with_context(|| format!("reading {}", file.display()))?;
            print!("{}", documents::render(&conversion.document, format)?);
            eprint!("{}", conversion.report());
            Ok(ExitCode::SUCCESS)
        }
        ClientsCommand::Export {
            remote,
            format,
            search,
            output,
        } => export(&remote, &format, search.as_deref(), output.as_ref()).await,
        ClientsCommand::Plan {
            remote,
            document,
            output,
            save,
        } => plan(&remote, &document, output, save.as_ref()).await,
        ClientsCommand::Apply {
            remote,
            file,
            plan,
            env,
            allowed,
            prune,
            reason,
            output,
        } => {
            let plan = plan_to_apply(&remote, file, plan, env.then_some(&allowed), prune).await?;
            apply(&remote, &plan, reason, output).await
        }
    }
}

/// `clients export`: the registry's clients as a document, checked before it is written.
async fn export(
    remote: &Remote,
    format: &str,
    search: Option<&str>,
    output: Option<&PathBuf>,
) -> anyhow::Result<ExitCode> {
    let format = document_format(format)?;
    let path = match format {
        DocumentFormat::Yaml => "/api/v1/clients/export.yaml",
        DocumentFormat::Json => "/api/v1/clients/export.json",
    };
    let mut request = http()?
        .get(endpoint(remote, path))
        .bearer_auth(&remote.token);
    if let Some(search) = search {
        request = request.query(&[("search", search)]);
    }
    let text = answer(request.send().await?).await?;
    // Checked before it is written: what the registry gave is a document.
    documents::parse(text.as_bytes(), format).map_err(|e| anyhow::anyhow!("{e}"))?;
    match output {
        Some(file) => {
            std::fs::write(file, text).with_context(|| format!("writing {}", file.display()))?;
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `clients plan`: exit 0 when nothing would change, 2 when changes are pending.
async fn plan(
    remote: &Remote,
    document: &DocumentArgs,
    output: Output,
    save: Option<&PathBuf>,
) -> anyhow::Result<ExitCode> {
    let body = load(&document.file, document.env.then_some(&document.allowed))?;
    let plan = make_plan(remote, body, document.prune).await?;
    if let Some(file) = save {
        std::fs::write(file, serde_json::to_string_pretty(&plan)?)
            .with_context(|| format!("writing {}", file.display()))?;
    }
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
        Output::Text => print!("{}", render_plan(&plan, Paint::stdout().0)),
    }
    Ok(if plan.has_changes {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// The plan `clients apply` runs: made now from a document, or one saved by `plan --save`.
async fn plan_to_apply(
    remote: &Remote,
    file: Option<PathBuf>,
    saved: Option<PathBuf>,
    env: Option<&EnvAllowed>,
    prune: bool,
) -> anyhow::Result<Plan> {
    match (file, saved) {
        (Some(file), None) => make_plan(remote, load(&file, env)?, prune).await,
        (None, Some(saved)) => serde_json::from_str(
            &std::fs::read_to_string(&saved)
                .with_context(|| format!("reading {}", saved.display()))?,
        )
        .with_context(|| format!("{} is not a saved plan", saved.display())),
        _ => anyhow::bail!("give a document (-f) or a saved plan (--plan)"),
    }
}

/// `clients apply`: shows the plan, runs it with the secrets `client_secret_env` names, and
/// exits 0 only when every step ran.
async fn apply(
    remote: &Remote,
    plan: &Plan,
    reason: Option<String>,
    output: Output,
) -> anyhow::Result<ExitCode> {
    if output == Output::Text {
        print!("{}", render_plan(plan, Paint::stdout().0));
    }
    if !plan.has_changes {
        if output == Output::Json {
            println!(
                "{}",
                serde_json::json!({"complete": true, "applied": [], "conflicts": [], "failed": [], "secrets": []})
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let secrets = secrets_of(plan)?;
    let response = http()?
        .post(endpoint(remote, "/api/v1/clients/apply"))
        .bearer_auth(&remote.token)
        .json(&serde_json::json!({ "plan": plan, "reason": reason, "secrets": secrets }))
        .send()
        .await
        .with_context(|| format!("calling {}", remote.url))?;
    let result: ApplyResult = serde_json::from_str(&answer(response).await?)?;
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&result)?),
        Output::Text => print!("{}", render::render_result(&result, &Paint::stdout())),
    }
    Ok(if result.complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution_reads_the_environment_and_names_what_is_missing() {
        std::env::set_var("REGISTRY_TEST_SUBST_HOST", "studio.example.com");
        let mut value = serde_json::json!({"clients": [{"client_uri": "https://${REGISTRY_TEST_SUBST_HOST}/", "client_name": "${REGISTRY_TEST_SUBST_NOPE} and $HOME"}]});
        let allowed = EnvAllowed {
            prefix: "REGISTRY_TEST_SUBST_".to_owned(),
            names: Vec::new(),
        };
        let mut unresolved = Unresolved::default();
        substitute(&mut value, &allowed, &mut unresolved);
        assert_eq!(
            value["clients"][0]["client_uri"],
            "https://studio.example.com/"
        );
        assert_eq!(unresolved.missing, ["REGISTRY_TEST_SUBST_NOPE"]);
        assert!(unresolved.refused.is_empty());
        assert_eq!(
            value["clients"][0]["client_name"],
            "${REGISTRY_TEST_SUBST_NOPE} and $HOME"
        );
    }
}
