//! Who is offered a waiting caller: the routing decision, pure, with the time
//! as input. The ACD calls it for each waiting caller (in priority order)
//! while agents are free; it says which free agent to ring, and why, or that
//! the caller waits for a better agent and until when.
//!
//! The rules, in order (each is data in the queue's `[queues.X.routing]`):
//!
//! 1. **Sticky**: a known caller whose last agent (within `sticky_days`) serves
//!    the queue and is signed in gets that agent first; while the caller has
//!    waited less than `sticky_wait`, nobody else is offered them (the agent
//!    may be on a call or in wrap-up). An agent who is logged out, on break or
//!    unreachable is not waited for.
//! 2. **Widening by skill level**: the pool starts at agents with the queue's
//!    skill at level `widen[0]` or better (1 is the strongest) and widens to
//!    each next level after its wait (Asterisk's queue rules and
//!    FreeSWITCH's tiers, as data). No steps: every level from the start.
//! 3. **Language**: when the caller's language is known (the customer's, or
//!    the call's), agents who speak it are preferred; others are offered the
//!    caller only after `language_wait`, and at once when nobody signed in
//!    for the queue speaks it (agents with no languages listed speak all).
//! 4. Among the remaining free agents, the queue's strategy picks.
//!
//! Priority (repeat callers, customer tiers) decides the order callers are
//! considered in; it is computed once at entry ([`Routing::priority`]).
//! Never does I/O, never reads the clock.

use super::{Agent, QueueSettings, Strategy};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What the engine knows about the caller, given to the ACD at entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    /// The caller's number (E.164 when it is one), for callbacks and lists.
    pub number: String,
    /// The agent of the caller's last answered call, and how long ago.
    pub last_agent: Option<(String, Duration)>,
    /// Called within the repeat window before this call.
    pub repeat: bool,
    pub tier: Option<String>,
    /// The customer's language, or the call's.
    pub language: Option<String>,
}

/// A queue's routing rules.
#[derive(Clone, Debug, PartialEq)]
pub struct Routing {
    /// How old a last agent may be to be sticky (0: no stickiness).
    pub sticky_days: u32,
    /// How long a caller waits for their last agent when that agent is busy.
    pub sticky_wait: Duration,
    /// Pool widening: (after this wait, skill levels up to this one).
    pub widen: Vec<(Duration, u8)>,
    /// Added to a repeat caller's priority.
    pub repeat_priority: i32,
    /// Added to the priority of customers of each tier.
    pub tier_priority: BTreeMap<String, i32>,
    /// How long a caller waits for an agent speaking their language.
    pub language_wait: Duration,
}

impl Default for Routing {
    fn default() -> Routing {
        Routing {
            sticky_days: 30,
            sticky_wait: Duration::from_secs(30),
            widen: Vec::new(),
            repeat_priority: 10,
            tier_priority: BTreeMap::new(),
            language_wait: Duration::from_secs(20),
        }
    }
}

impl Routing {
    /// The caller's priority in the queue: the flow's, plus the repeat and
    /// tier boosts; with the reason when a boost applied.
    pub fn priority(&self, flow_priority: i32, p: &Profile) -> (i32, Option<String>) {
        let mut prio = flow_priority;
        let mut why = Vec::new();
        if p.repeat && self.repeat_priority != 0 {
            prio = prio.saturating_add(self.repeat_priority);
            why.push(format!("repeat caller +{}", self.repeat_priority));
        }
        if let Some((tier, boost)) = p
            .tier
            .as_ref()
            .and_then(|t| self.tier_priority.get(t).map(|b| (t, *b)))
        {
            prio = prio.saturating_add(boost);
            why.push(format!("tier {tier} +{boost}"));
        }
        let why = (!why.is_empty()).then(|| format!("priority {prio}: {}", why.join(", ")));
        (prio, why)
    }

    /// The best (lowest number) skill level allowed after waiting `waited`,
    /// and the wait at which that level was reached (for the reason).
    fn level(&self, waited: Duration) -> (u8, Option<Duration>) {
        let mut level = u8::MAX;
        let mut since = None;
        for (i, (after, l)) in self.widen.iter().enumerate() {
            if i == 0 || waited >= *after {
                level = *l;
                since = (i > 0).then_some(*after);
            }
        }
        (level, since)
    }

    /// When the pool next changes for a caller who entered at `entered`.
    pub fn next_change(&self, entered: Instant, now: Instant, p: &Profile) -> Option<Instant> {
        let sticky = (self.sticky_days > 0 && p.last_agent.is_some()).then_some(self.sticky_wait);
        let lang = p.language.as_ref().map(|_| self.language_wait);
        let steps = self.widen.iter().skip(1).map(|(after, _)| *after);
        steps
            .chain(sticky)
            .chain(lang)
            .map(|d| entered + d)
            .filter(|t| *t > now)
            .min()
    }
}

