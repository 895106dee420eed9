//! Changes of settings, however they are made (`SET`, `RESET`,
//! `set_config()`): which flags each carries. The policy judges a setting
//! by its name, and for `search_path` by where pg_catalog comes.

use pg_query::protobuf::{self as pb, node::Node as N};

use super::statement::is_read_only_setting;
use super::tree::{Found, Setting};
use super::{Kind, Risks, StatementFacts};

/// `set_config()` with a constant setting name is SET: the same flags, and
/// a SELECT of nothing but constants and built-ins is a session statement,
/// as SET is. So is pg_dump's `SELECT set_config(name, 'v', false) FROM
/// pg_settings WHERE name = 'x'` (which sets `x` only where it exists).
pub(super) fn apply_settings(f: &mut StatementFacts, found: &Found, top: &N) {
    // Whatever the arguments, a call of any function of that name: the
    // setting named decides.
    f.literals_matter |= found.functions.iter().any(|(_, n)| n == "set_config");
    // The pattern has no call but set_config's.
    let by_name = match found.dynamic_set_config && found.functions.len() == 1 {
        true => from_pg_settings(top),
        false => None,
    };
    if by_name.is_some() {
        // Flagged by the walk for its column argument.
        f.risks.remove(Risks::SIDE_EFFECT_FUNCTION);
    } else if found.dynamic_set_config {
        // A name made at run time may be any setting: `'ro' || 'le'` is
        // role. It carries every flag a setting can, so a policy that
        // allows set_config by name still refuses what it refuses for SET.
        f.risks.insert(Risks::SETTING);
    }
    let settings = match &by_name {
        Some(s) => std::slice::from_ref(s),
        None if found.settings.is_empty() => return,
        None => &found.settings[..],
    };
    for s in settings {
        let elements = s.value.as_deref().and_then(split_identifiers);
        f.risks.insert(setting_risks(&s.name, elements.as_deref()));
        if !f.sets.contains(&s.name) {
            f.sets.push(s.name.clone());
        }
    }
    // Only a SELECT of no relation is the SET alone: one that reads tables
    // too must stay under the rules for those tables, so it is no read
    // either.
    let reads_nothing = match by_name {
        Some(_) => f
            .tables_read
            .iter()
            .all(|t| t == "pg_settings" || t == "pg_catalog.pg_settings"),
        None => f.tables_read.is_empty(),
    };
    if (!found.dynamic_set_config || by_name.is_some())
        && f.kind == Kind::Read
        && f.command == "SELECT"
        && reads_nothing
        && !f.risks.intersects(Risks::NOT_READ.without(Risks::SETTING))
    {
        f.kind = Kind::Session;
    } else {
        f.risks.insert(Risks::SIDE_EFFECT_FUNCTION);
    }
}

/// `SELECT set_config(name, 'value', false) FROM pg_settings WHERE name =
/// 'x'`, exactly (one target, one relation, nothing else): the setting `x`.
fn from_pg_settings(top: &N) -> Option<Setting> {
    let N::SelectStmt(sel) = top else {
        return None;
    };
    let plain = sel.distinct_clause.is_empty()
        && sel.group_clause.is_empty()
        && sel.having_clause.is_none()
        && sel.window_clause.is_empty()
        && sel.with_clause.is_none()
        && sel.locking_clause.is_empty()
        && sel.into_clause.is_none()
        && sel.larg.is_none()
        && sel.values_lists.is_empty();
    let ([target], [from]) = (&sel.target_list[..], &sel.from_clause[..]) else {
        return None;
    };
    if !plain {
        return None;
    }
    match from.node.as_ref()? {
        N::RangeVar(r)
            if r.relname == "pg_settings"
                && matches!(r.schemaname.as_str(), "" | "pg_catalog")
                && r.alias.is_none() => {}
        _ => return None,
    }
    let N::ResTarget(t) = target.node.as_ref()? else {
        return None;
    };
    let N::FuncCall(call) = t.val.as_ref()?.node.as_ref()? else {
        return None;
    };
    let names: Vec<&str> = call.funcname.iter().filter_map(string_of).collect();
    if !matches!(names[..], ["set_config"] | ["pg_catalog", "set_config"])
        || call.agg_star
        || call.over.is_some()
        || call.func_variadic
    {
        return None;
    }
    let [name, value, local] = &call.args[..] else {
        return None;
    };
    if !is_column(name, "name") || !matches!(local.node, Some(N::AConst(_))) {
        return None;
    }
    let Some(N::AExpr(cond)) = sel.where_clause.as_ref()?.node.as_ref() else {
        return None;
    };
    let op: Vec<&str> = cond.name.iter().filter_map(string_of).collect();
    if cond.kind != pb::AExprKind::AexprOp as i32 || op[..] != ["="] {
        return None;
    }
    if !is_column(cond.lexpr.as_deref()?, "name") {
        return None;
    }
    Some(Setting {
        name: constant(cond.rexpr.as_deref()?)?.to_ascii_lowercase(),
        value: constant(value),
    })
}

