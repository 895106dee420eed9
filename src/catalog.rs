//! What each upstream database's catalog says about user-defined code, kept
//! current, so that the classifier can see what the text of a statement
//! does not show: a view's definition, a domain's CHECK, a function called
//! in attribute notation, a user's overload of a built-in's name (see
//! [`resolve`]).
//!
//! One loader task per database reads the catalog over a connection of its
//! own (the `catalog` conninfo, or the upstream as the first session's
//! user) into a [`Snapshot`], and publishes it to the database's sessions.
//! It stays current three ways:
//!
//! - A session that runs something that may change the catalog (DDL, code
//!   the classifier cannot see into, writes to tables whose triggers,
//!   defaults or checks may be user code: [`writes`]) asks
//!   for a new snapshot once its transaction has ended, and every session of
//!   the database waits for it before it classifies anything more. Until
//!   that transaction ends, the session itself proves no read that names
//!   anything: no other connection can see what it changed.
//! - Every `catalog_poll` the loader compares a fingerprint of the catalog
//!   rows that describe user code; a change made past airlock (a direct
//!   connection, a migration, another proxy) is loaded then.
//! - A database without sessions for a while is let go; its next session
//!   waits for a fresh load.
//!
//! A catalog that cannot be read is not a reason to guess: until a load
//! succeeds, no statement that names a relation, function, operator, type
//! or column is a read (docs/catalog.md).

pub mod baseline;
mod bodies;
pub mod load;
pub mod resolve;
pub mod snapshot;
mod writes;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use tokio_postgres::{Client, NoTls};
use tracing::{info, warn};

use crate::config::Config;
use crate::metrics::Metrics;
pub use resolve::{may_change_catalog, resolve, Known};
pub use snapshot::Snapshot;

/// How long a database's loader keeps polling without a session before it
/// lets go.
const IDLE: Duration = Duration::from_secs(60);
/// The longest a load may take.
const LOAD_TIMEOUT: Duration = Duration::from_secs(35);

/// Every database's catalog, for the whole proxy.
pub struct Registry {
    metrics: Arc<Metrics>,
    conninfo: Option<String>,
    upstream: String,
    poll: Duration,
    connect_timeout: Duration,
    databases: Mutex<HashMap<String, Arc<Database>>>,
}

/// One database's loader state.
struct Database {
    name: String,
    /// The generation sessions need: raised when something may have
    /// changed the catalog.
    wanted: AtomicU64,
    state: watch::Sender<Loaded>,
    wake: Notify,
    sessions: AtomicUsize,
    /// Sessions with something that may change the catalog in flight: what
    /// others classify now may run after it commits.
    changing: AtomicUsize,
    /// The loader let go of the database; the next session asks for a
    /// load.
    dormant: AtomicBool,
    connect: Result<tokio_postgres::Config, String>,
}

#[derive(Debug, Clone)]
struct Loaded {
    /// The `wanted` generation the load started at.
    generation: u64,
    known: Option<Known>,
    /// Seconds since the epoch of the load.
    at: u64,
}

/// One database's catalog as the admin API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub database: String,
    /// `current`, `loading` (sessions wait for it) or `unavailable`
    /// (reads that name anything need review).
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The fingerprint of the catalog rows the snapshot was read from
    /// (`catalog::load::FINGERPRINT`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    pub loaded_at: u64,
    pub sessions: usize,
    /// The relations, types, functions and operators that reach user code.
    pub user_code: Vec<String>,
}

/// A session's view of its database's catalog.
pub struct Watch {
    db: Arc<Database>,
    rx: watch::Receiver<Loaded>,
    current: Loaded,
    /// This session counts in `Database::changing`.
    changing: bool,
}

impl Registry {
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Registry {
        if let Err(e) = baseline::Baseline::install(&config.catalog_baseline) {
            warn!(error = %e, "catalog baseline not read; only the shipped one is used");
        }
        Registry {
            metrics,
            conninfo: config.catalog.clone(),
            upstream: config.upstream.clone(),
            poll: config.catalog_poll,
            connect_timeout: config.connect_timeout,
            databases: Mutex::default(),
        }
    }

    /// The catalog of `database` for a new session of `user`; starts its
    /// loader on the current runtime if there is none.
    pub fn watch(&self, database: &str, user: &str) -> Watch {
        let db = {
            let mut map = self.databases.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(map.entry(database.to_string()).or_insert_with(|| {
                let (state, _) = watch::channel(Loaded {
                    generation: 0,
                    known: None,
                    at: 0,
                });
                let db = Arc::new(Database {
                    name: database.to_string(),
                    wanted: AtomicU64::new(1),
                    state,
                    wake: Notify::new(),
                    sessions: AtomicUsize::new(0),
                    changing: AtomicUsize::new(0),
                    dormant: AtomicBool::new(false),
                    connect: self.connect_config(database, user),
                });
                tokio::spawn(run(
                    Arc::clone(&db),
                    self.poll,
                    self.connect_timeout,
                    Arc::clone(&self.metrics),
                ));
                db
            }))
        };
        db.sessions.fetch_add(1, SeqCst);
        if db.dormant.swap(false, SeqCst) {
            db.invalidate();
        }
        let rx = db.state.subscribe();
        let current = rx.borrow().clone();
        Watch {
            db,
            rx,
            current,
            changing: false,
        }
    }

