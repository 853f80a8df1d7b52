//! `vaxel-rtpload`: the RTP side of the benchmarks (SIPp does the signalling;
//! it cannot source or sink thousands of 20 ms streams).
//!
//! * `recv`: one UDP socket that every benchmark call names in its SDP. It
//!   timestamps each packet in the kernel (`SO_TIMESTAMPNS`), keeps per-stream
//!   spacing, sequence gaps and rates, optionally answers each packet with one of
//!   its own (a talking caller), and optionally measures DTMF-to-action latency:
//!   it sends an RFC 4733 key press on some streams and times the first packet
//!   of the digit prompt that comes back.
//! * `pace`: the reference: a bare pacer sending N streams of 172-byte packets
//!   every 20 ms from N sockets on absolute deadlines, and nothing else.
//!
//! Output: `key=value` lines, read by bench/run.sh.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

#[path = "util.rs"]
mod util;
use util::*;

#[derive(Default)]
struct Stream {
    last_ns: i64,
    last_seq: u16,
    packets: u64,
    gaps: u64,
    out_seq: u16,
    probe: Option<(i64, usize)>,
}

fn recv(args: &[String]) {
    let listen: String = arg(args, "--listen", "127.0.0.1:40000".to_string());
    let warmup = Duration::from_secs_f64(arg(args, "--warmup", 5.0));
    let duration = Duration::from_secs_f64(arg(args, "--duration", 20.0));
    let talk = flag(args, "--talk");
    let probes: usize = arg(args, "--dtmf-probes", 0);
    let expect: usize = arg(args, "--streams", 0);
    let audio: String = arg(args, "--audio", "audio".to_string());
    let pid: u32 = arg(args, "--pid", 0);
    let sock = bind_timestamping(&listen);
    let mut target_cpu: Option<(f64, f64)> = None;
    let mut rss_at_start = None;

    // The first sounding frame of sv/digit-5: what a caller hears first after '5'.
    let prompts =
        vaxel::media::prompt::PromptCache::load_dir(std::path::Path::new(&audio)).expect("prompts");
    let digit = prompts.get("sv/digit-5").expect("sv/digit-5");
    let codec = vaxel::media::g711::Codec::Pcmu;
    let loud = digit.first_sounding_frame(codec).unwrap_or(0);
    let loud_frame = digit.frame(codec, loud).unwrap().to_vec();

    let mut streams: HashMap<SocketAddr, Stream> = HashMap::new();
    let mut dev_us: Vec<f64> = Vec::with_capacity(4_000_000);
    let mut dtmf_ms: Vec<f64> = Vec::new();
    let mut buf = [0u8; 2048];
    let mut out = [0u8; 172];
    let start = Instant::now();
    // Wait for the first packet before starting the clock.
    let mut first = true;
    let mut measure_from = start;
    let mut measure_to = start;
    let mut measured_packets = 0u64;
    let mut probes_sent = 0usize;
    let mut next_probe = Instant::now();
    let cpu0 = cpu_seconds();
    loop {
        let now = Instant::now();
        if !first && now >= measure_to {
            break;
        }
        if first && now.duration_since(start) > Duration::from_secs(120) {
            println!("error=no RTP arrived");
            return;
        }
        // Start measuring once the expected number of streams is flowing.
        let measuring = !first && now >= measure_from;
        if measuring && probes_sent < probes && now >= next_probe {
            next_probe = now + Duration::from_millis(200);
            let free = streams
                .values()
                .filter(|s| s.probe.is_none())
                .count()
                .max(1);
            if let Some((addr, st)) = streams
                .iter_mut()
                .filter(|(_, s)| s.probe.is_none())
                .nth(probes_sent * 7 % free)
            {
                // RFC 4733 key '5': start packets then three ends, as a phone sends
                // them at the end of a short press.
                let ts = 0x1000_0000u32.wrapping_add(probes_sent as u32 * 8000);
                let t0 = realtime_ns();
                for (i, (dur, end)) in [(160u16, false), (320, true), (320, true), (320, true)]
                    .iter()
                    .enumerate()
                {
                    let ev = vaxel::media::dtmf::TelephoneEvent {
                        event: 5,
                        end: *end,
                        volume: 10,
                        duration: *dur,
                    };
                    let p = ev.write();
                    let pkt = rtp_rs::RtpPacketBuilder::new()
                        .payload_type(101)
                        .ssrc(0xD7F0 + probes_sent as u32)
                        .sequence(st.out_seq.wrapping_add(i as u16).into())
                        .timestamp(ts)
                        .marked(i == 0)
                        .payload(&p)
                        .build()
                        .unwrap();
                    let _ = sock.send_to(&pkt, addr);
                }
                st.out_seq = st.out_seq.wrapping_add(4);
                st.probe = Some((t0, loud));
                probes_sent += 1;
            }
        }
        let Some((n, from, ts)) = recv_timestamped(&sock, &mut buf) else {
            continue;
        };
        let Ok(rtp) = rtp_rs::RtpReader::new(&buf[..n]) else {
            continue;
        };
        if first {
            first = false;
            measure_from = Instant::now() + warmup;
            measure_to = measure_from + duration;
        }
        let measuring = Instant::now() >= measure_from;
        if measuring && pid != 0 && target_cpu.is_none() {
            target_cpu = proc_cpu(pid).map(|c| (c, 0.0));
            rss_at_start = proc_rss_kib(pid);
        }
        let st = streams.entry(from).or_default();
        let seq: u16 = rtp.sequence_number().into();
        if st.packets > 0 {
            let delta = (ts - st.last_ns) as f64 / 1000.0;
            let step = seq.wrapping_sub(st.last_seq);
            if measuring {
                if step == 1 {
                    dev_us.push((delta - 20_000.0).abs());
                } else if step > 1 && step < 1000 {
                    st.gaps += (step - 1) as u64;
                }
                measured_packets += 1;
            }
        }
        st.last_ns = ts;
        st.last_seq = seq;
        st.packets += 1;
        if let Some((t0, loud)) = st.probe {
            if rtp.payload() == loud_frame.as_slice() {
                // Arrival of the first sounding frame, less the frames before it.
                let ms = (ts - t0) as f64 / 1e6 - loud as f64 * 20.0;
                dtmf_ms.push(ms);
                st.probe = Some((i64::MAX / 2, 0));
            }
        }
        if talk {
            let pkt = rtp_rs::RtpPacketBuilder::new()
                .payload_type(0)
                .ssrc(0xCA11)
                .sequence(st.out_seq.into())
                .timestamp(st.out_seq as u32 * 160)
                .payload(&[0xFF; 160]);
            st.out_seq = st.out_seq.wrapping_add(1);
            if let Ok(len) = pkt.build_into(&mut out) {
                let _ = sock.send_to(&out[..len], from);
            }
        }
    }
    let cpu = cpu_seconds() - cpu0;
    if let (Some((c0, _)), Some(c1)) = (target_cpu, proc_cpu(pid)) {
        println!("target_cpu_s={:.2}", c1 - c0);
        println!(
            "target_cpu_us_per_packet={:.2}",
            (c1 - c0) * 1e6 / measured_packets.max(1) as f64
        );
        target_cpu = Some((c0, c1));
    }
    if let Some(r) = rss_at_start {
        println!("target_rss_kib={r}");
    }
    let _ = target_cpu;
    let secs = duration.as_secs_f64();
    let active = streams.values().filter(|s| s.packets > 0).count();
    let gaps: u64 = streams.values().map(|s| s.gaps).sum();
    println!("streams={active}");
    if expect > 0 && active < expect {
        println!("warning=only {active} of {expect} streams arrived");
    }
    println!("packets_per_s={:.0}", measured_packets as f64 / secs);
    println!("gaps={gaps}");
    println!(
        "gap_ratio={:.6}",
        gaps as f64 / (measured_packets.max(1)) as f64
    );
    println!("spacing_dev_p50_ms={:.3}", pct(&mut dev_us, 0.5) / 1000.0);
    println!("spacing_dev_p99_ms={:.3}", pct(&mut dev_us, 0.99) / 1000.0);
    println!("spacing_dev_max_ms={:.3}", pct(&mut dev_us, 1.0) / 1000.0);
    println!("receiver_cpu_s={cpu:.2}");
    if probes > 0 {
        println!("dtmf_probes={probes_sent} answered={}", dtmf_ms.len());
        println!("dtmf_p50_ms={:.1}", pct(&mut dtmf_ms, 0.5));
        println!("dtmf_p99_ms={:.1}", pct(&mut dtmf_ms, 0.99));
    }
}

