//! Hot reload of `flows/`: a `notify` watcher on the folder (not the files:
//! editors save by writing a new file and renaming it over the old one). A
//! burst of events is settled for a moment, then the whole folder is loaded
//! and validated. A valid set becomes the version new calls start on; an
//! invalid one is refused with the same `file:line: reason` lines as
//! `vaxel check`, and the running version stays. Calls in progress keep the
//! version they started with (they hold its `Arc`). An edit that names a
//! prompt not yet loaded makes the audio folder be read again first, so new
//! audio files need no restart.

use crate::flow::load::load_dir;
use crate::flow::validate::Known;
use crate::flow::{FlowSet, Severity};
use notify::{RecursiveMode, Watcher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long a burst of file events settles before the folder is read.
const SETTLE: Duration = Duration::from_millis(150);

/// Keeps the watcher alive; dropping it stops reloading.
pub struct Reloader {
    _watcher: notify::RecommendedWatcher,
}

pub fn start(
    dir: PathBuf,
    audio: PathBuf,
    known: Known,
    current: Arc<FlowSet>,
    tx: watch::Sender<Arc<FlowSet>>,
) -> notify::Result<Reloader> {
    let (ev_tx, ev_rx) = std::sync::mpsc::channel::<()>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            if !ev.kind.is_access() {
                let _ = ev_tx.send(());
            }
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    std::thread::Builder::new()
        .name("vaxel-reload".into())
        .spawn(move || {
            let mut running = current;
            while ev_rx.recv().is_ok() {
                // Let the burst (write, rename, chmod…) finish.
                std::thread::sleep(SETTLE);
                while ev_rx.try_recv().is_ok() {}
                let (mut set, mut problems) = load_dir(&dir, running.prompts.clone(), &known);
                // A new prompt named by the edit: read the audio folder again.
                if set.is_none() && problems.iter().any(|p| p.message.contains("unknown prompt")) {
                    match crate::media::prompt::PromptCache::load_dir(&audio) {
                        Ok(prompts) => {
                            tracing::info!(count = prompts.len(), "audio folder read again for new prompts");
                            (set, problems) = load_dir(&dir, prompts, &known);
                        }
                        Err(e) => tracing::error!(error = %e, "audio folder cannot be read"),
                    }
                }
                match set {
                    Some(set) if set.id == running.id => {}
                    Some(set) => {
                        for p in problems.iter().filter(|p| p.severity == Severity::Warning) {
                            tracing::warn!("{p}");
                        }
                        for f in set.flows.values() {
                            let before = running.get(&f.name).map(|o| o.version.clone());
                            if before.as_deref() != Some(f.version.as_str()) {
                                tracing::info!(flow = %f.name, version = %f.version, previous = before.as_deref().unwrap_or("-"), "flow loaded");
                            }
                        }
                        let set = Arc::new(set);
                        tracing::info!(set = %set.id, flows = set.flows.len(), "flows reloaded; new calls use this version");
                        running = set.clone();
                        if tx.send(set).is_err() {
                            return;
                        }
                    }
                    None => {
                        for p in &problems {
                            tracing::error!("{p}");
                        }
                        tracing::error!(running = %running.id, "flow edit refused; the running version stays");
                    }
                }
            }
        })
        .map_err(notify::Error::io)?;
    Ok(Reloader { _watcher: watcher })
}
