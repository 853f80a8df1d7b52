//! Loading `flows/`: each `*.toml` file is one flow named after the file. A set
//! loads whole or not at all: any error refuses it (the running version stays,
//! see `runtime::reload`). The only I/O here is reading the given files; the
//! runtime decides when.

use super::model::FlowDoc;
use super::validate::{self, Known};
use super::{Flow, FlowSet, Problem, Severity};
use crate::media::prompt::PromptCache;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Line (1-based) of a byte offset in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len()))
        .map(|b| b.matches('\n').count() + 1)
        .unwrap_or(1)
}

/// Parses one flow file's text. The version is the content hash.
pub fn parse(name: &str, path: &Path, text: &str) -> Result<Flow, Problem> {
    let doc: FlowDoc = toml::from_str(text).map_err(|e| {
        let start = e.span().map(|s| s.start).unwrap_or(0);
        let message = e.message().trim().to_string();
        Problem {
            path: path.to_path_buf(),
            line: key_line(text, start, &message).unwrap_or_else(|| line_of(text, start)),
            severity: Severity::Error,
            message,
        }
    })?;
    let tz = jiff::tz::TimeZone::get(doc.timezone.get_ref()).map_err(|_| Problem {
        path: path.to_path_buf(),
        line: line_of(text, doc.timezone.span().start),
        severity: Severity::Error,
        message: format!(
            "timezone: unknown time zone \"{}\" (use an IANA name like Europe/Stockholm)",
            doc.timezone.get_ref()
        ),
    })?;
    let digest = Sha256::digest(text.as_bytes());
    let version = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    Ok(Flow {
        name: name.to_string(),
        path: path.to_path_buf(),
        text: text.to_string(),
        doc,
        tz,
        version,
    })
}

/// Steps are internally tagged (`type = …`), so serde reports an unknown
/// key at its table; the key's own line is more use to an admin.
fn key_line(text: &str, table_start: usize, message: &str) -> Option<usize> {
    let key = message.strip_prefix("unknown field `")?.split('`').next()?;
    let first = line_of(text, table_start);
    text.lines()
        .enumerate()
        .skip(first - 1)
        .take_while(|(i, l)| *i + 1 == first || !l.trim_start().starts_with('['))
        .find(|(_, l)| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|(i, _)| i + 1)
}

/// The flow files in `dir`, sorted (subfolders such as `tests/` are not flows).
pub fn flow_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Loads and validates every flow in `dir` against the prompts and the
/// configured queues and destinations. Returns the set when no problem is an
/// error, and every problem (warnings included) either way.
pub fn load_dir(
    dir: &Path,
    prompts: PromptCache,
    known: &Known,
) -> (Option<FlowSet>, Vec<Problem>) {
    let files = match flow_files(dir) {
        Ok(f) => f,
        Err(e) => {
            return (
                None,
                vec![Problem::error(
                    dir,
                    0,
                    format!("cannot read the flows folder: {e}"),
                )],
            )
        }
    };
    let mut sources = Vec::new();
    let mut problems = Vec::new();
    for f in files {
        match std::fs::read_to_string(&f) {
            Ok(text) => sources.push((f, text)),
            Err(e) => problems.push(Problem::error(&f, 0, format!("cannot read: {e}"))),
        }
    }
    let (set, more) = load_sources(&sources, prompts, known);
    problems.extend(more);
    let set = set.filter(|_| !problems.iter().any(|p| p.severity == Severity::Error));
    (set, problems)
}

/// As [`load_dir`], from texts already read (used by tests and the simulator).
pub fn load_sources(
    sources: &[(PathBuf, String)],
    prompts: PromptCache,
    known: &Known,
) -> (Option<FlowSet>, Vec<Problem>) {
    let mut flows = BTreeMap::new();
    let mut problems = Vec::new();
    for (path, text) in sources {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        match parse(&name, path, text) {
            Ok(flow) => {
                flows.insert(name, Arc::new(flow));
            }
            Err(p) => problems.push(p),
        }
    }
    if flows.is_empty() && problems.is_empty() {
        let dir = sources
            .first()
            .and_then(|(p, _)| p.parent())
            .unwrap_or(Path::new("flows"));
        problems.push(Problem::error(dir, 0, "no flow files (*.toml)".into()));
    }
    let mut set = FlowSet::new(flows, prompts);
    problems.extend(validate::validate(&set, known));
    problems.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    let failed = problems.iter().any(|p| p.severity == Severity::Error);
    set.index_numbers();
    ((!failed).then_some(set), problems)
}
