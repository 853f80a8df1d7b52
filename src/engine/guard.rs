//! What input may make the engine hold, and what happens when handling an
//! input goes wrong (DESIGN §6): server transactions counted per source and in
//! all, response resends paced and withheld from rate-limited sources, and the
//! teardown of the one call whose input panicked. Pure like the rest of the
//! engine: time comes in as a parameter.

use super::call;
use super::{CallRef, Engine, ServerTx};
use crate::sip::TransactionKey;
use std::net::IpAddr;
use std::time::Instant;

impl Engine {
    /// Keeps a server transaction, counted against its source's share. Past the
    /// shard's total the answer already sent stands alone (stateless) and the
    /// transaction is not kept; a call's own INVITE transaction is always kept
    /// (calls are bounded by the call gate).
    pub(super) fn hold_tx(&mut self, key: TransactionKey, stx: ServerTx) -> bool {
        if let Some(held) = self.server_tx.get_mut(&key) {
            *held = stx;
            return true;
        }
        let ip = stx.dest().ip();
        if stx.belongs_to_call() {
            self.tx_per_source.take_exempt(ip);
        } else if self
            .tx_per_source
            .try_take(ip, usize::MAX, self.cfg.transactions)
            .is_err()
        {
            self.stats.stateless_answers += 1;
            return false;
        }
        self.server_tx.insert(key, stx);
        true
    }

    /// A per-source limit refused something: logged once per source and
    /// limit per minute, with how many were refused meanwhile.
    pub(super) fn limit_hit(&mut self, now: Instant, ip: IpAddr, what: &'static str) {
        if let Some(n) = self.limit_log.hit(now, (ip, what)) {
            tracing::warn!(source = %ip, refused = n, "limit reached: {what} (logged once a minute)");
        }
    }

    pub(super) fn drop_tx(&mut self, key: &TransactionKey) {
        if let Some(stx) = self.server_tx.remove(key) {
            self.tx_per_source.release(stx.dest().ip());
            self.resent_at.remove(key);
        }
    }

    /// Whether a source already holds its share of server transactions: its new
    /// out-of-dialog requests are dropped (counted) until some complete. A
    /// trunk carries everyone's calls and has no share.
    pub(super) fn source_full(&self, ip: IpAddr) -> bool {
        self.tx_per_source.of(&ip) >= self.cfg.transactions_per_source
            && !self.cfg.trunks.iter().any(|t| t.contains(ip))
    }

    /// A retransmitted request may draw the last response again at most once
    /// per T1/2, and never towards a source the front is rate-limiting: a
    /// replayed request is no lever for amplification.
    pub(super) fn may_resend(&mut self, now: Instant, key: &TransactionKey, to: IpAddr) -> bool {
        if self.is_limited(now, to) {
            return false;
        }
        let min = self.cfg.timers.t1 / 2;
        match self.resent_at.get(key) {
            Some(t) if now.saturating_duration_since(*t) < min => false,
            _ => {
                self.resent_at.insert(key.clone(), now);
                true
            }
        }
    }

    /// The front is rate-limiting `ip` until `until`.
    pub(super) fn source_limited(&mut self, now: Instant, ip: IpAddr, until: Instant) {
        self.limited.retain(|_, t| *t > now);
        self.limited.insert(ip, until);
    }

    pub(super) fn is_limited(&self, now: Instant, ip: IpAddr) -> bool {
        self.limited.get(&ip).is_some_and(|t| *t > now)
    }

    /// Handling an input panicked (a bug: input must never panic). The runtime
    /// caught it at the input boundary; the call that input was for is torn
    /// down here without trusting its state (no flow, no record beyond the
    /// ending), so that only that call ends. Returns the call, if there was one.
    pub fn recover_from_panic(&mut self, now: Instant) -> Option<CallRef> {
        self.stats.panics += 1;
        let id = self.in_progress.take()?;
        let pending = self.pending_invites.get(&id).cloned();
        let mut call = self.forget_call(id)?;
        self.end_agent_side(now, &mut call);
        // Tell the caller: BYE when the dialog is up, 500 to a pending INVITE.
        if matches!(
            call.state,
            call::CallState::Answered | call::CallState::Confirmed
        ) {
            self.send_in_dialog(
                now,
                &mut call,
                crate::sip::message::Method::Bye,
                vec![],
                None,
            );
        } else if let Some(req) = pending {
            let r = crate::sip::make_response(
                &req,
                500,
                Some(&call.dialog.local_tag),
                call.dialog.peer,
            );
            self.final_on_invite_tx(now, call.invite_key.clone(), &r, true);
        }
        call.span
            .in_scope(|| tracing::error!("call ended after an internal error"));
        Some(id)
    }

    /// Test builds: the configured number's calls panic here (see
    /// `EngineConfig::panic_on_dialled`).
    pub(super) fn injected_fault(&self, id: CallRef) {
        let Some(number) = self.cfg.panic_on_dialled.as_deref() else {
            return;
        };
        if let Some(call) = self.calls.get(&id) {
            if call.dialled == number {
                panic!(
                    "injected fault in call from {} to {number}\nsecond line",
                    call.caller
                );
            }
        }
    }
}
