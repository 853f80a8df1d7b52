//! Call flows: the model of a `flows/*.toml` file ([`model`]), loading and
//! versioning ([`load`]), the validator that enforces the human-first rule
//! ([`validate`]), opening hours ([`hours`]), the pure interpreter a call runs
//! ([`interp`]) and the no-phone simulator built on it ([`simulate`]).
//!
//! Never does I/O apart from [`load`] reading the files it is given; never
//! reads the clock (wall time and `Instant`s come in as parameters).

pub mod cases;
pub mod hours;
pub mod interp;
pub mod load;
pub mod model;
pub mod say;
pub mod simulate;
pub mod validate;

use crate::media::prompt::PromptCache;
use model::FlowDoc;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One loaded flow file.
#[derive(Debug)]
pub struct Flow {
    /// The file stem: what `goto-flow` and `vaxel simulate` name.
    pub name: String,
    pub path: PathBuf,
    pub text: String,
    pub doc: FlowDoc,
    pub tz: jiff::tz::TimeZone,
    /// Content hash of the file (12 hex digits), recorded with each call.
    pub version: String,
}

impl Flow {
    pub fn line(&self, span: std::ops::Range<usize>) -> usize {
        load::line_of(&self.text, span.start)
    }

    pub fn default_language(&self) -> &str {
        self.doc
            .languages
            .get_ref()
            .first()
            .map(String::as_str)
            .unwrap_or("sv")
    }

    /// The human key, or `None` if it is switched off by a missing `human` section.
    pub fn human_key(&self) -> char {
        self.doc.human.get_ref().key
    }
}

/// Every flow of one version of `flows/`, with the prompts they play. Calls
/// hold an `Arc` of the set they started on, so an edit never changes a call
/// in progress.
#[derive(Debug)]
pub struct FlowSet {
    pub flows: BTreeMap<String, Arc<Flow>>,
    pub prompts: PromptCache,
    /// Hash of all flow versions: changes whenever any file changes.
    pub id: String,
    by_number: HashMap<String, String>,
    catch_all: Option<String>,
}

impl FlowSet {
    pub fn new(flows: BTreeMap<String, Arc<Flow>>, prompts: PromptCache) -> FlowSet {
        let id = {
            use sha2::{Digest, Sha256};
            let mut h = Sha256::new();
            for f in flows.values() {
                h.update(f.name.as_bytes());
                h.update(f.version.as_bytes());
            }
            h.finalize()[..6]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        FlowSet {
            flows,
            prompts,
            id,
            by_number: HashMap::new(),
            catch_all: None,
        }
    }

    pub(crate) fn index_numbers(&mut self) {
        for f in self.flows.values() {
            for n in &f.doc.numbers {
                let n = n.get_ref();
                if n == "*" {
                    self.catch_all = Some(f.name.clone());
                } else {
                    self.by_number.insert(number_key(n), f.name.clone());
                }
            }
        }
    }

    /// The flow serving a dialled number: an exact match (ignoring `+`,
    /// spaces and dashes), else the catch-all, else the only flow.
    pub fn flow_for(&self, dialled: &str) -> Option<&Arc<Flow>> {
        let name = self
            .by_number
            .get(&number_key(dialled))
            .or(self.catch_all.as_ref());
        match name {
            Some(n) => self.flows.get(n),
            None if self.flows.len() == 1 => self.flows.values().next(),
            None => None,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Flow>> {
        self.flows.get(name)
    }

    /// The cache key of a prompt in a language: names with a `/` are paths
    /// under `audio/` as they are (`music/hold`); others are per language.
    pub fn prompt_key(lang: &str, name: &str) -> String {
        if name.contains('/') {
            name.to_string()
        } else {
            format!("{lang}/{name}")
        }
    }

    pub fn duration_ms(&self, key: &str) -> Option<u64> {
        self.prompts.get(key).map(|p| p.duration_ms())
    }
}

fn number_key(n: &str) -> String {
    n.chars().filter(|c| c.is_ascii_alphanumeric()).collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One finding of the loader or validator, printed as `file:line: reason`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub line: usize,
    pub severity: Severity,
    pub message: String,
}

impl Problem {
    pub fn error(path: &Path, line: usize, message: String) -> Problem {
        Problem {
            path: path.to_path_buf(),
            line,
            severity: Severity::Error,
            message,
        }
    }

    pub fn warning(path: &Path, line: usize, message: String) -> Problem {
        Problem {
            severity: Severity::Warning,
            ..Problem::error(path, line, message)
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
        };
        write!(
            f,
            "{}:{}: {tag}{}",
            self.path.display(),
            self.line,
            self.message
        )
    }
}
