//! Holding a statement on the client's own connection while reviewers
//! decide: the session keeps the held message (and everything the client
//! sent after it) unread in its buffer, tells the client at once with a
//! NoticeResponse, and then either forwards the message as if it had just
//! arrived, or answers it with an error through the refusal mechanism, so
//! that transaction state stays the same on both sides.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::Session;
use crate::approval::hold::{self, HoldEvent};
use crate::approval::Approvals;
use crate::frontend::gate::HoldRequest;
use crate::protocol::backend::Report;
use crate::protocol::sqlstate;
use crate::store::{AuditEvent, NewRequest, Request};

/// A statement waiting for its decision.
pub(super) struct Held {
    /// The held message's tag (it is still at the front of `client_in`).
    pub tag: u8,
    pub req: HoldRequest,
    pub since: Instant,
    pub id: Option<String>,
    pub fut: Pin<Box<dyn Future<Output = HoldEvent> + Send>>,
}

/// An approved statement on its way through the upstream.
pub(super) struct Executing {
    pub request: Request,
    pub since: Instant,
}

/// Polls the hold's future; only called while there is one.
pub(super) async fn next_event(held: &mut Option<Held>) -> HoldEvent {
    match held.as_mut() {
        Some(h) => h.fut.as_mut().await,
        None => std::future::pending().await,
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{} h", s / 3600),
    }
}

impl Session {
    /// Starts holding the message at the front of `client_in`.
    pub(super) fn begin_hold(&mut self, tag: u8, req: HoldRequest) {
        let Some(approvals) = self.approvals.clone() else {
            let report = Report::error(
                sqlstate::INSUFFICIENT_PRIVILEGE,
                format!(
                    "this statement requires approval by airlock policy rule \"{}\"",
                    req.rule
                ),
            )
            .with_detail("No approval store is configured, so it cannot be held for review.");
            return self.end_hold_refused(tag, report);
        };
        let new = NewRequest {
            sql: req.sql.clone(),
            params: req.params.clone(),
            database: self.identity.database.clone(),
            requester: self.identity.user.clone(),
            client_addr: self.identity.client_addr.to_string(),
            rule: req.rule.clone(),
            risks: req.risks.clone(),
            approvers: req.approvers.clone(),
            approvals_required: req.approvals,
        };
        crate::metrics::Metrics::inc(&self.metrics.holds_started);
        self.metrics
            .holds_pending
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.hold = Some(Held {
            tag,
            req,
            since: Instant::now(),
            id: None,
            fut: Box::pin(hold::open(approvals, new)),
        });
    }

