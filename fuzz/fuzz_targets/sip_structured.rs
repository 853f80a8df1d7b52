//! Whole SIP requests built from parts (every method, bodies of every kind the
//! engine reads, multipart with arbitrary boundaries and parts, odd
//! Content-Type parameters and lengths): the codec never panics, what it
//! accepts prints and parses again, and the engine answers without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::time::Instant;
use vaxel::engine::EngineConfig;
use vaxel::engine::Input;
use vaxel::sip::message::Message;
use vaxel::sip::parse::parse_message;
use vaxel::sip::{ConnId, Transport};
use vaxel_fuzz::{drain, SipRequest};

fuzz_target!(|input: (SipRequest, bool)| {
    let (req, tcp) = input;
    let bytes = req.render(None);
    if let Ok(m) = parse_message(&bytes, tcp) {
        let again = match &m {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        };
        let reparsed = parse_message(&again, true);
        assert!(
            reparsed.is_ok(),
            "printed message does not parse: {reparsed:?}"
        );
        if let Message::Request(r) = &m {
            let ct = r
                .headers
                .get(&vaxel::sip::message::HeaderName::ContentType)
                .unwrap_or("");
            if let Ok(b) = vaxel::sip::multipart::boundary(ct) {
                let _ = vaxel::sip::multipart::parts(&r.body, b);
            }
        }
    }
    let mut e = vaxel_fuzz::engine(EngineConfig::default());
    let now = Instant::now();
    let transport = if tcp {
        Transport::Tcp(ConnId(1))
    } else {
        Transport::Udp
    };
    e.handle_input(
        now,
        Input::Sip {
            transport,
            source: "127.0.0.1:5061".parse().unwrap(),
            local: "127.0.0.1:5060".parse().unwrap(),
            data: &bytes,
        },
    );
    let sent = drain(&mut e, now, true);
    for s in &sent {
        assert!(
            parse_message(s, false).is_ok()
                || s.starts_with(b"SIP/2.0 4")
                || s.starts_with(b"SIP/2.0 5")
        );
    }
});
