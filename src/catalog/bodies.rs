//! Function bodies that resolve names by the caller's search_path.
//!
//! A SQL or PL/pgSQL function with a string body and no `SET search_path`
//! of its own looks up every unqualified name in it when it runs, with the
//! search path of the session that calls it: earthdistance's `sec_to_gc`
//! calls `earth()`, and a function `earth()` in a schema earlier on the
//! path (the `"$user"` schema of the default path, one an allowed
//! `SET search_path` or a planted `ALTER DATABASE ... SET search_path`
//! puts there) runs instead, as does an overload with a better type match
//! anywhere on the path. Bodies in the SQL-standard form (`BEGIN ATOMIC`,
//! `RETURN`), which most built-ins use since PostgreSQL 14, are bound when
//! created and are not read here.
//!
//! Paths differ between sessions and change at run time, so airlock does
//! not try to follow them: a body is hijackable when user code anywhere in
//! the database bears a name the body uses unqualified, and a function with
//! such a body is trusted no more than user code. Names inside string
//! literals count too (PL/pgSQL's `EXECUTE` runs them with the same path).

use std::collections::HashSet;

/// The identifiers `body` uses without a schema (not next to a `.`),
/// folded to lower case as PostgreSQL folds unquoted names; quoted names
/// as written.
pub fn unqualified_names(body: &str) -> HashSet<String> {
    let b = body.as_bytes();
    let mut out = HashSet::new();
    let mut i = 0;
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    while i < b.len() {
        let c = b[i];
        let (start, end, name) = if c == b'"' {
            let Some(len) = b[i + 1..].iter().position(|&q| q == b'"') else {
                break;
            };
            let end = i + 1 + len + 1;
            (i, end, body[i + 1..end - 1].to_string())
        } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            let mut end = i + 1;
            while end < b.len() && word(b[end]) {
                end += 1;
            }
            (i, end, body[i..end].to_ascii_lowercase())
        } else {
            i += 1;
            continue;
        };
        let qualified = (start > 0 && b[start - 1] == b'.') || b.get(end) == Some(&b'.');
        if !qualified && !name.is_empty() {
            out.insert(name);
        }
        i = end;
    }
    out
}

/// Whether any of `names` occurs in the body as an unqualified name, or,
/// for operator names (no letters), anywhere in it.
pub fn uses_any<'a>(
    body: &str,
    used: &HashSet<String>,
    names: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    names.into_iter().find(|n| {
        if n.bytes().any(|c| c.is_ascii_alphabetic() || c == b'_') {
            used.contains(*n)
        } else {
            body.contains(n)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unqualified_names_only() {
        let n = unqualified_names(
            "SELECT cube_distance($1, $2)::pg_catalog.float8 FROM earth() e WHERE \"MixedCase\"(x) AND public.Other(y)",
        );
        for want in [
            "select",
            "cube_distance",
            "from",
            "earth",
            "e",
            "where",
            "MixedCase",
            "x",
            "y",
        ] {
            assert!(n.contains(want), "{want} in {n:?}");
        }
        assert!(!n.contains("pg_catalog") && !n.contains("float8"));
        assert!(!n.contains("public") && !n.contains("other"));
    }

    #[test]
    fn names_in_strings_count() {
        let n = unqualified_names("BEGIN EXECUTE 'SELECT hijack()'; END");
        assert!(n.contains("hijack"));
    }

    #[test]
    fn operators_match_anywhere() {
        let body = "select $1 operator(pg_catalog.||) $2";
        let used = unqualified_names(body);
        assert_eq!(uses_any(body, &used, ["||"]), Some("||"));
        assert_eq!(uses_any(body, &used, ["earth", "&&"]), None);
    }
}
