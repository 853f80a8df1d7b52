//! Where calls meet their flow: the engine feeds each call's
//! [`Interp`](crate::flow::interp::Interp) (answer, keys, prompt ends, the
//! store's lookup, webhook replies, deadlines) and carries out what it asks
//! (prompts, hold music, recordings, webhooks, store work, hang-up). Also
//! writes the call record when a call ends. Pure, like the rest of the engine.

use super::call::{Call, CallRef};
use super::record::{CallRecord, StoreRequest};
use super::{Engine, Output};
use crate::flow::interp::{
    Customer, FlowAction, FlowEvent, Interp, Lookup, QueueLimit, WebhookReply,
};
use crate::sip::message::{HeaderName, Request};
use std::time::{Duration, Instant};

impl Engine {
    /// Wall time at `now`, from the anchor the runtime sets.
    pub(super) fn wall(&self, now: Instant) -> jiff::Timestamp {
        match self.wall_anchor {
            Some((at, wall)) if now >= at => wall.checked_add(now - at).unwrap_or(wall),
            Some((at, wall)) => wall.checked_sub(at - now).unwrap_or(wall),
            None => jiff::Timestamp::UNIX_EPOCH,
        }
    }

    /// The call's media is up: its flow starts.
    pub(super) fn start_flow(&mut self, now: Instant, id: CallRef) {
        let wall = self.wall(now);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.app.is_some() {
            return;
        }
        call.answered_at = Some(now);
        call.answered_wall = Some(wall);
        if let Some((agent, code)) = call.feature.clone() {
            // The ACD changes the status; the phone hears it confirmed.
            let prompt = format!("{}/{}", call.flow.default_language(), code.prompt());
            let p = call.flows.prompts.get(&prompt).cloned();
            call.span
                .in_scope(|| tracing::info!(%agent, ?code, "agent feature code"));
            match (call.media.as_mut(), p) {
                (Some(m), Some(p)) => m.play(vec![p]),
                _ => tracing::warn!(%prompt, "feature-code prompt missing"),
            }
            self.stats.feature_codes += 1;
            self.tell_acd(crate::acd::AcdEvent::SetStatus {
                agent,
                status: code.status(),
            });
            return;
        }
        let caller = call.number().to_string();
        let interp = Interp::start(
            call.flows.clone(),
            call.flow.clone(),
            &caller,
            &call.dialled,
            call.lookup.clone(),
            now,
            wall,
        );
        call.span.in_scope(
            || tracing::debug!(flow = %call.flow.name, version = %call.flow.version, "flow started"),
        );
        call.app = Some(interp);
        self.run_actions(now, id);
    }

    pub(super) fn app_event(&mut self, now: Instant, id: CallRef, ev: FlowEvent) {
        let Some(app) = self.calls.get_mut(&id).and_then(|c| c.app.as_mut()) else {
            return;
        };
        app.handle(now, ev);
        self.run_actions(now, id);
    }

    /// Deadlines of the flow and of the caller lookup.
    pub(super) fn app_timeout(&mut self, now: Instant, id: CallRef) {
        let timeout = self.cfg.lookup_timeout;
        let timeout_ms = timeout.as_millis() as u64;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.lookup_deadline(timeout).is_some_and(|d| now >= d) {
            call.lookup = Lookup::Unknown;
            self.stats.lookup_timeouts += 1;
            call.span.in_scope(|| {
                tracing::warn!(
                    ms = timeout_ms,
                    "customer lookup did not answer in time; the call goes on as unknown"
                )
            });
            if let Some(app) = call.app.as_mut() {
                app.handle(now, FlowEvent::LookupFinished(Lookup::Unknown));
            }
        }
        if let Some(app) = call.app.as_mut() {
            if app.poll_timeout().is_some_and(|d| now >= d) {
                app.handle_timeout(now);
            }
        }
        self.run_actions(now, id);
    }

    /// The store committed the callback the flow booked (or could not): the
    /// ACD gets it (keeping the caller's place) and the flow says "booked".
    pub(super) fn callback_stored(&mut self, now: Instant, id: CallRef, ok: bool) {
        self.in_progress = Some(id);
        let key = self.key(id);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let booked = call
            .app
            .as_ref()
            .and_then(|a| a.outcome())
            .and_then(|o| o.queue().map(str::to_string));
        if ok {
            self.stats.callbacks_booked += 1;
            call.span.in_scope(|| tracing::info!("callback stored"));
            if let Some(queue) = booked {
                let number = call.pending_callback.take().unwrap_or_default();
                let own = Some(&number) == call.caller_e164.as_ref();
                self.out
                    .push_back(Output::Acd(crate::acd::AcdEvent::CallbackBooked {
                        call: key,
                        id: call.dialog.call_id.clone(),
                        number,
                        queue,
                        own,
                    }));
            }
        } else {
            self.stats.callbacks_refused += 1;
            call.span
                .in_scope(|| tracing::error!("callback could not be stored"));
        }
        if let Some(app) = call.app.as_mut() {
            app.handle(now, FlowEvent::CallbackBooked(ok));
        }
        self.run_actions(now, id);
        self.schedule_call(id);
    }

