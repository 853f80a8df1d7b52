//! A call as the engine keeps it: the dialog (RFC 3261 §12) with the caller, the
//! state of its answer, its media leg and the app driving it.

use crate::flow::interp::{Interp, Lookup};
use crate::flow::{Flow, FlowSet};
use crate::media::session::{MediaGuard, MediaSession};
pub use crate::sip::dialog::Dialog;
use crate::sip::sdp::Negotiated;
use crate::sip::TransactionKey;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The engine's own number for a call (stable, cheap to copy and log).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallRef(pub u64);

impl std::fmt::Display for CallRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// Where the answer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallState {
    /// INVITE accepted, the RTP port is being opened.
    OpeningMedia,
    /// 180 sent, answering at `answer_at`.
    Ringing,
    /// 200 sent, waiting for the ACK (timers G/H run in the transaction).
    Answered,
    /// ACK received: the dialog is confirmed.
    Confirmed,
}

#[derive(Debug)]
pub struct Call {
    pub id: CallRef,
    pub dialog: Dialog,
    pub state: CallState,
    pub invite_key: TransactionKey,
    /// The negotiated audio, or `None` while waiting for a late offer's answer.
    pub offer: Option<Negotiated>,
    pub local_ip: IpAddr,
    /// The call came from a configured trunk.
    pub trusted: bool,
    pub port: u16,
    pub port_attempts: u8,
    /// A browser caller's ICE credentials on the shared WebRTC port.
    pub ice: Option<crate::sip::sdp::LocalIce>,
    pub media: Option<MediaSession>,
    /// The 1 ms slot (of 20) the call's packets are sent in.
    pub media_slot: Option<u8>,
    /// When the call's one live timer-heap entry fires (see `schedule_call`).
    pub timer_at: Option<Instant>,
    /// SSRC, sequence and timestamp bases kept for a late offer's media.
    pub pending_media: Option<(u32, u16, u32)>,
    /// The flow version the call started on, and its run (from the answer).
    pub flows: Arc<FlowSet>,
    pub flow: Arc<Flow>,
    pub app: Option<Interp>,
    pub lookup: Lookup,
    /// When the store's answer arrived.
    pub lookup_done: Option<Instant>,
    pub wall_started: jiff::Timestamp,
    pub answered_at: Option<Instant>,
    pub answered_wall: Option<jiff::Timestamp>,
    pub queued_at: Option<Instant>,
    /// The transfer destination of a REFER in progress.
    pub transfer: Option<String>,
    /// The caller's number in E.164, when it is a phone number.
    pub caller_e164: Option<String>,
    pub answer_at: Option<Instant>,
    pub session_id: u64,
    pub sdp_version: u64,
    pub started: Instant,
    pub caller: String,
    pub dialled: String,
    pub span: tracing::Span,
    /// The ACD's name for the call, once it was queued.
    pub queued: Option<String>,
    /// The queue the caller asked for while it was closed (the figures count
    /// calls that came while the phones were closed).
    pub closed_queue: Option<String>,
    /// The agent leg being offered or talking (see `engine::bridge`).
    pub agent: Option<super::bridge::AgentLeg>,
    /// The agent who answered, when, and the bridge's two directions.
    pub bridged: Option<super::bridge::Bridged>,
    /// What each offer to an agent came to (kept in the record's path).
    pub offers: Vec<String>,
    /// The routing decisions with their reasons (kept in the record).
    pub route: Vec<String>,
    /// The estimated wait the ACD announced (kept in the record).
    pub ewt: Option<Duration>,
    /// The number of a callback being committed to the store.
    pub pending_callback: Option<String>,
    /// A callback's customer leg (the call was made by the engine).
    pub callback: Option<super::callback::CustomerLeg>,
    /// An agent's feature-code call: the agent and the code (no flow runs).
    pub feature: Option<(String, crate::acd::FeatureCode)>,
}

/// Which of a call's legs a Call-ID or RTP port belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Leg {
    /// The caller's leg (the engine is the UAS).
    Caller,
    /// The agent leg being offered or bridged (the engine is the UAC).
    Agent,
}

impl Call {
    /// When the caller lookup stops being waited for (while it is pending).
    pub fn lookup_deadline(&self, lookup_timeout: Duration) -> Option<Instant> {
        matches!(self.lookup, Lookup::Pending).then(|| self.started + lookup_timeout)
    }

    pub fn poll_timeout(&self, cfg: &super::EngineConfig) -> Option<Instant> {
        let media = self.media.as_ref();
        [
            media.and_then(|m| m.poll_timeout()),
            media.and_then(|m| m.silence_deadline(cfg.rtp_timeout, cfg.first_rtp_timeout)),
            self.app.as_ref().and_then(|a| a.poll_timeout()),
            self.lookup_deadline(cfg.lookup_timeout),
            self.answer_at,
            Some(self.started + cfg.max_call),
            self.agent.as_ref().and_then(|a| a.poll_timeout()),
            self.callback.as_ref().and_then(|c| c.poll_timeout()),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

impl Call {
    /// Who may feed this call's media, and whether it may go to the SDP address
    /// before the caller's first packet.
    pub fn media_guard(&self, neg: &Negotiated) -> MediaGuard {
        // A browser leg's packets were authenticated by ICE and SRTP before
        // they reach the session; its address is the one ICE chose.
        if neg.secure.is_some() {
            return MediaGuard::open();
        }
        let signalling = crate::config::canonical(self.dialog.peer.ip());
        let sdp = crate::config::canonical(neg.remote.ip());
        let mut allowed = vec![signalling];
        if !sdp.is_unspecified() && sdp != signalling {
            allowed.push(sdp);
        }
        MediaGuard {
            allowed,
            send_before_latch: self.trusted || sdp == signalling,
        }
    }

    /// The caller's number as the store and the flow see it.
    pub fn number(&self) -> &str {
        self.caller_e164.as_deref().unwrap_or(&self.caller)
    }
}

/// Hides all but the last two characters of a caller's number (logs redact by
/// default; `--show-numbers` turns this off).
pub fn redact(number: &str, show: bool) -> String {
    if show {
        return number.to_string();
    }
    let n = number.chars().count();
    if n <= 2 {
        return "*".repeat(n);
    }
    let tail: String = number.chars().skip(n - 2).collect();
    format!("{}{}", "*".repeat(n - 2), tail)
}
