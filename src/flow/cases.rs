//! Flow tests: files like `flows/tests/*.toml`, each a list of `[[case]]`s (a
//! caller, their history, keys with timing, the expected path and outcome),
//! run through the simulator by `vaxel test` and by the project's test
//! command. Pure apart from reading the given files.

use super::interp::{Customer, WebhookReply};
use super::simulate::{self, describe, parse_keys, Scenario};
use super::FlowSet;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(rename = "case")]
    cases: Vec<toml::Spanned<Case>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub flow: String,
    #[serde(default = "default_from")]
    pub from: String,
    #[serde(default)]
    pub dialled: String,
    /// Local time in the flow's time zone, `2026-12-24T21:30`.
    pub at: String,
    #[serde(default)]
    pub keys: String,
    /// The caller's history; absent: an unknown caller.
    pub customer: Option<CustomerSpec>,
    /// The webhook's reply; absent: the webhook times out.
    pub webhook: Option<WebhookSpec>,
    #[serde(default = "yes")]
    pub transfer_ok: bool,
    /// A simulated agent answers after the caller waited this long in a queue.
    pub agent_after_s: Option<f64>,
    /// The agent answered after at most this many seconds of waiting.
    pub expect_agent_within_s: Option<f64>,
    /// These steps, in this order, somewhere in the path.
    #[serde(default)]
    pub expect_path: Vec<String>,
    /// None of these steps in the path.
    #[serde(default)]
    pub expect_not_path: Vec<String>,
    /// `human`, `queue`, `queue:NAME`, `voicemail`, `callback`, `transfer`, `hangup`.
    pub expect_outcome: Option<String>,
    /// Prompts heard, in order (names without the language).
    #[serde(default)]
    pub expect_heard: Vec<String>,
    #[serde(default)]
    pub expect_not_heard: Vec<String>,
    /// The human announcement starts within this many seconds.
    pub expect_human_within_s: Option<f64>,
    /// Variables' values at the end.
    #[serde(default)]
    pub expect_vars: BTreeMap<String, String>,
}

fn default_from() -> String {
    "+46701234567".into()
}
fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerSpec {
    pub name: Option<String>,
    pub language: Option<String>,
    pub tier: Option<String>,
    #[serde(default)]
    pub recent_calls: u32,
    pub last_outcome: Option<String>,
    pub last_agent: Option<String>,
}

impl CustomerSpec {
    pub fn to_customer(&self, number: &str) -> Customer {
        Customer {
            number: number.to_string(),
            name: self.name.clone(),
            language: self.language.clone(),
            tier: self.tier.clone(),
            recent_calls: self.recent_calls,
            last_outcome: self.last_outcome.clone(),
            last_agent: self.last_agent.clone(),
            last_agent_ago: self
                .last_agent
                .as_ref()
                .map(|_| Duration::from_secs(86_400)),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    pub next: Option<String>,
}

/// One case's result: failures are `file:line: case "name": reason`.
#[derive(Debug)]
pub struct CaseResult {
    pub name: String,
    pub failures: Vec<String>,
    pub transcript: Vec<String>,
}

/// Parses a local time in a flow's zone.
pub fn local_time(flow_tz: &jiff::tz::TimeZone, s: &str) -> Result<jiff::Timestamp, String> {
    let dt: jiff::civil::DateTime = s
        .parse()
        .map_err(|_| format!("\"{s}\" is not a local time like 2026-12-24T21:30"))?;
    dt.to_zoned_datetime(flow_tz.clone())
        .map(|z| z.timestamp())
        .map_err(|e| format!("\"{s}\": {e}"))
}

/// Builds the simulator's scenario for a case.
pub fn scenario(set: &FlowSet, c: &Case) -> Result<Scenario, String> {
    let flow = set
        .get(&c.flow)
        .ok_or_else(|| format!("no flow \"{}\"", c.flow))?;
    Ok(Scenario {
        flow: c.flow.clone(),
        from: c.from.clone(),
        dialled: c.dialled.clone(),
        at: local_time(&flow.tz, &c.at)?,
        keys: parse_keys(&c.keys)?,
        customer: c.customer.as_ref().map(|s| s.to_customer(&c.from)),
        webhook: c.webhook.as_ref().map(|w| WebhookReply {
            vars: w.vars.clone(),
            next: w.next.clone(),
        }),
        transfer_ok: c.transfer_ok,
        agent_after: c
            .agent_after_s
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64),
        limit: Duration::from_secs(600),
    })
}

/// Runs every case of one file. Errors reading the file are one failed result.
pub fn run_file(set: &Arc<FlowSet>, path: &Path) -> Vec<CaseResult> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return vec![failed(path, 0, "(file)", format!("cannot read: {e}"))],
    };
    let file: CaseFile = match toml::from_str(&text) {
        Ok(f) => f,
        Err(e) => {
            let line = e
                .span()
                .map(|s| super::load::line_of(&text, s.start))
                .unwrap_or(0);
            return vec![failed(path, line, "(file)", e.message().trim().to_string())];
        }
    };
    file.cases
        .iter()
        .map(|sc| {
            let line = super::load::line_of(&text, sc.span().start);
            let c = sc.get_ref();
            let mut r = CaseResult {
                name: c.name.clone(),
                failures: vec![],
                transcript: vec![],
            };
            let mut fail = |m: String| {
                r.failures.push(format!(
                    "{}:{line}: case \"{}\": {m}",
                    path.display(),
                    c.name
                ))
            };
            let tr = match scenario(set, c).and_then(|s| simulate::run(set.clone(), &s)) {
                Ok(t) => t,
                Err(e) => {
                    fail(e);
                    return r;
                }
            };
            check(c, &tr, &mut fail);
            r.transcript = tr.lines;
            r
        })
        .collect()
}

