//! Trying a flow with no phone: the live interpreter driven by a simulated
//! clock, a simulated store (the caller's history is given) and simulated
//! media (a prompt takes exactly its real duration). Used by
//! `vaxel simulate` and by the flow tests (`flows/tests/*.toml`, `vaxel test`).
//! Pure: returns a transcript.

use super::interp::{Customer, FlowAction, FlowEvent, Interp, Lookup, Outcome, WebhookReply};
use super::FlowSet;
use crate::media::dtmf::Digit;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One key press: at a time after the answer, or (`None`) as soon as the
/// flow waits for keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub digit: Digit,
    pub at: Option<Duration>,
}

/// Parses `"0@2s,1,2@1500ms"`.
pub fn parse_keys(s: &str) -> Result<Vec<Key>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| {
            let (d, at) = match k.split_once('@') {
                Some((d, t)) => (d, Some(parse_duration(t)?)),
                None => (k, None),
            };
            let mut cs = d.chars();
            match (cs.next().and_then(Digit::from_char), cs.next()) {
                (Some(digit), None) => Ok(Key { digit, at }),
                _ => Err(format!(
                    "\"{k}\": a key is one of 0-9 * # A-D, optionally @TIME"
                )),
            }
        })
        .collect()
}

/// `2s`, `1.5s`, `500ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        (s, 1.0)
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| *v >= 0.0 && v.is_finite())
        .map(|v| Duration::from_secs_f64(v * scale))
        .ok_or_else(|| format!("\"{s}\" is not a time like 2s or 500ms"))
}

/// A simulated call.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub flow: String,
    pub from: String,
    pub dialled: String,
    pub at: jiff::Timestamp,
    pub keys: Vec<Key>,
    /// The store's answer: `None` is an unknown caller.
    pub customer: Option<Customer>,
    /// The webhook's reply; `None` simulates a timeout.
    pub webhook: Option<WebhookReply>,
    /// Whether transfers succeed.
    pub transfer_ok: bool,
    /// A simulated agent answers a caller who has waited this long in a
    /// queue (`None`: nobody answers; the caller waits, keys still work).
    pub agent_after: Option<Duration>,
    /// Stop after this long.
    pub limit: Duration,
}

/// What the caller heard and did, and where the call went.
#[derive(Clone, Debug, Default)]
pub struct Transcript {
    pub lines: Vec<String>,
    pub path: Vec<String>,
    pub outcome: Option<Outcome>,
    /// Prompts heard, each with when it started (interrupted ones included).
    pub heard: Vec<(Duration, String)>,
    pub version: String,
    pub end: Duration,
    /// How long the caller waited in the queue before the simulated agent
    /// answered (`None`: no agent answered).
    pub answered_after: Option<Duration>,
    /// The flow's human announcement prompt name.
    pub announcement: String,
    pub vars: std::collections::BTreeMap<String, String>,
}

impl Transcript {
    pub fn heard_at(&self, prompt_key_suffix: &str) -> Option<Duration> {
        self.heard
            .iter()
            .find(|(_, k)| k == prompt_key_suffix || k.ends_with(&format!("/{prompt_key_suffix}")))
            .map(|(t, _)| *t)
    }
}

fn secs(d: Duration) -> String {
    format!("{:6.2}s", d.as_secs_f64())
}

