//! What SQL `EXECUTE name` runs. The text says nothing of it: the name
//! stands for whatever the session prepared under it, by SQL `PREPARE` or
//! by a protocol Parse (one namespace on the server). pg_dump, for one,
//! prepares its catalog reads and EXECUTEs them thousands of times.
//!
//! The gate cannot always know which of several statements the server
//! holds under a name: a PREPARE of a taken name fails there and the old
//! statement stays; a DEALLOCATE in an aborted transaction block fails and
//! the statement stays; user code (a function, DO, CALL, a trigger) may
//! prepare statements the gate never sees. So for each name it keeps every
//! text the session ever gave it (its *candidates*), and an EXECUTE counts
//! as what it runs only when every candidate is known and every one of
//! them, classified again now, is a read. Otherwise the name's meaning is
//! unknown and the EXECUTE is no read (as before: reviewers see the
//! candidates, `super::shown`).

use std::collections::HashMap;
use std::sync::Arc;

use crate::classify::{cache::classify_cached, Facts, Kind, Risks, StatementFacts};

/// At most this many texts are kept per name; a name given more is unknown.
const KEPT_PER_NAME: usize = 4;
/// At most this many names of protocol statements the gate stopped
/// tracking are remembered; past that every name is unknown.
const FORGOTTEN_NAMES: usize = 256;

/// The protocol statement of a name the gate tracks.
pub(super) enum Tracked<'a> {
    None,
    Text(&'a str),
    /// The gate keeps one, but cannot tell which of several texts it is.
    Unknown,
}

/// The texts a name may stand for.
#[derive(Default)]
struct Candidates {
    /// Messages that SQL-PREPAREd the name, oldest first.
    sql: Vec<Arc<str>>,
    /// Texts of protocol Parses of the name the gate no longer tracks.
    protocol: Vec<Arc<str>>,
    /// More texts were given than are kept.
    overflowed: bool,
}

/// What each name SQL PREPARE used, or protocol statements the gate
/// forgot, may stand for in this session.
#[derive(Default)]
pub(super) struct SqlPrepared {
    names: HashMap<String, Candidates>,
    /// Something ran that may have prepared statements the gate did not
    /// see, or more names were forgotten than are kept: no name is known.
    opaque: bool,
}

fn push(texts: &mut Vec<Arc<str>>, overflowed: &mut bool, text: &str) {
    if texts.iter().any(|t| **t == *text) {
        return;
    }
    if texts.len() == KEPT_PER_NAME {
        texts.remove(0);
        *overflowed = true;
    }
    texts.push(Arc::from(text));
}

