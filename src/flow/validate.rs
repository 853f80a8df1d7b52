//! The flow validator. Besides references (steps, prompts, queues,
//! destinations, variables, opening hours) it proves two things about every
//! path a call can take:
//!
//! * **Human first.** The `human.announcement` prompt starts within
//!   `human.within_s` of the answer (counted from the real prompt durations
//!   before it, webhook timeouts and say steps included), and no menu, digit
//!   collection, voicemail or callback booking comes before it.
//! * **No input-less loops.** Every cycle of steps waits for the caller
//!   somewhere (a menu, a collection, a recording).
//!
//! It also warns when a known caller could be asked for a customer number.
//! Pure: works on a loaded [`FlowSet`].

use super::hours::{parse_ranges, parse_weekday};
use super::model::{Step, StepId, Test};
use super::{Flow, FlowSet, Problem};
use std::collections::{BTreeSet, HashSet};

/// What the configuration defines, which flows may name.
#[derive(Clone, Debug, Default)]
pub struct Known {
    pub queues: BTreeSet<String>,
    /// Transfer destinations by name.
    pub destinations: BTreeSet<String>,
}

/// Variables every call has.
pub const BUILTIN_VARS: &[&str] = &[
    "caller",
    "dialled",
    "language",
    "flow",
    "customer_name",
    "customer_tier",
    "last_agent",
];

/// Estimated length of a `say` step before the announcement (it depends on the value).
const SAY_ESTIMATE_MS: u64 = 2_000;

pub fn validate(set: &FlowSet, known: &Known) -> Vec<Problem> {
    let mut out = Vec::new();
    for flow in set.flows.values() {
        check_flow(set, flow, known, &mut out);
        human_first(set, flow, &mut out);
        identity_warning(set, flow, &mut out);
        input_less_loops(flow, &mut out);
    }
    out
}

fn step_line(flow: &Flow, id: &str) -> usize {
    flow.doc
        .steps
        .get(id)
        .map(|s| flow.line(s.span()))
        .unwrap_or(1)
}

/// `${name}` references in a template.
pub fn template_vars(s: &str) -> Vec<&str> {
    let mut out = vec![];
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        match after.find('}') {
            Some(j) => {
                out.push(&after[..j]);
                rest = &after[j + 1..];
            }
            None => break,
        }
    }
    out
}

fn defined_vars(flow: &Flow) -> HashSet<String> {
    let mut vars: HashSet<String> = BUILTIN_VARS.iter().map(|s| s.to_string()).collect();
    for s in flow.doc.steps.values() {
        match s.get_ref() {
            Step::Set { vars: v, .. } => vars.extend(v.keys().cloned()),
            Step::Collect { var, .. } => {
                vars.insert(var.clone());
            }
            Step::Webhook { sets, .. } => vars.extend(sets.iter().cloned()),
            _ => {}
        }
    }
    vars
}

