//! `vaxel.toml` → a typed, validated [`Config`]. Unknown keys are errors, and every
//! error names the file, line and what to fix.

use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod http;
pub mod policy;
pub mod webrtc;
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
    /// The `Server` header of responses; empty sends none. No version by default.
    pub server_header: String,
    /// With `[[trunks]]` configured, let callers from other addresses in too
    /// (a public IVR); per-source limits still apply to them.
    pub allow_any_caller: bool,
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
            server_header: "vaxel".into(),
            allow_any_caller: false,
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
    /// Hang up a call whose caller has sent no RTP at all this long after the answer.
    pub first_timeout_s: u64,
}

impl Default for RtpConfig {
    fn default() -> Self {
        RtpConfig {
            ports: "20000-39999".into(),
            timeout_s: 60,
            first_timeout_s: 10,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    /// Drive-loop threads; 0 = one per core.
    pub shards: usize,
    /// On SIGTERM, wait at most this long for calls in progress to end.
    pub drain_timeout_s: u64,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            shards: 0,
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

/// The customer history store and the files kept with it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// `sqlite://FILE` (created and migrated on first start) or `postgres://…`.
    pub url: String,
    /// Folder for voicemail recordings.
    pub dir: PathBuf,
    /// Country calling code used to write local numbers in E.164 (`46`: 070… → +4670…).
    pub country_code: String,
    /// A lookup slower than this lets the call go on as unknown.
    pub lookup_timeout_ms: u64,
    /// Calls within this many days make a caller a repeat caller.
    pub repeat_days: u32,
    /// Call records and voicemail older than this are purged.
    pub retention_days: u32,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            url: "sqlite://vaxel.db".into(),
            dir: PathBuf::from("data"),
            country_code: "46".into(),
            lookup_timeout_ms: 300,
            repeat_days: 7,
            retention_days: 730,
        }
    }
}

/// A queue flows can send callers to, and how its callers reach agents.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Prompt looped while waiting.
    pub music: String,
    /// Agents with this skill serve the queue (default: the queue's name).
    pub skill: Option<String>,
    /// `longest-idle`, `round-robin` or `fewest-calls`.
    pub strategy: crate::acd::Strategy,
    /// An agent's phone rings this long before the caller goes to the next one.
    pub ring_timeout_s: u64,
    /// After a call, the agent gets this long before the next one.
    pub wrap_up_s: u64,
    /// Rings in a row without answer that put the agent on break (0: never).
    pub max_misses: u32,
    /// An agent who missed or declined a caller is not offered that caller
    /// again for this long.
    pub reoffer_after_s: u64,
    /// A caller waiting this long is sent to the flow's `on_timeout` step (0: no limit).
    pub max_wait_s: u64,
    /// A caller joining a queue with this many waiting is sent to the flow's
    /// `on_full` step (0: no limit).
    pub max_length: usize,
    /// Opening hours (as in flows: `mon = "08:00-17:00"`, `holidays = ["se",
    /// "2026-12-31"]`); a caller joining while closed goes to `on_closed`.
    pub hours: Option<crate::flow::model::Hours>,
    /// The time zone of `hours`.
    pub timezone: String,
    /// Service level: answered within this many seconds (the queue's figures).
    pub service_level_s: u64,
    /// Who is offered which caller (`[queues.X.routing]`).
    pub routing: policy::RoutingConfig,
    /// The handle time assumed for the estimated wait before any call.
    pub aht_default_s: u64,
    /// Estimated waits shorter than this are not announced (0: never announce).
    pub announce_min_s: u64,
    /// The estimate is announced again at this interval (0: only on entry).
    pub announce_every_s: u64,
    /// The high-load policy (a name from `[policies]`).
    pub high_load: Option<String>,
    /// Calls to the customer per callback before it is given up.
    pub callback_attempts: u32,
    /// Wait between calls to a customer who did not answer.
    pub callback_retry_s: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            music: "music/hold".into(),
            skill: None,
            strategy: crate::acd::Strategy::LongestIdle,
            ring_timeout_s: 15,
            wrap_up_s: 10,
            max_misses: 3,
            reoffer_after_s: 60,
            max_wait_s: 0,
            max_length: 0,
            hours: None,
            timezone: "Europe/Stockholm".into(),
            service_level_s: 20,
            routing: policy::RoutingConfig::default(),
            aht_default_s: 180,
            announce_min_s: 60,
            announce_every_s: 120,
            high_load: None,
            callback_attempts: 3,
            callback_retry_s: 300,
        }
    }
}

