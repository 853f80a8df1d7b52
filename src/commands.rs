//! The offline commands behind `vaxel check`, `vaxel simulate` and
//! `vaxel test`: load, run, print. They return the process exit code.

use crate::config::Config;
use crate::flow::cases;
use crate::flow::load::load_dir;
use crate::flow::simulate;
use crate::flow::{FlowSet, Severity};
use crate::media::prompt::PromptCache;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Loads prompts and flows, printing every problem; `None` when any is an error.
pub fn load(cfg: &Config, flows: &Path, quiet_ok: bool) -> Option<Arc<FlowSet>> {
    let prompts = match PromptCache::load_dir(&cfg.audio_dir()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return None;
        }
    };
    let (set, problems) = load_dir(flows, prompts, &cfg.known());
    for p in &problems {
        eprintln!("{p}");
    }
    let errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    if errors > 0 {
        eprintln!(
            "{}: {errors} error(s), {} warning(s); not loaded",
            flows.display(),
            problems.len() - errors
        );
    } else if !quiet_ok {
        if let Some(s) = &set {
            for f in s.flows.values() {
                println!(
                    "{}: ok, flow \"{}\" version {} ({} steps; numbers {})",
                    f.path.display(),
                    f.name,
                    f.version,
                    f.doc.steps.len(),
                    f.doc
                        .numbers
                        .iter()
                        .map(|n| n.get_ref().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    set.map(Arc::new)
}

/// `vaxel check [DIR]`.
pub fn check(cfg: &Config, dir: &Path) -> i32 {
    match load(cfg, dir, false) {
        Some(_) => 0,
        None => 1,
    }
}

pub struct SimulateArgs {
    pub flow: String,
    pub from: String,
    pub to: String,
    pub keys: String,
    pub at: Option<String>,
    pub customer: Option<String>,
    pub webhook_next: Option<String>,
    /// A simulated agent answers after this long in a queue.
    pub agent_after: Option<std::time::Duration>,
}

/// Parses `name=Anna,tier=gold,language=sv,recent_calls=2,last_outcome=queue`.
pub fn parse_customer(s: &str) -> Result<cases::CustomerSpec, String> {
    let mut c = cases::CustomerSpec::default();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("\"{part}\": use key=value"))?;
        let v = v.trim().to_string();
        match k.trim() {
            "name" => c.name = Some(v),
            "tier" => c.tier = Some(v),
            "language" => c.language = Some(v),
            "recent_calls" => {
                c.recent_calls = v
                    .parse()
                    .map_err(|_| format!("recent_calls \"{v}\" is not a number"))?
            }
            "last_outcome" => c.last_outcome = Some(v),
            "last_agent" => c.last_agent = Some(v),
            other => {
                return Err(format!(
                "unknown customer field \"{other}\" (name, tier, language, recent_calls, last_outcome, last_agent)"
            ))
            }
        }
    }
    Ok(c)
}

/// `vaxel simulate FLOW --from N [--keys K] [--at T] [--customer …]`.
pub fn simulate(cfg: &Config, dir: &Path, a: SimulateArgs, now: jiff::Timestamp) -> i32 {
    let Some(set) = load(cfg, dir, true) else {
        return 1;
    };
    let Some(flow) = set.get(&a.flow).cloned() else {
        eprintln!(
            "no flow \"{}\" in {} (flows: {})",
            a.flow,
            dir.display(),
            set.flows.keys().cloned().collect::<Vec<_>>().join(", ")
        );
        return 2;
    };
    let run = || -> Result<simulate::Transcript, String> {
        let at = match &a.at {
            Some(t) => cases::local_time(&flow.tz, t)?,
            None => now,
        };
        let customer = a
            .customer
            .as_deref()
            .map(parse_customer)
            .transpose()?
            .map(|c| c.to_customer(&a.from));
        let sc = simulate::Scenario {
            flow: a.flow.clone(),
            from: a.from.clone(),
            dialled: a.to.clone(),
            at,
            keys: simulate::parse_keys(&a.keys)?,
            customer,
            webhook: a
                .webhook_next
                .as_ref()
                .map(|n| crate::flow::interp::WebhookReply {
                    vars: Default::default(),
                    next: Some(n.clone()),
                }),
            transfer_ok: true,
            agent_after: a.agent_after,
            limit: std::time::Duration::from_secs(600),
        };
        simulate::run(set.clone(), &sc)
    };
    match run() {
        Ok(tr) => {
            for l in tr.lines {
                println!("{l}");
            }
            0
        }
        Err(e) => {
            eprintln!("{e}");
            2
        }
    }
}

/// `vaxel test [DIR]`: runs `DIR/tests/*.toml` against the flows in `DIR`.
pub fn test(cfg: &Config, dir: &Path, verbose: bool) -> i32 {
    let Some(set) = load(cfg, dir, true) else {
        return 1;
    };
    let tests_dir = dir.join("tests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&tests_dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    if files.is_empty() {
        eprintln!("{}: no flow tests (*.toml)", tests_dir.display());
        return 1;
    }
    let (mut passed, mut failed) = (0, 0);
    for f in files {
        for r in cases::run_file(&set, &f) {
            if r.failures.is_empty() {
                passed += 1;
                println!("ok    {}", r.name);
            } else {
                failed += 1;
                println!("FAIL  {}", r.name);
                for m in &r.failures {
                    println!("      {m}");
                }
            }
            if verbose || !r.failures.is_empty() {
                for l in &r.transcript {
                    println!("        {l}");
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    i32::from(failed > 0)
}

/// `vaxel customers …`.
pub enum Customers {
    Import(PathBuf),
    Erase(String),
    Purge,
    Show(String),
}

pub fn customers(cfg: &Config, cmd: Customers) -> i32 {
    use crate::store::{Store, StoreSettings};
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let cc = cfg.data.country_code.clone();
    rt.block_on(async move {
        let store = match Store::open(StoreSettings {
            url: cfg.data.url.clone(),
            data_dir: cfg.data.dir.clone(),
            repeat_days: cfg.data.repeat_days,
            retention_days: cfg.data.retention_days,
        })
        .await
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        };
        let now = jiff::Timestamp::now();
        let number = |raw: &str| match crate::number::e164(raw, &cc) {
            Some(n) => Ok(n),
            None => Err(format!("\"{raw}\" is not a phone number")),
        };
        let code = match cmd {
            Customers::Import(file) => {
                match crate::store::import::import(&store, &file, &cc, now).await {
                    Ok((n, bad)) => {
                        for (line, why) in &bad {
                            eprintln!("{}:{line}: {why}", file.display());
                        }
                        println!("{n} customers imported, {} rows skipped", bad.len());
                        i32::from(!bad.is_empty())
                    }
                    Err(e) => {
                        eprintln!("{e}");
                        1
                    }
                }
            }
            Customers::Erase(raw) => match number(&raw) {
                Ok(n) => match store.erase(&n).await {
                    Ok(rows) => {
                        println!("{n}: {rows} rows erased");
                        0
                    }
                    Err(e) => {
                        eprintln!("{e}");
                        1
                    }
                },
                Err(e) => {
                    eprintln!("{e}");
                    2
                }
            },
            Customers::Purge => match store.purge(now).await {
                Ok(rows) => {
                    println!(
                        "{rows} rows older than {} days purged",
                        cfg.data.retention_days
                    );
                    0
                }
                Err(e) => {
                    eprintln!("{e}");
                    1
                }
            },
            Customers::Show(raw) => match number(&raw) {
                Ok(n) => match store.lookup(&n, now).await {
                    Ok(Some(c)) => {
                        println!(
                            "{n}: name {}, language {}, tier {}, {} calls in the last {} days, last outcome {}, last agent {}",
                            c.name.as_deref().unwrap_or("-"),
                            c.language.as_deref().unwrap_or("-"),
                            c.tier.as_deref().unwrap_or("-"),
                            c.recent_calls,
                            cfg.data.repeat_days,
                            c.last_outcome.as_deref().unwrap_or("-"),
                            c.last_agent.as_deref().unwrap_or("-")
                        );
                        0
                    }
                    Ok(None) => {
                        println!("{n}: unknown");
                        0
                    }
                    Err(e) => {
                        eprintln!("{e}");
                        1
                    }
                },
                Err(e) => {
                    eprintln!("{e}");
                    2
                }
            },
        };
        store.close().await;
        code
    })
}

pub struct SimulateQueueArgs {
    pub queue: String,
    pub arrivals: String,
    pub agents: usize,
    pub aht: String,
    pub patience: Option<String>,
    pub hours: f64,
    pub seed: u64,
    pub callback_accept: f64,
}

/// "4m", "240s", "1.5h", "90" (seconds).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("\"{s}\": not a duration like 4m or 240s"))?;
    let secs = match unit {
        "s" => v,
        "m" | "min" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(format!("\"{s}\": the unit must be s, m or h")),
    };
    if !(secs.is_finite() && secs > 0.0 && secs < 1e7) {
        return Err(format!("\"{s}\": must be positive"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// "90/h", "1.5/min", "0.02/s" → arrivals per hour.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let (n, per) = s
        .split_once('/')
        .ok_or_else(|| format!("\"{s}\": give a rate like 90/h"))?;
    let n: f64 = n
        .trim()
        .parse()
        .map_err(|_| format!("\"{s}\": give a rate like 90/h"))?;
    let per_hour = match per.trim() {
        "h" => n,
        "m" | "min" => n * 60.0,
        "s" => n * 3600.0,
        _ => return Err(format!("\"{s}\": the unit must be /h, /min or /s")),
    };
    if !(per_hour.is_finite() && per_hour > 0.0) {
        return Err(format!("\"{s}\": must be positive"));
    }
    Ok(per_hour)
}

/// `vaxel simulate-queue`: the real ACD on virtual time, beside Erlang C.
pub fn simulate_queue(cfg: &Config, a: SimulateQueueArgs, base: std::time::Instant) -> i32 {
    let parsed = (|| -> Result<_, String> {
        let rate = parse_rate(&a.arrivals)?;
        let aht = parse_duration(&a.aht)?;
        let patience = a.patience.as_deref().map(parse_duration).transpose()?;
        if a.agents == 0 || a.agents > 10_000 {
            return Err("--agents must be 1–10000".into());
        }
        if !(a.hours > 0.0 && a.hours <= 10_000.0) {
            return Err("--hours must be above 0 and at most 10000".into());
        }
        Ok((rate, aht, patience))
    })();
    let (rate, aht, patience) = match parsed {
        Ok(v) => v,
        Err(e) => {
            eprintln!("vaxel simulate-queue: {e}");
            return 2;
        }
    };
    let (_, queues) = cfg.acd_settings();
    let all = cfg.queues();
    let Some(queue) = queues.into_iter().find(|q| q.name == a.queue) else {
        let names: Vec<_> = all.keys().cloned().collect();
        eprintln!(
            "vaxel simulate-queue: no queue \"{}\" (configured: {})",
            a.queue,
            names.join(", ")
        );
        return 2;
    };
    let sl = all.get(&a.queue).map_or(20, |q| q.service_level_s);
    let s = crate::acd::sim::SimSettings {
        queue,
        agents: a.agents,
        arrivals_per_hour: rate,
        aht,
        patience,
        duration: std::time::Duration::from_secs_f64(a.hours * 3600.0),
        seed: a.seed,
        service_level: std::time::Duration::from_secs(sl),
        callback_accept: a.callback_accept.clamp(0.0, 1.0),
    };
    let r = crate::acd::sim::run(base, &s);
    print!("{}", crate::acd::sim::format_report(&a.queue, &s, &r));
    0
}