fn check_flow(set: &FlowSet, flow: &Flow, known: &Known, out: &mut Vec<Problem>) {
    let path = &flow.path;
    let doc = &flow.doc;
    let langs = doc.languages.get_ref();
    if langs.is_empty() {
        out.push(Problem::error(
            path,
            flow.line(doc.languages.span()),
            "languages: name at least one (for example [\"sv\", \"en\"])".into(),
        ));
    }
    let check_prompt = |out: &mut Vec<Problem>, line: usize, where_: &str, name: &str| {
        for l in langs {
            let key = FlowSet::prompt_key(l, name);
            if set.prompts.get(&key).is_none() {
                out.push(Problem::error(
                    path,
                    line,
                    format!("{where_}: unknown prompt \"{name}\" (no audio file {key}.* under the audio folder)"),
                ));
            }
        }
    };
    if !doc.steps.contains_key(doc.start.get_ref()) {
        out.push(Problem::error(
            path,
            flow.line(doc.start.span()),
            format!("start: step \"{}\" does not exist", doc.start.get_ref()),
        ));
    }
    let human = doc.human.get_ref();
    let hline = flow.line(doc.human.span());
    if !known.queues.contains(&human.queue) {
        out.push(Problem::error(
            path,
            hline,
            format!(
                "human: unknown queue \"{}\" (configured: {})",
                human.queue,
                list(&known.queues)
            ),
        ));
    }
    if !"0123456789*#".contains(human.key) {
        out.push(Problem::error(
            path,
            hline,
            format!("human: key '{}' is not a phone key", human.key),
        ));
    }
    check_prompt(out, hline, "human.announcement", &human.announcement);
    for p in &human.connecting {
        check_prompt(out, hline, "human.connecting", p);
    }
    for (name, h) in &doc.hours {
        for e in h.get_ref().problems() {
            out.push(Problem::error(
                path,
                flow.line(h.span()),
                format!("hours.{name}: {e}"),
            ));
        }
    }
    for n in &doc.numbers {
        let v = n.get_ref();
        if v != "*"
            && !v
                .trim_start_matches('+')
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " -".contains(c))
        {
            out.push(Problem::error(
                path,
                flow.line(n.span()),
                format!("numbers: \"{v}\" is not a number or \"*\""),
            ));
        }
    }
    let vars = defined_vars(flow);
    let check_vars = |out: &mut Vec<Problem>, line: usize, id: &str, names: Vec<&str>| {
        for v in names {
            if !vars.contains(v) {
                out.push(Problem::error(
                    path,
                    line,
                    format!("step \"{id}\": unknown variable \"{v}\" (set it with a set, collect or webhook step)"),
                ));
            }
        }
    };
    for (id, spanned) in &doc.steps {
        let step = spanned.get_ref();
        let line = flow.line(spanned.span());
        let kind = step.kind();
        for p in step.prompts() {
            check_prompt(out, line, &format!("step \"{id}\""), p);
        }
        for (field, target) in step.successors() {
            match target {
                None if field != "on_fail" => out.push(Problem::error(
                    path,
                    line,
                    format!("step \"{id}\" ({kind}) is a dead end: it has no `{field}` step"),
                )),
                Some(t) if !doc.steps.contains_key(t) => out.push(Problem::error(
                    path,
                    line,
                    format!("step \"{id}\": `{field}` names step \"{t}\", which does not exist"),
                )),
                _ => {}
            }
        }
        match step {
            Step::Menu {
                options,
                timeout_s,
                human_key_is_option,
                ..
            } => {
                if options.is_empty() {
                    out.push(Problem::error(
                        path,
                        line,
                        format!("step \"{id}\": a menu needs options"),
                    ));
                }
                for key in options.keys() {
                    let mut cs = key.chars();
                    match (cs.next(), cs.next()) {
                        (Some(c), None) if "0123456789*#".contains(c) => {
                            if c == human.key && !human_key_is_option {
                                out.push(Problem::error(path, line, format!(
                                    "step \"{id}\": key '{c}' is the human key; it reaches a person from every menu (set human_key_is_option = true to use it here instead)"
                                )));
                            }
                        }
                        _ => out.push(Problem::error(
                            path,
                            line,
                            format!(
                                "step \"{id}\": option \"{key}\" is not one phone key (0-9, *, #)"
                            ),
                        )),
                    }
                }
                if *timeout_s <= 0.0 {
                    out.push(Problem::error(
                        path,
                        line,
                        format!("step \"{id}\": timeout_s must be above 0"),
                    ));
                }
            }
            Step::Collect {
                min,
                max,
                timeout_s,
                var,
                ..
            } => {
                if *min > *max || *max == 0 {
                    out.push(Problem::error(
                        path,
                        line,
                        format!("step \"{id}\": needs 1 ≤ min ≤ max (min {min}, max {max})"),
                    ));
                }
                if *timeout_s <= 0.0 {
                    out.push(Problem::error(
                        path,
                        line,
                        format!("step \"{id}\": timeout_s must be above 0"),
                    ));
                }
                if BUILTIN_VARS.contains(&var.as_str()) {
                    out.push(Problem::error(
                        path,
                        line,
                        format!("step \"{id}\": \"{var}\" is a built-in variable"),
                    ));
                }
            }
            Step::Condition { branches, .. } => {
                for b in branches {
                    check_test(flow, id, line, &b.test, out);
                    if let Some(v) = &b.test.vars {
                        check_vars(out, line, id, v.keys().map(String::as_str).collect());
                    }
                }
            }
            Step::Set { vars: v, .. } => {
                check_vars(
                    out,
                    line,
                    id,
                    v.values().flat_map(|s| template_vars(s)).collect(),
                );
            }
            Step::Say { value, what, .. }
                if !(value == "now" && *what == super::model::SayKind::Time) =>
            {
                check_vars(out, line, id, template_vars(value));
            }
            Step::Webhook { url, timeout_s, .. } => {
                if url.starts_with("https://") {
                    out.push(Problem::error(
                        path,
                        line,
                        format!("step \"{id}\": https webhooks are not supported in this version; use http:// (for example to a local proxy)"),
                    ));
                } else if !url.starts_with("http://") {
                    out.push(Problem::error(
                        path,
                        line,
                        format!("step \"{id}\": url must start with http://"),
                    ));
                }
                if *timeout_s <= 0.0 || *timeout_s > 10.0 {
                    out.push(Problem::error(
                        path,
                        line,
                        format!("step \"{id}\": timeout_s must be above 0 and at most 10"),
                    ));
                }
            }
            Step::Queue { queue, .. } | Step::Callback { queue, .. }
                if !known.queues.contains(queue) =>
            {
                out.push(Problem::error(
                    path,
                    line,
                    format!(
                        "step \"{id}\": unknown queue \"{queue}\" (configured: {})",
                        list(&known.queues)
                    ),
                ));
            }
            Step::Transfer { to, .. } if !known.destinations.contains(to) => {
                out.push(Problem::error(path, line, format!(
                    "step \"{id}\": \"{to}\" is not a configured transfer destination (configured: {}); calls only go out to destinations in the config",
                    list(&known.destinations)
                )));
            }
            Step::GotoFlow { flow: other } if set.get(other).is_none() => {
                out.push(Problem::error(
                    path,
                    line,
                    format!("step \"{id}\": unknown flow \"{other}\""),
                ));
            }
            _ => {}
        }
        if let Step::Callback {
            number_var: Some(v),
            ..
        } = step
        {
            check_vars(out, line, id, vec![v.as_str()]);
        }
    }
    for (id, spanned) in &doc.steps {
        if let Step::Queue { keys, .. } = spanned.get_ref() {
            for k in keys.keys() {
                if k.len() != 1 || !"0123456789*#".contains(k.as_str()) || k.starts_with(human.key)
                {
                    out.push(Problem::error(
                        path,
                        flow.line(spanned.span()),
                        format!("step \"{id}\": keys: \"{k}\" is not a phone key other than the human key"),
                    ));
                }
            }
        }
    }
    // The human queue's exits: reachable from anywhere (the human key).
    let human_exits = human.exits();
    for (field, t) in human_exits.targets() {
        if let Some(t) = t.filter(|t| !doc.steps.contains_key(*t)) {
            out.push(Problem::error(
                path,
                hline,
                format!("human: `{field}` names step \"{t}\", which does not exist"),
            ));
        }
    }
    for k in human_exits.keys.keys() {
        if k.len() != 1 || !"0123456789*#".contains(k.as_str()) || k.starts_with(human.key) {
            out.push(Problem::error(
                path,
                hline,
                format!("human.keys: \"{k}\" is not a phone key other than the human key"),
            ));
        }
    }
    // Unreachable steps.
    let mut seen = HashSet::new();
    let mut stack = vec![doc.start.get_ref().clone()];
    stack.extend(
        human_exits
            .targets()
            .into_iter()
            .filter_map(|(_, t)| t.cloned()),
    );
    while let Some(id) = stack.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        if let Some(s) = doc.steps.get(&id) {
            stack.extend(
                s.get_ref()
                    .successors()
                    .into_iter()
                    .filter_map(|(_, t)| t.cloned()),
            );
        }
    }
    for (id, s) in &doc.steps {
        if !seen.contains(id) {
            out.push(Problem::error(
                path,
                flow.line(s.span()),
                format!(
                    "step \"{id}\" is unreachable from start \"{}\"",
                    doc.start.get_ref()
                ),
            ));
        }
    }
}

