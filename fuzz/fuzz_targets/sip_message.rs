//! The SIP codec on arbitrary bytes: parsing (datagram and stream framing) never
//! panics, and whatever parses prints to something that parses to the same.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vaxel::sip::message::{HeaderName, Message};
use vaxel::sip::parse::{frame_stream, parse_datagram, parse_message, Framing};

fn strip_length(mut m: Message) -> Message {
    match &mut m {
        Message::Request(r) => r.headers.remove(&HeaderName::ContentLength),
        Message::Response(r) => r.headers.remove(&HeaderName::ContentLength),
    }
    m
}

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = parse_datagram(data) {
        let again = parse_datagram(&m.to_bytes()).expect("printed message must parse");
        // The printer always writes a correct Content-Length last.
        assert_eq!(strip_length(again), strip_length(m));
    }
    if let Framing::Complete { skip, end } = frame_stream(data) {
        let _ = parse_message(&data[skip..end], true);
    }
    let _ = vaxel::sip::parse::peek_call_id(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = vaxel::sip::header::Uri::parse(s);
        let _ = vaxel::sip::header::NameAddr::parse(s);
        let _ = vaxel::sip::header::Via::parse(s);
        let _ = vaxel::sip::header::CSeq::parse(s);
    }
});
