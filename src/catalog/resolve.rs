//! Facts, as the classifier found them in the text, completed with what the
//! upstream catalog knows: the user code a name reaches.
//!
//! The text alone cannot tell a column from a function called in attribute
//! notation (`t.f` is `f(t)`), a built-in from a user's overload of its name
//! (`lower(1)` with a `lower(int)` in some schema), a table from a view
//! whose definition calls a volatile function, or a plain cast from a cast
//! to a domain whose CHECK calls one. The snapshot can; names are matched in
//! every schema, so neither a search path nor a later `SET search_path`
//! changes the answer.
//!
//! When there is no snapshot to ask (the catalog could not be read), or the
//! session's own transaction may have changed the catalog in ways no other
//! connection can see yet, nothing that names a relation, function,
//! operator, type or column is proven to be a read.

use std::sync::Arc;

use super::snapshot::{Code, Snapshot};
use crate::classify::{builtins, Facts, Kind, Risks, StatementFacts};

/// What a session knows of its database's catalog.
#[derive(Debug, Clone)]
pub enum Known {
    Snapshot(Arc<Snapshot>),
    /// The catalog could not be read: why.
    Unavailable(Arc<str>),
}

impl Known {
    pub fn same(&self, other: &Known) -> bool {
        match (self, other) {
            (Known::Snapshot(a), Known::Snapshot(b)) => Arc::ptr_eq(a, b),
            (Known::Unavailable(a), Known::Unavailable(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// Why a read that names anything is not proven while the catalog may be
/// changing where no snapshot can see it.
const UNSETTLED: &str = "the catalog may be changing (earlier in this transaction, or in another session's statement still running): the statement may reach code no snapshot has yet";

/// `facts` completed with what the catalog knows; `params` are the
/// parameter types a Parse declared (a domain's CHECK runs on a parameter
/// of its type). The same `Arc` when nothing changes.
pub fn resolve(facts: &Arc<Facts>, known: &Known, unsettled: bool, params: &[u32]) -> Arc<Facts> {
    resolve_changed(facts, known, unsettled, params).unwrap_or_else(|| Arc::clone(facts))
}

/// [`resolve`], or `None` when nothing changes (the data path's common
/// case, which then costs no reference count).
#[inline]
pub fn resolve_changed(
    facts: &Arc<Facts>,
    known: &Known,
    unsettled: bool,
    params: &[u32],
) -> Option<Arc<Facts>> {
    let reason = match known {
        _ if unsettled => UNSETTLED.to_string(),
        Known::Unavailable(why) => format!("the catalog could not be read: {why}"),
        Known::Snapshot(snap) => {
            if snap.is_empty() {
                return None;
            }
            let mut out: Option<Facts> = None;
            for (i, s) in facts.statements.iter().enumerate() {
                let p = if i == 0 { params } else { &[] };
                if let Some(changed) = resolved(s, snap, p, Names::All) {
                    out.get_or_insert_with(|| (**facts).clone()).statements[i] = changed;
                }
            }
            return out.map(Arc::new);
        }
    };
    let mut out: Option<Facts> = None;
    for (i, s) in facts.statements.iter().enumerate() {
        let p = if i == 0 { params } else { &[] };
        if s.kind == Kind::Read && touches(s, p) {
            let st = &mut out.get_or_insert_with(|| (**facts).clone()).statements[i];
            st.risks.insert(Risks::USER_CODE);
            st.user_code.push(reason.clone());
        }
    }
    out.map(Arc::new)
}

/// Whether a statement names a relation, function, operator, type or
/// column, or takes parameters: only then can it reach user code.
fn touches(s: &StatementFacts, params: &[u32]) -> bool {
    !s.tables_read.is_empty()
        || !s.tables_written.is_empty()
        || !s.functions.is_empty()
        || !s.operators.is_empty()
        || !s.types.is_empty()
        || !s.attributes.is_empty()
        || !params.is_empty()
}

/// A statement PostgreSQL deparsed with `search_path = pg_catalog` (a
/// view's definition, a CHECK, a policy) completed with the snapshot. Such
/// text names every object outside `pg_catalog` with its schema, so an
/// unqualified name is PostgreSQL's own and is not looked up.
pub fn resolve_deparsed(s: &StatementFacts, snap: &Snapshot) -> StatementFacts {
    resolved(s, snap, &[], Names::QualifiedOnly).unwrap_or_else(|| s.clone())
}

/// Which names a resolution looks up.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Names {
    All,
    QualifiedOnly,
}

/// What a statement reaches beyond its text.
#[derive(Default)]
struct Reached {
    code: Code,
}

impl Reached {
    fn function(&mut self, qualified: &str, what: String) {
        self.code.merge(&Code {
            what: vec![what],
            functions: vec![qualified.to_string()],
            risks: Risks::UNKNOWN_FUNCTION,
        });
    }
}

/// The snapshot key of a name as written.
fn lookup_key(n: &str, names: Names) -> std::borrow::Cow<'_, str> {
    match names {
        Names::QualifiedOnly if !n.contains('.') => format!("pg_catalog.{n}").into(),
        _ => n.into(),
    }
}

fn resolved<'a>(
    s: &'a StatementFacts,
    snap: &Snapshot,
    params: &[u32],
    names: Names,
) -> Option<StatementFacts> {
    // Deparsed text names pg_catalog's objects without a schema; user code
    // there (a function created in pg_catalog) is found under
    // `pg_catalog.name`.
    let key = |n: &'a String| lookup_key(n, names);
    let mut out: Option<StatementFacts> = None;
    // Extension functions the catalog vouches for are reads.
    if s.risks.contains(Risks::UNKNOWN_FUNCTION)
        && s.unknown_functions().all(|f| snap.is_trusted(f))
    {
        out.get_or_insert_with(|| s.clone())
            .risks
            .remove(Risks::UNKNOWN_FUNCTION);
    }
    // So are operators over safe functions that only users define.
    if s.risks.contains(Risks::UNKNOWN_OPERATOR)
        && s.operators
            .iter()
            .filter(|o| {
                let (schema, name) = split_qualified(o);
                !builtins::is_builtin_operator(schema, name)
            })
            .all(|o| snap.is_safe_operator(o))
    {
        out.get_or_insert_with(|| s.clone())
            .risks
            .remove(Risks::UNKNOWN_OPERATOR);
    }
    let mut r = Reached::default();
    // User code no name in the text leads to (casts from built-in types,
    // operator classes, a changed built-in): any statement that names
    // anything may reach it.
    if names == Names::All && !snap.ambient.is_empty() && touches(s, params) {
        r.code.merge(&Code {
            what: snap.ambient.clone(),
            functions: Vec::new(),
            risks: Risks::USER_CODE,
        });
    }
    for f in s.functions.iter().map(key) {
        for q in snap.functions(&f).into_iter().flatten() {
            r.function(q, format!("function {q}"));
        }
        // `f(x)` is a cast to a type named `f` when no function matches
        // exactly: a domain's CHECK or a cast's function runs.
        if let Some(code) = snap.type_code(&f) {
            r.code.merge(code);
        }
    }
    for a in s.attributes.iter().filter(|_| names == Names::All) {
        for q in snap.attribute_functions(a).into_iter().flatten() {
            r.function(q, format!("function {q} (as .{a})"));
        }
    }
    for o in s.operators.iter().map(key) {
        for q in snap.operator(&o).into_iter().flatten() {
            r.function(q, format!("operator {o} (function {q})"));
        }
    }
    for t in s.types.iter().map(key) {
        if let Some(code) = snap.type_code(&t) {
            r.code.merge(code);
        }
    }
    for oid in params {
        if let Some(code) = snap.type_oid_code(*oid) {
            r.code.merge(code);
        }
    }
    for t in s.tables_read.iter().chain(&s.tables_written).map(key) {
        if let Some(code) = snap.relation_code(&t) {
            r.code.merge(code);
        }
    }
    for t in s.tables_written.iter().map(key) {
        if let Some(code) = snap.write_code(&t) {
            r.code.merge(code);
        }
    }
    if r.code.what.is_empty() && r.code.risks.is_empty() {
        return out;
    }
    let st = out.get_or_insert_with(|| s.clone());
    for f in r.code.functions {
        if !st.functions.contains(&f) {
            st.functions.push(f);
        }
    }
    for w in r.code.what {
        if !st.user_code.contains(&w) {
            st.user_code.push(w);
        }
    }
    st.risks.insert(r.code.risks);
    out
}

/// Whether running `facts` may change what the snapshot says: DDL, code
/// the classifier cannot see into (which may run DDL), including what a
/// write to a table reaches (`super::writes`: triggers, defaults, checks).
/// Plain reads and writes never do, so ordinary traffic never makes the
/// catalog be read again.
pub fn may_change_catalog(facts: &Facts, known: &Known) -> bool {
    facts
        .statements
        .iter()
        .any(|s| statement_may_change(s, known))
}

/// [`may_change_catalog`] for one statement.
fn statement_may_change(s: &StatementFacts, known: &Known) -> bool {
    if s.is_read() {
        return false;
    }
    // COMMIT PREPARED makes another transaction's changes visible.
    if s.command == "COMMIT PREPARED" {
        return true;
    }
    match s.kind {
        Kind::Transaction => false,
        // SET changes no catalog; a SELECT of set_config() that
        // reaches user code may.
        Kind::Session => !s.sets.is_empty() && runs_opaque_code(s),
        // Every DDL: even an index build or a GRANT fires event
        // triggers, which may run any code (a red-team attack redefined
        // a view from one on CREATE INDEX). Except an index build that
        // runs built-in code alone: it changes nothing a read's decision
        // depends on, so other sessions need not wait for it (it may take
        // an hour).
        Kind::Ddl => !builds_index_with_builtins_only(s, known),
        // ANALYZE evaluates index expressions, and VACUUM FULL,
        // CLUSTER and REINDEX rebuild indexes (expressions and operator
        // classes' support functions): user code may run in any of
        // them. A lock and a checkpoint run none.
        Kind::Utility => !matches!(s.command.as_str(), "CHECKPOINT" | "LOCK TABLE"),
        Kind::Read | Kind::Write => {
            runs_opaque_code(s)
                || s.tables_written.iter().any(|t| writes_system_catalog(t))
                || (matches!(known, Known::Unavailable(_)) && !s.tables_written.is_empty())
        }
    }
}

/// Built-in index access methods: their handlers are PostgreSQL's own.
const BUILTIN_INDEX_METHODS: &[&str] = &["btree", "hash", "gist", "gin", "spgist", "brin"];

/// CREATE INDEX [CONCURRENTLY] whose build runs built-in code alone (see
/// `Snapshot::index_builds_run_builtins_only`): a built-in method, and
/// expressions and predicate that reach nothing opaque.
fn builds_index_with_builtins_only(s: &StatementFacts, known: &Known) -> bool {
    let Known::Snapshot(snap) = known else {
        return false;
    };
    s.command == "CREATE INDEX"
        && s.index_method
            .as_deref()
            .is_some_and(|m| BUILTIN_INDEX_METHODS.contains(&m))
        && snap.index_builds_run_builtins_only()
        && !runs_opaque_code(s)
        && s.user_code.is_empty()
}

/// `facts` with every statement after one that may change the catalog no
/// read if it names anything or runs a cursor: the server runs a message's
/// statements one after another, so what an earlier one changed (a view
/// its trigger redefined, a cursor its code opened) is what a later one
/// runs, and no snapshot has it. `None` when nothing changes.
pub fn settle_within(facts: &Facts, known: &Known) -> Option<Facts> {
    let first = facts
        .statements
        .iter()
        .position(|s| statement_may_change(s, known))?;
    let mut out: Option<Facts> = None;
    for i in first + 1..facts.statements.len() {
        let s = &facts.statements[i];
        if s.kind == Kind::Read && (touches(s, &[]) || s.runs_cursor()) {
            let st = &mut out.get_or_insert_with(|| facts.clone()).statements[i];
            st.risks.insert(Risks::USER_CODE);
            st.user_code.push(format!(
                "{UNSETTLED} (a statement before it in the same message)"
            ));
        }
    }
    out
}

/// Whether a statement runs code the classifier cannot see into, which
/// may do anything (DDL included): user code, unknown functions and
/// statements, and the built-ins that run SQL given as text. A built-in
/// with side effects that runs no SQL (pg_sleep, nextval, advisory locks,
/// large objects) is not such code.
pub fn runs_opaque_code(s: &StatementFacts) -> bool {
    const OPAQUE: Risks = Risks::NONE
        .with(Risks::UNKNOWN_FUNCTION)
        .with(Risks::UNKNOWN_OPERATOR)
        .with(Risks::USER_CODE)
        .with(Risks::CALL)
        .with(Risks::DO)
        .with(Risks::EXECUTE)
        .with(Risks::UNKNOWN_STATEMENT)
        .with(Risks::UNPARSEABLE)
        .with(Risks::COPY_PROGRAM)
        .with(Risks::SELECT_INTO);
    s.risks.intersects(OPAQUE)
        || (s.risks.contains(Risks::SIDE_EFFECT_FUNCTION)
            && s.functions.iter().any(|f| may_run_sql(f)))
}

/// Whether a written relation may be a system catalog (a superuser may
/// `UPDATE pg_proc` and so change what a function runs): anything in
/// `pg_catalog`, or named like a catalog, in whatever schema it resolves to.
fn writes_system_catalog(written: &str) -> bool {
    let (schema, name) = split_qualified(written);
    let name = name.trim_matches('"');
    schema.is_some_and(|s| s.trim_matches('"').eq_ignore_ascii_case("pg_catalog"))
        || name.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("pg_"))
}

/// Whether a function named with side effects may run SQL it is given (or
/// that a table it is given runs): any function outside `pg_catalog`, the
/// SQL-as-text runners of extensions, and the `*_to_xml` family.
fn may_run_sql(shown: &str) -> bool {
    let (schema, name) = split_qualified(shown);
    schema.is_some_and(|s| s != "pg_catalog")
        || crate::classify::builtins::runs_sql_text(name)
        || name.contains("_to_xml")
}

/// The schema (if written) and the name of `schema.name`.
fn split_qualified(n: &str) -> (Option<&str>, &str) {
    match n.rsplit_once('.') {
        Some((schema, name)) => (Some(schema), name),
        None => (None, n),
    }
}