impl SqlPrepared {
    /// Whether SQL PREPARE ever used `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.names.get(name).is_some_and(|c| !c.sql.is_empty())
    }

    /// The SQL texts that PREPAREd `name`, for a reviewer.
    pub fn sql_texts(&self, name: &str) -> &[Arc<str>] {
        self.names.get(name).map_or(&[], |c| &c.sql)
    }

    /// `name` was (perhaps) prepared by `text`, a message's SQL.
    pub fn insert(&mut self, name: &str, text: &str) {
        let c = self.names.entry(name.to_string()).or_default();
        push(&mut c.sql, &mut c.overflowed, text);
    }

    /// The gate stops tracking the protocol statement `name` (a Close, a
    /// DEALLOCATE or DISCARD it cannot be sure succeeded): the server may
    /// still hold it as `sql`.
    pub fn forget_protocol(&mut self, name: &[u8], sql: &str) {
        let Ok(name) = std::str::from_utf8(name) else {
            self.opaque = true;
            return;
        };
        if !self.names.contains_key(name) && self.names.len() >= FORGOTTEN_NAMES {
            self.opaque = true;
            return;
        }
        let c = self.names.entry(name.to_string()).or_default();
        push(&mut c.protocol, &mut c.overflowed, sql);
    }

    /// Something ran that may prepare statements unseen (user code).
    /// Returns whether that is news.
    pub fn mark_opaque(&mut self) -> bool {
        !std::mem::replace(&mut self.opaque, true)
    }

    /// Every text `name` may stand for, or `None` if that is not known.
    /// `tracked` is the protocol statement of that name the gate tracks.
    fn candidates<'a>(&'a self, name: &str, tracked: Tracked<'a>) -> Option<Vec<(&'a str, bool)>> {
        if self.opaque {
            return None;
        }
        let tracked = match tracked {
            Tracked::None => None,
            Tracked::Text(t) => Some(t),
            Tracked::Unknown => return None,
        };
        let c = self.names.get(name)?;
        if c.overflowed {
            return None;
        }
        let mut all: Vec<(&str, bool)> = c.sql.iter().map(|t| (&**t, true)).collect();
        all.extend(c.protocol.iter().map(|t| (&**t, false)));
        all.extend(tracked.map(|t| (t, false)));
        Some(all)
    }

    /// `facts` with each SQL EXECUTE whose name stands only for reads
    /// decided as those reads: their relations, functions and types join
    /// the statement's (for catalog resolution and the policy's rules),
    /// and the EXECUTE flag goes. `None` when nothing changes.
    /// `tracked` gives the protocol statement of a name, if the gate
    /// tracks one.
    pub fn as_executed<'a>(
        &'a self,
        facts: &Facts,
        tracked: impl Fn(&str) -> Tracked<'a>,
    ) -> Option<Facts> {
        let mut out: Option<Facts> = None;
        for (i, s) in facts.statements.iter().enumerate() {
            let Some(name) = s.executed.as_deref() else {
                continue;
            };
            if !s.risks.contains(Risks::EXECUTE) {
                continue;
            }
            let Some(reads) = self
                .candidates(name, tracked(name))
                .and_then(|c| reads_of(name, &c))
            else {
                continue;
            };
            let st = &mut out.get_or_insert_with(|| facts.clone()).statements[i];
            st.risks.remove(Risks::EXECUTE);
            for r in &reads {
                join(st, r);
            }
            if st.command == "EXECUTE" && st.kind == Kind::Utility {
                st.kind = Kind::Read;
            }
        }
        out
    }
}

/// The statements `name` runs under each candidate, if every candidate is
/// a read by its text (the catalog is consulted afterwards, on the joined
/// facts). `(text, true)` is a message that SQL-PREPAREd the name, whose
/// PREPAREs of that name count; `(text, false)` a protocol statement.
fn reads_of(name: &str, candidates: &[(&str, bool)]) -> Option<Vec<StatementFacts>> {
    let mut reads = Vec::new();
    for (text, by_sql) in candidates {
        // Backslashes read differently with standard_conforming_strings
        // off; the setting at PREPARE time is not kept.
        if text.contains('\\') {
            return None;
        }
        let facts = classify_cached(text);
        // The parser here is not the server's: what it rejects, the
        // server may have prepared.
        if facts.error.is_some() {
            return None;
        }
        let mut any = false;
        for s in &facts.statements {
            let mine = if *by_sql {
                s.prepared.as_deref() == Some(name)
            } else {
                true
            };
            if !mine {
                continue;
            }
            any = true;
            let mut s = s.clone();
            s.risks.remove(Risks::PREPARE);
            s.prepared = None;
            if !s.is_read() {
                return None;
            }
            reads.push(s);
        }
        if !any && !*by_sql {
            return None;
        }
    }
    (!reads.is_empty()).then_some(reads)
}

