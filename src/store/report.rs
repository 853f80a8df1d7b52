//! What the HTTP API reads from the store: a queue's figures over an
//! interval (DESIGN §4 defines each), call records filtered and paged, a
//! customer's history, callbacks, and the outcomes agents set in wrap-up.
//!
//! The figures are computed in [`summarise`], a pure function over the
//! interval's call rows, so their definitions are tested without a database;
//! the queries only fetch rows.

use super::{ms, Store, StoreError};
use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

/// Abandons shorter than this are left out of the service level (a caller
/// who hung up at once never really waited).
pub const SHORT_ABANDON_MS: i64 = 5_000;

/// How the service level is computed, named in every answer.
pub const SERVICE_LEVEL_FORMULA: &str =
    "answered within T / (answered + abandoned after T); abandons under 5 s left out";

/// One call row as the figures need it.
#[derive(Clone, Debug, Default)]
pub struct CallRow {
    pub started_ms: i64,
    pub caller: String,
    pub outcome: String,
    pub wait_ms: Option<i64>,
    pub talk_ms: Option<i64>,
    pub ewt_ms: Option<i64>,
    pub to_human_ms: Option<i64>,
    pub closed: bool,
}

/// What the figures of a queue depend on besides the rows.
#[derive(Clone, Debug)]
pub struct ReportParams {
    pub from_ms: i64,
    pub to_ms: i64,
    /// The service-level threshold T.
    pub service_level_s: u64,
    /// The queue's wrap-up (part of the handle time).
    pub wrap_up_s: u64,
    /// A callback completed within this of its booking kept its promise.
    pub callback_promise_s: u64,
    /// Calls within this window before a call make it a repeat call.
    pub repeat_ms: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct ServiceLevel {
    pub threshold_s: u64,
    pub formula: &'static str,
    /// 0..1; none when nobody was answered or abandoned after T.
    pub value: Option<f64>,
    pub answered_within: u64,
    pub abandoned_after: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct CallbackFigures {
    /// Booked and not yet completed or given up (now, whatever the interval).
    pub pending: u64,
    /// Booked in the interval.
    pub booked: u64,
    /// Booked in the interval and connected to an agent.
    pub completed: u64,
    /// Booked in the interval and given up after every attempt.
    pub failed: u64,
    /// Completed within the promise after booking.
    pub kept_within_promise: u64,
    pub promise_s: u64,
    /// Callers who gave up after a long wait, listed to be called back.
    pub listed: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct Percentiles {
    pub calls: u64,
    pub p50_s: Option<f64>,
    pub p90_s: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct HourFigures {
    /// Hour of the day in the queue's time zone (0–23).
    pub hour: u8,
    /// Calls that entered the queue in this hour.
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    /// Calls that asked for the queue while it was closed.
    pub closed: u64,
    /// The queue is open during this hour (at its half).
    pub open: bool,
}

/// A queue's figures over an interval (DESIGN §4).
#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct QueueReport {
    pub queue: String,
    /// RFC 3339.
    pub from: String,
    pub to: String,
    /// Calls that entered the queue.
    pub offered: u64,
    /// Connected to an agent.
    pub answered: u64,
    /// Hung up while waiting, after at least 5 s.
    pub abandoned: u64,
    /// Hung up while waiting, within 5 s (apart from `abandoned`).
    pub short_abandoned: u64,
    /// Left the line with a callback booked (apart from abandons).
    pub callbacks_booked: u64,
    /// Asked for the queue while it was closed.
    pub closed: u64,
    pub service_level: ServiceLevel,
    /// Average speed of answer: mean wait of answered calls, seconds.
    pub asa_s: Option<f64>,
    /// Average handle time: talk plus the queue's wrap-up, seconds (hold is
    /// part of talk).
    pub aht_s: Option<f64>,
    pub callbacks: CallbackFigures,
    /// Mean absolute error of the announced estimated wait against the actual
    /// wait of answered calls, seconds.
    pub ewt_error_s: Option<f64>,
    pub ewt_samples: u64,
    /// Share of this queue's calls whose caller had called within the repeat
    /// window before.
    pub repeat_rate: Option<f64>,
    pub repeat_calls: u64,
    /// From the answer to an agent connected, callers who pressed the human key.
    pub time_to_human: Percentiles,
    pub per_hour: Vec<HourFigures>,
}

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (n, s) = v.fold((0u64, 0.0), |(n, s), x| (n + 1, s + x));
    (n > 0).then(|| s / n as f64)
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).map(|v| *v as f64 / 1000.0)
}

fn round1(v: Option<f64>) -> Option<f64> {
    v.map(|x| (x * 10.0).round() / 10.0)
}

/// The figures of one queue from its rows in the interval. `earlier` holds
/// every call (any queue) that started in the repeat window before each
/// row, as (caller, started_ms), for the repeat-caller rate; `hour_of` maps a
/// start time to the local hour and `open_at` says whether an hour is open.
pub fn summarise(
    queue: &str,
    rows: &[CallRow],
    earlier: &[(String, i64)],
    p: &ReportParams,
    hour_of: impl Fn(i64) -> u8,
    open_in: impl Fn(u8) -> bool,
) -> QueueReport {
    let t_ms = p.service_level_s as i64 * 1000;
    let mut r = QueueReport {
        queue: queue.to_string(),
        ..Default::default()
    };
    let mut hours: Vec<HourFigures> = (0..24u8)
        .map(|hour| HourFigures {
            hour,
            open: open_in(hour),
            ..Default::default()
        })
        .collect();
    let mut to_human = Vec::new();
    let mut waits = Vec::new();
    let mut talks = Vec::new();
    let mut errors = Vec::new();
    for c in rows {
        let hour = hours.get_mut(usize::from(hour_of(c.started_ms)));
        if c.closed {
            r.closed += 1;
            if let Some(h) = hour {
                h.closed += 1;
            }
            continue;
        }
        let Some(wait) = c.wait_ms else { continue };
        r.offered += 1;
        let mut h = hour;
        if let Some(h) = h.as_deref_mut() {
            h.offered += 1;
        }
        match c.outcome.as_str() {
            "answered" => {
                r.answered += 1;
                if let Some(h) = h.as_deref_mut() {
                    h.answered += 1;
                }
                if wait <= t_ms {
                    r.service_level.answered_within += 1;
                }
                waits.push(wait as f64 / 1000.0);
                if let Some(t) = c.talk_ms {
                    talks.push(t as f64 / 1000.0 + p.wrap_up_s as f64);
                }
                if let Some(e) = c.ewt_ms {
                    errors.push((e - wait).abs() as f64 / 1000.0);
                }
                if let Some(t) = c.to_human_ms {
                    to_human.push(t);
                }
            }
            "abandoned" if wait < SHORT_ABANDON_MS => r.short_abandoned += 1,
            "abandoned" => {
                r.abandoned += 1;
                if let Some(h) = h {
                    h.abandoned += 1;
                }
                if wait > t_ms {
                    r.service_level.abandoned_after += 1;
                }
            }
            "callback" => r.callbacks_booked += 1,
            _ => {}
        }
    }
    let sl = &mut r.service_level;
    sl.threshold_s = p.service_level_s;
    sl.formula = SERVICE_LEVEL_FORMULA;
    let base = r.answered + sl.abandoned_after;
    sl.value = (base > 0).then(|| sl.answered_within as f64 / base as f64);
    r.asa_s = round1(mean(waits.into_iter()));
    r.aht_s = round1(mean(talks.into_iter()));
    r.ewt_samples = errors.len() as u64;
    r.ewt_error_s = round1(mean(errors.into_iter()));
    to_human.sort_unstable();
    r.time_to_human = Percentiles {
        calls: to_human.len() as u64,
        p50_s: round1(percentile(&to_human, 0.5)),
        p90_s: round1(percentile(&to_human, 0.9)),
    };
    // A call repeats when the same caller called (anywhere) within the window
    // before it.
    let mut by_caller: std::collections::HashMap<&str, Vec<i64>> = Default::default();
    for (caller, at) in earlier {
        by_caller.entry(caller.as_str()).or_default().push(*at);
    }
    let counted: Vec<&CallRow> = rows.iter().filter(|c| !c.caller.is_empty()).collect();
    r.repeat_calls = counted
        .iter()
        .filter(|c| {
            by_caller.get(c.caller.as_str()).is_some_and(|v| {
                v.iter()
                    .any(|t| *t < c.started_ms && *t >= c.started_ms - p.repeat_ms)
            })
        })
        .count() as u64;
    r.repeat_rate = (!counted.is_empty()).then(|| r.repeat_calls as f64 / counted.len() as f64);
    r.per_hour = hours;
    r
}

/// One call record as the API shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CallView {
    pub call_id: String,
    /// RFC 3339.
    pub started: String,
    pub ended: String,
    pub caller: String,
    pub dialled: String,
    pub flow: String,
    pub flow_version: String,
    pub path: String,
    pub outcome: String,
    pub ended_by: String,
    pub queue: Option<String>,
    pub agent: Option<String>,
    pub wait_ms: Option<i64>,
    pub talk_ms: Option<i64>,
    pub ewt_ms: Option<i64>,
    pub route: Option<String>,
    pub closed: bool,
}