/// The reference pacer: N sockets, one 172-byte packet each per 20 ms, from one
/// thread on a 1 ms, 20-slot wheel with absolute deadlines (stream i sends in
/// slot i mod 20), and nothing else.
fn pace(args: &[String]) {
    let n: usize = arg(args, "--streams", 1000);
    let to: SocketAddr = arg(args, "--to", "127.0.0.1:40000".parse().unwrap());
    let duration = Duration::from_secs_f64(arg(args, "--duration", 30.0));
    let base_port: u16 = arg(args, "--base-port", 50000);
    let socks: Vec<UdpSocket> = (0..n)
        .map(|i| {
            let s =
                UdpSocket::bind(("127.0.0.1", base_port + i as u16)).expect("bind pacer socket");
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect();
    let mut seq = vec![0u16; n];
    let mut buf = [0u8; 172];
    let cpu0 = cpu_seconds();
    let mut sent = 0u64;
    let start = Instant::now() + Duration::from_millis(100);
    let ticks = duration.as_millis() as u64;
    for tick in 0..ticks {
        let at = start + Duration::from_millis(tick);
        let now = Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
        let slot = (tick % 20) as usize;
        for i in (slot..n).step_by(20) {
            let pkt = rtp_rs::RtpPacketBuilder::new()
                .payload_type(0)
                .ssrc(i as u32)
                .sequence(seq[i].into())
                .timestamp(seq[i] as u32 * 160)
                .payload(&[0xFF; 160]);
            if let Ok(len) = pkt.build_into(&mut buf) {
                let _ = socks[i].send_to(&buf[..len], to);
                sent += 1;
            }
            seq[i] = seq[i].wrapping_add(1);
        }
    }
    let cpu = cpu_seconds() - cpu0;
    println!("pacer_packets={sent}");
    println!(
        "pacer_cpu_us_per_packet={:.2}",
        cpu * 1e6 / sent.max(1) as f64
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("recv") => recv(&args[2..]),
        Some("pace") => pace(&args[2..]),
        _ => {
            eprintln!("usage: vaxel-rtpload recv [--listen ADDR] [--warmup S] [--duration S] [--talk] [--dtmf-probes N] [--streams N] [--audio DIR]\n       vaxel-rtpload pace --streams N --to ADDR [--duration S] [--base-port P]");
            std::process::exit(2);
        }
    }
}