    /// Acts on what became of the held statement.
    pub(super) fn on_hold_event(&mut self, event: HoldEvent) {
        let Some(held) = self.hold.as_mut() else {
            return;
        };
        let Some(approvals) = self.approvals.clone() else {
            return;
        };
        match event {
            HoldEvent::Opened(r) => {
                let url = format!("{}{}", approvals.settings.review_url, r.id);
                let notice = Report::notice(format!(
                    "airlock: statement held for review as request {} (policy rule \"{}\", {} approval(s) from {})",
                    r.id,
                    held.req.rule,
                    held.req.approvals,
                    held.req.approvers.join(", ")
                ))
                .with_detail(format!("Review it at {url}"))
                .with_hint(format!(
                    "It waits up to {} on this connection; cancel the query (Ctrl-C) to withdraw it.",
                    human(held.req.timeout)
                ));
                held.id = Some(r.id.clone());
                held.fut = Box::pin(hold::decision(
                    Arc::clone(&approvals),
                    r.id.clone(),
                    held.since,
                    held.req.timeout,
                ));
                if let Some(conninfo) = approvals.settings.estimates.clone() {
                    if crate::approval::estimate::wanted(&held.req.facts, &held.req.params) {
                        let (store, id, role, sql) = (
                            approvals.store.clone(),
                            r.id.clone(),
                            r.requester.clone(),
                            r.sql.clone(),
                        );
                        tokio::spawn(async move {
                            match crate::approval::estimate::rows(&conninfo, &role, &sql).await {
                                Ok(n) => {
                                    let _ = store.set_estimate(&id, n).await;
                                }
                                Err(e) => {
                                    tracing::debug!(error = %e, request = %id, "no row estimate")
                                }
                            }
                        });
                    }
                }
                self.audit(&approvals, "hold", &r, "pending");
                self.say(notice);
            }
            HoldEvent::Granted(r) | HoldEvent::Approved(r) => {
                let by = r.approvers_so_far().join(", ");
                self.say(Report::notice(format!(
                    "airlock: request {} approved by {by}; running it",
                    r.id
                )));
                self.audit(&approvals, "execute", &r, "running");
                self.relay.capture_rows(true);
                self.executing = Some(Executing {
                    request: r,
                    since: Instant::now(),
                });
                self.end_hold();
                // The held message goes upstream as if it had just come.
                self.approved_head = true;
            }
            HoldEvent::Rejected(r) => {
                let review = r.reviews.iter().find(|v| v.decision == "reject");
                let (who, why) = review.map_or(("a reviewer", ""), |v| {
                    (v.reviewer.as_str(), v.comment.as_str())
                });
                let report = Report::error(
                    sqlstate::INSUFFICIENT_PRIVILEGE,
                    format!("airlock: request {} was rejected by {who}: {why}", r.id),
                );
                let tag = held.tag;
                self.end_hold_refused(tag, report);
            }
            HoldEvent::TimedOut(r) => {
                let report = Report::error(
                    sqlstate::QUERY_CANCELED,
                    format!(
                        "airlock: request {} is still waiting for review after {}",
                        r.id,
                        human(held.req.timeout)
                    ),
                )
                .with_detail(format!("The request stays open: {}{}", approvals.settings.review_url, r.id))
                .with_hint(format!(
                    "Once it is approved, run the identical statement again (same SQL, parameters and database) to execute it once, within {} of the approval.",
                    human(approvals.settings.grant_lifetime)
                ));
                let tag = held.tag;
                self.audit(&approvals, "timeout", &r, "pending");
                self.end_hold_refused(tag, report);
            }
            HoldEvent::Ended(r) => {
                let report = Report::error(
                    sqlstate::INSUFFICIENT_PRIVILEGE,
                    format!(
                        "airlock: request {} is {} and was not run here",
                        r.id, r.status
                    ),
                );
                let tag = held.tag;
                self.end_hold_refused(tag, report);
            }
            HoldEvent::Failed(e) => {
                let report = Report::error(
                    sqlstate::INTERNAL_ERROR,
                    format!(
                        "airlock: the approval store failed, so the statement was not run: {e}"
                    ),
                );
                let tag = held.tag;
                self.end_hold_refused(tag, report);
            }
        }
    }

    /// A CancelRequest: withdraws a held statement (nothing runs upstream to
    /// cancel), or is passed on to the upstream.
    pub(super) fn on_cancel(&mut self) {
        let Some(held) = self.hold.as_ref() else {
            if let Some(target) = self.cancel_target.clone() {
                let timeout = self.connect_timeout;
                tokio::spawn(async move {
                    let _ = crate::backend::send_cancel(target, timeout).await;
                });
            }
            return;
        };
        let tag = held.tag;
        let id = held.id.clone();
        if let Some(approvals) = self.approvals.clone() {
            let mut audit = self.audit_event("cancel", None, "cancelled");
            audit.sql = held.req.sql.clone();
            audit.params = held.req.params.clone();
            audit.rule = held.req.rule.clone();
            // Before the request is open, its opening is still under way:
            // let it finish, then withdraw what it opened (or give back a
            // grant it claimed), so nothing is left pending unwatched.
            let opening = match id.clone() {
                Some(_) => None,
                None => self
                    .hold
                    .as_mut()
                    .map(|h| std::mem::replace(&mut h.fut, Box::pin(std::future::pending()))),
            };
            let known = id.clone();
            tokio::spawn(async move {
                use crate::store::Status;
                let id = match (known, opening) {
                    (Some(id), _) => Some(id),
                    (None, Some(fut)) => match fut.await {
                        HoldEvent::Opened(r) => Some(r.id),
                        HoldEvent::Granted(r) => {
                            let _ = approvals
                                .store
                                .transition(&r.id, Status::Executed, Status::Approved)
                                .await;
                            None
                        }
                        _ => None,
                    },
                    (None, None) => None,
                };
                if let Some(id) = id {
                    if let Ok(true) = approvals
                        .store
                        .transition(&id, Status::Pending, Status::Cancelled)
                        .await
                    {
                        audit.request_id = Some(id);
                        approvals.audit(audit);
                    }
                }
            });
        }
        let mut report = Report::error(
            sqlstate::QUERY_CANCELED,
            "canceling statement due to user request",
        );
        if let Some(id) = id {
            report = report.with_detail(format!("airlock request {id} was withdrawn."));
        }
        self.end_hold_refused(tag, report);
    }