fn check_test(flow: &Flow, id: &str, line: usize, t: &Test, out: &mut Vec<Problem>) {
    let path = &flow.path;
    for name in [&t.open, &t.holiday].into_iter().flatten() {
        if !flow.doc.hours.contains_key(name) {
            out.push(Problem::error(
                path,
                line,
                format!("step \"{id}\": unknown opening hours \"{name}\""),
            ));
        }
    }
    for w in t.weekday.iter().flatten() {
        if parse_weekday(w).is_none() {
            out.push(Problem::error(
                path,
                line,
                format!("step \"{id}\": \"{w}\" is not a weekday"),
            ));
        }
    }
    if let Some(spec) = &t.time {
        if let Err(e) = parse_ranges(spec) {
            out.push(Problem::error(
                path,
                line,
                format!("step \"{id}\": time: {e}"),
            ));
        }
    }
    if let Some(l) = &t.language {
        if !flow.doc.languages.get_ref().contains(l) {
            out.push(Problem::error(
                path,
                line,
                format!("step \"{id}\": language \"{l}\" is not one of the flow's languages"),
            ));
        }
    }
}

fn list(s: &BTreeSet<String>) -> String {
    if s.is_empty() {
        "none".into()
    } else {
        s.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// Whether a known caller can be on a path: known, unknown or either.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Knowledge {
    Known,
    Unknown,
    Either,
}

/// The successors of a step with what each branch implies about `known`.
fn refined(step: &Step, k: Knowledge) -> Vec<(&StepId, Knowledge)> {
    match step {
        Step::Condition {
            branches,
            otherwise,
        } => {
            let mut out = vec![];
            let mut rest = k;
            for b in branches {
                let here = match b.test.known {
                    Some(true) if rest != Knowledge::Unknown => Knowledge::Known,
                    Some(false) if rest != Knowledge::Known => Knowledge::Unknown,
                    Some(_) => continue, // contradicts what the path already knows
                    None => rest,
                };
                out.push((&b.goto, here));
                // A branch testing only `known` settles it for the rest.
                if b.test.tests_only_known() {
                    rest = if b.test.known == Some(true) {
                        Knowledge::Unknown
                    } else {
                        Knowledge::Known
                    };
                }
            }
            if let Some(o) = otherwise {
                out.push((o, rest));
            }
            out
        }
        s => s
            .successors()
            .into_iter()
            .filter_map(|(_, t)| t.map(|t| (t, k)))
            .collect(),
    }
}

fn human_first(set: &FlowSet, flow: &Flow, out: &mut Vec<Problem>) {
    let human = flow.doc.human.get_ref();
    let limit_ms = (human.within_s * 1000.0) as u64;
    // (flow, step, elapsed ms, path)
    let mut stack: Vec<(&Flow, StepId, u64, Vec<String>)> =
        vec![(flow, flow.doc.start.get_ref().clone(), 0, vec![])];
    let mut seen: HashSet<(String, StepId)> = HashSet::new();
    let mut reported = HashSet::new();
    let mut report = |out: &mut Vec<Problem>, key: String, line: usize, msg: String| {
        if reported.insert(key) {
            out.push(Problem::error(&flow.path, line, msg));
        }
    };
    while let Some((f, id, elapsed, mut path)) = stack.pop() {
        if !seen.insert((f.name.clone(), id.clone())) {
            continue;
        }
        let Some(step) = f.doc.steps.get(&id).map(|s| s.get_ref()) else {
            continue;
        };
        path.push(if f.name == flow.name {
            id.clone()
        } else {
            format!("{}:{id}", f.name)
        });
        // The offending step's line, or where the path left this file.
        let line = if f.name == flow.name {
            step_line(flow, &id)
        } else {
            step_line(flow, path.first().map(String::as_str).unwrap_or(&id))
        };
        let shown = path.join(" → ");
        let dur = |name: &str| {
            f.doc
                .languages
                .get_ref()
                .iter()
                .filter_map(|l| set.duration_ms(&FlowSet::prompt_key(l, name)))
                .max()
                .unwrap_or(0)
        };
        let mut elapsed = elapsed;
        let announcement = &f.doc.human.get_ref().announcement;
        match step {
            Step::Menu { .. }
            | Step::Collect { .. }
            | Step::Voicemail { .. }
            | Step::Callback { .. } => {
                report(out, id.clone(), step_line(f, &id), format!(
                    "human-first rule: step \"{id}\" ({}) can come before the human option is announced (path: {shown}); play \"{}\" first",
                    step.kind(), announcement
                ));
                continue;
            }
            Step::Play { prompts, .. }
            | Step::Hangup { prompts }
            | Step::Transfer { prompts, .. }
            | Step::Queue { prompts, .. } => {
                let mut announced = false;
                for p in prompts {
                    if p == announcement {
                        announced = true;
                        break;
                    }
                    elapsed += dur(p);
                }
                if announced || elapsed > limit_ms {
                    if elapsed > limit_ms {
                        report(out, format!("late:{id}"), line, format!(
                            "human-first rule: on path {shown} the human option is announced {:.1} s after the answer (or not at all); the limit is human.within_s = {:.1} s",
                            elapsed as f64 / 1000.0, human.within_s
                        ));
                    }
                    continue;
                }
            }
            Step::Say { .. } => elapsed += SAY_ESTIMATE_MS,
            Step::Webhook { timeout_s, .. } => elapsed += (*timeout_s * 1000.0) as u64,
            Step::GotoFlow { flow: other } => {
                if let Some(o) = set.get(other) {
                    stack.push((o, o.doc.start.get_ref().clone(), elapsed, path));
                }
                continue;
            }
            _ => {}
        }
        for (_, next) in step.successors() {
            if let Some(n) = next {
                stack.push((f, n.clone(), elapsed, path.clone()));
            }
        }
    }
}

/// A collection that asks who the caller is, judged by its variable's name.
fn asks_identity(step: &Step) -> bool {
    match step {
        Step::Collect { var, .. } => {
            let v = var.to_lowercase();
            ["customer", "kund", "account", "konto", "member", "medlem"]
                .iter()
                .any(|w| v.contains(w))
        }
        _ => false,
    }
}

fn identity_warning(set: &FlowSet, flow: &Flow, out: &mut Vec<Problem>) {
    let _ = set;
    let mut seen = HashSet::new();
    let mut stack = vec![(flow.doc.start.get_ref().clone(), Knowledge::Either)];
    while let Some((id, k)) = stack.pop() {
        if !seen.insert((id.clone(), k)) {
            continue;
        }
        let Some(step) = flow.doc.steps.get(&id).map(|s| s.get_ref()) else {
            continue;
        };
        if asks_identity(step) && k != Knowledge::Unknown {
            out.push(Problem::warning(&flow.path, step_line(flow, &id), format!(
                "step \"{id}\" asks for a customer number and a known caller can reach it; test `known = false` before it (recognise, don't interrogate)"
            )));
        }
        for (next, k2) in refined(step, k) {
            stack.push((next.clone(), k2));
        }
    }
}

fn input_less_loops(flow: &Flow, out: &mut Vec<Problem>) {
    // Depth-first search over steps that do not wait for input; a back edge is a loop.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Active,
        Done,
    }
    let steps = &flow.doc.steps;
    let mut marks: std::collections::HashMap<&str, Mark> = Default::default();
    let mut reported = HashSet::new();
    fn visit<'a>(
        flow: &'a Flow,
        id: &'a str,
        marks: &mut std::collections::HashMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
        reported: &mut HashSet<String>,
        out: &mut Vec<Problem>,
    ) {
        let Some(step) = flow.doc.steps.get(id).map(|s| s.get_ref()) else {
            return;
        };
        if step.takes_input() {
            return;
        }
        match marks.get(id) {
            Some(Mark::Done) => return,
            Some(Mark::Active) => {
                let from = stack.iter().position(|s| *s == id).unwrap_or(0);
                let mut cycle: Vec<&str> = stack[from..].to_vec();
                cycle.push(id);
                let mut key: Vec<&str> = stack[from..].to_vec();
                key.sort();
                if reported.insert(key.join(",")) {
                    out.push(Problem::error(&flow.path, step_line(flow, id), format!(
                        "loop with no input: {} (the caller could never leave it except by hanging up or the human key)",
                        cycle.join(" → ")
                    )));
                }
                return;
            }
            None => {}
        }
        marks.insert(id, Mark::Active);
        stack.push(id);
        for (_, next) in step.successors() {
            if let Some(n) = next {
                visit(flow, n, marks, stack, reported, out);
            }
        }
        stack.pop();
        marks.insert(id, Mark::Done);
    }
    for id in steps.keys() {
        let mut stack = vec![];
        visit(flow, id, &mut marks, &mut stack, &mut reported, out);
    }
}
