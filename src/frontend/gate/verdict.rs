//! The verdict for a decision: forward, refuse with the error PostgreSQL
//! would give, or hold for review; and what every decision leaves behind,
//! counted in the metrics and, for anything but a read, noted for the
//! audit trail.

use std::sync::Arc;

use super::{Decided, Gate, HoldRequest, Verdict};
use crate::classify::{Facts, Kind};
use crate::policy::Decision;
use crate::protocol::backend::Report;
use crate::protocol::sqlstate;

/// A decision for the audit trail.
#[derive(Debug, Clone)]
pub struct Noted {
    pub decision: &'static str,
    pub rule: String,
    pub sql: String,
}

fn kind_index(k: Kind) -> usize {
    match k {
        Kind::Read => 0,
        Kind::Write => 1,
        Kind::Ddl => 2,
        Kind::Transaction => 3,
        Kind::Session => 4,
        Kind::Utility => 5,
    }
}

impl Gate {
    /// The decision to record, if the last message's needs recording.
    pub fn take_noted(&mut self) -> Option<Noted> {
        self.noted.take()
    }

    /// Counts a decision, adding to the shared counters in batches, and
    /// notes it for the audit trail when `note_sql` is given.
    pub(super) fn count(
        &mut self,
        kind: Kind,
        decision: usize,
        note_sql: Option<String>,
        rule: &str,
    ) {
        self.counts[kind_index(kind)][decision] += 1;
        self.uncounted += 1;
        if self.uncounted >= 256 {
            self.flush_counts();
        }
        self.noted = note_sql.map(|sql| Noted {
            decision: if decision == 0 { "allow" } else { "deny" },
            rule: rule.to_string(),
            sql,
        });
    }

    /// Adds this session's counts to the shared counters.
    pub fn flush_counts(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        for (row, shared) in self.counts.iter_mut().zip(&self.metrics.statements) {
            for (n, c) in row.iter_mut().zip(shared) {
                if *n > 0 {
                    c.fetch_add(*n as u64, Relaxed);
                    *n = 0;
                }
            }
        }
        self.uncounted = 0;
    }

    /// Forward, refuse, or hold (with the SQL and parameters `what` gives).
    /// Allowed writes, DDL and utility statements, and every denial, are
    /// noted for the audit trail.
    pub(super) fn verdict(
        &mut self,
        d: &Decided,
        what: impl FnOnce() -> (String, Vec<Option<String>>),
    ) -> Verdict {
        let kind = d.kind;
        match &d.decision {
            Decision::RequireApproval {
                rule,
                approvers,
                approvals,
                timeout,
            } if d.facts.error.is_none() => {
                self.count(kind, 2, None, rule);
                let (sql, params) = what();
                Verdict::Hold(HoldRequest {
                    sql,
                    params,
                    rule: rule.clone(),
                    risks: d.facts.risks().names().map(str::to_string).collect(),
                    approvers: approvers.clone(),
                    approvals: *approvals,
                    timeout: *timeout,
                    facts: Arc::clone(&d.facts),
                })
            }
            decision => {
                let allowed = matches!(decision, Decision::Allow { .. });
                // Allowed reads, transaction control and session settings
                // are counted (metrics), not audited one by one: an
                // application sends them on every transaction.
                // A Query of several statements is noted whole if any of
                // them is something else.
                // `kind` is the first statement that is not a read: the
                // rest are looked at only after a BEGIN or a SET, never
                // for a read.
                let note = !allowed
                    || match kind {
                        Kind::Read => false,
                        Kind::Transaction | Kind::Session => !d.facts.statements.iter().all(|s| {
                            matches!(
                                s.effective_kind(),
                                Kind::Read | Kind::Transaction | Kind::Session
                            )
                        }),
                        Kind::Write | Kind::Ddl | Kind::Utility => true,
                    };
                let sql = note.then(|| what().0);
                self.count(kind, usize::from(!allowed), sql, decision.rule());
                answer(&d.facts, decision)
            }
        }
    }
}

/// The verdict for a decision that is not a hold: forward, or the error a
/// client gets instead of a result. Text the
/// parser rejects and the policy denies gets the parser's own syntax error.
pub(super) fn answer(facts: &Facts, d: &Decision) -> Verdict {
    let report = match d {
        Decision::Allow { .. } => return Verdict::Forward,
        Decision::Deny { rule, .. } if facts.error.is_some() => Report::error(
            sqlstate::SYNTAX_ERROR,
            facts.error.clone().unwrap_or_default(),
        )
        .with_detail(format!(
            "Refused by airlock policy rule \"{rule}\": the statement does not parse."
        )),
        Decision::Deny { rule, message } => {
            Report::error(sqlstate::INSUFFICIENT_PRIVILEGE, message.clone())
                .with_detail(format!("Denied by airlock policy rule \"{rule}\"."))
        }
        Decision::RequireApproval {
            rule,
            approvers,
            approvals,
            ..
        } => Report::error(
            sqlstate::INSUFFICIENT_PRIVILEGE,
            format!("this statement requires approval by airlock policy rule \"{rule}\""),
        )
        .with_detail(format!(
            "{approvals} approval(s) from {} needed; the statement was not run.",
            approvers.join(", ")
        )),
    };
    Verdict::Refuse(report)
}

/// The refusal of a Parse whose statement needs review but would run user
/// code while PostgreSQL parses it (a type's input, typmod_in or a range's
/// canonical function): a Parse cannot wait for a reviewer the way a Bind
/// does, so the statement is refused (42501, as a policy refusal) and may be sent again as a simple
/// Query, which waits whole.
pub(super) fn runs_code_at_parse(facts: &Facts) -> Verdict {
    let code: Vec<&str> = facts
        .statements
        .iter()
        .flat_map(|s| s.user_code.iter())
        .map(String::as_str)
        .collect();
    let at_parse: Vec<&str> = code
        .iter()
        .copied()
        .filter(|w| w.ends_with(crate::catalog::snapshot::AT_PARSE))
        .collect();
    let code = if at_parse.is_empty() { code } else { at_parse };
    Verdict::Refuse(
        Report::error(
            sqlstate::INSUFFICIENT_PRIVILEGE,
            "airlock cannot hold this statement for review at Bind: PostgreSQL would run user code while it parses it",
        )
        .with_detail(format!("{}.", code.join("; ")))
        .with_hint(
            "Send it as a simple query (not prepared) to have it reviewed; the Parse was not sent to the server.",
        ),
    )
}

pub(super) fn malformed(what: &str) -> Verdict {
    Verdict::Refuse(Report::error(
        sqlstate::PROTOCOL_VIOLATION,
        format!("malformed {what} message"),
    ))
}
