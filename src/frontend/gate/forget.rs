//! When the gate stops trusting what it tracked of the session's named
//! statements and portals: the server may now mean something else by a
//! name. A name the gate forgot is unknown, and what binds or executes it
//! is no read (unless `reparse` makes the statement again).

use super::decided::Decided;
use super::Gate;

impl Gate {
    /// Every named statement goes; `reparse` keeps each, so that a Bind of
    /// it can make it again from its text.
    fn forget_named_statements(&mut self, reparse: bool) {
        for (name, p) in self.statements.drain_named() {
            self.sql_prepared.forget_protocol(&name, &p.sql);
            if reparse {
                self.forgotten.insert(&name, p);
            }
        }
        if !reparse {
            self.forgotten.clear();
        }
        self.epoch += 1;
    }

    /// The message about to be forwarded may change the catalog and run
    /// user code, which may prepare statements and open cursors unseen, and
    /// DEALLOCATE a named statement or CLOSE a named portal of the client's
    /// and make another under its name (`EXECUTE 'PREPARE s1 AS ...'`: one
    /// namespace on the server; red team round 4). So the named statements
    /// and portals the gate tracked are forgotten: what executes such a
    /// portal now is no read, and a Bind of such a statement makes it
    /// again from its text first (`reparse`).
    pub(super) fn user_code_may_run(&mut self) {
        self.changes_catalog = true;
        self.sql_prepared.mark_opaque();
        self.user_code_ran = true;
        self.forget_named_statements(true);
        self.portals.clear_named();
    }

    /// The server converts statement and portal names from the
    /// client_encoding, as it does SQL text, so one name sent in two
    /// encodings may be two byte strings (`s\xc3\xa9` in UTF8, `s\xe9` in
    /// LATIN1) and two names one (red team round 5). The gate keys names by
    /// the bytes it received: when the encoding changes, every named
    /// statement and portal it knows is forgotten, and binding or executing
    /// one is no read. The session calls this when the server reports a
    /// new client_encoding (the relay sees it in ParameterStatus), before
    /// anything sent in it is inspected: a change of the encoding makes
    /// what follows wait for the server's answer (`changes_lexer`).
    pub fn encoding_changed(&mut self) {
        self.forget_named_statements(false);
        self.portals.clear_named();
    }

    /// SQL-level PREPARE, DEALLOCATE and DISCARD change prepared statements
    /// behind the protocol's back: what was remembered may no longer hold.
    pub(super) fn forget_if_statements_change(&mut self, d: &Decided, text: &str) {
        if !d.changes_statements {
            return;
        }
        for s in &d.facts.statements {
            if let Some(name) = &s.prepared {
                self.sql_prepared.insert(name, text);
            }
        }
        if d.forgets_statements {
            self.forget_named_statements(false);
            self.portals.clear();
        }
        // What EXECUTE of a name means may have changed.
        self.epoch += 1;
    }
}
