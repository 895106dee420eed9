//! A statement's facts as the gate decides them — completed with the
//! catalog and with what the policy vouches for — together with the
//! policy's decision and what the session must do around forwarding it.
//!
//! Working this out costs a catalog resolution and a walk over the rules;
//! the same statement comes back on every execution of a prepared
//! statement and on every simple query of the same shape. So the gate keeps
//! what it decided, tagged with an *epoch*, and uses it again while the
//! epoch holds. The epoch changes whenever anything a decision depends on
//! changes: the policy, the catalog snapshot, or whether the catalog is
//! settled. The requester is fixed for the session's life.

use std::sync::Arc;

use crate::catalog::{self, Known};
use crate::classify::{Facts, Kind, Risks, StatementFacts};
use crate::policy::Decision;

/// The upstream transaction mode a forwarded message needs, for the
/// read-only backstop (docs/backstop.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Runs the same either way: SET, COMMIT, Sync, Describe ...
    Neutral,
    /// A proven read: run it where PostgreSQL refuses writes.
    ReadOnly,
    /// Allowed, and not a read.
    ReadWrite,
}

/// What the gate decided for one statement's facts, in one epoch.
#[derive(Debug)]
pub(super) struct Decided {
    pub epoch: u64,
    /// The text's facts completed with the catalog.
    pub resolved: Arc<Facts>,
    /// Those, with the functions the policy vouches for counted as reads:
    /// what the decision was made on.
    pub facts: Arc<Facts>,
    pub decision: Decision,
    /// The kind the message counts as in the metrics.
    pub kind: Kind,
    pub need: Need,
    /// It changes the read-only default itself.
    pub changes_read_only: bool,
    /// It changes how the server reads statement text.
    pub changes_lexer: bool,
    /// It may change the catalog.
    pub changes_catalog: bool,
    /// It prepares, drops or forgets prepared statements behind the
    /// protocol's back (SQL PREPARE, DEALLOCATE, DISCARD).
    pub changes_statements: bool,
    /// It may create or drop prepared statements: what the gate remembers
    /// of them no longer holds.
    pub forgets_statements: bool,
    /// It runs SQL EXECUTE: reviewers are shown what the name stands for.
    pub executes: bool,
}

impl Decided {
    pub fn new(
        epoch: u64,
        resolved: Arc<Facts>,
        facts: Arc<Facts>,
        decision: Decision,
        known: &Known,
    ) -> Decided {
        let risks = facts.risks();
        let forgets_statements = facts.statements.iter().any(|s| {
            s.risks.contains(Risks::PREPARE)
                || matches!(s.command.as_str(), "PREPARE" | "DEALLOCATE" | "DISCARD")
        });
        Decided {
            epoch,
            resolved,
            decision,
            kind: message_kind(&facts),
            need: need_of(&facts),
            changes_read_only: risks.contains(Risks::READ_ONLY_CHANGE)
                || facts.statements.iter().any(|s| s.resets_all),
            changes_lexer: risks.contains(Risks::LEXER_CHANGE),
            changes_catalog: catalog::may_change_catalog(&facts, known),
            changes_statements: forgets_statements
                || facts.statements.iter().any(|s| s.prepared.is_some()),
            forgets_statements,
            executes: facts.statements.iter().any(|s| s.executed.is_some()),
            facts,
        }
    }

    /// `self` if it was decided in `epoch`.
    #[inline]
    pub fn current(this: &Option<Arc<Decided>>, epoch: u64) -> Option<&Arc<Decided>> {
        this.as_ref().filter(|d| d.epoch == epoch)
    }
}

/// The mode `facts` need.
fn need_of(facts: &Facts) -> Need {
    if facts.is_read() {
        return Need::ReadOnly;
    }
    // A SELECT that reads and changes ordinary settings runs where writes
    // are refused, as a read does.
    if facts.error.is_none()
        && facts.statements.iter().all(|s| {
            s.is_read()
                || (s.reads_and_sets()
                    && !s
                        .risks
                        .intersects(Risks::READ_ONLY_CHANGE | Risks::ROLE_CHANGE))
        })
    {
        return Need::ReadOnly;
    }
    let neutral = facts.statements.iter().all(|s| match s.kind {
        Kind::Session => !s
            .risks
            .intersects(Risks::READ_ONLY_CHANGE | Risks::ROLE_CHANGE),
        Kind::Transaction => {
            !matches!(s.command.as_str(), "BEGIN" | "START TRANSACTION") && s.risks.is_empty()
        }
        _ => s.is_read(),
    });
    if neutral {
        Need::Neutral
    } else {
        Need::ReadWrite
    }
}

/// The kind a message counts as: its first statement that is not a read.
fn message_kind(facts: &Facts) -> Kind {
    facts
        .statements
        .iter()
        .map(StatementFacts::effective_kind)
        .find(|k| *k != Kind::Read)
        .unwrap_or(Kind::Read)
}
