//! What a call's flow reads: conditions on the caller, the history, the
//! variables and the clock; variables and `${…}` templates; the data a
//! webhook is sent. Pure, like the rest of the interpreter.

use super::{Customer, Interp, Lookup};
use crate::flow::hours::{parse_weekday, time_within};
use crate::flow::model::Test;
use std::time::Instant;

impl Interp {
    pub(super) fn local(&self, now: Instant) -> jiff::civil::DateTime {
        let ts = self
            .wall_start
            .checked_add(now.saturating_duration_since(self.started))
            .unwrap_or(self.wall_start);
        ts.to_zoned_datetime(self.flow.tz.clone()).datetime()
    }

    pub(super) fn customer(&self) -> Option<&Customer> {
        match &self.lookup {
            Lookup::Known(c) => Some(c),
            _ => None,
        }
    }

    pub(super) fn holds(&self, now: Instant, t: &Test) -> bool {
        let c = self.customer();
        let local = self.local(now);
        let hours = |name: &String| self.flow.doc.hours.get(name).map(|h| h.get_ref());
        t.known.is_none_or(|k| k == c.is_some())
            && t.tier.as_ref().is_none_or(|tiers| {
                c.and_then(|c| c.tier.as_ref())
                    .is_some_and(|tier| tiers.contains(tier))
            })
            && t.repeat
                .is_none_or(|r| r == c.is_some_and(|c| c.recent_calls > 0))
            && t.recent_calls_min
                .is_none_or(|n| c.is_some_and(|c| c.recent_calls >= n))
            && t.last_outcome
                .as_ref()
                .is_none_or(|o| c.and_then(|c| c.last_outcome.as_ref()) == Some(o))
            && t.language.as_ref().is_none_or(|l| *l == self.lang)
            && t.vars.as_ref().is_none_or(|vs| {
                vs.iter()
                    .all(|(k, v)| self.var(k).as_deref() == Some(v.as_str()))
            })
            && t.open
                .as_ref()
                .is_none_or(|n| hours(n).is_some_and(|h| h.is_open(local)))
            && t.holiday
                .as_ref()
                .is_none_or(|n| hours(n).is_some_and(|h| h.is_holiday(local.date())))
            && t.weekday
                .as_ref()
                .is_none_or(|ws| ws.iter().any(|w| parse_weekday(w) == Some(local.weekday())))
            && t.time
                .as_ref()
                .is_none_or(|spec| time_within(spec, local.time()))
    }

    /// A variable's value: set ones first, then the built-ins.
    pub fn var(&self, name: &str) -> Option<String> {
        if let Some(v) = self.vars.get(name) {
            return Some(v.clone());
        }
        let c = self.customer();
        match name {
            "caller" => Some(self.caller.clone()),
            "dialled" => Some(self.dialled.clone()),
            "language" => Some(self.lang.clone()),
            "flow" => Some(self.flow.name.clone()),
            "customer_name" => c.and_then(|c| c.name.clone()),
            "customer_tier" => c.and_then(|c| c.tier.clone()),
            "last_agent" => c.and_then(|c| c.last_agent.clone()),
            _ => None,
        }
    }

    pub(super) fn expand(&self, template: &str) -> String {
        let mut out = String::new();
        let mut rest = template;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let Some(j) = after.find('}') else {
                out.push_str(&rest[i..]);
                return out;
            };
            out.push_str(&self.var(&after[..j]).unwrap_or_default());
            rest = &after[j + 1..];
        }
        out.push_str(rest);
        out
    }

    pub(super) fn webhook_body(&self) -> serde_json::Value {
        let c = self.customer();
        serde_json::json!({
            "caller": self.caller,
            "dialled": self.dialled,
            "flow": self.flow.name,
            "flow_version": self.flow.version,
            "step": self.step,
            "language": self.lang,
            "known": c.is_some(),
            "customer": c.map(|c| serde_json::json!({
                "name": c.name, "tier": c.tier, "recent_calls": c.recent_calls,
                "last_outcome": c.last_outcome, "last_agent": c.last_agent,
            })),
            "vars": self.vars,
        })
    }
}

pub(super) fn needs_customer(t: &Test) -> bool {
    t.known.is_some()
        || t.tier.is_some()
        || t.repeat.is_some()
        || t.recent_calls_min.is_some()
        || t.last_outcome.is_some()
        || t.language.is_some()
}
