//! Flows over HTTP: list with version ids, fetch a flow's source, validate a
//! candidate, replace (refused with the validator's `file:line: reason`
//! lines when invalid; the replaced file is kept under `flows/.history/` for
//! rollback), roll back, and a flow's graph (steps and where they lead).
//!
//! A replacement is written to the folder the hot reloader watches, so it
//! takes effect exactly as an edit on disk does: validated again, new calls
//! on the new version, calls in progress on theirs.

use super::api::Body;
use super::auth::Caller;
use super::{ApiError, HttpState};
use crate::flow::validate::Known;
use crate::flow::{FlowSet, Severity};
use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Where flows live and what they may name.
pub struct FlowFiles {
    dir: PathBuf,
    known: Known,
    current: watch::Receiver<Arc<FlowSet>>,
    /// One replacement at a time.
    writing: tokio::sync::Mutex<()>,
}

impl FlowFiles {
    pub fn new(dir: PathBuf, known: Known, current: watch::Receiver<Arc<FlowSet>>) -> FlowFiles {
        FlowFiles {
            dir,
            known,
            current,
            writing: Default::default(),
        }
    }

    fn history(&self) -> PathBuf {
        self.dir.join(".history")
    }
}

pub fn routes() -> OpenApiRouter<HttpState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_flow, replace))
        .routes(routes!(validate))
        .routes(routes!(rollback))
        .routes(routes!(graph))
}

/// A problem of the loader or validator.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ProblemView {
    pub file: String,
    pub line: usize,
    /// `error` or `warning`.
    pub severity: &'static str,
    pub message: String,
    /// As `vaxel check` prints it: `file:line: reason`.
    pub text: String,
}

impl From<&crate::flow::Problem> for ProblemView {
    fn from(p: &crate::flow::Problem) -> ProblemView {
        ProblemView {
            file: p
                .path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            line: p.line,
            severity: match p.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            },
            message: p.message.clone(),
            text: format!(
                "{}:{}: {}",
                p.path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                p.line,
                p.message
            ),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FlowSummary {
    pub name: String,
    pub file: String,
    /// The running version's id (a hash of the file).
    pub version: String,
    pub description: String,
    pub numbers: Vec<String>,
    pub steps: usize,
}

/// The running flows.
#[utoipa::path(get, path = "/api/v1/flows", tag = "flows",
    responses((status = 200, body = Vec<FlowSummary>), (status = 401, body = super::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list(Caller(_role): Caller, State(st): State<HttpState>) -> Json<Vec<FlowSummary>> {
    let set = st.flows.current.borrow().clone();
    Json(
        set.flows
            .values()
            .map(|f| FlowSummary {
                name: f.name.clone(),
                file: f
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                version: f.version.clone(),
                description: f.doc.description.clone(),
                numbers: f.doc.numbers.iter().map(|n| n.get_ref().clone()).collect(),
                steps: f.doc.steps.len(),
            })
            .collect(),
    )
}

fn flow_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad(
            "name",
            "a flow's name: 1–64 of a-z, 0-9, - and _",
        ))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FlowSource {
    pub name: String,
    pub version: String,
    /// The file as it is on disk (TOML).
    pub source: String,
    /// Earlier versions kept for rollback, newest first.
    pub history: Vec<String>,
}

fn history_versions(st: &HttpState, name: &str) -> Vec<String> {
    let mut v: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(st.flows.history())
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            let version = file
                .strip_prefix(&format!("{name}."))?
                .strip_suffix(".toml")?
                .to_string();
            Some((e.metadata().ok()?.modified().ok()?, version))
        })
        .collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.0));
    v.into_iter().map(|(_, s)| s).collect()
}

