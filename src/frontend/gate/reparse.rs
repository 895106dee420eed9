//! Named statements made again after user code may have replaced them.
//!
//! User code can DEALLOCATE a client's named statement and PREPARE another
//! under its name (one namespace on the server), so once anything that may
//! run user code was forwarded, the gate no longer knows what a name it
//! tracked means (`Gate::user_code_may_run`). Drivers keep their named
//! statements for the life of the connection (asyncpg prepares every
//! query, pgjdbc and psycopg after a few executions), and a table with an
//! audit trigger is enough to run user code: holding every later Bind of
//! those names as unknown would break them.
//!
//! So the gate keeps what it knew of each such statement, and when the
//! client binds one it makes the name mean that again: it sends a Close of
//! the name and a Parse of the same text with the same parameter types
//! just before the Bind (or Describe), and the relay drops their two answers
//! (`crate::frontend::relay::Reparsed`). Whatever the server held under the
//! name is gone; what the Bind runs is the text the gate decides now.
//! Where the same text would not mean the same to the server now (another
//! client_encoding than UTF8, standard_conforming_strings changed), or the
//! name was also used by SQL PREPARE, the name stays unknown.

use super::confirm::Made;
use super::named::server_name;
use super::{Gate, Prepared};
use crate::classify::Risks;
use crate::frontend::relay::Reparsed;
use crate::protocol::frontend as fe;
use crate::protocol::{put_cstr, put_message};

/// The messages that make a statement again, and where their answers come.
pub struct Reparse {
    pub bytes: Vec<u8>,
    pub at: Reparsed,
}

impl Gate {
    /// Before a Bind or a Describe of `name`, which the gate does not
    /// track: if it forgot the statement because user code may have run,
    /// it makes it again (see the module docs) and tracks it as if the
    /// client had sent the Parse.
    pub(super) fn reparse_forgotten(
        &mut self,
        name: &[u8],
        client_encoding: &str,
        standard_strings: bool,
    ) {
        if name.is_empty() || self.forgotten.is_empty() {
            return;
        }
        let Some(p) = self.forgotten.take(name) else {
            return;
        };
        let same_text = client_encoding.eq_ignore_ascii_case("UTF8")
            && p.standard_strings == standard_strings
            && !p.facts.risks().contains(Risks::UNKNOWN_STATEMENT);
        let sql_name = std::str::from_utf8(server_name(name))
            .map(|n| self.sql_prepared.contains(n))
            .unwrap_or(true);
        if !same_text || sql_name {
            return;
        }
        let mut bytes = Vec::with_capacity(p.sql.len() + 2 * name.len() + 32);
        put_message(&mut bytes, fe::CLOSE, |b| {
            b.push(b'S');
            put_cstr(b, name);
        });
        put_message(&mut bytes, fe::PARSE, |b| {
            put_cstr(b, name);
            put_cstr(b, p.sql.as_bytes());
            b.extend_from_slice(&(p.param_types.len() as u16).to_be_bytes());
            for t in &p.param_types {
                b.extend_from_slice(&t.to_be_bytes());
            }
        });
        let (segments, closes, parses) = self.tentative.next_answers();
        self.tentative.sent(Made::Close, name, false);
        let id = self.tentative.sent(Made::Statement, name, true);
        self.statements.insert(
            name,
            Prepared {
                decided: None,
                id,
                ..p
            },
        );
        self.reparse = Some(Reparse {
            bytes,
            at: Reparsed {
                segments,
                closes,
                parses,
                closed: false,
            },
        });
    }

    /// Messages of the gate's own to send upstream before the message it
    /// just inspected.
    #[inline]
    pub fn take_reparse(&mut self) -> Option<Reparse> {
        self.reparse.take()
    }
}
