//! An exhaustive walk over a statement's parse tree.
//!
//! `pg_query`'s own node iterator visits only a subset of node types, which
//! is not good enough for a classifier that must fail closed. The tree is
//! serialised to a JSON value instead and every object in it is visited, so a
//! function call or a relation cannot hide in a field the walk does not know.

use serde_json::Value;

/// What the walk found anywhere in a statement.
#[derive(Debug, Default)]
pub struct Found {
    /// The node type of the statement itself (`SelectStmt`, ...).
    pub top: String,
    /// Function calls as (schema, name).
    pub functions: Vec<(Option<String>, String)>,
    /// Operators as (schema, name), written or implied (`CASE x WHEN`,
    /// `JOIN ... USING`, `IN (SELECT ...)` compare with `=`).
    pub operators: Vec<(Option<String>, String)>,
    /// Type names as (schema, name).
    pub types: Vec<(Option<String>, String)>,
    /// Names after a qualifier: `t.f`, `(x).f`. Each may be a column, a
    /// field, or a function called in attribute notation.
    pub attributes: Vec<String>,
    /// Relations as `schema.name` or `name`; references to a common table
    /// expression in scope are not relations and are left out.
    pub relations: Vec<String>,
    /// INSERT/UPDATE/DELETE/MERGE statements, at any depth.
    pub data_modifying: usize,
    /// FOR UPDATE/SHARE clauses.
    pub locking: bool,
    /// SELECT ... INTO.
    pub into: bool,
    /// An EXECUTE of a prepared statement, at any depth (`CREATE TABLE ...
    /// AS EXECUTE`).
    pub execute: bool,
    /// Calls of `set_config` with a constant setting name: what SET they
    /// amount to. Each is in `functions` too.
    pub settings: Vec<Setting>,
    /// A call of `set_config` whose setting name is not a constant.
    pub dynamic_set_config: bool,
}

/// `set_config(name, value, is_local)` with a constant name: the same as
/// `SET [LOCAL] name = value` (or `RESET name`, for a NULL value). What
/// `is_local` is does not change what the setting may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Lower case, as the server compares setting names.
    pub name: String,
    /// The value, if it is a string constant.
    pub value: Option<String>,
}

/// The setting a `set_config` call with a constant name makes. Its other
/// arguments may be anything: what they call is found by the walk.
fn setting_of(call: &Value) -> Option<Setting> {
    let args = call.get("args")?.as_array()?;
    let [name, value, _local] = args.as_slice() else {
        return None;
    };
    let text = |v: &Value| {
        v.pointer("/node/AConst/val/Sval/sval")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Some(Setting {
        name: text(name)?.to_ascii_lowercase(),
        value: text(value),
    })
}

/// The walk: what it found, and the names of the common table expressions
/// in scope where it is.
struct Walker {
    found: Found,
    ctes: Vec<String>,
}

/// Walks the tree of one statement node.
pub fn walk(node: &pg_query::protobuf::Node) -> Found {
    let mut w = Walker {
        found: Found::default(),
        ctes: Vec::new(),
    };
    match serde_json::to_value(node) {
        Ok(v) => {
            if let Some(Value::Object(m)) = v.get("node") {
                w.found.top = m.keys().next().cloned().unwrap_or_default();
            }
            w.visit(&v, false)
        }
        // Cannot happen for these derive-generated types; if it ever did,
        // an unknown function makes the statement not a read.
        Err(_) => w.found.functions.push((None, "?".into())),
    }
    w.found
}

/// The function PostgreSQL 15 calls for syntax that the grammar of the
/// parser (PostgreSQL 17's) reads as something else. `JSON_ARRAY(1)`,
/// `JSON_QUERY(x, '$')`, `MERGE_ACTION()` ... are SQL/JSON constructors and
/// MERGE support to that grammar, with no function call in the tree; to a
/// PostgreSQL 15 server they are calls of whatever functions of those names
/// exist, a user's in any schema on the search path included.
fn later_grammar_call(key: &str, child: &Value) -> Option<&'static str> {
    Some(match key {
        "JsonObjectConstructor" => "json_object",
        "JsonArrayConstructor" | "JsonArrayQueryConstructor" => "json_array",
        "JsonObjectAgg" => "json_objectagg",
        "JsonArrayAgg" => "json_arrayagg",
        "JsonParseExpr" => "json",
        "JsonScalarExpr" => "json_scalar",
        "JsonSerializeExpr" => "json_serialize",
        "JsonTable" => "json_table",
        "MergeSupportFunc" => "merge_action",
        "JsonFuncExpr" => match child.get("op").and_then(Value::as_i64) {
            Some(1) => "json_exists",
            Some(2) => "json_query",
            Some(3) => "json_value",
            _ => "json_table",
        },
        _ => return None,
    })
}

impl Walker {
    /// Visits `v`; `target` says it is the relation a statement writes or
    /// creates (`INSERT INTO x`, `SELECT ... INTO x`), which is never a
    /// common table expression.
    fn visit(&mut self, v: &Value, target: bool) {
        match v {
            Value::Object(map) => self.visit_object(map, target),
            Value::Array(items) => items.iter().for_each(|i| self.visit(i, false)),
            _ => {}
        }
    }

