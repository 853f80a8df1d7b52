//! Agents on real phones: PJSIP softphones (PyPI `pjsua2-python`) register to
//! the running engine with digest authentication, a PJSIP caller presses 0,
//! and the agent's phone rings; once it answers, each side's recording is
//! compared with what the other side played (both decoded by `sox`, not by the
//! engine). Also: a PCMA caller bridged to a PCMU agent, ring-no-answer moving
//! the caller to the next agent, the caller hanging up while the agent rings,
//! `*2` taking an agent out of rotation, and refused and blocked credentials.
//! Every test runs inside its own network namespace.

mod common;

use common::phones::*;
use common::*;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn start() -> Vaxel {
    let cfg = root().join("tests/agents.toml");
    Vaxel::start(&["--config", cfg.to_str().unwrap()])
}

/// The engine with `extra` added to the agent tests' configuration.
fn start_with_config(name: &str, edit: impl Fn(String) -> String) -> Vaxel {
    let text = edit(std::fs::read_to_string(root().join("tests/agents.toml")).unwrap());
    let cfg = temp_dir(name).join("agents.toml");
    std::fs::write(&cfg, text).unwrap();
    Vaxel::start(&["--config", cfg.to_str().unwrap()])
}

/// The engine challenging with MD5 only: SIPp answers the first challenge
/// whatever its algorithm, and knows only MD5.
fn start_md5() -> Vaxel {
    start_with_config("agents-md5", |t| {
        t.replace("[acd]\n", "[acd]\ndigest_algorithms = [\"MD5\"]\n")
    })
}

fn both_sides_hear_each_other(caller_codec: &str, agent_codec: &str, name: &str) {
    let vaxel = start();
    let dir = temp_dir(name);
    let caller_voice = voice("en/welcome-known", &dir);
    let agent_voice = voice("sv/connecting", &dir);
    let agent_rec = dir.join("agent.wav");
    let caller_rec = dir.join("caller.wav");
    let mut phone = AgentPhone::new("alice", "alice-secret", 5080);
    phone.play = Some(&agent_voice);
    phone.record = Some(&agent_rec);
    phone.codec = agent_codec;
    phone.answer_after = "0.5";
    phone.duration = 20;
    let agent = phone.start();
    assert!(
        vaxel.wait_count("agent's phone registered", 1) >= 1,
        "{}",
        vaxel.log()
    );
    let call = caller(&caller_rec, &caller_voice, caller_codec, "1.0", "9");
    let key = call
        .wait_for("key sent at", 15)
        .expect("caller pressed no key");
    let rang = agent
        .wait_for("incoming", 10)
        .expect("the agent's phone did not ring");
    let ring_delay = time_of(&rang) - time_of(&key);
    eprintln!(
        "agent's phone rang {:.0} ms after the key",
        ring_delay * 1000.0
    );
    assert!(ring_delay < 1.0, "rang {ring_delay:.3} s after the key");
    let answered = agent
        .wait_for("answered", 10)
        .expect("agent did not answer");
    let call_lines = call.finish();
    agent
        .wait_for("disconnected", 10)
        .expect("the agent's call did not end");
    std::thread::sleep(Duration::from_millis(300));
    drop(agent);
    let answered_at: f64 = time_of(&answered);
    let media_at = call_lines
        .iter()
        .find(|l| l.starts_with("key sent at"))
        .map(|l| time_of(l) - l.split_whitespace().nth(3).unwrap().parse::<f64>().unwrap())
        .unwrap();
    // The caller's recording started at its answer (media_at); the agent's
    // voice comes after the agent answered.
    let caller_heard = sox_samples(&caller_rec);
    let agent_heard = sox_samples(&agent_rec);
    let share = heard(
        &caller_heard,
        answered_at - media_at,
        &sox_samples(&agent_voice),
    );
    assert!(
        share >= 0.7,
        "the caller did not hear the agent ({share:.2})"
    );
    let share = heard(&agent_heard, 0.0, &sox_samples(&caller_voice));
    assert!(
        share >= 0.7,
        "the agent did not hear the caller ({share:.2})"
    );
    // The record: the agent, the wait and the talk time.
    assert!(vaxel.wait_count("agent answered: bridged", 1) >= 1);
    assert!(
        vaxel.wait_count("agent=alice", 1) >= 1 && vaxel.count("talk_s=") >= 1,
        "{}",
        vaxel.log()
    );
}

