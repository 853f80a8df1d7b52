//! `vaxel`: the command line. No logic here: it parses options, loads the
//! configuration and hands over to the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use vaxel::config::{parse_range, Config};

#[derive(Parser)]
#[command(
    name = "vaxel",
    version,
    about = "Växel: a telephony IVR and call-routing engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Answer SIP calls (UDP and TCP) until SIGTERM/SIGINT.
    Serve(ServeArgs),
    /// Decode every prompt in an audio directory and report problems.
    CheckAudio {
        /// Audio directory (default: audio/)
        #[arg(default_value = "audio")]
        dir: PathBuf,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Configuration file (TOML). Without it, built-in defaults are used.
    #[arg(long)]
    config: Option<PathBuf>,
    /// SIP address for UDP and TCP [default: 0.0.0.0:5060]
    #[arg(long)]
    sip_listen: Option<SocketAddr>,
    /// Address to advertise in Contact and SDP (when behind NAT)
    #[arg(long)]
    advertise: Option<IpAddr>,
    /// RTP port range LOW-HIGH [default: 20000-39999]
    #[arg(long)]
    rtp_ports: Option<String>,
    /// Hang up calls whose caller sends no RTP for this many seconds [default: 60]
    #[arg(long)]
    rtp_timeout: Option<u64>,
    /// Concurrent call limit; past it new calls get 503 [default: 5000]
    #[arg(long)]
    max_calls: Option<usize>,
    /// Ring this many milliseconds before answering [default: 0]
    #[arg(long)]
    answer_after_ms: Option<u64>,
    /// Prompt directory [default: audio/]
    #[arg(long)]
    audio: Option<PathBuf>,
    /// Drive-loop threads [default: one per core]
    #[arg(long)]
    shards: Option<usize>,
    /// On SIGTERM, wait at most this many seconds for calls in progress [default: 300]
    #[arg(long)]
    drain_timeout: Option<u64>,
    /// Show callers' numbers in logs (redacted by default)
    #[arg(long)]
    show_numbers: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(a) => {
            let mut cfg = match &a.config {
                Some(p) => Config::load(p)?,
                None => Config::default(),
            };
            if let Some(v) = a.sip_listen {
                cfg.sip.listen = v;
            }
            if let Some(v) = a.advertise {
                cfg.sip.advertise = Some(v);
            }
            if let Some(v) = a.rtp_ports {
                parse_range(&v)?;
                cfg.rtp.ports = v;
            }
            if let Some(v) = a.rtp_timeout {
                cfg.rtp.timeout_s = v;
            }
            if let Some(v) = a.max_calls {
                cfg.sip.max_calls = v;
            }
            if let Some(v) = a.answer_after_ms {
                cfg.sip.answer_after_ms = v;
            }
            if let Some(v) = a.audio {
                cfg.audio = Some(v);
            }
            if let Some(v) = a.shards {
                cfg.engine.shards = v;
            }
            if let Some(v) = a.drain_timeout {
                cfg.engine.drain_timeout_s = v;
            }
            cfg.log.show_numbers |= a.show_numbers;
            cfg.validate()?;
            let _flush_on_exit = init_logs(&cfg.log.level);
            vaxel::runtime::serve(cfg).context("vaxel serve")?;
        }
        Command::CheckAudio { dir } => {
            let cache = vaxel::media::prompt::PromptCache::load_dir(&dir)?;
            let mut names: Vec<_> = cache.names().collect();
            names.sort();
            for n in names {
                let p = cache.get(n).expect("listed");
                println!("{n}\t{} ms", p.duration_ms());
            }
        }
    }
    Ok(())
}

/// Logs go to stderr through a background writer thread, so that a slow
/// terminal or pipe never stalls a drive loop (under extreme load lines are
/// dropped rather than calls delayed).
fn init_logs(level: &str) -> tracing_appender::non_blocking::WorkerGuard {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    guard
}
