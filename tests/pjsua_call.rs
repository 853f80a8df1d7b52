//! A second, independent SIP stack (PJSIP's Python bindings, PyPI
//! `pjsua2-python`) calls the engine, records what it hears, presses a key, and
//! the recording is checked against the prompts by cross-correlation: the
//! Swedish welcome at the start, then the spoken digit right after the key.

mod common;

use common::*;
use std::process::Command;
use vaxel::media::prompt::Prompt;

fn python() -> std::path::PathBuf {
    let p = std::env::var_os("VAXEL_PJSUA_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root().join("target/pyenv/bin/python"));
    assert!(
        p.exists(),
        "{} missing: run ./scripts/test (it installs pjsua2-python)",
        p.display()
    );
    p
}

/// The first `len` samples of `p` after its leading silence.
fn template(p: &Prompt, len: usize) -> (usize, Vec<f32>) {
    let start = p
        .pcm
        .iter()
        .position(|s| s.unsigned_abs() > 2000)
        .unwrap_or(0);
    (
        start,
        p.pcm[start..(start + len).min(p.pcm.len())]
            .iter()
            .map(|s| *s as f32)
            .collect(),
    )
}

/// The lag in `rec` (within `lags`) where `tpl` fits best, and the normalised
/// correlation there.
fn best_match(rec: &[f32], tpl: &[f32], lags: std::ops::Range<usize>) -> (usize, f32) {
    let tn: f32 = tpl.iter().map(|x| x * x).sum::<f32>().sqrt();
    let mut best = (0, -1.0f32);
    for lag in lags {
        if lag + tpl.len() > rec.len() {
            break;
        }
        let w = &rec[lag..lag + tpl.len()];
        let wn: f32 = w.iter().map(|x| x * x).sum::<f32>().sqrt();
        if wn == 0.0 {
            continue;
        }
        let c = w.iter().zip(tpl).map(|(a, b)| a * b).sum::<f32>() / (wn * tn);
        if c > best.1 {
            best = (lag, c);
        }
    }
    best
}

/// One PJSIP call: what it heard (8 kHz samples) and when it pressed `key`.
fn pjsua_call(
    vaxel: &Vaxel,
    key: char,
    key_at: &str,
    duration: &str,
    dtmf: &str,
) -> (Vec<f32>, f64) {
    let wav = std::env::temp_dir().join(format!("vaxel-pjsua-{}-{dtmf}.wav", std::process::id()));
    let out = Command::new(python())
        .arg(root().join("tests/pjsua/call_and_record.py"))
        .args([
            &format!("sip:100@{SIP}"),
            wav.to_str().unwrap(),
            "--key",
            &key.to_string(),
        ])
        .args(["--key-at", key_at, "--duration", duration, "--dtmf", dtmf])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pjsua call failed:\n{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        vaxel.log()
    );
    let key_at: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("key sent at "))
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .expect("key time");
    let rec: Vec<f32> = vaxel::media::prompt::decode_file(&wav)
        .unwrap()
        .iter()
        .map(|s| *s as f32)
        .collect();
    let _ = std::fs::remove_file(&wav);
    (rec, key_at)
}

/// Asserts that `name` is heard at the start (within its leading silence plus 0.3 s).
fn heard_first(rec: &[f32], name: &str) {
    let p = prompts();
    let (start, tpl) = template(p.get(name).unwrap(), 4000);
    let (lag, corr) = best_match(rec, &tpl, 0..start + 8000);
    eprintln!(
        "{name} at {:.3} s, correlation {corr:.3}",
        lag as f64 / 8000.0
    );
    assert!(
        corr > 0.9,
        "{name} is not what was heard first (correlation {corr})"
    );
    assert!(
        lag >= start && lag < start + 2400,
        "{name} heard at {lag}, expected near {start}"
    );
}

