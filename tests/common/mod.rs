//! Shared helpers for tests that drive the real `vaxel` binary with real clients.
//!
//! Every such test runs inside its own network namespace with only `lo` up
//! (`unshare -n`): ports never clash with other programs or tests, and no packet
//! can leave the machine. A test calls [`isolate`] first: outside a namespace it
//! re-runs itself (just that test) inside one and reports the result.

#![allow(dead_code)]

pub mod engine;
pub mod pg;
pub mod phones;
pub mod ua;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vaxel::media::prompt::{Prompt, PromptCache};

pub const SIP: &str = "127.0.0.1:5090";

/// Runs the calling test inside a fresh network namespace. Returns true when
/// already inside one (the test body should run), false when it ran the test in
/// a child namespace (and asserted it passed).
pub fn isolate(test: &str) -> bool {
    if std::env::var_os("VAXEL_IN_NETNS").is_some() {
        return true;
    }
    let exe = std::env::current_exe().unwrap();
    // As root a plain new network namespace; otherwise inside a user namespace.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    let ns: &[&str] = if root { &["-n"] } else { &["-r", "-n"] };
    let out = Command::new("unshare")
        .args(ns)
        .args(["sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
        .arg(&exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("VAXEL_IN_NETNS", "1")
        .output()
        .expect("unshare not available: these tests need util-linux's unshare and root (or user namespaces)");
    // The inner run's own report is shown in full only when it failed.
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        let body: Vec<&str> = report
            .lines()
            .filter(|l| {
                !l.starts_with("test result")
                    && !l.starts_with("running ")
                    && !l.starts_with("test ")
            })
            .collect();
        eprintln!("{}", body.join("\n"));
    } else {
        eprintln!("{report}");
    }
    assert!(
        out.status.success(),
        "{test} failed inside its network namespace"
    );
    false
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn prompts() -> PromptCache {
    static CACHE: Mutex<Option<PromptCache>> = Mutex::new(None);
    let mut c = CACHE.lock().unwrap();
    c.get_or_insert_with(|| PromptCache::load_dir(&root().join("audio")).unwrap())
        .clone()
}

/// A running `vaxel serve`, stopped with SIGTERM when dropped.
pub struct Vaxel {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

/// A fresh folder for one test's store and voicemail.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vaxel-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Imports customers (CSV text) into the store at `url` with `vaxel customers import`.
pub fn import_customers(url: &str, dir: &Path, csv: &str) {
    let file = dir.join("customers.csv");
    std::fs::write(&file, csv).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vaxel"))
        .args(["customers", "import", file.to_str().unwrap(), "--data", url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Vaxel {
    /// The engine on the read-back test flow (tests/flows) with a fresh SQLite store.
    pub fn start(extra: &[&str]) -> Vaxel {
        let data = temp_dir("data");
        let url = format!("sqlite://{}", data.join("vaxel.db").display());
        let flows = root().join("tests/flows");
        Vaxel::start_with(&flows, &url, &data, extra)
    }

    pub fn start_with(flows: &Path, data_url: &str, data_dir: &Path, extra: &[&str]) -> Vaxel {
        Vaxel::start_env(flows, data_url, data_dir, extra, &[])
    }

    /// As [`Vaxel::start_with`], with environment variables; `extra` may
    /// replace the defaults for `--sip-listen`, `--shards`, `--config` and
    /// `--show-numbers` (left out when given).
    pub fn start_env(
        flows: &Path,
        data_url: &str,
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Vaxel {
        let config = root().join("tests/vaxel.toml");
        let defaults: [(&str, Option<&str>); 4] = [
            ("--sip-listen", Some(SIP)),
            ("--shards", Some("2")),
            ("--config", config.to_str()),
            ("--show-numbers", None),
        ];
        let mut args: Vec<String> = vec!["serve".into()];
        for (flag, value) in defaults {
            if extra.contains(&flag)
                || (flag == "--show-numbers" && extra.contains(&"--hide-numbers"))
            {
                continue;
            }
            args.push(flag.into());
            if let Some(v) = value {
                args.push(v.into());
            }
        }
        let extra: Vec<&str> = extra
            .iter()
            .copied()
            .filter(|a| *a != "--hide-numbers")
            .collect();
        let mut child = Command::new(env!("CARGO_BIN_EXE_vaxel"))
            .args(&args)
            .args([
                "--rtp-ports",
                "30000-31000",
                "--flows",
                flows.to_str().unwrap(),
                "--data",
                data_url,
                "--data-dir",
                data_dir.to_str().unwrap(),
            ])
            .args(extra)
            .envs(env.iter().copied())
            .current_dir(root())
            .env("RUST_LOG", "vaxel=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start vaxel");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening for SIP") {
                    let _ = tx.send(());
                }
                sink.lock().unwrap().push(line);
            }
        });
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = child.kill();
            panic!("vaxel did not start:\n{}", log.lock().unwrap().join("\n"));
        }
        Vaxel { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Log lines are written by a background thread: waits up to 3 s for at
    /// least `n` lines with `needle`, then counts them (a few ms more, so
    /// that a duplicate would show).
    pub fn wait_count(&self, needle: &str, n: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(3);
        while self.count(needle) < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(50));
        self.count(needle)
    }

    pub fn count(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// SIGTERM, then wait: the engine must exit by itself.
    pub fn stop(self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.wait_exit(Duration::from_secs(20))
    }

    pub fn wait_exit(mut self, d: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + d;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "vaxel did not stop:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Vaxel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts SIPp with a scenario from tests/sipp/ against the engine. `keys`
/// replace `[key]` in the scenario text (SIPp's own `-key` does not reach
/// attributes such as pause durations).
pub fn sipp(scenario: &str, keys: &[(&str, &str)], extra: &[&str]) -> Child {
    let mut text = std::fs::read_to_string(root().join("tests/sipp").join(scenario)).unwrap();
    for (k, v) in keys {
        text = text.replace(&format!("[{k}]"), v);
    }
    let file = std::env::temp_dir().join(format!("vaxel-{}-{scenario}", std::process::id()));
    std::fs::write(&file, text).unwrap();
    let mut cmd = Command::new("sipp");
    cmd.arg(SIP)
        .args(["-sf", file.to_str().unwrap()])
        .args([
            "-i",
            "127.0.0.1",
            "-m",
            "1",
            "-l",
            "1",
            "-nostdin",
            "-timeout",
            "30",
            "-timeout_error",
            "-trace_err",
        ])
        .args([
            "-error_file",
            &format!("/tmp/vaxel-sipp-{}-{scenario}.err", std::process::id()),
        ]);
    cmd.args(extra).stdout(Stdio::null()).stderr(Stdio::piped());
    cmd.spawn()
        .expect("sipp (Debian package sip-tester) is not installed: run ./scripts/test")
}

pub fn wait_sipp(mut child: Child, what: &str) {
    let out = child.wait().unwrap();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    assert!(out.success(), "SIPp scenario {what} failed ({out}): {err}");
}

/// One received RTP packet.
#[derive(Clone, Debug)]
pub struct Packet {
    pub at: Instant,
    pub from: SocketAddr,
    pub pt: u8,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
}

/// The caller's RTP endpoint: the address the SIPp scenarios put in their SDP.
pub struct RtpPeer {
    pub sock: UdpSocket,
    pub packets: Vec<Packet>,
}

impl RtpPeer {
    pub fn bind(port: u16) -> RtpPeer {
        let sock = UdpSocket::bind(("127.0.0.1", port)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        RtpPeer {
            sock,
            packets: vec![],
        }
    }

    /// Receives for `d`.
    pub fn record(&mut self, d: Duration) {
        let end = Instant::now() + d;
        let mut buf = [0u8; 2048];
        while Instant::now() < end {
            if let Ok((n, from)) = self.sock.recv_from(&mut buf) {
                let at = Instant::now();
                if let Ok(r) = rtp_rs::RtpReader::new(&buf[..n]) {
                    self.packets.push(Packet {
                        at,
                        from,
                        pt: r.payload_type(),
                        seq: r.sequence_number().into(),
                        ts: r.timestamp(),
                        ssrc: r.ssrc(),
                        marker: r.mark(),
                        payload: r.payload().to_vec(),
                    });
                }
            }
        }
    }

    /// Waits for the first packet (up to `d`).
    pub fn wait_first(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while self.packets.is_empty() && Instant::now() < end {
            self.record(Duration::from_millis(20));
        }
        assert!(!self.packets.is_empty(), "no RTP arrived");
    }

    pub fn engine_addr(&self) -> SocketAddr {
        self.packets.first().expect("no RTP yet").from
    }

    pub fn send(&self, pkt: &[u8]) {
        self.sock.send_to(pkt, self.engine_addr()).unwrap();
    }

    /// Sends one key press as RFC 4733 events (PT `pt`): three updates and
    /// three end packets with the same timestamp, as phones do.
    pub fn send_rfc4733(&self, key: char, pt: u8, ts: u32, seq: u16) {
        use vaxel::media::dtmf::{Digit, TelephoneEvent};
        let ev = Digit::from_char(key).unwrap().to_event().unwrap();
        let mut s = seq;
        for (i, (dur, end)) in [
            (160u16, false),
            (320, false),
            (480, false),
            (640, true),
            (640, true),
            (640, true),
        ]
        .iter()
        .enumerate()
        {
            let payload = TelephoneEvent {
                event: ev,
                end: *end,
                volume: 10,
                duration: *dur,
            }
            .write();
            let pkt = rtp_rs::RtpPacketBuilder::new()
                .payload_type(pt)
                .ssrc(0x1234)
                .sequence(s.into())
                .timestamp(ts)
                .marked(i == 0)
                .payload(&payload)
                .build()
                .unwrap();
            self.send(&pkt);
            s = s.wrapping_add(if *end { 0 } else { 1 });
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `ms` of audio samples as 20 ms packets of `pt` (0 = PCMU).
    pub fn send_audio(&self, samples: &[i16], pt: u8, seq0: u16, ts0: u32) {
        let codec = if pt == 8 {
            vaxel::media::g711::Codec::Pcma
        } else {
            vaxel::media::g711::Codec::Pcmu
        };
        for (i, frame) in samples.chunks(160).enumerate() {
            let payload: Vec<u8> = frame.iter().map(|s| codec.encode(*s)).collect();
            let pkt = rtp_rs::RtpPacketBuilder::new()
                .payload_type(pt)
                .ssrc(0x5678)
                .sequence(seq0.wrapping_add(i as u16).into())
                .timestamp(ts0.wrapping_add(160 * i as u32))
                .payload(&payload)
                .build()
                .unwrap();
            self.send(&pkt);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn payloads(&self) -> Vec<Vec<u8>> {
        self.packets.iter().map(|p| p.payload.clone()).collect()
    }
}

/// Where the whole of `prompt` appears, frame for frame, in `frames`.
pub fn find_prompt(
    frames: &[Vec<u8>],
    prompt: &Prompt,
    codec: vaxel::media::g711::Codec,
) -> Option<usize> {
    let want: Vec<&[u8]> = (0..prompt.frames())
        .map(|i| prompt.frame(codec, i).unwrap())
        .collect();
    (0..frames.len()).find(|&i| {
        i + want.len() <= frames.len() && want.iter().enumerate().all(|(k, f)| frames[i + k] == *f)
    })
}

/// Where the first `n` frames of `prompt` appear in `frames`.
pub fn find_prompt_start(
    frames: &[Vec<u8>],
    prompt: &Prompt,
    codec: vaxel::media::g711::Codec,
    n: usize,
) -> Option<usize> {
    // Skip leading silence: look for the first frames that carry sound.
    let first_loud = prompt.first_sounding_frame(codec)?;
    let want: Vec<&[u8]> = (first_loud..(first_loud + n).min(prompt.frames()))
        .map(|i| prompt.frame(codec, i).unwrap())
        .collect();
    (0..frames.len())
        .find(|&i| {
            i + want.len() <= frames.len()
                && want.iter().enumerate().all(|(k, f)| frames[i + k] == *f)
        })
        .map(|i| i - first_loud.min(i))
}

pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

pub fn shared_dir() -> PathBuf {
    root().join("../shared")
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// Takes the complete server-sent events out of `buf` (text received so
/// far): each event's name and its data parsed as JSON.
pub fn take_events(buf: &mut String) -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    while let Some(i) = buf.find("\n\n") {
        let block: String = buf.drain(..i + 2).collect();
        let (mut name, mut data) = (String::new(), String::new());
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event: ") {
                name = v.into();
            } else if let Some(v) = line.strip_prefix("data: ") {
                data.push_str(v);
            }
        }
        if !name.is_empty() {
            out.push((
                name,
                serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
            ));
        }
    }
    out
}

/// Sets an agent's status through the HTTP API (`PUT
/// /api/v1/agents/{agent}/status`, admin token) of the engine in this
/// namespace; the ACD takes it (202).
pub fn set_agent_status(admin: &str, agent: &str, status: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let code = rt.block_on(async {
        reqwest::Client::new()
            .put(format!(
                "http://127.0.0.1:8080/api/v1/agents/{agent}/status"
            ))
            .bearer_auth(admin)
            .json(&serde_json::json!({ "status": status }))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(code.as_u16(), 202);
}
