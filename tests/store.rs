//! The customer history store against both back ends: the same checks run on
//! SQLite (a file) and on a real PostgreSQL server started for the test.

mod common;

use common::pg::Pg;
use std::time::{Duration, Instant};
use vaxel::engine::CallRecord;
use vaxel::store::{Store, StoreSettings, Table};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn settings(url: &str, name: &str) -> StoreSettings {
    StoreSettings {
        url: url.to_string(),
        data_dir: common::temp_dir(&format!("store-{name}")),
        repeat_days: 7,
        retention_days: 30,
    }
}

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

fn record(id: &str, caller: &str, started: &str, outcome: &str, agent: Option<&str>) -> CallRecord {
    CallRecord {
        call_id: id.into(),
        started: ts(started),
        answered: Some(ts(started)),
        ended: ts(started),
        caller: caller.into(),
        dialled: "+46850001000".into(),
        flow: "webbshop".into(),
        flow_version: "0123456789ab".into(),
        path: vec!["greet".into(), "main_menu".into()],
        outcome: outcome.into(),
        ended_by: "caller".into(),
        queue: Some("order".into()),
        agent: agent.map(str::to_string),
        wait_ms: Some(12_000),
        talk_ms: None,
        human_key_ms: None,
        announced_ms: Some(2900),
        lookup_ms: Some(3),
        known: true,
        route: agent.map(|a| format!("{a}: sticky: last agent {a}")),
        ewt_ms: Some(60_000),
        closed: false,
        to_human_ms: None,
    }
}

/// Everything the engine and the CLI ask of the store.
async fn exercise(s: StoreSettings) {
    let data_dir = s.data_dir.clone();
    let store = Store::open(s.clone()).await.expect("open + migrate");
    // Opening again (a restart) finds the migrations applied.
    let again = Store::open(s.clone()).await.expect("reopen");
    again.close().await;

    // Import: good rows kept, bad rows reported by line.
    let csv = data_dir.join("customers.csv");
    std::fs::write(
        &csv,
        "number,name,language,tier,value,notes\n\
         070-111 22 33,Anna Svensson,sv,gold,12000,VIP\n\
         nope,Bad Row,sv,,,\n\
         +4520123456,Mette,da,,,\n\
         0046 8 123 456 78,Nordkorgen AB,sv,b2b,,\n",
    )
    .unwrap();
    let now = ts("2026-11-24T10:00:00Z");
    let (n, bad) = vaxel::store::import::import(&store, &csv, "46", now)
        .await
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].0, 3);
    // Re-importing updates instead of duplicating.
    vaxel::store::import::import(&store, &csv, "46", now)
        .await
        .unwrap();
    assert_eq!(store.count(Table::Customers).await.unwrap(), 3);

    // Lookups: unknown, known without calls, then with history.
    assert_eq!(store.lookup("+46709999999", now).await.unwrap(), None);
    let anna = store.lookup("+46701112233", now).await.unwrap().unwrap();
    assert_eq!(anna.name.as_deref(), Some("Anna Svensson"));
    assert_eq!(anna.language.as_deref(), Some("sv"));
    assert_eq!(anna.tier.as_deref(), Some("gold"));
    assert_eq!(anna.recent_calls, 0);
    for r in [
        record(
            "c1",
            "+46701112233",
            "2026-11-01T10:00:00Z",
            "queue",
            Some("agent-7"),
        ),
        record(
            "c2",
            "+46701112233",
            "2026-11-20T10:00:00Z",
            "human",
            Some("agent-3"),
        ),
        record(
            "c3",
            "+46701112233",
            "2026-11-23T18:00:00Z",
            "abandoned",
            None,
        ),
        record(
            "c4",
            "+46705550000",
            "2026-11-23T18:00:00Z",
            "voicemail",
            None,
        ),
    ] {
        store.record_call(&r).await.unwrap();
    }
    // The same record twice (a retry after an outage) is kept once.
    store
        .record_call(&record(
            "c3",
            "+46701112233",
            "2026-11-23T18:00:00Z",
            "abandoned",
            None,
        ))
        .await
        .unwrap();
    assert_eq!(store.count(Table::Calls).await.unwrap(), 4);
    let anna = store.lookup("+46701112233", now).await.unwrap().unwrap();
    assert_eq!(anna.recent_calls, 2, "two calls within 7 days");
    assert_eq!(anna.last_outcome.as_deref(), Some("abandoned"));
    assert_eq!(
        anna.last_agent.as_deref(),
        Some("agent-3"),
        "sticky: the last agent"
    );
    // A caller with history but no customer row is known by their calls.
    let other = store.lookup("+46705550000", now).await.unwrap().unwrap();
    assert_eq!(other.name, None);
    assert_eq!(other.recent_calls, 1);

    // Callbacks and voicemail.
    store
        .write_batch(&[vaxel::engine::StoreRequest::BookCallback {
            call: vaxel::engine::call::CallRef(5),
            call_id: "c5".into(),
            number: "+46701112233".into(),
            queue: "kundtjanst".into(),
            at: now,
            own: true,
        }])
        .await
        .unwrap();
    let pending = store.pending_callbacks().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].0.number.as_str(), pending[0].1.as_str()),
        ("+46701112233", "kundtjanst")
    );
    // A retry keeps it pending with its attempts; completion takes it out.
    let update = |status: &str, attempts| vaxel::engine::StoreRequest::UpdateCallback {
        id: "c5".into(),
        status: status.into(),
        attempts,
        at: now,
    };
    store.write_batch(&[update("pending", 1)]).await.unwrap();
    assert_eq!(store.pending_callbacks().await.unwrap()[0].0.attempts, 1);
    store.write_batch(&[update("completed", 2)]).await.unwrap();
    assert!(store.pending_callbacks().await.unwrap().is_empty());
    let pcm: Vec<i16> = (0..16000)
        .map(|i| ((i % 40) * 500 - 10000) as i16)
        .collect();
    let file = store
        .save_voicemail("c6@host", "+46701112233", "webbshop", now, &pcm)
        .await
        .unwrap();
    assert!(file.starts_with(&data_dir));
    assert_eq!(
        vaxel::media::prompt::decode_file(&file).unwrap().len(),
        16000
    );
    assert_eq!(store.count(Table::Callbacks).await.unwrap(), 1);
    assert_eq!(store.count(Table::Voicemails).await.unwrap(), 1);

    // Retention: at 2026-12-05 (30 days), c1 is older than the period.
    let purged = store.purge(ts("2026-12-05T00:00:00Z")).await.unwrap();
    assert_eq!(purged, 1);
    assert_eq!(store.count(Table::Calls).await.unwrap(), 3);

    // Erasing one customer removes them everywhere, voicemail files included.
    let rows = store.erase("+46701112233").await.unwrap();
    assert_eq!(rows, 1 + 2 + 1 + 1);
    assert!(!file.exists(), "voicemail file removed");
    assert_eq!(store.lookup("+46701112233", now).await.unwrap(), None);
    assert_eq!(store.count(Table::Customers).await.unwrap(), 2);
    store.close().await;
}