    /// The ACD's announcement to a waiting caller, over the queue's music.
    pub(super) fn announce(
        &mut self,
        id: CallRef,
        position: usize,
        ewt: Option<Duration>,
        prompt: Option<String>,
    ) {
        let music = self.queue_music(id).unwrap_or_else(|| "music/hold".into());
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.queued.is_none() || call.agent.is_some() || call.bridged.is_some() {
            return;
        }
        let lang = call
            .app
            .as_ref()
            .map(|a| a.language().to_string())
            .unwrap_or_else(|| call.flow.default_language().to_string());
        let keys = announcement(&lang, prompt.as_deref(), ewt);
        let prompts: Vec<_> = keys
            .iter()
            .filter_map(|k| call.flows.prompts.get(k).cloned())
            .collect();
        if let Some(e) = ewt {
            call.ewt.get_or_insert(e);
        }
        let (Some(m), Some(music)) = (call.media.as_mut(), call.flows.prompts.get(&music)) else {
            return;
        };
        if prompts.is_empty() {
            return;
        }
        call.span.in_scope(|| {
            tracing::info!(
                position,
                ewt_s = ewt.map(|e| e.as_secs()),
                prompt = prompt.as_deref().unwrap_or(""),
                "announced"
            )
        });
        m.announce(prompts, music.clone());
        self.stats.announcements += 1;
    }

    /// The store's answer to a `StoreRequest::Lookup` (ignored when late).
    pub(super) fn lookup_finished(
        &mut self,
        now: Instant,
        id: CallRef,
        result: Result<Option<Customer>, String>,
    ) {
        self.in_progress = Some(id);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.lookup != Lookup::Pending {
            return;
        }
        call.lookup_done = Some(now);
        let l = match result {
            Ok(Some(c)) => {
                call.span
                    .in_scope(|| tracing::debug!(recent_calls = c.recent_calls, "caller known"));
                Lookup::Known(c)
            }
            Ok(None) => Lookup::Unknown,
            Err(e) => {
                self.stats.lookup_errors += 1;
                call.span.in_scope(|| {
                    tracing::warn!(error = %e, "customer lookup failed; the call goes on as unknown")
                });
                Lookup::Unknown
            }
        };
        call.lookup = l.clone();
        if let Some(app) = call.app.as_mut() {
            app.handle(now, FlowEvent::LookupFinished(l));
        }
        self.run_actions(now, id);
        self.schedule_call(id);
    }

    /// A webhook's reply (`None`: error or timeout in the shell).
    pub(super) fn webhook_finished(
        &mut self,
        now: Instant,
        id: CallRef,
        reply: Option<WebhookReply>,
    ) {
        self.in_progress = Some(id);
        self.app_event(now, id, FlowEvent::WebhookFinished(reply));
        self.schedule_call(id);
    }

