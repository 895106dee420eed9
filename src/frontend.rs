//! The client side of the proxy: the listener, each connection's startup and
//! authentication relay, and the session state machine that every client
//! message passes through.
//!
//! One tokio task runs each client connection from accept to close. Sessions
//! share nothing on the data path; what they share ([`Proxy`]) is touched at
//! session start and end only.

pub mod buffer;
pub mod cancel;
pub mod error;
pub mod gate;
pub mod relay;
pub mod session;
pub mod sessions;
pub mod startup;
mod workers;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn, Instrument};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::policy::Policy;
use cancel::CancelRegistry;

/// What every session shares: settings, the cancel key registry, counters and
/// the shutdown signal.
pub struct Proxy {
    pub config: Config,
    pub cancels: Arc<CancelRegistry>,
    pub metrics: Arc<Metrics>,
    /// The live policy; sessions subscribe, reloads publish.
    pub policy: watch::Sender<Arc<Policy>>,
    /// The approval service; without it, statements that need approval are
    /// refused.
    pub approvals: std::sync::OnceLock<Arc<crate::approval::Approvals>>,
    /// The sessions open now.
    pub sessions: Arc<sessions::Sessions>,
    /// Every database's catalog of user code.
    pub catalogs: crate::catalog::Registry,
    shutdown_tx: watch::Sender<bool>,
}

impl Proxy {
    /// A proxy with the policy `config` names (the shipped one without a
    /// directory). A directory that does not load is logged and replaced by
    /// an empty policy, which denies everything: fail closed. Callers that
    /// want to refuse to start instead load it first and use
    /// [`Proxy::with_policy`].
    pub fn new(config: Config) -> Arc<Proxy> {
        let policy = match &config.policies {
            None => crate::policy::shipped(),
            Some(dir) => Policy::load(dir).unwrap_or_else(|errors| {
                for e in errors {
                    tracing::error!(error = %e, "policy does not load; denying every statement");
                }
                Policy::default()
            }),
        };
        Self::with_policy(config, policy)
    }

    /// A proxy with an already loaded policy.
    pub fn with_policy(config: Config, policy: Policy) -> Arc<Proxy> {
        let (shutdown_tx, _) = watch::channel(false);
        let (policy, _) = watch::channel(Arc::new(policy));
        let metrics: Arc<Metrics> = Arc::default();
        let catalogs = crate::catalog::Registry::new(&config, Arc::clone(&metrics));
        Arc::new(Proxy {
            config,
            cancels: Arc::default(),
            metrics,
            policy,
            approvals: std::sync::OnceLock::new(),
            sessions: Arc::default(),
            catalogs,
            shutdown_tx,
        })
    }

    /// Accepts clients on `listener` until `shutdown` completes, then asks
    /// every session to finish (idle ones close at once, busy ones at their
    /// next ReadyForQuery) and waits up to `shutdown_timeout` before closing
    /// the rest.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let mut sessions = JoinSet::new();
        let workers = workers::Workers::start(self.config.workers)?;
        if !self.config.classification {
            warn!("classification is off: every statement is forwarded unchecked");
        }
        let watcher =
            self.config.policies.clone().map(|dir| {
                tokio::spawn(crate::policy::reload::watch_dir(dir, self.policy.clone()))
            });
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((socket, peer)) => {
                        let proxy = Arc::clone(&self);
                        let span = tracing::info_span!("session", client = %peer);
                        match workers.next() {
                            None => {
                                sessions.spawn(proxy.handle(socket, peer).instrument(span));
                            }
                            Some(worker) => {
                                // Re-register the socket with the worker's own
                                // reactor, so its events never cross threads.
                                let socket = socket.into_std()?;
                                let task = async move {
                                    match TcpStream::from_std(socket) {
                                        Ok(s) => proxy.handle(s, peer).await,
                                        Err(e) => warn!(error = %e, "socket hand-off failed"),
                                    }
                                };
                                sessions.spawn_on(task.instrument(span), worker);
                            }
                        }
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off
                        // briefly rather than spin.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
                Some(_) = sessions.join_next() => {}
                _ = &mut shutdown => break,
            }
        }
        drop(listener);
        info!(
            sessions = sessions.len(),
            "shutting down: no new connections"
        );
        let _ = self.shutdown_tx.send(true);
        let drain = async { while sessions.join_next().await.is_some() {} };
        if tokio::time::timeout(self.config.shutdown_timeout, drain)
            .await
            .is_err()
        {
            warn!(
                sessions = sessions.len(),
                "shutdown timeout: closing remaining sessions"
            );
            sessions.abort_all();
            while sessions.join_next().await.is_some() {}
        }
        workers.stop();
        if let Some(w) = watcher {
            w.abort();
        }
        Ok(())
    }

    async fn handle(self: Arc<Self>, socket: TcpStream, peer: SocketAddr) {
        let _active = self.metrics.session_started();
        if let Err(e) = socket.set_nodelay(true) {
            debug!(error = %e, "set_nodelay failed");
        }
        let established = tokio::time::timeout(
            self.config.startup_timeout,
            startup::establish(socket, peer, &self),
        )
        .await;
        let established = match established {
            Ok(Ok(Some(e))) => e,
            Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                log_end(&e);
                return;
            }
            Err(_) => {
                debug!("startup timed out");
                return;
            }
        };
        debug!(user = %established.identity.user, database = %established.identity.database, "session started");
        let _listed = self.sessions.add(sessions::SessionInfo {
            id: 0,
            user: established.identity.user.clone(),
            database: established.identity.database.clone(),
            application_name: established.identity.application_name.clone(),
            client_addr: established.identity.client_addr.to_string(),
            backend_pid: established.process_id,
            started_at: crate::store::now_ms(),
        });
        let session = session::Session::new(established, &self);
        match session.run(self.shutdown_tx.subscribe()).await {
            Ok(()) => debug!("session ended"),
            Err(e) => log_end(&e),
        }
    }
}

fn log_end(e: &error::SessionError) {
    if e.is_disconnect() {
        debug!(error = %e, "client disconnected");
    } else {
        info!(error = %e, "session ended");
    }
}

/// Runs a proxy with `config` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    Proxy::new(config).serve(listener, shutdown).await
}
