//! What a write to a relation runs that its text does not show.
//!
//! An INSERT, UPDATE, DELETE, MERGE or COPY FROM of a table evaluates its
//! column defaults and generated columns, its CHECK constraints (an UPDATE
//! checks NOT VALID ones too), its index expressions and predicates and the
//! row-level security expressions of writes; it fires its triggers and
//! rules; a write to a partitioned or inheritance parent writes its
//! children, a DELETE or UPDATE of a referenced row writes the referencing
//! tables whose foreign keys cascade, set null or set default, and a write
//! to an updatable view writes the relations under it. Any of these may be
//! user code, and user code may do anything: redefine a view, open a
//! cursor, create a temporary object that shadows a table.
//!
//! So each relation is given the code a write to it may reach, over that
//! whole closure. A write that reaches code is not a plain write: its facts
//! carry `user_code` (reviewers see what), and it counts as a change of
//! the catalog (`super::resolve::may_change_catalog`), so that what it may
//! have changed is read again before any statement after it is proven a
//! read. A default of `nextval(...)` or `now()` is PostgreSQL's own code
//! and is not user code.

use std::collections::HashMap;

use super::load::{Named, Raw, View};
use super::resolve::{resolve_deparsed, runs_opaque_code};
use super::snapshot::{keys, Code, Snapshot};
use crate::classify::{classify, Facts, Risks};

/// `schema.name`, the node of the write graph.
type Node = (String, String);

fn node(n: &Named) -> Node {
    (n.schema.clone(), n.name.clone())
}

/// The code a write to each relation reaches, by every name a statement
/// may use for it. `snap` is complete but for this; `views` are the views'
/// definitions as classified.
pub(super) fn judge(raw: &Raw, snap: &Snapshot, views: &[(&View, Facts)]) -> HashMap<String, Code> {
    let mut direct: HashMap<Node, Code> = HashMap::new();
    let mut add = |n: &Named, code: Code| direct.entry(node(n)).or_default().merge(&code);
    for t in &raw.triggers {
        add(
            t,
            user_code(format!("a trigger on {}.{}", t.schema, t.name)),
        );
    }
    for (r, rule) in &raw.rules {
        add(
            r,
            user_code(format!("rule {rule} on {}.{}", r.schema, r.name)),
        );
    }
    // Tables made alike have the same expressions (`now()`, `lower(v)`):
    // each text is judged once.
    let mut judged_texts: HashMap<&str, Option<Vec<String>>> = HashMap::new();
    for e in &raw.write_expressions {
        let calls = judged_texts
            .entry(e.expression.as_str())
            .or_insert_with(|| judged(&e.expression, snap));
        if let Some(functions) = calls {
            let what = format!("{} of {}.{}", e.what, e.relation.schema, e.relation.name);
            add(
                &e.relation,
                Code {
                    what: vec![what],
                    functions: functions.clone(),
                    risks: Risks::USER_CODE,
                },
            );
        }
    }
    // Writing `from` writes `to`.
    let mut edges: Vec<(Node, Node)> = Vec::new();
    edges.extend(raw.inherits.iter().map(|(p, c)| (node(p), node(c))));
    edges.extend(raw.cascades.iter().map(|(f, c)| (node(f), node(c))));
    for (v, facts) in views {
        for s in &facts.statements {
            for t in &s.tables_read {
                let under = match t.rsplit_once('.') {
                    Some((schema, name)) => (schema.to_string(), name.to_string()),
                    None => ("pg_catalog".to_string(), t.clone()),
                };
                edges.push(((v.schema.clone(), v.name.clone()), under));
            }
        }
    }
    // Until nothing changes; each round only adds code, so this ends.
    loop {
        let mut changed = false;
        for (from, to) in &edges {
            let Some(code) = direct.get(to).cloned() else {
                continue;
            };
            let entry = direct.entry(from.clone()).or_default();
            let before = entry.clone();
            entry.merge(&code);
            changed |= *entry != before;
        }
        if !changed {
            break;
        }
    }
    let mut out: HashMap<String, Code> = HashMap::new();
    for ((schema, name), code) in direct {
        for k in keys(&schema, &name) {
            out.entry(k).or_default().merge(&code);
        }
    }
    out
}

fn user_code(what: String) -> Code {
    Code {
        what: vec![what],
        functions: Vec::new(),
        risks: Risks::USER_CODE,
    }
}

