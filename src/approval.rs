//! The request lifecycle around a held statement: pending → approved |
//! rejected | cancelled | expired, and approved → executed, either by the
//! held session itself or by a re-run of the identical statement within the
//! grant lifetime. Also the audit writer, which takes events off the data
//! path and appends them to the store in the background.

pub mod estimate;
pub mod hold;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
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
    audit_tx: mpsc::Sender<AuditEvent>,
}

/// Audit events waiting to be written before new ones are refused (and
/// logged) rather than queued without bound.
const AUDIT_QUEUE: usize = 65_536;
/// Audit events written in one transaction at most.
const AUDIT_BATCH: usize = 512;

impl Approvals {
    /// Starts the audit writer and the expiry sweeper over `store`.
    pub fn start(store: Store, settings: ApprovalSettings) -> Arc<Approvals> {
        let (audit_tx, mut audit_rx) = mpsc::channel::<AuditEvent>(AUDIT_QUEUE);
        let writer = store.clone();
        tokio::spawn(async move {
            // Whatever queued while the last batch was written goes in the
            // next one: one commit for many events under load, at once
            // when idle.
            let mut batch = Vec::with_capacity(AUDIT_BATCH);
            while audit_rx.recv_many(&mut batch, AUDIT_BATCH).await > 0 {
                if let Err(err) = writer.audit_batch(&batch).await {
                    error!(error = %err, events = batch.len(), "audit write failed");
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
    pub fn audit(&self, mut e: AuditEvent) {
        if e.at == 0 {
            e.at = now_ms();
        }
        if let Err(mpsc::error::TrySendError::Full(e)) = self.audit_tx.try_send(e) {
            error!(event = %e.event, "audit queue full; event written synchronously");
            let store = self.store.clone();
            tokio::spawn(async move {
                if let Err(err) = store.audit(&e).await {
                    error!(error = %err, "audit write failed");
                }
            });
        }
    }
}
