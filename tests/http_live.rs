//! The HTTP figures against calls actually made: the running engine (inside
//! `unshare -n`), SIPp callers pressing 0, a SIPp agent answering, and the
//! API, the event stream and `/metrics` read over real HTTP while the calls
//! happen (callers on SIPp and on PJSIP, the second SIP stack). The figures must match the calls made; the event stream must show
//! a caller entering the queue within 500 ms; `/metrics` must parse with the
//! Prometheus client's own OpenMetrics parser (PyPI `prometheus-client`) and
//! agree with the API.

mod common;

use common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ADMIN: &str = "live-admin-token-0123456789";
const READ: &str = "live-read-token-0123456789";
const HTTP: &str = "http://127.0.0.1:8080";

fn config(name: &str) -> PathBuf {
    let text = std::fs::read_to_string(root().join("tests/agents.toml")).unwrap();
    let text = text.replace("[acd]\n", "[acd]\ndigest_algorithms = [\"MD5\"]\n")
        + &format!(
            "\n[http]\nlisten = \"127.0.0.1:8080\"\nadmin_tokens = [\"{ADMIN}\"]\nread_tokens = [\"{READ}\"]\n"
        );
    let cfg = temp_dir(name).join("vaxel.toml");
    std::fs::write(&cfg, text).unwrap();
    cfg
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn get(rt: &tokio::runtime::Runtime, path: &str, token: &str) -> Value {
    rt.block_on(async {
        let r = reqwest::Client::new()
            .get(format!("{HTTP}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json::<Value>().await.unwrap()
    })
}

fn put(rt: &tokio::runtime::Runtime, path: &str, body: Value) -> u16 {
    rt.block_on(async {
        reqwest::Client::new()
            .put(format!("{HTTP}{path}"))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

/// Events as they came: (when, name, data).
type Events = Arc<Mutex<Vec<(Instant, String, Value)>>>;

/// Listens to the event stream with a read token, keeping every event.
fn listen(rt: &tokio::runtime::Runtime) -> Events {
    let events: Events = Arc::default();
    let sink = events.clone();
    rt.spawn(async move {
        let mut r = reqwest::Client::new()
            .get(format!("{HTTP}/api/v1/events"))
            .bearer_auth(READ)
            .send()
            .await
            .unwrap();
        let mut buf = String::new();
        while let Ok(Some(chunk)) = r.chunk().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            let now = Instant::now();
            for (name, v) in take_events(&mut buf) {
                sink.lock().unwrap().push((now, name, v));
            }
        }
    });
    events
}

/// The first event after `since` that `pred` accepts, waiting up to `secs`.
fn first_event(
    events: &Events,
    since: Instant,
    secs: u64,
    pred: impl Fn(&str, &Value) -> bool,
) -> Option<Instant> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some((at, _, _)) = events
            .lock()
            .unwrap()
            .iter()
            .find(|(at, n, v)| *at >= since && pred(n, v))
        {
            return Some(*at);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A caller who presses 0 once the engine's audio arrives and hangs up
/// `talk_ms` after the answer. Returns SIPp and when 0 was sent.
fn press_zero(
    port: u16,
    sip_port: &str,
    from: &str,
    talk_ms: u64,
) -> (std::process::Child, Instant, RtpPeer) {
    let mut peer = RtpPeer::bind(port);
    let caller = sipp(
        "flow_call.xml",
        &[
            ("rtp_port", &port.to_string()),
            ("pts", "0 101"),
            ("from", from),
            ("to", "100"),
            ("talk_ms", &talk_ms.to_string()),
        ],
        &["-p", sip_port],
    );
    peer.wait_first(Duration::from_secs(10));
    let at = Instant::now();
    peer.send_rfc4733('0', 101, 1000, 1);
    (caller, at, peer)
}

fn metrics_python(text: &str) -> Value {
    let python = std::env::var_os("VAXEL_PJSUA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/pyenv/bin/python"));
    let file = temp_dir("metrics").join("metrics.txt");
    std::fs::write(&file, text).unwrap();
    // The strict OpenMetrics parser of the Prometheus project's client: it
    // refuses anything Prometheus would not scrape.
    let script = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in fam.samples:
        key = s.name + json.dumps(s.labels, sort_keys=True)
        out[key] = s.value
print(json.dumps(out))
"#;
    let o = std::process::Command::new(python)
        .args(["-c", script, file.to_str().unwrap()])
        .output()
        .expect("python with prometheus-client: run ./scripts/test");
    assert!(
        o.status.success(),
        "the Prometheus parser refused /metrics: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn the_figures_the_event_stream_and_metrics_match_the_calls_made() {
    if !isolate("the_figures_the_event_stream_and_metrics_match_the_calls_made") {
        return;
    }
    let cfg = config("http-live");
    let vaxel = Vaxel::start(&[
        "--config",
        cfg.to_str().unwrap(),
        "--http-listen",
        "127.0.0.1:8080",
    ]);
    let rt = rt();
    let events = listen(&rt);
    assert!(first_event(
        &events,
        Instant::now() - Duration::from_secs(60),
        10,
        |n, _| n == "snapshot"
    )
    .is_some());

    // Bob's phone (SIPp) registers and answers after 300 ms.
    let reg = sipp(
        "agent_register.xml",
        &[("agent", "bob")],
        &["-p", "5085", "-au", "bob", "-ap", "bob-secret"],
    );
    wait_sipp(reg, "agent registration");
    let agents = || get(&rt, "/api/v1/agents", READ);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !agents()
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["id"] == "bob" && a["status"] == "available" && a["reachable"] == true)
    {
        assert!(
            Instant::now() < deadline,
            "bob never showed as available: {}",
            agents()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let answer = sipp(
        "agent_answer.xml",
        &[("agent", "bob"), ("ring_ms", "300")],
        &["-p", "5085", "-mp", "6600"],
    );

    // 1. Answered: presses 0, bob answers, talks, hangs up.
    let (c1, pressed, _p1) = press_zero(40000, "5086", "+46701110001", 6000);
    let entered = first_event(&events, pressed, 5, |n, v| {
        n == "queue" && v["queue"] == "kundtjanst" && v["waiting"] == 1
    })
    .expect("the event stream never showed the caller waiting");
    let latency = entered.duration_since(pressed);
    eprintln!("key 0 to the event stream showing the caller waiting: {latency:?}");
    assert!(latency < Duration::from_millis(500), "{latency:?}");
    assert!(first_event(&events, pressed, 5, |n, v| n == "agent"
        && v["id"] == "bob"
        && v["state"] == "on_call")
    .is_some());
    assert!(first_event(&events, pressed, 5, |n, v| n == "call"
        && v["kind"] == "answered"
        && v["agent"] == "bob")
    .is_some());
    wait_sipp(c1, "caller 1");
    wait_sipp(answer, "bob answering");

    // 2. Bob goes on break through the API: the next caller, on PJSIP (the
    //    second SIP stack), presses 0 after 1 s and gives up at 10 s (an
    //    abandon after 5 s, within the 20 s threshold).
    assert_eq!(
        put(
            &rt,
            "/api/v1/agents/bob/status",
            serde_json::json!({"status": "on_break"})
        ),
        202
    );
    let t = Instant::now();
    assert!(first_event(&events, t, 5, |n, v| n == "agent"
        && v["id"] == "bob"
        && v["status"] == "on_break")
    .is_some());
    let python = std::env::var_os("VAXEL_PJSUA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/pyenv/bin/python"));
    let t = Instant::now();
    let c2 = std::process::Command::new(python)
        .arg(root().join("tests/pjsua/call_and_record.py"))
        .arg(format!("sip:100@{SIP}"))
        .arg(temp_dir("http-live-pjsip").join("heard.wav"))
        .args(["--key", "0", "--key-at", "1.0", "--duration", "10"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("PJSIP caller");
    assert!(c2.success(), "the PJSIP caller failed");
    assert!(first_event(&events, t, 1, |n, v| n == "call" && v["kind"] == "entered").is_some());
    assert!(first_event(&events, t, 1, |n, v| n == "call" && v["kind"] == "left").is_some());
    // 3. A caller who hangs up at once after pressing 0: a short abandon.
    let (c3, _, _p3) = press_zero(40020, "5088", "+46701110003", 2_500);
    wait_sipp(c3, "caller 3");

    // The records reach the store in batches: poll for the figures.
    let deadline = Instant::now() + Duration::from_secs(15);
    let q = loop {
        let q = get(&rt, "/api/v1/queues/kundtjanst", READ);
        if q["interval"]["offered"] == 3 || Instant::now() > deadline {
            break q;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let d = &q["interval"];
    eprintln!("{}", serde_json::to_string_pretty(d).unwrap());
    assert_eq!(d["offered"], 3, "{d}");
    assert_eq!(d["answered"], 1);
    assert_eq!(d["abandoned"], 1);
    assert_eq!(d["short_abandoned"], 1);
    assert_eq!(
        d["service_level"]["value"], 1.0,
        "answered within 20 s, no abandon after 20 s"
    );
    let asa = d["asa_s"].as_f64().unwrap();
    assert!(
        asa < 3.0,
        "bob answered within about 0.3 s of the offer: ASA {asa}"
    );
    assert_eq!(d["time_to_human"]["calls"], 1);
    assert_eq!(q["live"]["waiting"], 0);
    assert_eq!(q["live"]["agents"]["on_break"], 1);
    let records = get(&rt, "/api/v1/calls?queue=kundtjanst", ADMIN);
    let waits: Vec<i64> = records
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["wait_ms"].as_i64())
        .collect();
    assert_eq!(waits.len(), 3);
    // Caller 2 waited from the key (about 1–2 s into the call) to the hang-up at 10 s.
    assert!(
        waits.iter().any(|w| (6_000..10_000).contains(w)),
        "{waits:?}"
    );

    // /metrics agrees with the API and parses with Prometheus' own parser.
    let text = rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{HTTP}/metrics"))
            .bearer_auth(READ)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let m = metrics_python(&text);
    let sample = |k: &str| {
        m.get(k)
            .and_then(Value::as_f64)
            .unwrap_or_else(|| panic!("{k} missing from /metrics:\n{text}"))
    };
    assert_eq!(
        sample(r#"vaxel_queue_wait_seconds_count{"outcome": "answered", "queue": "kundtjanst"}"#),
        1.0
    );
    assert_eq!(
        sample(r#"vaxel_queue_wait_seconds_count{"outcome": "abandoned", "queue": "kundtjanst"}"#),
        2.0
    );
    assert_eq!(
        sample(r#"vaxel_queue_callers_waiting{"queue": "kundtjanst"}"#),
        0.0
    );
    assert_eq!(
        sample(r#"vaxel_queue_agents{"queue": "kundtjanst", "state": "on_break"}"#),
        1.0
    );
    assert!(sample(r#"vaxel_calls_started_total{}"#) >= 3.0);
    assert!(sample(r#"vaxel_sip_requests_received_total{"method": "INVITE"}"#) >= 3.0);
    assert!(sample(r#"vaxel_sip_requests_received_total{"method": "REGISTER"}"#) >= 2.0);
    assert!(sample(r#"vaxel_human_key_total{}"#) >= 3.0);
    assert!(sample(r#"vaxel_rtp_packets_total{"direction": "out"}"#) > 100.0);
    // The shipped Grafana dashboard asks only for series that exist.
    let dash = std::fs::read_to_string(root().join("contrib/grafana-vaxel.json")).unwrap();
    let names: std::collections::BTreeSet<&str> = m
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.split('{').next().unwrap())
        .collect();
    let mut asked = 0;
    for piece in dash.split("vaxel_").skip(1) {
        let name: String = piece
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        let name = format!("vaxel_{name}");
        asked += 1;
        assert!(
            names.contains(name.as_str()),
            "the dashboard asks for {name}, which /metrics does not have"
        );
    }
    assert!(asked > 15);
    drop(vaxel);
}
