//! What one load of a database's catalog means for the classifier: which
//! names reach user-defined code, and which code.
//!
//! Functions are judged by who wrote them, never by what they say of
//! themselves: a user's function marked STABLE can still take an advisory
//! lock or call a volatile function. Only functions an extension installed
//! (which takes a superuser or a trusted extension, that is, code an
//! administrator chose) are taken at their word, and then only when marked
//! immutable or stable (or reviewed as reads, like `pg_stat_statements`)
//! and not named among the built-ins with side effects.
//!
//! Views, row-level security policies and domain CHECK constraints are
//! classified like statements, against the snapshot itself, until nothing
//! changes: a view over a view over a volatile function is found however
//! deep it is. Their text is PostgreSQL's own deparse with only
//! `pg_catalog` on the search path, so every user object in it is named
//! with its schema, and an unqualified name is a built-in.

use std::collections::{HashMap, HashSet};

use super::baseline::Baseline;
use super::bodies;
use super::load::{Named, Raw};
use super::resolve::resolve_deparsed;
use crate::classify::{builtins, classify, Risks, StatementFacts};

/// User code behind a name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Code {
    /// What it is, for reviewers: `view lab.wiped`, `domain lab.grabby`.
    pub what: Vec<String>,
    /// Functions it calls that are not known to be free of side effects.
    pub functions: Vec<String>,
    /// The flags that make it not a read.
    pub risks: Risks,
}

impl Code {
    pub(super) fn merge(&mut self, other: &Code) {
        for w in &other.what {
            if !self.what.contains(w) {
                self.what.push(w.clone());
            }
        }
        for f in &other.functions {
            if !self.functions.contains(f) {
                self.functions.push(f.clone());
            }
        }
        self.risks.insert(other.risks);
    }

    /// The code a statement reaches, if it is not a read.
    fn of(what: String, s: &StatementFacts) -> Option<Code> {
        if s.is_read() {
            return None;
        }
        Some(Code {
            what: vec![what],
            functions: s.unknown_functions().map(str::to_string).collect(),
            risks: s.risks & Risks::NOT_READ,
        })
    }
}

/// Built-ins that parse a type name given as text, typmod included, and so
/// call the named type's typmod_in.
const TYPE_NAME_PARSERS: &[&str] = &["to_regtype", "regtypein", "has_type_privilege"];

/// How reviewers (and the gate's refusal of a Parse) are told that a
/// type's code runs while PostgreSQL parses a statement.
pub const AT_PARSE: &str = " while a statement is parsed";

/// One database's user code, by every name a statement may use for it:
/// `name` (in any schema: search paths differ between sessions and may be
/// changed) and `schema.name`.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub fingerprint: String,
    /// Of temporary objects, which polls leave out.
    pub temporary_fingerprint: String,
    /// Untrusted functions by name: the qualified names behind it.
    functions: HashMap<String, Vec<String>>,
    /// Untrusted functions callable with one argument, by name.
    attribute_functions: HashMap<String, Vec<String>>,
    /// Names (plain and qualified) whose every function is a trusted
    /// extension function.
    trusted: HashSet<String>,
    /// Operators whose function is not known to be safe: the functions.
    operators: HashMap<String, Vec<String>>,
    /// Names (plain and qualified) whose every operator calls a safe
    /// function.
    safe_operators: HashSet<String>,
    /// Types whose values run user code when made (domain checks, casts).
    types: HashMap<String, Code>,
    type_oids: HashMap<u32, Code>,
    /// Relations that run user code when read (views, policies, foreign
    /// tables, rows of such types).
    relations: HashMap<String, Code>,
    /// Relations a write to which runs user code (`super::writes`).
    writes: HashMap<String, Code>,
    /// User code any statement may reach without naming it (a cast from a
    /// built-in type, an operator-class member, a changed built-in): why.
    pub ambient: Vec<String>,
    /// Functions untrusted because user code can hijack their bodies.
    pub hijacked: Vec<String>,
    /// The database's encoding is UTF8 (the parser folds names as the
    /// server does).
    pub server_utf8: bool,
    /// Some event trigger is enabled: every DDL may run user code.
    pub event_triggers: bool,
    /// Some operator-class member is user code (an index build on a type
    /// whose operator class it is runs it).
    user_class_members: bool,
}

/// The C functions of internal-language functions PostgreSQL's own
/// commands create for users (a range type's constructors).
const SAFE_INTERNAL: &[&str] = &[
    "range_constructor2",
    "range_constructor3",
    "multirange_constructor0",
    "multirange_constructor1",
    "multirange_constructor2",
];