    pub(super) fn run_actions(&mut self, now: Instant, id: CallRef) {
        let wall = self.wall(now);
        loop {
            let Some(call) = self.calls.get_mut(&id) else {
                return;
            };
            let Some(action) = call.app.as_mut().and_then(|a| a.poll_action()) else {
                break;
            };
            match action {
                FlowAction::Play(keys) => {
                    let prompts: Vec<_> = keys
                        .iter()
                        .filter_map(|k| {
                            let p = call.flows.prompts.get(k).cloned();
                            if p.is_none() {
                                tracing::warn!(prompt = %k, "prompt not found; skipped");
                            }
                            p
                        })
                        .collect();
                    match call.media.as_mut() {
                        Some(m) if !prompts.is_empty() => m.play(prompts),
                        _ => {
                            if let Some(app) = call.app.as_mut() {
                                app.handle(now, FlowEvent::PlaybackFinished);
                            }
                        }
                    }
                }
                FlowAction::StopPlayback => {
                    if let Some(m) = call.media.as_mut() {
                        m.stop();
                    }
                }
                FlowAction::Enqueue {
                    queue,
                    priority,
                    human,
                } => {
                    call.queued_at = Some(now);
                    let music = self
                        .cfg
                        .queue_music
                        .get(&queue)
                        .cloned()
                        .unwrap_or_else(|| "music/hold".into());
                    if let (Some(m), Some(p)) =
                        (call.media.as_mut(), call.flows.prompts.get(&music))
                    {
                        m.play_looped(p.clone());
                    }
                    if human {
                        self.stats.human_key += 1;
                    }
                    call.span
                        .in_scope(|| tracing::info!(%queue, priority, human, "queued"));
                    let number = call.number().to_string();
                    let caller = match &call.lookup {
                        Lookup::Known(Customer {
                            name: Some(name), ..
                        }) => format!("{name} {number}"),
                        _ => number.clone(),
                    };
                    let profile = profile(call, number);
                    // A new queue (the human key pressed in another one) moves
                    // the caller there, unless an agent already rings or talks.
                    let moving = call.agent.is_none()
                        && call.bridged.is_none()
                        && call.queued.as_ref() != Some(&queue);
                    if moving && !self.queue_open(now, &queue) {
                        // Closed: the flow's `on_closed` step, if it has one,
                        // takes the caller elsewhere (the caller still waits
                        // otherwise: an agent may be there after hours).
                        let call = self.calls.get_mut(&id).expect("call exists");
                        call.span
                            .in_scope(|| tracing::info!(%queue, "queue closed"));
                        call.closed_queue = Some(queue.clone());
                        if let Some(app) = call.app.as_mut() {
                            app.handle(now, FlowEvent::QueueLimitReached(QueueLimit::Closed));
                            if app.left_queue() {
                                continue;
                            }
                        }
                    }
                    let Some(call) = self.calls.get_mut(&id) else {
                        return;
                    };
                    if moving {
                        let key = crate::acd::CallKey {
                            shard: self.cfg.shard,
                            call: id.0,
                        };
                        if call.queued.is_some() {
                            self.out
                                .push_back(Output::Acd(crate::acd::AcdEvent::Left { call: key }));
                        }
                        call.queued = Some(queue.clone());
                        self.out
                            .push_back(Output::Acd(crate::acd::AcdEvent::Enqueued {
                                call: key,
                                queue,
                                priority,
                                caller,
                                profile,
                            }));
                    }
                }
                FlowAction::LeaveQueue => {
                    // Only a caller still waiting leaves (a ringing agent's
                    // offer ends as the call would).
                    if call.agent.is_none() && call.bridged.is_none() {
                        if let Some(q) = call.queued.take() {
                            if let Some(m) = call.media.as_mut() {
                                m.stop();
                            }
                            call.span
                                .in_scope(|| tracing::info!(queue = %q, "left the queue"));
                            let key = crate::acd::CallKey {
                                shard: self.cfg.shard,
                                call: id.0,
                            };
                            self.out
                                .push_back(Output::Acd(crate::acd::AcdEvent::Left { call: key }));
                        }
                    }
                }
                FlowAction::Transfer { destination } => {
                    self.start_transfer(now, id, &destination);
                }
                FlowAction::StartRecording { max } => {
                    if let Some(m) = call.media.as_mut() {
                        m.start_recording((max.as_secs_f64() * 8000.0) as usize);
                    }
                }
                FlowAction::StopRecording => {
                    let pcm = call.media.as_mut().and_then(|m| m.take_recording());
                    if let Some(pcm) = pcm {
                        let req = voicemail(call, wall, pcm);
                        self.out.push_back(Output::Store(req));
                    }
                }
                FlowAction::PostWebhook { url, body, timeout } => {
                    self.out.push_back(Output::Webhook {
                        call: id,
                        url,
                        body: body.to_string(),
                        timeout,
                    });
                }
                FlowAction::BookCallback { number, queue } => {
                    // The caller's own number, or one the config allows (no
                    // free dialling: a collected number could be anywhere).
                    let cc = &self.cfg.country_code;
                    let normal = crate::number::e164(&number, cc);
                    let own = normal.is_some() && normal.as_deref() == call.caller_e164.as_deref();
                    let allowed = normal.as_deref().is_some_and(|n| {
                        super::callback::may_dial(n, own, &self.cfg.callback_allowed, cc)
                    });
                    match normal.filter(|_| allowed) {
                        Some(number) => {
                            call.span
                                .in_scope(|| tracing::info!(%queue, own, "booking a callback"));
                            call.pending_callback = Some(number.clone());
                            let req = StoreRequest::BookCallback {
                                call: id,
                                call_id: call.dialog.call_id.clone(),
                                number,
                                queue,
                                at: wall,
                                own,
                            };
                            self.out.push_back(Output::Store(req));
                        }
                        None => {
                            call.span.in_scope(
                                || tracing::warn!(%queue, "callback refused: number not allowed"),
                            );
                            self.stats.callbacks_refused += 1;
                            if let Some(app) = call.app.as_mut() {
                                app.handle(now, FlowEvent::CallbackBooked(false));
                            }
                        }
                    }
                }
                FlowAction::Hangup => {
                    self.end_call(now, id, true, "hung up by the flow");
                    return;
                }
            }
        }
    }

