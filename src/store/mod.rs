//! The customer history store: customers, call records, callbacks and
//! voicemail, in SQLite (the embedded default, created and migrated on first
//! start) or PostgreSQL (by URL). One implementation serves both through
//! sqlx's `Any` driver: the SQL is portable (`$1` parameters, BIGINT times in
//! milliseconds) and one migration set runs on both.
//!
//! A shell: it does I/O. The engine never waits on it: lookups go out as
//! [`crate::engine::StoreRequest`]s and come back as inputs, with a deadline
//! ([`worker`]).

pub mod import;
pub mod report;
pub mod worker;

use crate::engine::CallRecord;
use crate::flow::interp::Customer;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row, SqlSafeStr};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot open the store {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("store migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("store query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Settings the store needs besides its URL.
#[derive(Clone, Debug)]
pub struct StoreSettings {
    pub url: String,
    pub data_dir: PathBuf,
    pub repeat_days: u32,
    pub retention_days: u32,
}

pub struct Store {
    pool: AnyPool,
    settings: StoreSettings,
}

/// Milliseconds since 1970.
pub fn ms(t: jiff::Timestamp) -> i64 {
    t.as_millisecond()
}

fn migrator() -> sqlx::migrate::Migrator {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    Migrator::with_migrations(vec![
        Migration::new(
            1,
            "history".into(),
            MigrationType::Simple,
            include_str!("../../migrations/0001_history.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            "routing".into(),
            MigrationType::Simple,
            include_str!("../../migrations/0002_routing.sql").into_sql_str(),
            false,
        ),
        Migration::new(
            3,
            "figures".into(),
            MigrationType::Simple,
            include_str!("../../migrations/0003_figures.sql").into_sql_str(),
            false,
        ),
    ])
}

impl Store {
    /// Connects (creating an SQLite file if needed) and migrates.
    pub async fn open(settings: StoreSettings) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let mut url = settings.url.clone();
        if url.starts_with("sqlite:") && !url.contains('?') && !url.contains(":memory:") {
            url.push_str("?mode=rwc");
        }
        let sqlite = url.starts_with("sqlite:");
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 4 } else { 8 })
            .acquire_timeout(std::time::Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // WAL lets lookups read while a record is written.
                        sqlx::query("PRAGMA journal_mode=WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout=2000")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(|source| StoreError::Open {
                url: redact_url(&settings.url),
                source,
            })?;
        migrator().run(&pool).await?;
        Ok(Store { pool, settings })
    }

    pub fn settings(&self) -> &StoreSettings {
        &self.settings
    }

    /// What the store knows about a number (E.164): its customer row and the
    /// history derived from its calls. `None` for a number never seen.
    pub async fn lookup(
        &self,
        number: &str,
        now: jiff::Timestamp,
    ) -> Result<Option<Customer>, StoreError> {
        let since = ms(now) - i64::from(self.settings.repeat_days) * 86_400_000;
        // One round trip: the customer row and the history derived from the calls.
        let row: AnyRow = sqlx::query(
            "SELECT
               (SELECT COUNT(*) FROM customers WHERE number = $1) AS customer,
               (SELECT name FROM customers WHERE number = $1) AS name,
               (SELECT language FROM customers WHERE number = $1) AS language,
               (SELECT tier FROM customers WHERE number = $1) AS tier,
               (SELECT COUNT(*) FROM calls WHERE caller = $1 AND started_ms >= $2) AS recent,
               (SELECT outcome FROM calls WHERE caller = $1 ORDER BY started_ms DESC LIMIT 1) AS last_outcome,
               (SELECT agent FROM calls WHERE caller = $1 AND agent IS NOT NULL
                  ORDER BY started_ms DESC LIMIT 1) AS last_agent,
               (SELECT started_ms FROM calls WHERE caller = $1 AND agent IS NOT NULL
                  ORDER BY started_ms DESC LIMIT 1) AS last_agent_ms",
        )
        .bind(number)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        let text = |c: &str| row.try_get::<Option<String>, _>(c).ok().flatten();
        let customer: i64 = row.try_get("customer")?;
        let last_outcome = text("last_outcome");
        // Known: a customer row, or calls on record.
        if customer == 0 && last_outcome.is_none() {
            return Ok(None);
        }
        let recent: i64 = row.try_get("recent")?;
        Ok(Some(Customer {
            number: number.to_string(),
            name: text("name"),
            language: text("language"),
            tier: text("tier"),
            recent_calls: recent.max(0) as u32,
            last_outcome,
            last_agent: text("last_agent"),
            last_agent_ago: row
                .try_get::<Option<i64>, _>("last_agent_ms")
                .ok()
                .flatten()
                .map(|t| std::time::Duration::from_millis(ms(now).saturating_sub(t).max(0) as u64)),
        }))
    }

    pub async fn record_call(&self, r: &CallRecord) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        Self::insert_call(&mut conn, r).await
    }

    /// Writes a batch of the engine's requests in one transaction (one
    /// commit, so one disk sync, for many calls). All or nothing: a batch
    /// that fails is retried whole; every insert ignores rows already there.
    pub async fn write_batch(
        &self,
        batch: &[crate::engine::StoreRequest],
    ) -> Result<(), StoreError> {
        use crate::engine::StoreRequest as R;
        let mut tx = self.pool.begin().await?;
        for req in batch {
            match req {
                R::Lookup { .. } => {}
                R::RecordCall(r) => Self::insert_call(&mut tx, r).await?,
                R::BookCallback {
                    call_id,
                    number,
                    queue,
                    at,
                    own,
                    ..
                } => {
                    Self::insert_callback(
                        &mut tx, call_id, number, queue, *at, *own, "booked", None,
                    )
                    .await?
                }
                R::ListAbandoned {
                    call_id,
                    number,
                    queue,
                    at,
                    waited_ms,
                } => {
                    Self::insert_callback(
                        &mut tx,
                        call_id,
                        number,
                        queue,
                        *at,
                        true,
                        "abandoned",
                        Some(*waited_ms),
                    )
                    .await?
                }
                R::UpdateCallback {
                    id,
                    status,
                    attempts,
                    at,
                } => {
                    sqlx::query(
                        "UPDATE callbacks SET status = $1, attempts = $2, updated_ms = $3 WHERE call_id = $4",
                    )
                    .bind(status)
                    .bind(i64::from(*attempts))
                    .bind(ms(*at))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                R::LoadEvent {
                    queue,
                    policy,
                    on,
                    at,
                    ewt_ms,
                    waiting,
                    available,
                } => {
                    sqlx::query(
                        "INSERT INTO load_events (queue, policy, at_ms, high_load, ewt_ms, waiting, available) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(queue)
                    .bind(policy)
                    .bind(ms(*at))
                    .bind(i64::from(*on))
                    .bind(ewt_ms.map(|v| v as i64))
                    .bind(*waiting as i64)
                    .bind(*available as i64)
                    .execute(&mut *tx)
                    .await?;
                }
                R::SaveVoicemail {
                    call_id,
                    caller,
                    flow,
                    at,
                    pcm,
                } => {
                    let path = self
                        .voicemail_into(&mut tx, call_id, caller, flow, *at, pcm)
                        .await?;
                    tracing::info!(file = %path.display(), secs = pcm.len() / 8000, "voicemail saved");
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn insert_call(conn: &mut sqlx::AnyConnection, r: &CallRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO calls (call_id, started_ms, answered_ms, ended_ms, caller, dialled, flow, flow_version, path, outcome, ended_by, queue, agent, wait_ms, talk_ms, human_key_ms, known, announced_ms, lookup_ms, route, ewt_ms, closed, to_human_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)
             ON CONFLICT (call_id) DO NOTHING",
        )
        .bind(&r.call_id)
        .bind(ms(r.started))
        .bind(r.answered.map(ms))
        .bind(ms(r.ended))
        .bind(&r.caller)
        .bind(&r.dialled)
        .bind(&r.flow)
        .bind(&r.flow_version)
        .bind(r.path.join(" > "))
        .bind(&r.outcome)
        .bind(&r.ended_by)
        .bind(&r.queue)
        .bind(&r.agent)
        .bind(r.wait_ms.map(|v| v as i64))
        .bind(r.talk_ms.map(|v| v as i64))
        .bind(r.human_key_ms.map(|v| v as i64))
        .bind(i64::from(r.known))
        .bind(r.announced_ms.map(|v| v as i64))
        .bind(r.lookup_ms.map(|v| v as i64))
        .bind(&r.route)
        .bind(r.ewt_ms.map(|v| v as i64))
        .bind(i64::from(r.closed))
        .bind(r.to_human_ms.map(|v| v as i64))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_callback(
        conn: &mut sqlx::AnyConnection,
        call_id: &str,
        number: &str,
        queue: &str,
        at: jiff::Timestamp,
        own: bool,
        source: &str,
        waited_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        // Booked callbacks are dialled; callers who gave up are listed.
        let status = if source == "booked" {
            "pending"
        } else {
            "listed"
        };
        sqlx::query(
            "INSERT INTO callbacks (call_id, number, queue, requested_ms, status, own, source, wait_ms, attempts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0)
             ON CONFLICT (call_id) DO NOTHING",
        )
        .bind(call_id)
        .bind(number)
        .bind(queue)
        .bind(ms(at))
        .bind(status)
        .bind(i64::from(own))
        .bind(source)
        .bind(waited_ms.map(|v| v as i64))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Callbacks booked and not yet completed or given up, oldest first
    /// (the ACD puts them back in line at start).
    pub async fn pending_callbacks(
        &self,
    ) -> Result<Vec<(crate::acd::Callback, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT call_id, number, queue, attempts, own FROM callbacks WHERE status = 'pending' ORDER BY requested_ms, call_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let attempts: i64 = r.try_get("attempts")?;
            let own: i64 = r.try_get("own")?;
            out.push((
                crate::acd::Callback {
                    id: r.try_get("call_id")?,
                    number: r.try_get("number")?,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                    own: own != 0,
                },
                r.try_get("queue")?,
            ));
        }
        Ok(out)
    }

    /// Writes the recording as a WAV file under `data/voicemail/` and records it.
    pub async fn save_voicemail(
        &self,
        call_id: &str,
        caller: &str,
        flow: &str,
        at: jiff::Timestamp,
        pcm: &[i16],
    ) -> Result<PathBuf, StoreError> {
        let mut conn = self.pool.acquire().await?;
        self.voicemail_into(&mut conn, call_id, caller, flow, at, pcm)
            .await
    }

    async fn voicemail_into(
        &self,
        conn: &mut sqlx::AnyConnection,
        call_id: &str,
        caller: &str,
        flow: &str,
        at: jiff::Timestamp,
        pcm: &[i16],
    ) -> Result<PathBuf, StoreError> {
        let day = at.strftime("%Y-%m-%d").to_string();
        let safe: String = call_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(80)
            .collect();
        let rel = PathBuf::from("voicemail")
            .join(day)
            .join(format!("{safe}.wav"));
        let path = self.settings.data_dir.join(&rel);
        let file_err = |source| StoreError::File {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(file_err)?;
        }
        tokio::fs::write(&path, wav(pcm)).await.map_err(file_err)?;
        sqlx::query(
            "INSERT INTO voicemails (call_id, caller, flow, recorded_ms, file, duration_ms) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (call_id) DO NOTHING",
        )
        .bind(call_id)
        .bind(caller)
        .bind(flow)
        .bind(ms(at))
        .bind(rel.to_string_lossy().into_owned())
        .bind((pcm.len() / 8) as i64)
        .execute(&mut *conn)
        .await?;
        Ok(path)
    }

    /// Inserts or updates a customer.
    pub async fn upsert_customer(
        &self,
        c: &import::CustomerRow,
        now: jiff::Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO customers (number, name, language, tier, value, notes, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (number) DO UPDATE SET name = excluded.name, language = excluded.language, tier = excluded.tier,
               value = excluded.value, notes = excluded.notes, updated_ms = excluded.updated_ms",
        )
        .bind(&c.number)
        .bind(&c.name)
        .bind(&c.language)
        .bind(&c.tier)
        .bind(c.value)
        .bind(&c.notes)
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes everything about one number; returns the rows removed.
    pub async fn erase(&self, number: &str) -> Result<u64, StoreError> {
        self.remove_where(
            "SELECT file FROM voicemails WHERE caller = $1",
            &[
                "DELETE FROM customers WHERE number = $1",
                "DELETE FROM calls WHERE caller = $1",
                "DELETE FROM callbacks WHERE number = $1",
                "DELETE FROM voicemails WHERE caller = $1",
            ],
            number.to_string(),
        )
        .await
    }

    /// Removes history older than the retention period; returns the rows removed.
    pub async fn purge(&self, now: jiff::Timestamp) -> Result<u64, StoreError> {
        let cutoff = ms(now) - i64::from(self.settings.retention_days) * 86_400_000;
        self.remove_where(
            "SELECT file FROM voicemails WHERE recorded_ms < $1",
            &[
                "DELETE FROM calls WHERE started_ms < $1",
                "DELETE FROM callbacks WHERE requested_ms < $1",
                "DELETE FROM voicemails WHERE recorded_ms < $1",
            ],
            cutoff,
        )
        .await
    }

    /// Deletes the voicemail files `files_sql` selects, then runs each delete,
    /// all with the one parameter `key`.
    async fn remove_where<T>(
        &self,
        files_sql: &'static str,
        deletes: &[&'static str],
        key: T,
    ) -> Result<u64, StoreError>
    where
        T: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Clone + Send + 'static,
    {
        let files: Vec<String> = sqlx::query(files_sql)
            .bind(key.clone())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .filter_map(|r| r.try_get("file").ok())
            .collect();
        self.remove_files(&files).await;
        let mut n = 0;
        for sql in deletes {
            n += sqlx::query(*sql)
                .bind(key.clone())
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(n)
    }

    async fn remove_files(&self, files: &[String]) {
        for f in files {
            let p = self.settings.data_dir.join(f);
            if let Err(e) = tokio::fs::remove_file(&p).await {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(file = %p.display(), error = %e, "cannot remove voicemail file");
                }
            }
        }
    }

    /// Counts rows in a table (for tests and the CLI's reports).
    pub async fn count(&self, table: Table) -> Result<i64, StoreError> {
        let sql = match table {
            Table::Customers => "SELECT COUNT(*) AS n FROM customers",
            Table::Calls => "SELECT COUNT(*) AS n FROM calls",
            Table::Callbacks => "SELECT COUNT(*) AS n FROM callbacks",
            Table::Voicemails => "SELECT COUNT(*) AS n FROM voicemails",
            Table::LoadEvents => "SELECT COUNT(*) AS n FROM load_events",
        };
        Ok(sqlx::query(sql).fetch_one(&self.pool).await?.try_get("n")?)
    }

    /// The most recent call records, newest first: (caller, flow, version, path, outcome).
    pub async fn recent_calls(
        &self,
        limit: i64,
    ) -> Result<Vec<(String, String, String, String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT caller, flow, flow_version, path, outcome FROM calls ORDER BY ended_ms DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("caller")?,
                    r.try_get("flow")?,
                    r.try_get("flow_version")?,
                    r.try_get("path")?,
                    r.try_get("outcome")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Table {
    Customers,
    Calls,
    Callbacks,
    Voicemails,
    /// High-load policies switching on and off.
    LoadEvents,
}

/// A password in a URL is not for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// 16-bit mono 8 kHz PCM as a WAV file (RIFF header written here: 44 bytes).
pub fn wav(pcm: &[i16]) -> Vec<u8> {
    let data_len = (pcm.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes()); // byte rate
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in pcm {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// The data folder's voicemail path for a relative file name.
pub fn data_path(data_dir: &Path, rel: &str) -> PathBuf {
    data_dir.join(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_reads_back_with_symphonia() {
        let pcm: Vec<i16> = (0..8000).map(|i| ((i % 80) as i16 - 40) * 300).collect();
        let dir = std::env::temp_dir().join(format!("vaxel-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t.wav");
        std::fs::write(&p, wav(&pcm)).unwrap();
        let back = crate::media::prompt::decode_file(&p).unwrap();
        assert_eq!(back.len(), pcm.len());
        // The decoder goes through f32: within one step.
        assert!(back.iter().zip(&pcm).all(|(a, b)| (a - b).abs() <= 1));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(
            redact_url("postgres://vaxel:secret@127.0.0.1/vaxel"),
            "postgres://vaxel:***@127.0.0.1/vaxel"
        );
        assert_eq!(redact_url("sqlite://vaxel.db"), "sqlite://vaxel.db");
    }
}
