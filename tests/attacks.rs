//! Issue 7: the running engine under attack, inside `unshare -n`, with the
//! attacker on 127.0.0.66 and the legitimate callers on 127.0.0.1 (per-source
//! limits are tested as they work in the field). Each test checks what a
//! caller would notice: calls answered, the welcome's audio arriving, nothing
//! reaching a stranger, the engine still up afterwards.

mod common;

use common::ua::*;
use common::*;
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};
use vaxel::media::g711::Codec;

const ATTACKER: &str = "127.0.0.66";

fn server() -> SocketAddr {
    SIP.parse().unwrap()
}

/// tests/vaxel.toml plus `extra` TOML, written to a fresh file.
fn config_with(name: &str, extra: &str) -> String {
    let base = std::fs::read_to_string(root().join("tests/vaxel.toml")).unwrap();
    let dir = temp_dir(name);
    let path = dir.join("vaxel.toml");
    // Tables in `extra` go before [destinations] would swallow nothing: append.
    std::fs::write(&path, format!("{extra}\n{base}")).unwrap();
    path.to_str().unwrap().to_string()
}

fn start(name: &str, extra_toml: &str, args: &[&str], env: &[(&str, &str)]) -> Vaxel {
    let data = temp_dir(name);
    let url = format!("sqlite://{}", data.join("vaxel.db").display());
    let cfg = config_with(&format!("{name}-cfg"), extra_toml);
    let mut all: Vec<&str> = vec!["--config", &cfg];
    all.extend_from_slice(args);
    Vaxel::start_env(&root().join("tests/flows"), &url, &data, &all, env)
}

/// A Call-ID that the engine's front sends to `shard` of `shards`.
fn call_id_on(shard: usize, shards: usize, prefix: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .find(|id| {
            let msg = format!("OPTIONS sip:x SIP/2.0\r\nCall-ID: {id}\r\n\r\n");
            vaxel::runtime::shard_for(msg.as_bytes(), shards) == shard
        })
        .unwrap()
}

/// Calls from 127.0.0.1 and checks that the welcome's audio arrives.
fn hears_welcome(call_id: &str, rtp_port: u16) -> (UdpUa, Answer) {
    let ua = UdpUa::new("127.0.0.1:0", server());
    let mut rtp = RtpPeer::bind(rtp_port);
    let a = ua.call(
        call_id,
        "127.0.0.1",
        "100",
        "127.0.0.1".parse().unwrap(),
        rtp_port,
    );
    assert_eq!(a.status, 200, "{call_id}: {}", a.raw);
    rtp.wait_first(Duration::from_secs(5));
    rtp.record(Duration::from_millis(2500));
    // On time too: the mean spacing stays 20 ms and no packet is badly late.
    let pk = &rtp.packets;
    let span = (pk[pk.len() - 1].at - pk[0].at).as_secs_f64() * 1000.0;
    let mean = span / (pk.len() - 1) as f64;
    let mut gaps: Vec<f64> = pk
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_secs_f64() * 1000.0)
        .collect();
    let p99 = percentile(&mut gaps, 0.99);
    assert!(
        (19.0..21.0).contains(&mean),
        "{call_id}: mean spacing {mean:.2} ms"
    );
    assert!(p99 < 60.0, "{call_id}: p99 spacing {p99:.2} ms");
    let prompts = prompts();
    assert!(
        find_prompt_start(
            &rtp.payloads(),
            prompts.get("sv/welcome").unwrap(),
            Codec::Pcmu,
            60
        )
        .is_some(),
        "{call_id}: the welcome's frames did not arrive"
    );
    (ua, a)
}

fn multipart_killers() -> Vec<String> {
    [("--", "------\r\n"), ("-", "------"), ("a--a", "--a--a--a"), ("x", "--x\r\n--x"), ("x--x", "--x--x--")]
        .iter()
        .enumerate()
        .map(|(i, (b, body))| format!("INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {ATTACKER}:5070;branch=z9hG4bKmk{i}\r\nFrom: <sip:a@{ATTACKER}>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: killer-{i}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:a@{ATTACKER}:5070>\r\nContent-Type: multipart/mixed;boundary=\"{b}\"\r\nContent-Length: {}\r\n\r\n{body}", body.len()))
        .collect()
}

