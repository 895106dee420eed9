//! The facts of one parsed statement: its kind and command from the
//! top-level node, risk flags from its options, and functions, operators
//! and relations from an exhaustive walk of its tree.

use pg_query::protobuf::{
    self as pb, node::Node as N, DiscardMode, TransactionStmtKind, VariableSetKind,
};

use super::builtins;
use super::settings::{apply_settings, setting_risks};
use super::tree::{self, Found};
use super::{Kind, Risks, StatementFacts};

/// `AccessShareLock` (PostgreSQL's lockdefs.h), the mode of a LockStmt.
const ACCESS_SHARE_LOCK: i32 = 1;

/// Classifies one statement node (a RawStmt's `stmt`).
pub fn classify(node: &pb::Node) -> StatementFacts {
    let Some(inner) = node.node.as_ref() else {
        let mut f = StatementFacts::new(Kind::Utility, "UNKNOWN");
        f.risks.insert(Risks::UNKNOWN_STATEMENT);
        return f;
    };
    match inner {
        // Statements that wrap another: their facts are the inner one's,
        // adjusted.
        N::ExplainStmt(e) => return explain(e),
        N::PrepareStmt(p) => {
            let mut f = wrapped(p.query.as_deref(), "PREPARE");
            f.risks.insert(Risks::PREPARE);
            f.prepared = Some(p.name.clone());
            return f;
        }
        N::DeclareCursorStmt(d) => {
            let mut f = wrapped(d.query.as_deref(), "DECLARE CURSOR");
            f.command = "DECLARE CURSOR".into();
            return f;
        }
        _ => {}
    }
    let found = tree::walk(node);
    let (kind, command, risks, written) = top_level(inner, &found);
    let mut f = StatementFacts::new(kind, command);
    f.risks.insert(risks);
    f.tables_written = written;
    apply_found(&mut f, &found, is_data_modifying(inner));
    apply_settings(&mut f, &found, inner);
    f.resets_all = match inner {
        N::VariableSetStmt(v) => v.kind == VariableSetKind::VarResetAll as i32,
        N::DiscardStmt(d) => d.target == DiscardMode::DiscardAll as i32,
        _ => false,
    };
    if let N::ExecuteStmt(e) = inner {
        f.executed = Some(e.name.clone());
    }
    if let N::IndexStmt(i) = inner {
        f.index_method = Some(i.access_method.clone());
    }
    f
}

/// EXPLAIN: a read unless ANALYZE runs something that is not one.
fn explain(e: &pb::ExplainStmt) -> StatementFacts {
    let analyze = e.options.iter().any(|o| match o.node.as_ref() {
        Some(N::DefElem(d)) => d.defname == "analyze" && !def_is_false(d),
        _ => false,
    });
    let inner = wrapped(e.query.as_deref(), "EXPLAIN");
    if analyze && !inner.is_read() {
        let mut f = inner;
        f.command = "EXPLAIN".into();
        f.risks.insert(Risks::EXPLAIN_ANALYZE_WRITE);
        if f.kind == Kind::Read {
            f.kind = Kind::Write;
        }
        return f;
    }
    // Without ANALYZE nothing is executed, but the planner evaluates the
    // calls it may fold or use for estimates: functions marked immutable or
    // stable, which for code the classifier does not know is only its
    // author's word.
    // Nor does the classifier know what a prepared statement that
    // `EXPLAIN EXECUTE` plans calls: a Parse that awaits approval at
    // Execute is already prepared on the server.
    let mut f = StatementFacts::new(Kind::Read, "EXPLAIN");
    f.risks = inner.risks
        & (Risks::EXECUTE
            | Risks::UNKNOWN_FUNCTION
            | Risks::SIDE_EFFECT_FUNCTION
            | Risks::UNKNOWN_OPERATOR
            | Risks::USER_CODE);
    // Planning a write folds what its defaults and generated columns call
    // (the catalog knows them by the written table).
    f.tables_read = inner.tables_read;
    f.tables_written = inner.tables_written;
    f.functions = inner.functions;
    f.operators = inner.operators;
    f.types = inner.types;
    f.attributes = inner.attributes;
    f.executed = inner.executed;
    f
}

