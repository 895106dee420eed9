//! The session's part in keeping the catalog snapshot current (see
//! `crate::catalog`): what it forwards that may change the catalog, when it
//! asks for a new snapshot, and when it must wait before the gate may
//! classify.
//!
//! A change of the catalog becomes visible to other connections when it
//! commits. So the session counts as "changing" from forwarding such a
//! statement until its transaction has ended and the server has answered
//! everything in flight; then it asks for a new snapshot. Other sessions of the database do not
//! classify while one is changing: what they forward could run after the
//! commit. They wait for it, up to [`OTHERS_WAIT`]; past that (a long
//! ALTER TABLE) they go on, proving no read that names anything, until it
//! is over.

use std::time::Duration;

use super::Session;
use crate::catalog::Watch;
use crate::protocol::backend::TransactionStatus;

/// How long a session waits for another's change of the catalog before it
/// goes on without proving reads.
const OTHERS_WAIT: Duration = Duration::from_secs(5);
/// How often a waiting session looks again.
const RECHECK: Duration = Duration::from_millis(2);

impl Session {
    /// Whether the gate has a current view of the catalog; false to wait
    /// (for the answer to what is in flight, for a new snapshot, or for
    /// another session's change).
    pub(super) fn catalog_ready(&mut self) -> bool {
        let Some(watch) = self.catalog.as_mut() else {
            return true;
        };
        if self.catalog_dirty && !self.batch_open {
            if self.pending > 0 {
                return false;
            }
            if self.status == TransactionStatus::Idle {
                watch.invalidate();
                watch.end_change();
                self.catalog_dirty = false;
            }
        }
        // Inside a transaction that may have changed the catalog, nothing
        // that names anything is proven a read: no other connection can see
        // those changes, so no snapshot has them.
        let mut unsettled = self.catalog_dirty;
        if watch.others_changing() {
            let now = tokio::time::Instant::now();
            let deadline = *self.catalog_deadline.get_or_insert(now + OTHERS_WAIT);
            if now < deadline {
                self.wait_for_catalog();
                return false;
            }
            unsettled = true;
        } else {
            self.catalog_deadline = None;
        }
        self.gate.set_unsettled(unsettled);
        match watch.current() {
            Some(known) => {
                self.gate.set_catalog(known);
                self.catalog_waited = false;
                true
            }
            None => {
                self.wait_for_catalog();
                false
            }
        }
    }

    /// Waits (counted once for each message that waits).
    fn wait_for_catalog(&mut self) {
        self.waiting_catalog = true;
        if !self.catalog_waited {
            self.catalog_waited = true;
            crate::metrics::Metrics::inc(&self.metrics.catalog_waits);
        }
    }

    /// Bookkeeping for a message sent upstream.
    pub(super) fn catalog_forwarded(&mut self) {
        if self.gate.changes_catalog {
            self.catalog_dirty = true;
        }
        if self.catalog_dirty {
            if let Some(w) = self.catalog.as_mut() {
                w.begin_change();
            }
        }
    }

    /// After a ReadyForQuery: once nothing is in flight, this session's
    /// change is over; if its transaction has ended, a new snapshot is
    /// needed (and asked for now, not at the next message, so that other
    /// sessions wait for it).
    pub(super) fn catalog_answered(&mut self) {
        let Some(watch) = self.catalog.as_mut() else {
            return;
        };
        if self.pending > 0 || self.batch_open {
            return;
        }
        if self.catalog_dirty && self.status == TransactionStatus::Idle {
            watch.invalidate();
            self.catalog_dirty = false;
        }
        // A transaction that may have changed the catalog keeps others
        // waiting until it ends: a read classified now could wait upstream
        // on a lock that transaction holds (a view it redefined) and run
        // once it commits, with the new code (red team round 4).
        if !self.catalog_dirty {
            watch.end_change();
        }
    }
}

/// Resolves when the catalog may let a waiting session go on.
pub(super) async fn changed(catalog: &mut Option<Watch>) {
    match catalog {
        Some(w) => {
            tokio::select! {
                _ = w.changed() => {}
                _ = tokio::time::sleep(RECHECK) => {}
            }
        }
        None => std::future::pending().await,
    }
}
