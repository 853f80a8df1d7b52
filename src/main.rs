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
    /// Validate every flow and the prompts it names; `file:line: reason` per problem.
    Check {
        /// Flows directory [default: flows/]
        dir: Option<PathBuf>,
        #[command(flatten)]
        common: OfflineArgs,
    },
    /// Run a flow with no phone and print what the caller hears and where the call goes.
    Simulate {
        /// Flow name (the file name without .toml)
        flow: String,
        /// The caller's number
        #[arg(long, default_value = "+46701234567")]
        from: String,
        /// The dialled number
        #[arg(long, default_value = "")]
        to: String,
        /// Keys pressed: "0@2s,1,2@5s" (a key without @TIME is pressed when the flow asks)
        #[arg(long, default_value = "")]
        keys: String,
        /// Local time of the call in the flow's time zone, e.g. 2026-12-24T21:30 [default: now]
        #[arg(long)]
        at: Option<String>,
        /// A known caller: "name=Anna,tier=gold,language=sv,recent_calls=2" [default: unknown]
        #[arg(long)]
        customer: Option<String>,
        /// Simulate webhooks replying with this next step [default: they time out]
        #[arg(long)]
        webhook_next: Option<String>,
        /// A simulated agent answers after the caller waited this long in a
        /// queue ("45s", "2m") [default: nobody answers; keys still work]
        #[arg(long)]
        agent_after: Option<String>,
        /// Flows directory [default: flows/]
        #[arg(long)]
        flows: Option<PathBuf>,
        #[command(flatten)]
        common: OfflineArgs,
    },
    /// Run the real ACD (routing, high-load policy, estimated wait, callbacks)
    /// on virtual time with generated traffic; print the figures beside Erlang C.
    SimulateQueue {
        /// The queue (its settings come from the config)
        queue: String,
        /// Arrival rate: "90/h", "1.5/min"
        #[arg(long)]
        arrivals: String,
        /// Agents staffed
        #[arg(long)]
        agents: usize,
        /// Mean handle time (talk and wrap-up): "4m", "240s"
        #[arg(long)]
        aht: String,
        /// Mean patience before a caller gives up: "3m" [default: callers never give up]
        #[arg(long)]
        patience: Option<String>,
        /// Simulated hours
        #[arg(long, default_value_t = 8.0)]
        hours: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Share of callers offered a callback (high-load policy) who take it
        #[arg(long, default_value_t = 0.5)]
        callback_accept: f64,
        #[command(flatten)]
        common: OfflineArgs,
    },
    /// Run the flow tests in FLOWS/tests/*.toml.
    Test {
        /// Flows directory [default: flows/]
        dir: Option<PathBuf>,
        /// Print every transcript, not only failing ones
        #[arg(long, short)]
        verbose: bool,
        #[command(flatten)]
        common: OfflineArgs,
    },
    /// The customer store: import, erase, purge.
    Customers {
        #[command(subcommand)]
        command: CustomersCommand,
        /// Configuration file (for [data])
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        /// Store URL [default: sqlite://vaxel.db]
        #[arg(long, global = true)]
        data: Option<String>,
    },
    /// Decode every prompt in an audio directory and report problems.
    CheckAudio {
        /// Audio directory (default: audio/)
        #[arg(default_value = "audio")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum CustomersCommand {
    /// Load customers from CSV (header: number,name,language,tier,value,notes); bad rows are reported by line and skipped.
    Import { file: PathBuf },
    /// Remove everything stored about one number (customer, calls, callbacks, voicemail).
    Erase { number: String },
    /// Remove history older than the retention period now (the engine also does this hourly).
    Purge,
    /// Show what the store knows about a number.
    Show { number: String },
}

/// Options of the commands that run with no network.
#[derive(clap::Args)]
struct OfflineArgs {
    /// Configuration file (queues and destinations flows may name)
    #[arg(long)]
    config: Option<PathBuf>,
    /// Prompt directory [default: audio/]
    #[arg(long)]
    audio: Option<PathBuf>,
}

