//! Real phones for the tests: PJSIP scripts (tests/pjsua) run with the
//! test venv's Python, and the audio checks that compare what a side heard
//! with what the other side played, both decoded by `sox`.

use super::{root, SIP};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn python() -> PathBuf {
    let p = std::env::var_os("VAXEL_PJSUA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/pyenv/bin/python"));
    assert!(p.exists(), "{} missing: run ./scripts/test", p.display());
    p
}

/// A running script whose stdout lines are kept with the time they came.
pub struct Script {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Script {
    pub fn spawn(args: &[String]) -> Script {
        let mut child = Command::new(python())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                eprintln!("  | {l}");
                sink.lock().unwrap().push(l);
            }
        });
        Script { child, lines }
    }

    /// Waits (up to `secs`) for a line starting with `prefix`; returns it.
    pub fn wait_for(&self, prefix: &str, secs: u64) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(l) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.starts_with(prefix))
            {
                return Some(l.clone());
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn has(&self, prefix: &str) -> bool {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with(prefix))
    }

    pub fn finish(mut self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "script did not end");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(100));
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last number on a line (the epoch time the scripts print).
pub fn time_of(line: &str) -> f64 {
    line.split_whitespace().last().unwrap().parse().unwrap()
}

pub struct AgentPhone<'a> {
    pub transport: &'a str,
    pub id: &'a str,
    pub password: &'a str,
    pub port: u16,
    pub answer_after: &'a str,
    pub play: Option<&'a Path>,
    pub record: Option<&'a Path>,
    pub codec: &'a str,
    pub dial: &'a str,
    pub duration: u32,
    pub hangup_after: &'a str,
}

impl<'a> AgentPhone<'a> {
    pub fn new(id: &'a str, password: &'a str, port: u16) -> AgentPhone<'a> {
        AgentPhone {
            transport: "udp",
            id,
            password,
            port,
            answer_after: "1.0",
            play: None,
            record: None,
            codec: "PCMU",
            dial: "",
            duration: 25,
            hangup_after: "0",
        }
    }

    pub fn start(&self) -> Script {
        let mut args = vec![
            root().join("tests/pjsua/agent.py").display().to_string(),
            SIP.to_string(),
            self.id.to_string(),
            self.password.to_string(),
            "--port".into(),
            self.port.to_string(),
            "--answer-after".into(),
            self.answer_after.into(),
            "--codec".into(),
            self.codec.into(),
            "--duration".into(),
            self.duration.to_string(),
            "--transport".into(),
            self.transport.into(),
            "--hangup-after".into(),
            self.hangup_after.into(),
        ];
        if let Some(p) = self.play {
            args.extend(["--play".into(), p.display().to_string()]);
        }
        if let Some(r) = self.record {
            args.extend(["--record".into(), r.display().to_string()]);
        }
        if !self.dial.is_empty() {
            args.extend(["--dial".into(), self.dial.into()]);
        }
        let s = Script::spawn(&args);
        let reg = s
            .wait_for("registered ", 15)
            .expect("agent did not register");
        assert!(reg.starts_with("registered 200"), "{reg}");
        s
    }
}

/// A caller pressing 0 at `key_at` s after the answer, talking (playing
/// `play`) and hanging up `duration` s after the answer.
pub fn caller(out: &Path, play: &Path, codec: &str, key_at: &str, duration: &str) -> Script {
    Script::spawn(&[
        root()
            .join("tests/pjsua/call_and_record.py")
            .display()
            .to_string(),
        format!("sip:100@{SIP}"),
        out.display().to_string(),
        "--key".into(),
        "0".into(),
        "--key-at".into(),
        key_at.into(),
        "--duration".into(),
        duration.into(),
        "--play".into(),
        play.display().to_string(),
        "--codec".into(),
        codec.into(),
    ])
}

/// 8 kHz 16-bit mono samples of an audio file, decoded by sox.
pub fn sox_samples(path: &Path) -> Vec<f32> {
    let out = Command::new("sox")
        .arg(path)
        .args([
            "-r",
            "8000",
            "-c",
            "1",
            "-b",
            "16",
            "-e",
            "signed-integer",
            "-t",
            "raw",
            "-",
        ])
        .output()
        .expect("sox (Debian package sox) is not installed: run ./scripts/test");
    assert!(
        out.status.success(),
        "sox {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32)
        .collect()
}

/// A voice for one side: a shipped prompt resampled to 8 kHz by sox, so that
/// the phone plays exactly the samples the check compares with.
pub fn voice(prompt: &str, dir: &Path) -> PathBuf {
    let out = dir.join(format!("{}.wav", prompt.replace('/', "-")));
    let st = Command::new("sox")
        .arg(root().join("audio").join(format!("{prompt}.wav")))
        .args(["-r", "8000", "-c", "1", "-b", "16"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    out
}

/// How much of `reference` is heard in `recording` (from `from_s` seconds):
/// the share of 0.12 s speech windows of the reference found with a
/// normalised cross-correlation above 0.9 somewhere in the recording. The
/// voices loop and are shorter than the talk, so every window is said after
/// the bridge.
pub fn heard(recording: &[f32], from_s: f64, reference: &[f32]) -> f64 {
    heard_at(recording, from_s, reference, 0.9)
}

/// As [`heard`], counting a window found when its best correlation passes
/// `threshold`.
pub fn heard_at(recording: &[f32], from_s: f64, reference: &[f32], threshold: f32) -> f64 {
    // 0.12 s: short enough that a frame the receiver's jitter buffer slips
    // spoils few windows (TESTING-NOTES), long enough to be unmistakable.
    const W: usize = 960;
    let rec = &recording[((from_s * 8000.0) as usize).min(recording.len())..];
    let energy = |w: &[f32]| w.iter().map(|x| x * x).sum::<f32>().sqrt();
    let speech: Vec<&[f32]> = reference
        .chunks_exact(W)
        .filter(|w| energy(w) / (W as f32).sqrt() > 1500.0)
        .collect();
    // At most ten, spread over the whole reference.
    let step = speech.len().div_ceil(10).max(1);
    let windows: Vec<&[f32]> = speech.into_iter().step_by(step).collect();
    assert!(windows.len() >= 4, "reference has too little speech");
    // The voice loops: one period of lags (plus a window) holds every window.
    let span = (reference.len() + 2 * W).min(rec.len());
    let corr = |w: &[f32], wn: f32, lag: usize| {
        let r = &rec[lag..lag + W];
        let rn = energy(r);
        if rn > 0.0 {
            r.iter().zip(w.iter()).map(|(a, b)| a * b).sum::<f32>() / (rn * wn)
        } else {
            0.0
        }
    };
    let mut found = 0;
    for w in &windows {
        let wn = energy(w);
        // Coarse (every 4th lag), then around the best coarse lag.
        let (mut best, mut at) = (0.0f32, 0);
        for lag in (0..span.saturating_sub(W)).step_by(4) {
            let c = corr(w, wn, lag);
            if c > best {
                (best, at) = (c, lag);
            }
        }
        for lag in at.saturating_sub(4)..(at + 4).min(rec.len().saturating_sub(W)) {
            best = best.max(corr(w, wn, lag));
        }
        eprintln!("window correlation {best:.3}");
        if best > threshold {
            found += 1;
        }
    }
    found as f64 / windows.len() as f64
}
