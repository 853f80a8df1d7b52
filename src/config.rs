//! `vaxel.toml` → a typed, validated [`Config`]. Unknown keys are errors, and every
//! error names the file, line and what to fix.

use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// Address for SIP over UDP and TCP.
    pub listen: SocketAddr,
    /// Address to put in Contact and SDP (for a host behind NAT).
    pub advertise: Option<IpAddr>,
    pub t1_ms: u64,
    pub t2_ms: u64,
    pub t4_ms: u64,
    /// Concurrent calls; past this a new INVITE gets 503 with Retry-After.
    pub max_calls: usize,
    /// Ring (180) this long before answering.
    pub answer_after_ms: u64,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: "0.0.0.0:5060".parse().expect("valid"),
            advertise: None,
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000,
            max_calls: 5000,
            answer_after_ms: 0,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtpConfig {
    /// Port range "LOW-HIGH"; one even port per call.
    pub ports: String,
    /// Hang up a call whose caller has sent no RTP for this long.
    pub timeout_s: u64,
}

impl Default for RtpConfig {
    fn default() -> Self {
        RtpConfig {
            ports: "20000-39999".into(),
            timeout_s: 60,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    /// Drive-loop threads; 0 = one per core.
    pub shards: usize,
    /// Languages of the built-in answering behaviour, in playing order.
    pub languages: Vec<String>,
    /// Hang up after this long without a key press.
    pub silence_timeout_s: u64,
    /// On SIGTERM, wait at most this long for calls in progress to end.
    pub drain_timeout_s: u64,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            shards: 0,
            languages: vec!["sv".into(), "en".into()],
            silence_timeout_s: 20,
            drain_timeout_s: 300,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug` or `trace` (RUST_LOG overrides).
    pub level: String,
    /// Show callers' numbers in logs instead of redacting them.
    pub show_numbers: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            show_numbers: false,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub sip: SipConfig,
    pub rtp: RtpConfig,
    pub engine: EngineSection,
    pub log: LogConfig,
    /// Directory of prompts.
    pub audio: Option<PathBuf>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|s| {
                    let before = &text[..s.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let col = s.start - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
                    (line, col)
                })
                .unwrap_or((0, 0));
            ConfigError::Syntax {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn audio_dir(&self) -> PathBuf {
        self.audio.clone().unwrap_or_else(|| PathBuf::from("audio"))
    }

    pub fn rtp_range(&self) -> Result<(u16, u16), ConfigError> {
        parse_range(&self.rtp.ports)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        let (lo, hi) = self.rtp_range()?;
        if (hi - lo) < 2 {
            return bad(format!(
                "rtp.ports \"{}\": the range must hold at least one even port pair",
                self.rtp.ports
            ));
        }
        if self.sip.t1_ms == 0 || self.sip.t2_ms < self.sip.t1_ms {
            return bad("sip.t1_ms must be > 0 and sip.t2_ms >= sip.t1_ms".into());
        }
        if self.sip.max_calls == 0 {
            return bad("sip.max_calls must be at least 1".into());
        }
        if self.rtp.timeout_s == 0 {
            return bad("rtp.timeout_s must be at least 1".into());
        }
        if self.engine.languages.is_empty() {
            return bad(
                "engine.languages must name at least one language (e.g. [\"sv\", \"en\"])".into(),
            );
        }
        Ok(())
    }

    pub fn timers(&self) -> crate::sip::transaction::TimerConfig {
        crate::sip::transaction::TimerConfig {
            t1: Duration::from_millis(self.sip.t1_ms),
            t2: Duration::from_millis(self.sip.t2_ms),
            t4: Duration::from_millis(self.sip.t4_ms),
        }
    }
}

pub fn parse_range(s: &str) -> Result<(u16, u16), ConfigError> {
    let err = || {
        ConfigError::Invalid(format!("RTP port range \"{s}\" must look like LOW-HIGH, e.g. 20000-39999, with 1024 <= LOW < HIGH <= 65535"))
    };
    let (a, b) = s.split_once('-').ok_or_else(err)?;
    let (lo, hi): (u16, u16) = (
        a.trim().parse().map_err(|_| err())?,
        b.trim().parse().map_err(|_| err())?,
    );
    if lo < 1024 || lo >= hi {
        return Err(err());
    }
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = Config::parse(
            "[sip]\nlisten = \"127.0.0.1:5070\"\nmax_calls = 10\n",
            Path::new("v.toml"),
        )
        .unwrap();
        assert_eq!(c.sip.listen.port(), 5070);
        assert_eq!(c.sip.max_calls, 10);
        assert_eq!(c.rtp.timeout_s, 60);
    }

    #[test]
    fn unknown_key_names_file_and_line() {
        let e = Config::parse(
            "[sip]\nlisten = \"127.0.0.1:5070\"\nmax_cals = 10\n",
            Path::new("v.toml"),
        )
        .unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("v.toml:3:"), "{s}");
        assert!(s.contains("max_cals"), "{s}");
    }

    #[test]
    fn bad_values_say_what_to_fix() {
        let e = Config::parse("[rtp]\nports = \"30000-20000\"\n", Path::new("v.toml")).unwrap_err();
        assert!(e.to_string().contains("LOW-HIGH"));
        let e = Config::parse("[sip]\nlisten = \"nonsense\"\n", Path::new("v.toml")).unwrap_err();
        assert!(e.to_string().starts_with("v.toml:2:"), "{e}");
    }
}
