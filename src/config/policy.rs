//! The parts of `vaxel.toml` that say how queues route and what they do under
//! load, and where callbacks may go: `[queues.X.routing]`, `[policies.NAME]`
//! (high-load policies a queue names with `high_load = "NAME"`) and
//! `[callbacks]`. Typed and validated at load; converted to the ACD's
//! settings here.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// How a queue picks among agents for a caller (see `acd::route`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// A caller's last agent is offered them first if that call was within
    /// this many days (0: no stickiness).
    pub sticky_days: u32,
    /// How long a caller waits for a busy last agent before others are offered.
    pub sticky_wait_s: u64,
    /// The pool widens by skill level as the wait grows: `[{ after_s = 0,
    /// level = 1 }, { after_s = 30, level = 2 }]`. Empty: all levels at once.
    pub widen: Vec<WidenStep>,
    /// Added to the priority of callers who called within the repeat window.
    pub repeat_priority: i32,
    /// Added to the priority of customers by tier: `{ gold = 20 }`.
    pub tier_priority: BTreeMap<String, i32>,
    /// How long a caller waits for an agent who speaks their language.
    pub language_wait_s: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WidenStep {
    pub after_s: u64,
    pub level: u8,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        let d = crate::acd::Routing::default();
        RoutingConfig {
            sticky_days: d.sticky_days,
            sticky_wait_s: d.sticky_wait.as_secs(),
            widen: Vec::new(),
            repeat_priority: d.repeat_priority,
            tier_priority: BTreeMap::new(),
            language_wait_s: d.language_wait.as_secs(),
        }
    }
}

impl RoutingConfig {
    pub fn validate(&self, queue: &str) -> Result<(), String> {
        let mut last = None;
        for (i, s) in self.widen.iter().enumerate() {
            if !(1..=9).contains(&s.level) {
                return Err(format!(
                    "queues.{queue}.routing.widen[{i}]: level {} must be 1–9",
                    s.level
                ));
            }
            if i == 0 && s.after_s != 0 {
                return Err(format!(
                    "queues.{queue}.routing.widen[0]: the first step must have after_s = 0"
                ));
            }
            if last.is_some_and(|(a, l)| s.after_s <= a || s.level <= l) {
                return Err(format!(
                    "queues.{queue}.routing.widen[{i}]: steps must grow in after_s and in level"
                ));
            }
            last = Some((s.after_s, s.level));
        }
        Ok(())
    }

    pub fn routing(&self) -> crate::acd::Routing {
        crate::acd::Routing {
            sticky_days: self.sticky_days,
            sticky_wait: Duration::from_secs(self.sticky_wait_s),
            widen: self
                .widen
                .iter()
                .map(|s| (Duration::from_secs(s.after_s), s.level))
                .collect(),
            repeat_priority: self.repeat_priority,
            tier_priority: self.tier_priority.clone(),
            language_wait: Duration::from_secs(self.language_wait_s),
        }
    }
}

/// A high-load policy: on when any `enter_*` threshold is reached, off when
/// every `leave_*` one is met again, at least `min_s` in each state.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    pub enter_ewt_s: Option<u64>,
    pub enter_waiting: Option<usize>,
    pub enter_available: Option<usize>,
    pub leave_ewt_s: Option<u64>,
    pub leave_waiting: Option<usize>,
    pub leave_available: Option<usize>,
    pub min_s: u64,
    /// A prompt played to callers entering while on.
    pub announcement: Option<String>,
    /// Callers entering while on go to their flow's `on_high_load` step.
    pub offer_callback: bool,
    /// Callers entering while on go to this queue instead.
    pub overflow: Option<String>,
    /// Agents' wrap-up while on.
    pub wrap_up_s: Option<u64>,
}