/// The names a statement may use for `schema.name`: with and without the
/// schema, and a session's temporary schema by its alias `pg_temp`.
pub(super) fn keys(schema: &str, name: &str) -> Vec<String> {
    let mut k = vec![name.to_string(), format!("{schema}.{name}")];
    if schema.starts_with("pg_temp_") {
        k.push(format!("pg_temp.{name}"));
    }
    k
}

fn add_code(map: &mut HashMap<String, Code>, schema: &str, name: &str, code: &Code) -> bool {
    let mut changed = false;
    for k in keys(schema, name) {
        let entry = map.entry(k).or_default();
        let before = entry.clone();
        entry.merge(code);
        changed |= *entry != before;
    }
    changed
}

fn push_unique(map: &mut HashMap<String, Vec<String>>, key: String, value: &str) {
    let v = map.entry(key).or_default();
    if !v.iter().any(|x| x == value) {
        v.push(value.to_string());
    }
}

impl Snapshot {
    /// Whether building an index runs built-in code alone, whatever the
    /// column types, as long as its method is built-in and its expressions
    /// and predicate call built-ins only: no event trigger fires, no
    /// operator-class member (the comparisons, hashing and support
    /// functions an index build calls for its columns' types) is user
    /// code, no type's values run user code, and nothing ambient (a user
    /// cast between built-in types, a changed built-in) is reachable.
    pub fn index_builds_run_builtins_only(&self) -> bool {
        !self.event_triggers
            && !self.user_class_members
            && self.types.is_empty()
            && self.ambient.is_empty()
    }