fn wrapped(query: Option<&pb::Node>, command: &str) -> StatementFacts {
    match query {
        Some(q) => classify(q),
        None => {
            let mut f = StatementFacts::new(Kind::Utility, command);
            f.risks.insert(Risks::UNKNOWN_STATEMENT);
            f
        }
    }
}

fn is_data_modifying(n: &N) -> bool {
    matches!(
        n,
        N::InsertStmt(_) | N::UpdateStmt(_) | N::DeleteStmt(_) | N::MergeStmt(_)
    )
}

/// Functions, operators, relations and nested writes found in the tree.
fn apply_found(f: &mut StatementFacts, found: &Found, top_is_dml: bool) {
    for (schema, name) in &found.functions {
        let shown = qualify(schema, name);
        // `set_config` with constant arguments is judged as the SET it is
        // (`apply_settings`).
        let setting = name == "set_config"
            && matches!(schema.as_deref(), None | Some("pg_catalog"))
            && !found.dynamic_set_config;
        if !setting && !builtins::is_safe_function(schema.as_deref(), name) {
            if builtins::has_side_effects(name) {
                f.risks.insert(Risks::SIDE_EFFECT_FUNCTION);
            } else {
                f.risks.insert(Risks::UNKNOWN_FUNCTION);
            }
        }
        if !f.functions.contains(&shown) {
            f.functions.push(shown);
        }
    }
    for (schema, name) in &found.operators {
        if !builtins::is_builtin_operator(schema.as_deref(), name) {
            f.risks.insert(Risks::UNKNOWN_OPERATOR);
        }
        // BETWEEN is `>=` and `<=` to the analyser.
        let implied: &[&str] = if name.contains("BETWEEN") {
            &[">=", "<="]
        } else {
            &[]
        };
        let names = implied
            .iter()
            .map(|n| (*n).to_string())
            .chain(implied.is_empty().then(|| qualify(schema, name)));
        for shown in names {
            if !f.operators.contains(&shown) {
                f.operators.push(shown);
            }
        }
    }
    for (schema, name) in &found.types {
        let shown = qualify(schema, name);
        if !f.types.contains(&shown) {
            f.types.push(shown);
        }
    }
    for name in &found.attributes {
        // `x.nextval` is `nextval(x)`.
        if builtins::is_unsafe_by_attribute(name) {
            f.risks.insert(if builtins::has_side_effects(name) {
                Risks::SIDE_EFFECT_FUNCTION
            } else {
                Risks::UNKNOWN_FUNCTION
            });
            if !f.functions.contains(name) {
                f.functions.push(name.clone());
            }
        }
        if !f.attributes.contains(name) {
            f.attributes.push(name.clone());
        }
    }
    let nested_writes = found.data_modifying - usize::from(top_is_dml);
    if nested_writes > 0 {
        f.risks.insert(Risks::WRITABLE_CTE);
        if matches!(f.kind, Kind::Read) {
            f.kind = Kind::Write;
        }
    }
    if found.locking {
        f.risks.insert(Risks::LOCKING);
    }
    if found.execute {
        f.risks.insert(Risks::EXECUTE);
    }
    for r in &found.relations {
        if !f.tables_written.contains(r) && !f.tables_read.contains(r) {
            f.tables_read.push(r.clone());
        }
    }
}

fn qualify(schema: &Option<String>, name: &str) -> String {
    match schema {
        Some(s) => format!("{s}.{name}"),
        None => name.to_string(),
    }
}

fn rel(r: &Option<pb::RangeVar>) -> Vec<String> {
    r.as_ref()
        .map(|r| {
            if r.schemaname.is_empty() {
                r.relname.clone()
            } else {
                format!("{}.{}", r.schemaname, r.relname)
            }
        })
        .into_iter()
        .collect()
}