    /// A caller reached a limit of their queue: their flow decides (a step
    /// for it takes them out; otherwise they keep waiting in their place).
    pub(super) fn queue_limit(&mut self, now: Instant, id: CallRef, limit: QueueLimit) {
        self.in_progress = Some(id);
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.queued.is_none() || call.agent.is_some() || call.bridged.is_some() {
            return;
        }
        call.span
            .in_scope(|| tracing::info!(?limit, "queue limit reached"));
        self.app_event(now, id, FlowEvent::QueueLimitReached(limit));
        self.schedule_call(id);
    }

    /// Whether `queue` is open at `now` (queues without hours always are).
    fn queue_open(&self, now: Instant, queue: &str) -> bool {
        let Some((hours, tz)) = self.cfg.queue_hours.get(queue) else {
            return true;
        };
        hours.is_open(tz.to_datetime(self.wall(now)))
    }

    /// The record of a call that ends now (and its voicemail, if it was recording).
    /// Returns the outcome, for the call's last log line.
    pub(super) fn finish_record(
        &mut self,
        now: Instant,
        call: &mut Call,
        ended_by: &str,
    ) -> String {
        if call.feature.is_some() {
            // An agent's feature code is no customer's call: no record.
            return "feature code".into();
        }
        let wall = self.wall(now);
        let mut outcome = call.app.as_ref().and_then(|a| a.outcome()).cloned();
        if let Some(pcm) = call.media.as_mut().and_then(|m| m.take_recording()) {
            // Callers often hang up instead of pressing #: keep the message.
            self.out
                .push_back(Output::Store(voicemail(call, wall, pcm)));
            outcome = Some(crate::flow::interp::Outcome::Voicemail);
        }
        let ms = |from: Option<Instant>, to: Instant| {
            from.map(|f| to.saturating_duration_since(f).as_millis() as u64)
        };
        let bridged = call.bridged.as_ref();
        let outcome_name = match (&outcome, call.app.is_some(), ended_by) {
            _ if bridged.is_some() => "answered".to_string(),
            (_, false, _) => "unanswered".to_string(),
            (None, true, "caller") => "abandoned".to_string(),
            (Some(o), true, "caller") if o.queue().is_some() && o.name() != "callback" => {
                "abandoned".to_string()
            }
            (Some(o), _, _) => o.name().to_string(),
            (None, _, _) => "hangup".to_string(),
        };
        let app = call.app.as_ref();
        let record = CallRecord {
            call_id: call.dialog.call_id.clone(),
            started: call.wall_started,
            answered: call.answered_wall,
            ended: wall,
            caller: call.number().to_string(),
            dialled: call.dialled.clone(),
            flow: app
                .map(|a| a.flow().name.clone())
                .unwrap_or_else(|| call.flow.name.clone()),
            flow_version: call.flow.version.clone(),
            path: app
                .map(|a| a.path().to_vec())
                .unwrap_or_default()
                .into_iter()
                .chain(call.offers.iter().cloned())
                .collect(),
            outcome: outcome_name,
            ended_by: ended_by.to_string(),
            queue: outcome
                .as_ref()
                .and_then(|o| o.queue())
                .map(str::to_string)
                .or_else(|| call.queued.clone())
                .or_else(|| call.closed_queue.clone()),
            agent: bridged.map(|b| b.agent.clone()),
            wait_ms: ms(call.queued_at, bridged.map(|b| b.at).unwrap_or(now)),
            talk_ms: bridged.map(|b| now.saturating_duration_since(b.at).as_millis() as u64),
            human_key_ms: app
                .and_then(|a| a.human_pressed())
                .and_then(|h| ms(call.answered_at, h)),
            known: matches!(call.lookup, Lookup::Known(_)),
            announced_ms: app
                .and_then(|a| a.announced(now))
                .and_then(|t| ms(call.answered_at, t)),
            lookup_ms: call.lookup_done.and_then(|t| ms(Some(call.started), t)),
            route: (!call.route.is_empty()).then(|| call.route.join("; ")),
            closed: call.closed_queue.is_some(),
            to_human_ms: app
                .and_then(|a| a.human_pressed())
                .and(bridged)
                .and_then(|b| ms(call.answered_at, b.at)),
            ewt_ms: call.ewt.map(|e| e.as_millis() as u64),
        };
        call.span
            .in_scope(|| tracing::debug!(path = %record.path.join(" → "), "flow ended"));
        let outcome = record.outcome.clone();
        self.out
            .push_back(Output::Store(StoreRequest::RecordCall(Box::new(record))));
        outcome
    }