/// The caller as routing sees them.
pub struct Caller<'a> {
    pub profile: &'a Profile,
    pub waited: Duration,
    /// Agents not to offer this caller (missed it recently).
    pub excluded: &'a [(String, Instant)],
    /// The last agent is signed in (available, reachable), so worth waiting for.
    pub last_agent_on: bool,
    /// Someone signed in for the queue speaks the caller's language, so
    /// worth waiting for.
    pub speaker_on: bool,
}

/// The decision for one waiting caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Ring this agent; the reason goes into the call record.
    Offer { agent: String, reason: String },
    /// Nobody suitable is free: the caller waits.
    Wait,
}

/// The agent's skill level for `skill` (agents with no skills serve every
/// queue, at level 1).
pub fn skill_level(a: &Agent, skill: &str) -> Option<u8> {
    if a.settings.skills.is_empty() {
        return Some(1);
    }
    a.settings.skills.get(skill).copied()
}

/// Decides for one caller among the free agents (available, idle, reachable).
pub fn decide(now: Instant, q: &QueueSettings, caller: &Caller<'_>, free: &[&Agent]) -> Decision {
    let r = &q.routing;
    let allowed = |a: &Agent| {
        !caller
            .excluded
            .iter()
            .any(|(x, t)| *x == a.settings.id && now < *t)
    };
    // 1. Sticky.
    if let Some((last, ago)) = caller.profile.last_agent.as_ref() {
        let recent = r.sticky_days > 0 && *ago <= Duration::from_secs(86_400) * r.sticky_days;
        if recent {
            if let Some(a) = free
                .iter()
                .find(|a| a.settings.id == *last && skill_level(a, &q.skill).is_some())
            {
                if allowed(a) {
                    return Decision::Offer {
                        agent: last.clone(),
                        reason: format!("sticky: last agent {last}"),
                    };
                }
            }
        }
    }
    let waiting_for_sticky = caller.waited < r.sticky_wait
        && caller
            .profile
            .last_agent
            .as_ref()
            .is_some_and(|(last, ago)| {
                r.sticky_days > 0
                    && *ago <= Duration::from_secs(86_400) * r.sticky_days
                    && caller.last_agent_on
                    && last.as_str() != ""
            });
    if waiting_for_sticky {
        return Decision::Wait;
    }
    // 2. Skill level.
    let (level, widened_at) = r.level(caller.waited);
    let eligible = free
        .iter()
        .filter(|a| allowed(a))
        .filter(|a| skill_level(a, &q.skill).is_some_and(|l| l <= level));
    // 3. Language.
    let lang = caller.profile.language.as_deref();
    let speaks = |a: &Agent| lang.is_none_or(|l| speaks(a, l));
    let strict_language = lang.is_some() && caller.speaker_on && caller.waited < r.language_wait;
    let mut best: Option<(&Agent, bool)> = None;
    for a in eligible {
        let s = speaks(a);
        if strict_language && !s {
            continue;
        }
        best = match best {
            None => Some((a, s)),
            Some((b, bs)) => {
                // Speakers first, then the strategy.
                if (s && !bs) || (s == bs && better(q.strategy, a, b)) {
                    Some((a, s))
                } else {
                    Some((b, bs))
                }
            }
        };
    }
    let Some((a, spoke)) = best else {
        return Decision::Wait;
    };
    let mut reason = match q.strategy {
        Strategy::LongestIdle => "longest idle".to_string(),
        Strategy::RoundRobin => "round robin".to_string(),
        Strategy::FewestCalls => "fewest calls".to_string(),
    };
    if let Some(after) = widened_at {
        reason = format!(
            "widened to level {level} after {} s; {reason}",
            after.as_secs()
        );
    }
    if let (Some(l), true) = (lang, spoke) {
        reason = format!("language {l}; {reason}");
    }
    if let Some((last, _)) = caller.profile.last_agent.as_ref() {
        if *last != a.settings.id && r.sticky_days > 0 {
            reason = format!("last agent {last} not free; {reason}");
        }
    }
    Decision::Offer {
        agent: a.settings.id.clone(),
        reason,
    }
}

/// Whether the agent speaks `lang` (agents with no languages listed are
/// not restricted).
pub fn speaks(a: &Agent, lang: &str) -> bool {
    a.settings.languages.is_empty() || a.settings.languages.iter().any(|x| x == lang)
}

/// Whether `a` beats `b` under the strategy.
fn better(s: Strategy, a: &Agent, b: &Agent) -> bool {
    match s {
        Strategy::LongestIdle => (a.idle_since, a.last_offered) < (b.idle_since, b.last_offered),
        Strategy::RoundRobin => a.last_offered < b.last_offered,
        Strategy::FewestCalls => (a.calls, a.idle_since) < (b.calls, b.idle_since),
    }
}
