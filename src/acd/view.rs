//! The ACD as the outside sees it at one moment: each queue's live figures
//! and each agent's status and state. The owner thread builds a view a few
//! times a second for the HTTP API, the event stream and the metrics.
//!
//! Plain data: no I/O, no clock (the time is a parameter). Waits are rounded
//! to whole seconds so that a view changes at most once a second while
//! nothing happens but time passing (wallboards are not sent a new figure
//! every tick).

use super::{route, Acd, State, Status};
use serde::Serialize;
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// What calls make of an agent, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StateName {
    Idle,
    Ringing,
    OnCall,
    WrapUp,
}

impl From<&State> for StateName {
    fn from(s: &State) -> StateName {
        match s {
            State::Idle => StateName::Idle,
            State::Ringing(_) => StateName::Ringing,
            State::OnCall(_) => StateName::OnCall,
            State::WrapUp { .. } => StateName::WrapUp,
        }
    }
}

/// Agents who serve a queue (have its skill), by status and state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct AgentCounts {
    /// Available with a registered phone.
    pub staffed: usize,
    /// Staffed and idle: the next caller rings one of them at once.
    pub free: usize,
    pub ringing: usize,
    pub on_call: usize,
    pub wrap_up: usize,
    pub on_break: usize,
    pub logged_out: usize,
    /// Available but with no registered phone (cannot be rung).
    pub unreachable: usize,
}

/// A queue's live figures.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct QueueLive {
    pub queue: String,
    /// Callers waiting now (callbacks waiting for their turn included).
    pub waiting: usize,
    /// Callbacks among them.
    pub callbacks_waiting: usize,
    /// The longest current wait of a caller on the line, whole seconds.
    pub longest_wait_s: u64,
    /// The estimated wait of a caller joining now, whole seconds (none: no
    /// agent staffed, no estimate).
    pub ewt_s: Option<u64>,
    pub agents: AgentCounts,
    pub high_load: bool,
    /// The mean of the last handle times the estimate uses, whole seconds.
    pub aht_s: u64,
    /// Mean absolute error of announced against actual waits, seconds.
    pub ewt_error_s: Option<f64>,
    pub ewt_samples: u64,
}

/// The caller on an agent's screen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct CallerLive {
    pub number: String,
    pub display: String,
    pub queue: String,
    /// A callback the engine dials for this caller.
    pub callback: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct AgentLive {
    pub id: String,
    pub name: String,
    pub status: Status,
    pub state: StateName,
    /// A phone is registered.
    pub reachable: bool,
    /// Calls answered since the engine started.
    pub calls: u32,
    /// Skill → level (1 strongest).
    pub skills: std::collections::BTreeMap<String, u8>,
    pub languages: Vec<String>,
    /// Who rings, or who the agent talks to or wraps up (absent when idle).
    pub caller: Option<CallerLive>,
}

fn secs(d: Duration) -> u64 {
    d.as_secs()
}

impl Acd {
    /// Every queue's live figures, by name.
    pub fn queue_views(&self, now: Instant) -> Vec<QueueLive> {
        let mut names: Vec<&String> = self.queues.keys().collect();
        names.sort();
        names
            .into_iter()
            .filter_map(|name| {
                let f = self.figures(name, now)?;
                let q = self.queues.get(name)?;
                let mut agents = AgentCounts::default();
                for a in self.agents.values() {
                    if route::skill_level(a, &q.settings.skill).is_none() {
                        continue;
                    }
                    match (a.status, a.reachable) {
                        (Status::LoggedOut, _) => agents.logged_out += 1,
                        (Status::OnBreak, _) => agents.on_break += 1,
                        (Status::Available, false) => agents.unreachable += 1,
                        (Status::Available, true) => {
                            agents.staffed += 1;
                            match StateName::from(&a.state) {
                                StateName::Idle => agents.free += 1,
                                StateName::Ringing => agents.ringing += 1,
                                StateName::OnCall => agents.on_call += 1,
                                StateName::WrapUp => agents.wrap_up += 1,
                            }
                        }
                    }
                }
                Some(QueueLive {
                    queue: name.clone(),
                    waiting: f.waiting,
                    callbacks_waiting: f.callbacks_waiting,
                    longest_wait_s: secs(f.longest_wait),
                    ewt_s: f.ewt.map(secs),
                    agents,
                    high_load: f.high_load,
                    aht_s: secs(f.aht),
                    ewt_error_s: f.ewt_error.map(|e| (e.as_secs_f64() * 10.0).round() / 10.0),
                    ewt_samples: f.ewt_samples,
                })
            })
            .collect()
    }