#[test]
fn malformed_bursts_then_calls_on_every_shard_hear_the_welcome() {
    if !isolate("malformed_bursts_then_calls_on_every_shard_hear_the_welcome") {
        return;
    }
    let v = start("burst", "", &[], &[]);
    let attacker = UdpSocket::bind(format!("{ATTACKER}:5070")).unwrap();
    // The datagrams that used to silence a shard, each with Call-IDs on both shards.
    for round in 0..4 {
        for k in multipart_killers() {
            let k = k.replace("Call-ID: killer-", &format!("Call-ID: r{round}-killer-"));
            attacker.send_to(k.as_bytes(), server()).unwrap();
        }
    }
    // The RFC 4475 torture messages and mutated copies of them.
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let dir = shared_dir().join("sip-torture");
    for f in std::fs::read_dir(&dir).unwrap().flatten() {
        if f.path().extension().is_none_or(|e| e != "dat") {
            continue;
        }
        let msg = std::fs::read(f.path()).unwrap();
        attacker.send_to(&msg, server()).unwrap();
        for _ in 0..5 {
            let mut m = msg.clone();
            for _ in 0..8 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = (seed as usize) % m.len().max(1);
                if let Some(b) = m.get_mut(i) {
                    *b = (seed >> 32) as u8;
                }
            }
            attacker.send_to(&m, server()).unwrap();
        }
    }
    // The same over TCP.
    let mut tcp = TcpStream::connect(server()).unwrap();
    for k in multipart_killers() {
        let _ = tcp_request(
            &mut tcp,
            &k.replace("UDP", "TCP"),
            Duration::from_millis(300),
        );
    }
    // Calls whose Call-IDs land on every shard are answered with the welcome.
    for shard in 0..2 {
        let id = call_id_on(shard, 2, "after-burst");
        let (ua, a) = hears_welcome(&id, 40000 + 2 * shard as u16);
        ua.bye(&id, &a.to_tag);
    }
    assert!(v.count("panic") == 0, "a panic was logged:\n{}", v.log());
    // (No graceful stop here: it would wait for the attacker's calls to time out.)
}

#[test]
fn a_panic_ends_one_call_and_the_shard_keeps_the_others() {
    if !isolate("a_panic_ends_one_call_and_the_shard_keeps_the_others") {
        return;
    }
    let v = start(
        "panic",
        "",
        &["--shards", "1", "--hide-numbers"],
        &[("VAXEL_TEST_PANIC_DIALLED", "666")],
    );
    let ua = UdpUa::new("127.0.0.1:0", server());
    let mut a_rtp = RtpPeer::bind(40010);
    let _b_rtp = RtpPeer::bind(40012);
    let a = ua.call(
        "survivor",
        "127.0.0.1",
        "100",
        "127.0.0.1".parse().unwrap(),
        40010,
    );
    assert_eq!(a.status, 200);
    let victim = UdpUa::new("127.0.0.1:0", server());
    let b = victim.call(
        "victim",
        "127.0.0.1",
        "666",
        "127.0.0.1".parse().unwrap(),
        40012,
    );
    assert_eq!(b.status, 200);
    a_rtp.wait_first(Duration::from_secs(5));
    // The INFO that panics the victim's call.
    victim.send(&in_dialog(
        "INFO",
        "victim",
        "127.0.0.1",
        victim.addr(),
        &b.to_tag,
        2,
        "UDP",
        Some(("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n")),
    ));
    let got = victim.requests(Duration::from_secs(2));
    let bye = got
        .iter()
        .find(|r| r.starts_with("BYE "))
        .expect("the victim's call was not ended");
    victim.ok(bye);
    // The other call on the same shard keeps its audio, on time.
    a_rtp.record(Duration::from_millis(300));
    a_rtp.packets.clear();
    a_rtp.record(Duration::from_secs(2));
    let n = a_rtp.packets.len();
    assert!(
        (90..=110).contains(&n),
        "{n} packets in 2 s after the panic"
    );
    let log = v.log();
    assert!(
        log.contains("panic: injected fault in call from +*********67 to *66"),
        "{log}"
    );
    assert!(
        !log.contains("+46701234567"),
        "a number was logged unredacted"
    );
    ua.bye("survivor", &a.to_tag);
    assert!(v.stop().success());
}