/// Which call records to list (all filters optional), newest first.
#[derive(Clone, Debug, Default)]
pub struct CallFilter {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub queue: Option<String>,
    pub agent: Option<String>,
    pub caller: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CallbackView {
    pub id: String,
    pub number: String,
    pub queue: String,
    pub requested: String,
    /// `pending`, `completed`, `failed` or `listed` (a caller who gave up).
    pub status: String,
    pub attempts: i64,
    /// The caller's own number (others matched the allowed patterns).
    pub own: bool,
    /// `booked` or `abandoned`.
    pub source: String,
    pub wait_ms: Option<i64>,
    pub updated: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OutcomeView {
    pub agent: String,
    pub queue: Option<String>,
    pub at: String,
    pub resolved: bool,
    pub note: Option<String>,
}

/// A customer and their history, for an agent's screen and the API.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CustomerView {
    pub number: String,
    pub name: Option<String>,
    pub language: Option<String>,
    pub tier: Option<String>,
    pub value: Option<i64>,
    pub notes: Option<String>,
    /// The latest calls, newest first.
    pub calls: Vec<CallView>,
    pub callbacks: Vec<CallbackView>,
    /// What agents set in wrap-up, newest first.
    pub outcomes: Vec<OutcomeView>,
}

fn rfc3339(ms_: i64) -> String {
    jiff::Timestamp::from_millisecond(ms_)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

const CALL_COLUMNS: &str = "call_id, started_ms, ended_ms, caller, dialled, flow, flow_version, path, outcome, ended_by, queue, agent, wait_ms, talk_ms, ewt_ms, route, closed";

fn call_view(r: &sqlx::any::AnyRow) -> Result<CallView, sqlx::Error> {
    Ok(CallView {
        call_id: r.try_get("call_id")?,
        started: rfc3339(r.try_get("started_ms")?),
        ended: rfc3339(r.try_get("ended_ms")?),
        caller: r.try_get("caller")?,
        dialled: r.try_get("dialled")?,
        flow: r.try_get("flow")?,
        flow_version: r.try_get("flow_version")?,
        path: r.try_get("path")?,
        outcome: r.try_get("outcome")?,
        ended_by: r.try_get("ended_by")?,
        queue: r.try_get("queue")?,
        agent: r.try_get("agent")?,
        wait_ms: r.try_get("wait_ms")?,
        talk_ms: r.try_get("talk_ms")?,
        ewt_ms: r.try_get("ewt_ms")?,
        route: r.try_get("route")?,
        closed: r.try_get::<i64, _>("closed")? != 0,
    })
}

fn callback_view(r: &sqlx::any::AnyRow) -> Result<CallbackView, sqlx::Error> {
    Ok(CallbackView {
        id: r.try_get("call_id")?,
        number: r.try_get("number")?,
        queue: r.try_get("queue")?,
        requested: rfc3339(r.try_get("requested_ms")?),
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        own: r.try_get::<i64, _>("own")? != 0,
        source: r.try_get("source")?,
        wait_ms: r.try_get("wait_ms")?,
        updated: r.try_get::<Option<i64>, _>("updated_ms")?.map(rfc3339),
    })
}

const CALLBACK_COLUMNS: &str =
    "call_id, number, queue, requested_ms, status, attempts, own, source, wait_ms, updated_ms";

impl Store {
    /// A queue's call rows in `[from, to)`, and the calls in the repeat
    /// window before them (for the repeat-caller rate).
    pub async fn queue_rows(
        &self,
        queue: &str,
        from_ms: i64,
        to_ms: i64,
        repeat_ms: i64,
    ) -> Result<(Vec<CallRow>, Vec<(String, i64)>), StoreError> {
        let rows = sqlx::query(
            "SELECT started_ms, caller, outcome, wait_ms, talk_ms, ewt_ms, to_human_ms, closed FROM calls WHERE queue = $1 AND started_ms >= $2 AND started_ms < $3",
        )
        .bind(queue)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(CallRow {
                started_ms: r.try_get("started_ms")?,
                caller: r.try_get("caller")?,
                outcome: r.try_get("outcome")?,
                wait_ms: r.try_get("wait_ms")?,
                talk_ms: r.try_get("talk_ms")?,
                ewt_ms: r.try_get("ewt_ms")?,
                to_human_ms: r.try_get("to_human_ms")?,
                closed: r.try_get::<i64, _>("closed")? != 0,
            });
        }
        let earlier = sqlx::query(
            "SELECT caller, started_ms FROM calls WHERE started_ms >= $1 AND started_ms < $2 AND caller IN (SELECT caller FROM calls WHERE queue = $3 AND started_ms >= $4 AND started_ms < $2)",
        )
        .bind(from_ms - repeat_ms)
        .bind(to_ms)
        .bind(queue)
        .bind(from_ms)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("caller")?, r.try_get("started_ms")?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok((out, earlier))
    }

    /// A queue's callbacks: pending now, and those booked in `[from, to)`
    /// with their outcome.
    pub async fn callback_figures(
        &self,
        queue: &str,
        from_ms: i64,
        to_ms: i64,
        promise_s: u64,
    ) -> Result<CallbackFigures, StoreError> {
        let pending: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM callbacks WHERE queue = $1 AND status = 'pending'",
        )
        .bind(queue)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        let rows = sqlx::query(
            "SELECT status, requested_ms, updated_ms FROM callbacks WHERE queue = $1 AND requested_ms >= $2 AND requested_ms < $3",
        )
        .bind(queue)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        let mut f = CallbackFigures {
            pending: pending.max(0) as u64,
            promise_s,
            ..Default::default()
        };
        for r in &rows {
            let status: String = r.try_get("status")?;
            let requested: i64 = r.try_get("requested_ms")?;
            let updated: Option<i64> = r.try_get("updated_ms")?;
            match status.as_str() {
                "listed" => f.listed += 1,
                "completed" => {
                    f.booked += 1;
                    f.completed += 1;
                    if updated.is_some_and(|u| u - requested <= promise_s as i64 * 1000) {
                        f.kept_within_promise += 1;
                    }
                }
                "failed" => {
                    f.booked += 1;
                    f.failed += 1;
                }
                _ => f.booked += 1,
            }
        }
        Ok(f)
    }