/// An agent: who may register, and what they can answer.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The SIP user name the agent's phone registers with.
    pub id: String,
    pub password: String,
    #[serde(default)]
    pub name: String,
    /// Skill → level (1 strongest); no skills: the agent serves every queue.
    #[serde(default)]
    pub skills: std::collections::BTreeMap<String, u8>,
    #[serde(default)]
    pub languages: Vec<String>,
}

/// The ACD and the registrar agents' phones use.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcdConfig {
    /// Digest realm of REGISTER challenges.
    pub realm: String,
    /// An agent becomes available when their phone registers (a demo or a
    /// small office); otherwise they dial *1.
    pub available_on_register: bool,
    /// A digest nonce is answered `stale=true` after this long.
    pub nonce_lifetime_s: u64,
    pub register_min_expires_s: u64,
    pub register_max_expires_s: u64,
    /// Failed authentications from one address or for one account within a
    /// minute that block it…
    pub block_after: u32,
    /// …for this long.
    pub block_for_s: u64,
    /// Digest algorithms offered, most preferred first: "SHA-256", "MD5".
    /// Phones that take the first challenge whatever it is need MD5 first.
    pub digest_algorithms: Vec<String>,
}

impl Default for AcdConfig {
    fn default() -> Self {
        AcdConfig {
            realm: "vaxel".into(),
            available_on_register: false,
            nonce_lifetime_s: 300,
            register_min_expires_s: 60,
            register_max_expires_s: 3600,
            block_after: 5,
            block_for_s: 300,
            digest_algorithms: vec!["SHA-256".into(), "MD5".into()],
        }
    }
}

/// What one source address may make the engine hold or do (DESIGN §6). Every
/// limit is per source IP unless it says "in all"; configured trunks are exempt
/// from the per-source call and rate limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Concurrent calls from one source IP (trunks exempt).
    pub calls_per_source: usize,
    /// A call is hung up (BYE) after this long.
    pub max_call_s: u64,
    /// New INVITEs per second per source IP (token bucket; burst = 2 s worth).
    pub invites_per_s: u32,
    /// REGISTER requests per second per source IP.
    pub registers_per_s: u32,
    /// OPTIONS and other out-of-dialog requests per second per source IP.
    pub options_per_s: u32,
    /// Server transactions (non-INVITE and refused INVITEs) held per source IP.
    pub transactions_per_source: usize,
    /// Server transactions held in all; past this, answers are stateless.
    pub transactions: usize,
    /// TCP connections per source IP.
    pub tcp_per_source: usize,
    /// TCP connections in all (also kept below the open-file limit).
    pub tcp_connections: usize,
    /// A TCP connection with no call on it is closed after this long idle.
    pub tcp_idle_s: u64,
    /// A message started on TCP must be complete within this.
    pub tcp_message_s: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            calls_per_source: 100,
            max_call_s: 4 * 3600,
            invites_per_s: 50,
            registers_per_s: 20,
            options_per_s: 20,
            transactions_per_source: 500,
            transactions: 400_000,
            tcp_per_source: 32,
            tcp_connections: 4096,
            tcp_idle_s: 60,
            tcp_message_s: 10,
        }
    }
}

/// A SIP trunk: the addresses a provider sends calls from, and optionally the
/// numbers it delivers. When trunks are configured, INVITEs from elsewhere get
/// 403 (unless `sip.allow_any_caller`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    pub name: String,
    /// Source addresses in CIDR notation ("192.0.2.0/24", "2001:db8::1/128"); a
    /// bare address means just that one.
    pub from: Vec<String>,
    /// Dialled numbers this trunk delivers; empty means any.
    #[serde(default)]
    pub numbers: Vec<String>,
    /// Where calls out through this trunk go: `sip:{number}@192.0.2.10:5060`
    /// (`{number}` is replaced; an address with a port, UDP). Only callbacks
    /// dial out, and only through a trunk named in `[callbacks]`.
    pub outbound: Option<String>,
}

impl TrunkConfig {
    /// The outbound URI template and the address it is sent to.
    pub fn outbound_target(&self) -> Option<(String, std::net::SocketAddr)> {
        let uri = self.outbound.as_ref()?;
        if !uri.starts_with("sip:") || !uri.contains("{number}") {
            return None;
        }
        let host = uri.rsplit('@').next()?;
        let host = host.split(';').next()?;
        Some((uri.clone(), host.parse().ok()?))
    }
}