/// Whether an expression PostgreSQL deparsed may run user code: then the
/// functions it calls that are not known to be free of side effects.
fn judged(expression: &str, snap: &Snapshot) -> Option<Vec<String>> {
    let facts = classify(&format!("SELECT {expression}"));
    if facts.error.is_some() {
        return Some(Vec::new());
    }
    let mut code: Option<Vec<String>> = None;
    for s in &facts.statements {
        let s = resolve_deparsed(s, snap);
        if runs_opaque_code(&s) {
            let functions = code.get_or_insert_with(Vec::new);
            for f in s.unknown_functions() {
                if !functions.iter().any(|g| g == f) {
                    functions.push(f.to_string());
                }
            }
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use crate::catalog::may_change_catalog;
    use crate::catalog::tests::{known, resolved};

    /// What a write to `sql`'s table reaches, and whether it changes the
    /// catalog.
    fn reaches(sql: &str) -> (Vec<String>, bool) {
        let f = resolved(sql);
        let code = f
            .statements
            .iter()
            .flat_map(|s| s.user_code.clone())
            .collect();
        (code, may_change_catalog(&f, &known()))
    }

    #[test]
    fn defaults_and_checks_that_call_user_code_are_reached_by_writes() {
        let (code, changes) = reaches("INSERT INTO app.with_default (a) VALUES (1)");
        assert_eq!(code, ["the expression of column d of app.with_default"]);
        assert!(changes);
        // By its name alone too: search paths differ.
        assert!(reaches("insert into with_default (a) values (1)").1);
        let (code, changes) = reaches("UPDATE app.checked_t SET a = 2 WHERE a < 5");
        assert_eq!(code, ["constraint c of app.checked_t"]);
        assert!(changes);
        let f = resolved("UPDATE app.checked_t SET a = 2 WHERE a < 5");
        assert!(f.statements[0]
            .functions
            .iter()
            .any(|f| f == "app.check_fn"));
    }

    #[test]
    fn postgres_own_code_in_defaults_checks_and_indexes_is_not_user_code() {
        assert_eq!(
            reaches("INSERT INTO app.t (v) VALUES ('x')"),
            (vec![], false)
        );
        assert_eq!(
            reaches("INSERT INTO app.plain_checked VALUES (1, 'b')"),
            (vec![], false)
        );
    }

    #[test]
    fn rules_partitions_cascades_and_views_carry_the_code_they_reach() {
        let (code, changes) = reaches("INSERT INTO app.ruled VALUES (1)");
        assert_eq!(code, ["rule r on app.ruled"]);
        assert!(changes);
        // A child's trigger, through its parent.
        let (code, changes) = reaches("UPDATE app.parent SET a = 1 WHERE a < 5");
        assert_eq!(code, ["a trigger on app.audited"]);
        assert!(changes);
        // A cascade into the parent, and on to the child.
        let (code, _) = reaches("DELETE FROM app.referenced WHERE id < 5");
        assert_eq!(code, ["a trigger on app.audited"]);
        // An updatable view writes the table under it.
        assert!(reaches("INSERT INTO app.audited_view VALUES (1)").1);
        // Reading runs none of it.
        for sql in [
            "SELECT * FROM app.with_default",
            "SELECT * FROM app.parent",
            "SELECT * FROM app.ruled",
        ] {
            assert!(resolved(sql).is_read(), "{sql}");
        }
    }

    #[test]
    fn what_follows_a_write_that_reaches_code_in_one_message_is_no_read() {
        use crate::catalog::resolve::settle_within;
        let settled = |sql: &str| settle_within(&resolved(sql), &known());
        let f =
            settled("INSERT INTO app.with_default (a) VALUES (1); SELECT * FROM app.t; FETCH c")
                .expect("settled");
        assert!(!f.statements[1].is_read());
        assert!(!f.statements[2].is_read());
        assert!(settled("INSERT INTO app.t (v) VALUES ('x'); SELECT * FROM app.t").is_none());
        // Before the change, nothing is touched.
        assert!(settled("SELECT * FROM app.t; INSERT INTO app.ruled VALUES (1)").is_none());
        assert!(settled("SELECT 1; SELECT 2").is_none());
    }

    #[test]
    fn explain_of_a_write_plans_its_defaults() {
        // The planner folds what a default calls when it is marked
        // immutable, which for user code is only its author's word.
        assert!(!resolved("EXPLAIN INSERT INTO app.with_default (a) VALUES (1)").is_read());
        assert!(resolved("EXPLAIN INSERT INTO app.t (v) VALUES ('x')").is_read());
    }
}
