//! airlock's own state — approval requests, reviews, comments and the audit
//! trail — in SQLite (default) or PostgreSQL, through sqlx. This is the only
//! module that writes SQL for airlock's own tables.
//!
//! Every change to a request is published on an in-process channel; with a
//! PostgreSQL store it is also announced with NOTIFY, and a listener
//! re-publishes what other proxies changed, so a statement held by one proxy
//! runs the moment a reviewer approves it through another.

mod model;
mod requests;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::AnyPool;
use tokio::sync::broadcast;
use tracing::warn;

pub use model::{AuditEvent, Comment, NewRequest, Request, Review, Status};

/// The NOTIFY channel proxies sharing a PostgreSQL store talk on.
const CHANNEL: &str = "airlock_requests";

/// Published when changes may have been missed: every watcher looks again.
pub const RECHECK: &str = "*";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no request {0}")]
    NotFound(String),
    #[error("request {id} is {status}, not pending")]
    NotPending { id: String, status: Status },
    #[error("{reviewer} has already reviewed request {id}")]
    AlreadyReviewed { id: String, reviewer: String },
    #[error("store: {0}")]
    Db(#[from] sqlx::Error),
    #[error("store migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("store url {0:?}: use sqlite://PATH or postgres://...")]
    Url(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    changes: broadcast::Sender<String>,
}

impl Store {
    /// Opens (creating and migrating on first use) the store at `url`:
    /// `sqlite://PATH` or `postgres://...`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Url(url.to_string()));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            // SQLite allows one writer at a time; a small pool avoids
            // "database is locked" under concurrent reviews.
            .max_connections(if backend == Backend::Sqlite { 1 } else { 8 })
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        match backend {
            Backend::Sqlite => {
                sqlx::query("PRAGMA journal_mode = WAL")
                    .execute(&pool)
                    .await?;
                sqlx::query("PRAGMA synchronous = FULL")
                    .execute(&pool)
                    .await?;
                sqlx::migrate!("migrations/sqlite").run(&pool).await?;
            }
            Backend::Postgres => sqlx::migrate!("migrations/postgres").run(&pool).await?,
        }
        let (changes, _) = broadcast::channel(1024);
        let store = Store {
            pool,
            backend,
            changes,
        };
        if backend == Backend::Postgres {
            store.listen_to_peers(&url).await?;
        }
        Ok(store)
    }

    /// Request ids as they change (created, reviewed, decided, executed),
    /// from this proxy and, with a PostgreSQL store, from its peers.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    /// Publishes a change of request `id`. With PostgreSQL the NOTIFY comes
    /// back to this proxy's own listener too, which publishes it once;
    /// only if NOTIFY fails is it published directly.
    async fn changed(&self, id: &str) {
        if self.backend == Backend::Postgres {
            match sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(id)
                .execute(&self.pool)
                .await
            {
                Ok(_) => return,
                Err(e) => warn!(error = %e, "NOTIFY to peers failed"),
            }
        }
        let _ = self.changes.send(id.to_string());
    }

    /// Re-publishes what other proxies announce.
    async fn listen_to_peers(&self, url: &str) -> Result<(), StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect(url).await?;
        listener.listen(CHANNEL).await?;
        let tx = self.changes.clone();
        tokio::spawn(async move {
            // After the connection was lost, what was announced meanwhile is
            // gone: once the listener is back, every watcher looks again.
            let mut lost = false;
            loop {
                let next = if lost {
                    // try_recv reconnects first; give it a moment, then
                    // re-check whether or not a notification came.
                    match tokio::time::timeout(Duration::from_millis(500), listener.try_recv())
                        .await
                    {
                        Ok(r) => r,
                        Err(_) => Ok(None),
                    }
                } else {
                    listener.try_recv().await
                };
                match next {
                    Ok(Some(n)) => {
                        if std::mem::take(&mut lost) {
                            let _ = tx.send(RECHECK.to_string());
                        }
                        let _ = tx.send(n.payload().to_string());
                    }
                    Ok(None) if lost => {
                        lost = false;
                        warn!("store listener back; re-checking held statements");
                        let _ = tx.send(RECHECK.to_string());
                    }
                    Ok(None) => lost = true,
                    Err(e) => {
                        warn!(error = %e, "store listener failed; retrying");
                        lost = true;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(())
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
