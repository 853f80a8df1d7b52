//! Växel: a telephony IVR and call-routing engine.
//!
//! # Architecture: pure cores, thin shells
//!
//! * [`sip`], [`media`], [`flow`], [`acd`] and [`engine`] are pure: events and
//!   the current time in, output polled, no I/O, no clock, no spawning. They are
//!   tested on virtual time.
//! * [`runtime`] is the tokio shell: sockets, the drive loops, the ACD's owner
//!   thread, the clock, signals; [`store`] is the database's; [`http`] is
//!   axum's (the API, the event stream, `/metrics`, the pages), which reads
//!   what the ACD owner publishes and hands changes back to it as events.
//!
//! # The drive-loop contract
//!
//! Each shard owns one [`engine::Engine`]. Its loop:
//! 1. feeds every input with `now` through `handle_input(now, Input::…)`;
//! 2. drains `poll_output()` and performs each [`engine::Output`];
//! 3. sleeps until `poll_timeout()` (or the next input) and calls
//!    `handle_timeout(now)`.
//!
//! Prompt packets for all the shard's calls are paced by this one loop: there is
//! no timer task per call.

pub mod acd;
pub mod commands;
pub mod config;
pub mod engine;
pub mod flow;
pub mod http;
pub mod limit;
pub mod media;
pub mod number;
pub mod runtime;
pub mod sip;
pub mod store;
