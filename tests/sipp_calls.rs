//! The running engine against SIPp (Debian `sip-tester`) as the caller, each test
//! in its own network namespace. The test itself is the caller's RTP endpoint
//! (the SIPp scenarios put 127.0.0.1:40000 in their SDP), so it checks what a
//! caller would hear: the exact prompt frames, their pacing and RTP headers.

mod common;

use common::*;
use std::time::{Duration, Instant};
use vaxel::media::g711::Codec;

const RTP: u16 = 40000;

/// An INFO with no body: it carries no digit and gets 200.
const NO_INFO: (&str, &str) = ("text/plain", "");

/// A SIPp caller (`call.xml` or `engine_hangs_up.xml`) whose SDP names the test's
/// RTP endpoint and offers `pts`; it sends one SIP INFO (`info`: content type and
/// body) `info_at_ms` after the answer, then hangs up `after_ms` later (or, in
/// engine_hangs_up.xml, waits that long for the engine's BYE).
fn caller(
    scenario: &str,
    pts: &str,
    info_at_ms: &str,
    after_ms: &str,
    info: (&str, &str),
    extra: &[&str],
) -> std::process::Child {
    let rtp = RTP.to_string();
    let keys = [
        ("rtp_port", rtp.as_str()),
        ("pts", pts),
        ("info_at_ms", info_at_ms),
        ("after_info_ms", after_ms),
        ("bye_within_ms", after_ms),
        ("info_ct", info.0),
        ("info_body", info.1),
    ];
    sipp(scenario, &keys, extra)
}

/// Checks RTP headers and pacing of a received stream.
fn check_stream(p: &RtpPeer, pt: u8) {
    let pk = &p.packets;
    assert!(pk.len() > 50, "only {} packets", pk.len());
    assert!(pk[0].marker, "first packet carries the marker bit");
    let ssrc = pk[0].ssrc;
    for w in pk.windows(2) {
        assert_eq!(w[1].ssrc, ssrc);
        assert_eq!(w[1].pt, pt);
        assert_eq!(
            w[1].seq,
            w[0].seq.wrapping_add(1),
            "sequence numbers are consecutive"
        );
        assert_eq!(
            w[1].ts,
            w[0].ts.wrapping_add(160),
            "timestamps advance 160 per 20 ms"
        );
    }
    let mut gaps: Vec<f64> = pk
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_secs_f64() * 1000.0)
        .collect();
    let span = (pk.last().unwrap().at - pk[0].at).as_secs_f64() * 1000.0;
    let mean = span / (pk.len() - 1) as f64;
    let p50 = percentile(&mut gaps, 0.5);
    let p99 = percentile(&mut gaps, 0.99);
    eprintln!(
        "{} packets, mean spacing {mean:.2} ms, p50 {p50:.2} ms, p99 {p99:.2} ms",
        pk.len()
    );
    assert!((19.5..20.5).contains(&mean), "mean spacing {mean} ms");
    assert!((17.0..23.0).contains(&p50), "median spacing {p50} ms");
    assert!(p99 < 45.0, "p99 spacing {p99} ms");
}

#[test]
fn pcmu_call_hears_the_welcome_and_an_rfc4733_digit_barges_in() {
    if !isolate("pcmu_call_hears_the_welcome_and_an_rfc4733_digit_barges_in") {
        return;
    }
    let prompts = prompts();
    let mut peer = RtpPeer::bind(RTP);
    let vaxel = Vaxel::start(&[]);
    let sipp = caller("call.xml", "0 101", "5000", "100", NO_INFO, &[]);
    peer.wait_first(Duration::from_secs(5));
    peer.record(Duration::from_millis(1500));
    let digit_at = peer.packets.len();
    peer.send_rfc4733('5', 101, 123_456, 1000);
    peer.record(Duration::from_millis(3000));
    wait_sipp(sipp, "call.xml");

    check_stream(&peer, 0);
    let frames = peer.payloads();

    assert_eq!(
        find_prompt_start(&frames, prompts.get("sv/welcome").unwrap(), Codec::Pcmu, 60),
        Some(0),
        "the call starts with the Swedish welcome"
    );
    let five = find_prompt(&frames, prompts.get("sv/digit-5").unwrap(), Codec::Pcmu)
        .expect("'fem' was played in full");
    assert!(
        five >= digit_at && five <= digit_at + 8,
        "digit prompt at packet {five}, key sent at {digit_at}"
    );
    let en = find_prompt(&frames, prompts.get("en/digit-5").unwrap(), Codec::Pcmu)
        .expect("'five' was played in full");
    assert_eq!(en, five + prompts.get("sv/digit-5").unwrap().frames());
    assert!(
        find_prompt_start(&frames, prompts.get("en/welcome").unwrap(), Codec::Pcmu, 20).is_none(),
        "the digit cut the welcome short"
    );
    assert_eq!(
        vaxel.wait_count("call ended reason=\"caller hung up\"", 1),
        1,
        "{}",
        vaxel.log()
    );
}