/// Asserts that `name` starts within 0.4 s after `at` seconds; returns its correlation.
fn heard_after(rec: &[f32], name: &str, at: f64) {
    let p = prompts();
    let (start, tpl) = template(p.get(name).unwrap(), 2400);
    let from = (at * 8000.0) as usize;
    let (lag, corr) = best_match(rec, &tpl, from..from + 8000);
    let delay = (lag - start.min(lag)) as f64 / 8000.0 - at;
    eprintln!(
        "{name} {:.0} ms after {at:.3} s, correlation {corr:.3}",
        delay * 1000.0
    );
    assert!(
        corr > 0.9,
        "{name} not heard after {at} s (correlation {corr})"
    );
    assert!(
        (0.0..0.4).contains(&delay),
        "{name} started {delay:.3} s after {at} s"
    );
}

fn call_and_check(dtmf: &str, key: char) {
    let prompts = prompts();
    let vaxel = Vaxel::start(&[]);
    let (rec, key_at) = pjsua_call(&vaxel, key, "2.5", "5", dtmf);
    assert!(
        rec.len() > 8000 * 4,
        "recording too short: {} samples",
        rec.len()
    );

    // The welcome: its first half second of speech, within the first second.
    let welcome = prompts.get("sv/welcome").unwrap();
    let (w_start, tpl) = template(welcome, 4000);
    let (lag, corr) = best_match(&rec, &tpl, 0..8000);
    eprintln!(
        "welcome speech at {:.3} s (prompt offset {:.3} s), correlation {corr:.3}",
        lag as f64 / 8000.0,
        w_start as f64 / 8000.0
    );
    assert!(
        corr > 0.9,
        "the welcome is not what was heard (correlation {corr})"
    );
    assert!(
        lag >= w_start && lag < w_start + 2400,
        "welcome heard at {lag}, expected near {w_start}"
    );

    // The spoken digit: right after the key press (barge-in).
    let name = format!("sv/digit-{key}");
    let digit = prompts.get(&name).unwrap();
    let (d_start, tpl) = template(digit, 2400);
    let from = (key_at * 8000.0) as usize;
    let (lag, corr) = best_match(&rec, &tpl, from..from + 8000);
    let delay = (lag - d_start.min(lag)) as f64 / 8000.0 - key_at;
    eprintln!(
        "{name} speech at {:.3} s, {:.0} ms after the key, correlation {corr:.3}",
        lag as f64 / 8000.0,
        delay * 1000.0
    );
    assert!(
        corr > 0.9,
        "{name} is not what was heard after the key (correlation {corr})"
    );
    assert!(
        (0.0..0.4).contains(&delay),
        "{name} started {delay:.3} s after the key"
    );
}

#[test]
fn pjsua_a_known_caller_is_greeted_then_a_repeat_caller_welcomed_back() {
    if !isolate("pjsua_a_known_caller_is_greeted_then_a_repeat_caller_welcomed_back") {
        return;
    }
    // The shipped flows; pjsua calls as +46700000001, imported as a customer.
    let data = temp_dir("pjsua-known");
    let url = format!("sqlite://{}", data.join("vaxel.db").display());
    import_customers(
        &url,
        &data,
        "number,name,language,tier\n0700000001,Per,sv,silver\n",
    );
    let vaxel = Vaxel::start_with(&root().join("flows"), &url, &data, &[]);
    // Known, first call: "hej igen, välkommen tillbaka", then 0 reaches a person.
    let (rec, key_at) = pjsua_call(&vaxel, '0', "1.0", "4", "rfc2833");
    heard_first(&rec, "sv/welcome-known");
    heard_after(&rec, "sv/connecting", key_at);
    // Called again: a repeat caller, welcomed back and put straight through.
    let (rec, _) = pjsua_call(&vaxel, '5', "4.5", "5", "info");
    heard_first(&rec, "sv/welcome-back");
}

#[test]
fn pjsua_hears_the_welcome_then_the_digit_rfc4733() {
    if isolate("pjsua_hears_the_welcome_then_the_digit_rfc4733") {
        call_and_check("rfc2833", '4');
    }
}

#[test]
fn pjsua_hears_the_welcome_then_the_digit_sip_info() {
    if isolate("pjsua_hears_the_welcome_then_the_digit_sip_info") {
        call_and_check("info", '8');
    }
}
