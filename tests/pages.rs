//! The pages in headless Chromium (Debian `chromium`, driven by
//! `playwright-core` from npm; tests/pages/pages.mjs), against the running
//! engine with real SIP phones (SIPp) inside `unshare -n`: the wallboard
//! shows a waiting caller within a second and drops them when answered; an
//! agent signs in, goes available and sees the screen pop (a customer named
//! `<script>alert(1)</script>` shows as text); the admin's broken flow edit
//! is refused and shown so. Screenshots are kept in target/page-screenshots/.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN: &str = "pages-admin-token-0123456789";
const READ: &str = "pages-read-token-0123456789";

fn flow_version() -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let v: serde_json::Value = reqwest::Client::new()
            .get("http://127.0.0.1:8080/api/v1/flows")
            .bearer_auth(READ)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v[0]["version"].as_str().unwrap().to_string()
    })
}

#[test]
fn wallboard_agent_and_admin_pages_in_chromium() {
    if !isolate("wallboard_agent_and_admin_pages_in_chromium") {
        return;
    }
    let pages = root().join("tests/pages");
    assert!(
        pages.join("node_modules/playwright-core").exists()
            && std::path::Path::new("/usr/bin/chromium").exists(),
        "playwright-core or chromium missing: run ./scripts/test"
    );
    let shots = root().join("target/page-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let dir = temp_dir("pages");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let url = format!("sqlite://{}", data.join("vaxel.db").display());
    import_customers(
        &url,
        &dir,
        "number,name,language,tier\n0701110009,<script>alert(1)</script>,sv,gold\n",
    );
    let text = std::fs::read_to_string(root().join("tests/agents.toml")).unwrap();
    let text = text.replace("[acd]\n", "[acd]\ndigest_algorithms = [\"MD5\"]\n")
        + &format!("\n[http]\nadmin_tokens = [\"{ADMIN}\"]\nread_tokens = [\"{READ}\"]\n");
    let cfg = dir.join("vaxel.toml");
    std::fs::write(&cfg, text).unwrap();
    let vaxel = Vaxel::start_with(
        &root().join("tests/flows"),
        &url,
        &data,
        &["--config", cfg.to_str().unwrap()],
    );
    // Alice's phone registers (she is available at once in this config):
    // she is put on break so that the first caller waits.
    let reg = sipp(
        "agent_register.xml",
        &[("agent", "alice")],
        &["-p", "5085", "-au", "alice", "-ap", "alice-secret"],
    );
    wait_sipp(reg, "alice's registration");
    set_agent_status(ADMIN, "alice", "on_break");
    let before = flow_version();

    let mut node = Command::new("node")
        .arg(pages.join("pages.mjs"))
        .env("BASE", "http://127.0.0.1:8080")
        .env("READ", READ)
        .env("ADMIN", ADMIN)
        .env("SHOTS", &shots)
        .current_dir(&pages)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node");
    let mut to_node = node.stdin.take().unwrap();
    let out = BufReader::new(node.stdout.take().unwrap());
    let mut caller = None;
    let mut phone = None;
    let mut all_ok = false;
    let deadline = Instant::now() + Duration::from_secs(120);
    for line in out.lines().map_while(Result::ok) {
        eprintln!("  chromium | {line}");
        assert!(Instant::now() < deadline, "the page test took too long");
        let Some(step) = line.strip_prefix("STEP ") else {
            all_ok |= line == "ALL OK";
            continue;
        };
        match step {
            "caller-waits" => {
                let (c, _at, peer) = {
                    let mut peer = RtpPeer::bind(40000);
                    let c = sipp(
                        "flow_call.xml",
                        &[
                            ("rtp_port", "40000"),
                            ("pts", "0 101"),
                            ("from", "+46701110009"),
                            ("to", "100"),
                            ("talk_ms", "25000"),
                        ],
                        &["-p", "5086", "-timeout", "60"],
                    );
                    peer.wait_first(Duration::from_secs(10));
                    peer.send_rfc4733('0', 101, 1000, 1);
                    (c, Instant::now(), peer)
                };
                caller = Some((c, peer));
            }
            "agent-phone-ready" => {
                // Alice's phone rings 2.5 s before it answers (the ring timeout is 4 s):
                // time to see the pop.
                phone = Some(sipp(
                    "agent_answer.xml",
                    &[("agent", "alice"), ("ring_ms", "2500")],
                    &["-p", "5085", "-mp", "6600", "-timeout", "60"],
                ));
            }
            "call-ended" => {
                if let Some((c, _peer)) = caller.take() {
                    wait_sipp(c, "caller");
                }
                if let Some(p) = phone.take() {
                    wait_sipp(p, "alice's phone");
                }
            }
            "check-flow-unchanged" => {
                assert_eq!(
                    flow_version(),
                    before,
                    "the refused edit changed the running flow"
                );
            }
            other => panic!("unknown step {other}"),
        }
        writeln!(to_node, "DONE {step}").unwrap();
    }
    let status = node.wait().unwrap();
    assert!(
        status.success() && all_ok,
        "the page test failed; engine log:\n{}",
        vaxel.log()
    );
    for shot in [
        "wallboard-waiting.png",
        "agent-screen-pop.png",
        "admin-refused.png",
    ] {
        assert!(
            shots
                .join(shot)
                .metadata()
                .map(|m| m.len() > 1000)
                .unwrap_or(false),
            "{shot}"
        );
    }
}