#[test]
fn agent_answers_and_both_sides_hear_each_other() {
    if isolate("agent_answers_and_both_sides_hear_each_other") {
        both_sides_hear_each_other("PCMU", "PCMU", "agents-pcmu");
    }
}

#[test]
fn a_pcma_caller_and_a_pcmu_agent_hear_each_other_through_transcoding() {
    if isolate("a_pcma_caller_and_a_pcmu_agent_hear_each_other_through_transcoding") {
        both_sides_hear_each_other("PCMA", "PCMU", "agents-pcma");
    }
}

#[test]
fn ring_no_answer_moves_the_caller_to_the_next_agent() {
    if !isolate("ring_no_answer_moves_the_caller_to_the_next_agent") {
        return;
    }
    let vaxel = start();
    let dir = temp_dir("agents-rna");
    let caller_voice = voice("en/welcome-known", &dir);
    let bob_voice = voice("sv/connecting", &dir);
    // Alice registers first (longest idle: offered first) and never answers.
    let mut a = AgentPhone::new("alice", "alice-secret", 5080);
    a.answer_after = "never";
    let alice = a.start();
    std::thread::sleep(Duration::from_millis(300));
    let mut b = AgentPhone::new("bob", "bob-secret", 5082);
    b.play = Some(&bob_voice);
    b.answer_after = "0.5";
    let bob = b.start();
    let rec = dir.join("caller.wav");
    let call = caller(&rec, &caller_voice, "PCMU", "0.5", "10");
    let alice_rang = alice
        .wait_for("incoming", 10)
        .expect("alice's phone did not ring");
    let cancelled = alice
        .wait_for("disconnected", 10)
        .expect("alice's phone rang on");
    assert!(cancelled.starts_with("disconnected 487"), "{cancelled}");
    let rang_for = time_of(&cancelled) - time_of(&alice_rang);
    assert!(
        (3.5..5.5).contains(&rang_for),
        "alice rang {rang_for:.2} s (ring timeout 4 s)"
    );
    let bob_rang = bob
        .wait_for("incoming", 5)
        .expect("bob's phone did not ring");
    assert!(time_of(&bob_rang) - time_of(&cancelled) < 1.0);
    bob.wait_for("answered", 5).expect("bob did not answer");
    call.finish();
    assert!(
        vaxel.wait_count("offered to alice: no answer", 1) >= 1
            || vaxel.count("offer not answered") >= 1,
        "{}",
        vaxel.log()
    );
    assert!(!alice.has("answered"));
}

#[test]
fn the_caller_hanging_up_while_the_agent_rings_cancels_the_agent_leg() {
    if !isolate("the_caller_hanging_up_while_the_agent_rings_cancels_the_agent_leg") {
        return;
    }
    let vaxel = start();
    let dir = temp_dir("agents-cancel");
    let caller_voice = voice("en/welcome-known", &dir);
    let mut a = AgentPhone::new("alice", "alice-secret", 5080);
    a.answer_after = "never";
    let alice = a.start();
    let call = caller(&dir.join("c.wav"), &caller_voice, "PCMU", "0.5", "2.5");
    let rang = alice
        .wait_for("incoming", 10)
        .expect("alice's phone did not ring");
    let lines = call.finish();
    let hung_up = lines
        .iter()
        .find(|l| l.starts_with("state DISCONNECTED"))
        .cloned();
    assert!(hung_up.is_some(), "{lines:?}");
    let ended = alice
        .wait_for("disconnected", 5)
        .expect("alice's phone kept ringing");
    assert!(ended.starts_with("disconnected 487"), "{ended}");
    assert!(time_of(&ended) - time_of(&rang) < 3.0);
    assert!(vaxel.wait_count("caller hung up", 1) >= 1);
}

