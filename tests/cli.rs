//! The command line as an admin meets it: bad input stops start-up with a
//! message that says what to fix, and nothing starts half-configured.

use std::process::Command;

fn vaxel(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vaxel"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("vaxel-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn an_unreadable_prompt_stops_start_up_naming_the_file() {
    let dir = temp_dir("audio");
    std::fs::create_dir_all(dir.join("sv")).unwrap();
    std::fs::write(
        dir.join("sv/welcome.mp3"),
        b"this is not audio at all, just text",
    )
    .unwrap();
    let (ok, msg) = vaxel(&[
        "serve",
        "--audio",
        dir.to_str().unwrap(),
        "--sip-listen",
        "127.0.0.1:0",
    ]);
    assert!(!ok, "started with a broken prompt");
    assert!(msg.contains("sv/welcome.mp3"), "{msg}");
}

#[test]
fn an_unknown_config_key_is_reported_with_file_and_line() {
    let dir = temp_dir("config");
    let cfg = dir.join("vaxel.toml");
    std::fs::write(&cfg, "[sip]\nlisten = \"127.0.0.1:0\"\nmax_cals = 10\n").unwrap();
    let (ok, msg) = vaxel(&["serve", "--config", cfg.to_str().unwrap()]);
    assert!(!ok);
    assert!(msg.contains("vaxel.toml:3:"), "{msg}");
    assert!(msg.contains("max_cals"), "{msg}");
}

#[test]
fn a_bad_port_range_says_what_to_write() {
    let (ok, msg) = vaxel(&["serve", "--rtp-ports", "9000-80"]);
    assert!(!ok);
    assert!(msg.contains("LOW-HIGH"), "{msg}");
}

#[test]
fn check_audio_lists_the_shipped_prompts() {
    let (ok, msg) = vaxel(&["check-audio", concat!(env!("CARGO_MANIFEST_DIR"), "/audio")]);
    assert!(ok, "{msg}");
    for name in [
        "sv/welcome",
        "en/welcome",
        "sv/digit-0",
        "en/digit-hash",
        "music/hold",
    ] {
        assert!(
            msg.lines().any(|l| l.starts_with(&format!("{name}\t"))),
            "{name} missing:\n{msg}"
        );
    }
}