    pub(super) fn end_hold(&mut self) {
        if let Some(h) = self.hold.take() {
            self.metrics.hold_wait.observe(h.since.elapsed());
            self.metrics
                .holds_pending
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Answers the held message with `report` (through the refusal
    /// mechanism, so the upstream fails the same way) and goes on.
    fn end_hold_refused(&mut self, tag: u8, report: Report) {
        self.end_hold();
        self.refuse(tag, report);
        self.drop_head_message();
        self.forwarded(tag);
    }

    /// The statement approved and run: record its outcome once its
    /// ReadyForQuery has come — the rows it affected, or the SQLSTATE with
    /// which PostgreSQL refused it.
    pub(super) fn finish_execution(&mut self, rows: Option<i64>, error: Option<String>) {
        let Some(ex) = self.executing.take() else {
            return;
        };
        self.relay.capture_rows(false);
        let Some(approvals) = self.approvals.clone() else {
            return;
        };
        let ms = ex.since.elapsed().as_millis() as i64;
        let outcome = match &error {
            None => "executed".to_string(),
            Some(code) => format!("failed: SQLSTATE {code}"),
        };
        let mut e = self.audit_event("execute", Some(&ex.request), &outcome);
        e.rows_affected = rows;
        e.duration_ms = Some(ms);
        approvals.audit(e);
        let store = approvals.store.clone();
        let id = ex.request.id.clone();
        let failure = error.map(|_| outcome);
        tokio::spawn(async move {
            let _ = store.set_outcome(&id, rows, failure).await;
        });
    }

    /// Records a decision the gate noted (allowed non-reads, denials).
    /// Records a decision no reviewer made. An allowed statement waits for
    /// its record to be durable (the returned receiver) before it runs; a
    /// denial runs nothing and does not wait.
    pub(super) fn audit_noted(
        &self,
        noted: crate::frontend::gate::Noted,
    ) -> Option<crate::approval::Durable> {
        let approvals = self.approvals.as_ref()?;
        let mut e = self.audit_event(noted.decision, None, noted.decision);
        e.sql = noted.sql;
        e.rule = noted.rule;
        if noted.decision == "allow" {
            Some(approvals.audit_durable(e))
        } else {
            approvals.audit(e);
            None
        }
    }

    fn audit(&self, approvals: &Approvals, event: &str, r: &Request, outcome: &str) {
        approvals.audit(self.audit_event(event, Some(r), outcome));
    }

    fn audit_event(&self, event: &str, r: Option<&Request>, outcome: &str) -> AuditEvent {
        AuditEvent {
            event: event.into(),
            request_id: r.map(|r| r.id.clone()),
            requester: self.identity.user.clone(),
            client_addr: self.identity.client_addr.to_string(),
            database: self.identity.database.clone(),
            sql: r.map(|r| r.sql.clone()).unwrap_or_default(),
            params: r.map(|r| r.params.clone()).unwrap_or_default(),
            rule: r.map(|r| r.rule.clone()).unwrap_or_default(),
            outcome: outcome.into(),
            ..Default::default()
        }
    }
}