    fn visit_object(&mut self, map: &serde_json::Map<String, Value>, target: bool) {
        if map.contains_key("relname") {
            let unqualified = map
                .get("schemaname")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty);
            let name = relation_name(map);
            if target || !unqualified || !self.ctes.contains(&name) {
                self.found.relations.push(name);
            }
        }
        // A TypeName, wherever it stands (a cast, a column definition
        // list, a parameter of PREPARE ...).
        if map.contains_key("names") && map.contains_key("typemod") {
            if let Some(name) = qualified(map.get("names")) {
                self.found.types.push(name);
            }
        }
        let scope = self.ctes.len();
        let with = map.get("with_clause").filter(|w| w.is_object());
        if let Some(with) = with {
            self.visit_with(with);
        }
        for (key, child) in map {
            if with.is_some() && key == "with_clause" {
                continue;
            }
            if let Some(name) = later_grammar_call(key, child) {
                self.found.functions.push((None, name.to_string()));
            }
            let found = &mut self.found;
            match key.as_str() {
                "FuncCall" => {
                    if let Some(mut name) = qualified(child.get("funcname")) {
                        // `json_object(...)` is `pg_catalog.json_object` to
                        // the parser's grammar (a special form since
                        // PostgreSQL 16) but a name a PostgreSQL 15 server
                        // looks up on the search path, where a user's
                        // overload can match better.
                        if name.1 == "json_object" {
                            name.0 = None;
                        }
                        if name.1 == "set_config"
                            && matches!(name.0.as_deref(), None | Some("pg_catalog"))
                        {
                            match setting_of(child) {
                                Some(s) => found.settings.push(s),
                                None => found.dynamic_set_config = true,
                            }
                        }
                        found.functions.push(name);
                    }
                }
                "AExpr" => {
                    if let Some(name) = qualified(child.get("name")) {
                        found.operators.push(name);
                    }
                }
                "ColumnRef" => {
                    let fields = child.get("fields").and_then(Value::as_array);
                    for f in fields.into_iter().flatten().skip(1) {
                        if let Some(n) = f.pointer("/node/String/sval").and_then(Value::as_str) {
                            found.attributes.push(n.to_string());
                        }
                    }
                }
                "AIndirection" => {
                    let names = child.get("indirection").and_then(Value::as_array);
                    for f in names.into_iter().flatten() {
                        if let Some(n) = f.pointer("/node/String/sval").and_then(Value::as_str) {
                            found.attributes.push(n.to_string());
                        }
                    }
                }
                "SubLink" => match qualified(child.get("oper_name")) {
                    Some(name) => found.operators.push(name),
                    // ANY, ALL and row comparisons without an operator
                    // (`IN (SELECT ...)`) use `=`.
                    None if matches!(
                        child.get("sub_link_type").and_then(Value::as_i64),
                        Some(2..=4)
                    ) =>
                    {
                        found.operators.push((None, "=".into()))
                    }
                    None => {}
                },
                "SortBy" => {
                    if let Some(name) = qualified(child.get("use_op")) {
                        found.operators.push(name);
                    }
                }
                "CaseExpr" if child.get("arg").is_some_and(|a| !a.is_null()) => {
                    found.operators.push((None, "=".into()))
                }
                "JoinExpr"
                    if child.get("is_natural").and_then(Value::as_bool) == Some(true)
                        || child
                            .get("using_clause")
                            .and_then(Value::as_array)
                            .is_some_and(|u| !u.is_empty()) =>
                {
                    found.operators.push((None, "=".into()))
                }
                "InsertStmt" | "UpdateStmt" | "DeleteStmt" | "MergeStmt" => {
                    found.data_modifying += 1
                }
                "ExecuteStmt" => found.execute = true,
                "LockingClause" => found.locking = true,
                "into_clause" if !child.is_null() => found.into = true,
                _ => {}
            }
            // The relation a statement writes, creates or copies.
            self.visit(child, matches!(key.as_str(), "relation" | "rel"));
        }
        self.ctes.truncate(scope);
    }

    /// A WITH clause: each query sees the names before its own (all of
    /// them with RECURSIVE), as PostgreSQL's analysis does; a name not yet
    /// in scope is a relation. Leaves every name in scope for the rest of
    /// the statement that owns the clause.
    fn visit_with(&mut self, with: &Value) {
        let recursive = with.get("recursive").and_then(Value::as_bool) == Some(true);
        let ctes: &[Value] = with
            .get("ctes")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        let names: Vec<String> = ctes
            .iter()
            .filter_map(|c| c.pointer("/node/CommonTableExpr/ctename"))
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        let outer = self.ctes.len();
        if recursive {
            self.ctes.extend(names.iter().cloned());
        }
        for (i, cte) in ctes.iter().enumerate() {
            if !recursive {
                self.ctes.truncate(outer);
                self.ctes.extend(names.iter().take(i).cloned());
            }
            self.visit(cte, false);
        }
        self.ctes.truncate(outer);
        self.ctes.extend(names);
    }
}

/// `schema.name` of a RangeVar-shaped object.
pub fn relation_name(map: &serde_json::Map<String, Value>) -> String {
    let rel = map.get("relname").and_then(Value::as_str).unwrap_or("");
    match map.get("schemaname").and_then(Value::as_str) {
        Some(s) if !s.is_empty() => format!("{s}.{rel}"),
        _ => rel.to_string(),
    }
}

/// A name list (`[{"node":{"String":{"sval":..}}}, ...]`) as (schema, name).
fn qualified(list: Option<&Value>) -> Option<(Option<String>, String)> {
    let parts: Vec<&str> = list?
        .as_array()?
        .iter()
        .filter_map(|n| n.pointer("/node/String/sval").and_then(Value::as_str))
        .collect();
    match parts.as_slice() {
        [name] => Some((None, name.to_string())),
        [.., schema, name] => Some((Some(schema.to_string()), name.to_string())),
        [] => None,
    }
}