/// A running flow's source.
#[utoipa::path(get, path = "/api/v1/flows/{name}", tag = "flows",
    params(("name" = String, Path, description = "The flow's name (its file without .toml)")),
    responses((status = 200, body = FlowSource), (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn get_flow(
    Caller(role): Caller,
    State(st): State<HttpState>,
    Path(name): Path<String>,
) -> Result<Json<FlowSource>, ApiError> {
    // Sources may hold webhook addresses and their keys: admins only.
    role.require_admin()?;
    flow_name(&name)?;
    let set = st.flows.current.borrow().clone();
    let f = set
        .get(&name)
        .ok_or_else(|| ApiError::NotFound(format!("flow {name}")))?;
    Ok(Json(FlowSource {
        name: name.clone(),
        version: f.version.clone(),
        source: f.text.clone(),
        history: history_versions(&st, &name),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Candidate {
    /// The flow file's new text (TOML).
    pub source: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Validation {
    pub valid: bool,
    /// Errors and warnings, as `vaxel check` gives them.
    pub problems: Vec<ProblemView>,
}

/// Checks a candidate against the other running flows, the prompts and the
/// configured queues, as the reloader will.
fn check(st: &HttpState, name: &str, source: &str) -> Validation {
    let mut sources: Vec<(PathBuf, String)> = crate::flow::load::flow_files(&st.flows.dir)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| Some((p.clone(), std::fs::read_to_string(&p).ok()?)))
        .collect();
    let path = st.flows.dir.join(format!("{name}.toml"));
    sources.retain(|(p, _)| p != &path);
    sources.push((path, source.to_string()));
    let prompts = st.flows.current.borrow().prompts.clone();
    let (set, problems) = crate::flow::load::load_sources(&sources, prompts, &st.flows.known);
    Validation {
        valid: set.is_some() && !problems.iter().any(|p| p.severity == Severity::Error),
        problems: problems.iter().map(ProblemView::from).collect(),
    }
}

const MAX_SOURCE: usize = 256 * 1024;

fn candidate(c: &Candidate) -> Result<(), ApiError> {
    if c.source.len() > MAX_SOURCE {
        return Err(ApiError::bad("source", "a flow file of at most 256 KiB"));
    }
    Ok(())
}

/// Validates a candidate without saving it.
#[utoipa::path(post, path = "/api/v1/flows/{name}/validate", tag = "flows",
    params(("name" = String, Path)), request_body = Candidate,
    responses((status = 200, body = Validation), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn validate(
    Caller(role): Caller,
    State(st): State<HttpState>,
    Path(name): Path<String>,
    Body(c): Body<Candidate>,
) -> Result<Json<Validation>, ApiError> {
    role.require_admin()?;
    flow_name(&name)?;
    candidate(&c)?;
    Ok(Json(check(&st, &name, &c.source)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Replaced {
    pub name: String,
    /// The version now running.
    pub version: String,
    /// The version replaced (kept for rollback), if the flow existed.
    pub previous: Option<String>,
    pub warnings: Vec<ProblemView>,
}

/// Writes a validated flow file and waits (a few seconds at most) until the
/// reloader runs it.
async fn install(st: &HttpState, name: &str, source: &str) -> Result<Json<Replaced>, ApiError> {
    let _one = st.flows.writing.lock().await;
    let v = check(st, name, source);
    if !v.valid {
        return Err(ApiError::Unprocessable {
            message: format!("flow {name} refused: the running version stays"),
            problems: v.problems,
        });
    }
    let previous = st.flows.current.borrow().get(name).cloned();
    if let Some(p) = &previous {
        if p.text == source {
            return Ok(Json(Replaced {
                name: name.into(),
                version: p.version.clone(),
                previous: Some(p.version.clone()),
                warnings: Vec::new(),
            }));
        }
        let hist = st.flows.history();
        std::fs::create_dir_all(&hist)?;
        std::fs::write(hist.join(format!("{name}.{}.toml", p.version)), &p.text)?;
    }
    let path = st.flows.dir.join(format!("{name}.toml"));
    // Written beside, then renamed over: the reloader never reads half a file.
    let tmp = st.flows.dir.join(format!(".{name}.toml.new"));
    std::fs::write(&tmp, source)?;
    std::fs::rename(&tmp, &path)?;
    tracing::info!(flow = %name, "flow replaced through the API");
    let mut rx = st.flows.current.clone();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let running = rx
            .borrow_and_update()
            .get(name)
            .map(|f| (f.text.clone(), f.version.clone()));
        if let Some((text, version)) = running {
            if text == source {
                return Ok(Json(Replaced {
                    name: name.into(),
                    version,
                    previous: previous.map(|p| p.version.clone()),
                    warnings: v.problems,
                }));
            }
        }
        if tokio::time::timeout_at(deadline, rx.changed())
            .await
            .is_err()
        {
            return Err(
                std::io::Error::other("the flow was written but not reloaded within 5 s").into(),
            );
        }
    }
}

/// Replaces (or adds) a flow: validated first; refused with the problems
/// when invalid, and the running version stays.
#[utoipa::path(put, path = "/api/v1/flows/{name}", tag = "flows",
    params(("name" = String, Path)), request_body = Candidate,
    responses((status = 200, body = Replaced), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
              (status = 403, body = super::error::ErrorBody), (status = 422, description = "Invalid: the validator's problems", body = super::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn replace(
    Caller(role): Caller,
    State(st): State<HttpState>,
    Path(name): Path<String>,
    Body(c): Body<Candidate>,
) -> Result<Json<Replaced>, ApiError> {
    role.require_admin()?;
    flow_name(&name)?;
    candidate(&c)?;
    install(&st, &name, &c.source).await
}

/// Puts back the version a flow had before its last replacement.
#[utoipa::path(post, path = "/api/v1/flows/{name}/rollback", tag = "flows",
    params(("name" = String, Path)),
    responses((status = 200, body = Replaced), (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
              (status = 404, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn rollback(
    Caller(role): Caller,
    State(st): State<HttpState>,
    Path(name): Path<String>,
) -> Result<Json<Replaced>, ApiError> {
    role.require_admin()?;
    flow_name(&name)?;
    let running = st
        .flows
        .current
        .borrow()
        .get(&name)
        .map(|f| f.version.clone());
    let version = history_versions(&st, &name)
        .into_iter()
        .find(|v| Some(v) != running.as_ref())
        .ok_or_else(|| ApiError::NotFound(format!("an earlier version of flow {name}")))?;
    let source =
        std::fs::read_to_string(st.flows.history().join(format!("{name}.{version}.toml")))?;
    install(&st, &name, &source).await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Node {
    pub id: String,
    /// The step's type (`menu`, `queue`, …).
    pub kind: String,
    pub line: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Edge {
    pub from: String,
    pub to: String,
    /// The field or key that leads there (`next`, `1`, `on_fail`, …).
    pub label: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Graph {
    pub name: String,
    pub version: String,
    pub start: String,
    pub human_key: String,
    pub human_queue: String,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

/// A flow as a graph: its steps and where each leads.
#[utoipa::path(get, path = "/api/v1/flows/{name}/graph", tag = "flows",
    params(("name" = String, Path)),
    responses((status = 200, body = Graph), (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn graph(
    Caller(_role): Caller,
    State(st): State<HttpState>,
    Path(name): Path<String>,
) -> Result<Json<Graph>, ApiError> {
    flow_name(&name)?;
    let set = st.flows.current.borrow().clone();
    let f = set
        .get(&name)
        .ok_or_else(|| ApiError::NotFound(format!("flow {name}")))?;
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    for (id, step) in &f.doc.steps {
        let s = step.get_ref();
        nodes.push(Node {
            id: id.clone(),
            kind: s.kind().into(),
            line: f.line(step.span()),
        });
        if let crate::flow::model::Step::Menu { options, .. } = s {
            for (key, to) in options {
                edges.push(Edge {
                    from: id.clone(),
                    to: to.clone(),
                    label: key.clone(),
                });
            }
        }
        for (label, to) in s.successors() {
            if label == "options" {
                continue;
            }
            if let Some(to) = to {
                edges.push(Edge {
                    from: id.clone(),
                    to: to.clone(),
                    label: label.into(),
                });
            }
        }
    }
    let human = f.doc.human.get_ref();
    Ok(Json(Graph {
        name: f.name.clone(),
        version: f.version.clone(),
        start: f.doc.start.get_ref().clone(),
        human_key: human.key.to_string(),
        human_queue: human.queue.clone(),
        nodes,
        edges,
    }))
}