#[test]
fn pcma_call_and_sip_info_digit() {
    if !isolate("pcma_call_and_sip_info_digit") {
        return;
    }
    let prompts = prompts();
    let mut peer = RtpPeer::bind(RTP);
    let _vaxel = Vaxel::start(&[]);
    let sipp = caller(
        "call.xml",
        "8 0 101",
        "1500",
        "2500",
        ("application/dtmf-relay", "Signal=7\r\nDuration=160"),
        &[],
    );
    peer.wait_first(Duration::from_secs(5));
    peer.record(Duration::from_millis(3800));
    wait_sipp(sipp, "call.xml");
    check_stream(&peer, 8);
    let frames = peer.payloads();
    assert_eq!(
        find_prompt_start(&frames, prompts.get("sv/welcome").unwrap(), Codec::Pcma, 60),
        Some(0)
    );
    let seven = find_prompt(&frames, prompts.get("sv/digit-7").unwrap(), Codec::Pcma)
        .expect("'sju' played after SIP INFO");
    assert!(
        (60..=95).contains(&seven),
        "digit prompt at packet {seven}, INFO sent at ~75"
    );
}

#[test]
fn in_band_tone_is_detected_when_no_telephone_event_is_offered() {
    if !isolate("in_band_tone_is_detected_when_no_telephone_event_is_offered") {
        return;
    }
    let prompts = prompts();
    let mut peer = RtpPeer::bind(RTP);
    let _vaxel = Vaxel::start(&[]);
    let sipp = caller("call.xml", "0", "5000", "100", NO_INFO, &[]);
    peer.wait_first(Duration::from_secs(5));
    peer.record(Duration::from_millis(1000));
    // 120 ms of '3' between silences, as a phone's microphone path sends it.
    let mut audio = vec![0i16; 800];
    audio.extend(vaxel::media::goertzel::generate('3', 120, 5000.0));
    audio.extend(vec![0i16; 800]);
    let sent_at = peer.packets.len();
    let sender = std::thread::spawn({
        let sock = peer.sock.try_clone().unwrap();
        let to = peer.engine_addr();
        move || {
            let p = RtpPeer {
                sock,
                packets: vec![common::Packet {
                    at: Instant::now(),
                    from: to,
                    pt: 0,
                    seq: 0,
                    ts: 0,
                    ssrc: 0,
                    marker: false,
                    payload: vec![],
                }],
            };
            p.send_audio(&audio, 0, 1, 1);
        }
    });
    peer.record(Duration::from_millis(2500));
    sender.join().unwrap();
    wait_sipp(sipp, "call.xml");
    let frames = peer.payloads();
    let three = find_prompt(&frames, prompts.get("sv/digit-3").unwrap(), Codec::Pcmu)
        .expect("'tre' played after the in-band tone");
    assert!(
        three > sent_at && three < sent_at + 25,
        "digit prompt at {three}, tone started at {sent_at}"
    );
    // Exactly one detection for one press.
    let again = find_prompt(
        &frames[three + 1..],
        prompts.get("sv/digit-3").unwrap(),
        Codec::Pcmu,
    );
    assert!(again.is_none(), "one key press, one digit");
}

#[test]
fn cancel_before_answer() {
    if !isolate("cancel_before_answer") {
        return;
    }
    let mut peer = RtpPeer::bind(RTP);
    let vaxel = Vaxel::start(&["--answer-after-ms", "3000"]);
    let rtp_port = RTP.to_string();
    let sipp = sipp("cancel.xml", &[("rtp_port", rtp_port.as_str())], &[]);
    wait_sipp(sipp, "cancel.xml");
    peer.record(Duration::from_millis(3500));
    assert!(peer.packets.is_empty(), "a cancelled call sends no media");
    assert_eq!(
        vaxel.wait_count("cancelled before answer", 1),
        1,
        "{}",
        vaxel.log()
    );
}