#[test]
fn tcp_floods_stalls_and_drips_are_closed_then_a_tcp_call_works() {
    if !isolate("tcp_floods_stalls_and_drips_are_closed_then_a_tcp_call_works") {
        return;
    }
    let v = start(
        "tcp",
        "[limits]\ntcp_per_source = 8\ntcp_idle_s = 2\ntcp_message_s = 2\n",
        &[],
        &[],
    );
    let connect_from = |ip: &str| {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.bind(&format!("{ip}:0").parse::<SocketAddr>().unwrap().into())
            .unwrap();
        s.connect(&server().into()).unwrap();
        TcpStream::from(s)
    };
    // A flood of connections from one address: past 8, closed at once.
    let mut flood: Vec<TcpStream> = (0..20).map(|_| connect_from(ATTACKER)).collect();
    let closed_at_once = flood
        .iter_mut()
        .map(|s| closed_within(s, Duration::from_millis(300)))
        .filter(|c| *c)
        .count();
    assert!(
        closed_at_once >= 12,
        "only {closed_at_once} of 20 closed at once"
    );
    drop(flood);
    std::thread::sleep(Duration::from_millis(300));
    // A stalled body, a one-byte drip and an idle connection: closed by their deadlines.
    let started = Instant::now();
    let mut stalled = connect_from(ATTACKER);
    use std::io::Write;
    stalled
        .write_all(b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nContent-Length: 100\r\n\r\n0123456789")
        .unwrap();
    let mut idle = connect_from(ATTACKER);
    let mut drip = connect_from(ATTACKER);
    let dripper = std::thread::spawn(move || {
        let msg =
            b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.66:5;branch=z9hG4bKd\r\n";
        for b in msg.iter().cycle().take(200) {
            if drip.write_all(&[*b]).is_err() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    });
    assert!(
        closed_within(&mut stalled, Duration::from_secs(5)),
        "stalled body not closed"
    );
    assert!(
        closed_within(&mut idle, Duration::from_secs(5)),
        "idle connection not closed"
    );
    assert!(dripper.join().unwrap(), "slow drip not closed");
    assert!(started.elapsed() < Duration::from_secs(8));
    // A normal call over TCP from another address: answered, audio arrives,
    // and the connection stays open past the idle time while the call is on.
    let mut tcp = connect_from("127.0.0.1");
    let local = tcp.local_addr().unwrap();
    let mut rtp = RtpPeer::bind(40020);
    let inv = invite(
        "tcp-call",
        "127.0.0.1",
        "100",
        local,
        "127.0.0.1".parse().unwrap(),
        40020,
        "TCP",
    );
    let a = tcp_request(&mut tcp, &inv, Duration::from_secs(5)).expect("no answer over TCP");
    assert_eq!(a.status, 200, "{}", a.raw);
    tcp.write_all(
        in_dialog(
            "ACK",
            "tcp-call",
            "127.0.0.1",
            local,
            &a.to_tag,
            1,
            "TCP",
            None,
        )
        .as_bytes(),
    )
    .unwrap();
    rtp.wait_first(Duration::from_secs(5));
    // Keep the call alive (the caller's RTP) past the idle deadline.
    let silence = vec![0i16; 160 * 175];
    rtp.send_audio(&silence, 0, 1, 160);
    assert!(
        !closed_within(&mut tcp, Duration::from_millis(200)),
        "a connection with a call was closed"
    );
    let bye = in_dialog(
        "BYE",
        "tcp-call",
        "127.0.0.1",
        local,
        &a.to_tag,
        2,
        "TCP",
        None,
    );
    let r = tcp_request(&mut tcp, &bye, Duration::from_secs(5)).expect("no answer to BYE");
    assert_eq!(r.status, 200);
    assert!(v.stop().success());
}

#[test]
fn floods_from_one_address_leave_other_callers_answered() {
    if !isolate("floods_from_one_address_leave_other_callers_answered") {
        return;
    }
    let v = start("flood", "[limits]\ncalls_per_source = 5\n", &[], &[]);
    let rss0 = rss_kib(v.pid());
    let attacker = UdpSocket::bind(format!("{ATTACKER}:5070")).unwrap();
    attacker.set_nonblocking(true).unwrap();
    let att: SocketAddr = format!("{ATTACKER}:5070").parse().unwrap();
    let mut answers = 0usize;
    let drain = |answers: &mut usize| {
        let mut buf = [0u8; 4096];
        while attacker.recv_from(&mut buf).is_ok() {
            *answers += 1;
        }
    };
    // INVITEs never ACKed, and OPTIONS, as fast as the socket goes for 3 s,
    // while a caller from another address calls.
    let flood_until = Instant::now() + Duration::from_secs(3);
    let caller = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(500));
        let (ua, a) = hears_welcome("legit-during-flood", 40030);
        ua.bye("legit-during-flood", &a.to_tag);
    });
    let mut sent = 0u64;
    while Instant::now() < flood_until {
        for _ in 0..50 {
            let id = format!("flood-{sent}");
            let msg = if sent.is_multiple_of(2) {
                invite(
                    &id,
                    "127.0.0.1",
                    "100",
                    att,
                    ATTACKER.parse().unwrap(),
                    40090,
                    "UDP",
                )
            } else {
                format!("OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {att};branch=z9hG4bK{id}\r\nFrom: <sip:a@{ATTACKER}>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: {id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
            };
            let _ = attacker.send_to(msg.as_bytes(), server());
            sent += 1;
        }
        drain(&mut answers);
        std::thread::sleep(Duration::from_millis(1));
    }
    caller
        .join()
        .expect("the legitimate caller failed during the flood");
    std::thread::sleep(Duration::from_millis(500));
    drain(&mut answers);
    let rss1 = rss_kib(v.pid());
    eprintln!(
        "flood: {sent} requests sent, {answers} datagrams came back; RSS {rss0} -> {rss1} KiB"
    );
    assert!(
        sent > 5000,
        "the flood was too small to mean anything ({sent})"
    );
    assert!(
        answers < (sent as usize) / 10,
        "{answers} answers to {sent} flooding requests"
    );
    assert!(
        rss1 < rss0 + 64 * 1024,
        "RSS grew from {rss0} to {rss1} KiB"
    );
    assert!(v.count("source over its") >= 1, "the limit was not logged");
    // Held calls: one source gets 5, the next is refused; others still get in.
    let holder = "127.0.0.67";
    let mut held = vec![];
    for i in 0..7 {
        let ua = UdpUa::new(&format!("{holder}:0"), server());
        let a = ua.call(
            &format!("held-{i}"),
            "127.0.0.1",
            "100",
            holder.parse().unwrap(),
            40100 + 2 * i,
        );
        held.push((ua, a));
        std::thread::sleep(Duration::from_millis(50));
    }
    let statuses: Vec<u16> = held.iter().map(|(_, a)| a.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().filter(|s| **s == 486).count() >= 1,
        "{statuses:?}"
    );
    let (ua, a) = hears_welcome("legit-after-held", 40032);
    ua.bye("legit-after-held", &a.to_tag);
}