fn def_is_false(d: &pb::DefElem) -> bool {
    match d.arg.as_deref().and_then(|a| a.node.as_ref()) {
        Some(N::String(s)) => matches!(s.sval.to_ascii_lowercase().as_str(), "false" | "off" | "0"),
        Some(N::Boolean(b)) => !b.boolval,
        Some(N::Integer(i)) => i.ival == 0,
        Some(N::AConst(c)) => match c.val.as_ref() {
            Some(pb::a_const::Val::Ival(i)) => i.ival == 0,
            Some(pb::a_const::Val::Boolval(b)) => !b.boolval,
            Some(pb::a_const::Val::Sval(s)) => {
                matches!(s.sval.to_ascii_lowercase().as_str(), "false" | "off" | "0")
            }
            _ => false,
        },
        _ => false,
    }
}

/// Settings whose change turns off the read-only backstop.
pub(super) fn is_read_only_setting(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "default_transaction_read_only" | "transaction_read_only"
    )
}

/// Kind, command, risks and written relations from the top-level node.
fn top_level(n: &N, found: &Found) -> (Kind, &'static str, Risks, Vec<String>) {
    use Kind::*;
    let none = Risks::NONE;
    match n {
        N::SelectStmt(s) => {
            if s.into_clause.is_some() || found.into {
                let written = s
                    .into_clause
                    .as_ref()
                    .map(|i| rel(&i.rel))
                    .unwrap_or_default();
                (Write, "SELECT INTO", Risks::SELECT_INTO, written)
            } else {
                (Read, "SELECT", none, vec![])
            }
        }
        N::InsertStmt(s) => (Write, "INSERT", none, rel(&s.relation)),
        N::UpdateStmt(s) => {
            let r = if s.where_clause.is_none() {
                Risks::NO_WHERE
            } else {
                none
            };
            (Write, "UPDATE", r, rel(&s.relation))
        }
        N::DeleteStmt(s) => {
            let r = if s.where_clause.is_none() {
                Risks::NO_WHERE
            } else {
                none
            };
            (Write, "DELETE", r, rel(&s.relation))
        }
        N::MergeStmt(s) => (Write, "MERGE", none, rel(&s.relation)),
        N::TruncateStmt(t) => {
            let written = t
                .relations
                .iter()
                .filter_map(|r| match r.node.as_ref() {
                    Some(N::RangeVar(r)) => rel(&Some(r.clone())).pop(),
                    _ => None,
                })
                .collect();
            (Write, "TRUNCATE TABLE", Risks::TRUNCATE, written)
        }
        N::CopyStmt(c) => copy(c, found),
        N::DoStmt(_) => (Utility, "DO", Risks::DO, vec![]),
        N::CallStmt(_) => (Write, "CALL", Risks::CALL, vec![]),
        N::ExecuteStmt(_) => (Utility, "EXECUTE", Risks::EXECUTE, vec![]),
        N::DeallocateStmt(_) => (Session, "DEALLOCATE", none, vec![]),
        N::VariableShowStmt(_) => (Read, "SHOW", none, vec![]),
        N::VariableSetStmt(v) => set(v),
        N::DiscardStmt(d) => {
            // DISCARD ALL includes RESET ALL (see `resets_all`).
            let r = if d.target == DiscardMode::DiscardAll as i32 {
                Risks::LEXER_CHANGE
            } else {
                none
            };
            (Session, "DISCARD", r, vec![])
        }
        N::TransactionStmt(t) => transaction(t),
        N::ListenStmt(_) => (Session, "LISTEN", Risks::LISTEN, vec![]),
        N::UnlistenStmt(_) => (Session, "UNLISTEN", none, vec![]),
        N::NotifyStmt(_) => (Write, "NOTIFY", Risks::NOTIFY, vec![]),
        N::FetchStmt(f) => (Read, if f.ismove { "MOVE" } else { "FETCH" }, none, vec![]),
        N::ClosePortalStmt(_) => (Read, "CLOSE CURSOR", none, vec![]),
        // ACCESS SHARE is the lock every SELECT takes (pg_dump takes it up
        // front, in its read-only transaction): a read of those tables.
        // Every stronger mode blocks others' writes.
        N::LockStmt(l) if l.mode == ACCESS_SHARE_LOCK => (Read, "LOCK TABLE", none, vec![]),
        N::LockStmt(_) => (Utility, "LOCK TABLE", Risks::LOCKING, vec![]),
        N::CheckPointStmt(_) => (Utility, "CHECKPOINT", none, vec![]),
        N::VacuumStmt(v) => (
            Utility,
            if v.is_vacuumcmd { "VACUUM" } else { "ANALYZE" },
            none,
            vec![],
        ),
        N::ClusterStmt(c) => (Utility, "CLUSTER", none, rel(&c.relation)),
        N::ReindexStmt(r) => (Utility, "REINDEX", none, rel(&r.relation)),
        N::LoadStmt(_) => (Utility, "LOAD", none, vec![]),
        N::ConstraintsSetStmt(_) => (Transaction, "SET CONSTRAINTS", none, vec![]),
        N::CreateTableAsStmt(c) => {
            let written = c.into.as_ref().map(|i| rel(&i.rel)).unwrap_or_default();
            (Ddl, "CREATE TABLE AS", none, written)
        }
        N::RefreshMatViewStmt(r) => (Write, "REFRESH MATERIALIZED VIEW", none, rel(&r.relation)),
        N::DropStmt(_) => (Ddl, "DROP", Risks::DROP, vec![]),
        N::DropRoleStmt(_) => (Ddl, "DROP ROLE", Risks::DROP, vec![]),
        N::DropdbStmt(_) => (Ddl, "DROP DATABASE", Risks::DROP, vec![]),
        N::DropTableSpaceStmt(_) => (Ddl, "DROP TABLESPACE", Risks::DROP, vec![]),
        N::DropOwnedStmt(_) => (Ddl, "DROP OWNED", Risks::DROP, vec![]),
        N::DropUserMappingStmt(_) => (Ddl, "DROP USER MAPPING", Risks::DROP, vec![]),
        N::DropSubscriptionStmt(_) => (Ddl, "DROP SUBSCRIPTION", Risks::DROP, vec![]),
        N::GrantStmt(g) => (
            Ddl,
            if g.is_grant { "GRANT" } else { "REVOKE" },
            Risks::GRANT,
            vec![],
        ),
        N::GrantRoleStmt(g) => (
            Ddl,
            if g.is_grant {
                "GRANT ROLE"
            } else {
                "REVOKE ROLE"
            },
            Risks::GRANT,
            vec![],
        ),
        N::AlterDefaultPrivilegesStmt(_) => (
            Ddl,
            "ALTER DEFAULT PRIVILEGES",
            Risks::GRANT | Risks::ALTER,
            vec![],
        ),
        N::AlterTableStmt(a) => (Ddl, "ALTER TABLE", Risks::ALTER, rel(&a.relation)),
        N::AlterRoleStmt(_) | N::AlterRoleSetStmt(_) => {
            (Ddl, "ALTER ROLE", Risks::ALTER | Risks::GRANT, vec![])
        }
        N::AlterSystemStmt(_) => (Ddl, "ALTER SYSTEM", Risks::ALTER, vec![]),
        N::RenameStmt(_) => (Ddl, "ALTER", Risks::ALTER, vec![]),
        N::CreateStmt(c) => (Ddl, "CREATE TABLE", none, rel(&c.relation)),
        N::IndexStmt(i) => (Ddl, "CREATE INDEX", none, rel(&i.relation)),
        N::ViewStmt(v) => (Ddl, "CREATE VIEW", none, rel(&v.view)),
        N::CreateRoleStmt(_) => (Ddl, "CREATE ROLE", Risks::GRANT, vec![]),
        _ => {
            let name = found.top.as_str();
            let risks = if name.starts_with("Alter") {
                Risks::ALTER
            } else if name.starts_with("Drop") {
                Risks::DROP
            } else {
                none
            };
            if name.starts_with("Create")
                || name.starts_with("Alter")
                || name.starts_with("Drop")
                || matches!(
                    name,
                    "DefineStmt"
                        | "CommentStmt"
                        | "SecLabelStmt"
                        | "RuleStmt"
                        | "CompositeTypeStmt"
                        | "ImportForeignSchemaStmt"
                        | "ReassignOwnedStmt"
                        | "IndexStmt"
                )
            {
                (Ddl, "DDL", risks, vec![])
            } else {
                (Utility, "UNKNOWN", Risks::UNKNOWN_STATEMENT, vec![])
            }
        }
    }
}