#[test]
fn hash_makes_the_engine_say_goodbye_and_send_bye() {
    if !isolate("hash_makes_the_engine_say_goodbye_and_send_bye") {
        return;
    }
    let prompts = prompts();
    let mut peer = RtpPeer::bind(RTP);
    let vaxel = Vaxel::start(&[]);
    let sipp = caller(
        "engine_hangs_up.xml",
        "0 101",
        "500",
        "15000",
        ("application/dtmf", "#"),
        &[],
    );
    peer.wait_first(Duration::from_secs(5));
    peer.record(Duration::from_millis(8000));
    wait_sipp(sipp, "engine_hangs_up.xml");
    let frames = peer.payloads();
    let bye = find_prompt(&frames, prompts.get("sv/goodbye").unwrap(), Codec::Pcmu)
        .expect("goodbye played");
    let en = find_prompt(&frames, prompts.get("en/goodbye").unwrap(), Codec::Pcmu)
        .expect("English goodbye played");
    assert!(bye < 40);
    // The engine hangs up right after the last goodbye frame.
    assert!(
        frames.len() <= en + prompts.get("en/goodbye").unwrap().frames() + 3,
        "media went on after the goodbye"
    );
    assert_eq!(
        vaxel.wait_count("hung up by the flow", 1),
        1,
        "{}",
        vaxel.log()
    );
}

#[test]
fn a_caller_that_sends_no_rtp_is_hung_up() {
    if !isolate("a_caller_that_sends_no_rtp_is_hung_up") {
        return;
    }
    let _peer = RtpPeer::bind(RTP);
    let vaxel = Vaxel::start(&["--rtp-timeout", "2"]);
    let t0 = Instant::now();
    let sipp = caller("engine_hangs_up.xml", "0 101", "100", "6000", NO_INFO, &[]);
    wait_sipp(sipp, "engine_hangs_up.xml");
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
        "hung up after {took:?}"
    );
    assert_eq!(
        vaxel.wait_count("sent no RTP at all", 1),
        1,
        "{}",
        vaxel.log()
    );
}

#[test]
fn a_retransmitted_invite_makes_no_second_call() {
    if !isolate("a_retransmitted_invite_makes_no_second_call") {
        return;
    }
    let mut peer = RtpPeer::bind(RTP);
    let vaxel = Vaxel::start(&["--answer-after-ms", "500"]);
    let rtp_port = RTP.to_string();
    let sipp = sipp(
        "retransmit.xml",
        &[("rtp_port", rtp_port.as_str()), ("talk_ms", "2000")],
        &[],
    );
    peer.wait_first(Duration::from_secs(5));
    peer.record(Duration::from_millis(2500));
    wait_sipp(sipp, "retransmit.xml");
    let sources: std::collections::HashSet<_> =
        peer.packets.iter().map(|p| (p.from, p.ssrc)).collect();
    assert_eq!(sources.len(), 1, "one RTP stream, one call");
    assert_eq!(vaxel.wait_count("incoming call", 1), 1, "{}", vaxel.log());
    assert_eq!(vaxel.wait_count(": answered", 1), 1, "{}", vaxel.log());
}

#[test]
fn a_call_over_tcp() {
    if !isolate("a_call_over_tcp") {
        return;
    }
    let prompts = prompts();
    let mut peer = RtpPeer::bind(RTP);
    let _vaxel = Vaxel::start(&[]);
    let sipp = caller(
        "call.xml",
        "0 101",
        "1000",
        "2000",
        ("application/dtmf-relay", "Signal=9"),
        &["-t", "t1"],
    );
    peer.wait_first(Duration::from_secs(5));
    peer.record(Duration::from_millis(2800));
    wait_sipp(sipp, "call.xml over TCP");
    find_prompt(
        &peer.payloads(),
        prompts.get("sv/digit-9").unwrap(),
        Codec::Pcmu,
    )
    .expect("'nio' played");
}

