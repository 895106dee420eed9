//! The gate: the one place every complete client message passes before the
//! session forwards it upstream.
//!
//! The session hands each message here with the session's identity and
//! transaction status at hand. A [`Verdict`] says what becomes of it. The
//! proxy core forwards everything; statement classification and policy hook
//! in here, so that deciding never touches framing or buffers.

use crate::protocol::backend::Report;

/// What the session does with one client message.
#[derive(Debug)]
pub enum Verdict {
    /// Send it upstream unchanged.
    Forward,
    /// Do not send it; answer the client with this error as PostgreSQL would
    /// (ErrorResponse, then discard until Sync in the extended protocol, then
    /// ReadyForQuery).
    Refuse(Report),
}

/// Per-session decision state.
#[derive(Debug, Default)]
pub struct Gate {}

impl Gate {
    pub fn new() -> Self {
        Gate {}
    }

    /// Decides one complete client message. `body` excludes the five header
    /// bytes. COPY data is streamed past the gate and never reaches here.
    #[inline]
    pub fn inspect(&mut self, _tag: u8, _body: &[u8]) -> Verdict {
        Verdict::Forward
    }
}