fn copy(c: &pb::CopyStmt, found: &Found) -> (Kind, &'static str, Risks, Vec<String>) {
    if c.is_from {
        let mut r = Risks::COPY_FROM;
        if c.is_program {
            r.insert(Risks::COPY_PROGRAM);
        }
        return (Kind::Write, "COPY", r, rel(&c.relation));
    }
    if c.is_program {
        return (Kind::Utility, "COPY", Risks::COPY_PROGRAM, vec![]);
    }
    if !c.filename.is_empty() {
        return (Kind::Utility, "COPY", Risks::COPY_TO_FILE, vec![]);
    }
    // COPY ... TO STDOUT: a read of a table or of a query, whose own facts
    // (a DELETE ... RETURNING, say) the walk has found.
    let _ = found;
    (Kind::Read, "COPY", Risks::NONE, vec![])
}

fn set(v: &pb::VariableSetStmt) -> (Kind, &'static str, Risks, Vec<String>) {
    let name = v.name.to_ascii_lowercase();
    let kind = v.kind;
    let mut r = Risks::NONE;
    if kind == VariableSetKind::VarResetAll as i32 {
        r.insert(Risks::LEXER_CHANGE);
    }
    if kind == VariableSetKind::VarSetMulti as i32 {
        // SET TRANSACTION / SET SESSION CHARACTERISTICS AS TRANSACTION ...
        for a in &v.args {
            if let Some(N::DefElem(d)) = a.node.as_ref() {
                if is_read_only_setting(&d.defname) && def_is_false(d) {
                    r.insert(Risks::READ_ONLY_CHANGE);
                }
            }
        }
    }
    let values: Vec<String> = v
        .args
        .iter()
        .filter_map(|a| match a.node.as_ref() {
            Some(N::AConst(c)) => match c.val.as_ref() {
                Some(pb::a_const::Val::Sval(s)) => Some(s.sval.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    // Each of SET's values is one element of a list setting, whatever it
    // contains (the server quotes it as a name).
    r.insert(setting_risks(&name, Some(&values)));
    let command = if kind == VariableSetKind::VarReset as i32
        || kind == VariableSetKind::VarResetAll as i32
    {
        "RESET"
    } else {
        "SET"
    };
    (Kind::Session, command, r, vec![])
}

fn transaction(t: &pb::TransactionStmt) -> (Kind, &'static str, Risks, Vec<String>) {
    use TransactionStmtKind as K;
    let mut r = Risks::NONE;
    for o in &t.options {
        if let Some(N::DefElem(d)) = o.node.as_ref() {
            if is_read_only_setting(&d.defname) && def_is_false(d) {
                r.insert(Risks::READ_ONLY_CHANGE);
            }
        }
    }
    let command = match K::try_from(t.kind).unwrap_or(K::Undefined) {
        K::TransStmtBegin => "BEGIN",
        K::TransStmtStart => "START TRANSACTION",
        K::TransStmtCommit => "COMMIT",
        K::TransStmtRollback => "ROLLBACK",
        K::TransStmtSavepoint => "SAVEPOINT",
        K::TransStmtRelease => "RELEASE",
        K::TransStmtRollbackTo => "ROLLBACK",
        K::TransStmtPrepare | K::TransStmtCommitPrepared | K::TransStmtRollbackPrepared => {
            r.insert(Risks::TWO_PHASE);
            match K::try_from(t.kind).unwrap_or(K::Undefined) {
                K::TransStmtPrepare => "PREPARE TRANSACTION",
                K::TransStmtCommitPrepared => "COMMIT PREPARED",
                _ => "ROLLBACK PREPARED",
            }
        }
        K::Undefined => {
            r.insert(Risks::UNKNOWN_STATEMENT);
            "TRANSACTION"
        }
    };
    // COMMIT PREPARED commits what another transaction wrote, which may
    // have been prepared past airlock: it is a write of what nobody here
    // saw, not transaction control (a policy that allows BEGIN and COMMIT
    // must not let it through).
    let kind = match command {
        "COMMIT PREPARED" => Kind::Write,
        _ => Kind::Transaction,
    };
    (kind, command, r, vec![])
}