fn string_of(n: &pb::Node) -> Option<&str> {
    match n.node.as_ref()? {
        N::String(s) => Some(&s.sval),
        _ => None,
    }
}

/// Whether `n` is the unqualified column `name`.
fn is_column(n: &pb::Node, name: &str) -> bool {
    match n.node.as_ref() {
        Some(N::ColumnRef(c)) => {
            let fields: Vec<&str> = c.fields.iter().filter_map(string_of).collect();
            fields[..] == [name]
        }
        _ => false,
    }
}

/// A string constant.
fn constant(n: &pb::Node) -> Option<String> {
    match n.node.as_ref()? {
        N::AConst(c) => match c.val.as_ref()? {
            pb::a_const::Val::Sval(s) => Some(s.sval.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// The flags a change of the setting `name` (lower case) carries, however
/// it is made: `SET`, `SET LOCAL`, `RESET`, or `set_config()`. `elements`
/// are the elements of the list it is set to (for `search_path`), `None`
/// if the server would not read it as a list.
pub(super) fn setting_risks(name: &str, elements: Option<&[String]>) -> Risks {
    let mut r = Risks::NONE;
    // Settings that change how the server reads the next statement's text.
    if matches!(
        name,
        "client_encoding" | "names" | "standard_conforming_strings" | "backslash_quote"
    ) {
        r.insert(Risks::LEXER_CHANGE);
    }
    if matches!(name, "role" | "session_authorization") {
        r.insert(Risks::ROLE_CHANGE);
    }
    if is_read_only_setting(name) {
        r.insert(Risks::READ_ONLY_CHANGE);
    }
    // Unreadable as a list: as if pg_catalog came late.
    if name == "search_path" && !elements.is_some_and(pg_catalog_first) {
        r.insert(Risks::SEARCH_PATH);
    }
    // `replica` and `local` switch off ordinary triggers and rules, foreign
    // keys among them, for every later write of the session: an approved
    // write would run without what reviewers expect of it.
    if name == "session_replication_role" {
        r.insert(Risks::REPLICATION_ROLE);
    }
    r
}

/// A search_path that names pg_catalog anywhere but first lets functions in
/// other schemas shadow built-ins. `schemas` are the path's elements.
fn pg_catalog_first(schemas: &[String]) -> bool {
    match schemas.iter().position(|n| n == "pg_catalog") {
        None | Some(0) => true,
        Some(_) => false,
    }
}

/// The elements of a list setting given as one string (`set_config`,
/// `search_path` in a startup packet), read as the server's
/// SplitIdentifierString reads it: separated by commas, unquoted names
/// folded to lower case, `"..."` kept as written with `""` for a quote.
/// `None` if the server would reject it.
pub(super) fn split_identifiers(list: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = list.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
        let mut name = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next()? {
                    '"' if chars.next_if_eq(&'"').is_some() => name.push('"'),
                    '"' => break,
                    c => name.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',' && !c.is_ascii_whitespace()) {
                name.push(c.to_ascii_lowercase());
            }
            if name.is_empty() && chars.peek().is_some() {
                return None;
            }
        }
        while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
        if !name.is_empty() || !out.is_empty() || chars.peek().is_some() {
            out.push(name);
        }
        match chars.next() {
            None => return Some(out),
            Some(',') => continue,
            Some(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_as_the_server_splits_them() {
        let v = |s: &str| split_identifiers(s);
        assert_eq!(v(""), Some(vec![]));
        assert_eq!(
            v("a, B ,\"C d\""),
            Some(vec!["a".into(), "b".into(), "C d".into()])
        );
        assert_eq!(v("\"a\"\"b\""), Some(vec!["a\"b".into()]));
        assert_eq!(v("a,,b"), None);
        assert_eq!(v("\"a"), None);
        assert_eq!(v("a b"), None);
    }
}