    /// Every database's catalog, by name.
    pub fn status(&self) -> Vec<Status> {
        let map = self.databases.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<Status> = map.values().map(|d| d.status()).collect();
        all.sort_by(|a, b| a.database.cmp(&b.database));
        all
    }

    fn connect_config(&self, database: &str, user: &str) -> Result<tokio_postgres::Config, String> {
        let mut c = match &self.conninfo {
            Some(ci) => ci
                .parse::<tokio_postgres::Config>()
                .map_err(|e| format!("catalog conninfo: {e}"))?,
            None => tokio_postgres::Config::new(),
        };
        if c.get_hosts().is_empty() {
            let (host, port) = self
                .upstream
                .rsplit_once(':')
                .ok_or_else(|| format!("upstream {} is not HOST:PORT", self.upstream))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.starts_with('/') {
                c.host_path(host);
            } else {
                c.host(host);
            }
            c.port(
                port.parse()
                    .map_err(|_| format!("bad port in {}", self.upstream))?,
            );
        }
        if c.get_user().is_none() {
            c.user(user);
        }
        c.dbname(database);
        c.application_name("airlock catalog");
        c.connect_timeout(self.connect_timeout);
        Ok(c)
    }
}

impl Database {
    fn invalidate(&self) {
        self.wanted.fetch_add(1, SeqCst);
        self.wake.notify_one();
    }

    fn publish(&self, generation: u64, known: Known) {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.state.send_replace(Loaded {
            generation,
            known: Some(known),
            at,
        });
    }

    fn status(&self) -> Status {
        let loaded = self.state.borrow().clone();
        let current = loaded.generation >= self.wanted.load(SeqCst);
        let (state, error, fingerprint, user_code) = match &loaded.known {
            Some(Known::Snapshot(s)) => (
                if current { "current" } else { "loading" },
                None,
                Some(s.fingerprint.clone()),
                s.names(),
            ),
            Some(Known::Unavailable(e)) if current => {
                ("unavailable", Some(e.to_string()), None, Vec::new())
            }
            _ => ("loading", None, None, Vec::new()),
        };
        Status {
            database: self.name.clone(),
            state,
            error,
            fingerprint,
            loaded_at: loaded.at,
            sessions: self.sessions.load(SeqCst),
            user_code,
        }
    }

