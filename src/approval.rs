//! The request lifecycle around a held statement: pending → approved |
//! rejected | cancelled | expired, and approved → executed, either by the
//! held session itself or by a re-run of the identical statement within the
//! grant lifetime. Also the audit writer, which takes events off the data
//! path and appends them to the store in batches, one commit each; a
//! session that must not go on before its event is durable waits for the
//! commit of the batch (`audit_durable`).

pub mod estimate;
pub mod hold;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::{error, warn};

use crate::store::{now_ms, AuditEvent, Store};

/// Settings of the approval workflow.
#[derive(Debug, Clone)]
pub struct ApprovalSettings {
    /// How long an approval may be used by a re-run of the statement.
    pub grant_lifetime: Duration,
    /// Pending requests older than this expire.
    pub request_ttl: Duration,
    /// Where reviewers look at a request, without the id:
    /// `http://host:port/api/v1/requests/`.
    pub review_url: String,
    /// A conninfo for row estimates (see [`estimate`]); none, none.
    pub estimates: Option<String>,
}

impl Default for ApprovalSettings {
    fn default() -> Self {
        ApprovalSettings {
            grant_lifetime: Duration::from_secs(3600),
            request_ttl: Duration::from_secs(24 * 3600),
            review_url: "/api/v1/requests/".into(),
            estimates: None,
        }
    }
}

/// The approval service a proxy's sessions and admin API share.
pub struct Approvals {
    pub store: Store,
    pub settings: ApprovalSettings,
    audit_tx: mpsc::Sender<Queued>,
}

/// An audit event on its way to the store, and who waits for it to be
/// durable.
type Queued = (AuditEvent, Option<oneshot::Sender<bool>>);

/// Resolves to whether an event is in the store for good (committed).
pub type Durable = oneshot::Receiver<bool>;

/// Audit events waiting to be written before new ones are refused (and
/// logged) rather than queued without bound.
const AUDIT_QUEUE: usize = 65_536;
/// Audit events written in one transaction at most.
const AUDIT_BATCH: usize = 512;

impl Approvals {
    /// Starts the audit writer and the expiry sweeper over `store`.
    pub fn start(store: Store, settings: ApprovalSettings) -> Arc<Approvals> {
        let (audit_tx, mut audit_rx) = mpsc::channel::<Queued>(AUDIT_QUEUE);
        let writer = store.clone();
        tokio::spawn(async move {
            // Whatever queued while the last batch was written goes in the
            // next one: one commit for many events under load, at once
            // when idle.
            let mut queued = Vec::with_capacity(AUDIT_BATCH);
            let mut batch = Vec::with_capacity(AUDIT_BATCH);
            while audit_rx.recv_many(&mut queued, AUDIT_BATCH).await > 0 {
                let mut waiting = Vec::new();
                for (e, w) in queued.drain(..) {
                    batch.push(e);
                    waiting.extend(w);
                }
                let ok = match writer.audit_batch(&batch).await {
                    Ok(()) => true,
                    Err(err) => {
                        error!(error = %err, events = batch.len(), "audit write failed");
                        false
                    }
                };
                for w in waiting {
                    let _ = w.send(ok);
                }
                batch.clear();
            }
        });
        let approvals = Arc::new(Approvals {
            store,
            settings,
            audit_tx,
        });
        let sweeper = Arc::downgrade(&approvals);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let Some(a) = sweeper.upgrade() else { return };
                let before = now_ms() - a.settings.request_ttl.as_millis() as i64;
                match a.store.expire(before).await {
                    Ok(ids) => {
                        for id in ids {
                            a.audit(AuditEvent {
                                event: "expire".into(),
                                request_id: Some(id),
                                outcome: "expired".into(),
                                ..Default::default()
                            });
                        }
                    }
                    Err(e) => warn!(error = %e, "expiring requests failed"),
                }
            }
        });
        approvals
    }

    /// Queues an audit event; never waits.
    pub fn audit(&self, e: AuditEvent) {
        self.queue(e, None);
    }

    /// Queues an audit event and says when it is committed: a decision
    /// about a write is durable before the write runs.
    pub fn audit_durable(&self, e: AuditEvent) -> Durable {
        let (tx, rx) = oneshot::channel();
        self.queue(e, Some(tx));
        rx
    }

    fn queue(&self, mut e: AuditEvent, durable: Option<oneshot::Sender<bool>>) {
        if e.at == 0 {
            e.at = now_ms();
        }
        if let Err(mpsc::error::TrySendError::Full((e, durable))) =
            self.audit_tx.try_send((e, durable))
        {
            error!(event = %e.event, "audit queue full; event written on its own");
            let store = self.store.clone();
            tokio::spawn(async move {
                let ok = match store.audit(&e).await {
                    Ok(()) => true,
                    Err(err) => {
                        error!(error = %err, "audit write failed");
                        false
                    }
                };
                if let Some(w) = durable {
                    let _ = w.send(ok);
                }
            });
        }
    }
}