#[test]
fn star_two_takes_an_agent_out_of_rotation_and_star_one_back() {
    if !isolate("star_two_takes_an_agent_out_of_rotation_and_star_one_back") {
        return;
    }
    let vaxel = start();
    let dir = temp_dir("agents-codes");
    let caller_voice = voice("en/welcome-known", &dir);
    let rec = dir.join("alice");
    let mut a = AgentPhone::new("alice", "alice-secret", 5080);
    a.dial = "*2@0.3,*1@7";
    a.record = Some(&rec);
    a.answer_after = "0.3";
    let alice = a.start();
    let done = alice.wait_for("dialled *2", 10).expect("*2 not dialled");
    assert!(
        done.starts_with("dialled *2 200"),
        "the engine hung up after the prompt: {done}"
    );
    assert!(
        vaxel.wait_count("agent alice is on break", 1) >= 1,
        "{}",
        vaxel.log()
    );
    // The confirmation was heard: "Du har paus." (decoded by sox).
    let heard_break = sox_samples(&dir.join("alice.2.wav"));
    let prompt = sox_samples(&root().join("audio/sv/agent-break.wav"));
    assert!(
        heard(&heard_break, 0.0, &prompt) >= 0.75,
        "*2 was not confirmed by its prompt"
    );
    // On break: a caller waits, alice's phone does not ring…
    let call = caller(&dir.join("c.wav"), &caller_voice, "PCMU", "0.3", "12");
    call.wait_for("key sent at", 10).expect("no key");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !alice.has("incoming"),
        "an agent on break was offered a call"
    );
    // …until she dials *1 (7 s after registering); then it rings.
    let back = alice.wait_for("dialled *1", 15).expect("*1 not dialled");
    let rang = alice
        .wait_for("incoming", 5)
        .expect("alice not offered after *1");
    assert!(time_of(&rang) - time_of(&back) < 1.0);
    call.finish();
}

/// A REGISTER for `user` from `sock`, with an Authorization when given.
fn register(sock: &UdpSocket, user: &str, cseq: u32, auth: Option<String>) -> String {
    let local = sock.local_addr().unwrap();
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let msg = format!(
        "REGISTER sip:{SIP} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKreg{cseq}{}\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@{SIP}>;tag=r{cseq}\r\nTo: <sip:{user}@{SIP}>\r\nCall-ID: reg-{}-{user}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@{local}>\r\nExpires: 300\r\n{auth}Content-Length: 0\r\n\r\n",
        local.port(),
        local.port()
    );
    sock.send_to(msg.as_bytes(), SIP).unwrap();
    let mut buf = [0u8; 4096];
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (n, _) = sock.recv_from(&mut buf).expect("no answer to REGISTER");
    String::from_utf8_lossy(&buf[..n]).to_string()
}

fn answer(challenge: &str, user: &str, password: &str) -> String {
    let line = challenge
        .lines()
        .find(|l| l.starts_with("WWW-Authenticate:") && l.contains("MD5"))
        .expect("an MD5 challenge");
    let nonce = line
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let mut a = vaxel::acd::digest::Authorization {
        username: user.into(),
        realm: "vaxel".into(),
        nonce: nonce.into(),
        uri: format!("sip:{SIP}"),
        response: String::new(),
        algorithm: vaxel::acd::digest::Algorithm::Md5,
        qop: Some(("abc".into(), "00000001".into())),
    };
    a.response = a.expected("REGISTER", password);
    format!(
        "Digest username=\"{user}\", realm=\"vaxel\", nonce=\"{nonce}\", uri=\"sip:{SIP}\", response=\"{}\", algorithm=MD5, qop=auth, cnonce=\"abc\", nc=00000001",
        a.response
    )
}