#[test]
fn rtp_from_strangers_is_never_heard_answered_or_obeyed() {
    if !isolate("rtp_from_strangers_is_never_heard_answered_or_obeyed") {
        return;
    }
    let v = start("rtp", "", &[], &[]);
    let ua = UdpUa::new("127.0.0.1:0", server());
    let mut rtp = RtpPeer::bind(40040);
    let a = ua.call(
        "sprayed",
        "127.0.0.1",
        "100",
        "127.0.0.1".parse().unwrap(),
        40040,
    );
    assert_eq!(a.status, 200);
    let port = a.sdp_port.unwrap();
    let target: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let attacker = UdpSocket::bind(format!("{ATTACKER}:0")).unwrap();
    attacker
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let spray = |key: char, ts: u32| {
        use vaxel::media::dtmf::{Digit, TelephoneEvent};
        let ev = Digit::from_char(key).unwrap().to_event().unwrap();
        for i in 0..25u16 {
            let audio = rtp_rs::RtpPacketBuilder::new()
                .payload_type(0)
                .ssrc(66)
                .sequence(i.into())
                .timestamp(u32::from(i) * 160)
                .payload(&[0x55; 160])
                .build()
                .unwrap();
            let dtmf = rtp_rs::RtpPacketBuilder::new()
                .payload_type(101)
                .ssrc(66)
                .sequence((100 + i).into())
                .timestamp(ts)
                .payload(
                    &TelephoneEvent {
                        event: ev,
                        end: i > 20,
                        volume: 10,
                        duration: 160 * (i + 1),
                    }
                    .write(),
                )
                .build()
                .unwrap();
            attacker.send_to(&audio, target).unwrap();
            attacker.send_to(&dtmf, target).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // Before the caller's first packet: the stranger gets nothing, its key is ignored.
    spray('1', 8000);
    rtp.wait_first(Duration::from_secs(3));
    // The caller talks for a moment, then is silent for 3 s; the stranger tries again.
    rtp.send_audio(&vec![0i16; 160 * 10], 0, 1, 160);
    std::thread::sleep(Duration::from_secs(3));
    spray('0', 16000);
    let mut buf = [0u8; 2048];
    let got = (0..20)
        .filter(|_| attacker.recv_from(&mut buf).is_ok())
        .count();
    assert_eq!(got, 0, "the stranger received {got} packets");
    // The caller hears the welcome, then the read-back flow's menu, not a
    // digit read back or the human queue: no key reached the flow.
    assert_eq!(
        v.wait_count("digit=", 1),
        0,
        "a stranger's key reached the call:\n{}",
        v.log()
    );
    rtp.record(Duration::from_millis(500));
    let from = rtp
        .packets
        .iter()
        .map(|p| p.from)
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(from.len(), 1);
    ua.bye("sprayed", &a.to_tag);
    assert!(v.stop().success());
}

#[test]
fn a_third_party_named_in_the_sdp_gets_nothing() {
    if !isolate("a_third_party_named_in_the_sdp_gets_nothing") {
        return;
    }
    let v = start("amplify", "", &["--first-rtp-timeout", "3"], &[]);
    let victim = UdpSocket::bind("127.0.0.77:40050").unwrap();
    victim
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let ua = UdpUa::new("127.0.0.1:0", server());
    let a = ua.call(
        "amp",
        "127.0.0.1",
        "100",
        "127.0.0.77".parse().unwrap(),
        40050,
    );
    assert_eq!(a.status, 200);
    let mut bytes = 0usize;
    let mut buf = [0u8; 2048];
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if let Ok((n, _)) = victim.recv_from(&mut buf) {
            bytes += n;
        }
    }
    assert_eq!(bytes, 0, "{bytes} bytes were sent to the third party");
    let got = ua.requests(Duration::from_millis(500));
    assert_eq!(
        v.wait_count("sent no RTP at all", 1),
        1,
        "the call without RTP was not ended"
    );
    for bye in got.iter().filter(|r| r.starts_with("BYE ")) {
        ua.ok(bye);
    }
    assert!(v.stop().success());
}

#[test]
fn a_phone_dialling_by_host_name_hears_the_welcome_from_the_right_address() {
    if !isolate("a_phone_dialling_by_host_name_hears_the_welcome_from_the_right_address") {
        return;
    }
    for ip in ["198.18.0.1/32", "198.18.0.2/32"] {
        let ok = std::process::Command::new("ip")
            .args(["addr", "add", ip, "dev", "lo"])
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let v = start("hostname", "", &["--sip-listen", "0.0.0.0:5090"], &[]);
    let ua = UdpUa::new("198.18.0.2:5070", "198.18.0.1:5090".parse().unwrap());
    let sock = UdpSocket::bind("198.18.0.2:40060").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut rtp = RtpPeer {
        sock,
        packets: vec![],
    };
    let a = ua.call(
        "byname",
        "pbx.example.com",
        "100",
        "198.18.0.2".parse().unwrap(),
        40060,
    );
    assert_eq!(a.status, 200);
    let want: IpAddr = "198.18.0.1".parse().unwrap();
    assert_eq!(a.sdp_ip, Some(want), "SDP: {}", a.raw);
    assert!(
        a.raw.contains("Contact: <sip:vaxel@198.18.0.1:5090>"),
        "{}",
        a.raw
    );
    rtp.wait_first(Duration::from_secs(5));
    rtp.record(Duration::from_millis(2500));
    assert_eq!(
        rtp.packets[0].from.ip(),
        want,
        "RTP comes from the address the call came to"
    );
    assert!(
        find_prompt_start(
            &rtp.payloads(),
            prompts().get("sv/welcome").unwrap(),
            Codec::Pcmu,
            60
        )
        .is_some(),
        "the welcome did not arrive"
    );
    ua.send(&in_dialog(
        "BYE",
        "byname",
        "198.18.0.1",
        ua.addr(),
        &a.to_tag,
        2,
        "UDP",
        None,
    ));
    assert!(v.stop().success());
}

#[test]
fn only_configured_trunks_may_call() {
    if !isolate("only_configured_trunks_may_call") {
        return;
    }
    let v = start(
        "trunks",
        "[[trunks]]\nname = \"operator\"\nfrom = [\"127.0.0.1/32\"]\n",
        &[],
        &[],
    );
    let (ua, a) = hears_welcome("from-trunk", 40070);
    ua.bye("from-trunk", &a.to_tag);
    let stranger = UdpUa::new(&format!("{ATTACKER}:0"), server());
    let r = stranger.call(
        "from-elsewhere",
        "127.0.0.1",
        "100",
        ATTACKER.parse().unwrap(),
        40072,
    );
    assert_eq!(r.status, 403, "{}", r.raw);
    assert!(v.stop().success());
}

/// SIPVicious, the scanner run against every PBX on the internet, from the
/// attacker's address: it learns no version, finds no extension or password,
/// and the engine still answers a caller from elsewhere with the welcome.
#[test]
fn sipvicious_scans_learn_nothing_and_calls_go_on() {
    if !isolate("sipvicious_scans_learn_nothing_and_calls_go_on") {
        return;
    }
    let v = start("sipvicious", "", &[], &[]);
    let bin = |t: &str| {
        root()
            .join("target/pyenv/bin")
            .join(format!("sipvicious_{t}"))
    };
    assert!(
        bin("svmap").exists(),
        "sipvicious is not installed: run ./scripts/test"
    );
    let run = |tool: &str, args: &[&str]| {
        let out = std::process::Command::new(bin(tool))
            .args(args)
            .args(["-b", ATTACKER, "-p", "5090", "127.0.0.1"])
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let map = run("svmap", &[]);
    assert!(map.contains("vaxel"), "svmap did not see the engine: {map}");
    assert!(!map.contains("vaxel/"), "svmap learned a version: {map}");
    let war = run("svwar", &["-e100-400", "--maximumtime", "20"]);
    assert!(
        war.contains("found nothing"),
        "svwar (REGISTER) found something: {war}"
    );
    let crack = run(
        "svcrack",
        &["-u", "100", "-r", "1000-1400", "--maximumtime", "20"],
    );
    assert!(
        !crack.to_lowercase().contains("password found") && !crack.contains("| 100 "),
        "svcrack: {crack}"
    );
    let war_invite = run(
        "svwar",
        &["-e100-400", "-m", "INVITE", "--maximumtime", "20"],
    );
    eprintln!("svwar INVITE: {}", war_invite.lines().last().unwrap_or(""));
    let rss = rss_kib(v.pid());
    assert!(rss < 200 * 1024, "RSS {rss} KiB after the scans");
    let (ua, a) = hears_welcome("after-sipvicious", 40080);
    ua.bye("after-sipvicious", &a.to_tag);
    assert_eq!(v.count("panic"), 0);
}