    /// Call records, newest first, filtered and paged.
    pub async fn calls(&self, f: &CallFilter) -> Result<Vec<CallView>, StoreError> {
        // Each filter is a fixed clause with its own parameter: no user text
        // ever becomes SQL.
        let mut sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE 1 = 1");
        let mut n = 0;
        let mut clause = |sql: &mut String, c: &str| {
            n += 1;
            sql.push_str(&format!(" AND {c} ${n}"));
        };
        if f.from_ms.is_some() {
            clause(&mut sql, "started_ms >=");
        }
        if f.to_ms.is_some() {
            clause(&mut sql, "started_ms <");
        }
        if f.queue.is_some() {
            clause(&mut sql, "queue =");
        }
        if f.agent.is_some() {
            clause(&mut sql, "agent =");
        }
        if f.caller.is_some() {
            clause(&mut sql, "caller =");
        }
        sql.push_str(&format!(
            " ORDER BY started_ms DESC, call_id LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        ));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(v) = f.from_ms {
            q = q.bind(v);
        }
        if let Some(v) = f.to_ms {
            q = q.bind(v);
        }
        for v in [&f.queue, &f.agent, &f.caller].into_iter().flatten() {
            q = q.bind(v.clone());
        }
        let rows = q.bind(f.limit).bind(f.offset).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(call_view).collect::<Result<_, _>>()?)
    }

