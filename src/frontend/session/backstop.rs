//! The session's part in the read-only backstop (docs/backstop.md): which
//! read-only default the upstream session has, and switching it, between
//! transactions, before a message that needs the other.

use super::Session;
use crate::frontend::gate::Need;
use crate::protocol::backend::TransactionStatus;
use crate::protocol::frontend as fe;
use crate::protocol::{put_cstr, put_message};

/// The upstream session's read-only default, as the backstop last set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    ReadOnly,
    ReadWrite,
    /// A statement the policy allowed changed it; set it again before use.
    Unknown,
}

impl Session {
    /// The read-only backstop (docs/backstop.md): before a message that
    /// needs the other mode, switch the upstream session's read-only default
    /// with a SET of the proxy's own whose answer the client never sees.
    /// That is only possible between transactions; if statements are still
    /// in flight, returns false to wait for them. Inside a transaction block
    /// or an extended-protocol batch the mode stays as it was.
    pub(super) fn switch_mode_for(&mut self, need: Need) -> bool {
        let want = match need {
            Need::Neutral => return true,
            Need::ReadOnly => Mode::ReadOnly,
            Need::ReadWrite => Mode::ReadWrite,
        };
        if !self.backstop || self.upstream_mode == want || self.batch_open {
            return true;
        }
        if self.pending > 0 {
            return false;
        }
        if self.status != TransactionStatus::Idle {
            return true;
        }
        let sql: &[u8] = match want {
            Mode::ReadOnly => b"SET default_transaction_read_only = on",
            _ => b"SET default_transaction_read_only = off",
        };
        let mut q = Vec::with_capacity(48);
        put_message(&mut q, fe::QUERY, |b| put_cstr(b, sql));
        self.server_out.extend(&q);
        self.relay.swallow_next();
        self.pending += 1;
        self.upstream_mode = want;
        true
    }

    /// What the server's answers say of its read-only default: `reported`,
    /// the value of its last ParameterStatus for it (PostgreSQL reports
    /// every change, whoever made it: an allowed `set_config`, a function
    /// vouched for as a read); `failed`, a switch of the proxy's own failed.
    pub(super) fn read_only_reported(&mut self, reported: Option<bool>, failed: bool) {
        if let Some(on) = reported {
            self.upstream_mode = if on { Mode::ReadOnly } else { Mode::ReadWrite };
        }
        if failed {
            self.upstream_mode = Mode::Unknown;
        }
    }
}