pub fn run(set: Arc<FlowSet>, sc: &Scenario) -> Result<Transcript, String> {
    let flow = match set.get(&sc.flow) {
        Some(f) => f.clone(),
        None => {
            return Err(format!(
                "no flow \"{}\" (flows: {})",
                sc.flow,
                set.flows.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        }
    };
    let t0 = Instant::now();
    let lookup = match &sc.customer {
        Some(c) => Lookup::Known(c.clone()),
        None => Lookup::Unknown,
    };
    let mut tr = Transcript {
        version: flow.version.clone(),
        announcement: flow.doc.human.get_ref().announcement.clone(),
        ..Transcript::default()
    };
    let local = sc.at.to_zoned_datetime(flow.tz.clone());
    tr.lines.push(format!(
        "{}  call from {} to {} at {} ({}), flow {} version {}, caller {}",
        secs(Duration::ZERO),
        sc.from,
        if sc.dialled.is_empty() {
            "-"
        } else {
            &sc.dialled
        },
        local.strftime("%Y-%m-%d %H:%M %a"),
        flow.tz.iana_name().unwrap_or("?"),
        flow.name,
        flow.version,
        match &sc.customer {
            Some(c) => format!(
                "known ({}{}; {} recent calls)",
                c.name.as_deref().unwrap_or("no name"),
                c.tier
                    .as_ref()
                    .map(|t| format!(", tier {t}"))
                    .unwrap_or_default(),
                c.recent_calls
            ),
            None => "unknown".into(),
        }
    ));
    let mut interp = Interp::start(set.clone(), flow, &sc.from, &sc.dialled, lookup, t0, sc.at);
    let mut now = t0;
    let mut play_end: Option<Instant> = None;
    // Prompts queued but not started yet, to drop them on a barge-in.
    let mut upcoming: Vec<(Instant, String)> = vec![];
    let mut keys: std::collections::VecDeque<Key> = sc.keys.iter().cloned().collect();
    let mut last_key = t0;
    let mut webhook_due: Option<Instant> = None;
    let mut transfer_failed_due: Option<Instant> = None;
    let mut ended = false;
    let mut queued_at: Option<Instant> = None;
    let mut agent_due: Option<Instant> = None;
    loop {
        while let Some(a) = interp.poll_action() {
            let t = secs(now - t0);
            match a {
                FlowAction::Play(list) => {
                    let mut at = now;
                    upcoming.clear();
                    for k in list {
                        let ms = set.duration_ms(&k).unwrap_or(0);
                        upcoming.push((at, k));
                        at += Duration::from_millis(ms);
                    }
                    play_end = Some(at);
                }
                FlowAction::StopPlayback => {
                    upcoming.clear();
                    play_end = None;
                    tr.lines.push(format!("{t}  (prompt cut off by the key)"));
                }
                FlowAction::Enqueue {
                    queue,
                    priority,
                    human,
                } => {
                    tr.lines.push(format!(
                        "{t}  joins queue \"{queue}\" (priority {priority}{}) and hears hold music until an agent answers",
                        if human { ", human key" } else { "" }
                    ));
                    queued_at = Some(now);
                    agent_due = sc.agent_after.map(|d| now + d);
                }
                FlowAction::LeaveQueue => {
                    tr.lines.push(format!("{t}  leaves the queue"));
                    queued_at = None;
                    agent_due = None;
                }
                FlowAction::Transfer { destination } => {
                    tr.lines
                        .push(format!("{t}  transferred to \"{destination}\""));
                    if sc.transfer_ok {
                        ended = true;
                    } else {
                        tr.lines
                            .push(format!("{t}  (simulated: the transfer fails)"));
                        transfer_failed_due = Some(now);
                    }
                }
                FlowAction::StartRecording { max } => tr.lines.push(format!(
                    "{t}  recording a message (at most {} s, # ends)",
                    max.as_secs()
                )),
                FlowAction::StopRecording => tr.lines.push(format!("{t}  message saved")),
                FlowAction::PostWebhook { url, timeout, .. } => {
                    tr.lines.push(format!(
                        "{t}  POST {url} (timeout {} ms){}",
                        timeout.as_millis(),
                        if sc.webhook.is_some() {
                            ""
                        } else {
                            ": simulated timeout"
                        }
                    ));
                    if sc.webhook.is_some() {
                        webhook_due = Some(now + Duration::from_millis(50));
                    }
                }
                FlowAction::BookCallback { number, queue } => {
                    // The engine commits it to the store before the flow goes on.
                    tr.lines.push(format!(
                        "{t}  callback booked to {number} for queue \"{queue}\" (stored)"
                    ));
                    interp.handle(now, FlowEvent::CallbackBooked(true));
                }
                FlowAction::Hangup => {
                    tr.lines.push(format!("{t}  the engine hangs up"));
                    ended = true;
                }
            }
        }
        // Log the prompts that start now.
        for (s, k) in upcoming.iter().filter(|(s, _)| *s <= now) {
            if !tr.heard.iter().any(|(h, hk)| t0 + *h == *s && hk == k) {
                let ms = set.duration_ms(k).unwrap_or(0);
                tr.lines.push(format!(
                    "{}  hears {k} ({:.1} s)",
                    secs(*s - t0),
                    ms as f64 / 1000.0
                ));
                tr.heard.push((*s - t0, k.clone()));
            }
        }
        upcoming.retain(|(s, _)| *s > now);
        if ended || now - t0 >= sc.limit {
            break;
        }
        // The next thing that happens.
        let key_at = keys.front().map(|k| match k.at {
            Some(at) => t0 + at,
            None if interp.waits_for_keys() => now.max(last_key + Duration::from_millis(500)),
            None => Instant::max(now, last_key) + Duration::from_secs(3600),
        });
        // Events, and prompt starts (only logged, above).
        let event = [
            play_end,
            key_at.filter(|k| *k < t0 + sc.limit),
            interp.poll_timeout(),
            webhook_due,
            transfer_failed_due,
            agent_due,
        ]
        .into_iter()
        .flatten()
        .min();
        let next_prompt = upcoming.first().map(|(s, _)| *s);
        let Some(next) = event.into_iter().chain(next_prompt).min() else {
            tr.lines.push(format!(
                "{}  (waiting; nothing more happens)",
                secs(now - t0)
            ));
            break;
        };
        now = next.max(now);
        if event != Some(next) {
            continue;
        }
        if key_at == Some(now) {
            let k = keys.pop_front().expect("key");
            last_key = now;
            tr.lines
                .push(format!("{}  presses {}", secs(now - t0), k.digit.0));
            interp.handle(now, FlowEvent::DigitReceived(k.digit));
        } else if play_end == Some(now) {
            play_end = None;
            interp.handle(now, FlowEvent::PlaybackFinished);
        } else if webhook_due == Some(now) {
            webhook_due = None;
            interp.handle(now, FlowEvent::WebhookFinished(sc.webhook.clone()));
        } else if transfer_failed_due == Some(now) {
            transfer_failed_due = None;
            interp.handle(now, FlowEvent::TransferFailed);
        } else if agent_due == Some(now) {
            agent_due = None;
            let waited = now - queued_at.unwrap_or(now);
            tr.answered_after = Some(waited);
            tr.lines.push(format!(
                "{}  an agent answers after {:.1} s in the queue: the caller talks to a person",
                secs(now - t0),
                waited.as_secs_f64()
            ));
            ended = true;
        } else {
            interp.handle_timeout(now);
        }
    }
    tr.end = now - t0;
    tr.path = interp.path().to_vec();
    tr.outcome = interp.outcome().cloned();
    tr.vars = interp.vars().clone();
    tr.lines
        .push(format!("{}  path: {}", secs(tr.end), tr.path.join(" → ")));
    tr.lines.push(format!(
        "{}  outcome: {}",
        secs(tr.end),
        match &tr.outcome {
            Some(o) => describe(o),
            None => "none yet (still in the flow)".into(),
        }
    ));
    Ok(tr)
}

pub fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Human { queue } => format!("human (queue {queue})"),
        Outcome::Queued { queue } => format!("queue {queue}"),
        Outcome::Transferred { destination } => format!("transfer to {destination}"),
        Outcome::Voicemail => "voicemail".into(),
        Outcome::Callback { queue } => format!("callback (queue {queue})"),
        Outcome::HungUp => "hung up by the flow".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_durations_parse() {
        let k = parse_keys("0@2s, 1,#@1500ms").unwrap();
        assert_eq!(k.len(), 3);
        assert_eq!(k[0].at, Some(Duration::from_secs(2)));
        assert_eq!(k[1].at, None);
        assert_eq!(k[2].digit, Digit('#'));
        assert_eq!(k[2].at, Some(Duration::from_millis(1500)));
        assert!(parse_keys("12").is_err());
        assert!(parse_keys("x").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