#[test]
fn wrong_credentials_are_refused_and_repeated_failures_blocked() {
    if !isolate("wrong_credentials_are_refused_and_repeated_failures_blocked") {
        return;
    }
    let vaxel = start();
    let attacker = UdpSocket::bind("127.0.0.66:0").unwrap();
    let challenge = register(&attacker, "alice", 1, None);
    assert!(challenge.starts_with("SIP/2.0 401"), "{challenge}");
    let algs: Vec<&str> = challenge
        .lines()
        .filter(|l| l.starts_with("WWW-Authenticate:"))
        .collect();
    assert!(
        algs.len() == 2 && algs[0].contains("SHA-256") && algs[1].contains("MD5"),
        "{algs:?}"
    );
    for i in 0..3 {
        let r = register(
            &attacker,
            "alice",
            2 + i,
            Some(answer(&challenge, "alice", "guess")),
        );
        assert!(r.starts_with("SIP/2.0 403"), "{r}");
    }
    // Blocked now: even the right password is refused from that address…
    let r = register(
        &attacker,
        "alice",
        9,
        Some(answer(&challenge, "alice", "alice-secret")),
    );
    assert!(r.starts_with("SIP/2.0 403"), "{r}");
    assert_eq!(
        vaxel.wait_count("repeated authentication failures", 2),
        2,
        "logged once per source and account"
    );
    // …and for the account (from anywhere) while the block lasts; bob is fine.
    let other = UdpSocket::bind("127.0.0.1:0").unwrap();
    let c = register(&other, "bob", 1, None);
    let r = register(&other, "bob", 2, Some(answer(&c, "bob", "bob-secret")));
    assert!(r.starts_with("SIP/2.0 200"), "{r}");
    assert!(
        !vaxel.log().contains("guess") && !vaxel.log().contains("alice-secret"),
        "no password in the log"
    );
}

#[test]
fn a_sipp_agent_answers_and_the_caller_hears_itself_echoed_through_both_legs() {
    if !isolate("a_sipp_agent_answers_and_the_caller_hears_itself_echoed_through_both_legs") {
        return;
    }
    let vaxel = start_md5();
    // The agent's phone is SIPp: it registers (digest), then answers with
    // -rtp_echo, sending every packet back: the caller's audio goes through
    // the relay to the agent and back through it to the caller.
    let agent = [("agent", "bob")];
    let reg = sipp(
        "agent_register.xml",
        &agent,
        &["-p", "5085", "-au", "bob", "-ap", "bob-secret"],
    );
    wait_sipp(reg, "agent registration");
    let answer = sipp(
        "agent_answer.xml",
        &[("agent", "bob"), ("ring_ms", "300")],
        &["-p", "5085", "-rtp_echo", "-mp", "6600"],
    );
    let mut peer = RtpPeer::bind(40000);
    let caller = sipp(
        "flow_call.xml",
        &[
            ("rtp_port", "40000"),
            ("pts", "0 101"),
            ("from", "+46701230000"),
            ("to", "100"),
            ("talk_ms", "7000"),
        ],
        &["-p", "5086"],
    );
    peer.wait_first(Duration::from_secs(5));
    peer.send_rfc4733('0', 101, 1000, 1);
    assert!(
        vaxel.wait_count("agent answered: bridged", 1) >= 1,
        "{}",
        vaxel.log()
    );
    // Two seconds of speech (the welcome), sent as PCMU; it must come back.
    let p = prompts();
    let speech: Vec<i16> = p
        .get("en/welcome")
        .unwrap()
        .pcm
        .iter()
        .copied()
        .skip(4000)
        .take(16000)
        .collect();
    let mark = peer.packets.len();
    peer.send_audio(&speech, 0, 5000, 80_000);
    peer.record(Duration::from_millis(500));
    let sent: Vec<Vec<u8>> = speech
        .chunks(160)
        .map(|f| {
            f.iter()
                .map(|s| vaxel::media::g711::linear_to_ulaw(*s))
                .collect()
        })
        .collect();
    let heard: std::collections::HashSet<Vec<u8>> = peer.packets[mark..]
        .iter()
        .map(|p| p.payload.clone())
        .collect();
    let back = sent.iter().filter(|f| heard.contains(*f)).count();
    eprintln!(
        "{back} of {} frames came back through both legs",
        sent.len()
    );
    assert!(
        back * 10 >= sent.len() * 9,
        "only {back} of {} frames came back",
        sent.len()
    );
    wait_sipp(caller, "caller");
    wait_sipp(answer, "agent answering");
    assert!(vaxel.wait_count("talk ended", 1) >= 1);
}