impl OfflineArgs {
    fn config(&self) -> anyhow::Result<Config> {
        let mut cfg = match &self.config {
            Some(p) => Config::load(p)?,
            None => default_config()?,
        };
        if let Some(a) = &self.audio {
            cfg.audio = Some(a.clone());
        }
        Ok(cfg)
    }
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Configuration file (TOML) [default: ./vaxel.toml when present, else
    /// built-in defaults]
    #[arg(long)]
    config: Option<PathBuf>,
    /// SIP address for UDP and TCP [default: 0.0.0.0:5060]
    #[arg(long)]
    sip_listen: Option<SocketAddr>,
    /// HTTP address for the API, the event stream, /metrics and the pages [default: 127.0.0.1:8080]
    #[arg(long)]
    http_listen: Option<SocketAddr>,
    /// Address to advertise in Contact and SDP (when behind NAT)
    #[arg(long)]
    advertise: Option<IpAddr>,
    /// RTP port range LOW-HIGH [default: 20000-39999]
    #[arg(long)]
    rtp_ports: Option<String>,
    /// Hang up calls whose caller sends no RTP for this many seconds [default: 60]
    #[arg(long)]
    rtp_timeout: Option<u64>,
    /// Hang up calls whose caller has sent no RTP at all this many seconds after the answer [default: 10]
    #[arg(long)]
    first_rtp_timeout: Option<u64>,
    /// Concurrent call limit; past it new calls get 503 [default: 5000]
    #[arg(long)]
    max_calls: Option<usize>,
    /// Ring this many milliseconds before answering [default: 0]
    #[arg(long)]
    answer_after_ms: Option<u64>,
    /// Prompt directory [default: audio/]
    #[arg(long)]
    audio: Option<PathBuf>,
    /// Flows directory [default: flows/]
    #[arg(long)]
    flows: Option<PathBuf>,
    /// Customer store: sqlite://FILE or postgres://USER:PASS@HOST/DB [default: sqlite://vaxel.db]
    #[arg(long)]
    data: Option<String>,
    /// Folder for voicemail recordings [default: data/]
    #[arg(long)]
    data_dir: Option<PathBuf>,
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

/// Errors are printed as one clear message (no backtrace, even with
/// RUST_BACKTRACE set): they are the user's to fix, not a crash.
fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// `vaxel.toml` in the working directory when there is one (the repository
/// ships one to try the engine with), else the built-in defaults.
fn default_config() -> anyhow::Result<Config> {
    let here = std::path::Path::new("vaxel.toml");
    if here.is_file() {
        Ok(Config::load(here)?)
    } else {
        Ok(Config::default())
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(a) => {
            let mut cfg = match &a.config {
                Some(p) => Config::load(p)?,
                None => default_config()?,
            };
            if let Some(v) = a.sip_listen {
                cfg.sip.listen = v;
            }
            if let Some(v) = a.http_listen {
                cfg.http.listen = v;
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
            if let Some(v) = a.first_rtp_timeout {
                cfg.rtp.first_timeout_s = v;
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
            if let Some(v) = a.flows {
                cfg.flows = Some(v);
            }
            if let Some(v) = a.data {
                cfg.data.url = v;
            }
            if let Some(v) = a.data_dir {
                cfg.data.dir = v;
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
        Command::Check { dir, common } => {
            let cfg = common.config()?;
            let dir = dir.unwrap_or_else(|| cfg.flows_dir());
            std::process::exit(vaxel::commands::check(&cfg, &dir));
        }
        Command::Simulate {
            flow,
            from,
            to,
            keys,
            at,
            customer,
            webhook_next,
            agent_after,
            flows,
            common,
        } => {
            let agent_after = agent_after
                .as_deref()
                .map(vaxel::commands::parse_duration)
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let cfg = common.config()?;
            let dir = flows.unwrap_or_else(|| cfg.flows_dir());
            let args = vaxel::commands::SimulateArgs {
                flow,
                from,
                to,
                keys,
                at,
                customer,
                webhook_next,
                agent_after,
            };
            std::process::exit(vaxel::commands::simulate(
                &cfg,
                &dir,
                args,
                jiff::Timestamp::now(),
            ));
        }
        Command::SimulateQueue {
            queue,
            arrivals,
            agents,
            aht,
            patience,
            hours,
            seed,
            callback_accept,
            common,
        } => {
            let cfg = common.config()?;
            let args = vaxel::commands::SimulateQueueArgs {
                queue,
                arrivals,
                agents,
                aht,
                patience,
                hours,
                seed,
                callback_accept,
            };
            std::process::exit(vaxel::commands::simulate_queue(
                &cfg,
                args,
                std::time::Instant::now(),
            ));
        }
        Command::Test {
            dir,
            verbose,
            common,
        } => {
            let cfg = common.config()?;
            let dir = dir.unwrap_or_else(|| cfg.flows_dir());
            std::process::exit(vaxel::commands::test(&cfg, &dir, verbose));
        }
        Command::Customers {
            command,
            config,
            data,
        } => {
            let mut cfg = match &config {
                Some(p) => Config::load(p)?,
                None => default_config()?,
            };
            if let Some(d) = data {
                cfg.data.url = d;
            }
            cfg.validate()?;
            let cmd = match command {
                CustomersCommand::Import { file } => vaxel::commands::Customers::Import(file),
                CustomersCommand::Erase { number } => vaxel::commands::Customers::Erase(number),
                CustomersCommand::Purge => vaxel::commands::Customers::Purge,
                CustomersCommand::Show { number } => vaxel::commands::Customers::Show(number),
            };
            std::process::exit(vaxel::commands::customers(&cfg, cmd));
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