#[test]
fn torture_messages_over_udp_and_tcp_leave_the_engine_serving() {
    if !isolate("torture_messages_over_udp_and_tcp_leave_the_engine_serving") {
        return;
    }
    let prompts = prompts();
    let vaxel = Vaxel::start(&[]);
    let script = shared_dir().join("sip-torture/send_torture.py");
    let mut answers = String::new();
    for tcp in [false, true] {
        let mut cmd = std::process::Command::new("python3");
        cmd.arg(&script).args(["--port", "5090", "--wait", "0.15"]);
        if tcp {
            cmd.arg("--tcp");
        }
        let out = cmd.output().expect("python3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        answers.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    for (file, want) in [
        ("badvers.dat", "SIP/2.0 505"),
        ("unkscm.dat", "SIP/2.0 416"),
        ("bext01.dat", "SIP/2.0 420"),
        ("invut.dat", "SIP/2.0 415"),
        ("sdp01.dat", "SIP/2.0 406"),
        ("lwsstart.dat", "SIP/2.0 400"),
        ("scalar02.dat", "SIP/2.0 400"),
        ("mismatch01.dat", "SIP/2.0 400"),
        ("esc01.dat", "SIP/2.0 200"),
        ("intmeth.dat", "SIP/2.0 501"),
    ] {
        let lines: Vec<&str> = answers.lines().filter(|l| l.starts_with(file)).collect();
        assert_eq!(
            lines.len(),
            2,
            "{file} answered over UDP and TCP:\n{answers}"
        );
        for l in lines {
            assert!(l.contains(want), "{file}: want {want}, got {l}");
        }
    }
    // (Dropped messages are checked in tests/torture.rs: here the script's
    // socket also hears the 200 retransmissions of the torture INVITEs.)
    // Still serving a normal call afterwards.
    let mut peer = RtpPeer::bind(RTP);
    let sipp = caller(
        "call.xml",
        "0 101",
        "1000",
        "2000",
        ("application/dtmf-relay", "Signal=2"),
        &[],
    );
    peer.wait_first(Duration::from_secs(5));
    peer.record(Duration::from_millis(2800));
    wait_sipp(sipp, "call.xml after the torture set");
    find_prompt(
        &peer.payloads(),
        prompts.get("sv/digit-2").unwrap(),
        Codec::Pcmu,
    )
    .expect("'två' played");
    assert!(vaxel.log().contains("malformed message dropped"));
}

#[test]
fn sigterm_lets_the_call_in_progress_finish_and_refuses_new_ones() {
    if !isolate("sigterm_lets_the_call_in_progress_finish_and_refuses_new_ones") {
        return;
    }
    let mut peer = RtpPeer::bind(RTP);
    let vaxel = Vaxel::start(&[]);
    let call = caller("call.xml", "0 101", "3000", "100", NO_INFO, &[]);
    peer.wait_first(Duration::from_secs(5));
    let pid = vaxel.pid();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let before = peer.packets.len();
    peer.record(Duration::from_millis(1000));
    assert!(
        peer.packets.len() >= before + 45,
        "the call in progress keeps its audio after SIGTERM"
    );
    // A new call now gets 503 (SIPp's built-in caller counts it as failed).
    let refused = std::process::Command::new("sipp")
        .args([
            SIP,
            "-sn",
            "uac",
            "-i",
            "127.0.0.1",
            "-p",
            "5070",
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "10",
            "-timeout_error",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!refused.success(), "a new call was accepted while draining");
    wait_sipp(call, "call.xml during shutdown");
    let status = vaxel.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
}

#[test]
fn past_the_call_limit_new_calls_get_503_and_the_call_in_progress_is_undisturbed() {
    if !isolate("past_the_call_limit_new_calls_get_503_and_the_call_in_progress_is_undisturbed") {
        return;
    }
    let mut peer = RtpPeer::bind(RTP);
    let vaxel = Vaxel::start(&["--max-calls", "1"]);
    let call = caller("call.xml", "0 101", "3000", "100", NO_INFO, &[]);
    peer.wait_first(Duration::from_secs(5));
    // Five callers more while the first call plays: each is refused.
    let refused = std::process::Command::new("sipp")
        .args([
            SIP,
            "-sn",
            "uac",
            "-i",
            "127.0.0.1",
            "-p",
            "5070",
            "-m",
            "5",
            "-r",
            "10",
            "-nostdin",
            "-timeout",
            "10",
        ])
        .args(["-trace_err", "-error_file", "/tmp/vaxel-503.err"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!refused.success(), "calls past the limit were accepted");
    let errors = std::fs::read_to_string("/tmp/vaxel-503.err").unwrap_or_default();
    assert!(errors.contains("503"), "expected 503 answers: {errors}");
    assert!(
        errors.contains("Retry-After"),
        "503 without Retry-After: {errors}"
    );
    peer.record(Duration::from_millis(1500));
    wait_sipp(call, "call.xml at the limit");
    check_stream(&peer, 0);
    assert_eq!(vaxel.wait_count("answered", 1), 1, "{}", vaxel.log());
}
