//! SDP parsing and offer/answer on arbitrary bodies (browsers' WebRTC
//! offers too); DTMF payload parsers; the "call us" customer signature.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vaxel::sip::sdp::{negotiate, write_answer, SessionDescription};

fuzz_target!(|data: &[u8]| {
    if let Ok(sd) = SessionDescription::parse(data) {
        if let Ok(n) = negotiate(&sd) {
            let _ = write_answer(
                Some(&n),
                "127.0.0.1".parse().unwrap(),
                20000,
                1,
                1,
                n.direction,
            );
            if let Some(sec) = &n.secure {
                let local = vaxel::sip::sdp::LocalIce {
                    addr: "127.0.0.1:5062".parse().unwrap(),
                    ufrag: "abcd".into(),
                    pwd: "p".repeat(24),
                    fingerprint: "sha-256 AA".into(),
                    ssrc: 1,
                };
                let a = vaxel::sip::sdp::webrtc::write_answer(&n, sec, &local, 1, 1, n.direction);
                // Our own answer must parse again.
                assert!(SessionDescription::parse(a.as_bytes()).is_ok());
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = vaxel::engine::webrtc::verify_customer(text, b"0123456789abcdef0123456789abcdef", 0);
    }
    let _ = vaxel::media::dtmf::parse_info_body("application/dtmf-relay", data);
    let _ = vaxel::media::dtmf::parse_info_body("application/dtmf", data);
    let mut r = vaxel::media::dtmf::EventReceiver::default();
    for chunk in data.chunks(8) {
        if chunk.len() >= 4 {
            let _ = r.on_packet(u32::from(chunk[0]), &chunk[..4]);
        }
    }
});
