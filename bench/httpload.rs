//! `vaxel-httpload`: wallboards and API clients against a running engine, for
//! bench/run.sh's `http` benchmark.
//!
//! Opens `--wallboards` event streams (`/api/v1/events`, read token) and
//! counts the events each receives; runs `--api-clients` clients of `GET
//! /api/v1/queues` sending `--api-rate` requests a second in all (0: none),
//! timing each request; and, with
//! `--flap-agent ID`, changes that agent's status through the API every
//! `--flap-ms` so that the live picture changes and every wallboard is sent
//! something. Runs `--duration` seconds.
//!
//! Output: `key=value` lines (connected streams, events received, API
//! requests, p50/p99/max latency in ms, errors).

#[path = "util.rs"]
mod util;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use util::arg;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let base: String = arg(&args, "--base", "http://127.0.0.1:8080".to_string());
    let token: String = arg(&args, "--token", String::new());
    let admin: String = arg(&args, "--admin", String::new());
    let walls: usize = arg(&args, "--wallboards", 200);
    let clients: usize = arg(&args, "--api-clients", 4).max(1);
    let rate: f64 = arg(&args, "--api-rate", 200.0);
    let duration = Duration::from_secs_f64(arg(&args, "--duration", 20.0));
    let flap: String = arg(&args, "--flap-agent", String::new());
    let flap_every = Duration::from_millis(arg(&args, "--flap-ms", 200));
    let pid: u32 = arg(&args, "--pid", 0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(clients + 4)
            .build()
            .expect("client");
        let events = Arc::new(AtomicU64::new(0));
        let connected = Arc::new(AtomicU64::new(0));
        let end = Instant::now() + duration;
        let mut tasks = Vec::new();
        for _ in 0..walls {
            let (http, base, token) = (http.clone(), base.clone(), token.clone());
            let (events, connected) = (events.clone(), connected.clone());
            tasks.push(tokio::spawn(async move {
                let Ok(mut r) = http
                    .get(format!("{base}/api/v1/events"))
                    .bearer_auth(&token)
                    .send()
                    .await
                else {
                    return;
                };
                if !r.status().is_success() {
                    return;
                }
                connected.fetch_add(1, Relaxed);
                let deadline = tokio::time::Instant::from_std(end);
                while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, r.chunk()).await {
                    let n = chunk.windows(7).filter(|w| w == b"event: ").count();
                    events.fetch_add(n as u64, Relaxed);
                }
            }));
        }
        // Let the streams connect before the API load starts.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let events_at_start = events.load(Relaxed);
        // The engine's CPU, and its HTTP thread's and ACD owner's (which
        // builds the live picture), over the measured window.
        let cpu = || {
            (
                util::proc_cpu(pid).unwrap_or(0.0),
                util::thread_cpu(pid, "vaxel-http"),
                util::thread_cpu(pid, "vaxel-acd"),
            )
        };
        let cpu0 = cpu();
        let t0 = Instant::now();
        let lat: Arc<Mutex<Vec<f64>>> = Arc::default();
        let errors = Arc::new(AtomicU64::new(0));
        let every = Duration::from_secs_f64(clients as f64 / rate.max(0.001));
        for i in 0..if rate > 0.0 { clients } else { 0 } {
            let (http, base, token) = (http.clone(), base.clone(), token.clone());
            let (lat, errors) = (lat.clone(), errors.clone());
            tasks.push(tokio::spawn(async move {
                // Paced, each client offset from the others: a steady load,
                // not a flood (a flood measures the queueing, not the API).
                let mut tick = tokio::time::interval_at(
                    tokio::time::Instant::now() + every.mul_f64(i as f64 / clients as f64),
                    every,
                );
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while Instant::now() < end {
                    tick.tick().await;
                    let t = Instant::now();
                    let ok = match http
                        .get(format!("{base}/api/v1/queues"))
                        .bearer_auth(&token)
                        .send()
                        .await
                    {
                        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                        _ => false,
                    };
                    if ok {
                        lat.lock().unwrap().push(t.elapsed().as_secs_f64() * 1000.0);
                    } else {
                        errors.fetch_add(1, Relaxed);
                    }
                }
            }));
        }
        if !flap.is_empty() {
            let (http, base) = (http.clone(), base.clone());
            tasks.push(tokio::spawn(async move {
                let mut on = false;
                while Instant::now() < end {
                    on = !on;
                    let status = if on { "on_break" } else { "logged_out" };
                    let _ = http
                        .put(format!("{base}/api/v1/agents/{flap}/status"))
                        .bearer_auth(&admin)
                        .json(&serde_json::json!({ "status": status }))
                        .send()
                        .await;
                    tokio::time::sleep(flap_every).await;
                }
            }));
        }
        // The window ends with the load (the streams run to `end`).
        tokio::time::sleep_until(tokio::time::Instant::from_std(end)).await;
        let cpu1 = cpu();
        let secs = t0.elapsed().as_secs_f64();
        for t in tasks {
            let _ = t.await;
        }
        if pid != 0 {
            println!("engine_cpu_pct={:.1}", (cpu1.0 - cpu0.0) / secs * 100.0);
            println!(
                "http_thread_cpu_pct={:.2}",
                (cpu1.1 - cpu0.1) / secs * 100.0
            );
            println!("acd_thread_cpu_pct={:.2}", (cpu1.2 - cpu0.2) / secs * 100.0);
        }
        let mut l = lat.lock().unwrap().clone();
        l.sort_by(|a, b| a.total_cmp(b));
        let q = |p: f64| {
            if l.is_empty() {
                0.0
            } else {
                l[((p * l.len() as f64).ceil() as usize).clamp(1, l.len()) - 1]
            }
        };
        println!("streams={}", connected.load(Relaxed));
        println!("events={}", events.load(Relaxed) - events_at_start);
        println!("api_requests={}", l.len());
        println!("api_errors={}", errors.load(Relaxed));
        println!("api_p50_ms={:.2}", q(0.5));
        println!("api_p99_ms={:.2}", q(0.99));
        println!("api_max_ms={:.2}", l.last().copied().unwrap_or(0.0));
    });
}
