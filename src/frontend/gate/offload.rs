//! Classifying large statements off the session thread. A session thread
//! runs many sessions; parsing a statement of tens of MiB takes a good part
//! of a second, which every other session of the thread would wait out. So
//! a Query or Parse of [`OFFLOAD_BYTES`] or more is classified on tokio's
//! blocking pool while the session waits (and its thread serves the
//! others); the gate then decides the message with those facts, as if it
//! had classified the text itself.

use std::sync::Arc;

use tokio::task::{JoinError, JoinHandle};

use super::text::decode;
use super::Gate;
use crate::classify::{classify, Facts};
use crate::protocol::frontend as fe;

/// Statements at least this long are classified off the session thread
/// (about a millisecond of parsing).
pub const OFFLOAD_BYTES: usize = 256 * 1024;

/// Classification under way for a session.
pub type Classifying = JoinHandle<(String, Facts)>;

impl Gate {
    /// The text of this message, if it is a Query or Parse whose text is
    /// worth classifying off the session thread and the gate does not have
    /// its facts yet.
    pub fn wants_offload(
        &self,
        tag: u8,
        body: &[u8],
        client_encoding: &str,
        standard_strings: bool,
    ) -> Option<String> {
        if self.disabled || body.len() < OFFLOAD_BYTES {
            return None;
        }
        let sql = match tag {
            fe::QUERY => fe::parse_query(body).ok()?,
            fe::PARSE => fe::parse_parse(body).ok()?.query,
            _ => return None,
        };
        let (text, _) = decode(sql, client_encoding).ok()?;
        // Text with backslashes under standard_conforming_strings off is
        // not classified at all.
        if (!standard_strings && text.contains('\\'))
            || self.offloaded.as_ref().is_some_and(|(t, _)| **t == *text)
        {
            return None;
        }
        Some(text.into_owned())
    }

    /// The facts of `text`, classified off the thread.
    pub fn offloaded(&mut self, text: String, facts: Facts) {
        self.offloaded = Some((text.into_boxed_str(), Arc::new(facts)));
    }

    /// The offloaded facts of `text`, if these are they; facts of another
    /// text are dropped (the message they were for has been decided).
    pub(super) fn take_offloaded(&mut self, text: &str) -> Option<Arc<Facts>> {
        match self.offloaded.take() {
            Some((t, f)) if *t == *text => {
                let facts = Arc::clone(&f);
                // Kept: the message may be decided again (after a mode
                // switch) before it is forwarded.
                self.offloaded = Some((t, f));
                Some(facts)
            }
            _ => None,
        }
    }
}

/// Starts classifying `text` on the blocking pool.
pub fn start(text: String) -> Classifying {
    tokio::task::spawn_blocking(move || {
        let facts = std::panic::catch_unwind(|| classify(&text))
            .unwrap_or_else(|_| Facts::unparseable("airlock could not classify this statement"));
        (text, facts)
    })
}

/// The classification under way, once it ends; never, if none is.
pub async fn finished(c: &mut Option<Classifying>) -> Result<(String, Facts), JoinError> {
    match c {
        Some(h) => h.await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn offloaded_facts_are_those_of_the_text() {
        let text = format!("SELECT length('{}')", "x".repeat(OFFLOAD_BYTES));
        let mut c = Some(start(text.clone()));
        let (back, facts) = finished(&mut c).await.unwrap();
        assert_eq!(back, text);
        assert_eq!(facts, classify(&text));
        assert!(facts.is_read());
    }
}
