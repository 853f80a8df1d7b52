//! SDP parsing and offer/answer on arbitrary bodies; DTMF payload parsers.
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
        }
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
