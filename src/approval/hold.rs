//! The waiting side of a held statement: open (or claim a grant for) its
//! request, then wait for the decision, the deadline or a cancel.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::Approvals;
use crate::store::{NewRequest, Request, Status, StoreError};

/// What became of a held statement.
#[derive(Debug)]
pub enum HoldEvent {
    /// The request is open and waits for reviewers.
    Opened(Request),
    /// An approval of the identical statement was waiting: run it now.
    Granted(Request),
    /// Reviewers approved it and this session claimed the approval: run it.
    Approved(Request),
    Rejected(Request),
    /// The hold deadline passed; the request stays open.
    TimedOut(Request),
    /// The request ended without running here (cancelled, expired, or its
    /// approval was used by a re-run elsewhere).
    Ended(Request),
    /// The store failed: the statement is not run.
    Failed(String),
}

/// Claims a live grant for `new`, or opens a request for it.
pub async fn open(approvals: Arc<Approvals>, new: NewRequest) -> HoldEvent {
    let result: Result<HoldEvent, StoreError> = async {
        if let Some(r) = approvals.store.claim_grant(&new).await? {
            return Ok(HoldEvent::Granted(r));
        }
        Ok(HoldEvent::Opened(approvals.store.create(&new).await?))
    }
    .await;
    result.unwrap_or_else(|e| HoldEvent::Failed(e.to_string()))
}

/// Waits for request `id` to be decided, until `timeout` has passed since
/// `since`. An approval is claimed for this session before it is reported.
pub async fn decision(
    approvals: Arc<Approvals>,
    id: String,
    since: Instant,
    timeout: Duration,
) -> HoldEvent {
    let deadline = since + timeout;
    // Subscribe before looking, so no change falls between the two.
    let mut changes = approvals.store.subscribe();
    loop {
        let r = match approvals.store.get(&id).await {
            Ok(r) => r,
            Err(e) => return HoldEvent::Failed(e.to_string()),
        };
        match r.status {
            Status::Pending => {}
            Status::Approved => {
                return match approvals
                    .store
                    .transition(&id, Status::Approved, Status::Executed)
                    .await
                {
                    Ok(true) => HoldEvent::Approved(r),
                    Ok(false) => match approvals.store.get(&id).await {
                        Ok(r) => HoldEvent::Ended(r),
                        Err(e) => HoldEvent::Failed(e.to_string()),
                    },
                    Err(e) => HoldEvent::Failed(e.to_string()),
                };
            }
            Status::Rejected => return HoldEvent::Rejected(r),
            Status::Cancelled | Status::Expired | Status::Executed => return HoldEvent::Ended(r),
        }
        // Wait for a change of this request (or any, if we fell behind).
        loop {
            match tokio::time::timeout_at(deadline, changes.recv()).await {
                Err(_) => return HoldEvent::TimedOut(r),
                Ok(Ok(changed)) if changed != id && changed != crate::store::RECHECK => continue,
                Ok(Ok(_)) | Ok(Err(RecvError::Lagged(_))) => break,
                Ok(Err(RecvError::Closed)) => return HoldEvent::Failed("store closed".into()),
            }
        }
    }
}