/// A trunk with its networks parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trunk {
    pub name: String,
    pub from: Vec<ipnet::IpNet>,
    pub numbers: Vec<String>,
}

impl Trunk {
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        let ip = canonical(ip);
        self.from.iter().any(|n| n.contains(&ip))
    }
}

/// IPv4-mapped IPv6 addresses are compared as IPv4.
pub fn canonical(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The queues of the shipped example flow, used when the config names none.
pub const DEFAULT_QUEUES: &[&str] = &["kundtjanst", "order", "retur", "betalning"];

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub sip: SipConfig,
    pub rtp: RtpConfig,
    pub engine: EngineSection,
    pub log: LogConfig,
    pub data: DataConfig,
    pub limits: LimitsConfig,
    /// SIP trunks allowed to send calls.
    pub trunks: Vec<TrunkConfig>,
    /// Directory of prompts.
    pub audio: Option<PathBuf>,
    /// Directory of flows (default `flows/`).
    pub flows: Option<PathBuf>,
    /// Queues by name; when none are given, the shipped flow's queues.
    pub queues: std::collections::BTreeMap<String, QueueConfig>,
    /// Transfer destinations by name: the only places calls can go out to.
    pub destinations: std::collections::BTreeMap<String, String>,
    /// Agents whose phones register and answer queued callers.
    pub agents: Vec<AgentConfig>,
    pub acd: AcdConfig,
    /// High-load policies by name (queues name one with `high_load`).
    pub policies: std::collections::BTreeMap<String, policy::PolicyConfig>,
    pub callbacks: policy::CallbacksConfig,
    pub http: http::HttpConfig,
    pub webrtc: webrtc::WebRtcConfig,
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

    pub fn flows_dir(&self) -> PathBuf {
        self.flows.clone().unwrap_or_else(|| PathBuf::from("flows"))
    }

    /// Queues by name, defaults filled in.
    pub fn queues(&self) -> std::collections::BTreeMap<String, QueueConfig> {
        if self.queues.is_empty() {
            DEFAULT_QUEUES
                .iter()
                .map(|q| (q.to_string(), QueueConfig::default()))
                .collect()
        } else {
            self.queues.clone()
        }
    }

    /// What flows may name: queues and transfer destinations.
    pub fn known(&self) -> crate::flow::validate::Known {
        crate::flow::validate::Known {
            queues: self.queues().into_keys().collect(),
            destinations: self.destinations.keys().cloned().collect(),
        }
    }

    pub fn audio_dir(&self) -> PathBuf {
        self.audio.clone().unwrap_or_else(|| PathBuf::from("audio"))
    }

    /// The trunks with their networks parsed (validated at load).
    pub fn trunks(&self) -> Vec<Trunk> {
        self.trunks
            .iter()
            .map(|t| Trunk {
                name: t.name.clone(),
                from: t.from.iter().filter_map(|c| parse_net(c).ok()).collect(),
                numbers: t.numbers.clone(),
            })
            .collect()
    }

    pub fn rtp_range(&self) -> Result<(u16, u16), ConfigError> {
        parse_range(&self.rtp.ports)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if let Some(p) = self
            .http
            .problems()
            .into_iter()
            .chain(self.webrtc.problems())
            .next()
        {
            return bad(p);
        }
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
        if self.rtp.timeout_s == 0 || self.rtp.first_timeout_s == 0 {
            return bad("rtp.timeout_s and rtp.first_timeout_s must be at least 1".into());
        }
        for (name, p) in &self.policies {
            p.validate(name).map_err(ConfigError::Invalid)?;
        }
        self.callbacks.validate().map_err(ConfigError::Invalid)?;
        if let Some(t) = &self.callbacks.trunk {
            match self.trunks.iter().find(|x| &x.name == t) {
                Some(x) if x.outbound_target().is_some() => {}
                Some(_) => {
                    return bad(format!(
                        "trunks \"{t}\": callbacks go out through it, so give outbound = \"sip:{{number}}@ADDRESS:PORT\""
                    ))
                }
                None => return bad(format!("callbacks.trunk: no trunk named \"{t}\"")),
            }
        }
        for t in &self.trunks {
            if t.from.is_empty() {
                return bad(format!(
                    "trunks \"{}\": give the addresses it sends from, like from = [\"192.0.2.0/24\"]",
                    t.name
                ));
            }
            for c in &t.from {
                if let Err(e) = parse_net(c) {
                    return bad(format!("trunks \"{}\": from \"{c}\": {e}; use CIDR like 192.0.2.0/24 or an address", t.name));
                }
            }
        }
        let l = &self.limits;
        if l.calls_per_source == 0
            || l.max_call_s == 0
            || l.invites_per_s == 0
            || l.registers_per_s == 0
            || l.options_per_s == 0
            || l.transactions_per_source == 0
            || l.transactions == 0
            || l.tcp_per_source == 0
            || l.tcp_connections == 0
            || l.tcp_idle_s == 0
            || l.tcp_message_s == 0
        {
            return bad("every [limits] value must be at least 1".into());
        }
        if self.sip.server_header.chars().any(|c| c.is_control()) {
            return bad("sip.server_header must be one line of text".into());
        }
        for (name, uri) in &self.destinations {
            if !(uri.starts_with("sip:") || uri.starts_with("sips:")) {
                return bad(format!(
                    "destinations.{name} = \"{uri}\": a destination is a SIP URI like \"sip:support@192.0.2.10:5060\""
                ));
            }
        }
        let d = &self.data;
        if !(d.url.starts_with("sqlite:")
            || d.url.starts_with("postgres://")
            || d.url.starts_with("postgresql://"))
        {
            return bad(format!(
                "data.url \"{}\": use sqlite://FILE or postgres://USER@HOST/DB",
                d.url
            ));
        }
        if d.country_code.is_empty() || !d.country_code.chars().all(|c| c.is_ascii_digit()) {
            return bad(format!(
                "data.country_code \"{}\": digits only, like 46",
                d.country_code
            ));
        }
        if d.lookup_timeout_ms == 0 || d.repeat_days == 0 || d.retention_days == 0 {
            return bad("data.lookup_timeout_ms, data.repeat_days and data.retention_days must be at least 1".into());
        }
        let mut ids = std::collections::BTreeSet::new();
        for a in &self.agents {
            let token = |s: &str| {
                !s.is_empty()
                    && s.len() <= 64
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            };
            if !token(&a.id) {
                return bad(format!("agents: id \"{}\": use letters, digits, '.', '-' or '_' (it is the phone's SIP user name)", a.id));
            }
            if !ids.insert(a.id.as_str()) {
                return bad(format!("agents: id \"{}\" appears twice", a.id));
            }
            if a.password.len() < 8 {
                return bad(format!(
                    "agents \"{}\": the password must have at least 8 characters",
                    a.id
                ));
            }
            for (skill, level) in &a.skills {
                if !(1..=9).contains(level) {
                    return bad(format!(
                        "agents \"{}\": skills.{skill} = {level}: levels go from 1 (strongest) to 9",
                        a.id
                    ));
                }
            }
        }
        for (name, q) in &self.queues {
            if q.ring_timeout_s == 0 {
                return bad(format!("queues.{name}.ring_timeout_s must be at least 1"));
            }
            q.routing.validate(name).map_err(ConfigError::Invalid)?;
            if let Some(p) = &q.high_load {
                let Some(policy) = self.policies.get(p) else {
                    return bad(format!(
                        "queues.{name}.high_load: no policy \"{p}\" in [policies]"
                    ));
                };
                if let Some(o) = &policy.overflow {
                    if !self.queues().contains_key(o) || o == name {
                        return bad(format!(
                            "policies.{p}.overflow: \"{o}\" is not another configured queue"
                        ));
                    }
                }
            }
            if let Some(h) = &q.hours {
                if let Some(p) = h.problems().first() {
                    return bad(format!("queues.{name}.hours: {p}"));
                }
            }
            if jiff::tz::TimeZone::get(&q.timezone).is_err() {
                return bad(format!(
                    "queues.{name}.timezone \"{}\": not an IANA time zone (like Europe/Stockholm)",
                    q.timezone
                ));
            }
        }
        let acd = &self.acd;
        if acd.realm.is_empty()
            || acd.realm.contains('"')
            || acd.realm.chars().any(|c| c.is_control())
        {
            return bad("acd.realm must be a non-empty name without quotes".into());
        }
        if acd.nonce_lifetime_s == 0
            || acd.register_min_expires_s == 0
            || acd.register_max_expires_s < acd.register_min_expires_s
            || acd.block_after == 0
        {
            return bad("acd: nonce_lifetime_s, register_min_expires_s and block_after must be at least 1, and register_max_expires_s at least register_min_expires_s".into());
        }
        let algs = self.digest_algorithms()?;
        if algs.is_empty() || algs.len() != acd.digest_algorithms.len() {
            return bad("acd.digest_algorithms: name \"SHA-256\" and/or \"MD5\", each once".into());
        }
        Ok(())
    }

    /// Each queue's opening hours and their time zone (queues without hours
    /// are always open).
    pub fn queue_hours(
        &self,
    ) -> std::collections::HashMap<String, (crate::flow::model::Hours, jiff::tz::TimeZone)> {
        self.queues()
            .into_iter()
            .filter_map(|(name, q)| {
                let tz = jiff::tz::TimeZone::get(&q.timezone).ok()?;
                Some((name, (q.hours?, tz)))
            })
            .collect()
    }

    /// Where callbacks are dialled: the `[callbacks]` trunk's outbound target.
    pub fn outbound(&self) -> Option<crate::engine::callback::Outbound> {
        let name = self.callbacks.trunk.as_ref()?;
        let t = self.trunks.iter().find(|t| &t.name == name)?;
        let (uri, dest) = t.outbound_target()?;
        Some(crate::engine::callback::Outbound {
            uri,
            dest,
            ring: Duration::from_secs(self.callbacks.ring_s.max(1)),
            allowed: self.callbacks.allowed.clone(),
        })
    }

    /// The digest algorithms to challenge with, in order.
    pub fn digest_algorithms(&self) -> Result<Vec<crate::acd::digest::Algorithm>, ConfigError> {
        let mut out = Vec::new();
        for name in &self.acd.digest_algorithms {
            let a = crate::acd::digest::Algorithm::from_name(name).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "acd.digest_algorithms: \"{name}\" is not \"SHA-256\" or \"MD5\""
                ))
            })?;
            if !out.contains(&a) {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// The ACD's view of the agents and queues.
    pub fn acd_settings(
        &self,
    ) -> (
        Vec<crate::acd::AgentSettings>,
        Vec<crate::acd::QueueSettings>,
    ) {
        let agents = self
            .agents
            .iter()
            .map(|a| crate::acd::AgentSettings {
                id: a.id.clone(),
                name: a.name.clone(),
                skills: a.skills.clone(),
                languages: a.languages.clone(),
                available_on_register: self.acd.available_on_register,
            })
            .collect();
        let queues = self
            .queues()
            .into_iter()
            .map(|(name, q)| crate::acd::QueueSettings {
                skill: q.skill.clone().unwrap_or_else(|| name.clone()),
                name,
                strategy: q.strategy,
                ring_timeout: Duration::from_secs(q.ring_timeout_s),
                wrap_up: Duration::from_secs(q.wrap_up_s),
                max_misses: q.max_misses,
                reoffer_after: Duration::from_secs(q.reoffer_after_s),
                max_wait: (q.max_wait_s > 0).then(|| Duration::from_secs(q.max_wait_s)),
                max_length: (q.max_length > 0).then_some(q.max_length),
                routing: q.routing.routing(),
                aht_default: Duration::from_secs(q.aht_default_s.max(1)),
                announce_min: (q.announce_min_s > 0).then(|| Duration::from_secs(q.announce_min_s)),
                announce_every: (q.announce_every_s > 0)
                    .then(|| Duration::from_secs(q.announce_every_s)),
                high_load: q
                    .high_load
                    .as_ref()
                    .and_then(|p| self.policies.get(p).map(|c| c.policy(p))),
                callback_attempts: q.callback_attempts.max(1),
                callback_retry: Duration::from_secs(q.callback_retry_s),
            })
            .collect();
        (agents, queues)
    }

    pub fn timers(&self) -> crate::sip::transaction::TimerConfig {
        crate::sip::transaction::TimerConfig {
            t1: Duration::from_millis(self.sip.t1_ms),
            t2: Duration::from_millis(self.sip.t2_ms),
            t4: Duration::from_millis(self.sip.t4_ms),
        }
    }
}

/// A CIDR network, or a bare address as a one-address network.
fn parse_net(s: &str) -> Result<ipnet::IpNet, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<ipnet::IpNet>() {
        return Ok(n.trunc());
    }
    s.parse::<IpAddr>()
        .map(ipnet::IpNet::from)
        .map_err(|_| "not an address or network".to_string())
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
