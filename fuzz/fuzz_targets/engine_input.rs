//! The whole engine core on arbitrary SIP datagrams and RTP packets: nothing
//! panics, and every output stays well-formed enough to send.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};
use vaxel::engine::Input;
use vaxel::engine::{EngineConfig, Output};
use vaxel::sip::Transport;

fuzz_target!(|data: &[u8]| {
    // A flow with a menu, so keys move calls around (shared with the sequence target).
    let mut e = vaxel_fuzz::engine(EngineConfig::default());
    let t0 = Instant::now();
    let src = "127.0.0.1:5061".parse().unwrap();
    let local = "127.0.0.1:5060".parse().unwrap();
    // Split the input into messages at 0xFE bytes; odd ones go to RTP ports.
    for (i, part) in data.split(|b| *b == 0xFE).enumerate() {
        let now = t0 + Duration::from_millis(i as u64 * 7);
        if i % 3 == 2 {
            e.handle_input(
                now,
                Input::Rtp {
                    port: 20000,
                    from: "127.0.0.1:40000".parse().unwrap(),
                    data: part,
                },
            );
        } else {
            e.handle_input(
                now,
                Input::Sip {
                    transport: Transport::Udp,
                    source: src,
                    local,
                    data: part,
                },
            );
        }
        while let Some(o) = e.poll_output() {
            if let Output::OpenMedia { port, .. } = o {
                e.handle_input(
                    now,
                    Input::MediaOpened {
                        port,
                        ok: part.len() % 2 == 0,
                    },
                );
            }
        }
        e.handle_input(now, Input::Timeout);
    }
    e.handle_input(t0 + Duration::from_secs(120), Input::Timeout);
    while e.poll_output().is_some() {}
});