/// Lookup latency with 200 lookups in flight at once (the calls of a busy
/// minute arriving together); returns (p50, p99).
async fn lookup_latency(s: StoreSettings) -> (Duration, Duration) {
    let store = std::sync::Arc::new(Store::open(s).await.unwrap());
    let now = jiff::Timestamp::now();
    let mut times = vec![];
    for round in 0..5 {
        let mut tasks = vec![];
        for i in 0..200 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                let n = format!("+4670{:07}", round * 1000 + i);
                store.lookup(&n, now).await.unwrap();
                t.elapsed()
            }));
        }
        for t in tasks {
            times.push(t.await.unwrap());
        }
    }
    times.sort();
    (times[times.len() / 2], times[times.len() * 99 / 100])
}

#[test]
fn sqlite_store() {
    let dir = common::temp_dir("sqlite-store");
    let url = format!("sqlite://{}", dir.join("vaxel.db").display());
    rt().block_on(exercise(settings(&url, "sqlite")));
    let (p50, p99) = rt().block_on(lookup_latency(settings(&url, "sqlite-latency")));
    eprintln!("SQLite lookups, 200 at once: p50 {p50:?}, p99 {p99:?}");
}

#[test]
fn postgres_store() {
    let pg = Pg::start("store");
    rt().block_on(exercise(settings(&pg.url, "pg")));
    let (p50, p99) = rt().block_on(lookup_latency(settings(&pg.url, "pg-latency")));
    eprintln!("PostgreSQL lookups, 200 at once: p50 {p50:?}, p99 {p99:?}");
}

#[test]
fn a_hung_or_stopped_postgres_never_answers_in_time_but_never_hangs_the_caller_either() {
    let pg = Pg::start("down");
    let rt = rt();
    let store = rt.block_on(Store::open(settings(&pg.url, "down"))).unwrap();
    let now = jiff::Timestamp::now();
    rt.block_on(store.lookup("+46701112233", now)).unwrap();
    // Hung (SIGSTOP): the lookup does not come back; the engine's deadline is what saves the call.
    pg.signal_all("-STOP");
    let hung = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_millis(500),
            store.lookup("+46701112233", now),
        )
        .await
    });
    assert!(hung.is_err(), "a stopped server cannot answer");
    pg.signal_all("-CONT");
    // Down: the lookup fails (it does not hang past the pool's timeout).
    pg.stop();
    let t = Instant::now();
    let r = rt.block_on(store.lookup("+46701112233", now));
    assert!(r.is_err(), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());
}