#[test]
fn an_agent_registered_over_tcp_is_reached_on_its_connection_after_it_went_idle() {
    if !isolate("an_agent_registered_over_tcp_is_reached_on_its_connection_after_it_went_idle") {
        return;
    }
    // Idle TCP connections are closed after 2 s, but not one a binding uses.
    let vaxel = start_with_config("agents-tcp", |t| format!("{t}\n[limits]\ntcp_idle_s = 2\n"));
    let dir = temp_dir("agents-tcp-voice");
    let caller_voice = voice("en/welcome-known", &dir);
    let mut a = AgentPhone::new("alice", "alice-secret", 5080);
    a.transport = "tcp";
    a.answer_after = "0.3";
    let alice = a.start();
    std::thread::sleep(Duration::from_secs(4));
    let call = caller(&dir.join("c.wav"), &caller_voice, "PCMU", "0.5", "4");
    let key = call.wait_for("key sent at", 10).expect("no key");
    let rang = alice
        .wait_for("incoming", 5)
        .unwrap_or_else(|| panic!("the TCP agent was not reached:\n{}", vaxel.log()));
    assert!(time_of(&rang) - time_of(&key) < 1.0);
    alice.wait_for("answered", 5).expect("not answered");
    call.finish();
    assert!(vaxel.wait_count("agent answered: bridged", 1) >= 1);
    assert!(
        vaxel.log().contains("transport=\"TCP\""),
        "offered over TCP"
    );
}

#[test]
fn the_registrar_answers_rfc4475_registers_as_a_registrar_should() {
    use vaxel::acd::digest::Nonces;
    use vaxel::acd::registrar::{Registrar, RegistrarSettings};
    use vaxel::sip::message::Message;
    let t0 = Instant::now();
    let mut r = Registrar::new(
        RegistrarSettings::default(),
        Nonces::new([3; 32], t0, Duration::from_secs(300)),
        [("user".to_string(), "a-long-secret".to_string())].into(),
    );
    let src = "127.0.0.1:5070".parse().unwrap();
    // An unknown authorization scheme and an escaped Contact: challenged
    // (credentials come first); nothing is bound, nothing counts as a failure.
    for (file, want) in [
        ("regaut01.dat", 401),
        ("regescrt.dat", 401),
        ("regbadct.dat", 401),
    ] {
        let data = std::fs::read(shared_dir().join("sip-torture").join(file)).unwrap();
        let Ok(Message::Request(req)) = vaxel::sip::parse::parse_message(&data, false) else {
            // Unparseable ones go to a shard, which answers 400 (tests/torture.rs).
            continue;
        };
        let (resp, events) = r.on_register(t0, &req, vaxel::sip::Transport::Udp, src, src);
        assert_eq!(resp.status, want, "{file}");
        assert!(events.is_empty(), "{file}: {events:?}");
    }
    assert_eq!(r.binding_count(), 0);
    assert_eq!(r.refused, 0);
}