    /// Nothing in the database reaches user code.
    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
            && self.operators.is_empty()
            && self.types.is_empty()
            && self.relations.is_empty()
            && self.writes.is_empty()
            && self.trusted.is_empty()
            && self.safe_operators.is_empty()
            && self.ambient.is_empty()
    }

    /// The untrusted functions a call of `name` as written may reach.
    pub fn functions(&self, written: &str) -> Option<&[String]> {
        self.functions.get(written).map(Vec::as_slice)
    }

    /// The untrusted functions `x.name` may call.
    pub fn attribute_functions(&self, name: &str) -> Option<&[String]> {
        self.attribute_functions.get(name).map(Vec::as_slice)
    }

    /// Every function a call of `written` may reach is a trusted extension
    /// function.
    pub fn is_trusted(&self, written: &str) -> bool {
        self.trusted.contains(written)
    }

    /// Every operator `written` may name calls a safe function.
    pub fn is_safe_operator(&self, written: &str) -> bool {
        self.safe_operators.contains(written)
    }

    pub fn operator(&self, written: &str) -> Option<&[String]> {
        self.operators.get(written).map(Vec::as_slice)
    }

    pub fn type_code(&self, written: &str) -> Option<&Code> {
        self.types.get(written)
    }

    pub fn type_oid_code(&self, oid: u32) -> Option<&Code> {
        self.type_oids.get(&oid)
    }

    pub fn relation_code(&self, written: &str) -> Option<&Code> {
        self.relations.get(written)
    }

    /// The user code a write to `written` reaches.
    pub fn write_code(&self, written: &str) -> Option<&Code> {
        self.writes.get(written)
    }

    /// The qualified names that reach user code, for operators.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .relations
            .keys()
            .map(|k| format!("relation {k}"))
            .chain(self.types.keys().map(|k| format!("type {k}")))
            .chain(self.functions.keys().map(|k| format!("function {k}")))
            .chain(self.operators.keys().map(|k| format!("operator {k}")))
            .chain(self.writes.keys().map(|k| format!("writes to {k}")))
            .filter(|n| n.contains('.'))
            .chain(self.ambient.iter().cloned())
            .chain(self.hijacked.iter().cloned())
            .collect();
        names.sort();
        names
    }

    /// Judges what a load read.
    pub fn build(raw: Raw) -> Snapshot {
        let mut s = Snapshot {
            fingerprint: raw.fingerprint.clone(),
            temporary_fingerprint: raw.temporary_fingerprint.clone(),
            ..Snapshot::default()
        };
        s.server_utf8 = raw.server_encoding.eq_ignore_ascii_case("UTF8");
        s.event_triggers = raw.event_triggers;
        let judged = Baseline::current().judge(raw.major, &raw.baseline);
        if !judged.core_differs.is_empty() {
            s.ambient.push(format!(
                "the built-in catalog differs from what PostgreSQL {} ships ({}): built-ins may run user code",
                raw.major,
                judged.core_differs.join(", ")
            ));
        }
        let trusted_extension = |e: &Option<String>| {
            e.as_ref()
                .is_some_and(|e| judged.trusted_extensions.contains(e))
        };
        // Functions: which are trusted, before search paths are considered.
        let mut trust: Vec<bool> = raw
            .functions
            .iter()
            .map(|f| {
                if f.oid < 16_384 {
                    // A built-in read only for its body (below).
                    return true;
                }
                let member = trusted_extension(&f.extension)
                    && (matches!(f.volatility, 'i' | 's')
                        || builtins::is_reviewed_extension_read(&f.name))
                    && !builtins::has_side_effects(&f.name)
                    && !builtins::runs_sql_text(&f.name);
                // A range type's constructors: the C functions PostgreSQL's
                // own CREATE TYPE makes them call.
                let constructor = f.language == "internal"
                    && SAFE_INTERNAL.contains(&f.body.as_str())
                    && f.extension.is_none();
                member || constructor
            })
            .collect();
        // Bodies that resolve names by the caller's path lose their trust
        // when user code bears a name they use; each one lost may take
        // others with it.
        let mut hijackers: HashSet<String> = raw
            .types
            .iter()
            .filter(|t| !trusted_extension(&t.extension))
            .map(|t| t.name.clone())
            .chain(raw.views.iter().map(|v| v.name.clone()))
            .chain(raw.foreign.iter().map(|f| f.name.clone()))
            .chain(raw.operators.iter().map(|o| o.name.clone()))
            .collect();
        hijackers.extend(
            raw.functions
                .iter()
                .zip(&trust)
                .filter(|(_, t)| !**t)
                .map(|(f, _)| f.name.clone()),
        );
        let bodies: Vec<Option<HashSet<String>>> = raw
            .functions
            .iter()
            .map(|f| {
                matches!(f.language.as_str(), "sql" | "plpgsql")
                    .then(|| bodies::unqualified_names(&f.body))
                    .filter(|_| !f.body.is_empty())
            })
            .collect();
        let mut hijacked: HashMap<usize, String> = HashMap::new();
        loop {
            let mut changed = false;
            for (i, f) in raw.functions.iter().enumerate() {
                let Some(used) = &bodies[i] else { continue };
                if !trust[i] {
                    continue;
                }
                if let Some(n) =
                    bodies::uses_any(&f.body, used, hijackers.iter().map(String::as_str))
                {
                    trust[i] = false;
                    hijacked.insert(i, n.to_string());
                    hijackers.insert(f.name.clone());
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let mut by_oid: HashMap<u32, (bool, String)> = HashMap::new();
        let mut all_trusted: HashMap<String, bool> = HashMap::new();
        for (i, f) in raw.functions.iter().enumerate() {
            let qualified = format!("{}.{}", f.schema, f.name);
            let trusted = trust[i];
            if f.oid < 16_384 && trusted {
                continue;
            }
            by_oid.insert(f.oid, (trusted, qualified.clone()));
            for k in keys(&f.schema, &f.name) {
                let t = all_trusted.entry(k).or_insert(true);
                *t &= trusted;
            }
            if trusted {
                continue;
            }
            if let Some(name) = hijacked.get(&i) {
                s.hijacked.push(format!(
                    "function {qualified} (its body finds {name} by the caller's search_path, and user code is named so)"
                ));
            }
            for k in keys(&f.schema, &f.name) {
                push_unique(&mut s.functions, k, &qualified);
            }
            if f.nargs >= 1 && f.nargs - f.nargdefaults <= 1 {
                push_unique(&mut s.attribute_functions, f.name.clone(), &qualified);
            }
        }
        s.trusted = all_trusted
            .into_iter()
            .filter_map(|(k, t)| t.then_some(k))
            .collect();
        let function_is_safe = |oid: u32, schema: &str, name: &str| match by_oid.get(&oid) {
            Some((trusted, _)) => *trusted,
            None => builtins::is_safe_function(Some(schema), name),
        };
        // Operators.
        let mut all_safe: HashMap<String, bool> = HashMap::new();
        for o in &raw.operators {
            let safe = function_is_safe(o.function, &o.function_schema, &o.function_name);
            for k in keys(&o.schema, &o.name) {
                *all_safe.entry(k).or_insert(true) &= safe;
            }
            if safe {
                continue;
            }
            let f = format!("{}.{}", o.function_schema, o.function_name);
            for k in keys(&o.schema, &o.name) {
                push_unique(&mut s.operators, k, &f);
            }
        }
        s.safe_operators = all_safe
            .into_iter()
            .filter_map(|(k, t)| t.then_some(k))
            .collect();
        // Foreign tables.
        for f in &raw.foreign {
            let code = Code {
                what: vec![format!("foreign table {}.{}", f.schema, f.name)],
                functions: Vec::new(),
                risks: Risks::USER_CODE,
            };
            add_code(&mut s.relations, &f.schema, &f.name, &code);
        }
        // Casts that call a function not known to be safe make both types
        // run it.
        let types: HashMap<u32, &super::load::Type> =
            raw.types.iter().map(|t| (t.oid, t)).collect();
        // A type users made (no trusted extension's): its values appear
        // only where the statement or a relation shows it.
        let markable = |oid: u32| {
            types
                .get(&oid)
                .is_some_and(|t| !trusted_extension(&t.extension))
        };
        let mut seeds: Vec<(u32, Code)> = Vec::new();
        for c in &raw.casts {
            if trusted_extension(&c.extension)
                || function_is_safe(c.function, &c.function_schema, &c.function_name)
            {
                continue;
            }
            // A cast runs where a value of its source type meets a context
            // that wants its target type; the parser picks implicit and
            // assignment casts the text does not show, and built-in bodies
            // cast their arguments (textanycat). When either type is a
            // user's, that type's values, which a statement must name or
            // read from a relation, run it; between two built-in types it
            // may run anywhere.
            if !markable(c.source) && !markable(c.target) {
                s.ambient.push(format!(
                    "a cast calls {}.{}, which is not known to be free of side effects",
                    c.function_schema, c.function_name
                ));
                continue;
            }
            let code = Code {
                what: vec![format!(
                    "cast function {}.{}",
                    c.function_schema, c.function_name
                )],
                functions: vec![format!("{}.{}", c.function_schema, c.function_name)],
                risks: Risks::UNKNOWN_FUNCTION,
            };
            for t in [c.source, c.target].into_iter().filter(|t| markable(*t)) {
                seeds.push((t, code.clone()));
            }
        }
        // Functions a type calls behind the text: its input and output,
        // the planner's range selectivity and GiST call a range's
        // subtype_diff, parse analysis of `t(n)` its typmod_in; any may be
        // a user's PL or C code. Those parse analysis calls run at a Parse,
        // before the Bind where a statement is held (code_at_parse).
        let mut parsed_names = Code::default();
        for t in &raw.types {
            for c in &t.calls {
                // A container's input (record_in, array_in, ...) calls its
                // contained types' input, which are judged as types of
                // their own (a container runs what it contains).
                let container_input = c.function < 16_384
                    && c.schema == "pg_catalog"
                    && builtins::is_container_input(&c.name);
                if trusted_extension(&t.extension)
                    || container_input
                    || function_is_safe(c.function, &c.schema, &c.name)
                {
                    continue;
                }
                let when = if c.at_parse { AT_PARSE } else { "" };
                let code = Code {
                    what: vec![format!(
                        "type {}.{} calls {}.{}{when}",
                        t.schema, t.name, c.schema, c.name
                    )],
                    functions: vec![format!("{}.{}", c.schema, c.name)],
                    risks: if c.at_parse {
                        Risks::UNKNOWN_FUNCTION.with(Risks::CODE_AT_PARSE)
                    } else {
                        Risks::UNKNOWN_FUNCTION
                    },
                };
                if c.at_parse {
                    parsed_names.merge(&code);
                }
                seeds.push((t.oid, code));
            }
        }
        // A type name given as text runs the named type's typmod_in where
        // PostgreSQL parses it: a regtype literal (at Parse), to_regtype,
        // regtypein, has_type_privilege (when they run). With such a type
        // in the database, those run its code with no name of it in the
        // text (red team round 6).
        if !parsed_names.what.is_empty() {
            add_code(&mut s.types, "pg_catalog", "regtype", &parsed_names);
            for f in TYPE_NAME_PARSERS {
                let qualified = format!("pg_catalog.{f}");
                for k in keys("pg_catalog", f) {
                    push_unique(&mut s.functions, k, &qualified);
                }
            }
        }
        // Operator-class members run in sorting, grouping, hashing, index
        // scans and partition pruning, with no function in the text.
        for m in &raw.class_members {
            if trusted_extension(&m.extension)
                || function_is_safe(m.function, &m.function_schema, &m.function_name)
            {
                continue;
            }
            s.user_class_members = true;
            let what = format!(
                "operator family {} calls {}.{}",
                m.family, m.function_schema, m.function_name
            );
            if !markable(m.left) && !markable(m.right) {
                s.ambient.push(format!(
                    "{what}, which is not known to be free of side effects"
                ));
                continue;
            }
            let code = Code {
                what: vec![what],
                functions: vec![format!("{}.{}", m.function_schema, m.function_name)],
                risks: Risks::UNKNOWN_FUNCTION,
            };
            for t in [m.left, m.right].into_iter().filter(|t| markable(*t)) {
                seeds.push((t, code.clone()));
            }
        }
        s.ambient.sort();
        s.ambient.dedup();
        for (oid, code) in seeds {
            s.mark_type(oid, &code, types.get(&oid).copied());
        }
        // Views, policies and domain checks, until nothing changes. Each
        // round can only add code, so this ends.
        let parsed_views: Vec<_> = raw
            .views
            .iter()
            .map(|v| (v, classify(&v.definition)))
            .collect();
        let parsed_policies: Vec<_> = raw
            .policies
            .iter()
            .map(|p| {
                (
                    p,
                    classify(&format!("SELECT ({}) FROM {}", p.using, p.quoted)),
                )
            })
            .collect();
        let parsed_checks: Vec<_> = raw
            .checks
            .iter()
            .map(|(oid, check)| (*oid, classify(&format!("SELECT ({check})"))))
            .collect();
        let contained_in = containers(&raw.types);
        loop {
            let mut changed = false;
            for (oid, facts) in &parsed_checks {
                let Some(t) = types.get(oid) else { continue };
                for st in &facts.statements {
                    let st = resolve_deparsed(st, &s);
                    if let Some(mut code) = Code::of(format!("domain {}.{}", t.schema, t.name), &st)
                    {
                        // domain_in checks it where a literal of a type
                        // containing the domain is parsed (a row, an
                        // array, a range of it): at Parse.
                        code.risks.insert(Risks::CODE_AT_PARSE);
                        changed |= s.mark_type(*oid, &code, Some(t));
                    }
                }
                if facts.error.is_some() {
                    let code = unparseable(format!("domain {}.{}", t.schema, t.name));
                    changed |= s.mark_type(*oid, &code, Some(t));
                }
            }
            // A type containing a type that runs code runs it too.
            let marked: Vec<(u32, Code)> =
                s.type_oids.iter().map(|(o, c)| (*o, c.clone())).collect();
            for (oid, code) in marked {
                for outer in contained_in.get(&oid).into_iter().flatten() {
                    changed |= s.mark_type(*outer, &code, types.get(outer).copied());
                }
            }
            for (v, facts) in &parsed_views {
                let what = format!("view {}.{}", v.schema, v.name);
                changed |= s.judge_relation(&what, &v.schema, &v.name, facts);
            }
            for (p, facts) in &parsed_policies {
                let what = format!("row-level security policy on {}.{}", p.schema, p.table);
                changed |= s.judge_relation(&what, &p.schema, &p.table, facts);
            }
            if !changed {
                break;
            }
        }
        s.writes = super::writes::judge(&raw, &s, &parsed_views);
        s
    }

    /// Records that the relation runs the code of `facts`, if any.
    fn judge_relation(
        &mut self,
        what: &str,
        schema: &str,
        name: &str,
        facts: &crate::classify::Facts,
    ) -> bool {
        let mut changed = false;
        if facts.error.is_some() {
            return add_code(&mut self.relations, schema, name, &unparseable(what.into()));
        }
        for st in &facts.statements {
            let st = resolve_deparsed(st, self);
            if let Some(code) = Code::of(what.to_string(), &st) {
                changed |= add_code(&mut self.relations, schema, name, &code);
            }
        }
        changed
    }

    /// Records that values of type `oid` run `code`; a row type's relation
    /// does too (a populate function can make its rows from text).
    fn mark_type(&mut self, oid: u32, code: &Code, t: Option<&super::load::Type>) -> bool {
        let entry = self.type_oids.entry(oid).or_default();
        let before = entry.clone();
        entry.merge(code);
        let mut changed = *entry != before;
        if let Some(t) = t {
            changed |= add_code(&mut self.types, &t.schema, &t.name, code);
            if let Some(Named { schema, name }) = &t.relation {
                changed |= add_code(&mut self.relations, schema, name, code);
            }
        }
        changed
    }
}

fn unparseable(what: String) -> Code {
    Code {
        what: vec![what],
        functions: Vec::new(),
        risks: Risks::USER_CODE,
    }
}

/// For each type, the types that contain it.
fn containers(types: &[super::load::Type]) -> HashMap<u32, Vec<u32>> {
    let mut map: HashMap<u32, Vec<u32>> = HashMap::new();
    for t in types {
        for inner in &t.contains {
            map.entry(*inner).or_default().push(t.oid);
        }
    }
    map
}