    async fn connect(&self, connect_timeout: Duration) -> Result<Client, String> {
        let config = self.connect.as_ref().map_err(Clone::clone)?;
        let (client, connection) = tokio::time::timeout(
            connect_timeout + Duration::from_secs(1),
            config.connect(NoTls),
        )
        .await
        .map_err(|_| "connecting timed out".to_string())?
        .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// The published snapshot, if the catalog still reads as it did for
    /// it, temporary objects included. A failed check drops the client.
    async fn unchanged(&self, client: &mut Option<Client>) -> Option<Arc<Snapshot>> {
        let current = match &self.state.borrow().known {
            Some(Known::Snapshot(s)) => Arc::clone(s),
            _ => return None,
        };
        let c = client.as_ref()?;
        match tokio::time::timeout(LOAD_TIMEOUT, load::fingerprint(c)).await {
            Ok(Ok((shared, temporary))) => (shared == current.fingerprint
                && temporary == current.temporary_fingerprint)
                .then_some(current),
            _ => {
                *client = None;
                None
            }
        }
    }

    /// Reads and judges the catalog; `baseline` is the last load's
    /// baseline rows, reused while what they are read from is unchanged.
    async fn load(
        &self,
        client: &Client,
        baseline: &mut Option<load::BaselineRows>,
    ) -> Result<Snapshot, String> {
        let started = Instant::now();
        let raw = tokio::time::timeout(LOAD_TIMEOUT, load::load(client, baseline.as_ref()))
            .await
            .map_err(|_| "reading the catalog timed out".to_string())??;
        *baseline = Some(load::BaselineRows {
            key: raw.baseline_key.clone(),
            rows: raw.baseline.clone(),
        });
        let (functions, views) = (raw.functions.len(), raw.views.len());
        let snapshot = tokio::task::spawn_blocking(move || Snapshot::build(raw))
            .await
            .map_err(|e| format!("judging the catalog failed: {e}"))?;
        info!(
            database = %self.name,
            functions,
            views,
            ms = started.elapsed().as_millis() as u64,
            "catalog loaded"
        );
        Ok(snapshot)
    }
}

/// The loader of one database.
async fn run(db: Arc<Database>, poll: Duration, connect_timeout: Duration, metrics: Arc<Metrics>) {
    let mut client: Option<Client> = None;
    let mut fingerprint: Option<String> = None;
    let mut baseline: Option<load::BaselineRows> = None;
    let mut reload = true;
    // Polls without a session after which the loader lets go.
    let idle_limit = (IDLE.as_secs_f64() / poll.as_secs_f64().max(0.001)).ceil() as u32;
    let mut idle_polls = 0;
    loop {
        let target = db.wanted.load(SeqCst);
        if reload || db.state.borrow().generation < target {
            // A session asked for a new snapshot (a write whose trigger
            // ran, a DDL): when the fingerprint, temporary objects
            // included, is the snapshot's, nothing it holds has changed.
            if !reload {
                if let Some(same) = db.unchanged(&mut client).await {
                    Metrics::inc(&metrics.catalog_unchanged);
                    db.publish(target, Known::Snapshot(same));
                    continue;
                }
            }
            let result = match &client {
                Some(c) => db.load(c, &mut baseline).await,
                None => match db.connect(connect_timeout).await {
                    Ok(c) => {
                        let r = db.load(&c, &mut baseline).await;
                        client = Some(c);
                        r
                    }
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(snapshot) => {
                    Metrics::inc(&metrics.catalog_loads);
                    fingerprint = Some(snapshot.fingerprint.clone());
                    db.publish(target, Known::Snapshot(Arc::new(snapshot)));
                    reload = false;
                }
                Err(e) => {
                    Metrics::inc(&metrics.catalog_load_errors);
                    warn!(database = %db.name, error = %e,
                          "cannot read the catalog; reads that name anything need review until it can be read");
                    client = None;
                    db.publish(target, Known::Unavailable(e.into()));
                    reload = true;
                }
            }
            if db.wanted.load(SeqCst) > target {
                continue;
            }
        }
        tokio::select! {
            _ = db.wake.notified() => continue,
            _ = tokio::time::sleep(poll) => {}
        }
        if db.sessions.load(SeqCst) == 0 {
            idle_polls += 1;
            if idle_polls >= idle_limit {
                idle_polls = 0;
                client = None;
                db.dormant.store(true, SeqCst);
                if db.sessions.load(SeqCst) == 0 {
                    db.wake.notified().await;
                } else if db.dormant.swap(false, SeqCst) {
                    reload = true;
                }
                continue;
            }
        } else {
            idle_polls = 0;
        }
        if reload {
            continue;
        }
        let changed = match &client {
            Some(c) => match tokio::time::timeout(LOAD_TIMEOUT, load::fingerprint(c)).await {
                Ok(Ok((fp, _))) => fingerprint.as_ref() != Some(&fp),
                _ => {
                    client = None;
                    true
                }
            },
            None => true,
        };
        reload |= changed;
    }
}

/// Reads the catalog `conninfo` names once (for `airlock policy check`).
pub async fn load_snapshot(conninfo: &str) -> Result<Snapshot, String> {
    let (client, connection) = tokio_postgres::connect(conninfo, NoTls)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let raw = load::load(&client, None).await?;
    Ok(Snapshot::build(raw))
}

impl Watch {
    /// What the session may classify with now; `None` while a newer
    /// snapshot is wanted (wait with [`Watch::changed`]).
    #[inline]
    pub fn current(&mut self) -> Option<&Known> {
        if self.rx.has_changed().unwrap_or(false) {
            self.current = self.rx.borrow_and_update().clone();
        }
        if self.current.generation >= self.db.wanted.load(SeqCst) {
            self.current.known.as_ref()
        } else {
            None
        }
    }

    /// Resolves when a new snapshot is published.
    pub async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        self.current = self.rx.borrow_and_update().clone();
    }

    /// Asks for a new snapshot: something may have changed the catalog.
    pub fn invalidate(&self) {
        self.db.invalidate();
    }

    /// This session has something in flight that may change the catalog
    /// once it commits.
    pub fn begin_change(&mut self) {
        if !self.changing {
            self.changing = true;
            self.db.changing.fetch_add(1, SeqCst);
        }
    }

    /// Nothing of this session's is in flight any more.
    pub fn end_change(&mut self) {
        if self.changing {
            self.changing = false;
            self.db.changing.fetch_sub(1, SeqCst);
        }
    }

    /// Another session has something in flight that may change the
    /// catalog.
    #[inline]
    pub fn others_changing(&self) -> bool {
        self.db.changing.load(SeqCst) > usize::from(self.changing)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.end_change();
        self.db.sessions.fetch_sub(1, SeqCst);
    }
}

#[cfg(test)]
mod tests;