    /// Callbacks, newest first, optionally by status and queue.
    pub async fn callbacks(
        &self,
        status: Option<&str>,
        queue: Option<&str>,
        limit: i64,
    ) -> Result<Vec<CallbackView>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CALLBACK_COLUMNS} FROM callbacks WHERE ($1 = '' OR status = $1) AND ($2 = '' OR queue = $2) ORDER BY requested_ms DESC, call_id LIMIT $3"
        )))
        .bind(status.unwrap_or("").to_string())
        .bind(queue.unwrap_or("").to_string())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(callback_view).collect::<Result<_, _>>()?)
    }

    /// A customer's record and history; `None` when the store has nothing
    /// about the number.
    pub async fn customer(&self, number: &str) -> Result<Option<CustomerView>, StoreError> {
        let row = sqlx::query(
            "SELECT name, language, tier, value, notes FROM customers WHERE number = $1",
        )
        .bind(number)
        .fetch_optional(&self.pool)
        .await?;
        let calls = self
            .calls(&CallFilter {
                caller: Some(number.to_string()),
                limit: 20,
                ..Default::default()
            })
            .await?;
        let callbacks = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CALLBACK_COLUMNS} FROM callbacks WHERE number = $1 ORDER BY requested_ms DESC LIMIT 20"
        )))
        .bind(number)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(callback_view)
        .collect::<Result<Vec<_>, _>>()?;
        let outcomes = sqlx::query(
            "SELECT agent, queue, at_ms, resolved, note FROM call_outcomes WHERE caller = $1 ORDER BY at_ms DESC LIMIT 20",
        )
        .bind(number)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(OutcomeView {
                agent: r.try_get("agent")?,
                queue: r.try_get("queue")?,
                at: rfc3339(r.try_get("at_ms")?),
                resolved: r.try_get::<i64, _>("resolved")? != 0,
                note: r.try_get("note")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        if row.is_none() && calls.is_empty() && callbacks.is_empty() {
            return Ok(None);
        }
        let get = |c: &str| -> Option<String> { row.as_ref().and_then(|r| r.try_get(c).ok()) };
        Ok(Some(CustomerView {
            number: number.to_string(),
            name: get("name"),
            language: get("language"),
            tier: get("tier"),
            value: row.as_ref().and_then(|r| r.try_get("value").ok()),
            notes: get("notes"),
            calls,
            callbacks,
            outcomes,
        }))
    }

    /// Keeps what an agent set in wrap-up.
    pub async fn record_outcome(
        &self,
        agent: &str,
        caller: Option<&str>,
        queue: Option<&str>,
        at: jiff::Timestamp,
        resolved: bool,
        note: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO call_outcomes (agent, caller, queue, at_ms, resolved, note) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(agent)
        .bind(caller)
        .bind(queue)
        .bind(ms(at))
        .bind(i64::from(resolved))
        .bind(note)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Calls answered by each agent since `from_ms`.
    pub async fn agent_calls_since(
        &self,
        from_ms: i64,
    ) -> Result<std::collections::HashMap<String, u64>, StoreError> {
        let rows = sqlx::query(
            "SELECT agent, COUNT(*) AS n FROM calls WHERE agent IS NOT NULL AND started_ms >= $1 GROUP BY agent",
        )
        .bind(from_ms)
        .fetch_all(&self.pool)
        .await?;
        let mut out = std::collections::HashMap::new();
        for r in &rows {
            let n: i64 = r.try_get("n")?;
            out.insert(r.try_get("agent")?, n.max(0) as u64);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(at_s: i64, caller: &str, outcome: &str, wait_s: Option<i64>) -> CallRow {
        CallRow {
            started_ms: at_s * 1000,
            caller: caller.into(),
            outcome: outcome.into(),
            wait_ms: wait_s.map(|w| w * 1000),
            talk_ms: (outcome == "answered").then_some(60_000),
            ..Default::default()
        }
    }

    fn params() -> ReportParams {
        ReportParams {
            from_ms: 0,
            to_ms: 86_400_000,
            service_level_s: 20,
            wrap_up_s: 10,
            callback_promise_s: 3600,
            repeat_ms: 7 * 86_400_000,
        }
    }

    #[test]
    fn service_level_counts_answers_within_t_against_answers_and_late_abandons() {
        let rows = vec![
            row(3600, "+461", "answered", Some(5)),
            row(3601, "+462", "answered", Some(19)),
            row(3602, "+463", "answered", Some(40)),
            // Abandoned after T: counts against the service level.
            row(3603, "+464", "abandoned", Some(30)),
            // Abandoned within T but after 5 s: an abandon, not in the SL.
            row(3604, "+465", "abandoned", Some(10)),
            // A short abandon: apart.
            row(3605, "+466", "abandoned", Some(2)),
            row(3606, "+467", "callback", Some(50)),
            CallRow {
                closed: true,
                ..row(7300, "+468", "voicemail", None)
            },
        ];
        let r = summarise(
            "q",
            &rows,
            &[],
            &params(),
            |ms| (ms / 3_600_000) as u8,
            |h| h >= 8,
        );
        assert_eq!(
            (r.offered, r.answered, r.abandoned, r.short_abandoned),
            (7, 3, 2, 1)
        );
        assert_eq!((r.callbacks_booked, r.closed), (1, 1));
        assert_eq!(r.service_level.answered_within, 2);
        assert_eq!(r.service_level.abandoned_after, 1);
        assert_eq!(r.service_level.value, Some(0.5));
        assert_eq!(r.asa_s, Some(21.3), "(5 + 19 + 40) / 3");
        assert_eq!(r.aht_s, Some(70.0), "talk 60 s + wrap-up 10 s");
        assert_eq!(r.per_hour[1].offered, 7);
        assert_eq!(r.per_hour[1].answered, 3);
        assert_eq!(r.per_hour[2].closed, 1);
        assert!(!r.per_hour[2].open && r.per_hour[9].open);
    }

    #[test]
    fn repeat_callers_are_those_who_called_within_the_window_before() {
        let rows = vec![
            row(10 * 86_400, "+461", "answered", Some(1)),
            row(10 * 86_400, "+462", "answered", Some(1)),
            row(10 * 86_400 + 60, "+462", "answered", Some(1)),
        ];
        let earlier = vec![
            // Eight days before: outside the 7-day window.
            ("+461".to_string(), 2 * 86_400_000),
            ("+462".to_string(), 10 * 86_400_000),
            ("+462".to_string(), (10 * 86_400 + 60) * 1000),
        ];
        let r = summarise("q", &rows, &earlier, &params(), |_| 0, |_| true);
        assert_eq!(r.repeat_calls, 1, "only +462's second call repeats");
        assert!((r.repeat_rate.unwrap() - 1.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn time_to_human_and_estimate_error_come_from_answered_calls() {
        let mut rows = Vec::new();
        for i in 1..=10 {
            rows.push(CallRow {
                to_human_ms: Some(i * 1000),
                ewt_ms: Some(30_000),
                ..row(i, "", "answered", Some(20))
            });
        }
        let r = summarise("q", &rows, &[], &params(), |_| 0, |_| true);
        assert_eq!(r.time_to_human.calls, 10);
        assert_eq!(r.time_to_human.p50_s, Some(5.0));
        assert_eq!(r.time_to_human.p90_s, Some(9.0));
        assert_eq!(r.ewt_error_s, Some(10.0));
        assert_eq!(r.ewt_samples, 10);
        assert_eq!(r.repeat_rate, None, "no caller numbers");
    }
}
