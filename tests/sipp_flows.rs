//! Call flows through the running engine with SIPp callers, each test in its
//! own network namespace. The test is the caller's RTP endpoint: it presses
//! keys (RFC 4733) at set times and checks, frame by frame, which prompts the
//! caller heard and in what order; then it reads the call records in the store.
//!
//! The shipped web-shop flow is used with its opening hours made always open
//! (tests run at any hour; the hours themselves are covered by the flow tests).

mod common;

use common::pg::Pg;
use common::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vaxel::media::g711::Codec;
use vaxel::store::{Store, StoreSettings};

const RTP: u16 = 40000;

/// A flows folder: the web-shop flow, always open, and the short test menu.
fn flows_dir(name: &str) -> PathBuf {
    let d = temp_dir(&format!("flows-{name}"));
    let shop = std::fs::read_to_string(root().join("flows/webbshop.toml")).unwrap();
    let open: Vec<String> = shop
        .lines()
        .map(|l| {
            let day = l.split(' ').next().unwrap_or("");
            if ["mon", "tue", "wed", "thu", "fri", "sat", "sun"].contains(&day) {
                format!("{day} = \"00:00-24:00\"")
            } else if l.starts_with("holidays") {
                "holidays = []".to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(d.join("webbshop.toml"), open.join("\n")).unwrap();
    std::fs::copy(root().join("tests/flows/menu.toml"), d.join("menu.toml")).unwrap();
    d
}

struct Setup {
    flows: PathBuf,
    data: PathBuf,
    url: String,
}

fn setup(name: &str) -> Setup {
    let data = temp_dir(&format!("data-{name}"));
    Setup {
        flows: flows_dir(name),
        url: format!("sqlite://{}", data.join("vaxel.db").display()),
        data,
    }
}

fn call(scenario: &str, from: &str, to: &str, talk_ms: u64) -> std::process::Child {
    let talk = talk_ms.to_string();
    let rtp = RTP.to_string();
    sipp(
        scenario,
        &[
            ("rtp_port", &rtp),
            ("pts", "0 101"),
            ("from", from),
            ("to", to),
            ("talk_ms", &talk),
        ],
        &[],
    )
}

/// Listens from the first packet for `total_ms`, pressing each key at its
/// time (ms after the first packet). Returns the frames heard.
fn listen(peer: &mut RtpPeer, keys: &[(u64, char)], total_ms: u64) -> Vec<Vec<u8>> {
    peer.packets.clear();
    peer.wait_first(Duration::from_secs(5));
    let t0 = peer.packets[0].at;
    let (mut ts, mut seq) = (1000u32, 1u16);
    for (at, key) in keys {
        let until = t0 + Duration::from_millis(*at);
        peer.record(until.saturating_duration_since(Instant::now()));
        peer.send_rfc4733(*key, 101, ts, seq);
        ts = ts.wrapping_add(4000);
        seq = seq.wrapping_add(4);
    }
    let end = t0 + Duration::from_millis(total_ms);
    peer.record(end.saturating_duration_since(Instant::now()));
    peer.payloads()
}

/// Where a prompt (its first 25 sounding frames) starts in what was heard.
fn at(frames: &[Vec<u8>], name: &str) -> Option<usize> {
    let p = prompts();
    let prompt = p.get(name).unwrap_or_else(|| panic!("no prompt {name}"));
    find_prompt_start(frames, prompt, Codec::Pcmu, 25)
}

fn frames_of(name: &str) -> usize {
    prompts().get(name).unwrap().frames()
}

/// The store's call records, newest first: (caller, flow, version, path, outcome).
fn records(url: &str, want: usize) -> Vec<(String, String, String, String, String)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = Store::open(StoreSettings {
            url: url.to_string(),
            data_dir: std::env::temp_dir(),
            repeat_days: 7,
            retention_days: 30,
        })
        .await
        .unwrap();
        // Records are written just after the call ends.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let r = store.recent_calls(50).await.unwrap();
            if r.len() >= want || Instant::now() > deadline {
                store.close().await;
                return r;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

fn start(s: &Setup) -> Vaxel {
    Vaxel::start_with(&s.flows, &s.url, &s.data, &[])
}

#[test]
fn zero_in_the_first_second_of_the_welcome_goes_straight_to_a_person() {
    if !isolate("zero_in_the_first_second_of_the_welcome_goes_straight_to_a_person") {
        return;
    }
    let s = setup("zero-welcome");
    let vaxel = start(&s);
    let mut peer = RtpPeer::bind(RTP);
    let sipp = call("flow_call.xml", "+46701234567", "+46850001000", 6000);
    let frames = listen(&mut peer, &[(800, '0')], 5000);
    finish(&mut peer, sipp, "flow_call.xml");
    let welcome = at(&frames, "sv/welcome-shop").expect("the welcome");
    assert!(welcome <= 25, "the welcome starts at frame {welcome}");
    let connecting = at(&frames, "sv/connecting").expect("'connecting' after the key");
    assert!(
        (40..=52).contains(&connecting),
        "the key at 800 ms cut the welcome: 'connecting' at frame {connecting}"
    );
    assert!(at(&frames, "sv/human-option").is_none(), "no more prompts");
    assert!(at(&frames, "sv/main-menu").is_none(), "no menu");
    let hold = at(&frames, "music/hold").expect("hold music in the human queue");
    assert!(
        hold >= connecting + frames_of("sv/connecting") - 2,
        "music after 'connecting'"
    );
    let r = records(&s.url, 1);
    assert_eq!(r[0].0, "+46701234567");
    assert_eq!(r[0].1, "webbshop");
    assert_eq!(r[0].3, "greet > greet_new > human");
    assert_eq!(r[0].4, "abandoned", "hung up while waiting for a person");
    assert!(vaxel.wait_count("queued", 1) >= 1, "{}", vaxel.log());
}

#[test]
fn zero_inside_the_menu_and_inside_digit_collection_goes_to_a_person() {
    if !isolate("zero_inside_the_menu_and_inside_digit_collection_goes_to_a_person") {
        return;
    }
    let s = setup("zero-menu");
    let _vaxel = start(&s);
    let mut peer = RtpPeer::bind(RTP);
    // In the main menu: it starts after the welcome and the human option (~7.2 s).
    let sipp = call("flow_call.xml", "+46701234567", "+46850001000", 11000);
    let frames = listen(&mut peer, &[(8500, '0')], 10000);
    finish(&mut peer, sipp, "flow_call.xml");
    let menu = at(&frames, "sv/main-menu").expect("the main menu");
    let connecting = at(&frames, "sv/connecting").expect("a person after 0");
    assert!(
        menu < connecting && connecting <= 8500 / 20 + 12,
        "menu {menu}, connecting {connecting}"
    );

    // In the order-number collection: 1 picks orders, then 0 as the first key.
    let sipp = call("flow_call.xml", "+46702222222", "+46850001000", 12500);
    let frames = listen(&mut peer, &[(8000, '1'), (10000, '0')], 11500);
    finish(&mut peer, sipp, "flow_call.xml");
    let ask = at(&frames, "sv/ask-order-number").expect("asked for the order number");
    let connecting = at(&frames, "sv/connecting").expect("a person after 0");
    assert!(ask < connecting, "ask {ask}, connecting {connecting}");
    assert!(connecting <= 10000 / 20 + 12, "connecting at {connecting}");

    let r = records(&s.url, 2);
    assert_eq!(r[1].3, "greet > greet_new > hours > main_menu > human");
    assert_eq!(
        r[0].3,
        "greet > greet_new > hours > main_menu > key 1 > orders > ask_order > human"
    );
}

#[test]
fn a_known_repeat_caller_imported_from_csv_is_greeted_and_never_asked() {
    if !isolate("a_known_repeat_caller_imported_from_csv_is_greeted_and_never_asked") {
        return;
    }
    let s = setup("known");
    import_customers(
        &s.url,
        &s.data,
        "number,name,language,tier\n070-111 22 33,Anna Svensson,sv,gold\n",
    );
    let _vaxel = start(&s);
    let mut peer = RtpPeer::bind(RTP);
    // First call: known, not yet a repeat caller.
    let sipp = call("flow_call.xml", "+46701112233", "+46850001000", 3000);
    let frames = listen(&mut peer, &[], 2500);
    finish(&mut peer, sipp, "flow_call.xml");
    let greet = at(&frames, "sv/welcome-known").expect("greeted as a known customer");
    assert!(greet <= 25);
    assert!(at(&frames, "sv/welcome-shop").is_none());
    // Second call minutes later: a repeat caller goes straight to a person.
    let sipp = call("flow_call.xml", "0701112233", "+46850001000", 11000);
    let frames = listen(&mut peer, &[], 10000);
    finish(&mut peer, sipp, "flow_call.xml");
    let back = at(&frames, "sv/welcome-back").expect("'hej igen'");
    let human = at(&frames, "sv/human-option").expect("the human option");
    let hold = at(&frames, "music/hold").expect("queued");
    assert!(back <= 25 && back < human && human < hold);
    for never in ["sv/welcome-shop", "sv/main-menu", "sv/ask-order-number"] {
        assert!(at(&frames, never).is_none(), "heard {never}");
    }
    let r = records(&s.url, 2);
    assert_eq!(r[0].0, "+46701112233", "the same customer in E.164");
    assert_eq!(r[0].3, "greet > greet_repeat > repeat_hours > repeat_queue");
}

#[test]
fn a_menu_with_an_invalid_key_and_a_timeout_behaves_as_written() {
    if !isolate("a_menu_with_an_invalid_key_and_a_timeout_behaves_as_written") {
        return;
    }
    let s = setup("menu");
    let _vaxel = start(&s);
    let mut peer = RtpPeer::bind(RTP);
    // menu.toml: human-option, menu "one"; 7 is invalid ("star", menu again);
    // then 1.5 s of silence ends the one retry: goodbye and the engine hangs up.
    let sipp = call("flow_call_engine_bye.xml", "+46701234567", "200", 20000);
    let frames = listen(&mut peer, &[(5000, '7')], 12000);
    finish(&mut peer, sipp, "flow_call_engine_bye.xml");
    let human = at(&frames, "sv/human-option").expect("human option first");
    let menu = at(&frames, "sv/digit-1").expect("menu prompt");
    let invalid = at(&frames, "sv/digit-star").expect("invalid-key prompt");
    let again = invalid
        + find_prompt_start(
            &frames[invalid..],
            prompts().get("sv/digit-1").unwrap(),
            Codec::Pcmu,
            10,
        )
        .expect("the menu again");
    let bye = at(&frames, "sv/goodbye").expect("goodbye after the retries");
    assert!(human < menu && menu < invalid && invalid < again && again < bye);
    // The timeout runs from the end of the menu prompt: 1.5 s = 75 frames.
    let silence = bye - (again + frames_of("sv/digit-1"));
    assert!(
        (70..=85).contains(&silence),
        "waited {silence} frames for a key"
    );
    assert!(
        at(&frames, "sv/digit-hash").is_none(),
        "no 'no input' prompt on the last attempt"
    );
    let r = records(&s.url, 1);
    assert_eq!(r[0].3, "welcome > menu > invalid > no input > goodbye");
    assert_eq!(r[0].4, "hangup");
}

#[test]
fn a_flow_edited_during_a_call_changes_the_next_call_only() {
    if !isolate("a_flow_edited_during_a_call_changes_the_next_call_only") {
        return;
    }
    let s = setup("reload");
    // The read-back flow only: key 5 says "fem, five".
    let flows = temp_dir("reload-flows");
    let file = flows.join("readback.toml");
    std::fs::copy(root().join("tests/flows/readback.toml"), &file).unwrap();
    let vaxel = Vaxel::start_with(&flows, &s.url, &s.data, &[]);
    let mut peer = RtpPeer::bind(RTP);

    let sipp = call("flow_call.xml", "+46701234567", "100", 6000);
    peer.packets.clear();
    peer.wait_first(Duration::from_secs(5));
    // The edit lands while the call is in progress: 5 now says "sex".
    let text = std::fs::read_to_string(&file).unwrap();
    let edited = text.replace(
        "prompts = [\"sv/digit-5\", \"en/digit-5\"]",
        "prompts = [\"sv/digit-6\"]",
    );
    assert_ne!(text, edited);
    write_like_an_editor(&file, &edited);
    wait_for_log(&vaxel, "flows reloaded", 1);
    let frames = listen_more(&mut peer, &[(3000, '5')], 5000);
    finish(&mut peer, sipp, "flow_call.xml");
    assert!(
        at(&frames, "sv/digit-5").is_some(),
        "the call in progress keeps its version"
    );
    assert!(at(&frames, "en/digit-5").is_some());
    assert!(at(&frames, "sv/digit-6").is_none());

    let sipp = call("flow_call.xml", "+46701234567", "100", 4000);
    let frames = listen(&mut peer, &[(1000, '5')], 3000);
    finish(&mut peer, sipp, "flow_call.xml");
    assert!(
        at(&frames, "sv/digit-6").is_some(),
        "the next call has the new version"
    );
    assert!(at(&frames, "sv/digit-5").is_none());

    // An invalid edit is refused; calls keep working on the last good version.
    write_like_an_editor(&file, &edited.replace("type = \"menu\"", "type = \"meny\""));
    wait_for_log(&vaxel, "flow edit refused", 1);
    assert!(
        vaxel.log().contains("readback.toml:"),
        "the reason, with file and line"
    );
    let sipp = call("flow_call.xml", "+46701234567", "100", 4000);
    let frames = listen(&mut peer, &[(1000, '5')], 3000);
    finish(&mut peer, sipp, "flow_call.xml");
    assert!(
        at(&frames, "sv/digit-6").is_some(),
        "still the last good version"
    );

    let r = records(&s.url, 3);
    assert_eq!(r.len(), 3);
    assert_ne!(r[2].2, r[1].2, "versions recorded: old, then new");
    assert_eq!(r[1].2, r[0].2);
}

/// Waits for SIPp to end the call, then drops what is left in the RTP socket
/// (the next call must not take the old call's packets for its own).
fn finish(peer: &mut RtpPeer, sipp: std::process::Child, what: &str) {
    wait_sipp(sipp, what);
    peer.record(Duration::from_millis(100));
    peer.packets.clear();
}

/// Editors write a new file and rename it over the old one.
fn write_like_an_editor(file: &Path, text: &str) {
    let tmp = file.with_extension("toml.swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

fn wait_for_log(v: &Vaxel, needle: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while v.count(needle) < n {
        assert!(
            Instant::now() < deadline,
            "no `{needle}` in the log:\n{}",
            v.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Like [`listen`] for a call whose first packet was already awaited.
fn listen_more(peer: &mut RtpPeer, keys: &[(u64, char)], total_ms: u64) -> Vec<Vec<u8>> {
    let t0 = peer.packets[0].at;
    let (mut ts, mut seq) = (1000u32, 1u16);
    for (at, key) in keys {
        let until = t0 + Duration::from_millis(*at);
        peer.record(until.saturating_duration_since(Instant::now()));
        peer.send_rfc4733(*key, 101, ts, seq);
        ts = ts.wrapping_add(4000);
        seq = seq.wrapping_add(4);
    }
    peer.record((t0 + Duration::from_millis(total_ms)).saturating_duration_since(Instant::now()));
    peer.payloads()
}

#[test]
fn a_hung_store_delays_the_flow_by_at_most_the_lookup_deadline() {
    if !isolate("a_hung_store_delays_the_flow_by_at_most_the_lookup_deadline") {
        return;
    }
    let s = setup("pg-hung");
    let pg = Pg::start("hung");
    let vaxel = Vaxel::start_with(&s.flows, &pg.url, &s.data, &[]);
    let mut peer = RtpPeer::bind(RTP);
    // The database hangs (SIGSTOP): lookups never answer.
    pg.signal_all("-STOP");
    let sipp = call("flow_call.xml", "+46701234567", "+46850001000", 3000);
    let frames = listen(&mut peer, &[], 2500);
    finish(&mut peer, sipp, "flow_call.xml");
    let welcome = at(&frames, "sv/welcome-shop").expect("the call went on as unknown");
    // The flow's first step needs the lookup: it waited the 300 ms deadline, no more.
    assert!(
        (13..=25).contains(&welcome),
        "the welcome started at frame {welcome}"
    );
    assert_eq!(
        vaxel.wait_count("did not answer in time", 1),
        1,
        "{}",
        vaxel.log()
    );
    // The database comes back: the call record is written after all.
    pg.signal_all("-CONT");
    let r = records(&pg.url, 1);
    assert_eq!(r.len(), 1, "the record survived the outage");
    assert_eq!(r[0].3, "greet > greet_new");

    // Down (stopped): lookups fail at once; calls go on.
    pg.stop();
    let sipp = call("flow_call.xml", "+46701234567", "+46850001000", 3000);
    let frames = listen(&mut peer, &[], 2500);
    finish(&mut peer, sipp, "flow_call.xml");
    assert!(at(&frames, "sv/welcome-shop").is_some(), "the call went on");
    assert!(
        vaxel.wait_count("customer lookup failed", 1) + vaxel.count("did not answer in time") >= 2
    );
}

/// A one-shot HTTP server: answers the first POST with `reply` (JSON) and
/// hands back the request body.
fn webhook_server(reply: &'static str) -> std::sync::mpsc::Receiver<String> {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:5099").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let body = loop {
            let n = conn.read(&mut chunk).unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    break body.to_string();
                }
            }
            if n == 0 {
                break String::new();
            }
        };
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
            reply.len()
        );
        conn.write_all(resp.as_bytes()).unwrap();
        let _ = tx.send(body);
    });
    rx
}

#[test]
fn a_webhook_reply_sets_variables_and_picks_the_next_step() {
    if !isolate("a_webhook_reply_sets_variables_and_picks_the_next_step") {
        return;
    }
    let data = temp_dir("hook");
    let url = format!("sqlite://{}", data.join("vaxel.db").display());
    let vaxel = Vaxel::start_with(&root().join("tests/flows"), &url, &data, &[]);
    let mut peer = RtpPeer::bind(RTP);
    let posted =
        webhook_server(r#"{"vars": {"code": "42", "other": "ignored"}, "next": "say_code"}"#);
    let sipp = call("flow_call_engine_bye.xml", "+46701234567", "300", 10000);
    let frames = listen(&mut peer, &[], 5000);
    finish(&mut peer, sipp, "flow_call_engine_bye.xml");
    let body = posted
        .recv_timeout(Duration::from_secs(2))
        .expect("the webhook was called");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["caller"], "+46701234567");
    assert_eq!(json["flow"], "hook");
    assert_eq!(json["step"], "ask");
    let four = at(&frames, "sv/digit-4").expect("the code read out");
    let two = at(&frames, "sv/digit-2").expect("the code read out");
    let bye = at(&frames, "sv/goodbye").expect("goodbye");
    assert!(four < two && two < bye);
    let r = records(&url, 1);
    assert_eq!(r[0].3, "welcome > ask > say_code > book > goodbye");
    assert_eq!(r[0].4, "callback");
    // No server: the fallback (a silent hang-up) comes at once.
    let sipp = call("flow_call_engine_bye.xml", "+46701234567", "300", 5000);
    let t = Instant::now();
    let frames = listen(&mut peer, &[], 1500);
    finish(&mut peer, sipp, "flow_call_engine_bye.xml");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert!(at(&frames, "sv/digit-4").is_none());
    assert!(
        vaxel.wait_count("webhook failed", 1) >= 1,
        "{}",
        vaxel.log()
    );
}

#[test]
fn a_voicemail_is_recorded_to_a_wav_file_with_a_record() {
    if !isolate("a_voicemail_is_recorded_to_a_wav_file_with_a_record") {
        return;
    }
    let data = temp_dir("voicemail");
    let url = format!("sqlite://{}", data.join("vaxel.db").display());
    let _vaxel = Vaxel::start_with(&root().join("tests/flows"), &url, &data, &[]);
    let mut peer = RtpPeer::bind(RTP);
    let sipp = call("flow_call_engine_bye.xml", "+46701234567", "301", 10000);
    peer.packets.clear();
    peer.wait_first(Duration::from_secs(5));
    // After "noll" and the beep (about 1 s), speak for 2 s: a 440 Hz tone.
    peer.record(Duration::from_millis(1300));
    let tone: Vec<i16> = (0..16000)
        .map(|i| (6000.0 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 8000.0).sin()) as i16)
        .collect();
    peer.send_audio(&tone, 0, 100, 8000);
    peer.send_rfc4733('#', 101, 30000, 300);
    peer.record(Duration::from_millis(1500));
    let frames = peer.payloads();
    finish(&mut peer, sipp, "flow_call_engine_bye.xml");
    assert!(at(&frames, "sv/goodbye").is_some(), "goodbye after #");
    let r = records(&url, 1);
    assert_eq!(r[0].4, "voicemail");
    // The file: under data/voicemail/DATE/, about 2 s, and it is the tone.
    let day_dirs: Vec<_> = std::fs::read_dir(data.join("voicemail")).unwrap().collect();
    assert_eq!(day_dirs.len(), 1);
    let files: Vec<_> = std::fs::read_dir(day_dirs[0].as_ref().unwrap().path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let pcm = vaxel::media::prompt::decode_file(&files[0]).unwrap();
    let secs = pcm.len() as f64 / 8000.0;
    assert!((1.7..2.6).contains(&secs), "recorded {secs:.2} s");
    let loud: Vec<i16> = pcm.iter().copied().filter(|s| s.abs() > 500).collect();
    assert!(loud.len() as f64 > pcm.len() as f64 * 0.5, "mostly sound");
    let crossings = pcm.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count() as f64 / secs;
    assert!(
        (800.0..960.0).contains(&crossings),
        "{crossings:.0} zero crossings/s: not 440 Hz"
    );
}

#[test]
fn a_transfer_goes_only_to_the_configured_destination_and_falls_back_when_refused() {
    if !isolate("a_transfer_goes_only_to_the_configured_destination_and_falls_back_when_refused") {
        return;
    }
    let data = temp_dir("transfer");
    let url = format!("sqlite://{}", data.join("vaxel.db").display());
    // tests/vaxel.toml configures "support" as sip:support@192.0.2.7:5060.
    let vaxel = Vaxel::start_with(&root().join("tests/flows"), &url, &data, &[]);
    let mut peer = RtpPeer::bind(RTP);
    let trunk = |scenario: &str, status: &str| {
        sipp(
            scenario,
            &[
                ("rtp_port", "40000"),
                ("pts", "0 101"),
                ("from", "+46701234567"),
                ("to", "302"),
                ("talk_ms", "8000"),
                ("refer_to", "sip:support@192.0.2.7:5060"),
                ("refer_status", status),
                ("notify_status", "200 OK"),
            ],
            &[],
        )
    };
    // Accepted: REFER names the configured URI (SIPp checks), NOTIFY 200, engine BYE.
    let sipp = trunk("transfer_ok.xml", "202");
    let _ = listen(&mut peer, &[], 1500);
    finish(&mut peer, sipp, "transfer_ok.xml");
    // Refused: the flow's fallback says goodbye and hangs up.
    let sipp = trunk("transfer_refused.xml", "403");
    let frames = listen(&mut peer, &[], 3000);
    finish(&mut peer, sipp, "transfer_refused.xml");
    assert!(at(&frames, "sv/goodbye").is_some(), "the fallback ran");
    let r = records(&url, 2);
    assert_eq!(r[1].3, "welcome > transfer");
    assert_eq!(r[1].4, "transfer");
    assert_eq!(r[0].3, "welcome > transfer > goodbye");
    assert_eq!(r[0].4, "hangup");
    assert_eq!(
        vaxel.wait_count("transfer completed", 1),
        1,
        "{}",
        vaxel.log()
    );
    assert_eq!(
        vaxel.wait_count("REFER refused with 403", 1),
        1,
        "{}",
        vaxel.log()
    );
}