fn failed(path: &Path, line: usize, name: &str, m: String) -> CaseResult {
    CaseResult {
        name: name.into(),
        failures: vec![format!("{}:{line}: {m}", path.display())],
        transcript: vec![],
    }
}

/// Whether `want` occurs in `have` in order (not necessarily adjacent).
fn in_order(have: &[String], want: &[String]) -> bool {
    let mut it = have.iter();
    want.iter().all(|w| it.any(|h| h == w))
}

fn check(c: &Case, tr: &simulate::Transcript, fail: &mut impl FnMut(String)) {
    if !in_order(&tr.path, &c.expect_path) {
        fail(format!(
            "expected path {} in order; the path was {}",
            c.expect_path.join(" → "),
            tr.path.join(" → ")
        ));
    }
    for s in &c.expect_not_path {
        if tr.path.contains(s) {
            fail(format!(
                "step \"{s}\" was in the path {}",
                tr.path.join(" → ")
            ));
        }
    }
    let heard: Vec<String> = tr
        .heard
        .iter()
        .map(|(_, k)| k.split_once('/').map(|(_, n)| n).unwrap_or(k).to_string())
        .collect();
    if !in_order(&heard, &c.expect_heard) {
        fail(format!(
            "expected to hear {} in order; heard {}",
            c.expect_heard.join(", "),
            heard.join(", ")
        ));
    }
    for p in &c.expect_not_heard {
        if heard.contains(p) {
            fail(format!("heard \"{p}\""));
        }
    }
    if let Some(want) = &c.expect_outcome {
        let got = tr.outcome.as_ref();
        let ok = got.is_some_and(|o| {
            let (kind, queue) = want.split_once(':').unwrap_or((want, ""));
            o.name() == kind && (queue.is_empty() || o.queue() == Some(queue))
        });
        if !ok {
            fail(format!(
                "expected outcome {want}; got {}",
                got.map(describe).unwrap_or_else(|| "none".into())
            ));
        }
    }
    if let Some(limit) = c.expect_human_within_s {
        match tr.heard_at(&tr.announcement) {
            Some(t) if t.as_secs_f64() <= limit => {}
            Some(t) => fail(format!(
                "the human option (\"{}\") started at {:.2} s, after {limit} s",
                tr.announcement,
                t.as_secs_f64()
            )),
            None => fail(format!(
                "the human option (\"{}\") was never heard",
                tr.announcement
            )),
        }
    }
    if let Some(limit) = c.expect_agent_within_s {
        match tr.answered_after {
            Some(w) if w.as_secs_f64() <= limit => {}
            Some(w) => fail(format!(
                "the agent answered after {:.1} s in the queue, not within {limit} s",
                w.as_secs_f64()
            )),
            None => fail("no agent answered".into()),
        }
    }
    for (k, v) in &c.expect_vars {
        let got = tr.vars.get(k);
        if got != Some(v) {
            fail(format!("expected {k} = \"{v}\"; got {got:?}"));
        }
    }
}