/// Polls the engine's log for `needle` for up to `secs`.
fn wait_log(vaxel: &Vaxel, needle: &str, secs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while vaxel.count(needle) == 0 {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// An engine of its own for one test: `flow` as the only flow, the agent
/// tests' configuration edited by `config`, and a fresh SQLite store; with
/// what a restart needs (flows, store URL, data folder, arguments).
struct Setup {
    dir: PathBuf,
    flows: PathBuf,
    url: String,
    data: PathBuf,
    cfg: PathBuf,
}

impl Setup {
    fn new(name: &str, flow: &str, config: impl Fn(String) -> String) -> Setup {
        let dir = temp_dir(name);
        let flows = dir.join("flows");
        std::fs::create_dir_all(&flows).unwrap();
        std::fs::write(flows.join(format!("{name}.toml")), flow).unwrap();
        let text = config(std::fs::read_to_string(root().join("tests/agents.toml")).unwrap());
        let cfg = dir.join("vaxel.toml");
        std::fs::write(&cfg, text).unwrap();
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let url = format!("sqlite://{}", data.join("vaxel.db").display());
        Setup {
            dir,
            flows,
            url,
            data,
            cfg,
        }
    }

    fn start(&self) -> Vaxel {
        Vaxel::start_with(
            &self.flows,
            &self.url,
            &self.data,
            &["--config", self.cfg.to_str().unwrap()],
        )
    }
}

/// The callback test's flow: the human option, then a callback to the
/// caller's own number is booked at once, confirmed, and the call ends.
const CALLBACK_FLOW: &str = r#"
numbers = ["100"]
languages = ["en"]
start = "welcome"

[human]
queue = "kundtjanst"
announcement = "human-option"

[steps.welcome]
type = "play"
prompts = ["human-option"]
next = "book"

[steps.book]
type = "callback"
queue = "kundtjanst"
prompts = ["callback-queued"]
next = "bye"

[steps.bye]
type = "hangup"
"#;

#[test]
fn a_booked_callback_survives_kill_9_then_the_agent_and_the_customer_are_called_and_talk() {
    if !isolate(
        "a_booked_callback_survives_kill_9_then_the_agent_and_the_customer_are_called_and_talk",
    ) {
        return;
    }
    let setup = Setup::new("callback", CALLBACK_FLOW, |t| {
        t + r#"
[[trunks]]
name = "operator"
from = ["127.0.0.1"]
outbound = "sip:{number}@127.0.0.1:5095"

[callbacks]
trunk = "operator"
allowed = ["+4670*"]
ring_s = 15
"#
    });
    let dir = setup.dir.clone();
    let vaxel = setup.start();
    // The caller books a callback (no agent is there) and hears it is booked.
    let voice_c = voice("en/welcome-known", &dir);
    let call = Script::spawn(&[
        root()
            .join("tests/pjsua/call_and_record.py")
            .display()
            .to_string(),
        format!("sip:100@{SIP}"),
        dir.join("caller.wav").display().to_string(),
        "--key-at".into(),
        "60".into(),
        "--duration".into(),
        "12".into(),
        "--play".into(),
        voice_c.display().to_string(),
    ]);
    assert!(wait_log(&vaxel, "callback stored", 15), "{}", vaxel.log());
    call.finish();
    // kill -9 and a restart: the callback is still there.
    drop(vaxel);
    let vaxel = setup.start();
    assert!(
        vaxel.wait_count("pending callbacks restored", 1) >= 1,
        "{}",
        vaxel.log()
    );
    // The customer's phone behind the trunk: SIPp answering with RTP echo.
    let customer = sipp(
        "agent_answer.xml",
        &[("agent", "customer"), ("ring_ms", "500")],
        &["-p", "5095", "-rtp_echo", "-mp", "6700"],
    );
    // An agent signs in: rung first, then the customer is dialled and bridged.
    let agent_voice = voice("sv/connecting", &dir);
    let agent_rec = dir.join("agent.wav");
    let mut phone = AgentPhone::new("alice", "alice-secret", 5080);
    phone.play = Some(&agent_voice);
    phone.record = Some(&agent_rec);
    phone.answer_after = "0.5";
    phone.duration = 14;
    phone.hangup_after = "10";
    let agent = phone.start();
    agent
        .wait_for("incoming", 15)
        .expect("the agent's phone did not ring");
    assert!(
        wait_log(&vaxel, "customer answered: bridged", 20),
        "{}",
        vaxel.log()
    );
    agent
        .wait_for("disconnected", 20)
        .expect("the agent's call did not end");
    wait_sipp(customer, "customer's phone");
    // The script writes its recording out as it ends.
    agent.finish();
    // The agent hears their own voice come back through the customer's phone:
    // audio went agent → customer and customer → agent. The agent's recording
    // starts at its answer and the bridge comes about 0.6 s later (the
    // customer rings 0.5 s); the voice loops, so from 1 s on one period holds
    // every part of it.
    let rec = sox_samples(&agent_rec);
    let rms: Vec<u32> = rec
        .chunks(8000)
        .map(|c| (c.iter().map(|x| x * x).sum::<f32>() / c.len() as f32).sqrt() as u32)
        .collect();
    eprintln!("the agent's recording, RMS per second: {rms:?}");
    assert!(rms.len() >= 5, "the agent's recording is too short");
    let share = heard(&rec, 1.0, &sox_samples(&agent_voice));
    assert!(
        share >= 0.7,
        "no audio both ways through the callback ({share:.2})"
    );
    assert!(
        vaxel.wait_count("connected (attempt 1), completed", 1) >= 1,
        "{}",
        vaxel.log()
    );
}

/// What `vaxel customers show` prints for `number` in the store at `url`.
fn customer_line(url: &str, number: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_vaxel"))
        .args(["customers", "show", number, "--data", url])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_known_caller_reaches_their_last_agent_again_although_another_was_idle_longer() {
    if !isolate("a_known_caller_reaches_their_last_agent_again_although_another_was_idle_longer") {
        return;
    }
    let dir = temp_dir("sticky");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let url = format!("sqlite://{}", data.join("vaxel.db").display());
    // The caller (PJSIP's From is +46700000001) is a customer imported by CSV.
    import_customers(
        &url,
        &dir,
        "number,name,language,tier\n0700000001,Per Persson,sv,silver\n",
    );
    let cfg = root().join("tests/agents.toml");
    let vaxel = Vaxel::start_with(
        &root().join("tests/flows"),
        &url,
        &data,
        &["--config", cfg.to_str().unwrap()],
    );
    let mut alice = AgentPhone::new("alice", "alice-secret", 5080);
    alice.answer_after = "0.5";
    alice.duration = 60;
    let alice = alice.start();
    let mut bob = AgentPhone::new("bob", "bob-secret", 5081);
    bob.answer_after = "0.5";
    bob.duration = 60;
    let bob = bob.start();
    assert!(wait_log(&vaxel, "agent's phone registered", 10));
    let voice_c = voice("en/welcome-known", &dir);
    // First call: whoever has been idle longest answers; call them A.
    let first = caller(&dir.join("c1.wav"), &voice_c, "PCMU", "1.0", "5");
    assert!(
        wait_log(&vaxel, "agent answered: bridged", 20),
        "{}",
        vaxel.log()
    );
    first.finish();
    let offered: Vec<String> = vaxel
        .log()
        .lines()
        .filter(|l| l.contains("offering to agent"))
        .map(str::to_string)
        .collect();
    let a = if offered[0].contains("agent=alice") {
        "alice"
    } else {
        "bob"
    };
    let b = if a == "alice" { "bob" } else { "alice" };
    eprintln!("first call answered by {a}; {b} stays idle");
    // The record reaches the store: the customer's last agent is A.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !customer_line(&url, "+46700000001").contains(&format!("last agent {a}")) {
        assert!(
            Instant::now() < deadline,
            "{}",
            customer_line(&url, "+46700000001")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A's wrap-up (1 s) is over by now; B has been idle longer, yet the
    // second call goes to A, and the record says why.
    let second = caller(&dir.join("c2.wav"), &voice_c, "PCMU", "1.0", "5");
    let deadline = Instant::now() + Duration::from_secs(20);
    while vaxel.count("agent answered: bridged") < 2 {
        assert!(Instant::now() < deadline, "{}", vaxel.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    second.finish();
    let offers: Vec<String> = vaxel
        .log()
        .lines()
        .filter(|l| l.contains("offering to agent"))
        .map(str::to_string)
        .collect();
    assert_eq!(offers.len(), 2, "{offers:?}");
    assert!(
        offers[1].contains(&format!("agent={a}"))
            && offers[1].contains(&format!("sticky: last agent {a}")),
        "{}",
        offers[1]
    );
    drop((alice, bob));
}

/// Rows in one of the store's tables (the store opened read as the CLI would).
fn rows(url: &str, data: &Path, table: vaxel::store::Table) -> i64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = vaxel::store::Store::open(vaxel::store::StoreSettings {
            url: url.to_string(),
            data_dir: data.to_path_buf(),
            repeat_days: 7,
            retention_days: 365,
        })
        .await
        .unwrap();
        let n = store.count(table).await.unwrap();
        store.close().await;
        n
    })
}

#[test]
fn a_flood_of_callers_switches_the_queue_into_high_load_and_back() {
    if !isolate("a_flood_of_callers_switches_the_queue_into_high_load_and_back") {
        return;
    }
    // No agent signs in: three waiting callers switch the policy on; it goes
    // off once nobody waits (after at least 2 s on).
    let setup = Setup::new(
        "flood",
        r#"
numbers = ["200"]
languages = ["en"]
start = "welcome"

[human]
queue = "kundtjanst"
announcement = "human-option"

[steps.welcome]
type = "play"
prompts = ["human-option"]
next = "wait"

[steps.wait]
type = "queue"
queue = "kundtjanst"
"#,
        |t| {
            t.replace(
                "[queues.kundtjanst]\n",
                "[queues.kundtjanst]\nhigh_load = \"busy\"\n",
            ) + r#"
[policies.busy]
enter_waiting = 3
leave_waiting = 0
min_s = 2
announcement = "queue-busy"
"#
        },
    );
    let (url, data) = (setup.url.clone(), setup.data.clone());
    let vaxel = setup.start();
    // Five callers, one every 1.5 s, each staying 9 s.
    let callers = sipp(
        "flow_call.xml",
        &[
            ("rtp_port", "40010"),
            ("pts", "0 101"),
            ("from", "+46701230000"),
            ("to", "200"),
            ("talk_ms", "9000"),
        ],
        &["-p", "5087", "-m", "5", "-l", "5", "-r", "2", "-rp", "3000"],
    );
    assert!(
        wait_log(&vaxel, "high-load policy switched", 20),
        "{}",
        vaxel.log()
    );
    // Callers who come while it is on hear the policy's announcement.
    assert!(
        wait_log(&vaxel, "prompt=\"queue-busy\"", 15),
        "{}",
        vaxel.log()
    );
    wait_sipp(callers, "callers");
    let deadline = Instant::now() + Duration::from_secs(15);
    while vaxel.count("high-load policy switched") < 2 {
        assert!(Instant::now() < deadline, "{}", vaxel.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let switches: Vec<String> = vaxel
        .log()
        .lines()
        .filter(|l| l.contains("high-load policy switched"))
        .map(str::to_string)
        .collect();
    assert!(
        switches[0].contains("on=true") && switches[0].contains("waiting=3"),
        "{}",
        switches[0]
    );
    assert!(
        switches[1].contains("on=false") && switches[1].contains("waiting=0"),
        "{}",
        switches[1]
    );
    // Both switches are in the store, with their figures.
    let deadline = Instant::now() + Duration::from_secs(10);
    while rows(&url, &data, vaxel::store::Table::LoadEvents) < 2 {
        assert!(Instant::now() < deadline, "load events not stored");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_callback_number_outside_the_allowed_patterns_is_refused() {
    if !isolate("a_callback_number_outside_the_allowed_patterns_is_refused") {
        return;
    }
    // The caller types the number to be called back on (RFC 4733 from the
    // test's RTP endpoint); only +4670… numbers besides their own are allowed.
    let setup = Setup::new(
        "refused",
        r##"
numbers = ["300"]
languages = ["en"]
start = "welcome"

[human]
queue = "kundtjanst"
announcement = "human-option"

[steps.welcome]
type = "play"
prompts = ["human-option"]
next = "ask"

[steps.ask]
type = "collect"
prompts = ["ask-order-number"]
var = "cb_number"
min = 8
max = 12
terminator = "#"
timeout_s = 10
human_key = "first"
next = "book"

[steps.book]
type = "callback"
queue = "kundtjanst"
number_var = "cb_number"
prompts = ["callback-queued"]
next = "bye"
on_error = "refused"

[steps.refused]
type = "hangup"
prompts = ["callback-refused"]

[steps.bye]
type = "hangup"
"##,
        |t| t + "\n[callbacks]\nallowed = [\"+4670*\"]\n",
    );
    let (url, data) = (setup.url.clone(), setup.data.clone());
    let vaxel = setup.start();
    let mut peer = RtpPeer::bind(40020);
    let caller = sipp(
        "flow_call_engine_bye.xml",
        &[
            ("rtp_port", "40020"),
            ("pts", "0 101"),
            ("from", "+46701230000"),
            ("to", "300"),
            ("talk_ms", "30000"),
        ],
        &["-p", "5088"],
    );
    peer.wait_first(Duration::from_secs(5));
    // Once the human option (about 4 s of the engine's packets) has played,
    // the question: a premium-rate number, typed with the country code (0
    // first would be the human key).
    peer.record(Duration::from_secs(5));
    for (i, key) in "46900123456#".chars().enumerate() {
        let i = i as u32;
        peer.send_rfc4733(key, 101, 8000 + i * 2000, (100 + i * 10) as u16);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        wait_log(&vaxel, "callback refused: number not allowed", 15),
        "{}",
        vaxel.log()
    );
    wait_sipp(caller, "caller");
    assert!(!vaxel.log().contains("callback stored"));
    assert_eq!(rows(&url, &data, vaxel::store::Table::Callbacks), 0);
}
