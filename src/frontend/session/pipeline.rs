//! The session's count of what is in flight upstream: the sync points it
//! forwarded (Query, Sync, FunctionCall) and the ReadyForQuery messages
//! that answered them, refused messages and the failing substitutes sent in
//! their place, COPY IN mode, and the answers the gate follows to keep only
//! the statements and portals the server confirmed.

use super::{Session, State};
use crate::frontend::error::SessionError;
use crate::frontend::relay::refusal_marker;
use crate::protocol::backend::{self as be, Report, TransactionStatus};
use crate::protocol::frontend as fe;
use crate::protocol::{put_cstr, put_message};

impl Session {
    /// Sends upstream, in place of a refused message, one that fails there
    /// at once without effect, and has the relay answer the client with
    /// `report` in place of the server's error. The server thereby fails
    /// exactly as if the refused message had failed: it discards until Sync,
    /// a transaction block becomes failed on both sides, and the
    /// ReadyForQuery the client receives is the server's own.
    pub(super) fn refuse(&mut self, tag: u8, report: Report) {
        self.gate.refused(tag);
        let id = self.next_refusal;
        self.next_refusal += 1;
        let marker = refusal_marker(id);
        let mut substitute = Vec::with_capacity(2 * marker.len() + 16);
        match tag {
            fe::QUERY | fe::FUNCTION_CALL => {
                put_message(&mut substitute, fe::QUERY, |b| {
                    put_cstr(b, marker.as_bytes())
                });
            }
            _ => put_message(&mut substitute, fe::PARSE, |b| {
                put_cstr(b, marker.as_bytes());
                put_cstr(b, marker.as_bytes());
                b.extend_from_slice(&0i16.to_be_bytes());
            }),
        }
        self.server_out.extend(&substitute);
        self.relay.expect_refusal(id, report.to_bytes());
    }

    /// Bookkeeping for a message sent upstream.
    #[inline]
    pub(super) fn forwarded(&mut self, tag: u8) {
        match tag {
            fe::QUERY | fe::FUNCTION_CALL => {
                self.pending += 1;
                self.gate.sync_point();
                self.syncs_since_execute = 0;
            }
            fe::EXECUTE => {
                self.batch_open = true;
                self.syncs_since_execute = 0;
            }
            fe::PARSE | fe::BIND | fe::DESCRIBE | fe::CLOSE | fe::FLUSH => self.batch_open = true,
            fe::SYNC => {
                self.batch_open = false;
                if !self.copy_in {
                    self.pending += 1;
                    self.gate.sync_point();
                    self.syncs_since_execute += 1;
                }
            }
            fe::COPY_DONE | fe::COPY_FAIL => {
                if self.copy_in {
                    self.copy_in = false;
                } else {
                    self.copy_ends_early.push_back(self.syncs_since_execute);
                }
            }
            fe::TERMINATE => self.state = State::Closing,
            _ => {}
        }
    }

    pub(super) fn on_server_data(&mut self) -> Result<(), SessionError> {
        let seen = self
            .relay
            .scan(&mut self.server_in)
            .map_err(|e| SessionError::ServerProtocol(e.to_string()))?;
        if seen.copy_in {
            // Syncs sent after the COPY's Execute reached a server in
            // COPY IN mode, which ignores them.
            let ignored = match self.copy_ends_early.pop_front() {
                Some(ignored) => ignored,
                None => {
                    self.copy_in = true;
                    std::mem::take(&mut self.syncs_since_execute)
                }
            };
            self.pending = self.pending.saturating_sub(ignored);
            self.gate.ignored_syncs(ignored);
        }
        for &event in self.relay.events() {
            match event {
                be::PARSE_COMPLETE => self.gate.parse_complete(),
                be::BIND_COMPLETE => self.gate.bind_complete(),
                be::CLOSE_COMPLETE => self.gate.close_complete(),
                be::READY_FOR_QUERY => self.gate.ready_for_query(),
                _ => {}
            }
        }
        if seen.encoding_changed {
            // Names the client sends from now on are converted from it.
            self.gate.encoding_changed();
        }
        if seen.rows.is_some() {
            self.last_rows = seen.rows;
        }
        if seen.error.is_some() {
            self.last_error = seen.error;
        }
        for types in seen.param_types {
            if let Some(name) = self.describes.pop_front() {
                self.gate.learn_param_types(&name, types);
            }
        }
        if seen.ready_for_query > 0 {
            self.pending = self.pending.saturating_sub(seen.ready_for_query);
            // Describes the server discarded after an error get no answer;
            // once nothing is in flight, none is still to come.
            if self.pending == 0 {
                self.describes.clear();
            }
            if self.executing.is_some() && self.pending == 0 {
                let rows = self.last_rows.take();
                let error = self.last_error.take();
                self.finish_execution(rows, error);
            }
            if let Some(status) = seen.status {
                self.status = status;
                if status == TransactionStatus::Idle {
                    self.gate.transaction_ended();
                }
            }
            self.catalog_answered();
        }
        self.server_fatal |= seen.fatal;
        self.read_only_reported(seen.hidden_value, seen.swallowed_error);
        Ok(())
    }
}