    /// Blind transfer (RFC 3515): a REFER asks the caller's side (the trunk)
    /// to call the destination. Only configured destinations are ever named.
    fn start_transfer(&mut self, now: Instant, id: CallRef, destination: &str) {
        let Some(uri) = self.cfg.destinations.get(destination).cloned() else {
            return self.transfer_failed(now, id, "destination not configured");
        };
        let Some(mut call) = self.calls.remove(&id) else {
            return;
        };
        call.span
            .in_scope(|| tracing::info!(%destination, "transferring (REFER)"));
        call.transfer = Some(destination.to_string());
        let referred_by = format!("<sip:vaxel@{}>", call.local_ip);
        let contact = super::uas::contact_of(&call);
        self.send_in_dialog(
            now,
            &mut call,
            crate::sip::message::Method::Refer,
            vec![
                (HeaderName::parse("Refer-To"), format!("<{uri}>")),
                (HeaderName::parse("Referred-By"), referred_by),
                (HeaderName::Contact, contact),
            ],
            Some(id),
        );
        self.calls.insert(id, call);
    }

    /// The transfer did not happen: the flow takes its fallback.
    pub(super) fn transfer_failed(&mut self, now: Instant, id: CallRef, why: &str) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.transfer.take().is_none() {
            return;
        }
        call.span
            .in_scope(|| tracing::warn!(reason = why, "transfer failed; taking the fallback"));
        self.app_event(now, id, FlowEvent::TransferFailed);
        self.schedule_call(id);
    }

    /// A NOTIFY about our REFER (RFC 3515 §2.4.5): its `message/sipfrag` body
    /// carries the new call's status. Success ends our part of the call.
    pub(super) fn on_refer_notify(&mut self, now: Instant, id: CallRef, req: &Request) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.transfer.is_none() {
            return;
        }
        let body = String::from_utf8_lossy(&req.body);
        let status: Option<u16> = body
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok());
        match status {
            Some(s) if (200..300).contains(&s) => {
                call.span
                    .in_scope(|| tracing::info!(status = s, "transfer completed"));
                self.end_call(now, id, true, "transferred");
            }
            Some(s) if s >= 300 => {
                self.transfer_failed(now, id, &format!("the destination answered {s}"))
            }
            _ => {}
        }
    }
}

fn voicemail(call: &Call, at: jiff::Timestamp, pcm: Vec<i16>) -> StoreRequest {
    StoreRequest::SaveVoicemail {
        call_id: call.dialog.call_id.clone(),
        caller: call.number().to_string(),
        flow: call.flow.name.clone(),
        at,
        pcm,
    }
}

/// What routing needs to know of the caller: their history from the store,
/// and the call's language when the customer has none on record.
fn profile(call: &Call, number: String) -> crate::acd::Profile {
    let lang = call.app.as_ref().map(|a| a.language().to_string());
    match &call.lookup {
        Lookup::Known(c) => crate::acd::Profile {
            number,
            last_agent: c.last_agent.clone().zip(c.last_agent_ago),
            repeat: c.recent_calls > 0,
            tier: c.tier.clone(),
            language: c.language.clone().or(lang),
        },
        _ => crate::acd::Profile {
            number,
            language: lang,
            ..Default::default()
        },
    }
}

/// The prompts of an announcement: a policy's prompt, then "the estimated
/// wait is about N minutes" (rounded up; the `num-N` prompts say N).
fn announcement(lang: &str, prompt: Option<&str>, ewt: Option<Duration>) -> Vec<String> {
    let mut keys: Vec<String> = prompt.map(|p| format!("{lang}/{p}")).into_iter().collect();
    if let Some(e) = ewt {
        let minutes = e.as_secs().div_ceil(60).clamp(1, 60);
        keys.push(format!("{lang}/ewt-about"));
        keys.extend(
            crate::flow::say::say(crate::flow::model::SayKind::Number, &minutes.to_string())
                .into_iter()
                .map(|k| format!("{lang}/{k}")),
        );
        keys.push(format!(
            "{lang}/{}",
            if minutes == 1 { "minute" } else { "minutes" }
        ));
    }
    keys
}