/// `from`'s names and flags added to `to`'s.
fn join(to: &mut StatementFacts, from: &StatementFacts) {
    let lists = [
        (&mut to.tables_read, &from.tables_read),
        (&mut to.functions, &from.functions),
        (&mut to.operators, &from.operators),
        (&mut to.types, &from.types),
        (&mut to.attributes, &from.attributes),
        (&mut to.user_code, &from.user_code),
    ];
    for (to, from) in lists {
        for x in from {
            if !to.contains(x) {
                to.push(x.clone());
            }
        }
    }
    to.risks.insert(from.risks);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::classify;

    fn decided(sql: &SqlPrepared, text: &str, tracked: Option<&str>) -> Facts {
        let facts = classify(text);
        let tracked = || match tracked {
            Some("?") => Tracked::Unknown,
            Some(t) => Tracked::Text(t),
            None => Tracked::None,
        };
        sql.as_executed(&facts, |_| tracked()).unwrap_or(facts)
    }

    #[test]
    fn an_execute_of_a_name_prepared_only_as_reads_is_a_read() {
        let mut sql = SqlPrepared::default();
        assert!(!decided(&sql, "EXECUTE q(1)", None).is_read());
        sql.insert(
            "q",
            "PREPARE q(oid) AS SELECT relname FROM pg_class WHERE oid = $1",
        );
        let f = decided(&sql, "EXECUTE q('1259')", None);
        assert!(f.is_read(), "{f:?}");
        assert_eq!(f.statements[0].tables_read, ["pg_class"]);
        assert_eq!(f.statements[0].executed.as_deref(), Some("q"));
        // Its arguments are judged too.
        assert!(!decided(&sql, "EXECUTE q(nextval('s'))", None).is_read());
        // EXPLAIN ANALYZE of it is no plain read, and nor is CREATE TABLE AS.
        assert!(decided(&sql, "EXPLAIN EXECUTE q(1)", None).is_read());
        assert!(!decided(&sql, "CREATE TABLE t AS EXECUTE q(1)", None).is_read());
        // Several statements in one message: only the PREPARE of the name.
        sql.insert("r", "PREPARE r AS SELECT 1; PREPARE other AS DELETE FROM t");
        assert!(decided(&sql, "EXECUTE r", None).is_read());
    }

    #[test]
    fn any_candidate_that_is_not_a_read_makes_the_name_unknown() {
        let mut sql = SqlPrepared::default();
        sql.insert("q", "PREPARE q AS SELECT 1");
        sql.insert("q", "PREPARE q AS DELETE FROM t");
        assert!(!decided(&sql, "EXECUTE q", None).is_read());
        // A protocol statement of the name the gate tracks.
        let mut sql = SqlPrepared::default();
        sql.insert("p", "PREPARE p AS SELECT 1");
        assert!(!decided(&sql, "EXECUTE p", Some("DELETE FROM t")).is_read());
        assert!(decided(&sql, "EXECUTE p", Some("SELECT 2")).is_read());
        // One it forgot (a DEALLOCATE that may have failed).
        sql.forget_protocol(b"p", "UPDATE t SET x = 1");
        assert!(!decided(&sql, "EXECUTE p", None).is_read());
        // Texts with backslashes, given too many texts, or after user code.
        let mut sql = SqlPrepared::default();
        sql.insert("b", r"PREPARE b AS SELECT '\'");
        assert!(!decided(&sql, "EXECUTE b", None).is_read());
        for i in 0..=KEPT_PER_NAME {
            sql.insert("o", &format!("PREPARE o AS SELECT {i}"));
        }
        assert!(!decided(&sql, "EXECUTE o", None).is_read());
        sql.insert("x", "PREPARE x AS SELECT 1");
        assert!(decided(&sql, "EXECUTE x", None).is_read());
        // A protocol statement the gate keeps as either of two texts.
        assert!(!decided(&sql, "EXECUTE x", Some("?")).is_read());
        assert!(sql.mark_opaque());
        assert!(!sql.mark_opaque());
        assert!(!decided(&sql, "EXECUTE x", None).is_read());
    }

    #[test]
    fn too_many_forgotten_names_make_every_name_unknown() {
        let mut sql = SqlPrepared::default();
        sql.insert("x", "PREPARE x AS SELECT 1");
        for i in 0..FORGOTTEN_NAMES {
            sql.forget_protocol(format!("s{i}").as_bytes(), "SELECT 1");
        }
        assert!(!decided(&sql, "EXECUTE x", None).is_read());
    }
}