    /// Every agent's status and state, by id.
    pub fn agent_views(&self) -> Vec<AgentLive> {
        self.agents
            .values()
            .map(|a| AgentLive {
                id: a.settings.id.clone(),
                name: a.settings.name.clone(),
                status: a.status,
                state: StateName::from(&a.state),
                reachable: a.reachable,
                calls: a.calls,
                skills: a.settings.skills.clone(),
                languages: a.settings.languages.clone(),
                caller: match a.state {
                    State::Idle => None,
                    _ => a.caller.as_ref().map(|c| CallerLive {
                        number: c.number.clone(),
                        display: c.display.clone(),
                        queue: c.queue.clone(),
                        callback: c.callback,
                    }),
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acd::{AcdEvent, AgentSettings, CallKey, Profile, QueueSettings};

    fn agent(id: &str) -> AgentSettings {
        AgentSettings {
            id: id.into(),
            name: id.to_uppercase(),
            skills: [("kundtjanst".to_string(), 1)].into(),
            languages: vec!["sv".into()],
            available_on_register: true,
        }
    }

    #[test]
    fn a_view_counts_agents_by_status_and_state_and_shows_who_rings() {
        let t0 = Instant::now();
        let mut acd = Acd::new(
            t0,
            vec![agent("anna"), agent("bo"), agent("cilla")],
            vec![QueueSettings::new("kundtjanst")],
        );
        for a in ["anna", "bo"] {
            acd.handle(
                t0,
                AcdEvent::Reachable {
                    agent: a.into(),
                    reachable: true,
                },
            );
            acd.handle(
                t0,
                AcdEvent::SetStatus {
                    agent: a.into(),
                    status: Status::Available,
                },
            );
        }
        acd.handle(
            t0,
            AcdEvent::SetStatus {
                agent: "cilla".into(),
                status: Status::OnBreak,
            },
        );
        let call = CallKey { shard: 0, call: 7 };
        acd.handle(
            t0,
            AcdEvent::Enqueued {
                call,
                queue: "kundtjanst".into(),
                priority: 0,
                caller: "Eva +46701234567".into(),
                profile: Profile {
                    number: "+46701234567".into(),
                    ..Profile::default()
                },
            },
        );
        let q = &acd.queue_views(t0 + Duration::from_millis(2500))[0];
        assert_eq!(q.queue, "kundtjanst");
        assert_eq!(q.waiting, 1, "ringing callers still wait");
        assert_eq!(q.longest_wait_s, 2, "whole seconds");
        assert_eq!(
            q.agents,
            AgentCounts {
                staffed: 2,
                free: 1,
                ringing: 1,
                on_break: 1,
                ..Default::default()
            }
        );
        let agents = acd.agent_views();
        let ringing: Vec<_> = agents
            .iter()
            .filter(|a| a.state == StateName::Ringing)
            .collect();
        assert_eq!(ringing.len(), 1);
        let shown = ringing[0]
            .caller
            .as_ref()
            .expect("the screen shows the caller");
        assert_eq!(shown.number, "+46701234567");
        assert_eq!(shown.display, "Eva +46701234567");
        assert!(agents
            .iter()
            .filter(|a| a.state == StateName::Idle)
            .all(|a| a.caller.is_none()));
    }
}