impl PolicyConfig {
    pub fn validate(&self, name: &str) -> Result<(), String> {
        if self.enter_ewt_s.is_none()
            && self.enter_waiting.is_none()
            && self.enter_available.is_none()
        {
            return Err(format!(
                "policies.{name}: give at least one of enter_ewt_s, enter_waiting, enter_available"
            ));
        }
        let below = |enter: Option<u64>, leave: Option<u64>| match (enter, leave) {
            (Some(e), Some(l)) => l < e,
            _ => true,
        };
        if !below(self.enter_ewt_s, self.leave_ewt_s)
            || !below(
                self.enter_waiting.map(|v| v as u64),
                self.leave_waiting.map(|v| v as u64),
            )
        {
            return Err(format!(
                "policies.{name}: each leave_* threshold must be below its enter_* one (hysteresis)"
            ));
        }
        if let (Some(e), Some(l)) = (self.enter_available, self.leave_available) {
            if l <= e {
                return Err(format!(
                    "policies.{name}: leave_available must be above enter_available (hysteresis)"
                ));
            }
        }
        Ok(())
    }

    pub fn policy(&self, name: &str) -> crate::acd::load::HighLoadPolicy {
        let secs = |v: Option<u64>| v.map(Duration::from_secs);
        crate::acd::load::HighLoadPolicy {
            name: name.to_string(),
            enter_ewt: secs(self.enter_ewt_s),
            enter_waiting: self.enter_waiting,
            enter_available: self.enter_available,
            leave_ewt: secs(self.leave_ewt_s),
            leave_waiting: self.leave_waiting,
            leave_available: self.leave_available,
            min_duration: Duration::from_secs(self.min_s),
            announcement: self.announcement.clone(),
            offer_callback: self.offer_callback,
            overflow: self.overflow.clone(),
            wrap_up: secs(self.wrap_up_s),
        }
    }
}

/// Where callbacks may be dialled (DESIGN §6: no toll fraud).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallbacksConfig {
    /// The trunk (by name, with `outbound` set) callbacks go out through.
    pub trunk: Option<String>,
    /// Numbers other than the caller's own must match one of these
    /// (`+4670*`, `+46?????????`: `?` one digit, `*` any digits at the end).
    pub allowed: Vec<String>,
    /// Callbacks being dialled at once, at most.
    pub max_dialling: usize,
    /// The customer's phone rings this long.
    pub ring_s: u64,
    /// Callers who hang up after waiting this long go on the call-back list
    /// (0: never).
    pub list_abandoned_after_s: u64,
}

impl Default for CallbacksConfig {
    fn default() -> Self {
        CallbacksConfig {
            trunk: None,
            allowed: Vec::new(),
            max_dialling: 4,
            ring_s: 30,
            list_abandoned_after_s: 30,
        }
    }
}

impl CallbacksConfig {
    pub fn validate(&self) -> Result<(), String> {
        for p in &self.allowed {
            if !valid_pattern(p) {
                return Err(format!(
                    "callbacks.allowed: \"{p}\" is not a number pattern (digits, a leading +, ? for one digit, * only at the end)"
                ));
            }
        }
        if self.max_dialling == 0 {
            return Err("callbacks.max_dialling must be at least 1".into());
        }
        Ok(())
    }
}

fn valid_pattern(p: &str) -> bool {
    let body = p.strip_prefix('+').unwrap_or(p);
    let body = body.strip_suffix('*').unwrap_or(body);
    !p.is_empty() && body.chars().all(|c| c.is_ascii_digit() || c == '?')
}

/// Whether `number` matches one of the patterns (`?` one digit, a final `*`
/// any digits).
pub fn number_allowed(number: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|p| {
        let (p, open) = match p.strip_suffix('*') {
            Some(p) => (p, true),
            None => (p.as_str(), false),
        };
        let n: Vec<char> = number.chars().collect();
        let pc: Vec<char> = p.chars().collect();
        if n.len() < pc.len() || (!open && n.len() != pc.len()) {
            return false;
        }
        let head = pc.iter().zip(&n).all(|(p, c)| match p {
            '?' => c.is_ascii_digit(),
            p => p == c,
        });
        head && n.iter().skip(pc.len()).all(|c| c.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let p = vec!["+4670*".to_string(), "+46??1".to_string()];
        assert!(number_allowed("+46701234567", &p));
        assert!(number_allowed("+46991", &p));
        assert!(!number_allowed("+46992", &p));
        assert!(!number_allowed("+4690012345", &p));
        assert!(!number_allowed("+4670123x", &p));
        assert!(!number_allowed("+900123", &p));
        assert!(valid_pattern("+46*") && !valid_pattern("+4*6") && !valid_pattern("abc"));
    }
}
