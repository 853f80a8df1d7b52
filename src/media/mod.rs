//! Media: G.711, RTP sessions, prompt cache and player, DTMF (RFC 4733, SIP
//! INFO, in-band Goertzel). Pure apart from loading prompts at start-up.

pub mod dtmf;
pub mod g711;
pub mod goertzel;
pub mod player;
pub mod prompt;
pub mod relay;
pub mod session;
